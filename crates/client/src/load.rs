//! The load generator: many concurrent `Sign`/`SignBatch` requests against one key, with
//! throughput, latency percentiles, errors by status code and the server's CPU per signature;
//! or the same load of the standard health check, for what one gRPC call costs the server
//! without any signing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use api_proto::signer_service_client::SignerServiceClient;
use api_proto::{Scheme, SignBatchRequest, SignRequest};
use rand_core::{OsRng, RngCore};
use serde::Serialize;
use tokio::sync::Mutex;
use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_client::HealthClient;

use crate::keys::{self, KeySetup};
use crate::metrics::{fetch_metrics, sum_samples};
use crate::{Api, ClientError, Tls, channel_with, code_name};

/// After an UNAVAILABLE answer a load task waits this long before its next request, doubling
/// on each further one up to the second value.
const UNAVAILABLE_BACKOFF: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(1));

/// The call a load task repeats.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LoadRpc {
    /// `Sign` (or `SignBatch` with a batch size above 1).
    #[default]
    Sign,
    /// `grpc.health.v1.Health/Check`: no key, no signing, no storage; what one gRPC call
    /// costs the server.
    HealthCheck,
}

/// Options of `tessera load`.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Server URL.
    pub server: String,
    /// The call to repeat.
    pub rpc: LoadRpc,
    /// Scheme of the key to create.
    pub scheme: Scheme,
    /// Use this key instead of creating a 2-of-3 key.
    pub key_id: Option<String>,
    /// Sign with this many keys of `scheme`, each request's key drawn at random (reusing the
    /// server's keys from earlier runs, creating the rest); ignored with `key_id`.
    pub keys: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    /// Run for this long…
    pub duration: Option<Duration>,
    /// …or until this many signatures are done.
    pub count: Option<u64>,
    /// Messages per request (1 = `Sign`, more = `SignBatch`).
    pub batch_size: usize,
    /// Prometheus endpoint of the server, for CPU-µs per signature.
    pub metrics_url: Option<String>,
    /// TLS settings for an `https://` server.
    pub tls: Tls,
}

/// The summary `tessera load` prints.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// Key used (the first, when there are many).
    pub key_id: String,
    /// Keys signed with.
    pub keys: usize,
    /// How the keys were set up (reused, created, seconds).
    pub keys_reused: usize,
    /// Keys created for this run.
    pub keys_created: usize,
    /// Seconds spent listing and creating keys before the load.
    pub key_setup_s: f64,
    /// The server's resident memory at the end, MiB (`process_resident_memory_bytes`).
    pub server_resident_mib: Option<f64>,
    /// Scheme.
    pub scheme: String,
    /// The call repeated: `sign` or `health`.
    pub rpc: &'static str,
    /// Requests in flight.
    pub concurrency: usize,
    /// Messages per request.
    pub batch_size: usize,
    /// Signatures returned.
    pub signatures: u64,
    /// Requests sent.
    pub requests: u64,
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Signatures per second.
    pub throughput_sps: f64,
    /// Request latency percentiles, milliseconds.
    pub latency_ms: BTreeMap<String, f64>,
    /// Failed requests by gRPC status code.
    pub errors: BTreeMap<String, u64>,
    /// Server worker CPU time per signature (µs): the signing work, from the metrics endpoint.
    pub server_cpu_us_per_signature: Option<f64>,
    /// Server process CPU time per signature (µs): everything the server process spent
    /// (`process_cpu_seconds_total`), including the gRPC stack.
    pub process_cpu_us_per_signature: Option<f64>,
    /// Server process CPU time per completed request (µs).
    pub process_cpu_us_per_request: Option<f64>,
}

impl LoadReport {
    /// Human-readable form.
    pub fn human(&self) -> String {
        if self.rpc == "health" {
            return self.human_health();
        }
        let mut s = format!(
            "tessera load: {} signatures ({} requests, {} per request, concurrency {}) with {} {} in {:.2} s\n\
             throughput: {:.1} signatures/s\n\
             latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms\n",
            self.signatures,
            self.requests,
            self.batch_size,
            self.concurrency,
            self.scheme,
            if self.keys == 1 {
                format!("key {}", self.key_id)
            } else {
                format!("keys drawn at random from {}", self.keys)
            },
            self.elapsed_s,
            self.throughput_sps,
            self.latency_ms.get("p50").copied().unwrap_or(0.0),
            self.latency_ms.get("p95").copied().unwrap_or(0.0),
            self.latency_ms.get("p99").copied().unwrap_or(0.0),
        );
        s.push_str(&errors_line(&self.errors));
        match (
            self.server_cpu_us_per_signature,
            self.process_cpu_us_per_signature,
        ) {
            (Some(sign), Some(process)) => s.push_str(&format!(
                "server CPU per signature: {process:.1} µs process, {sign:.1} µs signing work\n"
            )),
            (Some(sign), None) => s.push_str(&format!(
                "server CPU per signature: {sign:.1} µs signing work\n"
            )),
            _ => s.push_str("server CPU: n/a (pass --metrics-url)\n"),
        }
        if self.keys_created > 0 {
            s.push_str(&format!(
                "keys: {} created, {} reused, set up in {:.1} s\n",
                self.keys_created, self.keys_reused, self.key_setup_s
            ));
        }
        if let Some(mib) = self.server_resident_mib {
            s.push_str(&format!("server resident memory: {mib:.1} MiB\n"));
        }
        s
    }

