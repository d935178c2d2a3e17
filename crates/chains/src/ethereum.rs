//! Ethereum: the address of a secp256k1 public key and its EIP-55 checksummed spelling;
//! unsigned transactions (EIP-1559, EIP-2930, legacy EIP-155) decoded into what to sign and
//! assembled with the service's ECDSA signature; EIP-191 `personal_sign` and EIP-712 typed-data
//! signing hashes.
//!
//! Decoding and encoding are alloy's (`alloy-consensus` transactions over `alloy-rlp`,
//! `alloy-dyn-abi` typed data). The bytes handed in must be exactly the canonical signing
//! payload of the transaction they decode to, so the signing hash is Keccak-256 of those bytes
//! and the [`Summary`] describes everything the signature commits to.

use alloy_consensus::transaction::RlpEcdsaDecodableTx;
use alloy_consensus::{SignableTransaction, Transaction, TxEip1559, TxEip2930, TxLegacy};
use alloy_dyn_abi::{Eip712Domain, Resolver, TypedData};
use alloy_primitives::{TxKind, U256};
use alloy_rlp::{Decodable, Header};
use k256::PublicKey;
use k256::ecdsa::{RecoveryId, VerifyingKey};
use k256::elliptic_curve::sec1::ToEncodedPoint;
use sha3::{Digest, Keccak256};

use crate::{Chain, Error, Summary, Transfer};

/// The format named in [`Error::Malformed`] for a transaction.
const RLP_TRANSACTION: &str = "RLP transaction";
/// The format named in [`Error::Malformed`] for a typed-data document.
const EIP712_JSON: &str = "EIP-712 JSON";

/// The EIP-55 checksummed address of a SEC1-encoded secp256k1 public key: the last 20 bytes
/// of Keccak-256 over the uncompressed `X‖Y` (Ethereum yellow paper, appendix F); `None` when
/// the bytes are not a point on the curve.
pub fn address(sec1: &[u8]) -> Option<String> {
    let pk = PublicKey::from_sec1_bytes(sec1).ok()?;
    Some(eip55(&address_bytes(&pk)))
}

/// The 20-byte address of a public key: the last 20 bytes of Keccak-256(`X‖Y`).
fn address_bytes(pk: &PublicKey) -> [u8; 20] {
    let uncompressed = pk.to_encoded_point(false);
    let hash: [u8; 32] = Keccak256::digest(&uncompressed.as_bytes()[1..]).into();
    let mut out = [0u8; 20];
    out.copy_from_slice(&hash[12..]);
    out
}

/// EIP-55 mixed-case hex of a 20-byte address: a hex letter is upper-cased where the matching
/// nibble of Keccak-256(lower-case hex) is ≥ 8.
pub fn eip55(address: &[u8]) -> String {
    let lower = hex::encode(address);
    let check = Keccak256::digest(lower.as_bytes());
    let mut out = String::with_capacity(2 + lower.len());
    out.push_str("0x");
    for (i, c) in lower.chars().enumerate() {
        let nibble = (check[i / 2] >> (if i % 2 == 0 { 4 } else { 0 })) & 0xf;
        out.push(if nibble >= 8 {
            c.to_ascii_uppercase()
        } else {
            c
        });
    }
    out
}

/// The unsigned transaction, one variant per kind Tessera signs.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Unsigned {
    /// A legacy transaction with its EIP-155 chain id.
    Legacy(TxLegacy),
    /// An EIP-2930 (type 0x01) transaction.
    Eip2930(TxEip2930),
    /// An EIP-1559 (type 0x02) transaction.
    Eip1559(TxEip1559),
}

/// A decoded unsigned Ethereum transaction: what to sign (its prehash), what it does (its
/// [`Summary`]) and who must sign it (`from`, the address of the key it was planned for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthPlan {
    tx: Unsigned,
    from: [u8; 20],
    prehash: [u8; 32],
    summary: Summary,
}

/// A signed Ethereum transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EthSigned {
    /// The EIP-2718 envelope (`type ‖ rlp(fields ‖ y_parity ‖ r ‖ s)`) of a typed transaction,
    /// or the RLP list `[.., v, r, s]` (v = chain id × 2 + 35 + y parity) of a legacy one: the
    /// bytes `eth_sendRawTransaction` takes.
    pub signed_tx: Vec<u8>,
    /// The transaction hash: Keccak-256 of `signed_tx`.
    pub tx_hash: [u8; 32],
    /// The sender, EIP-55 checksummed.
    pub from: String,
}

