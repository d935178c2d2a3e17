//! AVX-512 IFMA lanes: eight 64-bit lanes in one `__m512i`.
//!
//! UNSAFETY: this is the only module of the crate that uses `unsafe`. The intrinsics it calls
//! are `#[target_feature]` functions, sound to call only on a CPU that has AVX-512F and
//! AVX-512 IFMA. The invariant that makes every block here sound: a value of type [`Ifma`] can
//! only be obtained from [`Ifma::detect`], which returns one only after run-time detection
//! (`is_x86_feature_detected!`) proved both features on this CPU. Every function that runs an
//! intrinsic takes an `Ifma` token, so it cannot be reached on a CPU without them. Loads and
//! stores go through arrays of exactly eight `u64`s with the unaligned intrinsics, so no
//! memory outside those arrays is touched.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m512i, __mmask8, _mm512_add_epi64, _mm512_and_si512, _mm512_cmpeq_epi64_mask,
    _mm512_loadu_si512, _mm512_madd52hi_epu64, _mm512_madd52lo_epu64, _mm512_mask_mov_epi64,
    _mm512_set1_epi64, _mm512_slli_epi64, _mm512_srli_epi64, _mm512_storeu_si512, _mm512_sub_epi64,
};

use crate::lanes::{LANES, Lanes};
use crate::{ed, secp};

/// Proof that this CPU has AVX-512F and AVX-512 IFMA.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ifma(());

impl Ifma {
    /// The token, when the CPU has the features.
    pub(crate) fn detect() -> Option<Self> {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512ifma")
        {
            Some(Ifma(()))
        } else {
            None
        }
    }
}

impl Lanes for Ifma {
    type V = __m512i;
    type M = __mmask8;

    #[inline(always)]
    fn splat(self, x: u64) -> __m512i {
        // SAFETY: `self` proves AVX-512F (module invariant).
        unsafe { _mm512_set1_epi64(x as i64) }
    }
    #[inline(always)]
    fn load(self, x: &[u64; LANES]) -> __m512i {
        // SAFETY: `self` proves AVX-512F; `x` is exactly 64 readable bytes and the load is
        // unaligned.
        unsafe { _mm512_loadu_si512(x.as_ptr().cast()) }
    }
    #[inline(always)]
    fn store(self, v: __m512i) -> [u64; LANES] {
        let mut out = [0u64; LANES];
        // SAFETY: `self` proves AVX-512F; `out` is exactly 64 writable bytes and the store is
        // unaligned.
        unsafe { _mm512_storeu_si512(out.as_mut_ptr().cast(), v) };
        out
    }
    #[inline(always)]
    fn add(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_add_epi64(a, b) }
    }
    #[inline(always)]
    fn sub(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_sub_epi64(a, b) }
    }
    #[inline(always)]
    fn and(self, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_and_si512(a, b) }
    }
    #[inline(always)]
    fn shr<const N: u32>(self, a: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_srli_epi64::<N>(a) }
    }
    #[inline(always)]
    fn shl<const N: u32>(self, a: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_slli_epi64::<N>(a) }
    }
    #[inline(always)]
    fn madd52lo(self, acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512 IFMA.
        unsafe { _mm512_madd52lo_epu64(acc, a, b) }
    }
    #[inline(always)]
    fn madd52hi(self, acc: __m512i, a: __m512i, b: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512 IFMA.
        unsafe { _mm512_madd52hi_epu64(acc, a, b) }
    }
    #[inline(always)]
    fn eq(self, a: __m512i, b: __m512i) -> __mmask8 {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_cmpeq_epi64_mask(a, b) }
    }
    #[inline(always)]
    fn select(self, m: __mmask8, if_false: __m512i, if_true: __m512i) -> __m512i {
        // SAFETY: `self` proves AVX-512F.
        unsafe { _mm512_mask_mov_epi64(if_false, m, if_true) }
    }
}

/// The secp256k1 fixed-base kernel compiled with the features enabled, so that every
/// `#[inline(always)]` lane operation above is inlined into straight-line vector code.
#[target_feature(enable = "avx512f,avx512ifma")]
fn secp_mul_base_lanes_ifma(tok: Ifma, digits: &secp::Digits) -> secp::LaneOutput {
    secp::mul_base_lanes(tok, digits)
}

/// 8-lane constant-time k·G for the scalars whose digits are given.
pub(crate) fn secp_mul_base(tok: Ifma, digits: &secp::Digits) -> secp::LaneOutput {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the
    // callee is compiled for.
    unsafe { secp_mul_base_lanes_ifma(tok, digits) }
}

