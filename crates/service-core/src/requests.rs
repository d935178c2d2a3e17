//! The use cases' request and result types: what API adapters build from their wire formats
//! and turn back into responses.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::coordinator::Cost;
use crate::ports::KeyRecord;
use crate::{Error, Scheme};

/// Request limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest Ed25519 message.
    pub max_message_bytes: usize,
    /// Most messages in one `SignBatch`.
    pub max_batch_messages: usize,
    /// Most parties of a FROST key (Ed25519, BIP340): its DKG's work grows with n².
    pub max_parties_frost: u32,
    /// Most parties of a threshold-ECDSA key: its state (pairwise OT) grows with n².
    pub max_parties_ecdsa: u32,
    /// Most CreateKey/ImportKey requests running at once.
    pub max_concurrent_keygen: usize,
    /// Most messages of SignBatch requests in flight at once, over all of them.
    pub max_batch_items_in_flight: usize,
}

/// A key's public information.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyView {
    /// Server-assigned id.
    pub key_id: String,
    /// Scheme.
    pub scheme: Scheme,
    /// Signing threshold t.
    pub threshold: u32,
    /// Number of parties n.
    pub parties: u32,
    /// Group public key (32 bytes; ECDSA: 33-byte compressed point).
    #[serde(with = "hex::serde")]
    pub public_key: Vec<u8>,
    /// Caller's label.
    pub label: String,
    /// Creation time, ms since the Unix epoch.
    pub created_at_ms: u64,
}

impl From<&KeyRecord> for KeyView {
    fn from(r: &KeyRecord) -> Self {
        Self {
            key_id: r.key_id.clone(),
            scheme: r.scheme,
            threshold: r.threshold,
            parties: r.parties,
            public_key: r.public_key.clone(),
            label: r.label.clone(),
            created_at_ms: r.created_at_ms,
        }
    }
}

/// `CreateKey`: a new key by distributed key generation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreateKey {
    /// Scheme.
    pub scheme: Scheme,
    /// Threshold t.
    pub threshold: u32,
    /// Parties n.
    pub parties: u32,
    /// Label.
    pub label: String,
    /// Optional idempotency key: a retry returns the key created the first time.
    pub idempotency_key: String,
}

/// `ImportKey`: a trusted-dealer split of an existing secret key.
pub struct ImportKey {
    /// Scheme.
    pub scheme: Scheme,
    /// The secret key (Ed25519 seed, BIP340 scalar, ECDSA scalar; 32 bytes).
    pub secret_key: Zeroizing<Vec<u8>>,
    /// Threshold t.
    pub threshold: u32,
    /// Parties n.
    pub parties: u32,
    /// Label.
    pub label: String,
    /// Optional idempotency key.
    pub idempotency_key: String,
}

impl std::fmt::Debug for ImportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportKey")
            .field("scheme", &self.scheme)
            .field("secret_key", &"<redacted>")
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// `Sign` and `SignBatch`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignRequest {
    /// The key.
    pub key_id: String,
    /// The messages (one for `Sign`).
    pub messages: Vec<Vec<u8>>,
    /// BIP340 only: unset, empty (BIP86 key path) or a 32-byte script root.
    pub taproot_merkle_root: Option<Vec<u8>>,
    /// Optional idempotency key (single-message requests).
    pub idempotency_key: String,
}

/// `Verify`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyRequest {
    /// Scheme.
    pub scheme: Scheme,
    /// Public key.
    pub public_key: Vec<u8>,
    /// Message.
    pub message: Vec<u8>,
    /// Signature.
    pub signature: Vec<u8>,
}

/// A page of keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyPage {
    /// The keys.
    pub keys: Vec<KeyView>,
    /// Token of the next page; empty at the end.
    pub next_page_token: String,
}

/// `GetStatus`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusView {
    /// Service version.
    pub version: String,
    /// The configured backend (`auto`, `cpu`, …).
    pub backend: String,
    /// Deployment mode.
    pub mode: String,
    /// Keys held.
    pub key_count: u64,
}

/// A successful use case: its value, the scheme it concerned and what it cost.
#[derive(Clone, Debug, PartialEq)]
pub struct Outcome<T> {
    /// The result.
    pub value: T,
    /// The request's scheme, when it has one.
    pub scheme: Option<Scheme>,
    /// Worker CPU time and backend.
    pub cost: Cost,
}

/// A failed use case, with the request's scheme when it was known before the failure (for
/// metrics).
#[derive(Debug)]
pub struct Failure {
    /// What went wrong.
    pub error: Error,
    /// The request's scheme, if known.
    pub scheme: Option<Scheme>,
}

impl From<Error> for Failure {
    fn from(error: Error) -> Self {
        Self {
            error,
            scheme: None,
        }
    }
}

/// What a use case returns.
pub type UseCase<T> = Result<Outcome<T>, Failure>;
