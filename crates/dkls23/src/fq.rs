//! Arithmetic modulo the secp256k1 group order `n` for the multiplication's bulk loops
//! (`src/mul.rs`: hundreds of pads, corrections and check values per session), on four
//! little-endian 64-bit limbs, always reduced.
//!
//! The values are the same as `k256::Scalar`'s (conversions both ways are exact); what differs
//! is the cost. Products use Montgomery multiplication (CIOS, Koç, Acar and Kaliski, *Analyzing
//! and Comparing Montgomery Multiplication Algorithms*, IEEE Micro 16(3), 1996) against a factor
//! prepared once ([`MontFactor`], `x·R mod n` with `R = 2^256`), so that the product of a factor
//! and a plain value is the plain product `x·y mod n` with no conversion of `y`. Additions
//! and subtractions are limb arithmetic with one conditional correction.
//!
//! Constant time: no branch and no memory index depends on a value. Every correction is
//! chosen by a mask made from a carry or borrow word (all ones or zero), the way
//! `crypto-bigint` and k256's field arithmetic select; secret bits from outside (Bob's
//! choice bits) become a mask through `subtle` ([`mask`]).

use k256::elliptic_curve::scalar::FromUintUnchecked;
use k256::{Scalar, U256};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

/// The group order `n`, little-endian limbs.
const N: [u64; 4] = [
    0xBFD2_5E8C_D036_4141,
    0xBAAE_DCE6_AF48_A03B,
    0xFFFF_FFFF_FFFF_FFFE,
    0xFFFF_FFFF_FFFF_FFFF,
];

/// `−n⁻¹ mod 2^64`, the Montgomery reduction constant.
const N_INV: u64 = 0x4B0D_FF66_5588_B13F;

/// `R mod n = 2^256 − n`.
const R_MOD_N: [u64; 4] = [0x402D_A173_2FC9_BEBF, 0x4551_2319_50B7_5FC4, 1, 0];

/// A value modulo `n`, reduced (`< n`).
#[derive(Clone, Copy, Default, Zeroize)]
pub(crate) struct Fq([u64; 4]);

impl core::fmt::Debug for Fq {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Fq(..)")
    }
}

impl ConstantTimeEq for Fq {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

impl PartialEq for Fq {
    fn eq(&self, other: &Self) -> bool {
        self.ct_eq(other).into()
    }
}

impl Eq for Fq {}

/// An all-ones or all-zero word from a secret bit (0 or 1), through `subtle`.
pub(crate) fn mask(bit: u8) -> u64 {
    u64::conditional_select(&0, &u64::MAX, Choice::from(bit))
}

#[inline(always)]
fn adc(a: u64, b: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) + u128::from(b) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// `a − b − borrow` (`borrow` 0 or 1); the second word is all ones on a borrow, else zero.
#[inline(always)]
fn sbb(a: u64, b: u64, borrow: u64) -> (u64, u64) {
    let t = u128::from(a).wrapping_sub(u128::from(b) + u128::from(borrow));
    (t as u64, (t >> 64) as u64)
}

/// `a·b + c + carry` as (low, high) words.
#[inline(always)]
fn mac(a: u64, b: u64, c: u64, carry: u64) -> (u64, u64) {
    let t = u128::from(a) * u128::from(b) + u128::from(c) + u128::from(carry);
    (t as u64, (t >> 64) as u64)
}

/// `x` if `m` is zero, `y` if `m` is all ones.
#[inline(always)]
fn pick(x: &[u64; 4], y: &[u64; 4], m: u64) -> [u64; 4] {
    core::array::from_fn(|i| x[i] ^ (m & (x[i] ^ y[i])))
}

/// `v − n` where `v` (with a fifth word `hi`, 0 or 1) is below `2n`, else `v`.
#[inline(always)]
fn sub_n_if_at_least(v: &[u64; 4], hi: u64) -> [u64; 4] {
    let mut d = [0u64; 4];
    let mut b = 0;
    for i in 0..4 {
        let (w, bw) = sbb(v[i], N[i], b);
        d[i] = w;
        b = bw & 1;
    }
    // Borrow out of the fifth word: `v < n`, keep `v`.
    let (_, keep) = sbb(hi, 0, b);
    pick(&d, v, keep)
}

impl Fq {
    /// Zero.
    pub(crate) const ZERO: Fq = Fq([0; 4]);

