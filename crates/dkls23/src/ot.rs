//! Oblivious transfer: the Verified Simplest OT base OT (DKLs18, eprint 2018/499, Protocol 7;
//! a random OT, κ instances in parallel) run once per ordered pair at key creation, and KOS OT extension (eprint 2015/546) with its GF(2^128)
//! correlation check, run per signing session from the stored base-OT seeds.
//!
//! Roles: the *extension sender* (Alice in the multiplication) is the base-OT **receiver** with
//! choice bits Δ; the *extension receiver* (Bob) is the base-OT **sender** holding both seeds.

use std::sync::OnceLock;

use aes::Aes256Enc;
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use accel_api::{Accelerator, CurveGroup, SchnorrItem, Secp256k1};

use crate::codec::{POINT_LEN, R, SCALAR_LEN, W, encode_points};
use crate::error::Error;
use crate::hash::{Tr, aes_ctr, aes_ctr_with, aes_key, bulk_digest};

/// Number of base OTs (computational security parameter κ).
pub const KAPPA: usize = 128;
/// Number of extended OTs consumed by one multiplication (ξ = 256 + 2·80, DKLs19 §3).
pub const XI: usize = 416;
/// Number of extended OTs including the KOS padding (≥ ξ + κ + 64), a multiple of 128.
pub const M: usize = 640;
const M_BYTES: usize = M / 8;

/// The extension receiver's base-OT outputs: both seeds of every base OT.
#[derive(Clone)]
pub struct ExtReceiverSeeds {
    pub(crate) seeds: Vec<[[u8; 32]; 2]>,
    /// The KOS PRG's expanded AES keys for `seeds`, made on first use: the sessions presigned
    /// on one copy of a key set (a lockstep batch) expand each seed once.
    prgs: OnceLock<Vec<[Aes256Enc; 2]>>,
}

/// The extension sender's base-OT outputs: its choice bits Δ and the chosen seeds.
#[derive(Clone)]
pub struct ExtSenderSeeds {
    pub(crate) delta: u128,
    pub(crate) seeds: Vec<[u8; 32]>,
    /// The KOS PRG's expanded AES keys for `seeds`, as for [`ExtReceiverSeeds`].
    prgs: OnceLock<Vec<Aes256Enc>>,
}

impl PartialEq for ExtReceiverSeeds {
    fn eq(&self, other: &Self) -> bool {
        self.seeds == other.seeds
    }
}
impl Eq for ExtReceiverSeeds {}
impl PartialEq for ExtSenderSeeds {
    fn eq(&self, other: &Self) -> bool {
        self.delta == other.delta && self.seeds == other.seeds
    }
}
impl Eq for ExtSenderSeeds {}

impl ExtReceiverSeeds {
    /// Both seeds of every base OT.
    pub(crate) fn new(seeds: Vec<[[u8; 32]; 2]>) -> Self {
        Self {
            seeds,
            prgs: OnceLock::new(),
        }
    }
    /// The PRG keys of both seeds of every base OT, expanded on first use.
    fn prgs(&self) -> &[[Aes256Enc; 2]] {
        self.prgs.get_or_init(|| {
            self.seeds
                .iter()
                .map(|[s0, s1]| [aes_key(s0), aes_key(s1)])
                .collect()
        })
    }
    /// Drops the expanded keys (wiped on drop); they are made again on next use.
    pub(crate) fn forget_prgs(&mut self) {
        self.prgs.take();
    }
    /// Whether the expanded keys are held (for tests).
    #[cfg(test)]
    pub(crate) fn holds_prgs(&self) -> bool {
        self.prgs.get().is_some()
    }
    /// Zeroizes both seeds of every base OT and drops their expanded keys (run on drop).
    fn wipe(&mut self) {
        self.seeds.zeroize();
        self.forget_prgs();
        #[cfg(test)]
        crate::tests::note_wipe("ExtReceiverSeeds");
    }
}
impl ExtSenderSeeds {
    /// Δ and the chosen seeds.
    pub(crate) fn new(delta: u128, seeds: Vec<[u8; 32]>) -> Self {
        Self {
            delta,
            seeds,
            prgs: OnceLock::new(),
        }
    }
    /// The PRG keys of the chosen seeds, expanded on first use.
    fn prgs(&self) -> &[Aes256Enc] {
        self.prgs
            .get_or_init(|| self.seeds.iter().map(aes_key).collect())
    }
    /// Drops the expanded keys (wiped on drop); they are made again on next use.
    pub(crate) fn forget_prgs(&mut self) {
        self.prgs.take();
    }
    /// Whether the expanded keys are held (for tests).
    #[cfg(test)]
    pub(crate) fn holds_prgs(&self) -> bool {
        self.prgs.get().is_some()
    }
    /// Zeroizes Δ and the chosen seeds and drops their expanded keys (run on drop).
    fn wipe(&mut self) {
        self.delta.zeroize();
        self.seeds.zeroize();
        self.forget_prgs();
        #[cfg(test)]
        crate::tests::note_wipe("ExtSenderSeeds");
    }
}
impl Drop for ExtReceiverSeeds {
    fn drop(&mut self) {
        self.wipe();
    }
}
impl Drop for ExtSenderSeeds {
    fn drop(&mut self) {
        self.wipe();
    }
}
impl core::fmt::Debug for ExtReceiverSeeds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ExtReceiverSeeds(<redacted>)")
    }
}
impl core::fmt::Debug for ExtSenderSeeds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ExtSenderSeeds(<redacted>)")
    }
}

/// Byte length of a VSOT hash output (seeds, challenges, responses, openings).
const H_LEN: usize = 32;

/// `ρ^b_l = H(ctx, l, B, A_l, DH)`: the seed of base OT `l`, over the points' SEC1
/// encodings (made in batches by [`encode_points`], one field inversion for all).
fn vsot_seed(
    ctx: &[u8; 32],
    l: usize,
    big_b: &[u8; POINT_LEN],
    big_a: &[u8; POINT_LEN],
    dh: &[u8; POINT_LEN],
) -> [u8; H_LEN] {
    Tr::new("base-ot/vsot/seed")
        .bytes(ctx)
        .u64(l as u64)
        .encoded_point(big_b)
        .encoded_point(big_a)
        .encoded_point(dh)
        .finish()
}

/// `H'(x)`, bound to the pair context and the instance index.
fn h1(ctx: &[u8; 32], l: usize, x: &[u8; H_LEN]) -> [u8; H_LEN] {
    Tr::new("base-ot/vsot/h-prime")
        .bytes(ctx)
        .u64(l as u64)
        .bytes(x)
        .finish()
}

/// `H''(x) = H'(H'(x))`.
fn h2(ctx: &[u8; 32], l: usize, x: &[u8; H_LEN]) -> [u8; H_LEN] {
    h1(ctx, l, &h1(ctx, l, x))
}

/// The Fiat–Shamir challenge of the sender's proof of knowledge of `b`.
fn vsot_pok_challenge(ctx: &[u8; 32], big_b: &ProjectivePoint, r: &ProjectivePoint) -> Scalar {
    Tr::new("base-ot/vsot/pok")
        .bytes(ctx)
        .point(big_b)
        .point(r)
        .finish_scalar()
}

fn xor(a: &[u8; H_LEN], b: &[u8; H_LEN]) -> [u8; H_LEN] {
    let mut out = [0u8; H_LEN];
    for (o, (x, y)) in out.iter_mut().zip(a.iter().zip(b)) {
        *o = x ^ y;
    }
    out
}

/// `b ? y : x` byte-wise, in constant time.
fn select(x: &[u8; H_LEN], y: &[u8; H_LEN], b: Choice) -> [u8; H_LEN] {
    let mut out = [0u8; H_LEN];
    for (o, (p, q)) in out.iter_mut().zip(x.iter().zip(y)) {
        *o = u8::conditional_select(p, q, b);
    }
    out
}

