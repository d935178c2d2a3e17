//! The serial (portable-lane) field multiplication and complete point additions of this crate
//! as plain functions on little-endian 32-byte values, so that `hw/fpga-notes` checks its RTL
//! against the arithmetic the SIMD backend runs. Built only with the `vectors` feature; public
//! data only (variable time is fine here).
//!
//! Inputs may be any 256-bit value (also ≥ p, which the RTL multipliers accept); outputs are
//! canonical (below p).

use crate::field::{self, canonical, limbs_to_words, words_to_limbs};
use crate::lanes::Portable;
use crate::{ed, secp};

fn limbs(b: &[u8; 32]) -> [u64; 5] {
    let w: [u64; 4] = core::array::from_fn(|i| {
        let mut le = [0u8; 8];
        le.copy_from_slice(&b[8 * i..8 * i + 8]);
        u64::from_le_bytes(le)
    });
    words_to_limbs(&w)
}

fn bytes(l: &[u64; 5]) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, w) in limbs_to_words(l).iter().enumerate() {
        out[8 * i..8 * i + 8].copy_from_slice(&w.to_le_bytes());
    }
    out
}

fn mul<P: field::Prime>(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    let l = Portable;
    let r = field::mul::<P, Portable>(l, &field::splat5(l, limbs(a)), &field::splat5(l, limbs(b)));
    bytes(&canonical::<P>(&r.map(|v| v[0])))
}

/// `a·b mod 2^255 − 19`.
pub fn mul_p25519(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    mul::<ed::Fp>(a, b)
}

/// `a·b mod 2^256 − 2^32 − 977`.
pub fn mul_k256(a: &[u8; 32], b: &[u8; 32]) -> [u8; 32] {
    mul::<secp::Fp>(a, b)
}

/// P + Q on edwards25519 in extended coordinates (X, Y, Z, T), by the unified
/// Hisil–Wong–Carter–Dawson addition the backend uses; the output coordinates are canonical.
pub fn add_ed25519(p: &[[u8; 32]; 4], q: &[[u8; 32]; 4]) -> [[u8; 32]; 4] {
    ed::add_extended_canonical(&p.map(|c| limbs(&c)), &q.map(|c| limbs(&c))).map(|c| bytes(&c))
}

/// P + Q on secp256k1 in projective coordinates (X, Y, Z), by the complete
/// Renes–Costello–Batina addition (Algorithm 7) the backend uses; canonical output.
pub fn add_k256(p: &[[u8; 32]; 3], q: &[[u8; 32]; 3]) -> [[u8; 32]; 3] {
    secp::add_projective_canonical(&p.map(|c| limbs(&c)), &q.map(|c| limbs(&c))).map(|c| bytes(&c))
}
