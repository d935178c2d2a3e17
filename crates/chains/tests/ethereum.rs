//! `chains::ethereum` against published vectors (`tests/vectors/ethereum/`, sources in its
//! README), with signatures checked by an independent library (libsecp256k1 through the
//! `secp256k1` crate), and every refusal path.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxLegacy};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use chains::ethereum::{
    EthPlan, address, personal_message_hash, plan_transaction, rsv, typed_data_hash,
};
use chains::{Chain, Error, Transfer};
use k256::ecdsa::SigningKey;
use sha3::{Digest, Keccak256};

const VECTORS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/vectors/ethereum");

/// `key value` lines of a vector file.
fn vector(name: &str) -> HashMap<String, String> {
    let text = std::fs::read_to_string(format!("{VECTORS}/{name}")).unwrap();
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_string(), v.trim().to_string())
        })
        .collect()
}

fn unhex(s: &str) -> Vec<u8> {
    hex::decode(s.trim_start_matches("0x")).unwrap()
}

fn key(secret: &[u8]) -> SigningKey {
    SigningKey::from_slice(secret).unwrap()
}

fn sec1(sk: &SigningKey) -> Vec<u8> {
    sk.verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec()
}

/// The key's signature over `prehash` (RFC 6979, low S) and its recovery id.
fn sign(sk: &SigningKey, prehash: &[u8; 32]) -> ([u8; 64], u8) {
    let (sig, rid) = sk.sign_prehash_recoverable(prehash).unwrap();
    assert!(sig.normalize_s().is_none(), "k256 signs with low S");
    (sig.to_bytes().into(), rid.to_byte())
}

/// The lower-case hex address libsecp256k1 recovers from a 65-byte r‖s‖v signature.
fn libsecp_recover(hash: &[u8; 32], rsv: &[u8; 65]) -> String {
    let rid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(rsv[64]) - 27).unwrap();
    let sig = secp256k1::ecdsa::RecoverableSignature::from_compact(&rsv[..64], rid).unwrap();
    let pk = secp256k1::SECP256K1
        .recover_ecdsa(secp256k1::Message::from_digest(*hash), &sig)
        .unwrap();
    let h = Keccak256::digest(&pk.serialize_uncompressed()[1..]);
    format!("0x{}", hex::encode(&h[12..]))
}

fn test_key() -> SigningKey {
    key(&Keccak256::digest(b"tessera chains ethereum test key"))
}

fn eip1559(chain_id: u64, to: TxKind) -> TxEip1559 {
    TxEip1559 {
        chain_id,
        nonce: 7,
        gas_limit: 50_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 2_000_000_000,
        to,
        value: U256::from(123_456_789_000_000_000u128),
        access_list: Default::default(),
        input: Bytes::from_static(&[0xa9, 0x05, 0x9c, 0xbb]),
    }
}

fn recipient() -> Address {
    Address::repeat_byte(0x42)
}

fn legacy_155(chain_id: u64) -> TxLegacy {
    TxLegacy {
        chain_id: Some(chain_id),
        nonce: 3,
        gas_price: 10_000_000_000,
        gas_limit: 21_000,
        to: TxKind::Call(recipient()),
        value: U256::from(5u64),
        input: Bytes::new(),
    }
}

fn plan_ok(bytes: &[u8]) -> EthPlan {
    plan_transaction(bytes, &sec1(&test_key())).unwrap()
}

fn assert_malformed(bytes: &[u8], needle: &str) {
    match plan_transaction(bytes, &sec1(&test_key())) {
        Err(Error::Malformed { format, reason }) => {
            assert_eq!(format, "RLP transaction");
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
        }
        other => panic!(
            "{} → {other:?}, want Malformed({needle})",
            hex::encode(bytes)
        ),
    }
}

fn assert_refused(bytes: &[u8], needle: &str) {
    match plan_transaction(bytes, &sec1(&test_key())) {
        Err(Error::Refused(reason)) => {
            assert!(reason.contains(needle), "{reason:?} lacks {needle:?}")
        }
        other => panic!("{} → {other:?}, want Refused({needle})", hex::encode(bytes)),
    }
}

