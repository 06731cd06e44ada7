//! High availability and the drop-in modes, with the real binary against the fake
//! Kubernetes API and a fake GitHub: two replicas elect one writer, the other takes over
//! when the writer is killed (SIGKILL) while both keep answering webhooks, no hook is
//! created twice; beside notification-controller nothing is written on Receivers; the
//! arguments of notification-controller's own Deployment serve a Receiver.
//!
//! Replicas are told apart in the API server's request log by their User-Agent, which
//! names their argv\[0\] as client-go's does. Every wait is on a condition.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fluxhook_sandbox::{DEADLINE, Sandbox, demo};
use fluxhook_signature::Policy;
use fluxhook_test_apiserver::{RequestRecord, Verb};
use fluxhook_test_githost::{FakeHost, HostKind};
use http::{HeaderMap, HeaderValue, StatusCode};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};

const BINARY: &str = env!("CARGO_BIN_EXE_fluxhook-receiver");
const NS: &str = "flux-system";
const RECEIVER: &str = "github";
const TOKEN: &str = "s3cr3t-t0ken";
const LEASE: &str = "fluxhook-receiver-leader-election";
const RECEIVER_API: &str = "notification.toolkit.fluxcd.io/v1";

/// Leader election with short durations, so that a takeover takes seconds.
const ELECTION: [&str; 4] = [
    "--enable-leader-election",
    "--leader-election-lease-duration=2s",
    "--leader-election-renew-deadline=1s",
    "--leader-election-retry-period=200ms",
];

fn secret(name: &str, token: &str) -> Value {
    demo::token_secret(NS, name, token)
}

/// A github Receiver for the GitRepository `podinfo`, which asks for a hook on `host`.
fn seed(sandbox: &Sandbox, host: Option<&FakeHost>) {
    let annotations = match host {
        Some(host) => json!({
            "webhooks.fluxhook.io/url": "https://flux-webhook.example.com",
            "webhooks.fluxhook.io/access-token-secret": "github-token",
            "webhooks.fluxhook.io/provider": "github",
            "webhooks.fluxhook.io/api-url": host.api_base(),
        }),
        None => json!({}),
    };
    let url = host.map_or("https://github.com/org/podinfo".to_string(), |host| {
        format!("{}/{}/{}", host.url(), host.owner(), host.repo())
    });
    sandbox.apply(secret("webhook-token", TOKEN)).unwrap();
    if let Some(host) = host {
        sandbox.apply(secret("github-token", host.token())).unwrap();
    }
    sandbox
        .apply(json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "podinfo", "namespace": NS, "annotations": annotations},
            "spec": {"url": url, "interval": "10m"},
        }))
        .unwrap();
    sandbox
        .apply(demo::github_receiver(
            NS,
            RECEIVER,
            json!([{"kind": "GitRepository", "name": "podinfo"}]),
        ))
        .unwrap();
}

