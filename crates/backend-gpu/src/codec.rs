//! Host-side packing of scalars and points into the shaders' word layouts, and back.
//!
//! Field elements cross as 20 limbs of 13 bits, two per u32 word (10 words); scalars and
//! results as 8 little-endian u32 words. secp256k1 points go to the GPU affine (the host
//! batch-normalises them); edwards25519 points go to the GPU as their encodings and the GPU
//! decodes them (curve25519-dalek exposes no coordinates), and come back affine, so that the
//! host needs no square root.

use accel_api::{AccelError, EdPoint, LincombJob};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::Identity;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar as SecpScalar};

use crate::{FieldImpl, device_err};

/// Terms one lincomb invocation handles (`MAX_TERMS` in common.wgsl); longer jobs are split
/// into chunks whose partial sums the host adds.
pub(crate) const CHUNK_TERMS: usize = 8;
/// Words per recoded lincomb scalar (`DIGIT_WORDS`).
pub(crate) const DIGIT_WORDS: usize = 9;
/// Words per secp256k1 point in the kernels' inputs and table (`PT_WORDS`): x, y, identity.
pub(crate) const SECP_PT_WORDS: usize = 21;
/// Words per edwards25519 input: the encoding.
pub(crate) const ED_ENC_WORDS: usize = 8;
/// Words per decoded edwards25519 point (`PT_WORDS` in ed25519.wgsl): x, y, t, status.
pub(crate) const ED_PT_WORDS: usize = 31;
/// Output words per secp256k1 point: x, y, identity flag.
pub(crate) const SECP_OUT_WORDS: usize = 17;
/// Output words per edwards25519 point: affine x, y, status.
pub(crate) const ED_OUT_WORDS: usize = 17;
/// Fixed-base table entries: 65 windows of 16 multiples (`mul_base` uses the first 64, lincomb's
/// base-point terms all 65).
pub(crate) const TABLE_ENTRIES: usize = 65 * 16;
/// Bit 31 of a recoded scalar's last word marks a base-point term (`BASE_FLAG`).
const BASE_FLAG: u32 = 1 << 31;

fn le_words(le: &[u8; 32]) -> [u32; 8] {
    let mut w = [0u32; 8];
    for (i, c) in le.chunks_exact(4).enumerate() {
        w[i] = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
    }
    w
}

fn be_to_le(be: &[u8]) -> [u8; 32] {
    let mut le = [0u8; 32];
    for (i, b) in be.iter().rev().take(32).enumerate() {
        le[i] = *b;
    }
    le
}

/// A field element below 2^256 (little-endian bytes) in the kernels' 10-word storage form:
/// two 13-bit limbs per word (`FieldImpl::U32`) or one 26-bit limb per word (`FieldImpl::U64`).
fn packed_limbs(le: &[u8; 32], field: FieldImpl) -> [u32; 10] {
    let mut l = [0u64; 4];
    for (i, c) in le.chunks_exact(8).enumerate() {
        l[i] = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
    }
    let bits = |lo: usize, width: usize| -> u32 {
        let (w, off) = (lo / 64, lo % 64);
        if w >= 4 {
            return 0;
        }
        let mut v = l[w] >> off;
        if off + width > 64 && w + 1 < 4 {
            v |= l[w + 1] << (64 - off);
        }
        (v & ((1 << width) - 1)) as u32
    };
    let mut out = [0u32; 10];
    for (k, o) in out.iter_mut().enumerate() {
        *o = match field {
            FieldImpl::U32 => bits(26 * k, 13) | (bits(26 * k + 13, 13) << 16),
            FieldImpl::U64 => bits(26 * k, 26),
        };
    }
    out
}

/// s + 8 * (16^0 + ... + 16^64) as 9 little-endian words: nibble w minus 8 is the signed
/// radix-16 digit w of s, in -8..=7 (see `digit` in common.wgsl); `BASE_FLAG` set when the
/// term's point is the base point.
fn recoded(le: &[u8; 32], base_point: bool) -> [u32; DIGIT_WORDS] {
    let s = le_words(le);
    let mut out = [0u32; DIGIT_WORDS];
    let mut carry = 0u64;
    for i in 0..8 {
        let v = u64::from(s[i]) + 0x8888_8888 + carry;
        out[i] = v as u32;
        carry = v >> 32;
    }
    out[8] = 8 + carry as u32;
    if base_point {
        out[8] |= BASE_FLAG;
    }
    out
}

