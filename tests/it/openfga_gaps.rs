//! OpenFGA conformance gaps closed: models OpenFGA's server accepts load with warnings.

use super::cli::purview;
use std::path::Path;

/// A modular OpenFGA model in `d`: `mods/core.fga` (user, org with members), `mods/docs.fga`
/// (extends org with admins; docs viewable by an org's members); returns the `fga.mod` path.
pub(crate) fn write_fga_modules(d: &Path) -> String {
    write(
        d,
        "mods/core.fga",
        "module core\n\ntype user\n\ntype org\n  relations\n    define member: [user]\n",
    );
    write(
        d,
        "mods/docs.fga",
        "module docs\n\nextend type org\n  relations\n    define admin: [user]\n\ntype doc\n  relations\n    \
         define org: [org]\n    define viewer: [user] or member from org\n",
    );
    write(d, "fga.mod", "schema: '1.2'\ncontents:\n  - mods/core.fga\n  - mods/docs.fga\n")
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
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

const MODULE_CASES: &str = "tests/peer/openfga-language/transformer-module";

/// The module files of an openfga/language transformer-module case, sorted by name (as its
/// harness reads them).
fn module_files(case: &Path) -> Vec<(String, String)> {
    let mut files: Vec<_> =
        std::fs::read_dir(case.join("module")).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
        .iter()
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(p).unwrap()))
        .collect()
}

/// A model as sorted lines of Purview text (the order of types and relations aside).
fn lines(schema: &purview::syntax::ast::Schema) -> Vec<String> {
    let text = purview::syntax::printable::to_purview(schema).unwrap();
    let mut v: Vec<String> = text.lines().map(|l| l.trim().to_string()).filter(|l| !l.is_empty()).collect();
    v.sort();
    v
}

/// openfga/language's module cases: those it combines give its model; for those it refuses,
/// every error it reports has one of Purview's at the same file and line.
#[test]
fn openfga_module_cases_combine_like_openfga() {
    use purview::syntax::openfga::modules::Modules;
    let (mut passed, mut failed) = (0, Vec::new());
    let mut cases: Vec<_> = std::fs::read_dir(MODULE_CASES).unwrap().map(|e| e.unwrap().path()).collect();
    cases.sort();
    for case in cases.iter().filter(|c| c.join("module").is_dir()) {
        let name = case.file_name().unwrap().to_string_lossy().into_owned();
        let modules = Modules::new(module_files(case));
        let result = purview::syntax::parse_openfga_modules(&modules)
            .and_then(|(ast, _)| purview::schema::compile(&ast).map(|_| ast));
        if case.join("authorization-model.json").exists() {
            let json = std::fs::read_to_string(case.join("authorization-model.json")).unwrap();
            let want = purview::syntax::openfga::parse_openfga_json(&json).unwrap();
            match result {
                Ok(ast) if lines(&ast) == lines(&want) => passed += 1,
                Ok(ast) => failed.push(format!("{name}: {:?} != {:?}", lines(&ast), lines(&want))),
                Err(d) => failed.push(format!("{name}: refused: {:?}", modules.split(d))),
            }
            continue;
        }
        let expected: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(case.join("expected_errors.json")).unwrap())
                .unwrap();
        // openfga/language's validator: its warnings are errors there.
        let (combined, mut all) = modules.combine();
        all.extend(
            purview::syntax::openfga_check::validate_openfga(&combined)
                .err()
                .map(|d| d.0)
                .unwrap_or_default(),
        );
        assert!(result.is_err(), "{name}: Purview accepts a model openfga/language refuses");
        let found: Vec<(String, usize)> = modules
            .split(purview::diag::Diagnostics(all))
            .iter()
            .flat_map(|(f, ds)| ds.0.iter().map(|d| (f.name.clone(), d.line_col(f).0)).collect::<Vec<_>>())
            .collect();
        for e in expected.as_array().unwrap() {
            let file = e["file"].as_str().unwrap_or_default().to_string();
            // openfga/language counts lines from 0 (and names no line for a file that is not a module).
            let line = e["line"]["start"].as_u64().unwrap() as usize + 1;
            let hit = found.iter().any(|(f, l)| *f == file && (*l == line || e["line"]["start"] == 0));
            if hit {
                passed += 1;
            } else {
                failed.push(format!("{name}: {file}:{line}: {} (found {found:?})", e["msg"]));
            }
        }
    }
    println!("openfga/language module cases: {passed} passed, {} failed", failed.len());
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert!(passed >= 25, "only {passed} module assertions ran");
}

