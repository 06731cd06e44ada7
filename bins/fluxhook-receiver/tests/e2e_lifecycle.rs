//! A Receiver's life, end to end with the real `fluxhook-receiver` binary
//! against the fake Kubernetes API: suspended it answers 503, and 200 again
//! once resumed; without its Secret it answers 503 at its last path; a
//! rotated token moves its path (the old one is 404, `status.webhookPath`
//! names the new one), at once even for an unlabelled Secret, and a deleted
//! one stops authenticating; the flux CLI's `get`, `reconcile`, `suspend` and
//! `resume receiver` requests, made exactly as the CLI makes them, work; an
//! API server that fails, is unavailable or
//! throttles the patch makes the delivery fail with 500, and the next one
//! succeeds; `/metrics` counts every
//! request by outcome; SIGTERM lets the request in flight finish and ends
//! the process with 0.
//!
//! One sandbox runs every case, each with its own Receiver and
//! GitRepository, in order: the metrics at the end count what they sent.
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use fluxhook_sandbox::Sandbox;
use fluxhook_signature::Policy;
use fluxhook_test_apiserver::{RequestMatcher, Verb};
use http::StatusCode;
use serde_json::{Value, json};

use e2e_support::{
    Delivery, NS, assert_accepted, assert_refused, delete_secret, git_repository, has_condition,
    metrics, post, repo_patches, requested_at, sample, secret, serve, start, stop, wait_for_status,
};

const SERVICE_UNAVAILABLE: StatusCode = StatusCode::SERVICE_UNAVAILABLE;

/// A GitHub push to `main`, signed with `token`.
fn github_push(token: &str) -> Delivery {
    Delivery::json(&json!({
        "ref": "refs/heads/main",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "repository": {"full_name": "example/app"}
    }))
    .header("x-github-event", "push")
    .header("x-github-delivery", "9a3c5b1e-4f8d-11ef-8e2a-0242ac120002")
    .signed(Policy::HubSignature, token)
}

/// A github Receiver `name` for the GitRepository `app-<name>`; its path.
async fn github_receiver(s: &Sandbox, name: &str, token: &str) -> String {
    let repo = format!("app-{name}");
    git_repository(s, NS, &repo, json!({}));
    serve(
        s,
        name,
        token,
        json!({
            "type": "github",
            "events": ["push"],
            "resources": [{"kind": "GitRepository", "name": repo}]
        }),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receivers_follow_their_spec_secret_and_api_server() {
    let sandbox = start(&[]).await;

    suspended_receivers_refuse_until_resumed(&sandbox).await;
    a_missing_secret_makes_the_receiver_unavailable(&sandbox).await;
    a_rotated_token_moves_the_path(&sandbox).await;
    an_unlabelled_secret_is_revoked_at_once(&sandbox).await;
    the_flux_cli_drives_receivers(&sandbox).await;
    api_server_failures_fail_then_recover(&sandbox).await;
    metrics_count_requests_by_outcome(&sandbox).await;
    sigterm_lets_the_request_in_flight_finish(sandbox).await;
}

fn generation_observed(status: &Value, generation: i64) -> bool {
    status["observedGeneration"] == generation
}

async fn suspended_receivers_refuse_until_resumed(s: &Sandbox) {
    let token = "pausable-token";
    let path = github_receiver(s, "pausable", token).await;
    let repo = "app-pausable";

    e2e_support::receiver(s, "pausable", json!({"suspend": true}));
    wait_for_status(s, "pausable", |status| generation_observed(status, 2)).await;
    assert_refused(
        s,
        "suspended",
        &path,
        &github_push(token),
        SERVICE_UNAVAILABLE,
        repo,
    )
    .await;
    // Suspension is decided before the signature.
    let forged = github_push("not-the-token");
    assert_refused(
        s,
        "suspended, forged",
        &path,
        &forged,
        SERVICE_UNAVAILABLE,
        repo,
    )
    .await;

    e2e_support::receiver(s, "pausable", json!({"suspend": false}));
    let status = wait_for_status(s, "pausable", |status| generation_observed(status, 3)).await;
    assert!(has_condition(&status, "Ready", "True", None), "{status}");
    assert_eq!(status["webhookPath"], path.as_str());
    assert_accepted(s, "resumed", &path, &github_push(token), &[repo]).await;
}

async fn a_missing_secret_makes_the_receiver_unavailable(s: &Sandbox) {
    let token = "orphaned-token";
    let path = github_receiver(s, "orphaned", token).await;
    let repo = "app-orphaned";

    delete_secret(s, "orphaned-token").await;
    let status = wait_for_status(s, "orphaned", |status| {
        has_condition(status, "Ready", "False", Some("TokenNotFound"))
    })
    .await;
    // As in Flux, the status no longer names a path; the sender still gets
    // 503 at the last one rather than 404.
    assert_eq!(status["webhookPath"], Value::Null, "{status}");
    assert_refused(
        s,
        "no Secret",
        &path,
        &github_push(token),
        SERVICE_UNAVAILABLE,
        repo,
    )
    .await;

    // The Secret back, the Receiver serves again at the same path.
    secret(s, "orphaned-token", &[("token", token)]);
    wait_for_status(s, "orphaned", |status| {
        has_condition(status, "Ready", "True", None)
    })
    .await;
    assert_accepted(s, "Secret restored", &path, &github_push(token), &[repo]).await;
}

async fn a_rotated_token_moves_the_path(s: &Sandbox) {
    let (old_token, new_token) = ("rotated-token-1", "rotated-token-2");
    let old_path = github_receiver(s, "rotated", old_token).await;
    let repo = "app-rotated";

    secret(s, "rotated-token", &[("token", new_token)]);
    let status = wait_for_status(s, "rotated", |status| {
        status["webhookPath"]
            .as_str()
            .is_some_and(|p| p != old_path)
            && has_condition(status, "Ready", "True", None)
    })
    .await;
    let new_path = status["webhookPath"].as_str().unwrap().to_owned();
    assert!(new_path.starts_with("/hook/"), "{new_path}");

    let old = github_push(old_token);
    let new = github_push(new_token);
    assert_refused(s, "old path", &old_path, &new, StatusCode::NOT_FOUND, repo).await;
    assert_refused(
        s,
        "old token",
        &new_path,
        &old,
        StatusCode::BAD_REQUEST,
        repo,
    )
    .await;
    assert_accepted(s, "new path, new token", &new_path, &new, &[repo]).await;
}

/// Creates (or replaces the data of) a Secret of [`NS`] holding `token`,
/// without the `reconcile.fluxcd.io/watch` label.
fn unlabelled_secret(s: &Sandbox, name: &str, token: &str) {
    e2e_support::ok(
        s,
        s.apply(json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": NS},
            "type": "Opaque",
            "data": {"token": e2e_support::base64(token)}
        })),
    );
}

