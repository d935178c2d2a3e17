#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

mod adapter;
mod codec;
mod context;

pub use adapter::{adapters, hardware_adapter};

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use accel_api::{AccelError, Accelerator, BackendId, Capabilities, Curve, EdPoint, LincombJob, Op};
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use zeroize::Zeroizing;

use crate::context::{Context, CurveId};

pub(crate) const BACKEND: BackendId = BackendId::Gpu;

/// Which field arithmetic the kernels use (`accel.gpu_field`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum GpuField {
    /// `U64` where the adapter has `SHADER_INT64`, else `U32`.
    #[default]
    Auto,
    /// 20 limbs of 13 bits, products and sums in u32: runs on every adapter.
    U32,
    /// 10 limbs of 26 bits, products and column sums in u64: needs `SHADER_INT64`.
    U64,
}

impl std::str::FromStr for GpuField {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(GpuField::Auto),
            "u32" => Ok(GpuField::U32),
            "u64" => Ok(GpuField::U64),
            _ => Err(format!("`{s}` is not one of auto, u32, u64")),
        }
    }
}

/// The field arithmetic a context was built with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FieldImpl {
    /// shaders/field_*.wgsl.
    U32,
    /// shaders/field_*_u64.wgsl.
    U64,
}

/// Settings of the GPU backend (the `accel.gpu_*` config fields).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GpuConfig {
    /// Whether secret-class work (`mul_base`) may run on the GPU (`accel.gpu_secret_ops`).
    /// When false the backend does not offer `mul_base` (its capabilities leave it out and a
    /// call returns [`AccelError::Unsupported`]), so a router sends it to a CPU backend.
    pub secret_ops: bool,
    /// Most items (mul_base scalars or lincomb chunks of up to 8 terms) in one dispatch;
    /// larger batches are split so each dispatch stays well below driver watchdogs. Clamped
    /// to `1..=4_194_240` and, for lincomb, to the 64 MiB scratch budget.
    pub max_items_per_dispatch: u32,
    /// How long to wait for one batch before reporting the device as failed.
    pub timeout: Duration,
    /// Field arithmetic of the kernels, chosen when the context is built.
    pub field: GpuField,
}

impl Default for GpuConfig {
    fn default() -> Self {
        Self {
            secret_ops: false,
            max_items_per_dispatch: 4096,
            timeout: Duration::from_secs(60),
            field: GpuField::Auto,
        }
    }
}

/// The wgpu compute backend: one device context per instance, holding every pipeline, the
/// fixed-base tables and the scratch buffer, all built, warmed and self-tested by
/// [`GpuBackend::new`].
pub struct GpuBackend {
    ctx: Arc<Context>,
    cfg: GpuConfig,
    inject: AtomicU32,
}

impl fmt::Debug for GpuBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GpuBackend")
            .field("adapter", &self.ctx.adapter_name())
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

fn device_err(reason: impl Into<String>) -> AccelError {
    AccelError::Device {
        backend: BACKEND,
        reason: reason.into(),
    }
}

impl GpuBackend {
    /// Opens the first Vulkan adapter, compiles every pipeline, builds the fixed-base tables in
    /// GPU memory and runs every kernel once on known inputs ([`GpuBackend::probe`]): drivers
    /// that compile lazily (lavapipe compiles at the first dispatch) do it here, not in the
    /// first request.
    ///
    /// Returns [`AccelError::Unavailable`] when no adapter is found or the device cannot run
    /// the kernels correctly.
    pub fn new(cfg: GpuConfig) -> Result<Self, AccelError> {
        let ctx = Arc::new(Context::new(&cfg)?);
        let backend = Self {
            ctx,
            cfg,
            inject: AtomicU32::new(0),
        };
        backend.probe().map_err(|e| AccelError::Unavailable {
            backend: BACKEND,
            reason: format!("start-up self-test failed: {e}"),
        })?;
        Ok(backend)
    }

    /// A backend with other settings on the same device context (pipelines and tables are
    /// shared, nothing is compiled again). The process keeps one context this way.
    pub fn with_config(&self, cfg: GpuConfig) -> Self {
        Self {
            ctx: Arc::clone(&self.ctx),
            cfg,
            inject: AtomicU32::new(0),
        }
    }

    /// The adapter's name and graphics API.
    pub fn adapter_name(&self) -> String {
        self.ctx.adapter_name()
    }

    /// Runs every kernel once (a two-term lincomb per curve and a `mul_base` per curve, on
    /// public test scalars) and compares with the curve crates. A circuit breaker calls this to
    /// decide whether the device is healthy again.
    pub fn probe(&self) -> Result<(), AccelError> {
        let s = SecpScalar::from(0x1234_5678_9abc_def1u64);
        let g = ProjectivePoint::GENERATOR;
        let p = g * SecpScalar::from(77u64);
        let job = LincombJob::new(vec![(s, p), (-s - s, g)]);
        let got = self.secp256k1_lincomb_vartime(std::slice::from_ref(&job))?;
        if got != [p * s - g * (s + s)] {
            return Err(device_err("secp256k1 lincomb probe gave a wrong result"));
        }
        let es = EdScalar::from(0x1234_5678_9abc_def1u64);
        let b = curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
        let ep = b * EdScalar::from(77u64);
        let ejob = LincombJob::new(vec![
            (es, EdPoint::from(ep)),
            (es + es, EdPoint::generator()),
        ]);
        let got = self.ed25519_lincomb_vartime(std::slice::from_ref(&ejob))?;
        if got != [EdPoint::from(ep * es + b * (es + es))] {
            return Err(device_err("ed25519 lincomb probe gave a wrong result"));
        }
        let k = Zeroizing::new(codec::secp_scalar_words(&[s]));
        let out = self.ctx.mul_base(CurveId::Secp, &k, false, &self.cfg)?;
        if ProjectivePoint::from(codec::secp_point_from_words(&out)?) != g * s {
            return Err(device_err("secp256k1 mul_base probe gave a wrong result"));
        }
        let k = Zeroizing::new(codec::ed_scalar_words(&[es]));
        let out = self.ctx.mul_base(CurveId::Ed, &k, false, &self.cfg)?;
        if codec::ed_point_from_words(&out)?.to_edwards() != b * es {
            return Err(device_err("ed25519 mul_base probe gave a wrong result"));
        }
        Ok(())
    }

