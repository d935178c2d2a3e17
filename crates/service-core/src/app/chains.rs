//! The chain use cases: `GetAddress`, and `SignTransaction` / `SignTypedData` /
//! `SignPersonalMessage`, which decode what is to be signed through the [`Chains`] port, sign
//! each digest with the key exactly as `Sign` does, record the decoded summary with the
//! signatures and hand back the chain's own signed format. A request the adapter refuses is
//! refused before anything is signed or recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::{App, client_tag, taproot_of, with_scheme};
use crate::auth::Caller;
use crate::chain::{ChainError, ChainKind, Chains, Signed, TxSummary, Unsigned};
use crate::coordinator::{Cost, Signature};
use crate::ports::SignatureRecord;
use crate::{Error, UseCase};

/// What `SignTransaction` and the message-signing calls answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainSigned {
    /// The signed result in the chain's format.
    pub signed: Signed,
    /// What it does, as recorded in the audit trail.
    pub summary: TxSummary,
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
    ) -> UseCase<ChainSigned> {
        let action = match unsigned {
            Unsigned::EthereumTypedData(_) => "SignTypedData",
            Unsigned::EthereumPersonalMessage(_) => "SignPersonalMessage",
            _ => "SignTransaction",
        };
        let (rec, key) = self.usable_key(caller, action, &key_id).await?;
        let scheme = rec.scheme;
        let r = async {
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
            let record = SignatureRecord {
                key_id: key_id.clone(),
                client,
                message_hashes: steps
                    .iter()
                    .map(|s| Sha256::digest(&s.message).into())
                    .collect(),
                idempotency: None,
                transaction: Some(summary.clone()),
            };
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.store.submit_signatures(
                record,
                Box::new(move |r| {
                    let _request_gone = tx.send(r);
                }),
            );
            rx.await
                .map_err(|_| Error::Storage(crate::ports::StoreError::Closed))??;
            self.observer
                .signatures_issued(scheme, signatures.len() as u64);
            Ok((ChainSigned { signed, summary }, cost))
        }
        .await;
        with_scheme(scheme, r)
    }
}
