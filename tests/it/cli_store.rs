//! `purview store …`, `purview write` and `--store` on the query commands: the store's command
//! line, end to end through the binary.

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::cli::{purview, purview_in, Run};

/// Runs and expects exit `code`; returns the run.
fn expect(code: i32, args: &[&str], stdin: &str) -> Run {
    let r = purview_in(args, stdin);
    assert_eq!(r.code, code, "purview {args:?}\nstdout:\n{}\nstderr:\n{}", r.stdout, r.stderr);
    r
}

use crate::storage::basics::SCHEMA;

const DATA: &str = "\
// the engineers
group:eng#member@user:ann
group:eng#member@user:bob

doc:d1#viewer@group:eng#member
doc:d1#owner@user:cat
doc:d2#viewer@user:*
";

struct Fixture {
    _tmp: tempfile::TempDir,
    root: PathBuf,
}

impl Fixture {
    fn new() -> Fixture {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_path_buf();
        std::fs::write(root.join("schema.pv"), SCHEMA).unwrap();
        std::fs::write(root.join("data.rels"), DATA).unwrap();
        Fixture { _tmp: tmp, root }
    }

    fn path(&self, name: &str) -> String {
        self.root.join(name).display().to_string()
    }

    fn file(&self, name: &str, text: &str) -> String {
        std::fs::write(self.root.join(name), text).unwrap();
        self.path(name)
    }

    /// A store `name` created with the schema and data; returns its directory.
    fn store(&self, name: &str) -> String {
        let dir = self.path(name);
        let r = expect(
            0,
            &["store", "init", &dir, "--schema", &self.path("schema.pv"), "--data", &self.path("data.rels")],
            "",
        );
        assert!(r.stdout.contains("imported 5 relationships at revision 1"), "{}", r.stdout);
        dir
    }
}

/// The export of a store, sorted.
fn export(dir: &str, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["store", "export", dir];
    args.extend_from_slice(extra);
    let r = expect(0, &args, "");
    let mut lines: Vec<String> = r.stdout.lines().map(str::to_string).collect();
    lines.sort();
    lines
}

fn info(dir: &str) -> serde_json::Value {
    let r = expect(0, &["store", "info", dir, "--json"], "");
    serde_json::from_str(r.stdout.trim()).unwrap_or_else(|e| panic!("{e}: {}", r.stdout))
}

