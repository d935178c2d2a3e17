//! End-to-end: the REST/JSON gateway of the real binary (`--rest-listen`), reached with an
//! HTTP client (hyper) and an API key from `tessera apikey create`: keys are created and used
//! over HTTP, every signature is checked by independent verifiers, errors are
//! `google.rpc.Status` bodies under the mapped HTTP status, and the OpenAPI document describes
//! the routes the server answers.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{Value, json};
use test_support::{Server, bip340_ok, ed25519_ok, run_cli};

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// The REST address the server printed.
fn rest_addr(s: &Server) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(a) = s
            .log
            .lock()
            .unwrap()
            .iter()
            .find_map(|l| l.strip_prefix("tessera: REST listening on "))
        {
            return a.trim().to_owned();
        }
        assert!(Instant::now() < deadline, "no REST listening line");
        std::thread::sleep(Duration::from_millis(20));
    }
}

async fn call(
    http: &Http,
    base: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (u16, Value) {
    let mut req = hyper::Request::builder()
        .method(method)
        .uri(format!("http://{base}{path}"))
        .header("content-type", "application/json");
    if let Some(k) = bearer {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = body.map_or_else(Bytes::new, |v| Bytes::from(serde_json::to_vec(&v).unwrap()));
    let resp = tokio::time::timeout(
        Duration::from_secs(30),
        http.request(req.body(Full::new(body)).unwrap()),
    )
    .await
    .expect("a deadline on every call")
    .unwrap();
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap())
}

fn bytes_of(v: &Value) -> Vec<u8> {
    STANDARD.decode(v.as_str().unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_and_used_over_http_with_an_api_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data").display().to_string();
    let kek = dir.path().join("kek.hex");
    std::fs::write(&kek, "77".repeat(32)).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&kek, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let kek = kek.display().to_string();
    let create = |name: &str, extra: &[&str]| {
        let mut args = vec![
            "apikey",
            "create",
            "--data-dir",
            &data,
            "--kek-file",
            &kek,
            "--name",
            name,
        ];
        args.extend_from_slice(extra);
        let (ok, out, err) = run_cli(&args, &[]);
        assert!(ok, "{err}");
        out.trim().to_owned()
    };
    let ops = create("ops", &["--admin"]);
    let outsider = create("outsider", &[]);
    let s = Server::start(
        Path::new(&data),
        &[
            "--auth",
            "api-key",
            "--kek-file",
            &kek,
            "--rest-listen",
            "127.0.0.1:0",
        ],
    );
    let base = rest_addr(&s);
    let http: Http = Client::builder(TokioExecutor::new()).build_http();

    let (st, h) = call(&http, &base, "GET", "/healthz", None, None).await;
    assert_eq!((st, h["status"].as_str()), (200, Some("SERVING")));
    let (st, h) = call(&http, &base, "GET", "/readyz", None, None).await;
    assert_eq!((st, h["status"].as_str()), (200, Some("SERVING")));
    let (st, doc) = call(&http, &base, "GET", "/openapi.json", None, None).await;
    assert_eq!(st, 200);
    for path in [
        "/v1/keys",
        "/v1/keys:import",
        "/v1/keys/{key_id}",
        "/v1/keys/{key_id}:sign",
        "/v1/keys/{key_id}:signBatch",
        "/v1/signatures:verify",
        "/v1/status",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} documented");
    }

    // No credential: 401 with a google.rpc.Status body; nothing created.
    let ed_req = json!({"scheme": "SCHEME_ED25519", "threshold": 2, "parties": 3, "label": "http"});
    let (st, e) = call(&http, &base, "POST", "/v1/keys", Some(ed_req.clone()), None).await;
    assert_eq!((st, e["code"].as_i64()), (401, Some(16)), "{e}");

    let (st, ed) = call(&http, &base, "POST", "/v1/keys", Some(ed_req), Some(&ops)).await;
    assert_eq!(st, 200, "{ed}");
    let (st, bip) = call(
        &http,
        &base,
        "POST",
        "/v1/keys",
        Some(json!({"scheme": "SCHEME_BIP340", "threshold": 2, "parties": 3})),
        Some(&ops),
    )
    .await;
    assert_eq!(st, 200, "{bip}");
    let (ed_id, bip_id) = (
        ed["keyId"].as_str().unwrap(),
        bip["keyId"].as_str().unwrap(),
    );

    let (st, sig) = call(
        &http,
        &base,
        "POST",
        &format!("/v1/keys/{ed_id}:sign"),
        Some(json!({"message": STANDARD.encode("paid over http")})),
        Some(&ops),
    )
    .await;
    assert_eq!(st, 200, "{sig}");
    assert!(ed25519_ok(
        &bytes_of(&ed["publicKey"]),
        b"paid over http",
        &bytes_of(&sig["signature"])
    ));
    let msgs: Vec<[u8; 32]> = (0..8u8).map(|i| [i; 32]).collect();
    let (st, batch) = call(
        &http,
        &base,
        "POST",
        &format!("/v1/keys/{bip_id}:signBatch"),
        Some(json!({"messages": msgs.iter().map(|m| STANDARD.encode(m)).collect::<Vec<_>>()})),
        Some(&ops),
    )
    .await;
    assert_eq!(st, 200, "{batch}");
    for (m, s) in msgs.iter().zip(batch["signatures"].as_array().unwrap()) {
        assert!(bip340_ok(
            &bytes_of(&s["verifyingKey"]),
            m,
            &bytes_of(&s["signature"])
        ));
    }
    let (st, v) = call(
        &http,
        &base,
        "POST",
        "/v1/signatures:verify",
        Some(
            json!({"scheme": "SCHEME_ED25519", "publicKey": ed["publicKey"],
                    "message": STANDARD.encode("paid over http"), "signature": sig["signature"]}),
        ),
        Some(&ops),
    )
    .await;
    assert_eq!((st, v["valid"].as_bool()), (200, Some(true)));

    // The outsider's policy names no key: 403, and its list is empty.
    let (st, e) = call(
        &http,
        &base,
        "GET",
        &format!("/v1/keys/{ed_id}"),
        None,
        Some(&outsider),
    )
    .await;
    assert_eq!((st, e["code"].as_i64()), (403, Some(7)), "{e}");
    let (st, page) = call(&http, &base, "GET", "/v1/keys", None, Some(&outsider)).await;
    assert_eq!(st, 200);
    assert_eq!(page["keys"], json!([]));
    let (st, page) = call(
        &http,
        &base,
        "GET",
        "/v1/keys?page_size=1",
        None,
        Some(&ops),
    )
    .await;
    assert_eq!(st, 200);
    assert_eq!(page["keys"].as_array().unwrap().len(), 1);
    assert!(!page["nextPageToken"].as_str().unwrap().is_empty());
    let (st, status) = call(&http, &base, "GET", "/v1/status", None, Some(&ops)).await;
    assert_eq!((st, status["keyCount"].as_str()), (200, Some("2")));

    // The REST calls are in the same request metrics as gRPC's.
    let metrics = s.scrape();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("tessera_request_duration_seconds_count")
                && l.contains("rpc=\"SignBatch\"")
                && l.contains("outcome=\"OK\"")),
        "{metrics}"
    );
}
