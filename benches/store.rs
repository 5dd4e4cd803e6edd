//! Load generator for the durable store (issue 11's acceptance targets) on the seeded eComms
//! dataset (see `datasets.rs`). Not a criterion bench: each phase runs once and the run ends
//! with a table of target | measured | met?.
//!
//! Run: `cargo bench --bench store` (full scale, ~10.3M relationships; needs ~6 GB of memory,
//! ~2 GB of disk and a few minutes). `PURVIEW_BENCH_SCALE=0.1 cargo bench --bench store` for a
//! quick run. The store and the text file go to a temporary directory (under
//! `PURVIEW_BENCH_DIR` if set).
//!
//! Phases:
//! 1. **Import.** The dataset is written once as a relationships text file (not timed). Timed:
//!    streaming the file line by line into the facade's `bulk_loader` (`push_text`, as `purview
//!    store import` does) of a fresh store (`storage::init`), i.e. parse, validate, build the
//!    index and write it durably. For
//!    the split, the same stream is timed parsed only, and into an in-memory Purview (no
//!    storage). The store is then closed (which waits for the index snapshot the import asked
//!    for) and its size on disk measured. For reference, the import is timed once more with the
//!    parsing on a second thread (chunks through a channel into the same `bulk_load`).
//! 2. **Open.** `Purview::open` + the first `check_str`, against building from the text file:
//!    read it, `parse_relationships`, `bulk_load` into `Purview::from_schema_text`, first check.
//! 3. **Writes.** 2,000 sequential durable (synced) single-relationship writes, each tagging a
//!    new message; then 64 writer threads sharing one handle, ~300 writes each (group commit).
//! 4. **Restart after kill -9.** A child process (this binary, re-executed) opens the store with
//!    no snapshot threshold, writes 100,000 single-relationship batches *with `sync: false`*
//!    (only to make the setup fast: the writes still reach the OS, which is all a killed process
//!    needs; their durability under a machine crash is the tests' business) and calls
//!    `std::process::abort()`, so no destructor runs and no snapshot is written at close. The
//!    parent then times `storage::open`: the last snapshot plus the replay of the 100k tail.
//!    At the end, the store is opened once more after a clean close, and the parts of an open
//!    are timed on their own: the backend's recovery (fjall replays its journal, `kv/*.jnl`,
//!    on every open until its memtables are flushed), the snapshot's read and its decode.
//!
//! Timings are warm (the files were just written, so they are in the page cache).

// Benchmarks panic on purpose when their fixed data is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datasets.rs"]
mod datasets;

use purview::api::{parse_relationships, relationship_of, Purview, SchemaFormat};
use purview::eval::EvalOptions;
use purview::storage::{self, StoreOptions};
use purview::store::{Relationship, WriteOp};
use purview::Decision;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// Set in the child process of phase 4 to the store's directory.
const TAIL_ENV: &str = "PURVIEW_STORE_BENCH_TAIL_DIR";
/// Write batches of the changelog tail of phase 4.
const TAIL: u64 = 100_000;
const SEQUENTIAL_WRITES: usize = 2_000;
const WRITERS: usize = 64;
const WRITES_PER_WRITER: usize = 300;
/// The first check after an open: allowed through `account->admin` (account a0's admins are
/// u0..u4 and message m0 belongs to a0).
const CHECK: (&str, &str, &str) = ("message:m0", "view", "user:u0");

fn scale() -> f64 {
    std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

fn groups() -> u64 {
    datasets::EcommsShape::at(1.0).groups
}

fn first_check(pv: &Purview) -> Decision {
    pv.snapshot().check_str(CHECK.0, CHECK.1, CHECK.2, &EvalOptions::default()).unwrap()
}

/// A message tagged with a group: one new relationship (and one new object name).
fn tag(message: &str, group: u64) -> WriteOp {
    WriteOp::Touch(Relationship::parse(&format!("message:{message}#tagged@usergroup:g{group}")).unwrap())
}

/// Loads `path` through the facade's streaming loader, one line at a time from a reused buffer
/// (what `purview store import` does): plain lines are parsed without allocating.
fn load_lines(pv: &Purview, path: &Path) -> purview::api::BulkLoad {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).unwrap());
    let mut loader = pv.bulk_loader().unwrap();
    let mut line = String::new();
    loop {
        line.clear();
        if reader.read_line(&mut line).unwrap() == 0 {
            break;
        }
        let l = line.trim();
        if !l.is_empty() {
            loader.push_text(l).unwrap();
        }
    }
    loader.finish::<String>().unwrap()
}

