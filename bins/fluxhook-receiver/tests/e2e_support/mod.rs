//! What the end-to-end tests share: the sandbox running the real binary,
//! the objects they seed, deliveries shaped like the senders' own, and the
//! checks that a delivery did, or did not, ask Flux to reconcile.
//!
//! Each `e2e_*` test binary uses part of this module; the rest is dead code
//! to it, hence the allowance.
#![allow(dead_code)]

use std::time::Duration;

use base64::Engine as _;
use fluxhook_sandbox::{Sandbox, SandboxError, demo};
use fluxhook_signature::Policy;
use fluxhook_test_apiserver::{RequestMatcher, Verb};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Value, json};

/// The binary under test.
pub(crate) const BINARY: &str = env!("CARGO_BIN_EXE_fluxhook-receiver");
/// Where the Receivers and their objects live.
pub(crate) const NS: &str = "flux-system";
/// The annotation a Receiver sets to ask Flux to reconcile.
pub(crate) const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";
pub(crate) const RECEIVER_API_VERSION: &str = "notification.toolkit.fluxcd.io/v1";
pub(crate) const GIT_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";

/// The fluxhook-receiver binary against the fake API, as the test's result.
pub(crate) async fn start(args: &[&str]) -> Sandbox {
    match Sandbox::start_with_args(BINARY, args).await {
        Ok(sandbox) => sandbox,
        Err(error) => panic!("the sandbox did not start: {error}"),
    }
}

/// Unwraps a sandbox result, with the receiver's log on failure.
pub(crate) fn ok<T>(sandbox: &Sandbox, result: Result<T, SandboxError>) -> T {
    result.unwrap_or_else(|error| panic!("{error}\nreceiver log:\n{}", log_tail(sandbox)))
}

/// The last lines of the receiver's log, for failure messages.
pub(crate) fn log_tail(sandbox: &Sandbox) -> String {
    let log = sandbox.receiver_log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

pub(crate) fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Creates the namespace `name`.
pub(crate) fn namespace(sandbox: &Sandbox, name: &str) {
    ok(
        sandbox,
        sandbox.apply(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})),
    );
}

/// Creates a GitRepository `namespace/name` with `labels`.
pub(crate) fn git_repository(sandbox: &Sandbox, namespace: &str, name: &str, labels: Value) {
    ok(
        sandbox,
        sandbox.apply(demo::git_repository(namespace, name, labels)),
    );
}

/// Creates (or replaces the data of) a Secret in [`NS`] with `data`,
/// labelled so that the controller sees its changes at once.
pub(crate) fn secret(sandbox: &Sandbox, name: &str, data: &[(&str, &str)]) {
    let data: serde_json::Map<String, Value> = data
        .iter()
        .map(|(key, value)| ((*key).to_owned(), json!(base64(value))))
        .collect();
    ok(
        sandbox,
        sandbox.apply(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": {"reconcile.fluxcd.io/watch": "Enabled"}
            },
            "type": "Opaque",
            "data": data
        })),
    );
}

/// Deletes the object at the API `path` as `kubectl delete` does.
pub(crate) async fn delete(sandbox: &Sandbox, path: &str) {
    let status = ok(sandbox, sandbox.delete(path).await);
    assert!(status.is_success(), "deleting {path}: {status}");
}

/// Deletes a Secret of [`NS`] through the API, as `kubectl delete` does.
pub(crate) async fn delete_secret(sandbox: &Sandbox, name: &str) {
    delete(sandbox, &format!("/api/v1/namespaces/{NS}/secrets/{name}")).await;
}

/// Deletes a Receiver of [`NS`] through the API, as `kubectl delete` does.
pub(crate) async fn delete_receiver(sandbox: &Sandbox, name: &str) {
    let path = format!("/apis/{RECEIVER_API_VERSION}/namespaces/{NS}/receivers/{name}");
    delete(sandbox, &path).await;
}

/// Creates (or merges into) the Receiver `NS/name` with `spec`.
pub(crate) fn receiver(sandbox: &Sandbox, name: &str, spec: Value) {
    ok(
        sandbox,
        sandbox.apply(json!({
            "apiVersion": RECEIVER_API_VERSION,
            "kind": "Receiver",
            "metadata": {"name": name, "namespace": NS},
            "spec": spec
        })),
    );
}

/// Creates a Receiver with its Secret holding `token` (`<name>-token`,
/// unless `spec` names none, as generic-oidc does) and waits until it is
/// served; its webhook path.
pub(crate) async fn serve(sandbox: &Sandbox, name: &str, token: &str, mut spec: Value) -> String {
    if spec["type"] != "generic-oidc" {
        let secret_name = format!("{name}-token");
        secret(sandbox, &secret_name, &[("token", token)]);
        spec["secretRef"] = json!({"name": secret_name});
    }
    receiver(sandbox, name, spec);
    webhook_path(sandbox, name).await
}

