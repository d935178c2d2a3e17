//! Large `lincomb_vartime` jobs (the Pippenger kernel from 256 terms, 8-term sub-jobs below)
//! against a plain sum of k256 scalar multiplications, on every path this host has: random
//! jobs of 1 to 9,000 terms with identity points, zero scalars, repeated points and the
//! scalars ±1, n − 1 mixed in.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use accel_api::{Accelerator, LincombJob};
use backend_simd::{Path, SimdBackend};
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
