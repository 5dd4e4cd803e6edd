//! The PostgreSQL visibility table on a throwaway local PostgreSQL 15 cluster, on the seeded
//! eComms dataset (see `datasets.rs`). Not a criterion bench (each phase needs a database and
//! runs once, like `benches/postgres.rs`); it prints target | measured | PASS/MISS.
//!
//! Run: `cargo bench --bench sink` (default scale 0.05: 6.75M pairs; full scale needs much memory
//! and disk). `PURVIEW_BENCH_SCALE=0.02 cargo bench --bench sink` for a quicker run.
//!
//! Phases:
//! 1. **Full load**: `message#view` for every user, computed on node A's index, then
//!    `VisibilityTable::load` (binary `COPY` into a new generation in subject order, two
//!    indexes, the view swapped, all in one transaction); pairs per second of the load alone.
//! 2. **Follow lag**: a follower (`sink::follow` on node B, woken by B publishing revisions it
//!    learns of by LISTEN/NOTIFY) while node A moves one user between two supervision teams 30
//!    times; for each, the time from A's write returning (committed) to the follower's
//!    transaction carrying that revision returning (committed); also the p50 of the follower's
//!    steps split into computing the deltas and writing them (`Applied::compute_micros`,
//!    `write_micros`).
//! 3. **Restart**: the follower stopped, 200 more moves written, then a new follower's first
//!    step: deltas (not a full reload), and its time.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/it/postgres/cluster.rs"]
mod cluster;
mod datasets;

use purview::api::{relationship_of, SchemaFormat, View};
use purview::eval::EvalOptions;
use purview::materialize::{Job, Target};
use purview::sink::{catch_up, follow, FollowOptions, VisibilityTable};
use purview::storage::{self, postgres, StoreOptions};
use purview::store::{ObjectRef, Relationship, SubjectRef, WriteOp};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

fn node(url: &str) -> storage::Store {
    let quiet = StoreOptions { warn: Arc::new(|_| {}), ..StoreOptions::default() };
    // How often a node polls PostgreSQL besides being woken by NOTIFY (`PURVIEW_BENCH_POLL_MS`).
    let poll = std::env::var("PURVIEW_BENCH_POLL_MS").ok().and_then(|s| s.parse().ok()).unwrap_or(200);
    storage::open_postgres(url, None, quiet, Duration::from_millis(poll)).unwrap()
}

fn row(name: &str, target: &str, measured: String, pass: bool) {
    println!("| {name} | {target} | {measured} | {} |", if pass { "PASS" } else { "MISS" });
}

