//! The chains port of `service-core` ([`service_core::chain::Chains`]) over this crate's chain
//! modules: which key scheme signs for which chain, the request field each refusal names, and
//! the conversion of the chain modules' plans into the service's signing steps.

use service_core::Scheme;
use service_core::Signature;
use service_core::chain::{
    ChainError, ChainKind, Chains, Plan, Signed, SigningStep, TransferView, TxSummary, Unsigned,
};

use crate::{Error, Summary, bitcoin};

/// The chain adapter the server wires into the use cases.
#[derive(Clone, Copy, Debug, Default)]
pub struct ChainAdapter;

fn invalid(field: &'static str, e: Error) -> ChainError {
    match e {
        Error::Signature(reason) => ChainError::Assemble(reason),
        other => ChainError::Invalid {
            field,
            problem: other.to_string(),
        },
    }
}

fn mismatch(scheme: Scheme, chain: ChainKind, needs: &str) -> ChainError {
    ChainError::Invalid {
        field: "key_id",
        problem: format!(
            "the key is a {} key; {} needs {needs}",
            scheme.as_str(),
            chain.as_str()
        ),
    }
}

fn summary_view(s: &Summary) -> TxSummary {
    TxSummary {
        chain: match s.chain {
            crate::Chain::Ethereum => ChainKind::Ethereum,
            crate::Chain::Bitcoin => ChainKind::Bitcoin,
            crate::Chain::Solana => ChainKind::Solana,
        },
        kind: s.kind.to_owned(),
        network: s.network.clone(),
        transfers: s
            .transfers
            .iter()
            .map(|t| TransferView {
                to: t.to.clone(),
                amount: t.amount.to_string(),
            })
            .collect(),
        fee: s.fee.map(|f| f.to_string()),
    }
}

fn array<const N: usize>(field: &'static str, bytes: &[u8]) -> Result<[u8; N], ChainError> {
    bytes.try_into().map_err(|_| ChainError::Invalid {
        field,
        problem: format!("a {N}-byte public key was expected (got {})", bytes.len()),
    })
}

fn signature64(s: &Signature) -> Result<[u8; 64], ChainError> {
    s.signature
        .as_slice()
        .try_into()
        .map_err(|_| ChainError::Assemble(format!("a {}-byte signature", s.signature.len())))
}

/// The single signature of a one-step plan.
fn one(signatures: &[Signature]) -> Result<&Signature, ChainError> {
    match signatures {
        [s] => Ok(s),
        _ => Err(ChainError::Assemble("one signature expected".into())),
    }
}

fn bitcoin_key(scheme: Scheme, public_key: &[u8]) -> Result<bitcoin::BitcoinKey, ChainError> {
    match scheme {
        Scheme::Bip340 => Ok(bitcoin::BitcoinKey::Taproot {
            internal_key: array("key_id", public_key)?,
        }),
        Scheme::EcdsaSecp256k1 => Ok(bitcoin::BitcoinKey::Segwit {
            public_key: array("key_id", public_key)?,
        }),
        Scheme::Ed25519 => Err(mismatch(
            scheme,
            ChainKind::Bitcoin,
            "a BIP340 key (P2TR) or an ECDSA secp256k1 key (P2WPKH)",
        )),
    }
}

fn bitcoin_network(field: &'static str, network: &str) -> Result<bitcoin::Network, ChainError> {
    if network.is_empty() {
        return Ok(bitcoin::Network::Mainnet);
    }
    network.parse().map_err(|e| invalid(field, e))
}

fn no_network(chain: ChainKind, network: &str) -> Result<(), ChainError> {
    if network.is_empty() {
        Ok(())
    } else {
        Err(ChainError::Invalid {
            field: "network",
            problem: format!("{} takes no network (got `{network}`)", chain.as_str()),
        })
    }
}

