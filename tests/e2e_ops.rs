//! End-to-end operations: health and reflection (v1 and v1alpha) are reachable, the metrics
//! endpoint serves the named series, SIGTERM shuts down gracefully with exit 0, and start-up
//! errors (bad config, backend not built) are clear and non-zero.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use api_proto::{CreateKeyRequest, Scheme, SignRequest, VerifyRequest};
use test_support::{Server, run_cli};
use tokio_stream::StreamExt;

#[tokio::test]
async fn health_and_reflection_v1_and_v1alpha() {
    use tonic_health::pb::health_check_response::ServingStatus;
    use tonic_health::pb::{HealthCheckRequest, health_client::HealthClient};
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let ch = server.channel().await;

    let mut health = HealthClient::new(ch.clone());
    for service in ["", "tessera.v1.SignerService"] {
        let r = health
            .check(HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.status, ServingStatus::Serving as i32, "{service:?}");
    }

    {
        use tonic_reflection::pb::v1::ServerReflectionRequest;
        use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1::server_reflection_response::MessageResponse;
        let mut c = ServerReflectionClient::new(ch.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::ListServices(String::new())),
        };
        let mut stream = c
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.next().await.unwrap().unwrap();
        let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
            panic!("unexpected reflection response");
        };
        let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
        assert!(
            names.contains(&"tessera.v1.SignerService".to_owned()),
            "{names:?}"
        );
        assert!(
            names.contains(&"grpc.health.v1.Health".to_owned()),
            "{names:?}"
        );
    }
    {
        use tonic_reflection::pb::v1alpha::ServerReflectionRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_client::ServerReflectionClient;
        use tonic_reflection::pb::v1alpha::server_reflection_request::MessageRequest;
        use tonic_reflection::pb::v1alpha::server_reflection_response::MessageResponse;
        let mut c = ServerReflectionClient::new(ch.clone());
        let req = ServerReflectionRequest {
            host: String::new(),
            message_request: Some(MessageRequest::FileContainingSymbol(
                "tessera.v1.SignerService".into(),
            )),
        };
        let mut stream = c
            .server_reflection_info(tokio_stream::iter(vec![req]))
            .await
            .unwrap()
            .into_inner();
        let resp = stream.next().await.unwrap().unwrap();
        let Some(MessageResponse::FileDescriptorResponse(fd)) = resp.message_response else {
            panic!("unexpected reflection response");
        };
        assert!(!fd.file_descriptor_proto.is_empty());
    }
}

