//! Happy paths of the query RPCs (GetKey, ListKeys with paging, GetStatus) and of signing with
//! each scheme, every signature checked with independent verifiers; the request metrics carry
//! the backend that did the work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::{KeyInfo, Scheme, SignBatchRequest};
use service_core::audit::Event;

use crate::common::{Harness, sign_req, sum_samples};

#[tokio::test]
async fn get_key_list_keys_and_get_status() {
    let h = Harness::new();
    let empty = h.list(0, "").await.unwrap();
    assert!(empty.keys.is_empty() && empty.next_page_token.is_empty());
    let status = h.status().await;
    assert_eq!(status.key_count, 0);
    assert_eq!(status.version, env!("CARGO_PKG_VERSION"));
    assert_eq!(status.backend, "cpu");
    assert_eq!(status.mode, "embedded");

    let mut created: Vec<KeyInfo> = Vec::new();
    for (scheme, len) in [
        (Scheme::Ed25519, 32),
        (Scheme::Bip340, 32),
        (Scheme::EcdsaSecp256k1, 33),
    ] {
        let label = format!("{scheme:?} key");
        let k = h.key(scheme, &label).await;
        assert_eq!(k.scheme, scheme as i32);
        assert_eq!((k.threshold, k.parties), (2, 3));
        assert_eq!(k.label, label);
        assert_eq!(k.public_key.len(), len);
        assert!(k.created_at.is_some_and(|t| t.seconds > 0));
        if scheme == Scheme::EcdsaSecp256k1 {
            assert!(matches!(k.public_key[0], 2 | 3));
            assert_eq!(k.ethereum_address.len(), 42);
            assert!(k.ethereum_address.starts_with("0x"));
        } else {
            assert!(k.ethereum_address.is_empty());
        }
        assert_eq!(h.get_key(&k.key_id).await.unwrap(), k, "GetKey");
        created.push(k);
    }
    created.sort_by(|a, b| a.key_id.cmp(&b.key_id));

    // ListKeys: id order, page by page.
    assert_eq!(
        h.list(0, "").await.unwrap().keys,
        created,
        "default page size"
    );
    let p1 = h.list(2, "").await.unwrap();
    assert_eq!(p1.keys, created[..2]);
    assert_eq!(p1.next_page_token, created[1].key_id);
    let p2 = h.list(2, &p1.next_page_token).await.unwrap();
    assert_eq!(p2.keys, created[2..]);
    assert!(p2.next_page_token.is_empty(), "last page");
    let exact = h.list(3, "").await.unwrap();
    assert_eq!(exact.keys, created);
    assert!(exact.next_page_token.is_empty());
    assert_eq!(h.status().await.key_count, 3);
    assert_eq!(h.key_events(), 3);

    // Each key signs; the signatures verify independently and are audited and counted.
    for k in &created {
        let m = vec![0x5a; 32];
        let r = h.sign(sign_req(&k.key_id, m.clone())).await.unwrap();
        assert_eq!(r.verifying_key, k.public_key);
        match Scheme::try_from(k.scheme).unwrap() {
            Scheme::Ed25519 => {
                assert!(test_support::ed25519_ok(&k.public_key, &m, &r.signature));
                assert_eq!(r.recovery_id, 0);
            }
            Scheme::Bip340 => {
                assert!(test_support::bip340_ok(&k.public_key, &m, &r.signature));
                assert_eq!(r.recovery_id, 0);
            }
            _ => test_support::ecdsa_check(&k.public_key, &m, &r.signature, r.recovery_id),
        }
    }
    let events = h.events();
    assert_eq!(events.len(), 6);
    for k in &created {
        assert!(events.iter().any(|e| matches!(
            e,
            Event::SignatureIssued { key_id, message_sha256, .. }
                if *key_id == k.key_id && message_sha256.len() == 64
        )));
    }
    let text = h.scrape();
    assert_eq!(sum_samples(&text, "tessera_signatures_total", &[]), 3.0);
    for scheme in ["ed25519", "bip340", "ecdsa_secp256k1"] {
        assert_eq!(
            sum_samples(
                &text,
                "tessera_request_duration_seconds_count",
                &[
                    r#"rpc="Sign""#,
                    &format!(r#"scheme="{scheme}""#),
                    r#"backend="cpu""#,
                    r#"outcome="OK""#,
                ],
            ),
            1.0,
            "{text}"
        );
    }
    assert!(
        text.contains(r#"tessera_accel_op_seconds_count{backend="cpu""#),
        "{text}"
    );
}

#[tokio::test]
async fn bip340_key_path_and_script_root_signatures_verify_under_the_output_key() {
    let h = Harness::new();
    let k = h.key(Scheme::Bip340, "taproot").await;
    let root = [0x33; 32];
    for (taproot_merkle_root, tweak) in [(Vec::new(), None), (root.to_vec(), Some(&root))] {
        let messages: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 32]).collect();
        let out = h
            .sign_batch(SignBatchRequest {
                key_id: k.key_id.clone(),
                messages: messages.clone(),
                taproot_merkle_root: Some(taproot_merkle_root),
            })
            .await
            .unwrap();
        let q = test_support::taproot_output_key(&k.public_key, tweak);
        assert_ne!(q, k.public_key);
        for (m, r) in messages.iter().zip(&out.signatures) {
            assert_eq!(r.verifying_key, q);
            assert!(test_support::bip340_ok(&q, m, &r.signature));
        }
    }
    assert_eq!(h.signature_events(), 8);
}
