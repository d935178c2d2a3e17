//! Threshold ECDSA (DKLs23) at one node of the distributed deployment.
//!
//! Key generation runs `dkls23::dkg::PartyDkg`: its round-1 broadcast goes through the
//! coordinator, and every pairwise message (Feldman shares, zero-sharing seed contributions,
//! the five flows of each pair's verified base OT) goes directly to the peer over the
//! authenticated peer channel. Presigning does the same: the coordinator only starts each
//! round; the round messages (OT extension, multiplication answers, commitment openings) go
//! party to party and every party checks what it receives, naming culprits. The resulting
//! presignature stays in this node's memory (single use, zeroized on drop, forgotten after
//! [`PRESIGN_TTL`]); the online round returns only this party's signature share.

use std::any::Any;
use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dkls23::PartyPresignature;
use dkls23::dkg::{DkgStep, PartyDkg};
use dkls23::keygen::PairSetup;
use dkls23::sign::{Round1Msg, Round2Msg, SignRound1, SignRound2};
use k256::elliptic_curve::group::GroupEncoding;
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{Fault, Party, join_all, lock, session_id};
use crate::Error;
use crate::error::joined;
use crate::keys::{EcdsaPartyKey, LoadedKey};
use crate::peer::{PartyId, PeerReply, PeerRequest, SessionId};

/// How long a presigning session and its presignature are kept before they are destroyed.
pub const PRESIGN_TTL: Duration = Duration::from_secs(300);
/// Most presignatures one presigning request may start.
pub const MAX_PRESIGN_BATCH: usize = 32;
/// Most presigning sessions (and presignatures) a party holds at once.
pub const MAX_HELD_PRESIGS: usize = 1 << 16;

/// One presigning session at this party.
pub(crate) struct PresignSlot {
    key_id: String,
    signers: Vec<PartyId>,
    pub(crate) made: Instant,
    stage: Stage,
}

enum Stage {
    Round1(SignRound1),
    Round2(SignRound2),
    Ready(PartyPresignature),
    /// Taken out for a round's computation.
    Busy,
}

/// A pairwise base-OT refresh this party answers.
pub(crate) struct PairSlot {
    key_id: String,
    peer: PartyId,
    pub(crate) started: Instant,
    setup: PairSetup,
}

/// Messages of one session and round delivered by the other signers.
pub(crate) struct Delivered {
    pub(crate) since: Instant,
    key_id: String,
    msgs: Vec<(PartyId, Vec<u8>)>,
}

/// The party a failed threshold-ECDSA check blamed, if it names one.
pub(crate) fn culprit(e: &dkls23::Error) -> Option<PartyId> {
    use dkls23::Error as E;
    match e {
        E::Malformed { culprit, .. }
        | E::OtConsistency { culprit }
        | E::MultiplicationConsistency { culprit }
        | E::CommitmentMismatch { culprit }
        | E::BadShare { culprit }
        | E::BadDkgShare { culprit }
        | E::BaseOtCheck { culprit }
        | E::ConfirmationMismatch { culprit } => Some(*culprit),
        _ => None,
    }
}

/// Ends key generation: compares the confirmations and returns this party's share.
pub(crate) fn finish(
    stage: Box<dyn Any + Send>,
    confirmations: &[(PartyId, [u8; 32])],
) -> Result<LoadedKey, Error> {
    let Ok(dkg) = stage.downcast::<PartyDkg>() else {
        return Err(Error::Internal("DKG stage of another scheme"));
    };
    let share = dkg.finish(confirmations)?;
    Ok(LoadedKey::EcdsaParty(EcdsaPartyKey::new(share)))
}

/// The 32-byte presigning session id every signer derives from the coordinator's session,
/// binding the key and the signer set.
fn presign_sid(key_id: &str, session: &SessionId, signers: &[PartyId]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera/presign-session\0");
    h.update((key_id.len() as u64).to_be_bytes());
    h.update(key_id.as_bytes());
    h.update(session);
    for p in signers {
        h.update(p.to_be_bytes());
    }
    h.finalize().into()
}

fn bad_refresh(what: &'static str) -> Error {
    Error::invalid("pair_refresh", what)
}