#[tokio::test]
async fn metrics_endpoint_serves_the_named_series() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let r = c
        .sign(SignRequest {
            key_id: k.key_id.clone(),
            message: b"metrics".to_vec(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap()
        .into_inner();
    let v = c
        .verify(VerifyRequest {
            scheme: Scheme::Ed25519 as i32,
            public_key: k.public_key.clone(),
            message: b"metrics".to_vec(),
            signature: r.signature,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.valid);
    let text = server.scrape();
    for series in [
        "tessera_request_duration_seconds_bucket{rpc=\"Sign\",scheme=\"ed25519\",backend=\"cpu\",outcome=\"OK\"",
        "tessera_request_cpu_seconds_sum{rpc=\"Sign\",scheme=\"ed25519\"}",
        "tessera_batch_size_count{op=\"sign\",scheme=\"ed25519\"}",
        "tessera_batch_size_count{op=\"verify\",scheme=\"ed25519\"}",
        "tessera_batch_queue_delay_seconds_count{op=\"sign\",scheme=\"ed25519\"}",
        "tessera_accel_op_seconds_count{backend=\"cpu\",curve=\"ed25519\",op=\"mul_base\"}",
        "tessera_queue_depth 0",
        "tessera_signatures_total{scheme=\"ed25519\"} 1",
        "# TYPE process_cpu_seconds_total counter",
        "# TYPE process_resident_memory_bytes gauge",
        "tessera_build_info{version=",
    ] {
        assert!(text.contains(series), "missing {series} in:\n{text}");
    }
    assert!(!text.contains(&k.key_id), "no key ids in labels");
    let cpu = client::metrics::sum_samples(
        &text,
        "tessera_request_cpu_seconds_sum",
        Some(("rpc", &["Sign"])),
    );
    assert!(cpu > 0.0, "the sign batch's CPU time was measured");
}

#[test]
fn sigterm_shuts_down_gracefully_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let log = std::sync::Arc::clone(&server.log);
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    let log = log.lock().unwrap().join("\n");
    assert!(log.contains("NOT a distributed MPC deployment"), "{log}");
    assert!(log.contains("shutting down"), "{log}");
}

#[test]
fn unusable_backend_and_bad_config_fail_clearly() {
    let dir = tempfile::tempdir().unwrap();
    // No Vulkan driver visible to the loader: `--backend gpu` is a start-up error.
    let out = Command::new(test_support::tessera_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--metrics-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--backend", "gpu"])
        .env("VK_ICD_FILENAMES", dir.path().join("no-such-icd.json"))
        .env("VK_DRIVER_FILES", dir.path().join("no-such-icd.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("backend `gpu` is not usable on this host")
            && err.contains("no Vulkan adapter"),
        "{err}"
    );
    // Bad settings exit with code 2 and name the field.
    let config_error = |args: &[&str], env: &[(&str, &str)]| -> String {
        let out = Command::new(test_support::tessera_bin())
            .arg("serve")
            .args(args)
            .arg("--data-dir")
            .arg(dir.path())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = config_error(&["--gpu-field", "u128"], &[]);
    assert!(err.contains("accel.gpu_field"), "{err}");
    let err = config_error(&["--max-batch-size", "0"], &[]);
    assert!(err.contains("batcher.max_batch_size: must be ≥ 1"), "{err}");
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[batcher]\nmax_queue_delay_us = -5\n").unwrap();
    let err = config_error(&["--config", cfg.to_str().unwrap()], &[]);
    assert!(err.contains("batcher.max_queue_delay_us"), "{err}");
    let err = config_error(&[], &[("TESSERA_LISTEN", "not-an-address")]);
    assert!(err.contains("server.listen"), "{err}");
    let err = config_error(&[], &[("TESSERA_BATCHER_WORKERS", "many")]);
    assert!(err.contains("--workers") && err.contains("many"), "{err}");
}

#[test]
fn help_documents_every_serve_flag() {
    let out = Command::new(test_support::tessera_bin())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--config",
        "--data-dir",
        "--listen",
        "--metrics-listen",
        "--backend",
        "--kek-file",
        "--max-batch-size",
        "--max-queue-delay-us",
        "--max-queue",
        "--workers",
        "TESSERA_BACKEND",
    ] {
        assert!(help.contains(flag), "{flag} missing from:\n{help}");
    }
}

#[tokio::test]
async fn auto_backend_calibrates_logs_its_model_and_signs() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_backend(dir.path(), "auto", &[]);
    let log = server.log.lock().unwrap().join("\n");
    assert!(
        log.contains("tessera: backend auto: auto over calibrated backends: cpu (calibrated) ["),
        "{log}"
    );
    assert!(log.contains("ns/item"), "{log}");
    let mut c = server.client().await;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::Bip340 as i32,
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let r = c
        .sign(SignRequest {
            key_id: k.key_id.clone(),
            message: vec![3; 32],
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap()
        .into_inner();
    let status = c
        .get_status(api_proto::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.backend, "auto");
    let v = c
        .verify(VerifyRequest {
            scheme: Scheme::Bip340 as i32,
            public_key: k.public_key,
            message: vec![3; 32],
            signature: r.signature,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(v.valid);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_in_flight_requests_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    // Items wait up to 1 s for company, so the request below is still queued at SIGTERM.
    let server = Server::start(dir.path(), &["--max-queue-delay-us", "1000000"]);
    let mut c = server.client().await;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    let mut c2 = c.clone();
    let key_id = k.key_id.clone();
    let in_flight = tokio::spawn(async move {
        c2.sign(SignRequest {
            key_id,
            message: b"in flight".to_vec(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
    });
    // Wait until the request sits in the batcher queue.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !server.scrape().contains("tessera_queue_depth 1") {
        assert!(std::time::Instant::now() < deadline, "request never queued");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    assert!(
        !in_flight.is_finished(),
        "still queued when the signal arrives"
    );
    let status = tokio::task::spawn_blocking(move || server.terminate())
        .await
        .unwrap();
    let r = in_flight
        .await
        .unwrap()
        .expect("in-flight request completed");
    let vk = ed25519_dalek::VerifyingKey::from_bytes(&k.public_key.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(&r.into_inner().signature.try_into().unwrap());
    assert!(vk.verify_strict(b"in flight", &sig).is_ok());
    assert!(status.success(), "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_kek_is_a_startup_error_and_the_data_stays_intact() {
    let dir = tempfile::tempdir().unwrap();
    let kek_a = "aa".repeat(32);
    let kek_b = "bb".repeat(32);
    let server = Server::start_full(dir.path(), "cpu", &[], &[("TESSERA_KEK", &kek_a)]);
    assert!(
        !dir.path().join("kek").exists(),
        "no KEK file generated when TESSERA_KEK is set"
    );
    // The running server's environment no longer holds the KEK: it restarted itself without
    // the variable, the KEK handed over on a pipe.
    let environ = std::fs::read(format!("/proc/{}/environ", server.pid())).unwrap();
    let environ = String::from_utf8_lossy(&environ);
    assert!(environ.contains("PATH="), "{environ}");
    assert!(
        !environ.contains("TESSERA_KEK") && !environ.contains(&kek_a),
        "TESSERA_KEK in the server's /proc/PID/environ"
    );
    let mut c = server.client().await;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(server.terminate().success());

    let log = match Server::try_start_full(dir.path(), "cpu", &[], &[("TESSERA_KEK", &kek_b)]) {
        Ok(_) => panic!("a server with the wrong KEK started"),
        Err(log) => log,
    };
    assert!(
        log.contains("TESSERA_KEK") && log.contains("does not open the keys stored"),
        "{log}"
    );
    assert!(log.contains(&k.key_id), "{log}");
    assert!(
        !log.contains(&kek_b) && !log.contains(&kek_a),
        "no KEK in the log"
    );

    let server = Server::start_full(dir.path(), "cpu", &[], &[("TESSERA_KEK", &kek_a)]);
    let mut c = server.client().await;
    let r = c
        .sign(SignRequest {
            key_id: k.key_id.clone(),
            message: b"m".to_vec(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await;
    assert!(r.is_ok(), "the key is intact for the right KEK");
}

/// Someone with write access to the data directory but not the KEK replaces a key's public
/// key in the database (so `GetKey` would report theirs): the server refuses to start, naming
/// the file and the key, and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_key_metadata_is_a_startup_error_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 3,
            label: "treasury".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(server.terminate().success());

    use redb::{ReadableDatabase, ReadableTable};
    let file = dir.path().join("tessera.redb");
    let keys: redb::TableDefinition<&str, &[u8]> = redb::TableDefinition::new("keys");
    let edited = {
        let db = redb::Database::open(&file).unwrap();
        let tx = db.begin_write().unwrap();
        let edited = {
            let mut t = tx.open_table(keys).unwrap();
            let mut rec = service_core::ports::KeyRecord::decode(
                "key",
                t.get(k.key_id.as_str()).unwrap().unwrap().value(),
            )
            .unwrap();
            rec.public_key = vec![0xee; 32];
            let bytes = rec.encode().unwrap();
            t.insert(k.key_id.as_str(), bytes.as_slice()).unwrap();
            bytes
        };
        tx.commit().unwrap();
        edited
    };

    let log = match Server::try_start_full(dir.path(), "cpu", &[], &[]) {
        Ok(_) => panic!("a server started over an edited key record"),
        Err(log) => log,
    };
    assert!(
        log.contains(&k.key_id)
            && log.contains("tessera.redb")
            && log.contains("does not authenticate"),
        "{log}"
    );
    let db = redb::Database::open(&file).unwrap();
    let tx = db.begin_read().unwrap();
    let t = tx.open_table(keys).unwrap();
    assert_eq!(
        t.get(k.key_id.as_str()).unwrap().unwrap().value(),
        edited.as_slice(),
        "nothing overwritten"
    );
}

/// An audit event edited behind the server's back (a signature's message hash replaced):
/// `tessera audit verify` names it and exits 1, and the server refuses to start over it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edited_audit_event_is_found_by_audit_verify_and_at_start_up() {
    use redb::ReadableTable;
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    for m in [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()] {
        c.sign(SignRequest {
            key_id: k.key_id.clone(),
            message: m,
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap();
    }
    assert!(server.terminate().success());
    let data = dir.path().display().to_string();
    let (ok, out, err) = run_cli(&["audit", "verify", "--data-dir", &data], &[]);
    assert!(ok, "{err}");
    assert!(out.contains("4 events, chain intact"), "{out}");

    let events: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    {
        let db = redb::Database::open(dir.path().join("tessera.redb")).unwrap();
        let tx = db.begin_write().unwrap();
        {
            let mut t = tx.open_table(events).unwrap();
            let mut env: serde_json::Value =
                serde_json::from_slice(t.get(2).unwrap().unwrap().value()).unwrap();
            env["event"]["message_sha256"] = serde_json::Value::String("ee".repeat(32));
            t.insert(2, serde_json::to_vec(&env).unwrap().as_slice())
                .unwrap();
        }
        tx.commit().unwrap();
    }
    let (ok, _, err) = run_cli(&["audit", "verify", "--data-dir", &data], &[]);
    assert!(!ok);
    assert!(
        err.contains("tessera.redb") && err.contains("event 2"),
        "{err}"
    );
    let log = match Server::try_start_full(dir.path(), "cpu", &[], &[]) {
        Ok(_) => panic!("a server started over an edited audit log"),
        Err(log) => log,
    };
    assert!(
        log.contains("tessera.redb") && log.contains("event 2"),
        "{log}"
    );
}

/// The audit log's retention: `tessera audit export --prune` writes the chain to a file that
/// `tessera audit verify-export` checks with the KEK, and deletes the exported events; the
/// server starts over the pruned chain, new events chain onto its checkpoint, a second export
/// continues where the first ended, and an edited export line is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_export_and_prune_keep_a_verifiable_chain() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let data = data_dir.display().to_string();
    let sign_some = |server: Server, from: u8| async move {
        let mut c = server.client().await;
        let k = c
            .create_key(CreateKeyRequest {
                scheme: Scheme::Ed25519 as i32,
                threshold: 2,
                parties: 3,
                label: String::new(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        for m in from..from + 3 {
            c.sign(SignRequest {
                key_id: k.key_id.clone(),
                message: vec![m],
                idempotency_key: String::new(),
                taproot_merkle_root: None,
            })
            .await
            .unwrap();
        }
        assert!(server.terminate().success());
    };
    sign_some(Server::start(&data_dir, &[]), 0).await;
    let first = dir.path().join("audit-1.jsonl");
    let (ok, out, err) = run_cli(
        &[
            "audit",
            "export",
            "--data-dir",
            &data,
            "--out",
            &first.display().to_string(),
            "--prune",
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("exported 4 events (events 0 to 3)") && out.contains("deleted 4"),
        "{out}"
    );
    let (ok, out, err) = run_cli(&["audit", "verify", "--data-dir", &data], &[]);
    assert!(ok && out.contains("0 events, chain intact"), "{out}{err}");
    let verify_export = |file: &std::path::Path| {
        run_cli(
            &[
                "audit",
                "verify-export",
                &file.display().to_string(),
                "--data-dir",
                &data,
            ],
            &[],
        )
    };
    let (ok, out, err) = verify_export(&first);
    assert!(ok && out.contains("4 events, chain intact"), "{out}{err}");
    // An export never overwrites a file.
    let (ok, _, err) = run_cli(
        &[
            "audit",
            "export",
            "--data-dir",
            &data,
            "--out",
            &first.display().to_string(),
        ],
        &[],
    );
    assert!(!ok && err.contains("audit-1.jsonl"), "{err}");

    // The server starts over the pruned chain (it verifies it) and new events chain on.
    sign_some(Server::start(&data_dir, &[]), 10).await;
    let second = dir.path().join("audit-2.jsonl");
    let (ok, out, err) = run_cli(
        &[
            "audit",
            "export",
            "--data-dir",
            &data,
            "--out",
            &second.display().to_string(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(out.contains("exported 4 events (events 4 to 7)"), "{out}");
    let (ok, out, err) = verify_export(&second);
    assert!(ok && out.contains("4 events, chain intact"), "{out}{err}");
    let (ok, out, err) = run_cli(&["audit", "verify", "--data-dir", &data], &[]);
    assert!(ok && out.contains("4 events, chain intact"), "{out}{err}");

    // One edited line in an export is found.
    let text = std::fs::read_to_string(&second).unwrap();
    let edited: Vec<String> = text
        .lines()
        .enumerate()
        .map(|(i, l)| {
            if i == 3 {
                let mut v: serde_json::Value = serde_json::from_str(l).unwrap();
                v["envelope"]["event"]["message_sha256"] =
                    serde_json::Value::String("ee".repeat(32));
                v.to_string()
            } else {
                l.to_owned()
            }
        })
        .collect();
    std::fs::write(&second, edited.join("\n") + "\n").unwrap();
    let (ok, _, err) = verify_export(&second);
    assert!(!ok && err.contains("event 6"), "{err}");
}

/// A headless start with `--backend auto` (which probes the Vulkan adapters): no Mesa
/// `XDG_RUNTIME_DIR` noise, and no ANSI colour codes, since stderr is a pipe here; with
/// `--log-format json` every log line is a JSON object.
#[test]
fn startup_log_is_clean_and_json_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_with_backend(dir.path(), "auto", &[]);
    let log = server.log.lock().unwrap().join("\n");
    assert!(!log.contains("XDG_RUNTIME_DIR"), "{log}");
    assert!(!log.contains('\u{1b}'), "ANSI escape in a piped log: {log}");
    assert!(server.terminate().success());

    let dir = tempfile::tempdir().unwrap();
    let server = Server::start_full(
        dir.path(),
        "auto",
        &["--log-format", "json"],
        &[("RUST_LOG", "info")],
    );
    let lines = server.log.lock().unwrap().clone();
    let json: Vec<&String> = lines.iter().filter(|l| l.starts_with('{')).collect();
    assert!(!json.is_empty(), "no JSON log line in {lines:?}");
    for l in json {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v.get("level").is_some() && v.get("fields").is_some(), "{l}");
    }
    assert!(server.terminate().success());
}

/// Flags win over `TESSERA_*` variables, which win over the config file (what `GetStatus`
/// reports as the backend shows which layer won).
#[tokio::test]
async fn flags_win_over_env_over_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("tessera.toml");
    std::fs::write(&file, "[accel]\nbackend = \"simd\"\n").unwrap();
    let config = ["--config", file.to_str().unwrap()];
    let backend = |server: &Server| {
        let url = server.url.clone();
        async move {
            let mut c = api_proto::signer_service_client::SignerServiceClient::connect(url)
                .await
                .unwrap();
            c.get_status(api_proto::GetStatusRequest {})
                .await
                .unwrap()
                .into_inner()
                .backend
        }
    };
    let server = Server::start_full(&dir.path().join("a"), "", &config, &[]);
    assert_eq!(backend(&server).await, "simd", "the file over the default");
    drop(server);
    let server = Server::start_full(
        &dir.path().join("b"),
        "",
        &config,
        &[("TESSERA_BACKEND", "cpu")],
    );
    assert_eq!(backend(&server).await, "cpu", "the variable over the file");
    drop(server);
    let server = Server::start_full(
        &dir.path().join("c"),
        "cpu",
        &config,
        &[("TESSERA_BACKEND", "simd")],
    );
    assert_eq!(backend(&server).await, "cpu", "the flag over the variable");
}
