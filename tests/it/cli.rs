//! The `purview` binary: exit codes, `--json` output, errors in both formats, and no panic on
//! any input.

use proptest::prelude::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub(crate) struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

pub(crate) fn purview_in(args: &[&str], stdin: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the purview binary runs");
    // The child may exit before reading its input; a broken pipe is not a failure.
    let _ = child.stdin.take().expect("stdin is piped").write_all(stdin.as_bytes());
    let out = child.wait_with_output().expect("the purview binary finishes");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub(crate) fn purview(args: &[&str]) -> Run {
    purview_in(args, "")
}

fn json_error(stderr: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(stderr.trim()).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    v["error"].clone()
}

#[test]
fn help_documents_the_exit_codes() {
    let r = purview(&["--help"]);
    assert_eq!(r.code, 0);
    for line in ["0  allowed", "1  denied", "2  conditional", "3  usage", "4  input", "5  evaluation"] {
        assert!(r.stdout.contains(line), "{line} missing from:\n{}", r.stdout);
    }
    assert!(purview(&["check", "--help"]).stdout.contains("Exit codes"));
}

#[test]
fn usage_errors_exit_3_in_both_formats() {
    assert_eq!(purview(&[]).code, 3);
    assert_eq!(purview(&["frobnicate"]).code, 3);
    let r = purview(&["--error-format", "json", "check", "--bogus", "x"]);
    assert_eq!(r.code, 3);
    let e = json_error(&r.stderr);
    assert_eq!(e["kind"], "usage");
    assert_eq!(e["exit_code"], 3);
    let r = purview(&["check", "doc:a#view@user:b"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert!(r.stderr.contains("no schema given") && r.stderr.contains("purview demo"), "{}", r.stderr);
    let r = purview(&["check", "doc:a#view@user:b;", "check", "doc:a#view@user:c"]);
    assert_eq!(r.code, 3, "{}", r.stderr);
    assert_eq!(purview(&["what", "doc#view@user:b", "--limit", "0"]).code, 3);
}

#[test]
fn query_syntax_errors_exit_4_with_a_place_and_a_hint() {
    let r = purview(&["who", "document:readme#view", "user"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("error[query-syntax]"), "{}", r.stderr);
    assert!(r.stderr.contains("--> <query>:1:25"), "{}", r.stderr);
    assert!(r.stderr.contains("did you mean `who document:readme#view@user`?"), "{}", r.stderr);

    let r = purview(&["--error-format=json", "query", "chek a:b#c@d:e\ncheck a:b#c@d:e limit 1"]);
    assert_eq!(r.code, 4);
    let e = json_error(&r.stderr);
    assert_eq!(e["kind"], "input");
    let d = e["diagnostics"].as_array().unwrap();
    assert_eq!(d.len(), 2);
    assert_eq!(
        (d[0]["file"].as_str(), d[0]["line"].as_u64(), d[0]["column"].as_u64()),
        (Some("<arguments>"), Some(1), Some(1))
    );
    assert_eq!(d[0]["code"], "query-syntax");
    assert_eq!(d[0]["help"], "did you mean `check`?");
    assert_eq!(d[1]["code"], "clause-not-allowed");
    assert_eq!(d[1]["line"], 2);
}

#[test]
fn unreadable_files_and_bad_flags_are_input_errors() {
    let r = purview(&["check", "doc:a#view@user:b", "--schema", "no/such/file.pv"]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("cannot read `no/such/file.pv`"), "{}", r.stderr);
    assert_eq!(purview(&["test", "no/such/dir"]).code, 4);
    assert_eq!(purview(&["validate", "no/such/file.q"]).code, 4);
}

#[test]
fn validate_reports_every_bad_query_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(dir.path(), "good.q", "check a:b#c@d:e\nwho a:b#c@d\n");
    let bad = write(dir.path(), "bad.q", "chek a:b#c@d:e\nwhat d:e#c a\n");
    let r = purview(&["validate", good.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("good.q: ok (2 queries)"), "{}", r.stdout);
    let r = purview(&["validate", good.to_str().unwrap(), bad.to_str().unwrap()]);
    assert_eq!(r.code, 4);
    assert_eq!(r.stderr.matches("error[query-syntax]").count(), 2, "{}", r.stderr);
    assert!(r.stderr.contains("1 of 2 files are invalid"), "{}", r.stderr);
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Words queries are made of, so that random strings get past the first token often.
fn query_like() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("check".to_string()),
        Just("who".to_string()),
        Just("what".to_string()),
        Just("expand".to_string()),
        Just("explain".to_string()),
        Just("can".to_string()),
        Just("with".to_string()),
        Just("at".to_string()),
        Just("limit".to_string()),
        Just("after".to_string()),
        "[a-z]{1,4}(:[a-z*]{1,3})?(#[a-z.]{1,3})?(@[a-z]{1,3}(:[a-z*]{1,2})?(#[a-z]{1,2})?)?",
        "[{}\\[\\]\";#@:/ \t\n0-9TZ.-]{1,6}",
        any::<String>(),
    ];
    prop::collection::vec(token, 0..10).prop_map(|ts| ts.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever is piped in, the binary answers with a typed exit code, never a panic (101).
    #[test]
    fn the_binary_never_panics_on_queries(text in query_like()) {
        let r = purview_in(&["query"], &text);
        prop_assert!([3, 4].contains(&r.code), "exit {} for {text:?}: {}", r.code, r.stderr);
        prop_assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
    }
}

const SCHEMA: &str = "examples/quickstart/schema.pv";
const DATA: &str = "examples/quickstart/data.rels";

/// `purview <op> --schema quickstart --data quickstart <args>`
fn quickstart(op: &str, args: &[&str]) -> Run {
    let mut all = vec![op, "--schema", SCHEMA, "--data", DATA];
    all.extend_from_slice(args);
    purview(&all)
}

#[test]
fn demo_runs_with_no_setup() {
    let r = purview(&["demo"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for expected in [
        "> check message:m1#view@user:sam\nallowed\n",
        "> check message:m2#view@user:sam\ndenied\n",
        "> check message:m1#view@user:rita\nconditional (missing: hour)\n",
        "> who message:m3#view@user\nuser:alice\nuser:carol\nuser:dan\nuser:sam\n",
        "> what message#view@user:sam\nmessage:m1\nmessage:m3\nmessage:m4\n",
        "> explain message:m4#review@user:sam\ndenied\n",
    ] {
        assert!(r.stdout.contains(expected), "missing {expected:?} in:\n{}", r.stdout);
    }
    let r = purview(&["demo", "--json"]);
    assert_eq!(r.code, 0);
    let lines: Vec<serde_json::Value> = r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(lines.len() >= 5 && lines.iter().all(|v| v["op"].is_string()), "{}", r.stdout);
    let r = purview(&["demo", "who user can view message:m2"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "user:alice\nuser:carol\nuser:dan\n"));
    assert!(purview(&["demo", "--show"]).stdout.contains("permission view ="));
}

#[test]
fn check_and_explain_exit_with_the_decision() {
    assert_eq!(quickstart("check", &["message:m1#view@user:sam"]).code, 0);
    assert_eq!(quickstart("check", &["user:sam", "can", "view", "message:m2"]).code, 1);
    let r = quickstart("check", &["message:m1#view@user:rita"]);
    assert_eq!((r.code, r.stdout.as_str()), (2, "conditional (missing: hour)\n"));
    assert_eq!(quickstart("check", &["message:m1#view@user:rita", "--context", r#"{"hour": 9}"#]).code, 0);
    assert_eq!(quickstart("check", &[r#"message:m1#view@user:rita with {"hour": 20}"#]).code, 1);
    let r = quickstart("explain", &["message:m4#review@user:sam"]);
    assert_eq!(r.code, 1);
    assert!(r.stdout.starts_with("denied\n") && r.stdout.contains("message:m4#participant@user:sam"));
    let r = quickstart("check", &["message:m1#view@user:rita", "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"op": "check", "query": "check message:m1#view@user:rita", "decision": "conditional", "missing": ["hour"]})
    );
}

#[test]
fn subset_exits_like_a_check() {
    let subset = |q: &str, extra: &[&str]| {
        let mut args = vec!["query", "--schema", SCHEMA, "--data", DATA, q];
        args.extend_from_slice(extra);
        purview(&args)
    };
    // Alice administers the account: she sees every message Sally took part in.
    let r = subset("subset message#participant@user:sally in user:alice#view", &[]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "holds\n"), "{}", r.stderr);
    // Rita reviews m1 only in business hours, and nothing else Tom's groups are tagged on.
    let r = subset("subset message#participant@user:tom in user:rita#view", &[]);
    assert_eq!((r.code, r.stdout.as_str()), (2, "holds conditionally\nconditional: message:m1\n"));
    let r = subset("subset message#participant@user:tom in user:rita#view", &["--context", r#"{"hour": 9}"#]);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let r = subset("subset message#tagged@usergroup:traders in user:rita#view", &["--json"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!((v["op"].as_str(), v["holds"].as_bool()), (Some("subset"), Some(false)), "{v}");
    assert_eq!(v["conditional"], serde_json::json!([{"ty": "message", "id": "m1"}]), "{v}");
    // A typo is an input error, with a suggestion.
    let r = subset("subset message#participant@user:tom in user:rita#vew", &[]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("did you mean `view`?"), "{}", r.stderr);
}

#[test]
fn what_pages_with_cursors() {
    let r = quickstart("what", &["message#view@user:alice", "--limit", "3"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let cursor =
        r.stdout.lines().find_map(|l| l.strip_prefix("next cursor: ")).expect("a cursor").to_string();
    assert_eq!(r.stdout.lines().count(), 4, "{}", r.stdout);
    let r = quickstart("what", &["message#view@user:alice", "--limit", "3", "--cursor", &cursor, "--json"]);
    let v: serde_json::Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(v["objects"].as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(v["cursor"], serde_json::Value::Null);
    let r = quickstart("what", &["message#view@user:alice", "--cursor", "bogus"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("error[invalid-cursor]"), "{}", r.stderr);
}

#[test]
fn a_batch_exits_with_its_worst_answer() {
    let r = purview_in(
        &["query", "--schema", SCHEMA, "--data", DATA],
        "check message:m1#view@user:sam\nwho message:m2#view@user",
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("> check message:m1#view@user:sam\nallowed\n\n> who"), "{}", r.stdout);
    let r = quickstart("query", &["check message:m1#view@user:rita; check message:m2#view@user:sam"]);
    assert_eq!(r.code, 1);
    let r = quickstart(
        "query",
        &["check message:m1#view@user:sam", r#"check message:m1#view@user:rita with {"hour": "x"}"#],
    );
    assert_eq!(r.code, 5, "{}", r.stdout);
    assert!(r.stdout.contains("error[condition-error]"), "{}", r.stdout);
}

#[test]
fn names_unknown_to_the_schema_are_input_errors() {
    let r = quickstart("check", &["message:m1#veiw@usr:sam"]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("error[unknown-relation]") && r.stderr.contains("did you mean `user`?"),
        "{}",
        r.stderr
    );
}

#[test]
fn bad_schemas_and_data_are_reported_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad_schema = write(dir.path(), "bad.pv", "type user {}\ntype doc { relation viewer: usr }\n");
    let r = purview(&["check", "doc:a#viewer@user:b", "--schema", bad_schema.to_str().unwrap()]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("bad.pv:2:"), "{}", r.stderr);
    let bad_data = write(
        dir.path(),
        "bad.rels",
        "// ok\nmessage:m9#tagged@usergroup:x\n  message:m9#tagged\nmessage:m9#taged@usergroup:x\n",
    );
    let r = quickstart("check", &["message:m1#view@user:sam", "--data", bad_data.to_str().unwrap()]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("bad.rels:3:3") && r.stderr.contains("error[relationship-syntax]"),
        "{}",
        r.stderr
    );
    let unknown =
        write(dir.path(), "unknown.rels", "message:m9#tagged@usergroup:x\nmessage:m9#taged@usergroup:x\n");
    let r = quickstart("check", &["message:m1#view@user:sam", "--data", unknown.to_str().unwrap()]);
    assert_eq!(r.code, 4);
    assert!(
        r.stderr.contains("unknown.rels:2:1") && r.stderr.contains("error[unknown-relation]"),
        "{}",
        r.stderr
    );
    let r = purview(&["validate", SCHEMA, DATA, "examples/quickstart/queries.q", "--schema", SCHEMA]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("queries.q: ok (9 queries)"), "{}", r.stdout);
    assert!(r.stdout.contains("schema.pv: ok (4 types, 1 condition)"), "{}", r.stdout);
    let r = purview(&["--error-format", "json", "validate", SCHEMA, bad_schema.to_str().unwrap()]);
    assert_eq!(r.code, 4);
    assert_eq!(json_error(&r.stderr)["diagnostics"][0]["line"], 2);
}

#[test]
fn fmt_prints_checks_and_writes() {
    let dir = tempfile::tempdir().unwrap();
    let messy = write(
        dir.path(),
        "messy.pv",
        "type user {}\ntype doc {   relation viewer: user\n permission view = viewer }\n",
    );
    let path = messy.to_str().unwrap();
    let r = purview(&["fmt", path]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("type doc {\n  relation viewer: user\n"), "{}", r.stdout);
    assert_eq!(purview(&["fmt", "--check", path]).code, 1);
    assert_eq!(purview(&["fmt", "--write", path]).code, 0);
    assert_eq!(std::fs::read_to_string(&messy).unwrap(), r.stdout);
    assert_eq!(purview(&["fmt", "--check", path]).code, 0);
    // Comments survive `--write`.
    let commented = write(dir.path(), "commented.pv", "// keep me\ntype user {   } /* and me */\n");
    let r = purview(&["fmt", "--write", commented.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(std::fs::read_to_string(&commented).unwrap(), "// keep me\ntype user {} /* and me */\n");
}

const ZED: &str = "\
/** a user */
definition user {}

caveat in_hours(hour int) {
  hour >= 9 && hour < 17
}

definition folder {
  relation owner: user
  permission edit = owner
}

definition doc {
  relation parent: folder
  relation viewer: user | user:* | user with in_hours
  permission view = viewer + parent->edit
}
";

#[test]
fn import_prints_a_purview_schema_that_validates_and_is_formatted() {
    let dir = tempfile::tempdir().unwrap();
    let zed = write(dir.path(), "schema.zed", ZED);
    let r = purview(&["import", "spicedb", zed.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for line in [
        "/// a user\ntype user {}\n",
        "condition in_hours(hour: int) {\n  hour >= 9 && hour < 17\n}\n",
        "  relation viewer: user | user:* | user with in_hours\n",
        "  permission view = viewer + parent->edit\n",
    ] {
        assert!(r.stdout.contains(line), "{line:?} missing from:\n{}", r.stdout);
    }
    let pv = write(dir.path(), "schema.pv", &r.stdout);
    assert_eq!(purview(&["fmt", "--check", pv.to_str().unwrap()]).code, 0);
    let r = purview(&["validate", pv.to_str().unwrap()]);
    assert!(r.stdout.contains("schema.pv: ok (3 types, 1 condition)"), "{}", r.stdout);

    // The DSL and the JSON of one OpenFGA model import to the same schema.
    let model = "tests/peer/openfga-language/transformer/08-tuple-to-userset/authorization-model";
    let dsl = purview(&["import", "openfga", &format!("{model}.fga")]);
    assert_eq!(dsl.code, 0, "{}", dsl.stderr);
    assert!(dsl.stdout.contains("  relation owner: user = this + parent->owner\n"), "{}", dsl.stdout);
    let json = purview(&["import", "openfga", &format!("{model}.json")]);
    assert_eq!((json.code, json.stdout), (0, dsl.stdout));
}

#[test]
fn import_errors_point_into_the_original_file() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.zed", &ZED.replace("parent->edit", "parent->edt"));
    let r = purview(&["import", "spicedb", bad.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("bad.zed:16:38") && r.stdout.is_empty(), "{}", r.stderr);

    let syntax =
        write(dir.path(), "model.fga", "model\n  schema 1.1\ntype user\n  relations\n    define : [user]\n");
    let r = purview(&["--error-format", "json", "import", "openfga", syntax.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    let d = &json_error(&r.stderr)["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(5), Some(12)), "{d}");
    assert!(d["file"].as_str().unwrap().ends_with("model.fga"), "{d}");

    // Names Purview's language reserves or cannot write are refused, not printed wrong.
    let reserved = write(
        dir.path(),
        "reserved.fga",
        "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define this_: [user]\n    define type: [user]\n    define can.view: type\n",
    );
    let r = purview(&["import", "openfga", reserved.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("error[reserved-word]: `type` is a reserved word"), "{}", r.stderr);
    assert!(r.stderr.contains("reserved.fga:7:12") && r.stderr.contains("reserved.fga:8:12"), "{}", r.stderr);
    assert!(r.stderr.contains("cannot be written in Purview's language"), "{}", r.stderr);
    assert!(r.stdout.is_empty(), "{}", r.stdout);

    assert_eq!(purview(&["import", "openfga", "no/such/model.fga"]).code, 4);
    assert_eq!(purview(&["import", "yaml", bad.to_str().unwrap()]).code, 3);
}

#[test]
fn schemas_in_spicedb_and_openfga_are_accepted_wherever_a_schema_is() {
    let dir = tempfile::tempdir().unwrap();
    let zed = write(dir.path(), "schema.zed", ZED);
    let data = write(
        dir.path(),
        "data.rels",
        "folder:f#owner@user:ann\ndoc:d#parent@folder:f\ndoc:d#viewer@user:bob[in_hours]\n",
    );
    let (zed, data) = (zed.to_str().unwrap(), data.to_str().unwrap());
    assert_eq!(purview(&["check", "--schema", zed, "--data", data, "doc:d#view@user:ann"]).code, 0);
    let r = purview(&["who", "--schema", zed, "--data", data, "doc:d#view@user"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, "user:ann\nuser:bob (conditional)\n"), "{}", r.stderr);
    let r = purview(&["validate", zed, data, "--schema", zed]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("schema.zed: ok (SpiceDB schema: 3 types, 1 condition)"), "{}", r.stdout);

    // An extension that says nothing: the content decides, `--schema-format` overrides.
    let txt = write(dir.path(), "schema.txt", ZED);
    let txt = txt.to_str().unwrap();
    assert_eq!(purview(&["check", "--schema", txt, "--data", data, "doc:d#view@user:ann"]).code, 0);
    let r = purview(&["check", "--schema", txt, "--schema-format", "purview", "doc:d#view@user:ann"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("schema.txt:2:1") && r.stderr.contains("found `definition`"), "{}", r.stderr);
    assert_eq!(
        purview(&["check", "--schema", txt, "--schema-format", "cedar", "doc:d#view@user:ann"]).code,
        3
    );

    let model = "tests/peer/openfga-language/transformer/08-tuple-to-userset/authorization-model";
    for ext in ["fga", "json"] {
        let r = purview(&["validate", &format!("{model}.{ext}")]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.contains("ok (OpenFGA model: 2 types, 0 conditions)"), "{}", r.stdout);
    }
    // A SpiceDB schema is laid out (see `tests/it/lsp.rs`); OpenFGA's JSON is not formatted.
    let r = purview(&["fmt", &format!("{model}.json")]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("purview import openfga"), "{}", r.stderr);
}

#[test]
fn validate_reports_a_spicedb_error_with_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let bad = write(dir.path(), "bad.zed", &ZED.replace("permission edit = owner", "permission edit = ownr"));
    let r = purview(&["validate", bad.to_str().unwrap()]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(
        r.stderr.contains("error[unknown-relation]") && r.stderr.contains("bad.zed:10:21"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("did you mean `owner`?"), "{}", r.stderr);
    let r = purview(&["--error-format", "json", "validate", bad.to_str().unwrap()]);
    let d = &json_error(&r.stderr)["diagnostics"][0];
    assert_eq!((d["line"].as_u64(), d["column"].as_u64()), (Some(10), Some(21)), "{d}");
}

#[test]
fn the_reference_engine_answers_like_the_index() {
    let queries = "examples/quickstart/queries.q";
    let index = quickstart("query", &["--file", queries]);
    assert_eq!(index.code, 1, "{}", index.stderr);
    for args in [
        vec!["--engine", "reference", "query", "--schema", SCHEMA, "--data", DATA, "--file", queries],
        vec!["query", "--engine=reference", "--schema", SCHEMA, "--data", DATA, "--file", queries],
    ] {
        let r = purview(&args);
        assert_eq!((r.code, &r.stdout), (index.code, &index.stdout), "{args:?}: {}", r.stderr);
    }
    let r = purview(&["--engine", "reference", "demo"]);
    assert_eq!((r.code, r.stdout), (0, purview(&["demo"]).stdout));
    for op in ["check", "explain"] {
        let q = "message:m1#view@user:rita";
        let (a, b) = (quickstart(op, &[q]), quickstart(op, &[q, "--engine", "reference"]));
        assert_eq!((a.code, a.stdout), (b.code, b.stdout), "{op}");
    }
    let r = purview(&["test", "--engine", "reference", "examples/quickstart"]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert_eq!(purview(&["--engine", "bogus", "demo"]).code, 3);
    let help = purview(&["check", "--help"]).stdout;
    assert!(help.contains("the oracle the index is tested against"), "{help}");
}

/// A SpiceDB schema file's `import`s are read relative to the file that imports them (a file
/// imported twice, or in a cycle, is read once); an error is reported in the file it is in, and
/// a missing file where it is imported. Nothing is followed from a schema given as text.
#[test]
fn spicedb_imports_are_followed_from_schema_files() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("defs")).unwrap();
    let main = write(
        dir.path(),
        "main.zed",
        "use import\n\nimport \"defs/people.zed\"\nimport 'common.zed'\n\n\
         definition resource {\n    relation owner: user\n    relation team: group\n    \
         permission view = owner + team->member\n}\n",
    );
    // `people.zed` imports `../common.zed`, which imports `main.zed` back: each is read once.
    write(dir.path(), "defs/people.zed", "use import\nimport \"../common.zed\"\n\ndefinition user {}\n");
    write(
        dir.path(),
        "common.zed",
        "use import\nimport \"main.zed\"\n\ndefinition group {\n    relation member: user\n}\n",
    );
    let data = write(dir.path(), "d.rels", "resource:r#team@group:g\ngroup:g#member@user:ann\n");
    let (m, d) = (main.to_str().unwrap(), data.to_str().unwrap());
    for (q, code) in [("resource:r#view@user:ann", 0), ("resource:r#view@user:bob", 1)] {
        let r = purview(&["check", q, "--schema", m, "--data", d]);
        assert_eq!(r.code, code, "{q}: {}", r.stderr);
    }
    let r = purview(&["validate", m]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("3 types"), "{}", r.stdout);

    // An error in an imported file is reported at its place in that file.
    write(
        dir.path(),
        "common.zed",
        "use import\nimport \"main.zed\"\n\ndefinition group {\n    relation member: usr\n}\n",
    );
    let r = purview(&["check", "resource:r#view@user:ann", "--schema", m, "--data", d]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("common.zed:5:22") && r.stderr.contains("unknown-type"), "{}", r.stderr);

    // A missing file is reported where it is imported.
    std::fs::remove_file(dir.path().join("defs/people.zed")).unwrap();
    let r = purview(&["validate", m]);
    assert_eq!(r.code, 4);
    assert!(r.stderr.contains("main.zed:3:1") && r.stderr.contains("import-not-found"), "{}", r.stderr);

    // Text alone (no file to be relative to): refused, saying how to give it.
    let e = purview::api::compile_schema_as(
        purview::syntax::SchemaFormat::SpiceDb,
        "s.zed",
        "use import\nimport \"x.zed\"\ndefinition user {}\n",
    )
    .unwrap_err();
    assert_eq!(e.diagnostics.0.iter().map(|d| d.code).collect::<Vec<_>>(), ["unsupported-import"]);
}
