//! Key material held in memory: in embedded mode the whole key set of every key (all n
//! parties' shares, through `threshold::embedded` and `dkls23::embedded`) — NOT a distributed
//! MPC deployment. Loaded keys are cached; their shares are zeroized on drop by the protocol
//! crates. Threshold-ECDSA keys carry their pool of presignatures.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use accel_api::Accelerator;
use dkls23::{PartyId, Presignature};
use rand_core::OsRng;
use threshold::embedded;
use threshold::{Bip340Suite, Ed25519Suite, KeySet, PartyKey, TaprootTweak};
use zeroize::Zeroizing;

use crate::ports::KeyRecord;
use crate::{Error, Observer, PresignSource, Scheme};

/// The first bytes of one party's encoded DKLs23 share (a whole key set starts otherwise).
const ECDSA_SHARE_MAGIC: &[u8] = b"DKLS23K1";

/// A key set of either scheme, decrypted and ready to sign.
pub enum LoadedKey {
    /// FROST(Ed25519).
    Ed25519(KeySet<Ed25519Suite>),
    /// FROST(secp256k1) / BIP340.
    Bip340(KeySet<Bip340Suite>),
    /// DKLs23 threshold ECDSA, with its presignature pool.
    Ecdsa(EcdsaKey),
    /// FROST(Ed25519): this node's share only (distributed mode).
    Ed25519Party(PartyKey<Ed25519Suite>),
    /// FROST(secp256k1) / BIP340: this node's share only (distributed mode).
    Bip340Party(PartyKey<Bip340Suite>),
    /// DKLs23 threshold ECDSA: this node's share only, with its pairwise OT state
    /// (distributed mode).
    EcdsaParty(EcdsaPartyKey),
}

/// One node's share of a distributed threshold-ECDSA key. Presigning mutates the share only
/// when a check fails (the OT state with the culprit is discarded), so it holds the lock;
/// the online round needs only the node's presignature.
pub struct EcdsaPartyKey {
    share: Mutex<dkls23::KeyShare>,
    public_key: [u8; 33],
    point: k256::ProjectivePoint,
    threshold: u16,
}

impl EcdsaPartyKey {
    /// Wraps this node's share.
    pub fn new(share: dkls23::KeyShare) -> Self {
        Self {
            public_key: share.public_key_bytes(),
            point: share.public_key(),
            threshold: share.threshold(),
            share: Mutex::new(share),
        }
    }

    /// The group public key as a point.
    pub fn public_point(&self) -> k256::ProjectivePoint {
        self.point
    }

    /// The signing threshold t.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The group public key, SEC1 compressed.
    pub fn public_key(&self) -> [u8; 33] {
        self.public_key
    }

    /// The share, locked (for presigning, which may discard a pair's OT state).
    pub fn share(&self) -> std::sync::MutexGuard<'_, dkls23::KeyShare> {
        self.share.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The pool target a key starts with (see [`EcdsaKey::pool_target`]).
const POOL_START: usize = 4;

/// An ECDSA key's presignatures: those ready, and how many running refill steps are making.
#[derive(Default)]
struct Pool {
    ready: Vec<Presignature>,
    making: usize,
}

/// A threshold-ECDSA key set with its in-memory presignature pool.
///
/// Presigning (rounds 1–2) mutates the key set only when a pair's OT state must be rebuilt or
/// is discarded, so it holds the set's lock only for that and to copy the set it presigns on;
/// the online round needs only a presignature (which carries the public key) and never waits
/// for presigning. Presignatures are single use, never persisted
/// and zeroized on drop (dropping the key drops its pool).
pub struct EcdsaKey {
    set: Mutex<dkls23::KeySet>,
    pool: Mutex<Pool>,
    /// Refills running (see [`EcdsaKey::claim_refill`]).
    refilling: AtomicUsize,
    /// The key's own pool target: [`POOL_START`], doubled each time signing finds the pool
    /// short after it has served the key (the configured target caps it).
    want: AtomicUsize,
    /// Whether the pool has served a signature since the key was made or loaded.
    served: AtomicBool,
    /// Whether the set's OT state changed since it was stored (see
    /// [`EcdsaKey::take_ot_changed`]).
    ot_changed: AtomicBool,
    public_key: [u8; 33],
    signers: Vec<PartyId>,
}

/// The signer set of an embedded threshold-ECDSA key with threshold `t`: parties `1..=t`.
fn signer_set(t: u16) -> Vec<PartyId> {
    (1..=t).collect()
}

impl EcdsaKey {
    /// Wraps a key set, as made or as read back from storage.
    fn new(set: dkls23::KeySet) -> Self {
        let public_key = set.public_key_bytes();
        let signers = signer_set(set.threshold());
        Self {
            set: Mutex::new(set),
            pool: Mutex::new(Pool::default()),
            refilling: AtomicUsize::new(0),
            want: AtomicUsize::new(POOL_START),
            served: AtomicBool::new(false),
            ot_changed: AtomicBool::new(false),
            public_key,
            signers,
        }
    }

