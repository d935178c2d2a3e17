//! Per-op cost models, measured at start-up, that let `auto` route each batch.

use std::time::{Duration, Instant};

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::{ProjectivePoint, Scalar as SecpScalar};

use crate::{AccelError, Accelerator, Curve, EdPoint, LincombJob, Op, SchnorrItem};

/// Cost of one (curve, op) on one backend: `fixed_ns + per_item_ns × items`.
///
/// Items are scalars for `mul_base`, **terms** for `lincomb_vartime`, equations for
/// `verify_batch_vartime`, points for `normalize_batch` and encodings for `decompress_batch`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OpCost {
    /// The curve.
    pub curve: Curve,
    /// The operation.
    pub op: Op,
    /// Cost of a call regardless of its size (dispatch, transfers, thread wake-ups), in ns.
    pub fixed_ns: f64,
    /// Marginal cost of one more item, in ns.
    pub per_item_ns: f64,
}

/// A backend's measured costs.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct CostModel {
    /// One entry per (curve, op) the backend supports.
    pub costs: Vec<OpCost>,
}

impl CostModel {
    /// Estimated time for a batch of `items`, or `None` when the op was not measured.
    pub fn estimate_ns(&self, curve: Curve, op: Op, items: usize) -> Option<f64> {
        self.costs
            .iter()
            .find(|c| c.curve == curve && c.op == op)
            .map(|c| c.fixed_ns + c.per_item_ns * items as f64)
    }

    /// The entry for (curve, op), if measured.
    pub fn get(&self, curve: Curve, op: Op) -> Option<&OpCost> {
        self.costs.iter().find(|c| c.curve == curve && c.op == op)
    }
}

/// Measures `acc` on every (curve, op) it supports by timing a batch of `small` and a batch of
/// `large` items (best of `reps` runs each) and fitting `fixed + per_item × n`.
///
/// Inputs are fixed public values; the measurement runs in a few tens of milliseconds on the
/// CPU backends for the default sizes used by the service (1 and 64, 3 repetitions).
pub fn calibrate(
    acc: &dyn Accelerator,
    small: usize,
    large: usize,
    reps: usize,
) -> Result<CostModel, AccelError> {
    let caps = acc.capabilities();
    let mut costs = Vec::new();
    for (curve, op) in caps.ops.iter().copied() {
        let t_small = best_of(reps, || run_op(acc, curve, op, small))?;
        let t_large = best_of(reps, || run_op(acc, curve, op, large))?;
        let (n_small, n_large) = (items_of(op, small) as f64, items_of(op, large) as f64);
        let per_item = ((t_large - t_small) / (n_large - n_small)).max(0.0);
        let fixed = (t_small - per_item * n_small).max(0.0);
        costs.push(OpCost {
            curve,
            op,
            fixed_ns: fixed,
            per_item_ns: per_item,
        });
    }
    Ok(CostModel { costs })
}

/// Lincomb calibration jobs have two terms each.
fn items_of(op: Op, n: usize) -> usize {
    match op {
        Op::LincombVartime => 2 * n,
        _ => n,
    }
}

fn best_of(
    reps: usize,
    mut f: impl FnMut() -> Result<Duration, AccelError>,
) -> Result<f64, AccelError> {
    let mut best = f64::INFINITY;
    for _ in 0..reps.max(1) {
        best = best.min(f()?.as_nanos() as f64);
    }
    Ok(best)
}

