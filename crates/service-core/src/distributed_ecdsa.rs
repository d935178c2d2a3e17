//! Threshold ECDSA (DKLs23) in the distributed coordinator: presignatures made ahead per
//! signer set (each party keeps its own part in memory; the coordinator keeps only each
//! one's session and nonce point `R`), so that the online path of a signature is one round
//! trip to the other `t − 1` signers; a failed quorum is retried with another one.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use dkls23::sign::Round3Msg;
use rand_core::{OsRng, RngCore};

use super::{CallFailure, Distributed, MAX_ATTEMPTS, lock, unexpected};
use crate::coordinator::{Cost, Signature};
use crate::jobs::{AggregateWork, Job};
use crate::keys::LoadedKey;
use crate::party::ecdsa::{MAX_PRESIGN_BATCH, PRESIGN_TTL};
use crate::peer::{PartyId, PeerReply, PeerRequest, SessionId};
use crate::ports::KeyRecord;
use crate::{Error, Queue, Scheme};

/// The first target of a (key, signer set) presignature pool.
const POOL_START: usize = 32;
/// The largest target of a pool.
const POOL_MAX: usize = 1024;
/// Pooled presignatures older than this are dropped (the parties forget theirs after
/// [`PRESIGN_TTL`]).
const POOL_MAX_AGE: std::time::Duration =
    PRESIGN_TTL.saturating_sub(std::time::Duration::from_secs(60));

/// A presignature as the coordinator knows it: its session and nonce point.
type Ready = (SessionId, Vec<u8>);

/// Presignatures per (key, signer set), each handed out once.
#[derive(Debug, Default)]
pub(super) struct Pools {
    inner: Mutex<HashMap<(String, Vec<PartyId>), Pool>>,
}

#[derive(Debug)]
struct Pool {
    ready: VecDeque<(SessionId, Vec<u8>, Instant)>,
    target: usize,
    refilling: bool,
}

impl Pools {
    fn take(&self, key: &str, signers: &[PartyId], n: usize) -> Vec<Ready> {
        let mut all = lock(&self.inner);
        let Some(pool) = all.get_mut(&(key.to_owned(), signers.to_vec())) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match pool.ready.pop_front() {
                Some((s, r, made)) if made.elapsed() < POOL_MAX_AGE => out.push((s, r)),
                Some(_) => {}
                None => break,
            }
        }
        out
    }

    fn missed(&self, key: &str, signers: &[PartyId]) {
        let mut all = lock(&self.inner);
        let pool = all
            .entry((key.to_owned(), signers.to_vec()))
            .or_insert_with(|| Pool {
                ready: VecDeque::new(),
                target: POOL_START / 2,
                refilling: false,
            });
        pool.target = (pool.target * 2).min(POOL_MAX);
    }

    fn claim(&self, key: &str, signers: &[PartyId]) -> Option<usize> {
        let mut all = lock(&self.inner);
        let pool = all
            .entry((key.to_owned(), signers.to_vec()))
            .or_insert_with(|| Pool {
                ready: VecDeque::new(),
                target: POOL_START,
                refilling: false,
            });
        if pool.refilling || pool.ready.len() * 2 >= pool.target {
            return None;
        }
        pool.refilling = true;
        Some(pool.target - pool.ready.len())
    }

    fn fill(&self, key: &str, signers: &[PartyId], got: Vec<Ready>) {
        let now = Instant::now();
        let mut all = lock(&self.inner);
        if let Some(pool) = all.get_mut(&(key.to_owned(), signers.to_vec())) {
            pool.refilling = false;
            pool.ready.extend(got.into_iter().map(|(s, r)| (s, r, now)));
        }
    }

    /// Forgets every pooled presignature made with `party` (it restarted or misbehaved).
    pub(super) fn flush_party(&self, party: PartyId) {
        for ((_, signers), pool) in lock(&self.inner).iter_mut() {
            if signers.contains(&party) {
                pool.ready.clear();
            }
        }
    }
}

