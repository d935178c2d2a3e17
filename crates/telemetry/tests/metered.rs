//! The metering decorator: one sample per call, labelled with the backend that ran it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use accel_api::curves::curve25519_dalek::edwards::EdwardsPoint;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::k256::{ProjectivePoint, Scalar as SecpScalar};
use accel_api::{Accelerator, BackendId, Curve, Op, Policy};
use backend_cpu::CpuBackend;
use common::{DEV, Dev, flat, router, sum_samples};
use telemetry::{BuildInfo, Metered, Metrics, last_backend};

fn metrics() -> Arc<Metrics> {
    Arc::new(Metrics::new(&BuildInfo::default()))
}

fn calls(m: &Metrics, backend: &str, curve: Curve, op: Op) -> f64 {
    sum_samples(
        &m.render(),
        "tessera_accel_op_seconds_count",
        &[
            ("backend", backend),
            ("curve", curve.as_str()),
            ("op", op.as_str()),
        ],
    )
}

#[test]
fn cpu_backend_is_metered_once_per_call() {
    let m = metrics();
    let acc = Metered::new(Arc::new(CpuBackend::single_threaded()), Arc::clone(&m));
    assert_eq!(acc.capabilities().backend, BackendId::Cpu);
    let pts = acc.ed25519_mul_base(&[EdScalar::ONE]).unwrap();
    assert_eq!(pts[0].to_edwards(), EdwardsPoint::mul_base(&EdScalar::ONE));
    let text = m.render();
    assert_eq!(
        sum_samples(&text, "tessera_accel_op_seconds_count", &[]),
        1.0
    );
    assert_eq!(calls(&m, "cpu", Curve::Ed25519, Op::MulBase), 1.0);
    acc.secp256k1_normalize_batch(&[ProjectivePoint::GENERATOR; 3])
        .unwrap();
    acc.secp256k1_normalize_batch(&[ProjectivePoint::GENERATOR])
        .unwrap();
    assert_eq!(calls(&m, "cpu", Curve::Secp256k1, Op::NormalizeBatch), 2.0);
    let text = m.render();
    assert_eq!(
        sum_samples(&text, "tessera_accel_op_seconds_count", &[]),
        3.0
    );
    assert_eq!(last_backend(), Some("cpu"));
}

#[test]
fn routed_calls_are_labelled_with_the_chosen_member() {
    let m = metrics();
    // `dev` costs more per call but less per item: it wins batches above 220 items.
    let r = router(
        flat(100.0, 50.0),
        Dev::failing(0),
        flat(10_000.0, 5.0),
        Policy::Cheapest,
    );
    assert_eq!(
        r.choose(Curve::Ed25519, Op::NormalizeBatch, 8),
        BackendId::Cpu
    );
    assert_eq!(r.choose(Curve::Ed25519, Op::NormalizeBatch, 300), DEV);
    let acc = Metered::routed(Arc::clone(&r), Arc::clone(&m));
    let small = vec![accel_api::EdPoint::generator(); 8];
    let large = vec![accel_api::EdPoint::generator(); 300];
    acc.ed25519_compress_batch(&small).unwrap();
    assert_eq!(last_backend(), Some("cpu"));
    acc.ed25519_compress_batch(&large).unwrap();
    assert_eq!(last_backend(), Some(DEV.as_str()));
    acc.ed25519_compress_batch(&large).unwrap();
    assert_eq!(calls(&m, "cpu", Curve::Ed25519, Op::NormalizeBatch), 1.0);
    assert_eq!(
        calls(&m, DEV.as_str(), Curve::Ed25519, Op::NormalizeBatch),
        2.0
    );
    // The router's own name never appears as a label.
    assert!(!m.render().contains("backend=\"auto\""));
}

#[test]
fn a_fallback_is_labelled_with_the_reference_backend() {
    let m = metrics();
    let r = router(
        flat(1e9, 1e9),
        Dev::failing(1),
        flat(0.0, 0.0),
        Policy::Prefer(DEV),
    );
    m.watch_router(Arc::clone(&r));
    let acc = Metered::routed(Arc::clone(&r), Arc::clone(&m));
    let s = [SecpScalar::from(7u64)];
    // `dev` is chosen, fails, and the CPU re-runs the call.
    let out = acc.secp256k1_mul_base(&s).unwrap();
    assert_eq!(out[0], ProjectivePoint::GENERATOR * s[0]);
    assert_eq!(r.fallbacks(), 1);
    assert_eq!(last_backend(), Some("cpu"));
    assert_eq!(calls(&m, "cpu", Curve::Secp256k1, Op::MulBase), 1.0);
    assert_eq!(calls(&m, DEV.as_str(), Curve::Secp256k1, Op::MulBase), 0.0);
    let text = m.render();
    assert_eq!(
        sum_samples(&text, "tessera_accel_fallbacks_total", &[]),
        1.0
    );
    // While dev's breaker is open the router picks the CPU outright.
    acc.secp256k1_mul_base(&s).unwrap();
    assert_eq!(calls(&m, "cpu", Curve::Secp256k1, Op::MulBase), 2.0);
    assert_eq!(r.fallbacks(), 1);
}

#[test]
fn last_backend_is_per_thread() {
    let m = metrics();
    let acc = Arc::new(Metered::new(
        Arc::new(CpuBackend::single_threaded()),
        Arc::clone(&m),
    ));
    let worker = Arc::clone(&acc);
    let seen = std::thread::spawn(move || {
        let before = last_backend();
        worker.ed25519_mul_base(&[EdScalar::ONE]).unwrap();
        (before, last_backend())
    })
    .join()
    .unwrap();
    assert_eq!(seen, (None, Some("cpu")));
    let fresh = std::thread::spawn(last_backend).join().unwrap();
    assert_eq!(fresh, None);
}
