//! The chains port: what the use cases need from a chain adapter to sign a chain's own
//! transactions and messages. The adapter (crate `chains`) decodes what is to be signed, says
//! which signatures it needs and assembles the signed result; the use case signs with the key
//! through the coordinator in between, so a transaction is signed exactly as `Sign` signs, on
//! every deployment mode.

use serde::{Deserialize, Serialize};

use crate::Scheme;
use crate::coordinator::Signature;

/// A chain Tessera can sign for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    /// Ethereum and EVM chains.
    Ethereum,
    /// Bitcoin.
    Bitcoin,
    /// Solana.
    Solana,
}

impl ChainKind {
    /// The lower-case name (`ethereum`, `bitcoin`, `solana`).
    pub fn as_str(self) -> &'static str {
        match self {
            ChainKind::Ethereum => "ethereum",
            ChainKind::Bitcoin => "bitcoin",
            ChainKind::Solana => "solana",
        }
    }
}

/// What a client asks to have signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unsigned {
    /// An Ethereum transaction without its signature: an EIP-2718 typed payload or a legacy
    /// EIP-155 RLP list.
    EthereumTransaction(Vec<u8>),
    /// An EIP-712 typed-data document (JSON, the `eth_signTypedData_v4` shape).
    EthereumTypedData(String),
    /// An EIP-191 `personal_sign` message.
    EthereumPersonalMessage(Vec<u8>),
    /// A BIP174 PSBT (binary) and the Bitcoin network its addresses are spelled for.
    BitcoinPsbt {
        /// The PSBT.
        psbt: Vec<u8>,
        /// `mainnet`, `testnet`, `signet` or `regtest`.
        network: String,
    },
    /// A serialized Solana message (legacy or v0).
    SolanaMessage(Vec<u8>),
}

impl Unsigned {
    /// The chain.
    pub fn chain(&self) -> ChainKind {
        match self {
            Unsigned::EthereumTransaction(_)
            | Unsigned::EthereumTypedData(_)
            | Unsigned::EthereumPersonalMessage(_) => ChainKind::Ethereum,
            Unsigned::BitcoinPsbt { .. } => ChainKind::Bitcoin,
            Unsigned::SolanaMessage(_) => ChainKind::Solana,
        }
    }
}

/// One signature the key must make: the message as `Sign` takes it for the key's scheme.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigningStep {
    /// The message (a 32-byte digest for BIP340 and ECDSA keys).
    pub message: Vec<u8>,
    /// BIP340 only: as `SignRequest::taproot_merkle_root` (unset: the internal key; empty:
    /// the BIP86 output key; 32 bytes: the output key committing to that script root).
    pub taproot_merkle_root: Option<Vec<u8>>,
}

/// One value moved, as decoded from the signed bytes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferView {
    /// The recipient in the chain's own spelling.
    pub to: String,
    /// The amount in the chain's base unit (wei, satoshi, lamport), decimal.
    pub amount: String,
}

/// What a signed transaction or message does: recorded in the audit event of its signatures.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxSummary {
    /// The chain.
    pub chain: ChainKind,
    /// What was signed (`eip1559`, `eip2930`, `legacy-eip155`, `eip712`, `eip191`, `psbt`,
    /// `solana-legacy`, `solana-v0`).
    pub kind: String,
    /// The network where the signed bytes name one (an EVM chain id, a Bitcoin network).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<String>,
    /// The values moved, in output order.
    #[serde(default)]
    pub transfers: Vec<TransferView>,
    /// The fee in the chain's base unit where the signed bytes fix it, decimal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fee: Option<String>,
}

