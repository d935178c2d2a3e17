//! Writes the seed corpora of the fuzz targets: a few valid encodings of every message and
//! record each target decodes, made with the crates' own encoders from real keys and real
//! protocol runs (on the CPU backend), so a coverage-guided run starts past the length and
//! magic checks. Usage: `seeds <corpus dir>`; writes `<corpus dir>/<target>/<name>`.
//! `fuzz/smoke.sh` builds it with the targets and runs it before the first fuzz run.

use std::collections::BTreeMap;
use std::error::Error;
use std::path::{Path, PathBuf};

use api_proto::peer::{ExchangeRequest, ExchangeResponse};
use backend_cpu::CpuBackend;
use dkls23::ot::{VsotMsg1, VsotMsg2, VsotMsg3, VsotMsg4, VsotMsg5};
use prost::Message;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use service_core::audit::{ChainKey, Checkpoint, Envelope, Event, GENESIS};
use service_core::peer::{NewKey, PeerReply, PeerRequest, RemoteFailure, RemoteKind};
use service_core::ports::{KeyOrigin, KeyRecord, PendingKey};
use service_core::{Kek, LoadedKey, Scheme, Sealer, Signature};
use threshold::TaprootTweak;
use threshold::dkg::part1_batch;
use threshold::round1::commit_batch;
use threshold::{Bip340Suite, Ed25519Suite, Identifier, PartyKey, SigningPackage, Suite};

type Res<T> = Result<T, Box<dyn Error>>;

/// One target's corpus directory.
struct Corpus(PathBuf);

impl Corpus {
    fn new(root: &Path, target: &str) -> Res<Self> {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        Ok(Self(dir))
    }
    fn put(&self, name: &str, bytes: &[u8]) -> Res<()> {
        std::fs::write(self.0.join(name), bytes)?;
        Ok(())
    }
}

/// The canonical encoding of the scalar 1 in either byte order (`1` little-endian is
/// `2²⁴⁸` big-endian, below every group order used here).
const ONE: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 1;
    b
};

fn peer(root: &Path) -> Res<()> {
    let c = Corpus::new(root, "peer_messages")?;
    let session = [3u8; 16];
    let requests = [
        PeerRequest::Ping,
        PeerRequest::DkgStart {
            session,
            key: NewKey {
                key_id: "k_0123456789abcdef".into(),
                scheme: Scheme::Bip340,
                threshold: 2,
                parties: 3,
                label: "treasury".into(),
                created_at_ms: 1_765_000_000_000,
                owner: "ops".into(),
            },
            dkg_id: [5; 32],
        },
        PeerRequest::DkgShares {
            session,
            round1: vec![(1, vec![1; 40]), (2, vec![2; 40])],
        },
        PeerRequest::DkgDeliver {
            session,
            step: 1,
            share: zeroize::Zeroizing::new(ONE.to_vec()),
        },
        PeerRequest::DkgFinish {
            session,
            confirmations: vec![(1, [1; 32]), (3, [3; 32])],
        },
        PeerRequest::Abort {
            sessions: vec![session, [4; 16]],
        },
        PeerRequest::Commit {
            key_id: "k1".into(),
            count: 16,
        },
        PeerRequest::SignShares {
            key_id: "k1".into(),
            items: vec![(session, vec![0, 0, 0, 0, 1, 7, 0, 1])],
            client: "ops".into(),
        },
        PeerRequest::PresignStart {
            key_id: "k1".into(),
            signers: vec![1, 2],
            sessions: vec![session],
        },
        PeerRequest::PresignDeliver {
            key_id: "k1".into(),
            round: 2,
            items: vec![(session, vec![9; 20])],
        },
        PeerRequest::EcdsaSign {
            key_id: "k1".into(),
            items: vec![(session, [7; 32])],
            client: String::new(),
        },
        PeerRequest::SignFor {
            key_id: "k1".into(),
            message: b"hello".to_vec(),
            taproot_merkle_root: Some(vec![]),
            idempotency_key: "idem-1".into(),
            client: "ops".into(),
        },
    ];
    let replies = [
        PeerReply::Done,
        PeerReply::Round1(vec![1; 40]),
        PeerReply::Confirmation([8; 32]),
        PeerReply::Commitments(vec![(session, vec![2; 66])]),
        PeerReply::Shares(vec![Ok(ONE.to_vec()), Err("no nonces".into())]),
        PeerReply::Signed(Signature {
            signature: vec![6; 64],
            verifying_key: vec![2; 33],
            recovery_id: 1,
        }),
        PeerReply::Failed(RemoteFailure {
            message: "bad share".into(),
            culprits: vec![2],
            kind: RemoteKind::InvalidArgument,
        }),
    ];
    let mut encoded_requests = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        let e = r.encode()?;
        c.put(&format!("request-{i:02}-{}", r.kind()), &e)?;
        encoded_requests.push(e);
    }
    let mut encoded_replies = Vec::new();
    for (i, r) in replies.iter().enumerate() {
        let e = r.encode()?;
        c.put(&format!("reply-{i:02}"), &e)?;
        encoded_replies.push(e);
    }
    let envelope = ExchangeRequest {
        requests: encoded_requests,
    };
    c.put("exchange-request", &envelope.encode_to_vec())?;
    let envelope = ExchangeResponse {
        replies: encoded_replies,
    };
    c.put("exchange-response", &envelope.encode_to_vec())
}

