//! The use cases: key management (create, import, get, list), signing (one message or a
//! batch), verification and status. API adapters translate their requests into the types
//! here and the [`Failure`]s back into status codes; nothing here knows a transport.

use std::sync::Arc;

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::admission::{CLASS_WAIT, Gate};
use crate::audit::Event;
use crate::auth::{Auth, AuthMode, Caller, Credential, RateLimits, api_key_hash};
use crate::coordinator::{Coordinator, Cost, JobBatcher, Signature, run_jobs};
use crate::error::joined;
use crate::jobs::{Job, JobOutput};
use crate::keys::{KeyCache, LoadedKey, Taproot};
use crate::peer::NewKey;
use crate::ports::{
    IdempotencyEntry, IdempotencyRecord, KeyOrigin, KeyRecord, Sealer, SignatureRecord, Store,
    now_ms,
};
use crate::{Error, Observer, Queue, Scheme};

mod chains;
pub use chains::{ChainOptions, ChainSigned};

pub use crate::requests::{
    CreateKey, Failure, ImportKey, KeyPage, KeyView, Limits, Outcome, SignRequest, StatusView,
    UseCase, VerifyRequest,
};

/// Longest key label, in bytes.
pub const MAX_LABEL_BYTES: usize = 256;
/// Longest idempotency key, in bytes.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// Most parties of a key.
pub const MAX_PARTIES: u32 = 255;
/// Most keys per `ListKeys` page.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// Keys per `ListKeys` page when the request leaves the size at 0.
pub const DEFAULT_PAGE_SIZE: u32 = 100;

fn with_scheme<T>(scheme: Scheme, r: Result<(T, Cost), Error>) -> UseCase<T> {
    match r {
        Ok((value, cost)) => Ok(Outcome {
            value,
            scheme: Some(scheme),
            cost,
        }),
        Err(error) => Err(Failure {
            error,
            scheme: Some(scheme),
        }),
    }
}

/// Everything the use cases run on.
#[derive(Debug)]
pub struct App {
    store: Arc<dyn Store>,
    sealer: Arc<dyn Sealer>,
    coordinator: Arc<dyn Coordinator>,
    batcher: Arc<JobBatcher>,
    observer: Arc<dyn Observer>,
    cache: KeyCache,
    limits: Limits,
    backend: String,
    auth: Auth,
    chains: Option<Arc<dyn crate::chain::Chains>>,
    broadcaster: Option<Arc<dyn crate::chain::Broadcaster>>,
    operator: Arc<Caller>,
    rates: RateLimits,
    keygen: Gate,
    batches: Gate,
}

/// The parts an [`App`] is built from.
#[derive(Debug)]
pub struct AppParts {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// The KEK.
    pub sealer: Arc<dyn Sealer>,
    /// Who runs the parties.
    pub coordinator: Arc<dyn Coordinator>,
    /// The batcher (verification runs on it directly).
    pub batcher: Arc<JobBatcher>,
    /// Metrics.
    pub observer: Arc<dyn Observer>,
    /// Request limits.
    pub limits: Limits,
    /// The configured backend name, for `GetStatus`.
    pub backend: String,
    /// Authentication mode and registered clients.
    pub auth: Auth,
    /// The chain adapter (`None`: the chain calls answer FAILED_PRECONDITION).
    pub chains: Option<Arc<dyn crate::chain::Chains>>,
    /// The chains' nodes signed transactions can be broadcast to, if any.
    pub broadcaster: Option<Arc<dyn crate::chain::Broadcaster>>,
}

/// A new key id: 12 hex digits of creation time in ms, then 20 random hex digits, so ids sort
/// by creation time.
fn new_key_id(created_at_ms: u64) -> String {
    let mut rnd = [0u8; 10];
    OsRng.fill_bytes(&mut rnd);
    format!(
        "{:012x}{}",
        created_at_ms & 0xffff_ffff_ffff,
        hex::encode(rnd)
    )
}

/// What is stored as the creator or recipient: the client's name, empty for the local
/// operator (authentication off).
fn client_tag(caller: &Caller) -> String {
    if caller.name == crate::auth::OPERATOR && caller.policy == crate::auth::Policy::everything() {
        String::new()
    } else {
        caller.name.clone()
    }
}

/// The idempotency scope of key creation: per client, so one client's idempotency keys
/// never answer another's requests.
fn creation_scope(op: &str, caller: &Caller) -> String {
    let tag = client_tag(caller);
    if tag.is_empty() {
        op.to_owned()
    } else {
        format!("{op}\0{tag}")
    }
}