impl EthPlan {
    /// The 32-byte signing hash (Keccak-256 of the signing payload; EIP-155 for legacy).
    pub fn prehash(&self) -> [u8; 32] {
        self.prehash
    }

    /// What the transaction does.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The sender: the EIP-55 address of the key the transaction was planned for.
    pub fn from(&self) -> String {
        eip55(&self.from)
    }

    /// Assemble with the service's ECDSA signature (r||s low-S) and recovery id (0/1). Recovers
    /// the signer and checks it equals `from` (Error::Signature otherwise).
    pub fn finish(self, signature: &[u8; 64], recovery_id: u8) -> Result<EthSigned, Error> {
        let signer = recover(&self.prehash, signature, recovery_id)?;
        if signer != self.from {
            return Err(Error::Signature(format!(
                "the signature with recovery id {recovery_id} recovers to {}, not to the sender {}",
                eip55(&signer),
                eip55(&self.from)
            )));
        }
        let sig = alloy_primitives::Signature::from_bytes_and_parity(signature, recovery_id == 1);
        let mut signed_tx = Vec::new();
        match self.tx {
            Unsigned::Legacy(tx) => tx.into_signed(sig).eip2718_encode(&mut signed_tx),
            Unsigned::Eip2930(tx) => tx.into_signed(sig).eip2718_encode(&mut signed_tx),
            Unsigned::Eip1559(tx) => tx.into_signed(sig).eip2718_encode(&mut signed_tx),
        }
        let tx_hash = Keccak256::digest(&signed_tx).into();
        Ok(EthSigned {
            signed_tx,
            tx_hash,
            from: eip55(&self.from),
        })
    }
}

/// The address whose key made `signature` (r‖s, low S) over `prehash` with `recovery_id`.
fn recover(prehash: &[u8; 32], signature: &[u8; 64], recovery_id: u8) -> Result<[u8; 20], Error> {
    let recid = RecoveryId::from_byte(recovery_id)
        .filter(|id| !id.is_x_reduced())
        .ok_or_else(|| Error::Signature(format!("recovery id {recovery_id} is not 0 or 1")))?;
    let sig = k256::ecdsa::Signature::from_slice(signature).map_err(|_| {
        Error::Signature("r or s is 0 or not below the secp256k1 group order".into())
    })?;
    if sig.normalize_s().is_some() {
        return Err(Error::Signature(
            "s is in the upper half of the group order (high S); Ethereum takes low S only (EIP-2)"
                .into(),
        ));
    }
    let key = VerifyingKey::recover_from_prehash(prehash, &sig, recid).map_err(|_| {
        Error::Signature(format!(
            "no public key recovers from the signature with recovery id {recovery_id}"
        ))
    })?;
    Ok(address_bytes(&PublicKey::from(&key)))
}

/// `unsigned_tx`: EIP-2718 typed payload (0x02 EIP-1559, 0x01 EIP-2930, each `type || rlp(fields
/// without signature)`) or legacy RLP with EIP-155 fields (the 9-field [nonce, gasPrice, gas,
/// to, value, data, chainId, 0, 0]). `public_key`: the key's SEC1 bytes (its address is `from`).
///
/// Refuses a chain id of 0 and a legacy transaction without an EIP-155 chain id; bad RLP,
/// trailing bytes or a payload that is not the canonical encoding of its fields are
/// [`Error::Malformed`]; other EIP-2718 types (0x03 blob, 0x04 set-code, ..) are
/// [`Error::Unsupported`].
pub fn plan_transaction(unsigned_tx: &[u8], public_key: &[u8]) -> Result<EthPlan, Error> {
    let key = PublicKey::from_sec1_bytes(public_key).map_err(|_| {
        Error::Key(format!(
            "{} bytes are not a SEC1-encoded secp256k1 point",
            public_key.len()
        ))
    })?;
    let tx = decode(unsigned_tx)?;
    // alloy's signing payload of the decoded fields: the bytes handed in, or they are not the
    // canonical encoding of what the summary shows.
    let (payload, summary) = match &tx {
        Unsigned::Legacy(t) => (t.encoded_for_signing(), summarize(t, "legacy-eip155")?),
        Unsigned::Eip2930(t) => (t.encoded_for_signing(), summarize(t, "eip2930")?),
        Unsigned::Eip1559(t) => (t.encoded_for_signing(), summarize(t, "eip1559")?),
    };
    if payload != unsigned_tx {
        return Err(malformed(
            "not the canonical encoding of its fields (re-encoding them gives other bytes)",
        ));
    }
    Ok(EthPlan {
        tx,
        from: address_bytes(&key),
        prehash: Keccak256::digest(&payload).into(),
        summary,
    })
}

