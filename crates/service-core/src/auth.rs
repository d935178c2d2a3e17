//! Who is calling and what they may do: authentication modes, credentials, clients and their
//! policies. Default deny: a client may use a key only when its policy names the key (or
//! `*`) or it created the key, and only for the schemes its policy names; only admin clients
//! create or import keys.
//!
//! API adapters turn what the transport carries (an `authorization: Bearer` header, a
//! verified client certificate) into a [`Credential`]; [`crate::App::authenticate`] turns that
//! into a [`Caller`] through the [`Clients`] port, whose adapter keeps the registered clients
//! (`signer-service`'s access file).

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};

use rand_core::{OsRng, RngCore};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::Scheme;
use crate::ports::KeyRecord;

/// How clients prove who they are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthMode {
    /// No authentication: every caller is the local operator. Only for loopback listeners.
    #[default]
    None,
    /// `authorization: Bearer <api key>` on every request.
    ApiKey,
    /// The client certificate of a mutual-TLS connection.
    Mtls,
}

impl AuthMode {
    /// The mode's name in configuration (`none`, `api-key`, `mtls`).
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMode::None => "none",
            AuthMode::ApiKey => "api-key",
            AuthMode::Mtls => "mtls",
        }
    }
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(AuthMode::None),
            "api-key" => Ok(AuthMode::ApiKey),
            "mtls" => Ok(AuthMode::Mtls),
            other => Err(format!(
                "unknown auth mode `{other}`; expected none, api-key or mtls"
            )),
        }
    }
}

impl std::fmt::Display for AuthMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a request carried to identify its client.
pub enum Credential {
    /// Nothing.
    None,
    /// An API key from an `authorization: Bearer` header.
    ApiKey(Zeroizing<String>),
    /// The identities (subjectAltName DNS names, then the subject's common name) of the
    /// client certificate the TLS layer verified.
    Certificate(Vec<String>),
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::None => f.write_str("Credential::None"),
            Credential::ApiKey(_) => f.write_str("Credential::ApiKey(<redacted>)"),
            Credential::Certificate(names) => f
                .debug_tuple("Credential::Certificate")
                .field(names)
                .finish(),
        }
    }
}

/// The wildcard of a policy's key or scheme list.
pub const ANY: &str = "*";

/// What a client may do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// May create and import keys.
    pub admin: bool,
    /// Key ids the client may see and sign with, or `["*"]` for every key. Keys the client
    /// created are always its own.
    pub keys: Vec<String>,
    /// Schemes (`ed25519`, `bip340`, `ecdsa`) the client may use, or `["*"]`.
    pub schemes: Vec<String>,
    /// Requests per second the client may send (token bucket), or unlimited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_per_s: Option<u32>,
}

impl Policy {
    /// Everything: the local operator's policy when authentication is off.
    pub fn everything() -> Self {
        Self {
            admin: true,
            keys: vec![ANY.to_owned()],
            schemes: vec![ANY.to_owned()],
            rate_per_s: None,
        }
    }

    /// Whether the policy names `key_id` (or every key).
    pub fn names_key(&self, key_id: &str) -> bool {
        self.keys.iter().any(|k| k == ANY || k == key_id)
    }

    /// Whether the policy allows `scheme`.
    pub fn allows_scheme(&self, scheme: Scheme) -> bool {
        self.schemes
            .iter()
            .any(|s| s == ANY || s.parse::<Scheme>().is_ok_and(|allowed| allowed == scheme))
    }

    /// Checks the lists: key ids non-empty and at most 64 bytes, scheme names known.
    pub fn validate(&self) -> Result<(), String> {
        for k in &self.keys {
            if k.is_empty() || k.len() > crate::app::MAX_KEY_ID_BYTES {
                return Err(format!("key id `{k}` must be 1 to 64 bytes"));
            }
        }
        for s in &self.schemes {
            if s != ANY {
                s.parse::<Scheme>().map_err(|e| e.to_string())?;
            }
        }
        if self.rate_per_s == Some(0) {
            return Err("a rate must be at least 1 request per second".into());
        }
        Ok(())
    }
}

/// An authenticated client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    /// The client's registered name (the certificate identity under mTLS).
    pub name: String,
    /// What it may do.
    pub policy: Policy,
}

