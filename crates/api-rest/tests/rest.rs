//! The REST gateway in process: the router over an `App` wired as `tessera serve` wires it
//! (in-memory store, CPU backend), called through tower. Every route answers as the OpenAPI
//! document says (responses checked against its schemas), signatures verify independently,
//! errors are `google.rpc.Status` with the mapped HTTP status, and API keys gate every call.
//! The chain calls sign what their published vectors say, and the results check out with
//! independent code (libsecp256k1, alloy's decoder).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use api_rest::json::b64;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use base64::Engine;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use service_core::batcher::BatcherConfig;
use service_core::memory::{MemoryClients, MemoryStore};
use service_core::{App, AppSetup, Auth, AuthMode, Kek, Limits, Observer, Policy, PresignPool};
use telemetry::{BuildInfo, Metrics};
use tower::ServiceExt;

fn router(auth: Auth) -> axum::Router {
    router_with_metrics(auth).0
}

/// The router (chain support on, no broadcaster) and the metrics it records into.
fn router_with_metrics(auth: Auth) -> (axum::Router, Arc<Metrics>) {
    let metrics = Arc::new(Metrics::new(&BuildInfo::default()));
    let app = App::embedded(AppSetup {
        store: Arc::new(MemoryStore::new()),
        sealer: Arc::new(Kek::from_bytes([7; 32])),
        accel: Arc::new(backend_cpu::CpuBackend::single_threaded()),
        observer: Arc::clone(&metrics) as Arc<dyn Observer>,
        batcher: BatcherConfig {
            max_batch_size: 64,
            max_queue_delay_us: 200,
            max_queue: 4096,
            workers: 2,
        },
        probe: || None,
        chains: Some(Arc::new(chains::ChainAdapter)),
        broadcaster: None,
        limits: Limits {
            max_message_bytes: 65536,
            max_batch_messages: 64,
            max_parties_frost: 64,
            max_parties_ecdsa: 16,
            max_concurrent_keygen: 4,
            max_batch_items_in_flight: 8192,
        },
        pool: PresignPool {
            target: 2,
            batch: 2,
        },
        backend: "cpu".into(),
        auth,
    })
    .unwrap();
    (
        api_rest::router(Arc::new(app), Arc::clone(&metrics), 1 << 20),
        metrics,
    )
}

/// One request; returns the status, the `Retry-After` header and the JSON body.
async fn call(
    r: &axum::Router,
    method: &str,
    path: &str,
    body: Option<Value>,
    bearer: Option<&str>,
) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder().method(method).uri(path);
    if let Some(k) = bearer {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let req = req
        .header("content-type", "application/json")
        .body(match body {
            Some(v) => Body::from(serde_json::to_vec(&v).unwrap()),
            None => Body::empty(),
        })
        .unwrap();
    let resp = r.clone().oneshot(req).await.unwrap();
    let status = resp.status();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {bytes:?}"));
    (status, retry, v)
}

/// Checks `v` against the OpenAPI schema `schema` (types, required and undeclared
/// properties, enums, array items, `$ref`s).
fn conforms(doc: &Value, schema: &Value, v: &Value, at: &str) {
    if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        return conforms(doc, &doc["components"]["schemas"][name], v, at);
    }
    match schema.get("type").and_then(Value::as_str) {
        Some("object") => {
            let obj = v
                .as_object()
                .unwrap_or_else(|| panic!("{at}: not an object: {v}"));
            let props = schema.get("properties").and_then(Value::as_object);
            for req in schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let k = req.as_str().unwrap();
                assert!(obj.contains_key(k), "{at}: `{k}` missing in {v}");
            }
            for (k, val) in obj {
                match props.and_then(|p| p.get(k)) {
                    Some(s) => conforms(doc, s, val, &format!("{at}.{k}")),
                    None => assert!(
                        schema.get("additionalProperties") != Some(&Value::Bool(false)),
                        "{at}: `{k}` is not in the document"
                    ),
                }
            }
        }
        Some("array") => {
            for (i, item) in v
                .as_array()
                .unwrap_or_else(|| panic!("{at}: not an array"))
                .iter()
                .enumerate()
            {
                conforms(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        Some("string") => {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("{at}: not a string: {v}"));
            if let Some(e) = schema.get("enum").and_then(Value::as_array) {
                assert!(e.iter().any(|x| x == s), "{at}: `{s}` not in {e:?}");
            }
            if schema.get("format").and_then(Value::as_str) == Some("byte") {
                assert!(
                    base64::engine::general_purpose::STANDARD.decode(s).is_ok(),
                    "{at}: not base64"
                );
            }
        }
        Some("integer") => assert!(v.is_u64() || v.is_i64(), "{at}: not an integer: {v}"),
        Some("boolean") => assert!(v.is_boolean(), "{at}: not a boolean: {v}"),
        other => panic!("{at}: schema type {other:?} not handled"),
    }
}

