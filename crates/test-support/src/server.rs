//! The end-to-end harness: start the real `tessera` binary on free ports with a data
//! directory, read the bound addresses from its stderr, scrape its metrics, stop it.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_proto::signer_service_client::SignerServiceClient;
use api_proto::{CreateKeyRequest, Scheme, SignBatchRequest, SignRequest};
use tonic::transport::Channel;

use crate::verify::{bip340_ok, ed25519_ok, taproot_output_key};

/// The `tessera` binary of this build: `$TESSERA_BIN` when set, else `tessera` in the target
/// directory the running test executable was built into (`target/<profile>/deps/..`).
pub fn tessera_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("TESSERA_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("the test executable's path");
    let mut dir = exe.parent().expect("a directory").to_owned();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let bin = dir.join(format!("tessera{}", std::env::consts::EXE_SUFFIX));
    assert!(
        bin.exists(),
        "{} not found: build it (cargo build -p signer-service) or set TESSERA_BIN",
        bin.display()
    );
    bin
}

/// Runs a `tessera` client command with environment `env` (TLS and API-key variables of the
/// test's own environment removed first); returns (success, stdout, stderr).
pub fn run_cli(args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let out = Command::new(tessera_bin())
        .args(args)
        .env_remove("TESSERA_CA_CERT")
        .env_remove("TESSERA_API_KEY")
        .env_remove("TESSERA_KEK")
        .envs(env.iter().copied())
        .output()
        .expect("run tessera");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running `tessera serve`.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`
    pub url: String,
    /// `127.0.0.1:PORT` of the metrics endpoint.
    pub metrics: String,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Everything the server wrote on stderr so far.
    pub log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `tessera serve` on `data_dir` with `--backend cpu` and `extra` flags.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_with_backend(data_dir, "cpu", extra)
    }

    /// Starts `tessera serve` on `data_dir` with `--backend backend` and `extra` flags.
    pub fn start_with_backend(data_dir: &Path, backend: &str, extra: &[&str]) -> Server {
        Self::start_full(data_dir, backend, extra, &[])
    }

    /// Starts `tessera serve` with `--backend backend` (none when empty), `extra` flags and
    /// environment `env`.
    pub fn start_full(
        data_dir: &Path,
        backend: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Server {
        Self::try_start_full(data_dir, backend, extra, env)
            .unwrap_or_else(|log| panic!("server did not start; log: {log}"))
    }

    /// Like [`Server::start_full`], but a server that exits or does not report its addresses
    /// within two minutes is an `Err` carrying its log.
    pub fn try_start_full(
        data_dir: &Path,
        backend: &str,
        extra: &[&str],
        env: &[(&str, &str)],
    ) -> Result<Server, String> {
        let mut cmd = Command::new(tessera_bin());
        cmd.args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(if backend.is_empty() {
                Vec::new()
            } else {
                vec!["--backend", backend]
            })
            .args(extra);
        Self::spawn(cmd, data_dir, env)
    }

    /// Starts `tessera serve --config config` (a cluster node written by `tessera
    /// init-cluster`) with `--backend cpu`, free API and metrics ports, and environment `env`.
    pub fn start_node(config: &Path, data_dir: &Path, env: &[(&str, &str)]) -> Server {
        let mut cmd = Command::new(tessera_bin());
        cmd.args(["serve", "--config"])
            .arg(config)
            .args(["--backend", "cpu"]);
        Self::spawn(cmd, data_dir, env)
            .unwrap_or_else(|log| panic!("node did not start; log: {log}"))
    }

    fn spawn(mut cmd: Command, data_dir: &Path, env: &[(&str, &str)]) -> Result<Server, String> {
        cmd.args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--workers", "2"])
            .env_remove("TESSERA_KEK")
            .env_remove("RUST_LOG")
            .env_remove("XDG_RUNTIME_DIR")
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn tessera");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let log2 = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                log2.lock().unwrap().push(line.clone());
                let _ = tx.send(line);
            }
        });
        let (mut grpc, mut metrics) = (None, None);
        let deadline = Instant::now() + Duration::from_secs(120);
        while grpc.is_none() || metrics.is_none() {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match rx.recv_timeout(left) {
                Ok(l) => l,
                Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(log.lock().unwrap().join("\n"));
                }
            };
            if let Some(a) = line.strip_prefix("tessera: gRPC listening on ") {
                grpc = Some(a.trim().to_owned());
            }
            if let Some(a) = line.strip_prefix("tessera: metrics listening on ") {
                metrics = Some(a.trim().to_owned());
            }
        }
        Ok(Server {
            child: Some(child),
            url: format!("http://{}", grpc.unwrap()),
            metrics: metrics.unwrap(),
            data_dir: data_dir.to_owned(),
            log,
        })
    }

    /// A gRPC client.
    pub async fn client(&self) -> SignerServiceClient<Channel> {
        SignerServiceClient::connect(self.url.clone())
            .await
            .expect("connect")
    }

    /// A plain channel (for health and reflection clients).
    pub async fn channel(&self) -> Channel {
        Channel::from_shared(self.url.clone())
            .unwrap()
            .connect()
            .await
            .expect("connect")
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// Kills the process with SIGKILL (no shutdown, no draining) and waits for it.
    pub fn kill9(mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Whether the server's stderr has a line containing `needle`, waiting up to 5 s for it
    /// (the lines are read by another thread, which may lag behind the server's answers).
    pub fn logged(&self, needle: &str) -> bool {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log.lock().unwrap().iter().any(|l| l.contains(needle)) {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the server's stderr has a line containing `needle` now.
    pub fn logged_now(&self, needle: &str) -> bool {
        self.log.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> ExitStatus {
        let mut child = self.child.take().unwrap();
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "server did not exit after SIGTERM; log: {:?}",
                    self.log.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// GET /metrics.
    pub fn scrape(&self) -> String {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(&self.metrics).unwrap();
        write!(
            s,
            "GET /metrics HTTP/1.0\r\nHost: {}\r\nConnection: close\r\n\r\n",
            self.metrics
        )
        .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).unwrap();
        assert!(out.starts_with("HTTP/1."), "{out}");
        assert!(out.contains(" 200 "), "{out}");
        out.split_once("\r\n\r\n").unwrap().1.to_owned()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Creates a 2-of-3 key per Schnorr scheme, signs 64 messages with SignBatch and one BIP86
/// key-path Sign, and checks every signature with independent verifiers.
pub async fn signs_and_verifies(c: &mut SignerServiceClient<Channel>, label: &str) {
    for scheme in [Scheme::Ed25519, Scheme::Bip340] {
        let key = c
            .create_key(CreateKeyRequest {
                scheme: scheme as i32,
                threshold: 2,
                parties: 3,
                label: label.into(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let messages: Vec<Vec<u8>> = (0..64u8).map(|i| vec![i; 32]).collect();
        let out = c
            .sign_batch(SignBatchRequest {
                key_id: key.key_id.clone(),
                messages: messages.clone(),
                taproot_merkle_root: None,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(out.signatures.len(), messages.len());
        for (m, r) in messages.iter().zip(&out.signatures) {
            assert_eq!(r.verifying_key, key.public_key);
            let ok = match scheme {
                Scheme::Ed25519 => ed25519_ok(&key.public_key, m, &r.signature),
                _ => bip340_ok(&key.public_key, m, &r.signature),
            };
            assert!(ok, "{scheme:?} signature from {label} does not verify");
        }
        if scheme == Scheme::Bip340 {
            let r = c
                .sign(SignRequest {
                    key_id: key.key_id.clone(),
                    message: vec![9; 32],
                    idempotency_key: String::new(),
                    taproot_merkle_root: Some(Vec::new()),
                })
                .await
                .unwrap()
                .into_inner();
            let q = taproot_output_key(&key.public_key, None);
            assert_eq!(r.verifying_key, q);
            assert!(bip340_ok(&q, &[9; 32], &r.signature));
        }
    }
}
