//! The JSON bodies: proto3's JSON mapping of `tessera.v1` (lowerCamelCase names, the proto
//! field names accepted too; bytes as base64; enums by name; uint64 as a string; timestamps
//! as RFC 3339), converted to and from `service-core`'s types.

use base64::Engine;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::{DecodePaddingMode, general_purpose};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use service_core::app::{ChainOptions, ChainSigned, KeyPage, KeyView, StatusView};
use service_core::chain::{ChainKind, Signed, TxSummary, Unsigned};
use service_core::{Error, Scheme, Signature};

const LENIENT: GeneralPurposeConfig =
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
const STANDARD_ANY: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::STANDARD, LENIENT);
const URL_SAFE_ANY: GeneralPurpose = GeneralPurpose::new(&base64::alphabet::URL_SAFE, LENIENT);

/// Bytes in JSON: standard base64 out; standard or URL-safe, padded or not, in.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct B64(pub Vec<u8>);

impl Serialize for B64 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(&self.0))
    }
}

impl<'de> Deserialize<'de> for B64 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        STANDARD_ANY
            .decode(&s)
            .or_else(|_| URL_SAFE_ANY.decode(&s))
            .map(B64)
            .map_err(|_| serde::de::Error::custom("not base64"))
    }
}

/// The name of a scheme in JSON (`SCHEME_ED25519`, …).
pub fn scheme_name(s: Scheme) -> &'static str {
    match s {
        Scheme::Ed25519 => "SCHEME_ED25519",
        Scheme::Bip340 => "SCHEME_BIP340",
        Scheme::EcdsaSecp256k1 => "SCHEME_ECDSA_SECP256K1",
    }
}

/// A scheme from its JSON name (or its number, as proto3 JSON parsers accept).
pub fn scheme_of(field: &'static str, v: &serde_json::Value) -> Result<Scheme, Error> {
    let name = match v {
        serde_json::Value::String(s) => s.as_str(),
        serde_json::Value::Number(n) => match n.as_u64() {
            Some(1) => "SCHEME_ED25519",
            Some(2) => "SCHEME_BIP340",
            Some(3) => "SCHEME_ECDSA_SECP256K1",
            _ => "",
        },
        serde_json::Value::Null => "SCHEME_UNSPECIFIED",
        _ => "",
    };
    match name {
        "SCHEME_ED25519" => Ok(Scheme::Ed25519),
        "SCHEME_BIP340" => Ok(Scheme::Bip340),
        "SCHEME_ECDSA_SECP256K1" => Ok(Scheme::EcdsaSecp256k1),
        "SCHEME_UNSPECIFIED" => Err(Error::invalid(
            field,
            "must be set (SCHEME_ED25519, SCHEME_BIP340 or SCHEME_ECDSA_SECP256K1)",
        )),
        _ => Err(Error::invalid(
            field,
            format!(
                "unknown scheme {v}; expected SCHEME_ED25519, SCHEME_BIP340 or SCHEME_ECDSA_SECP256K1"
            ),
        )),
    }
}

/// A chain from its name in a query (`ethereum`, `bitcoin`, `solana`; the `tessera.v1.Chain`
/// names `CHAIN_ETHEREUM`, … as gRPC transcoding spells enums, too); empty means unset.
pub fn chain_of(field: &'static str, v: &str) -> Result<ChainKind, Error> {
    match v {
        "ethereum" | "CHAIN_ETHEREUM" => Ok(ChainKind::Ethereum),
        "bitcoin" | "CHAIN_BITCOIN" => Ok(ChainKind::Bitcoin),
        "solana" | "CHAIN_SOLANA" => Ok(ChainKind::Solana),
        "" | "CHAIN_UNSPECIFIED" => Err(Error::invalid(
            field,
            "must be set (ethereum, bitcoin or solana)",
        )),
        other => Err(Error::invalid(
            field,
            format!("unknown chain `{other}`; expected ethereum, bitcoin or solana"),
        )),
    }
}

/// `POST /v1/keys`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateKeyBody {
    /// Scheme name.
    #[serde(default)]
    pub scheme: serde_json::Value,
    /// t.
    #[serde(default)]
    pub threshold: u32,
    /// n.
    #[serde(default)]
    pub parties: u32,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Idempotency key.
    #[serde(default, alias = "idempotency_key")]
    pub idempotency_key: String,
}

