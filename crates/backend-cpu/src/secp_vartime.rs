//! Variable-time multi-scalar multiplication on secp256k1 for public data: Straus' method with
//! width-5 wNAF digits, the GLV endomorphism splitting every scalar into two ~128-bit halves,
//! Jacobian coordinates with mixed additions from affine tables, and Montgomery batch inversion
//! shared across every job of a batch (for the input points, the tables and the outputs).
//!
//! k256 0.13 only offers a constant-time `lincomb`; for public data (signature checks, group
//! commitments, batch verification) this path does the same sums with far fewer operations.
//! Facts used (public constants of secp256k1, as in SEC 2 and Gallant–Lambert–Vanstone,
//! "Faster point multiplication on elliptic curves with efficient endomorphisms", CRYPTO 2001;
//! the lattice constants are the ones libsecp256k1 documents for `scalar_split_lambda`):
//! λ·(x, y) = (β·x, y) with λ³ = 1 mod n and β³ = 1 mod p.

use std::sync::LazyLock;

use k256::elliptic_curve::BatchNormalize;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::{FromEncodedPoint, ToEncodedPoint};
use k256::{AffinePoint, EncodedPoint, FieldBytes, FieldElement, ProjectivePoint, Scalar, U256};

/// wNAF window width for per-job points: tables of 2^(W−2) = 8 odd multiples.
const W: usize = 5;
/// Window width for the generator, whose tables are built once: 2^(WG−2) = 64 odd multiples.
const WG: usize = 8;

fn fe(hex: &str) -> FieldElement {
    let mut b = FieldBytes::default();
    b.copy_from_slice(&hex_bytes(hex));
    Option::from(FieldElement::from_bytes(&b)).unwrap_or(FieldElement::ZERO)
}

fn sc(hex: &str) -> Scalar {
    <Scalar as Reduce<U256>>::reduce(U256::from_be_hex(hex))
}

fn hex_bytes(hex: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    out
}

struct Glv {
    beta: FieldElement,
    minus_lambda: Scalar,
    minus_b1: Scalar,
    minus_b2: Scalar,
    g1: U256,
    g2: U256,
}

static GLV: LazyLock<Glv> = LazyLock::new(|| Glv {
    beta: fe("7ae96a2b657c07106e64479eac3434e99cf0497512f58995c1396c28719501ee"),
    minus_lambda: -sc("5363ad4cc05c30e0a5261c028812645a122e22ea20816678df02967c1b23bd72"),
    minus_b1: sc("00000000000000000000000000000000e4437ed6010e88286f547fa90abfe4c3"),
    minus_b2: sc("fffffffffffffffffffffffffffffffe8a280ac50774346dd765cda83db1562c"),
    g1: U256::from_be_hex("3086d221a7d46bcde86c90e49284eb153daa8a1471e8ca7fe893209a45dbb031"),
    g2: U256::from_be_hex("e4437ed6010e88286f547fa90abfe4c4221208ac9df506c61571b4ae8ac47f71"),
});

/// round(k·g / 2^384) for k, g < 2^256.
fn mul_shift_384(k: &U256, g: &U256) -> Scalar {
    let (_lo, hi) = k.mul_wide(g);
    let shifted = hi.shr_vartime(128);
    let round = hi.bit_vartime(127);
    let v = shifted.wrapping_add(&U256::from_u8(round as u8));
    <Scalar as Reduce<U256>>::reduce(v)
}

/// Splits k into (k1, k2) with k = k1 + k2·λ mod n and |k1|, |k2| ≲ 2^128, each returned as
/// (magnitude as little-endian limbs, negative?).
fn split(k: &Scalar) -> [([u64; 4], bool); 2] {
    let g = &*GLV;
    let kk = U256::from_be_slice(&k.to_bytes());
    let c1 = mul_shift_384(&kk, &g.g1);
    let c2 = mul_shift_384(&kk, &g.g2);
    let r2 = c1 * g.minus_b1 + c2 * g.minus_b2;
    let r1 = r2 * g.minus_lambda + k;
    [signed(&r1), signed(&r2)]
}

