#![doc = include_str!("../README.md")]

mod error;
pub mod json;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;
use service_core::app::{ChainOptions, CreateKey, ImportKey, SignRequest, VerifyRequest};
use service_core::chain::{ChainKind, Unsigned};
use service_core::{App, Caller, Credential, Scheme, UseCase};
use telemetry::Metrics;
use zeroize::Zeroizing;

pub use error::Failure;

/// The OpenAPI 3 document of this gateway, served at `GET /openapi.json`.
pub const OPENAPI: &str = include_str!("../openapi.json");

/// What the handlers share.
#[derive(Clone, Debug)]
struct Gateway {
    app: Arc<App>,
    metrics: Arc<Metrics>,
}

/// The gateway's routes over `app`, recording request metrics in `metrics`; request bodies
/// larger than `max_body_bytes` are refused (413).
pub fn router(app: Arc<App>, metrics: Arc<Metrics>, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/v1/keys", post(create_key).get(list_keys))
        .route("/v1/keys:import", post(import_key))
        .route("/v1/keys/{key}", get(get_key).post(key_method))
        .route("/v1/keys/{key}/address", get(get_address))
        .route("/v1/signatures:verify", post(verify))
        .route("/v1/status", get(status))
        .route("/openapi.json", get(openapi))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(fallback)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Gateway { app, metrics })
}

/// `value` as a JSON response with `status`.
pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = status;
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        }
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// The identities (SAN DNS names, then common names) of the client certificate a TLS listener
/// verified for the connection; the listener puts it in each request's extensions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientCertificate(pub Vec<String>);

/// A request's credential: its `authorization: Bearer` API key, else the verified client
/// certificate's identities, else none.
struct Cred(Credential);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Cred {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, Self::Rejection> {
        Ok(Cred(credential(&parts.headers, parts.extensions.get())))
    }
}

fn credential(headers: &HeaderMap, cert: Option<&ClientCertificate>) -> Credential {
    if let Some(v) = headers.get(header::AUTHORIZATION)
        && let Ok(text) = v.to_str()
        && let Some(key) = service_core::auth::bearer(text)
    {
        return Credential::ApiKey(key);
    }
    match cert {
        Some(c) => Credential::Certificate(c.0.clone()),
        None => Credential::None,
    }
}

/// Parses a JSON body into `T`; a malformed one is INVALID_ARGUMENT naming the problem.
fn body<T: serde::de::DeserializeOwned>(bytes: &Bytes) -> Result<T, Failure> {
    serde_json::from_slice(bytes).map_err(|e| Failure::bad_request("body", e.to_string()))
}

impl Gateway {
    async fn caller(&self, cred: &Cred) -> Result<Arc<Caller>, Failure> {
        self.app
            .authenticate(&cred.0)
            .await
            .map_err(|e| Failure::of("", &e))
    }

    /// Records the request's metrics and turns a use case's result into a response.
    fn finish<T, R: Serialize>(
        &self,
        rpc: &'static str,
        start: Instant,
        result: Result<UseCase<T>, Failure>,
        respond: impl FnOnce(T) -> R,
    ) -> Response {
        let seconds = start.elapsed().as_secs_f64();
        let label = |s: Option<Scheme>| s.map_or("none", Scheme::as_str);
        let failure = match result {
            Ok(Ok(out)) => {
                let scheme = label(out.scheme);
                self.metrics.observe_request(
                    rpc,
                    scheme,
                    out.cost.backend.unwrap_or("none"),
                    "OK",
                    seconds,
                );
                if out.cost.cpu_seconds > 0.0 {
                    self.metrics
                        .observe_request_cpu(rpc, scheme, out.cost.cpu_seconds);
                }
                return json_response(StatusCode::OK, &respond(out.value));
            }
            Ok(Err(f)) => {
                let failure = Failure::of(rpc, &f.error);
                self.metrics.observe_request(
                    rpc,
                    label(f.scheme),
                    "none",
                    failure.code_name,
                    seconds,
                );
                failure
            }
            Err(failure) => {
                self.metrics
                    .observe_request(rpc, "none", "none", failure.code_name, seconds);
                failure
            }
        };
        failure.into_response()
    }
}

async fn create_key(State(g): State<Gateway>, cred: Cred, bytes: Bytes) -> Response {
    let start = Instant::now();
    let result = async {
        let caller = g.caller(&cred).await?;
        let b: json::CreateKeyBody = body(&bytes)?;
        let scheme = json::scheme_of("scheme", &b.scheme).map_err(|e| Failure::of("", &e))?;
        Ok(g.app
            .create_key(
                &caller,
                CreateKey {
                    scheme,
                    threshold: b.threshold,
                    parties: b.parties,
                    label: b.label,
                    idempotency_key: b.idempotency_key,
                },
            )
            .await)
    }
    .await;
    g.finish("CreateKey", start, result, json::KeyInfo::from)
}