/// Bit `l` of `delta` as a [`Choice`].
fn bit(delta: u128, l: usize) -> Choice {
    Choice::from(((delta >> l) & 1) as u8)
}

fn malformed(peer: u16, what: &'static str) -> Error {
    Error::Malformed {
        culprit: peer,
        what,
    }
}

/// Checks that `bytes` has exactly `len` bytes.
fn exact_len(bytes: &[u8], len: usize, peer: u16) -> Result<R<'_>, Error> {
    if bytes.len() == len {
        Ok(R(bytes))
    } else {
        Err(malformed(peer, "base OT message length"))
    }
}

/// Reads a point that must not be the identity.
fn read_point(r: &mut R<'_>, peer: u16) -> Result<ProjectivePoint, Error> {
    let p = r
        .point()
        .map_err(|_| malformed(peer, "invalid point in base OT"))?;
    if Secp256k1::is_identity(&p) {
        return Err(malformed(peer, "identity point in base OT"));
    }
    Ok(p)
}

fn read_hashes(r: &mut R<'_>, peer: u16) -> Result<Vec<[u8; H_LEN]>, Error> {
    let mut out = vec![[0u8; H_LEN]; KAPPA];
    for h in out.iter_mut() {
        r.fill(h)
            .map_err(|_| malformed(peer, "base OT message length"))?;
    }
    Ok(out)
}

/// Encodes a public message (the zeroizing writer buffer is moved out as a plain vector).
fn public_bytes(w: W) -> Vec<u8> {
    let mut z = w.finish();
    core::mem::take(&mut *z)
}

/// VSOT message 1 (base-OT sender → receiver): `B = b·G` and a Schnorr proof of knowledge
/// of `b`.
#[derive(Clone, Debug, PartialEq)]
pub struct VsotMsg1 {
    big_b: ProjectivePoint,
    r: ProjectivePoint,
    s: Scalar,
}

/// VSOT message 2 (receiver → sender): `A_l = a_l·G + Δ_l·B` for every base OT.
#[derive(Clone, Debug, PartialEq)]
pub struct VsotMsg2 {
    big_a: Vec<ProjectivePoint>,
}

/// VSOT message 3 (sender → receiver): the challenges `ξ_l = H''(ρ⁰_l) ⊕ H''(ρ¹_l)`.
#[derive(Clone, Debug, PartialEq)]
pub struct VsotMsg3 {
    xi: Vec<[u8; H_LEN]>,
}

/// VSOT message 4 (receiver → sender): the responses `ρ'_l = H''(ρ^{Δ_l}_l) ⊕ Δ_l·ξ_l`.
#[derive(Clone, Debug, PartialEq)]
pub struct VsotMsg4 {
    response: Vec<[u8; H_LEN]>,
}

/// VSOT message 5 (sender → receiver): the openings `(H'(ρ⁰_l), H'(ρ¹_l))`.
#[derive(Clone, Debug, PartialEq)]
pub struct VsotMsg5 {
    openings: Vec<[[u8; H_LEN]; 2]>,
}

impl VsotMsg1 {
    /// Encoded length.
    pub const LEN: usize = 2 * POINT_LEN + SCALAR_LEN;
    /// Encodes `B ‖ R ‖ s`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(Self::LEN);
        w.point(&self.big_b);
        w.point(&self.r);
        w.scalar(&self.s);
        public_bytes(w)
    }
    /// Decodes a message from `peer` (wrong length, invalid or identity points and
    /// non-canonical scalars are [`Error::Malformed`] naming `peer`).
    pub fn from_bytes(bytes: &[u8], peer: u16) -> Result<Self, Error> {
        let mut r = exact_len(bytes, Self::LEN, peer)?;
        let big_b = read_point(&mut r, peer)?;
        let rr = read_point(&mut r, peer)?;
        let s = r
            .scalar()
            .map_err(|_| malformed(peer, "non-canonical scalar in base OT"))?;
        Ok(VsotMsg1 { big_b, r: rr, s })
    }
}

impl VsotMsg2 {
    /// Encoded length.
    pub const LEN: usize = KAPPA * POINT_LEN;
    /// Encodes the κ points `A_l`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(Self::LEN);
        for p in encode_points(&self.big_a) {
            w.bytes(&p);
        }
        public_bytes(w)
    }
    /// Decodes a message from `peer` (wrong length, invalid or identity points are
    /// [`Error::Malformed`] naming `peer`).
    pub fn from_bytes(bytes: &[u8], peer: u16) -> Result<Self, Error> {
        let mut r = exact_len(bytes, Self::LEN, peer)?;
        let big_a = (0..KAPPA)
            .map(|_| read_point(&mut r, peer))
            .collect::<Result<_, _>>()?;
        Ok(VsotMsg2 { big_a })
    }
}

impl VsotMsg3 {
    /// Encoded length.
    pub const LEN: usize = KAPPA * H_LEN;
    /// Encodes the κ challenges.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(Self::LEN);
        for h in &self.xi {
            w.bytes(h);
        }
        public_bytes(w)
    }
    /// Decodes a message from `peer` (wrong length is [`Error::Malformed`] naming `peer`).
    pub fn from_bytes(bytes: &[u8], peer: u16) -> Result<Self, Error> {
        let mut r = exact_len(bytes, Self::LEN, peer)?;
        Ok(VsotMsg3 {
            xi: read_hashes(&mut r, peer)?,
        })
    }
}

impl VsotMsg4 {
    /// Encoded length.
    pub const LEN: usize = KAPPA * H_LEN;
    /// Encodes the κ responses.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(Self::LEN);
        for h in &self.response {
            w.bytes(h);
        }
        public_bytes(w)
    }
    /// Decodes a message from `peer` (wrong length is [`Error::Malformed`] naming `peer`).
    pub fn from_bytes(bytes: &[u8], peer: u16) -> Result<Self, Error> {
        let mut r = exact_len(bytes, Self::LEN, peer)?;
        Ok(VsotMsg4 {
            response: read_hashes(&mut r, peer)?,
        })
    }
}

impl VsotMsg5 {
    /// Encoded length.
    pub const LEN: usize = KAPPA * 2 * H_LEN;
    /// Encodes the κ pairs of openings.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut w = W::with_len(Self::LEN);
        for [o0, o1] in &self.openings {
            w.bytes(o0);
            w.bytes(o1);
        }
        public_bytes(w)
    }
    /// Decodes a message from `peer` (wrong length is [`Error::Malformed`] naming `peer`).
    pub fn from_bytes(bytes: &[u8], peer: u16) -> Result<Self, Error> {
        let mut r = exact_len(bytes, Self::LEN, peer)?;
        let mut openings = vec![[[0u8; H_LEN]; 2]; KAPPA];
        for [o0, o1] in openings.iter_mut() {
            r.fill(o0)
                .and_then(|()| r.fill(o1))
                .map_err(|_| malformed(peer, "base OT message length"))?;
        }
        Ok(VsotMsg5 { openings })
    }
}

/// VSOT sender (the extension receiver, Bob) after message 1: the secret `b` with `B = b·G`.
pub struct VsotSender {
    b: Scalar,
    big_b: ProjectivePoint,
    ctx: [u8; 32],
}

/// VSOT sender after message 3: both seeds of every base OT, waiting for the responses.
pub struct VsotSenderChallenged {
    seeds: ExtReceiverSeeds,
    ctx: [u8; 32],
}

/// VSOT receiver (the extension sender, Alice) after message 2: Δ and the chosen seeds.
pub struct VsotReceiver {
    seeds: ExtSenderSeeds,
    ctx: [u8; 32],
}

