//! The process's own metrics, read from `/proc` at each scrape, with the
//! names, help and units of the Prometheus Go client's process collector
//! (prometheus/client_golang `prometheus/process_collector.go` and
//! `process_collector_procfsenabled.go`, v1.23, reading
//! prometheus/procfs v0.19), which every Flux controller exports:
//!
//! - `process_cpu_seconds_total`: user and system CPU time (`/proc/self/stat`
//!   `utime + stime`, in clock ticks of 1/100 s as procfs counts them);
//! - `process_open_fds` (entries of `/proc/self/fd`) and `process_max_fds`
//!   (the soft limit "Max open files" of `/proc/self/limits`);
//! - `process_virtual_memory_bytes` (`vsize`),
//!   `process_virtual_memory_max_bytes` ("Max address space", unlimited read
//!   as 2⁶⁴−1 as procfs reads it) and `process_resident_memory_bytes`
//!   (`VmRSS` of `/proc/self/status`, the same pages as `rss` of `stat`);
//! - `process_start_time_seconds`: the start time since the Unix epoch
//!   (`starttime` of `stat` after `btime` of `/proc/stat`);
//! - `process_network_receive_bytes_total` and
//!   `process_network_transmit_bytes_total`: `IpExt` `InOctets` and
//!   `OutOctets` of `/proc/self/net/netstat` (the process's network
//!   namespace, as procfs reads them).
//!
//! A value that cannot be read (no `/proc`, another OS) is left out of the
//! exposition, as the Go collector leaves out what it cannot collect.

use std::fmt;
use std::path::{Path, PathBuf};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

/// Clock ticks per second of `/proc/<pid>/stat` times: procfs takes the
/// kernel's `USER_HZ` as 100 (`proc_stat.go`, `userHZ`), which it is on every
/// Linux architecture Kubernetes runs on.
const USER_HZ: f64 = 100.0;

/// What procfs reads "unlimited" as (`proc_limits.go`, `parseUint`).
const UNLIMITED: f64 = u64::MAX as f64;

/// Collects the process metrics from a `/proc` directory at each scrape.
///
/// ```
/// use fluxhook_receiver::ProcessCollector;
/// use prometheus_client::encoding::text::encode;
/// use prometheus_client::registry::Registry;
///
/// let mut registry = Registry::default();
/// registry.register_collector(Box::new(ProcessCollector::new()));
/// let mut text = String::new();
/// encode(&mut text, &registry)?;
/// if cfg!(target_os = "linux") {
///     assert!(text.contains("process_resident_memory_bytes "));
/// }
/// # Ok::<(), std::fmt::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct ProcessCollector {
    /// The process's directory, `/proc/self`.
    process: PathBuf,
    /// The directory of system-wide files, `/proc`.
    proc: PathBuf,
}

impl Default for ProcessCollector {
    fn default() -> Self {
        Self::new()
    }
}

impl ProcessCollector {
    /// The collector of this process (`/proc/self`).
    pub fn new() -> Self {
        Self::at(Path::new("/proc"), "self")
    }

    /// The collector of process `pid` under the proc file system mounted at
    /// `proc` (tests give a directory of their own).
    pub fn at(proc: &Path, pid: &str) -> Self {
        Self {
            process: proc.join(pid),
            proc: proc.to_path_buf(),
        }
    }

    /// Reads what can be read now.
    fn sample(&self) -> Sample {
        let stat = read(&self.process.join("stat")).and_then(|text| parse_stat(&text));
        let boot_time = read(&self.proc.join("stat")).and_then(|text| parse_boot_time(&text));
        let limits = read(&self.process.join("limits"));
        let netstat = read(&self.process.join("net/netstat")).and_then(|t| parse_netstat(&t));
        Sample {
            cpu_seconds: stat.as_ref().map(|s| (s.utime + s.stime) as f64 / USER_HZ),
            virtual_bytes: stat.as_ref().map(|s| s.vsize as f64),
            resident_bytes: read(&self.process.join("status"))
                .and_then(|text| parse_status_kib(&text, "VmRSS:"))
                .map(|kib| kib as f64 * 1024.0),
            start_time: stat
                .as_ref()
                .zip(boot_time)
                .map(|(s, boot)| boot as f64 + s.start_ticks as f64 / USER_HZ),
            open_fds: std::fs::read_dir(self.process.join("fd"))
                .ok()
                .map(|entries| entries.count() as f64),
            max_fds: limits
                .as_deref()
                .and_then(|text| parse_soft_limit(text, "Max open files")),
            max_virtual_bytes: limits
                .as_deref()
                .and_then(|text| parse_soft_limit(text, "Max address space")),
            network_receive_bytes: netstat.map(|(received, _)| received),
            network_transmit_bytes: netstat.map(|(_, sent)| sent),
        }
    }
}