    /// The 256-bit little-endian value `v` reduced modulo `n` by one conditional subtraction
    /// (the same value as `<Scalar as Reduce<U256>>::reduce`).
    pub(crate) fn reduce(v: [u64; 4]) -> Fq {
        Fq(sub_n_if_at_least(&v, 0))
    }

    /// The value of a k256 scalar.
    pub(crate) fn from_scalar(s: &Scalar) -> Fq {
        Fq(U256::from(s).to_words())
    }

    /// As a k256 scalar.
    pub(crate) fn to_scalar(self) -> Scalar {
        Scalar::from_uint_unchecked(U256::from_words(self.0))
    }

    /// The canonical big-endian encoding (the same bytes as `Scalar::to_bytes`).
    pub(crate) fn to_bytes(self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, w) in self.0.iter().enumerate() {
            b[24 - 8 * i..32 - 8 * i].copy_from_slice(&w.to_be_bytes());
        }
        b
    }

    /// Decodes a canonical big-endian encoding; `None` when it is not below `n`.
    pub(crate) fn from_bytes(b: &[u8; 32]) -> Option<Fq> {
        let v: [u64; 4] = core::array::from_fn(|i| {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[24 - 8 * i..32 - 8 * i]);
            u64::from_be_bytes(w)
        });
        let mut borrow = 0;
        for i in 0..4 {
            borrow = sbb(v[i], N[i], borrow).1 & 1;
        }
        (borrow == 1).then_some(Fq(v))
    }

    /// `self + other mod n`.
    #[inline(always)]
    pub(crate) fn add(&self, other: &Fq) -> Fq {
        let mut s = [0u64; 4];
        let mut c = 0;
        for (i, si) in s.iter_mut().enumerate() {
            let (w, cw) = adc(self.0[i], other.0[i], c);
            *si = w;
            c = cw;
        }
        Fq(sub_n_if_at_least(&s, c))
    }

    /// `self − other mod n`.
    #[inline(always)]
    pub(crate) fn sub(&self, other: &Fq) -> Fq {
        let mut d = [0u64; 4];
        let mut b = 0;
        for (i, di) in d.iter_mut().enumerate() {
            let (w, bw) = sbb(self.0[i], other.0[i], b);
            *di = w;
            b = bw & 1;
        }
        // On a borrow add `n` back (the mask selects `n` or zero).
        let m = 0u64.wrapping_sub(b);
        let mut c = 0;
        for (i, di) in d.iter_mut().enumerate() {
            let (w, cw) = adc(*di, N[i] & m, c);
            *di = w;
            c = cw;
        }
        Fq(d)
    }

    /// `−self mod n`.
    #[inline(always)]
    pub(crate) fn neg(&self) -> Fq {
        Fq::ZERO.sub(self)
    }

    /// `self + self mod n`.
    #[inline(always)]
    pub(crate) fn double(&self) -> Fq {
        self.add(self)
    }

    /// `self` where `m` is zero, `other` where `m` is all ones ([`mask`]).
    #[inline(always)]
    pub(crate) fn select(&self, other: &Fq, m: u64) -> Fq {
        Fq(pick(&self.0, &other.0, m))
    }

    /// `self` where `m` is all ones, zero where `m` is zero.
    #[inline(always)]
    pub(crate) fn and_mask(&self, m: u64) -> Fq {
        Fq(self.0.map(|w| w & m))
    }
}

/// A multiplier prepared for Montgomery multiplication: `x·R mod n` for a value `x`, so that
/// [`MontFactor::mul`] by a plain value `y` gives the plain product `x·y mod n`.
#[derive(Clone, Copy, Zeroize)]
pub(crate) struct MontFactor([u64; 4]);

impl MontFactor {
    /// The factor for `x` (`x·R mod n`, through k256's multiplication: done once per factor).
    pub(crate) fn new(x: &Scalar) -> MontFactor {
        let r = Fq(R_MOD_N).to_scalar();
        MontFactor(Fq::from_scalar(&(x * &r)).0)
    }

