//! Round 2 (signature shares, RFC 9591 §5.2) and aggregation (§5.3), batched over sessions.

use core::fmt;
use std::collections::BTreeMap;

use accel_api::Accelerator;

use crate::keys::{GroupKey, Identifier, KeyShare, MAX_PARTIES, PublicKeyPackage};
use crate::round1::{SigningCommitments, SigningNonces};
use crate::session::{self, Finish, SessionInput};
use crate::suite::{Scalar, Suite};
use crate::{Error, SignatureOutput, TaprootTweak};

/// What the coordinator sends every signer: the commitments of the chosen signers, the message
/// and the Taproot tweak.
#[derive(Clone, Debug, PartialEq)]
pub struct SigningPackage<S: Suite> {
    pub(crate) commitments: Vec<(Identifier, SigningCommitments<S>)>,
    pub(crate) message: Vec<u8>,
    pub(crate) taproot: TaprootTweak,
}

/// A signer's commitments in a package being decoded: held already, or their encoding to
/// validate.
type Entry<'a, S> = (Identifier, Result<SigningCommitments<S>, &'a [u8]>);

/// A [`SigningPackage`] encoding split up, its commitments not yet validated.
struct Parsed<'a, S: Suite> {
    taproot: TaprootTweak,
    message: &'a [u8],
    /// Each signer's commitments.
    commitments: Vec<Entry<'a, S>>,
}

impl<'a, S: Suite> Parsed<'a, S> {
    /// Splits `b` (requiring `1..=MAX_PARTIES` signers with strictly increasing
    /// identifiers); an entry whose encoding equals a `known` commitment's takes it.
    fn parse(b: &'a [u8], known: &[SigningCommitments<S>]) -> Result<Self, Error> {
        let bad = Error::Malformed("signing package");
        let (taproot, rest) = match b.first() {
            Some(0) => (TaprootTweak::None, &b[1..]),
            Some(1) => (TaprootTweak::KeyPath, &b[1..]),
            Some(2) if b.len() >= 33 => {
                let mut r = [0u8; 32];
                r.copy_from_slice(&b[1..33]);
                (TaprootTweak::ScriptRoot(r), &b[33..])
            }
            _ => return Err(bad),
        };
        let (len, rest) = rest.split_first_chunk::<4>().ok_or(bad.clone())?;
        let len = u32::from_be_bytes(*len) as usize;
        if rest.len() < len {
            return Err(bad);
        }
        let (message, rest) = rest.split_at(len);
        let (count, mut rest) = rest.split_first_chunk::<2>().ok_or(bad.clone())?;
        let rec = 2 + 2 * S::POINT_LEN;
        let count = u16::from_be_bytes(*count);
        if count == 0 || count > MAX_PARTIES {
            return Err(Error::Malformed("signing package signer count"));
        }
        let count = usize::from(count);
        if rest.len() != count * rec {
            return Err(bad);
        }
        let mut commitments: Vec<Entry<'a, S>> = Vec::with_capacity(count);
        while let Some((id, tail)) = rest.split_first_chunk::<2>() {
            let id = Identifier::new(u16::from_be_bytes(*id))?;
            if commitments.last().is_some_and(|(last, _)| *last >= id) {
                return Err(Error::DuplicateIdentifier(id.get()));
            }
            let (c, tail) = tail.split_at(rec - 2);
            let held = known.iter().find(|k| {
                let l = S::POINT_LEN;
                k.hiding_bytes() == &c[..l] && k.binding_bytes() == &c[l..]
            });
            commitments.push((id, held.copied().ok_or(c)));
            rest = tail;
        }
        Ok(Self {
            taproot,
            message,
            commitments,
        })
    }

    /// The encodings to validate, in signer order.
    fn unknown(&self) -> impl Iterator<Item = &'a [u8]> + '_ {
        self.commitments
            .iter()
            .filter_map(|(_, c)| c.as_ref().err().copied())
    }

