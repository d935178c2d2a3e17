#![doc = include_str!("../README.md")]
//!
//! # Paths
//!
//! [`SimdBackend::new`] picks the best path the CPU has ([`Path::Ifma`], else [`Path::Avx2`]),
//! and fails with [`AccelError::Unavailable`] when it has neither, so `--backend simd` is a
//! clear start-up error and `auto` skips the backend. The environment variable
//! `TESSERA_SIMD_PATH=ifma|avx2|portable` ([`PATH_ENV`]) forces a path; [`SimdBackend::with_path`]
//! does the same from code (the conformance tests run every path the host has).
//! [`Path::Portable`] runs the same lane code in scalar `u64`/`u128` arithmetic and is available
//! everywhere.
//!
//! # Constant time
//!
//! `secp256k1_mul_base` and `ed25519_mul_base` run a fixed sequence of operations whatever the
//! scalars: 64 windows, each a masked scan over every table entry of the window, one complete
//! addition (and for secp256k1 a masked select for a zero digit); no secret-dependent branch or
//! memory index. Only the output points (public) are branched on when they are converted to
//! the curve crates' types. `benches/dudect.rs` is the statistical check.
#![deny(unsafe_code)]
// Limb-parallel arrays read best, and inline into vector code best (no closures), as indexed
// loops.
#![allow(clippy::needless_range_loop)]

#[cfg(target_arch = "x86_64")]
mod avx2;
mod ed;
mod field;
#[cfg(target_arch = "x86_64")]
mod ifma;
mod lanes;
mod secp;
#[cfg(feature = "vectors")]
pub mod vectors;

use std::collections::HashMap;
use std::fmt;

use accel_api::{AccelError, Accelerator, BackendId, Capabilities, EdPoint, LincombJob};
use curve25519_dalek::constants::ED25519_BASEPOINT_COMPRESSED;
use curve25519_dalek::edwards::EdwardsPoint;
use curve25519_dalek::scalar::Scalar as EdScalar;
use curve25519_dalek::traits::VartimeMultiscalarMul;
use k256::elliptic_curve::BatchNormalize;
use k256::{AffinePoint, ProjectivePoint, Scalar as SecpScalar};
use zeroize::Zeroize;

/// Environment variable that forces a path: `ifma`, `avx2` or `portable`.
pub const PATH_ENV: &str = "TESSERA_SIMD_PATH";

const NAME: BackendId = BackendId::Simd;

/// Which lane implementation runs the kernels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Path {
    /// AVX-512 IFMA, 8 lanes per `__m512i`.
    Ifma,
    /// AVX2, 4 lanes per `__m256i` (two registers per 8-lane value; the 52-bit multiplier is
    /// emulated with 26-bit `vpmuludq` products).
    Avx2,
    /// The same lane code in portable scalar arithmetic (runs everywhere; the reference).
    Portable,
}

impl Path {
    /// The name used in [`PATH_ENV`] and in capabilities.
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Ifma => "ifma",
            Path::Avx2 => "avx2",
            Path::Portable => "portable",
        }
    }

    /// The path's part of [`Capabilities::device_id`] (`simd:<this>`): `avx512ifma`, `avx2`,
    /// `portable`.
    pub fn device_id(self) -> &'static str {
        match self {
            Path::Ifma => "avx512ifma",
            Path::Avx2 => "avx2",
            Path::Portable => "portable",
        }
    }

    /// The path named by `s` (`ifma`, `avx2`, `portable`).
    pub fn parse(s: &str) -> Result<Self, AccelError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "ifma" => Ok(Path::Ifma),
            "avx2" => Ok(Path::Avx2),
            "portable" => Ok(Path::Portable),
            other => Err(AccelError::Unavailable {
                backend: NAME,
                reason: format!(
                    "{PATH_ENV}={other:?} is not a path (expected ifma, avx2 or portable)"
                ),
            }),
        }
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The lane implementation in use, holding the proof of its CPU features.
#[derive(Clone, Copy, Debug)]
enum Engine {
    #[cfg(target_arch = "x86_64")]
    Ifma(ifma::Ifma),
    #[cfg(target_arch = "x86_64")]
    Avx2(avx2::Avx2),
    Portable,
}