fn not_distributed_ecdsa() -> Error {
    Error::NotInThisMode("this key is not a distributed threshold-ECDSA key")
}

type Started = Vec<(SignRound1, Vec<Round1Msg>)>;

impl Party {
    pub(super) async fn ecdsa_part1(
        &self,
        (_, t, n, dkg_id): threshold::dkg::Part1Params,
    ) -> Result<(Box<dyn Any + Send>, Vec<u8>), Error> {
        let me = self.me;
        self.background("DKG round 1", move |accel| {
            let (dkg, msg) = PartyDkg::start(accel, me, t, n, &dkg_id, &mut OsRng)?;
            let stage: Box<dyn Any + Send> = Box::new(dkg);
            Ok((stage, msg))
        })
        .await
    }

    #[allow(clippy::type_complexity)]
    pub(super) async fn ecdsa_part2(
        &self,
        stage: Box<dyn Any + Send>,
        round1: Vec<(PartyId, Vec<u8>)>,
    ) -> Result<(Box<dyn Any + Send>, Vec<(PartyId, Vec<u8>)>), Error> {
        self.background("DKG round 2", move |accel| {
            let Ok(mut dkg) = stage.downcast::<PartyDkg>() else {
                return Err(Error::Internal("DKG stage of another scheme"));
            };
            let out = dkg.round2(accel, &round1, &mut OsRng)?;
            let stage: Box<dyn Any + Send> = dkg;
            Ok((
                stage,
                out.into_iter().map(|(p, m)| (p, m.to_vec())).collect(),
            ))
        })
        .await
    }

    /// One key-generation step: checks the messages delivered in the last step and returns
    /// this step's messages, or the confirmation once key generation is complete.
    #[allow(clippy::type_complexity)]
    pub(super) async fn ecdsa_step(
        &self,
        stage: Box<dyn Any + Send>,
        received: BTreeMap<PartyId, Zeroizing<Vec<u8>>>,
    ) -> Result<(Box<dyn Any + Send>, PeerReply, Vec<(PartyId, Vec<u8>)>), Error> {
        self.background("DKG step", move |accel| {
            let Ok(mut dkg) = stage.downcast::<PartyDkg>() else {
                return Err(Error::Internal("DKG stage of another scheme"));
            };
            let mut incoming: Vec<(PartyId, Vec<u8>)> =
                received.iter().map(|(p, m)| (*p, m.to_vec())).collect();
            let step = dkg.step(accel, &incoming, &mut OsRng);
            for (_, m) in incoming.iter_mut() {
                m.zeroize();
            }
            let (reply, out) = match step? {
                DkgStep::Send(msgs) => (
                    PeerReply::Done,
                    msgs.into_iter().map(|(p, m)| (p, m.to_vec())).collect(),
                ),
                DkgStep::Confirm(c) => (PeerReply::Confirmation(c), Vec::new()),
            };
            let stage: Box<dyn Any + Send> = dkg;
            Ok((stage, reply, out))
        })
        .await
    }

