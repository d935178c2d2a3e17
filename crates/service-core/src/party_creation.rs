//! Key creation across nodes, settled by its creator (a two-phase commit).
//!
//! A co-signing node stores its share of a new key as *pending* ([`PendingKey`]): not listed,
//! not counted, not signed with by its own coordinator. The creating node (the one that ran
//! the key generation or import) stores its own share; that is the commit point. It then tells
//! every other node ([`PeerRequest::KeySettled`]) to commit the pending share into its keys,
//! or, when it failed or stored nothing, to delete it. A node that missed that message (the
//! creator stopped, or the message was lost) asks the creator how the creation stands
//! ([`PeerRequest::CreationState`]) when the key is first needed and in a background sweep,
//! and settles on its answer. It deletes a pending share only when the creator says it holds
//! no such key and is not making it, and every other node says it did not store it either:
//! a creator that committed a key and then lost its data directory answers as if it had not,
//! and another node that stored the key shows otherwise. So a share is never lost while its
//! key may exist.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::joined;
use crate::keys::LoadedKey;
use crate::peer::{Creation, NewKey, PartyId, PeerReply, PeerRequest};
use crate::ports::{KeyOrigin, PendingKey};
use crate::{Error, Store};

use super::{Party, lock};

/// How long a creation this node started counts as running when it was never settled (its
/// request was cancelled between key generation and storing): after that, a peer that asks
/// hears [`Creation::Abandoned`]. Key generation takes seconds at most.
pub const CREATION_LIMIT: Duration = Duration::from_secs(600);

impl Party {
    /// The local coordinator starts creating `key_id`: until [`Party::end_creating`] (or
    /// for [`CREATION_LIMIT`]), a peer that asks how it stands hears [`Creation::Running`].
    pub(crate) fn begin_creating(&self, key_id: &str) {
        let mut c = lock(&self.creating);
        c.retain(|_, started| started.elapsed() < CREATION_LIMIT);
        c.insert(key_id.to_owned(), Instant::now());
    }

    /// The local coordinator has settled `key_id` (stored its share, or given up).
    pub(crate) fn end_creating(&self, key_id: &str) {
        lock(&self.creating).remove(key_id);
    }

    /// Seals and stores this node's share of a key that `creator` is making, as pending; it
    /// is cached (a threshold-ECDSA import refreshes its pairs before it is settled).
    pub(super) async fn store_pending(
        &self,
        key: NewKey,
        loaded: LoadedKey,
        origin: KeyOrigin,
        creator: PartyId,
    ) -> Result<(), Error> {
        let pending = PendingKey {
            record: self.record_of(&key, &loaded)?,
            origin,
            creator,
        };
        let store = Arc::clone(&self.store);
        joined(
            "pending key insert",
            tokio::task::spawn_blocking(move || Ok(store.insert_pending_key(&pending)?)).await,
        )?;
        self.unsettled.store(true, Ordering::Relaxed);
        tracing::info!(key_id = %key.key_id, scheme = %key.scheme, party = self.me, creator, ?origin, "stored this node's share of a new key, pending until its creator settles it");
        lock(&self.keys).insert(key.key_id, Arc::new(loaded));
        Ok(())
    }

    /// `KeySettled` from `from`: commits or deletes this node's pending share of `key_id`.
    /// Only the key's creator may settle it; settling a key twice changes nothing.
    pub(super) async fn key_settled(
        &self,
        from: PartyId,
        key_id: String,
        committed: bool,
    ) -> Result<PeerReply, Error> {
        match self.pending(&key_id).await? {
            None => Ok(PeerReply::Done),
            Some(p) if p.creator != from => Err(Error::invalid(
                "key_id",
                format!(
                    "party {from} did not create key {key_id} (party {} did)",
                    p.creator
                ),
            )),
            Some(_) => {
                let outcome = if committed {
                    Creation::Committed
                } else {
                    Creation::Abandoned
                };
                self.settle(&key_id, outcome).await?;
                Ok(PeerReply::Done)
            }
        }
    }

    /// `CreationState`: how the creation of `key_id` stands here, at its creator.
    pub(super) async fn creation_state(&self, key_id: String) -> Result<PeerReply, Error> {
        let running = lock(&self.creating)
            .get(&key_id)
            .is_some_and(|started| started.elapsed() < CREATION_LIMIT);
        if running {
            return Ok(PeerReply::Creation(Creation::Running));
        }
        let store = Arc::clone(&self.store);
        let stored = joined(
            "key lookup",
            tokio::task::spawn_blocking(move || Ok(store.get_key(&key_id)?)).await,
        )?;
        Ok(PeerReply::Creation(if stored.is_some() {
            Creation::Committed
        } else {
            Creation::Abandoned
        }))
    }

