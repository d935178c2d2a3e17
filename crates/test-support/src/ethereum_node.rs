//! A real local Ethereum node for the chain tests: Hardhat's EDR node (`hardhat node`), from
//! the npm project in `tests/chains/ethereum/` (hardhat pinned by its `package-lock.json`;
//! the native EDR binary ships inside the npm package).
//!
//! [`EthNode::start`] installs the project with `npm ci` when `node_modules` is missing (one
//! install at a time across processes, under a lock file), starts the node on a free port of
//! 127.0.0.1, reads the port from its banner and waits until its JSON-RPC answers. Requests are
//! plain HTTP/1.1 POSTs over a `TcpStream`. The node is killed on drop.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// How long the node may take to report its port and answer JSON-RPC.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long one JSON-RPC request may take.
const RPC_TIMEOUT: Duration = Duration::from_secs(30);
/// The start of the line `hardhat node` prints once it listens.
const BANNER: &str = "Started HTTP and WebSocket JSON-RPC server at http://";

/// The npm project that pins hardhat: `tests/chains/ethereum/` at the repository root.
pub fn project_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/chains/ethereum")
}

/// A running `hardhat node` on 127.0.0.1.
pub struct EthNode {
    child: Child,
    /// `127.0.0.1:PORT` of its JSON-RPC endpoint.
    pub addr: String,
    /// Everything the node printed so far (stdout and stderr).
    pub log: Arc<Mutex<Vec<String>>>,
    next_id: AtomicU64,
}

impl EthNode {
    /// Installs the npm project when needed and starts the node. `None` when Node.js or npm is
    /// missing or `npm ci` fails outside CI (after printing why); under `CI=true` that panics,
    /// and so does a node that does not start, always, with its log.
    pub fn start() -> Option<EthNode> {
        Self::start_on(0)
    }

    /// As [`EthNode::start`], on `port` of 127.0.0.1 (0: a free one), e.g. to bring a node back
    /// where a stopped one was.
    pub fn start_on(port: u16) -> Option<EthNode> {
        if let Err(why) = crate::npm::npm_ci(&project_dir()) {
            assert!(
                !crate::npm::under_ci(),
                "the Ethereum node is unavailable under CI: {why}"
            );
            eprintln!("skipping the Ethereum node test: {why}");
            return None;
        }
        Some(
            Self::spawn(port)
                .unwrap_or_else(|log| panic!("hardhat node did not start; log:\n{log}")),
        )
    }

    /// The node's port.
    pub fn port(&self) -> u16 {
        self.addr
            .rsplit_once(':')
            .and_then(|(_, p)| p.parse().ok())
            .unwrap_or(0)
    }

