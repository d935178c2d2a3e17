//! The conformance kit: generic checks every backend runs through one-line test wrappers.
//!
//! Each `check_*` function drives a backend through the port and compares every output with a
//! reference computed here directly from the curve crates' plain arithmetic (the semantics
//! backend-cpu implements), on random inputs from a fixed seed and on edge cases: the identity,
//! scalars 0, 1, 2, n−1 and n−2, repeated and opposite points, the generator inside jobs, all
//! eight points of small order on edwards25519 and mixed-order points, and batch sizes 0, 1, 7,
//! 8, 9 and 1000. A mismatch panics with the curve, op, batch size and index.
//!
//! ```text
//! #[test]
//! fn conformance() { accel_api::kit::check_all(&my_backend::Backend::new()) }
//! ```

#![allow(clippy::expect_used)] // a test kit: panicking with a message is how it reports

use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::Identity;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar as SecpScalar};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

use crate::edpoint::{AFFINE_TABLE, hex32};
use crate::{Accelerator, EdPoint, LincombJob, SchnorrItem};

/// Batch sizes every batched check runs at.
pub const BATCH_SIZES: [usize; 6] = [0, 1, 7, 8, 9, 1000];

fn rng(tag: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(0x7e55_e7a0 ^ tag)
}

fn secp_edge_scalars() -> Vec<SecpScalar> {
    vec![
        SecpScalar::ZERO,
        SecpScalar::ONE,
        SecpScalar::from(2u64),
        -SecpScalar::ONE,
        -SecpScalar::from(2u64),
        SecpScalar::from(u64::MAX),
    ]
}

fn ed_edge_scalars() -> Vec<EdScalar> {
    vec![
        EdScalar::ZERO,
        EdScalar::ONE,
        EdScalar::from(2u64),
        -EdScalar::ONE,
        -EdScalar::from(2u64),
        EdScalar::from(u64::MAX),
    ]
}

fn ed_random_scalar(r: &mut ChaCha20Rng) -> EdScalar {
    let mut wide = [0u8; 64];
    r.fill_bytes(&mut wide);
    EdScalar::from_bytes_mod_order_wide(&wide)
}

fn secp_scalars(n: usize, r: &mut ChaCha20Rng) -> Vec<SecpScalar> {
    let edge = secp_edge_scalars();
    (0..n)
        .map(|i| {
            if i % 5 == 0 {
                edge[(i / 5) % edge.len()]
            } else {
                SecpScalar::random(&mut *r)
            }
        })
        .collect()
}

fn ed_scalars(n: usize, r: &mut ChaCha20Rng) -> Vec<EdScalar> {
    let edge = ed_edge_scalars();
    (0..n)
        .map(|i| {
            if i % 5 == 0 {
                edge[(i / 5) % edge.len()]
            } else {
                ed_random_scalar(r)
            }
        })
        .collect()
}

fn secp_point(r: &mut ChaCha20Rng) -> ProjectivePoint {
    ProjectivePoint::GENERATOR * SecpScalar::random(r)
}

fn ed_point(r: &mut ChaCha20Rng) -> EdPoint {
    EdPoint::from(ED25519_BASEPOINT_POINT * ed_random_scalar(r))
}

/// The base point and the seven non-identity points of small order (all distinct) in affine
/// form, as a lane backend hands its results back; each checked against curve25519-dalek's
/// constants.
fn ed_affine_edge_points() -> Vec<EdPoint> {
    let points: Vec<EdPoint> = AFFINE_TABLE
        .iter()
        .enumerate()
        .map(|(k, (x, y))| {
            let p = EdPoint::from_affine_vartime(&hex32(x), &hex32(y))
                .expect("kit table: a point of the curve");
            let known = if k == 0 {
                p.to_edwards() == ED25519_BASEPOINT_POINT
            } else {
                EIGHT_TORSION[1..].contains(&p.to_edwards())
            };
            assert!(known, "kit table: affine point {k}");
            p
        })
        .collect();
    for (k, p) in points.iter().enumerate() {
        assert!(
            !points[..k].contains(p),
            "kit table: affine point {k} repeats"
        );
    }
    points
}

