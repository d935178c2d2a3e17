//! One node's party in the distributed deployment: it answers its peers' [`PeerRequest`]s with
//! the sans-IO protocol code of `threshold`, holding only its own share of each key (sealed
//! under its own KEK in its own store), its DKG session state and its unused nonces (memory
//! only, single use, zeroized on drop, forgotten after [`NONCE_TTL`]).
//!
//! Every message it receives is checked by the protocol code (proofs of knowledge, shares
//! against commitments, confirmations, commitments against its own nonces); failures name the
//! culprit parties.

use std::any::Any;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use accel_api::Accelerator;
use rand_core::{OsRng, RngCore};
use threshold::dkg::{self, Confirmation, Round1Package, Round1Secret, Round2Package};
use threshold::dkg::{Round2Secret, Round3Secret};
use threshold::round1::{SigningCommitments, SigningNonces, commit_batch};
use threshold::round2::SignatureShare;
use threshold::{Bip340Suite, Ed25519Suite, Identifier, PartyKey, Suite};

use crate::batcher::Done;
use crate::coordinator::JobBatcher;
use crate::error::joined;
use crate::jobs::{AggregateWork, FrostAggregate, Job, JobOutput, ShareWork};
use crate::keys::LoadedKey;
use crate::peer::{NewKey, PartyId, PeerLink, PeerReply, PeerRequest, RemoteFailure, SessionId};
use crate::ports::{KeyOrigin, KeyRecord};
use crate::{Error, Queue, Scheme, Sealer, Store};

#[path = "party_creation.rs"]
mod creation;
#[path = "party_ecdsa.rs"]
pub(crate) mod ecdsa;

/// How long unused nonces are kept before they are destroyed.
pub const NONCE_TTL: Duration = Duration::from_secs(60);
/// How long an unfinished DKG session is kept before its state is destroyed.
pub const DKG_TTL: Duration = Duration::from_secs(120);
/// Most nonce pairs one `Commit` request may ask for.
pub const MAX_COMMIT: u32 = 4096;
/// Most unused nonce pairs a party holds at once (over all keys and peers); beyond it
/// `Commit` is refused until some are used or expire.
pub const MAX_HELD_NONCES: usize = 1 << 20;

/// A test-only fault a party can be started with (`TESSERA_TEST_FAULT`), so that the tests
/// can show the other nodes detect it and name this party.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    #[default]
    None,
    /// Send signature shares that do not verify.
    InvalidShares,
    /// Abort the process after coordinating a key generation, before storing this node's
    /// share (the other nodes hold theirs pending).
    DieBeforeStoringKey,
}

/// Test-only instrumentation of a party (both off in production).
#[derive(Debug, Default)]
pub struct TestHooks {
    /// A fault to misbehave with.
    pub fault: Fault,
    /// Append the hiding commitment (hex) of every nonce pair this party consumes to this
    /// file, one per line, so fault tests can check that no nonce is ever used twice.
    pub nonce_log: Option<std::path::PathBuf>,
}

/// The FROST suites a distributed node runs, tied to their [`LoadedKey`] variant.
pub(crate) trait FrostScheme: Suite {
    fn party_key(k: &LoadedKey) -> Option<&PartyKey<Self>>;
    fn wrap(k: PartyKey<Self>) -> LoadedKey;
    fn hold(n: SigningNonces<Self>) -> HeldNonces;
    fn unhold(n: HeldNonces) -> Option<SigningNonces<Self>>;
    fn held_commitments(n: &HeldNonces) -> Option<SigningCommitments<Self>>;
    fn aggregate_work(w: FrostAggregate<Self>) -> AggregateWork;
    fn pooled(c: SigningCommitments<Self>) -> PooledCommitments;
    fn unpooled(c: &PooledCommitments) -> Option<SigningCommitments<Self>>;
}

impl FrostScheme for Ed25519Suite {
    fn party_key(k: &LoadedKey) -> Option<&PartyKey<Self>> {
        match k {
            LoadedKey::Ed25519Party(p) => Some(p),
            _ => None,
        }
    }
    fn wrap(k: PartyKey<Self>) -> LoadedKey {
        LoadedKey::Ed25519Party(k)
    }
    fn hold(n: SigningNonces<Self>) -> HeldNonces {
        HeldNonces::Ed25519(n)
    }
    fn unhold(n: HeldNonces) -> Option<SigningNonces<Self>> {
        match n {
            HeldNonces::Ed25519(n) => Some(n),
            HeldNonces::Bip340(_) => None,
        }
    }
    fn held_commitments(n: &HeldNonces) -> Option<SigningCommitments<Self>> {
        match n {
            HeldNonces::Ed25519(n) => Some(*n.commitments()),
            HeldNonces::Bip340(_) => None,
        }
    }
    fn aggregate_work(w: FrostAggregate<Self>) -> AggregateWork {
        AggregateWork::Ed25519(w)
    }
    fn pooled(c: SigningCommitments<Self>) -> PooledCommitments {
        PooledCommitments::Ed25519(c)
    }
    fn unpooled(c: &PooledCommitments) -> Option<SigningCommitments<Self>> {
        match c {
            PooledCommitments::Ed25519(c) => Some(*c),
            PooledCommitments::Bip340(_) => None,
        }
    }
}

