//! `cargo xtask flood`: can a Git host still deliver while one address
//! floods the receiver?
//!
//! The release `fluxhook-receiver` serves a `github` Receiver with nothing
//! to reconcile (as `cargo xtask hotpath`). For each scenario, an attacker
//! in this process opens `--connections` connections (10,000 by default)
//! from 127.0.0.2 and keeps them as the scenario says, opening a new one
//! whenever the receiver closes one; meanwhile a genuine client sends a
//! signed 7.3 KB GitHub push from 127.0.0.1 every 100 ms, each on a new
//! connection as GitHub does, and records how long the answer took, and
//! how much of it went to establishing the connection (past a second, the
//! SYN was dropped by a full accept queue and sent again). The receiver's
//! resident memory is sampled from `/proc` throughout.
//!
//! Scenarios:
//! - `slow-heads`: request heads that never end, a header line every 2 s
//!   (slowloris);
//! - `big-heads`: 200 KiB of header lines at once, then nothing;
//! - `big-bodies`: a 64 MiB `Content-Length` (over the 3 MiB limit), then
//!   the body 1 KiB every 100 ms;
//! - `slow-bodies`: a 3 MiB body (within the limit), 1 KiB every 100 ms;
//! - `same-address`: `slow-heads` from 127.0.0.1, the genuine client's
//!   address (as when both come through one proxy).
//!
//! Nothing here is a test: it prints what it saw. The goal (issue 12) is
//! every genuine delivery answered 200 within 1 s, with memory bounded.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use super::hotpath;
use super::hotpath_client::{WireRequest, exchange, percentile};
use super::measure::{self, Load};

const USAGE: &str = "usage: cargo xtask flood [--connections N] [--seconds S] [--scenario NAME]

  --connections N  the attacker's connections (default 10000)
  --seconds S      genuine deliveries are sent for S seconds per scenario,
                   once the attacker has opened its connections (default 20)
  --scenario NAME  slow-heads, big-heads, big-bodies, slow-bodies,
                   same-address or all (default all)";

const SCENARIOS: [&str; 5] = [
    "slow-heads",
    "big-heads",
    "big-bodies",
    "slow-bodies",
    "same-address",
];

/// The goal: every genuine delivery answered within this.
const GOAL: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
struct Options {
    connections: usize,
    seconds: f64,
    scenarios: Vec<&'static str>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        connections: 10_000,
        seconds: 20.0,
        scenarios: SCENARIOS.to_vec(),
    };
    for flag in measure::flags(args, USAGE) {
        match flag.name {
            "--connections" => options.connections = flag.count()?,
            "--seconds" => options.seconds = flag.seconds()?,
            "--scenario" if flag.value()? == "all" => options.scenarios = SCENARIOS.to_vec(),
            "--scenario" => {
                let value = flag.value()?;
                let scenario = SCENARIOS
                    .iter()
                    .find(|s| **s == value)
                    .ok_or_else(|| flag.invalid())?;
                options.scenarios = vec![scenario];
            }
            _ => return Err(flag.unknown()),
        }
    }
    Ok(options)
}

/// `cargo xtask flood`: builds the release binaries, then floods with them.
pub(crate) fn run(root: &std::path::Path, args: &[String]) -> Result<(), String> {
    parse(args)?;
    hotpath::release_then(root, "__flood", args)
}

/// `xtask __flood`: the flood itself.
pub(crate) fn measure(args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    let needed = options.connections + 256;
    let limit = open_files_limit().unwrap_or(0);
    if limit < needed {
        return Err(format!(
            "{} connections need about {needed} open files, and this shell allows {limit}: \
             raise it (ulimit -n {needed}) or pass fewer --connections",
            options.connections
        ));
    }
    measure::runtime(None)?.block_on(flood(options))
}