fn signed(s: &Scalar) -> ([u64; 4], bool) {
    let neg = bool::from(s.is_high());
    let m = if neg { -*s } else { *s };
    let u = U256::from_be_slice(&m.to_bytes());
    let w = u.to_words();
    ([w[0], w[1], w[2], w[3]], neg)
}

/// Width-`w` NAF digits of a little-endian integer, least significant first.
fn wnaf(limbs: [u64; 4], w: usize) -> Vec<i16> {
    let mut k = [limbs[0], limbs[1], limbs[2], limbs[3], 0u64];
    let mut out = Vec::with_capacity(260);
    let window = 1i64 << w;
    while k.iter().any(|l| *l != 0) {
        let mut d = 0i64;
        if k[0] & 1 == 1 {
            d = (k[0] & (window as u64 - 1)) as i64;
            if d >= window / 2 {
                d -= window;
            }
            // k -= d
            if d > 0 {
                sub_small(&mut k, d as u64);
            } else {
                add_small(&mut k, (-d) as u64);
            }
        }
        out.push(d as i16);
        shr1(&mut k);
    }
    out
}

fn sub_small(k: &mut [u64; 5], v: u64) {
    let (r, mut borrow) = k[0].overflowing_sub(v);
    k[0] = r;
    for l in k.iter_mut().skip(1) {
        if !borrow {
            break;
        }
        let (r, b) = l.overflowing_sub(1);
        *l = r;
        borrow = b;
    }
}

fn add_small(k: &mut [u64; 5], v: u64) {
    let (r, mut carry) = k[0].overflowing_add(v);
    k[0] = r;
    for l in k.iter_mut().skip(1) {
        if !carry {
            break;
        }
        let (r, c) = l.overflowing_add(1);
        *l = r;
        carry = c;
    }
}

fn shr1(k: &mut [u64; 5]) {
    for i in 0..5 {
        k[i] = (k[i] >> 1) | if i < 4 { k[i + 1] << 63 } else { 0 };
    }
}

/// An affine point with field elements of magnitude 1.
#[derive(Clone, Copy, Debug)]
struct Affine {
    x: FieldElement,
    y: FieldElement,
}

/// A Jacobian point (X/Z², Y/Z³); `inf` marks the point at infinity.
#[derive(Clone, Copy, Debug)]
struct Jac {
    x: FieldElement,
    y: FieldElement,
    z: FieldElement,
    inf: bool,
}

const INF: Jac = Jac {
    x: FieldElement::ZERO,
    y: FieldElement::ZERO,
    z: FieldElement::ONE,
    inf: true,
};

fn sub(a: &FieldElement, b: &FieldElement) -> FieldElement {
    (*a + b.normalize_weak().negate(1)).normalize_weak()
}

impl Jac {
    fn from_affine(p: &Affine) -> Jac {
        Jac {
            x: p.x,
            y: p.y,
            z: FieldElement::ONE,
            inf: false,
        }
    }

    /// dbl-2009-l (a = 0).
    fn double(&self) -> Jac {
        if self.inf {
            return *self;
        }
        let a = self.x.square();
        let b = self.y.square();
        let c = b.square();
        let xb = (self.x + b).normalize_weak();
        let d = sub(&sub(&xb.square(), &a), &c).double().normalize_weak();
        let e = a.mul_single(3).normalize_weak();
        let f = e.square();
        let x3 = sub(&f, &d.double());
        let y3 = sub(&e.mul(&sub(&d, &x3)), &c.mul_single(8));
        let z3 = self.y.mul(&self.z).double().normalize_weak();
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }

