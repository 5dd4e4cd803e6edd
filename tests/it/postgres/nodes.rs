//! `purview serve --datastore` nodes on one PostgreSQL database, through the gRPC API: a node
//! killed with kill -9 catches up when restarted; PostgreSQL restarted (crashed) under load
//! loses no acknowledged write and both nodes recover without a restart of their own; writers
//! on two nodes at once end with both nodes' exports equal to the rows in PostgreSQL and an
//! `at most 1` relation never with two holders.

use super::Pg;
use crate::server::{clients, fresh, full, pb, rel, runtime, touch, update, Clients, Server, ZED};
use pb::relationship_update::Operation;
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_stream::StreamExt;

fn text(r: &pb::Relationship) -> String {
    let o = r.resource.as_ref().unwrap();
    let s = r.subject.as_ref().unwrap();
    let so = s.object.as_ref().unwrap();
    let srel =
        if s.optional_relation.is_empty() { String::new() } else { format!("#{}", s.optional_relation) };
    format!("{}:{}#{}@{}:{}{srel}", o.object_type, o.object_id, r.relation, so.object_type, so.object_id)
}

/// Every relationship a node holds, fully consistent (ExportBulkRelationships, paged).
async fn export(c: &mut Clients) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
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
            out.extend(chunk.relationships.iter().map(text));
            cursor = chunk.after_result_cursor;
        }
        if got < 1000 {
            return out;
        }
    }
}

/// The live relationships in PostgreSQL, by name (its `purview_relationships` view).
fn rows(pg: &Pg) -> BTreeSet<String> {
    pg.psql(
        "SELECT resource_type || ':' || resource_id || '#' || relation || '@' || subject_type || ':' \
         || subject_id || coalesce('#' || subject_relation, '') FROM purview_relationships",
    )
    .lines()
    .map(str::to_string)
    .collect()
}

async fn write_schema(c: &mut Clients, schema: &str) {
    c.schema.write_schema(pb::WriteSchemaRequest { schema: schema.into() }).await.unwrap();
}

fn node(pg: &Pg, extra: &[&str]) -> Server {
    Server::start(&[&["--datastore", &pg.url, "--poll-ms", "200"], extra].concat())
}

async fn has(c: &mut Clients, r: &str, token: &pb::ZedToken) -> bool {
    let rr = rel(r);
    let req = pb::CheckPermissionRequest {
        consistency: fresh(token),
        resource: rr.resource,
        permission: rr.relation,
        subject: rr.subject,
        context: None,
        with_tracing: false,
    };
    let got = c.perms.check_permission(req).await.unwrap().into_inner();
    got.permissionship == pb::check_permission_response::Permissionship::HasPermission as i32
}

