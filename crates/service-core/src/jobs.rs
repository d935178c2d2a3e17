//! Batched work: the jobs the batcher carries and how one batch of a queue is run on a
//! worker thread (embedded mode: every party's round in this process).

use std::sync::Arc;

use accel_api::{AccelError, Accelerator};
use dkls23::Presignature;
use threshold::embedded::{self, SignJob};
use threshold::round1::{SigningCommitments, SigningNonces};
use threshold::round2::{aggregate_batch, sign_and_aggregate_batch, sign_batch};
use threshold::{Bip340Suite, Ed25519Suite, SignatureShare, SigningPackage, TaprootTweak};

use crate::keys::{EcdsaKey, LoadedKey, Taproot};
use crate::party::{Fault, FrostScheme, corrupt};
use crate::{Error, Observer, PresignSource, Queue, Scheme};

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
    /// Threshold-ECDSA signing of `message` (a 32-byte prehash) with a presignature taken
    /// from `key`'s pool when the request was queued.
    EcdsaPresigned {
        /// The key.
        key: Arc<LoadedKey>,
        /// The presignature the signature consumes.
        presignature: Presignature,
        /// The prehash.
        message: Vec<u8>,
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
    /// Distributed mode, at a signer: its signature share for one session.
    Share {
        /// This node's share of the key.
        key: Arc<LoadedKey>,
        /// The nonces the share consumes, with the signing package.
        work: Box<ShareWork>,
        /// The test-only fault switch.
        fault: Fault,
    },
    /// Distributed mode, at the coordinator: aggregate and verify one session.
    Aggregate {
        /// This node's share of the key (for the public key package).
        key: Arc<LoadedKey>,
        /// The package and the shares received.
        work: Box<AggregateWork>,
    },
}

/// A co-signer's round-2 input: its single-use nonces (zeroized on drop) and the encoded
/// package its coordinator sent, decoded and validated on the worker (except the signer's own
/// commitment, which it already holds).
pub enum ShareWork {
    /// FROST(Ed25519).
    Ed25519(SigningNonces<Ed25519Suite>, Vec<u8>),
    /// FROST(secp256k1-tr).
    Bip340(SigningNonces<Bip340Suite>, Vec<u8>),
}

impl std::fmt::Debug for ShareWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ShareWork(<redacted>)")
    }
}

/// A FROST coordinator's aggregation input: the signing package, the shares received, and,
/// when the coordinator signs too, its own nonces (its share is computed with the
/// aggregation, from the same session values).
#[derive(Debug)]
pub struct FrostAggregate<S: threshold::Suite> {
    /// The package every signer signed.
    pub package: SigningPackage<S>,
    /// The other signers' shares.
    pub shares: Vec<SignatureShare<S>>,
    /// The coordinator's own nonces for this session (consumed), if it signs.
    pub own: Option<SigningNonces<S>>,
}

/// A coordinator's aggregation input: the signing package and every signer's share.
#[derive(Debug)]
pub enum AggregateWork {
    /// FROST(Ed25519).
    Ed25519(FrostAggregate<Ed25519Suite>),
    /// FROST(secp256k1-tr).
    Bip340(FrostAggregate<Bip340Suite>),
    /// DKLs23 threshold ECDSA: the presignature's nonce point (SEC1 compressed), the
    /// prehash and every signer's online share.
    Ecdsa {
        /// The nonce point `R` all signers presigned with.
        big_r: Vec<u8>,
        /// The 32-byte prehash.
        prehash: [u8; 32],
        /// The signers' round-3 shares.
        shares: Vec<dkls23::sign::Round3Msg>,
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
    /// A 32-byte signature share (distributed mode).
    Share(Vec<u8>),
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
        Queue::Sign(Scheme::EcdsaSecp256k1) | Queue::EcdsaOnDemand => {
            sign_ecdsa(accel, observer, jobs)
        }
        Queue::Verify(Scheme::EcdsaSecp256k1) => verify_ecdsa(accel, &jobs),
        Queue::Verify(s) => verify_all(accel, s == Scheme::Ed25519, &jobs),
        Queue::Share(_) => shares(accel, jobs),
        Queue::Aggregate(_) => aggregate(accel, jobs),
    }
}

