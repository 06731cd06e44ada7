//! Each overlay's Deployment, run: the container's arguments and environment,
//! as rendered, given to the real fluxhook-receiver binary against the test
//! Kubernetes API. It starts, serves the demo Receiver and, beside
//! notification-controller, writes nothing on it. A flag the binary does not
//! take, or an environment it lacks, fails here rather than in a cluster.
//!
//! Needs kubectl, and the binary built in the same profile (`cargo test`
//! builds it; `.ci/run` runs `cargo test` first).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fluxhook_manifests::{Overlay, render};
use fluxhook_sandbox::{DEADLINE, Sandbox, demo};
use k8s_openapi::api::apps::v1::Deployment;

fn receiver_binary() -> PathBuf {
    // target/<profile>/deps/args-<hash> -> target/<profile>/fluxhook-receiver
    let exe = std::env::current_exe().unwrap();
    let binary = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("fluxhook-receiver");
    assert!(
        binary.is_file(),
        "{} is not built: run `cargo build --bin fluxhook-receiver` (or `cargo test`) first",
        binary.display()
    );
    binary
}

/// The manager container's arguments and environment, with values from the
/// downward API resolved as the kubelet resolves them for this Deployment.
fn container(overlay: Overlay) -> (Vec<String>, Vec<(String, String)>) {
    let manifests = render(overlay, &[]).unwrap_or_else(|e| panic!("{e}"));
    let deployment: Deployment = manifests.object("fluxhook-receiver").unwrap();
    let namespace = deployment.metadata.namespace.clone().unwrap();
    let pod = deployment.spec.unwrap().template.spec.unwrap();
    let container = pod
        .containers
        .into_iter()
        .find(|c| c.name == "manager")
        .unwrap();
    let env = container
        .env
        .unwrap_or_default()
        .into_iter()
        .map(|var| {
            let value = match (var.value, var.value_from) {
                (Some(value), None) => value,
                (None, Some(from)) => match from.field_ref.map(|f| f.field_path) {
                    Some(path) if path == "metadata.namespace" => namespace.clone(),
                    other => panic!("{}: no value for the test to give ({other:?})", var.name),
                },
                other => panic!("{}: unexpected value {other:?}", var.name),
            };
            (var.name, value)
        })
        .collect();
    (container.args.unwrap_or_default(), env)
}

async fn start(overlay: Overlay) -> Sandbox {
    let (args, env) = container(overlay);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let mut sandbox = Sandbox::launch(receiver_binary(), &args, &env)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", overlay.name()));
    sandbox
        .wait_until_ready()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", overlay.name()));
    for object in demo::objects() {
        sandbox.apply(object).unwrap();
    }
    sandbox
}

/// Posts the demo push to `path` until it is answered 200 (the Receiver is
/// served once the controller has seen it), within the sandbox's deadline.
async fn deliver(sandbox: &Sandbox, path: &str) {
    let started = Instant::now();
    loop {
        let push = demo::github_push();
        let (status, body) = sandbox.post(path, push.headers, push.body).await.unwrap();
        if status == 200 {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "the push to {path} was answered {status} {body:?} for {DEADLINE:?}; log:\n{}",
            sandbox.receiver_log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn requested_at(sandbox: &Sandbox) -> Option<String> {
    sandbox.requested_at(
        demo::GIT_REPOSITORY_API_VERSION,
        "GitRepository",
        demo::NAMESPACE,
        demo::GIT_REPOSITORY,
    )
}

#[tokio::test]
async fn the_standalone_deployment_serves_and_manages_receivers() {
    let mut sandbox = start(Overlay::Standalone).await;
    let path = sandbox
        .wait_for_webhook_path(demo::NAMESPACE, demo::RECEIVER)
        .await
        .unwrap();
    deliver(&sandbox, &path).await;
    assert!(requested_at(&sandbox).is_some());
    let status = sandbox.stop().await.unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_deployment_beside_notification_controller_serves_and_writes_nothing() {
    let mut sandbox = start(Overlay::BesideNotificationController).await;
    let path = fluxhook_api::webhook_path(demo::TOKEN, demo::RECEIVER, demo::NAMESPACE);
    deliver(&sandbox, path.as_str()).await;
    assert!(requested_at(&sandbox).is_some());
    let receiver = sandbox
        .get(
            demo::RECEIVER_API_VERSION,
            "Receiver",
            demo::NAMESPACE,
            demo::RECEIVER,
        )
        .unwrap();
    assert!(
        receiver
            .get("status")
            .is_none_or(|s| s.as_object().is_none_or(|s| s.is_empty())),
        "{receiver}"
    );
    assert!(
        receiver["metadata"].get("finalizers").is_none(),
        "{receiver}"
    );
    let status = sandbox.stop().await.unwrap();
    assert!(status.success(), "{status}");
}
