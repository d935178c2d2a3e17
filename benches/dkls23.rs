//! DKLs23 threshold ECDSA, 2-of-3, both signers in one process on one thread, so wall time per
//! signature is the CPU of both parties together; per-party CPU is half of it. Measured:
//! presign (rounds 1–2) + online (round 3 + combine/verify) per signature, one presignature per
//! call on the single-threaded CPU backend; the same as the service runs it (backend simd, a
//! refill of 16 presignatures per `presign_batch`, the online round as one batch of 16); the
//! online round alone; and a single-key libsecp256k1 ECDSA sign for the ratio.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use accel_api::Accelerator;
use backend_cpu::CpuBackend;
use backend_simd::SimdBackend;
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use dkls23::{KeySet, embedded};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

/// The service's presigning refill size (`ecdsa.presign_batch`).
const REFILL: usize = 16;

/// Presigns `REFILL` signatures in one `presign_batch` and signs them in one online batch.
fn refill_and_sign(
    accel: &dyn Accelerator,
    set: &mut KeySet,
    signers: &[u16],
    prehash: &[u8; 32],
    rng: &mut ChaCha20Rng,
) {
    let pres = embedded::presign_batch(accel, set, signers, REFILL, rng).unwrap();
    let items = pres.into_iter().map(|p| (p, *prehash)).collect();
    for r in embedded::sign_presigned_batch(accel, items) {
        r.unwrap();
    }
}

fn dkls23_bench(c: &mut Criterion) {
    let accel = CpuBackend::single_threaded();
    let mut rng = ChaCha20Rng::seed_from_u64(23);
    let mut set = embedded::dkg(&accel, 2, 3, &mut rng).unwrap();
    let signers = [1u16, 2];
    let prehash = [0x5au8; 32];
    let mut g = c.benchmark_group("dkls23_2of3");
    g.sample_size(20).measurement_time(Duration::from_secs(5));
    g.bench_function("presign_plus_online_both_parties", |b| {
        b.iter(|| {
            let p = embedded::presign_batch(&accel, &mut set, &signers, 1, &mut rng).unwrap();
            embedded::sign(&accel, &set, p.into_iter().next().unwrap(), &prehash).unwrap()
        })
    });
    let simd = SimdBackend::new().unwrap();
    g.throughput(criterion::Throughput::Elements(REFILL as u64));
    g.bench_function("presign_refill_of_16_plus_online_batch_simd", |b| {
        b.iter(|| refill_and_sign(&simd, &mut set, &signers, &prehash, &mut rng))
    });
    g.throughput(criterion::Throughput::Elements(1));
    let mut set2 = set.clone();
    let mut rng2 = ChaCha20Rng::seed_from_u64(24);
    g.bench_function("online_round_both_parties_plus_combine", |b| {
        b.iter_batched(
            || {
                embedded::presign_batch(&accel, &mut set2, &signers, 1, &mut rng2)
                    .unwrap()
                    .into_iter()
                    .next()
                    .unwrap()
            },
            |p| embedded::sign(&accel, &set, p, &prehash).unwrap(),
            BatchSize::SmallInput,
        )
    });
    g.finish();

    let secp = secp256k1::Secp256k1::signing_only();
    let sk = secp256k1::SecretKey::from_byte_array([0x11; 32]).unwrap();
    let msg = secp256k1::Message::from_digest(prehash);
    c.bench_function("libsecp256k1_sign_single_key", |b| {
        b.iter(|| secp.sign_ecdsa(msg, &sk))
    });

    // Ratio summary from a direct timing loop in the same run.
    let n = 200;
    let t0 = Instant::now();
    for _ in 0..n {
        let p = embedded::presign_batch(&accel, &mut set, &signers, 1, &mut rng).unwrap();
        embedded::sign(&accel, &set, p.into_iter().next().unwrap(), &prehash).unwrap();
    }
    let dkls = t0.elapsed().as_secs_f64() / f64::from(n);
    let refills = 40;
    let t2 = Instant::now();
    for _ in 0..refills {
        refill_and_sign(&simd, &mut set, &signers, &prehash, &mut rng);
    }
    let service = t2.elapsed().as_secs_f64() / (refills * REFILL) as f64;
    let m = 20_000;
    let t1 = Instant::now();
    for _ in 0..m {
        std::hint::black_box(secp.sign_ecdsa(msg, &sk));
    }
    let single = t1.elapsed().as_secs_f64() / f64::from(m);
    eprintln!(
        "dkls23 2-of-3: {:.3} ms per signature (both parties), {:.3} ms CPU per party; \
         libsecp256k1 sign {:.1} us; ratio per party / single-key = {:.0}x",
        dkls * 1e3,
        dkls * 1e3 / 2.0,
        single * 1e6,
        dkls / 2.0 / single
    );
    eprintln!(
        "dkls23 2-of-3 as the service runs it (simd {}, refills of {REFILL}): {:.3} ms CPU per \
         party; ratio per party / single-key = {:.0}x",
        simd.path(),
        service * 1e3 / 2.0,
        service / 2.0 / single
    );
}

criterion_group!(benches, dkls23_bench);
criterion_main!(benches);
