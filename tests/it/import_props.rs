//! The importers never panic: arbitrary text, soups of each language's tokens and mutated corpus
//! files all end in `Ok` or diagnostics. Every diagnostic span lies inside the input.

use proptest::prelude::*;
use purview::diag::Diagnostics;
use purview::syntax::openfga::{parse_openfga_dsl, parse_openfga_json};
use purview::syntax::openfga_check::validate_openfga;
use purview::syntax::spicedb::parse_spicedb;
use std::sync::LazyLock;

const ZED: &[&str] = &[
    "definition ",
    "caveat ",
    "relation ",
    "permission ",
    "use ",
    "expiration",
    "self",
    "partial ",
    "import ",
    "nil",
    " with ",
    " and ",
    "any",
    "all",
    "user",
    "doc/x",
    "a",
    " ",
    "\n",
    "{",
    "}",
    "(",
    ")",
    ":",
    "|",
    "=",
    "+",
    "-",
    "&",
    "->",
    ".",
    ",",
    "#",
    "*",
    "...",
    "<",
    ">",
    "\"p\"",
    "'",
    "//c\n",
    "/**d*/",
    "/*",
    ";",
    "`",
    "int",
    "list",
    "map",
    "é",
];

const FGA: &[&str] = &[
    "model",
    "\n  schema 1.1",
    "schema",
    "1.2",
    "module ",
    "extend ",
    "type ",
    "\n  relations",
    "\n    define ",
    "condition ",
    "user",
    "doc",
    "a.b/c",
    "self",
    " or ",
    " and ",
    " but not ",
    " from ",
    " with ",
    " ",
    "\n",
    ": ",
    "[",
    "]",
    "(",
    ")",
    ",",
    "#",
    ":*",
    "{",
    "}",
    "<",
    ">",
    "int",
    "list",
    "map",
    "x < 1",
    "\"}\"",
    "# c",
];

const JSON: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"schema_version\"",
    "\"1.1\"",
    "\"type_definitions\"",
    "\"type\"",
    "\"user\"",
    "\"relations\"",
    "\"this\"",
    "{}",
    "\"union\"",
    "\"child\"",
    "\"computedUserset\"",
    "\"tupleToUserset\"",
    "\"tupleset\"",
    "\"relation\"",
    "\"difference\"",
    "\"base\"",
    "\"subtract\"",
    "\"metadata\"",
    "\"directly_related_user_types\"",
    "\"wildcard\"",
    "\"conditions\"",
    "\"parameters\"",
    "\"type_name\"",
    "\"TYPE_NAME_LIST\"",
    "\"generic_types\"",
    "null",
    "1",
];

fn soup(tokens: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(tokens), 0..80).prop_map(|v| v.concat())
}

/// The SpiceDB schemas, OpenFGA DSL models and OpenFGA JSON models of the peer suites.
static CORPUS: LazyLock<[Vec<String>; 3]> = LazyLock::new(|| {
    [
        corpus("spicedb/parser", "zed"),
        corpus("openfga-language/transformer", "fga"),
        corpus("openfga-language/transformer", "json"),
    ]
});

fn corpus(dir: &str, ext: &str) -> Vec<String> {
    fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        entries.filter_map(Result::ok).map(|e| e.path()).collect()
    }
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer").join(dir);
    let mut paths: Vec<_> =
        files(&dir).into_iter().flat_map(|p| if p.is_dir() { files(&p) } else { vec![p] }).collect();
    paths.retain(|p| p.extension().is_some_and(|e| e == ext));
    paths.sort();
    paths
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display())))
        .collect()
}

/// Deletes `del` bytes at a position and inserts `ins` there (on character boundaries).
fn mutate(text: &str, at: prop::sample::Index, del: usize, ins: &str) -> String {
    let mut start = at.index(text.len() + 1);
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    let mut end = (start + del).min(text.len());
    while !text.is_char_boundary(end) {
        end += 1;
    }
    format!("{}{ins}{}", &text[..start], &text[end..])
}

fn spans_inside(text: &str, r: &Result<(), Diagnostics>) {
    if let Err(d) = r {
        assert!(!d.0.is_empty(), "an error carries at least one diagnostic");
        for d in &d.0 {
            assert!(d.span.start <= d.span.end && d.span.end <= text.len(), "{d:?} outside the input");
        }
    }
}

fn all_importers(text: &str) {
    spans_inside(text, &parse_spicedb(text).map(|_| ()));
    spans_inside(text, &parse_openfga_dsl(text).and_then(|s| validate_openfga(&s)));
    spans_inside(text, &parse_openfga_json(text).and_then(|s| validate_openfga(&s)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        all_importers(&text);
    }

    #[test]
    fn token_soups_never_panic(zed in soup(ZED), fga in soup(FGA), json in soup(JSON)) {
        spans_inside(&zed, &parse_spicedb(&zed).map(|_| ()));
        spans_inside(&fga, &parse_openfga_dsl(&fga).and_then(|s| validate_openfga(&s)));
        spans_inside(&json, &parse_openfga_json(&json).and_then(|s| validate_openfga(&s)));
    }

    #[test]
    fn mutated_corpus_files_never_panic(
        file in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        del in 0usize..12,
        ins in prop::sample::select(&["", "(", ")", "\n", "}", "{", " or ", "->", "[", "\"", "#", "/*", "x"][..]),
    ) {
        let [zed, fga, json] = &*CORPUS;
        let z = mutate(&zed[file.index(zed.len())], at, del, ins);
        spans_inside(&z, &parse_spicedb(&z).map(|_| ()));
        let f = mutate(&fga[file.index(fga.len())], at, del, ins);
        spans_inside(&f, &parse_openfga_dsl(&f).and_then(|s| validate_openfga(&s)));
        let j = mutate(&json[file.index(json.len())], at, del, ins);
        spans_inside(&j, &parse_openfga_json(&j).and_then(|s| validate_openfga(&s)));
    }
}
