//! Serialization of secret key material: exact-capacity zeroizing buffers, round trips, and
//! adversarial decoding (random bytes, truncations, out-of-range fields, bad peer ids).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::OnceLock;

use dkls23::keygen::{PairOt, PairSetup};
use dkls23::{Error, KeySet, KeyShare, embedded};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// A 2-of-3 key set, generated once for the whole file (base OTs are slow).
fn key_set() -> &'static KeySet {
    static SET: OnceLock<KeySet> = OnceLock::new();
    SET.get_or_init(|| {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(40);
        embedded::dkg(&accel, 2, 3, &mut rng).unwrap()
    })
}

#[test]
fn key_set_bytes_capacity_equals_length() {
    let set = key_set();
    let bytes = set.to_bytes();
    assert_eq!(bytes.capacity(), bytes.len());
    assert_eq!(&KeySet::from_bytes(&bytes).unwrap(), set);
}

#[test]
fn key_share_bytes_capacity_equals_length() {
    for share in key_set().shares() {
        let bytes = share.to_bytes();
        assert_eq!(bytes.capacity(), bytes.len());
        assert_eq!(&KeyShare::from_bytes(&bytes).unwrap(), share);
    }
}

#[test]
fn key_share_round_trip_preserves_pair_state() {
    let share = &key_set().shares()[0];
    let back = KeyShare::from_bytes(&share.to_bytes()).unwrap();
    for peer in 1..=3 {
        assert_eq!(back.pair_ready(peer), share.pair_ready(peer));
    }
    assert_eq!(back.to_bytes(), share.to_bytes());
    assert!(matches!(
        KeyShare::from_bytes(&[]),
        Err(Error::Decode("bad magic"))
    ));
}

use dkls23::PartyId;
use proptest::prelude::*;

/// Offsets in a [`KeyShare`] encoding.
const ID: usize = 8;
const T: usize = 10;
const N: usize = 12;

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_le_bytes());
}

/// Offset of the first OT slot tag of a share of `n` parties.
fn first_slot(n: usize) -> usize {
    14 + 32 + 33 + n * (33 + 32)
}

fn decode_error(b: &[u8]) -> Error {
    KeyShare::from_bytes(b).unwrap_err()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_bytes_are_rejected(b in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(KeyShare::from_bytes(&b).is_err());
        prop_assert!(KeySet::from_bytes(&b).is_err());
        let share = [b"DKLS23K1".as_slice(), &b].concat();
        prop_assert!(KeyShare::from_bytes(&share).is_err());
        let set = [b"DKLS23S1".as_slice(), &b].concat();
        prop_assert!(KeySet::from_bytes(&set).is_err());
    }

    #[test]
    fn random_tail_after_valid_header_is_rejected(
        b in proptest::collection::vec(any::<u8>(), 0..4096),
    ) {
        let valid = key_set().shares()[1].to_bytes();
        let share = [&valid[..14], &b].concat();
        prop_assert!(KeyShare::from_bytes(&share).is_err());
    }
}

