//! The port's conformance kit on the GPU backend (lavapipe in CI), plus dispatch splitting,
//! the secret-ops switch and the failure path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use accel_api::{AccelError, Accelerator, BackendId, Curve, EdPoint, LincombJob, Op};
use backend_gpu::{GpuBackend, GpuConfig, GpuField};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::Identity;
use k256::{ProjectivePoint, Scalar};

/// The shared backend for `field` (one device context per field variant for the whole test
/// binary: lavapipe compiles each kernel at its first dispatch) with secret ops enabled, or
/// `None` (after a note) when this host has no Vulkan adapter and is not CI. Under `CI=true` a
/// missing adapter is a failure; an adapter that fails the start-up self-test is a failure
/// everywhere. `GpuField::U64` on an adapter without 64-bit integers is a noted skip.
fn backend(field: GpuField) -> Option<&'static GpuBackend> {
    static U32: OnceLock<Option<GpuBackend>> = OnceLock::new();
    static U64: OnceLock<Option<GpuBackend>> = OnceLock::new();
    let cell = match field {
        GpuField::U64 => &U64,
        _ => &U32,
    };
    cell.get_or_init(|| {
        if backend_gpu::adapters().is_empty() {
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true but this host has no Vulkan adapter (install mesa-vulkan-drivers)");
            }
            eprintln!(
                "skipping GPU tests: no Vulkan adapter (install mesa-vulkan-drivers for lavapipe)"
            );
            return None;
        }
        match GpuBackend::new(GpuConfig {
            secret_ops: true,
            field,
            ..GpuConfig::default()
        }) {
            Ok(b) => Some(b),
            Err(e) if field == GpuField::U64 && e.to_string().contains("SHADER_INT64") => {
                eprintln!("skipping the u64 field variant: {e}");
                None
            }
            Err(e) => panic!("the GPU backend did not start: {e}"),
        }
    })
    .as_ref()
}

#[test]
fn conformance_kit_u32_field() {
    let Some(gpu) = backend(GpuField::U32) else {
        return;
    };
    eprintln!("adapter: {}", gpu.capabilities().device);
    accel_api::kit::check_all(gpu);
    check_device_id(gpu, "u32");
}

/// The device id is `gpu:<vendor hex>:<device hex>:<field>`, shared by every config of the
/// context.
fn check_device_id(gpu: &GpuBackend, field: &str) {
    let caps = gpu.capabilities();
    assert_eq!(caps.backend, BackendId::Gpu);
    let parts: Vec<&str> = caps.device_id.split(':').collect();
    assert_eq!(parts.len(), 4, "{}", caps.device_id);
    assert_eq!(parts[0], "gpu");
    for id in &parts[1..3] {
        assert!(
            id.len() >= 4
                && id
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()),
            "{}",
            caps.device_id
        );
    }
    assert_eq!(parts[3], field);
    let other = gpu.with_config(GpuConfig::default()).capabilities();
    assert_eq!(other.device_id, caps.device_id);
}

#[test]
fn conformance_kit_u64_field() {
    let Some(gpu) = backend(GpuField::U64) else {
        return;
    };
    eprintln!("adapter: {}", gpu.capabilities().device);
    accel_api::kit::check_all(gpu);
    check_device_id(gpu, "u64");
}

#[test]
fn injected_device_error_surfaces_as_device_and_clears() {
    let Some(shared) = backend(GpuField::U32) else {
        return;
    };
    let gpu = shared.with_config(GpuConfig {
        secret_ops: true,
        ..GpuConfig::default()
    });
    let job = LincombJob::new(vec![(Scalar::from(5u64), ProjectivePoint::GENERATOR)]);
    gpu.inject_failures(1);
    let err = gpu
        .secp256k1_lincomb_vartime(std::slice::from_ref(&job))
        .expect_err("injected failure must surface");
    assert!(
        matches!(
            err,
            AccelError::Device {
                backend: BackendId::Gpu,
                ..
            }
        ),
        "{err:?}"
    );
    // The next batch and the health probe succeed again.
    let out = gpu
        .secp256k1_lincomb_vartime(std::slice::from_ref(&job))
        .expect("batch after the injected failure");
    assert_eq!(out[0], ProjectivePoint::GENERATOR * Scalar::from(5u64));
    gpu.probe().expect("probe after recovery");
}

