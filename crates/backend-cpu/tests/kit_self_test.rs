//! The conformance kit itself: each `check_*` must fail a backend that is wrong in one way a
//! real backend could be (an edge scalar, an edge point, a torsion point, a digit pattern only
//! random scalars reach, a short output, a verifier that accepts too much or too little), and pass the same backend without the fault.
//! A check that cannot fail would let every backend pass.

use std::panic::{AssertUnwindSafe, catch_unwind};

use accel_api::curves::curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use accel_api::curves::curve25519_dalek::scalar::Scalar as EdScalar;
use accel_api::curves::curve25519_dalek::traits::{Identity, IsIdentity};
use accel_api::curves::k256::elliptic_curve::group::Group;
use accel_api::curves::k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use accel_api::{
    AccelError, Accelerator, Capabilities, Curve, EdPoint, LincombJob, Op, SchnorrItem, Verdict,
    kit,
};
use backend_cpu::CpuBackend;

/// One way to be wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    None,
    /// secp256k1 `mul_base` of 0 gives the generator.
    SecpMulBaseZero,
    /// secp256k1 `mul_base` of n − 1 gives the generator.
    SecpMulBaseMinusOne,
    /// edwards25519 `mul_base` of 0 gives the basepoint.
    EdMulBaseZero,
    /// edwards25519 `mul_base` of n − 2 gives the identity.
    EdMulBaseMinusTwo,
    /// edwards25519 `mul_base` is wrong when a digit of the upper half of the scalar is 8 (a
    /// fault none of the edge scalars reaches: only the random ones find it).
    EdMulBaseUpperDigit8,
    /// Every batched op drops its last output.
    ShortOutput,
    /// Every batched op gets the last item of a batch of 1000 wrong.
    WrongAtThousand,
    /// secp256k1 lincomb: a term with the identity point adds the generator.
    SecpLincombIdentityTerm,
    /// secp256k1 lincomb: a job with a point and its negation is off by the generator.
    SecpLincombOppositePoints,
    /// edwards25519 lincomb: terms on points of small order are dropped.
    EdLincombDropsTorsion,
    /// edwards25519 lincomb: a job of 64 terms is off by the basepoint.
    EdLincombLongJob,
    /// edwards25519 lincomb: of the terms whose scalar is 1, only a job's first is added (a
    /// backend that adds such terms apart and loses the others).
    EdLincombOneOnceOnly,
    /// edwards25519 lincomb: points given as affine coordinates (a lane backend's results)
    /// are read with the sign of x flipped, when they are not of small order.
    EdLincombMisreadsAffine,
    /// Verification accepts every item.
    VerifyAcceptsAll,
    /// Verification names every item of a batch that holds a false one (no per-item re-check).
    VerifyBlamesWholeBatch,
    /// edwards25519 verification without the cofactor: torsion makes a true item invalid.
    EdVerifyUncofactored,
    /// secp256k1 verification refuses an identity public key.
    SecpVerifyRefusesIdentityKey,
    /// secp256k1 normalisation maps the identity to the generator.
    NormalizeIdentity,
    /// edwards25519 compression maps points of small order to the identity's encoding.
    CompressTorsion,
    /// edwards25519 compression maps points of large order to the identity's encoding.
    CompressLargeOrder,
    /// edwards25519 compression drops the sign of x for points given as affine coordinates.
    CompressAffineSign,
    /// edwards25519 decompression as curve25519-dalek's `decompress`: non-canonical y and
    /// negative zero accepted.
    DecompressLax,
    /// edwards25519 decompression refuses points of small order.
    DecompressRefusesTorsion,
    /// edwards25519 decompression ignores the sign bit.
    DecompressIgnoresSign,
    /// secp256k1 decompression accepts the prefix 4 as if it were 2.
    SecpDecompressPrefix,
    /// Capabilities: a device id with whitespace.
    CapsWhitespace,
    /// Capabilities: a device id that does not start with the backend's name.
    CapsPrefix,
    /// Capabilities: a device id that is only the backend's name.
    CapsBareId,
    /// Capabilities: zero lanes.
    CapsNoLanes,
    /// Capabilities: one op missing.
    CapsMissingOp,
}

