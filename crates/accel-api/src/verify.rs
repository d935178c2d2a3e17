//! Batched Schnorr-equation verification by random linear combination, shared by backends.
//!
//! For items `(Rᵢ, sᵢ, cᵢ, Pᵢ)` and independent random 128-bit `zᵢ`, the batch holds when
//! `(Σ zᵢ·sᵢ)·G − Σ zᵢ·Rᵢ − Σ (zᵢ·cᵢ)·Pᵢ = 𝒪` (times the cofactor 8 on edwards25519). If any
//! item is false the combination is non-zero except with probability about 2⁻¹²⁸. The batch is
//! cut into chunks (so a backend can work on chunks in parallel and a bad item only costs its
//! chunk a re-check); a chunk that fails is re-checked item by item to name the failures.

use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::elliptic_curve::group::Group;
use k256::{ProjectivePoint, Scalar as SecpScalar};
use rand_core::{OsRng, RngCore};

use crate::{AccelError, Accelerator, EdPoint, LincombJob, SchnorrItem, Verdict};

/// Items per random-linear-combination chunk.
const CHUNK: usize = 64;
/// How many recent distinct public keys a chunk compares each item's key with.
const KEY_MERGE_WINDOW: usize = 4;

fn random_u128s(n: usize) -> Vec<u128> {
    let mut bytes = vec![0u8; 16 * n];
    OsRng.fill_bytes(&mut bytes);
    bytes
        .chunks_exact(16)
        .map(|c| {
            let mut b = [0u8; 16];
            b.copy_from_slice(c);
            u128::from_le_bytes(b)
        })
        .collect()
}

/// Per-curve pieces the generic algorithm needs.
trait RlcCurve {
    type S: Copy
        + core::ops::Add<Output = Self::S>
        + core::ops::Mul<Output = Self::S>
        + core::ops::Neg<Output = Self::S>;
    type P: Copy + PartialEq;
    fn from_u128(z: u128) -> Self::S;
    fn one() -> Self::S;
    fn zero() -> Self::S;
    fn generator() -> Self::P;
    fn holds(p: &Self::P) -> bool;
    fn lincomb(
        acc: &(impl Accelerator + ?Sized),
        jobs: &[LincombJob<Self::S, Self::P>],
    ) -> Result<Vec<Self::P>, AccelError>;
}

struct Secp;
struct Ed;

impl RlcCurve for Secp {
    type S = SecpScalar;
    type P = ProjectivePoint;
    fn from_u128(z: u128) -> SecpScalar {
        <SecpScalar as k256::elliptic_curve::ops::Reduce<k256::U256>>::reduce(
            k256::U256::from_u128(z),
        )
    }
    fn one() -> SecpScalar {
        SecpScalar::ONE
    }
    fn zero() -> SecpScalar {
        SecpScalar::ZERO
    }
    fn generator() -> ProjectivePoint {
        ProjectivePoint::GENERATOR
    }
    fn holds(p: &ProjectivePoint) -> bool {
        bool::from(p.is_identity())
    }
    fn lincomb(
        acc: &(impl Accelerator + ?Sized),
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        acc.secp256k1_lincomb_vartime(jobs)
    }
}

impl RlcCurve for Ed {
    type S = EdScalar;
    type P = EdPoint;
    fn from_u128(z: u128) -> EdScalar {
        EdScalar::from(z)
    }
    fn one() -> EdScalar {
        EdScalar::ONE
    }
    fn zero() -> EdScalar {
        EdScalar::ZERO
    }
    fn generator() -> EdPoint {
        EdPoint::generator()
    }
    fn holds(p: &EdPoint) -> bool {
        p.is_small_order()
    }
    fn lincomb(
        acc: &(impl Accelerator + ?Sized),
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        acc.ed25519_lincomb_vartime(jobs)
    }
}

fn single_job<C: RlcCurve>(item: &SchnorrItem<C::S, C::P>) -> LincombJob<C::S, C::P> {
    LincombJob::new(vec![
        (item.s, C::generator()),
        (-C::one(), item.r),
        (-item.c, item.public_key),
    ])
}