/// Which implementation runs the Ed25519 public-data work: `ed25519_lincomb_vartime` and
/// `ed25519_decompress_batch`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EdLincomb {
    /// Whichever is cheaper for the batch at hand, by the crossovers measured with
    /// `benches/simd.rs` (`docs/simd.md`): the lanes on the IFMA path for batches of at least
    /// eight terms over five or more jobs (or 48 terms in fewer), per job below 256 terms;
    /// curve25519-dalek otherwise.
    #[default]
    Auto,
    /// This crate's lanes: in-lane decompression of the points, one job per lane.
    Lanes,
    /// curve25519-dalek's `vartime_multiscalar_mul`, job by job (its own IFMA/AVX2 backend),
    /// and its decompression, one encoding at a time.
    Dalek,
}

/// The multi-lane backend.
#[derive(Clone, Debug)]
pub struct SimdBackend {
    engine: Engine,
    ed_lincomb: EdLincomb,
}

impl SimdBackend {
    /// The backend on the best path this CPU has, or the path forced by [`PATH_ENV`].
    ///
    /// Fails with [`AccelError::Unavailable`] when the CPU has no supported vector
    /// instruction set (and no path is forced), or when the forced path cannot run here.
    pub fn new() -> Result<Self, AccelError> {
        match std::env::var(PATH_ENV) {
            Ok(v) if !v.trim().is_empty() => Self::with_path(Path::parse(&v)?),
            _ => Self::with_path(Path::Ifma)
                .or_else(|_| Self::with_path(Path::Avx2))
                .map_err(|_| AccelError::Unavailable {
                    backend: NAME,
                    reason: "the CPU has neither AVX-512 IFMA (avx512f + avx512ifma) nor AVX2; \
                             use --backend cpu, or force the portable lane code with \
                             TESSERA_SIMD_PATH=portable"
                        .to_owned(),
                }),
        }
    }

    /// The backend on a given path; [`AccelError::Unavailable`] if this CPU cannot run it.
    pub fn with_path(path: Path) -> Result<Self, AccelError> {
        let engine = match path {
            Path::Portable => Engine::Portable,
            Path::Ifma => Self::ifma_engine()?,
            Path::Avx2 => Self::avx2_engine()?,
        };
        secp::warm_up();
        ed::warm_up();
        Ok(Self {
            engine,
            ed_lincomb: EdLincomb::Auto,
        })
    }

    /// The same backend with `ed25519_lincomb_vartime` run by `choice` (benches and tests
    /// compare the two implementations with it).
    pub fn with_ed_lincomb(mut self, choice: EdLincomb) -> Self {
        self.ed_lincomb = choice;
        self
    }

    #[cfg(target_arch = "x86_64")]
    fn ifma_engine() -> Result<Engine, AccelError> {
        ifma::Ifma::detect()
            .map(Engine::Ifma)
            .ok_or_else(|| AccelError::Unavailable {
                backend: NAME,
                reason: "the CPU lacks avx512f/avx512ifma".to_owned(),
            })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn ifma_engine() -> Result<Engine, AccelError> {
        Err(AccelError::Unavailable {
            backend: NAME,
            reason: "AVX-512 IFMA exists only on x86_64".to_owned(),
        })
    }

    #[cfg(target_arch = "x86_64")]
    fn avx2_engine() -> Result<Engine, AccelError> {
        avx2::Avx2::detect()
            .map(Engine::Avx2)
            .ok_or_else(|| AccelError::Unavailable {
                backend: NAME,
                reason: "the CPU lacks avx2".to_owned(),
            })
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn avx2_engine() -> Result<Engine, AccelError> {
        Err(AccelError::Unavailable {
            backend: NAME,
            reason: "AVX2 exists only on x86_64".to_owned(),
        })
    }

    /// The path in use.
    pub fn path(&self) -> Path {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(_) => Path::Ifma,
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(_) => Path::Avx2,
            Engine::Portable => Path::Portable,
        }
    }

    fn secp_lanes(&self, digits: &secp::Digits) -> secp::LaneOutput {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::secp_mul_base(tok, digits),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::secp_mul_base(tok, digits),
            Engine::Portable => secp::mul_base_lanes(lanes::Portable, digits),
        }
    }

