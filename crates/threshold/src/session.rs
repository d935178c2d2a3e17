//! Per-session public values shared by round 2, aggregation and the embedded mode: effective
//! (even-Y / tweaked) group key, binding factors, group commitment, challenge and Lagrange
//! coefficients, computed for many sessions with one port call per operation.

use std::collections::BTreeMap;

use accel_api::{Accelerator, CurveGroup, LincombJob, SchnorrItem};

use crate::hash::tagged;
use crate::keys::{GroupKey, Identifier, lagrange};
use crate::round1::SigningCommitments;
use crate::suite::{Point, PointBytes, Scalar, Suite, secp_reduce_digest};
use crate::{Error, SignatureOutput, TaprootTweak};

/// What one session needs as input.
pub(crate) struct SessionInput<'a, S: Suite> {
    pub group_key: &'a GroupKey<S>,
    /// Sorted by identifier.
    pub commitments: &'a [(Identifier, SigningCommitments<S>)],
    pub message: &'a [u8],
    pub taproot: TaprootTweak,
}

/// The public values of one session.
pub(crate) struct SessionCtx<S: Suite> {
    /// The key the signature verifies under (even-Y and tweaked for BIP340).
    pub key_point: Point<S>,
    pub key_enc: PointBytes,
    /// Effective share transform: `s' = a·s + b` (and `Y' = a·Y + b·G`).
    pub key_a: Scalar<S>,
    pub key_b: Scalar<S>,
    /// Binding factors, aligned with the commitments.
    pub rho: Vec<Scalar<S>>,
    /// Lagrange coefficients, aligned with the commitments.
    pub lambda: Vec<Scalar<S>>,
    /// Group commitment (even-Y for BIP340) and its encoding.
    pub r_point: Point<S>,
    pub r_enc: PointBytes,
    /// Whether R was negated to make it even (BIP340): nonces are negated too.
    pub r_neg: bool,
    /// The challenge.
    pub c: Scalar<S>,
}

impl<S: Suite> SessionCtx<S> {
    /// Signature share of the party at position `k` with secret share `secret` and nonces.
    pub fn share(&self, k: usize, secret: &Scalar<S>, d: &Scalar<S>, e: &Scalar<S>) -> Scalar<S> {
        let mut nonce = *d + self.rho[k] * *e;
        if self.r_neg {
            nonce = -nonce;
        }
        nonce + self.lambda[k] * self.c * (self.key_a * *secret + self.key_b)
    }
}

/// The BIP341 tweak `t = H_TapTweak(P.x ‖ root)`.
pub(crate) fn taptweak(x: &[u8; 32], root: Option<&[u8; 32]>) -> accel_api::curves::k256::Scalar {
    use sha2::Digest;
    let mut h = tagged(b"TapTweak");
    h.update(x);
    if let Some(r) = root {
        h.update(r);
    }
    secp_reduce_digest(&h.finalize())
}

fn tweak_scalar<S: Suite>(key: &PointBytes, tweak: TaprootTweak) -> Option<Scalar<S>> {
    let x = key.x_only();
    let t = match tweak {
        TaprootTweak::None => return None,
        TaprootTweak::KeyPath => taptweak(&x, None),
        TaprootTweak::ScriptRoot(r) => taptweak(&x, Some(&r)),
    };
    // Scalars of BIP340 suites are k256 scalars; go through the canonical encoding.
    S::scalar_from_bytes(&t.to_bytes())
}

/// `(a, b, key point, key encoding)`: the effective key and share transform.
type EffectiveKey<S> = (Scalar<S>, Scalar<S>, Point<S>, PointBytes);

