//! Prometheus metrics, in the text exposition format: requests and errors by method and code,
//! latency histograms per method, and the state of the data (revision, relationships, index
//! memory).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 14] =
    [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// One method's counters: latency buckets and requests by status code.
struct MethodStats {
    counts: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    /// Microseconds.
    sum: AtomicU64,
    /// By `tonic::Code` (0..=16).
    codes: [AtomicU64; 17],
}

impl Default for MethodStats {
    fn default() -> Self {
        MethodStats {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            codes: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl MethodStats {
    fn observe(&self, code: tonic::Code, took: Duration) {
        let secs = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            self.counts[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        if let Some(c) = self.codes.get(code as usize) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Request metrics: a method's counters are atomics, found under a read lock (the write lock
/// is taken once per method name).
#[derive(Default)]
pub struct Metrics {
    methods: RwLock<BTreeMap<&'static str, Arc<MethodStats>>>,
    pub shed: AtomicU64,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, method: &'static str, code: tonic::Code, took: Duration) {
        {
            // The common case: the method is known; its counters are updated under the read lock.
            let methods = self.methods.read().unwrap_or_else(|p| p.into_inner());
            if let Some(h) = methods.get(method) {
                h.observe(code, took);
                return;
            }
        }
        let h = self.methods.write().unwrap_or_else(|p| p.into_inner()).entry(method).or_default().clone();
        h.observe(code, took);
    }

    /// The exposition text; `gauges` are (name, help, value) of the data's state.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let methods: Vec<(&'static str, Arc<MethodStats>)> = self
            .methods
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(m, s)| (*m, s.clone()))
            .collect();
        let mut out = String::new();
        out.push_str("# HELP purview_requests_total Requests handled, by method and status code.\n");
        out.push_str("# TYPE purview_requests_total counter\n");
        for (method, h) in &methods {
            for (i, n) in h.codes.iter().enumerate() {
                let n = n.load(Ordering::Relaxed);
                if n > 0 {
                    let code = super::code_name(tonic::Code::from(i as i32));
                    let _ =
                        writeln!(out, "purview_requests_total{{method=\"{method}\",code=\"{code}\"}} {n}");
                }
            }
        }
        out.push_str("# HELP purview_request_duration_seconds Request latency, by method.\n");
        out.push_str("# TYPE purview_request_duration_seconds histogram\n");
        for (method, h) in &methods {
            // Buckets are cumulative.
            let mut cumulative = 0;
            for (i, b) in BUCKETS.iter().enumerate() {
                cumulative += h.counts[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "purview_request_duration_seconds_bucket{{method=\"{method}\",le=\"{b}\"}} {cumulative}"
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
