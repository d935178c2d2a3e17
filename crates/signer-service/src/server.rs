//! `tessera serve`: start-up, the gRPC server (with health and reflection v1 + v1alpha), the
//! metrics endpoint and graceful shutdown on SIGINT/SIGTERM.
//!
//! The bound addresses are printed on **stderr** as
//! `tessera: gRPC listening on ADDR` and `tessera: metrics listening on ADDR`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::Error;
use crate::accel;
use crate::batcher::Batcher;
use crate::config::Config;
use crate::engine::{self, KeyCache};
use crate::kek::{Kek, KekSource};
use crate::metrics::Metrics;
use crate::proto::signer_server::SignerServer;
use crate::service::{AppState, SignerService};
use crate::store::RedbStore;

/// How long after SIGINT/SIGTERM the server waits for in-flight requests and open client
/// connections before it closes them and exits.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs the service until SIGINT or SIGTERM, then drains in-flight requests and returns.
/// `kek_hex` is the value of `TESSERA_KEK`, if set.
pub async fn serve(cfg: Config, kek_hex: Option<String>) -> Result<(), Error> {
    eprintln!(
        "tessera: WARNING: embedded single-process mode. Every party of every key runs in THIS \
         process and all shares are held here: this is NOT a distributed MPC deployment and gives \
         no protection against compromise of this host."
    );
    let metrics = Arc::new(Metrics::new());
    let selected = accel::select(&cfg.accel, Arc::clone(&metrics))?;
    eprintln!(
        "tessera: backend {}: {}",
        selected.backend, selected.description
    );
    std::fs::create_dir_all(&cfg.server.data_dir).map_err(|e| Error::Io {
        context: format!("creating data dir {}", cfg.server.data_dir.display()),
        source: e,
    })?;
    let (kek, source) = Kek::resolve(
        kek_hex.as_deref(),
        cfg.storage.kek_file.as_deref(),
        &cfg.server.data_dir,
    )?;
    match &source {
        KekSource::Generated(p) => eprintln!(
            "tessera: WARNING: no KEK given (--kek-file / TESSERA_KEK); generated {} next to the \
             data it protects. Keep it elsewhere in production.",
            p.display()
        ),
        other => tracing::info!(?other, "key-encryption key loaded"),
    }
    let store = RedbStore::open(&cfg.server.data_dir)?;
    let accel_for_batches = Arc::clone(&selected.accel);
    let metrics_for_batches = Arc::clone(&metrics);
    let batcher = Batcher::new(
        &cfg.batcher,
        engine::QUEUES.to_vec(),
        Arc::clone(&metrics),
        move |queue, jobs| {
            engine::process(
                accel_for_batches.as_ref(),
                &metrics_for_batches,
                queue,
                jobs,
            )
        },
    )?;
    let state = Arc::new(AppState {
        store: Arc::new(store),
        kek,
        accel: selected.accel,
        backend: selected.backend,
        batcher,
        cache: KeyCache::default(),
        metrics: Arc::clone(&metrics),
        limits: cfg.limits.clone(),
        ecdsa: cfg.ecdsa.clone(),
    });

    let grpc = TcpListener::bind(cfg.server.listen)
        .await
        .map_err(|e| Error::Io {
            context: format!("binding server.listen {}", cfg.server.listen),
            source: e,
        })?;
    let metrics_listener = TcpListener::bind(cfg.server.metrics_listen)
        .await
        .map_err(|e| Error::Io {
            context: format!(
                "binding server.metrics_listen {}",
                cfg.server.metrics_listen
            ),
            source: e,
        })?;
    let grpc_addr = local(&grpc)?;
    let metrics_addr = local(&metrics_listener)?;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<SignerServer<SignerService>>()
        .await;
    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| Error::Client(format!("reflection v1: {e}")))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| Error::Client(format!("reflection v1alpha: {e}")))?;

    let shutdown = shutdown_signal()?;
    let metrics_task = tokio::spawn(serve_metrics(metrics_listener, Arc::clone(&metrics)));
    eprintln!("tessera: gRPC listening on {grpc_addr}");
    eprintln!("tessera: metrics listening on {metrics_addr}");

    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = signalled_tx.send(());
    };
    let server = tonic::transport::Server::builder()
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(SignerServer::new(SignerService::new(Arc::clone(&state))))
        .serve_with_incoming_shutdown(TcpListenerStream::new(grpc), shutdown);
    let grace_over = async move {
        if signalled_rx.await.is_ok() {
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    let result = tokio::select! {
        r = server => {
            eprintln!("tessera: shutting down: in-flight requests finished");
            r
        }
        () = grace_over => {
            eprintln!(
                "tessera: shutting down: clients kept connections open for {} s after the signal; closing them",
                SHUTDOWN_GRACE.as_secs()
            );
            Ok(())
        }
    };
    let state_for_drain = Arc::clone(&state);
    tokio::task::spawn_blocking(move || state_for_drain.batcher.shutdown())
        .await
        .map_err(|_| Error::ShuttingDown)?;
    metrics_task.abort();
    result.map_err(|e| Error::Io {
        context: "gRPC server".into(),
        source: std::io::Error::other(e),
    })
}

fn local(l: &TcpListener) -> Result<SocketAddr, Error> {
    l.local_addr().map_err(|e| Error::Io {
        context: "reading bound address".into(),
        source: e,
    })
}

/// Installs the SIGINT/SIGTERM handlers now (before the listening lines are printed, so a
/// signal sent right after start-up is not lost) and returns a future that completes on either.
fn shutdown_signal() -> Result<impl std::future::Future<Output = ()>, Error> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|e| Error::Io {
                context: format!("installing the {name} handler"),
                source: e,
            })
        };
        let mut term = install(SignalKind::terminate(), "SIGTERM")?;
        let mut int = install(SignalKind::interrupt(), "SIGINT")?;
        Ok(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            eprintln!("tessera: signal received, draining in-flight requests");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            eprintln!("tessera: signal received, draining in-flight requests");
        })
    }
}

async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // E.g. out of file descriptors: back off instead of spinning.
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let metrics = Arc::clone(&metrics);
                    async move {
                        let resp = if req.uri().path() == "/metrics" {
                            Response::builder()
                                .header("content-type", "text/plain; version=0.0.4; charset=utf-8")
                                .body(Full::new(Bytes::from(metrics.render())))
                        } else {
                            Response::builder()
                                .status(StatusCode::NOT_FOUND)
                                .body(Full::new(Bytes::from_static(b"not found; try /metrics\n")))
                        };
                        Ok::<_, Infallible>(
                            resp.unwrap_or_else(|_| Response::new(Full::new(Bytes::new()))),
                        )
                    }
                });
            let _conn = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
