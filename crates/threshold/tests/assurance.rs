//! Assurance tests: each guards a check whose removal the functional tests would not notice
//! (batch-verification verdicts and malformed lengths, signing-package decoding bounds,
//! binding factors, the DKG's sender checks, independent polynomials and confirmation guard,
//! fresh nonce commitments, and the redaction of the DKG's secret states).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use backend_cpu::CpuBackend;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use threshold::dkg::{self, Confirmation, Round1Package, Round2Package, Round3Secret};
use threshold::embedded::{self, SignJob};
use threshold::round1::{SigningCommitments, commit_batch};
use threshold::{
    Bip340Suite, Ed25519Suite, Error, Identifier, KeySet, KeyShare, SignatureShare, SigningPackage,
    Suite, TaprootTweak, aggregate_batch, verify_bip340_batch, verify_ed25519_batch,
};

type Verify = fn(&dyn accel_api::Accelerator, &[(&[u8], &[u8], &[u8])]) -> Vec<bool>;

fn key_set<S: Suite>(t: u16, n: u16, seed: u64) -> KeySet<S> {
    embedded::dkg::<S>(
        &CpuBackend::new(),
        t,
        n,
        &mut ChaCha20Rng::seed_from_u64(seed),
    )
    .unwrap()
}

/// Eight valid `(key, message, signature)` triples of suite `S`.
fn signed<S: Suite>(seed: u64) -> Vec<(Vec<u8>, Vec<u8>, Vec<u8>)> {
    let keys = key_set::<S>(2, 3, seed);
    let msgs: Vec<Vec<u8>> = (0..8u8).map(|i| vec![i; 32]).collect();
    let jobs: Vec<_> = msgs
        .iter()
        .map(|m| SignJob {
            key: &keys,
            message: m,
            taproot: TaprootTweak::None,
        })
        .collect();
    let out = embedded::sign_batch(
        &CpuBackend::new(),
        &jobs,
        &mut ChaCha20Rng::seed_from_u64(seed),
    );
    out.into_iter()
        .zip(msgs)
        .map(|(o, m)| {
            let o = o.unwrap();
            (o.verifying_key, m, o.signature)
        })
        .collect()
}

/// One forged signature among valid ones is reported false, and exactly it: every other
/// verdict stays true, wherever the forgery sits. Malformed lengths (short or long key or
/// signature, including a signature too short to hold `R`) are false, without panicking, and
/// do not shift the other verdicts. Kills `||` → `&&` in the length guard of the batch
/// verifiers (a bad length would reach the decoder and panic on slicing) and any mutant that
/// misaligns or inverts verdicts.
fn batch_verdicts_name_exactly_the_bad_item<S: Suite>(verify: Verify) {
    let accel = CpuBackend::new();
    let good = signed::<S>(40);
    let view = |v: &[(Vec<u8>, Vec<u8>, Vec<u8>)]| -> Vec<bool> {
        let items: Vec<(&[u8], &[u8], &[u8])> = v
            .iter()
            .map(|(k, m, s)| (k.as_slice(), m.as_slice(), s.as_slice()))
            .collect();
        verify(&accel, &items)
    };
    assert_eq!(view(&good), vec![true; good.len()]);
    for bad in 0..good.len() {
        let mut items = good.clone();
        items[bad].2[40] ^= 1;
        let expect: Vec<bool> = (0..good.len()).map(|i| i != bad).collect();
        assert_eq!(view(&items), expect, "forged item {bad}");
    }
    let (k, m, s) = good[0].clone();
    let malformed = [
        (k[..31].to_vec(), s.clone()),
        ([k.as_slice(), &[0]].concat(), s.clone()),
        (k.clone(), s[..63].to_vec()),
        (k.clone(), [s.as_slice(), &[0]].concat()),
        (k.clone(), s[..10].to_vec()),
        (k[..10].to_vec(), s[..10].to_vec()),
        (Vec::new(), s.clone()),
        (k.clone(), Vec::new()),
    ];
    for (i, (bk, bs)) in malformed.into_iter().enumerate() {
        let mut items = good.clone();
        items.insert(3, (bk, m.clone(), bs));
        let mut expect = vec![true; items.len()];
        expect[3] = false;
        assert_eq!(view(&items), expect, "malformed item {i}");
    }
}

#[test]
fn batch_verdicts_name_exactly_the_bad_item_ed25519() {
    batch_verdicts_name_exactly_the_bad_item::<Ed25519Suite>(verify_ed25519_batch);
}

#[test]
fn batch_verdicts_name_exactly_the_bad_item_bip340() {
    batch_verdicts_name_exactly_the_bad_item::<Bip340Suite>(verify_bip340_batch);
}