    /// The package, with `decoded` the results for [`Parsed::unknown`] in its order.
    fn assemble(
        self,
        decoded: Vec<Result<SigningCommitments<S>, Error>>,
    ) -> Result<SigningPackage<S>, Error> {
        let mut decoded = decoded.into_iter();
        let commitments = self
            .commitments
            .into_iter()
            .map(|(id, c)| match c {
                Ok(held) => Ok((id, held)),
                Err(_) => decoded
                    .next()
                    .unwrap_or(Err(Error::Malformed("signing package")))
                    .map(|c| (id, c)),
            })
            .collect::<Result<_, Error>>()?;
        Ok(SigningPackage {
            commitments,
            message: self.message.to_vec(),
            taproot: self.taproot,
        })
    }
}

impl<S: Suite> SigningPackage<S> {
    /// A package from the signers' commitments (a map, so identifiers are distinct).
    pub fn new(
        commitments: BTreeMap<Identifier, SigningCommitments<S>>,
        message: &[u8],
        taproot: TaprootTweak,
    ) -> Self {
        Self {
            commitments: commitments.into_iter().collect(),
            message: message.to_vec(),
            taproot,
        }
    }
    /// The signers, in increasing order.
    pub fn signers(&self) -> Vec<Identifier> {
        self.commitments.iter().map(|(i, _)| *i).collect()
    }
    /// The signers' commitments, in signer order.
    pub fn commitments(&self) -> impl Iterator<Item = &SigningCommitments<S>> {
        self.commitments.iter().map(|(_, c)| c)
    }
    /// The message.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    fn input<'a>(&'a self, key: &'a GroupKey<S>) -> SessionInput<'a, S> {
        SessionInput {
            group_key: key,
            commitments: &self.commitments,
            message: &self.message,
            taproot: self.taproot,
        }
    }

    /// Encoding: Taproot tag (0 none, 1 key path, 2 script root followed by the 32-byte root),
    /// message length (u32 BE) and message, signer count (u16 BE), then per signer its
    /// identifier (u16 BE) and `D ‖ E`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match self.taproot {
            TaprootTweak::None => out.push(0),
            TaprootTweak::KeyPath => out.push(1),
            TaprootTweak::ScriptRoot(r) => {
                out.push(2);
                out.extend_from_slice(&r);
            }
        }
        out.extend_from_slice(&(self.message.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.message);
        out.extend_from_slice(&(self.commitments.len() as u16).to_be_bytes());
        for (id, c) in &self.commitments {
            out.extend_from_slice(&id.get().to_be_bytes());
            out.extend_from_slice(&c.to_bytes());
        }
        out
    }

    /// Decodes [`SigningPackage::to_bytes`], validating every commitment and requiring
    /// `1..=MAX_PARTIES` signers with strictly increasing identifiers.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        Self::from_bytes_known(b, &[])
    }

    /// [`SigningPackage::from_bytes`] for a signer that already holds some of the
    /// commitments (its own, from its nonces): an entry whose encoding equals a `known`
    /// commitment's takes that commitment instead of decoding and validating the points
    /// again; every other commitment is validated as usual.
    pub fn from_bytes_known(b: &[u8], known: &[SigningCommitments<S>]) -> Result<Self, Error> {
        let parsed = Parsed::parse(b, known)?;
        let decoded = parsed
            .unknown()
            .map(SigningCommitments::from_bytes)
            .collect();
        parsed.assemble(decoded)
    }

    /// [`SigningPackage::from_bytes_known`] for many packages `(encoding, known)`, with every
    /// commitment to validate checked in one batch through the port; one result per package.
    /// `Err` only when the port fails.
    pub fn from_bytes_known_batch(
        accel: &dyn Accelerator,
        items: &[(&[u8], &[SigningCommitments<S>])],
    ) -> Result<Vec<Result<Self, Error>>, Error> {
        let parsed: Vec<Result<Parsed<'_, S>, Error>> = items
            .iter()
            .map(|(b, known)| Parsed::parse(b, known))
            .collect();
        let unknown: Vec<&[u8]> = parsed.iter().flatten().flat_map(Parsed::unknown).collect();
        let mut decoded = SigningCommitments::<S>::from_bytes_batch(accel, &unknown)?.into_iter();
        Ok(parsed
            .into_iter()
            .map(|p| {
                let p = p?;
                let mine = decoded.by_ref().take(p.unknown().count()).collect();
                p.assemble(mine)
            })
            .collect())
    }

    /// The binding factors `ρᵢ` of this package under `key` (RFC 9591 §4.4), in signer order.
    pub fn binding_factors(
        &self,
        accel: &dyn Accelerator,
        key: &GroupKey<S>,
    ) -> Result<Vec<(Identifier, Scalar<S>)>, Error> {
        let ctx = session::contexts(accel, &[self.input(key)])?
            .pop()
            .ok_or(Error::InvalidSignature)??;
        Ok(self.signers().into_iter().zip(ctx.rho).collect())
    }

    fn position(&self, id: Identifier) -> Option<usize> {
        self.commitments.binary_search_by_key(&id, |(i, _)| *i).ok()
    }
}

