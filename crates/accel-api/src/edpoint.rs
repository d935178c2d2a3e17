//! [`EdPoint`]: the port's own edwards25519 point, so that a backend can hand back a result
//! in the coordinates it computed instead of an encoding the caller must decompress.
//!
//! curve25519-dalek keeps an `EdwardsPoint`'s coordinates private: the only way in is
//! `CompressedEdwardsY::decompress`, a square root (5.7 µs on the development machine, more
//! than a lane backend spends on the whole multiplication). An [`EdPoint`] is either a dalek
//! point or affine coordinates that were checked to lie on the curve when the backend made
//! them. The encoding of an affine point costs nothing (y and the sign of x); a dalek point is
//! made from it only when the caller does arithmetic the port does not (`+`, `-`, a single
//! scalar multiplication).

use core::fmt;
use core::ops::{Add, Neg, Sub};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::traits::{Identity, IsIdentity};

/// An edwards25519 point at the accelerator port: curve25519-dalek's extended coordinates, or
/// canonical affine coordinates checked to satisfy the curve equation.
///
/// Every value is a point of the curve (not necessarily of the prime-order subgroup: the port
/// computes on whatever points it is given). Equality is equality of points, whatever the
/// representations.
#[derive(Clone, Copy)]
pub struct EdPoint(Repr);

#[derive(Clone, Copy)]
enum Repr {
    Extended(EdwardsPoint),
    Affine { x: fe::Fe, y: fe::Fe },
}

impl EdPoint {
    /// The identity element.
    pub fn identity() -> Self {
        EdPoint(Repr::Extended(EdwardsPoint::identity()))
    }

    /// The standard base point B (RFC 8032 §5.1).
    pub fn generator() -> Self {
        EdPoint(Repr::Extended(ED25519_BASEPOINT_POINT))
    }

    /// The point with affine coordinates (x, y), given as canonical little-endian encodings of
    /// field elements. `None` when either is not canonical (≥ 2²⁵⁵ − 19) or when (x, y) does
    /// not satisfy −x² + y² = 1 + d·x²·y² (RFC 8032 §5.1). Variable time: public data only.
    pub fn from_affine_vartime(x: &[u8; 32], y: &[u8; 32]) -> Option<Self> {
        let x = fe::Fe::from_canonical_bytes(x)?;
        let y = fe::Fe::from_canonical_bytes(y)?;
        let (xx, yy) = (x.square(), y.square());
        let lhs = yy.sub(&xx);
        let rhs = fe::Fe::ONE.add(&fe::D.mul(&xx).mul(&yy));
        lhs.equals(&rhs).then_some(EdPoint(Repr::Affine { x, y }))
    }

    /// The point of a canonical encoding (RFC 8032 §5.1.3): `None` when y ≥ p, when x² =
    /// (y² − 1)/(d·y² + 1) has no root, or when x = 0 and the sign bit is set. Points with a
    /// torsion component decode. Variable time: public data only. The serial reference of
    /// [`crate::Accelerator::ed25519_decompress_batch`].
    pub fn decompress_vartime(encoding: &[u8; 32]) -> Option<Self> {
        let mut y = *encoding;
        let sign = y[31] >> 7 == 1;
        y[31] &= 0x7f;
        // y = ±1 are the points with x = 0, which have no negative form.
        let one = fe::Fe::ONE.to_bytes();
        let minus_one = fe::Fe::ZERO.sub(&fe::Fe::ONE).to_bytes();
        if fe::Fe::from_canonical_bytes(&y).is_none() || (sign && (y == one || y == minus_one)) {
            return None;
        }
        CompressedEdwardsY(*encoding)
            .decompress()
            .map(EdPoint::from)
    }

    /// The affine coordinates (x, y) as canonical little-endian encodings, when this point
    /// carries them (a backend's result); `None` for a curve25519-dalek point, whose
    /// coordinates cannot be read without an inversion ([`EdPoint::compress`]).
    pub fn affine_bytes(&self) -> Option<([u8; 32], [u8; 32])> {
        match &self.0 {
            Repr::Affine { x, y } => Some((x.to_bytes(), y.to_bytes())),
            Repr::Extended(_) => None,
        }
    }