    /// Makes the next `n` GPU batches fail with a genuine wgpu validation error (an output
    /// buffer created without storage usage), for testing the failure path. Each such batch
    /// returns [`AccelError::Device`].
    pub fn inject_failures(&self, n: u32) {
        self.inject.store(n, Ordering::SeqCst);
    }

    fn take_injection(&self) -> bool {
        self.inject
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |v| v.checked_sub(1))
            .is_ok()
    }

    fn refuse_secret(&self, curve: Curve) -> Result<(), AccelError> {
        if self.cfg.secret_ops {
            Ok(())
        } else {
            Err(AccelError::Unsupported {
                backend: BACKEND,
                op: Op::MulBase,
                curve,
            })
        }
    }
}

/// Splits each job into chunks of at most [`codec::CHUNK_TERMS`] terms: (first term, count)
/// and the job each belongs to.
fn chunk_jobs<S, P>(jobs: &[LincombJob<S, P>]) -> (Vec<(u32, u32)>, Vec<usize>) {
    let mut spans = Vec::new();
    let mut owner = Vec::new();
    let mut start = 0usize;
    for (j, job) in jobs.iter().enumerate() {
        let mut t = 0;
        while t < job.terms.len() {
            let count = codec::CHUNK_TERMS.min(job.terms.len() - t);
            spans.push(((start + t) as u32, count as u32));
            owner.push(j);
            t += count;
        }
        start += job.terms.len();
    }
    (spans, owner)
}

impl Accelerator for GpuBackend {
    fn capabilities(&self) -> Capabilities {
        let ops = Capabilities::all_ops()
            .into_iter()
            .filter(|&(_, op)| self.cfg.secret_ops || op != Op::MulBase)
            .collect();
        Capabilities {
            backend: BACKEND,
            device_id: self.ctx.device_id(),
            device: format!(
                "{}; {}; normalisation, compression and decompression on the host",
                self.ctx.adapter_name(),
                match self.ctx.field() {
                    FieldImpl::U32 => "13-bit limbs in u32",
                    FieldImpl::U64 => "26-bit limbs with u64 products (SHADER_INT64)",
                }
            ),
            ops,
            secret_ops: self.cfg.secret_ops,
            lanes: context::WORKGROUP as usize,
        }
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.refuse_secret(Curve::Secp256k1)?;
        if scalars.is_empty() {
            return Ok(Vec::new());
        }
        let words = Zeroizing::new(codec::secp_scalar_words(scalars));
        let out = self
            .ctx
            .mul_base(CurveId::Secp, &words, self.take_injection(), &self.cfg)?;
        out.chunks_exact(codec::SECP_OUT_WORDS)
            .map(|w| codec::secp_point_from_words(w).map(ProjectivePoint::from))
            .collect()
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        self.refuse_secret(Curve::Ed25519)?;
        if scalars.is_empty() {
            return Ok(Vec::new());
        }
        let words = Zeroizing::new(codec::ed_scalar_words(scalars));
        let out = self
            .ctx
            .mul_base(CurveId::Ed, &words, self.take_injection(), &self.cfg)?;
        out.chunks_exact(codec::ED_OUT_WORDS)
            .map(codec::ed_point_from_words)
            .collect()
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        let (spans, owner) = chunk_jobs(jobs);
        let mut results = vec![ProjectivePoint::IDENTITY; jobs.len()];
        if spans.is_empty() {
            return Ok(results);
        }
        let (pts, digits) = codec::secp_terms(jobs, self.ctx.field());
        let out = self.ctx.lincomb(
            CurveId::Secp,
            &pts,
            codec::SECP_PT_WORDS,
            &digits,
            &spans,
            self.take_injection(),
            &self.cfg,
        )?;
        for (w, &job) in out.chunks_exact(codec::SECP_OUT_WORDS).zip(&owner) {
            results[job] += codec::secp_point_from_words(w)?;
        }
        Ok(results)
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        let (spans, owner) = chunk_jobs(jobs);
        let mut results = vec![EdPoint::identity(); jobs.len()];
        if spans.is_empty() {
            return Ok(results);
        }
        let (encodings, digits) = codec::ed_terms(jobs);
        let out = self.ctx.lincomb(
            CurveId::Ed,
            &encodings,
            codec::ED_ENC_WORDS,
            &digits,
            &spans,
            self.take_injection(),
            &self.cfg,
        )?;
        for (w, &job) in out.chunks_exact(codec::ED_OUT_WORDS).zip(&owner) {
            // A job of one chunk keeps the GPU's affine result; longer ones are summed here.
            results[job] = results[job] + codec::ed_point_from_words(w)?;
        }
        Ok(results)
    }

    /// On the host (k256 keeps projective coordinates private, so there is nothing to send).
    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        Ok(accel_api::secp256k1_normalize_batch_serial(points))
    }
}