fn package<S: Suite>(keys: &KeySet<S>, taproot: TaprootTweak) -> SigningPackage<S> {
    let signers: Vec<_> = keys.shares().iter().collect();
    let committed = commit_batch::<S>(
        &CpuBackend::new(),
        &signers,
        &mut ChaCha20Rng::seed_from_u64(9),
    )
    .unwrap();
    let map: BTreeMap<Identifier, _> = signers
        .iter()
        .zip(&committed)
        .map(|(s, (_, c))| (s.identifier(), *c))
        .collect();
    SigningPackage::<S>::new(map, b"assurance", taproot)
}

/// The Taproot tag of a signing package: tags 0, 1, 2 round-trip, any other tag is refused,
/// and a script-root tag without its 32-byte root (any shorter input) is refused without
/// panicking. Every truncation and every extension by one byte is refused. Kills the
/// `b.len() >= 33` guard mutants (`>=` → `<`: slicing panics) and tag mutants, and (by
/// reading the message back) `SigningPackage::message` returning a constant.
fn signing_package_tags_and_lengths<S: Suite>() {
    let keys = key_set::<S>(2, 3, 41);
    for taproot in [
        TaprootTweak::None,
        TaprootTweak::KeyPath,
        TaprootTweak::ScriptRoot([3; 32]),
    ] {
        let pkg = package(&keys, taproot);
        assert_eq!(pkg.message(), b"assurance");
        let b = pkg.to_bytes();
        let decoded = SigningPackage::<S>::from_bytes(&b).unwrap();
        assert_eq!(decoded.message(), b"assurance");
        assert_eq!(decoded, pkg);
        for cut in 0..b.len() {
            assert!(
                SigningPackage::<S>::from_bytes(&b[..cut]).is_err(),
                "cut {cut}"
            );
        }
        let mut long = b.clone();
        long.push(0);
        assert!(SigningPackage::<S>::from_bytes(&long).is_err());
        for tag in 3..=255u8 {
            let mut t = b.clone();
            t[0] = tag;
            assert_eq!(
                SigningPackage::<S>::from_bytes(&t),
                Err(Error::Malformed("signing package"))
            );
        }
    }
    for len in 0..33 {
        let mut b = vec![0u8; len];
        if let Some(first) = b.first_mut() {
            *first = 2;
        }
        assert!(SigningPackage::<S>::from_bytes(&b).is_err(), "length {len}");
    }
}

#[test]
fn signing_package_tags_and_lengths_ed25519() {
    signing_package_tags_and_lengths::<Ed25519Suite>();
}

#[test]
fn signing_package_tags_and_lengths_bip340() {
    signing_package_tags_and_lengths::<Bip340Suite>();
}

/// The largest signer count, `MAX_PARTIES` = 255, decodes; 256 is refused. Kills `>` → `>=`
/// in the signer-count bound of `SigningPackage::from_bytes`. (Decoding does not check that
/// commitments belong to real signers, so one valid commitment serves for every id.)
fn signing_package_of_max_parties_decodes<S: Suite>() {
    let pkg = package(&key_set::<S>(2, 2, 44), TaprootTweak::None);
    let c = pkg.commitments().next().unwrap().to_bytes();
    let encode = |n: u16| {
        let mut b = vec![0u8, 0, 0, 0, 0];
        b.extend_from_slice(&n.to_be_bytes());
        for id in 1..=n {
            b.extend_from_slice(&id.to_be_bytes());
            b.extend_from_slice(&c);
        }
        b
    };
    let max = SigningPackage::<S>::from_bytes(&encode(255)).unwrap();
    assert_eq!(max.signers().len(), 255);
    assert_eq!(
        SigningPackage::<S>::from_bytes(&encode(256)),
        Err(Error::Malformed("signing package signer count"))
    );
}

#[test]
fn signing_package_of_max_parties_decodes_ed25519() {
    signing_package_of_max_parties_decodes::<Ed25519Suite>();
}

#[test]
fn signing_package_of_max_parties_decodes_bip340() {
    signing_package_of_max_parties_decodes::<Bip340Suite>();
}

/// A signer's already-held commitment replaces a package entry only when both its hiding and
/// its binding encodings match: a held commitment that shares only one of the two points
/// with an entry is not substituted, so the decoded package equals the fully checked one.
/// Kills `&&` → `||` and `==` → `!=` in the match of `SigningPackage::from_bytes_known`
/// (a wrong substitution would make the signer sign under commitments nobody sent).
fn known_commitment_is_used_only_on_an_exact_match<S: Suite>() {
    let pkg = package(&key_set::<S>(2, 3, 45), TaprootTweak::None);
    let b = pkg.to_bytes();
    let cs: Vec<_> = pkg.commitments().copied().collect();
    let mixed = SigningCommitments::<S>::from_bytes(
        &[cs[0].hiding_bytes(), cs[1].binding_bytes()].concat(),
    )
    .unwrap();
    let checked = SigningPackage::<S>::from_bytes(&b).unwrap();
    assert_eq!(
        SigningPackage::<S>::from_bytes_known(&b, &[mixed]).unwrap(),
        checked
    );
    assert_eq!(
        SigningPackage::<S>::from_bytes_known(&b, &[cs[1]]).unwrap(),
        checked
    );
}

