//! Peer conformance: SpiceDB's and OpenFGA's own test files, run through `purview::testfile`.
//!
//! The files are upstream's, unchanged, in `tests/peer/` (with their LICENSE and NOTICE). Each
//! suite must fail exactly the assertions listed here, each with the reason it fails; a fixed
//! failure or a new one fails the test, so the lists cannot rot. Pass counts are printed
//! (`cargo test conformance -- --nocapture`).
//!
//! What is counted: SpiceDB, 254 `assert*` lines in 49 files plus one lookup-consistency assertion
//! per asserted `type#permission` (60). OpenFGA, every check, list-objects and list-users
//! assertion, and again for every single-stage test with its tuples as contextual tuples
//! (`_ctxTuples`); a stage whose model does not compile is one failure and its assertions do not run.
//! For every SpiceDB file and OpenFGA stage, one more assertion per asserted `type#permission`
//! checks that check, who and what agree on every pair of objects and subjects the file mentions.
//! Every suite runs on both engines (the index and the reference evaluator).

use purview::api::Engine;
use purview::testfile::{run_paths, Format, Report, RunOptions};
use std::collections::BTreeMap;
use std::path::PathBuf;

fn peer(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer").join(rel)
}

/// An assertion known to fail: file name (without directories), assertion, why.
type Known = (&'static str, &'static str, &'static str);

/// Runs `paths` on both engines (the index, and the reference evaluator it is checked
/// against) and checks that exactly the `known` failures happen on each.
fn conform(suite: &str, paths: &[PathBuf], format: Option<Format>, known: &[Known]) -> Report {
    let reference = run_on(suite, paths, format, known, Engine::Reference);
    let index = run_on(suite, paths, format, known, Engine::Index);
    assert_eq!((reference.passed, reference.failed), (index.passed, index.failed), "{suite}: engines differ");
    index
}

fn run_on(suite: &str, paths: &[PathBuf], format: Option<Format>, known: &[Known], engine: Engine) -> Report {
    let report = run_paths(paths, &RunOptions { format, engine }).unwrap();
    eprintln!(
        "{suite} [{engine:?}]: {} assertions, {} passed, {} failed ({} known)",
        report.passed + report.failed,
        report.passed,
        report.failed,
        known.len()
    );
    let name = |f: &str| f.rsplit(['/', '\\']).next().unwrap_or(f).to_string();
    let found: BTreeMap<(String, String), String> =
        report.failures.iter().map(|f| ((name(&f.file), f.assertion.clone()), f.message.clone())).collect();
    let expected: BTreeMap<(String, String), &str> =
        known.iter().map(|(f, a, why)| ((f.to_string(), a.to_string()), *why)).collect();
    let mut problems = Vec::new();
    for ((file, assertion), message) in &found {
        if !expected.contains_key(&(file.clone(), assertion.clone())) {
            problems.push(format!("unexpected failure: (\"{file}\", \"{assertion}\"): {message}"));
        }
    }
    for (file, assertion) in expected.keys() {
        if !found.contains_key(&(file.clone(), assertion.clone())) {
            problems.push(format!("listed as failing but passes: (\"{file}\", \"{assertion}\")"));
        }
    }
    assert!(problems.is_empty(), "{suite}:\n{}", problems.join("\n"));
    report
}

/// SpiceDB assertions that fail, and why: none.
const SPICEDB_KNOWN: &[Known] = &[];

#[test]
fn spicedb_validation_files() {
    let r = conform("SpiceDB testconfigs", &[peer("spicedb/testconfigs")], None, SPICEDB_KNOWN);
    assert_eq!(r.passed + r.failed, 314, "the suite runs every assertion");
}

/// Why the `true_butnot_cycle_*` test fails.
const EXCLUSION_CYCLE: &str =
    "the data cycles through an exclusion (`viewer: [user] but not restricted` with \
     `document:1#restricted@document:1#viewer`): jon's answer depends on its own negation. OpenFGA cuts \
     the cycle and answers false; SpiceDB fails with its depth limit; Purview fails with a typed \
     `ExclusionCycle` error in check, who and what alike (the model loads, and answers wherever the \
     data does not cycle through the exclusion)";

/// OpenFGA consolidated assertions that fail, and why.
const OPENFGA_KNOWN: &[Known] = &[
    (
        "consolidated_1_1_tests.yaml",
        "true_butnot_cycle_return_false stage 0 check 0: document:1#viewer@user:jon",
        EXCLUSION_CYCLE,
    ),
    (
        "consolidated_1_1_tests.yaml",
        "true_butnot_cycle_return_false stage 0 list_objects 0: user:jon document#viewer",
        EXCLUSION_CYCLE,
    ),
    (
        "consolidated_1_1_tests.yaml",
        "true_butnot_cycle_return_false stage 0 lookups agree with check for document#viewer",
        EXCLUSION_CYCLE,
    ),
    (
        "consolidated_1_1_tests.yaml",
        "true_butnot_cycle_return_false_ctxTuples stage 0 check 0: document:1#viewer@user:jon",
        EXCLUSION_CYCLE,
    ),
    (
        "consolidated_1_1_tests.yaml",
        "true_butnot_cycle_return_false_ctxTuples stage 0 list_objects 0: user:jon document#viewer",
        EXCLUSION_CYCLE,
    ),
    (
        "consolidated_1_1_tests.yaml",
        "true_butnot_cycle_return_false_ctxTuples stage 0 lookups agree with check for document#viewer",
        EXCLUSION_CYCLE,
    ),
];

#[test]
fn openfga_consolidated_tests() {
    let r = conform(
        "OpenFGA consolidated (incl. _ctxTuples rerun)",
        &[peer("openfga/consolidated_1_1_tests.yaml")],
        None,
        OPENFGA_KNOWN,
    );
    assert_eq!(
        r.passed + r.failed,
        1949,
        "the suite runs every assertion (checks, list-objects, list-users and lookup-consistency checks)"
    );
}

/// OpenFGA ABAC (condition) assertions that fail, and why: none.
const ABAC_KNOWN: &[Known] = &[];

#[test]
fn openfga_abac_tests() {
    let r = conform(
        "OpenFGA ABAC (incl. _ctxTuples rerun)",
        &[peer("openfga/abac_tests.yaml")],
        None,
        ABAC_KNOWN,
    );
    assert_eq!(
        r.passed + r.failed,
        611,
        "the suite runs every assertion (562, plus 49 lookup-consistency checks)"
    );
}

/// OpenFGA store files: the valid ones pass; the invalid ones fail as upstream's
/// `expected_errors.json` says.
#[test]
fn openfga_store_files() {
    let stores = peer("openfga-language/stores");
    let r = conform(
        "OpenFGA store files",
        &[stores.join("00-valid-model"), stores.join("01-valid-model-file")],
        None,
        &[],
    );
    assert_eq!(r.passed, 6);
    for (dir, why) in [
        ("02-missing-model", "`model` or `model_file`"),
        ("03-additional-properties", "unknown field `unexpected_field"),
    ] {
        let r = run_paths(&[stores.join(dir)], &RunOptions::default()).unwrap();
        assert_eq!((r.passed, r.failed), (0, 1), "{dir}: {r:?}");
        assert!(r.failures[0].message.contains(why), "{dir}: {}", r.failures[0].message);
    }
}
