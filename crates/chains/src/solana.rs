//! Solana: the base58 address of an Ed25519 key, and the legacy and v0 transaction messages an
//! Ed25519 key signs.
//!
//! A Solana signer signs the serialized message itself (no hashing, no domain separation), so
//! [`plan_message`] decodes the bytes exactly as given, checks them the way the runtime's
//! sanitizer does (with a message that names the fault), finds the key among the required
//! signers and summarizes the System Program transfers. [`SolPlan::finish`] then checks the
//! returned signature and assembles the wire-format transaction. The message and transaction
//! types and their codec are the Solana SDK's own (`solana-transaction`, `solana-message`,
//! `wincode`).

use std::collections::HashMap;

use ed25519_dalek::{Signature as DalekSignature, VerifyingKey};
use solana_sdk_ids::system_program;
use solana_transaction::versioned::VersionedTransaction;
use solana_transaction::{Address, CompiledInstruction, Signature, VersionedMessage};

use crate::{Chain, Error, Summary, Transfer};

const FORMAT: &str = "Solana message";

/// The first byte of a versioned message: the high bit set, the version in the low seven bits.
const VERSION_PREFIX: u8 = 0x80;

/// The System Program's `Transfer` instruction: `u32` LE discriminant 2, then `u64` LE lamports.
const SYSTEM_TRANSFER: u32 = 2;

/// Account indexes are one byte, so a message can reach at most 256 accounts.
const MAX_ACCOUNTS: usize = 256;

/// Base58 address of an Ed25519 public key.
pub fn address(public_key: &[u8; 32]) -> String {
    bs58::encode(public_key).into_string()
}

/// A decoded Solana message that `public_key` is a required signer of: what to sign and what it
/// does.
#[derive(Debug)]
pub struct SolPlan {
    message: Vec<u8>,
    decoded: VersionedMessage,
    summary: Summary,
    key: VerifyingKey,
    signer_index: usize,
}

impl SolPlan {
    /// The bytes to sign (the serialized message exactly as given).
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// What the message does.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Verifies the 64-byte Ed25519 signature over the message under the key (Error::Signature
    /// otherwise) and builds the wire-format transaction: shortvec(num_required_signatures),
    /// the signatures (ours at the key's index, all-zero for the other signers), the message.
    pub fn finish(self, signature: &[u8; 64]) -> Result<SolSigned, Error> {
        self.key
            .verify_strict(&self.message, &DalekSignature::from_bytes(signature))
            .map_err(|e| {
                Error::Signature(format!(
                    "the Ed25519 signature does not verify over the {}-byte message under {}: {e}",
                    self.message.len(),
                    address(self.key.as_bytes()),
                ))
            })?;
        let required = usize::from(self.decoded.header().num_required_signatures);
        let mut signatures = vec![Signature::default(); required];
        if let Some(slot) = signatures.get_mut(self.signer_index) {
            *slot = Signature::from(*signature);
        }
        let complete = signatures.iter().all(|s| *s != Signature::default());
        let txid = signatures
            .first()
            .map(|s| bs58::encode(s.as_ref()).into_string())
            .unwrap_or_default();
        let transaction = wincode::serialize(&VersionedTransaction {
            signatures,
            message: self.decoded,
        })
        .map_err(|e| Error::Malformed {
            format: FORMAT,
            reason: format!("cannot encode the signed transaction: {e}"),
        })?;
        Ok(SolSigned {
            signature: *signature,
            transaction,
            txid,
            complete,
        })
    }
}

/// A signed Solana transaction, ready to broadcast once `complete`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolSigned {
    /// Our Ed25519 signature over the message.
    pub signature: [u8; 64],
    /// The wire-format transaction: shortvec(number of signatures), the signatures, the message.
    pub transaction: Vec<u8>,
    /// Base58 of the first signature: the transaction id once the fee payer has signed (all
    /// `1`s while the fee payer's signature is still the all-zero placeholder).
    pub txid: String,
    /// Whether every required signature is present (only ours was required).
    pub complete: bool,
}

