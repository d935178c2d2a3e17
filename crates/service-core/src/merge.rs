//! Concurrent signing requests for one key, combined into shared attempts (distributed FROST).
//!
//! Each attempt of a distributed signature costs a fixed amount beyond its per-message work:
//! a peer request and its reply, a policy check and a batch hand-off on every co-signer, a
//! quorum pick, pool look-ups. Under load many requests for the same key wait on the same
//! peers, so a [`Merger`] lets at most [`MAX_ROUNDS`] attempts run per group (key, client,
//! Taproot tweak) and queues the requests that arrive meanwhile; when an attempt ends, its
//! runner takes everything queued (up to [`MAX_MESSAGES`] messages) into the next. A request
//! that finds a free slot starts at once, so an idle service adds no delay.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

use tokio::sync::oneshot;

use crate::Error;
use crate::coordinator::{Cost, Signature};

/// Attempts that run at once per group.
pub const MAX_ROUNDS: usize = 8;
/// Messages an attempt takes from the queue (a request is never split: one larger than this
/// runs alone).
pub const MAX_MESSAGES: usize = 256;

/// What a request receives: its signatures, in order, and its share of the attempt's cost.
pub(crate) type Outcome = Result<(Vec<Signature>, Cost), Error>;

/// One request waiting for its signatures.
pub(crate) struct Waiter {
    /// The messages to sign.
    pub messages: Vec<Vec<u8>>,
    /// Where its outcome goes (a request that went away is not waited for).
    pub reply: oneshot::Sender<Outcome>,
}

/// The queues and running attempts of every group.
pub(crate) struct Merger<K> {
    groups: Mutex<HashMap<K, Group>>,
}

#[derive(Default)]
struct Group {
    running: usize,
    waiting: VecDeque<Waiter>,
}

impl<K: Hash + Eq + Clone> Merger<K> {
    pub(crate) fn new() -> Self {
        Self {
            groups: Mutex::new(HashMap::new()),
        }
    }

    /// Queues `waiter` under `key`. When the group has a free slot the caller must run an
    /// attempt for the returned requests (this one among them) and then call
    /// [`Merger::next`] until it answers `None`.
    pub(crate) fn join(&self, key: &K, waiter: Waiter) -> Option<Vec<Waiter>> {
        let mut groups = lock(&self.groups);
        let group = groups.entry(key.clone()).or_default();
        group.waiting.push_back(waiter);
        if group.running >= MAX_ROUNDS {
            return None;
        }
        group.running += 1;
        Some(take(&mut group.waiting))
    }

    /// After an attempt for `key`: the requests queued meanwhile, for the next attempt; or
    /// `None` when none are, and the caller's slot is free again.
    pub(crate) fn next(&self, key: &K) -> Option<Vec<Waiter>> {
        let mut groups = lock(&self.groups);
        let group = groups.get_mut(key)?;
        if !group.waiting.is_empty() {
            return Some(take(&mut group.waiting));
        }
        group.running = group.running.saturating_sub(1);
        if group.running == 0 {
            groups.remove(key);
        }
        None
    }
}

/// The first waiters whose messages fit in [`MAX_MESSAGES`] (at least one).
fn take(waiting: &mut VecDeque<Waiter>) -> Vec<Waiter> {
    let mut out = Vec::new();
    let mut messages = 0;
    while let Some(w) = waiting.front() {
        if !out.is_empty() && messages + w.messages.len() > MAX_MESSAGES {
            break;
        }
        messages += w.messages.len();
        out.extend(waiting.pop_front());
    }
    out
}

/// Hands an attempt's outcome to its requests: each its own signatures (in the order of
/// its messages) and its share of the cost, by message count; a failed attempt's error to
/// every one of them.
pub(crate) fn answer(waiters: Vec<Waiter>, outcome: Outcome) {
    match outcome {
        Ok((signatures, cost)) => {
            let total = signatures.len().max(1) as f64;
            let mut signatures = signatures.into_iter();
            for w in waiters {
                let mine: Vec<Signature> = signatures.by_ref().take(w.messages.len()).collect();
                let share = Cost {
                    cpu_seconds: cost.cpu_seconds * mine.len() as f64 / total,
                    backend: cost.backend,
                };
                let _request_gone = w.reply.send(Ok((mine, share)));
            }
        }
        Err(e) => {
            let mut waiters = waiters.into_iter();
            let first = waiters.next();
            for w in waiters {
                let _request_gone = w.reply.send(Err(e.shared()));
            }
            if let Some(w) = first {
                let _request_gone = w.reply.send(Err(e));
            }
        }
    }
}

impl<K> std::fmt::Debug for Merger<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Merger")
            .field("groups", &lock(&self.groups).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn waiter(n: usize) -> (Waiter, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        (
            Waiter {
                messages: vec![vec![0]; n],
                reply: tx,
            },
            rx,
        )
    }

    fn sig(k: u8) -> Signature {
        Signature {
            signature: vec![k; 64],
            verifying_key: vec![0; 32],
            recovery_id: 0,
        }
    }

    #[test]
    fn a_free_slot_runs_at_once_and_a_full_group_queues_for_the_next_attempt() {
        let m = Merger::<u8>::new();
        for _ in 0..MAX_ROUNDS {
            let batch = m.join(&1, waiter(1).0).unwrap();
            assert_eq!(batch.len(), 1);
        }
        // Every slot is taken: these wait, and the next attempt takes them in order, up to
        // MAX_MESSAGES messages (a request is not split).
        assert!(m.join(&1, waiter(MAX_MESSAGES - 1).0).is_none());
        assert!(m.join(&1, waiter(2).0).is_none());
        assert!(m.join(&1, waiter(1).0).is_none());
        // Another group has its own slots.
        assert!(m.join(&2, waiter(1).0).is_some());
        let next = m.next(&1).unwrap();
        assert_eq!(
            next.iter().map(|w| w.messages.len()).collect::<Vec<_>>(),
            [MAX_MESSAGES - 1]
        );
        assert_eq!(m.next(&1).unwrap().len(), 2);
        // Nothing queued: each runner's slot frees, and the group goes once all are free.
        for _ in 0..MAX_ROUNDS {
            assert!(m.next(&1).is_none());
        }
        assert!(!lock(&m.groups).contains_key(&1));
        assert_eq!(m.join(&1, waiter(1).0).unwrap().len(), 1);
    }

    #[test]
    fn outcomes_go_to_each_request_in_order_with_its_share_of_the_cost() {
        let (a, ra) = waiter(2);
        let (b, rb) = waiter(1);
        let cost = Cost {
            cpu_seconds: 3.0,
            backend: Some("cpu"),
        };
        answer(vec![a, b], Ok((vec![sig(1), sig(2), sig(3)], cost)));
        let (sa, ca) = ra.blocking_recv().unwrap().unwrap();
        let (sb, cb) = rb.blocking_recv().unwrap().unwrap();
        assert_eq!(sa, vec![sig(1), sig(2)]);
        assert_eq!(sb, vec![sig(3)]);
        assert_eq!((ca.cpu_seconds, cb.cpu_seconds), (2.0, 1.0));

        let (a, ra) = waiter(1);
        let (b, rb) = waiter(1);
        answer(
            vec![a, b],
            Err(Error::QuorumUnavailable {
                need: 2,
                reachable: vec![1],
                unreachable: vec![2, 3],
            }),
        );
        for rx in [ra, rb] {
            let e = rx.blocking_recv().unwrap().unwrap_err();
            assert!(matches!(e, Error::QuorumUnavailable { need: 2, .. }), "{e}");
        }
    }
}