/// The name every request has when authentication is off.
pub const OPERATOR: &str = "local";

impl Caller {
    /// The local operator (authentication off): may do everything.
    pub fn operator() -> Self {
        Self {
            name: OPERATOR.to_owned(),
            policy: Policy::everything(),
        }
    }

    /// Whether the caller may see and sign with the key `rec`: its policy names the key (or
    /// the caller created it) and allows its scheme.
    pub fn may_use(&self, rec: &KeyRecord) -> bool {
        self.may_use_key(&rec.key_id, rec.scheme, &rec.owner)
    }

    /// [`Caller::may_use`] for the key `key_id` of `scheme` created by `owner`.
    pub fn may_use_key(&self, key_id: &str, scheme: Scheme, owner: &str) -> bool {
        let named = self.policy.names_key(key_id) || (!owner.is_empty() && owner == self.name);
        named && self.policy.allows_scheme(scheme)
    }
}

/// The registered clients (the `Clients` port).
pub trait Clients: Send + Sync + std::fmt::Debug {
    /// The client whose API key hashes to `hash` (see [`api_key_hash`]); revoked keys are
    /// not found.
    fn by_api_key(&self, hash: &[u8; 32]) -> Option<Arc<Caller>>;
    /// The certificate client registered under `name`.
    fn by_certificate(&self, name: &str) -> Option<Arc<Caller>>;
    /// The active client named `name`, whatever its credential: what a co-signing node of a
    /// cluster checks the client a coordinating node names against.
    fn by_name(&self, name: &str) -> Option<Arc<Caller>>;
}

/// No registered clients (authentication off).
#[derive(Debug, Default)]
pub struct NoClients;

impl Clients for NoClients {
    fn by_api_key(&self, _hash: &[u8; 32]) -> Option<Arc<Caller>> {
        None
    }
    fn by_certificate(&self, _name: &str) -> Option<Arc<Caller>> {
        None
    }
    fn by_name(&self, _name: &str) -> Option<Arc<Caller>> {
        None
    }
}

/// The authentication settings of an [`crate::App`].
#[derive(Clone, Debug)]
pub struct Auth {
    /// The mode.
    pub mode: AuthMode,
    /// The registered clients.
    pub clients: Arc<dyn Clients>,
}

impl Auth {
    /// Authentication off: every request is the local operator's.
    pub fn none() -> Self {
        Self {
            mode: AuthMode::None,
            clients: Arc::new(NoClients),
        }
    }
}

/// One token bucket per client with a rate in its policy (GCRA, burst = one second's worth).
#[derive(Debug, Default)]
pub struct RateLimits {
    buckets: std::sync::Mutex<HashMap<String, (u32, Arc<DefaultDirectRateLimiter>)>>,
}

impl RateLimits {
    /// Admits one request of `caller`, or says how long until the next one would be admitted.
    pub fn admit(&self, caller: &Caller) -> Result<(), crate::Error> {
        let Some(rate) = caller.policy.rate_per_s.and_then(NonZeroU32::new) else {
            return Ok(());
        };
        let bucket = {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let entry = buckets.entry(caller.name.clone()).or_insert_with(|| {
                (
                    rate.get(),
                    Arc::new(RateLimiter::direct(Quota::per_second(rate))),
                )
            });
            if entry.0 != rate.get() {
                // The policy's rate changed (the access file was edited): a fresh bucket.
                *entry = (
                    rate.get(),
                    Arc::new(RateLimiter::direct(Quota::per_second(rate))),
                );
            }
            Arc::clone(&entry.1)
        };
        bucket
            .check()
            .map_err(|not_until| crate::Error::RateLimited {
                client: caller.name.clone(),
                rate_per_s: rate.get(),
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            })
    }
}

/// The API key of an `authorization` header value `Bearer <key>` (scheme case-insensitive),
/// as every API adapter reads it.
pub fn bearer(header: &str) -> Option<Zeroizing<String>> {
    let (scheme, key) = header.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| Zeroizing::new(key.trim().to_owned()))
}

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "tsk_";

/// A new API key: the prefix and 256 random bits as hex. Shown once; only its hash is kept.
pub fn new_api_key() -> Zeroizing<String> {
    let mut bytes = Zeroizing::new([0u8; 32]);
    OsRng.fill_bytes(bytes.as_mut_slice());
    Zeroizing::new(format!("{API_KEY_PREFIX}{}", hex::encode(bytes.as_slice())))
}

