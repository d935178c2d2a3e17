//! The broadcast port of `service-core` ([`service_core::chain::Broadcaster`]) over each chain's
//! JSON-RPC: `eth_sendRawTransaction` (Ethereum), `sendrawtransaction` (Bitcoin Core) and
//! `sendTransaction` (Solana), one configured node per chain, over HTTP/1.1 or HTTPS. An
//! `https://` node's certificate must chain to the operating system's trust store or to the
//! certificates of a configured PEM file ([`TrustRoots`]) and name the URL's host (rustls).
//!
//! Every call has a deadline; transport failures (refused connections, timeouts, HTTP 5xx
//! without a JSON-RPC answer) are retried twice with a short backoff. After
//! [`BreakerSettings::trip_after`] consecutive failed calls a node's circuit breaker opens and
//! broadcasts to that chain fail at once for [`BreakerSettings::cooldown`]; then one call is
//! let through, and its success closes the breaker. A JSON-RPC error is the node's answer, not
//! a failure of the node: it never trips the breaker.
//!
//! Resubmission is idempotent: a node's "already known" answers (Ethereum's `already known`
//! or `nonce too low` once the transaction is found by its hash, Bitcoin Core's
//! `RPC_VERIFY_ALREADY_IN_CHAIN` and `txn-already-in-mempool`, Solana's `AlreadyProcessed`) are
//! answered with the transaction's own id, so a retried broadcast is counted once by the chain
//! and reported as success.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use serde_json::{Value, json};
use service_core::chain::{BroadcastError, Broadcaster, ChainKind, Signed};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::TlsConnector;

/// Largest JSON-RPC answer read from a node.
const MAX_ANSWER_BYTES: usize = 1 << 20;
/// Retries of a call that failed in transport (so at most three attempts).
const RETRIES: u32 = 2;
/// Wait before the first retry; doubled for the next.
const BACKOFF: Duration = Duration::from_millis(100);

/// When a node's circuit breaker opens and for how long.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Consecutive failed broadcasts that open the breaker.
    pub trip_after: u32,
    /// How long an open breaker refuses calls before letting one through.
    pub cooldown: Duration,
}

/// A chain node's JSON-RPC endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeConfig {
    /// `http://[user:password@]host[:port][/path]` or the same with `https://` (Bitcoin Core
    /// takes its RPC credentials as HTTP basic authentication). Without a port: 443 for
    /// https, the chain's usual RPC port for http (8545, 8332, 8899).
    pub url: String,
    /// Deadline of each attempt (connect, TLS handshake, send, answer).
    pub timeout: Duration,
    /// What an `https://` node's certificate must chain to; unused for `http://`.
    pub trust: TrustRoots,
}

/// The certificate authorities trusted for `https://` nodes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum TrustRoots {
    /// The operating system's trust store, read when the broadcaster is built.
    #[default]
    System,
    /// Only the certificates of this PEM text (for example a private CA's).
    Pem(Vec<u8>),
}

/// Why a node configuration was refused.
#[derive(Debug, thiserror::Error)]
#[error("{chain} node `{url}`: {problem}")]
pub struct ConfigError {
    /// The chain.
    pub chain: &'static str,
    /// The URL as given, with any password replaced by `***`.
    pub url: String,
    /// What is wrong.
    pub problem: String,
}

struct Endpoint {
    /// `host:port` to connect to.
    address: String,
    /// For `https://`: the name the node's certificate must carry.
    tls_name: Option<ServerName<'static>>,
    /// `Host` header value.
    host: String,
    path: String,
    /// `Authorization` header value, when the URL carries credentials.
    authorization: Option<String>,
}