    /// Presigning round 1: starts a presignature per session and delivers the round-1
    /// messages to the other signers.
    pub(super) async fn presign_start(
        self: &Arc<Self>,
        from: PartyId,
        key_id: String,
        signers: Vec<PartyId>,
        sessions: Vec<SessionId>,
    ) -> Result<PeerReply, Error> {
        if sessions.is_empty() || sessions.len() > MAX_PRESIGN_BATCH {
            return Err(Error::invalid(
                "sessions",
                format!("a presigning request starts 1 to {MAX_PRESIGN_BATCH} sessions"),
            ));
        }
        if !signers.windows(2).all(|w| w[0] < w[1])
            || !signers.contains(&self.me)
            || !signers.contains(&from)
        {
            return Err(Error::invalid(
                "signers",
                "must be ascending and hold this party and the coordinator",
            ));
        }
        self.sweep();
        let held = lock(&self.presigns).len();
        if held + sessions.len() > MAX_HELD_PRESIGS {
            return Err(Error::Overloaded {
                depth: held,
                max_queue: MAX_HELD_PRESIGS,
                retry_after: Duration::from_secs(1),
            });
        }
        let key = self.load(&key_id).await?;
        let (kid, sig, ids) = (key_id.clone(), signers.clone(), sessions.clone());
        let r: Result<Started, Error> = self
            .background("presigning round 1", move |accel| {
                let LoadedKey::EcdsaParty(k) = key.as_ref() else {
                    return Err(not_distributed_ecdsa());
                };
                let mut share = k.share();
                let out = ids
                    .iter()
                    .map(|s| {
                        let sid = presign_sid(&kid, s, &sig);
                        dkls23::sign::start(accel, &share, &sig, &sid, &mut OsRng)
                    })
                    .collect::<Result<Vec<_>, _>>();
                // The share stays in memory with the key: keep no expanded PRG keys in it.
                share.forget_expanded_keys();
                Ok(out?)
            })
            .await;
        let started = match r {
            Ok(v) => v,
            Err(Error::Ecdsa(dkls23::Error::OtStateDiscarded { peer })) => {
                // This party threw its OT state with `peer` away after a failed check: no
                // presigning together until a fresh base OT is installed.
                self.refresh_pair(&key_id, peer);
                return Err(Error::Ecdsa(dkls23::Error::OtStateDiscarded { peer }));
            }
            Err(e) => return Err(e),
        };
        let now = Instant::now();
        let mut per_peer: BTreeMap<PartyId, Vec<(SessionId, Vec<u8>)>> = BTreeMap::new();
        {
            let mut held = lock(&self.presigns);
            if sessions.iter().any(|s| held.contains_key(s)) {
                return Err(Error::Internal("presigning session id reused"));
            }
            for (s, (st, msgs)) in sessions.iter().zip(started) {
                held.insert(
                    *s,
                    PresignSlot {
                        key_id: key_id.clone(),
                        signers: signers.clone(),
                        made: now,
                        stage: Stage::Round1(st),
                    },
                );
                for m in msgs {
                    per_peer.entry(m.to).or_default().push((*s, m.to_bytes()));
                }
            }
        }
        if let Err(e) = self.presign_send(&key_id, 1, per_peer).await {
            self.abort(&sessions);
            return Err(e);
        }
        Ok(PeerReply::Done)
    }

    /// Delivers one presigning round's messages to every other signer, waiting for each
    /// acknowledgement.
    async fn presign_send(
        &self,
        key_id: &str,
        round: u8,
        per_peer: BTreeMap<PartyId, Vec<(SessionId, Vec<u8>)>>,
    ) -> Result<(), Error> {
        let requests = per_peer
            .into_iter()
            .map(|(to, items)| {
                let r = PeerRequest::PresignDeliver {
                    key_id: key_id.to_owned(),
                    round,
                    items,
                };
                (to, r)
            })
            .collect();
        self.send_all(requests, "a presigning delivery").await
    }

    /// Keeps the presigning messages another signer delivered until their round runs.
    pub(super) fn presign_deliver(
        &self,
        from: PartyId,
        key_id: &str,
        round: u8,
        items: Vec<(SessionId, Vec<u8>)>,
    ) -> Result<PeerReply, Error> {
        if round != 1 && round != 2 {
            return Err(Error::invalid("round", "presigning has rounds 1 and 2"));
        }
        if items.len() > MAX_PRESIGN_BATCH {
            return Err(Error::invalid("items", "too many presigning messages"));
        }
        let now = Instant::now();
        let mut inbox = lock(&self.inbox);
        if inbox.len() + items.len() > 2 * MAX_HELD_PRESIGS {
            return Err(Error::Overloaded {
                depth: inbox.len(),
                max_queue: 2 * MAX_HELD_PRESIGS,
                retry_after: Duration::from_secs(1),
            });
        }
        for (s, m) in items {
            let slot = inbox.entry((s, round)).or_insert_with(|| Delivered {
                since: now,
                key_id: key_id.to_owned(),
                msgs: Vec::new(),
            });
            if slot.key_id != key_id {
                return Err(Error::invalid("key_id", "a session of another key"));
            }
            slot.msgs.push((from, m));
        }
        Ok(PeerReply::Done)
    }

