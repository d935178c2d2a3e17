#![doc = include_str!("../README.md")]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod bitcoin_tx;
pub mod cluster;
pub mod ethereum_node;
pub mod npm;
pub mod proxy;
pub mod server;
pub mod solana_svm;
pub mod tls_front;
pub mod verify;

pub use cluster::Cluster;
pub use server::{Server, run_cli, signs_and_verifies, tessera_bin};
pub use verify::{bip340_ok, ecdsa_check, ed25519_ok, taproot_output_key};
