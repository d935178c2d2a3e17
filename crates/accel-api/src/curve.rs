//! [`CurveGroup`]: one trait over both curves, so protocol code is written once.

use core::fmt::Debug;
use core::ops::{Add, Mul, Neg, Sub};

use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar as SecpScalar};
use rand_core::CryptoRngCore;

use crate::{AccelError, Accelerator, Curve, EdPoint, LincombJob, SchnorrItem, Verdict};

/// A prime-order group (or the prime-order subgroup of edwards25519) as seen through the port.
pub trait CurveGroup: Copy + Debug + Send + Sync + 'static {
    /// Which curve.
    const CURVE: Curve;
    /// Scalars modulo the group order.
    type Scalar: Copy
        + Debug
        + PartialEq
        + Send
        + Sync
        + Add<Output = Self::Scalar>
        + Sub<Output = Self::Scalar>
        + Mul<Output = Self::Scalar>
        + Neg<Output = Self::Scalar>
        + zeroize::Zeroize
        + subtle::ConditionallySelectable
        + subtle::ConstantTimeEq;
    /// Group elements.
    type Point: Copy
        + Debug
        + PartialEq
        + Send
        + Sync
        + Add<Output = Self::Point>
        + Sub<Output = Self::Point>
        + Neg<Output = Self::Point>;

    /// The standard generator.
    fn generator() -> Self::Point;
    /// The identity element.
    fn identity() -> Self::Point;
    /// Whether `p` is the identity.
    fn is_identity(p: &Self::Point) -> bool;
    /// The scalar 0.
    fn scalar_zero() -> Self::Scalar;
    /// The scalar 1.
    fn scalar_one() -> Self::Scalar;
    /// A small integer as a scalar.
    fn scalar_from_u64(v: u64) -> Self::Scalar;
    /// The multiplicative inverse (of a non-zero scalar; 0 maps to 0). Constant time.
    fn scalar_invert(s: &Self::Scalar) -> Self::Scalar;
    /// A uniformly random scalar.
    fn random_scalar(rng: &mut impl CryptoRngCore) -> Self::Scalar;
    /// A uniformly random non-zero scalar.
    fn random_nonzero_scalar(rng: &mut impl CryptoRngCore) -> Self::Scalar {
        loop {
            let s = Self::random_scalar(rng);
            if s != Self::scalar_zero() {
                return s;
            }
        }
    }
    /// Single-item variable-time scalar multiplication on public data (no port call; for
    /// off-hot-path work such as key tweaks).
    fn mul_vartime(p: &Self::Point, s: &Self::Scalar) -> Self::Point;

    /// Batched k·G through the port (secret scalars).
    fn mul_base(
        acc: &dyn Accelerator,
        scalars: &[Self::Scalar],
    ) -> Result<Vec<Self::Point>, AccelError>;
    /// Batched linear combinations through the port (public data).
    fn lincomb_vartime(
        acc: &dyn Accelerator,
        jobs: &[LincombJob<Self::Scalar, Self::Point>],
    ) -> Result<Vec<Self::Point>, AccelError>;
    /// Batched Schnorr-equation verification through the port (public data).
    fn verify_batch_vartime(
        acc: &dyn Accelerator,
        items: &[SchnorrItem<Self::Scalar, Self::Point>],
    ) -> Result<Verdict, AccelError>;
}

/// secp256k1 with `k256` types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Secp256k1;

/// edwards25519 with `curve25519-dalek` scalars and the port's [`EdPoint`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ed25519;

impl CurveGroup for Secp256k1 {
    const CURVE: Curve = Curve::Secp256k1;
    type Scalar = SecpScalar;
    type Point = ProjectivePoint;

    fn generator() -> ProjectivePoint {
        ProjectivePoint::GENERATOR
    }
    fn identity() -> ProjectivePoint {
        ProjectivePoint::IDENTITY
    }
    fn is_identity(p: &ProjectivePoint) -> bool {
        bool::from(k256::elliptic_curve::group::Group::is_identity(p))
    }
    fn scalar_zero() -> SecpScalar {
        SecpScalar::ZERO
    }
    fn scalar_one() -> SecpScalar {
        SecpScalar::ONE
    }
    fn scalar_from_u64(v: u64) -> SecpScalar {
        SecpScalar::from(v)
    }
    fn scalar_invert(s: &SecpScalar) -> SecpScalar {
        Option::from(s.invert()).unwrap_or(SecpScalar::ZERO)
    }
    fn random_scalar(rng: &mut impl CryptoRngCore) -> SecpScalar {
        SecpScalar::random(rng)
    }
    fn mul_vartime(p: &ProjectivePoint, s: &SecpScalar) -> ProjectivePoint {
        *p * s
    }
    fn mul_base(
        acc: &dyn Accelerator,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        acc.secp256k1_mul_base(scalars)
    }
    fn lincomb_vartime(
        acc: &dyn Accelerator,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        acc.secp256k1_lincomb_vartime(jobs)
    }
    fn verify_batch_vartime(
        acc: &dyn Accelerator,
        items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
    ) -> Result<Verdict, AccelError> {
        acc.secp256k1_verify_batch_vartime(items)
    }
}

impl CurveGroup for Ed25519 {
    const CURVE: Curve = Curve::Ed25519;
    type Scalar = EdScalar;
    type Point = EdPoint;

    fn generator() -> EdPoint {
        EdPoint::generator()
    }
    fn identity() -> EdPoint {
        EdPoint::identity()
    }
    fn is_identity(p: &EdPoint) -> bool {
        p.is_identity()
    }
    fn scalar_zero() -> EdScalar {
        EdScalar::ZERO
    }
    fn scalar_one() -> EdScalar {
        EdScalar::ONE
    }
    fn scalar_from_u64(v: u64) -> EdScalar {
        EdScalar::from(v)
    }
    fn scalar_invert(s: &EdScalar) -> EdScalar {
        // Scalar::invert maps 0 to 0 (it computes s^(l-2)).
        s.invert()
    }
    fn random_scalar(rng: &mut impl CryptoRngCore) -> EdScalar {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let s = EdScalar::from_bytes_mod_order_wide(&wide);
        zeroize::Zeroize::zeroize(&mut wide);
        s
    }
    fn mul_vartime(p: &EdPoint, s: &EdScalar) -> EdPoint {
        EdPoint::from(p.to_edwards() * s)
    }
    fn mul_base(acc: &dyn Accelerator, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        acc.ed25519_mul_base(scalars)
    }
    fn lincomb_vartime(
        acc: &dyn Accelerator,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        acc.ed25519_lincomb_vartime(jobs)
    }
    fn verify_batch_vartime(
        acc: &dyn Accelerator,
        items: &[SchnorrItem<EdScalar, EdPoint>],
    ) -> Result<Verdict, AccelError> {
        acc.ed25519_verify_batch_vartime(items)
    }
}
