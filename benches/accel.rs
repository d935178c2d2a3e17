//! Per-item cost of every accelerator op on backend-cpu (one thread and rayon) and on
//! backend-simd's best path at batch sizes 1, 8, 64 and 1024,
//! with the raw curve-crate calls beside them for reference.
//!
//! `cargo bench -p tessera-benches --bench accel`

use std::hint::black_box;

use accel_api::{Accelerator, EdPoint, LincombJob, SchnorrItem};
use backend_cpu::CpuBackend;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::elliptic_curve::Field;
use k256::elliptic_curve::ops::MulByGenerator;
use k256::{ProjectivePoint, Scalar as SecpScalar};
use rand_core::{OsRng, RngCore};

const SIZES: [usize; 4] = [1, 8, 64, 1024];

fn ed_scalar() -> EdScalar {
    let mut wide = [0u8; 64];
    OsRng.fill_bytes(&mut wide);
    EdScalar::from_bytes_mod_order_wide(&wide)
}

fn secp_inputs(n: usize) -> (Vec<SecpScalar>, Vec<ProjectivePoint>) {
    let s: Vec<_> = (0..n).map(|_| SecpScalar::random(&mut OsRng)).collect();
    let p = s.iter().map(ProjectivePoint::mul_by_generator).collect();
    (s, p)
}

fn ed_inputs(n: usize) -> (Vec<EdScalar>, Vec<EdPoint>) {
    let s: Vec<_> = (0..n).map(|_| ed_scalar()).collect();
    let p = s
        .iter()
        .map(|k| EdPoint::from(EdwardsPoint::mul_base(k)))
        .collect();
    (s, p)
}

fn bench_backend(c: &mut Criterion, name: &str, acc: &dyn Accelerator) {
    let mut g = c.benchmark_group(format!("{name}/secp256k1"));
    for n in SIZES {
        let (s, p) = secp_inputs(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("mul_base", n), &s, |b, s| {
            b.iter(|| acc.secp256k1_mul_base(black_box(s)))
        });
        let jobs: Vec<_> = (0..n)
            .map(|i| LincombJob::new(vec![(s[i], p[i]), (s[(i + 1) % n], p[(i + 1) % n])]))
            .collect();
        g.bench_with_input(
            BenchmarkId::new("lincomb_vartime_2term", n),
            &jobs,
            |b, j| b.iter(|| acc.secp256k1_lincomb_vartime(black_box(j))),
        );
        let items: Vec<_> = (0..n)
            .map(|i| {
                let c = SecpScalar::random(&mut OsRng);
                let k = SecpScalar::random(&mut OsRng);
                SchnorrItem {
                    r: ProjectivePoint::mul_by_generator(&k),
                    s: k + c * s[i],
                    c,
                    public_key: p[i],
                }
            })
            .collect();
        g.bench_with_input(
            BenchmarkId::new("verify_batch_vartime", n),
            &items,
            |b, it| b.iter(|| acc.secp256k1_verify_batch_vartime(black_box(it))),
        );
        g.bench_with_input(BenchmarkId::new("normalize_batch", n), &p, |b, p| {
            b.iter(|| acc.secp256k1_normalize_batch(black_box(p)))
        });
    }
    g.finish();

    let mut g = c.benchmark_group(format!("{name}/ed25519"));
    for n in SIZES {
        let (s, p) = ed_inputs(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::new("mul_base", n), &s, |b, s| {
            b.iter(|| acc.ed25519_mul_base(black_box(s)))
        });
        let jobs: Vec<_> = (0..n)
            .map(|i| LincombJob::new(vec![(s[i], p[i]), (s[(i + 1) % n], p[(i + 1) % n])]))
            .collect();
        g.bench_with_input(
            BenchmarkId::new("lincomb_vartime_2term", n),
            &jobs,
            |b, j| b.iter(|| acc.ed25519_lincomb_vartime(black_box(j))),
        );
        let items: Vec<_> = (0..n)
            .map(|i| {
                let c = ed_scalar();
                let k = ed_scalar();
                SchnorrItem {
                    r: EdPoint::from(EdwardsPoint::mul_base(&k)),
                    s: k + c * s[i],
                    c,
                    public_key: p[i],
                }
            })
            .collect();
        g.bench_with_input(
            BenchmarkId::new("verify_batch_vartime", n),
            &items,
            |b, it| b.iter(|| acc.ed25519_verify_batch_vartime(black_box(it))),
        );
        g.bench_with_input(BenchmarkId::new("compress_batch", n), &p, |b, p| {
            b.iter(|| acc.ed25519_compress_batch(black_box(p)))
        });
    }
    g.finish();
}

/// The raw single-item curve-crate calls, for scale.
fn bench_raw(c: &mut Criterion) {
    let mut g = c.benchmark_group("raw");
    g.throughput(Throughput::Elements(1));
    let k = SecpScalar::random(&mut OsRng);
    let p = ProjectivePoint::mul_by_generator(&SecpScalar::random(&mut OsRng));
    g.bench_function("k256_mul_by_generator", |b| {
        b.iter(|| ProjectivePoint::mul_by_generator(black_box(&k)))
    });
    g.bench_function("k256_lincomb_2term", |b| {
        b.iter(|| {
            use k256::elliptic_curve::ops::LinearCombination;
            ProjectivePoint::lincomb(black_box(&p), &k, &ProjectivePoint::GENERATOR, &k)
        })
    });
    let e = ed_scalar();
    let q = EdwardsPoint::mul_base(&ed_scalar());
    g.bench_function("dalek_mul_base", |b| {
        b.iter(|| EdwardsPoint::mul_base(black_box(&e)))
    });
    g.bench_function("dalek_vartime_multiscalar_mul_2term", |b| {
        use curve25519_dalek::traits::VartimeMultiscalarMul;
        b.iter(|| {
            EdwardsPoint::vartime_multiscalar_mul([e, e], [black_box(q), ED25519_BASEPOINT_POINT])
        })
    });
    g.finish();
}

fn benches(c: &mut Criterion) {
    bench_raw(c);
    bench_backend(c, "cpu-1thread", &CpuBackend::single_threaded());
    bench_backend(c, "cpu", &CpuBackend::new());
    if let Ok(simd) = backend_simd::SimdBackend::new() {
        bench_backend(c, "simd", &simd);
    }
}

criterion_group!(accel, benches);
criterion_main!(accel);
