//! FROST per signature, all parties in one process on one thread: our `embedded::sign_batch`
//! over batches of 256 sessions vs the ZF `frost-ed25519` / `frost-secp256k1-tr` crates doing
//! the same 256 signatures (round 1 commit per signer, round 2 sign, aggregate). Trusted-dealer
//! keys are made outside the timed loop for both.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use backend_cpu::CpuBackend;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use threshold::embedded::{self, SignJob};
use threshold::{Bip340Suite, Ed25519Suite, TaprootTweak};

const SESSIONS: usize = 256;
const SHAPES: [(u16, u16); 2] = [(2, 3), (3, 5)];

macro_rules! zf_bench {
    ($group:expr, $frost:ident, $label:expr, $t:expr, $n:expr, $msgs:expr) => {{
        use $frost as frost;
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let (shares, pubkeys) = frost::keys::generate_with_dealer(
            $n,
            $t,
            frost::keys::IdentifierList::Default,
            &mut rng,
        )
        .unwrap();
        let kps: BTreeMap<_, _> = shares
            .into_iter()
            .map(|(id, s)| (id, frost::keys::KeyPackage::try_from(s).unwrap()))
            .collect();
        let signers: Vec<_> = kps.keys().take(usize::from($t)).copied().collect();
        $group.bench_function(BenchmarkId::new($label, format!("{}-of-{}", $t, $n)), |b| {
            b.iter(|| {
                for m in $msgs.iter() {
                    let mut nonces = BTreeMap::new();
                    let mut commits = BTreeMap::new();
                    for id in &signers {
                        let (n, c) = frost::round1::commit(kps[id].signing_share(), &mut rng);
                        nonces.insert(*id, n);
                        commits.insert(*id, c);
                    }
                    let pkg = frost::SigningPackage::new(commits, m);
                    let shares: BTreeMap<_, _> = signers
                        .iter()
                        .map(|id| {
                            (
                                *id,
                                frost::round2::sign(&pkg, &nonces[id], &kps[id]).unwrap(),
                            )
                        })
                        .collect();
                    let sig = frost::aggregate(&pkg, &shares, &pubkeys).unwrap();
                    std::hint::black_box(sig);
                }
            })
        });
    }};
}

fn frost_bench(c: &mut Criterion) {
    let accel = CpuBackend::single_threaded();
    // The SIMD backend (one thread as well) where this CPU has AVX-512 IFMA or AVX2.
    let simd = backend_simd::SimdBackend::new().ok();
    let msgs: Vec<[u8; 32]> = (0..SESSIONS).map(|i| [i as u8; 32]).collect();
    let mut group = c.benchmark_group("frost_256_sessions");
    group.throughput(Throughput::Elements(SESSIONS as u64));
    group.sample_size(10);
    for (t, n) in SHAPES {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let ed = embedded::import::<Ed25519Suite>(&accel, &[5u8; 32], t, n, &mut rng).unwrap();
        let bip = embedded::import::<Bip340Suite>(&accel, &[5u8; 32], t, n, &mut rng).unwrap();
        let ed_jobs: Vec<_> = msgs
            .iter()
            .map(|m| SignJob {
                key: &ed,
                message: m,
                taproot: TaprootTweak::None,
            })
            .collect();
        let bip_jobs: Vec<_> = msgs
            .iter()
            .map(|m| SignJob {
                key: &bip,
                message: m,
                taproot: TaprootTweak::None,
            })
            .collect();
        group.bench_function(
            BenchmarkId::new("ours_ed25519", format!("{t}-of-{n}")),
            |b| b.iter(|| std::hint::black_box(embedded::sign_batch(&accel, &ed_jobs, &mut rng))),
        );
        if let Some(simd) = &simd {
            group.bench_function(
                BenchmarkId::new("ours_simd_ed25519", format!("{t}-of-{n}")),
                |b| b.iter(|| std::hint::black_box(embedded::sign_batch(simd, &ed_jobs, &mut rng))),
            );
        }
        zf_bench!(group, frost_ed25519, "zf_frost_ed25519", t, n, msgs);
        group.bench_function(
            BenchmarkId::new("ours_bip340", format!("{t}-of-{n}")),
            |b| b.iter(|| std::hint::black_box(embedded::sign_batch(&accel, &bip_jobs, &mut rng))),
        );
        if let Some(simd) = &simd {
            group.bench_function(
                BenchmarkId::new("ours_simd_bip340", format!("{t}-of-{n}")),
                |b| {
                    b.iter(|| std::hint::black_box(embedded::sign_batch(simd, &bip_jobs, &mut rng)))
                },
            );
        }
        zf_bench!(
            group,
            frost_secp256k1_tr,
            "zf_frost_secp256k1_tr",
            t,
            n,
            msgs
        );
    }
    group.finish();
}

criterion_group!(benches, frost_bench);
criterion_main!(benches);
