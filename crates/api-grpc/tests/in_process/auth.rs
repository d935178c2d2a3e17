//! Authentication and per-key policy through the API: missing and unknown credentials are
//! UNAUTHENTICATED, everything a policy does not allow is PERMISSION_DENIED (default deny),
//! denied requests produce no signature and leave an `AccessDenied` audit event, and the
//! allowed cases succeed.

use std::sync::Arc;

use api_proto as pb;
use service_core::audit::Event;
use service_core::memory::MemoryClients;
use service_core::{Auth, AuthMode, Policy};
use tonic::Code;

use crate::common::{Harness, Options, assert_status, create_req, sign_req};

fn policy(admin: bool, keys: &[&str], schemes: &[&str]) -> Policy {
    Policy {
        admin,
        keys: keys.iter().map(|s| (*s).to_owned()).collect(),
        schemes: schemes.iter().map(|s| (*s).to_owned()).collect(),
        rate_per_s: None,
    }
}

/// A harness in api-key mode with the clients `(name, policy)`; returns their keys in order.
fn harness(clients: Vec<(&str, Policy)>) -> (Harness, Vec<String>) {
    let mut reg = MemoryClients::default();
    let keys = clients
        .into_iter()
        .map(|(name, policy)| reg.add(name, policy))
        .collect();
    let h = Harness::with(Options {
        auth: Auth {
            mode: AuthMode::ApiKey,
            clients: Arc::new(reg),
        },
        ..Options::default()
    });
    (h, keys)
}

fn denials(h: &Harness) -> Vec<(String, String, Option<String>)> {
    h.events()
        .into_iter()
        .filter_map(|e| match e {
            Event::AccessDenied {
                client,
                action,
                key_id,
                ..
            } => Some((client, action, key_id)),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn requests_without_a_valid_api_key_are_unauthenticated() {
    let (h, keys) = harness(vec![("ops", Policy::everything())]);
    let ops = h.as_client(&keys[0]);
    let k = ops.key(pb::Scheme::Ed25519, "k").await;
    for who in [h.as_client("tsk_unknown"), h.as_client(""), {
        let mut anon = h.as_client("x");
        anon.bearer = None;
        anon
    }] {
        let s = who
            .sign(sign_req(&k.key_id, b"m".to_vec()))
            .await
            .unwrap_err();
        assert_status(&s, Code::Unauthenticated, &["API key"]);
        let s = who.get_key(&k.key_id).await.unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated);
        let s = who.list(0, "").await.unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated);
        let s = who
            .create(create_req(pb::Scheme::Ed25519 as i32, 2, 3, "x"))
            .await
            .unwrap_err();
        assert_eq!(s.code(), Code::Unauthenticated);
    }
    assert_eq!(h.signature_events(), 0, "nothing was signed");
    assert_eq!(h.key_events(), 1, "only the admin's key was created");
}

#[tokio::test]
async fn policies_decide_who_sees_and_signs_with_which_key() {
    let (h, keys) = harness(vec![
        ("ops", policy(true, &["*"], &["*"])),
        ("bob", policy(false, &[], &["*"])),
        ("carol", policy(false, &["*"], &["bip340"])),
        ("dave", policy(true, &[], &["ed25519"])),
    ]);
    let (ops, bob, carol, dave) = (
        h.as_client(&keys[0]),
        h.as_client(&keys[1]),
        h.as_client(&keys[2]),
        h.as_client(&keys[3]),
    );
    let ed = ops.key(pb::Scheme::Ed25519, "ed").await;
    let bip = ops.key(pb::Scheme::Bip340, "bip").await;

    // Bob's policy names no key: nothing is visible or usable, and unknown ids look the same.
    for id in [
        ed.key_id.as_str(),
        bip.key_id.as_str(),
        "00000000000000000000000000000000",
    ] {
        let s = bob.sign(sign_req(id, vec![1; 32])).await.unwrap_err();
        assert_status(&s, Code::PermissionDenied, &["bob", "Sign"]);
        let s = bob.get_key(id).await.unwrap_err();
        assert_status(&s, Code::PermissionDenied, &["bob", "GetKey"]);
    }
    assert!(bob.keys().await.is_empty(), "ListKeys shows bob nothing");
    let s = bob
        .create(create_req(pb::Scheme::Ed25519 as i32, 2, 3, "mine"))
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, &["bob", "CreateKey"]);
    let s = bob
        .import(pb::ImportKeyRequest {
            scheme: pb::Scheme::Ed25519 as i32,
            secret_key: vec![9; 32],
            threshold: 2,
            parties: 3,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, &["bob", "ImportKey"]);
    let s = bob
        .sign_batch(pb::SignBatchRequest {
            key_id: ed.key_id.clone(),
            messages: vec![b"a".to_vec(), b"b".to_vec()],
            taproot_merkle_root: None,
        })
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, &["bob", "SignBatch"]);

    // Carol may use every key, but only BIP340 ones.
    let s = carol
        .sign(sign_req(&ed.key_id, b"m".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    assert!(carol.sign(sign_req(&bip.key_id, vec![2; 32])).await.is_ok());
    let listed: Vec<String> = carol.keys().await.into_iter().map(|k| k.key_id).collect();
    assert_eq!(listed, std::slice::from_ref(&bip.key_id));

    // Dave is an admin for Ed25519 with no key named: the key he creates is his.
    let own = dave.key(pb::Scheme::Ed25519, "dave's").await;
    assert!(
        dave.sign(sign_req(&own.key_id, b"m".to_vec()))
            .await
            .is_ok()
    );
    assert_eq!(dave.get_key(&own.key_id).await.unwrap(), own);
    let listed: Vec<String> = dave.keys().await.into_iter().map(|k| k.key_id).collect();
    assert_eq!(listed, std::slice::from_ref(&own.key_id));
    let s = dave
        .sign(sign_req(&ed.key_id, b"m".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied, "another admin's key");
    let s = dave
        .create(create_req(pb::Scheme::Bip340 as i32, 2, 3, "x"))
        .await
        .unwrap_err();
    assert_status(&s, Code::PermissionDenied, &["dave", "CreateKey"]);
    // Others do not see dave's key unless their policy names every key.
    assert!(bob.get_key(&own.key_id).await.is_err());
    assert_eq!(ops.get_key(&own.key_id).await.unwrap(), own);
    // An unknown id is NOT_FOUND only for a caller whose policy names every key.
    let s = ops
        .get_key("00000000000000000000000000000000")
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::NotFound);

    // Two signatures were issued (carol's and dave's); every refusal is an audit event.
    assert_eq!(h.signature_events(), 2);
    let d = denials(&h);
    assert!(
        d.contains(&("bob".into(), "Sign".into(), Some(ed.key_id.clone()))),
        "{d:?}"
    );
    assert!(
        d.contains(&("bob".into(), "CreateKey".into(), None)),
        "{d:?}"
    );
    assert!(
        d.contains(&("carol".into(), "Sign".into(), Some(ed.key_id.clone()))),
        "{d:?}"
    );
    assert!(
        d.contains(&("dave".into(), "CreateKey".into(), None)),
        "{d:?}"
    );
    let issued: Vec<String> = h
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::SignatureIssued { client, .. } => Some(client),
            _ => None,
        })
        .collect();
    assert_eq!(issued, ["carol", "dave"], "each signature names its client");
}