#[test]
fn known_commitment_is_used_only_on_an_exact_match_ed25519() {
    known_commitment_is_used_only_on_an_exact_match::<Ed25519Suite>();
}

#[test]
fn known_commitment_is_used_only_on_an_exact_match_bip340() {
    known_commitment_is_used_only_on_an_exact_match::<Bip340Suite>();
}

/// Binding factors: one per signer, in signer order, pairwise distinct and bound to the
/// message. Kills `binding_factors` returning an empty list (the RFC 9591 vector test zips
/// over its output and passes on an empty one).
fn binding_factors_are_one_per_signer_and_distinct<S: Suite>() {
    let accel = CpuBackend::new();
    let keys = key_set::<S>(3, 4, 42);
    let pkg = package(&keys, TaprootTweak::None);
    let group_key = keys.shares()[0].group_key();
    let rhos = pkg.binding_factors(&accel, group_key).unwrap();
    assert_eq!(
        rhos.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
        pkg.signers()
    );
    for (i, (_, a)) in rhos.iter().enumerate() {
        for (_, b) in &rhos[i + 1..] {
            assert_ne!(a, b);
        }
    }
    let commitments: BTreeMap<Identifier, _> = pkg
        .signers()
        .into_iter()
        .zip(pkg.commitments().copied())
        .collect();
    let other = SigningPackage::<S>::new(commitments, b"another message", TaprootTweak::None);
    let rhos2 = other.binding_factors(&accel, group_key).unwrap();
    assert_eq!(rhos2.len(), rhos.len());
    for ((_, a), (_, b)) in rhos.iter().zip(&rhos2) {
        assert_ne!(a, b, "binding factor ignores the message");
    }
}

#[test]
fn binding_factors_are_one_per_signer_and_distinct_ed25519() {
    binding_factors_are_one_per_signer_and_distinct::<Ed25519Suite>();
}

#[test]
fn binding_factors_are_one_per_signer_and_distinct_bip340() {
    binding_factors_are_one_per_signer_and_distinct::<Bip340Suite>();
}

/// Runs an honest DKG among `n` parties through round 3, checking on the way that every
/// secret state and share message is redacted in `Debug` (kills the emptied `Debug` impls of
/// `Round1Secret`, `Round2Secret`, `Round3Secret` and `Round2Package`).
fn dkg_round3<S: Suite>(t: u16, n: u16) -> Vec<(Round3Secret<S>, Confirmation)> {
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(43);
    let ids: Vec<Identifier> = (1..=n).map(|i| Identifier::new(i).unwrap()).collect();
    let params: Vec<_> = ids.iter().map(|i| (*i, t, n, [0x6e; 32])).collect();
    let r1 = dkg::part1_batch::<S>(&accel, &params, &mut rng).unwrap();
    let packages: BTreeMap<Identifier, Round1Package<S>> = ids
        .iter()
        .zip(&r1)
        .map(|(i, (_, p))| (*i, p.clone()))
        .collect();
    let items: Vec<_> = ids
        .iter()
        .zip(r1)
        .map(|(id, (s, _))| {
            assert_eq!(format!("{s:?}"), format!("Round1Secret({id}, <redacted>)"));
            let others = packages
                .iter()
                .filter(|(i, _)| *i != id)
                .map(|(i, p)| (*i, p.clone()))
                .collect();
            (s, others)
        })
        .collect();
    let mut inbox: BTreeMap<Identifier, BTreeMap<Identifier, Round2Package<S>>> = BTreeMap::new();
    let mut states = Vec::new();
    for (id, x) in ids.iter().zip(dkg::part2_batch::<S>(&accel, items)) {
        let (state, out) = x.unwrap();
        assert_eq!(
            format!("{state:?}"),
            format!("Round2Secret({id}, <redacted>)")
        );
        for (to, pkg) in out {
            assert_eq!(format!("{pkg:?}"), "Round2Package(<redacted>)");
            inbox.entry(to).or_default().insert(*id, pkg);
        }
        states.push(state);
    }
    let items: Vec<_> = ids
        .iter()
        .zip(states)
        .map(|(id, s)| (s, inbox.remove(id).unwrap()))
        .collect();
    let out: Vec<_> = dkg::part3_batch::<S>(&accel, items)
        .into_iter()
        .map(Result::unwrap)
        .collect();
    for ((state, _), id) in out.iter().zip(&ids) {
        assert_eq!(
            format!("{state:?}"),
            format!("Round3Secret({id}, <redacted>)")
        );
    }
    out
}

