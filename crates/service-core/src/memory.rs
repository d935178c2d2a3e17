//! An in-memory [`Store`](crate::Store) for tests and the in-process API tests: the same
//! contract as the durable adapters (it passes [`crate::kit`]), nothing on disk.

use std::collections::{BTreeMap, HashMap};
use std::ops::Bound;
use std::sync::Mutex;

use crate::audit::{ChainKey, Checkpoint, Envelope, Event, GENESIS, verify_chain};
use crate::auth::{Caller, Clients, api_key_hash, new_api_key};
use crate::ports::{
    AuditLog, IdempotencyEntry, IdempotencyRecord, IdempotencyStore, KeyOrigin, KeyRecord,
    KeyRepository, PendingKey, RecordDone, Recorded, SignatureRecord, StoreError, now_ms,
};

#[derive(Debug)]
struct Inner {
    keys: BTreeMap<String, KeyRecord>,
    pending: BTreeMap<String, PendingKey>,
    idempotency: HashMap<(String, String), IdempotencyRecord>,
    /// The kept events; the first has sequence number `checkpoint.next_seq` (0 without one).
    events: Vec<Envelope>,
    checkpoint: Option<Checkpoint>,
    chain: ChainKey,
}

impl Inner {
    fn first_seq(&self) -> u64 {
        self.checkpoint.as_ref().map_or(0, |c| c.next_seq)
    }

    fn append(&mut self, event: Event) -> Result<(), StoreError> {
        let prev = match (self.events.last(), &self.checkpoint) {
            (Some(e), _) => e.hash.clone(),
            (None, Some(c)) => c.prev.clone(),
            (None, None) => GENESIS.to_vec(),
        };
        let env = Envelope::seal(&self.chain, &prev, event)?;
        self.events.push(env);
        Ok(())
    }

    /// Inserts `entry` unless its (scope, key) exists; returns the existing record then.
    fn claim(&mut self, entry: &IdempotencyEntry) -> Option<IdempotencyRecord> {
        let k = (entry.scope.clone(), entry.key.clone());
        if let Some(existing) = self.idempotency.get(&k) {
            return Some(existing.clone());
        }
        self.idempotency.insert(k, entry.record.clone());
        None
    }
}

