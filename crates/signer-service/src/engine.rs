//! The protocol engine: the embedded (single-process) mode, in which all n parties of every
//! key run inside this one process through `threshold::embedded`. This is NOT a distributed
//! MPC deployment: every share of every key is in this process's memory.
//!
//! Loaded key sets are cached in memory; their shares are zeroized on drop by `threshold`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use accel_api::Accelerator;
use rand_core::OsRng;
use threshold::dkls23::{self, PartyId, Presignature};
use threshold::embedded::{self, SignJob};
use threshold::{Bip340Suite, Ed25519Suite, KeySet, TaprootTweak};
use zeroize::Zeroizing;

use crate::Error;
use crate::metrics::Metrics;
use crate::store::{KeyRecord, SchemeKind};

/// A key set of either scheme, decrypted and ready to sign.
pub enum LoadedKey {
    /// FROST(Ed25519).
    Ed25519(KeySet<Ed25519Suite>),
    /// FROST(secp256k1) / BIP340.
    Bip340(KeySet<Bip340Suite>),
    /// DKLs23 threshold ECDSA, with its presignature pool.
    Ecdsa(EcdsaKey),
}

/// A threshold-ECDSA key set with its in-memory presignature pool.
///
/// Presigning (rounds 1–2) mutates the key set only when a pair's OT state must be rebuilt,
/// so it holds the set's lock; the online round needs only a presignature (which carries the
/// public key) and never waits for presigning. Presignatures are single use, never persisted
/// and zeroized on drop (dropping the key drops its pool).
pub struct EcdsaKey {
    set: Mutex<dkls23::KeySet>,
    pool: Mutex<Vec<Presignature>>,
    refilling: AtomicBool,
    fresh_ot: AtomicBool,
    public_key: [u8; 33],
    signers: Vec<PartyId>,
}

impl EcdsaKey {
    /// Wraps a key set. `fresh_ot` says whether its pairwise OT state was made in this
    /// process (by the DKG or import); a set read back from storage gets fresh base OTs for
    /// its signer pairs before it presigns, so OT state persisted before a restart (possibly
    /// one discarded after a failed check) is never used.
    fn new(set: dkls23::KeySet, fresh_ot: bool) -> Self {
        let public_key = set.public_key_bytes();
        let signers = (1..=set.threshold()).collect();
        Self {
            set: Mutex::new(set),
            pool: Mutex::new(Vec::new()),
            refilling: AtomicBool::new(false),
            fresh_ot: AtomicBool::new(fresh_ot),
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
        self.pool.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Runs rounds 1–2 `count` times for the key's signer set (parties `1..=t`).
    fn presign(&self, accel: &dyn Accelerator, count: usize) -> Result<Vec<Presignature>, Error> {
        let mut set = self.set.lock().unwrap_or_else(|e| e.into_inner());
        if !self.fresh_ot.load(Ordering::Acquire) {
            for (k, &a) in self.signers.iter().enumerate() {
                for &b in &self.signers[k + 1..] {
                    dkls23::embedded::refresh_pair(accel, &mut set, a, b, &mut OsRng)?;
                }
            }
            self.fresh_ot.store(true, Ordering::Release);
        }
        Ok(dkls23::embedded::presign_batch(
            accel,
            &mut set,
            &self.signers,
            count,
            &mut OsRng,
        )?)
    }

    /// Takes a presignature from the pool, or makes one now when the pool is empty.
    fn take(&self, accel: &dyn Accelerator, metrics: &Metrics) -> Result<Presignature, Error> {
        let pooled = self.pool.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match pooled {
            Some(p) => {
                metrics.presignatures_ready.fetch_sub(1, Ordering::Relaxed);
                metrics.presignatures_used.add(&["pool"], 1.0);
                Ok(p)
            }
            None => {
                metrics.presignatures_used.add(&["on_demand"], 1.0);
                self.presign(accel, 1)?
                    .pop()
                    .ok_or(Error::Internal("presigning returned nothing"))
            }
        }
    }

    /// Whether the pool is below half of `target` and no refill is running; if so, marks a
    /// refill as running (the caller must then call [`EcdsaKey::refill`]).
    pub fn claim_refill(&self, target: usize) -> bool {
        target > 0
            && self.pool_len() * 2 < target.max(2)
            && self
                .refilling
                .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
    }

    /// Fills the pool up to `target` presignatures, `batch` at a time, then clears the refill
    /// mark taken by [`EcdsaKey::claim_refill`].
    pub fn refill(
        &self,
        accel: &dyn Accelerator,
        metrics: &Metrics,
        target: usize,
        batch: usize,
    ) -> Result<(), Error> {
        let result = (|| {
            loop {
                let missing = target.saturating_sub(self.pool_len());
                if missing == 0 {
                    return Ok(());
                }
                let made = self.presign(accel, missing.min(batch.max(1)))?;
                let n = made.len();
                self.pool
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .extend(made);
                metrics
                    .presignatures_ready
                    .fetch_add(n as i64, Ordering::Relaxed);
            }
        })();
        self.refilling.store(false, Ordering::Release);
        result
    }
}

impl Drop for EcdsaKey {
    fn drop(&mut self) {
        let pooled = self.pool.get_mut().map_or(0, |p| p.len());
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
        })
    }
}

