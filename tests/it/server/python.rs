//! The official SpiceDB Python client (`authzed`, with `grpcio`) against `purview serve`: the
//! script `py/spicedb_client.py` writes a schema and relationships, asks every kind of question
//! and provokes the errors a SpiceDB client handles; this test asserts each answer.
//!
//! The client lives in a virtual environment under `target/` made on first use (pinned
//! versions, installed once); a machine without `python3`, its `venv` module or `pip` fails
//! the test with what to install.

use super::{Server, KEY};
use serde_json::{json, Value};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;

/// The pinned Python packages (`py/requirements.txt`, which `.ci/run` installs too), as
/// (name, version).
fn packages() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(py_dir().join("requirements.txt")).unwrap();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (n, v) = l.split_once("==").expect("requirements.txt pins name==version");
            (n.to_string(), v.to_string())
        })
        .collect()
}

/// One setup at a time in this process (the file lock covers other processes).
static SETUP: Mutex<()> = Mutex::new(());

/// The cargo target directory (where the test binary's `purview` was built).
pub(super) fn target_dir() -> PathBuf {
    let bin = Path::new(env!("CARGO_BIN_EXE_purview"));
    bin.parent().and_then(Path::parent).expect("the purview binary lives in target/PROFILE/").to_path_buf()
}

pub(super) fn py_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/server/py")
}

/// Holds `target/NAME.lock` (and this process's setup mutex) while `f` runs.
pub(super) fn locked<T>(name: &str, f: impl FnOnce() -> T) -> T {
    let _guard = SETUP.lock().unwrap_or_else(|e| e.into_inner());
    let dir = target_dir();
    std::fs::create_dir_all(&dir).unwrap();
    let lock = File::create(dir.join(format!("{name}.lock"))).unwrap();
    lock.lock().unwrap();
    let out = f();
    lock.unlock().unwrap();
    out
}

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `target/pyenv-server/bin/python`, with the pinned packages installed (once).
pub(super) fn python() -> PathBuf {
    locked("pyenv-server", || {
        let venv = target_dir().join("pyenv-server");
        let python = venv.join("bin/python");
        let packages = packages();
        let pins: Vec<String> = packages.iter().map(|(n, v)| format!("{n}=={v}")).collect();
        let has_pins = |python: &Path| {
            let check = format!(
                "import importlib.metadata as m, sys\nsys.exit(0 if all(m.version(n) == v for n, v in {:?}) else 1)",
                packages
            );
            python.exists()
                && Command::new(python).args(["-c", &check]).output().is_ok_and(|o| o.status.success())
        };
        if has_pins(&python) {
            return python;
        }
        if python.exists()
            && !Command::new(&python).args(["-c", "pass"]).output().is_ok_and(|o| o.status.success())
        {
            // A venv whose interpreter no longer runs (python3 was upgraded or removed): anew.
            std::fs::remove_dir_all(&venv).unwrap();
        }
        let probe = Command::new("python3").arg("--version").output();
        assert!(
            probe.as_ref().is_ok_and(|o| o.status.success()),
            "these tests need python3 (with its venv module and pip): install it, e.g. \
             `apt-get install python3 python3-venv python3-pip` ({probe:?})"
        );
        if !python.exists() {
            let out = run(Command::new("python3").args(["-m", "venv"]).arg(&venv));
            assert!(
                out.status.success(),
                "`python3 -m venv {}` failed: install python3's venv module (`apt-get install python3-venv`)\n{}",
                venv.display(),
                text(&out.stderr)
            );
        }
        let out = run(Command::new(&python)
            .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
            .args(&pins));
        assert!(
            out.status.success(),
            "pip could not install {} into {} (python3-pip and access to PyPI are needed):\n{}{}",
            pins.join(" "),
            venv.display(),
            text(&out.stdout),
            text(&out.stderr)
        );
        assert!(has_pins(&python), "{} still lacks {pins:?} after pip install", venv.display());
        python
    })
}

/// Runs `py/SCRIPT ARGS` with the virtual environment's Python; its stdout as JSON.
pub(crate) fn run_script(script: &str, args: &[&str], env: &[(&str, &Path)]) -> Value {
    let python = python();
    let mut cmd = Command::new(&python);
    cmd.arg(py_dir().join(script)).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = run(&mut cmd);
    assert!(
        out.status.success(),
        "{script} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!("{script} printed no JSON ({e}):\n{}\n{}", text(&out.stdout), text(&out.stderr))
    })
}

const HAS: &str = "PERMISSIONSHIP_HAS_PERMISSION";
const NO: &str = "PERMISSIONSHIP_NO_PERMISSION";
const COND: &str = "PERMISSIONSHIP_CONDITIONAL_PERMISSION";
const L_HAS: &str = "LOOKUP_PERMISSIONSHIP_HAS_PERMISSION";
const L_COND: &str = "LOOKUP_PERMISSIONSHIP_CONDITIONAL_PERMISSION";

