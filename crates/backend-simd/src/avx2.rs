//! AVX2 lanes: eight 64-bit lanes in two `__m256i` (4 lanes each), for CPUs without IFMA.
//!
//! AVX2 has no 52-bit multiplier: each `vpmadd52luq`/`vpmadd52huq` is emulated from four
//! 26×26-bit products (`vpmuludq`, constant time), which gives exactly the IFMA results.
//!
//! UNSAFETY: this is the only module of the crate besides `ifma.rs` that uses `unsafe`, for the
//! AVX2 instruction set. The intrinsics it calls are `#[target_feature]` functions, sound to
//! call only on a CPU with AVX2. The invariant that makes every block here sound: a value of
//! type [`Avx2`] can only be obtained from [`Avx2::detect`], which returns one only after
//! run-time detection (`is_x86_feature_detected!`) proved AVX2 on this CPU. Every function that
//! runs an intrinsic takes an `Avx2` token. Loads and stores go through arrays of exactly eight
//! `u64`s with the unaligned intrinsics, two halves of 32 bytes each.
#![allow(unsafe_code)]

use core::arch::x86_64::{
    __m256i, _mm_cvtsi64_si128, _mm256_add_epi64, _mm256_and_si256, _mm256_blendv_epi8,
    _mm256_cmpeq_epi64, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_set1_epi64x, _mm256_sll_epi64,
    _mm256_srl_epi64, _mm256_storeu_si256, _mm256_sub_epi64,
};

use crate::lanes::{LANES, Lanes, M52};
use crate::{ed, secp};

/// Mask of the low 26 bits.
const M26: i64 = (1 << 26) - 1;

/// Proof that this CPU has AVX2.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Avx2(());

impl Avx2 {
    /// The token, when the CPU has AVX2.
    pub(crate) fn detect() -> Option<Self> {
        std::arch::is_x86_feature_detected!("avx2").then_some(Avx2(()))
    }

    /// 52-bit operands split in 26-bit halves, and their four partial products.
    #[inline(always)]
    fn partials(self, a: __m256i, b: __m256i) -> (__m256i, __m256i, __m256i) {
        // SAFETY: `self` proves AVX2 (module invariant).
        unsafe {
            let m26 = _mm256_set1_epi64x(M26);
            let m52 = _mm256_set1_epi64x(M52 as i64);
            let sh = _mm_cvtsi64_si128(26);
            let (a, b) = (_mm256_and_si256(a, m52), _mm256_and_si256(b, m52));
            let (a0, a1) = (_mm256_and_si256(a, m26), _mm256_srl_epi64(a, sh));
            let (b0, b1) = (_mm256_and_si256(b, m26), _mm256_srl_epi64(b, sh));
            let p00 = _mm256_mul_epu32(a0, b0);
            let mid = _mm256_add_epi64(_mm256_mul_epu32(a0, b1), _mm256_mul_epu32(a1, b0));
            let p11 = _mm256_mul_epu32(a1, b1);
            // lo = p00 + (mid mod 2^26)·2^26 < 2^53; a·b = (p11 + mid/2^26)·2^52 + lo.
            let lo = _mm256_add_epi64(p00, _mm256_sll_epi64(_mm256_and_si256(mid, m26), sh));
            (lo, _mm256_srl_epi64(mid, sh), p11)
        }
    }

    #[inline(always)]
    fn madd52lo4(self, acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        let (lo, _, _) = self.partials(a, b);
        // SAFETY: `self` proves AVX2.
        unsafe { _mm256_add_epi64(acc, _mm256_and_si256(lo, _mm256_set1_epi64x(M52 as i64))) }
    }

    #[inline(always)]
    fn madd52hi4(self, acc: __m256i, a: __m256i, b: __m256i) -> __m256i {
        let (lo, mid_hi, p11) = self.partials(a, b);
        // SAFETY: `self` proves AVX2.
        unsafe {
            let carry = _mm256_srl_epi64(lo, _mm_cvtsi64_si128(52));
            _mm256_add_epi64(acc, _mm256_add_epi64(_mm256_add_epi64(p11, mid_hi), carry))
        }
    }
}

impl Lanes for Avx2 {
    type V = [__m256i; 2];
    type M = [__m256i; 2];