/// Points as `acc` returns them from `mul_base` (affine for lane backends), each checked against
/// curve25519-dalek: inputs in the representation real callers pass back to the port. A
/// backend that does not offer `mul_base` (a GPU without secret ops) gets dalek points;
/// [`check_ed25519_mul_base`] is where a failing `mul_base` is reported.
fn ed_backend_points(acc: &dyn Accelerator, scalars: &[EdScalar]) -> Vec<EdPoint> {
    let expect: Vec<EdwardsPoint> = scalars
        .iter()
        .map(|s| ED25519_BASEPOINT_POINT * s)
        .collect();
    match acc.ed25519_mul_base(scalars) {
        Ok(points) => {
            assert_eq!(
                points.len(),
                scalars.len(),
                "ed25519 mul_base: output length"
            );
            for (p, e) in points.iter().zip(&expect) {
                assert_eq!(p.to_edwards(), *e, "ed25519 mul_base");
            }
            points
        }
        Err(_) => expect.into_iter().map(EdPoint::from).collect(),
    }
}

/// Edge points on secp256k1 for lincomb jobs.
fn secp_edge_points(r: &mut ChaCha20Rng) -> Vec<ProjectivePoint> {
    let p = secp_point(r);
    vec![
        ProjectivePoint::IDENTITY,
        ProjectivePoint::GENERATOR,
        p,
        -p,
        p.double(),
    ]
}

/// Edge points on edwards25519: identity, basepoint, all eight small-order points, mixed-order;
/// the base point and the small-order points also in affine form, with their negations.
fn ed_edge_points(r: &mut ChaCha20Rng) -> Vec<EdPoint> {
    let p = ed_point(r);
    let mut v = vec![EdPoint::identity(), EdPoint::generator(), p, -p];
    v.extend(EIGHT_TORSION.iter().map(|t| EdPoint::from(*t)));
    v.push(EdPoint::from(p.to_edwards() + EIGHT_TORSION[1]));
    v.push(EdPoint::from(ED25519_BASEPOINT_POINT + EIGHT_TORSION[4]));
    let affine = ed_affine_edge_points();
    v.extend(affine.iter().map(|a| -*a));
    v.extend(affine);
    v
}

/// `mul_base` on secp256k1 matches `G * k`.
pub fn check_secp256k1_mul_base(acc: &dyn Accelerator) {
    let mut r = rng(1);
    for n in BATCH_SIZES {
        let scalars = secp_scalars(n, &mut r);
        let out = acc
            .secp256k1_mul_base(&scalars)
            .expect("secp256k1 mul_base failed");
        assert_eq!(
            out.len(),
            n,
            "secp256k1 mul_base: wrong output length for batch {n}"
        );
        for (i, (s, p)) in scalars.iter().zip(&out).enumerate() {
            assert_eq!(
                *p,
                ProjectivePoint::GENERATOR * s,
                "secp256k1 mul_base: batch {n}, item {i}"
            );
        }
    }
}

/// `mul_base` on edwards25519 matches `B * k` computed with variable-base multiplication.
pub fn check_ed25519_mul_base(acc: &dyn Accelerator) {
    let mut r = rng(2);
    for n in BATCH_SIZES {
        let scalars = ed_scalars(n, &mut r);
        let out = acc
            .ed25519_mul_base(&scalars)
            .expect("ed25519 mul_base failed");
        assert_eq!(
            out.len(),
            n,
            "ed25519 mul_base: wrong output length for batch {n}"
        );
        for (i, (s, p)) in scalars.iter().zip(&out).enumerate() {
            let expect = ED25519_BASEPOINT_POINT * s;
            assert_eq!(
                p.compress(),
                expect.compress(),
                "ed25519 mul_base: batch {n}, item {i}"
            );
            assert_eq!(
                p.to_edwards(),
                expect,
                "ed25519 mul_base: batch {n}, item {i}"
            );
        }
    }
}

