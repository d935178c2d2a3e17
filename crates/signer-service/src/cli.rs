//! The client subcommands' output: `keygen`, `sign` and `verify` print JSON.

use std::time::Duration;

use api_proto::{CreateKeyRequest, SignRequest, VerifyRequest};
use service_core::Scheme;

use crate::error::Error;

/// A chain name as `--chain` takes it.
pub fn parse_chain(s: &str) -> Result<api_proto::Chain, String> {
    match s.to_ascii_lowercase().as_str() {
        "ethereum" | "eth" => Ok(api_proto::Chain::Ethereum),
        "bitcoin" | "btc" => Ok(api_proto::Chain::Bitcoin),
        "solana" | "sol" => Ok(api_proto::Chain::Solana),
        _ => Err(format!("unknown chain `{s}`: ethereum, bitcoin or solana")),
    }
}

/// The bytes of a `--tx-file`: its text as hex (an optional `0x` prefix), else as base64
/// (Bitcoin Core writes PSBTs so), else the file as it is.
pub fn tx_bytes(chain: api_proto::Chain, file: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let text = std::str::from_utf8(file).map(str::trim).unwrap_or_default();
    if !text.is_empty() {
        if let Ok(b) = hex::decode(text.strip_prefix("0x").unwrap_or(text)) {
            return b;
        }
        if chain == api_proto::Chain::Bitcoin
            && let Ok(b) = base64::engine::general_purpose::STANDARD.decode(text)
        {
            return b;
        }
    }
    file.to_vec()
}

/// `tessera address`: prints `{"address": …}`.
pub async fn address(
    server: &str,
    tls: &client::Tls,
    key_id: String,
    chain: api_proto::Chain,
    network: String,
) -> Result<String, Error> {
    let mut c = client::connect_with(server, tls).await?;
    let r = c
        .get_address(api_proto::GetAddressRequest {
            key_id,
            chain: chain as i32,
            network,
        })
        .await
        .map_err(client::ClientError::from)?
        .into_inner();
    Ok(serde_json::json!({ "address": r.address }).to_string())
}

/// What `tessera sign-tx` asks for.
pub struct SignTx {
    /// The key.
    pub key_id: String,
    /// The chain.
    pub chain: api_proto::Chain,
    /// The unsigned transaction, PSBT or message.
    pub bytes: Vec<u8>,
    /// Bitcoin's network.
    pub network: String,
    /// Whether to broadcast.
    pub broadcast: bool,
    /// Idempotency key.
    pub idempotency_key: String,
}

/// `tessera sign-tx`: prints the signed result (bytes as hex) and its summary as JSON.
pub async fn sign_tx(server: &str, tls: &client::Tls, req: SignTx) -> Result<String, Error> {
    use api_proto::sign_transaction_request::Transaction;
    use api_proto::sign_transaction_response::Signed;
    let transaction = match req.chain {
        api_proto::Chain::Ethereum => Transaction::Ethereum(api_proto::EthereumTransaction {
            unsigned_tx: req.bytes,
        }),
        api_proto::Chain::Bitcoin => Transaction::Bitcoin(api_proto::BitcoinTransaction {
            psbt: req.bytes,
            network: req.network,
        }),
        _ => Transaction::Solana(api_proto::SolanaTransaction { message: req.bytes }),
    };
    let mut c = client::connect_with(server, tls).await?;
    let r = c
        .sign_transaction(api_proto::SignTransactionRequest {
            key_id: req.key_id,
            transaction: Some(transaction),
            idempotency_key: req.idempotency_key,
            broadcast: req.broadcast,
        })
        .await
        .map_err(client::ClientError::from)?
        .into_inner();
    let signed = match r.signed {
        Some(Signed::Ethereum(e)) => serde_json::json!({
            "signed_tx": hex::encode(&e.signed_tx),
            "tx_hash": hex::encode(&e.tx_hash),
            "from": e.from,
        }),
        Some(Signed::Bitcoin(b)) => serde_json::json!({
            "psbt": hex::encode(&b.psbt),
            "transaction": hex::encode(&b.transaction),
            "txid": b.txid,
        }),
        Some(Signed::Solana(s)) => serde_json::json!({
            "signature": hex::encode(&s.signature),
            "transaction": hex::encode(&s.transaction),
            "txid": s.txid,
            "complete": s.complete,
        }),
        None => serde_json::Value::Null,
    };
    let summary = r.summary.map(|s| {
        serde_json::json!({
            "chain": s.chain,
            "kind": s.kind,
            "network": s.network,
            "transfers": s.transfers.iter().map(|t| serde_json::json!({"to": t.to, "amount": t.amount})).collect::<Vec<_>>(),
            "fee": s.fee,
        })
    });
    Ok(serde_json::json!({
        "signed": signed,
        "summary": summary,
        "broadcast_txid": r.broadcast_txid,
    })
    .to_string())
}

