//! The embedded mode: all n parties of a key in one process (the service's default). Each call
//! advances many sessions through round 1, round 2 and aggregation with one port call per
//! operation per round for the whole batch.

use accel_api::{Accelerator, CurveGroup};
use rand_core::CryptoRngCore;
use zeroize::Zeroizing;

use crate::keys::{Identifier, KeySet, validate_params};
use crate::round1::{SigningCommitments, draw_nonces};
use crate::session::{self, Finish, SessionInput};
use crate::suite::{Scalar, Suite};
use crate::{Error, SignatureOutput, TaprootTweak, dkg};

/// Runs the DKG ([`crate::dkg`]) among `parties` local parties.
pub fn dkg<S: Suite>(
    accel: &dyn Accelerator,
    threshold: u16,
    parties: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet<S>, Error> {
    dkg::run_local::<S>(accel, threshold, parties, rng)
}

/// Trusted-dealer import: splits the canonical secret key `secret` (32-byte scalar encoding of
/// the suite: little-endian for Ed25519, big-endian for secp256k1) into `parties` shares.
pub fn import<S: Suite>(
    accel: &dyn Accelerator,
    secret: &[u8],
    threshold: u16,
    parties: u16,
    rng: &mut impl CryptoRngCore,
) -> Result<KeySet<S>, Error> {
    validate_params(threshold, parties)?;
    let s = Zeroizing::new(S::scalar_from_bytes(secret).ok_or(Error::InvalidSecretKey)?);
    if *s == S::G::scalar_zero() {
        return Err(Error::InvalidSecretKey);
    }
    KeySet::split(accel, &*s, threshold, parties, rng)
}

/// One signing request.
#[derive(Clone, Copy, Debug)]
pub struct SignJob<'a, S: Suite> {
    /// The key (all parties' shares).
    pub key: &'a KeySet<S>,
    /// The message.
    pub message: &'a [u8],
    /// Taproot tweak (must be `None` for Ed25519).
    pub taproot: TaprootTweak,
}

/// Runs round 1, round 2 and aggregation for many sessions, one port call per op per round.
/// The first `threshold` parties of each key sign. Each session's binding factors and group
/// commitment are computed once (public values every signer derives identically); each
/// party's share is computed from its own secret share and its own nonces.
pub fn sign_batch<S: Suite>(
    accel: &dyn Accelerator,
    jobs: &[SignJob<'_, S>],
    rng: &mut impl CryptoRngCore,
) -> Vec<Result<SignatureOutput, Error>> {
    match sign_inner(accel, jobs, rng) {
        Ok(r) => r,
        Err(e) => jobs.iter().map(|_| Err(e.clone())).collect(),
    }
}

fn sign_inner<S: Suite>(
    accel: &dyn Accelerator,
    jobs: &[SignJob<'_, S>],
    rng: &mut impl CryptoRngCore,
) -> Result<Vec<Result<SignatureOutput, Error>>, Error> {
    // Round 1 for every signer of every session: one mul_base call, one encoding call.
    let mut nonces: Zeroizing<Vec<Scalar<S>>> = Zeroizing::new(Vec::new());
    for job in jobs {
        let t = usize::from(job.key.threshold());
        for share in &job.key.shares[..t] {
            let (d, e) = draw_nonces::<S>(&share.secret, rng);
            nonces.push(d);
            nonces.push(e);
        }
    }
    let points = S::G::mul_base(accel, &nonces)?;
    let encs = S::encode_batch(accel, &points)?;
    let mut commitments: Vec<Vec<(Identifier, SigningCommitments<S>)>> =
        Vec::with_capacity(jobs.len());
    let mut off = 0;
    for job in jobs {
        let t = usize::from(job.key.threshold());
        let list = job.key.shares[..t]
            .iter()
            .enumerate()
            .map(|(j, share)| {
                let k = off + 2 * j;
                (
                    share.id,
                    SigningCommitments {
                        hiding: points[k],
                        binding: points[k + 1],
                        hiding_enc: encs[k],
                        binding_enc: encs[k + 1],
                    },
                )
            })
            .collect();
        commitments.push(list);
        off += 2 * t;
    }
    if points.iter().any(S::G::is_identity) {
        return Err(Error::Malformed("zero nonce"));
    }

    // Public session values: one lincomb and one encoding call (plus one each for tweaks).
    let inputs: Vec<SessionInput<'_, S>> = jobs
        .iter()
        .zip(&commitments)
        .map(|(job, c)| SessionInput {
            group_key: &job.key.public.group_key,
            commitments: c,
            message: job.message,
            taproot: job.taproot,
        })
        .collect();
    let ctxs = session::contexts(accel, &inputs)?;

    // Round 2: each party's share from its own secret share and nonces.
    let mut results: Vec<Option<Result<SignatureOutput, Error>>> = Vec::with_capacity(jobs.len());
    let mut ready = Vec::new();
    let mut ready_idx = Vec::new();
    let mut off = 0;
    for (k, ((job, ctx), c)) in jobs.iter().zip(&ctxs).zip(&commitments).enumerate() {
        let t = usize::from(job.key.threshold());
        match ctx {
            Ok(ctx) => {
                let shares = job.key.shares[..t]
                    .iter()
                    .enumerate()
                    .map(|(j, share)| {
                        ctx.share(
                            j,
                            &share.secret,
                            &nonces[off + 2 * j],
                            &nonces[off + 2 * j + 1],
                        )
                    })
                    .collect();
                let verifying = job.key.shares[..t]
                    .iter()
                    .map(|s| s.verifying_share)
                    .collect();
                ready.push(Finish {
                    ctx,
                    commitments: c,
                    shares,
                    verifying,
                });
                ready_idx.push(k);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e.clone()))),
        }
        off += 2 * t;
    }
    // Aggregation: one batched verification of every signature.
    let outs = session::finish(accel, &ready)?;
    for (k, o) in ready_idx.into_iter().zip(outs) {
        results[k] = Some(o);
    }
    Ok(results
        .into_iter()
        .map(|r| r.unwrap_or(Err(Error::InvalidSignature)))
        .collect())
}
