//! The storage conformance suite: generic checks of the [`Store`] contract that every
//! storage adapter runs through a one-line test (`check_all(&|| open(dir))`). `open` must
//! return the same storage each time it is called (reopened from disk for durable adapters,
//! so the checks also cover persistence); the suite drops one handle before it opens the next,
//! and starts from an empty store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use crate::audit::Event;
use crate::ports::{
    IdempotencyEntry, IdempotencyRecord, KeyOrigin, KeyRecord, PendingKey, SignatureRecord,
    StoreError,
};
use crate::{Scheme, Store};

/// A key record with recognisable contents.
pub fn record(key_id: &str) -> KeyRecord {
    KeyRecord {
        key_id: key_id.into(),
        scheme: Scheme::Ed25519,
        threshold: 2,
        parties: 3,
        public_key: vec![1; 32],
        label: format!("label of {key_id}"),
        created_at_ms: 5,
        owner: format!("owner of {key_id}"),
        sealed: format!("sealed {key_id}").into_bytes(),
        mac: Vec::new(),
    }
}

fn entry(scope: &str, key: &str, response: u8) -> IdempotencyEntry {
    IdempotencyEntry {
        scope: scope.into(),
        key: key.into(),
        record: IdempotencyRecord {
            fingerprint: vec![9; 32],
            response: vec![response],
            created_at_ms: 1_000 + u64::from(response),
        },
    }
}

/// Runs every check in order on one storage.
pub fn check_all(open: &dyn Fn() -> Arc<dyn Store>) {
    check_keys_round_trip_and_list_in_order(open);
    check_duplicate_key_ids_are_refused(open);
    check_signature_idempotency_first_writer_wins(open);
    check_key_idempotency_first_writer_wins(open);
    check_audit_chain_counts_every_event(open);
    check_access_decisions_are_chained(open);
    check_idempotency_records_expire(open);
    check_key_material_is_replaced_in_place(open);
    check_pruned_audit_chain_verifies_and_continues(open);
    check_pending_keys_are_hidden_until_settled(open);
}

/// Keys survive reopening, list in id order from a cursor, and unknown ids are `None`.
pub fn check_keys_round_trip_and_list_in_order(open: &dyn Fn() -> Arc<dyn Store>) {
    {
        let s = open();
        for id in ["b", "a", "c"] {
            assert_eq!(
                s.insert_key(&record(id), KeyOrigin::Dkg, None).unwrap(),
                None
            );
        }
    }
    let s = open();
    assert_eq!(s.key_count().unwrap(), 3);
    assert_eq!(s.get_key("b").unwrap(), Some(record("b")));
    assert_eq!(s.get_key("zz").unwrap(), None);
    let ids = |after: Option<&str>, limit| -> Vec<String> {
        s.list_keys(after, limit)
            .unwrap()
            .into_iter()
            .map(|r| r.key_id)
            .collect()
    };
    assert_eq!(ids(None, 2), ["a", "b"]);
    assert_eq!(ids(Some("b"), 2), ["c"]);
    assert!(ids(Some("c"), 2).is_empty());
    let events = s.events(None, 10).unwrap();
    assert_eq!(events.len(), 3);
    assert!(
        matches!(&events[0].1, Event::KeyCreated { key_id, origin: KeyOrigin::Dkg, client, .. }
            if key_id == "b" && client == "owner of b")
    );
    assert_eq!(s.events(Some(0), 10).unwrap().len(), 2);
}

/// A second key with an existing id is refused and changes nothing.
pub fn check_duplicate_key_ids_are_refused(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    let before = s.key_count().unwrap();
    let mut other = record("a");
    other.label = "impostor".into();
    assert!(matches!(
        s.insert_key(&other, KeyOrigin::Import, None),
        Err(StoreError::DuplicateKey(id)) if id == "a"
    ));
    assert_eq!(s.key_count().unwrap(), before);
    assert_eq!(s.get_key("a").unwrap(), Some(record("a")));
}

