//! The README's demo: a GitRepository `flux-repo`, a Kustomization `my-app`
//! built from it, and a github Receiver `git-webhook` for `ping` and `push`
//! with its Secret; and a signed GitHub push to send it.

use fluxhook_signature::Policy;
use fluxhook_test_apiserver::fixtures;
use http::{HeaderMap, HeaderValue};
use serde_json::{Value, json};

pub use fluxhook_test_apiserver::fixtures::{github_receiver, token_secret};

/// The namespace of every demo object.
pub const NAMESPACE: &str = "flux-system";
/// The demo Receiver's name.
pub const RECEIVER: &str = "git-webhook";
/// The Receiver API version.
pub const RECEIVER_API_VERSION: &str = fixtures::RECEIVER_API_VERSION;
/// The GitRepository the Receiver reconciles.
pub const GIT_REPOSITORY: &str = "flux-repo";
/// The GitRepository API version.
pub const GIT_REPOSITORY_API_VERSION: &str = fixtures::GIT_REPOSITORY_API_VERSION;
/// The webhook token in the Receiver's Secret. A demo value: real tokens are
/// random (`head -c 12 /dev/urandom | shasum | cut -d ' ' -f1`).
pub const TOKEN: &str = "demo-token-not-a-secret";

/// The objects to seed, in order.
pub fn objects() -> Vec<Value> {
    vec![
        json!({
            "apiVersion": GIT_REPOSITORY_API_VERSION,
            "kind": "GitRepository",
            "metadata": {"name": GIT_REPOSITORY, "namespace": NAMESPACE},
            "spec": {
                "interval": "1h",
                "url": "https://github.com/example/flux-repo",
                "ref": {"branch": "main"}
            }
        }),
        json!({
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "my-app", "namespace": NAMESPACE},
            "spec": {
                "interval": "1h",
                "path": "./deploy",
                "prune": true,
                "sourceRef": {"kind": "GitRepository", "name": GIT_REPOSITORY}
            }
        }),
        watched(token_secret(NAMESPACE, "webhook-token", TOKEN)),
        github_receiver(
            NAMESPACE,
            RECEIVER,
            json!([{"kind": "GitRepository", "name": GIT_REPOSITORY}]),
        ),
    ]
}

/// `secret` labelled so that the controller sees its changes at once.
fn watched(mut secret: Value) -> Value {
    secret["metadata"]["labels"] = json!({"reconcile.fluxcd.io/watch": "Enabled"});
    secret
}

/// A GitRepository `namespace/name` of `https://github.com/example/<name>`, branch `main`,
/// with `labels`, as the tests and measurements seed them.
pub fn git_repository(namespace: &str, name: &str, labels: Value) -> Value {
    let mut repository = fixtures::git_repository(namespace, name, labels);
    repository["spec"]["url"] = json!(format!("https://github.com/example/{name}"));
    repository["spec"]["ref"] = json!({"branch": "main"});
    repository
}

/// A delivery: headers and body.
pub struct Delivery {
    /// The headers GitHub sends, the signature included.
    pub headers: HeaderMap,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// The body of a push to `main` of the demo repository, as GitHub sends it (the parts
/// Flux could read).
pub fn github_push_body() -> Value {
    json!({
        "ref": "refs/heads/main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "created": false,
        "deleted": false,
        "forced": false,
        "commits": [{
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "message": "Bump my-app to v1.2.3",
            "added": [],
            "removed": [],
            "modified": ["deploy/deployment.yaml"]
        }],
        "repository": {
            "name": "flux-repo",
            "full_name": "example/flux-repo",
            "html_url": "https://github.com/example/flux-repo",
            "clone_url": "https://github.com/example/flux-repo.git",
            "ssh_url": "git@github.com:example/flux-repo.git"
        },
        "pusher": {"name": "octocat"}
    })
}

/// A push to `main` of the demo repository, signed with [`TOKEN`] as GitHub
/// signs (`X-Hub-Signature-256`).
pub fn github_push() -> Delivery {
    let body = serde_json::to_vec_pretty(&github_push_body()).unwrap_or_default();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    headers.insert("x-github-event", HeaderValue::from_static("push"));
    headers.insert(
        "x-github-delivery",
        HeaderValue::from_static("9a3c5b1e-4f8d-11ef-8e2a-0242ac120002"),
    );
    if let Ok((name, value)) = Policy::HubSignature
        .signing_scheme()
        .sign(&body, TOKEN.as_bytes())
    {
        headers.insert(name, value);
    }
    Delivery { headers, body }
}