/// The secp256k1 linear-combination kernel compiled with the features enabled.
#[target_feature(enable = "avx512f,avx512ifma")]
fn secp_lincomb_lanes_ifma(
    tok: Ifma,
    digits: &[secp::Digits],
    points: &[secp::LaneAffine],
) -> secp::LaneOutput {
    secp::lincomb_lanes(tok, digits, points)
}

/// 8-lane Σ sₜ·Pₜ (public data).
pub(crate) fn secp_lincomb(
    tok: Ifma,
    digits: &[secp::Digits],
    points: &[secp::LaneAffine],
) -> secp::LaneOutput {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the
    // callee is compiled for.
    unsafe { secp_lincomb_lanes_ifma(tok, digits, points) }
}

/// The secp256k1 Pippenger pass compiled with the features enabled.
#[target_feature(enable = "avx512f,avx512ifma")]
fn secp_pippenger_lanes_ifma(
    tok: Ifma,
    digits: &[[u64; LANES]],
    points: &[[[u64; 5]; 2]],
    buckets: &mut [secp::Bucket],
) -> secp::LaneOutput {
    secp::pippenger_lanes(tok, digits, points, buckets)
}

/// One 8-window Pippenger pass (public data).
pub(crate) fn secp_pippenger(
    tok: Ifma,
    digits: &[[u64; LANES]],
    points: &[[[u64; 5]; 2]],
    buckets: &mut [secp::Bucket],
) -> secp::LaneOutput {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the callee is compiled
    // for.
    unsafe { secp_pippenger_lanes_ifma(tok, digits, points, buckets) }
}

/// The Ed25519 fixed-base kernel compiled with the features enabled.
#[target_feature(enable = "avx512f,avx512ifma")]
fn ed_mul_base_ifma(tok: Ifma, chunks: &[ed::Digits]) -> Vec<[ed::AffineBytes; LANES]> {
    ed::mul_base_affine(tok, chunks)
}

/// 8-lane constant-time k·B for every chunk of digits, as affine coordinates.
pub(crate) fn ed_mul_base(tok: Ifma, chunks: &[ed::Digits]) -> Vec<[ed::AffineBytes; LANES]> {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the
    // callee is compiled for.
    unsafe { ed_mul_base_ifma(tok, chunks) }
}

/// The Ed25519 square-root kernel compiled with the features enabled.
#[target_feature(enable = "avx512f,avx512ifma")]
fn ed_sqrt_candidates_ifma(tok: Ifma, y: &ed::LaneFe) -> ed::SqrtCandidates {
    ed::sqrt_candidates_lanes(tok, y)
}

/// Square-root candidates of eight y coordinates (public data).
pub(crate) fn ed_sqrt_candidates(tok: Ifma, y: &ed::LaneFe) -> ed::SqrtCandidates {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the
    // callee is compiled for.
    unsafe { ed_sqrt_candidates_ifma(tok, y) }
}

/// The Ed25519 linear-combination kernel compiled with the features enabled.
#[target_feature(enable = "avx512f,avx512ifma")]
fn ed_lincomb_lanes_ifma(
    tok: Ifma,
    digits: &[ed::Digits],
    points: &[ed::LaneAffine],
    plain: &[ed::LaneAffine],
) -> ed::LaneExtended {
    ed::lincomb_lanes(tok, digits, points, plain)
}

/// 8-lane Σ sₜ·Pₜ + Σ Qᵤ on edwards25519 (public data).
pub(crate) fn ed_lincomb(
    tok: Ifma,
    digits: &[ed::Digits],
    points: &[ed::LaneAffine],
    plain: &[ed::LaneAffine],
) -> ed::LaneExtended {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the
    // callee is compiled for.
    unsafe { ed_lincomb_lanes_ifma(tok, digits, points, plain) }
}

/// The Ed25519 batch affine-conversion kernel compiled with the features enabled.
#[target_feature(enable = "avx512f,avx512ifma")]
fn ed_affine_lanes_ifma(tok: Ifma, points: &[ed::LaneExtended]) -> Vec<[ed::AffineBytes; LANES]> {
    ed::affine_lanes(tok, points)
}

/// Affine coordinates of extended points on eight lanes (public data).
pub(crate) fn ed_affine(tok: Ifma, points: &[ed::LaneExtended]) -> Vec<[ed::AffineBytes; LANES]> {
    // SAFETY: `tok` proves AVX-512F and AVX-512 IFMA (module invariant), the features the
    // callee is compiled for.
    unsafe { ed_affine_lanes_ifma(tok, points) }
}

