//! Service configuration: defaults, overlaid by a TOML file, then `TESSERA_*` environment
//! variables, then command-line flags (flags win over env over file over defaults). Every
//! field is declared once, on the [`Layer`] structs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use accel_api::BackendKind;
use backend_gpu::GpuField;
use serde::Deserialize;
use service_core::batcher::BatcherConfig;
use service_core::{AuthMode, Limits, PresignPool};

use crate::error::Error;

/// The whole service configuration after every layer has been applied and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Server section.
    pub server: ServerConfig,
    /// `auth.mode`: how clients authenticate.
    pub auth: AuthMode,
    /// Accelerator section.
    pub accel: AccelConfig,
    /// Dynamic batcher section.
    pub batcher: BatcherConfig,
    /// `batcher.background_priority`: how background threads (key generation, presignature
    /// refills, the batcher's workers for expensive queues) step back for signing.
    pub background_priority: service_core::background::Priority,
    /// Storage section.
    pub storage: StorageConfig,
    /// Request limits.
    pub limits: Limits,
    /// Threshold-ECDSA presignature pool.
    pub ecdsa: PresignPool,
    /// `[cluster]`: distributed mode; `None` runs embedded mode.
    pub cluster: Option<ClusterConfig>,
    /// `[chains]`: the nodes signed transactions are broadcast to.
    pub chains: ChainsConfig,
}

/// `[chains]`: one JSON-RPC node per chain for `SignTransaction` with `broadcast`, and how
/// failing nodes are handled.
#[derive(Clone, Debug, PartialEq)]
pub struct ChainsConfig {
    /// `chains.ethereum_rpc_url`, `chains.bitcoin_rpc_url`, `chains.solana_rpc_url`.
    pub nodes: Vec<(service_core::chain::ChainKind, String)>,
    /// `chains.broadcast_timeout_ms`: deadline of each attempt.
    pub timeout: std::time::Duration,
    /// `chains.breaker_failures` and `chains.breaker_cooldown_ms`.
    pub breaker: chains::BreakerSettings,
    /// `chains.ca_file`: PEM certificates trusted for `https://` nodes in place of the
    /// system's trust store.
    pub ca_file: Option<PathBuf>,
}

impl Default for ChainsConfig {
    fn default() -> Self {
        Self {
            nodes: Vec::new(),
            timeout: std::time::Duration::from_millis(5000),
            breaker: chains::BreakerSettings {
                trip_after: 3,
                cooldown: std::time::Duration::from_millis(10_000),
            },
            ca_file: None,
        }
    }
}

/// `[cluster]`: this node's place in a distributed cluster (written by `tessera init-cluster`).
#[derive(Clone, Debug, PartialEq)]
pub struct ClusterConfig {
    /// `cluster.party_id`: this node's party id, 1 to 255.
    pub party_id: u16,
    /// `cluster.peer_listen`: where the node-to-node service listens (mutual TLS).
    pub peer_listen: SocketAddr,
    /// `cluster.ca`: the cluster CA certificate (PEM).
    pub ca: PathBuf,
    /// `cluster.cert`: this node's certificate (PEM).
    pub cert: PathBuf,
    /// `cluster.key`: this node's private key (PEM).
    pub key: PathBuf,
    /// `cluster.call_timeout_ms`: deadline of one call to a peer (default 2000).
    pub call_timeout: std::time::Duration,
    /// `[[cluster.peers]]`: every other node's party id and peer address.
    pub peers: Vec<(u16, SocketAddr)>,
}

/// `[server]`: where the service keeps its data and listens.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    /// `server.data_dir` (default `./tessera-data`).
    pub data_dir: PathBuf,
    /// `server.listen`: gRPC address (default `127.0.0.1:50051`).
    pub listen: SocketAddr,
    /// `server.metrics_listen`: Prometheus endpoint address (default `127.0.0.1:9464`).
    pub metrics_listen: SocketAddr,
    /// `server.rest_listen`: the REST/JSON gateway's address (default: no gateway).
    pub rest_listen: Option<SocketAddr>,
    /// `server.tls_cert` / `server.tls_key`: TLS on the gRPC listener (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
    /// `server.client_ca`: require client certificates signed by this CA (mutual TLS).
    pub client_ca: Option<PathBuf>,
}

/// `[accel]`: the accelerator backend.
#[derive(Clone, Debug, PartialEq)]
pub struct AccelConfig {
    /// `accel.backend`: `cpu`, `simd`, `gpu` or `auto` (default `auto`).
    pub backend: BackendKind,
    /// `accel.gpu_secret_ops`: whether secret-class work (nonce and key-share scalar
    /// multiplications) may run on the GPU (default false: it runs on the best CPU backend).
    pub gpu_secret_ops: bool,
    /// `accel.gpu_field`: the GPU kernels' field arithmetic, `u32` (13-bit limbs), `u64`
    /// (26-bit limbs, needs SHADER_INT64) or `auto` (default: `u64` where the adapter has
    /// SHADER_INT64, else `u32`).
    pub gpu_field: GpuField,
    /// `accel.cost_model`: a cost-model file written by `tessera bench-accel --save`; routed
    /// backends found in it (same backend and device) use its measurements instead of the
    /// quick start-up calibration (default: none).
    pub cost_model: Option<PathBuf>,
}