/// A DKLs23 key set and one real presigning session's messages; writes the targets
/// `dkls23_messages` and `dkls23_key_material`.
fn dkls23(root: &Path, accel: &CpuBackend, rng: &mut ChaCha20Rng) -> Res<()> {
    let msgs = Corpus::new(root, "dkls23_messages")?;
    let keys = Corpus::new(root, "dkls23_key_material")?;
    let mut set = dkls23::embedded::dkg(accel, 2, 3, rng)?;
    keys.put("key-set-2-of-3", &set.to_bytes())?;
    for share in set.shares() {
        keys.put(&format!("key-share-{}", share.id()), &share.to_bytes())?;
    }
    // Every message is prefixed with its sender, the target's first byte.
    let with_from = |from: u16, b: &[u8]| [&[from as u8][..], b].concat();
    let signers = [1u16, 3];
    let mut round1 = Vec::new();
    let mut sent1 = Vec::new();
    for &p in &signers {
        let share = set.share(p).ok_or("no share")?;
        let (st, m) = dkls23::sign::start(accel, share, &signers, &[4; 32], rng)?;
        round1.push(st);
        sent1.extend(m);
    }
    for m in &sent1 {
        msgs.put(
            &format!("round1-{}-{}", m.from, m.to),
            &with_from(m.from, &m.to_bytes()),
        )?;
    }
    let mut round2 = Vec::new();
    let mut sent2 = Vec::new();
    for (st, &p) in round1.into_iter().zip(&signers) {
        let mine: Vec<_> = sent1.iter().filter(|m| m.to == p).cloned().collect();
        let share = set.share_mut(p).ok_or("no share")?;
        let (st, m) = st.round2(accel, share, &mine, rng)?;
        round2.push(st);
        sent2.extend(m);
    }
    for m in &sent2 {
        msgs.put(
            &format!("round2-{}-{}", m.from, m.to),
            &with_from(m.from, &m.to_bytes()),
        )?;
    }
    for (st, &p) in round2.into_iter().zip(&signers) {
        let mine: Vec<_> = sent2.iter().filter(|m| m.to == p).cloned().collect();
        let share = set.share_mut(p).ok_or("no share")?;
        let m = st.presign(accel, share, &mine)?.sign(&[7; 32]);
        msgs.put(&format!("round3-{p}"), &with_from(p, &m.to_bytes()))?;
    }
    // The base-OT flows: fixed-length, valid points (the group key) and scalars.
    let point = set.public_key_bytes();
    let vsot1 = [&point[..], &point[..], &ONE[..]].concat();
    let vsot2 = point.repeat(VsotMsg2::LEN / point.len());
    let vsot = [
        (vsot1.len() == VsotMsg1::LEN).then_some(vsot1),
        (vsot2.len() == VsotMsg2::LEN).then_some(vsot2),
        Some(vec![0x5a; VsotMsg3::LEN]),
        Some(vec![0xa5; VsotMsg4::LEN]),
        Some(vec![0x3c; VsotMsg5::LEN]),
    ];
    for (i, m) in vsot.iter().enumerate() {
        let m = m.as_ref().ok_or("base OT message length changed")?;
        msgs.put(&format!("vsot-{}", i + 1), &with_from(2, m))?;
    }
    Ok(())
}

