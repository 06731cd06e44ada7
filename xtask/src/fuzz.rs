//! `cargo xtask fuzz [--seconds N] [--cpu-seconds N] [TARGET...]`: builds
//! the cargo-fuzz targets of `fuzz/`, runs them one after the other, each
//! for N seconds of wall time (default 60, unless a CPU budget is given)
//! and/or until the fuzzer itself has used N seconds of CPU (on a shared
//! machine the wall time says little), and prints libFuzzer's figures.
//! An interrupted fuzzer (SIGINT, from the CPU budget or from outside) is
//! not a failure: libFuzzer prints its figures and exits with 72.
//!
//! Each target reads three corpus folders: a scratch folder where libFuzzer
//! keeps what it finds (`target/fuzz/corpus/<target>`, kept between runs),
//! the seeds written from `../shared/corpus` and fluxhook-fuzz's own
//! (`target/fuzz/seeds/<target>`), and the committed regression inputs
//! (`fuzz/regressions/<target>`). The shared folder is only read. Crashes
//! go to `target/fuzz/artifacts/<target>/`; full logs to
//! `target/fuzz/logs/<target>.log`.
//!
//! Only the stable toolchain is needed: targets are built without a
//! sanitizer (`cargo fuzz build -s none`); panics and broken invariants are
//! what they catch. The fuzzer binary is run directly (as `cargo fuzz run`
//! does after building), so that its CPU time can be read from `/proc`.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use fluxhook_corpus::Corpus;
use fluxhook_fuzz::Target;

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [--cpu-seconds N] [TARGET...]";

/// libFuzzer's exit status after SIGINT (its `-interrupted_exitcode`).
const INTERRUPTED: i32 = 72;

/// How long each target runs: until the first budget given is spent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Budget {
    /// Seconds of wall time (libFuzzer's `-max_total_time`).
    wall: Option<u64>,
    /// Seconds of the fuzzer's own CPU time (user + system).
    cpu: Option<u64>,
}

impl std::fmt::Display for Budget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.wall, self.cpu) {
            (Some(wall), Some(cpu)) => write!(f, "{cpu} CPU-seconds, at most {wall} s"),
            (None, Some(cpu)) => write!(f, "{cpu} CPU-seconds"),
            (Some(wall), None) => write!(f, "{wall} s"),
            (None, None) => f.write_str("ever"),
        }
    }
}

/// libFuzzer's figures at the end of a run, and what the run cost.
#[derive(Debug, Default)]
struct Figures {
    execs: Option<u64>,
    exec_per_sec: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<String>,
    cpu_seconds: Option<f64>,
    wall_seconds: f64,
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let (budget, targets) = parse_args(args)?;
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let installed = Command::new(&cargo)
        .args(["fuzz", "--version"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !installed {
        return Err("cargo-fuzz is not installed: run `cargo install cargo-fuzz --locked`".into());
    }
    let corpus = Corpus::locate().ok();
    if corpus.is_none() {
        eprintln!(
            "xtask: ../shared/corpus not found (FLUXHOOK_CORPUS); seeding from fluxhook-fuzz's own inputs only"
        );
    }
    build(root, &cargo, &targets)?;
    let binaries = root
        .join("fuzz")
        .join("target")
        .join(host_triple()?)
        .join("release");
    let work = root.join("target").join("fuzz");
    let mut report = Vec::new();
    let mut failed = Vec::new();
    for target in targets {
        let name = target.name();
        let scratch = work.join("corpus").join(name);
        let seeds = work.join("seeds").join(name);
        let artifacts = work.join("artifacts").join(name);
        let logs = work.join("logs");
        for dir in [&scratch, &artifacts, &logs] {
            fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        write_seeds(&seeds, &target.seeds(corpus.as_ref().map(Corpus::root)))?;
        let mut dirs = vec![scratch, seeds];
        let regressions = root.join("fuzz").join("regressions").join(name);
        if regressions.is_dir() {
            dirs.push(regressions);
        }
        let log = logs.join(format!("{name}.log"));
        eprintln!(
            "xtask: fuzzing {name} for {budget} (log: {})",
            log.display()
        );
        let run = Run {
            binary: &binaries.join(name),
            budget,
            dirs: &dirs,
            artifacts: &artifacts,
            log: &log,
        };
        let (ok, figures) = run.fuzz()?;
        if !ok {
            failed.push(name);
        }
        report.push((name, ok, figures));
    }
    println!(
        "| target | wall s | CPU s | executions | exec/s | cov | ft | corpus (inputs/size) | result |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |");
    for (name, ok, f) in &report {
        let show = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        println!(
            "| {name} | {:.0} | {} | {} | {} | {} | {} | {} | {} |",
            f.wall_seconds,
            f.cpu_seconds.map_or("?".to_owned(), |s| format!("{s:.0}")),
            show(f.execs),
            show(f.exec_per_sec),
            show(f.cov),
            show(f.ft),
            f.corpus.as_deref().unwrap_or("?"),
            if *ok {
                "no crash"
            } else {
                "CRASH (see target/fuzz/artifacts)"
            }
        );
    }
    match failed.is_empty() {
        true => Ok(()),
        false => Err(format!("crashes or hangs in {}", failed.join(", "))),
    }
}

fn parse_args(args: &[String]) -> Result<(Budget, Vec<Target>), String> {
    let mut budget = Budget {
        wall: None,
        cpu: None,
    };
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            flag @ ("--seconds" | "--cpu-seconds") => {
                let value = args.next().ok_or(USAGE)?;
                let seconds = value
                    .parse()
                    .map_err(|_| format!("{flag} wants a whole number, not {value:?}\n{USAGE}"))?;
                match flag {
                    "--seconds" => budget.wall = Some(seconds),
                    _ => budget.cpu = Some(seconds),
                }
            }
            "-h" | "--help" => return Err(USAGE.into()),
            name => {
                let target = Target::from_name(name).ok_or_else(|| {
                    let names: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
                    format!(
                        "unknown fuzz target {name:?}; targets: {}",
                        names.join(", ")
                    )
                })?;
                targets.push(target);
            }
        }
    }
    if targets.is_empty() {
        targets = Target::ALL.to_vec();
    }
    if budget.cpu.is_none() {
        budget.wall = budget.wall.or(Some(60));
    }
    Ok((budget, targets))
}

/// `cargo fuzz build -s none`, for every target at once or each named one.
fn build(root: &Path, cargo: &str, targets: &[Target]) -> Result<(), String> {
    let names: Vec<Option<&str>> = if targets.len() == Target::ALL.len() {
        vec![None]
    } else {
        targets.iter().map(|t| Some(t.name())).collect()
    };
    for name in names {
        let status = Command::new(cargo)
            .current_dir(root)
            .args(["fuzz", "build", "--fuzz-dir", "fuzz", "-s", "none"])
            .args(name)
            .status()
            .map_err(|e| format!("cannot run cargo fuzz build: {e}"))?;
        if !status.success() {
            return Err(format!("cargo fuzz build failed ({status})"));
        }
    }
    Ok(())
}

/// The host's target triple, under which cargo-fuzz puts its binaries.
fn host_triple() -> Result<String, String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let output = Command::new(rustc)
        .arg("-vV")
        .output()
        .map_err(|e| format!("cannot run rustc -vV: {e}"))?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(str::to_owned)
        .ok_or_else(|| "rustc -vV names no host".to_string())
}

