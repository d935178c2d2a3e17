//! Batched work: the jobs the batcher carries and how one batch of a queue is run on a
//! worker thread (embedded mode: every party's round in this process).

use std::sync::Arc;

use accel_api::{AccelError, Accelerator};
use rand_core::OsRng;
use threshold::embedded::{self, SignJob};
use threshold::{Bip340Suite, Ed25519Suite, TaprootTweak};

use crate::keys::{LoadedKey, Taproot};
use crate::{Error, Observer, Queue, Scheme};

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

/// Runs one batch taken from `queue` on the calling (worker) thread.
pub fn process(
    accel: &dyn Accelerator,
    observer: &dyn Observer,
    queue: Queue,
    jobs: Vec<Job>,
) -> Vec<Result<JobOutput, Error>> {
    match queue {
        Queue::Sign(Scheme::Ed25519 | Scheme::Bip340) => sign_all(accel, &jobs),
        Queue::Sign(Scheme::EcdsaSecp256k1) => jobs
            .iter()
            .map(|j| sign_ecdsa(accel, observer, j))
            .collect(),
        Queue::Verify(Scheme::EcdsaSecp256k1) => verify_ecdsa(accel, &jobs),
        Queue::Verify(s) => verify_all(accel, s == Scheme::Ed25519, &jobs),
    }
}

/// The online round of one ECDSA signature: a pooled presignature and the prehash.
fn sign_ecdsa(
    accel: &dyn Accelerator,
    observer: &dyn Observer,
    job: &Job,
) -> Result<JobOutput, Error> {
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
    let pre = key.take(accel, observer)?;
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
    verify_with(jobs, |items| dkls23::verify_prehash_batch(accel, items))
}

/// Runs `check` over the verification jobs and puts the verdicts back in job order.
fn verify_with(
    jobs: &[Job],
    check: impl FnOnce(&[(&[u8], &[u8], &[u8])]) -> Result<Vec<bool>, AccelError>,
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
    let verdicts = match check(&items) {
        Ok(v) if v.len() == items.len() => v,
        Ok(_) => {
            return jobs
                .iter()
                .map(|_| {
                    Err(Error::Internal(
                        "verifier returned a verdict count unlike its input",
                    ))
                })
                .collect();
        }
        Err(e) => return jobs.iter().map(|_| Err(Error::Accel(e.clone()))).collect(),
    };
    let mut verdicts = verdicts.into_iter();
    jobs.iter()
        .map(|j| match j {
            Job::Verify { .. } => Ok(JobOutput::Valid(verdicts.next().unwrap_or(false))),
            Job::Sign { .. } => Err(Error::Internal("sign job in a verify queue")),
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
                LoadedKey::Ecdsa(_) | LoadedKey::Ed25519Party(_) | LoadedKey::Bip340Party(_) => {
                    order.push((2u8, 0))
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
    verify_with(jobs, |items| {
        Ok(if ed25519 {
            threshold::verify_ed25519_batch(accel, items)
        } else {
            threshold::verify_bip340_batch(accel, items)
        })
    })
}
