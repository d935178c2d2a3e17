//! End-to-end: a small `tessera load` run against a real server exits 0 and prints the
//! summary (throughput, latency percentiles, errors, server CPU per signature).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use test_support::Server;

#[test]
fn load_count_200_prints_summary() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let metrics_url = format!("http://{}/metrics", server.metrics);
    let out = Command::new(test_support::tessera_bin())
        .args(["load", "--server", &server.url, "--scheme", "ed25519"])
        .args([
            "--concurrency",
            "16",
            "--count",
            "200",
            "--metrics-url",
            &metrics_url,
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    for needle in [
        "200 signatures",
        "throughput:",
        "signatures/s",
        "p50",
        "p95",
        "p99",
        "errors: none",
        "server CPU per signature:",
        "µs process",
        "µs signing work",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }

    let out = Command::new(test_support::tessera_bin())
        .args([
            "load",
            "--server",
            &server.url,
            "--scheme",
            "bip340",
            "--json",
        ])
        .args(["--concurrency", "4", "--count", "40", "--batch-size", "8"])
        .args(["--metrics-url", &metrics_url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["signatures"], 40);
    assert_eq!(v["requests"], 5);
    assert!(v["throughput_sps"].as_f64().unwrap() > 0.0);
    let signing = v["server_cpu_us_per_signature"].as_f64().unwrap();
    let process = v["process_cpu_us_per_signature"].as_f64().unwrap();
    assert!(signing > 0.0 && process > 0.0, "{v}");
    assert!(v["errors"].as_object().unwrap().is_empty());
}

fn tessera(args: &[&str]) -> (bool, serde_json::Value, String) {
    let out = Command::new(test_support::tessera_bin())
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(serde_json::Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn cli_keygen_sign_verify_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let s = server.url.as_str();
    let (ok, key, err) = tessera(&[
        "keygen",
        "--server",
        s,
        "--scheme",
        "bip340",
        "--threshold",
        "2",
        "--parties",
        "3",
        "--label",
        "cli",
    ]);
    assert!(ok, "{err}");
    assert_eq!(key["scheme"], "bip340");
    let key_id = key["key_id"].as_str().unwrap();
    let msg = "11".repeat(32);
    let (ok, sig, err) = tessera(&[
        "sign",
        "--server",
        s,
        "--key-id",
        key_id,
        "--message-hex",
        &msg,
        "--taproot-keypath",
    ]);
    assert!(ok, "{err}");
    let vk = sig["verifying_key"].as_str().unwrap();
    assert_ne!(
        vk,
        key["public_key"].as_str().unwrap(),
        "tweaked output key"
    );
    let signature = sig["signature"].as_str().unwrap();
    let verify = |m: &str| {
        tessera(&[
            "verify",
            "--server",
            s,
            "--scheme",
            "bip340",
            "--public-key",
            vk,
            "--message-hex",
            m,
            "--signature",
            signature,
        ])
    };
    let (ok, v, err) = verify(&msg);
    assert!(ok, "{err}");
    assert_eq!(v["valid"], true);
    let (ok, v, _) = verify(&"22".repeat(32));
    assert!(!ok, "an invalid signature exits non-zero");
    assert_eq!(v["valid"], false);
    let (ok, _, err) = tessera(&[
        "sign",
        "--server",
        s,
        "--key-id",
        key_id,
        "--message",
        "too short for bip340",
    ]);
    assert!(!ok);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("message"),
        "{err}"
    );
}

/// `--keys N` signs with N keys drawn at random, creating them on the first run and reusing
/// them on the next.
#[test]
fn load_with_many_keys_creates_then_reuses_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let metrics_url = format!("http://{}/metrics", server.metrics);
    let run = || {
        let out = Command::new(test_support::tessera_bin())
            .args([
                "load",
                "--server",
                &server.url,
                "--scheme",
                "bip340",
                "--json",
            ])
            .args(["--keys", "6", "--concurrency", "4", "--count", "60"])
            .args(["--metrics-url", &metrics_url])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    assert_eq!(first["keys"], 6);
    assert_eq!(first["keys_created"], 6);
    assert_eq!(first["signatures"], 60);
    assert!(
        first["server_resident_mib"].as_f64().unwrap() > 1.0,
        "{first}"
    );
    let second = run();
    assert_eq!(second["keys_created"], 0, "{second}");
    assert_eq!(second["keys_reused"], 6);
    assert!(second["errors"].as_object().unwrap().is_empty());
}

/// `tessera load` refuses a count of zero for `--concurrency`, `--batch-size` and `--keys` before
/// it contacts any server (a zero concurrency used to send one request and report
/// "concurrency 0").
#[test]
fn load_refuses_zero_counts() {
    for flag in ["--concurrency", "--batch-size", "--keys"] {
        let (ok, _, err) = tessera(&[
            "load",
            "--server",
            "http://127.0.0.1:1",
            flag,
            "0",
            "--count",
            "1",
        ]);
        assert!(!ok, "{flag} 0 was accepted");
        assert!(
            err.contains(flag) && err.contains("must be at least 1"),
            "{err}"
        );
        assert!(
            !err.contains("connect"),
            "{flag} 0 reached the network: {err}"
        );
    }
}

/// A load run whose server goes away backs off instead of spinning: its tasks wait 100 ms
/// after an UNAVAILABLE answer, doubling up to 1 s, so three seconds without a server cost a
/// handful of requests per task (thousands without the backoff), and the run still ends on
/// time with the failures counted.
#[test]
fn load_backs_off_while_the_server_is_unavailable() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let load = Command::new(test_support::tessera_bin())
        .args(["load", "--server", &server.url, "--scheme", "ed25519"])
        .args(["--concurrency", "2", "--duration", "4s", "--json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(1));
    server.kill9();
    let out = load.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let failed: u64 = v["errors"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    let unavailable = v["errors"]["UNAVAILABLE"].as_u64().unwrap_or(0);
    assert!(unavailable >= 2, "the failures were not counted: {v}");
    assert!(
        failed <= 2 * 12,
        "{failed} failed requests in about 3 s without a server: no backoff? {v}"
    );
}

/// `--rpc health` loads the standard health check: no key is made and nothing is signed, and
/// the summary gives the server's process CPU per call.
#[test]
fn load_of_the_health_check_creates_no_key_and_reports_cpu_per_call() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let metrics_url = format!("http://{}/metrics", server.metrics);
    let load = |extra: &[&str]| {
        let out = Command::new(test_support::tessera_bin())
            .args(["load", "--server", &server.url, "--rpc", "health"])
            .args(["--concurrency", "8", "--count", "300"])
            .args(["--metrics-url", &metrics_url])
            .args(extra)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(out.status.success(), "{stderr}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let v: serde_json::Value = serde_json::from_str(&load(&["--json"])).unwrap();
    assert_eq!(v["rpc"], "health");
    assert_eq!(v["requests"], 300);
    assert_eq!(v["signatures"], 0);
    assert_eq!(
        (v["keys"].as_u64(), v["keys_created"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(v["errors"].as_object().unwrap().is_empty(), "{v}");
    assert!(
        v["process_cpu_us_per_request"].as_f64().unwrap() > 0.0,
        "{v}"
    );
    assert!(v["process_cpu_us_per_signature"].is_null(), "{v}");
    let human = load(&[]);
    for needle in [
        "300 health checks",
        "requests/s",
        "errors: none",
        "server CPU per request:",
    ] {
        assert!(human.contains(needle), "{needle:?} missing from:\n{human}");
    }
}

#[test]
fn load_refuses_an_unknown_rpc() {
    let out = Command::new(test_support::tessera_bin())
        .args(["load", "--rpc", "ping", "--count", "1"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("not sign or health"), "{stderr}");
}