impl Chains for ChainAdapter {
    fn address(
        &self,
        scheme: Scheme,
        public_key: &[u8],
        chain: ChainKind,
        network: &str,
    ) -> Result<String, ChainError> {
        match chain {
            ChainKind::Ethereum => {
                no_network(chain, network)?;
                if scheme != Scheme::EcdsaSecp256k1 {
                    return Err(mismatch(scheme, chain, "an ECDSA secp256k1 key"));
                }
                crate::ethereum::address(public_key).ok_or_else(|| ChainError::Invalid {
                    field: "key_id",
                    problem: "the key's public key is not a secp256k1 point".into(),
                })
            }
            ChainKind::Bitcoin => {
                let key = bitcoin_key(scheme, public_key)?;
                let net = bitcoin_network("network", network)?;
                bitcoin::address(&key, net).map_err(|e| invalid("key_id", e))
            }
            ChainKind::Solana => {
                no_network(chain, network)?;
                if scheme != Scheme::Ed25519 {
                    return Err(mismatch(scheme, chain, "an Ed25519 key"));
                }
                Ok(crate::solana::address(&array("key_id", public_key)?))
            }
        }
    }

    fn plan(
        &self,
        scheme: Scheme,
        public_key: &[u8],
        unsigned: &Unsigned,
    ) -> Result<Box<dyn Plan>, ChainError> {
        match unsigned {
            Unsigned::BitcoinPsbt { psbt, network } => {
                let field = "transaction.bitcoin.psbt";
                let key = bitcoin_key(scheme, public_key)?;
                let net = bitcoin_network("transaction.bitcoin.network", network)?;
                let plan = bitcoin::plan_psbt(psbt, &key, net).map_err(|e| invalid(field, e))?;
                Ok(Box::new(BitcoinPlan(plan)))
            }
            Unsigned::EthereumTransaction(tx) => {
                if scheme != Scheme::EcdsaSecp256k1 {
                    return Err(mismatch(
                        scheme,
                        ChainKind::Ethereum,
                        "an ECDSA secp256k1 key",
                    ));
                }
                let plan = crate::ethereum::plan_transaction(tx, public_key)
                    .map_err(|e| invalid("transaction.ethereum.unsigned_tx", e))?;
                Ok(Box::new(EthereumPlan(plan)))
            }
            Unsigned::EthereumTypedData(json) => {
                if scheme != Scheme::EcdsaSecp256k1 {
                    return Err(mismatch(
                        scheme,
                        ChainKind::Ethereum,
                        "an ECDSA secp256k1 key",
                    ));
                }
                let (digest, summary) = crate::ethereum::typed_data_hash(json)
                    .map_err(|e| invalid("typed_data_json", e))?;
                EthereumMessage::plan(public_key, digest, summary)
            }
            Unsigned::EthereumPersonalMessage(message) => {
                if scheme != Scheme::EcdsaSecp256k1 {
                    return Err(mismatch(
                        scheme,
                        ChainKind::Ethereum,
                        "an ECDSA secp256k1 key",
                    ));
                }
                let digest = crate::ethereum::personal_message_hash(message);
                let summary = Summary {
                    chain: crate::Chain::Ethereum,
                    kind: "eip191",
                    network: None,
                    transfers: Vec::new(),
                    fee: None,
                };
                EthereumMessage::plan(public_key, digest, summary)
            }
            Unsigned::SolanaMessage(message) => {
                if scheme != Scheme::Ed25519 {
                    return Err(mismatch(scheme, ChainKind::Solana, "an Ed25519 key"));
                }
                let plan = crate::solana::plan_message(message, &array("key_id", public_key)?)
                    .map_err(|e| invalid("transaction.solana.message", e))?;
                Ok(Box::new(SolanaPlan(plan)))
            }
        }
    }
}

/// A PSBT: one step per input of the key.
struct BitcoinPlan(bitcoin::PsbtPlan);

