//! The query language: golden files for accepted and rejected queries, and properties.
//!
//! `tests/data/query/ok/*.q` must parse; beside each, `.out` holds the canonical form of every
//! query, one a line. `tests/data/query/err/*.q` must fail; `.err` holds the rendered diagnostics.
//! Run with `UPDATE_GOLDEN=1` to rewrite the expected files after a deliberate change.

#![allow(clippy::unwrap_used, reason = "test helpers fail loudly on a broken fixture")]

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
        "(check|who|what|expand|explain|can|with|at|limit|after|CHECK)",
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