/// Signature shares of many sessions (of one scheme's keys), one port call per operation for
/// the batch. Each job's nonces are consumed.
fn shares(accel: &dyn Accelerator, jobs: Vec<Job>) -> Vec<Result<JobOutput, Error>> {
    let mut out: Vec<Option<Result<JobOutput, Error>>> = Vec::with_capacity(jobs.len());
    let mut ed = Vec::new();
    let mut bip = Vec::new();
    for (k, job) in jobs.into_iter().enumerate() {
        out.push(None);
        let Job::Share { key, work, fault } = job else {
            out[k] = Some(Err(Error::Internal(
                "job of another queue in a share queue",
            )));
            continue;
        };
        match *work {
            ShareWork::Ed25519(n, pkg) => ed.push((k, key, n, pkg, fault)),
            ShareWork::Bip340(n, pkg) => bip.push((k, key, n, pkg, fault)),
        }
    }
    shares_as::<Ed25519Suite>(accel, ed, &mut out);
    shares_as::<Bip340Suite>(accel, bip, &mut out);
    out.into_iter()
        .map(|o| o.unwrap_or(Err(Error::Internal("no share computed"))))
        .collect()
}

type ShareItem<S> = (usize, Arc<LoadedKey>, SigningNonces<S>, Vec<u8>, Fault);

fn shares_as<S: FrostScheme>(
    accel: &dyn Accelerator,
    items: Vec<ShareItem<S>>,
    out: &mut [Option<Result<JobOutput, Error>>],
) {
    if items.is_empty() {
        return;
    }
    // The packages other nodes sent, decoded with every commitment they carry validated in
    // one batch (this signer's own is taken from its nonces).
    let known: Vec<[SigningCommitments<S>; 1]> =
        items.iter().map(|i| [*i.2.commitments()]).collect();
    let encoded: Vec<(&[u8], &[SigningCommitments<S>])> = items
        .iter()
        .zip(&known)
        .map(|(i, k)| (i.3.as_slice(), k.as_slice()))
        .collect();
    let mut decoded_batch = match SigningPackage::<S>::from_bytes_known_batch(accel, &encoded) {
        Ok(d) => d.into_iter(),
        Err(e) => {
            for (k, ..) in items {
                out[k] = Some(Err(Error::Protocol(e.clone())));
            }
            return;
        }
    };
    drop(encoded);
    let mut ready = Vec::with_capacity(items.len());
    for (k, key, nonces, _, fault) in items {
        let pk = S::party_key(&key).is_some();
        let decoded = decoded_batch
            .next()
            .unwrap_or(Err(threshold::Error::Malformed("signing package")));
        match decoded {
            Ok(p) if pk => ready.push((k, key, nonces, p, fault)),
            Ok(_) => out[k] = Some(Err(Error::NotInThisMode("not a distributed key"))),
            Err(e) => out[k] = Some(Err(Error::Protocol(e))),
        }
    }
    let mut slots = Vec::with_capacity(ready.len());
    let mut pkgs = Vec::with_capacity(ready.len());
    let mut held = Vec::with_capacity(ready.len());
    for (k, key, nonces, p, fault) in ready {
        slots.push((k, key, fault));
        pkgs.push(p);
        held.push(nonces);
    }
    let batch: Vec<_> = pkgs
        .iter()
        .zip(held)
        .zip(&slots)
        .filter_map(|((p, n), (_, key, _))| S::party_key(key).map(|pk| (p, n, pk.share())))
        .collect();
    for ((k, _, fault), r) in slots.iter().zip(sign_batch::<S>(accel, batch)) {
        out[*k] = Some(
            r.map(|share| JobOutput::Share(corrupt(share, *fault).to_bytes().to_vec()))
                .map_err(Error::Protocol),
        );
    }
}

/// Aggregation of many sessions: every signature verified in one batched call; a failing
/// session's shares are checked one by one and its culprits named.
fn aggregate(accel: &dyn Accelerator, jobs: Vec<Job>) -> Vec<Result<JobOutput, Error>> {
    let mut out: Vec<Option<Result<JobOutput, Error>>> = Vec::with_capacity(jobs.len());
    let mut ed = Vec::new();
    let mut bip = Vec::new();
    for (k, job) in jobs.into_iter().enumerate() {
        out.push(None);
        let Job::Aggregate { key, work } = job else {
            out[k] = Some(Err(Error::Internal(
                "job of another queue in an aggregate queue",
            )));
            continue;
        };
        match *work {
            AggregateWork::Ed25519(w) => ed.push((k, key, w)),
            AggregateWork::Bip340(w) => bip.push((k, key, w)),
            AggregateWork::Ecdsa {
                big_r,
                prehash,
                shares,
            } => out[k] = Some(combine_ecdsa(accel, &key, &big_r, &prehash, &shares)),
        }
    }
    aggregate_as::<Ed25519Suite>(accel, ed, &mut out);
    aggregate_as::<Bip340Suite>(accel, bip, &mut out);
    out.into_iter()
        .map(|o| o.unwrap_or(Err(Error::Internal("no signature aggregated"))))
        .collect()
}

type AggregateItem<S> = (usize, Arc<LoadedKey>, FrostAggregate<S>);