/// The first idempotency record of a (key, idempotency key) wins; a duplicate writes nothing
/// and gets the first record back; other scopes are separate.
pub fn check_signature_idempotency_first_writer_wins(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    let events_before = s.verify_audit_chain().unwrap();
    let rec = |resp: u8| SignatureRecord {
        key_id: "k".into(),
        client: "alice".into(),
        message_hashes: vec![[resp; 32]],
        idempotency: Some(entry("k", "req-1", resp)),
        transaction: Some(summary()),
    };
    assert_eq!(s.record_signatures(rec(1)).unwrap(), None);
    let existing = s.record_signatures(rec(2)).unwrap().unwrap();
    assert_eq!(existing.response, vec![1]);
    drop(s);
    let s = open();
    assert_eq!(
        s.get_idempotency("k", "req-1").unwrap().unwrap().response,
        vec![1]
    );
    assert!(s.get_idempotency("other", "req-1").unwrap().is_none());
    assert_eq!(
        s.verify_audit_chain().unwrap(),
        events_before + 1,
        "the duplicate wrote no event"
    );
    let last = s.events(events_before.checked_sub(1), 10).unwrap();
    assert!(
        matches!(&last[..], [(_, Event::SignatureIssued { message_sha256, client, transaction, .. })]
        if *message_sha256 == hex::encode([1u8; 32]) && client == "alice"
            && transaction.as_ref() == Some(&summary())),
        "the event carries the transaction summary through the store"
    );
}

fn summary() -> crate::chain::TxSummary {
    crate::chain::TxSummary {
        chain: crate::chain::ChainKind::Bitcoin,
        kind: "psbt".into(),
        network: Some("regtest".into()),
        transfers: vec![crate::chain::TransferView {
            to: "bcrt1qexample".into(),
            amount: "1000".into(),
        }],
        fee: Some("141".into()),
    }
}

/// A key created with an idempotency key is stored with its record in one step; a retry with
/// the same key stores nothing (no orphan key) and gets the first record back.
pub fn check_key_idempotency_first_writer_wins(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    let keys_before = s.key_count().unwrap();
    let first = entry("CreateKey", "create-1", 7);
    assert_eq!(
        s.insert_key(&record("k-first"), KeyOrigin::Dkg, Some(&first))
            .unwrap(),
        None
    );
    let retry = entry("CreateKey", "create-1", 8);
    let existing = s
        .insert_key(&record("k-retry"), KeyOrigin::Dkg, Some(&retry))
        .unwrap()
        .unwrap();
    assert_eq!(existing.response, vec![7]);
    drop(s);
    let s = open();
    assert_eq!(s.key_count().unwrap(), keys_before + 1);
    assert!(s.get_key("k-retry").unwrap().is_none(), "no orphan key");
    assert!(s.get_key("k-first").unwrap().is_some());
    assert_eq!(
        s.get_idempotency("CreateKey", "create-1")
            .unwrap()
            .unwrap()
            .response,
        vec![7]
    );
}

/// Every event is chained: the verified count equals the number of events written.
pub fn check_audit_chain_counts_every_event(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    let before = s.verify_audit_chain().unwrap();
    for i in 0..3u8 {
        s.record_signatures(SignatureRecord {
            key_id: "k1".into(),
            client: String::new(),
            message_hashes: vec![[i; 32], [i + 10; 32]],
            idempotency: None,
            transaction: None,
        })
        .unwrap();
    }
    drop(s);
    let s = open();
    assert_eq!(s.verify_audit_chain().unwrap(), before + 6);
    assert_eq!(s.events(None, usize::MAX).unwrap().len() as u64, before + 6);
}

/// An access decision is appended to the same chain and survives reopening.
pub fn check_access_decisions_are_chained(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    let before = s.verify_audit_chain().unwrap();
    let denied = Event::AccessDenied {
        client: "mallory".into(),
        action: "Sign".into(),
        key_id: Some("k1".into()),
        at_ms: 9,
    };
    s.record_event(denied.clone()).unwrap();
    drop(s);
    let s = open();
    assert_eq!(s.verify_audit_chain().unwrap(), before + 1);
    let last = s.events(before.checked_sub(1), 10).unwrap();
    assert_eq!(last.last().map(|(_, e)| e), Some(&denied));
}

