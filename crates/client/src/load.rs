//! CLI client subcommands (`keygen`, `sign`, `verify`, `load`) against a running server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tonic::transport::Channel;

use crate::Error;
use crate::metrics::sum_samples;
use crate::proto::signer_client::SignerClient;
use crate::proto::{CreateKeyRequest, Scheme, SignBatchRequest, SignRequest, VerifyRequest};

/// Connects to `server` (e.g. `http://127.0.0.1:50051`).
pub async fn connect(server: &str) -> Result<SignerClient<Channel>, Error> {
    SignerClient::connect(server.to_owned())
        .await
        .map_err(|e| Error::Client(format!("cannot connect to {server}: {e}")))
}

/// Parses a scheme name (`ed25519`, `bip340`, `ecdsa`).
pub fn parse_scheme(s: &str) -> Result<Scheme, Error> {
    match s.to_ascii_lowercase().as_str() {
        "ed25519" => Ok(Scheme::Ed25519),
        "bip340" | "taproot" => Ok(Scheme::Bip340),
        "ecdsa" | "ecdsa-secp256k1" => Ok(Scheme::EcdsaSecp256k1),
        _ => Err(Error::invalid(
            "--scheme",
            format!("`{s}` is not ed25519 or bip340"),
        )),
    }
}

/// The CLI name of a scheme.
pub fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Ed25519 => "ed25519",
        Scheme::Bip340 => "bip340",
        Scheme::EcdsaSecp256k1 => "ecdsa",
        Scheme::Unspecified => "unspecified",
    }
}

/// Decodes a hex flag.
pub fn hex_arg(flag: &'static str, v: &str) -> Result<Vec<u8>, Error> {
    hex::decode(v.trim()).map_err(|_| Error::invalid(flag, "must be hex"))
}

fn status(e: tonic::Status) -> Error {
    Error::Client(format!("{:?}: {}", e.code(), e.message()))
}

/// `tessera keygen`: prints the new key as JSON.
pub async fn keygen(
    server: &str,
    scheme: Scheme,
    threshold: u32,
    parties: u32,
    label: String,
) -> Result<String, Error> {
    let mut c = connect(server).await?;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: scheme as i32,
            threshold,
            parties,
            label,
        })
        .await
        .map_err(status)?
        .into_inner();
    Ok(serde_json::json!({
        "key_id": k.key_id,
        "scheme": scheme_name(scheme),
        "threshold": k.threshold,
        "parties": k.parties,
        "public_key": hex::encode(&k.public_key),
        "ethereum_address": (!k.ethereum_address.is_empty()).then_some(k.ethereum_address),
        "label": k.label,
    })
    .to_string())
}

/// `tessera sign`: prints signature and verifying key as JSON.
pub async fn sign(
    server: &str,
    key_id: String,
    message: Vec<u8>,
    taproot_merkle_root: Option<Vec<u8>>,
) -> Result<String, Error> {
    let mut c = connect(server).await?;
    let r = c
        .sign(SignRequest {
            key_id,
            message,
            idempotency_key: String::new(),
            taproot_merkle_root,
        })
        .await
        .map_err(status)?
        .into_inner();
    // ECDSA keys are 33-byte compressed points; only their signatures carry a recovery id.
    let recovery_id = (r.verifying_key.len() == 33).then_some(r.recovery_id);
    Ok(serde_json::json!({
        "signature": hex::encode(&r.signature),
        "verifying_key": hex::encode(&r.verifying_key),
        "recovery_id": recovery_id,
    })
    .to_string())
}

/// `tessera verify`: prints `{"valid": …}`.
pub async fn verify(
    server: &str,
    scheme: Scheme,
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
) -> Result<(String, bool), Error> {
    let mut c = connect(server).await?;
    let r = c
        .verify(VerifyRequest {
            scheme: scheme as i32,
            public_key,
            message,
            signature,
        })
        .await
        .map_err(status)?
        .into_inner();
    Ok((serde_json::json!({ "valid": r.valid }).to_string(), r.valid))
}

