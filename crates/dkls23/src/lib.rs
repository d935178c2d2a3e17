#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used, clippy::expect_used))]

mod codec;
pub mod dkg;
pub mod embedded;
mod error;
mod fq;
mod hash;
mod hedge;
pub mod keygen;
pub mod mul;
pub mod ot;
pub mod sign;
pub mod verify;
pub mod wire;

pub use embedded::Presignature;
pub use error::Error;
pub use keygen::{KeySet, KeyShare, PartyId};
pub use sign::PartyPresignature;
pub use verify::verify_prehash_batch;

#[cfg(test)]
mod tests;
