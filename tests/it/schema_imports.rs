//! SpiceDB `import`s and OpenFGA `fga.mod` manifests wherever a schema is read from a file: test
//! files (an inline schema's imports relative to the test file, as `zed validate` reads them; a
//! `schemaFile`'s relative to the schema file), `purview store init` and `store schema`, and
//! `purview serve --schema` (the schema kept and read back as one self-contained text). A schema
//! given as text alone (WriteSchema) refuses `import`, as SpiceDB does.

use crate::cli::purview;
use crate::server::{clients, pb, runtime, Server, KEY};
use purview::testfile::{run_file, RunOptions};
use std::path::{Path, PathBuf};

fn data(rel: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/imports").join(rel)
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

#[test]
fn test_files_read_imports_relative_to_where_the_schema_is_written() {
    for (file, assertions) in [("inline.yaml", 6), ("schemafile.yaml", 3), ("nested/schemafile_up.yaml", 2)] {
        let r = run_file(&data(file), &RunOptions::default()).unwrap();
        assert!(r.is_success() && r.passed == assertions, "{file}: {r:?}");
    }
    // A missing import is reported where it is written: line 4 of the test file.
    let r = run_file(&data("missing.yaml"), &RunOptions::default()).unwrap();
    assert_eq!((r.passed, r.failed), (0, 1), "{r:?}");
    let m = &r.failures[0].message;
    assert!(m.contains("import-not-found") && m.contains("missing.yaml:4:3"), "{m}");
}

#[test]
fn stores_keep_a_schema_with_imports_or_modules_as_one_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let rels = write(d, "d.rels", "resource:r#team@group:eng\ngroup:eng#member@user:bob\n");
    let main = data("main.zed").display().to_string();
    let store = d.join("s").display().to_string();
    let r = purview(&["store", "init", &store, "--schema", &main, "--data", &rels]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = purview(&["check", "resource:r#view@user:bob", "--store", &store]);
    assert_eq!((r.code, r.stdout.trim()), (0, "allowed"), "{}", r.stderr);
    // Kept as one text that compiles alone: the imported definitions, no `import`.
    let kept = purview(&["store", "schema", &store]).stdout;
    assert!(
        kept.contains("definition user") && kept.contains("definition group") && !kept.contains("import"),
        "{kept}"
    );
    assert!(purview::api::compile_schema_as(purview::syntax::SchemaFormat::SpiceDb, "kept", &kept).is_ok());
    // `store schema FILE` reads the imports too.
    let r = purview(&["store", "schema", &store, &main]);
    assert_eq!(r.code, 0, "{}", r.stderr);

    // An OpenFGA modular model: the combined model, kept in Purview's language.
    let manifest = crate::openfga_gaps::write_fga_modules(d);
    let tuples = write(d, "t.rels", "org:acme#member@user:ann\ndoc:1#org@org:acme\n");
    let store2 = d.join("s2").display().to_string();
    let r = purview(&["store", "init", &store2, "--schema", &manifest, "--data", &tuples]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let r = purview(&["check", "doc:1#viewer@user:ann", "--store", &store2]);
    assert_eq!((r.code, r.stdout.trim()), (0, "allowed"), "{}", r.stderr);
    assert!(purview(&["store", "schema", &store2]).stdout.contains("relation admin: user"));

    // A missing import fails `store init` with the place, and creates nothing.
    let bad = write(d, "bad.zed", "use import\nimport \"nowhere.zed\"\ndefinition user {}\n");
    let store3 = d.join("s3");
    let r = purview(&["store", "init", store3.to_str().unwrap(), "--schema", &bad]);
    assert_eq!(r.code, 4, "{}", r.stderr);
    assert!(r.stderr.contains("bad.zed:2:1") && r.stderr.contains("import-not-found"), "{}", r.stderr);
    assert!(!store3.join("FORMAT").exists());
}

#[test]
fn serve_reads_imports_and_write_schema_refuses_them() {
    let main = data("main.zed").display().to_string();
    let server = Server::start(&["--memory", "--schema", &main]);
    runtime().block_on(async {
        let mut c = clients(server.grpc, Some(KEY)).await;
        let text = c.schema.read_schema(pb::ReadSchemaRequest {}).await.unwrap().into_inner().schema_text;
        assert!(text.contains("definition group") && !text.contains("import"), "{text}");
        // The text read back is accepted as it is.
        c.schema.write_schema(pb::WriteSchemaRequest { schema: text.clone() }).await.unwrap();
        // As in SpiceDB v1.54: `import` in WriteSchema is an invalid argument.
        let e = c
            .schema
            .write_schema(pb::WriteSchemaRequest { schema: format!("use import\nimport \"x.zed\"\n{text}") })
            .await
            .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");
        assert!(e.message().contains("import statements are not allowed in this context"), "{}", e.message());
    });
}