fn verify_generic<C: RlcCurve>(
    acc: &(impl Accelerator + ?Sized),
    items: &[SchnorrItem<C::S, C::P>],
) -> Result<Verdict, AccelError> {
    if items.is_empty() {
        return Ok(Verdict::default());
    }
    if items.len() == 1 {
        let jobs: Vec<_> = items.iter().map(single_job::<C>).collect();
        let out = C::lincomb(acc, &jobs)?;
        return Ok(Verdict {
            invalid: (0..out.len()).filter(|i| !C::holds(&out[*i])).collect(),
        });
    }
    let zs = random_u128s(items.len());
    let jobs: Vec<LincombJob<C::S, C::P>> = items
        .chunks(CHUNK)
        .zip(zs.chunks(CHUNK))
        .map(|(chunk, zs)| {
            let mut s_sum = C::zero();
            let mut terms = Vec::with_capacity(2 * chunk.len() + 1);
            // Many items of a batch usually share a public key (one key signing for many
            // sessions): their key terms are merged into one.
            let mut keys: Vec<(C::S, C::P)> = Vec::new();
            for (item, z) in chunk.iter().zip(zs) {
                let z = C::from_u128(*z);
                s_sum = s_sum + z * item.s;
                terms.push((-z, item.r));
                let zc = -(z * item.c);
                match keys
                    .iter_mut()
                    .rev()
                    .take(KEY_MERGE_WINDOW)
                    .find(|(_, p)| *p == item.public_key)
                {
                    Some(slot) => slot.0 = slot.0 + zc,
                    None => keys.push((zc, item.public_key)),
                }
            }
            terms.extend(keys);
            terms.push((s_sum, C::generator()));
            LincombJob::new(terms)
        })
        .collect();
    let sums = C::lincomb(acc, &jobs)?;
    let failed_chunks: Vec<usize> = (0..sums.len()).filter(|i| !C::holds(&sums[*i])).collect();
    if failed_chunks.is_empty() {
        return Ok(Verdict::default());
    }
    let suspects: Vec<usize> = failed_chunks
        .iter()
        .flat_map(|c| (c * CHUNK)..((c + 1) * CHUNK).min(items.len()))
        .collect();
    let jobs: Vec<_> = suspects
        .iter()
        .map(|i| single_job::<C>(&items[*i]))
        .collect();
    let out = C::lincomb(acc, &jobs)?;
    Ok(Verdict {
        invalid: suspects
            .iter()
            .zip(&out)
            .filter(|(_, p)| !C::holds(p))
            .map(|(i, _)| *i)
            .collect(),
    })
}

/// Batch verification of `s·G = R + c·P` on secp256k1 through `acc`'s `lincomb_vartime`.
pub fn verify_batch_rlc_secp256k1(
    acc: &(impl Accelerator + ?Sized),
    items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
) -> Result<Verdict, AccelError> {
    verify_generic::<Secp>(acc, items)
}

/// Batch verification of `8·(s·B − R − c·A) = 𝒪` on edwards25519 through `acc`'s
/// `lincomb_vartime`.
pub fn verify_batch_rlc_ed25519(
    acc: &(impl Accelerator + ?Sized),
    items: &[SchnorrItem<EdScalar, EdPoint>],
) -> Result<Verdict, AccelError> {
    verify_generic::<Ed>(acc, items)
}

/// Affine form of each secp256k1 point with one shared inversion (k256's batch normalisation),
/// the identity included: k256's batch inversion cannot take a zero Z, so identities are set
/// aside and mapped to the affine identity. The serial reference backends share this.
pub fn secp256k1_normalize_batch_serial(points: &[ProjectivePoint]) -> Vec<k256::AffinePoint> {
    use k256::elliptic_curve::BatchNormalize;
    let finite: Vec<ProjectivePoint> = points
        .iter()
        .filter(|p| **p != ProjectivePoint::IDENTITY)
        .copied()
        .collect();
    let affine = if finite.is_empty() {
        Vec::new()
    } else {
        <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(finite.as_slice())
    };
    let mut affine = affine.into_iter();
    points
        .iter()
        .map(|p| match p == &ProjectivePoint::IDENTITY {
            true => k256::AffinePoint::IDENTITY,
            false => affine.next().unwrap_or(k256::AffinePoint::IDENTITY),
        })
        .collect()
}

/// The point of a 33-byte SEC1 compressed encoding, `None` when it is not one (a prefix other
/// than 2 or 3, x ≥ p, or x³ + 7 not a square). The serial reference of
/// [`crate::Accelerator::secp256k1_decompress_batch`].
pub fn secp256k1_decompress(encoding: &[u8; 33]) -> Option<ProjectivePoint> {
    use k256::elliptic_curve::sec1::FromEncodedPoint;
    if encoding[0] != 2 && encoding[0] != 3 {
        return None;
    }
    let ep = k256::EncodedPoint::from_bytes(encoding).ok()?;
    Option::<k256::AffinePoint>::from(k256::AffinePoint::from_encoded_point(&ep))
        .map(ProjectivePoint::from)
}