/// The DKG confirmation guard names exactly the peers whose confirmation is missing or
/// differs, ignores the party's own entry (absent or not), and accepts a full honest set.
/// Kills the mutants of `dkg::finish`'s culprit filter and of its `!bad.is_empty()` guard.
fn dkg_finish_names_exactly_the_missing_or_differing_peers<S: Suite>() {
    let r3 = dkg_round3::<S>(2, 4);
    let id = |i: u16| Identifier::new(i).unwrap();
    let all: BTreeMap<Identifier, Confirmation> =
        (1..=4).zip(&r3).map(|(i, (_, c))| (id(i), *c)).collect();
    let mut it = r3.into_iter();
    // Party 1: its own confirmation absent.
    let (s1, _) = it.next().unwrap();
    let mut m = all.clone();
    m.remove(&id(1));
    let (k1, p1) = dkg::finish(s1, &m).unwrap();
    // Party 2: party 3's confirmation missing, party 4's different.
    let (s2, _) = it.next().unwrap();
    let mut m = all.clone();
    m.remove(&id(3));
    m.insert(id(4), Confirmation([9; 32]));
    assert_eq!(
        dkg::finish(s2, &m).unwrap_err(),
        Error::Culprits(vec![3, 4])
    );
    // Party 3: its own entry wrong, everyone else's right.
    let (s3, _) = it.next().unwrap();
    let mut m = all.clone();
    m.insert(id(3), Confirmation([1; 32]));
    let (_, p3) = dkg::finish(s3, &m).unwrap();
    assert_eq!(p1, p3);
    // Party 4: nothing received names all three peers.
    let (s4, _) = it.next().unwrap();
    assert_eq!(
        dkg::finish(s4, &BTreeMap::new()).unwrap_err(),
        Error::Culprits(vec![1, 2, 3])
    );
    assert_eq!(k1.group_key(), p1.group_key());
}

#[test]
fn dkg_finish_names_exactly_the_missing_or_differing_peers_ed25519() {
    dkg_finish_names_exactly_the_missing_or_differing_peers::<Ed25519Suite>();
}

#[test]
fn dkg_finish_names_exactly_the_missing_or_differing_peers_bip340() {
    dkg_finish_names_exactly_the_missing_or_differing_peers::<Bip340Suite>();
}

/// Every non-canonical Ed25519 point encoding is refused by the suite's point decoding: the
/// 19 values y = p + k (k < 19, which is every y ≥ p below 2^255) and y = ±1 with the sign
/// bit set, each with either sign bit. (Decoding refuses them through its identity and
/// subgroup checks, without re-compressing the point.) The canonical encoding of a
/// prime-order point still decodes.
#[test]
fn every_non_canonical_ed25519_encoding_is_refused() {
    // p = 2^255 − 19, little-endian.
    let mut p_bytes = [0xffu8; 32];
    p_bytes[0] = 0xed;
    p_bytes[31] = 0x7f;
    let mut refused = 0;
    for k in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut b = p_bytes;
            b[0] = 0xed + k;
            b[31] |= sign;
            assert!(
                Ed25519Suite::point_from_bytes(&b).is_none(),
                "y = p + {k}, sign {sign:#x}"
            );
            refused += 1;
        }
    }
    // x = 0 with the sign bit set: y = 1 and y = p − 1.
    let mut one = [0u8; 32];
    one[0] = 1;
    one[31] = 0x80;
    let mut minus_one = p_bytes;
    minus_one[0] = 0xec;
    minus_one[31] |= 0x80;
    for b in [one, minus_one] {
        assert!(Ed25519Suite::point_from_bytes(&b).is_none());
        refused += 1;
    }
    assert_eq!(refused, 40);
    let keys = key_set::<Ed25519Suite>(2, 3, 40);
    assert!(Ed25519Suite::point_from_bytes(&keys.public_key()).is_some());
}

