//! backend-simd beside backend-cpu (single-threaded) and the raw curve-crate calls, per item,
//! at batch sizes 8, 64, 1024 and 16384, all in the same run: `mul_base` and 2-term
//! `lincomb_vartime` on both curves, batched Schnorr verification, batch normalisation /
//! compression and Ed25519 decompression, on every SIMD path this host has.
//!
//! `cargo bench -p tessera-benches --bench simd -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use accel_api::{Accelerator, EdPoint, LincombJob, SchnorrItem};
use backend_cpu::CpuBackend;
use backend_simd::{EdLincomb, Path, SimdBackend};
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use k256::elliptic_curve::Field;
use k256::elliptic_curve::ops::{LinearCombination, MulByGenerator};
use k256::{ProjectivePoint, Scalar as SecpScalar};
use rand_core::{OsRng, RngCore};

const SIZES: [usize; 4] = [8, 64, 1024, 16384];

fn ed_scalar() -> EdScalar {
    let mut wide = [0u8; 64];
    OsRng.fill_bytes(&mut wide);
    EdScalar::from_bytes_mod_order_wide(&wide)
}

/// The backends under test: every SIMD path this host has, and backend-cpu on one thread.
fn backends() -> Vec<(String, Box<dyn Accelerator>)> {
    let mut v: Vec<(String, Box<dyn Accelerator>)> = Vec::new();
    for path in [Path::Ifma, Path::Avx2, Path::Portable] {
        if let Ok(b) = SimdBackend::with_path(path) {
            v.push((format!("simd-{path}"), Box::new(b)));
        }
    }
    v.push((
        "cpu-1thread".to_owned(),
        Box::new(CpuBackend::single_threaded()),
    ));
    v
}

/// n 2-term jobs from 2n scalars and 2n points: job i is s₂ᵢ·P₂ᵢ₊₁ + s₂ᵢ₊₁·P₂ᵢ.
fn two_term_jobs<S: Copy, P: Copy>(s: &[S], p: &[P]) -> Vec<LincombJob<S, P>> {
    let n = s.len() / 2;
    (0..n)
        .map(|i| {
            LincombJob::new(vec![
                (s[2 * i], p[(2 * i + 1) % (2 * n)]),
                (s[2 * i + 1], p[2 * i]),
            ])
        })
        .collect()
}

fn secp_mul_base(c: &mut Criterion) {
    let backends = backends();
    let mut g = c.benchmark_group("secp256k1_mul_base");
    g.sample_size(10);
    for n in SIZES {
        let s: Vec<SecpScalar> = (0..n).map(|_| SecpScalar::random(&mut OsRng)).collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &s, |b, s| {
                b.iter(|| acc.secp256k1_mul_base(black_box(s)))
            });
        }
        g.bench_with_input(BenchmarkId::new("k256-mul_by_generator", n), &s, |b, s| {
            b.iter(|| {
                black_box(s)
                    .iter()
                    .map(ProjectivePoint::mul_by_generator)
                    .collect::<Vec<_>>()
            })
        });
    }
    g.finish();
}

fn ed_mul_base(c: &mut Criterion) {
    let backends = backends();
    let mut g = c.benchmark_group("ed25519_mul_base");
    g.sample_size(10);
    for n in SIZES {
        let s: Vec<EdScalar> = (0..n).map(|_| ed_scalar()).collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &s, |b, s| {
                b.iter(|| acc.ed25519_mul_base(black_box(s)))
            });
        }
        g.bench_with_input(BenchmarkId::new("dalek-mul_base", n), &s, |b, s| {
            b.iter(|| {
                black_box(s)
                    .iter()
                    .map(EdwardsPoint::mul_base)
                    .collect::<Vec<_>>()
            })
        });
    }
    g.finish();
}

fn lincomb_2term(c: &mut Criterion) {
    let backends = backends();
    let mut g = c.benchmark_group("secp256k1_lincomb_vartime_2term");
    g.sample_size(10);
    for n in SIZES {
        let s: Vec<SecpScalar> = (0..2 * n).map(|_| SecpScalar::random(&mut OsRng)).collect();
        let p: Vec<ProjectivePoint> = s.iter().map(ProjectivePoint::mul_by_generator).collect();
        let jobs = two_term_jobs(&s, &p);
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.secp256k1_lincomb_vartime(black_box(j)))
            });
        }
        g.bench_with_input(BenchmarkId::new("k256-lincomb", n), &jobs, |b, j| {
            b.iter(|| {
                black_box(j)
                    .iter()
                    .map(|j| {
                        let [(a, p), (b, q)] = [j.terms[0], j.terms[1]];
                        ProjectivePoint::lincomb(&p, &a, &q, &b)
                    })
                    .collect::<Vec<_>>()
            })
        });
    }
    g.finish();
}