/// The in-memory store.
#[derive(Debug)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    /// Test switch: new keys are refused ([`MemoryStore::refuse_new_keys`]).
    refuse_new_keys: std::sync::atomic::AtomicBool,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// An empty store whose audit chain is keyed with a fixed test key.
    pub fn new() -> Self {
        Self {
            inner: Mutex::new(Inner {
                keys: BTreeMap::new(),
                pending: BTreeMap::new(),
                idempotency: HashMap::new(),
                events: Vec::new(),
                checkpoint: None,
                chain: ChainKey::new([0x5a; 32]),
            }),
            refuse_new_keys: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// While `refuse` is set, storing a new key fails as a full disk would
    /// ([`StoreError::Engine`]): for tests of what a failed store leaves behind.
    pub fn refuse_new_keys(&self, refuse: bool) {
        self.refuse_new_keys
            .store(refuse, std::sync::atomic::Ordering::Relaxed);
    }

    /// Forgets every stored key, as a node whose data directory was lost and made anew would:
    /// for tests of what the other nodes do then.
    pub fn lose_keys(&self) {
        self.lock().keys.clear();
    }

    /// Overwrites a stored key record in place, as someone with write access to the storage
    /// (but not the KEK) could: for tests of tamper detection.
    pub fn overwrite_key(&self, record: KeyRecord) {
        self.lock().keys.insert(record.key_id.clone(), record);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl MemoryStore {
    fn write_signatures(&self, record: &SignatureRecord) -> Recorded {
        let mut st = self.lock();
        if let Some(entry) = &record.idempotency
            && let Some(existing) = st.claim(entry)
        {
            return Ok(Some(existing));
        }
        let at_ms = now_ms();
        for h in &record.message_hashes {
            st.append(Event::SignatureIssued {
                key_id: record.key_id.clone(),
                message_sha256: hex::encode(h),
                client: record.client.clone(),
                transaction: record.transaction.clone(),
                at_ms,
            })?;
        }
        Ok(None)
    }
}

impl KeyRepository for MemoryStore {
    fn insert_key(
        &self,
        record: &KeyRecord,
        origin: KeyOrigin,
        idempotency: Option<&IdempotencyEntry>,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        if self
            .refuse_new_keys
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(StoreError::Engine("the test store refuses new keys".into()));
        }
        let mut st = self.lock();
        if st.keys.contains_key(&record.key_id) {
            return Err(StoreError::DuplicateKey(record.key_id.clone()));
        }
        if let Some(entry) = idempotency
            && let Some(existing) = st.claim(entry)
        {
            return Ok(Some(existing));
        }
        st.keys.insert(record.key_id.clone(), record.clone());
        st.append(record.created_event(origin))?;
        Ok(None)
    }

    fn replace_key_material(&self, record: &KeyRecord) -> Result<(), StoreError> {
        match self.lock().keys.get_mut(&record.key_id) {
            Some(r) => {
                *r = record.clone();
                Ok(())
            }
            None => Err(StoreError::UnknownKey(record.key_id.clone())),
        }
    }

    fn get_key(&self, key_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        Ok(self.lock().keys.get(key_id).cloned())
    }

    fn list_keys(&self, after: Option<&str>, limit: usize) -> Result<Vec<KeyRecord>, StoreError> {
        let st = self.lock();
        let lower = after.map_or(Bound::Unbounded, |a| Bound::Excluded(a.to_owned()));
        Ok(st
            .keys
            .range((lower, Bound::Unbounded))
            .take(limit)
            .map(|(_, r)| r.clone())
            .collect())
    }

    fn key_count(&self) -> Result<u64, StoreError> {
        Ok(self.lock().keys.len() as u64)
    }

    fn insert_pending_key(&self, pending: &PendingKey) -> Result<(), StoreError> {
        let mut st = self.lock();
        let id = &pending.record.key_id;
        if st.keys.contains_key(id) || st.pending.contains_key(id) {
            return Err(StoreError::DuplicateKey(id.clone()));
        }
        st.pending.insert(id.clone(), pending.clone());
        Ok(())
    }

    fn get_pending_key(&self, key_id: &str) -> Result<Option<PendingKey>, StoreError> {
        Ok(self.lock().pending.get(key_id).cloned())
    }

    fn pending_keys(&self) -> Result<Vec<PendingKey>, StoreError> {
        Ok(self.lock().pending.values().cloned().collect())
    }

    fn replace_pending_material(&self, record: &KeyRecord) -> Result<(), StoreError> {
        match self.lock().pending.get_mut(&record.key_id) {
            Some(p) => {
                p.record = record.clone();
                Ok(())
            }
            None => Err(StoreError::UnknownKey(record.key_id.clone())),
        }
    }

    fn commit_pending_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let mut st = self.lock();
        let Some(p) = st.pending.get(key_id).cloned() else {
            return Ok(false);
        };
        if st.keys.contains_key(key_id) {
            return Err(StoreError::DuplicateKey(key_id.to_owned()));
        }
        st.append(p.record.created_event(p.origin))?;
        st.pending.remove(key_id);
        st.keys.insert(key_id.to_owned(), p.record);
        Ok(true)
    }

    fn discard_pending_key(&self, key_id: &str) -> Result<bool, StoreError> {
        Ok(self.lock().pending.remove(key_id).is_some())
    }
}

impl IdempotencyStore for MemoryStore {
    fn get_idempotency(
        &self,
        scope: &str,
        key: &str,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        Ok(self
            .lock()
            .idempotency
            .get(&(scope.to_owned(), key.to_owned()))
            .cloned())
    }

    fn prune_idempotency(&self, created_before_ms: u64) -> Result<u64, StoreError> {
        let mut st = self.lock();
        let before = st.idempotency.len();
        st.idempotency
            .retain(|_, r| r.created_at_ms >= created_before_ms);
        Ok((before - st.idempotency.len()) as u64)
    }
}

impl AuditLog for MemoryStore {
    fn submit_signatures(&self, record: SignatureRecord, done: RecordDone) {
        done(self.write_signatures(&record));
    }

    fn record_event(&self, event: Event) -> Result<(), StoreError> {
        self.lock().append(event)
    }

    fn events(&self, after: Option<u64>, limit: usize) -> Result<Vec<(u64, Event)>, StoreError> {
        Ok(self
            .envelopes(after, limit)?
            .into_iter()
            .map(|(seq, e)| (seq, e.event))
            .collect())
    }

    fn verify_audit_chain(&self) -> Result<u64, StoreError> {
        let st = self.lock();
        let first = st.first_seq();
        verify_chain(
            &st.chain,
            st.checkpoint.as_ref(),
            st.events
                .iter()
                .enumerate()
                .map(|(i, e)| Ok((first + i as u64, e.clone()))),
        )
    }

    fn envelopes(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Envelope)>, StoreError> {
        let st = self.lock();
        let first = st.first_seq();
        let start = after.map_or(first, |a| a.saturating_add(1).max(first));
        Ok(st
            .events
            .iter()
            .enumerate()
            .map(|(i, e)| (first + i as u64, e))
            .skip(usize::try_from(start - first).unwrap_or(usize::MAX))
            .take(limit)
            .map(|(seq, e)| (seq, e.clone()))
            .collect())
    }

    fn audit_checkpoint(&self) -> Result<Option<Checkpoint>, StoreError> {
        Ok(self.lock().checkpoint.clone())
    }

    fn prune_audit(&self, through: u64) -> Result<u64, StoreError> {
        self.verify_audit_chain()?;
        let mut st = self.lock();
        let first = st.first_seq();
        if through < first || st.events.is_empty() {
            return Ok(0);
        }
        let n = usize::try_from(through - first + 1)
            .unwrap_or(usize::MAX)
            .min(st.events.len());
        let removed: Vec<Envelope> = st.events.drain(..n).collect();
        let prev = removed.last().map(|e| e.hash.clone()).unwrap_or_default();
        let cp = Checkpoint::seal(&st.chain, first + n as u64, &prev)?;
        st.checkpoint = Some(cp);
        Ok(n as u64)
    }
}

/// Registered clients held in memory (API-key clients only), for in-process API tests.
#[derive(Debug, Default)]
pub struct MemoryClients(std::collections::HashMap<[u8; 32], std::sync::Arc<Caller>>);

impl MemoryClients {
    /// Registers `name` with `policy` under a new API key, which it returns.
    pub fn add(&mut self, name: &str, policy: crate::auth::Policy) -> String {
        let key = new_api_key();
        self.0.insert(
            api_key_hash(&key),
            std::sync::Arc::new(Caller {
                name: name.to_owned(),
                policy,
            }),
        );
        key.to_string()
    }
}

impl Clients for MemoryClients {
    fn by_api_key(&self, hash: &[u8; 32]) -> Option<std::sync::Arc<Caller>> {
        self.0.get(hash).cloned()
    }
    fn by_certificate(&self, _name: &str) -> Option<std::sync::Arc<Caller>> {
        None
    }
    fn by_name(&self, name: &str) -> Option<std::sync::Arc<Caller>> {
        self.0.values().find(|c| c.name == name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    #[test]
    fn memory_store_passes_the_storage_kit() {
        let store = Arc::new(MemoryStore::new());
        crate::kit::check_all(&|| Arc::clone(&store) as Arc<dyn crate::Store>);
    }
}