/// Decodes a hex flag.
pub fn hex_arg(flag: &'static str, v: &str) -> Result<Vec<u8>, Error> {
    hex::decode(v.trim()).map_err(|_| Error::usage(flag, "must be hex"))
}

/// `tessera keygen`: prints the new key as JSON.
pub async fn keygen(
    server: &str,
    scheme: Scheme,
    threshold: u32,
    parties: u32,
    label: String,
    idempotency_key: String,
    tls: &client::Tls,
) -> Result<String, Error> {
    let mut c = client::connect_with(server, tls).await?;
    let k = c
        .create_key(CreateKeyRequest {
            scheme: api_grpc::scheme_to_proto(scheme) as i32,
            threshold,
            parties,
            label,
            idempotency_key,
        })
        .await
        .map_err(client::ClientError::from)?
        .into_inner();
    Ok(key_json(&k, scheme))
}

/// The JSON `keygen` and `import` print for a key.
fn key_json(k: &api_proto::KeyInfo, scheme: Scheme) -> String {
    serde_json::json!({
        "key_id": k.key_id,
        "scheme": scheme.as_str(),
        "threshold": k.threshold,
        "parties": k.parties,
        "public_key": hex::encode(&k.public_key),
        "ethereum_address": (!k.ethereum_address.is_empty()).then_some(&k.ethereum_address),
        "label": k.label,
    })
    .to_string()
}

/// `tessera import`: splits an existing secret key into a threshold key; the secret is read
/// from `secret_file` (64 hex digits; never from the command line, which other local users
/// can see) and the file's copy in memory is wiped. Prints the key as JSON.
#[allow(clippy::too_many_arguments)]
pub async fn import(
    server: &str,
    scheme: Scheme,
    threshold: u32,
    parties: u32,
    secret_file: &std::path::Path,
    label: String,
    idempotency_key: String,
    tls: &client::Tls,
) -> Result<String, Error> {
    let text = zeroize::Zeroizing::new(std::fs::read_to_string(secret_file).map_err(|e| {
        Error::usage(
            "--secret-file",
            format!("cannot read {}: {e}", secret_file.display()),
        )
    })?);
    let secret = zeroize::Zeroizing::new(hex::decode(text.trim()).map_err(|_| {
        Error::usage(
            "--secret-file",
            format!(
                "{} must hold the secret key as hex (64 digits)",
                secret_file.display()
            ),
        )
    })?);
    let mut c = client::connect_with(server, tls).await?;
    let k = c
        .import_key(api_proto::ImportKeyRequest {
            scheme: api_grpc::scheme_to_proto(scheme) as i32,
            secret_key: secret.to_vec(),
            threshold,
            parties,
            label,
            idempotency_key,
        })
        .await
        .map_err(client::ClientError::from)?
        .into_inner();
    Ok(key_json(&k, scheme))
}

/// `tessera sign`: prints signature and verifying key as JSON.
pub async fn sign(
    server: &str,
    tls: &client::Tls,
    key_id: String,
    message: Vec<u8>,
    taproot_merkle_root: Option<Vec<u8>>,
) -> Result<String, Error> {
    let mut c = client::connect_with(server, tls).await?;
    let r = c
        .sign(SignRequest {
            key_id,
            message,
            idempotency_key: String::new(),
            taproot_merkle_root,
        })
        .await
        .map_err(client::ClientError::from)?
        .into_inner();
    // ECDSA keys are 33-byte compressed points; only their signatures carry a recovery id.
    let recovery_id = (r.verifying_key.len() == 33).then_some(r.recovery_id);
    Ok(serde_json::json!({
        "signature": hex::encode(&r.signature),
        "verifying_key": hex::encode(&r.verifying_key),
        "recovery_id": recovery_id,
    })
    .to_string())
}

/// `tessera verify`: prints `{"valid": …}`.
pub async fn verify(
    server: &str,
    tls: &client::Tls,
    scheme: Scheme,
    public_key: Vec<u8>,
    message: Vec<u8>,
    signature: Vec<u8>,
) -> Result<(String, bool), Error> {
    let mut c = client::connect_with(server, tls).await?;
    let r = c
        .verify(VerifyRequest {
            scheme: api_grpc::scheme_to_proto(scheme) as i32,
            public_key,
            message,
            signature,
        })
        .await
        .map_err(client::ClientError::from)?
        .into_inner();
    Ok((serde_json::json!({ "valid": r.valid }).to_string(), r.valid))
}

/// Parses durations like `10s`, `500ms`, `2m`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((s, "s"), |i| s.split_at(i));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 10s"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        _ => return Err(format!("`{s}`: unit must be ms, s or m")),
    };
    if !(secs.is_finite() && secs > 0.0) {
        return Err(format!("`{s}` must be positive"));
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5h").is_err());
    }
}
