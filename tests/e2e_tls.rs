//! End-to-end: TLS and mutual TLS on the client API. The server runs with `--tls-cert` /
//! `--tls-key` (and `--client-ca`); the CLI reaches it over `https://` with `--ca-cert` (and
//! `--client-cert`/`--client-key`), refuses to reach an `https://` server without a CA, and
//! a plaintext client gets nothing from the TLS listener. With `--auth mtls` the certificate's
//! identity is the client, and only identities registered with a policy are served.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use test_support::{Server, run_cli, tessera_bin};

/// Writes `ca.pem`, `server.pem`/`server.key` (for 127.0.0.1), `client.pem`/`client.key`
/// (client-1.example) and `client2.pem`/`client2.key` (client-2.example) signed by the CA, and `other-ca.pem` with `stranger.pem`/`stranger.key`, a client
/// certificate it signed.
fn write_pki(dir: &Path) {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    for (name, sans) in [
        (
            "server",
            vec!["127.0.0.1".to_owned(), "localhost".to_owned()],
        ),
        ("client", vec!["client-1.example".to_owned()]),
        ("client2", vec!["client-2.example".to_owned()]),
    ] {
        let key = KeyPair::generate().unwrap();
        let cert = CertificateParams::new(sans)
            .unwrap()
            .signed_by(&key, &issuer)
            .unwrap();
        std::fs::write(dir.join(format!("{name}.pem")), cert.pem()).unwrap();
        std::fs::write(dir.join(format!("{name}.key")), key.serialize_pem()).unwrap();
    }
    let other_key = KeyPair::generate().unwrap();
    let mut other = CertificateParams::new(Vec::<String>::new()).unwrap();
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(
        dir.join("other-ca.pem"),
        other.self_signed(&other_key).unwrap().pem(),
    )
    .unwrap();
    let other = Issuer::new(other, other_key);
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["client-1.example".to_owned()])
        .unwrap()
        .signed_by(&key, &other)
        .unwrap();
    std::fs::write(dir.join("stranger.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("stranger.key"), key.serialize_pem()).unwrap();
}

fn p(dir: &Path, f: &str) -> String {
    dir.join(f).display().to_string()
}

/// Runs the CLI; returns (success, stdout, stderr).
fn cli(args: &[&str]) -> (bool, String, String) {
    run_cli(args, &[])
}

fn https(s: &Server) -> String {
    s.url.replacen("http://", "https://", 1)
}

/// Writes a private KEK file `<name>.kek` in `dir` (a TLS configuration needs an explicit KEK);
/// returns its path.
fn kek_file(dir: &Path, name: &str) -> String {
    let path = dir.join(format!("{name}.kek"));
    std::fs::write(&path, "42".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    path.display().to_string()
}

fn start(dir: &Path, data: &str, mtls: bool) -> Server {
    let (cert, key, ca) = (p(dir, "server.pem"), p(dir, "server.key"), p(dir, "ca.pem"));
    let kek = kek_file(dir, data);
    let mut flags = vec!["--tls-cert", &cert, "--tls-key", &key, "--kek-file", &kek];
    if mtls {
        flags.extend(["--client-ca", &ca]);
    }
    let data_dir: PathBuf = dir.join(data);
    Server::start(&data_dir, &flags)
}

#[test]
fn the_cli_signs_over_tls_and_never_in_plaintext_to_an_https_server() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let s = start(dir.path(), "tls", false);
    assert!(s.logged("TLS on the gRPC listener"));
    let url = https(&s);
    let ca = p(dir.path(), "ca.pem");
    let (ok, out, err) = cli(&[
        "keygen",
        "--server",
        &url,
        "--ca-cert",
        &ca,
        "--scheme",
        "ed25519",
        "--threshold",
        "2",
        "--parties",
        "3",
    ]);
    assert!(ok, "{err}");
    let key: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key_id = key["key_id"].as_str().unwrap();
    let (ok, out, err) = cli(&[
        "sign",
        "--server",
        &url,
        "--ca-cert",
        &ca,
        "--key-id",
        key_id,
        "--message",
        "hello",
    ]);
    assert!(ok, "{err}");
    let sig: serde_json::Value = serde_json::from_str(&out).unwrap();
    let pk = hex::decode(key["public_key"].as_str().unwrap()).unwrap();
    let sig = hex::decode(sig["signature"].as_str().unwrap()).unwrap();
    assert!(test_support::ed25519_ok(&pk, b"hello", &sig));

    // An https:// server without a CA: refused before anything is sent.
    let (ok, _, err) = cli(&[
        "sign",
        "--server",
        &url,
        "--key-id",
        key_id,
        "--message",
        "x",
    ]);
    assert!(!ok);
    assert!(
        err.contains("--ca-cert") && err.contains("plaintext"),
        "{err}"
    );
    // A CA that did not sign the server's certificate: the handshake fails.
    let other = p(dir.path(), "other-ca.pem");
    let (ok, _, err) = cli(&[
        "sign",
        "--server",
        &url,
        "--ca-cert",
        &other,
        "--key-id",
        key_id,
        "--message",
        "x",
    ]);
    assert!(
        !ok,
        "a server certificate from an unknown CA is refused: {err}"
    );
    // Plaintext to the TLS listener gets no answer.
    let (ok, _, _) = cli(&[
        "sign",
        "--server",
        &s.url,
        "--key-id",
        key_id,
        "--message",
        "x",
    ]);
    assert!(!ok, "plaintext gRPC is not served on the TLS listener");
    // TLS settings with an http:// URL are a usage error.
    let (ok, _, err) = cli(&[
        "sign",
        "--server",
        &s.url,
        "--ca-cert",
        &ca,
        "--key-id",
        key_id,
        "--message",
        "x",
    ]);
    assert!(!ok && err.contains("https://"), "{err}");
}

#[test]
fn with_a_client_ca_only_clients_with_its_certificates_are_served() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let s = start(dir.path(), "mtls", true);
    assert!(s.logged("client certificates from"));
    let url = https(&s);
    let ca = p(dir.path(), "ca.pem");
    let create = |extra: &[&str]| {
        let mut args = vec![
            "keygen",
            "--server",
            &url,
            "--ca-cert",
            &ca,
            "--scheme",
            "bip340",
            "--threshold",
            "2",
            "--parties",
            "3",
        ];
        args.extend_from_slice(extra);
        cli(&args)
    };
    let (ok, _, err) = create(&[]);
    assert!(!ok, "no client certificate, no service: {err}");
    let (cert, key) = (p(dir.path(), "client.pem"), p(dir.path(), "client.key"));
    let (ok, out, err) = create(&["--client-cert", &cert, "--client-key", &key]);
    assert!(ok, "{err}");
    assert!(out.contains("key_id"));
    // A client certificate from another CA is refused.
    let (cert, key) = (p(dir.path(), "stranger.pem"), p(dir.path(), "stranger.key"));
    let (ok, _, err) = create(&["--client-cert", &cert, "--client-key", &key]);
    assert!(
        !ok,
        "a client certificate from another CA is refused: {err}"
    );
}

