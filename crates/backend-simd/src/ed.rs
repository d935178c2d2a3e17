//! edwards25519 on lanes: the base field p = 2^255 − 19 (see [`crate::field`]), extended
//! twisted Edwards coordinates, and the constant-time fixed-base comb.
//!
//! The table and every conversion are computed with this module's own lane arithmetic from the
//! basepoint's affine coordinates; the tests check them against curve25519-dalek.

use std::sync::LazyLock;

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroize;

use crate::field::{self, Fe, Prime, canonical, limbs_to_words, splat5, store5};
use crate::lanes::{LANES, Lanes, Portable};

/// The edwards25519 base field, p = 2^255 − 19.
pub(crate) struct Fp;

impl Prime for Fp {
    const C: u64 = 19;
    const R: u64 = 19 << 5;
    const TOP_MASK: u64 = (1 << 47) - 1;
    const P8: [u64; 5] = [
        (1 << 53) - 8 * Self::C,
        (1 << 53) - 2,
        (1 << 53) - 2,
        (1 << 53) - 2,
        (1 << 50) - 2,
    ];
    #[inline(always)]
    fn top<L: Lanes>(l: L, l4: L::V) -> L::V {
        l.shr::<47>(l4)
    }
}

/// 2·d, d = −121665/121666.
const D2: [u64; 5] = [
    0x69b9426b2f159,
    0x9a8283b156ebd,
    0xef3d13000e014,
    0xfce7198e80f2e,
    0x2406d9dc56df,
];
/// The basepoint's affine x.
const BX: [u64; 5] = [
    0x62d608f25d51a,
    0x609525a7b2c95,
    0xdd6dc5c692cc7,
    0x53fec0a4e231f,
    0x216936d3cd6e,
];
/// The basepoint's affine y = 4/5.
const BY: [u64; 5] = [
    0x6666666666658,
    0x6666666666666,
    0x6666666666666,
    0x6666666666666,
    0x666666666666,
];

/// Number of 4-bit windows of a scalar.
pub(crate) const WINDOWS: usize = 64;
/// Entries per window (digits 0..=15).
const ENTRIES: usize = 16;

/// Per window, the digit of each lane's scalar.
pub(crate) type Digits = [[u64; LANES]; WINDOWS];

#[inline(always)]
fn add<L: Lanes>(l: L, a: &Fe<L>, b: &Fe<L>) -> Fe<L> {
    field::add::<Fp, L>(l, a, b)
}

#[inline(always)]
fn sub<L: Lanes>(l: L, a: &Fe<L>, b: &Fe<L>) -> Fe<L> {
    field::sub::<Fp, L>(l, a, b)
}

#[inline(always)]
fn mul<L: Lanes>(l: L, a: &Fe<L>, b: &Fe<L>) -> Fe<L> {
    field::mul::<Fp, L>(l, a, b)
}

#[inline(always)]
fn sq_n<L: Lanes>(l: L, a: &Fe<L>, n: usize) -> Fe<L> {
    let mut r = *a;
    for _ in 0..n {
        r = mul(l, &r, &r);
    }
    r
}

/// a^(p−2) = 1/a (0 for 0), by the usual addition chain: 254 squarings, 11 multiplications.
#[inline(always)]
fn invert<L: Lanes>(l: L, z: &Fe<L>) -> Fe<L> {
    let z2 = mul(l, z, z);
    let z8 = sq_n(l, &z2, 2);
    let z9 = mul(l, z, &z8);
    let z11 = mul(l, &z2, &z9);
    let z22 = mul(l, &z11, &z11);
    let z5_0 = mul(l, &z9, &z22);
    let z10_0 = mul(l, &sq_n(l, &z5_0, 5), &z5_0);
    let z20_0 = mul(l, &sq_n(l, &z10_0, 10), &z10_0);
    let z40_0 = mul(l, &sq_n(l, &z20_0, 20), &z20_0);
    let z50_0 = mul(l, &sq_n(l, &z40_0, 10), &z10_0);
    let z100_0 = mul(l, &sq_n(l, &z50_0, 50), &z50_0);
    let z200_0 = mul(l, &sq_n(l, &z100_0, 100), &z100_0);
    let z250_0 = mul(l, &sq_n(l, &z200_0, 50), &z50_0);
    mul(l, &sq_n(l, &z250_0, 5), &z11)
}

/// A point in extended coordinates (X : Y : Z : T), x = X/Z, y = Y/Z, xy = T/Z.
#[derive(Clone, Copy)]
struct Extended<L: Lanes> {
    x: Fe<L>,
    y: Fe<L>,
    z: Fe<L>,
    t: Fe<L>,
}

/// An affine point in Niels form (y + x, y − x, 2d·x·y).
#[derive(Clone, Copy)]
struct Niels<L: Lanes> {
    ypx: Fe<L>,
    ymx: Fe<L>,
    t2d: Fe<L>,
}

