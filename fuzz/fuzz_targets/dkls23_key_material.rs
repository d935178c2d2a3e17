//! Fuzzes the decoders of stored threshold-ECDSA key material: `dkls23::KeyShare::from_bytes`
//! (one node's share, pairwise OT state included, as a distributed node stores it) and
//! `dkls23::KeySet::from_bytes` (every party's share, as the embedded mode stores it). The
//! bytes come from the store after decryption, so a corrupt or hostile store reaches them.
//!
//! Asserts: no decoder panics (nor allocates from an unchecked length); a share or set that
//! decodes re-encodes with `to_bytes`, and the encoding decodes to the same value.

#![no_main]

use dkls23::{KeySet, KeyShare};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(share) = KeyShare::from_bytes(data) {
        assert_eq!(KeyShare::from_bytes(&share.to_bytes()), Ok(share));
    }
    if let Ok(set) = KeySet::from_bytes(data) {
        assert_eq!(KeySet::from_bytes(&set.to_bytes()), Ok(set));
    }
});
