//! Key material: a party's [`KeyShare`] (Shamir share, public data, zero-sharing seeds and
//! the pairwise base-OT state) and the all-parties [`KeySet`] of the embedded deployment.
//! The pairwise base-OT set-up is the sans-IO [`PairSetup`], used at key generation and to run
//! a fresh base OT for one pair after a failed check.

use k256::elliptic_curve::group::GroupEncoding;
use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use accel_api::Accelerator;

use crate::codec::{POINT_LEN, R, SCALAR_LEN, W};
use crate::error::Error;
use crate::hash::Tr;
use crate::ot::{
    ExtReceiverSeeds, ExtSenderSeeds, KAPPA, VsotMsg1, VsotMsg2, VsotMsg3, VsotMsg4, VsotMsg5,
    VsotReceiver, VsotReceiverAnswered, VsotSender, VsotSenderChallenged,
};

/// The magic prefix of a serialized [`KeyShare`].
const SHARE_MAGIC: &[u8; 8] = b"DKLS23K1";
/// The magic prefix of a serialized [`KeySet`].
const SET_MAGIC: &[u8; 8] = b"DKLS23S1";

/// A party identifier, `1..=n`; it is also the party's Shamir evaluation point.
pub type PartyId = u16;

/// One party's long-term key material.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    pub(crate) id: PartyId,
    pub(crate) t: u16,
    pub(crate) n: u16,
    pub(crate) secret: Scalar,
    pub(crate) public_key: ProjectivePoint,
    pub(crate) verification_shares: Vec<ProjectivePoint>,
    pub(crate) zero_seeds: Vec<[u8; 32]>,
    pub(crate) ot: Vec<Option<PairOt>>,
}

impl KeyShare {
    /// Zeroizes the secret share and the zero-sharing seeds (run on drop; the pairwise OT
    /// state wipes itself).
    fn wipe(&mut self) {
        self.secret.zeroize();
        self.zero_seeds.zeroize();
        #[cfg(test)]
        crate::tests::note_wipe("KeyShare");
    }
}

impl Drop for KeyShare {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl core::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("t", &self.t)
            .field("n", &self.n)
            .field("public_key", &self.public_key_bytes())
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The base-OT context string for the ordered pair (extension sender `alice`, receiver `bob`).
pub(crate) fn pair_ctx(pk: &ProjectivePoint, alice: PartyId, bob: PartyId) -> [u8; 32] {
    let mut encoded = [0u8; 33];
    encoded.copy_from_slice(&pk.to_bytes());
    pair_ctx_encoded(&encoded, alice, bob)
}

/// [`pair_ctx`] for the public key already compressed (no field inversion).
pub(crate) fn pair_ctx_encoded(pk: &[u8; 33], alice: PartyId, bob: PartyId) -> [u8; 32] {
    Tr::new("pair-ot")
        .encoded_point(pk)
        .u64(u64::from(alice))
        .u64(u64::from(bob))
        .finish()
}

/// A pair's OT state as made by a [`PairSetup`]: one base-OT batch per direction, for the
/// party `me` with its `peer`. Opaque; installed with [`KeyShare::install_pair`]. Its seeds
/// are zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
pub struct PairOt {
    me: PartyId,
    peer: PartyId,
    /// Seeds for the extension where this party is the receiver (Bob).
    pub(crate) as_receiver: ExtReceiverSeeds,
    /// Seeds for the extension where this party is the sender (Alice).
    pub(crate) as_sender: ExtSenderSeeds,
}

impl core::fmt::Debug for PairOt {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PairOt")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

impl PairOt {
    /// The party that holds this state.
    pub fn me(&self) -> PartyId {
        self.me
    }
    /// The peer it was set up with.
    pub fn peer(&self) -> PartyId {
        self.peer
    }
}

/// Where a [`PairSetup`] stands: the flow number of the next message it expects, with this
/// party's VSOT sender state (the extension where it is the receiver, Bob) and VSOT receiver
/// state (the extension where it is the sender, Alice).
enum Phase {
    AwaitFlow1(VsotSender),
    AwaitFlow2(VsotSender, VsotReceiver),
    AwaitFlow3(VsotSenderChallenged, VsotReceiver),
    AwaitFlow4(VsotSenderChallenged, VsotReceiverAnswered),
    AwaitFlow5(ExtReceiverSeeds, VsotReceiverAnswered),
    /// Finished or failed: no further message is accepted.
    Spent,
}

/// Both directions of one pair's base OT (Verified Simplest OT, [`crate::ot`]) for the party
/// `me` and its `peer`, as five flows of messages exchanged with the peer's own `PairSetup`
/// (sans-IO: the caller carries the bytes). Every message starts with its flow number.
///
/// Flow 1 ([`PairSetup::start`]) is this party's VSOT message 1 as base-OT sender; each call of
/// [`PairSetup::step`] consumes the peer's message of flow `k − 1` and returns this party's
/// flow `k` (2: VSOT message 2 as receiver, 3: message 3 as sender, 4: message 4 as receiver,
/// 5: message 5 as sender); [`PairSetup::finish`] consumes the peer's flow 5. After a failed
/// check the setup accepts nothing more: start a fresh one.
pub struct PairSetup {
    me: PartyId,
    peer: PartyId,
    /// Context of the extension where `me` is the sender: `pair_ctx(pk, me, peer)`.
    ctx_as_sender: [u8; 32],
    phase: Phase,
}

impl core::fmt::Debug for PairSetup {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("PairSetup")
            .field("me", &self.me)
            .field("peer", &self.peer)
            .finish_non_exhaustive()
    }
}

/// Prefixes `body` with its flow number.
fn flow_msg(flow: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + body.len());
    out.push(flow);
    out.extend_from_slice(&body);
    out
}

