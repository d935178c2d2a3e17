//! The PSBT adapter against Bitcoin Core's own script interpreter (libbitcoinconsensus of Bitcoin
//! Core 26, the `bitcoinconsensus` crate): local single keys stand in for the threshold service,
//! and every input of every transaction the adapter finalizes is run through Core's
//! `VerifyScript` with the Taproot rules on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use bitcoin::absolute::LockTime;
use bitcoin::hashes::Hash;
use bitcoin::key::{Keypair, TapTweak};
use bitcoin::opcodes::all::{OP_CHECKSIG, OP_CSV, OP_DROP};
use bitcoin::psbt::{Psbt, PsbtSighashType};
use bitcoin::script::Builder;
use bitcoin::secp256k1::{All, Message, PublicKey, Secp256k1, SecretKey};
use bitcoin::sighash::{EcdsaSighashType, Prevouts, SighashCache, TapSighashType};
use bitcoin::taproot::{LeafVersion, TapLeafHash, TapNodeHash, TaprootBuilder, TaprootSpendInfo};
use bitcoin::transaction::Version;
use bitcoin::{
    Address, Amount, CompressedPublicKey, OutPoint, ScriptBuf, Transaction, TxIn, TxOut, Txid,
};
use chains::bitcoin::{BitcoinKey, Network, PsbtSigned, SigKind, SignRequest, address, plan_psbt};
use chains::{Chain, Error};
use test_support::bitcoin_tx::{core_verify, psbt_for, utxo};

fn secp() -> Secp256k1<All> {
    Secp256k1::new()
}

/// Key A: the BIP340 (Taproot) key.
fn key_a() -> Keypair {
    Keypair::from_seckey_slice(&secp(), &[0x11; 32]).unwrap()
}

/// Key B: the ECDSA (P2WPKH) key.
fn key_b() -> SecretKey {
    SecretKey::from_slice(&[0x22; 32]).unwrap()
}

fn taproot_key(a: &Keypair) -> BitcoinKey {
    BitcoinKey::Taproot {
        internal_key: a.x_only_public_key().0.serialize(),
    }
}

fn segwit_key(b: &SecretKey) -> BitcoinKey {
    BitcoinKey::Segwit {
        public_key: PublicKey::from_secret_key(&secp(), b).serialize(),
    }
}

fn bip86_script(a: &Keypair) -> ScriptBuf {
    ScriptBuf::new_p2tr(&secp(), a.x_only_public_key().0, None)
}

fn p2wpkh_script(b: &SecretKey) -> ScriptBuf {
    let pk = CompressedPublicKey(PublicKey::from_secret_key(&secp(), b));
    ScriptBuf::new_p2wpkh(&pk.wpubkey_hash())
}

/// A real two-leaf script tree under key A: a checksig by another key, and a checksig by A after
/// a 144-block relative timelock.
fn script_tree(a: &Keypair) -> TaprootSpendInfo {
    let secp = secp();
    let other = Keypair::from_seckey_slice(&secp, &[0x33; 32]).unwrap();
    let leaf_other = Builder::new()
        .push_x_only_key(&other.x_only_public_key().0)
        .push_opcode(OP_CHECKSIG)
        .into_script();
    let leaf_delayed = Builder::new()
        .push_int(144)
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_x_only_key(&a.x_only_public_key().0)
        .push_opcode(OP_CHECKSIG)
        .into_script();
    TaprootBuilder::new()
        .add_leaf(1, leaf_other)
        .unwrap()
        .add_leaf(1, leaf_delayed)
        .unwrap()
        .finalize(&secp, a.x_only_public_key().0)
        .unwrap()
}

/// Stands in for the threshold service: signs each request with the local key (the Taproot key
/// tweaked with the request's Merkle root, BIP341, or untweaked for a script-path leaf; ECDSA
/// over the prehash, low S).
fn sign(requests: &[SignRequest], a: &Keypair, b: &SecretKey) -> Vec<[u8; 64]> {
    let secp = secp();
    requests
        .iter()
        .map(|r| {
            let msg = Message::from_digest(r.message);
            match r.kind {
                SigKind::Taproot { merkle_root } => {
                    let tweaked = a
                        .tap_tweak(&secp, merkle_root.map(TapNodeHash::from_byte_array))
                        .to_keypair();
                    secp.sign_schnorr_no_aux_rand(&msg, &tweaked).serialize()
                }
                SigKind::TaprootScript { .. } => secp.sign_schnorr_no_aux_rand(&msg, a).serialize(),
                SigKind::Ecdsa => secp.sign_ecdsa(&msg, b).serialize_compact(),
            }
        })
        .collect()
}

/// Plans `psbt` for `key`, signs every request and finishes.
fn sign_all(psbt: &[u8], key: &BitcoinKey, a: &Keypair, b: &SecretKey) -> PsbtSigned {
    let plan = plan_psbt(psbt, key, Network::Regtest).unwrap();
    let signatures = sign(plan.requests(), a, b);
    plan.finish(&signatures).unwrap()
}