impl LoadedKey {
    /// Runs the embedded DKG among `n` parties with threshold `t`.
    pub fn generate(
        accel: &dyn Accelerator,
        scheme: SchemeKind,
        t: u16,
        n: u16,
    ) -> Result<Self, Error> {
        Ok(match scheme {
            SchemeKind::Ed25519 => {
                LoadedKey::Ed25519(embedded::dkg::<Ed25519Suite>(accel, t, n, &mut OsRng)?)
            }
            SchemeKind::Bip340 => {
                LoadedKey::Bip340(embedded::dkg::<Bip340Suite>(accel, t, n, &mut OsRng)?)
            }
            SchemeKind::EcdsaSecp256k1 => LoadedKey::Ecdsa(EcdsaKey::new(
                dkls23::embedded::dkg(accel, t, n, &mut OsRng)?,
                true,
            )),
        })
    }

    /// Splits an existing secret key among `n` parties with threshold `t` (trusted dealer).
    pub fn import(
        accel: &dyn Accelerator,
        scheme: SchemeKind,
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
            SchemeKind::Ed25519 => {
                let scalar = ed25519_seed_to_scalar(secret)?;
                LoadedKey::Ed25519(
                    embedded::import::<Ed25519Suite>(accel, scalar.as_slice(), t, n, &mut OsRng)
                        .map_err(bad_secret)?,
                )
            }
            SchemeKind::Bip340 => LoadedKey::Bip340(
                embedded::import::<Bip340Suite>(accel, secret, t, n, &mut OsRng)
                    .map_err(bad_secret)?,
            ),
            SchemeKind::EcdsaSecp256k1 => {
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
                LoadedKey::Ecdsa(EcdsaKey::new(set, true))
            }
        })
    }

    /// Decodes a key set stored by [`LoadedKey::to_bytes`].
    pub fn from_bytes(scheme: SchemeKind, bytes: &[u8]) -> Result<Self, Error> {
        Ok(match scheme {
            SchemeKind::Ed25519 => LoadedKey::Ed25519(KeySet::from_bytes(bytes)?),
            SchemeKind::Bip340 => LoadedKey::Bip340(KeySet::from_bytes(bytes)?),
            SchemeKind::EcdsaSecp256k1 => {
                LoadedKey::Ecdsa(EcdsaKey::new(dkls23::KeySet::from_bytes(bytes)?, false))
            }
        })
    }

    /// The key set's serialized form (secret; zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            LoadedKey::Ed25519(k) => k.to_bytes(),
            LoadedKey::Bip340(k) => k.to_bytes(),
            LoadedKey::Ecdsa(k) => {
                Zeroizing::new(k.set.lock().unwrap_or_else(|e| e.into_inner()).to_bytes())
            }
        }
    }

    /// The group public key (Ed25519 point or BIP340 x-only internal key, 32 bytes; ECDSA
    /// SEC1-compressed point, 33 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            LoadedKey::Ed25519(k) => k.public_key(),
            LoadedKey::Bip340(k) => k.public_key(),
            LoadedKey::Ecdsa(k) => k.public_key().to_vec(),
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> SchemeKind {
        match self {
            LoadedKey::Ed25519(_) => SchemeKind::Ed25519,
            LoadedKey::Bip340(_) => SchemeKind::Bip340,
            LoadedKey::Ecdsa(_) => SchemeKind::EcdsaSecp256k1,
        }
    }
}