/// Writes `seeds` as files named by their index, replacing older seeds.
fn write_seeds(dir: &Path, seeds: &[Vec<u8>]) -> Result<(), String> {
    let fail = |e: std::io::Error| format!("cannot write seeds to {}: {e}", dir.display());
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(fail)?;
    }
    fs::create_dir_all(dir).map_err(fail)?;
    for (i, seed) in seeds.iter().enumerate() {
        fs::write(dir.join(format!("seed-{i:04}")), seed).map_err(fail)?;
    }
    Ok(())
}

/// One fuzzer run.
struct Run<'a> {
    binary: &'a Path,
    budget: Budget,
    dirs: &'a [PathBuf],
    artifacts: &'a Path,
    log: &'a Path,
}

impl Run<'_> {
    fn fuzz(&self) -> Result<(bool, Figures), String> {
        let mut command = Command::new(self.binary);
        command
            .args(self.dirs)
            .arg(format!("-artifact_prefix={}/", self.artifacts.display()))
            // An input that takes over 10 s is a hang, well before libFuzzer's 20 minutes.
            .arg("-timeout=10")
            .arg("-rss_limit_mb=2048")
            .arg("-print_final_stats=1")
            .stdout(Stdio::inherit())
            .stderr(Stdio::piped());
        if let Some(seconds) = self.budget.wall {
            command.arg(format!("-max_total_time={seconds}"));
        }
        let started = Instant::now();
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot run {}: {e}", self.binary.display()))?;
        let pid = child.id();
        // With a CPU budget, a watcher interrupts the fuzzer once it is spent:
        // libFuzzer then prints its final figures and exits with 72.
        let interrupted = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicBool::new(false));
        let watcher = match self.budget.cpu {
            Some(seconds) => {
                let (interrupted, done) = (interrupted.clone(), done.clone());
                Some(std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        if cpu_seconds(pid).is_some_and(|used| used >= seconds as f64) {
                            interrupted.store(true, Ordering::Relaxed);
                            let _ = Command::new("kill")
                                .args(["-INT", &pid.to_string()])
                                .status();
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }))
            }
            None => None,
        };
        let mut file = fs::File::create(self.log)
            .map_err(|e| format!("cannot write {}: {e}", self.log.display()))?;
        let mut figures = Figures::default();
        let mut tail: Vec<String> = Vec::new();
        if let Some(stderr) = child.stderr.take() {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = writeln!(file, "{line}");
                read_figures(&line, &mut figures);
                tail.push(line);
                if tail.len() > 40 {
                    tail.remove(0);
                }
            }
        }
        // Its stderr closed: the fuzzer has exited, and /proc keeps its CPU
        // time until it is waited for.
        figures.cpu_seconds = cpu_seconds(pid);
        let status = child
            .wait()
            .map_err(|e| format!("the fuzzer did not finish: {e}"))?;
        figures.wall_seconds = started.elapsed().as_secs_f64();
        done.store(true, Ordering::Relaxed);
        if let Some(watcher) = watcher {
            let _ = watcher.join();
        }
        if status.code() == Some(INTERRUPTED) && !interrupted.load(Ordering::Relaxed) {
            eprintln!("xtask: {} was interrupted", self.binary.display());
        }
        let ok = status.success() || status.code() == Some(INTERRUPTED);
        if !ok {
            eprintln!(
                "xtask: {} failed ({status}); the end of its log:",
                self.binary.display()
            );
            for line in &tail {
                eprintln!("  {line}");
            }
        }
        Ok((ok, figures))
    }
}

