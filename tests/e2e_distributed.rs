//! End-to-end, distributed mode: every party its own `tessera` process over mutual TLS, the
//! cluster written by `tessera init-cluster`. Keys are made through one node and used through
//! others; every signature is checked by independent verifiers; each node's data directory
//! holds only its own share (opened with that node's KEK); a Bitcoin PSBT signed through the
//! chain API by two keys on two nodes passes Bitcoin Core's script interpreter; faults (kill
//! -9, two parties down, a partitioned party, a party sending invalid shares, foreign or
//! unconfigured certificates) behave as the deployment promises. Every fault test runs with
//! the nonce log of every node and checks that no nonce pair was ever consumed twice.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use api_proto::sign_transaction_request::Transaction as TxOneof;
use api_proto::sign_transaction_response::Signed;
use api_proto::signer_service_client::SignerServiceClient;
use api_proto::{
    BitcoinTransaction, CreateKeyRequest, GetKeyRequest, ImportKeyRequest, KeyInfo,
    ListKeysRequest, Scheme, SignBatchRequest, SignRequest, SignTransactionRequest,
};
use sha2::{Digest, Sha256};
use test_support::bitcoin_tx::{assert_core_accepts, bip86_script, p2wpkh_script, psbt_for, utxo};
use test_support::proxy::FaultProxy;
use test_support::{Cluster, Server, bip340_ok, ecdsa_check, ed25519_ok, taproot_output_key};
use tonic::transport::Channel;

/// One cluster at a time: each test starts three or four processes on a 2-core machine.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A cluster whose nodes log every nonce pair they consume.
fn cluster(parties: u16, dir: &Path) -> Cluster {
    let mut c = Cluster::init(parties, dir);
    for i in 1..=parties {
        let log = dir.join(format!("nonces-{i}.log"));
        c.env[usize::from(i) - 1]
            .push(("TESSERA_TEST_NONCE_LOG".into(), log.display().to_string()));
    }
    c
}

/// Every nonce pair consumed by any node, checked for reuse: returns how many there were.
fn assert_no_nonce_reused(dir: &Path, parties: u16) -> usize {
    let mut seen = HashSet::new();
    for i in 1..=parties {
        let text = std::fs::read_to_string(dir.join(format!("nonces-{i}.log"))).unwrap_or_default();
        for line in text.lines() {
            assert!(
                seen.insert(line.to_owned()),
                "nonce commitment {line} consumed twice"
            );
        }
    }
    seen.len()
}

/// Node `i`'s KEK: `init-cluster` writes it beside the node's config, off its data directory.
fn node_kek(cl: &Cluster, i: u16) -> service_core::Kek {
    let node_dir = cl.data_dir(i).parent().unwrap().to_owned();
    assert!(!cl.data_dir(i).join("kek").exists());
    let hex = std::fs::read_to_string(node_dir.join("kek")).unwrap();
    service_core::Kek::from_hex(&hex).unwrap()
}

/// Node `i`'s store (the node must be stopped), opened with its KEK.
fn open_store(cl: &Cluster, i: u16) -> store_redb::RedbStore {
    let chain = service_core::audit::ChainKey::of(&node_kek(cl, i));
    store_redb::RedbStore::open(&cl.data_dir(i), chain).unwrap()
}

async fn client(s: &Server) -> SignerServiceClient<Channel> {
    s.client().await
}

