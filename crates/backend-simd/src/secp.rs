//! secp256k1 on lanes: the base field p = 2^256 − 0x1000003D1 (see [`crate::field`]), the
//! Renes–Costello–Batina mixed addition for a = 0, and the constant-time fixed-base comb.

use std::sync::LazyLock;

use k256::elliptic_curve::BatchNormalize;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, FieldBytes, FieldElement, ProjectivePoint, Scalar};
use zeroize::Zeroize;

use crate::field::{
    self, Fe, Prime, canonical, limbs_to_words, load5, reduce_weak, splat5, store5, words_to_limbs,
};
use crate::lanes::{LANES, Lanes};

/// The secp256k1 base field, p = 2^256 − 0x1000003D1.
pub(crate) struct Fp;

impl Prime for Fp {
    const C: u64 = 0x1_0000_03D1;
    const R: u64 = 0x10_0000_3D10;
    const TOP_MASK: u64 = (1 << 48) - 1;
    const P8: [u64; 5] = [
        (1 << 53) - 8 * Self::C,
        (1 << 53) - 2,
        (1 << 53) - 2,
        (1 << 53) - 2,
        (1 << 51) - 2,
    ];
    #[inline(always)]
    fn top<L: Lanes>(l: L, l4: L::V) -> L::V {
        l.shr::<48>(l4)
    }
}

/// 3·b for the curve y² = x³ + 7.
const B3: u64 = 21;

/// Number of 4-bit windows of a scalar.
pub(crate) const WINDOWS: usize = 64;
/// Non-zero digits per window.
const DIGITS: usize = 15;

/// Per window, the digit of each lane's scalar.
pub(crate) type Digits = [[u64; LANES]; WINDOWS];
/// Per lane, the projective X, Y, Z limbs of the result: `[coordinate][limb][lane]`.
pub(crate) type LaneOutput = [[[u64; LANES]; 5]; 3];

/// 21·a (3b for b = 7).
#[inline(always)]
fn mul_b3<L: Lanes>(l: L, a: &Fe<L>) -> Fe<L> {
    const _: () = assert!(B3 == 16 + 4 + 1);
    let mut r = *a;
    for i in 0..5 {
        r[i] = l.add(l.add(l.shl::<4>(a[i]), l.shl::<2>(a[i])), a[i]);
    }
    reduce_weak::<Fp, L>(l, r)
}

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

/// A projective point on lanes.
#[derive(Clone, Copy)]
struct Point<L: Lanes> {
    x: Fe<L>,
    y: Fe<L>,
    z: Fe<L>,
}

/// P + Q for projective P and affine Q ≠ 𝒪 (Renes–Costello–Batina 2016, Algorithm 8, a = 0):
/// complete for every P including 𝒪, no branch.
#[inline(always)]
fn add_mixed<L: Lanes>(l: L, p: &Point<L>, qx: &Fe<L>, qy: &Fe<L>) -> Point<L> {
    let t0 = mul(l, &p.x, qx);
    let t1 = mul(l, &p.y, qy);
    let t3 = add(l, qx, qy);
    let t4 = add(l, &p.x, &p.y);
    let t3 = mul(l, &t3, &t4);
    let t4 = add(l, &t0, &t1);
    let t3 = sub(l, &t3, &t4);
    let t4 = mul(l, qy, &p.z);
    let t4 = add(l, &t4, &p.y);
    let y3 = mul(l, qx, &p.z);
    let y3 = add(l, &y3, &p.x);
    let x3 = add(l, &t0, &t0);
    let t0 = add(l, &x3, &t0);
    let t2 = mul_b3(l, &p.z);
    let z3 = add(l, &t1, &t2);
    let t1 = sub(l, &t1, &t2);
    let y3 = mul_b3(l, &y3);
    let x3 = mul(l, &t4, &y3);
    let t2 = mul(l, &t3, &t1);
    let x3 = sub(l, &t2, &x3);
    let y3 = mul(l, &y3, &t0);
    let t1 = mul(l, &t1, &z3);
    let y3 = add(l, &t1, &y3);
    let t0 = mul(l, &t0, &t3);
    let z3 = mul(l, &z3, &t4);
    let z3 = add(l, &z3, &t0);
    Point {
        x: x3,
        y: y3,
        z: z3,
    }
}

