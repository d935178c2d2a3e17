//! `tessera bench-accel`: measures every backend this host can run, per op and batch size, and
//! prints per-item cost, throughput, the devices and, for each accelerated backend, the
//! crossover batch size from which it stays cheaper than every backend listed before it
//! (`simd` against `cpu`, `gpu` against both). With `--save FILE` it also writes
//! the cost models fitted to the measurements; `tessera serve --cost-model FILE` (or
//! `accel.cost_model`) then routes `--backend auto` by them instead of its quick start-up
//! calibration. Models are matched by backend and device id
//! ([`accel_api::Capabilities::device_id`], e.g. `simd:avx512ifma`, `gpu:10de:2684:u64`), not
//! by the human-readable device description, which the file keeps for people: the `cpu`
//! measured here is backend-cpu on all cores (`cpu:<arch>:rayon-<n>`, the host's whole CPU
//! throughput), while the service runs one single-threaded CPU backend per batch worker
//! (`cpu:<arch>:serial`), which keeps its start-up calibration. A file from before device ids
//! is refused with a request to measure again.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use accel_api::{Accelerator, BackendId, BenchRow, CostModel, Curve, Op, OpCost};
use backend_cpu::CpuBackend;
use backend_simd::SimdBackend;
use serde::{Deserialize, Serialize};

use crate::config::AccelConfig;
use crate::error::Error;

/// Options of `tessera bench-accel`.
#[derive(Clone, Debug)]
pub struct BenchAccelOptions {
    /// Backends to measure (`cpu`, `simd`, `gpu`); empty = every one this host can run.
    pub backends: Vec<String>,
    /// Largest batch measured; sizes are the powers of 4 from 1 up to it.
    pub max_batch: usize,
    /// Least time spent on each (backend, op, batch) cell.
    pub min_time: Duration,
    /// Settings for the GPU backend (with `gpu_secret_ops` false its `mul_base` is not
    /// measured: the GPU backend does not offer it).
    pub accel: AccelConfig,
    /// Where to write the fitted cost models (JSON), if anywhere.
    pub save: Option<PathBuf>,
}

/// The batch sizes measured: 1, 4, 16, … up to `max`.
pub fn sizes(max: usize) -> Vec<usize> {
    std::iter::successors(Some(1usize), |b| b.checked_mul(4))
        .take_while(|b| *b <= max.max(1))
        .collect()
}

/// One backend's fitted cost model as stored in a cost-model file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredModel {
    /// Backend name ([`BackendId::as_str`]: `cpu`, `simd`, `gpu`).
    pub backend: String,
    /// Stable id of the hardware path it was measured on
    /// ([`accel_api::Capabilities::device_id`]); models are matched on it. Empty when read
    /// from a file written before device ids, which [`CostFile::read`] refuses.
    #[serde(default)]
    pub device_id: String,
    /// The device it was measured on, as the backend describes it (for people; not matched).
    pub device: String,
    /// Per (curve, op) costs.
    pub costs: Vec<StoredCost>,
}

/// One (curve, op) entry of a [`StoredModel`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StoredCost {
    /// `secp256k1` or `ed25519`.
    pub curve: String,
    /// `mul_base`, `lincomb_vartime`, `verify_batch_vartime` or `normalize_batch`.
    pub op: String,
    /// Fixed cost per call, ns.
    pub fixed_ns: f64,
    /// Cost per item (per term for `lincomb_vartime`), ns.
    pub per_item_ns: f64,
}

/// The cost-model file written by `--save`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostFile {
    /// Tessera version that measured it.
    pub version: String,
    /// One model per backend.
    pub models: Vec<StoredModel>,
}

fn curve_of(s: &str) -> Option<Curve> {
    Curve::ALL.into_iter().find(|c| c.as_str() == s)
}

fn op_of(s: &str) -> Option<Op> {
    Op::ALL.into_iter().find(|o| o.as_str() == s)
}

