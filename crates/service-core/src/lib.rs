#![doc = include_str!("../README.md")]
//!
//! # Map
//!
//! - [`App`] — the use cases; [`Outcome`] and [`Failure`] carry results back to adapters.
//! - [`ports`] — storage ([`KeyRepository`], [`IdempotencyStore`], [`AuditLog`]) and
//!   [`Sealer`]; [`Kek`] is the ChaCha20-Poly1305 sealer.
//! - [`Coordinator`] — who runs the parties; [`Embedded`] runs them all in this process,
//!   [`Distributed`] one per node, each node's [`Party`] answering its peers over the
//!   [`peer`] port.
//! - [`batcher`] — the dynamic batcher and its [`Queue`]s; [`Observer`] — the metrics port.
//! - [`audit`] — audit events and their hash chain.
//! - [`auth`] — authentication modes, clients and their policies (default deny).

mod admission;
pub mod app;
pub mod audit;
pub mod auth;
pub mod background;
pub mod batcher;
pub mod chain;
mod coordinator;
mod distributed;
mod error;
mod jobs;
mod kek;
mod keys;
mod merge;
mod observe;
mod party;
pub mod peer;
pub mod ports;
mod requests;
mod rng;
mod scheme;

#[cfg(any(test, feature = "test-kit"))]
pub mod kit;
#[cfg(any(test, feature = "test-kit"))]
pub mod memory;

pub use app::{App, AppParts, Failure, KeyView, Limits, Outcome, UseCase};
pub use auth::{Auth, AuthMode, Caller, Clients, Credential, Policy};
pub use coordinator::{
    AppSetup, BoxFuture, ClusterSetup, Coordinator, Cost, Embedded, JobBatcher, PresignPool,
    Signature, process_batch,
};
pub use distributed::{
    BreakerState, ClusterSettings, Distributed, MAX_ATTEMPTS, OPEN_FOR, SETTLE_EVERY, TRIP_AFTER,
};
pub use error::{Error, ErrorKind, error_chain};
pub use jobs::{Job, JobOutput};
pub use kek::{Kek, KekFormatError};
pub use keys::{LoadedKey, Taproot};
pub use observe::{NoObserver, Observer, PresignSource, Queue};
pub use party::{Fault, NONCE_TTL, Party, TestHooks};
pub use ports::{AuditLog, IdempotencyStore, KeyRepository, Sealer, Store, StoreError};
pub use scheme::{Scheme, UnknownScheme};