/// Whom a failed step blames: the parties checks named, else the ones that could not be
/// reached, else every party that failed.
fn blame(failures: &[(PartyId, &CallFailure)]) -> Vec<PartyId> {
    let mut named: Vec<PartyId> = failures
        .iter()
        .flat_map(|(_, f)| f.culprits.iter().copied())
        .collect();
    if named.is_empty() {
        named = failures
            .iter()
            .filter(|(_, f)| f.unreachable)
            .map(|(p, _)| *p)
            .collect();
    }
    if named.is_empty() {
        named = failures.iter().map(|(p, _)| *p).collect();
    }
    named.sort_unstable();
    named.dedup();
    named
}

/// The replies of one step, or its first error with the parties to blame.
#[allow(clippy::type_complexity)]
fn settle(
    replies: Vec<(PartyId, Result<PeerReply, CallFailure>)>,
) -> Result<Vec<(PartyId, PeerReply)>, (Error, Vec<PartyId>)> {
    let failed: Vec<(PartyId, &CallFailure)> = replies
        .iter()
        .filter_map(|(p, r)| r.as_ref().err().map(|f| (*p, f)))
        .collect();
    let blamed = (!failed.is_empty()).then(|| blame(&failed));
    let mut ok = Vec::with_capacity(replies.len());
    let mut first = None;
    for (p, r) in replies {
        match r {
            Ok(v) => ok.push((p, v)),
            Err(f) => {
                first.get_or_insert(f.error);
            }
        }
    }
    match (first, blamed) {
        (Some(e), Some(b)) => Err((e, b)),
        _ => Ok(ok),
    }
}

type Attempt = Result<(Vec<Result<Signature, Error>>, f64), (Error, Vec<PartyId>)>;