/// Decodes a serialized legacy or v0 message that `public_key` is to sign.
///
/// The key must be one of the message's required signers (first num_required_signatures account
/// keys), else `Error::Refused("the key <addr> is not a required signer of the message")`.
/// Malformed bytes (truncated, trailing bytes, header counts inconsistent with the key list, an
/// instruction index out of range, unknown version byte) give `Error::Malformed`; a v1 message
/// gives `Error::Unsupported`; a System transfer whose recipient or amount the message does not
/// fix (recipient loaded from an address lookup table, short data, too few accounts) gives
/// `Error::Refused`.
///
/// The summary lists the System Program `Transfer` instructions only (recipient and lamports, in
/// instruction order); other instructions, lamport-moving ones such as `CreateAccount` or
/// `TransferWithSeed` and token programs included, are not listed. The fee is not fixed by the
/// message (5000 lamports a signature plus any priority fee), so `fee` is `None`.
pub fn plan_message(message: &[u8], public_key: &[u8; 32]) -> Result<SolPlan, Error> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|e| {
        Error::Key(format!(
            "{} is not an Ed25519 public key: {e}",
            address(public_key)
        ))
    })?;
    let decoded = decode(message)?;
    let kind = match decoded {
        VersionedMessage::Legacy(_) => "solana-legacy",
        VersionedMessage::V0(_) => "solana-v0",
        VersionedMessage::V1(_) => {
            return Err(Error::Unsupported(
                "Solana v1 messages (Tessera signs legacy and v0 messages)".into(),
            ));
        }
    };
    check(&decoded)?;
    let header = decoded.header();
    let keys = decoded.static_account_keys();
    let signers = keys
        .get(..usize::from(header.num_required_signatures))
        .unwrap_or_default();
    let signer_index = signers
        .iter()
        .position(|k| k.as_array() == public_key)
        .ok_or_else(|| {
            Error::Refused(format!(
                "the key {} is not a required signer of the message",
                address(public_key)
            ))
        })?;
    let transfers = decoded
        .instructions()
        .iter()
        .enumerate()
        .map(|(i, ix)| system_transfer(i, ix, keys))
        .filter_map(Result::transpose)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SolPlan {
        message: message.to_vec(),
        decoded,
        summary: Summary {
            chain: Chain::Solana,
            kind,
            network: None,
            transfers,
            fee: None,
        },
        key,
        signer_index,
    })
}

fn malformed(reason: String) -> Error {
    Error::Malformed {
        format: FORMAT,
        reason,
    }
}

/// Decodes the message with the SDK's codec and requires that it spans the bytes exactly.
fn decode(message: &[u8]) -> Result<VersionedMessage, Error> {
    let first = *message
        .first()
        .ok_or_else(|| malformed("empty: no bytes".into()))?;
    let kind = if first & VERSION_PREFIX == 0 {
        "legacy"
    } else {
        match first & !VERSION_PREFIX {
            0 => "v0",
            1 => "v1",
            v => {
                return Err(malformed(format!(
                    "unknown message version {v} (first byte {first:#04x}); Tessera decodes \
                     legacy and v0 messages"
                )));
            }
        }
    };
    let decoded: VersionedMessage = wincode::deserialize(message).map_err(|e| {
        malformed(match e {
            wincode::ReadError::Io(wincode::io::ReadError::ReadSizeLimit(n)) => format!(
                "truncated: the {} bytes end inside the {kind} message (a {n}-byte field runs \
                 past the end)",
                message.len()
            ),
            other => format!("the {kind} message does not decode: {other}"),
        })
    })?;
    let canonical = wincode::serialize(&decoded)
        .map_err(|e| malformed(format!("the {kind} message does not re-encode: {e}")))?;
    if canonical != message {
        return Err(malformed(
            match message.strip_prefix(canonical.as_slice()) {
                Some(rest) => format!(
                    "{} trailing bytes after the {}-byte {kind} message",
                    rest.len(),
                    canonical.len()
                ),
                None => format!("the {kind} message is not in its canonical encoding"),
            },
        ));
    }
    Ok(decoded)
}

