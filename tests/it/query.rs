//! The query language: golden files for accepted and rejected queries, and properties.
//!
//! `tests/data/query/ok/*.q` must parse; beside each, `.out` holds the canonical form of every
//! query, one a line. `tests/data/query/err/*.q` must fail; `.err` holds the rendered diagnostics.
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate change.

use proptest::prelude::*;
use purview::diag::SourceFile;
use purview::query::parse_queries;
use std::path::{Path, PathBuf};

fn cases(dir: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/query").join(dir);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "q"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
}

/// Compares `actual` with the file beside `case` with extension `ext`, or rewrites it.
fn golden(case: &Path, ext: &str, actual: &str) -> Result<(), String> {
    let expected_path = case.with_extension(ext);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&expected_path, actual).unwrap();
        return Ok(());
    }
    let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
    if expected == actual {
        Ok(())
    } else {
        Err(format!(
            "{}: output differs from {}\n--- expected\n{expected}\n--- actual\n{actual}",
            case.display(),
            expected_path.display()
        ))
    }
}

#[test]
fn accepted_queries_match_their_canonical_forms() {
    let mut failures = Vec::new();
    for case in cases("ok") {
        let text = std::fs::read_to_string(&case).unwrap();
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let queries = match parse_queries(&text) {
            Ok(q) => q,
            Err(d) => {
                failures.push(format!("{name} should parse:\n{}", d.render(&SourceFile::new(&name, &text))));
                continue;
            }
        };
        let canonical: String = queries.iter().map(|q| format!("{q}\n")).collect();
        // The canonical form parses back to the same queries.
        assert_eq!(parse_queries(&canonical).unwrap(), queries, "{name}");
        if let Err(e) = golden(&case, "out", &canonical) {
            failures.push(e);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn rejected_queries_match_their_diagnostics() {
    let mut failures = Vec::new();
    for case in cases("err") {
        let text = std::fs::read_to_string(&case).unwrap();
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        match parse_queries(&text) {
            Ok(q) => failures.push(format!("{name} should fail, parsed as {q:?}")),
            Err(d) => {
                if let Err(e) = golden(&case, "err", &d.render(&SourceFile::new(&name, &text))) {
                    failures.push(e);
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Tokens of the query language, glued at random, and arbitrary text.
fn query_text() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        "(check|who|what|expand|explain|subset|can|in|every|with|at|limit|after|CHECK)",
        "[a-z]{1,3}(:[a-z0-9*]{1,3})?(#[a-z.]{1,3})?(@[a-z]{1,3}(:[a-z*]{1,2})?(#[a-z]{1,2})?)?",
        r#"(\{"a": ?[0-9]\}|\{|\}|"x|"y z"|2024-05-01T00:00:00Z|[0-9]{1,3}|;|\n|// c|# c|#)"#,
        any::<String>(),
    ];
    prop::collection::vec(token, 0..12).prop_map(|ts| ts.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// The parser never panics; what it accepts prints in a canonical form that parses back to
    /// the same queries.
    #[test]
    fn parsing_never_panics_and_canonical_forms_round_trip(text in query_text()) {
        if let Ok(queries) = parse_queries(&text) {
            let canonical: Vec<String> = queries.iter().map(ToString::to_string).collect();
            let again = parse_queries(&canonical.join("\n"));
            prop_assert_eq!(again.as_ref().ok(), Some(&queries), "{:?}", canonical);
        }
    }
}

/// A fixed schema from the property-test generator: `doc` with `r0: user | user:* | group#member
/// | user with big`, `r1: user` and `p0 = r0 - r1`; `big(x: int)` is `x > 5`.
fn snapshot(data: &str) -> purview::api::View {
    snapshot_with(data, purview::api::Engine::default())
}

fn snapshot_with(data: &str, engine: purview::api::Engine) -> purview::api::View {
    use crate::gen::{ExprGen, SchemaGen, SubjGen};
    let sg = SchemaGen {
        relations: vec![
            vec![SubjGen::User, SubjGen::UserWild, SubjGen::GroupMember, SubjGen::UserCond],
            vec![SubjGen::User],
        ],
        permissions: vec![ExprGen::Excl(Box::new(ExprGen::Rel(0)), Box::new(ExprGen::Rel(1)))],
        group_wildcard: false,
    };
    let pv = purview::Purview::with_engine(sg.compile().unwrap(), engine);
    pv.write_text(data).unwrap();
    pv.snapshot()
}

fn answers(snap: &purview::api::View, text: &str, opts: &purview::EvalOptions) -> Vec<String> {
    let queries = parse_queries(text).unwrap();
    purview::query::validate_queries(snap.schema(), &queries).unwrap();
    queries.iter().map(|q| purview::query::run_query(snap, q, opts).render()).collect()
}

#[test]
fn answers_render_for_people() {
    let snap = snapshot(
        "doc:d0#r0@user:*\ndoc:d0#r1@user:bob\ndoc:d1#r0@user:ann[big]\ndoc:d2#r0@group:g0#member\ngroup:g0#member@user:ann",
    );
    let opts = purview::EvalOptions::default();
    let out = answers(
        &snap,
        r#"check doc:d0#p0@user:ann
           check doc:d0#p0@user:bob
           check doc:d1#p0@user:ann
           check doc:d1#p0@user:ann with {"x": 9}
           who doc:d0#p0@user
           who doc:d1#p0@user
           who doc:d3#p0@user
           what doc#p0@user:ann limit 2
           what doc#p0@user:ann limit 2 after 2"#,
        &opts,
    );
    assert_eq!(
        out,
        [
            "allowed\n",
            "denied\n",
            "conditional (missing: x)\n",
            "allowed\n",
            "user:* except user:bob\n",
            "user:ann (conditional)\n",
            "(no subjects)\n",
            "doc:d0\ndoc:d1 (conditional)\nnext cursor: 2\n",
            "doc:d2\n",
        ]
    );
    let explain = answers(&snap, "explain doc:d2#p0@user:ann", &opts).remove(0);
    assert!(explain.starts_with("allowed\n"), "{explain}");
    assert!(explain.contains("group:g0#member"), "{explain}");
    let expand = answers(&snap, "expand doc:d0#p0", &opts).remove(0);
    assert!(expand.contains("doc:d0#r0@user:*"), "{expand}");
}

#[test]
fn answers_serialize_with_the_query_in_canonical_form() {
    let snap = snapshot("doc:d1#r0@user:ann[big]");
    let q = &parse_queries("check user:ann can p0 doc:d1").unwrap()[0];
    let out = purview::query::run_query(&snap, q, &purview::EvalOptions::default());
    let v = serde_json::to_value(&out).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"op": "check", "query": "check doc:d1#p0@user:ann", "decision": "conditional", "missing": ["x"]})
    );
    let q = &parse_queries("what doc#p0@user:ann").unwrap()[0];
    let v =
        serde_json::to_value(purview::query::run_query(&snap, q, &purview::EvalOptions::default())).unwrap();
    assert_eq!(v["op"], "what");
    assert_eq!(v["objects"][0]["object"], serde_json::json!({"ty": "doc", "id": "d1"}));
}

#[test]
fn failures_are_typed_outputs() {
    use purview::query::{run_query, FailureKind, QueryOutput};
    let chain: String = (0..10).map(|i| format!("group:g{i}#member@group:g{}#member\n", i + 1)).collect();
    // The index answers nested groups from closures; the reference evaluator walks them.
    let snap = snapshot_with(&format!("{chain}doc:d0#r0@group:g0#member"), purview::api::Engine::Reference);
    let mut opts = purview::EvalOptions::default();
    opts.limits.max_depth = 4;
    let q = &parse_queries("check doc:d0#p0@user:ann").unwrap()[0];
    let QueryOutput::Error { error, .. } = run_query(&snap, q, &opts) else { panic!("expected an error") };
    assert_eq!((error.kind, error.code), (FailureKind::Evaluation, "depth-exceeded"));
    let q = &parse_queries("what doc#p0@user:ann after nope").unwrap()[0];
    let QueryOutput::Error { error, .. } = run_query(&snap, q, &purview::EvalOptions::default()) else {
        panic!("expected an error")
    };
    assert_eq!((error.kind, error.code), (FailureKind::Input, "invalid-cursor"));
}

#[test]
fn names_are_checked_against_the_schema_with_suggestions() {
    let snap = snapshot("");
    let queries =
        parse_queries("check dok:d0#p0@user:ann\nwho doc:d0#px0@group#membr\nwhat doc#p0@usr:ann").unwrap();
    let d = purview::query::validate_queries(snap.schema(), &queries).unwrap_err();
    let got: Vec<(&str, Option<&str>)> = d.0.iter().map(|d| (d.code, d.help.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("unknown-type", Some("did you mean `doc`?")),
            ("unknown-relation", Some("did you mean `p0`?")),
            ("unknown-relation", Some("did you mean `member`?")),
            ("unknown-type", Some("did you mean `user`?")),
        ]
    );
    // Every name of a `subset`: the set's, the subject's and the permission, which is the members'
    // type's when the set names it, else any type's.
    let queries = parse_queries(
        "subset doc:d0#rr0 in usr:ann#p0\nsubset dok#r0@user:ann in user:ann#p0\n\
         subset doc#r0@group:g0#membr in user:ann#px0\nsubset doc:d0#r0 in group:g0#member#pp0",
    )
    .unwrap();
    let d = purview::query::validate_queries(snap.schema(), &queries).unwrap_err();
    let got: Vec<(&str, Option<&str>)> = d.0.iter().map(|d| (d.code, d.help.as_deref())).collect();
    assert_eq!(
        got,
        [
            ("unknown-relation", Some("did you mean `r0`?")),
            ("unknown-type", Some("did you mean `user`?")),
            ("unknown-type", Some("did you mean `doc`?")),
            ("unknown-relation", Some("did you mean `member`?")),
            ("unknown-relation", Some("did you mean `p0`?")),
            ("unknown-relation", Some("did you mean `p0`?")),
        ]
    );
    let text = "subset doc:d0#r0 in user:ann#pp0";
    let d = purview::query::validate_queries(snap.schema(), &parse_queries(text).unwrap()).unwrap_err();
    assert_eq!(d.0[0].message, "no type of the schema has a relation or permission `pp0`");
    assert_eq!(&text[d.0[0].span.start..d.0[0].span.end], "pp0");
}

#[test]
fn subset_answers_holds_missing_and_conditional() {
    use purview::query::{run_query, QueryOutput};
    use purview::Decision;
    // `doc#r0@user:bob` is {d0, d2}; `doc#r0@user:ann` is {d1} only if `big` holds.
    let snap = snapshot("doc:d0#r0@user:bob\ndoc:d2#r0@user:bob\ndoc:d1#r0@user:ann[big]\ndoc:d0#r0@user:cy");
    let opts = purview::EvalOptions::default();
    let out = answers(
        &snap,
        r#"subset doc#r0@user:bob in user:bob#p0
           subset doc#r0@user:bob in user:cy#r0
           subset user:cy can r0 every doc#r0@user:ann
           subset doc#r0@user:ann in user:cy#r0 with {"x": 9}
           subset doc#r0@user:ann in user:cy#r0 with {"x": 1}"#,
        &opts,
    );
    assert_eq!(
        out,
        [
            "holds\n",
            "does not hold\nmissing: doc:d2\n",
            "holds conditionally\nconditional: doc:d1\n",
            "does not hold\nmissing: doc:d1\n",
            "holds\n",
        ]
    );
    let decision = |text: &str| {
        let q = &parse_queries(text).unwrap()[0];
        run_query(&snap, q, &opts).decision().cloned()
    };
    assert_eq!(decision("subset doc#r0@user:bob in user:bob#p0"), Some(Decision::Allowed));
    assert_eq!(decision("subset doc#r0@user:bob in user:cy#r0"), Some(Decision::Denied));
    assert_eq!(
        decision("subset doc#r0@user:ann in user:cy#r0"),
        Some(Decision::Conditional { missing: vec![] })
    );
    let q = &parse_queries("subset user:cy can r0 every doc#r0@user:bob").unwrap()[0];
    let out = run_query(&snap, q, &opts);
    assert!(matches!(out, QueryOutput::Subset { .. }));
    assert_eq!(
        serde_json::to_value(&out).unwrap(),
        serde_json::json!({
            "op": "subset",
            "query": "subset doc#r0@user:bob in user:cy#r0",
            "holds": false,
            "missing": [{"ty": "doc", "id": "d2"}],
            "conditional": [],
        })
    );
}