/// One reading of the process.
#[derive(Debug, Default, PartialEq)]
struct Sample {
    cpu_seconds: Option<f64>,
    virtual_bytes: Option<f64>,
    resident_bytes: Option<f64>,
    start_time: Option<f64>,
    open_fds: Option<f64>,
    max_fds: Option<f64>,
    max_virtual_bytes: Option<f64>,
    network_receive_bytes: Option<f64>,
    network_transmit_bytes: Option<f64>,
}

fn read(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// The fields of `/proc/<pid>/stat` the collector uses.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    utime: u64,
    stime: u64,
    start_ticks: u64,
    vsize: u64,
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) is in parentheses
/// and may hold spaces and parentheses itself, so fields are counted from the
/// last `)`, as procfs does.
fn parse_stat(text: &str) -> Option<Stat> {
    let (_, rest) = text.rsplit_once(')')?;
    // Field 3 (state) is the first after the name.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |number: usize| -> Option<u64> { fields.get(number - 3)?.parse().ok() };
    Some(Stat {
        utime: field(14)?,
        stime: field(15)?,
        start_ticks: field(22)?,
        vsize: field(23)?,
    })
}

/// `btime` of `/proc/stat`: the boot time, in seconds since the epoch.
fn parse_boot_time(text: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix("btime"))
        .and_then(|value| value.trim().parse().ok())
}

/// A `kB` value of `/proc/<pid>/status`, e.g. `VmRSS:   1234 kB`.
fn parse_status_kib(text: &str, key: &str) -> Option<u64> {
    let line = text.lines().find_map(|line| line.strip_prefix(key))?;
    line.split_whitespace().next()?.parse().ok()
}

/// The soft limit of a row of `/proc/<pid>/limits`.
fn parse_soft_limit(text: &str, name: &str) -> Option<f64> {
    let row = text.lines().find_map(|line| line.strip_prefix(name))?;
    let soft = row.split_whitespace().next()?;
    if soft == "unlimited" {
        Some(UNLIMITED)
    } else {
        soft.parse::<u64>().ok().map(|value| value as f64)
    }
}