/// The signed result, in the chain's own formats.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signed {
    /// An Ethereum transaction.
    EthereumTransaction {
        /// The signed transaction, ready for `eth_sendRawTransaction`.
        #[serde(with = "hex::serde")]
        signed_tx: Vec<u8>,
        /// Its hash.
        #[serde(with = "hex::serde")]
        tx_hash: [u8; 32],
        /// The sender (EIP-55).
        from: String,
    },
    /// An EIP-712 or EIP-191 signature.
    EthereumMessage {
        /// `r‖s‖v`, v = 27 + recovery id.
        #[serde(with = "hex::serde")]
        signature: [u8; 65],
        /// The digest signed.
        #[serde(with = "hex::serde")]
        digest: [u8; 32],
        /// The signer's address (EIP-55).
        address: String,
    },
    /// A Bitcoin PSBT with the key's signatures.
    BitcoinPsbt {
        /// The PSBT (binary).
        #[serde(with = "hex::serde")]
        psbt: Vec<u8>,
        /// The finalized network transaction, when every input was the key's.
        transaction: Option<Vec<u8>>,
        /// Its txid (display order hex), with `transaction`.
        txid: Option<String>,
    },
    /// A Solana transaction.
    SolanaTransaction {
        /// The key's signature.
        #[serde(with = "hex::serde")]
        signature: [u8; 64],
        /// The wire-format transaction (other signers' slots zero).
        #[serde(with = "hex::serde")]
        transaction: Vec<u8>,
        /// The transaction id (base58 of the first signature).
        txid: String,
        /// Whether every required signature is present.
        complete: bool,
    },
}

/// Why the chain adapter refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// The request cannot be signed as given (malformed bytes, a key of the wrong scheme for
    /// the chain, something the service cannot account for); the named field is at fault.
    #[error("{field}: {problem}")]
    Invalid {
        /// The request field at fault.
        field: &'static str,
        /// What is wrong, naming the part of the transaction.
        problem: String,
    },
    /// The adapter could not assemble the signed result (a signature that does not verify).
    #[error("assembling the signed transaction: {0}")]
    Assemble(String),
}

/// A decoded request, waiting for its signatures.
pub trait Plan: Send {
    /// The signatures needed, in order.
    fn steps(&self) -> Vec<SigningStep>;
    /// What the signed bytes do.
    fn summary(&self) -> TxSummary;
    /// The signed result from the signatures of [`Plan::steps`], in the same order.
    fn finish(self: Box<Self>, signatures: &[Signature]) -> Result<Signed, ChainError>;
}

/// The chain adapter.
pub trait Chains: Send + Sync + std::fmt::Debug {
    /// The key's address on `chain` (`network`: Bitcoin's `mainnet`, `testnet`, `signet` or
    /// `regtest`; empty means mainnet; must be empty for the other chains).
    fn address(
        &self,
        scheme: Scheme,
        public_key: &[u8],
        chain: ChainKind,
        network: &str,
    ) -> Result<String, ChainError>;

    /// Decodes `unsigned` for a key of `scheme` with `public_key`.
    fn plan(
        &self,
        scheme: Scheme,
        public_key: &[u8],
        unsigned: &Unsigned,
    ) -> Result<Box<dyn Plan>, ChainError>;
}

/// Why a broadcast failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BroadcastError {
    /// No node is configured for the chain.
    #[error("no {} node is configured to broadcast to", .0.as_str())]
    NotConfigured(ChainKind),
    /// The node could not be reached, timed out, or failed (and its circuit breaker may now be
    /// open, refusing calls at once until it has cooled down).
    #[error("{} node unavailable: {problem}", chain.as_str())]
    Unavailable {
        /// The chain.
        chain: ChainKind,
        /// What went wrong.
        problem: String,
    },
    /// The node answered and refused the transaction (its own reason, e.g. too low a fee).
    #[error("the {} node refused the transaction: {reason}", chain.as_str())]
    Rejected {
        /// The chain.
        chain: ChainKind,
        /// The node's reason.
        reason: String,
    },
}

/// Sends signed transactions to the chains' nodes.
pub trait Broadcaster: Send + Sync + std::fmt::Debug {
    /// Whether a node is configured for `chain`.
    fn configured(&self, chain: ChainKind) -> bool;

    /// Submits `signed` to its chain's node and returns the chain's transaction id. Submitting
    /// the same signed transaction again is not an error: the node's "already known" answers
    /// are recognised and answered with the same id.
    fn broadcast<'a>(
        &'a self,
        signed: &'a Signed,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<String, BroadcastError>> + Send + 'a>,
    >;
}
