//! `tessera serve`: the wiring (config → backends → store → service-core → APIs), the
//! listeners, health, and graceful shutdown on SIGINT/SIGTERM.
//!
//! The bound addresses are printed on **stderr** as
//! `tessera: gRPC listening on ADDR` and `tessera: metrics listening on ADDR`.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use api_grpc::{GrpcApi, Health};
use api_proto::signer_service_server::SignerServiceServer;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Response, StatusCode};
use hyper_util::rt::TokioIo;
use service_core::audit::ChainKey;
use service_core::{
    App, AppSetup, AuditLog, Auth, AuthMode, ClusterSettings, ClusterSetup, Fault, Kek,
    KeyRepository, Observer, Sealer, Store, TestHooks,
};
use store_redb::RedbStore;
use telemetry::Metrics;
use tokio::net::TcpListener;

use crate::access::AccessFile;
use crate::coalesce::CoalescedWrites;
use crate::config::{ClusterConfig, Config};
use crate::error::Error;
use crate::kek::{self, KekSource};
use crate::{accel, rest};

/// How long after SIGINT/SIGTERM the server waits for in-flight requests and open client
/// connections before it closes them and exits.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How often the health check runs.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

fn build_info() -> telemetry::BuildInfo {
    telemetry::BuildInfo {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        // The toolchain rust-toolchain.toml pins (the workspace's rust-version).
        rustc: env!("CARGO_PKG_RUST_VERSION").to_owned(),
        features: String::new(),
    }
}

/// The storage and the KEK the application runs on.
type Storage = (Arc<dyn Store>, Arc<Kek>);

/// Opens the store and checks the KEK against it: a KEK that does not open the stored keys is
/// a start-up error, not a failure of every later request.
fn open_store(cfg: &Config, kek_hex: Option<&str>) -> Result<Storage, Error> {
    std::fs::create_dir_all(&cfg.server.data_dir).map_err(|e| Error::Io {
        context: format!("creating data dir {}", cfg.server.data_dir.display()),
        source: e,
    })?;
    let guarded = cfg.server.tls.is_some() || cfg.auth != AuthMode::None || cfg.cluster.is_some();
    if guarded && kek_hex.is_none() && cfg.storage.kek_file.is_none() {
        return Err(Error::Config {
            field: "storage.kek_file".into(),
            problem: "with TLS, authentication or cluster peers configured, the key-encryption key must come from an explicit source: set --kek-file FILE (a private file kept apart from the data directory) or TESSERA_KEK; DATA_DIR/kek is only generated for the unconfigured trial".into(),
        });
    }
    let (kek, source) = kek::resolve(
        kek_hex,
        cfg.storage.kek_file.as_deref(),
        &cfg.server.data_dir,
    )?;
    match &source {
        KekSource::Generated(p) => eprintln!(
            "tessera: WARNING: no KEK given (--kek-file / TESSERA_KEK); generated {} next to the \
             data it protects. Keep it elsewhere in production.",
            p.display()
        ),
        other => tracing::info!(source = %other, "key-encryption key loaded"),
    }
    let store = RedbStore::open(&cfg.server.data_dir, ChainKey::of(&kek))?;
    let newest = store.list_keys(None, 1).map_err(|e| Error::App(e.into()))?;
    if let Some(r) = newest.first()
        && kek.open(&r.key_id, &r.sealed).is_err()
    {
        return Err(Error::KekMismatch {
            origin: source.to_string(),
            data_dir: cfg.server.data_dir.clone(),
            key_id: r.key_id.clone(),
        });
    }
    verify_records(&store, &kek, &cfg.server.data_dir)?;
    let events = verify_audit(&store, &cfg.server.data_dir)?;
    tracing::info!(events, "audit chain verified");
    Ok((Arc::new(store), Arc::new(kek)))
}

/// Re-computes the audit chain of `store` (in `data_dir`): the number of events, or an error
/// naming the file and the first event edited, reordered or removed.
pub fn verify_audit(store: &RedbStore, data_dir: &std::path::Path) -> Result<u64, Error> {
    store.verify_audit_chain().map_err(|source| Error::Audit {
        file: data_dir.join(store_redb::FILE_NAME),
        source,
    })
}

