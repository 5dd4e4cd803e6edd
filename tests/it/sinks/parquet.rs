//! Parquet output read back by the parquet crate's reader (every row, in order, equals the CSV
//! output of the same run; deltas too) and by DuckDB (a partitioned directory reads as the
//! whole table), and a sink path that cannot be written.

use super::{csv_rows, index_of, loaded, output, random_data, random_relationship, view_target, Rng};
use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use purview::materialize::{deltas, write_parquet_deltas, Format, Partition, Strategy};
use purview::{EvalOptions, Relationship, WriteOp};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Every row of a Parquet file as strings, and its key-value metadata.
fn read(bytes: Vec<u8>) -> (Vec<Vec<String>>, Vec<(String, String)>, usize) {
    let reader = SerializedFileReader::new(bytes::Bytes::from(bytes)).unwrap();
    let meta = reader.metadata().file_metadata();
    let kv = meta
        .key_value_metadata()
        .map(|kv| kv.iter().map(|k| (k.key.clone(), k.value.clone().unwrap_or_default())).collect())
        .unwrap_or_default();
    let groups = reader.num_row_groups();
    let rows = reader
        .get_row_iter(None)
        .unwrap()
        .map(|r| {
            r.unwrap()
                .get_column_iter()
                .map(|(_, f)| match f {
                    Field::Str(s) => s.clone(),
                    other => panic!("a string column, not {other:?}"),
                })
                .collect()
        })
        .collect();
    (rows, kv, groups)
}

#[test]
fn parquet_rows_equal_the_csv_output_of_the_same_run() {
    for seed in [1u64, 7, 42] {
        let pv = loaded(&random_data(seed, 300, 3000));
        let data = index_of(&pv);
        let csv = csv_rows(&String::from_utf8(output(&data, Format::Csv)).unwrap());
        assert!(csv.len() > 1000, "a dataset of some size ({} pairs)", csv.len());
        assert!(csv.iter().any(|r| r[3] == "conditional"), "conditional pairs stay conditional");
        let (rows, kv, groups) = read(output(&data, Format::Parquet));
        assert_eq!(rows.len(), csv.len(), "row count");
        assert_eq!(rows, csv, "every row, in order");
        assert!(groups >= 1);
        let revision = kv.iter().find(|(k, _)| k == "purview.revision").map(|(_, v)| v.clone());
        assert_eq!(revision, Some(data.revision.to_string()), "the revision the file reflects");
    }
}

#[test]
fn parquet_deltas_equal_the_csv_deltas() {
    let pv = loaded(&random_data(3, 200, 2000));
    let before = index_of(&pv);
    let mut rng = Rng(99);
    let ops: Vec<WriteOp> = (0..40)
        .map(|i| {
            let r = Relationship::parse(&random_relationship(&mut rng, 200)).unwrap();
            if i % 3 == 0 {
                WriteOp::Delete(r)
            } else {
                WriteOp::Touch(r)
            }
        })
        .collect();
    pv.write(&ops).unwrap();
    let after = index_of(&pv);
    let t = view_target(&after);
    let found =
        deltas(&before, &after, &ops, &t, &EvalOptions::default(), Strategy::Auto, Partition::default())
            .unwrap();
    assert!(!found.is_empty());
    let mut out = Vec::new();
    write_parquet_deltas(&after, &t, (before.revision, after.revision), &found, &mut out).unwrap();
    let (rows, _, _) = read(out);
    let expected: Vec<Vec<String>> = found
        .iter()
        .map(|d| {
            let d = purview::materialize::delta::name(&after, &t, d);
            let outcome = if d.outcome == purview::Tri::Cond { "conditional" } else { "allowed" };
            vec![
                d.change.name().into(),
                d.subject.to_string(),
                d.permission,
                d.object.to_string(),
                outcome.into(),
            ]
        })
        .collect();
    assert_eq!(rows, expected);
}

