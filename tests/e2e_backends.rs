//! End-to-end on the accelerator backends: `tessera serve --backend simd` signs Ed25519 and
//! BIP340 (Taproot key-path included) with every signature checked by independent verifiers,
//! and a forced SIMD path that is unknown is a clear start-up error.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;

use common::{BIN, Server, bip340_ok, ed25519_ok, taproot_output_key};
use signer_service::proto::{
    CreateKeyRequest, GetStatusRequest, Scheme, SignBatchRequest, SignRequest,
};

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

    for scheme in [Scheme::Ed25519, Scheme::Bip340] {
        let key = c
            .create_key(CreateKeyRequest {
                scheme: scheme as i32,
                threshold: 2,
                parties: 3,
                label: "simd".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 32]).collect();
        let out = c
            .sign_batch(SignBatchRequest {
                key_id: key.key_id.clone(),
                messages: messages.clone(),
                taproot_merkle_root: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(out.signatures.len(), messages.len());
        for (m, r) in messages.iter().zip(&out.signatures) {
            assert_eq!(r.verifying_key, key.public_key);
            let ok = match scheme {
                Scheme::Ed25519 => ed25519_ok(&key.public_key, m, &r.signature),
                _ => bip340_ok(&key.public_key, m, &r.signature),
            };
            assert!(
                ok,
                "{scheme:?} signature from the simd backend does not verify"
            );
        }
        if scheme == Scheme::Bip340 {
            let r = c
                .sign(SignRequest {
                    key_id: key.key_id.clone(),
                    message: vec![9; 32],
                    idempotency_key: String::new(),
                    taproot_merkle_root: Some(Vec::new()),
                })
                .await
                .unwrap()
                .into_inner();
            let q = taproot_output_key(&key.public_key, None);
            assert_eq!(r.verifying_key, q);
            assert!(bip340_ok(&q, &[9; 32], &r.signature));
        }
    }
}

#[test]
fn unknown_forced_simd_path_is_a_clear_startup_error() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
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
