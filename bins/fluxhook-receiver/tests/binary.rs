//! The real `fluxhook-receiver` binary against the fake Kubernetes API on
//! 127.0.0.1: it serves a Receiver end to end, reports ready, counts the
//! request, and exits 0 on SIGTERM; bad configurations exit 1.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use fluxhook_signature::Policy;
use fluxhook_test_apiserver::{ResourceType, TestApiServer};
use serde_json::{Value, json};
use tempfile::TempDir;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};

const BINARY: &str = env!("CARGO_BIN_EXE_fluxhook-receiver");
const TOKEN: &str = "s3cr3t-t0ken";
/// Bounds every wait, so a broken binary fails the test instead of hanging it.
const HANG_GUARD: Duration = Duration::from_secs(120);

/// The binary running against `api`, its stderr collected.
struct Running {
    child: Child,
    log: Arc<Mutex<String>>,
    receiver: String,
    health: String,
    metrics: String,
    http: reqwest::Client,
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

async fn cluster() -> (TestApiServer, TempDir) {
    let api = TestApiServer::start().await.unwrap();
    for resource in ResourceType::flux() {
        api.register(resource);
    }
    api.create(
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}),
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    api.write_kubeconfig(dir.path().join("kubeconfig")).unwrap();
    (api, dir)
}

fn start(dir: &TempDir, args: &[&str], env: &[(&str, &str)]) -> Running {
    let [receiver, health, metrics] = [free_port(), free_port(), free_port()];
    let mut child = Command::new(BINARY)
        .args([
            format!("--receiverAddr=127.0.0.1:{receiver}"),
            format!("--health-addr=127.0.0.1:{health}"),
            format!("--metrics-addr=127.0.0.1:{metrics}"),
            "--log-encoding=console".to_owned(),
        ])
        .args(args)
        .env("KUBECONFIG", dir.path().join("kubeconfig"))
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("RUNTIME_NAMESPACE")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let log = Arc::new(Mutex::new(String::new()));
    let mut stderr = child.stderr.take().unwrap();
    let collected = Arc::clone(&log);
    tokio::spawn(async move {
        let mut buffer = [0; 4096];
        while let Ok(read @ 1..) = stderr.read(&mut buffer).await {
            let text = String::from_utf8_lossy(&buffer[..read]).into_owned();
            collected.lock().unwrap().push_str(&text);
        }
    });
    Running {
        child,
        log,
        receiver: format!("http://127.0.0.1:{receiver}"),
        health: format!("http://127.0.0.1:{health}"),
        metrics: format!("http://127.0.0.1:{metrics}"),
        http: reqwest::Client::new(),
    }
}

impl Running {
    fn log(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    async fn wait_until<F, Fut>(&self, what: &str, mut done: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = bool>,
    {
        let waited = tokio::time::timeout(HANG_GUARD, async {
            while !done().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        assert!(waited.is_ok(), "{what}; log:\n{}", self.log());
    }

    async fn status_of(&self, url: String) -> Option<u16> {
        let response = self.http.get(url).send().await.ok()?;
        Some(response.status().as_u16())
    }

    /// Waits for the exit status.
    async fn exit_code(&mut self) -> i32 {
        let status = tokio::time::timeout(HANG_GUARD, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("the binary exits; log:\n{}", self.log()))
            .unwrap();
        status.code().unwrap_or(-1)
    }
}

fn seed(api: &TestApiServer) {
    api.create(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "podinfo", "namespace": "flux-system"},
        "spec": {"url": "https://github.com/org/podinfo", "interval": "10m"},
    }))
    .unwrap();
    api.create(json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "webhook-token", "namespace": "flux-system"},
        "data": {"token": base64::engine::general_purpose::STANDARD.encode(TOKEN)},
    }))
    .unwrap();
    api.create(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "github", "namespace": "flux-system"},
        "spec": {
            "type": "github",
            "events": ["push"],
            "secretRef": {"name": "webhook-token"},
            "resources": [{"kind": "GitRepository", "name": "podinfo"}],
        },
    }))
    .unwrap();
}

