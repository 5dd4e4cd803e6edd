//! Test files through the public interface: `purview::testfile::{run_paths, run_file}`.

use purview::testfile::{run_file, run_paths, Format, Report, RunOptions};
use std::path::PathBuf;

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/testfile").join(name)
}

fn run(name: &str) -> Report {
    run_file(&data(name), &RunOptions::default()).unwrap()
}

fn show(r: &Report) -> String {
    r.failures.iter().map(|f| format!("{}: {}", f.assertion, f.message)).collect::<Vec<_>>().join("\n")
}

/// Asserts that everything passed, and how many assertions there were.
fn all_pass(name: &str, count: usize) {
    let r = run(name);
    assert_eq!(r.failed, 0, "{name}:\n{}", show(&r));
    assert_eq!(r.passed, count, "{name}");
}

/// The failure of `assertion`, which must exist.
fn failure<'r>(r: &'r Report, assertion: &str) -> &'r str {
    match r.failures.iter().find(|f| f.assertion == assertion) {
        Some(f) => &f.message,
        None => panic!("no failure `{assertion}` in:\n{}", show(r)),
    }
}

#[test]
fn the_documented_native_example_passes() {
    all_pass("native_overview.yaml", 12);
}

#[test]
fn native_failures_say_what_was_expected_and_found() {
    let r = run("native_failures.yaml");
    assert_eq!((r.passed, r.failed), (0, 8), "{}", show(&r));
    assert!(r.failures.iter().all(|f| f.file.ends_with("native_failures.yaml")));
    assert_eq!(failure(&r, "assertTrue doc:a#view@user:bob"), "line 16: expected allowed, got denied");
    assert!(failure(&r, "assertTrue doc:a#vew@user:ann")
        .ends_with("no relation or permission `vew`; did you mean `view`?"));
    assert_eq!(failure(&r, "assertFalse doc:a#view@user:ann"), "line 19: expected denied, got allowed");
    let m = failure(&r, r#"assertCaveated doc:a#view@user:ann with {"x": 1"#);
    assert!(m.starts_with("line 21: ") && m.contains("not valid JSON"), "{m}");
    assert_eq!(failure(&r, "who doc:a#view user"), "line 23: missing `user:bob`; found [user:ann]");
    assert_eq!(
        failure(&r, "who doc:b#view user"),
        "line 24: missing `user:*`; unexpected `user:* - {user:eve}`; found [user:* - {user:eve}]"
    );
    assert_eq!(
        failure(&r, "what user:ann#view doc"),
        "line 26: unexpected `doc:a`, `doc:b`; found [doc:a, doc:b]"
    );
    assert!(failure(&r, "what user:ann#view").starts_with("line 27: expected the object type"));
}

#[test]
fn schema_and_relationships_files_are_relative_to_the_test_file() {
    all_pass("files/native_files.yaml", 2);
}

#[test]
fn a_schema_that_does_not_compile_is_one_failure_with_its_diagnostics() {
    let r = run("native_bad_schema.yaml");
    assert_eq!((r.passed, r.failed), (0, 1));
    let m = failure(&r, "file");
    // The place is in the test file itself: line 5, where the inline schema has the typo.
    assert!(
        m.contains("native_bad_schema.yaml:5:23") && m.contains("5 |     permission view = viewr"),
        "{m}"
    );
}

#[test]
fn spicedb_validation_compares_subject_sets() {
    // 5 assertions, 4 validation blocks, 1 lookup-consistency assertion for document#view.
    all_pass("spicedb_validation.yaml", 10);
    let r = run("spicedb_validation_wrong.yaml");
    assert_eq!((r.passed, r.failed), (0, 2), "{}", show(&r));
    assert_eq!(
        failure(&r, "validation document:doc1#view"),
        "line 13: found caveat mismatch for subject `user:tom`: listed as caveated (`[...]`) but found \
         without a caveat; missing expected subject `user:fred`"
    );
    assert_eq!(
        failure(&r, "validation document:doc2#view"),
        "line 16: found different excluded subjects for subject `user:*`: Specified: ``, Computed: `<user:bob>`"
    );
}

#[test]
fn openfga_stages_share_a_store_and_rerun_with_contextual_tuples() {
    // model_change: 1 + 2 + 4 (multi-stage: run once); requests: 14, twice; plus one
    // lookups-agree-with-check assertion per stage and asserted permission: 7.
    all_pass("openfga_stages.yaml", 7 + 2 * 14 + 7);
}

#[test]
fn openfga_store_files_read_model_and_tuple_files() {
    // members: 2 users × 2 relations + 1; with an admin: 2 + 2.
    all_pass("files/store.fga.yaml", 9);
}

#[test]
fn format_override_and_directories() {
    let forced = RunOptions { format: Some(Format::OpenFgaStore), ..RunOptions::default() };
    let r = run_file(&data("native_overview.yaml"), &forced).unwrap();
    assert_eq!((r.passed, r.failed), (0, 1), "a native file read as a store file cannot run");
    let r = run_paths(&[data("files")], &RunOptions::default()).unwrap();
    assert_eq!((r.passed, r.failed), (2 + 9, 0), "{}", show(&r));
}
