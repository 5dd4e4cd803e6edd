//! Golden files in `tests/data/check/err`: schemas that parse but do not compile, with the rendered
//! diagnostics of the checker in `NNNN_name.err`. `UPDATE_GOLDEN=1 cargo test` rewrites them.

use purview::diag::SourceFile;
use purview::schema::compile;
use purview::syntax::parse_schema;
use std::fs;
use std::path::Path;

#[test]
fn err_cases_fail_to_compile_with_expected_diagnostics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/check/err");
    let mut cases: Vec<_> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pv"))
        .collect();
    cases.sort();
    assert!(!cases.is_empty(), "the check corpus went missing");
    let mut failures = Vec::new();
    for path in &cases {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = fs::read_to_string(path).unwrap();
        let ast = match parse_schema(&text) {
            Ok(ast) => ast,
            Err(d) => {
                failures.push(format!("{name} should parse:\n{}", d.render(&SourceFile::new(&name, text))));
                continue;
            }
        };
        let Err(diags) = compile(&ast) else {
            failures.push(format!("{name} should fail to compile"));
            continue;
        };
        let actual = diags.render(&SourceFile::new(&name, text));
        let expected = path.with_extension("err");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            fs::write(&expected, &actual).unwrap();
            continue;
        }
        let want = fs::read_to_string(&expected).unwrap_or_default();
        if want != actual {
            failures.push(format!(
                "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{want}\n--- actual\n{actual}",
                expected.display()
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
