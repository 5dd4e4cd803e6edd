//! The nested-group document-sharing workload of the performance issue, as a load generator
//! (one run, a table at the end): users in 1–3 leaf groups of an 8-level group forest;
//! documents shared with 1–3 groups of any level and 0–2 users (~3.2M relationships at scale 1).
//!
//! Run: `cargo bench --bench sharing` (`PURVIEW_BENCH_SCALE=0.1` for a quick run). Measures
//! loading through the public bulk loader against the index's internal builder (ids given,
//! nothing to validate or intern) — the relationships grouped by kind, then ordered by resource
//! (shapes alternating line by line) — resident memory after each, and check (ids and names),
//! `who` and `what` on the loaded data.

// Set-up panics on failure: a panic ends the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod datasets;

use datasets::{resident_bytes, Rng};
use purview::api::{compile_schema, View};
use purview::eval::EvalOptions;
use purview::index::IndexData;
use purview::store::{Obj, ObjectRef, Relationship, Subject, SubjectRef};
use purview::Purview;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SCHEMA: &str = "\
type user {}

/// Groups nest: the members of a subgroup are members of its parent.
type group {
  relation member: user | group#member
}

type document {
  relation viewer: user | group#member
  permission view = viewer
}
";

const LEVELS: u64 = 8;

struct Shape {
    users: u64,
    groups: u64,
    leaves_from: u64,
    documents: u64,
}

/// The parent of group `g` in a forest where level `l` holds `4^l * roots` groups.
fn parent(g: u64, roots: u64) -> Option<u64> {
    (g >= roots).then(|| (g - roots) / 4)
}

/// (resource type, id, relation, subject type, id, subject relation) by number.
fn relationships(scale: f64) -> (Shape, Vec<(u8, u64, u8, u64)>) {
    let roots = ((4.0 * scale).ceil() as u64).max(1);
    let groups: u64 =
        (0..LEVELS).map(|l| roots * 4u64.pow(l as u32)).sum::<u64>().min((90_000.0 * scale) as u64 + roots);
    let leaves_from = groups / 4 * 3;
    let shape = Shape {
        users: ((300_000.0 * scale) as u64).max(10),
        groups,
        leaves_from,
        documents: ((900_000.0 * scale) as u64).max(10),
    };
    let mut rng = Rng::new(11);
    // kinds: 0 = group#member@group#member (child into parent), 1 = group#member@user,
    // 2 = document#viewer@group#member, 3 = document#viewer@user
    let mut out = Vec::new();
    for g in 0..shape.groups {
        if let Some(p) = parent(g, roots) {
            out.push((0, p, 0, g));
        }
    }
    for u in 0..shape.users {
        for _ in 0..1 + rng.below(3) {
            let leaf = shape.leaves_from + rng.below(shape.groups - shape.leaves_from);
            out.push((1, leaf, 1, u));
        }
    }
    for d in 0..shape.documents {
        for _ in 0..1 + rng.below(3) {
            out.push((2, d, 0, rng.below(shape.groups)));
        }
        for _ in 0..rng.below(3) {
            out.push((3, d, 1, rng.below(shape.users)));
        }
    }
    out.sort_unstable();
    out.dedup();
    (shape, out)
}

fn text(&(kind, a, _, b): &(u8, u64, u8, u64)) -> Relationship {
    let s = match kind {
        0 => format!("group:g{a}#member@group:g{b}#member"),
        1 => format!("group:g{a}#member@user:u{b}"),
        2 => format!("document:d{a}#viewer@group:g{b}#member"),
        _ => format!("document:d{a}#viewer@user:u{b}"),
    };
    Relationship::parse(&s).unwrap()
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], v[v.len() * 99 / 100])
}

