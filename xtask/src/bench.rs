//! `cargo xtask bench`: runs the criterion benchmarks and reports medians.
//!
//! Every benchmark of the workspace names its input as the function id (the
//! corpus file, e.g. `github/push.json`); the group `baseline_hmac_sha256`
//! measures plain HMAC-SHA256 over the same bytes. Ratios are taken against
//! that baseline from the same run, so a noisy machine shifts both sides.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use fluxhook_corpus::BASELINE_GROUP;
use serde::Deserialize;

#[derive(Deserialize)]
struct BenchmarkJson {
    group_id: String,
    function_id: Option<String>,
    throughput: Option<Throughput>,
}

/// Criterion's externally tagged throughput; element counts are not reported.
#[derive(Deserialize)]
struct Throughput {
    #[serde(rename = "Bytes", alias = "BytesDecimal")]
    bytes: Option<u64>,
}

#[derive(Deserialize)]
struct Estimates {
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
}

struct Measurement {
    group: String,
    input: String,
    median_ns: f64,
    bytes: Option<u64>,
}

/// Criterion's settings unless the caller gives its own: hundreds of inputs
/// at criterion's default 8 s each would take hours; 1.5 s each is enough
/// for microsecond-scale medians.
const DEFAULT_CRITERION_ARGS: [&str; 4] = ["--warm-up-time", "0.5", "--measurement-time", "1"];

pub(crate) fn run(root: &Path, criterion_args: &[String]) -> Result<(), String> {
    let started = SystemTime::now();
    let packages = packages_with_benches(root)?;
    let mut args = vec!["bench"];
    for package in &packages {
        args.extend(["--package", package.as_str()]);
    }
    // `--benches` would also run each library's unit tests in bench mode.
    args.extend(["--bench", "*", "--"]);
    if criterion_args.is_empty() {
        args.extend(DEFAULT_CRITERION_ARGS);
    } else {
        args.extend(criterion_args.iter().map(String::as_str));
    }
    // Criterion's progress goes to stderr, so stdout holds only the tables.
    super::cargo_with_stdout(root, &args, std::process::Stdio::from(std::io::stderr()))?;
    let measurements = collect(&root.join("target/criterion"), started)?;
    if measurements.is_empty() {
        return Err("the benchmarks ran but wrote no results under target/criterion".into());
    }
    print!("{}", render(&measurements));
    Ok(())
}

/// The workspace packages that have benchmarks. Naming them, rather than
/// `--workspace`, keeps a package without benchmarks from being built.
fn packages_with_benches(root: &Path) -> Result<Vec<String>, String> {
    #[derive(Deserialize)]
    struct Metadata {
        packages: Vec<Package>,
    }
    #[derive(Deserialize)]
    struct Package {
        name: String,
        targets: Vec<Target>,
    }
    #[derive(Deserialize)]
    struct Target {
        kind: Vec<String>,
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let output = std::process::Command::new(&cargo)
        .args(["metadata", "--no-deps", "--format-version", "1"])
        .current_dir(root)
        .output()
        .map_err(|e| format!("cannot run {cargo} metadata: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let metadata: Metadata = serde_json::from_slice(&output.stdout)
        .map_err(|e| format!("cargo metadata printed something unexpected: {e}"))?;
    Ok(metadata
        .packages
        .into_iter()
        .filter(|p| {
            p.targets
                .iter()
                .any(|t| t.kind.iter().any(|k| k == "bench"))
        })
        .map(|p| p.name)
        .collect())
}

/// Reads the results criterion wrote since `since`, so stale runs are left out.
fn collect(dir: &Path, since: SystemTime) -> Result<Vec<Measurement>, String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(listing) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in listing.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.ends_with("new/benchmark.json") && modified_since(&path, since) {
                found.push(read_measurement(&path)?);
            }
        }
    }
    found.sort_by(|a, b| (&a.input, &a.group).cmp(&(&b.input, &b.group)));
    Ok(found)
}

fn modified_since(path: &Path, since: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since)
}

fn read_measurement(benchmark_json: &Path) -> Result<Measurement, String> {
    let benchmark: BenchmarkJson = read_json(benchmark_json)?;
    let estimates: Estimates = read_json(&benchmark_json.with_file_name("estimates.json"))?;
    let bytes = benchmark.throughput.and_then(|t| t.bytes);
    Ok(Measurement {
        group: benchmark.group_id,
        input: benchmark.function_id.unwrap_or_default(),
        median_ns: estimates.median.point_estimate,
        bytes,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, String> {
    let text = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    serde_json::from_slice(&text).map_err(|e| format!("{} is malformed: {e}", path.display()))
}

/// A summary per benchmark group, then every measurement.
fn render(measurements: &[Measurement]) -> String {
    let baseline: BTreeMap<&str, f64> = measurements
        .iter()
        .filter(|m| m.group == BASELINE_GROUP)
        .map(|m| (m.input.as_str(), m.median_ns))
        .collect();
    let mut out = render_summary(measurements, &baseline);
    out.push_str(
        "\n| input | benchmark | median | throughput | × baseline HMAC-SHA256 |\n\
         | --- | --- | ---: | ---: | ---: |\n",
    );
    for m in measurements {
        let throughput = m.bytes.map_or_else(String::new, |b| {
            // bytes per nanosecond is GB/s; report MiB/s.
            format!(
                "{:.0} MiB/s",
                b as f64 / m.median_ns * 1e9 / (1024.0 * 1024.0)
            )
        });
        let ratio = baseline
            .get(m.input.as_str())
            .map_or_else(String::new, |base| format!("{:.2}", m.median_ns / base));
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            m.input,
            m.group,
            human_duration(m.median_ns),
            throughput,
            ratio
        ));
    }
    out
}

/// The medians of one summary row's inputs, and their ratios to the baseline.
#[derive(Default)]
struct Samples {
    medians: Vec<f64>,
    ratios: Vec<f64>,
}

/// Per provider (the input's folder) and group: how many inputs, the median
/// of their medians, and the median (with range) of their ratios to the
/// baseline on the same input.
fn render_summary(measurements: &[Measurement], baseline: &BTreeMap<&str, f64>) -> String {
    let mut groups: BTreeMap<(&str, &str), Samples> = BTreeMap::new();
    for m in measurements.iter().filter(|m| m.group != BASELINE_GROUP) {
        let provider = m.input.split_once('/').map_or("", |(folder, _)| folder);
        let samples = groups.entry((provider, m.group.as_str())).or_default();
        samples.medians.push(m.median_ns);
        if let Some(base) = baseline.get(m.input.as_str()) {
            samples.ratios.push(m.median_ns / base);
        }
    }
    let mut out = String::from(
        "| provider | benchmark | inputs | median time | × baseline: median (min–max) |\n\
         | --- | --- | ---: | ---: | --- |\n",
    );
    for (
        (provider, group),
        Samples {
            mut medians,
            mut ratios,
        },
    ) in groups
    {
        let ratio = if ratios.is_empty() {
            String::new()
        } else {
            let (min, max) = (min_of(&ratios), max_of(&ratios));
            format!("{:.2} ({min:.2}–{max:.2})", median(&mut ratios))
        };
        out.push_str(&format!(
            "| {provider} | {group} | {} | {} | {ratio} |\n",
            medians.len(),
            human_duration(median(&mut medians)),
        ));
    }
    out
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn min_of(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max_of(values: &[f64]) -> f64 {
    values.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn human_duration(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}
