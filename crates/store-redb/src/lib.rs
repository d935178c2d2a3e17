#![doc = include_str!("../README.md")]
//!
//! Signature records are written by a group-commit thread: concurrent requests hand their
//! records over a channel, the thread writes everything queued in one transaction, commits
//! once and then answers every request, so the audit trail is durable before a signature is
//! returned without paying one disk sync per request.

mod file;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use serde::{Deserialize, Serialize};
use service_core::audit::{ChainKey, Checkpoint, Envelope, Event, GENESIS, verify_chain};
use service_core::ports::{
    AuditLog, IdempotencyEntry, IdempotencyRecord, IdempotencyStore, KeyOrigin, KeyRecord,
    KeyRepository, PendingKey, RecordDone, SignatureRecord, StoreError, now_ms,
};

const KEYS: TableDefinition<&str, &[u8]> = TableDefinition::new("keys");
/// Shares of distributed keys whose creation is not settled yet ([`PendingKey`]).
const PENDING: TableDefinition<&str, &[u8]> = TableDefinition::new("pending_keys");
const IDEMPOTENCY: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Small named records: the audit checkpoint after pruning.
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const CHECKPOINT: &str = "audit_checkpoint";

/// The database file's name inside the data directory.
pub const FILE_NAME: &str = "tessera.redb";

/// redb's page cache. Its default, 1 GiB, would hold a second copy of what the service's own
/// key cache holds decrypted (a node with 10,000 threshold-ECDSA keys reads about 1 GB of key
/// records); the operating system's page cache still serves repeated reads.
const CACHE_BYTES: usize = 64 << 20;

/// What opening the database can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The data directory could not be created.
    #[error("cannot create data directory {path}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The database file could not be opened: unreadable, truncated, not a redb file or
    /// written by an incompatible version.
    #[error("cannot open database {path}")]
    Database {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: redb::Error,
    },
    /// The database file is damaged (truncated or overwritten) beyond what redb can repair.
    #[error("database {path} is damaged (truncated or overwritten); restore it from a backup")]
    Damaged {
        /// The file.
        path: PathBuf,
    },
    /// The writer thread could not be started.
    #[error("cannot start the store writer thread")]
    Thread(#[source] std::io::Error),
}

fn engine(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Engine(Box::new(e.into()))
}

fn corrupt(what: impl Into<String>, e: serde_json::Error) -> StoreError {
    StoreError::Corrupt {
        what: what.into(),
        source: Box::new(e),
    }
}

type Job = (SignatureRecord, RecordDone);

/// The redb adapter: one database file `<data_dir>/tessera.redb`.
pub struct RedbStore {
    db: Arc<Database>,
    chain: ChainKey,
    writer: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedbStore")
    }
}

fn idem_key(scope: &str, idempotency_key: &str) -> String {
    format!("{scope}\0{idempotency_key}")
}

fn decode<T: for<'de> Deserialize<'de>>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| corrupt(what, e))
}

fn encode<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| corrupt(what, e))
}

/// The stored audit checkpoint, if older events were pruned.
fn checkpoint<T: ReadableTable<&'static str, &'static [u8]>>(
    meta: &T,
) -> Result<Option<Checkpoint>, StoreError> {
    meta.get(CHECKPOINT)
        .map_err(engine)?
        .map(|g| Checkpoint::decode(g.value()))
        .transpose()
}

/// The next sequence number and the hash of the last envelope (or of the checkpoint when
/// every event was pruned).
fn chain_tail<T: ReadableTable<u64, &'static [u8]>>(
    t: &T,
    start: Option<&Checkpoint>,
) -> Result<(u64, Vec<u8>), StoreError> {
    match (t.last().map_err(engine)?, start) {
        (Some((k, v)), _) => {
            let seq = k.value();
            Ok((seq + 1, Envelope::decode(seq, v.value())?.hash))
        }
        (None, Some(c)) => Ok((c.next_seq, c.prev.clone())),
        (None, None) => Ok((0, GENESIS.to_vec())),
    }
}

