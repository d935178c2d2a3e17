//! DKLs23 signing (eprint 2023/765, Protocol 3.6) as per-party sans-IO state machines.
//!
//! Rounds 1 and 2 are presigning (the message is not needed); the result is a single-use
//! [`PartyPresignature`], consumed by value in [`PartyPresignature::sign`] (round 3), whose
//! outputs any party combines with [`combine`].

use k256::elliptic_curve::ops::{LinearCombinationExt, Reduce};
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::{AffinePoint, ProjectivePoint, Scalar, U256};
use rand_core::{CryptoRngCore, RngCore};
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use accel_api::{Accelerator, CurveGroup, LincombJob, Secp256k1};

use crate::codec::{encode_points, normalize};
use crate::error::Error;
use crate::hash::Tr;
use crate::hedge::Hedge;
use crate::keygen::{KeyShare, PartyId, pair_ctx_encoded};
use crate::mul::{self, BobState, VoleMsg};
use crate::ot::KosMsg;

/// Round-1 message from `from` to `to`.
#[derive(Clone, Debug, PartialEq)]
pub struct Round1Msg {
    /// Sender.
    pub from: PartyId,
    /// Recipient.
    pub to: PartyId,
    /// The sender's session nonce (same to every recipient).
    pub nonce: [u8; 32],
    /// Commitment to the sender's instance point `R_i` (same to every recipient).
    pub commitment: [u8; 32],
    /// The sender's OT-extension message as multiplication receiver (Bob) with `to`.
    pub kos: KosMsg,
}

/// Round-2 message from `from` to `to`.
#[derive(Clone, Debug, PartialEq)]
pub struct Round2Msg {
    /// Sender.
    pub from: PartyId,
    /// Recipient.
    pub to: PartyId,
    /// The sender's instance point `R_i` (opening of its commitment).
    pub big_r: ProjectivePoint,
    /// The commitment salt.
    pub salt: [u8; 32],
    /// The sender's additive public key share `pk_i = sk_i·G`.
    pub pk_share: ProjectivePoint,
    /// `Γ_u = c_u·G` for the sender's multiplication output with `to`.
    pub gamma_u: ProjectivePoint,
    /// `Γ_v = c_v·G` for the sender's multiplication output with `to`.
    pub gamma_v: ProjectivePoint,
    /// `ψ = φ_i − χ` where `χ` was the sender's random multiplication input as Bob with `to`.
    pub psi: Scalar,
    /// The sender's multiplication answer as Alice with `to`.
    pub vole: VoleMsg,
}

/// Round-3 (online) message: the sender's signature share.
#[derive(Clone, Debug, PartialEq)]
pub struct Round3Msg {
    /// Sender.
    pub from: PartyId,
    /// `w_i = H(m)·φ_i + r_x·v_i`.
    pub w: Scalar,
    /// `u_i`, the sender's share of `r·φ`.
    pub u: Scalar,
}

/// State after round 1.
pub struct SignRound1 {
    id: PartyId,
    signers: Vec<PartyId>,
    r: Scalar,
    phi: Scalar,
    big_r: ProjectivePoint,
    nonce: [u8; 32],
    salt: [u8; 32],
    bobs: Vec<BobState>,
}

/// State after round 2.
pub struct SignRound2 {
    id: PartyId,
    signers: Vec<PartyId>,
    sid: [u8; 32],
    r: Scalar,
    phi: Scalar,
    sk: Scalar,
    big_r: ProjectivePoint,
    pk_share: ProjectivePoint,
    bobs: Vec<BobState>,
    peers_r1: Vec<([u8; 32], [u8; 32])>,
    c: Vec<[Scalar; 2]>,
}

macro_rules! redacted_drop {
    ($t:ty, $($f:ident),*) => {
        impl $t {
            /// Zeroizes the secret fields (run on drop).
            fn wipe(&mut self) {
                $(self.$f.zeroize();)*
                #[cfg(test)]
                crate::tests::note_wipe(stringify!($t));
            }
        }
        impl Drop for $t {
            fn drop(&mut self) {
                self.wipe();
            }
        }
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.debug_struct(stringify!($t)).field("id", &self.id).finish_non_exhaustive()
            }
        }
    };
}
redacted_drop!(SignRound1, r, phi, salt);
redacted_drop!(SignRound2, r, phi, sk, c);

fn check_signers(key: &KeyShare, signers: &[PartyId]) -> Result<Vec<PartyId>, Error> {
    let mut s = signers.to_vec();
    s.sort_unstable();
    s.dedup();
    if s.len() != signers.len() || s.len() < usize::from(key.t) {
        return Err(Error::InvalidParameters(
            "signer set must hold at least t distinct parties",
        ));
    }
    if s.iter().any(|&p| p == 0 || p > key.n) || !s.contains(&key.id) {
        return Err(Error::InvalidParameters(
            "signer ids out of range or self missing",
        ));
    }
    for &p in &s {
        if p != key.id && !key.pair_ready(p) {
            return Err(Error::OtStateDiscarded { peer: p });
        }
    }
    Ok(s)
}

fn peers(signers: &[PartyId], me: PartyId) -> impl Iterator<Item = PartyId> + '_ {
    signers.iter().copied().filter(move |&p| p != me)
}

