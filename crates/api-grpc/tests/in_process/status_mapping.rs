//! The error→status mapping beyond INVALID_ARGUMENT: overload is RESOURCE_EXHAUSTED with a
//! `RetryInfo` detail (no private metadata), and an internal fault is INTERNAL with only a
//! request id, never the error's text.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::{Scheme, SignBatchRequest};
use service_core::ports::{KeyOrigin, KeyRecord, Sealer};
use service_core::{Kek, KeyRepository, Scheme as CoreScheme};
use tonic::Code;

use std::sync::Arc;

use crate::common::{Harness, KEK, Options, assert_status, sign_req, sum_samples};

#[tokio::test]
async fn overload_is_resource_exhausted_with_retry_hint() {
    let h = Harness::with(Options {
        max_queue: 4,
        ..Options::default()
    });
    let k = h.key(Scheme::Ed25519, "errors").await;
    let before = h.snapshot().await;
    let s = h
        .sign_batch(SignBatchRequest {
            key_id: k.key_id.clone(),
            messages: vec![vec![1; 8]; 5],
            taproot_merkle_root: None,
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::ResourceExhausted, &["overloaded", "retry after"]);
    let retry = tonic_types::StatusExt::get_details_retry_info(&s).expect("RetryInfo details");
    let delay = retry.retry_delay.expect("a retry delay");
    assert!(!delay.is_zero());
    assert!(
        s.message()
            .contains(&format!("retry after {} ms", delay.as_millis())),
        "the message and RetryInfo agree: {:?} vs {delay:?}",
        s.message()
    );
    assert!(
        s.metadata().get("retry-after-ms").is_none(),
        "no private header"
    );
    h.assert_unchanged(&before).await;
    assert!(
        !h.scrape().contains("tessera_signatures_total{"),
        "nothing was signed"
    );
    assert_eq!(
        sum_samples(
            &h.scrape(),
            "tessera_request_duration_seconds_count",
            &[r#"rpc="SignBatch""#, r#"outcome="RESOURCE_EXHAUSTED""#],
        ),
        1.0
    );
    let messages = vec![vec![1; 8]; 4];
    let ok = h
        .sign_batch(SignBatchRequest {
            key_id: k.key_id,
            messages: messages.clone(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap();
    assert_eq!(ok.signatures.len(), 4);
    for (m, r) in messages.iter().zip(&ok.signatures) {
        assert!(test_support::ed25519_ok(&k.public_key, m, &r.signature));
    }
    assert_eq!(h.signature_events(), 4);
}

#[tokio::test]
async fn internal_error_carries_only_a_request_id() {
    const KEY_ID: &str = "0000000000000000000000000000c0de";
    // A key record whose key material was sealed under another KEK (its metadata
    // authenticates under this one).
    let other = Kek::from_bytes([8; 32]);
    let record = KeyRecord {
        key_id: KEY_ID.into(),
        scheme: CoreScheme::Ed25519,
        threshold: 2,
        parties: 3,
        public_key: vec![1; 32],
        label: "sealed elsewhere".into(),
        created_at_ms: 1,
        owner: String::new(),
        sealed: other.seal(KEY_ID, &[3; 100]).unwrap(),
        mac: Vec::new(),
    }
    .authenticate(&Kek::from_bytes(KEK));
    let h = Harness::new();
    assert_eq!(
        h.store
            .insert_key(&record, KeyOrigin::Import, None)
            .unwrap(),
        None
    );
    // Its public information needs no decryption.
    let info = h.get_key(KEY_ID).await.unwrap();
    assert_eq!(info.label, "sealed elsewhere");
    let before = h.snapshot().await;
    assert_eq!(before.key_count, 1);

    let single = h.sign(sign_req(KEY_ID, vec![1; 32])).await.unwrap_err();
    let batch = h
        .sign_batch(SignBatchRequest {
            key_id: KEY_ID.into(),
            messages: vec![vec![1; 32]; 2],
            taproot_merkle_root: None,
        })
        .await
        .unwrap_err();
    let mut ids = Vec::new();
    for s in [&single, &batch] {
        assert_status(s, Code::Internal, &["request id"]);
        let text = s.message().to_lowercase();
        for secret in [KEY_ID, "decrypt", "kek", "key-encryption", "tamper"] {
            assert!(!text.contains(secret), "{:?} leaks {secret:?}", s.message());
        }
        assert!(s.details().is_empty(), "no details: {s:?}");
        assert!(s.metadata().is_empty(), "no metadata: {s:?}");
        let id = s.message().rsplit(' ').next().unwrap().to_owned();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "request id {id:?}"
        );
        ids.push(id);
    }
    assert_ne!(ids[0], ids[1], "a fresh request id per failure");
    h.assert_unchanged(&before).await;
    assert_eq!(h.signature_events(), 0, "nothing was signed");
    let text = h.scrape();
    for rpc in ["Sign", "SignBatch"] {
        assert_eq!(
            sum_samples(
                &text,
                "tessera_request_duration_seconds_count",
                &[&format!(r#"rpc="{rpc}""#), r#"outcome="INTERNAL""#],
            ),
            1.0,
            "{text}"
        );
    }
}

#[tokio::test]
async fn edited_key_metadata_is_detected_not_reported() {
    let h = Harness::new();
    let k = h.key(Scheme::Ed25519, "genuine").await;
    let before = h.signature_events();
    // Someone with write access to the store, but not the KEK, swaps in their own public key.
    let mut rec = h.store.get_key(&k.key_id).unwrap().unwrap();
    rec.public_key = vec![0xee; 32];
    h.store.overwrite_key(rec);
    // A fresh API over the same store (no cached copy of the key).
    let h2 = Harness::over(Arc::clone(&h.store), Options::default());
    let s = h2.get_key(&k.key_id).await.unwrap_err();
    assert_eq!(s.code(), tonic::Code::Internal, "{s:?}");
    // Not the edited public key (the message's random request id may hold "ee" by chance).
    assert!(!s.message().contains(&"ee".repeat(32)), "{s:?}");
    assert_eq!(
        h2.list(0, "").await.unwrap_err().code(),
        tonic::Code::Internal
    );
    let s = h2
        .sign(sign_req(&k.key_id, b"m".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), tonic::Code::Internal);
    assert_eq!(
        h2.signature_events(),
        before,
        "nothing signed with an edited record"
    );
}
