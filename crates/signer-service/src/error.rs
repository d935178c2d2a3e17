//! The crate's error type and its ONE mapping to gRPC status codes.

use tonic::{Code, Status};

/// Everything that can go wrong in the service. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `field` is the config path, env variable or flag.
    #[error("{field}: {problem}")]
    Config {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// A request field is malformed.
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
    /// The scheme is part of the API but not served yet.
    #[error("{0}")]
    Unimplemented(&'static str),
    /// The batcher queue is full.
    #[error(
        "server overloaded: signing queue holds {depth} of at most {max_queue} items; retry after {retry_after_ms} ms"
    )]
    Overloaded {
        /// Items waiting now.
        depth: usize,
        /// The configured bound (`batcher.max_queue`).
        max_queue: usize,
        /// Suggested back-off.
        retry_after_ms: u64,
    },
    /// An idempotency key was reused for a different request.
    #[error(
        "idempotency_key was already used for a different message or key; use a new idempotency_key"
    )]
    IdempotencyConflict,
    /// A stored key failed authenticated decryption (tampered data, wrong KEK or wrong key id).
    #[error(
        "stored key `{key_id}` failed authenticated decryption (tampered data or wrong key-encryption key)"
    )]
    Decrypt {
        /// The key whose record failed.
        key_id: String,
    },
    /// The key-encryption key could not be loaded.
    #[error("key-encryption key: {0}")]
    Kek(String),
    /// The embedded database failed.
    #[error("storage: {0}")]
    Storage(String),
    /// A file-system operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The threshold protocol failed (culprit parties, if any, are named in the message).
    #[error("protocol: {0}")]
    Protocol(#[from] threshold::Error),
    /// The threshold-ECDSA (DKLs23) protocol failed; a failed check names the culprit party.
    #[error("ecdsa protocol: {0}")]
    Ecdsa(#[from] threshold::dkls23::Error),
    /// An internal invariant failed (a bug); the request is refused and nothing is stored.
    #[error("internal error: {0}")]
    Internal(&'static str),
    /// The accelerator failed or the backend cannot be used.
    #[error("accelerator: {0}")]
    Accel(#[from] accel_api::AccelError),
    /// The service is shutting down and no longer takes work.
    #[error("service is shutting down")]
    ShuttingDown,
    /// A gRPC client call failed (CLI subcommands).
    #[error("{0}")]
    Client(String),
}

impl Error {
    /// Shorthand for [`Error::InvalidArgument`].
    pub fn invalid(field: &'static str, problem: impl Into<String>) -> Self {
        Error::InvalidArgument {
            field,
            problem: problem.into(),
        }
    }
}

impl From<redb::Error> for Error {
    fn from(e: redb::Error) -> Self {
        Error::Storage(e.to_string())
    }
}

macro_rules! redb_errors {
    ($($t:ty),*) => {$(
        impl From<$t> for Error {
            fn from(e: $t) -> Self {
                Error::Storage(e.to_string())
            }
        }
    )*};
}
redb_errors!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::InvalidArgument { .. } => Code::InvalidArgument,
            Error::KeyNotFound { .. } => Code::NotFound,
            Error::Unimplemented(_) => Code::Unimplemented,
            Error::Overloaded { .. } => Code::ResourceExhausted,
            Error::IdempotencyConflict => Code::FailedPrecondition,
            Error::ShuttingDown => Code::Unavailable,
            Error::Protocol(_)
            | Error::Ecdsa(_)
            | Error::Internal(_)
            | Error::Accel(_)
            | Error::Decrypt { .. }
            | Error::Kek(_)
            | Error::Storage(_)
            | Error::Io { .. }
            | Error::Config { .. }
            | Error::Client(_) => Code::Internal,
        };
        let mut status = Status::new(code, e.to_string());
        if let Error::Overloaded { retry_after_ms, .. } = e
            && let Ok(v) = format!("{retry_after_ms}").parse()
        {
            status.metadata_mut().insert("retry-after-ms", v);
        }
        status
    }
}