    /// madd-2007-bl: self + q for affine q, with the exceptional cases handled.
    fn add_affine(&self, q: &Affine) -> Jac {
        if self.inf {
            return Jac::from_affine(q);
        }
        let z1z1 = self.z.square();
        let u2 = q.x.mul(&z1z1);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = sub(&u2, &self.x);
        let r = sub(&s2, &self.y).double().normalize_weak();
        if bool::from(h.normalizes_to_zero()) {
            return if bool::from(r.normalizes_to_zero()) {
                self.double()
            } else {
                INF
            };
        }
        let hh = h.square();
        let i = hh.mul_single(4).normalize_weak();
        let j = h.mul(&i);
        let v = self.x.mul(&i);
        let x3 = sub(&sub(&r.square(), &j), &v.double());
        let y3 = sub(&r.mul(&sub(&v, &x3)), &self.y.mul(&j).double());
        let z3 = sub(&sub(&(self.z + h).normalize_weak().square(), &z1z1), &hh);
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }

    /// add-2007-bl: general Jacobian addition (used while building tables).
    fn add(&self, q: &Jac) -> Jac {
        if self.inf {
            return *q;
        }
        if q.inf {
            return *self;
        }
        let z1z1 = self.z.square();
        let z2z2 = q.z.square();
        let u1 = self.x.mul(&z2z2);
        let u2 = q.x.mul(&z1z1);
        let s1 = self.y.mul(&q.z).mul(&z2z2);
        let s2 = q.y.mul(&self.z).mul(&z1z1);
        let h = sub(&u2, &u1);
        let r = sub(&s2, &s1).double().normalize_weak();
        if bool::from(h.normalizes_to_zero()) {
            return if bool::from(r.normalizes_to_zero()) {
                self.double()
            } else {
                INF
            };
        }
        let i = h.double().normalize_weak().square();
        let j = h.mul(&i);
        let v = u1.mul(&i);
        let x3 = sub(&sub(&r.square(), &j), &v.double());
        let y3 = sub(&r.mul(&sub(&v, &x3)), &s1.mul(&j).double());
        let zz = (self.z + q.z).normalize_weak().square();
        let z3 = sub(&sub(&zz, &z1z1), &z2z2).mul(&h);
        Jac {
            x: x3,
            y: y3,
            z: z3,
            inf: false,
        }
    }
}

/// Affine forms of Jacobian points by Montgomery's trick (one inversion); infinity maps to
/// `None`.
fn to_affine_batch(points: &[Jac]) -> Vec<Option<Affine>> {
    if points.is_empty() {
        return Vec::new();
    }
    let mut prefix = Vec::with_capacity(points.len());
    let mut acc = FieldElement::ONE;
    for p in points {
        prefix.push(acc);
        if !p.inf {
            acc = acc.mul(&p.z);
        }
    }
    let mut inv: FieldElement = Option::from(acc.invert()).unwrap_or(FieldElement::ZERO);
    let mut out = vec![None; points.len()];
    for i in (0..points.len()).rev() {
        let p = &points[i];
        if p.inf {
            continue;
        }
        let zinv = inv.mul(&prefix[i]);
        inv = inv.mul(&p.z);
        let zinv2 = zinv.square();
        let x = p.x.mul(&zinv2).normalize();
        let y = p.y.mul(&zinv2).mul(&zinv).normalize();
        out[i] = Some(Affine { x, y });
    }
    out
}

fn affine_of(p: &AffinePoint) -> Affine {
    let enc = p.to_encoded_point(false);
    let mut xb = FieldBytes::default();
    let mut yb = FieldBytes::default();
    xb.copy_from_slice(enc.x().map(|x| x.as_slice()).unwrap_or(&[0u8; 32]));
    yb.copy_from_slice(enc.y().map(|y| y.as_slice()).unwrap_or(&[0u8; 32]));
    Affine {
        x: Option::from(FieldElement::from_bytes(&xb)).unwrap_or(FieldElement::ZERO),
        y: Option::from(FieldElement::from_bytes(&yb)).unwrap_or(FieldElement::ZERO),
    }
}