/// Every SIMD path with each Ed25519 linear-combination implementation forced: this crate's
/// lanes (`-lanes`) and curve25519-dalek job by job (`-dalek`).
fn ed_lincomb_variants() -> Vec<(String, SimdBackend)> {
    let mut v = Vec::new();
    for path in [Path::Ifma, Path::Avx2, Path::Portable] {
        if let Ok(b) = SimdBackend::with_path(path) {
            for (tag, choice) in [("lanes", EdLincomb::Lanes), ("dalek", EdLincomb::Dalek)] {
                v.push((
                    format!("simd-{path}-{tag}"),
                    b.clone().with_ed_lincomb(choice),
                ));
            }
        }
    }
    v
}

/// 2-term Ed25519 jobs on points as a lane backend returns them (affine, from the IFMA or
/// portable lanes' own `mul_base`), the inputs protocol code passes back to the port: the lanes
/// read them as they are, the dalek path decompresses each one. Where the two cross over is
/// where `EdLincomb::Auto` should switch for such points.
fn ed_lincomb_2term_affine(c: &mut Criterion) {
    let variants = ed_lincomb_variants();
    let Some(maker) = [Path::Ifma, Path::Portable]
        .into_iter()
        .find_map(|p| SimdBackend::with_path(p).ok())
    else {
        return;
    };
    let mut g = c.benchmark_group("ed25519_lincomb_vartime_2term_affine_inputs");
    g.sample_size(10);
    for n in [1usize, 2, 4, 8, 16, 64] {
        let s: Vec<EdScalar> = (0..2 * n).map(|_| ed_scalar()).collect();
        let p = maker.ed25519_mul_base(&s).expect("mul_base");
        let jobs = two_term_jobs(&s, &p);
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in variants.iter().filter(|(n, _)| n.starts_with("simd-ifma")) {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.ed25519_lincomb_vartime(black_box(j)))
            });
        }
    }
    g.finish();
}

fn ed_lincomb_2term(c: &mut Criterion) {
    let backends = backends();
    let variants = ed_lincomb_variants();
    let mut g = c.benchmark_group("ed25519_lincomb_vartime_2term");
    g.sample_size(10);
    for n in [1, 2, 4].into_iter().chain(SIZES) {
        let s: Vec<EdScalar> = (0..2 * n).map(|_| ed_scalar()).collect();
        let p: Vec<EdPoint> = s
            .iter()
            .map(|k| EdPoint::from(EdwardsPoint::mul_base(k)))
            .collect();
        let jobs = two_term_jobs(&s, &p);
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.ed25519_lincomb_vartime(black_box(j)))
            });
        }
        for (name, acc) in &variants {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.ed25519_lincomb_vartime(black_box(j)))
            });
        }
        g.bench_with_input(
            BenchmarkId::new("dalek-vartime_multiscalar_mul", n),
            &jobs,
            |b, j| {
                b.iter(|| {
                    black_box(j)
                        .iter()
                        .map(|j| {
                            EdwardsPoint::vartime_multiscalar_mul(
                                j.terms.iter().map(|t| t.0),
                                j.terms.iter().map(|t| t.1.to_edwards()),
                            )
                        })
                        .collect::<Vec<_>>()
                })
            },
        );
    }
    g.finish();
}

/// One secp256k1 job of n terms (the Pippenger kernel from 256 terms, 8-term sub-jobs over
/// the lanes below), per term, on every path and backend-cpu.
fn lincomb_large(c: &mut Criterion) {
    let backends = backends();
    let mut g = c.benchmark_group("secp256k1_lincomb_vartime_one_job");
    g.sample_size(10);
    for n in [64usize, 128, 256, 512, 1024, 4096, 16384] {
        let job = LincombJob::new(
            (0..n)
                .map(|_| {
                    (
                        SecpScalar::random(&mut OsRng),
                        ProjectivePoint::mul_by_generator(&SecpScalar::random(&mut OsRng)),
                    )
                })
                .collect(),
        );
        let jobs = vec![job];
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.secp256k1_lincomb_vartime(black_box(j)))
            });
        }
    }
    g.finish();
}

