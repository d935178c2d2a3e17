//! edwards25519 on lanes: the base field p = 2^255 − 19 (see [`crate::field`]), extended
//! twisted Edwards coordinates, and the constant-time fixed-base comb.
//!
//! The table and every conversion are computed with this module's own lane arithmetic from the
//! basepoint's affine coordinates; the tests check them against curve25519-dalek.

use std::sync::LazyLock;

use accel_api::EdPoint;
use curve25519_dalek::scalar::Scalar;
use zeroize::Zeroize;

use crate::field::{
    self, Fe, Prime, canonical, limbs_to_words, load5, splat5, store5, words_to_limbs,
};
use crate::lanes::{LANES, Lanes, Portable};
use crate::secp::{NEG, SIGNED_MAX};

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

/// (z^(2^250 − 1), z^11): the shared head of the inversion and square-root chains.
#[inline(always)]
fn pow_2_250_minus_1<L: Lanes>(l: L, z: &Fe<L>) -> (Fe<L>, Fe<L>) {
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
    (mul(l, &sq_n(l, &z200_0, 50), &z50_0), z11)
}

/// a^(p−2) = 1/a (0 for 0), by the usual addition chain: 254 squarings, 11 multiplications.
#[inline(always)]
fn invert<L: Lanes>(l: L, z: &Fe<L>) -> Fe<L> {
    let (z250_0, z11) = pow_2_250_minus_1(l, z);
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

/// Affine coordinates (x, y) as canonical little-endian encodings: how lane results leave
/// the lanes.
pub(crate) type AffineBytes = [[u8; 32]; 2];

/// k·B on every lane of every chunk, constant time, then the affine coordinates (public):
/// per window a masked scan over all 16 entries and one complete addition; then one batched
/// inversion of the Z's across the chunks (per lane) and affine x, y.
#[inline(always)]
pub(crate) fn mul_base_affine<L: Lanes>(l: L, chunks: &[Digits]) -> Vec<[AffineBytes; LANES]> {
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
    affine_extended(l, &results)
}

/// Affine coordinates of extended points: one batched inversion of the Z's across all of
/// them (per lane; Z is never 0 on edwards25519), then x = X/Z and y = Y/Z, canonical.
#[inline(always)]
fn affine_extended<L: Lanes>(l: L, results: &[Extended<L>]) -> Vec<[AffineBytes; LANES]> {
    // Prefix products of Z.
    let mut prefix = Vec::with_capacity(results.len());
    let mut prod = splat5(l, [1, 0, 0, 0, 0]);
    for p in results {
        prefix.push(prod);
        prod = mul(l, &prod, &p.z);
    }
    let mut inv = invert(l, &prod);
    let mut out = vec![[[[0u8; 32]; 2]; LANES]; results.len()];
    for i in (0..results.len()).rev() {
        let zi = mul(l, &inv, &prefix[i]);
        inv = mul(l, &inv, &results[i].z);
        let x = mul(l, &results[i].x, &zi);
        let y = mul(l, &results[i].y, &zi);
        let (xs, ys) = (store5(l, &x), store5(l, &y));
        for (lane, xy) in out[i].iter_mut().enumerate() {
            *xy = [
                fe_bytes(&core::array::from_fn(|k| xs[k][lane])),
                fe_bytes(&core::array::from_fn(|k| ys[k][lane])),
            ];
        }
    }
    out
}

/// The canonical little-endian encoding of a field element.
pub(crate) fn fe_bytes(a: &[u64; 5]) -> [u8; 32] {
    let w = limbs_to_words(&canonical::<Fp>(a));
    let mut out = [0u8; 32];
    for i in 0..4 {
        out[8 * i..8 * (i + 1)].copy_from_slice(&w[i].to_le_bytes());
    }
    out
}

/// Port points of coordinates this module produced, each checked to lie on the curve (`None`
/// if one does not, an internal error).
pub(crate) fn to_points(coords: impl Iterator<Item = AffineBytes>) -> Option<Vec<EdPoint>> {
    coords
        .map(|[x, y]| EdPoint::from_affine_vartime(&x, &y))
        .collect()
}

/// d = −121665/121666.
const D: [u64; 5] = [
    0xb4dca135978a3,
    0x4d4141d8ab75e,
    0x779e89800700a,
    0xfe738cc740797,
    0x52036cee2b6f,
];
/// A square root of −1, 2^((p−1)/4).
const SQRT_M1: [u64; 5] = [
    0xe1b274a0ea0b0,
    0x6ad2fe478c4e,
    0xdfbd7a72f4318,
    0xdf0b2b4d00993,
    0x2b8324804fc1,
];

/// Per lane, limbs of one coordinate: `[limb][lane]`.
pub(crate) type LaneFe = [[u64; LANES]; 5];
/// Per lane, the affine x and y of one term's point.
pub(crate) type LaneAffine = [LaneFe; 2];
/// Per lane, the extended X, Y, Z, T of a result.
pub(crate) type LaneExtended = [LaneFe; 4];

/// Affine x and y limbs of one point.
pub(crate) type Affine = [[u64; 5]; 2];

/// The basepoint's affine coordinates.
pub(crate) fn basepoint_affine() -> Affine {
    [BX, BY]
}

/// The limbs of the y coordinate of an encoding (bit 255, the sign of x, cleared). Encodings
/// produced by curve25519-dalek are canonical, so y < p. Also the limbs of a canonical
/// coordinate (an `EdPoint`'s affine x or y, whose bit 255 is clear).
pub(crate) fn y_limbs(encoding: &[u8; 32]) -> [u64; 5] {
    let mut e = *encoding;
    e[31] &= 0x7f;
    let w: [u64; 4] =
        core::array::from_fn(|i| u64::from_le_bytes(core::array::from_fn(|b| e[8 * i + b])));
    words_to_limbs(&w)
}

/// The candidates of in-lane decompression (RFC 8032 §5.1.3, steps 2–3): for
/// u = y² − 1 and v = d·y² + 1, `r = u·v³·(u·v⁷)^((p−5)/8)`, `r·√−1`, `v·r²` and `u`. x is `r` when
/// `v·r² = u`, `r·√−1` when `v·r² = −u`; the host compares and fixes the sign (public data).
pub(crate) struct SqrtCandidates {
    /// `r`.
    pub(crate) r: LaneFe,
    /// `r·√−1`.
    pub(crate) r_i: LaneFe,
    /// `v·r²`.
    pub(crate) check: LaneFe,
    /// `u`.
    pub(crate) u: LaneFe,
}

/// The square-root candidates for the y coordinates of eight encodings (public data).
#[inline(always)]
pub(crate) fn sqrt_candidates_lanes<L: Lanes>(l: L, y: &LaneFe) -> SqrtCandidates {
    let one = splat5(l, [1, 0, 0, 0, 0]);
    let y = load5(l, y);
    let yy = mul(l, &y, &y);
    let u = sub(l, &yy, &one);
    let v = add(l, &mul(l, &yy, &splat5(l, D)), &one);
    let v3 = mul(l, &mul(l, &v, &v), &v);
    let v7 = mul(l, &mul(l, &v3, &v3), &v);
    let r = mul(l, &mul(l, &u, &v3), &pow_p58(l, &mul(l, &u, &v7)));
    let check = mul(l, &v, &mul(l, &r, &r));
    SqrtCandidates {
        r: store5(l, &r),
        r_i: store5(l, &mul(l, &r, &splat5(l, SQRT_M1))),
        check: store5(l, &check),
        u: store5(l, &u),
    }
}

/// a^((p−5)/8) = a^(2^252 − 3): a^(2^250 − 1), two squarings, one multiplication.
#[inline(always)]
fn pow_p58<L: Lanes>(l: L, z: &Fe<L>) -> Fe<L> {
    let (z250_0, _) = pow_2_250_minus_1(l, z);
    mul(l, &sq_n(l, &z250_0, 2), z)
}

/// The affine x of a point from its encoding's sign bit and the lane's square-root candidates
/// (canonical limbs), or `None` when y is not on the curve. Public data: branches freely.
pub(crate) fn recover_x_vartime(c: &SqrtCandidates, lane: usize, sign: bool) -> Option<[u64; 5]> {
    let at = |f: &LaneFe| canonical::<Fp>(&core::array::from_fn(|k| f[k][lane]));
    let (check, u) = (at(&c.check), at(&c.u));
    let x = if check == u {
        at(&c.r)
    } else if check == negate_canonical(&u) {
        at(&c.r_i)
    } else {
        return None;
    };
    if x == [0; 5] {
        // x = 0 has no negative form: the sign bit must be clear (RFC 8032 §5.1.3 step 4).
        return (!sign).then_some(x);
    }
    Some(if (x[0] & 1 == 1) == sign {
        x
    } else {
        negate_canonical(&x)
    })
}

/// p − a for canonical a (0 for 0).
fn negate_canonical(a: &[u64; 5]) -> [u64; 5] {
    let p: [u64; 5] = [
        (1 << 52) - 19,
        (1 << 52) - 1,
        (1 << 52) - 1,
        (1 << 52) - 1,
        (1 << 47) - 1,
    ];
    let mut r = [0u64; 5];
    let mut borrow = 0u64;
    for k in 0..5 {
        let (d, b1) = p[k].overflowing_sub(a[k]);
        let (d, b2) = d.overflowing_sub(borrow);
        borrow = u64::from(b1 | b2);
        r[k] = d & if k < 4 { (1 << 52) - 1 } else { u64::MAX };
    }
    canonical::<Fp>(&r)
}

/// A point in extended coordinates ready for addition (Y + X, Y − X, 2Z, 2d·T).
#[derive(Clone, Copy)]
struct Cached<L: Lanes> {
    ypx: Fe<L>,
    ymx: Fe<L>,
    z2: Fe<L>,
    t2d: Fe<L>,
}

impl<L: Lanes> Extended<L> {
    #[inline(always)]
    fn cached(&self, l: L) -> Cached<L> {
        Cached {
            ypx: add(l, &self.y, &self.x),
            ymx: sub(l, &self.y, &self.x),
            z2: add(l, &self.z, &self.z),
            t2d: mul(l, &self.t, &splat5(l, D2)),
        }
    }
}

/// P + Q for extended P and cached Q (the unified addition of [`add_niels`] with Q's Z).
#[inline(always)]
fn add_cached<L: Lanes>(l: L, p: &Extended<L>, q: &Cached<L>) -> Extended<L> {
    let a = mul(l, &sub(l, &p.y, &p.x), &q.ymx);
    let b = mul(l, &add(l, &p.y, &p.x), &q.ypx);
    let c = mul(l, &p.t, &q.t2d);
    let d = mul(l, &p.z, &q.z2);
    let e = sub(l, &b, &a);
    let f = sub(l, &d, &c);
    let g = add(l, &d, &c);
    let h = add(l, &b, &a);
    Extended {
        x: mul(l, &e, &f),
        y: mul(l, &g, &h),
        z: mul(l, &f, &g),
        t: mul(l, &e, &h),
    }
}

/// P + Q by [`add_cached`] (the unified addition the comb and the lincomb use) on the portable
/// lanes: extended (X, Y, Z, T) limbs in, canonical limbs out. Public data only: it feeds the
/// test-bench vectors of `hw/fpga-notes` (see [`crate::vectors`]).
#[cfg(feature = "vectors")]
pub(crate) fn add_extended_canonical(p: &[[u64; 5]; 4], q: &[[u64; 5]; 4]) -> [[u64; 5]; 4] {
    let l = Portable;
    let ext = |c: &[[u64; 5]; 4]| Extended {
        x: splat5(l, c[0]),
        y: splat5(l, c[1]),
        z: splat5(l, c[2]),
        t: splat5(l, c[3]),
    };
    let r = add_cached(l, &ext(p), &ext(q).cached(l));
    [r.x, r.y, r.z, r.t].map(|c| canonical::<Fp>(&lane0(&c)))
}

/// 2·P (Hisil–Wong–Carter–Dawson 2008 dbl-2008-hwcd, a = −1). Doubling does not read T, so
/// with `WITH_T = false` the output's T is left unset (zero) and saves one multiplication; only
/// a point that is then added needs it.
#[inline(always)]
fn double<L: Lanes, const WITH_T: bool>(l: L, p: &Extended<L>) -> Extended<L> {
    let a = mul(l, &p.x, &p.x);
    let b = mul(l, &p.y, &p.y);
    let zz = mul(l, &p.z, &p.z);
    let c = add(l, &zz, &zz);
    let xy = add(l, &p.x, &p.y);
    let a_plus_b = add(l, &a, &b);
    let e = sub(l, &mul(l, &xy, &xy), &a_plus_b);
    let g = sub(l, &b, &a);
    let f = sub(l, &g, &c);
    let h = sub(l, &[l.splat(0); 5], &a_plus_b);
    Extended {
        x: mul(l, &e, &f),
        y: mul(l, &g, &h),
        z: mul(l, &f, &g),
        t: if WITH_T {
            mul(l, &e, &h)
        } else {
            [l.splat(0); 5]
        },
    }
}

/// Signed 4-bit windows of a public scalar, least significant first: digits in −7..=8 stored
/// as `|d|`, or `|d| | NEG` when negative (the encoding of the secp256k1 kernel). A canonical
/// scalar is below 2^253, so the top window never carries out.
pub(crate) fn signed_digits_vartime(s: &Scalar) -> [u64; WINDOWS] {
    let bytes = s.to_bytes();
    let mut out = [0u64; WINDOWS];
    let mut carry = 0i64;
    for (w, o) in out.iter_mut().enumerate() {
        let mut d = i64::from((bytes[w / 2] >> (4 * (w % 2))) & 15) + carry;
        carry = 0;
        if d > SIGNED_MAX as i64 {
            d -= 16;
            carry = 1;
        }
        *o = if d < 0 {
            d.unsigned_abs() | NEG
        } else {
            d as u64
        };
    }
    out
}

/// Σ sₜ·Pₜ + Σ Qᵤ on every lane (public data): per term a table of 1·P..8·P in cached form,
/// then 64 signed 4-bit windows from the top, each four doublings and one addition per term;
/// the table entry is picked by a masked scan (lanes carry different digits). `digits[t]` and
/// `points[t]` are term t of every lane; a lane with fewer terms carries the digit 0. The
/// `plain` points (terms whose scalar is 1) are added once at the end, without a table or a
/// window; a lane with fewer of them carries the identity (x = 0, y = 1).
#[inline(always)]
pub(crate) fn lincomb_lanes<L: Lanes>(
    l: L,
    digits: &[Digits],
    points: &[LaneAffine],
    plain: &[LaneAffine],
) -> LaneExtended {
    const ENTRIES: usize = SIGNED_MAX as usize + 1;
    let zero = [l.splat(0); 5];
    let one = splat5(l, [1, 0, 0, 0, 0]);
    let identity = Cached {
        ypx: one,
        ymx: one,
        z2: splat5(l, [2, 0, 0, 0, 0]),
        t2d: zero,
    };
    let mut tables: Vec<[Cached<L>; ENTRIES]> = Vec::with_capacity(points.len());
    for p in points {
        let x = load5(l, &p[0]);
        let y = load5(l, &p[1]);
        let p1 = Extended {
            x,
            y,
            z: one,
            t: mul(l, &x, &y),
        };
        let c1 = p1.cached(l);
        let mut multiples = [p1; ENTRIES];
        let mut tab = [identity; ENTRIES];
        tab[1] = c1;
        for j in 2..ENTRIES {
            multiples[j] = if j % 2 == 0 {
                double::<L, true>(l, &multiples[j / 2])
            } else {
                add_cached(l, &multiples[j - 1], &c1)
            };
            tab[j] = multiples[j].cached(l);
        }
        tables.push(tab);
    }
    let mut acc = Extended::identity(l);
    for w in (0..WINDOWS).rev() {
        if w != WINDOWS - 1 {
            for _ in 0..3 {
                acc = double::<L, false>(l, &acc);
            }
            acc = double::<L, true>(l, &acc);
        }
        for (d, tab) in digits.iter().zip(&tables) {
            let d = l.load(&d[w]);
            let mag = l.and(d, l.splat(NEG - 1));
            let negative = l.eq(l.shr::<4>(d), l.splat(1));
            let mut q = identity;
            for (e, entry) in tab.iter().enumerate().skip(1) {
                let m = l.eq(mag, l.splat(e as u64));
                for i in 0..5 {
                    q.ypx[i] = l.select(m, q.ypx[i], entry.ypx[i]);
                    q.ymx[i] = l.select(m, q.ymx[i], entry.ymx[i]);
                    q.z2[i] = l.select(m, q.z2[i], entry.z2[i]);
                    q.t2d[i] = l.select(m, q.t2d[i], entry.t2d[i]);
                }
            }
            // −Q swaps Y + X with Y − X and negates T.
            let neg_t2d = sub(l, &zero, &q.t2d);
            for i in 0..5 {
                let (ypx, ymx) = (q.ypx[i], q.ymx[i]);
                q.ypx[i] = l.select(negative, ypx, ymx);
                q.ymx[i] = l.select(negative, ymx, ypx);
                q.t2d[i] = l.select(negative, q.t2d[i], neg_t2d[i]);
            }
            acc = add_cached(l, &acc, &q);
        }
    }
    for p in plain {
        let (x, y) = (load5(l, &p[0]), load5(l, &p[1]));
        let q = Extended {
            x,
            y,
            z: one,
            t: mul(l, &x, &y),
        };
        acc = add_cached(l, &acc, &q.cached(l));
    }
    [
        store5(l, &acc.x),
        store5(l, &acc.y),
        store5(l, &acc.z),
        store5(l, &acc.t),
    ]
}

/// Σ of lane results on lane 0 (public data): `parts` are extended points, each given as one
/// lane of a [`LaneExtended`]. Runs on the portable lanes; used to add the sub-jobs of a job.
pub(crate) fn sum_vartime(parts: &[[[u64; 5]; 4]]) -> [[u64; 5]; 4] {
    let l = Portable;
    let mut acc = Extended::identity(l);
    for p in parts {
        let q = Extended {
            x: splat5(l, p[0]),
            y: splat5(l, p[1]),
            z: splat5(l, p[2]),
            t: splat5(l, p[3]),
        };
        acc = add_cached(l, &acc, &q.cached(l));
    }
    [acc.x, acc.y, acc.z, acc.t].map(|c| lane0(&c))
}

/// Affine coordinates of extended points on lanes, with one batched inversion of the Z's
/// across all of them (per lane).
#[inline(always)]
pub(crate) fn affine_lanes<L: Lanes>(l: L, points: &[LaneExtended]) -> Vec<[AffineBytes; LANES]> {
    let results: Vec<Extended<L>> = points
        .iter()
        .map(|p| Extended {
            x: load5(l, &p[0]),
            y: load5(l, &p[1]),
            z: load5(l, &p[2]),
            t: load5(l, &p[3]),
        })
        .collect();
    affine_extended(l, &results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
    use curve25519_dalek::edwards::EdwardsPoint;
    use curve25519_dalek::traits::Identity;

    /// The encoding of lane coordinates, through the port's checked conversion.
    fn encode(x: &[u64; 5], y: &[u64; 5]) -> [u8; 32] {
        enc(&[fe_bytes(x), fe_bytes(y)])
    }

    fn enc(xy: &AffineBytes) -> [u8; 32] {
        EdPoint::from_affine_vartime(&xy[0], &xy[1])
            .unwrap()
            .compress()
            .to_bytes()
    }
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
        let out = mul_base_affine(Portable, &chunks);
        for (i, s) in scalars.iter().enumerate() {
            let expect = EdwardsPoint::mul_base(s);
            assert_eq!(
                enc(&out[i / LANES][i % LANES]),
                expect.compress().to_bytes(),
                "{i}"
            );
        }
        // Padding lanes carry the scalar 0.
        assert_eq!(
            enc(&out[2][7]),
            EdwardsPoint::identity().compress().to_bytes()
        );
    }

    #[test]
    fn lane_decompression_matches_dalek() {
        use curve25519_dalek::constants::EIGHT_TORSION;
        let mut r = ChaCha20Rng::seed_from_u64(21);
        let mut points: Vec<EdwardsPoint> = EIGHT_TORSION.to_vec();
        points.push(ED25519_BASEPOINT_POINT);
        points.extend((0..13).map(|_| {
            let mut wide = [0u8; 64];
            r.fill_bytes(&mut wide);
            EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order_wide(&wide)) + EIGHT_TORSION[3]
        }));
        let encodings: Vec<[u8; 32]> = points.iter().map(|p| p.compress().to_bytes()).collect();
        for chunk in encodings.chunks(LANES) {
            let mut y: LaneFe = [[0; LANES]; 5];
            for (lane, e) in chunk.iter().enumerate() {
                for (k, limb) in y_limbs(e).into_iter().enumerate() {
                    y[k][lane] = limb;
                }
            }
            let cand = sqrt_candidates_lanes(Portable, &y);
            for (lane, e) in chunk.iter().enumerate() {
                let x = recover_x_vartime(&cand, lane, e[31] >> 7 == 1).unwrap();
                assert_eq!(encode(&x, &y_limbs(e)), *e);
            }
        }
        // A y with no point on the curve (2 is not a valid y: (4 − 1)/(4d + 1) is a non-square).
        let mut y: LaneFe = [[0; LANES]; 5];
        y[0] = [2; LANES];
        let cand = sqrt_candidates_lanes(Portable, &y);
        assert_eq!(recover_x_vartime(&cand, 0, false), None);
    }

    #[test]
    fn portable_lincomb_matches_dalek() {
        let mut r = ChaCha20Rng::seed_from_u64(22);
        let mut scalar = || {
            let mut wide = [0u8; 64];
            r.fill_bytes(&mut wide);
            Scalar::from_bytes_mod_order_wide(&wide)
        };
        let terms = 3;
        let mut digits = vec![[[0u64; LANES]; WINDOWS]; terms];
        let mut points = vec![[[[0u64; LANES]; 5]; 2]; terms];
        let mut plain = vec![[[[0u64; LANES]; 5]; 2]; 2];
        let mut expect = vec![EdwardsPoint::identity(); LANES];
        // Affine limbs of a point, x recovered on the portable lanes.
        let coordinates = |p: &EdwardsPoint| {
            let enc = p.compress().to_bytes();
            let y = y_limbs(&enc);
            let mut yl: LaneFe = [[0; LANES]; 5];
            for k in 0..5 {
                yl[k] = [y[k]; LANES];
            }
            let x = recover_x_vartime(&sqrt_candidates_lanes(Portable, &yl), 0, enc[31] >> 7 == 1)
                .unwrap();
            (x, y)
        };
        for lane in 0..LANES {
            for t in 0..terms {
                // Lane 0 also covers the largest scalar and −1.
                let s = match (lane, t) {
                    (0, 0) => -Scalar::ONE,
                    (0, 1) => Scalar::ZERO,
                    _ => scalar(),
                };
                let p = EdwardsPoint::mul_base(&scalar());
                expect[lane] += p * s;
                let d = signed_digits_vartime(&s);
                for w in 0..WINDOWS {
                    digits[t][w][lane] = d[w];
                }
                let (x, y) = coordinates(&p);
                for k in 0..5 {
                    points[t][0][k][lane] = x[k];
                    points[t][1][k][lane] = y[k];
                }
            }
            // Two plain terms (scalar 1); lane 1's second is the padding identity.
            for (u, q) in plain.iter_mut().enumerate() {
                let p = match (lane, u) {
                    (1, 1) => EdwardsPoint::identity(),
                    _ => EdwardsPoint::mul_base(&scalar()),
                };
                expect[lane] += p;
                let (x, y) = coordinates(&p);
                for k in 0..5 {
                    q[0][k][lane] = x[k];
                    q[1][k][lane] = y[k];
                }
            }
        }
        let out = lincomb_lanes(Portable, &digits, &points, &plain);
        let coords = affine_lanes(Portable, &[out]);
        for lane in 0..LANES {
            assert_eq!(
                enc(&coords[0][lane]),
                expect[lane].compress().to_bytes(),
                "lane {lane}"
            );
        }
    }

    #[test]
    fn signed_digits_recombine() {
        let mut r = ChaCha20Rng::seed_from_u64(23);
        for _ in 0..64 {
            let mut wide = [0u8; 64];
            r.fill_bytes(&mut wide);
            let s = Scalar::from_bytes_mod_order_wide(&wide);
            let d = signed_digits_vartime(&s);
            let mut acc = Scalar::ZERO;
            for w in (0..WINDOWS).rev() {
                acc *= Scalar::from(16u64);
                let m = Scalar::from(d[w] & (NEG - 1));
                assert!(d[w] & (NEG - 1) <= SIGNED_MAX);
                acc += if d[w] & NEG != 0 { -m } else { m };
            }
            assert_eq!(acc, s);
        }
    }
}