/// `[storage]`: the key-encryption key and record retention.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageConfig {
    /// `storage.kek_file`: file holding the 32-byte key-encryption key in hex. When neither
    /// this nor `TESSERA_KEK` is set, `<data_dir>/kek` is used (generated on first run).
    pub kek_file: Option<PathBuf>,
    /// `storage.idempotency_retention_hours`: idempotency records older than this are deleted
    /// (hourly and at start-up); 0 keeps them forever (default 168, one week).
    pub idempotency_retention_hours: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            kek_file: None,
            idempotency_retention_hours: 168,
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                data_dir: PathBuf::from("./tessera-data"),
                listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
                metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
                rest_listen: None,
                tls: None,
                client_ca: None,
            },
            auth: AuthMode::None,
            accel: AccelConfig {
                backend: BackendKind::Auto,
                gpu_secret_ops: false,
                gpu_field: GpuField::Auto,
                cost_model: None,
            },
            batcher: BatcherConfig {
                max_batch_size: 256,
                max_queue_delay_us: 200,
                max_queue: 16384,
                workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            },
            background_priority: service_core::background::Priority::Idle,
            storage: StorageConfig::default(),
            limits: Limits {
                max_message_bytes: 64 * 1024,
                max_batch_messages: 4096,
                max_parties_frost: 64,
                max_parties_ecdsa: 16,
                max_concurrent_keygen: 2,
                max_batch_items_in_flight: 8192,
            },
            ecdsa: PresignPool {
                target: 64,
                batch: 16,
            },
            cluster: None,
            chains: ChainsConfig::default(),
        }
    }
}

/// One layer of settings: the TOML file, or the command line with its `TESSERA_*` variables.
/// `None` leaves a field alone.
///
/// Each field is declared ONCE, here: its TOML key (the field name in its `[section]`), its
/// flag and environment variable (clap's `long` and `env`), and its documentation (the doc
/// comment, which is the flag's `--help` text and the README table's row:
/// `tests::readme_table_is_rendered_from_these_declarations` keeps them equal).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct Layer {
    /// `[server]` fields.
    #[command(flatten, next_help_heading = "server")]
    pub server: ServerLayer,
    /// `[auth]` fields.
    #[command(flatten, next_help_heading = "auth")]
    pub auth: AuthLayer,
    /// `[accel]` fields.
    #[command(flatten, next_help_heading = "accel")]
    pub accel: AccelLayer,
    /// `[batcher]` fields.
    #[command(flatten, next_help_heading = "batcher")]
    pub batcher: BatcherLayer,
    /// `[storage]` fields.
    #[command(flatten, next_help_heading = "storage")]
    pub storage: StorageLayer,
    /// `[limits]` fields.
    #[command(flatten, next_help_heading = "limits")]
    pub limits: LimitsLayer,
    /// `[ecdsa]` fields.
    #[command(flatten, next_help_heading = "ecdsa")]
    pub ecdsa: EcdsaLayer,
    /// `[chains]` fields.
    #[command(flatten, next_help_heading = "chains")]
    pub chains: ChainsLayer,
    /// `[cluster]` (config file only): distributed mode.
    #[arg(skip)]
    pub cluster: Option<ClusterLayer>,
}

/// `[cluster]` in a config file. Relative paths are relative to the file's directory.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterLayer {
    /// This node's party id (1 to 255).
    pub party_id: i64,
    /// Node-to-node listen address.
    pub peer_listen: String,
    /// Cluster CA certificate (PEM).
    pub ca: PathBuf,
    /// This node's certificate (PEM).
    pub cert: PathBuf,
    /// This node's private key (PEM).
    pub key: PathBuf,
    /// Deadline of one peer call, ms.
    #[serde(default)]
    pub call_timeout_ms: Option<i64>,
    /// The other nodes.
    pub peers: Vec<PeerLayer>,
}

/// One `[[cluster.peers]]` entry.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerLayer {
    /// The peer's party id.
    pub id: i64,
    /// The peer's node-to-node address.
    pub address: String,
}

