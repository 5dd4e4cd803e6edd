//! The scale run: the eComms dataset (`datasets.rs`) at 1M, 10M and 100M relationships —
//! build time, the index's memory, open time of a store holding it, and check / who / what
//! latencies — as a table (stderr, and `target/bench-scale.json`) and a plot
//! (`target/scale.svg`; the README shows a copy, `benches/scale.svg`).
//!
//! Run: `cargo bench --bench scale` (all three steps: ~10 GB of memory and several GB of disk at
//! the largest; minutes). `PURVIEW_SCALE_STEPS=0.1,1` for fewer steps; `PURVIEW_SCALE_STORE=0`
//! skips the store (import and open).

// Set-up panics on failure: a panic ends the run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod datasets;

use datasets::{group_parent, Rng};
use purview::api::{relationship_of, SchemaFormat, View};
use purview::eval::EvalOptions;
use purview::storage::{self, StoreOptions};
use purview::store::{ObjectRef, SubjectRef};
use std::sync::Arc;
use std::time::{Duration, Instant};

struct Step {
    relationships: usize,
    build_s: f64,
    bytes_per_relationship: f64,
    open_s: Option<f64>,
    check_median_us: f64,
    check_p99_us: f64,
    who_ms: f64,
    who_n: u64,
    what_ms: f64,
    what_n: u64,
}

fn pct(mut v: Vec<Duration>, p: f64) -> f64 {
    v.sort();
    v[((v.len() - 1) as f64 * p) as usize].as_secs_f64()
}

fn step(scale: f64, with_store: bool) -> Step {
    let t = Instant::now();
    let (ds, shape) = datasets::ecomms(scale);
    let build_s = t.elapsed().as_secs_f64();
    // The index's own structures (lists, names, closures) as it counts them: resident memory
    // is not comparable across steps in one process (freed memory is reused).
    let bytes = ds.data.heap_bytes() as f64;
    let data = Arc::new(ds.data);
    // Distinct relationships (the generator may draw one twice).
    let relationships = data.len();
    let view = View::Index(data.clone());
    let mut opts = EvalOptions::default();
    // `what` lists a third of the messages: tens of millions at the largest step.
    opts.limits.max_results = usize::MAX;

    // Checks through the id API (names resolved beforehand), message#view for random pairs:
    // half a supervisor of an ancestor of a random group, half a random user.
    let perm = view.permission_id("message", "view").unwrap();
    let mut rng = Rng::new(42);
    let ids: Vec<_> = (0..20_000)
        .map(|i| {
            let m = rng.below(shape.messages);
            let u = if i % 2 == 0 {
                let mut g = rng.below(shape.groups);
                for _ in 0..rng.below(4) {
                    g = group_parent(&shape, g).unwrap_or(g);
                }
                g % shape.users
            } else {
                rng.below(shape.users)
            };
            (
                view.object_id(&ObjectRef::new("message", format!("m{m}"))).unwrap(),
                view.subject_id(&SubjectRef::new("user", format!("u{u}"), None)).unwrap(),
            )
        })
        .collect();
    let (ug, sup) = data.schema.relation("usergroup", "supervise").unwrap();
    let user = data.schema.type_id("user").unwrap();
    data.precompute_sets(ug, sup, user, &opts);
    let mut times = Vec::with_capacity(ids.len());
    for (o, s) in &ids {
        let t = Instant::now();
        view.check_ids(o, perm, s, &opts).unwrap();
        times.push(t.elapsed());
    }
    let (check_median_us, check_p99_us) = (pct(times.clone(), 0.5) * 1e6, pct(times, 0.99) * 1e6);
    // who: every member of `everyone` (half the users); what: every message user u0 may view
    // (an admin of one of the accounts: a third of the messages).
    let everyone = view.object_id(&ObjectRef::new("usergroup", format!("g{}", shape.groups))).unwrap();
    let member = view.permission_id("usergroup", "member").unwrap();
    let users = view.subject_type(&purview::api::SubjectFilter::parse("user")).unwrap();
    let mut who = Vec::new();
    let mut who_n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        who_n = view.who_ids(&everyone, member, users, &opts).unwrap().allowed.len();
        who.push(t.elapsed());
    }
    let u0 = view.subject_id(&SubjectRef::new("user", "u0", None)).unwrap();
    let mut what = Vec::new();
    let mut what_n = 0;
    for _ in 0..5 {
        let t = Instant::now();
        what_n = view.what_ids(&u0, perm, &opts).unwrap().allowed.len();
        what.push(t.elapsed());
    }
    let open_s = with_store.then(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        {
            let store = storage::init(
                &path,
                SchemaFormat::Purview,
                "ecomms.pv",
                datasets::ECOMMS_SCHEMA,
                StoreOptions::default(),
            )
            .unwrap();
            let mut loader = store.purview().bulk_loader().unwrap();
            data.for_each_tuple(|o, r, s, a| loader.push(&relationship_of(&*data, o, r, s, a)).unwrap());
            loader.finish::<std::convert::Infallible>().unwrap();
            store.checkpoint().unwrap();
        }
        let t = Instant::now();
        let store = storage::open(&path, StoreOptions::default()).unwrap();
        let took = t.elapsed().as_secs_f64();
        let View::Index(opened) = store.purview().snapshot() else { panic!("the index engine") };
        assert_eq!(opened.len(), relationships);
        took
    });
    Step {
        relationships,
        build_s,
        bytes_per_relationship: bytes / relationships as f64,
        open_s,
        check_median_us,
        check_p99_us,
        who_ms: pct(who, 0.5) * 1e3,
        who_n,
        what_ms: pct(what, 0.5) * 1e3,
        what_n,
    }
}