#[test]
fn init_write_query_history_export_and_reimport() {
    let f = Fixture::new();
    let dir = f.store("s");
    let i = info(&dir);
    assert_eq!((i["revision"].as_u64(), i["relationships"].as_u64()), (Some(1), Some(5)), "{i}");
    let human = expect(0, &["store", "info", &dir], "");
    assert!(human.stdout.contains("relationships             5"), "{}", human.stdout);

    // One batch: touch, delete, replace (ann and bob leave eng, dan joins), create.
    let changes = "+doc:d3#viewer@user:eve\n-doc:d1#owner@user:cat\n=group:eng#member@user:dan\ncreate doc:d4#owner@user:fay\ndoc:d5#owner@user:gus\n";
    let r = expect(0, &["write", "--store", &dir], changes);
    assert_eq!(r.stdout, "revision 2\n");
    assert_eq!(
        export(&dir, &[]),
        [
            "doc:d1#viewer@group:eng#member",
            "doc:d2#viewer@user:*",
            "doc:d3#viewer@user:eve",
            "doc:d4#owner@user:fay",
            "doc:d5#owner@user:gus",
            "group:eng#member@user:dan",
        ]
    );

    // Queries on the store, now and as of revision 1.
    expect(0, &["check", "--store", &dir, "doc:d1#view@user:dan"], "");
    expect(1, &["check", "--store", &dir, "doc:d1#view@user:ann"], "");
    expect(0, &["check", "--store", &dir, "--revision", "1", "doc:d1#view@user:ann"], "");
    expect(1, &["check", "--store", &dir, "--revision", "1", "doc:d1#view@user:dan"], "");
    let who = expect(0, &["who", "--store", &dir, "doc:d1#view@user"], "");
    assert_eq!(who.stdout.trim(), "user:dan");
    let who1 = expect(0, &["who", "--store", &dir, "--revision", "1", "doc:d1#view@user"], "");
    assert_eq!(who1.stdout.lines().collect::<Vec<_>>(), ["user:ann", "user:bob", "user:cat"]);
    let what = expect(0, &["what", "--store", &dir, "doc#view@user:gus"], "");
    assert_eq!(what.stdout.lines().collect::<Vec<_>>(), ["doc:d2", "doc:d5"], "doc:d2 is everyone's");
    let q = expect(
        1,
        &["query", "--store", &dir, "--json", "check doc:d4#view@user:fay; check doc:d4#view@user:gus"],
        "",
    );
    assert_eq!(q.stdout.lines().count(), 2, "{}", q.stdout);
    let reference = expect(0, &["--engine", "reference", "who", "--store", &dir, "doc:d1#view@user"], "");
    assert_eq!(reference.stdout, who.stdout);
    let r = expect(4, &["check", "--store", &dir, "--revision", "9", "doc:d1#view@user:dan"], "");
    assert!(r.stderr.contains("revision 9"), "{}", r.stderr);

    // History: who joined and left eng, and when.
    let h = expect(0, &["store", "history", &dir, "group:eng#member"], "");
    let rows: Vec<Vec<&str>> = h.stdout.lines().map(|l| l.split_whitespace().collect()).collect();
    let summary: Vec<(&str, &str, &str)> = rows.iter().map(|r| (r[0], r[2], r[3])).collect();
    assert_eq!(
        summary,
        [
            ("1", "added", "group:eng#member@user:ann"),
            ("1", "added", "group:eng#member@user:bob"),
            ("2", "removed", "group:eng#member@user:ann"),
            ("2", "removed", "group:eng#member@user:bob"),
            ("2", "added", "group:eng#member@user:dan"),
        ],
        "{}",
        h.stdout
    );
    let h = expect(0, &["store", "history", &dir, "doc:d1", "--since", "2", "--json"], "");
    let entries: Vec<serde_json::Value> =
        h.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(entries.len(), 1, "{}", h.stdout);
    assert_eq!(entries[0]["change"], "removed");
    assert_eq!(entries[0]["relationship"], "doc:d1#owner@user:cat");
    let time = entries[0]["time"].as_str().unwrap();
    let h = expect(0, &["store", "history", &dir, "doc:d1", "--since", time], "");
    assert_eq!(h.stdout.lines().count(), 1, "{}", h.stdout);
    expect(4, &["store", "history", &dir, "dok:d1"], "");
    expect(4, &["store", "history", &dir, "doc:d1", "--since", "yesterday"], "");

    // Export (now and as of revision 1) → a fresh store reproduces it exactly.
    let now = export(&dir, &[]);
    let at1 = export(&dir, &["--at", "1"]);
    assert_eq!(at1.len(), 5);
    assert!(at1.contains(&"doc:d1#owner@user:cat".to_string()));
    let out = f.path("export.rels");
    let r = expect(0, &["store", "export", &dir, "--output", &out], "");
    assert!(r.stdout.contains("exported 6 relationships at revision 2"), "{}", r.stdout);
    let copy = f.path("copy");
    expect(0, &["store", "init", &copy, "--schema", &f.path("schema.pv")], "");
    let r = expect(0, &["store", "import", &copy, &out], "");
    assert!(r.stdout.contains("imported 6 relationships at revision 1"), "{}", r.stdout);
    assert_eq!(export(&copy, &[]), now);
    assert_ne!(now, at1);

    let v = expect(0, &["store", "verify", &dir], "");
    assert_eq!(v.stdout, "ok\n");
    let gc = expect(0, &["store", "gc", &dir, "--json"], "");
    let gc: serde_json::Value = serde_json::from_str(gc.stdout.trim()).unwrap();
    assert_eq!(gc["deleted_rows"], 0, "within the history window nothing is collected: {gc}");
    expect(3, &["store", "gc", &dir, "--history-window", "soon"], "");
    let gc = expect(0, &["store", "gc", &dir, "--history-window", "0s", "--json"], "");
    let gc: serde_json::Value = serde_json::from_str(gc.stdout.trim()).unwrap();
    assert_eq!(gc["oldest_readable_revision"], 1, "a zero window keeps only the latest revision: {gc}");
    assert_eq!(gc["log_records"], 1, "the log record of revision 1 is collected: {gc}");
    let r = expect(4, &["check", "--store", &dir, "--revision", "0", "doc:d1#view@user:cat"], "");
    assert!(r.stderr.contains("no longer readable"), "{}", r.stderr);
}

