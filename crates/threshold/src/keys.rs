//! Identifiers, key shares, public key packages, the trusted dealer and [`KeySet`].

use core::fmt;

use accel_api::{Accelerator, CurveGroup, LincombJob};
use rand_core::CryptoRngCore;
use zeroize::{Zeroize, Zeroizing};

use crate::Error;
use crate::suite::{Point, PointBytes, Scalar, Suite};

/// The largest number of parties a key may have.
pub const MAX_PARTIES: u16 = 255;

/// A party's identifier: a non-zero integer, used as the x-coordinate of its share
/// (RFC 9591 §4.1 / §5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Zeroize)]
pub struct Identifier(pub(crate) u16);

impl Identifier {
    /// An identifier from a non-zero integer.
    pub fn new(v: u16) -> Result<Self, Error> {
        if v == 0 {
            Err(Error::ZeroIdentifier)
        } else {
            Ok(Self(v))
        }
    }
    /// The integer value.
    pub fn get(self) -> u16 {
        self.0
    }
    /// The identifier as a scalar of suite `S`.
    pub fn to_scalar<S: Suite>(self) -> Scalar<S> {
        S::G::scalar_from_u64(u64::from(self.0))
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Checks `1 ≤ threshold ≤ parties ≤ MAX_PARTIES`.
pub fn validate_params(threshold: u16, parties: u16) -> Result<(), Error> {
    if threshold == 0 {
        return Err(Error::ZeroThreshold);
    }
    if parties > MAX_PARTIES {
        return Err(Error::TooManyParties {
            parties,
            max: MAX_PARTIES,
        });
    }
    if threshold > parties {
        return Err(Error::InvalidThreshold { threshold, parties });
    }
    Ok(())
}

/// The group public key with its canonical encoding.
#[derive(Clone, Copy, PartialEq)]
pub struct GroupKey<S: Suite> {
    pub(crate) point: Point<S>,
    pub(crate) enc: PointBytes,
}

impl<S: Suite> GroupKey<S> {
    /// The group key point.
    pub fn point(&self) -> Point<S> {
        self.point
    }
    /// Its canonical encoding (32 bytes Ed25519, 33 bytes compressed secp256k1).
    pub fn to_bytes(&self) -> Vec<u8> {
        self.enc.as_bytes().to_vec()
    }
    /// Decodes and validates a group key.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let point = S::point_from_bytes(b).ok_or(Error::Malformed("group key"))?;
        Ok(Self {
            point,
            enc: PointBytes::new(b),
        })
    }
}

impl<S: Suite> fmt::Debug for GroupKey<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "GroupKey({:?})", self.enc)
    }
}

/// One party's long-lived signing share. The secret is zeroized on drop and never printed.
#[derive(Clone)]
pub struct KeyShare<S: Suite> {
    pub(crate) id: Identifier,
    pub(crate) secret: Scalar<S>,
    pub(crate) verifying_share: Point<S>,
    pub(crate) group_key: GroupKey<S>,
    pub(crate) threshold: u16,
}

impl<S: Suite> KeyShare<S> {
    /// This party's identifier.
    pub fn identifier(&self) -> Identifier {
        self.id
    }
    /// The public verifying share `sᵢ·G`.
    pub fn verifying_share(&self) -> Point<S> {
        self.verifying_share
    }
    /// The group key.
    pub fn group_key(&self) -> &GroupKey<S> {
        &self.group_key
    }
    /// The signing threshold.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }
}

impl<S: Suite> KeyShare<S> {
    /// Zeroizes the secret share (what `Drop` runs).
    fn wipe(&mut self) {
        self.secret.zeroize();
        #[cfg(test)]
        crate::probe::note_wipe("KeyShare");
    }
}

impl<S: Suite> Drop for KeyShare<S> {
    fn drop(&mut self) {
        self.wipe();
    }
}

impl<S: Suite> fmt::Debug for KeyShare<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyShare")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("group_key", &self.group_key)
            .field("threshold", &self.threshold)
            .finish()
    }
}

/// The public part of a key: group key, every party's verifying share, threshold.
#[derive(Clone, Debug, PartialEq)]
pub struct PublicKeyPackage<S: Suite> {
    pub(crate) group_key: GroupKey<S>,
    pub(crate) verifying_shares: Vec<(Identifier, Point<S>, PointBytes)>,
    pub(crate) threshold: u16,
}