fn main() {
    let scale: f64 = std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(0.05);
    let pg = cluster::Pg::start();
    postgres::migrate(&pg.url).unwrap();
    let (ds, shape) = datasets::ecomms(scale);
    let a = node(&pg.url);
    a.purview().set_schema(SchemaFormat::Purview, "ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
    {
        let mut loader = a.purview().bulk_loader().unwrap();
        let data = &ds.data;
        data.for_each_tuple(|o, r, s, at| loader.push(&relationship_of(data, o, r, s, at)).unwrap());
        loader.finish::<std::convert::Infallible>().unwrap();
    }
    drop(ds);
    let into = format!("{}?table=message_view", pg.url);
    println!("| phase | target | measured | |\n|---|---|---|---|");

    // 1. Full load.
    let View::Index(data) = a.purview().snapshot() else { panic!("an index") };
    let target = Target::resolve(&data.schema, "message#view", "user").unwrap();
    let t = Instant::now();
    let m = Job::new(&data, target).compute().unwrap();
    let compute = t.elapsed();
    let mut table = VisibilityTable::connect(&into).unwrap();
    let t = Instant::now();
    let rows = table.load(&data, &m, chrono::Utc::now()).unwrap();
    let took = t.elapsed().as_secs_f64();
    drop(m);
    let rate = rows as f64 / took;
    row(
        &format!("full load, scale {scale}"),
        ">= 1M pairs/s",
        format!("{:.2}M pairs/s ({rows} pairs in {took:.1} s; computed in {compute:.1?})", rate / 1e6),
        rate >= 1e6,
    );

    // 2. Follow lag.
    let fo = FollowOptions {
        permission: "message#view".into(),
        subject_type: "user".into(),
        opts: EvalOptions::default(),
        poll: Duration::from_millis(500),
        threads: Some(1),
    };
    let b = node(&pg.url);
    let stop = Arc::new(AtomicBool::new(false));
    let (tx, rx) = mpsc::channel::<(u64, Instant, u64, [u64; 2])>();
    let follower = {
        let (pv, stop, fo, into) = (b.purview().clone(), stop.clone(), fo.clone(), into.clone());
        std::thread::spawn(move || {
            let mut table = VisibilityTable::connect(&into).unwrap();
            follow(&pv, &mut table, &fo, &stop, |a| {
                let _ =
                    tx.send((a.to, Instant::now(), a.added + a.removed, [a.compute_micros, a.write_micros]));
            })
            .unwrap();
        })
    };
    let (g1, g2) = (shape.groups - 1, shape.groups - 2);
    let user = g1;
    let rel = |g: u64| {
        Relationship::new(
            ObjectRef::new("usergroup", format!("g{g}")),
            "member",
            SubjectRef::new("user", format!("u{user}"), None),
        )
    };
    let mut at = (g1, g2);
    let mover = |at: &mut (u64, u64)| {
        let r = a.purview().write(&[WriteOp::Delete(rel(at.0)), WriteOp::Touch(rel(at.1))]).unwrap();
        *at = (at.1, at.0);
        r
    };
    let (mut lags, mut seen, mut flipped) = (Vec::new(), Vec::new(), 0);
    let (mut computing, mut writing) = (Vec::new(), Vec::new());
    for _ in 0..30 {
        std::thread::sleep(Duration::from_millis(100));
        let revision = mover(&mut at);
        let committed = Instant::now();
        // When node B has the revision (woken by NOTIFY): the rest of the lag is the follower's.
        while b.purview().revision() < revision {
            std::thread::sleep(Duration::from_micros(100));
        }
        seen.push(committed.elapsed().as_secs_f64() * 1e3);
        loop {
            let (to, when, pairs, [compute, write]) =
                rx.recv_timeout(Duration::from_secs(60)).expect("the follower applies the move");
            flipped += pairs;
            computing.push(compute as f64 / 1e3);
            writing.push(write as f64 / 1e3);
            if to >= revision {
                lags.push(when.saturating_duration_since(committed).as_secs_f64() * 1e3);
                break;
            }
        }
    }
    let p50 = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let p50_lag = p50(&mut lags);
    row(
        "follow lag, one-user group move",
        "p50 <= 50 ms",
        format!(
            "p50 {p50_lag:.1} ms, max {:.1} ms ({} pairs flipped a move on average; node B had the revision \
             after p50 {:.1} ms; the follower's steps: deltas computed in p50 {:.1} ms, written in p50 {:.1} ms)",
            lags[lags.len() - 1],
            flipped / 30,
            p50(&mut seen),
            p50(&mut computing),
            p50(&mut writing),
        ),
        p50_lag <= 50.0,
    );
    stop.store(true, Ordering::Relaxed);
    let _ = a.purview().write(&[WriteOp::Touch(rel(at.0))]); // wakes the follower to stop
    follower.join().unwrap();

    // 3. Restart.
    for _ in 0..200 {
        mover(&mut at);
    }
    let _ = b.purview().follow();
    let t = Instant::now();
    let mut table = VisibilityTable::connect(&into).unwrap();
    let step = catch_up(b.purview(), &mut table, &fo).unwrap().unwrap();
    row(
        "restart after 200 writes",
        "catches up without a full reload",
        format!(
            "{} in {:.1?}: {} added, {} removed",
            if step.full { "full reload" } else { "deltas" },
            t.elapsed(),
            step.added,
            step.removed
        ),
        !step.full,
    );
}
