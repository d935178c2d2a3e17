//! The embedded mode, DKG, culprit detection, batched verification and properties. Every
//! signature is checked by independent verifiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;

use std::collections::BTreeMap;

use backend_cpu::CpuBackend;
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use threshold::dkg::{self, Confirmation, Round1Package, Round2Package};
use threshold::embedded::{self, SignJob};
use threshold::round1::commit_batch;
use threshold::round2::{SignatureShare, sign_batch};
use threshold::{
    Bip340Suite, Ed25519Suite, Error, Identifier, KeySet, SigningPackage, Suite, TaprootTweak,
    aggregate_batch, sign_and_aggregate_batch, verify_bip340_batch, verify_ed25519_batch,
};

fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

#[test]
fn embedded_ed25519_dkg_and_batch_sign() {
    let accel = CpuBackend::new();
    let mut r = rng(1);
    let k1 = embedded::dkg::<Ed25519Suite>(&accel, 2, 3, &mut r).unwrap();
    let k2 = embedded::dkg::<Ed25519Suite>(&accel, 3, 5, &mut r).unwrap();
    let msgs: Vec<Vec<u8>> = (0..40u8).map(|i| vec![i; i as usize]).collect();
    let jobs: Vec<_> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| SignJob {
            key: if i % 2 == 0 { &k1 } else { &k2 },
            message: m,
            taproot: TaprootTweak::None,
        })
        .collect();
    let out = embedded::sign_batch(&accel, &jobs, &mut r);
    let mut items = Vec::new();
    for (job, o) in jobs.iter().zip(&out) {
        let o = o.as_ref().unwrap();
        assert_eq!(o.verifying_key, job.key.public_key());
        assert!(common::ed25519_ok(
            &o.verifying_key,
            job.message,
            &o.signature
        ));
        items.push((
            o.verifying_key.as_slice(),
            job.message,
            o.signature.as_slice(),
        ));
    }
    assert!(verify_ed25519_batch(&accel, &items).iter().all(|b| *b));
    // Tampered items are false, the others stay true.
    let mut bad = items[3].2.to_vec();
    bad[40] ^= 1;
    let mut items2 = items.clone();
    items2[3].2 = &bad;
    items2[5].1 = b"other message";
    let v = verify_ed25519_batch(&accel, &items2);
    assert!(!v[3] && !v[5] && v[4] && v[0]);
    // Malformed encodings are false.
    assert_eq!(
        verify_ed25519_batch(&accel, &[(&[0u8; 31], b"x", &[0u8; 64])]),
        vec![false]
    );
    // Taproot is rejected for Ed25519.
    let t = embedded::sign_batch(
        &accel,
        &[SignJob {
            key: &k1,
            message: b"m",
            taproot: TaprootTweak::KeyPath,
        }],
        &mut r,
    );
    assert_eq!(t[0], Err(Error::TaprootNotSupported));
}

#[test]
fn embedded_bip340_import_taproot_batch() {
    let accel = CpuBackend::new();
    let mut r = rng(2);
    let secret = [0x42u8; 32];
    let keys = embedded::import::<Bip340Suite>(&accel, &secret, 2, 3, &mut r).unwrap();
    // The x-only key is the BIP340 key of the imported secret.
    let sk = k256::schnorr::SigningKey::from_bytes(&secret).unwrap();
    assert_eq!(keys.public_key(), sk.verifying_key().to_bytes().to_vec());
    let dkg_keys = embedded::dkg::<Bip340Suite>(&accel, 3, 4, &mut r).unwrap();
    let tweaks = [
        TaprootTweak::None,
        TaprootTweak::KeyPath,
        TaprootTweak::ScriptRoot([9; 32]),
    ];
    let msgs: Vec<[u8; 32]> = (0..30u8).map(|i| [i; 32]).collect();
    let jobs: Vec<_> = msgs
        .iter()
        .enumerate()
        .map(|(i, m)| SignJob {
            key: if i % 2 == 0 { &keys } else { &dkg_keys },
            message: m,
            taproot: tweaks[i % 3],
        })
        .collect();
    let out = embedded::sign_batch(&accel, &jobs, &mut r);
    let mut items = Vec::new();
    for (job, o) in jobs.iter().zip(&out) {
        let o = o.as_ref().unwrap();
        let internal = job.key.public_key();
        let expected = match job.taproot {
            TaprootTweak::None => internal,
            TaprootTweak::KeyPath => common::taproot_output_key(&internal, None),
            TaprootTweak::ScriptRoot(root) => common::taproot_output_key(&internal, Some(&root)),
        };
        assert_eq!(o.verifying_key, expected);
        assert!(common::bip340_ok(
            &o.verifying_key,
            job.message,
            &o.signature
        ));
        items.push((
            o.verifying_key.as_slice(),
            job.message,
            o.signature.as_slice(),
        ));
    }
    assert!(verify_bip340_batch(&accel, &items).iter().all(|b| *b));
    let mut bad = items[1].2.to_vec();
    bad[63] ^= 1;
    items[1].2 = &bad;
    let v = verify_bip340_batch(&accel, &items);
    assert!(!v[1] && v[0] && v[2]);
    assert_eq!(
        verify_bip340_batch(&accel, &[(&[0xffu8; 32], b"x", &[0u8; 64])]),
        vec![false]
    );
}