    /// The canonical encoding (RFC 8032 §5.1.2): free for affine coordinates, one inversion
    /// for a dalek point (use [`EdPoint::compress_batch`] for many).
    pub fn compress(&self) -> CompressedEdwardsY {
        match &self.0 {
            Repr::Affine { x, y } => encode(x, y),
            Repr::Extended(p) => p.compress(),
        }
    }

    /// The canonical encodings of many points, with one batched inversion for the dalek
    /// points among them.
    pub fn compress_batch(points: &[EdPoint]) -> Vec<CompressedEdwardsY> {
        let extended: Vec<EdwardsPoint> = points
            .iter()
            .filter_map(|p| match p.0 {
                Repr::Extended(e) => Some(e),
                Repr::Affine { .. } => None,
            })
            .collect();
        let mut encoded = EdwardsPoint::compress_batch_alloc(&extended).into_iter();
        points
            .iter()
            .map(|p| match &p.0 {
                Repr::Affine { x, y } => encode(x, y),
                Repr::Extended(e) => encoded.next().unwrap_or_else(|| e.compress()),
            })
            .collect()
    }

    /// The curve25519-dalek point: a copy for a dalek point, a decompression (a square root)
    /// for affine coordinates.
    pub fn to_edwards(&self) -> EdwardsPoint {
        match &self.0 {
            Repr::Extended(p) => *p,
            #[allow(clippy::expect_used)] // from_affine_vartime checked the curve equation
            Repr::Affine { x, y } => encode(x, y)
                .decompress()
                .expect("affine coordinates on the curve decode"),
        }
    }

    /// Whether the point's order divides the cofactor 8 (the identity included). For affine
    /// coordinates, without a multiplication: x = 0 (the identity and the point of order 2),
    /// y = 0 (order 4), or x² + y² = 0 (order 8, the points whose double has y = 0, since
    /// y(2P) = (x² + y²)/(2 + x² − y²) when a = −1). Variable time: public data only.
    pub fn is_small_order(&self) -> bool {
        match &self.0 {
            Repr::Extended(p) => p.is_small_order(),
            Repr::Affine { x, y } => {
                x.is_zero() || y.is_zero() || x.square().add(&y.square()).is_zero()
            }
        }
    }

    /// Whether this is the identity element.
    pub fn is_identity(&self) -> bool {
        match &self.0 {
            Repr::Extended(p) => p.is_identity(),
            Repr::Affine { x, y } => x.is_zero() && y.equals(&fe::Fe::ONE),
        }
    }
}

fn encode(x: &fe::Fe, y: &fe::Fe) -> CompressedEdwardsY {
    let mut s = y.to_bytes();
    s[31] |= (x.to_bytes()[0] & 1) << 7;
    CompressedEdwardsY(s)
}

impl From<EdwardsPoint> for EdPoint {
    fn from(p: EdwardsPoint) -> Self {
        EdPoint(Repr::Extended(p))
    }
}

impl From<EdPoint> for EdwardsPoint {
    fn from(p: EdPoint) -> Self {
        p.to_edwards()
    }
}

impl PartialEq for EdPoint {
    fn eq(&self, other: &Self) -> bool {
        match (&self.0, &other.0) {
            (Repr::Extended(a), Repr::Extended(b)) => a == b,
            (Repr::Affine { x: ax, y: ay }, Repr::Affine { x: bx, y: by }) => {
                ax.equals(bx) && ay.equals(by)
            }
            _ => self.compress() == other.compress(),
        }
    }
}

impl Eq for EdPoint {}

impl fmt::Debug for EdPoint {
    /// The encoding in hex (public data).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EdPoint(")?;
        for b in self.compress().as_bytes() {
            write!(f, "{b:02x}")?;
        }
        f.write_str(")")
    }
}