    /// The SEC1-compressed group public key.
    pub fn public_key(&self) -> [u8; 33] {
        self.public_key
    }

    /// Presignatures ready in the pool.
    pub fn pool_len(&self) -> usize {
        self.pool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .ready
            .len()
    }

    /// Runs rounds 1–2 `count` times for the key's signer set (parties `1..=t`). The pairs'
    /// OT state is readied under the set's lock; presigning itself runs on a copy of the set,
    /// so that several refills of one key (and on-demand presigning) run at once. The only
    /// change presigning makes to a set, discarding a pair's OT state after a failed check,
    /// is copied back. Either change (a pair readied, a pair discarded) is noted for
    /// [`EcdsaKey::take_ot_changed`].
    fn presign(&self, accel: &dyn Accelerator, count: usize) -> Result<Vec<Presignature>, Error> {
        let mut copy = {
            let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
            if dkls23::embedded::ready_pairs(accel, &mut set, &self.signers, &mut OsRng)? {
                self.ot_changed.store(true, Ordering::Release);
            }
            set.clone()
        };
        let made =
            dkls23::embedded::presign_batch(accel, &mut copy, &self.signers, count, &mut OsRng);
        if made.is_err()
            && self
                .set
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .absorb_discards(&copy)
        {
            self.ot_changed.store(true, Ordering::Release);
        }
        Ok(made?)
    }

    /// Whether the key set's pairwise OT state changed since it was stored (a pair's base OT
    /// run, or its state discarded after a failed check), clearing the note: the caller then
    /// stores the key again ([`LoadedKey::to_bytes`]), so that a restart neither reuses a
    /// discarded pair's state nor runs a base OT again.
    pub fn take_ot_changed(&self) -> bool {
        self.ot_changed.swap(false, Ordering::AcqRel)
    }

    /// Notes again a change [`EcdsaKey::take_ot_changed`] reported that could not be stored,
    /// so that a later call retries.
    pub fn note_ot_changed(&self) {
        self.ot_changed.store(true, Ordering::Release);
    }

