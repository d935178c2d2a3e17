//! Fuzzes the node-to-node wire format of distributed mode: the `tessera.peer.v1` envelopes
//! (`ExchangeRequest`, `ExchangeResponse`, prost) a peer port receives, and the postcard
//! encodings of `service_core::peer::PeerRequest` and `PeerReply` inside them, as
//! `peer-grpc`'s server and client decode them.
//!
//! Asserts: no decoder panics (or overflows, or exhausts memory); a request or reply that
//! decodes re-encodes, and the re-encoding decodes to the same value.

#![no_main]

use api_proto::peer::{ExchangeRequest, ExchangeResponse};
use libfuzzer_sys::fuzz_target;
use prost::Message;
use service_core::peer::{PeerReply, PeerRequest};

fn request(b: &[u8]) {
    if let Some(req) = PeerRequest::decode(b) {
        let again = req.encode().ok().and_then(|e| PeerRequest::decode(&e));
        assert_eq!(again, Some(req));
    }
}

fn reply(b: &[u8]) {
    if let Some(rep) = PeerReply::decode(b) {
        let again = rep.encode().ok().and_then(|e| PeerReply::decode(&e));
        assert_eq!(again, Some(rep));
    }
}

fuzz_target!(|data: &[u8]| {
    request(data);
    reply(data);
    if let Ok(envelope) = ExchangeRequest::decode(data) {
        envelope.requests.iter().for_each(|r| request(r));
    }
    if let Ok(envelope) = ExchangeResponse::decode(data) {
        envelope.replies.iter().for_each(|r| reply(r));
    }
});
