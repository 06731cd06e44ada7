//! What the measuring commands (`hotpath`, `scale`, `flood`, `faults`) share: reading their
//! `--flag value` arguments, starting their runtime, and describing the machine they ran on.

use std::time::Duration;

use crate::hotpath::CpuSample;

/// One `--flag value` of a measuring command, with the command's usage for its errors.
pub(crate) struct Flag<'a> {
    /// The flag as given, e.g. `--rounds`.
    pub(crate) name: &'a str,
    value: Option<&'a str>,
    usage: &'static str,
}

/// The `--flag value` pairs of `args`, in order.
pub(crate) fn flags<'a>(args: &'a [String], usage: &'static str) -> Vec<Flag<'a>> {
    args.chunks(2)
        .map(|pair| Flag {
            name: &pair[0],
            value: pair.get(1).map(String::as_str),
            usage,
        })
        .collect()
}

impl Flag<'_> {
    /// The value; an error when the flag was the last argument.
    pub(crate) fn value(&self) -> Result<&str, String> {
        self.value
            .ok_or_else(|| format!("{} needs a value\n\n{}", self.name, self.usage))
    }

    /// The error for a value the flag does not take.
    pub(crate) fn invalid(&self) -> String {
        format!(
            "invalid value {:?} for {}\n\n{}",
            self.value.unwrap_or_default(),
            self.name,
            self.usage
        )
    }

    /// The error for a flag the command does not know.
    pub(crate) fn unknown(&self) -> String {
        format!("unknown argument {:?}\n\n{}", self.name, self.usage)
    }

    /// A whole number above zero.
    pub(crate) fn count(&self) -> Result<usize, String> {
        let value = self.value()?;
        value
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| self.invalid())
    }

    /// A number of seconds above zero.
    pub(crate) fn seconds(&self) -> Result<f64, String> {
        let value = self.value()?;
        value
            .parse()
            .ok()
            .filter(|s: &f64| *s > 0.0)
            .ok_or_else(|| self.invalid())
    }
}

/// The async runtime of a measurement: on one thread, so that the load generator takes one
/// core and the servers the others, or on `threads` workers (all cores when `None`).
pub(crate) fn runtime(threads: Option<usize>) -> Result<tokio::runtime::Runtime, String> {
    let mut builder = match threads {
        Some(1) => tokio::runtime::Builder::new_current_thread(),
        Some(threads) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(threads);
            builder
        }
        None => tokio::runtime::Builder::new_multi_thread(),
    };
    builder
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// The machine's load while a measurement ran: its load averages and CPU time before and
/// after, for the line that says how trustworthy the figures are.
pub(crate) struct Load {
    average: String,
    cpu: Option<CpuSample>,
}

impl Load {
    /// Samples the load now, with the CPU time of the processes `pids`.
    pub(crate) fn sample(pids: &[Option<u32>]) -> Self {
        Self {
            average: std::fs::read_to_string("/proc/loadavg").unwrap_or_default(),
            cpu: CpuSample::take(pids),
        }
    }

    /// `Machine: <n> CPUs; load average before <1 5 15>, after <1 5 15>; <CPU use>`.
    pub(crate) fn describe(before: &Self, after: &Self, elapsed: Duration) -> String {
        format!(
            "Machine: {} CPUs; load average before {}, after {}; {}",
            std::thread::available_parallelism().map_or(0, usize::from),
            first_three(&before.average),
            first_three(&after.average),
            CpuSample::describe(&before.cpu, &after.cpu, elapsed),
        )
    }
}

/// The 1, 5 and 15 minute averages of a `/proc/loadavg` line.
fn first_three(loadavg: &str) -> String {
    loadavg
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const USAGE: &str = "usage: test";

    fn args(words: &[&str]) -> Vec<String> {
        words.iter().map(|w| (*w).to_owned()).collect()
    }

    #[test]
    fn flags_come_in_pairs_and_say_what_is_wrong() {
        let given = args(&["--rounds", "3", "--seconds", "0", "--rounds"]);
        let flags = flags(&given, USAGE);
        assert_eq!(flags.len(), 3);
        assert_eq!(flags[0].count(), Ok(3));
        assert_eq!(
            flags[1].seconds(),
            Err("invalid value \"0\" for --seconds\n\nusage: test".to_owned())
        );
        assert_eq!(
            flags[2].count(),
            Err("--rounds needs a value\n\nusage: test".to_owned())
        );
        assert_eq!(
            flags[0].unknown(),
            "unknown argument \"--rounds\"\n\nusage: test"
        );
    }

    #[test]
    fn counts_and_seconds_are_above_zero() {
        for (value, count, seconds) in [
            ("1", Some(1), Some(1.0)),
            ("0", None, None),
            ("-1", None, None),
            ("0.5", None, Some(0.5)),
            ("x", None, None),
        ] {
            let given = args(&["--n", value]);
            let flag = &flags(&given, USAGE)[0];
            assert_eq!(flag.count().ok(), count, "{value}");
            assert_eq!(flag.seconds().ok(), seconds, "{value}");
        }
    }

    #[test]
    fn the_load_average_keeps_its_three_figures() {
        assert_eq!(
            first_three("0.52 0.58 0.59 1/467 12345\n"),
            "0.52 0.58 0.59"
        );
        assert_eq!(first_three(""), "");
    }
}
