//! A small length-checked binary codec for key material.

use k256::elliptic_curve::PrimeField;
use k256::elliptic_curve::group::GroupEncoding;
use k256::{ProjectivePoint, Scalar};

use crate::error::Error;

pub(crate) struct W(pub(crate) Vec<u8>);

impl W {
    pub(crate) fn u16(&mut self, v: u16) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn u128(&mut self, v: u128) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    pub(crate) fn bytes32(&mut self, v: &[u8; 32]) {
        self.0.extend_from_slice(v);
    }
    pub(crate) fn scalar(&mut self, s: &Scalar) {
        self.0.extend_from_slice(&s.to_bytes());
    }
    pub(crate) fn point(&mut self, p: &ProjectivePoint) {
        self.0.extend_from_slice(&p.to_bytes());
    }
}

pub(crate) struct R<'a>(pub(crate) &'a [u8]);

impl R<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Error> {
        if self.0.len() < n {
            return Err(Error::Decode("truncated"));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    pub(crate) fn u16(&mut self) -> Result<u16, Error> {
        let b = self.take(2)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }
    pub(crate) fn u128(&mut self) -> Result<u128, Error> {
        let mut a = [0u8; 16];
        a.copy_from_slice(self.take(16)?);
        Ok(u128::from_le_bytes(a))
    }
    pub(crate) fn bytes32(&mut self) -> Result<[u8; 32], Error> {
        let mut a = [0u8; 32];
        a.copy_from_slice(self.take(32)?);
        Ok(a)
    }
    pub(crate) fn scalar(&mut self) -> Result<Scalar, Error> {
        let b = self.bytes32()?;
        Option::from(Scalar::from_repr(b.into())).ok_or(Error::Decode("non-canonical scalar"))
    }
    pub(crate) fn point(&mut self) -> Result<ProjectivePoint, Error> {
        let mut a = k256::CompressedPoint::default();
        a.copy_from_slice(self.take(33)?);
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
