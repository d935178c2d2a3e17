//! The chain use cases: `GetAddress`, and `SignTransaction` / `SignTypedData` /
//! `SignPersonalMessage`, which decode what is to be signed through the [`Chains`] port, sign
//! each digest with the key exactly as `Sign` does, record the decoded summary with the
//! signatures and hand back the chain's own signed format. A request the adapter refuses is
//! refused before anything is signed or recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use serde::{Deserialize, Serialize};

use super::{App, check_idempotency_key, client_tag, encode, replay, taproot_of, with_scheme};
use crate::auth::Caller;
use crate::chain::{
    BroadcastError, Broadcaster, ChainError, ChainKind, Chains, Signed, TxSummary, Unsigned,
};
use crate::coordinator::{Cost, Signature};
use crate::ports::{IdempotencyEntry, IdempotencyRecord, SignatureRecord, now_ms};
use crate::{Error, UseCase};

/// What `SignTransaction` and the message-signing calls answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainSigned {
    /// The signed result in the chain's format.
    pub signed: Signed,
    /// What it does, as recorded in the audit trail.
    pub summary: TxSummary,
    /// The chain's transaction id, when the request asked to broadcast.
    #[serde(skip)]
    pub broadcast_id: Option<String>,
}

/// How a chain request is carried out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ChainOptions {
    /// Optional (at most 128 bytes): repeating the request with the same key returns the same
    /// signed transaction instead of signing again (and broadcasts that one again).
    pub idempotency_key: String,
    /// Whether to send the signed transaction to the chain's configured node.
    pub broadcast: bool,
}

fn chain_fingerprint(key_id: &str, unsigned: &Unsigned) -> Vec<u8> {
    let (tag, network, bytes): (&[u8], &str, &[u8]) = match unsigned {
        Unsigned::EthereumTransaction(b) => (b"ethereum-tx", "", b),
        Unsigned::EthereumTypedData(j) => (b"eip712", "", j.as_bytes()),
        Unsigned::EthereumPersonalMessage(b) => (b"eip191", "", b),
        Unsigned::BitcoinPsbt { psbt, network } => (b"psbt", network, psbt),
        Unsigned::SolanaMessage(b) => (b"solana", "", b),
    };
    let mut h = Sha256::new();
    h.update(b"tessera/v1/chain\0");
    for part in [key_id.as_bytes(), tag, network.as_bytes(), bytes] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    h.finalize().to_vec()
}

fn broadcast_error(e: BroadcastError) -> Error {
    match e {
        BroadcastError::Rejected { .. } => Error::BroadcastRejected(e.to_string()),
        BroadcastError::NotConfigured(_) | BroadcastError::Unavailable { .. } => {
            Error::BroadcastUnavailable(e.to_string())
        }
    }
}

fn chain_error(e: ChainError) -> Error {
    match e {
        ChainError::Invalid { field, problem } => Error::invalid(field, problem),
        ChainError::Assemble(_) => Error::Internal("a signature did not fit its transaction"),
    }
}

impl App {
    fn chains(&self) -> Result<&Arc<dyn Chains>, Error> {
        self.chains.as_ref().ok_or(Error::NotInThisMode(
            "chain support is not configured on this server",
        ))
    }

    /// `GetAddress`: the key's address on `chain` (`network`: Bitcoin's network, empty for
    /// mainnet). Visible to the callers that may see the key.
    pub async fn get_address(
        &self,
        caller: &Caller,
        key_id: String,
        chain: ChainKind,
        network: String,
    ) -> UseCase<String> {
        let key = self.get_key(caller, key_id).await?;
        let scheme = key.value.scheme;
        let r = self.chains().and_then(|c| {
            c.address(scheme, &key.value.public_key, chain, &network)
                .map_err(chain_error)
        });
        with_scheme(scheme, r.map(|a| (a, Cost::default())))
    }

