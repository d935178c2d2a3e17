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
use dkls23::sign::{Round1Msg, Round2Msg, SignRound1, SignRound2};
use k256::elliptic_curve::group::GroupEncoding;
use rand_core::OsRng;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use super::{Fault, Party, join_all, lock};
use crate::Error;
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
        self.blocking("DKG round 1", move |accel| {
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
        self.blocking("DKG round 2", move |accel| {
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
        self.blocking("DKG step", move |accel| {
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
        &self,
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
        let started: Started = self
            .blocking("presigning round 1", move |accel| {
                let LoadedKey::EcdsaParty(k) = key.as_ref() else {
                    return Err(not_distributed_ecdsa());
                };
                let share = k.share();
                let mut out = Vec::with_capacity(ids.len());
                for s in &ids {
                    let sid = presign_sid(&kid, s, &sig);
                    out.push(dkls23::sign::start(accel, &share, &sig, &sid, &mut OsRng)?);
                }
                Ok(out)
            })
            .await?;
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
        let calls = per_peer.into_iter().map(|(to, items)| {
            let link = Arc::clone(&self.link);
            let deadline = self.deadline;
            let request = PeerRequest::PresignDeliver {
                key_id: key_id.to_owned(),
                round,
                items,
            };
            async move { (to, link.call(to, request, deadline).await) }
        });
        for (to, r) in join_all(calls).await? {
            match r {
                Ok(PeerReply::Done) => {}
                Ok(PeerReply::Failed(f)) => {
                    return Err(Error::Peer {
                        peer: to,
                        problem: f.message,
                    });
                }
                Ok(_) => {
                    return Err(Error::Peer {
                        peer: to,
                        problem: "unexpected reply to a presigning delivery".into(),
                    });
                }
                Err(e) => {
                    return Err(Error::Peer {
                        peer: to,
                        problem: e.to_string(),
                    });
                }
            }
        }
        Ok(())
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
        &self,
        key_id: String,
        sessions: Vec<SessionId>,
    ) -> Result<PeerReply, Error> {
        let key = self.load(&key_id).await?;
        let (states, inputs) = self.take_round(&key_id, &sessions, 1)?;
        let r = self
            .blocking("presigning round 2", move |accel| {
                let LoadedKey::EcdsaParty(k) = key.as_ref() else {
                    return Err(not_distributed_ecdsa());
                };
                let mut share = k.share();
                let mut out = Vec::with_capacity(states.len());
                for (st, msgs) in states.into_iter().zip(inputs) {
                    let Stage::Round1(st) = st else {
                        return Err(Error::Internal("presigning round 2 out of order"));
                    };
                    let decoded = msgs
                        .iter()
                        .map(|(p, b)| Round1Msg::from_bytes(b, *p))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push(st.round2(accel, &mut share, &decoded, &mut OsRng)?);
                }
                Ok(out)
            })
            .await;
        let done = match r {
            Ok(v) => v,
            Err(e) => {
                self.abort(&sessions);
                return Err(e);
            }
        };
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
        &self,
        key_id: String,
        sessions: Vec<SessionId>,
    ) -> Result<PeerReply, Error> {
        let key = self.load(&key_id).await?;
        let (states, inputs) = self.take_round(&key_id, &sessions, 2)?;
        let r = self
            .blocking("presigning round 3", move |accel| {
                let LoadedKey::EcdsaParty(k) = key.as_ref() else {
                    return Err(not_distributed_ecdsa());
                };
                let mut share = k.share();
                let mut out = Vec::with_capacity(states.len());
                for (st, msgs) in states.into_iter().zip(inputs) {
                    let Stage::Round2(st) = st else {
                        return Err(Error::Internal("presigning round 3 out of order"));
                    };
                    let decoded = msgs
                        .iter()
                        .map(|(p, b)| Round2Msg::from_bytes(b, *p))
                        .collect::<Result<Vec<_>, _>>()?;
                    out.push(st.presign(accel, &mut share, &decoded)?);
                }
                Ok(out)
            })
            .await;
        let done = match r {
            Ok(v) => v,
            Err(e) => {
                self.abort(&sessions);
                return Err(e);
            }
        };
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
