//! `chains::ethereum` against a real node: Hardhat's EDR node (`test_support::ethereum_node`).
//! A local k256 key stands in for the threshold key: unsigned EIP-1559, legacy EIP-155 and
//! EIP-2930 transfers built from the node's nonce, chain id and fees are planned, their
//! prehash signed (recoverable, low S), finished and sent with `eth_sendRawTransaction`; each
//! must be mined with status 1 from our address, moving the value to the recipient and value +
//! fee from the sender. A transaction signed for another chain must be refused by the node.
//!
//! Under `CI=true` a missing Node.js/npm or a failed `npm ci` fails the test; elsewhere the
//! test says so and passes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Instant;

use alloy_consensus::{SignableTransaction, TxEip1559, TxEip2930, TxLegacy};
use alloy_primitives::{Address, Bytes, TxKind, U256};
use chains::ethereum::{address, eip55, plan_transaction};
use chains::{Chain, Transfer};
use k256::ecdsa::SigningKey;
use serde_json::json;
use sha3::{Digest, Keccak256};
use test_support::ethereum_node::{EthNode, quantity};

const ETHER: u128 = 1_000_000_000_000_000_000;
const GWEI: u128 = 1_000_000_000;

/// The local key standing in for the threshold key.
struct Sender {
    key: SigningKey,
    sec1: Vec<u8>,
    address: String,
}

/// Plans, signs, finishes and sends `unsigned`; checks the summary, the receipt and both
/// balances. Returns the fee paid.
fn sign_and_send(
    node: &EthNode,
    sender: &Sender,
    unsigned: &[u8],
    kind: &str,
    to: &str,
    value: u128,
) -> u128 {
    let t = Instant::now();
    let before_sender = node.balance(&sender.address);
    let before_to = node.balance(to);

    let plan = plan_transaction(unsigned, &sender.sec1).unwrap();
    let summary = plan.summary().clone();
    assert_eq!(summary.chain, Chain::Ethereum);
    assert_eq!(summary.kind, kind);
    assert_eq!(summary.network.as_deref(), Some("31337"));
    assert_eq!(
        summary.transfers,
        vec![Transfer {
            to: to.to_string(),
            amount: value
        }]
    );
    assert_eq!(
        plan.prehash().to_vec(),
        Keccak256::digest(unsigned).to_vec()
    );
    let (sig, rid) = sender
        .key
        .sign_prehash_recoverable(&plan.prehash())
        .unwrap();
    assert!(sig.normalize_s().is_none(), "low S");
    let signed = plan.finish(&sig.to_bytes().into(), rid.to_byte()).unwrap();
    assert_eq!(signed.from, sender.address);

    let hash = node.send_raw(&signed.signed_tx);
    assert_eq!(hash, format!("0x{}", hex::encode(signed.tx_hash)));
    let receipt = node.receipt(&hash);
    assert_eq!(receipt["status"], "0x1", "{receipt}");
    let ty = match kind {
        "eip1559" => "0x2",
        "eip2930" => "0x1",
        _ => "0x0",
    };
    assert_eq!(receipt["type"], ty, "{receipt}");
    assert_eq!(receipt["from"], sender.address.to_lowercase(), "{receipt}");
    assert_eq!(receipt["to"], to.to_lowercase(), "{receipt}");
    let tx = node.rpc("eth_getTransactionByHash", json!([hash]));
    assert_eq!(tx["from"], sender.address.to_lowercase(), "{tx}");
    assert_eq!(quantity(&tx["value"]), value, "{tx}");
    // The chain the node took the signature for: chainId, or EIP-155's v = 2 × chain id + 35
    // + y parity for a legacy transaction.
    let chain = if tx["chainId"].is_null() {
        (quantity(&tx["v"]) - 35) / 2
    } else {
        quantity(&tx["chainId"])
    };
    assert_eq!(chain, 31337, "{tx}");

    let fee = quantity(&receipt["gasUsed"]) * quantity(&receipt["effectiveGasPrice"]);
    assert!(
        fee > 0 && fee <= summary.fee.unwrap(),
        "fee {fee} ≤ {summary:?}"
    );
    assert_eq!(node.balance(to), before_to + value);
    assert_eq!(node.balance(&sender.address), before_sender - value - fee);
    eprintln!("{kind}: mined {hash}, fee {fee} wei, in {:?}", t.elapsed());
    fee
}