fn assert_core_accepts_every_input(tx: &[u8], spent: &[TxOut]) {
    let decoded: Transaction = bitcoin::consensus::deserialize(tx).unwrap();
    assert_eq!(decoded.input.len(), spent.len());
    for index in 0..spent.len() {
        core_verify(tx, spent, index)
            .unwrap_or_else(|e| panic!("Bitcoin Core refuses input {index}: {e:?}"));
    }
}

fn refused(result: Result<impl std::fmt::Debug, Error>) -> String {
    match result {
        Err(Error::Refused(message)) => message,
        other => panic!("expected Error::Refused, got {other:?}"),
    }
}

#[test]
fn three_inputs_two_keys_signed_in_turn_pass_bitcoin_core() {
    let (a, b) = (key_a(), key_b());
    let tree = script_tree(&a);
    let spent = vec![
        utxo(50_000, bip86_script(&a)),
        utxo(60_000, ScriptBuf::new_p2tr_tweaked(tree.output_key())),
        utxo(70_000, p2wpkh_script(&b)),
    ];
    let payee = CompressedPublicKey(PublicKey::from_secret_key(
        &secp(),
        &SecretKey::from_slice(&[0x44; 32]).unwrap(),
    ));
    let outputs = vec![
        utxo(100_000, ScriptBuf::new_p2wpkh(&payee.wpubkey_hash())),
        utxo(70_000, bip86_script(&a)),
        utxo(0, ScriptBuf::new_op_return(b"tessera")),
    ];
    let mut psbt = psbt_for(&spent, outputs);
    psbt.inputs[1].tap_merkle_root = tree.merkle_root();
    psbt.inputs[1].tap_internal_key = Some(a.x_only_public_key().0);

    // Key A: the BIP86 input and the script-tree input's key path.
    let plan = plan_psbt(&psbt.serialize(), &taproot_key(&a), Network::Regtest).unwrap();
    let root = tree.merkle_root().unwrap().to_byte_array();
    let kinds: Vec<(usize, SigKind)> = plan.requests().iter().map(|r| (r.input, r.kind)).collect();
    assert_eq!(
        kinds,
        [
            (0, SigKind::Taproot { merkle_root: None }),
            (
                1,
                SigKind::Taproot {
                    merkle_root: Some(root)
                }
            ),
        ]
    );
    let summary = plan.summary();
    assert_eq!(summary.chain, Chain::Bitcoin);
    assert_eq!(summary.kind, "psbt");
    assert_eq!(summary.network.as_deref(), Some("regtest"));
    assert_eq!(summary.fee, Some(10_000));
    let to: Vec<(&str, u128)> = summary
        .transfers
        .iter()
        .map(|t| (t.to.as_str(), t.amount))
        .collect();
    let payee_address = Address::p2wpkh(&payee, bitcoin::Network::Regtest).to_string();
    let change_address = address(&taproot_key(&a), Network::Regtest).unwrap();
    assert!(payee_address.starts_with("bcrt1q") && change_address.starts_with("bcrt1p"));
    assert_eq!(
        to,
        [
            (payee_address.as_str(), 100_000),
            (change_address.as_str(), 70_000),
            ("script:6a0774657373657261", 0),
        ]
    );
    let signatures = sign(plan.requests(), &a, &b);
    let after_a = plan.finish(&signatures).unwrap();
    assert_eq!(after_a.transaction, None, "input 2 is still unsigned");
    assert_eq!(after_a.txid, None);
    let decoded = Psbt::deserialize(&after_a.psbt).unwrap();
    for i in [0, 1] {
        let sig = decoded.inputs[i].tap_key_sig.expect("tap_key_sig written");
        assert_eq!(sig.sighash_type, TapSighashType::Default);
        assert_eq!(sig.to_vec().len(), 64, "SIGHASH_DEFAULT adds no byte");
        assert!(decoded.inputs[i].final_script_witness.is_none());
    }
    assert!(decoded.inputs[2].partial_sigs.is_empty());
    assert!(decoded.inputs[2].final_script_witness.is_none());

    // Key B: the P2WPKH input; the PSBT is then complete.
    let plan = plan_psbt(&after_a.psbt, &segwit_key(&b), Network::Regtest).unwrap();
    assert_eq!(plan.requests().len(), 1);
    assert_eq!(plan.requests()[0].input, 2);
    assert_eq!(plan.requests()[0].kind, SigKind::Ecdsa);
    assert_eq!(plan.summary().fee, Some(10_000));
    let signatures = sign(plan.requests(), &a, &b);
    let done = plan.finish(&signatures).unwrap();
    let tx_bytes = done.transaction.clone().expect("every input is signed");
    let tx: Transaction = bitcoin::consensus::deserialize(&tx_bytes).unwrap();
    assert_eq!(done.txid, Some(tx.compute_txid().to_string()));
    assert_eq!(tx.input[0].witness.len(), 1);
    assert_eq!(
        tx.input[1].witness.len(),
        1,
        "a key-path spend, not a script path"
    );
    assert_eq!(tx.input[2].witness.len(), 2, "signature and public key");
    assert_eq!(
        tx.input[2].witness.nth(1).unwrap(),
        PublicKey::from_secret_key(&secp(), &b).serialize()
    );
    let finalized = Psbt::deserialize(&done.psbt).unwrap();
    for input in &finalized.inputs {
        assert!(input.final_script_witness.is_some());
        assert!(input.tap_key_sig.is_none() && input.partial_sigs.is_empty());
        assert!(input.tap_merkle_root.is_none() && input.witness_utxo.is_some());
    }
    assert_eq!(finalized.extract_tx_unchecked_fee_rate(), tx);
    assert_core_accepts_every_input(&tx_bytes, &spent);

    // A finalized PSBT has nothing left for the key to sign.
    let message = refused(plan_psbt(&done.psbt, &taproot_key(&a), Network::Regtest));
    assert!(message.contains("already finalized"), "{message}");
}

