//! `backend = "auto"`: route each batch to the backend whose cost model is cheapest for it,
//! with a circuit breaker per backend and fallback to the reference backend.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};

use crate::{
    AccelError, Accelerator, BackendId, Capabilities, CostModel, Curve, EdPoint, LincombJob, Op,
    SchnorrItem, Verdict,
};

/// State of a backend's circuit breaker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go to the backend.
    Closed,
    /// The backend failed recently; calls go to the reference backend until the cool-down ends.
    Open,
    /// The cool-down ended; the next call is a probe whose success closes the breaker.
    HalfOpen,
}

impl BreakerState {
    /// Numeric value for a metrics gauge: 0 closed, 1 open, 2 half-open.
    pub fn as_gauge(self) -> i64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
        }
    }
}

/// How the router chooses among capable backends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The backend whose cost model is cheapest for the batch (`--backend auto`).
    Cheapest,
    /// The named backend whenever it can take the call (`--backend gpu` and `simd`); otherwise
    /// (e.g. secret ops on a GPU without `gpu_secret_ops`, or its breaker open) the cheapest
    /// other usable backend, as [`Policy::Cheapest`] would choose.
    Prefer(BackendId),
}

/// One backend the router may use.
#[derive(Debug)]
struct Member {
    acc: Arc<dyn Accelerator>,
    caps: Capabilities,
    model: CostModel,
    /// When the breaker opened; `None` while closed.
    opened_at: Mutex<Option<Instant>>,
}

/// Routes every call to a capable backend by [`Policy`]; a call that fails on any backend other
/// than the first (the reference, normally `cpu`) is re-run on the first and opens that
/// backend's circuit breaker, so a device error never fails the caller. After `cooldown` the
/// next call probes the backend again.
#[derive(Debug)]
pub struct AutoRouter {
    members: Vec<Member>,
    policy: Policy,
    cooldown: Duration,
    fallbacks: AtomicU64,
}

impl AutoRouter {
    /// A router over `members`; the first is the reference backend used for fallback and must
    /// support every op on both curves.
    pub fn new(members: Vec<(Arc<dyn Accelerator>, CostModel)>) -> Result<Self, AccelError> {
        let members: Vec<Member> = members
            .into_iter()
            .map(|(acc, model)| Member {
                caps: acc.capabilities(),
                acc,
                model,
                opened_at: Mutex::new(None),
            })
            .collect();
        let first = members.first().ok_or(AccelError::NoBackend {
            op: Op::MulBase,
            curve: Curve::Secp256k1,
        })?;
        for (curve, op) in Capabilities::all_ops() {
            if !first.caps.supports(curve, op) || (op.is_secret() && !first.caps.secret_ops) {
                return Err(AccelError::NoBackend { op, curve });
            }
        }
        Ok(Self {
            members,
            policy: Policy::Cheapest,
            cooldown: Duration::from_secs(5),
            fallbacks: AtomicU64::new(0),
        })
    }

    /// Sets the routing policy.
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// Sets how long an open breaker keeps a backend out before a probe (default 5 s).
    pub fn with_cooldown(mut self, cooldown: Duration) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// Each backend's id and breaker state, in member order (the reference first).
    pub fn breaker_states(&self) -> Vec<(BackendId, BreakerState)> {
        self.members
            .iter()
            .map(|m| (m.caps.backend, self.state(m)))
            .collect()
    }

    /// Each backend's id and measured cost model, in member order.
    pub fn cost_models(&self) -> Vec<(BackendId, &CostModel)> {
        self.members
            .iter()
            .map(|m| (m.caps.backend, &m.model))
            .collect()
    }

    fn state(&self, m: &Member) -> BreakerState {
        match *m.opened_at.lock().unwrap_or_else(|e| e.into_inner()) {
            None => BreakerState::Closed,
            Some(t) if t.elapsed() < self.cooldown => BreakerState::Open,
            Some(_) => BreakerState::HalfOpen,
        }
    }

    fn set_open(&self, i: usize, open: bool) {
        let mut slot = self.members[i]
            .opened_at
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        *slot = open.then(Instant::now);
    }

    /// The backend `auto` would pick for a batch of `items` (terms for lincomb).
    pub fn choose(&self, curve: Curve, op: Op, items: usize) -> BackendId {
        self.members[self.pick(curve, op, items)].caps.backend
    }