#[test]
fn the_official_python_client_works_against_purview_serve() {
    // A store (not --memory): the script reads at an exact earlier snapshot, which needs history.
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let server = Server::start(&["--store", store.to_str().unwrap()]);
    let addr = server.grpc.to_string();
    let out = run_script("spicedb_client.py", &[&addr, KEY], &[]);
    let at = |path: &str| -> &Value {
        path.split('.').fold(&out, |v, k| {
            v.get(k).unwrap_or_else(|| panic!("no `{path}` in the script's output:\n{out:#}"))
        })
    };
    // Every mismatch is collected, then reported together.
    let failures = std::cell::RefCell::new(Vec::new());
    let eq = |path: &str, want: Value| {
        let got = at(path);
        if got != &want {
            failures.borrow_mut().push(format!("`{path}`: got {got}, expected {want}"));
        }
    };

    eq("schema_read_back", json!(true));
    eq("write_token_nonempty", json!(true));
    eq("create_new", json!("OK"));
    eq("create_existing", json!("ALREADY_EXISTS"));
    eq("d2_edit_alice_after_create", json!(HAS));
    eq("delete_d2", json!("OK"));
    eq("precondition_met", json!("OK"));
    eq("precondition_failed", json!("FAILED_PRECONDITION"));

    // view = (viewer + owner + folder->view) - banned; folder f1's viewers are group eng's
    // members: alice, and (through group leads) bob, who is banned from d1.
    let checks = json!({
        "d1#view@alice": HAS,   // d1 -> folder f1 -> group:eng#member -> alice
        "d1#view@bob": NO,      // a member through leads, but banned
        "d1#view@carol": HAS,   // owner
        "d1#view@zed": NO,      // nothing
        "d1#edit@carol": HAS,   // owner
        "d1#edit@alice": NO,    // view is not edit
        "d3#edit@carol": HAS,   // written under a MUST_MATCH precondition that held
        "d4#edit@carol": NO,    // its MUST_NOT_MATCH precondition failed: nothing written
        "pub#view@zed": HAS,    // user:*
        "pub#view@mallory": NO, // user:* minus banned
        "net#view@dave": COND,  // on_network without `ip`
        "net#view@zed": NO,
        "exp#view@erin": HAS,   // expires in an hour
    });
    eq("checks", checks);
    // The relationship's own context supplies allowed_ip: only `ip` is missing.
    eq("conditional_missing", json!(["ip"]));
    eq("with_context_match", json!(HAS));
    eq("with_context_other", json!(NO));
    eq("expired", json!(NO));

    eq(
        "lookup_resources",
        json!({
            "alice": {"d1": L_HAS, "pub": L_HAS},
            "bob": {"pub": L_HAS},
            "dave": {"pub": L_HAS, "net": L_COND},
            "zed": {"pub": L_HAS},
        }),
    );
    eq(
        "lookup_subjects",
        json!({
            "d1": {"alice": {"permissionship": L_HAS, "excluded": []}, "carol": {"permissionship": L_HAS, "excluded": []}},
            "pub": {"*": {"permissionship": L_HAS, "excluded": ["mallory"]}},
            "net": {"dave": {"permissionship": L_COND, "excluded": []}},
        }),
    );
    eq("bulk", json!([HAS, NO, HAS, HAS, "ERROR:FAILED_PRECONDITION"]));
    eq(
        "bulk_requests_echoed",
        json!(["d1#view@alice", "d1#view@bob", "pub#view@zed", "d1#edit@carol", "d1#nope@carol"]),
    );

    eq(
        "read_d1",
        json!([
            "document:d1#banned@user:bob",
            "document:d1#folder@folder:f1",
            "document:d1#owner@user:carol"
        ]),
    );
    eq("read_group_usersets", json!(["group:eng#member@group:leads#member"]));
    eq("read_caveat", json!([{"caveat": "on_network", "context": {"allowed_ip": "10.0.0.1"}}]));
    // SpiceDB does not return expired relationships from ReadRelationships: frank's is gone.
    eq("read_expiring", json!([["erin", true]]));

    // The watch started from the token of an earlier write, was limited to `document`, and saw
    // the later write's document update (not the group one, not the earlier write).
    eq(
        "watch",
        json!([{"op": "OPERATION_TOUCH", "rel": "document:w1#owner@user:watched"}, {"changes_through": true}]),
    );

    // document:pub had `viewer@user:*` and `banned@user:mallory`.
    eq("deleted_count", json!(2));
    eq(
        "pub_after_delete",
        json!({
            "at_exact_snapshot_before": HAS,
            "at_least_as_fresh_before": NO,
            "at_least_as_fresh_delete": NO,
            "fully_consistent": NO,
            "minimize_latency": NO,
        }),
    );
    eq("read_pub_after_delete", json!(0));

    eq(
        "errors",
        json!({
            "check_unknown_type": "FAILED_PRECONDITION",
            "check_unknown_permission": "FAILED_PRECONDITION",
            "check_unknown_subject_type": "FAILED_PRECONDITION",
            "write_unknown_type": "FAILED_PRECONDITION",
            "write_unknown_relation": "FAILED_PRECONDITION",
            "write_permission": "INVALID_ARGUMENT",
            "write_subject_not_allowed": "INVALID_ARGUMENT",
            "write_bad_id": "INVALID_ARGUMENT",
            "too_many_updates": "INVALID_ARGUMENT",
            "lookup_unknown_type": "FAILED_PRECONDITION",
            "wrong_key": "UNAUTHENTICATED",
            "wrong_key_write": "UNAUTHENTICATED",
        }),
    );
    eq("too_many_wrote_nothing", json!(0));

    // 2,500 relationships in three messages.
    eq("import_loaded", json!(2500));
    eq("export_count", json!(2500));
    eq("export_round_trip", json!(true));
    if at("export_messages").as_u64().unwrap_or(0) == 0 {
        failures.borrow_mut().push("the export sent no message".into());
    }
    // u1234 is in group bulk24 (ids 1200..1249), u1250 in bulk25.
    eq("import_check", json!({"u1234": HAS, "u1250": NO}));
    eq("import_bad", json!("FAILED_PRECONDITION"));
    eq("import_bad_left_nothing", json!(0));
    let failures = failures.into_inner();
    assert!(
        failures.is_empty(),
        "the Python client saw:\n  {}\n(whole output:\n{out:#})",
        failures.join("\n  ")
    );
    drop(server);
}