/// Longest key id a request may name, in bytes (ids this service makes have 32).
pub const MAX_KEY_ID_BYTES: usize = 64;

/// Checks (t, n, label) for `scheme` against `limits` (the cost cap on n).
pub fn check_shape(
    scheme: Scheme,
    threshold: u32,
    parties: u32,
    label: &str,
    limits: &Limits,
) -> Result<(u16, u16), Error> {
    let cap = match scheme {
        Scheme::EcdsaSecp256k1 => limits.max_parties_ecdsa,
        Scheme::Ed25519 | Scheme::Bip340 => limits.max_parties_frost,
    }
    .min(MAX_PARTIES);
    if parties == 0 || parties > cap {
        return Err(Error::invalid(
            "parties",
            format!(
                "must be between 1 and {cap} for {scheme} (got {parties}; limits.max_parties_* sets the cap)"
            ),
        ));
    }
    if threshold == 0 {
        return Err(Error::invalid("threshold", "must be ≥ 1 (got 0)"));
    }
    if threshold < scheme.min_threshold() {
        return Err(Error::invalid(
            "threshold",
            format!(
                "must be ≥ {} for {scheme} (got {threshold}): threshold ECDSA needs at least two signers",
                scheme.min_threshold()
            ),
        ));
    }
    if threshold > parties {
        return Err(Error::invalid(
            "threshold",
            format!("must be ≤ parties ({threshold} > {parties})"),
        ));
    }
    if label.len() > MAX_LABEL_BYTES {
        return Err(Error::invalid(
            "label",
            format!("must be at most {MAX_LABEL_BYTES} bytes"),
        ));
    }
    let t = u16::try_from(threshold).map_err(|_| Error::Internal("threshold ≤ 255"))?;
    let n = u16::try_from(parties).map_err(|_| Error::Internal("parties ≤ 255"))?;
    Ok((t, n))
}

/// The Taproot option of a signing request.
pub fn taproot_of(scheme: Scheme, root: Option<&[u8]>) -> Result<Taproot, Error> {
    match (scheme, root) {
        (_, None) => Ok(Taproot::None),
        (Scheme::Ed25519 | Scheme::EcdsaSecp256k1, Some(_)) => Err(Error::invalid(
            "taproot_merkle_root",
            "only applies to SCHEME_BIP340 keys; leave it unset",
        )),
        (Scheme::Bip340, Some([])) => Ok(Taproot::KeyPath),
        (Scheme::Bip340, Some(r)) => match <[u8; 32]>::try_from(r) {
            Ok(root) => Ok(Taproot::ScriptRoot(root)),
            Err(_) => Err(Error::invalid(
                "taproot_merkle_root",
                format!(
                    "must be unset, empty (BIP86 key path) or 32 bytes (script tree root); got {} bytes",
                    r.len()
                ),
            )),
        },
    }
}

