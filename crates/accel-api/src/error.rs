//! The port's error type.

/// Errors from an accelerator backend or from backend selection.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccelError {
    /// The backend was asked for by name but is not compiled into this binary.
    #[error("backend `{backend}` is not built into this binary: {hint}")]
    NotBuilt {
        /// The backend asked for.
        backend: crate::BackendId,
        /// How to get it.
        hint: String,
    },
    /// The backend is built but cannot run on this host (no AVX-512/AVX2, no GPU adapter…).
    #[error("backend `{backend}` is not usable on this host: {reason}")]
    Unavailable {
        /// The backend asked for.
        backend: crate::BackendId,
        /// What is missing.
        reason: String,
    },
    /// The backend does not implement this operation on this curve.
    #[error("backend `{backend}` does not support {op} on {curve}")]
    Unsupported {
        /// The backend.
        backend: crate::BackendId,
        /// The operation.
        op: crate::Op,
        /// The curve.
        curve: crate::Curve,
    },
    /// The device failed while running a batch (device lost, driver error, timeout).
    #[error("backend `{backend}` failed: {reason}")]
    Device {
        /// The backend.
        backend: crate::BackendId,
        /// What the device reported.
        reason: String,
    },
    /// An unknown backend name was given.
    #[error("unknown backend `{0}` (expected one of: cpu, simd, gpu, auto)")]
    UnknownBackend(String),
    /// `auto` was asked for with no backend able to run the operation.
    #[error("no backend available for {op} on {curve}")]
    NoBackend {
        /// The operation.
        op: crate::Op,
        /// The curve.
        curve: crate::Curve,
    },
}
