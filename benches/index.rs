//! Index benchmarks on the seeded eComms and insurance datasets (see `datasets.rs`).
//!
//! Run: `cargo bench --bench index` (full scale, ~10.6M relationships; needs ~2 GB and a few
//! minutes). `PURVIEW_BENCH_SCALE=0.1 cargo bench --bench index` for a quick run.
//!
//! Besides criterion's timings it prints, once: build time, resident memory per relationship,
//! the median and p99 latency of single checks, and the same operations on the reference
//! evaluator over a smaller copy of the data (the reference store is a plain map and is only
//! meant as an oracle).

// Benchmarks panic on purpose when their fixed data is not as expected.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "datasets.rs"]
mod datasets;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use datasets::{ecomms, group_parent, insurance, resident_bytes, EcommsShape, Rng};
use purview::api::{Engine, Page, Purview, SubjectFilter, View};
use purview::eval::EvalOptions;
use purview::index::{Index, IndexData, IndexEval};
use purview::store::{Obj, ObjectRef, Relationship, Source, Subject, SubjectRef, WriteOp};
use rayon::prelude::*;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

fn scale() -> f64 {
    std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0)
}

struct Fixture {
    data: Arc<IndexData>,
    shape: EcommsShape,
    /// (message, user) pairs to check: half supervisors of a tagged group's ancestors, half random.
    pairs: Vec<(Obj, Subject)>,
}

fn fixture() -> &'static Fixture {
    static F: OnceLock<Fixture> = OnceLock::new();
    F.get_or_init(|| {
        let before = resident_bytes();
        let t = Instant::now();
        let (ds, shape) = ecomms(scale());
        let built = t.elapsed();
        let after = resident_bytes();
        eprintln!(
            "[ecomms] {} relationships built in {:.2?}; resident {:.1} MB, {:.1} bytes/relationship",
            ds.relationships,
            built,
            after as f64 / 1e6,
            (after.saturating_sub(before)) as f64 / ds.relationships as f64
        );
        let data = Arc::new(ds.data);
        let schema = data.schema.clone();
        let (message, user) = (schema.type_id("message").unwrap(), schema.type_id("user").unwrap());
        let (group, _) = schema.relation("usergroup", "supervisor").unwrap();
        let tagged = data
            .plan
            .slot(
                message,
                schema.relation("message", "tagged").unwrap().1,
                group,
                purview::index::plan::SlotKind::Direct,
            )
            .unwrap();
        let sup = data
            .plan
            .slot(
                group,
                schema.relation("usergroup", "supervisor").unwrap().1,
                user,
                purview::index::plan::SlotKind::Direct,
            )
            .unwrap();
        let mut rng = Rng::new(42);
        let mut pairs = Vec::new();
        for i in 0..20_000 {
            let m = rng.below(shape.messages) as u32;
            let u = if i % 2 == 0 {
                // A supervisor of an ancestor of one of the message's groups.
                let tags: Vec<u32> = data.fwd(tagged, m).iter().collect();
                let mut g = u64::from(tags[rng.below(tags.len() as u64) as usize]);
                for _ in 0..rng.below(4) {
                    g = group_parent(&shape, g).unwrap_or(g);
                }
                let sups: Vec<u32> = data.fwd(sup, g as u32).iter().collect();
                sups[rng.below(sups.len() as u64) as usize]
            } else {
                rng.below(shape.users) as u32
            };
            pairs.push((Obj { ty: message, id: m }, Subject { ty: user, id: u, rel: None }));
        }
        Fixture { data, shape, pairs }
    })
}