#[test]
fn eip155_example_plans_and_signs_to_the_published_transaction() {
    let v = vector("eip155_example.txt");
    let sk = key(&unhex(&v["secret_key"]));
    let plan = plan_transaction(&unhex(&v["signing_payload"]), &sec1(&sk)).unwrap();
    assert_eq!(plan.prehash().to_vec(), unhex(&v["signing_hash"]));
    assert_eq!(plan.from().to_lowercase(), v["sender"]);
    let s = plan.summary();
    assert_eq!(s.chain, Chain::Ethereum);
    assert_eq!(s.kind, "legacy-eip155");
    assert_eq!(s.network.as_deref(), Some(v["chain_id"].as_str()));
    assert_eq!(
        s.transfers,
        vec![Transfer {
            to: v["to"].clone(),
            amount: v["value"].parse().unwrap()
        }]
    );
    let gas: u128 = v["gas_limit"].parse().unwrap();
    let price: u128 = v["gas_price"].parse().unwrap();
    assert_eq!(s.fee, Some(gas * price));

    let (sig, rid) = sign(&sk, &plan.prehash());
    let signed = plan.finish(&sig, rid).unwrap();
    assert_eq!(signed.signed_tx, unhex(&v["signed_tx"]));
    assert_eq!(
        signed.tx_hash.to_vec(),
        Keccak256::digest(&signed.signed_tx).to_vec()
    );
    assert_eq!(signed.from.to_lowercase(), v["sender"]);
    assert_eq!(Some(signed.from), address(&sec1(&sk)));
}