/// An [`Error::Malformed`] transaction.
fn malformed(reason: impl Into<String>) -> Error {
    Error::Malformed {
        format: RLP_TRANSACTION,
        reason: reason.into(),
    }
}

/// Decodes the transaction by its first byte: an EIP-2718 type or the start of an RLP list.
fn decode(bytes: &[u8]) -> Result<Unsigned, Error> {
    let Some((&first, rest)) = bytes.split_first() else {
        return Err(malformed("empty input"));
    };
    let tx = match first {
        0x01 => Unsigned::Eip2930(typed(rest, "EIP-2930")?),
        0x02 => Unsigned::Eip1559(typed(rest, "EIP-1559")?),
        0xc0..=0xff => Unsigned::Legacy(legacy(bytes)?),
        0x00..=0x7f => {
            let what = match first {
                0x00 => " (a legacy transaction is a bare RLP list, not type 0x00)",
                0x03 => " (EIP-4844 blob transaction)",
                0x04 => " (EIP-7702 set-code transaction)",
                _ => "",
            };
            return Err(Error::Unsupported(format!(
                "EIP-2718 transaction type {first:#04x}{what}; Tessera signs types 0x01 \
                 (EIP-2930), 0x02 (EIP-1559) and legacy EIP-155 transactions"
            )));
        }
        _ => {
            return Err(malformed(format!(
                "first byte {first:#04x} is neither an EIP-2718 type (0x00-0x7f) nor the \
                 start of an RLP list (0xc0-0xff)"
            )));
        }
    };
    let chain_id = match &tx {
        Unsigned::Legacy(t) => t.chain_id,
        Unsigned::Eip2930(t) => Some(t.chain_id),
        Unsigned::Eip1559(t) => Some(t.chain_id),
    };
    if chain_id == Some(0) {
        return Err(Error::Refused(
            "chain id 0: the transaction names no chain (EIP-155 replay protection needs one)"
                .into(),
        ));
    }
    Ok(tx)
}

/// The payload of the RLP list at the start of `bytes`, which must end there.
fn list_payload<'a>(mut bytes: &'a [u8], what: &str) -> Result<&'a [u8], Error> {
    let payload = Header::decode_bytes(&mut bytes, true)
        .map_err(|e| malformed(format!("{what} field list: {e}")))?;
    if !bytes.is_empty() {
        return Err(malformed(format!(
            "{} trailing byte(s) after the {what} field list",
            bytes.len()
        )));
    }
    Ok(payload)
}

/// Checks that the field list was read to its end.
fn no_more_fields(fields: &[u8], what: &str) -> Result<(), Error> {
    if fields.is_empty() {
        Ok(())
    } else {
        Err(malformed(format!(
            "{} bytes of extra fields after the last {what} field",
            fields.len()
        )))
    }
}

/// An EIP-2718 typed transaction's fields after the type byte: `rlp([fields..])`.
fn typed<T: RlpEcdsaDecodableTx>(bytes: &[u8], what: &str) -> Result<T, Error> {
    let mut fields = list_payload(bytes, what)?;
    let tx =
        T::rlp_decode_fields(&mut fields).map_err(|e| malformed(format!("{what} fields: {e}")))?;
    no_more_fields(fields, what)?;
    Ok(tx)
}

/// A legacy transaction's EIP-155 signing payload `rlp([nonce, gasPrice, gas, to, value, data,
/// chainId, 0, 0])`.
fn legacy(bytes: &[u8]) -> Result<TxLegacy, Error> {
    let what = "legacy transaction";
    let mut fields = list_payload(bytes, what)?;
    let mut tx = TxLegacy::rlp_decode_fields(&mut fields)
        .map_err(|e| malformed(format!("{what} fields: {e}")))?;
    if fields.is_empty() {
        return Err(Error::Refused(
            "legacy transaction without an EIP-155 chain id (6 fields, pre-EIP-155): its \
             signature would be valid on every chain"
                .into(),
        ));
    }
    let mut field = |name: &str| {
        U256::decode(&mut fields).map_err(|e| {
            malformed(format!(
                "{what} EIP-155 field {name}: {e} (EIP-155 signing payloads have 9 fields)"
            ))
        })
    };
    let chain_id = field("chainId")?;
    let (r, s) = (field("r")?, field("s")?);
    no_more_fields(fields, what)?;
    if !r.is_zero() || !s.is_zero() {
        return Err(malformed(format!(
            "{what} EIP-155 fields 8 and 9 must be 0 in the signing payload, found r = {r:#x}, \
             s = {s:#x} (an already signed transaction?)"
        )));
    }
    tx.chain_id = Some(u64::try_from(chain_id).map_err(|_| {
        malformed(format!(
            "{what} chain id {chain_id} does not fit in 64 bits"
        ))
    })?);
    Ok(tx)
}

