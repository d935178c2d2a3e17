//! Malicious-party tests: each check aborts naming the culprit, the pair's OT state is
//! discarded, and a fresh base OT runs before that pair signs again.

use k256::ProjectivePoint;
use k256::elliptic_curve::group::GroupEncoding;
use rand_chacha::ChaCha20Rng;
use rand_core::{CryptoRng, CryptoRngCore, RngCore, SeedableRng};

use crate::embedded;
use crate::error::Error;
use crate::keygen::{KeySet, KeyShare, PartyId};
use crate::sign::{self, PartyPresignature, Round1Msg, Round2Msg};

thread_local! {
    /// Names of the types whose `wipe` ran on this thread (see [`note_wipe`]).
    static WIPED: std::cell::RefCell<Vec<&'static str>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Test-only probe called by every secret holder's `wipe` (which its `Drop` runs), so a test
/// can check that dropping a value really wipes it.
pub(crate) fn note_wipe(name: &'static str) {
    WIPED.with(|w| w.borrow_mut().push(name));
}

/// How many times `wipe` of the type `name` ran on this thread so far.
pub(crate) fn wipes(name: &str) -> usize {
    WIPED.with(|w| w.borrow().iter().filter(|n| **n == name).count())
}

thread_local! {
    /// Batches whose Γ checks were redone peer by peer on this thread (see
    /// [`note_gamma_fallback`]).
    static GAMMA_FALLBACKS: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Test-only probe called when a batch's combined Γ check fails and every peer's check is
/// redone on its own, so a test can check that honest batches pass the combined check.
pub(crate) fn note_gamma_fallback() {
    GAMMA_FALLBACKS.with(|c| c.set(c.get() + 1));
}

/// How many batches fell back to peer-by-peer Γ checks on this thread so far.
fn gamma_fallbacks() -> usize {
    GAMMA_FALLBACKS.with(std::cell::Cell::get)
}

/// An RNG stuck on one output: every call returns the same bytes.
pub(crate) struct Stuck;

impl RngCore for Stuck {
    fn next_u32(&mut self) -> u32 {
        0x0707_0707
    }
    fn next_u64(&mut self) -> u64 {
        0x0707_0707_0707_0707
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(7);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(7);
        Ok(())
    }
}

impl CryptoRng for Stuck {}

/// One presigning session's round-1 and round-2 messages and presignatures.
type Transcript = (Vec<Round1Msg>, Vec<Round2Msg>, Vec<PartyPresignature>);

fn session(
    accel: &backend_cpu::CpuBackend,
    set: &mut KeySet,
    signers: &[PartyId],
    session_id: &[u8; 32],
    rng: &mut impl CryptoRngCore,
    t1: impl Fn(&mut Round1Msg),
    t2: impl Fn(&mut Round2Msg),
) -> Result<Transcript, Error> {
    let mut st1 = Vec::new();
    let mut m1 = Vec::new();
    for &p in signers {
        let share = &set.shares[usize::from(p) - 1];
        let (s, m) = sign::start(accel, share, signers, session_id, rng)?;
        st1.push(s);
        m1.extend(m);
    }
    m1.iter_mut().for_each(&t1);
    let mut st2 = Vec::new();
    let mut m2 = Vec::new();
    for (s, &p) in st1.into_iter().zip(signers) {
        let mine: Vec<_> = m1.iter().filter(|m| m.to == p).cloned().collect();
        let (s2, m) = s.round2(accel, &mut set.shares[usize::from(p) - 1], &mine, rng)?;
        st2.push(s2);
        m2.extend(m);
    }
    m2.iter_mut().for_each(&t2);
    let mut parts = Vec::new();
    for (s, &p) in st2.into_iter().zip(signers) {
        let mine: Vec<_> = m2.iter().filter(|m| m.to == p).cloned().collect();
        parts.push(s.presign(accel, &mut set.shares[usize::from(p) - 1], &mine)?);
    }
    Ok((m1, m2, parts))
}

/// Runs a tampered session, checks the abort and the discarded pair, then checks the pair
/// gets fresh base-OT state and signs correctly again.
fn abort_then_recover(
    t1: impl Fn(&mut Round1Msg),
    t2: impl Fn(&mut Round2Msg),
    expect: Error,
    victim: PartyId,
    culprit: PartyId,
) {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(u64::from(victim) * 31 + u64::from(culprit));
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let signers = [1, 2, 3];
    let old = set.share(victim).unwrap().pair(culprit).unwrap().clone();
    let err = session(&accel, &mut set, &signers, &[9; 32], &mut rng, t1, t2).unwrap_err();
    assert_eq!(err, expect);
    assert!(
        !set.share(victim).unwrap().pair_ready(culprit),
        "pair OT not discarded"
    );
    // The victim refuses to sign with the culprit until a fresh base OT is run.
    assert_eq!(
        sign::start(
            &accel,
            set.share(victim).unwrap(),
            &signers,
            &[10; 32],
            &mut rng
        )
        .unwrap_err(),
        Error::OtStateDiscarded { peer: culprit }
    );
    let pre = embedded::presign_batch(&accel, &mut set, &signers, 1, &mut rng).unwrap();
    let new = set.share(victim).unwrap().pair(culprit).unwrap().clone();
    assert!(new.as_sender.seeds != old.as_sender.seeds);
    assert!(new.as_receiver.seeds != old.as_receiver.seeds);
    let peer = set.share(culprit).unwrap().pair(victim).unwrap();
    assert_eq!(
        peer.as_receiver.seeds[0][(new.as_sender.delta & 1) as usize],
        new.as_sender.seeds[0]
    );
    let pre = pre.into_iter().next().unwrap();
    embedded::sign(&accel, &set, pre, &[0x42; 32]).unwrap();
}

#[test]
fn bad_ot_extension_consistency_names_culprit() {
    abort_then_recover(
        |m| {
            if m.from == 2 && m.to == 1 {
                m.kos.t_check ^= 1 << 77;
            }
        },
        |_| {},
        Error::OtConsistency { culprit: 2 },
        1,
        2,
    );
}

#[test]
fn bad_multiplication_check_names_culprit() {
    abort_then_recover(
        |_| {},
        |m| {
            if m.from == 3 && m.to == 1 {
                m.vole.u[1] += k256::Scalar::ONE;
            }
        },
        Error::MultiplicationConsistency { culprit: 3 },
        1,
        3,
    );
}

#[test]
fn bad_commitment_opening_names_culprit() {
    abort_then_recover(
        |_| {},
        |m| {
            if m.from == 3 && m.to == 2 {
                m.big_r += ProjectivePoint::GENERATOR;
            }
        },
        Error::CommitmentMismatch { culprit: 3 },
        2,
        3,
    );
}

#[test]
fn bad_multiplication_share_names_culprit() {
    abort_then_recover(
        |_| {},
        |m| {
            if m.from == 1 && m.to == 2 {
                m.gamma_v += ProjectivePoint::GENERATOR;
            }
        },
        Error::BadShare { culprit: 1 },
        2,
        1,
    );
}

/// A peer opening its commitment with the identity as `R_j` is refused as a commitment
/// mismatch naming it, also when it is the only point of the batched encoding (2-of-2).
#[test]
fn identity_instance_point_is_a_commitment_mismatch() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(43);
    let mut set = embedded::dkg(&accel, 2, 2, &mut rng).unwrap();
    let err = session(
        &accel,
        &mut set,
        &[1, 2],
        &[12; 32],
        &mut rng,
        |_| {},
        |m| {
            if m.from == 2 {
                m.big_r = ProjectivePoint::IDENTITY;
            }
        },
    )
    .unwrap_err();
    assert_eq!(err, Error::CommitmentMismatch { culprit: 2 });
}

/// Batches of no sessions are empty, not a failure of the batched point normalisation.
#[test]
fn empty_batches_give_empty_results() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(44);
    let mut set = embedded::dkg(&accel, 2, 2, &mut rng).unwrap();
    let share = set.share(1).unwrap().clone();
    assert!(
        sign::start_batch(&accel, &share, &[1, 2], &[], &mut rng)
            .unwrap()
            .is_empty()
    );
    let mut key = share;
    assert!(
        sign::SignRound1::round2_batch(vec![], &accel, &mut key, &[], &mut rng)
            .unwrap()
            .is_empty()
    );
    assert!(
        sign::SignRound2::presign_batch(vec![], &accel, &mut key, &[])
            .unwrap()
            .is_empty()
    );
    assert!(sign::combine_batch(&accel, &[]).is_empty());
    assert!(
        embedded::presign_batch(&accel, &mut set, &[1, 2], 0, &mut rng)
            .unwrap()
            .is_empty()
    );
}

