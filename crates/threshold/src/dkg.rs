//! Distributed key generation: Pedersen/Feldman VSS with Schnorr proofs of knowledge of each
//! constant term (FROST paper, eprint 2020/852, §5.1 "KeyGen"), private share checks against the
//! commitments, and a confirmation round in which every party broadcasts a hash of the group
//! key and all commitments; all must match.
//!
//! Each round function takes many parties (of one or many DKG sessions) and makes one port call
//! per operation for all of them. Messages are typed; every received point is validated when
//! decoded ([`Round1Package::from_bytes`]).

use core::fmt;
use std::collections::BTreeMap;

use accel_api::{Accelerator, CurveGroup, LincombJob, SchnorrItem};
use rand_core::CryptoRngCore;
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::keys::{
    GroupKey, Identifier, KeySet, KeyShare, PublicKeyPackage, eval_poly, validate_params,
};
use crate::suite::{Point, PointBytes, Scalar, Suite};

/// Round 1 broadcast: commitments `φₖ = aₖ·G` to the polynomial and a proof of knowledge
/// `(R, μ)` of `a₀`.
#[derive(Clone, Debug, PartialEq)]
pub struct Round1Package<S: Suite> {
    pub(crate) commitment: Vec<Point<S>>,
    pub(crate) commitment_enc: Vec<PointBytes>,
    pub(crate) proof_r: Point<S>,
    pub(crate) proof_r_enc: PointBytes,
    pub(crate) proof_mu: Scalar<S>,
}

impl<S: Suite> Round1Package<S> {
    /// `t (u16 BE) ‖ φ₀ … φₜ₋₁ ‖ R ‖ μ`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = (self.commitment.len() as u16).to_be_bytes().to_vec();
        for e in &self.commitment_enc {
            out.extend_from_slice(e.as_bytes());
        }
        out.extend_from_slice(self.proof_r_enc.as_bytes());
        out.extend_from_slice(&S::scalar_to_bytes(&self.proof_mu));
        out
    }
    /// Decodes and validates (every point on the curve, not the identity, prime-order).
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let l = S::POINT_LEN;
        if b.len() < 2 {
            return Err(Error::Malformed("round 1 package"));
        }
        let t = usize::from(u16::from_be_bytes([b[0], b[1]]));
        if t == 0 || b.len() != 2 + (t + 1) * l + 32 {
            return Err(Error::Malformed("round 1 package length"));
        }
        let mut commitment = Vec::with_capacity(t);
        let mut commitment_enc = Vec::with_capacity(t);
        for c in b[2..2 + t * l].chunks_exact(l) {
            commitment.push(S::point_from_bytes(c).ok_or(Error::Malformed("DKG commitment"))?);
            commitment_enc.push(PointBytes::new(c));
        }
        let re = &b[2 + t * l..2 + (t + 1) * l];
        let proof_r = S::point_from_bytes(re).ok_or(Error::Malformed("DKG proof"))?;
        let proof_mu =
            S::scalar_from_bytes(&b[2 + (t + 1) * l..]).ok_or(Error::Malformed("DKG proof"))?;
        Ok(Self {
            commitment,
            commitment_enc,
            proof_r,
            proof_r_enc: PointBytes::new(re),
            proof_mu,
        })
    }
}

/// Round 2 private message: the sender's polynomial evaluated at the recipient. Zeroized on
/// drop, redacted in `Debug`.
#[derive(Clone)]
pub struct Round2Package<S: Suite> {
    pub(crate) share: Scalar<S>,
}

impl<S: Suite> Round2Package<S> {
    /// The 32-byte share encoding (secret: send only over an encrypted channel).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(S::scalar_to_bytes(&self.share))
    }
    /// Decodes a share.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        Ok(Self {
            share: S::scalar_from_bytes(b).ok_or(Error::Malformed("DKG share"))?,
        })
    }
}

impl<S: Suite> Round2Package<S> {
    /// Zeroizes the share (what `Drop` runs).
    fn wipe(&mut self) {
        self.share.zeroize();
        #[cfg(test)]
        crate::probe::note_wipe("Round2Package");
    }
}