    fn secp_lincomb_lanes(
        &self,
        digits: &[secp::Digits],
        points: &[secp::LaneAffine],
    ) -> secp::LaneOutput {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::secp_lincomb(tok, digits, points),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::secp_lincomb(tok, digits, points),
            Engine::Portable => secp::lincomb_lanes(lanes::Portable, digits, points),
        }
    }

    fn secp_pippenger_lanes(
        &self,
        digits: &[[u64; lanes::LANES]],
        points: &[[[u64; 5]; 2]],
        buckets: &mut [secp::Bucket],
    ) -> secp::LaneOutput {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::secp_pippenger(tok, digits, points, buckets),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::secp_pippenger(tok, digits, points, buckets),
            Engine::Portable => secp::pippenger_lanes(lanes::Portable, digits, points, buckets),
        }
    }

    /// Σ sₜ·Pₜ for one large job (finite points only) by bucket accumulation: signed
    /// radix-2^c windows, eight windows per pass (one per lane), window sums combined on the
    /// host by Horner's rule.
    fn secp_pippenger_job(
        &self,
        terms: &[(SecpScalar, AffinePoint)],
    ) -> Result<ProjectivePoint, AccelError> {
        let n = terms.len();
        let c: u32 = match n {
            0..1024 => 7,
            1024..8192 => 9,
            _ => 11,
        };
        // c does not divide 256, so the top window has spare bits and never carries out.
        let windows = 256usize.div_ceil(c as usize);
        let mut digits = Vec::with_capacity(n);
        let mut points = Vec::with_capacity(n);
        for (s, p) in terms {
            digits.push(
                secp::pippenger_digits_vartime(s, c, windows)
                    .ok_or_else(|| internal("recoding carried out of the top window"))?,
            );
            points.push(secp::affine_limbs(p));
        }
        let mut buckets = vec![[[[0u64; lanes::LANES]; 5]; 3]; (1usize << (c - 1)) + 1];
        let mut sums = Vec::with_capacity(windows);
        for first in (0..windows).step_by(lanes::LANES) {
            let pass: Vec<[u64; lanes::LANES]> = digits
                .iter()
                .map(|d| core::array::from_fn(|lane| d.get(first + lane).copied().unwrap_or(0)))
                .collect();
            let out = self.secp_pippenger_lanes(&pass, &points, &mut buckets);
            let live = (windows - first).min(lanes::LANES);
            sums.extend((0..live).map(|lane| secp::lane_coordinates(&out, lane)));
        }
        let sums =
            secp::to_points(&sums).ok_or_else(|| internal("window sum is not a curve point"))?;
        let mut acc = ProjectivePoint::IDENTITY;
        for w in sums.iter().rev() {
            for _ in 0..c {
                acc = acc.double();
            }
            acc += w;
        }
        Ok(acc)
    }

    fn ed_sqrt_lanes(&self, y: &ed::LaneFe) -> ed::SqrtCandidates {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::ed_sqrt_candidates(tok, y),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::ed_sqrt_candidates(tok, y),
            Engine::Portable => ed::sqrt_candidates_lanes(lanes::Portable, y),
        }
    }

    fn ed_lincomb_lanes(
        &self,
        digits: &[ed::Digits],
        points: &[ed::LaneAffine],
        plain: &[ed::LaneAffine],
    ) -> ed::LaneExtended {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::ed_lincomb(tok, digits, points, plain),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::ed_lincomb(tok, digits, points, plain),
            Engine::Portable => ed::lincomb_lanes(lanes::Portable, digits, points, plain),
        }
    }

    fn ed_affine_lanes(&self, points: &[ed::LaneExtended]) -> Vec<[ed::AffineBytes; lanes::LANES]> {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::ed_affine(tok, points),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::ed_affine(tok, points),
            Engine::Portable => ed::affine_lanes(lanes::Portable, points),
        }
    }

    /// Affine coordinates of the distinct points of a batch: `(index of each input point,
    /// coordinates of each distinct point)`. Points that carry their coordinates (results of
    /// this or another lane backend) are read as they are; the others are encoded (one batched
    /// inversion) and decompressed eight at a time on the lanes.
    fn ed_affine_points(
        &self,
        points: &[EdPoint],
    ) -> Result<(Vec<usize>, Vec<ed::Affine>), AccelError> {
        let encodings = EdPoint::compress_batch(points);
        let mut distinct: HashMap<[u8; 32], usize> = HashMap::new();
        // The basepoint's coordinates are known; every other distinct point needs its
        // coordinates or a root.
        distinct.insert(ED25519_BASEPOINT_COMPRESSED.to_bytes(), 0);
        let mut coords = vec![ed::basepoint_affine()];
        // (encoding, position in `coords`) of the points that need a root.
        let mut pending: Vec<([u8; 32], usize)> = Vec::new();
        let index: Vec<usize> = encodings
            .iter()
            .zip(points)
            .map(|(e, p)| {
                let next = distinct.len();
                *distinct.entry(e.to_bytes()).or_insert_with(|| {
                    match p.affine_bytes() {
                        Some((x, y)) => coords.push([ed::y_limbs(&x), ed::y_limbs(&y)]),
                        None => {
                            pending.push((e.to_bytes(), next));
                            coords.push([[0; 5]; 2]);
                        }
                    }
                    next
                })
            })
            .collect();
        for chunk in pending.chunks(lanes::LANES) {
            let mut y: ed::LaneFe = [[0; lanes::LANES]; 5];
            for (lane, (e, _)) in chunk.iter().enumerate() {
                let limbs = ed::y_limbs(e);
                for k in 0..5 {
                    y[k][lane] = limbs[k];
                }
            }
            let cand = self.ed_sqrt_lanes(&y);
            for (lane, (e, at)) in chunk.iter().enumerate() {
                let x = ed::recover_x_vartime(&cand, lane, e[31] >> 7 == 1)
                    .ok_or_else(|| internal("a point's encoding did not decompress"))?;
                coords[*at] = [x, core::array::from_fn(|k| y[k][lane])];
            }
        }
        Ok((index, coords))
    }

    /// Σ sᵢ·Pᵢ for every job on the lanes: the points' coordinates read or decompressed on the
    /// lanes ([`Self::ed_affine_points`]); each job's terms with a scalar other than 1 split
    /// into sub-jobs (one per lane) of at most [`SUB_TERMS`] terms, fewer when the batch has
    /// too few such terms to fill the lanes otherwise; its terms with scalar 1 (a group
    /// commitment's hiding commitments, a subgroup check's `+P`) added once at the end of its
    /// first sub-job, without a table or a window; sub-job sums added per job, the results
    /// made affine on the lanes.
    fn ed_lincomb_own(
        &self,
        jobs: &[&LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        if jobs.is_empty() {
            return Ok(Vec::new());
        }
        let points: Vec<EdPoint> = jobs
            .iter()
            .flat_map(|j| j.terms.iter().map(|t| t.1))
            .collect();
        let (index, coords) = self.ed_affine_points(&points)?;
        // Per job: the position in `index` of its first term, and those of its windowed terms
        // and of its plain ones.
        let mut first: Vec<usize> = Vec::with_capacity(jobs.len());
        let mut windowed: Vec<Vec<usize>> = Vec::with_capacity(jobs.len());
        let mut plain: Vec<Vec<usize>> = Vec::with_capacity(jobs.len());
        let mut at = 0;
        for job in jobs {
            first.push(at);
            let (mut w, mut p) = (Vec::new(), Vec::new());
            for (s, _) in &job.terms {
                if *s == EdScalar::ONE { &mut p } else { &mut w }.push(at);
                at += 1;
            }
            windowed.push(w);
            plain.push(p);
        }
        let total: usize = windowed.iter().map(Vec::len).sum();
        let per_lane = total.div_ceil(lanes::LANES).clamp(1, SUB_TERMS);
        // Sub-jobs in job order: (job, its windowed terms, its plain terms).
        let mut subs: Vec<(usize, &[usize], &[usize])> = Vec::new();
        for (i, (w, p)) in windowed.iter().zip(&plain).enumerate() {
            let mut chunks = w.chunks(per_lane);
            subs.push((i, chunks.next().unwrap_or(&[]), p));
            subs.extend(chunks.map(|c| (i, c, &[][..])));
        }
        let identity_coords: ed::Affine = [[0; 5], [1, 0, 0, 0, 0]];
        let mut parts: Vec<Vec<[[u64; 5]; 4]>> = vec![Vec::new(); jobs.len()];
        for chunk in subs.chunks(lanes::LANES) {
            let m = chunk.iter().map(|s| s.1.len()).max().unwrap_or(0);
            let mp = chunk.iter().map(|s| s.2.len()).max().unwrap_or(0);
            let mut digits = vec![[[0u64; lanes::LANES]; ed::WINDOWS]; m];
            let mut lane_points = vec![[[[0u64; lanes::LANES]; 5]; 2]; m];
            let mut lane_plain = vec![[[[0u64; lanes::LANES]; 5]; 2]; mp];
            let put = |to: &mut ed::LaneAffine, lane: usize, c: &ed::Affine| {
                for (xy, limbs) in c.iter().enumerate() {
                    for k in 0..5 {
                        to[xy][k][lane] = limbs[k];
                    }
                }
            };
            for (lane, &(job, terms, ones)) in chunk.iter().enumerate() {
                for t in 0..m {
                    // A lane with fewer terms adds 0·B.
                    let (d, c) = match terms.get(t) {
                        Some(&at) => {
                            let scalar = &jobs[job].terms[at - first[job]].0;
                            (ed::signed_digits_vartime(scalar), &coords[index[at]])
                        }
                        None => ([0; ed::WINDOWS], &coords[0]),
                    };
                    for w in 0..ed::WINDOWS {
                        digits[t][w][lane] = d[w];
                    }
                    put(&mut lane_points[t], lane, c);
                }
                for u in 0..mp {
                    let c = ones
                        .get(u)
                        .map_or(&identity_coords, |&at| &coords[index[at]]);
                    put(&mut lane_plain[u], lane, c);
                }
            }
            let out = self.ed_lincomb_lanes(&digits, &lane_points, &lane_plain);
            for (lane, &(job, ..)) in chunk.iter().enumerate() {
                parts[job].push(core::array::from_fn(|c| {
                    core::array::from_fn(|k| out[c][k][lane])
                }));
            }
        }
        // One extended point per job (the identity for an empty job), eight per lane group.
        let identity = [
            [0, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [1, 0, 0, 0, 0],
            [0, 0, 0, 0, 0],
        ];
        let sums: Vec<[[u64; 5]; 4]> = parts
            .iter()
            .map(|p| match p.as_slice() {
                [] => identity,
                [one] => *one,
                many => ed::sum_vartime(many),
            })
            .collect();
        let groups: Vec<ed::LaneExtended> = sums
            .chunks(lanes::LANES)
            .map(|g| {
                core::array::from_fn(|c| {
                    core::array::from_fn(|k| {
                        core::array::from_fn(|lane| g.get(lane).unwrap_or(&identity)[c][k])
                    })
                })
            })
            .collect();
        let coords = self.ed_affine_lanes(&groups);
        ed::to_points(coords.iter().flatten().take(jobs.len()).copied())
            .ok_or_else(|| internal("lane result is not a curve point"))
    }

    fn ed_lanes(&self, chunks: &[ed::Digits]) -> Vec<[ed::AffineBytes; lanes::LANES]> {
        match self.engine {
            #[cfg(target_arch = "x86_64")]
            Engine::Ifma(tok) => ifma::ed_mul_base(tok, chunks),
            #[cfg(target_arch = "x86_64")]
            Engine::Avx2(tok) => avx2::ed_mul_base(tok, chunks),
            Engine::Portable => ed::mul_base_affine(lanes::Portable, chunks),
        }
    }
}

fn internal(reason: &str) -> AccelError {
    AccelError::Device {
        backend: NAME,
        reason: reason.to_owned(),
    }
}

/// Terms per lane: a larger job is split into sub-jobs of at most this many terms, each in its
/// own lane, whose results are summed at the end.
const SUB_TERMS: usize = 8;

/// Terms from which a secp256k1 job runs through the lane-parallel Pippenger kernel instead
/// of 8-term sub-jobs. Measured on AVX-512 IFMA (one job, `benches/simd.rs`): sub-jobs win at
/// 64 terms (447 vs 573 µs), the two tie at 128 (994 vs 928 µs), Pippenger wins from 256
/// (1.74 vs 1.28 ms) to 16,384 terms (97 vs 59 ms).
const PIPPENGER_MIN_TERMS: usize = 192;

/// Terms from which curve25519-dalek (Pippenger from 190 terms) beats the lanes on one
/// Ed25519 job. Measured on AVX-512 IFMA (`benches/simd.rs`, one job, per term): lanes 6.0 vs
/// dalek 6.6 µs at 64 terms, 5.3 vs 6.3 at 129, dalek ahead from 256 (4.3 vs 4.8).
const ED_DALEK_MIN_TERMS: usize = 256;
/// Fewest terms (over the jobs below [`ED_DALEK_MIN_TERMS`]) for the lanes on IFMA.
const ED_LANES_MIN_TERMS: usize = 8;
/// Fewest jobs for the lanes below [`ED_LANES_SINGLE_MIN_TERMS`] terms. Measured with 2-term
/// jobs: four jobs go to dalek or tie (41.9 vs 37.6, 39.0 vs 39.3 µs per job in two runs),
/// eight run 1.9× faster on the lanes (19.2 vs 37.0); five to seven lie between, where the
/// lanes' cost stays that of one lane group while dalek's grows with every job. A single job
/// of 32 terms still goes to dalek (7.2 vs 6.8 µs per term).
const ED_LANES_MIN_JOBS: usize = 5;
/// Terms from which even a single job fills the lanes well enough to win (one 64-term job).
const ED_LANES_SINGLE_MIN_TERMS: usize = 48;

/// Per job, whether it runs on this crate's lanes (else on curve25519-dalek), by the measured
/// crossovers above. Only the IFMA lanes ever win: the AVX2 lanes (emulated 52-bit
/// multiplier) measured 2.6–15× slower than dalek at every size, and the portable lanes are
/// the reference.
fn ed_lanes_win(path: Path, jobs: &[LincombJob<EdScalar, EdPoint>]) -> Vec<bool> {
    let small = |j: &LincombJob<EdScalar, EdPoint>| j.terms.len() < ED_DALEK_MIN_TERMS;
    let (count, terms) = jobs
        .iter()
        .filter(|j| small(j))
        .fold((0, 0), |(c, t), j| (c + 1, t + j.terms.len()));
    let lanes = path == Path::Ifma
        && terms >= ED_LANES_MIN_TERMS
        && (count >= ED_LANES_MIN_JOBS || terms >= ED_LANES_SINGLE_MIN_TERMS);
    jobs.iter().map(|j| lanes && small(j)).collect()
}

/// Fewest encodings for in-lane decompression under [`EdLincomb::Auto`] (IFMA only): below,
/// curve25519-dalek decodes them one by one. Measured with `benches/simd.rs`
/// (`ed25519_decompress`).
const ED_DECOMPRESS_LANES_MIN: usize = 2;

/// One term of a sub-job: the scalar and the affine point (`None` for the identity).
type SubTerm = (SecpScalar, Option<AffinePoint>);

impl Accelerator for SimdBackend {
    fn capabilities(&self) -> Capabilities {
        let lanes = match self.path() {
            Path::Ifma => "avx512ifma 8-lane",
            Path::Avx2 => "avx2 2x4-lane (emulated 52-bit multiplier)",
            Path::Portable => "portable 8-lane reference",
        };
        let ed = match self.ed_lincomb {
            EdLincomb::Auto => "on the lanes or curve25519-dalek, whichever is cheaper",
            EdLincomb::Lanes => "on the lanes",
            EdLincomb::Dalek => "via curve25519-dalek",
        };
        // A forced Ed25519 lincomb implementation (benches, tests) costs differently.
        let forced = match self.ed_lincomb {
            EdLincomb::Auto => "",
            EdLincomb::Lanes => ":ed-lanes",
            EdLincomb::Dalek => ":ed-dalek",
        };
        let device = format!(
            "{lanes}: mul_base (secp256k1, ed25519), lincomb_vartime (secp256k1, ed25519 \
             {ed}); normalize serial (k256); compress: lane results carry their coordinates"
        );
        Capabilities {
            backend: NAME,
            device_id: format!("{NAME}:{}{forced}", self.path().device_id()),
            device,
            ops: Capabilities::all_ops(),
            secret_ops: true,
            lanes: lanes::LANES,
        }
    }

    fn secp256k1_mul_base(
        &self,
        scalars: &[SecpScalar],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        let mut coords = Vec::with_capacity(scalars.len());
        for chunk in scalars.chunks(lanes::LANES) {
            let mut digits = secp::digits(chunk);
            let out = self.secp_lanes(&digits);
            digits.zeroize();
            coords.extend((0..chunk.len()).map(|lane| secp::lane_coordinates(&out, lane)));
        }
        if coords.is_empty() {
            return Ok(Vec::new());
        }
        secp::to_points(&coords).ok_or_else(|| internal("lane result is not a curve point"))
    }

    fn ed25519_mul_base(&self, scalars: &[EdScalar]) -> Result<Vec<EdPoint>, AccelError> {
        let mut chunks: Vec<ed::Digits> =
            vec![[[0u64; lanes::LANES]; ed::WINDOWS]; scalars.len().div_ceil(lanes::LANES)];
        for (c, d) in scalars.chunks(lanes::LANES).zip(chunks.iter_mut()) {
            ed::digits_into(c, d);
        }
        let coords = self.ed_lanes(&chunks);
        chunks.zeroize();
        ed::to_points(coords.iter().flatten().take(scalars.len()).copied())
            .ok_or_else(|| internal("lane result is not a curve point"))
    }

    fn secp256k1_lincomb_vartime(
        &self,
        jobs: &[LincombJob<SecpScalar, ProjectivePoint>],
    ) -> Result<Vec<ProjectivePoint>, AccelError> {
        // Affine form of every finite point, with one batched inversion.
        let finite: Vec<ProjectivePoint> = jobs
            .iter()
            .flat_map(|j| j.terms.iter().map(|t| t.1))
            .filter(|p| *p != ProjectivePoint::IDENTITY)
            .collect();
        let affine = if finite.is_empty() {
            Vec::new()
        } else {
            <ProjectivePoint as BatchNormalize<[ProjectivePoint]>>::batch_normalize(
                finite.as_slice(),
            )
        };
        let mut affine = affine.iter();
        // Large jobs go to the Pippenger kernel; the rest are split into sub-jobs of at most
        // SUB_TERMS terms, in job order: (job index, terms).
        let mut subs: Vec<(usize, Vec<SubTerm>)> = Vec::new();
        let mut out = vec![ProjectivePoint::IDENTITY; jobs.len()];
        for (i, job) in jobs.iter().enumerate() {
            if job.terms.len() >= PIPPENGER_MIN_TERMS {
                let mut finite = Vec::with_capacity(job.terms.len());
                for (s, p) in &job.terms {
                    if *p != ProjectivePoint::IDENTITY {
                        let a = affine
                            .next()
                            .ok_or_else(|| internal("batch normalisation lost a point"))?;
                        finite.push((*s, *a));
                    }
                }
                out[i] = self.secp_pippenger_job(&finite)?;
                continue;
            }
            for chunk in job.terms.chunks(SUB_TERMS) {
                let terms = chunk
                    .iter()
                    .map(|(s, p)| {
                        if *p == ProjectivePoint::IDENTITY {
                            Ok((*s, None))
                        } else {
                            affine
                                .next()
                                .map(|a| (*s, Some(*a)))
                                .ok_or_else(|| internal("batch normalisation lost a point"))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                subs.push((i, terms));
            }
        }
        let g = secp::affine_limbs(&AffinePoint::GENERATOR);
        let mut coords = Vec::with_capacity(subs.len());
        for chunk in subs.chunks(lanes::LANES) {
            let m = chunk.iter().map(|(_, t)| t.len()).max().unwrap_or(0);
            let mut digits = vec![[[0u64; lanes::LANES]; secp::WINDOWS]; m];
            let mut points = vec![[[[0u64; lanes::LANES]; 5]; 2]; m];
            for (lane, (_, terms)) in chunk.iter().enumerate() {
                for t in 0..m {
                    // A missing or identity term contributes 0·G.
                    let (s, p) = match terms.get(t) {
                        Some((s, Some(p))) => (*s, *p),
                        _ => (SecpScalar::ZERO, AffinePoint::GENERATOR),
                    };
                    // s·P = (−s)·(−P): recode whichever has no carry out of the top window.
                    let (d, p) = match secp::signed_digits_vartime(&s) {
                        Some(d) => (d, p),
                        None => (
                            secp::signed_digits_vartime(&-s)
                                .ok_or_else(|| internal("neither s nor −s recodes"))?,
                            -p,
                        ),
                    };
                    secp::write_lane(&d, lane, &mut digits[t]);
                    let p = if p == AffinePoint::GENERATOR {
                        g
                    } else {
                        secp::affine_limbs(&p)
                    };
                    for c in 0..2 {
                        for k in 0..5 {
                            points[t][c][k][lane] = p[c][k];
                        }
                    }
                }
            }
            let out = self.secp_lincomb_lanes(&digits, &points);
            coords.extend((0..chunk.len()).map(|lane| secp::lane_coordinates(&out, lane)));
        }
        if coords.is_empty() {
            return Ok(out);
        }
        let sums =
            secp::to_points(&coords).ok_or_else(|| internal("lane result is not a curve point"))?;
        for ((i, _), p) in subs.iter().zip(sums) {
            out[*i] += p;
        }
        Ok(out)
    }

    fn ed25519_lincomb_vartime(
        &self,
        jobs: &[LincombJob<EdScalar, EdPoint>],
    ) -> Result<Vec<EdPoint>, AccelError> {
        let on_lanes: Vec<bool> = match self.ed_lincomb {
            EdLincomb::Lanes => vec![true; jobs.len()],
            EdLincomb::Dalek => vec![false; jobs.len()],
            EdLincomb::Auto => ed_lanes_win(self.path(), jobs),
        };
        let lane_jobs: Vec<_> = jobs
            .iter()
            .zip(&on_lanes)
            .filter_map(|(j, on)| on.then_some(j))
            .collect();
        let mut from_lanes = self.ed_lincomb_own(&lane_jobs)?.into_iter();
        jobs.iter()
            .zip(&on_lanes)
            .map(|(job, on)| {
                if *on {
                    from_lanes
                        .next()
                        .ok_or_else(|| internal("the lanes returned too few results"))
                } else if job.terms.is_empty() {
                    Ok(EdPoint::identity())
                } else {
                    // Affine points (lane results) are decompressed for curve25519-dalek.
                    Ok(EdPoint::from(EdwardsPoint::vartime_multiscalar_mul(
                        job.terms.iter().map(|t| t.0),
                        job.terms.iter().map(|t| t.1.to_edwards()),
                    )))
                }
            })
            .collect()
    }

    fn secp256k1_normalize_batch(
        &self,
        points: &[ProjectivePoint],
    ) -> Result<Vec<AffinePoint>, AccelError> {
        Ok(accel_api::secp256k1_normalize_batch_serial(points))
    }

    /// Eight square roots at a time on the lanes (by [`EdLincomb`]'s choice), each result
    /// carrying the affine coordinates it was checked with, so that a later lincomb on the
    /// lanes reads them as they are.
    fn ed25519_decompress_batch(
        &self,
        encodings: &[[u8; 32]],
    ) -> Result<Vec<Option<EdPoint>>, AccelError> {
        let on_lanes = match self.ed_lincomb {
            EdLincomb::Lanes => true,
            EdLincomb::Dalek => false,
            EdLincomb::Auto => {
                self.path() == Path::Ifma && encodings.len() >= ED_DECOMPRESS_LANES_MIN
            }
        };
        if !on_lanes {
            return Ok(encodings.iter().map(EdPoint::decompress_vartime).collect());
        }
        let mut out = Vec::with_capacity(encodings.len());
        for chunk in encodings.chunks(lanes::LANES) {
            let mut y: ed::LaneFe = [[0; lanes::LANES]; 5];
            for (lane, e) in chunk.iter().enumerate() {
                let limbs = ed::y_limbs(e);
                for k in 0..5 {
                    y[k][lane] = limbs[k];
                }
            }
            let cand = self.ed_sqrt_lanes(&y);
            out.extend(chunk.iter().enumerate().map(|(lane, e)| {
                let x = ed::recover_x_vartime(&cand, lane, e[31] >> 7 == 1)?;
                let mut y = *e;
                y[31] &= 0x7f;
                // Refuses y ≥ p (not canonical) and checks the curve equation.
                EdPoint::from_affine_vartime(&ed::fe_bytes(&x), &y)
            }));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_names_round_trip_and_unknown_is_an_error() {
        for p in [Path::Ifma, Path::Avx2, Path::Portable] {
            assert_eq!(Path::parse(p.as_str()), Ok(p));
        }
        assert_eq!(Path::parse(" IFMA "), Ok(Path::Ifma));
        assert!(matches!(
            Path::parse("neon"),
            Err(AccelError::Unavailable {
                backend: BackendId::Simd,
                ..
            })
        ));
    }

    #[test]
    fn ed_lincomb_auto_follows_the_measured_crossovers() {
        let job = |n: usize| LincombJob::new(vec![(EdScalar::ONE, EdPoint::identity()); n]);
        let jobs = |sizes: &[usize]| sizes.iter().map(|n| job(*n)).collect::<Vec<_>>();
        assert_eq!(ed_lanes_win(Path::Ifma, &jobs(&[2; 8])), vec![true; 8]);
        assert_eq!(ed_lanes_win(Path::Ifma, &jobs(&[2; 5])), vec![true; 5]);
        assert_eq!(ed_lanes_win(Path::Ifma, &jobs(&[2; 4])), vec![false; 4]);
        assert_eq!(ed_lanes_win(Path::Ifma, &jobs(&[64])), vec![true]);
        assert_eq!(ed_lanes_win(Path::Ifma, &jobs(&[32])), vec![false]);
        assert_eq!(ed_lanes_win(Path::Ifma, &jobs(&[256])), vec![false]);
        assert_eq!(
            ed_lanes_win(Path::Ifma, &jobs(&[300, 2, 2, 2, 2, 2, 0])),
            vec![false, true, true, true, true, true, true]
        );
        for path in [Path::Avx2, Path::Portable] {
            assert_eq!(ed_lanes_win(path, &jobs(&[2; 64])), vec![false; 64]);
        }
    }

    #[test]
    fn capabilities_name_the_path() {
        let b = SimdBackend::with_path(Path::Portable).unwrap();
        let caps = b.capabilities();
        assert_eq!(caps.backend, BackendId::Simd);
        assert_eq!(caps.device_id, "simd:portable");
        let dalek = b.with_ed_lincomb(EdLincomb::Dalek).capabilities();
        assert_eq!(dalek.device_id, "simd:portable:ed-dalek");
        assert!(caps.device.starts_with("portable 8-lane"));
        assert_eq!(caps.lanes, 8);
        assert!(caps.secret_ops);
    }
}
