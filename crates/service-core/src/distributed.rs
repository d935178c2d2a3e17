//! The distributed adapter of the [`Coordinator`] port: every party of a key is its own node,
//! and this node coordinates the sessions of the requests it receives. Each node holds only
//! its own share. Sessions run as sagas: every step has a deadline, a failed step aborts the
//! session on every party it reached (destroying nonces and DKG state), and a signature whose
//! quorum failed is retried with another quorum while the request's time lasts.
//!
//! Each peer has a circuit breaker: after [`TRIP_AFTER`] consecutive failed calls it opens and
//! the peer is left out of quorum selection; a background probe closes it again once the peer
//! answers. A request whose quorum cannot be formed from closed breakers fails at once with
//! [`Error::QuorumUnavailable`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand_core::{OsRng, RngCore};
use sha2::{Digest, Sha256};
use threshold::round1::{SigningCommitments, SigningNonces};
use threshold::{Bip340Suite, Ed25519Suite, Identifier, SignatureShare, SigningPackage};
use zeroize::Zeroizing;

use crate::batcher::Done;
use crate::coordinator::{BoxFuture, Coordinator, Cost, JobBatcher, Signature};
use crate::error::joined;
use crate::jobs::{FrostAggregate, Job, JobOutput};
use crate::keys::{LoadedKey, Taproot};
use crate::merge::{self, Merger, Waiter};
use crate::party::{FrostScheme, Party, PooledCommitments, decode_commitments, join_all};
use crate::peer::{LinkError, NewKey, PartyId, PeerLink, PeerReply, PeerRequest, SessionId};
use crate::ports::KeyRecord;
use crate::{Error, Observer, Queue, Scheme};

/// Consecutive failed calls that open a peer's breaker.
pub const TRIP_AFTER: u32 = 3;
/// How long an open breaker waits before the background probe tries the peer again.
pub const OPEN_FOR: Duration = Duration::from_millis(500);
/// Quorums tried per signature before the request fails.
pub const MAX_ATTEMPTS: usize = 3;
/// Most key-generation steps after round 2 before the coordinator gives up.
const MAX_DKG_STEPS: usize = 8;
/// How often a node asks the creators of the key shares it holds pending how their creation
/// ended (only while it holds any).
pub const SETTLE_EVERY: Duration = Duration::from_secs(5);
/// Deadline of a request forwarded to the home node of its idempotency key (it signs there,
/// with its own peer calls).
pub const FORWARD_DEADLINE: Duration = Duration::from_secs(10);

/// The distributed coordinator's settings.
#[derive(Clone, Debug)]
pub struct ClusterSettings {
    /// This node's party id.
    pub me: PartyId,
    /// The other nodes' party ids.
    pub peers: Vec<PartyId>,
    /// Deadline of one peer call.
    pub call_deadline: Duration,
}

/// A circuit breaker's state (the metric's value: 0 closed, 1 open, 2 half-open).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// The peer is left out until a probe succeeds.
    Open,
    /// A probe is in flight.
    HalfOpen,
}

#[derive(Debug)]
struct Breaker {
    failures: u32,
    state: BreakerState,
    opened_at: Instant,
}

/// The distributed coordinator. See the module documentation.
#[derive(Debug)]
pub struct Distributed {
    settings: ClusterSettings,
    party: Arc<Party>,
    link: Arc<dyn PeerLink>,
    batcher: Arc<JobBatcher>,
    observer: Arc<dyn Observer>,
    breakers: Mutex<BTreeMap<PartyId, Breaker>>,
    rotate: AtomicUsize,
    pools: Pools,
    ecdsa_pools: ecdsa::Pools,
    /// Concurrent FROST requests per (key, client, tweak), combined into shared attempts.
    merger: Merger<(String, String, Taproot)>,
}

/// Pre-generated round-1 commitments per (key, party): the nonces stay with their party
/// (memory only, single use); the coordinator keeps only the public commitments and each
/// one's session id, and hands each out once. A pool's target grows when signing finds it
/// empty; entries close to the parties' [`crate::NONCE_TTL`] are dropped unused.
#[derive(Debug, Default)]
struct Pools {
    inner: Mutex<HashMap<(String, PartyId), Pool>>,
}

#[derive(Debug)]
struct Pool {
    /// Commitments validated when they arrived (a peer's) or taken from this node's nonces.
    ready: VecDeque<(SessionId, PooledCommitments, Instant)>,
    target: usize,
    refilling: bool,
}

/// The first target of a key's pool per party.
const POOL_START: usize = 16;
/// The largest target of a key's pool per party.
const POOL_MAX: usize = 4096;
/// Pooled commitments older than this are dropped (the parties forget their nonces after
/// [`crate::NONCE_TTL`]).
const POOL_MAX_AGE: Duration = Duration::from_secs(45);