/// A log-log plot of each measure against the number of relationships, normalised to its value
/// at the first step (1 = as at the first step; a line with slope 1 grows linearly).
fn svg(steps: &[Step]) -> String {
    let (w, h, m) = (640.0, 400.0, 60.0);
    let series: Vec<(&str, &str, Vec<f64>)> = vec![
        ("build time", "#1f77b4", steps.iter().map(|s| s.build_s).collect()),
        (
            "index memory",
            "#ff7f0e",
            steps.iter().map(|s| s.bytes_per_relationship * s.relationships as f64).collect(),
        ),
        ("store open", "#2ca02c", steps.iter().map(|s| s.open_s.unwrap_or(f64::NAN)).collect()),
        ("check median", "#d62728", steps.iter().map(|s| s.check_median_us).collect()),
        ("who (half the users)", "#9467bd", steps.iter().map(|s| s.who_ms).collect()),
        ("what (a third of the messages)", "#8c564b", steps.iter().map(|s| s.what_ms).collect()),
    ];
    let xs: Vec<f64> = steps.iter().map(|s| (s.relationships as f64).log10()).collect();
    let (x0, x1) = (xs[0], xs[xs.len() - 1].max(xs[0] + 1.0));
    let ratio = |v: &[f64], i: usize| (v[i] / v[0]).log10();
    let top = series
        .iter()
        .flat_map(|(_, _, v)| (0..v.len()).map(move |i| ratio(v, i)))
        .filter(|r| r.is_finite())
        .fold(1.0f64, f64::max)
        .ceil();
    let bottom = series
        .iter()
        .flat_map(|(_, _, v)| (0..v.len()).map(move |i| ratio(v, i)))
        .filter(|r| r.is_finite())
        .fold(0.0f64, f64::min)
        .floor();
    let px = |x: f64| m + (x - x0) / (x1 - x0) * (w - 2.0 * m);
    let py = |y: f64| h - m - (y - bottom) / (top - bottom) * (h - 2.0 * m);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n\
         <rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n\
         <text x=\"{m}\" y=\"20\" font-size=\"14\">Growth with the number of relationships (log-log, each measure / its value at {:.1}M)</text>\n",
        steps[0].relationships as f64 / 1e6
    );
    for i in (bottom as i32)..=(top as i32) {
        let y = py(f64::from(i));
        out.push_str(&format!(
            "<line x1=\"{m}\" y1=\"{y:.1}\" x2=\"{:.1}\" y2=\"{y:.1}\" stroke=\"#ddd\"/><text x=\"8\" y=\"{:.1}\">×{}</text>\n",
            w - m,
            y + 4.0,
            10f64.powi(i)
        ));
    }
    for (s, x) in steps.iter().zip(&xs) {
        out.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:.0}M</text>\n",
            px(*x),
            h - m + 18.0,
            s.relationships as f64 / 1e6
        ));
    }
    // The linear-growth reference line.
    out.push_str(&format!(
        "<line x1=\"{:.1}\" y1=\"{:.1}\" x2=\"{:.1}\" y2=\"{:.1}\" stroke=\"#999\" stroke-dasharray=\"4 4\"/>\n",
        px(x0),
        py(0.0),
        px(x1),
        py(x1 - x0)
    ));
    for (k, (name, color, v)) in series.iter().enumerate() {
        let pts: Vec<String> = (0..v.len())
            .filter(|&i| ratio(v, i).is_finite())
            .map(|i| format!("{:.1},{:.1}", px(xs[i]), py(ratio(v, i))))
            .collect();
        out.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{}\"/>\n",
            pts.join(" ")
        ));
        let ly = m + 16.0 * k as f64;
        out.push_str(&format!(
            "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"3\" fill=\"{color}\"/><text x=\"{:.1}\" y=\"{:.1}\">{name}</text>\n",
            m + 10.0,
            ly,
            m + 28.0,
            ly + 5.0
        ));
    }
    out.push_str(&format!(
        "<text x=\"{:.1}\" y=\"{:.1}\" fill=\"#999\">dashed: linear growth</text>\n</svg>\n",
        m + 10.0,
        m + 16.0 * series.len() as f64 + 5.0
    ));
    out
}