/// Combines the online shares of one threshold-ECDSA signature and verifies the result.
fn combine_ecdsa(
    accel: &dyn Accelerator,
    key: &LoadedKey,
    big_r: &[u8],
    prehash: &[u8; 32],
    shares: &[dkls23::sign::Round3Msg],
) -> Result<JobOutput, Error> {
    use k256::elliptic_curve::group::GroupEncoding;
    let LoadedKey::EcdsaParty(k) = key else {
        return Err(Error::NotInThisMode(
            "not a distributed threshold-ECDSA key",
        ));
    };
    let mut encoded = k256::CompressedPoint::default();
    if big_r.len() != encoded.len() {
        return Err(Error::Internal("presignature nonce point"));
    }
    encoded.copy_from_slice(big_r);
    let r = Option::from(k256::ProjectivePoint::from_bytes(&encoded))
        .ok_or(Error::Internal("presignature nonce point"))?;
    let (sig, recovery_id) = dkls23::sign::combine(accel, &k.public_point(), &r, prehash, shares)?;
    Ok(JobOutput::Signature {
        signature: sig.to_vec(),
        verifying_key: k.public_key().to_vec(),
        recovery_id,
    })
}

fn aggregate_as<S: FrostScheme>(
    accel: &dyn Accelerator,
    mut items: Vec<AggregateItem<S>>,
    out: &mut [Option<Result<JobOutput, Error>>],
) {
    if items.is_empty() {
        return;
    }
    // Sessions the coordinator signs in (its share computed here) and sessions it only
    // aggregates, one batched call each.
    let mut own: Vec<Option<SigningNonces<S>>> =
        items.iter_mut().map(|(_, _, w)| w.own.take()).collect();
    let mut signing = (Vec::new(), Vec::new());
    let mut plain = (Vec::new(), Vec::new());
    for ((k, key, w), nonces) in items.iter().zip(&mut own) {
        let Some(pk) = S::party_key(key) else {
            out[*k] = Some(Err(Error::NotInThisMode("not a distributed key")));
            continue;
        };
        let item = (&w.package, w.shares.as_slice(), pk.public_package());
        match nonces.take() {
            Some(n) => {
                signing.0.push(*k);
                signing.1.push((item, n, pk.share()));
            }
            None => {
                plain.0.push(*k);
                plain.1.push(item);
            }
        }
    }
    let signed = sign_and_aggregate_batch::<S>(accel, signing.1);
    let aggregated = aggregate_batch::<S>(accel, &plain.1);
    for (k, r) in signing
        .0
        .into_iter()
        .zip(signed)
        .chain(plain.0.into_iter().zip(aggregated))
    {
        out[k] = Some(
            r.map(|o| JobOutput::Signature {
                signature: o.signature,
                verifying_key: o.verifying_key,
                recovery_id: 0,
            })
            .map_err(Error::Protocol),
        );
    }
}

/// ECDSA signatures: the online round of each job with its presignature, or with one
/// presigned now when the job brought none (the pool was empty when it was queued); every
/// signature's verification in one call to the port.
fn sign_ecdsa(
    accel: &dyn Accelerator,
    observer: &dyn Observer,
    jobs: Vec<Job>,
) -> Vec<Result<JobOutput, Error>> {
    let mut out: Vec<Option<Result<JobOutput, Error>>> = (0..jobs.len()).map(|_| None).collect();
    let mut slots = Vec::with_capacity(jobs.len());
    let mut items = Vec::with_capacity(jobs.len());
    for (i, job) in jobs.into_iter().enumerate() {
        match ecdsa_presigned(accel, observer, job) {
            Ok((pre, prehash, verifying_key)) => {
                slots.push((i, verifying_key));
                items.push((pre, prehash));
            }
            Err(e) => out[i] = Some(Err(e)),
        }
    }
    let signed = dkls23::embedded::sign_presigned_batch(accel, items);
    for ((i, verifying_key), r) in slots.into_iter().zip(signed) {
        out[i] = Some(
            r.map(|(sig, recovery_id)| JobOutput::Signature {
                signature: sig.to_vec(),
                verifying_key: verifying_key.to_vec(),
                recovery_id,
            })
            .map_err(Error::from),
        );
    }
    out.into_iter()
        .map(|o| o.unwrap_or(Err(Error::Internal("an ECDSA job without a result"))))
        .collect()
}