/// Nonce commitments never repeat: 512 sessions of each of three shares (one `commit_batch`
/// call per share, as a node's pool refill makes them) give 3,072 pairwise distinct hiding and
/// binding commitments. Kills a nonce drawn once and reused for hiding and binding, or across
/// sessions.
fn nonce_commitments_never_repeat_across_sessions<S: Suite>() {
    let accel = CpuBackend::new();
    let keys = key_set::<S>(2, 3, 44);
    let mut rng = ChaCha20Rng::seed_from_u64(45);
    let mut seen = std::collections::HashSet::new();
    for share in keys.shares() {
        let shares = vec![share; 512];
        for (_, c) in commit_batch(&accel, &shares, &mut rng).unwrap() {
            assert!(
                seen.insert(c.hiding_bytes().to_vec()),
                "hiding commitment repeated"
            );
            assert!(
                seen.insert(c.binding_bytes().to_vec()),
                "binding commitment repeated"
            );
        }
    }
    assert_eq!(seen.len(), 3 * 512 * 2);
}

#[test]
fn nonce_commitments_never_repeat_across_sessions_ed25519() {
    nonce_commitments_never_repeat_across_sessions::<Ed25519Suite>();
}

#[test]
fn nonce_commitments_never_repeat_across_sessions_bip340() {
    nonce_commitments_never_repeat_across_sessions::<Bip340Suite>();
}

/// In one `part1_batch` call every party draws its own polynomial and proof nonce: the
/// `(t + 1)·n` points of the round-1 packages (commitments and proof `R`s) are pairwise
/// distinct. Kills the mutants of the batch offset (`off += t + 1` → `*=`, `t − 1`, `t · 1`),
/// after which parties share coefficients — every party would know the group secret — while
/// the DKG still completes and the key still signs.
fn dkg_round1_polynomials_are_independent_per_party<S: Suite>() {
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(46);
    let (t, n) = (3u16, 4u16);
    let params: Vec<_> = (1..=n)
        .map(|i| (Identifier::new(i).unwrap(), t, n, [0x6f; 32]))
        .collect();
    let r1 = dkg::part1_batch::<S>(&accel, &params, &mut rng).unwrap();
    let l = S::POINT_LEN;
    let mut seen = std::collections::HashSet::new();
    for (_, pkg) in &r1 {
        let b = pkg.to_bytes();
        assert_eq!(b.len(), 2 + (usize::from(t) + 1) * l + 32);
        for p in b[2..2 + (usize::from(t) + 1) * l].chunks_exact(l) {
            assert!(
                seen.insert(p.to_vec()),
                "a round-1 point repeats across parties"
            );
        }
    }
    assert_eq!(seen.len(), usize::from((t + 1) * n));
}

#[test]
fn dkg_round1_polynomials_are_independent_per_party_ed25519() {
    dkg_round1_polynomials_are_independent_per_party::<Ed25519Suite>();
}

#[test]
fn dkg_round1_polynomials_are_independent_per_party_bip340() {
    dkg_round1_polynomials_are_independent_per_party::<Bip340Suite>();
}

/// Round 2 wants exactly one round-1 package from every other party: a missing one is
/// `WrongSignerCount` with the right counts, an unknown or own identifier is
/// `UnknownIdentifier`. Kills `check_senders` → `None` and the mutants of its count.
fn dkg_round2_refuses_missing_unknown_or_own_senders<S: Suite>() {
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(47);
    let (t, n) = (2u16, 4u16);
    let id = |i: u16| Identifier::new(i).unwrap();
    let params: Vec<_> = (1..=n).map(|i| (id(i), t, n, [0x70; 32])).collect();
    let pkgs: BTreeMap<Identifier, Round1Package<S>> = (1..=n)
        .zip(dkg::part1_batch::<S>(&accel, &params, &mut rng).unwrap())
        .map(|(i, (_, p))| (id(i), p))
        .collect();
    let others = |drop: &[u16]| -> BTreeMap<Identifier, Round1Package<S>> {
        pkgs.iter()
            .filter(|(i, _)| i.get() != 1 && !drop.contains(&i.get()))
            .map(|(i, p)| (*i, p.clone()))
            .collect()
    };
    let mut unknown = others(&[]);
    unknown.insert(id(n + 1), pkgs[&id(2)].clone());
    let mut own = others(&[4]);
    own.insert(id(1), pkgs[&id(1)].clone());
    let cases = [
        (
            others(&[3]),
            Error::WrongSignerCount {
                got: usize::from(n) - 2,
                need: usize::from(n) - 1,
            },
        ),
        (unknown, Error::UnknownIdentifier(n + 1)),
        (own, Error::UnknownIdentifier(1)),
    ];
    for (received, want) in cases {
        let mut rng = ChaCha20Rng::seed_from_u64(47);
        let (state, _) = dkg::part1_batch::<S>(&accel, &params[..1], &mut rng)
            .unwrap()
            .remove(0);
        let got = dkg::part2_batch::<S>(&accel, vec![(state, received)]).remove(0);
        assert_eq!(got.map(|_| ()).unwrap_err(), want);
    }
    let (state, _) = dkg::part1_batch::<S>(&accel, &params[..1], &mut rng)
        .unwrap()
        .remove(0);
    assert!(
        dkg::part2_batch::<S>(&accel, vec![(state, others(&[]))])
            .remove(0)
            .is_ok()
    );
}

