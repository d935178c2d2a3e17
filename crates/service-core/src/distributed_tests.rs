//! Distributed mode in process: three nodes (each its own App, Party, store and KEK) joined by
//! a link that passes every message through its wire encoding.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_cpu::CpuBackend;

use crate::auth::{Auth, Caller};
use crate::batcher::BatcherConfig;
use crate::memory::MemoryStore;
use crate::peer::{LinkError, PeerLink, PeerReply, PeerRequest};
use crate::ports::{AuditLog, KeyOrigin, KeyRepository, PendingKey};
use crate::requests::{CreateKey, SignRequest};
use crate::{
    App, AppSetup, BoxFuture, ClusterSettings, ClusterSetup, ErrorKind, Kek, Limits, NoObserver,
    Party, PresignPool, Scheme, TestHooks,
};

/// Changes a request on its way from one party to another (a man in the middle).
type Tamper = fn(u16, u16, &mut PeerRequest);
/// Changes a reply on its way back (from the party asked, to the party that asked).
type TamperReply = fn(u16, u16, &mut PeerReply);

#[derive(Debug, Default)]
struct Net {
    parties: Mutex<BTreeMap<u16, Arc<Party>>>,
    down: Mutex<BTreeSet<u16>>,
    stores: Mutex<BTreeMap<u16, Arc<MemoryStore>>>,
    tamper: Mutex<Option<Tamper>>,
    /// Kinds of request ([`PeerRequest::kind`]) lost on the way.
    lost: Mutex<BTreeSet<&'static str>>,
    tamper_reply: Mutex<Option<TamperReply>>,
    /// Every request delivered: (from, to, kind).
    delivered: Mutex<Vec<(u16, u16, &'static str)>>,
}

#[derive(Debug)]
struct Link {
    me: u16,
    net: Arc<Net>,
}

impl PeerLink for Link {
    fn call(
        &self,
        peer: u16,
        request: PeerRequest,
        deadline: Duration,
    ) -> BoxFuture<'_, Result<PeerReply, LinkError>> {
        Box::pin(async move {
            if self.net.down.lock().unwrap().contains(&peer) {
                return Err(LinkError::Transport("connection refused".into()));
            }
            if self.net.lost.lock().unwrap().contains(request.kind()) {
                return Err(LinkError::Deadline(deadline));
            }
            let party = self
                .net
                .parties
                .lock()
                .unwrap()
                .get(&peer)
                .cloned()
                .ok_or(LinkError::UnknownPeer)?;
            let mut wire = PeerRequest::decode(&request.encode().unwrap()).unwrap();
            let tamper = *self.net.tamper.lock().unwrap();
            if let Some(t) = tamper {
                t(self.me, peer, &mut wire);
            }
            self.net
                .delivered
                .lock()
                .unwrap()
                .push((self.me, peer, wire.kind()));
            let reply = party.handle(self.me, wire).await;
            let mut back = PeerReply::decode(&reply.encode().unwrap()).unwrap();
            let tamper = *self.net.tamper_reply.lock().unwrap();
            if let Some(t) = tamper {
                t(peer, self.me, &mut back);
            }
            Ok(back)
        })
    }
}