/// Waits until the Receiver `NS/name` is ready; its webhook path.
pub(crate) async fn webhook_path(sandbox: &Sandbox, name: &str) -> String {
    ok(sandbox, sandbox.wait_for_webhook_path(NS, name).await)
}

/// Waits until the Receiver's status satisfies `accept`.
pub(crate) async fn wait_for_status(
    sandbox: &Sandbox,
    name: &str,
    accept: impl Fn(&Value) -> bool,
) -> Value {
    ok(
        sandbox,
        sandbox
            .wait_for_receiver(NS, name, |status| accept(status).then(|| status.clone()))
            .await,
    )
}

/// Whether a status has the condition `type_` with `status` and, if given,
/// `reason`.
pub(crate) fn has_condition(
    status: &Value,
    type_: &str,
    value: &str,
    reason: Option<&str>,
) -> bool {
    status["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| {
            c["type"] == type_
                && c["status"] == value
                && reason.is_none_or(|reason| c["reason"] == reason)
        })
}

/// A request as a sender makes it: headers and the exact body bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Delivery {
    pub(crate) headers: HeaderMap,
    pub(crate) body: Vec<u8>,
}

impl Delivery {
    /// A JSON body, with `Content-Type: application/json`.
    pub(crate) fn json(body: &Value) -> Self {
        Self::raw(body.to_string().into_bytes()).header("content-type", "application/json")
    }

    /// Any body, and no headers.
    pub(crate) fn raw(body: impl Into<Vec<u8>>) -> Self {
        Self {
            headers: HeaderMap::new(),
            body: body.into(),
        }
    }

    /// With a header (replacing one of the same name).
    pub(crate) fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::from_bytes(name.as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
        self
    }

    /// Signed as `policy`'s senders sign, with `token`.
    pub(crate) fn signed(mut self, policy: Policy, token: &str) -> Self {
        let (name, value) = policy
            .signing_scheme()
            .sign(&self.body, token.as_bytes())
            .unwrap();
        self.headers.insert(name, value);
        self
    }

    /// With `Authorization: Bearer <token>`.
    pub(crate) fn bearer(self, token: &str) -> Self {
        self.header("authorization", &format!("Bearer {token}"))
    }