#[cfg(test)]
mod tests {
    //! The vector lanes against the portable lanes: identical limbs on random inputs.
    use super::*;
    use crate::lanes::Portable;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn random_digits(r: &mut ChaCha20Rng) -> [[u64; LANES]; 64] {
        core::array::from_fn(|_| core::array::from_fn(|_| u64::from(r.next_u32() & 15)))
    }

    #[test]
    fn secp_mul_base_ifma_equals_portable() {
        let Some(tok) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA on this CPU: skipped");
            return;
        };
        let mut r = ChaCha20Rng::seed_from_u64(11);
        for round in 0..8 {
            let mut d = random_digits(&mut r);
            if round == 0 {
                // Extremes: all digits 0 (lane 0) and all digits 15 (lane 1).
                for row in d.iter_mut() {
                    row[0] = 0;
                    row[1] = 15;
                }
            }
            assert_eq!(secp_mul_base(tok, &d), secp::mul_base_lanes(Portable, &d));
        }
    }

    #[test]
    fn secp_lincomb_ifma_equals_portable() {
        use k256::elliptic_curve::Field;
        use k256::{AffinePoint, ProjectivePoint, Scalar};
        let Some(tok) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA on this CPU: skipped");
            return;
        };
        let mut r = ChaCha20Rng::seed_from_u64(13);
        let terms = 3;
        // Signed windows: magnitude 0..=8 with the sign bit.
        let digits: Vec<_> = (0..terms)
            .map(|_| {
                core::array::from_fn(|_| {
                    core::array::from_fn(|_| {
                        let x = r.next_u32();
                        u64::from(x % 9) | (u64::from((x >> 8) & 1) * secp::NEG)
                    })
                })
            })
            .collect();
        let points: Vec<secp::LaneAffine> = (0..terms)
            .map(|_| {
                let mut lanes = [[[0u64; LANES]; 5]; 2];
                for lane in 0..LANES {
                    let p = AffinePoint::from(ProjectivePoint::GENERATOR * Scalar::random(&mut r));
                    let limbs = secp::affine_limbs(&p);
                    for c in 0..2 {
                        for k in 0..5 {
                            lanes[c][k][lane] = limbs[c][k];
                        }
                    }
                }
                lanes
            })
            .collect();
        assert_eq!(
            secp_lincomb(tok, &digits, &points),
            secp::lincomb_lanes(Portable, &digits, &points)
        );
    }

    #[test]
    fn ed_mul_base_ifma_equals_portable() {
        let Some(tok) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA on this CPU: skipped");
            return;
        };
        let mut r = ChaCha20Rng::seed_from_u64(12);
        let chunks: Vec<_> = (0..5).map(|_| random_digits(&mut r)).collect();
        assert_eq!(
            ed_mul_base(tok, &chunks),
            ed::mul_base_affine(Portable, &chunks)
        );
    }

    #[test]
    fn ed_lincomb_sqrt_affine_ifma_equal_portable() {
        let Some(tok) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA on this CPU: skipped");
            return;
        };
        let mut r = ChaCha20Rng::seed_from_u64(14);
        let mut fe = || -> ed::LaneFe {
            core::array::from_fn(|k| {
                core::array::from_fn(|_| {
                    let v = r.next_u64() & crate::lanes::M52;
                    if k == 4 { v >> 5 } else { v }
                })
            })
        };
        // Field elements need not be on the curve for the lanes to agree limb for limb.
        let y = fe();
        let (a, b) = (
            ed_sqrt_candidates(tok, &y),
            ed::sqrt_candidates_lanes(Portable, &y),
        );
        assert_eq!((a.r, a.r_i, a.check, a.u), (b.r, b.r_i, b.check, b.u));
        let points: Vec<ed::LaneAffine> = (0..3).map(|_| [fe(), fe()]).collect();
        let plain: Vec<ed::LaneAffine> = (0..2).map(|_| [fe(), fe()]).collect();
        let digits: Vec<ed::Digits> = (0..3)
            .map(|_| {
                core::array::from_fn(|_| {
                    core::array::from_fn(|_| {
                        let x = r.next_u32();
                        u64::from(x % 9) | (u64::from((x >> 8) & 1) * secp::NEG)
                    })
                })
            })
            .collect();
        let out = ed_lincomb(tok, &digits, &points, &plain);
        assert_eq!(out, ed::lincomb_lanes(Portable, &digits, &points, &plain));
        assert_eq!(ed_affine(tok, &[out]), ed::affine_lanes(Portable, &[out]));
    }
}
