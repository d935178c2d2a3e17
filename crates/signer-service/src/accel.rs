//! Accelerator wiring: the one place that turns `--backend` into an [`Accelerator`], wrapped
//! in `telemetry`'s metering decorator (`tessera_accel_op_seconds`, labelled with the backend
//! that did the work).
//!
//! The service runs backends single-threaded: each batch runs wholly on the batcher worker
//! thread that took it, so the thread's CPU clock measures the batch's work; parallelism comes
//! from the batcher's workers.

use std::path::PathBuf;
use std::sync::Arc;

use accel_api::{AccelError, Accelerator, AutoRouter, BackendId, BackendKind, CostModel, Policy};
use backend_cpu::CpuBackend;
use backend_gpu::{GpuBackend, GpuConfig};
use backend_simd::SimdBackend;
use telemetry::{Metered, Metrics};

use crate::bench_accel::CostFile;
use crate::config::AccelConfig;
use crate::error::Error;

/// The accelerator chosen at start-up.
#[derive(Debug)]
pub struct Selected {
    /// The metered accelerator the service uses.
    pub accel: Arc<dyn Accelerator>,
    /// The configured backend (`cpu`, `auto`, …), for `GetStatus`.
    pub backend: &'static str,
    /// Human-readable description for the start-up log (device, cost models).
    pub description: String,
}

/// The cost model of `acc`: from the cost-model file when it holds one for this backend and
/// device id ([`accel_api::Capabilities::device_id`]), else calibrated now (a GPU at larger batches, since its fixed cost per call is
/// large; the CPU backends at 1 and 64). Described for the start-up log.
fn calibrated(
    acc: Arc<dyn Accelerator>,
    costs: Option<&(PathBuf, CostFile)>,
) -> Result<(Arc<dyn Accelerator>, CostModel, String), Error> {
    let caps = acc.capabilities();
    let stored = costs.and_then(|(path, f)| {
        f.model_for(caps.backend, &caps.device_id)
            .map(|m| (path.as_path(), m))
    });
    let (model, source) = match stored {
        Some((path, m)) => (m.to_model(path)?, "measured by bench-accel"),
        None => {
            let (small, large) = if caps.backend == BackendId::Gpu {
                (64, 4096)
            } else {
                (1, 64)
            };
            (
                accel_api::calibrate(acc.as_ref(), small, large, 3)?,
                "calibrated",
            )
        }
    };
    let summary: Vec<String> = model
        .costs
        .iter()
        .map(|c| {
            format!(
                "{}/{}: {:.0} ns + {:.0} ns/item",
                c.curve, c.op, c.fixed_ns, c.per_item_ns
            )
        })
        .collect();
    let line = format!("{} ({source}) [{}]", caps.backend, summary.join("; "));
    Ok((acc, model, line))
}

/// A router over the CPU reference backend and `others`, with the given policy; its breaker
/// states are published in `metrics`.
fn router(
    others: Vec<Arc<dyn Accelerator>>,
    policy: Policy,
    metrics: &Arc<Metrics>,
    costs: Option<&(PathBuf, CostFile)>,
) -> Result<(Arc<dyn Accelerator>, String), Error> {
    let mut members = Vec::new();
    let mut lines = Vec::new();
    let cpu: Arc<dyn Accelerator> = Arc::new(CpuBackend::single_threaded());
    for acc in std::iter::once(cpu).chain(others) {
        let (acc, model, line) = calibrated(acc, costs)?;
        lines.push(line);
        members.push((acc, model));
    }
    let router = Arc::new(AutoRouter::new(members)?.with_policy(policy));
    metrics.watch_router(Arc::clone(&router));
    let head = match policy {
        Policy::Cheapest => "auto over calibrated backends".to_owned(),
        Policy::Prefer(name) => format!("{name} with cpu fallback; calibrated backends"),
    };
    Ok((
        Arc::new(Metered::routed(router, Arc::clone(metrics))),
        format!("{head}: {}", lines.join(" | ")),
    ))
}

/// Environment variable for failure drills: the GPU backend fails this many batches (as a
/// device error) after start-up, so operators can watch the CPU fallback and the breaker.
pub const GPU_FAULT_INJECT_ENV: &str = "TESSERA_GPU_FAULT_INJECT";

/// Opens the GPU backend with the service's settings.
pub fn gpu(cfg: &AccelConfig) -> Result<GpuBackend, AccelError> {
    GpuBackend::new(GpuConfig {
        secret_ops: cfg.gpu_secret_ops,
        field: cfg.gpu_field,
        ..GpuConfig::default()
    })
}