async fn import_key(State(g): State<Gateway>, cred: Cred, bytes: Bytes) -> Response {
    let start = Instant::now();
    let result = async {
        let caller = g.caller(&cred).await?;
        let mut b: json::ImportKeyBody = body(&bytes)?;
        let scheme = json::scheme_of("scheme", &b.scheme).map_err(|e| Failure::of("", &e))?;
        let secret_key = Zeroizing::new(std::mem::take(&mut b.secret_key.0));
        Ok(g.app
            .import_key(
                &caller,
                ImportKey {
                    scheme,
                    secret_key,
                    threshold: b.threshold,
                    parties: b.parties,
                    label: std::mem::take(&mut b.label),
                    idempotency_key: std::mem::take(&mut b.idempotency_key),
                },
            )
            .await)
    }
    .await;
    g.finish("ImportKey", start, result, json::KeyInfo::from)
}

async fn get_key(State(g): State<Gateway>, cred: Cred, Path(key): Path<String>) -> Response {
    let start = Instant::now();
    let result = async {
        let caller = g.caller(&cred).await?;
        Ok(g.app.get_key(&caller, key).await)
    }
    .await;
    g.finish("GetKey", start, result, json::KeyInfo::from)
}

/// `page_size` and `page_token` from the query (`pageSize`/`pageToken` accepted too).
fn page_query(query: Option<&str>) -> Result<(u32, String), Failure> {
    let (mut size, mut token) = (0u32, String::new());
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "page_size" | "pageSize" => {
                size = v.parse().map_err(|_| {
                    Failure::bad_request("page_size", format!("`{v}` is not a number"))
                })?;
            }
            "page_token" | "pageToken" => {
                if !v.bytes().all(|b| b.is_ascii_alphanumeric()) {
                    return Err(Failure::bad_request(
                        "page_token",
                        "must be a token returned by an earlier page",
                    ));
                }
                v.clone_into(&mut token);
            }
            other => {
                return Err(Failure::bad_request(
                    "query",
                    format!("unknown parameter `{other}`; expected page_size, page_token"),
                ));
            }
        }
    }
    Ok((size, token))
}

async fn list_keys(State(g): State<Gateway>, cred: Cred, RawQuery(query): RawQuery) -> Response {
    let start = Instant::now();
    let result = async {
        let caller = g.caller(&cred).await?;
        let (size, token) = page_query(query.as_deref())?;
        Ok(g.app.list_keys(&caller, size, token).await)
    }
    .await;
    g.finish("ListKeys", start, result, json::ListKeys::from)
}

/// `chain` and `network` from the query of `GET /v1/keys/{key_id}/address`.
fn address_query(query: Option<&str>) -> Result<(ChainKind, String), Failure> {
    let (mut chain, mut network) = ("", String::new());
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "chain" => chain = v,
            "network" => v.clone_into(&mut network),
            other => {
                return Err(Failure::bad_request(
                    "query",
                    format!("unknown parameter `{other}`; expected chain, network"),
                ));
            }
        }
    }
    let chain = json::chain_of("chain", chain).map_err(|e| Failure::of("", &e))?;
    Ok((chain, network))
}

async fn get_address(
    State(g): State<Gateway>,
    cred: Cred,
    Path(key): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let start = Instant::now();
    let result = async {
        let caller = g.caller(&cred).await?;
        let (chain, network) = address_query(query.as_deref())?;
        Ok(g.app.get_address(&caller, key, chain, network).await)
    }
    .await;
    g.finish("GetAddress", start, result, |address| json::Address {
        address,
    })
}

