#![doc = include_str!("../README.md")]
//!
//! # Shape of the port
//!
//! Every operation is **batched**: one call carries many independent items, typically from many
//! concurrent signing sessions. Types at the port are the curve crates' own for secp256k1
//! (`k256`) and, for Ed25519 (edwards25519), `curve25519-dalek` scalars and the port's own
//! [`EdPoint`], which carries either a dalek point or the affine coordinates a backend
//! computed (so that no backend has to decompress its results).
//!
//! | operation | data class | timing |
//! |---|---|---|
//! | `*_mul_base` | secret scalars | constant time in every backend |
//! | `*_lincomb_vartime` | public | variable time allowed |
//! | `*_verify_batch_vartime` | public | variable time allowed |
//! | `secp256k1_normalize_batch`, `ed25519_compress_batch` | public | variable time allowed |
//! | `*_decompress_batch` | public | variable time allowed |
//!
//! Protocol code written generically over both curves uses the [`CurveGroup`] trait, which maps
//! each operation to the right method of an [`Accelerator`].
#![forbid(unsafe_code)]

mod backend;
mod bench;
mod cost;
mod curve;
mod edpoint;
mod error;
mod router;
mod types;
mod verify;

#[cfg(feature = "test-kit")]
pub mod kit;

pub use backend::{Accelerator, BackendId, BackendKind, Capabilities};
pub use bench::{BenchRow, bench_table, crossover};
pub use cost::{CostModel, OpCost, calibrate};
pub use curve::{CurveGroup, Ed25519, Secp256k1};
pub use edpoint::EdPoint;
pub use error::AccelError;
pub use router::{AutoRouter, BreakerState, Policy};
pub use types::{Curve, LincombJob, Op, SchnorrItem, Verdict};
pub use verify::{
    secp256k1_decompress, secp256k1_normalize_batch_serial, verify_batch_rlc_ed25519,
    verify_batch_rlc_secp256k1,
};

/// Re-exports of the curve crates whose types appear at the port.
pub mod curves {
    pub use curve25519_dalek;
    pub use k256;
}