fn append_event(tx: &WriteTransaction, chain: &ChainKey, event: Event) -> Result<(), StoreError> {
    let start = checkpoint(&tx.open_table(META).map_err(engine)?)?;
    let mut t = tx.open_table(EVENTS).map_err(engine)?;
    let (next, prev) = chain_tail(&t, start.as_ref())?;
    let env = Envelope::seal(chain, &prev, event)?;
    t.insert(next, env.encode()?.as_slice()).map_err(engine)?;
    Ok(())
}

/// Stores `entry` in `idem` unless its (scope, key) exists; returns the existing record then.
fn claim(
    idem: &mut redb::Table<'_, &'static str, &'static [u8]>,
    entry: &IdempotencyEntry,
) -> Result<Option<IdempotencyRecord>, StoreError> {
    let k = idem_key(&entry.scope, &entry.key);
    let existing = idem
        .get(k.as_str())
        .map_err(engine)?
        .map(|g| g.value().to_vec());
    if let Some(bytes) = existing {
        return Ok(Some(decode("idempotency record", &bytes)?));
    }
    idem.insert(
        k.as_str(),
        encode("idempotency record", &entry.record)?.as_slice(),
    )
    .map_err(engine)?;
    Ok(None)
}

impl RedbStore {
    /// Opens (or creates) the database in `data_dir`; its audit chain is keyed with `chain`.
    pub fn open(data_dir: &Path, chain: ChainKey) -> Result<Self, OpenError> {
        std::fs::create_dir_all(data_dir).map_err(|source| OpenError::CreateDir {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(FILE_NAME);
        let fail = |e: redb::Error| OpenError::Database {
            path: path.clone(),
            source: e,
        };
        let backend = file::PreallocatedFile::open(&path).map_err(|e| fail(e.into()))?;
        // redb asserts (panics) on some damaged files, e.g. one shorter than its header says;
        // that is a damaged database to report, not a crash.
        let created = std::panic::catch_unwind(|| {
            Database::builder()
                .set_cache_size(CACHE_BYTES)
                .create_with_backend(backend)
        })
        .map_err(|_| OpenError::Damaged { path: path.clone() })?;
        let db = created.map_err(|e| fail(e.into()))?;
        let tx = db.begin_write().map_err(|e| fail(e.into()))?;
        tx.open_table(KEYS).map_err(|e| fail(e.into()))?;
        tx.open_table(PENDING).map_err(|e| fail(e.into()))?;
        tx.open_table(IDEMPOTENCY).map_err(|e| fail(e.into()))?;
        tx.open_table(EVENTS).map_err(|e| fail(e.into()))?;
        tx.open_table(META).map_err(|e| fail(e.into()))?;
        tx.commit().map_err(|e| fail(e.into()))?;
        let db = Arc::new(db);
        let (send, recv) = mpsc::channel::<Job>();
        let wdb = Arc::clone(&db);
        let wchain = chain.clone();
        let thread = std::thread::Builder::new()
            .name("tessera-store-writer".into())
            .spawn(move || group_commit_loop(&wdb, &wchain, &recv))
            .map_err(OpenError::Thread)?;
        Ok(Self {
            db,
            chain,
            writer: Mutex::new(Some(send)),
            thread: Mutex::new(Some(thread)),
        })
    }
}

impl RedbStore {
    /// Re-keys the whole database in ONE transaction (all or nothing): every key record is
    /// replaced by what `reseal` makes of it (key material re-sealed and the record
    /// re-authenticated under a new KEK), and every audit event is re-chained under `chain`
    /// after the existing chain has been verified under the current key. Returns the number of
    /// keys and events. The store must not be used afterwards (its chain key is the old one):
    /// drop it and open the database with the new key.
    pub fn rekey(
        &self,
        reseal: &dyn Fn(KeyRecord) -> Result<KeyRecord, StoreError>,
        chain: &ChainKey,
    ) -> Result<(u64, u64), StoreError> {
        self.verify_audit_chain()?;
        let tx = self.db.begin_write().map_err(engine)?;
        let mut keys = 0u64;
        let mut events = 0u64;
        {
            let mut t = tx.open_table(KEYS).map_err(engine)?;
            let mut records = Vec::new();
            for entry in t.iter().map_err(engine)? {
                let (k, v) = entry.map_err(engine)?;
                records.push(KeyRecord::decode(
                    &format!("key record {}", k.value()),
                    v.value(),
                )?);
            }
            for r in records {
                let id = r.key_id.clone();
                let new = reseal(r)?;
                t.insert(id.as_str(), new.encode()?.as_slice())
                    .map_err(engine)?;
                keys += 1;
            }
            // Pending shares are sealed under the KEK too.
            let mut p = tx.open_table(PENDING).map_err(engine)?;
            let mut pending = Vec::new();
            for entry in p.iter().map_err(engine)? {
                let (k, v) = entry.map_err(engine)?;
                pending.push(decode_pending(k.value(), v.value())?);
            }
            for mut pk in pending {
                pk.record = reseal(pk.record)?;
                p.insert(pk.record.key_id.as_str(), pk.encode()?.as_slice())
                    .map_err(engine)?;
            }
            let mut e = tx.open_table(EVENTS).map_err(engine)?;
            let mut envelopes = Vec::new();
            for entry in e.iter().map_err(engine)? {
                let (k, v) = entry.map_err(engine)?;
                let seq = k.value();
                envelopes.push((seq, Envelope::decode(seq, v.value())?));
            }
            let mut meta = tx.open_table(META).map_err(engine)?;
            let start = checkpoint(&meta)?;
            let mut prev = match &start {
                Some(c) => {
                    // The kept chain starts where the pruned one ended; only the checkpoint's
                    // MAC changes key.
                    let moved = Checkpoint::seal(chain, c.next_seq, &c.prev)?;
                    meta.insert(CHECKPOINT, moved.encode()?.as_slice())
                        .map_err(engine)?;
                    c.prev.clone()
                }
                None => GENESIS.to_vec(),
            };
            for (seq, env) in envelopes {
                let new = Envelope::seal(chain, &prev, env.event)?;
                e.insert(seq, new.encode()?.as_slice()).map_err(engine)?;
                prev = new.hash;
                events += 1;
            }
        }
        tx.commit().map_err(engine)?;
        Ok((keys, events))
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

fn group_commit_loop(db: &Database, chain: &ChainKey, recv: &mpsc::Receiver<Job>) {
    while let Ok(first) = recv.recv() {
        let mut group = vec![first];
        while let Ok(more) = recv.try_recv() {
            group.push(more);
            if group.len() >= 4096 {
                break;
            }
        }
        match write_group(db, chain, &group) {
            Ok(results) => {
                for ((_, done), r) in group.into_iter().zip(results) {
                    done(Ok(r));
                }
            }
            Err(e) => {
                // One failed transaction fails every request of the group; each gets the
                // error with its source chain flattened into a message of its own.
                let shared: Arc<dyn std::error::Error + Send + Sync> = Arc::new(e);
                for (_, done) in group {
                    done(Err(StoreError::Engine(Box::new(SharedError(Arc::clone(
                        &shared,
                    ))))));
                }
            }
        }
    }
}

/// An error shared by every request of a failed group commit.
#[derive(Debug)]
struct SharedError(Arc<dyn std::error::Error + Send + Sync>);

impl std::fmt::Display for SharedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for SharedError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.0.source()
    }
}

fn write_group(
    db: &Database,
    chain: &ChainKey,
    group: &[Job],
) -> Result<Vec<Option<IdempotencyRecord>>, StoreError> {
    let tx = db.begin_write().map_err(engine)?;
    let mut results = Vec::with_capacity(group.len());
    {
        let mut idem = tx.open_table(IDEMPOTENCY).map_err(engine)?;
        let start = checkpoint(&tx.open_table(META).map_err(engine)?)?;
        let mut events = tx.open_table(EVENTS).map_err(engine)?;
        let (mut next, mut prev) = chain_tail(&events, start.as_ref())?;
        let at_ms = now_ms();
        let mut bytes = Vec::with_capacity(512);
        for (rec, _) in group {
            if let Some(entry) = &rec.idempotency
                && let Some(existing) = claim(&mut idem, entry)?
            {
                results.push(Some(existing));
                continue;
            }
            // One event per message, differing only in the message's hash.
            let mut event = Event::SignatureIssued {
                key_id: rec.key_id.clone(),
                message_sha256: String::with_capacity(64),
                client: rec.client.clone(),
                transaction: rec.transaction.clone(),
                at_ms,
            };
            for h in &rec.message_hashes {
                if let Event::SignatureIssued { message_sha256, .. } = &mut event {
                    message_sha256.clear();
                    message_sha256.push_str(&hex::encode(h));
                }
                let hash = Envelope::seal_into(chain, &prev, &event, &mut bytes)?;
                events.insert(next, bytes.as_slice()).map_err(engine)?;
                prev.clear();
                prev.extend_from_slice(&hash);
                next += 1;
            }
            results.push(None);
        }
    }
    tx.commit().map_err(engine)?;
    Ok(results)
}

/// The pending key stored under `key_id`.
fn decode_pending(key_id: &str, bytes: &[u8]) -> Result<PendingKey, StoreError> {
    PendingKey::decode(&format!("pending key {key_id}"), bytes)
}

impl KeyRepository for RedbStore {
    fn insert_key(
        &self,
        record: &KeyRecord,
        origin: KeyOrigin,
        idempotency: Option<&IdempotencyEntry>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut t = tx.open_table(KEYS).map_err(engine)?;
            if t.get(record.key_id.as_str()).map_err(engine)?.is_some() {
                return Err(StoreError::DuplicateKey(record.key_id.clone()));
            }
            if let Some(entry) = idempotency {
                let mut idem = tx.open_table(IDEMPOTENCY).map_err(engine)?;
                if let Some(existing) = claim(&mut idem, entry)? {
                    return Ok(Some(existing));
                }
            }
            t.insert(record.key_id.as_str(), record.encode()?.as_slice())
                .map_err(engine)?;
        }
        append_event(&tx, &self.chain, record.created_event(origin))?;
        tx.commit().map_err(engine)?;
        Ok(None)
    }

    fn replace_key_material(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut t = tx.open_table(KEYS).map_err(engine)?;
            if t.get(record.key_id.as_str()).map_err(engine)?.is_none() {
                return Err(StoreError::UnknownKey(record.key_id.clone()));
            }
            t.insert(record.key_id.as_str(), record.encode()?.as_slice())
                .map_err(engine)?;
        }
        tx.commit().map_err(engine)
    }

    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let t = tx.open_table(KEYS).map_err(engine)?;
        t.get(key_id)
            .map_err(engine)?
            .map(|g| KeyRecord::decode(&format!("key record {key_id}"), g.value()))
            .transpose()
    }

    fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let t = tx.open_table(KEYS).map_err(engine)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in t.range::<&str>((lower, Bound::Unbounded)).map_err(engine)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(engine)?;
            out.push(KeyRecord::decode(
                &format!("key record {}", k.value()),
                v.value(),
            )?);
        }
        Ok(out)
    }

    fn key_count(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        tx.open_table(KEYS).map_err(engine)?.len().map_err(engine)
    }

    fn insert_pending_key(&self, pending: &PendingKey) -> Result<(), StoreError> {
        let id = pending.record.key_id.as_str();
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let keys = tx.open_table(KEYS).map_err(engine)?;
            let mut t = tx.open_table(PENDING).map_err(engine)?;
            if keys.get(id).map_err(engine)?.is_some() || t.get(id).map_err(engine)?.is_some() {
                return Err(StoreError::DuplicateKey(id.to_owned()));
            }
            t.insert(id, pending.encode()?.as_slice()).map_err(engine)?;
        }
        tx.commit().map_err(engine)
    }

    fn get_pending_key(&self, key_id: &str) -> Result<Option<PendingKey>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let t = tx.open_table(PENDING).map_err(engine)?;
        t.get(key_id)
            .map_err(engine)?
            .map(|g| decode_pending(key_id, g.value()))
            .transpose()
    }

    fn pending_keys(&self) -> Result<Vec<PendingKey>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let t = tx.open_table(PENDING).map_err(engine)?;
        let mut out = Vec::new();
        for entry in t.iter().map_err(engine)? {
            let (k, v) = entry.map_err(engine)?;
            out.push(decode_pending(k.value(), v.value())?);
        }
        Ok(out)
    }

    fn replace_pending_material(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let id = record.key_id.as_str();
        let tx = self.db.begin_write().map_err(engine)?;
        {
            let mut t = tx.open_table(PENDING).map_err(engine)?;
            let Some(mut pending) = t
                .get(id)
                .map_err(engine)?
                .map(|g| decode_pending(id, g.value()))
                .transpose()?
            else {
                return Err(StoreError::UnknownKey(id.to_owned()));
            };
            pending.record = record.clone();
            t.insert(id, pending.encode()?.as_slice()).map_err(engine)?;
        }
        tx.commit().map_err(engine)
    }

    fn commit_pending_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(engine)?;
        let pending = {
            let mut t = tx.open_table(PENDING).map_err(engine)?;
            let Some(pending) = t
                .remove(key_id)
                .map_err(engine)?
                .map(|g| decode_pending(key_id, g.value()))
                .transpose()?
            else {
                return Ok(false);
            };
            let mut keys = tx.open_table(KEYS).map_err(engine)?;
            if keys.get(key_id).map_err(engine)?.is_some() {
                return Err(StoreError::DuplicateKey(key_id.to_owned()));
            }
            keys.insert(key_id, pending.record.encode()?.as_slice())
                .map_err(engine)?;
            pending
        };
        append_event(
            &tx,
            &self.chain,
            pending.record.created_event(pending.origin),
        )?;
        tx.commit().map_err(engine)?;
        Ok(true)
    }

    fn discard_pending_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let tx = self.db.begin_write().map_err(engine)?;
        let removed = tx
            .open_table(PENDING)
            .map_err(engine)?
            .remove(key_id)
            .map_err(engine)?
            .is_some();
        tx.commit().map_err(engine)?;
        Ok(removed)
    }
}