/// The node's address and path; the credentials are never printed.
impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("address", &self.address)
            .field("tls_name", &self.tls_name)
            .field("path", &self.path)
            .field(
                "authorization",
                &self.authorization.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

#[derive(Debug, Default)]
struct Breaker {
    failures: u32,
    open_until: Option<Instant>,
}

struct Node {
    chain: ChainKind,
    endpoint: Endpoint,
    /// For `https://` nodes: the connector and the name the certificate must carry.
    tls: Option<(TlsConnector, ServerName<'static>)>,
    timeout: Duration,
    breaker: Mutex<Breaker>,
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("chain", &self.chain)
            .field("endpoint", &self.endpoint)
            .field("tls", &self.tls.is_some())
            .field("timeout", &self.timeout)
            .field("breaker", &self.breaker)
            .finish()
    }
}

/// The rustls client configuration for `https://` nodes trusting `trust`.
fn tls_connector(trust: &TrustRoots) -> Result<TlsConnector, String> {
    let mut roots = rustls::RootCertStore::empty();
    match trust {
        TrustRoots::System => {
            let found = rustls_native_certs::load_native_certs();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or_else(String::new, |e| format!(" ({e})"));
                return Err(format!(
                    "no trusted certificate authority found in the system's trust store{why}; \
                     install the system's CA certificates or set chains.ca_file"
                ));
            }
        }
        TrustRoots::Pem(pem) => {
            for cert in CertificateDer::pem_slice_iter(pem) {
                let cert = cert.map_err(|e| format!("chains.ca_file: {e}"))?;
                roots
                    .add(cert)
                    .map_err(|e| format!("chains.ca_file: {e}"))?;
            }
            if roots.is_empty() {
                return Err("chains.ca_file holds no PEM certificate".to_owned());
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(TlsConnector::from(Arc::new(config)))
}

/// The JSON-RPC broadcaster the server wires in when `chains.*_rpc_url` is set.
#[derive(Debug)]
pub struct JsonRpcBroadcaster {
    nodes: BTreeMap<&'static str, Node>,
    breaker: BreakerSettings,
}

fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn endpoint(chain: ChainKind, url: &str) -> Result<Endpoint, ConfigError> {
    let err = |problem: &str| ConfigError {
        chain: chain.as_str(),
        url: redacted(url),
        problem: problem.to_owned(),
    };
    let (rest, https) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, false)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, true)
    } else {
        return Err(err("must start with http:// or https://"));
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    if hostport.is_empty() {
        return Err(err("names no host"));
    }
    let default_port = match chain {
        _ if https => 443,
        ChainKind::Ethereum => 8545,
        ChainKind::Bitcoin => 8332,
        ChainKind::Solana => 8899,
    };
    // `[v6]:port` or `host:port`; a bare `[v6]` or `host` takes the chain's default port.
    let port = match hostport.rsplit_once(']') {
        Some((_, after)) => after.strip_prefix(':'),
        None => hostport.rsplit_once(':').map(|(_, p)| p),
    };
    let address = match port {
        Some(p) if p.parse::<u16>().is_err() => {
            return Err(err("has a port that is not a number from 0 to 65535"));
        }
        Some(_) => hostport.to_owned(),
        None => format!("{hostport}:{default_port}"),
    };
    let authorization = userinfo.map(|u| format!("Basic {}", BASE64.encode(u.as_bytes())));
    let tls_name = if https {
        let host = match port {
            Some(p) => &hostport[..hostport.len() - p.len() - 1],
            None => hostport,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(
            ServerName::try_from(host.to_owned())
                .map_err(|_| err("names a host that is neither a DNS name nor an IP address"))?,
        )
    } else {
        None
    };
    Ok(Endpoint {
        address,
        tls_name,
        host: hostport.to_owned(),
        path: path.to_owned(),
        authorization,
    })
}

/// Checks a node URL as [`JsonRpcBroadcaster::new`] would, without reading any certificate.
///
/// # Errors
/// What is wrong with the URL.
pub fn check_node_url(chain: ChainKind, url: &str) -> Result<(), ConfigError> {
    endpoint(chain, url).map(|_| ())
}

/// How an attempt ended.
enum Attempt {
    /// The node answered with a JSON-RPC result.
    Result(Value),
    /// The node answered with a JSON-RPC error: `(code, message)`.
    RpcError(i64, String),
    /// The node could not be reached or gave no JSON-RPC answer.
    Transport(String),
}

impl Node {
    async fn post(&self, body: &Value) -> Attempt {
        match tokio::time::timeout(self.timeout, self.post_inner(body)).await {
            Ok(a) => a,
            Err(_) => Attempt::Transport(format!("no answer within {:?}", self.timeout)),
        }
    }

    async fn post_inner(&self, body: &Value) -> Attempt {
        let stream = match tokio::net::TcpStream::connect(&self.endpoint.address).await {
            Ok(s) => s,
            Err(e) => return Attempt::Transport(format!("connecting: {e}")),
        };
        if let Err(e) = stream.set_nodelay(true) {
            return Attempt::Transport(format!("TCP_NODELAY: {e}"));
        }
        match &self.tls {
            None => self.exchange(stream, body).await,
            Some((tls, name)) => match tls.connect(name.clone(), stream).await {
                Ok(s) => self.exchange(s, body).await,
                Err(e) => Attempt::Transport(format!("TLS handshake: {e}")),
            },
        }
    }

    /// One JSON-RPC request and its answer over a connected stream.
    async fn exchange<S>(&self, stream: S, body: &Value) -> Attempt
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (mut send, conn) =
            match hyper::client::conn::http1::handshake(TokioIo::new(stream)).await {
                Ok(x) => x,
                Err(e) => return Attempt::Transport(format!("HTTP handshake: {e}")),
            };
        let driver = tokio::spawn(conn);
        let mut req = hyper::Request::post(self.endpoint.path.as_str())
            .header(hyper::header::HOST, self.endpoint.host.as_str())
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(a) = &self.endpoint.authorization {
            req = req.header(hyper::header::AUTHORIZATION, a.as_str());
        }
        let req = match req.body(Full::new(Bytes::from(body.to_string()))) {
            Ok(r) => r,
            Err(e) => return Attempt::Transport(format!("building the request: {e}")),
        };
        let answer = async {
            let resp = send
                .send_request(req)
                .await
                .map_err(|e| format!("sending: {e}"))?;
            let status = resp.status();
            let bytes = Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| format!("reading the answer: {e}"))?
                .to_bytes();
            Ok::<_, String>((status, bytes))
        }
        .await;
        driver.abort();
        let (status, bytes) = match answer {
            Ok(a) => a,
            Err(e) => return Attempt::Transport(e),
        };
        // Bitcoin Core answers RPC errors with HTTP 500 and a JSON-RPC body: the body decides.
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(v) if !v["error"].is_null() => Attempt::RpcError(
                v["error"]["code"].as_i64().unwrap_or(0),
                v["error"]["message"]
                    .as_str()
                    .map_or_else(|| v["error"].to_string(), str::to_owned),
            ),
            Ok(v) if v.get("result").is_some() => Attempt::Result(v["result"].clone()),
            _ => Attempt::Transport(format!(
                "HTTP {status} without a JSON-RPC answer ({} bytes)",
                bytes.len()
            )),
        }
    }

    /// One JSON-RPC call with the breaker and the retries.
    async fn call(
        &self,
        settings: BreakerSettings,
        method: &str,
        params: Value,
    ) -> Result<Result<Value, (i64, String)>, BroadcastError> {
        self.admit()?;
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut last = String::new();
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                tokio::time::sleep(BACKOFF * 2u32.pow(attempt - 1)).await;
            }
            match self.post(&body).await {
                Attempt::Result(v) => {
                    self.settle(true, settings);
                    return Ok(Ok(v));
                }
                Attempt::RpcError(code, message) => {
                    self.settle(true, settings);
                    return Ok(Err((code, message)));
                }
                Attempt::Transport(e) => last = e,
            }
        }
        self.settle(false, settings);
        Err(BroadcastError::Unavailable {
            chain: self.chain,
            problem: format!("{method} failed {} times, last: {last}", RETRIES + 1),
        })
    }

    fn admit(&self) -> Result<(), BroadcastError> {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        match b.open_until {
            Some(until) if until > now => Err(BroadcastError::Unavailable {
                chain: self.chain,
                problem: format!(
                    "circuit breaker open after {} failed calls; next try in {} ms",
                    b.failures,
                    (until - now).as_millis()
                ),
            }),
            Some(_) => {
                // Half-open: this call is the trial; the others wait for its outcome.
                b.open_until = Some(now + Duration::from_secs(3600));
                Ok(())
            }
            None => Ok(()),
        }
    }

    fn settle(&self, ok: bool, settings: BreakerSettings) {
        let mut b = self.breaker.lock().unwrap_or_else(|e| e.into_inner());
        if ok {
            *b = Breaker::default();
        } else {
            b.failures += 1;
            if b.failures >= settings.trip_after {
                b.open_until = Some(Instant::now() + settings.cooldown);
            } else {
                b.open_until = None;
            }
        }
    }
}

