#![doc = include_str!("../README.md")]

pub mod client;
pub mod server;
pub mod tls;

pub use client::GrpcPeers;
pub use server::{PeerServer, serve};
pub use tls::{ClusterCerts, NodeCert, NodeTls, TlsError, generate_cluster, node_name};

/// Largest gRPC message either end sends or accepts (an envelope or its reply).
pub const MAX_MESSAGE_BYTES: usize = 16 * 1024 * 1024;
/// An envelope is closed once its requests reach this size.
pub const MAX_ENVELOPE_BYTES: usize = 4 * 1024 * 1024;