#[test]
fn dkg_round2_refuses_missing_unknown_or_own_senders_ed25519() {
    dkg_round2_refuses_missing_unknown_or_own_senders::<Ed25519Suite>();
}

#[test]
fn dkg_round2_refuses_missing_unknown_or_own_senders_bip340() {
    dkg_round2_refuses_missing_unknown_or_own_senders::<Bip340Suite>();
}

/// A signature share's `Debug` shows its signer and value (a share is public once sent).
/// Kills the emptied `Debug for SignatureShare`.
#[test]
fn signature_share_debug_names_signer_and_value() {
    use accel_api::CurveGroup;
    let z = <Ed25519Suite as Suite>::G::scalar_from_u64(5);
    let share = SignatureShare::<Ed25519Suite>::new(Identifier::new(3).unwrap(), z);
    assert_eq!(format!("{share:?}"), format!("SignatureShare(3, {z:?})"));
}

/// Rounds 1 and 2 one step at a time for `signers` on `message`: their commitments (nonces
/// drawn from `rng` in signer order), the signing package and each signer's round-2 result.
fn sign_round_by_round<S: Suite>(
    accel: &CpuBackend,
    signers: &[&KeyShare<S>],
    message: &[u8],
    rng: &mut ChaCha20Rng,
) -> (SigningPackage<S>, Vec<Result<SignatureShare<S>, Error>>) {
    let committed = commit_batch::<S>(accel, signers, rng).unwrap();
    let map: BTreeMap<Identifier, _> = signers
        .iter()
        .zip(&committed)
        .map(|(s, (_, c))| (s.identifier(), *c))
        .collect();
    let pkg = SigningPackage::<S>::new(map, message, TaprootTweak::None);
    let items: Vec<_> = committed
        .into_iter()
        .zip(signers)
        .map(|((nonces, _), share)| (&pkg, nonces, *share))
        .collect();
    let shares = threshold::round2::sign_batch(accel, items);
    (pkg, shares)
}

/// Round 2 and aggregation work with any signer set of at least `t` and refuse a smaller one.
/// Kills `commitments.len() < threshold` → `>` in `round2::sign_batch` and in
/// `aggregate_batch` (the other tests sign with exactly `t`).
fn signing_works_with_t_or_more_signers_and_refuses_fewer<S: Suite>() {
    let accel = CpuBackend::new();
    let keys = key_set::<S>(2, 3, 48);
    let mut rng = ChaCha20Rng::seed_from_u64(49);
    for count in 1..=3usize {
        let signers: Vec<_> = keys.shares().iter().take(count).collect();
        let (pkg, results) = sign_round_by_round(&accel, &signers, b"count", &mut rng);
        let shares: Vec<_> = results
            .into_iter()
            .filter_map(|got| {
                if count < 2 {
                    assert_eq!(
                        got.as_ref().unwrap_err(),
                        &Error::WrongSignerCount { got: 1, need: 2 }
                    );
                }
                got.ok()
            })
            .collect();
        let aggregated = aggregate_batch(&accel, &[(&pkg, &shares, keys.public_package())]);
        if count >= 2 {
            assert_eq!(shares.len(), count);
            assert!(aggregated[0].is_ok(), "{count} signers");
        } else {
            assert_eq!(
                aggregated[0].as_ref().unwrap_err(),
                &Error::WrongSignerCount { got: 1, need: 2 }
            );
        }
    }
}

#[test]
fn signing_works_with_t_or_more_signers_and_refuses_fewer_ed25519() {
    signing_works_with_t_or_more_signers_and_refuses_fewer::<Ed25519Suite>();
}

#[test]
fn signing_works_with_t_or_more_signers_and_refuses_fewer_bip340() {
    signing_works_with_t_or_more_signers_and_refuses_fewer::<Bip340Suite>();
}

/// A stored key set whose group key is not the one its verifying shares interpolate to (the
/// store is authenticated, so this is corruption, not an attack): every signature share
/// verifies, the aggregate does not, and aggregation fails with `InvalidSignature` naming no
/// signer. Kills the match guard `!c.is_empty()` → `true` in `session::finish`, which would
/// report an empty culprit list instead.
fn mismatched_group_key_fails_without_blaming_a_signer<S: Suite>() {
    let keys = key_set::<S>(2, 3, 50);
    let other = key_set::<S>(2, 3, 51);
    let mut bytes = keys.to_bytes().to_vec();
    let pl = S::POINT_LEN;
    bytes[10..10 + pl].copy_from_slice(&other.to_bytes()[10..10 + pl]);
    let corrupt = KeySet::<S>::from_bytes(&bytes).unwrap();
    let jobs = [SignJob {
        key: &corrupt,
        message: b"corrupt",
        taproot: TaprootTweak::None,
    }];
    let out = embedded::sign_batch(
        &CpuBackend::new(),
        &jobs,
        &mut ChaCha20Rng::seed_from_u64(52),
    );
    assert_eq!(out[0].as_ref().unwrap_err(), &Error::InvalidSignature);
}