/// The single-threaded CPU backend with one fault injected.
#[derive(Debug)]
struct Saboteur {
    inner: CpuBackend,
    fault: Fault,
}

impl Saboteur {
    fn new(fault: Fault) -> Self {
        Self {
            inner: CpuBackend::single_threaded(),
            fault,
        }
    }

    /// Applies the batch-wide faults to an output of a batch of `n`; `bump` makes an item wrong.
    fn batch<T>(&self, n: usize, mut out: Vec<T>, bump: impl Fn(&mut T)) -> Vec<T> {
        match self.fault {
            Fault::ShortOutput => {
                out.pop();
            }
            Fault::WrongAtThousand if n == 1000 => {
                if let Some(last) = out.last_mut() {
                    bump(last);
                }
            }
            _ => {}
        }
        out
    }
}

/// Every index of a batch of `n` if `v` names any.
fn blame_whole_batch(v: Verdict, n: usize) -> Verdict {
    match v.all_valid() {
        true => v,
        false => Verdict {
            invalid: (0..n).collect(),
        },
    }
}

fn bump_secp(p: &mut ProjectivePoint) {
    *p += ProjectivePoint::GENERATOR;
}

fn bump_ed(p: &mut EdPoint) {
    *p = *p + EdPoint::generator();
}

impl Accelerator for Saboteur {
    fn capabilities(&self) -> Capabilities {
        let mut caps = self.inner.capabilities();
        match self.fault {
            Fault::CapsWhitespace => caps.device_id.push_str(" x"),
            Fault::CapsPrefix => caps.device_id = format!("gpu{}", caps.device_id),
            Fault::CapsBareId => caps.device_id = format!("{}:", caps.backend),
            Fault::CapsNoLanes => caps.lanes = 0,
            Fault::CapsMissingOp => {
                caps.ops
                    .retain(|o| *o != (Curve::Ed25519, Op::NormalizeBatch));
            }
            _ => {}
        }
        caps
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        let mut out = self.inner.secp256k1_mul_base(scalars)?;
        for (s, p) in scalars.iter().zip(out.iter_mut()) {
            let hit = match self.fault {
                Fault::SecpMulBaseZero => *s == SecpScalar::ZERO,
                Fault::SecpMulBaseMinusOne => *s == -SecpScalar::ONE,
                _ => false,
            };
            if hit {
                *p = ProjectivePoint::GENERATOR;
            }
        }
        Ok(self.batch(scalars.len(), out, bump_secp))
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        let mut out = self.inner.ed25519_mul_base(scalars)?;
        for (s, p) in scalars.iter().zip(out.iter_mut()) {
            match self.fault {
                Fault::EdMulBaseZero if *s == EdScalar::ZERO => {
                    *p = EdPoint::generator();
                }
                Fault::EdMulBaseMinusTwo if *s == -EdScalar::from(2u64) => {
                    *p = EdPoint::identity();
                }
                Fault::EdMulBaseUpperDigit8
                    if s.as_bytes()[16..]
                        .iter()
                        .any(|b| b & 0x0f == 8 || b >> 4 == 8) =>
                {
                    *p = EdPoint::identity();
                }
                _ => {}
            }
        }
        Ok(self.batch(scalars.len(), out, bump_ed))
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        let mut out = self.inner.secp256k1_lincomb_vartime(jobs)?;
        for (job, p) in jobs.iter().zip(out.iter_mut()) {
            let hit = match self.fault {
                Fault::SecpLincombIdentityTerm => {
                    job.terms.iter().any(|(_, q)| bool::from(q.is_identity()))
                }
                Fault::SecpLincombOppositePoints => job.terms.iter().any(|(_, q)| {
                    !bool::from(q.is_identity()) && job.terms.iter().any(|(_, r)| *r == -*q)
                }),
                _ => false,
            };
            if hit {
                bump_secp(p);
            }
        }
        Ok(self.batch(jobs.len(), out, bump_secp))
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        let jobs: Vec<LincombJob<EdScalar, EdPoint>> = match self.fault {
            Fault::EdLincombDropsTorsion => jobs
                .iter()
                .map(|j| {
                    LincombJob::new(
                        j.terms
                            .iter()
                            .filter(|(_, p)| {
                                let e = p.to_edwards();
                                !e.is_small_order() || e.is_identity()
                            })
                            .copied()
                            .collect(),
                    )
                })
                .collect(),
            Fault::EdLincombMisreadsAffine => jobs
                .iter()
                .map(|j| {
                    LincombJob::new(
                        j.terms
                            .iter()
                            .map(|(s, p)| {
                                let misread =
                                    p.affine_bytes().is_some() && !p.to_edwards().is_small_order();
                                (*s, if misread { -*p } else { *p })
                            })
                            .collect(),
                    )
                })
                .collect(),
            Fault::EdLincombOneOnceOnly => jobs
                .iter()
                .map(|j| {
                    let first_one = j.terms.iter().position(|(s, _)| *s == EdScalar::ONE);
                    LincombJob::new(
                        j.terms
                            .iter()
                            .enumerate()
                            .filter(|(t, (s, _))| *s != EdScalar::ONE || Some(*t) == first_one)
                            .map(|(_, term)| *term)
                            .collect(),
                    )
                })
                .collect(),
            _ => jobs.to_vec(),
        };
        let mut out = self.inner.ed25519_lincomb_vartime(&jobs)?;
        if self.fault == Fault::EdLincombLongJob {
            for (job, p) in jobs.iter().zip(out.iter_mut()) {
                if job.terms.len() == 64 {
                    bump_ed(p);
                }
            }
        }
        Ok(self.batch(jobs.len(), out, bump_ed))
    }

