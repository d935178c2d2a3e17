//! Distributed key generation for parties on separate machines: one party's side of the
//! Feldman-VSS key generation with Schnorr proofs of knowledge, pairwise zero-sharing seeds
//! from both parties' contributions, and both directions of every pair's base OT
//! ([`PairSetup`]), as a sans-IO state machine ([`PartyDkg`]).
//!
//! Round 1 is a broadcast (through a coordinator); every later message is direct, party to
//! party, and must travel over an authenticated encrypted channel (the round-2 message carries
//! the Shamir share `f_i(j)`). Every direct message carries its step, sender, recipient and the
//! session id, so a message of another step, session or pair is refused.

use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use accel_api::{Accelerator, CurveGroup, LincombJob, SchnorrItem, Secp256k1};

use crate::codec::{POINT_LEN, R, SCALAR_LEN, W};
use crate::error::Error;
use crate::hash::Tr;
use crate::keygen::{KeyShare, PairOt, PairSetup, PartyId};

/// What every key-generation proof of knowledge is bound to: the protocol (the transcript
/// domain `dkg/pok`, with the crate prefix, is the context string), the session and the
/// participants.
pub(crate) struct DkgContext {
    pub(crate) session_id: [u8; 32],
    pub(crate) t: u16,
    pub(crate) n: u16,
}

/// One dealer's Schnorr proof of knowledge of its constant term `a_{i,0}`: `R = k·G`,
/// `s = k + c·a_{i,0}`.
#[derive(Clone, Copy)]
pub(crate) struct Pok {
    pub(crate) id: PartyId,
    pub(crate) c0: ProjectivePoint,
    pub(crate) r: ProjectivePoint,
    pub(crate) s: Scalar,
}

/// `c = H("dkg/pok" ‖ session_id ‖ t ‖ n ‖ i ‖ C_{i,0} ‖ R)` (the FROST paper's KeyGen,
/// eprint 2020/852 §5.1 round 1 step 2, `c = H(i, Φ, g^{a_i0}, R_i)`, with the session id and
/// the participants added to the context `Φ`), so a proof replayed into another session or
/// presented under another sender id fails.
pub(crate) fn pok_challenge(
    ctx: &DkgContext,
    id: PartyId,
    c0: &ProjectivePoint,
    r: &ProjectivePoint,
) -> Scalar {
    Tr::new("dkg/pok")
        .bytes(&ctx.session_id)
        .u64(u64::from(ctx.t))
        .u64(u64::from(ctx.n))
        .u64(u64::from(id))
        .point(c0)
        .point(r)
        .finish_scalar()
}

/// Checks every dealer's proof in one batch; the first failing one is named as culprit.
pub(crate) fn verify_poks(
    accel: &dyn Accelerator,
    ctx: &DkgContext,
    proofs: &[Pok],
) -> Result<(), Error> {
    let items: Vec<_> = proofs
        .iter()
        .map(|p| SchnorrItem {
            r: p.r,
            s: p.s,
            c: pok_challenge(ctx, p.id, &p.c0, &p.r),
            public_key: p.c0,
        })
        .collect();
    let verdict = Secp256k1::verify_batch_vartime(accel, &items)?;
    match verdict.invalid.first() {
        Some(&bad) => Err(Error::BadDkgShare {
            culprit: proofs[bad].id,
        }),
        None => Ok(()),
    }
}

/// Tag of the round-1 broadcast.
const TAG_BROADCAST: u8 = 1;
/// Tag of the round-2 direct message (share, seed contribution, [`PairSetup`] flow 1); the
/// direct message carrying [`PairSetup`] flow `f ≥ 2` has tag `f + 1`.
const TAG_SHARES: u8 = 2;
/// Tag of the direct message carrying [`PairSetup`] flow 5, the last one.
const TAG_LAST: u8 = 6;
/// Length of a direct message's header: tag, sender, recipient, session id.
const DIRECT_HEADER: usize = 1 + 2 + 2 + 32;

/// One step's direct messages, `(recipient, bytes)`, one per peer (secret: send only over the
/// private channel).
pub type DirectMessages = Vec<(PartyId, Zeroizing<Vec<u8>>)>;

/// The result of [`PartyDkg::step`].
pub enum DkgStep {
    /// Direct messages to send, one per peer (secret: send only over the private channel).
    Send(DirectMessages),
    /// The DKG is done at this party: its confirmation hash, to be compared by everyone.
    Confirm([u8; 32]),
}

impl core::fmt::Debug for DkgStep {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DkgStep::Send(msgs) => {
                let to: Vec<PartyId> = msgs.iter().map(|(p, _)| *p).collect();
                f.debug_tuple("Send").field(&to).finish()
            }
            DkgStep::Confirm(h) => f.debug_tuple("Confirm").field(h).finish(),
        }
    }
}

/// Where a [`PartyDkg`] stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Round 1 done; waiting for every broadcast.
    Broadcast,
    /// Waiting for the peers' direct messages with this tag.
    Direct(u8),
    /// Done; waiting for every confirmation.
    Confirmed([u8; 32]),
    /// A call failed: the DKG must be restarted.
    Failed,
}

