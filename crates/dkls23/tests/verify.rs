//! Batched ECDSA verification (`dkls23::verify_prehash_batch`) against libsecp256k1 (the
//! `secp256k1` crate) as the reference.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use accel_api::EdPoint;
use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::{AccelError, Accelerator, BackendId, Capabilities, LincombJob};
use backend_cpu::CpuBackend;
use dkls23::{embedded, verify_prehash_batch};
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::ops::Reduce;
use k256::elliptic_curve::point::AffineCoordinates;
use k256::elliptic_curve::scalar::IsHigh;
use k256::elliptic_curve::sec1::FromEncodedPoint;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use proptest::prelude::*;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// The group order n, big-endian.
const N: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe,
    0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36, 0x41, 0x41,
];

/// A libsecp256k1 key pair and a signature (always low S) on a random prehash.
struct Signed {
    pk33: [u8; 33],
    pk65: [u8; 65],
    prehash: [u8; 32],
    sig: [u8; 64],
}

fn libsecp_sign(rng: &mut impl RngCore) -> Signed {
    let secp = secp256k1::Secp256k1::new();
    let mut sk = [0u8; 32];
    let sk = loop {
        rng.fill_bytes(&mut sk);
        if let Ok(k) = secp256k1::SecretKey::from_byte_array(sk) {
            break k;
        }
    };
    let pk = sk.public_key(&secp);
    let mut prehash = [0u8; 32];
    rng.fill_bytes(&mut prehash);
    let sig = secp.sign_ecdsa(secp256k1::Message::from_digest(prehash), &sk);
    Signed {
        pk33: pk.serialize(),
        pk65: pk.serialize_uncompressed(),
        prehash,
        sig: sig.serialize_compact(),
    }
}

/// libsecp256k1's verdict on the same bytes.
fn libsecp_ok(pk: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
    let Ok(pk) = secp256k1::PublicKey::from_slice(pk) else {
        return false;
    };
    let Ok(digest) = <[u8; 32]>::try_from(prehash) else {
        return false;
    };
    let Ok(sig) = secp256k1::ecdsa::Signature::from_compact(sig) else {
        return false;
    };
    secp256k1::SECP256K1
        .verify_ecdsa(secp256k1::Message::from_digest(digest), &sig, &pk)
        .is_ok()
}

fn verify(items: &[(&[u8], &[u8], &[u8])]) -> Vec<bool> {
    verify_prehash_batch(&CpuBackend::single_threaded(), items).unwrap()
}

fn verify_one(pk: &[u8], prehash: &[u8], sig: &[u8]) -> bool {
    let v = verify(&[(pk, prehash, sig)]);
    assert_eq!(v.len(), 1);
    v[0]
}

fn with_s(sig: &[u8; 64], s: &[u8; 32]) -> [u8; 64] {
    let mut out = *sig;
    out[32..].copy_from_slice(s);
    out
}

fn with_r(sig: &[u8; 64], r: &[u8; 32]) -> [u8; 64] {
    let mut out = *sig;
    out[..32].copy_from_slice(r);
    out
}

#[test]
fn libsecp256k1_signatures_verify_in_one_batch() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let signed: Vec<Signed> = (0..24).map(|_| libsecp_sign(&mut rng)).collect();
    let mut items: Vec<(&[u8], &[u8], &[u8])> = Vec::new();
    for s in &signed {
        items.push((&s.pk33, &s.prehash, &s.sig));
        items.push((&s.pk65, &s.prehash, &s.sig));
    }
    assert_eq!(verify(&items), vec![true; items.len()]);
}

#[test]
fn high_s_twin_of_a_valid_signature_is_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    for _ in 0..8 {
        let s = libsecp_sign(&mut rng);
        let low: Scalar = Option::from(Scalar::from_repr(
            <[u8; 32]>::try_from(&s.sig[32..]).unwrap().into(),
        ))
        .unwrap();
        let high = with_s(&s.sig, &(-low).to_repr().into());
        assert!(verify_one(&s.pk33, &s.prehash, &s.sig));
        assert!(!verify_one(&s.pk33, &s.prehash, &high));
        assert!(!libsecp_ok(&s.pk33, &s.prehash, &high));
        // The same signature made low again verifies.
        let mut normalized = secp256k1::ecdsa::Signature::from_compact(&high).unwrap();
        normalized.normalize_s();
        assert_eq!(normalized.serialize_compact(), s.sig);
    }
}

#[test]
fn r_or_s_out_of_range_is_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let s = libsecp_sign(&mut rng);
    let mut n_plus_1 = N;
    n_plus_1[31] += 1;
    let bad = [
        with_r(&s.sig, &[0; 32]),
        with_s(&s.sig, &[0; 32]),
        with_r(&s.sig, &N),
        with_r(&s.sig, &n_plus_1),
        with_r(&s.sig, &[0xff; 32]),
        with_s(&s.sig, &N),
        with_s(&s.sig, &[0xff; 32]),
    ];
    for sig in &bad {
        assert!(!verify_one(&s.pk33, &s.prehash, sig));
        assert!(!libsecp_ok(&s.pk33, &s.prehash, sig));
    }
}

