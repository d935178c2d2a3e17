//! dudect-style constant-time evidence for `mul_base` (Reparaz, Balasch, Verbauwhede, "Dude,
//! is my code constant time?", DATE 2017): time batches of a *fixed* class (every scalar 1:
//! 63 zero digits and one digit 1, the case a branchy comb would shortcut) against a *random*
//! class, interleaved in random order, and compare the two timing distributions with Welch's
//! t-test, on the raw samples and on samples cropped at several percentiles. |t| above 4.5
//! would be evidence of a timing leak; below it, no leak was detected at this sample size. An
//! A/A control (random against random) shows how large |t| gets from machine noise alone.
//!
//! `cargo bench -p backend-simd --bench dudect` (`TESSERA_DUDECT_SAMPLES` sets the samples per
//! test, default 20000).

use std::hint::black_box;
use std::time::Instant;

use accel_api::Accelerator;
use backend_simd::{Path, SimdBackend};
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::Scalar as SecpScalar;
use k256::elliptic_curve::Field;
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

const BATCH: usize = 8;

/// Welch's t statistic of two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (n, mean, var)
    };
    let (na, ma, va) = stats(a);
    let (nb, mb, vb) = stats(b);
    (ma - mb) / (va / na + vb / nb).sqrt()
}

/// The largest |t| over the raw samples and the samples below several common percentiles.
fn max_abs_t(fixed: &[f64], random: &[f64]) -> (f64, f64) {
    let mut all: Vec<f64> = fixed.iter().chain(random).copied().collect();
    all.sort_by(f64::total_cmp);
    let raw = welch_t(fixed, random).abs();
    let mut worst = raw;
    for pct in [0.5, 0.75, 0.9, 0.95, 0.99] {
        let cut = all[((all.len() as f64) * pct) as usize];
        let f: Vec<f64> = fixed.iter().copied().filter(|v| *v <= cut).collect();
        let r: Vec<f64> = random.iter().copied().filter(|v| *v <= cut).collect();
        if f.len() > 10 && r.len() > 10 {
            worst = worst.max(welch_t(&f, &r).abs());
        }
    }
    (raw, worst)
}

/// Times `op` on inputs of class 0 or class 1, chosen at random for each sample.
fn measure<T>(
    samples: usize,
    rng: &mut ChaCha20Rng,
    class0: &mut impl FnMut(&mut ChaCha20Rng) -> Vec<T>,
    class1: &mut impl FnMut(&mut ChaCha20Rng) -> Vec<T>,
    op: &mut impl FnMut(&[T]),
) -> (Vec<f64>, Vec<f64>) {
    // Inputs are drawn before any timing, as in dudect, so that drawing them (which the two
    // classes do differently) leaves no trace in the caches the timed calls see.
    let inputs: Vec<(u32, Vec<T>)> = (0..samples)
        .map(|_| {
            let class = rng.next_u32() & 1;
            let input = if class == 0 { class0(rng) } else { class1(rng) };
            (class, input)
        })
        .collect();
    // Warm up tables and caches.
    for (_, input) in inputs.iter().take(50) {
        op(input);
    }
    let (mut f, mut r) = (Vec::new(), Vec::new());
    for (class, input) in &inputs {
        let t = Instant::now();
        op(black_box(input));
        let ns = t.elapsed().as_nanos() as f64;
        if *class == 0 { &mut f } else { &mut r }.push(ns);
    }
    (f, r)
}

fn secp_random(rng: &mut ChaCha20Rng) -> Vec<SecpScalar> {
    (0..BATCH).map(|_| SecpScalar::random(&mut *rng)).collect()
}

fn ed_random(rng: &mut ChaCha20Rng) -> Vec<EdScalar> {
    (0..BATCH)
        .map(|_| {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            EdScalar::from_bytes_mod_order_wide(&wide)
        })
        .collect()
}

fn report(what: &str, (raw, worst): (f64, f64)) {
    println!(
        "{what}: t(raw) = {raw:.2}, max |t| over crops = {worst:.2} -> {}",
        if worst > 4.5 {
            "LEAK?"
        } else {
            "no leak detected"
        }
    );
}

fn main() {
    let samples: usize = std::env::var("TESSERA_DUDECT_SAMPLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let mut rng = ChaCha20Rng::seed_from_u64(0xd0de);
    println!("dudect: {samples} samples per test, batch {BATCH}; |t| > 4.5 flags a leak");
    for path in [Path::Ifma, Path::Avx2, Path::Portable] {
        let acc = match SimdBackend::with_path(path) {
            Ok(a) => a,
            Err(e) => {
                println!("{path}: skipped ({e})");
                continue;
            }
        };
        let mut secp_op = |s: &[SecpScalar]| {
            black_box(acc.secp256k1_mul_base(s).is_ok());
        };
        let (f, r) = measure(
            samples,
            &mut rng,
            &mut |_| vec![SecpScalar::ONE; BATCH],
            &mut secp_random,
            &mut secp_op,
        );
        report(&format!("{path} secp256k1 mul_base"), max_abs_t(&f, &r));
        // Control (A/A): both classes random scalars, interleaved the same way. Any |t| above
        // 4.5 here measures the machine's noise, not the code.
        let (f, r) = measure(
            samples,
            &mut rng,
            &mut secp_random,
            &mut secp_random,
            &mut secp_op,
        );
        report(
            &format!("{path} secp256k1 mul_base A/A control"),
            max_abs_t(&f, &r),
        );
        let (f, r) = measure(
            samples,
            &mut rng,
            &mut |_| vec![EdScalar::ONE; BATCH],
            &mut ed_random,
            &mut |s: &[EdScalar]| {
                black_box(acc.ed25519_mul_base(s).is_ok());
            },
        );
        report(&format!("{path} ed25519 mul_base"), max_abs_t(&f, &r));
    }
}