#[test]
fn bad_tls_settings_are_start_up_errors_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let data = p(dir.path(), "d");
    let cert = p(dir.path(), "server.pem");
    let ca = p(dir.path(), "ca.pem");
    let missing = p(dir.path(), "missing.pem");
    let kek = kek_file(dir.path(), "d");
    for (args, needle) in [
        (vec!["--tls-cert", cert.as_str()], "server.tls_key"),
        (vec!["--client-ca", ca.as_str()], "server.client_ca"),
        (
            vec!["--tls-cert", missing.as_str(), "--tls-key", cert.as_str()],
            "missing.pem",
        ),
    ] {
        let out = Command::new(tessera_bin())
            .args(["serve", "--data-dir", &data, "--listen", "127.0.0.1:0"])
            .args(["--metrics-listen", "127.0.0.1:0", "--backend", "cpu"])
            .args(["--kek-file", &kek])
            .args(&args)
            .output()
            .unwrap();
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{needle} not in: {err}");
    }
}

#[test]
fn with_auth_mtls_the_certificate_identity_needs_a_policy() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let data = dir.path().join("auth");
    let kek = kek_file(dir.path(), "auth");
    let data_s = data.display().to_string();
    let (ok, out, err) = cli(&[
        "apikey",
        "create",
        "--data-dir",
        &data_s,
        "--kek-file",
        &kek,
        "--name",
        "client-1.example",
        "--certificate",
        "--admin",
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("client-1.example"), "{out}");
    let (cert, key, ca) = (
        p(dir.path(), "server.pem"),
        p(dir.path(), "server.key"),
        p(dir.path(), "ca.pem"),
    );
    let s = Server::start(
        &data,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--client-ca",
            &ca,
            "--auth",
            "mtls",
            "--kek-file",
            &kek,
        ],
    );
    assert!(s.logged("authentication mtls: 1 client(s)"));
    let url = https(&s);
    let keygen = |who: &str| {
        let (cert, key) = (
            p(dir.path(), &format!("{who}.pem")),
            p(dir.path(), &format!("{who}.key")),
        );
        cli(&[
            "keygen",
            "--server",
            &url,
            "--ca-cert",
            &ca,
            "--client-cert",
            &cert,
            "--client-key",
            &key,
            "--scheme",
            "ed25519",
            "--threshold",
            "2",
            "--parties",
            "3",
        ])
    };
    let (ok, out, err) = keygen("client");
    assert!(ok, "the registered identity is served: {err}");
    assert!(out.contains("key_id"));
    let (ok, _, err) = keygen("client2");
    assert!(!ok);
    assert!(
        err.contains("PERMISSION_DENIED") && err.contains("client-2.example"),
        "a valid certificate whose identity has no policy is refused: {err}"
    );
    assert!(s.logged("access denied"));
}