async fn create(c: &mut SignerServiceClient<Channel>, scheme: Scheme) -> KeyInfo {
    let k = c
        .create_key(CreateKeyRequest {
            scheme: scheme as i32,
            threshold: 2,
            parties: 3,
            label: format!("distributed {scheme:?}"),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((k.threshold, k.parties), (2, 3));
    k
}

fn message(scheme: Scheme, i: usize) -> Vec<u8> {
    let m = Sha256::digest(format!("distributed message {i}").as_bytes()).to_vec();
    match scheme {
        Scheme::Ed25519 => m[..(i % 33)].to_vec(),
        _ => m,
    }
}

/// Checks a signature with independent verifiers (ECDSA: libsecp256k1 and k256, low S, and
/// key recovery from the recovery id).
fn check(scheme: Scheme, pk: &[u8], msg: &[u8], sig: &[u8], recovery_id: u32) {
    match scheme {
        Scheme::Ed25519 => assert!(ed25519_ok(pk, msg, sig), "Ed25519 signature fails"),
        Scheme::EcdsaSecp256k1 => ecdsa_check(pk, msg, sig, recovery_id),
        _ => assert!(bip340_ok(pk, msg, sig), "BIP340 signature fails"),
    }
}

/// Signs messages `from..from + n` through `c`: half as concurrent `Sign` calls, half in
/// `SignBatch` calls of 50; checks every signature independently. Returns the signatures.
async fn sign_and_check(
    c: &SignerServiceClient<Channel>,
    k: &KeyInfo,
    scheme: Scheme,
    from: usize,
    n: usize,
) -> Vec<Vec<u8>> {
    let mut tasks = Vec::new();
    for i in from..from + n / 2 {
        let (mut c, key_id) = (c.clone(), k.key_id.clone());
        tasks.push(tokio::spawn(async move {
            let m = message(scheme, i);
            let r = c
                .sign(SignRequest {
                    key_id,
                    message: m.clone(),
                    idempotency_key: String::new(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap()
                .into_inner();
            vec![(m, r.signature, r.recovery_id)]
        }));
    }
    for chunk in (from + n / 2..from + n).collect::<Vec<_>>().chunks(50) {
        let (mut c, key_id) = (c.clone(), k.key_id.clone());
        let msgs: Vec<Vec<u8>> = chunk.iter().map(|i| message(scheme, *i)).collect();
        tasks.push(tokio::spawn(async move {
            let r = c
                .sign_batch(SignBatchRequest {
                    key_id,
                    messages: msgs.clone(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap()
                .into_inner();
            msgs.into_iter()
                .zip(r.signatures)
                .map(|(m, s)| (m, s.signature, s.recovery_id))
                .collect()
        }));
    }
    let mut sigs = Vec::new();
    for t in tasks {
        for (m, sig, recovery_id) in t.await.unwrap() {
            check(scheme, &k.public_key, &m, &sig, recovery_id);
            sigs.push(sig);
        }
    }
    assert_eq!(sigs.len(), n);
    sigs
}

/// Signs message `i` of the key's scheme through `c` with a 5 s deadline.
fn sign_one(
    c: &SignerServiceClient<Channel>,
    key: &KeyInfo,
    i: usize,
) -> impl std::future::Future<Output = Result<api_proto::SignResponse, tonic::Status>> + use<> {
    let (mut c, key_id) = (c.clone(), key.key_id.clone());
    let scheme = Scheme::try_from(key.scheme).unwrap_or(Scheme::Ed25519);
    async move {
        let mut req = tonic::Request::new(SignRequest {
            key_id,
            message: message(scheme, i),
            idempotency_key: String::new(),
            taproot_merkle_root: None,
        });
        req.set_timeout(Duration::from_secs(5));
        c.sign(req).await.map(|r| r.into_inner())
    }
}

fn code_of<T: std::fmt::Debug>(r: Result<T, tonic::Status>) -> tonic::Code {
    r.expect_err("the request should fail").code()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_nodes_make_and_use_keys_each_holding_only_its_own_share() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    cl.start_all();
    let mut c1 = client(cl.node(1)).await;
    let c2 = client(cl.node(2)).await;
    let mut c3 = client(cl.node(3)).await;
    let status = c1.get_status(api_proto::GetStatusRequest {}).await.unwrap();
    assert_eq!(status.into_inner().mode, "distributed");

    let mut keys = Vec::new();
    for scheme in [Scheme::Ed25519, Scheme::Bip340, Scheme::EcdsaSecp256k1] {
        let k = create(&mut c1, scheme).await;
        // Every node knows the key.
        for c in [&mut c3] {
            let got = c
                .get_key(GetKeyRequest {
                    key_id: k.key_id.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(got.public_key, k.public_key);
        }
        let listed = c3
            .list_keys(ListKeysRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(listed.keys.iter().any(|x| x.key_id == k.key_id));
        // 1,000 signatures, through node 1 and node 2.
        let mut all = sign_and_check(&c1, &k, scheme, 0, 500).await;
        all.extend(sign_and_check(&c2, &k, scheme, 500, 500).await);
        let distinct: HashSet<&Vec<u8>> = all.iter().collect();
        assert_eq!(distinct.len(), all.len(), "every signature is distinct");
        keys.push((scheme, k));
    }
    // BIP86 key-path spends through node 3.
    let (_, bip) = &keys[1];
    let mut c3b = c3.clone();
    for i in 0..10 {
        let m = message(Scheme::Bip340, 10_000 + i);
        let r = c3b
            .sign(SignRequest {
                key_id: bip.key_id.clone(),
                message: m.clone(),
                idempotency_key: String::new(),
                taproot_merkle_root: Some(Vec::new()),
            })
            .await
            .unwrap()
            .into_inner();
        let out = taproot_output_key(&bip.public_key, None);
        assert_eq!(r.verifying_key, out);
        assert!(bip340_ok(&out, &m, &r.signature));
    }
    // A Bitcoin PSBT through the chain API: the BIP340 key's P2TR input signed through node 3,
    // the ECDSA key's P2WPKH input through node 2; Bitcoin Core accepts the result.
    let (_, ecdsa) = &keys[2];
    let spent = vec![
        utxo(40_000, bip86_script(&bip.public_key)),
        utxo(30_000, p2wpkh_script(&ecdsa.public_key)),
    ];
    let psbt = psbt_for(&spent, vec![utxo(69_000, bip86_script(&bip.public_key))]);
    let sign_psbt = |mut c: SignerServiceClient<Channel>, key: KeyInfo, psbt: Vec<u8>| async move {
        let r = c
            .sign_transaction(SignTransactionRequest {
                key_id: key.key_id.clone(),
                transaction: Some(TxOneof::Bitcoin(BitcoinTransaction {
                    psbt,
                    network: "regtest".into(),
                })),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        match r.signed {
            Some(Signed::Bitcoin(b)) => b,
            other => panic!("expected a signed PSBT, got {other:?}"),
        }
    };
    let half = sign_psbt(c3.clone(), bip.clone(), psbt.serialize()).await;
    let done = sign_psbt(c2.clone(), ecdsa.clone(), half.psbt).await;
    assert_core_accepts(&done.transaction, &spent);

    // An imported Ethereum key (web3.js vector) is split across the nodes and keeps its
    // address; it signs through another node.
    let line = include_str!("vectors/ethereum/addresses.txt")
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap();
    let (sk, address) = line.trim().split_once(' ').unwrap();
    let imported = c1
        .import_key(ImportKeyRequest {
            scheme: Scheme::EcdsaSecp256k1 as i32,
            secret_key: hex::decode(sk).unwrap(),
            threshold: 2,
            parties: 3,
            label: "imported".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(imported.ethereum_address, address.trim());
    let mut c2m = c2.clone();
    for i in 0..20 {
        let h = message(Scheme::EcdsaSecp256k1, 20_000 + i);
        let r = c2m
            .sign(SignRequest {
                key_id: imported.key_id.clone(),
                message: h.clone(),
                idempotency_key: String::new(),
                taproot_merkle_root: None,
            })
            .await
            .unwrap()
            .into_inner();
        check(
            Scheme::EcdsaSecp256k1,
            &imported.public_key,
            &h,
            &r.signature,
            r.recovery_id,
        );
    }
    // A key must have one party per node.
    let e = c1
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 4,
            label: String::new(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{e:?}");

    let used = assert_no_nonce_reused(dir.path(), 3);
    assert!(
        used >= 3010 * 2,
        "each signature consumes t = 2 nonce pairs or presignature parts ({used})"
    );

    // Each node's store holds only that node's share, sealed under its own KEK.
    for i in 1..=3u16 {
        cl.nodes[usize::from(i) - 1].take().unwrap().terminate();
    }
    let keks: Vec<service_core::Kek> = (1..=3u16).map(|i| node_kek(&cl, i)).collect();
    for i in 1..=3u16 {
        let store = open_store(&cl, i);
        for (scheme, k) in &keys {
            use service_core::{KeyRepository, Sealer};
            let rec = store
                .get_key(&k.key_id)
                .unwrap()
                .expect("every node stores the key");
            assert_eq!(rec.public_key, k.public_key);
            for (j, kek) in keks.iter().enumerate() {
                if j + 1 != usize::from(i) {
                    assert!(
                        kek.open(&rec.key_id, &rec.sealed).is_err(),
                        "node {}'s KEK must not open node {i}'s share",
                        j + 1
                    );
                }
            }
            let plain = keks[usize::from(i) - 1]
                .open(&rec.key_id, &rec.sealed)
                .unwrap();
            let id = match scheme {
                Scheme::EcdsaSecp256k1 => {
                    assert!(dkls23::KeySet::from_bytes(&plain).is_err());
                    let share = dkls23::KeyShare::from_bytes(&plain).unwrap();
                    assert_eq!(share.public_key_bytes().to_vec(), k.public_key);
                    for peer in (1..=3u16).filter(|p| *p != i) {
                        assert!(share.pair_ready(peer), "OT state with every peer");
                    }
                    share.id()
                }
                Scheme::Ed25519 => {
                    assert!(
                        threshold::KeySet::<threshold::Ed25519Suite>::from_bytes(&plain).is_err()
                    );
                    threshold::PartyKey::<threshold::Ed25519Suite>::from_bytes(&plain)
                        .unwrap()
                        .share()
                        .identifier()
                        .get()
                }
                _ => {
                    assert!(
                        threshold::KeySet::<threshold::Bip340Suite>::from_bytes(&plain).is_err()
                    );
                    threshold::PartyKey::<threshold::Bip340Suite>::from_bytes(&plain)
                        .unwrap()
                        .share()
                        .identifier()
                        .get()
                }
            };
            assert_eq!(id, i, "node {i} holds its own share and no other");
        }
    }
}

/// Signs through `c` in `workers` loops until `stop`, each request with a 5 s deadline;
/// checks every signature; returns (successes, failures with their status).
async fn load_until(
    c: &SignerServiceClient<Channel>,
    key: &KeyInfo,
    scheme: Scheme,
    workers: usize,
    stop: Instant,
) -> (usize, Vec<tonic::Status>) {
    let mut tasks = Vec::new();
    for w in 0..workers {
        let (mut c, key) = (c.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut failed) = (0, Vec::new());
            let mut i = 0;
            while Instant::now() < stop {
                let m = message(scheme, w * 1_000_000 + i);
                i += 1;
                let mut req = tonic::Request::new(SignRequest {
                    key_id: key.key_id.clone(),
                    message: m.clone(),
                    idempotency_key: String::new(),
                    taproot_merkle_root: None,
                });
                req.set_timeout(Duration::from_secs(5));
                match c.sign(req).await {
                    Ok(r) => {
                        let r = r.into_inner();
                        check(scheme, &key.public_key, &m, &r.signature, r.recovery_id);
                        ok += 1;
                    }
                    Err(s) => failed.push(s),
                }
            }
            (ok, failed)
        }));
    }
    let (mut ok, mut failed) = (0, Vec::new());
    for t in tasks {
        let (o, f) = t.await.unwrap();
        ok += o;
        failed.extend(f);
    }
    (ok, failed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_9_of_one_party_during_load_fails_no_request() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    cl.start_all();
    let mut c1 = client(cl.node(1)).await;
    let mut keys = Vec::new();
    for (scheme, workers) in [(Scheme::Ed25519, 12), (Scheme::EcdsaSecp256k1, 4)] {
        keys.push((scheme, workers, create(&mut c1, scheme).await));
    }
    let stop = Instant::now() + Duration::from_secs(8);
    let mut loads = Vec::new();
    for (scheme, workers, k) in keys {
        let c1 = c1.clone();
        loads.push((
            scheme,
            tokio::spawn(async move { load_until(&c1, &k, scheme, workers, stop).await }),
        ));
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
    cl.kill9(2);
    for (scheme, load) in loads {
        let (ok, failed) = load.await.unwrap();
        assert!(
            failed.is_empty(),
            "{scheme:?}: {} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
        assert!(ok > 20, "{scheme:?}: only {ok} signatures");
    }
    assert_no_nonce_reused(dir.path(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_creator_that_dies_before_storing_its_share_leaves_no_key_anywhere() {
    use service_core::KeyRepository;
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    let fault = (
        "TESSERA_TEST_FAULT".to_owned(),
        "die-before-storing-key".to_owned(),
    );
    cl.env[0].push(fault.clone());
    cl.start_all();
    let mut c1 = client(cl.node(1)).await;
    let e = c1
        .create_key(CreateKeyRequest {
            scheme: Scheme::Ed25519 as i32,
            threshold: 2,
            parties: 3,
            label: "never stored by its creator".into(),
            idempotency_key: String::new(),
        })
        .await
        .unwrap_err();
    assert_ne!(e.code(), tonic::Code::Ok);
    cl.kill9(1);
    // Node 2 holds its share pending: stored, not a key.
    cl.nodes[1].take().unwrap().terminate();
    let pending = {
        let s = open_store(&cl, 2);
        assert_eq!(s.key_count().unwrap(), 0);
        let p = s.pending_keys().unwrap();
        assert_eq!(p.len(), 1, "the share waits for its creator");
        assert_eq!(p[0].creator, 1);
        p[0].record.key_id.clone()
    };
    cl.start(2);
    // Its first sweep finds the creator down and keeps the share, which the gauge shows.
    let gauge = |cl: &Cluster, i: u16, want: &str| {
        let deadline = Instant::now() + service_core::SETTLE_EVERY * 2;
        let line = format!("tessera_pending_key_shares {want}\n");
        while !cl.node(i).scrape().contains(&line) {
            assert!(Instant::now() < deadline, "node {i}: no {line:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    gauge(&cl, 2, "1");
    cl.env[0].retain(|kv| *kv != fault);
    cl.start(1);
    // Nodes 2 and 3 ask node 1 in their next sweep; it holds no such key and is not making
    // it, so they delete their shares.
    let deadline = Instant::now() + service_core::SETTLE_EVERY * 3;
    for i in [2, 3] {
        while !cl.node(i).logged("pending share deleted") {
            assert!(Instant::now() < deadline, "node {i} kept its pending share");
        }
    }
    gauge(&cl, 2, "0");
    let mut c2 = client(cl.node(2)).await;
    let k = create(&mut c2, Scheme::Ed25519).await;
    sign_one(&c2, &k, 0).await.unwrap();
    for i in 1..=3u16 {
        cl.nodes[usize::from(i) - 1].take().unwrap().terminate();
    }
    for i in 1..=3u16 {
        let s = open_store(&cl, i);
        assert_eq!(s.pending_keys().unwrap(), vec![], "node {i}");
        assert_eq!(s.get_key(&pending).unwrap(), None, "node {i}");
        let keys: Vec<String> = s
            .list_keys(None, 10)
            .unwrap()
            .into_iter()
            .map(|r| r.key_id)
            .collect();
        assert_eq!(keys, std::slice::from_ref(&k.key_id), "node {i}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_parties_down_fail_fast_and_recover_after_restart() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    cl.start_all();
    let mut c1 = client(cl.node(1)).await;
    let k = create(&mut c1, Scheme::Ed25519).await;
    let ke = create(&mut c1, Scheme::EcdsaSecp256k1).await;
    let sign = |c: &SignerServiceClient<Channel>, i: usize| sign_one(c, &k, i);
    sign(&c1, 0).await.unwrap();
    sign_one(&c1, &ke, 0).await.unwrap();
    cl.kill9(2);
    cl.kill9(3);
    // Until the breakers open, requests fail on their calls to the dead peers.
    for i in 0..10 {
        assert_eq!(code_of(sign(&c1, i).await), tonic::Code::Unavailable);
    }
    for i in 0..20 {
        let t = Instant::now();
        let r = sign(&c1, 100 + i).await;
        let took = t.elapsed();
        let e = r.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(e.message().contains("quorum unavailable"), "{e:?}");
        assert!(took < Duration::from_millis(100), "took {took:?}");
        // The same for threshold ECDSA: its quorum comes from the same breakers.
        let t = Instant::now();
        let e = sign_one(&c1, &ke, 100 + i).await.unwrap_err();
        assert_eq!(e.code(), tonic::Code::Unavailable);
        assert!(
            t.elapsed() < Duration::from_millis(100),
            "ECDSA took {:?}",
            t.elapsed()
        );
    }
    cl.start(2);
    cl.start(3);
    let restarted = Instant::now();
    // Both keys sign again within 5 s; the ECDSA presignatures pooled before the restart
    // died with the parties' memory and are replaced.
    for key in [&k, &ke] {
        let mut i = 1000;
        loop {
            match sign_one(&c1, key, i).await {
                Ok(r) => {
                    let m = message(Scheme::try_from(key.scheme).unwrap(), i);
                    check(
                        Scheme::try_from(key.scheme).unwrap(),
                        &key.public_key,
                        &m,
                        &r.signature,
                        r.recovery_id,
                    );
                    break;
                }
                Err(_) => {
                    assert!(
                        restarted.elapsed() < Duration::from_secs(5),
                        "no {:?} signature 5 s after the restart",
                        key.scheme
                    );
                    i += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert_no_nonce_reused(dir.path(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_partitioned_party_is_left_out_and_rejoins() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    // Every link to and from node 3 goes through a fault proxy.
    let proxies = [
        (1u16, 3u16, FaultProxy::start(cl.peer_addr(3))),
        (2, 3, FaultProxy::start(cl.peer_addr(3))),
        (3, 1, FaultProxy::start(cl.peer_addr(1))),
        (3, 2, FaultProxy::start(cl.peer_addr(2))),
    ];
    for (from, to, p) in &proxies {
        cl.route(*from, *to, p.addr());
    }
    cl.start_all();
    let mut c1 = client(cl.node(1)).await;
    let c3 = client(cl.node(3)).await;
    let keys = [
        create(&mut c1, Scheme::Ed25519).await,
        create(&mut c1, Scheme::EcdsaSecp256k1).await,
    ];
    for k in &keys {
        sign_one(&c3, k, 0).await.unwrap();
    }
    for (_, _, p) in &proxies {
        p.cut();
    }
    // The majority side keeps signing with both keys; the cut-off node cannot.
    for k in &keys {
        for i in 0..20 {
            sign_one(&c1, k, 10 + i).await.unwrap();
        }
        for i in 0..10 {
            assert_eq!(
                code_of(sign_one(&c3, k, 100 + i).await),
                tonic::Code::Unavailable
            );
        }
    }
    for (_, _, p) in &proxies {
        p.heal();
    }
    let healed = Instant::now();
    for k in &keys {
        let mut i = 1000;
        while sign_one(&c3, k, i).await.is_err() {
            assert!(
                healed.elapsed() < Duration::from_secs(5),
                "node 3 did not rejoin within 5 s ({:?})",
                k.scheme
            );
            i += 1;
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        sign_one(&c1, k, 5000).await.unwrap();
    }
    assert_no_nonce_reused(dir.path(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_party_sending_invalid_shares_is_named_and_left_out() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    cl.env[1].push(("TESSERA_TEST_FAULT".into(), "invalid-shares".into()));
    cl.start_all();
    let mut c1 = client(cl.node(1)).await;
    for scheme in [Scheme::Ed25519, Scheme::Bip340, Scheme::EcdsaSecp256k1] {
        let k = create(&mut c1, scheme).await;
        sign_and_check(&c1, &k, scheme, 0, 40).await;
    }
    assert!(
        cl.node(1).logged("culprits=[2]"),
        "node 1 names party 2: {:?}",
        cl.node(1).log.lock().unwrap()
    );
    assert!(!cl.node(1).logged_now("culprits=[3]"));
    // The threshold-ECDSA online shares cannot be checked one by one, but a signer set of
    // node 1 and one co-signer names that co-signer.
    let named = "the only co-signer's online share was wrong";
    assert!(
        cl.node(1).logged(named),
        "{:?}",
        cl.node(1).log.lock().unwrap()
    );
    assert!(
        cl.node(1)
            .log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(named))
            .all(|l| l.contains("culprits=[2]")),
        "node 1 names party 2 for ECDSA: {:?}",
        cl.node(1).log.lock().unwrap()
    );
    assert_no_nonce_reused(dir.path(), 3);
}

fn tls_of(cl: &Cluster, i: u16) -> peer_grpc::NodeTls {
    let node = cl.dir.join(format!("node-{i}"));
    peer_grpc::NodeTls {
        ca_pem: std::fs::read(cl.dir.join("ca.pem")).unwrap(),
        cert_pem: std::fs::read(node.join("node.pem")).unwrap(),
        key_pem: std::fs::read(node.join("node.key")).unwrap(),
    }
}

async fn ping(tls: &peer_grpc::NodeTls, id: u16, addr: std::net::SocketAddr) -> Result<(), String> {
    use service_core::peer::{PeerLink, PeerReply, PeerRequest};
    let link = peer_grpc::GrpcPeers::connect(tls, &[(id, addr)]).unwrap();
    match link
        .call(id, PeerRequest::Ping, Duration::from_secs(3))
        .await
    {
        Ok(PeerReply::Done) => Ok(()),
        Ok(other) => Err(format!("{other:?}")),
        Err(e) => Err(e.to_string()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn peers_outside_the_cluster_ca_or_configuration_are_refused() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    // A 4-node set of certificates, of which nodes 1–3 form the cluster: node 4's
    // certificate is from the right CA but its id is configured nowhere.
    let mut cl = Cluster::init(4, dir.path());
    for i in 1..=3u16 {
        let path = &cl.configs[usize::from(i) - 1];
        let text = std::fs::read_to_string(path).unwrap();
        let at = text.find("[[cluster.peers]]\nid = 4\n").unwrap();
        let end = at + text[at..].find("\"\n").unwrap() + 2;
        std::fs::write(path, format!("{}{}", &text[..at], &text[end..])).unwrap();
    }
    for i in 1..=3 {
        cl.start(i);
    }
    let node1 = cl.peer_addr(1);
    ping(&tls_of(&cl, 2), 1, node1)
        .await
        .expect("a configured peer is answered");
    let e = ping(&tls_of(&cl, 4), 1, node1).await.unwrap_err();
    assert!(e.contains("PERMISSION_DENIED"), "{e}");
    let other = tempfile::tempdir().unwrap();
    let foreign = Cluster::init(3, other.path());
    // The client trusts the real CA but presents node 2's certificate from another CA.
    let mut impostor = tls_of(&foreign, 2);
    impostor.ca_pem = tls_of(&cl, 2).ca_pem;
    let e = ping(&impostor, 1, node1).await.unwrap_err();
    assert!(
        e.contains("transport"),
        "a certificate from another CA is refused: {e}"
    );
    assert!(
        cl.node(1).logged("refused a peer call"),
        "node 1 logs the refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_idempotency_key_means_the_same_on_every_node() {
    let _one = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    cl.start_all();
    let mut clients = Vec::new();
    for i in 1..=3 {
        clients.push(client(cl.node(i)).await);
    }
    let k = create(&mut clients[0], Scheme::Ed25519).await;
    // Several idempotency keys, so that their home nodes differ.
    for n in 0..6 {
        let ik = format!("payment-{n}");
        let m = message(Scheme::Ed25519, 7_000 + n);
        let mut seen = Vec::new();
        // Every node twice, in turn.
        for round in 0..6 {
            let r = clients[round % 3]
                .sign(SignRequest {
                    key_id: k.key_id.clone(),
                    message: m.clone(),
                    idempotency_key: ik.clone(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap()
                .into_inner();
            assert!(ed25519_ok(&k.public_key, &m, &r.signature));
            seen.push(r.signature);
        }
        assert!(
            seen.iter().all(|s| *s == seen[0]),
            "key {ik}: every node returns the first signature"
        );
        // The same key with another message is a conflict on every node.
        for c in clients.iter_mut() {
            let e = c
                .sign(SignRequest {
                    key_id: k.key_id.clone(),
                    message: message(Scheme::Ed25519, 9_000 + n),
                    idempotency_key: ik.clone(),
                    taproot_merkle_root: None,
                })
                .await
                .unwrap_err();
            assert_eq!(e.code(), tonic::Code::FailedPrecondition, "{e:?}");
        }
    }
    assert_no_nonce_reused(dir.path(), 3);
}

/// With `--auth api-key` on every node, each co-signing node checks ITS OWN policy for the
/// client the coordinating node names: a client that node 1 lets sign but nodes 2 and 3 do
/// not gets no signature (PERMISSION_DENIED), whatever node 1 says; once nodes 2 and 3 allow
/// it (changed while they run), it signs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn co_signing_nodes_enforce_their_own_policy_for_the_client() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let mut cl = cluster(3, dir.path());
    let apikey = |cl: &Cluster, i: u16, args: &[&str]| -> String {
        let data = cl.data_dir(i).display().to_string();
        let kek = cl.dir.join(format!("node-{i}/kek")).display().to_string();
        let mut all = vec!["apikey", "create", "--data-dir", &data, "--kek-file", &kek];
        all.extend_from_slice(args);
        let (ok, out, err) = test_support::run_cli(&all, &[]);
        assert!(ok, "{err}");
        out.trim().to_owned()
    };
    let ops = apikey(&cl, 1, &["--name", "ops", "--admin", "--keys", "*"]);
    let app = apikey(
        &cl,
        1,
        &["--name", "app", "--keys", "*", "--schemes", "ed25519"],
    );
    for i in [2, 3] {
        apikey(&cl, i, &["--name", "ops", "--policy-only", "--keys", "*"]);
        apikey(&cl, i, &["--name", "app", "--policy-only"]);
    }
    for e in &mut cl.env {
        e.push(("TESSERA_AUTH".into(), "api-key".into()));
    }
    cl.start_all();
    let mut c = client(cl.node(1)).await;
    let k = c
        .create_key(authed(
            CreateKeyRequest {
                scheme: Scheme::Ed25519 as i32,
                threshold: 2,
                parties: 3,
                label: String::new(),
                idempotency_key: String::new(),
            },
            &ops,
        ))
        .await
        .unwrap()
        .into_inner();
    let sign = |m: &'static [u8]| SignRequest {
        key_id: k.key_id.clone(),
        message: m.to_vec(),
        idempotency_key: String::new(),
        taproot_merkle_root: None,
    };
    let e = c.sign(authed(sign(b"by app"), &app)).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::PermissionDenied, "{e:?}");
    assert!(
        e.message().contains("app") && e.message().contains("co-sign"),
        "{e:?}"
    );
    assert!(cl.node(2).logged("co-signing refused") || cl.node(3).logged("co-signing refused"));
    let r = c
        .sign(authed(sign(b"by ops"), &ops))
        .await
        .unwrap()
        .into_inner();
    assert!(ed25519_ok(&k.public_key, b"by ops", &r.signature));

    // Nodes 2 and 3 now allow app, while they run.
    for i in [2, 3] {
        let data = cl.data_dir(i).display().to_string();
        let kek = cl.dir.join(format!("node-{i}/kek")).display().to_string();
        let (ok, _, err) = test_support::run_cli(
            &[
                "apikey",
                "revoke",
                "--data-dir",
                &data,
                "--kek-file",
                &kek,
                "--name",
                "app",
            ],
            &[],
        );
        assert!(ok, "{err}");
        apikey(
            &cl,
            i,
            &["--name", "app", "--policy-only", "--keys", &k.key_id],
        );
    }
    let r = c
        .sign(authed(sign(b"by app"), &app))
        .await
        .unwrap()
        .into_inner();
    assert!(ed25519_ok(&k.public_key, b"by app", &r.signature));
}

/// `msg` with `key` as its `authorization: Bearer` credential.
fn authed<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    r
}