/// The runtime's sanitize rules, each failure named; then the SDK's own `sanitize` as well.
fn check(message: &VersionedMessage) -> Result<(), Error> {
    let header = message.header();
    let keys = message.static_account_keys();
    let signers = header.num_required_signatures;
    if signers == 0 {
        return Err(malformed(
            "the header requires no signatures; the fee payer (account 0) must sign".into(),
        ));
    }
    if header.num_readonly_signed_accounts >= signers {
        return Err(malformed(format!(
            "the header marks {} of its {signers} signers read-only; the fee payer (account 0) \
             must be writable",
            header.num_readonly_signed_accounts
        )));
    }
    let described = usize::from(signers) + usize::from(header.num_readonly_unsigned_accounts);
    if described > keys.len() {
        return Err(malformed(format!(
            "the header counts {signers} signers and {} read-only non-signers, but the message \
             lists {} account keys",
            header.num_readonly_unsigned_accounts,
            keys.len()
        )));
    }
    let mut seen = HashMap::with_capacity(keys.len());
    for (j, k) in keys.iter().enumerate() {
        if let Some(i) = seen.insert(k, j) {
            return Err(malformed(format!(
                "account keys {i} and {j} are the same account {}",
                address(k.as_array())
            )));
        }
    }
    let mut loaded = 0usize;
    for (t, lookup) in message
        .address_table_lookups()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let n = lookup.writable_indexes.len() + lookup.readonly_indexes.len();
        if n == 0 {
            return Err(malformed(format!(
                "address table lookup {t} (table {}) loads no accounts",
                address(lookup.account_key.as_array())
            )));
        }
        loaded += n;
    }
    let total = keys.len() + loaded;
    if total > MAX_ACCOUNTS {
        return Err(malformed(format!(
            "the message names {total} accounts ({} static, {loaded} from address tables); \
             one-byte indexes reach at most {MAX_ACCOUNTS}",
            keys.len()
        )));
    }
    for (i, ix) in message.instructions().iter().enumerate() {
        let program = usize::from(ix.program_id_index);
        if program >= keys.len() {
            return Err(malformed(format!(
                "instruction {i}: program id index {program} is out of range ({} static account \
                 keys; a program cannot come from an address table)",
                keys.len()
            )));
        }
        if program == 0 {
            return Err(malformed(format!(
                "instruction {i}: program id index 0 is the fee payer, which cannot be a program"
            )));
        }
        if let Some(a) = ix.accounts.iter().find(|a| usize::from(**a) >= total) {
            return Err(malformed(format!(
                "instruction {i}: account index {a} is out of range ({total} accounts: {} \
                 static, {loaded} from address tables)",
                keys.len()
            )));
        }
    }
    message
        .sanitize()
        .map_err(|e| malformed(format!("the Solana SDK's sanitize check refuses it: {e}")))
}

