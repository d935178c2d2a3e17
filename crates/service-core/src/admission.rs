//! Admission per request class, so that one class cannot take the service from another: key
//! generation (CreateKey, ImportKey) runs at most `limits.max_concurrent_keygen` at a time, and
//! SignBatch requests together hold at most `limits.max_batch_items_in_flight` messages, which
//! leaves the rest of the batcher's queue to single-message Sign requests. A request waits up
//! to [`CLASS_WAIT`] for room, then gets RESOURCE_EXHAUSTED with a retry delay.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::Error;

/// The longest a request waits for room in its class.
pub const CLASS_WAIT: Duration = Duration::from_secs(5);

/// The retry delay suggested when a class stays full.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// A bounded class of requests, weighted (each request takes as many units as it asks for).
#[derive(Debug)]
pub struct Gate {
    class: &'static str,
    units: Arc<Semaphore>,
    capacity: usize,
    wait: Duration,
}

impl Gate {
    /// A class of `capacity` units; a request waits up to `wait` for its units.
    pub fn new(class: &'static str, capacity: usize, wait: Duration) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            class,
            units: Arc::new(Semaphore::new(capacity)),
            capacity,
            wait,
        }
    }

    /// Takes `units` (at least one, at most the capacity) until the returned permit drops.
    pub async fn enter(&self, units: usize) -> Result<OwnedSemaphorePermit, Error> {
        let n = u32::try_from(units.clamp(1, self.capacity)).unwrap_or(u32::MAX);
        match tokio::time::timeout(self.wait, Arc::clone(&self.units).acquire_many_owned(n)).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(Error::ShuttingDown),
            Err(_) => Err(Error::Busy {
                class: self.class,
                capacity: self.capacity,
                retry_after: RETRY_AFTER,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn a_full_class_answers_busy_after_its_wait_and_frees_on_drop() {
        let g = Gate::new("key generation", 2, Duration::from_millis(50));
        let a = g.enter(1).await.unwrap();
        let _b = g.enter(1).await.unwrap();
        match g.enter(1).await {
            Err(Error::Busy {
                class: "key generation",
                capacity: 2,
                retry_after,
            }) => assert!(retry_after > Duration::ZERO),
            other => panic!("{other:?}"),
        }
        drop(a);
        assert!(
            g.enter(1).await.is_ok(),
            "room again once a request is done"
        );
    }

    #[tokio::test]
    async fn weighted_requests_share_the_capacity_and_never_exceed_it() {
        let g = Gate::new("batch messages", 100, Duration::from_millis(50));
        let big = g.enter(70).await.unwrap();
        assert!(g.enter(40).await.is_err(), "70 + 40 > 100");
        let small = g.enter(30).await.unwrap();
        drop((big, small));
        let _huge = g.enter(1_000).await.unwrap(); // clamped to the capacity, not refused
        assert!(g.enter(1).await.is_err());
    }
}