/// P + Q for projective P, Q (Renes–Costello–Batina 2016, Algorithm 7, a = 0): complete.
#[inline(always)]
fn add_full<L: Lanes>(l: L, p: &Point<L>, q: &Point<L>) -> Point<L> {
    let t0 = mul(l, &p.x, &q.x);
    let t1 = mul(l, &p.y, &q.y);
    let t2 = mul(l, &p.z, &q.z);
    let t3 = add(l, &p.x, &p.y);
    let t4 = add(l, &q.x, &q.y);
    let t3 = mul(l, &t3, &t4);
    let t4 = add(l, &t0, &t1);
    let t3 = sub(l, &t3, &t4);
    let t4 = add(l, &p.y, &p.z);
    let x3 = add(l, &q.y, &q.z);
    let t4 = mul(l, &t4, &x3);
    let x3 = add(l, &t1, &t2);
    let t4 = sub(l, &t4, &x3);
    let x3 = add(l, &p.x, &p.z);
    let y3 = add(l, &q.x, &q.z);
    let x3 = mul(l, &x3, &y3);
    let y3 = add(l, &t0, &t2);
    let y3 = sub(l, &x3, &y3);
    let x3 = add(l, &t0, &t0);
    let t0 = add(l, &x3, &t0);
    let t2 = mul_b3(l, &t2);
    let z3 = add(l, &t1, &t2);
    let t1 = sub(l, &t1, &t2);
    let y3 = mul_b3(l, &y3);
    let x3 = mul(l, &t4, &y3);
    let t2 = mul(l, &t3, &t1);
    let x3 = sub(l, &t2, &x3);
    let y3 = mul(l, &y3, &t0);
    let t1 = mul(l, &t1, &z3);
    let y3 = add(l, &t1, &y3);
    let t0 = mul(l, &t0, &t3);
    let z3 = mul(l, &z3, &t4);
    let z3 = add(l, &z3, &t0);
    Point {
        x: x3,
        y: y3,
        z: z3,
    }
}

/// P + Q by [`add_full`] on the portable lanes: projective (X, Y, Z) limbs in, canonical limbs
/// out. Public data only: it feeds the test-bench vectors of `hw/fpga-notes` (see
/// [`crate::vectors`]).
#[cfg(feature = "vectors")]
pub(crate) fn add_projective_canonical(p: &[[u64; 5]; 3], q: &[[u64; 5]; 3]) -> [[u64; 5]; 3] {
    let l = crate::lanes::Portable;
    let pt = |c: &[[u64; 5]; 3]| Point {
        x: splat5(l, c[0]),
        y: splat5(l, c[1]),
        z: splat5(l, c[2]),
    };
    let r = add_full(l, &pt(p), &pt(q));
    [r.x, r.y, r.z].map(|c| canonical::<Fp>(&c.map(|v| v[0])))
}

/// 2P for projective P (Renes–Costello–Batina 2016, Algorithm 9, a = 0): complete.
#[inline(always)]
fn double<L: Lanes>(l: L, p: &Point<L>) -> Point<L> {
    let t0 = mul(l, &p.y, &p.y);
    let z3 = add(l, &t0, &t0);
    let z3 = add(l, &z3, &z3);
    let z3 = add(l, &z3, &z3);
    let t1 = mul(l, &p.y, &p.z);
    let t2 = mul(l, &p.z, &p.z);
    let t2 = mul_b3(l, &t2);
    let x3 = mul(l, &t2, &z3);
    let y3 = add(l, &t0, &t2);
    let z3 = mul(l, &t1, &z3);
    let t1 = add(l, &t2, &t2);
    let t2 = add(l, &t1, &t2);
    let t0 = sub(l, &t0, &t2);
    let y3 = mul(l, &t0, &y3);
    let y3 = add(l, &x3, &y3);
    let t1 = mul(l, &p.x, &p.y);
    let x3 = mul(l, &t0, &t1);
    let x3 = add(l, &x3, &x3);
    Point {
        x: x3,
        y: y3,
        z: z3,
    }
}

/// Affine x, y limbs of one point per lane: `[coordinate][limb][lane]`.
pub(crate) type LaneAffine = [[[u64; LANES]; 5]; 2];

/// Largest digit magnitude of the signed 4-bit windows of `lincomb_lanes`.
pub(crate) const SIGNED_MAX: u64 = 8;
/// Bit marking a negative digit in the signed-window encoding (`|d| | NEG` for d < 0).
pub(crate) const NEG: u64 = 16;

