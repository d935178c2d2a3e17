//! Independent verifiers: reference crates only, no Tessera code.

use k256::ecdsa::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};

/// Ed25519 by `ed25519-dalek` `verify_strict`.
pub fn ed25519_ok(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let Ok(pk) = <[u8; 32]>::try_from(pk) else {
        return false;
    };
    let Ok(vk) = ed25519_dalek::VerifyingKey::from_bytes(&pk) else {
        return false;
    };
    let Ok(sig) = <[u8; 64]>::try_from(sig) else {
        return false;
    };
    vk.verify_strict(msg, &ed25519_dalek::Signature::from_bytes(&sig))
        .is_ok()
}

/// BIP340 (32-byte message) by both k256 `schnorr` and libsecp256k1; panics if they disagree.
pub fn bip340_ok(xonly: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let by_k256 = k256::schnorr::VerifyingKey::from_bytes(xonly)
        .and_then(|vk| vk.verify_raw(msg, &k256::schnorr::Signature::try_from(sig)?))
        .is_ok();
    let by_libsecp = match (
        <[u8; 32]>::try_from(xonly)
            .ok()
            .and_then(|x| secp256k1::XOnlyPublicKey::from_byte_array(x).ok()),
        <[u8; 64]>::try_from(sig).ok(),
    ) {
        (Some(pk), Some(s)) => secp256k1::SECP256K1
            .verify_schnorr(&secp256k1::schnorr::Signature::from_byte_array(s), msg, &pk)
            .is_ok(),
        _ => false,
    };
    assert_eq!(by_k256, by_libsecp, "k256 and libsecp256k1 disagree");
    by_k256
}

/// BIP341 output key `Q = P + H_TapTweak(P ‖ root)·G` (x-only), computed with libsecp256k1.
pub fn taproot_output_key(internal: &[u8], root: Option<&[u8; 32]>) -> Vec<u8> {
    let tag = Sha256::digest(b"TapTweak");
    let mut h = Sha256::new();
    h.update(tag);
    h.update(tag);
    h.update(internal);
    if let Some(r) = root {
        h.update(r);
    }
    let t: [u8; 32] = h.finalize().into();
    let p = secp256k1::XOnlyPublicKey::from_byte_array(internal.try_into().unwrap()).unwrap();
    let (q, _parity) = p
        .add_tweak(
            secp256k1::SECP256K1,
            &secp256k1::Scalar::from_be_bytes(t).unwrap(),
        )
        .unwrap();
    q.serialize().to_vec()
}

/// Checks an ECDSA signature `r‖s` over the 32-byte prehash `h` under the 33-byte key: low S;
/// valid under libsecp256k1 and k256; both recover the key from `recovery_id`. Panics with
/// the failed property.
pub fn ecdsa_check(pk33: &[u8], h: &[u8], signature: &[u8], recovery_id: u32) {
    assert_eq!(signature.len(), 64);
    assert!(recovery_id <= 1, "recovery id {recovery_id}");
    let msg = secp256k1::Message::from_digest(h.try_into().unwrap());
    let pk = secp256k1::PublicKey::from_slice(pk33).unwrap();
    let sig = secp256k1::ecdsa::Signature::from_compact(signature).unwrap();
    let mut normalized = sig;
    normalized.normalize_s();
    assert_eq!(normalized, sig, "signature is not low-S");
    secp256k1::SECP256K1.verify_ecdsa(msg, &sig, &pk).unwrap();
    let rid = secp256k1::ecdsa::RecoveryId::try_from(i32::try_from(recovery_id).unwrap()).unwrap();
    let rs = secp256k1::ecdsa::RecoverableSignature::from_compact(signature, rid).unwrap();
    assert_eq!(secp256k1::SECP256K1.recover_ecdsa(msg, &rs).unwrap(), pk);
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(pk33).unwrap();
    let ks = k256::ecdsa::Signature::from_slice(signature).unwrap();
    vk.verify_prehash(h, &ks).unwrap();
    let krid = k256::ecdsa::RecoveryId::from_byte(u8::try_from(recovery_id).unwrap()).unwrap();
    assert_eq!(
        k256::ecdsa::VerifyingKey::recover_from_prehash(h, &ks, krid).unwrap(),
        vk
    );
}