    /// Takes the state of `round` and the messages delivered for it out of every session
    /// (all or nothing: a session that is unknown, of another key, or in another round
    /// aborts the request).
    #[allow(clippy::type_complexity)]
    fn take_round(
        &self,
        key_id: &str,
        sessions: &[SessionId],
        round: u8,
    ) -> Result<(Vec<Stage>, Vec<Vec<(PartyId, Vec<u8>)>>), Error> {
        let mut held = lock(&self.presigns);
        let mut inbox = lock(&self.inbox);
        let ok = sessions.iter().all(|s| {
            held.get(s).is_some_and(|slot| {
                slot.key_id == key_id
                    && matches!(
                        (&slot.stage, round),
                        (Stage::Round1(_), 1) | (Stage::Round2(_), 2)
                    )
            })
        });
        if !ok {
            return Err(Error::Internal(
                "unknown, expired or out-of-order presigning session",
            ));
        }
        let mut states = Vec::with_capacity(sessions.len());
        let mut msgs = Vec::with_capacity(sessions.len());
        for s in sessions {
            if let Some(slot) = held.get_mut(s) {
                states.push(std::mem::replace(&mut slot.stage, Stage::Busy));
            }
            msgs.push(
                inbox
                    .remove(&(*s, round))
                    .map(|d| d.msgs)
                    .unwrap_or_default(),
            );
        }
        Ok((states, msgs))
    }

    /// Presigning round 2: checks the round-1 messages and delivers the round-2 messages.
    pub(super) async fn presign_round2(
        self: &Arc<Self>,
        key_id: String,
        sessions: Vec<SessionId>,
    ) -> Result<PeerReply, Error> {
        let done = self
            .presign_round(&key_id, &sessions, 1, |accel, share, st, msgs| {
                let Stage::Round1(st) = st else {
                    return Err(Error::Internal("presigning round 2 out of order"));
                };
                let decoded = msgs
                    .iter()
                    .map(|(p, b)| Round1Msg::from_bytes(b, *p))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(st.round2(accel, share, &decoded, &mut OsRng)?)
            })
            .await?;
        let mut per_peer: BTreeMap<PartyId, Vec<(SessionId, Vec<u8>)>> = BTreeMap::new();
        {
            let mut held = lock(&self.presigns);
            for (s, (st, msgs)) in sessions.iter().zip(done) {
                if let Some(slot) = held.get_mut(s) {
                    slot.stage = Stage::Round2(st);
                }
                for m in msgs {
                    per_peer.entry(m.to).or_default().push((*s, m.to_bytes()));
                }
            }
        }
        if let Err(e) = self.presign_send(&key_id, 2, per_peer).await {
            self.abort(&sessions);
            return Err(e);
        }
        Ok(PeerReply::Done)
    }

    /// Presigning end: checks the round-2 messages and keeps the presignatures; answers
    /// with each one's nonce point `R`.
    pub(super) async fn presign_finish(
        self: &Arc<Self>,
        key_id: String,
        sessions: Vec<SessionId>,
    ) -> Result<PeerReply, Error> {
        let done = self
            .presign_round(&key_id, &sessions, 2, |accel, share, st, msgs| {
                let Stage::Round2(st) = st else {
                    return Err(Error::Internal("presigning round 3 out of order"));
                };
                let decoded = msgs
                    .iter()
                    .map(|(p, b)| Round2Msg::from_bytes(b, *p))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(st.presign(accel, share, &decoded)?)
            })
            .await?;
        let mut points = Vec::with_capacity(done.len());
        let mut held = lock(&self.presigns);
        for (s, pre) in sessions.iter().zip(done) {
            points.push(Ok(pre.big_r().to_bytes().to_vec()));
            if let Some(slot) = held.get_mut(s) {
                slot.stage = Stage::Ready(pre);
            }
        }
        Ok(PeerReply::Presigned(points))
    }