#[test]
fn typed_transactions_prehash_their_payload_and_summarize_their_fields() {
    let sk = test_key();
    let tx = eip1559(31337, TxKind::Call(recipient()));
    let bytes = tx.encoded_for_signing();
    assert_eq!(bytes[0], 0x02);
    let plan = plan_ok(&bytes);
    assert_eq!(plan.prehash().to_vec(), Keccak256::digest(&bytes).to_vec());
    let s = plan.summary();
    assert_eq!(s.kind, "eip1559");
    assert_eq!(s.network.as_deref(), Some("31337"));
    assert_eq!(
        s.transfers,
        vec![Transfer {
            to: "0x4242424242424242424242424242424242424242".into(),
            amount: 123_456_789_000_000_000
        }]
    );
    assert_eq!(s.fee, Some(50_000 * 30_000_000_000));
    let (sig, rid) = sign(&sk, &plan.prehash());
    let signed = plan.finish(&sig, rid).unwrap();
    // The envelope is type ‖ rlp([fields.., y_parity, r, s]): alloy decodes it back to the
    // same fields and libsecp256k1 recovers our address from its signature.
    assert_eq!(signed.signed_tx[0], 0x02);
    let decoded =
        alloy_consensus::Signed::<TxEip1559>::eip2718_decode(&mut signed.signed_tx.as_slice())
            .unwrap();
    assert_eq!(decoded.tx(), &tx);
    assert_eq!(decoded.hash().0, signed.tx_hash);
    let mut rsv65 = [0u8; 65];
    rsv65[..64].copy_from_slice(&sig);
    rsv65[64] = 27 + rid;
    assert_eq!(
        libsecp_recover(&Keccak256::digest(&bytes).into(), &rsv65),
        signed.from.to_lowercase()
    );

    let create = eip1559(1, TxKind::Create).encoded_for_signing();
    assert_eq!(
        plan_ok(&create).summary().transfers[0].to,
        "contract-creation"
    );

    let tx = TxEip2930 {
        chain_id: 10,
        nonce: 0,
        gas_price: 1_000_000_007,
        gas_limit: 60_000,
        to: TxKind::Call(recipient()),
        value: U256::from(1u64),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let bytes = tx.encoded_for_signing();
    let plan = plan_ok(&bytes);
    assert_eq!(plan.prehash().to_vec(), Keccak256::digest(&bytes).to_vec());
    assert_eq!(plan.summary().kind, "eip2930");
    assert_eq!(plan.summary().network.as_deref(), Some("10"));
    assert_eq!(plan.summary().fee, Some(60_000 * 1_000_000_007));
    assert_eq!(plan.summary().transfers[0].amount, 1);
    let (sig, rid) = sign(&sk, &plan.prehash());
    let signed = plan.finish(&sig, rid).unwrap();
    assert_eq!(signed.signed_tx[0], 0x01);
}

#[test]
fn eip712_mail_example_hashes_to_the_spec_value_and_its_signatures_recover_independently() {
    let json = std::fs::read_to_string(format!("{VECTORS}/eip712_mail.json")).unwrap();
    let v = vector("eip712_mail_expected.txt");
    let (hash, summary) = typed_data_hash(&json).unwrap();
    assert_eq!(hash.to_vec(), unhex(&v["signing_hash"]));
    assert_eq!(summary.chain, Chain::Ethereum);
    assert_eq!(summary.kind, "eip712");
    assert_eq!(summary.network.as_deref(), Some("1"));
    assert!(summary.transfers.is_empty());
    assert_eq!(summary.fee, None);

    // The spec's own signature by keccak256("cow") recovers, by libsecp256k1, to Cow.
    let mut published = [0u8; 65];
    published[..32].copy_from_slice(&unhex(&v["r"]));
    published[32..64].copy_from_slice(&unhex(&v["s"]));
    published[64] = v["v"].parse().unwrap();
    let cow = v["signer"].to_lowercase();
    assert_eq!(libsecp_recover(&hash, &published), cow);

    // Our rsv of a fresh signature by the same key over our hash: the same bytes (RFC 6979),
    // and libsecp256k1 recovers Cow from it.
    let sk = key(&Keccak256::digest(v["secret_key_preimage"].as_bytes()));
    assert_eq!(address(&sec1(&sk)).unwrap(), v["signer"]);
    let (sig, rid) = sign(&sk, &hash);
    let ours = rsv(&sig, rid);
    assert_eq!(libsecp_recover(&hash, &ours), cow);
    assert_eq!(ours, published);

    // The same document as a JSON string (how some wallets pass it) gives the same hash.
    let quoted = serde_json::to_string(&json).unwrap();
    assert_eq!(typed_data_hash(&quoted).unwrap().0, hash);
    // A changed message changes the hash.
    let (other, _) = typed_data_hash(&json.replace("Hello, Bob!", "Hello, Bob?")).unwrap();
    assert_ne!(other, hash);
}

#[test]
fn eip712_documents_that_do_not_encode_are_malformed() {
    for (doc, needle) in [
        ("not json", "expected"),
        (r#"{"types":{},"domain":{}}"#, "missing field `primaryType`"),
        (
            r#"{"types":{"EIP712Domain":[]},"primaryType":"Mail","domain":{},"message":{}}"#,
            "Mail",
        ),
        (
            r#"{"types":{"EIP712Domain":[],"M":[{"name":"n","type":"uint8"}]},
                "primaryType":"M","domain":{},"message":{"n":"not a number"}}"#,
            "\"M\"",
        ),
    ] {
        match typed_data_hash(doc) {
            Err(Error::Malformed { format, reason }) => {
                assert_eq!(format, "EIP-712 JSON");
                assert!(reason.contains(needle), "{reason:?} lacks {needle:?}");
            }
            other => panic!("{doc} → {other:?}"),
        }
    }
    let no_chain = r#"{"types":{"EIP712Domain":[{"name":"name","type":"string"}]},
        "primaryType":"EIP712Domain","domain":{"name":"x"},"message":{}}"#;
    assert_eq!(typed_data_hash(no_chain).unwrap().1.network, None);
}

#[test]
fn eip191_hashes_and_the_web3_signature_match() {
    let text = std::fs::read_to_string(format!("{VECTORS}/eip191.txt")).unwrap();
    let mut n = 0;
    for line in text.lines().filter(|l| l.starts_with("hash ")) {
        let (message, hash) = line["hash ".len()..].split_once('|').unwrap();
        assert_eq!(
            personal_message_hash(message.as_bytes()).to_vec(),
            unhex(hash)
        );
        n += 1;
    }
    assert_eq!(n, 2);
    let v = vector("eip191.txt");
    let sk = key(&unhex(&v["sign_secret_key"]));
    assert_eq!(address(&sec1(&sk)).unwrap(), v["sign_address"]);
    let hash = personal_message_hash(v["sign_message"].as_bytes());
    let (sig, rid) = sign(&sk, &hash);
    let ours = rsv(&sig, rid);
    assert_eq!(ours.to_vec(), unhex(&v["sign_signature"]));
    assert_eq!(
        libsecp_recover(&hash, &ours),
        v["sign_address"].to_lowercase()
    );
}