fn percentiles(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn bench_check(c: &mut Criterion) {
    let f = fixture();
    let schema = f.data.schema.clone();
    let view = schema.relation("message", "view").unwrap().1;
    let opts = EvalOptions::default();
    // Single-check latency distribution (each check timed on its own).
    let mut times = Vec::with_capacity(f.pairs.len());
    let mut allowed = 0;
    for &(o, s) in &f.pairs {
        let t = Instant::now();
        let r = IndexEval::new(&f.data, &opts).check(o, view, s).unwrap();
        times.push(t.elapsed());
        allowed += usize::from(r == purview::Tri::True);
    }
    let (p50, p99) = percentiles(times);
    eprintln!(
        "[check] message#view through nested groups: median {p50:.2?}, p99 {p99:.2?} ({allowed}/{} allowed)",
        f.pairs.len()
    );
    // The same questions through the facade: the id API (names resolved once, beforehand) and
    // the name API (names resolved on every call).
    let pv_view = purview::api::View::Index(f.data.clone());
    let perm = pv_view.permission_id("message", "view").unwrap();
    let named: Vec<(ObjectRef, SubjectRef)> = f
        .pairs
        .iter()
        .map(|&(o, s)| (f.data.object_ref(o), SubjectRef::new("user", f.data.names().name(s.ty, s.id), None)))
        .collect();
    let ids: Vec<_> =
        named.iter().map(|(o, s)| (pv_view.object_id(o).unwrap(), pv_view.subject_id(s).unwrap())).collect();
    let mut by_ids = Vec::with_capacity(ids.len());
    for (o, s) in &ids {
        let t = Instant::now();
        pv_view.check_ids(o, perm, s, &opts).unwrap();
        by_ids.push(t.elapsed());
    }
    let mut by_names = Vec::with_capacity(named.len());
    for (o, s) in &named {
        let t = Instant::now();
        pv_view.check(o, "view", s, &opts).unwrap();
        by_names.push(t.elapsed());
    }
    let ((i50, i99), (n50, n99)) = (percentiles(by_ids), percentiles(by_names));
    eprintln!("[check] through the id API: median {i50:.2?}, p99 {i99:.2?}; through names: median {n50:.2?}, p99 {n99:.2?}");
    // Permission sets: `usergroup#supervise` (what `tagged->supervise` points at) for every user,
    // computed at once; then the same questions again.
    let (ug, sup) = schema.relation("usergroup", "supervise").unwrap();
    let user = schema.type_id("user").unwrap();
    let t = Instant::now();
    let n = f.data.precompute_sets(ug, sup, user, &opts);
    eprintln!(
        "[check] permission sets of usergroup#supervise for every user: {n:?} users in {:.2?}",
        t.elapsed()
    );
    let mut warm = Vec::with_capacity(ids.len());
    for (o, s) in &ids {
        let t = Instant::now();
        pv_view.check_ids(o, perm, s, &opts).unwrap();
        warm.push(t.elapsed());
    }
    let mut warm_names = Vec::with_capacity(named.len());
    for (o, s) in &named {
        let t = Instant::now();
        pv_view.check(o, "view", s, &opts).unwrap();
        warm_names.push(t.elapsed());
    }
    let mut resolve = Vec::with_capacity(named.len());
    for (o, s) in &named {
        let t = Instant::now();
        let _ = (
            pv_view.object_id(o).unwrap(),
            pv_view.subject_id(s).unwrap(),
            pv_view.permission_id("message", "view"),
        );
        resolve.push(t.elapsed());
    }
    let (r50, r99) = percentiles(resolve);
    eprintln!("[check] resolving the names of one question: median {r50:.2?}, p99 {r99:.2?}");
    let ((w50, w99), (wn50, wn99)) = (percentiles(warm), percentiles(warm_names));
    eprintln!("[check] with permission sets: id API median {w50:.2?}, p99 {w99:.2?}; names median {wn50:.2?}, p99 {wn99:.2?}");
    let mut g = c.benchmark_group("check");
    g.throughput(Throughput::Elements(1));
    let mut i = 0;
    g.bench_function("message_view_index", |b| {
        b.iter(|| {
            let (o, s) = f.pairs[i % f.pairs.len()];
            i += 1;
            IndexEval::new(&f.data, &opts).check(o, view, s).unwrap()
        })
    });
    g.finish();
}

fn bench_bulk(c: &mut Criterion) {
    let f = fixture();
    let view = f.data.schema.relation("message", "view").unwrap().1;
    let opts = EvalOptions::default();
    let mut g = c.benchmark_group("bulk_check");
    g.throughput(Throughput::Elements(f.pairs.len() as u64));
    for threads in [1, 2] {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
        g.bench_with_input(BenchmarkId::new("threads", threads), &threads, |b, _| {
            b.iter(|| {
                pool.install(|| {
                    f.pairs
                        .par_iter()
                        .map(|&(o, s)| IndexEval::new(&f.data, &opts).check(o, view, s).unwrap())
                        .filter(|t| *t == purview::Tri::True)
                        .count()
                })
            })
        });
    }
    g.finish();
}

fn bench_lookups(c: &mut Criterion) {
    let f = fixture();
    let view = View::Index(f.data.clone());
    let mut opts = EvalOptions::default();
    opts.limits.max_results = usize::MAX;
    let everyone = ObjectRef::new("usergroup", format!("g{}", f.shape.groups));
    let n_who = view.who(&everyone, "member", &SubjectFilter::parse("user"), &opts).unwrap().subjects.len();
    let admin = SubjectRef::new("user", "u0", None);
    let n_what = view.what(&admin, "view", "message", &Page::default(), &opts).unwrap().objects.len();
    eprintln!("[lookups] who(everyone#member) = {n_who} users; what(u0#view message) = {n_what} messages");
    let mut g = c.benchmark_group("lookup");
    g.sample_size(20);
    let data = &f.data;
    let (group, member) = data.schema.relation("usergroup", "member").unwrap();
    let user = data.schema.type_id("user").unwrap();
    g.bench_function(BenchmarkId::new("who_ids", n_who), |b| {
        b.iter(|| {
            IndexEval::new(data, &opts)
                .who(Obj { ty: group, id: f.shape.groups as u32 }, member, user, None)
                .unwrap()
        })
    });
    let (message, mview) = data.schema.relation("message", "view").unwrap();
    let s = Subject { ty: user, id: 0, rel: None };
    g.bench_function(BenchmarkId::new("what_ids", n_what), |b| {
        b.iter(|| IndexEval::new(data, &opts).what(s, message, mview).unwrap())
    });
    let page = Page { limit: Some(1000), cursor: None };
    g.bench_function("what_first_page_1000", |b| {
        b.iter(|| view.what(&admin, "view", "message", &page, &opts).unwrap())
    });
    // The same page on ids (names fetched only when asked for).
    let perm = view.permission_id("message", "view").unwrap();
    let admin_id = view.subject_id(&admin).unwrap();
    g.bench_function("what_first_page_1000_ids", |b| {
        b.iter(|| view.what_ids_page(&admin_id, perm, 0, 1000, &opts).unwrap())
    });
    g.finish();
}

fn bench_writes(c: &mut Criterion) {
    let f = fixture();
    let mut index = Index::from_data((*f.data).clone());
    let mut g = c.benchmark_group("write");
    g.sample_size(30);
    let mut rng = Rng::new(5);
    g.bench_function("touch_one_message_tag", |b| {
        b.iter(|| {
            let m = rng.below(f.shape.messages);
            let grp = rng.below(f.shape.groups);
            let r = Relationship::new(
                ObjectRef::new("message", format!("m{m}")),
                "tagged",
                SubjectRef::new("usergroup", format!("g{grp}"), None),
            );
            index.write(&[WriteOp::Touch(r)]).unwrap()
        })
    });
    // A group with about 10k transitive members joins another group, then leaves again.
    let join = Relationship::new(
        ObjectRef::new("usergroup", "g4999"),
        "member",
        SubjectRef::new("usergroup", "g0", Some("member")),
    );
    g.bench_function("group_join_and_leave", |b| {
        b.iter(|| {
            index.write(&[WriteOp::Touch(join.clone())]).unwrap();
            index.write(&[WriteOp::Delete(join.clone())]).unwrap()
        })
    });
    g.finish();
    // Permission sets kept across writes: `usergroup#supervise` precomputed for every user, then
    // users join groups one write at a time, and after each write a message is checked for
    // another user (through `tagged->supervise`, answered from the sets the write kept).
    let schema = f.data.schema.clone();
    let (ug, sup) = schema.relation("usergroup", "supervise").unwrap();
    let user = schema.type_id("user").unwrap();
    let opts = EvalOptions::default();
    index.snapshot().precompute_sets(ug, sup, user, &opts);
    let (mut writes, mut checks) = (Vec::new(), Vec::new());
    for i in 0..2_000u64 {
        let joins = Relationship::new(
            ObjectRef::new("usergroup", format!("g{}", rng.below(f.shape.groups))),
            "member",
            SubjectRef::new("user", format!("u{}", rng.below(f.shape.users)), None),
        );
        let op = if i % 2 == 0 { WriteOp::Touch(joins) } else { WriteOp::Delete(joins) };
        let t = Instant::now();
        index.write(&[op]).unwrap();
        writes.push(t.elapsed());
        let view = View::Index(index.snapshot());
        let (o, s) = &f.pairs[i as usize % f.pairs.len()];
        let (o, s) = (f.data.object_ref(*o), SubjectRef::new("user", f.data.names().name(s.ty, s.id), None));
        let t = Instant::now();
        view.check(&o, "view", &s, &opts).unwrap();
        checks.push(t.elapsed());
    }
    let ((w50, w99), (c50, c99)) = (percentiles(writes), percentiles(checks));
    eprintln!(
        "[write] with permission sets precomputed: a user joining or leaving a group: median {w50:.2?}, p99 {w99:.2?}; the next check: median {c50:.2?}, p99 {c99:.2?}"
    );
    let snap = index.snapshot();
    let view = View::Index(snap);
    let n = view
        .who(
            &ObjectRef::new("usergroup", "g0"),
            "member",
            &SubjectFilter::parse("user"),
            &EvalOptions::default(),
        )
        .unwrap()
        .subjects
        .len();
    eprintln!("[write] g0 has {n} transitive members");
}

fn bench_build(c: &mut Criterion) {
    let mut g = c.benchmark_group("build");
    g.sample_size(10);
    let s = scale() / 10.0;
    let (probe, _) = ecomms(s);
    g.throughput(Throughput::Elements(probe.relationships as u64));
    g.bench_function(BenchmarkId::new("ecomms_relationships", probe.relationships), |b| {
        b.iter(|| ecomms(s).0.relationships)
    });
    let (ins, _) = insurance(scale() / 10.0);
    g.throughput(Throughput::Elements(ins.relationships as u64));
    g.bench_function(BenchmarkId::new("insurance_relationships", ins.relationships), |b| {
        b.iter(|| insurance(scale() / 10.0).0.relationships)
    });
    g.finish();
}

/// The same questions on the reference evaluator, over a 1/100 copy of the data.
fn bench_reference(c: &mut Criterion) {
    let (small, _) = ecomms(scale() / 100.0);
    let rels: Vec<Relationship> = {
        let src: &dyn Source = &small.data;
        let schema = small.data.schema.clone();
        let mut out = Vec::new();
        for (t, tdef) in schema.types.iter().enumerate() {
            for (r, _) in tdef.relations.iter().enumerate() {
                for id in 0..src.object_count(t as u32) {
                    let o = Obj { ty: t as u32, id };
                    for (s, _) in src.tuples(o, r as u32) {
                        out.push(Relationship::new(
                            src.object_ref(o),
                            tdef.relations[r].name.clone(),
                            src.subject_ref(s),
                        ));
                    }
                }
            }
        }
        out
    };
    let schema = (*small.data.schema).clone();
    let reference = Purview::with_engine(schema.clone(), Engine::Reference);
    let index = Purview::with_engine(schema, Engine::Index);
    let ops: Vec<WriteOp> = rels.into_iter().map(WriteOp::Touch).collect();
    reference.write(&ops).unwrap();
    index.write(&ops).unwrap();
    let opts = EvalOptions::default();
    let mut g = c.benchmark_group("reference_vs_index_1pct");
    g.sample_size(10);
    let admin = SubjectRef::new("user", "u0", None);
    let everyone = ObjectRef::new("usergroup", "g5000");
    for (name, pv) in [("reference", &reference), ("index", &index)] {
        let view = pv.snapshot();
        g.bench_function(BenchmarkId::new("check_message_view", name), |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                view.check(
                    &ObjectRef::new("message", format!("m{}", i % 33_000)),
                    "view",
                    &SubjectRef::new("user", format!("u{}", i % 2000), None),
                    &opts,
                )
                .unwrap()
            })
        });
        g.bench_function(BenchmarkId::new("who_everyone", name), |b| {
            b.iter(|| view.who(&everyone, "member", &SubjectFilter::parse("user"), &opts).unwrap())
        });
        g.bench_function(BenchmarkId::new("what_admin_messages", name), |b| {
            b.iter(|| view.what(&admin, "view", "message", &Page::default(), &opts).unwrap())
        });
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(1));
    targets = bench_check, bench_bulk, bench_lookups, bench_writes, bench_build, bench_reference
}
criterion_main!(benches);
