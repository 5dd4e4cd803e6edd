//! Bulk visibility job benchmarks on the seeded eComms dataset (see `datasets.rs`).
//!
//! Run: `cargo bench --bench materialize` (full scale: 10.6M relationships, 3.3M messages; needs
//! ~3 GB and several minutes). `PURVIEW_BENCH_SCALE=0.05 cargo bench --bench materialize` for a
//! quick run.
//!
//! Measured, for `message#view` and every `user`:
//!
//! - `full/compact/T`: the whole materialization into the compact form (per-subject bitmaps,
//!   serialized to a sink) on T threads (1 and 2), throughput in pairs;
//! - `full/csv` and `full/jsonl`: the same into text, object-major (formatting dominates; the
//!   sink discards the bytes, so disk speed is not measured); `full/jsonl-by-object` (one line
//!   per object, for search indexes) and `full/parquet` (dictionary-encoded, zstd) likewise;
//! - once: one partition of four (`--partition 1/4`), cut early since `message` is never a
//!   subject;
//! - `delta/move-user`: the deltas of one user moving between two supervision teams;
//! - `delta/join-team`: the deltas of one user joining the team that flips closest to 10,000
//!   pairs (the change and the number of pairs are printed once).
//!
//! Before criterion runs, each job runs once and prints its summary (pairs, time, pairs/s); the
//! text formats (and one CSV written to a file in the temp directory) only up to 20M pairs.

// Benchmarks panic on purpose when their fixed data is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datasets.rs"]
mod datasets;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datasets::{ecomms, EcommsShape};
use purview::eval::EvalOptions;
use purview::index::{Index, IndexData};
use purview::materialize::{deltas, Format, Job, Partition, Strategy, Target};
use purview::store::{ObjectRef, Relationship, SubjectRef, WriteOp};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn scale() -> f64 {
    std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

struct Fixture {
    data: Arc<IndexData>,
    target: Target,
    pairs: u64,
    /// Before and after one user moves between two supervision teams, and the batch.
    before: Arc<IndexData>,
    after: Arc<IndexData>,
    ops: Vec<WriteOp>,
    /// After one user joins a team, flipping about 10k pairs, and the batch.
    joined: Arc<IndexData>,
    join_ops: Vec<WriteOp>,
}

/// Adds user `u1` to the supervision team (a leaf group whose members supervise the groups it
/// is assigned to) whose messages number closest to 10,000: one membership change that flips
/// about 10k pairs.
fn join_team(
    data: &Arc<IndexData>,
    shape: &EcommsShape,
    target: &Target,
) -> (Arc<IndexData>, Vec<WriteOp>, usize) {
    let opts = EvalOptions::default();
    let mut best: Option<(Arc<IndexData>, Vec<WriteOp>, usize)> = None;
    for team in shape.groups - 97..shape.groups {
        let ops = vec![WriteOp::Touch(Relationship::new(
            ObjectRef::new("usergroup", format!("g{team}")),
            "member",
            SubjectRef::new("user", "u1", None),
        ))];
        let mut index = Index::from_data((**data).clone());
        index.write(&ops).unwrap();
        let after = index.snapshot();
        let n =
            deltas(data, &after, &ops, target, &opts, Strategy::Auto, Partition::default()).unwrap().len();
        if best.as_ref().is_none_or(|b| n.abs_diff(10_000) < b.2.abs_diff(10_000)) {
            best = Some((after, ops, n));
        }
    }
    best.unwrap()
}

/// Moves a member of the team `groups - 1` (a leaf group whose members supervise every tenth
/// group it is assigned to) to the team `groups - 2`.
fn move_user(data: &Arc<IndexData>, shape: &EcommsShape) -> (Arc<IndexData>, Vec<WriteOp>) {
    let (from, to) = (shape.groups - 1, shape.groups - 2);
    // Users u with u % groups == from are direct members of group `from`.
    let user = from;
    let rel = |g: u64| {
        Relationship::new(
            ObjectRef::new("usergroup", format!("g{g}")),
            "member",
            SubjectRef::new("user", format!("u{user}"), None),
        )
    };
    let ops = vec![WriteOp::Delete(rel(from)), WriteOp::Touch(rel(to))];
    let mut index = Index::from_data((**data).clone());
    index.write(&ops).unwrap();
    (index.snapshot(), ops)
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let t = Instant::now();
        let (ds, shape) = ecomms(scale());
        eprintln!("[ecomms] {} relationships built in {:.2?}", ds.relationships, t.elapsed());
        let data = Arc::new(ds.data);
        let target = Target::resolve(&data.schema, "message#view", "user").unwrap();
        let sink = || std::io::sink();
        let mut pairs = 0;
        for threads in [1, 2] {
            let s = Job::new(&data, target).threads(threads).write_to(Format::Compact, &mut sink()).unwrap();
            eprintln!("[full compact, {threads} thread(s)] {s}");
            pairs = s.pairs;
        }
        let quarter = Partition { index: 1, count: 4 };
        let s = Job::new(&data, target)
            .partition(quarter)
            .threads(1)
            .write_to(Format::Compact, &mut sink())
            .unwrap();
        eprintln!("[full compact, partition 1/4, 1 thread] {s}");
        // Text output grows past 40 bytes a pair: at large scales only criterion measures it.
        let text = pairs <= 20_000_000;
        for format in
            [Format::Csv, Format::Jsonl, Format::ObjectJsonl, Format::Parquet].into_iter().filter(|_| text)
        {
            let s = Job::new(&data, target).write_to(format, &mut sink()).unwrap();
            eprintln!("[full {format:?}] {s}");
        }
        if text {
            let path = std::env::temp_dir().join(format!("purview-bench-{}.csv", std::process::id()));
            let s = Job::new(&data, target).write_file(Format::Csv, &path).unwrap();
            let _ = std::fs::remove_file(&path);
            eprintln!("[full csv to a file in {}] {s}", std::env::temp_dir().display());
            let path = std::env::temp_dir().join(format!("purview-bench-{}.parquet", std::process::id()));
            let s = Job::new(&data, target).write_file(Format::Parquet, &path).unwrap();
            let _ = std::fs::remove_file(&path);
            eprintln!(
                "[full parquet to a file: {:.2} bytes a pair] {s}",
                s.bytes as f64 / s.pairs.max(1) as f64
            );
        }
        let (after, ops) = move_user(&data, &shape);
        let opts = EvalOptions::default();
        for how in [Strategy::Auto, Strategy::Objects, Strategy::Subjects] {
            let t = Instant::now();
            let found = deltas(&data, &after, &ops, &target, &opts, how, Partition::default()).unwrap();
            eprintln!("[delta move-user {how:?}] {} pairs changed in {:.2?}", found.len(), t.elapsed());
        }
        let (joined, join_ops, n) = join_team(&data, &shape, &target);
        let t = Instant::now();
        deltas(&data, &joined, &join_ops, &target, &opts, Strategy::Auto, Partition::default()).unwrap();
        eprintln!(
            "[delta join-team] {n} pairs changed in {:.2?} (+{})",
            t.elapsed(),
            join_ops[0].relationship()
        );
        Fixture { before: data.clone(), data, target, pairs, after, ops, joined, join_ops }
    })
}