/// A pair discarded on a copy of the key set (presigning on another thread) is discarded in
/// the set by `absorb_discards`, and only that pair.
/// Presigning keeps the PRG keys it expanded in the share (both roles of each pair it used);
/// `forget_expanded_keys` drops all of them, and presigning again still works.
#[test]
fn expanded_keys_are_kept_by_presigning_and_forgotten_on_request() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(43);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let held = |set: &KeySet, a: PartyId, b: PartyId| {
        let p = set.share(a).unwrap().pair(b).unwrap();
        p.as_receiver.holds_prgs() && p.as_sender.holds_prgs()
    };
    assert!(!held(&set, 1, 2));
    embedded::presign_batch(&accel, &mut set, &[1, 2], 2, &mut rng).unwrap();
    assert!(held(&set, 1, 2) && held(&set, 2, 1));
    assert!(!held(&set, 1, 3), "a pair not used expands nothing");
    for id in 1..=3 {
        set.share_mut(id).unwrap().forget_expanded_keys();
    }
    assert!(!held(&set, 1, 2) && !held(&set, 2, 1));
    assert_eq!(
        embedded::presign_batch(&accel, &mut set, &[1, 2], 1, &mut rng)
            .unwrap()
            .len(),
        1
    );
}

#[test]
fn discards_made_on_a_copy_are_absorbed() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(41);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let mut copy = set.clone();
    let err = session(
        &accel,
        &mut copy,
        &[1, 2, 3],
        &[9; 32],
        &mut rng,
        |_| {},
        |m| {
            if m.from == 1 && m.to == 2 {
                m.gamma_v += ProjectivePoint::GENERATOR;
            }
        },
    )
    .unwrap_err();
    assert_eq!(err, Error::BadShare { culprit: 1 });
    assert!(!copy.share(2).unwrap().pair_ready(1));
    assert!(set.share(2).unwrap().pair_ready(1));
    assert!(set.absorb_discards(&copy), "a discard is reported");
    assert!(!set.share(2).unwrap().pair_ready(1));
    assert!(!set.absorb_discards(&copy), "nothing left to discard");
    for (a, b) in [(1, 2), (1, 3), (2, 3), (3, 1), (3, 2)] {
        assert!(set.share(a).unwrap().pair_ready(b), "pair ({a}, {b}) lost");
    }
}

