//! End-to-end DKLs23 ECDSA tests against independent verifiers (libsecp256k1 via the
//! `secp256k1` crate, and `k256`).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use dkls23::{KeySet, embedded};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn check_signature(pk33: &[u8; 33], prehash: &[u8; 32], sig: &[u8; 64], rec: u8) {
    // libsecp256k1
    let secp = secp256k1::Secp256k1::verification_only();
    let pk = secp256k1::PublicKey::from_slice(pk33).unwrap();
    let msg = secp256k1::Message::from_digest(*prehash);
    let mut s = secp256k1::ecdsa::Signature::from_compact(sig).unwrap();
    let before = s;
    s.normalize_s();
    assert_eq!(before, s, "signature is not low-S");
    secp.verify_ecdsa(msg, &s, &pk).unwrap();
    let rid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(rec)).unwrap();
    let rs = secp256k1::ecdsa::RecoverableSignature::from_compact(sig, rid).unwrap();
    let full = secp256k1::Secp256k1::new();
    assert_eq!(full.recover_ecdsa(msg, &rs).unwrap(), pk);
    // k256
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(pk33).unwrap();
    let ks = k256::ecdsa::Signature::from_slice(sig).unwrap();
    vk.verify_prehash(prehash, &ks).unwrap();
    let krid = k256::ecdsa::RecoveryId::from_byte(rec).unwrap();
    let rec_vk = k256::ecdsa::VerifyingKey::recover_from_prehash(prehash, &ks, krid).unwrap();
    assert_eq!(rec_vk, vk);
    assert!(rec <= 1);
}

#[test]
fn two_of_three_signs_for_every_pair_and_verifies() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let pk = set.public_key_bytes();
    for signers in [[1u16, 2], [1, 3], [3, 2]] {
        let pres = embedded::presign_batch(&accel, &mut set, &signers, 2, &mut rng).unwrap();
        for pre in pres {
            let mut h = [0u8; 32];
            rng.fill_bytes(&mut h);
            let (sig, rec) = embedded::sign(&accel, &set, pre, &h).unwrap();
            check_signature(&pk, &h, &sig, rec);
        }
    }
}

/// `dkg_for` runs base OT only among the given signers: the other pairs hold no OT state
/// (the set is smaller, and still round-trips through bytes), and another signer set gets
/// its pairs' base OT when it first presigns, then signs.
#[test]
fn dkg_for_signers_sets_up_their_pairs_and_others_on_first_use() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let full = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let mut set = embedded::dkg_for(&accel, 2, 3, &[1, 2], &mut rng).unwrap();
    let ready = |set: &KeySet, a: u16, b: u16| set.share(a).unwrap().pair_ready(b);
    assert!(ready(&set, 1, 2) && ready(&set, 2, 1));
    assert!(!ready(&set, 1, 3) && !ready(&set, 3, 1));
    assert!(!ready(&set, 2, 3) && !ready(&set, 3, 2));
    assert!(set.to_bytes().len() * 2 < full.to_bytes().len());
    assert_eq!(
        KeySet::from_bytes(&set.to_bytes()).unwrap(),
        set,
        "a set with pairs not set up round-trips"
    );
    let pk = set.public_key_bytes();
    for signers in [[1u16, 2], [3, 1]] {
        let pres = embedded::presign_batch(&accel, &mut set, &signers, 1, &mut rng).unwrap();
        for pre in pres {
            let mut h = [0u8; 32];
            rng.fill_bytes(&mut h);
            let (sig, rec) = embedded::sign(&accel, &set, pre, &h).unwrap();
            check_signature(&pk, &h, &sig, rec);
        }
    }
    assert!(ready(&set, 1, 3) && ready(&set, 3, 1));
    assert!(!ready(&set, 2, 3));
    // `ready_pairs` reports whether it ran a base OT.
    assert!(!embedded::ready_pairs(&accel, &mut set, &[1, 2], &mut rng).unwrap());
    assert!(embedded::ready_pairs(&accel, &mut set, &[2, 3], &mut rng).unwrap());
    assert!(!embedded::ready_pairs(&accel, &mut set, &[2, 3], &mut rng).unwrap());
}