/// One suite's FROST messages and key encodings, for `frost_messages`.
fn frost<S: Suite>(c: &Corpus, accel: &CpuBackend, rng: &mut ChaCha20Rng, name: &str) -> Res<()> {
    let set = threshold::embedded::dkg::<S>(accel, 2, 3, rng)?;
    c.put(&format!("{name}-key-set"), &set.to_bytes())?;
    c.put(
        &format!("{name}-group-key"),
        &set.public_package().group_key().to_bytes(),
    )?;
    let shares: Vec<_> = set.shares().iter().take(2).collect();
    let mut commitments = BTreeMap::new();
    for (share, (_, comm)) in shares.iter().zip(commit_batch::<S>(accel, &shares, rng)?) {
        let id = share.identifier();
        c.put(&format!("{name}-commitments-{id}"), &comm.to_bytes())?;
        if let Some(key) = PartyKey::from_set(&set, id) {
            c.put(&format!("{name}-party-key-{id}"), &key.to_bytes())?;
        }
        commitments.insert(id, comm);
    }
    let tweaks = [
        TaprootTweak::None,
        TaprootTweak::KeyPath,
        TaprootTweak::ScriptRoot([9; 32]),
    ];
    for (i, tweak) in tweaks.into_iter().enumerate() {
        let package = SigningPackage::new(commitments.clone(), b"message", tweak).to_bytes();
        c.put(&format!("{name}-signing-package-{i}"), &package)?;
        // The held-commitments form: the signer's own commitments, then the package.
        if let Some(own) = commitments.values().next() {
            c.put(
                &format!("{name}-signing-package-known-{i}"),
                &[own.to_bytes(), package].concat(),
            )?;
        }
    }
    let id = Identifier::new(1)?;
    for (_, package) in part1_batch::<S>(accel, &[(id, 2, 3, [6; 32])], rng)? {
        c.put(&format!("{name}-dkg-round1"), &package.to_bytes())?;
    }
    Ok(())
}