impl FrostScheme for Bip340Suite {
    fn party_key(k: &LoadedKey) -> Option<&PartyKey<Self>> {
        match k {
            LoadedKey::Bip340Party(p) => Some(p),
            _ => None,
        }
    }
    fn wrap(k: PartyKey<Self>) -> LoadedKey {
        LoadedKey::Bip340Party(k)
    }
    fn hold(n: SigningNonces<Self>) -> HeldNonces {
        HeldNonces::Bip340(n)
    }
    fn unhold(n: HeldNonces) -> Option<SigningNonces<Self>> {
        match n {
            HeldNonces::Bip340(n) => Some(n),
            HeldNonces::Ed25519(_) => None,
        }
    }
    fn held_commitments(n: &HeldNonces) -> Option<SigningCommitments<Self>> {
        match n {
            HeldNonces::Bip340(n) => Some(*n.commitments()),
            HeldNonces::Ed25519(_) => None,
        }
    }
    fn aggregate_work(w: FrostAggregate<Self>) -> AggregateWork {
        AggregateWork::Bip340(w)
    }
    fn pooled(c: SigningCommitments<Self>) -> PooledCommitments {
        PooledCommitments::Bip340(c)
    }
    fn unpooled(c: &PooledCommitments) -> Option<SigningCommitments<Self>> {
        match c {
            PooledCommitments::Bip340(c) => Some(*c),
            PooledCommitments::Ed25519(_) => None,
        }
    }
}

/// Where one DKG session stands at this party.
enum Stage<S: Suite> {
    Round1(Round1Secret<S>),
    Round2(Round2Secret<S>),
    Round3(Round3Secret<S>),
}

struct DkgSlot {
    key: NewKey,
    started: Instant,
    /// A `Stage<S>` of the key's suite, or a threshold-ECDSA [`dkls23::dkg::PartyDkg`].
    stage: Box<dyn Any + Send>,
    /// The step whose delivered messages the next `DkgConfirm` consumes.
    step: u8,
    /// Messages delivered by the other parties, by (sender, step).
    received: BTreeMap<(PartyId, u8), zeroize::Zeroizing<Vec<u8>>>,
}

/// A signer's public commitments for one session, validated when they reached the
/// coordinator's pool.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PooledCommitments {
    Ed25519(SigningCommitments<Ed25519Suite>),
    Bip340(SigningCommitments<Bip340Suite>),
}

/// A signer's single-use nonces for one session, of the key's suite.
pub(crate) enum HeldNonces {
    Ed25519(SigningNonces<Ed25519Suite>),
    Bip340(SigningNonces<Bip340Suite>),
}

struct Nonces {
    key_id: String,
    made: Instant,
    nonces: HeldNonces,
}

/// This node's party: answers peer requests. See the module documentation.
pub struct Party {
    me: PartyId,
    /// The cluster's other nodes.
    peers: Vec<PartyId>,
    accel: Arc<dyn Accelerator>,
    store: Arc<dyn Store>,
    sealer: Arc<dyn Sealer>,
    link: Arc<dyn PeerLink>,
    batcher: Arc<JobBatcher>,
    deadline: Duration,
    fault: Fault,
    nonce_log: Option<Mutex<std::fs::File>>,
    keys: Mutex<HashMap<String, Arc<LoadedKey>>>,
    /// Who created each key (for the co-signing policy check), read from the store once.
    owners: Mutex<HashMap<String, String>>,
    /// Authentication mode and this node's registered clients.
    auth: crate::auth::Auth,
    dkgs: Mutex<HashMap<SessionId, DkgSlot>>,
    nonces: Mutex<HashMap<SessionId, Nonces>>,
    /// Threshold-ECDSA presigning sessions and their single-use presignatures.
    presigns: Mutex<HashMap<SessionId, ecdsa::PresignSlot>>,
    /// Presigning messages delivered by the other signers, by (session, round).
    inbox: Mutex<HashMap<(SessionId, u8), ecdsa::Delivered>>,
    /// Pairwise base-OT refreshes this party answers, by session.
    pair_setups: Mutex<HashMap<SessionId, ecdsa::PairSlot>>,
    /// The (key, peer) pairs whose refresh this party is running.
    refreshing: Mutex<std::collections::HashSet<(String, PartyId)>>,
    /// Pairwise base-OT refreshes completed at this party (either end).
    pair_refreshes: std::sync::atomic::AtomicU64,
    finished: Mutex<HashMap<SessionId, LoadedKey>>,
    /// Keys the local coordinator is creating (not settled yet), with when it started.
    creating: Mutex<HashMap<String, Instant>>,
    /// Whether a pending share may be stored (see [`Party::settle_pending`]).
    unsettled: std::sync::atomic::AtomicBool,
    /// The node's use cases, for requests forwarded to this node (set once at start-up).
    app: Mutex<Option<std::sync::Weak<crate::App>>>,
}

impl std::fmt::Debug for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Party")
            .field("me", &self.me)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// A failure to report to the requesting node.
fn failed(e: &Error) -> PeerReply {
    let culprits = culprits_of(e);
    PeerReply::Failed(RemoteFailure {
        message: e.to_string(),
        culprits,
        kind: crate::peer::RemoteKind::of(e),
    })
}