#[test]
fn key_set_round_trips_through_bytes() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let bytes = set.to_bytes();
    let mut back = KeySet::from_bytes(&bytes).unwrap();
    assert_eq!(back, set);
    assert!(KeySet::from_bytes(&bytes[..bytes.len() - 1]).is_err());
    let pre = embedded::presign_batch(&accel, &mut back, &[2, 3], 1, &mut rng).unwrap();
    let h = [7u8; 32];
    let (sig, rec) = embedded::sign(&accel, &back, pre.into_iter().next().unwrap(), &h).unwrap();
    check_signature(&set.public_key_bytes(), &h, &sig, rec);
}

#[test]
fn invalid_parameters_are_rejected() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    assert!(embedded::dkg(&accel, 1, 3, &mut rng).is_err());
    assert!(embedded::dkg(&accel, 4, 3, &mut rng).is_err());
    let mut set = embedded::dkg(&accel, 3, 4, &mut rng).unwrap();
    assert!(embedded::presign_batch(&accel, &mut set, &[1, 2], 1, &mut rng).is_err());
    assert!(embedded::presign_batch(&accel, &mut set, &[1, 2, 2], 1, &mut rng).is_err());
    assert!(embedded::presign_batch(&accel, &mut set, &[1, 2, 5], 1, &mut rng).is_err());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4, ..ProptestConfig::default() })]
    #[test]
    fn any_t_subset_of_n_signs(n in 2u16..=7, t_off in 0u16..6, seed in any::<u64>()) {
        let t = 2 + t_off % (n - 1);
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let mut set = embedded::dkg(&accel, t, n, &mut rng).unwrap();
        // A random subset of size between t and n.
        let mut ids: Vec<u16> = (1..=n).collect();
        for i in (1..ids.len()).rev() {
            let j = (rng.next_u32() as usize) % (i + 1);
            ids.swap(i, j);
        }
        let size = usize::from(t) + (rng.next_u32() as usize) % usize::from(n - t + 1);
        let signers = &ids[..size];
        let pre = embedded::presign_batch(&accel, &mut set, signers, 1, &mut rng).unwrap();
        let mut h = [0u8; 32];
        rng.fill_bytes(&mut h);
        let (sig, rec) = embedded::sign(&accel, &set, pre.into_iter().next().unwrap(), &h).unwrap();
        check_signature(&set.public_key_bytes(), &h, &sig, rec);
    }
}

#[test]
fn five_of_seven_signs() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(57);
    let mut set = embedded::dkg(&accel, 5, 7, &mut rng).unwrap();
    let pre = embedded::presign_batch(&accel, &mut set, &[7, 2, 5, 3, 6], 1, &mut rng).unwrap();
    let h = [0xab; 32];
    let (sig, rec) = embedded::sign(&accel, &set, pre.into_iter().next().unwrap(), &h).unwrap();
    check_signature(&set.public_key_bytes(), &h, &sig, rec);
}

#[test]
fn imported_key_keeps_its_public_key_and_signs() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let sk = secp256k1::SecretKey::from_byte_array([0x5a; 32]).unwrap();
    let expected = sk
        .public_key(&secp256k1::Secp256k1::signing_only())
        .serialize();
    let mut set = embedded::import(&accel, &sk.secret_bytes(), 2, 3, &mut rng).unwrap();
    assert_eq!(set.public_key_bytes(), expected);
    for signers in [[1u16, 2], [2, 3]] {
        let pre = embedded::presign_batch(&accel, &mut set, &signers, 1, &mut rng).unwrap();
        let h = [signers[0] as u8; 32];
        let (sig, rec) = embedded::sign(&accel, &set, pre.into_iter().next().unwrap(), &h).unwrap();
        check_signature(&expected, &h, &sig, rec);
    }
    assert!(embedded::import(&accel, &[0; 32], 2, 3, &mut rng).is_err());
    assert!(embedded::import(&accel, &[0xff; 32], 2, 3, &mut rng).is_err());
    assert!(embedded::import(&accel, &[1; 32], 1, 3, &mut rng).is_err());
}