    #[inline(always)]
    fn splat(self, x: u64) -> Self::V {
        // SAFETY: `self` proves AVX2.
        let v = unsafe { _mm256_set1_epi64x(x as i64) };
        [v, v]
    }
    #[inline(always)]
    fn load(self, x: &[u64; LANES]) -> Self::V {
        // SAFETY: `self` proves AVX2; `x` is 64 readable bytes, read as two unaligned 32-byte
        // halves.
        unsafe {
            [
                _mm256_loadu_si256(x.as_ptr().cast()),
                _mm256_loadu_si256(x[4..].as_ptr().cast()),
            ]
        }
    }
    #[inline(always)]
    fn store(self, v: Self::V) -> [u64; LANES] {
        let mut out = [0u64; LANES];
        // SAFETY: `self` proves AVX2; `out` is 64 writable bytes, written as two unaligned
        // 32-byte halves.
        unsafe {
            _mm256_storeu_si256(out.as_mut_ptr().cast(), v[0]);
            _mm256_storeu_si256(out[4..].as_mut_ptr().cast(), v[1]);
        }
        out
    }
    #[inline(always)]
    fn add(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: `self` proves AVX2.
        unsafe { [_mm256_add_epi64(a[0], b[0]), _mm256_add_epi64(a[1], b[1])] }
    }
    #[inline(always)]
    fn sub(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: `self` proves AVX2.
        unsafe { [_mm256_sub_epi64(a[0], b[0]), _mm256_sub_epi64(a[1], b[1])] }
    }
    #[inline(always)]
    fn and(self, a: Self::V, b: Self::V) -> Self::V {
        // SAFETY: `self` proves AVX2.
        unsafe { [_mm256_and_si256(a[0], b[0]), _mm256_and_si256(a[1], b[1])] }
    }
    #[inline(always)]
    fn shr<const N: u32>(self, a: Self::V) -> Self::V {
        // SAFETY: `self` proves AVX2.
        unsafe {
            let c = _mm_cvtsi64_si128(i64::from(N));
            [_mm256_srl_epi64(a[0], c), _mm256_srl_epi64(a[1], c)]
        }
    }
    #[inline(always)]
    fn shl<const N: u32>(self, a: Self::V) -> Self::V {
        // SAFETY: `self` proves AVX2.
        unsafe {
            let c = _mm_cvtsi64_si128(i64::from(N));
            [_mm256_sll_epi64(a[0], c), _mm256_sll_epi64(a[1], c)]
        }
    }
    #[inline(always)]
    fn madd52lo(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V {
        [
            self.madd52lo4(acc[0], a[0], b[0]),
            self.madd52lo4(acc[1], a[1], b[1]),
        ]
    }
    #[inline(always)]
    fn madd52hi(self, acc: Self::V, a: Self::V, b: Self::V) -> Self::V {
        [
            self.madd52hi4(acc[0], a[0], b[0]),
            self.madd52hi4(acc[1], a[1], b[1]),
        ]
    }
    #[inline(always)]
    fn eq(self, a: Self::V, b: Self::V) -> Self::M {
        // SAFETY: `self` proves AVX2.
        unsafe {
            [
                _mm256_cmpeq_epi64(a[0], b[0]),
                _mm256_cmpeq_epi64(a[1], b[1]),
            ]
        }
    }
    #[inline(always)]
    fn select(self, m: Self::M, if_false: Self::V, if_true: Self::V) -> Self::V {
        // SAFETY: `self` proves AVX2; the masks are whole-lane (all-ones or zero).
        unsafe {
            [
                _mm256_blendv_epi8(if_false[0], if_true[0], m[0]),
                _mm256_blendv_epi8(if_false[1], if_true[1], m[1]),
            ]
        }
    }
}

#[target_feature(enable = "avx2")]
fn secp_mul_base_lanes_avx2(tok: Avx2, digits: &secp::Digits) -> secp::LaneOutput {
    secp::mul_base_lanes(tok, digits)
}

/// Constant-time k·G on eight lanes.
pub(crate) fn secp_mul_base(tok: Avx2, digits: &secp::Digits) -> secp::LaneOutput {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { secp_mul_base_lanes_avx2(tok, digits) }
}

#[target_feature(enable = "avx2")]
fn secp_lincomb_lanes_avx2(
    tok: Avx2,
    digits: &[secp::Digits],
    points: &[secp::LaneAffine],
) -> secp::LaneOutput {
    secp::lincomb_lanes(tok, digits, points)
}

/// Σ sₜ·Pₜ on eight lanes (public data).
pub(crate) fn secp_lincomb(
    tok: Avx2,
    digits: &[secp::Digits],
    points: &[secp::LaneAffine],
) -> secp::LaneOutput {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { secp_lincomb_lanes_avx2(tok, digits, points) }
}

#[target_feature(enable = "avx2")]
fn secp_pippenger_lanes_avx2(
    tok: Avx2,
    digits: &[[u64; LANES]],
    points: &[[[u64; 5]; 2]],
    buckets: &mut [secp::Bucket],
) -> secp::LaneOutput {
    secp::pippenger_lanes(tok, digits, points, buckets)
}

/// One 8-window Pippenger pass (public data).
pub(crate) fn secp_pippenger(
    tok: Avx2,
    digits: &[[u64; LANES]],
    points: &[[[u64; 5]; 2]],
    buckets: &mut [secp::Bucket],
) -> secp::LaneOutput {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { secp_pippenger_lanes_avx2(tok, digits, points, buckets) }
}

#[target_feature(enable = "avx2")]
fn ed_mul_base_avx2(tok: Avx2, chunks: &[ed::Digits]) -> Vec<[ed::AffineBytes; LANES]> {
    ed::mul_base_affine(tok, chunks)
}

/// Constant-time k·B on eight lanes per chunk, as affine coordinates.
pub(crate) fn ed_mul_base(tok: Avx2, chunks: &[ed::Digits]) -> Vec<[ed::AffineBytes; LANES]> {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { ed_mul_base_avx2(tok, chunks) }
}

/// The Ed25519 square-root kernel compiled with the features enabled.
#[target_feature(enable = "avx2")]
fn ed_sqrt_candidates_avx2(tok: Avx2, y: &ed::LaneFe) -> ed::SqrtCandidates {
    ed::sqrt_candidates_lanes(tok, y)
}

/// Square-root candidates of eight y coordinates (public data).
pub(crate) fn ed_sqrt_candidates(tok: Avx2, y: &ed::LaneFe) -> ed::SqrtCandidates {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { ed_sqrt_candidates_avx2(tok, y) }
}

/// The Ed25519 linear-combination kernel compiled with the features enabled.
#[target_feature(enable = "avx2")]
fn ed_lincomb_lanes_avx2(
    tok: Avx2,
    digits: &[ed::Digits],
    points: &[ed::LaneAffine],
    plain: &[ed::LaneAffine],
) -> ed::LaneExtended {
    ed::lincomb_lanes(tok, digits, points, plain)
}

/// 8-lane Σ sₜ·Pₜ + Σ Qᵤ on edwards25519 (public data).
pub(crate) fn ed_lincomb(
    tok: Avx2,
    digits: &[ed::Digits],
    points: &[ed::LaneAffine],
    plain: &[ed::LaneAffine],
) -> ed::LaneExtended {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { ed_lincomb_lanes_avx2(tok, digits, points, plain) }
}

/// The Ed25519 batch affine-conversion kernel compiled with the features enabled.
#[target_feature(enable = "avx2")]
fn ed_affine_lanes_avx2(tok: Avx2, points: &[ed::LaneExtended]) -> Vec<[ed::AffineBytes; LANES]> {
    ed::affine_lanes(tok, points)
}

/// Affine coordinates of extended points on eight lanes (public data).
pub(crate) fn ed_affine(tok: Avx2, points: &[ed::LaneExtended]) -> Vec<[ed::AffineBytes; LANES]> {
    // SAFETY: `tok` proves AVX2 (module invariant), the feature the callee is compiled for.
    unsafe { ed_affine_lanes_avx2(tok, points) }
}

#[cfg(test)]
mod tests {
    //! The AVX2 lanes against the portable lanes: identical limbs on random inputs.
    use super::*;
    use crate::lanes::Portable;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn madd52_matches_portable() {
        let Some(tok) = Avx2::detect() else {
            eprintln!("no AVX2 on this CPU: skipped");
            return;
        };
        let mut r = ChaCha20Rng::seed_from_u64(21);
        for _ in 0..1000 {
            let v: [[u64; LANES]; 3] =
                core::array::from_fn(|_| core::array::from_fn(|_| r.next_u64()));
            let (acc, a, b) = (v[0].map(|x| x >> 2), v[1], v[2]);
            let p = Portable;
            let lo = tok.store(tok.madd52lo(tok.load(&acc), tok.load(&a), tok.load(&b)));
            let hi = tok.store(tok.madd52hi(tok.load(&acc), tok.load(&a), tok.load(&b)));
            assert_eq!(lo, p.madd52lo(acc, a, b));
            assert_eq!(hi, p.madd52hi(acc, a, b));
        }
    }

    #[test]
    fn secp_mul_base_avx2_equals_portable() {
        let Some(tok) = Avx2::detect() else {
            eprintln!("no AVX2 on this CPU: skipped");
            return;
        };
        let mut r = ChaCha20Rng::seed_from_u64(22);
        let d: secp::Digits =
            core::array::from_fn(|_| core::array::from_fn(|_| u64::from(r.next_u32() & 15)));
        assert_eq!(secp_mul_base(tok, &d), secp::mul_base_lanes(Portable, &d));
    }

    #[test]
    fn ed_lincomb_sqrt_affine_avx2_equal_portable() {
        let Some(tok) = Avx2::detect() else {
            eprintln!("no AVX2 on this CPU: skipped");
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