/// What to send for a signed transaction, and its own id.
fn request(signed: &Signed) -> Result<(ChainKind, &'static str, Value, String), BroadcastError> {
    match signed {
        Signed::EthereumTransaction {
            signed_tx, tx_hash, ..
        } => Ok((
            ChainKind::Ethereum,
            "eth_sendRawTransaction",
            json!([format!("0x{}", hex::encode(signed_tx))]),
            format!("0x{}", hex::encode(tx_hash)),
        )),
        Signed::BitcoinPsbt {
            transaction: Some(tx),
            txid: Some(txid),
            ..
        } => Ok((
            ChainKind::Bitcoin,
            "sendrawtransaction",
            json!([hex::encode(tx)]),
            txid.clone(),
        )),
        Signed::BitcoinPsbt { .. } => Err(BroadcastError::Rejected {
            chain: ChainKind::Bitcoin,
            reason: "the PSBT still has inputs without signatures; nothing to broadcast".into(),
        }),
        Signed::SolanaTransaction {
            transaction,
            txid,
            complete: true,
            ..
        } => Ok((
            ChainKind::Solana,
            "sendTransaction",
            json!([BASE64.encode(transaction), {"encoding": "base64"}]),
            txid.clone(),
        )),
        Signed::SolanaTransaction { .. } => Err(BroadcastError::Rejected {
            chain: ChainKind::Solana,
            reason: "the transaction lacks other required signatures; nothing to broadcast".into(),
        }),
        Signed::EthereumMessage { .. } => Err(BroadcastError::Rejected {
            chain: ChainKind::Ethereum,
            reason: "a signed message is not a transaction".into(),
        }),
    }
}

