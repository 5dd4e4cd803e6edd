//! kill -9 at random points while batches are being written: on reopen, every acknowledged
//! batch is present, no batch is half-applied, and the index answers exactly as one rebuilt
//! from the stored relationships (and as the reference evaluator over the same relationships).

use super::basics::{init, quiet, SCHEMA};
use purview::api::Engine;
use purview::storage;
use purview::{EvalOptions, Purview, Relationship, WriteOp};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// SplitMix64: deterministic batches per seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A valid batch: touches, deletes and replacements over a small universe, so that deletes and
/// replacements often hit something.
fn batch(rng: &mut Rng) -> Vec<String> {
    (0..1 + rng.below(4))
        .map(|_| {
            let (d, u, g) = (rng.below(6), rng.below(8), rng.below(3));
            match rng.below(7) {
                0 => format!("-doc:d{d}#viewer@user:u{u}"),
                1 => format!("=doc:d{d}#owner@user:u{u}"),
                2 => format!("group:g{g}#member@user:u{u}"),
                3 => format!("-group:g{g}#member@user:u{u}"),
                4 => format!("doc:d{d}#viewer@group:g{g}#member"),
                _ => format!("doc:d{d}#viewer@user:u{u}"),
            }
        })
        .collect()
}

fn op(line: &str) -> WriteOp {
    if let Some(r) = line.strip_prefix('-') {
        WriteOp::Delete(Relationship::parse(r).unwrap())
    } else if let Some(r) = line.strip_prefix('=') {
        WriteOp::Replace(Relationship::parse(r).unwrap())
    } else {
        WriteOp::Touch(Relationship::parse(line).unwrap())
    }
}

/// Every (doc, user) `view` answer of a view, as text.
fn answers(view: &purview::api::View) -> Vec<String> {
    let opts = EvalOptions::default();
    let mut out = Vec::new();
    for d in 0..6 {
        for u in 0..8 {
            let r = view.check_str(&format!("doc:d{d}"), "view", &format!("user:u{u}"), &opts);
            out.push(format!("d{d} u{u} {r:?}"));
        }
    }
    out
}

/// Runs `purview write --store DIR --batches -` on `batches`, kills it with SIGKILL after
/// `after`, and returns the revisions it acknowledged.
fn write_and_kill(dir: &Path, batches: &[Vec<String>], after: Duration) -> Vec<u64> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_purview"))
        .args(["write", "--store"])
        .arg(dir)
        .args(["--batches", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the purview binary runs");
    let mut stdin = child.stdin.take().unwrap();
    let text: String = batches.iter().map(|b| b.join("\n") + "\n\n").collect();
    let feeder = std::thread::spawn(move || {
        // The child may die while we write: a broken pipe is expected.
        for chunk in text.as_bytes().chunks(512) {
            if stdin.write_all(chunk).is_err() {
                break;
            }
        }
    });
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .filter_map(|l| l.strip_prefix("revision ").and_then(|n| n.trim().parse::<u64>().ok()))
            .collect::<Vec<u64>>()
    });
    std::thread::sleep(after);
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let _ = feeder.join();
    reader.join().unwrap()
}

