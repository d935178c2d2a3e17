//! The application's error type. Every variant says which gRPC/HTTP class it belongs to
//! through [`Error::kind`]; the API adapters map kinds to status codes in one place each.

use std::time::Duration;

use crate::ports::StoreError;

/// Everything a use case can fail with. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A request field is malformed; `field` is its API name.
    #[error("invalid {field}: {problem}")]
    InvalidArgument {
        /// The offending request field.
        field: &'static str,
        /// What is wrong with it.
        problem: String,
    },
    /// No key with this id is stored.
    #[error("key_id `{key_id}` not found")]
    KeyNotFound {
        /// The id asked for.
        key_id: String,
    },
    /// The batcher queue is full.
    #[error(
        "server overloaded: signing queue holds {depth} of at most {max_queue} items; retry after {} ms",
        retry_after.as_millis()
    )]
    Overloaded {
        /// Items waiting now.
        depth: usize,
        /// The configured bound (`batcher.max_queue`).
        max_queue: usize,
        /// Suggested back-off.
        retry_after: Duration,
    },
    /// The client sent more requests per second than its policy's rate allows.
    #[error(
        "rate limit: client `{client}` may send {rate_per_s} requests per second; retry after {} ms",
        retry_after.as_millis()
    )]
    RateLimited {
        /// The client.
        client: String,
        /// Its policy's rate.
        rate_per_s: u32,
        /// When the next request would be admitted.
        retry_after: Duration,
    },
    /// A request class (key generation, batch messages) stayed full for the whole wait.
    #[error(
        "busy: {class} is at its limit of {capacity} (limits.*); retry after {} ms",
        retry_after.as_millis()
    )]
    Busy {
        /// The class.
        class: &'static str,
        /// Its capacity.
        capacity: usize,
        /// Suggested back-off.
        retry_after: Duration,
    },
    /// An idempotency key was reused for a different request.
    #[error("idempotency_key was already used for a different request; use a new idempotency_key")]
    IdempotencyConflict,
    /// The service is shutting down and no longer takes work.
    #[error("service is shutting down")]
    ShuttingDown,
    /// A stored key failed authenticated decryption (tampered data, wrong KEK or wrong key id).
    #[error(
        "stored key `{key_id}` failed authenticated decryption (tampered data or wrong key-encryption key)"
    )]
    Decrypt {
        /// The key whose record failed.
        key_id: String,
    },
    /// A stored key record's MAC does not verify: its metadata (public key, label, owner, …)
    /// was edited, or the KEK is not the one it was stored under.
    #[error(
        "stored key record `{key_id}` does not authenticate under the key-encryption key (its metadata was edited, or the KEK is wrong)"
    )]
    RecordTampered {
        /// The key whose record failed.
        key_id: String,
    },
    /// Sealing key material under the key-encryption key failed.
    #[error("sealing key material failed")]
    Seal,
    /// The storage adapter failed.
    #[error("storage")]
    Storage(#[from] StoreError),
    /// The FROST protocol failed (culprit parties, if any, are named).
    #[error("protocol")]
    Protocol(#[from] threshold::Error),
    /// The threshold-ECDSA (DKLs23) protocol failed; a failed check names the culprit party.
    #[error("ecdsa protocol")]
    Ecdsa(#[from] dkls23::Error),
    /// The accelerator failed.
    #[error("accelerator")]
    Accel(#[from] accel_api::AccelError),
    /// A blocking task or batch panicked (a bug); the request is refused and nothing is stored.
    #[error("{task} panicked")]
    Panicked {
        /// What was running.
        task: &'static str,
    },
    /// An internal invariant failed (a bug); the request is refused and nothing is stored.
    #[error("internal invariant: {0}")]
    Internal(&'static str),
    /// Fewer than `need` parties of the key can be reached now (their nodes are down, cut off,
    /// or their circuit breakers are open); the request was not started or was given up.
    #[error(
        "quorum unavailable: need {need} of the key's parties, reachable now: {reachable:?}; unreachable: {unreachable:?}"
    )]
    QuorumUnavailable {
        /// Parties a signature (or key generation) needs.
        need: usize,
        /// Parties that can be reached.
        reachable: Vec<u16>,
        /// Parties that cannot.
        unreachable: Vec<u16>,
    },
    /// A peer node failed a call (transport error, deadline, or a failure it reported).
    #[error("peer node {peer}: {problem}")]
    Peer {
        /// The peer's party id.
        peer: u16,
        /// What went wrong.
        problem: String,
    },
    /// A request forwarded to the node that owns its idempotency key failed there.
    #[error("at node {peer}: {message}")]
    Forwarded {
        /// The node that answered.
        peer: u16,
        /// Its error message.
        message: String,
        /// Its error class.
        kind: crate::peer::RemoteKind,
    },
    /// The request carried no valid credential (none, an unknown API key, a revoked one).
    #[error("unauthenticated: {0}")]
    Unauthenticated(&'static str),
    /// The authenticated client's policy does not allow the request (default deny). The
    /// decision is an audit event.
    #[error("permission denied: client `{client}` may not {action}{}", key_id.as_ref().map(|k| format!(" key `{k}`")).unwrap_or_default())]
    PermissionDenied {
        /// The client's name.
        client: String,
        /// What it asked to do.
        action: &'static str,
        /// The key concerned, if any.
        key_id: Option<String>,
    },
    /// A signed transaction could not be handed to its chain's node: none answered in time or
    /// its circuit breaker is open. The signature is recorded; repeating the request with the
    /// same idempotency key broadcasts the same transaction again.
    #[error("broadcast: {0}")]
    BroadcastUnavailable(String),
    /// The chain's node refused the signed transaction (e.g. a fee below its minimum).
    #[error("broadcast: {0}")]
    BroadcastRejected(String),
    /// The request is valid but this deployment mode does not offer it.
    #[error("{0}")]
    NotInThisMode(&'static str),
    /// The operating system refused a resource (a thread, a file).
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

/// The class of an [`Error`], which the API adapters map to a status code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The request is malformed (INVALID_ARGUMENT, HTTP 400).
    InvalidArgument,
    /// The key does not exist (NOT_FOUND, 404).
    NotFound,
    /// Too much work queued; retry later (RESOURCE_EXHAUSTED, 429).
    ResourceExhausted,
    /// The request conflicts with an earlier one (FAILED_PRECONDITION, 400).
    FailedPrecondition,
    /// The service cannot take work now (UNAVAILABLE, 503).
    Unavailable,
    /// A fault of the service itself (INTERNAL, 500); its text is logged, not sent to clients.
    Internal,
    /// No valid credential (UNAUTHENTICATED, 401).
    Unauthenticated,
    /// The client may not do this (PERMISSION_DENIED, 403).
    PermissionDenied,
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            problem: problem.into(),
        }
    }

    /// The error's class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidArgument { .. } => ErrorKind::InvalidArgument,
            Error::KeyNotFound { .. } => ErrorKind::NotFound,
            Error::Overloaded { .. } | Error::RateLimited { .. } | Error::Busy { .. } => {
                ErrorKind::ResourceExhausted
            }
            Error::IdempotencyConflict => ErrorKind::FailedPrecondition,
            Error::ShuttingDown
            | Error::QuorumUnavailable { .. }
            | Error::Peer { .. }
            | Error::BroadcastUnavailable(_) => ErrorKind::Unavailable,
            Error::BroadcastRejected(_) => ErrorKind::FailedPrecondition,
            Error::NotInThisMode(_) => ErrorKind::FailedPrecondition,
            Error::Unauthenticated(_) => ErrorKind::Unauthenticated,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::Forwarded { kind, .. } => match kind {
                crate::peer::RemoteKind::InvalidArgument => ErrorKind::InvalidArgument,
                crate::peer::RemoteKind::NotFound => ErrorKind::NotFound,
                crate::peer::RemoteKind::ResourceExhausted => ErrorKind::ResourceExhausted,
                crate::peer::RemoteKind::FailedPrecondition => ErrorKind::FailedPrecondition,
                crate::peer::RemoteKind::Unavailable => ErrorKind::Unavailable,
                crate::peer::RemoteKind::Internal => ErrorKind::Internal,
                crate::peer::RemoteKind::PermissionDenied => ErrorKind::PermissionDenied,
            },
            Error::Decrypt { .. }
            | Error::RecordTampered { .. }
            | Error::Seal
            | Error::Storage(_)
            | Error::Protocol(_)
            | Error::Ecdsa(_)
            | Error::Accel(_)
            | Error::Panicked { .. }
            | Error::Internal(_)
            | Error::Io { .. } => ErrorKind::Internal,
        }
    }

    /// The whole chain of causes as one line, for logs (never sent to clients).
    pub fn chain(&self) -> String {
        error_chain(self)
    }

    /// The same error for one more of the requests that shared the failed attempt (distributed
    /// signing combines concurrent requests for a key, `crate::merge`). Every variant is
    /// copied except those whose source cannot be (storage and I/O errors, which a signing
    /// attempt does not fail with): those are reported as [`Error::Internal`].
    pub(crate) fn shared(&self) -> Error {
        match self {
            Error::InvalidArgument { field, problem } => Error::InvalidArgument {
                field,
                problem: problem.clone(),
            },
            Error::KeyNotFound { key_id } => Error::KeyNotFound {
                key_id: key_id.clone(),
            },
            Error::Overloaded {
                depth,
                max_queue,
                retry_after,
            } => Error::Overloaded {
                depth: *depth,
                max_queue: *max_queue,
                retry_after: *retry_after,
            },
            Error::RateLimited {
                client,
                rate_per_s,
                retry_after,
            } => Error::RateLimited {
                client: client.clone(),
                rate_per_s: *rate_per_s,
                retry_after: *retry_after,
            },
            Error::Busy {
                class,
                capacity,
                retry_after,
            } => Error::Busy {
                class,
                capacity: *capacity,
                retry_after: *retry_after,
            },
            Error::IdempotencyConflict => Error::IdempotencyConflict,
            Error::ShuttingDown => Error::ShuttingDown,
            Error::Decrypt { key_id } => Error::Decrypt {
                key_id: key_id.clone(),
            },
            Error::RecordTampered { key_id } => Error::RecordTampered {
                key_id: key_id.clone(),
            },
            Error::Seal => Error::Seal,
            Error::Protocol(e) => Error::Protocol(e.clone()),
            Error::Ecdsa(e) => Error::Ecdsa(e.clone()),
            Error::Accel(e) => Error::Accel(e.clone()),
            Error::Panicked { task } => Error::Panicked { task },
            Error::Internal(what) => Error::Internal(what),
            Error::QuorumUnavailable {
                need,
                reachable,
                unreachable,
            } => Error::QuorumUnavailable {
                need: *need,
                reachable: reachable.clone(),
                unreachable: unreachable.clone(),
            },
            Error::Peer { peer, problem } => Error::Peer {
                peer: *peer,
                problem: problem.clone(),
            },
            Error::Forwarded {
                peer,
                message,
                kind,
            } => Error::Forwarded {
                peer: *peer,
                message: message.clone(),
                kind: *kind,
            },
            Error::Unauthenticated(why) => Error::Unauthenticated(why),
            Error::PermissionDenied {
                client,
                action,
                key_id,
            } => Error::PermissionDenied {
                client: client.clone(),
                action,
                key_id: key_id.clone(),
            },
            Error::BroadcastUnavailable(m) => Error::BroadcastUnavailable(m.clone()),
            Error::BroadcastRejected(m) => Error::BroadcastRejected(m.clone()),
            Error::NotInThisMode(m) => Error::NotInThisMode(m),
            Error::Storage(_) | Error::Io { .. } => {
                Error::Internal("a shared signing attempt failed in storage or I/O")
            }
        }
    }
}