/// VSOT receiver after message 4: Δ, the chosen seeds and the sender's challenges.
pub struct VsotReceiverAnswered {
    seeds: ExtSenderSeeds,
    xi: Vec<[u8; H_LEN]>,
    ctx: [u8; 32],
}

impl VsotSender {
    /// Zeroizes the secret `b` (run on drop).
    fn wipe(&mut self) {
        self.b.zeroize();
        #[cfg(test)]
        crate::tests::note_wipe("VsotSender");
    }
}
impl Drop for VsotSender {
    fn drop(&mut self) {
        self.wipe();
    }
}

macro_rules! redacted_debug {
    ($($t:ident),*) => {$(
        impl core::fmt::Debug for $t {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(concat!(stringify!($t), "(<redacted>)"))
            }
        }
    )*};
}
redacted_debug!(
    VsotSender,
    VsotSenderChallenged,
    VsotReceiver,
    VsotReceiverAnswered
);

impl VsotSender {
    /// Step 1: draws `b`, `B = b·G` and a Schnorr proof of knowledge of `b` (challenge
    /// `H(ctx, B, R)`); `ctx` must name the ordered pair and the key.
    pub fn new(
        accel: &dyn Accelerator,
        ctx: [u8; 32],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, VsotMsg1), Error> {
        let mut b = Secp256k1::random_nonzero_scalar(rng);
        let mut k = Secp256k1::random_nonzero_scalar(rng);
        let pts = match Secp256k1::mul_base(accel, &[b, k]) {
            Ok(p) => p,
            Err(e) => {
                b.zeroize();
                k.zeroize();
                return Err(e.into());
            }
        };
        let (big_b, r) = (pts[0], pts[1]);
        let c = vsot_pok_challenge(&ctx, &big_b, &r);
        let s = k + c * b;
        k.zeroize();
        let sender = VsotSender { b, big_b, ctx };
        b.zeroize();
        Ok((sender, VsotMsg1 { big_b, r, s }))
    }

    /// Step 3: derives both seeds `ρ⁰_l = H(ctx, l, B, A_l, b·A_l)`,
    /// `ρ¹_l = H(ctx, l, B, A_l, b·(A_l − B))` and the challenges
    /// `ξ_l = H''(ρ⁰_l) ⊕ H''(ρ¹_l)`. An identity `A_l` is [`Error::Malformed`] naming `peer`.
    pub fn challenge(
        self,
        msg: &VsotMsg2,
        peer: u16,
    ) -> Result<(VsotSenderChallenged, VsotMsg3), Error> {
        if msg.big_a.len() != KAPPA {
            return Err(malformed(peer, "base OT message length"));
        }
        if msg.big_a.iter().any(Secp256k1::is_identity) {
            return Err(malformed(peer, "identity point in base OT"));
        }
        let bb = self.big_b * self.b;
        // Per instance: A_l, b·A_l and b·(A_l − B), encoded together after B.
        let mut points = Vec::with_capacity(1 + 3 * KAPPA);
        points.push(self.big_b);
        for a in &msg.big_a {
            let ba = *a * self.b;
            points.extend([*a, ba, ba - bb]);
        }
        let mut enc = encode_points(&points);
        points.zeroize();
        let big_b = enc[0];
        let mut seeds = Vec::with_capacity(KAPPA);
        let mut xi = Vec::with_capacity(KAPPA);
        for (l, e) in enc[1..].chunks_exact(3).enumerate() {
            let pair = [
                vsot_seed(&self.ctx, l, &big_b, &e[0], &e[1]),
                vsot_seed(&self.ctx, l, &big_b, &e[0], &e[2]),
            ];
            xi.push(xor(
                &h2(&self.ctx, l, &pair[0]),
                &h2(&self.ctx, l, &pair[1]),
            ));
            seeds.push(pair);
        }
        enc.zeroize();
        Ok((
            VsotSenderChallenged {
                seeds: ExtReceiverSeeds::new(seeds),
                ctx: self.ctx,
            },
            VsotMsg3 { xi },
        ))
    }
}

impl VsotSenderChallenged {
    /// Step 5: checks every response `ρ'_l == H''(ρ⁰_l)` (constant time; a failure is
    /// [`Error::BaseOtCheck`] naming `peer`), then returns both seeds of every base OT and the
    /// openings `(H'(ρ⁰_l), H'(ρ¹_l))`.
    pub fn open(self, msg: &VsotMsg4, peer: u16) -> Result<(ExtReceiverSeeds, VsotMsg5), Error> {
        if msg.response.len() != KAPPA {
            return Err(malformed(peer, "base OT message length"));
        }
        let mut ok = Choice::from(1);
        let mut openings = Vec::with_capacity(KAPPA);
        for (l, (pair, resp)) in self.seeds.seeds.iter().zip(&msg.response).enumerate() {
            let o0 = h1(&self.ctx, l, &pair[0]);
            ok &= h1(&self.ctx, l, &o0).ct_eq(resp);
            openings.push([o0, h1(&self.ctx, l, &pair[1])]);
        }
        if !bool::from(ok) {
            return Err(Error::BaseOtCheck { culprit: peer });
        }
        Ok((self.seeds, VsotMsg5 { openings }))
    }
}

impl VsotReceiver {
    /// Step 2: verifies the sender's proof of knowledge (a failure is
    /// [`Error::BaseOtCheck`] naming `peer`, an identity `B` [`Error::Malformed`]), draws fresh
    /// random choice bits Δ and answers with `A_l = a_l·G + Δ_l·B`, keeping
    /// `ρ^{Δ_l}_l = H(ctx, l, B, A_l, a_l·B)`.
    pub fn new(
        accel: &dyn Accelerator,
        ctx: [u8; 32],
        msg: &VsotMsg1,
        peer: u16,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, VsotMsg2), Error> {
        if Secp256k1::is_identity(&msg.big_b) || Secp256k1::is_identity(&msg.r) {
            return Err(malformed(peer, "identity point in base OT"));
        }
        let item = SchnorrItem {
            r: msg.r,
            s: msg.s,
            c: vsot_pok_challenge(&ctx, &msg.big_b, &msg.r),
            public_key: msg.big_b,
        };
        if !Secp256k1::verify_batch_vartime(accel, &[item])?
            .invalid
            .is_empty()
        {
            return Err(Error::BaseOtCheck { culprit: peer });
        }
        let mut db = [0u8; 16];
        rng.fill_bytes(&mut db);
        let mut seeds = ExtSenderSeeds::new(u128::from_le_bytes(db), Vec::with_capacity(KAPPA));
        db.zeroize();
        let mut a: Vec<Scalar> = (0..KAPPA)
            .map(|_| Secp256k1::random_nonzero_scalar(rng))
            .collect();
        let ag = match Secp256k1::mul_base(accel, &a) {
            Ok(p) => p,
            Err(e) => {
                a.zeroize();
                return Err(e.into());
            }
        };
        // Per instance: A_l and a_l·B, encoded together after B.
        let mut big_a = Vec::with_capacity(KAPPA);
        let mut points = Vec::with_capacity(1 + 2 * KAPPA);
        points.push(msg.big_b);
        for (l, (al, alg)) in a.iter().zip(&ag).enumerate() {
            let p =
                ProjectivePoint::conditional_select(alg, &(*alg + msg.big_b), bit(seeds.delta, l));
            points.extend([p, msg.big_b * al]);
            big_a.push(p);
        }
        let mut enc = encode_points(&points);
        points.zeroize();
        let big_b = enc[0];
        for (l, e) in enc[1..].chunks_exact(2).enumerate() {
            seeds.seeds.push(vsot_seed(&ctx, l, &big_b, &e[0], &e[1]));
        }
        enc.zeroize();
        a.zeroize();
        Ok((VsotReceiver { seeds, ctx }, VsotMsg2 { big_a }))
    }