fn main() {
    let steps_env = std::env::var("PURVIEW_SCALE_STEPS").unwrap_or_else(|_| "0.1,1,10".into());
    let with_store = std::env::var("PURVIEW_SCALE_STORE").map_or(true, |v| v != "0");
    let mut steps = Vec::new();
    for s in steps_env.split(',').filter_map(|s| s.trim().parse::<f64>().ok()) {
        let st = step(s, with_store);
        eprintln!(
            "[scale] {:.1}M relationships: build {:.1} s, {:.1} bytes/relationship, open {}, check median {:.2} µs p99 {:.2} µs, who {:.2} ms ({} users), what {:.2} ms ({} messages)",
            st.relationships as f64 / 1e6,
            st.build_s,
            st.bytes_per_relationship,
            st.open_s.map_or("-".to_string(), |o| format!("{o:.2} s")),
            st.check_median_us,
            st.check_p99_us,
            st.who_ms,
            st.who_n,
            st.what_ms,
            st.what_n
        );
        steps.push(st);
    }
    eprintln!("\n| relationships | build | memory | store open | check median / p99 | who | what |\n|---|---|---|---|---|---|---|");
    for s in &steps {
        eprintln!(
            "| {:.1}M | {:.1} s | {:.1} bytes/rel | {} | {:.2} / {:.2} µs | {:.2} ms ({}k users) | {:.2} ms ({}k messages) |",
            s.relationships as f64 / 1e6,
            s.build_s,
            s.bytes_per_relationship,
            s.open_s.map_or("-".to_string(), |o| format!("{o:.2} s")),
            s.check_median_us,
            s.check_p99_us,
            s.who_ms,
            s.who_n / 1000,
            s.what_ms,
            s.what_n / 1000
        );
    }
    if steps.len() >= 2 {
        let _ = std::fs::write("target/scale.svg", svg(&steps));
        eprintln!("[scale] wrote target/scale.svg");
    }
    let json: Vec<serde_json::Value> = steps
        .iter()
        .map(|s| {
            serde_json::json!({
                "relationships": s.relationships, "build_s": s.build_s, "bytes_per_relationship": s.bytes_per_relationship,
                "open_s": s.open_s, "check_median_us": s.check_median_us, "check_p99_us": s.check_p99_us,
                "who_ms": s.who_ms, "who_n": s.who_n, "what_ms": s.what_ms, "what_n": s.what_n,
            })
        })
        .collect();
    let _ = std::fs::write("target/bench-scale.json", serde_json::to_string_pretty(&json).unwrap());
}