#[test]
fn wrong_message_or_wrong_key_is_rejected() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    let a = libsecp_sign(&mut rng);
    let b = libsecp_sign(&mut rng);
    let mut other = a.prehash;
    other[0] ^= 1;
    assert!(!verify_one(&a.pk33, &other, &a.sig));
    assert!(!verify_one(&a.pk33, &b.prehash, &a.sig));
    assert!(!verify_one(&b.pk33, &a.prehash, &a.sig));
    assert!(!verify_one(&b.pk65, &a.prehash, &a.sig));
}

#[test]
fn malformed_lengths_and_encodings_are_false_not_errors() {
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let s = libsecp_sign(&mut rng);
    assert!(verify_one(&s.pk33, &s.prehash, &s.sig));
    // Prehash of 31 or 33 bytes, or empty.
    assert!(!verify_one(&s.pk33, &s.prehash[..31], &s.sig));
    let mut long = s.prehash.to_vec();
    long.push(0);
    assert!(!verify_one(&s.pk33, &long, &s.sig));
    assert!(!verify_one(&s.pk33, &[], &s.sig));
    // Signature of 63 or 65 bytes, or empty.
    assert!(!verify_one(&s.pk33, &s.prehash, &s.sig[..63]));
    let mut sig65 = s.sig.to_vec();
    sig65.push(0);
    assert!(!verify_one(&s.pk33, &s.prehash, &sig65));
    assert!(!verify_one(&s.pk33, &s.prehash, &[]));
    // Malformed keys: empty, truncated, unknown tag, x not on the curve, off-curve
    // uncompressed point, an x coordinate ≥ p.
    let mut bad_tag = s.pk33;
    bad_tag[0] = 0x07;
    let mut off_curve = s.pk65;
    off_curve[64] ^= 1;
    let mut x_ge_p = [0xffu8; 33];
    x_ge_p[0] = 0x02;
    let not_on_curve = (0u8..=255)
        .map(|i| {
            let mut k = s.pk33;
            k[32] = i;
            k
        })
        .find(|k| secp256k1::PublicKey::from_slice(k).is_err())
        .unwrap();
    let bad_keys: [&[u8]; 7] = [
        &[],
        &s.pk33[..32],
        &s.pk65[..64],
        &bad_tag,
        &not_on_curve,
        &off_curve,
        &x_ge_p,
    ];
    for k in bad_keys {
        assert!(!verify_one(k, &s.prehash, &s.sig), "{k:02x?}");
        assert!(!libsecp_ok(k, &s.prehash, &s.sig));
    }
}

/// SEC1 encodes the point at infinity as the single byte 0. `u₁·G + u₂·O = u₁·G`, so under that
/// "key" anyone can make `(r, s)` with `x(z·s⁻¹·G) = r`: it must be refused.
#[test]
fn point_at_infinity_as_key_does_not_verify_a_forgery() {
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let mut prehash = [0u8; 32];
    rng.fill_bytes(&mut prehash);
    let z = <Scalar as Reduce<k256::U256>>::reduce_bytes(&prehash.into());
    let k = Scalar::from(12345u64);
    let r_point = AffinePoint::from(ProjectivePoint::GENERATOR * k);
    let r = <Scalar as Reduce<k256::U256>>::reduce_bytes(&r_point.x());
    // s = z/k satisfies z·s⁻¹ = k; its negation goes with -k·G, which has the same x.
    let s = z * Option::<Scalar>::from(k.invert()).unwrap();
    let s = if bool::from(s.is_high()) { -s } else { s };
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&r.to_repr());
    sig[32..].copy_from_slice(&s.to_repr());
    // The forgery is sound against the identity: z·s⁻¹·G has x ≡ r (mod n).
    let u1 = z * Option::<Scalar>::from(s.invert()).unwrap();
    let x = AffinePoint::from(ProjectivePoint::GENERATOR * u1).x();
    assert_eq!(<Scalar as Reduce<k256::U256>>::reduce_bytes(&x), r);
    // k256 itself decodes the one-byte encoding to the identity.
    let identity = k256::EncodedPoint::from_bytes([0x00]).unwrap();
    assert_eq!(
        Option::<AffinePoint>::from(AffinePoint::from_encoded_point(&identity)),
        Some(AffinePoint::IDENTITY)
    );
    assert!(!verify_one(&[0x00], &prehash, &sig));
}

#[test]
fn empty_batch_is_empty() {
    assert_eq!(verify(&[]), Vec::<bool>::new());
}

