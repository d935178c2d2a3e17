//! The protocol engine: the embedded (single-process) mode, in which all n parties of every
//! key run inside this one process through `threshold::embedded`. This is NOT a distributed
//! MPC deployment: every share of every key is in this process's memory.
//!
//! Loaded key sets are cached in memory; their shares are zeroized on drop by `threshold`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use accel_api::Accelerator;
use rand_core::OsRng;
use threshold::embedded::{self, SignJob};
use threshold::{Bip340Suite, Ed25519Suite, KeySet, TaprootTweak};
use zeroize::Zeroizing;

use crate::Error;
use crate::store::{KeyRecord, SchemeKind};

/// A key set of either scheme, decrypted and ready to sign.
pub enum LoadedKey {
    /// FROST(Ed25519).
    Ed25519(KeySet<Ed25519Suite>),
    /// FROST(secp256k1) / BIP340.
    Bip340(KeySet<Bip340Suite>),
}

impl std::fmt::Debug for LoadedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LoadedKey::Ed25519(_) => "LoadedKey::Ed25519(<redacted>)",
            LoadedKey::Bip340(_) => "LoadedKey::Bip340(<redacted>)",
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
        })
    }

    /// Decodes a key set stored by [`LoadedKey::to_bytes`].
    pub fn from_bytes(scheme: SchemeKind, bytes: &[u8]) -> Result<Self, Error> {
        Ok(match scheme {
            SchemeKind::Ed25519 => LoadedKey::Ed25519(KeySet::from_bytes(bytes)?),
            SchemeKind::Bip340 => LoadedKey::Bip340(KeySet::from_bytes(bytes)?),
        })
    }

    /// The key set's serialized form (secret; zeroized on drop).
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        match self {
            LoadedKey::Ed25519(k) => k.to_bytes(),
            LoadedKey::Bip340(k) => k.to_bytes(),
        }
    }

    /// The group public key (Ed25519 point or BIP340 x-only internal key, 32 bytes).
    pub fn public_key(&self) -> Vec<u8> {
        match self {
            LoadedKey::Ed25519(k) => k.public_key(),
            LoadedKey::Bip340(k) => k.public_key(),
        }
    }

    /// The scheme.
    pub fn scheme(&self) -> SchemeKind {
        match self {
            LoadedKey::Ed25519(_) => SchemeKind::Ed25519,
            LoadedKey::Bip340(_) => SchemeKind::Bip340,
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
    },
    /// A verification verdict.
    Valid(bool),
}

/// Batcher queue indices, with their `(op, scheme)` metrics labels.
pub const QUEUES: [(&str, &str); 4] = [
    ("sign", "ed25519"),
    ("sign", "bip340"),
    ("verify", "ed25519"),
    ("verify", "bip340"),
];

/// The queue for signing with `scheme`.
pub fn sign_queue(scheme: SchemeKind) -> usize {
    match scheme {
        SchemeKind::Ed25519 => 0,
        SchemeKind::Bip340 => 1,
    }
}

/// The queue for verifying under `scheme`.
pub fn verify_queue(scheme: SchemeKind) -> usize {
    match scheme {
        SchemeKind::Ed25519 => 2,
        SchemeKind::Bip340 => 3,
    }
}

/// Runs one batch taken from `queue` on the calling (worker) thread.
pub fn process(
    accel: &dyn Accelerator,
    queue: usize,
    jobs: Vec<Job>,
) -> Vec<Result<JobOutput, Error>> {
    match queue {
        0 | 1 => sign_all(accel, &jobs),
        _ => verify_all(accel, queue == 2, &jobs),
    }
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
                _ => return Err(Error::Internal("verify job in a sign queue")),
            };
            match slot {
                Some(Ok(out)) => Ok(JobOutput::Signature {
                    signature: out.signature,
                    verifying_key: out.verifying_key,
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