impl<S: Suite> PublicKeyPackage<S> {
    /// The group key.
    pub fn group_key(&self) -> &GroupKey<S> {
        &self.group_key
    }
    /// The verifying share of `id`, if it is a party.
    pub fn verifying_share(&self, id: Identifier) -> Option<Point<S>> {
        self.verifying_shares
            .binary_search_by_key(&id, |(i, _, _)| *i)
            .ok()
            .map(|k| self.verifying_shares[k].1)
    }
    /// The signing threshold.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }
    /// The number of parties.
    pub fn parties(&self) -> u16 {
        self.verifying_shares.len() as u16
    }
}

/// Every party's [`KeyShare`] and the [`PublicKeyPackage`]: the state of one key in the
/// embedded (all parties in one process) mode.
#[derive(Clone, Debug)]
pub struct KeySet<S: Suite> {
    pub(crate) shares: Vec<KeyShare<S>>,
    pub(crate) public: PublicKeyPackage<S>,
}

/// Lagrange coefficients at 0 for the identifiers `ids` (RFC 9591 §4.2).
pub(crate) fn lagrange<S: Suite>(ids: &[Identifier]) -> Vec<Scalar<S>> {
    ids.iter()
        .map(|i| {
            let xi = i.to_scalar::<S>();
            let mut num = S::G::scalar_one();
            let mut den = S::G::scalar_one();
            for j in ids.iter().filter(|j| *j != i) {
                let xj = j.to_scalar::<S>();
                num = num * xj;
                den = den * (xj - xi);
            }
            num * S::G::scalar_invert(&den)
        })
        .collect()
}

/// Evaluates the polynomial with coefficients `coeffs` (constant term first) at `x`.
pub(crate) fn eval_poly<S: Suite>(coeffs: &[Scalar<S>], x: Identifier) -> Scalar<S> {
    let x = x.to_scalar::<S>();
    coeffs
        .iter()
        .rev()
        .fold(S::G::scalar_zero(), |acc, c| acc * x + *c)
}

impl<S: Suite> KeySet<S> {
    /// Trusted dealer: splits the secret `coeffs[0]` with the polynomial `coeffs` (degree
    /// `threshold − 1`) among parties `1..=parties` (RFC 9591 Appendix C).
    pub fn split_with_coefficients(
        accel: &dyn Accelerator,
        coeffs: &[Scalar<S>],
        parties: u16,
    ) -> Result<Self, Error> {
        let threshold = coeffs.len() as u16;
        validate_params(threshold, parties)?;
        if coeffs[0] == S::G::scalar_zero() {
            return Err(Error::InvalidSecretKey);
        }
        let mut shares = Zeroizing::new(Vec::with_capacity(usize::from(parties)));
        for i in 1..=parties {
            let id = Identifier(i);
            shares.push((id, eval_poly::<S>(coeffs, id)));
        }
        Self::from_secret_shares(accel, threshold, &shares[..], None)
    }

    /// Trusted dealer with a random polynomial whose constant term is `secret`.
    pub fn split(
        accel: &dyn Accelerator,
        secret: &Scalar<S>,
        threshold: u16,
        parties: u16,
        rng: &mut impl CryptoRngCore,
    ) -> Result<Self, Error> {
        validate_params(threshold, parties)?;
        let mut coeffs = Zeroizing::new(vec![*secret]);
        for _ in 1..threshold {
            coeffs.push(S::G::random_scalar(rng));
        }
        Self::split_with_coefficients(accel, &coeffs, parties)
    }