fn to_k256(p: &Option<Affine>) -> ProjectivePoint {
    match p {
        None => ProjectivePoint::IDENTITY,
        Some(a) => {
            let enc =
                EncodedPoint::from_affine_coordinates(&a.x.to_bytes(), &a.y.to_bytes(), false);
            Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&enc))
                .map(ProjectivePoint::from)
                .unwrap_or(ProjectivePoint::IDENTITY)
        }
    }
}

/// Odd multiples P, 3P, …, (2^(w−1) − 1)P of each point, as affine points.
fn odd_multiples(points: &[Affine], w: usize) -> Vec<Vec<Affine>> {
    let n = 1usize << (w - 2);
    let mut jac = Vec::with_capacity(points.len() * n);
    for p in points {
        let base = Jac::from_affine(p);
        let two = base.double();
        let mut cur = base;
        jac.push(cur);
        for _ in 1..n {
            cur = cur.add(&two);
            jac.push(cur);
        }
    }
    let aff = to_affine_batch(&jac);
    aff.chunks(n)
        .map(|c| {
            c.iter()
                .map(|a| {
                    a.unwrap_or(Affine {
                        x: FieldElement::ZERO,
                        y: FieldElement::ZERO,
                    })
                })
                .collect()
        })
        .collect()
}

fn endo(table: &[Affine]) -> Vec<Affine> {
    let beta = GLV.beta;
    table
        .iter()
        .map(|a| Affine {
            x: a.x.mul(&beta).normalize(),
            y: a.y,
        })
        .collect()
}

/// Tables for G and λ·G, built once.
static G_TABLES: LazyLock<[Vec<Affine>; 2]> = LazyLock::new(|| {
    let g = affine_of(&AffinePoint::GENERATOR);
    let t = odd_multiples(&[g], WG).remove(0);
    let e = endo(&t);
    [t, e]
});

/// One half-scalar's digits with the table they index.
struct Stream<'a> {
    digits: Vec<i16>,
    table: &'a [Affine],
    negate: bool,
}

fn lookup(table: &[Affine], d: i16, negate: bool) -> Affine {
    let e = table[(d.unsigned_abs() as usize) >> 1];
    if (d < 0) ^ negate {
        Affine {
            x: e.x,
            y: e.y.negate(1).normalize_weak(),
        }
    } else {
        e
    }
}