/// Signed 4-bit windows of a public scalar, least significant first: digits in −7..=8 with
/// Σ dᵢ·16ⁱ = s, each stored as `|d|`, or `|d| | NEG` when negative. Returns `None` when the top
/// window would need a digit above 8 (a carry out of 256 bits); the caller then recodes −s
/// with −P, whose top window is small.
pub(crate) fn signed_digits_vartime(s: &Scalar) -> Option<[u64; WINDOWS]> {
    let bytes: [u8; 32] = s.to_bytes().into();
    let mut out = [0u64; WINDOWS];
    let mut carry = 0i64;
    for (w, slot) in out.iter_mut().enumerate() {
        let nibble = i64::from((bytes[31 - w / 2] >> (4 * (w % 2))) & 15);
        let mut d = nibble + carry;
        carry = 0;
        if d > SIGNED_MAX as i64 {
            d -= 16;
            carry = 1;
        }
        *slot = if d < 0 {
            d.unsigned_abs() | NEG
        } else {
            d as u64
        };
    }
    (carry == 0).then_some(out)
}

/// Writes `digits` (from [`signed_digits_vartime`]) into lane `lane` of `d`.
pub(crate) fn write_lane(digits: &[u64; WINDOWS], lane: usize, d: &mut Digits) {
    for (row, v) in d.iter_mut().zip(digits) {
        row[lane] = *v;
    }
}

/// Σ sₜ·Pₜ on every lane, variable time (public inputs only). Signed 4-bit windows from the
/// top (digits from [`signed_digits_vartime`]): four doublings per window and one complete
/// addition per term of ±(table entry), the entry picked by a masked scan over the 8 multiples
/// 1P..8P and negated by a masked select. `digits[t]` and `points[t]` are term t of every lane
/// (a lane with fewer terms carries the scalar 0 there, with any curve point).
#[inline(always)]
pub(crate) fn lincomb_lanes<L: Lanes>(
    l: L,
    digits: &[Digits],
    points: &[LaneAffine],
) -> LaneOutput {
    let zero = [l.splat(0); 5];
    let one = splat5(l, [1, 0, 0, 0, 0]);
    let identity = Point::<L> {
        x: zero,
        y: one,
        z: zero,
    };
    const ENTRIES: usize = SIGNED_MAX as usize + 1;
    let mut tables: Vec<[Point<L>; ENTRIES]> = Vec::with_capacity(points.len());
    for p in points {
        let p1 = Point::<L> {
            x: load5(l, &p[0]),
            y: load5(l, &p[1]),
            z: one,
        };
        let mut tab = [identity; ENTRIES];
        tab[1] = p1;
        for j in 2..ENTRIES {
            tab[j] = if j % 2 == 0 {
                double(l, &tab[j / 2])
            } else {
                add_full(l, &tab[j - 1], &p1)
            };
        }
        tables.push(tab);
    }
    let mut acc = identity;
    for w in (0..WINDOWS).rev() {
        if w != WINDOWS - 1 {
            for _ in 0..4 {
                acc = double(l, &acc);
            }
        }
        for (d, tab) in digits.iter().zip(&tables) {
            let d = l.load(&d[w]);
            let mag = l.and(d, l.splat(NEG - 1));
            let negative = l.eq(l.shr::<4>(d), l.splat(1));
            let mut q = identity;
            for (e, entry) in tab.iter().enumerate().skip(1) {
                let m = l.eq(mag, l.splat(e as u64));
                for i in 0..5 {
                    q.x[i] = l.select(m, q.x[i], entry.x[i]);
                    q.y[i] = l.select(m, q.y[i], entry.y[i]);
                    q.z[i] = l.select(m, q.z[i], entry.z[i]);
                }
            }
            let neg_y = sub(l, &zero, &q.y);
            for i in 0..5 {
                q.y[i] = l.select(negative, q.y[i], neg_y[i]);
            }
            acc = add_full(l, &acc, &q);
        }
    }
    [store5(l, &acc.x), store5(l, &acc.y), store5(l, &acc.z)]
}

/// Bit marking a negative digit in the Pippenger digit encoding (`|d| | PIP_NEG`).
pub(crate) const PIP_NEG: u64 = 1 << 32;