/// One party's side of the distributed key generation. Secrets (polynomial, shares, seed
/// contributions, zero seeds, base-OT state) are zeroized on drop; `Debug` shows only public
/// parameters.
pub struct PartyDkg {
    id: PartyId,
    t: u16,
    n: u16,
    session_id: [u8; 32],
    stage: Stage,
    /// This party's polynomial `f_i` (zeroized once its shares are made).
    coeffs: Vec<Scalar>,
    /// This party's round-1 broadcast.
    broadcast: Vec<u8>,
    /// `f_i(i)`, then the secret share `x_i`.
    secret: Scalar,
    /// Every dealer's Feldman commitments, by dealer id − 1.
    commitments: Vec<Vec<ProjectivePoint>>,
    public_key: ProjectivePoint,
    /// This party's zero-seed contribution for each party (by id − 1; own slot unused).
    contributions: Vec<[u8; 32]>,
    verification_shares: Vec<ProjectivePoint>,
    zero_seeds: Vec<[u8; 32]>,
    /// The base-OT setups, by peer in increasing id order.
    setups: Vec<PairSetup>,
    /// The finished pairs' OT state.
    ots: Vec<PairOt>,
}

impl PartyDkg {
    /// Zeroizes the polynomial, the secret, the seed contributions and the zero seeds (run
    /// on drop; the base-OT setups and pairs wipe themselves).
    fn wipe(&mut self) {
        self.coeffs.zeroize();
        self.secret.zeroize();
        self.contributions.zeroize();
        self.zero_seeds.zeroize();
        #[cfg(test)]
        crate::tests::note_wipe("PartyDkg");
    }
}

impl Drop for PartyDkg {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl core::fmt::Debug for PartyDkg {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PartyDkg")
            .field("id", &self.id)
            .field("t", &self.t)
            .field("n", &self.n)
            .finish_non_exhaustive()
    }
}

fn malformed(culprit: PartyId, what: &'static str) -> Error {
    Error::Malformed { culprit, what }
}

/// `Σ_k x^k·C_k` as a port job.
fn eval_job(commits: &[ProjectivePoint], x: PartyId) -> LincombJob<Scalar, ProjectivePoint> {
    let x = Scalar::from(u64::from(x));
    let mut p = Scalar::ONE;
    let mut terms = Vec::with_capacity(commits.len());
    for c in commits {
        terms.push((p, *c));
        p *= x;
    }
    LincombJob::new(terms)
}

/// A writer for a direct message of step `tag` from `from` to `to` in session `session_id`
/// with a body of `body_len` bytes, its header written.
fn direct_header(tag: u8, from: PartyId, to: PartyId, session_id: &[u8; 32], body_len: usize) -> W {
    let mut w = W::with_len(DIRECT_HEADER + body_len);
    w.u8(tag);
    w.u16(from);
    w.u16(to);
    w.bytes(session_id);
    w
}

/// A decoded round-1 broadcast.
struct Broadcast {
    commitments: Vec<ProjectivePoint>,
    pok: Pok,
}

impl PartyDkg {
    fn ctx(&self) -> DkgContext {
        DkgContext {
            session_id: self.session_id,
            t: self.t,
            n: self.n,
        }
    }

    fn broadcast_len(t: u16) -> usize {
        1 + 2 + 32 + 2 + 2 + (usize::from(t) + 1) * POINT_LEN + SCALAR_LEN
    }

    /// Round 1: draws the polynomial (degree `t − 1`), its Feldman commitments and the Schnorr
    /// proof of knowledge of the constant term; returns the broadcast message. Validates
    /// `2 <= t <= n` and `1 <= id <= n`.
    pub fn start(
        accel: &dyn Accelerator,
        id: PartyId,
        t: u16,
        n: u16,
        session_id: &[u8; 32],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, Vec<u8>), Error> {
        if t < 2 || t > n {
            return Err(Error::InvalidParameters("need 2 <= t <= n"));
        }
        if id == 0 || id > n {
            return Err(Error::InvalidParameters("party id out of range"));
        }
        let tu = usize::from(t);
        let mut st = PartyDkg {
            id,
            t,
            n,
            session_id: *session_id,
            stage: Stage::Failed,
            coeffs: (0..tu)
                .map(|_| Secp256k1::random_nonzero_scalar(rng))
                .collect(),
            broadcast: Vec::new(),
            secret: Scalar::ZERO,
            commitments: Vec::new(),
            public_key: ProjectivePoint::IDENTITY,
            contributions: Vec::new(),
            verification_shares: Vec::new(),
            zero_seeds: Vec::new(),
            setups: Vec::new(),
            ots: Vec::new(),
        };
        let mut all = st.coeffs.clone();
        all.push(Secp256k1::random_nonzero_scalar(rng));
        let pts = Secp256k1::mul_base(accel, &all);
        let mut k = all[tu];
        all.zeroize();
        let pts = match pts {
            Ok(p) => p,
            Err(e) => {
                k.zeroize();
                return Err(e.into());
            }
        };
        let c = pok_challenge(&st.ctx(), id, &pts[0], &pts[tu]);
        let mut s = k + c * st.coeffs[0];
        k.zeroize();
        let mut w = W::with_len(Self::broadcast_len(t));
        w.u8(TAG_BROADCAST);
        w.u16(id);
        w.bytes(session_id);
        w.u16(t);
        w.u16(n);
        for p in &pts {
            w.point(p);
        }
        w.scalar(&s);
        s.zeroize();
        let mut bytes = w.finish();
        st.broadcast = core::mem::take(&mut *bytes);
        st.stage = Stage::Broadcast;
        let out = st.broadcast.clone();
        Ok((st, out))
    }