#[test]
fn a_lied_input_amount_fails_bitcoin_core() {
    let (a, b) = (key_a(), key_b());
    for (script, key) in [
        (bip86_script(&a), taproot_key(&a)),
        (p2wpkh_script(&b), segwit_key(&b)),
    ] {
        let real = vec![utxo(50_000, script.clone())];
        let lied = vec![utxo(40_000, script)];
        let psbt = psbt_for(&lied, vec![utxo(30_000, bip86_script(&a))]);
        let signed = sign_all(&psbt.serialize(), &key, &a, &b);
        let tx = signed.transaction.unwrap();
        // The signature itself is sound: Core accepts it for the amount the PSBT claimed …
        core_verify(&tx, &lied, 0).unwrap();
        // … and refuses it for the amount really spent, which the sighash commits to.
        assert!(core_verify(&tx, &real, 0).is_err(), "{key:?}");
    }
}

/// Signs a two-input, two-output PSBT with `sighash_type` on both inputs (input 1 under the
/// script tree of `merkle_root_1`, if any), has Core verify it, and reports input 0's witness
/// signature and whether it survives (a) a change to output 1's value and (b) the removal of
/// input 1: what the sighash type leaves uncommitted.
fn sighash_case(
    spent: &[TxOut],
    merkle_root_1: Option<TapNodeHash>,
    key: &BitcoinKey,
    sighash_type: u32,
) -> (Vec<u8>, bool, bool) {
    let (a, b) = (key_a(), key_b());
    let outputs = vec![
        utxo(40_000, bip86_script(&a)),
        utxo(50_000, p2wpkh_script(&b)),
    ];
    let mut psbt = psbt_for(spent, outputs);
    psbt.inputs[1].tap_merkle_root = merkle_root_1;
    for input in &mut psbt.inputs {
        input.sighash_type = Some(PsbtSighashType::from_u32(sighash_type));
    }
    let plan = plan_psbt(&psbt.serialize(), key, Network::Regtest).unwrap();
    assert_eq!(plan.requests().len(), 2);
    let signatures = sign(plan.requests(), &a, &b);
    let signed = plan.finish(&signatures).unwrap();
    let tx_bytes = signed.transaction.unwrap();
    assert_core_accepts_every_input(&tx_bytes, spent);
    let tx: Transaction = bitcoin::consensus::deserialize(&tx_bytes).unwrap();

    let mut other_outputs = tx.clone();
    other_outputs.output[1].value = Amount::from_sat(49_000);
    let outputs_free =
        core_verify(&bitcoin::consensus::serialize(&other_outputs), spent, 0).is_ok();

    let mut alone = tx.clone();
    alone.input.truncate(1);
    let inputs_free = core_verify(&bitcoin::consensus::serialize(&alone), &spent[..1], 0).is_ok();
    (
        tx.input[0].witness.nth(0).unwrap().to_vec(),
        outputs_free,
        inputs_free,
    )
}

#[test]
fn every_taproot_sighash_type_passes_bitcoin_core() {
    let a = key_a();
    let tree = script_tree(&a);
    let spent = vec![
        utxo(50_000, bip86_script(&a)),
        utxo(60_000, ScriptBuf::new_p2tr_tweaked(tree.output_key())),
    ];
    for ty in [
        TapSighashType::Default,
        TapSighashType::All,
        TapSighashType::None,
        TapSighashType::Single,
        TapSighashType::AllPlusAnyoneCanPay,
        TapSighashType::NonePlusAnyoneCanPay,
        TapSighashType::SinglePlusAnyoneCanPay,
    ] {
        let (sig, outputs_free, inputs_free) =
            sighash_case(&spent, tree.merkle_root(), &taproot_key(&a), ty as u32);
        if ty == TapSighashType::Default {
            assert_eq!(sig.len(), 64, "SIGHASH_DEFAULT adds no byte");
        } else {
            assert_eq!(sig.len(), 65, "{ty}");
            assert_eq!(sig[64], ty as u8, "{ty}");
        }
        let base = ty as u8 & 0x7f;
        assert_eq!(
            outputs_free,
            base == 0x02 || base == 0x03,
            "{ty}: output 1 committed?"
        );
        assert_eq!(
            inputs_free,
            ty as u8 & 0x80 != 0,
            "{ty}: input 1 committed?"
        );
    }
}