/// The relationships of `path`, one a line, parsed as they are read.
fn stream(path: &Path) -> impl Iterator<Item = Result<Relationship, String>> {
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).unwrap());
    let mut line = String::new();
    std::iter::from_fn(move || loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {
                let l = line.trim();
                if l.is_empty() {
                    continue;
                }
                return Some(Relationship::parse(l).map_err(|e| e.to_string()));
            }
            Err(e) => return Some(Err(e.to_string())),
        }
    })
}

/// Bytes of the key-value store's write-ahead journal (`kv/*.jnl`): what the backend replays
/// on every open until its memtables are flushed.
/// [`stream`], parsed on another thread and handed over in chunks.
fn stream_parallel(path: &Path) -> impl Iterator<Item = Result<Relationship, String>> {
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<Result<Relationship, String>>>(64);
    let path = path.to_path_buf();
    std::thread::spawn(move || {
        let mut chunk = Vec::with_capacity(4096);
        for r in stream(&path) {
            chunk.push(r);
            if chunk.len() == 4096
                && tx.send(std::mem::replace(&mut chunk, Vec::with_capacity(4096))).is_err()
            {
                return;
            }
        }
        let _ = tx.send(chunk);
    });
    rx.into_iter().flatten()
}

fn journal_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir.join("kv")).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| e.path().extension().is_some_and(|x| x == "jnl"))
            .map(|e| e.metadata().map_or(0, |m| m.len()))
            .sum()
    })
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

fn percentile(sorted: &[Duration], p: usize) -> Duration {
    sorted[(sorted.len() * p / 100).min(sorted.len() - 1)]
}

struct Row {
    target: String,
    measured: String,
    met: Option<bool>,
}

fn row(rows: &mut Vec<Row>, target: &str, measured: String, met: Option<bool>) {
    eprintln!("[store] {target}: {measured}");
    rows.push(Row { target: target.to_string(), measured, met });
}