    /// Step 4: answers the challenges with `ρ'_l = H''(ρ^{Δ_l}_l) ⊕ Δ_l·ξ_l` (constant time).
    pub fn respond(
        self,
        msg: &VsotMsg3,
        peer: u16,
    ) -> Result<(VsotReceiverAnswered, VsotMsg4), Error> {
        if msg.xi.len() != KAPPA {
            return Err(malformed(peer, "base OT message length"));
        }
        let zero = [0u8; H_LEN];
        let response = self
            .seeds
            .seeds
            .iter()
            .zip(&msg.xi)
            .enumerate()
            .map(|(l, (seed, xi))| {
                xor(
                    &h2(&self.ctx, l, seed),
                    &select(&zero, xi, bit(self.seeds.delta, l)),
                )
            })
            .collect();
        Ok((
            VsotReceiverAnswered {
                seeds: self.seeds,
                xi: msg.xi.clone(),
                ctx: self.ctx,
            },
            VsotMsg4 { response },
        ))
    }
}

impl VsotReceiverAnswered {
    /// Step 6: checks, for every base OT, that `H'(ρ^{Δ_l}_l)` equals the opening of its
    /// choice and that `ξ_l == H'(open⁰_l) ⊕ H'(open¹_l)` (constant time, one verdict for all
    /// instances; a failure is [`Error::BaseOtCheck`] naming `peer`), and returns Δ and the
    /// chosen seeds.
    pub fn finish(self, msg: &VsotMsg5, peer: u16) -> Result<ExtSenderSeeds, Error> {
        if msg.openings.len() != KAPPA {
            return Err(malformed(peer, "base OT message length"));
        }
        let mut ok = Choice::from(1);
        for (l, ((seed, xi), [o0, o1])) in self
            .seeds
            .seeds
            .iter()
            .zip(&self.xi)
            .zip(&msg.openings)
            .enumerate()
        {
            let mine = select(o0, o1, bit(self.seeds.delta, l));
            ok &= h1(&self.ctx, l, seed).ct_eq(&mine);
            ok &= xor(&h1(&self.ctx, l, o0), &h1(&self.ctx, l, o1)).ct_eq(xi);
        }
        if !bool::from(ok) {
            return Err(Error::BaseOtCheck { culprit: peer });
        }
        Ok(self.seeds)
    }
}

/// Carry-less 128×128 → 256-bit multiplication, constant time.
fn clmul(a: u128, b: u128) -> (u128, u128) {
    let mut lo = 0u128;
    let mut hi = 0u128;
    for i in 0..128 {
        let mask = 0u128.wrapping_sub((b >> i) & 1);
        lo ^= (a << i) & mask;
        if i > 0 {
            hi ^= (a >> (128 - i)) & mask;
        }
    }
    (lo, hi)
}

/// Reduction modulo x^128 + x^7 + x^2 + x + 1.
fn reduce(lo: u128, hi: u128) -> u128 {
    let over = (hi >> 127) ^ (hi >> 126) ^ (hi >> 121);
    let h = hi ^ over;
    lo ^ h ^ (h << 1) ^ (h << 2) ^ (h << 7)
}

fn gf_mul(a: u128, b: u128) -> u128 {
    let (lo, hi) = clmul(a, b);
    reduce(lo, hi)
}

/// The KOS message from the extension receiver (Bob) to the extension sender (Alice).
#[derive(Clone, Debug, PartialEq)]
pub struct KosMsg {
    /// Bob's fresh per-session PRG nonce.
    pub nonce: [u8; 32],
    /// The κ columns `u_l = G(k0_l) ⊕ G(k1_l) ⊕ x`, `M/8` bytes each.
    pub u: Vec<[u8; M_BYTES]>,
    /// Correlation check value x̃ = Σ x_j·χ_j.
    pub x_check: u128,
    /// Correlation check value t̃ = Σ t_j·χ_j.
    pub t_check: u128,
}

/// The per-session counter base of the KOS PRG: `H(ctx ‖ nonce)` read as a 128-bit integer, so
/// every session under a seed uses its own counter blocks.
fn prg_iv(ctx: &[u8; 32], nonce: &[u8; 32]) -> u128 {
    let h = Tr::new("kos/prg-iv").bytes(ctx).bytes(nonce).finish();
    let mut b = [0u8; 16];
    b.copy_from_slice(&h[..16]);
    u128::from_le_bytes(b)
}

/// The KOS PRG `G(seed)`: `M/8` bytes of AES-256-CTR keyed by the base-OT seed (`key`, its
/// expanded AES key), from the session's counter base (see `prg_iv`).
fn prg(key: &Aes256Enc, iv: u128) -> [u8; M_BYTES] {
    let mut out = [0u8; M_BYTES];
    aes_ctr_with(key, iv, &mut out);
    out
}

/// Transposes the κ columns (bit `j` of column `l` is byte `j/8`, bit `j%8`) into `M` rows
/// (bit `l` of row `j`), 128 × 128 bits at a time.
fn transpose(cols: &[[u8; M_BYTES]]) -> Vec<u128> {
    debug_assert_eq!(cols.len(), KAPPA);
    let mut rows = vec![0u128; M];
    let mut a = [0u128; KAPPA];
    for (b, out) in rows.chunks_exact_mut(KAPPA).enumerate() {
        for (x, col) in a.iter_mut().zip(cols) {
            let mut w = [0u8; 16];
            w.copy_from_slice(&col[16 * b..16 * b + 16]);
            *x = u128::from_le_bytes(w);
            w.zeroize();
        }
        transpose128(&mut a);
        out.copy_from_slice(&a);
    }
    a.zeroize();
    rows
}

/// In-place transpose of a 128 × 128 bit matrix (`a[i]` bit `c` is entry `(i, c)`): at each
/// level `s` the off-diagonal `s × s` blocks swap, entry `(i, c + s)` with `(i + s, c)`.
/// Data-independent: the same shifts and masks whatever the bits.
fn transpose128(a: &mut [u128; 128]) {
    let mut s = 64;
    let mut m = u128::from(u64::MAX);
    while s > 0 {
        for i in 0..128 {
            if i & s == 0 {
                let t = ((a[i] >> s) ^ a[i + s]) & m;
                a[i + s] ^= t;
                a[i] ^= t << s;
            }
        }
        s >>= 1;
        m ^= m << s;
    }
}

/// `Σ_j rows_j · chi_j` in GF(2^128), for secret rows and public coefficients. For each 4-bit
/// window `i` of the coefficients there are 16 buckets; row `j` is added into bucket
/// `chi_j`'s window `i` of every window (public indices only, 32 additions per row). At the
/// end window `i`'s buckets are weighted by their small polynomials (bucket `k` times `k`,
/// as one sum per bit of `k`) and shifted into place, and the sum is reduced once.
fn mul_sum_public(rows: &[u128], chi: &[u128]) -> u128 {
    let mut buckets = [[0u128; 16]; 32];
    for (&r, &c) in rows.iter().zip(chi) {
        for (i, b) in buckets.iter_mut().enumerate() {
            b[((c >> (4 * i)) & 15) as usize] ^= r;
        }
    }
    let (mut lo, mut hi) = (0u128, 0u128);
    for (i, b) in buckets.iter().enumerate() {
        for bit in 0..4 {
            let mut s = (1..16)
                .filter(|k| (k >> bit) & 1 == 1)
                .fold(0u128, |acc, k| acc ^ b[k]);
            let shift = 4 * i + bit;
            lo ^= s << shift;
            if shift > 0 {
                hi ^= s >> (128 - shift);
            }
            s.zeroize();
        }
    }
    buckets.zeroize();
    reduce(lo, hi)
}