impl Pools {
    /// Up to `n` fresh commitments of `party` for `key`, each handed out once.
    fn take(&self, key: &str, party: PartyId, n: usize) -> Vec<(SessionId, PooledCommitments)> {
        let mut all = lock(&self.inner);
        let Some(pool) = all.get_mut(&(key.to_owned(), party)) else {
            return Vec::new();
        };
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            match pool.ready.pop_front() {
                Some((s, c, made)) if made.elapsed() < POOL_MAX_AGE => out.push((s, c)),
                Some(_) => {}
                None => break,
            }
        }
        out
    }

    /// Signing found the pool short: grow its target.
    fn missed(&self, key: &str, party: PartyId) {
        let mut all = lock(&self.inner);
        let pool = all.entry((key.to_owned(), party)).or_insert_with(|| Pool {
            ready: VecDeque::new(),
            target: POOL_START / 2,
            refilling: false,
        });
        pool.target = (pool.target * 2).min(POOL_MAX);
    }

    /// How many to fetch now, marking a refill as running; `None` when the pool is full
    /// enough or a refill runs.
    fn claim(&self, key: &str, party: PartyId) -> Option<usize> {
        let mut all = lock(&self.inner);
        let pool = all.entry((key.to_owned(), party)).or_insert_with(|| Pool {
            ready: VecDeque::new(),
            target: POOL_START,
            refilling: false,
        });
        if pool.refilling || pool.ready.len() * 2 >= pool.target {
            return None;
        }
        pool.refilling = true;
        Some((pool.target - pool.ready.len()).min(crate::party::MAX_COMMIT as usize))
    }

    fn fill(&self, key: &str, party: PartyId, got: Vec<(SessionId, PooledCommitments)>) {
        let now = Instant::now();
        let mut all = lock(&self.inner);
        if let Some(pool) = all.get_mut(&(key.to_owned(), party)) {
            pool.refilling = false;
            pool.ready.extend(got.into_iter().map(|(s, c)| (s, c, now)));
        }
    }

    /// Forgets every pooled commitment of `party` (it restarted or misbehaved).
    fn flush_party(&self, party: PartyId) {
        for ((_, p), pool) in lock(&self.inner).iter_mut() {
            if *p == party {
                pool.ready.clear();
            }
        }
    }
}

#[path = "distributed_ecdsa.rs"]
mod ecdsa;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unexpected(peer: PartyId) -> Error {
    Error::Peer {
        peer,
        problem: "unexpected reply".into(),
    }
}

/// A signer's commitments for one session of a signing attempt.
enum Fetched<S: FrostScheme> {
    /// From the pool, validated when they arrived (`None`: pooled for another suite).
    Pooled(Option<SigningCommitments<S>>),
    /// Asked for now, still encoded.
    Encoded(Vec<u8>),
}

/// A failed call: who, and whether the peer itself is to blame (`culprits`) or merely gone.
struct CallFailure {
    error: Error,
    culprits: Vec<PartyId>,
    /// The peer could not be reached (no answer at all).
    unreachable: bool,
}

