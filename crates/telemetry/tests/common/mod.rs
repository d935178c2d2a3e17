//! Helpers shared by the integration tests: reading samples back out of an exposition, and a
//! second backend for routers that fails on demand.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use accel_api::EdPoint;
use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use accel_api::{
    AccelError, Accelerator, AutoRouter, BackendId, Capabilities, CostModel, LincombJob, OpCost,
    Policy,
};
use backend_cpu::CpuBackend;

/// Sums every sample of `name` whose labels include all of `labels` (name, value).
pub fn sum_samples(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, set) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.strip_suffix('}')?),
                None => (series, ""),
            };
            let has = |(k, v): &(&str, &str)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\""));
            if metric != name || !labels.iter().all(has) {
                return None;
            }
            value.parse::<f64>().ok()
        })
        .sum()
}

/// The id the `dev` test backend poses as (any id but the reference's `cpu` would do).
pub const DEV: BackendId = BackendId::Gpu;

/// The CPU backend posing as [`DEV`], failing its next `fail` calls with a device error.
#[derive(Debug)]
pub struct Dev {
    inner: CpuBackend,
    fail: AtomicUsize,
}

impl Dev {
    /// A `dev` backend that fails its next `fail` calls.
    pub fn failing(fail: usize) -> Arc<Self> {
        Arc::new(Self {
            inner: CpuBackend::single_threaded(),
            fail: AtomicUsize::new(fail),
        })
    }

    fn check(&self) -> Result<(), AccelError> {
        let left = self.fail.load(Ordering::SeqCst);
        if left == 0 {
            return Ok(());
        }
        self.fail.store(left - 1, Ordering::SeqCst);
        Err(AccelError::Device {
            backend: DEV,
            reason: "injected failure".into(),
        })
    }
}

impl Accelerator for Dev {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: DEV,
            device_id: "gpu:test-double".into(),
            device: "test double".into(),
            ops: Capabilities::all_ops(),
            secret_ops: true,
            lanes: 1,
        }
    }
    fn secp256k1_mul_base(&self, s: &[SecpScalar]) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.check()?;
        self.inner.secp256k1_mul_base(s)
    }
    fn ed25519_mul_base(&self, s: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        self.check()?;
        self.inner.ed25519_mul_base(s)
    }
    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.check()?;
        self.inner.secp256k1_lincomb_vartime(jobs)
    }
    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        self.check()?;
        self.inner.ed25519_lincomb_vartime(jobs)
    }
    fn secp256k1_normalize_batch(
        &self,
        p: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        self.check()?;
        self.inner.secp256k1_normalize_batch(p)
    }
    fn ed25519_compress_batch(&self, p: &[EdPoint]) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        self.check()?;
        self.inner.ed25519_compress_batch(p)
    }
}

/// A cost model where every op costs `fixed_ns + per_item_ns × items`.
pub fn flat(fixed_ns: f64, per_item_ns: f64) -> CostModel {
    CostModel {
        costs: Capabilities::all_ops()
            .into_iter()
            .map(|(curve, op)| OpCost {
                curve,
                op,
                fixed_ns,
                per_item_ns,
            })
            .collect(),
    }
}

/// A router over the CPU backend (the reference, costing `cpu`) and `dev` (costing `dev_cost`).
pub fn router(
    cpu: CostModel,
    dev: Arc<Dev>,
    dev_cost: CostModel,
    policy: Policy,
) -> Arc<AutoRouter> {
    let members: Vec<(Arc<dyn Accelerator>, CostModel)> = vec![
        (Arc::new(CpuBackend::single_threaded()), cpu),
        (dev, dev_cost),
    ];
    Arc::new(AutoRouter::new(members).unwrap().with_policy(policy))
}