impl PairSetup {
    /// Flow 1: this party's VSOT message 1 (as base-OT sender) for `peer`. A zero id or
    /// `peer == me` is [`Error::InvalidParameters`]; a peer beyond the party count is refused
    /// by [`KeyShare::install_pair`].
    pub fn start(
        accel: &dyn Accelerator,
        pk: &ProjectivePoint,
        me: PartyId,
        peer: PartyId,
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, Vec<u8>), Error> {
        if me == 0 || peer == 0 || peer == me {
            return Err(Error::InvalidParameters("peer id out of range"));
        }
        let (sender, m1) = VsotSender::new(accel, pair_ctx(pk, peer, me), rng)?;
        Ok((
            PairSetup {
                me,
                peer,
                ctx_as_sender: pair_ctx(pk, me, peer),
                phase: Phase::AwaitFlow1(sender),
            },
            flow_msg(1, m1.to_bytes()),
        ))
    }

    /// The peer.
    pub fn peer(&self) -> PartyId {
        self.peer
    }

    /// The body of the peer's message of `flow` (a wrong flow number is
    /// [`Error::Malformed`] naming the peer).
    fn body<'a>(&self, incoming: &'a [u8], flow: u8) -> Result<&'a [u8], Error> {
        match incoming.split_first() {
            Some((&f, body)) if f == flow => Ok(body),
            _ => Err(Error::Malformed {
                culprit: self.peer,
                what: "base OT message of the wrong flow",
            }),
        }
    }

    /// Flows 2..=5: consumes the peer's message of the previous flow and returns this party's
    /// message of the next flow (flow 2: VSOT message 2 as receiver, answering the peer's
    /// message 1; flow 3: message 3 as sender; flow 4: message 4 as receiver; flow 5: message
    /// 5 as sender). Called exactly four times; a message of another flow is
    /// [`Error::Malformed`] naming the peer, a fifth call [`Error::InvalidParameters`]. A
    /// failed check names the peer and leaves the setup spent.
    pub fn step(
        &mut self,
        accel: &dyn Accelerator,
        incoming: &[u8],
        rng: &mut impl CryptoRngCore,
    ) -> Result<Vec<u8>, Error> {
        let peer = self.peer;
        let (phase, out) = match core::mem::replace(&mut self.phase, Phase::Spent) {
            Phase::AwaitFlow1(snd) => {
                let m1 = VsotMsg1::from_bytes(self.body(incoming, 1)?, peer)?;
                let (rcv, m2) = VsotReceiver::new(accel, self.ctx_as_sender, &m1, peer, rng)?;
                (Phase::AwaitFlow2(snd, rcv), flow_msg(2, m2.to_bytes()))
            }
            Phase::AwaitFlow2(snd, rcv) => {
                let m2 = VsotMsg2::from_bytes(self.body(incoming, 2)?, peer)?;
                let (snd, m3) = snd.challenge(&m2, peer)?;
                (Phase::AwaitFlow3(snd, rcv), flow_msg(3, m3.to_bytes()))
            }
            Phase::AwaitFlow3(snd, rcv) => {
                let m3 = VsotMsg3::from_bytes(self.body(incoming, 3)?, peer)?;
                let (rcv, m4) = rcv.respond(&m3, peer)?;
                (Phase::AwaitFlow4(snd, rcv), flow_msg(4, m4.to_bytes()))
            }
            Phase::AwaitFlow4(snd, rcv) => {
                let m4 = VsotMsg4::from_bytes(self.body(incoming, 4)?, peer)?;
                let (seeds, m5) = snd.open(&m4, peer)?;
                (Phase::AwaitFlow5(seeds, rcv), flow_msg(5, m5.to_bytes()))
            }
            Phase::AwaitFlow5(..) | Phase::Spent => {
                return Err(Error::InvalidParameters("base OT step out of order"));
            }
        };
        self.phase = phase;
        Ok(out)
    }

    /// Consumes the peer's flow-5 message: the pair's OT state, to install in this party's
    /// share with [`KeyShare::install_pair`].
    pub fn finish(self, incoming: &[u8]) -> Result<PairOt, Error> {
        let body = self.body(incoming, 5)?;
        let PairSetup {
            me, peer, phase, ..
        } = self;
        match phase {
            Phase::AwaitFlow5(as_receiver, rcv) => {
                let m5 = VsotMsg5::from_bytes(body, peer)?;
                let as_sender = rcv.finish(&m5, peer)?;
                Ok(PairOt {
                    me,
                    peer,
                    as_receiver,
                    as_sender,
                })
            }
            _ => Err(Error::InvalidParameters("base OT finished out of order")),
        }
    }
}