    /// Takes up to `n` presignatures from the pool for `n` signatures (each is counted as used
    /// from the pool when a signature consumes it; one dropped unused, e.g. with a request the
    /// batcher refused, is not). When the pool, having served the key before, holds fewer,
    /// the key signs often enough for a larger one: its target doubles. (A pool that has not
    /// served yet, e.g. just after a restart, is empty because it was never filled.)
    pub(crate) fn reserve(&self, n: usize, observer: &dyn Observer) -> Vec<Presignature> {
        let taken = self.pop(n, observer);
        if !taken.is_empty() {
            self.served.store(true, Ordering::Release);
        }
        if taken.len() < n && self.served.load(Ordering::Acquire) {
            let _ = self
                .want
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                    Some(w.saturating_mul(2))
                });
        }
        taken
    }

    /// Takes a presignature from the pool, or makes one now when the pool is empty: for a
    /// signature [`EcdsaKey::reserve`] found none for, so the pool's target is not doubled
    /// again.
    pub(crate) fn take(
        &self,
        accel: &dyn Accelerator,
        observer: &dyn Observer,
    ) -> Result<Presignature, Error> {
        match self.pop(1, observer).pop() {
            Some(p) => {
                observer.presignature_used(PresignSource::Pool);
                Ok(p)
            }
            None => {
                observer.presignature_used(PresignSource::OnDemand);
                self.presign(accel, 1)?
                    .pop()
                    .ok_or(Error::Internal("presigning returned nothing"))
            }
        }
    }

    /// Removes up to `n` presignatures from the pool (the one place that does).
    fn pop(&self, n: usize, observer: &dyn Observer) -> Vec<Presignature> {
        let taken: Vec<Presignature> = {
            let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
            let keep = pool.ready.len().saturating_sub(n);
            pool.ready.drain(keep..).collect()
        };
        observer.presignatures_ready(-i64::try_from(taken.len()).unwrap_or(i64::MAX));
        taken
    }

    /// The pool target for a configured `target`: the key's own target, which starts at
    /// [`POOL_START`] and doubles each time signing finds the pool short after it has served
    /// the key ([`EcdsaKey::reserve`]), capped by `target`.
    /// A node with many keys then keeps a few presignatures for each (its first signatures
    /// run the online round only) and a full pool for those that sign often.
    pub fn pool_target(&self, target: usize) -> usize {
        self.want.load(Ordering::Acquire).min(target)
    }

    /// Whether the pool is below half of its target ([`EcdsaKey::pool_target`] of the
    /// configured `target`) and fewer than `parallel` refills are running; if so, counts one
    /// more refill as running (the caller must then call [`EcdsaKey::refill_step`] until it
    /// returns `Ok(false)` or an error).
    pub fn claim_refill(&self, target: usize, parallel: usize) -> bool {
        let target = self.pool_target(target);
        target > 0
            && self.pool_len() * 2 < target.max(2)
            && self
                .refilling
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                    (n < parallel.max(1)).then_some(n + 1)
                })
                .is_ok()
    }

    /// One step of a refill: presigns up to `batch` more presignatures towards the pool's
    /// target for the configured `target` (counting those that other running steps are
    /// making). Returns whether the pool still
    /// lacks some; once it does not, or on an error, ends the refill counted by
    /// [`EcdsaKey::claim_refill`]. A refill is done in steps so that other background work
    /// can run between them (see `crate::background`).
    pub fn refill_step(
        &self,
        accel: &dyn Accelerator,
        observer: &dyn Observer,
        target: usize,
        batch: usize,
    ) -> Result<bool, Error> {
        let target = self.pool_target(target);
        let result = (|| {
            let n = {
                let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                let n = target
                    .saturating_sub(pool.ready.len() + pool.making)
                    .min(batch.max(1));
                pool.making += n;
                n
            };
            if n == 0 {
                return Ok(false);
            }
            let made = self.presign(accel, n);
            let more = {
                let mut pool = self.pool.lock().unwrap_or_else(|e| e.into_inner());
                pool.making -= n;
                let made = made?;
                let n = made.len();
                pool.ready.extend(made);
                observer.presignatures_ready(i64::try_from(n).unwrap_or(i64::MAX));
                pool.ready.len() + pool.making < target
            };
            Ok(more)
        })();
        if !matches!(result, Ok(true)) {
            self.refilling.fetch_sub(1, Ordering::AcqRel);
        }
        result
    }
}

impl Drop for EcdsaKey {
    fn drop(&mut self) {
        let pooled = self.pool.get_mut().map_or(0, |p| p.ready.len());
        if pooled > 0 {
            tracing::debug!(pooled, "dropping a key's unused presignatures");
        }
    }
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoadedKey::Ed25519(_) => "LoadedKey::Ed25519(<redacted>)",
            LoadedKey::Bip340(_) => "LoadedKey::Bip340(<redacted>)",
            LoadedKey::Ecdsa(_) => "LoadedKey::Ecdsa(<redacted>)",
            LoadedKey::Ed25519Party(_) => "LoadedKey::Ed25519Party(<redacted>)",
            LoadedKey::Bip340Party(_) => "LoadedKey::Bip340Party(<redacted>)",
            LoadedKey::EcdsaParty(_) => "LoadedKey::EcdsaParty(<redacted>)",
        })
    }
}

impl LoadedKey {
    /// Runs the embedded DKG among `n` parties with threshold `t`.
    pub fn generate(
        accel: &dyn Accelerator,
        scheme: Scheme,
        t: u16,
        n: u16,
    ) -> Result<Self, Error> {
        Ok(match scheme {
            Scheme::Ed25519 => {
                LoadedKey::Ed25519(embedded::dkg::<Ed25519Suite>(accel, t, n, &mut OsRng)?)
            }
            Scheme::Bip340 => {
                LoadedKey::Bip340(embedded::dkg::<Bip340Suite>(accel, t, n, &mut OsRng)?)
            }
            // Base OT only for the pairs of the signer set the embedded coordinator uses.
            Scheme::EcdsaSecp256k1 => LoadedKey::Ecdsa(EcdsaKey::new(dkls23::embedded::dkg_for(
                accel,
                t,
                n,
                &signer_set(t),
                &mut OsRng,
            )?)),
        })
    }