    /// Decodes party `from`'s round-1 broadcast (wrong shape, session or parameters, invalid
    /// or identity points are [`Error::Malformed`] naming `from`).
    fn decode_broadcast(&self, from: PartyId, bytes: &[u8]) -> Result<Broadcast, Error> {
        if bytes.len() != Self::broadcast_len(self.t) {
            return Err(malformed(from, "DKG broadcast length"));
        }
        let bad = |_| malformed(from, "invalid DKG broadcast");
        let mut r = R(bytes);
        if r.u8().map_err(bad)? != TAG_BROADCAST {
            return Err(malformed(from, "not a DKG broadcast"));
        }
        if r.u16().map_err(bad)? != from {
            return Err(malformed(from, "DKG broadcast under another sender id"));
        }
        if r.take(32).map_err(bad)? != self.session_id.as_slice()
            || r.u16().map_err(bad)? != self.t
            || r.u16().map_err(bad)? != self.n
        {
            return Err(malformed(from, "DKG broadcast for another session"));
        }
        let mut pts = Vec::with_capacity(usize::from(self.t) + 1);
        for _ in 0..=self.t {
            let p = r.point().map_err(bad)?;
            if Secp256k1::is_identity(&p) {
                return Err(malformed(from, "identity point in DKG broadcast"));
            }
            pts.push(p);
        }
        let s = r.scalar().map_err(bad)?;
        r.end().map_err(bad)?;
        let big_r = pts.pop().ok_or(malformed(from, "invalid DKG broadcast"))?;
        Ok(Broadcast {
            pok: Pok {
                id: from,
                c0: pts[0],
                r: big_r,
                s,
            },
            commitments: pts,
        })
    }

    /// Round 2: every party's round-1 broadcast (exactly one per id `1..=n`, own included and
    /// equal to what [`PartyDkg::start`] returned); checks every proof of knowledge in one
    /// batch (the first bad one is named: [`Error::BadDkgShare`]); then one direct message per
    /// peer `j`: `f_i(j)`, a fresh 32-byte zero-seed contribution, and [`PairSetup`] flow 1
    /// (the group public key `Σ_j C_{j,0}` is known now).
    pub fn round2(
        &mut self,
        accel: &dyn Accelerator,
        broadcasts: &[(PartyId, Vec<u8>)],
        rng: &mut impl CryptoRngCore,
    ) -> Result<DirectMessages, Error> {
        if self.stage != Stage::Broadcast {
            return Err(Error::InvalidParameters("DKG round 2 out of order"));
        }
        self.stage = Stage::Failed;
        let by_id = self.one_per_party(broadcasts, true)?;
        if by_id[usize::from(self.id) - 1] != self.broadcast.as_slice() {
            return Err(Error::InvalidParameters(
                "own broadcast differs from the one sent",
            ));
        }
        let mut decoded = Vec::with_capacity(by_id.len());
        for (k, bytes) in by_id.iter().enumerate() {
            decoded.push(self.decode_broadcast((k + 1) as PartyId, bytes)?);
        }
        let proofs: Vec<Pok> = decoded.iter().map(|b| b.pok).collect();
        verify_poks(accel, &self.ctx(), &proofs)?;
        self.commitments = decoded.into_iter().map(|b| b.commitments).collect();
        self.public_key = self
            .commitments
            .iter()
            .fold(ProjectivePoint::IDENTITY, |a, c| a + c[0]);
        if Secp256k1::is_identity(&self.public_key) {
            return Err(Error::InvalidParameters("public key is the identity"));
        }
        let eval = |coeffs: &[Scalar], j: PartyId| {
            let x = Scalar::from(u64::from(j));
            coeffs.iter().rev().fold(Scalar::ZERO, |acc, a| acc * x + a)
        };
        self.secret = eval(&self.coeffs, self.id);
        self.contributions = vec![[0u8; 32]; usize::from(self.n)];
        let mut out = Vec::with_capacity(usize::from(self.n) - 1);
        for j in self.peers() {
            let (setup, flow1) = PairSetup::start(accel, &self.public_key, self.id, j, rng)?;
            self.setups.push(setup);
            let mut contribution = Zeroizing::new([0u8; 32]);
            rng.fill_bytes(&mut *contribution);
            self.contributions[usize::from(j) - 1] = *contribution;
            let body_len = SCALAR_LEN + 32 + flow1.len();
            let mut w = direct_header(TAG_SHARES, self.id, j, &self.session_id, body_len);
            let mut share = eval(&self.coeffs, j);
            w.scalar(&share);
            share.zeroize();
            w.bytes(&*contribution);
            w.bytes(&flow1);
            out.push((j, w.finish()));
        }
        self.coeffs.zeroize();
        self.stage = Stage::Direct(TAG_SHARES);
        Ok(out)
    }