fn cluster() -> (Vec<Arc<App>>, Arc<Net>) {
    let net = Arc::new(Net::default());
    let mut apps = Vec::new();
    for me in 1..=3u16 {
        let store = Arc::new(MemoryStore::new());
        net.stores.lock().unwrap().insert(me, Arc::clone(&store));
        let setup = AppSetup {
            store,
            sealer: Arc::new(Kek::from_bytes([me as u8; 32])),
            accel: Arc::new(CpuBackend::new()),
            observer: Arc::new(NoObserver),
            batcher: BatcherConfig {
                max_batch_size: 64,
                max_queue_delay_us: 100,
                max_queue: 4096,
                workers: 2,
            },
            probe: || None,
            chains: None,
            broadcaster: None,
            limits: Limits {
                max_message_bytes: 1024,
                max_batch_messages: 64,
                max_parties_frost: 64,
                max_parties_ecdsa: 16,
                max_concurrent_keygen: 4,
                max_batch_items_in_flight: 8192,
            },
            pool: PresignPool {
                target: 0,
                batch: 1,
            },
            backend: "cpu".into(),
            auth: Auth::none(),
        };
        let cluster = ClusterSetup {
            settings: ClusterSettings {
                me,
                peers: (1..=3).filter(|p| *p != me).collect(),
                call_deadline: Duration::from_secs(2),
            },
            link: Arc::new(Link {
                me,
                net: Arc::clone(&net),
            }),
            hooks: TestHooks::default(),
        };
        let (app, party) = App::distributed(setup, cluster).unwrap();
        net.parties.lock().unwrap().insert(me, party);
        apps.push(app);
    }
    (apps, net)
}

/// A 2-of-3 key of `scheme` made through `app`.
async fn new_key(app: &App, scheme: Scheme) -> crate::KeyView {
    try_new_key(app, scheme).await.unwrap()
}

/// Asks `app` for a 2-of-3 key of `scheme`.
async fn try_new_key(app: &App, scheme: Scheme) -> Result<crate::KeyView, crate::Error> {
    app.create_key(
        &Caller::operator(),
        CreateKey {
            scheme,
            threshold: 2,
            parties: 3,
            label: "in process".into(),
            idempotency_key: String::new(),
        },
    )
    .await
    .map(|o| o.value)
    .map_err(|f| f.error)
}

async fn ed25519_key(app: &App) -> String {
    new_key(app, Scheme::Ed25519).await.key_id
}