impl IdempotencyStore for RedbStore {
    fn get_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let t = tx.open_table(IDEMPOTENCY).map_err(engine)?;
        let k = idem_key(scope, key);
        t.get(k.as_str())
            .map_err(engine)?
            .map(|g| decode("idempotency record", g.value()))
            .transpose()
    }

    fn prune_idempotency(&self, created_before_ms: u64) -> Result<u64, StoreError> {
        let tx = self.db.begin_write().map_err(engine)?;
        let mut pruned = 0u64;
        {
            let mut t = tx.open_table(IDEMPOTENCY).map_err(engine)?;
            let mut old = Vec::new();
            for entry in t.iter().map_err(engine)? {
                let (k, v) = entry.map_err(engine)?;
                let r: IdempotencyRecord = decode("idempotency record", v.value())?;
                if r.created_at_ms < created_before_ms {
                    old.push(k.value().to_owned());
                }
            }
            for k in old {
                t.remove(k.as_str()).map_err(engine)?;
                pruned += 1;
            }
        }
        tx.commit().map_err(engine)?;
        Ok(pruned)
    }
}

impl AuditLog for RedbStore {
    fn submit_signatures(&self, record: SignatureRecord, done: RecordDone) {
        let guard = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_ref() {
            Some(sender) => {
                if let Err(mpsc::SendError((_, done))) = sender.send((record, done)) {
                    done(Err(StoreError::Closed));
                }
            }
            None => done(Err(StoreError::Closed)),
        }
    }