/// Records made before the cut-off are deleted, later ones kept, and the deletion persists.
pub fn check_idempotency_records_expire(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    for (key, response) in [("old", 1u8), ("new", 200u8)] {
        let e = entry("retention", key, response);
        s.record_signatures(SignatureRecord {
            key_id: "retention".into(),
            client: String::new(),
            message_hashes: vec![[response; 32]],
            idempotency: Some(e),
            transaction: None,
        })
        .unwrap();
    }
    let pruned = s.prune_idempotency(1_100).unwrap();
    assert!(pruned >= 1, "the old record is pruned");
    drop(s);
    let s = open();
    assert_eq!(s.get_idempotency("retention", "old").unwrap(), None);
    assert_eq!(
        s.get_idempotency("retention", "new")
            .unwrap()
            .unwrap()
            .response,
        vec![200]
    );
    assert_eq!(s.prune_idempotency(1_100).unwrap(), 0);
}

/// Pruning the oldest events leaves a checkpoint: the kept chain verifies, new events chain
/// onto it, and both survive reopening; pruning what does not exist deletes nothing.
pub fn check_pruned_audit_chain_verifies_and_continues(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    for i in 0..4u8 {
        s.record_event(Event::AccessDenied {
            client: format!("client {i}"),
            action: "Sign".into(),
            key_id: None,
            at_ms: u64::from(i),
        })
        .unwrap();
    }
    let all = s.envelopes(None, usize::MAX).unwrap();
    let total = all.len() as u64;
    assert!(total >= 4);
    let (through, last_pruned) = &all[all.len() - 3];
    assert_eq!(s.prune_audit(*through).unwrap(), through + 1 - all[0].0);
    let kept = s.envelopes(None, usize::MAX).unwrap();
    assert_eq!(kept.len(), 2);
    assert_eq!(kept[0].0, through + 1);
    let cp = s.audit_checkpoint().unwrap().expect("a checkpoint");
    assert_eq!(cp.next_seq, through + 1);
    assert_eq!(cp.prev, last_pruned.hash);
    assert_eq!(s.verify_audit_chain().unwrap(), 2);
    assert_eq!(s.prune_audit(*through).unwrap(), 0);
    s.record_event(Event::AccessDenied {
        client: "after pruning".into(),
        action: "Sign".into(),
        key_id: None,
        at_ms: 99,
    })
    .unwrap();
    drop(s);
    let s = open();
    assert_eq!(s.verify_audit_chain().unwrap(), 3);
    let last = s.events(Some(through + 2), 10).unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].0, through + 3);
    // Everything pruned: the chain still continues from the checkpoint.
    let end = s.envelopes(None, usize::MAX).unwrap().last().unwrap().0;
    assert_eq!(s.prune_audit(end).unwrap(), 3);
    assert_eq!(s.verify_audit_chain().unwrap(), 0);
    s.record_event(Event::AccessDenied {
        client: "after pruning everything".into(),
        action: "Sign".into(),
        key_id: None,
        at_ms: 100,
    })
    .unwrap();
    assert_eq!(s.verify_audit_chain().unwrap(), 1);
    assert_eq!(s.envelopes(None, 1).unwrap()[0].0, end + 1);
}

