//! End to end over gRPC: a 2-of-3 threshold-ECDSA (DKLs23) key signs 1,000 prehashes (Sign
//! and SignBatch mixed); every signature is low-S, verifies under libsecp256k1 and k256, and
//! recovers to the key with its recovery id. Imported keys keep their Ethereum address
//! (web3.js vectors). The key signs again after a restart; the presignature pool is visible
//! in the metrics. (ECDSA request errors are tested in process: crates/api-grpc/tests.)
#![allow(clippy::unwrap_used, clippy::expect_used)]

use api_proto::signer_service_client::SignerServiceClient;
use api_proto::{
    CreateKeyRequest, ImportKeyRequest, KeyInfo, Scheme, SignBatchRequest, SignRequest,
    SignResponse, VerifyRequest,
};
use client::metrics::sum_samples;
use sha2::{Digest, Sha256};
use test_support::Server;
use tonic::transport::Channel;

const TOTAL: usize = 1000;
const SINGLE: usize = 200;
const BATCH: usize = 100;

fn sign_req(key_id: &str, message: Vec<u8>) -> SignRequest {
    SignRequest {
        key_id: key_id.to_owned(),
        message,
        idempotency_key: String::new(),
        taproot_merkle_root: None,
    }
}

fn prehash(i: usize) -> Vec<u8> {
    Sha256::digest(format!("ecdsa prehash {i}").as_bytes()).to_vec()
}

/// libsecp256k1 and k256 both verify; S is low; both recover the key from the recovery id.
fn check(pk33: &[u8], h: &[u8], r: &SignResponse) {
    assert_eq!(r.verifying_key, pk33);
    test_support::ecdsa_check(pk33, h, &r.signature, r.recovery_id);
}