/// A job's presignature (taken from the pool when it was queued, or made now), its prehash
/// and the key's public key.
fn ecdsa_presigned(
    accel: &dyn Accelerator,
    observer: &dyn Observer,
    job: Job,
) -> Result<(dkls23::Presignature, [u8; 32], [u8; 33]), Error> {
    let (key, pre, message) = match job {
        Job::EcdsaPresigned {
            key,
            presignature,
            message,
        } => (key, Some(presignature), message),
        Job::Sign {
            key,
            message,
            taproot: Taproot::None,
        } => (key, None, message),
        _ => return Err(Error::Internal("unexpected job in an ECDSA sign queue")),
    };
    let LoadedKey::Ecdsa(k) = key.as_ref() else {
        return Err(Error::Internal("non-ECDSA key in an ECDSA sign queue"));
    };
    let prehash: [u8; 32] = message
        .as_slice()
        .try_into()
        .map_err(|_| Error::Internal("ECDSA prehash is not 32 bytes"))?;
    let pre = match pre {
        Some(p) => {
            observer.presignature_used(PresignSource::Pool);
            p
        }
        None => k.take(accel, observer)?,
    };
    Ok((pre, prehash, k.public_key()))
}

/// The jobs that sign `messages` with the ECDSA key `k` (held by `key`), each with the queue
/// it goes to: as many as the pool can serve take a presignature from it now and go to the
/// cheap queue; the rest presign when their turn comes, on the expensive queue's workers.
pub(crate) fn ecdsa_jobs(
    key: &Arc<LoadedKey>,
    k: &EcdsaKey,
    observer: &dyn Observer,
    messages: Vec<Vec<u8>>,
) -> Vec<(Queue, Job)> {
    let mut pooled = k.reserve(messages.len(), observer).into_iter();
    messages
        .into_iter()
        .map(|message| match pooled.next() {
            Some(presignature) => (
                Queue::Sign(Scheme::EcdsaSecp256k1),
                Job::EcdsaPresigned {
                    key: Arc::clone(key),
                    presignature,
                    message,
                },
            ),
            None => (
                Queue::EcdsaOnDemand,
                Job::Sign {
                    key: Arc::clone(key),
                    message,
                    taproot: Taproot::None,
                },
            ),
        })
        .collect()
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
            _ => None,
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
            _ => Err(Error::Internal("job of another queue in a verify queue")),
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
                LoadedKey::Ecdsa(_)
                | LoadedKey::Ed25519Party(_)
                | LoadedKey::Bip340Party(_)
                | LoadedKey::EcdsaParty(_) => order.push((2u8, 0)),
            },
            _ => order.push((2u8, 0)),
        }
    }
    // The batch's nonce randomness, a block of the OS's randomness at a time.
    let mut rng = crate::rng::OsBlockRng::new();
    let ed_out = if ed.is_empty() {
        Vec::new()
    } else {
        embedded::sign_batch::<Ed25519Suite>(accel, &ed, &mut rng)
    };
    let bip_out = if bip.is_empty() {
        Vec::new()
    } else {
        embedded::sign_batch::<Bip340Suite>(accel, &bip, &mut rng)
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::NoObserver;
    use backend_cpu::CpuBackend;

    /// One signing batch mixing Ed25519 and BIP340 keys answers every job, in job order, with
    /// a signature that an independent verifier (ed25519-dalek, k256) accepts under the
    /// verifying key it names, and each signature is of its own message.
    #[test]
    fn a_mixed_signing_batch_answers_each_job_with_its_own_valid_signature() {
        let accel = CpuBackend::new();
        let ed = Arc::new(LoadedKey::generate(&accel, Scheme::Ed25519, 2, 3).unwrap());
        let bip = Arc::new(LoadedKey::generate(&accel, Scheme::Bip340, 2, 3).unwrap());
        let messages: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; 32]).collect();
        let keys = [&ed, &bip, &ed, &bip, &ed];
        let jobs = keys
            .iter()
            .zip(&messages)
            .map(|(k, m)| Job::Sign {
                key: Arc::clone(k),
                message: m.clone(),
                taproot: Taproot::None,
            })
            .collect();
        let out = process(&accel, &NoObserver, Queue::Sign(Scheme::Ed25519), jobs);
        assert_eq!(out.len(), 5);
        for (i, (r, m)) in out.into_iter().zip(&messages).enumerate() {
            let Ok(JobOutput::Signature {
                signature,
                verifying_key,
                recovery_id: 0,
            }) = r
            else {
                panic!("job {i}: {r:?}");
            };
            if i % 2 == 0 {
                let vk = ed25519_dalek::VerifyingKey::try_from(verifying_key.as_slice()).unwrap();
                let sig = ed25519_dalek::Signature::from_slice(&signature).unwrap();
                vk.verify_strict(m, &sig).unwrap();
                assert!(vk.verify_strict(&messages[(i + 1) % 5], &sig).is_err());
            } else {
                let vk = k256::schnorr::VerifyingKey::from_bytes(&verifying_key).unwrap();
                let sig = k256::schnorr::Signature::try_from(signature.as_slice()).unwrap();
                vk.verify_raw(m, &sig).unwrap();
                assert!(vk.verify_raw(&messages[(i + 1) % 5], &sig).is_err());
            }
        }
    }
}
