#![doc = include_str!("../README.md")]
//!
//! Writes the test-bench vectors of `hw/fpga-notes` (run by `hw/fpga-notes/sim.sh`).
//!
//! Expected outputs come from our Rust code: the serial field multiplication and the complete
//! point additions of backend-simd ([`backend_simd::vectors`], the arithmetic its IFMA/AVX2
//! paths run lane-wise). Every output is checked before it is written: field products against
//! a plain big-integer product reduced modulo p (crypto-bigint, through k256) and, for
//! secp256k1, against k256's own field multiplication; point sums, after conversion to affine
//! coordinates, against curve25519-dalek's and k256's point addition. The input points are
//! multiples of the base points made by dalek and k256, and dalek's eight-torsion points.
//!
//! Usage: `fpga-vectors OUTDIR [--seed N] [--nmul N] [--nadd N]`. Each unit gets
//! `OUTDIR/<unit>.hex` (one 256-bit value per line, big-endian hex; per vector the inputs then
//! the expected outputs) and `OUTDIR/<unit>.n` (the number of vectors).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use backend_simd::vectors;
use curve25519_dalek::constants::{ED25519_BASEPOINT_POINT, EIGHT_TORSION};
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use k256::elliptic_curve::bigint::modular::runtime_mod::{DynResidue, DynResidueParams};
use k256::elliptic_curve::bigint::{Encoding, U256, U512};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use k256::elliptic_curve::{Field, Group};
use k256::{FieldElement, ProjectivePoint, Scalar as KScalar};
use rand_chacha::ChaCha20Rng;
use rand_core::{RngCore, SeedableRng};

/// A 256-bit value, little-endian.
type Le = [u8; 32];

const P25519_HEX: &str = "7fffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffed";
const PK256_HEX: &str = "fffffffffffffffffffffffffffffffffffffffffffffffffffffffefffffc2f";

struct Options {
    out: PathBuf,
    seed: u64,
    nmul: usize,
    nadd: usize,
}

fn parse() -> Result<Options, String> {
    let mut args = std::env::args().skip(1);
    let mut o = Options {
        out: PathBuf::new(),
        seed: 25519,
        nmul: 400,
        nadd: 128,
    };
    let mut out = None;
    while let Some(a) = args.next() {
        let mut num = |name: &str| -> Result<u64, String> {
            args.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("{name} needs a number"))
        };
        match a.as_str() {
            "--seed" => o.seed = num("--seed")?,
            "--nmul" => o.nmul = num("--nmul")? as usize,
            "--nadd" => o.nadd = num("--nadd")? as usize,
            _ if a.starts_with("--") => return Err(format!("unknown option {a}")),
            _ => out = Some(PathBuf::from(a)),
        }
    }
    o.out = out.ok_or("usage: fpga-vectors OUTDIR [--seed N] [--nmul N] [--nadd N]")?;
    Ok(o)
}