/// Term counts used for lincomb jobs, cycled over the batch.
const TERM_COUNTS: [usize; 7] = [0, 1, 2, 3, 5, 2, 64];

/// `lincomb_vartime` on secp256k1 matches the naive sum, on random and edge inputs.
pub fn check_secp256k1_lincomb_vartime(acc: &dyn Accelerator) {
    let mut r = rng(3);
    let edge = secp_edge_points(&mut r);
    for n in BATCH_SIZES {
        let jobs: Vec<LincombJob<SecpScalar, ProjectivePoint>> = (0..n)
            .map(|j| {
                let k = TERM_COUNTS[j % TERM_COUNTS.len()];
                let scalars = secp_scalars(k, &mut r);
                LincombJob::new(
                    scalars
                        .into_iter()
                        .enumerate()
                        .map(|(t, s)| {
                            let p = if (j + t) % 3 == 0 {
                                edge[(j + t) % edge.len()]
                            } else {
                                secp_point(&mut r)
                            };
                            (s, p)
                        })
                        .collect(),
                )
            })
            .collect();
        let out = acc
            .secp256k1_lincomb_vartime(&jobs)
            .expect("secp256k1 lincomb failed");
        assert_eq!(
            out.len(),
            n,
            "secp256k1 lincomb: wrong output length for batch {n}"
        );
        for (i, (job, p)) in jobs.iter().zip(&out).enumerate() {
            let expect = job
                .terms
                .iter()
                .fold(ProjectivePoint::IDENTITY, |a, (s, q)| a + *q * s);
            assert_eq!(
                *p,
                expect,
                "secp256k1 lincomb: batch {n}, job {i} ({} terms)",
                job.terms.len()
            );
        }
    }
}

/// The backend's `ed25519_lincomb_vartime` of `jobs`, one result per job.
fn ed_lincomb_all(acc: &dyn Accelerator, jobs: &[LincombJob<EdScalar, EdPoint>]) -> Vec<EdPoint> {
    let out = acc
        .ed25519_lincomb_vartime(jobs)
        .expect("ed25519 lincomb failed");
    assert_eq!(
        out.len(),
        jobs.len(),
        "ed25519 lincomb: wrong output length for batch {}",
        jobs.len()
    );
    out
}

/// Runs `jobs` through the backend and compares each result with the naive sum.
fn check_ed_lincomb_sums(
    acc: &dyn Accelerator,
    jobs: &[LincombJob<EdScalar, EdPoint>],
    what: &str,
) {
    let out = ed_lincomb_all(acc, jobs);
    for (i, (job, p)) in jobs.iter().zip(&out).enumerate() {
        let expect = job
            .terms
            .iter()
            .fold(EdwardsPoint::identity(), |a, (s, q)| a + q.to_edwards() * s);
        assert_eq!(
            p.to_edwards(),
            expect,
            "ed25519 lincomb: {what}, job {i} ({} terms)",
            job.terms.len()
        );
    }
}