    /// Runs `step` on every session's state of `round` with the messages delivered for it,
    /// holding the share (a failed check may discard a pair's OT state in it). On failure
    /// the sessions are aborted and a discarded pair is handled (stored, refreshed).
    async fn presign_round<T: Send + 'static>(
        self: &Arc<Self>,
        key_id: &str,
        sessions: &[SessionId],
        round: u8,
        step: impl Fn(
            &dyn accel_api::Accelerator,
            &mut dkls23::KeyShare,
            Stage,
            &[(PartyId, Vec<u8>)],
        ) -> Result<T, Error>
        + Send
        + 'static,
    ) -> Result<Vec<T>, Error> {
        let key = self.load(key_id).await?;
        let held_key = Arc::clone(&key);
        let (states, inputs) = self.take_round(key_id, sessions, round)?;
        let r = self
            .background("presigning round", move |accel| {
                let LoadedKey::EcdsaParty(k) = key.as_ref() else {
                    return Err(not_distributed_ecdsa());
                };
                let mut share = k.share();
                let out = states
                    .into_iter()
                    .zip(inputs)
                    .map(|(st, msgs)| step(accel, &mut share, st, &msgs))
                    .collect();
                share.forget_expanded_keys();
                out
            })
            .await;
        if let Err(e) = &r {
            self.abort(sessions);
            self.after_failed_check(key_id, &held_key, e).await;
        }
        r
    }

    /// The online round: this party's signature share per item, each consuming its
    /// presignature (single use: it leaves the table whatever happens next). Only a signer
    /// of the presignature (its coordinator) may ask.
    pub(super) async fn ecdsa_sign(
        &self,
        from: PartyId,
        key_id: String,
        items: Vec<(SessionId, [u8; 32])>,
        client: &str,
    ) -> Result<PeerReply, Error> {
        let sessions: Vec<SessionId> = items.iter().map(|(s, _)| *s).collect();
        self.check_client(client, &key_id, &sessions).await?;
        let taken: Vec<Option<PartyPresignature>> = {
            let mut held = lock(&self.presigns);
            sessions
                .iter()
                .map(|s| match held.remove(s) {
                    Some(PresignSlot {
                        key_id: k,
                        signers,
                        stage: Stage::Ready(p),
                        ..
                    }) if k == key_id && signers.contains(&from) => Some(p),
                    _ => None,
                })
                .collect()
        };
        if let Some(log) = &self.nonce_log {
            log_presignatures(log, self.me, &taken);
        }
        let fault = self.fault;
        let out = taken
            .into_iter()
            .zip(items)
            .map(|(p, (_, prehash))| match p {
                Some(p) => {
                    let mut share = p.sign(&prehash);
                    if fault == Fault::InvalidShares {
                        share.w += k256::Scalar::ONE;
                    }
                    Ok(share.to_bytes())
                }
                None => Err("unknown, expired or already used presignature".to_owned()),
            })
            .collect();
        Ok(PeerReply::Shares(out))
    }
}

impl Party {
    /// After a failed presigning check: when it made this party discard its OT state with
    /// the culprit, the share is stored again without it (so a restart does not bring the
    /// old state back) and a fresh base OT with the culprit is started.
    async fn after_failed_check(self: &Arc<Self>, key_id: &str, key: &Arc<LoadedKey>, e: &Error) {
        let Error::Ecdsa(inner) = e else { return };
        let Some(c) = culprit(inner) else { return };
        let LoadedKey::EcdsaParty(k) = key.as_ref() else {
            return;
        };
        if k.share().pair_ready(c) {
            return;
        }
        tracing::warn!(
            key_id,
            peer = c,
            "discarded the OT state with a peer after a failed check; a fresh base OT with it follows"
        );
        if let Err(e) = self.persist_share(key_id, key).await {
            tracing::error!(key_id, error = %e.chain(), "storing the share without the discarded OT state failed");
        }
        self.refresh_pair(key_id, c);
    }

