//! Independent verifiers shared by the integration tests.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::sec1::FromEncodedPoint;
use sha2::{Digest, Sha256};

/// `ed25519-dalek` `verify_strict`.
pub fn ed25519_ok(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let pk = ed25519_dalek::VerifyingKey::from_bytes(pk.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(sig.try_into().unwrap());
    pk.verify_strict(msg, &sig).is_ok()
}

/// BIP340 with both k256 `schnorr` and libsecp256k1; asserts they agree.
pub fn bip340_ok(xonly: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let k = k256::schnorr::VerifyingKey::from_bytes(xonly)
        .and_then(|vk| vk.verify_raw(msg, &k256::schnorr::Signature::try_from(sig)?))
        .is_ok();
    let pk = secp256k1::XOnlyPublicKey::from_byte_array(xonly.try_into().unwrap()).unwrap();
    let s = secp256k1::schnorr::Signature::from_byte_array(sig.try_into().unwrap());
    let l = secp256k1::SECP256K1.verify_schnorr(&s, msg, &pk).is_ok();
    assert_eq!(k, l, "k256 and libsecp256k1 disagree");
    k
}

/// BIP341 output key x-only bytes computed independently: `Q = lift_x(P) + H_TapTweak(P ‖ root)·G`.
pub fn taproot_output_key(internal_x: &[u8], root: Option<&[u8; 32]>) -> Vec<u8> {
    let tag = Sha256::digest(b"TapTweak");
    let mut h = Sha256::new();
    h.update(tag);
    h.update(tag);
    h.update(internal_x);
    if let Some(r) = root {
        h.update(r);
    }
    let t = <k256::Scalar as Reduce<k256::U256>>::reduce(k256::U256::from_be_slice(&h.finalize()));
    let mut enc = vec![2u8];
    enc.extend_from_slice(internal_x);
    let p = k256::AffinePoint::from_encoded_point(&k256::EncodedPoint::from_bytes(&enc).unwrap())
        .unwrap();
    let q = (k256::ProjectivePoint::from(p) + k256::ProjectivePoint::GENERATOR * t).to_affine();
    q.x().to_vec()
}
