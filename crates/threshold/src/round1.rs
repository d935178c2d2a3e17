//! Round 1: nonce generation and commitments (RFC 9591 §5.1), batched over many parties and
//! sessions with one `mul_base` and one encoding call per batch.
//!
//! # Single use of nonces
//!
//! [`SigningNonces`] is neither `Clone` nor `Copy`, and [`crate::round2::sign_batch`] takes it
//! **by value**: once a share has been computed the nonces are moved into the call and dropped
//! (zeroized) there, so the type system rules out signing twice with the same nonces.
//!
//! Nonces cannot be cloned:
//!
//! ```compile_fail,E0599
//! fn copy<S: threshold::Suite>(n: threshold::round1::SigningNonces<S>) {
//!     let _again = n.clone();
//! }
//! ```
//!
//! and cannot be used again after round 2 consumed them:
//!
//! ```compile_fail,E0382
//! use threshold::round1::SigningNonces;
//! use threshold::round2::sign_batch;
//! use threshold::{KeyShare, SigningPackage, Suite};
//! fn twice<S: Suite>(
//!     accel: &dyn accel_api::Accelerator,
//!     pkg: &SigningPackage<S>,
//!     nonces: SigningNonces<S>,
//!     key: &KeyShare<S>,
//! ) {
//!     let _first = sign_batch(accel, vec![(pkg, nonces, key)]);
//!     let _second = sign_batch(accel, vec![(pkg, nonces, key)]);
//! }
//! ```

use core::fmt;

use accel_api::{Accelerator, CurveGroup};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::keys::KeyShare;
use crate::suite::{Point, PointBytes, Scalar, Suite};

/// A party's public commitments `(D, E) = (d·G, e·G)` for one signing session.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct SigningCommitments<S: Suite> {
    pub(crate) hiding: Point<S>,
    pub(crate) binding: Point<S>,
    pub(crate) hiding_enc: PointBytes,
    pub(crate) binding_enc: PointBytes,
}

impl<S: Suite> SigningCommitments<S> {
    /// Encoding of the hiding commitment `D`.
    pub fn hiding_bytes(&self) -> &[u8] {
        self.hiding_enc.as_bytes()
    }
    /// Encoding of the binding commitment `E`.
    pub fn binding_bytes(&self) -> &[u8] {
        self.binding_enc.as_bytes()
    }
    /// `D ‖ E`.
    pub fn to_bytes(&self) -> Vec<u8> {
        [self.hiding_bytes(), self.binding_bytes()].concat()
    }
    /// Decodes and validates `D ‖ E` (on the curve, not the identity, prime-order subgroup).
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let l = S::POINT_LEN;
        if b.len() != 2 * l {
            return Err(Error::Malformed("signing commitments length"));
        }
        let hiding = S::point_from_bytes(&b[..l]);
        let binding = S::point_from_bytes(&b[l..]);
        Self::assemble(b, hiding, binding)
    }

    /// [`SigningCommitments::from_bytes`] for many encodings, with the points validated in one
    /// batch through the port ([`Suite::points_from_bytes_batch`]); one result per encoding.
    /// `Err` only when the port fails.
    pub fn from_bytes_batch(
        accel: &dyn Accelerator,
        encodings: &[&[u8]],
    ) -> Result<Vec<Result<Self, Error>>, Error> {
        let l = S::POINT_LEN;
        let halves: Vec<&[u8]> = encodings
            .iter()
            .filter(|b| b.len() == 2 * l)
            .flat_map(|b| [&b[..l], &b[l..]])
            .collect();
        let mut points = S::points_from_bytes_batch(accel, &halves)?.into_iter();
        Ok(encodings
            .iter()
            .map(|b| {
                if b.len() != 2 * l {
                    return Err(Error::Malformed("signing commitments length"));
                }
                let hiding = points.next().flatten();
                let binding = points.next().flatten();
                Self::assemble(b, hiding, binding)
            })
            .collect())
    }

    /// The commitments of the encoding `b` (`D ‖ E`, of the right length) from its decoded
    /// points; `None` is a point that failed validation.
    fn assemble(
        b: &[u8],
        hiding: Option<Point<S>>,
        binding: Option<Point<S>>,
    ) -> Result<Self, Error> {
        let l = S::POINT_LEN;
        Ok(Self {
            hiding: hiding.ok_or(Error::Malformed("hiding commitment"))?,
            binding: binding.ok_or(Error::Malformed("binding commitment"))?,
            hiding_enc: PointBytes::new(&b[..l]),
            binding_enc: PointBytes::new(&b[l..]),
        })
    }
}

/// A party's secret nonces `(d, e)` for one session. Single use: not `Clone`, consumed by
/// value in round 2, zeroized on drop, redacted in `Debug`.
pub struct SigningNonces<S: Suite> {
    pub(crate) hiding: Scalar<S>,
    pub(crate) binding: Scalar<S>,
    pub(crate) commitments: SigningCommitments<S>,
}

impl<S: Suite> SigningNonces<S> {
    /// The commitments these nonces open.
    pub fn commitments(&self) -> &SigningCommitments<S> {
        &self.commitments
    }
}

impl<S: Suite> SigningNonces<S> {
    /// Zeroizes both nonces (what `Drop` runs).
    fn wipe(&mut self) {
        self.hiding.zeroize();
        self.binding.zeroize();
        #[cfg(test)]
        crate::probe::note_wipe("SigningNonces");
    }
}