async fn create(c: &mut SignerServiceClient<Channel>) -> KeyInfo {
    let k = c
        .create_key(CreateKeyRequest {
            scheme: Scheme::EcdsaSecp256k1 as i32,
            threshold: 2,
            parties: 3,
            label: "e2e ecdsa".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(k.scheme, Scheme::EcdsaSecp256k1 as i32);
    assert_eq!(k.public_key.len(), 33);
    assert!(matches!(k.public_key[0], 2 | 3));
    assert_eq!(k.ethereum_address.len(), 42);
    assert!(k.ethereum_address.starts_with("0x"));
    k
}

async fn sign_many(c: &SignerServiceClient<Channel>, k: &KeyInfo) -> Vec<(Vec<u8>, SignResponse)> {
    let mut tasks = Vec::new();
    for i in 0..SINGLE {
        let mut c = c.clone();
        let key_id = k.key_id.clone();
        tasks.push(tokio::spawn(async move {
            let h = prehash(i);
            let r = c
                .sign(sign_req(&key_id, h.clone()))
                .await
                .unwrap()
                .into_inner();
            vec![(h, r)]
        }));
    }
    for b in (SINGLE..TOTAL).step_by(BATCH) {
        let mut c = c.clone();
        let key_id = k.key_id.clone();
        tasks.push(tokio::spawn(async move {
            let hs: Vec<Vec<u8>> = (b..b + BATCH).map(prehash).collect();
            let r = c
                .sign_batch(SignBatchRequest {
                    key_id,
                    messages: hs.clone(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap()
                .into_inner();
            hs.into_iter().zip(r.signatures).collect()
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.extend(t.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_of_three_signs_1000_prehashes_that_verify_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let k = create(&mut c).await;
    let got = c
        .get_key(api_proto::GetKeyRequest {
            key_id: k.key_id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(got.ethereum_address, k.ethereum_address);

    let sigs = sign_many(&c, &k).await;
    assert_eq!(sigs.len(), TOTAL);
    let mut distinct_r = std::collections::HashSet::new();
    for (h, r) in &sigs {
        check(&k.public_key, h, r);
        distinct_r.insert(r.signature[..32].to_vec());
    }
    assert_eq!(distinct_r.len(), TOTAL, "a nonce was reused");
    let recovery_ids: std::collections::HashSet<u32> =
        sigs.iter().map(|(_, r)| r.recovery_id).collect();
    assert_eq!(
        recovery_ids.len(),
        2,
        "both recovery ids occur over 1,000 signatures"
    );

    // The service's own Verify agrees, and refuses a tampered prehash.
    let (h, r) = &sigs[0];
    let verify = |message: Vec<u8>| VerifyRequest {
        scheme: Scheme::EcdsaSecp256k1 as i32,
        public_key: k.public_key.clone(),
        message,
        signature: r.signature.clone(),
    };
    assert!(
        c.verify(verify(h.clone()))
            .await
            .unwrap()
            .into_inner()
            .valid
    );
    let mut other = h.clone();
    other[0] ^= 1;
    assert!(!c.verify(verify(other)).await.unwrap().into_inner().valid);

    let text = server.scrape();
    let pooled = sum_samples(
        &text,
        "tessera_presignatures_used_total",
        Some(("source", &["pool"])),
    );
    let on_demand = sum_samples(
        &text,
        "tessera_presignatures_used_total",
        Some(("source", &["on_demand"])),
    );
    assert_eq!(pooled + on_demand, TOTAL as f64, "{text}");
    assert!(pooled > 0.0, "no signature used a pooled presignature");
    assert!(text.contains("tessera_presignatures_ready "), "{text}");

    // After a restart the key (with fresh base OTs) still signs under the same key.
    assert!(server.terminate().success());
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let h = prehash(TOTAL + 1);
    let r = c
        .sign(sign_req(&k.key_id, h.clone()))
        .await
        .unwrap()
        .into_inner();
    check(&k.public_key, &h, &r);
}

#[tokio::test]
async fn imported_keys_keep_their_ethereum_address_and_sign() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let vectors = include_str!("vectors/ethereum/addresses.txt");
    let mut n = 0;
    for line in vectors.lines().filter(|l| !l.trim().is_empty()) {
        let (sk, address) = line.trim().split_once(' ').unwrap();
        let sk = hex::decode(sk).unwrap();
        let expected_pk = secp256k1::SecretKey::from_byte_array(sk.clone().try_into().unwrap())
            .unwrap()
            .public_key(secp256k1::SECP256K1)
            .serialize();
        let k = c
            .import_key(ImportKeyRequest {
                scheme: Scheme::EcdsaSecp256k1 as i32,
                secret_key: sk,
                threshold: 2,
                parties: 3,
                label: "imported".into(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(k.public_key, expected_pk);
        assert_eq!(k.ethereum_address, address.trim());
        let h = prehash(n);
        let r = c
            .sign(sign_req(&k.key_id, h.clone()))
            .await
            .unwrap()
            .into_inner();
        check(&k.public_key, &h, &r);
        n += 1;
    }
    assert_eq!(n, 2);
}

/// `tessera import` reads the secret key from a file (never from the command line) and
/// prints the key; a file that is not hex is refused naming `--secret-file`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_imports_a_secret_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(&dir.path().join("data"), &[]);
    let line = include_str!("vectors/ethereum/addresses.txt")
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap();
    let (sk, address) = line.trim().split_once(' ').unwrap();
    let file = dir.path().join("secret.hex");
    std::fs::write(&file, format!("{sk}\n")).unwrap();
    let f = file.display().to_string();
    let args = |file: &str| {
        vec![
            "import".to_owned(),
            "--server".to_owned(),
            server.url.clone(),
            "--scheme".to_owned(),
            "ecdsa".to_owned(),
            "--threshold".to_owned(),
            "2".to_owned(),
            "--parties".to_owned(),
            "3".to_owned(),
            "--secret-file".to_owned(),
            file.to_owned(),
        ]
    };
    let a = args(&f);
    let (ok, out, err) =
        test_support::run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["ethereum_address"], address.trim());
    assert_eq!(v["scheme"], "ecdsa_secp256k1");
    let bad = dir.path().join("bad.hex");
    std::fs::write(&bad, "not hex").unwrap();
    let a = args(&bad.display().to_string());
    let (ok, _, err) =
        test_support::run_cli(&a.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
    assert!(!ok && err.contains("--secret-file"), "{err}");
}
