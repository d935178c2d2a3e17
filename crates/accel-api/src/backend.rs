//! The [`Accelerator`] trait, capabilities and the backend choice.

use std::fmt;
use std::str::FromStr;

use curve25519_dalek::edwards::CompressedEdwardsY;
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};

use crate::{AccelError, Curve, EdPoint, LincombJob, Op, SchnorrItem, Verdict};

/// Which backend to run; the `--backend` flag and the `accel.backend` config field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum BackendKind {
    /// The reference backend (k256, curve25519-dalek, rayon).
    Cpu,
    /// Multi-lane AVX-512 IFMA / AVX2 kernels.
    Simd,
    /// wgpu compute shaders.
    Gpu,
    /// Route each batch to the backend whose measured cost model is cheapest for it.
    #[default]
    Auto,
}

impl BackendKind {
    /// The name used on the command line and in config.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Simd => "simd",
            BackendKind::Gpu => "gpu",
            BackendKind::Auto => "auto",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for BackendKind {
    type Err = AccelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "cpu" => Ok(BackendKind::Cpu),
            "simd" => Ok(BackendKind::Simd),
            "gpu" => Ok(BackendKind::Gpu),
            "auto" => Ok(BackendKind::Auto),
            _ => Err(AccelError::UnknownBackend(s.to_owned())),
        }
    }
}

/// Which backend an accelerator is: its identity in capabilities, routing policies, errors,
/// metrics labels and stored cost models.
///
/// [`BackendKind`] is what the operator asks for (`--backend`); this is what answers. The
/// router ([`crate::AutoRouter`]) reports [`BackendId::Router`] (`auto`) under
/// [`crate::Policy::Cheapest`] and the preferred backend's id under [`crate::Policy::Prefer`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum BackendId {
    /// The reference backend (`backend-cpu`).
    Cpu,
    /// The multi-lane backend (`backend-simd`).
    Simd,
    /// The wgpu compute backend (`backend-gpu`).
    Gpu,
    /// The cost-based router over other backends (named `auto`).
    Router,
}

impl BackendId {
    /// Every backend id, in a fixed order.
    pub const ALL: [BackendId; 4] = [
        BackendId::Cpu,
        BackendId::Simd,
        BackendId::Gpu,
        BackendId::Router,
    ];

    /// The stable lower-case name: `cpu`, `simd`, `gpu`, or `auto` for the router. Used in
    /// metrics labels, logs, reports and cost-model files.
    pub fn as_str(self) -> &'static str {
        match self {
            BackendId::Cpu => "cpu",
            BackendId::Simd => "simd",
            BackendId::Gpu => "gpu",
            BackendId::Router => "auto",
        }
    }
}

impl fmt::Display for BackendId {
    /// The name, honouring width and alignment (`{:<5}`) for tables.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for BackendId {
    type Err = AccelError;

    /// Parses [`BackendId::as_str`] (case-insensitive, surrounding blanks ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let name = s.trim().to_ascii_lowercase();
        BackendId::ALL
            .into_iter()
            .find(|b| b.as_str() == name)
            .ok_or_else(|| AccelError::UnknownBackend(s.to_owned()))
    }
}

/// What a backend can do on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Capabilities {
    /// Which backend this is.
    pub backend: BackendId,
    /// Stable machine-readable id of the hardware path in use, for matching stored cost
    /// models: `<backend>:<path details>`, e.g. `cpu:x86_64:serial`, `simd:avx512ifma`,
    /// `gpu:10de:2684:u64` (PCI vendor and device id, field variant). It changes only when
    /// the measured costs may change (another instruction set, adapter or kernel variant).
    pub device_id: String,
    /// Human-readable description of the hardware path in use (instruction set, adapter name),
    /// for logs and reports; not for matching.
    pub device: String,
    /// The (curve, op) pairs the backend implements.
    pub ops: Vec<(Curve, Op)>,
    /// Whether secret-class operations (`mul_base`) may be routed to this backend.
    pub secret_ops: bool,
    /// Items processed side by side (vector lanes, GPU invocations per workgroup); 1 if serial.
    pub lanes: usize,
}

impl Capabilities {
    /// Whether the backend implements `op` on `curve`.
    pub fn supports(&self, curve: Curve, op: Op) -> bool {
        self.ops.contains(&(curve, op))
    }