    /// Runs a fresh base OT with each of `peers` for `key_id` now (those already refreshing
    /// are left to the run in progress); answers once all are done.
    pub(super) async fn refresh_pairs_now(
        self: &Arc<Self>,
        key_id: &str,
        peers: &[PartyId],
    ) -> Result<PeerReply, Error> {
        let runs = peers.iter().copied().filter(|p| *p != self.me).map(|p| {
            let this = Arc::clone(self);
            let key_id = key_id.to_owned();
            async move {
                if !lock(&this.refreshing).insert((key_id.clone(), p)) {
                    return Ok(());
                }
                let r = this.run_refresh(&key_id, p).await;
                lock(&this.refreshing).remove(&(key_id, p));
                r
            }
        });
        for r in join_all(runs).await? {
            r?;
        }
        Ok(PeerReply::Done)
    }

    /// Seals this party's current share of `key_id` and replaces its stored record (a share
    /// not stored yet, the coordinator's own during an import, is stored by its caller with
    /// whatever state it then has).
    async fn persist_share(&self, key_id: &str, key: &Arc<LoadedKey>) -> Result<(), Error> {
        let (store, sealer, id, key) = (
            Arc::clone(&self.store),
            Arc::clone(&self.sealer),
            key_id.to_owned(),
            Arc::clone(key),
        );
        joined(
            "key update",
            tokio::task::spawn_blocking(move || {
                crate::app::reseal_key(store.as_ref(), sealer.as_ref(), &id, &key)
            })
            .await,
        )
    }

    /// Starts a fresh base OT with `peer` for `key_id` in the background (one at a time per
    /// pair).
    pub(crate) fn refresh_pair(self: &Arc<Self>, key_id: &str, peer: PartyId) {
        if !lock(&self.refreshing).insert((key_id.to_owned(), peer)) {
            return;
        }
        let this = Arc::clone(self);
        let key_id = key_id.to_owned();
        tokio::spawn(async move {
            match this.run_refresh(&key_id, peer).await {
                Ok(()) => tracing::info!(key_id, peer, "fresh base OT with the peer installed"),
                Err(e) => {
                    tracing::warn!(key_id, peer, error = %e.chain(), "base-OT refresh with the peer failed; it is tried again when presigning needs the pair")
                }
            }
            lock(&this.refreshing).remove(&(key_id, peer));
        });
    }

    /// The initiator's side of a pairwise base-OT refresh: three calls to `peer`.
    async fn run_refresh(&self, key_id: &str, peer: PartyId) -> Result<(), Error> {
        let key = self.load(key_id).await?;
        let LoadedKey::EcdsaParty(k) = key.as_ref() else {
            return Err(not_distributed_ecdsa());
        };
        let (pk, me) = (k.public_point(), self.me);
        let session = session_id();
        let (mut setup, first) = self
            .background("base-OT refresh", move |accel| {
                Ok(PairSetup::start(accel, &pk, me, peer, &mut OsRng)?)
            })
            .await?;
        let mut flows = vec![first];
        for round in 1..=3u8 {
            let theirs = self
                .refresh_call(key_id, peer, session, round, flows)
                .await?;
            let want = if round == 3 { 1 } else { 2 };
            if theirs.len() != want {
                return Err(Error::Peer {
                    peer,
                    problem: "wrong number of base-OT flows".into(),
                });
            }
            if round == 3 {
                let ot = setup.finish(&theirs[0])?;
                k.share().install_pair(ot)?;
                self.persist_share(key_id, &key).await?;
                self.pair_refreshes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                return Ok(());
            }
            let (s, next) = self
                .background("base-OT refresh", move |accel| {
                    let mut next = Vec::with_capacity(2);
                    for m in &theirs {
                        next.push(setup.step(accel, m, &mut OsRng)?);
                    }
                    Ok((setup, next))
                })
                .await?;
            setup = s;
            flows = next;
        }
        Err(Error::Internal("base-OT refresh ended early"))
    }

    async fn refresh_call(
        &self,
        key_id: &str,
        peer: PartyId,
        session: SessionId,
        round: u8,
        flows: Vec<Vec<u8>>,
    ) -> Result<Vec<Vec<u8>>, Error> {
        let request = PeerRequest::PairRefresh {
            key_id: key_id.to_owned(),
            session,
            round,
            flows,
        };
        match self.link.call(peer, request, self.deadline).await {
            Ok(PeerReply::PairFlows(f)) => Ok(f),
            Ok(PeerReply::Failed(f)) => Err(Error::Peer {
                peer,
                problem: f.message,
            }),
            Ok(_) => Err(Error::Peer {
                peer,
                problem: "unexpected reply to a base-OT refresh".into(),
            }),
            Err(e) => Err(Error::Peer {
                peer,
                problem: e.to_string(),
            }),
        }
    }