    /// Starts `hardhat node --port <port>` and waits for its port and its first JSON-RPC
    /// answer; `Err` carries its log.
    fn spawn(port: u16) -> Result<EthNode, String> {
        let port = port.to_string();
        let dir = project_dir();
        let mut child = Command::new("node")
            .arg("node_modules/hardhat/internal/cli/bootstrap.js")
            .args(["node", "--hostname", "127.0.0.1", "--port", &port])
            .current_dir(&dir)
            .env("HARDHAT_DISABLE_TELEMETRY_PROMPT", "true")
            // Plain text in the log (under CI=true its colour library would colour it).
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run node in {}: {e}", dir.display()))?;
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        for (stream, tx) in [
            (Box::new(stdout) as Box<dyn Read + Send>, Some(tx)),
            (Box::new(stderr), None),
        ] {
            let log = Arc::clone(&log);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let (Some(tx), Some(rest)) = (&tx, line.split_once(BANNER)) {
                        // `127.0.0.1:PORT/`, then maybe a colour reset.
                        let addr = rest.1.split('/').next().unwrap_or_default();
                        let _ = tx.send(addr.to_string());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut node = EthNode {
            child,
            addr: String::new(),
            log,
            next_id: AtomicU64::new(1),
        };
        let deadline = Instant::now() + START_TIMEOUT;
        node.addr = loop {
            match rx.recv_timeout(Duration::from_millis(200)) {
                Ok(addr) => break addr,
                Err(_) if Instant::now() > deadline => {
                    return Err(format!(
                        "no banner in {START_TIMEOUT:?}\n{}",
                        node.log_text()
                    ));
                }
                Err(_) => {
                    if let Ok(Some(status)) = node.child.try_wait() {
                        return Err(format!("exited with {status}\n{}", node.log_text()));
                    }
                }
            }
        };
        loop {
            match node.try_rpc("eth_chainId", json!([])) {
                Ok(Ok(_)) => return Ok(node),
                _ if Instant::now() > deadline => {
                    return Err(format!(
                        "{} does not answer eth_chainId\n{}",
                        node.addr,
                        node.log_text()
                    ));
                }
                _ => std::thread::sleep(Duration::from_millis(100)),
            }
        }
    }

    /// The node's output so far, one line each.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// One JSON-RPC call: `Ok(Ok(result))`, `Ok(Err(error object))` when the node answers with
    /// an error, `Err` when the HTTP exchange fails.
    pub fn try_rpc(&self, method: &str, params: Value) -> Result<Result<Value, Value>, String> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body =
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string();
        let mut stream = TcpStream::connect(&self.addr).map_err(|e| e.to_string())?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        stream
            .set_read_timeout(Some(RPC_TIMEOUT))
            .map_err(|e| e.to_string())?;
        write!(
            stream,
            "POST / HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            self.addr,
            body.len()
        )
        .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        stream
            .read_to_end(&mut response)
            .map_err(|e| format!("{method}: reading the response: {e}"))?;
        let text = String::from_utf8(response).map_err(|e| e.to_string())?;
        let (head, body) = text
            .split_once("\r\n\r\n")
            .ok_or_else(|| format!("{method}: no HTTP header end in {text:?}"))?;
        let chunked = head
            .lines()
            .any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
        let body = if chunked {
            dechunk(body)?
        } else {
            body.to_string()
        };
        let reply: Value =
            serde_json::from_str(&body).map_err(|e| format!("{method}: {e} in {body:?}"))?;
        if let Some(error) = reply.get("error") {
            return Ok(Err(error.clone()));
        }
        Ok(Ok(reply["result"].clone()))
    }

    /// One JSON-RPC call; panics (with the node's log) when it fails or the node answers with
    /// an error.
    pub fn rpc(&self, method: &str, params: Value) -> Value {
        match self.try_rpc(method, params) {
            Ok(Ok(result)) => result,
            Ok(Err(error)) => panic!("{method} answered {error}"),
            Err(e) => panic!("{method} failed: {e}\nnode log:\n{}", self.log_text()),
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> u64 {
        u64::try_from(quantity(&self.rpc("eth_chainId", json!([])))).unwrap()
    }

    /// Sets the balance of `address` (0x-hex) to `wei` (`hardhat_setBalance`).
    pub fn fund(&self, address: &str, wei: u128) {
        self.rpc("hardhat_setBalance", json!([address, format!("{wei:#x}")]));
    }

    /// The latest balance of `address` in wei.
    pub fn balance(&self, address: &str) -> u128 {
        quantity(&self.rpc("eth_getBalance", json!([address, "latest"])))
    }

    /// The next nonce of `address` (its pending transaction count).
    pub fn nonce(&self, address: &str) -> u64 {
        u64::try_from(quantity(
            &self.rpc("eth_getTransactionCount", json!([address, "pending"])),
        ))
        .unwrap()
    }

    /// The base fee per gas of the latest block.
    pub fn base_fee(&self) -> u128 {
        quantity(&self.rpc("eth_getBlockByNumber", json!(["latest", false]))["baseFeePerGas"])
    }

    /// `eth_gasPrice`.
    pub fn gas_price(&self) -> u128 {
        quantity(&self.rpc("eth_gasPrice", json!([])))
    }

    /// Sends a signed transaction; its hash as the node reports it (0x-hex).
    pub fn send_raw(&self, signed_tx: &[u8]) -> String {
        self.rpc(
            "eth_sendRawTransaction",
            json!([format!("0x{}", hex_lower(signed_tx))]),
        )
        .as_str()
        .expect("a transaction hash")
        .to_string()
    }

    /// The receipt of a transaction, waiting up to 10 s for it to be mined.
    pub fn receipt(&self, hash: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let receipt = self.rpc("eth_getTransactionReceipt", json!([hash]));
            if !receipt.is_null() {
                return receipt;
            }
            assert!(Instant::now() < deadline, "{hash} was not mined in 10 s");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for EthNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A JSON-RPC quantity (`"0x.."`) as a number.
pub fn quantity(v: &Value) -> u128 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{v} is not a quantity"));
    u128::from_str_radix(s.trim_start_matches("0x"), 16)
        .unwrap_or_else(|e| panic!("{s} is not a quantity: {e}"))
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The body of a `Transfer-Encoding: chunked` response.
fn dechunk(mut body: &str) -> Result<String, String> {
    let mut out = String::new();
    loop {
        let (size, rest) = body
            .split_once("\r\n")
            .ok_or_else(|| format!("bad chunk in {body:?}"))?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("bad chunk size {size:?}: {e}"))?;
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest
            .get(..size)
            .ok_or_else(|| format!("short chunk in {rest:?}"))?;
        out.push_str(chunk);
        body = rest
            .get(size..)
            .and_then(|r| r.strip_prefix("\r\n"))
            .ok_or_else(|| format!("bad chunk end in {rest:?}"))?;
    }
}