#[test]
fn every_p2wpkh_sighash_type_passes_bitcoin_core() {
    let b = key_b();
    let spent = vec![
        utxo(50_000, p2wpkh_script(&b)),
        utxo(60_000, p2wpkh_script(&b)),
    ];
    for ty in [
        EcdsaSighashType::All,
        EcdsaSighashType::None,
        EcdsaSighashType::Single,
        EcdsaSighashType::AllPlusAnyoneCanPay,
        EcdsaSighashType::NonePlusAnyoneCanPay,
        EcdsaSighashType::SinglePlusAnyoneCanPay,
    ] {
        let (sig, outputs_free, inputs_free) =
            sighash_case(&spent, None, &segwit_key(&b), ty as u32);
        assert_eq!(
            *sig.last().unwrap(),
            ty as u8,
            "{ty}: the sighash byte after the DER"
        );
        let base = ty as u8 & 0x7f;
        assert_eq!(
            outputs_free,
            base == 0x02 || base == 0x03,
            "{ty}: output 1 committed?"
        );
        assert_eq!(
            inputs_free,
            ty as u8 & 0x80 != 0,
            "{ty}: input 1 committed?"
        );
    }
}

#[test]
fn a_non_witness_utxo_is_checked_against_the_outpoint() {
    let (a, b) = (key_a(), key_b());
    let funding = Transaction {
        version: Version::TWO,
        lock_time: LockTime::ZERO,
        input: vec![TxIn::default()],
        output: vec![
            utxo(1_000, p2wpkh_script(&b)),
            utxo(50_000, bip86_script(&a)),
        ],
    };
    let mut psbt = psbt_for(
        &[utxo(50_000, bip86_script(&a))],
        vec![utxo(45_000, bip86_script(&a))],
    );
    psbt.unsigned_tx.input[0].previous_output = OutPoint {
        txid: funding.compute_txid(),
        vout: 1,
    };
    psbt.inputs[0].witness_utxo = None;
    psbt.inputs[0].non_witness_utxo = Some(funding.clone());
    let plan = plan_psbt(&psbt.serialize(), &taproot_key(&a), Network::Regtest).unwrap();
    assert_eq!(plan.summary().fee, Some(5_000));
    let signatures = sign(plan.requests(), &a, &b);
    let signed = plan.finish(&signatures).unwrap();
    assert_core_accepts_every_input(
        &signed.transaction.unwrap(),
        &[utxo(50_000, bip86_script(&a))],
    );

    let mut wrong_tx = psbt.clone();
    wrong_tx.unsigned_tx.input[0].previous_output.txid = Txid::from_byte_array([7; 32]);
    let message = refused(plan_psbt(
        &wrong_tx.serialize(),
        &taproot_key(&a),
        Network::Regtest,
    ));
    assert!(message.starts_with("input 0 spends"), "{message}");
    assert!(
        message.contains(&funding.compute_txid().to_string()),
        "{message}"
    );

    let mut wrong_vout = psbt.clone();
    wrong_vout.unsigned_tx.input[0].previous_output.vout = 2;
    let message = refused(plan_psbt(
        &wrong_vout.serialize(),
        &taproot_key(&a),
        Network::Regtest,
    ));
    assert!(message.starts_with("input 0 spends output 2"), "{message}");

    let mut disagreeing = psbt;
    disagreeing.inputs[0].witness_utxo = Some(utxo(60_000, bip86_script(&a)));
    let message = refused(plan_psbt(
        &disagreeing.serialize(),
        &taproot_key(&a),
        Network::Regtest,
    ));
    assert!(
        message.starts_with("input 0: witness_utxo (60000 sat"),
        "{message}"
    );
}

#[test]
fn malformed_psbt_bytes_are_refused() {
    let a = key_a();
    let psbt = psbt_for(
        &[utxo(50_000, bip86_script(&a))],
        vec![utxo(1, bip86_script(&a))],
    );
    let good = psbt.serialize();
    let mut trailing = good.clone();
    trailing.extend_from_slice(b"xx");
    for bytes in [
        &b"not a psbt"[..],
        &[],
        &good[..good.len() - 3],
        &trailing[..],
    ] {
        match plan_psbt(bytes, &taproot_key(&a), Network::Mainnet) {
            Err(Error::Malformed { format, reason }) => {
                assert_eq!(format, "PSBT");
                assert!(!reason.is_empty());
            }
            other => panic!("expected Error::Malformed, got {other:?}"),
        }
    }
}

