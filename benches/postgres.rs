//! Load generator for the PostgreSQL datastore: nodes (`storage::open_postgres`, the same code
//! `purview serve --datastore` runs) on a throwaway local PostgreSQL 15 cluster, on the seeded
//! eComms dataset (see `datasets.rs`, ~10.6M relationships at full scale). Not a criterion
//! bench: each phase runs once; the run ends with a table of target | measured | PASS/MISS,
//! also written as JSON to `target/bench-postgres.json`.
//!
//! Run: `cargo bench --bench postgres` (full scale: ~10 GB of memory, a few GB of disk, several
//! minutes). `PURVIEW_BENCH_SCALE=0.1 cargo bench --bench postgres` for a quick run. Knobs:
//! `PURVIEW_BENCH_SECONDS` (default 10: each timed write phase), `PURVIEW_BENCH_JSON`.
//!
//! Phases (the database fsyncs as configured by default: `fsync=on`, `synchronous_commit=on`):
//! 1. **Import** of the dataset through the facade's bulk loader into a fresh database: the
//!    rows go in with `COPY` (binary), in the same transaction as the revision's log record.
//! 2. **Cold start** of a second node from PostgreSQL (names, rows), and of a third from its
//!    local index snapshot plus the changes committed since (1,000 writes on the first node).
//! 3. **Writes**: one relationship per write, one writer at a time (latency), then 16 writers
//!    at once on one node (throughput), then 8 on each of two nodes.
//! 4. **Replication lag**: single writes on node A, 5 ms apart; for each revision, the time
//!    from A's write returning (committed) to node B publishing it (woken by NOTIFY).
//! 5. **Reads** (run right after the cold start) on node B: check questions answered in
//!    process, one thread, next to the same questions on an in-memory Purview holding the same
//!    data (the embedded store answers from the same index, so "as fast as the embedded store"
//!    is this ratio).

// Helpers and set-up panic on failure: a panic ends the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/postgres/cluster.rs"]
mod cluster;
mod datasets;

use datasets::{group_parent, EcommsShape, Rng};
use purview::api::{relationship_of, SchemaFormat};
use purview::eval::EvalOptions;
use purview::storage::{self, postgres, StoreOptions};
use purview::store::WriteOp;
use purview::store::{ObjectRef, SubjectRef};
use purview::Purview;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn env_f64(k: &str, d: f64) -> f64 {
    std::env::var(k).ok().and_then(|v| v.parse().ok()).unwrap_or(d)
}

fn options() -> StoreOptions {
    StoreOptions { warn: Arc::new(|w| eprintln!("[postgres] warning: {w}")), ..StoreOptions::default() }
}