#[tokio::test]
async fn a_key_named_by_id_is_the_only_one_its_client_uses() {
    let (h, keys) = harness(vec![("ops", Policy::everything())]);
    let ops = h.as_client(&keys[0]);
    let ed = ops.key(pb::Scheme::Ed25519, "ed").await;
    let other = ops.key(pb::Scheme::Ed25519, "other").await;
    // A second API over the same store, where alice's policy names `ed` only.
    let mut reg = MemoryClients::default();
    let alice_key = reg.add("alice", policy(false, &[ed.key_id.as_str()], &["ed25519"]));
    let h2 = Harness::over(
        Arc::clone(&h.store),
        Options {
            auth: Auth {
                mode: AuthMode::ApiKey,
                clients: Arc::new(reg),
            },
            ..Options::default()
        },
    );
    let alice = h2.as_client(&alice_key);
    assert!(
        alice
            .sign(sign_req(&ed.key_id, b"m".to_vec()))
            .await
            .is_ok()
    );
    let s = alice
        .sign(sign_req(&other.key_id, b"m".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(s.code(), Code::PermissionDenied);
    let listed: Vec<String> = alice.keys().await.into_iter().map(|k| k.key_id).collect();
    assert_eq!(listed, [ed.key_id]);
}

#[tokio::test]
async fn a_client_over_its_rate_is_told_when_to_retry() {
    let mut limited = policy(false, &["*"], &["*"]);
    limited.rate_per_s = Some(2);
    let (h, keys) = harness(vec![("ops", Policy::everything()), ("batch-job", limited)]);
    let (ops, job) = (h.as_client(&keys[0]), h.as_client(&keys[1]));
    let k = ops.key(pb::Scheme::Ed25519, "k").await;
    for i in 0..2u8 {
        assert!(job.sign(sign_req(&k.key_id, vec![i])).await.is_ok());
    }
    let s = job.sign(sign_req(&k.key_id, vec![9])).await.unwrap_err();
    assert_status(
        &s,
        Code::ResourceExhausted,
        &["batch-job", "2 requests per second"],
    );
    let retry = tonic_types::StatusExt::get_details_retry_info(&s).expect("RetryInfo details");
    let delay = retry.retry_delay.expect("a retry delay");
    assert!(
        !delay.is_zero() && delay <= std::time::Duration::from_millis(500),
        "{delay:?}"
    );
    // The limit is the client's own: another client is not slowed.
    for i in 0..5u8 {
        assert!(ops.sign(sign_req(&k.key_id, vec![i])).await.is_ok());
    }
    // After the delay the client is admitted again.
    tokio::time::sleep(delay).await;
    assert!(job.sign(sign_req(&k.key_id, vec![10])).await.is_ok());
}
