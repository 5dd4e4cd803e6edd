//! Purview's SpiceDB and OpenFGA importers against the peer engines' own parser suites
//! (`tests/peer/`, Apache-2.0, see the LICENSE and NOTICE files there).
//!
//! Every case runs; the cases Purview cannot agree with are listed with the reason, and each test
//! asserts that the list is exactly the set of disagreements, so it cannot rot.

mod golden;

use purview::diag::{Diagnostics, SourceFile};
use purview::syntax::spicedb::parse_spicedb;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn peer(path: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peer").join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(peer(path)).unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

/// Compares the disagreements of a suite with its skip list, naming both sides on failure.
fn assert_exactly_skipped(suite: &str, failures: &BTreeMap<String, String>, skips: &[(&str, &str)]) {
    let unexpected: Vec<String> = failures
        .iter()
        .filter(|(name, _)| !skips.iter().any(|(s, _)| s == name))
        .map(|(name, why)| format!("  {name}: {why}"))
        .collect();
    let stale: Vec<&str> = skips.iter().map(|(s, _)| *s).filter(|s| !failures.contains_key(*s)).collect();
    assert!(
        unexpected.is_empty() && stale.is_empty(),
        "{suite}: cases that disagree but are not listed:\n{}\nlisted cases that now agree: {stale:?}",
        unexpected.join("\n")
    );
}

fn render(text: &str, d: &Diagnostics) -> String {
    d.render(&SourceFile::new("input", text))
}

// ---------------------------------------------------------------------------------------------
// SpiceDB: pkg/schemadsl/parser/tests

#[derive(Deserialize)]
struct Outcomes {
    cases: Vec<Outcome>,
}

#[derive(Deserialize)]
struct Outcome {
    input: String,
    expected_ast: String,
    parse_ok: bool,
}

/// Files SpiceDB's parser accepts and Purview refuses. Each is refused with an `unsupported-*`
/// diagnostic only (checked below), never with a syntax error.
const SPICEDB_REFUSED: &[(&str, &str)] = &[
    (
        "arrow.zed",
        "nested arrow `bar->baz->meh`: Purview's arrow is one step (tupleset->target); \
         SpiceDB's own compiler refuses nested arrows as well",
    ),
    ("arrowops.zed", "nested arrow `parent1.any(member1).all(member2)->member3` (see arrow.zed)"),
    ("localimport.zed", "`import` of another file: parse_spicedb reads one text and cannot resolve it"),
    ("localimport_import_path_with_keyword.zed", "`import` of another file (see localimport.zed)"),
    ("localimport_with_quotes_in_quotes.zed", "`import` of another file (see localimport.zed)"),
    ("localimport_with_singlequotes.zed", "`import` of another file (see localimport.zed)"),
    (
        "use_self.zed",
        "`self` in a permission (the resource as its own subject): Purview's AST has no such expression",
    ),
];

#[test]
fn spicedb_parser_corpus_accepts_and_rejects_like_spicedb() {
    let outcomes: Outcomes = serde_yaml_ng::from_str(&read("spicedb/parser/EXPECTED_OUTCOMES.yaml")).unwrap();
    assert!(outcomes.cases.len() >= 65);
    let mut failures = BTreeMap::new();
    let (mut agreed, mut compared) = (0, 0);
    for case in &outcomes.cases {
        let text = read(&format!("spicedb/parser/{}", case.input));
        let result = parse_spicedb(&text);
        match (&result, case.parse_ok) {
            (Ok(schema), true) => {
                // Accepted by both: the structure must match SpiceDB's golden AST.
                let golden = golden::parse(&read(&format!("spicedb/parser/{}", case.expected_ast)));
                let want = golden::summarize_golden(&golden);
                let got = golden::summarize_ast(schema);
                assert_eq!(got, want, "{}: structure differs from the golden AST", case.input);
                compared += 1;
                agreed += 1;
            }
            (Err(_), false) => agreed += 1,
            (Ok(_), false) => {
                failures.insert(case.input.clone(), "accepted, but SpiceDB rejects it".to_string());
            }
            (Err(d), true) => {
                assert!(
                    d.0.iter().all(|d| d.code.starts_with("unsupported-")),
                    "{}: refused for a reason other than an unsupported feature:\n{}",
                    case.input,
                    render(&text, d)
                );
                failures.insert(case.input.clone(), format!("refused: {}", d.0[0].message));
            }
        }
    }
    assert_exactly_skipped("spicedb parser corpus", &failures, SPICEDB_REFUSED);
    assert_eq!(agreed + failures.len(), outcomes.cases.len());
    let accepted_upstream = outcomes.cases.iter().filter(|c| c.parse_ok).count();
    assert_eq!(compared, accepted_upstream - SPICEDB_REFUSED.len(), "every file both accept is compared");
}

#[test]
fn spicedb_precedence_and_associativity_match_the_corpus() {
    let schema = parse_spicedb(&read("spicedb/parser/associativity.zed")).unwrap();
    assert_eq!(
        golden::summarize_ast(&schema),
        [
            "definition resource",
            "  permission union = ((a + b) + c)",
            "  permission exclusion = ((a - b) - c)",
            "  permission intersection = ((a & b) & c)",
            "  permission combined1 = ((a + b) - c)",
            "  permission combined2 = (a - (b + c))",
        ]
    );
}