/// Secret scalars for `mul_base`, 8 little-endian words each (the caller wraps the result in
/// `Zeroizing`).
pub(crate) fn secp_scalar_words(scalars: &[SecpScalar]) -> Vec<u32> {
    let mut out = Vec::with_capacity(8 * scalars.len());
    for s in scalars {
        let mut be = s.to_bytes();
        let mut le = be_to_le(&be);
        out.extend(le_words(&le));
        zeroize::Zeroize::zeroize(be.as_mut_slice());
        zeroize::Zeroize::zeroize(&mut le);
    }
    out
}

/// Secret scalars for `mul_base`, 8 little-endian words each (the caller wraps the result in
/// `Zeroizing`).
pub(crate) fn ed_scalar_words(scalars: &[EdScalar]) -> Vec<u32> {
    let mut out = Vec::with_capacity(8 * scalars.len());
    for s in scalars {
        let mut le = s.to_bytes();
        out.extend(le_words(&le));
        zeroize::Zeroize::zeroize(&mut le);
    }
    out
}

/// x, y, identity flag of an affine secp256k1 point (the identity as x = 0, y = 1, flag 1,
/// which the constant-time table selection turns into (0 : 1 : 0)).
fn secp_point_words(a: &AffinePoint, field: FieldImpl) -> [u32; SECP_PT_WORDS] {
    let mut out = [0u32; SECP_PT_WORDS];
    let enc = a.to_encoded_point(false);
    match (enc.x(), enc.y()) {
        (Some(x), Some(y)) => {
            out[..10].copy_from_slice(&packed_limbs(&be_to_le(x), field));
            out[10..20].copy_from_slice(&packed_limbs(&be_to_le(y), field));
        }
        _ => {
            out[10] = 1;
            out[20] = 1;
        }
    }
    out
}

/// Lincomb inputs: points (SECP_PT_WORDS per term, batch-normalised on the host) and recoded
/// scalars (DIGIT_WORDS per term).
pub(crate) fn secp_terms(
    jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    field: FieldImpl,
) -> (Vec<u32>, Vec<u32>) {
    let points: Vec<ProjectivePoint> = jobs
        .iter()
        .flat_map(|j| j.terms.iter().map(|t| t.1))
        .collect();
    let affine = accel_api::secp256k1_normalize_batch_serial(&points);
    let mut pts = Vec::with_capacity(SECP_PT_WORDS * points.len());
    let mut digits = Vec::with_capacity(DIGIT_WORDS * points.len());
    for (t, a) in jobs.iter().flat_map(|j| j.terms.iter()).zip(&affine) {
        pts.extend(secp_point_words(a, field));
        digits.extend(recoded(
            &be_to_le(&t.0.to_bytes()),
            *a == AffinePoint::GENERATOR,
        ));
    }
    (pts, digits)
}

/// Lincomb inputs: encodings (ED_ENC_WORDS per term) and recoded scalars.
pub(crate) fn ed_terms(jobs: &[LincombJob<EdScalar, EdPoint>]) -> (Vec<u32>, Vec<u32>) {
    let points: Vec<EdPoint> = jobs
        .iter()
        .flat_map(|j| j.terms.iter().map(|t| t.1))
        .collect();
    let encodings = EdPoint::compress_batch(&points);
    let mut pts = Vec::with_capacity(ED_ENC_WORDS * points.len());
    let mut digits = Vec::with_capacity(DIGIT_WORDS * points.len());
    for (t, c) in jobs.iter().flat_map(|j| j.terms.iter()).zip(&encodings) {
        pts.extend(le_words(c.as_bytes()));
        digits.extend(recoded(
            t.0.as_bytes(),
            *c == curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED,
        ));
    }
    (pts, digits)
}

/// Table entry (w, j) = j * 16^w * G for w < 65, j < 16, SECP_PT_WORDS each.
pub(crate) fn secp_table(field: FieldImpl) -> Vec<u32> {
    let points = table_points(ProjectivePoint::GENERATOR, ProjectivePoint::IDENTITY);
    let affine = accel_api::secp256k1_normalize_batch_serial(&points);
    affine
        .iter()
        .flat_map(|a| secp_point_words(a, field))
        .collect()
}

/// Encodings of j * 16^w * B for w < 65, j < 16 (decoded into the table on the GPU).
pub(crate) fn ed_table_encodings() -> Vec<u32> {
    let points = table_points(
        curve25519_dalek::constants::ED25519_BASEPOINT_POINT,
        EdwardsPoint::identity(),
    );
    EdwardsPoint::compress_batch_alloc(&points)
        .iter()
        .flat_map(|c| le_words(c.as_bytes()))
        .collect()
}

