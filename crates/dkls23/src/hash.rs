//! Domain-separated hashing helpers, and AES-256 in counter mode as the PRG that expands a
//! uniformly random 32-byte key (docs/dkls23.md, "Symmetric primitives").

use aes::Aes256Enc;
use aes::cipher::consts::{U16, U64};
use aes::cipher::{BlockEncrypt, KeyInit, generic_array::GenericArray};
use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::ops::Reduce;
use k256::{FieldBytes, ProjectivePoint, Scalar, U256};
use sha2::{Digest, Sha256};
use zeroize::Zeroize;

use crate::fq::Fq;

/// A SHA-256 transcript with length-prefixed, tagged absorption.
#[derive(Clone)]
pub(crate) struct Tr(Sha256);

impl Tr {
    pub(crate) fn new(domain: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"tessera/dkls23/");
        h.update((domain.len() as u64).to_le_bytes());
        h.update(domain.as_bytes());
        Tr(h)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }
    pub(crate) fn point(&mut self, p: &ProjectivePoint) -> &mut Self {
        self.0.update(p.to_bytes());
        self
    }
    /// Absorbs a point already SEC1-compressed: the same input as [`Tr::point`] on it.
    pub(crate) fn encoded_point(&mut self, p: &[u8; 33]) -> &mut Self {
        self.0.update(p);
        self
    }
    pub(crate) fn finish(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
    pub(crate) fn finish_scalar(&self) -> Scalar {
        scalar_from_32(&self.finish())
    }
}

/// Reduces 32 uniform bytes modulo the group order (statistical distance below 2^-127 for
/// secp256k1, whose order is within 2^129 of 2^256).
pub(crate) fn scalar_from_32(b: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(b))
}

/// Fills `out` (a whole number of 16-byte blocks) with AES-256 under `key` in counter mode:
/// block `i` is the encryption of `iv + i` (little-endian, modulo 2^128). `key` must be
/// uniformly random and secret; the same `(key, iv)` must not cover two different uses.
pub(crate) fn aes_ctr(key: &[u8; 32], iv: u128, out: &mut [u8]) {
    aes_ctr_with(&aes_key(key), iv, out);
}

/// AES-256 under `key`, its key schedule expanded once (it is wiped on drop).
pub(crate) fn aes_key(key: &[u8; 32]) -> Aes256Enc {
    Aes256Enc::new(GenericArray::from_slice(key))
}

/// [`aes_ctr`] under a key already expanded by [`aes_key`].
pub(crate) fn aes_ctr_with(cipher: &Aes256Enc, iv: u128, out: &mut [u8]) {
    debug_assert_eq!(out.len() % 16, 0);
    let mut buf = [GenericArray::<u8, U16>::default(); 8];
    let mut ctr = iv;
    for chunk in out.chunks_mut(16 * buf.len()) {
        let n = chunk.len() / 16;
        for b in &mut buf[..n] {
            b.copy_from_slice(&ctr.to_le_bytes());
            ctr = ctr.wrapping_add(1);
        }
        cipher.encrypt_blocks(&mut buf[..n]);
        for (dst, b) in chunk.chunks_exact_mut(16).zip(&buf) {
            dst.copy_from_slice(b);
        }
    }
    for b in &mut buf {
        b.as_mut_slice().zeroize();
    }
}

/// A SHA-256 state keyed by one whole 64-byte block, `key ‖ domain`, so that each further
/// short input costs one compression: the random oracle `H(key ‖ domain ‖ input)`. The state
/// after the keyed block is kept, and each input (at most 55 bytes, so that it and SHA-256's
/// padding fill one block) is padded here and compressed once, with no hasher object.
#[derive(Clone)]
pub(crate) struct KeyedHash([u32; 8]);

/// SHA-256's initial hash value (FIPS 180-4, §5.3.3).
const SHA256_IV: [u32; 8] = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];