#[test]
fn a_bad_import_line_is_named_and_nothing_is_written() {
    let f = Fixture::new();
    let dir = f.store("s");
    let before = export(&dir, &[]);
    let good = f.file("good.rels", "doc:d7#viewer@user:hal\n");
    // A line the schema refuses, after a comment and a blank line (line numbers count them).
    let bad = f.file(
        "bad.rels",
        "doc:d8#viewer@user:ida\n// note\n\ndoc:d8#viewr@user:joe\ndoc:d9#owner@user:kim\n",
    );
    let r = expect(4, &["store", "import", &dir, &good, &bad], "");
    assert!(r.stderr.contains(&format!("{bad}:4: ")), "{}", r.stderr);
    assert!(r.stderr.contains("error[unknown-relation]") && r.stderr.contains("viewr"), "{}", r.stderr);
    // A line that does not parse, with its column.
    let broken = f.file("broken.rels", "doc:d8#viewer@user:ida\n\ndoc:d8#viewer@user:\n");
    let r = expect(4, &["store", "import", &dir, &broken], "");
    assert!(r.stderr.contains(&format!("{broken}:3:")), "{}", r.stderr);
    assert!(r.stderr.contains("error[relationship-syntax]"), "{}", r.stderr);
    assert_eq!(export(&dir, &[]), before);
    assert_eq!(info(&dir)["revision"], 1);

    // The same through `write`: every bad line is named, nothing is written.
    let r = expect(4, &["write", "--store", &dir], "+doc:d8#viewer@user:ida\nfrob doc:d1\n+doc:d8#viewer@\n");
    assert!(r.stderr.contains("<stdin>:2: ") && r.stderr.contains("<stdin>:3: "), "{}", r.stderr);
    let changes = f.file("changes", "+doc:d8#viewer@user:ida\n\ncreate doc:d1#viewer@group:eng#member\n");
    let r = expect(4, &["write", "--store", &dir, &changes], "");
    assert!(r.stderr.contains(&format!("{changes}:3: ")), "{}", r.stderr);
    assert!(r.stderr.contains("error[already-exists]"), "{}", r.stderr);
    assert_eq!(export(&dir, &[]), before);

    // `init` with a bad data file creates nothing.
    let fresh = f.path("fresh");
    let r = expect(4, &["store", "init", &fresh, "--schema", &f.path("schema.pv"), "--data", &bad], "");
    assert!(r.stderr.contains(&format!("{bad}:4: ")), "{}", r.stderr);
    assert!(!Path::new(&fresh).exists());
}

#[test]
fn a_schema_change_is_refused_with_its_blockers_or_applied() {
    let f = Fixture::new();
    let dir = f.store("s");
    let shown = expect(0, &["store", "schema", &dir], "");
    assert_eq!(shown.stdout, SCHEMA);

    // No more usersets on doc#viewer, no owner: two reasons, one relationship each.
    let narrow = f.file(
        "narrow.pv",
        "type user {}\ntype group {\n  relation member: user | group#member\n}\ntype doc {\n  relation viewer: user | user:*\n  permission view = viewer\n}\n",
    );
    let r = expect(4, &["store", "schema", &dir, &narrow], "");
    assert!(r.stderr.contains("error[schema-change-blocked]"), "{}", r.stderr);
    assert!(
        r.stderr.contains("relation `doc#owner` is removed (1 relationship, e.g. `doc:d1#owner@user:cat`)"),
        "{}",
        r.stderr
    );
    assert!(r.stderr.contains("doc:d1#viewer@group:eng#member"), "{}", r.stderr);
    assert_eq!(expect(0, &["store", "schema", &dir], "").stdout, SCHEMA);
    assert_eq!(info(&dir)["revision"], 1);

    // A schema that does not compile: diagnostics with the place.
    let broken = f.file("broken.pv", "type user {}\ntype doc { relation viewer: usr }\n");
    let r = expect(4, &["store", "schema", &dir, &broken], "");
    assert!(r.stderr.contains("error[unknown-type]") && r.stderr.contains("broken.pv:2:"), "{}", r.stderr);

    // A compatible change: a new relation, used at once.
    let wider = SCHEMA.replace(
        "permission view = viewer + owner",
        "relation editor: user\n  permission view = viewer + owner + editor",
    );
    let wider_file = f.file("wider.pv", &wider);
    let r = expect(0, &["store", "schema", &dir, &wider_file], "");
    assert_eq!(r.stdout.trim(), "replaced the schema at revision 2");
    assert_eq!(expect(0, &["store", "schema", &dir], "").stdout, wider);
    expect(0, &["write", "--store", &dir], "doc:d2#editor@user:lee\n");
    expect(0, &["check", "--store", &dir, "doc:d2#view@user:lee"], "");
}

