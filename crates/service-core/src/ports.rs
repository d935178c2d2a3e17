//! The ports the application drives: storage (keys, idempotency records, the audit log), the
//! sealer for key material, and the records that cross them. Adapters implement these traits:
//! `store-redb` (and the in-memory store of the `test-kit` feature) for storage, [`crate::Kek`]
//! for sealing.
//!
//! The storage traits are synchronous: adapters block on disk, and the use cases call them on
//! the blocking thread pool.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::Scheme;
use crate::audit::Event;

/// A boxed error from a storage engine, kept as the source of a [`StoreError`].
pub type EngineError = Box<dyn std::error::Error + Send + Sync>;

/// What a storage adapter can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The storage engine failed (I/O, transaction, commit).
    #[error("storage engine failed")]
    Engine(#[source] EngineError),
    /// A stored record could not be decoded.
    #[error("stored {what} is corrupt")]
    Corrupt {
        /// Which record.
        what: String,
        /// The decoding error.
        #[source]
        source: EngineError,
    },
    /// A key with this id is already stored.
    #[error("key id `{0}` already exists")]
    DuplicateKey(String),
    /// The audit hash chain does not verify from event `seq` on.
    #[error("audit chain broken at event {seq}: {why}")]
    AuditChainBroken {
        /// The first event that fails.
        seq: u64,
        /// What is wrong.
        why: &'static str,
    },
    /// The store is closed (shutting down).
    #[error("store is closed")]
    Closed,
    /// No key with this id is stored.
    #[error("key id `{0}` is not stored")]
    UnknownKey(String),
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// How a key came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyOrigin {
    /// Distributed key generation.
    Dkg,
    /// Trusted-dealer split of an imported secret key.
    Import,
}

/// A stored key: public metadata and the sealed key-material bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Server-assigned id.
    pub key_id: String,
    /// Scheme.
    pub scheme: Scheme,
    /// Signing threshold t.
    pub threshold: u32,
    /// Number of parties n.
    pub parties: u32,
    /// Group public key.
    #[serde(with = "hex::serde")]
    pub public_key: Vec<u8>,
    /// Caller's label.
    pub label: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
    /// The client that created the key (it may always use it); empty when authentication
    /// was off.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub owner: String,
    /// Key material sealed under the KEK with the key id as associated data.
    #[serde(with = "hex::serde")]
    pub sealed: Vec<u8>,
    /// [`Sealer::mac`] of [`KeyRecord::authenticated_bytes`]: the whole record, public
    /// metadata included, is authenticated under the KEK, so an edited public key, label or
    /// owner is detected rather than reported.
    #[serde(default, with = "hex::serde")]
    pub mac: Vec<u8>,
}

/// The first bytes of a key record in its binary form ([`KeyRecord::encode`]).
const RECORD_MAGIC: &[u8; 4] = b"TKR2";

/// A reader over a binary key record.
struct RecordReader<'a>(&'a [u8]);

impl<'a> RecordReader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], EngineError> {
        if self.0.len() < n {
            return Err("truncated key record".into());
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    /// A big-endian unsigned integer of `n` ≤ 8 bytes.
    fn int(&mut self, n: usize) -> Result<u64, EngineError> {
        Ok(self
            .take(n)?
            .iter()
            .fold(0u64, |a, b| (a << 8) | u64::from(*b)))
    }
    /// A byte string after its `n`-byte length.
    fn bytes(&mut self, n: usize) -> Result<Vec<u8>, EngineError> {
        let len = usize::try_from(self.int(n)?).map_err(|_| "key record field too long")?;
        Ok(self.take(len)?.to_vec())
    }
    /// UTF-8 text after its `n`-byte length.
    fn text(&mut self, n: usize) -> Result<String, EngineError> {
        Ok(String::from_utf8(self.bytes(n)?)?)
    }
}

/// Appends `b` after its length as an `n`-byte big-endian integer (`n` is 2 or 4).
fn put_field(out: &mut Vec<u8>, n: usize, b: &[u8], what: &str) -> Result<(), StoreError> {
    let len = b.len() as u64;
    if len >> (8 * n) != 0 {
        return Err(StoreError::Corrupt {
            what: what.to_owned(),
            source: format!("a field of {len} bytes does not fit a key record").into(),
        });
    }
    out.extend_from_slice(&len.to_be_bytes()[8 - n..]);
    out.extend_from_slice(b);
    Ok(())
}