/// One Ed25519 job of n terms, per term: both implementations on every path, backend-cpu and
/// the raw curve25519-dalek call (Straus below 190 terms, Pippenger from there).
fn ed_lincomb_large(c: &mut Criterion) {
    let backends = backends();
    let variants = ed_lincomb_variants();
    let mut g = c.benchmark_group("ed25519_lincomb_vartime_one_job");
    g.sample_size(10);
    for n in [8usize, 16, 32, 64, 129, 256, 1024, 4096] {
        let job = LincombJob::new(
            (0..n)
                .map(|_| {
                    let p = EdwardsPoint::mul_base(&ed_scalar());
                    (ed_scalar(), EdPoint::from(p))
                })
                .collect(),
        );
        let jobs = vec![job];
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.ed25519_lincomb_vartime(black_box(j)))
            });
        }
        for (name, acc) in &variants {
            g.bench_with_input(BenchmarkId::new(name, n), &jobs, |b, j| {
                b.iter(|| acc.ed25519_lincomb_vartime(black_box(j)))
            });
        }
        g.bench_with_input(
            BenchmarkId::new("dalek-vartime_multiscalar_mul", n),
            &jobs,
            |b, j| {
                b.iter(|| {
                    EdwardsPoint::vartime_multiscalar_mul(
                        black_box(j)[0].terms.iter().map(|t| t.0),
                        j[0].terms.iter().map(|t| t.1.to_edwards()),
                    )
                })
            },
        );
    }
    g.finish();
}

/// Batched Schnorr verification (random linear combination) on every path and backend-cpu.
fn verify(c: &mut Criterion) {
    let backends = backends();
    let mut g = c.benchmark_group("secp256k1_verify_batch_vartime");
    g.sample_size(10);
    for n in SIZES {
        let items: Vec<_> = (0..n)
            .map(|_| {
                let (x, k, ch) = (
                    SecpScalar::random(&mut OsRng),
                    SecpScalar::random(&mut OsRng),
                    SecpScalar::random(&mut OsRng),
                );
                SchnorrItem {
                    r: ProjectivePoint::mul_by_generator(&k),
                    s: k + ch * x,
                    c: ch,
                    public_key: ProjectivePoint::mul_by_generator(&x),
                }
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &items, |b, it| {
                b.iter(|| acc.secp256k1_verify_batch_vartime(black_box(it)))
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("ed25519_verify_batch_vartime");
    g.sample_size(10);
    for n in SIZES {
        let items: Vec<_> = (0..n)
            .map(|_| {
                let (x, k, ch) = (ed_scalar(), ed_scalar(), ed_scalar());
                SchnorrItem {
                    r: EdPoint::from(EdwardsPoint::mul_base(&k)),
                    s: k + ch * x,
                    c: ch,
                    public_key: EdPoint::from(EdwardsPoint::mul_base(&x)),
                }
            })
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &items, |b, it| {
                b.iter(|| acc.ed25519_verify_batch_vartime(black_box(it)))
            });
        }
    }
    g.finish();
}

/// Batch normalisation (secp256k1 affine form, Ed25519 compression) on every path and
/// backend-cpu.
fn normalize(c: &mut Criterion) {
    let backends = backends();
    let mut g = c.benchmark_group("secp256k1_normalize_batch");
    g.sample_size(10);
    for n in SIZES {
        let p: Vec<ProjectivePoint> = (0..n)
            .map(|_| ProjectivePoint::mul_by_generator(&SecpScalar::random(&mut OsRng)))
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &p, |b, p| {
                b.iter(|| acc.secp256k1_normalize_batch(black_box(p)))
            });
        }
    }
    g.finish();
    let mut g = c.benchmark_group("ed25519_compress_batch");
    g.sample_size(10);
    for n in SIZES {
        let p: Vec<EdPoint> = (0..n)
            .map(|_| EdPoint::from(EdwardsPoint::mul_base(&ed_scalar())))
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &backends {
            g.bench_with_input(BenchmarkId::new(name, n), &p, |b, p| {
                b.iter(|| acc.ed25519_compress_batch(black_box(p)))
            });
        }
    }
    g.finish();
}

