//! Hash helpers: RFC 9380 `expand_message_xmd` with SHA-256 and BIP340 tagged hashes.

use sha2::{Digest, Sha256};

/// `expand_message_xmd(msg, DST, 48)` with SHA-256 (RFC 9380 §5.3.1), for 48 output bytes; the
/// message is given as the concatenation of `msg`. `dst` is the concatenation of `dst` parts.
pub(crate) fn expand_xmd_sha256_48(msg: &[&[u8]], dst: &[&[u8]]) -> [u8; 48] {
    const LEN: usize = 48;
    let dst_len: usize = dst.iter().map(|d| d.len()).sum();
    // All our DSTs are short (< 256 bytes), so no DST hashing is needed.
    let mut b0 = Sha256::new();
    b0.update([0u8; 64]);
    for m in msg {
        b0.update(m);
    }
    b0.update([0u8, LEN as u8, 0u8]);
    for d in dst {
        b0.update(d);
    }
    b0.update([dst_len as u8]);
    let b0 = b0.finalize();

    let mut out = [0u8; LEN];
    let mut prev = [0u8; 32];
    for i in 1..=2u8 {
        let mut h = Sha256::new();
        let mut x = [0u8; 32];
        for (k, byte) in x.iter_mut().enumerate() {
            *byte = if i == 1 { b0[k] } else { b0[k] ^ prev[k] };
        }
        h.update(x);
        h.update([i]);
        for d in dst {
            h.update(d);
        }
        h.update([dst_len as u8]);
        prev.copy_from_slice(&h.finalize());
        let start = (i as usize - 1) * 32;
        let end = (start + 32).min(LEN);
        out[start..end].copy_from_slice(&prev[..end - start]);
    }
    out
}

/// A SHA-256 state primed with the BIP340 tag prefix `SHA256(tag) ‖ SHA256(tag)`.
pub(crate) fn tagged(tag: &[u8]) -> Sha256 {
    let t = Sha256::digest(tag);
    let mut h = Sha256::new();
    h.update(t);
    h.update(t);
    h
}
