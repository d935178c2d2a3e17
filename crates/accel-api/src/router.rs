//! `backend = "auto"`: route each batch to the backend whose cost model is cheapest for it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};

use crate::{
    AccelError, Accelerator, Capabilities, CostModel, Curve, LincombJob, Op, SchnorrItem, Verdict,
};

/// One backend the router may use.
#[derive(Debug)]
struct Member {
    acc: Arc<dyn Accelerator>,
    caps: Capabilities,
    model: CostModel,
}

/// Routes every call to the cheapest capable backend by its measured [`CostModel`]; a call
/// that fails on any backend other than the first (the reference, normally `cpu`) is re-run on
/// the first, so a device error never fails the caller.
#[derive(Debug)]
pub struct AutoRouter {
    members: Vec<Member>,
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
            fallbacks: AtomicU64::new(0),
        })
    }

    /// The backend `auto` would pick for a batch of `items` (terms for lincomb).
    pub fn choose(&self, curve: Curve, op: Op, items: usize) -> &'static str {
        self.members[self.pick(curve, op, items)].caps.backend
    }

    /// How many calls were re-run on the reference backend after an error.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    fn pick(&self, curve: Curve, op: Op, items: usize) -> usize {
        let mut best = (0, f64::INFINITY);
        for (i, m) in self.members.iter().enumerate() {
            if !m.caps.supports(curve, op) || (op.is_secret() && !m.caps.secret_ops) {
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
                self.fallbacks.fetch_add(1, Ordering::Relaxed);
                f(self.members[0].acc.as_ref())
            }
            r => r,
        }
    }
}

fn terms<S, P>(jobs: &[LincombJob<S, P>]) -> usize {
    jobs.iter().map(|j| j.terms.len()).sum()
}

impl Accelerator for AutoRouter {
    fn capabilities(&self) -> Capabilities {
        let names: Vec<&str> = self.members.iter().map(|m| m.caps.backend).collect();
        Capabilities {
            backend: "auto",
            device: format!("auto over [{}]", names.join(", ")),
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

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdwardsPoint>, AccelError> {
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
        jobs: &[LincombJob<EdScalar, EdwardsPoint>],
    ) -> Result<Vec<EdwardsPoint>, AccelError> {
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
        items: &[SchnorrItem<EdScalar, EdwardsPoint>],
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
        points: &[EdwardsPoint],
    ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        self.run(Curve::Ed25519, Op::NormalizeBatch, points.len(), |a| {
            a.ed25519_compress_batch(points)
        })
    }
}