fn sign(key_id: &str, message: &[u8]) -> SignRequest {
    SignRequest {
        key_id: key_id.to_owned(),
        messages: vec![message.to_vec()],
        taproot_merkle_root: None,
        idempotency_key: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_made_through_one_node_signs_through_another() {
    let (apps, _net) = cluster();
    let key_id = ed25519_key(&apps[0]).await;
    for (k, app) in apps.iter().enumerate() {
        signs(app, &key_id, format!("message {k}").as_bytes()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nonce_pair_signs_at_most_once() {
    let (apps, net) = cluster();
    let key_id = ed25519_key(&apps[0]).await;
    let party = net.parties.lock().unwrap().get(&2).cloned().unwrap();
    // Wait for the commitment pools filled at key creation, then count from there.
    let mut before = party.nonces_held();
    loop {
        tokio::time::sleep(Duration::from_millis(50)).await;
        let now = party.nonces_held();
        if now == before {
            break;
        }
        before = now;
    }
    let PeerReply::Commitments(c) = party
        .handle(
            1,
            PeerRequest::Commit {
                key_id: key_id.clone(),
                count: 1,
            },
        )
        .await
    else {
        panic!("no commitments")
    };
    assert_eq!(party.nonces_held(), before + 1);
    let ask = || PeerRequest::SignShares {
        key_id: key_id.clone(),
        items: vec![(c[0].0, vec![0u8; 8])],
        client: String::new(),
    };
    // The first request consumes the nonces even though its package is rejected.
    let PeerReply::Shares(first) = party.handle(1, ask()).await else {
        panic!("no shares reply")
    };
    assert!(first[0].as_ref().unwrap_err().contains("signing package"));
    assert_eq!(party.nonces_held(), before);
    let PeerReply::Shares(second) = party.handle(1, ask()).await else {
        panic!("no shares reply")
    };
    assert!(second[0].as_ref().unwrap_err().contains("already used"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_quorum_signing_fails_unavailable_and_recovers() {
    let (apps, net) = cluster();
    let key_id = ed25519_key(&apps[0]).await;
    net.down.lock().unwrap().extend([2, 3]);
    for _ in 0..4 {
        let e = apps[0]
            .sign(&Caller::operator(), sign(&key_id, b"m"), false)
            .await
            .unwrap_err();
        assert_eq!(e.error.kind(), ErrorKind::Unavailable, "{}", e.error);
    }
    let e = apps[0]
        .sign(&Caller::operator(), sign(&key_id, b"m"), false)
        .await
        .unwrap_err();
    assert!(
        matches!(e.error, crate::Error::QuorumUnavailable { need: 2, .. }),
        "{}",
        e.error
    );
    net.down.lock().unwrap().clear();
    let start = std::time::Instant::now();
    while apps[0]
        .sign(&Caller::operator(), sign(&key_id, b"m"), false)
        .await
        .is_err()
    {
        assert!(start.elapsed() < Duration::from_secs(5), "no recovery");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_threshold_ecdsa_key_made_across_nodes_signs_through_each_node() {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let (apps, net) = cluster();
    let key = new_key(&apps[0], Scheme::EcdsaSecp256k1).await;
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key).unwrap();
    for (k, app) in apps.iter().enumerate() {
        for i in 0..3u8 {
            let prehash = [k as u8 * 16 + i; 32];
            let out = app
                .sign(&Caller::operator(), sign(&key.key_id, &prehash), false)
                .await
                .map_err(|f| f.error)
                .unwrap();
            let s = &out.value[0];
            assert_eq!(s.verifying_key, key.public_key);
            let sig = k256::ecdsa::Signature::from_slice(&s.signature).unwrap();
            vk.verify_prehash(&prehash, &sig)
                .unwrap_or_else(|e| panic!("node {} signature {i}: {e}", k + 1));
            let recovered = k256::ecdsa::VerifyingKey::recover_from_prehash(
                &prehash,
                &sig,
                k256::ecdsa::RecoveryId::from_byte(s.recovery_id).unwrap(),
            )
            .unwrap();
            assert_eq!(recovered, vk, "recovery id");
        }
    }
    // With one co-signer down the other one signs; with both down there is no quorum.
    net.down.lock().unwrap().insert(3);
    let prehash = [0x5a; 32];
    for _ in 0..4 {
        let out = apps[0]
            .sign(&Caller::operator(), sign(&key.key_id, &prehash), false)
            .await
            .map_err(|f| f.error)
            .unwrap();
        let sig = k256::ecdsa::Signature::from_slice(&out.value[0].signature).unwrap();
        vk.verify_prehash(&prehash, &sig).unwrap();
    }
    net.down.lock().unwrap().insert(2);
    let e = apps[0]
        .sign(&Caller::operator(), sign(&key.key_id, &prehash), false)
        .await
        .unwrap_err();
    assert_eq!(e.error.kind(), ErrorKind::Unavailable, "{}", e.error);
}

/// Party `me`'s stored threshold-ECDSA share of `key_id`, opened with its KEK.
fn stored_share(net: &Net, me: u16, key_id: &str) -> (Vec<u8>, dkls23::KeyShare) {
    use crate::{KeyRepository, Sealer};
    let store = net.stores.lock().unwrap().get(&me).cloned().unwrap();
    let rec = store.get_key(key_id).unwrap().unwrap();
    let plain = Kek::from_bytes([me as u8; 32])
        .open(key_id, &rec.sealed)
        .unwrap();
    (rec.sealed, dkls23::KeyShare::from_bytes(&plain).unwrap())
}

/// Flips a byte of the OT-extension part of every round-1 presigning message party 2 sends
/// party 1, so party 1's consistency check fails naming party 2.
fn corrupt_round1_from_2_to_1(from: u16, to: u16, r: &mut PeerRequest) {
    if let (
        2,
        1,
        PeerRequest::PresignDeliver {
            round: 1, items, ..
        },
    ) = (from, to, r)
    {
        for (_, m) in items.iter_mut() {
            m[200] ^= 1;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ot_check_discards_the_pair_durably_and_a_fresh_base_ot_restores_it() {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let (apps, net) = cluster();
    let key = new_key(&apps[0], Scheme::EcdsaSecp256k1).await;
    let (_, before_1) = stored_share(&net, 1, &key.key_id);
    let (_, before_2) = stored_share(&net, 2, &key.key_id);
    assert!(before_1.pair_ready(2));
    // Only the pair (1, 2) can sign, and party 2's messages to party 1 are tampered with.
    net.down.lock().unwrap().insert(3);
    *net.tamper.lock().unwrap() = Some(corrupt_round1_from_2_to_1);
    let prehash = [0x42; 32];
    // Party 1's check fails naming party 2: the request is retried without it, and with
    // party 3 down no quorum is left.
    let e = apps[0]
        .sign(&Caller::operator(), sign(&key.key_id, &prehash), false)
        .await
        .unwrap_err();
    assert_eq!(
        e.error.kind(),
        ErrorKind::Unavailable,
        "{}",
        e.error.chain()
    );
    // Without the tampering the pair gets a fresh base OT and signs again.
    *net.tamper.lock().unwrap() = None;
    let start = std::time::Instant::now();
    let out = loop {
        match apps[0]
            .sign(&Caller::operator(), sign(&key.key_id, &prehash), false)
            .await
        {
            Ok(out) => break out,
            Err(f) => {
                assert!(
                    start.elapsed() < Duration::from_secs(10),
                    "no recovery: {}",
                    f.error.chain()
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let vk = k256::ecdsa::VerifyingKey::from_sec1_bytes(&key.public_key).unwrap();
    let sig = k256::ecdsa::Signature::from_slice(&out.value[0].signature).unwrap();
    vk.verify_prehash(&prehash, &sig).unwrap();
    // Both ends stored their new OT state (the shares differ only there).
    let (_, after_1) = stored_share(&net, 1, &key.key_id);
    let (_, after_2) = stored_share(&net, 2, &key.key_id);
    assert!(after_1.pair_ready(2) && after_2.pair_ready(1));
    assert!(after_1 != before_1, "party 1 stored its fresh OT state");
    assert!(after_2 != before_2, "party 2 stored its fresh OT state");
    assert_eq!(after_1.public_key(), before_1.public_key());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imported_keys_are_split_across_nodes_and_sign_through_each() {
    use k256::ecdsa::signature::hazmat::PrehashVerifier;
    let (apps, net) = cluster();
    let import = |scheme, secret: [u8; 32]| crate::requests::ImportKey {
        scheme,
        secret_key: zeroize::Zeroizing::new(secret.to_vec()),
        threshold: 2,
        parties: 3,
        label: "imported".into(),
        idempotency_key: "import-1".into(),
    };
    // Ed25519: the key of the seed, signing through every node.
    let seed = [7u8; 32];
    let ed = apps[0]
        .import_key(&Caller::operator(), import(Scheme::Ed25519, seed))
        .await
        .map_err(|f| f.error)
        .unwrap()
        .value;
    let expected = ed25519_dalek::SigningKey::from_bytes(&seed).verifying_key();
    assert_eq!(ed.public_key, expected.as_bytes().to_vec());
    for (k, app) in apps.iter().enumerate() {
        let out = app
            .sign(&Caller::operator(), sign(&ed.key_id, b"imported"), false)
            .await
            .map_err(|f| f.error)
            .unwrap();
        let ok = threshold::verify_ed25519_batch(
            &CpuBackend::new(),
            &[(
                &out.value[0].verifying_key,
                b"imported".as_slice(),
                &out.value[0].signature,
            )],
        );
        assert_eq!(ok, vec![true], "node {}", k + 1);
    }
    // Retried with the same idempotency key: the same key, nothing split again; another
    // secret under it is a conflict.
    let again = apps[0]
        .import_key(&Caller::operator(), import(Scheme::Ed25519, seed))
        .await
        .map_err(|f| f.error)
        .unwrap()
        .value;
    assert_eq!(again.key_id, ed.key_id);
    let e = apps[0]
        .import_key(&Caller::operator(), import(Scheme::Ed25519, [8; 32]))
        .await
        .unwrap_err();
    assert_eq!(e.error.kind(), ErrorKind::FailedPrecondition, "{}", e.error);
    // ECDSA: the key of the secret.
    let mut secret = [0u8; 32];
    secret[31] = 9;
    let mut req = import(Scheme::EcdsaSecp256k1, secret);
    req.idempotency_key = String::new();
    let ec = apps[0]
        .import_key(&Caller::operator(), req)
        .await
        .map_err(|f| f.error)
        .unwrap()
        .value;
    let sk = k256::ecdsa::SigningKey::from_slice(&secret).unwrap();
    let vk = *sk.verifying_key();
    assert_eq!(ec.public_key, vk.to_encoded_point(true).as_bytes().to_vec());
    // Before the import answers, every pair ran a fresh base OT, counted at both ends.
    let parties: Vec<Arc<Party>> = net.parties.lock().unwrap().values().cloned().collect();
    assert_eq!(parties.iter().map(|p| p.pair_refreshes()).sum::<u64>(), 6);
    // The co-signers' shares were pending while the pairs refreshed; what they stored is the
    // refreshed OT state: read back from the stores, every pair signs without another base OT.
    for p in &parties {
        p.forget_cached_keys();
    }
    for (k, app) in apps.iter().enumerate() {
        let prehash = [k as u8 + 1; 32];
        let out = app
            .sign(&Caller::operator(), sign(&ec.key_id, &prehash), false)
            .await
            .map_err(|f| f.error)
            .unwrap();
        let sig = k256::ecdsa::Signature::from_slice(&out.value[0].signature).unwrap();
        vk.verify_prehash(&prehash, &sig).unwrap();
    }
    assert_eq!(parties.iter().map(|p| p.pair_refreshes()).sum::<u64>(), 6);
    // The pair of the two other nodes signs too (node 1 down).
    net.down.lock().unwrap().insert(1);
    let out = apps[1]
        .sign(&Caller::operator(), sign(&ec.key_id, &[0x33; 32]), false)
        .await
        .map_err(|f| f.error)
        .unwrap();
    let sig = k256::ecdsa::Signature::from_slice(&out.value[0].signature).unwrap();
    vk.verify_prehash(&[0x33; 32], &sig).unwrap();
}

/// Every node's pending shares and stored keys, by node.
fn holdings(net: &Net) -> Vec<(Vec<String>, Vec<String>)> {
    net.stores
        .lock()
        .unwrap()
        .values()
        .map(|s| {
            let pending = s.pending_keys().unwrap();
            let keys = s.list_keys(None, 100).unwrap();
            (
                pending.into_iter().map(|p| p.record.key_id).collect(),
                keys.into_iter().map(|r| r.key_id).collect(),
            )
        })
        .collect()
}

/// Loses every settlement and every question about one until the test clears `net.lost`.
fn lose_settlements(net: &Net) {
    net.lost
        .lock()
        .unwrap()
        .extend(["key_settled", "creation_state"]);
}

fn party(net: &Net, id: u16) -> Arc<Party> {
    net.parties.lock().unwrap().get(&id).cloned().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_key_is_stored_on_every_node_once_its_creator_stored_its_share() {
    let (apps, net) = cluster();
    let key_id = ed25519_key(&apps[0]).await;
    let committed = vec![key_id.clone()];
    assert_eq!(holdings(&net), vec![(vec![], committed.clone()); 3]);
    for app in &apps[1..] {
        let page = app
            .list_keys(&Caller::operator(), 0, String::new())
            .await
            .map_err(|f| f.error)
            .unwrap();
        assert_eq!(page.value.keys.len(), 1, "listed on every node");
    }
    for s in net.stores.lock().unwrap().values() {
        let events = s.events(None, 10).unwrap();
        assert_eq!(events.len(), 1, "one KeyCreated event per node");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_creator_cannot_store_its_share_the_others_delete_theirs() {
    let (apps, net) = cluster();
    net.stores.lock().unwrap()[&1].refuse_new_keys(true);
    for scheme in [Scheme::Ed25519, Scheme::EcdsaSecp256k1] {
        let e = try_new_key(&apps[0], scheme).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Internal, "{e}");
        assert_eq!(holdings(&net), vec![(vec![], vec![]); 3], "{scheme}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_missed_the_settlement_asks_the_creator() {
    let (apps, net) = cluster();
    // The settlement and the questions about it are lost until the test lets them through.
    lose_settlements(&net);
    let kept = ed25519_key(&apps[0]).await;
    net.stores.lock().unwrap()[&1].refuse_new_keys(true);
    try_new_key(&apps[0], Scheme::Ed25519).await.unwrap_err();
    net.stores.lock().unwrap()[&1].refuse_new_keys(false);
    let h = holdings(&net);
    assert_eq!(h[0], (vec![], vec![kept.clone()]));
    let dropped = h[1].0.iter().find(|k| **k != kept).cloned().unwrap();
    let mut both = vec![kept.clone(), dropped.clone()];
    both.sort();
    assert_eq!(h[1], (both.clone(), vec![]), "pending, not stored");
    assert_eq!(h[2], (both, vec![]));
    let e = apps[1]
        .get_key(&Caller::operator(), kept.clone())
        .await
        .unwrap_err();
    assert_eq!(
        e.error.kind(),
        ErrorKind::NotFound,
        "a pending key is not a key yet"
    );

    // While the creator cannot be asked, nothing is settled.
    assert_eq!(party(&net, 2).settle_pending().await, 2);
    net.lost.lock().unwrap().clear();
    // After a restart (no share cached), a co-signer of node 1 asks node 1 about the key
    // before it signs with it.
    for id in [2, 3] {
        party(&net, id).forget_cached_keys();
    }
    signs(&apps[0], &kept, b"after a lost settlement").await;
    let h = holdings(&net);
    assert!(
        h[1..]
            .iter()
            .any(|(_, keys)| keys == std::slice::from_ref(&kept)),
        "the co-signer committed the key: {h:?}"
    );
    // The background sweep (or a call of it) settles what remains: the stored key is
    // committed, the one its creator never stored is deleted.
    for id in [2, 3] {
        assert_eq!(party(&net, id).settle_pending().await, 0);
    }
    assert_eq!(holdings(&net), vec![(vec![], vec![kept.clone()]); 3]);
    for app in &apps[1..] {
        signs(app, &kept, b"through another node").await;
    }
}

/// Signs `message` with the Ed25519 key `key_id` through `app` and checks the signature.
async fn signs(app: &App, key_id: &str, message: &[u8]) {
    let out = app
        .sign(&Caller::operator(), sign(key_id, message), false)
        .await
        .map_err(|f| f.error)
        .unwrap();
    let s = &out.value[0];
    let ok = threshold::verify_ed25519_batch(
        &CpuBackend::new(),
        &[(&s.verifying_key, message, &s.signature)],
    );
    assert_eq!(ok, vec![true]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creation_still_running_stays_pending_and_only_its_creator_settles_it() {
    let (_apps, net) = cluster();
    let record = crate::kit::record("k-running");
    net.stores.lock().unwrap()[&2]
        .insert_pending_key(&PendingKey {
            record,
            origin: KeyOrigin::Dkg,
            creator: 1,
        })
        .unwrap();
    party(&net, 1).begin_creating("k-running");
    assert_eq!(party(&net, 2).settle_pending().await, 1, "still running");
    let refused = party(&net, 2)
        .handle(
            3,
            PeerRequest::KeySettled {
                key_id: "k-running".into(),
                committed: true,
            },
        )
        .await;
    assert!(
        matches!(&refused, PeerReply::Failed(f) if f.message.contains("did not create")),
        "{refused:?}"
    );
    assert_eq!(holdings(&net)[1].0, ["k-running"]);
    party(&net, 1).end_creating("k-running");
    assert_eq!(party(&net, 2).settle_pending().await, 0);
    assert_eq!(holdings(&net)[1], (vec![], vec![]), "abandoned: deleted");
}

/// Adds a point of order 8 to the Ed25519 point encoded at the start of `b`.
fn add_torsion(b: &mut [u8]) {
    use accel_api::curves::curve25519_dalek::constants::EIGHT_TORSION;
    use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
    let p = CompressedEdwardsY::from_slice(&b[..32])
        .unwrap()
        .decompress()
        .unwrap();
    b[..32].copy_from_slice((p + EIGHT_TORSION[1]).compress().as_bytes());
}

/// Adds a point of order 8 to node 1's hiding commitment in every signing package it sends
/// node 2 (a man in the middle, or a faulty coordinator).
fn torsion_in_node_1_commitment(from: u16, to: u16, r: &mut PeerRequest) {
    let (1, 2, PeerRequest::SignShares { items, .. }) = (from, to, r) else {
        return;
    };
    for (_, pkg) in items.iter_mut() {
        // Tag 0 (no Taproot), message length, message, signer count, then node 1 first:
        // its id and its hiding commitment.
        let len = u32::from_be_bytes(pkg[1..5].try_into().unwrap()) as usize;
        add_torsion(&mut pkg[5 + len + 2 + 2..]);
    }
}

/// Adds a point of order 8 to every hiding commitment node 2 hands node 1 (as a faulty node 2
/// could for its own nonces).
fn torsion_in_node_2_commitments(from: u16, to: u16, r: &mut PeerReply) {
    if let (2, 1, PeerReply::Commitments(c)) = (from, to, r) {
        for (_, b) in c.iter_mut() {
            add_torsion(b);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_uses_no_commitment_outside_the_prime_order_subgroup() {
    let (apps, net) = cluster();
    *net.tamper_reply.lock().unwrap() = Some(torsion_in_node_2_commitments);
    let key_id = ed25519_key(&apps[0]).await;
    // Only the pair (1, 2) can sign. Node 1 drops the pooled commitments of node 2 that fail
    // validation and refuses the ones it asks for now: node 2 is never sent a package.
    net.down.lock().unwrap().insert(3);
    let e = apps[0]
        .sign(&Caller::operator(), sign(&key_id, b"m"), false)
        .await
        .unwrap_err();
    assert_eq!(e.error.kind(), ErrorKind::Unavailable, "{}", e.error);
    let to_2: Vec<&'static str> = net
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(from, to, _)| (*from, *to) == (1, 2))
        .map(|(_, _, kind)| kind)
        .copied()
        .collect();
    assert!(to_2.contains(&"commit"), "{to_2:?}");
    assert!(!to_2.contains(&"sign_shares"), "{to_2:?}");
    *net.tamper_reply.lock().unwrap() = None;
    net.down.lock().unwrap().clear();
    signs(&apps[0], &key_id, b"untampered").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_co_signer_refuses_a_commitment_outside_the_prime_order_subgroup() {
    use threshold::round1::SigningCommitments;
    let (apps, net) = cluster();
    let key_id = ed25519_key(&apps[0]).await;
    let commit = |id: u16| {
        let party = party(&net, id);
        let key_id = key_id.clone();
        async move {
            let PeerReply::Commitments(mut c) = party
                .handle(1, PeerRequest::Commit { key_id, count: 1 })
                .await
            else {
                panic!("no commitments from {id}")
            };
            c.pop().unwrap()
        }
    };
    let mut replies = Vec::new();
    for tamper in [true, false] {
        let (_, c1) = commit(1).await;
        let (session, c2) = commit(2).await;
        let mut map = BTreeMap::new();
        for (id, c) in [(1, &c1), (2, &c2)] {
            map.insert(
                threshold::Identifier::new(id).unwrap(),
                SigningCommitments::<threshold::Ed25519Suite>::from_bytes(c).unwrap(),
            );
        }
        let pkg = threshold::SigningPackage::new(map, b"m", threshold::TaprootTweak::None);
        let mut request = PeerRequest::SignShares {
            key_id: key_id.clone(),
            items: vec![(session, pkg.to_bytes())],
            client: String::new(),
        };
        if tamper {
            torsion_in_node_1_commitment(1, 2, &mut request);
        }
        replies.push(party(&net, 2).handle(1, request).await);
    }
    let PeerReply::Shares(tampered) = &replies[0] else {
        panic!("{:?}", replies[0])
    };
    assert!(
        tampered[0]
            .as_ref()
            .unwrap_err()
            .contains("hiding commitment"),
        "{tampered:?}"
    );
    let PeerReply::Shares(clean) = &replies[1] else {
        panic!("{:?}", replies[1])
    };
    assert_eq!(clean[0].as_ref().unwrap().len(), 32, "{clean:?}");
}

/// Concurrent requests for one key share signing attempts (`crate::merge`): fewer share
/// requests reach the co-signers than signature requests were made, and each request gets
/// the signature of its own message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_for_one_key_share_attempts_and_each_gets_its_own_signature() {
    let (apps, net) = cluster();
    let key_id = ed25519_key(&apps[0]).await;
    net.delivered.lock().unwrap().clear();
    let requests = 12 * crate::merge::MAX_ROUNDS;
    let tasks: Vec<_> = (0..requests)
        .map(|i| {
            let app = Arc::clone(&apps[0]);
            let key_id = key_id.clone();
            tokio::spawn(async move {
                let message = format!("message {i}").into_bytes();
                let out = app
                    .sign(&Caller::operator(), sign(&key_id, &message), false)
                    .await
                    .map_err(|f| f.error)
                    .unwrap();
                (message, out.value)
            })
        })
        .collect();
    for t in tasks {
        let (message, signatures) = t.await.unwrap();
        assert_eq!(signatures.len(), 1);
        let s = &signatures[0];
        let ok = threshold::verify_ed25519_batch(
            &CpuBackend::new(),
            &[(&s.verifying_key, &message, &s.signature)],
        );
        assert_eq!(ok, vec![true], "{}", String::from_utf8_lossy(&message));
    }
    let share_requests = net
        .delivered
        .lock()
        .unwrap()
        .iter()
        .filter(|(from, _, kind)| *from == 1 && *kind == "sign_shares")
        .count();
    assert!(
        share_requests < requests,
        "{share_requests} share requests for {requests} signature requests"
    );
}

/// A creator that committed a key and then lost its data directory answers as if it had
/// never stored the key; a node that missed the settlement then asks the other nodes, and
/// commits its share because one of them stored the key. While a node cannot be asked,
/// nothing is deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_creator_that_lost_its_store_does_not_make_others_delete_a_stored_key() {
    let (apps, net) = cluster();
    lose_settlements(&net);
    let kept = ed25519_key(&apps[0]).await;
    net.lost.lock().unwrap().clear();
    // Node 2 settles (it asks node 1, which stored the key); node 3 has not asked yet.
    assert_eq!(party(&net, 2).settle_pending().await, 0);
    let h = holdings(&net);
    assert_eq!(h[1], (vec![], vec![kept.clone()]));
    assert_eq!(h[2], (vec![kept.clone()], vec![]));
    // Node 1 loses its data directory.
    net.stores.lock().unwrap()[&1].lose_keys();
    party(&net, 1).forget_cached_keys();
    // Node 2 cannot be asked: node 3 keeps its share pending.
    net.down.lock().unwrap().insert(2);
    assert_eq!(party(&net, 3).settle_pending().await, 1);
    assert_eq!(holdings(&net)[2], (vec![kept.clone()], vec![]));
    // Node 2 answers that it stored the key: node 3 commits its share.
    net.down.lock().unwrap().clear();
    assert_eq!(party(&net, 3).settle_pending().await, 0);
    assert_eq!(holdings(&net)[2], (vec![], vec![kept.clone()]));
    // Nodes 2 and 3 still sign with the key, without node 1.
    net.down.lock().unwrap().insert(1);
    signs(&apps[1], &kept, b"without the node that lost its store").await;
}
