//! The operator's view of the metrics: the Grafana dashboard and the alert
//! rules of docs/operations.md query only series the process exports, and
//! the number of series for 10,000 Receivers is the one stated there.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use serde_json::Value;

use super::*;
use crate::metrics::HttpMethod;
use crate::server::{CloseReason, ConnectionObserver};
use crate::{Metrics, ReceiverKey};

/// The repository's top.
fn repository() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[derive(Debug, thiserror::Error)]
#[error("failed")]
struct Failed;

/// Reconciles the Receiver `key` once through the controller's wrapper, as
/// the controller does.
async fn reconcile(runtime: &RuntimeMetrics, key: &ReceiverKey, ok: bool) {
    let resource = ApiResource::erase::<fluxhook_api::Receiver>(&());
    let object = Arc::new(DynamicObject::new(&key.name, &resource).within(&key.namespace));
    let mut reconciler =
        runtime
            .controller
            .reconciler(move |_: Arc<DynamicObject>, _: Arc<()>| async move {
                if ok {
                    Ok(Action::requeue(Duration::from_secs(600)))
                } else {
                    Err(Failed)
                }
            });
    let _ = reconciler(object, Arc::new(())).await;
}

/// Every series of a running process: each family has at least one sample.
async fn exercised() -> Metrics {
    let runtime = RuntimeMetrics::new();
    let mut metrics = Metrics::new();
    runtime.register(metrics.registry_mut());
    let key = ReceiverKey {
        namespace: "flux-system".into(),
        name: "github".into(),
    };
    reconcile(&runtime, &key, true).await;
    reconcile(&runtime, &key, false).await;
    runtime
        .controller
        .set_leader("fluxhook-receiver-leader-election", true);
    let layer = runtime
        .client
        .layer(&"https://10.96.0.1:443".parse().unwrap());
    let service = tower::Layer::layer(
        &layer,
        tower::service_fn(|_: http::Request<()>| async {
            Ok::<_, std::convert::Infallible>(http::Response::new(()))
        }),
    );
    tower::ServiceExt::oneshot(service, http::Request::patch("/").body(()).unwrap())
        .await
        .unwrap();
    metrics.observe_request(&key, "github", 200, Duration::from_millis(20));
    metrics.observe_request(&key, "github", 500, Duration::from_millis(20));
    metrics.observe_unmatched(404);
    metrics.observe_http(
        HttpMethod::of(&http::Method::POST),
        200,
        0,
        Duration::from_millis(20),
    );
    metrics.open_changed(1);
    metrics.closed(CloseReason::Evicted);
    metrics
}

/// The series of an exposition: each sample's name with its label names.
fn series_of(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap();
        let labels = series.entry(line[..name_end].to_owned()).or_default();
        if line[name_end..].starts_with('{') {
            let close = line.rfind('}').unwrap();
            for pair in split_labels(&line[name_end + 1..close]) {
                labels.insert(pair.split('=').next().unwrap().to_owned());
            }
        }
    }
    series
}

/// `a="x",b="y,z"` into its pairs (values may hold commas).
fn split_labels(text: &str) -> Vec<&str> {
    let mut pairs = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (at, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            ',' if !quoted => {
                pairs.push(&text[start..at]);
                start = at + 1;
            }
            _ => {}
        }
    }
    if start < text.len() {
        pairs.push(&text[start..]);
    }
    pairs
}

/// The labels Prometheus adds to every series scraped through a
/// PodMonitor, and those Grafana and histograms use.
const TARGET_LABELS: [&str; 6] = [
    "namespace",
    "pod",
    "container",
    "endpoint",
    "job",
    "instance",
];

/// The series Prometheus writes for each scraped target.
const SYNTHETIC: [&str; 1] = ["up"];

/// A metric selector of a PromQL expression: its name and the labels it
/// matches on.
#[derive(Debug)]
struct Selector {
    metric: String,
    labels: Vec<String>,
}

/// What a PromQL expression refers to.
#[derive(Debug, Default)]
struct Query {
    selectors: Vec<Selector>,
    /// Labels of `by`, `without`, `on`, `ignoring`, `group_left`,
    /// `group_right`.
    grouping: Vec<String>,
}