impl<L: Lanes> Extended<L> {
    #[inline(always)]
    fn identity(l: L) -> Self {
        let zero = splat5(l, [0; 5]);
        let one = splat5(l, [1, 0, 0, 0, 0]);
        Self {
            x: zero,
            y: one,
            z: one,
            t: zero,
        }
    }
}

/// P + Q for extended P and Niels Q (Hisil–Wong–Carter–Dawson unified addition, a = −1):
/// complete on edwards25519, so no branch and no exceptional case (Q may be the identity).
#[inline(always)]
fn add_niels<L: Lanes>(l: L, p: &Extended<L>, q: &Niels<L>) -> Extended<L> {
    let ypx = add(l, &p.y, &p.x);
    let ymx = sub(l, &p.y, &p.x);
    let pp = mul(l, &ypx, &q.ypx);
    let mm = mul(l, &ymx, &q.ymx);
    let txy2d = mul(l, &p.t, &q.t2d);
    let z2 = add(l, &p.z, &p.z);
    let cx = sub(l, &pp, &mm);
    let cy = add(l, &pp, &mm);
    let cz = add(l, &z2, &txy2d);
    let ct = sub(l, &z2, &txy2d);
    Extended {
        x: mul(l, &cx, &ct),
        y: mul(l, &cy, &cz),
        z: mul(l, &cz, &ct),
        t: mul(l, &cx, &cy),
    }
}

/// The Niels form of the affine point (x, y).
fn niels_of_affine<L: Lanes>(l: L, x: &Fe<L>, y: &Fe<L>) -> Niels<L> {
    Niels {
        ypx: add(l, y, x),
        ymx: sub(l, y, x),
        t2d: mul(l, &mul(l, x, y), &splat5(l, D2)),
    }
}

/// Affine coordinates of an extended point.
fn to_affine<L: Lanes>(l: L, p: &Extended<L>) -> (Fe<L>, Fe<L>) {
    let zi = invert(l, &p.z);
    (mul(l, &p.x, &zi), mul(l, &p.y, &zi))
}

/// Lane 0 of a portable element.
fn lane0(x: &Fe<Portable>) -> [u64; 5] {
    x.map(|v| v[0])
}

/// Niels limbs (y + x, y − x, 2d·x·y) of `d·16^w·B` at index `w·16 + d`, d = 0..=15.
static TABLE: LazyLock<Vec<[[u64; 5]; 3]>> = LazyLock::new(|| {
    let l = Portable;
    let mut table = Vec::with_capacity(WINDOWS * ENTRIES);
    let (mut bx, mut by) = (splat5(l, BX), splat5(l, BY));
    for _ in 0..WINDOWS {
        let base = niels_of_affine(l, &bx, &by);
        let mut acc = Extended::identity(l);
        for _ in 0..ENTRIES {
            let (x, y) = to_affine(l, &acc);
            let n = niels_of_affine(l, &x, &y);
            table.push([n.ypx, n.ymx, n.t2d].map(|c| canonical::<Fp>(&lane0(&c))));
            acc = add_niels(l, &acc, &base);
        }
        // acc = 16·base now.
        (bx, by) = to_affine(l, &acc);
    }
    table
});

/// Builds the comb table now (it is otherwise built on first use).
pub(crate) fn warm_up() {
    LazyLock::force(&TABLE);
}

/// Writes the 4-bit digits of up to eight scalars into `d`, whose lanes past the scalars must
/// be zero (the scalar 0). Secret: the caller zeroizes `d`.
pub(crate) fn digits_into(scalars: &[Scalar], d: &mut Digits) {
    for (lane, s) in scalars.iter().enumerate().take(LANES) {
        let mut bytes = s.to_bytes();
        for (w, row) in d.iter_mut().enumerate() {
            row[lane] = u64::from((bytes[w / 2] >> (4 * (w % 2))) & 15);
        }
        bytes.zeroize();
    }
}

