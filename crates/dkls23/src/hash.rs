//! Domain-separated hashing helpers.

use k256::elliptic_curve::group::GroupEncoding;
use k256::elliptic_curve::ops::Reduce;
use k256::{FieldBytes, ProjectivePoint, Scalar, U256};
use sha2::{Digest, Sha256};

/// A SHA-256 transcript with length-prefixed, tagged absorption.
#[derive(Clone)]
pub(crate) struct Tr(Sha256);

impl Tr {
    pub(crate) fn new(domain: &str) -> Self {
        let mut h = Sha256::new();
        h.update(b"tessera/dkls23/");
        h.update((domain.len() as u64).to_le_bytes());
        h.update(domain.as_bytes());
        Tr(h)
    }
    pub(crate) fn bytes(&mut self, b: &[u8]) -> &mut Self {
        self.0.update((b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }
    pub(crate) fn u64(&mut self, v: u64) -> &mut Self {
        self.0.update(v.to_le_bytes());
        self
    }
    pub(crate) fn point(&mut self, p: &ProjectivePoint) -> &mut Self {
        self.0.update(p.to_bytes());
        self
    }
    pub(crate) fn scalar(&mut self, s: &Scalar) -> &mut Self {
        self.0.update(s.to_bytes());
        self
    }
    pub(crate) fn finish(&self) -> [u8; 32] {
        self.0.clone().finalize().into()
    }
    pub(crate) fn finish_scalar(&self) -> Scalar {
        scalar_from_32(&self.finish())
    }
}

/// Reduces 32 uniform bytes modulo the group order (statistical distance below 2^-127 for
/// secp256k1, whose order is within 2^129 of 2^256).
pub(crate) fn scalar_from_32(b: &[u8; 32]) -> Scalar {
    <Scalar as Reduce<U256>>::reduce_bytes(FieldBytes::from_slice(b))
}
