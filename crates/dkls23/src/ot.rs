//! Oblivious transfer: the Chou–Orlandi "Simplest OT" base OT (eprint 2015/267) run once per
//! ordered pair at key creation, and KOS OT extension (eprint 2015/546) with its GF(2^128)
//! correlation check, run per signing session from the stored base-OT seeds.
//!
//! Roles: the *extension sender* (Alice in the multiplication) is the base-OT **receiver** with
//! choice bits Δ; the *extension receiver* (Bob) is the base-OT **sender** holding both seeds.

use k256::{ProjectivePoint, Scalar};
use rand_core::CryptoRngCore;
use subtle::{ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use accel_api::{Accelerator, CurveGroup, Secp256k1};

use crate::error::Error;
use crate::hash::Tr;

/// Number of base OTs (computational security parameter κ).
pub const KAPPA: usize = 128;
/// Number of extended OTs consumed by one multiplication (ξ = 256 + 2·80, DKLs19 §3).
pub const XI: usize = 416;
/// Number of extended OTs including the KOS padding (≥ ξ + κ + 64), a multiple of 128.
pub const M: usize = 640;
const M_BYTES: usize = M / 8;

/// The extension receiver's base-OT outputs: both seeds of every base OT.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtReceiverSeeds {
    pub(crate) seeds: Vec<[[u8; 32]; 2]>,
}

/// The extension sender's base-OT outputs: its choice bits Δ and the chosen seeds.
#[derive(Clone, PartialEq, Eq)]
pub struct ExtSenderSeeds {
    pub(crate) delta: u128,
    pub(crate) seeds: Vec<[u8; 32]>,
}

impl Drop for ExtReceiverSeeds {
    fn drop(&mut self) {
        self.seeds.zeroize();
    }
}
impl Drop for ExtSenderSeeds {
    fn drop(&mut self) {
        self.delta.zeroize();
        self.seeds.zeroize();
    }
}
impl core::fmt::Debug for ExtReceiverSeeds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ExtReceiverSeeds(<redacted>)")
    }
}
impl core::fmt::Debug for ExtSenderSeeds {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("ExtSenderSeeds(<redacted>)")
    }
}

/// Base-OT sender state (Simplest OT): the secret `a` with `A = a·G`.
pub struct BaseOtSender {
    a: Scalar,
    big_a: ProjectivePoint,
    ctx: [u8; 32],
}
impl Drop for BaseOtSender {
    fn drop(&mut self) {
        self.a.zeroize();
    }
}
impl core::fmt::Debug for BaseOtSender {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("BaseOtSender(<redacted>)")
    }
}

/// Base-OT first message (sender → receiver): `A`.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseOtMsg1 {
    /// The sender's point `A = a·G`.
    pub big_a: ProjectivePoint,
}

/// Base-OT second message (receiver → sender): `B_l = b_l·G + Δ_l·A` for each base OT.
#[derive(Clone, Debug, PartialEq)]
pub struct BaseOtMsg2 {
    /// One point per base OT.
    pub big_b: Vec<ProjectivePoint>,
}

fn base_key(
    ctx: &[u8; 32],
    l: usize,
    a: &ProjectivePoint,
    b: &ProjectivePoint,
    dh: &ProjectivePoint,
) -> [u8; 32] {
    Tr::new("base-ot/key")
        .bytes(ctx)
        .u64(l as u64)
        .point(a)
        .point(b)
        .point(dh)
        .finish()
}

impl BaseOtSender {
    /// Starts a batch of κ base OTs; `ctx` must name the ordered pair and the key.
    pub fn new(
        accel: &dyn Accelerator,
        ctx: [u8; 32],
        rng: &mut impl CryptoRngCore,
    ) -> Result<(Self, BaseOtMsg1), Error> {
        let a = Secp256k1::random_nonzero_scalar(rng);
        let big_a = Secp256k1::mul_base(accel, &[a])?[0];
        Ok((BaseOtSender { a, big_a, ctx }, BaseOtMsg1 { big_a }))
    }

