//! The embedded deployment: all `n` parties run in one process (the service's single-node
//! mode). Every party's checks still run; messages are passed in memory.

use core::sync::atomic::{AtomicU64, Ordering};

use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::Zeroize;

use accel_api::{Accelerator, CurveGroup, LincombJob, Secp256k1};

use crate::dkg::{DkgContext, Pok, pok_challenge, verify_poks};
use crate::error::Error;
use crate::hash::Tr;
use crate::keygen::{KeySet, KeyShare, PairSetup, PartyId};
use crate::sign::{self, PartyPresignature};

/// A presignature for a fixed signer set: every signer's [`PartyPresignature`]. Single use
/// (consumed by [`sign()`]), in memory only, zeroized on drop.
pub struct Presignature {
    parts: Vec<PartyPresignature>,
}

impl core::fmt::Debug for Presignature {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let ids: Vec<PartyId> = self.parts.iter().map(PartyPresignature::id).collect();
        f.debug_struct("Presignature")
            .field("signers", &ids)
            .finish_non_exhaustive()
    }
}

impl Presignature {
    /// The signer ids.
    pub fn signers(&self) -> Vec<PartyId> {
        self.parts.iter().map(PartyPresignature::id).collect()
    }
}

/// Feldman-VSS key generation for `n` parties with threshold `t` (any `t` can sign), with a
/// Schnorr proof of knowledge of each dealer's constant term, pairwise zero-sharing seeds,
/// and pairwise base OT (both directions) for every pair. A fresh 32-byte session id is drawn
/// from `rng` for each run and bound into every proof of knowledge.
pub fn dkg(
    accel: &dyn Accelerator,
    t: u16,
    n: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet, Error> {
    dkg_for(accel, t, n, &every_party(n), rng)
}

/// [`dkg`] with pairwise base OT only among `signers`, the signer set the caller will use:
/// with `t` of `n` signers that is `t(t−1)/2` pairs instead of `n(n−1)/2` (a third of the work
/// and of the OT state for 2-of-3). Another signer set gets its pairs' base OT from
/// [`ready_pairs`] (which [`presign_batch`] runs) the first time it presigns.
pub fn dkg_for(
    accel: &dyn Accelerator,
    t: u16,
    n: u16,
    signers: &[PartyId],
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet, Error> {
    if t < 2 || t > n {
        return Err(Error::InvalidParameters("need 2 <= t <= n"));
    }
    let (tu, nu) = (usize::from(t), usize::from(n));
    let mut ctx = DkgContext {
        session_id: [0u8; 32],
        t,
        n,
    };
    rng.fill_bytes(&mut ctx.session_id);
    // Dealers' polynomials, commitments and proofs.
    let mut coeffs: Vec<Scalar> = (0..nu * tu)
        .map(|_| Secp256k1::random_scalar(rng))
        .collect();
    let mut nonces: Vec<Scalar> = (0..nu)
        .map(|_| Secp256k1::random_nonzero_scalar(rng))
        .collect();
    let mut all = coeffs.clone();
    all.extend_from_slice(&nonces);
    let pts = Secp256k1::mul_base(accel, &all)?;
    all.zeroize();
    let commits: Vec<&[ProjectivePoint]> = (0..nu).map(|i| &pts[i * tu..(i + 1) * tu]).collect();
    let mut proofs = Vec::with_capacity(nu);
    for i in 0..nu {
        let id = (i + 1) as PartyId;
        let r = pts[nu * tu + i];
        let c = pok_challenge(&ctx, id, &commits[i][0], &r);
        proofs.push(Pok {
            id,
            c0: commits[i][0],
            r,
            s: nonces[i] + c * coeffs[i * tu],
        });
    }
    nonces.zeroize();
    // Every receiver checks the proofs.
    if let Err(e) = verify_poks(accel, &ctx, &proofs) {
        coeffs.zeroize();
        return Err(e);
    }
    // Shares f_i(j) and their Feldman checks.
    let eval = |i: usize, j: usize| {
        let x = Scalar::from(j as u64);
        coeffs[i * tu..(i + 1) * tu]
            .iter()
            .rev()
            .fold(Scalar::ZERO, |acc, a| acc * x + a)
    };
    let mut shares: Vec<Scalar> = Vec::with_capacity(nu * nu);
    let mut jobs = Vec::with_capacity(nu * nu);
    for (i, commit) in commits.iter().enumerate() {
        for j in 1..=nu {
            shares.push(eval(i, j));
            let x = Scalar::from(j as u64);
            let mut p = Scalar::ONE;
            let mut terms = Vec::with_capacity(tu);
            for c in commit.iter() {
                terms.push((p, *c));
                p *= x;
            }
            jobs.push(LincombJob::new(terms));
        }
    }
    coeffs.zeroize();
    let expect = Secp256k1::lincomb_vartime(accel, &jobs)?;
    let got = Secp256k1::mul_base(accel, &shares)?;
    for (k, (a, b)) in expect.iter().zip(&got).enumerate() {
        if a != b {
            return Err(Error::BadDkgShare {
                culprit: (k / nu + 1) as PartyId,
            });
        }
    }
    let public_key = commits
        .iter()
        .fold(ProjectivePoint::IDENTITY, |a, c| a + c[0]);
    let verification_shares: Vec<ProjectivePoint> = (0..nu)
        .map(|j| (0..nu).fold(ProjectivePoint::IDENTITY, |a, i| a + expect[i * nu + j]))
        .collect();
    let secrets: Vec<Scalar> = (0..nu)
        .map(|j| (0..nu).fold(Scalar::ZERO, |a, i| a + shares[i * nu + j]))
        .collect();
    shares.zeroize();
    assemble(
        accel,
        t,
        secrets,
        public_key,
        verification_shares,
        signers,
        rng,
    )
}

/// Parties `1..=n`.
fn every_party(n: u16) -> Vec<PartyId> {
    (1..=n).collect()
}

/// Splits an existing secret key (a 32-byte big-endian scalar, nonzero and below the group
/// order) among `n` parties with threshold `t` (trusted dealer: the key exists in this process
/// while it is split), then sets up zero-sharing seeds and pairwise base OT as [`dkg`] does.
/// Used to migrate an existing ECDSA key (e.g. an Ethereum account) into the appliance.
pub fn import(
    accel: &dyn Accelerator,
    secret: &[u8; 32],
    t: u16,
    n: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet, Error> {
    use k256::elliptic_curve::PrimeField;
    if t < 2 || t > n {
        return Err(Error::InvalidParameters("need 2 <= t <= n"));
    }
    let key: Option<Scalar> = Scalar::from_repr((*secret).into()).into();
    let mut key = match key {
        Some(k) if !bool::from(k.is_zero()) => k,
        _ => {
            return Err(Error::InvalidParameters(
                "secret key is zero or not below the group order",
            ));
        }
    };
    let (tu, nu) = (usize::from(t), usize::from(n));
    let mut coeffs: Vec<Scalar> = Vec::with_capacity(tu);
    coeffs.push(key);
    key.zeroize();
    coeffs.extend((1..tu).map(|_| Secp256k1::random_scalar(rng)));
    let mut secrets: Vec<Scalar> = (1..=nu)
        .map(|j| {
            let x = Scalar::from(j as u64);
            coeffs.iter().rev().fold(Scalar::ZERO, |acc, a| acc * x + a)
        })
        .collect();
    let mut points = secrets.clone();
    points.push(coeffs[0]);
    coeffs.zeroize();
    let pts = match Secp256k1::mul_base(accel, &points) {
        Ok(p) => p,
        Err(e) => {
            points.zeroize();
            secrets.zeroize();
            return Err(e.into());
        }
    };
    points.zeroize();
    let public_key = pts[nu];
    assemble(
        accel,
        t,
        secrets,
        public_key,
        pts[..nu].to_vec(),
        &every_party(n),
        rng,
    )
}

/// Builds the key set from each party's secret share (consumed and zeroized), drawing the
/// pairwise zero-sharing seeds for every pair and running base OT for each pair of `signers`.
fn assemble(
    accel: &dyn Accelerator,
    t: u16,
    mut secrets: Vec<Scalar>,
    public_key: ProjectivePoint,
    verification_shares: Vec<ProjectivePoint>,
    signers: &[PartyId],
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet, Error> {
    let nu = secrets.len();
    let n = nu as u16;
    let mut seeds = vec![[0u8; 32]; nu * nu];
    for i in 0..nu {
        for j in i + 1..nu {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            seeds[i * nu + j] = s;
            seeds[j * nu + i] = s;
            s.zeroize();
        }
    }
    let mut key_shares = Vec::with_capacity(nu);
    for (j, secret) in secrets.iter().enumerate() {
        key_shares.push(KeyShare {
            id: (j + 1) as PartyId,
            t,
            n,
            secret: *secret,
            public_key,
            verification_shares: verification_shares.clone(),
            zero_seeds: seeds[j * nu..(j + 1) * nu].to_vec(),
            ot: vec![None; nu],
        });
    }
    secrets.zeroize();
    seeds.zeroize();
    let mut set = KeySet { shares: key_shares };
    ready_pairs(accel, &mut set, signers, rng)?;
    Ok(set)
}

/// Runs a fresh pairwise base OT (both directions) between parties `a` and `b` and installs
/// it in both shares.
pub fn refresh_pair(
    accel: &dyn Accelerator,
    set: &mut KeySet,
    a: PartyId,
    b: PartyId,
    rng: &mut impl CryptoRngCore,
) -> Result<(), Error> {
    let (ka, kb) = match (set.share(a), set.share(b)) {
        (Some(x), Some(y)) if a != b => (x, y),
        _ => return Err(Error::InvalidParameters("party ids out of range")),
    };
    let pk = ka.public_key;
    if kb.public_key != pk {
        return Err(Error::InvalidParameters("shares of different keys"));
    }
    let (mut sa, mut ma) = PairSetup::start(accel, &pk, a, b, rng)?;
    let (mut sb, mut mb) = PairSetup::start(accel, &pk, b, a, rng)?;
    for _ in 2..=5 {
        let next_a = sa.step(accel, &mb, rng)?;
        let next_b = sb.step(accel, &ma, rng)?;
        (ma, mb) = (next_a, next_b);
    }
    let ot_a = sa.finish(&mb)?;
    let ot_b = sb.finish(&ma)?;
    set.shares[usize::from(a) - 1].install_pair(ot_a)?;
    set.shares[usize::from(b) - 1].install_pair(ot_b)?;
    Ok(())
}

/// Runs rounds 1–2 for the signer set `count` times, first re-running base OT for any
/// signer pair whose OT state was discarded after a failed check.
pub fn presign_batch(
    accel: &dyn Accelerator,
    set: &mut KeySet,
    signers: &[PartyId],
    count: usize,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Presignature>, Error> {
    ready_pairs(accel, set, signers, rng)?;
    let mut out = Vec::with_capacity(count);
    let mut left = count;
    while left > 0 {
        let n = left.min(PRESIGN_LOCKSTEP);
        out.extend(presign_sessions(accel, set, signers, n, rng)?);
        left -= n;
    }
    Ok(out)
}

/// Re-runs base OT for every pair of `signers` without OT state (discarded after a failed
/// check, or never set up: [`dkg_for`]), what [`presign_batch`] does first, so that a copy of
/// the set taken afterwards can presign without changing anything but discards
/// ([`KeySet::absorb_discards`]). Returns whether it ran any (the set changed: a caller that
/// stores it should store it again).
pub fn ready_pairs(
    accel: &dyn Accelerator,
    set: &mut KeySet,
    signers: &[PartyId],
    rng: &mut impl CryptoRngCore,
) -> Result<bool, Error> {
    let n = set.parties();
    if signers.iter().any(|&p| p == 0 || p > n) {
        return Err(Error::InvalidParameters("signer id out of range"));
    }
    let mut ran = false;
    for (k, &a) in signers.iter().enumerate() {
        for &b in &signers[k + 1..] {
            let ready = set.shares[usize::from(a) - 1].pair_ready(b)
                && set.shares[usize::from(b) - 1].pair_ready(a);
            if a != b && !ready {
                refresh_pair(accel, set, a, b, rng)?;
                ran = true;
            }
        }
    }
    Ok(ran)
}

/// Presigning sessions run in lockstep by [`presign_batch`]: each party's rounds for all of
/// them at once, so the port sees one batch of points per party and round. Bounds the
/// messages held at once (about 64 KiB per session and pair).
const PRESIGN_LOCKSTEP: usize = 32;

/// Presignatures started by this process so far: an input of every embedded session id, so
/// that session ids (and with them the hedged nonces) differ within one process even when
/// the RNG repeats its output.
static PRESIGN_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh presigning session id: `H(32 random bytes ‖ process-wide counter)`.
fn presign_session_id(rng: &mut impl CryptoRngCore) -> [u8; 32] {
    let mut fresh = [0u8; 32];
    rng.fill_bytes(&mut fresh);
    let sid = Tr::new("embedded/presign-sid")
        .bytes(&fresh)
        .u64(PRESIGN_COUNTER.fetch_add(1, Ordering::Relaxed))
        .finish();
    fresh.zeroize();
    sid
}

/// Index of `p` in `signers` (messages are only ever addressed to signers).
fn slot(signers: &[PartyId], p: PartyId) -> Result<usize, Error> {
    signers
        .iter()
        .position(|&q| q == p)
        .ok_or(Error::InvalidParameters("message to a non-signer"))
}

/// Splits one party's per-session outputs into its next states and the recipients' inboxes
/// (`inbox[recipient][session]`).
fn route<S, M>(
    out: Vec<(S, Vec<M>)>,
    signers: &[PartyId],
    inbox: &mut [Vec<Vec<M>>],
    to: impl Fn(&M) -> PartyId,
) -> Result<Vec<S>, Error> {
    let mut states = Vec::with_capacity(out.len());
    for (s, (st, msgs)) in out.into_iter().enumerate() {
        states.push(st);
        for m in msgs {
            inbox[slot(signers, to(&m))?][s].push(m);
        }
    }
    Ok(states)
}

fn presign_sessions(
    accel: &dyn Accelerator,
    set: &mut KeySet,
    signers: &[PartyId],
    count: usize,
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Presignature>, Error> {
    let session_ids: Vec<[u8; 32]> = (0..count).map(|_| presign_session_id(rng)).collect();
    // inbox[recipient][session]: the messages addressed to that signer in that session.
    let mut st1 = Vec::with_capacity(signers.len());
    let mut inbox1: Vec<Vec<Vec<sign::Round1Msg>>> = vec![vec![Vec::new(); count]; signers.len()];
    for &p in signers {
        let share = &set.shares[usize::from(p) - 1];
        let out = sign::start_batch(accel, share, signers, &session_ids, rng)?;
        st1.push(route(out, signers, &mut inbox1, |m| m.to)?);
    }
    let mut st2 = Vec::with_capacity(signers.len());
    let mut inbox2: Vec<Vec<Vec<sign::Round2Msg>>> = vec![vec![Vec::new(); count]; signers.len()];
    for ((states, &p), mine) in st1.into_iter().zip(signers).zip(&inbox1) {
        let mine: Vec<&[sign::Round1Msg]> = mine.iter().map(Vec::as_slice).collect();
        let share = &mut set.shares[usize::from(p) - 1];
        let out = sign::SignRound1::round2_batch(states, accel, share, &mine, rng)?;
        st2.push(route(out, signers, &mut inbox2, |m| m.to)?);
    }
    drop(inbox1);
    let mut parts: Vec<Vec<PartyPresignature>> = (0..count).map(|_| Vec::new()).collect();
    for ((states, &p), mine) in st2.into_iter().zip(signers).zip(&inbox2) {
        let mine: Vec<&[sign::Round2Msg]> = mine.iter().map(Vec::as_slice).collect();
        let share = &mut set.shares[usize::from(p) - 1];
        for (s, part) in sign::SignRound2::presign_batch(states, accel, share, &mine)?
            .into_iter()
            .enumerate()
        {
            parts[s].push(part);
        }
    }
    Ok(parts
        .into_iter()
        .map(|parts| Presignature { parts })
        .collect())
}

/// The online round: every signer's share for `prehash`, combined into a low-S `r‖s` and
/// the recovery id (0 or 1). Consumes the presignature.
///
/// ```
/// use dkls23::embedded;
/// use rand_core::SeedableRng;
/// let accel = backend_cpu::CpuBackend::new();
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let mut set = embedded::dkg(&accel, 2, 3, &mut rng)?;
/// let pre = embedded::presign_batch(&accel, &mut set, &[1, 3], 1, &mut rng)?.remove(0);
/// let (sig, recovery_id) = embedded::sign(&accel, &set, pre, &[7; 32])?;
/// assert!(recovery_id <= 1 && sig.len() == 64);
/// # Ok::<(), dkls23::Error>(())
/// ```
///
/// A presignature cannot be used twice: `sign` takes it by value (error E0382, use of a
/// moved value).
///
/// ```compile_fail,E0382
/// use dkls23::embedded;
/// use rand_core::SeedableRng;
/// let accel = backend_cpu::CpuBackend::new();
/// let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(1);
/// let mut set = embedded::dkg(&accel, 2, 3, &mut rng)?;
/// let pre = embedded::presign_batch(&accel, &mut set, &[1, 3], 1, &mut rng)?.remove(0);
/// let first = embedded::sign(&accel, &set, pre, &[7; 32])?;
/// let second = embedded::sign(&accel, &set, pre, &[8; 32])?;
/// # Ok::<(), dkls23::Error>(())
/// ```
pub fn sign(
    accel: &dyn Accelerator,
    set: &KeySet,
    presignature: Presignature,
    prehash: &[u8; 32],
) -> Result<([u8; 64], u8), Error> {
    if presignature
        .parts
        .first()
        .map(PartyPresignature::public_key)
        != Some(set.shares[0].public_key)
    {
        return Err(Error::InvalidParameters(
            "presignature belongs to another key",
        ));
    }
    sign_presigned(accel, presignature, prehash)
}

/// [`sign_presigned`] for many presignatures and prehashes, with every signature's
/// verification in one call to the port; each gets its own result.
pub fn sign_presigned_batch(
    accel: &dyn Accelerator,
    items: Vec<(Presignature, [u8; 32])>,
) -> Vec<Result<([u8; 64], u8), Error>> {
    let mut shares = Vec::with_capacity(items.len());
    for (presignature, prehash) in items {
        let Presignature { mut parts } = presignature;
        let Some(first) = parts.first() else {
            shares.push(None);
            continue;
        };
        let (big_r, pk) = (first.big_r(), first.public_key());
        let msgs: Vec<_> = parts.drain(..).map(|p| p.sign(&prehash)).collect();
        shares.push(Some((pk, big_r, prehash, msgs)));
    }
    let items: Vec<sign::CombineItem<'_>> = shares
        .iter()
        .flatten()
        .map(|(pk, r, h, m)| (*pk, *r, *h, m.as_slice()))
        .collect();
    let mut combined = sign::combine_batch(accel, &items).into_iter();
    shares
        .iter()
        .map(|r| match r {
            Some(_) => combined.next().unwrap_or(Err(Error::InvalidSignature)),
            None => Err(Error::InvalidParameters("empty presignature")),
        })
        .collect()
}

/// The online round for a presignature alone (it carries the group public key it was made
/// for): what a signing service runs without locking the key set, which presigning mutates.
/// Consumes the presignature.
pub fn sign_presigned(
    accel: &dyn Accelerator,
    presignature: Presignature,
    prehash: &[u8; 32],
) -> Result<([u8; 64], u8), Error> {
    sign_presigned_batch(accel, vec![(presignature, *prehash)])
        .pop()
        .ok_or(Error::InvalidSignature)?
}
