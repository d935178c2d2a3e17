//! End-to-end: API keys and per-key policy on the real server and CLI. Keys made with
//! `tessera apikey create` are the only way in under `--auth api-key`; each client sees and
//! signs with the keys its policy names (default deny); keys made or revoked while the server
//! runs count from the next request; listeners reachable from other hosts without TLS and authentication are
//! refused at start-up.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use test_support::{Server, ed25519_ok, run_cli, tessera_bin};

/// A data directory and a private KEK file beside it (authentication needs an explicit KEK
/// source); returns both as strings.
fn data_dir(root: &Path) -> (String, String) {
    let d = root.join("data");
    let kek = root.join("kek.hex");
    std::fs::write(&kek, "5a".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    (d.display().to_string(), kek.display().to_string())
}

/// `tessera apikey create` with `extra`; returns the printed key.
fn new_key((data, kek): (&str, &str), name: &str, extra: &[&str]) -> String {
    let mut args = vec![
        "apikey",
        "create",
        "--data-dir",
        data,
        "--kek-file",
        kek,
        "--name",
        name,
    ];
    args.extend_from_slice(extra);
    let (ok, out, err) = run_cli(&args, &[]);
    assert!(ok, "{err}");
    assert!(err.contains("shown once"), "{err}");
    out.trim().to_owned()
}

fn keygen(url: &str, api_key: Option<&str>, scheme: &str) -> (bool, String, String) {
    let env: Vec<(&str, &str)> = api_key
        .map(|k| ("TESSERA_API_KEY", k))
        .into_iter()
        .collect();
    run_cli(
        &[
            "keygen",
            "--server",
            url,
            "--scheme",
            scheme,
            "--threshold",
            "2",
            "--parties",
            "3",
        ],
        &env,
    )
}

fn sign(url: &str, api_key: &str, key_id: &str, msg: &str) -> (bool, String, String) {
    run_cli(
        &[
            "sign",
            "--server",
            url,
            "--key-id",
            key_id,
            "--message",
            msg,
        ],
        &[("TESSERA_API_KEY", api_key)],
    )
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"))
}

fn signatures_issued(s: &Server) -> f64 {
    s.scrape()
        .lines()
        .filter(|l| l.starts_with("tessera_signatures_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[test]
fn api_keys_and_policies_gate_every_call() {
    let dir = tempfile::tempdir().unwrap();
    let (data, kek) = data_dir(dir.path());
    let files = (data.as_str(), kek.as_str());
    let ops = new_key(files, "ops", &["--admin", "--keys", "*"]);
    assert!(ops.starts_with("tsk_") && ops.len() == 68, "{ops}");
    let s = Server::start(Path::new(&data), &["--auth", "api-key", "--kek-file", &kek]);
    assert!(s.logged("authentication api-key: 1 client(s)"));
    let url = s.url.clone();

    // No key, or an unknown one: UNAUTHENTICATED, nothing created.
    let (ok, _, err) = keygen(&url, None, "ed25519");
    assert!(
        !ok && err.contains("UNAUTHENTICATED") && err.contains("Bearer"),
        "{err}"
    );
    let (ok, _, err) = keygen(&url, Some("tsk_0000"), "ed25519");
    assert!(!ok && err.contains("UNAUTHENTICATED"), "{err}");

    // The admin creates two keys.
    let (ok, out, err) = keygen(&url, Some(&ops), "ed25519");
    assert!(ok, "{err}");
    let k1 = json(&out);
    let (ok, out, err) = keygen(&url, Some(&ops), "ed25519");
    assert!(ok, "{err}");
    let k2 = json(&out);
    let (id1, id2) = (
        k1["key_id"].as_str().unwrap(),
        k2["key_id"].as_str().unwrap(),
    );

    // An application key for k1 only, added while the server runs.
    let app = new_key(files, "payments", &["--keys", id1, "--schemes", "ed25519"]);
    let (ok, out, err) = sign(&url, &app, id1, "pay 1");
    assert!(ok, "a key made while the server runs works at once: {err}");
    let signed = json(&out);
    let sig = hex::decode(signed["signature"].as_str().unwrap()).unwrap();
    let pk = hex::decode(k1["public_key"].as_str().unwrap()).unwrap();
    assert!(
        ed25519_ok(&pk, b"pay 1", &sig),
        "an ordinary Ed25519 signature"
    );
    let issued = signatures_issued(&s);

    // What the policy does not name is refused, and nothing is signed.
    let (ok, _, err) = sign(&url, &app, id2, "pay 2");
    assert!(
        !ok && err.contains("PERMISSION_DENIED") && err.contains("payments"),
        "{err}"
    );
    let (ok, _, err) = keygen(&url, Some(&app), "ed25519");
    assert!(
        !ok && err.contains("PERMISSION_DENIED") && err.contains("CreateKey"),
        "{err}"
    );
    assert_eq!(
        signatures_issued(&s),
        issued,
        "no signature for a denied request"
    );

    // Revoked: refused from now on.
    let (ok, out, err) = run_cli(
        &[
            "apikey",
            "revoke",
            "--data-dir",
            &data,
            "--kek-file",
            &kek,
            "--name",
            "payments",
        ],
        &[],
    );
    assert!(ok && out.contains("revoked"), "{err}");
    let (ok, _, err) = sign(&url, &app, id1, "pay 3");
    assert!(
        !ok && err.contains("UNAUTHENTICATED"),
        "a revoked key is refused by the running server at once: {err}"
    );
    assert_eq!(signatures_issued(&s), issued);

    // The list shows policies and states, never a key.
    let (ok, out, err) = run_cli(
        &["apikey", "list", "--data-dir", &data, "--kek-file", &kek],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("ops\tapi-key\ttrue\t*\t*\tunlimited\tactive"),
        "{out}"
    );
    assert!(
        out.contains("payments\tapi-key\tfalse") && out.contains("revoked"),
        "{out}"
    );
    let access = std::fs::read_to_string(Path::new(&data).join("access.json")).unwrap();
    for secret in [&ops, &app] {
        assert!(!out.contains(secret.as_str()) && !access.contains(secret.as_str()));
        assert!(
            !s.log
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.contains(secret.as_str()))
        );
    }
    assert!(s.logged("access denied"));
}

#[test]
fn listeners_reachable_from_other_hosts_need_tls_and_authentication() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = data_dir(dir.path());
    let serve = |extra: &[&str]| {
        let out = std::process::Command::new(tessera_bin())
            .args(["serve", "--data-dir", &data, "--backend", "cpu"])
            .args(extra)
            .env_remove("TESSERA_KEK")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let local_metrics = ["--metrics-listen", "127.0.0.1:0"];
    let (ok, err) = serve(&["--listen", "0.0.0.0:0", local_metrics[0], local_metrics[1]]);
    assert!(!ok);
    assert!(
        err.contains("server.listen")
            && err.contains("authentication is off")
            && err.contains("--auth api-key"),
        "{err}"
    );
    let (ok, err) = serve(&[
        "--listen",
        "0.0.0.0:0",
        "--auth",
        "api-key",
        local_metrics[0],
        local_metrics[1],
    ]);
    assert!(!ok);
    assert!(
        err.contains("without TLS") && err.contains("--tls-cert"),
        "{err}"
    );
    let (ok, err) = serve(&["--listen", "127.0.0.1:0", "--metrics-listen", "0.0.0.0:0"]);
    assert!(!ok && err.contains("server.metrics_listen"), "{err}");

    // Off loopback the REST gateway, like gRPC, needs TLS as well as authentication.
    let (ok, err) = serve(&[
        "--rest-listen",
        "0.0.0.0:0",
        "--auth",
        "api-key",
        "--listen",
        "127.0.0.1:0",
        local_metrics[0],
        local_metrics[1],
    ]);
    assert!(
        !ok && err.contains("server.rest_listen") && err.contains("plaintext"),
        "{err}"
    );

    // Authentication needs an explicit KEK source, not one generated beside the data.
    let (ok, err) = serve(&[
        "--listen",
        "127.0.0.1:0",
        "--auth",
        "api-key",
        local_metrics[0],
        local_metrics[1],
    ]);
    assert!(
        !ok && err.contains("storage.kek_file") && err.contains("--kek-file"),
        "{err}"
    );

    // On loopback, authentication may be off, with a warning.
    let s = Server::start(Path::new(&data), &[]);
    assert!(s.logged("authentication is off"));
}

#[test]
fn kek_rotation_re_keys_everything_and_retires_the_old_kek() {
    let dir = tempfile::tempdir().unwrap();
    let (data, kek) = data_dir(dir.path());
    let ops = new_key((data.as_str(), kek.as_str()), "ops", &["--admin"]);
    let s = Server::start(Path::new(&data), &["--auth", "api-key", "--kek-file", &kek]);
    let (ok, out, err) = keygen(&s.url, Some(&ops), "ed25519");
    assert!(ok, "{err}");
    let key = json(&out);
    let id = key["key_id"].as_str().unwrap().to_owned();
    assert!(sign(&s.url, &ops, &id, "before").0);
    assert!(s.terminate().success());

    let new_kek = dir.path().join("new.kek").display().to_string();
    let (ok, out, err) = run_cli(
        &[
            "kek",
            "rotate",
            "--data-dir",
            &data,
            "--kek-file",
            &kek,
            "--new-kek-file",
            &new_kek,
        ],
        &[],
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("1 key records re-sealed") && out.contains("2 audit events re-chained"),
        "{out}"
    );
    assert!(out.contains("generated"), "{out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&new_kek).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the generated KEK is private");
    }

    // The old KEK no longer opens the data directory; nothing was lost under the new one.
    let old = Server::try_start_full(
        Path::new(&data),
        "cpu",
        &["--auth", "api-key", "--kek-file", &kek],
        &[],
    );
    assert!(old.is_err(), "the old KEK was retired");
    let s = Server::start(
        Path::new(&data),
        &["--auth", "api-key", "--kek-file", &new_kek],
    );
    let (ok, out, err) = sign(&s.url, &ops, &id, "after");
    assert!(
        ok,
        "the same key and the same API key work after the rotation: {err}"
    );
    let sig = json(&out);
    let pk = hex::decode(key["public_key"].as_str().unwrap()).unwrap();
    let sig = hex::decode(sig["signature"].as_str().unwrap()).unwrap();
    assert!(
        ed25519_ok(&pk, b"after", &sig),
        "under the original public key"
    );
    assert!(s.terminate().success());
    let (ok, out, err) = run_cli(
        &[
            "audit",
            "verify",
            "--data-dir",
            &data,
            "--kek-file",
            &new_kek,
        ],
        &[],
    );
    assert!(ok && out.contains("3 events, chain intact"), "{out}{err}");
    // Rotating to the KEK already in use is refused.
    let (ok, _, err) = run_cli(
        &[
            "kek",
            "rotate",
            "--data-dir",
            &data,
            "--kek-file",
            &new_kek,
            "--new-kek-file",
            &new_kek,
        ],
        &[],
    );
    assert!(!ok && err.contains("in use"), "{err}");
}