/// Flux reads the Secret on every request; fluxhook learns of a change from
/// its Secret watch, so without the label, and with the default interval of
/// 10 minutes, a rotated token still moves the path at once and a deleted
/// one stops authenticating.
async fn an_unlabelled_secret_is_revoked_at_once(s: &Sandbox) {
    let (old_token, new_token) = ("unlabelled-token-1", "unlabelled-token-2");
    let repo = "app-unlabelled";
    git_repository(s, NS, repo, json!({}));
    unlabelled_secret(s, "unlabelled-token", old_token);
    e2e_support::receiver(
        s,
        "unlabelled",
        json!({
            "type": "github",
            "events": ["push"],
            "secretRef": {"name": "unlabelled-token"},
            "resources": [{"kind": "GitRepository", "name": repo}]
        }),
    );
    let old_path = e2e_support::webhook_path(s, "unlabelled").await;
    assert_accepted(
        s,
        "before rotation",
        &old_path,
        &github_push(old_token),
        &[repo],
    )
    .await;

    unlabelled_secret(s, "unlabelled-token", new_token);
    let status = wait_for_status(s, "unlabelled", |status| {
        status["webhookPath"]
            .as_str()
            .is_some_and(|path| path != old_path)
    })
    .await;
    let new_path = status["webhookPath"].as_str().unwrap().to_owned();
    let old = github_push(old_token);
    let new = github_push(new_token);
    assert_refused(
        s,
        "old token, old path",
        &old_path,
        &old,
        StatusCode::NOT_FOUND,
        repo,
    )
    .await;
    assert_refused(
        s,
        "old token, new path",
        &new_path,
        &old,
        StatusCode::BAD_REQUEST,
        repo,
    )
    .await;
    assert_accepted(s, "new token", &new_path, &new, &[repo]).await;

    delete_secret(s, "unlabelled-token").await;
    wait_for_status(s, "unlabelled", |status| {
        has_condition(status, "Ready", "False", Some("TokenNotFound"))
    })
    .await;
    assert_refused(
        s,
        "Secret deleted",
        &new_path,
        &new,
        SERVICE_UNAVAILABLE,
        repo,
    )
    .await;
}

