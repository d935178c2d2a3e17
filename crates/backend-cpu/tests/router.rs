//! The auto router over real backends: cost-based choice, fallback on device errors, the
//! circuit breaker, and calibration.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use accel_api::EdPoint;
use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use accel_api::{
    AccelError, Accelerator, AutoRouter, BackendId, BackendKind, BreakerState, Capabilities,
    CostModel, Curve, LincombJob, Op, OpCost, Policy, calibrate, kit,
};
use backend_cpu::CpuBackend;

/// The id the flaky test backend reports.
const FLAKY: BackendId = BackendId::Simd;

/// A second backend that is the CPU backend posing as `simd` (any id but the reference's would
/// do), failing while `fail` > 0, with the capabilities it is given (it panics if secret scalars
/// reach it without `secret_ops`).
#[derive(Debug)]
struct Flaky {
    inner: CpuBackend,
    fail: AtomicUsize,
    calls: AtomicUsize,
    caps: Capabilities,
}

impl Flaky {
    fn new(fail: usize) -> Self {
        Self::with_caps(fail, |c| c)
    }
    fn with_caps(fail: usize, edit: impl FnOnce(Capabilities) -> Capabilities) -> Self {
        let caps = Capabilities {
            backend: FLAKY,
            device_id: "simd:test-double".into(),
            device: "test".into(),
            ops: Capabilities::all_ops(),
            secret_ops: true,
            lanes: 1,
        };
        Self {
            inner: CpuBackend::single_threaded(),
            fail: AtomicUsize::new(fail),
            calls: AtomicUsize::new(0),
            caps: edit(caps),
        }
    }
    fn check(&self) -> Result<(), AccelError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let left = self.fail.load(Ordering::SeqCst);
        if left > 0 {
            self.fail.store(left - 1, Ordering::SeqCst);
            return Err(AccelError::Device {
                backend: FLAKY,
                reason: "injected device loss".into(),
            });
        }
        Ok(())
    }
    fn secret(&self) -> Result<(), AccelError> {
        assert!(
            self.caps.secret_ops,
            "secret scalars reached a backend without secret_ops"
        );
        self.check()
    }
}

