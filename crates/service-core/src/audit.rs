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
    let json = serde_json::to_vec(event).map_err(|e| corrupt("audit event", e))?;
    Ok(chain_mac(key, prev, &json)?.to_vec())
}

/// The chain MAC over an event's canonical JSON.
fn chain_mac(key: &ChainKey, prev: &[u8], event_json: &[u8]) -> Result<[u8; 32], StoreError> {
    let mut h = <Hmac<Sha256> as Mac>::new_from_slice(key.0.as_slice())
        .map_err(|e| StoreError::Engine(Box::new(std::io::Error::other(e.to_string()))))?;
    h.update(b"tessera/v1/audit\0");
    h.update(prev);
    h.update(event_json);
    Ok(h.finalize().into_bytes().into())
}

/// Appends the lowercase hex of `bytes` to `out`.
fn push_hex(out: &mut Vec<u8>, bytes: &[u8]) {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0xf)]);
    }
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

    /// [`Envelope::seal`] and [`Envelope::encode`] in one pass, the event serialized once:
    /// replaces the contents of `out` with the stored bytes of `event` chained after `prev`
    /// and returns the new envelope's hash. What a store appending many events in one
    /// transaction uses, with one buffer for all.
    pub fn seal_into(
        key: &ChainKey,
        prev: &[u8],
        event: &Event,
        out: &mut Vec<u8>,
    ) -> Result<[u8; 32], StoreError> {
        // The same bytes as serde_json writes for the struct: its fields in declaration
        // order, the hashes as lowercase hex strings (no escaping needed), no whitespace.
        out.clear();
        out.extend_from_slice(b"{\"prev\":\"");
        push_hex(out, prev);
        out.extend_from_slice(b"\",\"hash\":\"");
        let hash_at = out.len();
        out.extend_from_slice(b"\",\"event\":");
        let event_at = out.len();
        serde_json::to_writer(&mut *out, event).map_err(|e| corrupt("audit event", e))?;
        let hash = chain_mac(key, prev, &out[event_at..])?;
        let mut hex = Vec::with_capacity(64);
        push_hex(&mut hex, &hash);
        out.splice(hash_at..hash_at, hex);
        out.push(b'}');
        Ok(hash)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::chain::{ChainKind, TransferView, TxSummary};

    fn events() -> Vec<Event> {
        vec![
            Event::SignatureIssued {
                key_id: "k-1".into(),
                message_sha256: "ab".repeat(32),
                client: String::new(),
                transaction: None,
                at_ms: 1_765_000_000_000,
            },
            Event::SignatureIssued {
                key_id: "wallet \"hot\"\\é\u{1}".into(),
                message_sha256: "00".repeat(32),
                client: "desk-3".into(),
                transaction: Some(TxSummary {
                    chain: ChainKind::Ethereum,
                    kind: "eip1559".into(),
                    network: Some("1".into()),
                    transfers: vec![TransferView {
                        to: "0x00000000000000000000000000000000000000aa".into(),
                        amount: "1000000000000000000".into(),
                    }],
                    fee: None,
                }),
                at_ms: 0,
            },
            Event::KeyCreated {
                key_id: "k-2".into(),
                scheme: crate::Scheme::Bip340,
                threshold: 2,
                parties: 3,
                origin: KeyOrigin::Dkg,
                client: String::new(),
                at_ms: 7,
            },
            Event::AccessDenied {
                client: "intruder".into(),
                action: "Sign".into(),
                key_id: None,
                at_ms: u64::MAX,
            },
        ]
    }

    /// The one-pass encoding stores exactly what sealing and encoding store, and the chain it
    /// builds verifies; a reused buffer keeps nothing of the previous event.
    #[test]
    fn seal_into_stores_what_seal_and_encode_store() {
        let key = ChainKey::new([9; 32]);
        let mut prev = GENESIS.to_vec();
        let mut out = b"left over from an earlier, much longer event".repeat(20);
        let mut stored = Vec::new();
        for (seq, event) in events().into_iter().enumerate() {
            let hash = Envelope::seal_into(&key, &prev, &event, &mut out).unwrap();
            let sealed = Envelope::seal(&key, &prev, event).unwrap();
            assert_eq!(out, sealed.encode().unwrap(), "event {seq}");
            assert_eq!(hash.to_vec(), sealed.hash);
            let decoded = Envelope::decode(seq as u64, &out).unwrap();
            assert_eq!(decoded, sealed);
            stored.push(Ok((seq as u64, decoded)));
            prev = hash.to_vec();
        }
        assert_eq!(verify_chain(&key, None, stored).unwrap(), 4);
    }

    /// The hash depends on the key, the previous hash and every byte of the event.
    #[test]
    fn seal_into_hash_binds_key_prev_and_event() {
        let key = ChainKey::new([9; 32]);
        let event = events().remove(1);
        let mut out = Vec::new();
        let h = Envelope::seal_into(&key, &GENESIS, &event, &mut out).unwrap();
        let other_key = Envelope::seal_into(&ChainKey::new([8; 32]), &GENESIS, &event, &mut out);
        assert_ne!(h, other_key.unwrap());
        assert_ne!(
            h,
            Envelope::seal_into(&key, &[1; 32], &event, &mut out).unwrap()
        );
        let mut changed = event;
        if let Event::SignatureIssued { at_ms, .. } = &mut changed {
            *at_ms += 1;
        }
        assert_ne!(
            h,
            Envelope::seal_into(&key, &GENESIS, &changed, &mut out).unwrap()
        );
    }
}