    /// Every (curve, op) pair.
    pub fn all_ops() -> Vec<(Curve, Op)> {
        Curve::ALL
            .iter()
            .flat_map(|c| Op::ALL.iter().map(move |o| (*c, *o)))
            .collect()
    }
}

/// The accelerator port. Every method takes a whole batch of independent items and returns one
/// output per item, in order. Implementations must be usable from many threads at once.
///
/// `*_mul_base` receives **secret** scalars and must run in constant time. The `*_vartime`
/// methods receive public data only.
pub trait Accelerator: Send + Sync + fmt::Debug {
    /// What this backend can do on this host.
    fn capabilities(&self) -> Capabilities;

    /// k·G on secp256k1 for each secret k (constant time).
    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError>;

    /// k·B on edwards25519 for each secret k (constant time). A backend that computes in its
    /// own coordinates returns affine points ([`EdPoint::from_affine_vartime`]), so that no
    /// result needs a square root.
    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError>;

    /// Σ sᵢ·Pᵢ on secp256k1 for each job (public data). An empty job yields the identity.
    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError>;

    /// Σ sᵢ·Pᵢ on edwards25519 for each job (public data). An empty job yields the identity.
    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError>;

    /// Checks `s·G = R + c·P` for every item, naming the ones that fail.
    ///
    /// The default checks the whole batch with one random linear combination and, only when it
    /// fails, each item on its own (see [`crate::verify_batch_rlc_secp256k1`]).
    fn secp256k1_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
    ) -> Result<Verdict, AccelError> {
        crate::verify_batch_rlc_secp256k1(self, items)
    }

    /// Checks `8·(s·B − R − c·A) = 𝒪` for every item, naming the ones that fail.
    ///
    /// The default checks the whole batch with one random linear combination and, only when it
    /// fails, each item on its own (see [`crate::verify_batch_rlc_ed25519`]).
    fn ed25519_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<EdScalar, EdPoint>],
    ) -> Result<Verdict, AccelError> {
        crate::verify_batch_rlc_ed25519(self, items)
    }

    /// Affine form of each point (batch inversion). The identity maps to the affine identity.
    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError>;

    /// Canonical compressed encoding of each point (affine points are encoded as they are; the
    /// others with one batch inversion). The default is [`EdPoint::compress_batch`].
    fn ed25519_compress_batch(
        &self,
        points: &[EdPoint],
    ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        Ok(EdPoint::compress_batch(points))
    }

    /// The point of each 33-byte SEC1 compressed encoding (prefix 2 or 3, x < p, x³ + 7 a
    /// square), `None` for an encoding that is not one. Public data. The default decodes one
    /// at a time with `k256`.
    fn secp256k1_decompress_batch(
        &self,
        encodings: &[[u8; 33]],
    ) -> Result<Vec<Option<ProjectivePoint>>, AccelError> {
        Ok(encodings.iter().map(crate::secp256k1_decompress).collect())
    }

    /// The point of each canonical edwards25519 encoding (RFC 8032 §5.1.3: y < p, x recovered
    /// by a square root, no negative zero), `None` for an encoding that is not one. Public
    /// data; no subgroup check (points with a torsion component decode). The default decodes
    /// one at a time with curve25519-dalek ([`EdPoint::decompress_vartime`]).
    fn ed25519_decompress_batch(
        &self,
        encodings: &[[u8; 32]],
    ) -> Result<Vec<Option<EdPoint>>, AccelError> {
        Ok(encodings.iter().map(EdPoint::decompress_vartime).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_ids_round_trip_through_their_names() {
        for id in BackendId::ALL {
            assert_eq!(id.as_str().parse::<BackendId>(), Ok(id));
            assert_eq!(id.to_string(), id.as_str());
        }
        assert_eq!(BackendId::Router.as_str(), "auto");
        assert_eq!(" GPU ".parse::<BackendId>(), Ok(BackendId::Gpu));
        assert_eq!(format!("[{:<5}]", BackendId::Cpu), "[cpu  ]");
        assert_eq!(
            "tpu".parse::<BackendId>(),
            Err(AccelError::UnknownBackend("tpu".to_owned()))
        );
    }
}