/// Whether a JSON-RPC error says the node already has this very transaction.
fn already_known(chain: ChainKind, code: i64, message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    match chain {
        ChainKind::Ethereum => {
            m.contains("already known")
                || m.contains("known transaction")
                || m.contains("already imported")
                || m.contains("nonce too low")
        }
        // RPC_VERIFY_ALREADY_IN_CHAIN = -27.
        ChainKind::Bitcoin => {
            code == -27 || m.contains("txn-already-known") || m.contains("txn-already-in-mempool")
        }
        ChainKind::Solana => m.contains("alreadyprocessed") || m.contains("already been processed"),
    }
}

impl JsonRpcBroadcaster {
    /// A broadcaster for the configured nodes.
    pub fn new(
        nodes: Vec<(ChainKind, NodeConfig)>,
        breaker: BreakerSettings,
    ) -> Result<Self, ConfigError> {
        let mut map = BTreeMap::new();
        for (chain, cfg) in nodes {
            let endpoint = endpoint(chain, &cfg.url)?;
            let tls = match &endpoint.tls_name {
                Some(name) => Some((
                    tls_connector(&cfg.trust).map_err(|problem| ConfigError {
                        chain: chain.as_str(),
                        url: redacted(&cfg.url),
                        problem,
                    })?,
                    name.clone(),
                )),
                None => None,
            };
            map.insert(
                chain.as_str(),
                Node {
                    chain,
                    endpoint,
                    tls,
                    timeout: cfg.timeout,
                    breaker: Mutex::new(Breaker::default()),
                },
            );
        }
        Ok(Self {
            nodes: map,
            breaker,
        })
    }