/// The two Γ checks are combined with a secret weight ρ, not summed: a Γ_u shifted alone,
/// and a Γ_u and Γ_v shifted by opposite amounts (which a plain sum of the two checks, ρ = 1,
/// would accept), are both caught and name the sender.
#[test]
fn gamma_checks_catch_each_gamma_and_compensating_shifts() {
    let shift = ProjectivePoint::GENERATOR * k256::Scalar::from(7u64);
    for compensate in [false, true] {
        abort_then_recover(
            |_| {},
            |m| {
                if m.from == 2 && m.to == 1 {
                    m.gamma_u += shift;
                    if compensate {
                        m.gamma_v -= shift;
                    }
                }
            },
            Error::BadShare { culprit: 2 },
            1,
            2,
        );
    }
}

/// Runs `count` presigning sessions for signers 1, 2 and 3 through the batch calls, with
/// `t2` applied to every round-2 message (given its session index), and returns party 1's
/// result for the whole batch.
fn batch_for_party_1(
    set: &mut KeySet,
    count: usize,
    t2: impl Fn(usize, &mut Round2Msg),
) -> Result<Vec<PartyPresignature>, Error> {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(404);
    let signers = [1, 2, 3];
    let sids: Vec<[u8; 32]> = (0..count).map(|s| [s as u8 + 1; 32]).collect();
    let mut st1 = Vec::new();
    let mut m1 = Vec::new();
    for &p in &signers {
        let share = &set.shares[usize::from(p) - 1];
        let (states, msgs): (Vec<_>, Vec<_>) =
            sign::start_batch(&accel, share, &signers, &sids, &mut rng)
                .unwrap()
                .into_iter()
                .unzip();
        st1.push(states);
        m1.push(msgs);
    }
    let inbox1 = |p: PartyId, s: usize| -> Vec<Round1Msg> {
        m1.iter()
            .flat_map(|by| by[s].iter().filter(|m| m.to == p).cloned())
            .collect()
    };
    let mut st2 = Vec::new();
    let mut m2: Vec<Vec<Vec<Round2Msg>>> = Vec::new();
    for (states, &p) in st1.into_iter().zip(&signers) {
        let mine: Vec<Vec<Round1Msg>> = (0..count).map(|s| inbox1(p, s)).collect();
        let mine: Vec<&[Round1Msg]> = mine.iter().map(Vec::as_slice).collect();
        let share = &mut set.shares[usize::from(p) - 1];
        let (states, msgs): (Vec<_>, Vec<_>) =
            sign::SignRound1::round2_batch(states, &accel, share, &mine, &mut rng)
                .unwrap()
                .into_iter()
                .unzip();
        st2.push(states);
        m2.push(msgs);
    }
    for by in &mut m2 {
        for (s, msgs) in by.iter_mut().enumerate() {
            msgs.iter_mut().for_each(|m| t2(s, m));
        }
    }
    let mine: Vec<Vec<Round2Msg>> = (0..count)
        .map(|s| {
            m2.iter()
                .flat_map(|by| by[s].iter().filter(|m| m.to == 1).cloned())
                .collect()
        })
        .collect();
    let mine: Vec<&[Round2Msg]> = mine.iter().map(Vec::as_slice).collect();
    let states = st2.swap_remove(0);
    sign::SignRound2::presign_batch(states, &accel, &mut set.shares[0], &mine)
}