impl<S: Suite> Drop for SigningNonces<S> {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl<S: Suite> fmt::Debug for SigningNonces<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningNonces")
            .field("nonces", &"<redacted>")
            .field("commitments", &self.commitments)
            .finish()
    }
}

/// A party's nonces (kept) and commitments (sent to the coordinator) for one session.
pub type Committed<S> = (SigningNonces<S>, SigningCommitments<S>);

/// RFC 9591 §4.1 `nonce_generate`: `H3(random_bytes ‖ SerializeScalar(secret))`.
pub(crate) fn nonce_from_randomness<S: Suite>(random: &[u8; 32], secret: &Scalar<S>) -> Scalar<S> {
    let mut sb = S::scalar_to_bytes(secret);
    let n = S::h3(&[random, &sb]);
    sb.zeroize();
    n
}

/// RFC 9591 §4.1 `nonce_generate` with caller-supplied randomness (for test vectors; real
/// signing draws the randomness in [`commit_batch`]).
pub fn nonce_generate<S: Suite>(random: &[u8; 32], share: &KeyShare<S>) -> Scalar<S> {
    nonce_from_randomness::<S>(random, &share.secret)
}

/// Draws fresh hiding and binding nonces for one share.
pub(crate) fn draw_nonces<S: Suite>(
    secret: &Scalar<S>,
    rng: &mut impl CryptoRngCore,
) -> (Scalar<S>, Scalar<S>) {
    let mut r = Zeroizing::new([0u8; 32]);
    rng.fill_bytes(r.as_mut());
    let d = nonce_from_randomness::<S>(&r, secret);
    rng.fill_bytes(r.as_mut());
    let e = nonce_from_randomness::<S>(&r, secret);
    (d, e)
}

/// Round 1 for many (party, session) pairs: fresh nonces for each share in `shares` (a share
/// may appear many times, once per session) and their commitments, with one `mul_base` call.
pub fn commit_batch<S: Suite>(
    accel: &dyn Accelerator,
    shares: &[&KeyShare<S>],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Committed<S>>, Error> {
    let nonces: Zeroizing<Vec<(Scalar<S>, Scalar<S>)>> = Zeroizing::new(
        shares
            .iter()
            .map(|s| draw_nonces::<S>(&s.secret, rng))
            .collect(),
    );
    commit_with_nonces_batch(accel, &nonces)
}

/// Round 1 from given nonce pairs `(d, e)` (one `mul_base` call and one encoding call for the
/// whole batch). Used by [`commit_batch`] and to reproduce test vectors.
pub fn commit_with_nonces_batch<S: Suite>(
    accel: &dyn Accelerator,
    nonces: &[(Scalar<S>, Scalar<S>)],
) -> Result<Vec<Committed<S>>, Error> {
    let scalars: Zeroizing<Vec<Scalar<S>>> =
        Zeroizing::new(nonces.iter().flat_map(|(d, e)| [*d, *e]).collect());
    let points = S::G::mul_base(accel, &scalars)?;
    if points.iter().any(S::G::is_identity) {
        return Err(Error::Malformed("zero nonce"));
    }
    let encs = S::encode_batch(accel, &points)?;
    Ok(nonces
        .iter()
        .enumerate()
        .map(|(k, (d, e))| {
            let c = SigningCommitments {
                hiding: points[2 * k],
                binding: points[2 * k + 1],
                hiding_enc: encs[2 * k],
                binding_enc: encs[2 * k + 1],
            };
            (
                SigningNonces {
                    hiding: *d,
                    binding: *e,
                    commitments: c,
                },
                c,
            )
        })
        .collect())
}

/// Assurance tests for the nonces (see `docs/assurance.md`).
#[cfg(test)]
mod assurance {
    use super::*;
    use crate::{Ed25519Sha512, KeySet};
    use backend_cpu::CpuBackend;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// `wipe` zeroizes both nonces, dropping them runs it, and `Debug` redacts them. Kills the
    /// emptied `SigningNonces::wipe`, `Drop for SigningNonces` and `Debug for SigningNonces`.
    #[test]
    fn signing_nonces_are_redacted_and_wiped_on_drop() {
        let accel = CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(8);
        let secret = <Ed25519Sha512 as Suite>::G::random_scalar(&mut rng);
        let set = KeySet::<Ed25519Sha512>::split(&accel, &secret, 2, 3, &mut rng).unwrap();
        let shares: Vec<_> = set.shares().iter().take(2).collect();
        let mut committed = commit_batch(&accel, &shares, &mut rng).unwrap();
        let (mut nonces, commitments) = committed.remove(0);
        let shown = format!("{nonces:?}");
        assert_eq!(
            shown,
            format!("SigningNonces {{ nonces: \"<redacted>\", commitments: {commitments:?} }}")
        );
        let zero = <Ed25519Sha512 as Suite>::G::scalar_zero();
        assert!(nonces.hiding != zero && nonces.binding != zero);
        nonces.wipe();
        assert!(nonces.hiding == zero && nonces.binding == zero);
        let (other, _) = committed.remove(0);
        let before = crate::probe::wipes("SigningNonces");
        drop(other);
        assert_eq!(crate::probe::wipes("SigningNonces"), before + 1);
    }
}