/// Σ sᵢ·Pᵢ for every job; each job given as (generator scalar, [(scalar, point)]) with no
/// identity points among the terms.
pub(crate) fn lincomb_batch<'a>(
    jobs: impl Iterator<Item = (Scalar, &'a [(Scalar, ProjectivePoint)])> + Clone,
) -> Vec<ProjectivePoint> {
    // Affine inputs for every term of every job, with one shared inversion.
    let inputs: Vec<ProjectivePoint> = jobs
        .clone()
        .flat_map(|(_, t)| t.iter().map(|(_, p)| *p))
        .collect();
    let affine = if inputs.is_empty() {
        Vec::new()
    } else {
        <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(inputs.as_slice())
    };
    let affine: Vec<Affine> = affine.iter().map(affine_of).collect();
    let tables = odd_multiples(&affine, W);
    let endo_tables: Vec<Vec<Affine>> = tables.iter().map(|t| endo(t)).collect();

    let mut results = Vec::new();
    let mut term = 0usize;
    for (g_scalar, terms) in jobs {
        let mut streams: Vec<Stream<'_>> = Vec::with_capacity(2 * terms.len() + 2);
        if g_scalar != Scalar::ZERO {
            let [(a, na), (b, nb)] = split(&g_scalar);
            streams.push(Stream {
                digits: wnaf(a, WG),
                table: &G_TABLES[0],
                negate: na,
            });
            streams.push(Stream {
                digits: wnaf(b, WG),
                table: &G_TABLES[1],
                negate: nb,
            });
        }
        for (s, _) in terms {
            let [(a, na), (b, nb)] = split(s);
            streams.push(Stream {
                digits: wnaf(a, W),
                table: &tables[term],
                negate: na,
            });
            streams.push(Stream {
                digits: wnaf(b, W),
                table: &endo_tables[term],
                negate: nb,
            });
            term += 1;
        }
        let len = streams.iter().map(|s| s.digits.len()).max().unwrap_or(0);
        let mut acc = INF;
        for i in (0..len).rev() {
            acc = acc.double();
            for s in &streams {
                if let Some(&d) = s.digits.get(i)
                    && d != 0
                {
                    acc = acc.add_affine(&lookup(s.table, d, s.negate));
                }
            }
        }
        results.push(acc);
    }
    to_affine_batch(&results).iter().map(to_k256).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k256::elliptic_curve::Field;
    use k256::elliptic_curve::group::Group;
    use rand_core::OsRng;

    #[test]
    fn endomorphism_constants() {
        let lambda = -GLV.minus_lambda;
        let lg = (ProjectivePoint::GENERATOR * lambda).to_affine();
        let g = affine_of(&AffinePoint::GENERATOR);
        let expect = Affine {
            x: g.x.mul(&GLV.beta).normalize(),
            y: g.y,
        };
        let got = affine_of(&lg);
        assert_eq!(got.x, expect.x);
        assert_eq!(got.y, expect.y);
    }

    #[test]
    fn split_is_correct_and_short() {
        let lambda = -GLV.minus_lambda;
        for i in 0..2000u64 {
            let k = if i < 4 {
                [Scalar::ZERO, Scalar::ONE, -Scalar::ONE, lambda][i as usize]
            } else {
                Scalar::random(&mut OsRng)
            };
            let [(a, na), (b, nb)] = split(&k);
            assert!(
                a[2] == 0 && a[3] == 0 && b[2] == 0 && b[3] == 0,
                "halves exceed 128 bits"
            );
            let to_s = |l: [u64; 4], neg: bool| {
                let v = <Scalar as Reduce<U256>>::reduce(U256::from_words(l));
                if neg { -v } else { v }
            };
            assert_eq!(to_s(a, na) + to_s(b, nb) * lambda, k);
        }
    }

    #[test]
    fn wnaf_reconstructs() {
        for _ in 0..200 {
            let s = Scalar::random(&mut OsRng);
            let (l, _) = signed(&s);
            let digits = wnaf(l, W);
            let mut acc = Scalar::ZERO;
            for d in digits.iter().rev() {
                acc = acc.double();
                acc += if *d < 0 {
                    -Scalar::from((-*d) as u64)
                } else {
                    Scalar::from(*d as u64)
                };
            }
            let (l2, _) = signed(&acc);
            assert_eq!(l, l2);
        }
    }

    #[test]
    fn matches_naive_sums() {
        let p = ProjectivePoint::GENERATOR * Scalar::random(&mut OsRng);
        let jobs: Vec<(Scalar, Vec<(Scalar, ProjectivePoint)>)> = vec![
            (Scalar::ZERO, vec![]),
            (Scalar::ONE, vec![]),
            (
                Scalar::random(&mut OsRng),
                vec![(Scalar::random(&mut OsRng), p)],
            ),
            (Scalar::ZERO, vec![(Scalar::ONE, p), (Scalar::ONE, -p)]),
            (Scalar::ZERO, vec![(Scalar::ONE, p), (Scalar::ONE, p)]),
            (
                Scalar::from(3u64),
                vec![(
                    -Scalar::ONE,
                    ProjectivePoint::GENERATOR * Scalar::from(3u64),
                )],
            ),
            (
                Scalar::random(&mut OsRng),
                (0..20)
                    .map(|_| {
                        (
                            Scalar::random(&mut OsRng),
                            ProjectivePoint::random(&mut OsRng),
                        )
                    })
                    .collect(),
            ),
        ];
        let out = lincomb_batch(jobs.iter().map(|(g, t)| (*g, t.as_slice())));
        for ((g, terms), got) in jobs.iter().zip(out) {
            let expect = terms
                .iter()
                .fold(ProjectivePoint::GENERATOR * g, |a, (s, p)| a + *p * s);
            assert_eq!(got, expect);
        }
    }
}