/// Signed radix-2^c digits of a public scalar, least significant first, `windows` of them:
/// digits in −(2^(c−1) − 1)..=2^(c−1), encoded as `|d|` or `|d| | PIP_NEG`. `None` when the top
/// window would carry out (never when `windows · c > 256`, since s < 2^256).
pub(crate) fn pippenger_digits_vartime(s: &Scalar, c: u32, windows: usize) -> Option<Vec<u64>> {
    let bytes: [u8; 32] = s.to_bytes().into();
    let bit = |i: usize| -> u64 {
        if i >= 256 {
            0
        } else {
            u64::from((bytes[31 - i / 8] >> (i % 8)) & 1)
        }
    };
    let half = 1i64 << (c - 1);
    let mut out = Vec::with_capacity(windows);
    let mut carry = 0i64;
    for w in 0..windows {
        let mut v = 0u64;
        for b in 0..c as usize {
            v |= bit(w * c as usize + b) << b;
        }
        let mut d = v as i64 + carry;
        carry = 0;
        if d > half {
            d -= 1 << c;
            carry = 1;
        }
        out.push(if d < 0 {
            d.unsigned_abs() | PIP_NEG
        } else {
            d as u64
        });
    }
    (carry == 0).then_some(out)
}

/// Bucket state of the Pippenger kernel: per bucket, `[coordinate][limb][lane]`.
pub(crate) type Bucket = [[[u64; LANES]; 5]; 3];

/// One Pippenger pass over eight windows at once: lane k accumulates the window whose digit
/// of term t is `digits[t][k]` (encoded by [`pippenger_digits_vartime`]) into its bucket
/// `|d|` (negating the point for a negative digit; bucket 0 absorbs zero digits), then sums
/// its buckets by the running-sum method. Returns, per lane, Σ_b b·bucket_b = that window's
/// Σₜ dₜ·Pₜ. `points[t]` is the affine x, y limbs of Pₜ ≠ 𝒪, the same for every lane;
/// `buckets` (2^(c−1) + 1 of them) is scratch. Variable time: public inputs only.
#[inline(always)]
pub(crate) fn pippenger_lanes<L: Lanes>(
    l: L,
    digits: &[[u64; LANES]],
    points: &[[[u64; 5]; 2]],
    buckets: &mut [Bucket],
) -> LaneOutput {
    let zero = [l.splat(0); 5];
    let one = splat5(l, [1, 0, 0, 0, 0]);
    let identity = [store5(l, &zero), store5(l, &one), store5(l, &zero)];
    buckets.fill(identity);
    for (d, p) in digits.iter().zip(points) {
        let mut cur = identity;
        for lane in 0..LANES {
            let b = (d[lane] & (PIP_NEG - 1)) as usize;
            for c in 0..3 {
                for k in 0..5 {
                    cur[c][k][lane] = buckets[b][c][k][lane];
                }
            }
        }
        let negative = l.eq(l.shr::<32>(l.load(d)), l.splat(1));
        let qx = splat5(l, p[0]);
        let qy = splat5(l, p[1]);
        let neg_qy = sub(l, &zero, &qy);
        let mut qy_l = qy;
        for i in 0..5 {
            qy_l[i] = l.select(negative, qy[i], neg_qy[i]);
        }
        let acc = Point::<L> {
            x: load5(l, &cur[0]),
            y: load5(l, &cur[1]),
            z: load5(l, &cur[2]),
        };
        let sum = add_mixed(l, &acc, &qx, &qy_l);
        let out = [store5(l, &sum.x), store5(l, &sum.y), store5(l, &sum.z)];
        for lane in 0..LANES {
            let b = (d[lane] & (PIP_NEG - 1)) as usize;
            for c in 0..3 {
                for k in 0..5 {
                    buckets[b][c][k][lane] = out[c][k][lane];
                }
            }
        }
    }
    let ident = Point::<L> {
        x: zero,
        y: one,
        z: zero,
    };
    let mut running = ident;
    let mut total = ident;
    for b in buckets.iter().skip(1).rev() {
        let pb = Point::<L> {
            x: load5(l, &b[0]),
            y: load5(l, &b[1]),
            z: load5(l, &b[2]),
        };
        running = add_full(l, &running, &pb);
        total = add_full(l, &total, &running);
    }
    [
        store5(l, &total.x),
        store5(l, &total.y),
        store5(l, &total.z),
    ]
}