/// Orders incoming messages by sender, one per peer, all addressed to `me`.
fn arrange<'a, T>(
    msgs: &'a [T],
    signers: &[PartyId],
    me: PartyId,
    from_to: impl Fn(&T) -> (PartyId, PartyId),
) -> Result<Vec<&'a T>, Error> {
    let mut out = Vec::with_capacity(signers.len() - 1);
    for p in peers(signers, me) {
        let mut it = msgs.iter().filter(|m| from_to(m).0 == p);
        let m = it
            .next()
            .ok_or(Error::InvalidParameters("missing message from a signer"))?;
        if it.next().is_some() {
            return Err(Error::Malformed {
                culprit: p,
                what: "duplicate message",
            });
        }
        if from_to(m).1 != me {
            return Err(Error::Malformed {
                culprit: p,
                what: "message addressed to another party",
            });
        }
        out.push(m);
    }
    if out.len() != msgs.len() {
        return Err(Error::InvalidParameters("message from a non-signer"));
    }
    Ok(out)
}

fn commitment(id: PartyId, nonce: &[u8; 32], big_r: &[u8; 33], salt: &[u8; 32]) -> [u8; 32] {
    Tr::new("sign/commit")
        .u64(u64::from(id))
        .bytes(nonce)
        .encoded_point(big_r)
        .bytes(salt)
        .finish()
}

pub(crate) fn lagrange_at_zero(id: PartyId, signers: &[PartyId]) -> Scalar {
    let mut num = Scalar::ONE;
    let mut den = Scalar::ONE;
    let me = Scalar::from(u64::from(id));
    for &j in signers.iter().filter(|&&j| j != id) {
        let xj = Scalar::from(u64::from(j));
        num *= xj;
        den *= xj - me;
    }
    num * Secp256k1::scalar_invert(&den)
}

