//! `cargo xtask scale`: the release receiver serving thousands of Receivers.
//!
//! The test Kubernetes API of `fluxhook-sandbox` is seeded, before the
//! receiver starts, with N `github` Receivers (nothing to reconcile), each
//! with its own Secret, all in `flux-system`; then the release
//! `fluxhook-receiver` starts against it, as `cargo xtask hotpath` starts it
//! (JSON logs at info, the deployed RBAC). Measured, from the moment the
//! process started (its start time in `/proc/<pid>/stat`):
//!
//! - when `/readyz` first answers 200;
//! - when the last Receiver's webhook path (Flux's
//!   `/hook/sha256(token+name+namespace)`, known beforehand) first answers a
//!   signed push 200: it is served;
//! - when every Receiver is `Ready=True` in the API (statuses written).
//!
//! Then: the receiver's API requests up to that moment, by verb and
//! resource, beside those of a run with one Receiver (the one `hotpath`
//! starts), with any request made about once per Receiver marked (a list
//! could replace it); resident memory (VmRSS, VmHWM) idle with one Receiver
//! and with N; and the webhook throughput against one Receiver, with N
//! loaded and with one, in alternating rounds under the load generator of
//! `hotpath` ([`load`]), as medians and the ratio of each round.
//!
//! Everything runs from release builds: `cargo xtask scale` builds them,
//! then runs `target/release/xtask __scale`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use base64::Engine as _;
use fluxhook_sandbox::Sandbox;
use fluxhook_test_apiserver::RequestRecord;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::net::TcpStream;

use super::flood::memory_kib;
use super::hotpath::{
    CpuSample, WEBHOOK_SECRET, github_delivery, max, median, min, own_dir, push_body,
    receiver_addr, release_then, start_receiver,
};
use super::hotpath_client::{exchange, load};
use super::measure::{self, Load};

const USAGE: &str = "usage: cargo xtask scale [--receivers N] [--starts K] [--rounds R] [--seconds S] [--connections C] [--baseline PATH]

  --receivers N    Receivers (each with its Secret) in the API (default 10000)
  --starts K       start-ups of the receiver with N Receivers (default 1)
  --baseline PATH  another fluxhook-receiver binary (e.g. main's, built before a
                   change): its start-ups with N Receivers alternate with this
                   build's, K of each, and are reported beside them
  --rounds R       alternating throughput rounds, 1 vs N Receivers (default 5)
  --seconds S      measured seconds per receiver and round (default 2)
  --connections C  kept-alive connections of the load generator (default 16)
  --kube-api-qps Q the receivers' --kube-api-qps (default -1, no client-side
                   limit, as in a cluster with API Priority and Fairness; 50,
                   the flag's default, is what a cluster without it gets)";

const NAMESPACE: &str = "flux-system";
const RECEIVER_API_VERSION: &str = "notification.toolkit.fluxcd.io/v1";
/// How long the whole start-up may take before the run gives up.
const START_DEADLINE: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
struct Options {
    receivers: usize,
    starts: usize,
    rounds: usize,
    seconds: f64,
    connections: usize,
    /// The receivers' `--kube-api-qps` flag.
    kube_api_qps: String,
    /// Another receiver binary whose start-ups are measured beside this build's.
    baseline: Option<std::path::PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        receivers: 10_000,
        starts: 1,
        rounds: 5,
        seconds: 2.0,
        connections: 16,
        kube_api_qps: "-1".to_string(),
        baseline: None,
    };
    for flag in measure::flags(args, USAGE) {
        match flag.name {
            "--receivers" => options.receivers = flag.count()?,
            "--starts" => options.starts = flag.count()?,
            "--rounds" => options.rounds = flag.count()?,
            "--connections" => options.connections = flag.count()?,
            "--baseline" => {
                let value = flag.value()?;
                let path = std::path::PathBuf::from(value);
                if !path.is_file() {
                    return Err(format!("--baseline {value:?} is not a file\n\n{USAGE}"));
                }
                options.baseline = Some(path);
            }
            "--kube-api-qps" => {
                let value = flag.value()?;
                value.parse::<f32>().map_err(|_| flag.invalid())?;
                value.clone_into(&mut options.kube_api_qps);
            }
            "--seconds" => options.seconds = flag.seconds()?,
            _ => return Err(flag.unknown()),
        }
    }
    Ok(options)
}

/// `cargo xtask scale`: builds the release binaries, then measures with them.
pub(crate) fn run(root: &std::path::Path, args: &[String]) -> Result<(), String> {
    parse(args)?;
    release_then(root, "__scale", args)
}