impl KeyShare {
    /// This party's id.
    pub fn id(&self) -> PartyId {
        self.id
    }
    /// The threshold `t` (any `t` parties can sign).
    pub fn threshold(&self) -> u16 {
        self.t
    }
    /// The number of parties `n`.
    pub fn parties(&self) -> u16 {
        self.n
    }
    /// The group public key, SEC1 compressed (33 bytes).
    pub fn public_key_bytes(&self) -> [u8; 33] {
        let mut out = [0u8; 33];
        out.copy_from_slice(&self.public_key.to_bytes());
        out
    }
    /// The group public key.
    pub fn public_key(&self) -> ProjectivePoint {
        self.public_key
    }
    /// Party `id`'s public verification share `x_id·G` (Feldman), if `id` is in range.
    pub fn verification_share(&self, id: PartyId) -> Option<ProjectivePoint> {
        self.verification_shares
            .get(usize::from(id).wrapping_sub(1))
            .copied()
    }
    /// Whether this party holds usable OT state with `peer` (false after a failed check
    /// until a fresh base OT is installed).
    pub fn pair_ready(&self, peer: PartyId) -> bool {
        self.pair(peer).is_some()
    }

    pub(crate) fn pair(&self, peer: PartyId) -> Option<&PairOt> {
        self.ot
            .get(usize::from(peer).wrapping_sub(1))
            .and_then(|p| p.as_ref())
    }

    /// Drops the OT-extension PRG keys that presigning expands from the base-OT seeds and keeps
    /// for the share's next sessions (about 92 KiB per peer): for a share kept in memory for
    /// long, such as a distributed node's, after a batch of presigning rounds. Presigning
    /// expands them again when it next runs.
    pub fn forget_expanded_keys(&mut self) {
        for pair in self.ot.iter_mut().flatten() {
            pair.as_receiver.forget_prgs();
            pair.as_sender.forget_prgs();
        }
    }

    /// Discards the OT state with `peer` (selective-abort defence).
    pub(crate) fn discard_pair(&mut self, peer: PartyId) {
        if let Some(slot) = self.ot.get_mut(usize::from(peer).wrapping_sub(1)) {
            *slot = None;
        }
    }