/// Ed25519 decoding: the lanes and curve25519-dalek forced on each SIMD path, the default
/// (`auto`) on IFMA, and dalek's `decompress` one by one, at the small sizes where `auto`
/// chooses and the large ones. Where the lanes and dalek cross is `ED_DECOMPRESS_LANES_MIN`.
fn ed_decompress(c: &mut Criterion) {
    let mut variants = ed_lincomb_variants();
    if let Ok(b) = SimdBackend::with_path(Path::Ifma) {
        variants.push(("simd-ifma-auto".to_owned(), b));
    }
    let mut g = c.benchmark_group("ed25519_decompress_batch");
    g.sample_size(10);
    for n in [1usize, 2, 4, 8, 64, 1024] {
        let e: Vec<[u8; 32]> = (0..n)
            .map(|_| EdwardsPoint::mul_base(&ed_scalar()).compress().to_bytes())
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (name, acc) in &variants {
            g.bench_with_input(BenchmarkId::new(name, n), &e, |b, e| {
                b.iter(|| acc.ed25519_decompress_batch(black_box(e)))
            });
        }
        g.bench_with_input(BenchmarkId::new("dalek-decompress", n), &e, |b, e| {
            b.iter(|| {
                black_box(e)
                    .iter()
                    .map(|e| CompressedEdwardsY(*e).decompress())
                    .collect::<Vec<_>>()
            })
        });
    }
    g.finish();
}

/// The two job shapes of a FROST signature at the port, on points as they arrive decoded
/// (affine): the group commitment of two signers `(1, D₁), (ρ₁, E₁), (1, D₂), (ρ₂, E₂)` and the
/// subgroup check of a received point `(ℓ−1, P), (1, P)`, n jobs per batch, on the IFMA and
/// portable lanes (forced) and curve25519-dalek.
fn ed_lincomb_frost_shapes(c: &mut Criterion) {
    let variants = ed_lincomb_variants();
    let Some(decoder) = [Path::Ifma, Path::Portable]
        .into_iter()
        .find_map(|p| SimdBackend::with_path(p).ok())
    else {
        return;
    };
    let one = EdScalar::ONE;
    let mut g = c.benchmark_group("ed25519_lincomb_vartime_frost_shapes");
    g.sample_size(10);
    for n in [8usize, 64] {
        let encodings: Vec<[u8; 32]> = (0..4 * n)
            .map(|_| EdwardsPoint::mul_base(&ed_scalar()).compress().to_bytes())
            .collect();
        let p: Vec<EdPoint> = decoder
            .ed25519_decompress_batch(&encodings)
            .expect("decompress")
            .into_iter()
            .map(|q| q.expect("a point"))
            .collect();
        let commitment: Vec<LincombJob<EdScalar, EdPoint>> = p
            .chunks(4)
            .map(|q| {
                LincombJob::new(vec![
                    (one, q[0]),
                    (ed_scalar(), q[1]),
                    (one, q[2]),
                    (ed_scalar(), q[3]),
                ])
            })
            .collect();
        let subgroup: Vec<LincombJob<EdScalar, EdPoint>> = p[..n]
            .iter()
            .map(|q| LincombJob::new(vec![(-one, *q), (one, *q)]))
            .collect();
        g.throughput(Throughput::Elements(n as u64));
        for (shape, jobs) in [
            ("group_commitment", &commitment),
            ("subgroup_check", &subgroup),
        ] {
            for (name, acc) in variants
                .iter()
                .filter(|(name, _)| !name.starts_with("simd-avx2"))
            {
                g.bench_with_input(
                    BenchmarkId::new(format!("{shape}/{name}"), n),
                    jobs,
                    |b, j| b.iter(|| acc.ed25519_lincomb_vartime(black_box(j))),
                );
            }
        }
    }
    g.finish();
}

criterion_group!(
    benches,
    secp_mul_base,
    ed_mul_base,
    lincomb_2term,
    ed_lincomb_2term,
    ed_lincomb_2term_affine,
    lincomb_large,
    ed_lincomb_large,
    verify,
    normalize,
    ed_decompress,
    ed_lincomb_frost_shapes
);
criterion_main!(benches);
