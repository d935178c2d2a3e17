//! Prometheus metrics: a small registry rendering the text exposition format, and the HTTP
//! endpoint serving it at `/metrics`. Labels carry only public, low-cardinality values (rpc,
//! scheme, backend, outcome, op, curve) — never key material, messages or key ids.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};

/// A histogram family with fixed label names.
#[derive(Debug)]
pub struct HistogramVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: Vec<f64>,
    series: Mutex<BTreeMap<Vec<String>, HistogramData>>,
}

#[derive(Clone, Debug, Default)]
struct HistogramData {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

/// Bucket bounds `start·factor^i` for `count` buckets.
pub fn exponential_buckets(start: f64, factor: f64, count: usize) -> Vec<f64> {
    (0..count)
        .scan(start, |b, _| {
            let v = *b;
            *b *= factor;
            Some(v)
        })
        .collect()
}

impl HistogramVec {
    fn new(
        name: &'static str,
        help: &'static str,
        labels: &'static [&'static str],
        buckets: Vec<f64>,
    ) -> Self {
        Self {
            name,
            help,
            labels,
            buckets,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Records `value` in the series with these label values (in label-name order).
    pub fn observe(&self, values: &[&str], value: f64) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let key: Vec<String> = values.iter().map(|v| (*v).to_owned()).collect();
        let data = series.entry(key).or_insert_with(|| HistogramData {
            counts: vec![0; self.buckets.len()],
            sum: 0.0,
            count: 0,
        });
        for (i, b) in self.buckets.iter().enumerate() {
            if value <= *b {
                data.counts[i] += 1;
            }
        }
        data.sum += value;
        data.count += 1;
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} histogram", self.name);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (values, data) in series.iter() {
            let labels = label_text(self.labels, values);
            let sep = if labels.is_empty() { "" } else { "," };
            for (b, c) in self.buckets.iter().zip(&data.counts) {
                let _ = writeln!(out, "{}_bucket{{{labels}{sep}le=\"{b}\"}} {c}", self.name);
            }
            let _ = writeln!(
                out,
                "{}_bucket{{{labels}{sep}le=\"+Inf\"}} {}",
                self.name, data.count
            );
            let _ = writeln!(out, "{}_sum{{{labels}}} {}", self.name, data.sum);
            let _ = writeln!(out, "{}_count{{{labels}}} {}", self.name, data.count);
        }
    }
}

/// A counter family with fixed label names.
#[derive(Debug)]
pub struct CounterVec {
    name: &'static str,
    help: &'static str,
    labels: &'static [&'static str],
    series: Mutex<BTreeMap<Vec<String>, f64>>,
}

impl CounterVec {
    fn new(name: &'static str, help: &'static str, labels: &'static [&'static str]) -> Self {
        Self {
            name,
            help,
            labels,
            series: Mutex::new(BTreeMap::new()),
        }
    }

    /// Adds `v` to the series with these label values.
    pub fn add(&self, values: &[&str], v: f64) {
        let mut series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        *series
            .entry(values.iter().map(|v| (*v).to_owned()).collect())
            .or_insert(0.0) += v;
    }

    fn render(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} counter", self.name);
        let series = self.series.lock().unwrap_or_else(|e| e.into_inner());
        for (values, v) in series.iter() {
            let _ = writeln!(
                out,
                "{}{{{}}} {v}",
                self.name,
                label_text(self.labels, values)
            );
        }
    }
}