    /// Builds a key set from secret shares (one port call for the verifying shares). The group
    /// key is interpolated from the first `threshold` verifying shares; when `group_key` is
    /// given it must match, and every further share must lie on the same polynomial.
    pub fn from_secret_shares(
        accel: &dyn Accelerator,
        threshold: u16,
        shares: &[(Identifier, Scalar<S>)],
        group_key: Option<&GroupKey<S>>,
    ) -> Result<Self, Error> {
        validate_params(threshold, shares.len() as u16)?;
        let mut ids: Vec<Identifier> = shares.iter().map(|(i, _)| *i).collect();
        ids.sort();
        for w in ids.windows(2) {
            if w[0] == w[1] {
                return Err(Error::DuplicateIdentifier(w[0].0));
            }
        }
        let scalars: Zeroizing<Vec<Scalar<S>>> =
            Zeroizing::new(shares.iter().map(|(_, s)| *s).collect());
        let ys = S::G::mul_base(accel, &scalars)?;
        let mut pairs: Vec<(Identifier, Point<S>)> = shares
            .iter()
            .map(|(i, _)| *i)
            .zip(ys.iter().copied())
            .collect();
        pairs.sort_by_key(|(i, _)| *i);
        // Interpolate the group key from the first t shares; check every other share against
        // the interpolation from the first t − 1 shares and itself.
        let t = usize::from(threshold);
        let base: Vec<Identifier> = pairs[..t].iter().map(|(i, _)| *i).collect();
        let mut jobs = vec![LincombJob::new(
            lagrange::<S>(&base)
                .into_iter()
                .zip(pairs[..t].iter().map(|(_, p)| *p))
                .collect(),
        )];
        for extra in &pairs[t..] {
            let mut set: Vec<Identifier> = pairs[..t - 1].iter().map(|(i, _)| *i).collect();
            set.push(extra.0);
            let pts: Vec<Point<S>> = pairs[..t - 1]
                .iter()
                .map(|(_, p)| *p)
                .chain(core::iter::once(extra.1))
                .collect();
            jobs.push(LincombJob::new(
                lagrange::<S>(&set).into_iter().zip(pts).collect(),
            ));
        }
        let keys = S::G::lincomb_vartime(accel, &jobs)?;
        let point = keys[0];
        if keys.iter().any(|k| *k != point) || S::G::is_identity(&point) {
            return Err(Error::InconsistentKeyShares);
        }
        if let Some(g) = group_key
            && g.point != point
        {
            return Err(Error::InconsistentKeyShares);
        }
        let mut to_encode: Vec<Point<S>> = pairs.iter().map(|(_, p)| *p).collect();
        to_encode.push(point);
        let encs = S::encode_batch(accel, &to_encode)?;
        let group_key = GroupKey {
            point,
            enc: encs[pairs.len()],
        };
        let public = PublicKeyPackage {
            group_key,
            verifying_shares: pairs
                .iter()
                .zip(&encs)
                .map(|((i, p), e)| (*i, *p, *e))
                .collect(),
            threshold,
        };
        let mut out: Vec<KeyShare<S>> = shares
            .iter()
            .zip(&ys)
            .map(|((id, s), y)| KeyShare {
                id: *id,
                secret: *s,
                verifying_share: *y,
                group_key,
                threshold,
            })
            .collect();
        out.sort_by_key(|k| k.id);
        Ok(Self {
            shares: out,
            public,
        })
    }

    /// Every party's share, by identifier.
    pub fn shares(&self) -> &[KeyShare<S>] {
        &self.shares
    }
    /// The public key package.
    pub fn public_package(&self) -> &PublicKeyPackage<S> {
        &self.public
    }
    /// The public key: Ed25519 32 bytes; BIP340 the 32-byte x-only internal key;
    /// `Secp256k1Sha256` the 33-byte compressed key.
    pub fn public_key(&self) -> Vec<u8> {
        S::verifying_key_bytes(&self.public.group_key.enc)
    }
    /// The signing threshold.
    pub fn threshold(&self) -> u16 {
        self.public.threshold
    }
    /// The number of parties.
    pub fn parties(&self) -> u16 {
        self.public.parties()
    }