/// Stored key material of every scheme and the JSON records, for `stored_records`.
fn stored(root: &Path, accel: &CpuBackend) -> Res<()> {
    let c = Corpus::new(root, "stored_records")?;
    let kek = Kek::from_bytes([7; 32]);
    let secret = {
        let mut s = [0u8; 32];
        s[31] = 0x2a;
        s
    };
    for scheme in Scheme::ALL {
        let key = LoadedKey::import(accel, scheme, &secret, 2, 3)?;
        let material = key.to_bytes();
        c.put(&format!("key-{scheme}"), &material)?;
        let key_id = format!("k_{scheme}");
        let record = KeyRecord {
            sealed: kek.seal(&key_id, &material)?,
            key_id,
            scheme,
            threshold: 2,
            parties: 3,
            public_key: key.public_key(),
            label: "seed".into(),
            created_at_ms: 1_765_000_000_000,
            owner: "ops".into(),
            mac: Vec::new(),
        }
        .authenticate(&kek);
        // The binary form the store writes, and the JSON form of earlier versions it reads.
        c.put(&format!("record-{scheme}"), &record.encode()?)?;
        c.put(&format!("record-json-{scheme}"), &serde_json::to_vec(&record)?)?;
        // A co-signing node's share while its creator has not settled it.
        let pending = PendingKey {
            record,
            origin: KeyOrigin::Import,
            creator: 1,
        };
        c.put(&format!("pending-{scheme}"), &pending.encode()?)?;
    }
    // Written as stored text, so the seed stays valid when optional fields are added.
    let idem = format!(
        r#"{{"fingerprint":"{}","response":"{}","created_at_ms":1765000000000}}"#,
        "01".repeat(32),
        "7b7d"
    );
    c.put("idempotency", idem.as_bytes())?;
    let chain = ChainKey::of(&kek);
    let events = [
        Event::KeyCreated {
            key_id: "k1".into(),
            scheme: Scheme::Ed25519,
            threshold: 2,
            parties: 3,
            origin: KeyOrigin::Dkg,
            client: "ops".into(),
            at_ms: 1,
        },
        Event::SignatureIssued {
            key_id: "k1".into(),
            message_sha256: "00".repeat(32),
            client: String::new(),
            transaction: Some(service_core::chain::TxSummary {
                chain: service_core::chain::ChainKind::Bitcoin,
                kind: "psbt".into(),
                network: Some("regtest".into()),
                transfers: vec![service_core::chain::TransferView {
                    to: "bcrt1qexample".into(),
                    amount: "1000".into(),
                }],
                fee: Some("141".into()),
            }),
            at_ms: 2,
        },
        Event::AccessDenied {
            client: "intruder".into(),
            action: "Sign".into(),
            key_id: Some("k1".into()),
            at_ms: 3,
        },
    ];
    let mut prev = GENESIS.to_vec();
    for (i, event) in events.into_iter().enumerate() {
        let envelope = Envelope::seal(&chain, &prev, event)?;
        c.put(&format!("audit-{i}"), &envelope.encode()?)?;
        prev = envelope.hash;
    }
    c.put(
        "audit-checkpoint",
        &Checkpoint::seal(&chain, 3, &prev)?.encode()?,
    )
}

fn grpc(root: &Path) -> Res<()> {
    use api_proto as pb;
    let c = Corpus::new(root, "grpc_requests")?;
    let create = pb::CreateKeyRequest {
        scheme: pb::Scheme::Bip340.into(),
        threshold: 2,
        parties: 3,
        label: "treasury".into(),
        idempotency_key: "idem-1".into(),
    };
    c.put("create-key", &create.encode_to_vec())?;
    let import = pb::ImportKeyRequest {
        scheme: pb::Scheme::EcdsaSecp256k1.into(),
        secret_key: ONE.to_vec(),
        threshold: 2,
        parties: 2,
        label: String::new(),
        idempotency_key: String::new(),
    };
    c.put("import-key", &import.encode_to_vec())?;
    let sign = pb::SignRequest {
        key_id: "k1".into(),
        message: vec![7; 32],
        idempotency_key: "idem-2".into(),
        taproot_merkle_root: Some(vec![9; 32]),
    };
    c.put("sign", &sign.encode_to_vec())?;
    let batch = pb::SignBatchRequest {
        key_id: "k1".into(),
        messages: vec![vec![1; 32], vec![2; 32]],
        taproot_merkle_root: Some(Vec::new()),
    };
    c.put("sign-batch", &batch.encode_to_vec())?;
    let verify = pb::VerifyRequest {
        scheme: pb::Scheme::Ed25519.into(),
        public_key: vec![2; 32],
        message: b"hello".to_vec(),
        signature: vec![3; 64],
    };
    c.put("verify", &verify.encode_to_vec())?;
    c.put(
        "get-key",
        &pb::GetKeyRequest {
            key_id: "k1".into(),
        }
        .encode_to_vec(),
    )?;
    let list = pb::ListKeysRequest {
        page_size: 10,
        page_token: "abc".into(),
    };
    c.put("list-keys", &list.encode_to_vec())
}

