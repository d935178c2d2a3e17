//! End-to-end: 2-of-3 Ed25519 and BIP340 keys sign 1,000 messages each over gRPC (Sign and
//! SignBatch mixed); every signature is checked by independent verifiers (ed25519-dalek
//! `verify_strict`; k256 `schnorr` and libsecp256k1 for BIP340); Taproot output keys are
//! computed independently (BIP341 TapTweak with libsecp256k1); keys survive a restart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::signer_service_client::SignerServiceClient;
use api_proto::{
    CreateKeyRequest, KeyInfo, ListKeysRequest, Scheme, SignBatchRequest, SignRequest, SignResponse,
};
use sha2::{Digest, Sha256};
use test_support::{Server, bip340_ok, ed25519_ok, taproot_output_key};
use tonic::transport::Channel;

const PER_SCHEME: usize = 1000;
const SINGLE: usize = 200;
const BATCH: usize = 100;

async fn create(c: &mut SignerServiceClient<Channel>, scheme: Scheme) -> KeyInfo {
    let k = c
        .create_key(CreateKeyRequest {
            scheme: scheme as i32,
            threshold: 2,
            parties: 3,
            label: format!("e2e {scheme:?}"),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((k.threshold, k.parties), (2, 3));
    assert_eq!(k.public_key.len(), 32);
    assert_eq!(k.scheme, scheme as i32);
    k
}

fn message(scheme: Scheme, i: usize) -> Vec<u8> {
    let m = Sha256::digest(format!("message {i}").as_bytes()).to_vec();
    match scheme {
        // Ed25519 messages of varied lengths, BIP340 exactly 32 bytes.
        Scheme::Ed25519 => m[..(i % 33)].to_vec(),
        _ => m,
    }
}

/// Signs PER_SCHEME messages: SINGLE concurrent `Sign` calls, the rest in `SignBatch` calls.
async fn sign_many(
    c: &SignerServiceClient<Channel>,
    k: &KeyInfo,
    scheme: Scheme,
) -> Vec<(Vec<u8>, SignResponse)> {
    let mut tasks = Vec::new();
    for i in 0..SINGLE {
        let mut c = c.clone();
        let key_id = k.key_id.clone();
        tasks.push(tokio::spawn(async move {
            let m = message(scheme, i);
            let r = c
                .sign(SignRequest {
                    key_id,
                    message: m.clone(),
                    idempotency_key: String::new(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap()
                .into_inner();
            vec![(m, r)]
        }));
    }
    for start in (SINGLE..PER_SCHEME).step_by(BATCH) {
        let mut c = c.clone();
        let key_id = k.key_id.clone();
        tasks.push(tokio::spawn(async move {
            let msgs: Vec<Vec<u8>> = (start..start + BATCH).map(|i| message(scheme, i)).collect();
            let r = c
                .sign_batch(SignBatchRequest {
                    key_id,
                    messages: msgs.clone(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(r.signatures.len(), BATCH);
            msgs.into_iter().zip(r.signatures).collect()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.unwrap());
    }
    assert_eq!(out.len(), PER_SCHEME);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sign_verify_taproot_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let ed = create(&mut c, Scheme::Ed25519).await;
    let bip = create(&mut c, Scheme::Bip340).await;

    let (ed_sigs, bip_sigs) = tokio::join!(
        sign_many(&c, &ed, Scheme::Ed25519),
        sign_many(&c, &bip, Scheme::Bip340)
    );
    for (m, r) in &ed_sigs {
        assert_eq!(r.verifying_key, ed.public_key);
        assert_eq!(r.signature.len(), 64);
        assert!(
            ed25519_ok(&ed.public_key, m, &r.signature),
            "ed25519 signature rejected"
        );
    }
    for (m, r) in &bip_sigs {
        assert_eq!(
            r.verifying_key, bip.public_key,
            "untweaked: the internal key"
        );
        assert!(
            bip340_ok(&bip.public_key, m, &r.signature),
            "bip340 signature rejected"
        );
    }

    // Taproot: BIP86 key path (empty root) and a script root, single and batch.
    let root = [0x42u8; 32];
    for (param, expected_root) in [(Vec::new(), None), (root.to_vec(), Some(root))] {
        let q = taproot_output_key(&bip.public_key, expected_root.as_ref());
        assert_ne!(q, bip.public_key);
        let m = message(Scheme::Bip340, 7);
        let r = c
            .sign(SignRequest {
                key_id: bip.key_id.clone(),
                message: m.clone(),
                idempotency_key: String::new(),
                taproot_merkle_root: Some(param.clone()),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(r.verifying_key, q, "output key computed independently");
        assert!(bip340_ok(&q, &m, &r.signature));
        assert!(
            !bip340_ok(&bip.public_key, &m, &r.signature),
            "not under the internal key"
        );
        let msgs: Vec<Vec<u8>> = (0..5).map(|i| message(Scheme::Bip340, 5000 + i)).collect();
        let rs = c
            .sign_batch(SignBatchRequest {
                key_id: bip.key_id.clone(),
                messages: msgs.clone(),
                taproot_merkle_root: Some(param),
            })
            .await
            .unwrap()
            .into_inner();
        for (m, r) in msgs.iter().zip(&rs.signatures) {
            assert_eq!(r.verifying_key, q);
            assert!(bip340_ok(&q, m, &r.signature));
        }
    }

    // Metrics saw the work.
    let metrics = server.scrape();
    let sigs = client::metrics::sum_samples(&metrics, "tessera_signatures_total", None);
    assert_eq!(sigs, (2 * PER_SCHEME + 12) as f64);

    // Restart on the same data dir: keys are listed and still sign.
    assert!(server.terminate().success());
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let listed = c
        .list_keys(ListKeysRequest {
            page_size: 1,
            page_token: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.keys.len(), 1);
    assert!(!listed.next_page_token.is_empty());
    let rest = c
        .list_keys(ListKeysRequest {
            page_size: 10,
            page_token: listed.next_page_token.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(rest.next_page_token.is_empty());
    let all: Vec<KeyInfo> = listed.keys.into_iter().chain(rest.keys).collect();
    assert_eq!(
        all,
        vec![ed.clone(), bip.clone()],
        "creation order, same metadata"
    );
    let m = b"after restart".to_vec();
    let r = c
        .sign(SignRequest {
            key_id: ed.key_id.clone(),
            message: m.clone(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ed25519_ok(&ed.public_key, &m, &r.signature));
    let m = Sha256::digest(b"after restart").to_vec();
    let r = c
        .sign(SignRequest {
            key_id: bip.key_id.clone(),
            message: m.clone(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(bip340_ok(&bip.public_key, &m, &r.signature));
    let status = c
        .get_status(api_proto::GetStatusRequest {})
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.key_count, 2);
    assert_eq!(status.mode, "embedded");
    assert_eq!(status.backend, "cpu");
    assert!(server.terminate().success());

    // The audit trail: a KeyCreated per key and a SignatureIssued (message hash only) per
    // signature, chained under the KEK (here the generated DATA_DIR/kek).
    use service_core::AuditLog;
    use service_core::audit::{ChainKey, Event};
    use store_redb::RedbStore;
    let kek =
        service_core::Kek::from_hex(&std::fs::read_to_string(dir.path().join("kek")).unwrap())
            .unwrap();
    let store = RedbStore::open(dir.path(), ChainKey::of(&kek)).unwrap();
    let total = 2 + 2 * PER_SCHEME + 12 + 2;
    assert_eq!(store.verify_audit_chain().unwrap(), total as u64);
    let events = store.events(None, total + 1).unwrap();
    assert!(matches!(&events[0].1, Event::KeyCreated { key_id, .. } if *key_id == ed.key_id));
    let issued = events
        .iter()
        .filter(|(_, e)| {
            matches!(e, Event::SignatureIssued { message_sha256, .. }
            if *message_sha256 == hex::encode(Sha256::digest(b"after restart")))
        })
        .count();
    assert_eq!(
        issued, 1,
        "the Ed25519 message signed after the restart, by its hash"
    );
}

#[tokio::test]
async fn imported_key_signs_under_the_same_public_key() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    // Ed25519: the RFC 8032 seed's public key.
    let seed = [0x11u8; 32];
    let expected = ed25519_dalek::SigningKey::from_bytes(&seed)
        .verifying_key()
        .to_bytes();
    let k = c
        .import_key(api_proto::ImportKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            secret_key: seed.to_vec(),
            threshold: 2,
            parties: 3,
            label: "imported".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(k.public_key, expected.to_vec());
    let r = c
        .sign(SignRequest {
            key_id: k.key_id.clone(),
            message: b"migrated".to_vec(),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(ed25519_ok(&expected, b"migrated", &r.signature));
    // BIP340: the x-only key of the secret scalar, by libsecp256k1.
    let sk = [0x22u8; 32];
    let kp = secp256k1::Keypair::from_seckey_byte_array(secp256k1::SECP256K1, sk).unwrap();
    let (xonly, _) = kp.x_only_public_key();
    let k = c
        .import_key(api_proto::ImportKeyRequest {
            scheme: Scheme::Bip340 as i32,
            secret_key: sk.to_vec(),
            threshold: 2,
            parties: 3,
            label: "imported".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(k.public_key, xonly.serialize().to_vec());
}