#[test]
fn refusals_name_the_input() {
    let (a, b) = (key_a(), key_b());
    let tree = script_tree(&a);

    // No UTXO for input 1.
    let mut psbt = psbt_for(
        &[
            utxo(50_000, bip86_script(&a)),
            utxo(50_000, bip86_script(&a)),
        ],
        vec![utxo(1_000, bip86_script(&a))],
    );
    psbt.inputs[1].witness_utxo = None;
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Mainnet,
    ));
    assert_eq!(
        message,
        "input 1 has no UTXO (witness_utxo or non_witness_utxo)"
    );

    // Only inputs of other keys.
    let psbt = psbt_for(
        &[utxo(50_000, p2wpkh_script(&b))],
        vec![utxo(1_000, bip86_script(&a))],
    );
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Mainnet,
    ));
    assert_eq!(message, "no input of the PSBT is spendable by this key");
    let other = Keypair::from_seckey_slice(&secp(), &[0x55; 32]).unwrap();
    let psbt = psbt_for(
        &[utxo(50_000, bip86_script(&a))],
        vec![utxo(1_000, bip86_script(&a))],
    );
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&other),
        Network::Mainnet,
    ));
    assert_eq!(message, "no input of the PSBT is spendable by this key");
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &segwit_key(&b),
        Network::Mainnet,
    ));
    assert_eq!(message, "no input of the PSBT is spendable by this key");

    // Input 1 names key A as its internal key, but its script is A's BIP86 output while the
    // PSBT says there is a script tree.
    let mut psbt = psbt_for(
        &[
            utxo(50_000, bip86_script(&a)),
            utxo(50_000, bip86_script(&a)),
        ],
        vec![utxo(1_000, bip86_script(&a))],
    );
    psbt.inputs[1].tap_internal_key = Some(a.x_only_public_key().0);
    psbt.inputs[1].tap_merkle_root = tree.merkle_root();
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Mainnet,
    ));
    assert!(
        message.starts_with("input 1 names this key as tap_internal_key"),
        "{message}"
    );

    // SIGHASH_SINGLE on input 1 of a one-output transaction, for either key kind.
    for (script, key, ty) in [
        (
            bip86_script(&a),
            taproot_key(&a),
            TapSighashType::Single as u32,
        ),
        (
            bip86_script(&a),
            taproot_key(&a),
            TapSighashType::SinglePlusAnyoneCanPay as u32,
        ),
        (
            p2wpkh_script(&b),
            segwit_key(&b),
            EcdsaSighashType::Single as u32,
        ),
    ] {
        let mut psbt = psbt_for(
            &[utxo(50_000, script.clone()), utxo(50_000, script)],
            vec![utxo(1_000, bip86_script(&a))],
        );
        psbt.inputs[1].sighash_type = Some(PsbtSighashType::from_u32(ty));
        let message = refused(plan_psbt(&psbt.serialize(), &key, Network::Mainnet));
        assert!(
            message.starts_with("input 1 uses SIGHASH_SINGLE but the transaction has no output 1"),
            "{message}"
        );
    }

    // Sighash types BIP341 / BIP143 do not define.
    for (script, key, ty) in [
        (bip86_script(&a), taproot_key(&a), 0x04),
        (bip86_script(&a), taproot_key(&a), 0x80),
        (p2wpkh_script(&b), segwit_key(&b), 0x00),
        (p2wpkh_script(&b), segwit_key(&b), 0x41),
    ] {
        let mut psbt = psbt_for(
            &[utxo(50_000, script.clone()), utxo(50_000, script)],
            vec![utxo(1_000, bip86_script(&a))],
        );
        psbt.inputs[1].sighash_type = Some(PsbtSighashType::from_u32(ty));
        let message = refused(plan_psbt(&psbt.serialize(), &key, Network::Mainnet));
        assert!(
            message.starts_with(&format!("input 1 has sighash type {ty:#x}")),
            "{message}"
        );
    }

    // Outputs worth more than the inputs.
    let psbt = psbt_for(
        &[
            utxo(50_000, bip86_script(&a)),
            utxo(20_000, p2wpkh_script(&b)),
        ],
        vec![utxo(70_001, bip86_script(&a))],
    );
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Mainnet,
    ));
    assert_eq!(
        message,
        "the outputs (70001 sat) exceed the inputs (70000 sat)"
    );
}

#[test]
fn a_foreign_signature_that_does_not_verify_is_refused() {
    let (a, b) = (key_a(), key_b());
    let mut psbt = psbt_for(
        &[
            utxo(50_000, bip86_script(&a)),
            utxo(50_000, p2wpkh_script(&b)),
        ],
        vec![utxo(90_000, bip86_script(&a))],
    );
    let tweaked = a.tap_tweak(&secp(), None).to_keypair();
    let signature = secp().sign_schnorr_no_aux_rand(&Message::from_digest([9; 32]), &tweaked);
    psbt.inputs[0].tap_key_sig = Some(bitcoin::taproot::Signature {
        signature,
        sighash_type: TapSighashType::Default,
    });
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &segwit_key(&b),
        Network::Mainnet,
    ));
    assert!(
        message.starts_with("input 0 carries a tap_key_sig that does not verify"),
        "{message}"
    );
}

/// `n - s` over the secp256k1 group order: the high-S twin of a low-S signature.
fn negate_s(signature: &[u8; 64]) -> [u8; 64] {
    const N: [u8; 32] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
        0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c, 0xd0, 0x36,
        0x41, 0x41,
    ];
    let mut out = *signature;
    let mut borrow = 0i16;
    for i in (0..32).rev() {
        let d = i16::from(N[i]) - i16::from(signature[32 + i]) - borrow;
        borrow = i16::from(d < 0);
        out[32 + i] = (d + 256 * borrow) as u8;
    }
    out
}