/// The KOS check coefficients `chi_j`: AES-256-CTR under a digest of the pair context, the
/// nonce and every column (all of the same length), one 128-bit block per extended OT.
fn chis(ctx: &[u8; 32], msg_nonce: &[u8; 32], u: &[[u8; M_BYTES]]) -> Vec<u128> {
    let seed = bulk_digest(
        "tessera/dkls23/kos/chi",
        &[ctx, msg_nonce],
        u.as_flattened(),
    );
    let mut stream = vec![0u8; 16 * M];
    aes_ctr(&seed, 0, &mut stream);
    stream
        .chunks_exact(16)
        .map(|b| {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            u128::from_le_bytes(a)
        })
        .collect()
}

/// Bob's secret extension state: the rows `t_j` and choice bits for the first ξ OTs.
pub(crate) struct KosReceiverOut {
    pub(crate) rows: Vec<u128>,
}
impl KosReceiverOut {
    /// Zeroizes the rows `t_j` (run on drop).
    fn wipe(&mut self) {
        self.rows.zeroize();
        #[cfg(test)]
        crate::tests::note_wipe("KosReceiverOut");
    }
}
impl Drop for KosReceiverOut {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Extension receiver (Bob): extends to `M` OTs with the first ξ choice bits `choices`
/// (each 0 or 1) and random padding bits, and computes the KOS check values.
pub(crate) fn kos_receive(
    seeds: &ExtReceiverSeeds,
    ctx: &[u8; 32],
    choices: &[u8],
    rng: &mut impl CryptoRngCore,
) -> (KosMsg, KosReceiverOut) {
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let mut x = [0u8; M_BYTES];
    rng.fill_bytes(&mut x[XI / 8..]);
    for (j, c) in choices.iter().enumerate().take(XI) {
        x[j / 8] |= (c & 1) << (j % 8);
    }
    let iv = prg_iv(ctx, &nonce);
    let mut t0 = Vec::with_capacity(KAPPA);
    let mut u = Vec::with_capacity(KAPPA);
    for [k0, k1] in seeds.prgs() {
        let a = prg(k0, iv);
        let mut b = prg(k1, iv);
        let mut col = [0u8; M_BYTES];
        for i in 0..M_BYTES {
            col[i] = a[i] ^ b[i] ^ x[i];
        }
        b.zeroize();
        t0.push(a);
        u.push(col);
    }
    let rows = transpose(&t0);
    t0.zeroize();
    let chi = chis(ctx, &nonce, &u);
    let mut x_check = 0u128;
    for (j, c) in chi.iter().enumerate() {
        let mask = 0u128.wrapping_sub(((x[j / 8] >> (j % 8)) & 1) as u128);
        x_check ^= c & mask;
    }
    x.zeroize();
    let t_check = mul_sum_public(&rows, &chi);
    (
        KosMsg {
            nonce,
            u,
            x_check,
            t_check,
        },
        KosReceiverOut { rows },
    )
}

/// Extension sender (Alice): checks Bob's correlation and returns the rows `q_j = t_j ⊕ x_j·Δ`
/// for the first ξ OTs. A failed check names `peer` as culprit.
pub(crate) fn kos_send(
    seeds: &ExtSenderSeeds,
    ctx: &[u8; 32],
    msg: &KosMsg,
    peer: u16,
) -> Result<Vec<u128>, Error> {
    if msg.u.len() != KAPPA {
        return Err(Error::Malformed {
            culprit: peer,
            what: "KOS message length",
        });
    }
    let iv = prg_iv(ctx, &msg.nonce);
    let mut q = Vec::with_capacity(KAPPA);
    for (l, key) in seeds.prgs().iter().enumerate() {
        let g = prg(key, iv);
        let mask = 0u8.wrapping_sub(((seeds.delta >> l) & 1) as u8);
        let mut col = [0u8; M_BYTES];
        for i in 0..M_BYTES {
            col[i] = g[i] ^ (msg.u[l][i] & mask);
        }
        q.push(col);
    }
    let mut rows = transpose(&q);
    q.zeroize();
    let chi = chis(ctx, &msg.nonce, &msg.u);
    let q_check = mul_sum_public(&rows, &chi);
    let expect = msg.t_check ^ gf_mul(msg.x_check, seeds.delta);
    if !bool::from(q_check.ct_eq(&expect)) {
        rows.zeroize();
        return Err(Error::OtConsistency { culprit: peer });
    }
    rows.truncate(XI);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn gf128_mul_is_field_multiplication() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..20 {
            let a = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            let b = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            let c = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            assert_eq!(gf_mul(a, b), gf_mul(b, a));
            assert_eq!(gf_mul(a, b ^ c), gf_mul(a, b) ^ gf_mul(a, c));
            assert_eq!(gf_mul(gf_mul(a, b), c), gf_mul(a, gf_mul(b, c)));
            assert_eq!(gf_mul(a, 1), a);
        }
        // x^127 · x = x^128 = x^7 + x^2 + x + 1
        assert_eq!(gf_mul(1u128 << 127, 2), 0x87);
    }

    /// Runs VSOT between an honest sender and receiver, letting `tamper` change each message
    /// (by its number) on the wire.
    fn vsot(
        tamper: impl Fn(u8, &mut Vec<u8>),
    ) -> Result<(ExtSenderSeeds, ExtReceiverSeeds), Error> {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let ctx = [7u8; 32];
        // Party 2 is the VSOT sender, party 1 the receiver.
        let wire = |k: u8, b: Vec<u8>| {
            let mut b = b;
            tamper(k, &mut b);
            b
        };
        let (snd, m1) = VsotSender::new(&accel, ctx, &mut rng)?;
        let m1 = VsotMsg1::from_bytes(&wire(1, m1.to_bytes()), 2)?;
        let (rcv, m2) = VsotReceiver::new(&accel, ctx, &m1, 2, &mut rng)?;
        let m2 = VsotMsg2::from_bytes(&wire(2, m2.to_bytes()), 1)?;
        let (snd, m3) = snd.challenge(&m2, 1)?;
        let m3 = VsotMsg3::from_bytes(&wire(3, m3.to_bytes()), 2)?;
        let (rcv, m4) = rcv.respond(&m3, 2)?;
        let m4 = VsotMsg4::from_bytes(&wire(4, m4.to_bytes()), 1)?;
        let (bob, m5) = snd.open(&m4, 1)?;
        let m5 = VsotMsg5::from_bytes(&wire(5, m5.to_bytes()), 2)?;
        let alice = rcv.finish(&m5, 2)?;
        Ok((alice, bob))
    }

    #[test]
    fn vsot_gives_the_chosen_seeds() {
        let (alice, bob) = vsot(|_, _| ()).unwrap();
        assert_eq!(alice.seeds.len(), KAPPA);
        assert_eq!(bob.seeds.len(), KAPPA);
        for l in 0..KAPPA {
            let bit = ((alice.delta >> l) & 1) as usize;
            assert_eq!(alice.seeds[l], bob.seeds[l][bit]);
            assert_ne!(alice.seeds[l], bob.seeds[l][1 - bit]);
        }
    }

