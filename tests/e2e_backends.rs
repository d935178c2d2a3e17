//! End-to-end on the accelerator backends: `tessera serve --backend simd` signs Ed25519 and
//! BIP340 (Taproot key-path included) with every signature checked by independent verifiers;
//! a forced SIMD path that is unknown is a clear start-up error; `tessera bench-accel` measures
//! and saves cost models that `serve --cost-model` routes by.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use api_proto::GetStatusRequest;
use test_support::{Server, signs_and_verifies};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simd_backend_signs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_backend(dir.path(), "simd", &[]);
    let log = server.log.lock().unwrap().join("\n");
    assert!(log.contains("simd with cpu fallback"), "{log}");
    let mut c = server.client().await;
    assert_eq!(
        c.get_status(GetStatusRequest {})
            .await
            .unwrap()
            .into_inner()
            .backend,
        "simd"
    );
    signs_and_verifies(&mut c, "simd").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_accel_measures_and_serve_routes_by_its_cost_models() {
    let dir = tempfile::tempdir().unwrap();
    let costs = dir.path().join("costs.json");
    let out = Command::new(test_support::tessera_bin())
        .args([
            "bench-accel",
            "--backends",
            "cpu,simd",
            "--max-batch",
            "16",
            "--min-time",
            "1ms",
            "--save",
        ])
        .arg(&costs)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // 2 backends × 10 (curve, op) × batches 1, 4, 16, each announced on stderr.
    assert!(stderr.contains("[60/60]"), "{stderr}");
    for backend in ["cpu", "simd"] {
        for op in [
            "mul_base",
            "lincomb_vartime",
            "verify_batch_vartime",
            "normalize_batch",
            "decompress_batch",
        ] {
            for batch in [1, 4, 16] {
                let found = stdout.lines().any(|l| {
                    let f: Vec<&str> = l.split_whitespace().collect();
                    f.len() == 6
                        && f[0] == backend
                        && f[2] == op
                        && f[3] == batch.to_string()
                        && f[4].parse::<f64>().is_ok_and(|ns| ns > 0.0)
                });
                assert!(found, "no {backend} {op} {batch} row in:\n{stdout}");
            }
        }
    }
    let file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&costs).unwrap()).unwrap();
    assert_eq!(file["models"].as_array().unwrap().len(), 2, "{file}");

    let server = Server::start_with_backend(
        dir.path(),
        "auto",
        &["--cost-model", costs.to_str().unwrap()],
    );
    let log = server.log.lock().unwrap().join("\n");
    // bench-accel's cpu row is the all-cores backend; the service's per-worker single-threaded
    // cpu backend is another device, so it is still calibrated at start-up.
    assert!(log.contains("cpu (calibrated)"), "{log}");
    assert!(log.contains("simd (measured by bench-accel)"), "{log}");
    let mut c = server.client().await;
    signs_and_verifies(&mut c, "auto with measured costs").await;
}

#[test]
fn unknown_forced_simd_path_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(test_support::tessera_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
            "--backend",
            "simd",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .env("TESSERA_SIMD_PATH", "neon")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("neon") && err.contains("TESSERA_SIMD_PATH"),
        "{err}"
    );
}
