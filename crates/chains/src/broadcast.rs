//! The broadcast port of `service-core` ([`service_core::chain::Broadcaster`]) over each chain's
//! JSON-RPC: `eth_sendRawTransaction` (Ethereum), `sendrawtransaction` (Bitcoin Core) and
//! `sendTransaction` (Solana), one configured node per chain, over plain HTTP/1.1.
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
use std::sync::Mutex;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use service_core::chain::{BroadcastError, Broadcaster, ChainKind, Signed};

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
    /// `http://[user:password@]host:port[/path]` (Bitcoin Core takes its RPC credentials as
    /// HTTP basic authentication).
    pub url: String,
    /// Deadline of each attempt (connect, send, answer).
    pub timeout: Duration,
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

#[derive(Debug)]
struct Node {
    chain: ChainKind,
    endpoint: Endpoint,
    timeout: Duration,
    breaker: Mutex<Breaker>,
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
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if url.starts_with("https://") {
        return Err(err(
            "https is not supported for broadcasting yet: reach the node over http on a \
             trusted network, or through a local TLS-terminating proxy",
        ));
    } else {
        return Err(err("must start with http://"));
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
    Ok(Endpoint {
        address,
        host: hostport.to_owned(),
        path: path.to_owned(),
        authorization,
    })
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
            map.insert(
                chain.as_str(),
                Node {
                    chain,
                    endpoint: endpoint(chain, &cfg.url)?,
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
        for bad in ["ftp://x", "http://", "http://host:port", "https://a:pw@x"] {
            let err = endpoint(ChainKind::Bitcoin, bad).unwrap_err().to_string();
            assert!(!err.contains("pw@"), "{err}");
        }
        assert!(redacted("http://u:pw@h:1").contains("u:***@h:1"));
        let e = endpoint(ChainKind::Bitcoin, "http://alice:s3cret@127.0.0.1:18443").unwrap();
        let shown = format!("{e:?}");
        assert!(!shown.contains(&BASE64.encode("alice:s3cret")) && shown.contains("<redacted>"));
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