    fn secp256k1_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<SecpScalar, ProjectivePoint>],
    ) -> Result<Verdict, AccelError> {
        match self.fault {
            Fault::VerifyAcceptsAll => Ok(Verdict::default()),
            Fault::VerifyBlamesWholeBatch => {
                let v = self.inner.secp256k1_verify_batch_vartime(items)?;
                Ok(blame_whole_batch(v, items.len()))
            }
            Fault::SecpVerifyRefusesIdentityKey => {
                let mut v = self.inner.secp256k1_verify_batch_vartime(items)?;
                for (i, item) in items.iter().enumerate() {
                    if bool::from(item.public_key.is_identity()) && !v.invalid.contains(&i) {
                        v.invalid.push(i);
                    }
                }
                v.invalid.sort_unstable();
                Ok(v)
            }
            _ => self.inner.secp256k1_verify_batch_vartime(items),
        }
    }

    fn ed25519_verify_batch_vartime(
        &self,
        items: &[SchnorrItem<EdScalar, EdPoint>],
    ) -> Result<Verdict, AccelError> {
        match self.fault {
            Fault::VerifyAcceptsAll => Ok(Verdict::default()),
            Fault::VerifyBlamesWholeBatch => {
                let v = self.inner.ed25519_verify_batch_vartime(items)?;
                Ok(blame_whole_batch(v, items.len()))
            }
            Fault::EdVerifyUncofactored => Ok(Verdict {
                invalid: items
                    .iter()
                    .enumerate()
                    .filter(|(_, it)| {
                        let (r, a) = (it.r.to_edwards(), it.public_key.to_edwards());
                        !(EdwardsPoint::mul_base(&it.s) - r - a * it.c).is_identity()
                    })
                    .map(|(i, _)| i)
                    .collect(),
            }),
            _ => self.inner.ed25519_verify_batch_vartime(items),
        }
    }

    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        let mut out = self.inner.secp256k1_normalize_batch(points)?;
        if self.fault == Fault::NormalizeIdentity {
            for (p, a) in points.iter().zip(out.iter_mut()) {
                if bool::from(p.is_identity()) {
                    *a = AffinePoint::GENERATOR;
                }
            }
        }
        Ok(self.batch(points.len(), out, |a| {
            *a = (ProjectivePoint::from(*a) + ProjectivePoint::GENERATOR).to_affine()
        }))
    }

    fn ed25519_compress_batch(
        &self,
        points: &[EdPoint],
    ) -> Result<Vec<CompressedEdwardsY>, AccelError> {
        let mut out = self.inner.ed25519_compress_batch(points)?;
        for (p, c) in points.iter().zip(out.iter_mut()) {
            let hit = match self.fault {
                Fault::CompressTorsion => p.to_edwards().is_small_order(),
                Fault::CompressLargeOrder => !p.to_edwards().is_small_order(),
                _ => false,
            };
            if hit {
                *c = EdwardsPoint::identity().compress();
            }
            if self.fault == Fault::CompressAffineSign && p.affine_bytes().is_some() {
                c.0[31] &= 0x7f;
            }
        }
        Ok(self.batch(points.len(), out, |c| {
            *c = (c.decompress().unwrap_or_default() + EdwardsPoint::mul_base(&EdScalar::ONE))
                .compress()
        }))
    }

    fn secp256k1_decompress_batch(
        &self,
        encodings: &[[u8; 33]],
    ) -> Result<Vec<Option<ProjectivePoint>>, AccelError> {
        let mut out = self.inner.secp256k1_decompress_batch(encodings)?;
        if self.fault == Fault::SecpDecompressPrefix {
            for (e, p) in encodings.iter().zip(out.iter_mut()) {
                if e[0] == 4 {
                    let mut even = *e;
                    even[0] = 2;
                    *p = accel_api::secp256k1_decompress(&even);
                }
            }
        }
        Ok(self.batch(encodings.len(), out, |p| {
            *p = Some(p.map_or(ProjectivePoint::GENERATOR, |q| {
                q + ProjectivePoint::GENERATOR
            }))
        }))
    }

    fn ed25519_decompress_batch(
        &self,
        encodings: &[[u8; 32]],
    ) -> Result<Vec<Option<EdPoint>>, AccelError> {
        let mut out = self.inner.ed25519_decompress_batch(encodings)?;
        for (e, p) in encodings.iter().zip(out.iter_mut()) {
            match self.fault {
                Fault::DecompressLax => {
                    *p = CompressedEdwardsY(*e).decompress().map(EdPoint::from);
                }
                Fault::DecompressRefusesTorsion
                    if p.is_some_and(|q| q.to_edwards().is_small_order()) =>
                {
                    *p = None;
                }
                Fault::DecompressIgnoresSign => {
                    let mut clear = *e;
                    clear[31] &= 0x7f;
                    *p = EdPoint::decompress_vartime(&clear);
                }
                _ => {}
            }
        }
        Ok(self.batch(encodings.len(), out, |p| {
            *p = Some(p.map_or(EdPoint::generator(), |q| q + EdPoint::generator()))
        }))
    }
}

