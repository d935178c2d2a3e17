#![doc = include_str!("../README.md")]
//!
//! The `tessera` binary: `tessera serve` runs the signing service; `keygen`, `sign`, `verify`
//! and `load` are clients of a running server; `bench-accel` measures the backends.

mod accel;
mod access;
mod audit_export;
mod bench_accel;
mod cli;
mod cluster;
mod coalesce;
mod config;
mod error;
mod kek;
mod rest;
mod rotate;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use service_core::Scheme;
use telemetry::LogFormat;

use crate::config::{Config, Layer};
use crate::error::Error;

/// Tessera: threshold signing appliance (FROST Ed25519 and BIP340/Taproot, DKLs23 ECDSA).
#[derive(Parser, Debug)]
#[command(name = "tessera", version)]
struct Cli {
    /// Log format on stderr: text (colours only on a terminal) or json [env: TESSERA_LOG_FORMAT]
    #[arg(long, global = true, env = "TESSERA_LOG_FORMAT", default_value = "text", value_parser = parse_log_format)]
    log_format: LogFormat,
    /// Client commands, https:// servers: the CA certificate (PEM) that signed the server's
    /// certificate; an https:// server is never sent anything in plaintext [env: TESSERA_CA_CERT]
    #[arg(long, global = true, env = "TESSERA_CA_CERT", value_name = "FILE")]
    ca_cert: Option<PathBuf>,
    /// Client commands: this client's certificate (PEM) for servers that require client
    /// certificates (mutual TLS); needs --client-key [env: TESSERA_CLIENT_CERT]
    #[arg(
        long,
        global = true,
        env = "TESSERA_CLIENT_CERT",
        value_name = "FILE",
        requires = "client_key"
    )]
    client_cert: Option<PathBuf>,
    /// Client commands: the private key (PEM) of --client-cert [env: TESSERA_CLIENT_KEY]
    #[arg(
        long,
        global = true,
        env = "TESSERA_CLIENT_KEY",
        value_name = "FILE",
        requires = "client_cert"
    )]
    client_key: Option<PathBuf>,
    /// Client commands: the API key sent as `authorization: Bearer` to servers with
    /// `--auth api-key`; prefer the variable, which other users cannot read from the process
    /// list [env: TESSERA_API_KEY]
    #[arg(
        long,
        global = true,
        env = "TESSERA_API_KEY",
        hide_env_values = true,
        value_name = "KEY"
    )]
    api_key: Option<String>,
    #[command(subcommand)]
    command: Command,
}

fn parse_log_format(s: &str) -> Result<LogFormat, String> {
    s.parse().map_err(|e: telemetry::Error| e.to_string())
}