impl StoredModel {
    /// The accel-api cost model; unknown curve or op names are errors naming the file.
    pub fn to_model(&self, origin: &Path) -> Result<CostModel, Error> {
        let costs = self
            .costs
            .iter()
            .map(|c| {
                let (curve, op) =
                    curve_of(&c.curve)
                        .zip(op_of(&c.op))
                        .ok_or_else(|| Error::Config {
                            field: format!("accel.cost_model ({})", origin.display()),
                            problem: format!("unknown curve/op `{}`/`{}`", c.curve, c.op),
                        })?;
                Ok(OpCost {
                    curve,
                    op,
                    fixed_ns: c.fixed_ns,
                    per_item_ns: c.per_item_ns,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(CostModel { costs })
    }
}

impl CostFile {
    /// Reads a cost-model file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::Config {
            field: "accel.cost_model".into(),
            problem: format!("cannot read {}: {e}", path.display()),
        })?;
        let file: Self = serde_json::from_str(&text).map_err(|e| Error::Config {
            field: "accel.cost_model".into(),
            problem: format!("{} is not a cost-model file: {e}", path.display()),
        })?;
        if let Some(old) = file.models.iter().find(|m| m.device_id.is_empty()) {
            return Err(Error::Config {
                field: "accel.cost_model".into(),
                problem: format!(
                    "{} is in the old cost-model format: its models (`{}` on {:?} first) have \
                     no `device_id` to match this host's devices by; re-run `tessera \
                     bench-accel --save {}` to measure them again",
                    path.display(),
                    old.backend,
                    old.device,
                    path.display()
                ),
            });
        }
        Ok(file)
    }

    /// The model measured for `backend` on the hardware path `device_id`, if the file has one.
    pub fn model_for(&self, backend: BackendId, device_id: &str) -> Option<&StoredModel> {
        self.models
            .iter()
            .find(|m| m.backend == backend.as_str() && m.device_id == device_id)
    }
}

/// Items the cost model counts in a bench cell: terms for `lincomb_vartime` (bench jobs have
/// two terms), the batch otherwise.
fn model_items(op: Op, batch: usize) -> f64 {
    match op {
        Op::LincombVartime => 2.0 * batch as f64,
        _ => batch as f64,
    }
}

/// Fits `fixed + per_item × items` through the smallest and largest batch of each
/// (backend, curve, op), as the start-up calibration does with its two sizes.
pub fn fit(rows: &[BenchRow]) -> Vec<StoredModel> {
    let mut groups: BTreeMap<(BackendId, Curve, Op), Vec<&BenchRow>> = BTreeMap::new();
    for r in rows {
        groups
            .entry((r.backend, r.curve, r.op))
            .or_default()
            .push(r);
    }
    let mut models: Vec<StoredModel> = Vec::new();
    for ((backend, curve, op), mut cells) in groups {
        cells.sort_by_key(|r| r.batch);
        let (Some(lo), Some(hi)) = (cells.first(), cells.last()) else {
            continue;
        };
        let total = |r: &BenchRow| r.per_item_ns * r.batch as f64;
        let (n_lo, n_hi) = (model_items(op, lo.batch), model_items(op, hi.batch));
        let per_item = if n_hi > n_lo {
            ((total(hi) - total(lo)) / (n_hi - n_lo)).max(0.0)
        } else {
            total(hi) / n_hi.max(1.0)
        };
        let fixed = (total(lo) - per_item * n_lo).max(0.0);
        let cost = StoredCost {
            curve: curve.as_str().into(),
            op: op.as_str().into(),
            fixed_ns: fixed,
            per_item_ns: per_item,
        };
        match models.iter_mut().find(|m| m.backend == backend.as_str()) {
            Some(m) => m.costs.push(cost),
            None => models.push(StoredModel {
                backend: backend.as_str().into(),
                device_id: lo.device_id.clone(),
                device: lo.device.clone(),
                costs: vec![cost],
            }),
        }
    }
    models
}

/// The smallest measured batch from which `challenger` is cheaper per item than every backend
/// in `incumbents` at that batch and at every larger one, or `None`.
pub fn crossover_vs_all(
    rows: &[BenchRow],
    curve: Curve,
    op: Op,
    challenger: BackendId,
    incumbents: &[BackendId],
) -> Option<usize> {
    incumbents
        .iter()
        .map(|&inc| accel_api::crossover(rows, curve, op, challenger, inc))
        .try_fold(0usize, |acc, c| c.map(|b| acc.max(b)))
}

fn open_backends(opts: &BenchAccelOptions) -> Result<Vec<Arc<dyn Accelerator>>, Error> {
    let mut asked = Vec::new();
    for b in &opts.backends {
        match b.parse::<BackendId>() {
            Ok(id @ (BackendId::Cpu | BackendId::Simd | BackendId::Gpu)) => asked.push(id),
            _ => {
                return Err(Error::usage(
                    "--backends",
                    format!("`{b}` is not one of cpu, simd, gpu"),
                ));
            }
        }
    }
    let wanted = |id: BackendId| asked.is_empty() || asked.contains(&id);
    let explicit = |id: BackendId| asked.contains(&id);
    let mut out: Vec<Arc<dyn Accelerator>> = Vec::new();
    if wanted(BackendId::Cpu) {
        out.push(Arc::new(CpuBackend::new()));
    }
    if wanted(BackendId::Simd) {
        match SimdBackend::new() {
            Ok(s) => out.push(Arc::new(s)),
            Err(e) if explicit(BackendId::Simd) => return Err(Error::Accel(e)),
            Err(e) => eprintln!("tessera bench-accel: skipping simd: {e}"),
        }
    }
    if wanted(BackendId::Gpu) {
        eprintln!("tessera bench-accel: opening the GPU (builds every pipeline)…");
        match crate::accel::gpu(&opts.accel) {
            Ok(g) => out.push(Arc::new(g)),
            Err(e) if explicit(BackendId::Gpu) => return Err(Error::Accel(e)),
            Err(e) => eprintln!("tessera bench-accel: skipping gpu: {e}"),
        }
    }
    Ok(out)
}

/// Runs the measurements (progress on stderr) and returns the report.
pub fn run(opts: &BenchAccelOptions) -> Result<String, Error> {
    let backends = open_backends(opts)?;
    let refs: Vec<&dyn Accelerator> = backends.iter().map(|b| b.as_ref()).collect();
    let sizes = sizes(opts.max_batch);
    let cells = refs
        .iter()
        .map(|b| b.capabilities().ops.len())
        .sum::<usize>()
        * sizes.len();
    let mut done = 0usize;
    let rows = accel_api::bench_table(&refs, &sizes, opts.min_time, |backend, curve, op, b| {
        done += 1;
        eprintln!("tessera bench-accel: [{done}/{cells}] {backend} {curve} {op} batch {b}");
    })?;
    let models = fit(&rows);
    if let Some(path) = &opts.save {
        let file = CostFile {
            version: env!("CARGO_PKG_VERSION").into(),
            models: models.clone(),
        };
        let text = serde_json::to_string_pretty(&file).map_err(|e| Error::Io {
            context: "encoding the cost models".into(),
            source: e.into(),
        })?;
        std::fs::write(path, text).map_err(|e| Error::Io {
            context: format!("writing {}", path.display()),
            source: e,
        })?;
    }
    Ok(report(&refs, &rows, opts.save.as_deref()))
}

fn report(backends: &[&dyn Accelerator], rows: &[BenchRow], saved: Option<&Path>) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(out, "devices:");
    for b in backends {
        let caps = b.capabilities();
        let secret = if caps.secret_ops {
            ""
        } else {
            " (secret ops not on this backend)"
        };
        let _ = writeln!(out, "  {:<5} {}{secret}", caps.backend, caps.device);
    }
    let _ = writeln!(
        out,
        "\n{:<7} {:<9} {:<20} {:>7} {:>12} {:>14}",
        "backend", "curve", "op", "batch", "ns/item", "items/s"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<7} {:<9} {:<20} {:>7} {:>12.1} {:>14.0}",
            r.backend,
            r.curve.as_str(),
            r.op.as_str(),
            r.batch,
            r.per_item_ns,
            r.throughput
        );
    }
    let ids: Vec<BackendId> = backends.iter().map(|b| b.capabilities().backend).collect();
    for (k, &challenger) in ids.iter().enumerate().skip(1) {
        let incumbents = &ids[..k];
        let names: Vec<&str> = incumbents.iter().map(|b| b.as_str()).collect();
        let _ = writeln!(
            out,
            "\ncrossover: smallest batch from which {challenger} stays cheaper per item than {}:",
            names.join(" and ")
        );
        for curve in Curve::ALL {
            for op in Op::ALL {
                if !rows
                    .iter()
                    .any(|r| r.backend == challenger && r.curve == curve && r.op == op)
                {
                    continue;
                }
                let at = match crossover_vs_all(rows, curve, op, challenger, incumbents) {
                    Some(b) => format!("batch ≥ {b}"),
                    None => "never (within the measured sizes)".into(),
                };
                let _ = writeln!(out, "  {:<9} {:<20} {at}", curve.as_str(), op.as_str());
            }
        }
    }
    if let Some(p) = saved {
        let _ = writeln!(
            out,
            "\ncost models written to {} (use: tessera serve --backend auto --cost-model {})",
            p.display(),
            p.display()
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    /// A fast test backend, posing as the GPU.
    const FAST: BackendId = BackendId::Gpu;

    fn row(backend: BackendId, op: Op, batch: usize, per_item_ns: f64) -> BenchRow {
        BenchRow {
            backend,
            device_id: format!("{backend}:test"),
            device: format!("{backend} device"),
            curve: Curve::Secp256k1,
            op,
            batch,
            per_item_ns,
            throughput: 1e9 / per_item_ns,
        }
    }

    #[test]
    fn sizes_are_powers_of_four_up_to_the_maximum() {
        assert_eq!(sizes(1), vec![1]);
        assert_eq!(sizes(100), vec![1, 4, 16, 64]);
        let all = sizes(262_144);
        assert_eq!(all.first(), Some(&1));
        assert_eq!(all.last(), Some(&262_144));
        assert_eq!(all.len(), 10);
    }

    #[test]
    fn fit_recovers_a_linear_cost_and_counts_lincomb_terms() {
        // total(batch) = 1000 + 10·batch ns for mul_base; lincomb jobs have 2 terms each.
        let rows: Vec<BenchRow> = [1usize, 64, 4096]
            .into_iter()
            .flat_map(|b| {
                let per = (1000.0 + 10.0 * b as f64) / b as f64;
                [
                    row(FAST, Op::MulBase, b, per),
                    row(FAST, Op::LincombVartime, b, per),
                ]
            })
            .collect();
        let models = fit(&rows);
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].backend, "gpu");
        assert_eq!(models[0].device_id, "gpu:test");
        assert_eq!(models[0].device, "gpu device");
        let m = models[0].to_model(Path::new("t.json")).unwrap();
        let mb = m.get(Curve::Secp256k1, Op::MulBase).unwrap();
        assert!((mb.fixed_ns - 1000.0).abs() < 1e-6, "{mb:?}");
        assert!((mb.per_item_ns - 10.0).abs() < 1e-9, "{mb:?}");
        let lc = m.get(Curve::Secp256k1, Op::LincombVartime).unwrap();
        assert!((lc.per_item_ns - 5.0).abs() < 1e-9, "{lc:?}");
        assert!((lc.fixed_ns - 1000.0).abs() < 1e-6, "{lc:?}");
    }

    #[test]
    fn crossover_must_beat_every_cpu_backend() {
        let mut rows = Vec::new();
        for (b, fast, cpu, simd) in [
            (64usize, 900.0, 100.0, 50.0),
            (1024, 80.0, 100.0, 50.0),
            (16384, 20.0, 100.0, 50.0),
            (65536, 10.0, 100.0, 50.0),
        ] {
            rows.push(row(FAST, Op::LincombVartime, b, fast));
            rows.push(row(BackendId::Cpu, Op::LincombVartime, b, cpu));
            rows.push(row(BackendId::Simd, Op::LincombVartime, b, simd));
        }
        let c = |inc: &[BackendId]| {
            crossover_vs_all(&rows, Curve::Secp256k1, Op::LincombVartime, FAST, inc)
        };
        assert_eq!(c(&[BackendId::Cpu]), Some(1024));
        assert_eq!(c(&[BackendId::Cpu, BackendId::Simd]), Some(16384));
        // An incumbent without measurements (the router is never benched) is never beaten.
        assert_eq!(c(&[BackendId::Cpu, BackendId::Router]), None);
    }

    #[test]
    fn cost_file_round_trips_and_rejects_unknown_ops() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("costs.json");
        let file = CostFile {
            version: "t".into(),
            models: vec![StoredModel {
                backend: "gpu".into(),
                device_id: "gpu:10de:2684:u64".into(),
                device: "dev".into(),
                costs: vec![StoredCost {
                    curve: "ed25519".into(),
                    op: "warp_drive".into(),
                    fixed_ns: 1.0,
                    per_item_ns: 2.0,
                }],
            }],
        };
        std::fs::write(&path, serde_json::to_string(&file).unwrap()).unwrap();
        let back = CostFile::read(&path).unwrap();
        assert_eq!(back, file);
        let m = back.model_for(FAST, "gpu:10de:2684:u64").unwrap();
        let err = m.to_model(&path).unwrap_err().to_string();
        assert!(err.contains("warp_drive"), "{err}");
        assert!(back.model_for(FAST, "gpu:10de:2684:u32").is_none());
        assert!(
            back.model_for(BackendId::Simd, "gpu:10de:2684:u64")
                .is_none()
        );
        // The human-readable description is not matched on.
        assert!(back.model_for(FAST, "dev").is_none());
        std::fs::write(&path, "not json").unwrap();
        let err = CostFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("accel.cost_model"), "{err}");
    }

    #[test]
    fn cost_file_without_device_ids_is_refused_with_a_remedy() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old-costs.json");
        // The format before device ids: models matched on the human-readable device.
        let old = r#"{
            "version": "0.1.0",
            "models": [{
                "backend": "simd",
                "device": "avx512ifma 8-lane: mul_base",
                "costs": [{"curve": "ed25519", "op": "mul_base", "fixed_ns": 1.0, "per_item_ns": 2.0}]
            }]
        }"#;
        std::fs::write(&path, old).unwrap();
        let err = CostFile::read(&path).unwrap_err().to_string();
        assert!(err.contains("accel.cost_model"), "{err}");
        assert!(err.contains(&path.display().to_string()), "{err}");
        assert!(err.contains("device_id"), "{err}");
        assert!(err.contains("tessera bench-accel --save"), "{err}");
    }

    #[test]
    fn fitted_models_round_trip_with_their_device_ids() {
        let rows: Vec<BenchRow> = [1usize, 16]
            .into_iter()
            .flat_map(|b| {
                [
                    row(BackendId::Cpu, Op::MulBase, b, 10.0),
                    row(BackendId::Simd, Op::MulBase, b, 5.0),
                ]
            })
            .collect();
        let file = CostFile {
            version: "t".into(),
            models: fit(&rows),
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("costs.json");
        std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap()).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"device_id\": \"simd:test\""), "{text}");
        let back = CostFile::read(&path).unwrap();
        assert_eq!(back, file);
        assert_eq!(
            back.model_for(BackendId::Simd, "simd:test").unwrap().device,
            "simd device"
        );
        assert!(back.model_for(BackendId::Cpu, "simd:test").is_none());
    }
}