/// Affine x, y limbs of `d·16^w·G` at index `w·15 + d − 1`, for d = 1..=15 and w = 0..64.
static TABLE: LazyLock<Vec<[[u64; 5]; 2]>> = LazyLock::new(|| {
    let mut points = Vec::with_capacity(WINDOWS * DIGITS);
    let mut base = ProjectivePoint::GENERATOR;
    for _ in 0..WINDOWS {
        let mut acc = base;
        for _ in 0..DIGITS {
            points.push(acc);
            acc += base;
        }
        // acc = 16·base now.
        base = acc;
    }
    let affine =
        <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(points.as_slice());
    affine.iter().map(affine_limbs).collect()
});

/// The x, y limbs of an affine point (zeros for the identity).
pub(crate) fn affine_limbs(a: &AffinePoint) -> [[u64; 5]; 2] {
    let e = a.to_encoded_point(false);
    let x = e.x().map_or([0; 5], |b| bytes_to_limbs(&(*b).into()));
    let y = e.y().map_or([0; 5], |b| bytes_to_limbs(&(*b).into()));
    [x, y]
}

/// Builds the comb table now (it is otherwise built on first use).
pub(crate) fn warm_up() {
    LazyLock::force(&TABLE);
}

/// Limbs of a 32-byte big-endian integer below 2^256.
pub(crate) fn bytes_to_limbs(b: &[u8; 32]) -> [u64; 5] {
    let w: [u64; 4] = core::array::from_fn(|i| {
        let mut word = [0u8; 8];
        word.copy_from_slice(&b[32 - 8 * (i + 1)..32 - 8 * i]);
        u64::from_be_bytes(word)
    });
    words_to_limbs(&w)
}

/// The canonical 32-byte big-endian encoding of a weak-form element (public data only).
pub(crate) fn limbs_to_bytes(limbs: &[u64; 5]) -> [u8; 32] {
    let w = limbs_to_words(&canonical::<Fp>(limbs));
    let mut out = [0u8; 32];
    for i in 0..4 {
        out[32 - 8 * (i + 1)..32 - 8 * i].copy_from_slice(&w[i].to_be_bytes());
    }
    out
}

/// The 4-bit digits of up to eight scalars (missing lanes get the scalar 0). Secret: the
/// caller zeroizes the result.
pub(crate) fn digits(scalars: &[Scalar]) -> Box<Digits> {
    let mut d = Box::new([[0u64; LANES]; WINDOWS]);
    for (lane, s) in scalars.iter().enumerate().take(LANES) {
        write_digits(s, lane, &mut d);
    }
    d
}

/// Writes the 4-bit digits of `s` into lane `lane` of `d`.
pub(crate) fn write_digits(s: &Scalar, lane: usize, d: &mut Digits) {
    let mut bytes: [u8; 32] = s.to_bytes().into();
    for (w, row) in d.iter_mut().enumerate() {
        row[lane] = u64::from((bytes[31 - w / 2] >> (4 * (w % 2))) & 15);
    }
    bytes.zeroize();
}

/// k·G on every lane, constant time: 64 mixed additions, each of a table entry chosen by a
/// masked scan over all 15 entries of its window; a zero digit keeps the accumulator through a
/// masked select. The accumulator starts at 𝒪 = (0 : 1 : 0).
#[inline(always)]
pub(crate) fn mul_base_lanes<L: Lanes>(l: L, digits: &Digits) -> LaneOutput {
    let table = &*TABLE;
    let zero = l.splat(0);
    let mut acc = Point::<L> {
        x: [zero; 5],
        y: splat5(l, [1, 0, 0, 0, 0]),
        z: [zero; 5],
    };
    for (w, row) in digits.iter().enumerate() {
        let d = l.load(row);
        let mut qx = [zero; 5];
        let mut qy = [zero; 5];
        for (e, entry) in table[w * DIGITS..(w + 1) * DIGITS].iter().enumerate() {
            let m = l.eq(d, l.splat(e as u64 + 1));
            for i in 0..5 {
                qx[i] = l.select(m, qx[i], l.splat(entry[0][i]));
                qy[i] = l.select(m, qy[i], l.splat(entry[1][i]));
            }
        }
        let sum = add_mixed(l, &acc, &qx, &qy);
        let keep = l.eq(d, zero);
        for i in 0..5 {
            acc.x[i] = l.select(keep, sum.x[i], acc.x[i]);
            acc.y[i] = l.select(keep, sum.y[i], acc.y[i]);
            acc.z[i] = l.select(keep, sum.z[i], acc.z[i]);
        }
    }
    [store5(l, &acc.x), store5(l, &acc.y), store5(l, &acc.z)]
}