/// Calibration scalars are multiples of this constant's inverse (full width, distinct).
const CALIBRATION_SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// Runs one batch of `n` public calibration items and returns the elapsed time.
pub(crate) fn run_op(
    acc: &dyn Accelerator,
    curve: Curve,
    op: Op,
    n: usize,
) -> Result<Duration, AccelError> {
    match curve {
        Curve::Secp256k1 => {
            // Full-width scalars, as real signatures carry (the CPU backends' variable-time
            // lincomb is much cheaper on short ones): multiples of the inverse of a constant.
            let spread = Option::<SecpScalar>::from(SecpScalar::from(CALIBRATION_SEED).invert())
                .unwrap_or(SecpScalar::ONE);
            let scalars: Vec<SecpScalar> = (1..=n as u64)
                .map(|i| SecpScalar::from(i) * spread)
                .collect();
            let g = ProjectivePoint::GENERATOR;
            let h = g.double();
            let start = Instant::now();
            match op {
                Op::MulBase => drop(acc.secp256k1_mul_base(&scalars)?),
                Op::LincombVartime => {
                    let jobs: Vec<_> = scalars
                        .iter()
                        .map(|s| LincombJob::new(vec![(*s, g), (*s, h)]))
                        .collect();
                    let start = Instant::now();
                    drop(acc.secp256k1_lincomb_vartime(&jobs)?);
                    return Ok(start.elapsed());
                }
                Op::VerifyBatchVartime => {
                    let items: Vec<_> = scalars
                        .iter()
                        .map(|s| SchnorrItem {
                            r: g,
                            s: *s,
                            c: *s,
                            public_key: h,
                        })
                        .collect();
                    let start = Instant::now();
                    drop(acc.secp256k1_verify_batch_vartime(&items)?);
                    return Ok(start.elapsed());
                }
                Op::NormalizeBatch => {
                    let pts = vec![h + g; n];
                    let start = Instant::now();
                    drop(acc.secp256k1_normalize_batch(&pts)?);
                    return Ok(start.elapsed());
                }
                Op::DecompressBatch => {
                    use k256::elliptic_curve::sec1::ToEncodedPoint;
                    let encoded = (h + g).to_affine().to_encoded_point(true);
                    let mut enc = [0u8; 33];
                    enc.copy_from_slice(encoded.as_bytes());
                    let encs = vec![enc; n];
                    let start = Instant::now();
                    drop(acc.secp256k1_decompress_batch(&encs)?);
                    return Ok(start.elapsed());
                }
            }
            Ok(start.elapsed())
        }
        Curve::Ed25519 => {
            let spread = EdScalar::from(CALIBRATION_SEED).invert();
            let scalars: Vec<EdScalar> =
                (1..=n as u64).map(|i| EdScalar::from(i) * spread).collect();
            let g = EdPoint::from(ED25519_BASEPOINT_POINT);
            let h = EdPoint::from(ED25519_BASEPOINT_POINT + ED25519_BASEPOINT_POINT);
            let start = Instant::now();
            match op {
                Op::MulBase => drop(acc.ed25519_mul_base(&scalars)?),
                Op::LincombVartime => {
                    let jobs: Vec<_> = scalars
                        .iter()
                        .map(|s| LincombJob::new(vec![(*s, g), (*s, h)]))
                        .collect();
                    let start = Instant::now();
                    drop(acc.ed25519_lincomb_vartime(&jobs)?);
                    return Ok(start.elapsed());
                }
                Op::VerifyBatchVartime => {
                    let items: Vec<_> = scalars
                        .iter()
                        .map(|s| SchnorrItem {
                            r: g,
                            s: *s,
                            c: *s,
                            public_key: h,
                        })
                        .collect();
                    let start = Instant::now();
                    drop(acc.ed25519_verify_batch_vartime(&items)?);
                    return Ok(start.elapsed());
                }
                Op::NormalizeBatch => {
                    let pts = vec![h + g; n];
                    let start = Instant::now();
                    drop(acc.ed25519_compress_batch(&pts)?);
                    return Ok(start.elapsed());
                }
                Op::DecompressBatch => {
                    let encs = vec![(h + g).compress().to_bytes(); n];
                    let start = Instant::now();
                    drop(acc.ed25519_decompress_batch(&encs)?);
                    return Ok(start.elapsed());
                }
            }
            Ok(start.elapsed())
        }
    }
}