/// A signed GitHub push.
fn push() -> (HeaderMap, Vec<u8>) {
    let body = br#"{"ref": "refs/heads/main"}"#.to_vec();
    let (name, value) = Policy::HubSignature
        .signing_scheme()
        .sign(&body, TOKEN.as_bytes())
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("x-github-event", HeaderValue::from_static("push"));
    // As GitHub sends it (and go-github's ValidatePayload requires it, as Flux).
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert(name, value);
    (headers, body)
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = std::time::Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn lease_holder(sandbox: &Sandbox) -> Option<String> {
    let lease = sandbox.get("coordination.k8s.io/v1", "Lease", NS, LEASE)?;
    lease["spec"]["holderIdentity"].as_str().map(str::to_owned)
}

/// `leader_election_master_status` of fluxhook's Lease as the process serving
/// `metrics_url` exports it; `None` while it exports no such series.
async fn leader_status(sandbox: &Sandbox, metrics_url: &str) -> Option<i64> {
    let (_, text) = sandbox
        .get_url(&format!("{metrics_url}/metrics"))
        .await
        .unwrap();
    let series = format!(r#"leader_election_master_status{{name="{LEASE}"}} "#);
    text.lines()
        .find_map(|line| line.strip_prefix(&series)?.trim().parse().ok())
}

/// Waits until the process serving `metrics_url` exports `expected` as its leader status.
async fn wait_for_leader_status(sandbox: &Sandbox, metrics_url: &str, expected: i64) {
    let started = std::time::Instant::now();
    loop {
        let status = leader_status(sandbox, metrics_url).await;
        if status == Some(expected) {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{metrics_url} exports leader_election_master_status {status:?}, not {expected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn is_write(request: &RequestRecord) -> bool {
    matches!(
        request.verb,
        Some(Verb::Create | Verb::Update | Verb::Patch | Verb::Delete | Verb::DeleteCollection)
    )
}

fn resource(request: &RequestRecord) -> &str {
    request.target.as_ref().map_or("", |t| t.resource.as_str())
}

/// The writes a process made, by the start of its User-Agent (`<argv0>/`).
fn writes_by(sandbox: &Sandbox, agent: &str) -> Vec<RequestRecord> {
    sandbox
        .api()
        .requests()
        .all()
        .into_iter()
        .filter(is_write)
        .filter(|r| {
            r.user_agent
                .as_deref()
                .is_some_and(|ua| ua.starts_with(&format!("{agent}/")))
        })
        .collect()
}

fn last_handled(sandbox: &Sandbox) -> Option<String> {
    let receiver = sandbox.get(RECEIVER_API, "Receiver", NS, RECEIVER)?;
    receiver["status"]["lastHandledReconcileAt"]
        .as_str()
        .map(str::to_owned)
}

fn request_reconcile(sandbox: &Sandbox, at: &str) {
    sandbox
        .apply(json!({
            "apiVersion": RECEIVER_API, "kind": "Receiver",
            "metadata": {
                "name": RECEIVER, "namespace": NS,
                "annotations": {"reconcile.fluxcd.io/requestedAt": at},
            },
        }))
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_replica_writes_and_the_other_takes_over_when_it_is_killed() {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    let envs = [("RUNTIME_NAMESPACE", NS), ("HOSTNAME", "replica-a")];
    // Replica a is the sandbox's own process: its argv[0] is the binary's name.
    let mut sandbox = Sandbox::launch(BINARY, &ELECTION, &envs).await.unwrap();
    let a_agent = "fluxhook-receiver";
    seed(&sandbox, Some(&host));
    sandbox.wait_until_ready().await.unwrap();
    wait_for("a to lead", || {
        lease_holder(&sandbox).filter(|holder| holder.starts_with("replica-a_"))
    })
    .await;
    let path = sandbox.wait_for_webhook_path(NS, RECEIVER).await.unwrap();
    wait_for("a to register the hook", || {
        (host.hooks().len() == 1).then_some(())
    })
    .await;

    let mut b = sandbox
        .launch_replica(BINARY, "replica-b", &ELECTION, &[("RUNTIME_NAMESPACE", NS)])
        .await
        .unwrap();
    b.wait_until_ready().await.unwrap();
    // What the dashboard and the no-leader alert read: a leads, b does not.
    let a_metrics = sandbox.urls().metrics().to_owned();
    wait_for_leader_status(&sandbox, &a_metrics, 1).await;
    wait_for_leader_status(&sandbox, b.urls().metrics(), 0).await;

    // Both serve the Receiver; a reconcile request is handled, and written by a alone.
    let (headers, body) = push();
    let (status, _) = sandbox
        .post(&path, headers.clone(), body.clone())
        .await
        .unwrap();
    assert_eq!(status, StatusCode::OK, "a:\n{}", sandbox.receiver_log());
    let (status, _) = b.post(&path, headers.clone(), body.clone()).await.unwrap();
    assert_eq!(status, StatusCode::OK, "b:\n{}", b.log());
    let b_secret_reads = || {
        sandbox
            .api()
            .requests()
            .all()
            .iter()
            .filter(|r| r.verb == Some(Verb::Get) && resource(r) == "secrets")
            .filter(|r| b.sent(r.user_agent.as_deref()))
            .count()
    };
    let reads_before = b_secret_reads();
    request_reconcile(&sandbox, "first");
    wait_for("a to handle the request", || {
        (last_handled(&sandbox).as_deref() == Some("first")).then_some(())
    })
    .await;
    // b reconciled it too (it reads the Secret to serve it), and wrote nothing but the
    // webhook's trigger.
    wait_for("b to reconcile the request", || {
        (b_secret_reads() > reads_before).then_some(())
    })
    .await;
    let b_writes = writes_by(&sandbox, "replica-b");
    assert!(
        b_writes.iter().all(|w| resource(w) == "gitrepositories"),
        "the replica that does not lead wrote: {:?}",
        b_writes
            .iter()
            .map(|w| (&w.method, &w.path))
            .collect::<Vec<_>>()
    );
    let status_writers: Vec<RequestRecord> = sandbox
        .api()
        .requests()
        .all()
        .into_iter()
        .filter(|r| is_write(r) && resource(r) == "receivers")
        .collect();
    assert!(!status_writers.is_empty());
    assert!(
        status_writers.iter().all(|w| w
            .user_agent
            .as_deref()
            .is_some_and(|ua| ua.starts_with(&format!("{a_agent}/")))),
        "a Receiver write came from another process than the leader"
    );

    // Deliveries keep reaching b while a dies and b takes over.
    let delivering = Arc::new(AtomicBool::new(true));
    let answers = {
        let delivering = Arc::clone(&delivering);
        let url = format!("{}{path}", b.urls().receiver());
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut answers = Vec::new();
            while delivering.load(Ordering::Relaxed) {
                let answer = http
                    .post(&url)
                    .headers(headers.clone())
                    .body(body.clone())
                    .send()
                    .await
                    .map(|response| response.status().as_u16());
                answers.push(answer.map_err(|error| error.to_string()));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            answers
        })
    };

    sandbox.kill().await.unwrap();
    // From here on the fake GitHub hears from b alone.
    host.clear_requests();
    wait_for("b to lead", || {
        lease_holder(&sandbox).filter(|holder| holder.starts_with("replica-b_"))
    })
    .await;
    wait_for_leader_status(&sandbox, b.urls().metrics(), 1).await;
    // The new leader writes: a reconcile request is handled by b.
    request_reconcile(&sandbox, "second");
    wait_for("b to handle the request", || {
        (last_handled(&sandbox).as_deref() == Some("second")).then_some(())
    })
    .await;
    delivering.store(false, Ordering::Relaxed);
    let answers = answers.await.unwrap();
    assert!(!answers.is_empty());
    assert!(
        answers.iter().all(|answer| answer == &Ok(200)),
        "b answered during the failover: {answers:?}\n{}",
        b.log()
    );

    // b took the lease only once a's had expired (2 s after a's last renewal).
    let a_renewals = writes_by(&sandbox, a_agent)
        .into_iter()
        .filter(|w| resource(w) == "leases" && matches!(w.status, Some(200 | 201)))
        .filter_map(|w| serde_json::from_str::<Value>(&w.body).ok())
        .filter_map(|lease| {
            lease["spec"]["renewTime"]
                .as_str()?
                .parse::<Timestamp>()
                .ok()
        })
        .max()
        .unwrap();
    let lease = sandbox
        .get("coordination.k8s.io/v1", "Lease", NS, LEASE)
        .unwrap();
    let acquired: Timestamp = lease["spec"]["acquireTime"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(acquired >= a_renewals + Duration::from_secs(2), "{lease}");
    assert_eq!(lease["spec"]["leaseTransitions"], 1);

    // One hook, created once: b, leading, looked at the repository's hooks and found it
    // in place. Counted once b has exited, so that nothing it started is still on its way.
    wait_for("b to look at the hooks", || {
        host.requests()
            .iter()
            .any(|r| r.method == "GET" && r.path.contains("/hooks"))
            .then_some(())
    })
    .await;
    b.stop().await.unwrap();
    assert_eq!(host.hooks().len(), 1);
    assert!(
        host.writes().is_empty(),
        "b changed the hooks: {:?}",
        host.writes()
    );
    // Both ran as the deployed ServiceAccount, under deploy/base/rbac.yaml.
    assert_nothing_refused(&sandbox);
}

/// No request of the replicas (one ServiceAccount) was refused by the deployed RBAC.
fn assert_nothing_refused(sandbox: &Sandbox) {
    let refused: Vec<(String, String)> = sandbox
        .refused_requests()
        .into_iter()
        .map(|r| (r.method, r.path))
        .collect();
    assert!(
        refused.is_empty(),
        "refused by the deployed RBAC: {refused:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn beside_notification_controller_it_serves_and_writes_nothing_on_receivers() {
    let mut sandbox = Sandbox::launch(
        BINARY,
        &["--manage-receivers=false", "--enable-leader-election"],
        &[("RUNTIME_NAMESPACE", NS)],
    )
    .await
    .unwrap();
    seed(&sandbox, None);
    sandbox.wait_until_ready().await.unwrap();

    // Served at the path Flux computes, with no status written by fluxhook.
    let path = fluxhook_api::webhook_path(TOKEN, RECEIVER, NS);
    let (headers, body) = push();
    let (status, _) = wait_for_answer(&sandbox, path.as_str(), &headers, &body).await;
    assert_eq!(status, StatusCode::OK, "{}", sandbox.receiver_log());
    assert!(
        sandbox
            .requested_at(
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                NS,
                "podinfo"
            )
            .is_some()
    );

    let receiver = sandbox.get(RECEIVER_API, "Receiver", NS, RECEIVER).unwrap();
    assert_eq!(receiver["status"], Value::Null, "{receiver}");
    assert_eq!(
        receiver["metadata"]["finalizers"],
        Value::Null,
        "{receiver}"
    );
    let writes: Vec<(String, String)> = sandbox
        .api()
        .requests()
        .all()
        .into_iter()
        .filter(|r| is_write(r) && resource(r) != "gitrepositories")
        .map(|r| (r.method, r.path))
        .collect();
    // Nothing but the seed (which the test wrote directly, not through HTTP).
    assert!(writes.is_empty(), "{writes:?}");
    assert_eq!(
        leader_status(&sandbox, sandbox.urls().metrics()).await,
        None
    );
    assert!(sandbox.stop().await.unwrap().success());
    // Read once stopped: every line is written by then.
    assert!(sandbox.receiver_log().contains("no leader is elected"));
}

/// The first answer other than 404: the Receiver, created after the start, is served.
async fn wait_for_answer(
    sandbox: &Sandbox,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> (StatusCode, String) {
    let started = std::time::Instant::now();
    loop {
        let answer = sandbox
            .post(path, headers.clone(), body.to_vec())
            .await
            .unwrap();
        if answer.0 != StatusCode::NOT_FOUND {
            return answer;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the Receiver was never served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_arguments_of_notification_controllers_deployment_serve_a_receiver() {
    // fluxcd/notification-controller v1.9.3, config/manager/deployment.yaml: the
    // container's args, and RUNTIME_NAMESPACE from the downward API.
    let args = [
        "--watch-all-namespaces",
        "--log-level=info",
        "--log-encoding=json",
        "--enable-leader-election",
    ];
    let mut sandbox = Sandbox::launch(BINARY, &args, &[("RUNTIME_NAMESPACE", NS)])
        .await
        .unwrap();
    seed(&sandbox, None);
    sandbox.wait_until_ready().await.unwrap();
    let path = sandbox.wait_for_webhook_path(NS, RECEIVER).await.unwrap();
    let (headers, body) = push();
    let (status, _) = sandbox.post(&path, headers, body).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", sandbox.receiver_log());
    let holder = lease_holder(&sandbox).unwrap();
    assert!(!holder.is_empty());
    wait_for_leader_status(&sandbox, sandbox.urls().metrics(), 1).await;
    // Logs as Flux's: one JSON object per line.
    let log = sandbox.receiver_log();
    assert!(
        log.lines()
            .filter(|l| !l.is_empty())
            .all(|l| l.starts_with('{')),
        "{log}"
    );

    // SIGTERM releases the lease on the way out (release on cancel is Flux's default).
    assert!(sandbox.stop().await.unwrap().success());
    assert_eq!(lease_holder(&sandbox).as_deref(), Some(""));
    assert_nothing_refused(&sandbox);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_registration_off_no_git_host_is_called() {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    let mut sandbox = Sandbox::launch(BINARY, &["--enable-webhook-registration=false"], &[])
        .await
        .unwrap();
    // The GitRepository asks for a hook on the fake GitHub.
    seed(&sandbox, Some(&host));
    sandbox.wait_until_ready().await.unwrap();
    let path = sandbox.wait_for_webhook_path(NS, RECEIVER).await.unwrap();
    // A reconciliation registers before it writes the status: two of them have run once a
    // request is handled.
    request_reconcile(&sandbox, "again");
    wait_for("the request to be handled", || {
        (last_handled(&sandbox).as_deref() == Some("again")).then_some(())
    })
    .await;
    let (headers, body) = push();
    let (status, _) = sandbox.post(&path, headers, body).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", sandbox.receiver_log());

    assert!(
        host.requests().is_empty(),
        "the Git host was called: {:?}",
        host.requests()
    );
    let receiver = sandbox.get(RECEIVER_API, "Receiver", NS, RECEIVER).unwrap();
    let conditions = receiver["status"]["conditions"].as_array().unwrap();
    assert!(
        conditions.iter().all(|c| c["type"] != "WebhooksRegistered"),
        "{receiver}"
    );
    assert_eq!(
        receiver["metadata"]["finalizers"],
        json!(["finalizers.fluxcd.io"]),
        "{receiver}"
    );
    assert!(sandbox.stop().await.unwrap().success());
}
