//! End-to-end: malformed requests get the right status code, a message naming the field or
//! problem, and change nothing (ListKeys unchanged).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Server;
use signer_service::proto::signer_client::SignerClient;
use signer_service::proto::{
    CreateKeyRequest, ImportKeyRequest, KeyInfo, ListKeysRequest, Scheme, SignBatchRequest,
    SignRequest, VerifyRequest,
};
use tonic::Code;
use tonic::transport::Channel;

async fn keys(c: &mut SignerClient<Channel>) -> Vec<KeyInfo> {
    c.list_keys(ListKeysRequest {
        page_size: 1000,
        page_token: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
    .keys
}

async fn key(c: &mut SignerClient<Channel>, scheme: Scheme) -> KeyInfo {
    c.create_key(CreateKeyRequest {
        scheme: scheme as i32,
        threshold: 2,
        parties: 3,
        label: "errors".into(),
    })
    .await
    .unwrap()
    .into_inner()
}

/// A CreateKey that must fail; returns its status.
async fn create_err(
    c: &mut SignerClient<Channel>,
    scheme: i32,
    threshold: u32,
    parties: u32,
) -> tonic::Status {
    c.create_key(CreateKeyRequest {
        scheme,
        threshold,
        parties,
        label: String::new(),
    })
    .await
    .unwrap_err()
}

fn assert_status(s: &tonic::Status, code: Code, words: &[&str]) {
    assert_eq!(s.code(), code, "{s:?}");
    for w in words {
        assert!(
            s.message().contains(w),
            "message {:?} lacks {w:?}",
            s.message()
        );
    }
}

fn sign_req(key_id: &str, message: Vec<u8>) -> SignRequest {
    SignRequest {
        key_id: key_id.into(),
        message,
        idempotency_key: String::new(),
        taproot_merkle_root: None,
    }
}

async fn bip340_message_of_len(len: usize) {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let k = key(&mut c, Scheme::Bip340).await;
    let before = keys(&mut c).await;
    let s = c.sign(sign_req(&k.key_id, vec![7; len])).await.unwrap_err();
    assert_status(
        &s,
        Code::InvalidArgument,
        &["message", "32 bytes", &len.to_string()],
    );
    let s = c
        .sign_batch(SignBatchRequest {
            key_id: k.key_id.clone(),
            messages: vec![vec![1; 32], vec![7; len]],
            taproot_merkle_root: None,
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["messages", "32 bytes"]);
    assert_eq!(keys(&mut c).await, before);
    let metrics = server.scrape();
    assert!(
        !metrics.contains("tessera_signatures_total{"),
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
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let before = keys(&mut c).await;
    let s = c
        .sign(sign_req("00000000000000000000000000000000", vec![1; 32]))
        .await
        .unwrap_err();
    assert_status(
        &s,
        Code::NotFound,
        &["key_id", "00000000000000000000000000000000"],
    );
    let s = c
        .get_key(signer_service::proto::GetKeyRequest {
            key_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::NotFound, &["key_id", "nope"]);
    let s = c.sign(sign_req("", vec![1; 32])).await.unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["key_id"]);
    assert_eq!(keys(&mut c).await, before);
}

#[tokio::test]
async fn threshold_zero_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let before = keys(&mut c).await;
    for scheme in [Scheme::Ed25519, Scheme::Bip340] {
        let s = create_err(&mut c, scheme as i32, 0, 3).await;
        assert_status(&s, Code::InvalidArgument, &["threshold", "≥ 1"]);
    }
    let s = c
        .import_key(ImportKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            secret_key: vec![9; 32],
            threshold: 0,
            parties: 3,
            label: String::new(),
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["threshold"]);
    assert_eq!(keys(&mut c).await, before);
}

#[tokio::test]
async fn threshold_above_parties_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let before = keys(&mut c).await;
    let s = create_err(&mut c, Scheme::Ed25519 as i32, 4, 3).await;
    assert_status(
        &s,
        Code::InvalidArgument,
        &["threshold", "parties", "4 > 3"],
    );
    let s = create_err(&mut c, Scheme::Bip340 as i32, 1, 0).await;
    assert_status(&s, Code::InvalidArgument, &["parties"]);
    assert_eq!(keys(&mut c).await, before);
}

#[tokio::test]
async fn unspecified_scheme_is_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let before = keys(&mut c).await;
    let s = create_err(&mut c, Scheme::Unspecified as i32, 2, 3).await;
    assert_status(&s, Code::InvalidArgument, &["scheme", "must be set"]);
    let s = c
        .verify(VerifyRequest {
            scheme: Scheme::Unspecified as i32,
            public_key: vec![0; 32],
            message: vec![0; 32],
            signature: vec![0; 64],
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["scheme"]);
    assert_eq!(keys(&mut c).await, before);
}

#[tokio::test]
async fn garbage_signature_verifies_false_not_error() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let ed = key(&mut c, Scheme::Ed25519).await;
    let bip = key(&mut c, Scheme::Bip340).await;
    let before = keys(&mut c).await;
    for (k, scheme) in [(&ed, Scheme::Ed25519), (&bip, Scheme::Bip340)] {
        let sig = c
            .sign(sign_req(&k.key_id, vec![5; 32]))
            .await
            .unwrap()
            .into_inner();
        let verify = |signature: Vec<u8>, message: Vec<u8>| {
            let mut c = c.clone();
            let public_key = sig.verifying_key.clone();
            async move {
                c.verify(VerifyRequest {
                    scheme: scheme as i32,
                    public_key,
                    message,
                    signature,
                })
                .await
                .unwrap()
                .into_inner()
                .valid
            }
        };
        assert!(
            verify(sig.signature.clone(), vec![5; 32]).await,
            "the real signature"
        );
        assert!(!verify(vec![0xa5; 64], vec![5; 32]).await, "garbage");
        assert!(!verify(vec![0; 64], vec![5; 32]).await, "zeros");
        let mut flipped = sig.signature.clone();
        flipped[40] ^= 1;
        assert!(!verify(flipped, vec![5; 32]).await, "flipped s");
        assert!(
            !verify(sig.signature.clone(), vec![6; 32]).await,
            "other message"
        );
    }
    let s = c
        .verify(VerifyRequest {
            scheme: Scheme::Ed25519 as i32,
            public_key: ed.public_key.clone(),
            message: vec![1],
            signature: vec![1; 63],
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["signature", "64 bytes"]);
    assert_eq!(keys(&mut c).await, before);
}

#[tokio::test]
async fn taproot_root_of_wrong_length_and_ed25519_with_root_are_invalid_argument() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let bip = key(&mut c, Scheme::Bip340).await;
    let ed = key(&mut c, Scheme::Ed25519).await;
    let mut req = sign_req(&bip.key_id, vec![1; 32]);
    req.taproot_merkle_root = Some(vec![0; 31]);
    let s = c.sign(req).await.unwrap_err();
    assert_status(
        &s,
        Code::InvalidArgument,
        &["taproot_merkle_root", "31 bytes"],
    );
    let mut req = sign_req(&ed.key_id, vec![1; 32]);
    req.taproot_merkle_root = Some(Vec::new());
    let s = c.sign(req).await.unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["taproot_merkle_root"]);
    let s = c
        .sign(sign_req(&ed.key_id, vec![0; 64 * 1024 + 1]))
        .await
        .unwrap_err();
    assert_status(&s, Code::InvalidArgument, &["message", "65536"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_and_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let k = key(&mut c, Scheme::Ed25519).await;
    let mut req = sign_req(&k.key_id, b"pay 5".to_vec());
    req.idempotency_key = "req-1".into();
    let first = c.sign(req.clone()).await.unwrap().into_inner();
    let again = c.sign(req.clone()).await.unwrap().into_inner();
    assert_eq!(
        first, again,
        "stored response returned (FROST nonces differ per run)"
    );
    let mut other = req.clone();
    other.message = b"pay 500".to_vec();
    let s = c.sign(other).await.unwrap_err();
    assert_status(&s, Code::FailedPrecondition, &["idempotency_key"]);
    // Concurrent first uses of one idempotency key all get the one stored response.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let mut c = c.clone();
        let mut req = req.clone();
        req.idempotency_key = "req-2".into();
        tasks.push(tokio::spawn(async move {
            c.sign(req).await.unwrap().into_inner()
        }));
    }
    let mut responses = Vec::new();
    for t in tasks {
        responses.push(t.await.unwrap());
    }
    assert!(
        responses.iter().all(|r| *r == responses[0]),
        "one stored response"
    );
    assert_ne!(
        responses[0], first,
        "a different idempotency key signs afresh"
    );
}

#[tokio::test]
async fn overload_is_resource_exhausted_with_retry_hint() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &["--max-queue", "4"]);
    let mut c = server.client().await;
    let k = key(&mut c, Scheme::Ed25519).await;
    let s = c
        .sign_batch(SignBatchRequest {
            key_id: k.key_id.clone(),
            messages: vec![vec![1; 8]; 5],
            taproot_merkle_root: None,
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::ResourceExhausted, &["overloaded", "retry after"]);
    assert!(s.metadata().get("retry-after-ms").is_some());
    let metrics = server.scrape();
    assert!(
        !metrics.contains("tessera_signatures_total{"),
        "nothing was signed"
    );
    let ok = c
        .sign_batch(SignBatchRequest {
            key_id: k.key_id,
            messages: vec![vec![1; 8]; 4],
            taproot_merkle_root: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(ok.signatures.len(), 4);
}