/// The parties a failed check blamed.
pub(crate) fn culprits_of(e: &Error) -> Vec<PartyId> {
    match e {
        Error::Protocol(threshold::Error::Culprits(c)) => c.clone(),
        Error::Ecdsa(e) => ecdsa::culprit(e).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn session_id() -> SessionId {
    let mut s = [0u8; 16];
    OsRng.fill_bytes(&mut s);
    s
}

fn ident(id: PartyId) -> Result<Identifier, Error> {
    Ok(Identifier::new(id)?)
}

impl Party {
    /// Party `me` of the cluster, with its own store and sealer; `link` reaches the others,
    /// `peers` (each call waits at most `deadline`); its signature shares run on `batcher`, batched
    /// with every other session this node takes part in.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        me: PartyId,
        peers: Vec<PartyId>,
        accel: Arc<dyn Accelerator>,
        store: Arc<dyn Store>,
        sealer: Arc<dyn Sealer>,
        link: Arc<dyn PeerLink>,
        batcher: Arc<JobBatcher>,
        deadline: Duration,
        hooks: TestHooks,
        auth: crate::auth::Auth,
    ) -> Result<Self, Error> {
        let nonce_log = match hooks.nonce_log {
            None => None,
            Some(path) => Some(Mutex::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .map_err(|source| Error::Io {
                        context: format!("opening the nonce log {}", path.display()),
                        source,
                    })?,
            )),
        };
        Ok(Self {
            me,
            peers,
            accel,
            store,
            sealer,
            link,
            batcher,
            deadline,
            fault: hooks.fault,
            nonce_log,
            keys: Mutex::default(),
            owners: Mutex::default(),
            auth,
            dkgs: Mutex::default(),
            nonces: Mutex::default(),
            presigns: Mutex::default(),
            inbox: Mutex::default(),
            pair_setups: Mutex::default(),
            refreshing: Mutex::default(),
            pair_refreshes: std::sync::atomic::AtomicU64::new(0),
            finished: Mutex::default(),
            creating: Mutex::default(),
            unsettled: std::sync::atomic::AtomicBool::new(true),
            app: Mutex::default(),
        })
    }

    /// Lets forwarded requests reach this node's use cases.
    pub(crate) fn attach(&self, app: &Arc<crate::App>) {
        *lock(&self.app) = Some(Arc::downgrade(app));
    }

    /// This party's id.
    pub fn id(&self) -> PartyId {
        self.me
    }

    /// The node's accelerator port.
    pub(crate) fn accel(&self) -> &dyn Accelerator {
        self.accel.as_ref()
    }

    /// The test-only fault this party was started with.
    pub(crate) fn fault(&self) -> Fault {
        self.fault
    }

    /// Pairwise base-OT refreshes of threshold-ECDSA keys completed at this party, as either
    /// end.
    pub fn pair_refreshes(&self) -> u64 {
        self.pair_refreshes
            .load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Unused nonce pairs held now.
    pub fn nonces_held(&self) -> usize {
        lock(&self.nonces).len()
    }

    /// Answers one request from party `from` (authenticated by the transport).
    pub async fn handle(self: &Arc<Self>, from: PartyId, request: PeerRequest) -> PeerReply {
        let r = match request {
            PeerRequest::Ping => Ok(PeerReply::Done),
            PeerRequest::DkgStart {
                session,
                key,
                dkg_id,
            } => self.dkg_start(session, key, dkg_id).await,
            PeerRequest::DkgShares { session, round1 } => self.dkg_shares(session, round1).await,
            PeerRequest::DkgDeliver {
                session,
                step,
                share,
            } => self.dkg_deliver(from, session, step, share),
            PeerRequest::DkgConfirm { session } => self.dkg_confirm(session).await,
            PeerRequest::DkgFinish {
                session,
                confirmations,
            } => self.dkg_finish(from, session, confirmations).await,
            PeerRequest::Abort { sessions } => {
                self.abort(&sessions);
                Ok(PeerReply::Done)
            }
            PeerRequest::Commit { key_id, count } => self.commit(key_id, count).await,
            PeerRequest::SignShares {
                key_id,
                items,
                client,
            } => self.sign_shares(key_id, items, &client).await,
            PeerRequest::PresignStart {
                key_id,
                signers,
                sessions,
            } => self.presign_start(from, key_id, signers, sessions).await,
            PeerRequest::PresignDeliver {
                key_id,
                round,
                items,
            } => self.presign_deliver(from, &key_id, round, items),
            PeerRequest::PresignRound2 { key_id, sessions } => {
                self.presign_round2(key_id, sessions).await
            }
            PeerRequest::PresignFinish { key_id, sessions } => {
                self.presign_finish(key_id, sessions).await
            }
            PeerRequest::EcdsaSign {
                key_id,
                items,
                client,
            } => self.ecdsa_sign(from, key_id, items, &client).await,
            PeerRequest::PairRefresh {
                key_id,
                session,
                round,
                flows,
            } => self.pair_refresh(from, key_id, session, round, flows).await,
            PeerRequest::ImportShare { key, share } => self.import_share(from, key, share).await,
            PeerRequest::KeySettled { key_id, committed } => {
                self.key_settled(from, key_id, committed).await
            }
            PeerRequest::CreationState { key_id } => self.creation_state(key_id).await,
            PeerRequest::RefreshPairs { key_id, peers } => {
                self.refresh_pairs_now(&key_id, &peers).await
            }
            PeerRequest::SignFor {
                key_id,
                message,
                taproot_merkle_root,
                idempotency_key,
                client,
            } => {
                let app = lock(&self.app).as_ref().and_then(std::sync::Weak::upgrade);
                match app {
                    None => Err(Error::ShuttingDown),
                    Some(app) => app
                        .sign_forwarded(
                            crate::requests::SignRequest {
                                key_id,
                                messages: vec![message],
                                taproot_merkle_root,
                                idempotency_key,
                            },
                            client,
                        )
                        .await
                        .map(PeerReply::Signed),
                }
            }
        };
        r.unwrap_or_else(|e| {
            tracing::debug!(from, error = %e.chain(), "peer request failed");
            failed(&e)
        })
    }

    /// Takes the key this party finished in DKG `session` for the local coordinator.
    pub(crate) fn take_finished(&self, session: &SessionId) -> Option<LoadedKey> {
        lock(&self.finished).remove(session)
    }

    /// Destroys the secrets of `sessions` (DKG state, unused nonces and presigning state).
    pub fn abort(&self, sessions: &[SessionId]) {
        let mut d = lock(&self.dkgs);
        let mut n = lock(&self.nonces);
        let mut p = lock(&self.presigns);
        let mut i = lock(&self.inbox);
        for s in sessions {
            d.remove(s);
            n.remove(s);
            p.remove(s);
            i.remove(&(*s, 1));
            i.remove(&(*s, 2));
        }
    }

    fn sweep(&self) {
        let now = Instant::now();
        lock(&self.nonces).retain(|_, v| now.duration_since(v.made) < NONCE_TTL);
        lock(&self.dkgs).retain(|_, v| now.duration_since(v.started) < DKG_TTL);
        lock(&self.presigns).retain(|_, v| now.duration_since(v.made) < ecdsa::PRESIGN_TTL);
        lock(&self.inbox).retain(|_, v| now.duration_since(v.since) < ecdsa::PRESIGN_TTL);
        lock(&self.pair_setups).retain(|_, v| now.duration_since(v.started) < DKG_TTL);
    }

    /// Curve work that a signature may be waiting on (round-1 commitments), at normal
    /// priority.
    async fn blocking<T: Send + 'static>(
        &self,
        task: &'static str,
        f: impl FnOnce(&dyn Accelerator) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let accel = Arc::clone(&self.accel);
        joined(
            task,
            tokio::task::spawn_blocking(move || f(accel.as_ref())).await,
        )
    }

    /// Expensive curve work (DKG rounds, key import, presigning, base-OT refreshes) on the
    /// lower-priority background threads, so that it yields the CPU to signing.
    pub(crate) async fn background<T: Send + 'static>(
        &self,
        task: &'static str,
        f: impl FnOnce(&dyn Accelerator) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let accel = Arc::clone(&self.accel);
        crate::background::run(task, move || f(accel.as_ref())).await
    }

    async fn dkg_start(
        self: &Arc<Self>,
        session: SessionId,
        key: NewKey,
        dkg_id: [u8; 32],
    ) -> Result<PeerReply, Error> {
        self.sweep();
        if lock(&self.dkgs).contains_key(&session) {
            return Err(Error::Internal("DKG session id reused"));
        }
        if key.key_id.is_empty() || key.key_id.len() > 64 {
            return Err(Error::invalid("key_id", "must be 1 to 64 bytes"));
        }
        let params = (ident(self.me)?, key.threshold, key.parties, dkg_id);
        let (stage, package): (Box<dyn Any + Send>, Vec<u8>) = match key.scheme {
            Scheme::Ed25519 => self.part1::<Ed25519Suite>(params).await?,
            Scheme::Bip340 => self.part1::<Bip340Suite>(params).await?,
            Scheme::EcdsaSecp256k1 => self.ecdsa_part1(params).await?,
        };
        lock(&self.dkgs).insert(
            session,
            DkgSlot {
                key,
                started: Instant::now(),
                stage,
                step: 1,
                received: BTreeMap::new(),
            },
        );
        Ok(PeerReply::Round1(package))
    }

    async fn part1<S: FrostScheme>(
        &self,
        params: dkg::Part1Params,
    ) -> Result<(Box<dyn Any + Send>, Vec<u8>), Error> {
        self.background("DKG round 1", move |accel| {
            let (secret, package) = dkg::part1_batch::<S>(accel, &[params], &mut OsRng)?
                .pop()
                .ok_or(Error::Internal("DKG round 1 returned nothing"))?;
            let stage: Box<dyn Any + Send> = Box::new(Stage::<S>::Round1(secret));
            Ok((stage, package.to_bytes()))
        })
        .await
    }

    /// Takes the stage of `session` out of its slot (put back by the caller).
    fn take_stage(&self, session: &SessionId) -> Result<(NewKey, Box<dyn Any + Send>), Error> {
        let mut d = lock(&self.dkgs);
        let slot = d
            .get_mut(session)
            .ok_or(Error::Internal("unknown or expired DKG session"))?;
        let stage = std::mem::replace(&mut slot.stage, Box::new(()));
        Ok((slot.key.clone(), stage))
    }

    fn put_stage(&self, session: &SessionId, stage: Box<dyn Any + Send>) {
        if let Some(slot) = lock(&self.dkgs).get_mut(session) {
            slot.stage = stage;
        }
    }

    async fn dkg_shares(
        self: &Arc<Self>,
        session: SessionId,
        round1: Vec<(PartyId, Vec<u8>)>,
    ) -> Result<PeerReply, Error> {
        let (key, stage) = self.take_stage(&session)?;
        let out = match key.scheme {
            Scheme::Ed25519 => self.part2::<Ed25519Suite>(stage, round1).await,
            Scheme::Bip340 => self.part2::<Bip340Suite>(stage, round1).await,
            Scheme::EcdsaSecp256k1 => self.ecdsa_part2(stage, round1).await,
        };
        let (stage, deliveries) = match out {
            Ok(v) => v,
            Err(e) => {
                self.abort(&[session]);
                return Err(e);
            }
        };
        self.put_stage(&session, stage);
        self.deliver(session, 1, deliveries).await?;
        Ok(PeerReply::Done)
    }

    /// Delivers one DKG step's direct messages to the other parties and waits for every
    /// acknowledgement.
    pub(crate) async fn deliver(
        &self,
        session: SessionId,
        step: u8,
        deliveries: Vec<(PartyId, Vec<u8>)>,
    ) -> Result<(), Error> {
        let requests = deliveries
            .into_iter()
            .map(|(to, share)| {
                let r = PeerRequest::DkgDeliver {
                    session,
                    step,
                    share: zeroize::Zeroizing::new(share),
                };
                (to, r)
            })
            .collect();
        self.send_all(requests, "a share delivery").await
    }

    /// Sends each request to its party at once, directly over the peer link, and waits until
    /// every one is acknowledged (`Done`); the first failure names its party.
    pub(crate) async fn send_all(
        &self,
        requests: Vec<(PartyId, PeerRequest)>,
        what: &'static str,
    ) -> Result<(), Error> {
        let calls = requests.into_iter().map(|(to, request)| {
            let link = Arc::clone(&self.link);
            let deadline = self.deadline;
            async move { (to, link.call(to, request, deadline).await) }
        });
        for (to, r) in join_all(calls).await? {
            let problem = match r {
                Ok(PeerReply::Done) => continue,
                Ok(PeerReply::Failed(f)) => f.message,
                Ok(_) => format!("unexpected reply to {what}"),
                Err(e) => e.to_string(),
            };
            return Err(Error::Peer { peer: to, problem });
        }
        Ok(())
    }

    #[allow(clippy::type_complexity)]
    async fn part2<S: FrostScheme>(
        &self,
        stage: Box<dyn Any + Send>,
        round1: Vec<(PartyId, Vec<u8>)>,
    ) -> Result<(Box<dyn Any + Send>, Vec<(PartyId, Vec<u8>)>), Error> {
        let me = self.me;
        self.background("DKG round 2", move |accel| {
            let Ok(stage) = stage.downcast::<Stage<S>>() else {
                return Err(Error::Internal("DKG stage of another suite"));
            };
            let Stage::Round1(secret) = *stage else {
                return Err(Error::Internal("DKG round 2 out of order"));
            };
            let mut others = BTreeMap::new();
            for (id, bytes) in round1 {
                if id == me {
                    continue;
                }
                let pkg = Round1Package::<S>::from_bytes(&bytes)
                    .map_err(|_| Error::Protocol(threshold::Error::Culprits(vec![id])))?;
                others.insert(ident(id)?, pkg);
            }
            let (state, out) = dkg::part2_batch::<S>(accel, vec![(secret, others)])
                .pop()
                .ok_or(Error::Internal("DKG round 2 returned nothing"))??;
            let deliveries = out
                .into_iter()
                .map(|(to, pkg)| (to.get(), pkg.to_bytes().to_vec()))
                .collect();
            let stage: Box<dyn Any + Send> = Box::new(Stage::<S>::Round2(state));
            Ok((stage, deliveries))
        })
        .await
    }

    fn dkg_deliver(
        &self,
        from: PartyId,
        session: SessionId,
        step: u8,
        share: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<PeerReply, Error> {
        let mut d = lock(&self.dkgs);
        let slot = d.get_mut(&session).ok_or(Error::Internal(
            "share for an unknown or expired DKG session",
        ))?;
        if from == self.me || from == 0 || from > slot.key.parties {
            return Err(Error::Internal("share from a party outside the DKG"));
        }
        if step < slot.step || step > slot.step + 1 {
            return Err(Error::Internal("DKG message for another step"));
        }
        if slot.received.insert((from, step), share).is_some() {
            return Err(Error::Protocol(threshold::Error::Culprits(vec![from])));
        }
        Ok(PeerReply::Done)
    }

    async fn dkg_confirm(&self, session: SessionId) -> Result<PeerReply, Error> {
        let (key, stage) = self.take_stage(&session)?;
        let (step, received) = {
            let mut d = lock(&self.dkgs);
            match d.get_mut(&session) {
                Some(slot) => {
                    let step = slot.step;
                    let (now, later): (BTreeMap<_, _>, BTreeMap<_, _>) =
                        std::mem::take(&mut slot.received)
                            .into_iter()
                            .partition(|((_, s), _)| *s == step);
                    slot.received = later;
                    slot.step += 1;
                    (
                        step,
                        now.into_iter()
                            .map(|((p, _), m)| (p, m))
                            .collect::<BTreeMap<_, _>>(),
                    )
                }
                None => return Err(Error::Internal("unknown or expired DKG session")),
            }
        };
        let out = match key.scheme {
            Scheme::Ed25519 => self
                .part3::<Ed25519Suite>(stage, received)
                .await
                .map(|(s, c)| (s, PeerReply::Confirmation(c.0), Vec::new())),
            Scheme::Bip340 => self
                .part3::<Bip340Suite>(stage, received)
                .await
                .map(|(s, c)| (s, PeerReply::Confirmation(c.0), Vec::new())),
            Scheme::EcdsaSecp256k1 => self.ecdsa_step(stage, received).await,
        };
        match out {
            Ok((stage, reply, deliveries)) => {
                self.put_stage(&session, stage);
                if !deliveries.is_empty()
                    && let Err(e) = self.deliver(session, step + 1, deliveries).await
                {
                    self.abort(&[session]);
                    return Err(e);
                }
                Ok(reply)
            }
            Err(e) => {
                self.abort(&[session]);
                Err(e)
            }
        }
    }

    async fn part3<S: FrostScheme>(
        &self,
        stage: Box<dyn Any + Send>,
        received: BTreeMap<PartyId, zeroize::Zeroizing<Vec<u8>>>,
    ) -> Result<(Box<dyn Any + Send>, Confirmation), Error> {
        self.background("DKG round 3", move |accel| {
            let Ok(stage) = stage.downcast::<Stage<S>>() else {
                return Err(Error::Internal("DKG stage of another suite"));
            };
            let Stage::Round2(state) = *stage else {
                return Err(Error::Internal("DKG round 3 out of order"));
            };
            let mut shares = BTreeMap::new();
            for (id, bytes) in &received {
                let pkg = Round2Package::<S>::from_bytes(bytes)
                    .map_err(|_| Error::Protocol(threshold::Error::Culprits(vec![*id])))?;
                shares.insert(ident(*id)?, pkg);
            }
            let (state, c) = dkg::part3_batch::<S>(accel, vec![(state, shares)])
                .pop()
                .ok_or(Error::Internal("DKG round 3 returned nothing"))??;
            let stage: Box<dyn Any + Send> = Box::new(Stage::<S>::Round3(state));
            Ok((stage, c))
        })
        .await
    }

    async fn dkg_finish(
        &self,
        from: PartyId,
        session: SessionId,
        confirmations: Vec<(PartyId, [u8; 32])>,
    ) -> Result<PeerReply, Error> {
        let (key, stage) = self.take_stage(&session)?;
        lock(&self.dkgs).remove(&session);
        let loaded = match key.scheme {
            Scheme::Ed25519 => finish::<Ed25519Suite>(stage, &confirmations)?,
            Scheme::Bip340 => finish::<Bip340Suite>(stage, &confirmations)?,
            Scheme::EcdsaSecp256k1 => ecdsa::finish(stage, &confirmations)?,
        };
        let public_key = loaded.public_key();
        if from == self.me {
            // The local coordinator stores this node's share itself, with the request's
            // idempotency record.
            lock(&self.finished).insert(session, loaded);
            return Ok(PeerReply::Finished(public_key));
        }
        self.store_pending(key, loaded, KeyOrigin::Dkg, from)
            .await?;
        Ok(PeerReply::Finished(public_key))
    }

    /// `ImportKey` at a co-signing node: checks that `share` is this party's part of a key of
    /// the announced scheme and shape, then seals and stores it, pending until `from` (the
    /// importing node) settles it.
    async fn import_share(
        &self,
        from: PartyId,
        key: NewKey,
        share: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<PeerReply, Error> {
        if key.key_id.is_empty() || key.key_id.len() > 64 {
            return Err(Error::invalid("key_id", "must be 1 to 64 bytes"));
        }
        let loaded = LoadedKey::from_bytes(key.scheme, &share)?;
        let (id, t, n) = match &loaded {
            LoadedKey::Ed25519Party(k) => (
                k.share().identifier().get(),
                k.share().threshold(),
                k.public_package().parties(),
            ),
            LoadedKey::Bip340Party(k) => (
                k.share().identifier().get(),
                k.share().threshold(),
                k.public_package().parties(),
            ),
            LoadedKey::EcdsaParty(k) => {
                let s = k.share();
                (s.id(), s.threshold(), s.parties())
            }
            _ => return Err(Error::invalid("share", "not one party's share")),
        };
        if id != self.me || t != key.threshold || n != key.parties {
            return Err(Error::invalid(
                "share",
                "not this party's share of a key of the announced shape",
            ));
        }
        let public_key = loaded.public_key();
        self.store_pending(key, loaded, KeyOrigin::Import, from)
            .await?;
        Ok(PeerReply::Finished(public_key))
    }

    /// The sealed, authenticated record of this node's share `loaded` of `key`.
    fn record_of(&self, key: &NewKey, loaded: &LoadedKey) -> Result<KeyRecord, Error> {
        Ok(KeyRecord {
            key_id: key.key_id.clone(),
            scheme: key.scheme,
            threshold: u32::from(key.threshold),
            parties: u32::from(key.parties),
            public_key: loaded.public_key(),
            label: key.label.clone(),
            created_at_ms: key.created_at_ms,
            owner: key.owner.clone(),
            sealed: self.sealer.seal(&key.key_id, &loaded.to_bytes())?,
            mac: Vec::new(),
        }
        .authenticate(self.sealer.as_ref()))
    }

    /// Splits `secret` for `key` (trusted dealer, here): this node's own part and every other
    /// party's encoded share.
    #[allow(clippy::type_complexity)]
    pub(crate) async fn deal(
        &self,
        key: &NewKey,
        secret: zeroize::Zeroizing<Vec<u8>>,
    ) -> Result<(LoadedKey, Vec<(PartyId, zeroize::Zeroizing<Vec<u8>>)>), Error> {
        let (scheme, t, n, me) = (key.scheme, key.threshold, key.parties, self.me);
        self.background("key import", move |accel| {
            let all = LoadedKey::import(accel, scheme, &secret, t, n)?;
            let mut own = None;
            let mut others = Vec::with_capacity(usize::from(n));
            for p in 1..=n {
                let part = all.party(p)?;
                if p == me {
                    own = Some(part);
                } else {
                    others.push((p, part.to_bytes()));
                }
            }
            Ok((
                own.ok_or(Error::Internal("this node is not a party of the import"))?,
                others,
            ))
        })
        .await
    }

    /// This node's share of `key_id`, from the cache or the store (a pending share is
    /// settled with its creator first).
    pub(crate) async fn load(&self, key_id: &str) -> Result<Arc<LoadedKey>, Error> {
        if let Some(k) = lock(&self.keys).get(key_id) {
            return Ok(Arc::clone(k));
        }
        let mut stored = self.load_stored(key_id).await?;
        if stored.is_none() && self.settle_if_pending(key_id).await? {
            stored = self.load_stored(key_id).await?;
        }
        let key = Arc::new(stored.ok_or_else(|| Error::KeyNotFound {
            key_id: key_id.to_owned(),
        })?);
        lock(&self.keys).insert(key_id.to_owned(), Arc::clone(&key));
        Ok(key)
    }

    /// This node's stored share of `key_id`, opened; `None` when it is not stored.
    async fn load_stored(&self, key_id: &str) -> Result<Option<LoadedKey>, Error> {
        let (store, sealer, id) = (
            Arc::clone(&self.store),
            Arc::clone(&self.sealer),
            key_id.to_owned(),
        );
        joined(
            "key load",
            tokio::task::spawn_blocking(move || {
                let Some(rec) = store.get_key(&id)? else {
                    return Ok(None);
                };
                rec.verify(sealer.as_ref())?;
                let plain = sealer.open(&id, &rec.sealed)?;
                LoadedKey::from_bytes(rec.scheme, &plain).map(Some)
            })
            .await,
        )
    }

    /// Forgets a cached key (the coordinator caches its own share of an import while the
    /// pairs refresh, before it is stored).
    pub(crate) fn uncache(&self, key_id: &str) {
        lock(&self.keys).remove(key_id);
    }

    /// Test-only: forgets every cached key, as a restart would.
    #[cfg(test)]
    pub(crate) fn forget_cached_keys(&self) {
        lock(&self.keys).clear();
    }

    /// Caches a key this node's coordinator stored.
    pub(crate) fn cache(&self, key_id: &str, key: Arc<LoadedKey>) {
        lock(&self.keys).insert(key_id.to_owned(), key);
    }

    /// Test-only: records the hiding commitment of each consumed nonce pair.
    fn log_nonces(&self, log: &Mutex<std::fs::File>, taken: &[Option<HeldNonces>]) {
        use std::io::Write;
        let mut text = String::new();
        for h in taken.iter().flatten() {
            let hiding = match h {
                HeldNonces::Ed25519(n) => n.commitments().hiding_bytes(),
                HeldNonces::Bip340(n) => n.commitments().hiding_bytes(),
            };
            text.push_str(&hex::encode(hiding));
            text.push('\n');
        }
        if let Err(e) = lock(log).write_all(text.as_bytes()) {
            tracing::warn!(error = %e, "nonce log not written");
        }
    }

    async fn commit(&self, key_id: String, count: u32) -> Result<PeerReply, Error> {
        if count == 0 || count > MAX_COMMIT {
            return Err(Error::invalid("count", "must be 1 to 4096"));
        }
        self.sweep();
        let held = self.nonces_held();
        if held + count as usize > MAX_HELD_NONCES {
            return Err(Error::Overloaded {
                depth: held,
                max_queue: MAX_HELD_NONCES,
                retry_after: Duration::from_secs(1),
            });
        }
        let key = self.load(&key_id).await?;
        let made = match key.scheme() {
            Scheme::Ed25519 => self.commit_as::<Ed25519Suite>(key, count).await?,
            Scheme::Bip340 => self.commit_as::<Bip340Suite>(key, count).await?,
            Scheme::EcdsaSecp256k1 => {
                return Err(Error::NotInThisMode(
                    "threshold ECDSA keys are not yet available in distributed mode",
                ));
            }
        };
        let now = Instant::now();
        let mut out = Vec::with_capacity(made.len());
        let mut held = lock(&self.nonces);
        for (nonces, commitments) in made {
            let sid = session_id();
            held.insert(
                sid,
                Nonces {
                    key_id: key_id.clone(),
                    made: now,
                    nonces,
                },
            );
            out.push((sid, commitments));
        }
        Ok(PeerReply::Commitments(out))
    }

    async fn commit_as<S: FrostScheme>(
        &self,
        key: Arc<LoadedKey>,
        count: u32,
    ) -> Result<Vec<(HeldNonces, Vec<u8>)>, Error> {
        self.blocking("signing round 1", move |accel| {
            let pk = S::party_key(&key).ok_or(Error::NotInThisMode(
                "this key is not a distributed key (it was made in embedded mode)",
            ))?;
            let shares = vec![pk.share(); count as usize];
            Ok(commit_batch::<S>(accel, &shares, &mut OsRng)?
                .into_iter()
                .map(|(n, c)| (S::hold(n), c.to_bytes()))
                .collect())
        })
        .await
    }

    async fn sign_shares(
        &self,
        key_id: String,
        items: Vec<(SessionId, Vec<u8>)>,
        client: &str,
    ) -> Result<PeerReply, Error> {
        let sessions: Vec<SessionId> = items.iter().map(|(s, _)| *s).collect();
        self.check_client(client, &key_id, &sessions).await?;
        Ok(PeerReply::Shares(self.shares(key_id, items).await?))
    }

    /// With authentication on, refuses to sign for a client this node's own policy does not
    /// allow `key_id` (so one compromised node cannot have the others sign for such a
    /// client); the nonces or presignatures of the refused sessions are dropped (single
    /// use) and the decision is an audit event.
    pub(crate) async fn check_client(
        &self,
        client: &str,
        key_id: &str,
        sessions: &[SessionId],
    ) -> Result<(), Error> {
        if self.auth.mode == crate::auth::AuthMode::None {
            return Ok(());
        }
        let key = self.load(key_id).await?;
        let owner = self.owner_of(key_id).await?;
        let allowed = !client.is_empty()
            && self
                .auth
                .clients
                .by_name(client)
                .is_some_and(|c| c.may_use_key(key_id, key.scheme(), &owner));
        if allowed {
            return Ok(());
        }
        {
            let mut held = lock(&self.nonces);
            let mut pre = lock(&self.presigns);
            for s in sessions {
                held.remove(s);
                pre.remove(s);
            }
        }
        let who = if client.is_empty() {
            "(unauthenticated)".to_owned()
        } else {
            client.to_owned()
        };
        tracing::warn!(client = %who, key_id, "co-signing refused: this node's policy does not allow the client");
        let event = crate::audit::Event::AccessDenied {
            client: who.clone(),
            action: "SignShares".into(),
            key_id: Some(key_id.to_owned()),
            at_ms: crate::ports::now_ms(),
        };
        let store = Arc::clone(&self.store);
        if let Err(e) = joined(
            "audit write",
            tokio::task::spawn_blocking(move || Ok(store.record_event(event)?)).await,
        ) {
            tracing::error!(error = %e.chain(), "recording an access decision failed");
        }
        Err(Error::PermissionDenied {
            client: who,
            action: "co-sign with",
            key_id: Some(key_id.to_owned()),
        })
    }

    /// The client that created `key_id` (empty when authentication was off), from the store.
    async fn owner_of(&self, key_id: &str) -> Result<String, Error> {
        if let Some(o) = lock(&self.owners).get(key_id) {
            return Ok(o.clone());
        }
        let (store, id) = (Arc::clone(&self.store), key_id.to_owned());
        let owner = joined(
            "key lookup",
            tokio::task::spawn_blocking(move || Ok(store.get_key(&id)?.map(|r| r.owner))).await,
        )?
        .unwrap_or_default();
        lock(&self.owners).insert(key_id.to_owned(), owner.clone());
        Ok(owner)
    }

    /// The commitments of this party's held nonces `sessions` (for its own coordinator,
    /// which then need not decode them).
    pub(crate) fn own_commitments<S: FrostScheme>(
        &self,
        sessions: &[SessionId],
    ) -> Vec<Option<SigningCommitments<S>>> {
        let held = lock(&self.nonces);
        sessions
            .iter()
            .map(|s| held.get(s).and_then(|n| S::held_commitments(&n.nonces)))
            .collect()
    }

    /// Takes this party's nonces of `sessions` for `key_id` out of the table (single use:
    /// whatever happens next, they are gone), logging them for the fault tests' reuse check.
    fn take_nonces<'a>(
        &self,
        key_id: &str,
        sessions: impl Iterator<Item = &'a SessionId>,
    ) -> Vec<Option<HeldNonces>> {
        let taken: Vec<Option<HeldNonces>> = {
            let mut held = lock(&self.nonces);
            sessions
                .map(|sid| match held.remove(sid) {
                    Some(n) if n.key_id == key_id => Some(n.nonces),
                    _ => None,
                })
                .collect()
        };
        if let Some(log) = &self.nonce_log {
            self.log_nonces(log, &taken);
        }
        taken
    }

    /// The nonces of `sessions` for this node's own share, which its coordinator computes with
    /// the aggregation ([`FrostAggregate::own`]); `None` for a session whose nonces are
    /// unknown, expired, used or of another scheme.
    pub(crate) fn own_nonces<S: FrostScheme>(
        &self,
        key_id: &str,
        sessions: &[SessionId],
    ) -> Vec<Option<SigningNonces<S>>> {
        self.take_nonces(key_id, sessions.iter())
            .into_iter()
            .map(|n| n.and_then(S::unhold))
            .collect()
    }

    async fn shares(
        &self,
        key_id: String,
        items: Vec<(SessionId, Vec<u8>)>,
    ) -> Result<Vec<Result<Vec<u8>, String>>, Error> {
        let key = self.load(&key_id).await?;
        let taken = self.take_nonces(&key_id, items.iter().map(|(s, _)| s));
        let mut out: Vec<Result<Vec<u8>, String>> = Vec::with_capacity(items.len());
        let mut jobs = Vec::with_capacity(items.len());
        let mut slots = Vec::with_capacity(items.len());
        for (k, (held, (_, package))) in taken.into_iter().zip(items).enumerate() {
            let work = match held {
                Some(HeldNonces::Ed25519(n)) => ShareWork::Ed25519(n, package),
                Some(HeldNonces::Bip340(n)) => ShareWork::Bip340(n, package),
                None => {
                    out.push(Err("unknown, expired or already used nonces".to_owned()));
                    continue;
                }
            };
            out.push(Err("no share computed".to_owned()));
            slots.push(k);
            jobs.push(Job::Share {
                key: Arc::clone(&key),
                work: Box::new(work),
                fault: self.fault,
            });
        }
        let receivers = self.batcher.submit(Queue::Share(key.scheme()), jobs)?;
        for (k, rx) in slots.into_iter().zip(receivers) {
            out[k] = match rx.await {
                Ok(Done {
                    result: Ok(JobOutput::Share(b)),
                    ..
                }) => Ok(b),
                Ok(Done { result: Err(e), .. }) => Err(e.chain()),
                Ok(_) => Err("unexpected output of a share job".to_owned()),
                Err(_) => Err("share job dropped".to_owned()),
            };
        }
        Ok(out)
    }
}