/// `POST /v1/keys:import`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ImportKeyBody {
    /// Scheme name.
    #[serde(default)]
    pub scheme: serde_json::Value,
    /// The secret key.
    #[serde(default, alias = "secret_key")]
    pub secret_key: B64,
    /// t.
    #[serde(default)]
    pub threshold: u32,
    /// n.
    #[serde(default)]
    pub parties: u32,
    /// Label.
    #[serde(default)]
    pub label: String,
    /// Idempotency key.
    #[serde(default, alias = "idempotency_key")]
    pub idempotency_key: String,
}

impl Drop for ImportKeyBody {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.secret_key.0);
    }
}

/// `POST /v1/keys/{key_id}:sign`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignBody {
    /// The message.
    #[serde(default)]
    pub message: B64,
    /// Idempotency key.
    #[serde(default, alias = "idempotency_key")]
    pub idempotency_key: String,
    /// BIP340 Taproot option.
    #[serde(default, alias = "taproot_merkle_root")]
    pub taproot_merkle_root: Option<B64>,
}

/// `POST /v1/keys/{key_id}:signBatch`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignBatchBody {
    /// The messages.
    #[serde(default)]
    pub messages: Vec<B64>,
    /// BIP340 Taproot option.
    #[serde(default, alias = "taproot_merkle_root")]
    pub taproot_merkle_root: Option<B64>,
}

/// `POST /v1/signatures:verify`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VerifyBody {
    /// Scheme name.
    #[serde(default)]
    pub scheme: serde_json::Value,
    /// Public key.
    #[serde(default, alias = "public_key")]
    pub public_key: B64,
    /// Message.
    #[serde(default)]
    pub message: B64,
    /// Signature.
    #[serde(default)]
    pub signature: B64,
}

/// `POST /v1/keys/{key_id}:signTransaction`: exactly one of `ethereum`, `bitcoin`, `solana`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignTransactionBody {
    /// An Ethereum transaction.
    #[serde(default)]
    pub ethereum: Option<EthereumTransactionBody>,
    /// A Bitcoin PSBT.
    #[serde(default)]
    pub bitcoin: Option<BitcoinTransactionBody>,
    /// A Solana message.
    #[serde(default)]
    pub solana: Option<SolanaTransactionBody>,
    /// Idempotency key.
    #[serde(default, alias = "idempotency_key")]
    pub idempotency_key: String,
    /// Whether to send the signed transaction to the chain's node.
    #[serde(default)]
    pub broadcast: bool,
}

/// `EthereumTransaction`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EthereumTransactionBody {
    /// The unsigned transaction (EIP-2718 typed payload or legacy EIP-155 RLP list).
    #[serde(default, alias = "unsigned_tx")]
    pub unsigned_tx: B64,
}

/// `BitcoinTransaction`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BitcoinTransactionBody {
    /// The PSBT (binary).
    #[serde(default)]
    pub psbt: B64,
    /// `mainnet` (when empty), `testnet`, `signet` or `regtest`.
    #[serde(default)]
    pub network: String,
}

/// `SolanaTransaction`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SolanaTransactionBody {
    /// The serialized message (legacy or v0).
    #[serde(default)]
    pub message: B64,
}

impl SignTransactionBody {
    /// What the body asks to sign (the one transaction it holds; none or several is
    /// INVALID_ARGUMENT naming `transaction`) and how.
    pub fn into_parts(self) -> Result<(Unsigned, ChainOptions), Error> {
        let unsigned = match (self.ethereum, self.bitcoin, self.solana) {
            (Some(e), None, None) => Unsigned::EthereumTransaction(e.unsigned_tx.0),
            (None, Some(b), None) => Unsigned::BitcoinPsbt {
                psbt: b.psbt.0,
                network: b.network,
            },
            (None, None, Some(s)) => Unsigned::SolanaMessage(s.message.0),
            (None, None, None) => {
                return Err(Error::invalid(
                    "transaction",
                    "must be set (ethereum, bitcoin or solana)",
                ));
            }
            (e, b, s) => {
                let set: Vec<&str> = [
                    ("ethereum", e.is_some()),
                    ("bitcoin", b.is_some()),
                    ("solana", s.is_some()),
                ]
                .into_iter()
                .filter_map(|(name, present)| present.then_some(name))
                .collect();
                return Err(Error::invalid(
                    "transaction",
                    format!(
                        "exactly one of ethereum, bitcoin or solana may be set (got {})",
                        set.join(" and ")
                    ),
                ));
            }
        };
        Ok((
            unsigned,
            ChainOptions {
                idempotency_key: self.idempotency_key,
                broadcast: self.broadcast,
            },
        ))
    }
}