/// `fga.mod` wherever a schema is read: `validate`, `import openfga`, `--schema`, and store
/// files whose `model_file` is a manifest; problems point into the module files.
#[test]
fn fga_mod_manifests_are_read_wherever_a_model_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let manifest = write_fga_modules(d);
    let r = purview(&["validate", &manifest]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(r.stdout.contains("OpenFGA modular model: 3 types"), "{}", r.stdout);
    let r = purview(&["import", "openfga", &manifest]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("relation admin: user"), "{}", r.stdout);
    let store = write(
        d,
        "store.fga.yaml",
        "model_file: fga.mod\ntuples:\n  - {user: 'user:ann', relation: member, object: 'org:acme'}\n  \
         - {user: 'org:acme', relation: org, object: 'doc:1'}\ntests:\n  - check:\n      - user: user:ann\n        \
         object: doc:1\n        assertions: {viewer: true}\n",
    );
    let r = purview(&["test", &store]);
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    // Errors name the module file and line: a relation added twice, an undefined extended type.
    write(
        d,
        "mods/docs.fga",
        "module docs\n\nextend type org\n  relations\n    define member: [user]\n\nextend type nope\n  relations\n    \
         define x: [user]\n",
    );
    let r = purview(&["validate", &manifest]);
    assert_eq!(r.code, 4, "{}{}", r.stdout, r.stderr);
    assert!(r.stderr.contains("docs.fga:5:12"), "{}", r.stderr);
    assert!(r.stderr.contains("extended type `nope` does not exist"), "{}", r.stderr);
    assert!(r.stderr.contains("docs.fga:7:13"), "{}", r.stderr);
    let r = purview(&["check", "--schema", &manifest, "doc:1", "viewer", "user:ann"]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    // A manifest of another schema version is refused.
    let bad = write(d, "old.mod", "schema: '1.1'\ncontents: [mods/core.fga]\n");
    let r = purview(&["validate", &bad]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("schema version `1.1`"), "{}", r.stderr);
}

/// OpenFGA's server walks each relation once per path, so `r0 and r0` with `r0` reachable only
/// through a userset is refused ("potential loop"), though the language validator accepts it; so
/// does Purview. The same model with `r0` directly assignable to users loads.
#[test]
fn models_openfga_refuses_for_a_potential_loop_are_refused() {
    use purview::api::compile_schema_as;
    use purview::syntax::SchemaFormat;
    let model = |t1: &str| {
        format!(
            "model\n  schema 1.1\ntype user\ntype t0\n  relations\n    define r0: [t1#r2, t0, t1]\n    \
             define r1: r0 but not r0\n    define r2: r0 and r1\ntype t1\n  relations\n    define r2: [{t1}]\n"
        )
    };
    let refused = compile_schema_as(SchemaFormat::OpenFgaDsl, "m.fga", &model("user, t1")).unwrap_err();
    let text = refused.to_string();
    assert_eq!(refused.diagnostics.0.len(), 1, "{text}");
    assert!(
        text.contains(
            "relation `r2` of type `t0` is refused by OpenFGA: OpenFGA finds only a potential loop"
        ),
        "{text}"
    );
    let ast = purview::syntax::openfga::parse_openfga_dsl(&model("user, t1")).unwrap();
    assert!(purview::syntax::openfga_check::validate_openfga(&ast)
        .is_err_and(|d| d.0.iter().all(|d| d.code == "duplicate-operand")));
    let direct = model("user, t1").replace("define r0: [t1#r2, t0, t1]", "define r0: [user, t1#r2]");
    compile_schema_as(SchemaFormat::OpenFgaDsl, "m.fga", &direct).unwrap();
}

/// Condition parameters as OpenFGA converts them (answers taken from `fga model test` 0.8.2): a
/// value of the wrong type is error 2000; an `int` also takes `"2"` and `2.0`; an `ipaddress` is
/// an address (not a network), compared with `in_cidr`.
#[test]
fn condition_parameters_convert_as_in_openfga() {
    let model = "model\n  schema 1.1\ntype user\ntype doc\n  relations\n    define v1: [user with c_ip]\n    \
                 define v2: [user with c_int]\n    define v3: [user with c_ts]\n    define v4: [user with c_list]\n\
                 condition c_ip(ip: ipaddress) {\n  ip.in_cidr(\"10.0.0.0/8\")\n}\n\
                 condition c_int(x: int) {\n  x < 3\n}\n\
                 condition c_ts(t: timestamp) {\n  t < timestamp(\"2030-01-01T00:00:00Z\")\n}\n\
                 condition c_list(l: list<string>) {\n  \"a\" in l\n}\n";
    let cases: Vec<(&str, serde_json::Value, Result<bool, u32>)> = vec![
        ("v1", serde_json::json!({"ip": "nonsense"}), Err(2000)),
        ("v1", serde_json::json!({"ip": 12}), Err(2000)),
        ("v1", serde_json::json!({"ip": "10.0.0.0/24"}), Err(2000)),
        ("v1", serde_json::json!({"ip": "10.0.0.1"}), Ok(true)),
        ("v1", serde_json::json!({"ip": "::1"}), Ok(false)),
        ("v2", serde_json::json!({"x": "abc"}), Err(2000)),
        ("v2", serde_json::json!({"x": 2.5}), Err(2000)),
        ("v2", serde_json::json!({"x": "2"}), Ok(true)),
        ("v2", serde_json::json!({"x": 2.0}), Ok(true)),
        ("v3", serde_json::json!({"t": "yesterday"}), Err(2000)),
        ("v3", serde_json::json!({"t": "2020-01-01T00:00:00Z"}), Ok(true)),
        ("v4", serde_json::json!({"l": "a"}), Err(2000)),
        ("v4", serde_json::json!({"l": ["a", 1]}), Err(2000)),
        ("v4", serde_json::json!({"l": ["b", "a"]}), Ok(true)),
    ];
    let tuples: Vec<serde_json::Value> = ["v1", "v2", "v3", "v4"]
        .iter()
        .zip(["c_ip", "c_int", "c_ts", "c_list"])
        .map(|(r, c)| serde_json::json!({"object": "doc:d", "relation": r, "user": "user:a", "condition": {"name": c}}))
        .collect();
    let asserts: Vec<serde_json::Value> = cases
        .iter()
        .map(|(rel, ctx, want)| {
            let mut a = serde_json::json!({"tuple": {"object": "doc:d", "relation": rel, "user": "user:a"}, "context": ctx});
            match want {
                Ok(b) => a["expectation"] = serde_json::json!(b),
                Err(code) => a["errorCode"] = serde_json::json!(code),
            }
            a
        })
        .collect();
    let file = serde_json::json!({"tests": [{"name": "params", "stages": [{"model": model, "tuples": tuples, "checkAssertions": asserts}]}]});
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("params.yaml");
    std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
    let opts = purview::testfile::RunOptions::default();
    let report = purview::testfile::run_file(&path, &opts).unwrap();
    assert!(report.is_success(), "{:#?}", report.failures);
    assert!(report.passed >= cases.len(), "{report:?}");
}
