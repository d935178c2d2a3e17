//! End to end over gRPC: chain transactions signed by 2-of-3 threshold keys of a running
//! `tessera` server and checked by the chains' own validation code.
//! - Bitcoin: a PSBT spending a BIP86 P2TR output and a P2TR output with a script tree (key
//!   path, BIP340 key) and a P2WPKH output (ECDSA key), finalized by the service; every input
//!   of the network transaction passes Bitcoin Core's script interpreter (libbitcoinconsensus
//!   of Bitcoin Core 26, Taproot rules on), and a lied-about amount fails it. A script-path
//!   spend of a leaf that is the BIP340 key's checksig passes it too.
//! - Ethereum: a type-2 and a legacy EIP-155 transfer from a 2-of-3 ECDSA key's address are
//!   accepted and mined by a real node (Hardhat's EDR node), moving the balances; EIP-712 and
//!   EIP-191 signatures recover to the key with libsecp256k1.
//! - Solana: legacy and v0 System transfers from a 2-of-3 Ed25519 key's address are executed by
//!   a real Solana runtime (LiteSVM), moving the balances.
//! - Bad requests are INVALID_ARGUMENT naming what is wrong, and sign nothing.
//! - The audit trail records the decoded summary of what was signed.
//! - Broadcasts are idempotent and a dead node trips the breaker; over `https://` (a TLS front
//!   before the real node) a transaction is mined when the node's certificate chains to the
//!   configured CA, and refused before it reaches the node when it does not.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use alloy_consensus::{SignableTransaction, TxEip1559, TxLegacy};
use alloy_primitives::{Bytes, TxKind, U256};
use api_proto::sign_transaction_request::Transaction as TxOneof;
use api_proto::sign_transaction_response::Signed;
use api_proto::signer_service_client::SignerServiceClient;
use api_proto::{
    BitcoinTransaction, Chain, CreateKeyRequest, EthereumTransaction, GetAddressRequest, KeyInfo,
    Scheme, SignPersonalMessageRequest, SignTransactionRequest, SignTransactionResponse,
    SignTypedDataRequest, SolanaTransaction,
};
use bitcoin::key::UntweakedPublicKey;
use bitcoin::opcodes::all::OP_CHECKSIG;
use bitcoin::psbt::Psbt;
use bitcoin::script::Builder;
use bitcoin::secp256k1::{PublicKey, Secp256k1};
use bitcoin::taproot::{LeafVersion, TaprootBuilder, TaprootSpendInfo};
use bitcoin::{Address, CompressedPublicKey, KnownHrp, ScriptBuf, Transaction};
use test_support::bitcoin_tx::{bip86_script, core_verify, p2wpkh_script, psbt_for, utxo};
use test_support::ethereum_node::{EthNode, quantity};
use test_support::solana_svm::{Sent, Svm, Version as SolVersion};
use test_support::tls_front::TlsFront;
use test_support::{Server, run_cli};
use tonic::Code;
use tonic::transport::Channel;

async fn create(c: &mut SignerServiceClient<Channel>, scheme: Scheme) -> KeyInfo {
    c.create_key(CreateKeyRequest {
        scheme: scheme as i32,
        threshold: 2,
        parties: 3,
        label: "e2e chains".into(),
        idempotency_key: String::new(),
    })
    .await
    .unwrap()
    .into_inner()
}

async fn address(
    c: &mut SignerServiceClient<Channel>,
    key: &KeyInfo,
    chain: Chain,
    network: &str,
) -> Result<String, tonic::Status> {
    c.get_address(GetAddressRequest {
        key_id: key.key_id.clone(),
        chain: chain as i32,
        network: network.into(),
    })
    .await
    .map(|r| r.into_inner().address)
}