/// `POST /v1/keys/{key_id}:signTypedData`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignTypedDataBody {
    /// The EIP-712 document: a JSON object, or a string holding one (the proto's
    /// `typed_data_json`), kept as the client wrote it.
    #[serde(
        default,
        alias = "typed_data",
        alias = "typedDataJson",
        alias = "typed_data_json"
    )]
    pub typed_data: Option<Box<RawValue>>,
    /// Idempotency key.
    #[serde(default, alias = "idempotency_key")]
    pub idempotency_key: String,
}

impl SignTypedDataBody {
    /// The document's JSON text (empty when unset, which the use case refuses).
    pub fn typed_data_json(&self) -> Result<String, Error> {
        let Some(raw) = &self.typed_data else {
            return Ok(String::new());
        };
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'{') => Ok(text.to_owned()),
            Some(b'"') => serde_json::from_str(text)
                .map_err(|e| Error::invalid("typed_data_json", format!("not a JSON string: {e}"))),
            _ => Err(Error::invalid(
                "typed_data_json",
                "must be a JSON object or a string holding one",
            )),
        }
    }
}

/// `POST /v1/keys/{key_id}:signPersonalMessage`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SignPersonalMessageBody {
    /// The message.
    #[serde(default)]
    pub message: B64,
    /// Idempotency key.
    #[serde(default, alias = "idempotency_key")]
    pub idempotency_key: String,
}

/// `KeyInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Id.
    pub key_id: String,
    /// Scheme name.
    pub scheme: &'static str,
    /// t.
    pub threshold: u32,
    /// n.
    pub parties: u32,
    /// Group public key.
    pub public_key: B64,
    /// Label.
    pub label: String,
    /// Creation time, RFC 3339.
    pub created_at: String,
    /// EIP-55 address of an ECDSA key.
    pub ethereum_address: String,
}

impl From<KeyView> for KeyInfo {
    fn from(v: KeyView) -> Self {
        let ethereum_address = match v.scheme {
            Scheme::EcdsaSecp256k1 => chains::ethereum::address(&v.public_key).unwrap_or_default(),
            Scheme::Ed25519 | Scheme::Bip340 => String::new(),
        };
        Self {
            key_id: v.key_id,
            scheme: scheme_name(v.scheme),
            threshold: v.threshold,
            parties: v.parties,
            public_key: B64(v.public_key),
            label: v.label,
            created_at: rfc3339(v.created_at_ms),
            ethereum_address,
        }
    }
}

/// `ListKeysResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ListKeys {
    /// The page.
    pub keys: Vec<KeyInfo>,
    /// Next page's token; empty at the end.
    pub next_page_token: String,
}

impl From<KeyPage> for ListKeys {
    fn from(p: KeyPage) -> Self {
        Self {
            keys: p.keys.into_iter().map(KeyInfo::from).collect(),
            next_page_token: p.next_page_token,
        }
    }
}

/// `SignResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignResponse {
    /// The signature.
    pub signature: B64,
    /// The key it verifies under.
    pub verifying_key: B64,
    /// ECDSA recovery id.
    pub recovery_id: u32,
}

impl From<Signature> for SignResponse {
    fn from(s: Signature) -> Self {
        Self {
            signature: B64(s.signature),
            verifying_key: B64(s.verifying_key),
            recovery_id: u32::from(s.recovery_id),
        }
    }
}

/// `SignBatchResponse`.
#[derive(Debug, Serialize)]
pub struct SignBatch {
    /// One per message, in order.
    pub signatures: Vec<SignResponse>,
}