    /// `SignTransaction`, `SignTypedData` and `SignPersonalMessage`.
    pub async fn sign_chain(
        &self,
        caller: &Caller,
        key_id: String,
        unsigned: Unsigned,
        options: ChainOptions,
    ) -> UseCase<ChainSigned> {
        let action = match unsigned {
            Unsigned::EthereumTypedData(_) => "SignTypedData",
            Unsigned::EthereumPersonalMessage(_) => "SignPersonalMessage",
            _ => "SignTransaction",
        };
        let (rec, key) = self.usable_key(caller, action, &key_id).await?;
        let scheme = rec.scheme;
        let r = async {
            let broadcaster = self.broadcaster_for(&unsigned, options.broadcast)?;
            check_idempotency_key(&options.idempotency_key)?;
            let idem = if options.idempotency_key.is_empty() {
                None
            } else {
                if let Some(home) = self
                    .coordinator
                    .idempotency_home(&key_id, &options.idempotency_key)
                {
                    return Err(Error::invalid(
                        "idempotency_key",
                        format!(
                            "this key's idempotency records live on node {home}: send chain \
                             requests that carry an idempotency key to that node"
                        ),
                    ));
                }
                Some((
                    options.idempotency_key.clone(),
                    chain_fingerprint(&key_id, &unsigned),
                ))
            };
            if let Some((ik, fp)) = &idem {
                let (id, ik) = (key_id.clone(), ik.clone());
                let existing = self
                    .blocking("idempotency lookup", move |s| {
                        Ok(s.get_idempotency(&id, &ik)?)
                    })
                    .await?;
                if let Some(r) = existing {
                    let done: ChainSigned = replay(&r, fp)?;
                    return self.broadcast(broadcaster, done, Cost::default()).await;
                }
            }
            let plan = self
                .chains()?
                .plan(scheme, &rec.public_key, &unsigned)
                .map_err(chain_error)?;
            let steps = plan.steps();
            let summary = plan.summary();
            if steps.is_empty() || steps.len() > self.limits.max_batch_messages {
                return Err(Error::invalid(
                    "transaction",
                    format!(
                        "needs {} signatures; between 1 and {} are allowed per request",
                        steps.len(),
                        self.limits.max_batch_messages
                    ),
                ));
            }
            // One coordinator call per Taproot tweak (a PSBT may spend outputs with different
            // script trees), each a batch like `SignBatch`.
            let mut groups: BTreeMap<Option<Vec<u8>>, Vec<usize>> = BTreeMap::new();
            for (i, step) in steps.iter().enumerate() {
                self.check_message(scheme, "transaction", &step.message)?;
                groups
                    .entry(step.taproot_merkle_root.clone())
                    .or_default()
                    .push(i);
            }
            let client = client_tag(caller);
            let mut signatures: Vec<Option<Signature>> = vec![None; steps.len()];
            let mut cost = Cost::default();
            for (root, idx) in groups {
                let taproot = taproot_of(scheme, root.as_deref())?;
                let messages = idx.iter().map(|i| steps[*i].message.clone()).collect();
                let (sigs, c) = self
                    .coordinator
                    .sign(
                        Arc::clone(&rec),
                        Arc::clone(&key),
                        messages,
                        taproot,
                        &client,
                    )
                    .await?;
                cost.cpu_seconds += c.cpu_seconds;
                cost.backend = c.backend.or(cost.backend);
                for (i, s) in idx.into_iter().zip(sigs) {
                    signatures[i] = Some(s);
                }
            }
            let signatures: Vec<Signature> = signatures
                .into_iter()
                .collect::<Option<_>>()
                .ok_or(Error::Internal("a signature is missing"))?;
            let signed = plan.finish(&signatures).map_err(chain_error)?;
            let mut done = ChainSigned {
                signed,
                summary,
                broadcast_id: None,
            };
            let idempotency = match &idem {
                Some((ik, fp)) => Some(IdempotencyEntry {
                    scope: key_id.clone(),
                    key: ik.clone(),
                    record: IdempotencyRecord {
                        fingerprint: fp.clone(),
                        response: encode(&done)?,
                        created_at_ms: now_ms(),
                    },
                }),
                None => None,
            };
            let record = SignatureRecord {
                key_id: key_id.clone(),
                client,
                message_hashes: steps
                    .iter()
                    .map(|s| Sha256::digest(&s.message).into())
                    .collect(),
                idempotency,
                transaction: Some(done.summary.clone()),
            };
            let earlier = self.record_signatures(record).await?;
            self.observer
                .signatures_issued(scheme, signatures.len() as u64);
            if let (Some(r), Some((_, fp))) = (earlier, &idem) {
                // A concurrent request with the same idempotency key stored first: answer with
                // its transaction, so only one is ever broadcast.
                done = replay(&r, fp)?;
            }
            self.broadcast(broadcaster, done, cost).await
        }
        .await;
        with_scheme(scheme, r)
    }

    /// The broadcaster for `unsigned`'s chain when `broadcast` is asked for: refused before
    /// anything is signed when none is configured, or for messages (which no chain takes).
    fn broadcaster_for(
        &self,
        unsigned: &Unsigned,
        broadcast: bool,
    ) -> Result<Option<&Arc<dyn Broadcaster>>, Error> {
        if !broadcast {
            return Ok(None);
        }
        if matches!(
            unsigned,
            Unsigned::EthereumTypedData(_) | Unsigned::EthereumPersonalMessage(_)
        ) {
            return Err(Error::invalid(
                "broadcast",
                "applies to transactions only, not to signed messages",
            ));
        }
        let chain = unsigned.chain();
        match &self.broadcaster {
            Some(b) if b.configured(chain) => Ok(Some(b)),
            _ => Err(Error::invalid(
                "broadcast",
                format!(
                    "no {} node is configured (set chains.{}_rpc_url)",
                    chain.as_str(),
                    chain.as_str()
                ),
            )),
        }
    }

    async fn broadcast(
        &self,
        broadcaster: Option<&Arc<dyn Broadcaster>>,
        mut done: ChainSigned,
        cost: Cost,
    ) -> Result<(ChainSigned, Cost), Error> {
        if let Some(b) = broadcaster {
            let id = b.broadcast(&done.signed).await.map_err(broadcast_error)?;
            done.broadcast_id = Some(id);
        }
        Ok((done, cost))
    }
}
