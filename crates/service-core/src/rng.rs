//! Randomness from the operating system, fetched a block at a time: one `getrandom` call
//! serves the nonce draws of many signing sessions instead of one call per draw (four per
//! Ed25519 or BIP340 2-of-3 signature). The bytes are the kernel's, unchanged; each is served
//! once and wiped as it is served, and what was never served is wiped on drop.

use rand_core::{CryptoRng, Error, OsRng, RngCore};
use zeroize::{Zeroize, Zeroizing};

/// Bytes fetched per `getrandom` call: the nonce randomness of 16 two-party signatures.
const BLOCK: usize = 2048;

/// [`OsRng`] read in blocks of [`BLOCK`] bytes. For one batch of work: the unserved rest of
/// a block stays in memory until the generator is dropped.
pub(crate) struct OsBlockRng {
    block: Zeroizing<Vec<u8>>,
    /// The next unserved byte of `block`; `BLOCK` when it is used up.
    next: usize,
}

impl OsBlockRng {
    /// An empty generator; the first draw fetches a block.
    pub(crate) fn new() -> Self {
        Self {
            block: Zeroizing::new(vec![0; BLOCK]),
            next: BLOCK,
        }
    }
}

impl std::fmt::Debug for OsBlockRng {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OsBlockRng(<redacted>)")
    }
}

impl RngCore for OsBlockRng {
    fn next_u32(&mut self) -> u32 {
        let mut b = [0u8; 4];
        self.fill_bytes(&mut b);
        u32::from_le_bytes(b)
    }

    fn next_u64(&mut self) -> u64 {
        let mut b = [0u8; 8];
        self.fill_bytes(&mut b);
        u64::from_le_bytes(b)
    }

    fn fill_bytes(&mut self, dest: &mut [u8]) {
        // As OsRng does: a system that cannot give randomness cannot sign.
        if let Err(e) = self.try_fill_bytes(dest) {
            panic!("the operating system's random number generator failed: {e}");
        }
    }

    fn try_fill_bytes(&mut self, mut dest: &mut [u8]) -> Result<(), Error> {
        while !dest.is_empty() {
            if self.next == BLOCK {
                OsRng.try_fill_bytes(&mut self.block)?;
                self.next = 0;
            }
            let take = dest.len().min(BLOCK - self.next);
            let served = &mut self.block[self.next..self.next + take];
            dest[..take].copy_from_slice(served);
            served.zeroize();
            self.next += take;
            dest = &mut dest[take..];
        }
        Ok(())
    }
}

impl CryptoRng for OsBlockRng {}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashSet;

    /// Draws of every size, across block boundaries, never repeat a 32-byte value, and a
    /// served byte is gone from the block.
    #[test]
    fn draws_are_fresh_and_served_bytes_are_wiped() {
        let mut rng = OsBlockRng::new();
        let mut seen = HashSet::new();
        for size in [32usize, 1, 7, 64, 3000, 32, BLOCK, 5] {
            let mut out = vec![0u8; size];
            rng.fill_bytes(&mut out);
            for chunk in out.chunks_exact(32) {
                assert!(seen.insert(chunk.to_vec()), "a repeated draw");
            }
            assert!(
                rng.block[..rng.next].iter().all(|b| *b == 0),
                "served bytes left in the block"
            );
            if size >= 64 {
                assert!(out.iter().any(|b| *b != 0));
            }
        }
        let (a, b) = (rng.next_u64(), rng.next_u64());
        assert_ne!(a, b);
        let (c, d) = (rng.next_u32(), rng.next_u32());
        assert_ne!(c, d);
        assert!(rng.block[..rng.next].iter().all(|b| *b == 0));
    }

    #[test]
    fn debug_output_is_redacted() {
        let mut rng = OsBlockRng::new();
        rng.next_u32();
        assert_eq!(format!("{rng:?}"), "OsBlockRng(<redacted>)");
    }
}