/// Computes the session contexts. The outer error is a port failure (fails every session).
pub(crate) fn contexts<S: Suite>(
    accel: &dyn Accelerator,
    inputs: &[SessionInput<'_, S>],
) -> Result<Vec<Result<SessionCtx<S>, Error>>, Error> {
    let one = S::G::scalar_one();
    let zero = S::G::scalar_zero();
    let mut early: Vec<Option<Error>> = inputs.iter().map(|_| None).collect();
    // Effective key per session: (a, b, point, enc).
    let mut keys: Vec<EffectiveKey<S>> = Vec::with_capacity(inputs.len());
    let mut tweak_jobs = Vec::new();
    let mut tweak_idx = Vec::new();
    for (k, inp) in inputs.iter().enumerate() {
        for w in inp.commitments.windows(2) {
            if w[0].0 >= w[1].0 {
                early[k] = Some(Error::DuplicateIdentifier(w[1].0.get()));
            }
        }
        let gk = inp.group_key;
        if !S::BIP340 {
            if inp.taproot != TaprootTweak::None {
                early[k] = Some(Error::TaprootNotSupported);
            }
            keys.push((one, zero, gk.point, gk.enc));
            continue;
        }
        let e1 = if gk.enc.y_is_odd() { -one } else { one };
        let p_even = if gk.enc.y_is_odd() {
            -gk.point
        } else {
            gk.point
        };
        match tweak_scalar::<S>(&gk.enc, inp.taproot) {
            None => keys.push((e1, zero, p_even, gk.enc.with_even_y())),
            Some(t) => {
                tweak_jobs.push(LincombJob::new(vec![(one, p_even), (t, S::G::generator())]));
                tweak_idx.push(k);
                keys.push((e1, t, p_even, gk.enc));
            }
        }
    }
    if !tweak_jobs.is_empty() {
        let qs = S::G::lincomb_vartime(accel, &tweak_jobs)?;
        let encs = S::encode_batch(accel, &qs)?;
        for ((k, q), enc) in tweak_idx.iter().zip(qs).zip(encs) {
            if S::G::is_identity(&q) {
                early[*k] = Some(Error::Malformed("tweaked key is the identity"));
                continue;
            }
            let (e1, t, _, _) = keys[*k];
            let (a, b, qe) = if enc.y_is_odd() {
                (-e1, -t, -q)
            } else {
                (e1, t, q)
            };
            keys[*k] = (a, b, qe, enc.with_even_y());
        }
    }

    // Binding factors (RFC 9591 §4.4) and group commitment jobs (§4.5).
    let mut rhos = Vec::with_capacity(inputs.len());
    let mut r_jobs = Vec::with_capacity(inputs.len());
    for (inp, key) in inputs.iter().zip(&keys) {
        let ids: Vec<[u8; 32]> = inp
            .commitments
            .iter()
            .map(|(i, _)| S::identifier_bytes(i.get()))
            .collect();
        let mut enc_list: Vec<&[u8]> = Vec::with_capacity(3 * ids.len());
        for (id, (_, c)) in ids.iter().zip(inp.commitments) {
            enc_list.push(id);
            enc_list.push(c.hiding_enc.as_bytes());
            enc_list.push(c.binding_enc.as_bytes());
        }
        let h4 = S::h4(inp.message);
        let h5 = S::h5(&enc_list);
        let rho: Vec<Scalar<S>> = ids
            .iter()
            .map(|id| S::h1(&[key.3.as_bytes(), &h4, &h5, id]))
            .collect();
        r_jobs.push(LincombJob::new(
            inp.commitments
                .iter()
                .zip(&rho)
                .flat_map(|((_, c), r)| [(one, c.hiding), (*r, c.binding)])
                .collect(),
        ));
        rhos.push(rho);
    }
    let rs = S::G::lincomb_vartime(accel, &r_jobs)?;
    let r_encs = S::encode_batch(accel, &rs)?;

    let mut lambda_cache: BTreeMap<Vec<Identifier>, Vec<Scalar<S>>> = BTreeMap::new();
    let mut out = Vec::with_capacity(inputs.len());
    for (k, ((inp, rho), (r, r_enc))) in inputs
        .iter()
        .zip(rhos)
        .zip(rs.into_iter().zip(r_encs))
        .enumerate()
    {
        if let Some(e) = early[k].take() {
            out.push(Err(e));
            continue;
        }
        if S::G::is_identity(&r) {
            out.push(Err(Error::Malformed("group commitment is the identity")));
            continue;
        }
        let (key_a, key_b, key_point, key_enc) = keys[k];
        let (r_point, r_enc, r_neg) = if S::BIP340 && r_enc.y_is_odd() {
            (-r, r_enc.with_even_y(), true)
        } else {
            (r, r_enc, false)
        };
        let c = S::challenge(&r_enc, &key_enc, inp.message);
        let ids: Vec<Identifier> = inp.commitments.iter().map(|(i, _)| *i).collect();
        let lambda = lambda_cache
            .entry(ids)
            .or_insert_with_key(|ids| lagrange::<S>(ids))
            .clone();
        out.push(Ok(SessionCtx {
            key_point,
            key_enc,
            key_a,
            key_b,
            rho,
            lambda,
            r_point,
            r_enc,
            r_neg,
            c,
        }));
    }
    Ok(out)
}

/// One session ready to aggregate.
pub(crate) struct Finish<'a, S: Suite> {
    pub ctx: &'a SessionCtx<S>,
    pub commitments: &'a [(Identifier, SigningCommitments<S>)],
    /// Signature shares aligned with the commitments.
    pub shares: Vec<Scalar<S>>,
    /// Verifying shares aligned with the commitments.
    pub verifying: Vec<Point<S>>,
}