/// An error and all its sources, `: `-separated, as one line (for logs and exit messages).
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(e) = cur {
        out.push_str(": ");
        out.push_str(&e.to_string());
        cur = e.source();
    }
    out
}

/// Maps the failure of a `spawn_blocking` join to [`Error::Panicked`] or, when the runtime is
/// going away, [`Error::ShuttingDown`].
pub(crate) fn joined<T>(
    task: &'static str,
    r: Result<Result<T, Error>, tokio::task::JoinError>,
) -> Result<T, Error> {
    match r {
        Ok(inner) => inner,
        Err(e) if e.is_panic() => Err(Error::Panicked { task }),
        Err(_) => Err(Error::ShuttingDown),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_keeps_every_source() {
        let e = Error::Storage(StoreError::Engine(Box::new(std::io::Error::other(
            "disk on fire",
        ))));
        assert_eq!(e.kind(), ErrorKind::Internal);
        let chain = e.chain();
        assert!(chain.starts_with("storage: "), "{chain}");
        assert!(chain.ends_with("disk on fire"), "{chain}");
    }

    #[tokio::test]
    async fn a_panicked_task_is_internal_not_shutting_down() {
        let r = tokio::task::spawn_blocking(|| -> Result<(), Error> { panic!("boom") }).await;
        let e = joined("key generation", r).unwrap_err();
        assert!(matches!(
            e,
            Error::Panicked {
                task: "key generation"
            }
        ));
        assert_eq!(e.kind(), ErrorKind::Internal);
    }
}