    fn check_peer(&self, peer: PartyId) -> Result<(), Error> {
        if peer == 0 || peer > self.n || peer == self.id {
            return Err(Error::InvalidParameters("peer id out of range"));
        }
        Ok(())
    }

    /// Installs OT state for its peer made by a [`PairSetup`] of this party with that peer,
    /// replacing any state held for it. State made for another party, or for a peer id that
    /// is zero, this party's own or beyond the party count, is [`Error::InvalidParameters`].
    pub fn install_pair(&mut self, ot: PairOt) -> Result<(), Error> {
        if ot.me != self.id {
            return Err(Error::InvalidParameters("OT state is for another party"));
        }
        self.check_peer(ot.peer)?;
        let slot = usize::from(ot.peer) - 1;
        self.ot[slot] = Some(ot);
        Ok(())
    }

    /// The exact length of [`KeyShare::to_bytes`] output.
    fn encoded_len(&self) -> usize {
        let ot: usize = self
            .ot
            .iter()
            .map(|slot| {
                1 + slot.as_ref().map_or(0, |p| {
                    p.as_receiver.seeds.len() * 64 + 16 + p.as_sender.seeds.len() * 32
                })
            })
            .sum();
        SHARE_MAGIC.len()
            + 6
            + SCALAR_LEN
            + POINT_LEN
            + self.verification_shares.len() * POINT_LEN
            + self.zero_seeds.len() * 32
            + ot
    }

    /// Writes the encoding of [`KeyShare::to_bytes`] into `w`.
    fn write(&self, w: &mut W) {
        w.bytes(SHARE_MAGIC);
        w.u16(self.id);
        w.u16(self.t);
        w.u16(self.n);
        w.scalar(&self.secret);
        w.point(&self.public_key);
        for p in &self.verification_shares {
            w.point(p);
        }
        for s in &self.zero_seeds {
            w.bytes(s);
        }
        for slot in &self.ot {
            match slot {
                None => w.u8(0),
                Some(p) => {
                    w.u8(1);
                    for pair in &p.as_receiver.seeds {
                        w.bytes(&pair[0]);
                        w.bytes(&pair[1]);
                    }
                    w.u128(p.as_sender.delta);
                    for s in &p.as_sender.seeds {
                        w.bytes(s);
                    }
                }
            }
        }
    }

    /// Serializes the share, pairwise OT state included (secret material: store encrypted).
    /// The buffer is allocated once with its exact length and zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut w = W::with_len(self.encoded_len());
        self.write(&mut w);
        w.finish()
    }

    /// Parses [`KeyShare::to_bytes`] output. Secret fields are copied straight into the
    /// share, which is zeroized on drop, so an error part-way leaves no copy behind.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = R(bytes);
        if r.take(SHARE_MAGIC.len()).ok() != Some(SHARE_MAGIC.as_slice()) {
            return Err(Error::Decode("bad magic"));
        }
        let id = r.u16()?;
        let t = r.u16()?;
        let n = r.u16()?;
        if n < 2 {
            return Err(Error::Decode("party count out of range"));
        }
        if t < 2 || t > n {
            return Err(Error::Decode("threshold out of range"));
        }
        if id == 0 || id > n {
            return Err(Error::Decode("party id out of range"));
        }
        let parties = usize::from(n);
        // Every slot holds at least its tag: reject short input before allocating.
        if r.0.len() < SCALAR_LEN + POINT_LEN + parties * (POINT_LEN + 32 + 1) {
            return Err(Error::Decode("truncated"));
        }
        let mut share = KeyShare {
            id,
            t,
            n,
            secret: Scalar::ZERO,
            public_key: ProjectivePoint::IDENTITY,
            verification_shares: Vec::with_capacity(parties),
            zero_seeds: Vec::with_capacity(parties),
            ot: Vec::with_capacity(parties),
        };
        share.secret = r.scalar()?;
        share.public_key = r.point()?;
        for _ in 0..n {
            share.verification_shares.push(r.point()?);
        }
        for _ in 0..n {
            share.zero_seeds.push([0u8; 32]);
            if let Some(seed) = share.zero_seeds.last_mut() {
                r.fill(seed)?;
            }
        }
        for peer in 1..=n {
            match r.u8()? {
                0 => share.ot.push(None),
                1 if peer == id => return Err(Error::Decode("OT state with own id")),
                1 => {
                    let mut pair = PairOt {
                        me: id,
                        peer,
                        as_receiver: ExtReceiverSeeds::new(vec![[[0u8; 32]; 2]; KAPPA]),
                        as_sender: ExtSenderSeeds::new(0, vec![[0u8; 32]; KAPPA]),
                    };
                    for [s0, s1] in pair.as_receiver.seeds.iter_mut() {
                        r.fill(s0)?;
                        r.fill(s1)?;
                    }
                    r.u128_into(&mut pair.as_sender.delta)?;
                    for s in pair.as_sender.seeds.iter_mut() {
                        r.fill(s)?;
                    }
                    share.ot.push(Some(pair));
                }
                _ => return Err(Error::Decode("bad OT tag")),
            }
        }
        r.end()?;
        Ok(share)
    }
}