#[test]
fn secret_ops_off_leaves_mul_base_out() {
    let Some(shared) = backend(GpuField::U32) else {
        return;
    };
    let gpu = shared.with_config(GpuConfig::default());
    let caps = gpu.capabilities();
    assert!(!caps.secret_ops);
    assert!(!caps.supports(Curve::Secp256k1, Op::MulBase));
    assert!(!caps.supports(Curve::Ed25519, Op::MulBase));
    assert!(caps.supports(Curve::Ed25519, Op::LincombVartime));
    let err = gpu
        .secp256k1_mul_base(&[Scalar::from(9u64)])
        .expect_err("mul_base refused");
    assert!(
        matches!(
            err,
            AccelError::Unsupported {
                op: Op::MulBase,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(gpu.ed25519_mul_base(&[EdScalar::from(9u64)]).is_err());
}

#[test]
fn batches_split_across_dispatches_and_chunks_match_u32_field() {
    split_batches(GpuField::U32);
}

#[test]
fn batches_split_across_dispatches_and_chunks_match_u64_field() {
    split_batches(GpuField::U64);
}

/// Batches larger than one dispatch (3 items per dispatch here), jobs longer than one chunk
/// (8 terms) and empty jobs, on both curves.
fn split_batches(field: GpuField) {
    let Some(shared) = backend(field) else {
        return;
    };
    let gpu = shared.with_config(GpuConfig {
        secret_ops: true,
        max_items_per_dispatch: 3,
        ..GpuConfig::default()
    });
    let ks: Vec<Scalar> = (1..=10u64)
        .map(|i| Scalar::from(i * 0x1_0000_0001) * Scalar::from(i).invert().unwrap())
        .collect();
    let got = gpu.secp256k1_mul_base(&ks).expect("mul_base");
    for (k, p) in ks.iter().zip(&got) {
        assert_eq!(*p, ProjectivePoint::GENERATOR * k);
    }
    let jobs: Vec<_> = (0..7usize)
        .map(|j| {
            LincombJob::new(
                (0..j * 3)
                    .map(|t| (ks[(t + j) % 10], ProjectivePoint::GENERATOR * ks[t % 10]))
                    .collect(),
            )
        })
        .collect();
    let got = gpu.secp256k1_lincomb_vartime(&jobs).expect("lincomb");
    for (job, p) in jobs.iter().zip(&got) {
        let want = job
            .terms
            .iter()
            .fold(ProjectivePoint::IDENTITY, |a, (s, q)| a + *q * s);
        assert_eq!(*p, want);
    }
    let eks: Vec<EdScalar> = (1..=10u64)
        .map(|i| EdScalar::from(i * 0x1_0000_0001).invert())
        .collect();
    let got = gpu.ed25519_mul_base(&eks).expect("mul_base");
    for (k, p) in eks.iter().zip(&got) {
        assert_eq!(p.to_edwards(), ED25519_BASEPOINT_POINT * k);
    }
    let ejobs: Vec<_> = (0..7usize)
        .map(|j| {
            LincombJob::new(
                (0..j * 3)
                    .map(|t| {
                        let p = ED25519_BASEPOINT_POINT * eks[t % 10];
                        (eks[(t + j) % 10], EdPoint::from(p))
                    })
                    .collect(),
            )
        })
        .collect();
    let got = gpu.ed25519_lincomb_vartime(&ejobs).expect("lincomb");
    for (job, p) in ejobs.iter().zip(&got) {
        let want = job
            .terms
            .iter()
            .fold(EdwardsPoint::identity(), |a, (s, q)| a + q.to_edwards() * s);
        assert_eq!(p.to_edwards(), want);
    }
}

/// The field files under shaders/ are what shaders/gen_field.py writes (and the generator's
/// overflow bounds hold), when Python is at hand.
#[test]
fn field_shaders_match_their_generator() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../shaders/gen_field.py");
    match std::process::Command::new("python3")
        .arg(script)
        .arg("--check")
        .output()
    {
        Ok(out) => assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(e) if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but python3 cannot run: {e}")
        }
        Err(e) => eprintln!("skipping the generator check: python3 cannot run ({e})"),
    }
}

#[test]
fn base_point_terms_match_u32_field() {
    base_point_terms(GpuField::U32);
}

#[test]
fn base_point_terms_match_u64_field() {
    base_point_terms(GpuField::U64);
}

/// Jobs whose terms include the base point (read from the fixed-base table on the GPU),
/// alone, twice, mixed with other points, with scalars whose signed digits reach the top
/// window (n - 1) or are all negative.
fn base_point_terms(field: GpuField) {
    let Some(gpu) = backend(field) else {
        return;
    };
    let g = ProjectivePoint::GENERATOR;
    let p = g * Scalar::from(0xdead_beefu64);
    let big = -Scalar::ONE;
    let negs = Scalar::from(0x8888_8888_8888_8888u64).invert().unwrap();
    let jobs = vec![
        LincombJob::new(vec![(big, g)]),
        LincombJob::new(vec![(Scalar::ONE, g)]),
        LincombJob::new(vec![(negs, g), (big, p), (Scalar::from(3u64), g)]),
        LincombJob::new(vec![(big, p), (negs, g)]),
    ];
    let got = gpu.secp256k1_lincomb_vartime(&jobs).expect("lincomb");
    for (job, r) in jobs.iter().zip(&got) {
        let want = job
            .terms
            .iter()
            .fold(ProjectivePoint::IDENTITY, |a, (s, q)| a + *q * s);
        assert_eq!(*r, want);
    }
    let b = EdPoint::generator();
    let q = EdPoint::from(ED25519_BASEPOINT_POINT * EdScalar::from(0xdead_beefu64));
    let ebig = -EdScalar::ONE;
    let enegs = EdScalar::from(0x8888_8888_8888_8888u64).invert();
    let ejobs = vec![
        LincombJob::new(vec![(ebig, b)]),
        LincombJob::new(vec![(EdScalar::ONE, b)]),
        LincombJob::new(vec![(enegs, b), (ebig, q), (EdScalar::from(3u64), b)]),
        LincombJob::new(vec![(ebig, q), (enegs, b)]),
    ];
    let got = gpu.ed25519_lincomb_vartime(&ejobs).expect("lincomb");
    for (job, r) in ejobs.iter().zip(&got) {
        let want = job
            .terms
            .iter()
            .fold(EdwardsPoint::identity(), |a, (s, q)| a + q.to_edwards() * s);
        assert_eq!(r.to_edwards(), want);
    }
}
