#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]

pub mod accel;
pub mod batcher;
pub mod bench_accel;
pub mod client;
pub mod config;
pub mod engine;
mod error;
pub mod kek;
pub mod metrics;
pub mod server;
pub mod service;
pub mod store;

pub use error::Error;

/// Generated gRPC types and stubs for `tessera.v1`.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    tonic::include_proto!("tessera.v1");

    impl std::fmt::Debug for ImportKeyRequest {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("ImportKeyRequest")
                .field("scheme", &self.scheme)
                .field("secret_key", &"<redacted>")
                .field("threshold", &self.threshold)
                .field("parties", &self.parties)
                .field("label", &self.label)
                .finish()
        }
    }

    /// Encoded file descriptor set of the API, served by the reflection service.
    pub const FILE_DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/tessera_v1_descriptor.bin"));
}
