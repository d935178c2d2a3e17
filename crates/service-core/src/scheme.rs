//! The signature schemes a key can have: the one spelling used by the store, the API
//! conversions, the CLI and the metrics labels.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The signature scheme of a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// FROST(Ed25519, SHA-512), RFC 9591: plain Ed25519 signatures.
    Ed25519,
    /// FROST(secp256k1) producing BIP340 Schnorr signatures (Taproot).
    Bip340,
    /// DKLs23 threshold ECDSA on secp256k1.
    EcdsaSecp256k1,
}

impl Scheme {
    /// Every scheme, in API order.
    pub const ALL: [Scheme; 3] = [Scheme::Ed25519, Scheme::Bip340, Scheme::EcdsaSecp256k1];

    /// The name used in stored records, logs and metric labels (`ed25519`, `bip340`,
    /// `ecdsa_secp256k1`).
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Ed25519 => "ed25519",
            Scheme::Bip340 => "bip340",
            Scheme::EcdsaSecp256k1 => "ecdsa_secp256k1",
        }
    }

    /// Length of a group public key in bytes: 32 (Ed25519 point, BIP340 x-only key) or 33
    /// (SEC1-compressed secp256k1 point).
    pub fn public_key_len(self) -> usize {
        match self {
            Scheme::Ed25519 | Scheme::Bip340 => 32,
            Scheme::EcdsaSecp256k1 => 33,
        }
    }

    /// Smallest threshold the scheme supports (threshold ECDSA needs two signers).
    pub fn min_threshold(self) -> u32 {
        match self {
            Scheme::Ed25519 | Scheme::Bip340 => 1,
            Scheme::EcdsaSecp256k1 => 2,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scheme name that is not one of [`Scheme::ALL`] (or an accepted alias).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a scheme: use ed25519, bip340 or ecdsa")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;

    /// Accepts the canonical names and the aliases `taproot` (BIP340) and `ecdsa`,
    /// `ecdsa-secp256k1` (threshold ECDSA), in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ed25519" => Ok(Scheme::Ed25519),
            "bip340" | "taproot" => Ok(Scheme::Bip340),
            "ecdsa" | "ecdsa_secp256k1" | "ecdsa-secp256k1" => Ok(Scheme::EcdsaSecp256k1),
            _ => Err(UnknownScheme(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_aliases_parse() {
        for s in Scheme::ALL {
            assert_eq!(s.as_str().parse::<Scheme>(), Ok(s));
            assert_eq!(
                serde_json::to_string(&s).unwrap(),
                format!("\"{}\"", s.as_str())
            );
        }
        assert_eq!("Taproot".parse::<Scheme>(), Ok(Scheme::Bip340));
        assert_eq!("ECDSA".parse::<Scheme>(), Ok(Scheme::EcdsaSecp256k1));
        assert!(
            "rsa"
                .parse::<Scheme>()
                .unwrap_err()
                .to_string()
                .contains("rsa")
        );
    }
}
