//! Differential tests against the ZF `frost-ed25519` and `frost-secp256k1-tr` 3.x crates: same
//! key shares and nonces must give bit-identical signature shares and signatures. Every
//! signature is also checked by independent verifiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;

use std::collections::BTreeMap;

use backend_cpu::CpuBackend;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use threshold::round1::commit_with_nonces_batch;
use threshold::round2::sign_batch;
use threshold::{
    Ed25519Sha512, Identifier, KeySet, Secp256k1Tr, SigningPackage, Suite, TaprootTweak,
    aggregate_batch,
};

fn ours<S: Suite>(shares: &[(u16, Vec<u8>)], t: u16) -> KeySet<S> {
    let accel = CpuBackend::new();
    let s: Vec<_> = shares
        .iter()
        .map(|(i, b)| {
            (
                Identifier::new(*i).unwrap(),
                S::scalar_from_bytes(b).unwrap(),
            )
        })
        .collect();
    KeySet::<S>::from_secret_shares(&accel, t, &s, None).unwrap()
}

/// (signature shares, signature, verifying key, commitments) from our implementation.
type OurRun = (Vec<[u8; 32]>, Vec<u8>, Vec<u8>, Vec<Vec<u8>>);

/// Runs our round 1/2/aggregate with the given nonces; returns (share bytes, signature, key).
fn our_sign<S: Suite>(
    keys: &KeySet<S>,
    signers: &[u16],
    nonces: &[(Vec<u8>, Vec<u8>)],
    msg: &[u8],
    taproot: TaprootTweak,
) -> OurRun {
    let accel = CpuBackend::new();
    let pairs: Vec<_> = nonces
        .iter()
        .map(|(d, e)| {
            (
                S::scalar_from_bytes(d).unwrap(),
                S::scalar_from_bytes(e).unwrap(),
            )
        })
        .collect();
    let committed = commit_with_nonces_batch::<S>(&accel, &pairs).unwrap();
    let mut map = BTreeMap::new();
    let commit_bytes: Vec<Vec<u8>> = committed.iter().map(|(_, c)| c.to_bytes()).collect();
    for (id, (_, c)) in signers.iter().zip(&committed) {
        map.insert(Identifier::new(*id).unwrap(), *c);
    }
    let pkg = SigningPackage::<S>::new(map, msg, taproot);
    let items = committed
        .into_iter()
        .zip(signers)
        .map(|((n, _), id)| {
            let share = keys
                .shares()
                .iter()
                .find(|s| s.identifier().get() == *id)
                .unwrap();
            (&pkg, n, share)
        })
        .collect();
    let shares: Vec<_> = sign_batch::<S>(&accel, items)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let out = aggregate_batch::<S>(&accel, &[(&pkg, &shares, keys.public_package())])
        .pop()
        .unwrap()
        .unwrap();
    (
        shares.iter().map(|s| s.to_bytes()).collect(),
        out.signature,
        out.verifying_key,
        commit_bytes,
    )
}

fn ed25519_case(t: u16, n: u16, seed: u64) {
    use frost_ed25519 as frost;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (secret_shares, pubkeys) =
        frost::keys::generate_with_dealer(n, t, frost::keys::IdentifierList::Default, &mut rng)
            .unwrap();
    let kps: BTreeMap<_, _> = secret_shares
        .into_iter()
        .map(|(id, s)| (id, frost::keys::KeyPackage::try_from(s).unwrap()))
        .collect();
    let share_bytes: Vec<(u16, Vec<u8>)> = (1..=n)
        .map(|i| {
            let id = frost::Identifier::try_from(i).unwrap();
            (i, kps[&id].signing_share().serialize())
        })
        .collect();
    let keys = ours::<Ed25519Sha512>(&share_bytes, t);
    assert_eq!(
        keys.public_key(),
        pubkeys.verifying_key().serialize().unwrap()
    );

    let signers: Vec<u16> = (1..=n).rev().take(usize::from(t)).rev().collect();
    let msg = b"differential test message";
    let mut fnonces = BTreeMap::new();
    let mut fcommits = BTreeMap::new();
    let mut nonce_bytes = Vec::new();
    for i in &signers {
        let id = frost::Identifier::try_from(*i).unwrap();
        let (nonces, commits) = frost::round1::commit(kps[&id].signing_share(), &mut rng);
        nonce_bytes.push((nonces.hiding().serialize(), nonces.binding().serialize()));
        fnonces.insert(id, nonces);
        fcommits.insert(id, commits);
    }
    let fpkg = frost::SigningPackage::new(fcommits.clone(), msg);
    let fshares: BTreeMap<_, _> = signers
        .iter()
        .map(|i| {
            let id = frost::Identifier::try_from(*i).unwrap();
            (
                id,
                frost::round2::sign(&fpkg, &fnonces[&id], &kps[&id]).unwrap(),
            )
        })
        .collect();
    let fsig = frost::aggregate(&fpkg, &fshares, &pubkeys).unwrap();

    let (shares, sig, vk, commit_bytes) =
        our_sign(&keys, &signers, &nonce_bytes, msg, TaprootTweak::None);
    for ((i, s), c) in signers.iter().zip(&shares).zip(&commit_bytes) {
        let id = frost::Identifier::try_from(*i).unwrap();
        assert_eq!(s.to_vec(), fshares[&id].serialize());
        let fc = &fcommits[&id];
        assert_eq!(
            *c,
            [
                fc.hiding().serialize().unwrap(),
                fc.binding().serialize().unwrap()
            ]
            .concat()
        );
    }
    assert_eq!(sig, fsig.serialize().unwrap());
    assert!(common::ed25519_ok(&vk, msg, &sig));
}

