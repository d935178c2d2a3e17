//! Fuzzes the decoders of the FROST messages and key encodings of the `threshold` crate that
//! peers or the disk hand a node, for both suites (`threshold::Ed25519Suite`,
//! `threshold::Bip340Suite`): `SigningPackage` (coordinator → signer, also through
//! `from_bytes_known` with the commitments the signer holds), `SigningCommitments`,
//! `SignatureShare`, the DKG's `Round1Package` (broadcast) and `Round2Package` (private
//! share), `GroupKey`, and the stored `PartyKey` (one node's key) and `KeySet` (every
//! party's, embedded mode). Every decoder is tried on the whole input.
//!
//! Asserts: no decoder panics; a value that decodes re-encodes with `to_bytes`, and the
//! encoding decodes to the same value (compared by value where the type has `PartialEq`, by
//! its encoding where it has none because it holds a secret).

#![no_main]

use libfuzzer_sys::fuzz_target;
use threshold::dkg::{Round1Package, Round2Package};
use threshold::round1::SigningCommitments;
use threshold::{
    Bip340Suite, Ed25519Suite, GroupKey, Identifier, KeySet, PartyKey, SignatureShare,
    SigningPackage, Suite,
};

/// Decodes `$b` with `$decode`; on success checks that its encoding
/// decodes to an equal value.
macro_rules! by_value {
    ($decode:expr, $b:expr) => {
        if let Ok(v) = $decode($b) {
            assert_eq!($decode(&v.to_bytes()), Ok(v));
        }
    };
}

/// Like `by_value!`, for types without `PartialEq` (secret holders): the re-decoded value
/// must encode to the same bytes.
macro_rules! by_encoding {
    ($decode:expr, $b:expr) => {
        if let Ok(v) = $decode($b) {
            let enc = v.to_bytes();
            let again = $decode(&enc[..]).map(|w| w.to_bytes());
            assert!(
                again.is_ok_and(|e| e == enc),
                "re-encoding did not decode to the same value"
            );
        }
    };
}

fn suite<S: Suite>(data: &[u8]) {
    by_value!(SigningPackage::<S>::from_bytes, data);
    by_value!(SigningCommitments::<S>::from_bytes, data);
    by_value!(Round1Package::<S>::from_bytes, data);
    by_value!(GroupKey::<S>::from_bytes, data);
    by_encoding!(Round2Package::<S>::from_bytes, data);
    by_encoding!(PartyKey::<S>::from_bytes, data);
    by_encoding!(KeySet::<S>::from_bytes, data);
    if let Ok(id) = Identifier::new(1) {
        by_value!(|b| SignatureShare::<S>::from_bytes(id, b), data);
    }
    // A signer decoding a package while holding commitments (its own): the first 2·POINT_LEN
    // bytes, when they decode, are the held commitments; the package must decode as it does
    // without them.
    if let Some(held) = data.get(..2 * S::POINT_LEN)
        && let Ok(known) = SigningCommitments::<S>::from_bytes(held)
    {
        let rest = &data[2 * S::POINT_LEN..];
        assert_eq!(
            SigningPackage::<S>::from_bytes_known(rest, &[known]),
            SigningPackage::<S>::from_bytes(rest)
        );
    }
}

fuzz_target!(|data: &[u8]| {
    suite::<Ed25519Suite>(data);
    suite::<Bip340Suite>(data);
});
