//! Throughput tables across backends, batch sizes and ops (`tessera bench-accel`), and the
//! crossover batch size at which one backend starts to beat another.

use std::time::{Duration, Instant};

use crate::cost::run_op;
use crate::{AccelError, Accelerator, BackendId, Curve, Op};

/// One measured cell of the table.
#[derive(Clone, Debug, PartialEq)]
pub struct BenchRow {
    /// Which backend.
    pub backend: BackendId,
    /// Stable id of the hardware path measured ([`crate::Capabilities::device_id`]).
    pub device_id: String,
    /// Device description from the backend's capabilities (CPU features, GPU adapter name).
    pub device: String,
    /// The curve.
    pub curve: Curve,
    /// The operation.
    pub op: Op,
    /// Items per call (2-term jobs for `lincomb_vartime`).
    pub batch: usize,
    /// Mean time per item, in nanoseconds.
    pub per_item_ns: f64,
    /// Items per second.
    pub throughput: f64,
}

/// Measures every (curve, op) of every backend at every batch size, running each cell for at
/// least `min_time` (and at least twice). `progress` is called once per cell before it runs.
pub fn bench_table(
    backends: &[&dyn Accelerator],
    sizes: &[usize],
    min_time: Duration,
    mut progress: impl FnMut(BackendId, Curve, Op, usize),
) -> Result<Vec<BenchRow>, AccelError> {
    let mut rows = Vec::new();
    for acc in backends {
        let caps = acc.capabilities();
        for (curve, op) in caps.ops.iter().copied() {
            for &batch in sizes {
                progress(caps.backend, curve, op, batch);
                let start = Instant::now();
                let mut busy = Duration::ZERO;
                let mut runs = 0u32;
                while runs < 2 || start.elapsed() < min_time {
                    busy += run_op(*acc, curve, op, batch)?;
                    runs += 1;
                }
                let per_item_ns = busy.as_nanos() as f64 / (runs as f64 * batch.max(1) as f64);
                rows.push(BenchRow {
                    backend: caps.backend,
                    device_id: caps.device_id.clone(),
                    device: caps.device.clone(),
                    curve,
                    op,
                    batch,
                    per_item_ns,
                    throughput: 1e9 / per_item_ns,
                });
            }
        }
    }
    Ok(rows)
}

/// The smallest measured batch size from which on `challenger` is cheaper per item than
/// `incumbent` for (curve, op) at every larger measured size too; `None` if it never is.
pub fn crossover(
    rows: &[BenchRow],
    curve: Curve,
    op: Op,
    challenger: BackendId,
    incumbent: BackendId,
) -> Option<usize> {
    let cost = |backend: BackendId, batch: usize| {
        rows.iter()
            .find(|r| r.backend == backend && r.curve == curve && r.op == op && r.batch == batch)
            .map(|r| r.per_item_ns)
    };
    let mut sizes: Vec<usize> = rows
        .iter()
        .filter(|r| r.backend == challenger && r.curve == curve && r.op == op)
        .map(|r| r.batch)
        .collect();
    sizes.sort_unstable();
    let mut answer = None;
    for &b in sizes.iter().rev() {
        match (cost(challenger, b), cost(incumbent, b)) {
            (Some(c), Some(i)) if c < i => answer = Some(b),
            _ => break,
        }
    }
    answer
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(backend: BackendId, batch: usize, per_item_ns: f64) -> BenchRow {
        BenchRow {
            backend,
            device_id: String::new(),
            device: String::new(),
            curve: Curve::Secp256k1,
            op: Op::LincombVartime,
            batch,
            per_item_ns,
            throughput: 1e9 / per_item_ns,
        }
    }

    #[test]
    fn crossover_is_where_the_challenger_keeps_winning() {
        let rows = vec![
            row(BackendId::Cpu, 1, 50.0),
            row(BackendId::Cpu, 64, 40.0),
            row(BackendId::Cpu, 1024, 40.0),
            row(BackendId::Cpu, 16384, 40.0),
            row(BackendId::Gpu, 1, 9000.0),
            row(BackendId::Gpu, 64, 30.0),
            row(BackendId::Gpu, 1024, 60.0),
            row(BackendId::Gpu, 16384, 5.0),
        ];
        // gpu wins at 64 but loses again at 1024: the crossover is 16384.
        assert_eq!(
            crossover(
                &rows,
                Curve::Secp256k1,
                Op::LincombVartime,
                BackendId::Gpu,
                BackendId::Cpu
            ),
            Some(16384)
        );
        assert_eq!(
            crossover(
                &rows,
                Curve::Secp256k1,
                Op::LincombVartime,
                BackendId::Cpu,
                BackendId::Gpu
            ),
            None
        );
        assert_eq!(
            crossover(
                &rows,
                Curve::Ed25519,
                Op::LincombVartime,
                BackendId::Gpu,
                BackendId::Cpu
            ),
            None
        );
    }
}
