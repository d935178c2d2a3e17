//! The REST gateway's listener: plaintext on loopback, or TLS with the gRPC listener's
//! certificate (`server.tls_cert`/`tls_key`) and, with `server.client_ca`, required client
//! certificates whose identities become the request's credential (for `--auth mtls`). Every
//! connection has TCP_NODELAY and a header-read deadline.

use std::sync::Arc;
use std::time::Duration;

use api_rest::ClientCertificate;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt;

use crate::config::Config;
use crate::error::Error;

/// How long a client may take to send a request's headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

fn pem_err(what: &str, path: &std::path::Path, e: impl std::fmt::Display) -> Error {
    Error::Config {
        field: what.to_owned(),
        problem: format!("{}: {e}", path.display()),
    }
}

/// The TLS acceptor of `cfg`'s REST listener, or `None` without TLS.
pub fn acceptor(cfg: &Config) -> Result<Option<TlsAcceptor>, Error> {
    let Some((cert, key)) = &cfg.server.tls else {
        return Ok(None);
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .map_err(|e| pem_err("server.tls_cert", cert, e))?
        .collect::<Result<_, _>>()
        .map_err(|e| pem_err("server.tls_cert", cert, e))?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| pem_err("server.tls_key", key, e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| pem_err("server.tls_cert", cert, e))?;
    let builder = match &cfg.server.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let mut roots = rustls::RootCertStore::empty();
            for c in
                CertificateDer::pem_file_iter(ca).map_err(|e| pem_err("server.client_ca", ca, e))?
            {
                roots
                    .add(c.map_err(|e| pem_err("server.client_ca", ca, e))?)
                    .map_err(|e| pem_err("server.client_ca", ca, e))?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()
            .map_err(|e| pem_err("server.client_ca", ca, e))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    let mut config = builder
        .with_single_cert(certs, key)
        .map_err(|e| pem_err("server.tls_cert", cert, e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(TlsAcceptor::from(Arc::new(config))))
}

/// Serves `router` on `listener` until `stop` turns true.
pub async fn serve(
    listener: TcpListener,
    router: axum::Router,
    tls: Option<TlsAcceptor>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    loop {
        let accepted = tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            a = listener.accept() => a,
        };
        let tcp = match accepted {
            Ok((tcp, _)) => tcp,
            Err(e) => {
                tracing::warn!(error = %e, "REST: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "REST: TCP_NODELAY not set");
        }
        let (router, tls) = (router.clone(), tls.clone());
        tokio::spawn(async move {
            match tls {
                None => connection(TokioIo::new(tcp), router, None).await,
                Some(acceptor) => {
                    let stream =
                        match tokio::time::timeout(HEADER_READ_TIMEOUT, acceptor.accept(tcp)).await
                        {
                            Ok(Ok(s)) => s,
                            Ok(Err(e)) => {
                                tracing::debug!(error = %e, "REST: TLS handshake failed");
                                return;
                            }
                            Err(_) => return,
                        };
                    let names = stream
                        .get_ref()
                        .1
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|leaf| api_grpc::certificate_names(leaf.as_ref()));
                    connection(TokioIo::new(stream), router, names).await;
                }
            }
        });
    }
}

/// One HTTP/1.1 connection; the client certificate's identities, if any, go with every request.
async fn connection<I>(io: TokioIo<I>, router: axum::Router, names: Option<Vec<String>>)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = router.map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
        if let Some(n) = &names {
            req.extensions_mut().insert(ClientCertificate(n.clone()));
        }
        req
    });
    let served = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .serve_connection(io, TowerToHyperService::new(service))
        .await;
    if let Err(e) = served {
        tracing::debug!(error = %e, "REST: connection ended with an error");
    }
}
