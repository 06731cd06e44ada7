//! The real `fluxhook-receiver` binary as an operator watches it: its JSON
//! log lines carry Flux's keys and never a webhook path, token or signature;
//! `/metrics` has the series docs/operations.md lists; a deleted Receiver's
//! series go with it.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::{Duration, Instant};

use fluxhook_sandbox::{Sandbox, demo};
use fluxhook_test_apiserver::{RequestMatcher, Verb};
use http::HeaderValue;
use serde_json::Value;

const BINARY: &str = env!("CARGO_BIN_EXE_fluxhook-receiver");
/// Bounds a wait that only a failure makes long.
const DEADLINE: Duration = fluxhook_sandbox::DEADLINE;

/// The series docs/operations.md lists, one sample name of each.
const DOCUMENTED: [&str; 28] = [
    "gotk_receiver_http_request_duration_seconds_bucket",
    "gotk_receiver_http_response_size_bytes_bucket",
    "gotk_receiver_http_requests_inflight",
    "fluxhook_receiver_requests_total",
    "fluxhook_receiver_request_duration_seconds_bucket",
    "fluxhook_receiver_open_connections",
    "controller_runtime_reconcile_total",
    "controller_runtime_reconcile_errors_total",
    "controller_runtime_reconcile_time_seconds_bucket",
    "controller_runtime_max_concurrent_reconciles",
    "controller_runtime_active_workers",
    "workqueue_depth",
    "workqueue_adds_total",
    "workqueue_queue_duration_seconds_bucket",
    "workqueue_work_duration_seconds_bucket",
    "workqueue_unfinished_work_seconds",
    "workqueue_longest_running_processor_seconds",
    "workqueue_retries_total",
    "gotk_reconcile_duration_seconds_bucket",
    "rest_client_requests_total",
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_virtual_memory_bytes",
    "process_virtual_memory_max_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_network_receive_bytes_total",
];

async fn metrics(sandbox: &Sandbox) -> String {
    let (status, text) = sandbox
        .get_url(&format!("{}/metrics", sandbox.urls().metrics()))
        .await
        .unwrap();
    assert_eq!(status, 200);
    text
}

fn has_sample(text: &str, name: &str) -> bool {
    text.lines()
        .any(|line| line.starts_with(&format!("{name}{{")) || line.starts_with(&format!("{name} ")))
}