    /// Serializes the key set (secret shares included): `"TSKS"`, version 1, suite id,
    /// threshold and parties (u16 BE), the group key, then per party: identifier (u16 BE),
    /// secret share (32 bytes), verifying share. The buffer is allocated once with its exact
    /// length and zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(
            10 + S::POINT_LEN + self.shares.len() * (34 + S::POINT_LEN),
        ));
        out.extend_from_slice(b"TSKS");
        out.push(1);
        out.push(S::SUITE_ID);
        out.extend_from_slice(&self.threshold().to_be_bytes());
        out.extend_from_slice(&self.parties().to_be_bytes());
        out.extend_from_slice(self.public.group_key.enc.as_bytes());
        for (share, (_, _, enc)) in self.shares.iter().zip(&self.public.verifying_shares) {
            out.extend_from_slice(&share.id.0.to_be_bytes());
            let mut s = S::scalar_to_bytes(&share.secret);
            out.extend_from_slice(&s);
            s.zeroize();
            out.extend_from_slice(enc.as_bytes());
        }
        // Filled exactly: the buffer never grew, so no copy was left in freed memory.
        debug_assert_eq!(out.len(), out.capacity());
        out
    }

    /// Parses [`KeySet::to_bytes`] output, validating every encoding (points on the curve,
    /// not the identity, in the prime-order subgroup; canonical scalars; sorted distinct
    /// identifiers; parameters in range). The bytes are expected to come from an authenticated
    /// store: share consistency needs the port and is checked when the set is created.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let pl = S::POINT_LEN;
        if b.len() < 10 + pl || &b[..4] != b"TSKS" || b[4] != 1 {
            return Err(Error::Malformed("key set header"));
        }
        if b[5] != S::SUITE_ID {
            return Err(Error::Malformed("key set is for another suite"));
        }
        let threshold = u16::from_be_bytes([b[6], b[7]]);
        let parties = u16::from_be_bytes([b[8], b[9]]);
        validate_params(threshold, parties)?;
        let group_key = GroupKey::<S>::from_bytes(&b[10..10 + pl])?;
        let rec = 34 + pl;
        let body = &b[10 + pl..];
        if body.len() != usize::from(parties) * rec {
            return Err(Error::Malformed("key set length"));
        }
        let mut shares = Vec::with_capacity(usize::from(parties));
        let mut verifying_shares = Vec::with_capacity(usize::from(parties));
        for r in body.chunks_exact(rec) {
            let id = Identifier::new(u16::from_be_bytes([r[0], r[1]]))?;
            if let Some((last, _, _)) = verifying_shares.last()
                && *last >= id
            {
                return Err(Error::DuplicateIdentifier(id.0));
            }
            let secret = S::scalar_from_bytes(&r[2..34]).ok_or(Error::InvalidSecretKey)?;
            let enc = &r[34..];
            let y = S::point_from_bytes(enc).ok_or(Error::Malformed("verifying share"))?;
            verifying_shares.push((id, y, PointBytes::new(enc)));
            shares.push(KeyShare {
                id,
                secret,
                verifying_share: y,
                group_key,
                threshold,
            });
        }
        Ok(Self {
            shares,
            public: PublicKeyPackage {
                group_key,
                verifying_shares,
                threshold,
            },
        })
    }
}

/// One party's [`KeyShare`] with the key's [`PublicKeyPackage`]: what a node of a distributed
/// deployment holds for one key (it never sees another party's secret share).
#[derive(Clone, Debug)]
pub struct PartyKey<S: Suite> {
    pub(crate) share: KeyShare<S>,
    pub(crate) public: PublicKeyPackage<S>,
}

impl<S: Suite> PartyKey<S> {
    /// Pairs a share with its key's public package; the share's identifier must be a party
    /// of the package and its verifying share and group key must match the package's.
    pub fn new(share: KeyShare<S>, public: PublicKeyPackage<S>) -> Result<Self, Error> {
        if public.verifying_share(share.id) != Some(share.verifying_share)
            || public.group_key != share.group_key
            || public.threshold != share.threshold
        {
            return Err(Error::InconsistentKeyShares);
        }
        Ok(Self { share, public })
    }

    /// Party `id`'s part of `set`.
    pub fn from_set(set: &KeySet<S>, id: Identifier) -> Option<Self> {
        let share = set.shares.iter().find(|s| s.id == id)?.clone();
        Some(Self {
            share,
            public: set.public.clone(),
        })
    }

    /// This party's share.
    pub fn share(&self) -> &KeyShare<S> {
        &self.share
    }
    /// The public key package.
    pub fn public_package(&self) -> &PublicKeyPackage<S> {
        &self.public
    }
    /// The public key, encoded as [`KeySet::public_key`] does.
    pub fn public_key(&self) -> Vec<u8> {
        S::verifying_key_bytes(&self.public.group_key.enc)
    }

