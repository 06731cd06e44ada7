//! Project automation, reached as `cargo xtask <command>`.
//!
//! - `demo`: the whole flow without a cluster (the README's run command).
//! - `conformance`: the suite that checks fluxhook against the real payloads of
//!   `../shared/corpus` and Flux's CRDs in `../shared/flux-crds`.
//! - `bench`: runs the criterion benchmarks and prints their medians as a
//!   Markdown table, with ratios against the baseline measured in the same run.
//! - `fuzz`: runs the cargo-fuzz targets of `fuzz/` for a while each.
//! - `hotpath`: the release receiver against a minimal HMAC server, side by
//!   side under one load generator (see `hotpath.rs`).
//! - `flood`: genuine deliveries while a client floods the receiver with slow
//!   or oversized requests (see `flood.rs`).
//! - `scale`: the release receiver serving thousands of Receivers (see
//!   `scale.rs`).
//! - `faults`: a burst of deliveries while the API server fails and the
//!   receiver restarts, checked against the API server's patch log (see
//!   `faults.rs`).

mod bench;
mod demo;
mod faults;
mod flood;
mod fuzz;
mod hotpath;
mod hotpath_client;
mod hotpath_floor;
mod measure;
mod scale;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo [--once] show the whole flow without a cluster: a test Kubernetes API
                seeded with a GitRepository and a github Receiver, the real
                fluxhook-receiver serving it, a signed GitHub push, and the
                annotation it set; serves until Ctrl-C unless --once
  conformance   check parsers, verifiers and API types against ../shared
                (FLUXHOOK_CORPUS and FLUXHOOK_FLUX_CRDS override the folders)
  bench [CRITERION ARGS...]
                run the criterion benchmarks and print medians and ratios as
                Markdown tables; arguments go to criterion (a filter, timings),
                default: --warm-up-time 0.5 --measurement-time 1
  fuzz [--seconds N] [--cpu-seconds N] [TARGET...]
                run each fuzz target (payload, signature, cel, oidc, receiver,
                register, targeting; default all) for N seconds (default 60)
                and/or N seconds of the fuzzer's CPU time, one at a time, and
                print libFuzzer's figures; needs cargo-fuzz
  hotpath [--rounds N] [--seconds S] [--connections C]
                the release fluxhook-receiver against a floor server (hyper,
                HMAC-SHA256, constant-time compare) in alternating rounds under
                one load generator: a signed 7.3 KB GitHub push accepted, and
                refused for a wrong signature; prints medians and ratios
  flood [--connections N] [--seconds S] [--scenario NAME]
                genuine signed deliveries to the release fluxhook-receiver
                while one address floods it (slow heads, oversized heads or
                bodies); prints their latency and the receiver's memory
  scale [--receivers N] [--starts K] [--rounds R] [--seconds S]
                the release fluxhook-receiver started against N Receivers
                (default 10000) and their Secrets: time until all are served,
                its API requests by verb and resource, memory, and throughput
                against one Receiver beside a single-Receiver run
  faults [--clients N] [--deliveries D] [--seed S]
                a burst of deliveries from N senders (default 8 x 50) to
                fluxhook-receiver while the test API answers 429, 5xx or
                nothing, adds latency and drops watches, and the receiver
                restarts; prints the answers, violations (a 200 without a
                patch begun after the delivery, a failure other than 5xx) and
                the recovery time once the faults stop; fails on a violation";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("demo") => demo::run(&workspace_root(), &args[1..]),
        Some("conformance") => conformance(),
        Some("bench") => bench::run(&workspace_root(), &args[1..]),
        Some("fuzz") => fuzz::run(&workspace_root(), &args[1..]),
        Some("hotpath") => hotpath::run(&workspace_root(), &args[1..]),
        Some("flood") => flood::run(&workspace_root(), &args[1..]),
        Some("scale") => scale::run(&workspace_root(), &args[1..]),
        Some("faults") => faults::run(&workspace_root(), &args[1..]),
        // What those run from the release build.
        Some("__hotpath") => hotpath::measure(&args[1..]),
        Some("__floor") => hotpath_floor::run(&args[1..]),
        Some("__flood") => flood::measure(&args[1..]),
        Some("__scale") => scale::measure(&args[1..]),
        Some("-h" | "--help" | "help") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the conformance suite, after checking the shared folders are there so
/// that a missing one is reported once, clearly, instead of as test failures.
fn conformance() -> Result<(), String> {
    let root = workspace_root();
    let shared = root.parent().unwrap_or(Path::new("/")).join("shared");
    for (env, name) in [
        ("FLUXHOOK_CORPUS", "corpus"),
        ("FLUXHOOK_FLUX_CRDS", "flux-crds"),
    ] {
        let dir = std::env::var_os(env).map_or_else(|| shared.join(name), PathBuf::from);
        if !dir.is_dir() {
            return Err(format!(
                "the conformance suite needs {name}/ but {} does not exist: \
                 put the project's shared/ folder beside the repository or set {env}",
                dir.display()
            ));
        }
    }
    cargo(
        &root,
        &["test", "--package", "fluxhook-corpus", "--", "--nocapture"],
    )?;
    // The Receiver CRD deploy/overlays/standalone ships is Flux's, unmodified.
    cargo(
        &root,
        &[
            "test",
            "--package",
            "fluxhook-manifests",
            "--test",
            "conformance",
        ],
    )
}

fn cargo(root: &Path, args: &[&str]) -> Result<(), String> {
    cargo_with_stdout(root, args, Stdio::inherit())
}

fn cargo_with_stdout(root: &Path, args: &[&str], stdout: Stdio) -> Result<(), String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let status = Command::new(&cargo)
        .args(args)
        .stdout(stdout)
        .current_dir(root)
        .status()
        .map_err(|e| format!("cannot run {cargo}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` failed ({status})", args.join(" ")))
    }
}

fn workspace_root() -> PathBuf {
    // xtask/ sits at the top of the workspace.
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap_or(Path::new("."))
        .to_path_buf()
}
