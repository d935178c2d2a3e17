//! Conversions between the protobuf messages and `service-core`'s types.

use api_proto as pb;
use service_core::app::{ChainSigned, KeyPage, KeyView, StatusView};
use service_core::chain::{ChainKind, Signed, TxSummary, Unsigned};
use service_core::{Error, Scheme, Signature};

/// The domain scheme of a protobuf `Scheme` value; `field` names the request field in errors.
pub fn scheme_from_proto(field: &'static str, raw: i32) -> Result<Scheme, Error> {
    match pb::Scheme::try_from(raw) {
        Ok(pb::Scheme::Ed25519) => Ok(Scheme::Ed25519),
        Ok(pb::Scheme::Bip340) => Ok(Scheme::Bip340),
        Ok(pb::Scheme::EcdsaSecp256k1) => Ok(Scheme::EcdsaSecp256k1),
        Ok(pb::Scheme::Unspecified) => Err(Error::invalid(
            field,
            "must be set (SCHEME_ED25519, SCHEME_BIP340 or SCHEME_ECDSA_SECP256K1)",
        )),
        Err(_) => Err(Error::invalid(field, format!("unknown scheme value {raw}"))),
    }
}

/// The protobuf value of a domain scheme.
pub fn scheme_to_proto(s: Scheme) -> pb::Scheme {
    match s {
        Scheme::Ed25519 => pb::Scheme::Ed25519,
        Scheme::Bip340 => pb::Scheme::Bip340,
        Scheme::EcdsaSecp256k1 => pb::Scheme::EcdsaSecp256k1,
    }
}

pub(crate) fn key_info(v: KeyView) -> pb::KeyInfo {
    let ethereum_address = match v.scheme {
        Scheme::EcdsaSecp256k1 => chains::ethereum::address(&v.public_key).unwrap_or_default(),
        Scheme::Ed25519 | Scheme::Bip340 => String::new(),
    };
    pb::KeyInfo {
        key_id: v.key_id,
        scheme: scheme_to_proto(v.scheme) as i32,
        threshold: v.threshold,
        parties: v.parties,
        public_key: v.public_key,
        label: v.label,
        created_at: Some(prost_types::Timestamp {
            seconds: i64::try_from(v.created_at_ms / 1000).unwrap_or(i64::MAX),
            nanos: i32::try_from((v.created_at_ms % 1000) * 1_000_000).unwrap_or(0),
        }),
        ethereum_address,
    }
}

pub(crate) fn sign_response(s: Signature) -> pb::SignResponse {
    pb::SignResponse {
        signature: s.signature,
        verifying_key: s.verifying_key,
        recovery_id: u32::from(s.recovery_id),
    }
}

pub(crate) fn key_page(p: KeyPage) -> pb::ListKeysResponse {
    pb::ListKeysResponse {
        keys: p.keys.into_iter().map(key_info).collect(),
        next_page_token: p.next_page_token,
    }
}

pub(crate) fn status_response(s: StatusView) -> pb::GetStatusResponse {
    pb::GetStatusResponse {
        version: s.version,
        backend: s.backend,
        mode: s.mode,
        key_count: s.key_count,
    }
}

/// The chain of a protobuf `Chain` value; `field` names the request field in errors.
pub(crate) fn chain_from_proto(field: &'static str, raw: i32) -> Result<ChainKind, Error> {
    match pb::Chain::try_from(raw) {
        Ok(pb::Chain::Ethereum) => Ok(ChainKind::Ethereum),
        Ok(pb::Chain::Bitcoin) => Ok(ChainKind::Bitcoin),
        Ok(pb::Chain::Solana) => Ok(ChainKind::Solana),
        Ok(pb::Chain::Unspecified) => Err(Error::invalid(
            field,
            "must be set (CHAIN_ETHEREUM, CHAIN_BITCOIN or CHAIN_SOLANA)",
        )),
        Err(_) => Err(Error::invalid(field, format!("unknown chain value {raw}"))),
    }
}

/// What a `SignTransactionRequest` asks to sign.
pub(crate) fn unsigned_of(
    tx: Option<pb::sign_transaction_request::Transaction>,
) -> Result<Unsigned, Error> {
    use pb::sign_transaction_request::Transaction;
    match tx {
        Some(Transaction::Ethereum(e)) => Ok(Unsigned::EthereumTransaction(e.unsigned_tx)),
        Some(Transaction::Bitcoin(b)) => Ok(Unsigned::BitcoinPsbt {
            psbt: b.psbt,
            network: b.network,
        }),
        Some(Transaction::Solana(s)) => Ok(Unsigned::SolanaMessage(s.message)),
        None => Err(Error::invalid(
            "transaction",
            "must be set (ethereum, bitcoin or solana)",
        )),
    }
}

pub(crate) fn summary(s: TxSummary) -> pb::TransactionSummary {
    pb::TransactionSummary {
        chain: s.chain.as_str().to_owned(),
        kind: s.kind,
        network: s.network.unwrap_or_default(),
        transfers: s
            .transfers
            .into_iter()
            .map(|t| pb::Transfer {
                to: t.to,
                amount: t.amount,
            })
            .collect(),
        fee: s.fee.unwrap_or_default(),
    }
}

pub(crate) fn sign_transaction_response(c: ChainSigned) -> pb::SignTransactionResponse {
    use pb::sign_transaction_response::Signed as Out;
    let signed = match c.signed {
        Signed::EthereumTransaction {
            signed_tx,
            tx_hash,
            from,
        } => Some(Out::Ethereum(pb::SignedEthereumTransaction {
            signed_tx,
            tx_hash: tx_hash.to_vec(),
            from,
        })),
        Signed::BitcoinPsbt {
            psbt,
            transaction,
            txid,
        } => Some(Out::Bitcoin(pb::SignedBitcoinTransaction {
            psbt,
            transaction: transaction.unwrap_or_default(),
            txid: txid.unwrap_or_default(),
        })),
        Signed::SolanaTransaction {
            signature,
            transaction,
            txid,
            complete,
        } => Some(Out::Solana(pb::SignedSolanaTransaction {
            signature: signature.to_vec(),
            transaction,
            txid,
            complete,
        })),
        Signed::EthereumMessage { .. } => None,
    };
    pb::SignTransactionResponse {
        signed,
        summary: Some(summary(c.summary)),
        broadcast_txid: c.broadcast_id.unwrap_or_default(),
    }
}

/// The parts of a message signature (EIP-712 / EIP-191): `(signature, digest, address)`.
pub(crate) fn message_signature(c: &ChainSigned) -> (Vec<u8>, Vec<u8>, String) {
    match &c.signed {
        Signed::EthereumMessage {
            signature,
            digest,
            address,
        } => (signature.to_vec(), digest.to_vec(), address.clone()),
        _ => (Vec::new(), Vec::new(), String::new()),
    }
}
