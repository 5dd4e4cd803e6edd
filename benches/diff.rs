//! `purview diff` benchmarks on the seeded eComms dataset (see `datasets.rs`): a schema change
//! to one permission against a materialize delta of the same pairs.
//!
//! Run: `cargo bench --bench diff` (full scale: 10.3M relationships; needs ~3 GB).
//! `PURVIEW_BENCH_SCALE=0.05 cargo bench --bench diff` for a quick run.
//!
//! Measured, for `message#view` and every `user`:
//!
//! - `diff/drop-admin-branch`: `diff` of `view = tagged->supervise + account->admin` →
//!   `view = tagged->supervise` (account admins no longer see every message): the data is
//!   re-planned under the new schema (same relations, so the lists are shared), the subjects for
//!   which `account->admin` holds are found (one `what` of that branch per user), and those
//!   subjects' rows are compared;
//! - `delta/remove-admins`: the materialize delta of deleting every `account#admin`
//!   relationship under the old schema — exactly the same pairs, as a data change.
//!
//! Before criterion runs, each runs once and prints its pairs and time, and checks that both
//! give the same pairs; a diff whose new schema adds a relation (so the data is re-resolved by
//! name, not re-planned) runs once too.

// Benchmarks panic on purpose when their fixed data is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datasets.rs"]
mod datasets;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use datasets::{ecomms, EcommsShape, ECOMMS_SCHEMA};
use purview::api::compile_schema_as;
use purview::eval::EvalOptions;
use purview::index::{Index, IndexData};
use purview::materialize::{deltas, diff, Partition, Strategy, Target, Targets};
use purview::schema::Schema;
use purview::store::{ObjectRef, Relationship, SubjectRef, WriteOp};
use purview::syntax::SchemaFormat;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn scale() -> f64 {
    std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

const OLD_VIEW: &str = "permission view = tagged->supervise + account->admin";

struct Fixture {
    data: Arc<IndexData>,
    new: Arc<Schema>,
    target: Target,
    /// After every account admin is deleted, and the batch.
    after: Arc<IndexData>,
    ops: Vec<WriteOp>,
    pairs: u64,
}

fn schema(text: &str) -> Arc<Schema> {
    Arc::new(compile_schema_as(SchemaFormat::Purview, "new.pv", text).unwrap())
}

/// Deletes the five admins of each account (see `datasets::ecomms`).
fn remove_admins(data: &Arc<IndexData>, shape: &EcommsShape) -> (Arc<IndexData>, Vec<WriteOp>) {
    let mut ops = Vec::new();
    for a in 0..shape.accounts {
        for k in 0..5 {
            ops.push(WriteOp::Delete(Relationship::new(
                ObjectRef::new("account", format!("a{a}")),
                "admin",
                SubjectRef::new("user", format!("u{}", (a * 1000 + k) % shape.users), None),
            )));
        }
    }
    let mut index = Index::from_data((**data).clone());
    index.write(&ops).unwrap();
    (index.snapshot(), ops)
}

fn targets() -> Targets {
    Targets { permissions: vec!["message#view".into()], ..Targets::default() }
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let t = Instant::now();
        let (ds, shape) = ecomms(scale());
        eprintln!("[ecomms] {} relationships built in {:.2?}", ds.relationships, t.elapsed());
        let data = Arc::new(ds.data);
        let target = Target::resolve(&data.schema, "message#view", "user").unwrap();
        let new = schema(&ECOMMS_SCHEMA.replace(OLD_VIEW, "permission view = tagged->supervise"));
        let t = Instant::now();
        let report = diff(&data.schema, &new, &data, &targets()).unwrap();
        let p = &report.permissions[0];
        eprintln!(
            "[diff drop-admin-branch] {} pairs removed, {} added, {} subjects evaluated, in {:.2?}",
            p.removed,
            p.added,
            p.subjects_evaluated.unwrap_or(0),
            t.elapsed()
        );
        let (after, ops) = remove_admins(&data, &shape);
        let opts = EvalOptions::default();
        let t = Instant::now();
        let found =
            deltas(&data, &after, &ops, &target, &opts, Strategy::Auto, Partition::default()).unwrap();
        eprintln!("[delta remove-admins] {} pairs changed in {:.2?}", found.len(), t.elapsed());
        assert_eq!(found, p.pairs, "the schema change and the data change remove the same pairs");
        let wider = schema(&ECOMMS_SCHEMA.replace(
            "  relation tagged: usergroup\n",
            "  relation tagged: usergroup\n  relation sender: user\n",
        ));
        let t = Instant::now();
        let r = diff(&data.schema, &wider, &data, &targets()).unwrap();
        eprintln!(
            "[diff add-relation] {} pairs changed (the data re-resolved by name) in {:.2?}",
            r.totals().0 + r.totals().1,
            t.elapsed()
        );
        let pairs = found.len() as u64;
        Fixture { data, new, target, after, ops, pairs }
    })
}

fn bench(c: &mut Criterion) {
    let f = fixture();
    let mut g = c.benchmark_group("diff");
    g.sample_size(10).measurement_time(Duration::from_secs(20)).throughput(Throughput::Elements(f.pairs));
    g.bench_function("diff/drop-admin-branch", |b| {
        b.iter(|| diff(&f.data.schema, &f.new, &f.data, &targets()).unwrap().permissions.len())
    });
    let opts = EvalOptions::default();
    g.bench_function("delta/remove-admins", |b| {
        b.iter(|| {
            deltas(&f.data, &f.after, &f.ops, &f.target, &opts, Strategy::Auto, Partition::default())
                .unwrap()
                .len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
