//! `cargo xtask hotpath`: the real receiver against the floor, side by side.
//!
//! The release `fluxhook-receiver` binary serves a `github` Receiver with
//! nothing to reconcile (the fake Kubernetes API of `fluxhook-sandbox`
//! behind it), and the floor ([`hotpath_floor`](super::hotpath_floor)) does
//! only what must be done: read the body, HMAC-SHA256, compare in constant
//! time. One load generator ([`hotpath_client`](super::hotpath_client))
//! drives both in alternating rounds with a signed 7.3 KB GitHub push from
//! the corpus (`octokit-push.json`), once genuine (200) and once with a
//! wrong signature (400). Each round measures both, in turn (the order
//! swapped every round), so the ratio of a round compares two runs a few
//! seconds apart; the report gives medians over the rounds, and how busy
//! the rest of the machine was meanwhile.
//!
//! Everything runs from release builds: `cargo xtask hotpath` builds them,
//! then runs `target/release/xtask __hotpath`.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fluxhook_sandbox::Sandbox;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;
use tokio::io::AsyncBufReadExt;
use tokio::process::{Child, Command};

use super::hotpath_client::{LoadResult, WireRequest, load, percentile};
use super::measure::{self, Load};

const USAGE: &str =
    "usage: cargo xtask hotpath [--rounds N] [--seconds S] [--connections C] [--baseline PATH]

  --rounds N       alternating rounds (default 7)
  --seconds S      measured seconds per server, scenario and round (default 2)
  --connections C  kept-alive connections of the load generator (default 16)
  --baseline PATH  another fluxhook-receiver binary (e.g. main's, built before
                   a change), measured in the same rounds as a third server";

/// The corpus delivery measured: a 7.3 KB GitHub push.
const DELIVERY: &str = "payloads/github/octokit-push.json";
const SECRET: &str = "hotpath-webhook-secret";
const NAMESPACE: &str = "flux-system";
const RECEIVER: &str = "hotpath";

#[derive(Debug, Clone)]
struct Options {
    rounds: usize,
    seconds: f64,
    connections: usize,
    baseline: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        rounds: 7,
        seconds: 2.0,
        connections: 16,
        baseline: None,
    };
    for flag in measure::flags(args, USAGE) {
        match flag.name {
            "--rounds" => options.rounds = flag.count()?,
            "--seconds" => options.seconds = flag.seconds()?,
            "--connections" => options.connections = flag.count()?,
            "--baseline" => {
                let path = PathBuf::from(flag.value()?);
                if !path.is_file() {
                    return Err(flag.invalid());
                }
                options.baseline = Some(path);
            }
            _ => return Err(flag.unknown()),
        }
    }
    Ok(options)
}

/// `cargo xtask hotpath`: builds the release binaries, then measures with
/// them.
pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    parse(args)?;
    release_then(root, "__hotpath", args)
}

/// Builds the release receiver and xtask, then runs the release xtask's
/// `command` with `args` (the load generator must not be a debug build).
pub(crate) fn release_then(root: &Path, command: &str, args: &[String]) -> Result<(), String> {
    super::cargo(
        root,
        &[
            "build",
            "--release",
            "--quiet",
            "--bin",
            "fluxhook-receiver",
            "--bin",
            "xtask",
        ],
    )?;
    let xtask = release_dir(root).join("xtask");
    let status = std::process::Command::new(&xtask)
        .arg(command)
        .args(args)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run {}: {e}", xtask.display()))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{} {command} failed ({status})", xtask.display()))
    }
}

fn release_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("release")
}

/// The directory of the running (release) xtask, where the receiver is.
pub(crate) fn own_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    exe.parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "this program has no folder".to_string())
}

/// `xtask __hotpath`: the measurement itself.
pub(crate) fn measure(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    // The load generator takes one core; the servers get the other.
    measure::runtime(Some(1))?.block_on(measure_async(options))
}