/// A signer's share `zᵢ` of the signature.
#[derive(Clone, Copy, PartialEq)]
pub struct SignatureShare<S: Suite> {
    pub(crate) id: Identifier,
    pub(crate) z: Scalar<S>,
}

impl<S: Suite> SignatureShare<S> {
    /// Who produced it.
    pub fn identifier(&self) -> Identifier {
        self.id
    }
    /// The share scalar.
    pub fn scalar(&self) -> Scalar<S> {
        self.z
    }
    /// A share from its parts (e.g. received over the wire).
    pub fn new(id: Identifier, z: Scalar<S>) -> Self {
        Self { id, z }
    }
    /// The 32-byte canonical encoding of `zᵢ`.
    pub fn to_bytes(&self) -> [u8; 32] {
        S::scalar_to_bytes(&self.z)
    }
    /// Decodes a share of `id`.
    pub fn from_bytes(id: Identifier, b: &[u8]) -> Result<Self, Error> {
        let z = S::scalar_from_bytes(b).ok_or(Error::Malformed("signature share"))?;
        Ok(Self { id, z })
    }
}

impl<S: Suite> fmt::Debug for SignatureShare<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SignatureShare({}, {:?})", self.id, self.z)
    }
}

/// One party's round-2 work item: the package, its nonces (consumed) and its key share.
pub type SignItem<'a, S> = (&'a SigningPackage<S>, SigningNonces<S>, &'a KeyShare<S>);

/// Round 2 for many (party, session) items in one go: one port call per operation for all of
/// them. Each item's nonces are consumed (single use) and zeroized.
pub fn sign_batch<S: Suite>(
    accel: &dyn Accelerator,
    items: Vec<SignItem<'_, S>>,
) -> Vec<Result<SignatureShare<S>, Error>> {
    if items.is_empty() {
        return Vec::new();
    }
    let inputs: Vec<SessionInput<'_, S>> = items
        .iter()
        .map(|(p, _, k)| p.input(&k.group_key))
        .collect();
    let ctxs = match session::contexts(accel, &inputs) {
        Ok(c) => c,
        Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
    };
    items
        .into_iter()
        .zip(ctxs)
        .map(|((pkg, nonces, key), ctx)| {
            let ctx = ctx?;
            if pkg.commitments.len() < usize::from(key.threshold) {
                return Err(Error::WrongSignerCount {
                    got: pkg.commitments.len(),
                    need: usize::from(key.threshold),
                });
            }
            let k = pkg
                .position(key.id)
                .ok_or(Error::UnknownIdentifier(key.id.get()))?;
            if pkg.commitments[k].1 != nonces.commitments {
                return Err(Error::CommitmentMismatch);
            }
            Ok(SignatureShare {
                id: key.id,
                z: ctx.share(k, &key.secret, &nonces.hiding, &nonces.binding),
            })
        })
        .collect()
}

/// One aggregation item: the package, the shares received, the public key package.
pub type AggregateItem<'a, S> = (
    &'a SigningPackage<S>,
    &'a [SignatureShare<S>],
    &'a PublicKeyPackage<S>,
);