/// The Ed25519 secret scalar of an RFC 8032 private key (the 32-byte seed): the clamped low
/// half of SHA-512(seed), reduced mod ℓ (same public key, since the basepoint has order ℓ).
fn ed25519_seed_to_scalar(seed: &[u8]) -> Result<Zeroizing<[u8; 32]>, Error> {
    use sha2::{Digest, Sha512};
    if seed.len() != 32 {
        return Err(Error::invalid(
            "secret_key",
            "must be the 32-byte Ed25519 seed",
        ));
    }
    let h = Zeroizing::new(<[u8; 64]>::from(Sha512::digest(seed)));
    let mut a = Zeroizing::new([0u8; 32]);
    a.copy_from_slice(&h[..32]);
    a[0] &= 248;
    a[31] &= 127;
    a[31] |= 64;
    let mut scalar = accel_api::curves::curve25519_dalek::scalar::Scalar::from_bytes_mod_order(*a);
    let out = Zeroizing::new(scalar.to_bytes());
    zeroize::Zeroize::zeroize(&mut scalar);
    Ok(out)
}

/// The BIP341 tweak to sign under (BIP340 keys only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Taproot {
    /// Plain BIP340 under the internal key.
    None,
    /// BIP86 key-path output key (empty script tree).
    KeyPath,
    /// Output key committing to this script tree root.
    ScriptRoot([u8; 32]),
}

impl Taproot {
    fn tweak(self) -> TaprootTweak {
        match self {
            Taproot::None => TaprootTweak::None,
            Taproot::KeyPath => TaprootTweak::KeyPath,
            Taproot::ScriptRoot(r) => TaprootTweak::ScriptRoot(r),
        }
    }
}

/// One unit of batched work.
#[derive(Debug)]
pub enum Job {
    /// Sign `message` with `key`.
    Sign {
        /// The key.
        key: Arc<LoadedKey>,
        /// The message.
        message: Vec<u8>,
        /// BIP340 Taproot tweak (`None` for Ed25519).
        taproot: Taproot,
    },
    /// Verify a signature.
    Verify {
        /// Public key bytes.
        public_key: Vec<u8>,
        /// Message.
        message: Vec<u8>,
        /// Signature bytes.
        signature: Vec<u8>,
    },
}

/// A finished unit of work.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobOutput {
    /// A signature and the key it verifies under.
    Signature {
        /// The 64-byte signature.
        signature: Vec<u8>,
        /// The key it verifies under.
        verifying_key: Vec<u8>,
        /// ECDSA recovery id (0 or 1); 0 for the Schnorr schemes.
        recovery_id: u8,
    },
    /// A verification verdict.
    Valid(bool),
}

/// Batcher queue indices, with their `(op, scheme)` metrics labels.
pub const QUEUES: [(&str, &str); 6] = [
    ("sign", "ed25519"),
    ("sign", "bip340"),
    ("verify", "ed25519"),
    ("verify", "bip340"),
    ("sign", "ecdsa_secp256k1"),
    ("verify", "ecdsa_secp256k1"),
];

/// The queue for signing with `scheme`.
pub fn sign_queue(scheme: SchemeKind) -> usize {
    match scheme {
        SchemeKind::Ed25519 => 0,
        SchemeKind::Bip340 => 1,
        SchemeKind::EcdsaSecp256k1 => 4,
    }
}

/// The queue for verifying under `scheme`.
pub fn verify_queue(scheme: SchemeKind) -> usize {
    match scheme {
        SchemeKind::Ed25519 => 2,
        SchemeKind::Bip340 => 3,
        SchemeKind::EcdsaSecp256k1 => 5,
    }
}

