//! In-process API tests: the `GrpcApi` trait methods called directly over an `App` wired as
//! `tessera serve` wires it (in-memory store, CPU backend): request validation and the
//! error→status mapping (codes, messages, `google.rpc` details), idempotency, and the query
//! RPCs; every signature made is checked with independent verifiers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[path = "in_process/auth.rs"]
mod auth;
#[path = "in_process/ecdsa.rs"]
mod ecdsa;
#[path = "in_process/idempotency.rs"]
mod idempotency;
#[path = "in_process/queries.rs"]
mod queries;
#[path = "in_process/status_mapping.rs"]
mod status_mapping;
#[path = "in_process/validation.rs"]
mod validation;