/// A stored key's material is replaced in place and survives reopening; an unknown id is
/// refused and nothing is added.
pub fn check_key_material_is_replaced_in_place(open: &dyn Fn() -> Arc<dyn Store>) {
    let s = open();
    s.insert_key(&record("k-replace"), KeyOrigin::Dkg, None)
        .unwrap();
    let count = s.key_count().unwrap();
    let mut r = record("k-replace");
    r.sealed = b"rebuilt".to_vec();
    s.replace_key_material(&r).unwrap();
    assert!(matches!(
        s.replace_key_material(&record("k-absent")),
        Err(StoreError::UnknownKey(id)) if id == "k-absent"
    ));
    drop(s);
    let s = open();
    assert_eq!(s.get_key("k-replace").unwrap().unwrap().sealed, b"rebuilt");
    assert_eq!(s.get_key("k-absent").unwrap(), None);
    assert_eq!(s.key_count().unwrap(), count);
}

/// A pending key is neither listed nor counted nor found as a key, survives reopening with its
/// creator and origin, takes replaced material, and is settled once: committed (with its
/// `KeyCreated` event) or discarded. Ids are unique across keys and pending keys.
pub fn check_pending_keys_are_hidden_until_settled(open: &dyn Fn() -> Arc<dyn Store>) {
    let pending = |id: &str, origin| PendingKey {
        record: record(id),
        origin,
        creator: 3,
    };
    let (count, events) = {
        let s = open();
        let count = s.key_count().unwrap();
        let events = s.verify_audit_chain().unwrap();
        s.insert_pending_key(&pending("p-commit", KeyOrigin::Import))
            .unwrap();
        s.insert_pending_key(&pending("p-discard", KeyOrigin::Dkg))
            .unwrap();
        assert!(matches!(
            s.insert_pending_key(&pending("p-commit", KeyOrigin::Dkg)),
            Err(StoreError::DuplicateKey(id)) if id == "p-commit"
        ));
        s.insert_key(&record("p-taken"), KeyOrigin::Dkg, None)
            .unwrap();
        assert!(matches!(
            s.insert_pending_key(&pending("p-taken", KeyOrigin::Dkg)),
            Err(StoreError::DuplicateKey(id)) if id == "p-taken"
        ));
        let mut r = record("p-commit");
        r.sealed = b"refreshed".to_vec();
        s.replace_pending_material(&r).unwrap();
        assert!(matches!(
            s.replace_pending_material(&record("p-absent")),
            Err(StoreError::UnknownKey(id)) if id == "p-absent"
        ));
        (count + 1, events + 1)
    };
    let s = open();
    assert_eq!(s.key_count().unwrap(), count);
    assert_eq!(s.get_key("p-commit").unwrap(), None);
    assert!(
        s.list_keys(None, 1000)
            .unwrap()
            .iter()
            .all(|r| !r.key_id.starts_with("p-c") && !r.key_id.starts_with("p-d"))
    );
    let mut refreshed = pending("p-commit", KeyOrigin::Import);
    refreshed.record.sealed = b"refreshed".to_vec();
    assert_eq!(
        s.pending_keys().unwrap(),
        vec![refreshed.clone(), pending("p-discard", KeyOrigin::Dkg)]
    );
    assert_eq!(
        s.get_pending_key("p-commit").unwrap(),
        Some(refreshed.clone())
    );
    assert_eq!(s.get_pending_key("p-absent").unwrap(), None);

    assert!(s.commit_pending_key("p-commit").unwrap());
    assert!(!s.commit_pending_key("p-commit").unwrap());
    assert!(s.discard_pending_key("p-discard").unwrap());
    assert!(!s.discard_pending_key("p-discard").unwrap());
    assert!(!s.commit_pending_key("p-discard").unwrap());
    drop(s);
    let s = open();
    assert_eq!(s.pending_keys().unwrap(), vec![]);
    assert_eq!(s.key_count().unwrap(), count + 1);
    assert_eq!(s.get_key("p-commit").unwrap(), Some(refreshed.record));
    assert_eq!(s.get_key("p-discard").unwrap(), None);
    assert_eq!(s.verify_audit_chain().unwrap(), events + 1);
    let last = s.events(None, 10_000).unwrap().pop().unwrap().1;
    assert!(
        matches!(&last, Event::KeyCreated { key_id, origin: KeyOrigin::Import, .. } if key_id == "p-commit")
    );
}