    async fn send(&self, signed: &Signed) -> Result<String, BroadcastError> {
        let (chain, method, params, own_id) = request(signed)?;
        let node = self
            .nodes
            .get(chain.as_str())
            .ok_or(BroadcastError::NotConfigured(chain))?;
        match node.call(self.breaker, method, params).await? {
            Ok(v) => v
                .as_str()
                .map(str::to_owned)
                .ok_or_else(|| BroadcastError::Unavailable {
                    chain,
                    problem: format!("{method} answered {v} instead of a transaction id"),
                }),
            Err((code, message)) if already_known(chain, code, &message) => {
                // "nonce too low" only says the nonce is used: make sure it is by this very
                // transaction.
                if chain == ChainKind::Ethereum {
                    let found = node
                        .call(self.breaker, "eth_getTransactionByHash", json!([own_id]))
                        .await?;
                    if !matches!(found, Ok(ref v) if !v.is_null()) {
                        return Err(BroadcastError::Rejected {
                            chain,
                            reason: message,
                        });
                    }
                }
                Ok(own_id)
            }
            Err((_, message)) => Err(BroadcastError::Rejected {
                chain,
                reason: message,
            }),
        }
    }
}

impl Broadcaster for JsonRpcBroadcaster {
    fn configured(&self, chain: ChainKind) -> bool {
        self.nodes.contains_key(chain.as_str())
    }