    /// Splits an existing secret key among `n` parties with threshold `t` (trusted dealer).
    pub fn import(
        accel: &dyn Accelerator,
        scheme: Scheme,
        secret: &[u8],
        t: u16,
        n: u16,
    ) -> Result<Self, Error> {
        let bad_secret = |e: threshold::Error| match e {
            threshold::Error::InvalidSecretKey => Error::invalid(
                "secret_key",
                "not a valid secret key for this scheme (zero or out of range)",
            ),
            other => Error::Protocol(other),
        };
        Ok(match scheme {
            Scheme::Ed25519 => {
                let seed: &[u8; 32] = secret.try_into().map_err(|_| {
                    Error::invalid("secret_key", "must be the 32-byte Ed25519 seed")
                })?;
                let scalar = Ed25519Suite::secret_scalar_from_seed(seed);
                LoadedKey::Ed25519(
                    embedded::import::<Ed25519Suite>(accel, scalar.as_slice(), t, n, &mut OsRng)
                        .map_err(bad_secret)?,
                )
            }
            Scheme::Bip340 => LoadedKey::Bip340(
                embedded::import::<Bip340Suite>(accel, secret, t, n, &mut OsRng)
                    .map_err(bad_secret)?,
            ),
            Scheme::EcdsaSecp256k1 => {
                let secret: &[u8; 32] = secret.try_into().map_err(|_| {
                    Error::invalid("secret_key", "must be the 32-byte secp256k1 secret key")
                })?;
                let set = dkls23::embedded::import(accel, secret, t, n, &mut OsRng).map_err(
                    |e| match e {
                        dkls23::Error::InvalidParameters(what) => {
                            Error::invalid("secret_key", what)
                        }
                        other => Error::from(other),
                    },
                )?;
                LoadedKey::Ecdsa(EcdsaKey::new(set))
            }
        })
    }

    /// Party `p`'s own part of a whole key set (for a dealer handing out the shares of an
    /// imported key to the nodes).
    pub fn party(&self, p: u16) -> Result<Self, Error> {
        let missing = || Error::invalid("parties", format!("no party {p} in this key"));
        Ok(match self {
            LoadedKey::Ed25519(set) => LoadedKey::Ed25519Party(
                PartyKey::from_set(set, threshold::Identifier::new(p)?).ok_or_else(missing)?,
            ),
            LoadedKey::Bip340(set) => LoadedKey::Bip340Party(
                PartyKey::from_set(set, threshold::Identifier::new(p)?).ok_or_else(missing)?,
            ),
            LoadedKey::Ecdsa(k) => {
                let set = k.set.lock().unwrap_or_else(|e| e.into_inner());
                LoadedKey::EcdsaParty(EcdsaPartyKey::new(
                    set.share(p).ok_or_else(missing)?.clone(),
                ))
            }
            _ => return Err(Error::Internal("a party's share has no other parties")),
        })
    }

    /// Decodes a key set (or one party's key) stored by [`LoadedKey::to_bytes`].
    pub fn from_bytes(scheme: Scheme, bytes: &[u8]) -> Result<Self, Error> {
        let party = PartyKey::<Ed25519Suite>::is_party_encoding(bytes);
        Ok(match scheme {
            Scheme::Ed25519 if party => LoadedKey::Ed25519Party(PartyKey::from_bytes(bytes)?),
            Scheme::Bip340 if party => LoadedKey::Bip340Party(PartyKey::from_bytes(bytes)?),
            Scheme::Ed25519 => LoadedKey::Ed25519(KeySet::from_bytes(bytes)?),
            Scheme::Bip340 => LoadedKey::Bip340(KeySet::from_bytes(bytes)?),
            Scheme::EcdsaSecp256k1 if bytes.starts_with(ECDSA_SHARE_MAGIC) => {
                LoadedKey::EcdsaParty(EcdsaPartyKey::new(dkls23::KeyShare::from_bytes(bytes)?))
            }
            Scheme::EcdsaSecp256k1 => {
                LoadedKey::Ecdsa(EcdsaKey::new(dkls23::KeySet::from_bytes(bytes)?))
            }
        })
    }

