//! Two-party vector multiplication (OT-based VOLE) of DKLs19 (eprint 2019/523, §3, the
//! multiplication protocol with Bob's randomised gadget encoding and Alice's consistency
//! check), as used by DKLs23 (eprint 2023/765, §3) with vector length 2.
//!
//! Bob (the KOS extension receiver) holds a scalar `b`, Alice (the extension sender) a vector
//! `a = (a₀, a₁)`; they end with additive shares `c + d = a·b` (componentwise). The loops over
//! the ξ OTs compute in `fq::Fq` (the same values as `k256::Scalar`, cheaper operations).

use std::sync::OnceLock;

use k256::Scalar;
use rand_core::CryptoRngCore;
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::Zeroize;

use accel_api::{CurveGroup, Secp256k1};

use crate::error::Error;
use crate::fq::{self, Fq, MontFactor};
use crate::hash::{Expander, KeyedHash, Tr, bulk_digest, scalar_bytes};
use crate::ot::{self, ExtReceiverSeeds, ExtSenderSeeds, KosMsg, XI};

pub(crate) const L: usize = 2;
pub(crate) const W: usize = 2 * L;

fn gadget() -> &'static [Scalar] {
    static G: OnceLock<Vec<Scalar>> = OnceLock::new();
    G.get_or_init(|| {
        let mut g = Vec::with_capacity(XI);
        let mut p = Scalar::ONE;
        for _ in 0..256 {
            g.push(p);
            p = p + p;
        }
        for k in 256..XI {
            g.push(Tr::new("mul/gadget").u64(k as u64).finish_scalar());
        }
        g
    })
}

/// The gadget's random tail (`g_j`, `j ≥ 256`) as Montgomery factors.
fn gadget_tail() -> &'static [MontFactor] {
    static T: OnceLock<Vec<MontFactor>> = OnceLock::new();
    T.get_or_init(|| gadget()[256..].iter().map(MontFactor::new).collect())
}

/// The random-oracle pads of OT `j`: `H(key ‖ domain ‖ row ‖ j)` (one SHA-256 compression past
/// the keyed block), expanded into `W` scalars by the session's fixed-key expander.
fn pad(base: &PadBase, j: usize, row: u128) -> [Fq; W] {
    base.1
        .scalars4(base.0.hash2(&row.to_le_bytes(), &(j as u64).to_le_bytes()))
}

/// The session's pad hash and expander, both keyed by `(sid, ctx)` so that pads of different
/// sessions and pairs are independent.
struct PadBase(KeyedHash, Expander);

fn pad_base(sid: &[u8; 32], ctx: &[u8; 32]) -> PadBase {
    let key = Tr::new("mul/pad").bytes(sid).bytes(ctx).finish();
    let expand = Tr::new("mul/pad-expand").bytes(sid).bytes(ctx).finish();
    PadBase(KeyedHash::new(&key, PAD_DOMAIN), Expander::new(&expand))
}

/// Domain of the pad hash's keyed block (32 bytes, zero padded).
const PAD_DOMAIN: &[u8; 32] = b"tessera/dkls23/mul/pad\0\0\0\0\0\0\0\0\0\0";

/// `Σ_j g_j·z_j` for the gadget vector: Horner's rule over the powers of two `g_j = 2^j`
/// (`j < 256`, doublings instead of products), products for the random tail.
fn gadget_dot(z: impl Fn(usize) -> Fq) -> Scalar {
    let mut acc = Fq::ZERO;
    for j in (0..256).rev() {
        acc = acc.double().add(&z(j));
    }
    for (k, gk) in gadget_tail().iter().enumerate() {
        acc = acc.add(&gk.mul(&z(256 + k)));
    }
    let out = acc.to_scalar();
    acc.zeroize();
    out
}

/// Alice's second message: the correlated-OT corrections and the consistency check.
#[derive(Clone, Debug, PartialEq)]
pub struct VoleMsg {
    /// One correction `τ_j = (a, â) + m0_j − m1_j` per OT.
    pub(crate) tau: Vec<[Fq; W]>,
    /// The check vector `u = χ·a + χ̂·â`.
    pub(crate) u: [Scalar; L],
    /// Digest of Alice's check values `r_j`.
    pub(crate) digest: [u8; 32],
}

