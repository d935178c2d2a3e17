//! Idempotency keys: a retried CreateKey, ImportKey or Sign returns the stored response and
//! writes nothing; the same idempotency key with another request is FAILED_PRECONDITION; the
//! scopes (CreateKey, ImportKey, each key's Sign) do not collide.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::signer_service_server::SignerService;
use api_proto::{CreateKeyRequest, ImportKeyRequest, Scheme};
use tonic::{Code, Request};

use crate::common::{Harness, assert_status, create_req, sign_req};

#[tokio::test]
async fn create_key_retry_returns_the_same_key_and_other_fields_conflict() {
    let h = Harness::new();
    let req = CreateKeyRequest {
        idempotency_key: "create-1".into(),
        ..create_req(Scheme::Ed25519 as i32, 2, 3, "idem")
    };
    let first = h.create(req.clone()).await.unwrap();
    let again = h.create(req.clone()).await.unwrap();
    assert_eq!(first, again, "the stored response");
    assert_eq!(
        h.keys().await,
        std::slice::from_ref(&first),
        "no second key"
    );
    assert_eq!(h.status().await.key_count, 1);
    assert_eq!(h.key_events(), 1);

    let before = h.snapshot().await;
    let conflicts = [
        CreateKeyRequest {
            threshold: 3,
            ..req.clone()
        },
        CreateKeyRequest {
            label: "other label".into(),
            ..req.clone()
        },
        CreateKeyRequest {
            parties: 4,
            ..req.clone()
        },
        CreateKeyRequest {
            scheme: Scheme::Bip340 as i32,
            ..req.clone()
        },
    ];
    for other in conflicts {
        let s = h.create(other.clone()).await.unwrap_err();
        assert_status(&s, Code::FailedPrecondition, &["idempotency_key"]);
        assert!(
            tonic_types::StatusExt::get_details_bad_request(&s).is_none(),
            "not a field violation"
        );
    }
    h.assert_unchanged(&before).await;

    // The key signs, and the signature verifies independently.
    let r = h
        .sign(sign_req(&first.key_id, b"created once".to_vec()))
        .await
        .unwrap();
    assert!(test_support::ed25519_ok(
        &first.public_key,
        b"created once",
        &r.signature
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_create_key_retries_make_one_key() {
    let h = Harness::new();
    let req = CreateKeyRequest {
        idempotency_key: "create-2".into(),
        ..create_req(Scheme::Ed25519 as i32, 2, 3, "raced")
    };
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let api = h.api.clone();
        let req = req.clone();
        tasks.push(tokio::spawn(async move {
            api.create_key(Request::new(req))
                .await
                .unwrap()
                .into_inner()
        }));
    }
    let mut created = Vec::new();
    for t in tasks {
        created.push(t.await.unwrap());
    }
    assert!(
        created.iter().all(|k| *k == created[0]),
        "one stored response"
    );
    assert_eq!(h.keys().await, [created[0].clone()], "no orphan key");
    assert_eq!(h.status().await.key_count, 1);
    assert_eq!(h.key_events(), 1);
}

#[tokio::test]
async fn import_key_retry_returns_the_same_key_and_another_secret_conflicts() {
    let h = Harness::new();
    let req = ImportKeyRequest {
        scheme: Scheme::Ed25519 as i32,
        secret_key: vec![9; 32],
        threshold: 2,
        parties: 3,
        label: "imported".into(),
        idempotency_key: "import-1".into(),
    };
    let first = h.import(req.clone()).await.unwrap();
    let again = h.import(req.clone()).await.unwrap();
    assert_eq!(first, again, "the stored response");
    assert_eq!(
        h.keys().await,
        std::slice::from_ref(&first),
        "imported once"
    );
    assert_eq!(h.status().await.key_count, 1);

    let before = h.snapshot().await;
    let s = h
        .import(ImportKeyRequest {
            secret_key: vec![10; 32],
            ..req.clone()
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::FailedPrecondition, &["idempotency_key"]);
    let s = h
        .import(ImportKeyRequest {
            threshold: 3,
            ..req.clone()
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::FailedPrecondition, &["idempotency_key"]);
    h.assert_unchanged(&before).await;

    // Scopes are separate: the same string on CreateKey makes a new key.
    let created = h
        .create(CreateKeyRequest {
            idempotency_key: "import-1".into(),
            ..create_req(Scheme::Ed25519 as i32, 2, 3, "created")
        })
        .await
        .unwrap();
    assert_ne!(created.key_id, first.key_id);
    assert_eq!(h.status().await.key_count, 2);

    let r = h
        .sign(sign_req(&first.key_id, b"imported once".to_vec()))
        .await
        .unwrap();
    assert_eq!(r.verifying_key, first.public_key);
    assert!(test_support::ed25519_ok(
        &first.public_key,
        b"imported once",
        &r.signature
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotency_key_replays_and_conflicts() {
    let h = Harness::new();
    let k = h.key(Scheme::Ed25519, "errors").await;
    let mut req = sign_req(&k.key_id, b"pay 5".to_vec());
    req.idempotency_key = "req-1".into();
    let first = h.sign(req.clone()).await.unwrap();
    assert!(test_support::ed25519_ok(
        &k.public_key,
        b"pay 5",
        &first.signature
    ));
    let again = h.sign(req.clone()).await.unwrap();
    assert_eq!(
        first, again,
        "stored response returned (FROST nonces differ per run)"
    );
    assert_eq!(h.signature_events(), 1, "the replay recorded nothing");
    let before = h.snapshot().await;
    let mut other = req.clone();
    other.message = b"pay 500".to_vec();
    let s = h.sign(other).await.unwrap_err();
    assert_status(&s, Code::FailedPrecondition, &["idempotency_key"]);
    let mut other = req.clone();
    other.taproot_merkle_root = Some(Vec::new());
    let s = h.sign(other).await.unwrap_err();
    assert_eq!(s.code(), Code::InvalidArgument, "Ed25519 takes no root");
    h.assert_unchanged(&before).await;
    // Concurrent first uses of one idempotency key all get the one stored response.
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let api = h.api.clone();
        let mut req = req.clone();
        req.idempotency_key = "req-2".into();
        tasks.push(tokio::spawn(async move {
            api.sign(Request::new(req)).await.unwrap().into_inner()
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
    assert!(test_support::ed25519_ok(
        &k.public_key,
        b"pay 5",
        &responses[0].signature
    ));
    assert_eq!(h.signature_events(), 2, "one record per idempotency key");
}