fn main() {
    if let Ok(dir) = std::env::var(TAIL_ENV) {
        write_tail(Path::new(&dir));
    }
    let scale = scale();
    let work = match std::env::var("PURVIEW_BENCH_DIR") {
        Ok(d) => tempfile::tempdir_in(d).unwrap(),
        Err(_) => tempfile::tempdir().unwrap(),
    };
    let text_path = work.path().join("ecomms.relationships");
    let dir = work.path().join("store");
    let mut rows = Vec::new();

    // The dataset, as a text file.
    let t = Instant::now();
    let (ds, _shape) = datasets::ecomms(scale);
    let built = t.elapsed();
    let t = Instant::now();
    let mut n = 0u64;
    {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&text_path).unwrap());
        let data = &ds.data;
        data.for_each_tuple(|o, r, s, a| {
            writeln!(out, "{}", relationship_of(data, o, r, s, a)).unwrap();
            n += 1;
        });
        out.flush().unwrap();
    }
    let text_bytes = std::fs::metadata(&text_path).unwrap().len();
    eprintln!(
        "[store] scale {scale}: {n} relationships (dataset built in {built:.2?}), written as text \
         ({:.1} MB) in {:.2?}",
        text_bytes as f64 / 1e6,
        t.elapsed()
    );
    drop(ds);

    // 1. Import.
    let t = Instant::now();
    let mut parsed = 0u64;
    {
        let mut reader = BufReader::with_capacity(1 << 20, File::open(&text_path).unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 {
            let l = line.trim();
            if !l.is_empty() {
                std::hint::black_box(purview::store::relationship::RelRef::parse_plain(l).unwrap());
                parsed += 1;
            }
            line.clear();
        }
    }
    let parse_only = t.elapsed();
    assert_eq!(parsed, n);
    eprintln!("[store] parse only: {parse_only:.2?}");
    let t = Instant::now();
    let pv = Purview::from_schema_text("ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
    load_lines(&pv, &text_path);
    let in_memory = t.elapsed();
    drop(pv);
    eprintln!("[store] in-memory bulk load (parse + validate + build): {in_memory:.2?}");
    let store = storage::init(
        &dir,
        SchemaFormat::Purview,
        "schema.pv",
        datasets::ECOMMS_SCHEMA,
        StoreOptions::default(),
    )
    .unwrap();
    let t = Instant::now();
    let loaded = load_lines(store.purview(), &text_path);
    let import = t.elapsed();
    assert_eq!(loaded.relationships as u64, n);
    eprintln!("[store] import into the store (durable): {import:.2?}");
    let t = Instant::now();
    drop(store);
    let close = t.elapsed();
    eprintln!("[store] close after the import (waits for the index snapshot): {close:.2?}");
    let disk = storage::ops::dir_bytes(&dir);
    let snapshot_bytes = std::fs::metadata(dir.join("index.snapshot")).map_or(0, |m| m.len());
    let kv_bytes = storage::ops::dir_bytes(&dir.join("kv"));
    let rate = n as f64 / secs(import);
    row(
        &mut rows,
        "import ≥ 1M relationships/s",
        format!(
            "{:.2}M/s ({n} in {import:.2?}; parse {parse_only:.2?}, + validate & build {:.2?}, \
             + storage write {:.2?}); {:.2}M/s counting the close ({close:.2?}, the snapshot)",
            rate / 1e6,
            in_memory.saturating_sub(parse_only),
            import.saturating_sub(in_memory),
            n as f64 / secs(import + close) / 1e6
        ),
        Some(rate >= 1e6),
    );
    let per = disk as f64 / n as f64;
    row(
        &mut rows,
        "size on disk ≤ 64 B/relationship",
        format!(
            "{per:.1} B ({:.1} MB: kv {:.1} MB, snapshot {:.1} MB)",
            disk as f64 / 1e6,
            kv_bytes as f64 / 1e6,
            snapshot_bytes as f64 / 1e6
        ),
        Some(per <= 64.0),
    );
    // The same import with the parsing on a second thread (the API takes any iterator).
    let dir2 = work.path().join("store-pipelined");
    let store = storage::init(
        &dir2,
        SchemaFormat::Purview,
        "schema.pv",
        datasets::ECOMMS_SCHEMA,
        StoreOptions::default(),
    )
    .unwrap();
    let t = Instant::now();
    let loaded = store.purview().bulk_load(stream_parallel(&text_path)).unwrap();
    let pipelined = t.elapsed();
    assert_eq!(loaded.relationships as u64, n);
    drop(store);
    std::fs::remove_dir_all(&dir2).unwrap();
    row(
        &mut rows,
        "(import, parsing on a second thread)",
        format!("{:.2}M/s ({pipelined:.2?})", n as f64 / secs(pipelined) / 1e6),
        None,
    );

    // 2. Open + first check, against building from the text file.
    let t = Instant::now();
    let pv = Purview::open(&dir, StoreOptions::default()).unwrap();
    let opened = t.elapsed();
    let decision = first_check(&pv);
    let open_check = t.elapsed();
    assert_eq!(decision, Decision::Allowed);
    drop(pv);
    eprintln!("[store] open {opened:.2?}, + first check {open_check:.2?}");
    let t = Instant::now();
    let text = std::fs::read_to_string(&text_path).unwrap();
    let read = t.elapsed();
    let rels = parse_relationships(&text).unwrap();
    let parse = t.elapsed() - read;
    let pv = Purview::from_schema_text("ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
    pv.bulk_load(rels.into_iter().map(Ok::<_, std::convert::Infallible>)).unwrap();
    assert_eq!(first_check(&pv), Decision::Allowed);
    let from_text = t.elapsed();
    drop(text);
    drop(pv);
    eprintln!(
        "[store] from the text file: {from_text:.2?} (read {read:.2?}, parse {parse:.2?}, load + check {:.2?})",
        from_text - read - parse
    );
    row(
        &mut rows,
        "open + first check ≤ 1.5 s",
        format!("{open_check:.2?} (open {opened:.2?}; backend journal {:.1} MB)", mb(journal_bytes(&dir))),
        Some(open_check <= Duration::from_millis(1500)),
    );
    let ratio = secs(open_check) / secs(from_text);
    row(
        &mut rows,
        "open + first check ≤ ¼ of building from text",
        format!("{:.1}% of {from_text:.2?}", ratio * 100.0),
        Some(ratio <= 0.25),
    );

    // 3. Durable writes.
    let store = storage::open(&dir, StoreOptions::default()).unwrap();
    eprintln!("[store] reopened for writes: {:?}", store.report);
    let pv = store.purview().clone();
    let mut times = Vec::with_capacity(SEQUENTIAL_WRITES);
    let mut rng = datasets::Rng::new(99);
    let t = Instant::now();
    for i in 0..SEQUENTIAL_WRITES {
        let op = tag(&format!("mseq{i}"), rng.below(groups()));
        let t = Instant::now();
        pv.write(&[op]).unwrap();
        times.push(t.elapsed());
    }
    let seq_total = t.elapsed();
    times.sort();
    let (p50, p99) = (percentile(&times, 50), percentile(&times, 99));
    row(
        &mut rows,
        "single durable write p50 ≤ 2 ms",
        format!("{p50:.2?} ({SEQUENTIAL_WRITES} sequential in {seq_total:.2?})"),
        Some(p50 <= Duration::from_millis(2)),
    );
    row(
        &mut rows,
        "single durable write p99 ≤ 10 ms",
        format!("{p99:.2?} (max {:.2?})", times[times.len() - 1]),
        Some(p99 <= Duration::from_millis(10)),
    );
    let t = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let pv = pv.clone();
                s.spawn(move || {
                    let mut rng = datasets::Rng::new(1000 + w as u64);
                    let mut times = Vec::with_capacity(WRITES_PER_WRITER);
                    for i in 0..WRITES_PER_WRITER {
                        let op = tag(&format!("mw{w}x{i}"), rng.below(groups()));
                        let t = Instant::now();
                        pv.write(&[op]).unwrap();
                        times.push(t.elapsed());
                    }
                    times
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });
    let concurrent = t.elapsed();
    latencies.sort();
    let total = (WRITERS * WRITES_PER_WRITER) as f64;
    let throughput = total / secs(concurrent);
    row(
        &mut rows,
        "64 concurrent writers ≥ 20k relationships/s",
        format!(
            "{:.1}k/s ({total} in {concurrent:.2?}; per write p50 {:.2?}, p99 {:.2?})",
            throughput / 1e3,
            percentile(&latencies, 50),
            percentile(&latencies, 99)
        ),
        Some(throughput >= 20e3),
    );
    drop(pv);
    let t = Instant::now();
    drop(store);
    eprintln!("[store] close after the writes (snapshot at close): {:.2?}", t.elapsed());

    // 4. Restart after kill -9 with a 100k-revision tail.
    let t = Instant::now();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .env(TAIL_ENV, &dir)
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&child.stdout);
    eprintln!(
        "[store] tail child: {} ({:?}; {:.2?} with its open)",
        stdout.trim(),
        child.status,
        t.elapsed()
    );
    assert!(child.status.code().is_none(), "the tail child should have been killed by abort()");
    assert!(stdout.contains(&format!("wrote {TAIL} ")), "the tail child did not finish its writes");
    let journal = journal_bytes(&dir);
    let t = Instant::now();
    let store = storage::open(&dir, StoreOptions::default()).unwrap();
    let reopened = t.elapsed();
    let decision = first_check(store.purview());
    let reopened_check = t.elapsed();
    assert_eq!(decision, Decision::Allowed);
    let report = store.report.clone();
    eprintln!("[store] reopened after the kill: {report:?}; open {reopened:.2?}, + first check {reopened_check:.2?}");
    assert_eq!(report.replayed, TAIL, "the tail should be replayed, not covered by a snapshot");
    assert!(report.rebuilt.is_none());
    row(
        &mut rows,
        "restart after kill -9, 100k-revision tail: replay ≤ 1 s",
        format!(
            "replay {:.2?} ({} records after the snapshot at revision {:?}); the whole open {:.2?}: \
             backend {:.2?} (its journal {:.1} MB), snapshot {:.2?}, replay {:.2?}; + first check \
             {reopened_check:.2?}",
            report.replay,
            report.replayed,
            report.snapshot_revision,
            report.took,
            report.backend,
            mb(journal),
            report.snapshot,
            report.replay,
        ),
        Some(report.replay <= Duration::from_secs(1)),
    );
    let t = Instant::now();
    drop(store);
    eprintln!("[store] close after the restart (snapshot at close): {:.2?}", t.elapsed());
    // Nothing left to replay from the changelog now, but the backend's journal may still be long.
    let journal = journal_bytes(&dir);
    let t = Instant::now();
    let pv = Purview::open(&dir, StoreOptions::default()).unwrap();
    let opened = t.elapsed();
    assert_eq!(first_check(&pv), Decision::Allowed);
    let open_check = t.elapsed();
    drop(pv);
    row(
        &mut rows,
        "open + first check ≤ 1.5 s, after a clean close (end of the run)",
        format!("{open_check:.2?} (open {opened:.2?}; backend journal {:.1} MB)", mb(journal)),
        Some(open_check <= Duration::from_millis(1500)),
    );
    // Where an open's time goes (the parts `storage::open` does before its replay), measured on
    // the same files: the backend's own recovery (its journal), the snapshot's read and decode.
    let t = Instant::now();
    drop(storage::fjall::FjallStorage::open(&dir.join("kv"), true).unwrap());
    let backend = t.elapsed();
    let t = Instant::now();
    let (_, payload) = storage::snapshot::read_checked(&dir).unwrap().unwrap();
    let read = t.elapsed();
    let schema =
        std::sync::Arc::new(purview::api::compile_schema("ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap());
    let t = Instant::now();
    drop(storage::snapshot::decode(schema, &payload).unwrap());
    let decode = t.elapsed();
    row(
        &mut rows,
        "(open's parts, end of run)",
        format!(
            "backend open {backend:.2?} (journal {:.1} MB), snapshot read + checksum {read:.2?} \
             ({:.1} MB), decode {decode:.2?}",
            mb(journal_bytes(&dir)),
            mb(payload.len() as u64)
        ),
        None,
    );

    println!();
    println!("Store targets (issue 11), eComms at scale {scale} ({n} relationships):");
    println!();
    println!("| target | measured | met? |");
    println!("|---|---|---|");
    for r in &rows {
        let met = match r.met {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        println!("| {} | {} | {met} |", r.target, r.measured);
    }
}

/// Phase 4's child: writes the tail, then dies without closing the store.
fn write_tail(dir: &Path) -> ! {
    let options = StoreOptions {
        // Fast setup only: see the module docs.
        sync: false,
        snapshot_after: u64::MAX,
        gc_interval: None,
        ..StoreOptions::default()
    };
    let t = Instant::now();
    let store = storage::open(dir, options).unwrap();
    let opened = t.elapsed();
    let pv = store.purview();
    let mut rng = datasets::Rng::new(4242);
    let t = Instant::now();
    let mut last = 0;
    for i in 0..TAIL {
        last = pv.write(&[tag(&format!("mtail{i}"), rng.below(groups()))]).unwrap();
    }
    println!("opened in {opened:.2?}, wrote {TAIL} batches in {:.2?}, head revision {last}", t.elapsed());
    std::io::stdout().flush().unwrap();
    // As kill -9: no destructor runs, so no snapshot is written at close.
    std::process::abort()
}