/// The schema of `operation_id`'s response with `status` ("200" or "default").
fn response_schema(doc: &Value, operation_id: &str, status: &str) -> Value {
    for (_, item) in doc["paths"].as_object().unwrap() {
        for (_, op) in item.as_object().unwrap() {
            if op["operationId"] == operation_id {
                return op["responses"][status]["content"]["application/json"]["schema"].clone();
            }
        }
    }
    panic!("no operation {operation_id}")
}

#[tokio::test]
async fn every_route_answers_as_the_openapi_document_says() {
    let r = router(Auth::none());
    let (s, _, doc) = call(&r, "GET", "/openapi.json", None, None).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.0.3");
    let check = |op: &str, status: &str, v: &Value| {
        conforms(&doc, &response_schema(&doc, op, status), v, op);
    };

    let (s, _, key) = call(
        &r,
        "POST",
        "/v1/keys",
        Some(json!({"scheme": "SCHEME_ED25519", "threshold": 2, "parties": 3, "label": "rest"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{key}");
    check("CreateKey", "200", &key);
    let id = key["keyId"].as_str().unwrap().to_owned();
    let pk = base64::engine::general_purpose::STANDARD
        .decode(key["publicKey"].as_str().unwrap())
        .unwrap();
    assert!(key["createdAt"].as_str().unwrap().ends_with('Z'));

    let (s, _, got) = call(&r, "GET", &format!("/v1/keys/{id}"), None, None).await;
    assert_eq!(s, StatusCode::OK);
    check("GetKey", "200", &got);
    assert_eq!(got, key);

    let (s, _, page) = call(&r, "GET", "/v1/keys?page_size=10", None, None).await;
    assert_eq!(s, StatusCode::OK);
    check("ListKeys", "200", &page);
    assert_eq!(page["keys"][0], key);

    let (s, _, sig) = call(
        &r,
        "POST",
        &format!("/v1/keys/{id}:sign"),
        Some(json!({"message": b64(b"over rest")})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{sig}");
    check("Sign", "200", &sig);
    let sig_bytes = base64::engine::general_purpose::STANDARD
        .decode(sig["signature"].as_str().unwrap())
        .unwrap();
    assert!(test_support::ed25519_ok(&pk, b"over rest", &sig_bytes));

    let msgs: Vec<String> = (0..5u8).map(|i| b64(&[i; 40])).collect();
    let (s, _, batch) = call(
        &r,
        "POST",
        &format!("/v1/keys/{id}:signBatch"),
        Some(json!({"messages": msgs})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{batch}");
    check("SignBatch", "200", &batch);
    for (i, s) in batch["signatures"].as_array().unwrap().iter().enumerate() {
        let sb = base64::engine::general_purpose::STANDARD
            .decode(s["signature"].as_str().unwrap())
            .unwrap();
        assert!(test_support::ed25519_ok(&pk, &[i as u8; 40], &sb));
    }

    let (s, _, v) = call(
        &r,
        "POST",
        "/v1/signatures:verify",
        Some(json!({"scheme": "SCHEME_ED25519", "publicKey": b64(&pk),
                    "message": b64(b"over rest"), "signature": b64(&sig_bytes)})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    check("Verify", "200", &v);
    assert_eq!(v["valid"], true);

    let (s, _, st) = call(&r, "GET", "/v1/status", None, None).await;
    assert_eq!(s, StatusCode::OK);
    check("GetStatus", "200", &st);
    assert_eq!(st["keyCount"], "1");

    let (s, _, imported) = call(
        &r,
        "POST",
        "/v1/keys:import",
        Some(
            json!({"scheme": "SCHEME_ECDSA_SECP256K1", "secret_key": b64(&[0x11; 32]),
                    "threshold": 2, "parties": 3}),
        ),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{imported}");
    check("ImportKey", "200", &imported);
    assert!(
        imported["ethereumAddress"]
            .as_str()
            .unwrap()
            .starts_with("0x")
    );

    for path in ["/healthz", "/readyz"] {
        let (s, _, h) = call(&r, "GET", path, None, None).await;
        assert_eq!(s, StatusCode::OK);
        conforms(&doc, &doc["components"]["schemas"]["Health"], &h, path);
    }

    // Errors: google.rpc.Status under the mapped HTTP status.
    let (s, _, e) = call(
        &r,
        "POST",
        &format!("/v1/keys/{id}:sign"),
        Some(json!({"message": b64(&[0; 70000])})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    check("Sign", "default", &e);
    assert_eq!(e["code"], 3);
    assert_eq!(
        e["details"][0]["@type"],
        "type.googleapis.com/google.rpc.BadRequest"
    );
    assert_eq!(e["details"][0]["fieldViolations"][0]["field"], "message");
    let (s, _, e) = call(
        &r,
        "POST",
        "/v1/keys",
        Some(json!({"scheme": "SCHEME_ED25519", "thresold": 2})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert!(e["message"].as_str().unwrap().contains("thresold"), "{e}");
    let (s, _, e) = call(
        &r,
        "GET",
        "/v1/keys/00000000000000000000000000000000",
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    check("GetKey", "default", &e);
    assert_eq!(e["code"], 5);
    let (s, _, e) = call(
        &r,
        "POST",
        &format!("/v1/keys/{id}:explode"),
        Some(json!({})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(e["code"], 5);
    let (s, _, _) = call(&r, "GET", "/v2/anything", None, None).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_keys_gate_every_call_with_401_403_and_429() {
    let mut reg = MemoryClients::default();
    let admin = reg.add("ops", Policy::everything());
    let reader = reg.add(
        "reader",
        Policy {
            admin: false,
            keys: vec![],
            schemes: vec!["*".into()],
            rate_per_s: Some(2),
        },
    );
    let r = router(Auth {
        mode: AuthMode::ApiKey,
        clients: Arc::new(reg),
    });
    let create = json!({"scheme": "SCHEME_BIP340", "threshold": 2, "parties": 3});
    let (s, _, e) = call(&r, "POST", "/v1/keys", Some(create.clone()), None).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(e["code"], 16);
    let (s, _, e) = call(&r, "GET", "/v1/status", None, Some("tsk_nope")).await;
    assert_eq!(
        (s, e["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!(16))
    );
    let (s, _, key) = call(&r, "POST", "/v1/keys", Some(create.clone()), Some(&admin)).await;
    assert_eq!(s, StatusCode::OK, "{key}");
    let id = key["keyId"].as_str().unwrap();
    let (s, _, e) = call(&r, "POST", "/v1/keys", Some(create), Some(&reader)).await;
    assert_eq!((s, e["code"].clone()), (StatusCode::FORBIDDEN, json!(7)));
    let (s, _, e) = call(
        &r,
        "POST",
        &format!("/v1/keys/{id}:sign"),
        Some(json!({"message": b64(&[1; 32])})),
        Some(&reader),
    )
    .await;
    assert_eq!(s, StatusCode::FORBIDDEN, "{e}");
    assert!(e["message"].as_str().unwrap().contains("reader"));
    // Third request of the reader within a second: over its rate of 2/s.
    let (s, retry, e) = call(&r, "GET", "/v1/status", None, Some(&reader)).await;
    assert_eq!(s, StatusCode::TOO_MANY_REQUESTS, "{e}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert_eq!(e["code"], 8);
    assert_eq!(
        e["details"][0]["@type"],
        "type.googleapis.com/google.rpc.RetryInfo"
    );
    assert!(
        e["details"][0]["retryDelay"]
            .as_str()
            .unwrap()
            .ends_with('s')
    );
}

fn unb64(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v.as_str().unwrap_or_else(|| panic!("not a string: {v}")))
        .unwrap()
}

/// The field named by the `BadRequest` violation of a 400 `google.rpc.Status`.
fn violated_field(e: &Value) -> &str {
    assert_eq!(e["code"], 3, "{e}");
    e["details"][0]["fieldViolations"][0]["field"]
        .as_str()
        .unwrap_or_else(|| panic!("no field violation in {e}"))
}

/// The public key libsecp256k1 recovers from an `r‖s‖v` signature (v = 27 + recovery id)
/// over `digest`, compressed.
fn recover(digest: &[u8], rsv: &[u8]) -> Vec<u8> {
    assert_eq!(rsv.len(), 65);
    let rid = secp256k1::ecdsa::RecoveryId::try_from(i32::from(rsv[64]) - 27).unwrap();
    let sig = secp256k1::ecdsa::RecoverableSignature::from_compact(&rsv[..64], rid).unwrap();
    let msg = secp256k1::Message::from_digest(digest.try_into().unwrap());
    secp256k1::SECP256K1
        .recover_ecdsa(msg, &sig)
        .unwrap()
        .serialize()
        .to_vec()
}

/// A legacy Solana message: `from` sends `lamports` to `to` with a System transfer.
fn solana_transfer(from: &[u8], to: [u8; 32], lamports: u64) -> Vec<u8> {
    let mut m = vec![1, 0, 1, 3]; // header (1 signer, 1 read-only unsigned), 3 accounts
    m.extend_from_slice(from);
    m.extend_from_slice(&to);
    m.extend_from_slice(&[0; 32]); // the System program
    m.extend_from_slice(&[7; 32]); // recent blockhash
    m.extend_from_slice(&[1, 2, 2, 0, 1, 12]); // 1 instruction: program 2, accounts [0, 1]
    m.extend_from_slice(&2u32.to_le_bytes()); // Transfer
    m.extend_from_slice(&lamports.to_le_bytes());
    m
}

#[tokio::test]
async fn chain_calls_sign_ethereum_and_solana_over_rest() {
    use alloy_consensus::{SignableTransaction, TxEip1559};
    use alloy_primitives::{Bytes, TxKind, U256, keccak256};

    let (r, metrics) = router_with_metrics(Auth::none());
    let (_, _, doc) = call(&r, "GET", "/openapi.json", None, None).await;
    let check = |op: &str, status: &str, v: &Value| {
        conforms(&doc, &response_schema(&doc, op, status), v, op);
    };
    let (s, _, ecdsa) = call(
        &r,
        "POST",
        "/v1/keys",
        Some(json!({"scheme": "SCHEME_ECDSA_SECP256K1", "threshold": 2, "parties": 3})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{ecdsa}");
    let (s, _, ed) = call(
        &r,
        "POST",
        "/v1/keys",
        Some(json!({"scheme": "SCHEME_ED25519", "threshold": 2, "parties": 3})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{ed}");
    let eth_id = ecdsa["keyId"].as_str().unwrap().to_owned();
    let ed_id = ed["keyId"].as_str().unwrap().to_owned();
    let eth_pk = unb64(&ecdsa["publicKey"]);
    let ed_pk = unb64(&ed["publicKey"]);
    let from = ecdsa["ethereumAddress"].as_str().unwrap().to_owned();
    assert!(from.starts_with("0x"), "{ecdsa}");

    // GetAddress.
    let (s, _, a) = call(
        &r,
        "GET",
        &format!("/v1/keys/{eth_id}/address?chain=ethereum"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    check("GetAddress", "200", &a);
    assert_eq!(a["address"], from.as_str());
    let (s, _, a) = call(
        &r,
        "GET",
        &format!("/v1/keys/{eth_id}/address?chain=bitcoin&network=regtest"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert!(a["address"].as_str().unwrap().starts_with("bcrt1q"), "{a}");
    let (s, _, a) = call(
        &r,
        "GET",
        &format!("/v1/keys/{ed_id}/address?chain=CHAIN_SOLANA"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{a}");
    assert!(
        (32..=44).contains(&a["address"].as_str().unwrap().len()),
        "{a}"
    );
    let (s, _, e) = call(
        &r,
        "GET",
        &format!("/v1/keys/{eth_id}/address?chain=solana"),
        None,
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    check("GetAddress", "default", &e);
    let m = e["message"].as_str().unwrap();
    for word in ["ecdsa_secp256k1", "solana", "Ed25519"] {
        assert!(m.contains(word), "`{word}` not in {m}");
    }
    for (query, field) in [
        ("", "chain"),
        ("?network=regtest", "chain"),
        ("?chain=dogecoin", "chain"),
        ("?chain=ethereum&page_size=1", "query"),
        ("?chain=ethereum&network=regtest", "network"),
    ] {
        let (s, _, e) = call(
            &r,
            "GET",
            &format!("/v1/keys/{eth_id}/address{query}"),
            None,
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{query}: {e}");
        assert_eq!(violated_field(&e), field, "{query}: {e}");
    }

    // SignPersonalMessage: EIP-191's "Hello World" digest, recovered by libsecp256k1.
    let (s, _, p) = call(
        &r,
        "POST",
        &format!("/v1/keys/{eth_id}:signPersonalMessage"),
        Some(json!({"message": b64(b"Hello World"), "idempotency_key": "hello-1"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{p}");
    check("SignPersonalMessage", "200", &p);
    let digest = unb64(&p["digest"]);
    assert_eq!(
        hex::encode(&digest),
        "a1de988600a42c4b4ab089b619297c17d53cffae5d5120d82d8a92d0bb3b78f2"
    );
    assert_eq!(recover(&digest, &unb64(&p["signature"])), eth_pk);
    assert_eq!(p["address"], from.as_str());

    // SignTypedData: the EIP-712 Mail example, as an object and as a string holding it.
    let mail = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/vectors/ethereum/eip712_mail.json"
    ))
    .unwrap();
    let mail_object: Value = serde_json::from_str(&mail).unwrap();
    for typed in [mail_object, Value::String(mail)] {
        let (s, _, t) = call(
            &r,
            "POST",
            &format!("/v1/keys/{eth_id}:signTypedData"),
            Some(json!({"typedData": typed})),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::OK, "{t}");
        check("SignTypedData", "200", &t);
        let digest = unb64(&t["digest"]);
        assert_eq!(
            hex::encode(&digest),
            "be609aee343fb3c4b28e1df9e632fca64fcfaede20f02e86244efddf30957bd2"
        );
        assert_eq!(recover(&digest, &unb64(&t["signature"])), eth_pk);
        assert_eq!(t["address"], from.as_str());
        assert_eq!(
            (&t["summary"]["chain"], &t["summary"]["kind"]),
            (&json!("ethereum"), &json!("eip712"))
        );
    }
    let (s, _, e) = call(
        &r,
        "POST",
        &format!("/v1/keys/{eth_id}:signTypedData"),
        Some(json!({"typedData": [1, 2]})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(violated_field(&e), "typed_data_json");

    // SignTransaction: an EIP-1559 transfer on chain 1; alloy decodes the signed envelope and
    // libsecp256k1 recovers the key from its signature.
    let to: alloy_primitives::Address = "0x1111111111111111111111111111111111111111"
        .parse()
        .unwrap();
    let tx = TxEip1559 {
        chain_id: 1,
        nonce: 7,
        gas_limit: 21_000,
        max_fee_per_gas: 30_000_000_000,
        max_priority_fee_per_gas: 1_000_000_000,
        to: TxKind::Call(to),
        value: U256::from(250_000_000_000_000_000u64),
        access_list: Default::default(),
        input: Bytes::new(),
    };
    let unsigned = tx.encoded_for_signing();
    let (s, _, t) = call(
        &r,
        "POST",
        &format!("/v1/keys/{eth_id}:signTransaction"),
        Some(json!({"ethereum": {"unsignedTx": b64(&unsigned)}, "idempotencyKey": "tx-7"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    check("SignTransaction", "200", &t);
    let signed_tx = unb64(&t["ethereum"]["signedTx"]);
    assert_eq!(
        keccak256(&signed_tx).to_vec(),
        unb64(&t["ethereum"]["txHash"])
    );
    assert_eq!(t["ethereum"]["from"], from.as_str());
    assert_eq!(t["summary"]["kind"], "eip1559");
    assert_eq!(t["summary"]["network"], "1");
    assert_eq!(
        t["summary"]["fee"],
        (21_000u64 * 30_000_000_000).to_string()
    );
    assert_eq!(t["summary"]["transfers"][0]["amount"], "250000000000000000");
    assert_eq!(t["broadcastTxid"], "");
    assert!(
        t.get("bitcoin").is_none() && t.get("solana").is_none(),
        "{t}"
    );
    let decoded =
        alloy_consensus::Signed::<TxEip1559>::eip2718_decode(&mut signed_tx.as_slice()).unwrap();
    assert_eq!(decoded.tx(), &tx);
    let sig = decoded.signature();
    let mut rsv = [0u8; 65];
    rsv[..32].copy_from_slice(&sig.r().to_be_bytes::<32>());
    rsv[32..64].copy_from_slice(&sig.s().to_be_bytes::<32>());
    rsv[64] = 27 + u8::from(sig.v());
    assert_eq!(recover(keccak256(&unsigned).as_slice(), &rsv), eth_pk);
    // The same idempotency key answers the same transaction.
    let (s, _, again) = call(
        &r,
        "POST",
        &format!("/v1/keys/{eth_id}:signTransaction"),
        Some(json!({"ethereum": {"unsigned_tx": b64(&unsigned)}, "idempotency_key": "tx-7"})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again, t);

    // SignTransaction for Solana: a System transfer signed by the Ed25519 key.
    let message = solana_transfer(&ed_pk, [9; 32], 1_500_000);
    let (s, _, t) = call(
        &r,
        "POST",
        &format!("/v1/keys/{ed_id}:signTransaction"),
        Some(json!({"solana": {"message": b64(&message)}})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{t}");
    check("SignTransaction", "200", &t);
    let sig = unb64(&t["solana"]["signature"]);
    assert!(test_support::ed25519_ok(&ed_pk, &message, &sig));
    assert_eq!(
        unb64(&t["solana"]["transaction"]),
        [&[1u8][..], &sig, &message].concat()
    );
    assert_eq!(t["solana"]["complete"], true);
    assert_eq!(t["summary"]["kind"], "solana-legacy");
    assert_eq!(t["summary"]["transfers"][0]["amount"], "1500000");

    // Refusals: 400 naming the field, nothing signed.
    let good = json!({"unsignedTx": b64(&unsigned)});
    for (body, field) in [
        (
            json!({"ethereum": {"unsignedTx": b64(&[0x02, 0xc0, 0xff])}}),
            "transaction.ethereum.unsigned_tx",
        ),
        (
            json!({"ethereum": good, "solana": {"message": b64(&message)}}),
            "transaction",
        ),
        (json!({"idempotencyKey": "nothing"}), "transaction"),
        (json!({"ethereum": good, "broadcast": true}), "broadcast"),
        (json!({"ethereum": {"unsignedTx": "@@"}}), "body"),
        (json!({"ethereum": good, "broadcst": true}), "body"),
        (
            json!({"ethereum": {"unsignedTx": b64(&unsigned), "to": "x"}}),
            "body",
        ),
    ] {
        let (s, _, e) = call(
            &r,
            "POST",
            &format!("/v1/keys/{eth_id}:signTransaction"),
            Some(body.clone()),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}: {e}");
        check("SignTransaction", "default", &e);
        assert_eq!(violated_field(&e), field, "{body}: {e}");
    }
    let (s, _, e) = call(
        &r,
        "POST",
        &format!("/v1/keys/{eth_id}:signTransaction"),
        Some(json!({"solana": {"message": b64(&message)}})),
        None,
    )
    .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{e}");
    assert_eq!(violated_field(&e), "key_id");

    // Request metrics carry the gRPC method names.
    let text = metrics.render();
    for rpc in [
        "GetAddress",
        "SignTransaction",
        "SignTypedData",
        "SignPersonalMessage",
    ] {
        assert!(
            text.contains(&format!("rpc=\"{rpc}\"")),
            "no {rpc} in\n{text}"
        );
    }
}