    /// `x·y mod n`: Montgomery's product `(x·R)·y·R⁻¹`, word by word (CIOS), then one
    /// conditional subtraction.
    #[inline(always)]
    pub(crate) fn mul(&self, y: &Fq) -> Fq {
        let a = &self.0;
        let b = &y.0;
        let mut t = [0u64; 6];
        for bi in b {
            let mut c = 0;
            for j in 0..4 {
                let (lo, hi) = mac(a[j], *bi, t[j], c);
                t[j] = lo;
                c = hi;
            }
            let (s, c2) = adc(t[4], c, 0);
            t[4] = s;
            t[5] = c2;
            let m = t[0].wrapping_mul(N_INV);
            let (_, mut c) = mac(m, N[0], t[0], 0);
            for j in 1..4 {
                let (lo, hi) = mac(m, N[j], t[j], c);
                t[j - 1] = lo;
                c = hi;
            }
            let (s, c2) = adc(t[4], c, 0);
            t[3] = s;
            t[4] = t[5] + c2;
        }
        let v = [t[0], t[1], t[2], t[3]];
        let out = Fq(sub_n_if_at_least(&v, t[4]));
        t.zeroize();
        out
    }
}

/// `x₀·y₀ + x₁·y₁ mod n` for factors `x₀`, `x₁`: both double-width products summed, then one
/// Montgomery reduction (instead of one per product) and two conditional subtractions (the
/// reduced sum is below `3n`).
#[inline(always)]
pub(crate) fn dot2(x0: &MontFactor, y0: &Fq, x1: &MontFactor, y1: &Fq) -> Fq {
    let mut t = [0u64; 9];
    for (x, y) in [(&x0.0, &y0.0), (&x1.0, &y1.0)] {
        for (i, yi) in y.iter().enumerate() {
            let mut c = 0;
            for (j, xj) in x.iter().enumerate() {
                let (lo, hi) = mac(*xj, *yi, t[i + j], c);
                t[i + j] = lo;
                c = hi;
            }
            for w in &mut t[i + 4..] {
                let (s, cw) = adc(*w, c, 0);
                *w = s;
                c = cw;
            }
        }
    }
    for i in 0..4 {
        let m = t[i].wrapping_mul(N_INV);
        let mut c = 0;
        for (j, nj) in N.iter().enumerate() {
            let (lo, hi) = mac(m, *nj, t[i + j], c);
            t[i + j] = lo;
            c = hi;
        }
        for w in &mut t[i + 4..] {
            let (s, cw) = adc(*w, c, 0);
            *w = s;
            c = cw;
        }
    }
    // `t[4..9]` is below 3n < 2^258: subtract `n` from the five words once, keeping the
    // difference when it does not borrow; the rest is below 2n.
    let mut d = [0u64; 5];
    let mut b = 0;
    for (i, di) in d.iter_mut().enumerate() {
        let (w, bw) = sbb(t[4 + i], if i < 4 { N[i] } else { 0 }, b);
        *di = w;
        b = bw & 1;
    }
    let keep = 0u64.wrapping_sub(b);
    let v: [u64; 5] = core::array::from_fn(|i| d[i] ^ (keep & (d[i] ^ t[4 + i])));
    let out = Fq(sub_n_if_at_least(&[v[0], v[1], v[2], v[3]], v[4]));
    t.zeroize();
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;
    use k256::elliptic_curve::bigint::Encoding;
    use k256::elliptic_curve::ops::Reduce;
    use proptest::prelude::*;

    fn edge() -> Vec<Scalar> {
        vec![
            Scalar::ZERO,
            Scalar::ONE,
            -Scalar::ONE,
            -Scalar::from(2u64),
            Fq(R_MOD_N).to_scalar(),
            Scalar::from(u64::MAX),
            Scalar::from_uint_unchecked(U256::from_words([0, 0, 0, 1 << 63])),
            Scalar::from_uint_unchecked(U256::from_words([u64::MAX, u64::MAX, 0, 0])),
        ]
    }

    /// The constants are what their names say.
    #[test]
    fn constants_match_the_order() {
        assert_eq!(
            N[0].wrapping_mul(N_INV),
            u64::MAX,
            "N_INV is not −n⁻¹ mod 2^64"
        );
        let n = U256::from_words(N);
        assert_eq!(
            U256::from_words(R_MOD_N),
            U256::ZERO.wrapping_sub(&n),
            "R mod n"
        );
        assert_eq!(
            Scalar::from_uint_unchecked(U256::from_words(N).wrapping_sub(&U256::ONE)),
            -Scalar::ONE
        );
    }

    /// Every operation agrees with k256 on edge values and on each pair of them.
    #[test]
    fn operations_agree_with_k256_on_edge_values() {
        for x in edge() {
            let fx = Fq::from_scalar(&x);
            assert_eq!(fx.to_scalar(), x);
            assert_eq!(fx.to_bytes(), <[u8; 32]>::from(x.to_bytes()));
            assert_eq!(Fq::from_bytes(&fx.to_bytes()), Some(fx));
            assert_eq!(fx.neg().to_scalar(), -x);
            assert_eq!(fx.double().to_scalar(), x + x);
            for y in edge() {
                let fy = Fq::from_scalar(&y);
                assert_eq!(fx.add(&fy).to_scalar(), x + y);
                assert_eq!(fx.sub(&fy).to_scalar(), x - y);
                assert_eq!(MontFactor::new(&x).mul(&fy).to_scalar(), x * y);
                for z in edge() {
                    let got = dot2(&MontFactor::new(&x), &fy, &MontFactor::new(&z), &fx);
                    assert_eq!(got.to_scalar(), x * y + z * x);
                }
                assert_eq!(fx.select(&fy, 0), fx);
                assert_eq!(fx.select(&fy, mask(1)), fy);
                assert_eq!(fy.and_mask(mask(0)), Fq::ZERO);
                assert_eq!(fy.and_mask(mask(1)), fy);
            }
        }
    }

    /// `Debug` shows no value (these hold pads and output shares).
    #[test]
    fn debug_output_is_redacted() {
        let x = Fq::from_scalar(&Scalar::from(0x1234_5678u64));
        assert_eq!(format!("{x:?}"), "Fq(..)");
    }

    /// `n` and every value above it are refused as encodings and reduced as integers.
    #[test]
    fn encodings_at_and_above_the_order() {
        let n = U256::from_words(N);
        for v in [n, n.wrapping_add(&U256::ONE), U256::MAX] {
            let be = v.to_be_bytes();
            assert_eq!(Fq::from_bytes(&be), None);
            assert_eq!(
                Fq::reduce(v.to_words()).to_scalar(),
                <Scalar as Reduce<U256>>::reduce(v)
            );
        }
        let below = n.wrapping_sub(&U256::ONE);
        assert_eq!(
            Fq::from_bytes(&below.to_be_bytes()).map(Fq::to_scalar),
            Some(-Scalar::ONE)
        );
    }

    fn scalar() -> impl Strategy<Value = Scalar> {
        any::<[u64; 4]>().prop_map(|w| <Scalar as Reduce<U256>>::reduce(U256::from_words(w)))
    }

    proptest! {
        /// Random values: every operation agrees with k256.
        #[test]
        fn operations_agree_with_k256(x in scalar(), y in scalar(), w in any::<[u64; 4]>()) {
            let (fx, fy) = (Fq::from_scalar(&x), Fq::from_scalar(&y));
            prop_assert_eq!(fx.add(&fy).to_scalar(), x + y);
            prop_assert_eq!(fx.sub(&fy).to_scalar(), x - y);
            prop_assert_eq!(fx.neg().to_scalar(), -x);
            prop_assert_eq!(MontFactor::new(&x).mul(&fy).to_scalar(), x * y);
            let z = Fq::reduce(w);
            prop_assert_eq!(
                dot2(&MontFactor::new(&x), &fy, &MontFactor::new(&y), &z).to_scalar(),
                x * y + y * z.to_scalar()
            );
            prop_assert_eq!(
                Fq::reduce(w).to_scalar(),
                <Scalar as Reduce<U256>>::reduce(U256::from_words(w))
            );
            prop_assert_eq!(Fq::from_bytes(&fx.to_bytes()), Some(fx));
        }
    }

    /// Random products agree with k256 over many draws, including the largest values.
    #[test]
    fn montgomery_products_match_over_many_draws() {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        for _ in 0..2000 {
            let (x, y) = (Scalar::random(&mut rng), Scalar::random(&mut rng));
            assert_eq!(
                MontFactor::new(&x).mul(&Fq::from_scalar(&y)).to_scalar(),
                x * y
            );
            let big = -y;
            assert_eq!(
                MontFactor::new(&-x).mul(&Fq::from_scalar(&big)).to_scalar(),
                x * y
            );
        }
    }

    use rand_core::SeedableRng;
}
