//! Helpers for the end-to-end tests: start the real `tessera` binary on free ports with a
//! temporary data directory, read the bound addresses from its stderr, stop it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k256::schnorr::signature::hazmat::PrehashVerifier;
use sha2::{Digest, Sha256};
use signer_service::proto::signer_client::SignerClient;
use signer_service::proto::{CreateKeyRequest, Scheme, SignBatchRequest, SignRequest};
use tonic::transport::Channel;

/// Path of the binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_tessera");

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

    /// Starts `tessera serve` with `--backend backend`, `extra` flags and environment `env`.
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
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--data-dir"])
            .arg(data_dir)
            .args(["--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"])
            .args(["--backend", backend, "--workers", "2"])
            .args(extra)
            .env_remove("TESSERA_KEK")
            .env_remove("RUST_LOG")
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
    pub async fn client(&self) -> SignerClient<Channel> {
        SignerClient::connect(self.url.clone())
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

/// Ed25519 check by ed25519-dalek `verify_strict` (independent of Tessera's code).
pub fn ed25519_ok(pk: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let vk = ed25519_dalek::VerifyingKey::from_bytes(pk.try_into().unwrap()).unwrap();
    let sig = ed25519_dalek::Signature::from_bytes(sig.try_into().unwrap());
    vk.verify_strict(msg, &sig).is_ok()
}

/// BIP340 check by both k256 `schnorr` and libsecp256k1, which must agree.
pub fn bip340_ok(xonly: &[u8], msg: &[u8], sig: &[u8]) -> bool {
    let k = k256::schnorr::VerifyingKey::from_bytes(xonly).unwrap();
    let s = k256::schnorr::Signature::try_from(sig).unwrap();
    let by_k256 = k.verify_prehash(msg, &s).is_ok();
    let pk = secp256k1::XOnlyPublicKey::from_byte_array(xonly.try_into().unwrap()).unwrap();
    let s = secp256k1::schnorr::Signature::from_byte_array(sig.try_into().unwrap());
    let by_libsecp = secp256k1::SECP256K1.verify_schnorr(&s, msg, &pk).is_ok();
    assert_eq!(by_k256, by_libsecp, "k256 and libsecp256k1 disagree");
    by_k256
}

/// BIP341 output key: Q = P + H_TapTweak(P ‖ root)·G, computed with libsecp256k1.
pub fn taproot_output_key(internal: &[u8], root: Option<[u8; 32]>) -> Vec<u8> {
    let tag = Sha256::digest(b"TapTweak");
    let mut h = Sha256::new();
    h.update(tag);
    h.update(tag);
    h.update(internal);
    if let Some(r) = root {
        h.update(r);
    }
    let t: [u8; 32] = h.finalize().into();
    let p = secp256k1::XOnlyPublicKey::from_byte_array(internal.try_into().unwrap()).unwrap();
    let (q, _parity) = p
        .add_tweak(
            secp256k1::SECP256K1,
            &secp256k1::Scalar::from_be_bytes(t).unwrap(),
        )
        .unwrap();
    q.serialize().to_vec()
}

/// Creates a 2-of-3 key per Schnorr scheme, signs 64 messages with SignBatch and one BIP86
/// key-path Sign, and checks every signature with independent verifiers.
pub async fn signs_and_verifies(c: &mut SignerClient<Channel>, label: &str) {
    for scheme in [Scheme::Ed25519, Scheme::Bip340] {
        let key = c
            .create_key(CreateKeyRequest {
                scheme: scheme as i32,
                threshold: 2,
                parties: 3,
                label: label.into(),
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