/// The flux CLI (fluxcd/flux2 `cmd/flux`), request for request: what
/// `flux get|reconcile|suspend|resume receiver` send to the API server and
/// what they read back, without a Go toolchain.
mod flux {
    use super::*;

    const RECEIVERS: &str =
        "/apis/notification.toolkit.fluxcd.io/v1/namespaces/flux-system/receivers";
    /// controller-runtime's metadata client asks for `PartialObjectMetadata`.
    const METADATA: &str = "application/vnd.kubernetes.protobuf;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json";
    /// `client.MergeFrom` patches.
    const MERGE_PATCH: &str = "application/merge-patch+json";

    async fn send(request: reqwest::RequestBuilder) -> Value {
        let response = request.send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert!(status.is_success(), "{status}: {body}");
        body
    }

    fn url(s: &Sandbox, path: &str) -> String {
        format!("{}{RECEIVERS}{path}", s.api().url())
    }

    /// The flux CLI runs with the operator's kubeconfig: here, the API server's administrator.
    fn cli(s: &Sandbox) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        let bearer = format!("Bearer {}", s.api().admin().token());
        headers.insert(
            reqwest::header::AUTHORIZATION,
            reqwest::header::HeaderValue::from_str(&bearer).unwrap(),
        );
        reqwest::Client::builder()
            .default_headers(headers)
            .build()
            .unwrap()
    }

    async fn get(s: &Sandbox, name: &str) -> Value {
        send(cli(s).get(url(s, &format!("/{name}")))).await
    }

    /// `client.MatchingFields{"metadata.name": name}` in the namespace.
    async fn list(s: &Sandbox, name: Option<&str>) -> Vec<Value> {
        let mut request = cli(s).get(url(s, ""));
        if let Some(name) = name {
            request = request.query(&[("fieldSelector", format!("metadata.name={name}"))]);
        }
        let list = send(request).await;
        list["items"].as_array().cloned().unwrap_or_default()
    }

    async fn merge_patch(s: &Sandbox, name: &str, accept: &str, patch: Value) {
        send(
            cli(s)
                .patch(url(s, &format!("/{name}")))
                .header("accept", accept)
                .header("content-type", MERGE_PATCH)
                .body(patch.to_string()),
        )
        .await;
    }

    fn ready(receiver: &Value) -> Option<&Value> {
        receiver["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == "Ready")
    }

    fn condition_true(receiver: &Value, type_: &str) -> bool {
        receiver["status"]["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|c| c["type"] == type_ && c["status"] == "True")
    }

    /// kstatus' `Compute` for a custom resource: `Ok(true)` current, `Ok(false)`
    /// in progress, `Err` failed.
    fn kstatus_current(receiver: &Value) -> Result<bool, String> {
        let observed = &receiver["status"]["observedGeneration"];
        if !observed.is_null() && *observed != receiver["metadata"]["generation"] {
            return Ok(false);
        }
        if condition_true(receiver, "Reconciling") {
            return Ok(false);
        }
        if condition_true(receiver, "Stalled") {
            return Err(ready(receiver)
                .map(|c| c["message"].to_string())
                .unwrap_or_default());
        }
        Ok(true)
    }

    /// Polls as `wait.PollUntilContextTimeout` does, within the sandbox's deadline.
    async fn poll(
        s: &Sandbox,
        what: &str,
        mut done: impl AsyncFnMut() -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = std::time::Instant::now() + fluxhook_sandbox::DEADLINE;
        loop {
            if done().await? {
                return Ok(());
            }
            assert!(
                std::time::Instant::now() < deadline,
                "flux: timed out waiting for {what}
receiver log:
{}",
                e2e_support::log_tail(s)
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    /// `flux get receivers`: Name, Suspended, Ready, Message.
    pub(super) async fn get_receivers(s: &Sandbox) -> Vec<[String; 4]> {
        list(s, None)
            .await
            .iter()
            .map(|receiver| {
                let (ready, message) = match ready(receiver) {
                    Some(c) => (
                        c["status"].as_str().unwrap_or_default().to_owned(),
                        c["message"].as_str().unwrap_or_default().to_owned(),
                    ),
                    None => ("False".to_owned(), "waiting to be reconciled".to_owned()),
                };
                let suspended = if receiver["spec"]["suspend"] == true {
                    "True"
                } else {
                    "False"
                };
                [
                    receiver["metadata"]["name"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                    suspended.to_owned(),
                    ready,
                    message,
                ]
            })
            .collect()
    }

    /// `flux reconcile receiver NAME`: the annotation written through the
    /// metadata client, then a wait until `lastHandledReconcileAt` changes and
    /// the object is current; `Err` with the CLI's message otherwise. The
    /// value of the annotation is returned.
    pub(super) async fn reconcile_receiver(s: &Sandbox, name: &str) -> Result<String, String> {
        let receiver = get(s, name).await;
        if receiver["spec"]["suspend"] == true {
            return Err("resource is suspended".to_owned());
        }
        let last_handled = receiver["status"]["lastHandledReconcileAt"].clone();
        // `requestReconciliation`: read as metadata, merge-patch the difference.
        let metadata = send(
            cli(s)
                .get(url(s, &format!("/{name}")))
                .header("accept", METADATA),
        )
        .await;
        assert_eq!(metadata["kind"], "PartialObjectMetadata", "{metadata}");
        let requested_at = k8s_openapi::jiff::Timestamp::now().to_string();
        merge_patch(
            s,
            name,
            METADATA,
            json!({"metadata": {"annotations": {REQUESTED_AT_ANNOTATION: requested_at}}}),
        )
        .await;
        let mut handled = Value::Null;
        poll(s, "the reconciliation", async || {
            handled = get(s, name).await;
            if handled["status"]["lastHandledReconcileAt"] == last_handled {
                return Ok(false);
            }
            kstatus_current(&handled)
        })
        .await?;
        match ready(&handled) {
            Some(c) if c["status"] == "True" => Ok(requested_at),
            Some(c) => Err(format!(
                "Receiver reconciliation failed: '{}'",
                c["message"]
            )),
            None => Err("status can't be determined".to_owned()),
        }
    }

    /// `flux suspend receiver NAME`.
    pub(super) async fn suspend_receiver(s: &Sandbox, name: &str) {
        for receiver in list(s, Some(name)).await {
            let name = receiver["metadata"]["name"].as_str().unwrap().to_owned();
            merge_patch(
                s,
                &name,
                "application/json",
                json!({"spec": {"suspend": true}}),
            )
            .await;
        }
    }

    /// `flux resume receiver NAME`: `spec.suspend` removed (false is omitted),
    /// then a wait until the object is ready at its generation.
    pub(super) async fn resume_receiver(s: &Sandbox, name: &str) -> Result<(), String> {
        for receiver in list(s, Some(name)).await {
            let name = receiver["metadata"]["name"].as_str().unwrap().to_owned();
            merge_patch(
                s,
                &name,
                "application/json",
                json!({"spec": {"suspend": null}}),
            )
            .await;
            poll(s, "the Receiver to be ready", async || {
                let receiver = get(s, &name).await;
                if receiver["status"]["observedGeneration"]
                    .as_i64()
                    .unwrap_or(0)
                    < 1
                {
                    return Ok(false);
                }
                let Some(ready) = ready(&receiver) else {
                    return Ok(false);
                };
                let generation = &receiver["metadata"]["generation"];
                let condition_generation = ready["observedGeneration"].as_i64().unwrap_or(0);
                if condition_generation != 0 && ready["observedGeneration"] != *generation {
                    return Ok(false);
                }
                kstatus_current(&receiver)
            })
            .await?;
        }
        Ok(())
    }
}

const REQUESTED_AT_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

async fn the_flux_cli_drives_receivers(s: &Sandbox) {
    let token = "cli-token";
    let path = github_receiver(s, "cli", token).await;
    let repo = "app-cli";
    let row = |rows: Vec<[String; 4]>| rows.into_iter().find(|row| row[0] == "cli").unwrap();
    let ready_message = format!("Receiver initialized for path: {path}");

    // `flux get receivers`
    assert_eq!(
        row(flux::get_receivers(s).await),
        ["cli", "False", "True", ready_message.as_str()]
    );

    // `flux reconcile receiver cli`: handled, recorded, ready.
    let requested = flux::reconcile_receiver(s, "cli").await.unwrap();
    let receiver = s
        .get(e2e_support::RECEIVER_API_VERSION, "Receiver", NS, "cli")
        .unwrap();
    assert_eq!(
        receiver["status"]["lastHandledReconcileAt"],
        requested.as_str()
    );

    // `flux suspend receiver cli`: 503 as soon as the controller has seen it.
    flux::suspend_receiver(s, "cli").await;
    wait_for_status(s, "cli", |status| generation_observed(status, 2)).await;
    assert_refused(
        s,
        "flux suspend",
        &path,
        &github_push(token),
        SERVICE_UNAVAILABLE,
        repo,
    )
    .await;
    assert_eq!(row(flux::get_receivers(s).await)[1], "True");
    assert_eq!(
        flux::reconcile_receiver(s, "cli").await,
        Err("resource is suspended".to_owned())
    );

    // `flux resume receiver cli`: serves again.
    flux::resume_receiver(s, "cli").await.unwrap();
    assert_accepted(s, "flux resume", &path, &github_push(token), &[repo]).await;
    assert_eq!(
        row(flux::get_receivers(s).await),
        ["cli", "False", "True", ready_message.as_str()]
    );

    // `kubectl events --for receiver/cli`: Flux's success Event, counted.
    let events = s.api().list("events.k8s.io/v1", "Event", Some(NS)).unwrap();
    let succeeded: Vec<&Value> = events
        .iter()
        .filter(|e| e["regarding"]["name"] == "cli" && e["reason"] == "Succeeded")
        .collect();
    assert_eq!(succeeded.len(), 1, "{succeeded:?}");
    assert_eq!(succeeded[0]["type"], "Normal");
    assert_eq!(
        succeeded[0]["note"],
        "Reconciliation finished, next run in 10m0s"
    );
    assert_eq!(succeeded[0]["reportingController"], "fluxhook-receiver");
    assert!(succeeded[0]["series"]["count"].as_i64().unwrap_or(1) >= 3);
}

/// An API server refusing the patch or failing (500, 502): the delivery
/// fails at once with 500, after one patch, and leaves the object
/// unannotated; the next delivery succeeds. An API server asking for the
/// patch again (503, 504, 429 with `Retry-After`, as API priority and
/// fairness does) gets it again within the trigger's bounded retry
/// (`fluxhook_trigger::BoundedRetry`), and the delivery succeeds; one that
/// keeps asking gets the retries the policy allows, then the delivery fails
/// with 500 (a sender waits seconds, not the minutes kube's own retry takes).
async fn api_server_failures_fail_then_recover(s: &Sandbox) {
    git_repository(s, NS, "app-flaky", json!({}));
    let path = serve(
        s,
        "flaky",
        "flaky-token",
        json!({"type": "generic", "resources": [{"kind": "GitRepository", "name": "app-flaky"}]}),
    )
    .await;
    let repo = "app-flaky";
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));
    let patch_of_repo = RequestMatcher::any()
        .verb(Verb::Patch)
        .resource("gitrepositories")
        .namespace(NS)
        .name(repo);
    let faults = s.api().faults();

    for code in [500, 502] {
        faults.fail_next(1, code, patch_of_repo.clone());
        let annotation = requested_at(s, NS, repo);
        let (status, attempts) = post_counting_patches(s, &path, &push).await;
        assert_eq!(
            status,
            StatusCode::INTERNAL_SERVER_ERROR,
            "API server {code}"
        );
        assert_eq!(
            attempts,
            [Some(code)],
            "API server {code}: one patch, refused"
        );
        assert_eq!(
            requested_at(s, NS, repo),
            annotation,
            "{code}: not annotated"
        );
        assert_accepted(
            s,
            &format!("after API server {code}"),
            &path,
            &push,
            &[repo],
        )
        .await;
    }

    for code in [503, 504, 429] {
        match code {
            429 => faults.throttle_next(1, 1, patch_of_repo.clone()),
            _ => faults.fail_next(1, code, patch_of_repo.clone()),
        }
        let annotation = requested_at(s, NS, repo);
        let (status, attempts) = post_counting_patches(s, &path, &push).await;
        assert_eq!(status, StatusCode::OK, "API server {code}, then 200");
        assert_eq!(
            attempts,
            [Some(code), Some(200)],
            "API server {code}: asked again, sent again"
        );
        assert_ne!(requested_at(s, NS, repo), annotation, "{code}: annotated");
    }

    // Three retries (the default policy), then the answer stands.
    faults.fail_next(4, 503, patch_of_repo.clone());
    let annotation = requested_at(s, NS, repo);
    let (status, attempts) = post_counting_patches(s, &path, &push).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(attempts, [Some(503); 4], "one patch and three retries");
    assert_eq!(requested_at(s, NS, repo), annotation, "not annotated");
    assert_accepted(s, "after the API server is back", &path, &push, &[repo]).await;

    // A retried request counts once, with its final answer, as client-go
    // counts rest_client_requests_total: only the persistent 503 ended so.
    let text = metrics(s).await;
    for (code, count) in [("503", 1), ("504", 0), ("429", 0)] {
        assert_eq!(
            sample(
                &text,
                "rest_client_requests_total",
                &[("method", "PATCH"), ("code", code)]
            ),
            count,
            "PATCH {code}\n{text}"
        );
    }
}

/// POSTs `delivery`; the answer and what the API server answered each
/// GitRepository patch made meanwhile.
async fn post_counting_patches(
    s: &Sandbox,
    path: &str,
    delivery: &Delivery,
) -> (StatusCode, Vec<Option<u16>>) {
    let before = repo_patches(s).len();
    let status = post(s, path, delivery).await;
    let attempts = repo_patches(s)
        .split_off(before)
        .into_iter()
        .map(|patch| patch.status)
        .collect();
    (status, attempts)
}

async fn metrics_count_requests_by_outcome(s: &Sandbox) {
    let unmatched = |text: &str| {
        sample(
            text,
            "fluxhook_receiver_unmatched_requests_total",
            &[("code", "404")],
        )
    };
    let before = metrics(s).await;
    let nowhere = Delivery::json(&json!({}));
    assert_eq!(
        post(s, &format!("/hook/{}", "f".repeat(64)), &nowhere).await,
        StatusCode::NOT_FOUND
    );
    assert_eq!(post(s, "/", &nowhere).await, StatusCode::NOT_FOUND);

    let text = metrics(s).await;
    assert_eq!(unmatched(&text), unmatched(&before) + 2, "{text}");
    let requests = |name: &str, code: &str| {
        sample(
            &text,
            "fluxhook_receiver_requests_total",
            &[("namespace", NS), ("name", name), ("code", code)],
        )
    };
    // What the cases above sent, by Receiver and outcome.
    for (name, code, count) in [
        ("pausable", "503", 2),
        ("pausable", "200", 1),
        ("orphaned", "503", 1),
        ("orphaned", "200", 1),
        ("rotated", "400", 1),
        ("rotated", "200", 1),
        ("flaky", "500", 3),
        ("flaky", "200", 6),
    ] {
        assert_eq!(requests(name, code), count, "{name} {code}\n{text}");
    }
    assert_eq!(requests("pausable", "400"), 0, "{text}");
    assert_eq!(
        sample(
            &text,
            "fluxhook_receiver_requests_total",
            &[("name", "flaky"), ("type", "generic"), ("code", "200")],
        ),
        6,
        "the type is a label\n{text}"
    );
    assert_eq!(
        sample(
            &text,
            "fluxhook_receiver_request_duration_seconds_count",
            &[("namespace", NS), ("name", "flaky")],
        ),
        9,
        "every answer is timed\n{text}"
    );
}

/// SIGTERM while a delivery waits on the API server: the delivery is still
/// answered 200, then the process exits 0.
async fn sigterm_lets_the_request_in_flight_finish(s: Sandbox) {
    git_repository(&s, NS, "app-last", json!({}));
    let path = serve(
        &s,
        "last",
        "last-token",
        json!({"type": "generic", "resources": [{"kind": "GitRepository", "name": "app-last"}]}),
    )
    .await;
    let patch_of_repo = RequestMatcher::any()
        .verb(Verb::Patch)
        .resource("gitrepositories")
        .name("app-last");
    // Long enough for the signal to arrive while the patch is on its way.
    s.api()
        .faults()
        .set_latency(std::time::Duration::from_millis(500));
    let url = format!("{}{path}", s.urls().receiver());
    let in_flight = tokio::spawn(async move {
        let response = reqwest::Client::new()
            .post(url)
            .header("content-type", "application/json")
            .body(r#"{"ref": "refs/heads/main"}"#)
            .send()
            .await?;
        Ok::<_, reqwest::Error>(response.status())
    });
    e2e_support::eventually(&s, "the patch is in flight", || {
        s.api().requests().count(&patch_of_repo) == 1
    })
    .await;

    stop(s).await;
    // 200 only once the patch succeeded.
    assert_eq!(in_flight.await.unwrap().unwrap(), StatusCode::OK);
}