fn webhook_path(api: &TestApiServer) -> Option<String> {
    let receiver: Value = api
        .get(
            "notification.toolkit.fluxcd.io/v1",
            "Receiver",
            "flux-system",
            "github",
        )
        .ok()?;
    receiver["status"]["webhookPath"]
        .as_str()
        .map(str::to_owned)
}

#[tokio::test]
async fn serves_a_receiver_then_drains_and_exits_0_on_sigterm() {
    let (api, dir) = cluster().await;
    seed(&api);
    let mut running = start(&dir, &[], &[]);

    running
        .wait_until("ready", || async {
            running
                .status_of(format!("{}/readyz", running.health))
                .await
                == Some(200)
        })
        .await;
    assert_eq!(
        running
            .status_of(format!("{}/healthz", running.health))
            .await,
        Some(200)
    );
    running
        .wait_until("the Receiver has a webhook path", || async {
            webhook_path(&api).is_some()
        })
        .await;
    let path = webhook_path(&api).unwrap();

    let body = br#"{"ref": "refs/heads/main"}"#;
    let (name, value) = Policy::Github
        .signing_scheme()
        .sign(body, TOKEN.as_bytes())
        .unwrap();
    let response = running
        .http
        .post(format!("{}{path}", running.receiver))
        .header("X-GitHub-Event", "push")
        .header(name, value)
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "log:\n{}", running.log());
    let repo = api
        .get(
            "source.toolkit.fluxcd.io/v1",
            "GitRepository",
            "flux-system",
            "podinfo",
        )
        .unwrap();
    assert!(repo["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"].is_string());

    let metrics = running
        .http
        .get(format!("{}/metrics", running.metrics))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"fluxhook_receiver_requests_total{namespace="flux-system",name="github",type="github",code="200"} 1"#
        ),
        "{metrics}"
    );

    let pid = running.child.id().unwrap().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(killed.success());
    assert_eq!(running.exit_code().await, 0, "log:\n{}", running.log());
    let log = running.log();
    assert!(log.contains("shutting down"), "{log}");
    assert!(
        log.contains("resource 'GitRepository/podinfo.flux-system' annotated"),
        "{log}"
    );
    // Neither the token nor the webhook path (which is as good as a token
    // for path-only Receivers) is ever logged.
    assert!(!log.contains(TOKEN), "{log}");
    assert!(!log.contains(&path["/hook/".len()..]), "{log}");
}

#[tokio::test]
async fn a_single_namespace_needs_runtime_namespace() {
    let (_api, dir) = cluster().await;
    let mut running = start(&dir, &["--watch-all-namespaces=false"], &[]);
    assert_eq!(running.exit_code().await, 1);
    assert!(
        running.log().contains("RUNTIME_NAMESPACE"),
        "{}",
        running.log()
    );
}

#[tokio::test]
async fn a_single_namespace_serves_only_its_receivers() {
    let (api, dir) = cluster().await;
    seed(&api);
    let mut running = start(
        &dir,
        &["--watch-all-namespaces=false"],
        &[("RUNTIME_NAMESPACE", "elsewhere")],
    );
    running
        .wait_until("ready", || async {
            running
                .status_of(format!("{}/readyz", running.health))
                .await
                == Some(200)
        })
        .await;
    assert_eq!(webhook_path(&api), None, "flux-system is not watched");
    running.child.start_kill().unwrap();
    running.exit_code().await;
}

#[tokio::test]
async fn an_address_in_use_fails_the_start() {
    let (_api, dir) = cluster().await;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("--metrics-addr={}", taken.local_addr().unwrap());
    let mut running = start(&dir, &[&addr], &[]);
    assert_eq!(running.exit_code().await, 1);
    assert!(
        running.log().contains("cannot listen on"),
        "{}",
        running.log()
    );
}
