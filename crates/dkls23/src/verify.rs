//! Batched ECDSA verification on secp256k1 over prehashed messages.
//!
//! The check is the one of SEC 1 v2 §4.1.4: with `z` the 32-byte prehash read as an integer
//! and reduced modulo `n`, compute `u₁ = z·s⁻¹`, `u₂ = r·s⁻¹`, `R = u₁·G + u₂·Q`, and accept
//! exactly when `R` is not the point at infinity and `x(R) mod n = r`. On top of SEC 1 it
//! applies libsecp256k1's acceptance rules: `r` and `s` are 32-byte big-endian integers in
//! `[1, n−1]`, `s` must be low (`s ≤ n/2`; the high-S twin of a valid signature is rejected),
//! and the prehash must be exactly 32 bytes.
//!
//! Every `u₁·G + u₂·Q` of a batch goes to the accelerator port in one
//! [`CurveGroup::lincomb_vartime`] call. All inputs are public, so variable-time arithmetic is
//! used throughout.

use accel_api::{AccelError, Accelerator, CurveGroup, LincombJob, Secp256k1};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::ops::{Invert, Reduce};
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::FromEncodedPoint;
use k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar, U256};

type Job = LincombJob<Scalar, ProjectivePoint>;

/// Decodes a public key: any SEC1 encoding `k256` accepts, except the point at infinity.
fn parse_public_key(bytes: &[u8]) -> Option<ProjectivePoint> {
    let encoded = EncodedPoint::from_bytes(bytes).ok()?;
    let point: AffinePoint = Option::from(AffinePoint::from_encoded_point(&encoded))?;
    let point = ProjectivePoint::from(point);
    (!Secp256k1::is_identity(&point)).then_some(point)
}

/// Decodes a 32-byte big-endian integer in `[1, n−1]`.
fn parse_nonzero_scalar(bytes: &[u8]) -> Option<Scalar> {
    let repr: [u8; 32] = bytes.try_into().ok()?;
    let s: Scalar = Option::from(Scalar::from_repr(repr.into()))?;
    (!bool::from(s.is_zero())).then_some(s)
}

/// Checks the encodings and builds `u₁·G + u₂·Q`; `None` for an item that is invalid before
/// any curve arithmetic. Returns `r` with the job.
fn prepare(public_key: &[u8], prehash: &[u8], signature: &[u8]) -> Option<(Scalar, Job)> {
    let prehash: &[u8; 32] = prehash.try_into().ok()?;
    if signature.len() != 64 {
        return None;
    }
    let q = parse_public_key(public_key)?;
    let (r_bytes, s_bytes) = signature.split_at(32);
    let r = parse_nonzero_scalar(r_bytes)?;
    let s = parse_nonzero_scalar(s_bytes)?;
    if bool::from(s.is_high()) {
        return None;
    }
    let z = <Scalar as Reduce<U256>>::reduce_bytes(prehash.into());
    let s_inv: Scalar = Option::from(s.invert_vartime())?;
    Some((
        r,
        LincombJob::new(vec![
            (z * s_inv, ProjectivePoint::GENERATOR),
            (r * s_inv, q),
        ]),
    ))
}

/// Verifies ECDSA signatures over prehashed messages on secp256k1, one verdict per item.
///
/// Each item is `(public_key, prehash, signature)`: the public key in any SEC1 encoding `k256`
/// parses (33-byte compressed, 65-byte uncompressed; the point at infinity is rejected), the
/// 32-byte message prehash, and the 64-byte `r ‖ s` signature. The acceptance rules are
/// libsecp256k1's (see the [module documentation](self)): in particular a high-S signature is
/// `false`. Malformed items are `false`, not errors.
///
/// All linear combinations of the batch go through one accelerator call; no call is made when
/// no item gets that far.
///
/// # Errors
///
/// The accelerator's error if the port call fails, or [`AccelError::Device`] if it returns a
/// different number of points than it was given jobs.
pub fn verify_prehash_batch(
    accel: &dyn Accelerator,
    items: &[(&[u8], &[u8], &[u8])],
) -> Result<Vec<bool>, AccelError> {
    let mut rs = Vec::with_capacity(items.len());
    let mut jobs = Vec::with_capacity(items.len());
    let well_formed: Vec<bool> = items
        .iter()
        .map(|(k, m, s)| {
            prepare(k, m, s)
                .map(|(r, job)| {
                    rs.push(r);
                    jobs.push(job);
                })
                .is_some()
        })
        .collect();
    if jobs.is_empty() {
        return Ok(vec![false; items.len()]);
    }
    let points = Secp256k1::lincomb_vartime(accel, &jobs)?;
    if points.len() != jobs.len() {
        return Err(AccelError::Device {
            backend: accel.capabilities().backend,
            reason: format!(
                "secp256k1_lincomb_vartime returned {} points for {} jobs",
                points.len(),
                jobs.len()
            ),
        });
    }
    let affine = accel_api::secp256k1_normalize_batch_serial(&points);
    let mut checks = points.iter().zip(&affine).zip(&rs).map(|((p, a), r)| {
        !Secp256k1::is_identity(p) && <Scalar as Reduce<U256>>::reduce_bytes(&a.x()) == *r
    });
    Ok(well_formed
        .iter()
        .map(|w| *w && checks.next().unwrap_or(false))
        .collect())
}
