//! Threshold-ECDSA requests with bad fields are INVALID_ARGUMENT naming the field; without a
//! presignature pool every signature presigns on demand and still verifies; Verify refuses a
//! high-S twin and garbage. A batch larger than the pool signs the pool's share on the
//! signature workers and presigns the rest on the queue for on-demand presigning.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use accel_api::curves::k256;
use api_proto::{Scheme, SignBatchRequest, SignRequest, VerifyRequest};
use k256::elliptic_curve::PrimeField;
use service_core::PresignPool;

use crate::common::{Harness, Options, assert_invalid, create_req, sign_req, sum_samples};

#[tokio::test]
async fn ecdsa_requests_with_bad_fields_are_invalid_argument() {
    let h = Harness::with(Options {
        pool: PresignPool {
            target: 0,
            batch: 1,
        },
        ..Options::default()
    });
    let before = h.snapshot().await;
    let s = h
        .create(create_req(Scheme::EcdsaSecp256k1 as i32, 1, 3, ""))
        .await
        .unwrap_err();
    assert_invalid(&s, "threshold", &["threshold", "≥ 2"]);
    h.assert_unchanged(&before).await;

    let k = h.key(Scheme::EcdsaSecp256k1, "e2e ecdsa").await;
    assert_eq!(k.scheme, Scheme::EcdsaSecp256k1 as i32);
    assert_eq!(k.public_key.len(), 33);
    assert!(matches!(k.public_key[0], 2 | 3));
    assert_eq!(k.ethereum_address.len(), 42);
    assert!(k.ethereum_address.starts_with("0x"));
    let sign = |message: Vec<u8>, root: Option<Vec<u8>>| SignRequest {
        taproot_merkle_root: root,
        ..sign_req(&k.key_id, message)
    };
    let before = h.snapshot().await;
    let s = h.sign(sign(vec![1; 31], None)).await.unwrap_err();
    assert_invalid(&s, "message", &["message", "32-byte prehash"]);
    let s = h
        .sign(sign(vec![1; 32], Some(Vec::new())))
        .await
        .unwrap_err();
    assert_invalid(&s, "taproot_merkle_root", &["taproot_merkle_root"]);
    h.assert_unchanged(&before).await;

    // With no pool every signature presigns on demand, and still verifies.
    let prehash: Vec<u8> = (0..32u8).map(|i| i.wrapping_mul(37) ^ 0xa5).collect();
    let r = h.sign(sign(prehash.clone(), None)).await.unwrap();
    assert_eq!(r.verifying_key, k.public_key);
    test_support::ecdsa_check(&k.public_key, &prehash, &r.signature, r.recovery_id);
    assert_eq!(h.signature_events(), 1);

    let before = h.snapshot().await;
    let s = h
        .verify(VerifyRequest {
            scheme: Scheme::EcdsaSecp256k1 as i32,
            public_key: k.public_key[1..].to_vec(),
            message: prehash.clone(),
            signature: r.signature.clone(),
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "public_key", &["public_key", "33 bytes"]);
    let s = h
        .verify(VerifyRequest {
            scheme: Scheme::EcdsaSecp256k1 as i32,
            public_key: k.public_key.clone(),
            message: vec![1; 33],
            signature: r.signature.clone(),
        })
        .await
        .unwrap_err();
    assert_invalid(&s, "message", &["message", "32-byte prehash"]);
    // The service's own Verify accepts the signature and refuses its high-S twin (libsecp256k1's
    // rule) and garbage.
    let verify = |signature: Vec<u8>| {
        h.verify(VerifyRequest {
            scheme: Scheme::EcdsaSecp256k1 as i32,
            public_key: k.public_key.clone(),
            message: prehash.clone(),
            signature,
        })
    };
    assert!(verify(r.signature.clone()).await.unwrap());
    let mut high = r.signature.clone();
    let s_low = k256::Scalar::from_repr(<[u8; 32]>::try_from(&high[32..]).unwrap().into()).unwrap();
    high[32..].copy_from_slice(&(-s_low).to_bytes());
    for signature in [high, vec![0xff; 64]] {
        assert!(!verify(signature).await.unwrap());
    }
    h.assert_unchanged(&before).await;

    let text = h.scrape();
    let used = |source: &str| {
        sum_samples(
            &text,
            "tessera_presignatures_used_total",
            &[&format!(r#"source="{source}""#)],
        )
    };
    assert_eq!(used("pool"), 0.0, "{text}");
    assert_eq!(used("on_demand"), 1.0, "{text}");
}

/// A SignBatch of more messages than the key's pool holds: the pooled presignatures are taken
/// when the request is queued and sign on the cheap `sign` queue; the others go to the
/// `sign_on_demand` queue (served by the background workers), and every signature verifies,
/// in message order.
#[tokio::test]
async fn a_batch_beyond_the_pool_presigns_the_rest_on_the_on_demand_queue() {
    const POOL: usize = 4;
    let h = Harness::with(Options {
        pool: PresignPool {
            target: POOL,
            batch: POOL,
        },
        ..Options::default()
    });
    let k = h.key(Scheme::EcdsaSecp256k1, "pool and on demand").await;
    // The pool fills in the background after key creation.
    wait_for_ready(&h, POOL).await;
    sign_checked(&h, &k, POOL as u8 + 3).await;
    let text = h.scrape();
    let items = |op: &str| {
        sum_samples(
            &text,
            "tessera_batch_size_sum",
            &[&format!(r#"op="{op}""#), r#"scheme="ecdsa_secp256k1""#],
        )
    };
    assert_eq!(items("sign"), POOL as f64, "{text}");
    assert_eq!(items("sign_on_demand"), 3.0, "{text}");
    let used = |source: &str| {
        sum_samples(
            &text,
            "tessera_presignatures_used_total",
            &[&format!(r#"source="{source}""#)],
        )
    };
    assert_eq!(used("pool"), POOL as f64, "{text}");
    assert_eq!(used("on_demand"), 3.0, "{text}");
}

/// A key's pool starts small and grows with use: after creation it fills to 4 however large
/// the configured pool, and a batch that finds it short doubles it (to 8 here), never past
/// the configured size.
#[tokio::test]
async fn a_keys_pool_starts_small_and_grows_when_signing_finds_it_short() {
    let h = Harness::with(Options {
        pool: PresignPool {
            target: 12,
            batch: 4,
        },
        ..Options::default()
    });
    let k = h.key(Scheme::EcdsaSecp256k1, "growing pool").await;
    wait_for_ready(&h, 4).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(ready(&h), 4.0, "a new key's pool stops at 4");

    // Five messages: four from the pool and one on demand, so the target doubles to 8.
    sign_checked(&h, &k, 5).await;
    wait_for_ready(&h, 8).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(ready(&h), 8.0, "the grown pool stops at 8");
    // Short again: 16 would pass the configured 12, which caps it.
    sign_checked(&h, &k, 9).await;
    wait_for_ready(&h, 12).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(ready(&h), 12.0, "the configured size caps the pool");
}

/// Presignatures ready in the harness's pools.
fn ready(h: &Harness) -> f64 {
    sum_samples(&h.scrape(), "tessera_presignatures_ready", &[])
}

/// Waits (up to 120 s) until `n` presignatures are ready.
async fn wait_for_ready(h: &Harness, n: usize) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while ready(h) < n as f64 {
        assert!(
            std::time::Instant::now() < deadline,
            "the pool never reached {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// Signs `n` messages with `k` in one SignBatch and checks every signature.
async fn sign_checked(h: &Harness, k: &api_proto::KeyInfo, n: u8) {
    let messages: Vec<Vec<u8>> = (0..n).map(|i| vec![i ^ 0x3c; 32]).collect();
    let r = h
        .sign_batch(SignBatchRequest {
            key_id: k.key_id.clone(),
            messages: messages.clone(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap();
    assert_eq!(r.signatures.len(), messages.len());
    for (m, s) in messages.iter().zip(&r.signatures) {
        test_support::ecdsa_check(&k.public_key, m, &s.signature, s.recovery_id);
    }
}