fn parse_scheme(s: &str) -> Result<Scheme, String> {
    s.parse()
        .map_err(|e: service_core::UnknownScheme| e.to_string())
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the signing service (gRPC + Prometheus metrics). Prints the bound addresses on
    /// stderr as `tessera: gRPC listening on ADDR` and `tessera: metrics listening on ADDR`.
    /// Settings: flags win over TESSERA_* environment variables, which win over the config
    /// file, which wins over the defaults.
    Serve(Box<ServeArgs>),
    /// Create a key with the distributed key generation; prints the key as JSON.
    Keygen(KeygenArgs),
    /// Split an existing secret key (an Ed25519 seed, a BIP340 or an ECDSA secp256k1 secret
    /// key, 32 bytes as 64 hex digits in --secret-file) into a threshold key (trusted dealer:
    /// the server that receives it holds the secret while it splits it); prints the key as
    /// JSON. Needs an admin identity when authentication is on
    Import(ImportArgs),
    /// Sign one message; prints signature and verifying key as JSON.
    Sign(SignArgs),
    /// Verify a signature; prints {"valid": true|false} and exits 1 when invalid.
    Verify(VerifyArgs),
    /// A key's address on a chain (Ethereum: ECDSA keys; Bitcoin: P2TR of BIP340 keys or
    /// P2WPKH of ECDSA keys; Solana: Ed25519 keys); prints {"address": …}.
    Address(AddressArgs),
    /// Sign a chain transaction with a key (docs/chains.md): an unsigned Ethereum transaction,
    /// a Bitcoin PSBT or a Solana message, read from --tx-file as hex, as base64 (Bitcoin
    /// Core's PSBT spelling) or as raw bytes; prints the signed result (hex) and what it does
    /// as JSON. --broadcast also sends it to the server's configured node for the chain.
    SignTx(SignTxArgs),
    /// Load generator: signs with many concurrent requests and prints throughput, latency
    /// percentiles, errors by status code and the server's CPU time per signature.
    Load(LoadArgs),
    /// Write a distributed cluster's files: a cluster CA (DIR/ca.pem) and for each node
    /// `DIR/node-<i>/tessera.toml` with its certificate and key. Start node i with
    /// `tessera serve --config DIR/node-<i>/tessera.toml`.
    InitCluster(InitClusterArgs),
    /// Manage the clients allowed to use the service (`--auth api-key` or `mtls`): API keys
    /// and client-certificate identities with their policies, in DATA_DIR/access.json. Needs
    /// the KEK the server runs with (TESSERA_KEK, --kek-file, or DATA_DIR/kek). A running
    /// server picks changes up within a second.
    Apikey(ApikeyArgs),
    /// Key-encryption key operations on a stopped server's data directory.
    Kek(KekArgs),
    /// A stopped server's audit log: verify its keyed hash chain (naming the first event
    /// edited, reordered or removed), export it to a file and prune what was exported, or
    /// verify an export. Needs the server's KEK (TESSERA_KEK, --kek-file, or DATA_DIR/kek).
    Audit(AuditArgs),
    /// Measure the accelerator backends on this host: per backend, op and batch size (1, 4,
    /// 16, … up to --max-batch) the per-item cost and throughput, the GPU adapter's name and
    /// the batch size from which the GPU beats the CPU backends. Progress goes to stderr.
    BenchAccel(BenchAccelArgs),
}

#[derive(Args, Debug)]
struct KekArgs {
    #[command(subcommand)]
    action: KekAction,
}

#[derive(Subcommand, Debug)]
enum KekAction {
    /// Re-encrypt every key record, re-chain the audit log and re-authenticate the access
    /// file under a new KEK, all checked under the old one first; the database changes in one
    /// transaction. The old KEK comes from TESSERA_KEK, --kek-file or DATA_DIR/kek.
    Rotate(KekRotateArgs),
}

#[derive(Args, Debug)]
struct KekRotateArgs {
    #[command(flatten)]
    store: AccessStoreArgs,
    /// The new KEK (64 hex digits, a private file); generated there when the file does not
    /// exist
    #[arg(long, value_name = "FILE")]
    new_kek_file: PathBuf,
}

#[derive(Args, Debug)]
struct AuditArgs {
    #[command(subcommand)]
    action: AuditAction,
}

#[derive(Subcommand, Debug)]
enum AuditAction {
    /// Verify the audit chain; exits 1 naming the first tampered event.
    Verify(AccessStoreArgs),
    /// Write a stopped server's audit log (verified first) to a JSON Lines file; with
    /// --prune, then delete the exported events, keeping an authenticated checkpoint so the
    /// rest of the chain still verifies (the audit log's retention).
    Export(AuditExportArgs),
    /// Verify an export file's chain with the KEK.
    VerifyExport(AuditVerifyExportArgs),
}

#[derive(Args, Debug)]
struct AuditExportArgs {
    #[command(flatten)]
    store: AccessStoreArgs,
    /// The file to write (must not exist)
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Delete the exported events from the database once the file is written and synced
    #[arg(long)]
    prune: bool,
}

#[derive(Args, Debug)]
struct AuditVerifyExportArgs {
    /// The export file
    file: PathBuf,
    /// The KEK file of the server that wrote it (else TESSERA_KEK, else DATA_DIR/kek)
    #[arg(long, env = "TESSERA_KEK_FILE", value_name = "FILE")]
    kek_file: Option<PathBuf>,
    /// The server's data directory (for DATA_DIR/kek)
    #[arg(
        long,
        env = "TESSERA_DATA_DIR",
        value_name = "DIR",
        default_value = "./tessera-data"
    )]
    data_dir: PathBuf,
}