/// `[server]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLayer {
    /// Data directory: the database `tessera.redb` and a generated KEK [default: ./tessera-data]
    #[arg(long, env = "TESSERA_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// gRPC listen address; port 0 picks a free port [default: 127.0.0.1:50051]
    #[arg(long, env = "TESSERA_LISTEN", value_name = "ADDR")]
    pub listen: Option<String>,
    /// Prometheus /metrics listen address [default: 127.0.0.1:9464]
    #[arg(long, env = "TESSERA_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// REST/JSON gateway listen address (the gRPC API's use cases over HTTP, OpenAPI at /openapi.json); port 0 picks a free port [default: none, no gateway]
    #[arg(long, env = "TESSERA_REST_LISTEN", value_name = "ADDR")]
    pub rest_listen: Option<String>,
    /// TLS certificate chain (PEM) of the gRPC listener; with --tls-key, clients connect with https:// [default: none, plaintext]
    #[arg(long, env = "TESSERA_TLS_CERT", value_name = "FILE")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM) of the gRPC listener, with --tls-cert [default: none]
    #[arg(long, env = "TESSERA_TLS_KEY", value_name = "FILE")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate (PEM): with TLS, clients must present a certificate signed by it (mutual TLS) [default: none]
    #[arg(long, env = "TESSERA_CLIENT_CA", value_name = "FILE")]
    pub client_ca: Option<PathBuf>,
}

/// `[auth]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct AuthLayer {
    /// Client authentication: none (only when every listener is on loopback), api-key (`authorization: Bearer` keys made by `tessera apikey create`) or mtls (client certificates, needs --client-ca; identities registered with `tessera apikey create --certificate`); clients see and use only the keys their policy names [default: none]
    #[arg(long = "auth", env = "TESSERA_AUTH", value_name = "MODE")]
    pub mode: Option<String>,
}

/// `[accel]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct AccelLayer {
    /// Accelerator backend: cpu, simd, gpu or auto (calibrates the usable backends and routes each batch to the cheapest; uses a GPU only when it is a hardware adapter); a backend asked for by name that the host cannot run is a start-up error [default: auto]
    #[arg(long, env = "TESSERA_BACKEND", value_name = "BACKEND")]
    pub backend: Option<String>,
    /// Let secret-class work (nonce and share multiplications, mul_base) run on the GPU; when false it runs on the best CPU backend and the GPU gets only public-data work [default: false]
    #[arg(long, env = "TESSERA_GPU_SECRET_OPS", value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", value_parser = clap::builder::BoolishValueParser::new())]
    pub gpu_secret_ops: Option<bool>,
    /// GPU field arithmetic: u32 (13-bit limbs, every adapter), u64 (26-bit limbs, needs SHADER_INT64) or auto (u64 where the adapter has SHADER_INT64) [default: auto]
    #[arg(long, env = "TESSERA_GPU_FIELD", value_name = "FIELD")]
    pub gpu_field: Option<String>,
    /// Cost models written by `tessera bench-accel --save FILE`, used by auto instead of the start-up calibration [default: none]
    #[arg(long, env = "TESSERA_COST_MODEL", value_name = "FILE")]
    pub cost_model: Option<PathBuf>,
}

/// `[batcher]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct BatcherLayer {
    /// Most items per batch, ≥ 1 [default: 256]
    #[arg(
        long,
        env = "TESSERA_BATCHER_MAX_BATCH_SIZE",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_batch_size: Option<i64>,
    /// Longest wait (µs) of the oldest queued item for its batch to fill; 0 = run what is queued now [default: 200]
    #[arg(
        long,
        env = "TESSERA_BATCHER_MAX_QUEUE_DELAY_US",
        value_name = "US",
        allow_negative_numbers = true
    )]
    pub max_queue_delay_us: Option<i64>,
    /// Most items waiting over all queues; beyond, requests get RESOURCE_EXHAUSTED [default: 16384]
    #[arg(
        long,
        env = "TESSERA_BATCHER_MAX_QUEUE",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_queue: Option<i64>,
    /// Worker threads running batches [default: available cores]
    #[arg(
        long,
        env = "TESSERA_BATCHER_WORKERS",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub workers: Option<i64>,
    /// CPU priority of background work (key generation, presignature refills, ECDSA presigning on demand): idle (Linux SCHED_IDLE; signing takes the CPU from it at once, and it waits while every core is busy) or low (nice 10; it keeps about a tenth of a busy core) [default: idle]
    #[arg(
        long,
        env = "TESSERA_BATCHER_BACKGROUND_PRIORITY",
        value_name = "idle|low"
    )]
    pub background_priority: Option<String>,
}