    /// The responder's side of a pairwise base-OT refresh started by `from`.
    pub(super) async fn pair_refresh(
        &self,
        from: PartyId,
        key_id: String,
        session: SessionId,
        round: u8,
        flows: Vec<Vec<u8>>,
    ) -> Result<PeerReply, Error> {
        // Both ends may start a refresh of the same pair at once: the lower id's one runs.
        if self.me < from && lock(&self.refreshing).contains(&(key_id.clone(), from)) {
            return Err(Error::Busy {
                class: "base-OT refresh",
                capacity: 1,
                retry_after: Duration::from_millis(200),
            });
        }
        let key = self.load(&key_id).await?;
        let LoadedKey::EcdsaParty(k) = key.as_ref() else {
            return Err(not_distributed_ecdsa());
        };
        let (pk, me) = (k.public_point(), self.me);
        match (round, flows.as_slice()) {
            (1, [first]) => {
                self.sweep();
                if lock(&self.pair_setups).contains_key(&session) {
                    return Err(bad_refresh("session id reused"));
                }
                let first = first.clone();
                let (setup, out) = self
                    .background("base-OT refresh", move |accel| {
                        let (mut setup, mine) = PairSetup::start(accel, &pk, me, from, &mut OsRng)?;
                        let next = setup.step(accel, &first, &mut OsRng)?;
                        Ok((setup, vec![mine, next]))
                    })
                    .await?;
                lock(&self.pair_setups).insert(
                    session,
                    PairSlot {
                        key_id,
                        peer: from,
                        started: Instant::now(),
                        setup,
                    },
                );
                Ok(PeerReply::PairFlows(out))
            }
            (2 | 3, [a, b]) => {
                let slot = lock(&self.pair_setups)
                    .remove(&session)
                    .filter(|s| s.key_id == key_id && s.peer == from)
                    .ok_or(bad_refresh("unknown or expired refresh session"))?;
                let (a, b) = (a.clone(), b.clone());
                let PairSlot {
                    key_id: kid,
                    peer,
                    started,
                    mut setup,
                } = slot;
                if round == 2 {
                    let (setup, out) = self
                        .background("base-OT refresh", move |accel| {
                            let x = setup.step(accel, &a, &mut OsRng)?;
                            let y = setup.step(accel, &b, &mut OsRng)?;
                            Ok((setup, vec![x, y]))
                        })
                        .await?;
                    lock(&self.pair_setups).insert(
                        session,
                        PairSlot {
                            key_id: kid,
                            peer,
                            started,
                            setup,
                        },
                    );
                    return Ok(PeerReply::PairFlows(out));
                }
                let (ot, last) = self
                    .background("base-OT refresh", move |accel| {
                        let last = setup.step(accel, &a, &mut OsRng)?;
                        Ok((setup.finish(&b)?, last))
                    })
                    .await?;
                k.share().install_pair(ot)?;
                self.persist_share(&key_id, &key).await?;
                self.pair_refreshes
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                tracing::info!(key_id, peer = from, "fresh base OT with the peer installed");
                Ok(PeerReply::PairFlows(vec![last]))
            }
            _ => Err(bad_refresh("wrong round or number of flows")),
        }
    }
}

/// Test-only: records the nonce point of each consumed presignature (one line each), so
/// fault tests can check that none is ever used twice.
fn log_presignatures(log: &Mutex<std::fs::File>, me: PartyId, taken: &[Option<PartyPresignature>]) {
    let mut text = String::new();
    for p in taken.iter().flatten() {
        text.push_str(&format!(
            "ecdsa:{me}:{}\n",
            hex::encode(p.big_r().to_bytes())
        ));
    }
    if let Err(e) = lock(log).write_all(text.as_bytes()) {
        tracing::warn!(error = %e, "nonce log not written");
    }
}
