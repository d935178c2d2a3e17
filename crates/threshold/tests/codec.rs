//! Serialization of secret key material (exact-capacity zeroizing buffers) and adversarial
//! decoding of everything that faces storage or the network.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use backend_cpu::CpuBackend;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use threshold::{Bip340Suite, Ed25519Suite, Identifier as Id, KeySet, PartyKey, Suite, embedded};

fn key_set<S: Suite>(t: u16, n: u16, seed: u64) -> KeySet<S> {
    embedded::dkg::<S>(
        &CpuBackend::new(),
        t,
        n,
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
    .unwrap()
}

fn capacity_equals_length_and_round_trips<S: Suite>() {
    for (t, n) in [(1, 1), (2, 3), (3, 5)] {
        let keys = key_set::<S>(t, n, u64::from(n));
        let bytes = keys.to_bytes();
        assert_eq!(bytes.capacity(), bytes.len());
        let back = KeySet::<S>::from_bytes(&bytes).unwrap();
        assert_eq!(back.to_bytes(), bytes);
        assert_eq!((back.threshold(), back.parties()), (t, n));
        for id in 1..=n {
            let party = PartyKey::from_set(&keys, Id::new(id).unwrap()).unwrap();
            let bytes = party.to_bytes();
            assert_eq!(bytes.capacity(), bytes.len());
            let back = PartyKey::<S>::from_bytes(&bytes).unwrap();
            assert_eq!(back.to_bytes(), bytes);
            assert_eq!(back.share().identifier().get(), id);
            assert_eq!(back.public_package(), keys.public_package());
            assert_eq!(back.public_key(), keys.public_key());
        }
    }
}

#[test]
fn key_set_bytes_capacity_equals_length_ed25519() {
    capacity_equals_length_and_round_trips::<Ed25519Suite>();
}

#[test]
fn key_set_bytes_capacity_equals_length_bip340() {
    capacity_equals_length_and_round_trips::<Bip340Suite>();
}

use std::collections::BTreeMap;

use proptest::prelude::*;
use threshold::dkg::{self, Round1Package, Round2Package};
use threshold::round1::{SigningCommitments, commit_batch};
use threshold::round2::SignatureShare;
use threshold::{Error, GroupKey, Identifier, SigningPackage, TaprootTweak};

fn signing_package<S: Suite>(keys: &KeySet<S>, taproot: TaprootTweak) -> SigningPackage<S> {
    let signers: Vec<_> = keys.shares().iter().collect();
    let committed = commit_batch::<S>(
        &CpuBackend::new(),
        &signers,
        &mut ChaCha20Rng::seed_from_u64(7),
    )
    .unwrap();
    let map: BTreeMap<Identifier, _> = signers
        .iter()
        .zip(&committed)
        .map(|(s, (_, c))| (s.identifier(), *c))
        .collect();
    SigningPackage::<S>::new(map, b"adversarial", taproot)
}

fn round1_package<S: Suite>() -> Round1Package<S> {
    let id = Identifier::new(1).unwrap();
    let mut r1 = dkg::part1_batch::<S>(
        &CpuBackend::new(),
        &[(id, 2, 3, [0x5d; 32])],
        &mut ChaCha20Rng::seed_from_u64(8),
    )
    .unwrap();
    r1.pop().unwrap().1
}

/// Every decoder of suite `S` on arbitrary bytes: never panics; the structured ones fail.
fn random_bytes_are_rejected<S: Suite>(b: &[u8]) {
    assert!(KeySet::<S>::from_bytes(b).is_err());
    assert!(SigningPackage::<S>::from_bytes(b).is_err());
    assert!(Round1Package::<S>::from_bytes(b).is_err());
    // Fixed-size encodings: random bytes of the right length may be valid.
    let id = Identifier::new(1).unwrap();
    for ok in [
        Round2Package::<S>::from_bytes(b).is_ok(),
        SignatureShare::<S>::from_bytes(id, b).is_ok(),
    ] {
        assert!(!ok || b.len() == 32);
    }
    assert!(SigningCommitments::<S>::from_bytes(b).is_err() || b.len() == 2 * S::POINT_LEN);
    assert!(GroupKey::<S>::from_bytes(b).is_err() || b.len() == S::POINT_LEN);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn random_bytes_are_rejected_ed25519(b in proptest::collection::vec(any::<u8>(), 0..1024)) {
        random_bytes_are_rejected::<Ed25519Suite>(&b);
    }

    #[test]
    fn random_bytes_are_rejected_bip340(b in proptest::collection::vec(any::<u8>(), 0..1024)) {
        random_bytes_are_rejected::<Bip340Suite>(&b);
    }

    #[test]
    fn random_tail_after_valid_header_is_rejected(
        b in proptest::collection::vec(any::<u8>(), 0..1024),
    ) {
        let keys = key_set::<Ed25519Suite>(2, 3, 9).to_bytes();
        prop_assert!(KeySet::<Ed25519Suite>::from_bytes(&[&keys[..42], &b].concat()).is_err());
        let pkg = [&[0u8, 0, 0, 0, 0][..], &b].concat();
        prop_assert!(SigningPackage::<Ed25519Suite>::from_bytes(&pkg).is_err());
    }
}

/// Whether a decoder rejects the bytes.
type Rejects = fn(&[u8]) -> bool;

fn every_truncation_is_rejected<S: Suite>() {
    let keys = key_set::<S>(2, 3, 10);
    let party = PartyKey::from_set(&keys, Id::new(2).unwrap()).unwrap();
    let encodings: [(Vec<u8>, Rejects); 6] = [
        (keys.to_bytes().to_vec(), |b| {
            KeySet::<S>::from_bytes(b).is_err()
        }),
        (party.to_bytes().to_vec(), |b| {
            PartyKey::<S>::from_bytes(b).is_err()
        }),
        (signing_package(&keys, TaprootTweak::None).to_bytes(), |b| {
            SigningPackage::<S>::from_bytes(b).is_err()
        }),
        (round1_package::<S>().to_bytes(), |b| {
            Round1Package::<S>::from_bytes(b).is_err()
        }),
        ([1u8; 32].to_vec(), |b| {
            Round2Package::<S>::from_bytes(b).is_err()
        }),
        (keys.public_package().group_key().to_bytes(), |b| {
            GroupKey::<S>::from_bytes(b).is_err()
        }),
    ];
    for (valid, rejects) in encodings {
        for len in 0..valid.len() {
            assert!(rejects(&valid[..len]), "prefix {len} of {}", valid.len());
        }
    }
}

#[test]
fn every_truncation_is_rejected_ed25519() {
    every_truncation_is_rejected::<Ed25519Suite>();
}

#[test]
fn every_truncation_is_rejected_bip340() {
    every_truncation_is_rejected::<Bip340Suite>();
}

fn put_u16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}