/// In a batch, the Γ checks of every session and peer are combined: a bad Γ in one session
/// (here the third of four) still names its sender and discards only that pair, and shifts
/// that cancel across two sessions (which a plain sum over the batch would accept) are caught
/// too. An untouched batch gives every presignature.
#[test]
fn batched_gamma_checks_name_the_culprit_in_any_session() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(405);
    let set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let shift = ProjectivePoint::GENERATOR * k256::Scalar::from(5u64);

    let mut clean = set.clone();
    let before = gamma_fallbacks();
    assert_eq!(
        batch_for_party_1(&mut clean, 4, |_, _| {}).unwrap().len(),
        4
    );
    assert_eq!(
        gamma_fallbacks(),
        before,
        "an honest batch failed the combined check"
    );

    let mut one = set.clone();
    let err = batch_for_party_1(&mut one, 4, |s, m| {
        if s == 2 && m.from == 3 && m.to == 1 {
            m.gamma_u += shift;
        }
    })
    .unwrap_err();
    assert_eq!(err, Error::BadShare { culprit: 3 });
    assert_eq!(
        gamma_fallbacks(),
        before + 1,
        "named without the peer-by-peer checks"
    );
    assert!(!one.share(1).unwrap().pair_ready(3), "culprit's pair kept");
    assert!(one.share(1).unwrap().pair_ready(2), "honest pair discarded");

    let mut across = set.clone();
    let err = batch_for_party_1(&mut across, 2, |s, m| {
        if m.from == 2 && m.to == 1 {
            if s == 0 {
                m.gamma_u += shift;
            } else {
                m.gamma_u -= shift;
            }
        }
    })
    .unwrap_err();
    assert_eq!(err, Error::BadShare { culprit: 2 });
}

#[test]
fn shifted_public_key_share_is_caught_by_gamma_check() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let mut set = embedded::dkg(&accel, 2, 2, &mut rng).unwrap();
    // Shifting pk_share alone is caught by the Γ_v check, naming the culprit.
    let err = session(
        &accel,
        &mut set,
        &[1, 2],
        &[11; 32],
        &mut rng,
        |_| {},
        |m| {
            if m.from == 2 {
                m.pk_share += ProjectivePoint::GENERATOR;
            }
        },
    )
    .unwrap_err();
    assert_eq!(err, Error::BadShare { culprit: 2 });
}

#[test]
fn dkg_shares_interpolate_to_the_public_key() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let set = embedded::dkg(&accel, 3, 5, &mut rng).unwrap();
    let k = set.share(1).unwrap();
    for signers in [[1u16, 2, 3], [2, 4, 5], [5, 1, 3]] {
        let mut acc = ProjectivePoint::IDENTITY;
        let mut sec = k256::Scalar::ZERO;
        for &i in &signers {
            let l = crate::sign::lagrange_at_zero(i, &signers);
            acc += k.verification_share(i).unwrap() * l;
            sec += set.share(i).unwrap().secret * l;
            assert_eq!(
                k.verification_share(i).unwrap(),
                ProjectivePoint::GENERATOR * set.share(i).unwrap().secret
            );
        }
        assert_eq!(acc, k.public_key());
        assert_eq!(ProjectivePoint::GENERATOR * sec, k.public_key());
    }
}

