//! Accelerator wiring: the one place that turns `--backend` into an [`Accelerator`], and the
//! metering decorator that times every accelerator call into `tessera_accel_op_seconds`.
//!
//! The service runs backends single-threaded: each batch runs wholly on the batcher worker
//! thread that took it, so the thread's CPU clock measures the batch's work; parallelism comes
//! from the batcher's workers.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use accel_api::curves::curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use accel_api::{
    AccelError, Accelerator, AutoRouter, BackendKind, Capabilities, CostModel, Curve, LincombJob,
    Op, Policy, SchnorrItem, Verdict,
};
use backend_cpu::CpuBackend;
use backend_gpu::{GpuBackend, GpuConfig};
use backend_simd::SimdBackend;

use crate::bench_accel::CostFile;
use crate::config::AccelConfig;
use crate::metrics::{BreakerSource, Metrics, RouterHealth};

/// The accelerator chosen at start-up.
#[derive(Debug)]
pub struct Selected {
    /// The metered accelerator the service uses.
    pub accel: Arc<dyn Accelerator>,
    /// The backend name for status and metrics (`cpu`, `auto`, …).
    pub backend: &'static str,
    /// Human-readable description for the start-up log (device, cost models).
    pub description: String,
}

/// The cost model of `acc`: from the cost-model file when it holds one for this backend and
/// device, else calibrated now (a GPU at larger batches, since its fixed cost per call is
/// large; the CPU backends at 1 and 64). Described for the start-up log.
fn calibrated(
    acc: Arc<dyn Accelerator>,
    costs: Option<&(PathBuf, CostFile)>,
) -> Result<(Arc<dyn Accelerator>, CostModel, String), crate::Error> {
    let caps = acc.capabilities();
    let stored = costs.and_then(|(path, f)| {
        f.model_for(caps.backend, &caps.device)
            .map(|m| (path.as_path(), m))
    });
    let (model, source) = match stored {
        Some((path, m)) => (m.to_model(path)?, "measured by bench-accel"),
        None => {
            let (small, large) = if caps.backend == "gpu" {
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
    metrics: &Metrics,
    costs: Option<&(PathBuf, CostFile)>,
) -> Result<(Arc<dyn Accelerator>, String), crate::Error> {
    let mut members = Vec::new();
    let mut lines = Vec::new();
    let cpu: Arc<dyn Accelerator> = Arc::new(CpuBackend::single_threaded());
    for acc in std::iter::once(cpu).chain(others) {
        let (acc, model, line) = calibrated(acc, costs)?;
        lines.push(line);
        members.push((acc, model));
    }
    let router = Arc::new(AutoRouter::new(members)?.with_policy(policy));
    let watched = Arc::clone(&router);
    *metrics.breaker.lock().unwrap_or_else(|e| e.into_inner()) =
        Some(BreakerSource(Box::new(move || RouterHealth {
            breakers: watched
                .breaker_states()
                .into_iter()
                .map(|(name, state)| (name, state.as_gauge()))
                .collect(),
            fallbacks: watched.fallbacks(),
        })));
    let head = match policy {
        Policy::Cheapest => "auto over calibrated backends".to_owned(),
        Policy::Prefer(name) => format!("{name} with cpu fallback; calibrated backends"),
    };
    Ok((router, format!("{head}: {}", lines.join(" | "))))
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
pub fn select(cfg: &AccelConfig, metrics: Arc<Metrics>) -> Result<Selected, crate::Error> {
    let kind = cfg.backend;
    let costs = match &cfg.cost_model {
        Some(p) => Some((p.clone(), CostFile::read(p)?)),
        None => None,
    };
    let costs = costs.as_ref();
    let (inner, description): (Arc<dyn Accelerator>, String) = match kind {
        BackendKind::Cpu => {
            let cpu = CpuBackend::single_threaded();
            let d = cpu.capabilities().device;
            (Arc::new(cpu), d)
        }
        BackendKind::Simd => {
            let simd: Arc<dyn Accelerator> = Arc::new(SimdBackend::new()?);
            router(vec![simd], Policy::Prefer("simd"), &metrics, costs)?
        }
        BackendKind::Gpu => {
            let mut others: Vec<Arc<dyn Accelerator>> = Vec::new();
            match SimdBackend::new() {
                Ok(simd) => others.push(Arc::new(simd)),
                Err(e) => tracing::info!("backend gpu: no simd backend for CPU-side work: {e}"),
            }
            let g = Arc::new(gpu(cfg)?);
            others.push(Arc::clone(&g) as Arc<dyn Accelerator>);
            let routed = router(others, Policy::Prefer("gpu"), &metrics, costs)?;
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
    let backend = kind.as_str();
    Ok(Selected {
        accel: Arc::new(Metered {
            inner,
            backend,
            metrics,
        }),
        backend,
        description,
    })
}

/// Decorator that records the duration of every call of the wrapped accelerator.
#[derive(Debug)]
pub struct Metered {
    inner: Arc<dyn Accelerator>,
    backend: &'static str,
    metrics: Arc<Metrics>,
}

impl Metered {
    fn time<T>(&self, curve: Curve, op: Op, f: impl FnOnce(&dyn Accelerator) -> T) -> T {
        let start = Instant::now();
        let out = f(self.inner.as_ref());
        self.metrics.accel_op.observe(
            &[self.backend, curve.as_str(), op.as_str()],
            start.elapsed().as_secs_f64(),
        );
        out
    }
}

impl Accelerator for Metered {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.time(Curve::Secp256k1, Op::MulBase, |a| {
            a.secp256k1_mul_base(scalars)
        })
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdwardsPoint>, AccelError> {
        self.time(Curve::Ed25519, Op::MulBase, |a| a.ed25519_mul_base(scalars))
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.time(Curve::Secp256k1, Op::LincombVartime, |a| {
            a.secp256k1_lincomb_vartime(jobs)
        })
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdwardsPoint>],
    ) -> Result<Vec<EdwardsPoint>, AccelError> {
        self.time(Curve::Ed25519, Op::LincombVartime, |a| {
            a.ed25519_lincomb_vartime(jobs)
        })
    }

    fn secp256k1_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
    ) -> Result<Verdict, AccelError> {
        self.time(Curve::Secp256k1, Op::VerifyBatchVartime, |a| {
            a.secp256k1_verify_batch_vartime(items)
        })
    }

    fn ed25519_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<EdScalar, EdwardsPoint>],
    ) -> Result<Verdict, AccelError> {
        self.time(Curve::Ed25519, Op::VerifyBatchVartime, |a| {
            a.ed25519_verify_batch_vartime(items)
        })
    }

    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        self.time(Curve::Secp256k1, Op::NormalizeBatch, |a| {
            a.secp256k1_normalize_batch(points)
        })
    }

    fn ed25519_compress_batch(
        &self,
        points: &[EdwardsPoint],
    ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        self.time(Curve::Ed25519, Op::NormalizeBatch, |a| {
            a.ed25519_compress_batch(points)
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::metrics::sum_samples;

    #[test]
    fn cpu_is_metered() {
        let m = Arc::new(Metrics::new());
        let cfg = AccelConfig {
            backend: BackendKind::Cpu,
            gpu_secret_ops: false,
            gpu_field: backend_gpu::GpuField::Auto,
            cost_model: None,
        };
        let s = select(&cfg, Arc::clone(&m)).unwrap();
        assert_eq!(s.backend, "cpu");
        let pts = s.accel.ed25519_mul_base(&[EdScalar::ONE]).unwrap();
        assert_eq!(pts[0], EdwardsPoint::mul_base(&EdScalar::ONE));
        let text = m.render();
        assert_eq!(
            sum_samples(&text, "tessera_accel_op_seconds_count", None),
            1.0
        );
        assert!(text.contains("backend=\"cpu\",curve=\"ed25519\",op=\"mul_base\""));
    }
}