fn main() {
    let scale: f64 = std::env::var("PURVIEW_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let (shape, rels) = relationships(scale);
    // Resident memory before anything the public load keeps or leaves behind exists.
    let baseline = resident_bytes();
    eprintln!(
        "[sharing] scale {scale}: {} relationships ({} users, {} groups in {LEVELS} levels, {} documents)",
        rels.len(),
        shape.users,
        shape.groups,
        shape.documents
    );
    let mut rows: Vec<(String, String)> = Vec::new();

    // The public bulk loader: validated like a write, names interned. Memory: streamed, each
    // relationship made (text, then parsed, as an import reads it) just before it is pushed.
    let pv = Purview::from_schema_text("sharing.pv", SCHEMA).unwrap();
    pv.bulk_load(rels.iter().map(|r| Ok::<_, std::convert::Infallible>(text(r)))).unwrap();
    let public_bytes = resident_bytes().saturating_sub(baseline);
    // Time: the relationships made beforehand and lent to the loader (as `cargo bench --bench
    // load` does), so that only the loader is timed, not the making or freeing of its input.
    let timed_load = |rels: &[(u8, u64, u8, u64)]| {
        let made: Vec<Relationship> = rels.iter().map(text).collect();
        let timed = Purview::from_schema_text("sharing.pv", SCHEMA).unwrap();
        let t = Instant::now();
        timed.bulk_load(made.iter().map(Ok::<_, std::convert::Infallible>)).unwrap();
        t.elapsed()
    };
    let public_time = timed_load(&rels);
    // The same relationships ordered by resource, as an export sorted by object gives them: a
    // document's group and user viewers together, so shapes alternate line by line.
    let mut by_resource = rels.clone();
    by_resource.sort_unstable_by_key(|&(kind, a, _, b)| (kind / 2, a, kind, b));
    let interleaved_time = timed_load(&by_resource);
    drop(by_resource);
    // The index's internal builder: objects interned in order, ids given.
    let schema = Arc::new(compile_schema("sharing.pv", SCHEMA).unwrap());
    let before = resident_bytes();
    let t = Instant::now();
    let internal = {
        let mut data = IndexData::new(schema.clone());
        use purview::store::TupleStore;
        let (user, group, doc) = (
            schema.type_id("user").unwrap(),
            schema.type_id("group").unwrap(),
            schema.type_id("document").unwrap(),
        );
        let member = schema.relation("group", "member").unwrap().1;
        let viewer = schema.relation("document", "viewer").unwrap().1;
        for u in 0..shape.users {
            data.intern(user, &format!("u{u}"));
        }
        for g in 0..shape.groups {
            data.intern(group, &format!("g{g}"));
        }
        for d in 0..shape.documents {
            data.intern(doc, &format!("d{d}"));
        }
        let tuples: Vec<(Obj, u32, Subject)> = rels
            .iter()
            .map(|&(kind, a, _, b)| match kind {
                0 => (
                    Obj { ty: group, id: a as u32 },
                    member,
                    Subject { ty: group, id: b as u32, rel: Some(member) },
                ),
                1 => (Obj { ty: group, id: a as u32 }, member, Subject { ty: user, id: b as u32, rel: None }),
                2 => (
                    Obj { ty: doc, id: a as u32 },
                    viewer,
                    Subject { ty: group, id: b as u32, rel: Some(member) },
                ),
                _ => (Obj { ty: doc, id: a as u32 }, viewer, Subject { ty: user, id: b as u32, rel: None }),
            })
            .collect();
        data.bulk_load_plain(&tuples);
        data
    };
    let internal_time = t.elapsed();
    let _ = before;
    // The index's own structures (adjacency lists and object names), as it counts them.
    let structures = internal.heap_bytes() + internal.names_heap_bytes();
    drop(internal);

    let n = rels.len() as f64;
    rows.push((
        "load: public bulk loader (relationships with names) / internal builder (ids given) (target <= 1.2x)"
            .into(),
        format!(
            "{:.2} s / {:.2} s = {:.2}x",
            public_time.as_secs_f64(),
            internal_time.as_secs_f64(),
            public_time.as_secs_f64() / internal_time.as_secs_f64()
        ),
    ));
    rows.push((
        "load: public bulk loader, relationships ordered by resource (shapes alternating) / internal builder"
            .into(),
        format!(
            "{:.2} s / {:.2} s = {:.2}x",
            interleaved_time.as_secs_f64(),
            internal_time.as_secs_f64(),
            interleaved_time.as_secs_f64() / internal_time.as_secs_f64()
        ),
    ));
    rows.push((
        "resident memory after the public load / the index's own structures (target <= 1.2x)".into(),
        format!(
            "{:.1} / {:.1} bytes per relationship = {:.2}x",
            public_bytes as f64 / n,
            structures as f64 / n,
            public_bytes as f64 / structures.max(1) as f64
        ),
    ));

    // Questions: random (document, user) pairs.
    let view: View = pv.snapshot();
    let opts = EvalOptions::default();
    let mut rng = Rng::new(5);
    let named: Vec<(ObjectRef, SubjectRef)> = (0..20_000)
        .map(|_| {
            (
                ObjectRef::new("document", format!("d{}", rng.below(shape.documents))),
                SubjectRef::new("user", format!("u{}", rng.below(shape.users)), None),
            )
        })
        .collect();
    let perm = view.permission_id("document", "view").unwrap();
    let ids: Vec<_> =
        named.iter().map(|(o, s)| (view.object_id(o).unwrap(), view.subject_id(s).unwrap())).collect();
    let mut by_ids = Vec::new();
    let mut allowed = 0;
    for (o, s) in &ids {
        let t = Instant::now();
        let d = view.check_ids(o, perm, s, &opts).unwrap();
        by_ids.push(t.elapsed());
        allowed += usize::from(d == purview::Decision::Allowed);
    }
    let mut by_names = Vec::new();
    for (o, s) in &named {
        let t = Instant::now();
        view.check(o, "view", s, &opts).unwrap();
        by_names.push(t.elapsed());
    }
    let ((i50, i99), (n50, n99)) = (median(by_ids), median(by_names));
    rows.push((
        "check document#view (ids / names)".into(),
        format!("median {i50:.2?} / {n50:.2?}, p99 {i99:.2?} / {n99:.2?} ({allowed} of 20000 allowed)"),
    ));
    let users = view.subject_type(&purview::api::SubjectFilter::parse("user")).unwrap();
    let mut who = Vec::new();
    let mut sizes = 0u64;
    for (o, _) in ids.iter().take(200) {
        let t = Instant::now();
        sizes += view.who_ids(o, perm, users, &opts).unwrap().allowed.len();
        who.push(t.elapsed());
    }
    let (w50, w99) = median(who);
    rows.push((
        "who document#view (ids)".into(),
        format!("median {w50:.2?}, p99 {w99:.2?} ({} users on average)", sizes / 200),
    ));
    let mut what = Vec::new();
    let mut found = 0u64;
    for (_, s) in ids.iter().take(200) {
        let t = Instant::now();
        found += view.what_ids(s, perm, &opts).unwrap().allowed.len();
        what.push(t.elapsed());
    }
    let (a50, a99) = median(what);
    rows.push((
        "what document#view (ids)".into(),
        format!("median {a50:.2?}, p99 {a99:.2?} ({} documents on average)", found / 200),
    ));

    eprintln!("\n| measure | figure |\n|---|---|");
    for (k, v) in &rows {
        eprintln!("| {k} | {v} |");
    }
}