/// A GitHub delivery of `body` signed with `secret`.
pub(crate) fn github_delivery(path: &str, body: &[u8], secret: &str, close: bool) -> WireRequest {
    let signature = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .map(|mac| hex::encode(mac.chain_update(body).finalize().into_bytes()))
        .unwrap_or_default();
    WireRequest::post(
        path,
        &[
            ("Content-Type", "application/json".into()),
            ("User-Agent", "GitHub-Hookshot/hotpath".into()),
            ("X-GitHub-Event", "push".into()),
            (
                "X-GitHub-Delivery",
                "72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            ),
            ("X-Hub-Signature-256", format!("sha256={signature}")),
        ],
        body,
        close,
    )
}

/// The measured push, from the corpus.
pub(crate) fn push_body() -> Result<Vec<u8>, String> {
    let corpus = fluxhook_corpus::Corpus::locate().map_err(|e| e.to_string())?;
    let entry = corpus
        .entries()
        .iter()
        .find(|entry| entry.file == DELIVERY)
        .ok_or_else(|| format!("the corpus has no {DELIVERY}"))?;
    corpus.read_body(entry).map_err(|e| e.to_string())
}

/// The release receiver serving one `github` Receiver with nothing to
/// reconcile, with the flags of a production run (JSON logs at info); its
/// webhook path.
pub(crate) async fn start_receiver(extra_args: &[&str]) -> Result<(Sandbox, String), String> {
    // `FLUXHOOK_RECEIVER_BIN` runs another program in its place, e.g. a
    // script that runs the receiver under a profiler.
    let binary = match std::env::var_os("FLUXHOOK_RECEIVER_BIN") {
        Some(binary) => PathBuf::from(binary),
        None => own_dir()?.join("fluxhook-receiver"),
    };
    start_receiver_binary(&binary, extra_args).await
}

/// [`start_receiver`] with the receiver binary `binary`.
async fn start_receiver_binary(
    binary: &Path,
    extra_args: &[&str],
) -> Result<(Sandbox, String), String> {
    let mut args = vec!["--log-level=info", "--log-encoding=json"];
    args.extend_from_slice(extra_args);
    let sandbox = Sandbox::start_with_args(binary, &args)
        .await
        .map_err(|e| e.to_string())?;
    sandbox
        .apply(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "hotpath-token", "namespace": NAMESPACE},
            // The test API keeps objects as sent: `data`, as the API
            // server stores `stringData`.
            "data": {"token": base64::engine::general_purpose::STANDARD.encode(SECRET)},
        }))
        .map_err(|e| e.to_string())?;
    sandbox
        .apply(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": RECEIVER, "namespace": NAMESPACE},
            "spec": {
                "type": "github",
                "events": ["push"],
                "secretRef": {"name": "hotpath-token"},
                "resources": [],
            },
        }))
        .map_err(|e| e.to_string())?;
    let path = sandbox
        .wait_for_webhook_path(NAMESPACE, RECEIVER)
        .await
        .map_err(|e| e.to_string())?;
    Ok((sandbox, path))
}

/// The webhook server's address.
pub(crate) fn receiver_addr(sandbox: &Sandbox) -> Result<SocketAddr, String> {
    sandbox
        .urls()
        .receiver()
        .trim_start_matches("http://")
        .parse()
        .map_err(|e| format!("cannot read the receiver's address: {e}"))
}

pub(crate) const WEBHOOK_SECRET: &str = SECRET;

/// The floor server, as its own process; its address.
async fn start_floor() -> Result<(Child, SocketAddr), String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find this program: {e}"))?;
    let mut floor = Command::new(exe)
        .args(["__floor", SECRET])
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot start the floor server: {e}"))?;
    let stdout = floor
        .stdout
        .take()
        .ok_or("the floor server has no stdout")?;
    let mut line = String::new();
    tokio::io::BufReader::new(stdout)
        .read_line(&mut line)
        .await
        .map_err(|e| format!("cannot read the floor server's port: {e}"))?;
    let port: u16 = line
        .trim()
        .parse()
        .map_err(|_| format!("the floor server printed {line:?}, not a port"))?;
    Ok((floor, SocketAddr::from(([127, 0, 0, 1], port))))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Receiver,
    Floor,
    Baseline,
}

struct Scenario {
    name: &'static str,
    expected: u16,
    request: WireRequest,
}

#[derive(Default)]
struct Series {
    per_second: Vec<f64>,
    p50_us: Vec<u32>,
    p99_us: Vec<u32>,
    failures: u64,
    first_failure: Option<String>,
    /// CPU time the server spent over the measured rounds (warm-up
    /// included), in clock ticks, and the answers it gave meanwhile.
    cpu_ticks: u64,
    answered: u64,
}

impl Series {
    /// CPU time per answer, in µs: what the server costs per request,
    /// whatever share of the CPUs the rest of the machine left it.
    fn cpu_us_per_request(&self) -> f64 {
        // Clock ticks are 1/100 s on Linux.
        self.cpu_ticks as f64 * 10_000.0 / self.answered.max(1) as f64
    }

    fn add(&mut self, result: LoadResult) {
        self.per_second.push(result.per_second());
        self.p50_us.push(result.latency_us(0.5));
        self.p99_us.push(result.latency_us(0.99));
        self.failures += result.failures;
        self.answered += result.all_answered;
        if self.first_failure.is_none() {
            self.first_failure = result.first_failure;
        }
    }
}

