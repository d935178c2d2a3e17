//! A real Solana runtime for the Solana adapter's tests: LiteSVM (the Solana SVM in-process,
//! from the npm package `litesvm`) driven by `tests/chains/solana/svm.mjs` over a JSON line
//! protocol, with the unsigned messages built by `@solana/kit`. Installs the npm packages with
//! `npm ci` on first use (one install at a time, under a lock file), starts one Node process per
//! [`Svm`], and kills it on drop.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};

/// How long one request may take before the harness gives up on the script.
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);

/// The folder of the Node harness: `package.json`, `package-lock.json`, `svm.mjs`, `vectors.mjs`.
pub fn harness_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/chains/solana")
}

pub use crate::npm::under_ci;

/// Installs the harness's npm packages (see [`crate::npm::npm_ci`]) and returns its folder.
pub fn ensure_installed() -> Result<PathBuf, String> {
    let dir = harness_dir();
    crate::npm::npm_ci(&dir)?;
    Ok(dir)
}

/// Runs `node <script>` in the harness folder (installing first) and returns its stdout.
pub fn node_output(script: &str) -> Result<String, String> {
    let dir = ensure_installed()?;
    let out = Command::new("node")
        .arg(script)
        .current_dir(&dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run node: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "node {script} failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    String::from_utf8(out.stdout).map_err(|e| format!("node {script} printed non-UTF-8: {e}"))
}

/// A message format `transfer_message` can build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// A legacy message.
    Legacy,
    /// A v0 (versioned) message, with no address table lookups.
    V0,
}

/// What LiteSVM made of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sent {
    /// Executed: the first signature in base58, and the program logs.
    Accepted {
        /// The transaction id LiteSVM reports.
        signature: String,
        /// The program logs.
        logs: Vec<String>,
    },
    /// Refused or failed, with LiteSVM's error and any logs.
    Rejected {
        /// LiteSVM's description of the failure.
        error: String,
        /// The program logs, if it ran.
        logs: Vec<String>,
    },
}

/// A LiteSVM runtime in a Node process running `svm.mjs`.
pub struct Svm {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
}

impl Svm {
    /// Installs the npm packages if needed and starts the script.
    pub fn start() -> Result<Svm, String> {
        let dir = ensure_installed()?;
        let mut child = Command::new("node")
            .arg("svm.mjs")
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start node: {e}"))?;
        let stdin = child.stdin.take().ok_or("no stdin pipe")?;
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let (tx, replies) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Ok(Svm {
            child,
            stdin,
            replies,
        })
    }

    /// [`Svm::start`], or `None` with a message when Node, npm or the packages are missing;
    /// under CI (`CI=true`) that panics instead, so the test fails rather than skips.
    pub fn start_or_skip(test: &str) -> Option<Svm> {
        match Svm::start() {
            Ok(svm) => Some(svm),
            Err(e) if under_ci() => panic!("{test}: LiteSVM is required under CI=true: {e}"),
            Err(e) => {
                eprintln!("{test}: skipped, LiteSVM is not available: {e}");
                None
            }
        }
    }

    fn request(&mut self, request: Value) -> Value {
        writeln!(self.stdin, "{request}")
            .and_then(|()| self.stdin.flush())
            .unwrap_or_else(|e| panic!("svm.mjs is gone ({e}); request {request}"));
        let line = self
            .replies
            .recv_timeout(REPLY_TIMEOUT)
            .unwrap_or_else(|e| {
                let status = self.child.try_wait();
                panic!("no reply from svm.mjs to {request}: {e} (process: {status:?})")
            });
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("svm.mjs replied with non-JSON {line:?}: {e}"))
    }

    fn request_ok(&mut self, request: Value) -> Value {
        let reply = self.request(request.clone());
        assert_eq!(reply["ok"], true, "svm.mjs refused {request}: {reply}");
        reply
    }

    /// Credits `lamports` to the base58 account `to`.
    pub fn airdrop(&mut self, to: &str, lamports: u64) {
        self.request_ok(json!({"op": "airdrop", "to": to, "lamports": lamports.to_string()}));
    }

    /// The balance of the base58 account `of` in lamports (0 for an account that does not exist).
    pub fn balance(&mut self, of: &str) -> u64 {
        let reply = self.request_ok(json!({"op": "balance", "of": of}));
        reply["lamports"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("balance reply without lamports: {reply}"))
    }

    /// The unsigned message of a System transfer of `lamports` from `from` to `to`, built by
    /// `@solana/kit` with LiteSVM's latest blockhash and `from` as the fee payer.
    pub fn transfer_message(
        &mut self,
        from: &str,
        to: &str,
        lamports: u64,
        version: Version,
    ) -> Vec<u8> {
        let version = match version {
            Version::Legacy => "legacy",
            Version::V0 => "v0",
        };
        let reply = self.request_ok(json!({
            "op": "transfer_message",
            "from": from,
            "to": to,
            "lamports": lamports.to_string(),
            "version": version,
        }));
        let b64 = reply["message"]
            .as_str()
            .unwrap_or_else(|| panic!("transfer_message reply without message: {reply}"));
        BASE64.decode(b64).expect("base64 message")
    }

    /// Submits a wire-format transaction to LiteSVM.
    pub fn send(&mut self, transaction: &[u8]) -> Sent {
        let reply = self.request(json!({"op": "send", "tx": BASE64.encode(transaction)}));
        let logs = reply["logs"]
            .as_array()
            .map(|l| {
                l.iter()
                    .filter_map(|s| s.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        if reply["ok"] == true {
            Sent::Accepted {
                signature: reply["signature"].as_str().expect("signature").to_owned(),
                logs,
            }
        } else {
            Sent::Rejected {
                error: reply["error"]
                    .as_str()
                    .unwrap_or("no error text")
                    .to_owned(),
                logs,
            }
        }
    }
}

impl Drop for Svm {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
