//! Radix-2^52 arithmetic modulo a pseudo-Mersenne prime p = 2^k − c on lanes, written once for
//! both curves' base fields.
//!
//! Representation: five limbs `l0..l4`, value `Σ lᵢ·2^(52i)`, not necessarily fully reduced.
//! Every function returns elements in *weak form* — `l0..l3 < 2^52`, `l4 < 2^49` — and accepts
//! them as inputs. Weak form is what the IFMA multiplier needs: `vpmadd52luq` reads only the low
//! 52 bits of each operand, so every limb fed to it must be below 2^52.

use crate::lanes::{LANES, Lanes, M52};

/// A prime p = 2^(208 + TOP) − C with its reduction constants.
pub(crate) trait Prime {
    /// 2^(208 + TOP) mod p (the prime is 2^(208+TOP) − C).
    const C: u64;
    /// 2^260 mod p.
    const R: u64;
    /// Bits of the top limb in a canonical element.
    const TOP_MASK: u64;
    /// 8·p with every limb large enough to subtract a weak-form limb from it:
    /// `l0..l3 ≥ 2^52`, `l4 ≥ 2^49`.
    const P8: [u64; 5];
    /// `l4 >> TOP` (the bits of limb 4 at weight 2^(208+TOP) and above).
    fn top<L: Lanes>(l: L, l4: L::V) -> L::V;
}

/// A field element on lanes.
pub(crate) type Fe<L> = [<L as Lanes>::V; 5];

/// Every lane set to the limbs `x`.
#[inline(always)]
pub(crate) fn splat5<L: Lanes>(l: L, x: [u64; 5]) -> Fe<L> {
    [
        l.splat(x[0]),
        l.splat(x[1]),
        l.splat(x[2]),
        l.splat(x[3]),
        l.splat(x[4]),
    ]
}

/// Lanes from `[limb][lane]` arrays (no closure, so it inlines into vector code).
#[inline(always)]
pub(crate) fn load5<L: Lanes>(l: L, x: &[[u64; LANES]; 5]) -> Fe<L> {
    [
        l.load(&x[0]),
        l.load(&x[1]),
        l.load(&x[2]),
        l.load(&x[3]),
        l.load(&x[4]),
    ]
}

/// `[limb][lane]` arrays of an element.
#[inline(always)]
pub(crate) fn store5<L: Lanes>(l: L, x: &Fe<L>) -> [[u64; LANES]; 5] {
    [
        l.store(x[0]),
        l.store(x[1]),
        l.store(x[2]),
        l.store(x[3]),
        l.store(x[4]),
    ]
}

/// Carries every limb into the next; `l0..l3` end below 2^52.
#[inline(always)]
fn carry<L: Lanes>(l: L, r: &mut Fe<L>) {
    let m = l.splat(M52);
    for i in 0..4 {
        r[i + 1] = l.add(r[i + 1], l.shr::<52>(r[i]));
        r[i] = l.and(r[i], m);
    }
}

/// Weak form of limbs each below 2^63 whose top part `l4 >> TOP` times C is below 2^52: folds
/// that top part into `l0` (2^(208+TOP) ≡ C), then carries once.
#[inline(always)]
pub(crate) fn reduce_weak<P: Prime, L: Lanes>(l: L, mut r: Fe<L>) -> Fe<L> {
    let h = P::top(l, r[4]);
    r[4] = l.and(r[4], l.splat(P::TOP_MASK));
    r[0] = l.madd52lo(r[0], h, l.splat(P::C));
    carry(l, &mut r);
    r
}

/// a + b.
#[inline(always)]
pub(crate) fn add<P: Prime, L: Lanes>(l: L, a: &Fe<L>, b: &Fe<L>) -> Fe<L> {
    let mut r = *a;
    for i in 0..5 {
        r[i] = l.add(a[i], b[i]);
    }
    reduce_weak::<P, L>(l, r)
}