/// Checks every stored key record's MAC: a record whose metadata was edited (another public
/// key, label or owner) is a start-up error naming it, before any client is told about it.
pub fn verify_records(
    store: &RedbStore,
    kek: &Kek,
    data_dir: &std::path::Path,
) -> Result<(), Error> {
    let mut after: Option<String> = None;
    let mut n = 0u64;
    loop {
        let page = store
            .list_keys(after.as_deref(), 1000)
            .map_err(|e| Error::App(e.into()))?;
        for r in &page {
            if r.verify(kek).is_err() {
                return Err(Error::RecordTampered {
                    file: data_dir.join(store_redb::FILE_NAME),
                    key_id: r.key_id.clone(),
                });
            }
        }
        n += page.len() as u64;
        match page.last() {
            Some(r) if page.len() == 1000 => after = Some(r.key_id.clone()),
            _ => break,
        }
    }
    tracing::info!(
        keys = n,
        "every stored key record authenticates under the KEK"
    );
    Ok(())
}

async fn bind(field: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let fail = |source| Error::Bind {
        field,
        addr,
        source,
    };
    let l = TcpListener::bind(addr).await.map_err(fail)?;
    let local = l.local_addr().map_err(fail)?;
    Ok((l, local))
}

/// Refuses a configuration that exposes the service: authentication off on a listener other
/// hosts can reach, or a gRPC listener off loopback without TLS. Warns when authentication is
/// off on loopback.
pub fn check_exposure(cfg: &Config) -> Result<(), Error> {
    let public: Vec<(&str, SocketAddr)> = [
        ("server.listen", Some(cfg.server.listen)),
        ("server.metrics_listen", Some(cfg.server.metrics_listen)),
        ("server.rest_listen", cfg.server.rest_listen),
    ]
    .into_iter()
    .filter_map(|(f, a)| a.map(|a| (f, a)))
    .filter(|(_, a)| !a.ip().is_loopback())
    .collect();
    if cfg.auth == AuthMode::None {
        if let Some((field, addr)) = public.first() {
            return Err(Error::Config {
                field: (*field).to_owned(),
                problem: format!(
                    "{addr} is reachable from other hosts but authentication is off: set --auth api-key \
                     (keys from `tessera apikey create`) or --auth mtls (with --client-ca), and TLS \
                     (--tls-cert, --tls-key); or listen on 127.0.0.1"
                ),
            });
        }
        eprintln!(
            "tessera: WARNING: authentication is off (auth.mode = none): anyone who can connect to {} may create keys and sign with every key. Use --auth api-key or --auth mtls outside a trial.",
            cfg.server.listen
        );
    } else if cfg.server.tls.is_none()
        && let Some((field, addr)) = public
            .iter()
            .find(|(f, _)| *f == "server.listen" || *f == "server.rest_listen")
    {
        return Err(Error::Config {
            field: (*field).to_owned(),
            problem: format!(
                "{addr} is reachable from other hosts without TLS: credentials and messages would cross the network in plaintext; set --tls-cert and --tls-key (both API listeners use them), or listen on 127.0.0.1"
            ),
        });
    }
    Ok(())
}

/// The authentication of `cfg`: with a mode other than `none`, the access file of the data
/// directory (read and verified now).
fn auth_of(cfg: &Config, kek: &Kek) -> Result<Auth, Error> {
    if cfg.auth == AuthMode::None {
        return Ok(Auth::none());
    }
    let (file, n) = AccessFile::open(&cfg.server.data_dir, kek)?;
    eprintln!(
        "tessera: authentication {}: {n} client(s) registered in {}",
        cfg.auth,
        cfg.server.data_dir.join(crate::access::FILE_NAME).display()
    );
    if n == 0 {
        eprintln!(
            "tessera: WARNING: no clients are registered, so every request will be refused; add one with `tessera apikey create --data-dir {} --name NAME --admin`",
            cfg.server.data_dir.display()
        );
    }
    Ok(Auth {
        mode: cfg.auth,
        clients: Arc::new(file),
    })
}

