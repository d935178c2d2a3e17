#![doc = include_str!("../README.md")]
//!
//! # Map
//!
//! - [`Suite`] — the ciphersuites: [`Ed25519Sha512`] (RFC 9591 §6.1), [`Secp256k1Sha256`]
//!   (RFC 9591 §6.5) and [`Secp256k1Tr`] (BIP340 output, compatible with `frost-secp256k1-tr`).
//! - [`Ed25519Sha512::secret_scalar_from_seed`] — an RFC 8032 private key (seed) as the secret
//!   scalar that [`embedded::import`] takes.
//! - [`keys`] — identifiers, key shares, public key packages, trusted-dealer split, [`KeySet`].
//! - [`round1`], [`round2`], [`aggregate_batch`] — the per-party signing state machine,
//!   batched over sessions.
//! - [`dkg`] — distributed key generation with a confirmation round.
//! - [`embedded`] — all parties in one process: the service's entry points.
//! - [`verify_ed25519_batch`], [`verify_bip340_batch`] — batched plain-signature verification.
//!
//! See `docs/frost.md` in the repository for the protocol as implemented.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod error;
mod hash;
#[cfg(test)]
mod probe;
mod session;
mod suite;
mod verify;

pub mod dkg;
pub mod embedded;
pub mod keys;
pub mod round1;
pub mod round2;

pub use error::Error;
pub use keys::{GroupKey, Identifier, KeySet, KeyShare, PartyKey, PublicKeyPackage};
pub use round2::{
    SignAggregateItem, SignatureShare, SigningPackage, aggregate_batch, sign_and_aggregate_batch,
};
pub use suite::{Ed25519Sha512, Point, PointBytes, Scalar, Secp256k1Sha256, Secp256k1Tr, Suite};
pub use verify::{verify_bip340_batch, verify_ed25519_batch};

/// The Ed25519 suite the service uses.
pub type Ed25519Suite = Ed25519Sha512;
/// The BIP340/Taproot suite the service uses.
pub type Bip340Suite = Secp256k1Tr;

/// BIP341 tweak applied to the group key when signing with a BIP340 suite.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TaprootTweak {
    /// No tweak: a plain BIP340 signature under the internal x-only key.
    #[default]
    None,
    /// BIP86 key-path spend: output key `Q = P + H_TapTweak(P.x)·G`.
    KeyPath,
    /// Output key committing to a script tree: `Q = P + H_TapTweak(P.x ‖ root)·G`.
    ScriptRoot([u8; 32]),
}

/// A finished signature and the key it verifies under.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignatureOutput {
    /// The signature: 64 bytes for Ed25519 and BIP340 (`R.x ‖ s`), 65 for `Secp256k1Sha256`.
    pub signature: Vec<u8>,
    /// The key it verifies under: the 32-byte Ed25519 key, the 32-byte x-only (output) key for
    /// BIP340, or the 33-byte compressed key for `Secp256k1Sha256`.
    pub verifying_key: Vec<u8>,
}