fn out_of_range_key_set_fields_are_rejected<S: Suite>() {
    let valid = key_set::<S>(2, 3, 11).to_bytes();
    let decode = |at: usize, v: u16| {
        let mut b = valid.to_vec();
        put_u16(&mut b, at, v);
        KeySet::<S>::from_bytes(&b).unwrap_err()
    };
    // Threshold.
    assert_eq!(decode(6, 0), Error::ZeroThreshold);
    for t in [4, 256] {
        let e = Error::InvalidThreshold {
            threshold: t,
            parties: 3,
        };
        assert_eq!(decode(6, t), e);
    }
    // Party count.
    let e = Error::InvalidThreshold {
        threshold: 2,
        parties: 0,
    };
    assert_eq!(decode(8, 0), e);
    assert_eq!(decode(8, 2), Error::Malformed("key set length"));
    assert_eq!(decode(8, 4), Error::Malformed("key set length"));
    assert!(matches!(
        decode(8, 256),
        Error::TooManyParties { parties: 256, .. }
    ));
    // Identifiers: zero, a repeat of the previous one, out of order.
    let rec = 10 + S::POINT_LEN;
    let second = rec + 34 + S::POINT_LEN;
    assert_eq!(decode(second, 0), Error::ZeroIdentifier);
    assert_eq!(decode(second, 1), Error::DuplicateIdentifier(1));
    assert_eq!(decode(rec, 2), Error::DuplicateIdentifier(2));
    assert_eq!(decode(rec, 256), Error::DuplicateIdentifier(2));
}