/// The transfer a System Program `Transfer` instruction makes; `None` for any other instruction.
fn system_transfer(
    i: usize,
    ix: &CompiledInstruction,
    keys: &[Address],
) -> Result<Option<Transfer>, Error> {
    if keys.get(usize::from(ix.program_id_index)) != Some(&system_program::ID) {
        return Ok(None);
    }
    let Some((tag, rest)) = ix.data.split_first_chunk::<4>() else {
        return Ok(None);
    };
    if u32::from_le_bytes(*tag) != SYSTEM_TRANSFER {
        return Ok(None);
    }
    // The System Program decodes its instruction with bincode allowing trailing bytes, so bytes
    // after the lamports do not stop the transfer.
    let lamports = rest.first_chunk::<8>().ok_or_else(|| {
        Error::Refused(format!(
            "instruction {i} is a System transfer with {} bytes of data; a transfer needs 12 \
             (u32 2, u64 lamports)",
            ix.data.len()
        ))
    })?;
    let &[_, to, ..] = ix.accounts.as_slice() else {
        return Err(Error::Refused(format!(
            "instruction {i} is a System transfer with {} accounts; a transfer needs [from, to]",
            ix.accounts.len()
        )));
    };
    let recipient = keys.get(usize::from(to)).ok_or_else(|| {
        Error::Refused(format!(
            "instruction {i}: the System transfer's recipient (account index {to}) is loaded \
             from an address lookup table, so the message does not name it"
        ))
    })?;
    Ok(Some(Transfer {
        to: address(recipient.as_array()),
        amount: u128::from(u64::from_le_bytes(*lamports)),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use ed25519_dalek::{Signer, SigningKey};
    use serde_json::Value;

    /// Messages and addresses built by @solana/kit (tests/vectors/solana/README.md).
    fn vectors() -> Value {
        serde_json::from_str(include_str!("../../../tests/vectors/solana/vectors.json")).unwrap()
    }

    fn vector(name: &str) -> Vec<u8> {
        let v = vectors();
        let m = v["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name)
            .unwrap();
        hex::decode(m["message"].as_str().unwrap()).unwrap()
    }

    /// The RFC 8032 section 7.1 keys (tests/vectors/rfc8032/keys.txt): (seed, public key).
    fn rfc8032(name: &str) -> (SigningKey, [u8; 32]) {
        let line = include_str!("../../../tests/vectors/rfc8032/keys.txt")
            .lines()
            .find(|l| l.starts_with(&format!("{name} ")))
            .unwrap();
        let fields: Vec<&str> = line.split_whitespace().collect();
        let seed: [u8; 32] = hex::decode(fields[1]).unwrap().try_into().unwrap();
        let public: [u8; 32] = hex::decode(fields[2]).unwrap().try_into().unwrap();
        let key = SigningKey::from_bytes(&seed);
        assert_eq!(key.verifying_key().to_bytes(), public);
        (key, public)
    }

    fn key_of(address: &str) -> [u8; 32] {
        bs58::decode(address)
            .into_vec()
            .unwrap()
            .try_into()
            .unwrap()
    }

    fn malformed_reason(message: &[u8]) -> String {
        let (_, public) = rfc8032("TEST1");
        match plan_message(message, &public) {
            Err(Error::Malformed { format, reason }) => {
                assert_eq!(format, "Solana message");
                reason
            }
            other => panic!("expected Malformed, got {other:?}"),
        }
    }

    #[test]
    fn addresses_of_the_rfc8032_keys_match_solana_kit() {
        let (_, public) = rfc8032("TEST1");
        assert_eq!(
            address(&public),
            "FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z"
        );
        let v = vectors();
        let addresses = v["addresses"].as_array().unwrap();
        assert_eq!(addresses.len(), 3);
        for a in addresses {
            let public: [u8; 32] = hex::decode(a["public_key"].as_str().unwrap())
                .unwrap()
                .try_into()
                .unwrap();
            assert_eq!(
                address(&public),
                a["address"].as_str().unwrap(),
                "{}",
                a["name"]
            );
        }
    }

    #[test]
    fn kit_messages_decode_to_their_transfers() {
        let v = vectors();
        let mut decoded = 0;
        for m in v["messages"].as_array().unwrap() {
            if m.get("refused").is_some() {
                continue;
            }
            let bytes = hex::decode(m["message"].as_str().unwrap()).unwrap();
            for signer in m["signers"].as_array().unwrap() {
                let plan = plan_message(&bytes, &key_of(signer.as_str().unwrap())).unwrap();
                assert_eq!(plan.message(), bytes.as_slice());
                let want: Vec<Transfer> = m["transfers"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| Transfer {
                        to: t["to"].as_str().unwrap().to_owned(),
                        amount: u128::from(t["amount"].as_u64().unwrap()),
                    })
                    .collect();
                assert_eq!(
                    plan.summary(),
                    &Summary {
                        chain: Chain::Solana,
                        kind: if m["kind"] == "solana-v0" {
                            "solana-v0"
                        } else {
                            "solana-legacy"
                        },
                        network: None,
                        transfers: want,
                        fee: None,
                    },
                    "{}",
                    m["name"]
                );
                decoded += 1;
            }
        }
        assert_eq!(decoded, 5);
    }

    #[test]
    fn v0_with_an_address_table_lookup_decodes() {
        let bytes = vector("v0_lookup_table");
        let decoded = decode(&bytes).unwrap();
        let lookups = decoded.address_table_lookups().unwrap();
        assert_eq!(lookups.len(), 1);
        assert_eq!(lookups[0].account_key.to_bytes(), [0x44; 32]);
        assert_eq!(lookups[0].writable_indexes, Vec::<u8>::new());
        assert_eq!(lookups[0].readonly_indexes, vec![0]);
        // The second instruction (not a transfer) passes the table's account, index 4.
        assert_eq!(decoded.instructions()[1].accounts, vec![4]);
        let (key, public) = rfc8032("TEST1");
        let plan = plan_message(&bytes, &public).unwrap();
        assert_eq!(plan.summary().kind, "solana-v0");
        assert_eq!(
            plan.summary().transfers,
            vec![Transfer {
                to: address(&rfc8032("TEST2").1),
                amount: 42
            }]
        );
        let signed = plan.finish(&key.sign(&bytes).to_bytes()).unwrap();
        assert!(signed.transaction.ends_with(&bytes));
    }

    #[test]
    fn a_transfer_to_an_account_from_a_lookup_table_is_refused() {
        let (_, public) = rfc8032("TEST1");
        match plan_message(&vector("v0_recipient_from_lookup_table"), &public) {
            Err(Error::Refused(why)) => assert_eq!(
                why,
                "instruction 0: the System transfer's recipient (account index 2) is loaded from \
                 an address lookup table, so the message does not name it"
            ),
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[test]
    fn a_key_that_is_not_a_required_signer_is_refused() {
        let bytes = vector("legacy_transfer");
        // TEST2 is in the message (the recipient) but does not sign; TEST3 is not in it at all.
        for name in ["TEST2", "TEST3"] {
            let (_, public) = rfc8032(name);
            match plan_message(&bytes, &public) {
                Err(Error::Refused(why)) => assert_eq!(
                    why,
                    format!(
                        "the key {} is not a required signer of the message",
                        address(&public)
                    )
                ),
                other => panic!("{name}: expected Refused, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_public_key_off_the_curve_is_refused() {
        let bytes = vector("legacy_transfer");
        assert!(matches!(
            plan_message(&bytes, &OFF_CURVE),
            Err(Error::Key(why)) if why.contains("is not an Ed25519 public key")
        ));
    }

    /// A y coordinate with no x on the curve (x² = (y² − 1)/(d·y² + 1) has no root for y = 2).
    const OFF_CURVE: [u8; 32] = {
        let mut k = [0; 32];
        k[0] = 2;
        k
    };

    #[test]
    fn finish_assembles_the_wire_transaction() {
        let bytes = vector("legacy_transfer");
        let (key, public) = rfc8032("TEST1");
        let plan = plan_message(&bytes, &public).unwrap();
        let signature = key.sign(&bytes).to_bytes();
        let signed = plan.finish(&signature).unwrap();
        let mut want = vec![1];
        want.extend_from_slice(&signature);
        want.extend_from_slice(&bytes);
        assert_eq!(signed.transaction, want);
        assert_eq!(signed.signature, signature);
        assert_eq!(signed.txid, bs58::encode(signature).into_string());
        assert!(signed.complete);
    }

    #[test]
    fn finish_as_the_second_signer_leaves_the_fee_payer_slot_empty() {
        let bytes = vector("legacy_two_signers_two_transfers");
        let (key, public) = rfc8032("TEST1");
        let plan = plan_message(&bytes, &public).unwrap();
        let signature = key.sign(&bytes).to_bytes();
        let signed = plan.finish(&signature).unwrap();
        let mut want = vec![2];
        want.extend_from_slice(&[0; 64]);
        want.extend_from_slice(&signature);
        want.extend_from_slice(&bytes);
        assert_eq!(signed.transaction, want);
        assert_eq!(signed.txid, "1".repeat(64));
        assert!(!signed.complete);
    }

    #[test]
    fn finish_refuses_a_signature_that_does_not_verify() {
        let bytes = vector("v0_transfer");
        let (key, public) = rfc8032("TEST1");
        let mut other = bytes.clone();
        *other.last_mut().unwrap() ^= 1;
        let wrong_message = key.sign(&other).to_bytes();
        let (key2, _) = rfc8032("TEST2");
        let wrong_key = key2.sign(&bytes).to_bytes();
        let mut flipped = key.sign(&bytes).to_bytes();
        flipped[10] ^= 0x40;
        for signature in [wrong_message, wrong_key, flipped, [0; 64]] {
            let plan = plan_message(&bytes, &public).unwrap();
            match plan.finish(&signature) {
                Err(Error::Signature(why)) => assert!(
                    why.starts_with(&format!(
                        "the Ed25519 signature does not verify over the 152-byte message under {}",
                        address(&public)
                    )),
                    "{why}"
                ),
                other => panic!("expected Signature, got {other:?}"),
            }
        }
    }

    #[test]
    fn a_transfer_with_bytes_after_the_lamports_is_still_a_transfer() {
        // The System Program ignores bytes after the u64 (bincode with trailing bytes allowed).
        let mut bytes = vector("legacy_transfer");
        let at = bytes.len() - 13;
        assert_eq!(bytes[at], 12, "the data length");
        bytes[at] = 14;
        bytes.extend_from_slice(&[0xaa, 0xbb]);
        let (_, public) = rfc8032("TEST1");
        let plan = plan_message(&bytes, &public).unwrap();
        assert_eq!(plan.summary().transfers[0].amount, 1_000_000);
    }

    #[test]
    fn a_system_transfer_the_message_does_not_fix_is_refused() {
        let (_, public) = rfc8032("TEST1");
        let base = vector("legacy_transfer");
        let at = base.len() - 13;
        // Data cut to 8 bytes: u32 2 and only half of the lamports.
        let mut short = base[..at].to_vec();
        short.push(8);
        short.extend_from_slice(&base[at + 1..at + 9]);
        match plan_message(&short, &public) {
            Err(Error::Refused(why)) => assert_eq!(
                why,
                "instruction 0 is a System transfer with 8 bytes of data; a transfer needs 12 \
                 (u32 2, u64 lamports)"
            ),
            other => panic!("expected Refused, got {other:?}"),
        }
        // One account instead of [from, to].
        let mut one = base[..at - 3].to_vec();
        one.extend_from_slice(&[1, 0]);
        one.extend_from_slice(&base[at..]);
        match plan_message(&one, &public) {
            Err(Error::Refused(why)) => assert_eq!(
                why,
                "instruction 0 is a System transfer with 1 accounts; a transfer needs [from, to]"
            ),
            other => panic!("expected Refused, got {other:?}"),
        }
    }

    #[test]
    fn malformed_messages_are_refused_with_the_fault_named() {
        // legacy_transfer: header 0..3, key count 3, keys 4..100 (payer, recipient, System),
        // blockhash 100..132, instruction count 132, program index 133, account count 134,
        // accounts 135 and 136, data length 137, data 138..150.
        let good = vector("legacy_transfer");
        assert_eq!(good.len(), 150);
        let with = |at: usize, byte: u8| {
            let mut m = good.clone();
            m[at] = byte;
            m
        };
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("empty", vec![], "empty: no bytes"),
            (
                "truncated in the header",
                good[..2].to_vec(),
                "truncated: the 2 bytes end inside the legacy message",
            ),
            (
                "truncated in the data",
                good[..149].to_vec(),
                "truncated: the 149 bytes end inside the legacy message",
            ),
            (
                "truncated v0 before its lookups",
                vector("v0_transfer")[..151].to_vec(),
                "truncated: the 151 bytes end inside the v0 message",
            ),
            (
                "trailing byte",
                [good.as_slice(), &[0]].concat(),
                "1 trailing bytes after the 150-byte legacy message",
            ),
            (
                "non-canonical key count",
                [&good[..3], &[0x83, 0x00], &good[4..]].concat(),
                "the legacy message does not decode: Invalid value: short u16: non-canonical \
                 encoding",
            ),
            (
                "no signers",
                with(0, 0),
                "the header requires no signatures; the fee payer (account 0) must sign",
            ),
            (
                "read-only fee payer",
                with(1, 1),
                "the header marks 1 of its 1 signers read-only; the fee payer (account 0) must \
                 be writable",
            ),
            (
                "more signers than keys",
                with(0, 4),
                "the header counts 4 signers and 1 read-only non-signers, but the message lists \
                 3 account keys",
            ),
            (
                "more read-only accounts than keys",
                with(2, 3),
                "the header counts 1 signers and 3 read-only non-signers, but the message lists \
                 3 account keys",
            ),
            (
                "duplicate account key",
                [&good[..36], &good[4..36], &good[68..]].concat(),
                "account keys 0 and 1 are the same account \
                 FVen3X669xLzsi6N2V91DoiyzHzg1uAgqiT8jZ9nS96Z",
            ),
            (
                "program id index out of range",
                with(133, 3),
                "instruction 0: program id index 3 is out of range (3 static account keys; a \
                 program cannot come from an address table)",
            ),
            (
                "program id index of the fee payer",
                with(133, 0),
                "instruction 0: program id index 0 is the fee payer, which cannot be a program",
            ),
            (
                "account index out of range",
                with(136, 3),
                "instruction 0: account index 3 is out of range (3 accounts: 3 static, 0 from \
                 address tables)",
            ),
            (
                "unknown version",
                [&[0x82], good.as_slice()].concat(),
                "unknown message version 2 (first byte 0x82); Tessera decodes legacy and v0 \
                 messages",
            ),
        ];
        for (name, bytes, want) in cases {
            let reason = malformed_reason(&bytes);
            assert!(reason.starts_with(want), "{name}: {reason}");
        }
    }

    #[test]
    fn v0_malformed_lookups_are_refused() {
        let good = vector("v0_lookup_table");
        let n = good.len();
        // The lookup: table key, writable count 0, readonly count 1, readonly index 0.
        assert_eq!(&good[n - 3..], &[0, 1, 0]);
        let mut empty = good[..n - 2].to_vec();
        empty.push(0);
        assert_eq!(
            malformed_reason(&empty),
            format!(
                "address table lookup 0 (table {}) loads no accounts",
                address(&[0x44; 32])
            )
        );
        // The second instruction's account index 4 (the table's account) moved past the end.
        let at = n - 3 - 32 - 1 - 3 - 1;
        assert_eq!(good[at], 4);
        let mut beyond = good.clone();
        beyond[at] = 5;
        assert!(
            malformed_reason(&beyond)
                .starts_with("instruction 1: account index 5 is out of range (5 accounts: 4 static, 1 from address tables)")
        );
    }

    #[test]
    fn v1_messages_are_unsupported() {
        // A minimal v1 message: prefix, header (1, 0, 0), config mask 0, lifetime, no
        // instructions, one address.
        let mut m = vec![0x81, 1, 0, 0, 0, 0, 0, 0];
        m.extend_from_slice(&[0x11; 32]);
        m.extend_from_slice(&[0, 1]);
        m.extend_from_slice(&rfc8032("TEST1").1);
        let (_, public) = rfc8032("TEST1");
        assert!(matches!(
            plan_message(&m, &public),
            Err(Error::Unsupported(why)) if why.contains("v1")
        ));
    }
}
