//! The real `fluxhook-receiver` binary against the fake Kubernetes API on
//! 127.0.0.1: it serves a Receiver end to end, reports ready, counts the
//! request, and exits 0 on SIGTERM; bad configurations exit 1.
#![allow(clippy::unwrap_used, clippy::panic)]

use fluxhook_sandbox::{Sandbox, demo};
use fluxhook_signature::Policy;
use fluxhook_test_apiserver::fixtures;
use http::{HeaderMap, HeaderValue};
use serde_json::json;

const BINARY: &str = env!("CARGO_BIN_EXE_fluxhook-receiver");
const TOKEN: &str = "s3cr3t-t0ken";

/// A github Receiver for the GitRepository `podinfo`, with its Secret.
fn seed(sandbox: &Sandbox) {
    sandbox
        .apply(fixtures::git_repository(
            "flux-system",
            "podinfo",
            json!({}),
        ))
        .unwrap();
    sandbox
        .apply(demo::token_secret("flux-system", "webhook-token", TOKEN))
        .unwrap();
    sandbox
        .apply(demo::github_receiver(
            "flux-system",
            "github",
            json!([{"kind": "GitRepository", "name": "podinfo"}]),
        ))
        .unwrap();
}

#[tokio::test]
async fn serves_a_receiver_then_drains_and_exits_0_on_sigterm() {
    let mut sandbox = Sandbox::launch(BINARY, &[], &[]).await.unwrap();
    seed(&sandbox);
    sandbox.wait_until_ready().await.unwrap();
    let (healthz, _) = sandbox
        .get_url(&format!("{}/healthz", sandbox.urls().health()))
        .await
        .unwrap();
    assert_eq!(healthz, 200);
    let path = sandbox
        .wait_for_webhook_path("flux-system", "github")
        .await
        .unwrap();

    let body = br#"{"ref": "refs/heads/main"}"#;
    let (name, value) = Policy::HubSignature
        .signing_scheme()
        .sign(body, TOKEN.as_bytes())
        .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_static("push"));
    headers.insert(name, value);
    let (status, _) = sandbox.post(&path, headers, body.to_vec()).await.unwrap();
    assert_eq!(status, 200, "log:\n{}", sandbox.receiver_log());
    assert!(
        sandbox
            .requested_at(
                "source.toolkit.fluxcd.io/v1",
                "GitRepository",
                "flux-system",
                "podinfo",
            )
            .is_some()
    );

    let (_, metrics) = sandbox
        .get_url(&format!("{}/metrics", sandbox.urls().metrics()))
        .await
        .unwrap();
    assert!(
        metrics.contains(
            r#"fluxhook_receiver_requests_total{namespace="flux-system",name="github",type="github",code="200"} 1"#
        ),
        "{metrics}"
    );

    let exit = sandbox.stop().await.unwrap();
    let log = sandbox.receiver_log();
    assert_eq!(exit.code(), Some(0), "log:\n{log}");
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
    let mut sandbox = Sandbox::launch(BINARY, &["--watch-all-namespaces=false"], &[])
        .await
        .unwrap();
    let exit = sandbox.wait_for_exit().await.unwrap();
    assert_eq!(exit.code(), Some(1));
    assert!(
        sandbox.receiver_log().contains("RUNTIME_NAMESPACE"),
        "{}",
        sandbox.receiver_log()
    );
}

#[tokio::test]
async fn a_single_namespace_serves_only_its_receivers() {
    let mut sandbox = Sandbox::launch(
        BINARY,
        &["--watch-all-namespaces=false"],
        &[("RUNTIME_NAMESPACE", "elsewhere")],
    )
    .await
    .unwrap();
    seed(&sandbox);
    sandbox.wait_until_ready().await.unwrap();
    let receiver = sandbox
        .get(
            "notification.toolkit.fluxcd.io/v1",
            "Receiver",
            "flux-system",
            "github",
        )
        .unwrap();
    assert!(
        receiver["status"]["webhookPath"].is_null(),
        "flux-system is not watched"
    );
    sandbox.stop().await.unwrap();
}

#[tokio::test]
async fn an_address_in_use_fails_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("--metrics-addr={}", taken.local_addr().unwrap());
    let mut sandbox = Sandbox::launch(BINARY, &[&addr], &[]).await.unwrap();
    let exit = sandbox.wait_for_exit().await.unwrap();
    assert_eq!(exit.code(), Some(1));
    assert!(
        sandbox.receiver_log().contains("cannot listen on"),
        "{}",
        sandbox.receiver_log()
    );
}

#[tokio::test]
async fn flags_of_notification_controllers_other_servers_are_accepted_and_named_once() {
    let not_served = [
        "--events-addr=:9090",
        "--rate-limit-interval=1m",
        "--token-cache-max-size=10",
        "--default-service-account=flux",
    ];
    let mut args = not_served.to_vec();
    args.push("--feature-gates=DisableConfigWatchers=true");
    let mut sandbox = Sandbox::launch(BINARY, &args, &[]).await.unwrap();
    seed(&sandbox);
    sandbox.wait_until_ready().await.unwrap();
    sandbox
        .wait_for_webhook_path("flux-system", "github")
        .await
        .unwrap();
    // Read once stopped: every line is written by then.
    assert!(sandbox.stop().await.unwrap().success());
    let log = sandbox.receiver_log();
    let named: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("not served by fluxhook"))
        .collect();
    assert_eq!(named.len(), 1, "{log}");
    for flag in not_served {
        let name = flag.split('=').next().unwrap();
        assert!(named[0].contains(name), "{name} not named: {}", named[0]);
    }
    // A gate is loaded and said to change nothing here.
    assert!(
        log.lines()
            .any(|line| line.contains("DisableConfigWatchers") && line.contains("no effect")),
        "{log}"
    );
}