    /// Serializes the party key (its secret share included): `"TSKP"`, version 1, suite id,
    /// threshold and parties (u16 BE), this party's identifier (u16 BE), its secret share
    /// (32 bytes), the group key, then every party's verifying share in identifier order.
    /// Allocated once with its exact length and zeroized on drop.
    pub fn to_bytes(&self) -> Zeroizing<Vec<u8>> {
        let pl = S::POINT_LEN;
        let n = self.public.verifying_shares.len();
        let mut out = Zeroizing::new(Vec::with_capacity(12 + 32 + pl + n * pl));
        out.extend_from_slice(b"TSKP");
        out.push(1);
        out.push(S::SUITE_ID);
        out.extend_from_slice(&self.public.threshold.to_be_bytes());
        out.extend_from_slice(&self.public.parties().to_be_bytes());
        out.extend_from_slice(&self.share.id.0.to_be_bytes());
        let mut s = S::scalar_to_bytes(&self.share.secret);
        out.extend_from_slice(&s);
        s.zeroize();
        out.extend_from_slice(self.public.group_key.enc.as_bytes());
        for (_, _, enc) in &self.public.verifying_shares {
            out.extend_from_slice(enc.as_bytes());
        }
        debug_assert_eq!(out.len(), out.capacity());
        out
    }

    /// Whether `b` starts like [`PartyKey::to_bytes`] output (rather than a [`KeySet`]'s).
    pub fn is_party_encoding(b: &[u8]) -> bool {
        b.starts_with(b"TSKP")
    }

    /// Parses [`PartyKey::to_bytes`] output, validating every encoding as
    /// [`KeySet::from_bytes`] does. The bytes are expected to come from an authenticated store.
    pub fn from_bytes(b: &[u8]) -> Result<Self, Error> {
        let pl = S::POINT_LEN;
        if b.len() < 44 + pl || &b[..4] != b"TSKP" || b[4] != 1 {
            return Err(Error::Malformed("party key header"));
        }
        if b[5] != S::SUITE_ID {
            return Err(Error::Malformed("party key is for another suite"));
        }
        let threshold = u16::from_be_bytes([b[6], b[7]]);
        let parties = u16::from_be_bytes([b[8], b[9]]);
        validate_params(threshold, parties)?;
        let id = Identifier::new(u16::from_be_bytes([b[10], b[11]]))?;
        if id.0 > parties {
            return Err(Error::UnknownIdentifier(id.0));
        }
        let mut secret = S::scalar_from_bytes(&b[12..44]).ok_or(Error::InvalidSecretKey)?;
        let group_key = GroupKey::<S>::from_bytes(&b[44..44 + pl])?;
        let body = &b[44 + pl..];
        if body.len() != usize::from(parties) * pl {
            secret.zeroize();
            return Err(Error::Malformed("party key length"));
        }
        let mut verifying_shares = Vec::with_capacity(usize::from(parties));
        for (k, enc) in body.chunks_exact(pl).enumerate() {
            let Some(y) = S::point_from_bytes(enc) else {
                secret.zeroize();
                return Err(Error::Malformed("verifying share"));
            };
            verifying_shares.push((Identifier(k as u16 + 1), y, PointBytes::new(enc)));
        }
        let verifying_share = verifying_shares[usize::from(id.0) - 1].1;
        Ok(Self {
            share: KeyShare {
                id,
                secret,
                verifying_share,
                group_key,
                threshold,
            },
            public: PublicKeyPackage {
                group_key,
                verifying_shares,
                threshold,
            },
        })
    }
}

/// Assurance tests: accessors, encodings, redaction and wiping of the key types (each kills the
/// `cargo mutants` survivors named in its doc, see `docs/assurance.md`).
#[cfg(test)]
mod assurance {
    use super::*;
    use crate::{Ed25519Sha512, Secp256k1Sha256, Secp256k1Tr};
    use backend_cpu::CpuBackend;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn split<S: Suite>(t: u16, n: u16) -> KeySet<S> {
        let mut rng = ChaCha20Rng::seed_from_u64(u64::from(t) * 100 + u64::from(n));
        let secret = S::G::random_scalar(&mut rng);
        KeySet::split(&CpuBackend::new(), &secret, t, n, &mut rng).unwrap()
    }

    /// Kills `Display for Identifier` emptied.
    #[test]
    fn identifier_displays_as_its_integer() {
        assert_eq!(Identifier::new(7).unwrap().to_string(), "7");
        assert_eq!(Identifier::new(255).unwrap().to_string(), "255");
    }