/// `[chains]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct ChainsLayer {
    /// Ethereum JSON-RPC node (http://host:port or https://host[:port][/path]) that SignTransaction with broadcast sends to (eth_sendRawTransaction) [default: none, broadcast refused]
    #[arg(long, env = "TESSERA_ETHEREUM_RPC_URL", value_name = "URL")]
    pub ethereum_rpc_url: Option<String>,
    /// Bitcoin Core JSON-RPC node (http://user:password@host:port, or https://; prefer the variable, which other users cannot read from the process list) for sendrawtransaction [default: none, broadcast refused]
    #[arg(long, env = "TESSERA_BITCOIN_RPC_URL", value_name = "URL")]
    pub bitcoin_rpc_url: Option<String>,
    /// Solana JSON-RPC node (http://host:port or https://host[:port][/path]) for sendTransaction [default: none, broadcast refused]
    #[arg(long, env = "TESSERA_SOLANA_RPC_URL", value_name = "URL")]
    pub solana_rpc_url: Option<String>,
    /// Deadline of each broadcast attempt (ms); a failed attempt is retried twice [default: 5000]
    #[arg(
        long,
        env = "TESSERA_BROADCAST_TIMEOUT_MS",
        value_name = "MS",
        allow_negative_numbers = true
    )]
    pub broadcast_timeout_ms: Option<i64>,
    /// Consecutive failed broadcasts after which a chain node's circuit breaker opens and broadcasts to it fail at once with UNAVAILABLE [default: 3]
    #[arg(
        long,
        env = "TESSERA_BREAKER_FAILURES",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub breaker_failures: Option<i64>,
    /// How long an open breaker refuses broadcasts before one is let through to try the node again (ms) [default: 10000]
    #[arg(
        long,
        env = "TESSERA_BREAKER_COOLDOWN_MS",
        value_name = "MS",
        allow_negative_numbers = true
    )]
    pub breaker_cooldown_ms: Option<i64>,
    /// PEM file of the certificate authorities an https:// chain node's certificate must chain to, in place of the system's trust store (for a node with a private CA) [default: none, the system's trust store]
    #[arg(
        long = "chains-ca-file",
        env = "TESSERA_CHAINS_CA_FILE",
        value_name = "FILE"
    )]
    pub ca_file: Option<PathBuf>,
}

/// `[storage]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct StorageLayer {
    /// File with the 32-byte key-encryption key as hex, readable by its owner only (a file other users can read is refused); TESSERA_KEK (the hex key itself) wins over it; with neither, DATA_DIR/kek is generated (mode 0600) on first run with a loud warning, which only the unconfigured trial may do: TLS, authentication or a cluster need one of the two [default: none]
    #[arg(long, env = "TESSERA_KEK_FILE", value_name = "FILE")]
    pub kek_file: Option<PathBuf>,
    /// Hours an idempotency record is kept: a request retried later with the same idempotency key is a new request (and may sign again); pruned hourly and at start-up; 0 keeps records forever [default: 168]
    #[arg(
        long,
        env = "TESSERA_IDEMPOTENCY_RETENTION_HOURS",
        value_name = "HOURS",
        allow_negative_numbers = true
    )]
    pub idempotency_retention_hours: Option<i64>,
}

/// `[limits]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsLayer {
    /// Largest Ed25519 message, bytes [default: 65536]
    #[arg(
        long,
        env = "TESSERA_LIMITS_MAX_MESSAGE_BYTES",
        value_name = "BYTES",
        allow_negative_numbers = true
    )]
    pub max_message_bytes: Option<i64>,
    /// Most messages per SignBatch [default: 4096]
    #[arg(
        long,
        env = "TESSERA_LIMITS_MAX_BATCH_MESSAGES",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_batch_messages: Option<i64>,
    /// Most parties of an Ed25519 or BIP340 key (1 to 255); larger CreateKey/ImportKey requests are refused at once [default: 64]
    #[arg(
        long,
        env = "TESSERA_LIMITS_MAX_PARTIES_FROST",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_parties_frost: Option<i64>,
    /// Most parties of a threshold-ECDSA key (2 to 255; its state grows with n²); larger requests are refused at once [default: 16]
    #[arg(
        long,
        env = "TESSERA_LIMITS_MAX_PARTIES_ECDSA",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_parties_ecdsa: Option<i64>,
    /// Most CreateKey/ImportKey requests running at once; more wait up to 5 s, then get RESOURCE_EXHAUSTED, so key generation cannot take every worker from signing [default: 2]
    #[arg(
        long,
        env = "TESSERA_LIMITS_MAX_CONCURRENT_KEYGEN",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_concurrent_keygen: Option<i64>,
    /// Most SignBatch messages in flight over all requests (the rest of the batcher queue stays free for Sign); more wait up to 5 s, then get RESOURCE_EXHAUSTED [default: 8192]
    #[arg(
        long,
        env = "TESSERA_LIMITS_MAX_BATCH_ITEMS_IN_FLIGHT",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub max_batch_items_in_flight: Option<i64>,
}

/// `[ecdsa]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, clap::Args)]
#[serde(deny_unknown_fields, default)]
pub struct EcdsaLayer {
    /// The most threshold-ECDSA presignatures kept ready per key, refilled in the background (a key starts with 4 and doubles its pool each time signing finds it short); 0 = none, every signature presigns on demand [default: 64]
    #[arg(
        long = "ecdsa-presign-pool",
        env = "TESSERA_ECDSA_PRESIGN_POOL",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub presign_pool: Option<i64>,
    /// Presignatures made per refill step, ≥ 1 [default: 16]
    #[arg(
        long = "ecdsa-presign-batch",
        env = "TESSERA_ECDSA_PRESIGN_BATCH",
        value_name = "N",
        allow_negative_numbers = true
    )]
    pub presign_batch: Option<i64>,
}