impl Distributed {
    /// Signs 32-byte prehashes with a distributed threshold-ECDSA key.
    pub(super) async fn sign_ecdsa(
        self: &Arc<Self>,
        record: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        messages: Vec<Vec<u8>>,
        client: &str,
    ) -> Result<(Vec<Signature>, Cost), Error> {
        let t = usize::try_from(record.threshold).map_err(|_| Error::Internal("threshold"))?;
        let prehashes = messages
            .iter()
            .map(|m| <[u8; 32]>::try_from(m.as_slice()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Error::Internal("ECDSA prehash is not 32 bytes"))?;
        let mut results: Vec<Option<Signature>> = vec![None; prehashes.len()];
        let mut excluded: Vec<PartyId> = Vec::new();
        let mut last_error = None;
        let mut cost = Cost::default();
        for _ in 0..MAX_ATTEMPTS {
            let pending: Vec<usize> = (0..prehashes.len())
                .filter(|i| results[*i].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let signers = self.quorum(t, &excluded)?;
            match self
                .ecdsa_round(&record, &key, (&signers, client), &prehashes, &pending)
                .await
            {
                Ok((outs, c)) => {
                    cost.cpu_seconds += c;
                    for (i, o) in pending.iter().zip(outs) {
                        match o {
                            Ok(sig) => results[*i] = Some(sig),
                            Err(e) => {
                                // A combined signature that does not verify: some co-signer's
                                // online share was wrong (this node computed its own, and the
                                // presignatures passed their checks). With one co-signer that
                                // names it; with more, the online round cannot tell whose.
                                // The next attempt uses other co-signers.
                                let others: Vec<PartyId> = signers
                                    .iter()
                                    .copied()
                                    .filter(|p| *p != self.settings.me)
                                    .collect();
                                if let [culprit] = others.as_slice() {
                                    tracing::warn!(key_id = %record.key_id, culprits = ?[culprit], error = %e.chain(), "threshold-ECDSA signature did not verify: the only co-signer's online share was wrong; retrying without it");
                                } else {
                                    tracing::warn!(key_id = %record.key_id, ?signers, error = %e.chain(), "threshold-ECDSA signature did not verify; retrying with other co-signers");
                                }
                                excluded.extend(others);
                                last_error = Some(e);
                            }
                        }
                    }
                }
                Err((e, _)) if e.kind() == crate::ErrorKind::PermissionDenied => return Err(e),
                Err((e, blamed)) => {
                    excluded.extend(blamed);
                    last_error = Some(e);
                }
            }
            excluded.sort_unstable();
            excluded.dedup();
        }
        if results.iter().all(Option::is_some) {
            return Ok((results.into_iter().flatten().collect(), cost));
        }
        Err(last_error.unwrap_or(Error::Internal("signing gave up without an error")))
    }

    /// One attempt with one signer set: presignatures (pooled, or made now for what the
    /// pool lacks), the online round, and the combination on this node's batcher.
    async fn ecdsa_round(
        self: &Arc<Self>,
        record: &Arc<KeyRecord>,
        key: &Arc<LoadedKey>,
        (signers, client): (&[PartyId], &str),
        prehashes: &[[u8; 32]],
        pending: &[usize],
    ) -> Attempt {
        let m = pending.len();
        let key_id = record.key_id.clone();
        let mut pres = self.ecdsa_pools.take(&key_id, signers, m);
        if pres.len() < m {
            self.ecdsa_pools.missed(&key_id, signers);
            let more = self.presign(&key_id, signers, m - pres.len()).await?;
            pres.extend(more);
        }
        self.refill_presignatures(&key_id, signers);
        let items: Vec<(SessionId, [u8; 32])> = pres
            .iter()
            .zip(pending)
            .map(|((s, _), i)| (*s, prehashes[*i]))
            .collect();
        let replies = self
            .call_all(signers, |_| PeerRequest::EcdsaSign {
                key_id: key_id.clone(),
                items: items.clone(),
                client: client.to_owned(),
            })
            .await
            .map_err(|e| (e, vec![]))?;
        let sessions: Vec<SessionId> = items.iter().map(|(s, _)| *s).collect();
        let mut shares: Vec<Vec<Round3Msg>> = vec![Vec::with_capacity(signers.len()); m];
        let mut failure: Option<(Error, Vec<PartyId>)> = None;
        for (p, r) in replies {
            match r {
                Ok(PeerReply::Shares(list)) if list.len() == m => {
                    for (j, s) in list.into_iter().enumerate() {
                        match s.ok().and_then(|b| Round3Msg::from_bytes(&b, p).ok()) {
                            Some(share) => shares[j].push(share),
                            None => {
                                self.ecdsa_pools.flush_party(p);
                                failure.get_or_insert((
                                    Error::Peer {
                                        peer: p,
                                        problem: "no valid signature share".into(),
                                    },
                                    vec![p],
                                ));
                                break;
                            }
                        }
                    }
                }
                Ok(_) => {
                    failure.get_or_insert((unexpected(p), vec![p]));
                }
                Err(f) if f.error.kind() == crate::ErrorKind::PermissionDenied => {
                    self.compensate(
                        "ecdsa_sign",
                        signers.iter().map(|q| (*q, sessions.clone())).collect(),
                    );
                    return Err((f.error, vec![]));
                }
                Err(f) => {
                    self.ecdsa_pools.flush_party(p);
                    self.compensate("ecdsa_sign", vec![(p, sessions.clone())]);
                    failure.get_or_insert((f.error, vec![p]));
                }
            }
        }
        if let Some(f) = failure {
            return Err(f);
        }
        let jobs: Vec<Job> = pres
            .into_iter()
            .zip(shares)
            .zip(&items)
            .map(|(((_, big_r), shares), (_, prehash))| Job::Aggregate {
                key: Arc::clone(key),
                work: Box::new(AggregateWork::Ecdsa {
                    big_r,
                    prehash: *prehash,
                    shares,
                }),
            })
            .collect();
        let receivers = self
            .batcher
            .submit(Queue::Aggregate(Scheme::EcdsaSecp256k1), jobs)
            .map_err(|e| (e, vec![]))?;
        Ok(super::collect_signatures(receivers).await)
    }

    /// Makes `count` presignatures for `signers` now, in batches.
    async fn presign(
        self: &Arc<Self>,
        key_id: &str,
        signers: &[PartyId],
        count: usize,
    ) -> Result<Vec<Ready>, (Error, Vec<PartyId>)> {
        let mut out = Vec::with_capacity(count);
        while out.len() < count {
            let c = (count - out.len()).min(MAX_PRESIGN_BATCH);
            let sessions: Vec<SessionId> = (0..c)
                .map(|_| {
                    let mut s = [0u8; 16];
                    OsRng.fill_bytes(&mut s);
                    s
                })
                .collect();
            match self.presign_batch(key_id, signers, &sessions).await {
                Ok(r) => out.extend(r),
                Err(e) => {
                    self.compensate(
                        "presign",
                        signers.iter().map(|p| (*p, sessions.clone())).collect(),
                    );
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Runs the three presigning steps on every signer for `sessions`; checks every signer
    /// arrived at the same nonce point.
    async fn presign_batch(
        self: &Arc<Self>,
        key_id: &str,
        signers: &[PartyId],
        sessions: &[SessionId],
    ) -> Result<Vec<Ready>, (Error, Vec<PartyId>)> {
        let step = settle;
        let k = key_id.to_owned();
        let signer_list = signers.to_vec();
        let ids = sessions.to_vec();
        for (p, r) in step(
            self.call_all(signers, |_| PeerRequest::PresignStart {
                key_id: k.clone(),
                signers: signer_list.clone(),
                sessions: ids.clone(),
            })
            .await
            .map_err(|e| (e, vec![]))?,
        )? {
            if r != PeerReply::Done {
                return Err((unexpected(p), vec![p]));
            }
        }
        for (p, r) in step(
            self.call_all(signers, |_| PeerRequest::PresignRound2 {
                key_id: k.clone(),
                sessions: ids.clone(),
            })
            .await
            .map_err(|e| (e, vec![]))?,
        )? {
            if r != PeerReply::Done {
                return Err((unexpected(p), vec![p]));
            }
        }
        let finished = step(
            self.call_all(signers, |_| PeerRequest::PresignFinish {
                key_id: k.clone(),
                sessions: ids.clone(),
            })
            .await
            .map_err(|e| (e, vec![]))?,
        )?;
        let me = self.settings.me;
        let mut mine: Option<Vec<Vec<u8>>> = None;
        let mut theirs = Vec::new();
        for (p, r) in finished {
            let PeerReply::Presigned(list) = r else {
                return Err((unexpected(p), vec![p]));
            };
            let points: Option<Vec<Vec<u8>>> = list.into_iter().map(Result::ok).collect();
            match points {
                Some(v) if v.len() == sessions.len() => {
                    if p == me {
                        mine = Some(v);
                    } else {
                        theirs.push((p, v));
                    }
                }
                _ => return Err((unexpected(p), vec![p])),
            }
        }
        let mine = mine.ok_or((Error::Internal("this node did not presign"), vec![]))?;
        let differ: Vec<PartyId> = theirs
            .iter()
            .filter(|(_, v)| *v != mine)
            .map(|(p, _)| *p)
            .collect();
        if !differ.is_empty() {
            return Err((
                Error::Peer {
                    peer: differ[0],
                    problem: "presigned with another nonce point".into(),
                },
                differ,
            ));
        }
        Ok(sessions.iter().copied().zip(mine).collect())
    }

    /// Tops up the presignature pool of `signers` for `key` in the background.
    pub(super) fn refill_presignatures(self: &Arc<Self>, key: &str, signers: &[PartyId]) {
        let Some(count) = self.ecdsa_pools.claim(key, signers) else {
            return;
        };
        let this = Arc::clone(self);
        let key = key.to_owned();
        let signers = signers.to_vec();
        tokio::spawn(async move {
            let got = match this.presign(&key, &signers, count).await {
                Ok(v) => v,
                Err((e, _)) => {
                    tracing::debug!(?signers, error = %e.chain(), "presignature refill failed");
                    Vec::new()
                }
            };
            this.ecdsa_pools.fill(&key, &signers, got);
        });
    }
}