/// A stopped server's store, opened with its KEK.
fn open_stopped(a: &AccessStoreArgs) -> Result<store_redb::RedbStore, Error> {
    let env = std::env::var("TESSERA_KEK").ok();
    let (kek, _) = kek::resolve_existing(env.as_deref(), a.kek_file.as_deref(), &a.data_dir)?;
    if !a.data_dir.join(store_redb::FILE_NAME).exists() {
        return Err(Error::usage(
            "--data-dir",
            format!("{} holds no database", a.data_dir.display()),
        ));
    }
    Ok(store_redb::RedbStore::open(
        &a.data_dir,
        service_core::audit::ChainKey::of(&kek),
    )?)
}

/// `tessera audit verify`.
fn audit_verify(a: &AccessStoreArgs) -> Result<String, Error> {
    let store = open_stopped(a)?;
    let n = server::verify_audit(&store, &a.data_dir)?;
    Ok(format!(
        "audit log {}: {n} events, chain intact",
        a.data_dir.join(store_redb::FILE_NAME).display()
    ))
}

/// `tessera audit export`.
fn audit_export(a: &AuditExportArgs) -> Result<String, Error> {
    let store = open_stopped(&a.store)?;
    let db = a.store.data_dir.join(store_redb::FILE_NAME);
    let done = audit_export::export(&store, &db, &a.out, a.prune)?;
    let range = match done.range {
        Some((first, last)) => format!(" (events {first} to {last})"),
        None => String::new(),
    };
    let mut out = format!(
        "exported {} events{range} to {}",
        done.events,
        a.out.display()
    );
    if a.prune {
        out.push_str(&format!(
            "; deleted {} of them from {}; the kept chain verifies from its checkpoint",
            done.pruned,
            db.display()
        ));
    }
    Ok(out)
}

/// `tessera audit verify-export`.
fn audit_verify_export(a: &AuditVerifyExportArgs) -> Result<String, Error> {
    let env = std::env::var("TESSERA_KEK").ok();
    let (kek, _) = kek::resolve_existing(env.as_deref(), a.kek_file.as_deref(), &a.data_dir)?;
    let n = audit_export::verify_export(&kek, &a.file)?;
    Ok(format!(
        "audit export {}: {n} events, chain intact",
        a.file.display()
    ))
}

#[derive(Args, Debug)]
struct ApikeyArgs {
    #[command(subcommand)]
    action: ApikeyAction,
}

#[derive(Subcommand, Debug)]
enum ApikeyAction {
    /// Register a client and print its new API key on stdout, once (only its hash is
    /// kept). Default deny: the client may use only the keys named by --keys and those it
    /// creates (with --admin), for the schemes named by --schemes.
    Create(ApikeyCreateArgs),
    /// List the registered clients and their policies (never the keys).
    List(AccessStoreArgs),
    /// Revoke a client: its API key (or certificate identity) is refused from now on.
    Revoke(ApikeyRevokeArgs),
}

#[derive(Args, Debug)]
struct AccessStoreArgs {
    /// The server's data directory
    #[arg(
        long,
        env = "TESSERA_DATA_DIR",
        value_name = "DIR",
        default_value = "./tessera-data"
    )]
    data_dir: PathBuf,
    /// The server's KEK file (else TESSERA_KEK, else DATA_DIR/kek)
    #[arg(long, env = "TESSERA_KEK_FILE", value_name = "FILE")]
    kek_file: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ApikeyCreateArgs {
    #[command(flatten)]
    store: AccessStoreArgs,
    /// The client's name (recorded in the audit log); with --certificate, the identity its
    /// certificate names (a subjectAltName DNS name or the subject's common name)
    #[arg(long)]
    name: String,
    /// Key ids the client may see and sign with, comma-separated, or `*` for every key
    /// [default: none; an admin still uses the keys it creates]
    #[arg(long, value_delimiter = ',', value_name = "IDS")]
    keys: Vec<String>,
    /// Schemes the client may use: ed25519, bip340, ecdsa, comma-separated, or `*`
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "SCHEMES",
        default_value = "*"
    )]
    schemes: Vec<String>,
    /// May create and import keys
    #[arg(long)]
    admin: bool,
    /// Most requests per second, e.g. 100/s [default: unlimited]
    #[arg(long, value_name = "N/s")]
    rate: Option<String>,
    /// Register a client-certificate identity (for --auth mtls) instead of making an API key
    #[arg(long, conflicts_with = "policy_only")]
    certificate: bool,
    /// Register only the policy of a client that authenticates at another node of the
    /// cluster: this node checks it when asked to co-sign for that client (no credential is
    /// made here)
    #[arg(long)]
    policy_only: bool,
}