/// `VerifyResponse`.
#[derive(Debug, Serialize)]
pub struct Verify {
    /// Whether the signature is valid.
    pub valid: bool,
}

/// `GetStatusResponse`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Status {
    /// Version.
    pub version: String,
    /// Backend.
    pub backend: String,
    /// Mode.
    pub mode: String,
    /// Keys held (uint64: a string in proto3 JSON).
    pub key_count: String,
}

impl From<StatusView> for Status {
    fn from(s: StatusView) -> Self {
        Self {
            version: s.version,
            backend: s.backend,
            mode: s.mode,
            key_count: s.key_count.to_string(),
        }
    }
}

/// `GetAddressResponse`.
#[derive(Debug, Serialize)]
pub struct Address {
    /// The key's address on the chain.
    pub address: String,
}

/// `TransactionSummary`.
#[derive(Debug, Serialize)]
pub struct TransactionSummary {
    /// `ethereum`, `bitcoin` or `solana`.
    pub chain: &'static str,
    /// What was signed (`eip1559`, `psbt`, `eip712`, …).
    pub kind: String,
    /// The EVM chain id or Bitcoin network; empty where the signed bytes name none.
    pub network: String,
    /// The values moved.
    pub transfers: Vec<Transfer>,
    /// The fee in the chain's base unit, decimal; empty where the signed bytes fix none.
    pub fee: String,
}

/// `Transfer`.
#[derive(Debug, Serialize)]
pub struct Transfer {
    /// The recipient, in the chain's spelling.
    pub to: String,
    /// The amount in the chain's base unit, decimal.
    pub amount: String,
}

impl From<TxSummary> for TransactionSummary {
    fn from(s: TxSummary) -> Self {
        Self {
            chain: s.chain.as_str(),
            kind: s.kind,
            network: s.network.unwrap_or_default(),
            transfers: s
                .transfers
                .into_iter()
                .map(|t| Transfer {
                    to: t.to,
                    amount: t.amount,
                })
                .collect(),
            fee: s.fee.unwrap_or_default(),
        }
    }
}

/// `SignedEthereumTransaction`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignedEthereumTransaction {
    /// Ready for `eth_sendRawTransaction`.
    pub signed_tx: B64,
    /// Keccak-256 of `signed_tx`.
    pub tx_hash: B64,
    /// The sender, EIP-55.
    pub from: String,
}

/// `SignedBitcoinTransaction`.
#[derive(Debug, Serialize)]
pub struct SignedBitcoinTransaction {
    /// The PSBT with the key's signatures.
    pub psbt: B64,
    /// The finalized network transaction when every input was the key's; empty otherwise.
    pub transaction: B64,
    /// Its txid (hex, display order), with `transaction`.
    pub txid: String,
}

/// `SignedSolanaTransaction`.
#[derive(Debug, Serialize)]
pub struct SignedSolanaTransaction {
    /// The key's Ed25519 signature of the message.
    pub signature: B64,
    /// The wire-format transaction (the other signers' signatures zero).
    pub transaction: B64,
    /// Base58 of the first signature.
    pub txid: String,
    /// Whether every required signature is present.
    pub complete: bool,
}

/// `SignTransactionResponse`: one of `ethereum`, `bitcoin`, `solana`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SignTransaction {
    /// Ethereum.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ethereum: Option<SignedEthereumTransaction>,
    /// Bitcoin.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bitcoin: Option<SignedBitcoinTransaction>,
    /// Solana.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub solana: Option<SignedSolanaTransaction>,
    /// What was signed.
    pub summary: TransactionSummary,
    /// With `broadcast`: the transaction id the chain's node answered; empty otherwise.
    pub broadcast_txid: String,
}