#[test]
fn mismatched_group_key_fails_without_blaming_a_signer_ed25519() {
    mismatched_group_key_fails_without_blaming_a_signer::<Ed25519Suite>();
}

#[test]
fn mismatched_group_key_fails_without_blaming_a_signer_bip340() {
    mismatched_group_key_fails_without_blaming_a_signer::<Bip340Suite>();
}

/// Every signature names the key it verifies under: the set's public key encoding (32 bytes
/// Ed25519, x-only for BIP340, 33-byte compressed for FROST(secp256k1, SHA-256)). Kills
/// `verifying_key_bytes` → `vec![]`, `vec![0]`, `vec![1]` for the plain secp256k1 suite
/// (the other two are pinned by the signature tests).
fn signature_output_names_the_group_key<S: Suite>(len: usize) {
    let keys = key_set::<S>(2, 3, 53);
    let jobs = [SignJob {
        key: &keys,
        message: b"whose key",
        taproot: TaprootTweak::None,
    }];
    let out = embedded::sign_batch(
        &CpuBackend::new(),
        &jobs,
        &mut ChaCha20Rng::seed_from_u64(54),
    );
    let key = &out[0].as_ref().unwrap().verifying_key;
    assert_eq!(key.len(), len);
    assert_eq!(*key, keys.public_key());
}

#[test]
fn signature_output_names_the_group_key_all_suites() {
    signature_output_names_the_group_key::<Ed25519Suite>(32);
    signature_output_names_the_group_key::<Bip340Suite>(32);
    signature_output_names_the_group_key::<threshold::Secp256k1Sha256>(33);
}

/// The embedded path (all rounds in one call) and the round-by-round path (`commit_batch`,
/// `SigningPackage`, `round2::sign_batch`, `aggregate_batch`) give the same signature from
/// the same nonces: both draw them from the RNG in the same order, and everything after is
/// deterministic. Kills mutants that leave an embedded signature valid but computed from
/// different public inputs, such as `binding_enc: encs[k + 1]` → `encs[k * 1]` in
/// `embedded::sign_inner` (the binding factors would then hash the hiding commitment twice and
/// never bind the binding one, against RFC 9591 §4.4).
fn embedded_signing_matches_the_round_by_round_path<S: Suite>() {
    let accel = CpuBackend::new();
    let keys = key_set::<S>(2, 3, 55);
    let message = b"same nonces, same signature";
    let jobs = [SignJob {
        key: &keys,
        message,
        taproot: TaprootTweak::None,
    }];
    let embedded = embedded::sign_batch(&accel, &jobs, &mut ChaCha20Rng::seed_from_u64(56));
    let signers: Vec<_> = keys.shares().iter().take(2).collect();
    let (pkg, results) = sign_round_by_round(
        &accel,
        &signers,
        message,
        &mut ChaCha20Rng::seed_from_u64(56),
    );
    let shares: Vec<_> = results.into_iter().map(Result::unwrap).collect();
    let stepwise = aggregate_batch(&accel, &[(&pkg, &shares, keys.public_package())]);
    assert_eq!(
        embedded[0].as_ref().unwrap().signature,
        stepwise[0].as_ref().unwrap().signature
    );
}

#[test]
fn embedded_signing_matches_the_round_by_round_path_ed25519() {
    embedded_signing_matches_the_round_by_round_path::<Ed25519Suite>();
}

#[test]
fn embedded_signing_matches_the_round_by_round_path_bip340() {
    embedded_signing_matches_the_round_by_round_path::<Bip340Suite>();
}

