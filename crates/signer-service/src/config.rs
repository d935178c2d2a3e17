//! Service configuration: defaults, overlaid by a TOML file, then `TESSERA_*` environment
//! variables, then command-line flags (flags win over env over file over defaults).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use accel_api::BackendKind;
use backend_gpu::GpuField;
use serde::Deserialize;
use service_core::batcher::BatcherConfig;
use service_core::{Limits, PresignPool};

use crate::error::Error;

/// The whole service configuration after every layer has been applied and validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Server section.
    pub server: ServerConfig,
    /// Accelerator section.
    pub accel: AccelConfig,
    /// Dynamic batcher section.
    pub batcher: BatcherConfig,
    /// Storage section.
    pub storage: StorageConfig,
    /// Request limits.
    pub limits: Limits,
    /// Threshold-ECDSA presignature pool.
    pub ecdsa: PresignPool,
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

/// `[storage]`: the key-encryption key.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct StorageConfig {
    /// `storage.kek_file`: file holding the 32-byte key-encryption key in hex. When neither
    /// this nor `TESSERA_KEK` is set, `<data_dir>/kek` is used (generated on first run).
    pub kek_file: Option<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            server: ServerConfig {
                data_dir: PathBuf::from("./tessera-data"),
                listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
                metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9464)),
            },
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
            storage: StorageConfig::default(),
            limits: Limits {
                max_message_bytes: 64 * 1024,
                max_batch_messages: 4096,
            },
            ecdsa: PresignPool {
                target: 64,
                batch: 16,
            },
        }
    }
}

/// One layer of settings (a file, the environment or the flags); `None` leaves a field alone.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Layer {
    /// `[server]` fields.
    pub server: ServerLayer,
    /// `[accel]` fields.
    pub accel: AccelLayer,
    /// `[batcher]` fields.
    pub batcher: BatcherLayer,
    /// `[storage]` fields.
    pub storage: StorageLayer,
    /// `[limits]` fields.
    pub limits: LimitsLayer,
    /// `[ecdsa]` fields.
    pub ecdsa: EcdsaLayer,
}

/// `[server]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerLayer {
    /// See [`ServerConfig::data_dir`].
    pub data_dir: Option<PathBuf>,
    /// See [`ServerConfig::listen`].
    pub listen: Option<String>,
    /// See [`ServerConfig::metrics_listen`].
    pub metrics_listen: Option<String>,
}

/// `[accel]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccelLayer {
    /// See [`AccelConfig::backend`].
    pub backend: Option<String>,
    /// See [`AccelConfig::gpu_secret_ops`].
    pub gpu_secret_ops: Option<bool>,
    /// See [`AccelConfig::gpu_field`].
    pub gpu_field: Option<String>,
    /// See [`AccelConfig::cost_model`].
    pub cost_model: Option<PathBuf>,
}

/// `[batcher]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BatcherLayer {
    /// See [`BatcherConfig::max_batch_size`].
    pub max_batch_size: Option<i64>,
    /// See [`BatcherConfig::max_queue_delay_us`].
    pub max_queue_delay_us: Option<i64>,
    /// See [`BatcherConfig::max_queue`].
    pub max_queue: Option<i64>,
    /// See [`BatcherConfig::workers`].
    pub workers: Option<i64>,
}

/// `[storage]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageLayer {
    /// See [`StorageConfig::kek_file`].
    pub kek_file: Option<PathBuf>,
}

/// `[limits]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitsLayer {
    /// `limits.max_message_bytes`: largest Ed25519 message accepted (default 65536).
    pub max_message_bytes: Option<i64>,
    /// `limits.max_batch_messages`: most messages in one SignBatch request (default 4096).
    pub max_batch_messages: Option<i64>,
}

