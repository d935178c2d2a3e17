//! Storage port and its redb adapter: key records (metadata + sealed `KeySet` bytes),
//! idempotency records and the append-only event table (the audit trail; never secrets).
//!
//! Events are hash-chained (each stores the previous event's hash), so the audit trail is
//! tamper-evident.
//!
//! Signature records are written by a group-commit thread: concurrent requests hand their
//! records over a channel, the thread writes everything queued in one transaction, commits
//! once and then answers every request, so the audit trail is durable before a signature is
//! returned without paying one disk sync per request.

use std::ops::Bound;
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::Error;

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");

/// The signature schemes a stored key can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SchemeKind {
    /// FROST(Ed25519, SHA-512).
    Ed25519,
    /// FROST(secp256k1) with BIP340 signatures.
    Bip340,
    /// DKLs23 threshold ECDSA on secp256k1.
    EcdsaSecp256k1,
}

impl SchemeKind {
    /// Lower-case name for logs and metrics labels.
    pub fn as_str(self) -> &'static str {
        match self {
            SchemeKind::Ed25519 => "ed25519",
            SchemeKind::Bip340 => "bip340",
            SchemeKind::EcdsaSecp256k1 => "ecdsa_secp256k1",
        }
    }
}

/// A stored key: public metadata and the sealed key-set bytes.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// Server-assigned id.
    pub key_id: String,
    /// Scheme.
    pub scheme: SchemeKind,
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
    /// `KeySet` bytes sealed under the KEK with the key id as associated data.
    #[serde(with = "hex::serde")]
    pub sealed: Vec<u8>,
}

impl std::fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("scheme", &self.scheme)
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// A stored response for an idempotency key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 over the request (key id, message, Taproot option).
    #[serde(with = "hex::serde")]
    pub fingerprint: Vec<u8>,
    /// The encoded `SignResponse` returned the first time.
    #[serde(with = "hex::serde")]
    pub response: Vec<u8>,
}

/// An entry of the append-only audit trail.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// A key was generated or imported.
    KeyCreated {
        /// The key.
        key_id: String,
        /// Its scheme.
        scheme: SchemeKind,
        /// t.
        threshold: u32,
        /// n.
        parties: u32,
        /// `dkg` or `import`.
        origin: String,
        /// When, ms since the epoch.
        at_ms: u64,
    },
    /// A signature was issued.
    SignatureIssued {
        /// The key.
        key_id: String,
        /// SHA-256 of the signed message, hex.
        message_sha256: String,
        /// When, ms since the epoch.
        at_ms: u64,
    },
}

/// How an event is stored: hash-chained, so editing or deleting any stored event breaks
/// [`KeyStore::verify_audit_chain`] from that point on.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Envelope {
    /// Hash of the previous envelope (zeros for the first).
    #[serde(with = "hex::serde")]
    prev: Vec<u8>,
    /// SHA-256(prev ‖ canonical JSON of `event`).
    #[serde(with = "hex::serde")]
    hash: Vec<u8>,
    event: Event,
}

fn chain_hash(prev: &[u8], event: &Event) -> Result<Vec<u8>, Error> {
    let mut h = Sha256::new();
    h.update(b"tessera/v1/audit\0");
    h.update(prev);
    h.update(encode(event)?);
    Ok(h.finalize().to_vec())
}

/// The next sequence number and the hash of the last envelope.
fn chain_tail<T: ReadableTable<u64, &'static [u8]>>(t: &T) -> Result<(u64, Vec<u8>), Error> {
    match t.last()? {
        None => Ok((0, vec![0; 32])),
        Some((k, v)) => {
            let env: Envelope = decode(v.value())?;
            Ok((k.value() + 1, env.hash))
        }
    }
}