    /// The same headers over another body (a signature made for this one
    /// then no longer matches).
    pub(crate) fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// POSTs a delivery to `path`; the status code.
pub(crate) async fn post(sandbox: &Sandbox, path: &str, delivery: &Delivery) -> StatusCode {
    let (status, _) = ok(
        sandbox,
        sandbox
            .post(path, delivery.headers.clone(), delivery.body.clone())
            .await,
    );
    status
}

/// The `requestedAt` annotation of the GitRepository `namespace/name`.
pub(crate) fn requested_at(sandbox: &Sandbox, namespace: &str, name: &str) -> Option<String> {
    sandbox.requested_at(GIT_API_VERSION, "GitRepository", namespace, name)
}

/// Sends `delivery` to `path` and checks that it is accepted (200) and
/// that exactly the GitRepositories `repos` (`name` in [`NS`], or
/// `namespace/name`) were each asked to reconcile once more: one more
/// successful PATCH each, the annotation set.
pub(crate) async fn assert_accepted(
    sandbox: &Sandbox,
    case: &str,
    path: &str,
    delivery: &Delivery,
    repos: &[&str],
) {
    assert_outcome(sandbox, case, path, delivery, StatusCode::OK, repos).await;
}

/// Sends `delivery` to `path` and checks the answer is `expected`, that no
/// GitRepository was even asked to be patched because of it and that the
/// annotation of the case's GitRepository `repo` of [`NS`] is as it was.
pub(crate) async fn assert_refused(
    sandbox: &Sandbox,
    case: &str,
    path: &str,
    delivery: &Delivery,
    expected: StatusCode,
    repo: &str,
) {
    let annotation = requested_at(sandbox, NS, repo);
    assert_outcome(sandbox, case, path, delivery, expected, &[]).await;
    assert_eq!(
        requested_at(sandbox, NS, repo),
        annotation,
        "{case}: the {REQUESTED_AT} annotation of {repo} changed"
    );
}

/// `namespace/name` of a GitRepository named as the assertions name them.
fn qualified(repo: &str) -> String {
    if repo.contains('/') {
        repo.to_owned()
    } else {
        format!("{NS}/{repo}")
    }
}

async fn assert_outcome(
    sandbox: &Sandbox,
    case: &str,
    path: &str,
    delivery: &Delivery,
    expected: StatusCode,
    reconciled: &[&str],
) {
    let before = repo_patches(sandbox).len();
    let status = post(sandbox, path, delivery).await;
    assert_eq!(
        status,
        expected,
        "{case}: answered {status}, expected {expected}\nreceiver log:\n{}",
        log_tail(sandbox)
    );
    let mut patched: Vec<String> = repo_patches(sandbox)
        .split_off(before)
        .into_iter()
        .map(|patch| format!("{} (HTTP {:?})", patch.repo, patch.status))
        .collect();
    patched.sort();
    let mut wanted: Vec<String> = reconciled
        .iter()
        .map(|repo| format!("{} (HTTP Some(200))", qualified(repo)))
        .collect();
    wanted.sort();
    assert_eq!(
        patched,
        wanted,
        "{case}: the GitRepositories patched\nreceiver log:\n{}",
        log_tail(sandbox)
    );
    for repo in reconciled {
        let repo = qualified(repo);
        let (namespace, name) = repo.split_once('/').unwrap();
        assert!(
            requested_at(sandbox, namespace, name).is_some(),
            "{case}: {repo} has no {REQUESTED_AT} annotation"
        );
    }
}

/// A PATCH of a GitRepository the API server received.
#[derive(Debug)]
pub(crate) struct RepoPatch {
    /// `namespace/name`.
    pub(crate) repo: String,
    /// What the API server answered.
    pub(crate) status: Option<u16>,
}

/// Every PATCH of a GitRepository so far, in order.
pub(crate) fn repo_patches(sandbox: &Sandbox) -> Vec<RepoPatch> {
    sandbox
        .api()
        .requests()
        .matching(
            &RequestMatcher::any()
                .verb(Verb::Patch)
                .resource("gitrepositories"),
        )
        .into_iter()
        .filter_map(|record| {
            let target = record.target?;
            Some(RepoPatch {
                repo: format!("{}/{}", target.namespace?, target.name?),
                status: record.status,
            })
        })
        .collect()
}

/// The sum of the samples of `metric` whose labels include each of
/// `labels`; 0 when there is none.
pub(crate) fn sample(metrics: &str, metric: &str, labels: &[(&str, &str)]) -> u64 {
    metrics
        .lines()
        .filter_map(|line| {
            let (series, value) = line
                .strip_prefix(metric)?
                .strip_prefix('{')?
                .split_once("} ")?;
            let has = |(key, value): &(&str, &str)| {
                series
                    .split(',')
                    .any(|label| label == format!("{key}=\"{value}\""))
            };
            labels
                .iter()
                .all(has)
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .sum()
}

/// The metrics the binary exposes now.
pub(crate) async fn metrics(sandbox: &Sandbox) -> String {
    let url = format!("{}/metrics", sandbox.urls().metrics());
    let (status, text) = ok(sandbox, sandbox.get_url(&url).await);
    assert_eq!(status, StatusCode::OK, "{text}");
    text
}

/// Checks that the API server refused the binary nothing: it runs under the
/// deploy manifests' RBAC, and a call they forgot is a failure even where the
/// binary carries on (it logs and retries).
pub(crate) fn assert_nothing_refused(sandbox: &Sandbox) {
    let refused: Vec<String> = sandbox
        .refused_requests()
        .iter()
        .map(|record| {
            format!(
                "{} {}?{} (HTTP {:?})",
                record.method, record.path, record.query, record.status
            )
        })
        .collect();
    assert!(
        refused.is_empty(),
        "the API server refused the receiver (ServiceAccount {}); deploy/base/rbac*.yaml \
         lacks the rules for:\n{}\nreceiver log:\n{}",
        sandbox.receiver_identity().name(),
        refused.join("\n"),
        log_tail(sandbox)
    );
}

/// Stops the binary with SIGTERM and checks it exits 0, and that the API
/// server refused it nothing on the way.
pub(crate) async fn stop(mut sandbox: Sandbox) {
    assert_nothing_refused(&sandbox);
    // The log goes with the sandbox: what it says up to now explains a
    // failure to stop.
    let log = log_tail(&sandbox);
    let status = sandbox.stop().await.unwrap();
    assert!(
        status.success(),
        "SIGTERM: exited with {status}\nreceiver log:\n{log}"
    );
}

/// Polls, boundedly, until `done` holds: for states that come eventually,
/// never for how soon.
pub(crate) async fn eventually(sandbox: &Sandbox, what: &str, done: impl Fn() -> bool) {
    let waited = tokio::time::timeout(fluxhook_sandbox::DEADLINE, async {
        while !done() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "never: {what}\nreceiver log:\n{}",
        log_tail(sandbox)
    );
}