/// Options of `tessera load`.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    /// Server URL.
    pub server: String,
    /// Scheme of the key to create.
    pub scheme: Scheme,
    /// Use this key instead of creating a 2-of-3 key.
    pub key_id: Option<String>,
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
}

/// The summary `tessera load` prints.
#[derive(Clone, Debug, Serialize)]
pub struct LoadReport {
    /// Key used.
    pub key_id: String,
    /// Scheme.
    pub scheme: String,
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
    /// Server worker CPU time per signature (µs), from the metrics endpoint.
    pub server_cpu_us_per_signature: Option<f64>,
}

impl LoadReport {
    /// Human-readable form.
    pub fn human(&self) -> String {
        let mut s = format!(
            "tessera load: {} signatures ({} requests, {} per request, concurrency {}) with {} key {} in {:.2} s\n\
             throughput: {:.1} signatures/s\n\
             latency: p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms\n",
            self.signatures,
            self.requests,
            self.batch_size,
            self.concurrency,
            self.scheme,
            self.key_id,
            self.elapsed_s,
            self.throughput_sps,
            self.latency_ms.get("p50").copied().unwrap_or(0.0),
            self.latency_ms.get("p95").copied().unwrap_or(0.0),
            self.latency_ms.get("p99").copied().unwrap_or(0.0),
        );
        if self.errors.is_empty() {
            s.push_str("errors: none\n");
        } else {
            let e: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            s.push_str(&format!("errors: {}\n", e.join(", ")));
        }
        match self.server_cpu_us_per_signature {
            Some(v) => s.push_str(&format!("server CPU: {v:.1} µs per signature\n")),
            None => s.push_str("server CPU: n/a (pass --metrics-url)\n"),
        }
        s
    }
}

/// Reads a Prometheus text page over plain HTTP/1.0.
pub async fn fetch_metrics(url: &str) -> Result<String, Error> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| Error::invalid("--metrics-url", "must start with http://"))?;
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, format!("/{p}")),
        None => (rest, "/metrics".to_owned()),
    };
    let mut stream = tokio::net::TcpStream::connect(host)
        .await
        .map_err(|e| Error::Client(format!("metrics endpoint {url}: {e}")))?;
    let req = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    let io = |e: std::io::Error| Error::Client(format!("metrics endpoint {url}: {e}"));
    stream.write_all(req.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::new();
    stream.read_to_end(&mut buf).await.map_err(io)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    match text.split_once("\r\n\r\n") {
        Some((head, body)) if head.starts_with("HTTP/1.") && head.contains(" 200 ") => {
            Ok(body.to_owned())
        }
        _ => Err(Error::Client(format!(
            "metrics endpoint {url}: bad response"
        ))),
    }
}