fn config_err(field: &str, problem: impl std::fmt::Display) -> Error {
    Error::Config {
        field: field.to_owned(),
        problem: problem.to_string(),
    }
}

impl Layer {
    /// Parses a TOML config file's text; unknown fields and wrong types are errors naming
    /// the field.
    pub fn from_toml(text: &str, origin: &Path) -> Result<Self, Error> {
        toml::from_str(text).map_err(|e| {
            let msg = e.message().to_owned();
            config_err(
                &format!("{} (config file)", origin.display()),
                msg.trim_end(),
            )
        })
    }

    /// Reads a TOML config file; `[cluster]` paths are made relative to its directory.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_err("--config", format!("cannot read {}: {e}", path.display())))?;
        let mut layer = Self::from_toml(&text, path)?;
        if let (Some(c), Some(dir)) = (&mut layer.cluster, path.parent()) {
            for p in [&mut c.ca, &mut c.cert, &mut c.key] {
                if p.is_relative() {
                    *p = dir.join(&*p);
                }
            }
        }
        Ok(layer)
    }
}

fn addr(field: &str, v: &str) -> Result<SocketAddr, Error> {
    v.trim()
        .parse()
        .map_err(|_| config_err(field, format!("`{v}` is not a socket address (HOST:PORT)")))
}

fn at_least(field: &str, v: i64, min: i64) -> Result<usize, Error> {
    if v < min {
        return Err(config_err(field, format!("must be ≥ {min} (got {v})")));
    }
    usize::try_from(v).map_err(|_| config_err(field, format!("{v} is too large")))
}

fn parties_cap(field: &str, v: i64, min: i64) -> Result<u32, Error> {
    if !(min..=255).contains(&v) {
        return Err(config_err(
            field,
            format!("must be between {min} and 255 (got {v})"),
        ));
    }
    Ok(v as u32)
}

fn party_id_of(field: &str, v: i64) -> Result<u16, Error> {
    u16::try_from(v)
        .ok()
        .filter(|id| (1..=255).contains(id))
        .ok_or_else(|| config_err(field, format!("must be between 1 and 255 (got {v})")))
}

fn cluster(c: &ClusterLayer) -> Result<ClusterConfig, Error> {
    let party_id = party_id_of("cluster.party_id", c.party_id)?;
    if c.peers.is_empty() {
        return Err(config_err(
            "cluster.peers",
            "a cluster needs at least one other node",
        ));
    }
    let mut peers = Vec::with_capacity(c.peers.len());
    for p in &c.peers {
        let id = party_id_of("cluster.peers.id", p.id)?;
        if id == party_id || peers.iter().any(|(i, _)| *i == id) {
            return Err(config_err(
                "cluster.peers.id",
                format!("party {id} appears twice (or is this node's own id)"),
            ));
        }
        peers.push((id, addr("cluster.peers.address", &p.address)?));
    }
    let call_timeout_ms = match c.call_timeout_ms {
        None => 2000,
        Some(v) => at_least("cluster.call_timeout_ms", v, 1)?,
    };
    Ok(ClusterConfig {
        party_id,
        peer_listen: addr("cluster.peer_listen", &c.peer_listen)?,
        ca: c.ca.clone(),
        cert: c.cert.clone(),
        key: c.key.clone(),
        call_timeout: std::time::Duration::from_millis(call_timeout_ms as u64),
        peers,
    })
}