/// Aggregates many sessions: sums shares, verifies every signature in one batched call, and
/// only for sessions that fail checks their shares (one more call) to name the culprits.
pub(crate) fn finish<S: Suite>(
    accel: &dyn Accelerator,
    sessions: &[Finish<'_, S>],
) -> Result<Vec<Result<SignatureOutput, Error>>, Error> {
    let zs: Vec<Scalar<S>> = sessions
        .iter()
        .map(|f| f.shares.iter().fold(S::G::scalar_zero(), |a, z| a + *z))
        .collect();
    let items: Vec<SchnorrItem<Scalar<S>, Point<S>>> = sessions
        .iter()
        .zip(&zs)
        .map(|(f, z)| SchnorrItem {
            r: f.ctx.r_point,
            s: *z,
            c: f.ctx.c,
            public_key: f.ctx.key_point,
        })
        .collect();
    let verdict = S::G::verify_batch_vartime(accel, &items)?;
    let mut jobs = Vec::new();
    let mut owners = Vec::new();
    for k in &verdict.invalid {
        let f = &sessions[*k];
        let ctx = f.ctx;
        let sign = if ctx.r_neg {
            -S::G::scalar_one()
        } else {
            S::G::scalar_one()
        };
        for (j, ((id, c), (z, y))) in f
            .commitments
            .iter()
            .zip(f.shares.iter().zip(&f.verifying))
            .enumerate()
        {
            let cl = ctx.c * ctx.lambda[j];
            jobs.push(LincombJob::new(vec![
                (*z - cl * ctx.key_b, S::G::generator()),
                (-sign, c.hiding),
                (-(sign * ctx.rho[j]), c.binding),
                (-(cl * ctx.key_a), *y),
            ]));
            owners.push((*k, id.get()));
        }
    }
    let checks = if jobs.is_empty() {
        Vec::new()
    } else {
        S::G::lincomb_vartime(accel, &jobs)?
    };
    let mut culprits: BTreeMap<usize, Vec<u16>> = BTreeMap::new();
    for ((k, id), p) in owners.iter().zip(&checks) {
        let entry = culprits.entry(*k).or_default();
        if !S::G::is_identity(p) {
            entry.push(*id);
        }
    }
    Ok(sessions
        .iter()
        .zip(&zs)
        .enumerate()
        .map(|(k, (f, z))| match culprits.get(&k) {
            Some(c) if !c.is_empty() => Err(Error::Culprits(c.clone())),
            Some(_) => Err(Error::InvalidSignature),
            None => Ok(SignatureOutput {
                signature: S::signature_bytes(&f.ctx.r_enc, z),
                verifying_key: S::verifying_key_bytes(&f.ctx.key_enc),
            }),
        })
        .collect())
}
