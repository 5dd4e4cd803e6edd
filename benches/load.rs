//! The public bulk loader on the eComms dataset (`datasets.rs`, ~10.3M relationships at scale
//! 1), as one run printing a table: a public bulk load (`Purview::bulk_loader`, as
//! `Purview::bulk_load` runs it) of relationships with names (validated as writes are, names
//! interned, the index built), timed with the relationships made beforehand (and freed after
//! the timer), and the resident memory the load leaves, per relationship.
//!
//! Run: `cargo bench --bench load` (`PURVIEW_BENCH_SCALE=0.1` for a quick run;
//! `PURVIEW_BENCH_RUNS` timed loads, 3 by default).

// Set-up panics on failure: a panic ends the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod datasets;

use datasets::{ecomms, resident_bytes};
use purview::api::relationship_of;
use purview::store::Relationship;
use purview::Purview;
use std::time::Instant;

fn main() {
    let scale: f64 = std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let runs: usize = std::env::var("PURVIEW_BENCH_RUNS").ok().and_then(|s| s.parse().ok()).unwrap_or(3);
    let (ds, _) = ecomms(scale);
    let mut rows: Vec<(String, String)> = Vec::new();

    // Memory: each relationship made (with names) just before it is pushed, so that what stays
    // resident afterwards is what the loaded `Purview` keeps (and what its allocator holds).
    let baseline = resident_bytes();
    let pv = Purview::from_schema_text("ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
    let mut loader = pv.bulk_loader().unwrap();
    ds.data.for_each_tuple(|o, r, s, a| loader.push(&relationship_of(&ds.data, o, r, s, a)).unwrap());
    // Relationships as stored (the dataset's generator repeats a few, which its build merged).
    let n = loader.finish::<std::convert::Infallible>().unwrap().relationships;
    eprintln!("[load] scale {scale}: {n} relationships");
    let public_bytes = resident_bytes().saturating_sub(baseline);
    let (structures, names, name_bytes) = match pv.snapshot() {
        purview::api::View::Index(i) => {
            let names: u64 = (0..i.schema.types.len() as u32).map(|t| u64::from(i.object_count(t))).sum();
            (i.heap_bytes() + i.names_heap_bytes(), names, i.names_heap_bytes())
        }
        _ => (0, 0, 0),
    };
    drop(pv);
    rows.push((
        "resident memory after the public load (target <= 20 bytes per relationship)".into(),
        format!(
            "{:.1} bytes per relationship ({:.0} MB; the index counts {:.1} bytes of lists, closures and names)",
            public_bytes as f64 / n as f64,
            public_bytes as f64 / 1e6,
            structures as f64 / n as f64
        ),
    ));
    rows.push((
        "object names (the interners' heap bytes per name, text included)".into(),
        format!("{names} names, {:.1} bytes per name", name_bytes as f64 / names.max(1) as f64),
    ));

    // Time: the relationships made beforehand, so that only the loader is timed.
    let mut times = Vec::new();
    for _ in 0..runs {
        let mut made: Vec<Relationship> = Vec::with_capacity(n);
        ds.data.for_each_tuple(|o, r, s, a| made.push(relationship_of(&ds.data, o, r, s, a)));
        let pv = Purview::from_schema_text("ecomms.pv", datasets::ECOMMS_SCHEMA).unwrap();
        let t = Instant::now();
        let mut loader = pv.bulk_loader().unwrap();
        for r in &made {
            loader.push(r).unwrap();
        }
        let pushed = t.elapsed();
        loader.finish::<std::convert::Infallible>().unwrap();
        let took = t.elapsed();
        eprintln!("[load] public bulk load: {took:.2?} (validated and interned in {pushed:.2?}, then built)");
        times.push(took.as_secs_f64());
        drop(made);
        drop(pv);
    }
    times.sort_by(f64::total_cmp);
    rows.push((
        format!("public bulk load of {n} relationships (target <= 4 s for 10M)"),
        format!(
            "{:.2}-{:.2} s over {runs} runs ({:.2}M relationships/s at the median)",
            times[0],
            times[times.len() - 1],
            n as f64 / times[times.len() / 2] / 1e6
        ),
    ));

    eprintln!("\n| measure | figure |\n|---|---|");
    for (k, v) in &rows {
        eprintln!("| {k} | {v} |");
    }
}