/// Arms the failure drill of [`GPU_FAULT_INJECT_ENV`], when set: called once the service's
/// start-up calibration is done, so the injected failures land on requests.
fn arm_fault_drill(gpu: &GpuBackend) {
    if let Some(n) = std::env::var(GPU_FAULT_INJECT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<u32>().ok())
    {
        tracing::warn!(
            batches = n,
            "{GPU_FAULT_INJECT_ENV} is set: the GPU backend will fail its next {n} batches (failure drill)"
        );
        gpu.inject_failures(n);
    }
}

/// Builds the accelerator for `cfg.backend`. A backend asked for by name that is not usable on
/// this host (no AVX-512 IFMA/AVX2 for `simd`, no Vulkan adapter for `gpu`) is a start-up
/// error; `auto` calibrates every usable backend and routes each batch to the cheapest (it
/// opens the GPU only when the host has a hardware adapter: a software rasterizer such as
/// lavapipe runs on the same cores as the CPU backends and never wins). An explicit `simd` or
/// `gpu` still keeps the CPU backend behind it for fallback (and, for `gpu`, the SIMD backend
/// for secret-class work when `accel.gpu_secret_ops` is false); a failed GPU batch is re-run
/// on the CPU and opens the GPU's circuit breaker (`tessera_accel_breaker_state`).
pub fn select(cfg: &AccelConfig, metrics: Arc<Metrics>) -> Result<Selected, Error> {
    let kind = cfg.backend;
    let costs = match &cfg.cost_model {
        Some(p) => Some((p.clone(), CostFile::read(p)?)),
        None => None,
    };
    let costs = costs.as_ref();
    let (accel, description): (Arc<dyn Accelerator>, String) = match kind {
        BackendKind::Cpu => {
            let cpu = CpuBackend::single_threaded();
            let d = cpu.capabilities().device;
            (Arc::new(Metered::new(Arc::new(cpu), metrics)), d)
        }
        BackendKind::Simd => {
            let simd: Arc<dyn Accelerator> = Arc::new(SimdBackend::new()?);
            router(vec![simd], Policy::Prefer(BackendId::Simd), &metrics, costs)?
        }
        BackendKind::Gpu => {
            let mut others: Vec<Arc<dyn Accelerator>> = Vec::new();
            match SimdBackend::new() {
                Ok(simd) => others.push(Arc::new(simd)),
                Err(e) => tracing::info!("backend gpu: no simd backend for CPU-side work: {e}"),
            }
            let g = Arc::new(gpu(cfg)?);
            others.push(Arc::clone(&g) as Arc<dyn Accelerator>);
            let routed = router(others, Policy::Prefer(BackendId::Gpu), &metrics, costs)?;
            arm_fault_drill(&g);
            routed
        }
        BackendKind::Auto => {
            let mut others: Vec<Arc<dyn Accelerator>> = Vec::new();
            match SimdBackend::new() {
                Ok(simd) => others.push(Arc::new(simd)),
                Err(e) => tracing::info!("backend auto: skipping simd: {e}"),
            }
            match backend_gpu::hardware_adapter() {
                Some(name) => match gpu(cfg) {
                    Ok(g) => others.push(Arc::new(g)),
                    Err(e) => tracing::warn!("backend auto: skipping gpu {name}: {e}"),
                },
                None => tracing::info!("backend auto: no hardware GPU adapter"),
            }
            router(others, Policy::Cheapest, &metrics, costs)?
        }
    };
    Ok(Selected {
        accel,
        backend: kind.as_str(),
        description,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use accel_api::curves::curve25519_dalek::edwards::EdwardsPoint;
    use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;

    use super::*;

    #[test]
    fn cpu_is_metered_with_its_own_name() {
        let m = Arc::new(Metrics::new(&telemetry::BuildInfo::default()));
        let cfg = AccelConfig {
            backend: BackendKind::Cpu,
            gpu_secret_ops: false,
            gpu_field: backend_gpu::GpuField::Auto,
            cost_model: None,
        };
        let s = select(&cfg, Arc::clone(&m)).unwrap();
        assert_eq!(s.backend, "cpu");
        let pts = s.accel.ed25519_mul_base(&[EdScalar::ONE]).unwrap();
        assert_eq!(pts[0].to_edwards(), EdwardsPoint::mul_base(&EdScalar::ONE));
        assert_eq!(telemetry::last_backend(), Some("cpu"));
        let text = m.render();
        assert!(
            text.contains("tessera_accel_op_seconds_count{backend=\"cpu\",curve=\"ed25519\",op=\"mul_base\"} 1"),
            "{text}"
        );
    }
}
