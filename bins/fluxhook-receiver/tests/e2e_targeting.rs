//! Payload-aware targeting end to end, with the real `fluxhook-receiver`
//! binary against the fake Kubernetes API: a `github` Receiver annotated
//! `receivers.fluxhook.io/match-payload: "true"` that selects
//! GitRepositories by `*` and labels asks Flux to reconcile, for a signed
//! push, only the one on the pushed repository and branch (any spelling of
//! its URL), logging why each other one is skipped; its Kustomization is
//! asked as ever; a ping reconciles them all. The same Receiver without the
//! annotation reconciles every GitRepository it selects.
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use fluxhook_sandbox::Sandbox;
use fluxhook_signature::Policy;
use serde_json::{Value, json};

use e2e_support::{
    Delivery, NS, RECEIVER_API_VERSION, assert_accepted, eventually, ok, secret, start, stop,
    webhook_path,
};

const KUSTOMIZE_API_VERSION: &str = "kustomize.toolkit.fluxcd.io/v1";
const ANNOTATION: &str = "receivers.fluxhook.io/match-payload";

/// A GitRepository fetching `reference` from `url`, labelled for the Receivers.
fn git_repository(sandbox: &Sandbox, name: &str, url: &str, reference: Value) {
    ok(
        sandbox,
        sandbox.apply(json!({
            "apiVersion": e2e_support::GIT_API_VERSION,
            "kind": "GitRepository",
            "metadata": {"name": name, "namespace": NS, "labels": {"targeting": "e2e"}},
            "spec": {"interval": "10m", "url": url, "ref": reference}
        })),
    );
}

/// A `github` Receiver selecting the labelled GitRepositories and the
/// Kustomization `app`, annotated for payload-aware targeting or not; its
/// webhook path once served.
async fn github_receiver(sandbox: &Sandbox, name: &str, token: &str, targeted: bool) -> String {
    let secret_name = format!("{name}-token");
    secret(sandbox, &secret_name, &[("token", token)]);
    let annotations = if targeted {
        json!({ ANNOTATION: "true" })
    } else {
        json!({})
    };
    ok(
        sandbox,
        sandbox.apply(json!({
            "apiVersion": RECEIVER_API_VERSION,
            "kind": "Receiver",
            "metadata": {"name": name, "namespace": NS, "annotations": annotations},
            "spec": {
                "type": "github",
                "events": ["ping", "push"],
                "secretRef": {"name": secret_name},
                "resources": [
                    {"kind": "GitRepository", "name": "*", "matchLabels": {"targeting": "e2e"}},
                    {"apiVersion": KUSTOMIZE_API_VERSION, "kind": "Kustomization", "name": "app"}
                ]
            }
        })),
    );
    webhook_path(sandbox, name).await
}

/// A push of `main` to github.com/example/app, as GitHub sends it (trimmed).
fn push(token: &str) -> Delivery {
    let body = json!({
        "ref": "refs/heads/main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "created": false,
        "deleted": false,
        "repository": {
            "id": 123_456_789,
            "name": "app",
            "full_name": "example/app",
            "html_url": "https://github.com/example/app",
            "clone_url": "https://github.com/example/app.git",
            "ssh_url": "git@github.com:example/app.git",
            "default_branch": "main",
            "master_branch": "main"
        }
    });
    Delivery::json(&body)
        .header("x-github-event", "push")
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .signed(Policy::HubSignature, token)
}

/// GitHub's ping when the hook is created, naming the repository.
fn ping(token: &str) -> Delivery {
    let body = json!({
        "zen": "Design for failure.",
        "hook_id": 292_430_182,
        "repository": {"name": "app", "full_name": "example/app",
                       "html_url": "https://github.com/example/app"}
    });
    Delivery::json(&body)
        .header("x-github-event", "ping")
        .signed(Policy::HubSignature, token)
}

fn kustomization_requested_at(sandbox: &Sandbox) -> Option<String> {
    sandbox.requested_at(KUSTOMIZE_API_VERSION, "Kustomization", NS, "app")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_push_reconciles_only_the_git_repositories_it_can_change() {
    let sandbox = start(&[]).await;
    let s = &sandbox;
    ok(
        s,
        s.apply(json!({
            "apiVersion": KUSTOMIZE_API_VERSION,
            "kind": "Kustomization",
            "metadata": {"name": "app", "namespace": NS},
            "spec": {"interval": "10m", "path": "./deploy", "prune": true,
                     "sourceRef": {"kind": "GitRepository", "name": "pushed"}}
        })),
    );
    git_repository(
        s,
        "pushed",
        "https://github.com/example/app",
        json!({"branch": "main"}),
    );
    git_repository(s, "pushed-ssh", "git@github.com:Example/App.git", json!({}));
    git_repository(
        s,
        "other-repo",
        "https://github.com/example/other",
        json!({"branch": "main"}),
    );
    git_repository(
        s,
        "other-branch",
        "ssh://git@github.com/example/app",
        json!({"branch": "dev"}),
    );
    git_repository(
        s,
        "pinned",
        "https://github.com/example/app.git",
        json!({"branch": "main", "commit": "6113728f27ae82c7b1a177c8d03f9e96e0adf246"}),
    );
    let every = [
        "pushed",
        "pushed-ssh",
        "other-repo",
        "other-branch",
        "pinned",
    ];

    // Annotated: the push reconciles the two GitRepositories of example/app
    // following main (the second by its default branch), and the Kustomization.
    let token = "targeted-token";
    let targeted = github_receiver(s, "targeted", token, true).await;
    let before = kustomization_requested_at(s);
    assert_accepted(
        s,
        "targeted push",
        &targeted,
        &push(token),
        &["pushed", "pushed-ssh"],
    )
    .await;
    assert_ne!(
        kustomization_requested_at(s),
        before,
        "the Kustomization is asked as ever"
    );
    for (name, reason) in [
        (
            "other-repo",
            "spec.url \\\"https://github.com/example/other\\\" does not name the pushed repository example/app",
        ),
        (
            "other-branch",
            "spec.ref.branch \\\"dev\\\" is not changed by the push of refs/heads/main",
        ),
        ("pinned", "spec.ref.commit pins"),
    ] {
        let object = format!("GitRepository {NS}/{name}");
        eventually(s, &format!("the log says why {name} is skipped"), || {
            s.receiver_log().lines().any(|line| {
                line.contains("NOT annotated because the delivery cannot change it")
                    && line.contains("targeted")
                    && line.contains(&object)
                    && line.contains(reason)
            })
        })
        .await;
    }

    // A ping changes nothing to narrow: everything selected is asked.
    assert_accepted(s, "targeted ping", &targeted, &ping(token), &every).await;

    // Without the annotation, the same push reconciles every GitRepository.
    let token = "untargeted-token";
    let untargeted = github_receiver(s, "untargeted", token, false).await;
    assert_accepted(s, "untargeted push", &untargeted, &push(token), &every).await;

    stop(sandbox).await;
}