    fn human_health(&self) -> String {
        let done = self.requests - self.errors.values().sum::<u64>();
        let mut s = format!(
            "tessera load: {done} health checks (concurrency {}) in {:.2} s\n\
             throughput: {:.1} requests/s\n\
             latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms\n",
            self.concurrency,
            self.elapsed_s,
            done as f64 / self.elapsed_s.max(1e-9),
            self.latency_ms.get("p50").copied().unwrap_or(0.0),
            self.latency_ms.get("p95").copied().unwrap_or(0.0),
            self.latency_ms.get("p99").copied().unwrap_or(0.0),
        );
        s.push_str(&errors_line(&self.errors));
        s.push_str(&match self.process_cpu_us_per_request {
            Some(p) => format!("server CPU per request: {p:.1} µs process\n"),
            None => "server CPU: n/a (pass --metrics-url)\n".to_owned(),
        });
        s
    }
}

fn errors_line(errors: &BTreeMap<String, u64>) -> String {
    if errors.is_empty() {
        return "errors: none\n".to_owned();
    }
    let e: Vec<String> = errors.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("errors: {}\n", e.join(", "))
}

/// (signing CPU, process CPU, signatures) read from one scrape.
fn cpu_and_signatures(text: &str) -> (f64, f64, f64) {
    (
        sum_samples(
            text,
            "tessera_request_cpu_seconds_sum",
            Some(("rpc", &["Sign", "SignBatch"])),
        ),
        sum_samples(text, "process_cpu_seconds_total", None),
        sum_samples(text, "tessera_signatures_total", None),
    )
}