impl Plan for BitcoinPlan {
    fn steps(&self) -> Vec<SigningStep> {
        self.0
            .requests()
            .iter()
            .map(|r| SigningStep {
                message: r.message.to_vec(),
                taproot_merkle_root: match r.kind {
                    bitcoin::SigKind::Taproot { merkle_root } => {
                        Some(merkle_root.map(|m| m.to_vec()).unwrap_or_default())
                    }
                    // Unset: the BIP340 key itself, as a leaf script names it.
                    bitcoin::SigKind::TaprootScript { .. } | bitcoin::SigKind::Ecdsa => None,
                },
            })
            .collect()
    }

    fn summary(&self) -> TxSummary {
        summary_view(self.0.summary())
    }

    fn finish(self: Box<Self>, signatures: &[Signature]) -> Result<Signed, ChainError> {
        let sigs = signatures
            .iter()
            .map(signature64)
            .collect::<Result<Vec<_>, _>>()?;
        let out = self
            .0
            .finish(&sigs)
            .map_err(|e| invalid("transaction.bitcoin.psbt", e))?;
        Ok(Signed::BitcoinPsbt {
            psbt: out.psbt,
            transaction: out.transaction,
            txid: out.txid,
        })
    }
}

/// An Ethereum transaction: one step, its signing hash.
struct EthereumPlan(crate::ethereum::EthPlan);

impl Plan for EthereumPlan {
    fn steps(&self) -> Vec<SigningStep> {
        vec![SigningStep {
            message: self.0.prehash().to_vec(),
            taproot_merkle_root: None,
        }]
    }

    fn summary(&self) -> TxSummary {
        summary_view(self.0.summary())
    }

    fn finish(self: Box<Self>, signatures: &[Signature]) -> Result<Signed, ChainError> {
        let s = one(signatures)?;
        let out = self
            .0
            .finish(&signature64(s)?, s.recovery_id)
            .map_err(|e| invalid("transaction.ethereum.unsigned_tx", e))?;
        Ok(Signed::EthereumTransaction {
            signed_tx: out.signed_tx,
            tx_hash: out.tx_hash,
            from: out.from,
        })
    }
}

/// An EIP-712 or EIP-191 digest.
struct EthereumMessage {
    digest: [u8; 32],
    summary: Summary,
    address: String,
}

impl EthereumMessage {
    fn plan(
        public_key: &[u8],
        digest: [u8; 32],
        summary: Summary,
    ) -> Result<Box<dyn Plan>, ChainError> {
        let address = crate::ethereum::address(public_key).ok_or_else(|| ChainError::Invalid {
            field: "key_id",
            problem: "the key's public key is not a secp256k1 point".into(),
        })?;
        Ok(Box::new(Self {
            digest,
            summary,
            address,
        }))
    }
}

impl Plan for EthereumMessage {
    fn steps(&self) -> Vec<SigningStep> {
        vec![SigningStep {
            message: self.digest.to_vec(),
            taproot_merkle_root: None,
        }]
    }

    fn summary(&self) -> TxSummary {
        summary_view(&self.summary)
    }

    fn finish(self: Box<Self>, signatures: &[Signature]) -> Result<Signed, ChainError> {
        let s = one(signatures)?;
        Ok(Signed::EthereumMessage {
            signature: crate::ethereum::rsv(&signature64(s)?, s.recovery_id),
            digest: self.digest,
            address: self.address,
        })
    }
}

/// A Solana message: one step, the message itself.
struct SolanaPlan(crate::solana::SolPlan);

impl Plan for SolanaPlan {
    fn steps(&self) -> Vec<SigningStep> {
        vec![SigningStep {
            message: self.0.message().to_vec(),
            taproot_merkle_root: None,
        }]
    }

    fn summary(&self) -> TxSummary {
        summary_view(self.0.summary())
    }

    fn finish(self: Box<Self>, signatures: &[Signature]) -> Result<Signed, ChainError> {
        let s = one(signatures)?;
        let out = self
            .0
            .finish(&signature64(s)?)
            .map_err(|e| invalid("transaction.solana.message", e))?;
        Ok(Signed::SolanaTransaction {
            signature: out.signature,
            transaction: out.transaction,
            txid: out.txid,
            complete: out.complete,
        })
    }
}
