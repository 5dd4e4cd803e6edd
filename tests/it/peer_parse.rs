//! Purview's SpiceDB and OpenFGA importers against the peer engines' own parser suites
//! (`tests/peer/`, Apache-2.0, see the LICENSE and NOTICE files there).
//!
//! Every case runs; the cases Purview cannot agree with are listed with the reason, and each test
//! asserts that the list is exactly the set of disagreements, so it cannot rot.

mod golden;

use purview::diag::{Diagnostics, SourceFile};
use purview::syntax::ast::{Item, Schema};
use purview::syntax::openfga::{parse_openfga_dsl, parse_openfga_json};
use purview::syntax::openfga_check::validate_openfga;
use purview::syntax::spicedb::{parse_spicedb, parse_spicedb_imported};
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
];

#[test]
fn spicedb_parser_corpus_accepts_and_rejects_like_spicedb() {
    let outcomes: Outcomes = serde_yaml_ng::from_str(&read("spicedb/parser/EXPECTED_OUTCOMES.yaml")).unwrap();
    assert!(outcomes.cases.len() >= 65);
    let mut failures = BTreeMap::new();
    let (mut agreed, mut compared) = (0, 0);
    for case in &outcomes.cases {
        let text = read(&format!("spicedb/parser/{}", case.input));
        // As a schema file is read: the files its `import`s name laid out beside it (the
        // corpus tests the parser, so the imported files themselves are not there).
        let result = parse_spicedb_imported(&text, &[0]);
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

// ---------------------------------------------------------------------------------------------
// OpenFGA: openfga/language tests/data

#[derive(Deserialize)]
struct DslCase {
    name: String,
    dsl: String,
    #[serde(default)]
    expected_errors: Option<Vec<ExpectedError>>,
    /// Set on cases openfga/language itself skips.
    #[serde(default)]
    skip: bool,
}

#[derive(Deserialize)]
struct ExpectedError {
    msg: String,
    /// 0-based.
    line: Option<LineRange>,
}

#[derive(Deserialize)]
struct LineRange {
    start: usize,
}

fn dsl_cases(path: &str) -> Vec<DslCase> {
    serde_yaml_ng::from_str(&read(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Which of Purview's diagnostics must be on the line of the first expected error.
#[derive(Clone, Copy)]
enum LineRule {
    /// The first one (syntax errors: both parsers stop at the same token).
    First,
    /// Any one, counting the places it relates (semantic errors: openfga/language reports
    /// several problems in its own order, and a duplicate at its first occurrence where Purview
    /// points at the second and relates the first).
    Any,
}

/// The 0-based lines Purview's diagnostics point at, as `rule` counts them.
fn error_lines(text: &str, d: &Diagnostics, rule: LineRule) -> Vec<usize> {
    let file = SourceFile::new("input", text);
    let line = |pos: usize| file.line_col(pos).0 - 1;
    match rule {
        LineRule::First => d.0.first().map(|d| line(d.span.start)).into_iter().collect(),
        LineRule::Any => {
            d.0.iter()
                .flat_map(|d| std::iter::once(d.span.start).chain(d.related.iter().map(|(s, _)| s.start)))
                .map(line)
                .collect()
        }
    }
}

/// Runs `check` on every case: agreement on valid/invalid, and for invalid cases the line of the
/// first expected error. Returns the disagreements.
fn run_dsl_cases(
    cases: &[DslCase],
    rule: LineRule,
    check: impl Fn(&str) -> Result<(), Diagnostics>,
) -> BTreeMap<String, String> {
    let mut failures = BTreeMap::new();
    for case in cases {
        let expected = case.expected_errors.as_deref().unwrap_or(&[]);
        let upstream = if case.skip { " (skipped upstream)" } else { "" };
        match (check(&case.dsl), expected.first()) {
            (Ok(()), None) => {}
            (Ok(()), Some(e)) => {
                failures.insert(case.name.clone(), format!("accepted, expected `{}`{upstream}", e.msg));
            }
            (Err(d), None) => {
                failures.insert(
                    case.name.clone(),
                    format!("rejected valid model{upstream}:\n{}", render(&case.dsl, &d)),
                );
            }
            (Err(d), Some(e)) => {
                let lines = error_lines(&case.dsl, &d, rule);
                if let Some(want) = e.line.as_ref().map(|l| l.start).filter(|w| !lines.contains(w)) {
                    failures.insert(
                        case.name.clone(),
                        format!(
                            "errors on lines {lines:?}, expected {want} (`{}`):\n{}",
                            e.msg,
                            render(&case.dsl, &d)
                        ),
                    );
                }
            }
        }
    }
    failures
}

#[test]
fn openfga_dsl_syntax_cases_agree_with_openfga() {
    let cases = dsl_cases("openfga-language/dsl-syntax-validation-cases.yaml");
    assert!(cases.len() >= 80);
    let failures = run_dsl_cases(&cases, LineRule::First, |text| parse_openfga_dsl(text).map(|_| ()));
    assert_exactly_skipped("openfga dsl syntax cases", &failures, &[]);
}

/// Semantic cases Purview judges differently, with the reason.
///
/// The four cycles are skipped upstream too (`skip: true`): openfga/language's own validator accepts
/// them, and they contradict the cases "union does not require all child to have entry" (valid),
/// which have the same shape. In each, every relation of the cycle is a union or exclusion whose
/// base is a direct type `[user]`, so every relation has an entry point; the loop only adds
/// more ways to reach the same subjects, which the evaluator's cycle handling deals with.
const OPENFGA_SEMANTIC_SKIPS: &[(&str, &str)] = &[
    ("cycle 3 should fail", "loop of unions, each with a direct base `[user]`: has entry points (see above)"),
    ("cycle 4 should fail", "loop through exclusions whose bases are `[user]`: has entry points (see above)"),
    ("cycle 5 should fail", "loop of unions, each with a direct base `[user]`: has entry points (see above)"),
    ("cycle 6 should fail", "loop of unions, each with a direct base `[user]`: has entry points (see above)"),
];

#[test]
fn openfga_dsl_semantic_cases_agree_with_openfga() {
    let cases = dsl_cases("openfga-language/dsl-semantic-validation-cases.yaml");
    assert!(cases.len() >= 90);
    let failures = run_dsl_cases(&cases, LineRule::Any, |text| validate_openfga(&parse_openfga_dsl(text)?));
    assert_exactly_skipped("openfga dsl semantic cases", &failures, OPENFGA_SEMANTIC_SKIPS);
}

/// Conditions and their parameters in name order: the JSON form keeps them in a map whose order
/// the transformer does not preserve.
fn normalized(mut schema: Schema) -> Schema {
    let (mut types, mut conds): (Vec<Item>, Vec<Item>) =
        schema.items.drain(..).partition(|i| matches!(i, Item::Type(_)));
    for c in &mut conds {
        if let Item::Condition(c) = c {
            c.params.sort_by(|a, b| a.name.name.cmp(&b.name.name));
        }
    }
    conds.sort_by_key(|c| match c {
        Item::Condition(c) => c.name.name.clone(),
        Item::Type(_) => String::new(),
    });
    types.extend(conds);
    Schema { items: types, end_comments: schema.end_comments }
}

#[test]
fn openfga_transformer_pairs_give_equal_trees() {
    let dir = peer("openfga-language/transformer");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 28);
    for name in &names {
        let fga = read(&format!("openfga-language/transformer/{name}/authorization-model.fga"));
        let json = read(&format!("openfga-language/transformer/{name}/authorization-model.json"));
        let from_dsl =
            parse_openfga_dsl(&fga).unwrap_or_else(|d| panic!("{name}.fga:\n{}", render(&fga, &d)));
        let from_json =
            parse_openfga_json(&json).unwrap_or_else(|d| panic!("{name}.json:\n{}", render(&json, &d)));
        assert_eq!(normalized(from_dsl), normalized(from_json), "{name}: the DSL and the JSON differ");
    }
}

#[derive(Deserialize)]
struct JsonCase {
    name: String,
    json: String,
    #[serde(default)]
    expected_errors: Option<Vec<ExpectedError>>,
}

/// JSON models Purview judges differently, with the reason.
const OPENFGA_JSON_SKIPS: &[(&str, &str)] = &[(
    "file can only include one module",
    "the error is about writing the model back out as DSL files, one per module; Purview only reads \
     the combined model, in which the module of a type is a label it ignores",
)];

#[test]
fn openfga_json_validation_cases_agree_with_openfga() {
    let cases: Vec<JsonCase> = serde_yaml_ng::from_str(&read("openfga-language/json-validation-cases.yaml"))
        .unwrap_or_else(|e| panic!("json-validation-cases.yaml: {e}"));
    assert!(cases.len() >= 5);
    let mut failures = BTreeMap::new();
    for case in &cases {
        let result = parse_openfga_json(&case.json).and_then(|s| validate_openfga(&s));
        match (result, case.expected_errors.as_deref().unwrap_or(&[]).first()) {
            (Ok(()), None) | (Err(_), Some(_)) => {}
            (Ok(()), Some(e)) => {
                failures.insert(case.name.clone(), format!("accepted, expected `{}`", e.msg));
            }
            (Err(d), None) => {
                failures
                    .insert(case.name.clone(), format!("rejected valid model:\n{}", render(&case.json, &d)));
            }
        }
    }
    assert_exactly_skipped("openfga json validation cases", &failures, OPENFGA_JSON_SKIPS);
}
