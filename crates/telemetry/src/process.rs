//! The standard `process_*` metrics of the Prometheus client-library guidelines, read at scrape
//! time. CPU time comes from the OS process clock (any platform); memory and file descriptors
//! from `/proc/self` (Linux) and are left out where that cannot be read.

use std::time::{SystemTime, UNIX_EPOCH};

use cpu_time::ProcessTime;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Reads the process's own resource use on every scrape.
#[derive(Debug)]
pub(crate) struct ProcessCollector {
    /// `process_start_time_seconds`, fixed for the life of the process.
    start_time: f64,
}

impl ProcessCollector {
    /// The start time comes from `/proc` (boot time plus the process's start tick); where that
    /// cannot be read, it is the time of this call.
    pub(crate) fn new() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        Self {
            start_time: proc_start_time().unwrap_or(now),
        }
    }
}

fn write(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    metric: &impl EncodeMetric,
) -> Result<(), std::fmt::Error> {
    metric.encode(encoder.encode_descriptor(name, help, None, metric.metric_type())?)
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        if let Ok(cpu) = ProcessTime::try_now() {
            write(
                &mut encoder,
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                &ConstCounter::new(cpu.as_duration().as_secs_f64()),
            )?;
        }
        if let Some(rss) = read("/proc/self/status").as_deref().and_then(vm_rss_bytes) {
            write(
                &mut encoder,
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                &ConstGauge::new(rss),
            )?;
        }
        if let Ok(fds) = std::fs::read_dir("/proc/self/fd") {
            let open = i64::try_from(fds.count()).unwrap_or(i64::MAX);
            write(
                &mut encoder,
                "process_open_fds",
                "Number of open file descriptors.",
                &ConstGauge::new(open),
            )?;
        }
        if let Some(max) = read("/proc/self/limits")
            .as_deref()
            .and_then(max_open_files)
        {
            write(
                &mut encoder,
                "process_max_fds",
                "Maximum number of open file descriptors.",
                &ConstGauge::new(max),
            )?;
        }
        write(
            &mut encoder,
            "process_start_time_seconds",
            "Start time of the process since unix epoch in seconds.",
            &ConstGauge::new(self.start_time),
        )
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// `VmRSS` of `/proc/self/status`, in bytes (the file gives kB).
fn vm_rss_bytes(status: &str) -> Option<i64> {
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: i64 = line.split_whitespace().next()?.parse().ok()?;
    kib.checked_mul(1024)
}

/// The soft limit on open files from `/proc/self/limits`; `None` when unlimited.
fn max_open_files(limits: &str) -> Option<i64> {
    let line = limits
        .lines()
        .find_map(|l| l.strip_prefix("Max open files"))?;
    line.split_whitespace().next()?.parse().ok()
}

/// Field 22 of `/proc/self/stat`: when the process started, in clock ticks after boot. The
/// command name (field 2) is in parentheses and may itself hold spaces and parentheses.
fn start_ticks(stat: &str) -> Option<u64> {
    let (_, after_comm) = stat.rsplit_once(')')?;
    // `after_comm` starts at field 3 (the state).
    after_comm.split_whitespace().nth(22 - 3)?.parse().ok()
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the Unix epoch.
fn boot_time(stat: &str) -> Option<u64> {
    let line = stat.lines().find_map(|l| l.strip_prefix("btime"))?;
    line.trim().parse().ok()
}

/// `AT_CLKTCK` of the auxiliary vector (`/proc/self/auxv`): the clock ticks per second that
/// `/proc` counts in. The vector is (key, value) pairs of native words, ended by `AT_NULL`.
fn clock_ticks(auxv: &[u8]) -> Option<u64> {
    const AT_NULL: usize = 0;
    const AT_CLKTCK: usize = 17;
    const WORD: usize = std::mem::size_of::<usize>();
    let word = |b: &[u8]| Some(usize::from_ne_bytes(b.try_into().ok()?));
    for pair in auxv.chunks_exact(2 * WORD) {
        let (key, value) = pair.split_at(WORD);
        match word(key)? {
            AT_NULL => return None,
            AT_CLKTCK => return u64::try_from(word(value)?).ok().filter(|t| *t > 0),
            _ => {}
        }
    }
    None
}

/// The process's start time from `/proc`, in seconds since the Unix epoch.
fn proc_start_time() -> Option<f64> {
    let ticks = start_ticks(&read("/proc/self/stat")?)?;
    let boot = boot_time(&read("/proc/stat")?)?;
    let per_second = clock_ticks(&std::fs::read("/proc/self/auxv").ok()?)?;
    Some(boot as f64 + ticks as f64 / per_second as f64)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn parses_vm_rss() {
        let status = "Name:\ttessera\nVmPeak:\t  9000 kB\nVmRSS:\t    5120 kB\nThreads:\t4\n";
        assert_eq!(vm_rss_bytes(status), Some(5120 * 1024));
        assert_eq!(vm_rss_bytes("Name:\tkthread\n"), None);
    }

    #[test]
    fn parses_soft_open_files_limit() {
        let limits = "Limit                     Soft Limit           Hard Limit           Units     \n\
                      Max cpu time              unlimited            unlimited            seconds   \n\
                      Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        let unlimited =
            "Max open files            unlimited            unlimited            files     \n";
        assert_eq!(max_open_files(unlimited), None);
    }

    #[test]
    fn parses_start_ticks_past_odd_command_names() {
        // Field 3 is the state; every later field holds its own number.
        let later: Vec<String> = (4..=30).map(|i| i.to_string()).collect();
        let stat = format!("4242 (a) b (c) S {}", later.join(" "));
        assert_eq!(start_ticks(&stat), Some(22));
        assert_eq!(start_ticks("4242 (short) S 1"), None);
    }

    #[test]
    fn parses_boot_time() {
        let stat = "cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n";
        assert_eq!(boot_time(stat), Some(1_700_000_000));
    }

    #[test]
    fn finds_clock_ticks_in_auxv() {
        let mut auxv = Vec::new();
        for (k, v) in [(6usize, 4096usize), (17, 100), (0, 0)] {
            auxv.extend_from_slice(&k.to_ne_bytes());
            auxv.extend_from_slice(&v.to_ne_bytes());
        }
        assert_eq!(clock_ticks(&auxv), Some(100));
        assert_eq!(clock_ticks(&[]), None);
        // Nothing after AT_NULL counts.
        let ended = [0usize, 0, 17, 100].map(usize::to_ne_bytes).concat();
        assert_eq!(clock_ticks(&ended), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn start_time_from_proc_is_recent_past() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = proc_start_time().expect("/proc readable on Linux");
        assert!(
            start <= now + 1.0 && start > now - 86_400.0,
            "{start} vs {now}"
        );
    }
}
