//! Plain data types carried across the port.

use std::fmt;

/// The two curves the port serves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Curve {
    /// secp256k1 (Bitcoin, Ethereum): BIP340 Schnorr and ECDSA.
    Secp256k1,
    /// edwards25519 (Solana): Ed25519.
    Ed25519,
}

impl Curve {
    /// Both curves, in a fixed order.
    pub const ALL: [Curve; 2] = [Curve::Secp256k1, Curve::Ed25519];

    /// Lower-case name used in metrics labels and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::Secp256k1 => "secp256k1",
            Curve::Ed25519 => "ed25519",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The operations of the port, used by capabilities, cost models and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Op {
    /// k·G for secret k (constant time).
    MulBase,
    /// Σ sᵢ·Pᵢ over public data; cost is counted per term.
    LincombVartime,
    /// Batched Schnorr-equation verification; cost is counted per item.
    VerifyBatchVartime,
    /// Batch normalisation (secp256k1 affine form, Ed25519 compression).
    NormalizeBatch,
    /// Batch decoding of compressed encodings into points (a square root each); cost is
    /// counted per encoding.
    DecompressBatch,
}

impl Op {
    /// Every operation, in a fixed order.
    pub const ALL: [Op; 5] = [
        Op::MulBase,
        Op::LincombVartime,
        Op::VerifyBatchVartime,
        Op::NormalizeBatch,
        Op::DecompressBatch,
    ];

    /// Whether the operation takes secret inputs (and so must run constant time and may only
    /// be routed to backends allowed to see secrets).
    pub fn is_secret(self) -> bool {
        matches!(self, Op::MulBase)
    }

    /// Snake-case name used in metrics labels and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::MulBase => "mul_base",
            Op::LincombVartime => "lincomb_vartime",
            Op::VerifyBatchVartime => "verify_batch_vartime",
            Op::NormalizeBatch => "normalize_batch",
            Op::DecompressBatch => "decompress_batch",
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One independent linear combination Σ sᵢ·Pᵢ over public data.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LincombJob<S, P> {
    /// The (scalar, point) terms.
    pub terms: Vec<(S, P)>,
}

impl<S, P> LincombJob<S, P> {
    /// A job from its terms.
    pub fn new(terms: Vec<(S, P)>) -> Self {
        Self { terms }
    }
}

/// One Schnorr-type verification equation `s·G = R + c·P` over public data.
///
/// For BIP340 the caller lifts `R` and `P` from their x-only encodings to the points with even
/// Y; the equation then holds exactly when BIP340 verification succeeds. For Ed25519 the port
/// checks the **cofactored** equation `8·(s·B − R − c·A) = 𝒪`, the form for which a random
/// linear combination agrees with item-by-item checking (see `docs/accel-port.md`); protocol
/// code rejects points outside the prime-order subgroup before they reach the port, and on
/// such points the two forms agree.
#[derive(Clone, Debug, PartialEq)]
pub struct SchnorrItem<S, P> {
    /// The commitment point `R`.
    pub r: P,
    /// The response scalar `s`.
    pub s: S,
    /// The challenge scalar `c`.
    pub c: S,
    /// The public key `P`.
    pub public_key: P,
}

/// The result of a batch verification: which items (by index in the batch) failed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verdict {
    /// Indices of the items whose equation does not hold, in increasing order.
    pub invalid: Vec<usize>,
}

impl Verdict {
    /// True when every item verified.
    pub fn all_valid(&self) -> bool {
        self.invalid.is_empty()
    }

    /// Whether item `i` verified.
    pub fn is_valid(&self, i: usize) -> bool {
        self.invalid.binary_search(&i).is_err()
    }
}