impl Neg for EdPoint {
    type Output = EdPoint;

    /// (−x, y) for affine coordinates: no conversion.
    fn neg(self) -> EdPoint {
        match self.0 {
            Repr::Extended(p) => EdPoint(Repr::Extended(-p)),
            Repr::Affine { x, y } => EdPoint(Repr::Affine {
                x: fe::Fe::ZERO.sub(&x),
                y,
            }),
        }
    }
}

impl Add for EdPoint {
    type Output = EdPoint;

    fn add(self, other: EdPoint) -> EdPoint {
        if self.is_identity() {
            return other;
        }
        if other.is_identity() {
            return self;
        }
        EdPoint(Repr::Extended(self.to_edwards() + other.to_edwards()))
    }
}

impl Sub for EdPoint {
    type Output = EdPoint;

    fn sub(self, other: EdPoint) -> EdPoint {
        self + (-other)
    }
}

/// Affine coordinates (x, y), little-endian hex, of the base point (RFC 8032 §5.1) and of the
/// seven points of small order other than the identity, computed from the curve equation of
/// RFC 8032 §5.1 (−x² + y² = 1 + d·x²·y²) and checked against curve25519-dalek's constants
/// wherever they are used.
#[cfg(any(test, feature = "test-kit"))]
pub(crate) const AFFINE_TABLE: [(&str, &str); 8] = [
    (
        "1ad5258f602d56c9b2a7259560c72c695cdcd6fd31e2a4c0fe536ecdd3366921",
        "5866666666666666666666666666666666666666666666666666666666666666",
    ),
    (
        "4ad145c54646a1de38e2e513703c195cbb4ade38329933e9284a3906a0b9d51f",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    ),
    (
        "b0a00e4a271beec478e42fad0618432fa7d7fb3d99004d2b0bdfc14f8024832b",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "4ad145c54646a1de38e2e513703c195cbb4ade38329933e9284a3906a0b9d51f",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ),
    (
        "0000000000000000000000000000000000000000000000000000000000000000",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    ),
    (
        "a32eba3ab9b95e21c71d1aec8fc3e6a344b521c7cd66cc16d7b5c6f95f462a60",
        "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
    ),
    (
        "3d5ff1b5d8e4113b871bd052f9e7bcd0582804c266ffb2d4f4203eb07fdb7c54",
        "0000000000000000000000000000000000000000000000000000000000000000",
    ),
    (
        "a32eba3ab9b95e21c71d1aec8fc3e6a344b521c7cd66cc16d7b5c6f95f462a60",
        "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
    ),
];

#[cfg(any(test, feature = "test-kit"))]
/// The 32 bytes a 64-digit hex string names (panics on anything else: tables and tests only).
#[allow(clippy::expect_used)]
pub(crate) fn hex32(h: &str) -> [u8; 32] {
    core::array::from_fn(|i| u8::from_str_radix(&h[2 * i..2 * i + 2], 16).expect("a hex table"))
}

/// Arithmetic modulo p = 2²⁵⁵ − 19 on public values, enough to check the curve equation:
/// five 51-bit limbs, products in u128. Variable time.
mod fe {
    const MASK: u64 = (1 << 51) - 1;

    /// A field element; limbs below 2⁵² between operations.
    #[derive(Clone, Copy)]
    pub(super) struct Fe([u64; 5]);

    /// d = −121665/121666 (RFC 8032 §5.1).
    pub(super) const D: Fe = Fe([
        929_955_233_495_203,
        466_365_720_129_213,
        1_662_059_464_998_953,
        2_033_849_074_728_123,
        1_442_794_654_840_575,
    ]);

    impl Fe {
        pub(super) const ZERO: Fe = Fe([0; 5]);
        pub(super) const ONE: Fe = Fe([1, 0, 0, 0, 0]);

