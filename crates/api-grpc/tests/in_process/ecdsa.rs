//! Threshold-ECDSA requests with bad fields are INVALID_ARGUMENT naming the field; without a
//! presignature pool every signature presigns on demand and still verifies; Verify refuses a
//! high-S twin and garbage.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use accel_api::curves::k256;
use api_proto::{Scheme, SignRequest, VerifyRequest};
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