/// The soft limit of open files of this process, from `/proc`.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// The resident memory of `pid`, now and at its peak, in KiB.
pub(crate) fn memory_kib(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

struct Row {
    scenario: &'static str,
    attacker_opened: u64,
    attacker_closed: u64,
    delivered: usize,
    failures: usize,
    first_failure: Option<String>,
    p50: Duration,
    p99: Duration,
    max: Duration,
    /// The longest wait for a connection to be established: past a second,
    /// the SYN was dropped (a full accept queue) and sent again.
    connect_max: Duration,
    within_goal: usize,
    rss_before_kib: u64,
    rss_max_kib: u64,
}

async fn flood(options: Options) -> Result<(), String> {
    let body = hotpath::push_body()?;
    let (sandbox, path) = hotpath::start_receiver(&[]).await?;
    let receiver = hotpath::receiver_addr(&sandbox)?;
    let pid = sandbox
        .receiver_pid()
        .ok_or("the receiver is not running")?;
    let delivery = hotpath::github_delivery(&path, &body, hotpath::WEBHOOK_SECRET, true);
    let pids = [Some(std::process::id()), Some(pid)];

    let mut rows = Vec::new();
    let before = Load::sample(&pids);
    let started = Instant::now();
    // Without an attacker first, for comparison.
    rows.push(scenario(None, receiver, &delivery, pid, &options).await);
    for name in &options.scenarios {
        rows.push(scenario(Some(name), receiver, &delivery, pid, &options).await);
        // Let the receiver close what is left before the next scenario.
        tokio::time::sleep(Duration::from_secs(6)).await;
    }
    let elapsed = started.elapsed();
    let after = Load::sample(&pids);
    let (_, metrics) = sandbox
        .get_url(&format!("{}/metrics", sandbox.urls().metrics()))
        .await
        .map_err(|e| e.to_string())?;
    let (_, peak) = memory_kib(pid).unwrap_or_default();

    let mut report = String::new();
    let _ = writeln!(
        report,
        "| attack | attacker's connections opened (closed by the receiver) | genuine deliveries | answered 200 within {} s | latency p50 | p99 | max | of which connecting, max | receiver RSS before → max |",
        GOAL.as_secs()
    );
    let _ = writeln!(
        report,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    for row in &rows {
        let _ = writeln!(
            report,
            "| {} | {} ({}) | {} | {} | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} ms | {:.1} → {:.1} MiB |",
            row.scenario,
            row.attacker_opened,
            row.attacker_closed,
            row.delivered,
            row.within_goal,
            row.p50.as_secs_f64() * 1e3,
            row.p99.as_secs_f64() * 1e3,
            row.max.as_secs_f64() * 1e3,
            row.connect_max.as_secs_f64() * 1e3,
            row.rss_before_kib as f64 / 1024.0,
            row.rss_max_kib as f64 / 1024.0,
        );
    }
    print!("{report}");
    println!();
    println!(
        "Attacker: {} connections from 127.0.0.2 (127.0.0.1 for same-address); genuine: one signed \
         push every 100 ms for {:.0} s per attack, each on a new connection. Receiver peak RSS \
         (VmHWM) over the whole run: {:.1} MiB.",
        options.connections,
        options.seconds,
        peak as f64 / 1024.0
    );
    println!("{}", Load::describe(&before, &after, elapsed));
    println!("Receiver's connection series at the end:");
    for line in metrics.lines().filter(|l| {
        l.starts_with("fluxhook_receiver_connections_closed_total")
            || l.starts_with("fluxhook_receiver_open_connections")
    }) {
        println!("  {line}");
    }
    for row in &rows {
        if let Some(failure) = &row.first_failure {
            println!(
                "{}: {} deliveries failed, the first: {failure}",
                row.scenario, row.failures
            );
        }
    }
    Ok(())
}

/// Runs one attack (or none) while the genuine client delivers.
async fn scenario(
    name: Option<&'static str>,
    receiver: SocketAddr,
    delivery: &WireRequest,
    pid: u32,
    options: &Options,
) -> Row {
    let label = name.unwrap_or("none");
    eprintln!("flood: {label}");
    let rss_before_kib = memory_kib(pid).map_or(0, |(rss, _)| rss);
    let stop = Arc::new(AtomicBool::new(false));
    let opened = Arc::new(AtomicU64::new(0));
    let closed = Arc::new(AtomicU64::new(0));
    let mut attackers = Vec::new();
    if let Some(name) = name {
        let from = if name == "same-address" {
            "127.0.0.1"
        } else {
            "127.0.0.2"
        };
        for _ in 0..options.connections {
            let attack = Attack {
                name,
                from,
                receiver,
                stop: Arc::clone(&stop),
                opened: Arc::clone(&opened),
                closed: Arc::clone(&closed),
            };
            attackers.push(tokio::spawn(attack.run()));
        }
        // Until every attacker has connected once (bounded).
        let ramp = Instant::now();
        while opened.load(Ordering::Relaxed) < options.connections as u64
            && ramp.elapsed() < Duration::from_secs(30)
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        eprintln!(
            "  attacker connected {} times in {:.1} s",
            opened.load(Ordering::Relaxed),
            ramp.elapsed().as_secs_f64()
        );
    }

    let rss_max = Arc::new(AtomicU64::new(rss_before_kib));
    let sampling = {
        let (rss_max, stop) = (Arc::clone(&rss_max), Arc::clone(&stop));
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Some((rss, _)) = memory_kib(pid) {
                    rss_max.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };

    let mut latencies = Vec::new();
    let mut connect_max = Duration::ZERO;
    let mut failures = 0;
    let mut first_failure = None;
    let until = Instant::now() + Duration::from_secs_f64(options.seconds);
    let mut buffer = Vec::with_capacity(4096);
    while Instant::now() < until {
        let next = Instant::now() + Duration::from_millis(100);
        let started = Instant::now();
        let outcome = tokio::time::timeout(Duration::from_secs(15), async {
            let mut stream = TcpStream::connect(receiver)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            connect_max = connect_max.max(started.elapsed());
            exchange(&mut stream, delivery, &mut buffer).await
        })
        .await;
        let latency = started.elapsed();
        match outcome {
            Ok(Ok(200)) => latencies.push(latency),
            Ok(Ok(status)) => {
                failures += 1;
                first_failure.get_or_insert(format!("answered {status}"));
            }
            Ok(Err(error)) => {
                failures += 1;
                first_failure.get_or_insert(error);
            }
            Err(_) => {
                failures += 1;
                first_failure.get_or_insert("no answer within 15 s".to_owned());
            }
        }
        tokio::time::sleep_until(next.into()).await;
    }
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        let _ = attacker.await;
    }
    let _ = sampling.await;

    let delivered = latencies.len() + failures;
    let within_goal = latencies.iter().filter(|l| **l <= GOAL).count();
    latencies.sort_unstable();
    let micros: Vec<u32> = latencies
        .iter()
        .map(|l| u32::try_from(l.as_micros()).unwrap_or(u32::MAX))
        .collect();
    let at = |q| Duration::from_micros(u64::from(percentile(&micros, q)));
    Row {
        scenario: label,
        attacker_opened: opened.load(Ordering::Relaxed),
        attacker_closed: closed.load(Ordering::Relaxed),
        delivered,
        failures,
        first_failure,
        p50: at(0.5),
        p99: at(0.99),
        max: latencies.last().copied().unwrap_or_default(),
        connect_max,
        within_goal,
        rss_before_kib,
        rss_max_kib: rss_max.load(Ordering::Relaxed),
    }
}

/// One of the attacker's connections, kept as its scenario says and opened
/// again whenever the receiver closes it.
struct Attack {
    name: &'static str,
    from: &'static str,
    receiver: SocketAddr,
    stop: Arc<AtomicBool>,
    opened: Arc<AtomicU64>,
    closed: Arc<AtomicU64>,
}

impl Attack {
    async fn run(self) {
        while !self.stop.load(Ordering::Relaxed) {
            let Ok(mut stream) = self.connect().await else {
                // Out of ports or descriptors for a moment.
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            self.opened.fetch_add(1, Ordering::Relaxed);
            if self.hold(&mut stream).await.is_err() {
                self.closed.fetch_add(1, Ordering::Relaxed);
                // Not a busy loop if the receiver closes at once.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }

    async fn connect(&self) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        let from: SocketAddr = format!("{}:0", self.from)
            .parse()
            .map_err(std::io::Error::other)?;
        socket.bind(from)?;
        socket.connect(self.receiver).await
    }

    /// Keeps the connection as the scenario says, until the receiver
    /// closes it (an error) or the attack stops (`Ok`).
    async fn hold(&self, stream: &mut TcpStream) -> std::io::Result<()> {
        let head = "POST /hook/flood HTTP/1.1\r\nHost: 127.0.0.1\r\n";
        let (first, every, piece): (String, Duration, &[u8]) = match self.name {
            "big-heads" => (
                format!("{head}X-Padding: {}\r\n", "a".repeat(200 * 1024)),
                Duration::from_secs(2),
                b"X-More: a\r\n",
            ),
            "big-bodies" => (
                format!("{head}Content-Length: 67108864\r\n\r\n"),
                Duration::from_millis(100),
                &[b'a'; 1024],
            ),
            "slow-bodies" => (
                format!("{head}Content-Length: 3145728\r\n\r\n"),
                Duration::from_millis(100),
                &[b'a'; 1024],
            ),
            // slow-heads, same-address
            _ => (head.to_owned(), Duration::from_secs(2), b"X-More: a\r\n"),
        };
        stream.write_all(first.as_bytes()).await?;
        let mut scratch = [0u8; 1024];
        while !self.stop.load(Ordering::Relaxed) {
            // An answer or a close from the receiver ends this connection.
            match tokio::time::timeout(every, stream.read(&mut scratch)).await {
                Ok(Ok(0) | Err(_)) => return Err(std::io::ErrorKind::ConnectionAborted.into()),
                Ok(Ok(_)) => {}
                Err(_) => stream.write_all(piece).await?,
            }
        }
        Ok(())
    }
}
