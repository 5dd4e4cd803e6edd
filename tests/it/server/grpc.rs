//! The SpiceDB API through a Rust tonic client generated from the same protos: every method,
//! tokens, errors as SpiceDB returns them, authentication, limits, and bad input that changes
//! nothing.

use super::*;
use pb::relationship_update::Operation as Op;
use tokio_stream::StreamExt;
use tonic::Code;

async fn write_schema(c: &mut Clients, text: &str) -> pb::ZedToken {
    c.schema
        .write_schema(pb::WriteSchemaRequest { schema: text.into() })
        .await
        .unwrap()
        .into_inner()
        .written_at
        .unwrap()
}

async fn write(c: &mut Clients, rels: &[&str]) -> pb::ZedToken {
    c.perms.write_relationships(touch(rels)).await.unwrap().into_inner().written_at.unwrap()
}

async fn check(
    c: &mut Clients,
    r: (&str, &str),
    p: &str,
    s: (&str, &str),
    cons: Option<pb::Consistency>,
) -> i32 {
    c.perms.check_permission(check_req(r, p, s, cons)).await.unwrap().into_inner().permissionship
}

async fn lookup_resources(
    c: &mut Clients,
    ty: &str,
    p: &str,
    s: (&str, &str),
    limit: u32,
    cursor: Option<pb::Cursor>,
) -> Vec<(String, Option<pb::Cursor>)> {
    let mut stream = c
        .perms
        .lookup_resources(pb::LookupResourcesRequest {
            consistency: full(),
            resource_object_type: ty.into(),
            permission: p.into(),
            subject: Some(subj(s.0, s.1, "")),
            context: None,
            optional_limit: limit,
            optional_cursor: cursor,
        })
        .await
        .unwrap()
        .into_inner();
    let mut out = Vec::new();
    while let Some(r) = stream.next().await {
        let r = r.unwrap();
        out.push((r.resource_object_id, r.after_result_cursor));
    }
    out
}

fn code_of<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> Code {
    r.expect_err("the request must fail").code()
}

/// The reason SpiceDB's clients read from the ErrorInfo detail.
fn reason(s: &tonic::Status) -> String {
    use prost::Message;
    let st = purview::server::proto::google::rpc::Status::decode(s.details()).unwrap();
    let any = st.details.first().expect("an ErrorInfo detail");
    assert_eq!(any.type_url, "type.googleapis.com/google.rpc.ErrorInfo");
    // ErrorInfo.reason is field 1 (a string): read it without the type.
    #[derive(Clone, PartialEq, prost::Message)]
    struct Info {
        #[prost(string, tag = "1")]
        reason: String,
    }
    Info::decode(any.value.as_slice()).unwrap().reason
}