/// The Python of a venv with DuckDB under `target/` (made on first use; `.ci/run` makes it too).
fn duckdb_python() -> PathBuf {
    let venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/pyenv-duckdb");
    let python = venv.join("bin/python");
    let ok = |p: &Path| {
        Command::new(p)
            .args(["-c", "import duckdb"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if ok(&python) {
        return python;
    }
    let made = Command::new("python3").arg("-m").arg("venv").arg(&venv).status();
    assert!(
        made.is_ok_and(|s| s.success()),
        "cannot make a Python venv in {}: install python3 and python3-venv (Debian: `apt-get install \
         python3-venv`; .ci/run installs them)",
        venv.display()
    );
    let pip = Command::new(&python)
        .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check", "duckdb==2.0.1"])
        .status();
    assert!(pip.is_ok_and(|s| s.success()), "cannot install DuckDB's Python package into {}", venv.display());
    assert!(ok(&python), "DuckDB does not import in {}", venv.display());
    python
}

fn purview(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_purview")).args(args).stdin(Stdio::null()).output().unwrap()
}

#[test]
fn duckdb_reads_a_partitioned_directory_as_the_whole_table() {
    let dir = tempfile::tempdir().unwrap();
    let (schema, data) = (dir.path().join("s.pv"), dir.path().join("d.rels"));
    std::fs::write(&schema, super::SCHEMA).unwrap();
    std::fs::write(&data, random_data(5, 150, 1200)).unwrap();
    let (s, d) = (schema.to_str().unwrap(), data.to_str().unwrap());
    let csv = dir.path().join("view.csv");
    let base = ["materialize", "-s", s, "-d", d, "-p", "message#view"];
    let out = purview(&[&base[..], &["-o", csv.to_str().unwrap()]].concat());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let table = format!("{}/table/", dir.path().display());
    for i in 0..3 {
        let part = format!("{i}/3");
        let out =
            purview(&[&base[..], &["--format", "parquet", "--partition", &part, "-o", &table]].concat());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let files: Vec<String> = std::fs::read_dir(dir.path().join("table/permission=view"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let mut files = files;
    files.sort();
    assert_eq!(
        files,
        ["part-00000-of-00003.parquet", "part-00001-of-00003.parquet", "part-00002-of-00003.parquet"]
    );
    let script = format!(
        "import duckdb, json\n\
         rows = duckdb.sql(\"SELECT subject, permission, object, outcome FROM read_parquet('{table}**/*.parquet', \
         hive_partitioning = false)\").fetchall()\n\
         print(json.dumps(rows))\n"
    );
    let out = Command::new(duckdb_python()).args(["-c", &script]).output().unwrap();
    assert!(out.status.success(), "duckdb: {}", String::from_utf8_lossy(&out.stderr));
    let mut read: Vec<Vec<String>> = serde_json::from_slice(&out.stdout).unwrap();
    let mut expected = csv_rows(&std::fs::read_to_string(&csv).unwrap());
    assert!(expected.len() > 500, "{} pairs", expected.len());
    assert_eq!(read.len(), expected.len(), "row count");
    assert!(read.contains(&expected[expected.len() / 2]), "a sample row");
    read.sort();
    expected.sort();
    assert_eq!(read, expected, "the directory reads as the whole CSV output");
}

#[test]
fn an_unwritable_sink_path_is_an_input_error_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let schema = dir.path().join("s.pv");
    let data = dir.path().join("d.rels");
    std::fs::write(&schema, super::SCHEMA).unwrap();
    std::fs::write(&data, random_data(2, 20, 50)).unwrap();
    let blocked = dir.path().join("file");
    std::fs::write(&blocked, "a file, not a directory").unwrap();
    for (format, by, path) in [
        ("parquet", "pair", blocked.join("out.parquet")),
        ("parquet", "pair", blocked.join("dir/")),
        ("jsonl", "object", blocked.join("out.jsonl")),
    ] {
        let p = path.to_str().unwrap().to_string();
        let out = purview(&[
            "materialize",
            "-s",
            schema.to_str().unwrap(),
            "-d",
            data.to_str().unwrap(),
            "-p",
            "message#view",
            "--format",
            format,
            "--by",
            by,
            "-o",
            &p,
        ]);
        assert_eq!(out.status.code(), Some(4), "{}", String::from_utf8_lossy(&out.stderr));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("cannot"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(std::fs::read_to_string(&blocked).unwrap(), "a file, not a directory");
}
