//! Fuzzes the REST gateway's JSON request bodies (crates/api-rest): the input is parsed as each
//! public body type of `api_rest::json` (`CreateKeyBody`, `ImportKeyBody`, `SignBody`,
//! `SignBatchBody`, `VerifyBody`) with `serde_json::from_slice`, as the gateway's handlers
//! parse a request body, and one that parses goes through the conversions the handlers apply
//! before a use case runs: `api_rest::json::scheme_of`, then the domain checks reachable
//! through `service-core`'s public functions (`app::check_shape`, `app::taproot_of`). The
//! router's query parsing and the use cases' private checks are not reached.
//!
//! Asserts: no parser or check panics; bytes (`api_rest::json::B64`, base64 in any of the
//! accepted alphabets and paddings) re-encode and decode to the same bytes; an accepted key
//! shape has `1 ≤ t ≤ n` as sent.

#![no_main]

use api_rest::json::{
    B64, CreateKeyBody, ImportKeyBody, SignBatchBody, SignBody, VerifyBody, scheme_of,
};
use libfuzzer_sys::fuzz_target;
use tessera_fuzz::{key_shape, taproot};

/// Checks that `b` survives its JSON encoding.
fn bytes_round_trip(b: &B64) {
    let again = serde_json::to_vec(b)
        .ok()
        .and_then(|e| serde_json::from_slice::<B64>(&e).ok());
    assert_eq!(again.as_ref(), Some(b));
}

fuzz_target!(|data: &[u8]| {
    if let Ok(b) = serde_json::from_slice::<CreateKeyBody>(data)
        && let Ok(scheme) = scheme_of("scheme", &b.scheme)
    {
        key_shape(scheme, b.threshold, b.parties, &b.label);
    }
    if let Ok(b) = serde_json::from_slice::<ImportKeyBody>(data) {
        bytes_round_trip(&b.secret_key);
        if let Ok(scheme) = scheme_of("scheme", &b.scheme) {
            key_shape(scheme, b.threshold, b.parties, &b.label);
        }
    }
    if let Ok(b) = serde_json::from_slice::<SignBody>(data) {
        bytes_round_trip(&b.message);
        taproot(b.taproot_merkle_root.as_ref().map(|r| r.0.as_slice()));
    }
    if let Ok(b) = serde_json::from_slice::<SignBatchBody>(data) {
        b.messages.iter().for_each(bytes_round_trip);
        taproot(b.taproot_merkle_root.as_ref().map(|r| r.0.as_slice()));
    }
    if let Ok(b) = serde_json::from_slice::<VerifyBody>(data) {
        [&b.public_key, &b.message, &b.signature]
            .into_iter()
            .for_each(bytes_round_trip);
        let _ = scheme_of("scheme", &b.scheme);
    }
});
