#![doc = include_str!("../README.md")]

pub mod keys;
pub mod load;
pub mod metrics;

use std::time::Duration;

pub use api_proto as proto;
pub use api_proto::code_name;
use api_proto::signer_service_client::SignerServiceClient;
use tonic::transport::{Channel, Endpoint};

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Deadline of every call (key generation with many parties is the slowest).
pub const CALL_TIMEOUT: Duration = Duration::from_secs(120);

/// What a client call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server URL is malformed or the server could not be reached.
    #[error("cannot connect to {url}")]
    Connect {
        /// The server URL.
        url: String,
        /// Why.
        #[source]
        source: tonic::transport::Error,
    },
    /// The server answered with an error status (its code name and message are the text).
    #[error("{}: {}", code_name(.0.code()), .0.message())]
    Status(tonic::Status),
    /// The metrics endpoint could not be read.
    #[error("metrics endpoint {url}: {problem}")]
    Metrics {
        /// The endpoint.
        url: String,
        /// What went wrong.
        problem: String,
    },
    /// The options are inconsistent.
    #[error("{0}")]
    Usage(String),
}

impl From<tonic::Status> for ClientError {
    fn from(s: tonic::Status) -> Self {
        ClientError::Status(s)
    }
}

/// Connects to `url` (e.g. `http://127.0.0.1:50051`) with TCP_NODELAY, [`CONNECT_TIMEOUT`]
/// and a [`CALL_TIMEOUT`] deadline on every call.
pub async fn connect(url: &str) -> Result<SignerServiceClient<Channel>, ClientError> {
    let fail = |source| ClientError::Connect {
        url: url.to_owned(),
        source,
    };
    let channel = Endpoint::from_shared(url.to_owned())
        .map_err(fail)?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT)
        .connect()
        .await
        .map_err(fail)?;
    Ok(SignerServiceClient::new(channel))
}