/// a − b (as a + 8p − b).
#[inline(always)]
pub(crate) fn sub<P: Prime, L: Lanes>(l: L, a: &Fe<L>, b: &Fe<L>) -> Fe<L> {
    let p8 = splat5(l, P::P8);
    let mut r = *a;
    for i in 0..5 {
        r[i] = l.sub(l.add(a[i], p8[i]), b[i]);
    }
    reduce_weak::<P, L>(l, r)
}

/// a·b: 25 IFMA low/high pairs for the 10-column product, the high columns folded with
/// 2^260 ≡ R, then one weak reduction.
#[inline(always)]
pub(crate) fn mul<P: Prime, L: Lanes>(l: L, a: &Fe<L>, b: &Fe<L>) -> Fe<L> {
    let zero = l.splat(0);
    let mut t = [zero; 10];
    for i in 0..5 {
        for j in 0..5 {
            t[i + j] = l.madd52lo(t[i + j], a[i], b[j]);
            t[i + j + 1] = l.madd52hi(t[i + j + 1], a[i], b[j]);
        }
    }
    // Columns are below 2^56; t9 = hi(a4·b4) < 2^46. Bring t5..t8 below 2^52 so they can be
    // IFMA operands; t9 stays below 2^52.
    let m = l.splat(M52);
    for k in 5..9 {
        t[k + 1] = l.add(t[k + 1], l.shr::<52>(t[k]));
        t[k] = l.and(t[k], m);
    }
    let rr = l.splat(P::R);
    let mut r = [t[0], t[1], t[2], t[3], t[4], zero];
    for k in 5..10 {
        r[k - 5] = l.madd52lo(r[k - 5], t[k], rr);
        r[k - 4] = l.madd52hi(r[k - 4], t[k], rr);
    }
    // r5 = hi(t9·R) < 2^34 has weight 2^260 again.
    let r5 = r[5];
    r[0] = l.madd52lo(r[0], r5, rr);
    r[1] = l.madd52hi(r[1], r5, rr);
    reduce_weak::<P, L>(l, [r[0], r[1], r[2], r[3], r[4]])
}

/// The canonical value (below p) of a weak-form element, as limbs (public data only).
pub(crate) fn canonical<P: Prime>(limbs: &[u64; 5]) -> [u64; 5] {
    let top_bits = P::TOP_MASK.count_ones();
    let mut r = *limbs;
    // Two folds bring the value below 2^(208+TOP) (the first can leave a carry at the top).
    for _ in 0..2 {
        let h = r[4] >> top_bits;
        r[4] &= P::TOP_MASK;
        r[0] += h * P::C;
        for i in 0..4 {
            r[i + 1] += r[i] >> 52;
            r[i] &= M52;
        }
    }
    // value < 2^(208+TOP) < 2p: subtract p when value + C reaches 2^(208+TOP).
    let mut s = r;
    s[0] += P::C;
    for i in 0..4 {
        s[i + 1] += s[i] >> 52;
        s[i] &= M52;
    }
    if s[4] >> top_bits != 0 {
        s[4] &= P::TOP_MASK;
        r = s;
    }
    r
}

/// Four little-endian 64-bit words of canonical limbs.
pub(crate) fn limbs_to_words(r: &[u64; 5]) -> [u64; 4] {
    [
        r[0] | (r[1] << 52),
        (r[1] >> 12) | (r[2] << 40),
        (r[2] >> 24) | (r[3] << 28),
        (r[3] >> 36) | (r[4] << 16),
    ]
}

/// Limbs of four little-endian 64-bit words.
pub(crate) fn words_to_limbs(w: &[u64; 4]) -> [u64; 5] {
    [
        w[0] & M52,
        ((w[0] >> 52) | (w[1] << 12)) & M52,
        ((w[1] >> 40) | (w[2] << 24)) & M52,
        ((w[2] >> 28) | (w[3] << 36)) & M52,
        w[3] >> 16,
    ]
}