    /// Finishes: derives both seeds of every base OT.
    pub fn finish(self, msg: &BaseOtMsg2, peer: u16) -> Result<ExtReceiverSeeds, Error> {
        if msg.big_b.len() != KAPPA {
            return Err(Error::Malformed {
                culprit: peer,
                what: "base OT message length",
            });
        }
        let a_a = self.big_a * self.a;
        let mut seeds = Vec::with_capacity(KAPPA);
        for (l, b) in msg.big_b.iter().enumerate() {
            if Secp256k1::is_identity(b) {
                return Err(Error::Malformed {
                    culprit: peer,
                    what: "identity point in base OT",
                });
            }
            let ab = *b * self.a;
            seeds.push([
                base_key(&self.ctx, l, &self.big_a, b, &ab),
                base_key(&self.ctx, l, &self.big_a, b, &(ab - a_a)),
            ]);
        }
        Ok(ExtReceiverSeeds { seeds })
    }
}

/// Base-OT receiver: picks fresh random Δ and receives seed `k_{Δ_l}` for each base OT.
pub fn base_ot_receive(
    accel: &dyn Accelerator,
    ctx: [u8; 32],
    msg: &BaseOtMsg1,
    peer: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<(ExtSenderSeeds, BaseOtMsg2), Error> {
    if Secp256k1::is_identity(&msg.big_a) {
        return Err(Error::Malformed {
            culprit: peer,
            what: "identity point in base OT",
        });
    }
    let mut db = [0u8; 16];
    rng.fill_bytes(&mut db);
    let delta = u128::from_le_bytes(db);
    db.zeroize();
    let mut b: Vec<Scalar> = (0..KAPPA)
        .map(|_| Secp256k1::random_nonzero_scalar(rng))
        .collect();
    let bg = Secp256k1::mul_base(accel, &b)?;
    let mut big_b = Vec::with_capacity(KAPPA);
    let mut seeds = Vec::with_capacity(KAPPA);
    for l in 0..KAPPA {
        let bit = subtle::Choice::from(((delta >> l) & 1) as u8);
        let with_a = bg[l] + msg.big_a;
        let p = ProjectivePoint::conditional_select(&bg[l], &with_a, bit);
        let dh = msg.big_a * b[l];
        seeds.push(base_key(&ctx, l, &msg.big_a, &p, &dh));
        big_b.push(p);
    }
    b.zeroize();
    Ok((ExtSenderSeeds { delta, seeds }, BaseOtMsg2 { big_b }))
}

/// Carry-less 128×128 → 256-bit multiplication, constant time.
fn clmul(a: u128, b: u128) -> (u128, u128) {
    let mut lo = 0u128;
    let mut hi = 0u128;
    for i in 0..128 {
        let mask = 0u128.wrapping_sub((b >> i) & 1);
        lo ^= (a << i) & mask;
        if i > 0 {
            hi ^= (a >> (128 - i)) & mask;
        }
    }
    (lo, hi)
}

/// Reduction modulo x^128 + x^7 + x^2 + x + 1.
fn reduce(lo: u128, hi: u128) -> u128 {
    let over = (hi >> 127) ^ (hi >> 126) ^ (hi >> 121);
    let h = hi ^ over;
    lo ^ h ^ (h << 1) ^ (h << 2) ^ (h << 7)
}

fn gf_mul(a: u128, b: u128) -> u128 {
    let (lo, hi) = clmul(a, b);
    reduce(lo, hi)
}

/// The KOS message from the extension receiver (Bob) to the extension sender (Alice).
#[derive(Clone, Debug, PartialEq)]
pub struct KosMsg {
    /// Bob's fresh per-session PRG nonce.
    pub nonce: [u8; 32],
    /// The κ columns `u_l = G(k0_l) ⊕ G(k1_l) ⊕ x`, `M/8` bytes each.
    pub u: Vec<[u8; M_BYTES]>,
    /// Correlation check value x̃ = Σ x_j·χ_j.
    pub x_check: u128,
    /// Correlation check value t̃ = Σ t_j·χ_j.
    pub t_check: u128,
}

fn prg(seed: &[u8; 32], ctx: &[u8; 32], nonce: &[u8; 32]) -> [u8; M_BYTES] {
    let mut out = [0u8; M_BYTES];
    let base = Tr::new("kos/prg");
    for (c, chunk) in out.chunks_mut(32).enumerate() {
        let mut t = base.clone();
        let h = t.bytes(seed).bytes(ctx).bytes(nonce).u64(c as u64).finish();
        chunk.copy_from_slice(&h[..chunk.len()]);
    }
    out
}

fn transpose(cols: &[[u8; M_BYTES]]) -> Vec<u128> {
    let mut rows = vec![0u128; M];
    for (l, col) in cols.iter().enumerate() {
        for (jb, byte) in col.iter().enumerate() {
            for k in 0..8 {
                rows[jb * 8 + k] |= (((byte >> k) & 1) as u128) << l;
            }
        }
    }
    rows
}

fn chis(ctx: &[u8; 32], msg_nonce: &[u8; 32], u: &[[u8; M_BYTES]]) -> Vec<u128> {
    let mut t = Tr::new("kos/chi");
    t.bytes(ctx).bytes(msg_nonce);
    for col in u {
        t.bytes(col);
    }
    let seed = t.finish();
    let mut out = Vec::with_capacity(M);
    for c in 0..M / 2 {
        let h = Tr::new("kos/chi-expand")
            .bytes(&seed)
            .u64(c as u64)
            .finish();
        let mut a = [0u8; 16];
        a.copy_from_slice(&h[..16]);
        out.push(u128::from_le_bytes(a));
        a.copy_from_slice(&h[16..]);
        out.push(u128::from_le_bytes(a));
    }
    out
}

/// Bob's secret extension state: the rows `t_j` and choice bits for the first ξ OTs.
pub(crate) struct KosReceiverOut {
    pub(crate) rows: Vec<u128>,
}
impl Drop for KosReceiverOut {
    fn drop(&mut self) {
        self.rows.zeroize();
    }
}

/// Extension receiver (Bob): extends to `M` OTs with the first ξ choice bits `choices`
/// (each 0 or 1) and random padding bits, and computes the KOS check values.
pub(crate) fn kos_receive(
    seeds: &ExtReceiverSeeds,
    ctx: &[u8; 32],
    choices: &[u8],
    rng: &mut impl CryptoRngCore,
) -> (KosMsg, KosReceiverOut) {
    let mut nonce = [0u8; 32];
    rng.fill_bytes(&mut nonce);
    let mut x = [0u8; M_BYTES];
    rng.fill_bytes(&mut x[XI / 8..]);
    for (j, c) in choices.iter().enumerate().take(XI) {
        x[j / 8] |= (c & 1) << (j % 8);
    }
    let mut t0 = Vec::with_capacity(KAPPA);
    let mut u = Vec::with_capacity(KAPPA);
    for pair in &seeds.seeds {
        let a = prg(&pair[0], ctx, &nonce);
        let b = prg(&pair[1], ctx, &nonce);
        let mut col = [0u8; M_BYTES];
        for i in 0..M_BYTES {
            col[i] = a[i] ^ b[i] ^ x[i];
        }
        t0.push(a);
        u.push(col);
    }
    let rows = transpose(&t0);
    t0.zeroize();
    let chi = chis(ctx, &nonce, &u);
    let mut x_check = 0u128;
    let (mut lo, mut hi) = (0u128, 0u128);
    for j in 0..M {
        let mask = 0u128.wrapping_sub(((x[j / 8] >> (j % 8)) & 1) as u128);
        x_check ^= chi[j] & mask;
        let (l, h) = clmul(rows[j], chi[j]);
        lo ^= l;
        hi ^= h;
    }
    x.zeroize();
    let t_check = reduce(lo, hi);
    (
        KosMsg {
            nonce,
            u,
            x_check,
            t_check,
        },
        KosReceiverOut { rows },
    )
}

/// Extension sender (Alice): checks Bob's correlation and returns the rows `q_j = t_j ⊕ x_j·Δ`
/// for the first ξ OTs. A failed check names `peer` as culprit.
pub(crate) fn kos_send(
    seeds: &ExtSenderSeeds,
    ctx: &[u8; 32],
    msg: &KosMsg,
    peer: u16,
) -> Result<Vec<u128>, Error> {
    if msg.u.len() != KAPPA {
        return Err(Error::Malformed {
            culprit: peer,
            what: "KOS message length",
        });
    }
    let mut q = Vec::with_capacity(KAPPA);
    for (l, seed) in seeds.seeds.iter().enumerate() {
        let g = prg(seed, ctx, &msg.nonce);
        let mask = 0u8.wrapping_sub(((seeds.delta >> l) & 1) as u8);
        let mut col = [0u8; M_BYTES];
        for i in 0..M_BYTES {
            col[i] = g[i] ^ (msg.u[l][i] & mask);
        }
        q.push(col);
    }
    let mut rows = transpose(&q);
    q.zeroize();
    let chi = chis(ctx, &msg.nonce, &msg.u);
    let (mut lo, mut hi) = (0u128, 0u128);
    for j in 0..M {
        let (l, h) = clmul(rows[j], chi[j]);
        lo ^= l;
        hi ^= h;
    }
    let q_check = reduce(lo, hi);
    let expect = msg.t_check ^ gf_mul(msg.x_check, seeds.delta);
    if !bool::from(q_check.ct_eq(&expect)) {
        rows.zeroize();
        return Err(Error::OtConsistency { culprit: peer });
    }
    rows.truncate(XI);
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{RngCore, SeedableRng};

    #[test]
    fn gf128_mul_is_field_multiplication() {
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        for _ in 0..20 {
            let a = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            let b = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            let c = u128::from(rng.next_u64()) << 64 | u128::from(rng.next_u64());
            assert_eq!(gf_mul(a, b), gf_mul(b, a));
            assert_eq!(gf_mul(a, b ^ c), gf_mul(a, b) ^ gf_mul(a, c));
            assert_eq!(gf_mul(gf_mul(a, b), c), gf_mul(a, gf_mul(b, c)));
            assert_eq!(gf_mul(a, 1), a);
        }
        // x^127 · x = x^128 = x^7 + x^2 + x + 1
        assert_eq!(gf_mul(1u128 << 127, 2), 0x87);
    }

    #[test]
    fn base_ot_and_extension_give_correlated_ots() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let ctx = [7u8; 32];
        let (snd, m1) = BaseOtSender::new(&accel, ctx, &mut rng).unwrap();
        let (alice, m2) = base_ot_receive(&accel, ctx, &m1, 1, &mut rng).unwrap();
        let bob = snd.finish(&m2, 2).unwrap();
        for l in 0..KAPPA {
            let bit = ((alice.delta >> l) & 1) as usize;
            assert_eq!(alice.seeds[l], bob.seeds[l][bit]);
            assert_ne!(alice.seeds[l], bob.seeds[l][1 - bit]);
        }
        let choices: Vec<u8> = (0..XI).map(|_| (rng.next_u32() & 1) as u8).collect();
        let (msg, out) = kos_receive(&bob, &ctx, &choices, &mut rng);
        let q = kos_send(&alice, &ctx, &msg, 2).unwrap();
        for j in 0..XI {
            let expect = out.rows[j] ^ if choices[j] == 1 { alice.delta } else { 0 };
            assert_eq!(q[j], expect);
        }
        // An inconsistent correlation is caught by the check.
        let mut bad = msg.clone();
        bad.t_check ^= 1;
        assert_eq!(
            kos_send(&alice, &ctx, &bad, 2),
            Err(Error::OtConsistency { culprit: 2 })
        );
    }
}