    /// The key set's serialized form (secret; zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            LoadedKey::Ed25519(k) => k.to_bytes(),
            LoadedKey::Bip340(k) => k.to_bytes(),
            LoadedKey::Ecdsa(k) => k.set.lock().unwrap_or_else(|e| e.into_inner()).to_bytes(),
            LoadedKey::Ed25519Party(k) => k.to_bytes(),
            LoadedKey::Bip340Party(k) => k.to_bytes(),
            LoadedKey::EcdsaParty(k) => k.share().to_bytes(),
        }
    }

    /// The group public key (Ed25519 point or BIP340 x-only internal key, 32 bytes; ECDSA
    /// SEC1-compressed point, 33 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            LoadedKey::Ed25519(k) => k.public_key(),
            LoadedKey::Bip340(k) => k.public_key(),
            LoadedKey::Ecdsa(k) => k.public_key().to_vec(),
            LoadedKey::Ed25519Party(k) => k.public_key(),
            LoadedKey::Bip340Party(k) => k.public_key(),
            LoadedKey::EcdsaParty(k) => k.public_key().to_vec(),
        }
    }

    /// Whether this is one party's share of a distributed key (rather than every party's).
    pub fn is_party_share(&self) -> bool {
        matches!(
            self,
            LoadedKey::Ed25519Party(_) | LoadedKey::Bip340Party(_) | LoadedKey::EcdsaParty(_)
        )
    }

    /// The scheme.
    pub fn scheme(&self) -> Scheme {
        match self {
            LoadedKey::Ed25519(_) | LoadedKey::Ed25519Party(_) => Scheme::Ed25519,
            LoadedKey::Bip340(_) | LoadedKey::Bip340Party(_) => Scheme::Bip340,
            LoadedKey::Ecdsa(_) | LoadedKey::EcdsaParty(_) => Scheme::EcdsaSecp256k1,
        }
    }
}

/// The BIP341 tweak to sign under (BIP340 keys only).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Taproot {
    /// Plain BIP340 under the internal key.
    None,
    /// BIP86 key-path output key (empty script tree).
    KeyPath,
    /// Output key committing to this script tree root.
    ScriptRoot([u8; 32]),
}

impl Taproot {
    pub(crate) fn tweak(self) -> TaprootTweak {
        match self {
            Taproot::None => TaprootTweak::None,
            Taproot::KeyPath => TaprootTweak::KeyPath,
            Taproot::ScriptRoot(r) => TaprootTweak::ScriptRoot(r),
        }
    }
}

/// Decrypted keys (with their public metadata, [`KeyRecord::without_sealed`]) kept in memory
/// after first use.
#[derive(Debug, Default)]
pub struct KeyCache {
    keys: RwLock<HashMap<String, CachedKey>>,
}

/// A cached key: its stored record (public metadata) and the decrypted key set.
pub type CachedKey = (Arc<KeyRecord>, Arc<LoadedKey>);

impl KeyCache {
    /// The cached key, if loaded.
    pub fn get(&self, key_id: &str) -> Option<CachedKey> {
        self.keys
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(key_id)
            .cloned()
    }

    /// Caches a key.
    pub fn insert(&self, record: Arc<KeyRecord>, key: Arc<LoadedKey>) {
        self.keys
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(record.key_id.clone(), (record, key));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::observe::NoObserver;

    /// A set whose signer pair has no OT state (here: a DKG that set up only the pair (1, 3))
    /// gets its base OT when it first presigns, and that change is reported once, for the
    /// caller to store; presigning with the state in place changes nothing.
    #[test]
    fn a_readied_pair_is_reported_once_for_storing() {
        let accel = backend_cpu::CpuBackend::new();
        let set = dkls23::embedded::dkg_for(&accel, 2, 3, &[1, 3], &mut OsRng).unwrap();
        let key = EcdsaKey::new(set);
        assert!(!key.take_ot_changed(), "nothing changed yet");
        key.take(&accel, &NoObserver).unwrap();
        assert!(key.take_ot_changed(), "the pair (1, 2) was set up");
        assert!(!key.take_ot_changed(), "reported once");
        key.take(&accel, &NoObserver).unwrap();
        assert!(!key.take_ot_changed(), "a ready pair is not set up again");
        key.note_ot_changed();
        assert!(key.take_ot_changed(), "a failed store is retried");
    }

    /// A key's pool target starts at 4 and doubles when a pool that has served the key runs
    /// short, never past the configured target; an empty pool that never served (a key just
    /// loaded) does not grow it.
    #[test]
    fn the_pool_target_grows_only_when_a_serving_pool_runs_short() {
        let accel = backend_cpu::CpuBackend::new();
        let set = dkls23::embedded::dkg_for(&accel, 2, 3, &[1, 2], &mut OsRng).unwrap();
        let key = EcdsaKey::new(set);
        assert_eq!(key.pool_target(64), 4);
        assert!(key.reserve(1, &NoObserver).is_empty());
        assert_eq!(key.pool_target(64), 4, "a pool that never served stays");
        assert!(key.claim_refill(64, 1));
        while key.refill_step(&accel, &NoObserver, 64, 4).unwrap() {}
        assert_eq!(key.pool_len(), 4);
        assert_eq!(key.reserve(5, &NoObserver).len(), 4);
        assert_eq!(key.pool_target(64), 8, "served and short: doubled");
        assert_eq!(key.pool_target(6), 6, "capped by the configured target");
    }
}