    /// `t = n` and `n = MAX_PARTIES` are valid; one past either bound is not. Kills
    /// `threshold > parties` → `>=` in `validate_params`.
    #[test]
    fn params_accept_n_of_n_and_refuse_one_past_each_bound() {
        assert_eq!(validate_params(3, 3), Ok(()));
        assert_eq!(validate_params(1, 1), Ok(()));
        assert_eq!(validate_params(MAX_PARTIES, MAX_PARTIES), Ok(()));
        assert_eq!(
            validate_params(4, 3),
            Err(Error::InvalidThreshold {
                threshold: 4,
                parties: 3
            })
        );
        assert_eq!(validate_params(0, 3), Err(Error::ZeroThreshold));
        assert_eq!(
            validate_params(2, MAX_PARTIES + 1),
            Err(Error::TooManyParties {
                parties: MAX_PARTIES + 1,
                max: MAX_PARTIES
            })
        );
        let set = split::<Ed25519Sha512>(3, 3);
        assert_eq!(set.threshold(), 3);
    }

    fn group_key_encodes_canonically<S: Suite>(len: usize) {
        let set = split::<S>(2, 3);
        let gk = set.public_package().group_key();
        let enc = gk.to_bytes();
        assert_eq!(enc.len(), len);
        assert_eq!(enc, set.public_key());
        assert_eq!(S::point_from_bytes(&enc), Some(gk.point()));
        assert_eq!(GroupKey::<S>::from_bytes(&enc).unwrap(), *gk);
        let hex: String = enc.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(format!("{gk:?}"), format!("GroupKey({hex})"));
    }

    /// The group key's encoding is the point's canonical encoding and decodes back to it; its
    /// `Debug` shows that encoding. Kills `GroupKey::to_bytes` → `vec![]`, `vec![0]`,
    /// `vec![1]` and the emptied `Debug for GroupKey`.
    #[test]
    fn group_key_encodes_canonically_ed25519() {
        group_key_encodes_canonically::<Ed25519Sha512>(32);
    }

    /// As [`group_key_encodes_canonically_ed25519`] for secp256k1 (33-byte compressed).
    #[test]
    fn group_key_encodes_canonically_secp256k1() {
        group_key_encodes_canonically::<Secp256k1Sha256>(33);
    }

    /// Every share and the public package report the threshold they were made with. Kills
    /// `KeyShare::threshold` and `PublicKeyPackage::threshold` → 0 or 1.
    #[test]
    fn shares_and_package_report_their_threshold() {
        for (t, n) in [(2, 3), (3, 5)] {
            let set = split::<Secp256k1Tr>(t, n);
            assert_eq!(set.public_package().threshold(), t);
            assert_eq!(set.public_package().parties(), n);
            for s in set.shares() {
                assert_eq!(s.threshold(), t);
            }
        }
    }

    /// A share's `Debug` names its id, group key and threshold and redacts the secret. Kills
    /// the emptied `Debug for KeyShare`.
    #[test]
    fn key_share_debug_redacts_the_secret() {
        let set = split::<Ed25519Sha512>(2, 3);
        let s = &set.shares()[1];
        let shown = format!("{s:?}");
        let gk = format!("{:?}", s.group_key());
        assert_eq!(
            shown,
            format!(
                "KeyShare {{ id: Identifier(2), secret: \"<redacted>\", group_key: {gk}, threshold: 2 }}"
            )
        );
        assert!(!shown.contains(&format!("{:?}", s.secret)));
    }

    /// Shares on a polynomial through the origin (group key the identity) are refused even
    /// when they are consistent, and so is a share off the others' polynomial. Kills `||` →
    /// `&&` in `from_secret_shares`'s final check.
    #[test]
    fn secret_shares_of_a_zero_key_or_off_the_polynomial_are_refused() {
        type G = <Ed25519Sha512 as Suite>::G;
        let accel = CpuBackend::new();
        let a = G::scalar_from_u64(5);
        let id = |v| Identifier::new(v).unwrap();
        // f(x) = a·x: f(0) = 0.
        let zero_key = [(id(1), a), (id(2), a + a)];
        assert_eq!(
            KeySet::<Ed25519Sha512>::from_secret_shares(&accel, 2, &zero_key, None).unwrap_err(),
            Error::InconsistentKeyShares
        );
        // f(x) = 1 + a·x at 1 and 2, but the third share is off by one.
        let one = G::scalar_one();
        let off = [
            (id(1), one + a),
            (id(2), one + a + a),
            (id(3), one + a + a + a + one),
        ];
        assert_eq!(
            KeySet::<Ed25519Sha512>::from_secret_shares(&accel, 2, &off, None).unwrap_err(),
            Error::InconsistentKeyShares
        );
        let on = [
            (id(1), one + a),
            (id(2), one + a + a),
            (id(3), one + a + a + a),
        ];
        assert!(KeySet::<Ed25519Sha512>::from_secret_shares(&accel, 2, &on, None).is_ok());
    }