#[test]
fn every_truncation_of_key_share_is_rejected() {
    let bytes = key_set().shares()[2].to_bytes();
    for len in 0..bytes.len() {
        assert!(KeyShare::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
    }
}

#[test]
fn every_truncation_of_key_set_is_rejected() {
    let bytes = key_set().to_bytes();
    for len in 0..bytes.len() {
        assert!(KeySet::from_bytes(&bytes[..len]).is_err(), "prefix {len}");
    }
}

#[test]
fn out_of_range_party_id_is_rejected() {
    let valid = key_set().shares()[0].to_bytes();
    for id in [0, 4, 256, u16::MAX] {
        let mut b = valid.to_vec();
        put_u16(&mut b, ID, id);
        assert_eq!(
            decode_error(&b),
            Error::Decode("party id out of range"),
            "id {id}"
        );
    }
}

#[test]
fn out_of_range_threshold_is_rejected() {
    let valid = key_set().shares()[0].to_bytes();
    for t in [0, 1, 4, 256, u16::MAX] {
        let mut b = valid.to_vec();
        put_u16(&mut b, T, t);
        assert_eq!(
            decode_error(&b),
            Error::Decode("threshold out of range"),
            "t {t}"
        );
    }
}

#[test]
fn out_of_range_party_count_is_rejected() {
    let valid = key_set().shares()[2].to_bytes();
    for n in [0, 1] {
        let mut b = valid.to_vec();
        put_u16(&mut b, N, n);
        assert_eq!(decode_error(&b), Error::Decode("party count out of range"));
    }
    let mut b = valid.to_vec();
    put_u16(&mut b, N, 2);
    assert_eq!(decode_error(&b), Error::Decode("party id out of range"));
    for n in [4, 256, u16::MAX] {
        let mut b = valid.to_vec();
        put_u16(&mut b, N, n);
        assert!(KeyShare::from_bytes(&b).is_err(), "n {n}");
    }
}

#[test]
fn bad_ot_tag_is_rejected() {
    let valid = key_set().shares()[0].to_bytes();
    for tag in [2, 255] {
        let mut b = valid.to_vec();
        b[first_slot(3)] = tag;
        assert_eq!(decode_error(&b), Error::Decode("bad OT tag"));
    }
}

#[test]
fn ot_state_with_own_id_is_rejected() {
    // Party 1's own slot is the first one, empty: give it a full OT state.
    let valid = key_set().shares()[0].to_bytes();
    let at = first_slot(3);
    assert_eq!(valid[at], 0);
    let pair = vec![0u8; 128 * 64 + 16 + 128 * 32];
    let b = [&valid[..at], &[1u8], &pair, &valid[at + 1..]].concat();
    assert_eq!(decode_error(&b), Error::Decode("OT state with own id"));
}

/// Offsets of the share length prefixes of a [`KeySet`] encoding.
fn share_offsets(b: &[u8]) -> Vec<usize> {
    let mut at = 10;
    let mut out = Vec::new();
    while at < b.len() {
        out.push(at);
        at += 4 + u32::from_le_bytes(b[at..at + 4].try_into().unwrap()) as usize;
    }
    out
}

#[test]
fn out_of_range_key_set_party_count_is_rejected() {
    let valid = key_set().to_bytes();
    for (n, err) in [
        (0, Some("party count out of range")),
        (1, Some("party count out of range")),
        (2, Some("share party count mismatch")),
        (4, Some("share party count mismatch")),
        (256, None),
        (u16::MAX, None),
    ] {
        let mut b = valid.to_vec();
        put_u16(&mut b, 8, n);
        let e = KeySet::from_bytes(&b).unwrap_err();
        if let Some(what) = err {
            assert_eq!(e, Error::Decode(what), "n {n}");
        }
    }
}

#[test]
fn out_of_range_key_set_share_id_is_rejected() {
    let valid = key_set().to_bytes();
    let offs = share_offsets(&valid);
    assert_eq!(offs.len(), 3);
    let second = offs[1] + 4;
    for (id, what) in [
        (0, "party id out of range"),
        // A valid id elsewhere in the set: that slot's OT state is now "with itself".
        (1, "OT state with own id"),
        (3, "OT state with own id"),
        (4, "party id out of range"),
        (256, "party id out of range"),
    ] {
        let mut b = valid.to_vec();
        put_u16(&mut b, second + ID, id);
        assert_eq!(
            KeySet::from_bytes(&b).unwrap_err(),
            Error::Decode(what),
            "id {id}"
        );
    }
}

#[test]
fn out_of_range_key_set_share_length_is_rejected() {
    let valid = key_set().to_bytes();
    let at = share_offsets(&valid)[0];
    let len = u32::from_le_bytes(valid[at..at + 4].try_into().unwrap());
    for l in [0, 1, len - 1, len + 1, u32::MAX] {
        let mut b = valid.to_vec();
        b[at..at + 4].copy_from_slice(&l.to_le_bytes());
        assert!(KeySet::from_bytes(&b).is_err(), "length {l}");
    }
}

#[test]
fn mismatched_key_set_threshold_is_rejected() {
    let mut set = key_set().to_bytes().to_vec();
    let second = share_offsets(&set)[1] + 4;
    put_u16(&mut set, second + T, 3);
    assert_eq!(
        KeySet::from_bytes(&set).unwrap_err(),
        Error::Decode("share threshold mismatch")
    );
}

/// Runs both directions of a pair's base OT between `me` and `peer` in memory and returns
/// the state made at `me`.
fn pair_setup(me: PartyId, peer: PartyId, seed: u64) -> Result<PairOt, Error> {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let pk = key_set().shares()[0].public_key();
    let (mut sa, mut ma) = PairSetup::start(&accel, &pk, me, peer, &mut rng)?;
    let (mut sb, mut mb) = PairSetup::start(&accel, &pk, peer, me, &mut rng)?;
    for _ in 2..=5 {
        let next_a = sa.step(&accel, &mb, &mut rng)?;
        mb = sb.step(&accel, &ma, &mut rng)?;
        ma = next_a;
    }
    sb.finish(&ma)?;
    sa.finish(&mb)
}

#[test]
fn out_of_range_peer_is_rejected_by_pair_setup_start() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(42);
    let pk = key_set().shares()[0].public_key();
    for (me, peer) in [(1, 0), (1, 1), (3, 3), (0, 2)] {
        assert_eq!(
            PairSetup::start(&accel, &pk, me, peer, &mut rng).unwrap_err(),
            Error::InvalidParameters("peer id out of range"),
            "me {me} peer {peer}"
        );
    }
}

