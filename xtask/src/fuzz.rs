//! `cargo xtask fuzz [--seconds N] [TARGET...]`: runs the cargo-fuzz targets
//! of `fuzz/` one after the other, each for N seconds (default 60), and
//! prints libFuzzer's figures for each.
//!
//! Each target reads three corpus folders: a scratch folder where libFuzzer
//! keeps what it finds (`target/fuzz/corpus/<target>`, kept between runs),
//! the seeds written from `../shared/corpus` and fluxhook-fuzz's own
//! (`target/fuzz/seeds/<target>`), and the committed regression inputs
//! (`fuzz/regressions/<target>`). The shared folder is only read. Crashes
//! go to `target/fuzz/artifacts/<target>/`; full logs to
//! `target/fuzz/logs/<target>.log`.
//!
//! Only the stable toolchain is needed: targets run without a sanitizer
//! (`-s none`); panics and broken invariants are what they catch.

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use fluxhook_corpus::Corpus;
use fluxhook_fuzz::Target;

const USAGE: &str = "usage: cargo xtask fuzz [--seconds N] [TARGET...]";

/// libFuzzer's figures at the end of a run.
#[derive(Debug, Default)]
struct Figures {
    execs: Option<u64>,
    cov: Option<u64>,
    ft: Option<u64>,
    corpus: Option<String>,
}

pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let (seconds, targets) = parse_args(args)?;
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
            "xtask: fuzzing {name} for {seconds} s (log: {})",
            log.display()
        );
        let (ok, figures) = fuzz_one(root, &cargo, name, seconds, &dirs, &artifacts, &log)?;
        if !ok {
            failed.push(name);
        }
        report.push((name, ok, figures));
    }
    println!("| target | seconds | executions | cov | ft | corpus | result |");
    println!("| --- | ---: | ---: | ---: | ---: | --- | --- |");
    for (name, ok, f) in &report {
        let show = |v: Option<u64>| v.map_or("?".to_owned(), |v| v.to_string());
        println!(
            "| {name} | {seconds} | {} | {} | {} | {} | {} |",
            show(f.execs),
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

fn parse_args(args: &[String]) -> Result<(u64, Vec<Target>), String> {
    let mut seconds = 60;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seconds" => {
                let value = args.next().ok_or(USAGE)?;
                seconds = value.parse().map_err(|_| {
                    format!("--seconds wants a whole number, not {value:?}\n{USAGE}")
                })?;
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
    Ok((seconds, targets))
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

fn fuzz_one(
    root: &Path,
    cargo: &str,
    name: &str,
    seconds: u64,
    dirs: &[PathBuf],
    artifacts: &Path,
    log: &Path,
) -> Result<(bool, Figures), String> {
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args(["fuzz", "run", "--fuzz-dir", "fuzz", "-s", "none", name])
        .args(dirs)
        .arg("--")
        .arg(format!("-max_total_time={seconds}"))
        .arg(format!("-artifact_prefix={}/", artifacts.display()))
        // An input that takes over 10 s is a hang, well before libFuzzer's 20 minutes.
        .arg("-timeout=10")
        .arg("-rss_limit_mb=2048")
        .arg("-print_final_stats=1")
        .stdout(Stdio::inherit())
        .stderr(Stdio::piped());
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot run cargo fuzz: {e}"))?;
    let mut file =
        fs::File::create(log).map_err(|e| format!("cannot write {}: {e}", log.display()))?;
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
    let status = child
        .wait()
        .map_err(|e| format!("cargo fuzz did not finish: {e}"))?;
    if !status.success() {
        eprintln!("xtask: {name} failed ({status}); the end of its log:");
        for line in &tail {
            eprintln!("  {line}");
        }
    }
    Ok((status.success(), figures))
}

/// Reads libFuzzer's status lines (`#1234 NEW cov: 56 ft: 78 corp: 9/10Kb ...`)
/// and final stats (`stat::number_of_executed_units: 1234`).
fn read_figures(line: &str, figures: &mut Figures) {
    if let Some(execs) = line.strip_prefix("stat::number_of_executed_units:") {
        figures.execs = execs.trim().parse().ok();
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
        read_figures("stat::number_of_executed_units: 5000", &mut figures);
        assert_eq!(figures.execs, Some(5000));
        read_figures("INFO: Seed: 1", &mut figures);
        assert_eq!(figures.cov, Some(1234));
    }

    #[test]
    fn arguments() {
        let args = |a: &[&str]| parse_args(&a.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        assert_eq!(
            args(&[]).map(|(s, t)| (s, t.len())),
            Ok((60, Target::ALL.len()))
        );
        assert_eq!(args(&["--seconds", "5", "cel"]), Ok((5, vec![Target::Cel])));
        assert!(args(&["--seconds", "x"]).is_err());
        assert!(args(&["nope"]).is_err());
    }
}
