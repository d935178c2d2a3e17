//! RFC 9591 Appendix E test vectors: FROST(Ed25519, SHA-512) and FROST(secp256k1, SHA-256).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use backend_cpu::CpuBackend;
use serde_json::Value;
use threshold::round1::{commit_with_nonces_batch, nonce_generate};
use threshold::round2::sign_batch;
use threshold::{
    Ed25519Sha512, GroupKey, Identifier, KeySet, Secp256k1Sha256, SigningPackage, Suite,
    TaprootTweak, aggregate_batch,
};

fn load(name: &str) -> Value {
    let path = format!(
        "{}/../../tests/vectors/rfc9591/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn hx(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().unwrap()).unwrap()
}

fn scalar<S: Suite>(v: &Value) -> threshold::Scalar<S> {
    S::scalar_from_bytes(&hx(v)).unwrap()
}

fn run<S: Suite>(file: &str) {
    let accel = CpuBackend::new();
    let v = load(file);
    let inputs = &v["inputs"];
    let t: u16 = v["config"]["MIN_PARTICIPANTS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let n: u16 = v["config"]["MAX_PARTICIPANTS"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let group_key = GroupKey::<S>::from_bytes(&hx(&inputs["verifying_key_key"])).unwrap();
    let message = hx(&inputs["message"]);

    // Trusted dealer from the given polynomial reproduces the shares and the group key.
    let mut coeffs = vec![scalar::<S>(&inputs["group_secret_key"])];
    for c in inputs["share_polynomial_coefficients"].as_array().unwrap() {
        coeffs.push(scalar::<S>(c));
    }
    let dealt = KeySet::<S>::split_with_coefficients(&accel, &coeffs, n).unwrap();
    assert_eq!(dealt.public_package().group_key(), &group_key);
    let shares: Vec<(Identifier, threshold::Scalar<S>)> = inputs["participant_shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let id = Identifier::new(p["identifier"].as_u64().unwrap() as u16).unwrap();
            (id, scalar::<S>(&p["participant_share"]))
        })
        .collect();
    let keys = KeySet::<S>::from_secret_shares(&accel, t, &shares, Some(&group_key)).unwrap();
    assert_eq!(dealt.to_bytes(), keys.to_bytes());

    // Round 1: nonces from the given randomness, commitments.
    let r1 = v["round_one_outputs"]["outputs"].as_array().unwrap();
    let signers: Vec<&threshold::KeyShare<S>> = r1
        .iter()
        .map(|o| {
            let id = o["identifier"].as_u64().unwrap() as u16;
            keys.shares()
                .iter()
                .find(|s| s.identifier().get() == id)
                .unwrap()
        })
        .collect();
    let mut nonce_pairs = Vec::new();
    for (o, share) in r1.iter().zip(&signers) {
        let hr: [u8; 32] = hx(&o["hiding_nonce_randomness"]).try_into().unwrap();
        let br: [u8; 32] = hx(&o["binding_nonce_randomness"]).try_into().unwrap();
        let d = nonce_generate::<S>(&hr, share);
        let e = nonce_generate::<S>(&br, share);
        assert_eq!(d, scalar::<S>(&o["hiding_nonce"]));
        assert_eq!(e, scalar::<S>(&o["binding_nonce"]));
        nonce_pairs.push((d, e));
    }
    let committed = commit_with_nonces_batch::<S>(&accel, &nonce_pairs).unwrap();
    let mut commitments = BTreeMap::new();
    for ((o, share), (_, c)) in r1.iter().zip(&signers).zip(&committed) {
        assert_eq!(c.hiding_bytes(), hx(&o["hiding_nonce_commitment"]));
        assert_eq!(c.binding_bytes(), hx(&o["binding_nonce_commitment"]));
        commitments.insert(share.identifier(), *c);
    }
    let package = SigningPackage::<S>::new(commitments, &message, TaprootTweak::None);
    let rhos = package.binding_factors(&accel, &group_key).unwrap();
    for (o, (id, rho)) in r1.iter().zip(&rhos) {
        assert_eq!(u64::from(id.get()), o["identifier"].as_u64().unwrap());
        assert_eq!(*rho, scalar::<S>(&o["binding_factor"]));
    }

    // Round 2 and aggregation.
    let items = committed
        .into_iter()
        .zip(&signers)
        .map(|((nonces, _), share)| (&package, nonces, *share))
        .collect();
    let sig_shares: Vec<_> = sign_batch::<S>(&accel, items)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let r2 = v["round_two_outputs"]["outputs"].as_array().unwrap();
    for (o, s) in r2.iter().zip(&sig_shares) {
        assert_eq!(
            u64::from(s.identifier().get()),
            o["identifier"].as_u64().unwrap()
        );
        assert_eq!(s.to_bytes().to_vec(), hx(&o["sig_share"]));
    }
    let out = aggregate_batch::<S>(&accel, &[(&package, &sig_shares, keys.public_package())]);
    let sig = out.into_iter().next().unwrap().unwrap();
    assert_eq!(sig.signature, hx(&v["final_output"]["sig"]));
}

#[test]
fn rfc9591_ed25519_sha512() {
    run::<Ed25519Sha512>("ed25519_sha512.json");
}

#[test]
fn rfc9591_secp256k1_sha256() {
    run::<Secp256k1Sha256>("secp256k1_sha256.json");
}