#[test]
fn keyset_roundtrip_and_validation() {
    let accel = CpuBackend::new();
    let mut r = rng(3);
    let keys = embedded::dkg::<Ed25519Suite>(&accel, 2, 4, &mut r).unwrap();
    let bytes = keys.to_bytes();
    let back = KeySet::<Ed25519Suite>::from_bytes(&bytes).unwrap();
    assert_eq!(back.to_bytes(), bytes);
    assert_eq!((back.threshold(), back.parties()), (2, 4));
    assert!(KeySet::<Bip340Suite>::from_bytes(&bytes).is_err());
    assert!(KeySet::<Ed25519Suite>::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    assert!(!format!("{:?}", keys.shares()[0]).contains(&hex::encode(&bytes[50..60])));
    assert_eq!(
        embedded::dkg::<Ed25519Suite>(&accel, 0, 3, &mut r).unwrap_err(),
        Error::ZeroThreshold
    );
    assert_eq!(
        embedded::dkg::<Ed25519Suite>(&accel, 4, 3, &mut r).unwrap_err(),
        Error::InvalidThreshold {
            threshold: 4,
            parties: 3
        }
    );
    assert!(matches!(
        embedded::import::<Ed25519Suite>(&accel, &[1u8; 32], 2, 300, &mut r).unwrap_err(),
        Error::TooManyParties { .. }
    ));
    assert_eq!(
        embedded::import::<Ed25519Suite>(&accel, &[0u8; 32], 2, 3, &mut r).unwrap_err(),
        Error::InvalidSecretKey
    );
    assert_eq!(
        embedded::import::<Bip340Suite>(&accel, &[0xffu8; 32], 2, 3, &mut r).unwrap_err(),
        Error::InvalidSecretKey
    );
}

fn aggregate_names_culprit<S: Suite>(seed: u64) {
    let accel = CpuBackend::new();
    let mut r = rng(seed);
    let keys = embedded::dkg::<S>(&accel, 3, 5, &mut r).unwrap();
    let signers: Vec<_> = keys.shares()[1..4].iter().collect();
    let committed = commit_batch::<S>(&accel, &signers, &mut r).unwrap();
    let map: BTreeMap<Identifier, _> = signers
        .iter()
        .zip(&committed)
        .map(|(s, (_, c))| (s.identifier(), *c))
        .collect();
    let pkg = SigningPackage::<S>::new(map, b"blame", TaprootTweak::ScriptRoot([3; 32]));
    let pkg = if S::BIP340 {
        let back = SigningPackage::<S>::from_bytes(&pkg.to_bytes()).unwrap();
        assert_eq!(back, pkg);
        back
    } else {
        let plain = SigningPackage::<S>::new(pkg_map(&pkg), b"blame", TaprootTweak::None);
        assert_eq!(
            SigningPackage::<S>::from_bytes(&plain.to_bytes()).unwrap(),
            plain
        );
        plain
    };
    let items = committed
        .into_iter()
        .zip(&signers)
        .map(|((n, _), s)| (&pkg, n, *s))
        .collect();
    let mut shares: Vec<SignatureShare<S>> = sign_batch::<S>(&accel, items)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let good = aggregate_batch::<S>(&accel, &[(&pkg, &shares, keys.public_package())]);
    assert!(good[0].is_ok());
    for k in [0usize, 2] {
        let s = shares[k];
        shares[k] = SignatureShare::new(
            s.identifier(),
            s.scalar() + S::scalar_from_bytes(&S::identifier_bytes(1)).unwrap(),
        );
    }
    let bad = aggregate_batch::<S>(&accel, &[(&pkg, &shares, keys.public_package())]);
    assert_eq!(bad[0], Err(Error::Culprits(vec![2, 4])));
}

fn pkg_map<S: Suite>(
    p: &SigningPackage<S>,
) -> BTreeMap<Identifier, threshold::round1::SigningCommitments<S>> {
    let b = p.to_bytes();
    // Re-parse the commitments through the wire format.
    let q = SigningPackage::<S>::from_bytes(&b).unwrap();
    q.signers()
        .into_iter()
        .zip(q.commitments())
        .map(|(i, c)| (i, *c))
        .collect()
}

#[test]
fn aggregate_names_culprits() {
    aggregate_names_culprit::<Ed25519Suite>(4);
    aggregate_names_culprit::<Bip340Suite>(5);
}

/// Runs the DKG by hand through the public round functions, letting `tamper` alter messages.
fn dkg_by_hand<S: Suite>(
    t: u16,
    n: u16,
    bad_pok_from: Option<u16>,
    bad_share_from: Option<u16>,
    bad_confirmation_from: Option<u16>,
) -> Vec<Result<(), Error>> {
    let accel = CpuBackend::new();
    let mut r = rng(6);
    let ids: Vec<Identifier> = (1..=n).map(|i| Identifier::new(i).unwrap()).collect();
    let params: Vec<_> = ids.iter().map(|i| (*i, t, n, [0x5d; 32])).collect();
    let r1 = dkg::part1_batch::<S>(&accel, &params, &mut r).unwrap();
    let mut packages: BTreeMap<Identifier, Round1Package<S>> = BTreeMap::new();
    for (id, (_, p)) in ids.iter().zip(&r1) {
        let mut bytes = p.to_bytes();
        if bad_pok_from == Some(id.get()) {
            let l = bytes.len();
            bytes[l - 1] ^= 1;
        }
        packages.insert(*id, Round1Package::from_bytes(&bytes).unwrap());
    }
    let items: Vec<_> = ids
        .iter()
        .zip(r1)
        .map(|(id, (s, _))| {
            let others = packages
                .iter()
                .filter(|(i, _)| *i != id)
                .map(|(i, p)| (*i, p.clone()))
                .collect();
            (s, others)
        })
        .collect();
    let r2 = dkg::part2_batch::<S>(&accel, items);
    if r2.iter().any(Result::is_err) {
        return r2.into_iter().map(|x| x.map(|_| ())).collect();
    }
    let mut inbox: BTreeMap<Identifier, BTreeMap<Identifier, Round2Package<S>>> = BTreeMap::new();
    let mut states = Vec::new();
    for (id, x) in ids.iter().zip(r2) {
        let (state, out) = x.unwrap();
        for (to, pkg) in out {
            let pkg = if bad_share_from == Some(id.get()) {
                let mut b = *pkg.to_bytes();
                b[if S::BIP340 { 31 } else { 0 }] ^= 1;
                Round2Package::from_bytes(&b).unwrap()
            } else {
                pkg
            };
            inbox.entry(to).or_default().insert(*id, pkg);
        }
        states.push(state);
    }
    let items: Vec<_> = ids
        .iter()
        .zip(states)
        .map(|(id, s)| (s, inbox.remove(id).unwrap()))
        .collect();
    let r3 = dkg::part3_batch::<S>(&accel, items);
    if r3.iter().any(Result::is_err) {
        return r3.into_iter().map(|x| x.map(|_| ())).collect();
    }
    let r3: Vec<_> = r3.into_iter().map(Result::unwrap).collect();
    let mut confirmations: BTreeMap<Identifier, Confirmation> = BTreeMap::new();
    for (id, (_, c)) in ids.iter().zip(&r3) {
        let c = if bad_confirmation_from == Some(id.get()) {
            Confirmation([7; 32])
        } else {
            *c
        };
        confirmations.insert(*id, c);
    }
    let mut keys = Vec::new();
    let out = r3
        .into_iter()
        .map(|(state, _)| dkg::finish(state, &confirmations).map(|(k, p)| keys.push((k, p))))
        .collect::<Vec<_>>();
    if out.iter().all(Result::is_ok) {
        // All parties agree on the group key and verifying shares.
        assert!(keys.windows(2).all(|w| w[0].1 == w[1].1));
        for (k, p) in &keys {
            assert_eq!(k.group_key(), p.group_key());
            assert_eq!(Some(k.verifying_share()), p.verifying_share(k.identifier()));
        }
    }
    out
}

fn dkg_culprits<S: Suite>() {
    assert!(
        dkg_by_hand::<S>(3, 5, None, None, None)
            .iter()
            .all(Result::is_ok)
    );
    // A bad proof of knowledge from party 2 is named by everyone else.
    let r = dkg_by_hand::<S>(3, 5, Some(2), None, None);
    for (i, x) in r.iter().enumerate() {
        if i != 1 {
            assert_eq!(*x, Err(Error::Culprits(vec![2])));
        }
    }
    // A bad private share from party 4 is named by every recipient.
    let r = dkg_by_hand::<S>(3, 5, None, Some(4), None);
    for (i, x) in r.iter().enumerate() {
        if i != 3 {
            assert_eq!(*x, Err(Error::Culprits(vec![4])));
        }
    }
    // A mismatched confirmation from party 5 is named.
    let r = dkg_by_hand::<S>(3, 5, None, None, Some(5));
    for (i, x) in r.iter().enumerate() {
        if i != 4 {
            assert_eq!(*x, Err(Error::Culprits(vec![5])));
        }
    }
}

/// Round 1 of a DKG among `n` parties with session id `sid`: states and broadcasts by id.
fn dkg_round1<S: Suite>(
    t: u16,
    n: u16,
    sid: [u8; 32],
    seed: u64,
) -> Vec<(dkg::Round1Secret<S>, Round1Package<S>)> {
    let params: Vec<_> = (1..=n)
        .map(|i| (Identifier::new(i).unwrap(), t, n, sid))
        .collect();
    dkg::part1_batch::<S>(&CpuBackend::new(), &params, &mut rng(seed)).unwrap()
}

/// Runs round 2 for party 1 of `r1` with the given packages from the others.
fn party1_round2<S: Suite>(
    mut r1: Vec<(dkg::Round1Secret<S>, Round1Package<S>)>,
    received: BTreeMap<Identifier, Round1Package<S>>,
) -> Result<(), Error> {
    let (me, _) = r1.remove(0);
    dkg::part2_batch::<S>(&CpuBackend::new(), vec![(me, received)])
        .remove(0)
        .map(|_| ())
}

fn packages_of<S: Suite>(
    r1: &[(dkg::Round1Secret<S>, Round1Package<S>)],
) -> BTreeMap<Identifier, Round1Package<S>> {
    r1.iter()
        .enumerate()
        .skip(1)
        .map(|(k, (_, p))| (Identifier::new(k as u16 + 1).unwrap(), p.clone()))
        .collect()
}

/// The proof-of-knowledge challenge binds the session id (FROST paper §5.1, round 1 step 2,
/// context `Φ`): party 2's round-1 package from session A, replayed into session B, is
/// rejected naming party 2; the untouched session B succeeds.
fn replayed_round1_package_names_sender<S: Suite>() {
    let a = dkg_round1::<S>(2, 3, [0xa; 32], 40);
    let b = dkg_round1::<S>(2, 3, [0xb; 32], 41);
    let mut received = packages_of(&b);
    assert_eq!(
        party1_round2(dkg_round1::<S>(2, 3, [0xb; 32], 41), received.clone()),
        Ok(())
    );
    received.insert(Identifier::new(2).unwrap(), a[1].1.clone());
    assert_eq!(party1_round2(b, received), Err(Error::Culprits(vec![2])));
}

/// The challenge binds the sender: party 2's valid package presented as party 3's is
/// rejected naming party 3.
fn relabelled_round1_package_names_claimed_sender<S: Suite>() {
    let b = dkg_round1::<S>(2, 3, [0xc; 32], 42);
    let mut received = packages_of(&b);
    let from2 = received[&Identifier::new(2).unwrap()].clone();
    received.insert(Identifier::new(3).unwrap(), from2);
    assert_eq!(party1_round2(b, received), Err(Error::Culprits(vec![3])));
}

#[test]
fn dkg_round1_replayed_into_another_session_is_rejected() {
    replayed_round1_package_names_sender::<Ed25519Suite>();
    replayed_round1_package_names_sender::<Bip340Suite>();
}

#[test]
fn dkg_round1_under_another_sender_id_is_rejected() {
    relabelled_round1_package_names_claimed_sender::<Ed25519Suite>();
    relabelled_round1_package_names_claimed_sender::<Bip340Suite>();
}

#[test]
fn dkg_names_culprits_ed25519() {
    dkg_culprits::<Ed25519Suite>();
}

#[test]
fn dkg_names_culprits_bip340() {
    dkg_culprits::<Bip340Suite>();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    #[test]
    fn random_t_n_message_verifies(n in 1u16..=7, tf in 0.0f64..1.0, msg in proptest::collection::vec(any::<u8>(), 0..80), seed in any::<u64>()) {
        let t = 1 + ((f64::from(n - 1)) * tf) as u16;
        let accel = CpuBackend::new();
        let mut r = rng(seed);
        let ed = embedded::dkg::<Ed25519Suite>(&accel, t, n, &mut r).unwrap();
        let bip = embedded::dkg::<Bip340Suite>(&accel, t, n, &mut r).unwrap();
        let o = embedded::sign_batch(&accel, &[SignJob { key: &ed, message: &msg, taproot: TaprootTweak::None }], &mut r);
        let o = o[0].as_ref().unwrap();
        prop_assert!(common::ed25519_ok(&o.verifying_key, &msg, &o.signature));
        let o = embedded::sign_batch(&accel, &[SignJob { key: &bip, message: &msg, taproot: TaprootTweak::KeyPath }], &mut r);
        let o = o[0].as_ref().unwrap();
        prop_assert!(common::bip340_ok(&o.verifying_key, &msg, &o.signature));
    }
}

/// The coordinator's own share computed inside the aggregation gives the signature that
/// `sign_batch` then `aggregate_batch` give, names a bad share of another signer, and refuses
/// nonces that are not the ones the package commits to.
fn sign_and_aggregate_agrees<S: Suite>(seed: u64, taproot: TaprootTweak) {
    let accel = CpuBackend::new();
    let mut r = rng(seed);
    let keys = embedded::dkg::<S>(&accel, 3, 5, &mut r).unwrap();
    let signers: Vec<_> = keys.shares()[1..4].iter().collect();
    let commit = |seed| commit_batch::<S>(&accel, &signers, &mut rng(seed)).unwrap();
    let committed = commit(seed + 100);
    let map: BTreeMap<Identifier, _> = signers
        .iter()
        .zip(&committed)
        .map(|(s, (_, c))| (s.identifier(), *c))
        .collect();
    let pkg = SigningPackage::<S>::new(map, b"coordinator signs too", taproot);
    let public = keys.public_package();
    let items = committed
        .into_iter()
        .zip(&signers)
        .map(|((n, _), s)| (&pkg, n, *s))
        .collect();
    let all: Vec<SignatureShare<S>> = sign_batch::<S>(&accel, items)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let expected = aggregate_batch::<S>(&accel, &[(&pkg, &all, public)]);
    let expected = expected[0].as_ref().unwrap();

    // The same nonces again: the first signer coordinates, the others' shares as computed.
    let mut again = commit(seed + 100).into_iter().map(|(n, _)| n);
    let mine = again.next().unwrap();
    let others = &all[1..];
    let got =
        sign_and_aggregate_batch::<S>(&accel, vec![((&pkg, others, public), mine, signers[0])]);
    assert_eq!(got[0].as_ref().unwrap(), expected);

    // A bad share of the third signer is named; so is nothing of the coordinator.
    let mut bad = others.to_vec();
    bad[1] = SignatureShare::new(
        bad[1].identifier(),
        bad[1].scalar() + S::scalar_from_bytes(&S::identifier_bytes(1)).unwrap(),
    );
    let mine = commit(seed + 100).into_iter().next().unwrap().0;
    let got = sign_and_aggregate_batch::<S>(&accel, vec![((&pkg, &bad, public), mine, signers[0])]);
    assert_eq!(got[0], Err(Error::Culprits(vec![4])));

    // Nonces of another session, a share missing, and the coordinator's own share also given.
    let stranger = commit(seed + 200).into_iter().next().unwrap().0;
    let mine = || commit(seed + 100).into_iter().next().unwrap().0;
    let got = sign_and_aggregate_batch::<S>(
        &accel,
        vec![
            ((&pkg, others, public), stranger, signers[0]),
            ((&pkg, &others[..1], public), mine(), signers[0]),
            ((&pkg, &all, public), mine(), signers[0]),
        ],
    );
    assert_eq!(got[0], Err(Error::CommitmentMismatch));
    assert!(matches!(
        got[1],
        Err(Error::WrongSignerCount { got: 2, need: 3 })
    ));
    assert!(matches!(
        got[2],
        Err(Error::WrongSignerCount { got: 4, need: 3 })
    ));
}

#[test]
fn sign_and_aggregate_agrees_with_sign_then_aggregate() {
    sign_and_aggregate_agrees::<Ed25519Suite>(7, TaprootTweak::None);
    sign_and_aggregate_agrees::<Bip340Suite>(8, TaprootTweak::None);
    sign_and_aggregate_agrees::<Bip340Suite>(9, TaprootTweak::ScriptRoot([5; 32]));
}