fn main() -> ExitCode {
    match parse().and_then(|o| run(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fpga-vectors: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(o: &Options) -> Result<(), String> {
    fs::create_dir_all(&o.out).map_err(|e| format!("{}: {e}", o.out.display()))?;
    let mut rng = ChaCha20Rng::seed_from_u64(o.seed);
    let p25519 = U256::from_be_hex(P25519_HEX);
    let pk256 = U256::from_be_hex(PK256_HEX);
    let ed = Modulus::new(p25519);
    let k = Modulus::new(pk256);

    let mul_ed = field_vectors(&ed, &mut rng, o.nmul, vectors::mul_p25519, |_, _, _| Ok(()))?;
    write(&o.out, "fmul_p25519", &mul_ed)?;
    let mul_k = field_vectors(&k, &mut rng, o.nmul, vectors::mul_k256, check_k256_field)?;
    write(&o.out, "fmul_k256", &mul_k)?;
    write(&o.out, "ed25519_add", &ed_vectors(&ed, &mut rng, o.nadd)?)?;
    write(&o.out, "k256_add", &k_vectors(&k, &mut rng, o.nadd)?)?;
    println!(
        "fpga-vectors: {} + {} multiplier and {} + {} adder vectors in {} (seed {})",
        mul_ed.len(),
        mul_k.len(),
        o.nadd,
        o.nadd,
        o.out.display(),
        o.seed
    );
    Ok(())
}

/// Plain modular arithmetic over crypto-bigint: the independent reference for the field
/// products and the affine conversions.
struct Modulus {
    p: U256,
    params: DynResidueParams<4>,
}

impl Modulus {
    fn new(p: U256) -> Self {
        Self {
            p,
            params: DynResidueParams::new(&p),
        }
    }

    /// `x mod p` for any 256-bit x (at most two subtractions: 2^256 − 1 < 3p).
    fn reduce(&self, x: &U256) -> U256 {
        let mut r = *x;
        while r >= self.p {
            r = r.wrapping_sub(&self.p);
        }
        r
    }

    fn res(&self, x: &U256) -> DynResidue<4> {
        DynResidue::new(&self.reduce(x), self.params)
    }

    /// The product through a 512-bit intermediate and a long division.
    fn mul_wide(&self, a: &U256, b: &U256) -> U256 {
        let (lo, hi) = a.mul_wide(b);
        let wide = U512::from((lo, hi));
        let p_wide = U512::from((self.p, U256::ZERO));
        let (_, rem) = wide.div_rem(
            &k256::elliptic_curve::bigint::NonZero::new(p_wide)
                .unwrap_or(k256::elliptic_curve::bigint::NonZero::<U512>::ONE),
        );
        let (_, r_lo) = rem.split();
        r_lo
    }

    fn mul(&self, a: &U256, b: &U256) -> U256 {
        (self.res(a) * self.res(b)).retrieve()
    }

    fn add(&self, a: &U256, b: &U256) -> U256 {
        (self.res(a) + self.res(b)).retrieve()
    }

    fn neg(&self, a: &U256) -> U256 {
        (-self.res(a)).retrieve()
    }

    fn inv(&self, a: &U256) -> Result<U256, String> {
        let (r, ok) = self.res(a).invert();
        if bool::from(ok) {
            Ok(r.retrieve())
        } else {
            Err("inverse of zero".into())
        }
    }

    fn pow(&self, a: &U256, e: &U256) -> U256 {
        self.res(a).pow(e).retrieve()
    }

    fn random(&self, rng: &mut ChaCha20Rng) -> U256 {
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut b);
        self.reduce(&U256::from_le_slice(&b))
    }

    fn random_nonzero(&self, rng: &mut ChaCha20Rng) -> U256 {
        loop {
            let z = self.random(rng);
            if z != U256::ZERO {
                return z;
            }
        }
    }
}

fn le(x: &U256) -> Le {
    x.to_le_bytes()
}

fn u(x: &Le) -> U256 {
    U256::from_le_slice(x)
}

/// Random operands, every pair of edge values (0, 1, 2, p − 1, p − 2, p, p + 1, 2^256 − 1,
/// 2^256 − 2, 2^255 − 1, 2^255, ⌊p/2⌋), and reduced random operands.
fn field_vectors(
    m: &Modulus,
    rng: &mut ChaCha20Rng,
    n_random: usize,
    mul: fn(&Le, &Le) -> Le,
    extra: fn(&Le, &Le, &Le) -> Result<(), String>,
) -> Result<Vec<Vec<Le>>, String> {
    let one = U256::ONE;
    let top = U256::MAX;
    let p = m.p;
    let edges = [
        U256::ZERO,
        one,
        U256::from_u8(2),
        p.wrapping_sub(&one),
        p.wrapping_sub(&U256::from_u8(2)),
        p,
        p.wrapping_add(&one),
        top,
        top.wrapping_sub(&one),
        top.shr_vartime(1),
        top.shr_vartime(1).wrapping_add(&one),
        p.shr_vartime(1),
    ];
    let mut pairs: Vec<(U256, U256)> = Vec::new();
    for x in &edges {
        for y in &edges {
            pairs.push((*x, *y));
        }
    }
    for _ in 0..n_random {
        let mut a = [0u8; 32];
        let mut b = [0u8; 32];
        rng.fill_bytes(&mut a);
        rng.fill_bytes(&mut b);
        pairs.push((u(&a), u(&b)));
    }
    for _ in 0..n_random / 4 {
        pairs.push((m.random(rng), m.random(rng)));
    }
    let mut rows = Vec::with_capacity(pairs.len());
    for (a, b) in pairs {
        let (a, b) = (le(&a), le(&b));
        let r = mul(&a, &b);
        let want = m.mul_wide(&u(&a), &u(&b));
        if u(&r) != want || want != m.mul(&u(&a), &u(&b)) {
            return Err(format!(
                "field product differs from the big-integer reference for {a:02x?} · {b:02x?}"
            ));
        }
        extra(&a, &b, &r)?;
        rows.push(vec![a, b, r]);
    }
    Ok(rows)
}

/// secp256k1 products of reduced operands are also checked against k256's field.
fn check_k256_field(a: &Le, b: &Le, r: &Le) -> Result<(), String> {
    let be = |x: &Le| {
        let mut b = *x;
        b.reverse();
        b
    };
    let fa = FieldElement::from_bytes(&be(a).into());
    let fb = FieldElement::from_bytes(&be(b).into());
    if let (Some(fa), Some(fb)) = (
        Option::<FieldElement>::from(fa),
        Option::<FieldElement>::from(fb),
    ) {
        let prod: FieldElement = fa * fb;
        if prod.normalize().to_bytes().as_slice() != be(r).as_slice() {
            return Err("secp256k1 product differs from k256's field multiplication".into());
        }
    }
    Ok(())
}

// ------------------------------------------------------------------ edwards25519

/// Affine (x, y) of a dalek point from its encoding: x from y by the square root of RFC 8032
/// §5.1.3, computed with the reference arithmetic.
fn ed_affine(m: &Modulus, p: &EdwardsPoint) -> Result<(U256, U256), String> {
    let mut enc = p.compress().to_bytes();
    let sign = enc[31] >> 7;
    enc[31] &= 0x7f;
    let y = u(&enc);
    let d = ed_d(m)?;
    let yy = m.mul(&y, &y);
    let num = m.add(&yy, &m.neg(&U256::ONE));
    let den = m.add(&m.mul(&d, &yy), &U256::ONE);
    let x2 = m.mul(&num, &m.inv(&den)?);
    let e = m.p.wrapping_add(&U256::from_u8(3)).shr_vartime(3);
    let mut x = m.pow(&x2, &e);
    if m.mul(&x, &x) != x2 {
        let sqrt_m1 = m.pow(
            &U256::from_u8(2),
            &m.p.wrapping_sub(&U256::ONE).shr_vartime(2),
        );
        x = m.mul(&x, &sqrt_m1);
    }
    if m.mul(&x, &x) != x2 {
        return Err("no square root while decoding a dalek point".into());
    }
    if (x.to_le_bytes()[0] & 1) != sign {
        x = m.neg(&x);
    }
    Ok((x, y))
}

fn ed_d(m: &Modulus) -> Result<U256, String> {
    let num = m.neg(&U256::from_u32(121_665));
    Ok(m.mul(&num, &m.inv(&U256::from_u32(121_666))?))
}

/// The encoding of the affine point of extended (X, Y, Z, T), after checking T·Z = X·Y.
fn ed_encode_ext(m: &Modulus, q: &[Le; 4]) -> Result<[u8; 32], String> {
    let [x, y, z, t] = q.map(|c| u(&c));
    if m.mul(&t, &z) != m.mul(&x, &y) {
        return Err("extended output with T·Z ≠ X·Y".into());
    }
    let zi = m.inv(&z)?;
    let (ax, ay) = (m.mul(&x, &zi), m.mul(&y, &zi));
    let mut enc = le(&ay);
    enc[31] |= (ax.to_le_bytes()[0] & 1) << 7;
    Ok(enc)
}

fn ed_vectors(m: &Modulus, rng: &mut ChaCha20Rng, n: usize) -> Result<Vec<Vec<Le>>, String> {
    let pts: Vec<EdwardsPoint> = (0..(n / 8).max(4))
        .map(|_| {
            let mut wide = [0u8; 64];
            rng.fill_bytes(&mut wide);
            ED25519_BASEPOINT_POINT * EdScalar::from_bytes_mod_order_wide(&wide)
        })
        .collect();
    let small: Vec<EdwardsPoint> = EIGHT_TORSION.to_vec();
    let pick = |rng: &mut ChaCha20Rng, v: &[EdwardsPoint]| v[(rng.next_u32() as usize) % v.len()];
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let mut a = pick(rng, &pts);
        let b = match rng.next_u32() % 8 {
            0 => a,
            1 => -a,
            2 => pick(rng, &small),
            3 => {
                a = pick(rng, &small);
                pick(rng, &small)
            }
            _ => pick(rng, &pts),
        };
        let ext = |pt: &EdwardsPoint, rng: &mut ChaCha20Rng| -> Result<[Le; 4], String> {
            let (x, y) = ed_affine(m, pt)?;
            let z = m.random_nonzero(rng);
            let t = m.mul(&m.mul(&x, &y), &z);
            Ok([le(&m.mul(&x, &z)), le(&m.mul(&y, &z)), le(&z), le(&t)])
        };
        let q1 = ext(&a, rng)?;
        let q2 = ext(&b, rng)?;
        let r = vectors::add_ed25519(&q1, &q2);
        if ed_encode_ext(m, &r)? != (a + b).compress().to_bytes() {
            return Err("edwards25519 sum differs from curve25519-dalek's".into());
        }
        rows.push(q1.iter().chain(&q2).chain(&r).copied().collect());
    }
    Ok(rows)
}

// ------------------------------------------------------------------ secp256k1

/// Affine (x, y) of a k256 point, or `None` for the identity.
fn k_affine(p: &ProjectivePoint) -> Option<(U256, U256)> {
    let enc = p.to_affine().to_encoded_point(false);
    Some((
        U256::from_be_slice(enc.x()?.as_slice()),
        U256::from_be_slice(enc.y()?.as_slice()),
    ))
}

fn k_vectors(m: &Modulus, rng: &mut ChaCha20Rng, n: usize) -> Result<Vec<Vec<Le>>, String> {
    let pts: Vec<ProjectivePoint> = (0..(n / 8).max(4))
        .map(|_| ProjectivePoint::GENERATOR * KScalar::random(&mut *rng))
        .collect();
    let id = ProjectivePoint::IDENTITY;
    let pick = |rng: &mut ChaCha20Rng| pts[(rng.next_u32() as usize) % pts.len()];
    let mut rows = Vec::with_capacity(n);
    for _ in 0..n {
        let mut a = pick(rng);
        let b = match rng.next_u32() % 8 {
            0 => a,
            1 => -a,
            2 => id,
            3 => {
                let b = if rng.next_u32().is_multiple_of(2) {
                    id
                } else {
                    a
                };
                a = id;
                b
            }
            _ => pick(rng),
        };
        let proj = |pt: &ProjectivePoint, rng: &mut ChaCha20Rng| -> [Le; 3] {
            let z = m.random_nonzero(rng);
            match k_affine(pt) {
                Some((x, y)) => [le(&m.mul(&x, &z)), le(&m.mul(&y, &z)), le(&z)],
                None => [le(&U256::ZERO), le(&z), le(&U256::ZERO)],
            }
        };
        let q1 = proj(&a, rng);
        let q2 = proj(&b, rng);
        let r = vectors::add_k256(&q1, &q2);
        let [x, y, z] = r.map(|c| u(&c));
        let got = if z == U256::ZERO {
            if x != U256::ZERO || y == U256::ZERO {
                return Err("secp256k1 sum with Z = 0 is not (0 : Y : 0)".into());
            }
            None
        } else {
            let zi = m.inv(&z)?;
            Some((m.mul(&x, &zi), m.mul(&y, &zi)))
        };
        if got != k_affine(&(a + b)) || bool::from((a + b).is_identity()) != got.is_none() {
            return Err("secp256k1 sum differs from k256's".into());
        }
        rows.push(q1.iter().chain(&q2).chain(&r).copied().collect());
    }
    Ok(rows)
}

fn write(dir: &Path, unit: &str, rows: &[Vec<Le>]) -> Result<(), String> {
    let mut text = String::new();
    for row in rows {
        for v in row {
            for byte in v.iter().rev() {
                text.push_str(&format!("{byte:02x}"));
            }
            text.push('\n');
        }
    }
    let hex = dir.join(format!("{unit}.hex"));
    fs::write(&hex, text).map_err(|e| format!("{}: {e}", hex.display()))?;
    let count = dir.join(format!("{unit}.n"));
    fs::write(&count, format!("{}\n", rows.len())).map_err(|e| format!("{}: {e}", count.display()))
}