        /// The element a 32-byte little-endian string encodes, if it is below p.
        pub(super) fn from_canonical_bytes(b: &[u8; 32]) -> Option<Fe> {
            let word = |i: usize| {
                let mut w = [0u8; 8];
                w.copy_from_slice(&b[8 * i..8 * i + 8]);
                u64::from_le_bytes(w)
            };
            let w = [word(0), word(1), word(2), word(3)];
            let fe = Fe([
                w[0] & MASK,
                ((w[0] >> 51) | (w[1] << 13)) & MASK,
                ((w[1] >> 38) | (w[2] << 26)) & MASK,
                ((w[2] >> 25) | (w[3] << 39)) & MASK,
                (w[3] >> 12) & MASK,
            ]);
            (fe.to_bytes() == *b).then_some(fe)
        }

        /// The canonical little-endian encoding.
        pub(super) fn to_bytes(self) -> [u8; 32] {
            let l = self.reduced();
            let words = [
                l[0] | (l[1] << 51),
                (l[1] >> 13) | (l[2] << 38),
                (l[2] >> 26) | (l[3] << 25),
                (l[3] >> 39) | (l[4] << 12),
            ];
            let mut out = [0u8; 32];
            for (chunk, w) in out.chunks_exact_mut(8).zip(words) {
                chunk.copy_from_slice(&w.to_le_bytes());
            }
            out
        }

        /// The limbs of the representative in [0, p).
        fn reduced(self) -> [u64; 5] {
            let mut l = carry(self.0.map(u128::from));
            l = carry(l.map(u128::from));
            // q = 1 exactly when the value is ≥ p: adding 19 then carries out of bit 255.
            let mut q = (l[0] + 19) >> 51;
            for limb in &l[1..] {
                q = (limb + q) >> 51;
            }
            l[0] += 19 * q;
            for i in 0..4 {
                l[i + 1] += l[i] >> 51;
                l[i] &= MASK;
            }
            l[4] &= MASK;
            l
        }

        pub(super) fn equals(&self, other: &Fe) -> bool {
            self.reduced() == other.reduced()
        }

        pub(super) fn is_zero(&self) -> bool {
            self.reduced() == [0; 5]
        }

        pub(super) fn add(&self, other: &Fe) -> Fe {
            Fe(carry(core::array::from_fn(|i| {
                u128::from(self.0[i]) + u128::from(other.0[i])
            })))
        }

        /// self − other, computed as self + 4p − other (limbs of `other` stay below 2⁵³).
        pub(super) fn sub(&self, other: &Fe) -> Fe {
            const FOUR_P: [u64; 5] = [4 * ((1 << 51) - 19), 4 * MASK, 4 * MASK, 4 * MASK, 4 * MASK];
            Fe(carry(core::array::from_fn(|i| {
                u128::from(self.0[i]) + u128::from(FOUR_P[i]) - u128::from(other.0[i])
            })))
        }

        pub(super) fn mul(&self, other: &Fe) -> Fe {
            let a = self.0.map(u128::from);
            let b = other.0.map(u128::from);
            let mut r = [0u128; 5];
            for i in 0..5 {
                for j in 0..5 {
                    let p = a[i] * b[j];
                    if i + j < 5 {
                        r[i + j] += p;
                    } else {
                        r[i + j - 5] += 19 * p;
                    }
                }
            }
            Fe(carry(r))
        }

        pub(super) fn square(&self) -> Fe {
            self.mul(self)
        }
    }