#[test]
fn pair_setup_refuses_messages_of_the_wrong_flow_and_extra_steps() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(43);
    let pk = key_set().shares()[0].public_key();
    let (mut a, _) = PairSetup::start(&accel, &pk, 1, 2, &mut rng).unwrap();
    let (_, mb) = PairSetup::start(&accel, &pk, 2, 1, &mut rng).unwrap();
    assert_eq!(a.peer(), 2);
    // Party 2's flow-1 message relabelled as flow 2 is refused, naming party 2.
    let mut wrong = mb.clone();
    wrong[0] = 2;
    assert!(matches!(
        a.step(&accel, &wrong, &mut rng),
        Err(Error::Malformed { culprit: 2, .. })
    ));
    // The failed setup is spent.
    assert_eq!(
        a.step(&accel, &mb, &mut rng).unwrap_err(),
        Error::InvalidParameters("base OT step out of order")
    );
    // A fresh pair completes its four steps; a fifth is refused, and so is finishing on a
    // message of another flow.
    let (mut a, mut ma) = PairSetup::start(&accel, &pk, 1, 2, &mut rng).unwrap();
    let (mut b, mut mb) = PairSetup::start(&accel, &pk, 2, 1, &mut rng).unwrap();
    for _ in 2..=5 {
        let next_a = a.step(&accel, &mb, &mut rng).unwrap();
        mb = b.step(&accel, &ma, &mut rng).unwrap();
        ma = next_a;
    }
    assert_eq!(
        a.step(&accel, &mb, &mut rng).unwrap_err(),
        Error::InvalidParameters("base OT step out of order")
    );
    let (mut c, _) = PairSetup::start(&accel, &pk, 1, 2, &mut rng).unwrap();
    let stale = c.step(&accel, &mb, &mut rng).unwrap_err();
    assert!(matches!(stale, Error::Malformed { culprit: 2, .. }));
    let mut wrong = ma.clone();
    wrong[0] = 4;
    assert!(matches!(
        b.finish(&wrong),
        Err(Error::Malformed { culprit: 1, .. })
    ));
}

#[test]
fn out_of_range_peer_is_rejected_by_install_pair() {
    let [a, ..] = key_set().shares() else {
        panic!("three shares")
    };
    let mut a = a.clone();
    for peer in [4, 256] {
        let ot = pair_setup(1, peer, 44).unwrap();
        assert_eq!(
            a.install_pair(ot).unwrap_err(),
            Error::InvalidParameters("peer id out of range"),
            "peer {peer}"
        );
    }
    // State made by party 2 (with peer 1) cannot be installed in party 1's share.
    let ot = pair_setup(2, 1, 45).unwrap();
    assert_eq!(
        a.install_pair(ot).unwrap_err(),
        Error::InvalidParameters("OT state is for another party")
    );
    assert_eq!(&a, &key_set().shares()[0]);
    // State made by party 1 with party 3 installs.
    let ot = pair_setup(1, 3, 46).unwrap();
    assert_eq!((ot.me(), ot.peer()), (1, 3));
    a.install_pair(ot).unwrap();
    assert!(a.pair_ready(3));
    assert_ne!(&a, &key_set().shares()[0]);
}