type Check = fn(&dyn Accelerator);

/// `check` passes the fault-free saboteur and panics on every fault in `faults`.
fn catches(name: &str, check: Check, faults: &[Fault]) {
    check(&Saboteur::new(Fault::None));
    for fault in faults {
        let failed = catch_unwind(AssertUnwindSafe(|| check(&Saboteur::new(*fault)))).is_err();
        assert!(failed, "kit::{name} passed a backend with {fault:?}");
    }
}

#[test]
fn mul_base_checks_catch_wrong_edge_scalars_and_outputs() {
    let common = [Fault::ShortOutput, Fault::WrongAtThousand];
    catches(
        "check_secp256k1_mul_base",
        kit::check_secp256k1_mul_base,
        &[
            &common[..],
            &[Fault::SecpMulBaseZero, Fault::SecpMulBaseMinusOne],
        ]
        .concat(),
    );
    catches(
        "check_ed25519_mul_base",
        kit::check_ed25519_mul_base,
        &[
            &common[..],
            &[
                Fault::EdMulBaseZero,
                Fault::EdMulBaseMinusTwo,
                Fault::EdMulBaseUpperDigit8,
            ],
        ]
        .concat(),
    );
}

#[test]
fn lincomb_checks_catch_wrong_edge_points_and_long_jobs() {
    let common = [Fault::ShortOutput, Fault::WrongAtThousand];
    catches(
        "check_secp256k1_lincomb_vartime",
        kit::check_secp256k1_lincomb_vartime,
        &[
            &common[..],
            &[
                Fault::SecpLincombIdentityTerm,
                Fault::SecpLincombOppositePoints,
            ],
        ]
        .concat(),
    );
    catches(
        "check_ed25519_lincomb_vartime",
        kit::check_ed25519_lincomb_vartime,
        &[
            &common[..],
            &[
                Fault::EdLincombDropsTorsion,
                Fault::EdLincombLongJob,
                Fault::EdLincombMisreadsAffine,
                Fault::EdLincombOneOnceOnly,
            ],
        ]
        .concat(),
    );
}