impl KeyRecord {
    /// The record as stored: the magic bytes `TKR2`, then each field in declaration order, byte
    /// strings and text after a big-endian length (2 bytes for the key id, scheme, public key
    /// and MAC, 4 for the label, owner and sealed material), integers big-endian. Binary, so
    /// the sealed key material (tens of kilobytes for a threshold-ECDSA key set) is stored as
    /// it is, not hex-encoded at twice its size as in the JSON form written before it
    /// ([`KeyRecord::decode`] still reads that). A field too long for its length is
    /// [`StoreError::Corrupt`].
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let what = format!("key record {}", self.key_id);
        let mut out = Vec::with_capacity(
            64 + self.key_id.len()
                + self.public_key.len()
                + self.label.len()
                + self.owner.len()
                + self.sealed.len()
                + self.mac.len(),
        );
        out.extend_from_slice(RECORD_MAGIC);
        put_field(&mut out, 2, self.key_id.as_bytes(), &what)?;
        put_field(&mut out, 2, self.scheme.as_str().as_bytes(), &what)?;
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&self.parties.to_be_bytes());
        put_field(&mut out, 2, &self.public_key, &what)?;
        put_field(&mut out, 4, self.label.as_bytes(), &what)?;
        out.extend_from_slice(&self.created_at_ms.to_be_bytes());
        put_field(&mut out, 4, self.owner.as_bytes(), &what)?;
        put_field(&mut out, 4, &self.sealed, &what)?;
        put_field(&mut out, 2, &self.mac, &what)?;
        Ok(out)
    }

    /// Decodes a stored record ([`KeyRecord::encode`]'s form, or the JSON form of earlier
    /// versions); `what` names it in the error. Truncated input, trailing bytes, text that is
    /// not UTF-8 or an unknown scheme are [`StoreError::Corrupt`].
    pub fn decode(what: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |source: EngineError| StoreError::Corrupt {
            what: what.to_owned(),
            source,
        };
        let Some(body) = bytes.strip_prefix(RECORD_MAGIC) else {
            return serde_json::from_slice(bytes).map_err(|e| corrupt(Box::new(e)));
        };
        let mut r = RecordReader(body);
        let record = (|| -> Result<Self, EngineError> {
            Ok(KeyRecord {
                key_id: r.text(2)?,
                scheme: r
                    .text(2)?
                    .parse()
                    .map_err(|_| "unknown scheme in key record")?,
                threshold: r.int(4)? as u32,
                parties: r.int(4)? as u32,
                public_key: r.bytes(2)?,
                label: r.text(4)?,
                created_at_ms: r.int(8)?,
                owner: r.text(4)?,
                sealed: r.bytes(4)?,
                mac: r.bytes(2)?,
            })
        })()
        .map_err(corrupt)?;
        if !r.0.is_empty() {
            return Err(corrupt("trailing bytes after key record".into()));
        }
        Ok(record)
    }

    /// The record without its sealed key material, for the key cache, which keeps the
    /// decrypted key beside it (the sealed bytes would double the memory of large keys, such
    /// as a threshold-ECDSA key set with its pairwise OT state). Its MAC no longer verifies.
    pub fn without_sealed(mut self) -> Self {
        self.sealed = Vec::new();
        self
    }

    /// The audit event that records this key's creation.
    pub fn created_event(&self, origin: KeyOrigin) -> Event {
        Event::KeyCreated {
            key_id: self.key_id.clone(),
            scheme: self.scheme,
            threshold: self.threshold,
            parties: self.parties,
            origin,
            client: self.owner.clone(),
            at_ms: self.created_at_ms,
        }
    }

    /// What the record's MAC covers: every other field, length-prefixed, the sealed key
    /// material by its SHA-256.
    pub fn authenticated_bytes(&self) -> Vec<u8> {
        use sha2::{Digest, Sha256};
        let mut out = b"tessera/v1/key-record\0".to_vec();
        let sealed = Sha256::digest(&self.sealed);
        for part in [
            self.key_id.as_bytes(),
            self.scheme.as_str().as_bytes(),
            &self.threshold.to_be_bytes(),
            &self.parties.to_be_bytes(),
            &self.public_key,
            self.label.as_bytes(),
            &self.created_at_ms.to_be_bytes(),
            self.owner.as_bytes(),
            sealed.as_slice(),
        ] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
        out
    }

    /// Sets the MAC under `sealer` (after every other field is final).
    pub fn authenticate(mut self, sealer: &dyn Sealer) -> Self {
        self.mac = sealer.mac(&self.authenticated_bytes()).to_vec();
        self
    }

    /// Checks the MAC: [`crate::Error::RecordTampered`] when any field was changed since it was
    /// stored (or the KEK is not the one it was stored under).
    pub fn verify(&self, sealer: &dyn Sealer) -> Result<(), crate::Error> {
        let expected = sealer.mac(&self.authenticated_bytes());
        if bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_slice(),
            self.mac.as_slice(),
        )) {
            Ok(())
        } else {
            Err(crate::Error::RecordTampered {
                key_id: self.key_id.clone(),
            })
        }
    }
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("scheme", &self.scheme)
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("label", &self.label)
            .field("owner", &self.owner)
            .finish_non_exhaustive()
    }
}