/// `lincomb_vartime` on edwards25519 matches the naive sum, small-order points included.
pub fn check_ed25519_lincomb_vartime(acc: &dyn Accelerator) {
    let mut r = rng(4);
    let edge = ed_edge_points(&mut r);
    let returned: Vec<EdScalar> = (0..64).map(|_| ed_random_scalar(&mut r)).collect();
    let returned = ed_backend_points(acc, &returned);
    for n in BATCH_SIZES {
        let jobs: Vec<LincombJob<EdScalar, EdPoint>> = (0..n)
            .map(|j| {
                let k = TERM_COUNTS[j % TERM_COUNTS.len()];
                let scalars = ed_scalars(k, &mut r);
                LincombJob::new(
                    scalars
                        .into_iter()
                        .enumerate()
                        .map(|(t, s)| {
                            let p = match (j + t) % 3 {
                                0 => edge[(5 * j + t) % edge.len()],
                                1 => returned[(j * 7 + t) % returned.len()],
                                _ => ed_point(&mut r),
                            };
                            (s, p)
                        })
                        .collect(),
                )
            })
            .collect();
        check_ed_lincomb_sums(acc, &jobs, &format!("batch {n}"));
    }
    // The subgroup check of received points (`[ℓ−1]·Q + Q = 𝒪` exactly when Q has no
    // torsion component) relies on exact multiples of points with torsion: every mixed point
    // P + T, every small-order T and P itself, in the job `(ℓ−1, Q), (1, Q)`, in one batch.
    let p = ed_point(&mut r).to_edwards();
    let mut points: Vec<EdwardsPoint> = EIGHT_TORSION.iter().map(|t| p + t).collect();
    points.extend(EIGHT_TORSION);
    let jobs: Vec<LincombJob<EdScalar, EdPoint>> = points
        .iter()
        .map(|q| {
            let q = EdPoint::from(*q);
            LincombJob::new(vec![(-EdScalar::ONE, q), (EdScalar::ONE, q)])
        })
        .collect();
    let out = ed_lincomb_all(acc, &jobs);
    for (k, (q, got)) in points.iter().zip(&out).enumerate() {
        let torsion_free = k == 0 || k == 8;
        assert_eq!(
            got.to_edwards(),
            q * -EdScalar::ONE + q,
            "ed25519 lincomb: (ℓ−1)·Q + Q for point {k} (with torsion)"
        );
        assert_eq!(
            got.is_identity(),
            torsion_free,
            "ed25519 lincomb: (ℓ−1)·Q + Q = 𝒪 must hold exactly for torsion-free Q (point {k})"
        );
    }
    // Terms whose scalar is 1 (a group commitment's hiding commitments), which a backend may
    // add without a multiplication: jobs of only such terms, mixed with others (first, last,
    // between), several per job, on every kind of point, the identity included, in batches
    // that fill one lane group and spill into the next.
    let one = EdScalar::ONE;
    for n in [1usize, 9, 17] {
        let jobs: Vec<LincombJob<EdScalar, EdPoint>> = (0..n)
            .map(|j| {
                let mut pts = [
                    edge[j % edge.len()],
                    returned[j % returned.len()],
                    ed_point(&mut r),
                    EdPoint::identity(),
                ];
                pts.rotate_left(j % 4);
                let s = ed_random_scalar(&mut r);
                LincombJob::new(match j % 5 {
                    0 => vec![(one, pts[0])],
                    1 => vec![(one, pts[0]), (one, pts[1]), (one, pts[2])],
                    2 => vec![(one, pts[0]), (s, pts[1]), (one, pts[2]), (s, pts[3])],
                    3 => vec![(s, pts[0]), (one, pts[1])],
                    _ => (0..12)
                        .map(|t| (if t % 3 == 0 { one } else { s + one }, pts[t % 4]))
                        .collect(),
                })
            })
            .collect();
        check_ed_lincomb_sums(acc, &jobs, &format!("terms with scalar 1, batch {n}"));
    }
}

/// Which items of a verification batch are made invalid.
fn bad(i: usize, n: usize) -> bool {
    n > 0 && (i == n / 2 || (n >= 9 && i == n - 1) || (n >= 1000 && i % 97 == 3))
}