#[test]
fn malformed_rlp_is_malformed() {
    let good = eip1559(1, TxKind::Call(recipient())).encoded_for_signing();
    assert_malformed(&[], "empty input");
    assert_malformed(&good[..good.len() - 1], "EIP-1559");
    assert_malformed(&[0x02], "EIP-1559 field list");
    // A string where the field list must be.
    assert_malformed(&[0x02, 0x83, 1, 2, 3], "EIP-1559 field list");
    // A list with too few fields.
    assert_malformed(&[0x02, 0xc3, 0x01, 0x02, 0x03], "EIP-1559 fields");
    // An RLP string is neither a type byte nor a list.
    assert_malformed(&[0x85, 1, 2, 3, 4, 5], "neither an EIP-2718 type");
    // Non-canonical integers: nonce 3 as 0x8103 (a one-byte string) and as 0x820003.
    let legacy = legacy_155(1).encoded_for_signing();
    assert_eq!(
        usize::from(legacy[0] - 0xc0),
        legacy.len() - 1,
        "short list header"
    );
    assert_eq!(legacy[1], 0x03, "nonce right after the list header");
    let list = |fields: &[u8]| {
        assert!(fields.len() < 56);
        let mut out = vec![0xc0 + fields.len() as u8];
        out.extend_from_slice(fields);
        out
    };
    assert_malformed(
        &list(&[&[0x81, 0x03][..], &legacy[2..]].concat()),
        "legacy transaction fields",
    );
    assert_malformed(
        &list(&[&[0x82, 0x00, 0x03][..], &legacy[2..]].concat()),
        "legacy transaction fields",
    );
    // A long-form list header for a short list.
    let long_header = [&[0xf8, (legacy.len() - 1) as u8][..], &legacy[1..]].concat();
    assert_malformed(&long_header, "legacy transaction field list");
    // 7 fields: half an EIP-155 payload.
    assert_malformed(&list(&legacy[1..legacy.len() - 2]), "EIP-155 field r");
    // 10 fields.
    assert_malformed(&list(&[&legacy[1..], &[0x80][..]].concat()), "extra fields");
    // An extra field inside a typed list.
    assert_eq!(
        usize::from(good[1] - 0xc0),
        good.len() - 2,
        "short list header"
    );
    let with_extra = [&[0x02][..], &list(&[&good[2..], &[0x01][..]].concat())].concat();
    assert_malformed(&with_extra, "extra fields");
}

#[test]
fn trailing_bytes_are_malformed() {
    for bytes in [
        eip1559(1, TxKind::Call(recipient())).encoded_for_signing(),
        legacy_155(1).encoded_for_signing(),
    ] {
        assert!(plan_transaction(&bytes, &sec1(&test_key())).is_ok());
        let mut longer = bytes.clone();
        longer.push(0x00);
        assert_malformed(&longer, "1 trailing byte(s) after");
        let mut twice = bytes.clone();
        twice.extend_from_slice(&bytes);
        assert_malformed(&twice, "trailing byte(s)");
    }
}

#[test]
fn chain_id_zero_is_refused() {
    assert_refused(
        &eip1559(0, TxKind::Call(recipient())).encoded_for_signing(),
        "chain id 0",
    );
    let mut t = TxEip2930 {
        chain_id: 0,
        ..Default::default()
    };
    t.to = TxKind::Call(recipient());
    assert_refused(&t.encoded_for_signing(), "chain id 0");
    // 9 fields with chain id 0: alloy encodes Some(0) as [.., 0x80, 0x80, 0x80].
    assert_refused(&legacy_155(0).encoded_for_signing(), "chain id 0");
}