/// PromQL's aggregation operators and keywords that are not metrics.
const KEYWORDS: [&str; 22] = [
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "topk",
    "bottomk",
    "quantile",
    "stddev",
    "stdvar",
    "count_values",
    "group",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "limitk",
];
const GROUPING: [&str; 6] = [
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Reads the selectors and grouping labels of a PromQL expression with
/// Grafana's variables in it. Enough of PromQL for dashboards and alert
/// rules: strings, ranges, functions, aggregations, binary operators.
fn parse_promql(expr: &str) -> Query {
    let chars: Vec<char> = expr.chars().collect();
    let mut query = Query::default();
    let mut at = 0;
    let ident_start = |c: char| c.is_ascii_alphabetic() || c == '_' || c == ':';
    let ident_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let skip_space = |at: &mut usize| {
        while *at < chars.len() && chars[*at].is_whitespace() {
            *at += 1;
        }
    };
    let read_ident = |at: &mut usize| {
        let start = *at;
        while *at < chars.len() && ident_char(chars[*at]) {
            *at += 1;
        }
        chars[start..*at].iter().collect::<String>()
    };
    let skip_string = |at: &mut usize| {
        let quote = chars[*at];
        *at += 1;
        while *at < chars.len() && chars[*at] != quote {
            if chars[*at] == '\\' {
                *at += 1;
            }
            *at += 1;
        }
        *at += 1;
    };
    while at < chars.len() {
        let c = chars[at];
        if c == '"' || c == '\'' || c == '`' {
            skip_string(&mut at);
        } else if c == '[' {
            while at < chars.len() && chars[at] != ']' {
                at += 1;
            }
            at += 1;
        } else if c == '$' {
            at += 1;
            if at < chars.len() && chars[at] == '{' {
                while at < chars.len() && chars[at] != '}' {
                    at += 1;
                }
                at += 1;
            } else {
                read_ident(&mut at);
            }
        } else if c.is_ascii_digit()
            || (c == '.' && chars.get(at + 1).is_some_and(char::is_ascii_digit))
        {
            while at < chars.len() && (chars[at].is_ascii_alphanumeric() || chars[at] == '.') {
                at += 1;
            }
        } else if c == '{' {
            panic!("a selector without a metric name in {expr}");
        } else if ident_start(c) {
            let ident = read_ident(&mut at);
            let mut next = at;
            skip_space(&mut next);
            let paren = chars.get(next) == Some(&'(');
            if GROUPING.contains(&ident.as_str()) {
                if paren {
                    at = next + 1;
                    loop {
                        skip_space(&mut at);
                        match chars.get(at) {
                            Some(')') | None => break,
                            Some(',') => at += 1,
                            Some(_) => query.grouping.push(read_ident(&mut at)),
                        }
                    }
                    at += 1;
                }
            } else if paren || KEYWORDS.contains(&ident.as_str()) {
                // A function or an aggregation.
            } else {
                let mut selector = Selector {
                    metric: ident,
                    labels: Vec::new(),
                };
                if chars.get(next) == Some(&'{') {
                    at = next + 1;
                    loop {
                        skip_space(&mut at);
                        match chars.get(at) {
                            Some('}') | None => break,
                            Some('"' | '\'' | '`') => skip_string(&mut at),
                            Some(c) if ident_start(*c) => selector.labels.push(read_ident(&mut at)),
                            Some(_) => at += 1,
                        }
                    }
                    at += 1;
                }
                query.selectors.push(selector);
            }
        } else {
            at += 1;
        }
    }
    query
}

/// Checks `expr` against the exported `series`: every selector names a
/// series; every label it matches on or groups by is one of the series' own
/// (as scraped: a label Prometheus also sets on the target is renamed
/// `exported_<label>`) or one Prometheus adds; every `{{label}}` of
/// `legend` is one the result keeps. The problems found.
fn check(expr: &str, legend: &str, series: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let query = parse_promql(expr);
    let mut problems = Vec::new();
    if query.selectors.is_empty() {
        problems.push(format!("no series in {expr}"));
    }
    let mut available: BTreeSet<String> = TARGET_LABELS.iter().map(|l| l.to_string()).collect();
    let no_labels = BTreeSet::new();
    for selector in &query.selectors {
        // Prometheus' own series of each target.
        let synthetic = SYNTHETIC
            .contains(&selector.metric.as_str())
            .then_some(&no_labels);
        let Some(own) = series.get(&selector.metric).or(synthetic) else {
            problems.push(format!("{} is not exported ({expr})", selector.metric));
            continue;
        };
        let scraped: BTreeSet<String> = own
            .iter()
            .map(|label| {
                if TARGET_LABELS.contains(&label.as_str()) {
                    format!("exported_{label}")
                } else {
                    label.clone()
                }
            })
            .collect();
        for label in &selector.labels {
            if !scraped.contains(label) && !TARGET_LABELS.contains(&label.as_str()) {
                problems.push(format!("{} has no label {label} ({expr})", selector.metric));
            }
        }
        available.extend(scraped);
    }
    for label in &query.grouping {
        if !available.contains(label) {
            problems.push(format!("no series of {expr} has the label {label}"));
        }
    }
    let mut rest = legend;
    while let Some(start) = rest.find("{{") {
        let end = rest[start..].find("}}").map_or(rest.len(), |e| start + e);
        let label = rest[start + 2..end].trim();
        let kept = if query.grouping.is_empty() {
            available.contains(label)
        } else {
            query.grouping.iter().any(|g| g == label)
        };
        if !kept {
            problems.push(format!(
                "the legend {legend} names {label}, which {expr} does not keep"
            ));
        }
        rest = &rest[end..];
    }
    problems
}

#[test]
fn the_promql_reader_finds_selectors_and_labels() {
    let query = parse_promql(
        r#"histogram_quantile(0.99, sum by (le, name) (rate(x_bucket{namespace=~"$ns",code!~"2.."}[$__rate_interval]))) / on(pod) group_left y > 0.5"#,
    );
    let metrics: Vec<&str> = query.selectors.iter().map(|s| s.metric.as_str()).collect();
    assert_eq!(metrics, ["x_bucket", "y"]);
    assert_eq!(query.selectors[0].labels, ["namespace", "code"]);
    assert_eq!(query.grouping, ["le", "name", "pod"]);
    let series = BTreeMap::from([
        (
            "x_bucket".to_string(),
            BTreeSet::from(["le".to_string(), "name".to_string()]),
        ),
        ("y".to_string(), BTreeSet::new()),
    ]);
    assert!(check(r#"sum by (name) (x_bucket{name="a"})"#, "{{name}}", &series).is_empty());
    assert_eq!(check(r#"sum(z{name="a"})"#, "", &series).len(), 1);
    assert_eq!(check(r#"sum(x_bucket{code="a"})"#, "", &series).len(), 1);
    assert_eq!(check(r#"sum by (code) (y)"#, "", &series).len(), 1);
    assert_eq!(
        check(r#"sum by (name) (x_bucket)"#, "{{pod}}", &series).len(),
        1
    );
}

/// Every query of the dashboard: each target's expression with its legend,
/// and the variables' `label_values(selector, label)`.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    fn walk(panel: &Value, queries: &mut Vec<(String, String)>) {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                target["expr"].as_str().unwrap().to_owned(),
                target["legendFormat"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            ));
        }
        for inner in panel["panels"].as_array().into_iter().flatten() {
            walk(inner, queries);
        }
    }
    for panel in dashboard["panels"].as_array().unwrap() {
        walk(panel, &mut queries);
    }
    for variable in dashboard["templating"]["list"].as_array().unwrap() {
        if variable["type"] == "query" {
            let query = variable["query"]["query"].as_str().unwrap();
            let inner = query
                .strip_prefix("label_values(")
                .and_then(|q| q.strip_suffix(')'))
                .unwrap();
            let (selector, label) = inner.rsplit_once(',').unwrap();
            queries.push((selector.to_owned(), format!("{{{{{}}}}}", label.trim())));
        }
    }
    queries
}

#[tokio::test]
async fn the_dashboard_queries_only_exported_series() {
    let series = series_of(&exercised().await.encode());
    let dir = repository().join("deploy/dashboards");
    let mut dashboards = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        dashboards += 1;
        let dashboard: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let queries = dashboard_queries(&dashboard);
        assert!(
            queries.len() > 20,
            "{}: {} queries",
            path.display(),
            queries.len()
        );
        let problems: Vec<String> = queries
            .iter()
            .flat_map(|(expr, legend)| check(expr, legend, &series))
            .collect();
        assert!(
            problems.is_empty(),
            "{}:\n{}",
            path.display(),
            problems.join("\n")
        );
        // Panels the issue asks for.
        let exprs: String = queries.iter().map(|(e, _)| e.as_str()).collect();
        for needed in [
            "fluxhook_receiver_requests_total",
            "fluxhook_receiver_request_duration_seconds_bucket",
            "controller_runtime_reconcile_errors_total",
            "leader_election_master_status",
            r#"method="PATCH""#,
        ] {
            assert!(
                exprs.contains(needed),
                "{} shows no {needed}",
                path.display()
            );
        }
    }
    assert_eq!(dashboards, 1);
}

/// The `expr` of every rule of the PrometheusRule examples (```yaml blocks)
/// of docs/operations.md.
fn documented_alerts() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(repository().join("docs/operations.md")).unwrap();
    let mut alerts = Vec::new();
    for block in doc.split("```yaml\n").skip(1) {
        let yaml = block.split("```").next().unwrap();
        let rule: serde_json::Value = serde_yaml_ng::from_str(yaml).unwrap();
        if rule["kind"] != "PrometheusRule" {
            continue;
        }
        for group in rule["spec"]["groups"].as_array().unwrap() {
            for rule in group["rules"].as_array().unwrap() {
                alerts.push((
                    rule["alert"].as_str().unwrap().to_owned(),
                    rule["expr"].as_str().unwrap().to_owned(),
                ));
            }
        }
    }
    alerts
}

#[tokio::test]
async fn the_documented_alerts_query_only_exported_series() {
    let series = series_of(&exercised().await.encode());
    let alerts = documented_alerts();
    let names: Vec<&str> = alerts.iter().map(|(name, _)| name.as_str()).collect();
    for needed in [
        "FluxhookDeliveriesFailing",
        "FluxhookPatchesFailing",
        "FluxhookNoLeader",
        "FluxhookReconcileErrors",
    ] {
        assert!(names.contains(&needed), "{needed} not in {names:?}");
    }
    let problems: Vec<String> = alerts
        .iter()
        .flat_map(|(_, expr)| check(expr, "", &series))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// The bound docs/operations.md states on the series that do not depend on
/// Receivers (the process's, the controller's, the queue's; the webhook
/// server's by method and code come on top, bounded by those).
const FIXED_BOUND: usize = 200;

/// The Receivers of the cardinality test.
const RECEIVERS: usize = 10_000;

#[tokio::test]
async fn series_grow_by_the_documented_number_per_receiver_and_go_with_it() {
    // Wired as the binary wires them.
    let runtime = RuntimeMetrics::new();
    let mut metrics = Metrics::new();
    runtime.register(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    runtime.controller.on_forget({
        let metrics = Arc::clone(&metrics);
        move |key| metrics.forget_receiver(key)
    });
    let samples = |metrics: &Metrics| {
        metrics
            .encode()
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .count()
    };
    let fixed = samples(&metrics);
    assert!(fixed < FIXED_BOUND, "{fixed} series without Receivers");

    let keys: Vec<ReceiverKey> = (0..RECEIVERS)
        .map(|i| ReceiverKey {
            namespace: format!("team-{}", i % 100),
            name: format!("receiver-{i}"),
        })
        .collect();
    for key in &keys {
        reconcile(&runtime, key, true).await;
        metrics.observe_request(key, "github", 200, Duration::from_millis(5));
    }
    let per_receiver = documented_series_per_receiver(1);
    assert_eq!(samples(&metrics), fixed + RECEIVERS * per_receiver);

    // Every Receiver answered with a second code: one series more each.
    for key in &keys {
        metrics.observe_request(key, "github", 400, Duration::from_millis(5));
    }
    assert_eq!(
        samples(&metrics),
        fixed + RECEIVERS * documented_series_per_receiver(2)
    );

    // Deleted Receivers take their series with them.
    for key in &keys[..RECEIVERS / 2] {
        runtime.controller.forget(key);
    }
    let text = metrics.encode();
    assert!(!text.contains(r#"name="receiver-0""#));
    assert!(text.contains(&format!(r#"name="receiver-{}""#, RECEIVERS - 1)));
    assert_eq!(
        samples(&metrics),
        fixed + RECEIVERS / 2 * documented_series_per_receiver(2)
    );
}

/// The series of one Receiver answered with `codes` status codes, as
/// docs/operations.md states it: `gotk_reconcile_duration_seconds` (10
/// buckets, `+Inf`, `_sum`, `_count`), `fluxhook_receiver_request_duration_seconds`
/// (14 buckets, `+Inf`, `_sum`, `_count`) and one
/// `fluxhook_receiver_requests_total` per code.
fn documented_series_per_receiver(codes: usize) -> usize {
    let doc = std::fs::read_to_string(repository().join("docs/operations.md")).unwrap();
    assert!(
        doc.contains("30 + c series per Receiver")
            && doc.contains("10,000 × 31 = **310,000 series**"),
        "docs/operations.md states the series per Receiver as 30 + c"
    );
    assert!(doc.contains(&format!("fewer than {FIXED_BOUND}")));
    30 + codes
}
