//! The crate's error type.

use accel_api::AccelError;

/// Everything that can go wrong in key generation and signing. Never carries secret data.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The threshold is zero.
    #[error("threshold must be at least 1")]
    ZeroThreshold,
    /// The threshold exceeds the number of parties.
    #[error("invalid threshold: {threshold} is greater than the number of parties {parties}")]
    InvalidThreshold {
        /// Requested threshold.
        threshold: u16,
        /// Requested number of parties.
        parties: u16,
    },
    /// Too many parties.
    #[error("too many parties: {parties} (at most {max})")]
    TooManyParties {
        /// Requested number of parties.
        parties: u16,
        /// The largest number supported.
        max: u16,
    },
    /// An identifier was zero.
    #[error("identifiers must be non-zero")]
    ZeroIdentifier,
    /// The same identifier appears twice.
    #[error("duplicate identifier {0}")]
    DuplicateIdentifier(u16),
    /// An identifier is not part of the key or the session.
    #[error("unknown identifier {0}")]
    UnknownIdentifier(u16),
    /// Fewer signers than the threshold, or commitments and shares that do not match.
    #[error("wrong number of signers: got {got}, need {need}")]
    WrongSignerCount {
        /// Signers present.
        got: usize,
        /// Signers needed.
        need: usize,
    },
    /// This party's commitment in the signing package is not the one its nonces produced.
    #[error("signing package does not contain this party's commitment")]
    CommitmentMismatch,
    /// A secret key to import has the wrong length, is not canonical, or is zero.
    #[error("invalid secret key encoding")]
    InvalidSecretKey,
    /// A point, scalar or message failed to decode or validate.
    #[error("malformed encoding: {0}")]
    Malformed(&'static str),
    /// A Taproot tweak was requested for a suite without BIP340 output.
    #[error("taproot tweaks apply only to the BIP340 suite")]
    TaprootNotSupported,
    /// The key shares do not interpolate to the group key.
    #[error("key shares are inconsistent with the group key")]
    InconsistentKeyShares,
    /// Named parties misbehaved: bad signature share, bad DKG share, bad proof of knowledge or a
    /// mismatched DKG confirmation.
    #[error("misbehaving parties: {0:?}")]
    Culprits(Vec<u16>),
    /// The aggregate signature is invalid but no share could be blamed (a bug or a bad key).
    #[error("aggregate signature failed verification")]
    InvalidSignature,
    /// The accelerator failed.
    #[error("accelerator: {0}")]
    Accel(#[from] AccelError),
}