/// k·B on every lane of every chunk, constant time, then the compressed encodings (public):
/// per window a masked scan over all 16 entries and one complete addition; then one batched
/// inversion of the Z's across the chunks (per lane), affine x, y and the encoding.
#[inline(always)]
pub(crate) fn mul_base_compressed<L: Lanes>(l: L, chunks: &[Digits]) -> Vec<[[u8; 32]; LANES]> {
    let table = &*TABLE;
    let mut results: Vec<Extended<L>> = Vec::with_capacity(chunks.len());
    for digits in chunks {
        let mut acc = Extended::identity(l);
        for (w, row) in digits.iter().enumerate() {
            let d = l.load(row);
            let entries = &table[w * ENTRIES..(w + 1) * ENTRIES];
            let mut q = Niels {
                ypx: splat5(l, entries[0][0]),
                ymx: splat5(l, entries[0][1]),
                t2d: splat5(l, entries[0][2]),
            };
            for (e, entry) in entries.iter().enumerate().skip(1) {
                let m = l.eq(d, l.splat(e as u64));
                for i in 0..5 {
                    q.ypx[i] = l.select(m, q.ypx[i], l.splat(entry[0][i]));
                    q.ymx[i] = l.select(m, q.ymx[i], l.splat(entry[1][i]));
                    q.t2d[i] = l.select(m, q.t2d[i], l.splat(entry[2][i]));
                }
            }
            acc = add_niels(l, &acc, &q);
        }
        results.push(acc);
    }
    // Batch inversion: prefix products of Z over the chunks (Z is never 0 on edwards25519).
    let mut prefix = Vec::with_capacity(results.len());
    let mut prod = splat5(l, [1, 0, 0, 0, 0]);
    for p in &results {
        prefix.push(prod);
        prod = mul(l, &prod, &p.z);
    }
    let mut inv = invert(l, &prod);
    let mut out = vec![[[0u8; 32]; LANES]; results.len()];
    for i in (0..results.len()).rev() {
        let zi = mul(l, &inv, &prefix[i]);
        inv = mul(l, &inv, &results[i].z);
        let x = mul(l, &results[i].x, &zi);
        let y = mul(l, &results[i].y, &zi);
        let (xs, ys) = (store5(l, &x), store5(l, &y));
        for (lane, enc) in out[i].iter_mut().enumerate() {
            *enc = encode(
                &core::array::from_fn(|k| xs[k][lane]),
                &core::array::from_fn(|k| ys[k][lane]),
            );
        }
    }
    out
}

/// The Ed25519 encoding of the affine point (x, y): y little-endian, the sign of x in bit 255.
fn encode(x: &[u64; 5], y: &[u64; 5]) -> [u8; 32] {
    let w = limbs_to_words(&canonical::<Fp>(y));
    let sign = canonical::<Fp>(x)[0] & 1;
    let mut out = [0u8; 32];
    for i in 0..4 {
        out[8 * i..8 * (i + 1)].copy_from_slice(&w[i].to_le_bytes());
    }
    out[31] |= (sign as u8) << 7;
    out
}

/// dalek points of encodings this module produced (`None` if one does not decode, an internal
/// error).
pub(crate) fn decode(encodings: impl Iterator<Item = [u8; 32]>) -> Option<Vec<EdwardsPoint>> {
    encodings
        .map(|e| CompressedEdwardsY(e).decompress())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::traits::Identity;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn table_matches_dalek() {
        let l = Portable;
        for w in [0usize, 1, 17, 63] {
            let mut base_w = ED25519_BASEPOINT_POINT;
            for _ in 0..4 * w {
                base_w = base_w + base_w;
            }
            for d in [0u64, 1, 2, 9, 15] {
                let [ypx, ymx, _] = TABLE[w * ENTRIES + d as usize];
                // x = (ypx − ymx)/2, y = (ypx + ymx)/2.
                let two_x = sub(l, &splat5(l, ypx), &splat5(l, ymx));
                let two_y = add(l, &splat5(l, ypx), &splat5(l, ymx));
                let inv2 = invert(l, &splat5(l, [2, 0, 0, 0, 0]));
                let x = lane0(&mul(l, &two_x, &inv2));
                let y = lane0(&mul(l, &two_y, &inv2));
                let expect = base_w * Scalar::from(d);
                assert_eq!(encode(&x, &y), expect.compress().to_bytes(), "w={w} d={d}");
            }
        }
    }

    #[test]
    fn portable_mul_base_matches_dalek() {
        let mut r = ChaCha20Rng::seed_from_u64(5);
        let scalars: Vec<Scalar> = [Scalar::ZERO, Scalar::ONE, -Scalar::ONE]
            .into_iter()
            .chain((0..14).map(|_| {
                let mut wide = [0u8; 64];
                r.fill_bytes(&mut wide);
                Scalar::from_bytes_mod_order_wide(&wide)
            }))
            .collect();
        let mut chunks = vec![[[0u64; LANES]; WINDOWS]; 3];
        for (c, d) in scalars.chunks(LANES).zip(chunks.iter_mut()) {
            digits_into(c, d);
        }
        let out = mul_base_compressed(Portable, &chunks);
        for (i, s) in scalars.iter().enumerate() {
            let expect = EdwardsPoint::mul_base(s);
            assert_eq!(
                out[i / LANES][i % LANES],
                expect.compress().to_bytes(),
                "{i}"
            );
        }
        // Padding lanes carry the scalar 0.
        assert_eq!(out[2][7], EdwardsPoint::identity().compress().to_bytes());
    }
}