fn node(url: &str, snapshots: Option<&std::path::Path>) -> storage::Store {
    storage::open_postgres(url, snapshots, options(), Duration::from_millis(500)).unwrap()
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[derive(Default)]
struct Report {
    rows: Vec<(String, String, String, bool)>,
    json: serde_json::Map<String, serde_json::Value>,
}

impl Report {
    fn target(&mut self, name: &str, target: &str, measured: String, pass: bool) {
        eprintln!("[postgres] {name}: {measured} (target {target}) {}", if pass { "PASS" } else { "MISS" });
        self.rows.push((name.to_string(), target.to_string(), measured, pass));
    }
    fn set(&mut self, k: &str, v: serde_json::Value) {
        self.json.insert(k.to_string(), v);
    }
}

/// A single relationship write that always changes something (a new member of a new group).
fn fresh_write(tag: &str, i: u64) -> Vec<WriteOp> {
    let text = format!("usergroup:bench-{tag}-{i}#member@user:u{}", i % 1000);
    vec![WriteOp::Touch(purview::api::parse_relationships(&text).unwrap().remove(0))]
}

/// Writers on `nodes` (round robin) for `seconds`: relationships written per second.
fn writers(nodes: &[Purview], n: usize, seconds: f64, tag: &str) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..n)
        .map(|w| {
            let (pv, stop, done) = (nodes[w % nodes.len()].clone(), stop.clone(), done.clone());
            let tag = format!("{tag}{w}");
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    pv.write(&fresh_write(&tag, i)).unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    let t = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    for th in threads {
        th.join().unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64()
}

fn questions(shape: &EcommsShape, n: usize) -> Vec<(u64, u64)> {
    let mut rng = Rng::new(42);
    (0..n)
        .map(|i| {
            let m = rng.below(shape.messages);
            let u = if i % 2 == 0 {
                // Usually a supervisor of one of the ancestors of a random group.
                let mut g = rng.below(shape.groups);
                for _ in 0..rng.below(4) {
                    g = group_parent(shape, g).unwrap_or(g);
                }
                g % shape.users
            } else {
                rng.below(shape.users)
            };
            (m, u)
        })
        .collect()
}

fn check_rate(pv: &Purview, qs: &[(ObjectRef, SubjectRef)]) -> (f64, f64) {
    let view = pv.snapshot();
    let opts = EvalOptions::default();
    let mut times = Vec::with_capacity(qs.len());
    let t = Instant::now();
    for (o, s) in qs {
        let q = Instant::now();
        view.check(o, "view", s, &opts).unwrap();
        times.push(q.elapsed().as_secs_f64() * 1e6);
    }
    let rate = qs.len() as f64 / t.elapsed().as_secs_f64();
    times.sort_by(f64::total_cmp);
    (rate, percentile(&times, 0.5))
}

fn main() {
    let scale = env_f64("PURVIEW_BENCH_SCALE", 1.0);
    let seconds = env_f64("PURVIEW_BENCH_SECONDS", 10.0);
    let mut report = Report::default();
    let pg = cluster::Pg::start();
    postgres::migrate(&pg.url).unwrap();
    report.set("scale", serde_json::json!(scale));

    // 1. Import.
    let (ds, shape) = datasets::ecomms(scale);
    let a = node(&pg.url, None);
    a.purview().set_schema(SchemaFormat::Purview, "ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
    let t = Instant::now();
    let mut n = 0u64;
    {
        let mut loader = a.purview().bulk_loader().unwrap();
        let data = &ds.data;
        data.for_each_tuple(|o, r, s, at| {
            loader.push(&relationship_of(data, o, r, s, at)).unwrap();
            n += 1;
        });
        loader.finish::<std::convert::Infallible>().unwrap();
    }
    let took = t.elapsed().as_secs_f64();
    let rate = n as f64 / took;
    report.set("relationships", serde_json::json!(n));
    report.target(
        "import via COPY",
        ">= 300k relationships/s",
        format!("{:.0}k/s ({n} in {took:.1} s)", rate / 1e3),
        rate >= 300_000.0,
    );
    let qs: Vec<(ObjectRef, SubjectRef)> = questions(&shape, 20_000)
        .into_iter()
        .map(|(m, u)| {
            (ObjectRef::new("message", format!("m{m}")), SubjectRef::new("user", format!("u{u}"), None))
        })
        .collect();
    let memory = Purview::from_schema_text("ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
    {
        let mut loader = memory.bulk_loader().unwrap();
        let data = &ds.data;
        data.for_each_tuple(|o, r, s, at| loader.push(&relationship_of(data, o, r, s, at)).unwrap());
        loader.finish::<std::convert::Infallible>().unwrap();
    }
    drop(ds);

    // 2. Cold starts.
    let t = Instant::now();
    let b = node(&pg.url, None);
    let cold = t.elapsed().as_secs_f64();
    assert_eq!(b.purview().revision(), a.purview().revision());
    report.target("cold start from PostgreSQL", "<= 30 s", format!("{cold:.2} s"), cold <= 30.0);
    // Reads on node B (loaded from PostgreSQL) against the same data loaded in memory: best of
    // three alternating runs each (the machine is shared with PostgreSQL).
    let (mut on_node, mut node_p50, mut in_memory, mut mem_p50) = (0f64, f64::MAX, 0f64, f64::MAX);
    for _ in 0..3 {
        let (r, p) = check_rate(b.purview(), &qs);
        (on_node, node_p50) = (on_node.max(r), node_p50.min(p));
        let (r, p) = check_rate(&memory, &qs);
        (in_memory, mem_p50) = (in_memory.max(r), mem_p50.min(p));
    }
    drop(memory);
    let ratio = on_node / in_memory;
    report.target(
        "checks on a node vs. in memory (one thread)",
        "as fast (ratio >= 0.9)",
        format!(
            "{on_node:.0}/s vs {in_memory:.0}/s (p50 {node_p50:.1} us vs {mem_p50:.1} us), ratio {ratio:.2}"
        ),
        ratio >= 0.9,
    );
    let snapshots = tempfile::tempdir().unwrap();
    drop(node(&pg.url, Some(snapshots.path()))); // writes the snapshot
    for i in 0..1000 {
        a.purview().write(&fresh_write("restart", i)).unwrap();
    }
    let t = Instant::now();
    let c = node(&pg.url, Some(snapshots.path()));
    let warm = t.elapsed().as_secs_f64();
    assert_eq!(c.purview().revision(), a.purview().revision());
    report.target(
        "cold start from a local snapshot + 1,000 changes",
        "<= 3 s",
        format!("{warm:.2} s (replayed {} revisions)", c.report.replayed),
        warm <= 3.0 && c.report.snapshot_revision.is_some(),
    );
    drop(c);

    // 3. Writes.
    let mut lat = Vec::new();
    for i in 0..1000 {
        let t = Instant::now();
        a.purview().write(&fresh_write("single", i)).unwrap();
        lat.push(t.elapsed().as_secs_f64() * 1e3);
    }
    lat.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&lat, 0.5), percentile(&lat, 0.99));
    report.target(
        "single-relationship write p50",
        "<= 5 ms",
        format!("{p50:.2} ms (p99 {p99:.2} ms)"),
        p50 <= 5.0,
    );
    let one = writers(&[a.purview().clone()], 16, seconds, "w16-");
    report.target(
        "16 concurrent writers, one node",
        ">= 5k relationships/s",
        format!("{one:.0}/s"),
        one >= 5000.0,
    );
    let two = writers(&[a.purview().clone(), b.purview().clone()], 16, seconds, "w2x8-");
    report.set("writers_16_two_nodes_per_s", serde_json::json!(two));
    eprintln!("[postgres] 16 writers over two nodes: {two:.0}/s");

    // 4. Replication lag A -> B.
    let seen: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let seen = seen.clone();
        b.purview().on_publish(move |r| seen.lock().unwrap().push((r, Instant::now())));
    }
    let mut committed = Vec::new();
    for i in 0..1000 {
        let r = a.purview().write(&fresh_write("lag", i)).unwrap();
        committed.push((r, Instant::now()));
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(500));
    let seen = seen.lock().unwrap().clone();
    let mut lags: Vec<f64> = committed
        .iter()
        .filter_map(|(r, at)| {
            let (_, when) = seen.iter().find(|(s, _)| s >= r)?;
            Some(when.saturating_duration_since(*at).as_secs_f64() * 1e3)
        })
        .collect();
    assert_eq!(lags.len(), committed.len(), "node B published every revision");
    lags.sort_by(f64::total_cmp);
    let (l50, l99) = (percentile(&lags, 0.5), percentile(&lags, 0.99));
    report.target("replication lag p50", "<= 20 ms", format!("{l50:.2} ms"), l50 <= 20.0);
    report.target("replication lag p99", "<= 100 ms", format!("{l99:.2} ms"), l99 <= 100.0);

    eprintln!("\n| target | required | measured | |\n|---|---|---|---|");
    for (name, target, measured, pass) in &report.rows {
        eprintln!("| {name} | {target} | {measured} | {} |", if *pass { "PASS" } else { "MISS" });
    }
    let rows: Vec<serde_json::Value> = report
        .rows
        .iter()
        .map(|(n, t, m, p)| serde_json::json!({"name": n, "target": t, "measured": m, "pass": p}))
        .collect();
    report.set("targets", serde_json::json!(rows));
    let path = std::env::var("PURVIEW_BENCH_JSON").unwrap_or_else(|_| "target/bench-postgres.json".into());
    let _ = std::fs::write(&path, serde_json::to_string_pretty(&report.json).unwrap());
    drop((a, b));
}
