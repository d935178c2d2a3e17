//! The port's shared batch verification (`verify_batch_rlc_*`): a valid batch costs one
//! random-linear-combination job per chunk of 64 items and nothing more, a failed chunk alone is
//! re-checked item by item, and items that share a public key share one term.
#![allow(clippy::unwrap_used)]

use std::sync::Mutex;

use accel_api::EdPoint;
use accel_api::curves::curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use accel_api::curves::curve25519_dalek::edwards::CompressedEdwardsY;
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use accel_api::{
    AccelError, Accelerator, Capabilities, LincombJob, SchnorrItem, verify_batch_rlc_ed25519,
    verify_batch_rlc_secp256k1,
};
use backend_cpu::CpuBackend;

/// The CPU backend, recording the term count of every job of every lincomb call.
#[derive(Debug)]
struct Counting {
    inner: CpuBackend,
    calls: Mutex<Vec<Vec<usize>>>,
}

impl Counting {
    fn new() -> Self {
        Self {
            inner: CpuBackend::single_threaded(),
            calls: Mutex::new(Vec::new()),
        }
    }
    fn record<S, P>(&self, jobs: &[LincombJob<S, P>]) {
        let terms = jobs.iter().map(|j| j.terms.len()).collect();
        self.calls.lock().unwrap().push(terms);
    }
    fn take(&self) -> Vec<Vec<usize>> {
        std::mem::take(&mut *self.calls.lock().unwrap())
    }
}

impl Accelerator for Counting {
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn secp256k1_mul_base(&self, s: &[SecpScalar]) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.inner.secp256k1_mul_base(s)
    }
    fn ed25519_mul_base(&self, s: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        self.inner.ed25519_mul_base(s)
    }
    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        self.record(jobs);
        self.inner.secp256k1_lincomb_vartime(jobs)
    }
    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        self.record(jobs);
        self.inner.ed25519_lincomb_vartime(jobs)
    }
    fn secp256k1_normalize_batch(
        &self,
        p: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        self.inner.secp256k1_normalize_batch(p)
    }
    fn ed25519_compress_batch(&self, p: &[EdPoint]) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        self.inner.ed25519_compress_batch(p)
    }
}

/// `n` true secp256k1 equations under `keys` distinct keys (item i uses key i mod `keys`), with
/// `s` off by one at the indices in `bad`.
fn secp_items(n: u64, keys: u64, bad: &[u64]) -> Vec<SchnorrItem<SecpScalar, ProjectivePoint>> {
    (0..n)
        .map(|i| {
            let x = SecpScalar::from(1000 + i % keys);
            let k = SecpScalar::from(7 * i + 3);
            let c = SecpScalar::from(11 * i + 5);
            let off = if bad.contains(&i) {
                SecpScalar::ONE
            } else {
                SecpScalar::ZERO
            };
            SchnorrItem {
                r: ProjectivePoint::GENERATOR * k,
                s: k + c * x + off,
                c,
                public_key: ProjectivePoint::GENERATOR * x,
            }
        })
        .collect()
}

/// As [`secp_items`], on edwards25519.
fn ed_items(n: u64, keys: u64, bad: &[u64]) -> Vec<SchnorrItem<EdScalar, EdPoint>> {
    (0..n)
        .map(|i| {
            let x = EdScalar::from(1000 + i % keys);
            let k = EdScalar::from(7 * i + 3);
            let c = EdScalar::from(11 * i + 5);
            let off = if bad.contains(&i) {
                EdScalar::ONE
            } else {
                EdScalar::ZERO
            };
            SchnorrItem {
                r: EdPoint::from(ED25519_BASEPOINT_POINT * k),
                s: k + c * x + off,
                c,
                public_key: EdPoint::from(ED25519_BASEPOINT_POINT * x),
            }
        })
        .collect()
}

#[test]
fn a_valid_batch_costs_one_job_per_chunk_secp256k1() {
    let acc = Counting::new();
    // 100 items under 100 keys: chunks of 64 and 36 items, each job R terms, key terms and G.
    let v = verify_batch_rlc_secp256k1(&acc, &secp_items(100, 100, &[])).unwrap();
    assert!(v.all_valid());
    assert_eq!(acc.take(), vec![vec![2 * 64 + 1, 2 * 36 + 1]]);
    // Under one key, each chunk's key terms merge into one.
    let v = verify_batch_rlc_secp256k1(&acc, &secp_items(100, 1, &[])).unwrap();
    assert!(v.all_valid());
    assert_eq!(acc.take(), vec![vec![64 + 2, 36 + 2]]);
    // One item: its own equation, three terms.
    let v = verify_batch_rlc_secp256k1(&acc, &secp_items(1, 1, &[])).unwrap();
    assert!(v.all_valid());
    assert_eq!(acc.take(), vec![vec![3]]);
}

#[test]
fn a_valid_batch_costs_one_job_per_chunk_ed25519() {
    let acc = Counting::new();
    let v = verify_batch_rlc_ed25519(&acc, &ed_items(100, 100, &[])).unwrap();
    assert!(v.all_valid());
    assert_eq!(acc.take(), vec![vec![2 * 64 + 1, 2 * 36 + 1]]);
    let v = verify_batch_rlc_ed25519(&acc, &ed_items(100, 1, &[])).unwrap();
    assert!(v.all_valid());
    assert_eq!(acc.take(), vec![vec![64 + 2, 36 + 2]]);
    let v = verify_batch_rlc_ed25519(&acc, &ed_items(1, 1, &[])).unwrap();
    assert!(v.all_valid());
    assert_eq!(acc.take(), vec![vec![3]]);
}

#[test]
fn only_a_failed_chunk_is_rechecked_item_by_item() {
    let acc = Counting::new();
    let v = verify_batch_rlc_secp256k1(&acc, &secp_items(100, 3, &[70, 99])).unwrap();
    assert_eq!(v.invalid, vec![70, 99]);
    let calls = acc.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1],
        vec![3; 36],
        "the second chunk's 36 items, one job each"
    );
    let v = verify_batch_rlc_ed25519(&acc, &ed_items(100, 3, &[5])).unwrap();
    assert_eq!(v.invalid, vec![5]);
    let calls = acc.take();
    assert_eq!(calls.len(), 2);
    assert_eq!(
        calls[1],
        vec![3; 64],
        "the first chunk's 64 items, one job each"
    );
}
