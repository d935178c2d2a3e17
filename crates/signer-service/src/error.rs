//! The `tessera` binary's error type: start-up, wiring and CLI failures. Request errors are
//! `service_core::Error`, mapped to gRPC status by `api-grpc`.

use std::path::PathBuf;

/// What `tessera` can fail with. Messages never contain secret material.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is invalid; `field` is the config path, variable or flag.
    #[error("{field}: {problem}")]
    Config {
        /// The offending field.
        field: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The key-encryption key could not be read or parsed.
    #[error("key-encryption key from {origin}: {problem}")]
    Kek {
        /// Where it came from (`TESSERA_KEK`, a file).
        origin: String,
        /// What is wrong.
        problem: String,
    },
    /// The KEK does not open the keys stored in the data directory.
    #[error(
        "the key-encryption key from {origin} does not open the keys stored in {data_dir} (stored key `{key_id}` fails authentication): give the KEK this data directory was created with"
    )]
    KekMismatch {
        /// Where the KEK came from.
        origin: String,
        /// The data directory.
        data_dir: PathBuf,
        /// The stored key that failed to open.
        key_id: String,
    },
    /// A stored key record does not authenticate under the KEK.
    #[error(
        "key record `{key_id}` in {} does not authenticate under the key-encryption key: its metadata (public key, label, owner) was edited outside tessera; nothing was changed — restore the data directory from a backup",
        file.display()
    )]
    RecordTampered {
        /// The database file.
        file: PathBuf,
        /// The record.
        key_id: String,
    },
    /// The audit log does not verify (an event was edited, reordered or removed, or the KEK is
    /// not the one it was written under).
    #[error("audit log in {}; nothing was changed (`tessera audit verify` re-checks it)", file.display())]
    Audit {
        /// The database file.
        file: PathBuf,
        /// Which event and why.
        #[source]
        source: service_core::StoreError,
    },
    /// The access file (registered clients) is unusable.
    #[error("access file {}: {problem}", path.display())]
    Access {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// The database could not be opened.
    #[error("storage")]
    Store(#[from] store_redb::OpenError),
    /// The accelerator could not be set up.
    #[error("accelerator")]
    Accel(#[from] accel_api::AccelError),
    /// The application failed.
    #[error("service")]
    App(#[from] service_core::Error),
    /// A listener could not be bound.
    #[error("cannot bind {field} {addr}")]
    Bind {
        /// The config field.
        field: &'static str,
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A file-system or OS operation failed.
    #[error("{context}")]
    Io {
        /// What was being done.
        context: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The gRPC reflection service could not be built.
    #[error("grpc")]
    Grpc(#[from] api_grpc::HealthError),
    /// The gRPC server failed.
    #[error("gRPC server")]
    Serve(#[source] tonic::transport::Error),
    /// Logging could not be set up.
    #[error("logging")]
    Telemetry(#[from] telemetry::Error),
    /// A client subcommand failed.
    #[error("request")]
    Client(#[from] client::ClientError),
    /// A command-line argument is unusable.
    #[error("{flag}: {problem}")]
    Usage {
        /// The flag.
        flag: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// A verified signature is not valid (`tessera verify`).
    #[error("signature is not valid")]
    InvalidSignature,
}

impl Error {
    /// Shorthand for [`Error::Usage`].
    pub fn usage(flag: &'static str, problem: impl Into<String>) -> Self {
        Error::Usage {
            flag,
            problem: problem.into(),
        }
    }

    /// The error and all its sources, `: `-separated, for the one line printed at exit.
    pub fn chain(&self) -> String {
        service_core::error_chain(self)
    }
}