#[test]
fn pre_eip155_legacy_is_refused() {
    let mut tx = legacy_155(1);
    tx.chain_id = None;
    let six = tx.encoded_for_signing();
    assert_eq!(six.len(), legacy_155(1).encoded_for_signing().len() - 3);
    assert_refused(&six, "without an EIP-155 chain id");
}

#[test]
fn an_already_signed_legacy_transaction_is_malformed() {
    let v = vector("eip155_example.txt");
    assert_malformed(&unhex(&v["signed_tx"]), "already signed");
}

#[test]
fn unknown_types_are_unsupported() {
    let body = &eip1559(1, TxKind::Call(recipient())).encoded_for_signing()[1..];
    for (ty, needle) in [
        (0x00u8, "type 0x00"),
        (0x03, "type 0x03 (EIP-4844 blob"),
        (0x04, "type 0x04 (EIP-7702"),
        (0x05, "type 0x05"),
        (0x7f, "type 0x7f"),
    ] {
        let mut bytes = vec![ty];
        bytes.extend_from_slice(body);
        match plan_transaction(&bytes, &sec1(&test_key())) {
            Err(Error::Unsupported(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("type {ty:#x} → {other:?}"),
        }
    }
}

#[test]
fn a_value_beyond_128_bits_is_refused() {
    let mut tx = eip1559(1, TxKind::Call(recipient()));
    tx.value = U256::from(u128::MAX) + U256::from(1u8);
    assert_refused(&tx.encoded_for_signing(), "does not fit in 128 bits");
}

#[test]
fn an_invalid_public_key_is_a_key_error() {
    let bytes = eip1559(1, TxKind::Call(recipient())).encoded_for_signing();
    for pk in [&[][..], &[5u8; 33][..], &[4u8; 65][..]] {
        assert!(matches!(
            plan_transaction(&bytes, pk),
            Err(Error::Key(m)) if m.contains("not a SEC1")
        ));
    }
}

#[test]
fn signatures_that_do_not_fit_the_sender_are_refused() {
    let bytes = eip1559(1, TxKind::Call(recipient())).encoded_for_signing();
    let plan = plan_ok(&bytes);
    let h = plan.prehash();
    let expect_sig = |sig: &[u8; 64], rid: u8, needle: &str| match plan.clone().finish(sig, rid) {
        Err(Error::Signature(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
        other => panic!("{other:?}, want Signature({needle})"),
    };

    // Another key's valid signature recovers to that key's address, not the sender's.
    let other = key(&[7u8; 32]);
    let (sig, rid) = sign(&other, &h);
    expect_sig(&sig, rid, &address(&sec1(&other)).unwrap());

    let (sig, rid) = sign(&test_key(), &h);
    // The right signature with the other recovery id recovers another key.
    expect_sig(&sig, 1 - rid, "not to the sender");
    expect_sig(&sig, 2, "recovery id 2 is not 0 or 1");
    // Over another hash.
    let (sig2, rid2) = sign(&test_key(), &[9u8; 32]);
    expect_sig(&sig2, rid2, "not to the sender");
    // High S: n - s with the flipped recovery id is the same point, refused by EIP-2.
    let ks = k256::ecdsa::Signature::from_slice(&sig).unwrap();
    let (r, s) = ks.split_scalars();
    let high = k256::ecdsa::Signature::from_scalars(r.to_bytes(), (-*s).to_bytes()).unwrap();
    expect_sig(&high.to_bytes().into(), 1 - rid, "high S");
    // r = 0.
    let mut zero_r = sig;
    zero_r[..32].fill(0);
    expect_sig(&zero_r, rid, "r or s is 0");

    // And the right one is taken.
    let signed = plan.finish(&sig, rid).unwrap();
    assert_eq!(Some(signed.from), address(&sec1(&test_key())));
}

#[test]
fn rsv_appends_27_plus_the_recovery_id() {
    let sig = [0x11u8; 64];
    assert_eq!(rsv(&sig, 0)[64], 27);
    assert_eq!(rsv(&sig, 1)[64], 28);
    assert_eq!(rsv(&sig, 1)[..64], sig);
}
