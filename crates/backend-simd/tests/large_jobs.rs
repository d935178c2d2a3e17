//! Large `lincomb_vartime` jobs against a plain sum of scalar multiplications, on every path
//! this host has. secp256k1: the Pippenger kernel from 256 terms, 8-term sub-jobs below, jobs
//! of 1 to 9,000 terms. Ed25519: the lanes (sub-jobs spread over the lanes) and
//! curve25519-dalek, each forced and as `Auto` picks them, alone and batched. Identity and
//! small-order points, points in affine form (as the lanes return them), zero scalars,
//! repeated points and the scalars ±1, n − 1 mixed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use accel_api::{Accelerator, EdPoint, LincombJob};
use backend_simd::{EdLincomb, Path, SimdBackend};
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::Identity;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

fn job(r: &mut ChaCha20Rng, n: usize) -> LincombJob<Scalar, ProjectivePoint> {
    let base = ProjectivePoint::GENERATOR * Scalar::random(&mut *r);
    let terms = (0..n)
        .map(|i| {
            let s = match r.next_u32() % 16 {
                0 => Scalar::ZERO,
                1 => Scalar::ONE,
                2 => -Scalar::ONE,
                3 => -Scalar::from(2u64),
                _ => Scalar::random(&mut *r),
            };
            let p = match i % 29 {
                0 => ProjectivePoint::IDENTITY,
                1 => base,
                2 => -base,
                _ => ProjectivePoint::GENERATOR * Scalar::random(&mut *r),
            };
            (s, p)
        })
        .collect();
    LincombJob::new(terms)
}

fn reference(j: &LincombJob<Scalar, ProjectivePoint>) -> ProjectivePoint {
    j.terms
        .iter()
        .fold(ProjectivePoint::IDENTITY, |acc, (s, p)| acc + *p * s)
}

#[test]
fn large_jobs_match_k256_on_every_path() {
    let mut r = ChaCha20Rng::seed_from_u64(300);
    let jobs: Vec<_> = [1usize, 2, 9, 64, 255, 256, 300, 1500, 9000]
        .into_iter()
        .map(|n| job(&mut r, n))
        .collect();
    let want: Vec<ProjectivePoint> = jobs.iter().map(reference).collect();
    // A job whose terms cancel exactly sums to the identity.
    let mut cancel = job(&mut r, 400);
    let negated: Vec<_> = cancel.terms.iter().map(|(s, p)| (-*s, *p)).collect();
    cancel.terms.extend(negated);
    let mut ran = 0;
    for path in [Path::Ifma, Path::Avx2, Path::Portable] {
        let Ok(b) = SimdBackend::with_path(path) else {
            eprintln!("skipping the {path} path: not on this CPU");
            continue;
        };
        let got = b.secp256k1_lincomb_vartime(&jobs).unwrap();
        for (k, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{path}: job {k} ({} terms)", jobs[k].terms.len());
        }
        let zero = b
            .secp256k1_lincomb_vartime(std::slice::from_ref(&cancel))
            .unwrap();
        assert_eq!(zero, vec![ProjectivePoint::IDENTITY], "{path}");
        ran += 1;
    }
    assert!(ran >= 1, "the portable path always runs");
}

fn ed_scalar(r: &mut ChaCha20Rng) -> EdScalar {
    let mut wide = [0u8; 64];
    r.fill_bytes(&mut wide);
    EdScalar::from_bytes_mod_order_wide(&wide)
}

/// A point as the lanes return it (affine coordinates).
fn ed_affine(r: &mut ChaCha20Rng) -> EdPoint {
    let lanes = SimdBackend::with_path(Path::Portable).unwrap();
    let p = lanes.ed25519_mul_base(&[ed_scalar(r)]).unwrap()[0];
    assert!(p.affine_bytes().is_some());
    p
}

fn ed_job(r: &mut ChaCha20Rng, n: usize) -> LincombJob<EdScalar, EdPoint> {
    let base = ED25519_BASEPOINT_POINT * ed_scalar(r);
    let affine = ed_affine(r);
    let terms = (0..n)
        .map(|i| {
            let s = match r.next_u32() % 16 {
                0 => EdScalar::ZERO,
                1 => EdScalar::ONE,
                2 => -EdScalar::ONE,
                _ => ed_scalar(r),
            };
            let p = match i % 13 {
                0 => EdPoint::identity(),
                1 => EdPoint::from(base),
                2 => EdPoint::from(-base),
                3 => EdPoint::from(EIGHT_TORSION[i % 8]),
                4 => EdPoint::generator(),
                5 => EdPoint::from(ED25519_BASEPOINT_POINT * ed_scalar(r) + EIGHT_TORSION[1]),
                6 => affine,
                7 => -affine,
                8 => ed_affine(r),
                _ => EdPoint::from(ED25519_BASEPOINT_POINT * ed_scalar(r)),
            };
            (s, p)
        })
        .collect();
    LincombJob::new(terms)
}

fn ed_reference(j: &LincombJob<EdScalar, EdPoint>) -> EdPoint {
    EdPoint::from(
        j.terms
            .iter()
            .fold(EdwardsPoint::identity(), |acc, (s, p)| {
                acc + p.to_edwards() * s
            }),
    )
}

#[test]
fn ed25519_jobs_match_dalek_on_every_path_and_choice() {
    let mut r = ChaCha20Rng::seed_from_u64(301);
    let jobs: Vec<_> = [0usize, 1, 2, 9, 17, 64, 129, 255, 256, 300]
        .into_iter()
        .map(|n| ed_job(&mut r, n))
        .collect();
    let want: Vec<EdPoint> = jobs.iter().map(ed_reference).collect();
    // Terms that cancel exactly (prime-order points only: scalars are taken mod ℓ, so
    // s·T + (−s)·T = ℓ·T is not the identity for a torsion point T).
    let mut cancel = ed_job(&mut r, 40);
    cancel
        .terms
        .retain(|(_, p)| p.to_edwards().is_torsion_free());
    let negated: Vec<_> = cancel.terms.iter().map(|(s, p)| (-*s, *p)).collect();
    cancel.terms.extend(negated);
    let mut ran = 0;
    for path in [Path::Ifma, Path::Avx2, Path::Portable] {
        let Ok(b) = SimdBackend::with_path(path) else {
            eprintln!("skipping the {path} path: not on this CPU");
            continue;
        };
        for choice in [EdLincomb::Auto, EdLincomb::Lanes, EdLincomb::Dalek] {
            let b = b.clone().with_ed_lincomb(choice);
            // The whole batch at once, then each job alone (a lone job is spread over the
            // lanes in smaller sub-jobs).
            let got = b.ed25519_lincomb_vartime(&jobs).unwrap();
            assert_eq!(got, want, "{path} {choice:?}: batch");
            for (k, j) in jobs.iter().enumerate() {
                let got = b.ed25519_lincomb_vartime(std::slice::from_ref(j)).unwrap();
                assert_eq!(got, vec![want[k]], "{path} {choice:?}: job {k} alone");
            }
            let zero = b
                .ed25519_lincomb_vartime(std::slice::from_ref(&cancel))
                .unwrap();
            assert_eq!(zero, vec![EdPoint::identity()], "{path} {choice:?}");
        }
        ran += 1;
    }
    assert!(ran >= 1, "the portable path always runs");
}
