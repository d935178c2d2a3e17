#![doc = include_str!("../README.md")]

pub mod keys;
pub mod load;
pub mod metrics;

use std::time::Duration;

pub use api_proto as proto;
pub use api_proto::code_name;
use api_proto::signer_service_client::SignerServiceClient;
use tonic::metadata::{Ascii, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use zeroize::Zeroizing;

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

/// How a client reaches and identifies itself to a server: TLS settings for `https://`
/// servers and the API key, if the server requires one.
#[derive(Clone, Default)]
pub struct Tls {
    /// The CA certificate (PEM) that signed the server's certificate.
    pub ca_pem: Option<Vec<u8>>,
    /// This client's certificate and private key (PEM), for servers that require client
    /// certificates (mutual TLS).
    pub identity: Option<(Vec<u8>, Vec<u8>)>,
    /// The API key sent as `authorization: Bearer <key>` on every call.
    pub api_key: Option<Zeroizing<String>>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("ca_pem", &self.ca_pem.is_some())
            .field("identity", &self.identity.as_ref().map(|_| "<redacted>"))
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Adds the `authorization: Bearer` header to every call (nothing when no key is set).
#[derive(Clone)]
pub struct Bearer(Option<MetadataValue<Ascii>>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Bearer(<redacted>)"
        } else {
            "Bearer(none)"
        })
    }
}

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut req: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(v) = &self.0 {
            req.metadata_mut().insert("authorization", v.clone());
        }
        Ok(req)
    }
}

/// A connected client of `tessera.v1.SignerService`.
pub type Api = SignerServiceClient<InterceptedService<Channel, Bearer>>;

/// Connects to `url` (e.g. `http://127.0.0.1:50051`) with TCP_NODELAY, [`CONNECT_TIMEOUT`]
/// and a [`CALL_TIMEOUT`] deadline on every call. An `https://` URL needs
/// [`connect_with`] and a CA certificate.
pub async fn connect(url: &str) -> Result<Api, ClientError> {
    connect_with(url, &Tls::default()).await
}

/// [`connect`] with TLS settings. An `https://` URL is always reached over TLS, verified
/// against `tls.ca_pem`; without one it is refused, so nothing is ever sent in plaintext to an
/// `https://` server. TLS settings with an `http://` URL are refused too. An API key is sent
/// with every call.
pub async fn connect_with(url: &str, tls: &Tls) -> Result<Api, ClientError> {
    let (channel, bearer) = channel_with(url, tls).await?;
    Ok(SignerServiceClient::with_interceptor(channel, bearer))
}

/// The connection [`connect_with`] makes, and the interceptor that sends the API key: for
/// another service of the same server (the health check).
pub async fn channel_with(url: &str, tls: &Tls) -> Result<(Channel, Bearer), ClientError> {
    let fail = |source| ClientError::Connect {
        url: url.to_owned(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(url.to_owned())
        .map_err(fail)?
        .tcp_nodelay(true)
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(CALL_TIMEOUT);
    let https = url.starts_with("https://");
    match (https, &tls.ca_pem) {
        (true, Some(ca)) => {
            let mut config = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(ca));
            if let Some((cert, key)) = &tls.identity {
                config = config.identity(Identity::from_pem(cert, key));
            }
            endpoint = endpoint.tls_config(config).map_err(fail)?;
        }
        (true, None) => {
            return Err(ClientError::Usage(format!(
                "{url} is an https:// server: give the CA certificate that signed its certificate (--ca-cert FILE); nothing is sent to it in plaintext"
            )));
        }
        (false, _) if tls.ca_pem.is_some() || tls.identity.is_some() => {
            return Err(ClientError::Usage(format!(
                "TLS settings (--ca-cert, --client-cert) need an https:// server URL, not {url}"
            )));
        }
        (false, _) => {}
    }
    let bearer = match &tls.api_key {
        None => None,
        Some(k) => {
            let mut v = MetadataValue::try_from(format!("Bearer {}", k.as_str()))
                .map_err(|_| ClientError::Usage("the API key is not printable ASCII".into()))?;
            v.set_sensitive(true);
            Some(v)
        }
    };
    let channel = endpoint.connect().await.map_err(fail)?;
    Ok((channel, Bearer(bearer)))
}