/// Runs the service until SIGINT or SIGTERM, then drains in-flight requests and returns.
/// `kek_hex` is the value of `TESSERA_KEK`, if set.
pub async fn serve(cfg: Config, kek_hex: Option<zeroize::Zeroizing<String>>) -> Result<(), Error> {
    service_core::background::set_priority(cfg.background_priority);
    match &cfg.cluster {
        None => eprintln!(
            "tessera: WARNING: embedded single-process mode. Every party of every key runs in THIS \
             process and all shares are held here: this is NOT a distributed MPC deployment and gives \
             no protection against compromise of this host."
        ),
        Some(c) => eprintln!(
            "tessera: distributed mode: party {} of a {}-node cluster; this node holds only its own share of each key",
            c.party_id,
            c.peers.len() + 1
        ),
    }
    check_exposure(&cfg)?;
    let metrics = Arc::new(Metrics::new(&build_info()));
    let selected = accel::select(&cfg.accel, Arc::clone(&metrics))?;
    eprintln!(
        "tessera: backend {}: {}",
        selected.backend, selected.description
    );
    let (store, kek) = open_store(&cfg, kek_hex.as_deref().map(String::as_str))?;
    let retention_task =
        spawn_retention(Arc::clone(&store), cfg.storage.idempotency_retention_hours);
    let auth = auth_of(&cfg, &kek)?;
    let setup = AppSetup {
        store,
        sealer: kek as Arc<dyn Sealer>,
        auth,
        accel: selected.accel,
        observer: Arc::clone(&metrics) as Arc<dyn Observer>,
        batcher: cfg.batcher.clone(),
        probe: telemetry::last_backend,
        chains: Some(Arc::new(chains::ChainAdapter)),
        broadcaster: broadcaster_of(&cfg)?,
        limits: cfg.limits,
        pool: cfg.ecdsa,
        backend: selected.backend.to_owned(),
    };
    let (peer_stop_tx, peer_stop_rx) = tokio::sync::watch::channel(false);
    let (app, peer_task) = match &cfg.cluster {
        None => (Arc::new(App::embedded(setup)?), None),
        Some(c) => {
            let (app, task) = distributed(c, setup, peer_stop_rx).await?;
            (app, Some(task))
        }
    };

    // Read before the listening lines are printed: a bad file is a start-up error, and the
    // TLS line is on stderr before a client can read that the server listens.
    let tls = api_tls(&cfg)?;
    let rest_tls = match cfg.server.rest_listen {
        Some(_) => rest::acceptor(&cfg)?,
        None => None,
    };
    let (grpc, grpc_addr) = bind("server.listen", cfg.server.listen).await?;
    let (metrics_listener, metrics_addr) =
        bind("server.metrics_listen", cfg.server.metrics_listen).await?;
    let rest = match cfg.server.rest_listen {
        Some(a) => Some(bind("server.rest_listen", a).await?),
        None => None,
    };

    let (health, health_service) = Health::new().await;
    // The first check runs before the listening lines are printed, so a client that connects
    // as soon as it reads them sees SERVING (or NOT_SERVING with the reason in the log).
    let serving = health.check_now(&app).await;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let (rest_stop_tx, rest_stop_rx) = tokio::sync::watch::channel(false);
    let health_task = tokio::spawn(health.watch(Arc::clone(&app), HEALTH_EVERY, stop_rx, serving));
    let reflection_v1 = api_grpc::reflection_v1()?;
    let reflection_v1alpha = api_grpc::reflection_v1alpha()?;

    let shutdown = shutdown_signal()?;
    let metrics_task = tokio::spawn(serve_metrics(metrics_listener, Arc::clone(&metrics)));
    eprintln!("tessera: gRPC listening on {grpc_addr}");
    eprintln!("tessera: metrics listening on {metrics_addr}");
    let rest_task = rest.map(|(listener, addr)| {
        eprintln!("tessera: REST listening on {addr}");
        let router = api_rest::router(
            Arc::clone(&app),
            Arc::clone(&metrics),
            // Base64 makes a body 4/3 of the bytes it carries.
            max_request_bytes(&cfg.limits).saturating_mul(4) / 3,
        );
        tokio::spawn(rest::serve(
            listener,
            router,
            rest_tls.clone(),
            rest_stop_rx.clone(),
        ))
    });

    let (signalled_tx, signalled_rx) = tokio::sync::oneshot::channel::<()>();
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        let _ = rest_stop_tx.send(true);
        let _ = signalled_tx.send(());
    };
    let incoming = grpc_incoming(grpc);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        builder = builder.tls_config(tls).map_err(Error::Serve)?;
    }
    let server = builder
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            SignerServiceServer::new(GrpcApi::new(Arc::clone(&app), Arc::clone(&metrics)))
                .max_decoding_message_size(max_request_bytes(&cfg.limits)),
        )
        .serve_with_incoming_shutdown(incoming, shutdown);
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
    let drain = Arc::clone(&app);
    let _drained = tokio::task::spawn_blocking(move || drain.drain()).await;
    let _ = peer_stop_tx.send(true);
    if let Some(t) = peer_task {
        let _stopped = tokio::time::timeout(SHUTDOWN_GRACE, t).await;
    }
    if let Some(t) = rest_task {
        let _stopped = tokio::time::timeout(SHUTDOWN_GRACE, t).await;
    }
    health_task.abort();
    metrics_task.abort();
    if let Some(t) = retention_task {
        t.abort();
    }
    result.map_err(Error::Serve)
}

