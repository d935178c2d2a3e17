//! Per-item cost of the GPU backend's ops by batch size, for both field variants (13-bit
//! limbs in u32; 26-bit limbs with u64 products where the adapter has SHADER_INT64), beside
//! backend-cpu on all cores.
//!
//! `cargo bench -p tessera-benches --bench gpu` (sizes 64, 1024 and 16384; set
//! `TESSERA_GPU_BENCH_SIZES=64,1024` to choose others). Prints a note and measures nothing when
//! the host has no GPU adapter. Not part of CI.

use std::hint::black_box;
use std::time::Duration;

use accel_api::{Accelerator, EdPoint, LincombJob};
use backend_cpu::CpuBackend;
use backend_gpu::{GpuBackend, GpuConfig, GpuField};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::elliptic_curve::Field;
use k256::{ProjectivePoint, Scalar as SecpScalar};
use rand_core::{OsRng, RngCore};

fn sizes() -> Vec<usize> {
    std::env::var("TESSERA_GPU_BENCH_SIZES")
        .ok()
        .map(|v| v.split(',').filter_map(|s| s.trim().parse().ok()).collect())
        .unwrap_or_else(|| vec![64, 1024, 16384])
}

fn ed_scalar() -> EdScalar {
    let mut wide = [0u8; 64];
    OsRng.fill_bytes(&mut wide);
    EdScalar::from_bytes_mod_order_wide(&wide)
}

fn bench(c: &mut Criterion) {
    let mut gpus = Vec::new();
    for (name, field) in [("gpu-u32", GpuField::U32), ("gpu-u64", GpuField::U64)] {
        match GpuBackend::new(GpuConfig {
            secret_ops: true,
            field,
            ..GpuConfig::default()
        }) {
            Ok(g) => {
                eprintln!("{name}: {}", g.capabilities().device);
                gpus.push((name, g));
            }
            Err(e) => eprintln!("{name}: not measured: {e}"),
        }
    }
    if gpus.is_empty() {
        eprintln!("no GPU backend on this host, nothing measured");
        return;
    }
    let cpu = CpuBackend::new();
    let mut backends: Vec<(&str, &dyn Accelerator)> = gpus
        .iter()
        .map(|(n, g)| (*n, g as &dyn Accelerator))
        .collect();
    backends.push(("cpu", &cpu));
    for n in sizes() {
        let s: Vec<SecpScalar> = (0..n).map(|_| SecpScalar::random(&mut OsRng)).collect();
        let p: Vec<ProjectivePoint> = s.iter().map(|k| ProjectivePoint::GENERATOR * k).collect();
        let jobs: Vec<_> = (0..n)
            .map(|i| LincombJob::new(vec![(s[i], p[i]), (s[(i + 1) % n], p[(i + 1) % n])]))
            .collect();
        let es: Vec<EdScalar> = (0..n).map(|_| ed_scalar()).collect();
        let ep: Vec<EdPoint> = es
            .iter()
            .map(|k| EdPoint::from(EdwardsPoint::mul_base(k)))
            .collect();
        let ejobs: Vec<_> = (0..n)
            .map(|i| LincombJob::new(vec![(es[i], ep[i]), (es[(i + 1) % n], ep[(i + 1) % n])]))
            .collect();
        for &(name, acc) in &backends {
            let mut g = c.benchmark_group(format!("{name}/batch"));
            g.sample_size(10);
            g.warm_up_time(Duration::from_millis(100));
            g.measurement_time(Duration::from_secs(2));
            g.throughput(Throughput::Elements(n as u64));
            g.bench_with_input(BenchmarkId::new("secp256k1_mul_base", n), &s, |b, s| {
                b.iter(|| acc.secp256k1_mul_base(black_box(s)))
            });
            g.bench_with_input(
                BenchmarkId::new("secp256k1_lincomb_2term", n),
                &jobs,
                |b, j| b.iter(|| acc.secp256k1_lincomb_vartime(black_box(j))),
            );
            g.bench_with_input(BenchmarkId::new("ed25519_mul_base", n), &es, |b, s| {
                b.iter(|| acc.ed25519_mul_base(black_box(s)))
            });
            g.bench_with_input(
                BenchmarkId::new("ed25519_lincomb_2term", n),
                &ejobs,
                |b, j| b.iter(|| acc.ed25519_lincomb_vartime(black_box(j))),
            );
            g.finish();
        }
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