#[test]
fn transfers_of_each_type_are_mined_by_a_real_node() {
    let t = Instant::now();
    let Some(node) = EthNode::start() else {
        return;
    };
    eprintln!("node up at {} in {:?}", node.addr, t.elapsed());
    let chain_id = node.chain_id();
    assert_eq!(chain_id, 31337);

    let key =
        SigningKey::from_slice(&Keccak256::digest(b"tessera ethereum node test sender")).unwrap();
    let sec1 = key
        .verifying_key()
        .to_encoded_point(true)
        .as_bytes()
        .to_vec();
    let sender = Sender {
        address: address(&sec1).unwrap(),
        key,
        sec1,
    };
    node.fund(&sender.address, 10 * ETHER);
    assert_eq!(node.balance(&sender.address), 10 * ETHER);
    let recipient = |b: u8| (Address::repeat_byte(b), eip55(&[b; 20]));

    // EIP-1559: the node's base fee decides the fee cap.
    let (to, to_str) = recipient(0x11);
    let base = node.base_fee();
    let tx = TxEip1559 {
        chain_id,
        nonce: node.nonce(&sender.address),
        gas_limit: 21_000,
        max_fee_per_gas: 2 * base + GWEI,
        max_priority_fee_per_gas: GWEI,
        to: TxKind::Call(to),
        value: U256::from(ETHER / 4),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let unsigned = tx.encoded_for_signing();
    assert_eq!(unsigned[0], 0x02);
    sign_and_send(&node, &sender, &unsigned, "eip1559", &to_str, ETHER / 4);

    // Legacy with EIP-155 replay protection.
    let (to, to_str) = recipient(0x22);
    let price = node.gas_price();
    let tx = TxLegacy {
        chain_id: Some(chain_id),
        nonce: node.nonce(&sender.address),
        gas_price: price,
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(12_345u64),
        input: Bytes::new(),
    };
    let unsigned = tx.encoded_for_signing();
    let fee = sign_and_send(&node, &sender, &unsigned, "legacy-eip155", &to_str, 12_345);
    assert_eq!(
        fee,
        21_000 * price,
        "a legacy transfer pays gas × gas price"
    );

    // EIP-2930 (an empty access list).
    let (to, to_str) = recipient(0x33);
    let tx = TxEip2930 {
        chain_id,
        nonce: node.nonce(&sender.address),
        gas_price: node.gas_price(),
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(ETHER),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let unsigned = tx.encoded_for_signing();
    assert_eq!(unsigned[0], 0x01);
    sign_and_send(&node, &sender, &unsigned, "eip2930", &to_str, ETHER);
    assert_eq!(node.nonce(&sender.address), 3);

    // Signed for chain 1: the chain id is in what was signed, and this node refuses it.
    let (to, to_str) = recipient(0x44);
    let tx = TxLegacy {
        chain_id: Some(1),
        nonce: node.nonce(&sender.address),
        gas_price: node.gas_price(),
        gas_limit: 21_000,
        to: TxKind::Call(to),
        value: U256::from(1u64),
        input: Bytes::new(),
    };
    let plan = plan_transaction(&tx.encoded_for_signing(), &sender.sec1).unwrap();
    assert_eq!(plan.summary().network.as_deref(), Some("1"));
    let (sig, rid) = sender
        .key
        .sign_prehash_recoverable(&plan.prehash())
        .unwrap();
    let signed = plan.finish(&sig.to_bytes().into(), rid.to_byte()).unwrap();
    let hex_tx = format!("0x{}", hex::encode(&signed.signed_tx));
    let answer = node
        .try_rpc("eth_sendRawTransaction", json!([hex_tx]))
        .unwrap();
    let error = answer.expect_err("a transaction for chain 1 must be refused by chain 31337");
    assert!(
        error.to_string().to_lowercase().contains("chain"),
        "{error}"
    );
    eprintln!("chain 1 transaction refused: {error}");
    assert_eq!(node.balance(&to_str), 0);
    assert_eq!(node.nonce(&sender.address), 3);
    eprintln!("whole node test: {:?}", t.elapsed());
}
