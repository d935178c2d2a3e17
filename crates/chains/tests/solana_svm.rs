//! The Solana adapter against a real Solana runtime: LiteSVM (npm `litesvm`), with the unsigned
//! messages built by `@solana/kit` (test_support::solana_svm). A local ed25519-dalek key stands
//! in for the threshold key: plan, sign, finish, send; LiteSVM must execute the transfer and the
//! balances must move. Under CI=true a missing Node.js or npm install fails these tests.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chains::solana::{address, plan_message};
use chains::{Chain, Summary, Transfer};
use ed25519_dalek::{Signer, SigningKey};
use test_support::solana_svm::{Sent, Svm, Version, node_output, under_ci};

/// LiteSVM's fee per signature, in lamports (its default `lamports_per_signature`).
const FEE_PER_SIGNATURE: u64 = 5000;
const AIRDROP: u64 = 10_000_000_000;
/// Above the rent-exempt minimum of an empty account (890 880 lamports), so the new recipient
/// account may exist.
const AMOUNT: u64 = 2_000_000;

fn keys() -> (SigningKey, String) {
    let signer = SigningKey::from_bytes(&[7; 32]);
    let recipient = address(&SigningKey::from_bytes(&[8; 32]).verifying_key().to_bytes());
    (signer, recipient)
}

fn transfer_accepted(version: Version, kind: &'static str) {
    let Some(mut svm) = Svm::start_or_skip(kind) else {
        return;
    };
    let (signer, to) = keys();
    let public = signer.verifying_key().to_bytes();
    let from = address(&public);
    svm.airdrop(&from, AIRDROP);
    assert_eq!(svm.balance(&from), AIRDROP);
    assert_eq!(svm.balance(&to), 0);

    let message = svm.transfer_message(&from, &to, AMOUNT, version);
    let plan = plan_message(&message, &public).unwrap();
    assert_eq!(
        plan.summary(),
        &Summary {
            chain: Chain::Solana,
            kind,
            network: None,
            transfers: vec![Transfer {
                to: to.clone(),
                amount: u128::from(AMOUNT)
            }],
            fee: None,
        }
    );
    assert_eq!(plan.message(), message.as_slice());
    let signature = signer.sign(plan.message()).to_bytes();
    let signed = plan.finish(&signature).unwrap();
    assert!(signed.complete);

    match svm.send(&signed.transaction) {
        Sent::Accepted { signature, logs } => {
            assert_eq!(signature, signed.txid);
            assert!(
                logs.iter()
                    .any(|l| l == "Program 11111111111111111111111111111111 success"),
                "{logs:?}"
            );
        }
        Sent::Rejected { error, logs } => panic!("LiteSVM rejected it: {error}; logs {logs:?}"),
    }
    assert_eq!(svm.balance(&to), AMOUNT);
    assert_eq!(svm.balance(&from), AIRDROP - AMOUNT - FEE_PER_SIGNATURE);
}

#[test]
fn legacy_transfer_signed_and_assembled_is_executed_by_litesvm() {
    transfer_accepted(Version::Legacy, "solana-legacy");
}

#[test]
fn v0_transfer_signed_and_assembled_is_executed_by_litesvm() {
    transfer_accepted(Version::V0, "solana-v0");
}

#[test]
fn lamports_changed_after_signing_are_rejected_by_litesvm() {
    let Some(mut svm) = Svm::start_or_skip("tampered") else {
        return;
    };
    let (signer, to) = keys();
    let public = signer.verifying_key().to_bytes();
    let from = address(&public);
    svm.airdrop(&from, AIRDROP);
    for version in [Version::Legacy, Version::V0] {
        let message = svm.transfer_message(&from, &to, AMOUNT, version);
        let plan = plan_message(&message, &public).unwrap();
        let signature = signer.sign(plan.message()).to_bytes();
        let mut transaction = plan.finish(&signature).unwrap().transaction;
        // The lamports are the transfer data's last 8 bytes; a v0 message ends with its (empty)
        // address table lookup list after them.
        let end = transaction.len() - usize::from(version == Version::V0);
        let lamports = &mut transaction[end - 8..end];
        assert_eq!(lamports, AMOUNT.to_le_bytes());
        lamports.copy_from_slice(&(AMOUNT * 100).to_le_bytes());
        match svm.send(&transaction) {
            Sent::Rejected { error, .. } => {
                assert!(error.contains("SignatureFailure"), "{version:?}: {error}")
            }
            Sent::Accepted { .. } => panic!("{version:?}: LiteSVM accepted a tampered transaction"),
        }
    }
    assert_eq!(svm.balance(&to), 0);
    assert_eq!(svm.balance(&from), AIRDROP);
}

#[test]
fn vectors_match_solana_kit() {
    let generated = match node_output("vectors.mjs") {
        Ok(out) => out,
        Err(e) if under_ci() => panic!("vectors.mjs is required under CI=true: {e}"),
        Err(e) => {
            eprintln!("vectors_match_solana_kit: skipped, Node.js is not available: {e}");
            return;
        }
    };
    assert_eq!(
        generated,
        include_str!("../../../tests/vectors/solana/vectors.json"),
        "tests/vectors/solana/vectors.json differs from what @solana/kit builds now"
    );
}