/// A GET over HTTPS to `addr` presenting the client certificate `who` (`client` or
/// `client2`): returns the HTTP status and the body.
async fn https_get(dir: &Path, addr: &str, path: &str, who: &str) -> (u16, String) {
    use http_body_util::{BodyExt, Empty};
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(dir.join("ca.pem")).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join(format!("{who}.pem")))
            .unwrap()
            .map(Result::unwrap)
            .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join(format!("{who}.key"))).unwrap();
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_client_auth_cert(certs, key)
    .unwrap();
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let tls = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config))
        .connect(ServerName::try_from("127.0.0.1").unwrap(), tcp)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", addr)
        .body(Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rest_gateway_serves_https_with_certificate_identities() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let data = dir.path().join("rest");
    let kek = kek_file(dir.path(), "rest");
    let data_s = data.display().to_string();
    let (ok, _, err) = cli(&[
        "apikey",
        "create",
        "--data-dir",
        &data_s,
        "--kek-file",
        &kek,
        "--name",
        "client-1.example",
        "--certificate",
        "--keys",
        "*",
    ]);
    assert!(ok, "{err}");
    let (cert, key, ca) = (
        p(dir.path(), "server.pem"),
        p(dir.path(), "server.key"),
        p(dir.path(), "ca.pem"),
    );
    let s = Server::start(
        &data,
        &[
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--client-ca",
            &ca,
            "--auth",
            "mtls",
            "--kek-file",
            &kek,
            "--rest-listen",
            "127.0.0.1:0",
        ],
    );
    assert!(s.logged("REST listening on"));
    let addr = s
        .log
        .lock()
        .unwrap()
        .iter()
        .find_map(|l| l.strip_prefix("tessera: REST listening on "))
        .unwrap()
        .trim()
        .to_owned();
    let (status, body) = https_get(dir.path(), &addr, "/v1/status", "client").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"keyCount\":\"0\""), "{body}");
    let (status, body) = https_get(dir.path(), &addr, "/v1/keys", "client2").await;
    assert_eq!(
        status, 403,
        "a certificate identity without a policy: {body}"
    );
    assert!(body.contains("client-2.example"), "{body}");
    // Plain HTTP to the TLS listener gets no HTTP answer.
    let mut plain = std::net::TcpStream::connect(&addr).unwrap();
    use std::io::{Read, Write};
    plain
        .write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    plain
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let mut buf = Vec::new();
    let _ = plain.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("keyCount"));
}