async fn measure_async(options: Options) -> Result<(), String> {
    let body = push_body()?;
    let (sandbox, path) = start_receiver(&[]).await?;
    let receiver = receiver_addr(&sandbox)?;
    let (floor_process, floor) = start_floor().await?;
    let baseline = match &options.baseline {
        Some(binary) => Some(start_receiver_binary(binary, &[]).await?),
        None => None,
    };
    let baseline_addr = match &baseline {
        Some((sandbox, _)) => Some(receiver_addr(sandbox)?),
        None => None,
    };
    let pids = [
        Some(std::process::id()),
        sandbox.receiver_pid(),
        floor_process.id(),
        baseline
            .as_ref()
            .and_then(|(sandbox, _)| sandbox.receiver_pid()),
    ];
    let targets: &[Target] = if baseline.is_some() {
        &[Target::Receiver, Target::Floor, Target::Baseline]
    } else {
        &[Target::Receiver, Target::Floor]
    };

    let scenarios = [
        Scenario {
            name: "signed push, accepted (nothing to patch)",
            expected: 200,
            request: github_delivery(&path, &body, SECRET, false),
        },
        Scenario {
            name: "wrong signature, refused",
            expected: 400,
            request: github_delivery(&path, &body, "not-the-secret", false),
        },
    ];
    let addr = |target| match target {
        Target::Receiver => receiver,
        Target::Floor => floor,
        // Only measured when started.
        Target::Baseline => baseline_addr.unwrap_or(receiver),
    };
    let settle = Duration::from_millis(300);
    let window = Duration::from_secs_f64(options.seconds);
    // Check each pair answers as expected before measuring (for up to 10 s:
    // a receiver run under a profiler is slow).
    for scenario in &scenarios {
        for &target in targets {
            let mut probe = LoadResult::default();
            for _ in 0..100 {
                probe = load(
                    addr(target),
                    &scenario.request,
                    scenario.expected,
                    1,
                    Duration::ZERO,
                    Duration::from_millis(100),
                )
                .await;
                if probe.all_answered > 0 || probe.failures > 0 {
                    break;
                }
            }
            if probe.all_answered == 0 {
                return Err(format!(
                    "{target:?} did not answer {} to \"{}\": {}",
                    scenario.expected,
                    scenario.name,
                    probe.first_failure.unwrap_or_default()
                ));
            }
        }
    }

    eprintln!(
        "hotpath: {} rounds × {} scenarios × 2 servers × {:.1} s, {} connections",
        options.rounds,
        scenarios.len(),
        options.seconds,
        options.connections
    );
    let before = Load::sample(&pids);
    let started = Instant::now();
    let mut results: Vec<[Series; 3]> = scenarios.iter().map(|_| Default::default()).collect();
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    let mut baseline_ratios: Vec<Vec<f64>> = vec![Vec::new(); scenarios.len()];
    for round in 0..options.rounds {
        for (index, scenario) in scenarios.iter().enumerate() {
            // Each server first in turn, the order reversed every other round.
            let mut order = targets.to_vec();
            order.rotate_left(round / 2 % targets.len());
            if round % 2 == 1 {
                order.reverse();
            }
            let mut rates = [0.0; 3];
            for target in order {
                let pid = match target {
                    Target::Receiver => pids[1],
                    Target::Floor => pids[2],
                    Target::Baseline => pids[3],
                };
                let cpu_before = CpuSample::take(&[pid]);
                let result = load(
                    addr(target),
                    &scenario.request,
                    scenario.expected,
                    options.connections,
                    settle,
                    window,
                )
                .await;
                let cpu_after = CpuSample::take(&[pid]);
                let slot = target as usize;
                if let (Some(before), Some(after)) = (cpu_before, cpu_after) {
                    results[index][slot].cpu_ticks += after.ours.saturating_sub(before.ours);
                }
                rates[slot] = result.per_second();
                results[index][slot].add(result);
            }
            ratios[index].push(rates[Target::Receiver as usize] / rates[Target::Floor as usize]);
            let mut line = format!(
                "  round {}: {}: receiver {:.0}/s, floor {:.0}/s, ratio {:.2}",
                round + 1,
                scenario.name,
                rates[0],
                rates[1],
                rates[0] / rates[1]
            );
            if baseline.is_some() {
                let ratio = rates[Target::Baseline as usize] / rates[Target::Floor as usize];
                baseline_ratios[index].push(ratio);
                let _ = write!(
                    line,
                    "; baseline {:.0}/s, ratio {ratio:.2}",
                    rates[Target::Baseline as usize]
                );
            }
            eprintln!("{line}");
        }
    }
    let elapsed = started.elapsed();
    let after = Load::sample(&pids);
    drop(floor_process);

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| scenario | server | requests/s, median (min–max) | latency p50 | latency p99 | server CPU per request |"
    );
    let _ = writeln!(report, "| --- | --- | ---: | ---: | ---: | ---: |");
    for (index, scenario) in scenarios.iter().enumerate() {
        for (target, name) in [
            (Target::Floor, "floor"),
            (Target::Receiver, "fluxhook-receiver"),
            (Target::Baseline, "baseline receiver"),
        ] {
            if !targets.contains(&target) {
                continue;
            }
            let series = &results[index][target as usize];
            let _ = writeln!(
                report,
                "| {} | {name} | {:.0} ({:.0}–{:.0}) | {} µs | {} µs | {:.0} µs |",
                scenario.name,
                median(&series.per_second),
                min(&series.per_second),
                max(&series.per_second),
                median_u32(&series.p50_us),
                median_u32(&series.p99_us),
                series.cpu_us_per_request(),
            );
        }
        let [receiver, floor, base] = &results[index];
        let _ = writeln!(
            report,
            "| {} | **receiver ÷ floor, same round** | **{:.2}** ({:.2}–{:.2}) | | | floor ÷ receiver: **{:.2}** |",
            scenario.name,
            median(&ratios[index]),
            min(&ratios[index]),
            max(&ratios[index]),
            floor.cpu_us_per_request() / receiver.cpu_us_per_request().max(f64::MIN_POSITIVE),
        );
        if baseline.is_some() {
            let _ = writeln!(
                report,
                "| {} | baseline ÷ floor, same round | {:.2} ({:.2}–{:.2}) | | | floor ÷ baseline: {:.2} |",
                scenario.name,
                median(&baseline_ratios[index]),
                min(&baseline_ratios[index]),
                max(&baseline_ratios[index]),
                floor.cpu_us_per_request() / base.cpu_us_per_request().max(f64::MIN_POSITIVE),
            );
        }
    }
    let failures: u64 = results.iter().flatten().map(|s| s.failures).sum();
    print!("{report}");
    println!();
    println!(
        "{} rounds of {:.1} s per server and scenario, {} connections, over {:.0} s.",
        options.rounds,
        options.seconds,
        options.connections,
        elapsed.as_secs_f64()
    );
    println!("{}", Load::describe(&before, &after, elapsed));
    if failures > 0 {
        let first = results
            .iter()
            .flatten()
            .find_map(|s| s.first_failure.clone())
            .unwrap_or_default();
        return Err(format!(
            "{failures} answers were not as expected, first: {first}"
        ));
    }
    Ok(())
}