/// Aggregates many sessions (RFC 9591 §5.3): the final signatures are verified together in one
/// batched call; only when a session's signature fails are its shares checked one by one, and
/// the error names every culprit.
pub fn aggregate_batch<S: Suite>(
    accel: &dyn Accelerator,
    items: &[AggregateItem<'_, S>],
) -> Vec<Result<SignatureOutput, Error>> {
    let own = items.iter().map(|_| None).collect();
    aggregate_inner(accel, items, own)
}

/// One item of a coordinator that is also a signer: the package, the other signers' shares,
/// the public key package, and its own nonces (consumed) and key share.
pub type SignAggregateItem<'a, S> = (AggregateItem<'a, S>, SigningNonces<S>, &'a KeyShare<S>);

/// Round 2 of the coordinator's own share and the aggregation of every share, for many
/// sessions (RFC 9591 §5.2–5.3): the session values (binding factors, group commitment,
/// challenge) are computed once for both, where [`sign_batch`] then [`aggregate_batch`]
/// compute them twice. Each item's nonces are consumed and zeroized; culprits are named as in
/// [`aggregate_batch`].
pub fn sign_and_aggregate_batch<S: Suite>(
    accel: &dyn Accelerator,
    items: Vec<SignAggregateItem<'_, S>>,
) -> Vec<Result<SignatureOutput, Error>> {
    let (items, own): (Vec<_>, Vec<_>) = items
        .into_iter()
        .map(|(item, nonces, key)| (item, Some((nonces, key))))
        .unzip();
    aggregate_inner(accel, &items, own)
}

fn aggregate_inner<S: Suite>(
    accel: &dyn Accelerator,
    items: &[AggregateItem<'_, S>],
    own: Vec<Option<(SigningNonces<S>, &KeyShare<S>)>>,
) -> Vec<Result<SignatureOutput, Error>> {
    if items.is_empty() {
        return Vec::new();
    }
    let inputs: Vec<SessionInput<'_, S>> = items
        .iter()
        .map(|(p, _, pk)| p.input(&pk.group_key))
        .collect();
    let ctxs = match session::contexts(accel, &inputs) {
        Ok(c) => c,
        Err(e) => return items.iter().map(|_| Err(e.clone())).collect(),
    };
    let mut results: Vec<Option<Result<SignatureOutput, Error>>> = Vec::with_capacity(items.len());
    let mut ready = Vec::new();
    let mut ready_idx = Vec::new();
    for (k, (((pkg, shares, pk), ctx), own)) in items.iter().zip(&ctxs).zip(own).enumerate() {
        let prepared = (|| {
            let ctx = ctx.as_ref().map_err(Clone::clone)?;
            if pkg.commitments.len() < usize::from(pk.threshold) {
                return Err(Error::WrongSignerCount {
                    got: pkg.commitments.len(),
                    need: usize::from(pk.threshold),
                });
            }
            let own_share = match &own {
                Some((nonces, key)) => {
                    let at = pkg
                        .position(key.id)
                        .ok_or(Error::UnknownIdentifier(key.id.get()))?;
                    if pkg.commitments[at].1 != nonces.commitments {
                        return Err(Error::CommitmentMismatch);
                    }
                    let z = ctx.share(at, &key.secret, &nonces.hiding, &nonces.binding);
                    Some((key.id, z))
                }
                None => None,
            };
            let given = shares.len() + usize::from(own_share.is_some());
            if given != pkg.commitments.len() {
                return Err(Error::WrongSignerCount {
                    got: given,
                    need: pkg.commitments.len(),
                });
            }
            let mut z = Vec::with_capacity(given);
            let mut ys = Vec::with_capacity(given);
            for (id, _) in &pkg.commitments {
                let share = match own_share {
                    Some((me, mine)) if me == *id => mine,
                    _ => {
                        shares
                            .iter()
                            .find(|s| s.id == *id)
                            .ok_or(Error::UnknownIdentifier(id.get()))?
                            .z
                    }
                };
                z.push(share);
                ys.push(
                    pk.verifying_share(*id)
                        .ok_or(Error::UnknownIdentifier(id.get()))?,
                );
            }
            Ok(Finish {
                ctx,
                commitments: &pkg.commitments,
                shares: z,
                verifying: ys,
            })
        })();
        match prepared {
            Ok(f) => {
                ready.push(f);
                ready_idx.push(k);
                results.push(None);
            }
            Err(e) => results.push(Some(Err(e))),
        }
    }
    match session::finish(accel, &ready) {
        Ok(outs) => {
            for (k, o) in ready_idx.into_iter().zip(outs) {
                results[k] = Some(o);
            }
        }
        Err(e) => {
            for k in ready_idx {
                results[k] = Some(Err(e.clone()));
            }
        }
    }
    results
        .into_iter()
        .map(|r| r.unwrap_or(Err(Error::InvalidSignature)))
        .collect()
}