#[test]
fn verify_checks_catch_verifiers_that_accept_or_refuse_wrongly() {
    catches(
        "check_secp256k1_verify_batch_vartime",
        kit::check_secp256k1_verify_batch_vartime,
        &[
            Fault::VerifyAcceptsAll,
            Fault::VerifyBlamesWholeBatch,
            Fault::SecpVerifyRefusesIdentityKey,
        ],
    );
    catches(
        "check_ed25519_verify_batch_vartime",
        kit::check_ed25519_verify_batch_vartime,
        &[
            Fault::VerifyAcceptsAll,
            Fault::VerifyBlamesWholeBatch,
            Fault::EdVerifyUncofactored,
        ],
    );
}

#[test]
fn normalisation_checks_catch_wrong_identity_torsion_and_outputs() {
    catches(
        "check_secp256k1_normalize_batch",
        kit::check_secp256k1_normalize_batch,
        &[
            Fault::NormalizeIdentity,
            Fault::ShortOutput,
            Fault::WrongAtThousand,
        ],
    );
    catches(
        "check_ed25519_compress_batch",
        kit::check_ed25519_compress_batch,
        &[
            Fault::CompressTorsion,
            Fault::CompressLargeOrder,
            Fault::CompressAffineSign,
            Fault::ShortOutput,
            Fault::WrongAtThousand,
        ],
    );
}

#[test]
fn decompress_checks_catch_lax_strict_and_sign_faults() {
    catches(
        "check_secp256k1_decompress_batch",
        kit::check_secp256k1_decompress_batch,
        &[
            Fault::SecpDecompressPrefix,
            Fault::ShortOutput,
            Fault::WrongAtThousand,
        ],
    );
    catches(
        "check_ed25519_decompress_batch",
        kit::check_ed25519_decompress_batch,
        &[
            Fault::DecompressLax,
            Fault::DecompressRefusesTorsion,
            Fault::DecompressIgnoresSign,
            Fault::ShortOutput,
            Fault::WrongAtThousand,
        ],
    );
}

#[test]
fn capability_check_catches_each_inconsistency() {
    catches(
        "check_capabilities",
        kit::check_capabilities,
        &[
            Fault::CapsWhitespace,
            Fault::CapsPrefix,
            Fault::CapsBareId,
            Fault::CapsNoLanes,
            Fault::CapsMissingOp,
        ],
    );
}

#[test]
fn check_all_runs_every_check() {
    let all = [
        Fault::SecpMulBaseZero,
        Fault::EdMulBaseZero,
        Fault::SecpLincombIdentityTerm,
        Fault::EdLincombDropsTorsion,
        Fault::EdVerifyUncofactored,
        Fault::SecpVerifyRefusesIdentityKey,
        Fault::NormalizeIdentity,
        Fault::CompressTorsion,
        Fault::SecpDecompressPrefix,
        Fault::DecompressLax,
        Fault::CapsMissingOp,
    ];
    catches("check_all", kit::check_all, &all);
}
