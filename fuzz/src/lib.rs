//! What the API targets (`grpc_requests`, `rest_bodies`) share: the domain checks a request
//! reaches once its wire format decoded, through `service-core`'s public functions, under the
//! limits a node runs with by default (crates/signer-service/src/config.rs).

use service_core::app::{check_shape, taproot_of};
use service_core::{Limits, Scheme};

/// The default request limits of a node.
pub const LIMITS: Limits = Limits {
    max_message_bytes: 64 * 1024,
    max_batch_messages: 4096,
    max_parties_frost: 64,
    max_parties_ecdsa: 16,
    max_concurrent_keygen: 2,
    max_batch_items_in_flight: 8192,
};

/// The checks of a `CreateKey` or `ImportKey` request's shape; an accepted shape must fit the
/// protocols' `u16` parameters with `1 ≤ t ≤ n`.
pub fn key_shape(scheme: Scheme, threshold: u32, parties: u32, label: &str) {
    if let Ok((t, n)) = check_shape(scheme, threshold, parties, label, &LIMITS) {
        assert!(1 <= t && t <= n, "accepted t = {t}, n = {n}");
        assert!(u32::from(t) == threshold && u32::from(n) == parties);
    }
}

/// The Taproot option of a `Sign`/`SignBatch` request, for a key of every scheme (the scheme
/// is the key's, not the request's).
pub fn taproot(root: Option<&[u8]>) {
    for scheme in Scheme::ALL {
        let _ = taproot_of(scheme, root);
    }
}