/// CPU time of the machine and of the measured processes, from `/proc`.
pub(crate) struct CpuSample {
    /// Busy time of all CPUs, in clock ticks.
    busy: u64,
    /// CPU time of the processes measured (load generator, servers).
    pub(crate) ours: u64,
}

impl CpuSample {
    pub(crate) fn take(pids: &[Option<u32>]) -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        let cpu: Vec<u64> = stat
            .lines()
            .next()?
            .split_whitespace()
            .skip(1)
            .filter_map(|n| n.parse().ok())
            .collect();
        // user nice system idle iowait irq softirq steal
        let busy = cpu.iter().take(8).sum::<u64>() - cpu.get(3)? - cpu.get(4)?;
        let ours = pids
            .iter()
            .flatten()
            .filter_map(|pid| {
                let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
                // After the command's closing parenthesis: utime and stime
                // are fields 14 and 15 of the whole line.
                let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
                Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
            })
            .sum();
        Some(Self { busy, ours })
    }

    /// How many CPUs the rest of the machine kept busy between two samples.
    pub(crate) fn describe(
        before: &Option<Self>,
        after: &Option<Self>,
        elapsed: Duration,
    ) -> String {
        let (Some(before), Some(after)) = (before, after) else {
            return "CPU use unknown (no /proc)".into();
        };
        // Clock ticks are 1/100 s on Linux.
        let ticks = elapsed.as_secs_f64() * 100.0;
        let all = after.busy.saturating_sub(before.busy) as f64 / ticks;
        let ours = after.ours.saturating_sub(before.ours) as f64 / ticks;
        format!(
            "CPUs busy {all:.2} on average, {ours:.2} of them with the load generator and servers, \
             {:.2} with other work",
            (all - ours).max(0.0)
        )
    }
}

pub(crate) fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => 0.0,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

fn median_u32(values: &[u32]) -> u32 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    percentile(&sorted, 0.5)
}

pub(crate) fn min(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

pub(crate) fn max(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}
