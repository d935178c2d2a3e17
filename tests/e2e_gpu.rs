//! End-to-end on the GPU backend (lavapipe in CI): `tessera serve --backend gpu` signs Ed25519
//! and BIP340 with every signature checked by independent verifiers, and injected device
//! errors fail over to the CPU without a failed request while the breaker shows in metrics.
//! Without a Vulkan adapter these tests note the skip, except under `CI=true`, where a
//! missing adapter is a failure.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use api_proto::GetStatusRequest;
use client::metrics::sum_samples;
use test_support::{Server, signs_and_verifies};

/// Starts `serve --backend gpu` with `env`, or returns `None` (after a note) when this host
/// has no Vulkan adapter and is not CI.
fn gpu_server(dir: &std::path::Path, env: &[(&str, &str)]) -> Option<Server> {
    match Server::try_start_full(dir, "gpu", &["--gpu-secret-ops"], env) {
        Ok(s) => Some(s),
        Err(log) if log.contains("no Vulkan adapter") => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but the GPU backend found no adapter (install mesa-vulkan-drivers): {log}"
            );
            eprintln!("skipping: no Vulkan adapter on this host (install mesa-vulkan-drivers)");
            None
        }
        Err(log) => panic!("tessera serve --backend gpu did not start: {log}"),
    }
}

fn breaker(text: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix("tessera_accel_breaker_state{backend=\"gpu\"} "))
        .and_then(|v| v.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gpu_backend_signs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = gpu_server(dir.path(), &[]) else {
        return;
    };
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("gpu with cpu fallback"), "{log}");
    let mut c = server.client().await;
    let status = c
        .get_status(GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.backend, "gpu");
    signs_and_verifies(&mut c, "gpu").await;
    let text = server.scrape();
    assert_eq!(breaker(&text), Some(0.0), "{text}");
    let gpu_calls = sum_samples(
        &text,
        "tessera_accel_op_seconds_count",
        Some(("backend", &["gpu"])),
    );
    assert!(gpu_calls > 0.0, "{text}");
    assert_eq!(
        sum_samples(&text, "tessera_accel_fallbacks_total", None),
        0.0
    );
}

fn failed_requests(text: &str) -> usize {
    text.lines()
        .filter(|l| l.starts_with("tessera_request_duration_seconds_count{"))
        .filter(|l| !l.contains("outcome=\"OK\""))
        .count()
}

/// Two injected device errors: the first request batch that reaches the GPU fails over to the
/// CPU and opens the breaker; after the cool-down the probe call meets the second error and
/// the breaker opens again; after the next cool-down the probe succeeds and closes it. No
/// request fails at any point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn injected_device_errors_fail_over_without_failed_requests() {
    let dir = tempfile::tempdir().unwrap();
    let Some(server) = gpu_server(dir.path(), &[("TESSERA_GPU_FAULT_INJECT", "2")]) else {
        return;
    };
    let mut c = server.client().await;
    signs_and_verifies(&mut c, "gpu with an injected device error").await;
    let text = server.scrape();
    assert_eq!(
        sum_samples(&text, "tessera_accel_fallbacks_total", None),
        1.0,
        "{text}"
    );
    assert_eq!(breaker(&text), Some(1.0), "breaker not open: {text}");
    assert_eq!(failed_requests(&text), 0, "{text}");

    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(
        breaker(&server.scrape()),
        Some(2.0),
        "half-open after the cool-down"
    );
    signs_and_verifies(&mut c, "gpu whose probe meets the second error").await;
    let text = server.scrape();
    assert_eq!(
        sum_samples(&text, "tessera_accel_fallbacks_total", None),
        2.0,
        "{text}"
    );
    assert_eq!(breaker(&text), Some(1.0), "failed probe reopens: {text}");
    assert_eq!(failed_requests(&text), 0, "{text}");

    tokio::time::sleep(Duration::from_secs(6)).await;
    signs_and_verifies(&mut c, "gpu after recovery").await;
    let text = server.scrape();
    assert_eq!(breaker(&text), Some(0.0), "successful probe closes: {text}");
    assert_eq!(
        sum_samples(&text, "tessera_accel_fallbacks_total", None),
        2.0,
        "{text}"
    );
    assert_eq!(failed_requests(&text), 0, "{text}");
}

/// `tessera bench-accel --backends cpu,gpu` on this host's adapter: rows for every op the GPU
/// offers (mul_base only with --gpu-secret-ops), the adapter's name, and a crossover line per
/// (curve, op) for gpu against cpu.
#[test]
fn bench_accel_measures_the_gpu_and_names_its_adapter() {
    if backend_gpu::adapters().is_empty() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI=true but this host has no Vulkan adapter (install mesa-vulkan-drivers)"
        );
        eprintln!("skipping: no Vulkan adapter on this host (install mesa-vulkan-drivers)");
        return;
    }
    let out = std::process::Command::new(test_support::tessera_bin())
        .args([
            "bench-accel",
            "--backends",
            "cpu,gpu",
            "--max-batch",
            "4",
            "--min-time",
            "1ms",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let adapter = backend_gpu::adapters().remove(0);
    assert!(
        stdout
            .lines()
            .any(|l| l.trim_start().starts_with("gpu") && l.contains(&adapter)),
        "adapter {adapter} not named in:\n{stdout}"
    );
    // cpu: 10 (curve, op) × batches 1, 4; gpu without secret ops: 8 × 2.
    assert!(stderr.contains("[36/36]"), "{stderr}");
    for curve in ["secp256k1", "ed25519"] {
        for op in ["lincomb_vartime", "verify_batch_vartime"] {
            for batch in ["1", "4"] {
                assert!(
                    stdout.lines().any(|l| {
                        let f: Vec<&str> = l.split_whitespace().collect();
                        f.len() == 6
                            && f[0] == "gpu"
                            && f[1] == curve
                            && f[2] == op
                            && f[3] == batch
                            && f[4].parse::<f64>().is_ok_and(|ns| ns > 0.0)
                    }),
                    "no gpu {curve} {op} {batch} row in:\n{stdout}"
                );
            }
        }
        assert!(
            !stdout
                .lines()
                .any(|l| l.starts_with("gpu ") && l.contains(curve) && l.contains("mul_base")),
            "mul_base measured on the GPU without --gpu-secret-ops:\n{stdout}"
        );
    }
    let crossover = stdout
        .split("crossover: smallest batch from which gpu stays cheaper per item than cpu:")
        .nth(1)
        .unwrap_or_else(|| panic!("no gpu crossover section in:\n{stdout}"));
    assert_eq!(
        crossover
            .lines()
            .filter(|l| l.contains("batch ≥") || l.contains("never"))
            .count(),
        8,
        "{crossover}"
    );
}