fn bench_full(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("full");
    g.sample_size(10).measurement_time(Duration::from_secs(10)).throughput(Throughput::Elements(f.pairs));
    for threads in [1, 2] {
        g.bench_with_input(BenchmarkId::new("compact", threads), &threads, |b, &n| {
            b.iter(|| {
                Job::new(&f.data, f.target)
                    .threads(n)
                    .write_to(Format::Compact, &mut std::io::sink())
                    .unwrap()
            })
        });
    }
    for (name, format) in [
        ("csv", Format::Csv),
        ("jsonl", Format::Jsonl),
        ("jsonl-by-object", Format::ObjectJsonl),
        ("parquet", Format::Parquet),
    ] {
        g.bench_function(name, |b| {
            b.iter(|| Job::new(&f.data, f.target).write_to(format, &mut std::io::sink()).unwrap())
        });
    }
    g.finish();
}

fn bench_delta(c: &mut Criterion) {
    let f = fixture();
    let opts = EvalOptions::default();
    let mut g = c.benchmark_group("delta");
    g.sample_size(20);
    g.bench_function("move-user", |b| {
        b.iter(|| {
            deltas(&f.before, &f.after, &f.ops, &f.target, &opts, Strategy::Auto, Partition::default())
                .unwrap()
        })
    });
    g.bench_function("join-team", |b| {
        b.iter(|| {
            deltas(&f.before, &f.joined, &f.join_ops, &f.target, &opts, Strategy::Auto, Partition::default())
                .unwrap()
        })
    });
    g.finish();
}

criterion_group!(benches, bench_full, bench_delta);
criterion_main!(benches);
