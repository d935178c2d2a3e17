#![doc = include_str!("../README.md")]
//!
//! Constant time: `mul_base` uses k256's `mul_by_generator` and dalek's `EdwardsPoint::mul_base`,
//! both constant-time fixed-base table multiplications. Everything else handles public data.
#![forbid(unsafe_code)]

use std::sync::LazyLock;

use accel_api::{AccelError, Accelerator, BackendId, Capabilities, EdPoint, LincombJob};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{EdwardsPoint, VartimeEdwardsPrecomputation};
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::{Identity, VartimeMultiscalarMul, VartimePrecomputedMultiscalarMul};
use k256::elliptic_curve::ops::MulByGenerator;
use k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use rayon::prelude::*;

mod secp_vartime;

/// Batches at least this large are spread over rayon's pool (when parallelism is on).
const PAR_MIN_ITEMS: usize = 32;

/// Precomputed odd multiples of the Ed25519 basepoint for variable-time Straus.
static ED_BASE_PRECOMP: LazyLock<VartimeEdwardsPrecomputation> =
    LazyLock::new(|| VartimeEdwardsPrecomputation::new([ED25519_BASEPOINT_POINT]));

/// The reference backend.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    parallel: bool,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// A backend that spreads large batches over rayon's global thread pool.
    pub fn new() -> Self {
        Self { parallel: true }
    }

    /// A backend that does all work on the calling thread (for per-thread CPU accounting and
    /// single-thread benchmarks).
    pub fn single_threaded() -> Self {
        Self { parallel: false }
    }

    fn map<T: Sync, U: Send>(
        &self,
        items: &[T],
        weight: usize,
        f: impl Fn(&T) -> U + Sync + Send,
    ) -> Vec<U> {
        if self.parallel
            && items.len() * weight >= PAR_MIN_ITEMS
            && rayon::current_num_threads() > 1
        {
            items.par_iter().with_min_len(4).map(f).collect()
        } else {
            items.iter().map(f).collect()
        }
    }
}

/// A secp256k1 job split into its generator scalar, its terms with scalar one (plain additions)
/// and its other non-trivial terms.
struct SecpPrepared {
    base: SecpScalar,
    plain: ProjectivePoint,
    rest: Vec<(SecpScalar, ProjectivePoint)>,
}

fn secp_prepare(job: &LincombJob<SecpScalar, ProjectivePoint>) -> SecpPrepared {
    let mut out = SecpPrepared {
        base: SecpScalar::ZERO,
        plain: ProjectivePoint::IDENTITY,
        rest: Vec::with_capacity(job.terms.len()),
    };
    for (s, p) in &job.terms {
        if *p == ProjectivePoint::GENERATOR {
            out.base += s;
        } else if *s == SecpScalar::ONE {
            out.plain += p;
        } else if *p != ProjectivePoint::IDENTITY && *s != SecpScalar::ZERO {
            out.rest.push((*s, *p));
        }
    }
    out
}

fn secp_lincomb_chunk(jobs: &[SecpPrepared]) -> Vec<ProjectivePoint> {
    let sums = secp_vartime::lincomb_batch(jobs.iter().map(|j| (j.base, j.rest.as_slice())));
    sums.into_iter()
        .zip(jobs)
        .map(|(s, j)| s + j.plain)
        .collect()
}

fn ed_lincomb_one(job: &LincombJob<EdScalar, EdPoint>) -> EdPoint {
    let mut base = EdScalar::ZERO;
    let mut scalars = Vec::with_capacity(job.terms.len());
    let mut points = Vec::with_capacity(job.terms.len());
    let mut plain = EdwardsPoint::identity();
    for (s, p) in &job.terms {
        // Affine points (another backend's results) are decompressed here.
        let p = &p.to_edwards();
        if *p == ED25519_BASEPOINT_POINT {
            base += s;
        } else if *s == EdScalar::ONE {
            plain += p;
        } else {
            scalars.push(*s);
            points.push(*p);
        }
    }
    EdPoint::from(
        plain
            + if base == EdScalar::ZERO {
                if points.is_empty() {
                    EdwardsPoint::identity()
                } else {
                    EdwardsPoint::vartime_multiscalar_mul(&scalars, &points)
                }
            } else {
                ED_BASE_PRECOMP.vartime_mixed_multiscalar_mul([base], &scalars, &points)
            },
    )
}

impl Accelerator for CpuBackend {
    fn capabilities(&self) -> Capabilities {
        let threads = if self.parallel {
            rayon::current_num_threads()
        } else {
            1
        };
        // The architecture and the threading mode: the all-cores backend `tessera bench-accel`
        // measures is another device than the service's single-threaded one.
        let mode = if self.parallel {
            format!("rayon-{threads}")
        } else {
            "serial".to_owned()
        };
        Capabilities {
            backend: BackendId::Cpu,
            device_id: format!("cpu:{}:{mode}", std::env::consts::ARCH),
            device: format!("k256 + curve25519-dalek on {threads} thread(s)"),
            ops: Capabilities::all_ops(),
            secret_ops: true,
            lanes: 1,
        }
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        Ok(self.map(scalars, 1, ProjectivePoint::mul_by_generator))
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        Ok(self.map(scalars, 1, |s| EdPoint::from(EdwardsPoint::mul_base(s))))
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        let prepared: Vec<_> = jobs.iter().map(secp_prepare).collect();
        let terms: usize = prepared.iter().map(|j| j.rest.len() + 1).sum();
        let threads = rayon::current_num_threads();
        if self.parallel && terms >= PAR_MIN_ITEMS && threads > 1 && prepared.len() > 1 {
            let chunk = prepared.len().div_ceil(threads * 2);
            Ok(prepared
                .par_chunks(chunk)
                .flat_map_iter(secp_lincomb_chunk)
                .collect())
        } else {
            Ok(secp_lincomb_chunk(&prepared))
        }
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        let weight = jobs.first().map_or(1, |j| j.terms.len().max(1));
        Ok(self.map(jobs, weight, ed_lincomb_one))
    }

    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        Ok(accel_api::secp256k1_normalize_batch_serial(points))
    }
}