#[test]
fn write_batches_prints_one_revision_per_batch() {
    let f = Fixture::new();
    let dir = f.store("s");
    let input = "+doc:d3#viewer@user:a\n+doc:d3#viewer@user:b\n\n\n// a comment does not end a batch\n-doc:d3#viewer@user:a\n# nor this\ndoc:d4#owner@user:c\n\n=doc:d3#viewer@user:d\n";
    let r = expect(0, &["write", "--store", &dir, "--batches"], input);
    assert_eq!(r.stdout, "revision 2\nrevision 3\nrevision 4\n");
    assert_eq!(
        export(&dir, &["--at", "3"])
            .iter()
            .filter(|l| l.starts_with("doc:d3") || l.starts_with("doc:d4"))
            .count(),
        2
    );
    assert!(export(&dir, &[]).contains(&"doc:d3#viewer@user:d".to_string()));

    // A bad batch stops the run; the batches before it stay written.
    let r = expect(
        4,
        &["write", "--store", &dir, "--batches"],
        "+doc:d5#viewer@user:e\n\n+doc:d5#viewr@user:f\n",
    );
    assert_eq!(r.stdout, "revision 5\n");
    assert!(r.stderr.contains("<stdin>:3: ") && r.stderr.contains("up to revision 5"), "{}", r.stderr);
    assert_eq!(info(&dir)["revision"], 5);
}

#[test]
fn write_batches_commits_each_batch_before_the_input_ends() {
    let f = Fixture::new();
    let dir = f.store("s");
    let mut child = Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(["write", "--store", &dir, "--batches"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                break;
            }
        }
    });
    stdin.write_all(b"+doc:d3#viewer@user:a\n\n").unwrap();
    stdin.flush().unwrap();
    // The first revision arrives while standard input is still open.
    let first = rx.recv_timeout(Duration::from_secs(60));
    if first.is_err() {
        let _ = child.kill();
    }
    assert_eq!(first.as_deref(), Ok("revision 2"));
    stdin.write_all(b"+doc:d3#viewer@user:b\n").unwrap();
    drop(stdin);
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)).as_deref(), Ok("revision 3"));
    assert!(child.wait().unwrap().success());
    reader.join().unwrap();
}

#[test]
fn materialize_reads_a_store_like_the_files_it_holds() {
    let f = Fixture::new();
    let dir = f.store("s");
    let files = expect(
        0,
        &[
            "materialize",
            "--schema",
            &f.path("schema.pv"),
            "--data",
            &f.path("data.rels"),
            "--permission",
            "doc#view",
            "--output",
            "-",
        ],
        "",
    );
    let store = expect(0, &["materialize", "--store", &dir, "--permission", "doc#view", "--output", "-"], "");
    assert_eq!(store.stdout, files.stdout);
    assert!(store.stdout.contains("user:ann,view,doc:d1,allowed"), "{}", store.stdout);
    // Deltas on a store leave the store as it is.
    let changes = f.file("changes", "-group:eng#member@user:ann\n");
    let d = expect(
        0,
        &["materialize", "--store", &dir, "--permission", "doc#view", "--changes", &changes, "--output", "-"],
        "",
    );
    assert!(d.stdout.contains("removed,user:ann,view,doc:d1,allowed"), "{}", d.stdout);
    assert_eq!(info(&dir)["revision"], 1);
}

#[test]
fn what_is_not_a_store_fails_clearly() {
    let f = Fixture::new();
    let plain = f.path("plain");
    std::fs::create_dir(&plain).unwrap();
    for args in [
        vec!["store", "info", plain.as_str()],
        vec!["store", "export", plain.as_str()],
        vec!["write", "--store", plain.as_str()],
        vec!["check", "--store", plain.as_str(), "doc:d1#view@user:ann"],
    ] {
        let r = expect(4, &args, "");
        assert!(r.stderr.contains("is not a Purview store"), "{args:?}: {}", r.stderr);
        assert_eq!(r.stderr.lines().count(), 1, "{args:?}: {}", r.stderr);
    }
    let r = expect(4, &["--error-format", "json", "store", "verify", &f.path("missing")], "");
    let e: serde_json::Value = serde_json::from_str(r.stderr.trim()).unwrap();
    assert_eq!(e["error"]["code"], "not-a-store");

    let dir = f.store("s");
    let r = expect(4, &["store", "init", &dir, "--schema", &f.path("schema.pv")], "");
    assert!(r.stderr.contains("already holds a store"), "{}", r.stderr);
    // `--store` goes without `--schema`, `--revision` needs `--store`.
    expect(3, &["check", "--store", &dir, "--schema", &f.path("schema.pv"), "doc:d1#view@user:ann"], "");
    expect(3, &["check", "--revision", "1", "--schema", &f.path("schema.pv"), "doc:d1#view@user:ann"], "");
    let help = purview(&["store", "--help"]);
    assert!(help.stdout.contains("6  store failure"), "{}", help.stdout);
}