/// `verify_batch_vartime` on secp256k1 accepts exactly the valid equations and names the rest.
pub fn check_secp256k1_verify_batch_vartime(acc: &dyn Accelerator) {
    let mut r = rng(5);
    for n in BATCH_SIZES {
        for with_bad in [false, true] {
            let mut expect = Vec::new();
            let items: Vec<_> = (0..n)
                .map(|i| {
                    let x = SecpScalar::random(&mut r);
                    let k = SecpScalar::random(&mut r);
                    let c = SecpScalar::random(&mut r);
                    let public_key = ProjectivePoint::GENERATOR * x;
                    let r_point = ProjectivePoint::GENERATOR * k;
                    let mut s = k + c * x;
                    if with_bad && bad(i, n) {
                        expect.push(i);
                        s += SecpScalar::ONE;
                    }
                    SchnorrItem {
                        r: r_point,
                        s,
                        c,
                        public_key,
                    }
                })
                .collect();
            let v = acc
                .secp256k1_verify_batch_vartime(&items)
                .expect("secp256k1 verify failed");
            assert_eq!(
                v.invalid, expect,
                "secp256k1 verify_batch: batch {n}, bad={with_bad}"
            );
        }
    }
    // Edge: identity public key with s = k (c arbitrary) is a true equation.
    let k = SecpScalar::from(5u64);
    let item = SchnorrItem {
        r: ProjectivePoint::GENERATOR * k,
        s: k,
        c: SecpScalar::ONE,
        public_key: ProjectivePoint::IDENTITY,
    };
    let v = acc
        .secp256k1_verify_batch_vartime(&[item.clone(), item])
        .expect("secp256k1 verify failed");
    assert!(v.all_valid(), "secp256k1 verify_batch: identity public key");
}

/// `verify_batch_vartime` on edwards25519: the cofactored equation, so torsion added to `R` or
/// `A` in an otherwise valid item keeps it valid, while a wrong `s` is named.
pub fn check_ed25519_verify_batch_vartime(acc: &dyn Accelerator) {
    let mut r = rng(6);
    let torsion = ed_affine_edge_points();
    for n in BATCH_SIZES {
        for with_bad in [false, true] {
            let mut expect = Vec::new();
            let ks: Vec<EdScalar> = (0..n).map(|_| ed_random_scalar(&mut r)).collect();
            // R as the backend's own mul_base returns it (affine on lane backends) for every
            // other item.
            let returned = ed_backend_points(acc, &ks);
            let items: Vec<_> = (0..n)
                .map(|i| {
                    let x = ed_random_scalar(&mut r);
                    let k = ks[i];
                    let c = ed_random_scalar(&mut r);
                    let mut public_key = EdPoint::from(ED25519_BASEPOINT_POINT * x);
                    let mut r_point = if i % 2 == 0 {
                        returned[i]
                    } else {
                        EdPoint::from(ED25519_BASEPOINT_POINT * k)
                    };
                    if i % 4 == 1 {
                        r_point = r_point + EdPoint::from(EIGHT_TORSION[i % 8]);
                    }
                    if i % 6 == 2 {
                        public_key = public_key + torsion[1 + (i / 3) % 7];
                    }
                    let mut s = k + c * x;
                    if with_bad && bad(i, n) {
                        expect.push(i);
                        s += EdScalar::ONE;
                    }
                    SchnorrItem {
                        r: r_point,
                        s,
                        c,
                        public_key,
                    }
                })
                .collect();
            let v = acc
                .ed25519_verify_batch_vartime(&items)
                .expect("ed25519 verify failed");
            assert_eq!(
                v.invalid, expect,
                "ed25519 verify_batch: batch {n}, bad={with_bad}"
            );
        }
    }
}

/// Batch normalisation matches one-at-a-time conversion, identity included.
pub fn check_secp256k1_normalize_batch(acc: &dyn Accelerator) {
    let mut r = rng(7);
    for n in BATCH_SIZES {
        let pts: Vec<_> = (0..n)
            .map(|i| {
                if i % 4 == 3 {
                    ProjectivePoint::IDENTITY
                } else {
                    secp_point(&mut r)
                }
            })
            .collect();
        let out = acc
            .secp256k1_normalize_batch(&pts)
            .expect("secp256k1 normalize failed");
        assert_eq!(
            out.len(),
            n,
            "secp256k1 normalize: wrong output length for batch {n}"
        );
        for (i, (p, a)) in pts.iter().zip(&out).enumerate() {
            assert_eq!(
                p.to_affine(),
                *a,
                "secp256k1 normalize: batch {n}, item {i}"
            );
        }
    }
}