#[derive(Args, Debug)]
struct ApikeyRevokeArgs {
    #[command(flatten)]
    store: AccessStoreArgs,
    /// The client to revoke
    #[arg(long)]
    name: String,
}

/// The access file of `a` and its MAC key, from the server's KEK (never generated here).
fn access_of(a: &AccessStoreArgs) -> Result<(PathBuf, zeroize::Zeroizing<[u8; 32]>), Error> {
    let env = std::env::var("TESSERA_KEK").ok();
    let (kek, _) = kek::resolve_existing(env.as_deref(), a.kek_file.as_deref(), &a.data_dir)?;
    Ok(access::path_and_key(&a.data_dir, &kek))
}

fn apikey(action: ApikeyAction) -> Result<String, Error> {
    match action {
        ApikeyAction::Create(a) => {
            let (path, key) = access_of(&a.store)?;
            let policy = service_core::Policy {
                admin: a.admin,
                keys: access::list_arg(&a.keys),
                schemes: access::schemes_arg(&a.schemes)?,
                rate_per_s: a.rate.as_deref().map(access::rate_arg).transpose()?,
            };
            let name = a.name.clone();
            match access::create(
                &path,
                &key,
                access::NewClient {
                    name: a.name,
                    policy,
                    certificate: a.certificate,
                    policy_only: a.policy_only,
                },
            )? {
                Some(api_key) => {
                    eprintln!(
                        "tessera: API key of `{name}` (shown once; only its hash is kept in {}):",
                        path.display()
                    );
                    Ok(api_key.to_string())
                }
                None if a.policy_only => Ok(format!(
                    "registered the policy of `{name}` (co-signing for a client authenticated by another node) in {}",
                    path.display()
                )),
                None => Ok(format!(
                    "registered the client-certificate identity `{name}` in {}",
                    path.display()
                )),
            }
        }
        ApikeyAction::List(a) => {
            let (path, key) = access_of(&a)?;
            Ok(access::render(&access::read(&path, &key)?))
        }
        ApikeyAction::Revoke(a) => {
            let (path, key) = access_of(&a.store)?;
            let n = access::revoke(&path, &key, &a.name)?;
            Ok(format!("revoked `{}` ({n} credential(s))", a.name))
        }
    }
}

#[derive(Args, Debug)]
struct InitClusterArgs {
    /// Number of nodes (parties), 2 to 255
    #[arg(long)]
    parties: u16,
    /// Directory to write (must not exist or be empty)
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Node i listens on BASE+10·i (API), +1 (metrics) and +2 (peers)
    #[arg(long, value_name = "BASE", default_value_t = 7100)]
    base_port: u16,
    /// Address every node listens on (one machine: 127.0.0.1; edit the files for several hosts)
    #[arg(long, default_value = "127.0.0.1")]
    host: std::net::IpAddr,
}

#[derive(Args, Debug)]
struct BenchAccelArgs {
    /// Backends to measure, comma-separated (cpu, simd, gpu); default: every one available
    #[arg(long, value_delimiter = ',')]
    backends: Vec<String>,
    /// Largest batch measured
    #[arg(long, default_value_t = 262_144)]
    max_batch: usize,
    /// Least time per (backend, op, batch) cell, e.g. 200ms
    #[arg(long, value_parser = cli::parse_duration, default_value = "200ms")]
    min_time: std::time::Duration,
    /// Also measure the GPU's mul_base (without it the GPU backend does not offer mul_base)
    #[arg(long)]
    gpu_secret_ops: bool,
    /// The GPU kernels' field arithmetic: auto, u32 (13-bit limbs) or u64 (26-bit limbs,
    /// needs SHADER_INT64)
    #[arg(long, value_name = "FIELD", default_value = "auto")]
    gpu_field: String,
    /// Write the fitted cost models here (JSON) for `tessera serve --cost-model`
    #[arg(long, value_name = "FILE")]
    save: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// TOML config file (see deploy/tessera.example.toml)
    #[arg(long, env = "TESSERA_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    settings: Layer,
    /// Internal: read the KEK from standard input. Set by `serve` itself when it starts again
    /// without `TESSERA_KEK` in its environment (see `reexec_with_clean_environment`).
    #[arg(long, hide = true)]
    kek_from_stdin: bool,
}

