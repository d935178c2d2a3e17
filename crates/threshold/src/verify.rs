//! Batched verification of plain Ed25519 and BIP340 signatures (one port call per batch).

use accel_api::{Accelerator, CurveGroup, SchnorrItem};

use crate::suite::{Ed25519Sha512, PointBytes, Secp256k1Tr, Suite};

type Item<S> = SchnorrItem<crate::Scalar<S>, crate::Point<S>>;

fn run<S: Suite>(
    accel: &dyn Accelerator,
    items: &[(&[u8], &[u8], &[u8])],
    parse: impl Fn(&[u8], &[u8], &[u8]) -> Option<Item<S>>,
) -> Vec<bool> {
    let parsed: Vec<Option<Item<S>>> = items.iter().map(|(k, m, s)| parse(k, m, s)).collect();
    let idx: Vec<usize> = (0..parsed.len()).filter(|i| parsed[*i].is_some()).collect();
    let batch: Vec<Item<S>> = parsed.into_iter().flatten().collect();
    let mut ok = vec![false; items.len()];
    if let Ok(verdict) = S::G::verify_batch_vartime(accel, &batch) {
        for (j, i) in idx.iter().enumerate() {
            ok[*i] = verdict.is_valid(j);
        }
    }
    ok
}

/// Verifies Ed25519 signatures `(public_key, message, signature)` (RFC 8032) in one batch.
///
/// Strict, like `ed25519-dalek`'s `verify_strict`: `s` must be canonical and `A`, `R` must be
/// canonical encodings of points that are not of small order. In addition `A` and `R` must lie
/// in the prime-order subgroup (the port's batch equation is cofactored; for such points it
/// agrees exactly with the cofactorless check). Malformed items are `false`.
pub fn verify_ed25519_batch(accel: &dyn Accelerator, items: &[(&[u8], &[u8], &[u8])]) -> Vec<bool> {
    run::<Ed25519Sha512>(accel, items, |pk, msg, sig| {
        if pk.len() != 32 || sig.len() != 64 {
            return None;
        }
        let a = Ed25519Sha512::point_from_bytes(pk)?;
        let r = Ed25519Sha512::point_from_bytes(&sig[..32])?;
        let s = Ed25519Sha512::scalar_from_bytes(&sig[32..])?;
        let c = Ed25519Sha512::challenge(&PointBytes::new(&sig[..32]), &PointBytes::new(pk), msg);
        Some(SchnorrItem {
            r,
            s,
            c,
            public_key: a,
        })
    })
}

/// Verifies BIP340 signatures `(x-only public_key, message, signature)` in one batch. Messages
/// of any length are accepted (BIP340 allows variable-length messages). Malformed items
/// (wrong lengths, `r` not an x coordinate on the curve, `s ≥ n`) are `false`.
pub fn verify_bip340_batch(accel: &dyn Accelerator, items: &[(&[u8], &[u8], &[u8])]) -> Vec<bool> {
    run::<Secp256k1Tr>(accel, items, |pk, msg, sig| {
        if pk.len() != 32 || sig.len() != 64 {
            return None;
        }
        let mut pk33 = [2u8; 33];
        pk33[1..].copy_from_slice(pk);
        let mut r33 = [2u8; 33];
        r33[1..].copy_from_slice(&sig[..32]);
        let p = Secp256k1Tr::point_from_bytes(&pk33)?;
        let r = Secp256k1Tr::point_from_bytes(&r33)?;
        let s = Secp256k1Tr::scalar_from_bytes(&sig[32..])?;
        let c = Secp256k1Tr::challenge(&PointBytes::new(&r33), &PointBytes::new(&pk33), msg);
        Some(SchnorrItem {
            r,
            s,
            c,
            public_key: p,
        })
    })
}
