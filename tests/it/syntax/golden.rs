//! Golden files in `tests/data/syntax`: every `ok/NNNN_name.pv` must parse, and its canonical
//! formatting is `NNNN_name.fmt`; every `err/NNNN_name.pv` must fail, with the rendered diagnostics
//! in `NNNN_name.err`. `UPDATE_GOLDEN=1 cargo test` rewrites the expected files from the actual output.

use purview::diag::SourceFile;
use purview::syntax::{format_schema, parse_schema};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn cases(kind: &str) -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/syntax").join(kind);
    let mut files: Vec<PathBuf> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "pv"))
        .collect();
    files.sort();
    files
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// Compares `actual` with the file `expected`, or writes it when `UPDATE_GOLDEN` is set.
fn compare(expected: &Path, actual: &str, failures: &mut Vec<String>) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        fs::write(expected, actual).unwrap();
        return;
    }
    let want = fs::read_to_string(expected).unwrap_or_default();
    if want != actual {
        failures.push(format!(
            "{} differs (UPDATE_GOLDEN=1 rewrites it)\n--- expected\n{want}\n--- actual\n{actual}",
            expected.display()
        ));
    }
}

#[test]
fn ok_cases_parse_and_format_as_expected() {
    let cases = cases("ok");
    assert!(cases.len() >= 10, "the ok corpus went missing");
    let mut failures = Vec::new();
    for path in &cases {
        let name = file_name(path);
        let text = fs::read_to_string(path).unwrap();
        let schema = match parse_schema(&text) {
            Ok(s) => s,
            Err(d) => {
                failures.push(format!("{name} should parse:\n{}", d.render(&SourceFile::new(&name, text))));
                continue;
            }
        };
        let formatted = format_schema(&schema);
        compare(&path.with_extension("fmt"), &formatted, &mut failures);
        match parse_schema(&formatted) {
            Ok(again) if again == schema => {
                if format_schema(&again) != formatted {
                    failures.push(format!("{name}: formatting is not idempotent"));
                }
            }
            Ok(_) => failures.push(format!("{name}: the formatted schema parses to a different tree")),
            Err(d) => failures.push(format!(
                "{name}: the formatted schema does not parse:\n{}",
                d.render(&SourceFile::new("formatted", formatted.clone()))
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn err_cases_fail_with_expected_diagnostics() {
    let cases = cases("err");
    assert!(cases.len() >= 10, "the err corpus went missing");
    let mut failures = Vec::new();
    for path in &cases {
        let name = file_name(path);
        let text = fs::read_to_string(path).unwrap();
        match parse_schema(&text) {
            Ok(_) => failures.push(format!("{name} should fail to parse")),
            Err(d) => {
                assert!(!d.0.is_empty(), "{name}: an error without diagnostics");
                compare(&path.with_extension("err"), &d.render(&SourceFile::new(&name, text)), &mut failures);
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every kind of error the syntax layer reports has a golden case.
#[test]
fn err_cases_cover_every_error_code() {
    let codes: BTreeSet<String> = cases("err")
        .iter()
        .flat_map(|p| {
            let text = fs::read_to_string(p).unwrap();
            parse_schema(&text).err().into_iter().flat_map(|d| d.0).map(|d| d.code.to_string())
        })
        .collect();
    let all = [
        "syntax",
        "reserved-word",
        "unclosed-delimiter",
        "doc-comment",
        "duplicate-type",
        "duplicate-member",
        "duplicate-condition",
        "duplicate-param",
        "unknown-param-type",
        "param-type-arguments",
        "invalid-count",
        "nesting-limit",
    ];
    let missing: Vec<&str> = all.iter().copied().filter(|c| !codes.contains(*c)).collect();
    assert!(missing.is_empty(), "no golden case reports {missing:?}");
    let unknown: Vec<&String> = codes.iter().filter(|c| !all.contains(&c.as_str())).collect();
    assert!(unknown.is_empty(), "codes without an entry in this list: {unknown:?}");
}