async fn sign_psbt(
    c: &mut SignerServiceClient<Channel>,
    key: &KeyInfo,
    psbt: Vec<u8>,
) -> Result<SignTransactionResponse, tonic::Status> {
    c.sign_transaction(SignTransactionRequest {
        key_id: key.key_id.clone(),
        transaction: Some(TxOneof::Bitcoin(BitcoinTransaction {
            psbt,
            network: "regtest".into(),
        })),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

fn internal_key(key: &KeyInfo) -> UntweakedPublicKey {
    UntweakedPublicKey::from_slice(&key.public_key).unwrap()
}

/// Two leaves (checksigs by unrelated keys) under the key's internal key.
fn script_tree(key: &KeyInfo) -> TaprootSpendInfo {
    let secp = Secp256k1::new();
    let leaf = |b: u8| {
        let other = bitcoin::secp256k1::Keypair::from_seckey_slice(&secp, &[b; 32]).unwrap();
        Builder::new()
            .push_x_only_key(&other.x_only_public_key().0)
            .push_opcode(OP_CHECKSIG)
            .into_script()
    };
    TaprootBuilder::new()
        .add_leaf(1, leaf(0x31))
        .unwrap()
        .add_leaf(1, leaf(0x32))
        .unwrap()
        .finalize(&secp, internal_key(key))
        .unwrap()
}

fn signed_bitcoin(r: SignTransactionResponse) -> api_proto::SignedBitcoinTransaction {
    match r.signed {
        Some(Signed::Bitcoin(b)) => b,
        other => panic!("expected a signed PSBT, got {other:?}"),
    }
}

fn assert_invalid(r: Result<impl std::fmt::Debug, tonic::Status>, needles: &[&str]) {
    let s = r.expect_err("the request must be refused");
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    for n in needles {
        assert!(s.message().contains(n), "`{}` lacks `{n}`", s.message());
    }
}

fn signatures_issued(server: &Server) -> f64 {
    client::metrics::sum_samples(&server.scrape(), "tessera_signatures_total", None)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bitcoin_psbt_signed_by_threshold_keys_passes_bitcoin_core() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let taproot = create(&mut c, Scheme::Bip340).await;
    let segwit = create(&mut c, Scheme::EcdsaSecp256k1).await;
    let ed = create(&mut c, Scheme::Ed25519).await;

    // Addresses: BIP86 P2TR of the BIP340 key, P2WPKH of the ECDSA key, per network.
    let secp = Secp256k1::verification_only();
    let want = Address::p2tr(&secp, internal_key(&taproot), None, KnownHrp::Regtest);
    let got = address(&mut c, &taproot, Chain::Bitcoin, "regtest")
        .await
        .unwrap();
    assert_eq!(got, want.to_string());
    assert!(got.starts_with("bcrt1p"), "{got}");
    let main = address(&mut c, &taproot, Chain::Bitcoin, "").await.unwrap();
    assert!(main.starts_with("bc1p"), "{main}");
    let pk = CompressedPublicKey(PublicKey::from_slice(&segwit.public_key).unwrap());
    let got = address(&mut c, &segwit, Chain::Bitcoin, "testnet")
        .await
        .unwrap();
    assert_eq!(got, Address::p2wpkh(&pk, KnownHrp::Testnets).to_string());
    assert_invalid(
        address(&mut c, &ed, Chain::Bitcoin, "regtest").await,
        &["ed25519", "bitcoin"],
    );
    assert_invalid(
        address(&mut c, &taproot, Chain::Bitcoin, "moonnet").await,
        &["network", "moonnet"],
    );

    // (a) BIP86 P2TR and (b) P2TR with a script tree, both the BIP340 key's; (c) the ECDSA
    // key's P2WPKH.
    let tree = script_tree(&taproot);
    let spent = vec![
        utxo(50_000, bip86_script(&taproot.public_key)),
        utxo(60_000, ScriptBuf::new_p2tr_tweaked(tree.output_key())),
        utxo(70_000, p2wpkh_script(&segwit.public_key)),
    ];
    // The payee: the BIP86 address of an unrelated key (x of the generator).
    let payee_key = UntweakedPublicKey::from_slice(
        &hex::decode("79be667ef9dcbbac55a06295ce870b07029bfcdb2dce28d959f2815b16f81798").unwrap(),
    )
    .unwrap();
    let payee = Address::p2tr(&secp, payee_key, None, KnownHrp::Regtest);
    let outputs = vec![
        utxo(150_000, payee.script_pubkey()),
        utxo(29_000, bip86_script(&taproot.public_key)),
    ];
    let mut psbt = psbt_for(&spent, outputs);
    psbt.inputs[1].tap_internal_key = Some(internal_key(&taproot));
    psbt.inputs[1].tap_merkle_root = tree.merkle_root();

    let before = signatures_issued(&server);
    let first = sign_psbt(&mut c, &taproot, psbt.serialize()).await.unwrap();
    let summary = first.summary.clone().unwrap();
    assert_eq!(
        (
            summary.chain.as_str(),
            summary.kind.as_str(),
            summary.network.as_str()
        ),
        ("bitcoin", "psbt", "regtest")
    );
    assert_eq!(summary.fee, "1000");
    assert_eq!(summary.transfers[0].to, payee.to_string());
    assert_eq!(summary.transfers[0].amount, "150000");
    let first = signed_bitcoin(first);
    assert!(first.transaction.is_empty(), "input (c) is still unsigned");
    let half = Psbt::deserialize(&first.psbt).unwrap();
    assert!(half.inputs[0].tap_key_sig.is_some() && half.inputs[1].tap_key_sig.is_some());
    assert!(half.inputs[2].partial_sigs.is_empty());

    let done = signed_bitcoin(sign_psbt(&mut c, &segwit, first.psbt).await.unwrap());
    assert!(
        !done.transaction.is_empty(),
        "every input is signed: finalized"
    );
    let tx: Transaction = bitcoin::consensus::deserialize(&done.transaction).unwrap();
    assert_eq!(done.txid, tx.compute_txid().to_string());
    for index in 0..spent.len() {
        core_verify(&done.transaction, &spent, index)
            .unwrap_or_else(|e| panic!("Bitcoin Core refuses input {index}: {e:?}"));
    }
    assert_eq!(signatures_issued(&server) - before, 3.0);

    // A PSBT that lies about the amount it spends: the signature commits to the claimed
    // amount, so Bitcoin Core refuses the transaction against the real one.
    let real = vec![utxo(80_000, bip86_script(&taproot.public_key))];
    let claimed = vec![utxo(40_000, bip86_script(&taproot.public_key))];
    let lying = psbt_for(
        &claimed,
        vec![utxo(39_000, bip86_script(&taproot.public_key))],
    );
    let signed = signed_bitcoin(
        sign_psbt(&mut c, &taproot, lying.serialize())
            .await
            .unwrap(),
    );
    core_verify(&signed.transaction, &claimed, 0).unwrap();
    assert!(core_verify(&signed.transaction, &real, 0).is_err());

    // The CLI: `tessera address` and `tessera sign-tx` with a PSBT file in base64, as Bitcoin
    // Core writes them.
    let key_id = taproot.key_id.clone();
    let (ok, out, err) = run_cli(
        &[
            "address",
            "--server",
            &server.url,
            "--key-id",
            &key_id,
            "--chain",
            "bitcoin",
            "--network",
            "regtest",
        ],
        &[],
    );
    assert!(ok, "{err}");
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["address"], want.to_string());
    let spent_cli = vec![utxo(20_000, bip86_script(&taproot.public_key))];
    let cli_psbt = psbt_for(
        &spent_cli,
        vec![utxo(19_000, bip86_script(&taproot.public_key))],
    );
    let file = dir.path().join("spend.psbt");
    let b64 = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        cli_psbt.serialize(),
    );
    std::fs::write(&file, b64).unwrap();
    let (ok, out, err) = run_cli(
        &[
            "sign-tx",
            "--server",
            &server.url,
            "--key-id",
            &key_id,
            "--chain",
            "bitcoin",
            "--network",
            "regtest",
            "--tx-file",
            &file.display().to_string(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    let printed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(printed["summary"]["fee"], "1000");
    let tx = hex::decode(printed["signed"]["transaction"].as_str().unwrap()).unwrap();
    core_verify(&tx, &spent_cli, 0).unwrap();

    // Refusals name what is wrong and sign nothing.
    let before = signatures_issued(&server);
    assert_invalid(
        sign_psbt(&mut c, &taproot, b"not a psbt".to_vec()).await,
        &["transaction.bitcoin.psbt", "PSBT"],
    );
    let mut no_utxo = psbt_for(
        &spent[..1],
        vec![utxo(1_000, bip86_script(&taproot.public_key))],
    );
    no_utxo.inputs[0].witness_utxo = None;
    assert_invalid(
        sign_psbt(&mut c, &taproot, no_utxo.serialize()).await,
        &["input 0", "UTXO"],
    );
    let others = psbt_for(
        &spent[2..],
        vec![utxo(1_000, bip86_script(&taproot.public_key))],
    );
    assert_invalid(
        sign_psbt(&mut c, &taproot, others.serialize()).await,
        &["no input", "this key"],
    );
    assert_invalid(
        sign_psbt(&mut c, &ed, psbt.serialize()).await,
        &["key_id", "ed25519", "bitcoin"],
    );
    assert_eq!(signatures_issued(&server), before, "nothing was signed");

    // The audit trail holds the decoded summary with each signature.
    assert!(server.terminate().success());
    let export = dir.path().join("audit.jsonl");
    let data = dir.path().display().to_string();
    let (ok, _, err) = run_cli(
        &[
            "audit",
            "export",
            "--data-dir",
            &data,
            "--out",
            &export.display().to_string(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&export).unwrap();
    let with_summary: Vec<serde_json::Value> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["envelope"]["event"]["transaction"]["chain"] == "bitcoin")
        .collect();
    assert_eq!(
        with_summary.len(),
        5,
        "three inputs, the lying PSBT's one, the CLI's one"
    );
    let t = &with_summary[0]["envelope"]["event"]["transaction"];
    assert_eq!(t["fee"], "1000");
    assert_eq!(t["transfers"][0]["amount"], "150000");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_script_path_leaf_of_a_threshold_key_passes_bitcoin_core() {
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let taproot = create(&mut c, Scheme::Bip340).await;

    // An output whose internal key is another party's; one leaf is the threshold key's checksig.
    let secp = Secp256k1::new();
    let other = bitcoin::secp256k1::Keypair::from_seckey_slice(&secp, &[0x35; 32]).unwrap();
    let leaf = Builder::new()
        .push_x_only_key(&internal_key(&taproot))
        .push_opcode(OP_CHECKSIG)
        .into_script();
    let other_leaf = Builder::new()
        .push_x_only_key(&other.x_only_public_key().0)
        .push_opcode(OP_CHECKSIG)
        .into_script();
    let tree = TaprootBuilder::new()
        .add_leaf(1, leaf.clone())
        .unwrap()
        .add_leaf(1, other_leaf)
        .unwrap()
        .finalize(&secp, other.x_only_public_key().0)
        .unwrap();
    let spent = vec![utxo(90_000, ScriptBuf::new_p2tr_tweaked(tree.output_key()))];
    let mut psbt = psbt_for(
        &spent,
        vec![utxo(89_000, bip86_script(&taproot.public_key))],
    );
    psbt.inputs[0].tap_internal_key = Some(other.x_only_public_key().0);
    psbt.inputs[0].tap_merkle_root = tree.merkle_root();
    let control = tree
        .control_block(&(leaf.clone(), LeafVersion::TapScript))
        .unwrap();
    psbt.inputs[0]
        .tap_scripts
        .insert(control, (leaf.clone(), LeafVersion::TapScript));

    let done = signed_bitcoin(sign_psbt(&mut c, &taproot, psbt.serialize()).await.unwrap());
    let tx: Transaction = bitcoin::consensus::deserialize(&done.transaction).unwrap();
    let witness: Vec<&[u8]> = tx.input[0].witness.iter().collect();
    assert_eq!(witness.len(), 3, "signature, leaf script, control block");
    assert_eq!(witness[1], leaf.as_bytes());
    core_verify(&done.transaction, &spent, 0).unwrap();
}

async fn sign_tx(
    c: &mut SignerServiceClient<Channel>,
    key: &KeyInfo,
    transaction: TxOneof,
) -> Result<SignTransactionResponse, tonic::Status> {
    c.sign_transaction(SignTransactionRequest {
        key_id: key.key_id.clone(),
        transaction: Some(transaction),
        ..Default::default()
    })
    .await
    .map(|r| r.into_inner())
}

/// A one-ether EIP-1559 transfer to `to` with `nonce`, priced for `node`'s base fee.
fn ether_transfer(node: &EthNode, to: &str, nonce: u64) -> TxEip1559 {
    TxEip1559 {
        chain_id: node.chain_id(),
        nonce,
        gas_limit: 21_000,
        max_fee_per_gas: 2 * node.base_fee() + 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to.parse().unwrap()),
        value: U256::from(1_000_000_000_000_000_000u128),
        access_list: Default::default(),
        input: Bytes::new(),
    }
}

fn eth(unsigned_tx: Vec<u8>) -> TxOneof {
    TxOneof::Ethereum(EthereumTransaction { unsigned_tx })
}

/// r‖s‖v (v = 27 + recovery id) over `digest` recovers, with libsecp256k1, to the key.
fn recovers_to(key: &KeyInfo, digest: &[u8], rsv: &[u8]) {
    assert_eq!(rsv.len(), 65);
    assert!(matches!(rsv[64], 27 | 28), "v = {}", rsv[64]);
    test_support::ecdsa_check(&key.public_key, digest, &rsv[..64], u32::from(rsv[64] - 27));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ethereum_transactions_signed_by_a_threshold_key_are_mined_by_a_real_node() {
    let Some(node) = EthNode::start() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let key = create(&mut c, Scheme::EcdsaSecp256k1).await;
    let ed = create(&mut c, Scheme::Ed25519).await;
    let from = address(&mut c, &key, Chain::Ethereum, "").await.unwrap();
    assert_eq!(from, key.ethereum_address);
    assert_invalid(
        address(&mut c, &ed, Chain::Ethereum, "").await,
        &["ed25519", "ethereum"],
    );
    const ETHER: u128 = 1_000_000_000_000_000_000;
    node.fund(&from, 10 * ETHER);
    let chain_id = node.chain_id();
    let to = "0x1111111111111111111111111111111111111111";
    let to_addr: alloy_primitives::Address = to.parse().unwrap();

    let base = node.base_fee();
    let type2 = TxEip1559 {
        chain_id,
        nonce: node.nonce(&from),
        gas_limit: 21_000,
        max_fee_per_gas: 2 * base + 1_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to_addr),
        value: U256::from(ETHER / 4),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let legacy = |nonce: u64, chain_id: Option<u64>| TxLegacy {
        chain_id,
        nonce,
        gas_price: node.gas_price(),
        gas_limit: 21_000,
        to: TxKind::Call(to_addr),
        value: U256::from(12_345u64),
        input: Bytes::new(),
    };
    let mut sent_value = 0u128;
    for (unsigned, kind, value) in [
        (type2.encoded_for_signing(), "eip1559", ETHER / 4),
        (
            legacy(1, Some(chain_id)).encoded_for_signing(),
            "legacy-eip155",
            12_345,
        ),
    ] {
        let before = node.balance(&from);
        let r = sign_tx(&mut c, &key, eth(unsigned)).await.unwrap();
        let summary = r.summary.unwrap();
        assert_eq!(
            (summary.kind.as_str(), summary.network.as_str()),
            (kind, "31337")
        );
        assert_eq!(summary.transfers[0].amount, value.to_string());
        let Some(Signed::Ethereum(signed)) = r.signed else {
            panic!("expected a signed Ethereum transaction");
        };
        assert_eq!(signed.from, from);
        let hash = node.send_raw(&signed.signed_tx);
        assert_eq!(hash, format!("0x{}", hex::encode(&signed.tx_hash)));
        let receipt = node.receipt(&hash);
        assert_eq!(receipt["status"], "0x1", "{receipt}");
        assert_eq!(receipt["from"], from.to_lowercase(), "{receipt}");
        let fee = quantity(&receipt["gasUsed"]) * quantity(&receipt["effectiveGasPrice"]);
        assert_eq!(node.balance(&from), before - value - fee, "{kind}");
        sent_value += value;
    }
    assert_eq!(node.balance(to), sent_value);
    assert_eq!(node.nonce(&from), 2);

    // EIP-712 (the specification's Mail example) and EIP-191.
    let typed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/ethereum/eip712_mail.json"
    ))
    .unwrap();
    let r = c
        .sign_typed_data(SignTypedDataRequest {
            key_id: key.key_id.clone(),
            typed_data_json: typed,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        hex::encode(&r.digest),
        "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
    );
    assert_eq!(r.address, from);
    recovers_to(&key, &r.digest, &r.signature);
    let r = c
        .sign_personal_message(SignPersonalMessageRequest {
            key_id: key.key_id.clone(),
            message: b"Hello World".to_vec(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        hex::encode(&r.digest),
        "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
    );
    recovers_to(&key, &r.digest, &r.signature);

    // Refusals: malformed RLP, chain id 0, a pre-EIP-155 legacy transaction, a key of another
    // scheme; nothing is signed.
    let before = signatures_issued(&server);
    assert_invalid(
        sign_tx(&mut c, &key, eth(vec![0x02, 0xc1])).await,
        &["transaction.ethereum.unsigned_tx", "RLP"],
    );
    let zero = TxEip1559 {
        chain_id: 0,
        ..type2.clone()
    };
    assert_invalid(
        sign_tx(&mut c, &key, eth(zero.encoded_for_signing())).await,
        &["chain id"],
    );
    assert_invalid(
        sign_tx(&mut c, &key, eth(legacy(2, None).encoded_for_signing())).await,
        &["EIP-155"],
    );
    assert_invalid(
        sign_tx(&mut c, &ed, eth(type2.encoded_for_signing())).await,
        &["key_id", "ed25519", "ethereum"],
    );
    assert_eq!(signatures_issued(&server), before, "nothing was signed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn solana_transfers_signed_by_a_threshold_key_are_executed_by_litesvm() {
    let Some(mut svm) = Svm::start_or_skip("e2e solana") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let server = Server::start(dir.path(), &[]);
    let mut c = server.client().await;
    let key = create(&mut c, Scheme::Ed25519).await;
    let ecdsa = create(&mut c, Scheme::EcdsaSecp256k1).await;
    let from = address(&mut c, &key, Chain::Solana, "").await.unwrap();
    let want = chains::solana::address(&key.public_key.clone().try_into().unwrap());
    assert_eq!(from, want);
    assert_invalid(
        address(&mut c, &ecdsa, Chain::Solana, "").await,
        &["ecdsa_secp256k1", "solana"],
    );
    const FEE: u64 = 5000;
    svm.airdrop(&from, 10_000_000_000);
    let to = chains::solana::address(&[9; 32]);
    let amount = 2_000_000u64;
    for (version, kind) in [
        (SolVersion::Legacy, "solana-legacy"),
        (SolVersion::V0, "solana-v0"),
    ] {
        let before = (svm.balance(&from), svm.balance(&to));
        let message = svm.transfer_message(&from, &to, amount, version);
        let r = sign_tx(
            &mut c,
            &key,
            TxOneof::Solana(SolanaTransaction {
                message: message.clone(),
            }),
        )
        .await
        .unwrap();
        let summary = r.summary.unwrap();
        assert_eq!(summary.kind, kind);
        assert_eq!(summary.transfers[0].to, to);
        assert_eq!(summary.transfers[0].amount, amount.to_string());
        let Some(Signed::Solana(signed)) = r.signed else {
            panic!("expected a signed Solana transaction");
        };
        assert!(signed.complete);
        assert!(test_support::ed25519_ok(
            &key.public_key,
            &message,
            &signed.signature
        ));
        match svm.send(&signed.transaction) {
            Sent::Accepted { signature, .. } => assert_eq!(signature, signed.txid),
            Sent::Rejected { error, logs } => panic!("LiteSVM refused ({kind}): {error} {logs:?}"),
        }
        assert_eq!(svm.balance(&from), before.0 - amount - FEE, "{kind}");
        assert_eq!(svm.balance(&to), before.1 + amount, "{kind}");
    }

    // A message the key does not sign, malformed bytes, a key of another scheme.
    let before = signatures_issued(&server);
    let other = chains::solana::address(&[5; 32]);
    svm.airdrop(&other, 10_000_000_000);
    let foreign = svm.transfer_message(&other, &to, amount, SolVersion::Legacy);
    let solana = |message: Vec<u8>| TxOneof::Solana(SolanaTransaction { message });
    assert_invalid(
        sign_tx(&mut c, &key, solana(foreign.clone())).await,
        &["transaction.solana.message", "not a required signer"],
    );
    assert_invalid(
        sign_tx(&mut c, &key, solana(vec![1, 0])).await,
        &["transaction.solana.message", "Solana message"],
    );
    assert_invalid(
        sign_tx(&mut c, &ecdsa, solana(foreign)).await,
        &["key_id", "ecdsa_secp256k1", "solana"],
    );
    assert_eq!(signatures_issued(&server), before, "nothing was signed");
}

/// `SignTransaction` with `broadcast`: the node mines it and its id comes back; the same
/// request again (same idempotency key) sends the same transaction, which the chain counts
/// once; with the node down the call is UNAVAILABLE, then refused at once by the open breaker;
/// with the node back (after the cooldown) broadcasting works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_are_idempotent_and_a_dead_node_trips_the_breaker() {
    let Some(node) = EthNode::start() else {
        return;
    };
    let port = node.port();
    let dir = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let server = Server::start(
        dir.path(),
        &[
            "--ethereum-rpc-url",
            &url,
            "--breaker-failures",
            "2",
            "--breaker-cooldown-ms",
            "1500",
            "--broadcast-timeout-ms",
            "2000",
        ],
    );
    let mut c = server.client().await;
    let key = create(&mut c, Scheme::EcdsaSecp256k1).await;
    let from = key.ethereum_address.clone();
    const ETHER: u128 = 1_000_000_000_000_000_000;
    let to = "0x2222222222222222222222222222222222222222";
    let transfer = |node: &EthNode, nonce: u64| ether_transfer(node, to, nonce);
    let request = |unsigned: Vec<u8>, idempotency_key: &str| SignTransactionRequest {
        key_id: key.key_id.clone(),
        transaction: Some(eth(unsigned)),
        idempotency_key: idempotency_key.into(),
        broadcast: true,
    };
    node.fund(&from, 10 * ETHER);

    let unsigned = transfer(&node, 0).encoded_for_signing();
    let first = c
        .sign_transaction(request(unsigned.clone(), "pay-1"))
        .await
        .unwrap()
        .into_inner();
    let Some(Signed::Ethereum(signed)) = &first.signed else {
        panic!("expected a signed Ethereum transaction");
    };
    let hash = format!("0x{}", hex::encode(&signed.tx_hash));
    assert_eq!(first.broadcast_txid, hash);
    assert_eq!(node.receipt(&hash)["status"], "0x1");
    assert_eq!(node.balance(to), ETHER);

    // The same request again: the stored transaction is sent again and counted once.
    let again = c
        .sign_transaction(request(unsigned.clone(), "pay-1"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(again.signed, first.signed, "the same signed transaction");
    assert_eq!(again.broadcast_txid, hash);
    assert_eq!(node.balance(to), ETHER, "not double-counted");
    assert_eq!(node.nonce(&from), 1);

    // The node goes down: each call fails (after its retries) until the breaker opens; then
    // calls are refused at once, naming the breaker.
    let next = transfer(&node, 1).encoded_for_signing();
    drop(node);
    for attempt in 0..2 {
        let e = c
            .sign_transaction(request(next.clone(), "pay-2"))
            .await
            .unwrap_err();
        assert_eq!(e.code(), Code::Unavailable, "attempt {attempt}: {e:?}");
        assert!(e.message().contains("failed 3 times"), "{}", e.message());
    }
    let e = c
        .sign_transaction(request(next.clone(), "pay-2"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable);
    assert!(
        e.message().contains("circuit breaker open"),
        "{}",
        e.message()
    );

    // The node comes back on the same port (a fresh chain): after the cooldown the next
    // broadcast goes through and closes the breaker.
    let node = EthNode::start_on(port).expect("the node restarts");
    node.fund(&from, 10 * ETHER);
    tokio::time::sleep(std::time::Duration::from_millis(1600)).await;
    let fresh = transfer(&node, 0).encoded_for_signing();
    let back = c
        .sign_transaction(request(fresh, "pay-3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(node.receipt(&back.broadcast_txid)["status"], "0x1");
    assert_eq!(node.balance(to), ETHER);

    // Refused before signing: broadcast of a signed message, or to a chain with no node.
    let before = signatures_issued(&server);
    let solana = c
        .sign_transaction(SignTransactionRequest {
            key_id: key.key_id.clone(),
            transaction: Some(TxOneof::Solana(SolanaTransaction { message: vec![1] })),
            idempotency_key: String::new(),
            broadcast: true,
        })
        .await;
    assert_invalid(
        solana,
        &["broadcast", "no solana node", "chains.solana_rpc_url"],
    );
    assert_eq!(signatures_issued(&server), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcasts_reach_a_node_over_https_and_an_untrusted_certificate_is_refused() {
    let Some(node) = EthNode::start() else {
        return;
    };
    let front = TlsFront::start(node.port());
    let stranger = TlsFront::start(node.port());
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("node-ca.pem");
    std::fs::write(&ca, front.ca_pem()).unwrap();
    let other_ca = dir.path().join("other-ca.pem");
    std::fs::write(&other_ca, stranger.ca_pem()).unwrap();
    let url = format!("https://localhost:{}", front.port());
    let serve = |data: &str, ca: &std::path::Path| {
        Server::start(
            &dir.path().join(data),
            &[
                "--ethereum-rpc-url",
                &url,
                "--chains-ca-file",
                ca.to_str().unwrap(),
                "--broadcast-timeout-ms",
                "2000",
            ],
        )
    };
    const ETHER: u128 = 1_000_000_000_000_000_000;
    let to = "0x3333333333333333333333333333333333333333";
    let transfer = |nonce: u64| ether_transfer(&node, to, nonce).encoded_for_signing();
    let broadcast = |key: &KeyInfo, unsigned: Vec<u8>| SignTransactionRequest {
        key_id: key.key_id.clone(),
        transaction: Some(eth(unsigned)),
        idempotency_key: String::new(),
        broadcast: true,
    };

    // Trusting the CA that signed the node's certificate: sent over TLS and mined.
    let trusting = serve("trusting", &ca);
    let mut c = trusting.client().await;
    let key = create(&mut c, Scheme::EcdsaSecp256k1).await;
    node.fund(&key.ethereum_address, 10 * ETHER);
    let sent = c
        .sign_transaction(broadcast(&key, transfer(0)))
        .await
        .unwrap()
        .into_inner();
    assert!(sent.broadcast_txid.starts_with("0x"), "{sent:?}");
    assert_eq!(node.receipt(&sent.broadcast_txid)["status"], "0x1");
    assert_eq!(node.balance(to), ETHER);

    // Trusting another CA: the handshake fails on the certificate and nothing reaches the node.
    let distrusting = serve("distrusting", &other_ca);
    let mut c = distrusting.client().await;
    let key = create(&mut c, Scheme::EcdsaSecp256k1).await;
    node.fund(&key.ethereum_address, 10 * ETHER);
    let e = c
        .sign_transaction(broadcast(&key, transfer(0)))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::Unavailable, "{e:?}");
    assert!(
        e.message().contains("TLS handshake") && e.message().contains("certificate"),
        "{}",
        e.message()
    );
    assert_eq!(node.nonce(&key.ethereum_address), 0, "nothing was sent");
    assert_eq!(node.balance(to), ETHER);
}
