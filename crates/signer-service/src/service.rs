//! The `tessera.v1.Signer` gRPC service: request validation, key loading, batching,
//! idempotency and metrics around the protocol engine.

use std::sync::Arc;
use std::time::Instant;

use accel_api::Accelerator;
use prost::Message;
use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use tonic::{Request, Response, Status};

use crate::Error;
use crate::batcher::Batcher;
use crate::config::{EcdsaConfig, LimitsConfig};
use crate::engine::{self, Job, JobOutput, KeyCache, LoadedKey, Taproot};
use crate::kek::Kek;
use crate::metrics::Metrics;
use crate::proto::signer_server::Signer;
use crate::proto::{
    CreateKeyRequest, GetKeyRequest, GetStatusRequest, ImportKeyRequest, KeyInfo, ListKeysRequest,
    ListKeysResponse, Scheme, SignBatchRequest, SignBatchResponse, SignRequest, SignResponse,
    StatusResponse, VerifyRequest, VerifyResponse,
};
use crate::store::{IdempotencyRecord, KeyRecord, KeyStore, SchemeKind, SignatureRecord, now_ms};

/// The batcher type the service uses.
pub type JobBatcher = Batcher<Job, Result<JobOutput, Error>>;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    /// Key store.
    pub store: Arc<dyn KeyStoreDebug>,
    /// Key-encryption key.
    pub kek: Kek,
    /// The metered accelerator.
    pub accel: Arc<dyn Accelerator>,
    /// Backend name for status and metrics.
    pub backend: &'static str,
    /// The dynamic batcher.
    pub batcher: JobBatcher,
    /// Decrypted keys.
    pub cache: KeyCache,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Request limits.
    pub limits: LimitsConfig,
    /// Presignature pool settings for ECDSA keys.
    pub ecdsa: EcdsaConfig,
}

/// A [`KeyStore`] that can be debug-printed (without contents).
pub trait KeyStoreDebug: KeyStore + std::fmt::Debug {}
impl<T: KeyStore + std::fmt::Debug> KeyStoreDebug for T {}

/// The gRPC service.
#[derive(Clone, Debug)]
pub struct SignerService {
    state: Arc<AppState>,
}

impl SignerService {
    /// A service over `state`.
    pub fn new(state: Arc<AppState>) -> Self {
        Self { state }
    }
}

const MAX_LABEL_BYTES: usize = 256;
const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
const MAX_PARTIES: u32 = 255;

fn scheme_of(field: &'static str, raw: i32) -> Result<SchemeKind, Error> {
    match Scheme::try_from(raw) {
        Ok(Scheme::Ed25519) => Ok(SchemeKind::Ed25519),
        Ok(Scheme::Bip340) => Ok(SchemeKind::Bip340),
        Ok(Scheme::EcdsaSecp256k1) => Ok(SchemeKind::EcdsaSecp256k1),
        Ok(Scheme::Unspecified) => Err(Error::invalid(
            field,
            "must be set (SCHEME_ED25519, SCHEME_BIP340 or SCHEME_ECDSA_SECP256K1)",
        )),
        Err(_) => Err(Error::invalid(field, format!("unknown scheme value {raw}"))),
    }
}

fn proto_scheme(s: SchemeKind) -> Scheme {
    match s {
        SchemeKind::Ed25519 => Scheme::Ed25519,
        SchemeKind::Bip340 => Scheme::Bip340,
        SchemeKind::EcdsaSecp256k1 => Scheme::EcdsaSecp256k1,
    }
}