fn seal_event(prev: &[u8], event: Event) -> Result<(Vec<u8>, Vec<u8>), Error> {
    let hash = chain_hash(prev, &event)?;
    let env = Envelope {
        prev: prev.to_vec(),
        hash: hash.clone(),
        event,
    };
    Ok((encode(&env)?, hash))
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The signatures of one request, to be recorded.
#[derive(Clone, Debug)]
pub struct SignatureRecord {
    /// The key.
    pub key_id: String,
    /// SHA-256 of each signed message.
    pub message_hashes: Vec<[u8; 32]>,
    /// `(idempotency key, record)` when the request carried one.
    pub idempotency: Option<(String, IdempotencyRecord)>,
}

/// The storage port the service uses.
pub trait KeyStore: Send + Sync {
    /// Stores a new key and its `KeyCreated` event in one transaction.
    fn insert_key(&self, record: &KeyRecord, origin: &str) -> Result<(), Error>;
    /// A key by id.
    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>, Error>;
    /// Up to `limit` keys with ids after `after`, in id order (ids sort by creation time).
    fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>, Error>;
    /// Number of keys.
    fn key_count(&self) -> Result<u64, Error>;
    /// The stored response for (`key_id`, `idempotency_key`), if any.
    fn get_idempotency(
        &self,
        key_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<IdempotencyRecord>, Error>;
    /// Records issued signatures (events and idempotency record) durably. When an
    /// idempotency record for the same (key, idempotency key) already exists (a concurrent
    /// duplicate), nothing is written and the existing record is returned.
    fn record_signatures(
        &self,
        record: SignatureRecord,
    ) -> Result<Option<IdempotencyRecord>, Error>;
    /// Up to `limit` events with sequence numbers after `after`.
    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Event)>, Error>;
    /// Re-computes the audit hash chain; returns the number of events, or an error naming the
    /// first event that was edited, reordered or removed.
    fn verify_audit_chain(&self) -> Result<u64, Error>;
}

type Reply = mpsc::SyncSender<Result<Option<IdempotencyRecord>, Error>>;

/// The redb adapter: one database file `<data_dir>/tessera.redb`.
pub struct RedbStore {
    db: Arc<Database>,
    writer: Mutex<Option<mpsc::Sender<(SignatureRecord, Reply)>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}

fn idem_key(key_id: &str, idempotency_key: &str) -> String {
    format!("{key_id}\0{idempotency_key}")
}

fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8]) -> Result<T, Error> {
    serde_json::from_slice(bytes).map_err(|e| Error::Storage(format!("corrupt record: {e}")))
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|e| Error::Storage(e.to_string()))
}

fn append_event(tx: &WriteTransaction, event: Event) -> Result<(), Error> {
    let mut t = tx.open_table(EVENTS)?;
    let (next, prev) = chain_tail(&t)?;
    let (bytes, _) = seal_event(&prev, event)?;
    t.insert(next, bytes.as_slice())?;
    Ok(())
}