/// All `n` parties' key shares, for the embedded deployment that runs every party in one
/// process.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct KeySet {
    pub(crate) shares: Vec<KeyShare>,
}

impl KeySet {
    /// Discards in this set every pair OT state that `presigned` (a copy of this set that
    /// presigned, e.g. on another thread) discarded after a failed check, so that a culprit
    /// found on a copy is refused here too.
    /// Returns whether it discarded any.
    pub fn absorb_discards(&mut self, presigned: &KeySet) -> bool {
        let mut any = false;
        for (mine, theirs) in self.shares.iter_mut().zip(&presigned.shares) {
            for peer in 1..=mine.n {
                if peer != mine.id && mine.pair_ready(peer) && !theirs.pair_ready(peer) {
                    mine.discard_pair(peer);
                    any = true;
                }
            }
        }
        any
    }
    /// The group public key, SEC1 compressed (33 bytes).
    pub fn public_key_bytes(&self) -> [u8; 33] {
        self.shares[0].public_key_bytes()
    }
    /// The threshold.
    pub fn threshold(&self) -> u16 {
        self.shares[0].t
    }
    /// The number of parties.
    pub fn parties(&self) -> u16 {
        self.shares[0].n
    }
    /// The shares, indexed by party id − 1.
    pub fn shares(&self) -> &[KeyShare] {
        &self.shares
    }
    /// The share of party `id`.
    pub fn share(&self, id: PartyId) -> Option<&KeyShare> {
        self.shares.get(usize::from(id).wrapping_sub(1))
    }
    /// Mutable access to the share of party `id`.
    pub fn share_mut(&mut self, id: PartyId) -> Option<&mut KeyShare> {
        self.shares.get_mut(usize::from(id).wrapping_sub(1))
    }
    /// Serializes all shares (secret material: store encrypted): magic, party count, then
    /// per party the share's length (u32) and [`KeyShare::to_bytes`] encoding. The buffer is
    /// allocated once with its exact length and zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let len = SET_MAGIC.len()
            + 2
            + self
                .shares
                .iter()
                .map(|s| 4 + s.encoded_len())
                .sum::<usize>();
        let mut w = W::with_len(len);
        w.bytes(SET_MAGIC);
        w.u16(self.parties());
        for s in &self.shares {
            w.u32(s.encoded_len() as u32);
            s.write(&mut w);
        }
        w.finish()
    }
    /// Parses [`KeySet::to_bytes`] output and checks the shares belong together (ids in
    /// order, same party count, threshold and public key).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        let mut r = R(bytes);
        if r.take(SET_MAGIC.len()).ok() != Some(SET_MAGIC.as_slice()) {
            return Err(Error::Decode("bad magic"));
        }
        let n = r.u16()?;
        if n < 2 {
            return Err(Error::Decode("party count out of range"));
        }
        if r.0.len() < usize::from(n) * 4 {
            return Err(Error::Decode("truncated"));
        }
        let mut shares: Vec<KeyShare> = Vec::with_capacity(usize::from(n));
        for i in 1..=n {
            let len = r.u32()? as usize;
            let s = KeyShare::from_bytes(r.take(len)?)?;
            if s.id != i {
                return Err(Error::Decode("share id out of order"));
            }
            if s.n != n {
                return Err(Error::Decode("share party count mismatch"));
            }
            if let Some(first) = shares.first() {
                if s.t != first.t {
                    return Err(Error::Decode("share threshold mismatch"));
                }
                if s.public_key != first.public_key {
                    return Err(Error::Decode("share public key mismatch"));
                }
            }
            shares.push(s);
        }
        r.end()?;
        Ok(KeySet { shares })
    }
}