/// `POST /v1/keys/{key_id}:sign`, `:signBatch`, `:signTransaction`, `:signTypedData` and
/// `:signPersonalMessage` (custom methods after a colon).
async fn key_method(
    State(g): State<Gateway>,
    cred: Cred,
    Path(key): Path<String>,
    bytes: Bytes,
) -> Response {
    let start = Instant::now();
    match key.rsplit_once(':') {
        Some((id, "sign")) => {
            let result = async {
                let caller = g.caller(&cred).await?;
                let b: json::SignBody = body(&bytes)?;
                Ok(g.app
                    .sign(
                        &caller,
                        SignRequest {
                            key_id: id.to_owned(),
                            messages: vec![b.message.0],
                            taproot_merkle_root: b.taproot_merkle_root.map(|r| r.0),
                            idempotency_key: b.idempotency_key,
                        },
                        false,
                    )
                    .await)
            }
            .await;
            g.finish("Sign", start, result, |mut sigs| {
                sigs.pop().map(json::SignResponse::from)
            })
        }
        Some((id, "signBatch")) => {
            let result = async {
                let caller = g.caller(&cred).await?;
                let b: json::SignBatchBody = body(&bytes)?;
                Ok(g.app
                    .sign(
                        &caller,
                        SignRequest {
                            key_id: id.to_owned(),
                            messages: b.messages.into_iter().map(|m| m.0).collect(),
                            taproot_merkle_root: b.taproot_merkle_root.map(|r| r.0),
                            idempotency_key: String::new(),
                        },
                        true,
                    )
                    .await)
            }
            .await;
            g.finish("SignBatch", start, result, |sigs| json::SignBatch {
                signatures: sigs.into_iter().map(json::SignResponse::from).collect(),
            })
        }
        Some((id, "signTransaction")) => {
            let result = async {
                let caller = g.caller(&cred).await?;
                let b: json::SignTransactionBody = body(&bytes)?;
                let (unsigned, options) = b.into_parts().map_err(|e| Failure::of("", &e))?;
                Ok(g.app
                    .sign_chain(&caller, id.to_owned(), unsigned, options)
                    .await)
            }
            .await;
            g.finish(
                "SignTransaction",
                start,
                result,
                json::SignTransaction::from,
            )
        }
        Some((id, "signTypedData")) => {
            let result = async {
                let caller = g.caller(&cred).await?;
                let b: json::SignTypedDataBody = body(&bytes)?;
                let typed = b.typed_data_json().map_err(|e| Failure::of("", &e))?;
                Ok(g.app
                    .sign_chain(
                        &caller,
                        id.to_owned(),
                        Unsigned::EthereumTypedData(typed),
                        ChainOptions {
                            idempotency_key: b.idempotency_key,
                            broadcast: false,
                        },
                    )
                    .await)
            }
            .await;
            g.finish("SignTypedData", start, result, json::SignTypedData::from)
        }
        Some((id, "signPersonalMessage")) => {
            let result = async {
                let caller = g.caller(&cred).await?;
                let b: json::SignPersonalMessageBody = body(&bytes)?;
                Ok(g.app
                    .sign_chain(
                        &caller,
                        id.to_owned(),
                        Unsigned::EthereumPersonalMessage(b.message.0),
                        ChainOptions {
                            idempotency_key: b.idempotency_key,
                            broadcast: false,
                        },
                    )
                    .await)
            }
            .await;
            g.finish("SignPersonalMessage", start, result, |c| {
                json::SignPersonalMessage::from(c.signed)
            })
        }
        _ => Failure::not_found(&format!("POST /v1/keys/{key}")).into_response(),
    }
}

async fn verify(State(g): State<Gateway>, cred: Cred, bytes: Bytes) -> Response {
    let start = Instant::now();
    let result = async {
        g.caller(&cred).await?;
        let b: json::VerifyBody = body(&bytes)?;
        let scheme = json::scheme_of("scheme", &b.scheme).map_err(|e| Failure::of("", &e))?;
        Ok(g.app
            .verify(VerifyRequest {
                scheme,
                public_key: b.public_key.0,
                message: b.message.0,
                signature: b.signature.0,
            })
            .await)
    }
    .await;
    g.finish("Verify", start, result, |valid| json::Verify { valid })
}

async fn status(State(g): State<Gateway>, cred: Cred) -> Response {
    let start = Instant::now();
    let result = async {
        g.caller(&cred).await?;
        Ok(g.app.status().await)
    }
    .await;
    g.finish("GetStatus", start, result, json::Status::from)
}

async fn openapi() -> Response {
    let mut r = Response::new(Body::from(OPENAPI));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Liveness: the process answers.
async fn healthz() -> Response {
    json_response(StatusCode::OK, &serde_json::json!({ "status": "SERVING" }))
}

/// Readiness: the store answers and the KEK opens the stored keys.
async fn readyz(State(g): State<Gateway>) -> Response {
    match g.app.check_health().await {
        Ok(()) => json_response(StatusCode::OK, &serde_json::json!({ "status": "SERVING" })),
        Err(e) => {
            tracing::warn!(error = %e.chain(), "readiness check failed");
            json_response(
                StatusCode::SERVICE_UNAVAILABLE,
                &serde_json::json!({ "status": "NOT_SERVING" }),
            )
        }
    }
}

async fn fallback(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    Failure::not_found(&format!("{method} {}", uri.path())).into_response()
}