    /// The seeds hash each point's own SEC1 encoding: batch encoding changes nothing on the
    /// wire or in the seeds (nodes built before it interoperate), the identity included
    /// (`A_l = B` makes `b·(A_l − B)` the identity).
    #[test]
    fn vsot_seeds_hash_each_point_encoded_alone() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(9);
        let ctx = [3u8; 32];
        let (snd, m1) = VsotSender::new(&accel, ctx, &mut rng).unwrap();
        let (rcv, mut m2) = VsotReceiver::new(&accel, ctx, &m1, 2, &mut rng).unwrap();
        let one_by_one: Vec<u8> = m2
            .big_a
            .iter()
            .flat_map(k256::elliptic_curve::group::GroupEncoding::to_bytes)
            .collect();
        assert_eq!(m2.to_bytes(), one_by_one);
        m2.big_a[5] = m1.big_b;
        let b = snd.b;
        let big_b = snd.big_b;
        let (challenged, _) = snd.challenge(&m2, 1).unwrap();
        for (l, a) in m2.big_a.iter().enumerate() {
            let seed = |dh: &ProjectivePoint| {
                Tr::new("base-ot/vsot/seed")
                    .bytes(&ctx)
                    .u64(l as u64)
                    .point(&big_b)
                    .point(a)
                    .point(dh)
                    .finish()
            };
            let pair = &challenged.seeds.seeds[l];
            assert_eq!(pair[0], seed(&(*a * b)));
            assert_eq!(pair[1], seed(&((*a - big_b) * b)));
        }
        assert_eq!(
            challenged.seeds.seeds[5][1],
            Tr::new("base-ot/vsot/seed")
                .bytes(&ctx)
                .u64(5)
                .point(&big_b)
                .point(&big_b)
                .encoded_point(&[0u8; POINT_LEN])
                .finish()
        );
        for (l, chosen) in rcv.seeds.seeds.iter().enumerate() {
            let bit = ((rcv.seeds.delta >> l) & 1) as usize;
            if l != 5 {
                assert_eq!(chosen, &challenged.seeds.seeds[l][bit]);
            }
        }
    }

    #[test]
    fn vsot_bad_proof_of_knowledge_names_sender() {
        // Flip a bit of s (the last byte of message 1).
        let err = vsot(|k, b| {
            if k == 1 {
                *b.last_mut().unwrap() ^= 1;
            }
        });
        assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 2 });
        // A proof for another B (B replaced by R) fails too.
        let err = vsot(|k, b| {
            if k == 1 {
                let r = b[POINT_LEN..2 * POINT_LEN].to_vec();
                b[..POINT_LEN].copy_from_slice(&r);
            }
        });
        assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 2 });
    }

    #[test]
    fn vsot_identity_points_name_their_sender() {
        let err = vsot(|k, b| {
            if k == 1 {
                b[..POINT_LEN].fill(0);
            }
        });
        assert!(matches!(err, Err(Error::Malformed { culprit: 2, .. })));
        let err = vsot(|k, b| {
            if k == 2 {
                b[5 * POINT_LEN..6 * POINT_LEN].fill(0);
            }
        });
        assert!(matches!(err, Err(Error::Malformed { culprit: 1, .. })));
        // The in-memory messages are checked too.
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let (snd, mut m1) = VsotSender::new(&accel, [1; 32], &mut rng).unwrap();
        let (_, mut m2) = VsotReceiver::new(&accel, [1; 32], &m1, 2, &mut rng).unwrap();
        m2.big_a[3] = ProjectivePoint::IDENTITY;
        assert!(matches!(
            snd.challenge(&m2, 1),
            Err(Error::Malformed { culprit: 1, .. })
        ));
        m1.big_b = ProjectivePoint::IDENTITY;
        assert!(matches!(
            VsotReceiver::new(&accel, [1; 32], &m1, 2, &mut rng),
            Err(Error::Malformed { culprit: 2, .. })
        ));
    }

    #[test]
    fn vsot_flipped_challenge_response_or_opening_names_the_peer() {
        let (honest, _) = vsot(|_, _| ()).unwrap();
        // Tampering never changes the receiver's Δ (same RNG seed, drawn before message 3).
        let ones = (0..KAPPA).filter(|&l| (honest.delta >> l) & 1 == 1);
        let zeros = (0..KAPPA).filter(|&l| (honest.delta >> l) & 1 == 0);
        let picks: Vec<usize> = ones.take(2).chain(zeros.take(2)).collect();
        assert_eq!(picks.len(), 4);
        for l in picks {
            // A flipped ξ_l: with Δ_l = 1 the response no longer matches H''(ρ⁰_l) (the
            // sender's check, naming the receiver); with Δ_l = 0 the openings no longer add
            // up to ξ_l (the receiver's check, naming the sender).
            let err = vsot(|k, b| {
                if k == 3 {
                    b[l * H_LEN] ^= 1;
                }
            });
            let culprit = if (honest.delta >> l) & 1 == 1 { 1 } else { 2 };
            assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit }, "l {l}");
            let err = vsot(|k, b| {
                if k == 4 {
                    b[l * H_LEN + 9] ^= 0x10;
                }
            });
            assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 1 });
            for which in 0..2 {
                let err = vsot(|k, b| {
                    if k == 5 {
                        b[(2 * l + which) * H_LEN + 31] ^= 0x80;
                    }
                });
                assert_eq!(err.unwrap_err(), Error::BaseOtCheck { culprit: 2 });
            }
        }
    }

    #[test]
    fn vsot_messages_of_the_wrong_length_are_malformed() {
        let short = vec![0u8; 10];
        for r in [
            VsotMsg1::from_bytes(&short, 4).map(|_| ()),
            VsotMsg2::from_bytes(&short, 4).map(|_| ()),
            VsotMsg3::from_bytes(&short, 4).map(|_| ()),
            VsotMsg4::from_bytes(&short, 4).map(|_| ()),
            VsotMsg5::from_bytes(&short, 4).map(|_| ()),
        ] {
            assert!(matches!(r, Err(Error::Malformed { culprit: 4, .. })));
        }
        let err = vsot(|k, b| {
            if k == 3 {
                b.push(0);
            }
        });
        assert!(matches!(err, Err(Error::Malformed { culprit: 2, .. })));
    }

    #[test]
    fn base_ot_and_extension_give_correlated_ots() {
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ctx = [7u8; 32];
        let (alice, bob) = vsot(|_, _| ()).unwrap();
        let choices: Vec<u8> = (0..XI).map(|_| (rng.next_u32() & 1) as u8).collect();
        let (msg, out) = kos_receive(&bob, &ctx, &choices, &mut rng);
        let q = kos_send(&alice, &ctx, &msg, 2).unwrap();
        for j in 0..XI {
            let expect = out.rows[j] ^ if choices[j] == 1 { alice.delta } else { 0 };
            assert_eq!(q[j], expect);
        }
        // An inconsistent correlation is caught by the check.
        let mut bad = msg.clone();
        bad.t_check ^= 1;
        assert_eq!(
            kos_send(&alice, &ctx, &bad, 2),
            Err(Error::OtConsistency { culprit: 2 })
        );
    }
}

/// Assurance tests: each guards a security property that a functional run of the OT does not
/// see (a mutant removing it keeps the extension correct).
#[cfg(test)]
mod assurance {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    fn rand128(rng: &mut impl RngCore) -> u128 {
        (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64())
    }

    /// Independent reference: GF(2^128) multiplication bit by bit (shift-and-add, reducing
    /// `x^128 = x^7 + x^2 + x + 1` after every shift).
    fn ref_mul(a: u128, b: u128) -> u128 {
        let (mut acc, mut a) = (0u128, a);
        for i in 0..128 {
            if (b >> i) & 1 == 1 {
                acc ^= a;
            }
            let carry = a >> 127;
            a <<= 1;
            if carry == 1 {
                a ^= 0x87;
            }
        }
        acc
    }

    /// Independent reference: reduces the 256-bit polynomial `hi·x^128 + lo` one bit at a
    /// time from the top.
    fn ref_reduce(lo: u128, hi: u128) -> u128 {
        let mut bits = [false; 256];
        for (i, b) in bits.iter_mut().enumerate() {
            *b = if i < 128 {
                (lo >> i) & 1 == 1
            } else {
                (hi >> (i - 128)) & 1 == 1
            };
        }
        for i in (128..256).rev() {
            if bits[i] {
                bits[i] = false;
                for k in [7, 2, 1, 0] {
                    bits[i - 128 + k] ^= true;
                }
            }
        }
        (0..128).fold(0u128, |acc, i| acc | (u128::from(bits[i]) << i))
    }

