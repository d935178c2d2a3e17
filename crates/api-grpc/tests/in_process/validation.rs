//! Malformed requests get INVALID_ARGUMENT (or NOT_FOUND) with a message naming the field or
//! problem and a `BadRequest` detail naming the field, and change nothing: the same keys
//! (ListKeys, GetStatus), no audit event, no signature counted.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::{ImportKeyRequest, Scheme, SignBatchRequest, VerifyRequest};
use tonic::Code;

use crate::common::{Harness, assert_invalid, assert_status, create_req, schnorr_ok, sign_req};

async fn bip340_message_of_len(len: usize) {
    let h = Harness::new();
    let k = h.key(Scheme::Bip340, "errors").await;
    let before = h.snapshot().await;
    let s = h.sign(sign_req(&k.key_id, vec![7; len])).await.unwrap_err();
    assert_invalid(&s, "message", &["message", "32 bytes", &len.to_string()]);
    let s = h
        .sign_batch(SignBatchRequest {
            key_id: k.key_id.clone(),
            messages: vec![vec![1; 32], vec![7; len]],
            taproot_merkle_root: None,
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "messages", &["messages", "32 bytes"]);
    h.assert_unchanged(&before).await;
    assert_eq!(h.signature_events(), 0, "nothing was signed");
    assert!(
        !h.scrape().contains("tessera_signatures_total{"),
        "no signature was issued"
    );
}

#[tokio::test]
async fn bip340_message_of_31_bytes_is_invalid_argument() {
    bip340_message_of_len(31).await;
}

#[tokio::test]
async fn bip340_message_of_33_bytes_is_invalid_argument() {
    bip340_message_of_len(33).await;
}

#[tokio::test]
async fn unknown_key_id_is_not_found() {
    let h = Harness::new();
    let before = h.snapshot().await;
    let s = h
        .sign(sign_req("00000000000000000000000000000000", vec![1; 32]))
        .await
        .unwrap_err();
    assert_status(
        &s,
        Code::NotFound,
        &["key_id", "00000000000000000000000000000000"],
    );
    let s = h.get_key("nope").await.unwrap_err();
    assert_status(&s, Code::NotFound, &["key_id", "nope"]);
    let s = h.sign(sign_req("", vec![1; 32])).await.unwrap_err();
    assert_invalid(&s, "key_id", &["key_id"]);
    let s = h.get_key("").await.unwrap_err();
    assert_invalid(&s, "key_id", &["key_id", "must be set"]);
    h.assert_unchanged(&before).await;
}

#[tokio::test]
async fn threshold_zero_is_invalid_argument() {
    let h = Harness::new();
    let before = h.snapshot().await;
    for scheme in [Scheme::Ed25519, Scheme::Bip340] {
        let s = h
            .create(create_req(scheme as i32, 0, 3, ""))
            .await
            .unwrap_err();
        assert_invalid(&s, "threshold", &["threshold", "≥ 1"]);
    }
    let s = h
        .import(ImportKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            secret_key: vec![9; 32],
            threshold: 0,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "threshold", &["threshold"]);
    h.assert_unchanged(&before).await;
}

#[tokio::test]
async fn threshold_above_parties_is_invalid_argument() {
    let h = Harness::new();
    let before = h.snapshot().await;
    let s = h
        .create(create_req(Scheme::Ed25519 as i32, 4, 3, ""))
        .await
        .unwrap_err();
    assert_invalid(&s, "threshold", &["threshold", "parties", "4 > 3"]);
    let s = h
        .create(create_req(Scheme::Bip340 as i32, 1, 0, ""))
        .await
        .unwrap_err();
    assert_invalid(&s, "parties", &["parties"]);
    h.assert_unchanged(&before).await;
}

#[tokio::test]
async fn unspecified_scheme_is_invalid_argument() {
    let h = Harness::new();
    let before = h.snapshot().await;
    let s = h
        .create(create_req(Scheme::Unspecified as i32, 2, 3, ""))
        .await
        .unwrap_err();
    assert_invalid(&s, "scheme", &["scheme", "must be set"]);
    let s = h
        .verify(VerifyRequest {
            scheme: Scheme::Unspecified as i32,
            public_key: vec![0; 32],
            message: vec![0; 32],
            signature: vec![0; 64],
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "scheme", &["scheme"]);
    // A value the enum does not know is refused the same way.
    let s = h.create(create_req(99, 2, 3, "")).await.unwrap_err();
    assert_invalid(&s, "scheme", &["scheme", "99"]);
    h.assert_unchanged(&before).await;
}

#[tokio::test]
async fn garbage_signature_verifies_false_not_error() {
    let h = Harness::new();
    let ed = h.key(Scheme::Ed25519, "errors").await;
    let bip = h.key(Scheme::Bip340, "errors").await;
    let mut signed = Vec::new();
    for (k, scheme) in [(&ed, Scheme::Ed25519), (&bip, Scheme::Bip340)] {
        let sig = h.sign(sign_req(&k.key_id, vec![5; 32])).await.unwrap();
        assert_eq!(sig.verifying_key, k.public_key);
        assert!(
            schnorr_ok(scheme, &sig.verifying_key, &[5; 32], &sig.signature),
            "{scheme:?} signature fails the independent verifier"
        );
        signed.push((scheme, sig));
    }
    let before = h.snapshot().await;
    for (scheme, sig) in &signed {
        let verify = |signature: Vec<u8>, message: Vec<u8>| {
            h.verify(VerifyRequest {
                scheme: *scheme as i32,
                public_key: sig.verifying_key.clone(),
                message,
                signature,
            })
        };
        assert!(
            verify(sig.signature.clone(), vec![5; 32]).await.unwrap(),
            "the real signature"
        );
        assert!(
            !verify(vec![0xa5; 64], vec![5; 32]).await.unwrap(),
            "garbage"
        );
        assert!(!verify(vec![0; 64], vec![5; 32]).await.unwrap(), "zeros");
        let mut flipped = sig.signature.clone();
        flipped[40] ^= 1;
        assert!(!verify(flipped, vec![5; 32]).await.unwrap(), "flipped s");
        assert!(
            !verify(sig.signature.clone(), vec![6; 32]).await.unwrap(),
            "other message"
        );
    }
    let s = h
        .verify(VerifyRequest {
            scheme: Scheme::Ed25519 as i32,
            public_key: ed.public_key.clone(),
            message: vec![1],
            signature: vec![1; 63],
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "signature", &["signature", "64 bytes"]);
    h.assert_unchanged(&before).await;
}

#[tokio::test]
async fn taproot_root_of_wrong_length_and_ed25519_with_root_are_invalid_argument() {
    let h = Harness::new();
    let bip = h.key(Scheme::Bip340, "errors").await;
    let ed = h.key(Scheme::Ed25519, "errors").await;
    let before = h.snapshot().await;
    let mut req = sign_req(&bip.key_id, vec![1; 32]);
    req.taproot_merkle_root = Some(vec![0; 31]);
    let s = h.sign(req).await.unwrap_err();
    assert_invalid(
        &s,
        "taproot_merkle_root",
        &["taproot_merkle_root", "31 bytes"],
    );
    let mut req = sign_req(&ed.key_id, vec![1; 32]);
    req.taproot_merkle_root = Some(Vec::new());
    let s = h.sign(req).await.unwrap_err();
    assert_invalid(&s, "taproot_merkle_root", &["taproot_merkle_root"]);
    let s = h
        .sign(sign_req(&ed.key_id, vec![0; 64 * 1024 + 1]))
        .await
        .unwrap_err();
    assert_invalid(&s, "message", &["message", "65536"]);
    h.assert_unchanged(&before).await;
    assert_eq!(h.signature_events(), 0, "nothing was signed");
}

/// Batch sizes, labels, idempotency keys and imported secrets out of bounds.
#[tokio::test]
async fn out_of_bounds_batches_labels_idempotency_keys_and_secrets_are_invalid_argument() {
    let h = Harness::new();
    let ed = h.key(Scheme::Ed25519, "bounds").await;
    let before = h.snapshot().await;
    let batch = |messages: Vec<Vec<u8>>| SignBatchRequest {
        key_id: ed.key_id.clone(),
        messages,
        taproot_merkle_root: None,
    };
    let s = h.sign_batch(batch(Vec::new())).await.unwrap_err();
    assert_invalid(&s, "messages", &["messages", "at least one"]);
    let s = h.sign_batch(batch(vec![vec![1]; 4097])).await.unwrap_err();
    assert_invalid(&s, "messages", &["messages", "4096", "4097"]);
    let mut req = create_req(Scheme::Ed25519 as i32, 2, 3, &"x".repeat(257));
    let s = h.create(req.clone()).await.unwrap_err();
    assert_invalid(&s, "label", &["label", "256 bytes"]);
    req.label = String::new();
    req.idempotency_key = "k".repeat(129);
    let s = h.create(req).await.unwrap_err();
    assert_invalid(&s, "idempotency_key", &["idempotency_key", "128 bytes"]);
    let mut sign = sign_req(&ed.key_id, vec![1; 32]);
    sign.idempotency_key = "k".repeat(129);
    let s = h.sign(sign).await.unwrap_err();
    assert_invalid(&s, "idempotency_key", &["idempotency_key", "128 bytes"]);
    let s = h
        .import(ImportKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            secret_key: vec![9; 31],
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "secret_key", &["secret_key", "32 bytes", "31"]);
    let s = h.list(1001, "").await.unwrap_err();
    assert_invalid(&s, "page_size", &["page_size", "1000"]);
    h.assert_unchanged(&before).await;
}

#[tokio::test]
async fn keys_above_the_party_caps_and_overlong_key_ids_are_refused_at_once() {
    let h = Harness::new();
    let before = h.snapshot().await;
    for (scheme, n) in [
        (Scheme::Ed25519, 65),
        (Scheme::Bip340, 255),
        (Scheme::EcdsaSecp256k1, 17),
    ] {
        let started = std::time::Instant::now();
        let s = h
            .create(create_req(scheme as i32, n, n, ""))
            .await
            .unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_millis(500),
            "refused before any work"
        );
        assert_invalid(&s, "parties", &["parties", "max_parties"]);
    }
    let s = h
        .sign(sign_req(&"k".repeat(65), vec![1; 32]))
        .await
        .unwrap_err();
    assert_invalid(&s, "key_id", &["key_id", "64 bytes"]);
    h.assert_unchanged(&before).await;
}