fn check_shape(
    scheme: SchemeKind,
    threshold: u32,
    parties: u32,
    label: &str,
) -> Result<(u16, u16), Error> {
    if parties == 0 || parties > MAX_PARTIES {
        return Err(Error::invalid(
            "parties",
            format!("must be between 1 and {MAX_PARTIES} (got {parties})"),
        ));
    }
    if threshold == 0 {
        return Err(Error::invalid("threshold", "must be ≥ 1 (got 0)"));
    }
    if scheme == SchemeKind::EcdsaSecp256k1 && threshold < 2 {
        return Err(Error::invalid(
            "threshold",
            format!(
                "must be ≥ 2 for SCHEME_ECDSA_SECP256K1 (got {threshold}): threshold ECDSA needs at least two signers"
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
    Ok((threshold as u16, parties as u16))
}

fn key_info(r: &KeyRecord) -> KeyInfo {
    KeyInfo {
        key_id: r.key_id.clone(),
        scheme: proto_scheme(r.scheme) as i32,
        threshold: r.threshold,
        parties: r.parties,
        public_key: r.public_key.clone(),
        label: r.label.clone(),
        created_at: Some(prost_types::Timestamp {
            seconds: (r.created_at_ms / 1000) as i64,
            nanos: ((r.created_at_ms % 1000) * 1_000_000) as i32,
        }),
        ethereum_address: match r.scheme {
            SchemeKind::EcdsaSecp256k1 => ethereum_address(&r.public_key).unwrap_or_default(),
            _ => String::new(),
        },
    }
}

/// The EIP-55 checksummed Ethereum address of a SEC1-encoded secp256k1 public key: the last
/// 20 bytes of Keccak-256 over the uncompressed X‖Y.
pub fn ethereum_address(sec1: &[u8]) -> Option<String> {
    use accel_api::curves::k256::PublicKey;
    use accel_api::curves::k256::elliptic_curve::sec1::ToEncodedPoint;
    use sha3::{Digest as _, Keccak256};
    let pk = PublicKey::from_sec1_bytes(sec1).ok()?;
    let uncompressed = pk.to_encoded_point(false);
    let hash = Keccak256::digest(uncompressed.as_bytes().get(1..)?);
    Some(eip55(hash.get(12..)?))
}

/// EIP-55 mixed-case hex of a 20-byte address: a hex letter is upper-cased where the matching
/// nibble of Keccak-256(lower-case hex) is ≥ 8.
fn eip55(address: &[u8]) -> String {
    use sha3::{Digest as _, Keccak256};
    let lower = hex::encode(address);
    let check = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(2 + lower.len());
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (check[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

/// A new key id: 12 hex digits of creation time in ms, then 20 random hex digits, so ids
/// sort by creation time.
fn new_key_id(created_at_ms: u64) -> String {
    let mut rnd = [0u8; 10];
    OsRng.fill_bytes(&mut rnd);
    format!(
        "{:012x}{}",
        created_at_ms & 0xffff_ffff_ffff,
        hex::encode(rnd)
    )
}

fn taproot_of(scheme: SchemeKind, root: Option<&Vec<u8>>) -> Result<Taproot, Error> {
    match (scheme, root) {
        (_, None) => Ok(Taproot::None),
        (SchemeKind::Ed25519, Some(_)) => Err(Error::invalid(
            "taproot_merkle_root",
            "only applies to SCHEME_BIP340 keys; leave it unset",
        )),
        (SchemeKind::EcdsaSecp256k1, Some(_)) => Err(Error::invalid(
            "taproot_merkle_root",
            "only applies to SCHEME_BIP340 keys; leave it unset",
        )),
        (SchemeKind::Bip340, Some(r)) if r.is_empty() => Ok(Taproot::KeyPath),
        (SchemeKind::Bip340, Some(r)) => match <[u8; 32]>::try_from(r.as_slice()) {
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

fn fingerprint(key_id: &str, message: &[u8], root: Option<&Vec<u8>>) -> Vec<u8> {
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

impl AppState {
    fn check_message(
        &self,
        scheme: SchemeKind,
        field: &'static str,
        m: &[u8],
    ) -> Result<(), Error> {
        match scheme {
            SchemeKind::Bip340 if m.len() != 32 => Err(Error::invalid(
                field,
                format!("BIP340 messages must be exactly 32 bytes (got {})", m.len()),
            )),
            SchemeKind::EcdsaSecp256k1 if m.len() != 32 => Err(Error::invalid(
                field,
                format!(
                    "ECDSA signs a 32-byte prehash (e.g. Keccak-256 or SHA-256d of the payload); got {} bytes",
                    m.len()
                ),
            )),
            SchemeKind::Ed25519 if m.len() > self.limits.max_message_bytes => Err(Error::invalid(
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

    async fn load_key(
        self: &Arc<Self>,
        key_id: &str,
    ) -> Result<(Arc<KeyRecord>, Arc<LoadedKey>), Error> {
        if key_id.is_empty() {
            return Err(Error::invalid("key_id", "must be set"));
        }
        if let Some(hit) = self.cache.get(key_id) {
            return Ok(hit);
        }
        let st = Arc::clone(self);
        let id = key_id.to_owned();
        tokio::task::spawn_blocking(move || {
            let rec = st
                .store
                .get_key(&id)?
                .ok_or_else(|| Error::KeyNotFound { key_id: id.clone() })?;
            let plain = st.kek.open(&id, &rec.sealed)?;
            let key = Arc::new(LoadedKey::from_bytes(rec.scheme, &plain)?);
            let rec = Arc::new(rec);
            st.cache.insert(Arc::clone(&rec), Arc::clone(&key));
            Ok((rec, key))
        })
        .await
        .map_err(|_| Error::ShuttingDown)?
    }

    /// Starts a background refill of `key`'s presignature pool when it has run low (ECDSA
    /// keys only; at most one refill per key at a time).
    fn top_up(self: &Arc<Self>, key: &Arc<LoadedKey>) {
        let LoadedKey::Ecdsa(k) = key.as_ref() else {
            return;
        };
        let target = self.ecdsa.presign_pool;
        if !k.claim_refill(target) {
            return;
        }
        let st = Arc::clone(self);
        let key = Arc::clone(key);
        tokio::task::spawn_blocking(move || {
            if let LoadedKey::Ecdsa(k) = key.as_ref()
                && let Err(e) = k.refill(
                    st.accel.as_ref(),
                    &st.metrics,
                    target,
                    st.ecdsa.presign_batch,
                )
            {
                tracing::warn!(error = %e, "presignature refill failed; signatures will presign on demand");
            }
        });
    }

    async fn run_jobs(&self, queue: usize, jobs: Vec<Job>) -> Result<(Vec<JobOutput>, f64), Error> {
        let receivers = self.batcher.submit(queue, jobs)?;
        let mut outs = Vec::with_capacity(receivers.len());
        let mut cpu = 0.0;
        let mut first_err = None;
        for rx in receivers {
            let done = rx
                .await
                .map_err(|_| Error::Internal("the batch carrying this request failed"))?;
            cpu += done.cpu_seconds;
            match done.result {
                Ok(o) => outs.push(o),
                Err(e) => {
                    if first_err.is_none() {
                        first_err = Some(e);
                    }
                }
            }
        }
        match first_err {
            Some(e) => Err(e),
            None => Ok((outs, cpu)),
        }
    }

    async fn create(
        self: &Arc<Self>,
        req: CreateKeyRequest,
    ) -> Result<(KeyInfo, SchemeKind, f64), Error> {
        let scheme = scheme_of("scheme", req.scheme)?;
        let (t, n) = check_shape(scheme, req.threshold, req.parties, &req.label)?;
        let st = Arc::clone(self);
        let (key, cpu) = tokio::task::spawn_blocking(move || {
            with_cpu(|| LoadedKey::generate(st.accel.as_ref(), scheme, t, n))
        })
        .await
        .map_err(|_| Error::ShuttingDown)?;
        let info = self
            .persist(key?, req.threshold, req.parties, req.label, "dkg")
            .await?;
        Ok((info, scheme, cpu))
    }

    async fn import(
        self: &Arc<Self>,
        req: ImportKeyRequest,
    ) -> Result<(KeyInfo, SchemeKind, f64), Error> {
        let scheme = scheme_of("scheme", req.scheme)?;
        let (t, n) = check_shape(scheme, req.threshold, req.parties, &req.label)?;
        if req.secret_key.len() != 32 {
            return Err(Error::invalid(
                "secret_key",
                format!("must be 32 bytes (got {})", req.secret_key.len()),
            ));
        }
        let st = Arc::clone(self);
        let secret = zeroize::Zeroizing::new(req.secret_key);
        let (key, cpu) = tokio::task::spawn_blocking(move || {
            with_cpu(|| LoadedKey::import(st.accel.as_ref(), scheme, &secret, t, n))
        })
        .await
        .map_err(|_| Error::ShuttingDown)?;
        let info = self
            .persist(key?, req.threshold, req.parties, req.label, "import")
            .await?;
        Ok((info, scheme, cpu))
    }

    async fn persist(
        self: &Arc<Self>,
        key: LoadedKey,
        threshold: u32,
        parties: u32,
        label: String,
        origin: &'static str,
    ) -> Result<KeyInfo, Error> {
        let created_at_ms = now_ms();
        let key_id = new_key_id(created_at_ms);
        let record = KeyRecord {
            key_id: key_id.clone(),
            scheme: key.scheme(),
            threshold,
            parties,
            public_key: key.public_key(),
            label,
            created_at_ms,
            sealed: self.kek.seal(&key_id, &key.to_bytes())?,
        };
        let st = Arc::clone(self);
        let rec = record.clone();
        tokio::task::spawn_blocking(move || st.store.insert_key(&rec, origin))
            .await
            .map_err(|_| Error::ShuttingDown)??;
        let key = Arc::new(key);
        self.cache
            .insert(Arc::new(record.clone()), Arc::clone(&key));
        self.top_up(&key);
        tracing::info!(key_id = %key_id, scheme = record.scheme.as_str(), threshold, parties, origin, "key created");
        Ok(key_info(&record))
    }

    async fn sign(
        self: &Arc<Self>,
        req: SignRequest,
    ) -> Result<(SignResponse, SchemeKind, f64), Error> {
        let (rec, key) = self.load_key(&req.key_id).await?;
        self.check_message(rec.scheme, "message", &req.message)?;
        let taproot = taproot_of(rec.scheme, req.taproot_merkle_root.as_ref())?;
        if req.idempotency_key.len() > MAX_IDEMPOTENCY_KEY_BYTES {
            return Err(Error::invalid(
                "idempotency_key",
                format!("must be at most {MAX_IDEMPOTENCY_KEY_BYTES} bytes"),
            ));
        }
        let fp = fingerprint(&req.key_id, &req.message, req.taproot_merkle_root.as_ref());
        let idem = (!req.idempotency_key.is_empty()).then(|| req.idempotency_key.clone());
        if let Some(ik) = &idem {
            let st = Arc::clone(self);
            let (id, ik2) = (req.key_id.clone(), ik.clone());
            let existing = tokio::task::spawn_blocking(move || st.store.get_idempotency(&id, &ik2))
                .await
                .map_err(|_| Error::ShuttingDown)??;
            if let Some(r) = existing {
                return Ok((replay(&r, &fp)?, rec.scheme, 0.0));
            }
        }
        let message_hash: [u8; 32] = Sha256::digest(&req.message).into();
        let result = self
            .run_jobs(
                engine::sign_queue(rec.scheme),
                vec![Job::Sign {
                    key: Arc::clone(&key),
                    message: req.message,
                    taproot,
                }],
            )
            .await;
        self.top_up(&key);
        let (outs, cpu) = result?;
        let resp = outs
            .into_iter()
            .next()
            .map(sign_response)
            .ok_or(Error::ShuttingDown)??;
        let record = SignatureRecord {
            key_id: req.key_id,
            message_hashes: vec![message_hash],
            idempotency: idem.map(|ik| {
                (
                    ik,
                    IdempotencyRecord {
                        fingerprint: fp.clone(),
                        response: resp.encode_to_vec(),
                    },
                )
            }),
        };
        let st = Arc::clone(self);
        let earlier = tokio::task::spawn_blocking(move || st.store.record_signatures(record))
            .await
            .map_err(|_| Error::ShuttingDown)??;
        self.metrics.signatures.add(&[rec.scheme.as_str()], 1.0);
        match earlier {
            Some(r) => Ok((replay(&r, &fp)?, rec.scheme, cpu)),
            None => Ok((resp, rec.scheme, cpu)),
        }
    }

    async fn sign_batch(
        self: &Arc<Self>,
        req: SignBatchRequest,
    ) -> Result<(SignBatchResponse, SchemeKind, f64), Error> {
        let (rec, key) = self.load_key(&req.key_id).await?;
        if req.messages.is_empty() {
            return Err(Error::invalid("messages", "must hold at least one message"));
        }
        if req.messages.len() > self.limits.max_batch_messages {
            return Err(Error::invalid(
                "messages",
                format!(
                    "at most {} messages per request (got {})",
                    self.limits.max_batch_messages,
                    req.messages.len()
                ),
            ));
        }
        for m in &req.messages {
            self.check_message(rec.scheme, "messages", m)?;
        }
        let taproot = taproot_of(rec.scheme, req.taproot_merkle_root.as_ref())?;
        let hashes: Vec<[u8; 32]> = req
            .messages
            .iter()
            .map(|m| Sha256::digest(m).into())
            .collect();
        let jobs = req
            .messages
            .into_iter()
            .map(|message| Job::Sign {
                key: Arc::clone(&key),
                message,
                taproot,
            })
            .collect();
        let result = self.run_jobs(engine::sign_queue(rec.scheme), jobs).await;
        self.top_up(&key);
        let (outs, cpu) = result?;
        let signatures = outs
            .into_iter()
            .map(sign_response)
            .collect::<Result<Vec<_>, _>>()?;
        let n = signatures.len();
        let record = SignatureRecord {
            key_id: req.key_id,
            message_hashes: hashes,
            idempotency: None,
        };
        let st = Arc::clone(self);
        tokio::task::spawn_blocking(move || st.store.record_signatures(record))
            .await
            .map_err(|_| Error::ShuttingDown)??;
        self.metrics
            .signatures
            .add(&[rec.scheme.as_str()], n as f64);
        Ok((SignBatchResponse { signatures }, rec.scheme, cpu))
    }

    async fn verify(&self, req: VerifyRequest) -> Result<(VerifyResponse, SchemeKind, f64), Error> {
        let scheme = scheme_of("scheme", req.scheme)?;
        let key_len = match scheme {
            SchemeKind::EcdsaSecp256k1 => 33,
            SchemeKind::Ed25519 | SchemeKind::Bip340 => 32,
        };
        if req.public_key.len() != key_len {
            return Err(Error::invalid(
                "public_key",
                format!(
                    "must be {key_len} bytes for {} (got {})",
                    scheme.as_str(),
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
        let (outs, cpu) = self
            .run_jobs(
                engine::verify_queue(scheme),
                vec![Job::Verify {
                    public_key: req.public_key,
                    message: req.message,
                    signature: req.signature,
                }],
            )
            .await?;
        let valid = matches!(outs.first(), Some(JobOutput::Valid(true)));
        Ok((VerifyResponse { valid }, scheme, cpu))
    }
}

/// Runs `f` and returns its result with the calling thread's CPU seconds.
fn with_cpu<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = cpu_time::ThreadTime::try_now().ok();
    let out = f();
    (out, start.map_or(0.0, |t| t.elapsed().as_secs_f64()))
}

fn replay(r: &IdempotencyRecord, fp: &[u8]) -> Result<SignResponse, Error> {
    if r.fingerprint != fp {
        return Err(Error::IdempotencyConflict);
    }
    SignResponse::decode(r.response.as_slice())
        .map_err(|e| Error::Storage(format!("corrupt idempotency record: {e}")))
}

fn sign_response(o: JobOutput) -> Result<SignResponse, Error> {
    match o {
        JobOutput::Signature {
            signature,
            verifying_key,
            recovery_id,
        } => Ok(SignResponse {
            signature,
            verifying_key,
            recovery_id: u32::from(recovery_id),
        }),
        JobOutput::Valid(_) => Err(Error::Internal("verification result for a signing job")),
    }
}

impl SignerService {
    fn observe<T>(
        &self,
        rpc: &str,
        start: Instant,
        result: Result<(T, SchemeKind, f64), Error>,
        fallback_scheme: &str,
    ) -> Result<Response<T>, Status> {
        let m = &self.state.metrics;
        let backend = self.state.backend;
        match result {
            Ok((resp, scheme, cpu)) => {
                let s = scheme.as_str();
                m.request_duration
                    .observe(&[rpc, s, backend, "ok"], start.elapsed().as_secs_f64());
                m.request_cpu.observe(&[rpc, s], cpu);
                Ok(Response::new(resp))
            }
            Err(e) => {
                let status = Status::from(e);
                let outcome = format!("{:?}", status.code());
                m.request_duration.observe(
                    &[rpc, fallback_scheme, backend, &outcome],
                    start.elapsed().as_secs_f64(),
                );
                Err(status)
            }
        }
    }

    fn simple<T>(
        &self,
        rpc: &str,
        start: Instant,
        result: Result<T, Error>,
    ) -> Result<Response<T>, Status> {
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => format!("{:?}", Status::from(clone_for_code(e)).code()),
        };
        self.state.metrics.request_duration.observe(
            &[rpc, "", self.state.backend, &outcome],
            start.elapsed().as_secs_f64(),
        );
        result.map(Response::new).map_err(Status::from)
    }
}

/// A copy of an error good enough to compute its status code.
fn clone_for_code(e: &Error) -> Error {
    match e {
        Error::InvalidArgument { field, problem } => Error::InvalidArgument {
            field,
            problem: problem.clone(),
        },
        Error::KeyNotFound { key_id } => Error::KeyNotFound {
            key_id: key_id.clone(),
        },
        Error::Unimplemented(m) => Error::Unimplemented(m),
        _ => Error::Storage(String::new()),
    }
}

fn scheme_label(raw: i32) -> &'static str {
    match Scheme::try_from(raw) {
        Ok(Scheme::Ed25519) => "ed25519",
        Ok(Scheme::Bip340) => "bip340",
        Ok(Scheme::EcdsaSecp256k1) => "ecdsa_secp256k1",
        _ => "unspecified",
    }
}

#[tonic::async_trait]
impl Signer for SignerService {
    async fn create_key(
        &self,
        req: Request<CreateKeyRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let scheme = scheme_label(req.scheme);
        let r = self.state.create(req).await;
        self.observe("CreateKey", start, r, scheme)
    }

    async fn import_key(
        &self,
        req: Request<ImportKeyRequest>,
    ) -> Result<Response<KeyInfo>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let scheme = scheme_label(req.scheme);
        let r = self.state.import(req).await;
        self.observe("ImportKey", start, r, scheme)
    }

    async fn get_key(&self, req: Request<GetKeyRequest>) -> Result<Response<KeyInfo>, Status> {
        let start = Instant::now();
        let id = req.into_inner().key_id;
        let st = Arc::clone(&self.state);
        let r = async move {
            if id.is_empty() {
                return Err(Error::invalid("key_id", "must be set"));
            }
            let rec = tokio::task::spawn_blocking(move || {
                st.store
                    .get_key(&id)?
                    .ok_or(Error::KeyNotFound { key_id: id })
            })
            .await
            .map_err(|_| Error::ShuttingDown)??;
            Ok(key_info(&rec))
        }
        .await;
        self.simple("GetKey", start, r)
    }

    async fn list_keys(
        &self,
        req: Request<ListKeysRequest>,
    ) -> Result<Response<ListKeysResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let st = Arc::clone(&self.state);
        let r = async move {
            let size = match req.page_size {
                0 => 100,
                n if n > 1000 => {
                    return Err(Error::invalid("page_size", "must be at most 1000"));
                }
                n => n as usize,
            };
            let after = (!req.page_token.is_empty()).then_some(req.page_token);
            let mut recs =
                tokio::task::spawn_blocking(move || st.store.list_keys(after.as_deref(), size + 1))
                    .await
                    .map_err(|_| Error::ShuttingDown)??;
            let more = recs.len() > size;
            recs.truncate(size);
            let next_page_token = match (more, recs.last()) {
                (true, Some(r)) => r.key_id.clone(),
                _ => String::new(),
            };
            Ok(ListKeysResponse {
                keys: recs.iter().map(key_info).collect(),
                next_page_token,
            })
        }
        .await;
        self.simple("ListKeys", start, r)
    }

    async fn sign(&self, req: Request<SignRequest>) -> Result<Response<SignResponse>, Status> {
        let start = Instant::now();
        let r = self.state.sign(req.into_inner()).await;
        self.observe("Sign", start, r, "unknown")
    }

    async fn sign_batch(
        &self,
        req: Request<SignBatchRequest>,
    ) -> Result<Response<SignBatchResponse>, Status> {
        let start = Instant::now();
        let r = self.state.sign_batch(req.into_inner()).await;
        self.observe("SignBatch", start, r, "unknown")
    }

    async fn verify(
        &self,
        req: Request<VerifyRequest>,
    ) -> Result<Response<VerifyResponse>, Status> {
        let start = Instant::now();
        let req = req.into_inner();
        let scheme = scheme_label(req.scheme);
        let r = self.state.verify(req).await;
        self.observe("Verify", start, r, scheme)
    }

    async fn get_status(
        &self,
        _req: Request<GetStatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let start = Instant::now();
        let st = Arc::clone(&self.state);
        let r = async move {
            let backend = st.backend.to_owned();
            let key_count = tokio::task::spawn_blocking(move || st.store.key_count())
                .await
                .map_err(|_| Error::ShuttingDown)??;
            Ok(StatusResponse {
                version: env!("CARGO_PKG_VERSION").to_owned(),
                backend,
                mode: "embedded".to_owned(),
                key_count,
            })
        }
        .await;
        self.simple("GetStatus", start, r)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn eip55_checksums_match_the_spec() {
        let vectors = include_str!("../../../tests/vectors/ethereum/eip55.txt");
        let mut n = 0;
        for line in vectors.lines().filter(|l| !l.trim().is_empty()) {
            let want = line.trim();
            let raw = hex::decode(want.trim_start_matches("0x").to_ascii_lowercase()).unwrap();
            assert_eq!(eip55(&raw), want);
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn ethereum_address_rejects_non_points() {
        assert!(ethereum_address(&[5; 33]).is_none());
        assert!(ethereum_address(&[]).is_none());
    }
}