fn finish<S: FrostScheme>(
    stage: Box<dyn Any + Send>,
    confirmations: &[(PartyId, [u8; 32])],
) -> Result<LoadedKey, Error> {
    let Ok(stage) = stage.downcast::<Stage<S>>() else {
        return Err(Error::Internal("DKG stage of another suite"));
    };
    let Stage::Round3(state) = *stage else {
        return Err(Error::Internal("DKG finish out of order"));
    };
    let mut map = BTreeMap::new();
    for (id, c) in confirmations {
        map.insert(ident(*id)?, Confirmation(*c));
    }
    let (share, public) = dkg::finish::<S>(state, &map)?;
    Ok(S::wrap(PartyKey::new(share, public)?))
}

/// Applies the test-only fault switch to an outgoing share.
pub(crate) fn corrupt<S: Suite>(share: SignatureShare<S>, fault: Fault) -> SignatureShare<S> {
    match fault {
        Fault::None | Fault::DieBeforeStoringKey => share,
        Fault::InvalidShares => {
            use accel_api::CurveGroup;
            SignatureShare::new(share.identifier(), share.scalar() + S::G::scalar_one())
        }
    }
}

/// Runs the futures concurrently (each on its own task) and returns their outputs in order.
pub(crate) async fn join_all<F>(fs: impl IntoIterator<Item = F>) -> Result<Vec<F::Output>, Error>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = fs.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        match h.await {
            Ok(v) => out.push(v),
            Err(e) if e.is_panic() => return Err(Error::Panicked { task: "peer call" }),
            Err(_) => return Err(Error::ShuttingDown),
        }
    }
    Ok(out)
}

/// Decodes the commitments party `id` sent, validated in one batch through the port; a bad
/// encoding names it.
pub(crate) fn decode_commitments<S: Suite>(
    accel: &dyn Accelerator,
    id: PartyId,
    encodings: &[&[u8]],
) -> Result<Vec<SigningCommitments<S>>, Error> {
    SigningCommitments::<S>::from_bytes_batch(accel, encodings)?
        .into_iter()
        .map(|r| r.map_err(|_| Error::Protocol(threshold::Error::Culprits(vec![id]))))
        .collect()
}