/// Batch compression matches one-at-a-time compression, identity and torsion included.
pub fn check_ed25519_compress_batch(acc: &dyn Accelerator) {
    let mut r = rng(8);
    let affine = ed_affine_edge_points();
    for n in BATCH_SIZES {
        let pts: Vec<EdPoint> = (0..n)
            .map(|i| match i % 5 {
                3 => EdPoint::identity(),
                4 => EdPoint::from(EIGHT_TORSION[i % 8]),
                2 => affine[i % affine.len()],
                _ => ed_point(&mut r),
            })
            .collect();
        let out = acc
            .ed25519_compress_batch(&pts)
            .expect("ed25519 compress failed");
        assert_eq!(
            out.len(),
            n,
            "ed25519 compress: wrong output length for batch {n}"
        );
        for (i, (p, c)) in pts.iter().zip(&out).enumerate() {
            assert_eq!(
                p.to_edwards().compress(),
                *c,
                "ed25519 compress: batch {n}, item {i}"
            );
        }
    }
}

/// Encodings that are not canonical edwards25519 points or sit on the edge of the rules: y
/// from p to 2²⁵⁵ − 1 with either sign (non-canonical), y = ±1 with the sign bit set
/// (negative zero), y = 0 (the points of order 4) and y = 2 (x² not a square).
fn ed_edge_encodings() -> Vec<[u8; 32]> {
    let mut out = Vec::new();
    for k in 0..19u8 {
        // y = p + k.
        let mut e = [0xff; 32];
        e[0] = 0xed + k;
        e[31] = 0x7f;
        out.push(e);
        e[31] = 0xff;
        out.push(e);
    }
    let mut one = [0u8; 32];
    one[0] = 1;
    let mut minus_one = [0xff; 32];
    minus_one[0] = 0xec;
    minus_one[31] = 0x7f;
    for mut e in [one, minus_one, [0; 32], {
        let mut t = [0; 32];
        t[0] = 2;
        t
    }] {
        out.push(e);
        e[31] |= 0x80;
        out.push(e);
    }
    out
}

/// Batch decompression matches RFC 8032 §5.1.3 decoding one at a time
/// ([`EdPoint::decompress_vartime`]): random points, the eight points of small order,
/// mixed-order points, random bytes (about half are not points), non-canonical encodings and
/// negative zero. A decoded point re-encodes to its input.
pub fn check_ed25519_decompress_batch(acc: &dyn Accelerator) {
    let mut r = rng(10);
    let edge = ed_edge_encodings();
    for n in BATCH_SIZES {
        let encs: Vec<[u8; 32]> = (0..n)
            .map(|i| match i % 6 {
                1 => EIGHT_TORSION[i % 8].compress().to_bytes(),
                2 => (ed_point(&mut r).to_edwards() + EIGHT_TORSION[1 + i % 7])
                    .compress()
                    .to_bytes(),
                3 => {
                    let mut b = [0u8; 32];
                    r.fill_bytes(&mut b);
                    b
                }
                4 => edge[(i / 6) % edge.len()],
                _ => ed_point(&mut r).compress().to_bytes(),
            })
            .collect();
        let out = acc
            .ed25519_decompress_batch(&encs)
            .expect("ed25519 decompress failed");
        assert_eq!(
            out.len(),
            n,
            "ed25519 decompress: wrong output length for batch {n}"
        );
        for (i, (e, got)) in encs.iter().zip(&out).enumerate() {
            let want = EdPoint::decompress_vartime(e);
            assert_eq!(
                got.is_some(),
                want.is_some(),
                "ed25519 decompress: batch {n}, item {i}: accepted differently"
            );
            if let (Some(g), Some(w)) = (got, want) {
                assert!(
                    *g == w,
                    "ed25519 decompress: batch {n}, item {i}: wrong point"
                );
                assert_eq!(
                    g.compress().to_bytes(),
                    *e,
                    "ed25519 decompress: batch {n}, item {i}: does not re-encode"
                );
            }
        }
    }
    // Every edge encoding on its own and all of them in one batch.
    let all = acc
        .ed25519_decompress_batch(&edge)
        .expect("ed25519 decompress failed");
    for (i, (e, got)) in edge.iter().zip(&all).enumerate() {
        let want = EdPoint::decompress_vartime(e);
        assert_eq!(
            got.map(|p| p.compress().to_bytes()),
            want.map(|p| p.compress().to_bytes()),
            "ed25519 decompress: edge encoding {i}"
        );
    }
}