#[test]
fn presignature_of_another_key_is_refused_and_sign_presigned_matches() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let mut a = embedded::dkg(&accel, 2, 2, &mut rng).unwrap();
    let b = embedded::dkg(&accel, 2, 2, &mut rng).unwrap();
    let mut pres = embedded::presign_batch(&accel, &mut a, &[1, 2], 2, &mut rng).unwrap();
    let h = [3u8; 32];
    let err = embedded::sign(&accel, &b, pres.remove(0), &h).unwrap_err();
    assert!(
        matches!(err, dkls23::Error::InvalidParameters(_)),
        "{err:?}"
    );
    let (sig, rec) = embedded::sign_presigned(&accel, pres.remove(0), &h).unwrap();
    check_signature(&a.public_key_bytes(), &h, &sig, rec);
}

/// An RNG stuck on one output.
struct Stuck;

impl RngCore for Stuck {
    fn next_u32(&mut self) -> u32 {
        0x2a2a_2a2a
    }
    fn next_u64(&mut self) -> u64 {
        0x2a2a_2a2a_2a2a_2a2a
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        dest.fill(0x2a);
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), rand_core::Error> {
        dest.fill(0x2a);
        Ok(())
    }
}

impl rand_core::CryptoRng for Stuck {}

/// Hedged nonces through the embedded driver: presignatures drawn with a stuck RNG (in one
/// batch and across batches) have distinct `R`, and their signatures verify with
/// libsecp256k1 and k256.
#[test]
fn stuck_rng_presignatures_differ_and_verify_with_libsecp256k1() {
    let accel = backend_cpu::CpuBackend::new();
    let mut set = embedded::dkg(&accel, 2, 3, &mut ChaCha20Rng::seed_from_u64(21)).unwrap();
    let pk = set.public_key_bytes();
    let mut pres = embedded::presign_batch(&accel, &mut set, &[1, 3], 2, &mut Stuck).unwrap();
    pres.extend(embedded::presign_batch(&accel, &mut set, &[1, 3], 1, &mut Stuck).unwrap());
    let mut seen = Vec::new();
    for (k, pre) in pres.into_iter().enumerate() {
        let h = [k as u8 + 1; 32];
        let (sig, rec) = embedded::sign(&accel, &set, pre, &h).unwrap();
        check_signature(&pk, &h, &sig, rec);
        let r: [u8; 32] = sig[..32].try_into().unwrap();
        assert!(!seen.contains(&r), "repeated nonce under a stuck RNG");
        seen.push(r);
    }
}

/// An accelerator that computes one point wrong.
mod faulty {
    use accel_api::EdPoint;
    use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
    use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
    use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar};
    use accel_api::{AccelError, Accelerator, Capabilities, LincombJob};
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// The CPU backend with one `mul_base` output made wrong: output `item` of the `call`-th call
    /// (counting from 0) gets the generator added.
    #[derive(Debug)]
    pub struct FaultyMulBase {
        inner: backend_cpu::CpuBackend,
        calls: AtomicUsize,
        call: usize,
        item: usize,
    }

    impl FaultyMulBase {
        pub fn new(call: usize, item: usize) -> Self {
            Self {
                inner: backend_cpu::CpuBackend::single_threaded(),
                calls: AtomicUsize::new(0),
                call,
                item,
            }
        }
    }

    impl Accelerator for FaultyMulBase {
        fn capabilities(&self) -> Capabilities {
            self.inner.capabilities()
        }
        fn secp256k1_mul_base(&self, s: &[Scalar]) -> Result<Vec<ProjectivePoint>, AccelError> {
            let mut out = self.inner.secp256k1_mul_base(s)?;
            if self.calls.fetch_add(1, Ordering::SeqCst) == self.call {
                out[self.item] += ProjectivePoint::GENERATOR;
            }
            Ok(out)
        }
        fn ed25519_mul_base(&self, s: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
            self.inner.ed25519_mul_base(s)
        }
        fn secp256k1_lincomb_vartime(
            &self,
            j: &[LincombJob<Scalar, ProjectivePoint>],
        ) -> Result<Vec<ProjectivePoint>, AccelError> {
            self.inner.secp256k1_lincomb_vartime(j)
        }
        fn ed25519_lincomb_vartime(
            &self,
            j: &[LincombJob<EdScalar, EdPoint>],
        ) -> Result<Vec<EdPoint>, AccelError> {
            self.inner.ed25519_lincomb_vartime(j)
        }
        fn secp256k1_normalize_batch(
            &self,
            p: &[ProjectivePoint],
        ) -> Result<Vec<AffinePoint>, AccelError> {
            self.inner.secp256k1_normalize_batch(p)
        }
        fn ed25519_compress_batch(
            &self,
            p: &[EdPoint],
        ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
            self.inner.ed25519_compress_batch(p)
        }
    }
}