/// Encodings a peer could send for an Ed25519 point: valid points, the identity, every
/// small-order point, every valid point plus a torsion component, the non-canonical
/// encodings, off-curve and random bytes, and wrong lengths.
fn ed25519_encodings(rng: &mut ChaCha20Rng) -> Vec<Vec<u8>> {
    use accel_api::curves::curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
    use accel_api::curves::curve25519_dalek::scalar::Scalar;
    use rand_core::RngCore;
    let mut out = Vec::new();
    for _ in 0..12 {
        let mut wide = [0u8; 64];
        rng.fill_bytes(&mut wide);
        let p = ED25519_BASEPOINT_POINT * Scalar::from_bytes_mod_order_wide(&wide);
        out.push(p.compress().to_bytes().to_vec());
        for t in EIGHT_TORSION {
            out.push((p + t).compress().to_bytes().to_vec());
        }
        let mut junk = [0u8; 32];
        rng.fill_bytes(&mut junk);
        out.push(junk.to_vec());
    }
    out.extend(
        EIGHT_TORSION
            .iter()
            .map(|t| t.compress().to_bytes().to_vec()),
    );
    let mut p_bytes = [0xffu8; 32];
    p_bytes[0] = 0xed;
    p_bytes[31] = 0x7f;
    for k in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut b = p_bytes;
            b[0] = 0xed + k;
            b[31] |= sign;
            out.push(b.to_vec());
        }
    }
    out.push(vec![0; 31]);
    out.push(vec![1; 33]);
    out
}

/// The batched validation of received points and commitments (subgroup checks through the
/// port) accepts and refuses exactly what the one-by-one validation does, for Ed25519 on
/// every edge case and for BIP340, and the batched signing-package decoding agrees with
/// `from_bytes_known` package by package.
#[test]
fn batched_point_validation_agrees_with_one_by_one() {
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(61);
    let encodings = ed25519_encodings(&mut rng);
    let refs: Vec<&[u8]> = encodings.iter().map(Vec::as_slice).collect();
    let batch = Ed25519Suite::points_from_bytes_batch(&accel, &refs).unwrap();
    for (b, got) in refs.iter().zip(&batch) {
        assert_eq!(
            *got,
            Ed25519Suite::point_from_bytes(b),
            "{}",
            hex::encode(b)
        );
    }
    // Each of the twelve blocks: P, P + T for the eight T (the first is the identity), junk.
    for (k, got) in batch.iter().take(120).enumerate() {
        match k % 10 {
            0 | 1 => assert!(got.is_some(), "valid point {k} refused"),
            2..=8 => assert!(got.is_none(), "point {k} with torsion accepted"),
            _ => {}
        }
    }
    assert!(batch[120..].iter().all(Option::is_none));

    fn packages_agree<S: Suite>(accel: &CpuBackend, bad: &[u8], seed: u64) {
        let keys = key_set::<S>(2, 3, seed);
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let shares: Vec<_> = keys.shares().iter().take(2).collect();
        let committed = commit_batch(accel, &shares, &mut rng).unwrap();
        let mut map = BTreeMap::new();
        for (s, (_, c)) in shares.iter().zip(&committed) {
            map.insert(s.identifier(), *c);
        }
        let good = SigningPackage::<S>::new(map, b"batched", TaprootTweak::None).to_bytes();
        let l = S::POINT_LEN;
        // The second signer's binding commitment replaced by `bad`, and a truncated package.
        let start = good.len() - l;
        let mut tampered = good.clone();
        tampered[start..].copy_from_slice(&bad[..l]);
        let truncated = &good[..good.len() - 1];
        let known = [committed[0].1];
        let items: Vec<(&[u8], &[SigningCommitments<S>])> = vec![
            (&good, &[]),
            (&good, &known),
            (&tampered, &[]),
            (&tampered, &known),
            (truncated, &[]),
            (&good, &known),
        ];
        let batch = SigningPackage::<S>::from_bytes_known_batch(accel, &items).unwrap();
        assert_eq!(batch.len(), items.len());
        for (k, ((b, known), got)) in items.iter().zip(batch).enumerate() {
            let one = SigningPackage::<S>::from_bytes_known(b, known);
            assert_eq!(
                got.map(|p| p.to_bytes()),
                one.map(|p| p.to_bytes()),
                "package {k}"
            );
        }
        let encs: Vec<&[u8]> = vec![
            &good[good.len() - 2 * l..],
            &tampered[tampered.len() - 2 * l..],
            &good[..5],
        ];
        for (b, got) in encs
            .iter()
            .zip(SigningCommitments::<S>::from_bytes_batch(accel, &encs).unwrap())
        {
            assert_eq!(
                got.map(|c| c.to_bytes()),
                SigningCommitments::<S>::from_bytes(b).map(|c| c.to_bytes())
            );
        }
    }
    // Ed25519: a valid point with a torsion component; BIP340: x = 0, not on the curve.
    let mixed = &encodings[2];
    assert!(Ed25519Suite::point_from_bytes(mixed).is_none());
    packages_agree::<Ed25519Suite>(&accel, mixed, 62);
    let mut off_curve = vec![0u8; 33];
    off_curve[0] = 2;
    packages_agree::<Bip340Suite>(&accel, &off_curve, 63);
}