fn table_points<P>(base: P, identity: P) -> Vec<P>
where
    P: Copy + core::ops::Add<Output = P>,
{
    let mut out = Vec::with_capacity(TABLE_ENTRIES);
    let mut b = base;
    for _ in 0..TABLE_ENTRIES / 16 {
        let mut e = identity;
        for _ in 0..16 {
            out.push(e);
            e = e + b;
        }
        // e = 16 * b now.
        b = e;
    }
    out
}

/// A secp256k1 point from the GPU's affine output, checked to lie on the curve.
pub(crate) fn secp_point_from_words(w: &[u32]) -> Result<AffinePoint, AccelError> {
    if w.get(16).copied().unwrap_or(1) != 0 {
        return Ok(AffinePoint::IDENTITY);
    }
    let be = |words: &[u32]| {
        let mut b = [0u8; 32];
        for (i, word) in words.iter().take(8).enumerate() {
            b[28 - 4 * i..32 - 4 * i].copy_from_slice(&word.to_be_bytes());
        }
        b
    };
    let (x, y) = (be(&w[0..8]), be(&w[8..16]));
    let enc = EncodedPoint::from_affine_coordinates(&x.into(), &y.into(), false);
    Option::from(AffinePoint::from_encoded_point(&enc))
        .ok_or_else(|| device_err("GPU returned a secp256k1 point that is not on the curve"))
}

/// An edwards25519 point from the GPU's affine output, checked to lie on the curve.
pub(crate) fn ed_point_from_words(w: &[u32]) -> Result<EdPoint, AccelError> {
    if w.get(16).copied().unwrap_or(1) != 0 {
        return Err(device_err("GPU could not decode an edwards25519 input"));
    }
    let le = |words: &[u32]| {
        let mut b = [0u8; 32];
        for (i, word) in words.iter().take(8).enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&word.to_le_bytes());
        }
        b
    };
    EdPoint::from_affine_vartime(&le(&w[0..8]), &le(&w[8..16]))
        .ok_or_else(|| device_err("GPU returned an edwards25519 point that is not on the curve"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value(words: &[u32]) -> Vec<u8> {
        words.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn recoded_digits_sum_to_the_scalar() {
        for le in [[0u8; 32], [0xff; 32], {
            let mut b = [0u8; 32];
            b[0] = 0x78;
            b[31] = 0x7f;
            b
        }] {
            let r = recoded(&le, false);
            // Σ (nibble_w - 8) 16^w, evaluated as a little-endian byte string with borrows.
            let nibbles: Vec<i64> = (0..65)
                .map(|w| i64::from((r[w / 8] >> ((w % 8) * 4)) & 15) - 8)
                .collect();
            let mut acc = vec![0i64; 66];
            for (w, d) in nibbles.iter().enumerate() {
                acc[w] += d;
            }
            for w in 0..65 {
                let carry = acc[w].div_euclid(16);
                acc[w] = acc[w].rem_euclid(16);
                acc[w + 1] += carry;
            }
            assert_eq!(acc[65], 0);
            let bytes: Vec<u8> = (0..32)
                .map(|i| (acc[2 * i] | (acc[2 * i + 1] << 4)) as u8)
                .collect();
            assert_eq!(bytes, le.to_vec());
            assert!(nibbles.iter().all(|d| (-8..=7).contains(d)));
        }
    }

    #[test]
    fn packed_limbs_hold_the_value() {
        let mut le = [0u8; 32];
        for (i, b) in le.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        for (field, width, per_word) in [(FieldImpl::U32, 13, 2), (FieldImpl::U64, 26, 1)] {
            let packed = packed_limbs(&le, field);
            let mut bits = vec![0u8; 32];
            for i in 0..10 * per_word {
                let limb = if per_word == 2 {
                    (packed[i / 2] >> (16 * (i % 2))) & 0xffff
                } else {
                    packed[i]
                };
                assert!(limb < 1 << width);
                for k in 0..width {
                    let bit = width * i + k;
                    if bit < 256 && (limb >> k) & 1 == 1 {
                        bits[bit / 8] |= 1 << (bit % 8);
                    }
                }
            }
            assert_eq!(bits, le.to_vec(), "{field:?}");
        }
        assert_eq!(value(&le_words(&le)), le.to_vec());
    }
}