/// Round 1: derives the instance key `r_i` and inversion mask `φ_i`, commits to
/// `R_i = r_i·G`, and starts one multiplication as Bob with every other signer.
///
/// `session_id` must be unique to this presigning session (for instance assigned by the
/// coordinator; [`crate::embedded`] derives one per presignature). All per-session secrets
/// (`r_i`, `φ_i`, the commitment salt, the multiplication input `χ` and the OT-extension
/// randomness) are hedged: derived from 32 bytes of `rng` together with the secret share,
/// `session_id` and the party id (RFC 9591 §4.1; docs/dkls23.md, "Hedged nonces"), so a failed or
/// repeating RNG does not repeat or expose them.
pub fn start(
    accel: &dyn Accelerator,
    key: &KeyShare,
    signers: &[PartyId],
    session_id: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> Result<(SignRound1, Vec<Round1Msg>), Error> {
    let mut out = start_batch(accel, key, signers, core::slice::from_ref(session_id), rng)?;
    out.pop()
        .ok_or(Error::InvalidParameters("no presigning session"))
}

/// Round 1 of several presigning sessions with the same signers at once: [`start`] for each
/// of `session_ids` (each unique, as there), with the instance points of every session
/// computed in one call to the port and encoded with one field inversion.
pub fn start_batch(
    accel: &dyn Accelerator,
    key: &KeyShare,
    signers: &[PartyId],
    session_ids: &[[u8; 32]],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<(SignRound1, Vec<Round1Msg>)>, Error> {
    let signers = check_signers(key, signers)?;
    let pk_bytes = key.public_key_bytes();
    let ctxs: Vec<[u8; 32]> = peers(&signers, key.id)
        .map(|p| pair_ctx_encoded(&pk_bytes, p, key.id))
        .collect();
    let mut secrets = Vec::with_capacity(session_ids.len());
    let mut rs = Vec::with_capacity(session_ids.len());
    for session_id in session_ids {
        let hedge = Hedge::new(rng, &key.secret, session_id, key.id);
        let r = hedge.scalar(b"r");
        rs.push(r);
        secrets.push((r, hedge.scalar(b"phi"), hedge.rng(b"stream")));
    }
    let big_rs = Secp256k1::mul_base(accel, &rs)?;
    rs.zeroize();
    let encoded = encode_points(&big_rs);
    let mut out = Vec::with_capacity(session_ids.len());
    for ((mut r, mut phi, mut stream), (big_r, big_r_bytes)) in
        secrets.into_iter().zip(big_rs.into_iter().zip(&encoded))
    {
        let mut nonce = [0u8; 32];
        let mut salt = [0u8; 32];
        stream.fill_bytes(&mut nonce);
        stream.fill_bytes(&mut salt);
        let com = commitment(key.id, &nonce, big_r_bytes, &salt);
        let mut bobs = Vec::new();
        let mut msgs = Vec::new();
        for (p, ctx) in peers(&signers, key.id).zip(&ctxs) {
            let pair = key.pair(p).ok_or(Error::OtStateDiscarded { peer: p })?;
            let (kos, st) = mul::bob_start(&pair.as_receiver, ctx, &mut stream);
            bobs.push(st);
            msgs.push(Round1Msg {
                from: key.id,
                to: p,
                nonce,
                commitment: com,
                kos,
            });
        }
        out.push((
            SignRound1 {
                id: key.id,
                signers: signers.clone(),
                r,
                phi,
                big_r,
                nonce,
                salt,
                bobs,
            },
            msgs,
        ));
        r.zeroize();
        phi.zeroize();
    }
    Ok(out)
}

/// The weights of a peer's Γ checks: `ρ`, which combines its two checks into one, and `w`,
/// which combines that with the checks of the other peers and sessions of a batch. Hashes of
/// the session, the peer and Bob's secret multiplication input `χ`, so the peer (who does not
/// know `χ`) fixed its `Γ`s without knowing them; a wrong `Γ_u` or `Γ_v` then passes with
/// probability 1/q at each combination.
fn gamma_weights(sid: &[u8; 32], peer: PartyId, chi: &Scalar) -> (Scalar, Scalar) {
    let mut c: [u8; 32] = chi.to_bytes().into();
    let weight = |tag| {
        Tr::new(tag)
            .bytes(sid)
            .u64(u64::from(peer))
            .bytes(&c)
            .finish_scalar()
    };
    let out = (
        weight("sign/gamma-weight"),
        weight("sign/gamma-batch-weight"),
    );
    c.zeroize();
    out
}

/// Round 2's work before its port call: the scalars to multiply by the generator
/// (`sk` first, then each peer's `c_u`, `c_v`), with everything else the round returns.
struct Round2Pending {
    st: SignRound2,
    salt: [u8; 32],
    to: Vec<PartyId>,
    vmsgs: Vec<VoleMsg>,
    scalars: Zeroizing<Vec<Scalar>>,
}

impl Round2Pending {
    fn finish(self, pts: &[ProjectivePoint]) -> (SignRound2, Vec<Round2Msg>) {
        let Round2Pending {
            mut st,
            salt,
            to,
            vmsgs,
            ..
        } = self;
        st.pk_share = pts[0];
        let out = to
            .iter()
            .zip(vmsgs)
            .enumerate()
            .map(|(k, (&to, vole))| Round2Msg {
                from: st.id,
                to,
                big_r: st.big_r,
                salt,
                pk_share: st.pk_share,
                gamma_u: pts[1 + 2 * k],
                gamma_v: pts[2 + 2 * k],
                psi: st.phi - st.bobs[k].b,
                vole,
            })
            .collect();
        (st, out)
    }
}

impl SignRound1 {
    /// Round 2: checks every peer's OT extension, answers its multiplication as Alice with
    /// inputs `(r_i, sk_i)` (her random masks hedged from `rng`, the secret share and the
    /// joint session id), and opens the commitment. A failed check discards the OT state
    /// with the culprit in `key` and aborts.
    pub fn round2(
        self,
        accel: &dyn Accelerator,
        key: &mut KeyShare,
        msgs: &[Round1Msg],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(SignRound2, Vec<Round2Msg>), Error> {
        let mut out = Self::round2_batch(vec![self], accel, key, &[msgs], rng)?;
        out.pop()
            .ok_or(Error::InvalidParameters("no presigning session"))
    }

    /// Round 2 of several sessions of the same key at once ([`start_batch`]'s states, with
    /// each session's messages in the same order): [`SignRound1::round2`] for each, with
    /// the points of every session computed in one call to the port. The first failure
    /// aborts the batch.
    pub fn round2_batch(
        states: Vec<SignRound1>,
        accel: &dyn Accelerator,
        key: &mut KeyShare,
        msgs: &[&[Round1Msg]],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<(SignRound2, Vec<Round2Msg>)>, Error> {
        if states.len() != msgs.len() {
            return Err(Error::InvalidParameters("one message set per session"));
        }
        let pk_bytes = key.public_key_bytes();
        let mut pending = Vec::with_capacity(states.len());
        // The sessions of a batch usually share their signer set: one Lagrange coefficient
        // (an inversion) for all of them.
        let mut lambda: Option<(Vec<PartyId>, Scalar)> = None;
        for (st, m) in states.into_iter().zip(msgs) {
            let l = match &lambda {
                Some((signers, l)) if *signers == st.signers => *l,
                _ => {
                    let l = lagrange_at_zero(st.id, &st.signers);
                    lambda = Some((st.signers.clone(), l));
                    l
                }
            };
            pending.push(st.round2_local(key, &pk_bytes, m, l, rng)?);
        }
        let scalars: Zeroizing<Vec<Scalar>> = Zeroizing::new(
            pending
                .iter()
                .flat_map(|p| p.scalars.iter().copied())
                .collect(),
        );
        let pts = Secp256k1::mul_base(accel, &scalars)?;
        let mut at = 0;
        Ok(pending
            .into_iter()
            .map(|p| {
                let n = p.scalars.len();
                let r = p.finish(&pts[at..at + n]);
                at += n;
                r
            })
            .collect())
    }

    /// Round 2 of one session, up to its points; `lambda` is this party's Lagrange
    /// coefficient for the session's signer set.
    fn round2_local(
        mut self,
        key: &mut KeyShare,
        pk_bytes: &[u8; 33],
        msgs: &[Round1Msg],
        lambda: Scalar,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Round2Pending, Error> {
        if key.id != self.id {
            return Err(Error::InvalidParameters("key share of another party"));
        }
        let ms = arrange(msgs, &self.signers, self.id, |m| (m.from, m.to))?;
        let mut sid_t = Tr::new("sign/sid");
        sid_t.encoded_point(pk_bytes);
        let mut k = 0;
        for &p in &self.signers {
            sid_t.u64(u64::from(p));
            if p == self.id {
                sid_t.bytes(&self.nonce);
            } else {
                sid_t.bytes(&ms[k].nonce);
                k += 1;
            }
        }
        let sid = sid_t.finish();
        let mut zeta = Scalar::ZERO;
        for p in peers(&self.signers, self.id) {
            let seed = &key.zero_seeds[usize::from(p) - 1];
            let z = Tr::new("sign/zero").bytes(seed).bytes(&sid).finish_scalar();
            if self.id < p { zeta += z } else { zeta -= z }
        }
        let sk = lambda * key.secret + zeta;
        // Alice's multiplication masks are hedged like the round-1 secrets (RFC 9591 §4.1),
        // here with the joint session id `sid`.
        let mut stream = Hedge::new(rng, &key.secret, &sid, self.id).rng(b"round2");
        let mut c = Vec::with_capacity(ms.len());
        let mut vmsgs = Vec::with_capacity(ms.len());
        for m in &ms {
            let pair = key
                .pair(m.from)
                .ok_or(Error::OtStateDiscarded { peer: m.from })?;
            let ctx = pair_ctx_encoded(pk_bytes, self.id, m.from);
            match mul::alice_respond(
                &pair.as_sender,
                &ctx,
                &sid,
                &m.kos,
                [self.r, sk],
                m.from,
                &mut stream,
            ) {
                Ok((ci, v)) => {
                    c.push(ci);
                    vmsgs.push(v);
                }
                Err(e) => {
                    key.discard_pair(m.from);
                    return Err(e);
                }
            }
        }
        let mut scalars = Zeroizing::new(Vec::with_capacity(1 + 2 * c.len()));
        scalars.push(sk);
        for ci in &c {
            scalars.push(ci[0]);
            scalars.push(ci[1]);
        }
        let peers_r1 = ms.iter().map(|m| (m.nonce, m.commitment)).collect();
        let to = ms.iter().map(|m| m.from).collect();
        Ok(Round2Pending {
            st: SignRound2 {
                id: self.id,
                signers: core::mem::take(&mut self.signers),
                sid,
                r: self.r,
                phi: self.phi,
                sk,
                big_r: self.big_r,
                pk_share: ProjectivePoint::IDENTITY,
                bobs: core::mem::take(&mut self.bobs),
                peers_r1,
                c,
            },
            salt: self.salt,
            to,
            vmsgs,
            scalars,
        })
    }
}
/// Bob's output shares `d` of one session, one pair per peer.
type BobShares = Zeroizing<Vec<[Scalar; 2]>>;

impl SignRound2 {
    /// End of presigning: opens the peers' commitments, finishes the multiplications as
    /// Bob with their consistency checks, checks every `Γ` against `R_j` and `pk_j`, and
    /// checks `Σ pk_j = pk`. A failed check discards the OT state with the culprit and
    /// aborts naming it.
    pub fn presign(
        self,
        accel: &dyn Accelerator,
        key: &mut KeyShare,
        msgs: &[Round2Msg],
    ) -> Result<PartyPresignature, Error> {
        let mut out = Self::presign_batch(vec![self], accel, key, &[msgs])?;
        out.pop()
            .ok_or(Error::InvalidParameters("no presigning session"))
    }

    /// The end of presigning for several sessions of the same key at once
    /// ([`SignRound1::round2_batch`]'s states, with each session's messages in the same
    /// order): [`SignRound2::presign`] for each, with the points of every session computed
    /// in one call to the port and normalised together. The first failure aborts the batch.
    pub fn presign_batch(
        states: Vec<SignRound2>,
        accel: &dyn Accelerator,
        key: &mut KeyShare,
        msgs: &[&[Round2Msg]],
    ) -> Result<Vec<PartyPresignature>, Error> {
        if states.len() != msgs.len() {
            return Err(Error::InvalidParameters("one message set per session"));
        }
        let pk_bytes = key.public_key_bytes();
        let mut arranged = Vec::with_capacity(states.len());
        for (st, m) in states.iter().zip(msgs) {
            arranged.push(arrange(m, &st.signers, st.id, |m| (m.from, m.to))?);
        }
        let peer_rs: Vec<ProjectivePoint> = arranged.iter().flatten().map(|m| m.big_r).collect();
        let encoded = encode_points(&peer_rs);
        let mut pending = Vec::with_capacity(states.len());
        let mut at = 0;
        for (st, ms) in states.into_iter().zip(&arranged) {
            pending.push(st.presign_local(key, &pk_bytes, ms, &encoded[at..at + ms.len()])?);
            at += ms.len();
        }
        // The two Γ checks of each peer, combined with a weight ρ the peer cannot predict:
        // χ·(R_j + ρ·pk_j) − (Γ_u + ρ·Γ_v) = (d_u + ρ·d_v)·G; and those of every session and
        // peer of the batch combined with a second such weight w:
        // Σ (w·χ)·(R_j + ρ·pk_j) = Σ (w·Γ_u + w·ρ·Γ_v) + (Σ w·(d_u + ρ·d_v))·G.
        // The public two-term sums go through one `lincomb_vartime` call, the secret `w·χ`
        // through one constant-time linear combination (one set of doublings for the batch),
        // the secret sum on `G` through `mul_base`. Only a failed batch is checked peer by
        // peer, to name the culprit.
        let mut p_jobs = Vec::new();
        let mut q_jobs = Vec::new();
        let mut weighted = Zeroizing::new(Vec::new());
        let mut deltas = Zeroizing::new(Vec::new());
        let mut culprits = Vec::new();
        for ((st, d), ms) in pending.iter().zip(&arranged) {
            for (k, m) in ms.iter().enumerate() {
                let chi = &st.bobs[k].b;
                let (rho, w) = gamma_weights(&st.sid, m.from, chi);
                p_jobs.push(LincombJob::new(vec![
                    (Scalar::ONE, m.big_r),
                    (rho, m.pk_share),
                ]));
                q_jobs.push(LincombJob::new(vec![(w, m.gamma_u), (w * rho, m.gamma_v)]));
                weighted.push(w * chi);
                deltas.push(w * (d[k][0] + rho * d[k][1]));
                culprits.push(m.from);
            }
        }
        let items = p_jobs.len();
        if items > 0 {
            p_jobs.append(&mut q_jobs);
            let pts = Secp256k1::lincomb_vartime(accel, &p_jobs)?;
            let (ps, qs) = pts.split_at(items);
            let mut e = deltas.iter().fold(Scalar::ZERO, |a, d| a + d);
            let eg = Secp256k1::mul_base(accel, core::slice::from_ref(&e))?;
            e.zeroize();
            let terms: Zeroizing<Vec<(ProjectivePoint, Scalar)>> =
                Zeroizing::new(ps.iter().copied().zip(weighted.iter().copied()).collect());
            let lhs = ProjectivePoint::lincomb_ext(terms.as_slice());
            let rhs = qs
                .iter()
                .fold(eg.first().copied().unwrap_or_default(), |a, q| a + q);
            if eg.len() != 1 || lhs != rhs {
                gamma_culprit(accel, key, ps, qs, &weighted, &deltas, &culprits)?;
            }
        }
        let big_rs: Vec<ProjectivePoint> = pending
            .iter()
            .zip(&arranged)
            .map(|((st, _), ms)| ms.iter().fold(st.big_r, |a, m| a + m.big_r))
            .collect();
        let affine = normalize(&big_rs);
        let mut out = Vec::with_capacity(pending.len());
        for (((st, d), ms), (big_r, aff)) in pending
            .into_iter()
            .zip(&arranged)
            .zip(big_rs.into_iter().zip(affine))
        {
            out.push(st.presign_finish(key, ms, &d, big_r, &aff)?);
        }
        Ok(out)
    }

    /// Opens the peers' commitments (their `R_j` given encoded) and finishes the
    /// multiplications as Bob: his output shares `d` per peer.
    fn presign_local(
        self,
        key: &mut KeyShare,
        pk_bytes: &[u8; 33],
        ms: &[&Round2Msg],
        encoded_rs: &[[u8; 33]],
    ) -> Result<(Self, BobShares), Error> {
        let mut d = Zeroizing::new(Vec::with_capacity(ms.len()));
        for (k, (m, r_bytes)) in ms.iter().zip(encoded_rs).enumerate() {
            let (nonce, com) = &self.peers_r1[k];
            let open = commitment(m.from, nonce, r_bytes, &m.salt);
            if !bool::from(open.ct_eq(com)) {
                key.discard_pair(m.from);
                return Err(Error::CommitmentMismatch { culprit: m.from });
            }
            let ctx = pair_ctx_encoded(pk_bytes, m.from, self.id);
            match mul::bob_finish(&self.bobs[k], &ctx, &self.sid, &m.vole, m.from) {
                Ok(dk) => d.push(dk),
                Err(e) => {
                    key.discard_pair(m.from);
                    return Err(e);
                }
            }
        }
        Ok((self, d))
    }

    /// After the Γ checks (in [`SignRound2::presign_batch`]): checks `Σ pk_j = pk`, and
    /// assembles the presignature for the joint `R` (`big_r`, normalised as `aff`).
    fn presign_finish(
        self,
        key: &mut KeyShare,
        ms: &[&Round2Msg],
        d: &[[Scalar; 2]],
        big_r: ProjectivePoint,
        aff: &AffinePoint,
    ) -> Result<PartyPresignature, Error> {
        let pk_sum = ms.iter().fold(self.pk_share, |a, m| a + m.pk_share);
        if pk_sum != key.public_key {
            return Err(Error::PublicKeyShareMismatch {
                signers: self.signers.clone(),
            });
        }
        if Secp256k1::is_identity(&big_r) {
            return Err(Error::InvalidSignature);
        }
        let x = <Scalar as Reduce<U256>>::reduce_bytes(&aff.x());
        let mut u = self.r * self.phi;
        let mut w = self.sk * self.phi;
        for (k, m) in ms.iter().enumerate() {
            u += self.c[k][0] + self.r * m.psi + d[k][0];
            w += self.c[k][1] + self.sk * m.psi + d[k][1];
        }
        Ok(PartyPresignature {
            id: self.id,
            big_r,
            x,
            phi: self.phi,
            u,
            w,
            public_key: key.public_key,
        })
    }
}
/// One party's presignature: single use (consumed by [`PartyPresignature::sign`]), held in
/// memory only (no serialization), zeroized on drop.
pub struct PartyPresignature {
    id: PartyId,
    big_r: ProjectivePoint,
    x: Scalar,
    phi: Scalar,
    u: Scalar,
    w: Scalar,
    public_key: ProjectivePoint,
}
redacted_drop!(PartyPresignature, phi, u, w);

impl PartyPresignature {
    /// The party id.
    pub fn id(&self) -> PartyId {
        self.id
    }
    /// The joint nonce point `R` (public).
    pub fn big_r(&self) -> ProjectivePoint {
        self.big_r
    }
    /// The group public key.
    pub fn public_key(&self) -> ProjectivePoint {
        self.public_key
    }
    /// Round 3 (online): the message enters here. Consumes the presignature.
    pub fn sign(self, prehash: &[u8; 32]) -> Round3Msg {
        let m = <Scalar as Reduce<U256>>::reduce_bytes(prehash.into());
        Round3Msg {
            from: self.id,
            w: m * self.phi + self.x * self.w,
            u: self.u,
        }
    }
}

/// Combines the signers' round-3 shares into `(r‖s, recovery_id)` with low S, after
/// verifying the signature against `public_key` through the port.
pub fn combine(
    accel: &dyn Accelerator,
    public_key: &ProjectivePoint,
    big_r: &ProjectivePoint,
    prehash: &[u8; 32],
    msgs: &[Round3Msg],
) -> Result<([u8; 64], u8), Error> {
    combine_batch(accel, &[(*public_key, *big_r, *prehash, msgs)])
        .pop()
        .ok_or(Error::InvalidSignature)?
}

/// One signature for [`combine_batch`]: the group public key, the joint `R`, the prehash and
/// the signers' round-3 shares.
pub type CombineItem<'a> = (ProjectivePoint, ProjectivePoint, [u8; 32], &'a [Round3Msg]);

/// [`combine`] for many signatures, with every verification `u1·G + u2·Q` in one call to the
/// port; each signature gets its own result.
pub fn combine_batch(
    accel: &dyn Accelerator,
    items: &[CombineItem<'_>],
) -> Vec<Result<([u8; 64], u8), Error>> {
    let big_rs: Vec<ProjectivePoint> = items.iter().map(|i| i.1).collect();
    let affine = normalize(&big_rs);
    let mut jobs = Vec::with_capacity(items.len());
    let mut staged = Vec::with_capacity(items.len());
    // Per item `Σw` and `Σu`, then all their inverses at once: `s = Σw / Σu` and
    // `s⁻¹ = Σu / Σw` (both public once the online round is sent).
    let mut sums: Vec<Scalar> = items
        .iter()
        .map(|i| i.3.iter().fold(Scalar::ZERO, |a, m| a + m.w))
        .collect();
    sums.extend(
        items
            .iter()
            .map(|i| i.3.iter().fold(Scalar::ZERO, |a, m| a + m.u)),
    );
    let mut inverses = sums.clone();
    invert_batch(&mut inverses);
    let (w_sums, u_sums) = sums.split_at(items.len());
    let (w_invs, u_invs) = inverses.split_at(items.len());
    for (k, ((public_key, _, prehash, _), aff)) in items.iter().zip(&affine).enumerate() {
        let s = w_sums[k] * u_invs[k];
        let x = <Scalar as Reduce<U256>>::reduce_bytes(&aff.x());
        if bool::from(s.is_zero()) || bool::from(x.is_zero()) {
            staged.push(None);
            continue;
        }
        let m = <Scalar as Reduce<U256>>::reduce_bytes(prehash.into());
        let s_inv = u_sums[k] * w_invs[k];
        jobs.push(LincombJob::new(vec![
            (m * s_inv, ProjectivePoint::GENERATOR),
            (x * s_inv, *public_key),
        ]));
        staged.push(Some((s, x, bool::from(aff.y_is_odd()))));
    }
    let checks = match Secp256k1::lincomb_vartime(accel, &jobs) {
        Ok(c) => c,
        Err(e) => return items.iter().map(|_| Err(Error::from(e.clone()))).collect(),
    };
    let identity: Vec<bool> = checks.iter().map(Secp256k1::is_identity).collect();
    let checks = normalize(&checks);
    let mut checks = checks.iter().zip(identity);
    staged
        .into_iter()
        .map(|st| {
            let (mut s, x, odd) = st.ok_or(Error::InvalidSignature)?;
            let (chk, is_identity) = checks.next().ok_or(Error::InvalidSignature)?;
            if is_identity || <Scalar as Reduce<U256>>::reduce_bytes(&chk.x()) != x {
                return Err(Error::InvalidSignature);
            }
            let mut rec = u8::from(odd);
            if bool::from(s.is_high()) {
                s = -s;
                rec ^= 1;
            }
            let mut out = [0u8; 64];
            out[..32].copy_from_slice(&x.to_bytes());
            out[32..].copy_from_slice(&s.to_bytes());
            Ok((out, rec))
        })
        .collect()
}

/// After a failed batch Γ check: each peer's check on its own, in order: with item `i`'s
/// `R_j + ρ·pk_j` in `ps`, `w·Γ_u + w·ρ·Γ_v` in `qs`, `w·χ` in `weighted` and
/// `w·(d_u + ρ·d_v)` in `deltas`, `(w·χ)·ps[i] − qs[i] = deltas[i]·G` (the peer's check
/// times `w ≠ 0`). The first failure discards that pair and names the peer. Returns `Ok` only
/// if every check passes on its own (which a failed batch leaves with probability 1/q).
fn gamma_culprit(
    accel: &dyn Accelerator,
    key: &mut KeyShare,
    ps: &[ProjectivePoint],
    qs: &[ProjectivePoint],
    weighted: &[Scalar],
    deltas: &[Scalar],
    culprits: &[PartyId],
) -> Result<(), Error> {
    #[cfg(test)]
    crate::tests::note_gamma_fallback();
    let dg = Secp256k1::mul_base(accel, deltas)?;
    for (i, &from) in culprits.iter().enumerate() {
        if dg.get(i) != Some(&(ps[i] * weighted[i] - qs[i])) {
            key.discard_pair(from);
            return Err(Error::BadShare { culprit: from });
        }
    }
    Ok(())
}

/// Replaces every value by its inverse with one inversion (Montgomery's trick: prefix
/// products, one inversion, then back); zero stays zero. For public values.
fn invert_batch(values: &mut [Scalar]) {
    let one_if_zero = |x: &Scalar| Scalar::conditional_select(x, &Scalar::ONE, x.is_zero());
    let mut prefix = Vec::with_capacity(values.len());
    let mut acc = Scalar::ONE;
    for x in values.iter() {
        prefix.push(acc);
        acc *= one_if_zero(x);
    }
    let mut inv = Secp256k1::scalar_invert(&acc);
    for (x, p) in values.iter_mut().zip(prefix).rev() {
        let zero = x.is_zero();
        let xi = inv * p;
        inv *= one_if_zero(x);
        *x = Scalar::conditional_select(&xi, &Scalar::ZERO, zero);
    }
}

/// Assurance tests: exact refusal of bad signer sets, the checks of `combine`, and
/// zeroization of every signing state.
#[cfg(test)]
mod assurance {
    use super::*;
    use crate::keygen::KeySet;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn key_set(t: u16, n: u16, seed: u64) -> KeySet {
        let accel = backend_cpu::CpuBackend::new();
        crate::embedded::dkg(&accel, t, n, &mut ChaCha20Rng::seed_from_u64(seed)).unwrap()
    }

    /// `invert_batch` inverts each value, leaves zeros at zero, and handles an empty slice.
    #[test]
    fn batch_inversion_inverts_each_value_and_keeps_zeros() {
        let mut rng = ChaCha20Rng::seed_from_u64(11);
        let mut v: Vec<Scalar> = (0..9).map(|_| Secp256k1::random_scalar(&mut rng)).collect();
        v[0] = Scalar::ZERO;
        v[4] = Scalar::ZERO;
        v[8] = Scalar::ONE;
        let orig = v.clone();
        invert_batch(&mut v);
        for (x, xi) in orig.iter().zip(&v) {
            if bool::from(x.is_zero()) {
                assert_eq!(*xi, Scalar::ZERO);
            } else {
                assert_eq!(*x * xi, Scalar::ONE);
            }
        }
        invert_batch(&mut []);
    }

    const TOO_FEW: Error =
        Error::InvalidParameters("signer set must hold at least t distinct parties");
    const OUT_OF_RANGE: Error = Error::InvalidParameters("signer ids out of range or self missing");

    /// Every malformed signer set is refused with its own error: duplicates (even with `t`
    /// distinct ids), too few, id 0, an id above `n`, and the signer itself missing; the
    /// smallest and largest valid sets are accepted. Kills `||` → `&&` in both conditions of
    /// `check_signers` (duplicates or out-of-range ids would otherwise reach the OT-state
    /// check and give a different error, or be accepted) and its boundary mutants.
    /// A presignature names its signers, in order, and shows nothing else in `Debug`. Kills
    /// `PartyPresignature::id` → `Default::default()` (every id would read 0).
    #[test]
    fn presignature_names_its_signers() {
        let accel = backend_cpu::CpuBackend::new();
        let mut set = key_set(2, 3, 26);
        let mut rng = ChaCha20Rng::seed_from_u64(27);
        let pre = crate::embedded::presign_batch(&accel, &mut set, &[1, 3], 1, &mut rng)
            .unwrap()
            .remove(0);
        assert_eq!(pre.signers(), vec![1, 3]);
        assert_eq!(format!("{pre:?}"), "Presignature { signers: [1, 3], .. }");
    }

    #[test]
    fn check_signers_refuses_each_bad_set_exactly() {
        let set = key_set(2, 3, 21);
        let key = set.share(1).unwrap();
        assert_eq!(check_signers(key, &[1, 2, 2]), Err(TOO_FEW));
        assert_eq!(check_signers(key, &[1, 1]), Err(TOO_FEW));
        assert_eq!(check_signers(key, &[1]), Err(TOO_FEW));
        assert_eq!(check_signers(key, &[]), Err(TOO_FEW));
        assert_eq!(check_signers(key, &[0, 1, 2]), Err(OUT_OF_RANGE));
        assert_eq!(check_signers(key, &[1, 0]), Err(OUT_OF_RANGE));
        assert_eq!(check_signers(key, &[1, 2, 4]), Err(OUT_OF_RANGE));
        assert_eq!(check_signers(key, &[1, u16::MAX]), Err(OUT_OF_RANGE));
        assert_eq!(check_signers(key, &[2, 3]), Err(OUT_OF_RANGE));
        assert_eq!(check_signers(key, &[3, 1]), Ok(vec![1, 3]));
        assert_eq!(check_signers(key, &[2, 1]), Ok(vec![1, 2]));
        assert_eq!(check_signers(key, &[3, 2, 1]), Ok(vec![1, 2, 3]));
        let mut key = key.clone();
        key.discard_pair(3);
        assert_eq!(
            check_signers(&key, &[1, 3]),
            Err(Error::OtStateDiscarded { peer: 3 })
        );
        assert_eq!(check_signers(&key, &[1, 2]), Ok(vec![1, 2]));
    }

    /// One honest presigning session of `signers` on `set`.
    fn presign(set: &mut KeySet, signers: &[PartyId], seed: u64) -> Vec<PartyPresignature> {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut st1 = Vec::new();
        let mut m1 = Vec::new();
        for &p in signers {
            let (s, m) = start(&accel, set.share(p).unwrap(), signers, &[7; 32], &mut rng).unwrap();
            st1.push(s);
            m1.extend(m);
        }
        let mut st2 = Vec::new();
        let mut m2 = Vec::new();
        for (s, &p) in st1.into_iter().zip(signers) {
            let mine: Vec<_> = m1.iter().filter(|m| m.to == p).cloned().collect();
            let (s2, m) = s
                .round2(&accel, set.share_mut(p).unwrap(), &mine, &mut rng)
                .unwrap();
            st2.push(s2);
            m2.extend(m);
        }
        st2.into_iter()
            .zip(signers)
            .map(|(s, &p)| {
                let mine: Vec<_> = m2.iter().filter(|m| m.to == p).cloned().collect();
                s.presign(&accel, set.share_mut(p).unwrap(), &mine).unwrap()
            })
            .collect()
    }

    /// `combine` accepts the honest shares and refuses: shares summing to `s = 0`, a zero
    /// `u` (so `s = w·u⁻¹ = 0`), a nonce point of another session, the wrong public key, and
    /// the identity as `R` (`r = 0`). Guards the `s = 0 ∨ r = 0` refusal and the final
    /// verification.
    #[test]
    fn combine_refuses_degenerate_or_wrong_inputs() {
        let accel = backend_cpu::CpuBackend::new();
        let mut set = key_set(2, 2, 22);
        let parts = presign(&mut set, &[1, 2], 23);
        let pk = parts[0].public_key();
        let big_r = parts[0].big_r();
        let h = [0x5a; 32];
        let msgs: Vec<Round3Msg> = parts.into_iter().map(|p| p.sign(&h)).collect();
        assert!(combine(&accel, &pk, &big_r, &h, &msgs).is_ok());
        let mut zero_s = msgs.clone();
        zero_s[1].w = -zero_s[0].w;
        assert_eq!(
            combine(&accel, &pk, &big_r, &h, &zero_s),
            Err(Error::InvalidSignature)
        );
        let mut zero_u = msgs.clone();
        zero_u[1].u = -zero_u[0].u;
        assert_eq!(
            combine(&accel, &pk, &big_r, &h, &zero_u),
            Err(Error::InvalidSignature)
        );
        let other = big_r + ProjectivePoint::GENERATOR;
        assert_eq!(
            combine(&accel, &pk, &other, &h, &msgs),
            Err(Error::InvalidSignature)
        );
        let wrong_key = pk + ProjectivePoint::GENERATOR;
        assert_eq!(
            combine(&accel, &wrong_key, &big_r, &h, &msgs),
            Err(Error::InvalidSignature)
        );
        assert_eq!(
            combine(&accel, &pk, &ProjectivePoint::IDENTITY, &h, &msgs),
            Err(Error::InvalidSignature)
        );
        assert_eq!(
            combine(&accel, &pk, &big_r, &[0xa5; 32], &msgs),
            Err(Error::InvalidSignature)
        );
    }

    /// Every signing state's secrets are wiped, and dropping a state runs its wipe:
    /// `SignRound1` (`r`, `φ`, salt), `SignRound2` (`r`, `φ`, `sk`, `c`) and
    /// `PartyPresignature` (`φ`, `u`, `w`). Kills an emptied `wipe` or `Drop::drop`.
    #[test]
    fn signing_states_are_wiped_on_drop() {
        let accel = backend_cpu::CpuBackend::new();
        let mut set = key_set(2, 2, 24);
        let mut rng = ChaCha20Rng::seed_from_u64(25);
        let mut st = Vec::new();
        let mut m1 = Vec::new();
        for p in [1, 2] {
            let (s, m) = start(&accel, set.share(p).unwrap(), &[1, 2], &[1; 32], &mut rng).unwrap();
            st.push(s);
            m1.extend(m);
        }
        let mut s1 = st.pop().unwrap();
        assert!(s1.r != Scalar::ZERO && s1.phi != Scalar::ZERO && s1.salt != [0; 32]);
        s1.wipe();
        assert!(s1.r == Scalar::ZERO && s1.phi == Scalar::ZERO && s1.salt == [0; 32]);
        let before = crate::tests::wipes("SignRound1");
        drop(s1);
        assert_eq!(crate::tests::wipes("SignRound1"), before + 1);

        let s1 = st.pop().unwrap();
        let mine: Vec<_> = m1.iter().filter(|m| m.to == 1).cloned().collect();
        let (mut s2, _) = s1
            .round2(&accel, set.share_mut(1).unwrap(), &mine, &mut rng)
            .unwrap();
        assert!(s2.r != Scalar::ZERO && s2.phi != Scalar::ZERO && s2.sk != Scalar::ZERO);
        assert!(s2.c.iter().flatten().all(|c| *c != Scalar::ZERO));
        s2.wipe();
        assert!(s2.r == Scalar::ZERO && s2.phi == Scalar::ZERO && s2.sk == Scalar::ZERO);
        assert!(s2.c.iter().flatten().all(|c| *c == Scalar::ZERO));
        let before = crate::tests::wipes("SignRound2");
        drop(s2);
        assert_eq!(crate::tests::wipes("SignRound2"), before + 1);

        let mut pre = presign(&mut set, &[1, 2], 26).into_iter().next().unwrap();
        assert!(pre.phi != Scalar::ZERO && pre.u != Scalar::ZERO && pre.w != Scalar::ZERO);
        pre.wipe();
        assert!(pre.phi == Scalar::ZERO && pre.u == Scalar::ZERO && pre.w == Scalar::ZERO);
        let before = crate::tests::wipes("PartyPresignature");
        drop(pre);
        assert_eq!(crate::tests::wipes("PartyPresignature"), before + 1);
    }
}