#[derive(Args, Debug)]
struct KeygenArgs {
    /// Server URL
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Scheme: ed25519, bip340 (alias taproot) or ecdsa (threshold ECDSA on secp256k1, t ≥ 2)
    #[arg(long, value_parser = parse_scheme)]
    scheme: Scheme,
    /// Signing threshold t
    #[arg(long)]
    threshold: u32,
    /// Number of parties n
    #[arg(long)]
    parties: u32,
    /// Free-form label
    #[arg(long, default_value = "")]
    label: String,
    /// Idempotency key: a retry with the same key returns the key created the first time
    #[arg(long, default_value = "")]
    idempotency_key: String,
}

#[derive(Args, Debug)]
struct ImportArgs {
    /// Server URL
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Scheme: ed25519, bip340 (alias taproot) or ecdsa
    #[arg(long, value_parser = parse_scheme)]
    scheme: Scheme,
    /// Signing threshold t
    #[arg(long)]
    threshold: u32,
    /// Number of parties n
    #[arg(long)]
    parties: u32,
    /// File holding the secret key as hex (read here, never passed on the command line)
    #[arg(long, value_name = "FILE")]
    secret_file: PathBuf,
    /// Free-form label
    #[arg(long, default_value = "")]
    label: String,
    /// Idempotency key: a retry with the same key and secret returns the key imported the
    /// first time
    #[arg(long, default_value = "")]
    idempotency_key: String,
}

#[derive(Args, Debug)]
struct SignArgs {
    /// Server URL
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Key id (from keygen)
    #[arg(long)]
    key_id: String,
    /// Message as hex (BIP340: 32 bytes; ECDSA: the 32-byte prehash)
    #[arg(long, conflicts_with = "message", required_unless_present = "message")]
    message_hex: Option<String>,
    /// Message as a UTF-8 string
    #[arg(long)]
    message: Option<String>,
    /// BIP340: sign for the Taproot output key committing to this 32-byte script root (hex)
    #[arg(long, conflicts_with = "taproot_keypath")]
    taproot_merkle_root: Option<String>,
    /// BIP340: sign for the BIP86 key-path output key (no script tree)
    #[arg(long)]
    taproot_keypath: bool,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    /// Server URL
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Scheme: ed25519, bip340 or ecdsa
    #[arg(long, value_parser = parse_scheme)]
    scheme: Scheme,
    /// Public key as hex (32 bytes; ECDSA: 33-byte compressed)
    #[arg(long)]
    public_key: String,
    /// Message as hex
    #[arg(long, conflicts_with = "message", required_unless_present = "message")]
    message_hex: Option<String>,
    /// Message as a UTF-8 string
    #[arg(long)]
    message: Option<String>,
    /// Signature as hex (64 bytes)
    #[arg(long)]
    signature: String,
}

/// The server, key and chain that `address` and `sign-tx` name.
#[derive(Args, Debug)]
struct ChainKeyArgs {
    /// Server URL
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Key id (from keygen)
    #[arg(long)]
    key_id: String,
    /// ethereum, bitcoin or solana
    #[arg(long, value_parser = cli::parse_chain)]
    chain: api_proto::Chain,
}

#[derive(Args, Debug)]
struct AddressArgs {
    #[command(flatten)]
    on: ChainKeyArgs,
    /// Bitcoin: mainnet (default), testnet, signet or regtest
    #[arg(long, default_value = "")]
    network: String,
}

#[derive(Args, Debug)]
struct SignTxArgs {
    #[command(flatten)]
    on: ChainKeyArgs,
    /// The unsigned transaction, PSBT or message: hex, base64 or raw bytes
    #[arg(long, value_name = "FILE")]
    tx_file: PathBuf,
    /// Bitcoin: the network the summary's addresses are spelled for (default mainnet)
    #[arg(long, default_value = "")]
    network: String,
    /// Also send the signed transaction to the server's node for the chain
    #[arg(long)]
    broadcast: bool,
    /// Idempotency key: a retry with the same key returns (and rebroadcasts) the same
    /// signed transaction
    #[arg(long, default_value = "")]
    idempotency_key: String,
}

