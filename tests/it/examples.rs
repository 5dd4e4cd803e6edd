//! Every test file under `examples/` passes, on both engines (what `purview test examples/` runs).

use purview::api::Engine;
use purview::testfile::{run_paths, RunOptions};
use std::path::PathBuf;

#[test]
fn every_example_passes_on_both_engines() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    for engine in [Engine::Index, Engine::Reference] {
        let report =
            run_paths(std::slice::from_ref(&examples), &RunOptions { engine, ..RunOptions::default() })
                .unwrap();
        let failures: Vec<String> =
            report.failures.iter().map(|f| format!("{}: {}: {}", f.file, f.assertion, f.message)).collect();
        assert!(failures.is_empty(), "{engine:?}:\n{}", failures.join("\n"));
        assert!(report.passed > 0, "the examples assert something");
    }
}

#[test]
fn example_schemas_are_in_canonical_format() {
    let examples = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut seen = 0;
    for dir in std::fs::read_dir(&examples).unwrap() {
        let path = dir.unwrap().path().join("schema.pv");
        let Ok(text) = std::fs::read_to_string(&path) else { continue };
        let ast = purview::syntax::parse_schema(&text).unwrap();
        assert_eq!(purview::syntax::format_schema(&ast), text, "{} is not formatted", path.display());
        seen += 1;
    }
    assert!(seen >= 5);
}