/// A stored response for an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 over the request, so a reused key with another request is detected.
    #[serde(with = "hex::serde")]
    pub fingerprint: Vec<u8>,
    /// The response returned the first time, as the use case encoded it.
    #[serde(with = "hex::serde")]
    pub response: Vec<u8>,
    /// When the record was made, ms since the Unix epoch (0 in records made before the field
    /// existed; those are pruned at the first retention run).
    #[serde(default)]
    pub created_at_ms: u64,
}

/// An idempotency record to store under (`scope`, `key`): the scope is the key id for
/// signatures and the operation name for key creation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyEntry {
    /// The namespace of the key.
    pub scope: String,
    /// The client's idempotency key.
    pub key: String,
    /// What to store.
    pub record: IdempotencyRecord,
}

/// The signatures of one request, to be recorded.
#[derive(Clone, Debug)]
pub struct SignatureRecord {
    /// The key.
    pub key_id: String,
    /// The client the signatures were issued to.
    pub client: String,
    /// SHA-256 of each signed message.
    pub message_hashes: Vec<[u8; 32]>,
    /// The idempotency record, when the request carried a key.
    pub idempotency: Option<IdempotencyEntry>,
    /// What the signatures authorise, for chain transactions and messages.
    pub transaction: Option<crate::chain::TxSummary>,
}

/// A distributed node's share of a key whose creation has not been settled yet: stored by a
/// co-signing node while the creating node (the coordinator of the key generation or import)
/// has not stored its own share. It is neither listed nor used for signing until the creator
/// settles it: committed into the keys (with its `KeyCreated` event) or discarded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingKey {
    /// The share's record, as it will be stored once committed.
    pub record: KeyRecord,
    /// How the key came to be.
    pub origin: KeyOrigin,
    /// The party id of the node that creates the key and settles it.
    pub creator: u16,
}

impl PendingKey {
    /// The pending key as stored: the creator's party id (2 bytes, big-endian), the origin
    /// (one byte: 0 DKG, 1 import), then the record in [`KeyRecord::encode`]'s form.
    pub fn encode(&self) -> Result<Vec<u8>, StoreError> {
        let record = self.record.encode()?;
        let mut out = Vec::with_capacity(3 + record.len());
        out.extend_from_slice(&self.creator.to_be_bytes());
        out.push(match self.origin {
            KeyOrigin::Dkg => 0,
            KeyOrigin::Import => 1,
        });
        out.extend_from_slice(&record);
        Ok(out)
    }

    /// Decodes [`PendingKey::encode`]'s form; `what` names it in the error.
    pub fn decode(what: &str, bytes: &[u8]) -> Result<Self, StoreError> {
        let corrupt = |why: &'static str| StoreError::Corrupt {
            what: what.to_owned(),
            source: why.into(),
        };
        let [c0, c1, o, record @ ..] = bytes else {
            return Err(corrupt("truncated pending key"));
        };
        let origin = match o {
            0 => KeyOrigin::Dkg,
            1 => KeyOrigin::Import,
            _ => return Err(corrupt("unknown origin in pending key")),
        };
        if !record.starts_with(RECORD_MAGIC) {
            return Err(corrupt("pending key without a binary record"));
        }
        Ok(PendingKey {
            record: KeyRecord::decode(what, record)?,
            origin,
            creator: u16::from_be_bytes([*c0, *c1]),
        })
    }
}

