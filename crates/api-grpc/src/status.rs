//! The one mapping from `service-core` errors to gRPC `Status`.
//!
//! - INVALID_ARGUMENT carries a `google.rpc.BadRequest` with the offending field;
//! - RESOURCE_EXHAUSTED carries a `google.rpc.RetryInfo` with the suggested back-off;
//! - INTERNAL never carries the error's text: the text (with its whole source chain) is logged
//!   with a fresh request id, and the client gets the id to quote.

use rand_core::{OsRng, RngCore};
use service_core::{Error, ErrorKind};
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use api_proto::code_name;

fn request_id() -> String {
    let mut id = [0u8; 8];
    OsRng.fill_bytes(&mut id);
    hex::encode(id)
}

/// The status a failed `rpc` answers with. Internal errors are logged here.
pub fn status_of(rpc: &'static str, e: &Error) -> Status {
    match e.kind() {
        ErrorKind::InvalidArgument => {
            let mut details = ErrorDetails::new();
            if let Error::InvalidArgument { field, problem } = e {
                details.add_bad_request_violation(*field, problem.clone());
            }
            Status::with_error_details(Code::InvalidArgument, e.to_string(), details)
        }
        ErrorKind::ResourceExhausted => {
            let retry = match e {
                Error::Overloaded { retry_after, .. }
                | Error::RateLimited { retry_after, .. }
                | Error::Busy { retry_after, .. } => Some(*retry_after),
                _ => None,
            };
            Status::with_error_details(
                Code::ResourceExhausted,
                e.to_string(),
                ErrorDetails::with_retry_info(retry),
            )
        }
        ErrorKind::NotFound => Status::not_found(e.to_string()),
        ErrorKind::FailedPrecondition => Status::failed_precondition(e.to_string()),
        ErrorKind::Unavailable => Status::unavailable(e.to_string()),
        ErrorKind::Unauthenticated => Status::unauthenticated(e.to_string()),
        ErrorKind::PermissionDenied => Status::permission_denied(e.to_string()),
        _ => {
            let id = request_id();
            tracing::error!(request_id = %id, rpc, error = %e.chain(), "request failed");
            Status::internal(format!(
                "internal error; the server log has the details under request id {id}"
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use std::time::Duration;

    use super::*;
    use service_core::StoreError;

    #[test]
    fn invalid_argument_names_the_field_in_details() {
        let s = status_of("Sign", &Error::invalid("message", "too long"));
        assert_eq!(s.code(), Code::InvalidArgument);
        let details = s.get_error_details();
        let v = &details.bad_request().unwrap().field_violations[0];
        assert_eq!(v.field, "message");
        assert_eq!(v.description, "too long");
    }

    #[test]
    fn overload_carries_retry_info_not_private_metadata() {
        let s = status_of(
            "Sign",
            &Error::Overloaded {
                depth: 3,
                max_queue: 4,
                retry_after: Duration::from_millis(20),
            },
        );
        assert_eq!(s.code(), Code::ResourceExhausted);
        let retry = s.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_millis(20)));
        assert!(s.metadata().get("retry-after-ms").is_none());
    }

    #[test]
    fn a_full_request_class_is_resource_exhausted_with_retry_info() {
        let s = status_of(
            "CreateKey",
            &Error::Busy {
                class: "key generation",
                capacity: 4,
                retry_after: Duration::from_secs(1),
            },
        );
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert!(s.message().contains("key generation"), "{}", s.message());
        let retry = s.get_details_retry_info().unwrap();
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(1)));
    }

    #[test]
    fn internal_text_stays_in_the_log() {
        let e = Error::Storage(StoreError::Engine(Box::new(std::io::Error::other(
            "/secret/path/tessera.redb: disk on fire",
        ))));
        let s = status_of("Sign", &e);
        assert_eq!(s.code(), Code::Internal);
        assert!(!s.message().contains("disk on fire"), "{}", s.message());
        assert!(s.message().contains("request id"), "{}", s.message());
    }

    #[test]
    fn code_names_are_canonical() {
        assert_eq!(code_name(Code::Ok), "OK");
        assert_eq!(code_name(Code::ResourceExhausted), "RESOURCE_EXHAUSTED");
    }
}
