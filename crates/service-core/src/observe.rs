//! What the application reports about its own work: the metrics port. The `telemetry`
//! adapter turns these calls into Prometheus series; tests use [`NoObserver`].

use std::time::Duration;

use crate::Scheme;

/// The batcher's queues: one per (operation, scheme).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Signing with a key of this scheme.
    Sign(Scheme),
    /// Verifying signatures of this scheme.
    Verify(Scheme),
    /// Distributed mode: this node's signature shares, for sessions coordinated anywhere.
    Share(Scheme),
    /// Distributed mode: aggregating and verifying the signatures this node coordinates.
    Aggregate(Scheme),
    /// Embedded threshold ECDSA for a key whose pool had no presignature left: each item
    /// presigns before it signs (milliseconds, where a pooled signature takes about 0.1 ms).
    EcdsaOnDemand,
}

impl Queue {
    /// Every queue, in index order.
    pub const ALL: [Queue; 13] = [
        Queue::Sign(Scheme::Ed25519),
        Queue::Sign(Scheme::Bip340),
        Queue::Sign(Scheme::EcdsaSecp256k1),
        Queue::Verify(Scheme::Ed25519),
        Queue::Verify(Scheme::Bip340),
        Queue::Verify(Scheme::EcdsaSecp256k1),
        Queue::Share(Scheme::Ed25519),
        Queue::Share(Scheme::Bip340),
        Queue::Share(Scheme::EcdsaSecp256k1),
        Queue::Aggregate(Scheme::Ed25519),
        Queue::Aggregate(Scheme::Bip340),
        Queue::Aggregate(Scheme::EcdsaSecp256k1),
        Queue::EcdsaOnDemand,
    ];

    /// Position in [`Queue::ALL`].
    pub fn index(self) -> usize {
        let scheme = |s: Scheme| match s {
            Scheme::Ed25519 => 0,
            Scheme::Bip340 => 1,
            Scheme::EcdsaSecp256k1 => 2,
        };
        match self {
            Queue::Sign(s) => scheme(s),
            Queue::Verify(s) => 3 + scheme(s),
            Queue::Share(s) => 6 + scheme(s),
            Queue::Aggregate(s) => 9 + scheme(s),
            Queue::EcdsaOnDemand => 12,
        }
    }

    /// The operation label (`sign`, `verify`, `share`, `aggregate` or `sign_on_demand`).
    pub fn op(self) -> &'static str {
        match self {
            Queue::Sign(_) => "sign",
            Queue::Verify(_) => "verify",
            Queue::Share(_) => "share",
            Queue::Aggregate(_) => "aggregate",
            Queue::EcdsaOnDemand => "sign_on_demand",
        }
    }

    /// The queue's scheme.
    pub fn scheme(self) -> Scheme {
        match self {
            Queue::Sign(s) | Queue::Verify(s) | Queue::Share(s) | Queue::Aggregate(s) => s,
            Queue::EcdsaOnDemand => Scheme::EcdsaSecp256k1,
        }
    }

    /// Whether the queue's items are known to be expensive before any is measured: its
    /// batches then never run on the workers that serve signatures.
    pub fn expensive(self) -> bool {
        self == Queue::EcdsaOnDemand
    }
}

/// Where a threshold-ECDSA presignature came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PresignSource {
    /// Taken from the key's pool.
    Pool,
    /// Made while the signature waited, because the pool was empty.
    OnDemand,
}

impl PresignSource {
    /// The metric label (`pool` or `on_demand`).
    pub fn as_str(self) -> &'static str {
        match self {
            PresignSource::Pool => "pool",
            PresignSource::OnDemand => "on_demand",
        }
    }
}

/// Receives the application's measurements. Implementations must be cheap and must never
/// block: they are called on the batcher's worker threads and on request paths.
pub trait Observer: Send + Sync + std::fmt::Debug {
    /// Items now waiting over all batcher queues.
    fn queue_depth(&self, depth: usize);
    /// A batch of `size` items left `queue`; its oldest item had waited `oldest_wait`.
    fn batch_started(&self, queue: Queue, size: usize, oldest_wait: Duration);
    /// The number of pooled presignatures changed by `delta` (over all keys).
    fn presignatures_ready(&self, delta: i64);
    /// One presignature was consumed.
    fn presignature_used(&self, source: PresignSource);
    /// `count` signatures of `scheme` were issued and recorded.
    fn signatures_issued(&self, scheme: Scheme, count: u64);
    /// A call of `kind` to peer node `peer` took `elapsed` and succeeded or not (distributed
    /// mode).
    fn peer_call(&self, _peer: u16, _kind: &'static str, _elapsed: Duration, _ok: bool) {}
    /// Peer `peer`'s circuit breaker is now in `state` (distributed mode).
    fn breaker_state(&self, _peer: u16, _state: crate::BreakerState) {}
    /// A session failed at `step` and was compensated (aborted on its parties).
    fn saga_compensated(&self, _step: &'static str) {}
    /// This node holds `count` shares of keys whose creator has not settled them yet
    /// (distributed mode).
    fn pending_key_shares(&self, _count: usize) {}
}

/// An [`Observer`] that drops everything (tests, tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoObserver;

impl Observer for NoObserver {
    fn queue_depth(&self, _depth: usize) {}
    fn batch_started(&self, _queue: Queue, _size: usize, _oldest_wait: Duration) {}
    fn presignatures_ready(&self, _delta: i64) {}
    fn presignature_used(&self, _source: PresignSource) {}
    fn signatures_issued(&self, _scheme: Scheme, _count: u64) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_indices_follow_all() {
        for (i, q) in Queue::ALL.iter().enumerate() {
            assert_eq!(q.index(), i);
        }
    }
}