fn bip340_case(t: u16, n: u16, seed: u64, tweak: TaprootTweak) {
    use frost_secp256k1_tr as frost;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let (secret_shares, pubkeys) =
        frost::keys::generate_with_dealer(n, t, frost::keys::IdentifierList::Default, &mut rng)
            .unwrap();
    let kps: BTreeMap<_, _> = secret_shares
        .into_iter()
        .map(|(id, s)| (id, frost::keys::KeyPackage::try_from(s).unwrap()))
        .collect();
    let share_bytes: Vec<(u16, Vec<u8>)> = (1..=n)
        .map(|i| {
            let id = frost::Identifier::try_from(i).unwrap();
            (i, kps[&id].signing_share().serialize())
        })
        .collect();
    let keys = ours::<Secp256k1Tr>(&share_bytes, t);
    let internal = keys.public_key();
    assert_eq!(
        internal,
        pubkeys.verifying_key().serialize().unwrap()[1..].to_vec()
    );

    let signers: Vec<u16> = (1..=t).collect();
    let msg = b"differential taproot message";
    let mut fnonces = BTreeMap::new();
    let mut fcommits = BTreeMap::new();
    let mut nonce_bytes = Vec::new();
    for i in &signers {
        let id = frost::Identifier::try_from(*i).unwrap();
        let (nonces, commits) = frost::round1::commit(kps[&id].signing_share(), &mut rng);
        nonce_bytes.push((nonces.hiding().serialize(), nonces.binding().serialize()));
        fnonces.insert(id, nonces);
        fcommits.insert(id, commits);
    }
    let fpkg = frost::SigningPackage::new(fcommits, msg);
    let root = match tweak {
        TaprootTweak::None => None,
        TaprootTweak::KeyPath => Some(Vec::new()),
        TaprootTweak::ScriptRoot(r) => Some(r.to_vec()),
    };
    let fshares: BTreeMap<_, _> = signers
        .iter()
        .map(|i| {
            let id = frost::Identifier::try_from(*i).unwrap();
            let s = match &root {
                None => frost::round2::sign(&fpkg, &fnonces[&id], &kps[&id]),
                Some(r) => {
                    // frost-secp256k1-tr treats `None` as BIP86 (hash of P.x only).
                    let r = if r.is_empty() {
                        None
                    } else {
                        Some(r.as_slice())
                    };
                    frost::round2::sign_with_tweak(&fpkg, &fnonces[&id], &kps[&id], r)
                }
            };
            (id, s.unwrap())
        })
        .collect();
    let fsig = match &root {
        None => frost::aggregate(&fpkg, &fshares, &pubkeys),
        Some(r) => {
            let r = if r.is_empty() {
                None
            } else {
                Some(r.as_slice())
            };
            frost::aggregate_with_tweak(&fpkg, &fshares, &pubkeys, r)
        }
    }
    .unwrap();

    let (shares, sig, vk, _) = our_sign(&keys, &signers, &nonce_bytes, msg, tweak);
    for (i, s) in signers.iter().zip(&shares) {
        let id = frost::Identifier::try_from(*i).unwrap();
        assert_eq!(s.to_vec(), fshares[&id].serialize());
    }
    assert_eq!(sig, fsig.serialize().unwrap());
    let expected_key = match tweak {
        TaprootTweak::None => internal.clone(),
        TaprootTweak::KeyPath => common::taproot_output_key(&internal, None),
        TaprootTweak::ScriptRoot(r) => common::taproot_output_key(&internal, Some(&r)),
    };
    assert_eq!(vk, expected_key);
    assert!(common::bip340_ok(&vk, msg, &sig));
}

#[test]
fn differential_ed25519_2_of_3() {
    for seed in 0..4 {
        ed25519_case(2, 3, seed);
    }
}

#[test]
fn differential_ed25519_3_of_5() {
    for seed in 10..14 {
        ed25519_case(3, 5, seed);
    }
}

#[test]
fn differential_bip340_2_of_3_all_tweaks() {
    // Several seeds so both parities of the group key and of R are exercised.
    for seed in 0..6 {
        bip340_case(2, 3, seed, TaprootTweak::None);
        bip340_case(2, 3, seed, TaprootTweak::KeyPath);
        bip340_case(2, 3, seed, TaprootTweak::ScriptRoot([seed as u8 + 7; 32]));
    }
}

#[test]
fn differential_bip340_3_of_5_all_tweaks() {
    for seed in 20..24 {
        bip340_case(3, 5, seed, TaprootTweak::None);
        bip340_case(3, 5, seed, TaprootTweak::KeyPath);
        bip340_case(3, 5, seed, TaprootTweak::ScriptRoot([0xab; 32]));
    }
}
