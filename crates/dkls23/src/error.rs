//! The crate's error type.

/// Errors of key generation and signing. Variants that come from a failed check name the
/// culprit party (1-based id).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// Bad parameters (threshold, party count, signer set, message set).
    #[error("invalid parameters: {0}")]
    InvalidParameters(&'static str),
    /// A message could not be decoded or has the wrong shape.
    #[error("malformed message from party {culprit}: {what}")]
    Malformed {
        /// The sender of the message.
        culprit: PartyIdT,
        /// What was wrong.
        what: &'static str,
    },
    /// A check of the Verified Simplest OT base OT failed (the base-OT sender's proof of
    /// knowledge, the receiver's responses, or the sender's openings).
    #[error("base OT check failed; culprit party {culprit}")]
    BaseOtCheck {
        /// The party whose base-OT message failed the check.
        culprit: PartyIdT,
    },
    /// The KOS OT-extension correlation check failed (the pair's OT state is discarded).
    #[error("OT extension consistency check failed; culprit party {culprit}")]
    OtConsistency {
        /// The OT-extension receiver that cheated.
        culprit: PartyIdT,
    },
    /// The two-party multiplication consistency check failed (the pair's OT state is discarded).
    #[error("multiplication consistency check failed; culprit party {culprit}")]
    MultiplicationConsistency {
        /// The multiplication sender (Alice) that cheated.
        culprit: PartyIdT,
    },
    /// A commitment did not open to the revealed nonce point.
    #[error("commitment opening failed; culprit party {culprit}")]
    CommitmentMismatch {
        /// The party whose opening is wrong.
        culprit: PartyIdT,
    },
    /// A multiplication output share is inconsistent with the sender's public values
    /// (Γ check of DKLs23 Protocol 3.6).
    #[error("inconsistent multiplication share; culprit party {culprit}")]
    BadShare {
        /// The party whose share is wrong.
        culprit: PartyIdT,
    },
    /// A DKG share or proof of knowledge failed verification.
    #[error("DKG share or proof failed; culprit party {culprit}")]
    BadDkgShare {
        /// The dealer at fault.
        culprit: PartyIdT,
    },
    /// Key-generation confirmations differ: this party saw another transcript.
    #[error("key generation confirmation mismatch; culprit party {culprit}")]
    ConfirmationMismatch {
        /// The party whose confirmation differs.
        culprit: PartyIdT,
    },
    /// The signers' public key shares do not add up to the public key. With pairwise
    /// zero-sharing the single culprit cannot be identified; the signer set is named.
    #[error("public key shares do not sum to the public key (signers {signers:?})")]
    PublicKeyShareMismatch {
        /// The signers of the session.
        signers: Vec<PartyIdT>,
    },
    /// The OT state with this peer was discarded after a failed check; run a fresh base OT
    /// with it before signing together again.
    #[error("OT state with party {peer} was discarded; a fresh base OT is required")]
    OtStateDiscarded {
        /// The peer.
        peer: PartyIdT,
    },
    /// The combined signature does not verify (some signer sent a bad final share).
    #[error("combined signature does not verify")]
    InvalidSignature,
    /// Serialized key material could not be decoded.
    #[error("decode error: {0}")]
    Decode(&'static str),
    /// The accelerator failed.
    #[error("accelerator: {0}")]
    Accel(#[from] accel_api::AccelError),
}

type PartyIdT = u16;