    /// Asks the creator of each pending share how its creation stands and settles the ones
    /// it has decided. Returns how many pending shares remain. Runs in the background while
    /// any may be pending (see [`Party::may_hold_pending`]).
    pub async fn settle_pending(&self) -> usize {
        self.unsettled.store(false, Ordering::Relaxed);
        let store = Arc::clone(&self.store);
        let pending = match joined(
            "pending key list",
            tokio::task::spawn_blocking(move || Ok(store.pending_keys()?)).await,
        ) {
            Ok(p) => p,
            Err(e) => {
                self.unsettled.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e.chain(), "pending keys not read; tried again later");
                return 0;
            }
        };
        let mut left = 0;
        for p in pending {
            if !self.resolve(&p).await {
                left += 1;
            }
        }
        if left > 0 {
            self.unsettled.store(true, Ordering::Relaxed);
        }
        left
    }

    /// Whether a pending share may be held (one was stored, or one was left by the last
    /// sweep or by an earlier run of the node).
    pub fn may_hold_pending(&self) -> bool {
        self.unsettled.load(Ordering::Relaxed)
    }

    /// Settles the pending share of `key_id` if there is one and its creator has decided;
    /// `true` when the key is now stored here.
    pub(super) async fn settle_if_pending(&self, key_id: &str) -> Result<bool, Error> {
        match self.pending(key_id).await? {
            None => Ok(false),
            Some(p) => {
                self.resolve(&p).await;
                let (store, id) = (Arc::clone(&self.store), key_id.to_owned());
                joined(
                    "key lookup",
                    tokio::task::spawn_blocking(move || Ok(store.get_key(&id)?.is_some())).await,
                )
            }
        }
    }

    /// The pending share of `key_id`, if this node holds one.
    async fn pending(&self, key_id: &str) -> Result<Option<PendingKey>, Error> {
        let (store, id) = (Arc::clone(&self.store), key_id.to_owned());
        joined(
            "pending key lookup",
            tokio::task::spawn_blocking(move || Ok(store.get_pending_key(&id)?)).await,
        )
    }

    /// Asks `p`'s creator how its creation stands and settles it; `true` when settled.
    async fn resolve(&self, p: &PendingKey) -> bool {
        let key_id = &p.record.key_id;
        let answer = self
            .link
            .call(
                p.creator,
                PeerRequest::CreationState {
                    key_id: key_id.clone(),
                },
                self.deadline,
            )
            .await;
        let outcome = match answer {
            Ok(PeerReply::Creation(Creation::Committed)) => Creation::Committed,
            Ok(PeerReply::Creation(Creation::Abandoned)) => match self.held_elsewhere(p).await {
                // The creator holds no such key, yet another node stored it: the creator
                // committed it and has since lost its store.
                Some(holder) if holder != 0 => {
                    tracing::warn!(
                        key_id,
                        creator = p.creator,
                        holder,
                        "the creator of a pending key no longer holds it, but another node stored it: committing (has the creator lost its data directory?)"
                    );
                    Creation::Committed
                }
                Some(_) => Creation::Abandoned,
                None => return false,
            },
            Ok(PeerReply::Creation(Creation::Running)) => return false,
            Ok(other) => {
                tracing::warn!(
                    key_id,
                    creator = p.creator,
                    ?other,
                    "unexpected answer about a pending key; kept pending"
                );
                return false;
            }
            Err(e) => {
                tracing::debug!(key_id, creator = p.creator, error = %e, "the creator of a pending key did not answer; kept pending");
                return false;
            }
        };
        match self.settle(key_id, outcome).await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(key_id, error = %e.chain(), "pending key not settled; tried again later");
                false
            }
        }
    }

    /// Whether a node other than `p`'s creator stored `p`'s key: `Some(node)` for the first
    /// that did, `Some(0)` when every one answered that it did not, `None` when one could not
    /// be asked (nothing is deleted then).
    async fn held_elsewhere(&self, p: &PendingKey) -> Option<PartyId> {
        let mut unknown = false;
        for &peer in self.peers.iter().filter(|q| **q != p.creator) {
            let answer = self
                .link
                .call(
                    peer,
                    PeerRequest::CreationState {
                        key_id: p.record.key_id.clone(),
                    },
                    self.deadline,
                )
                .await;
            match answer {
                Ok(PeerReply::Creation(Creation::Committed)) => return Some(peer),
                Ok(PeerReply::Creation(Creation::Abandoned)) => {}
                _ => unknown = true,
            }
        }
        (!unknown).then_some(0)
    }

    /// Commits or deletes the pending share of `key_id`.
    async fn settle(&self, key_id: &str, outcome: Creation) -> Result<(), Error> {
        let (store, id) = (Arc::clone(&self.store), key_id.to_owned());
        let commit = outcome == Creation::Committed;
        let changed = joined(
            "pending key settle",
            tokio::task::spawn_blocking(move || {
                let s: &dyn Store = store.as_ref();
                Ok(if commit {
                    s.commit_pending_key(&id)?
                } else {
                    s.discard_pending_key(&id)?
                })
            })
            .await,
        )?;
        if !changed {
            return Ok(());
        }
        if commit {
            tracing::info!(
                key_id,
                party = self.me,
                "pending share committed: its creator stored the key"
            );
        } else {
            lock(&self.keys).remove(key_id);
            tracing::warn!(
                key_id,
                party = self.me,
                "pending share deleted: its creator did not store the key"
            );
        }
        Ok(())
    }
}