impl KeyedHash {
    pub(crate) fn new(key: &[u8; 32], domain: &[u8; 32]) -> Self {
        let mut block = GenericArray::<u8, U64>::default();
        block[..32].copy_from_slice(key);
        block[32..].copy_from_slice(domain);
        let mut state = SHA256_IV;
        sha2::compress256(&mut state, core::slice::from_ref(&block));
        block.as_mut_slice().zeroize();
        KeyedHash(state)
    }
    /// `H(key ‖ domain ‖ a ‖ b)`, for `a` and `b` of at most 55 bytes together.
    pub(crate) fn hash2(&self, a: &[u8], b: &[u8]) -> [u8; 32] {
        let len = a.len() + b.len();
        assert!(len <= 55, "KeyedHash input longer than one block");
        // SHA-256 padding (FIPS 180-4, §5.1.1): 0x80, zeros, the message length in bits
        // (64 keyed bytes plus the input) as a big-endian 64-bit integer.
        let mut block = GenericArray::<u8, U64>::default();
        block[..a.len()].copy_from_slice(a);
        block[a.len()..len].copy_from_slice(b);
        block[len] = 0x80;
        block[56..].copy_from_slice(&(((64 + len) as u64) * 8).to_be_bytes());
        let mut state = self.0;
        sha2::compress256(&mut state, core::slice::from_ref(&block));
        block.as_mut_slice().zeroize();
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(&state) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        state.zeroize();
        out
    }
}

impl KeyedHash {
    /// Zeroizes the keyed state (run on drop).
    fn wipe(&mut self) {
        self.0.zeroize();
        #[cfg(test)]
        crate::tests::note_wipe("KeyedHash");
    }
}

impl Drop for KeyedHash {
    fn drop(&mut self) {
        self.wipe();
    }
}

/// A session's fixed-key expander: AES-256 under a per-session key (known to both parties of
/// the session) used as the permutation `π` of the Matyas–Meyer–Oseas function
/// `x ↦ π(x) ⊕ x`, which turns a secret 256-bit random-oracle output into `N` scalars with one
/// block encryption per 16 bytes and no key schedule per call (docs/dkls23.md, "Symmetric
/// primitives").
pub(crate) struct Expander(Aes256Enc);

impl Expander {
    pub(crate) fn new(key: &[u8; 32]) -> Self {
        Expander(Aes256Enc::new(GenericArray::from_slice(key)))
    }

    /// Four scalars from a secret random-oracle output `h`: with `lo`, `hi` the halves of `h`
    /// as little-endian integers and `y_i = π(x_i) ⊕ x_i` for the blocks `x_{2k} = lo + k`,
    /// `x_{2k+1} = hi + k` (additions modulo 2^128), scalar `k` is the integer with
    /// little-endian halves `y_{2k}`, `y_{2k+1}`, reduced modulo the group order. `h` and the
    /// intermediate blocks are wiped.
    pub(crate) fn scalars4(&self, mut h: [u8; 32]) -> [Fq; 4] {
        let mut halves = [
            u128::from_le_bytes(core::array::from_fn(|i| h[i])),
            u128::from_le_bytes(core::array::from_fn(|i| h[16 + i])),
        ];
        h.zeroize();
        let mut x: [u128; 8] =
            core::array::from_fn(|i| halves[i % 2].wrapping_add((i / 2) as u128));
        halves.zeroize();
        let mut blocks: [GenericArray<u8, U16>; 8] =
            core::array::from_fn(|i| GenericArray::from(x[i].to_le_bytes()));
        self.0.encrypt_blocks(&mut blocks);
        let mut y: [u128; 8] = core::array::from_fn(|i| {
            u128::from_le_bytes(core::array::from_fn(|j| blocks[i][j])) ^ x[i]
        });
        x.zeroize();
        for b in &mut blocks {
            b.as_mut_slice().zeroize();
        }
        let out = core::array::from_fn(|k| {
            let (lo, hi) = (y[2 * k], y[2 * k + 1]);
            let mut limbs = [lo as u64, (lo >> 64) as u64, hi as u64, (hi >> 64) as u64];
            let s = Fq::reduce(limbs);
            limbs.zeroize();
            s
        });
        y.zeroize();
        out
    }
}

/// The Fiat–Shamir digest of a bulk transcript (the multiplication's corrections and check
/// values, the KOS columns: tens of kilobytes per session): BLAKE3 in key-derivation mode
/// under a per-use context, over the short `prefix` parts and then `data`, passed to BLAKE3
/// whole so that its chunks are hashed in parallel lanes.
pub(crate) fn bulk_digest(context: &str, prefix: &[&[u8; 32]], data: &[u8]) -> [u8; 32] {
    let mut h = blake3::Hasher::new_derive_key(context);
    for p in prefix {
        h.update(*p);
    }
    h.update(data);
    *h.finalize().as_bytes()
}

