#![doc = include_str!("../README.md")]

pub mod adapter;
pub mod bitcoin;
pub mod broadcast;
pub mod ethereum;
pub mod solana;

use std::fmt;

pub use adapter::ChainAdapter;
pub use broadcast::{BreakerSettings, JsonRpcBroadcaster, NodeConfig, TrustRoots, check_node_url};

/// A chain Tessera can sign for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    /// Ethereum and EVM chains (ECDSA secp256k1 keys).
    Ethereum,
    /// Bitcoin (BIP340 keys for P2TR, ECDSA secp256k1 keys for P2WPKH).
    Bitcoin,
    /// Solana (Ed25519 keys).
    Solana,
}

impl fmt::Display for Chain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Chain::Ethereum => "ethereum",
            Chain::Bitcoin => "bitcoin",
            Chain::Solana => "solana",
        })
    }
}

/// One value moved by a transaction, as decoded from the bytes being signed.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Transfer {
    /// The recipient in the chain's own spelling (EIP-55 address, Bitcoin address or the
    /// output script in hex when it has no address, base58 Solana account).
    pub to: String,
    /// The amount in the chain's base unit (wei, satoshi, lamport).
    pub amount: u128,
}

/// What a transaction does, decoded from the bytes Tessera signs: the basis of the audit record
/// (and of any policy on what a key may sign).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The chain.
    pub chain: Chain,
    /// What was signed: e.g. `eip1559`, `legacy-eip155`, `psbt`, `solana-legacy`, `solana-v0`,
    /// `eip712`, `eip191`.
    pub kind: &'static str,
    /// The network where the transaction names one (an EVM chain id, a Bitcoin network).
    pub network: Option<String>,
    /// The values the transaction moves, in output order.
    pub transfers: Vec<Transfer>,
    /// The fee in the chain's base unit where the signed bytes fix it (the maximum fee for
    /// Ethereum, inputs minus outputs for Bitcoin).
    pub fee: Option<u128>,
}

/// Why a chain adapter refused or failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The bytes are not a well-formed instance of the chain's format.
    #[error("malformed {format}: {reason}")]
    Malformed {
        /// The format expected (`RLP transaction`, `PSBT`, `Solana message`, `EIP-712 JSON`).
        format: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// Well-formed, but a kind of transaction or field Tessera does not sign.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// Well-formed, but Tessera cannot account for what it would sign: a PSBT input with no
    /// UTXO, a chain id of 0, a message the key is not a signer of, and the like.
    #[error("refused: {0}")]
    Refused(String),
    /// A public key that is not a valid key for the chain.
    #[error("invalid public key: {0}")]
    Key(String),
    /// A signature handed back to be assembled does not verify under the key.
    #[error("signature does not fit: {0}")]
    Signature(String),
}
