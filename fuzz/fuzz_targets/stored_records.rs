//! Fuzzes the decoders of what a node reads back from its store (crates/store-redb keeps
//! each of these as one value): the key material `service_core::LoadedKey::from_bytes` decodes
//! for every `service_core::Scheme` (FROST key sets and party keys, DKLs23 sets and shares),
//! the key record (`service_core::ports::KeyRecord::decode`, binary or the JSON of earlier
//! versions, then its MAC check and the opening of its sealed material under a KEK), a
//! distributed node's pending share (`PendingKey::decode`), the idempotency record, and the
//! audit trail's envelopes and checkpoint (`service_core::audit::Envelope::decode`, `Checkpoint::decode`,
//! then its MAC check). Every decoder is tried on the whole input.
//!
//! Asserts: no decoder or check panics; a value that decodes re-encodes, and the encoding
//! decodes to the same value (key material, which has no `PartialEq`, to the same encoding).

#![no_main]

use libfuzzer_sys::fuzz_target;
use service_core::audit::{ChainKey, Checkpoint, Envelope};
use service_core::ports::{IdempotencyRecord, KeyRecord, PendingKey};
use service_core::{Kek, LoadedKey, Scheme, Sealer};

/// Decodes `$b` as JSON of type `$t` (as crates/store-redb does); on success checks that the
/// value's JSON decodes to an equal value and returns it.
macro_rules! json_round_trip {
    ($t:ty, $b:expr) => {
        serde_json::from_slice::<$t>($b).ok().inspect(|v| {
            let again = serde_json::to_vec(v)
                .ok()
                .and_then(|e| serde_json::from_slice::<$t>(&e).ok());
            assert!(
                again.as_ref() == Some(v),
                "stored record did not round-trip"
            );
        })
    };
}

fuzz_target!(|data: &[u8]| {
    for scheme in Scheme::ALL {
        if let Ok(key) = LoadedKey::from_bytes(scheme, data) {
            let enc = key.to_bytes();
            let again = LoadedKey::from_bytes(scheme, &enc).map(|k| k.to_bytes());
            assert!(
                again.is_ok_and(|e| e == enc),
                "{scheme} key did not round-trip"
            );
        }
    }

    let kek = Kek::from_bytes([7; 32]);
    if let Ok(pending) = PendingKey::decode("fuzzed", data) {
        let e = pending.encode().expect("a decoded pending key re-encodes");
        assert!(
            PendingKey::decode("re-encoded", &e).is_ok_and(|p| p == pending),
            "pending key did not round-trip"
        );
    }
    if let Ok(record) = KeyRecord::decode("fuzzed", data) {
        // A record from the store is checked, then its material opened: neither may panic.
        let _ = record.verify(&kek);
        let _ = kek.open(&record.key_id, &record.sealed);
        // What decodes re-encodes (binary) to the same record, unless a field of a JSON
        // record is too long for the binary form, which encoding then refuses.
        if let Ok(e) = record.encode() {
            let again = KeyRecord::decode("re-encoded", &e);
            assert!(
                again.is_ok_and(|r| r == record),
                "key record did not round-trip"
            );
        }
    }
    json_round_trip!(IdempotencyRecord, data);

    let chain = ChainKey::of(&kek);
    if let Ok(envelope) = Envelope::decode(0, data) {
        let again = envelope.encode().and_then(|e| Envelope::decode(0, &e));
        assert_eq!(again.ok(), Some(envelope));
    }
    if let Ok(checkpoint) = Checkpoint::decode(data) {
        let _ = checkpoint.verify(&chain);
        let again = checkpoint.encode().and_then(|e| Checkpoint::decode(&e));
        assert_eq!(again.ok(), Some(checkpoint));
    }
});