/// What is stored of an API key: SHA-256 under a domain tag. The key carries 256 random bits,
/// so a fast hash is enough; it is never compared in the clear.
pub fn api_key_hash(key: &str) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(b"tessera/v1/api-key\0");
    h.update(key.as_bytes());
    h.finalize().into()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn record(key_id: &str, scheme: Scheme, owner: &str) -> KeyRecord {
        KeyRecord {
            key_id: key_id.into(),
            scheme,
            threshold: 2,
            parties: 3,
            public_key: vec![],
            label: String::new(),
            created_at_ms: 0,
            owner: owner.into(),
            sealed: vec![],
            mac: Vec::new(),
        }
    }

    fn caller(keys: &[&str], schemes: &[&str]) -> Caller {
        Caller {
            name: "alice".into(),
            policy: Policy {
                admin: false,
                keys: keys.iter().map(|s| (*s).to_owned()).collect(),
                schemes: schemes.iter().map(|s| (*s).to_owned()).collect(),
                rate_per_s: None,
            },
        }
    }

    #[test]
    fn policies_deny_by_default() {
        let none = caller(&[], &["*"]);
        assert!(!none.may_use(&record("k1", Scheme::Ed25519, "")));
        assert!(!none.may_use(&record("k1", Scheme::Ed25519, "bob")));
        assert!(
            none.may_use(&record("k1", Scheme::Ed25519, "alice")),
            "own key"
        );

        let one = caller(&["k1"], &["ed25519"]);
        assert!(one.may_use(&record("k1", Scheme::Ed25519, "")));
        assert!(!one.may_use(&record("k2", Scheme::Ed25519, "")));
        assert!(!one.may_use(&record("k1", Scheme::Bip340, "")), "scheme");
        assert!(
            !one.may_use(&record("k3", Scheme::Bip340, "alice")),
            "own key, scheme not allowed"
        );

        let all = caller(&["*"], &["*"]);
        assert!(all.may_use(&record("anything", Scheme::EcdsaSecp256k1, "")));
        assert!(Caller::operator().may_use(&record("k", Scheme::Bip340, "")));
    }

    #[test]
    fn policies_are_validated() {
        assert!(caller(&["*"], &["*"]).policy.validate().is_ok());
        assert!(caller(&[""], &["*"]).policy.validate().is_err());
        assert!(caller(&["k"], &["rsa"]).policy.validate().is_err());
        let mut p = Policy::everything();
        p.rate_per_s = Some(0);
        assert!(p.validate().is_err());
    }

    #[test]
    fn a_client_with_a_rate_gets_that_many_requests_per_second() {
        let limits = RateLimits::default();
        let mut c = caller(&["*"], &["*"]);
        for _ in 0..100 {
            limits.admit(&c).unwrap();
        }
        c.policy.rate_per_s = Some(3);
        for _ in 0..3 {
            limits.admit(&c).unwrap();
        }
        match limits.admit(&c) {
            Err(crate::Error::RateLimited {
                client,
                rate_per_s: 3,
                retry_after,
            }) => {
                assert_eq!(client, "alice");
                assert!(retry_after > std::time::Duration::ZERO);
                assert!(retry_after <= std::time::Duration::from_millis(334));
            }
            other => panic!("{other:?}"),
        }
        let mut other = c.clone();
        other.name = "bob".into();
        limits.admit(&other).unwrap();
        c.policy.rate_per_s = Some(4);
        limits.admit(&c).unwrap();
    }

    #[test]
    fn api_keys_are_random_and_hashed_with_a_domain_tag() {
        let (a, b) = (new_api_key(), new_api_key());
        assert_ne!(*a, *b);
        assert!(a.starts_with(API_KEY_PREFIX) && a.len() == 4 + 64);
        assert_ne!(api_key_hash(&a), api_key_hash(&b));
        let plain: [u8; 32] = Sha256::digest(a.as_bytes()).into();
        assert_ne!(api_key_hash(&a), plain);
        assert!(!format!("{:?}", Credential::ApiKey(a.clone())).contains(a.as_str()));
    }
}
