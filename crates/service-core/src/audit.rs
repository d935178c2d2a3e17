//! The audit trail's events and their hash chain: each stored envelope carries the previous
//! envelope's hash, so editing, reordering or deleting any stored event breaks the chain from
//! that point on. The chain's hashes are MACs (HMAC-SHA256 under a [`ChainKey`] derived from
//! the KEK), so whoever can write the store but does not hold the KEK cannot recompute the
//! chain after an edit either. Every storage adapter stores the same envelopes, so one verifier
//! serves all.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::Scheme;
use crate::ports::{KeyOrigin, StoreError};

/// An entry of the append-only audit trail. Never carries secrets.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A key was generated or imported.
    KeyCreated {
        /// The key.
        key_id: String,
        /// Its scheme.
        scheme: Scheme,
        /// t.
        threshold: u32,
        /// n.
        parties: u32,
        /// How it was made.
        origin: KeyOrigin,
        /// The client that created it (absent when authentication was off).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        client: String,
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// A signature was issued.
    SignatureIssued {
        /// The key.
        key_id: String,
        /// SHA-256 of the signed message, hex.
        message_sha256: String,
        /// The client it was issued to (absent when authentication was off).
        #[serde(default, skip_serializing_if = "String::is_empty")]
        client: String,
        /// What the signature authorises, decoded from the signed bytes, when it was made by
        /// `SignTransaction`, `SignTypedData` or `SignPersonalMessage`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        transaction: Option<crate::chain::TxSummary>,
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// A client's request was refused by its policy.
    AccessDenied {
        /// The client.
        client: String,
        /// What it asked to do (the RPC).
        action: String,
        /// The key it named, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
        /// When, ms since the epoch.
        at_ms: u64,
    },
}

/// The key of the audit chain's MACs: `Kek::subkey("audit-chain")` in a deployment.
#[derive(Clone)]
pub struct ChainKey(Zeroizing<[u8; 32]>);

impl ChainKey {
    /// A chain key from its bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        Self(Zeroizing::new(bytes))
    }

    /// The chain key of a KEK.
    pub fn of(kek: &crate::Kek) -> Self {
        Self(kek.subkey("audit-chain"))
    }
}

impl std::fmt::Debug for ChainKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainKey(<redacted>)")
    }
}

/// How an event is stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Envelope {
    /// Hash of the previous envelope (zeros for the first).
    #[serde(with = "hex::serde")]
    pub prev: Vec<u8>,
    /// HMAC-SHA256 under the [`ChainKey`] of "tessera/v1/audit\0" ‖ prev ‖ canonical JSON of
    /// `event`.
    #[serde(with = "hex::serde")]
    pub hash: Vec<u8>,
    /// The event.
    pub event: Event,
}

/// The `prev` of the first envelope.
pub const GENESIS: [u8; 32] = [0; 32];

fn corrupt(what: &str, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        what: what.to_owned(),
        source: Box::new(e),
    }
}

fn chain_hash(key: &ChainKey, prev: &[u8], event: &Event) -> Result<Vec<u8>, StoreError> {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key.0.as_slice())
        .map_err(|e| StoreError::Engine(Box::new(std::io::Error::other(e.to_string()))))?;
    h.update(b"tessera/v1/audit\0");
    h.update(prev);
    h.update(&serde_json::to_vec(event).map_err(|e| corrupt("audit event", e))?);
    Ok(h.finalize().into_bytes().to_vec())
}

impl Envelope {
    /// Chains `event` after the envelope whose hash is `prev`.
    pub fn seal(key: &ChainKey, prev: &[u8], event: Event) -> Result<Self, StoreError> {
        let hash = chain_hash(key, prev, &event)?;
        Ok(Self {
            prev: prev.to_vec(),
            hash,
            event,
        })
    }

    /// The stored bytes.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| corrupt("audit event", e))
    }

    /// Decodes stored bytes (event `seq`, for the error).
    pub fn decode(seq: u64, bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| corrupt(&format!("audit event {seq}"), e))
    }
}

/// Where the stored chain starts once older events were exported and pruned
/// ([`AuditLog::prune_audit`](crate::AuditLog::prune_audit)): the sequence number of the first
/// kept event and the hash it chains to, authenticated under the [`ChainKey`] so that whoever
/// cannot compute the chain cannot move the start either.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The sequence number of the first kept event (the next one when none is kept).
    pub next_seq: u64,
    /// The hash of the last pruned event: the `prev` of the first kept one.
    #[serde(with = "hex::serde")]
    pub prev: Vec<u8>,
    /// HMAC-SHA256 under the [`ChainKey`] of "tessera/v1/audit-checkpoint\0" ‖ `next_seq`
    /// (8 bytes, big-endian) ‖ `prev`.
    #[serde(with = "hex::serde")]
    pub mac: Vec<u8>,
}

fn checkpoint_mac(key: &ChainKey, next_seq: u64, prev: &[u8]) -> Result<Vec<u8>, StoreError> {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key.0.as_slice())
        .map_err(|e| StoreError::Engine(Box::new(std::io::Error::other(e.to_string()))))?;
    h.update(b"tessera/v1/audit-checkpoint\0");
    h.update(&next_seq.to_be_bytes());
    h.update(prev);
    Ok(h.finalize().into_bytes().to_vec())
}

impl Checkpoint {
    /// A checkpoint before event `next_seq`, whose predecessor's hash is `prev`.
    pub fn seal(key: &ChainKey, next_seq: u64, prev: &[u8]) -> Result<Self, StoreError> {
        Ok(Self {
            next_seq,
            prev: prev.to_vec(),
            mac: checkpoint_mac(key, next_seq, prev)?,
        })
    }

    /// Checks the checkpoint's MAC.
    pub fn verify(&self, key: &ChainKey) -> Result<(), StoreError> {
        let mac = checkpoint_mac(key, self.next_seq, &self.prev)?;
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            mac.as_slice(),
            self.mac.as_slice(),
        )) {
            Ok(())
        } else {
            Err(StoreError::AuditChainBroken {
                seq: self.next_seq,
                why: "the checkpoint where the kept chain starts does not match its MAC",
            })
        }
    }

    /// The stored bytes.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        serde_json::to_vec(self).map_err(|e| corrupt("audit checkpoint", e))
    }

    /// Decodes stored bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| corrupt("audit checkpoint", e))
    }
}

/// Checks a chain given in sequence order, from the genesis or from `start` (after pruning);
/// returns the number of events checked or the first broken one.
pub fn verify_chain(
    key: &ChainKey,
    start: Option<&Checkpoint>,
    envelopes: impl IntoIterator<Item = Result<(u64, Envelope), StoreError>>,
) -> Result<u64, StoreError> {
    let (mut prev, mut expected) = match start {
        None => (GENESIS.to_vec(), 0u64),
        Some(c) => {
            c.verify(key)?;
            (c.prev.clone(), c.next_seq)
        }
    };
    let mut count = 0u64;
    for entry in envelopes {
        let (seq, env) = entry?;
        let broken = |why| StoreError::AuditChainBroken { seq, why };
        if seq != expected {
            return Err(broken("an event before it is missing"));
        }
        if env.prev != prev {
            return Err(broken("previous-hash mismatch"));
        }
        let mac = chain_hash(key, &prev, &env.event)?;
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            mac.as_slice(),
            env.hash.as_slice(),
        )) {
            return Err(broken("content does not match its hash"));
        }
        prev = env.hash;
        expected += 1;
        count += 1;
    }
    Ok(count)
}