impl From<ChainSigned> for SignTransaction {
    fn from(c: ChainSigned) -> Self {
        let (mut ethereum, mut bitcoin, mut solana) = (None, None, None);
        match c.signed {
            Signed::EthereumTransaction {
                signed_tx,
                tx_hash,
                from,
            } => {
                ethereum = Some(SignedEthereumTransaction {
                    signed_tx: B64(signed_tx),
                    tx_hash: B64(tx_hash.to_vec()),
                    from,
                });
            }
            Signed::BitcoinPsbt {
                psbt,
                transaction,
                txid,
            } => {
                bitcoin = Some(SignedBitcoinTransaction {
                    psbt: B64(psbt),
                    transaction: B64(transaction.unwrap_or_default()),
                    txid: txid.unwrap_or_default(),
                });
            }
            Signed::SolanaTransaction {
                signature,
                transaction,
                txid,
                complete,
            } => {
                solana = Some(SignedSolanaTransaction {
                    signature: B64(signature.to_vec()),
                    transaction: B64(transaction),
                    txid,
                    complete,
                });
            }
            Signed::EthereumMessage { .. } => {}
        }
        Self {
            ethereum,
            bitcoin,
            solana,
            summary: c.summary.into(),
            broadcast_txid: c.broadcast_id.unwrap_or_default(),
        }
    }
}

/// `SignTypedDataResponse`.
#[derive(Debug, Serialize)]
pub struct SignTypedData {
    /// `r‖s‖v` (65 bytes), v = 27 + recovery id.
    pub signature: B64,
    /// The EIP-712 digest signed.
    pub digest: B64,
    /// The signer's address, EIP-55.
    pub address: String,
    /// What was signed.
    pub summary: TransactionSummary,
}

impl From<ChainSigned> for SignTypedData {
    fn from(c: ChainSigned) -> Self {
        let m = SignPersonalMessage::from(c.signed);
        Self {
            signature: m.signature,
            digest: m.digest,
            address: m.address,
            summary: c.summary.into(),
        }
    }
}

/// `SignPersonalMessageResponse`.
#[derive(Debug, Serialize)]
pub struct SignPersonalMessage {
    /// `r‖s‖v` (65 bytes), v = 27 + recovery id.
    pub signature: B64,
    /// The EIP-191 digest signed.
    pub digest: B64,
    /// The signer's address, EIP-55.
    pub address: String,
}

impl From<Signed> for SignPersonalMessage {
    fn from(s: Signed) -> Self {
        match s {
            Signed::EthereumMessage {
                signature,
                digest,
                address,
            } => Self {
                signature: B64(signature.to_vec()),
                digest: B64(digest.to_vec()),
                address,
            },
            Signed::EthereumTransaction { .. }
            | Signed::BitcoinPsbt { .. }
            | Signed::SolanaTransaction { .. } => Self {
                signature: B64::default(),
                digest: B64::default(),
                address: String::new(),
            },
        }
    }
}

/// Milliseconds since the epoch as an RFC 3339 UTC timestamp with milliseconds.
pub fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Standard base64 (for tests and clients of this crate).
pub fn b64(bytes: &[u8]) -> String {
    general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(rfc3339(1_796_083_199_999), "2026-11-30T23:59:59.999Z");
    }

    #[test]
    fn bytes_accept_both_base64_alphabets_with_or_without_padding() {
        for text in ["\"+/8=\"", "\"+/8\"", "\"-_8=\"", "\"-_8\""] {
            let b: B64 = serde_json::from_str(text).unwrap();
            assert_eq!(b.0, [0xfb, 0xff], "{text}");
        }
        assert!(serde_json::from_str::<B64>("\"@@\"").is_err());
        assert_eq!(
            serde_json::to_string(&B64(vec![0xfb, 0xff])).unwrap(),
            "\"+/8=\""
        );
    }

    #[test]
    fn schemes_by_name_or_number() {
        let v = |s: &str| serde_json::from_str::<serde_json::Value>(s).unwrap();
        assert_eq!(
            scheme_of("scheme", &v("\"SCHEME_BIP340\"")).unwrap(),
            Scheme::Bip340
        );
        assert_eq!(
            scheme_of("scheme", &v("3")).unwrap(),
            Scheme::EcdsaSecp256k1
        );
        assert!(scheme_of("scheme", &v("\"SCHEME_UNSPECIFIED\"")).is_err());
        assert!(scheme_of("scheme", &v("null")).is_err());
        assert!(scheme_of("scheme", &v("\"ed25519\"")).is_err());
    }
}
