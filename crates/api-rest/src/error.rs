//! The one mapping from `service-core` errors to REST responses: the HTTP status of the gRPC
//! code (as `google.api.http` transcoding maps them) and a `google.rpc.Status` body in JSON,
//! with `BadRequest` field violations for INVALID_ARGUMENT and `RetryInfo` plus a
//! `Retry-After` header for RESOURCE_EXHAUSTED. An internal error's text is logged under a
//! request id; the client gets the id only.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rand_core::{OsRng, RngCore};
use service_core::{Error, ErrorKind};

/// A failed request: its HTTP status and `google.rpc.Status` body.
#[derive(Debug)]
pub struct Failure {
    /// HTTP status.
    pub http: StatusCode,
    /// gRPC code number.
    pub code: i32,
    /// Code name, for metrics.
    pub code_name: &'static str,
    /// The message.
    pub message: String,
    /// `google.rpc` details, as JSON objects with `@type`.
    pub details: Vec<serde_json::Value>,
    /// Back-off for `Retry-After`.
    pub retry_after: Option<Duration>,
}

fn request_id() -> String {
    let mut id = [0u8; 8];
    OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// `google.protobuf.Duration` in JSON: seconds with a fraction and an `s`.
fn duration_json(d: Duration) -> String {
    format!("{}.{:03}s", d.as_secs(), d.subsec_millis())
}

impl Failure {
    /// The response for `e` from the route `rpc` (internal errors are logged here).
    pub fn of(rpc: &'static str, e: &Error) -> Self {
        let (http, code, code_name) = match e.kind() {
            ErrorKind::InvalidArgument => (StatusCode::BAD_REQUEST, 3, "INVALID_ARGUMENT"),
            ErrorKind::NotFound => (StatusCode::NOT_FOUND, 5, "NOT_FOUND"),
            ErrorKind::ResourceExhausted => {
                (StatusCode::TOO_MANY_REQUESTS, 8, "RESOURCE_EXHAUSTED")
            }
            ErrorKind::FailedPrecondition => (StatusCode::BAD_REQUEST, 9, "FAILED_PRECONDITION"),
            ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, 14, "UNAVAILABLE"),
            ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, 16, "UNAUTHENTICATED"),
            ErrorKind::PermissionDenied => (StatusCode::FORBIDDEN, 7, "PERMISSION_DENIED"),
            _ => {
                let id = request_id();
                tracing::error!(request_id = %id, rpc, error = %e.chain(), "request failed");
                return Self {
                    http: StatusCode::INTERNAL_SERVER_ERROR,
                    code: 13,
                    code_name: "INTERNAL",
                    message: format!(
                        "internal error; the server log has the details under request id {id}"
                    ),
                    details: Vec::new(),
                    retry_after: None,
                };
            }
        };
        let mut details = Vec::new();
        let mut retry_after = None;
        match e {
            Error::InvalidArgument { field, problem } => details.push(serde_json::json!({
                "@type": "type.googleapis.com/google.rpc.BadRequest",
                "fieldViolations": [{ "field": field, "description": problem }],
            })),
            Error::Overloaded { retry_after: d, .. }
            | Error::RateLimited { retry_after: d, .. }
            | Error::Busy { retry_after: d, .. } => {
                retry_after = Some(*d);
                details.push(serde_json::json!({
                    "@type": "type.googleapis.com/google.rpc.RetryInfo",
                    "retryDelay": duration_json(*d),
                }));
            }
            _ => {}
        }
        Self {
            http,
            code,
            code_name,
            message: e.to_string(),
            details,
            retry_after,
        }
    }

    /// A malformed body or path (INVALID_ARGUMENT) naming `field`.
    pub fn bad_request(field: &'static str, problem: impl Into<String>) -> Self {
        Self::of("", &Error::invalid(field, problem))
    }

    /// A route that does not exist.
    pub fn not_found(what: &str) -> Self {
        Self {
            http: StatusCode::NOT_FOUND,
            code: 5,
            code_name: "NOT_FOUND",
            message: format!("no such route: {what}; see GET /openapi.json"),
            details: Vec::new(),
            retry_after: None,
        }
    }
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let body = serde_json::json!({
            "code": self.code,
            "message": self.message,
            "details": self.details,
        });
        let mut r = crate::json_response(self.http, &body);
        if let Some(d) = self.retry_after {
            // Whole seconds, rounded up (at least 1).
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                r.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        r
    }
}