fn rest(root: &Path) -> Res<()> {
    let c = Corpus::new(root, "rest_bodies")?;
    let bodies = [
        (
            "create-key",
            r#"{"scheme":"SCHEME_BIP340","threshold":2,"parties":3,"label":"treasury","idempotencyKey":"idem-1"}"#,
        ),
        (
            "create-key-number",
            r#"{"scheme":3,"threshold":2,"parties":2,"idempotency_key":"x"}"#,
        ),
        (
            "import-key",
            r#"{"scheme":"SCHEME_ED25519","secretKey":"AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=","threshold":1,"parties":1}"#,
        ),
        (
            "sign",
            r#"{"message":"aGVsbG8","idempotencyKey":"idem-2","taprootMerkleRoot":"CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk="}"#,
        ),
        (
            "sign-batch",
            r#"{"messages":["AQ==","Ag-_"],"taprootMerkleRoot":""}"#,
        ),
        (
            "verify",
            r#"{"scheme":"SCHEME_ECDSA_SECP256K1","publicKey":"Ag==","message":"aGk=","signature":"AAAA"}"#,
        ),
    ];
    for (name, body) in bodies {
        c.put(name, body.as_bytes())?;
    }
    Ok(())
}

fn main() -> Res<()> {
    let root = PathBuf::from(std::env::args().nth(1).ok_or("usage: seeds <corpus dir>")?);
    let accel = CpuBackend::new();
    let mut rng = ChaCha20Rng::seed_from_u64(2026);
    peer(&root)?;
    dkls23(&root, &accel, &mut rng)?;
    let c = Corpus::new(&root, "frost_messages")?;
    frost::<Ed25519Suite>(&c, &accel, &mut rng, "ed25519")?;
    frost::<Bip340Suite>(&c, &accel, &mut rng, "bip340")?;
    c.put("scalar-one", &ONE)?;
    stored(&root, &accel)?;
    grpc(&root)?;
    rest(&root)?;
    chain(&root)
}

/// `chain_requests`: a selector byte (see the target), then the published vectors of
/// tests/vectors (EIP-155, EIP-712, `@solana/kit` messages, all hex) and a PSBT spending a P2TR output
/// of the target's BIP340 key.
fn chain(root: &Path) -> Res<()> {
    let c = Corpus::new(root, "chain_requests")?;
    let vectors = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/vectors");
    let eip155 = std::fs::read_to_string(vectors.join("ethereum/eip155_example.txt"))?;
    let payload = eip155
        .lines()
        .find_map(|l| l.strip_prefix("signing_payload 0x"))
        .ok_or("no signing_payload in eip155_example.txt")?;
    c.put("eip155", &[&[0u8][..], &hex_bytes(payload)?].concat())?;
    let mail = std::fs::read(vectors.join("ethereum/eip712_mail.json"))?;
    c.put("eip712", &[&[1u8][..], &mail].concat())?;
    let solana: serde_json::Value =
        serde_json::from_slice(&std::fs::read(vectors.join("solana/vectors.json"))?)?;
    for (i, m) in solana["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
    {
        let hex = m["message"]
            .as_str()
            .ok_or("a Solana vector without message")?;
        let bytes = hex_bytes(hex)?;
        c.put(&format!("solana-{i}"), &[&[4u8][..], &bytes].concat())?;
    }
    use bitcoin::key::UntweakedPublicKey;
    let secp = bitcoin::secp256k1::Secp256k1::verification_only();
    let key = UntweakedPublicKey::from_slice(&hex_bytes(
        "79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798",
    )?)?;
    let script = bitcoin::ScriptBuf::new_p2tr(&secp, key, None);
    let tx = bitcoin::Transaction {
        version: bitcoin::transaction::Version::TWO,
        lock_time: bitcoin::absolute::LockTime::ZERO,
        input: vec![bitcoin::TxIn::default()],
        output: vec![bitcoin::TxOut {
            value: bitcoin::Amount::from_sat(9_000),
            script_pubkey: script.clone(),
        }],
    };
    let mut psbt = bitcoin::Psbt::from_unsigned_tx(tx)?;
    psbt.inputs[0].witness_utxo = Some(bitcoin::TxOut {
        value: bitcoin::Amount::from_sat(10_000),
        script_pubkey: script,
    });
    c.put("psbt-p2tr", &[&[2u8][..], &psbt.serialize()].concat())
}

fn hex_bytes(s: &str) -> Res<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| Ok(u8::from_str_radix(s.get(i..i + 2).ok_or("odd hex")?, 16)?))
        .collect()
}