    /// Later steps: exactly one message from every peer of the previous step. The first call
    /// checks every received share against its dealer's commitments (Feldman; a bad share is
    /// [`Error::BadDkgShare`] naming the dealer), derives the secret share `x_i = Σ_j f_j(i)`,
    /// all verification shares and the pairwise zero-sharing seeds
    /// (`seed_{ij} = H(session ‖ ids ‖ contribution of the lower id ‖ contribution of the
    /// higher id)`), and returns flow 2 of every [`PairSetup`]; the next three calls return
    /// flows 3, 4, 5; the fifth call finishes every [`PairSetup`] and returns
    /// [`DkgStep::Confirm`] with the hash of everything public that all parties must agree on
    /// (session id, `t`, `n`, all commitments, public key, verification shares).
    pub fn step(
        &mut self,
        accel: &dyn Accelerator,
        incoming: &[(PartyId, Vec<u8>)],
        rng: &mut impl CryptoRngCore,
    ) -> Result<DkgStep, Error> {
        let tag = match self.stage {
            Stage::Direct(tag) => tag,
            _ => return Err(Error::InvalidParameters("DKG step out of order")),
        };
        self.stage = Stage::Failed;
        let msgs = self.one_per_party(incoming, false)?;
        let peers = self.peers();
        let mut bodies = Vec::with_capacity(peers.len());
        for (&from, bytes) in peers.iter().zip(&msgs) {
            bodies.push(self.open_direct(tag, from, bytes)?);
        }
        if tag == TAG_SHARES {
            bodies = self.receive_shares(accel, &peers, &bodies)?;
        }
        if tag == TAG_LAST {
            for (setup, body) in self.setups.drain(..).zip(&bodies) {
                self.ots.push(setup.finish(body)?);
            }
            let confirmation = self.confirmation();
            self.stage = Stage::Confirmed(confirmation);
            return Ok(DkgStep::Confirm(confirmation));
        }
        let mut out: DirectMessages = Vec::with_capacity(peers.len());
        for ((setup, body), &j) in self.setups.iter_mut().zip(&bodies).zip(&peers) {
            let flow = setup.step(accel, body, rng)?;
            let mut w = direct_header(tag + 1, self.id, j, &self.session_id, flow.len());
            w.bytes(&flow);
            out.push((j, w.finish()));
        }
        self.stage = Stage::Direct(tag + 1);
        Ok(DkgStep::Send(out))
    }

    /// Compares every party's confirmation (exactly one per id `1..=n`) with its own (a
    /// mismatch is [`Error::ConfirmationMismatch`] naming that party) and returns this party's
    /// [`KeyShare`] (secret, public key, verification shares, zero seeds, installed OT state
    /// with every peer).
    pub fn finish(mut self, confirmations: &[(PartyId, [u8; 32])]) -> Result<KeyShare, Error> {
        let mine = match self.stage {
            Stage::Confirmed(h) => h,
            _ => return Err(Error::InvalidParameters("DKG finished out of order")),
        };
        let as_bytes: Vec<(PartyId, Vec<u8>)> = confirmations
            .iter()
            .map(|(p, h)| (*p, h.to_vec()))
            .collect();
        let by_id = self.one_per_party(&as_bytes, true)?;
        for (k, h) in by_id.iter().enumerate() {
            if *h != mine.as_slice() {
                return Err(Error::ConfirmationMismatch {
                    culprit: (k + 1) as PartyId,
                });
            }
        }
        let nu = usize::from(self.n);
        let mut share = KeyShare {
            id: self.id,
            t: self.t,
            n: self.n,
            secret: self.secret,
            public_key: self.public_key,
            verification_shares: self.verification_shares.clone(),
            zero_seeds: self.zero_seeds.clone(),
            ot: vec![None; nu],
        };
        for ot in core::mem::take(&mut self.ots) {
            share.install_pair(ot)?;
        }
        Ok(share)
    }

    /// The peers' ids in increasing order.
    fn peers(&self) -> Vec<PartyId> {
        (1..=self.n).filter(|&j| j != self.id).collect()
    }

