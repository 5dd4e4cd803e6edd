//! Prometheus metrics, in the text exposition format: requests and errors by method and code,
//! latency histograms per method, and the state of the data (revision, relationships, index
//! memory).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Microseconds.
    sum: AtomicU64,
}

#[derive(Default)]
pub struct Metrics {
    latency: Mutex<BTreeMap<&'static str, std::sync::Arc<Histogram>>>,
    /// (method, code) → count.
    requests: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    pub shed: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, method: &'static str, code: &'static str, took: Duration) {
        let h = lock(&self.latency).entry(method).or_default().clone();
        let secs = took.as_secs_f64();
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        h.count.fetch_add(1, Ordering::Relaxed);
        h.sum.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        *lock(&self.requests).entry((method, code)).or_default() += 1;
    }

    /// The exposition text; `gauges` are (name, help, value) of the data's state.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP purview_requests_total Requests handled, by method and status code.\n");
        out.push_str("# TYPE purview_requests_total counter\n");
        for ((method, code), n) in lock(&self.requests).iter() {
            let _ = writeln!(out, "purview_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}");
        }
        out.push_str("# HELP purview_request_duration_seconds Request latency, by method.\n");
        out.push_str("# TYPE purview_request_duration_seconds histogram\n");
        for (method, h) in lock(&self.latency).iter() {
            for (i, b) in BUCKETS.iter().enumerate() {
                let n = h.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "purview_request_duration_seconds_bucket{{method=\"{method}\",le=\"{b}\"}} {n}"
                );
            }
            let count = h.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "purview_request_duration_seconds_bucket{{method=\"{method}\",le=\"+Inf\"}} {count}"
            );
            let sum = h.sum.load(Ordering::Relaxed) as f64 / 1e6;
            let _ = writeln!(out, "purview_request_duration_seconds_sum{{method=\"{method}\"}} {sum}");
            let _ = writeln!(out, "purview_request_duration_seconds_count{{method=\"{method}\"}} {count}");
        }
        out.push_str(
            "# HELP purview_requests_shed_total Requests refused because too many were in flight.\n",
        );
        out.push_str("# TYPE purview_requests_shed_total counter\n");
        let _ = writeln!(out, "purview_requests_shed_total {}", self.shed.load(Ordering::Relaxed));
        for (name, help, value) in gauges {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}");
        }
        out
    }
}