#[tokio::test]
async fn logs_and_metrics_read_as_fluxs_tools_read_them() {
    let mut sandbox = Sandbox::launch(
        BINARY,
        &["--log-encoding=json", "--log-level=info", "--concurrent=7"],
        &[],
    )
    .await
    .unwrap();
    for object in demo::objects() {
        sandbox.apply(object).unwrap();
    }
    // And a Receiver whose spec cannot be served.
    let mut stalled = demo::objects()
        .into_iter()
        .find(|object| object["kind"] == "Receiver")
        .unwrap();
    stalled["metadata"]["name"] = "bad-filter".into();
    stalled["spec"]["resourceFilter"] = "res.metadata.name ==".into();
    sandbox.apply(stalled).unwrap();
    sandbox.wait_until_ready().await.unwrap();
    let path = sandbox
        .wait_for_webhook_path(demo::NAMESPACE, demo::RECEIVER)
        .await
        .unwrap();

    let delivery = demo::github_push();
    let signature = delivery.headers["x-hub-signature-256"]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, _) = sandbox
        .post(&path, delivery.headers.clone(), delivery.body.clone())
        .await
        .unwrap();
    assert_eq!(status, 200, "{}", sandbox.receiver_log());
    // A forged delivery, and one whose patch the API server refuses.
    let mut forged = delivery.headers.clone();
    forged.insert(
        "x-hub-signature-256",
        HeaderValue::from_static(
            "sha256=0000000000000000000000000000000000000000000000000000000000000000",
        ),
    );
    let (status, _) = sandbox
        .post(&path, forged, delivery.body.clone())
        .await
        .unwrap();
    assert_eq!(status, 400, "{}", sandbox.receiver_log());
    sandbox.api().faults().fail_next(
        1,
        500,
        RequestMatcher::any()
            .verb(Verb::Patch)
            .resource("gitrepositories"),
    );
    let (status, _) = sandbox
        .post(&path, delivery.headers.clone(), delivery.body.clone())
        .await
        .unwrap();
    assert_eq!(status, 500, "{}", sandbox.receiver_log());

    // As notification-controller's reconciler logs: a terminal configuration error at
    // error (which `flux logs --level=error` shows), a reconciliation that ends ready at
    // info. Logged after the status is written: waited for, as the webhook
    // lines are (written by a thread of their own, after the answer).
    let started = Instant::now();
    while ![
        "Reconciliation finished",
        "Reconciliation failed terminally",
        r#""code":200"#,
        r#""code":400"#,
        r#""code":500"#,
    ]
    .iter()
    .all(|message| sandbox.receiver_log().contains(message))
    {
        assert!(started.elapsed() < DEADLINE, "{}", sandbox.receiver_log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Logs: every line a JSON object with Flux's keys; no secret in any.
    let log = sandbox.receiver_log();
    let digest = path.rsplit('/').next().unwrap();
    for secret in [digest, demo::TOKEN, signature.as_str()] {
        assert!(!log.contains(secret), "the log holds {secret}:\n{log}");
    }
    let lines: Vec<serde_json::Map<String, Value>> = log
        .lines()
        .map(|line| match serde_json::from_str(line) {
            Ok(Value::Object(object)) => object,
            _ => panic!("not a JSON log line: {line}"),
        })
        .collect();
    for line in &lines {
        assert!(
            matches!(line["level"].as_str(), Some("error" | "info")),
            "{line:?}"
        );
        assert_eq!(line["ts"].as_str().map(str::len), Some(24), "{line:?}");
        assert!(line["msg"].is_string(), "{line:?}");
        for key in [
            "name",
            "namespace",
            "logger",
            "error",
            "controllerKind",
            "reconciler kind",
        ] {
            assert!(
                line.get(key).is_none_or(Value::is_string),
                "{key} in {line:?}"
            );
        }
    }
    let reconciled = lines.iter().find(|line| {
        line.get("controller") == Some(&Value::from("receiver"))
            && line.get("name") == Some(&Value::from(demo::RECEIVER))
    });
    let reconciled = reconciled.unwrap_or_else(|| panic!("no reconcile line:\n{log}"));
    assert_eq!(
        reconciled["controllerGroup"],
        "notification.toolkit.fluxcd.io"
    );
    assert_eq!(reconciled["controllerKind"], "Receiver");
    assert_eq!(reconciled["namespace"], demo::NAMESPACE);
    assert_eq!(reconciled["reconcileID"].as_str().map(str::len), Some(36));
    assert!(reconciled.get("logger").is_none());
    let reconcile_line = |name: &str, message: &str| {
        lines
            .iter()
            .find(|line| line["msg"] == message && line.get("name") == Some(&Value::from(name)))
            .unwrap_or_else(|| panic!("no line {message:?} of {name}:\n{log}"))
    };
    let terminal = reconcile_line(
        "bad-filter",
        "Reconciliation failed terminally due to configuration error",
    );
    assert_eq!(terminal["level"], "error");
    assert_eq!(terminal["controllerKind"], "Receiver");
    assert!(
        terminal["error"]
            .as_str()
            .is_some_and(|error| error.starts_with("invalid resourceFilter expression")),
        "{terminal:?}"
    );
    let finished = reconcile_line(demo::RECEIVER, "Reconciliation finished, next run in 10m0s");
    assert_eq!(finished["level"], "info");
    assert_eq!(finished["controller"], "receiver");
    let webhook: Vec<_> = lines
        .iter()
        .filter(|line| {
            line.get("logger") == Some(&Value::from("receiver-server"))
                && line.get("code").is_some()
        })
        .collect();
    for code in [200, 400, 500] {
        let line = webhook
            .iter()
            .find(|line| line["code"] == code)
            .unwrap_or_else(|| panic!("no webhook line with code {code}:\n{log}"));
        assert_eq!(line["name"], demo::RECEIVER);
        assert_eq!(line["namespace"], demo::NAMESPACE);
        assert_eq!(line["type"], "github");
        assert_eq!(line["reconciler kind"], "Receiver");
    }

    // Metrics: every documented series; no path.
    let text = metrics(&sandbox).await;
    assert!(!text.contains(digest), "the metrics hold the webhook path");
    for name in DOCUMENTED {
        assert!(has_sample(&text, name), "{name} not exported:\n{text}");
    }
    assert!(text.contains(r#"code="500",method="PATCH""#), "{text}");
    // And the converse: every family exported is in docs/operations.md.
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/operations.md"
    ))
    .unwrap();
    for family in text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|line| line.split(' ').next())
    {
        assert!(
            guide.contains(&format!("`{family}")),
            "{family} is exported but docs/operations.md does not list it"
        );
    }
    // --concurrent reaches the controller, as controller-runtime reports it.
    assert!(
        text.contains(r#"controller_runtime_max_concurrent_reconciles{controller="receiver"} 7"#),
        "{text}"
    );

    // Deleting the Receiver removes its series.
    let path = format!(
        "/apis/{}/namespaces/{}/receivers/{}",
        demo::RECEIVER_API_VERSION,
        demo::NAMESPACE,
        demo::RECEIVER
    );
    let deleted = sandbox.delete(&path).await.unwrap();
    assert!(deleted.is_success(), "{deleted}");
    let started = Instant::now();
    let receiver_label = format!(r#"name="{}""#, demo::RECEIVER);
    loop {
        let text = metrics(&sandbox).await;
        let left: Vec<&str> = text
            .lines()
            .filter(|line| line.contains(&receiver_label) && !line.starts_with('#'))
            .collect();
        if left.is_empty() {
            break;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "series left after deleting the Receiver:\n{}",
            left.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    sandbox.stop().await.unwrap();
}