/// Batch decompression matches SEC1 decoding one at a time ([`crate::secp256k1_decompress`]):
/// random points of both parities, random x (about half have no point), x ≥ p and prefixes
/// other than 2 and 3.
pub fn check_secp256k1_decompress_batch(acc: &dyn Accelerator) {
    use k256::elliptic_curve::sec1::ToEncodedPoint;
    let mut r = rng(11);
    for n in BATCH_SIZES {
        let encs: Vec<[u8; 33]> = (0..n)
            .map(|i| {
                let mut e = [0u8; 33];
                match i % 5 {
                    1 => {
                        e[0] = 2 + (i % 2) as u8;
                        r.fill_bytes(&mut e[1..]);
                    }
                    2 => {
                        // x = p + small, or all ones.
                        e[0] = 2;
                        e[1..].fill(0xff);
                        e[32] = 0x2f - (i % 3) as u8 * 0x10;
                    }
                    3 => {
                        e.copy_from_slice(
                            secp_point(&mut r)
                                .to_affine()
                                .to_encoded_point(true)
                                .as_bytes(),
                        );
                        e[0] = [0, 1, 4, 6][i % 4];
                    }
                    _ => e.copy_from_slice(
                        secp_point(&mut r)
                            .to_affine()
                            .to_encoded_point(true)
                            .as_bytes(),
                    ),
                }
                e
            })
            .collect();
        let out = acc
            .secp256k1_decompress_batch(&encs)
            .expect("secp256k1 decompress failed");
        assert_eq!(
            out.len(),
            n,
            "secp256k1 decompress: wrong output length for batch {n}"
        );
        for (i, (e, got)) in encs.iter().zip(&out).enumerate() {
            assert_eq!(
                *got,
                crate::secp256k1_decompress(e),
                "secp256k1 decompress: batch {n}, item {i}"
            );
        }
    }
}

/// The backend's capabilities are consistent: it names itself and lists every op it serves.
pub fn check_capabilities(acc: &dyn Accelerator) {
    let caps = acc.capabilities();
    assert!(
        caps.device_id.starts_with(&format!("{}:", caps.backend)),
        "device_id `{}` does not start with `{}:`",
        caps.device_id,
        caps.backend
    );
    assert!(
        caps.device_id.len() > caps.backend.as_str().len() + 1
            && !caps.device_id.contains(char::is_whitespace),
        "device_id `{}` must name the hardware path, without whitespace",
        caps.device_id
    );
    assert!(caps.lanes >= 1, "lanes must be at least 1");
    for (curve, op) in crate::Capabilities::all_ops() {
        assert!(
            caps.supports(curve, op),
            "{} does not list {op} on {curve}",
            caps.backend
        );
    }
}

/// Every check in the kit.
pub fn check_all(acc: &dyn Accelerator) {
    check_capabilities(acc);
    check_secp256k1_mul_base(acc);
    check_ed25519_mul_base(acc);
    check_secp256k1_lincomb_vartime(acc);
    check_ed25519_lincomb_vartime(acc);
    check_secp256k1_verify_batch_vartime(acc);
    check_ed25519_verify_batch_vartime(acc);
    check_secp256k1_normalize_batch(acc);
    check_ed25519_compress_batch(acc);
    check_secp256k1_decompress_batch(acc);
    check_ed25519_decompress_batch(acc);
}