#[derive(Args, Debug)]
struct LoadArgs {
    /// Server URL
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    server: String,
    /// The call to repeat: sign (Sign, or SignBatch with --batch-size), or health (the
    /// standard gRPC health check: no key, no signing, no storage; the server's cost of one
    /// gRPC call, the floor under a Sign request's overhead)
    #[arg(long, default_value = "sign", value_parser = parse_load_rpc)]
    rpc: client::load::LoadRpc,
    /// Scheme of the key created for the run: ed25519, bip340 or ecdsa
    #[arg(long, default_value = "ed25519", value_parser = parse_scheme)]
    scheme: Scheme,
    /// Use this key instead of creating a 2-of-3 key
    #[arg(long)]
    key_id: Option<String>,
    /// Sign with this many 2-of-3 keys, each request's key drawn at random: keys labelled
    /// "tessera load" of this scheme already on the server are reused, the rest are created
    #[arg(long, default_value_t = 1, conflicts_with = "key_id", value_parser = at_least_one)]
    keys: usize,
    /// Requests in flight at once
    #[arg(long, default_value_t = 64, value_parser = at_least_one)]
    concurrency: usize,
    /// Run for this long (e.g. 10s, 500ms, 1m)
    #[arg(long, value_parser = cli::parse_duration, required_unless_present = "count")]
    duration: Option<std::time::Duration>,
    /// Stop after this many signatures
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Messages per request: 1 uses Sign, more uses SignBatch
    #[arg(long, default_value_t = 1, value_parser = at_least_one)]
    batch_size: usize,
    /// The server's Prometheus endpoint, to report its CPU time per signature
    #[arg(long)]
    metrics_url: Option<String>,
    /// Print the summary as JSON
    #[arg(long)]
    json: bool,
}

fn parse_load_rpc(s: &str) -> Result<client::load::LoadRpc, String> {
    match s {
        "sign" => Ok(client::load::LoadRpc::Sign),
        "health" => Ok(client::load::LoadRpc::HealthCheck),
        other => Err(format!("{other:?} is not sign or health")),
    }
}

/// A count that must be 1 or more.
fn at_least_one(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(e) => Err(e.to_string()),
    }
}

fn message_of(hex_arg: Option<String>, text: Option<String>) -> Result<Vec<u8>, Error> {
    match (hex_arg, text) {
        (Some(h), _) => cli::hex_arg("--message-hex", &h),
        (None, Some(t)) => Ok(t.into_bytes()),
        (None, None) => Err(Error::usage(
            "--message-hex",
            "give --message-hex or --message",
        )),
    }
}

fn read_file(flag: &'static str, p: &std::path::Path) -> Result<Vec<u8>, Error> {
    std::fs::read(p).map_err(|e| Error::usage(flag, format!("cannot read {}: {e}", p.display())))
}

/// The client commands' TLS settings from the global flags.
fn client_tls(cli: &Cli) -> Result<client::Tls, Error> {
    Ok(client::Tls {
        ca_pem: cli
            .ca_cert
            .as_deref()
            .map(|p| read_file("--ca-cert", p))
            .transpose()?,
        identity: match (&cli.client_cert, &cli.client_key) {
            (Some(c), Some(k)) => Some((
                read_file("--client-cert", c)?,
                read_file("--client-key", k)?,
            )),
            _ => None,
        },
        api_key: cli.api_key.clone().map(zeroize::Zeroizing::new),
    })
}