    /// Carries limbs of up to 2¹²⁰ into 51-bit limbs (the carry out of the top limb folds back
    /// as 19 times itself); the first limb may end slightly above 2⁵¹.
    fn carry(mut r: [u128; 5]) -> [u64; 5] {
        for i in 0..4 {
            r[i + 1] += r[i] >> 51;
            r[i] &= u128::from(MASK);
        }
        let top = r[4] >> 51;
        r[4] &= u128::from(MASK);
        r[0] += 19 * top;
        r[1] += r[0] >> 51;
        r[0] &= u128::from(MASK);
        r.map(|l| l as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::scalar::Scalar;

    /// B's affine coordinates (RFC 8032 §5.1: x = 151122…762202, y = 4/5), little-endian.
    const BX: &str = AFFINE_TABLE[0].0;
    const BY: &str = AFFINE_TABLE[0].1;

    fn bytes(hex: &str) -> [u8; 32] {
        hex32(hex)
    }

    #[test]
    fn small_order_is_recognised_from_affine_coordinates() {
        let table: Vec<EdPoint> = AFFINE_TABLE
            .iter()
            .map(|(x, y)| EdPoint::from_affine_vartime(&hex32(x), &hex32(y)).unwrap())
            .collect();
        let b = table[0];
        assert!(!b.is_small_order());
        assert!(!(-b).is_small_order());
        for t in &table[1..] {
            assert!(EIGHT_TORSION.contains(&t.to_edwards()));
            assert!(t.is_small_order(), "{t:?}");
            assert!((-*t).is_small_order(), "{t:?}");
            // Mixed order: B plus a torsion point, computed by dalek and compared affinely.
            assert!(!(b + *t).is_small_order());
            assert!(!EdPoint::from(ED25519_BASEPOINT_POINT + t.to_edwards()).is_small_order());
        }
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(
            EdPoint::from_affine_vartime(&[0; 32], &one)
                .unwrap()
                .is_small_order()
        );
        assert!(EdPoint::identity().is_small_order());
    }

    /// −B from B's coordinates: (p − x, y).
    fn minus_b() -> EdPoint {
        let x = fe::Fe::from_canonical_bytes(&bytes(BX)).unwrap();
        EdPoint::from_affine_vartime(&fe::Fe::ZERO.sub(&x).to_bytes(), &bytes(BY)).unwrap()
    }

    #[test]
    fn the_base_point_from_its_coordinates_is_dalek_s() {
        let b = EdPoint::from_affine_vartime(&bytes(BX), &bytes(BY)).unwrap();
        assert_eq!(b.compress(), ED25519_BASEPOINT_POINT.compress());
        assert_eq!(b.to_edwards(), ED25519_BASEPOINT_POINT);
        assert_eq!(b, EdPoint::generator());
        assert_eq!(b.affine_bytes(), Some((bytes(BX), bytes(BY))));
        assert!(!b.is_identity());
        let minus_b = minus_b();
        assert_eq!(minus_b.to_edwards(), -ED25519_BASEPOINT_POINT);
        assert_eq!(-b, minus_b);
        assert_eq!((-b).to_edwards(), -ED25519_BASEPOINT_POINT);
        assert!((b + minus_b).is_identity());
        assert_eq!(
            b + b,
            EdPoint::from(ED25519_BASEPOINT_POINT * Scalar::from(2u8))
        );
        assert_eq!(b - b, EdPoint::identity());
    }

    #[test]
    fn the_identity_and_its_coordinates_agree() {
        let mut one = [0u8; 32];
        one[0] = 1;
        let id = EdPoint::from_affine_vartime(&[0; 32], &one).unwrap();
        assert!(id.is_identity());
        assert_eq!(id, EdPoint::identity());
        assert_eq!(id.to_edwards(), EdwardsPoint::identity());
        assert_eq!(id + EdPoint::generator(), EdPoint::generator());
        assert_eq!(EdPoint::generator() + id, EdPoint::generator());
    }

    #[test]
    fn coordinates_off_the_curve_or_not_canonical_are_refused() {
        let (bx, by) = (bytes(BX), bytes(BY));
        let mut off = by;
        off[0] ^= 1;
        assert!(EdPoint::from_affine_vartime(&bx, &off).is_none());
        assert!(EdPoint::from_affine_vartime(&off, &by).is_none());
        // p itself and p + 1 encode 0 and 1 non-canonically.
        let mut p = [0xff; 32];
        p[0] = 0xed;
        p[31] = 0x7f;
        let mut p1 = p;
        p1[0] = 0xee;
        let mut one = [0u8; 32];
        one[0] = 1;
        assert!(EdPoint::from_affine_vartime(&[0; 32], &one).is_some());
        assert!(EdPoint::from_affine_vartime(&p, &one).is_none());
        assert!(EdPoint::from_affine_vartime(&[0; 32], &p1).is_none());
        // The top bit is not part of a field element.
        let mut high = bx;
        high[31] |= 0x80;
        assert!(EdPoint::from_affine_vartime(&high, &by).is_none());
    }

    #[test]
    fn decompression_is_rfc_8032_decoding() {
        // Canonical encodings of points of every order decode to the point dalek decodes.
        for k in 0..8u64 {
            for t in EIGHT_TORSION {
                let p = ED25519_BASEPOINT_POINT * Scalar::from(k * 977 + 3) + t;
                let e = p.compress().to_bytes();
                assert_eq!(EdPoint::decompress_vartime(&e).unwrap().to_edwards(), p);
            }
        }
        // y = p + k (k < 19) with either sign: dalek decodes some of them, RFC 8032 none.
        let mut dalek_took = 0;
        for k in 0..19u8 {
            for top in [0x7f, 0xff] {
                let mut e = [0xff; 32];
                e[0] = 0xed + k;
                e[31] = top;
                dalek_took += usize::from(CompressedEdwardsY(e).decompress().is_some());
                assert!(EdPoint::decompress_vartime(&e).is_none(), "y = p + {k}");
            }
        }
        assert!(
            dalek_took > 0,
            "the non-canonical cases include decodable ones"
        );
        // Negative zero: y = ±1 with the sign bit set; without it, the identity and (0, −1).
        let mut one = [0u8; 32];
        one[0] = 1;
        let minus_one = fe::Fe::ZERO.sub(&fe::Fe::ONE).to_bytes();
        for y in [one, minus_one] {
            let mut e = y;
            assert!(EdPoint::decompress_vartime(&e).unwrap().is_small_order());
            e[31] |= 0x80;
            assert!(CompressedEdwardsY(e).decompress().is_some());
            assert!(EdPoint::decompress_vartime(&e).is_none());
        }
        // y = 2 gives no square x².
        let mut two = [0u8; 32];
        two[0] = 2;
        assert!(EdPoint::decompress_vartime(&two).is_none());
    }

    #[test]
    fn batch_compression_matches_one_by_one_across_representations() {
        let b = EdPoint::from_affine_vartime(&bytes(BX), &bytes(BY)).unwrap();
        let mut points = vec![b, EdPoint::identity(), -b];
        for (k, t) in EIGHT_TORSION.iter().enumerate() {
            points.push(EdPoint::from(
                ED25519_BASEPOINT_POINT * Scalar::from(k as u64 + 3) + t,
            ));
        }
        points.push(b);
        let batch = EdPoint::compress_batch(&points);
        for (p, e) in points.iter().zip(&batch) {
            assert_eq!(p.compress(), *e);
            assert_eq!(p.to_edwards().compress(), *e);
            assert_eq!(EdPoint::from(p.to_edwards()), *p);
        }
        assert_ne!(points[0], points[2]);
        assert_eq!(
            format!("{:?}", EdPoint::generator()),
            format!("EdPoint({BY})")
        );
    }

    #[test]
    fn field_reduction_is_canonical_near_p() {
        // p − 1 is canonical; 4p − 1 − (p − 1) reduces to 0 through `sub`'s bias.
        let mut pm1 = [0xff; 32];
        pm1[0] = 0xec;
        pm1[31] = 0x7f;
        let a = fe::Fe::from_canonical_bytes(&pm1).unwrap();
        assert!(a.sub(&a).is_zero());
        assert!(a.add(&fe::Fe::ONE).is_zero());
        assert_eq!(a.mul(&a).to_bytes(), fe::Fe::ONE.to_bytes());
        assert_eq!(fe::Fe::ZERO.sub(&fe::Fe::ONE).to_bytes(), pm1);
    }
}
