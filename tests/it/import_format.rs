//! Imported schemas written in Purview's language mean the same: for every SpiceDB schema of the
//! SpiceDB testconfigs and of SpiceDB's parser suite, and every OpenFGA model (DSL and JSON) of the
//! transformer suite, the printed text parses back to the same tree (spans aside), and both trees
//! compile or both fail. Schemas with names Purview cannot write are refused, as listed.

use purview::diag::{Diagnostics, SourceFile};
use purview::syntax::ast::Schema;
use purview::syntax::openfga::{parse_openfga_dsl, parse_openfga_json};
use purview::syntax::parse_schema;
use purview::syntax::printable::to_purview;
use purview::syntax::spicedb::parse_spicedb;
use std::path::{Path, PathBuf};

fn peer(dir: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/peer").join(dir)
}

fn sorted_entries(dir: &Path) -> Vec<PathBuf> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
}

fn render(name: &str, text: &str, d: &Diagnostics) -> String {
    d.render(&SourceFile::new(name, text))
}

/// Schemas Purview's language cannot write, the code of the one diagnostic that says so, and why.
const UNPRINTABLE: &[(&str, &str, &str)] = &[
    (
        "multipleslashes.yaml",
        "invalid-name",
        "the caveat `foo/bar/only_on_tuesday`: a Purview condition name has no `/`-separated parts",
    ),
    ("multipleslashes.zed", "invalid-name", "the caveat `foo/bar/only_on_tuesday` (see above)"),
    ("caveatstype.zed", "invalid-name", "the caveat `someprefix/somecaveat` (see above)"),
    (
        "expirationnonkeyword.zed",
        "reserved-word",
        "a caveat named `expiration`: Purview reads `with expiration` as the expiration trait",
    ),
];

fn unprintable(name: &str) -> Option<&'static str> {
    UNPRINTABLE.iter().find(|(file, _, _)| name.ends_with(&format!("/{file}"))).map(|(_, code, _)| *code)
}

type Importer = fn(&str) -> Result<Schema, Diagnostics>;

/// Imports `text`, prints it, parses the print; asserts the trees are equal and compile alike.
/// The transformer models are syntax tests, so OpenFGA's model checks are not applied: some do
/// not compile, and then the printed schema must not compile either.
fn round_trip(name: &str, import: Importer, text: &str) {
    let imported: Schema =
        import(text).unwrap_or_else(|d| panic!("{name} does not import:\n{}", render(name, text, &d)));
    let printed = match (to_purview(&imported), unprintable(name)) {
        (Ok(printed), None) => printed,
        (Err(d), Some(code)) => {
            let codes: Vec<&str> = d.0.iter().map(|d| d.code).collect();
            assert_eq!(codes, [code], "{name}:\n{}", render(name, text, &d));
            return;
        }
        (Err(d), None) => panic!("{name} cannot be printed:\n{}", render(name, text, &d)),
        (Ok(printed), Some(_)) => panic!("{name} is listed as unprintable but prints as:\n{printed}"),
    };
    let reparsed = parse_schema(&printed).unwrap_or_else(|d| {
        panic!("{name}: the printed schema does not parse:\n{}", render(name, &printed, &d))
    });
    assert_eq!(reparsed, imported, "{name}: the printed schema means something else:\n{printed}");
    let a = purview::schema::compile(&imported).map_err(|d| render(name, text, &d));
    let b = purview::schema::compile(&reparsed).map_err(|d| render("printed", &printed, &d));
    assert_eq!(a.is_ok(), b.is_ok(), "{name}: imported {a:?}\nprinted {b:?}\n{printed}");
}

#[test]
fn spicedb_testconfig_schemas_print_as_purview() {
    let mut count = 0;
    for path in sorted_entries(&peer("spicedb/testconfigs")) {
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let yaml: serde_yaml_ng::Value =
            serde_yaml_ng::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let Some(schema) = yaml.get("schema").and_then(|s| s.as_str()) else {
            panic!("{}: no `schema:`", path.display())
        };
        round_trip(&path.display().to_string(), parse_spicedb, schema);
        count += 1;
    }
    assert!(count >= 49, "only {count} testconfigs");
}

#[test]
fn openfga_transformer_models_print_as_purview() {
    let mut count = 0;
    for dir in sorted_entries(&peer("openfga-language/transformer")) {
        for (file, format) in [
            ("authorization-model.fga", parse_openfga_dsl as Importer),
            ("authorization-model.json", parse_openfga_json),
        ] {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            round_trip(&path.display().to_string(), format, &text);
            count += 1;
        }
    }
    assert!(count >= 56, "only {count} models");
}

#[test]
fn spicedb_parser_corpus_prints_as_purview() {
    let mut count = 0;
    for path in sorted_entries(&peer("spicedb/parser")) {
        if path.extension().and_then(|e| e.to_str()) != Some("zed") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        // Files SpiceDB or Purview refuse are the business of `peer_parse`.
        if parse_spicedb(&text).is_ok() {
            round_trip(&path.display().to_string(), parse_spicedb, &text);
            count += 1;
        }
    }
    assert!(count >= 29, "only {count} SpiceDB parser files");
}