async fn run(command: Command, tls: client::Tls) -> Result<Option<String>, Error> {
    match command {
        Command::Serve(a) => {
            let cfg = Config::load(a.config.as_deref(), &a.settings)?;
            let kek = if a.kek_from_stdin {
                Some(kek_from_stdin()?)
            } else {
                std::env::var("TESSERA_KEK")
                    .ok()
                    .map(zeroize::Zeroizing::new)
            };
            server::serve(cfg, kek).await?;
            Ok(None)
        }
        Command::Keygen(a) => Ok(Some(
            cli::keygen(
                &a.server,
                a.scheme,
                a.threshold,
                a.parties,
                a.label,
                a.idempotency_key,
                &tls,
            )
            .await?,
        )),
        Command::Import(a) => Ok(Some(
            cli::import(
                &a.server,
                a.scheme,
                a.threshold,
                a.parties,
                &a.secret_file,
                a.label,
                a.idempotency_key,
                &tls,
            )
            .await?,
        )),
        Command::Sign(a) => {
            let root = match (a.taproot_merkle_root, a.taproot_keypath) {
                (Some(h), _) => Some(cli::hex_arg("--taproot-merkle-root", &h)?),
                (None, true) => Some(Vec::new()),
                (None, false) => None,
            };
            let msg = message_of(a.message_hex, a.message)?;
            Ok(Some(cli::sign(&a.server, &tls, a.key_id, msg, root).await?))
        }
        Command::Verify(a) => {
            let (out, valid) = cli::verify(
                &a.server,
                &tls,
                a.scheme,
                cli::hex_arg("--public-key", &a.public_key)?,
                message_of(a.message_hex, a.message)?,
                cli::hex_arg("--signature", &a.signature)?,
            )
            .await?;
            println!("{out}");
            if valid {
                Ok(None)
            } else {
                Err(Error::InvalidSignature)
            }
        }
        Command::Address(a) => Ok(Some(
            cli::address(&a.on.server, &tls, a.on.key_id, a.on.chain, a.network).await?,
        )),
        Command::SignTx(a) => {
            let bytes = cli::tx_bytes(a.on.chain, &read_file("--tx-file", &a.tx_file)?);
            Ok(Some(
                cli::sign_tx(
                    &a.on.server,
                    &tls,
                    cli::SignTx {
                        key_id: a.on.key_id,
                        chain: a.on.chain,
                        bytes,
                        network: a.network,
                        broadcast: a.broadcast,
                        idempotency_key: a.idempotency_key,
                    },
                )
                .await?,
            ))
        }
        Command::Apikey(a) => Ok(Some(apikey(a.action)?)),
        Command::Kek(a) => match a.action {
            KekAction::Rotate(r) => {
                let env = std::env::var("TESSERA_KEK").ok();
                Ok(Some(rotate::rotate(
                    &r.store.data_dir,
                    env.as_deref(),
                    r.store.kek_file.as_deref(),
                    &r.new_kek_file,
                )?))
            }
        },
        Command::Audit(a) => match a.action {
            AuditAction::Verify(v) => Ok(Some(audit_verify(&v)?)),
            AuditAction::Export(e) => Ok(Some(audit_export(&e)?)),
            AuditAction::VerifyExport(v) => Ok(Some(audit_verify_export(&v)?)),
        },
        Command::InitCluster(a) => {
            let written = cluster::init(a.parties, &a.out, a.base_port, a.host)?;
            let mut out = format!(
                "wrote a {}-node cluster to {}; start each node with:\n",
                a.parties,
                a.out.display()
            );
            for p in written {
                out.push_str(&format!("  tessera serve --config {}\n", p.display()));
            }
            Ok(Some(out))
        }
        Command::BenchAccel(a) => {
            let opts = bench_accel::BenchAccelOptions {
                backends: a.backends,
                max_batch: a.max_batch,
                min_time: a.min_time,
                accel: config::AccelConfig {
                    backend: accel_api::BackendKind::Auto,
                    gpu_secret_ops: a.gpu_secret_ops,
                    gpu_field: a
                        .gpu_field
                        .parse()
                        .map_err(|e: String| Error::usage("--gpu-field", e))?,
                    cost_model: None,
                },
                save: a.save,
            };
            let report = tokio::task::spawn_blocking(move || bench_accel::run(&opts))
                .await
                .map_err(|e| Error::Io {
                    context: "bench-accel stopped".into(),
                    source: std::io::Error::other(e),
                })??;
            Ok(Some(report))
        }
        Command::Load(a) => {
            let report = client::load::load(client::load::LoadOptions {
                server: a.server,
                rpc: a.rpc,
                scheme: api_grpc::scheme_to_proto(a.scheme),
                key_id: a.key_id,
                keys: a.keys,
                concurrency: a.concurrency,
                duration: a.duration,
                count: a.count,
                batch_size: a.batch_size,
                metrics_url: a.metrics_url,
                tls,
            })
            .await?;
            Ok(Some(if a.json {
                serde_json::to_string_pretty(&report).map_err(|e| Error::Io {
                    context: "encoding the report".into(),
                    source: e.into(),
                })?
            } else {
                report.human()
            }))
        }
    }
}