    /// Sorts `msgs` by sender id, checking there is exactly one from every party
    /// (`with_self`) or every peer.
    fn one_per_party<'a>(
        &self,
        msgs: &'a [(PartyId, Vec<u8>)],
        with_self: bool,
    ) -> Result<Vec<&'a [u8]>, Error> {
        let mut slots: Vec<Option<&[u8]>> = vec![None; usize::from(self.n)];
        for (from, bytes) in msgs {
            if *from == 0 || *from > self.n {
                return Err(Error::InvalidParameters("message from a non-party"));
            }
            if *from == self.id && !with_self {
                return Err(Error::InvalidParameters("message from self"));
            }
            let slot = &mut slots[usize::from(*from) - 1];
            if slot.is_some() {
                return Err(malformed(*from, "duplicate message"));
            }
            *slot = Some(bytes.as_slice());
        }
        slots
            .into_iter()
            .enumerate()
            .filter(|&(k, _)| with_self || k + 1 != usize::from(self.id))
            .map(|(k, s)| s.ok_or(malformed((k + 1) as PartyId, "missing message")))
            .collect()
    }

    /// Checks a direct message's header (step, sender, recipient, session) and returns its
    /// body; a mismatch is [`Error::Malformed`] naming `from`.
    fn open_direct<'a>(&self, tag: u8, from: PartyId, bytes: &'a [u8]) -> Result<&'a [u8], Error> {
        let bad = |_| malformed(from, "DKG message too short");
        let mut r = R(bytes);
        if r.u8().map_err(bad)? != tag {
            return Err(malformed(from, "DKG message of another step"));
        }
        if r.u16().map_err(bad)? != from || r.u16().map_err(bad)? != self.id {
            return Err(malformed(from, "DKG message for another pair"));
        }
        if r.take(32).map_err(bad)? != self.session_id.as_slice() {
            return Err(malformed(from, "DKG message for another session"));
        }
        Ok(r.0)
    }

    /// The first direct step: decodes and checks the shares, derives the key material and
    /// returns the [`PairSetup`] flow-1 messages, by peer.
    fn receive_shares<'a>(
        &mut self,
        accel: &dyn Accelerator,
        peers: &[PartyId],
        bodies: &[&'a [u8]],
    ) -> Result<Vec<&'a [u8]>, Error> {
        let mut shares: Zeroizing<Vec<Scalar>> = Zeroizing::new(Vec::with_capacity(peers.len()));
        let mut theirs: Zeroizing<Vec<[u8; 32]>> = Zeroizing::new(vec![[0u8; 32]; peers.len()]);
        let mut flows = Vec::with_capacity(peers.len());
        for ((&from, body), contribution) in peers.iter().zip(bodies).zip(theirs.iter_mut()) {
            let bad = |_| malformed(from, "invalid DKG share message");
            let mut r = R(body);
            shares.push(r.scalar().map_err(bad)?);
            r.fill(contribution).map_err(bad)?;
            flows.push(r.0);
        }
        let jobs: Vec<_> = peers
            .iter()
            .map(|&j| eval_job(&self.commitments[usize::from(j) - 1], self.id))
            .collect();
        let expect = Secp256k1::lincomb_vartime(accel, &jobs)?;
        let got = Secp256k1::mul_base(accel, &shares)?;
        for ((a, b), &j) in expect.iter().zip(&got).zip(peers) {
            if a != b {
                return Err(Error::BadDkgShare { culprit: j });
            }
        }
        for s in shares.iter() {
            self.secret += s;
        }
        let tu = usize::from(self.t);
        let summed: Vec<ProjectivePoint> = (0..tu)
            .map(|k| {
                self.commitments
                    .iter()
                    .fold(ProjectivePoint::IDENTITY, |a, c| a + c[k])
            })
            .collect();
        let jobs: Vec<_> = (1..=self.n).map(|m| eval_job(&summed, m)).collect();
        self.verification_shares = Secp256k1::lincomb_vartime(accel, &jobs)?;
        self.zero_seeds = vec![[0u8; 32]; usize::from(self.n)];
        for (&j, their) in peers.iter().zip(theirs.iter()) {
            let mine = &self.contributions[usize::from(j) - 1];
            let (lo, hi) = if self.id < j {
                (mine, their)
            } else {
                (their, mine)
            };
            self.zero_seeds[usize::from(j) - 1] = Tr::new("dkg/zero-seed")
                .bytes(&self.session_id)
                .u64(u64::from(self.id.min(j)))
                .u64(u64::from(self.id.max(j)))
                .bytes(lo)
                .bytes(hi)
                .finish();
        }
        self.contributions.zeroize();
        Ok(flows)
    }

    /// `H("dkg/confirm" ‖ session id ‖ t ‖ n ‖ all commitments ‖ public key ‖ verification
    /// shares)`.
    fn confirmation(&self) -> [u8; 32] {
        let mut tr = Tr::new("dkg/confirm");
        tr.bytes(&self.session_id)
            .u64(u64::from(self.t))
            .u64(u64::from(self.n));
        for c in self.commitments.iter().flatten() {
            tr.point(c);
        }
        tr.point(&self.public_key);
        for v in &self.verification_shares {
            tr.point(v);
        }
        tr.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::embedded;
    use crate::keygen::KeySet;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    /// Dealers' proofs of knowledge for a session, made as the key generation makes them.
    fn proofs(accel: &dyn Accelerator, ctx: &DkgContext, seed: u64) -> Vec<Pok> {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        (1..=ctx.n)
            .map(|id| {
                let a0 = Secp256k1::random_nonzero_scalar(&mut rng);
                let k = Secp256k1::random_nonzero_scalar(&mut rng);
                let pts = Secp256k1::mul_base(accel, &[a0, k]).unwrap();
                let c = pok_challenge(ctx, id, &pts[0], &pts[1]);
                Pok {
                    id,
                    c0: pts[0],
                    r: pts[1],
                    s: k + c * a0,
                }
            })
            .collect()
    }

    fn ctx(session: u8) -> DkgContext {
        DkgContext {
            session_id: [session; 32],
            t: 2,
            n: 3,
        }
    }

    /// A proof from session A replayed into session B (another session id) is rejected
    /// naming its sender.
    #[test]
    fn pok_replayed_into_another_session_names_sender() {
        let accel = backend_cpu::CpuBackend::new();
        let mut b = proofs(&accel, &ctx(2), 2);
        assert_eq!(verify_poks(&accel, &ctx(2), &b), Ok(()));
        b[1] = proofs(&accel, &ctx(1), 1)[1];
        assert_eq!(
            verify_poks(&accel, &ctx(2), &b),
            Err(Error::BadDkgShare { culprit: 2 })
        );
    }

    /// A valid proof presented under another sender id is rejected naming that id.
    #[test]
    fn pok_under_another_sender_id_names_claimed_sender() {
        let accel = backend_cpu::CpuBackend::new();
        let mut b = proofs(&accel, &ctx(3), 3);
        b[2] = Pok { id: 3, ..b[1] };
        assert_eq!(
            verify_poks(&accel, &ctx(3), &b),
            Err(Error::BadDkgShare { culprit: 3 })
        );
    }

    /// The participant count is bound too: a proof made for `n = 3` fails under `n = 4`.
    #[test]
    fn pok_for_another_participant_count_is_rejected() {
        let accel = backend_cpu::CpuBackend::new();
        let b = proofs(&accel, &ctx(4), 4);
        let other = DkgContext { n: 4, ..ctx(4) };
        assert_eq!(
            verify_poks(&accel, &other, &b[..1]),
            Err(Error::BadDkgShare { culprit: 1 })
        );
    }

    /// Where a tamper hook is called: the round-1 broadcasts, the direct messages (by their
    /// tag) and the confirmations.
    const AT_CONFIRM: u8 = 7;

    fn shuffle<T>(v: &mut [T], rng: &mut impl RngCore) {
        for i in (1..v.len()).rev() {
            let j = (rng.next_u32() as usize) % (i + 1);
            v.swap(i, j);
        }
    }

    /// Runs the whole DKG for `n` parties in memory, messages shuffled per round; `tamper`
    /// may change any message `(tag, from, to, bytes)` on its way (a broadcast per
    /// recipient, its sender's own copy excepted). The first error of any party is returned.
    fn run(
        t: u16,
        n: u16,
        seed: u64,
        tamper: impl Fn(u8, PartyId, PartyId, &mut Vec<u8>),
    ) -> Result<Vec<KeyShare>, Error> {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut session_id = [0u8; 32];
        rng.fill_bytes(&mut session_id);
        let mut parties = Vec::new();
        let mut bcasts = Vec::new();
        for id in 1..=n {
            let (p, b) = PartyDkg::start(&accel, id, t, n, &session_id, &mut rng)?;
            parties.push(p);
            bcasts.push((id, b));
        }
        // Mailbox of direct messages: (from, to, bytes).
        let mut mail: Vec<(PartyId, PartyId, Vec<u8>)> = Vec::new();
        for (p, to) in parties.iter_mut().zip(1..) {
            let mut mine = bcasts.clone();
            for (from, b) in mine.iter_mut() {
                if *from != to {
                    tamper(TAG_BROADCAST, *from, to, b);
                }
            }
            shuffle(&mut mine, &mut rng);
            for (j, m) in p.round2(&accel, &mine, &mut rng)? {
                mail.push((to, j, m.to_vec()));
            }
        }
        let mut confirms = Vec::new();
        for _ in 0..5 {
            let mut next = Vec::new();
            for (p, to) in parties.iter_mut().zip(1..) {
                let mut mine: Vec<(PartyId, Vec<u8>)> = mail
                    .iter()
                    .filter(|m| m.1 == to)
                    .map(|(from, _, b)| {
                        let mut b = b.clone();
                        tamper(b[0], *from, to, &mut b);
                        (*from, b)
                    })
                    .collect();
                shuffle(&mut mine, &mut rng);
                match p.step(&accel, &mine, &mut rng)? {
                    DkgStep::Send(out) => {
                        for (j, m) in out {
                            next.push((to, j, m.to_vec()));
                        }
                    }
                    DkgStep::Confirm(h) => confirms.push((to, h)),
                }
            }
            mail = next;
        }
        assert!(mail.is_empty());
        assert_eq!(confirms.len(), usize::from(n));
        let mut shares = Vec::new();
        for (p, to) in parties.into_iter().zip(1..) {
            let mut mine: Vec<(PartyId, [u8; 32])> = confirms
                .iter()
                .map(|(from, h)| {
                    let mut b = h.to_vec();
                    if *from != to {
                        tamper(AT_CONFIRM, *from, to, &mut b);
                    }
                    (*from, b.try_into().unwrap())
                })
                .collect();
            shuffle(&mut mine, &mut rng);
            shares.push(p.finish(&mine)?);
        }
        Ok(shares)
    }

    fn lagrange_at_zero(set: &[PartyId], i: PartyId) -> Scalar {
        set.iter()
            .filter(|&&j| j != i)
            .fold(Scalar::ONE, |acc, &j| {
                let (xi, xj) = (Scalar::from(u64::from(i)), Scalar::from(u64::from(j)));
                acc * xj * (xj - xi).invert().unwrap()
            })
    }

    fn check_signs(shares: Vec<KeyShare>, signer_sets: &[&[PartyId]], seed: u64) {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let pk33 = shares[0].public_key_bytes();
        let mut set = KeySet { shares };
        let secp = secp256k1::Secp256k1::verification_only();
        let pk = secp256k1::PublicKey::from_slice(&pk33).unwrap();
        for (k, signers) in signer_sets.iter().enumerate() {
            let pre = embedded::presign_batch(&accel, &mut set, signers, 1, &mut rng)
                .unwrap()
                .remove(0);
            let prehash = [k as u8 + 1; 32];
            let (sig, _) = embedded::sign(&accel, &set, pre, &prehash).unwrap();
            let msg = secp256k1::Message::from_digest(prehash);
            let s = secp256k1::ecdsa::Signature::from_compact(&sig).unwrap();
            secp.verify_ecdsa(msg, &s, &pk).unwrap();
        }
    }

    fn check_key(shares: &[KeyShare], t: u16) {
        let pk = shares[0].public_key();
        let all: Vec<PartyId> = (1..=shares[0].parties()).collect();
        for s in shares {
            assert_eq!(s.public_key(), pk);
            assert_eq!(s.threshold(), t);
            for &p in &all {
                assert_eq!(s.verification_share(p), shares[0].verification_share(p));
                assert_eq!(s.pair_ready(p), p != s.id());
            }
            // Own verification share matches own secret.
            assert_eq!(
                s.verification_share(s.id()),
                Some(ProjectivePoint::GENERATOR * s.secret)
            );
        }
        // Pairwise zero seeds agree.
        for a in shares {
            for b in shares {
                if a.id() != b.id() {
                    assert_eq!(
                        a.zero_seeds[usize::from(b.id()) - 1],
                        b.zero_seeds[usize::from(a.id()) - 1]
                    );
                }
            }
        }
        let first_t = &all[..usize::from(t)];
        let sum = first_t.iter().fold(ProjectivePoint::IDENTITY, |acc, &i| {
            acc + shares[0].verification_share(i).unwrap() * lagrange_at_zero(first_t, i)
        });
        assert_eq!(sum, pk);
    }

    #[test]
    fn two_of_three_dkg_gives_a_working_key() {
        let shares = run(2, 3, 10, |_, _, _, _| ()).unwrap();
        check_key(&shares, 2);
        check_signs(shares, &[&[1, 2], &[1, 3], &[2, 3]], 11);
    }

    #[test]
    fn three_of_five_dkg_gives_a_working_key() {
        let shares = run(3, 5, 12, |_, _, _, _| ()).unwrap();
        check_key(&shares, 3);
        check_signs(shares, &[&[1, 3, 5], &[2, 3, 4, 5]], 13);
    }

    /// `t = n` is allowed: every party must sign. Kills `t > n` → `t >= n` in `start`.
    #[test]
    fn n_of_n_dkg_gives_a_working_key() {
        let shares = run(3, 3, 15, |_, _, _, _| ()).unwrap();
        check_key(&shares, 3);
        check_signs(shares, &[&[1, 2, 3]], 16);
    }

    #[test]
    fn tampered_share_names_its_dealer() {
        let err = run(2, 3, 14, |tag, from, to, b| {
            if tag == TAG_SHARES && from == 3 && to == 1 {
                b[DIRECT_HEADER + SCALAR_LEN - 1] ^= 1;
            }
        });
        assert_eq!(err.unwrap_err(), Error::BadDkgShare { culprit: 3 });
    }

    #[test]
    fn bad_proof_of_knowledge_names_its_dealer() {
        let err = run(2, 3, 15, |tag, from, _, b| {
            if tag == TAG_BROADCAST && from == 2 {
                *b.last_mut().unwrap() ^= 1;
            }
        });
        assert_eq!(err.unwrap_err(), Error::BadDkgShare { culprit: 2 });
    }

    #[test]
    fn tampered_base_ot_flows_name_their_sender() {
        // Flow 1 (in the share message): the proof of knowledge's `s`, its last byte.
        let err = run(2, 3, 16, |tag, from, to, b| {
            if tag == TAG_SHARES && from == 2 && to == 3 {
                *b.last_mut().unwrap() ^= 1;
            }
        });
        assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 2 });
        // Flow 2: a point of message 2 replaced by garbage.
        let err = run(2, 3, 17, |tag, from, to, b| {
            if tag == 3 && from == 1 && to == 2 {
                b[DIRECT_HEADER + 1..DIRECT_HEADER + 1 + POINT_LEN].fill(0xff);
            }
        });
        assert!(matches!(err, Err(Error::Malformed { culprit: 1, .. })));
        // Flow 4: a response ρ'.
        let err = run(2, 3, 18, |tag, from, to, b| {
            if tag == 5 && from == 3 && to == 1 {
                b[DIRECT_HEADER + 40] ^= 4;
            }
        });
        assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 3 });
        // Flow 5: an opening.
        let err = run(2, 3, 19, |tag, from, to, b| {
            if tag == TAG_LAST && from == 1 && to == 3 {
                *b.last_mut().unwrap() ^= 0x20;
            }
        });
        assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 1 });
    }

    #[test]
    fn differing_confirmation_names_that_party() {
        let err = run(2, 3, 20, |tag, from, to, b| {
            if tag == AT_CONFIRM && from == 3 && to == 2 {
                b[0] ^= 1;
            }
        });
        assert_eq!(err.unwrap_err(), Error::ConfirmationMismatch { culprit: 3 });
    }

    #[test]
    fn distributed_key_share_round_trips_through_bytes() {
        let shares = run(2, 3, 21, |_, _, _, _| ()).unwrap();
        for s in &shares {
            let back = KeyShare::from_bytes(&s.to_bytes()).unwrap();
            assert_eq!(&back, s);
        }
    }

    #[test]
    fn misrouted_duplicated_or_stale_messages_are_refused() {
        // A message of the wrong step (tag relabelled), naming its sender.
        let err = run(2, 3, 22, |tag, from, to, b| {
            if tag == 4 && from == 2 && to == 1 {
                b[0] = 5;
            }
        });
        assert!(matches!(err, Err(Error::Malformed { culprit: 2, .. })));
        // A message addressed to another party.
        let err = run(2, 3, 23, |tag, from, to, b| {
            if tag == 4 && from == 2 && to == 1 {
                b[3] = 3;
            }
        });
        assert!(matches!(err, Err(Error::Malformed { culprit: 2, .. })));
        // Duplicates, missing messages, messages from self or a non-party.
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(24);
        let sid = [3u8; 32];
        let mut ps = Vec::new();
        let mut bs = Vec::new();
        for id in 1..=3 {
            let (p, b) = PartyDkg::start(&accel, id, 2, 3, &sid, &mut rng).unwrap();
            ps.push(p);
            bs.push((id, b));
        }
        let mut dup = bs.clone();
        dup[2] = bs[1].clone();
        assert_eq!(
            ps[0].round2(&accel, &dup, &mut rng).unwrap_err(),
            Error::Malformed {
                culprit: 2,
                what: "duplicate message"
            }
        );
        let mut p1 = PartyDkg::start(&accel, 1, 2, 3, &sid, &mut rng).unwrap();
        let mut bs1 = bs.clone();
        bs1[0].1 = p1.1.clone();
        assert_eq!(
            p1.0.round2(&accel, &bs1[..2], &mut rng).unwrap_err(),
            Error::Malformed {
                culprit: 3,
                what: "missing message"
            }
        );
        // The failed state refuses further calls.
        assert_eq!(
            p1.0.round2(&accel, &bs1, &mut rng).unwrap_err(),
            Error::InvalidParameters("DKG round 2 out of order")
        );
        let mut p2 = PartyDkg::start(&accel, 1, 2, 3, &sid, &mut rng).unwrap();
        let mut extra = bs.clone();
        extra[0].1 = p2.1.clone();
        extra.push((4, bs[1].1.clone()));
        assert_eq!(
            p2.0.round2(&accel, &extra, &mut rng).unwrap_err(),
            Error::InvalidParameters("message from a non-party")
        );
        // A round-2 message from self is refused at the next step.
        let mut outs = Vec::new();
        for p in ps.iter_mut().skip(1) {
            outs.push(p.round2(&accel, &bs, &mut rng).unwrap());
        }
        let mut p3 = PartyDkg::start(&accel, 1, 2, 3, &sid, &mut rng).unwrap();
        let mut own = bs.clone();
        own[0].1 = p3.1.clone();
        let mine = p3.0.round2(&accel, &own, &mut rng).unwrap();
        let mut incoming: Vec<(PartyId, Vec<u8>)> = outs
            .iter()
            .zip(2..)
            .map(|(o, from)| (from, o.iter().find(|m| m.0 == 1).unwrap().1.to_vec()))
            .collect();
        incoming.push((1, mine[0].1.to_vec()));
        assert_eq!(
            p3.0.step(&accel, &incoming, &mut rng).unwrap_err(),
            Error::InvalidParameters("message from self")
        );
        // Parameters are validated.
        for (id, t, n) in [(0, 2, 3), (4, 2, 3), (1, 1, 3), (1, 4, 3)] {
            assert!(matches!(
                PartyDkg::start(&accel, id, t, n, &sid, &mut rng),
                Err(Error::InvalidParameters(_))
            ));
        }
    }
}

