//! End-to-end: no secret reaches the log, at the most verbose level. A server runs with
//! `RUST_LOG=trace`, API-key authentication and the REST gateway; keys are imported (known
//! secrets) and created over gRPC and REST, signatures made, and requests refused. Afterwards
//! the whole captured log is searched for the KEK, the API keys, the imported secrets (hex and
//! base64) and every 16-byte window of every stored share (hex), read back from the store
//! with the KEK.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::{CreateKeyRequest, ImportKeyRequest, Scheme, SignRequest};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use service_core::{KeyRepository, Sealer};
use test_support::{Server, run_cli};
use tonic::Request;

fn authed<T>(msg: T, key: &str) -> Request<T> {
    let mut r = Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kek_hex = "3c".repeat(32);
    let kek = dir.path().join("kek.hex");
    std::fs::write(&kek, &kek_hex).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let (data_s, kek_s) = (data.display().to_string(), kek.display().to_string());
    let (ok, api_key, err) = run_cli(
        &[
            "apikey",
            "create",
            "--data-dir",
            &data_s,
            "--kek-file",
            &kek_s,
            "--name",
            "ops",
            "--admin",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let api_key = api_key.trim().to_owned();
    let s = Server::start_full(
        &data,
        "cpu",
        &[
            "--auth",
            "api-key",
            "--kek-file",
            &kek_s,
            "--rest-listen",
            "127.0.0.1:0",
        ],
        &[("RUST_LOG", "trace")],
    );
    let mut c = s.client().await;
    let secrets: Vec<(Scheme, [u8; 32])> = vec![
        (Scheme::Ed25519, [0x61; 32]),
        (Scheme::Bip340, [0x62; 32]),
        (Scheme::EcdsaSecp256k1, [0x63; 32]),
    ];
    let mut ids = Vec::new();
    for (scheme, secret) in &secrets {
        let k = c
            .import_key(authed(
                ImportKeyRequest {
                    scheme: *scheme as i32,
                    secret_key: secret.to_vec(),
                    threshold: 2,
                    parties: 3,
                    label: String::new(),
                    idempotency_key: String::new(),
                },
                &api_key,
            ))
            .await
            .unwrap()
            .into_inner();
        c.sign(authed(
            SignRequest {
                key_id: k.key_id.clone(),
                message: vec![9; 32],
                idempotency_key: "once".into(),
                taproot_merkle_root: None,
            },
            &api_key,
        ))
        .await
        .unwrap();
        ids.push(k.key_id);
    }
    let created = c
        .create_key(authed(
            CreateKeyRequest {
                scheme: Scheme::EcdsaSecp256k1 as i32,
                threshold: 2,
                parties: 3,
                label: String::new(),
                idempotency_key: String::new(),
            },
            &api_key,
        ))
        .await
        .unwrap()
        .into_inner();
    ids.push(created.key_id);
    // Refused requests: a wrong key, and a malformed import of a secret.
    // The key with its last hex digit changed (never to itself).
    let last = if api_key.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &api_key[..api_key.len() - 1]);
    assert_ne!(wrong, api_key);
    assert!(
        c.get_status(authed(api_proto::GetStatusRequest {}, &wrong))
            .await
            .is_err()
    );
    let bad = c
        .import_key(authed(
            ImportKeyRequest {
                scheme: Scheme::Ed25519 as i32,
                secret_key: vec![0x64; 31],
                threshold: 2,
                parties: 3,
                label: String::new(),
                idempotency_key: String::new(),
            },
            &api_key,
        ))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    // The same over REST (an import whose secret is in the JSON body).
    let rest = s
        .log
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| {
            l.strip_prefix("tessera: REST listening on ")
                .map(|a| a.trim().to_owned())
        })
        .unwrap();
    let body = serde_json::json!({"scheme": "SCHEME_ED25519", "secretKey": STANDARD.encode([0x65u8; 32]),
                                  "threshold": 2, "parties": 3});
    let resp = rest_post(&rest, "/v1/keys:import", &body.to_string(), &api_key).await;
    assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
    let captured = std::sync::Arc::clone(&s.log);
    assert!(s.terminate().success());
    // The harness reads stderr on another thread: let it reach the end of the pipe.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let log = captured.lock().unwrap().join("\n");
    assert!(
        log.len() > 10_000,
        "a trace-level log was captured ({} bytes)",
        log.len()
    );
    let mut forbidden = vec![kek_hex.clone(), api_key.clone(), wrong];
    for (_, secret) in &secrets {
        forbidden.push(hex::encode(secret));
        forbidden.push(STANDARD.encode(secret));
    }
    forbidden.push(hex::encode([0x64u8; 31]));
    forbidden.push(STANDARD.encode([0x65u8; 32]));
    // Every stored share, read back with the KEK: no 16-byte window of it in the log.
    let store = store_redb::RedbStore::open(
        &data,
        service_core::audit::ChainKey::of(&service_core::Kek::from_hex(&kek_hex).unwrap()),
    )
    .unwrap();
    let kek_obj = service_core::Kek::from_hex(&kek_hex).unwrap();
    let mut windows = 0;
    for r in store.list_keys(None, 100).unwrap() {
        let plain = kek_obj.open(&r.key_id, &r.sealed).unwrap();
        for w in plain.windows(16).step_by(8) {
            forbidden.push(hex::encode(w));
            windows += 1;
        }
    }
    assert!(
        windows > 100,
        "the shares were read back ({windows} windows)"
    );
    let lower = log.to_lowercase();
    for f in &forbidden {
        assert!(
            !lower.contains(&f.to_lowercase()),
            "a secret is in the log: {}…",
            &f[..8]
        );
    }
}

async fn rest_post(addr: &str, path: &str, body: &str, key: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}