impl Config {
    /// Applies `layer` on top of `self`, validating every field it sets.
    pub fn apply(&mut self, layer: &Layer) -> Result<(), Error> {
        let s = &layer.server;
        if let Some(d) = &s.data_dir {
            if d.as_os_str().is_empty() {
                return Err(config_err("server.data_dir", "must not be empty"));
            }
            self.server.data_dir.clone_from(d);
        }
        if let Some(v) = &s.listen {
            self.server.listen = addr("server.listen", v)?;
        }
        if let Some(v) = &s.metrics_listen {
            self.server.metrics_listen = addr("server.metrics_listen", v)?;
        }
        if let Some(v) = &s.rest_listen {
            self.server.rest_listen = Some(addr("server.rest_listen", v)?);
        }
        match (&s.tls_cert, &s.tls_key, &self.server.tls) {
            (Some(c), Some(k), _) => self.server.tls = Some((c.clone(), k.clone())),
            (Some(c), None, Some((_, k))) => self.server.tls = Some((c.clone(), k.clone())),
            (None, Some(k), Some((c, _))) => self.server.tls = Some((c.clone(), k.clone())),
            (Some(_), None, None) => {
                return Err(config_err("server.tls_key", "--tls-cert needs --tls-key"));
            }
            (None, Some(_), None) => {
                return Err(config_err("server.tls_cert", "--tls-key needs --tls-cert"));
            }
            (None, None, _) => {}
        }
        if let Some(v) = &s.client_ca {
            self.server.client_ca = Some(v.clone());
        }
        if let Some(v) = &layer.auth.mode {
            self.auth = v.parse().map_err(|e: String| config_err("auth.mode", e))?;
        }
        if let Some(v) = &layer.accel.backend {
            self.accel.backend = v.parse().map_err(|_| {
                config_err(
                    "accel.backend",
                    format!("`{v}` is not one of cpu, simd, gpu, auto"),
                )
            })?;
        }
        if let Some(v) = layer.accel.gpu_secret_ops {
            self.accel.gpu_secret_ops = v;
        }
        if let Some(v) = &layer.accel.gpu_field {
            self.accel.gpu_field = v
                .parse()
                .map_err(|e: String| config_err("accel.gpu_field", e))?;
        }
        if let Some(v) = &layer.accel.cost_model {
            self.accel.cost_model = Some(v.clone());
        }
        let b = &layer.batcher;
        if let Some(v) = b.max_batch_size {
            self.batcher.max_batch_size = at_least("batcher.max_batch_size", v, 1)?;
        }
        if let Some(v) = b.max_queue_delay_us {
            if !(0..=1_000_000).contains(&v) {
                return Err(config_err(
                    "batcher.max_queue_delay_us",
                    format!("must be between 0 and 1000000 (got {v})"),
                ));
            }
            self.batcher.max_queue_delay_us = v.unsigned_abs();
        }
        if let Some(v) = b.max_queue {
            self.batcher.max_queue = at_least("batcher.max_queue", v, 1)?;
        }
        if let Some(v) = b.workers {
            self.batcher.workers = at_least("batcher.workers", v, 1)?;
        }
        if let Some(v) = &b.background_priority {
            self.background_priority = v
                .parse()
                .map_err(|e: String| config_err("batcher.background_priority", e))?;
        }
        if let Some(v) = &layer.storage.kek_file {
            self.storage.kek_file = Some(v.clone());
        }
        if let Some(v) = layer.storage.idempotency_retention_hours {
            self.storage.idempotency_retention_hours =
                at_least("storage.idempotency_retention_hours", v, 0)? as u64;
        }
        if let Some(v) = layer.limits.max_message_bytes {
            self.limits.max_message_bytes = at_least("limits.max_message_bytes", v, 1)?;
        }
        if let Some(v) = layer.limits.max_batch_messages {
            self.limits.max_batch_messages = at_least("limits.max_batch_messages", v, 1)?;
        }
        if let Some(v) = layer.limits.max_parties_frost {
            self.limits.max_parties_frost = parties_cap("limits.max_parties_frost", v, 1)?;
        }
        if let Some(v) = layer.limits.max_parties_ecdsa {
            self.limits.max_parties_ecdsa = parties_cap("limits.max_parties_ecdsa", v, 2)?;
        }
        if let Some(v) = layer.limits.max_concurrent_keygen {
            self.limits.max_concurrent_keygen = at_least("limits.max_concurrent_keygen", v, 1)?;
        }
        if let Some(v) = layer.limits.max_batch_items_in_flight {
            self.limits.max_batch_items_in_flight =
                at_least("limits.max_batch_items_in_flight", v, 1)?;
        }
        if let Some(v) = layer.ecdsa.presign_pool {
            self.ecdsa.target = at_least("ecdsa.presign_pool", v, 0)?;
        }
        if let Some(v) = layer.ecdsa.presign_batch {
            self.ecdsa.batch = at_least("ecdsa.presign_batch", v, 1)?;
        }
        if let Some(c) = &layer.cluster {
            self.cluster = Some(cluster(c)?);
        }
        let c = &layer.chains;
        for (chain, field, url) in [
            (
                service_core::chain::ChainKind::Ethereum,
                "chains.ethereum_rpc_url",
                &c.ethereum_rpc_url,
            ),
            (
                service_core::chain::ChainKind::Bitcoin,
                "chains.bitcoin_rpc_url",
                &c.bitcoin_rpc_url,
            ),
            (
                service_core::chain::ChainKind::Solana,
                "chains.solana_rpc_url",
                &c.solana_rpc_url,
            ),
        ] {
            if let Some(url) = url {
                chains::check_node_url(chain, url).map_err(|e| config_err(field, &e.problem))?;
                self.chains.nodes.retain(|(k, _)| *k != chain);
                self.chains.nodes.push((chain, url.clone()));
            }
        }
        if let Some(v) = &c.ca_file {
            self.chains.ca_file = Some(v.clone());
        }
        if let Some(v) = c.broadcast_timeout_ms {
            self.chains.timeout =
                std::time::Duration::from_millis(
                    at_least("chains.broadcast_timeout_ms", v, 1)? as u64
                );
        }
        if let Some(v) = c.breaker_failures {
            self.chains.breaker.trip_after =
                u32::try_from(at_least("chains.breaker_failures", v, 1)?).unwrap_or(u32::MAX);
        }
        if let Some(v) = c.breaker_cooldown_ms {
            self.chains.breaker.cooldown =
                std::time::Duration::from_millis(
                    at_least("chains.breaker_cooldown_ms", v, 0)? as u64
                );
        }
        if self.auth == AuthMode::Mtls && self.server.client_ca.is_none() {
            return Err(config_err(
                "auth.mode",
                "mtls needs client certificates: set --client-ca (and --tls-cert, --tls-key)",
            ));
        }
        if self.server.client_ca.is_some() && self.server.tls.is_none() {
            return Err(config_err(
                "server.client_ca",
                "client certificates need TLS: set --tls-cert and --tls-key too",
            ));
        }
        Ok(())
    }