/// Canonical encodings of `values`, concatenated: the input of [`bulk_digest`].
pub(crate) fn scalar_bytes(values: &[Fq]) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 * values.len());
    for v in values {
        out.extend_from_slice(&v.to_bytes());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keyed state (it depends on the session's pad key) is wiped, and dropping the hash
    /// runs the wipe.
    #[test]
    fn keyed_hash_state_is_wiped_on_drop() {
        let mut h = KeyedHash::new(&[0x22; 32], &[0x33; 32]);
        assert_ne!(h.0, [0u32; 8]);
        h.wipe();
        assert_eq!(h.0, [0u32; 8]);
        let before = crate::tests::wipes("KeyedHash");
        drop(KeyedHash::new(&[0x22; 32], &[0x33; 32]));
        assert_eq!(crate::tests::wipes("KeyedHash"), before + 1);
    }

    /// `KeyedHash::hash2` is SHA-256 of `key ‖ domain ‖ a ‖ b`, for every input length it
    /// takes (0 to 55 bytes, split anywhere).
    #[test]
    fn keyed_hash_is_sha256_of_the_whole_input() {
        let key = [0x11u8; 32];
        let domain = *b"tessera/dkls23/test/keyed-hash\0\0";
        let h = KeyedHash::new(&key, &domain);
        let input: Vec<u8> = (0..55u8).map(|i| i.wrapping_mul(29) ^ 0x5a).collect();
        for len in 0..=55 {
            for split in [0, len / 2, len] {
                let (a, b) = input[..len].split_at(split);
                let mut want = Sha256::new();
                want.update(key);
                want.update(domain);
                want.update(a);
                want.update(b);
                let want: [u8; 32] = want.finalize().into();
                assert_eq!(h.hash2(a, b), want, "length {len}, split {split}");
            }
        }
    }
    use k256::elliptic_curve::PrimeField;
    use k256::elliptic_curve::bigint::Encoding;

    /// `Expander::scalars4` computes its documented definition, written out here one block at
    /// a time: blocks `x_{2k} = lo + k`, `x_{2k+1} = hi + k`, `y_i = AES(x_i) ⊕ x_i`, scalar `k`
    /// from the little-endian halves `y_{2k}`, `y_{2k+1}` reduced modulo the order (checked
    /// by subtracting `n` where the 256-bit value is at least `n`). Both parties of a
    /// multiplication must agree on it bit for bit.
    #[test]
    fn expander_matches_its_definition() {
        let key = [0x42u8; 32];
        let e = Expander::new(&key);
        let aes = Aes256Enc::new(GenericArray::from_slice(&key));
        let n =
            U256::from_be_hex("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141");
        for seed in 0u8..16 {
            let h: [u8; 32] = if seed == 15 {
                [0xff; 32]
            } else {
                core::array::from_fn(|i| {
                    seed.wrapping_mul(37)
                        .wrapping_add((i as u8).wrapping_mul(11))
                })
            };
            let lo = u128::from_le_bytes(h[..16].try_into().unwrap());
            let hi = u128::from_le_bytes(h[16..].try_into().unwrap());
            let y = |x: u128| {
                let mut b = GenericArray::from(x.to_le_bytes());
                aes.encrypt_block(&mut b);
                u128::from_le_bytes(b.into()) ^ x
            };
            let got = e.scalars4(h);
            for (k, s) in got.iter().enumerate() {
                let (a, b) = (y(lo.wrapping_add(k as u128)), y(hi.wrapping_add(k as u128)));
                let mut le = [0u8; 32];
                le[..16].copy_from_slice(&a.to_le_bytes());
                le[16..].copy_from_slice(&b.to_le_bytes());
                let v = U256::from_le_slice(&le);
                let reduced = if v >= n { v.wrapping_sub(&n) } else { v };
                let want = Scalar::from_repr(FieldBytes::from(reduced.to_be_bytes())).unwrap();
                assert_eq!(s.to_scalar(), want, "seed {seed}, scalar {k}");
            }
        }
    }
}