    /// How many calls were re-run on the reference backend after an error.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn pick(&self, curve: Curve, op: Op, items: usize) -> usize {
        let usable = |m: &Member| {
            m.caps.supports(curve, op)
                && (!op.is_secret() || m.caps.secret_ops)
                && self.state(m) != BreakerState::Open
        };
        if let Policy::Prefer(id) = self.policy
            && let Some(i) = self
                .members
                .iter()
                .position(|m| m.caps.backend == id && usable(m))
        {
            return i;
        }
        let mut best = (0, f64::INFINITY);
        for (i, m) in self.members.iter().enumerate() {
            if !usable(m) {
                continue;
            }
            let cost = m
                .model
                .estimate_ns(curve, op, items)
                .unwrap_or(f64::INFINITY);
            if cost < best.1 {
                best = (i, cost);
            }
        }
        best.0
    }

    fn run<T>(
        &self,
        curve: Curve,
        op: Op,
        items: usize,
        f: impl Fn(&dyn Accelerator) -> Result<T, AccelError>,
    ) -> Result<T, AccelError> {
        let i = self.pick(curve, op, items);
        match f(self.members[i].acc.as_ref()) {
            Err(_) if i != 0 => {
                self.set_open(i, true);
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                f(self.members[0].acc.as_ref())
            }
            r => {
                if i != 0 && self.state(&self.members[i]) == BreakerState::HalfOpen {
                    self.set_open(i, false);
                }
                r
            }
        }
    }
}

fn terms<S, P>(jobs: &[LincombJob<S, P>]) -> usize {
    jobs.iter().map(|j| j.terms.len()).sum()
}

impl Accelerator for AutoRouter {
    fn capabilities(&self) -> Capabilities {
        let names: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.caps.backend.as_str())
            .collect();
        let ids: Vec<&str> = self
            .members
            .iter()
            .map(|m| m.caps.device_id.as_str())
            .collect();
        // `auto:[<member ids>]`, or `<preferred>:preferred:[<member ids>]`.
        let (backend, policy) = match self.policy {
            Policy::Cheapest => (BackendId::Router, "auto".to_owned()),
            Policy::Prefer(id) => (id, format!("{id}:preferred")),
        };
        let device = match self.policy {
            Policy::Cheapest => format!("Cheapest over [{}]", names.join(", ")),
            Policy::Prefer(id) => format!("Prefer({id}) over [{}]", names.join(", ")),
        };
        Capabilities {
            backend,
            device_id: format!("{policy}:[{}]", ids.join(",")),
            device,
            ops: Capabilities::all_ops(),
            secret_ops: true,
            lanes: self.members.iter().map(|m| m.caps.lanes).max().unwrap_or(1),
        }
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.run(Curve::Secp256k1, Op::MulBase, scalars.len(), |a| {
            a.secp256k1_mul_base(scalars)
        })
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        self.run(Curve::Ed25519, Op::MulBase, scalars.len(), |a| {
            a.ed25519_mul_base(scalars)
        })
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.run(Curve::Secp256k1, Op::LincombVartime, terms(jobs), |a| {
            a.secp256k1_lincomb_vartime(jobs)
        })
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        self.run(Curve::Ed25519, Op::LincombVartime, terms(jobs), |a| {
            a.ed25519_lincomb_vartime(jobs)
        })
    }

    fn secp256k1_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
    ) -> Result<Verdict, AccelError> {
        self.run(Curve::Secp256k1, Op::VerifyBatchVartime, items.len(), |a| {
            a.secp256k1_verify_batch_vartime(items)
        })
    }

    fn ed25519_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<EdScalar, EdPoint>],
    ) -> Result<Verdict, AccelError> {
        self.run(Curve::Ed25519, Op::VerifyBatchVartime, items.len(), |a| {
            a.ed25519_verify_batch_vartime(items)
        })
    }

    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        self.run(Curve::Secp256k1, Op::NormalizeBatch, points.len(), |a| {
            a.secp256k1_normalize_batch(points)
        })
    }

    fn ed25519_compress_batch(
        &self,
        points: &[EdPoint],
    ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        self.run(Curve::Ed25519, Op::NormalizeBatch, points.len(), |a| {
            a.ed25519_compress_batch(points)
        })
    }

    fn secp256k1_decompress_batch(
        &self,
        encodings: &[[u8; 33]],
    ) -> Result<Vec<Option<ProjectivePoint>>, AccelError> {
        self.run(
            Curve::Secp256k1,
            Op::DecompressBatch,
            encodings.len(),
            |a| a.secp256k1_decompress_batch(encodings),
        )
    }

    fn ed25519_decompress_batch(
        &self,
        encodings: &[[u8; 32]],
    ) -> Result<Vec<Option<EdPoint>>, AccelError> {
        self.run(Curve::Ed25519, Op::DecompressBatch, encodings.len(), |a| {
            a.ed25519_decompress_batch(encodings)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::BreakerState;

    #[test]
    fn breaker_gauge_values_are_the_documented_ones() {
        assert_eq!(BreakerState::Closed.as_gauge(), 0);
        assert_eq!(BreakerState::Open.as_gauge(), 1);
        assert_eq!(BreakerState::HalfOpen.as_gauge(), 2);
    }
}