/// Runs one batch taken from `queue` on the calling (worker) thread.
pub fn process(
    accel: &dyn Accelerator,
    metrics: &Metrics,
    queue: usize,
    jobs: Vec<Job>,
) -> Vec<Result<JobOutput, Error>> {
    match queue {
        0 | 1 => sign_all(accel, &jobs),
        4 => jobs.iter().map(|j| sign_ecdsa(accel, metrics, j)).collect(),
        5 => verify_ecdsa(accel, &jobs),
        _ => verify_all(accel, queue == 2, &jobs),
    }
}

/// The online round of one ECDSA signature: a pooled presignature and the prehash.
fn sign_ecdsa(accel: &dyn Accelerator, metrics: &Metrics, job: &Job) -> Result<JobOutput, Error> {
    let (key, message) = match job {
        Job::Sign {
            key,
            message,
            taproot: Taproot::None,
        } => match key.as_ref() {
            LoadedKey::Ecdsa(k) => (k, message),
            _ => return Err(Error::Internal("non-ECDSA key in the ECDSA sign queue")),
        },
        _ => return Err(Error::Internal("unexpected job in the ECDSA sign queue")),
    };
    let prehash: &[u8; 32] = message
        .as_slice()
        .try_into()
        .map_err(|_| Error::Internal("ECDSA prehash is not 32 bytes"))?;
    let pre = key.take(accel, metrics)?;
    let (sig, recovery_id) = dkls23::embedded::sign_presigned(accel, pre, prehash)?;
    Ok(JobOutput::Signature {
        signature: sig.to_vec(),
        verifying_key: key.public_key().to_vec(),
        recovery_id,
    })
}

/// ECDSA verification (libsecp256k1 rules: low S only) with every `u1·G + u2·Q` of the batch
/// in one accelerator call.
fn verify_ecdsa(accel: &dyn Accelerator, jobs: &[Job]) -> Vec<Result<JobOutput, Error>> {
    use accel_api::curves::k256::elliptic_curve::PrimeField;
    use accel_api::curves::k256::elliptic_curve::ops::Invert;
    use accel_api::curves::k256::elliptic_curve::ops::Reduce;
    use accel_api::curves::k256::elliptic_curve::point::AffineCoordinates;
    use accel_api::curves::k256::elliptic_curve::scalar::IsHigh;
    use accel_api::curves::k256::elliptic_curve::sec1::FromEncodedPoint;
    use accel_api::curves::k256::{AffinePoint, EncodedPoint, ProjectivePoint, Scalar, U256};
    use accel_api::{CurveGroup, LincombJob, Secp256k1};

    let parse = |pk: &[u8],
                 m: &[u8],
                 sig: &[u8]|
     -> Option<(Scalar, LincombJob<Scalar, ProjectivePoint>)> {
        let point = EncodedPoint::from_bytes(pk).ok()?;
        let q: Option<AffinePoint> = AffinePoint::from_encoded_point(&point).into();
        let q = ProjectivePoint::from(q?);
        let r: Option<Scalar> =
            Scalar::from_repr(<[u8; 32]>::try_from(sig.get(..32)?).ok()?.into()).into();
        let s: Option<Scalar> =
            Scalar::from_repr(<[u8; 32]>::try_from(sig.get(32..)?).ok()?.into()).into();
        let (r, s) = (r?, s?);
        if bool::from(r.is_zero()) || bool::from(s.is_zero()) || bool::from(s.is_high()) {
            return None;
        }
        let z = <Scalar as Reduce<U256>>::reduce_bytes(<&[u8; 32]>::try_from(m).ok()?.into());
        let s_inv: Scalar = Option::from(s.invert_vartime())?;
        Some((
            r,
            LincombJob::new(vec![
                (z * s_inv, ProjectivePoint::GENERATOR),
                (r * s_inv, q),
            ]),
        ))
    };
    let parsed: Vec<Option<(Scalar, LincombJob<Scalar, ProjectivePoint>)>> = jobs
        .iter()
        .map(|j| match j {
            Job::Verify {
                public_key,
                message,
                signature,
            } => parse(public_key, message, signature),
            Job::Sign { .. } => None,
        })
        .collect();
    let batch: Vec<LincombJob<Scalar, ProjectivePoint>> =
        parsed.iter().flatten().map(|(_, j)| j.clone()).collect();
    let points = match Secp256k1::lincomb_vartime(accel, &batch) {
        Ok(p) => p,
        Err(e) => return jobs.iter().map(|_| Err(Error::Accel(e.clone()))).collect(),
    };
    let mut points = points.into_iter();
    jobs.iter()
        .zip(parsed)
        .map(|(j, p)| match (j, p) {
            (Job::Sign { .. }, _) => Err(Error::Internal("sign job in a verify queue")),
            (_, None) => Ok(JobOutput::Valid(false)),
            (_, Some((r, _))) => {
                let valid = points.next().is_some_and(|pt| {
                    !Secp256k1::is_identity(&pt)
                        && <Scalar as Reduce<U256>>::reduce_bytes(&pt.to_affine().x()) == r
                });
                Ok(JobOutput::Valid(valid))
            }
        })
        .collect()
}