/// The KEK that [`reexec_with_clean_environment`] handed over on standard input.
fn kek_from_stdin() -> Result<zeroize::Zeroizing<String>, Error> {
    use std::io::Read;
    let mut text = zeroize::Zeroizing::new(String::new());
    std::io::stdin()
        .take(1024)
        .read_to_string(&mut text)
        .map_err(|e| Error::Io {
            context: "reading the KEK (TESSERA_KEK) from standard input".into(),
            source: e,
        })?;
    Ok(zeroize::Zeroizing::new(text.trim().to_owned()))
}

/// `serve` and `bench-accel` start this binary again in the same process (exec: same pid,
/// same arguments) when their environment must change before anything runs. A running
/// process can only change its own environment with `unsafe` code, and even then
/// `/proc/PID/environ` would still show the environment it started with.
/// - On a headless host (no `XDG_RUNTIME_DIR`), Mesa's implicit Vulkan layer `device_select`
///   tries to reach a Wayland display while the GPU adapters are enumerated and prints
///   `error: XDG_RUNTIME_DIR is invalid or not set` lines that mean nothing here (wgpu chooses
///   the adapter itself). The layer reads `NODEVICE_SELECT=1` when Vulkan loads, so it is set
///   (left alone when `MESA_VK_DEVICE_SELECT` asks for the layer).
/// - `serve` with `TESSERA_KEK` set: the variable is removed, and the KEK is handed over
///   through a pipe on standard input (`--kek-from-stdin`). The running server's environment,
///   its `/proc/PID/environ` and anything that inherits them never hold the KEK.
#[cfg(unix)]
fn reexec_with_clean_environment(command: &Command) {
    use std::io::Write;
    use std::os::unix::process::CommandExt;
    let set = |v: &str| std::env::var_os(v).is_some();
    let quiet_vulkan = matches!(command, Command::Serve(_) | Command::BenchAccel(_))
        && !set("XDG_RUNTIME_DIR")
        && !set("NODEVICE_SELECT")
        && !set("MESA_VK_DEVICE_SELECT");
    let kek = match command {
        Command::Serve(a) if !a.kek_from_stdin => {
            std::env::var_os("TESSERA_KEK").map(|v| zeroize::Zeroizing::new(v.into_encoded_bytes()))
        }
        _ => None,
    };
    if !quiet_vulkan && kek.is_none() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        if kek.is_some() {
            eprintln!(
                "tessera: WARNING: cannot find this program's path to restart it without TESSERA_KEK; the KEK stays in the server's environment"
            );
        }
        return;
    };
    let mut again = std::process::Command::new(exe);
    again.args(std::env::args_os().skip(1));
    if quiet_vulkan {
        again.env("NODEVICE_SELECT", "1");
    }
    if let Some(kek) = &kek {
        // A pipe holds 64 KiB before a write blocks; the KEK is 64 hex digits.
        let handed_over = std::io::pipe().and_then(|(reader, mut writer)| {
            writer.write_all(kek)?;
            Ok(reader)
        });
        match handed_over {
            Ok(reader) => {
                again
                    .arg("--kek-from-stdin")
                    .env_remove("TESSERA_KEK")
                    .stdin(reader);
            }
            Err(e) => {
                eprintln!(
                    "tessera: WARNING: cannot hand the KEK over through a pipe ({e}); it stays in the server's environment"
                );
                if !quiet_vulkan {
                    return;
                }
            }
        }
    }
    drop(kek);
    let err = again.exec();
    eprintln!(
        "tessera: note: could not restart this program with a cleaned environment ({err}); continuing"
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(unix)]
    reexec_with_clean_environment(&cli.command);
    if let Err(e) = telemetry::init_tracing(
        cli.log_format,
        "warn,tessera=info,service_core=info,api_grpc=info,store_redb=info",
    ) {
        eprintln!("tessera: error: {}", Error::from(e).chain());
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("tessera: error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let tls = match client_tls(&cli) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("tessera: error: {}", e.chain());
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli.command, tls)) {
        Ok(Some(out)) => {
            print!("{out}");
            if !out.ends_with('\n') {
                println!();
            }
            ExitCode::SUCCESS
        }
        Ok(None) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tessera: error: {}", e.chain());
            match e {
                Error::Config { .. } => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}