/// `InOctets` and `OutOctets` of the `IpExt` rows of `net/netstat` (a row of
/// names followed by a row of values).
fn parse_netstat(text: &str) -> Option<(f64, f64)> {
    let mut rows = text.lines().filter(|line| line.starts_with("IpExt:"));
    let names: Vec<&str> = rows.next()?.split_whitespace().collect();
    let values: Vec<&str> = rows.next()?.split_whitespace().collect();
    let value = |name: &str| -> Option<f64> {
        let at = names.iter().position(|n| *n == name)?;
        values.get(at)?.parse().ok()
    };
    Some((value("InOctets")?, value("OutOctets")?))
}

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let sample = self.sample();
        let counters = [
            (
                "process_cpu_seconds",
                "Total user and system CPU time spent in seconds.",
                sample.cpu_seconds,
            ),
            (
                "process_network_receive_bytes",
                "Number of bytes received by the process over the network.",
                sample.network_receive_bytes,
            ),
            (
                "process_network_transmit_bytes",
                "Number of bytes sent by the process over the network.",
                sample.network_transmit_bytes,
            ),
        ];
        for (name, help, value) in counters {
            if let Some(value) = value {
                let counter = ConstCounter::new(value);
                let metric = encoder.encode_descriptor(name, help, None, counter.metric_type())?;
                counter.encode(metric)?;
            }
        }
        let gauges = [
            (
                "process_open_fds",
                "Number of open file descriptors.",
                sample.open_fds,
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors.",
                sample.max_fds,
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                sample.virtual_bytes,
            ),
            (
                "process_virtual_memory_max_bytes",
                "Maximum amount of virtual memory available in bytes.",
                sample.max_virtual_bytes,
            ),
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                sample.resident_bytes,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since unix epoch in seconds.",
                sample.start_time,
            ),
        ];
        for (name, help, value) in gauges {
            if let Some(value) = value {
                let gauge = ConstGauge::new(value);
                let metric = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
                gauge.encode(metric)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use prometheus_client::encoding::text::encode;
    use prometheus_client::registry::Registry;

    /// A `/proc` of a process with known values, as Linux writes the files.
    fn fake_proc() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let process = dir.path().join("42");
        std::fs::create_dir_all(process.join("fd")).unwrap();
        std::fs::create_dir_all(process.join("net")).unwrap();
        for fd in ["0", "1", "2", "7"] {
            std::fs::write(process.join("fd").join(fd), "").unwrap();
        }
        // The name holds a space and a parenthesis, which the parser skips.
        std::fs::write(
            process.join("stat"),
            "42 (fluxhook (rx)) S 1 42 42 0 -1 4194560 1234 0 0 0 250 125 0 0 20 0 9 0 \
             31337 1048576000 5000 18446744073709551615 1 1 0 0 0 0 0 4096 17987 0 0 0 17 1 0 \
             0 0 0 0 0 0 0 0 0 0 0 0\n",
        )
        .unwrap();
        std::fs::write(
            process.join("status"),
            "Name:\tfluxhook\nVmPeak:\t 1100000 kB\nVmSize:\t 1024000 kB\nVmRSS:\t   20000 kB\n",
        )
        .unwrap();
        std::fs::write(
            process.join("limits"),
            "Limit                     Soft Limit           Hard Limit           Units     \n\
             Max cpu time              unlimited            unlimited            seconds   \n\
             Max open files            1048576              1048576              files     \n\
             Max address space         unlimited            unlimited            bytes     \n",
        )
        .unwrap();
        std::fs::write(
            process.join("net/netstat"),
            "TcpExt: SyncookiesSent SyncookiesRecv\nTcpExt: 0 0\n\
             IpExt: InNoRoutes InTruncatedPkts InMcastPkts OutMcastPkts InBcastPkts OutBcastPkts InOctets OutOctets\n\
             IpExt: 0 0 0 0 0 0 123456 654321\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("stat"),
            "cpu  1 2 3 4\nintr 1\nctxt 2\nbtime 1700000000\nprocesses 3\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn reads_every_value_as_procfs_reads_it() {
        let proc = fake_proc();
        let sample = ProcessCollector::at(proc.path(), "42").sample();
        assert_eq!(
            sample,
            Sample {
                cpu_seconds: Some(3.75),
                virtual_bytes: Some(1_048_576_000.0),
                resident_bytes: Some(20_480_000.0),
                start_time: Some(1_700_000_313.37),
                open_fds: Some(4.0),
                max_fds: Some(1_048_576.0),
                max_virtual_bytes: Some(UNLIMITED),
                network_receive_bytes: Some(123_456.0),
                network_transmit_bytes: Some(654_321.0),
            }
        );
    }

    #[test]
    fn exposes_the_go_clients_names() {
        let proc = fake_proc();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(ProcessCollector::at(proc.path(), "42")));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        for line in [
            "process_cpu_seconds_total 3.75",
            "process_open_fds 4.0",
            "process_max_fds 1048576.0",
            "process_virtual_memory_bytes 1048576000.0",
            "process_virtual_memory_max_bytes 18446744073709553000.0",
            "process_resident_memory_bytes 20480000.0",
            "process_start_time_seconds 1700000313.37",
            "process_network_receive_bytes_total 123456.0",
            "process_network_transmit_bytes_total 654321.0",
            "# TYPE process_cpu_seconds counter",
            "# TYPE process_open_fds gauge",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn what_cannot_be_read_is_left_out() {
        let missing = ProcessCollector::at(Path::new("/nonexistent-proc"), "self");
        assert_eq!(missing.sample(), Sample::default());
        let mut registry = Registry::default();
        registry.register_collector(Box::new(missing));
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        assert!(!text.contains("process_"), "{text}");
        assert_eq!(parse_stat("42 (no fields"), None);
        assert_eq!(parse_stat("42 (short) S 1 2"), None);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reads_this_process() {
        let sample = ProcessCollector::new().sample();
        assert!(sample.resident_bytes.unwrap() > 0.0);
        assert!(sample.open_fds.unwrap() >= 3.0);
        assert!(sample.start_time.unwrap() > 1_600_000_000.0);
        assert!(sample.cpu_seconds.unwrap() >= 0.0);
    }
}
