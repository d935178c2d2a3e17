//! A small length-checked binary codec for key material. The writer fills a zeroizing buffer
//! allocated once with its exact final size; the reader copies secret fields straight into
//! their destination and wipes its own temporaries.

use k256::elliptic_curve::BatchNormalize;
use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::group::GroupEncoding;
use k256::{AffinePoint, ProjectivePoint, Scalar};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq};
use zeroize::{Zeroize, Zeroizing};

use crate::error::Error;
use crate::fq::Fq;

/// Encoded length of a scalar.
pub(crate) const SCALAR_LEN: usize = 32;
/// Encoded length of a point (SEC1 compressed).
pub(crate) const POINT_LEN: usize = 33;

/// A writer over a zeroizing buffer of fixed capacity.
pub(crate) struct W(Zeroizing<Vec<u8>>);

impl W {
    /// A writer for exactly `len` bytes.
    pub(crate) fn with_len(len: usize) -> Self {
        Self(Zeroizing::new(Vec::with_capacity(len)))
    }
    /// The written bytes. Debug builds check the buffer was filled exactly (so it was never
    /// reallocated, which would leave a copy of the secret bytes in freed memory).
    pub(crate) fn finish(self) -> Zeroizing<Vec<u8>> {
        debug_assert_eq!(self.0.len(), self.0.capacity(), "encoded length mismatch");
        self.0
    }
    fn put(&mut self, b: &[u8]) {
        debug_assert!(
            self.0.len() + b.len() <= self.0.capacity(),
            "buffer would grow"
        );
        self.0.extend_from_slice(b);
    }
    pub(crate) fn u8(&mut self, v: u8) {
        self.put(&[v]);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.put(&v.to_le_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.put(&v.to_le_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        let mut b = v.to_le_bytes();
        self.put(&b);
        b.zeroize();
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.put(v);
    }
    pub(crate) fn scalar(&mut self, s: &Scalar) {
        let mut b = s.to_bytes();
        self.put(&b);
        b.as_mut_slice().zeroize();
    }
    pub(crate) fn point(&mut self, p: &ProjectivePoint) {
        self.put(&p.to_bytes());
    }
}

pub(crate) struct R<'a>(pub(crate) &'a [u8]);

impl<'a> R<'a> {
    pub(crate) fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.0.len() < n {
            return Err(Error::Decode("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u32(&mut self) -> Result<u32, Error> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    /// Reads a (secret) `u128` into `dst`, wiping the temporary copy.
    pub(crate) fn u128_into(&mut self, dst: &mut u128) -> Result<(), Error> {
        let mut a = Zeroizing::new([0u8; 16]);
        a.copy_from_slice(self.take(16)?);
        *dst = u128::from_le_bytes(*a);
        Ok(())
    }
    /// Copies the next `dst.len()` bytes straight into `dst`.
    pub(crate) fn fill(&mut self, dst: &mut [u8]) -> Result<(), Error> {
        dst.copy_from_slice(self.take(dst.len())?);
        Ok(())
    }
    /// Reads a (secret) canonical scalar, wiping the temporary copy of its encoding.
    pub(crate) fn scalar(&mut self) -> Result<Scalar, Error> {
        let mut b = k256::FieldBytes::default();
        b.copy_from_slice(self.take(SCALAR_LEN)?);
        let s = Option::from(Scalar::from_repr(b));
        b.as_mut_slice().zeroize();
        s.ok_or(Error::Decode("non-canonical scalar"))
    }
    /// A public value modulo the order (the multiplication's corrections), canonical.
    pub(crate) fn fq(&mut self) -> Result<Fq, Error> {
        let mut b = [0u8; SCALAR_LEN];
        b.copy_from_slice(self.take(SCALAR_LEN)?);
        Fq::from_bytes(&b).ok_or(Error::Decode("non-canonical scalar"))
    }
    pub(crate) fn point(&mut self) -> Result<ProjectivePoint, Error> {
        let mut a = k256::CompressedPoint::default();
        a.copy_from_slice(self.take(POINT_LEN)?);
        Option::from(ProjectivePoint::from_bytes(&a)).ok_or(Error::Decode("invalid point"))
    }
    pub(crate) fn end(&self) -> Result<(), Error> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(Error::Decode("trailing bytes"))
        }
    }
}

/// Affine forms of `points` with one field inversion for all of them. k256 0.13's batch
/// normalisation panics on an empty list (a batch of no sessions) and on the identity (a
/// peer's chosen point can make one): each identity is normalised as the generator in its
/// place and then replaced by the affine identity, both in constant time.
pub(crate) fn normalize(points: &[ProjectivePoint]) -> Vec<AffinePoint> {
    if points.is_empty() {
        return Vec::new();
    }
    let identity: Vec<Choice> = points
        .iter()
        .map(|p| p.ct_eq(&ProjectivePoint::IDENTITY))
        .collect();
    let mut safe: Vec<ProjectivePoint> = points
        .iter()
        .zip(&identity)
        .map(|(p, &id)| ProjectivePoint::conditional_select(p, &ProjectivePoint::GENERATOR, id))
        .collect();
    let mut affine =
        <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(safe.as_slice());
    safe.zeroize();
    for (a, &id) in affine.iter_mut().zip(&identity) {
        a.conditional_assign(&AffinePoint::IDENTITY, id);
    }
    affine
}

/// Compressed SEC1 encodings of `points`, normalised together: the same bytes as
/// `GroupEncoding::to_bytes` on each (the identity included) for one field inversion in all.
/// The caller wipes the encodings of secret points.
pub(crate) fn encode_points(points: &[ProjectivePoint]) -> Vec<[u8; 33]> {
    let mut affine = normalize(points);
    let out = affine
        .iter()
        .map(|a| {
            let mut b = [0u8; 33];
            b.copy_from_slice(&a.to_bytes());
            b
        })
        .collect();
    // The points may be secret (Diffie–Hellman values of the base OT).
    affine.zeroize();
    out
}