/// User and system CPU time of process `pid`, from `/proc/<pid>/stat`.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command's closing parenthesis, utime and stime are the
    // 12th and 13th fields (14 and 15 of the whole line), in clock ticks
    // of 1/100 s on Linux.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Reads libFuzzer's status lines (`#1234 NEW cov: 56 ft: 78 corp: 9/10Kb
/// ... exec/s: 900 ...`) and final stats (`stat::number_of_executed_units:
/// 1234`, `stat::average_exec_per_sec: 900`).
fn read_figures(line: &str, figures: &mut Figures) {
    if let Some(execs) = line.strip_prefix("stat::number_of_executed_units:") {
        figures.execs = execs.trim().parse().ok();
        return;
    }
    if let Some(rate) = line.strip_prefix("stat::average_exec_per_sec:") {
        figures.exec_per_sec = rate.trim().parse().ok();
        return;
    }
    if !line.starts_with('#') {
        return;
    }
    let mut words = line.split_whitespace();
    if let Some(execs) = words.next().and_then(|w| w.strip_prefix('#')) {
        figures.execs = execs.parse().ok().or(figures.execs);
    }
    while let Some(word) = words.next() {
        match word {
            "cov:" => figures.cov = words.next().and_then(|v| v.parse().ok()),
            "ft:" => figures.ft = words.next().and_then(|v| v.parse().ok()),
            "corp:" => figures.corpus = words.next().map(str::to_owned),
            "exec/s:" => figures.exec_per_sec = words.next().and_then(|v| v.parse().ok()),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_libfuzzers_status_lines() {
        let mut figures = Figures::default();
        read_figures(
            "#4096\tpulse  cov: 1234 ft: 5678 corp: 321/45Kb lim: 4096 exec/s: 2048 rss: 100Mb",
            &mut figures,
        );
        assert_eq!(figures.execs, Some(4096));
        assert_eq!(figures.cov, Some(1234));
        assert_eq!(figures.ft, Some(5678));
        assert_eq!(figures.corpus.as_deref(), Some("321/45Kb"));
        assert_eq!(figures.exec_per_sec, Some(2048));
        read_figures("stat::number_of_executed_units: 5000", &mut figures);
        assert_eq!(figures.execs, Some(5000));
        read_figures("stat::average_exec_per_sec:     1999", &mut figures);
        assert_eq!(figures.exec_per_sec, Some(1999));
        read_figures("INFO: Seed: 1", &mut figures);
        assert_eq!(figures.cov, Some(1234));
    }

    fn wall(seconds: u64) -> Budget {
        Budget {
            wall: Some(seconds),
            cpu: None,
        }
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            args(&[]).map(|(s, t)| (s, t.len())),
            Ok((wall(60), Target::ALL.len()))
        );
        assert_eq!(
            args(&["--seconds", "5", "cel"]),
            Ok((wall(5), vec![Target::Cel]))
        );
        assert_eq!(
            args(&["targeting", "--cpu-seconds", "600"]),
            Ok((
                Budget {
                    wall: None,
                    cpu: Some(600)
                },
                vec![Target::Targeting]
            ))
        );
        assert_eq!(
            args(&["--cpu-seconds", "600", "--seconds", "3000"]).map(|(b, _)| b),
            Ok(Budget {
                wall: Some(3000),
                cpu: Some(600)
            })
        );
        assert!(args(&["--seconds", "x"]).is_err());
        assert!(args(&["--cpu-seconds"]).is_err());
        assert!(args(&["nope"]).is_err());
    }
}

#[cfg(all(test, target_os = "linux"))]
mod proc_tests {
    #[test]
    fn reads_a_process_cpu_time() {
        let used = super::cpu_seconds(std::process::id()).expect("/proc/self/stat reads");
        assert!(used >= 0.0);
        assert_eq!(super::cpu_seconds(u32::MAX), None);
    }
}