#[test]
fn out_of_range_key_set_fields_are_rejected_ed25519() {
    out_of_range_key_set_fields_are_rejected::<Ed25519Suite>();
}

#[test]
fn out_of_range_key_set_fields_are_rejected_bip340() {
    out_of_range_key_set_fields_are_rejected::<Bip340Suite>();
}

fn out_of_range_signing_package_fields_are_rejected<S: Suite>() {
    let pkg = signing_package(&key_set::<S>(2, 3, 12), TaprootTweak::None);
    let valid = pkg.to_bytes();
    let msg = b"adversarial".len();
    let count_at = 5 + msg;
    let decode = |at: usize, v: u16| {
        let mut b = valid.clone();
        put_u16(&mut b, at, v);
        SigningPackage::<S>::from_bytes(&b).unwrap_err()
    };
    let bad_count = Error::Malformed("signing package signer count");
    assert_eq!(decode(count_at, 0), bad_count);
    assert_eq!(decode(count_at, 256), bad_count);
    assert_eq!(decode(count_at, u16::MAX), bad_count);
    for n in [2, 4] {
        assert_eq!(decode(count_at, n), Error::Malformed("signing package"));
    }
    let first = count_at + 2;
    let second = first + 2 + 2 * S::POINT_LEN;
    assert_eq!(decode(first, 0), Error::ZeroIdentifier);
    assert_eq!(decode(second, 1), Error::DuplicateIdentifier(1));
    assert_eq!(decode(first, 256), Error::DuplicateIdentifier(2));
    // Message length and Taproot tag.
    for len in [msg as u32 + 1, u32::MAX] {
        let mut b = valid.clone();
        b[1..5].copy_from_slice(&len.to_be_bytes());
        assert!(SigningPackage::<S>::from_bytes(&b).is_err(), "length {len}");
    }
    for tag in [3, 255] {
        let mut b = valid.clone();
        b[0] = tag;
        assert!(SigningPackage::<S>::from_bytes(&b).is_err(), "tag {tag}");
    }
    // The round trip still works.
    assert_eq!(SigningPackage::<S>::from_bytes(&valid).unwrap(), pkg);
}

#[test]
fn out_of_range_signing_package_fields_are_rejected_ed25519() {
    out_of_range_signing_package_fields_are_rejected::<Ed25519Suite>();
}

#[test]
fn out_of_range_signing_package_fields_are_rejected_bip340() {
    out_of_range_signing_package_fields_are_rejected::<Bip340Suite>();
}

#[test]
fn out_of_range_round1_package_count_is_rejected() {
    let valid = round1_package::<Ed25519Suite>().to_bytes();
    for t in [0, 1, 3, 256, u16::MAX] {
        let mut b = valid.clone();
        put_u16(&mut b, 0, t);
        assert_eq!(
            Round1Package::<Ed25519Suite>::from_bytes(&b).unwrap_err(),
            Error::Malformed("round 1 package length"),
            "t {t}"
        );
    }
}

fn known_commitments_decode_like_the_checked_path<S: Suite>() {
    let keys = key_set::<S>(2, 3, 12);
    let pkg = signing_package(&keys, TaprootTweak::None);
    let bytes = pkg.to_bytes();
    let own: Vec<SigningCommitments<S>> = pkg.commitments().take(1).copied().collect();
    assert_eq!(
        SigningPackage::<S>::from_bytes_known(&bytes, &own).unwrap(),
        pkg
    );
    // A malformed commitment other than the known one is still rejected.
    let mut bad = bytes.clone();
    let n = bad.len();
    bad[n - S::POINT_LEN..].fill(0xff);
    assert!(SigningPackage::<S>::from_bytes_known(&bad, &own).is_err());
    assert!(SigningPackage::<S>::from_bytes(&bad).is_err());
}

#[test]
fn known_commitments_decode_like_the_checked_path_ed25519() {
    known_commitments_decode_like_the_checked_path::<Ed25519Suite>();
}

#[test]
fn known_commitments_decode_like_the_checked_path_bip340() {
    known_commitments_decode_like_the_checked_path::<Bip340Suite>();
}