#[test]
fn a_killed_node_catches_up_and_a_postgres_crash_under_load_loses_nothing_acknowledged() {
    let pg = Pg::start();
    pg.migrate();
    let snapshots = tempfile::tempdir().unwrap();
    let snap = snapshots.path().to_str().unwrap().to_string();
    let a = node(&pg, &[]);
    let mut b = node(&pg, &["--snapshot-dir", &snap]);
    let rt = runtime();
    rt.block_on(async {
        let mut ca = clients(a.grpc, Some(crate::server::KEY)).await;
        write_schema(&mut ca, ZED).await;
        let t = ca.perms.write_relationships(touch(&["document:d0#viewer@user:u0"])).await.unwrap();
        let token = t.into_inner().written_at.unwrap();
        let mut cb = clients(b.grpc, Some(crate::server::KEY)).await;
        assert!(has(&mut cb, "document:d0#view@user:u0", &token).await, "B reads A's write with A's token");
    });

    // kill -9 B, write on A, restart B (from its snapshot directory): B has every write.
    b.kill9();
    drop(b);
    let last = rt.block_on(async {
        let mut ca = clients(a.grpc, Some(crate::server::KEY)).await;
        let mut last = None;
        for i in 0..50 {
            let w = ca.perms.write_relationships(touch(&[&format!("document:k{i}#viewer@user:u{i}")])).await;
            last = w.unwrap().into_inner().written_at;
        }
        last.unwrap()
    });
    let b = node(&pg, &["--snapshot-dir", &snap]);
    rt.block_on(async {
        let mut cb = clients(b.grpc, Some(crate::server::KEY)).await;
        for i in 0..50 {
            assert!(
                has(&mut cb, &format!("document:k{i}#view@user:u{i}"), &last).await,
                "the restarted node lacks write {i}:\n{}",
                b.log()
            );
        }
    });

    // Writers on both nodes and readers on B; PostgreSQL crashes (immediate stop) and comes back.
    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let failed = Arc::new(AtomicUsize::new(0));
    let read_errors = Arc::new(AtomicUsize::new(0));
    let reads = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let addrs = [a.grpc, b.grpc];
    let load = std::thread::spawn({
        let (acknowledged, failed, read_errors, reads, stop) =
            (acknowledged.clone(), failed.clone(), read_errors.clone(), reads.clone(), stop.clone());
        move || {
            let rt = runtime();
            rt.block_on(async move {
                let mut tasks = Vec::new();
                for w in 0..4usize {
                    let (acknowledged, failed, stop) = (acknowledged.clone(), failed.clone(), stop.clone());
                    let addr = addrs[w % 2];
                    tasks.push(tokio::spawn(async move {
                        let mut c = clients(addr, Some(crate::server::KEY)).await;
                        let mut i = 0;
                        while !stop.load(Ordering::Relaxed) {
                            let r = format!("document:w{w}n{i}#viewer@user:u{i}");
                            i += 1;
                            match c.perms.write_relationships(touch(&[&r])).await {
                                Ok(_) => acknowledged.lock().unwrap().push(r),
                                Err(e) => {
                                    assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    tokio::time::sleep(Duration::from_millis(20)).await;
                                }
                            }
                        }
                    }));
                }
                let (read_errors, reads, stop) = (read_errors.clone(), reads.clone(), stop.clone());
                tasks.push(tokio::spawn(async move {
                    let mut c = clients(addrs[1], Some(crate::server::KEY)).await;
                    while !stop.load(Ordering::Relaxed) {
                        let req = crate::server::check_req(("document", "d0"), "view", ("user", "u0"), None);
                        match c.perms.check_permission(req).await {
                            Ok(r) if r.get_ref().permissionship == 2 => reads.fetch_add(1, Ordering::Relaxed),
                            _ => read_errors.fetch_add(1, Ordering::Relaxed),
                        };
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                }));
                for t in tasks {
                    t.await.unwrap();
                }
            });
        }
    });
    std::thread::sleep(Duration::from_millis(800));
    pg.stop("immediate");
    std::thread::sleep(Duration::from_millis(1500));
    let during = reads.load(Ordering::Relaxed);
    pg.start_again();
    // Both nodes write again without a restart of their own.
    assert!(
        super::eventually(Duration::from_secs(30), || {
            let before = acknowledged.lock().unwrap().len();
            std::thread::sleep(Duration::from_millis(300));
            acknowledged.lock().unwrap().iter().skip(before).any(|r| r.starts_with("document:w0"))
                && acknowledged.lock().unwrap().iter().skip(before).any(|r| r.starts_with("document:w1"))
        }),
        "the nodes did not write again after PostgreSQL came back:\nA:\n{}\nB:\n{}",
        a.log(),
        b.log()
    );
    stop.store(true, Ordering::Relaxed);
    load.join().unwrap();
    assert!(failed.load(Ordering::Relaxed) > 0, "writes failed while PostgreSQL was down");
    assert_eq!(read_errors.load(Ordering::Relaxed), 0, "reads on B kept answering from its index");
    assert!(reads.load(Ordering::Relaxed) > during, "reads went on");
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 20);
    rt.block_on(async {
        let mut ca = clients(a.grpc, Some(crate::server::KEY)).await;
        let mut cb = clients(b.grpc, Some(crate::server::KEY)).await;
        let (ea, eb) = (export(&mut ca).await, export(&mut cb).await);
        let db = rows(&pg);
        for r in &acknowledged {
            assert!(db.contains(r), "acknowledged write {r} is not in PostgreSQL");
            assert!(ea.contains(r) && eb.contains(r), "acknowledged write {r} is missing on a node");
        }
        assert_eq!(ea, db, "node A equals the database");
        assert_eq!(eb, db, "node B equals the database");
    });
}