/// The summary of a decoded transaction.
fn summarize<T: Transaction>(tx: &T, kind: &'static str) -> Result<Summary, Error> {
    let to = match tx.kind() {
        TxKind::Call(to) => eip55(to.as_slice()),
        TxKind::Create => "contract-creation".to_string(),
    };
    let value = tx.value();
    let amount = u128::try_from(value)
        .map_err(|_| Error::Refused(format!("value {value} wei does not fit in 128 bits")))?;
    let fee = u128::from(tx.gas_limit())
        .checked_mul(tx.max_fee_per_gas())
        .ok_or_else(|| {
            Error::Refused(format!(
                "maximum fee {} gas × {} wei does not fit in 128 bits",
                tx.gas_limit(),
                tx.max_fee_per_gas()
            ))
        })?;
    Ok(Summary {
        chain: Chain::Ethereum,
        kind,
        network: tx.chain_id().map(|id| id.to_string()),
        transfers: vec![Transfer { to, amount }],
        fee: Some(fee),
    })
}

/// EIP-191 personal_sign: keccak256("\x19Ethereum Signed Message:\n" + len + message).
pub fn personal_message_hash(message: &[u8]) -> [u8; 32] {
    alloy_primitives::eip191_hash_message(message).0
}

/// EIP-712: the signing hash of a typed-data JSON document (eth_signTypedData_v4 shape), plus a
/// Summary with kind "eip712" and network = domain chainId when present.
///
/// The hash is `keccak256(0x19 ‖ 0x01 ‖ domainSeparator ‖ hashStruct(message))` (only the
/// domain separator when the primary type is `EIP712Domain`, as MetaMask does).
pub fn typed_data_hash(json: &str) -> Result<([u8; 32], Summary), Error> {
    let data = parse_typed_data(json)?;
    let hash = data.eip712_signing_hash().map_err(|e| Error::Malformed {
        format: EIP712_JSON,
        reason: format!("primary type {:?}: {e}", data.primary_type),
    })?;
    let summary = Summary {
        chain: Chain::Ethereum,
        kind: "eip712",
        network: data.domain.chain_id.map(|id| id.to_string()),
        transfers: Vec::new(),
        fee: None,
    };
    Ok((hash.0, summary))
}

/// The `eth_signTypedData_v4` document, read field by field so that an error names the field.
#[derive(serde::Deserialize)]
struct TypedDataDocument {
    #[serde(default)]
    domain: Eip712Domain,
    types: Resolver,
    #[serde(rename = "primaryType")]
    primary_type: String,
    #[serde(default)]
    message: serde_json::Value,
}

/// Parses a typed-data document, also when it comes as a JSON string holding the document (as
/// some wallets pass it).
fn parse_typed_data(json: &str) -> Result<TypedData, Error> {
    let bad = |e: serde_json::Error| Error::Malformed {
        format: EIP712_JSON,
        reason: e.to_string(),
    };
    let value = match serde_json::from_str(json).map_err(bad)? {
        serde_json::Value::String(inner) => serde_json::from_str(&inner).map_err(bad)?,
        value => value,
    };
    let doc: TypedDataDocument = serde_json::from_value(value).map_err(bad)?;
    Ok(TypedData {
        domain: doc.domain,
        resolver: doc.types,
        primary_type: doc.primary_type,
        message: doc.message,
    })
}

/// The 65-byte r||s||v signature for personal_sign/EIP-712 (v = 27 + recovery id).
pub fn rsv(signature: &[u8; 64], recovery_id: u8) -> [u8; 65] {
    let mut out = [0u8; 65];
    out[..64].copy_from_slice(signature);
    out[64] = 27 + recovery_id;
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn eip55_checksums_match_the_spec() {
        let vectors = include_str!("../../../tests/vectors/ethereum/eip55.txt");
        let mut n = 0;
        for line in vectors.lines().filter(|l| !l.trim().is_empty()) {
            let want = line.trim();
            let raw = hex::decode(want.trim_start_matches("0x").to_ascii_lowercase()).unwrap();
            assert_eq!(eip55(&raw), want);
            n += 1;
        }
        assert_eq!(n, 4);
    }

    #[test]
    fn address_rejects_non_points() {
        assert!(address(&[5; 33]).is_none());
        assert!(address(&[]).is_none());
    }
}
