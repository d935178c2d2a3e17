#![doc = include_str!("../README.md")]
#![allow(missing_docs, clippy::all)]

tonic::include_proto!("tessera.v1");

/// The node-to-node protocol of distributed mode (`tessera.peer.v1`), served on the peer port
/// only, never on the public API port.
pub mod peer {
    tonic::include_proto!("tessera.peer.v1");
}

impl std::fmt::Debug for ImportKeyRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportKeyRequest")
            .field("scheme", &self.scheme)
            .field("secret_key", &"<redacted>")
            .field("threshold", &self.threshold)
            .field("parties", &self.parties)
            .field("label", &self.label)
            .field("idempotency_key", &self.idempotency_key)
            .finish()
    }
}

/// The canonical name of a gRPC code (`OK`, `INVALID_ARGUMENT`, …).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code;
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Encoded file descriptor set of the API, served by the reflection service.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/tessera_v1_descriptor.bin"));

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_request_debug_is_redacted() {
        let req = ImportKeyRequest {
            scheme: 1,
            secret_key: vec![0xab; 32],
            threshold: 2,
            parties: 3,
            label: "l".into(),
            idempotency_key: String::new(),
        };
        let text = format!("{req:?}");
        assert!(
            text.contains("<redacted>") && !text.contains("171"),
            "{text}"
        );
    }
}