/// `[ecdsa]` in a layer.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EcdsaLayer {
    /// `ecdsa.presign_pool`: presignatures kept ready per key (default 64; 0 = none).
    pub presign_pool: Option<i64>,
    /// `ecdsa.presign_batch`: presignatures made per refill step (default 16, ≥ 1).
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

    /// Reads a TOML config file.
    pub fn from_file(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| config_err("--config", format!("cannot read {}: {e}", path.display())))?;
        Self::from_toml(&text, path)
    }

    /// Reads the `TESSERA_*` variables (see [`ENV_VARS`]) through `lookup`.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let int = |var: &str| -> Result<Option<i64>, Error> {
            lookup(var)
                .map(|v| {
                    v.trim()
                        .parse::<i64>()
                        .map_err(|_| config_err(var, format!("`{v}` is not an integer")))
                })
                .transpose()
        };
        let boolean = |var: &str| -> Result<Option<bool>, Error> {
            lookup(var)
                .map(|v| match v.trim() {
                    "true" | "1" => Ok(true),
                    "false" | "0" => Ok(false),
                    _ => Err(config_err(var, format!("`{v}` is not true or false"))),
                })
                .transpose()
        };
        Ok(Self {
            server: ServerLayer {
                data_dir: lookup("TESSERA_DATA_DIR").map(PathBuf::from),
                listen: lookup("TESSERA_LISTEN"),
                metrics_listen: lookup("TESSERA_METRICS_LISTEN"),
            },
            accel: AccelLayer {
                backend: lookup("TESSERA_BACKEND"),
                gpu_secret_ops: boolean("TESSERA_GPU_SECRET_OPS")?,
                gpu_field: lookup("TESSERA_GPU_FIELD"),
                cost_model: lookup("TESSERA_COST_MODEL").map(PathBuf::from),
            },
            batcher: BatcherLayer {
                max_batch_size: int("TESSERA_BATCHER_MAX_BATCH_SIZE")?,
                max_queue_delay_us: int("TESSERA_BATCHER_MAX_QUEUE_DELAY_US")?,
                max_queue: int("TESSERA_BATCHER_MAX_QUEUE")?,
                workers: int("TESSERA_BATCHER_WORKERS")?,
            },
            storage: StorageLayer {
                kek_file: lookup("TESSERA_KEK_FILE").map(PathBuf::from),
            },
            limits: LimitsLayer {
                max_message_bytes: int("TESSERA_LIMITS_MAX_MESSAGE_BYTES")?,
                max_batch_messages: int("TESSERA_LIMITS_MAX_BATCH_MESSAGES")?,
            },
            ecdsa: EcdsaLayer {
                presign_pool: int("TESSERA_ECDSA_PRESIGN_POOL")?,
                presign_batch: int("TESSERA_ECDSA_PRESIGN_BATCH")?,
            },
        })
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
        if let Some(v) = &layer.storage.kek_file {
            self.storage.kek_file = Some(v.clone());
        }
        if let Some(v) = layer.limits.max_message_bytes {
            self.limits.max_message_bytes = at_least("limits.max_message_bytes", v, 1)?;
        }
        if let Some(v) = layer.limits.max_batch_messages {
            self.limits.max_batch_messages = at_least("limits.max_batch_messages", v, 1)?;
        }
        if let Some(v) = layer.ecdsa.presign_pool {
            self.ecdsa.target = at_least("ecdsa.presign_pool", v, 0)?;
        }
        if let Some(v) = layer.ecdsa.presign_batch {
            self.ecdsa.batch = at_least("ecdsa.presign_batch", v, 1)?;
        }
        Ok(())
    }

    /// Defaults, then the file (if any), then the environment, then the flags.
    pub fn load(
        file: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
        flags: &Layer,
    ) -> Result<Self, Error> {
        let mut cfg = Config::default();
        if let Some(path) = file {
            cfg.apply(&Layer::from_file(path)?)?;
        }
        cfg.apply(&Layer::from_env(env)?)?;
        cfg.apply(flags)?;
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use std::collections::HashMap;

    /// Every environment variable read, with the config field it sets.
    const ENV_VARS: &[(&str, &str)] = &[
        ("TESSERA_DATA_DIR", "server.data_dir"),
        ("TESSERA_LISTEN", "server.listen"),
        ("TESSERA_METRICS_LISTEN", "server.metrics_listen"),
        ("TESSERA_BACKEND", "accel.backend"),
        ("TESSERA_GPU_SECRET_OPS", "accel.gpu_secret_ops"),
        ("TESSERA_GPU_FIELD", "accel.gpu_field"),
        ("TESSERA_COST_MODEL", "accel.cost_model"),
        ("TESSERA_BATCHER_MAX_BATCH_SIZE", "batcher.max_batch_size"),
        (
            "TESSERA_BATCHER_MAX_QUEUE_DELAY_US",
            "batcher.max_queue_delay_us",
        ),
        ("TESSERA_BATCHER_MAX_QUEUE", "batcher.max_queue"),
        ("TESSERA_BATCHER_WORKERS", "batcher.workers"),
        ("TESSERA_KEK_FILE", "storage.kek_file"),
        (
            "TESSERA_LIMITS_MAX_MESSAGE_BYTES",
            "limits.max_message_bytes",
        ),
        (
            "TESSERA_LIMITS_MAX_BATCH_MESSAGES",
            "limits.max_batch_messages",
        ),
        ("TESSERA_ECDSA_PRESIGN_POOL", "ecdsa.presign_pool"),
        ("TESSERA_ECDSA_PRESIGN_BATCH", "ecdsa.presign_batch"),
    ];

    #[test]
    fn readme_table_lists_every_field_and_variable() {
        let readme = include_str!("../README.md");
        for (var, field) in ENV_VARS {
            let row = readme
                .lines()
                .find(|l| l.starts_with(&format!("| `{field}` |")))
                .unwrap_or_else(|| panic!("README has no row for {field}"));
            assert!(
                row.contains(var),
                "README row of {field} does not name {var}"
            );
            let value = if field.ends_with("gpu_secret_ops") {
                "false"
            } else {
                "1"
            };
            let layer = Layer::from_env(env(&[(var, value)])).unwrap();
            assert_ne!(layer, Layer::default(), "{var} is not read");
        }
    }

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    fn file(text: &str) -> Layer {
        Layer::from_toml(text, Path::new("test.toml")).unwrap()
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let mut cfg = Config::default();
        cfg.apply(&Layer::from_env(env(&[])).unwrap()).unwrap();
        assert_eq!(cfg.server.listen.to_string(), "127.0.0.1:50051");
        assert_eq!(cfg.server.metrics_listen.to_string(), "127.0.0.1:9464");
        assert_eq!(cfg.server.data_dir, PathBuf::from("./tessera-data"));
        assert_eq!(cfg.accel.backend, BackendKind::Auto);
        assert_eq!(cfg.batcher.max_batch_size, 256);
        assert_eq!(cfg.batcher.max_queue_delay_us, 200);
        assert!(cfg.batcher.workers >= 1);
    }

    #[test]
    fn flags_win_over_env_over_file_over_defaults() {
        let f = file(
            "[server]\nlisten = \"127.0.0.1:1000\"\nmetrics_listen = \"127.0.0.1:1001\"\n\
             data_dir = \"/from/file\"\n[batcher]\nmax_batch_size = 10\nworkers = 3\n",
        );
        let e = Layer::from_env(env(&[
            ("TESSERA_LISTEN", "127.0.0.1:2000"),
            ("TESSERA_DATA_DIR", "/from/env"),
            ("TESSERA_BATCHER_MAX_BATCH_SIZE", "20"),
        ]))
        .unwrap();
        let flags = Layer {
            server: ServerLayer {
                listen: Some("127.0.0.1:3000".into()),
                ..Default::default()
            },
            ..Default::default()
        };
        let mut cfg = Config::default();
        for layer in [&f, &e, &flags] {
            cfg.apply(layer).unwrap();
        }
        assert_eq!(cfg.server.listen.port(), 3000, "flag wins");
        assert_eq!(
            cfg.server.data_dir,
            PathBuf::from("/from/env"),
            "env over file"
        );
        assert_eq!(cfg.batcher.max_batch_size, 20, "env over file");
        assert_eq!(cfg.server.metrics_listen.port(), 1001, "file over default");
        assert_eq!(cfg.batcher.workers, 3, "file over default");
        assert_eq!(cfg.batcher.max_queue_delay_us, 200, "default kept");
    }

    #[test]
    fn gpu_settings_come_from_file_and_env() {
        let mut cfg = Config::default();
        assert!(!cfg.accel.gpu_secret_ops);
        assert_eq!(cfg.accel.gpu_field, GpuField::Auto);
        cfg.apply(&file(
            "[accel]\ngpu_secret_ops = true\ngpu_field = \"u32\"\n",
        ))
        .unwrap();
        assert!(cfg.accel.gpu_secret_ops);
        assert_eq!(cfg.accel.gpu_field, GpuField::U32);
        cfg.apply(
            &Layer::from_env(env(&[
                ("TESSERA_GPU_FIELD", "U64"),
                ("TESSERA_GPU_SECRET_OPS", "false"),
            ]))
            .unwrap(),
        )
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
        let err = Layer::from_env(env(&[("TESSERA_GPU_SECRET_OPS", "maybe")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TESSERA_GPU_SECRET_OPS"), "{err}");
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
        let err = Layer::from_env(env(&[("TESSERA_BATCHER_WORKERS", "many")]))
            .unwrap_err()
            .to_string();
        assert!(err.contains("TESSERA_BATCHER_WORKERS"), "{err}");
        let err = cfg
            .apply(&Layer::from_env(env(&[("TESSERA_BATCHER_MAX_QUEUE", "0")])).unwrap())
            .unwrap_err()
            .to_string();
        assert!(err.contains("batcher.max_queue: must be ≥ 1"), "{err}");
        let err = cfg
            .apply(&file("[ecdsa]\npresign_batch = 0\n"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("ecdsa.presign_batch: must be ≥ 1"), "{err}");
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
