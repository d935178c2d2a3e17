//! RFC 8032 secret keys (seeds) to Ed25519 secret scalars: `Ed25519Sha512::secret_scalar_from_seed`
//! against `ed25519-dalek` and the RFC 8032 §7.1 vectors, and trusted-dealer import of the result.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use test_support as common;

use accel_api::curves::curve25519_dalek::edwards::EdwardsPoint;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use backend_cpu::CpuBackend;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};
use threshold::embedded::{self, SignJob};
use threshold::{Ed25519Sha512, TaprootTweak};

/// RFC 8032 §7.1 TEST 1..3: (name, secret key, public key).
const KEYS: &str = include_str!("../../../tests/vectors/rfc8032/keys.txt");

fn rfc8032_keys() -> Vec<(String, [u8; 32], [u8; 32])> {
    let mut lines = KEYS.lines();
    assert!(
        lines.next().unwrap().contains("RFC 8032 section 7.1"),
        "the vector file names its source first"
    );
    let keys: Vec<_> = lines
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 3, "{l}");
            let hex32 = |s: &str| <[u8; 32]>::try_from(hex::decode(s).unwrap()).unwrap();
            (f[0].to_owned(), hex32(f[1]), hex32(f[2]))
        })
        .collect();
    assert_eq!(keys.len(), 3);
    keys
}

/// `s·B`, compressed, for a canonical scalar encoding.
fn public_from_scalar(scalar: &[u8; 32]) -> [u8; 32] {
    let s: EdScalar = Option::from(EdScalar::from_canonical_bytes(*scalar))
        .expect("the scalar encoding is canonical");
    assert_ne!(s, EdScalar::ZERO);
    EdwardsPoint::mul_base(&s).compress().to_bytes()
}

#[test]
fn seed_scalar_gives_ed25519_dalek_public_key() {
    let mut rng = ChaCha20Rng::seed_from_u64(8032);
    let mut seeds: Vec<[u8; 32]> = vec![[0; 32], [0xff; 32]];
    for _ in 0..64 {
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        seeds.push(seed);
    }
    for seed in &seeds {
        let scalar = Ed25519Sha512::secret_scalar_from_seed(seed);
        let expected = ed25519_dalek::SigningKey::from_bytes(seed)
            .verifying_key()
            .to_bytes();
        assert_eq!(public_from_scalar(&scalar), expected, "seed {seed:02x?}");
    }
}

#[test]
fn rfc8032_section_7_1_secret_keys_give_their_public_keys() {
    for (name, secret, public) in rfc8032_keys() {
        let scalar = Ed25519Sha512::secret_scalar_from_seed(&secret);
        assert_eq!(public_from_scalar(&scalar), public, "{name}");
        // The transcription agrees with ed25519-dalek too.
        let dalek = ed25519_dalek::SigningKey::from_bytes(&secret).verifying_key();
        assert_eq!(dalek.to_bytes(), public, "{name}");
    }
}

#[test]
fn imported_rfc8032_key_has_the_rfc_public_key_and_signs() {
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for (name, secret, public) in rfc8032_keys() {
        let scalar = Ed25519Sha512::secret_scalar_from_seed(&secret);
        let set =
            embedded::import::<Ed25519Sha512>(&accel, scalar.as_slice(), 2, 3, &mut rng).unwrap();
        assert_eq!(set.public_key(), public, "{name}");
        let message = name.as_bytes();
        let out = embedded::sign_batch(
            &accel,
            &[SignJob {
                key: &set,
                message,
                taproot: TaprootTweak::None,
            }],
            &mut rng,
        );
        let out = out[0].as_ref().unwrap();
        assert_eq!(out.verifying_key, public, "{name}");
        assert!(
            common::ed25519_ok(&public, message, &out.signature),
            "{name}"
        );
    }
}
