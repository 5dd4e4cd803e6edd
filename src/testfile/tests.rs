use super::common::{CheckText, FoundText};
use super::openfga_store::read_tuple_file;
use super::*;
use proptest::prelude::*;

fn yaml(s: &str) -> Value {
    serde_yaml_ng::from_str(s).unwrap()
}

fn run_str(text: &str) -> Result<Report, TestFileError> {
    run_text(Path::new("mem/test.yaml"), text, &RunOptions::default())
}

#[test]
fn check_text_takes_context_and_time_in_either_order() {
    let q = CheckText::parse("doc:d#view@user:bob").unwrap();
    assert_eq!(
        (q.object.to_string(), q.permission.as_str(), q.subject.to_string()),
        ("doc:d".into(), "view", "user:bob".into())
    );
    assert!(q.context.is_empty() && q.at.is_none());
    let q = CheckText::parse(
        r#"doc:d#view@user:bob with {"ip": "10.0.0.1", "s": "a at b"} at 2024-05-01T00:00:00Z"#,
    )
    .unwrap();
    assert_eq!(q.context["s"], "a at b");
    assert_eq!(q.at.unwrap().to_rfc3339(), "2024-05-01T00:00:00+00:00");
    let q = CheckText::parse(r#"doc:d#view@group:eng#member at 2024-05-01T00:00:00Z with {"x":1}"#).unwrap();
    assert_eq!(q.subject.relation.as_deref(), Some("member"));
    assert_eq!(q.context["x"], 1);
}

#[test]
fn check_text_rejects_what_it_cannot_read() {
    for bad in [
        "doc:d#view",
        "doc:d#view@user:bob with [1]",
        "doc:d#view@user:bob with {",
        "doc:d#view@user:bob at yesterday",
        "doc:d#view@user:bob[c]",
        "doc:d#view@user:bob and more",
        r#"doc:d#view@user:bob with {} with {}"#,
    ] {
        assert!(CheckText::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn expected_subjects_read_both_marks_and_exclusions() {
    let a = FoundText::parse("user:sarah[...]").unwrap();
    let b = FoundText::parse("user:sarah (conditional)").unwrap();
    assert_eq!(a, b);
    assert_eq!(a.to_string(), "user:sarah (conditional)");
    let w = FoundText::parse("user:* - {user:carl[...], user:bob}").unwrap();
    assert_eq!(w.to_string(), "user:* - {user:bob, user:carl (conditional)}");
    assert_eq!(FoundText::parse(&w.to_string()).unwrap(), w);
    assert_eq!(FoundText::parse("test/user:someuser#...").unwrap().subject, "test/user:someuser");
    assert_eq!(FoundText::parse("group:eng#member").unwrap().subject, "group:eng#member");
    assert!(FoundText::parse("user:* {user:bob}").is_err());
    assert!(FoundText::parse("nonsense").is_err());
}

#[test]
fn a_conditionally_excluded_subject_need_not_be_listed_twice() {
    use super::common::compare_who;
    let set = |xs: &[&str]| {
        xs.iter().map(|x| FoundText::parse(x).unwrap()).collect::<std::collections::BTreeSet<_>>()
    };
    let found = set(&["user:bob (conditional)", "user:* - {user:bob (conditional)}"]);
    assert_eq!(compare_who(&set(&["user:* - {user:bob[...]}"]), &found), Ok(()));
    assert_eq!(compare_who(&set(&["user:bob[...]", "user:* - {user:bob[...]}"]), &found), Ok(()));
    assert!(compare_who(&set(&["user:*"]), &found).is_err());
    let plain = set(&["user:bob (conditional)"]);
    assert!(compare_who(&set(&[]), &plain).is_err(), "only a wildcard's exclusion makes it optional");
}

#[test]
fn detection_follows_the_documented_order() {
    let dir = Path::new(".");
    let d = |s: &str| detect(&yaml(s), dir);
    assert_eq!(d("purview: 1\nschema: 'definition user {}'"), Ok(Format::Purview));
    assert_eq!(d("tests: [{name: a, stages: []}]"), Ok(Format::OpenFgaTests));
    assert_eq!(d("model: x\ntests: []"), Ok(Format::OpenFgaStore));
    assert_eq!(d("model_file: m.fga"), Ok(Format::OpenFgaStore));
    assert_eq!(d("tests: [{name: a, check: []}]"), Ok(Format::OpenFgaStore));
    assert_eq!(d("schema: |\n  // c\n  /* x\n  type y */\n  definition user {}\n"), Ok(Format::SpiceDb));
    assert_eq!(d("schema: |\n  use expiration\n  caveat c(x int) { x }\n"), Ok(Format::SpiceDb));
    assert_eq!(d("schema: |\n  /// doc\n  type user {}\n"), Ok(Format::Purview));
    assert_eq!(d("schemaFile: a.zed"), Ok(Format::SpiceDb));
    assert_eq!(d("schemaFile: a.pv"), Ok(Format::Purview));
    assert_eq!(d("schema: ''\nvalidation: {}"), Ok(Format::SpiceDb));
    assert_eq!(d("schema: ''\nwho: {}"), Ok(Format::Purview));
    assert!(d("relationships: ''").is_err());
    assert!(d("[1, 2]").is_err());
}

#[test]
fn formats_parse_from_names() {
    for n in Format::NAMES {
        assert_eq!(n.parse::<Format>().unwrap().to_string(), n);
    }
    assert!("xml".parse::<Format>().is_err());
}

#[test]
fn files_that_cannot_run_count_as_one_failure() {
    assert!(matches!(run_str("a: [b"), Err(TestFileError::Yaml { .. })));
    for text in
        ["just text", "relationships: ''", "purview: 1\nbogus: 2", "purview: 1", "tests: 3", "model: x\n"]
    {
        let r = run_str(text).unwrap();
        assert_eq!((r.passed, r.failed), (0, 1), "{text}: {r:?}");
        assert_eq!(r.failures[0].file, "mem/test.yaml");
    }
}

#[test]
fn directories_run_yaml_files_recursively_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path();
    std::fs::create_dir(p.join("sub")).unwrap();
    for f in ["b.yaml", "a.yml", "sub/c.yaml", "skip.yaml.skip", "notes.txt"] {
        std::fs::write(p.join(f), "nonsense: 1").unwrap();
    }
    let r = run_paths(&[p.to_path_buf()], &RunOptions::default()).unwrap();
    let files: Vec<String> =
        r.failures.iter().map(|f| f.file.rsplit(['/', '\\']).next().unwrap().to_string()).collect();
    assert_eq!(files, ["a.yml", "b.yaml", "c.yaml"]);
    assert!(matches!(
        run_paths(&[p.join("missing.yaml")], &RunOptions::default()),
        Err(TestFileError::Io { .. })
    ));
}

#[test]
fn tuple_files_in_every_format() {
    let csv =
        "user_type,user_id,user_relation,relation,object_type,object_id,condition_name,condition_context\n\
               user,anne,,viewer,document,1,,\n\
               group,eng,member,viewer,document,1,cond,\"{\"\"x\"\": 1, \"\"y\"\": 2}\"\n";
    let t = read_tuple_file("t.csv", csv).unwrap();
    assert_eq!(t.len(), 2);
    assert_eq!(t[0].to_string(), "document:1#viewer@user:anne");
    assert_eq!(t[1].user, "group:eng#member");
    assert_eq!(t[1].condition.as_ref().unwrap().context.as_ref().unwrap()["y"], 2);
    let y = read_tuple_file("t.yaml", "- {user: 'user:a', relation: r, object: 'd:1'}").unwrap();
    let j = read_tuple_file("t.json", r#"[{"user": "user:a", "relation": "r", "object": "d:1"}]"#).unwrap();
    let l =
        read_tuple_file("t.jsonl", "{\"user\": \"user:a\", \"relation\": \"r\", \"object\": \"d:1\"}\n\n")
            .unwrap();
    assert!(y == j && j == l && l.len() == 1);
    assert!(read_tuple_file("t.csv", "user,relation\nx,y").is_err());
    assert!(read_tuple_file("t.yaml", "- {user: 'user:a'}").is_err());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// No text makes the runner panic, whatever format it is forced into.
    #[test]
    fn never_panics_on_yamlish_text(
        text in "([a-zA-Z:#@*\\[\\]{}\\-, \"'|>0-9]{0,12}\n?){0,8}",
        format in proptest::option::of(prop_oneof![
            Just(Format::Purview), Just(Format::SpiceDb), Just(Format::OpenFgaTests), Just(Format::OpenFgaStore)
        ]),
    ) {
        let _ = run_text(Path::new("mem/fuzz.yaml"), &text, &RunOptions { format, ..RunOptions::default() });
    }

    #[test]
    fn never_panics_on_assertion_text(text in "[a-z:#@* {}\"\\[\\]0-9.,-]{0,40}") {
        let _ = CheckText::parse(&text);
        let _ = FoundText::parse(&text);
    }
}

/// A small valid schema in each language, for structured fuzzing.
const NATIVE: &str = "purview: 1\nschema: |\n  type user {}\n  type doc {\n    relation viewer: user | user:* | user with c\n    relation banned: user\n    permission view = viewer - banned\n  }\n  condition c(x: int) { x > 1 }\nrelationships: |\n  doc:a#viewer@user:ann\n  doc:a#viewer@user:bob[c]\n  doc:b#viewer@user:*\n";
const OPENFGA: &str = "tests:\n  - name: t\n    stages:\n      - model: |\n          model\n            schema 1.1\n          type user\n          type doc\n            relations\n              define viewer: [user, user:*]\n        tuples:\n          - {object: 'doc:a', relation: viewer, user: 'user:ann'}\n";

fn quoted(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Valid files with arbitrary assertion, `who` and `what` texts never panic either.
    #[test]
    fn never_panics_on_arbitrary_queries(
        check in "[a-z]{0,3}:?[a-z*]{0,3}#?[a-z]{0,6}@?[a-z]{0,4}:?[a-z*]{0,3}#?[a-z]{0,3}( with \\{\"x\": [0-9]\\})?( at 202[0-9]-01-01T00:00:00Z)?",
        expect in "[a-z]{0,4}:?[a-z*]{0,3}( - \\{[a-z:, ]{0,10}\\})?( \\(conditional\\))?",
        key in "[a-z]{0,4}:?[a-z*]{0,3}#?[a-z]{0,5} ?[a-z#]{0,8}",
        user in "[a-z]{0,4}:?[a-z*]{0,3}#?[a-z]{0,3}",
    ) {
        let native = format!(
            "{NATIVE}assertions:\n  assertTrue: [{c}]\n  assertCaveated: [{c}]\nwho:\n  {k}: [{e}]\nwhat:\n  {k}: [{e}]\n  {u}: [{e}]\n",
            c = quoted(&check), k = quoted(&key), e = quoted(&expect), u = quoted(&format!("{user}#view doc")),
        );
        let r = run_text(Path::new("mem/fuzz.yaml"), &native, &RunOptions::default());
        let r = r.map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert!(r.passed + r.failed >= 4 && r.failures.iter().all(|f| f.assertion != "file"), "{r:?}");
        let spicedb = native.replace("purview: 1\n", "").replace("who:", "validation:");
        let _ = run_text(Path::new("mem/fuzz.yaml"), &spicedb, &RunOptions { format: Some(Format::SpiceDb), ..RunOptions::default() });
        let fga = format!(
            "{OPENFGA}        checkAssertions:\n          - tuple: {{object: {o}, relation: {r}, user: {u}}}\n            contextualTuples: [{{object: {o}, relation: viewer, user: {u}}}]\n        listObjectsAssertions:\n          - request: {{user: {u}, type: {r}, relation: viewer}}\n        listUsersAssertions:\n          - request: {{object: {o}, relation: {r}, filters: [{u}]}}\n",
            o = quoted(&key), r = quoted(&expect), u = quoted(&user),
        );
        let _ = run_text(Path::new("mem/fuzz.yaml"), &fga, &RunOptions::default());
    }
}