    fn broadcast<'a>(
        &'a self,
        signed: &'a Signed,
    ) -> Pin<Box<dyn Future<Output = Result<String, BroadcastError>> + Send + 'a>> {
        Box::pin(self.send(signed))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn urls_are_parsed_and_passwords_never_echoed() {
        let e = endpoint(
            ChainKind::Bitcoin,
            "http://alice:s3cret@127.0.0.1:18443/wallet/w",
        )
        .unwrap();
        assert_eq!(e.address, "127.0.0.1:18443");
        assert_eq!(e.path, "/wallet/w");
        assert_eq!(
            e.authorization.as_deref(),
            Some(format!("Basic {}", BASE64.encode("alice:s3cret")).as_str())
        );
        let e = endpoint(ChainKind::Ethereum, "http://node.internal").unwrap();
        assert_eq!(
            (e.address.as_str(), e.path.as_str()),
            ("node.internal:8545", "/")
        );
        let e = endpoint(ChainKind::Solana, "http://[::1]").unwrap();
        assert_eq!(e.address, "[::1]:8899");
        let e = endpoint(ChainKind::Solana, "http://[::1]:9000/rpc").unwrap();
        assert_eq!(e.address, "[::1]:9000");
        for bad in [
            "ftp://x",
            "http://",
            "http://host:port",
            "https://a:pw@",
            "https://a:pw@h:x",
        ] {
            let err = endpoint(ChainKind::Bitcoin, bad).unwrap_err().to_string();
            assert!(!err.contains("pw@"), "{err}");
        }
        assert!(redacted("http://u:pw@h:1").contains("u:***@h:1"));
        let e = endpoint(ChainKind::Bitcoin, "http://alice:s3cret@127.0.0.1:18443").unwrap();
        let shown = format!("{e:?}");
        assert!(!shown.contains(&BASE64.encode("alice:s3cret")) && shown.contains("<redacted>"));
    }

    #[test]
    fn https_urls_default_to_port_443_and_name_their_host_for_the_certificate() {
        let e = endpoint(ChainKind::Ethereum, "https://rpc.example.com/v1/abc").unwrap();
        assert_eq!(e.address, "rpc.example.com:443");
        assert_eq!(e.host, "rpc.example.com");
        assert_eq!(e.path, "/v1/abc");
        assert_eq!(
            e.tls_name,
            Some(ServerName::try_from("rpc.example.com").unwrap())
        );
        let e = endpoint(ChainKind::Bitcoin, "https://u:p@127.0.0.1:8443").unwrap();
        assert_eq!(e.address, "127.0.0.1:8443");
        assert_eq!(e.tls_name, Some(ServerName::try_from("127.0.0.1").unwrap()));
        let e = endpoint(ChainKind::Solana, "https://[::1]:9443/").unwrap();
        assert_eq!(e.address, "[::1]:9443");
        assert_eq!(e.tls_name, Some(ServerName::try_from("::1").unwrap()));
        let e = endpoint(ChainKind::Solana, "http://node").unwrap();
        assert_eq!((e.address.as_str(), e.tls_name), ("node:8899", None));
        let e = endpoint(ChainKind::Ethereum, "https://bad_name!:443").unwrap_err();
        assert!(e.problem.contains("neither a DNS name"), "{e}");
    }

    #[test]
    fn node_urls_are_checked_without_certificates_and_never_shown_with_their_password() {
        assert!(check_node_url(ChainKind::Ethereum, "https://rpc.example.com").is_ok());
        let e = check_node_url(ChainKind::Ethereum, "ftp://rpc.example.com").unwrap_err();
        assert!(e.problem.contains("http:// or https://"), "{e}");
        let b = JsonRpcBroadcaster::new(
            vec![(
                ChainKind::Bitcoin,
                NodeConfig {
                    url: "http://alice:s3cret@127.0.0.1:18443".into(),
                    timeout: Duration::from_secs(1),
                    trust: TrustRoots::System,
                },
            )],
            BreakerSettings {
                trip_after: 1,
                cooldown: Duration::from_secs(1),
            },
        )
        .unwrap();
        let shown = format!("{b:?}");
        assert!(
            shown.contains("127.0.0.1:18443") && shown.contains("tls: false"),
            "{shown}"
        );
        assert!(!shown.contains("s3cret") && !shown.contains(&BASE64.encode("alice:s3cret")));
    }

    /// Depends on this machine: with CA certificates installed, an https node trusting the
    /// system builds; without any, it is refused with a message that says what to do.
    #[test]
    fn the_system_trust_store_is_used_when_it_has_certificates() {
        let has_roots = !rustls_native_certs::load_native_certs().certs.is_empty();
        let built = JsonRpcBroadcaster::new(
            vec![(
                ChainKind::Solana,
                NodeConfig {
                    url: "https://rpc.example.com".into(),
                    timeout: Duration::from_secs(1),
                    trust: TrustRoots::System,
                },
            )],
            BreakerSettings {
                trip_after: 1,
                cooldown: Duration::from_secs(1),
            },
        );
        match built {
            Ok(b) => {
                assert!(has_roots, "built without any system certificate");
                assert!(format!("{b:?}").contains("tls: true"));
            }
            Err(e) => {
                assert!(
                    !has_roots,
                    "refused although the system has certificates: {e}"
                );
                assert!(e.problem.contains("chains.ca_file"), "{e}");
            }
        }
    }

    #[test]
    fn a_ca_file_without_certificates_is_refused() {
        let cfg = |trust| NodeConfig {
            url: "https://localhost:1".into(),
            timeout: Duration::from_secs(1),
            trust,
        };
        let settings = BreakerSettings {
            trip_after: 1,
            cooldown: Duration::from_secs(1),
        };
        let e = JsonRpcBroadcaster::new(
            vec![(
                ChainKind::Ethereum,
                cfg(TrustRoots::Pem(b"not pem".to_vec())),
            )],
            settings,
        )
        .unwrap_err();
        assert!(e.problem.contains("no PEM certificate"), "{e}");
        // An http node never reads the trust roots.
        let plain = NodeConfig {
            url: "http://localhost:1".into(),
            ..cfg(TrustRoots::Pem(Vec::new()))
        };
        assert!(JsonRpcBroadcaster::new(vec![(ChainKind::Ethereum, plain)], settings).is_ok());
    }

    #[test]
    fn already_known_answers_are_recognised_per_chain() {
        assert!(already_known(ChainKind::Ethereum, -32000, "already known"));
        assert!(already_known(
            ChainKind::Ethereum,
            -32000,
            "Nonce too low. Expected nonce to be 2 but got 1."
        ));
        assert!(!already_known(
            ChainKind::Ethereum,
            -32000,
            "insufficient funds for gas * price + value"
        ));
        assert!(already_known(
            ChainKind::Bitcoin,
            -27,
            "Transaction already in block chain"
        ));
        assert!(already_known(
            ChainKind::Bitcoin,
            -26,
            "txn-already-in-mempool"
        ));
        assert!(!already_known(
            ChainKind::Bitcoin,
            -26,
            "min relay fee not met"
        ));
        assert!(already_known(
            ChainKind::Solana,
            -32002,
            "Transaction simulation failed: AlreadyProcessed"
        ));
        assert!(!already_known(
            ChainKind::Solana,
            -32002,
            "Blockhash not found"
        ));
    }

    #[test]
    fn incomplete_transactions_are_not_sent() {
        let psbt = Signed::BitcoinPsbt {
            psbt: vec![1],
            transaction: None,
            txid: None,
        };
        assert!(matches!(
            request(&psbt),
            Err(BroadcastError::Rejected { .. })
        ));
        let sol = Signed::SolanaTransaction {
            signature: [0; 64],
            transaction: vec![1],
            txid: "x".into(),
            complete: false,
        };
        assert!(matches!(
            request(&sol),
            Err(BroadcastError::Rejected { .. })
        ));
        let (chain, method, params, id) = request(&Signed::BitcoinPsbt {
            psbt: vec![],
            transaction: Some(vec![0xab]),
            txid: Some("t".into()),
        })
        .unwrap();
        assert_eq!(
            (chain, method, id.as_str()),
            (ChainKind::Bitcoin, "sendrawtransaction", "t")
        );
        assert_eq!(params, json!(["ab"]));
    }

    #[tokio::test]
    async fn a_dead_node_trips_the_breaker_and_then_fails_at_once() {
        // A port with no listener: bind, learn the port, close.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let b = JsonRpcBroadcaster::new(
            vec![(
                ChainKind::Ethereum,
                NodeConfig {
                    url: format!("http://127.0.0.1:{port}"),
                    timeout: Duration::from_secs(2),
                    trust: TrustRoots::System,
                },
            )],
            BreakerSettings {
                trip_after: 2,
                cooldown: Duration::from_secs(60),
            },
        )
        .unwrap();
        let tx = Signed::EthereumTransaction {
            signed_tx: vec![1],
            tx_hash: [2; 32],
            from: String::new(),
        };
        for _ in 0..2 {
            let e = b.broadcast(&tx).await.unwrap_err().to_string();
            assert!(
                e.contains("failed 3 times") && e.contains("connecting"),
                "{e}"
            );
        }
        let e = b.broadcast(&tx).await.unwrap_err().to_string();
        assert!(e.contains("circuit breaker open"), "{e}");
        assert!(!b.configured(ChainKind::Bitcoin));
        let e = b
            .broadcast(&Signed::SolanaTransaction {
                signature: [0; 64],
                transaction: vec![1],
                txid: "x".into(),
                complete: true,
            })
            .await
            .unwrap_err();
        assert!(matches!(
            e,
            BroadcastError::NotConfigured(ChainKind::Solana)
        ));
    }
}