fn sign_all(accel: &dyn Accelerator, jobs: &[Job]) -> Vec<Result<JobOutput, Error>> {
    let mut ed = Vec::new();
    let mut bip = Vec::new();
    let mut order = Vec::with_capacity(jobs.len());
    for job in jobs {
        match job {
            Job::Sign {
                key,
                message,
                taproot,
            } => match key.as_ref() {
                LoadedKey::Ed25519(k) => {
                    order.push((0u8, ed.len()));
                    ed.push(SignJob {
                        key: k,
                        message: message.as_slice(),
                        taproot: TaprootTweak::None,
                    });
                }
                LoadedKey::Bip340(k) => {
                    order.push((1u8, bip.len()));
                    bip.push(SignJob {
                        key: k,
                        message: message.as_slice(),
                        taproot: taproot.tweak(),
                    });
                }
                LoadedKey::Ecdsa(_) => order.push((2u8, 0)),
            },
            Job::Verify { .. } => order.push((2u8, 0)),
        }
    }
    let ed_out = if ed.is_empty() {
        Vec::new()
    } else {
        embedded::sign_batch::<Ed25519Suite>(accel, &ed, &mut OsRng)
    };
    let bip_out = if bip.is_empty() {
        Vec::new()
    } else {
        embedded::sign_batch::<Bip340Suite>(accel, &bip, &mut OsRng)
    };
    let mut ed_out = ed_out.into_iter().map(Some).collect::<Vec<_>>();
    let mut bip_out = bip_out.into_iter().map(Some).collect::<Vec<_>>();
    order
        .into_iter()
        .map(|(which, i)| {
            let slot = match which {
                0 => ed_out.get_mut(i).and_then(Option::take),
                1 => bip_out.get_mut(i).and_then(Option::take),
                _ => {
                    return Err(Error::Internal(
                        "job of another queue in a Schnorr sign queue",
                    ));
                }
            };
            match slot {
                Some(Ok(out)) => Ok(JobOutput::Signature {
                    signature: out.signature,
                    verifying_key: out.verifying_key,
                    recovery_id: 0,
                }),
                Some(Err(e)) => Err(Error::from(e)),
                None => Err(Error::Internal("engine returned fewer results than jobs")),
            }
        })
        .collect()
}

fn verify_all(
    accel: &dyn Accelerator,
    ed25519: bool,
    jobs: &[Job],
) -> Vec<Result<JobOutput, Error>> {
    let items: Vec<(&[u8], &[u8], &[u8])> = jobs
        .iter()
        .filter_map(|j| match j {
            Job::Verify {
                public_key,
                message,
                signature,
            } => Some((
                public_key.as_slice(),
                message.as_slice(),
                signature.as_slice(),
            )),
            Job::Sign { .. } => None,
        })
        .collect();
    let verdicts = if ed25519 {
        threshold::verify_ed25519_batch(accel, &items)
    } else {
        threshold::verify_bip340_batch(accel, &items)
    };
    let mut verdicts = verdicts.into_iter();
    jobs.iter()
        .map(|j| match j {
            Job::Verify { .. } => Ok(JobOutput::Valid(verdicts.next().unwrap_or(false))),
            Job::Sign { .. } => Err(Error::Internal("sign job in a verify queue")),
        })
        .collect()
}

/// Decrypted keys (with their public metadata) kept in memory after first use.
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