#[test]
fn a_spicedb_client_writes_checks_looks_up_reads_and_deletes() {
    let server = Server::start(&["--memory"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        let t = write(
            &mut c,
            &[
                "group:eng#member@user:ann",
                "group:all#member@group:eng#member",
                "folder:f1#viewer@group:all#member",
                "document:d1#folder@folder:f1",
                "document:d2#viewer@user:*",
                "document:d2#banned@user:bob",
                "document:d3#owner@user:carl",
            ],
        )
        .await;
        let has = Permissionship::HasPermission as i32;
        let no = Permissionship::NoPermission as i32;
        // Nested usersets through an arrow.
        assert_eq!(check(&mut c, ("document", "d1"), "view", ("user", "ann"), fresh(&t)).await, has);
        assert_eq!(check(&mut c, ("document", "d1"), "view", ("user", "bob"), fresh(&t)).await, no);
        // A wildcard with an exclusion.
        assert_eq!(check(&mut c, ("document", "d2"), "view", ("user", "zed"), fresh(&t)).await, has);
        assert_eq!(check(&mut c, ("document", "d2"), "view", ("user", "bob"), fresh(&t)).await, no);
        assert_eq!(check(&mut c, ("document", "d3"), "edit", ("user", "carl"), full()).await, has);

        let found: Vec<String> =
            lookup_resources(&mut c, "document", "view", ("user", "ann"), 0, None).await.into_iter().map(|r| r.0).collect();
        assert_eq!(found, ["d1", "d2"]);
        // Pages follow each other through the cursors.
        let first = lookup_resources(&mut c, "document", "view", ("user", "ann"), 1, None).await;
        assert_eq!(first.len(), 1);
        let rest = lookup_resources(&mut c, "document", "view", ("user", "ann"), 5, first[0].1.clone()).await;
        assert_eq!([first[0].0.clone()].into_iter().chain(rest.into_iter().map(|r| r.0)).collect::<Vec<_>>(), ["d1", "d2"]);

        let mut subjects = c
            .perms
            .lookup_subjects(pb::LookupSubjectsRequest {
                consistency: full(),
                resource: Some(obj("document", "d2")),
                permission: "view".into(),
                subject_object_type: "user".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut seen = Vec::new();
        while let Some(s) = subjects.next().await {
            let s = s.unwrap().subject.unwrap();
            seen.push(s.subject_object_id);
        }
        assert_eq!(seen, ["*"]);

        let mut read = c
            .perms
            .read_relationships(pb::ReadRelationshipsRequest {
                consistency: full(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    optional_resource_id: "d2".into(),
                    ..Default::default()
                }),
                optional_limit: 0,
                optional_cursor: None,
            })
            .await
            .unwrap()
            .into_inner();
        let mut n = 0;
        while let Some(r) = read.next().await {
            let r = r.unwrap().relationship.unwrap();
            assert_eq!(r.resource.unwrap().object_id, "d2");
            n += 1;
        }
        assert_eq!(n, 2);

        let bulk = c
            .perms
            .check_bulk_permissions(pb::CheckBulkPermissionsRequest {
                consistency: full(),
                items: vec![
                    pb::CheckBulkPermissionsRequestItem {
                        resource: Some(obj("document", "d1")),
                        permission: "view".into(),
                        subject: Some(subj("user", "ann", "")),
                        context: None,
                    },
                    pb::CheckBulkPermissionsRequestItem {
                        resource: Some(obj("nosuchtype", "d1")),
                        permission: "view".into(),
                        subject: Some(subj("user", "ann", "")),
                        context: None,
                    },
                ],
                with_tracing: false,
            })
            .await
            .unwrap()
            .into_inner();
        use pb::check_bulk_permissions_pair::Response as R;
        assert!(matches!(&bulk.pairs[0].response, Some(R::Item(i)) if i.permissionship == has));
        assert!(matches!(&bulk.pairs[1].response, Some(R::Error(e)) if e.code == Code::FailedPrecondition as i32));

        // Delete by filter, with a precondition.
        let del = c
            .perms
            .delete_relationships(pb::DeleteRelationshipsRequest {
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    optional_resource_id: "d2".into(),
                    ..Default::default()
                }),
                optional_preconditions: vec![pb::Precondition {
                    operation: pb::precondition::Operation::MustMatch as i32,
                    filter: Some(pb::RelationshipFilter {
                        resource_type: "document".into(),
                        optional_resource_id: "d3".into(),
                        ..Default::default()
                    }),
                }],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(del.relationships_deleted_count, 2);
        let after = del.deleted_at.unwrap();
        assert_eq!(check(&mut c, ("document", "d2"), "view", ("user", "zed"), fresh(&after)).await, no);
        // An exact read of the revision before the delete needs history: an in-memory server
        // keeps none, and says so (a store answers it: see the tokens test).
        let old = c.perms.check_permission(check_req(("document", "d2"), "view", ("user", "zed"), exact(&t))).await;
        assert_eq!(code_of(old), Code::OutOfRange);

        // Expand gives a tree rooted at the permission.
        let tree = c
            .perms
            .expand_permission_tree(pb::ExpandPermissionTreeRequest {
                consistency: full(),
                resource: Some(obj("document", "d3")),
                permission: "edit".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .tree_root
            .unwrap();
        assert_eq!(tree.expanded_relation, "edit");

        // The schema reads back as written; reflection lists its definitions.
        let text = c.schema.read_schema(pb::ReadSchemaRequest {}).await.unwrap().into_inner().schema_text;
        assert_eq!(text, ZED);
        let reflected = c.schema.reflect_schema(pb::ReflectSchemaRequest::default()).await.unwrap().into_inner();
        let names: Vec<String> = reflected.definitions.iter().map(|d| d.name.clone()).collect();
        assert!(names.contains(&"document".to_string()) && names.contains(&"group".to_string()), "{names:?}");
        let diff = c
            .schema
            .diff_schema(pb::DiffSchemaRequest {
                consistency: None,
                comparison_schema: format!("{ZED}\ndefinition team {{}}\n"),
            })
            .await
            .unwrap()
            .into_inner();
        assert!(
            diff.diffs.iter().any(|d| matches!(&d.diff, Some(pb::reflection_schema_diff::Diff::DefinitionAdded(x)) if x.name == "team")),
            "{diff:?}"
        );
    });
}

#[test]
fn caveats_take_context_as_a_struct_and_conditional_answers_name_what_is_missing() {
    let server = Server::start(&["--memory"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        let mut r = rel("document:d1#viewer@user:ann");
        let mut ctx = prost_types::Struct::default();
        ctx.fields.insert(
            "allowed_cidr".into(),
            prost_types::Value { kind: Some(prost_types::value::Kind::StringValue("10.0.0.1".into())) },
        );
        r.optional_caveat =
            Some(pb::ContextualizedCaveat { caveat_name: "on_network".into(), context: Some(ctx) });
        c.perms
            .write_relationships(pb::WriteRelationshipsRequest {
                updates: vec![update(Op::Touch, r)],
                ..Default::default()
            })
            .await
            .unwrap();
        let answer = c
            .perms
            .check_permission(check_req(("document", "d1"), "view", ("user", "ann"), full()))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(answer.permissionship, Permissionship::ConditionalPermission as i32);
        assert_eq!(answer.partial_caveat_info.unwrap().missing_required_context, ["ip"]);
        for (ip, expected) in
            [("10.0.0.1", Permissionship::HasPermission), ("10.0.0.2", Permissionship::NoPermission)]
        {
            let mut req = check_req(("document", "d1"), "view", ("user", "ann"), full());
            let mut ctx = prost_types::Struct::default();
            ctx.fields.insert(
                "ip".into(),
                prost_types::Value { kind: Some(prost_types::value::Kind::StringValue(ip.into())) },
            );
            req.context = Some(ctx);
            let got = c.perms.check_permission(req).await.unwrap().into_inner().permissionship;
            assert_eq!(got, expected as i32, "ip {ip}");
        }

        // Relationship expiration: an expired relationship grants nothing.
        let mut past = rel("document:d2#viewer@user:bob");
        past.optional_expires_at = Some(prost_types::Timestamp { seconds: 1_000_000_000, nanos: 0 });
        let mut future = rel("document:d3#viewer@user:bob");
        future.optional_expires_at = Some(prost_types::Timestamp { seconds: 4_000_000_000, nanos: 0 });
        c.perms
            .write_relationships(pb::WriteRelationshipsRequest {
                updates: vec![update(Op::Touch, past), update(Op::Touch, future)],
                ..Default::default()
            })
            .await
            .unwrap();
        assert_eq!(
            check(&mut c, ("document", "d2"), "view", ("user", "bob"), full()).await,
            Permissionship::NoPermission as i32
        );
        assert_eq!(
            check(&mut c, ("document", "d3"), "view", ("user", "bob"), full()).await,
            Permissionship::HasPermission as i32
        );
    });
    // Context values never reach the logs.
    assert!(!server.log().contains("10.0.0.1"), "{}", server.log());
}

#[test]
fn errors_carry_spicedb_codes_and_reasons_and_a_failed_write_changes_nothing() {
    let server = Server::start(&["--memory", "--max-updates-per-write", "3"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        let t = write(&mut c, &["document:d1#owner@user:ann"]).await;

        let cases: Vec<(pb::WriteRelationshipsRequest, Code, &str)> = vec![
            (
                touch(&["nosuch:d1#owner@user:ann"]),
                Code::FailedPrecondition,
                "ERROR_REASON_UNKNOWN_DEFINITION",
            ),
            (
                touch(&["document:d1#nosuch@user:ann"]),
                Code::FailedPrecondition,
                "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION",
            ),
            (
                touch(&["document:d1#view@user:ann"]),
                Code::InvalidArgument,
                "ERROR_REASON_CANNOT_UPDATE_PERMISSION",
            ),
            (
                touch(&["document:d1#owner@group:g1"]),
                Code::InvalidArgument,
                "ERROR_REASON_INVALID_SUBJECT_TYPE",
            ),
            (
                touch(&[
                    "document:a#owner@user:x",
                    "document:b#owner@user:x",
                    "document:c#owner@user:x",
                    "document:d#owner@user:x",
                ]),
                Code::InvalidArgument,
                "ERROR_REASON_TOO_MANY_UPDATES_IN_REQUEST",
            ),
            (
                touch(&["document:a#owner@user:x", "document:a#owner@user:x"]),
                Code::InvalidArgument,
                "ERROR_REASON_UPDATES_ON_SAME_RELATIONSHIP",
            ),
            (
                pb::WriteRelationshipsRequest {
                    updates: vec![update(Op::Create, rel("document:d1#owner@user:ann"))],
                    ..Default::default()
                },
                Code::AlreadyExists,
                "ERROR_REASON_ATTEMPT_TO_RECREATE_RELATIONSHIP",
            ),
            (
                pb::WriteRelationshipsRequest {
                    updates: vec![update(Op::Touch, rel("document:d9#owner@user:zed"))],
                    optional_preconditions: vec![pb::Precondition {
                        operation: pb::precondition::Operation::MustNotMatch as i32,
                        filter: Some(pb::RelationshipFilter {
                            resource_type: "document".into(),
                            optional_relation: "owner".into(),
                            ..Default::default()
                        }),
                    }],
                    ..Default::default()
                },
                Code::FailedPrecondition,
                "ERROR_REASON_WRITE_OR_DELETE_PRECONDITION_FAILURE",
            ),
        ];
        for (req, code, why) in cases {
            let e = c.perms.write_relationships(req.clone()).await.expect_err("must fail");
            assert_eq!(e.code(), code, "{req:?}: {e:?}");
            assert_eq!(reason(&e), why, "{req:?}");
        }
        // Invalid ids are refused before anything is looked up.
        let e = c
            .perms
            .write_relationships(touch(&["document:bad id#owner@user:ann"]))
            .await
            .expect_err("bad id");
        assert_eq!(e.code(), Code::InvalidArgument);
        // Nothing of any failed write is there: still one relationship, the same revision.
        let mut read = c
            .perms
            .read_relationships(pb::ReadRelationshipsRequest {
                consistency: full(),
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let mut all = Vec::new();
        while let Some(r) = read.next().await {
            let r = r.unwrap();
            assert_eq!(r.read_at.as_ref(), Some(&t), "no revision after the last good write");
            all.push(r.relationship.unwrap());
        }
        assert_eq!(all.len(), 1);

        // Reads of unknown names, and a token of another server.
        let e = c
            .perms
            .check_permission(check_req(("document", "d1"), "nosuch", ("user", "ann"), full()))
            .await
            .unwrap_err();
        assert_eq!(
            (e.code(), reason(&e).as_str()),
            (Code::FailedPrecondition, "ERROR_REASON_UNKNOWN_RELATION_OR_PERMISSION")
        );
        let other = Server::start(&["--memory"]);
        let mut c2 = clients(other.grpc, Some(KEY)).await;
        write_schema(&mut c2, ZED).await;
        let foreign = write(&mut c2, &["document:d1#owner@user:ann"]).await;
        let e = c
            .perms
            .check_permission(check_req(("document", "d1"), "edit", ("user", "ann"), fresh(&foreign)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("another store"), "{e:?}");
        let garbage = pb::ZedToken { token: "garbage!".into() };
        assert_eq!(
            code_of(
                c.perms
                    .check_permission(check_req(("document", "d1"), "edit", ("user", "ann"), fresh(&garbage)))
                    .await
            ),
            Code::InvalidArgument
        );

        // A bad schema is refused with line:col and nothing changes.
        let e = c
            .schema
            .write_schema(pb::WriteSchemaRequest {
                schema: "definition user {\n  relation x: nosuch\n}".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument);
        assert!(e.message().contains("schema:2:"), "{}", e.message());
        let text = c.schema.read_schema(pb::ReadSchemaRequest {}).await.unwrap().into_inner().schema_text;
        assert_eq!(text, ZED);
        // A schema that would orphan stored relationships is refused, naming why.
        let e = c
            .schema
            .write_schema(pb::WriteSchemaRequest {
                schema: "definition user {}\ndefinition document {}".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
        assert_eq!(
            check(&mut c, ("document", "d1"), "edit", ("user", "ann"), full()).await,
            Permissionship::HasPermission as i32
        );
    });
}

#[test]
fn tokens_give_read_your_writes_and_wait_for_a_revision_within_the_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let server = Server::start(&["--store", store.to_str().unwrap(), "--deadline-ms", "500"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        let t1 = write(&mut c, &["document:d1#viewer@user:ann"]).await;
        let t2 = c
            .perms
            .delete_relationships(pb::DeleteRelationshipsRequest {
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .deleted_at
            .unwrap();
        let has = Permissionship::HasPermission as i32;
        let no = Permissionship::NoPermission as i32;
        assert_eq!(check(&mut c, ("document", "d1"), "view", ("user", "ann"), fresh(&t2)).await, no);
        // The durable store keeps history: the revision of t1 is readable exactly.
        assert_eq!(check(&mut c, ("document", "d1"), "view", ("user", "ann"), exact(&t1)).await, has);
        assert_eq!(check(&mut c, ("document", "d1"), "view", ("user", "ann"), exact(&t2)).await, no);
        // An answer's token names the revision it read: the latest one (which the server keeps
        // encoded) as well as an older one, in any order.
        for (asked, read) in [(fresh(&t2), &t2), (exact(&t1), &t1), (full(), &t2), (exact(&t1), &t1)] {
            let answer = c
                .perms
                .check_permission(check_req(("document", "d1"), "view", ("user", "ann"), asked))
                .await
                .unwrap()
                .into_inner();
            assert_eq!(answer.checked_at.as_ref(), Some(read));
        }
        // A token from the future: the server waits for it, up to its deadline.
        let id = purview::server::token::decode(&[0; 16], &t2.token).err();
        assert!(id.is_some(), "tokens name their store");
        let future = token_ahead(&t2, 1);
        let started = std::time::Instant::now();
        let e = c
            .perms
            .check_permission(check_req(("document", "d1"), "view", ("user", "ann"), fresh(&future)))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // ... and answers as soon as the revision arrives.
        let mut waiting = c.perms.clone();
        let pending = tokio::spawn(async move {
            waiting
                .check_permission(check_req(("document", "d1"), "view", ("user", "ann"), fresh(&future)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        write(&mut c, &["document:d1#viewer@user:ann"]).await;
        let answer = pending.await.unwrap().unwrap().into_inner();
        assert_eq!(answer.permissionship, has);
    });
}

#[test]
fn watch_streams_changes_from_a_token_filtered_by_type_and_resumes() {
    let server = Server::start(&["--memory"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        let start = write_schema(&mut c, ZED).await;
        let mut stream = c
            .watch
            .watch(pb::WatchRequest {
                optional_object_types: vec!["document".into()],
                optional_start_cursor: Some(start.clone()),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let t1 = write(&mut c, &["group:g1#member@user:ann", "document:d1#viewer@user:ann"]).await;
        let t2 = c
            .perms
            .write_relationships(pb::WriteRelationshipsRequest {
                updates: vec![update(Op::Delete, rel("document:d1#viewer@user:ann"))],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .written_at
            .unwrap();
        let first =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(first.changes_through.as_ref(), Some(&t1));
        // Only the document: the group is filtered out.
        assert_eq!(first.updates.len(), 1, "{first:?}");
        assert_eq!(first.updates[0].operation, Op::Touch as i32);
        let second =
            tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(second.changes_through.as_ref(), Some(&t2));
        assert_eq!(second.updates[0].operation, Op::Delete as i32);

        // Resuming from t1 replays exactly what came after it.
        let mut resumed = c
            .watch
            .watch(pb::WatchRequest { optional_start_cursor: Some(t1), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let again =
            tokio::time::timeout(Duration::from_secs(5), resumed.next()).await.unwrap().unwrap().unwrap();
        assert_eq!(again.changes_through.as_ref(), Some(&t2));
        assert_eq!(again.updates.len(), 1);

        // Checkpoints when asked for.
        let mut with_checkpoints = c
            .watch
            .watch(pb::WatchRequest {
                optional_start_cursor: Some(t2.clone()),
                optional_update_kinds: vec![pb::WatchKind::IncludeCheckpoints as i32],
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let cp = tokio::time::timeout(Duration::from_secs(5), with_checkpoints.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(cp.is_checkpoint);
        assert_eq!(cp.changes_through.as_ref(), Some(&t2));
    });
}

#[test]
fn bulk_import_and_export_round_trip_and_a_bad_import_keeps_nothing() {
    let server = Server::start(&["--memory"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        let rels: Vec<pb::Relationship> =
            (0..2500).map(|i| rel(&format!("document:d{i}#viewer@user:u{}", i % 7))).collect();
        let batches: Vec<pb::ImportBulkRelationshipsRequest> = rels
            .chunks(1000)
            .map(|c| pb::ImportBulkRelationshipsRequest { relationships: c.to_vec() })
            .collect();
        let loaded =
            c.perms.import_bulk_relationships(tokio_stream::iter(batches)).await.unwrap().into_inner();
        assert_eq!(loaded.num_loaded, 2500);

        // A bad relationship in the last batch: nothing of the import is kept.
        let bad = vec![
            pb::ImportBulkRelationshipsRequest { relationships: vec![rel("document:x1#viewer@user:new")] },
            pb::ImportBulkRelationshipsRequest { relationships: vec![rel("document:x2#nosuch@user:new")] },
        ];
        let e = c.perms.import_bulk_relationships(tokio_stream::iter(bad)).await.unwrap_err();
        assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

        let mut exported = Vec::new();
        let mut cursor = None;
        loop {
            let mut stream = c
                .perms
                .export_bulk_relationships(pb::ExportBulkRelationshipsRequest {
                    consistency: full(),
                    optional_limit: 1000,
                    optional_cursor: cursor.clone(),
                    optional_relationship_filter: None,
                })
                .await
                .unwrap()
                .into_inner();
            let mut got = 0;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.unwrap();
                got += chunk.relationships.len();
                exported.extend(chunk.relationships);
                cursor = chunk.after_result_cursor;
            }
            if got < 1000 {
                break;
            }
        }
        let key = |r: &pb::Relationship| format!("{r:?}");
        let mut a: Vec<String> = rels.iter().map(key).collect();
        let mut b: Vec<String> = exported.iter().map(key).collect();
        a.sort();
        b.sort();
        assert_eq!(a, b);
    });
}

#[test]
fn keys_are_required_and_checked_and_health_is_open() {
    // No key and no --insecure-no-auth: refuses to start, saying what to do.
    let r = crate::cli::purview(&["serve", "--memory"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("--preshared-key"), "{}", r.stderr);

    let server = Server::start(&["--memory"]);
    runtime().block_on(async {
        for key in [None, Some("wrong-key")] {
            let mut c = clients(server.grpc, key).await;
            let e = c.schema.read_schema(pb::ReadSchemaRequest {}).await.unwrap_err();
            assert_eq!(e.code(), Code::Unauthenticated, "key {key:?}");
        }
        let mut health = tonic_health::pb::health_client::HealthClient::new(channel(server.grpc).await);
        let h = health
            .check(tonic_health::pb::HealthCheckRequest { service: String::new() })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(h.status, tonic_health::pb::health_check_response::ServingStatus::Serving as i32);
    });
    // A key given through the environment or a file works the same, and never reaches the log.
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::write(&keys, "# keys\nfile-key-abcdef\n").unwrap();
    let server = Server::start_raw(&["--memory", "--preshared-key-file", keys.to_str().unwrap()]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some("file-key-abcdef")).await;
        c.schema.write_schema(pb::WriteSchemaRequest { schema: ZED.into() }).await.unwrap();
        let mut wrong = clients(server.grpc, Some(KEY)).await;
        assert_eq!(code_of(wrong.schema.read_schema(pb::ReadSchemaRequest {}).await), Code::Unauthenticated);
    });
    assert!(!server.log().contains("file-key-abcdef"));
}

#[test]
fn load_beyond_the_concurrency_limit_is_shed_with_resource_exhausted() {
    let server = Server::start(&["--memory", "--max-concurrent", "2", "--deadline-ms", "1500"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        // Hold both slots with requests that wait for a revision not written yet (a watch would
        // not do: its slot is released once it is set up).
        let t = write(&mut c, &["document:d1#viewer@user:ann"]).await;
        let future = token_ahead(&t, 100);
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut p = c.perms.clone();
            let f = future.clone();
            held.push(tokio::spawn(async move {
                p.check_permission(check_req(("document", "d1"), "view", ("user", "ann"), fresh(&f))).await
            }));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        let e = c
            .perms
            .check_permission(check_req(("document", "d1"), "view", ("user", "ann"), full()))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::ResourceExhausted, "{e:?}");
        for h in held {
            assert_eq!(h.await.unwrap().unwrap_err().code(), Code::DeadlineExceeded);
        }
        // Once the load is gone, the server answers again.
        assert_eq!(
            check(&mut c, ("document", "d1"), "view", ("user", "ann"), full()).await,
            Permissionship::HasPermission as i32
        );
    });
}

#[test]
fn malformed_and_oversized_messages_get_a_status_and_the_server_keeps_serving() {
    let mut server = Server::start(&["--memory", "--max-request-bytes", "20000"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        // Raw bytes that are not a CheckPermissionRequest, sent through a byte codec.
        let ch = channel(server.grpc).await;
        let mut raw = tonic::client::Grpc::new(ch);
        raw.ready().await.unwrap();
        let mut req = tonic::Request::new(bytes::Bytes::from_static(&[0xff, 0xff, 0xff, 0x07, 0x01, 0x02]));
        req.metadata_mut().insert("authorization", format!("Bearer {KEY}").parse().unwrap());
        let path = http::uri::PathAndQuery::from_static("/authzed.api.v1.PermissionsService/CheckPermission");
        let r: Result<tonic::Response<bytes::Bytes>, _> = raw.unary(req, path, RawCodec).await;
        assert_eq!(r.unwrap_err().code(), Code::Internal);
        // A message over the size limit.
        let big: Vec<String> =
            (0..900).map(|i| format!("document:d{i}#viewer@user:someone_with_a_long_name_{i}")).collect();
        let big: Vec<&str> = big.iter().map(String::as_str).collect();
        let e = c.perms.write_relationships(touch(&big)).await.unwrap_err();
        assert!(
            matches!(e.code(), Code::OutOfRange | Code::ResourceExhausted | Code::InvalidArgument),
            "{e:?}"
        );
        // A client that goes away in the middle of a large stream.
        let many: Vec<String> = (0..900).map(|i| format!("document:x{i}#viewer@user:*")).collect();
        for chunk in many.chunks(200) {
            let chunk: Vec<&str> = chunk.iter().map(String::as_str).collect();
            write(&mut c, &chunk).await;
        }
        {
            let mut stream = c
                .perms
                .lookup_resources(pb::LookupResourcesRequest {
                    consistency: full(),
                    resource_object_type: "document".into(),
                    permission: "view".into(),
                    subject: Some(subj("user", "ann", "")),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            stream.next().await.unwrap().unwrap();
            // Dropped here, mid-stream.
        }
        assert_eq!(
            check(&mut c, ("document", "x1"), "view", ("user", "ann"), full()).await,
            Permissionship::HasPermission as i32
        );
    });
    assert!(server.alive());
    assert!(!server.log().contains("panicked"), "{}", server.log());
}

/// Sends and receives raw bytes (for malformed messages).
#[derive(Clone, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = bytes::Bytes;
    type Decode = bytes::Bytes;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: bytes::Bytes,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), tonic::Status> {
        use bytes::BufMut;
        dst.put(item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = bytes::Bytes;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<bytes::Bytes>, tonic::Status> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining())))
    }
}

#[test]
fn a_reader_that_stalls_longer_than_the_deadline_gets_an_error_not_a_short_answer() {
    let server = Server::start(&["--memory", "--deadline-ms", "400"]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        write_schema(&mut c, ZED).await;
        for chunk in 0..10 {
            let rels: Vec<String> =
                (0..1000).map(|i| format!("document:s{chunk}x{i}#viewer@user:*")).collect();
            let rels: Vec<&str> = rels.iter().map(String::as_str).collect();
            write(&mut c, &rels).await;
        }
        // A client with small HTTP/2 windows, so that the server feels it stall.
        let small = Channel::from_shared(format!("http://{}", server.grpc))
            .unwrap()
            .initial_stream_window_size(Some(16 * 1024))
            .initial_connection_window_size(Some(16 * 1024))
            .connect()
            .await
            .unwrap();
        let mut slow = pb::permissions_service_client::PermissionsServiceClient::with_interceptor(
            small,
            Bearer(Some(KEY.into())),
        );
        let mut stream = slow
            .lookup_resources(pb::LookupResourcesRequest {
                consistency: full(),
                resource_object_type: "document".into(),
                permission: "view".into(),
                subject: Some(subj("user", "ann", "")),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        stream.next().await.unwrap().unwrap();
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut received = 1;
        let mut last = None;
        while let Some(item) = stream.next().await {
            match item {
                Ok(_) => received += 1,
                Err(e) => {
                    last = Some(e);
                    break;
                }
            }
        }
        assert!(received < 10_000, "the stream was cut");
        let e = last.expect("a cut stream ends with an error");
        assert_eq!(e.code(), Code::DeadlineExceeded, "{e:?}");
        // A steady reader gets everything.
        let all = lookup_resources(&mut c, "document", "view", ("user", "ann"), 0, None).await;
        assert_eq!(all.len(), 10_000);
    });
}
