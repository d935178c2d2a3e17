//! Fuzzes the public gRPC API's request decoding (`tessera.v1`, crates/api-proto): every
//! request message of `SignerService` is prost-decoded from the input, and one that decodes
//! goes through the conversions crates/api-grpc applies before a use case runs: its public
//! `api_grpc::scheme_from_proto` and the domain checks reachable through `service-core`'s
//! public functions (`app::check_shape` for key creation and import, `app::taproot_of` for
//! signing). The handlers' other checks (key id and idempotency key lengths) are private to
//! `service_core::App` and are not reached here.
//!
//! Asserts: no decoder or check panics; a message that decodes re-encodes, and the encoding
//! decodes to an equal message; an accepted key shape has `1 ≤ t ≤ n` as sent.

#![no_main]

use api_proto::{
    CreateKeyRequest, GetKeyRequest, GetStatusRequest, ImportKeyRequest, ListKeysRequest,
    SignBatchRequest, SignRequest, VerifyRequest,
};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use tessera_fuzz::{key_shape, taproot};

/// Decodes `data` as a `T`; on success checks the round trip and returns the message.
fn decode<T: Message + Default + PartialEq>(data: &[u8]) -> Option<T> {
    let m = T::decode(data).ok()?;
    assert!(
        T::decode(m.encode_to_vec().as_slice()).is_ok_and(|back| back == m),
        "{} did not round-trip",
        std::any::type_name::<T>()
    );
    Some(m)
}

fuzz_target!(|data: &[u8]| {
    if let Some(r) = decode::<CreateKeyRequest>(data)
        && let Ok(scheme) = api_grpc::scheme_from_proto("scheme", r.scheme)
    {
        key_shape(scheme, r.threshold, r.parties, &r.label);
    }
    if let Some(r) = decode::<ImportKeyRequest>(data)
        && let Ok(scheme) = api_grpc::scheme_from_proto("scheme", r.scheme)
    {
        key_shape(scheme, r.threshold, r.parties, &r.label);
    }
    if let Some(r) = decode::<SignRequest>(data) {
        taproot(r.taproot_merkle_root.as_deref());
    }
    if let Some(r) = decode::<SignBatchRequest>(data) {
        taproot(r.taproot_merkle_root.as_deref());
    }
    if let Some(r) = decode::<VerifyRequest>(data) {
        let _ = api_grpc::scheme_from_proto("scheme", r.scheme);
    }
    decode::<GetKeyRequest>(data);
    decode::<ListKeysRequest>(data);
    decode::<GetStatusRequest>(data);
});