impl<S: Suite> Drop for Round2Package<S> {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl<S: Suite> fmt::Debug for Round2Package<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Round2Package(<redacted>)")
    }
}

/// A party's state after round 1 (its polynomial). Zeroized on drop.
pub struct Round1Secret<S: Suite> {
    id: Identifier,
    threshold: u16,
    parties: u16,
    session_id: [u8; 32],
    coeffs: Zeroizing<Vec<Scalar<S>>>,
    package: Round1Package<S>,
}

/// A party's state after round 2. Zeroized on drop.
pub struct Round2Secret<S: Suite> {
    id: Identifier,
    threshold: u16,
    parties: u16,
    session_id: [u8; 32],
    own_share: Round2Package<S>,
    packages: BTreeMap<Identifier, Round1Package<S>>,
}

/// A party's state after round 3, waiting for everyone's confirmation.
pub struct Round3Secret<S: Suite> {
    share: KeyShare<S>,
    public: PublicKeyPackage<S>,
    confirmation: Confirmation,
}

impl<S: Suite> fmt::Debug for Round1Secret<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Round1Secret({}, <redacted>)", self.id)
    }
}
impl<S: Suite> fmt::Debug for Round2Secret<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Round2Secret({}, <redacted>)", self.id)
    }
}
impl<S: Suite> fmt::Debug for Round3Secret<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Round3Secret({}, <redacted>)", self.share.id)
    }
}

/// Round 3 broadcast: SHA-256 over the context, the session id, the group key and every
/// party's commitments.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confirmation(pub [u8; 32]);

/// The protocol context string `Φ` of the proof-of-knowledge challenge.
const POK_CONTEXT: &[u8; 16] = b"tessera/dkg/pok1";

/// The proof-of-knowledge challenge of the FROST paper (eprint 2020/852, §5.1 KeyGen round 1
/// step 2): `c = H_dkg(Φ ‖ session_id ‖ t ‖ n ‖ i ‖ φ_{i0} ‖ R_i)`, with `Φ` =
/// [`POK_CONTEXT`], `t` and `n` 2-byte big-endian, `i` the sender's identifier encoding (all
/// fields fixed-length). `H_dkg` is the suite's DKG hash, which prefixes the ciphersuite
/// context. Binding the session id, the sender and the participant count means a proof
/// replayed into another session, or presented under another identifier, fails.
fn pok_challenge<S: Suite>(
    session_id: &[u8; 32],
    threshold: u16,
    parties: u16,
    id: Identifier,
    phi0: &PointBytes,
    r: &PointBytes,
) -> Scalar<S> {
    S::hdkg(&[
        POK_CONTEXT,
        session_id,
        &threshold.to_be_bytes(),
        &parties.to_be_bytes(),
        &S::identifier_bytes(id.get()),
        phi0.as_bytes(),
        r.as_bytes(),
    ])
}

/// One party's round-1 input: its identifier, the threshold, the number of parties and the
/// 32-byte session id, which all parties of one DKG share and which must be fresh for every
/// DKG (the embedded mode draws it at random).
pub type Part1Params = (Identifier, u16, u16, [u8; 32]);