fn check_key_id(key_id: &str) -> Result<(), Error> {
    if key_id.is_empty() {
        return Err(Error::invalid("key_id", "must be set"));
    }
    if key_id.len() > MAX_KEY_ID_BYTES {
        return Err(Error::invalid(
            "key_id",
            format!("must be at most {MAX_KEY_ID_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn check_idempotency_key(k: &str) -> Result<(), Error> {
    if k.len() > MAX_IDEMPOTENCY_KEY_BYTES {
        return Err(Error::invalid(
            "idempotency_key",
            format!("must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn sign_fingerprint(key_id: &str, message: &[u8], root: Option<&[u8]>) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tessera/v1/sign\0");
    h.update((key_id.len() as u64).to_be_bytes());
    h.update(key_id.as_bytes());
    h.update((message.len() as u64).to_be_bytes());
    h.update(message);
    match root {
        None => h.update([0u8]),
        Some(r) => {
            h.update([1u8]);
            h.update(r);
        }
    }
    h.finalize().to_vec()
}

/// Fingerprint of a key-creating request; `public_key` binds an import to the secret it
/// imported without storing anything derived from the secret but its public key.
fn key_fingerprint(
    op: &str,
    scheme: Scheme,
    t: u32,
    n: u32,
    label: &str,
    public_key: &[u8],
) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"tessera/v1/key\0");
    for part in [
        op.as_bytes(),
        scheme.as_str().as_bytes(),
        label.as_bytes(),
        public_key,
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.update(t.to_be_bytes());
    h.update(n.to_be_bytes());
    h.finalize().to_vec()
}

fn encode<T: Serialize>(v: &T) -> Result<Vec<u8>, Error> {
    serde_json::to_vec(v).map_err(|_| Error::Internal("encoding a stored response"))
}

fn replay<T: for<'de> Deserialize<'de>>(r: &IdempotencyRecord, fp: &[u8]) -> Result<T, Error> {
    if r.fingerprint != fp {
        return Err(Error::IdempotencyConflict);
    }
    serde_json::from_slice(&r.response).map_err(|e| {
        Error::Storage(crate::ports::StoreError::Corrupt {
            what: "idempotency record".into(),
            source: Box::new(e),
        })
    })
}

impl App {
    /// Builds the application from its parts.
    pub fn new(parts: AppParts) -> Self {
        Self {
            store: parts.store,
            sealer: parts.sealer,
            coordinator: parts.coordinator,
            batcher: parts.batcher,
            observer: parts.observer,
            cache: KeyCache::default(),
            limits: parts.limits,
            backend: parts.backend,
            auth: parts.auth,
            chains: parts.chains,
            broadcaster: parts.broadcaster,
            operator: Arc::new(Caller::operator()),
            rates: RateLimits::default(),
            keygen: Gate::new(
                "key generation",
                parts.limits.max_concurrent_keygen,
                CLASS_WAIT,
            ),
            batches: Gate::new(
                "SignBatch messages in flight",
                parts.limits.max_batch_items_in_flight,
                CLASS_WAIT,
            ),
        }
    }

    /// The authentication mode.
    pub fn auth_mode(&self) -> AuthMode {
        self.auth.mode
    }

    /// Who is calling: the local operator when authentication is off; otherwise the client
    /// the credential belongs to. No or an unknown credential is
    /// [`Error::Unauthenticated`]; a verified certificate whose identity has no policy is
    /// [`Error::PermissionDenied`] (and an audit event); a client over its policy's rate is
    /// [`Error::RateLimited`].
    pub async fn authenticate(&self, credential: &Credential) -> Result<Arc<Caller>, Error> {
        let caller = self.identify(credential).await?;
        self.rates.admit(&caller)?;
        Ok(caller)
    }

    async fn identify(&self, credential: &Credential) -> Result<Arc<Caller>, Error> {
        match (self.auth.mode, credential) {
            (AuthMode::None, _) => Ok(Arc::clone(&self.operator)),
            (AuthMode::ApiKey, Credential::ApiKey(key)) => self
                .auth
                .clients
                .by_api_key(&api_key_hash(key))
                .ok_or(Error::Unauthenticated("unknown or revoked API key")),
            (AuthMode::ApiKey, _) => Err(Error::Unauthenticated(
                "this server requires an API key: send `authorization: Bearer <api key>`",
            )),
            (AuthMode::Mtls, Credential::Certificate(names)) => {
                if let Some(c) = names
                    .iter()
                    .find_map(|n| self.auth.clients.by_certificate(n))
                {
                    return Ok(c);
                }
                let who = names.first().cloned().unwrap_or_default();
                Err(self.deny(&who, "use this service", None).await)
            }
            (AuthMode::Mtls, _) => Err(Error::Unauthenticated(
                "this server requires a client certificate (mutual TLS)",
            )),
        }
    }

    /// Refuses `action` to `client`: records the decision in the audit log and returns the
    /// error to answer with.
    async fn deny(&self, client: &str, action: &'static str, key_id: Option<&str>) -> Error {
        let event = Event::AccessDenied {
            client: client.to_owned(),
            action: action.to_owned(),
            key_id: key_id.map(str::to_owned),
            at_ms: now_ms(),
        };
        tracing::warn!(client, action, key_id, "access denied");
        if let Err(e) = self
            .blocking("audit write", move |s| Ok(s.record_event(event)?))
            .await
        {
            tracing::error!(error = %e.chain(), "recording an access decision failed");
        }
        Error::PermissionDenied {
            client: client.to_owned(),
            action,
            key_id: key_id.map(str::to_owned),
        }
    }

    /// The key `key_id` for `caller`, or a denial when its policy does not allow it. A key
    /// that does not exist is only reported missing to a caller whose policy names it, so
    /// nobody learns which ids exist.
    async fn usable_key(
        &self,
        caller: &Caller,
        action: &'static str,
        key_id: &str,
    ) -> Result<(Arc<KeyRecord>, Arc<LoadedKey>), Error> {
        match self.load_key(key_id).await {
            Ok((rec, key)) if caller.may_use(&rec) => Ok((rec, key)),
            Err(e @ Error::KeyNotFound { .. }) if caller.policy.names_key(key_id) => Err(e),
            Ok(_) | Err(Error::KeyNotFound { .. }) => {
                Err(self.deny(&caller.name, action, Some(key_id)).await)
            }
            Err(e) => Err(e),
        }
    }

    /// Refuses key creation to a non-admin caller or for a scheme its policy does not allow.
    async fn check_admin(
        &self,
        caller: &Caller,
        action: &'static str,
        scheme: Scheme,
    ) -> Result<(), Error> {
        if caller.policy.admin && caller.policy.allows_scheme(scheme) {
            Ok(())
        } else {
            Err(self.deny(&caller.name, action, None).await)
        }
    }

    /// Stores an embedded threshold-ECDSA key again when presigning changed its pairwise OT
    /// state (a pair's base OT run, or a pair discarded after a failed check), so that a
    /// restart starts from the state in use. A failure is logged and retried after the
    /// key's next signature.
    async fn store_changed_ot(&self, key_id: &str, key: Arc<LoadedKey>) {
        let LoadedKey::Ecdsa(k) = key.as_ref() else {
            return;
        };
        if !k.take_ot_changed() {
            return;
        }
        let (id, sealer, stored) = (
            key_id.to_owned(),
            Arc::clone(&self.sealer),
            Arc::clone(&key),
        );
        let r = self
            .blocking("key update", move |s| {
                reseal_key(s, sealer.as_ref(), &id, &stored)
            })
            .await;
        if let Err(e) = r {
            tracing::error!(key_id, error = %e.chain(), "storing a key's new pairwise OT state failed; retried after its next signature");
            if let LoadedKey::Ecdsa(k) = key.as_ref() {
                k.note_ot_changed();
            }
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        task: &'static str,
        f: impl FnOnce(&dyn Store) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let store = Arc::clone(&self.store);
        joined(
            task,
            tokio::task::spawn_blocking(move || f(store.as_ref())).await,
        )
    }

    /// Checks that the store answers and that the KEK opens a stored key (the newest one,
    /// if any): a wrong KEK is found here, before any request fails on it.
    pub async fn check_health(&self) -> Result<(), Error> {
        let first = self
            .blocking("health check", |s| Ok(s.list_keys(None, 1)?))
            .await?;
        if let Some(r) = first.first() {
            self.sealer.open(&r.key_id, &r.sealed)?;
        }
        Ok(())
    }

    fn check_message(&self, scheme: Scheme, field: &'static str, m: &[u8]) -> Result<(), Error> {
        match scheme {
            Scheme::Bip340 if m.len() != 32 => Err(Error::invalid(
                field,
                format!("BIP340 messages must be exactly 32 bytes (got {})", m.len()),
            )),
            Scheme::EcdsaSecp256k1 if m.len() != 32 => Err(Error::invalid(
                field,
                format!(
                    "ECDSA signs a 32-byte prehash (e.g. Keccak-256 or SHA-256d of the payload); got {} bytes",
                    m.len()
                ),
            )),
            Scheme::Ed25519 if m.len() > self.limits.max_message_bytes => Err(Error::invalid(
                field,
                format!(
                    "at most {} bytes for Ed25519 (got {})",
                    self.limits.max_message_bytes,
                    m.len()
                ),
            )),
            _ => Ok(()),
        }
    }

    async fn load_key(&self, key_id: &str) -> Result<(Arc<KeyRecord>, Arc<LoadedKey>), Error> {
        check_key_id(key_id)?;
        if let Some(hit) = self.cache.get(key_id) {
            return Ok(hit);
        }
        let id = key_id.to_owned();
        let sealer = Arc::clone(&self.sealer);
        let (rec, key) = self
            .blocking("key load", move |s| {
                let rec = s
                    .get_key(&id)?
                    .ok_or_else(|| Error::KeyNotFound { key_id: id.clone() })?;
                rec.verify(sealer.as_ref())?;
                let plain = sealer.open(&id, &rec.sealed)?;
                let key = LoadedKey::from_bytes(rec.scheme, &plain)?;
                Ok((Arc::new(rec.without_sealed()), Arc::new(key)))
            })
            .await?;
        self.cache.insert(Arc::clone(&rec), Arc::clone(&key));
        Ok((rec, key))
    }

    /// `CreateKey`.
    pub async fn create_key(&self, caller: &Caller, req: CreateKey) -> UseCase<KeyView> {
        let scheme = req.scheme;
        let r = async {
            self.check_admin(caller, "CreateKey", scheme).await?;
            let scope = creation_scope("CreateKey", caller);
            let (t, n) = check_shape(scheme, req.threshold, req.parties, &req.label, &self.limits)?;
            check_idempotency_key(&req.idempotency_key)?;
            let fp = key_fingerprint(
                "create",
                scheme,
                req.threshold,
                req.parties,
                &req.label,
                &[],
            );
            if let Some(view) = self.replayed_key(&scope, &req.idempotency_key, &fp).await? {
                return Ok((view, Cost::default()));
            }
            let _class = self.keygen.enter(1).await?;
            let created_at_ms = now_ms();
            let new = NewKey {
                key_id: new_key_id(created_at_ms),
                scheme,
                threshold: t,
                parties: n,
                label: req.label.clone(),
                created_at_ms,
                owner: client_tag(caller),
            };
            let (key, cost) = self.coordinator.generate(&new).await?;
            let view = self
                .persist(
                    (new.key_id, created_at_ms),
                    key,
                    &req.threshold,
                    &req.parties,
                    req.label,
                    KeyOrigin::Dkg,
                    (&scope, &req.idempotency_key),
                    client_tag(caller),
                    |_| fp.clone(),
                )
                .await?;
            Ok((view, cost))
        }
        .await;
        with_scheme(scheme, r)
    }

    /// `ImportKey`.
    pub async fn import_key(&self, caller: &Caller, req: ImportKey) -> UseCase<KeyView> {
        let scheme = req.scheme;
        let r = async {
            self.check_admin(caller, "ImportKey", scheme).await?;
            let scope = creation_scope("ImportKey", caller);
            let (t, n) = check_shape(scheme, req.threshold, req.parties, &req.label, &self.limits)?;
            check_idempotency_key(&req.idempotency_key)?;
            if req.secret_key.len() != 32 {
                return Err(Error::invalid(
                    "secret_key",
                    format!("must be 32 bytes (got {})", req.secret_key.len()),
                ));
            }
            // The fingerprint binds the secret through a MAC under the KEK, so a retry is
            // recognised before anything is split or sent to another node, and a reused
            // idempotency key with another secret is a conflict.
            const TAG: &[u8] = b"tessera/v1/import-secret\0";
            let mut tagged = Zeroizing::new(Vec::with_capacity(TAG.len() + 32));
            tagged.extend_from_slice(TAG);
            tagged.extend_from_slice(&req.secret_key);
            let fp = key_fingerprint(
                "import",
                scheme,
                req.threshold,
                req.parties,
                &req.label,
                &self.sealer.mac(&tagged),
            );
            drop(tagged);
            if let Some(view) = self.replayed_key(&scope, &req.idempotency_key, &fp).await? {
                return Ok((view, Cost::default()));
            }
            let _class = self.keygen.enter(1).await?;
            let created_at_ms = now_ms();
            let new = NewKey {
                key_id: new_key_id(created_at_ms),
                scheme,
                threshold: t,
                parties: n,
                label: req.label.clone(),
                created_at_ms,
                owner: client_tag(caller),
            };
            let (key, cost) = self.coordinator.import(&new, req.secret_key).await?;
            let view = self
                .persist(
                    (new.key_id, created_at_ms),
                    key,
                    &req.threshold,
                    &req.parties,
                    req.label,
                    KeyOrigin::Import,
                    (&scope, &req.idempotency_key),
                    client_tag(caller),
                    |_| fp.clone(),
                )
                .await?;
            Ok((view, cost))
        }
        .await;
        with_scheme(scheme, r)
    }

    async fn replayed_key(
        &self,
        scope: &str,
        idempotency_key: &str,
        fp: &[u8],
    ) -> Result<Option<KeyView>, Error> {
        if idempotency_key.is_empty() {
            return Ok(None);
        }
        let (scope, ik) = (scope.to_owned(), idempotency_key.to_owned());
        let existing = self
            .blocking("idempotency lookup", move |s| {
                Ok(s.get_idempotency(&scope, &ik)?)
            })
            .await?;
        existing.map(|r| replay(&r, fp)).transpose()
    }

    #[allow(clippy::too_many_arguments)]
    async fn persist(
        &self,
        (key_id, created_at_ms): (String, u64),
        key: LoadedKey,
        threshold: &u32,
        parties: &u32,
        label: String,
        origin: KeyOrigin,
        (scope, idempotency_key): (&str, &str),
        owner: String,
        fingerprint: impl Fn(&[u8]) -> Vec<u8>,
    ) -> Result<KeyView, Error> {
        let public_key = key.public_key();
        let fp = fingerprint(&public_key);
        let prepared = (|| -> Result<_, Error> {
            let record = KeyRecord {
                key_id: key_id.clone(),
                scheme: key.scheme(),
                threshold: *threshold,
                parties: *parties,
                public_key,
                label,
                created_at_ms,
                owner,
                sealed: self.sealer.seal(&key_id, &key.to_bytes())?,
                mac: Vec::new(),
            }
            .authenticate(self.sealer.as_ref());
            let view = KeyView::from(&record);
            let entry = (!idempotency_key.is_empty())
                .then(|| -> Result<IdempotencyEntry, Error> {
                    Ok(IdempotencyEntry {
                        scope: scope.to_owned(),
                        key: idempotency_key.to_owned(),
                        record: IdempotencyRecord {
                            fingerprint: fp.clone(),
                            response: encode(&view)?,
                            created_at_ms: crate::ports::now_ms(),
                        },
                    })
                })
                .transpose()?;
            Ok((record, view, entry))
        })();
        let earlier = match prepared {
            Ok((record, view, entry)) => {
                let rec = record.clone();
                self.blocking("key insert", move |s| {
                    Ok(s.insert_key(&rec, origin, entry.as_ref())?)
                })
                .await
                .map(|earlier| (record, view, earlier))
            }
            Err(e) => Err(e),
        };
        // Storing this node's share is the commit point of the key's creation: the other
        // nodes keep theirs only if it was stored.
        self.coordinator
            .settle(&key_id, matches!(earlier, Ok((_, _, None))))
            .await;
        let (record, view, earlier) = earlier?;
        if let Some(r) = earlier {
            return replay(&r, &fp);
        }
        let key = Arc::new(key);
        self.cache
            .insert(Arc::new(record.without_sealed()), Arc::clone(&key));
        self.coordinator.prepare(&view.key_id, &key);
        tracing::info!(key_id = %view.key_id, scheme = %view.scheme, threshold, parties, ?origin, "key created");
        Ok(view)
    }

    /// `GetKey`.
    pub async fn get_key(&self, caller: &Caller, key_id: String) -> UseCase<KeyView> {
        let r = async {
            check_key_id(&key_id)?;
            let id = key_id.clone();
            let found = self
                .blocking("key lookup", move |s| Ok(s.get_key(&id)?))
                .await?;
            match found {
                Some(r) if caller.may_use(&r) => {
                    r.verify(self.sealer.as_ref())?;
                    Ok(KeyView::from(&r))
                }
                None if caller.policy.names_key(&key_id) => Err(Error::KeyNotFound { key_id }),
                _ => Err(self.deny(&caller.name, "GetKey", Some(&key_id)).await),
            }
        }
        .await?;
        Ok(Outcome {
            scheme: Some(r.scheme),
            value: r,
            cost: Cost::default(),
        })
    }

    /// `ListKeys`: `page_size` 0 means [`DEFAULT_PAGE_SIZE`].
    pub async fn list_keys(
        &self,
        caller: &Caller,
        page_size: u32,
        page_token: String,
    ) -> UseCase<KeyPage> {
        let size = match page_size {
            0 => DEFAULT_PAGE_SIZE,
            n if n > MAX_PAGE_SIZE => {
                return Err(Error::invalid(
                    "page_size",
                    format!("must be at most {MAX_PAGE_SIZE}"),
                )
                .into());
            }
            n => n,
        } as usize;
        let mut after = (!page_token.is_empty()).then_some(page_token);
        // Only the keys the caller may use are listed: read on until the page (and one more,
        // to know whether a next page exists) is full or the keys run out.
        let mut recs = Vec::new();
        loop {
            let from = after.clone();
            let chunk = self
                .blocking("key listing", move |s| {
                    Ok(s.list_keys(from.as_deref(), size + 1)?)
                })
                .await?;
            let exhausted = chunk.len() <= size;
            after = chunk.last().map(|r| r.key_id.clone());
            for r in chunk.into_iter().filter(|r| caller.may_use(r)) {
                r.verify(self.sealer.as_ref())?;
                recs.push(r);
            }
            if exhausted || recs.len() > size {
                break;
            }
        }
        let more = recs.len() > size;
        recs.truncate(size);
        let next_page_token = match (more, recs.last()) {
            (true, Some(r)) => r.key_id.clone(),
            _ => String::new(),
        };
        Ok(Outcome {
            value: KeyPage {
                keys: recs.iter().map(KeyView::from).collect(),
                next_page_token,
            },
            scheme: None,
            cost: Cost::default(),
        })
    }

    /// `Sign` (one message) and `SignBatch` (many; no idempotency key).
    pub async fn sign(
        &self,
        caller: &Caller,
        req: SignRequest,
        batch: bool,
    ) -> UseCase<Vec<Signature>> {
        let action = if batch { "SignBatch" } else { "Sign" };
        let (rec, key) = self.usable_key(caller, action, &req.key_id).await?;
        let scheme = rec.scheme;
        let _class = if batch {
            match self.batches.enter(req.messages.len()).await {
                Ok(p) => Some(p),
                Err(e) => return with_scheme(scheme, Err(e)),
            }
        } else {
            None
        };
        let r = self
            .sign_loaded(
                Arc::clone(&rec),
                key,
                req,
                batch,
                (client_tag(caller), false),
            )
            .await;
        with_scheme(scheme, r)
    }

    /// A `Sign` forwarded by another node because this node is the home of its idempotency
    /// key: signed (or replayed) here, never forwarded again.
    /// The forwarding node checked `client`'s policy; the name is recorded with the
    /// signature.
    pub(crate) async fn sign_forwarded(
        &self,
        req: SignRequest,
        client: String,
    ) -> Result<Signature, Error> {
        let (rec, key) = self.load_key(&req.key_id).await?;
        if self.auth.mode != AuthMode::None {
            // This node's own policy for the client, as every co-signing node checks it.
            let allowed = self
                .auth
                .clients
                .by_name(&client)
                .is_some_and(|c| c.may_use(&rec));
            if !allowed {
                return Err(self.deny(&client, "Sign", Some(&req.key_id)).await);
            }
        }
        let (mut sigs, _) = self
            .sign_loaded(rec, key, req, false, (client, true))
            .await?;
        sigs.pop().ok_or(Error::Internal("no signature"))
    }

    async fn sign_loaded(
        &self,
        rec: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        req: SignRequest,
        batch: bool,
        (client, forwarded): (String, bool),
    ) -> Result<(Vec<Signature>, Cost), Error> {
        let field = if batch { "messages" } else { "message" };
        if req.messages.is_empty() {
            return Err(Error::invalid(field, "must hold at least one message"));
        }
        if req.messages.len() > self.limits.max_batch_messages {
            return Err(Error::invalid(
                field,
                format!(
                    "at most {} messages per request (got {})",
                    self.limits.max_batch_messages,
                    req.messages.len()
                ),
            ));
        }
        for m in &req.messages {
            self.check_message(rec.scheme, field, m)?;
        }
        let taproot = taproot_of(rec.scheme, req.taproot_merkle_root.as_deref())?;
        check_idempotency_key(&req.idempotency_key)?;
        let idem = match (req.idempotency_key.is_empty(), req.messages.as_slice()) {
            (true, _) => None,
            (false, [m]) => Some((
                req.idempotency_key.clone(),
                sign_fingerprint(&req.key_id, m, req.taproot_merkle_root.as_deref()),
            )),
            (false, _) => {
                return Err(Error::invalid(
                    "idempotency_key",
                    "applies to single-message requests only",
                ));
            }
        };
        if let Some((ik, _)) = &idem
            && !forwarded
            && let Some(home) = self.coordinator.idempotency_home(&req.key_id, ik)
        {
            // The key's idempotency records live on its home node: sign there, so the same
            // key gives the same signature whichever node the client asked.
            let sig = self.coordinator.forward_sign(home, req, &client).await?;
            return Ok((vec![sig], Cost::default()));
        }
        if let Some((ik, fp)) = &idem {
            let (id, ik) = (req.key_id.clone(), ik.clone());
            let existing = self
                .blocking("idempotency lookup", move |s| {
                    Ok(s.get_idempotency(&id, &ik)?)
                })
                .await?;
            if let Some(r) = existing {
                return Ok((vec![replay(&r, fp)?], Cost::default()));
            }
        }
        let hashes: Vec<[u8; 32]> = req
            .messages
            .iter()
            .map(|m| Sha256::digest(m).into())
            .collect();
        let signed = self
            .coordinator
            .sign(
                Arc::clone(&rec),
                Arc::clone(&key),
                req.messages,
                taproot,
                &client,
            )
            .await;
        self.store_changed_ot(&rec.key_id, key).await;
        let (signatures, cost) = signed?;
        let idempotency = match (&idem, signatures.as_slice()) {
            (Some((ik, fp)), [one]) => Some(IdempotencyEntry {
                scope: req.key_id.clone(),
                key: ik.clone(),
                record: IdempotencyRecord {
                    fingerprint: fp.clone(),
                    response: encode(one)?,
                    created_at_ms: crate::ports::now_ms(),
                },
            }),
            _ => None,
        };
        let record = SignatureRecord {
            key_id: req.key_id,
            client,
            message_hashes: hashes,
            idempotency,
            transaction: None,
        };
        let n = signatures.len() as u64;
        let earlier = self.record_signatures(record).await?;
        self.observer.signatures_issued(rec.scheme, n);
        match (earlier, idem) {
            (Some(r), Some((_, fp))) => Ok((vec![replay(&r, &fp)?], cost)),
            _ => Ok((signatures, cost)),
        }
    }

    /// Stores issued signatures (their audit events and idempotency record); answers the
    /// record an earlier request with the same idempotency key stored first, if any. The store
    /// calls back from its writer thread once the record is durable; no blocking thread waits
    /// meanwhile.
    async fn record_signatures(
        &self,
        record: SignatureRecord,
    ) -> Result<Option<IdempotencyRecord>, Error> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.store.submit_signatures(
            record,
            Box::new(move |r| {
                let _request_gone = tx.send(r);
            }),
        );
        Ok(rx
            .await
            .map_err(|_| Error::Storage(crate::ports::StoreError::Closed))??)
    }

    /// `Verify`.
    pub async fn verify(&self, req: VerifyRequest) -> UseCase<bool> {
        let scheme = req.scheme;
        let r = async {
            let key_len = scheme.public_key_len();
            if req.public_key.len() != key_len {
                return Err(Error::invalid(
                    "public_key",
                    format!(
                        "must be {key_len} bytes for {scheme} (got {})",
                        req.public_key.len()
                    ),
                ));
            }
            if req.signature.len() != 64 {
                return Err(Error::invalid(
                    "signature",
                    format!("must be 64 bytes (got {})", req.signature.len()),
                ));
            }
            self.check_message(scheme, "message", &req.message)?;
            let (outs, cost) = run_jobs(
                &self.batcher,
                Queue::Verify(scheme),
                vec![Job::Verify {
                    public_key: req.public_key,
                    message: req.message,
                    signature: req.signature,
                }],
            )
            .await?;
            Ok((matches!(outs.first(), Some(JobOutput::Valid(true))), cost))
        }
        .await;
        with_scheme(scheme, r)
    }

    /// `GetStatus`.
    pub async fn status(&self) -> UseCase<StatusView> {
        let key_count = self.blocking("key count", |s| Ok(s.key_count()?)).await?;
        Ok(Outcome {
            value: StatusView {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                backend: self.backend.clone(),
                mode: self.coordinator.mode().to_owned(),
                key_count,
            },
            scheme: None,
            cost: Cost::default(),
        })
    }

    /// Stops the batcher after it has finished what is queued (blocking; call it on a
    /// blocking thread).
    pub fn drain(&self) {
        self.batcher.shutdown();
    }
}

/// Replaces the sealed key material of `key_id`'s stored record with `key` (after its pairwise
/// OT state changed), checking the stored record's MAC first and authenticating the new one;
/// the same for a pending share (not settled yet). A key no longer stored is left alone.
pub(crate) fn reseal_key(
    store: &dyn Store,
    sealer: &dyn Sealer,
    key_id: &str,
    key: &LoadedKey,
) -> Result<(), Error> {
    let reseal = |mut rec: KeyRecord| -> Result<KeyRecord, Error> {
        rec.verify(sealer)?;
        rec.sealed = sealer.seal(key_id, &key.to_bytes())?;
        Ok(rec.authenticate(sealer))
    };
    if let Some(rec) = store.get_key(key_id)? {
        return Ok(store.replace_key_material(&reseal(rec)?)?);
    }
    match store.get_pending_key(key_id)? {
        Some(p) => Ok(store.replace_pending_material(&reseal(p.record)?)?),
        None => Ok(()),
    }
}