/// How often idempotency records past their retention are pruned.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// Deletes idempotency records older than `hours` (none when 0), at start-up and then every
/// [`RETENTION_EVERY`].
fn spawn_retention(store: Arc<dyn Store>, hours: u64) -> Option<tokio::task::JoinHandle<()>> {
    if hours == 0 {
        return None;
    }
    let keep_ms = hours.saturating_mul(3_600_000);
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(RETENTION_EVERY);
        loop {
            tick.tick().await;
            let cutoff = service_core::ports::now_ms().saturating_sub(keep_ms);
            let s = Arc::clone(&store);
            match tokio::task::spawn_blocking(move || s.prune_idempotency(cutoff)).await {
                Ok(Ok(0)) => {}
                Ok(Ok(pruned)) => tracing::info!(
                    pruned,
                    hours,
                    "deleted idempotency records past their retention"
                ),
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    "pruning idempotency records failed; trying again in an hour"
                ),
                Err(_) => return,
            }
        }
    }))
}

/// The gRPC listener's TLS (`server.tls_cert`/`tls_key`, and `server.client_ca` for mutual
/// TLS), read now so a bad file is a start-up error naming it.
fn api_tls(cfg: &Config) -> Result<Option<tonic::transport::ServerTlsConfig>, Error> {
    let Some((cert, key)) = &cfg.server.tls else {
        return Ok(None);
    };
    let identity = tonic::transport::Identity::from_pem(
        read("server.tls_cert", cert)?,
        read("server.tls_key", key)?,
    );
    let mut tls = tonic::transport::ServerTlsConfig::new().identity(identity);
    match &cfg.server.client_ca {
        Some(ca) => {
            tls = tls
                .client_ca_root(tonic::transport::Certificate::from_pem(read(
                    "server.client_ca",
                    ca,
                )?))
                .client_auth_optional(false);
            eprintln!(
                "tessera: TLS on the gRPC listener; client certificates from {} required",
                ca.display()
            );
        }
        None => eprintln!("tessera: TLS on the gRPC listener"),
    }
    Ok(Some(tls))
}

/// The largest request the API decodes: a full `SignBatch` of the largest messages (each with
/// its protobuf framing) plus room for the other fields, and never below tonic's 4 MiB
/// default. Without it the real batch limit would be tonic's fixed 4 MiB, not `limits.*`.
fn max_request_bytes(limits: &service_core::Limits) -> usize {
    let batch = limits
        .max_batch_messages
        .saturating_mul(limits.max_message_bytes.saturating_add(16));
    batch.saturating_add(64 * 1024).max(4 * 1024 * 1024)
}

fn read(what: &str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| Error::Io {
        context: format!("reading {what} {}", path.display()),
        source: e,
    })
}

/// The distributed-mode application of this node: the peer link to the others, this node's
/// party, the peer server (started here, on `cluster.peer_listen`, until `stop`) and the use
/// cases over the distributed coordinator.
async fn distributed(
    c: &ClusterConfig,
    setup: AppSetup,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> Result<(Arc<App>, tokio::task::JoinHandle<()>), Error> {
    let tls = peer_grpc::NodeTls {
        ca_pem: read("cluster.ca", &c.ca)?,
        cert_pem: read("cluster.cert", &c.cert)?,
        key_pem: read("cluster.key", &c.key)?,
    };
    let link = peer_grpc::GrpcPeers::connect(&tls, &c.peers).map_err(|e| Error::Config {
        field: "cluster.peers".into(),
        problem: e.to_string(),
    })?;
    let fault = match std::env::var("TESSERA_TEST_FAULT").as_deref() {
        Ok("invalid-shares") => {
            eprintln!(
                "tessera: WARNING: TESSERA_TEST_FAULT=invalid-shares: this node sends invalid signature shares (test-only fault switch)"
            );
            Fault::InvalidShares
        }
        Ok("die-before-storing-key") => {
            eprintln!(
                "tessera: WARNING: TESSERA_TEST_FAULT=die-before-storing-key: this node aborts after making a key, before it stores its share (test-only fault switch)"
            );
            Fault::DieBeforeStoringKey
        }
        _ => Fault::None,
    };
    let peers: Vec<u16> = c.peers.iter().map(|(id, _)| *id).collect();
    let (app, party) = App::distributed(
        setup,
        ClusterSetup {
            settings: ClusterSettings {
                me: c.party_id,
                peers: peers.clone(),
                call_deadline: c.call_timeout,
            },
            link: Arc::new(link),
            hooks: TestHooks {
                fault,
                nonce_log: std::env::var_os("TESSERA_TEST_NONCE_LOG").map(Into::into),
            },
        },
    )?;
    let (listener, addr) = bind("cluster.peer_listen", c.peer_listen).await?;
    eprintln!("tessera: peer service listening on {addr} (mutual TLS)");
    let server = peer_grpc::PeerServer::new(party, peers);
    let task = tokio::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = peer_grpc::serve(listener, &tls, server, stopped).await {
            tracing::error!(error = %service_core::error_chain(&e), "peer service stopped");
        }
    });
    Ok((app, task))
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