#[test]
fn kill_9_while_writing_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("store");
    drop(init(&path));
    let schema = purview::api::compile_schema("s.pv", SCHEMA).unwrap();
    // The model: the reference engine applying the same batches; states[k] after k batches.
    let model = Purview::with_engine(schema, Engine::Reference);
    let mut states = vec![model.snapshot()];
    let mut all: Vec<Vec<String>> = Vec::new();
    let mut rng = Rng(0x5eed);
    let (mut acknowledged_total, mut cut_short) = (0, 0);
    for round in 0..10u64 {
        let batches: Vec<Vec<String>> = (0..3000).map(|_| batch(&mut rng)).collect();
        let base = all.len() as u64;
        let kill_after = Duration::from_millis(150 + rng.below(400));
        let acked = write_and_kill(&path, &batches, kill_after);
        // Acknowledged revisions are consecutive from the base.
        for (i, r) in acked.iter().enumerate() {
            assert_eq!(*r, base + i as u64 + 1, "round {round}: acknowledgements out of order");
        }
        let store = storage::open(&path, quiet()).unwrap();
        let pv = store.purview();
        let revision = pv.revision();
        let done = revision - base;
        assert!(
            revision >= base + acked.len() as u64,
            "round {round}: {} batches acknowledged, only {done} present",
            acked.len()
        );
        assert!(done as usize <= batches.len());
        acknowledged_total += acked.len();
        if (done as usize) < batches.len() {
            cut_short += 1;
        }
        eprintln!("round {round}: {} acknowledged, {done} present of {}", acked.len(), batches.len());
        // Bring the model to the same prefix: no batch half-applied means equality here.
        for b in &batches[..done as usize] {
            let ops: Vec<WriteOp> = b.iter().map(|l| op(l)).collect();
            model.write(&ops).unwrap();
            states.push(model.snapshot());
        }
        all.extend(batches.into_iter().take(done as usize));
        let got = pv.snapshot();
        assert_eq!(got.relationship_lines(), model.snapshot().relationship_lines(), "round {round}");
        assert_eq!(answers(&got), answers(&model.snapshot()), "round {round}: index vs reference");
        let problems = storage::verify(&store).unwrap();
        assert!(problems.is_empty(), "round {round}: {problems:?}");
        // History: an earlier revision reads as the model did then.
        if revision > 0 {
            let r = rng.below(revision + 1);
            let past = pv.view_at(r).unwrap();
            assert_eq!(past.relationship_lines(), states[r as usize].relationship_lines(), "as of {r}");
        }
    }
    assert!(acknowledged_total > 0, "no batch was ever acknowledged: the child never got going");
    assert!(cut_short > 0, "every round finished before the kill: nothing was killed mid-write");
}

#[test]
fn kill_9_during_an_import_keeps_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = Rng(0x1a2b);
    let lines: String = (0..60_000).map(|i| format!("doc:d{i}#viewer@user:u{}\n", i % 97)).collect();
    let file = dir.path().join("data.rels");
    std::fs::write(&file, &lines).unwrap();
    let import = |path: &Path| {
        Command::new(env!("CARGO_BIN_EXE_purview"))
            .args(["store", "import"])
            .arg(path)
            .arg(&file)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap()
    };
    // How long a whole import takes here, so that the kills land across it.
    let timing = dir.path().join("timing");
    drop(init(&timing));
    let started = std::time::Instant::now();
    assert!(import(&timing).wait().unwrap().success(), "an import that is not killed succeeds");
    let whole = started.elapsed().as_millis().max(20) as u64;
    let (mut killed_running, mut complete) = (0, 0);
    for round in 0..6 {
        let path = dir.path().join(format!("store{round}"));
        drop(init(&path));
        let mut child = import(&path);
        // Spread over the whole run, from the start to just past its end.
        std::thread::sleep(Duration::from_millis(rng.below(whole * 11 / 10) + 1));
        if child.try_wait().unwrap().is_none() {
            killed_running += 1;
            let _ = child.kill();
        }
        let status = child.wait().unwrap();
        let store = storage::open(&path, quiet()).unwrap();
        let n = store.purview().snapshot().relationship_lines().len();
        assert!(n == 0 || n == 60_000, "round {round}: {n} relationships after a killed import");
        assert_eq!(store.purview().revision(), u64::from(n > 0));
        assert!(storage::verify(&store).unwrap().is_empty());
        if n > 0 {
            complete += 1;
        } else {
            assert!(!status.success(), "round {round}: the import succeeded but nothing is stored");
        }
    }
    assert!(killed_running > 0, "no import was killed while running (all finished or failed at once)");
    eprintln!("{killed_running} imports killed while running, {complete} complete");
}