/// Assurance tests: per-pair domain separation of the base OTs, every bound of the share
/// decoders, and zeroization of the share.
#[cfg(test)]
mod assurance {
    use super::*;
    use proptest::prelude::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::sync::OnceLock;

    /// A 2-of-3 key set, made once.
    fn key_set() -> &'static KeySet {
        static SET: OnceLock<KeySet> = OnceLock::new();
        SET.get_or_init(|| {
            let accel = backend_cpu::CpuBackend::new();
            crate::embedded::dkg(&accel, 2, 3, &mut ChaCha20Rng::seed_from_u64(0x5e7)).unwrap()
        })
    }

    /// `pair_ctx` separates the two directions of a pair, different pairs and different keys.
    /// Kills `pair_ctx` returning a constant (the base OTs of every pair and key would share
    /// one domain, so seeds or messages of one could be replayed into another).
    #[test]
    fn pair_context_separates_directions_pairs_and_keys() {
        let pk = ProjectivePoint::GENERATOR;
        let pk2 = pk + pk;
        let mut seen = std::collections::HashSet::new();
        for key in [pk, pk2] {
            for a in 1..=4u16 {
                for b in 1..=4u16 {
                    if a != b {
                        assert!(seen.insert(pair_ctx(&key, a, b)), "({a}, {b}) repeats");
                    }
                }
            }
        }
        assert_ne!(pair_ctx(&pk, 1, 2), pair_ctx(&pk, 2, 1));
        // Ids are not truncated to a byte.
        assert_ne!(pair_ctx(&pk, 1, 2), pair_ctx(&pk, 1, 258));
    }

    const ID: usize = 8;
    const T: usize = 10;
    const N: usize = 12;

    fn with_u16(b: &[u8], at: usize, v: u16) -> Vec<u8> {
        let mut b = b.to_vec();
        b[at..at + 2].copy_from_slice(&v.to_le_bytes());
        b
    }

    /// A share whose pairwise OT state is all discarded has the shortest valid encoding,
    /// exactly the decoder's minimum length: it must still decode. Kills `<` → `<=` in the
    /// early "truncated" bound of `KeyShare::from_bytes`.
    #[test]
    fn share_of_minimum_length_decodes() {
        let mut share = key_set().shares[0].clone();
        for p in 1..=3 {
            share.discard_pair(p);
        }
        let bytes = share.to_bytes();
        assert_eq!(
            bytes.len(),
            SHARE_MAGIC.len() + 6 + SCALAR_LEN + 3 * (POINT_LEN + 32 + 1) + POINT_LEN
        );
        assert_eq!(KeyShare::from_bytes(&bytes).unwrap(), share);
        assert!(KeyShare::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    }

    /// Wrong magic, one byte short, one byte extra: each refused (for a share and a set).
    #[test]
    fn share_and_set_framing_is_exact() {
        let share = key_set().shares[1].to_bytes();
        assert!(KeyShare::from_bytes(&share).is_ok());
        let mut magic = share.to_vec();
        magic[0] ^= 1;
        assert_eq!(
            KeyShare::from_bytes(&magic),
            Err(Error::Decode("bad magic"))
        );
        assert!(KeyShare::from_bytes(&share[..share.len() - 1]).is_err());
        let mut long = share.to_vec();
        long.push(0);
        assert_eq!(
            KeyShare::from_bytes(&long),
            Err(Error::Decode("trailing bytes"))
        );
        let set = key_set().to_bytes();
        assert!(KeySet::from_bytes(&set).is_ok());
        let mut magic = set.to_vec();
        magic[7] ^= 1;
        assert_eq!(KeySet::from_bytes(&magic), Err(Error::Decode("bad magic")));
        assert!(KeySet::from_bytes(&set[..set.len() - 1]).is_err());
        let mut long = set.to_vec();
        long.push(0);
        assert_eq!(
            KeySet::from_bytes(&long),
            Err(Error::Decode("trailing bytes"))
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Rewriting the threshold of a valid 2-of-3 share decodes exactly when `2 <= t <= 3`.
        /// Kills `||` → `&&` and `<`/`>` boundary mutants in the threshold bound.
        #[test]
        fn share_threshold_is_accepted_iff_in_range(t in prop_oneof![0u16..=5, any::<u16>()]) {
            let b = with_u16(&key_set().shares[0].to_bytes(), T, t);
            prop_assert_eq!(KeyShare::from_bytes(&b).is_ok(), (2..=3).contains(&t));
        }

        /// Rewriting the party id of party 2's share decodes only for its own id (another
        /// valid id collides with the OT slot layout; 0 and ids above n are out of range).
        /// Kills `||` → `&&` and boundary mutants in the id bound.
        #[test]
        fn share_id_is_checked(id in prop_oneof![0u16..=5, any::<u16>()]) {
            let b = with_u16(&key_set().shares[1].to_bytes(), ID, id);
            let r = KeyShare::from_bytes(&b);
            prop_assert_eq!(r.is_ok(), id == 2);
            if id == 0 || id > 3 {
                prop_assert_eq!(r, Err(Error::Decode("party id out of range")));
            }
        }

        /// Rewriting the party count decodes only for the true count, and a count below 2 is
        /// refused as out of range.
        #[test]
        fn share_party_count_is_checked(n in prop_oneof![0u16..=5, any::<u16>()]) {
            let b = with_u16(&key_set().shares[2].to_bytes(), N, n);
            let r = KeyShare::from_bytes(&b);
            prop_assert_eq!(r.is_ok(), n == 3);
            if n < 2 {
                prop_assert_eq!(r, Err(Error::Decode("party count out of range")));
            }
        }

        /// Rewriting a key set's party count decodes only for the true count.
        #[test]
        fn set_party_count_is_checked(n in prop_oneof![0u16..=5, any::<u16>()]) {
            let b = with_u16(&key_set().to_bytes(), 8, n);
            let r = KeySet::from_bytes(&b);
            prop_assert_eq!(r.is_ok(), n == 3);
            if n < 2 {
                prop_assert_eq!(r, Err(Error::Decode("party count out of range")));
            }
        }
    }

    /// A pair's OT state and its set-up name the two parties in `Debug` and nothing else (and
    /// the set reports its parameters). Kills the emptied `Debug` impls of `PairOt` and
    /// `PairSetup`, and `KeySet::threshold` → 0 or 1.
    #[test]
    fn pair_state_debug_shows_only_the_pair() {
        let set = key_set();
        assert_eq!((set.threshold(), set.parties()), (2, 3));
        let ot = set.shares[0].ot[1].as_ref().unwrap();
        assert_eq!(format!("{ot:?}"), "PairOt { me: 1, peer: 2, .. }");
        let accel = backend_cpu::CpuBackend::new();
        let pk = set.shares[0].public_key;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (setup, _) = PairSetup::start(&accel, &pk, 3, 1, &mut rng).unwrap();
        assert_eq!(format!("{setup:?}"), "PairSetup { me: 3, peer: 1, .. }");
    }

    /// The secret share and zero seeds are wiped, and dropping a share runs the wipe.
    /// Kills an emptied `KeyShare::wipe` or `Drop::drop`.
    #[test]
    fn key_share_is_wiped_on_drop() {
        let mut share = key_set().shares[0].clone();
        assert_ne!(share.secret, Scalar::ZERO);
        assert!(share.zero_seeds.iter().flatten().any(|b| *b != 0));
        share.wipe();
        assert_eq!(share.secret, Scalar::ZERO);
        assert!(share.zero_seeds.iter().flatten().all(|b| *b == 0));
        let before = crate::tests::wipes("KeyShare");
        drop(share);
        assert_eq!(crate::tests::wipes("KeyShare"), before + 1);
    }
}