/// Stored keys.
pub trait KeyRepository: Send + Sync {
    /// Stores a new key, its `KeyCreated` event and (when given) its idempotency record in one
    /// transaction. When a record for the same idempotency scope and key already exists (a
    /// retried or concurrent duplicate request), nothing is written and that record is
    /// returned.
    fn insert_key(
        &self,
        record: &KeyRecord,
        origin: KeyOrigin,
        idempotency: Option<&IdempotencyEntry>,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Replaces the record of a stored key whose key material changed (a distributed node's
    /// threshold-ECDSA share after its OT state with a peer was discarded or rebuilt); the
    /// public metadata stays as it was. [`StoreError::UnknownKey`] when it is not stored.
    fn replace_key_material(&self, record: &KeyRecord) -> Result<(), StoreError>;
    /// A key by id.
    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError>;
    /// Up to `limit` keys with ids after `after`, in id order (ids sort by creation time).
    fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>, StoreError>;
    /// Number of keys.
    fn key_count(&self) -> Result<u64, StoreError>;
    /// Stores a pending key (not listed, no event yet). [`StoreError::DuplicateKey`] when
    /// a key or a pending key with its id exists.
    fn insert_pending_key(&self, pending: &PendingKey) -> Result<(), StoreError>;
    /// A pending key by id.
    fn get_pending_key(&self, key_id: &str) -> Result<Option<PendingKey>, StoreError>;
    /// Every pending key, in id order.
    fn pending_keys(&self) -> Result<Vec<PendingKey>, StoreError>;
    /// Replaces the record of a pending key whose key material changed (its OT state, before
    /// it was settled). [`StoreError::UnknownKey`] when it is not pending.
    fn replace_pending_material(&self, record: &KeyRecord) -> Result<(), StoreError>;
    /// Moves a pending key into the keys with its `KeyCreated` event, in one transaction.
    /// `false` (and nothing written) when no key with this id is pending.
    fn commit_pending_key(&self, key_id: &str) -> Result<bool, StoreError>;
    /// Deletes a pending key; `false` when none with this id is pending.
    fn discard_pending_key(&self, key_id: &str) -> Result<bool, StoreError>;
}

/// Stored responses of requests that carried an idempotency key.
pub trait IdempotencyStore: Send + Sync {
    /// The stored response for (`scope`, `key`), if any.
    fn get_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Deletes the records made before `created_before_ms` (the retention policy: a request
    /// retried after its record is gone is a new request); returns how many were deleted.
    fn prune_idempotency(&self, created_before_ms: u64) -> Result<u64, StoreError>;
}

/// What recording signatures yields: `Some(record)` when an idempotency record for the same
/// scope and key already existed (nothing was written), `None` when the record was written.
pub type Recorded = Result<Option<IdempotencyRecord>, StoreError>;

/// Called once submitted signatures are durable (or failed to be).
pub type RecordDone = Box<dyn FnOnce(Recorded) + Send>;

/// The append-only, hash-chained audit log.
pub trait AuditLog: Send + Sync {
    /// Hands issued signatures (one `SignatureIssued` event per message, and the idempotency
    /// record) to the store and returns at once; `done` is called when they are durable, on
    /// whichever thread the store writes from (or on this one, before returning). `done` must
    /// not block. When an idempotency record for the same scope and key already exists (a
    /// concurrent duplicate), nothing is written and `done` gets the existing record.
    ///
    /// Callers on an async runtime await `done` through a channel instead of parking a
    /// blocking thread on the write.
    fn submit_signatures(&self, record: SignatureRecord, done: RecordDone);

    /// [`AuditLog::submit_signatures`], waiting on this thread for the result.
    fn record_signatures(&self, record: SignatureRecord) -> Recorded {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        self.submit_signatures(
            record,
            Box::new(move |r| {
                let _receiver_gone = tx.send(r);
            }),
        );
        rx.recv().map_err(|_| StoreError::Closed)?
    }
    /// Appends one event (an access decision) and returns once it is durable.
    fn record_event(&self, event: Event) -> Result<(), StoreError>;
    /// Up to `limit` events with sequence numbers after `after`.
    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Event)>, StoreError>;
    /// Re-computes the hash chain (from its checkpoint, when older events were pruned);
    /// returns the number of events kept, or [`StoreError::AuditChainBroken`] naming the first
    /// event edited, reordered or removed.
    fn verify_audit_chain(&self) -> Result<u64, StoreError>;
    /// Up to `limit` stored envelopes (event, `prev` and hash) with sequence numbers after
    /// `after`: what an export writes out.
    fn envelopes(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, crate::audit::Envelope)>, StoreError>;
    /// Where the kept chain starts, when older events were pruned.
    fn audit_checkpoint(&self) -> Result<Option<crate::audit::Checkpoint>, StoreError>;
    /// Verifies the chain, then deletes the events up to and including `through` (exported
    /// first by the caller) and records a [`crate::audit::Checkpoint`] so the kept chain still
    /// verifies, in one transaction; returns how many events were deleted.
    fn prune_audit(&self, through: u64) -> Result<u64, StoreError>;
}

/// Everything the use cases need from storage, in one object.
pub trait Store: KeyRepository + IdempotencyStore + AuditLog + std::fmt::Debug {}

impl<T: KeyRepository + IdempotencyStore + AuditLog + std::fmt::Debug> Store for T {}

/// Seals key material at rest under the key-encryption key. The key id is bound as
/// associated data, so a sealed blob moved to another key id fails to open.
pub trait Sealer: Send + Sync + std::fmt::Debug {
    /// Encrypts `plaintext` for `key_id`.
    fn seal(&self, key_id: &str, plaintext: &[u8]) -> Result<Vec<u8>, crate::Error>;
    /// Decrypts a blob made by [`Sealer::seal`] for `key_id`; any tampering, a wrong key id or
    /// a wrong KEK is [`crate::Error::Decrypt`].
    fn open(&self, key_id: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, crate::Error>;
    /// A MAC over `data` under a key derived from the KEK (for stored records' metadata).
    fn mac(&self, data: &[u8]) -> [u8; 32];
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> KeyRecord {
        KeyRecord {
            key_id: "k-1".into(),
            scheme: Scheme::EcdsaSecp256k1,
            threshold: 2,
            parties: 3,
            public_key: vec![2; 33],
            label: "treasury ü".into(),
            created_at_ms: 1_765_000_000_123,
            owner: "ops".into(),
            sealed: (0..=255u8).cycle().take(3_000).collect(),
            mac: vec![9; 32],
        }
    }

    /// The binary form round-trips every field, holds the sealed bytes as they are, and the
    /// JSON form of earlier versions decodes to the same record.
    #[test]
    fn key_records_round_trip_in_both_forms() {
        let r = record();
        let bin = r.encode().unwrap();
        assert!(bin.starts_with(RECORD_MAGIC));
        assert!(bin.len() < r.sealed.len() + 200, "{}", bin.len());
        assert_eq!(KeyRecord::decode("k", &bin).unwrap(), r);
        let json = serde_json::to_vec(&r).unwrap();
        assert_eq!(KeyRecord::decode("k", &json).unwrap(), r);
        let empty = KeyRecord {
            label: String::new(),
            owner: String::new(),
            mac: Vec::new(),
            ..r
        };
        assert_eq!(
            KeyRecord::decode("k", &empty.encode().unwrap()).unwrap(),
            empty
        );
    }

    /// Every truncation, a trailing byte, an unknown scheme and text that is not UTF-8 are
    /// corrupt records naming what was read; a field too long for its length is refused
    /// when encoding.
    /// A pending key round-trips; a truncated one, an unknown origin and a record in the
    /// JSON form (pending keys are only ever written in binary) are corrupt.
    #[test]
    fn pending_keys_round_trip_and_malformed_ones_are_corrupt() {
        let p = PendingKey {
            record: record(),
            origin: KeyOrigin::Import,
            creator: 0x0102,
        };
        let e = p.encode().unwrap();
        assert_eq!(&e[..3], &[1, 2, 1]);
        assert_eq!(PendingKey::decode("p", &e).unwrap(), p);
        let corrupt =
            |b: &[u8]| matches!(PendingKey::decode("p", b), Err(StoreError::Corrupt { .. }));
        for n in 0..e.len() {
            assert!(corrupt(&e[..n]), "truncated to {n} bytes");
        }
        let mut bad = e.clone();
        bad[2] = 2;
        assert!(corrupt(&bad), "unknown origin");
        let mut json = vec![0, 1, 0];
        json.extend_from_slice(&serde_json::to_vec(&record()).unwrap());
        assert!(corrupt(&json), "a JSON record");
    }

    #[test]
    fn malformed_binary_key_records_are_corrupt() {
        let bin = record().encode().unwrap();
        let corrupt = |b: &[u8]| match KeyRecord::decode("key record k-1", b) {
            Err(StoreError::Corrupt { what, .. }) => assert_eq!(what, "key record k-1"),
            other => panic!("{other:?}"),
        };
        for n in 0..bin.len() {
            corrupt(&bin[..n]);
        }
        let mut long = bin.clone();
        long.push(0);
        corrupt(&long);
        let scheme_at = RECORD_MAGIC.len() + 2 + "k-1".len() + 2;
        let mut bad = bin.clone();
        bad[scheme_at] = b'X';
        corrupt(&bad);
        let mut bad = bin;
        bad[RECORD_MAGIC.len() + 2] = 0xff;
        corrupt(&bad);
        let huge = KeyRecord {
            mac: vec![0; 70_000],
            ..record()
        };
        assert!(matches!(huge.encode(), Err(StoreError::Corrupt { .. })));
    }
}