    fn record_event(&self, event: Event) -> Result<(), StoreError> {
        let tx = self.db.begin_write().map_err(engine)?;
        append_event(&tx, &self.chain, event)?;
        tx.commit().map_err(engine)
    }

    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        Ok(self
            .envelopes(after, limit)?
            .into_iter()
            .map(|(seq, e)| (seq, e.event))
            .collect())
    }

    fn verify_audit_chain(&self) -> Result<u64, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let start = checkpoint(&tx.open_table(META).map_err(engine)?)?;
        let t = tx.open_table(EVENTS).map_err(engine)?;
        let entries = t.range::<u64>(..).map_err(engine)?.map(|entry| {
            let (k, v) = entry.map_err(engine)?;
            let seq = k.value();
            Ok((seq, Envelope::decode(seq, v.value())?))
        });
        verify_chain(&self.chain, start.as_ref(), entries)
    }

    fn envelopes(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Envelope)>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        let t = tx.open_table(EVENTS).map_err(engine)?;
        let lower = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut out = Vec::new();
        for entry in t.range::<u64>((lower, Bound::Unbounded)).map_err(engine)? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = entry.map_err(engine)?;
            let seq = k.value();
            out.push((seq, Envelope::decode(seq, v.value())?));
        }
        Ok(out)
    }

    fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        let tx = self.db.begin_read().map_err(engine)?;
        checkpoint(&tx.open_table(META).map_err(engine)?)
    }

    fn prune_audit(&self, through: u64) -> Result<u64, StoreError> {
        self.verify_audit_chain()?;
        let tx = self.db.begin_write().map_err(engine)?;
        let mut pruned = 0u64;
        {
            let mut t = tx.open_table(EVENTS).map_err(engine)?;
            let mut last = None;
            let mut seqs = Vec::new();
            for entry in t.range::<u64>(..=through).map_err(engine)? {
                let (k, v) = entry.map_err(engine)?;
                let seq = k.value();
                last = Some((seq, Envelope::decode(seq, v.value())?.hash));
                seqs.push(seq);
            }
            let Some((end, hash)) = last else {
                return Ok(0);
            };
            for seq in seqs {
                t.remove(seq).map_err(engine)?;
                pruned += 1;
            }
            let cp = Checkpoint::seal(&self.chain, end + 1, &hash)?;
            tx.open_table(META)
                .map_err(engine)?
                .insert(CHECKPOINT, cp.encode()?.as_slice())
                .map_err(engine)?;
        }
        tx.commit().map_err(engine)?;
        Ok(pruned)
    }
}
#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn key() -> ChainKey {
        ChainKey::new([3; 32])
    }

    #[test]
    fn redb_store_passes_the_storage_kit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_owned();
        service_core::kit::check_all(&|| {
            Arc::new(RedbStore::open(&path, key()).unwrap()) as Arc<dyn service_core::Store>
        });
    }

    /// A key record written by an earlier version (JSON, the sealed material hex-encoded) is
    /// still read, alone and in a listing, beside one in the binary form written now; a
    /// rewrite of its material stores it in the binary form, at about half the size.
    #[test]
    fn key_records_written_as_json_by_earlier_versions_are_read() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = service_core::kit::record("k-old");
        old.sealed = vec![0x5a; 20_000];
        let json = serde_json::to_vec(&old).unwrap();
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            tx.open_table(KEYS)
                .unwrap()
                .insert("k-old", json.as_slice())
                .unwrap();
            tx.commit().unwrap();
        }
        let s = RedbStore::open(dir.path(), key()).unwrap();
        s.insert_key(&service_core::kit::record("k-new"), KeyOrigin::Dkg, None)
            .unwrap();
        assert_eq!(s.get_key("k-old").unwrap(), Some(old.clone()));
        let listed = s.list_keys(None, 10).unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[1], old);
        s.replace_key_material(&old).unwrap();
        let tx = s.db.begin_read().unwrap();
        let stored = tx
            .open_table(KEYS)
            .unwrap()
            .get("k-old")
            .unwrap()
            .unwrap()
            .value()
            .to_vec();
        assert_eq!(stored, old.encode().unwrap());
        assert!(
            stored.len() * 10 < json.len() * 6,
            "{} vs {}",
            stored.len(),
            json.len()
        );
        assert_eq!(s.get_key("k-old").unwrap(), Some(old));
    }

    #[test]
    fn audit_chain_detects_edits() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path(), key()).unwrap();
            s.insert_key(&service_core::kit::record("k1"), KeyOrigin::Dkg, None)
                .unwrap();
            for i in 0..3u8 {
                s.record_signatures(SignatureRecord {
                    key_id: "k1".into(),
                    client: String::new(),
                    message_hashes: vec![[i; 32], [i + 10; 32]],
                    idempotency: None,
                    transaction: None,
                })
                .unwrap();
            }
            assert_eq!(s.verify_audit_chain().unwrap(), 7);
        }
        // Edit event 3 behind the store's back.
        {
            let db = Database::create(dir.path().join(FILE_NAME)).unwrap();
            let tx = db.begin_write().unwrap();
            {
                let mut t = tx.open_table(EVENTS).unwrap();
                let raw = t.get(3).unwrap().unwrap().value().to_vec();
                let mut env = Envelope::decode(3, &raw).unwrap();
                if let Event::SignatureIssued { message_sha256, .. } = &mut env.event {
                    *message_sha256 = hex::encode([0xee; 32]);
                }
                t.insert(3, env.encode().unwrap().as_slice()).unwrap();
            }
            tx.commit().unwrap();
        }
        let s = RedbStore::open(dir.path(), key()).unwrap();
        let err = s.verify_audit_chain().unwrap_err();
        assert!(
            matches!(err, StoreError::AuditChainBroken { seq: 3, .. }),
            "{err}"
        );
        // Re-chaining from the edit on needs the key: a store opened with another one (as
        // someone without the KEK would compute the chain) sees the very first event fail.
        drop(s);
        let other = RedbStore::open(dir.path(), ChainKey::new([4; 32])).unwrap();
        assert!(matches!(
            other.verify_audit_chain(),
            Err(StoreError::AuditChainBroken { seq: 0, .. })
        ));
    }

    #[test]
    fn rekey_rewrites_every_record_and_rechains_every_event_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), key()).unwrap();
        for id in ["k1", "k2"] {
            s.insert_key(&service_core::kit::record(id), KeyOrigin::Dkg, None)
                .unwrap();
        }
        s.insert_pending_key(&PendingKey {
            record: service_core::kit::record("k3"),
            origin: KeyOrigin::Dkg,
            creator: 2,
        })
        .unwrap();
        // A failing re-seal changes nothing.
        let fail = |_: KeyRecord| -> Result<KeyRecord, StoreError> { Err(StoreError::Closed) };
        assert!(s.rekey(&fail, &ChainKey::new([9; 32])).is_err());
        assert_eq!(s.verify_audit_chain().unwrap(), 2);
        assert_eq!(
            s.get_key("k1").unwrap(),
            Some(service_core::kit::record("k1"))
        );

        let relabel = |mut r: KeyRecord| -> Result<KeyRecord, StoreError> {
            r.sealed = b"resealed".to_vec();
            Ok(r)
        };
        assert_eq!(s.rekey(&relabel, &ChainKey::new([9; 32])).unwrap(), (2, 2));
        drop(s);
        let old = RedbStore::open(dir.path(), key()).unwrap();
        assert!(
            old.verify_audit_chain().is_err(),
            "the old key no longer verifies"
        );
        drop(old);
        let new = RedbStore::open(dir.path(), ChainKey::new([9; 32])).unwrap();
        assert_eq!(new.verify_audit_chain().unwrap(), 2);
        assert_eq!(new.get_key("k2").unwrap().unwrap().sealed, b"resealed");
        let pending = new.get_pending_key("k3").unwrap().unwrap();
        assert_eq!(pending.record.sealed, b"resealed", "pending shares too");
        assert_eq!(pending.creator, 2);
    }

    /// A chain pruned to a checkpoint is re-keyed with its checkpoint: it verifies under the
    /// new key only, and a checkpoint moved by someone without the key is detected.
    #[test]
    fn rekey_after_pruning_moves_the_checkpoint_to_the_new_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = RedbStore::open(dir.path(), key()).unwrap();
        for id in ["k1", "k2", "k3"] {
            s.insert_key(&service_core::kit::record(id), KeyOrigin::Dkg, None)
                .unwrap();
        }
        assert_eq!(s.prune_audit(0).unwrap(), 1);
        let same = |r: KeyRecord| -> Result<KeyRecord, StoreError> { Ok(r) };
        assert_eq!(s.rekey(&same, &ChainKey::new([9; 32])).unwrap(), (3, 2));
        drop(s);
        let new = RedbStore::open(dir.path(), ChainKey::new([9; 32])).unwrap();
        assert_eq!(new.verify_audit_chain().unwrap(), 2);
        // Someone without the key moves the start past an event: the checkpoint's MAC fails.
        let mut cp = new.audit_checkpoint().unwrap().unwrap();
        let second = new.envelopes(None, 1).unwrap().remove(0).1;
        cp.next_seq += 1;
        cp.prev = second.hash;
        {
            let tx = new.db.begin_write().unwrap();
            tx.open_table(META)
                .unwrap()
                .insert(CHECKPOINT, cp.encode().unwrap().as_slice())
                .unwrap();
            tx.open_table(EVENTS).unwrap().remove(1u64).unwrap();
            tx.commit().unwrap();
        }
        assert!(matches!(
            new.verify_audit_chain(),
            Err(StoreError::AuditChainBroken { seq: 2, .. })
        ));
    }

    /// The file stays locked while a store has it open: a second service on the same data
    /// directory is refused with an error naming the file, and the first keeps working.
    #[test]
    fn a_second_open_of_an_open_data_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = RedbStore::open(dir.path(), key()).unwrap();
        let err = RedbStore::open(dir.path(), key()).unwrap_err();
        assert!(
            matches!(&err, OpenError::Database { path, source: redb::Error::DatabaseAlreadyOpen } if *path == dir.path().join(FILE_NAME)),
            "{err:?}"
        );
        first
            .insert_key(&service_core::kit::record("k1"), KeyOrigin::Dkg, None)
            .unwrap();
        drop(first);
        let again = RedbStore::open(dir.path(), key()).unwrap();
        assert!(again.get_key("k1").unwrap().is_some());
    }

    #[test]
    fn a_truncated_database_is_an_open_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = RedbStore::open(dir.path(), key()).unwrap();
            s.insert_key(&service_core::kit::record("k1"), KeyOrigin::Dkg, None)
                .unwrap();
        }
        let path = dir.path().join(FILE_NAME);
        let len = std::fs::metadata(&path).unwrap().len();
        let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len / 3).unwrap();
        drop(f);
        let err = RedbStore::open(dir.path(), key()).unwrap_err();
        assert!(
            matches!(&err, OpenError::Database { path: p, .. } | OpenError::Damaged { path: p } if *p == path),
            "{err}"
        );
        assert!(err.to_string().contains(FILE_NAME), "{err}");
    }
}