/// The projective coordinates of lane `lane` as canonical k256 field elements.
pub(crate) fn lane_coordinates(out: &LaneOutput, lane: usize) -> [FieldElement; 3] {
    out.map(|c| {
        let limbs: [u64; 5] = core::array::from_fn(|i| c[i][lane]);
        let bytes = FieldBytes::from(limbs_to_bytes(&limbs));
        Option::from(FieldElement::from_bytes(&bytes)).unwrap_or(FieldElement::ZERO)
    })
}

/// Projective (X : Y : Z) triples to k256 points with one batched inversion. `None` if a
/// triple is not a curve point (an internal error).
pub(crate) fn to_points(coords: &[[FieldElement; 3]]) -> Option<Vec<ProjectivePoint>> {
    // Prefix products of the Z's, with 1 standing in for Z = 0 (the identity).
    let zs: Vec<FieldElement> = coords
        .iter()
        .map(|c| {
            if bool::from(c[2].normalizes_to_zero()) {
                FieldElement::ONE
            } else {
                c[2]
            }
        })
        .collect();
    let mut prefix = Vec::with_capacity(zs.len());
    let mut acc = FieldElement::ONE;
    for z in &zs {
        prefix.push(acc);
        acc = acc.mul(z);
    }
    let mut inv = Option::<FieldElement>::from(acc.invert())?;
    let mut out = vec![ProjectivePoint::IDENTITY; coords.len()];
    for i in (0..coords.len()).rev() {
        let zinv = inv.mul(&prefix[i]);
        inv = inv.mul(&zs[i]);
        if bool::from(coords[i][2].normalizes_to_zero()) {
            continue;
        }
        let x = coords[i][0].mul(&zinv).normalize();
        let y = coords[i][1].mul(&zinv).normalize();
        let enc = EncodedPoint::from_affine_coordinates(&x.to_bytes(), &y.to_bytes(), false);
        let a: AffinePoint = Option::from(AffinePoint::from_encoded_point(&enc))?;
        out[i] = ProjectivePoint::from(a);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lanes::{M52, Portable};
    use k256::elliptic_curve::Field;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn fe_from_limbs(limbs: &[u64; 5]) -> FieldElement {
        FieldElement::from_bytes(&FieldBytes::from(limbs_to_bytes(limbs))).unwrap()
    }

    fn random_fe(r: &mut ChaCha20Rng) -> [u64; 5] {
        let mut b = [0u8; 32];
        r.fill_bytes(&mut b);
        bytes_to_limbs(&b)
    }

    fn lanes_of(x: &[[u64; 5]; LANES]) -> Fe<Portable> {
        core::array::from_fn(|i| core::array::from_fn(|lane| x[lane][i]))
    }

    fn lane(x: &Fe<Portable>, lane: usize) -> [u64; 5] {
        core::array::from_fn(|i| x[i][lane])
    }

    fn check_weak(x: &Fe<Portable>) {
        for lane in 0..LANES {
            for i in 0..4 {
                assert!(x[i][lane] < 1 << 52);
            }
            assert!(x[4][lane] < 1 << 49);
        }
    }

    /// The portable field ops agree with k256's field on random and extreme inputs.
    #[test]
    fn field_ops_match_k256() {
        let mut r = ChaCha20Rng::seed_from_u64(1);
        let extreme = [M52, M52, M52, M52, (1 << 49) - 1];
        for round in 0..200 {
            let a: [[u64; 5]; LANES] = core::array::from_fn(|i| {
                if round % 7 == 0 && i % 2 == 0 {
                    extreme
                } else {
                    random_fe(&mut r)
                }
            });
            let b: [[u64; 5]; LANES] = core::array::from_fn(|_| random_fe(&mut r));
            let (va, vb) = (lanes_of(&a), lanes_of(&b));
            let l = Portable;
            let ops = [
                mul(l, &va, &vb),
                add(l, &va, &vb),
                sub(l, &va, &vb),
                mul_b3(l, &va),
            ];
            for o in &ops {
                check_weak(o);
            }
            for i in 0..LANES {
                let (fa, fb) = (fe_from_limbs(&a[i]), fe_from_limbs(&b[i]));
                assert_eq!(fe_from_limbs(&lane(&ops[0], i)), fa.mul(&fb).normalize());
                assert_eq!(fe_from_limbs(&lane(&ops[1], i)), (fa + fb).normalize());
                assert_eq!(fe_from_limbs(&lane(&ops[2], i)), (fa - fb).normalize());
                assert_eq!(
                    fe_from_limbs(&lane(&ops[3], i)),
                    fa.mul(&FieldElement::from_u64(21)).normalize()
                );
            }
        }
    }

    #[test]
    fn signed_digits_rebuild_the_scalar_or_defer_to_its_negation() {
        let mut r = ChaCha20Rng::seed_from_u64(5);
        let mut deferred = 0;
        let mut cases: Vec<Scalar> = (0..200).map(|_| Scalar::random(&mut r)).collect();
        cases.extend([Scalar::ZERO, Scalar::ONE, -Scalar::ONE, Scalar::from(8u64)]);
        for s in cases {
            let d = match signed_digits_vartime(&s) {
                Some(d) => d,
                None => {
                    deferred += 1;
                    signed_digits_vartime(&-s).expect("−s recodes")
                }
            };
            let mut v = Scalar::ZERO;
            for x in d.iter().rev() {
                v *= Scalar::from(16u64);
                let mag = Scalar::from(x & (NEG - 1));
                assert!(x & (NEG - 1) <= SIGNED_MAX);
                v += if x & NEG != 0 { -mag } else { mag };
            }
            assert!(v == s || v == -s);
            assert_eq!(v == s, signed_digits_vartime(&s).is_some());
        }
        // −1 = n − 1 has top nibble 15: it must defer to 1.
        assert!(deferred >= 1);
    }

    #[test]
    fn pippenger_digits_rebuild_the_scalar() {
        let mut r = ChaCha20Rng::seed_from_u64(6);
        let mut cases: Vec<Scalar> = (0..100).map(|_| Scalar::random(&mut r)).collect();
        cases.extend([Scalar::ZERO, Scalar::ONE, -Scalar::ONE]);
        for c in [7u32, 9, 11] {
            let windows = 256usize.div_ceil(c as usize);
            let radix = Scalar::from(1u64 << c);
            for s in &cases {
                let d = pippenger_digits_vartime(s, c, windows).expect("spare top bits");
                let mut v = Scalar::ZERO;
                for x in d.iter().rev() {
                    let mag = x & (PIP_NEG - 1);
                    assert!(mag <= 1 << (c - 1));
                    v = v * radix
                        + if x & PIP_NEG != 0 {
                            -Scalar::from(mag)
                        } else {
                            Scalar::from(mag)
                        };
                }
                assert_eq!(v, *s, "c = {c}");
            }
        }
        // With no spare bits (c = 8) the top window of n − 1 carries out.
        assert!(pippenger_digits_vartime(&-Scalar::ONE, 8, 32).is_none());
    }

    #[test]
    fn limbs_round_trip() {
        let mut r = ChaCha20Rng::seed_from_u64(2);
        for _ in 0..100 {
            let f = FieldElement::random(&mut r);
            let b: [u8; 32] = f.to_bytes().into();
            assert_eq!(limbs_to_bytes(&bytes_to_limbs(&b)), b);
        }
    }

    /// The portable lane kernel gives k·G for random and edge scalars.
    #[test]
    fn portable_mul_base_matches_k256() {
        let mut r = ChaCha20Rng::seed_from_u64(3);
        let scalars: Vec<Scalar> = [Scalar::ZERO, Scalar::ONE, -Scalar::ONE]
            .into_iter()
            .chain((0..13).map(|_| Scalar::random(&mut r)))
            .collect();
        for chunk in scalars.chunks(LANES) {
            let d = digits(chunk);
            let out = mul_base_lanes(Portable, &d);
            let coords: Vec<_> = (0..chunk.len())
                .map(|i| lane_coordinates(&out, i))
                .collect();
            let pts = to_points(&coords).unwrap();
            for (s, p) in chunk.iter().zip(&pts) {
                assert_eq!(*p, ProjectivePoint::GENERATOR * s);
            }
        }
    }
}