#[test]
fn debug_output_is_redacted() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let set = embedded::dkg(&accel, 2, 2, &mut rng).unwrap();
    let s = format!("{:?}", set);
    assert!(s.contains("redacted"));
    let secret = hex(&set.share(1).unwrap().secret.to_bytes());
    assert!(!s.contains(&secret));
}

/// The instance points `R_i` each signer opened in round 2, by sender.
fn instance_points(m2: &[Round2Msg], signers: &[PartyId]) -> Vec<ProjectivePoint> {
    signers
        .iter()
        .map(|&p| m2.iter().find(|m| m.from == p).unwrap().big_r)
        .collect()
}

/// Signs `prehash` with one session's presignatures and checks the signature with
/// libsecp256k1.
fn sign_and_verify_with_libsecp256k1(
    accel: &backend_cpu::CpuBackend,
    parts: Vec<PartyPresignature>,
    prehash: &[u8; 32],
) {
    let pk = parts[0].public_key();
    let big_r = parts[0].big_r();
    let msgs: Vec<_> = parts.into_iter().map(|p| p.sign(prehash)).collect();
    let (sig, _) = sign::combine(accel, &pk, &big_r, prehash, &msgs).unwrap();
    let secp = secp256k1::Secp256k1::verification_only();
    let pk = secp256k1::PublicKey::from_slice(&pk.to_bytes()).unwrap();
    let sig = secp256k1::ecdsa::Signature::from_compact(&sig).unwrap();
    let msg = secp256k1::Message::from_digest(*prehash);
    secp.verify_ecdsa(msg, &sig, &pk).unwrap();
}

/// Hedged nonces (RFC 9591 §4.1): with an RNG stuck on one output, every party still gets
/// its own `r_i` (parties differ in share and id), each session gets fresh ones (the
/// session id differs), and the signatures verify with libsecp256k1.
#[test]
fn stuck_rng_still_gives_distinct_nonces_per_party_and_session() {
    let accel = backend_cpu::CpuBackend::new();
    let mut set = embedded::dkg(&accel, 2, 3, &mut ChaCha20Rng::seed_from_u64(12)).unwrap();
    let signers = [1, 2, 3];
    let (a1, a2, a_parts) = session(
        &accel,
        &mut set,
        &signers,
        &[1; 32],
        &mut Stuck,
        |_| {},
        |_| {},
    )
    .unwrap();
    let (b1, b2, b_parts) = session(
        &accel,
        &mut set,
        &signers,
        &[2; 32],
        &mut Stuck,
        |_| {},
        |_| {},
    )
    .unwrap();
    let ra = instance_points(&a2, &signers);
    let rb = instance_points(&b2, &signers);
    for i in 0..signers.len() {
        for j in i + 1..signers.len() {
            assert_ne!(ra[i], ra[j], "two parties share an instance key");
        }
        assert_ne!(
            ra[i], rb[i],
            "a party repeated its instance key across sessions"
        );
    }
    for (x, y) in a1.iter().zip(&b1) {
        assert_ne!(x.commitment, y.commitment);
    }
    assert_ne!(a_parts[0].big_r(), b_parts[0].big_r());
    sign_and_verify_with_libsecp256k1(&accel, a_parts, &[0x11; 32]);
    sign_and_verify_with_libsecp256k1(&accel, b_parts, &[0x22; 32]);
}