#[test]
fn a_wrong_point_in_embedded_key_generation_names_its_dealer() {
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    // 2-of-3: the first mul_base holds the 3 × 2 coefficients' commitments, then the 3 proof
    // nonces' points; item 7 is dealer 2's proof nonce point, so dealer 2's proof fails.
    let accel = faulty::FaultyMulBase::new(0, 7);
    let err = embedded::dkg(&accel, 2, 3, &mut rng).unwrap_err();
    assert!(
        matches!(err, dkls23::Error::BadDkgShare { culprit: 2 }),
        "{err}"
    );
    // The second mul_base holds the shares f_i(j) in order (i, j); item 5 is f_2(3), dealt by
    // dealer 2, which fails its Feldman check.
    let accel = faulty::FaultyMulBase::new(1, 5);
    let err = embedded::dkg(&accel, 2, 3, &mut rng).unwrap_err();
    assert!(
        matches!(err, dkls23::Error::BadDkgShare { culprit: 2 }),
        "{err}"
    );
}

#[test]
fn import_accepts_n_of_n_and_refuses_t_above_n() {
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let secret = [7u8; 32];
    assert!(matches!(
        embedded::import(&accel, &secret, 4, 3, &mut rng),
        Err(dkls23::Error::InvalidParameters(_))
    ));
    let mut set = embedded::import(&accel, &secret, 3, 3, &mut rng).unwrap();
    let pre = embedded::presign_batch(&accel, &mut set, &[1, 2, 3], 1, &mut rng).unwrap();
    let h = [3u8; 32];
    let (sig, rec) = embedded::sign(&accel, &set, pre.into_iter().next().unwrap(), &h).unwrap();
    check_signature(&set.public_key_bytes(), &h, &sig, rec);
}

#[test]
fn presign_batch_and_refresh_pair_name_each_bad_party_set() {
    use dkls23::Error::InvalidParameters;
    let accel = backend_cpu::CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(10);
    let mut set = embedded::dkg(&accel, 3, 4, &mut rng).unwrap();
    let out_of_range = InvalidParameters("signer id out of range");
    for signers in [[1, 2, 5], [0, 1, 2]] {
        let err = embedded::presign_batch(&accel, &mut set, &signers, 1, &mut rng).unwrap_err();
        assert_eq!(err, out_of_range, "{signers:?}");
    }
    // A repeated signer is refused by the signer-set check, without re-running base OT for
    // the party with itself.
    let err = embedded::presign_batch(&accel, &mut set, &[1, 2, 2], 1, &mut rng).unwrap_err();
    assert_eq!(
        err,
        InvalidParameters("signer set must hold at least t distinct parties")
    );
    for (a, b) in [(2, 2), (1, 5), (0, 1)] {
        let err = embedded::refresh_pair(&accel, &mut set, a, b, &mut rng).unwrap_err();
        assert_eq!(
            err,
            InvalidParameters("party ids out of range"),
            "({a}, {b})"
        );
    }
}