/// `xtask __scale`: the measurement itself.
pub(crate) fn measure(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    // As `hotpath`: the load generator (and the test API) take one core.
    measure::runtime(Some(1))?.block_on(measure_async(options))
}

/// Receiver `index` of N: its name, Secret name and token.
fn receiver(index: usize) -> (String, String, String) {
    let name = format!("scale-{index:05}");
    let secret = format!("{name}-token");
    let token = format!("scale-webhook-secret-{index:05}");
    (name, secret, token)
}

/// Flux's webhook path of a Receiver: `/hook/sha256(token+name+namespace)`
/// (notification-controller `Receiver.GetWebhookPath`).
fn webhook_path(token: &str, name: &str, namespace: &str) -> String {
    let digest = Sha256::digest(format!("{token}{name}{namespace}"));
    format!("/hook/{}", hex::encode(digest))
}

/// The N Secrets and Receivers, as stored before the receiver starts.
fn objects(receivers: usize) -> Vec<Value> {
    let mut objects = Vec::with_capacity(2 * receivers);
    for index in 0..receivers {
        let (name, secret, token) = receiver(index);
        objects.push(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": NAMESPACE},
            "data": {"token": base64::engine::general_purpose::STANDARD.encode(&token)},
        }));
        objects.push(json!({
            "apiVersion": RECEIVER_API_VERSION,
            "kind": "Receiver",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {
                "type": "github",
                "events": ["push"],
                "secretRef": {"name": secret},
                "resources": [],
            },
        }));
    }
    objects
}

/// How long ago the process `pid` started, from `/proc` (10 ms resolution).
fn since_start(pid: u32) -> Option<Duration> {
    let uptime: f64 = std::fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Field 22 of the whole line, the 20th after the command's parenthesis:
    // the start time in clock ticks (1/100 s on Linux) since boot.
    let started: f64 = stat
        .rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(19)?
        .parse()
        .ok()?;
    Some(Duration::from_secs_f64((uptime - started / 100.0).max(0.0)))
}

/// One signed push to `path` on a new connection; its status.
async fn deliver(addr: SocketAddr, path: &str, body: &[u8], secret: &str) -> Result<u16, String> {
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let request = github_delivery(path, body, secret, true);
    exchange(&mut stream, &request, &mut Vec::new()).await
}