#[test]
fn mixed_batch_gives_each_position_its_own_verdict() {
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    let signed: Vec<Signed> = (0..6).map(|_| libsecp_sign(&mut rng)).collect();
    let mut wrong_msg = signed[1].prehash;
    wrong_msg[31] ^= 0x80;
    let zero_r = with_r(&signed[3].sig, &[0; 32]);
    let items: Vec<(&[u8], &[u8], &[u8])> = vec![
        (&signed[0].pk33, &signed[0].prehash, &signed[0].sig),
        (&signed[1].pk33, &wrong_msg, &signed[1].sig),
        (&signed[2].pk65, &signed[2].prehash, &signed[2].sig),
        (&signed[3].pk33, &signed[3].prehash, &zero_r),
        (&signed[4].pk33, &signed[4].prehash[..31], &signed[4].sig),
        (&signed[5].pk33, &signed[5].prehash, &signed[5].sig),
        (&signed[0].pk33, &signed[5].prehash, &signed[5].sig),
        (&[0x02; 33], &signed[0].prehash, &signed[0].sig),
        (&signed[4].pk33, &signed[4].prehash, &signed[4].sig),
    ];
    let expected = vec![true, false, true, false, false, true, false, false, true];
    assert_eq!(verify(&items), expected);
    let reference: Vec<bool> = items.iter().map(|(k, m, s)| libsecp_ok(k, m, s)).collect();
    assert_eq!(reference, expected);
}

#[test]
fn dkls23_embedded_signatures_verify() {
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let pk = set.public_key_bytes();
    let pres = embedded::presign_batch(&accel, &mut set, &[1, 3], 3, &mut rng).unwrap();
    let mut signed = Vec::new();
    for pre in pres {
        let mut h = [0u8; 32];
        rng.fill_bytes(&mut h);
        let (sig, _) = embedded::sign(&accel, &set, pre, &h).unwrap();
        signed.push((h, sig));
    }
    let items: Vec<(&[u8], &[u8], &[u8])> = signed
        .iter()
        .map(|(h, sig)| (pk.as_slice(), h.as_slice(), sig.as_slice()))
        .collect();
    assert_eq!(verify_prehash_batch(&accel, &items).unwrap(), vec![true; 3]);
}

/// An accelerator whose `secp256k1_lincomb_vartime` fails, or (with `short`) answers one point
/// too few; every other operation fails.
#[derive(Debug)]
struct Faulty {
    short: bool,
}

fn device_error() -> AccelError {
    AccelError::Device {
        backend: BackendId::Cpu,
        reason: "device lost".to_owned(),
    }
}

impl Accelerator for Faulty {
    fn capabilities(&self) -> Capabilities {
        Capabilities {
            backend: BackendId::Cpu,
            device_id: "cpu:faulty".to_owned(),
            device: String::new(),
            ops: Vec::new(),
            secret_ops: false,
            lanes: 1,
        }
    }
    fn secp256k1_mul_base(&self, _: &[Scalar]) -> Result<Vec<ProjectivePoint>, AccelError> {
        Err(device_error())
    }
    fn ed25519_mul_base(&self, _: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        Err(device_error())
    }
    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<Scalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        if !self.short {
            return Err(device_error());
        }
        let mut out = CpuBackend::single_threaded().secp256k1_lincomb_vartime(jobs)?;
        out.pop();
        Ok(out)
    }
    fn ed25519_lincomb_vartime(
        &self,
        _: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        Err(device_error())
    }
    fn secp256k1_normalize_batch(
        &self,
        _: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        Err(device_error())
    }
    fn ed25519_compress_batch(&self, _: &[EdPoint]) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        Err(device_error())
    }
}

#[test]
fn accelerator_failure_is_an_error() {
    let mut rng = ChaCha20Rng::seed_from_u64(9);
    let s = libsecp_sign(&mut rng);
    let items: [(&[u8], &[u8], &[u8]); 2] =
        [(&s.pk33, &s.prehash, &s.sig), (&s.pk65, &s.prehash, &s.sig)];
    let err = verify_prehash_batch(&Faulty { short: false }, &items).unwrap_err();
    assert_eq!(err, device_error());
    let err = verify_prehash_batch(&Faulty { short: true }, &items).unwrap_err();
    assert!(
        matches!(
            err,
            AccelError::Device {
                backend: BackendId::Cpu,
                ..
            }
        ),
        "{err:?}"
    );
    // Nothing reaches the port when no item is well formed, so the failure does not show.
    let bad: [(&[u8], &[u8], &[u8]); 1] = [(&s.pk33, &s.prehash[..31], &s.sig)];
    assert_eq!(
        verify_prehash_batch(&Faulty { short: false }, &bad).unwrap(),
        vec![false]
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]
    /// A valid signature with one byte of the prehash, the signature or the key's x
    /// coordinate changed (or nothing changed) gets libsecp256k1's verdict.
    #[test]
    fn agrees_with_libsecp256k1_on_mutations(
        seed in any::<u64>(),
        target in 0usize..4,
        index in 0usize..64,
        xor in 1u8..=255,
    ) {
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let s = libsecp_sign(&mut rng);
        let (mut pk, mut h, mut sig) = (s.pk33, s.prehash, s.sig);
        match target {
            0 => h[index % 32] ^= xor,
            1 => sig[index] ^= xor,
            2 => pk[1 + index % 32] ^= xor,
            _ => {}
        }
        prop_assert_eq!(verify_one(&pk, &h, &sig), libsecp_ok(&pk, &h, &sig));
    }
}