impl Distributed {
    /// A coordinator for party `settings.me`, reaching the others through `link` and
    /// aggregating on `batcher`. Starts the breakers' background probe (call inside a Tokio
    /// runtime).
    pub fn start(
        settings: ClusterSettings,
        party: Arc<Party>,
        link: Arc<dyn PeerLink>,
        batcher: Arc<JobBatcher>,
        observer: Arc<dyn Observer>,
    ) -> Arc<Self> {
        let now = Instant::now();
        let breakers = settings
            .peers
            .iter()
            .map(|p| {
                (
                    *p,
                    Breaker {
                        failures: 0,
                        state: BreakerState::Closed,
                        opened_at: now,
                    },
                )
            })
            .collect();
        let this = Arc::new(Self {
            settings,
            party,
            link,
            batcher,
            observer,
            breakers: Mutex::new(breakers),
            rotate: AtomicUsize::new(0),
            pools: Pools::default(),
            ecdsa_pools: ecdsa::Pools::default(),
            merger: Merger::new(),
        });
        for p in &this.settings.peers {
            this.observer.breaker_state(*p, BreakerState::Closed);
        }
        let weak = Arc::downgrade(&this);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(OPEN_FOR / 2);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                this.probe_open_peers().await;
            }
        });
        let weak = Arc::downgrade(&this);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SETTLE_EVERY);
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { return };
                if this.party.may_hold_pending() {
                    let left = this.party.settle_pending().await;
                    this.observer.pending_key_shares(left);
                }
            }
        });
        this
    }

    /// The breaker state of every peer.
    pub fn breaker_states(&self) -> Vec<(PartyId, BreakerState)> {
        lock(&self.breakers)
            .iter()
            .map(|(p, b)| (*p, b.state))
            .collect()
    }

    async fn probe_open_peers(&self) {
        let due: Vec<PartyId> = {
            let mut b = lock(&self.breakers);
            b.iter_mut()
                .filter(|(_, br)| {
                    br.state == BreakerState::Open && br.opened_at.elapsed() >= OPEN_FOR
                })
                .map(|(p, br)| {
                    br.state = BreakerState::HalfOpen;
                    *p
                })
                .collect()
        };
        for p in due {
            self.observer.breaker_state(p, BreakerState::HalfOpen);
            let r = self
                .link
                .call(
                    p,
                    PeerRequest::Ping,
                    self.settings.call_deadline.min(OPEN_FOR),
                )
                .await;
            self.record(p, r.is_ok());
        }
    }

    fn record(&self, peer: PartyId, ok: bool) {
        let changed = {
            let mut all = lock(&self.breakers);
            let Some(b) = all.get_mut(&peer) else { return };
            let before = b.state;
            if ok {
                b.failures = 0;
                b.state = BreakerState::Closed;
            } else {
                b.failures += 1;
                if b.state == BreakerState::HalfOpen || b.failures >= TRIP_AFTER {
                    b.state = BreakerState::Open;
                    b.opened_at = Instant::now();
                }
            }
            (before != b.state).then_some((before, b.state))
        };
        if let Some((before, state)) = changed {
            match (before, state) {
                (BreakerState::Closed, BreakerState::Open) => {
                    tracing::warn!(
                        peer,
                        "peer unreachable: breaker opened, left out of quorums"
                    );
                }
                (_, BreakerState::Closed) => {
                    tracing::info!(peer, "peer answers again: breaker closed")
                }
                _ => {}
            }
            self.observer.breaker_state(peer, state);
        }
    }

    /// Peers whose breaker is closed.
    fn available(&self) -> Vec<PartyId> {
        lock(&self.breakers)
            .iter()
            .filter(|(_, b)| b.state == BreakerState::Closed)
            .map(|(p, _)| *p)
            .collect()
    }

    /// One call to `peer` (or to this node's own party), with the breaker bookkeeping.
    async fn call(&self, peer: PartyId, request: PeerRequest) -> Result<PeerReply, CallFailure> {
        let kind = request.kind();
        let reply = if peer == self.settings.me {
            Ok(self.party.handle(peer, request).await)
        } else {
            let start = Instant::now();
            let r = self
                .link
                .call(peer, request, self.settings.call_deadline)
                .await;
            self.observer
                .peer_call(peer, kind, start.elapsed(), r.is_ok());
            self.record(peer, r.is_ok());
            r
        };
        match reply {
            Ok(PeerReply::Failed(f)) if f.kind == crate::peer::RemoteKind::PermissionDenied => {
                Err(CallFailure {
                    error: Error::Forwarded {
                        peer,
                        message: f.message,
                        kind: f.kind,
                    },
                    culprits: Vec::new(),
                    unreachable: false,
                })
            }
            Ok(PeerReply::Failed(f)) => Err(CallFailure {
                error: Error::Peer {
                    peer,
                    problem: f.message,
                },
                culprits: f.culprits,
                unreachable: false,
            }),
            Ok(r) => Ok(r),
            Err(e) => Err(CallFailure {
                error: link_error(peer, e),
                culprits: Vec::new(),
                unreachable: true,
            }),
        }
    }

    /// Sends `request(p)` to every party of `parties` at once; the replies in order.
    async fn call_all(
        self: &Arc<Self>,
        parties: &[PartyId],
        request: impl Fn(PartyId) -> PeerRequest,
    ) -> Result<Vec<(PartyId, Result<PeerReply, CallFailure>)>, Error> {
        let calls = parties.iter().map(|p| {
            let this = Arc::clone(self);
            let (p, req) = (*p, request(*p));
            async move { (p, this.call(p, req).await) }
        });
        join_all(calls).await
    }

    /// Aborts `sessions` on `parties` (the saga's compensation); failures are only logged.
    fn compensate(self: &Arc<Self>, step: &'static str, parties: Vec<(PartyId, Vec<SessionId>)>) {
        self.observer.saga_compensated(step);
        let this = Arc::clone(self);
        tokio::spawn(async move {
            for (p, sessions) in parties {
                if sessions.is_empty() {
                    continue;
                }
                if let Err(f) = this.call(p, PeerRequest::Abort { sessions }).await {
                    tracing::debug!(peer = p, error = %f.error.chain(), "abort not delivered; the peer forgets the session when it expires");
                }
            }
        });
    }

    /// Tops up the commitment pools of `key` for this node and every reachable peer.
    fn refill_all<S: FrostScheme>(self: &Arc<Self>, key: &str) {
        self.refill::<S>(key, self.settings.me);
        for p in self.available() {
            self.refill::<S>(key, p);
        }
    }

    /// Tops up `party`'s commitment pool for `key` in the background when it runs low. A
    /// peer's commitments are validated on arrival, in one batch on the background threads
    /// (this node's own are taken from its nonces), so that signing uses them as they are.
    fn refill<S: FrostScheme>(self: &Arc<Self>, key: &str, party: PartyId) {
        let Some(count) = self.pools.claim(key, party) else {
            return;
        };
        let this = Arc::clone(self);
        let key = key.to_owned();
        tokio::spawn(async move {
            let got = match this
                .call(
                    party,
                    PeerRequest::Commit {
                        key_id: key.clone(),
                        count: count as u32,
                    },
                )
                .await
            {
                Ok(PeerReply::Commitments(c)) => c,
                Ok(_) => Vec::new(),
                Err(f) => {
                    tracing::debug!(peer = party, error = %f.error.chain(), "commitment refill failed");
                    Vec::new()
                }
            };
            let (sids, encodings): (Vec<SessionId>, Vec<Vec<u8>>) = got.into_iter().unzip();
            let checked = if party == this.settings.me {
                Ok(this.party.own_commitments::<S>(&sids))
            } else if encodings.is_empty() {
                Ok(Vec::new())
            } else {
                this.party
                    .background("commitment validation", move |accel| {
                        let refs: Vec<&[u8]> = encodings.iter().map(Vec::as_slice).collect();
                        Ok(decode_commitments::<S>(accel, party, &refs)?
                            .into_iter()
                            .map(Some)
                            .collect())
                    })
                    .await
            };
            let pooled = match checked {
                Ok(list) => sids
                    .into_iter()
                    .zip(list)
                    .filter_map(|(s, c)| c.map(|c| (s, S::pooled(c))))
                    .collect(),
                Err(e) => {
                    tracing::warn!(peer = party, error = %e.chain(), "pooled commitments dropped: they failed validation");
                    Vec::new()
                }
            };
            this.pools.fill(&key, party, pooled);
        });
    }

    async fn generate_inner(self: &Arc<Self>, key: &NewKey) -> Result<LoadedKey, Error> {
        let all = self.all_parties(key)?;
        let mut session = [0u8; 16];
        OsRng.fill_bytes(&mut session);
        let mut dkg_id = [0u8; 32];
        OsRng.fill_bytes(&mut dkg_id);
        self.party.begin_creating(&key.key_id);
        let r = self.run_dkg(&all, session, key, dkg_id).await;
        if r.is_ok() && self.party.fault() == crate::Fault::DieBeforeStoringKey {
            tracing::error!(key_id = %key.key_id, "test-only fault: aborting before storing this node's share");
            std::process::abort();
        }
        if r.is_err() {
            self.compensate("dkg", all.iter().map(|p| (*p, vec![session])).collect());
            self.settle_key(&key.key_id, false).await;
        }
        r
    }

    /// Tells every other node whether this node stored its share of `key_id` (the commit
    /// point of the key's creation), so each commits or deletes its pending share. A node
    /// that misses it asks later ([`Party::settle_pending`]).
    async fn settle_key(self: &Arc<Self>, key_id: &str, stored: bool) {
        // Decided: a peer that asks from now on hears it from the store.
        self.party.end_creating(key_id);
        if !stored {
            self.observer.saga_compensated("key_creation");
        }
        let replies = self
            .call_all(&self.settings.peers, |_| PeerRequest::KeySettled {
                key_id: key_id.to_owned(),
                committed: stored,
            })
            .await;
        for (p, r) in replies.into_iter().flatten() {
            if let Err(f) = r {
                tracing::warn!(key_id, peer = p, stored, error = %f.error.chain(), "the peer did not hear how the key's creation ended; it asks when it next needs the key");
            }
        }
    }

    /// `party`'s commitments for a signing attempt, each validated: pooled ones already
    /// were; this node's own are taken from its nonces; a peer's fetched now are checked in
    /// one batch (a bad one names the peer).
    fn validate_fetched<S: FrostScheme>(
        &self,
        party: PartyId,
        fetched: Vec<(SessionId, Fetched<S>)>,
    ) -> Result<Vec<(SessionId, SigningCommitments<S>)>, Error> {
        let encoded: Vec<(SessionId, &[u8])> = fetched
            .iter()
            .filter_map(|(s, f)| match f {
                Fetched::Encoded(b) => Some((*s, b.as_slice())),
                Fetched::Pooled(_) => None,
            })
            .collect();
        let mut checked = if encoded.is_empty() {
            Vec::new()
        } else if party == self.settings.me {
            let sids: Vec<SessionId> = encoded.iter().map(|(s, _)| *s).collect();
            self.party.own_commitments::<S>(&sids)
        } else {
            let refs: Vec<&[u8]> = encoded.iter().map(|(_, b)| *b).collect();
            decode_commitments::<S>(self.party.accel(), party, &refs)?
                .into_iter()
                .map(Some)
                .collect()
        }
        .into_iter();
        fetched
            .into_iter()
            .map(|(s, f)| {
                let c = match f {
                    Fetched::Pooled(c) => c,
                    Fetched::Encoded(_) => checked.next().flatten(),
                };
                c.map(|c| (s, c)).ok_or_else(|| unexpected(party))
            })
            .collect()
    }

    /// Every party of the cluster, ascending, when `key` has one party per node and every
    /// peer is reachable (key creation needs them all).
    fn all_parties(&self, key: &NewKey) -> Result<Vec<PartyId>, Error> {
        let n = 1 + self.settings.peers.len();
        if usize::from(key.parties) != n {
            return Err(Error::invalid(
                "parties",
                format!(
                    "a distributed key has one party per node: this cluster has {n} nodes (got {})",
                    key.parties
                ),
            ));
        }
        let mut all: Vec<PartyId> = self.settings.peers.clone();
        all.push(self.settings.me);
        all.sort_unstable();
        let up = self.available();
        let down: Vec<PartyId> = self
            .settings
            .peers
            .iter()
            .filter(|p| !up.contains(p))
            .copied()
            .collect();
        if !down.is_empty() {
            let mut reachable = up;
            reachable.push(self.settings.me);
            reachable.sort_unstable();
            return Err(Error::QuorumUnavailable {
                need: n,
                reachable,
                unreachable: down,
            });
        }
        Ok(all)
    }

    /// `ImportKey`: splits the secret here and hands each other node its share over the peer
    /// channel; every node checks and stores its own.
    async fn import_inner(
        self: &Arc<Self>,
        key: &NewKey,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<LoadedKey, Error> {
        self.all_parties(key)?;
        self.party.begin_creating(&key.key_id);
        let r = self.import_shares(key, secret).await;
        if r.is_err() {
            self.settle_key(&key.key_id, false).await;
        }
        r
    }

    /// The body of [`Distributed::import_inner`].
    async fn import_shares(
        self: &Arc<Self>,
        key: &NewKey,
        secret: Zeroizing<Vec<u8>>,
    ) -> Result<LoadedKey, Error> {
        let (own, others) = self.party.deal(key, secret).await?;
        let public_key = own.public_key();
        let shares: BTreeMap<PartyId, Zeroizing<Vec<u8>>> = others.into_iter().collect();
        let peers: Vec<PartyId> = shares.keys().copied().collect();
        let replies = self
            .call_all(&peers, |p| PeerRequest::ImportShare {
                key: key.clone(),
                share: shares.get(&p).cloned().unwrap_or_default(),
            })
            .await?;
        drop(shares);
        for (p, r) in replies {
            match r {
                Ok(PeerReply::Finished(pk)) if pk == public_key => {}
                Ok(_) => return Err(unexpected(p)),
                Err(f) => return Err(f.error),
            }
        }
        if !matches!(own, LoadedKey::EcdsaParty(_)) {
            return Ok(own);
        }
        // Threshold ECDSA: the dealt shares carry OT state the dealer made. Every pair runs a
        // fresh base OT between its nodes (started by its lower id) before the key is used.
        let own = Arc::new(own);
        self.party.cache(&key.key_id, Arc::clone(&own));
        let r = self.refresh_all_pairs(&key.key_id).await;
        let fresh = LoadedKey::from_bytes(key.scheme, &own.to_bytes());
        self.party.uncache(&key.key_id);
        r?;
        fresh
    }

    /// Every pair of the cluster runs a fresh base OT for `key_id`; waits for all of them.
    async fn refresh_all_pairs(self: &Arc<Self>, key_id: &str) -> Result<(), Error> {
        let mut all = self.settings.peers.clone();
        all.push(self.settings.me);
        all.sort_unstable();
        let initiators: Vec<PartyId> = all
            .iter()
            .copied()
            .filter(|a| all.iter().any(|b| b > a))
            .collect();
        let replies = self
            .call_all(&initiators, |a| PeerRequest::RefreshPairs {
                key_id: key_id.to_owned(),
                peers: all.iter().copied().filter(|b| *b > a).collect(),
            })
            .await?;
        for (p, r) in replies {
            match r {
                Ok(PeerReply::Done) => {}
                Ok(_) => return Err(unexpected(p)),
                Err(f) => return Err(f.error),
            }
        }
        Ok(())
    }

    async fn run_dkg(
        self: &Arc<Self>,
        all: &[PartyId],
        session: SessionId,
        key: &NewKey,
        dkg_id: [u8; 32],
    ) -> Result<LoadedKey, Error> {
        let first = |rs: Vec<(PartyId, Result<PeerReply, CallFailure>)>| {
            let mut ok = Vec::with_capacity(rs.len());
            for (p, r) in rs {
                match r {
                    Ok(v) => ok.push((p, v)),
                    Err(f) if !f.culprits.is_empty() => {
                        return Err(Error::Protocol(threshold::Error::Culprits(f.culprits)));
                    }
                    Err(f) => return Err(f.error),
                }
            }
            Ok(ok)
        };
        let k = key.clone();
        let r1 = first(
            self.call_all(all, |_| PeerRequest::DkgStart {
                session,
                key: k.clone(),
                dkg_id,
            })
            .await?,
        )?;
        let mut round1 = Vec::with_capacity(r1.len());
        for (p, r) in r1 {
            match r {
                PeerReply::Round1(b) => round1.push((p, b)),
                _ => return Err(unexpected(p)),
            }
        }
        for (p, r) in first(
            self.call_all(all, |_| PeerRequest::DkgShares {
                session,
                round1: round1.clone(),
            })
            .await?,
        )? {
            if r != PeerReply::Done {
                return Err(unexpected(p));
            }
        }
        // FROST confirms at the first step; threshold ECDSA first runs the further flows of
        // its pairwise base OTs, one step each.
        let mut confirmations = Vec::with_capacity(all.len());
        for _ in 0..MAX_DKG_STEPS {
            let replies = first(
                self.call_all(all, |_| PeerRequest::DkgConfirm { session })
                    .await?,
            )?;
            if replies.iter().all(|(_, r)| *r == PeerReply::Done) {
                continue;
            }
            for (p, r) in replies {
                match r {
                    PeerReply::Confirmation(c) => confirmations.push((p, c)),
                    _ => return Err(unexpected(p)),
                }
            }
            break;
        }
        if confirmations.len() != all.len() {
            return Err(Error::Internal("the DKG did not reach its confirmation"));
        }
        let finished = first(
            self.call_all(all, |_| PeerRequest::DkgFinish {
                session,
                confirmations: confirmations.clone(),
            })
            .await?,
        )?;
        let local = self
            .party
            .take_finished(&session)
            .ok_or(Error::Internal("the local party did not finish the DKG"))?;
        let public_key = local.public_key();
        for (p, r) in finished {
            match r {
                PeerReply::Finished(pk) if pk == public_key => {}
                PeerReply::Finished(_) => {
                    return Err(Error::Protocol(threshold::Error::Culprits(vec![p])));
                }
                _ => return Err(unexpected(p)),
            }
        }
        Ok(local)
    }

    /// A FROST signature request, combined with the other requests for the same key, client
    /// and tweak that arrive while [`merge::MAX_ROUNDS`] attempts for them run: an attempt
    /// runs on its own task, so a request that goes away stops no one else's signatures.
    async fn sign_merged<S: FrostScheme>(
        self: &Arc<Self>,
        record: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        messages: Vec<Vec<u8>>,
        taproot: Taproot,
        client: String,
    ) -> Result<(Vec<Signature>, Cost), Error> {
        let (reply, outcome) = tokio::sync::oneshot::channel();
        let group = (record.key_id.clone(), client, taproot);
        if let Some(first) = self.merger.join(&group, Waiter { messages, reply }) {
            let this = Arc::clone(self);
            tokio::spawn(async move {
                let mut batch = first;
                loop {
                    let messages: Vec<Vec<u8>> = batch
                        .iter()
                        .flat_map(|w| w.messages.iter().cloned())
                        .collect();
                    // On a task of its own, so that a panic (a bug) fails this attempt's
                    // requests and the group's slot is still handed on or freed.
                    let attempt = tokio::spawn({
                        let (this, record, key) =
                            (Arc::clone(&this), Arc::clone(&record), Arc::clone(&key));
                        let client = group.1.clone();
                        async move {
                            this.sign_inner::<S>(record, key, messages, taproot, &client)
                                .await
                        }
                    });
                    merge::answer(batch, joined("signing attempt", attempt.await));
                    match this.merger.next(&group) {
                        Some(more) => batch = more,
                        None => break,
                    }
                }
            });
        }
        outcome
            .await
            .map_err(|_| Error::Internal("a signing attempt ended without an answer"))?
    }

    async fn sign_inner<S: FrostScheme>(
        self: &Arc<Self>,
        record: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        messages: Vec<Vec<u8>>,
        taproot: Taproot,
        client: &str,
    ) -> Result<(Vec<Signature>, Cost), Error> {
        let t = usize::try_from(record.threshold).map_err(|_| Error::Internal("threshold"))?;
        let mut results: Vec<Option<Signature>> = vec![None; messages.len()];
        let mut excluded: Vec<PartyId> = Vec::new();
        let mut last_error = None;
        let mut cost = Cost::default();
        for _ in 0..MAX_ATTEMPTS {
            let pending: Vec<usize> = (0..messages.len())
                .filter(|i| results[*i].is_none())
                .collect();
            if pending.is_empty() {
                break;
            }
            let signers = self.quorum(t, &excluded)?;
            match self
                .sign_round::<S>(
                    &record,
                    &key,
                    (&signers, client),
                    &messages,
                    &pending,
                    taproot,
                )
                .await
            {
                Ok((outs, c)) => {
                    cost.cpu_seconds += c;
                    let mut culprits = Vec::new();
                    for (i, o) in pending.iter().zip(outs) {
                        match o {
                            Ok(sig) => results[*i] = Some(sig),
                            Err(Error::Protocol(threshold::Error::Culprits(c))) => {
                                culprits.extend(c);
                            }
                            Err(e) => last_error = Some(e),
                        }
                    }
                    if !culprits.is_empty() {
                        culprits.sort_unstable();
                        culprits.dedup();
                        tracing::warn!(key_id = %record.key_id, ?culprits, "signature shares failed verification; retrying without the culprits");
                        last_error = Some(Error::Protocol(threshold::Error::Culprits(
                            culprits.clone(),
                        )));
                        excluded.extend(culprits);
                    }
                }
                Err((e, _)) if e.kind() == crate::ErrorKind::PermissionDenied => {
                    // A co-signing node's policy refuses this client: no other quorum is
                    // asked (the policy is the cluster's, not one node's).
                    return Err(e);
                }
                Err((e, blame)) => {
                    excluded.extend(blame);
                    last_error = Some(e);
                }
            }
        }
        if results.iter().all(Option::is_some) {
            return Ok((results.into_iter().flatten().collect(), cost));
        }
        Err(last_error.unwrap_or(Error::Internal("signing gave up without an error")))
    }

    /// This node and `t − 1` peers with closed breakers, not in `excluded`, rotating over the
    /// peers so load spreads.
    fn quorum(&self, t: usize, excluded: &[PartyId]) -> Result<Vec<PartyId>, Error> {
        let mut up: Vec<PartyId> = self
            .available()
            .into_iter()
            .filter(|p| !excluded.contains(p))
            .collect();
        if up.len() + 1 < t {
            let mut reachable = up.clone();
            reachable.push(self.settings.me);
            reachable.sort_unstable();
            let unreachable = self
                .settings
                .peers
                .iter()
                .filter(|p| !up.contains(p))
                .copied()
                .collect();
            return Err(Error::QuorumUnavailable {
                need: t,
                reachable,
                unreachable,
            });
        }
        if !up.is_empty() {
            let k = self.rotate.fetch_add(1, Ordering::Relaxed) % up.len();
            up.rotate_left(k);
        }
        let mut signers = vec![self.settings.me];
        signers.extend(up.into_iter().take(t - 1));
        signers.sort_unstable();
        Ok(signers)
    }

    /// One attempt: commitments from every signer, signing packages, shares, aggregation.
    /// A failure of the attempt as a whole names the parties to leave out next time.
    #[allow(clippy::type_complexity)]
    async fn sign_round<S: FrostScheme>(
        self: &Arc<Self>,
        record: &Arc<KeyRecord>,
        key: &Arc<LoadedKey>,
        (signers, client): (&[PartyId], &str),
        messages: &[Vec<u8>],
        pending: &[usize],
        taproot: Taproot,
    ) -> Result<(Vec<Result<Signature, Error>>, f64), (Error, Vec<PartyId>)> {
        let m = pending.len();
        let key_id = record.key_id.clone();
        // Round 1: pre-generated commitments from the pools (validated when they arrived);
        // only what they lack is asked for now (one extra round trip) and validated below.
        let mut commitments: Vec<(PartyId, Vec<(SessionId, Fetched<S>)>)> = signers
            .iter()
            .map(|p| {
                let pooled = self.pools.take(&key_id, *p, m).into_iter();
                (
                    *p,
                    pooled
                        .map(|(s, c)| (s, Fetched::Pooled(S::unpooled(&c))))
                        .collect(),
                )
            })
            .collect();
        let short: Vec<(PartyId, u32)> = commitments
            .iter()
            .filter(|(_, c)| c.len() < m)
            .map(|(p, c)| (*p, (m - c.len()) as u32))
            .collect();
        for (p, _) in &short {
            self.pools.missed(&key_id, *p);
        }
        let short_ids: Vec<PartyId> = short.iter().map(|(p, _)| *p).collect();
        let r1 = if short.is_empty() {
            Vec::new()
        } else {
            self.call_all(&short_ids, |p| PeerRequest::Commit {
                key_id: key_id.clone(),
                count: short.iter().find(|(q, _)| *q == p).map_or(0, |(_, n)| *n),
            })
            .await
            .map_err(|e| (e, vec![]))?
        };
        let mut failure = None;
        for (p, r) in r1 {
            let want = short.iter().find(|(q, _)| *q == p).map_or(0, |(_, n)| *n) as usize;
            let slot = commitments.iter_mut().find(|(q, _)| *q == p);
            match (r, slot) {
                (Ok(PeerReply::Commitments(c)), Some((_, have))) => {
                    let got = c.len();
                    have.extend(c.into_iter().map(|(s, b)| (s, Fetched::Encoded(b))));
                    if got != want {
                        failure.get_or_insert((unexpected(p), vec![p]));
                    }
                }
                (Ok(_), _) | (_, None) => {
                    failure.get_or_insert((unexpected(p), vec![p]));
                }
                (Err(f), _) => {
                    failure.get_or_insert((f.error, vec![p]));
                }
            }
        }
        for p in signers {
            self.refill::<S>(&key_id, *p);
        }
        // Compensation list: every nonce session taken for this attempt, by party.
        let issued: Vec<(PartyId, Vec<SessionId>)> = commitments
            .iter()
            .map(|(p, c)| (*p, c.iter().map(|(s, _)| *s).collect()))
            .collect();
        if let Some(f) = failure {
            self.compensate("commit", issued);
            return Err(f);
        }
        // The commitments fetched now: this node's own from its party's nonces, a peer's
        // validated in one batch.
        let me = self.settings.me;
        let mut decoded = Vec::with_capacity(commitments.len());
        for (p, c) in commitments {
            match self.validate_fetched::<S>(p, c) {
                Ok(list) => decoded.push((p, list)),
                Err(e) => {
                    self.compensate("commit", issued);
                    return Err((e, vec![p]));
                }
            }
        }
        let mut packages = Vec::with_capacity(m);
        for (j, &i) in pending.iter().enumerate() {
            let mut map = BTreeMap::new();
            for (p, list) in &decoded {
                let id = Identifier::new(*p).map_err(|e| (Error::from(e), vec![]))?;
                let Some((_, c)) = list.get(j).copied() else {
                    self.compensate("commit", issued);
                    return Err((unexpected(*p), vec![*p]));
                };
                map.insert(id, c);
            }
            packages.push(SigningPackage::<S>::new(map, &messages[i], taproot.tweak()));
        }
        let encoded: Vec<Vec<u8>> = packages.iter().map(SigningPackage::to_bytes).collect();
        let per_signer: BTreeMap<PartyId, Vec<(SessionId, Vec<u8>)>> = decoded
            .iter()
            .filter(|(p, _)| *p != me)
            .map(|(p, c)| {
                (
                    *p,
                    c.iter()
                        .zip(&encoded)
                        .map(|((s, _), pkg)| (*s, pkg.clone()))
                        .collect(),
                )
            })
            .collect();
        let peers: Vec<PartyId> = signers.iter().copied().filter(|p| *p != me).collect();
        // This node's own nonces leave its table now (single use, whatever the peers answer);
        // its share is computed with the aggregation, from the same session values.
        let own: Vec<Option<SigningNonces<S>>> = match decoded.iter().find(|(p, _)| *p == me) {
            Some((_, c)) => {
                let sessions: Vec<SessionId> = c.iter().map(|(s, _)| *s).collect();
                let own = self.party.own_nonces::<S>(&key_id, &sessions);
                if own.iter().any(Option::is_none) {
                    self.compensate("commit", issued);
                    return Err((
                        Error::Peer {
                            peer: me,
                            problem: "no valid signature share".into(),
                        },
                        vec![me],
                    ));
                }
                own
            }
            None => (0..m).map(|_| None).collect(),
        };
        let r2 = self
            .call_all(&peers, |p| PeerRequest::SignShares {
                key_id: key_id.clone(),
                items: per_signer.get(&p).cloned().unwrap_or_default(),
                client: client.to_owned(),
            })
            .await
            .map_err(|e| (e, vec![]))?;
        let mut shares: Vec<Vec<SignatureShare<S>>> = vec![Vec::new(); m];
        for (p, r) in r2 {
            let id = Identifier::new(p).map_err(|e| (Error::from(e), vec![]))?;
            match r {
                Ok(PeerReply::Shares(list)) if list.len() == m => {
                    for (j, s) in list.into_iter().enumerate() {
                        match s
                            .ok()
                            .and_then(|b| SignatureShare::<S>::from_bytes(id, &b).ok())
                        {
                            Some(share) => shares[j].push(share),
                            None => {
                                return Err((
                                    Error::Peer {
                                        peer: p,
                                        problem: "no valid signature share".into(),
                                    },
                                    vec![p],
                                ));
                            }
                        }
                    }
                }
                Ok(_) => {
                    self.pools.flush_party(p);
                    return Err((unexpected(p), vec![p]));
                }
                Err(f) => {
                    self.pools.flush_party(p);
                    return Err((f.error, vec![p]));
                }
            }
        }
        // Aggregate and verify on this node's batcher, with every other session it
        // coordinates: culprits are named per session.
        let jobs: Vec<Job> = packages
            .into_iter()
            .zip(shares)
            .zip(own)
            .map(|((package, shares), own)| Job::Aggregate {
                key: Arc::clone(key),
                work: Box::new(S::aggregate_work(FrostAggregate {
                    package,
                    shares,
                    own,
                })),
            })
            .collect();
        let receivers = self
            .batcher
            .submit(Queue::Aggregate(record.scheme), jobs)
            .map_err(|e| (e, vec![]))?;
        Ok(collect_signatures(receivers).await)
    }
}

