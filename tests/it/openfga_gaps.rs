//! OpenFGA conformance gaps closed: models OpenFGA's server accepts load with warnings.

use super::cli::purview;
use std::path::Path;

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// A repeated operand, a repeated type restriction and an unused condition: OpenFGA's server
/// accepts the model (its language validator calls them errors), so Purview loads it and warns.
#[test]
fn accepted_openfga_models_load_with_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let model = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define owner: [user, user]\n    \
                 define viewer: owner or owner\n    define hidden: owner but not owner\n\
                 condition unused(x: int) {\n  x < 3\n}\n";
    let m = write(dir.path(), "model.fga", model);
    let r = purview(&["validate", &m]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("ok (OpenFGA model: 2 types, 1 condition)"), "{}", r.stdout);
    for (code, line) in [
        ("duplicate-type-restriction", "model.fga:6:"),
        ("duplicate-operand", "model.fga:7:"),
        ("duplicate-operand", "model.fga:8:"),
        ("unused-condition", "model.fga:9:"),
    ] {
        let at = r.stderr.find(&format!("warning[{code}]")).unwrap_or_else(|| panic!("{code}: {}", r.stderr));
        assert!(r.stderr[at..].contains(line), "{code} at {line}: {}", r.stderr);
    }
    assert!(!r.stderr.contains("error"), "{}", r.stderr);
    let r = purview(&["import", "openfga", &m]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stderr.contains("warning[unused-condition]"), "{}", r.stderr);
    // The strict validator (openfga/language's) still reports them as errors.
    let ast = purview::syntax::openfga::parse_openfga_dsl(model).unwrap();
    let strict = purview::syntax::openfga_check::validate_openfga(&ast).unwrap_err();
    assert_eq!(strict.0.len(), 4, "{strict:?}");
}