/// One `Sign` (one message, batch size 1) or `SignBatch` request of `n` random messages;
/// answers the number of signatures returned.
async fn sign(c: &mut Api, key_id: &str, n: usize, batch: usize) -> Result<u64, tonic::Status> {
    let mut messages: Vec<Vec<u8>> = (0..n)
        .map(|_| {
            let mut m = vec![0u8; 32];
            OsRng.fill_bytes(&mut m);
            m
        })
        .collect();
    if n == 1 && batch == 1 {
        c.sign(SignRequest {
            key_id: key_id.to_owned(),
            message: messages.pop().unwrap_or_default(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .map(|_| 1)
    } else {
        c.sign_batch(SignBatchRequest {
            key_id: key_id.to_owned(),
            messages,
            taproot_merkle_root: None,
        })
        .await
        .map(|r| r.into_inner().signatures.len() as u64)
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `tessera load`: runs the load and returns the summary.
pub async fn load(opts: LoadOptions) -> Result<LoadReport, ClientError> {
    if opts.duration.is_none() && opts.count.is_none() {
        return Err(ClientError::Usage("give --duration or --count".into()));
    }
    // One connection for whichever call the run repeats.
    let (channel, bearer) = channel_with(&opts.server, &opts.tls).await?;
    let health = (opts.rpc == LoadRpc::HealthCheck)
        .then(|| HealthClient::with_interceptor(channel.clone(), bearer.clone()));
    let client = SignerServiceClient::with_interceptor(channel, bearer);
    let (key_ids, setup) = match (&opts.key_id, opts.rpc) {
        (_, LoadRpc::HealthCheck) => (Vec::new(), KeySetup::default()),
        (Some(k), LoadRpc::Sign) => (vec![k.clone()], KeySetup::default()),
        (None, LoadRpc::Sign) => keys::ensure(&client, opts.scheme, opts.keys.max(1)).await?,
    };
    let key_ids = Arc::new(key_ids);
    let before = match &opts.metrics_url {
        Some(u) => Some(cpu_and_signatures(&fetch_metrics(u).await?)),
        None => None,
    };
    let batch = opts.batch_size.max(1);
    let issued = Arc::new(AtomicU64::new(0));
    let done_sigs = Arc::new(AtomicU64::new(0));
    let done_requests = Arc::new(AtomicU64::new(0));
    let unit = match opts.rpc {
        LoadRpc::Sign => "signatures",
        LoadRpc::HealthCheck => "health checks",
    };
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let count = opts.count;
    let progress = {
        let done = match opts.rpc {
            LoadRpc::Sign => Arc::clone(&done_sigs),
            LoadRpc::HealthCheck => Arc::clone(&done_requests),
        };
        let errors = Arc::clone(&errors);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let now = done.load(Ordering::Relaxed);
                let errs: u64 = errors.lock().await.values().sum();
                eprintln!(
                    "tessera load: {:>6.1} s  {now} {unit}  {} /s  {errs} errors",
                    start.elapsed().as_secs_f64(),
                    now - last
                );
                last = now;
            }
        })
    };
    let mut tasks = Vec::new();
    for _ in 0..opts.concurrency.max(1) {
        let mut c = client.clone();
        let mut health = health.clone();
        let (issued, done_sigs) = (Arc::clone(&issued), Arc::clone(&done_sigs));
        let done_requests = Arc::clone(&done_requests);
        let (latencies, errors) = (Arc::clone(&latencies), Arc::clone(&errors));
        let key_ids = Arc::clone(&key_ids);
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            let mut backoff = Duration::ZERO;
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if !backoff.is_zero() {
                    // The server was unreachable: wait before trying again, so a load run
                    // against a server that is down (or has gone) does not spin.
                    let wait = match deadline {
                        Some(d) => backoff.min(d.saturating_duration_since(Instant::now())),
                        None => backoff,
                    };
                    tokio::time::sleep(wait).await;
                }
                let n = match count {
                    Some(total) => {
                        let first = issued.fetch_add(batch as u64, Ordering::Relaxed);
                        if first >= total {
                            break;
                        }
                        (total - first).min(batch as u64) as usize
                    }
                    None => batch,
                };
                let pick = usize::try_from(OsRng.next_u64()).unwrap_or(0) % key_ids.len().max(1);
                let t0 = Instant::now();
                let result = match &mut health {
                    Some(h) => h.check(HealthCheckRequest::default()).await.map(|_| 0),
                    None => sign(&mut c, &key_ids[pick], n, batch).await,
                };
                backoff = match &result {
                    Err(e) if e.code() == tonic::Code::Unavailable => {
                        (backoff * 2).clamp(UNAVAILABLE_BACKOFF.0, UNAVAILABLE_BACKOFF.1)
                    }
                    _ => Duration::ZERO,
                };
                match result {
                    Ok(k) => {
                        local.push(t0.elapsed().as_secs_f64() * 1000.0);
                        done_sigs.fetch_add(k, Ordering::Relaxed);
                        done_requests.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        *errors
                            .lock()
                            .await
                            .entry(code_name(e.code()).to_owned())
                            .or_default() += 1;
                    }
                }
            }
            latencies.lock().await.extend(local);
        }));
    }
    for t in tasks {
        t.await
            .map_err(|_| ClientError::Usage("a load task panicked".into()))?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    progress.abort();
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    let signatures = done_sigs.load(Ordering::Relaxed);
    let completed = done_requests.load(Ordering::Relaxed);
    let errors = errors.lock().await.clone();
    let mut process_cpu_us_per_request = None;
    let (server_cpu_us_per_signature, process_cpu_us_per_signature, server_resident_mib) =
        match (&opts.metrics_url, before) {
            (Some(u), Some((cpu0, proc0, sig0))) => {
                let text = fetch_metrics(u).await?;
                let (cpu1, proc1, sig1) = cpu_and_signatures(&text);
                let per = |a: f64, b: f64| (sig1 > sig0).then(|| (b - a) / (sig1 - sig0) * 1e6);
                process_cpu_us_per_request = (completed > 0 && proc1 > proc0)
                    .then(|| (proc1 - proc0) / completed as f64 * 1e6);
                let rss = sum_samples(&text, "process_resident_memory_bytes", None);
                (
                    per(cpu0, cpu1),
                    per(proc0, proc1).filter(|v| *v > 0.0),
                    (rss > 0.0).then(|| rss / (1024.0 * 1024.0)),
                )
            }
            _ => (None, None, None),
        };
    let latency_ms = [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)]
        .into_iter()
        .map(|(k, p)| (k.to_owned(), percentile(&lat, p)))
        .collect();
    Ok(LoadReport {
        key_id: key_ids.first().cloned().unwrap_or_default(),
        keys: key_ids.len(),
        keys_reused: setup.reused,
        keys_created: setup.created,
        key_setup_s: setup.seconds,
        server_resident_mib,
        scheme: match opts.rpc {
            LoadRpc::Sign => opts
                .scheme
                .as_str_name()
                .trim_start_matches("SCHEME_")
                .to_ascii_lowercase(),
            LoadRpc::HealthCheck => String::new(),
        },
        rpc: match opts.rpc {
            LoadRpc::Sign => "sign",
            LoadRpc::HealthCheck => "health",
        },
        concurrency: opts.concurrency,
        batch_size: batch,
        signatures,
        requests: lat.len() as u64 + errors.values().sum::<u64>(),
        elapsed_s: elapsed,
        throughput_sps: signatures as f64 / elapsed.max(1e-9),
        latency_ms,
        errors,
        server_cpu_us_per_signature,
        process_cpu_us_per_signature,
        process_cpu_us_per_request,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