fn label_text(names: &[&str], values: &[String]) -> String {
    names
        .iter()
        .zip(values)
        .map(|(n, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{n}=\"{v}\"")
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Every metric the service exports.
#[derive(Debug)]
pub struct Metrics {
    /// `tessera_request_duration_seconds{rpc,scheme,backend,outcome}`.
    pub request_duration: HistogramVec,
    /// `tessera_request_cpu_seconds{rpc,scheme}`: worker-thread CPU time of the batch work done
    /// for a request, apportioned evenly over the items of each batch it rode in.
    pub request_cpu: HistogramVec,
    /// `tessera_batch_size{op,scheme}`.
    pub batch_size: HistogramVec,
    /// `tessera_batch_queue_delay_seconds{op,scheme}`: time the oldest item of a batch waited.
    pub batch_queue_delay: HistogramVec,
    /// `tessera_accel_op_seconds{backend,curve,op}`.
    pub accel_op: HistogramVec,
    /// `tessera_signatures_total{scheme}`.
    pub signatures: CounterVec,
    /// `tessera_queue_depth`: items waiting in the batcher.
    pub queue_depth: AtomicI64,
    /// `tessera_presignatures_ready`: threshold-ECDSA presignatures pooled over all keys.
    pub presignatures_ready: AtomicI64,
    /// `tessera_presignatures_used_total{source}`: presignatures consumed, from the pool
    /// (`pool`) or made while the signature waited because the pool was empty (`on_demand`).
    pub presignatures_used: CounterVec,
    /// `tessera_accel_breaker_state{backend}`: each routed backend's circuit breaker
    /// (0 closed, 1 open, 2 half-open), and `tessera_accel_fallbacks_total`: calls re-run on
    /// the CPU backend after a backend error; read from the router when metrics are scraped.
    pub breaker: Mutex<Option<BreakerSource>>,
}

/// What the router reports at scrape time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterHealth {
    /// Each routed backend's name and breaker gauge value.
    pub breakers: Vec<(&'static str, i64)>,
    /// Calls re-run on the reference backend after an error.
    pub fallbacks: u64,
}

/// Reads the router's [`RouterHealth`] at scrape time.
pub struct BreakerSource(pub Box<dyn Fn() -> RouterHealth + Send + Sync>);

impl std::fmt::Debug for BreakerSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BreakerSource")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Empty metrics.
    pub fn new() -> Self {
        let latency = exponential_buckets(0.000_05, 2.0, 18);
        Self {
            request_duration: HistogramVec::new(
                "tessera_request_duration_seconds",
                "Wall-clock time of each gRPC request.",
                &["rpc", "scheme", "backend", "outcome"],
                latency.clone(),
            ),
            request_cpu: HistogramVec::new(
                "tessera_request_cpu_seconds",
                "Worker-thread CPU time of the batch work done for each request, apportioned over the batches it rode in.",
                &["rpc", "scheme"],
                exponential_buckets(0.000_01, 2.0, 20),
            ),
            batch_size: HistogramVec::new(
                "tessera_batch_size",
                "Items per batch run by the dynamic batcher.",
                &["op", "scheme"],
                exponential_buckets(1.0, 2.0, 13),
            ),
            batch_queue_delay: HistogramVec::new(
                "tessera_batch_queue_delay_seconds",
                "How long the oldest item of each batch waited in the queue.",
                &["op", "scheme"],
                exponential_buckets(0.000_005, 2.0, 18),
            ),
            accel_op: HistogramVec::new(
                "tessera_accel_op_seconds",
                "Time of each accelerator call.",
                &["backend", "curve", "op"],
                latency,
            ),
            signatures: CounterVec::new(
                "tessera_signatures_total",
                "Signatures issued.",
                &["scheme"],
            ),
            queue_depth: AtomicI64::new(0),
            presignatures_ready: AtomicI64::new(0),
            presignatures_used: CounterVec::new(
                "tessera_presignatures_used_total",
                "Threshold-ECDSA presignatures consumed, by source (pool or on_demand).",
                &["source"],
            ),
            breaker: Mutex::new(None),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.request_duration.render(&mut out);
        self.request_cpu.render(&mut out);
        self.batch_size.render(&mut out);
        self.batch_queue_delay.render(&mut out);
        self.accel_op.render(&mut out);
        self.signatures.render(&mut out);
        let _ = writeln!(
            out,
            "# HELP tessera_queue_depth Items waiting in the batcher queues.\n# TYPE tessera_queue_depth gauge\ntessera_queue_depth {}",
            self.queue_depth.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP tessera_presignatures_ready Threshold-ECDSA presignatures pooled over all keys.\n# TYPE tessera_presignatures_ready gauge\ntessera_presignatures_ready {}",
            self.presignatures_ready.load(Ordering::Relaxed)
        );
        self.presignatures_used.render(&mut out);
        let source = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(read) = source.as_ref() {
            let _ = writeln!(
                out,
                "# HELP tessera_accel_breaker_state Circuit breaker of each routed accelerator backend (0 closed, 1 open, 2 half-open).\n# TYPE tessera_accel_breaker_state gauge"
            );
            let health = (read.0)();
            for (backend, v) in health.breakers {
                let _ = writeln!(
                    out,
                    "tessera_accel_breaker_state{{backend=\"{backend}\"}} {v}"
                );
            }
            let _ = writeln!(
                out,
                "# HELP tessera_accel_fallbacks_total Accelerator calls re-run on the CPU backend after a backend error.\n# TYPE tessera_accel_fallbacks_total counter\ntessera_accel_fallbacks_total {}",
                health.fallbacks
            );
        }
        out
    }
}

/// Sums every sample of `name` (optionally only where label `label` has one of `values`) in a
/// Prometheus text exposition; used by `tessera load` to read the server's counters.
pub fn sum_samples(text: &str, name: &str, filter: Option<(&str, &[&str])>) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, labels) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            if let Some((label, values)) = filter {
                let ok = labels.split(',').any(|kv| {
                    kv.split_once('=').is_some_and(|(k, v)| {
                        k == label && values.iter().any(|want| v.trim_matches('"') == *want)
                    })
                });
                if !ok {
                    return None;
                }
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn renders_histograms_and_sums_back() {
        let m = Metrics::new();
        m.request_cpu.observe(&["Sign", "ed25519"], 0.001);
        m.request_cpu.observe(&["SignBatch", "ed25519"], 0.003);
        m.request_cpu.observe(&["Verify", "ed25519"], 0.5);
        m.signatures.add(&["ed25519"], 3.0);
        let text = m.render();
        assert!(text.contains("# TYPE tessera_request_cpu_seconds histogram"));
        assert!(text.contains(
            "tessera_request_cpu_seconds_bucket{rpc=\"Sign\",scheme=\"ed25519\",le=\"+Inf\"} 1"
        ));
        let cpu = sum_samples(
            &text,
            "tessera_request_cpu_seconds_sum",
            Some(("rpc", &["Sign", "SignBatch"])),
        );
        assert!((cpu - 0.004).abs() < 1e-12, "{cpu}");
        assert_eq!(sum_samples(&text, "tessera_signatures_total", None), 3.0);
        assert!(text.contains("tessera_queue_depth 0"));
        assert!(!text.contains("tessera_accel_breaker_state"));
    }

    #[test]
    fn router_health_is_read_at_scrape_time() {
        let m = Metrics::new();
        let open = std::sync::Arc::new(std::sync::atomic::AtomicI64::new(0));
        let seen = std::sync::Arc::clone(&open);
        *m.breaker.lock().unwrap() = Some(BreakerSource(Box::new(move || RouterHealth {
            breakers: vec![("cpu", 0), ("simd", seen.load(Ordering::Relaxed))],
            fallbacks: seen.load(Ordering::Relaxed) as u64 * 3,
        })));
        let text = m.render();
        assert!(
            text.contains("tessera_accel_breaker_state{backend=\"simd\"} 0"),
            "{text}"
        );
        assert_eq!(
            sum_samples(&text, "tessera_accel_fallbacks_total", None),
            0.0
        );
        open.store(1, Ordering::Relaxed);
        let text = m.render();
        assert!(
            text.contains("tessera_accel_breaker_state{backend=\"simd\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("tessera_accel_breaker_state{backend=\"cpu\"} 0"),
            "{text}"
        );
        assert_eq!(
            sum_samples(&text, "tessera_accel_fallbacks_total", None),
            3.0
        );
    }
}