    /// `reduce` and `gf_mul` agree with the bit-by-bit references on random inputs and on the
    /// inputs that exercise the double-overflow bits (x^255, x^254, x^249 of the product).
    /// Kills `^` → `|` / `&` anywhere in `reduce` (the KOS check would then compare
    /// wrong values that an honest-looking malicious receiver could satisfy).
    #[test]
    fn gf128_reduce_and_mul_match_a_bitwise_reference() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x128);
        let edges = [
            0u128,
            1,
            u128::MAX,
            1 << 127,
            1 << 126,
            1 << 121,
            (1 << 127) | (1 << 126),
            (1 << 127) | (1 << 121),
            (1 << 126) | (1 << 121),
            (1 << 127) | (1 << 126) | (1 << 121),
        ];
        for hi in edges {
            for lo in [0u128, 1, u128::MAX] {
                assert_eq!(reduce(lo, hi), ref_reduce(lo, hi), "hi {hi:#x} lo {lo:#x}");
            }
        }
        for _ in 0..200 {
            let (lo, hi) = (rand128(&mut rng), rand128(&mut rng));
            assert_eq!(reduce(lo, hi), ref_reduce(lo, hi));
            let (a, b) = (rand128(&mut rng), rand128(&mut rng));
            assert_eq!(gf_mul(a, b), ref_mul(a, b));
            // Known identities: by 1, by x (a shift with reduction), distributivity.
            assert_eq!(gf_mul(a, 1), a);
            assert_eq!(gf_mul(a, 2), ref_mul(a, 2));
            let c = rand128(&mut rng);
            assert_eq!(gf_mul(a ^ c, b), gf_mul(a, b) ^ gf_mul(c, b));
        }
        assert_eq!(gf_mul(u128::MAX, u128::MAX), ref_mul(u128::MAX, u128::MAX));
    }

    /// The expanded PRG keys kept with the seeds are those of the seeds, in order, on both
    /// sides; forgetting them drops them and the next use makes the same ones again.
    #[test]
    fn expanded_prg_keys_match_their_seeds_and_can_be_forgotten() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5eed);
        let mut seed = || {
            let mut s = [0u8; 32];
            rng.fill_bytes(&mut s);
            s
        };
        let mut r = ExtReceiverSeeds::new((0..KAPPA).map(|_| [seed(), seed()]).collect());
        let mut s = ExtSenderSeeds::new(7, (0..KAPPA).map(|_| seed()).collect());
        let iv = 0x1234_5678_9abc_def0_u128;
        let direct = |key: &[u8; 32]| {
            let mut out = [0u8; M_BYTES];
            aes_ctr(key, iv, &mut out);
            out
        };
        for _ in 0..2 {
            for (keys, pair) in r.prgs().iter().zip(&r.seeds) {
                assert_eq!(prg(&keys[0], iv), direct(&pair[0]));
                assert_eq!(prg(&keys[1], iv), direct(&pair[1]));
            }
            for (key, seed) in s.prgs().iter().zip(&s.seeds) {
                assert_eq!(prg(key, iv), direct(seed));
            }
            r.forget_prgs();
            s.forget_prgs();
            assert!(r.prgs.get().is_none() && s.prgs.get().is_none());
        }
    }

    /// Seeds compare by their seeds (and Δ), whether or not their PRG keys are expanded.
    #[test]
    fn seeds_compare_by_value_not_by_their_expanded_keys() {
        let r = ExtReceiverSeeds::new(vec![[[1; 32], [2; 32]]; KAPPA]);
        let expanded = r.clone();
        expanded.prgs();
        assert_eq!(r, expanded);
        let mut other = r.clone();
        other.seeds[KAPPA - 1][1][31] ^= 1;
        assert_ne!(r, other);
        let s = ExtSenderSeeds::new(5, vec![[3; 32]; KAPPA]);
        let expanded = s.clone();
        expanded.prgs();
        assert_eq!(s, expanded);
        assert_ne!(s, ExtSenderSeeds::new(4, vec![[3; 32]; KAPPA]));
        let mut other = s.clone();
        other.seeds[0][0] ^= 1;
        assert_ne!(s, other);
    }

    /// The KOS PRG is keyed by the seed, the pair context and the session nonce, its 16-byte
    /// blocks differ, and its output is balanced. Kills `prg` returning a constant block.
    #[test]
    fn kos_prg_is_keyed_and_balanced() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x9e6);
        let mut seed = [0u8; 32];
        let mut nonce = [0u8; 32];
        let ctx = [5u8; 32];
        let (mut ones, mut bits) = (0u64, 0u64);
        for _ in 0..16 {
            rng.fill_bytes(&mut seed);
            rng.fill_bytes(&mut nonce);
            let iv = prg_iv(&ctx, &nonce);
            let out = prg(&aes_key(&seed), iv);
            let mut s2 = seed;
            s2[0] ^= 1;
            assert_ne!(out, prg(&aes_key(&s2), iv), "seed not used");
            let mut n2 = nonce;
            n2[31] ^= 1;
            assert_ne!(
                out,
                prg(&aes_key(&seed), prg_iv(&ctx, &n2)),
                "nonce not used"
            );
            assert_ne!(
                out,
                prg(&aes_key(&seed), prg_iv(&[6; 32], &nonce)),
                "context not used"
            );
            let blocks: Vec<&[u8]> = out.chunks(16).collect();
            for (i, b) in blocks.iter().enumerate() {
                assert!(!blocks[i + 1..].contains(b), "repeated PRG block");
            }
            ones += out.iter().map(|b| u64::from(b.count_ones())).sum::<u64>();
            bits += 8 * M_BYTES as u64;
        }
        // Binomial(81920, 1/2): 6 standard deviations are about 860.
        let dev = (ones as f64 - bits as f64 / 2.0).abs();
        assert!(
            dev <= 6.0 * (bits as f64).sqrt() / 2.0,
            "{ones} ones of {bits}"
        );
    }

    /// The block transpose agrees with a bit-by-bit reference on random and on single-bit
    /// inputs (every column and row position lands where the reference puts it).
    #[test]
    fn transpose_matches_a_bitwise_reference() {
        fn reference(cols: &[[u8; M_BYTES]]) -> Vec<u128> {
            let mut rows = vec![0u128; M];
            for (l, col) in cols.iter().enumerate() {
                for (j, row) in rows.iter_mut().enumerate() {
                    *row |= u128::from((col[j / 8] >> (j % 8)) & 1) << l;
                }
            }
            rows
        }
        let mut rng = ChaCha20Rng::seed_from_u64(0x7a);
        for _ in 0..4 {
            let cols: Vec<[u8; M_BYTES]> = (0..KAPPA)
                .map(|_| {
                    let mut c = [0u8; M_BYTES];
                    rng.fill_bytes(&mut c);
                    c
                })
                .collect();
            assert_eq!(transpose(&cols), reference(&cols));
        }
        for (l, j) in [
            (0, 0),
            (0, M - 1),
            (KAPPA - 1, 0),
            (KAPPA - 1, M - 1),
            (63, 64),
            (64, 63),
            (5, 300),
        ] {
            let mut cols = vec![[0u8; M_BYTES]; KAPPA];
            cols[l][j / 8] = 1 << (j % 8);
            let rows = transpose(&cols);
            assert_eq!(rows, reference(&cols), "bit ({l}, {j})");
            assert_eq!(rows[j], 1u128 << l);
        }
    }

    /// The bucketed sum of products agrees with the sum of constant-time carry-less products,
    /// on random inputs and on coefficients whose top window is full (the shifted-in high part).
    #[test]
    fn windowed_sum_matches_the_sum_of_products() {
        let mut rng = ChaCha20Rng::seed_from_u64(0x5e);
        for len in [1usize, 2, 17, M] {
            let rows: Vec<u128> = (0..len).map(|_| rand128(&mut rng)).collect();
            let mut chi: Vec<u128> = (0..len).map(|_| rand128(&mut rng)).collect();
            chi[0] = u128::MAX;
            let expect = rows
                .iter()
                .zip(&chi)
                .fold(0u128, |acc, (r, c)| acc ^ gf_mul(*r, *c));
            assert_eq!(mul_sum_public(&rows, &chi), expect, "length {len}");
            assert_eq!(
                mul_sum_public(&rows[..1], &chi[..1]),
                ref_mul(rows[0], chi[0])
            );
        }
    }

    /// Bob's KOS columns `u_l = G(k0_l) ⊕ G(k1_l) ⊕ x` must not expose his choice vector `x`:
    /// the κ columns are pairwise distinct and none equals `x`. Kills a constant `prg`
    /// (every column would then be `x` itself, while the extension stays correct).
    #[test]
    fn kos_columns_hide_the_choice_bits() {
        let mut rng = ChaCha20Rng::seed_from_u64(31);
        let seeds = ExtReceiverSeeds::new(
            (0..KAPPA)
                .map(|l| [[l as u8; 32], [l as u8 | 0x80; 32]])
                .collect(),
        );
        let choices: Vec<u8> = (0..XI).map(|_| (rng.next_u32() & 1) as u8).collect();
        let (msg, _) = kos_receive(&seeds, &[1; 32], &choices, &mut rng);
        let mut first = [0u8; XI / 8];
        for (j, c) in choices.iter().enumerate() {
            first[j / 8] |= c << (j % 8);
        }
        for (l, col) in msg.u.iter().enumerate() {
            assert_ne!(col[..XI / 8], first, "column {l} is the choice vector");
            assert!(!msg.u[l + 1..].contains(col), "column {l} repeats");
        }
    }

    /// The KOS check coefficients are exactly `M` distinct non-zero values bound to the pair
    /// context, the nonce and every column byte. Kills `chis` ignoring its transcript, and
    /// `M / 2` → `M * 2` (which makes 4·M coefficients, only the first M of which are used:
    /// a protocol-equivalent mutant that this length check still catches).
    #[test]
    fn kos_check_coefficients_depend_on_the_transcript() {
        let u: Vec<[u8; M_BYTES]> = (0..KAPPA).map(|l| [l as u8; M_BYTES]).collect();
        let chi = chis(&[1; 32], &[2; 32], &u);
        assert_eq!(chi.len(), M);
        let distinct: std::collections::HashSet<u128> = chi.iter().copied().collect();
        assert_eq!(distinct.len(), M);
        assert!(!chi.contains(&0));
        let mut ctx = [1u8; 32];
        ctx[7] ^= 4;
        assert_ne!(chi, chis(&ctx, &[2; 32], &u));
        let mut nonce = [2u8; 32];
        nonce[0] ^= 1;
        assert_ne!(chi, chis(&[1; 32], &nonce, &u));
        for (l, i) in [(0, 0), (KAPPA / 2, 40), (KAPPA - 1, M_BYTES - 1)] {
            let mut u2 = u.clone();
            u2[l][i] ^= 0x10;
            assert_ne!(
                chi,
                chis(&[1; 32], &[2; 32], &u2),
                "column {l} byte {i} not bound"
            );
        }
    }

    /// Base OTs are bound to their pair context: a receiver running VSOT under another
    /// context than the sender refuses the sender's proof of knowledge, and extension
    /// messages made under one context fail the KOS check under another. Guards the
    /// per-pair domain separation that `keygen::pair_ctx` provides.
    #[test]
    fn base_ot_and_extension_are_bound_to_their_context() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(77);
        let (_, m1) = VsotSender::new(&accel, [1; 32], &mut rng).unwrap();
        assert_eq!(
            VsotReceiver::new(&accel, [2; 32], &m1, 2, &mut rng).unwrap_err(),
            Error::BaseOtCheck { culprit: 2 }
        );
        let ctx = [1u8; 32];
        let (snd, m1) = VsotSender::new(&accel, ctx, &mut rng).unwrap();
        let (rcv, m2) = VsotReceiver::new(&accel, ctx, &m1, 2, &mut rng).unwrap();
        let (snd, m3) = snd.challenge(&m2, 1).unwrap();
        let (rcv, m4) = rcv.respond(&m3, 2).unwrap();
        let (bob, m5) = snd.open(&m4, 1).unwrap();
        let alice = rcv.finish(&m5, 2).unwrap();
        let choices = vec![1u8; XI];
        let (msg, _) = kos_receive(&bob, &ctx, &choices, &mut rng);
        assert!(kos_send(&alice, &ctx, &msg, 2).is_ok());
        assert_eq!(
            kos_send(&alice, &[3; 32], &msg, 2).unwrap_err(),
            Error::OtConsistency { culprit: 2 }
        );
    }

    /// The VSOT sender's secret `b` is wiped, and dropping the sender runs the wipe.
    #[test]
    fn vsot_sender_is_wiped_on_drop() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let (mut snd, _) = VsotSender::new(&accel, [1; 32], &mut rng).unwrap();
        assert_ne!(snd.b, Scalar::ZERO);
        snd.wipe();
        assert_eq!(snd.b, Scalar::ZERO);
        let before = crate::tests::wipes("VsotSender");
        drop(snd);
        assert_eq!(crate::tests::wipes("VsotSender"), before + 1);
    }

    /// Both sides' base-OT seeds (and Δ) are redacted in `Debug` and wiped, and dropping them
    /// runs the wipe; the VSOT receiver states and `PairOt` hold their secrets in these types.
    #[test]
    fn base_ot_seeds_are_redacted_and_wiped_on_drop() {
        let mut r = ExtReceiverSeeds::new(vec![[[1; 32], [2; 32]]; KAPPA]);
        r.prgs();
        assert_eq!(format!("{r:?}"), "ExtReceiverSeeds(<redacted>)");
        r.wipe();
        assert!(r.seeds.iter().flatten().flatten().all(|b| *b == 0));
        assert!(r.prgs.get().is_none(), "expanded keys dropped");
        let mut s = ExtSenderSeeds::new(u128::MAX, vec![[3; 32]; KAPPA]);
        s.prgs();
        assert_eq!(format!("{s:?}"), "ExtSenderSeeds(<redacted>)");
        s.wipe();
        assert_eq!(s.delta, 0);
        assert!(s.seeds.iter().flatten().all(|b| *b == 0));
        assert!(s.prgs.get().is_none(), "expanded keys dropped");
        let (br, bs) = (
            crate::tests::wipes("ExtReceiverSeeds"),
            crate::tests::wipes("ExtSenderSeeds"),
        );
        drop(r);
        drop(s);
        assert_eq!(crate::tests::wipes("ExtReceiverSeeds"), br + 1);
        assert_eq!(crate::tests::wipes("ExtSenderSeeds"), bs + 1);
    }

    /// Bob's extension rows `t_j` are wiped, and dropping them runs the wipe.
    #[test]
    fn kos_receiver_rows_are_wiped_on_drop() {
        let mut out = KosReceiverOut {
            rows: vec![u128::MAX; M],
        };
        out.wipe();
        assert!(out.rows.iter().all(|r| *r == 0));
        let before = crate::tests::wipes("KosReceiverOut");
        drop(out);
        assert_eq!(crate::tests::wipes("KosReceiverOut"), before + 1);
    }
}