impl RedbStore {
    /// Opens (or creates) the database in `data_dir`.
    pub fn open(data_dir: &Path) -> Result<Self, Error> {
        std::fs::create_dir_all(data_dir).map_err(|e| Error::Io {
            context: format!("creating data dir {}", data_dir.display()),
            source: e,
        })?;
        let db = Database::create(data_dir.join("tessera.redb"))?;
        let tx = db.begin_write()?;
        tx.open_table(KEYS)?;
        tx.open_table(IDEMPOTENCY)?;
        tx.open_table(EVENTS)?;
        tx.commit()?;
        let db = Arc::new(db);
        let (send, recv) = mpsc::channel::<(SignatureRecord, Reply)>();
        let wdb = Arc::clone(&db);
        let thread = std::thread::Builder::new()
            .name("tessera-store-writer".into())
            .spawn(move || group_commit_loop(&wdb, &recv))
            .map_err(|e| Error::Io {
                context: "spawning the store writer thread".into(),
                source: e,
            })?;
        Ok(Self {
            db,
            writer: Mutex::new(Some(send)),
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl Drop for RedbStore {
    fn drop(&mut self) {
        self.writer.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _joined = t.join();
        }
    }
}

fn group_commit_loop(db: &Database, recv: &mpsc::Receiver<(SignatureRecord, Reply)>) {
    while let Ok(first) = recv.recv() {
        let mut group = vec![first];
        while let Ok(more) = recv.try_recv() {
            group.push(more);
            if group.len() >= 4096 {
                break;
            }
        }
        match write_group(db, &group) {
            Ok(results) => {
                for ((_, reply), r) in group.into_iter().zip(results) {
                    let _gone = reply.send(Ok(r));
                }
            }
            Err(e) => {
                let msg = e.to_string();
                for (_, reply) in group {
                    let _gone = reply.send(Err(Error::Storage(msg.clone())));
                }
            }
        }
    }
}

fn write_group(
    db: &Database,
    group: &[(SignatureRecord, Reply)],
) -> Result<Vec<Option<IdempotencyRecord>>, Error> {
    let tx = db.begin_write()?;
    let mut results = Vec::with_capacity(group.len());
    {
        let mut idem = tx.open_table(IDEMPOTENCY)?;
        let mut events = tx.open_table(EVENTS)?;
        let (mut next, mut prev) = chain_tail(&events)?;
        let at_ms = now_ms();
        for (rec, _) in group {
            if let Some((ik, ir)) = &rec.idempotency {
                let k = idem_key(&rec.key_id, ik);
                let existing = idem.get(k.as_str())?.map(|g| g.value().to_vec());
                if let Some(bytes) = existing {
                    results.push(Some(decode(&bytes)?));
                    continue;
                }
                idem.insert(k.as_str(), encode(ir)?.as_slice())?;
            }
            for h in &rec.message_hashes {
                let ev = Event::SignatureIssued {
                    key_id: rec.key_id.clone(),
                    message_sha256: hex::encode(h),
                    at_ms,
                };
                let (bytes, hash) = seal_event(&prev, ev)?;
                events.insert(next, bytes.as_slice())?;
                prev = hash;
                next += 1;
            }
            results.push(None);
        }
    }
    tx.commit()?;
    Ok(results)
}

impl KeyStore for RedbStore {
    fn insert_key(&self, record: &KeyRecord, origin: &str) -> Result<(), Error> {
        let tx = self.db.begin_write()?;
        {
            let mut t = tx.open_table(KEYS)?;
            if t.get(record.key_id.as_str())?.is_some() {
                return Err(Error::Storage(format!("key id {} exists", record.key_id)));
            }
            t.insert(record.key_id.as_str(), encode(record)?.as_slice())?;
        }
        append_event(
            &tx,
            Event::KeyCreated {
                key_id: record.key_id.clone(),
                scheme: record.scheme,
                threshold: record.threshold,
                parties: record.parties,
                origin: origin.to_owned(),
                at_ms: record.created_at_ms,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>, Error> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(KEYS)?;
        t.get(key_id)?.map(|g| decode(g.value())).transpose()
    }

    fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>, Error> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(KEYS)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in t.range::<&str>((lower, Bound::Unbounded))? {
            if out.len() >= limit {
                break;
            }
            let (_, v) = entry?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    fn key_count(&self) -> Result<u64, Error> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(KEYS)?.len()?)
    }

    fn get_idempotency(
        &self,
        key_id: &str,
        idempotency_key: &str,
    ) -> Result<Option<IdempotencyRecord>, Error> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(IDEMPOTENCY)?;
        let k = idem_key(key_id, idempotency_key);
        t.get(k.as_str())?.map(|g| decode(g.value())).transpose()
    }

    fn record_signatures(
        &self,
        record: SignatureRecord,
    ) -> Result<Option<IdempotencyRecord>, Error> {
        let (reply, wait) = mpsc::sync_channel(1);
        {
            let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
            let sender = guard.as_ref().ok_or(Error::ShuttingDown)?;
            sender
                .send((record, reply))
                .map_err(|_| Error::ShuttingDown)?;
        }
        wait.recv().map_err(|_| Error::ShuttingDown)?
    }

    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Event)>, Error> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVENTS)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in t.range::<u64>((lower, Bound::Unbounded))? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry?;
            let env: Envelope = decode(v.value())?;
            out.push((k.value(), env.event));
        }
        Ok(out)
    }

    fn verify_audit_chain(&self) -> Result<u64, Error> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(EVENTS)?;
        let mut prev = vec![0u8; 32];
        let mut expected_seq = 0u64;
        for entry in t.range::<u64>(..)? {
            let (k, v) = entry?;
            let seq = k.value();
            let broken =
                |why: &str| Error::Storage(format!("audit chain broken at event {seq}: {why}"));
            if seq != expected_seq {
                return Err(broken("missing event before it"));
            }
            let env: Envelope = decode(v.value())?;
            if env.prev != prev {
                return Err(broken("previous-hash mismatch"));
            }
            if chain_hash(&prev, &env.event)? != env.hash {
                return Err(broken("content does not match its hash"));
            }
            prev = env.hash;
            expected_seq += 1;
        }
        Ok(expected_seq)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::kek::Kek;

    fn record(kek: &Kek, id: &str) -> KeyRecord {
        KeyRecord {
            key_id: id.into(),
            scheme: SchemeKind::Ed25519,
            threshold: 2,
            parties: 3,
            public_key: vec![1; 32],
            label: "l".into(),
            created_at_ms: 5,
            sealed: kek.seal(id, b"secret key set").unwrap(),
        }
    }

    #[test]
    fn keys_round_trip_across_reopen_and_list_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_bytes([3; 32]);
        {
            let s = RedbStore::open(dir.path()).unwrap();
            for id in ["b", "a", "c"] {
                s.insert_key(&record(&kek, id), "dkg").unwrap();
            }
            assert!(s.insert_key(&record(&kek, "a"), "dkg").is_err());
        }
        let s = RedbStore::open(dir.path()).unwrap();
        assert_eq!(s.key_count().unwrap(), 3);
        let r = s.get_key("b").unwrap().unwrap();
        assert_eq!(r, record_with_sealed(&kek, "b", r.sealed.clone()));
        assert_eq!(
            kek.open("b", &r.sealed).unwrap().as_slice(),
            b"secret key set"
        );
        let ids: Vec<_> = s
            .list_keys(None, 2)
            .unwrap()
            .into_iter()
            .map(|r| r.key_id)
            .collect();
        assert_eq!(ids, ["a", "b"]);
        let ids: Vec<_> = s
            .list_keys(Some("b"), 2)
            .unwrap()
            .into_iter()
            .map(|r| r.key_id)
            .collect();
        assert_eq!(ids, ["c"]);
        assert!(s.get_key("zz").unwrap().is_none());
        let events = s.events(None, 10).unwrap();
        assert_eq!(events.len(), 3);
        assert!(matches!(&events[0].1, Event::KeyCreated { key_id, .. } if key_id == "b"));
    }

    fn record_with_sealed(kek: &Kek, id: &str, sealed: Vec<u8>) -> KeyRecord {
        KeyRecord {
            sealed,
            ..record(kek, id)
        }
    }

    #[test]
    fn audit_chain_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_bytes([3; 32]);
        {
            let s = RedbStore::open(dir.path()).unwrap();
            s.insert_key(&record(&kek, "k1"), "dkg").unwrap();
            for i in 0..3u8 {
                s.record_signatures(SignatureRecord {
                    key_id: "k1".into(),
                    message_hashes: vec![[i; 32], [i + 10; 32]],
                    idempotency: None,
                })
                .unwrap();
            }
            assert_eq!(s.verify_audit_chain().unwrap(), 7);
        }
        // Edit event 3 behind the store's back.
        {
            let db = Database::create(dir.path().join("tessera.redb")).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(EVENTS).unwrap();
                let raw = t.get(3).unwrap().unwrap().value().to_vec();
                let mut env: Envelope = decode(&raw).unwrap();
                if let Event::SignatureIssued { message_sha256, .. } = &mut env.event {
                    *message_sha256 = hex::encode([0xee; 32]);
                }
                t.insert(3, encode(&env).unwrap().as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let s = RedbStore::open(dir.path()).unwrap();
        let err = s.verify_audit_chain().unwrap_err().to_string();
        assert!(err.contains("event 3"), "{err}");
    }

    #[test]
    fn stored_ciphertext_tampering_is_detected() {
        let dir = tempfile::tempdir().unwrap();
        let kek = Kek::from_bytes([3; 32]);
        let s = RedbStore::open(dir.path()).unwrap();
        s.insert_key(&record(&kek, "k1"), "import").unwrap();
        let mut r = s.get_key("k1").unwrap().unwrap();
        r.sealed[20] ^= 0x80;
        assert!(matches!(
            kek.open("k1", &r.sealed),
            Err(Error::Decrypt { .. })
        ));
        let r = s.get_key("k1").unwrap().unwrap();
        assert!(matches!(
            kek.open("k2", &r.sealed),
            Err(Error::Decrypt { .. })
        ));
    }

    #[test]
    fn idempotency_first_writer_wins_and_events_are_appended() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path()).unwrap();
        let rec = |resp: u8| SignatureRecord {
            key_id: "k".into(),
            message_hashes: vec![[resp; 32]],
            idempotency: Some((
                "req-1".into(),
                IdempotencyRecord {
                    fingerprint: vec![9; 32],
                    response: vec![resp],
                },
            )),
        };
        assert_eq!(s.record_signatures(rec(1)).unwrap(), None);
        let existing = s.record_signatures(rec(2)).unwrap().unwrap();
        assert_eq!(existing.response, vec![1]);
        assert_eq!(
            s.get_idempotency("k", "req-1").unwrap().unwrap().response,
            vec![1]
        );
        assert!(s.get_idempotency("other", "req-1").unwrap().is_none());
        let events = s.events(None, 10).unwrap();
        assert_eq!(events.len(), 1, "the duplicate wrote nothing");
        assert!(
            matches!(&events[0].1, Event::SignatureIssued { message_sha256, .. }
            if *message_sha256 == hex::encode([1u8; 32]))
        );
    }
}
