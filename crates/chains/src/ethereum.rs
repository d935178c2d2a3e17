//! Ethereum: the address of a secp256k1 public key and its EIP-55 checksummed spelling.

use k256::PublicKey;
use k256::elliptic_curve::sec1::ToEncodedPoint;
use sha3::{Digest, Keccak256};

/// The EIP-55 checksummed address of a SEC1-encoded secp256k1 public key: the last 20 bytes
/// of Keccak-256 over the uncompressed `X‖Y` (Ethereum yellow paper, appendix F); `None` when
/// the bytes are not a point on the curve.
pub fn address(sec1: &[u8]) -> Option<String> {
    let pk = PublicKey::from_sec1_bytes(sec1).ok()?;
    let uncompressed = pk.to_encoded_point(false);
    let hash = Keccak256::digest(uncompressed.as_bytes().get(1..)?);
    Some(eip55(hash.get(12..)?))
}

/// EIP-55 mixed-case hex of a 20-byte address: a hex letter is upper-cased where the matching
/// nibble of Keccak-256(lower-case hex) is ≥ 8.
pub fn eip55(address: &[u8]) -> String {
    let lower = hex::encode(address);
    let check = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(2 + lower.len());
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (check[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn eip55_checksums_match_the_spec() {
        let vectors = include_str!("../../../tests/vectors/ethereum/eip55.txt");
        let mut n = 0;
        for line in vectors.lines().filter(|l| !l.trim().is_empty()) {
            let want = line.trim();
            let raw = hex::decode(want.trim_start_matches("0x").to_ascii_lowercase()).unwrap();
            assert_eq!(eip55(&raw), want);
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn address_rejects_non_points() {
        assert!(address(&[5; 33]).is_none());
        assert!(address(&[]).is_none());
    }
}