/// Bob's state between his message and Alice's answer.
pub(crate) struct BobState {
    pub(crate) b: Scalar,
    beta: Vec<u8>,
    kos: ot::KosReceiverOut,
}
impl BobState {
    /// Zeroizes the secret input and its encoding (run on drop).
    fn wipe(&mut self) {
        self.b.zeroize();
        self.beta.zeroize();
        #[cfg(test)]
        crate::tests::note_wipe("BobState");
    }
}
impl Drop for BobState {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// Bob, first message: samples his random input `b`, encodes it and runs the KOS receiver.
pub(crate) fn bob_start(
    seeds: &ExtReceiverSeeds,
    ctx: &[u8; 32],
    rng: &mut impl CryptoRngCore,
) -> (KosMsg, BobState) {
    let b = Secp256k1::random_scalar(rng);
    let g = gadget();
    let mut beta = vec![0u8; XI];
    let mut rand = [0u8; (XI - 256) / 8];
    rng.fill_bytes(&mut rand);
    let mut acc = Scalar::ZERO;
    for k in 256..XI {
        let bit = (rand[(k - 256) / 8] >> (k % 8)) & 1;
        beta[k] = bit;
        acc += Scalar::conditional_select(&Scalar::ZERO, &g[k], Choice::from(bit));
    }
    rand.zeroize();
    let mut head = (b - acc).to_bytes();
    for k in 0..256 {
        beta[k] = (head[31 - k / 8] >> (k % 8)) & 1;
    }
    head.zeroize();
    let (msg, kos) = ot::kos_receive(seeds, ctx, &beta, rng);
    (msg, BobState { b, beta, kos })
}

/// The check coefficients `χ, χ̂`: Fiat–Shamir over `sid`, `ctx` and every correction `τ_j`.
fn chis(sid: &[u8; 32], ctx: &[u8; 32], tau: &[[Fq; W]]) -> [Scalar; W] {
    let seed = bulk_digest(
        "tessera/dkls23/mul/chi",
        &[sid, ctx],
        &scalar_bytes(tau.as_flattened()),
    );
    let mut t = Tr::new("mul/chi");
    t.bytes(&seed);
    core::array::from_fn(|k| t.clone().u64(k as u64).finish_scalar())
}

/// Digest of the consistency-check values (two per OT, in order).
fn check_digest(values: &[Fq]) -> [u8; 32] {
    bulk_digest("tessera/dkls23/mul/check", &[], &scalar_bytes(values))
}

fn check_row(chi: &[MontFactor; W], z: &[Fq; W]) -> [Fq; L] {
    [
        fq::dot2(&chi[0], &z[0], &chi[2], &z[2]),
        fq::dot2(&chi[1], &z[1], &chi[3], &z[3]),
    ]
}

/// Alice: checks Bob's KOS message, answers with her corrections and check values, and
/// returns her output shares `c`.
pub(crate) fn alice_respond(
    seeds: &ExtSenderSeeds,
    ctx: &[u8; 32],
    sid: &[u8; 32],
    msg: &KosMsg,
    a: [Scalar; L],
    peer: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<([Scalar; L], VoleMsg), Error> {
    let mut q = ot::kos_send(seeds, ctx, msg, peer)?;
    let a_hat = [Secp256k1::random_scalar(rng), Secp256k1::random_scalar(rng)];
    let mut alpha = [a[0], a[1], a_hat[0], a_hat[1]].map(|s| Fq::from_scalar(&s));
    let base = pad_base(sid, ctx);
    let mut z: Vec<[Fq; W]> = Vec::with_capacity(XI);
    let mut tau: Vec<[Fq; W]> = Vec::with_capacity(XI);
    for (j, row) in q.iter().enumerate() {
        let mut m0 = pad(&base, j, *row);
        let mut m1 = pad(&base, j, *row ^ seeds.delta);
        tau.push(core::array::from_fn(|k| alpha[k].add(&m0[k]).sub(&m1[k])));
        z.push(m0.map(|m| m.neg()));
        m0.zeroize();
        m1.zeroize();
    }
    q.zeroize();
    alpha.zeroize();
    let chi = chis(sid, ctx, &tau);
    let u = [
        chi[0] * a[0] + chi[2] * a_hat[0],
        chi[1] * a[1] + chi[3] * a_hat[1],
    ];
    let chi = chi.map(|c| MontFactor::new(&c));
    let r: Vec<Fq> = z.iter().flat_map(|zj| check_row(&chi, zj)).collect();
    let c = [gadget_dot(|j| z[j][0]), gadget_dot(|j| z[j][1])];
    z.zeroize();
    Ok((
        c,
        VoleMsg {
            tau,
            u,
            digest: check_digest(&r),
        },
    ))
}

/// Bob: checks Alice's answer and returns his output shares `d` (with `c + d = a·b`).
pub(crate) fn bob_finish(
    st: &BobState,
    ctx: &[u8; 32],
    sid: &[u8; 32],
    msg: &VoleMsg,
    peer: u16,
) -> Result<[Scalar; L], Error> {
    if msg.tau.len() != XI {
        return Err(Error::Malformed {
            culprit: peer,
            what: "multiplication message length",
        });
    }
    let base = pad_base(sid, ctx);
    let chi = chis(sid, ctx, &msg.tau).map(|c| MontFactor::new(&c));
    let u = msg.u.map(|s| Fq::from_scalar(&s));
    let mut checks = Vec::with_capacity(2 * XI);
    let mut z: Vec<[Fq; L]> = Vec::with_capacity(XI);
    for j in 0..XI {
        let mut m = pad(&base, j, st.kos.rows[j]);
        let bit = fq::mask(st.beta[j]);
        let mut zj: [Fq; W] = core::array::from_fn(|k| m[k].select(&msg.tau[j][k].add(&m[k]), bit));
        let cz = check_row(&chi, &zj);
        checks.push(u[0].and_mask(bit).sub(&cz[0]));
        checks.push(u[1].and_mask(bit).sub(&cz[1]));
        z.push([zj[0], zj[1]]);
        zj.zeroize();
        m.zeroize();
    }
    let mut out = [gadget_dot(|j| z[j][0]), gadget_dot(|j| z[j][1])];
    z.zeroize();
    if !bool::from(check_digest(&checks).ct_eq(&msg.digest)) {
        out.zeroize();
        return Err(Error::MultiplicationConsistency { culprit: peer });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ot::{VsotReceiver, VsotSender};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn vole_outputs_are_shares_of_the_product_and_tampering_is_caught() {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let ctx = [9u8; 32];
        let sid = [4u8; 32];
        let (snd, m1) = VsotSender::new(&accel, ctx, &mut rng).unwrap();
        let (rcv, m2) = VsotReceiver::new(&accel, ctx, &m1, 2, &mut rng).unwrap();
        let (snd, m3) = snd.challenge(&m2, 1).unwrap();
        let (rcv, m4) = rcv.respond(&m3, 2).unwrap();
        let (bob, m5) = snd.open(&m4, 1).unwrap();
        let alice = rcv.finish(&m5, 2).unwrap();
        let a = [
            Secp256k1::random_scalar(&mut rng),
            Secp256k1::random_scalar(&mut rng),
        ];
        let (kmsg, st) = bob_start(&bob, &ctx, &mut rng);
        let (c, vmsg) = alice_respond(&alice, &ctx, &sid, &kmsg, a, 2, &mut rng).unwrap();
        let d = bob_finish(&st, &ctx, &sid, &vmsg, 1).unwrap();
        assert_eq!(c[0] + d[0], a[0] * st.b);
        assert_eq!(c[1] + d[1], a[1] * st.b);
        // Alice's corrections inconsistent with her check vector are caught by Bob.
        let mut bad = vmsg.clone();
        for t in bad.tau.iter_mut() {
            t[1] = t[1].add(&Fq::from_scalar(&Scalar::ONE));
        }
        assert_eq!(
            bob_finish(&st, &ctx, &sid, &bad, 1),
            Err(Error::MultiplicationConsistency { culprit: 1 })
        );
    }
}

/// Assurance tests: each guards a security property that the functional tests above do not
/// see (a mutant removing it keeps the protocol correct).
#[cfg(test)]
mod assurance {
    use super::*;
    use crate::ot::{KAPPA, VsotReceiver, VsotSender};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// Fixed, distinct base-OT seeds for Bob (the statistics below do not depend on them).
    fn bob_seeds() -> ExtReceiverSeeds {
        ExtReceiverSeeds::new(
            (0..KAPPA)
                .map(|l| [[l as u8; 32], [l as u8 ^ 0x80; 32]])
                .collect(),
        )
    }

    /// Bob's randomised encoding (DKLs19 §3, the selective-failure defence): the padding bits
    /// `beta[256..XI]` are fresh uniform bits, balanced overall, taking both values at every
    /// position, not periodic, fresh in every run, and balanced whatever his input `b` is; and
    /// the encoding still decodes to `b`. Kills `>>` → `<<` in the padding-bit extraction of
    /// `bob_start` (7 of every 8 padding bits stuck at 0) and `k - 256` → `k / 256` in its
    /// byte index (every padding byte a copy of the first).
    #[test]
    fn bob_padding_bits_are_uniform_and_independent_of_b() {
        const RUNS: usize = 96;
        const PAD: usize = XI - 256;
        let mut rng = ChaCha20Rng::seed_from_u64(0xb0b);
        let seeds = bob_seeds();
        let g = gadget();
        let mut per_pos = [0usize; PAD];
        // [low bit of b] → (ones, bits)
        let mut by_b = [(0usize, 0usize); 2];
        let mut paddings = std::collections::HashSet::new();
        for _ in 0..RUNS {
            let (_, st) = bob_start(&seeds, &[3; 32], &mut rng);
            let decoded =
                st.beta.iter().zip(g).fold(
                    Scalar::ZERO,
                    |acc, (bit, gk)| {
                        if *bit == 1 { acc + gk } else { acc }
                    },
                );
            assert_eq!(decoded, st.b, "encoding does not decode to b");
            // Fresh per run, and not one random byte repeated (bits k and k + 8 independent).
            let pad_bytes: Vec<u8> = st.beta[256..]
                .chunks(8)
                .map(|c| c.iter().rev().fold(0u8, |a, b| (a << 1) | b))
                .collect();
            assert!(
                pad_bytes.windows(2).any(|w| w[0] != w[1]),
                "periodic padding"
            );
            assert!(paddings.insert(pad_bytes), "padding repeated across runs");
            let low = usize::from(st.b.to_bytes()[31] & 1);
            for (k, bit) in st.beta[256..].iter().enumerate() {
                assert!(*bit <= 1);
                per_pos[k] += usize::from(*bit);
                by_b[low].0 += usize::from(*bit);
                by_b[low].1 += 1;
            }
        }
        // Each position is a fair coin over 96 runs: stuck at one value with probability 2^-95.
        for (k, c) in per_pos.iter().enumerate() {
            assert!(*c > 0 && *c < RUNS, "padding bit {k} constant ({c}/{RUNS})");
        }
        // Binomial(m, 1/2) within 6 standard deviations (failure probability < 2^-26).
        let balanced = |ones: usize, m: usize| {
            let dev = (ones as f64 - m as f64 / 2.0).abs();
            dev <= 6.0 * (m as f64).sqrt() / 2.0
        };
        let total: usize = per_pos.iter().sum();
        assert!(
            balanced(total, RUNS * PAD),
            "{total} ones of {}",
            RUNS * PAD
        );
        for (low, (ones, m)) in by_b.iter().enumerate() {
            assert!(*m > 0);
            assert!(balanced(*ones, *m), "b low bit {low}: {ones} ones of {m}");
        }
    }

    /// Alice's pads (the random-OT messages) are keyed by the OT index, the row and the
    /// session, differ between the two messages of one OT and between their four components,
    /// and are never zero. Kills `pad` returning a constant (all zeros).
    #[test]
    fn alice_pads_are_distinct_and_not_constant() {
        let base = pad_base(&[1; 32], &[2; 32]);
        let delta = 0x0123_4567_89ab_cdef_0f1e_2d3c_4b5a_6978u128;
        let mut seen = std::collections::HashSet::new();
        for j in [0usize, 1, 255, 256, XI - 1] {
            for row in [0u128, 1, u128::MAX, 0xdead_beef] {
                for m in [pad(&base, j, row), pad(&base, j, row ^ delta)] {
                    for s in m {
                        assert_ne!(s, Fq::ZERO);
                        assert!(seen.insert(s.to_bytes()), "repeated pad j {j} row {row}");
                    }
                }
            }
        }
        assert_ne!(
            pad(&base, 0, 0),
            pad(&pad_base(&[1; 32], &[3; 32]), 0, 0),
            "pads do not depend on the pair context"
        );
        assert_ne!(
            pad(&base, 0, 0),
            pad(&pad_base(&[9; 32], &[2; 32]), 0, 0),
            "pads do not depend on the session id"
        );
    }

    /// Runs the base OT and one multiplication with Alice's input `a`.
    fn vole(a: [Scalar; L], seed: u64) -> (BobState, VoleMsg, [Scalar; L]) {
        let accel = backend_cpu::CpuBackend::new();
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let ctx = [9u8; 32];
        let sid = [4u8; 32];
        let (snd, m1) = VsotSender::new(&accel, ctx, &mut rng).unwrap();
        let (rcv, m2) = VsotReceiver::new(&accel, ctx, &m1, 2, &mut rng).unwrap();
        let (snd, m3) = snd.challenge(&m2, 1).unwrap();
        let (rcv, m4) = rcv.respond(&m3, 2).unwrap();
        let (bob, m5) = snd.open(&m4, 1).unwrap();
        let alice = rcv.finish(&m5, 2).unwrap();
        let (kmsg, st) = bob_start(&bob, &ctx, &mut rng);
        let (c, vmsg) = alice_respond(&alice, &ctx, &sid, &kmsg, a, 2, &mut rng).unwrap();
        let d = bob_finish(&st, &ctx, &sid, &vmsg, 1).unwrap();
        assert_eq!(c[0] + d[0], a[0] * st.b);
        (st, vmsg, c)
    }

    /// Alice's corrections `τ_j = (a, â) + m0_j − m1_j` must hide her input: no `τ_j`
    /// component equals `a₀` or `a₁` (with working pads they are uniform). Kills `pad`
    /// returning a constant, which makes every `τ_j` equal `(a, â)` in the clear while the
    /// multiplication stays correct.
    #[test]
    fn alice_corrections_do_not_reveal_her_input() {
        let a = [Scalar::from(1234u64), Scalar::from(5678u64)];
        let (_, vmsg, _) = vole(a, 17);
        assert_eq!(vmsg.tau.len(), XI);
        let mut distinct = std::collections::HashSet::new();
        for (j, t) in vmsg.tau.iter().enumerate() {
            for s in t {
                let s = s.to_scalar();
                assert!(s != a[0] && s != a[1], "τ_{j} reveals Alice's input");
                distinct.insert(s.to_bytes());
            }
        }
        assert_eq!(distinct.len(), XI * W, "corrections repeat");
    }

    /// The check coefficients χ are bound to the session id, the pair context and every
    /// correction `τ` (one changed byte changes them), and are distinct and non-zero.
    /// Kills a `chis` that ignores its transcript or returns a constant.
    #[test]
    fn multiplication_check_coefficients_depend_on_the_transcript() {
        let tau: Vec<[Fq; W]> = (0..XI)
            .map(|j| {
                core::array::from_fn(|k| Fq::from_scalar(&Scalar::from((j * W + k) as u64 + 1)))
            })
            .collect();
        let chi = chis(&[1; 32], &[2; 32], &tau);
        for (i, x) in chi.iter().enumerate() {
            assert_ne!(*x, Scalar::ZERO);
            for y in &chi[i + 1..] {
                assert_ne!(x, y);
            }
        }
        let mut sid = [1u8; 32];
        sid[31] ^= 1;
        assert_ne!(chi, chis(&sid, &[2; 32], &tau));
        let mut ctx = [2u8; 32];
        ctx[0] ^= 0x80;
        assert_ne!(chi, chis(&[1; 32], &ctx, &tau));
        for j in [0, XI / 2, XI - 1] {
            let mut t2 = tau.clone();
            t2[j][3] = t2[j][3].add(&Fq::from_scalar(&Scalar::ONE));
            assert_ne!(chi, chis(&[1; 32], &[2; 32], &t2), "τ_{j} not bound");
        }
    }

    /// `BobState`'s secret input `b` and its encoding are wiped, and dropping it runs the wipe.
    /// Kills an emptied `wipe` or `Drop::drop`.
    #[test]
    fn bob_state_is_wiped_on_drop() {
        let mut rng = ChaCha20Rng::seed_from_u64(5);
        let (_, mut st) = bob_start(&bob_seeds(), &[3; 32], &mut rng);
        assert_ne!(st.b, Scalar::ZERO);
        assert!(st.beta.contains(&1));
        st.wipe();
        assert_eq!(st.b, Scalar::ZERO);
        assert!(st.beta.iter().all(|b| *b == 0));
        let before = crate::tests::wipes("BobState");
        drop(st);
        assert_eq!(crate::tests::wipes("BobState"), before + 1);
    }
}