/// The same session id and stuck RNG for the same party give the same instance key: the
/// session id is what keeps sessions apart when the RNG fails, so it must be unique.
#[test]
fn stuck_rng_and_repeated_session_id_repeat_the_instance_key() {
    let accel = backend_cpu::CpuBackend::new();
    let mut set = embedded::dkg(&accel, 2, 2, &mut ChaCha20Rng::seed_from_u64(13)).unwrap();
    let (_, a2, _) = session(
        &accel,
        &mut set,
        &[1, 2],
        &[3; 32],
        &mut Stuck,
        |_| {},
        |_| {},
    )
    .unwrap();
    let (_, b2, _) = session(
        &accel,
        &mut set,
        &[1, 2],
        &[3; 32],
        &mut Stuck,
        |_| {},
        |_| {},
    )
    .unwrap();
    assert_eq!(instance_points(&a2, &[1, 2]), instance_points(&b2, &[1, 2]));
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn key_share_bytes_with_discarded_pair_capacity_equals_length() {
    let accel = backend_cpu::CpuBackend::new();
    let mut set = embedded::dkg(&accel, 2, 3, &mut ChaCha20Rng::seed_from_u64(41)).unwrap();
    set.shares[0].discard_pair(2);
    let share = set.shares[0].to_bytes();
    assert_eq!(share.capacity(), share.len());
    let back = KeyShare::from_bytes(&share).unwrap();
    assert!(!back.pair_ready(2) && back.pair_ready(3));
    let bytes = set.to_bytes();
    assert_eq!(bytes.capacity(), bytes.len());
    assert_eq!(KeySet::from_bytes(&bytes).unwrap(), set);
}

/// The wire bytes of a seeded 2-of-3 presigning session (key generation, then both rounds'
/// messages from both signers), hashed: any change to what the parties send shows here. Nodes
/// of a cluster must agree on every byte (docs/dkls23.md, "Symmetric primitives",
/// compatibility), so a change that moves this digest is a wire change and needs every node
/// upgraded together; an optimisation must leave it as it is.
#[test]
fn a_seeded_session_sends_the_recorded_bytes() {
    use sha2::{Digest, Sha256};
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2023);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let (m1, m2, _) = session(
        &accel,
        &mut set,
        &[1, 3],
        &[5; 32],
        &mut rng,
        |_| {},
        |_| {},
    )
    .unwrap();
    let mut h = Sha256::new();
    for m in &m1 {
        h.update(m.to_bytes());
    }
    for m in &m2 {
        h.update(m.to_bytes());
    }
    assert_eq!(hex(&h.finalize()), RECORDED_SESSION_DIGEST);
}

/// [`a_seeded_session_sends_the_recorded_bytes`]'s digest, recorded from the implementation
/// before the multiplication moved to `fq` arithmetic (commit 3367241).
const RECORDED_SESSION_DIGEST: &str =
    "b4764863b56e9711f16bfc1588107e0e352b64bacc2e35b982009fe76dd7c961";

/// A round-2 batch may hold sessions of different signer sets: party 1 answers a session
/// with party 2 and one with party 3 in one `round2_batch` and one `presign_batch`, each with
/// its own Lagrange coefficient, and both signatures verify with libsecp256k1.
#[test]
fn one_batch_may_mix_signer_sets() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(406);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let sets: [[PartyId; 2]; 2] = [[1, 2], [1, 3]];
    let mut ones = Vec::new();
    let mut peers = Vec::new();
    let mut m1: Vec<Vec<Round1Msg>> = Vec::new();
    for (s, signers) in sets.iter().enumerate() {
        let sid = [s as u8 + 40; 32];
        let (st, m) = sign::start(&accel, set.share(1).unwrap(), signers, &sid, &mut rng).unwrap();
        ones.push(st);
        let (pst, pm) = sign::start(
            &accel,
            set.share(signers[1]).unwrap(),
            signers,
            &sid,
            &mut rng,
        )
        .unwrap();
        peers.push(pst);
        m1.push(m.into_iter().chain(pm).collect());
    }
    let to = |p: PartyId, s: usize| -> Vec<Round1Msg> {
        m1[s].iter().filter(|m| m.to == p).cloned().collect()
    };
    let mine: Vec<Vec<Round1Msg>> = (0..2).map(|s| to(1, s)).collect();
    let mine: Vec<&[Round1Msg]> = mine.iter().map(Vec::as_slice).collect();
    let (ones, m2_one): (Vec<_>, Vec<_>) =
        sign::SignRound1::round2_batch(ones, &accel, &mut set.shares[0], &mine, &mut rng)
            .unwrap()
            .into_iter()
            .unzip();
    let mut peers2 = Vec::new();
    let mut m2_peer = Vec::new();
    for (s, st) in peers.into_iter().enumerate() {
        let p = sets[s][1];
        let (st2, m) = st
            .round2(
                &accel,
                &mut set.shares[usize::from(p) - 1],
                &to(p, s),
                &mut rng,
            )
            .unwrap();
        peers2.push(st2);
        m2_peer.push(m);
    }
    let mine: Vec<&[Round2Msg]> = m2_peer.iter().map(Vec::as_slice).collect();
    let parts_one =
        sign::SignRound2::presign_batch(ones, &accel, &mut set.shares[0], &mine).unwrap();
    for (s, (st, one)) in peers2.into_iter().zip(parts_one).enumerate() {
        let p = sets[s][1];
        let part = st
            .presign(&accel, &mut set.shares[usize::from(p) - 1], &m2_one[s])
            .unwrap();
        sign_and_verify_with_libsecp256k1(&accel, vec![one, part], &[s as u8 + 7; 32]);
    }
}