impl Accelerator for Flaky {
    fn capabilities(&self) -> Capabilities {
        self.caps.clone()
    }
    fn secp256k1_mul_base(&self, s: &[SecpScalar]) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.secret()?;
        self.inner.secp256k1_mul_base(s)
    }
    fn ed25519_mul_base(&self, s: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        self.secret()?;
        self.inner.ed25519_mul_base(s)
    }
    fn secp256k1_lincomb_vartime(
        &self,
        j: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.check()?;
        self.inner.secp256k1_lincomb_vartime(j)
    }
    fn ed25519_lincomb_vartime(
        &self,
        j: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        self.check()?;
        self.inner.ed25519_lincomb_vartime(j)
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

/// A cost model where every op costs `fixed + per_item × n`.
fn flat(fixed_ns: f64, per_item_ns: f64) -> CostModel {
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

#[test]
fn backend_kind_parses_and_rejects_unknown() {
    assert_eq!("CPU".parse::<BackendKind>(), Ok(BackendKind::Cpu));
    assert_eq!("auto".parse::<BackendKind>(), Ok(BackendKind::Auto));
    let err = "tpu".parse::<BackendKind>().unwrap_err();
    assert!(err.to_string().contains("tpu") && err.to_string().contains("cpu, simd, gpu, auto"));
}

#[test]
fn auto_picks_cheapest_by_batch_size() {
    // The flaky backend (never failing here) has a high fixed cost and a low per-item cost: it wins only
    // large batches. The crossover is at (10_000 - 100) / (50 - 5) = 220 items.
    let router = AutoRouter::new(vec![
        (Arc::new(CpuBackend::single_threaded()), flat(100.0, 50.0)),
        (Arc::new(Flaky::new(0)), flat(10_000.0, 5.0)),
    ])
    .unwrap();
    assert_eq!(
        router.choose(Curve::Ed25519, Op::LincombVartime, 8),
        BackendId::Cpu
    );
    assert_eq!(
        router.choose(Curve::Ed25519, Op::LincombVartime, 219),
        BackendId::Cpu
    );
    assert_eq!(
        router.choose(Curve::Ed25519, Op::LincombVartime, 221),
        FLAKY
    );
    kit::check_all(&router);
}

#[test]
fn router_reports_auto_or_the_preferred_backend() {
    let members = || -> Vec<(Arc<dyn Accelerator>, CostModel)> {
        vec![
            (Arc::new(CpuBackend::single_threaded()), flat(1.0, 1.0)),
            (Arc::new(Flaky::new(0)), flat(1.0, 1.0)),
        ]
    };
    let arch = std::env::consts::ARCH;
    let auto = AutoRouter::new(members()).unwrap();
    let caps = auto.capabilities();
    assert_eq!(caps.backend, BackendId::Router);
    assert_eq!(caps.backend.to_string(), "auto");
    assert_eq!(
        caps.device_id,
        format!("auto:[cpu:{arch}:serial,simd:test-double]")
    );
    let ids: Vec<BackendId> = auto.cost_models().into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, vec![BackendId::Cpu, FLAKY]);
    let preferred = AutoRouter::new(members())
        .unwrap()
        .with_policy(Policy::Prefer(FLAKY))
        .capabilities();
    assert_eq!(preferred.backend, FLAKY);
    assert_eq!(
        preferred.device_id,
        format!("simd:preferred:[cpu:{arch}:serial,simd:test-double]")
    );
}

#[test]
fn secret_ops_never_go_to_a_backend_without_permission() {
    for policy in [Policy::Cheapest, Policy::Prefer(FLAKY)] {
        let router = AutoRouter::new(vec![
            (Arc::new(CpuBackend::single_threaded()), flat(1e9, 1e9)),
            (
                Arc::new(Flaky::with_caps(0, |c| Capabilities {
                    secret_ops: false,
                    ..c
                })),
                flat(0.0, 0.0),
            ),
        ])
        .unwrap()
        .with_policy(policy);
        assert_eq!(
            router.choose(Curve::Secp256k1, Op::MulBase, 1000),
            BackendId::Cpu
        );
        assert_eq!(
            router.choose(Curve::Secp256k1, Op::LincombVartime, 1000),
            FLAKY
        );
        kit::check_all(&router);
    }
}

#[test]
fn device_error_falls_back_and_opens_breaker_until_probe_succeeds() {
    let flaky = Arc::new(Flaky::new(1));
    let router = AutoRouter::new(vec![
        (Arc::new(CpuBackend::single_threaded()), flat(1e9, 1e9)),
        (flaky.clone(), flat(0.0, 0.0)),
    ])
    .unwrap()
    .with_policy(Policy::Prefer(FLAKY))
    .with_cooldown(Duration::from_millis(200));
    let s = [SecpScalar::from(7u64)];
    // First call: the device fails, the caller still gets the right answer from the CPU.
    let out = router.secp256k1_mul_base(&s).unwrap();
    assert_eq!(out[0], ProjectivePoint::GENERATOR * s[0]);
    assert_eq!(router.fallbacks(), 1);
    assert_eq!(router.breaker_states()[1], (FLAKY, BreakerState::Open));
    // While open, calls bypass the failed backend entirely.
    let before = flaky.calls.load(Ordering::SeqCst);
    router.secp256k1_mul_base(&s).unwrap();
    assert_eq!(flaky.calls.load(Ordering::SeqCst), before);
    // After the cool-down a probe goes through and closes the breaker.
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(router.breaker_states()[1].1, BreakerState::HalfOpen);
    router.secp256k1_mul_base(&s).unwrap();
    assert_eq!(flaky.calls.load(Ordering::SeqCst), before + 1);
    assert_eq!(router.breaker_states()[1].1, BreakerState::Closed);
}

#[test]
fn every_fallback_is_counted() {
    let router = AutoRouter::new(vec![
        (Arc::new(CpuBackend::single_threaded()), flat(1e9, 1e9)),
        (Arc::new(Flaky::new(2)), flat(0.0, 0.0)),
    ])
    .unwrap()
    .with_cooldown(Duration::ZERO);
    let s = [SecpScalar::from(7u64)];
    // With no cool-down every call probes the failed backend again, and falls back again.
    for _ in 0..2 {
        router.secp256k1_mul_base(&s).unwrap();
    }
    assert_eq!(router.fallbacks(), 2);
    router.secp256k1_mul_base(&s).unwrap();
    assert_eq!(router.fallbacks(), 2);
    assert_eq!(router.breaker_states()[1].1, BreakerState::Closed);
}

#[test]
fn an_error_of_the_reference_backend_reaches_the_caller_without_a_retry() {
    let reference = Arc::new(Flaky::new(1));
    let router = AutoRouter::new(vec![
        (reference.clone(), flat(0.0, 0.0)),
        (Arc::new(CpuBackend::single_threaded()), flat(1e9, 1e9)),
    ])
    .unwrap();
    let err = router
        .secp256k1_mul_base(&[SecpScalar::from(7u64)])
        .unwrap_err();
    assert!(matches!(err, AccelError::Device { .. }), "{err}");
    // One call, no fallback counted, and the reference's breaker never opens.
    assert_eq!(reference.calls.load(Ordering::SeqCst), 1);
    assert_eq!(router.fallbacks(), 0);
    assert_eq!(router.breaker_states()[0], (FLAKY, BreakerState::Closed));
}

#[test]
fn equal_costs_go_to_the_reference_backend() {
    let router = AutoRouter::new(vec![
        (Arc::new(CpuBackend::single_threaded()), flat(10.0, 1.0)),
        (Arc::new(Flaky::new(0)), flat(10.0, 1.0)),
    ])
    .unwrap();
    for (curve, op) in Capabilities::all_ops() {
        assert_eq!(
            router.choose(curve, op, 100),
            BackendId::Cpu,
            "{op} on {curve}"
        );
    }
}

#[test]
fn lincomb_batches_are_routed_by_their_total_terms() {
    // The crossover is at 220 items (see `auto_picks_cheapest_by_batch_size`): four jobs of
    // 64 terms are 256 items, so they go to the second backend although they are four jobs.
    let second = Arc::new(Flaky::new(0));
    let router = AutoRouter::new(vec![
        (Arc::new(CpuBackend::single_threaded()), flat(100.0, 50.0)),
        (second.clone(), flat(10_000.0, 5.0)),
    ])
    .unwrap();
    let p = ProjectivePoint::GENERATOR * SecpScalar::from(3u64);
    let jobs = vec![LincombJob::new(vec![(SecpScalar::from(2u64), p); 64]); 4];
    let out = router.secp256k1_lincomb_vartime(&jobs).unwrap();
    assert_eq!(out, vec![p * SecpScalar::from(128u64); 4]);
    assert_eq!(second.calls.load(Ordering::SeqCst), 1);
    let small = vec![LincombJob::new(vec![(SecpScalar::from(2u64), p); 2]); 4];
    router.secp256k1_lincomb_vartime(&small).unwrap();
    assert_eq!(second.calls.load(Ordering::SeqCst), 1);
}

#[test]
fn reference_backend_must_cover_every_op() {
    let err = AutoRouter::new(vec![(
        Arc::new(Flaky::with_caps(0, |c| Capabilities {
            ops: vec![(Curve::Ed25519, Op::MulBase)],
            ..c
        })),
        CostModel::default(),
    )])
    .unwrap_err();
    assert!(matches!(err, AccelError::NoBackend { .. }), "{err}");
}

#[test]
fn calibration_measures_every_op_with_sane_costs() {
    let model = calibrate(&CpuBackend::single_threaded(), 1, 16, 2).unwrap();
    for (curve, op) in Capabilities::all_ops() {
        let c = model
            .get(curve, op)
            .unwrap_or_else(|| panic!("{op} on {curve} not measured"));
        assert!(
            c.per_item_ns > 0.0 && c.per_item_ns < 1e8,
            "{op} on {curve}: {c:?}"
        );
        assert!(c.fixed_ns >= 0.0);
        assert!(
            model.estimate_ns(curve, op, 100).unwrap() > model.estimate_ns(curve, op, 1).unwrap()
        );
    }
}

#[test]
fn bench_table_covers_every_op_and_size() {
    let cpu = CpuBackend::single_threaded();
    let rows = accel_api::bench_table(&[&cpu], &[1, 4], Duration::from_millis(1), |_, _, _, _| {})
        .unwrap();
    assert_eq!(rows.len(), Capabilities::all_ops().len() * 2);
    assert!(rows.iter().all(|r| r.backend == BackendId::Cpu
        && r.device_id.starts_with("cpu:")
        && r.per_item_ns > 0.0
        && r.throughput > 0.0));
}