    /// A stored key set needs its magic, version and minimum length; each alone is refused.
    /// Kills `||` → `&&` in `KeySet::from_bytes`'s header check.
    #[test]
    fn key_set_header_is_checked_field_by_field() {
        let set = split::<Ed25519Sha512>(2, 3);
        let good = set.to_bytes();
        assert!(KeySet::<Ed25519Sha512>::from_bytes(&good).is_ok());
        let header = Err(Error::Malformed("key set header"));
        let mut magic = good.to_vec();
        magic[3] ^= 1;
        assert_eq!(
            KeySet::<Ed25519Sha512>::from_bytes(&magic).map(|_| ()),
            header
        );
        let mut version = good.to_vec();
        version[4] = 2;
        assert_eq!(
            KeySet::<Ed25519Sha512>::from_bytes(&version).map(|_| ()),
            header
        );
        let pl = <Ed25519Sha512 as Suite>::POINT_LEN;
        let short = &good[..10 + pl - 1];
        assert_eq!(
            KeySet::<Ed25519Sha512>::from_bytes(short).map(|_| ()),
            header
        );
        // A whole header without the share records fails on the length, not the header.
        assert_eq!(
            KeySet::<Ed25519Sha512>::from_bytes(&good[..10 + pl]).map(|_| ()),
            Err(Error::Malformed("key set length"))
        );
    }

    /// A party key's encoding is recognised as one, and its magic, version and minimum length
    /// are each checked. Kills `is_party_encoding` → `true`/`false` and `||` → `&&`, `<` →
    /// `<=` in `PartyKey::from_bytes`'s header check.
    #[test]
    fn party_key_header_is_checked_field_by_field() {
        let set = split::<Ed25519Sha512>(2, 3);
        let party = PartyKey::from_set(&set, Identifier::new(2).unwrap()).unwrap();
        let good = party.to_bytes();
        assert!(PartyKey::<Ed25519Sha512>::is_party_encoding(&good));
        assert!(!PartyKey::<Ed25519Sha512>::is_party_encoding(
            &set.to_bytes()
        ));
        assert_eq!(
            PartyKey::<Ed25519Sha512>::from_bytes(&good)
                .unwrap()
                .to_bytes(),
            good
        );
        let header = Err(Error::Malformed("party key header"));
        let mut magic = good.to_vec();
        magic[3] ^= 1;
        assert_eq!(
            PartyKey::<Ed25519Sha512>::from_bytes(&magic).map(|_| ()),
            header
        );
        let mut version = good.to_vec();
        version[4] = 2;
        assert_eq!(
            PartyKey::<Ed25519Sha512>::from_bytes(&version).map(|_| ()),
            header
        );
        let pl = <Ed25519Sha512 as Suite>::POINT_LEN;
        assert_eq!(
            PartyKey::<Ed25519Sha512>::from_bytes(&good[..44 + pl - 1]).map(|_| ()),
            header
        );
        assert_eq!(
            PartyKey::<Ed25519Sha512>::from_bytes(&good[..44 + pl]).map(|_| ()),
            Err(Error::Malformed("party key length"))
        );
    }

    /// `wipe` zeroizes the secret share and dropping a share runs it. Kills the emptied
    /// `KeyShare::wipe` and `Drop for KeyShare`.
    #[test]
    fn key_share_is_wiped_on_drop() {
        let set = split::<Secp256k1Tr>(2, 3);
        let mut s = set.shares()[0].clone();
        assert_ne!(s.secret, <Secp256k1Tr as Suite>::G::scalar_zero());
        s.wipe();
        assert_eq!(s.secret, <Secp256k1Tr as Suite>::G::scalar_zero());
        let s = set.shares()[1].clone();
        let before = crate::probe::wipes("KeyShare");
        drop(s);
        assert_eq!(crate::probe::wipes("KeyShare"), before + 1);
    }
}