/// The gRPC listener's connections, each with TCP_NODELAY set (without it a small response
/// waits for the client's delayed ACK, Nagle's algorithm: ~40 ms per `SignBatch` at low
/// concurrency) and its writes coalesced ([`CoalescedWrites`]).
fn grpc_incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<CoalescedWrites<tokio::net::TcpStream>>> {
    tokio_stream::StreamExt::map(
        tonic::transport::server::TcpIncoming::from(listener).with_nodelay(Some(true)),
        |accepted| accepted.map(CoalescedWrites::new),
    )
}

/// The next metrics connection, with TCP_NODELAY set. Accept errors (e.g. out of file
/// descriptors) back off instead of spinning.
async fn accept_nodelay(listener: &TcpListener) -> tokio::net::TcpStream {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "metrics endpoint: TCP_NODELAY not set");
                }
                return stream;
            }
            Err(e) => {
                tracing::warn!(error = %e, "metrics endpoint: accept failed");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn serve_metrics(listener: TcpListener, metrics: Arc<Metrics>) {
    loop {
        let stream = accept_nodelay(&listener).await;
        let metrics = Arc::clone(&metrics);
        tokio::spawn(async move {
            let svc =
                hyper::service::service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                    let metrics = Arc::clone(&metrics);
                    async move {
                        let resp = if req.uri().path() == "/metrics" {
                            Response::builder()
                                .header("content-type", telemetry::CONTENT_TYPE)
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
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}

/// The JSON-RPC broadcaster for the nodes in `[chains]`, if any are configured.
fn broadcaster_of(
    cfg: &Config,
) -> Result<Option<Arc<dyn service_core::chain::Broadcaster>>, Error> {
    if cfg.chains.nodes.is_empty() {
        return Ok(None);
    }
    let trust = match &cfg.chains.ca_file {
        None => chains::TrustRoots::System,
        Some(path) => chains::TrustRoots::Pem(std::fs::read(path).map_err(|e| Error::Config {
            field: "chains.ca_file".to_owned(),
            problem: format!("{}: {e}", path.display()),
        })?),
    };
    let nodes = cfg
        .chains
        .nodes
        .iter()
        .map(|(chain, url)| {
            (
                *chain,
                chains::NodeConfig {
                    url: url.clone(),
                    timeout: cfg.chains.timeout,
                    trust: trust.clone(),
                },
            )
        })
        .collect();
    let b =
        chains::JsonRpcBroadcaster::new(nodes, cfg.chains.breaker).map_err(|e| Error::Config {
            field: format!("chains.{}_rpc_url", e.chain),
            problem: e.problem,
        })?;
    Ok(Some(Arc::new(b)))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use tokio_stream::StreamExt;

    use super::*;

    async fn listener() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = l.local_addr().unwrap();
        (l, a)
    }

    #[test]
    fn the_request_size_limit_follows_the_configured_limits() {
        let mut l = crate::config::Config::default().limits;
        assert_eq!(max_request_bytes(&l), 4096 * (65536 + 16) + 64 * 1024);
        l.max_batch_messages = 1;
        l.max_message_bytes = 10;
        assert_eq!(max_request_bytes(&l), 4 * 1024 * 1024);
    }

    #[tokio::test]
    async fn accepted_sockets_have_tcp_nodelay() {
        let (l, addr) = listener().await;
        let mut incoming = grpc_incoming(l);
        let client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = incoming.next().await.unwrap().unwrap();
        assert!(
            accepted.get_ref().nodelay().unwrap(),
            "gRPC connection without TCP_NODELAY"
        );
        // Requests still see who connected.
        let info = tonic::transport::server::Connected::connect_info(&accepted);
        assert_eq!(info.remote_addr(), Some(client.local_addr().unwrap()));

        let (l, addr) = listener().await;
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let accepted = accept_nodelay(&l).await;
        assert!(
            accepted.nodelay().unwrap(),
            "metrics connection without TCP_NODELAY"
        );
    }
}