/// Assurance test: zeroization of a party's DKG state.
#[cfg(test)]
mod assurance {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// The polynomial, secret, seed contributions and zero seeds are wiped, and dropping the
    /// state runs the wipe. Kills an emptied `PartyDkg::wipe` or `Drop::drop`.
    #[test]
    fn party_dkg_is_wiped_on_drop() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let (mut st, _) = PartyDkg::start(&accel, 1, 2, 3, &[4; 32], &mut rng).unwrap();
        assert!(st.coeffs.iter().all(|c| *c != Scalar::ZERO));
        st.secret = Scalar::from(11u64);
        st.contributions = vec![[5; 32]; 3];
        st.zero_seeds = vec![[6; 32]; 3];
        st.wipe();
        assert!(st.coeffs.iter().all(|c| *c == Scalar::ZERO));
        assert_eq!(st.secret, Scalar::ZERO);
        assert!(st.contributions.iter().flatten().all(|b| *b == 0));
        assert!(st.zero_seeds.iter().flatten().all(|b| *b == 0));
        let before = crate::tests::wipes("PartyDkg");
        drop(st);
        assert_eq!(crate::tests::wipes("PartyDkg"), before + 1);
    }

    /// The confirmation hash changes with each public input it covers, so parties that saw
    /// different transcripts cannot confirm each other. Kills `confirmation` returning a
    /// constant (`[0; 32]`, `[1; 32]`).
    #[test]
    fn confirmation_binds_session_commitments_key_and_verification_shares() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (mut st, _) = PartyDkg::start(&accel, 1, 2, 3, &[4; 32], &mut rng).unwrap();
        let g = ProjectivePoint::GENERATOR;
        st.commitments = vec![vec![g, g + g]; 3];
        st.public_key = g;
        st.verification_shares = vec![g, g + g, g + g + g];
        let base = st.confirmation();
        assert_eq!(st.confirmation(), base, "a hash of the same transcript");

        let mut seen = vec![base];
        let mut record = |st: &PartyDkg| {
            let h = st.confirmation();
            assert!(!seen.contains(&h), "confirmation ignored a change");
            seen.push(h);
        };
        st.session_id[31] ^= 1;
        record(&st);
        st.commitments[2][1] += g;
        record(&st);
        st.public_key += g;
        record(&st);
        st.verification_shares[2] += g;
        record(&st);
    }

    /// `Debug` names the party and its parameters and nothing else; a step's `Debug` lists
    /// recipients, not message bytes. Kills the emptied `Debug` impls of `PartyDkg` and
    /// `DkgStep`.
    #[test]
    fn debug_output_shows_ids_and_never_message_bytes() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let (st, _) = PartyDkg::start(&accel, 2, 2, 3, &[4; 32], &mut rng).unwrap();
        assert_eq!(format!("{st:?}"), "PartyDkg { id: 2, t: 2, n: 3, .. }");
        let send = DkgStep::Send(vec![
            (1, Zeroizing::new(vec![0xab; 8])),
            (3, Zeroizing::new(vec![0xab; 8])),
        ]);
        assert_eq!(format!("{send:?}"), "Send([1, 3])");
        let confirm = DkgStep::Confirm([7; 32]);
        assert_eq!(format!("{confirm:?}"), format!("Confirm({:?})", [7u8; 32]));
    }
}