#[test]
fn signatures_that_do_not_fit_are_refused_by_finish() {
    let (a, b) = (key_a(), key_b());
    let tree = script_tree(&a);
    let mut psbt = psbt_for(
        &[
            utxo(50_000, ScriptBuf::new_p2tr_tweaked(tree.output_key())),
            utxo(50_000, p2wpkh_script(&b)),
        ],
        vec![utxo(90_000, bip86_script(&a))],
    );
    psbt.inputs[0].tap_merkle_root = tree.merkle_root();
    let bytes = psbt.serialize();
    let plan_a = plan_psbt(&bytes, &taproot_key(&a), Network::Mainnet).unwrap();
    let plan_b = plan_psbt(&bytes, &segwit_key(&b), Network::Mainnet).unwrap();

    let good = sign(plan_a.requests(), &a, &b);
    match plan_a.clone().finish(&[]) {
        Err(Error::Signature(m)) => assert_eq!(m, "0 signatures answer 1 requests"),
        other => panic!("{other:?}"),
    }
    match plan_a.clone().finish(&[good[0], good[0]]) {
        Err(Error::Signature(m)) => assert_eq!(m, "2 signatures answer 1 requests"),
        other => panic!("{other:?}"),
    }
    // Signed under the BIP86 tweak, not the script tree's: the classic wrong-tweak mistake.
    let msg = Message::from_digest(plan_a.requests()[0].message);
    let bip86 = a.tap_tweak(&secp(), None).to_keypair();
    let wrong_tweak = secp().sign_schnorr_no_aux_rand(&msg, &bip86).serialize();
    let untweaked = secp().sign_schnorr_no_aux_rand(&msg, &a).serialize();
    for bad in [wrong_tweak, untweaked] {
        match plan_a.clone().finish(&[bad]) {
            Err(Error::Signature(m)) => assert!(
                m.starts_with("input 0: the BIP340 signature does not verify"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
    }
    assert!(plan_a.finish(&good).is_ok());

    let good = sign(plan_b.requests(), &a, &b);
    match plan_b.clone().finish(&[negate_s(&good[0])]) {
        Err(Error::Signature(m)) => {
            assert_eq!(m, "input 1: the ECDSA signature's S is not low (BIP146)")
        }
        other => panic!("{other:?}"),
    }
    let mut flipped = good[0];
    flipped[5] ^= 1;
    match plan_b.clone().finish(&[flipped]) {
        Err(Error::Signature(m)) => assert!(
            m.starts_with("input 1: the ECDSA signature does not verify"),
            "{m}"
        ),
        other => panic!("{other:?}"),
    }
    let signed = plan_b.finish(&good).unwrap();
    let decoded = Psbt::deserialize(&signed.psbt).unwrap();
    let sig = decoded.inputs[1].partial_sigs.values().next().unwrap();
    assert_eq!(sig.sighash_type, EcdsaSighashType::All);
    assert_eq!(
        sig.to_vec().last(),
        Some(&0x01),
        "DER then the sighash byte"
    );
}

#[test]
fn addresses_match_bip86_and_bip173() {
    let vectors = include_str!("../../../tests/vectors/bitcoin/addresses.txt");
    let mut n = 0;
    for line in vectors
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
    {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let [kind, key, network, want] = fields[..] else {
            panic!("bad vector line {line:?}");
        };
        let key = hex::decode(key).unwrap();
        let key = match kind {
            "taproot" => BitcoinKey::Taproot {
                internal_key: key.try_into().unwrap(),
            },
            "segwit" => BitcoinKey::Segwit {
                public_key: key.try_into().unwrap(),
            },
            other => panic!("unknown kind {other}"),
        };
        let network: Network = network.parse().unwrap();
        assert_eq!(address(&key, network).unwrap(), want, "{line}");
        n += 1;
    }
    assert_eq!(n, 14);
}

/// A P2TR output under another key's internal key, whose tree holds `leaves` (each at depth
/// given), with the PSBT input's BIP371 fields (`tap_internal_key`, `tap_merkle_root`,
/// `tap_scripts`) filled in as a wallet would.
fn script_path_input(leaves: &[(u8, ScriptBuf)]) -> (TxOut, bitcoin::psbt::Input) {
    let secp = secp();
    let internal = Keypair::from_seckey_slice(&secp, &[0x55; 32])
        .unwrap()
        .x_only_public_key()
        .0;
    let mut builder = TaprootBuilder::new();
    for (depth, script) in leaves {
        builder = builder.add_leaf(*depth, script.clone()).unwrap();
    }
    let tree = builder.finalize(&secp, internal).unwrap();
    let spent = utxo(80_000, ScriptBuf::new_p2tr_tweaked(tree.output_key()));
    let mut input = bitcoin::psbt::Input {
        tap_internal_key: Some(internal),
        tap_merkle_root: tree.merkle_root(),
        ..Default::default()
    };
    for (_, script) in leaves {
        let control = tree
            .control_block(&(script.clone(), LeafVersion::TapScript))
            .unwrap();
        input
            .tap_scripts
            .insert(control, (script.clone(), LeafVersion::TapScript));
    }
    (spent, input)
}

/// Puts `input` (a wallet's BIP371 fields) in place of PSBT input `i`, keeping its UTXO.
fn set_input(psbt: &mut Psbt, i: usize, input: bitcoin::psbt::Input) {
    psbt.inputs[i] = bitcoin::psbt::Input {
        witness_utxo: psbt.inputs[i].witness_utxo.clone(),
        ..input
    };
}

/// Leaves `script` alone in the input's `tap_scripts`, filed under another leaf's control block.
fn misfile(input: &mut bitcoin::psbt::Input, script: &ScriptBuf) {
    let wrong = input
        .tap_scripts
        .iter()
        .find(|(_, (other, _))| other != script)
        .map(|(control, _)| control.clone())
        .unwrap();
    input.tap_scripts.clear();
    input
        .tap_scripts
        .insert(wrong, (script.clone(), LeafVersion::TapScript));
}

fn checksig_leaf(key: &Keypair) -> ScriptBuf {
    Builder::new()
        .push_x_only_key(&key.x_only_public_key().0)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

fn delayed_leaf(key: &Keypair) -> ScriptBuf {
    Builder::new()
        .push_int(144)
        .push_opcode(OP_CSV)
        .push_opcode(OP_DROP)
        .push_x_only_key(&key.x_only_public_key().0)
        .push_opcode(OP_CHECKSIG)
        .into_script()
}

#[test]
fn script_path_leaves_of_the_key_are_signed_and_pass_bitcoin_core() {
    let (a, b) = (key_a(), key_b());
    let other = Keypair::from_seckey_slice(&secp(), &[0x33; 32]).unwrap();
    let ours = checksig_leaf(&a);
    let (spent, input) = script_path_input(&[
        (1, ours.clone()),
        (2, delayed_leaf(&a)),
        (2, checksig_leaf(&other)),
    ]);
    let spent = vec![spent];
    let mut psbt = psbt_for(&spent, vec![utxo(79_000, bip86_script(&a))]);
    set_input(&mut psbt, 0, input);

    // One request per leaf that names the key, both by the key itself, never tweaked; the
    // other key's leaf is not the key's to sign.
    let plan = plan_psbt(&psbt.serialize(), &taproot_key(&a), Network::Regtest).unwrap();
    let mut leaf_hashes: Vec<[u8; 32]> = plan
        .requests()
        .iter()
        .map(|r| match r.kind {
            SigKind::TaprootScript { leaf_hash } => leaf_hash,
            other => panic!("expected a script-path request, got {other:?}"),
        })
        .collect();
    leaf_hashes.sort_unstable();
    let mut want = vec![
        TapLeafHash::from_script(&ours, LeafVersion::TapScript).to_byte_array(),
        TapLeafHash::from_script(&delayed_leaf(&a), LeafVersion::TapScript).to_byte_array(),
    ];
    want.sort_unstable();
    assert_eq!(leaf_hashes, want);
    assert_eq!(plan.summary().fee, Some(1_000));

    // Signed by the untweaked key: the single-key leaf completes the input.
    let signatures = sign(plan.requests(), &a, &b);
    let done = plan.finish(&signatures).unwrap();
    let tx_bytes = done
        .transaction
        .expect("the checksig leaf finalizes the input");
    let tx: Transaction = bitcoin::consensus::deserialize(&tx_bytes).unwrap();
    let witness: Vec<&[u8]> = tx.input[0].witness.iter().collect();
    assert_eq!(witness.len(), 3, "signature, leaf script, control block");
    assert_eq!(witness[1], ours.as_bytes());
    assert_core_accepts_every_input(&tx_bytes, &spent);

    // A signature by the tweaked key (what a key-path spend would use) is refused.
    let plan = plan_psbt(&psbt.serialize(), &taproot_key(&a), Network::Regtest).unwrap();
    let tweaked = a.tap_tweak(&secp(), None).to_keypair();
    let wrong = sign(plan.requests(), &tweaked, &b);
    match plan.finish(&wrong) {
        Err(Error::Signature(m)) => assert!(m.contains("does not verify"), "{m}"),
        other => panic!("expected Error::Signature, got {other:?}"),
    }
}

#[test]
fn a_leaf_the_signature_alone_cannot_complete_is_signed_and_left_for_the_finalizer() {
    let (a, b) = (key_a(), key_b());
    let delayed = delayed_leaf(&a);
    let (spent, input) = script_path_input(&[(0, delayed.clone())]);
    let mut psbt = psbt_for(&[spent], vec![utxo(79_000, bip86_script(&a))]);
    set_input(&mut psbt, 0, input);
    let done = sign_all(&psbt.serialize(), &taproot_key(&a), &a, &b);
    assert_eq!(
        done.transaction, None,
        "the CSV leaf needs its sequence checked by a finalizer"
    );
    let signed = Psbt::deserialize(&done.psbt).unwrap();
    let leaf_hash = TapLeafHash::from_script(&delayed, LeafVersion::TapScript);
    let sig = signed.inputs[0].tap_script_sigs[&(a.x_only_public_key().0, leaf_hash)];
    assert_eq!(sig.sighash_type, TapSighashType::Default);
    assert!(signed.inputs[0].final_script_witness.is_none());
}

#[test]
fn a_control_block_that_does_not_commit_to_the_output_is_refused() {
    let a = key_a();
    let other = Keypair::from_seckey_slice(&secp(), &[0x33; 32]).unwrap();
    let ours = checksig_leaf(&a);
    let (spent, mut input) = script_path_input(&[(1, ours.clone()), (1, checksig_leaf(&other))]);
    misfile(&mut input, &ours);
    let mut psbt = psbt_for(&[spent], vec![utxo(79_000, bip86_script(&a))]);
    set_input(&mut psbt, 0, input);
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Regtest,
    ));
    assert!(
        message.contains("input 0") && message.contains("does not commit"),
        "{message}"
    );
}

/// A BIP340 signature by `key` for the script-path leaf `(script, version)` of input `i`.
fn leaf_signature(
    psbt: &Psbt,
    spent: &[TxOut],
    i: usize,
    script: &ScriptBuf,
    version: LeafVersion,
    key: &Keypair,
) -> bitcoin::taproot::Signature {
    let leaf_hash = TapLeafHash::from_script(script, version);
    let sighash = SighashCache::new(&psbt.unsigned_tx)
        .taproot_script_spend_signature_hash(
            i,
            &Prevouts::All(spent),
            leaf_hash,
            TapSighashType::Default,
        )
        .unwrap();
    bitcoin::taproot::Signature {
        signature: secp()
            .sign_schnorr_no_aux_rand(&Message::from_digest(sighash.to_byte_array()), key),
        sighash_type: TapSighashType::Default,
    }
}

#[test]
fn leaves_of_another_leaf_version_are_neither_signed_nor_finalized() {
    let (a, b) = (key_a(), key_b());
    let secp = secp();
    let other = Keypair::from_seckey_slice(&secp, &[0x33; 32]).unwrap();
    let future = LeafVersion::from_consensus(0xc2).unwrap();
    let leaf = checksig_leaf(&a);
    let tree = TaprootBuilder::new()
        .add_leaf_with_ver(1, leaf.clone(), future)
        .unwrap()
        .add_leaf(1, checksig_leaf(&other))
        .unwrap()
        .finalize(&secp, other.x_only_public_key().0)
        .unwrap();
    let spent = vec![
        utxo(50_000, bip86_script(&a)),
        utxo(80_000, ScriptBuf::new_p2tr_tweaked(tree.output_key())),
    ];
    let mut psbt = psbt_for(&spent, vec![utxo(129_000, bip86_script(&a))]);
    let control = tree.control_block(&(leaf.clone(), future)).unwrap();
    psbt.inputs[1]
        .tap_scripts
        .insert(control, (leaf.clone(), future));
    // A signature for that leaf, as another signer might have added it: not BIP342's to check.
    let sig = leaf_signature(&psbt, &spent, 1, &leaf, future, &a);
    let leaf_hash = TapLeafHash::from_script(&leaf, future);
    psbt.inputs[1]
        .tap_script_sigs
        .insert((a.x_only_public_key().0, leaf_hash), sig);

    let plan = plan_psbt(&psbt.serialize(), &taproot_key(&a), Network::Regtest).unwrap();
    let kinds: Vec<(usize, SigKind)> = plan.requests().iter().map(|r| (r.input, r.kind)).collect();
    assert_eq!(kinds, [(0, SigKind::Taproot { merkle_root: None })]);
    let signatures = sign(plan.requests(), &a, &b);
    let done = plan.finish(&signatures).unwrap();
    assert_eq!(
        done.transaction, None,
        "input 1 is left for a finalizer that knows 0xc2"
    );
}

#[test]
fn another_keys_signed_leaf_under_a_wrong_control_block_is_refused() {
    let a = key_a();
    let secp = secp();
    let other = Keypair::from_seckey_slice(&secp, &[0x33; 32]).unwrap();
    let third = Keypair::from_seckey_slice(&secp, &[0x66; 32]).unwrap();
    let theirs = checksig_leaf(&other);
    let (spent_1, mut input) =
        script_path_input(&[(1, theirs.clone()), (1, checksig_leaf(&third))]);
    let spent = vec![utxo(50_000, bip86_script(&a)), spent_1];
    misfile(&mut input, &theirs);
    let mut psbt = psbt_for(&spent, vec![utxo(129_000, bip86_script(&a))]);
    set_input(&mut psbt, 1, input);
    let sig = leaf_signature(&psbt, &spent, 1, &theirs, LeafVersion::TapScript, &other);
    psbt.inputs[1].tap_script_sigs.insert(
        (
            other.x_only_public_key().0,
            TapLeafHash::from_script(&theirs, LeafVersion::TapScript),
        ),
        sig,
    );
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Regtest,
    ));
    assert!(
        message.contains("input 1") && message.contains("does not commit"),
        "{message}"
    );
}

#[test]
fn a_finalized_input_is_not_signed_again_by_its_leaves() {
    let a = key_a();
    let (spent, mut input) = script_path_input(&[(0, checksig_leaf(&a))]);
    input.final_script_witness = Some(bitcoin::Witness::from_slice(&[[1u8; 64]]));
    let mut psbt = psbt_for(&[spent], vec![utxo(79_000, bip86_script(&a))]);
    set_input(&mut psbt, 0, input);
    let message = refused(plan_psbt(
        &psbt.serialize(),
        &taproot_key(&a),
        Network::Regtest,
    ));
    assert!(
        message.contains("no input of the PSBT is spendable"),
        "{message}"
    );
}