/// Waits for the aggregation jobs' results: the signatures (or failures) in order and the
/// CPU time they took.
async fn collect_signatures(
    receivers: Vec<tokio::sync::oneshot::Receiver<Done<Result<JobOutput, Error>>>>,
) -> (Vec<Result<Signature, Error>>, f64) {
    let mut outs = Vec::with_capacity(receivers.len());
    let mut cpu = 0.0;
    for rx in receivers {
        outs.push(match rx.await {
            Ok(Done {
                result,
                cpu_seconds,
                ..
            }) => {
                cpu += cpu_seconds;
                match result {
                    Ok(JobOutput::Signature {
                        signature,
                        verifying_key,
                        recovery_id,
                    }) => Ok(Signature {
                        signature,
                        verifying_key,
                        recovery_id,
                    }),
                    Ok(_) => Err(Error::Internal("another job's result for an aggregation")),
                    Err(e) => Err(e),
                }
            }
            Err(_) => Err(Error::Panicked {
                task: "aggregation",
            }),
        });
    }
    (outs, cpu)
}

fn link_error(peer: PartyId, e: LinkError) -> Error {
    Error::Peer {
        peer,
        problem: e.to_string(),
    }
}

impl Coordinator for Arc<Distributed> {
    fn mode(&self) -> &'static str {
        "distributed"
    }

    fn generate(&self, key: &NewKey) -> BoxFuture<'_, Result<(LoadedKey, Cost), Error>> {
        let key = key.clone();
        Box::pin(async move {
            let k = self.generate_inner(&key).await?;
            Ok((k, Cost::default()))
        })
    }

    fn import(
        &self,
        key: &NewKey,
        secret: Zeroizing<Vec<u8>>,
    ) -> BoxFuture<'_, Result<(LoadedKey, Cost), Error>> {
        let key = key.clone();
        Box::pin(async move {
            let k = self.import_inner(&key, secret).await?;
            Ok((k, Cost::default()))
        })
    }

    fn sign(
        &self,
        record: Arc<KeyRecord>,
        key: Arc<LoadedKey>,
        messages: Vec<Vec<u8>>,
        taproot: Taproot,
        client: &str,
    ) -> BoxFuture<'_, Result<(Vec<Signature>, Cost), Error>> {
        let client = client.to_owned();
        Box::pin(async move {
            match record.scheme {
                Scheme::Ed25519 => {
                    self.sign_merged::<Ed25519Suite>(record, key, messages, taproot, client)
                        .await
                }
                Scheme::Bip340 => {
                    self.sign_merged::<Bip340Suite>(record, key, messages, taproot, client)
                        .await
                }
                Scheme::EcdsaSecp256k1 => self.sign_ecdsa(record, key, messages, &client).await,
            }
        })
    }

    fn idempotency_home(&self, scope: &str, idempotency_key: &str) -> Option<u16> {
        let mut all = self.settings.peers.clone();
        all.push(self.settings.me);
        all.sort_unstable();
        let mut h = Sha256::new();
        h.update(b"tessera/idempotency-home\0");
        h.update((scope.len() as u64).to_be_bytes());
        h.update(scope.as_bytes());
        h.update(idempotency_key.as_bytes());
        let d = h.finalize();
        let pick = u64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]]);
        let home = all[(pick % all.len() as u64) as usize];
        (home != self.settings.me).then_some(home)
    }

    fn forward_sign(
        &self,
        home: u16,
        request: crate::requests::SignRequest,
        client: &str,
    ) -> BoxFuture<'_, Result<Signature, Error>> {
        let client = client.to_owned();
        Box::pin(async move {
            let [message] = <[Vec<u8>; 1]>::try_from(request.messages)
                .map_err(|_| Error::Internal("forwarding a batch"))?;
            if !self.available().contains(&home) {
                return Err(Error::Peer {
                    peer: home,
                    problem: "the node that owns this idempotency key is unreachable; retry later or without an idempotency key".into(),
                });
            }
            let req = PeerRequest::SignFor {
                key_id: request.key_id,
                message,
                taproot_merkle_root: request.taproot_merkle_root,
                idempotency_key: request.idempotency_key,
                client,
            };
            let start = Instant::now();
            let r = self.link.call(home, req, FORWARD_DEADLINE).await;
            self.observer
                .peer_call(home, "sign_for", start.elapsed(), r.is_ok());
            self.record(home, r.is_ok());
            match r {
                Ok(PeerReply::Signed(s)) => Ok(s),
                Ok(PeerReply::Failed(f)) => Err(Error::Forwarded {
                    peer: home,
                    message: f.message,
                    kind: f.kind,
                }),
                Ok(_) => Err(unexpected(home)),
                Err(e) => Err(link_error(home, e)),
            }
        })
    }

    fn settle(&self, key_id: &str, stored: bool) -> BoxFuture<'_, ()> {
        let key_id = key_id.to_owned();
        Box::pin(async move { self.settle_key(&key_id, stored).await })
    }

    fn prepare(&self, key_id: &str, key: &Arc<LoadedKey>) {
        self.party.cache(key_id, Arc::clone(key));
        match key.as_ref() {
            LoadedKey::EcdsaParty(k) => {
                // Presignatures ahead for each signer set the quorum rotation picks.
                let t = usize::from(k.threshold());
                let up = self.available();
                for k in 0..up.len().max(1) {
                    let mut rotated = up.clone();
                    if !rotated.is_empty() {
                        rotated.rotate_left(k);
                    }
                    if rotated.len() + 1 < t {
                        break;
                    }
                    let mut signers = vec![self.settings.me];
                    signers.extend(rotated.into_iter().take(t.saturating_sub(1)));
                    signers.sort_unstable();
                    self.refill_presignatures(key_id, &signers);
                }
            }
            LoadedKey::Ed25519Party(_) => self.refill_all::<Ed25519Suite>(key_id),
            LoadedKey::Bip340Party(_) => self.refill_all::<Bip340Suite>(key_id),
            _ => {}
        }
    }
}

#[cfg(test)]
#[path = "distributed_tests.rs"]
mod tests;