    /// Defaults, then the file (if any), then the command line: its flags and, where a flag is
    /// absent, its `TESSERA_*` variables (clap reads both into one [`Layer`]).
    pub fn load(file: Option<&Path>, command_line: &Layer) -> Result<Self, Error> {
        let mut cfg = Config::default();
        if let Some(path) = file {
            cfg.apply(&Layer::from_file(path)?)?;
        }
        cfg.apply(command_line)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use clap::{CommandFactory, Parser};

    /// The `serve` command line's settings, as `main.rs` flattens them.
    #[derive(Debug, Parser)]
    struct Serve {
        #[command(flatten)]
        layer: Layer,
    }

    /// Parses a command line (flags only: the tests set no `TESSERA_*` variable).
    fn flags(args: &[&str]) -> Layer {
        Serve::try_parse_from(std::iter::once("serve").chain(args.iter().copied()))
            .unwrap()
            .layer
    }

    /// The README's configuration table, rendered from the [`Layer`] declarations: field,
    /// flag, variable, and the doc comment as the meaning.
    fn rendered_table() -> String {
        let cmd = Serve::command();
        let mut out = String::from("| field | flag | environment | meaning |\n|---|---|---|---|\n");
        for arg in cmd.get_arguments() {
            let (Some(section), Some(long), Some(env)) =
                (arg.get_help_heading(), arg.get_long(), arg.get_env())
            else {
                continue;
            };
            let help = arg.get_help().map(ToString::to_string).unwrap_or_default();
            out.push_str(&format!(
                "| `{section}.{}` | `--{long}` | `{}` | {} |\n",
                arg.get_id(),
                env.to_string_lossy(),
                help.replace('|', "\\|")
            ));
        }
        out
    }

    #[test]
    fn readme_table_is_rendered_from_these_declarations() {
        let readme = include_str!("../README.md");
        let table = rendered_table();
        assert!(
            readme.contains(&table),
            "the README's configuration table is out of date; replace it with:\n{table}"
        );
        assert_eq!(
            table.lines().count(),
            2 + 34,
            "every field has a row:\n{table}"
        );
    }

    fn file(text: &str) -> Layer {
        Layer::from_toml(text, Path::new("test.toml")).unwrap()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let mut cfg = Config::default();
        cfg.apply(&flags(&[])).unwrap();
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(cfg.server.metrics_listen.to_string(), "127.0.0.1:9464");
        assert_eq!(cfg.server.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(cfg.accel.backend, BackendKind::Auto);
        assert_eq!(cfg.batcher.max_batch_size, 256);
        assert_eq!(cfg.batcher.max_queue_delay_us, 200);
        assert!(cfg.batcher.workers >= 1);
    }

    #[test]
    fn command_line_wins_over_file_over_defaults() {
        let f = file(
            "[server]\nlisten = \"127.0.0.1:1000\"\nmetrics_listen = \"127.0.0.1:1001\"\n\
             data_dir = \"/from/file\"\n[batcher]\nmax_batch_size = 10\nworkers = 3\n",
        );
        let cli = flags(&[
            "--listen",
            "127.0.0.1:3000",
            "--data-dir",
            "/from/flags",
            "--max-batch-size",
            "20",
            "--ecdsa-presign-pool",
            "0",
            "--gpu-secret-ops",
        ]);
        let mut cfg = Config::default();
        for layer in [&f, &cli] {
            cfg.apply(layer).unwrap();
        }
        assert_eq!(cfg.server.listen.port(), 3000, "flag wins");
        assert_eq!(cfg.server.data_dir, PathBuf::from("/from/flags"));
        assert_eq!(cfg.batcher.max_batch_size, 20, "flag over file");
        assert_eq!(cfg.ecdsa.target, 0);
        assert!(cfg.accel.gpu_secret_ops, "a bare switch means true");
        assert_eq!(cfg.server.metrics_listen.port(), 1001, "file over default");
        assert_eq!(cfg.batcher.workers, 3, "file over default");
        assert_eq!(cfg.batcher.max_queue_delay_us, 200, "default kept");
    }

    #[test]
    fn background_priority_comes_from_file_and_flags() {
        use service_core::background::Priority;
        let mut cfg = Config::default();
        assert_eq!(cfg.background_priority, Priority::Idle);
        cfg.apply(&file("[batcher]\nbackground_priority = \"low\"\n"))
            .unwrap();
        assert_eq!(cfg.background_priority, Priority::Low);
        cfg.apply(&flags(&["--background-priority", "idle"]))
            .unwrap();
        assert_eq!(cfg.background_priority, Priority::Idle);
        let err = cfg
            .apply(&file("[batcher]\nbackground_priority = \"nice\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("batcher.background_priority") && err.contains("idle or low"),
            "{err}"
        );
    }

    #[test]
    fn gpu_settings_come_from_file_and_flags() {
        let mut cfg = Config::default();
        assert!(!cfg.accel.gpu_secret_ops);
        assert_eq!(cfg.accel.gpu_field, GpuField::Auto);
        cfg.apply(&file(
            "[accel]\ngpu_secret_ops = true\ngpu_field = \"u32\"\n",
        ))
        .unwrap();
        assert!(cfg.accel.gpu_secret_ops);
        assert_eq!(cfg.accel.gpu_field, GpuField::U32);
        cfg.apply(&flags(&["--gpu-field", "U64", "--gpu-secret-ops", "false"]))
            .unwrap();
        assert!(!cfg.accel.gpu_secret_ops);
        assert_eq!(cfg.accel.gpu_field, GpuField::U64);
        let err = cfg
            .apply(&file("[accel]\ngpu_field = \"u128\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("accel.gpu_field") && err.contains("u128"),
            "{err}"
        );
        let err = Serve::try_parse_from(["serve", "--gpu-secret-ops", "maybe"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--gpu-secret-ops"), "{err}");
    }

    #[test]
    fn bad_values_name_the_field() {
        let mut cfg = Config::default();
        let err = cfg
            .apply(&file("[batcher]\nmax_batch_size = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("batcher.max_batch_size: must be ≥ 1"), "{err}");
        let err = cfg
            .apply(&file("[server]\nlisten = \"nonsense\"\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.listen"), "{err}");
        let err = cfg
            .apply(&file("[accel]\nbackend = \"fpga\"\n"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("accel.backend") && err.contains("fpga"),
            "{err}"
        );
        let err = Serve::try_parse_from(["serve", "--workers", "many"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("--workers"), "{err}");
        let err = cfg
            .apply(&flags(&["--max-queue", "0"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("batcher.max_queue: must be ≥ 1"), "{err}");
        let err = cfg
            .apply(&file("[ecdsa]\npresign_batch = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ecdsa.presign_batch: must be ≥ 1"), "{err}");
        let err = cfg
            .apply(&flags(&["--auth", "password"]))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("auth.mode") && err.contains("api-key"),
            "{err}"
        );
        let err = Config::default()
            .apply(&flags(&["--auth", "mtls"]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("--client-ca"), "{err}");
        let mut cfg = Config::default();
        cfg.apply(&file("[auth]\nmode = \"api-key\"\n")).unwrap();
        assert_eq!(cfg.auth, AuthMode::ApiKey);
    }

    #[test]
    fn cluster_section_is_read_and_checked() {
        let text = "[cluster]\nparty_id = 2\npeer_listen = \"127.0.0.1:7122\"\nca = \"../ca.pem\"\n\
                    cert = \"node.pem\"\nkey = \"/abs/node.key\"\n\
                    [[cluster.peers]]\nid = 1\naddress = \"127.0.0.1:7112\"\n\
                    [[cluster.peers]]\nid = 3\naddress = \"127.0.0.1:7132\"\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tessera.toml");
        std::fs::write(&path, text).unwrap();
        let mut cfg = Config::default();
        cfg.apply(&Layer::from_file(&path).unwrap()).unwrap();
        let c = cfg.cluster.unwrap();
        assert_eq!(c.party_id, 2);
        assert_eq!(c.peers.len(), 2);
        assert_eq!(c.ca, dir.path().join("../ca.pem"), "relative to the file");
        assert_eq!(c.key, PathBuf::from("/abs/node.key"));
        assert_eq!(c.call_timeout.as_millis(), 2000);
        let dup = text.replace("id = 3", "id = 2");
        let err = Config::default()
            .apply(&file(&dup))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluster.peers.id"), "{err}");
        let bad = text.replace("party_id = 2", "party_id = 0");
        let err = Config::default()
            .apply(&file(&bad))
            .unwrap_err()
            .to_string();
        assert!(err.contains("cluster.party_id"), "{err}");
    }

    #[test]
    fn unknown_or_mistyped_file_fields_are_errors_naming_them() {
        let err = Layer::from_toml("[batcher]\nmax_batch_sise = 3\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_batch_sise"), "{err}");
        let err = Layer::from_toml("[batcher]\nworkers = \"two\"\n", Path::new("c.toml"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml"), "{err}");
    }

    #[test]
    fn example_config_file_parses_and_matches_defaults() {
        let text = include_str!("../../../deploy/tessera.example.toml");
        let mut cfg = Config::default();
        cfg.apply(&file(text)).unwrap();
        let mut expected = Config::default();
        expected.batcher.workers = cfg.batcher.workers;
        expected.storage.kek_file = cfg.storage.kek_file.clone();
        assert_eq!(cfg, expected);
    }
}