#[test]
fn writers_on_two_nodes_agree_with_postgres_and_keep_an_at_most_one_constraint() {
    let pg = Pg::start();
    pg.migrate();
    let a = node(&pg, &[]);
    let b = node(&pg, &[]);
    let rt = runtime();
    let (refused, written) = rt.block_on(async {
        let mut ca = clients(a.grpc, Some(crate::server::KEY)).await;
        // A Purview schema (constraints are Purview's): `doc` with `at most 1 owner`.
        write_schema(&mut ca, super::props::SCHEMA).await;
        let refused = Arc::new(AtomicUsize::new(0));
        let written = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for w in 0..8u64 {
            let addr = [a.grpc, b.grpc][(w % 2) as usize];
            let (refused, written) = (refused.clone(), written.clone());
            tasks.push(tokio::spawn(async move {
                let mut c = clients(addr, Some(crate::server::KEY)).await;
                let mut x = 0x2545_f491_4f6c_dd1d_u64 ^ (w + 1);
                for i in 0..1000u64 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let (d, u) = (x % 40, (x >> 8) % 40);
                    let (op, r) = match i % 5 {
                        0 => (Operation::Delete, format!("doc:d{d}#viewer@user:u{u}")),
                        1 => (Operation::Touch, format!("doc:d{d}#owner@user:u{u}")),
                        2 if i % 3 == 0 => (Operation::Delete, format!("doc:d{d}#owner@user:u{u}")),
                        _ => (Operation::Touch, format!("doc:d{d}#viewer@user:u{u}")),
                    };
                    let req = pb::WriteRelationshipsRequest {
                        updates: vec![update(op, rel(&r))],
                        optional_preconditions: vec![],
                        optional_transaction_metadata: None,
                    };
                    match c.perms.write_relationships(req).await {
                        Ok(_) => written.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{r}: {e:?}");
                            refused.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        (refused.load(Ordering::Relaxed), written.load(Ordering::Relaxed))
    });
    assert_eq!(refused + written, 8000);
    assert!(refused > 0, "second owners were refused");
    rt.block_on(async {
        let mut ca = clients(a.grpc, Some(crate::server::KEY)).await;
        let mut cb = clients(b.grpc, Some(crate::server::KEY)).await;
        let (ea, eb) = (export(&mut ca).await, export(&mut cb).await);
        let db = rows(&pg);
        assert_eq!(ea, db, "node A's export equals the rows in PostgreSQL");
        assert_eq!(eb, db, "node B's export equals the rows in PostgreSQL");
        let owners: Vec<&String> = db.iter().filter(|r| r.contains("#owner@")).collect();
        let docs: BTreeSet<&str> = owners.iter().map(|r| r.split('#').next().unwrap()).collect();
        assert_eq!(owners.len(), docs.len(), "a document has two owners: {owners:?}");
    });
}

/// CREATE, preconditions and DeleteRelationships by filter across nodes: each write is judged on
/// the latest state of the database, whichever node wrote it.
#[test]
fn create_preconditions_and_deletes_by_filter_see_the_other_nodes_writes() {
    let pg = Pg::start();
    pg.migrate();
    let a = node(&pg, &[]);
    let b = node(&pg, &[]);
    let rt = runtime();
    rt.block_on(async {
        let mut ca = clients(a.grpc, Some(crate::server::KEY)).await;
        let mut cb = clients(b.grpc, Some(crate::server::KEY)).await;
        write_schema(&mut ca, ZED).await;
        let create = |r: &str| pb::WriteRelationshipsRequest {
            updates: vec![update(Operation::Create, rel(r))],
            optional_preconditions: vec![],
            optional_transaction_metadata: None,
        };
        // Created on A, created again at once on B: ALREADY_EXISTS (B judged it caught up).
        for i in 0..20 {
            let r = format!("document:c{i}#viewer@user:u{i}");
            ca.perms.write_relationships(create(&r)).await.unwrap();
            let e = cb.perms.write_relationships(create(&r)).await.unwrap_err();
            assert_eq!(e.code(), tonic::Code::AlreadyExists, "{r}: {e:?}");
        }
        // A precondition on B sees A's latest write.
        let filter = |id: &str| pb::RelationshipFilter {
            resource_type: "document".into(),
            optional_resource_id: id.into(),
            optional_resource_id_prefix: String::new(),
            optional_relation: "viewer".into(),
            optional_subject_filter: None,
        };
        let must_not = pb::Precondition {
            operation: pb::precondition::Operation::MustNotMatch as i32,
            filter: Some(filter("c3")),
        };
        let mut guarded = touch(&["document:c3#owner@user:u3"]);
        guarded.optional_preconditions = vec![must_not];
        let e = cb.perms.write_relationships(guarded).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        // Delete by filter on B, of what A wrote; A reads the result with B's token.
        let deleted = cb
            .perms
            .delete_relationships(pb::DeleteRelationshipsRequest {
                relationship_filter: Some(pb::RelationshipFilter {
                    resource_type: "document".into(),
                    optional_resource_id: String::new(),
                    optional_resource_id_prefix: "c1".into(),
                    optional_relation: "viewer".into(),
                    optional_subject_filter: None,
                }),
                optional_preconditions: vec![],
                optional_limit: 0,
                optional_allow_partial_deletions: false,
                optional_transaction_metadata: None,
            })
            .await
            .unwrap()
            .into_inner();
        let token = deleted.deleted_at.unwrap();
        // c1 and c10..c19: eleven relationships.
        assert_eq!(deleted.relationships_deleted_count, 11);
        assert!(!has(&mut ca, "document:c1#view@user:u1", &token).await);
        assert!(!has(&mut ca, "document:c15#view@user:u15", &token).await);
        assert!(has(&mut ca, "document:c2#view@user:u2", &token).await);
        let (ea, eb) = (export(&mut ca).await, export(&mut cb).await);
        assert_eq!(ea, eb);
        assert_eq!(ea, rows(&pg));
        assert_eq!(ea.len(), 9);
    });
}