fn cpu_and_signatures(text: &str) -> (f64, f64) {
    (
        sum_samples(
            text,
            "tessera_request_cpu_seconds_sum",
            Some(("rpc", &["Sign", "SignBatch"])),
        ),
        sum_samples(text, "tessera_signatures_total", None),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let idx = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `tessera load`: runs the load and returns the summary.
pub async fn load(opts: LoadOptions) -> Result<LoadReport, Error> {
    if opts.duration.is_none() && opts.count.is_none() {
        return Err(Error::invalid("--duration", "give --duration or --count"));
    }
    let client = connect(&opts.server).await?;
    let key_id = match &opts.key_id {
        Some(k) => k.clone(),
        None => {
            client
                .clone()
                .create_key(CreateKeyRequest {
                    scheme: opts.scheme as i32,
                    threshold: 2,
                    parties: 3,
                    label: "tessera load".into(),
                })
                .await
                .map_err(status)?
                .into_inner()
                .key_id
        }
    };
    let before = match &opts.metrics_url {
        Some(u) => Some(cpu_and_signatures(&fetch_metrics(u).await?)),
        None => None,
    };
    let batch = opts.batch_size.max(1);
    let issued = Arc::new(AtomicU64::new(0));
    let done_sigs = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(Mutex::new(BTreeMap::<String, u64>::new()));
    let start = Instant::now();
    let deadline = opts.duration.map(|d| start + d);
    let count = opts.count;
    let progress = {
        let done_sigs = Arc::clone(&done_sigs);
        let errors = Arc::clone(&errors);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let mut last = 0;
            loop {
                tick.tick().await;
                let now = done_sigs.load(Ordering::Relaxed);
                let errs: u64 = errors.lock().await.values().sum();
                eprintln!(
                    "tessera load: {:>6.1} s  {now} signatures  {} /s  {errs} errors",
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
        let (issued, done_sigs) = (Arc::clone(&issued), Arc::clone(&done_sigs));
        let (latencies, errors) = (Arc::clone(&latencies), Arc::clone(&errors));
        let key_id = key_id.clone();
        tasks.push(tokio::spawn(async move {
            let mut local = Vec::new();
            loop {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
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
                let messages: Vec<Vec<u8>> = (0..n)
                    .map(|_| {
                        let mut m = vec![0u8; 32];
                        OsRng.fill_bytes(&mut m);
                        m
                    })
                    .collect();
                let t0 = Instant::now();
                let result = if n == 1 && batch == 1 {
                    c.sign(SignRequest {
                        key_id: key_id.clone(),
                        message: messages.into_iter().next().unwrap_or_default(),
                        idempotency_key: String::new(),
                        taproot_merkle_root: None,
                    })
                    .await
                    .map(|_| 1)
                } else {
                    c.sign_batch(SignBatchRequest {
                        key_id: key_id.clone(),
                        messages,
                        taproot_merkle_root: None,
                    })
                    .await
                    .map(|r| r.into_inner().signatures.len() as u64)
                };
                match result {
                    Ok(k) => {
                        local.push(t0.elapsed().as_secs_f64() * 1000.0);
                        done_sigs.fetch_add(k, Ordering::Relaxed);
                    }
                    Err(e) => {
                        *errors
                            .lock()
                            .await
                            .entry(format!("{:?}", e.code()))
                            .or_default() += 1;
                    }
                }
            }
            latencies.lock().await.extend(local);
        }));
    }
    for t in tasks {
        t.await
            .map_err(|e| Error::Client(format!("load task failed: {e}")))?;
    }
    let elapsed = start.elapsed().as_secs_f64();
    progress.abort();
    let mut lat = latencies.lock().await.clone();
    lat.sort_by(f64::total_cmp);
    let signatures = done_sigs.load(Ordering::Relaxed);
    let errors = errors.lock().await.clone();
    let server_cpu_us_per_signature = match (&opts.metrics_url, before) {
        (Some(u), Some((cpu0, sig0))) => {
            let (cpu1, sig1) = cpu_and_signatures(&fetch_metrics(u).await?);
            (sig1 > sig0).then(|| (cpu1 - cpu0) / (sig1 - sig0) * 1e6)
        }
        _ => None,
    };
    let latency_ms = [("p50", 50.0), ("p95", 95.0), ("p99", 99.0)]
        .into_iter()
        .map(|(k, p)| (k.to_owned(), percentile(&lat, p)))
        .collect();
    Ok(LoadReport {
        key_id,
        scheme: scheme_name(opts.scheme).to_owned(),
        concurrency: opts.concurrency,
        batch_size: batch,
        signatures,
        requests: lat.len() as u64 + errors.values().sum::<u64>(),
        elapsed_s: elapsed,
        throughput_sps: signatures as f64 / elapsed.max(1e-9),
        latency_ms,
        errors,
        server_cpu_us_per_signature,
    })
}

/// Parses durations like `10s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations_and_percentiles() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 51.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&[], 99.0), 0.0);
    }
}