/// A start-up milestone: its name, and when it was reached.
type Milestone = (&'static str, fn(&Startup) -> Duration);

/// What one start-up with N Receivers measured.
struct Startup {
    ready: Duration,
    served: Duration,
    statuses: Duration,
    /// The receiver's requests until every status was written.
    requests: Vec<RequestRecord>,
    /// VmRSS, VmHWM in KiB, idle after start-up.
    memory_kib: (u64, u64),
}

/// Starts the receiver against N seeded Receivers and measures its start-up.
async fn start_many(
    binary: &std::path::Path,
    receivers: usize,
    body: &[u8],
    qps_flag: &str,
) -> Result<(Sandbox, Startup), String> {
    eprintln!("scale: storing {receivers} Receivers and Secrets in the test API");
    let mut sandbox = Sandbox::builder(binary)
        .args(&["--log-level=info", "--log-encoding=json", qps_flag])
        .objects(objects(receivers))
        .launch()
        .await
        .map_err(|e| e.to_string())?;
    let pid = sandbox
        .receiver_pid()
        .ok_or("the receiver exited at once")?;
    let elapsed = || since_start(pid).unwrap_or_default();
    eprintln!("scale: receiver started (pid {pid})");
    sandbox
        .wait_until_ready()
        .await
        .map_err(|e| e.to_string())?;
    let ready = elapsed();

    let addr = receiver_addr(&sandbox)?;
    let (last, _, token) = receiver(receivers - 1);
    let path = webhook_path(&token, &last, NAMESPACE);
    let served = loop {
        match deliver(addr, &path, body, &token).await {
            Ok(200) => break elapsed(),
            Ok(404) | Err(_) => {}
            Ok(other) => return Err(format!("Receiver {last} answered {other}, not 200")),
        }
        if elapsed() > START_DEADLINE {
            return Err(format!(
                "Receiver {last} was not served within {START_DEADLINE:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    eprintln!("scale: Receiver {last} served");

    let statuses = loop {
        let listed = sandbox
            .api()
            .list(RECEIVER_API_VERSION, "Receiver", Some(NAMESPACE))
            .map_err(|e| e.to_string())?;
        let at = elapsed();
        let ready = listed.iter().filter(|r| is_ready(r)).count();
        if ready == receivers {
            break at;
        }
        if at > START_DEADLINE {
            return Err(format!(
                "{ready} of {receivers} Receivers were Ready after {START_DEADLINE:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let requests = receiver_requests(&sandbox);
    eprintln!(
        "scale: all Receivers Ready after {:.1} s, {} API requests",
        statuses.as_secs_f64(),
        requests.len()
    );
    let memory_kib = idle_memory(pid).await;
    Ok((
        sandbox,
        Startup {
            ready,
            served,
            statuses,
            requests,
            memory_kib,
        },
    ))
}

fn is_ready(receiver: &Value) -> bool {
    receiver["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

/// The receiver's requests to the API so far.
fn receiver_requests(sandbox: &Sandbox) -> Vec<RequestRecord> {
    let user = sandbox.receiver_identity().name().to_string();
    sandbox
        .api()
        .requests()
        .all()
        .into_iter()
        .filter(|record| record.user.as_deref() == Some(user.as_str()))
        .collect()
}

/// The resident memory once the receiver is idle: after its CPU time stops
/// growing for a second (bounded to 30 s), VmRSS and VmHWM in KiB.
async fn idle_memory(pid: u32) -> (u64, u64) {
    let started = Instant::now();
    let mut last = CpuSample::take(&[Some(pid)]).map(|s| s.ours);
    while started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = CpuSample::take(&[Some(pid)]).map(|s| s.ours);
        // At most one clock tick (10 ms) of CPU in a second: idle.
        if let (Some(before), Some(after)) = (last, now)
            && after.saturating_sub(before) <= 1
        {
            break;
        }
        last = now;
    }
    memory_kib(pid).unwrap_or_default()
}

/// `verb resource[/subresource]` of a request, e.g. `patch receivers/status`.
fn call_of(record: &RequestRecord) -> String {
    let verb = record
        .verb
        .map_or_else(|| record.method.to_lowercase(), |v| v.as_str().to_string());
    match &record.target {
        Some(target) => {
            let resource = match &target.subresource {
                Some(sub) => format!("{}/{sub}", target.resource),
                None => target.resource.clone(),
            };
            if target.group.is_empty() {
                format!("{verb} {resource}")
            } else {
                format!("{verb} {resource}.{}", target.group)
            }
        }
        None => format!("{verb} {} (discovery, other)", record.method),
    }
}

fn count_calls(requests: &[RequestRecord]) -> BTreeMap<String, usize> {
    let mut calls = BTreeMap::new();
    for record in requests {
        *calls.entry(call_of(record)).or_default() += 1;
    }
    calls
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

async fn measure_async(options: Options) -> Result<(), String> {
    let body = push_body()?;
    let before = Load::sample(&[Some(std::process::id())]);
    let started = Instant::now();

    // One Receiver, as `hotpath` runs it.
    let qps_flag = format!("--kube-api-qps={}", options.kube_api_qps);
    let (single, single_path) = start_receiver(&[&qps_flag]).await?;
    let single_pid = single.receiver_pid().ok_or("the receiver exited")?;
    let single_requests = receiver_requests(&single);
    let single_memory = idle_memory(single_pid).await;

    let this_build = own_dir()?.join("fluxhook-receiver");
    let mut startups = Vec::new();
    let mut baseline_startups = Vec::new();
    let mut many = None;
    for start in 0..options.starts {
        // Only the last start-up is kept for the throughput rounds.
        drop(many.take());
        if let Some(baseline) = &options.baseline {
            eprintln!(
                "scale: start-up {} of {}, baseline {}",
                start + 1,
                options.starts,
                baseline.display()
            );
            let (sandbox, startup) =
                start_many(baseline, options.receivers, &body, &qps_flag).await?;
            drop(sandbox);
            baseline_startups.push(startup);
        }
        eprintln!("scale: start-up {} of {}", start + 1, options.starts);
        let (sandbox, startup) =
            start_many(&this_build, options.receivers, &body, &qps_flag).await?;
        startups.push(startup);
        many = Some(sandbox);
    }
    let many = many.ok_or("no start-up")?;
    let many_pid = many.receiver_pid().ok_or("the receiver exited")?;

    // Throughput against one Receiver: the hotpath one, and the last of N.
    let (last, _, token) = receiver(options.receivers - 1);
    let targets = [
        (
            receiver_addr(&single)?,
            github_delivery(&single_path, &body, WEBHOOK_SECRET, false),
        ),
        (
            receiver_addr(&many)?,
            github_delivery(
                &webhook_path(&token, &last, NAMESPACE),
                &body,
                &token,
                false,
            ),
        ),
    ];
    let settle = Duration::from_millis(300);
    let window = Duration::from_secs_f64(options.seconds);
    let mut rates: [Vec<f64>; 2] = Default::default();
    let mut p99_us: [Vec<u32>; 2] = Default::default();
    let mut ratios = Vec::new();
    let mut failures = 0;
    let mut first_failure = None;
    for round in 0..options.rounds {
        let order = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        let mut rate = [0.0; 2];
        for slot in order {
            let (addr, request) = &targets[slot];
            let result = load(*addr, request, 200, options.connections, settle, window).await;
            failures += result.failures;
            first_failure = first_failure.or(result.first_failure.clone());
            rate[slot] = result.per_second();
            rates[slot].push(rate[slot]);
            p99_us[slot].push(result.latency_us(0.99));
        }
        ratios.push(rate[1] / rate[0]);
        eprintln!(
            "  round {}: 1 Receiver {:.0}/s, {} Receivers {:.0}/s, ratio {:.3}",
            round + 1,
            rate[0],
            options.receivers,
            rate[1],
            rate[1] / rate[0]
        );
    }
    let single_after = memory_kib(single_pid).unwrap_or_default();
    let many_after = memory_kib(many_pid).unwrap_or_default();
    let elapsed = started.elapsed();
    // The receivers started after the first sample: all their CPU time is
    // the run's.
    let after = Load::sample(&[Some(std::process::id()), Some(single_pid), Some(many_pid)]);

    let n = options.receivers;
    let compared = !baseline_startups.is_empty();
    let seconds = |startups: &[Startup], pick: fn(&Startup) -> Duration| -> String {
        let values: Vec<f64> = startups.iter().map(|s| pick(s).as_secs_f64()).collect();
        format!(
            "{:.2} ({:.2}–{:.2})",
            median(&values),
            min(&values),
            max(&values)
        )
    };
    let mut report = String::new();
    let _ = writeln!(
        report,
        "Start-up with {n} Receivers and their Secrets, seconds since the process started, \
         median (min–max) of {} start-ups{}:\n",
        startups.len(),
        if compared {
            " of each build, alternated"
        } else {
            ""
        }
    );
    if compared {
        let _ = writeln!(report, "| milestone | this build | baseline |");
        let _ = writeln!(report, "| --- | ---: | ---: |");
    } else {
        let _ = writeln!(report, "| milestone | seconds |");
        let _ = writeln!(report, "| --- | ---: |");
    }
    let milestones: [Milestone; 3] = [
        ("`/readyz` answers 200", |s| s.ready),
        (
            "the last Receiver's path answers a signed push 200 (all served)",
            |s| s.served,
        ),
        ("every Receiver `Ready=True` in the API", |s| s.statuses),
    ];
    for (name, pick) in milestones {
        let _ = write!(report, "| {name} | {} |", seconds(&startups, pick));
        if compared {
            let _ = write!(report, " {} |", seconds(&baseline_startups, pick));
        }
        let _ = writeln!(report);
    }

    let single_calls = count_calls(&single_requests);
    let last_startup = startups.last().ok_or("no start-up")?;
    let many_calls = count_calls(&last_startup.requests);
    let baseline_calls = baseline_startups
        .last()
        .map(|startup| count_calls(&startup.requests))
        .unwrap_or_default();
    let _ = writeln!(
        report,
        "\nThe receiver's API requests until every Receiver was Ready (last start-up), \
         by verb and resource:\n"
    );
    if compared {
        let _ = writeln!(
            report,
            "| request | 1 Receiver | {n} Receivers | {n}, baseline | |"
        );
        let _ = writeln!(report, "| --- | ---: | ---: | ---: | --- |");
    } else {
        let _ = writeln!(report, "| request | 1 Receiver | {n} Receivers | |");
        let _ = writeln!(report, "| --- | ---: | ---: | --- |");
    }
    let mut keys: Vec<&String> = single_calls
        .keys()
        .chain(many_calls.keys())
        .chain(baseline_calls.keys())
        .collect();
    keys.sort();
    keys.dedup();
    let mut per_receiver = Vec::new();
    for key in keys {
        let one = single_calls.get(key).copied().unwrap_or(0);
        let all = many_calls.get(key).copied().unwrap_or(0);
        // About once per Receiver (or more): what grows with N.
        let grows = n >= 100 && all >= n / 2;
        if grows {
            per_receiver.push(format!("{key} ({all})"));
        }
        let _ = write!(report, "| {key} | {one} | {all} |");
        if compared {
            let _ = write!(
                report,
                " {} |",
                baseline_calls.get(key).copied().unwrap_or(0)
            );
        }
        let _ = writeln!(report, " {} |", if grows { "**per Receiver**" } else { "" });
    }
    let _ = write!(
        report,
        "| all | {} | {} |",
        single_requests.len(),
        last_startup.requests.len()
    );
    if let Some(baseline) = baseline_startups.last() {
        let _ = write!(report, " {} |", baseline.requests.len());
    }
    let _ = writeln!(report, " |");

    let _ = writeln!(
        report,
        "\nResident memory, MiB (VmRSS idle after start-up / VmHWM peak so far; after the \
         throughput rounds):\n"
    );
    let _ = writeln!(
        report,
        "| Receivers | VmRSS idle | VmHWM idle | VmRSS after load | VmHWM after load |"
    );
    let _ = writeln!(report, "| ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(
        report,
        "| 1 | {:.1} | {:.1} | {:.1} | {:.1} |",
        mib(single_memory.0),
        mib(single_memory.1),
        mib(single_after.0),
        mib(single_after.1)
    );
    let idle = |startups: &[Startup]| -> (f64, f64) {
        let rss: Vec<f64> = startups.iter().map(|s| mib(s.memory_kib.0)).collect();
        let hwm: Vec<f64> = startups.iter().map(|s| mib(s.memory_kib.1)).collect();
        (median(&rss), median(&hwm))
    };
    let (idle_rss, idle_hwm) = idle(&startups);
    let _ = writeln!(
        report,
        "| {n} | {idle_rss:.1} | {idle_hwm:.1} | {:.1} | {:.1} |",
        mib(many_after.0),
        mib(many_after.1)
    );
    if compared {
        let (rss, hwm) = idle(&baseline_startups);
        let _ = writeln!(report, "| {n}, baseline | {rss:.1} | {hwm:.1} | | |");
    }

    let _ = writeln!(
        report,
        "\nWebhook throughput against one Receiver, signed 7.3 KB push accepted (nothing to \
         patch), {} rounds × {:.1} s, {} connections:\n",
        options.rounds, options.seconds, options.connections
    );
    let _ = writeln!(
        report,
        "| receiver | requests/s, median (min–max) | latency p99, median |"
    );
    let _ = writeln!(report, "| --- | ---: | ---: |");
    for (slot, name) in [(0, "1 Receiver".to_string()), (1, format!("{n} Receivers"))] {
        let mut p99 = p99_us[slot].clone();
        p99.sort_unstable();
        let _ = writeln!(
            report,
            "| {name} | {:.0} ({:.0}–{:.0}) | {} µs |",
            median(&rates[slot]),
            min(&rates[slot]),
            max(&rates[slot]),
            super::hotpath_client::percentile(&p99, 0.5)
        );
    }
    let _ = writeln!(
        report,
        "| **{n} ÷ 1, same round** | **{:.3}** ({:.3}–{:.3}) | |",
        median(&ratios),
        min(&ratios),
        max(&ratios)
    );
    print!("{report}");
    println!();
    if !per_receiver.is_empty() {
        println!(
            "Requests made about once per Receiver: {}.",
            per_receiver.join(", ")
        );
    }
    println!(
        "Receivers run with --kube-api-qps={}. Over {:.0} s. {}.",
        options.kube_api_qps,
        elapsed.as_secs_f64(),
        Load::describe(&before, &after, elapsed),
    );
    if failures > 0 {
        return Err(format!(
            "{failures} answers were not 200, first: {}",
            first_failure.unwrap_or_default()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_path_is_fluxs() {
        // The example of fluxhook-api's crate documentation: token "s3cr3t",
        // Receiver flux-system/github-receiver.
        assert_eq!(
            webhook_path("s3cr3t", "github-receiver", "flux-system"),
            "/hook/605dbd4976c3504a20afec155a68122702621389b3b29f71feb118008a1696a1"
        );
    }

    #[test]
    fn flags_are_checked() {
        assert!(parse(&["--receivers".into(), "0".into()]).is_err());
        assert!(parse(&["--receivers".into()]).is_err());
        assert!(parse(&["--bogus".into(), "1".into()]).is_err());
        let options = parse(&["--receivers".into(), "50".into()]).expect("valid flags");
        assert_eq!(options.receivers, 50);
        assert_eq!(objects(3).len(), 6);
    }
}
