//! The metering decorator: times every accelerator call into
//! `tessera_accel_op_seconds{backend,curve,op}`, labelled with the backend that did the work.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use accel_api::{
    AccelError, Accelerator, AutoRouter, BackendId, BreakerState, Capabilities, Curve, EdPoint,
    LincombJob, Op, SchnorrItem, Verdict,
};

use crate::Metrics;

thread_local! {
    static LAST_BACKEND: Cell<Option<BackendId>> = const { Cell::new(None) };
}

/// The name ([`BackendId::as_str`]) of the backend that ran the most recent accelerator call
/// made through a [`Metered`] on the current thread (the same value as that call's `backend`
/// label), or `None` if this thread has made none. It stays set until the next metered call on
/// this thread, so read it right after the batch whose backend you want (e.g. for the
/// request-level `backend` label of `tessera_request_duration_seconds`); reading it costs one
/// thread-local load.
pub fn last_backend() -> Option<&'static str> {
    LAST_BACKEND.with(Cell::get).map(BackendId::as_str)
}

/// How a call's `backend` label is found.
#[derive(Debug)]
enum Label {
    /// A single backend: its `capabilities().backend`, read once.
    Fixed(BackendId),
    /// A router: its choice for the call, corrected after a fallback.
    Routed(Arc<AutoRouter>),
}

/// An [`Accelerator`] that forwards every call to the wrapped one and records its duration
/// (errors included) in `tessera_accel_op_seconds{backend,curve,op}`, then makes the backend
/// readable through [`last_backend`].
///
/// The `backend` label names the backend that did the work:
///
/// - around a single backend ([`Metered::new`]) it is that backend's `capabilities().backend`;
/// - around an [`AutoRouter`] ([`Metered::routed`]) it is [`AutoRouter::choose`] for the
///   call's curve, op and size (items; terms for lincomb), asked just before the call — the
///   same rule the router applies. If the chosen backend fails, the router re-runs the call on
///   its reference (first) backend, counts it in `tessera_accel_fallbacks_total` and opens the
///   chosen backend's breaker; a call during which the fallback count rose and after which the
///   chosen backend's breaker is open is labelled with the reference backend instead, and its
///   time includes the failed attempt. Concurrent calls can blur this at the edges (another
///   thread's fallback on the same backend, or a breaker changing state between the choice and
///   the call), so an exact fallback count is `tessera_accel_fallbacks_total`, not this label.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Accelerator>,
    label: Label,
    metrics: Arc<Metrics>,
}

impl Metered {
    /// Meters a single backend, labelled with its `capabilities().backend`. Wrap a router with
    /// [`Metered::routed`] instead, or every call is labelled with the router's own name.
    pub fn new(inner: Arc<dyn Accelerator>, metrics: Arc<Metrics>) -> Self {
        let backend = inner.capabilities().backend;
        Self {
            inner,
            label: Label::Fixed(backend),
            metrics,
        }
    }

    /// Meters a router, labelling each call with the member that ran it (see [`Metered`]).
    pub fn routed(router: Arc<AutoRouter>, metrics: Arc<Metrics>) -> Self {
        Self {
            inner: Arc::clone(&router) as Arc<dyn Accelerator>,
            label: Label::Routed(router),
            metrics,
        }
    }

    fn time<T>(
        &self,
        curve: Curve,
        op: Op,
        items: usize,
        call: impl FnOnce(&dyn Accelerator) -> Result<T, AccelError>,
    ) -> Result<T, AccelError> {
        let (chosen, fallbacks) = match &self.label {
            Label::Fixed(backend) => (*backend, 0),
            Label::Routed(router) => (router.choose(curve, op, items), router.fallbacks()),
        };
        let start = Instant::now();
        let out = call(self.inner.as_ref());
        let seconds = start.elapsed().as_secs_f64();
        let backend = match &self.label {
            Label::Routed(router) if router.fallbacks() != fallbacks => {
                after_fallback(router, chosen)
            }
            _ => chosen,
        };
        self.metrics.observe_accel_op(backend, curve, op, seconds);
        LAST_BACKEND.with(|last| last.set(Some(backend)));
        out
    }
}

/// The backend that ran a call for which `chosen` was picked and during which the router fell
/// back at least once: the reference backend if `chosen` is not it and its breaker is now open.
fn after_fallback(router: &AutoRouter, chosen: BackendId) -> BackendId {
    let states = router.breaker_states();
    let Some(&(reference, _)) = states.first() else {
        return chosen;
    };
    let failed = states
        .iter()
        .any(|&(id, state)| id == chosen && state == BreakerState::Open);
    if chosen != reference && failed {
        reference
    } else {
        chosen
    }
}

fn terms<S, P>(jobs: &[LincombJob<S, P>]) -> usize {
    jobs.iter().map(|j| j.terms.len()).sum()
}

impl Accelerator for Metered {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.time(Curve::Secp256k1, Op::MulBase, scalars.len(), |a| {
            a.secp256k1_mul_base(scalars)
        })
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        self.time(Curve::Ed25519, Op::MulBase, scalars.len(), |a| {
            a.ed25519_mul_base(scalars)
        })
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.time(Curve::Secp256k1, Op::LincombVartime, terms(jobs), |a| {
            a.secp256k1_lincomb_vartime(jobs)
        })
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        self.time(Curve::Ed25519, Op::LincombVartime, terms(jobs), |a| {
            a.ed25519_lincomb_vartime(jobs)
        })
    }

    fn secp256k1_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
    ) -> Result<Verdict, AccelError> {
        self.time(Curve::Secp256k1, Op::VerifyBatchVartime, items.len(), |a| {
            a.secp256k1_verify_batch_vartime(items)
        })
    }

    fn ed25519_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<EdScalar, EdPoint>],
    ) -> Result<Verdict, AccelError> {
        self.time(Curve::Ed25519, Op::VerifyBatchVartime, items.len(), |a| {
            a.ed25519_verify_batch_vartime(items)
        })
    }

    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        self.time(Curve::Secp256k1, Op::NormalizeBatch, points.len(), |a| {
            a.secp256k1_normalize_batch(points)
        })
    }

    fn ed25519_compress_batch(
        &self,
        points: &[EdPoint],
    ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        self.time(Curve::Ed25519, Op::NormalizeBatch, points.len(), |a| {
            a.ed25519_compress_batch(points)
        })
    }

    fn secp256k1_decompress_batch(
        &self,
        encodings: &[[u8; 33]],
    ) -> Result<Vec<Option<ProjectivePoint>>, AccelError> {
        self.time(
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
        self.time(Curve::Ed25519, Op::DecompressBatch, encodings.len(), |a| {
            a.ed25519_decompress_batch(encodings)
        })
    }
}