/// Round 1 for many parties `(identifier, threshold, parties, session_id)`: random
/// polynomials, their commitments and proofs of knowledge (one `mul_base` and one encoding
/// call).
pub fn part1_batch<S: Suite>(
    accel: &dyn Accelerator,
    params: &[Part1Params],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Part1Output<S>>, Error> {
    let mut scalars: Zeroizing<Vec<Scalar<S>>> = Zeroizing::new(Vec::new());
    for (id, t, n, _) in params {
        validate_params(*t, *n)?;
        if id.get() > *n {
            return Err(Error::UnknownIdentifier(id.get()));
        }
        for _ in 0..=*t {
            scalars.push(S::G::random_nonzero_scalar(rng));
        }
    }
    part1_from_scalars(accel, params, &scalars)
}

/// Round 1 from given scalars: for each party in `params` (already validated), its `t`
/// polynomial coefficients and then its proof nonce, in order. [`part1_batch`] draws them; a
/// test may choose them.
fn part1_from_scalars<S: Suite>(
    accel: &dyn Accelerator,
    params: &[Part1Params],
    scalars: &[Scalar<S>],
) -> Result<Vec<Part1Output<S>>, Error> {
    let points = S::G::mul_base(accel, scalars)?;
    let encs = S::encode_batch(accel, &points)?;
    let mut out = Vec::with_capacity(params.len());
    let mut off = 0;
    for (id, t, n, sid) in params {
        let t_ = usize::from(*t);
        let coeffs = Zeroizing::new(scalars[off..off + t_].to_vec());
        let k = scalars[off + t_];
        let commitment_enc = encs[off..off + t_].to_vec();
        let proof_r_enc = encs[off + t_];
        let c = pok_challenge::<S>(sid, *t, *n, *id, &commitment_enc[0], &proof_r_enc);
        let package = Round1Package {
            commitment: points[off..off + t_].to_vec(),
            commitment_enc,
            proof_r: points[off + t_],
            proof_r_enc,
            proof_mu: k + coeffs[0] * c,
        };
        off += t_ + 1;
        out.push((
            Round1Secret {
                id: *id,
                threshold: *t,
                parties: *n,
                session_id: *sid,
                coeffs,
                package: package.clone(),
            },
            package,
        ));
    }
    Ok(out)
}

/// The round-1 output of one party: its state and its broadcast.
pub type Part1Output<S> = (Round1Secret<S>, Round1Package<S>);
/// The round-2 input of one party: its state and the other parties' round-1 broadcasts.
pub type Part2Input<S> = (Round1Secret<S>, BTreeMap<Identifier, Round1Package<S>>);
/// The round-3 input of one party: its state and the private packages sent to it.
pub type Part3Input<S> = (Round2Secret<S>, BTreeMap<Identifier, Round2Package<S>>);
/// The round-3 output of one party: its state and the confirmation to broadcast.
pub type Part3Output<S> = (Round3Secret<S>, Confirmation);

/// The round-2 output of one party: its state and one private package per other party.
pub type Part2Output<S> = (Round2Secret<S>, BTreeMap<Identifier, Round2Package<S>>);

/// Round 2 for many parties: checks every received proof of knowledge (one batched
/// verification call for all) and, if all hold, computes the private shares for the others.
/// Each item is a party's round-1 state and the round-1 packages of all *other* parties.
pub fn part2_batch<S: Suite>(
    accel: &dyn Accelerator,
    items: Vec<Part2Input<S>>,
) -> Vec<Result<Part2Output<S>, Error>> {
    let mut early: Vec<Option<Error>> = Vec::with_capacity(items.len());
    let mut proofs = Vec::new();
    let mut owners = Vec::new();
    for (k, (me, received)) in items.iter().enumerate() {
        let mut err = check_senders(me.id, me.parties, received.keys().copied());
        let bad_len: Vec<u16> = received
            .iter()
            .filter(|(_, p)| p.commitment.len() != usize::from(me.threshold))
            .map(|(i, _)| i.get())
            .collect();
        if err.is_none() && !bad_len.is_empty() {
            err = Some(Error::Culprits(bad_len));
        }
        if err.is_none() {
            for (id, p) in received {
                proofs.push(SchnorrItem {
                    r: p.proof_r,
                    s: p.proof_mu,
                    c: pok_challenge::<S>(
                        &me.session_id,
                        me.threshold,
                        me.parties,
                        *id,
                        &p.commitment_enc[0],
                        &p.proof_r_enc,
                    ),
                    public_key: p.commitment[0],
                });
                owners.push((k, id.get()));
            }
        }
        early.push(err);
    }
    let verdict = match S::G::verify_batch_vartime(accel, &proofs) {
        Ok(v) => v,
        Err(e) => return items.iter().map(|_| Err(Error::Accel(e.clone()))).collect(),
    };
    let mut culprits: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
    for i in &verdict.invalid {
        let (k, id) = owners[*i];
        culprits.entry(k).or_default().push(id);
    }
    items
        .into_iter()
        .enumerate()
        .map(|(k, (me, mut received))| {
            if let Some(e) = early[k].take() {
                return Err(e);
            }
            if let Some(c) = culprits.remove(&k) {
                return Err(Error::Culprits(c));
            }
            let mut out = BTreeMap::new();
            for j in 1..=me.parties {
                let j = Identifier::new(j)?;
                if j != me.id {
                    out.insert(
                        j,
                        Round2Package {
                            share: eval_poly::<S>(&me.coeffs, j),
                        },
                    );
                }
            }
            received.insert(me.id, me.package.clone());
            Ok((
                Round2Secret {
                    id: me.id,
                    threshold: me.threshold,
                    parties: me.parties,
                    session_id: me.session_id,
                    own_share: Round2Package {
                        share: eval_poly::<S>(&me.coeffs, me.id),
                    },
                    packages: received,
                },
                out,
            ))
        })
        .collect()
}

fn check_senders(
    me: Identifier,
    parties: u16,
    senders: impl Iterator<Item = Identifier>,
) -> Option<Error> {
    let mut expected: Vec<u16> = (1..=parties).filter(|j| *j != me.get()).collect();
    for s in senders {
        match expected.iter().position(|e| *e == s.get()) {
            Some(p) => {
                expected.remove(p);
            }
            None => return Some(Error::UnknownIdentifier(s.get())),
        }
    }
    if expected.is_empty() {
        None
    } else {
        Some(Error::WrongSignerCount {
            got: usize::from(parties) - 1 - expected.len(),
            need: usize::from(parties) - 1,
        })
    }
}

/// Round 3 for many parties: checks each received private share against the sender's
/// commitments (one lincomb call for all; failing senders are culprits), derives the signing
/// share, group key and verifying shares (two lincomb calls, one encoding call) and the
/// confirmation hash to broadcast.
pub fn part3_batch<S: Suite>(
    accel: &dyn Accelerator,
    items: Vec<Part3Input<S>>,
) -> Vec<Result<Part3Output<S>, Error>> {
    match part3_inner(accel, items) {
        Ok(r) => r,
        Err((n, e)) => (0..n).map(|_| Err(e.clone())).collect(),
    }
}

type Part3 = (usize, Error);

fn part3_inner<S: Suite>(
    accel: &dyn Accelerator,
    items: Vec<Part3Input<S>>,
) -> Result<Vec<Result<Part3Output<S>, Error>>, Part3> {
    let n_items = items.len();
    let port = |e: accel_api::AccelError| (n_items, Error::Accel(e));
    let mut early: Vec<Option<Error>> = Vec::with_capacity(items.len());
    let mut jobs = Vec::new();
    let mut owners = Vec::new();
    for (k, (me, received)) in items.iter().enumerate() {
        let err = check_senders(me.id, me.parties, received.keys().copied());
        if err.is_none() {
            let x = me.id.to_scalar::<S>();
            for (from, pkg) in received {
                let Some(r1) = me.packages.get(from) else {
                    continue;
                };
                let mut terms = vec![(pkg.share, S::G::generator())];
                let mut pow = S::G::scalar_one();
                for phi in &r1.commitment {
                    terms.push((-pow, *phi));
                    pow = pow * x;
                }
                jobs.push(LincombJob::new(terms));
                owners.push((k, from.get()));
            }
        }
        early.push(err);
    }
    let checks = S::G::lincomb_vartime(accel, &jobs).map_err(port)?;
    let mut culprits: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
    for ((k, id), p) in owners.iter().zip(&checks) {
        if !S::G::is_identity(p) {
            culprits.entry(*k).or_default().push(*id);
        }
    }
    // Summed commitments Φₖ = Σᵢ φᵢₖ per party, then Yⱼ = Σₖ jᵏ·Φₖ and the group key Φ₀.
    let ok: Vec<usize> = (0..items.len())
        .filter(|k| early[*k].is_none() && !culprits.contains_key(k))
        .collect();
    let mut sum_jobs = Vec::new();
    for k in &ok {
        let me = &items[*k].0;
        for c in 0..usize::from(me.threshold) {
            sum_jobs.push(LincombJob::new(
                me.packages
                    .values()
                    .map(|p| (S::G::scalar_one(), p.commitment[c]))
                    .collect(),
            ));
        }
    }
    let sums = S::G::lincomb_vartime(accel, &sum_jobs).map_err(port)?;
    let mut y_jobs = Vec::new();
    let mut off = 0;
    for k in &ok {
        let me = &items[*k].0;
        let t = usize::from(me.threshold);
        let phis = &sums[off..off + t];
        for j in 1..=me.parties {
            let x = S::G::scalar_from_u64(u64::from(j));
            let mut pow = S::G::scalar_one();
            let mut terms = Vec::with_capacity(t);
            for phi in phis {
                terms.push((pow, *phi));
                pow = pow * x;
            }
            y_jobs.push(LincombJob::new(terms));
        }
        y_jobs.push(LincombJob::new(vec![(S::G::scalar_one(), phis[0])]));
        off += t;
    }
    let ys = S::G::lincomb_vartime(accel, &y_jobs).map_err(port)?;
    let encs = S::encode_batch(accel, &ys).map_err(|e| (n_items, e))?;

    let mut out = Vec::with_capacity(items.len());
    let mut off = 0;
    for (k, (me, received)) in items.into_iter().enumerate() {
        if let Some(e) = early[k].take() {
            out.push(Err(e));
            continue;
        }
        if let Some(c) = culprits.remove(&k) {
            out.push(Err(Error::Culprits(c)));
            continue;
        }
        let n = usize::from(me.parties);
        let key_point = ys[off + n];
        if S::G::is_identity(&key_point) {
            out.push(Err(Error::InconsistentKeyShares));
            off += n + 1;
            continue;
        }
        let group_key = GroupKey {
            point: key_point,
            enc: encs[off + n],
        };
        let verifying_shares: Vec<(Identifier, Point<S>, PointBytes)> = (0..n)
            .map(|j| (Identifier(j as u16 + 1), ys[off + j], encs[off + j]))
            .collect();
        let mut secret = me.own_share.share;
        for p in received.values() {
            secret = secret + p.share;
        }
        let mut h = Sha256::new();
        h.update(S::CONTEXT);
        h.update(b"dkg-confirm");
        h.update(me.session_id);
        h.update(group_key.enc.as_bytes());
        for (id, p) in &me.packages {
            h.update(id.get().to_be_bytes());
            for e in &p.commitment_enc {
                h.update(e.as_bytes());
            }
        }
        let confirmation = Confirmation(h.finalize().into());
        let share = KeyShare {
            id: me.id,
            secret,
            verifying_share: ys[off + usize::from(me.id.get()) - 1],
            group_key,
            threshold: me.threshold,
        };
        secret.zeroize();
        off += n + 1;
        out.push(Ok((
            Round3Secret {
                share,
                public: PublicKeyPackage {
                    group_key,
                    verifying_shares,
                    threshold: me.threshold,
                },
                confirmation,
            },
            confirmation,
        )));
    }
    Ok(out)
}

/// Confirmation round: every other party's confirmation must equal ours; those that differ
/// (or are missing) are named as culprits.
pub fn finish<S: Suite>(
    state: Round3Secret<S>,
    confirmations: &BTreeMap<Identifier, Confirmation>,
) -> Result<(KeyShare<S>, PublicKeyPackage<S>), Error> {
    let bad: Vec<u16> = (1..=state.public.parties())
        .filter(|j| *j != state.share.id.get())
        .filter(|j| {
            Identifier::new(*j)
                .ok()
                .and_then(|id| confirmations.get(&id))
                != Some(&state.confirmation)
        })
        .collect();
    if !bad.is_empty() {
        return Err(Error::Culprits(bad));
    }
    Ok((state.share.clone(), state.public.clone()))
}

/// Runs the whole DKG for `parties` local parties (the embedded mode).
pub(crate) fn run_local<S: Suite>(
    accel: &dyn Accelerator,
    threshold: u16,
    parties: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet<S>, Error> {
    validate_params(threshold, parties)?;
    let ids: Vec<Identifier> = (1..=parties).map(Identifier).collect();
    let mut session_id = [0u8; 32];
    rng.fill_bytes(&mut session_id);
    let params: Vec<_> = ids
        .iter()
        .map(|i| (*i, threshold, parties, session_id))
        .collect();
    let r1 = part1_batch::<S>(accel, &params, rng)?;
    let packages: BTreeMap<Identifier, Round1Package<S>> =
        r1.iter().map(|(s, p)| (s.id, p.clone())).collect();
    let items: Vec<_> = r1
        .into_iter()
        .map(|(s, _)| {
            let others = packages
                .iter()
                .filter(|(i, _)| **i != s.id)
                .map(|(i, p)| (*i, p.clone()))
                .collect();
            (s, others)
        })
        .collect();
    let r2 = part2_batch::<S>(accel, items)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let mut inbox: BTreeMap<Identifier, BTreeMap<Identifier, Round2Package<S>>> = BTreeMap::new();
    let mut states = Vec::with_capacity(r2.len());
    for (state, out) in r2 {
        for (to, pkg) in out {
            inbox.entry(to).or_default().insert(state.id, pkg);
        }
        states.push(state);
    }
    let items: Vec<_> = states
        .into_iter()
        .map(|s| {
            let r = inbox.remove(&s.id).unwrap_or_default();
            (s, r)
        })
        .collect();
    let r3 = part3_batch::<S>(accel, items)
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    let confirmations: BTreeMap<Identifier, Confirmation> =
        r3.iter().map(|(s, c)| (s.share.id, *c)).collect();
    let mut shares = Vec::with_capacity(r3.len());
    let mut public = None;
    for (state, _) in r3 {
        let (share, pk) = finish(state, &confirmations)?;
        shares.push(share);
        public = Some(pk);
    }
    let public = public.ok_or(Error::ZeroThreshold)?;
    Ok(KeySet { shares, public })
}

/// Assurance tests for the DKG: the share message's wipe, round-1 decoding and round-3 batches
/// (see `docs/assurance.md`).
#[cfg(test)]
mod assurance {
    use super::*;
    use crate::Secp256k1Tr;

    /// `wipe` zeroizes the share and dropping the package runs it. Kills the emptied
    /// `Round2Package::wipe` and `Drop for Round2Package`.
    #[test]
    fn round2_package_is_wiped_on_drop() {
        let one = <Secp256k1Tr as Suite>::G::scalar_one();
        let enc = <Secp256k1Tr as Suite>::scalar_to_bytes(&one);
        let mut p = Round2Package::<Secp256k1Tr>::from_bytes(&enc).unwrap();
        assert_eq!(*p.to_bytes(), enc);
        p.wipe();
        assert_eq!(p.share, <Secp256k1Tr as Suite>::G::scalar_zero());
        let q = Round2Package::<Secp256k1Tr>::from_bytes(&enc).unwrap();
        let before = crate::probe::wipes("Round2Package");
        drop(q);
        assert_eq!(crate::probe::wipes("Round2Package"), before + 1);
    }

    type Tr = Secp256k1Tr;
    type G = <Tr as Suite>::G;

    /// The round-3 inputs of both parties of a 2-of-2 DKG in session `sid` whose parties
    /// use the scalars `[a₀, a₁, k]` each.
    fn two_party_session(
        accel: &dyn Accelerator,
        sid: u8,
        scalars: [[Scalar<Tr>; 3]; 2],
    ) -> Vec<Part3Input<Tr>> {
        let params: Vec<Part1Params> = (1..=2).map(|i| (Identifier(i), 2, 2, [sid; 32])).collect();
        let r1 = part1_from_scalars::<Tr>(accel, &params, scalars.as_flattened()).unwrap();
        let pkgs: BTreeMap<Identifier, Round1Package<Tr>> =
            r1.iter().map(|(st, p)| (st.id, p.clone())).collect();
        let items = r1
            .into_iter()
            .map(|(st, _)| {
                let others = pkgs
                    .iter()
                    .filter(|(i, _)| **i != st.id)
                    .map(|(i, p)| (*i, p.clone()))
                    .collect();
                (st, others)
            })
            .collect();
        let mut inbox: BTreeMap<Identifier, BTreeMap<Identifier, Round2Package<Tr>>> =
            BTreeMap::new();
        let mut states = Vec::new();
        for r in part2_batch::<Tr>(accel, items) {
            let (st, out) = r.unwrap();
            for (to, pkg) in out {
                inbox.entry(to).or_default().insert(st.id, pkg);
            }
            states.push(st);
        }
        states
            .into_iter()
            .map(|st| {
                let received = inbox.remove(&st.id).unwrap();
                (st, received)
            })
            .collect()
    }

    /// One round-3 batch mixing three 2-of-2 DKGs: A, whose constant terms cancel (group key
    /// the identity: refused); a party of C given no shares (refused early); and the parties
    /// of B and C after them. Each of those gets its own session's group key, so the batch's
    /// offsets stay aligned past refused items. Kills `&&` → `||` in the choice of items to
    /// sum, `off += t` → `*=` in the key jobs and the mutants of `off += n + 1` after an
    /// identity key.
    #[test]
    fn round3_batch_refuses_bad_items_and_keeps_the_rest_aligned() {
        let accel = backend_cpu::CpuBackend::new();
        let x = G::scalar_from_u64;
        let a = two_party_session(&accel, 1, [[x(5), x(7), x(11)], [-x(5), x(13), x(17)]]);
        let b = two_party_session(&accel, 2, [[x(3), x(4), x(9)], [x(6), x(8), x(10)]]);
        let c = two_party_session(&accel, 3, [[x(2), x(3), x(5)], [x(21), x(22), x(23)]]);
        let key = |v: u64| G::mul_base(&accel, &[x(v)]).unwrap()[0];
        let (key_b, key_c) = (key(9), key(23));
        let [a1, a2] = <[_; 2]>::try_from(a).ok().unwrap();
        let [b1, b2] = <[_; 2]>::try_from(b).ok().unwrap();
        let [c1, (c2, _)] = <[_; 2]>::try_from(c).ok().unwrap();
        let items = vec![a1, (c2, BTreeMap::new()), b1, a2, c1, b2];
        let got: Vec<Result<Point<Tr>, Error>> = part3_batch::<Tr>(&accel, items)
            .into_iter()
            .map(|r| r.map(|(st, _)| st.share.group_key.point))
            .collect();
        assert_eq!(
            got,
            vec![
                Err(Error::InconsistentKeyShares),
                Err(Error::WrongSignerCount { got: 0, need: 1 }),
                Ok(key_b),
                Err(Error::InconsistentKeyShares),
                Ok(key_c),
                Ok(key_b),
            ]
        );
    }

    /// A round-1 package needs its 2-byte threshold, then exactly `t + 1` points and a
    /// scalar: two bytes alone fail on the length. Kills `b.len() < 2` → `<=` in
    /// `Round1Package::from_bytes`.
    #[test]
    fn round1_package_lengths_are_checked() {
        type P = Round1Package<Secp256k1Tr>;
        assert_eq!(P::from_bytes(&[]), Err(Error::Malformed("round 1 package")));
        assert_eq!(
            P::from_bytes(&[0]),
            Err(Error::Malformed("round 1 package"))
        );
        assert_eq!(
            P::from_bytes(&[0, 2]),
            Err(Error::Malformed("round 1 package length"))
        );
        assert_eq!(
            P::from_bytes(&[0, 0]),
            Err(Error::Malformed("round 1 package length"))
        );
    }
}
