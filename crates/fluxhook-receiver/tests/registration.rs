//! Webhook registration by the Receiver controller, run in-process against the fake
//! Kubernetes API server and fake Git hosts: annotated GitRepositories get one hook, which
//! follows token rotations, goes with the annotations or the Receiver, and reports host
//! failures until they pass.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs)]

use std::sync::Arc;
use std::time::Duration;

use fluxhook_api::{Receiver, webhook_path};
use fluxhook_receiver::EndpointIndex;
use fluxhook_receiver::controller::{self, ControllerConfig, ControllerError, Readiness};
use fluxhook_receiver::registration::{
    ACCESS_TOKEN_SECRET_ANNOTATION, API_URL_ANNOTATION, CA_CONFIGMAP_ANNOTATION,
    CA_SECRET_ANNOTATION, CLEANUP_FINALIZER, CONDITION_TYPE, DELIVERY_CONDITION_TYPE, HostBackoff,
    INSECURE_SKIP_TLS_VERIFY_ANNOTATION, PROVIDER_ANNOTATION, REGISTERED_ANNOTATION,
    RegistrationConfig, URL_ANNOTATION,
};
use fluxhook_test_apiserver::{RequestMatcher, TestApiServer, Verb, bounded, eventually, fixtures};
use fluxhook_test_githost::{
    FakeApp, FakeConfig, FakeHook, FakeHost, Fault, HostKind, LastResponse, RetryAfterHeader,
};
use kube::api::{Api, DeleteParams, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use serde_json::{Value, json};
use tokio::task::JoinHandle;

const NS: &str = "flux-system";
const RECEIVER: &str = "github";
const RECEIVER_TOKEN: &str = "s3cr3t";
const PUBLIC_URL: &str = "https://flux-webhook.example.com";

/// The fake API server with a Receiver naming an annotated GitRepository on a fake GitHub.
struct Cluster {
    server: TestApiServer,
    client: kube::Client,
    host: FakeHost,
}

impl Cluster {
    async fn start() -> Self {
        Self::start_with(FakeConfig::new(HostKind::GitHub)).await
    }

    /// As [`start`](Self::start), with the fake GitHub set up by `config`.
    async fn start_with(host_config: FakeConfig) -> Self {
        let server = TestApiServer::start_flux(&[NS]).await.unwrap();
        let client = server.kube_client().await.unwrap();
        let host = FakeHost::start_with(host_config).await.unwrap();
        let cluster = Self {
            server,
            client,
            host,
        };
        // Watched, so that a rotation reconciles the Receiver at once.
        cluster.seed(secret(
            "webhook-token",
            RECEIVER_TOKEN,
            json!({"reconcile.fluxcd.io/watch": "Enabled"}),
        ));
        cluster.seed(secret("github-token", cluster.host.token(), json!({})));
        let mut app = fixtures::git_repository(NS, "app", json!({}));
        app["metadata"]["annotations"] = cluster.annotations();
        app["spec"]["url"] = json!(format!(
            "{}/{}/{}",
            cluster.host.url(),
            cluster.host.owner(),
            cluster.host.repo()
        ));
        cluster.seed(app);
        cluster.seed(fixtures::github_receiver(
            NS,
            RECEIVER,
            json!([
                {"kind": "GitRepository", "name": "app"},
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "apps"},
            ]),
        ));
        cluster
    }

    fn seed(&self, object: Value) {
        self.server.create(object).unwrap();
    }

    /// The annotations asking for a hook on the fake GitHub (an http API, so named).
    fn annotations(&self) -> Value {
        json!({
            URL_ANNOTATION: PUBLIC_URL,
            ACCESS_TOKEN_SECRET_ANNOTATION: "github-token",
            PROVIDER_ANNOTATION: "github",
            API_URL_ANNOTATION: self.host.api_base(),
        })
    }

    /// Starts the controller with short retries and no retries within a reconciliation.
    fn run(&self) -> Running {
        self.run_with(RegistrationConfig::default())
    }

    /// As [`run`](Self::run), registering as `registration` says.
    fn run_with(&self, registration: RegistrationConfig) -> Running {
        let config = ControllerConfig {
            min_retry_delay: Duration::from_millis(20),
            max_retry_delay: Duration::from_millis(200),
            registration: RegistrationConfig {
                host_backoff: HostBackoff {
                    max_retries: 0,
                    ..HostBackoff::default()
                },
                ..registration
            },
            ..ControllerConfig::default()
        };
        let readiness = Readiness::default();
        let task = tokio::spawn(controller::run(
            self.client.clone(),
            Arc::new(EndpointIndex::default()),
            config,
            readiness.clone(),
        ));
        Running { readiness, task }
    }

    async fn patch(&self, resource: &ApiResource, name: &str, patch: Value) {
        Api::<DynamicObject>::namespaced_with(self.client.clone(), NS, resource)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    }

    async fn set_secret(&self, name: &str, token: &str) {
        let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
        let data = json!({"token": base64(token)});
        self.patch(&secrets, name, json!({ "data": data })).await;
    }

    /// Merge-patches the GitRepository `app`'s annotations.
    async fn annotate_repository(&self, annotations: Value) {
        self.patch(
            &git_repositories(),
            "app",
            json!({"metadata": {"annotations": annotations}}),
        )
        .await;
    }

    /// Removes the annotations asking for a hook from the GitRepository `app`.
    async fn remove_registration_annotations(&self) {
        let removed: serde_json::Map<String, Value> = self
            .annotations()
            .as_object()
            .unwrap()
            .keys()
            .map(|key| (key.clone(), Value::Null))
            .collect();
        self.annotate_repository(Value::Object(removed)).await;
    }

    /// Deletes the Receiver and waits for it to be gone (its hooks deleted first).
    async fn delete_receiver(&self) {
        Api::<DynamicObject>::namespaced_with(
            self.client.clone(),
            NS,
            &ApiResource::erase::<Receiver>(&()),
        )
        .delete(RECEIVER, &DeleteParams::default())
        .await
        .unwrap();
        eventually("the Receiver to be gone", || self.receiver().is_none()).await;
    }

    fn receiver(&self) -> Option<Value> {
        self.server
            .get(
                "notification.toolkit.fluxcd.io/v1",
                "Receiver",
                NS,
                RECEIVER,
            )
            .ok()
    }

    /// `(status, reason, message)` of the condition `type_`.
    fn condition_of(&self, type_: &str) -> Option<(String, String, String)> {
        let receiver = self.receiver()?;
        let condition = receiver["status"]["conditions"]
            .as_array()?
            .iter()
            .find(|c| c["type"] == type_)?
            .clone();
        let text = |field: &str| condition[field].as_str().unwrap_or_default().to_string();
        Some((text("status"), text("reason"), text("message")))
    }

    /// `(status, reason, message)` of the registration condition.
    fn condition(&self) -> Option<(String, String, String)> {
        self.condition_of(CONDITION_TYPE)
    }

    /// Whether the registration condition is True: the hooks are registered.
    fn is_registered(&self) -> bool {
        self.condition()
            .is_some_and(|(status, _, _)| status == "True")
    }

    /// Whether the registration condition is False with a message containing `text`.
    fn fails_with(&self, text: &str) -> bool {
        self.condition()
            .is_some_and(|(status, _, message)| status == "False" && message.contains(text))
    }

    /// The hook URLs remembered on the Receiver.
    fn remembered(&self) -> Vec<String> {
        let Some(receiver) = self.receiver() else {
            return Vec::new();
        };
        let Some(record) = receiver["metadata"]["annotations"][REGISTERED_ANNOTATION].as_str()
        else {
            return Vec::new();
        };
        let record: Vec<Value> = serde_json::from_str(record).unwrap();
        record
            .iter()
            .map(|hook| hook["hookUrl"].as_str().unwrap().to_string())
            .collect()
    }

    fn finalizers(&self) -> Vec<String> {
        self.receiver()
            .and_then(|r| serde_json::from_value(r["metadata"]["finalizers"].clone()).ok())
            .unwrap_or_default()
    }

    /// `(type, reason, note)` of the Events recorded on the Receiver.
    fn events(&self) -> Vec<(String, String, String)> {
        self.server
            .list("events.k8s.io/v1", "Event", Some(NS))
            .unwrap()
            .iter()
            .filter(|event| event["regarding"]["name"] == RECEIVER)
            .map(|event| {
                let text = |field: &str| event[field].as_str().unwrap_or_default().to_string();
                (text("type"), text("reason"), text("note"))
            })
            .collect()
    }

    fn has_event(&self, reason: &str, note_contains: &str) -> bool {
        self.events()
            .iter()
            .any(|(_, r, note)| r == reason && note.contains(note_contains))
    }

    fn hook_urls(&self) -> Vec<String> {
        self.host.hooks().into_iter().map(|hook| hook.url).collect()
    }
}

fn secret(name: &str, token: &str, labels: Value) -> Value {
    json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": {"token": base64(token)},
    })
}

fn base64(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn hook_url(token: &str) -> String {
    format!("{PUBLIC_URL}{}", webhook_path(token, RECEIVER, NS))
}

fn git_repositories() -> ApiResource {
    ApiResource {
        group: "source.toolkit.fluxcd.io".into(),
        version: "v1".into(),
        api_version: "source.toolkit.fluxcd.io/v1".into(),
        kind: "GitRepository".into(),
        plural: "gitrepositories".into(),
    }
}

/// A running controller, stopped when dropped.
struct Running {
    readiness: Readiness,
    task: JoinHandle<Result<(), ControllerError>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the controller and waits for the first hook to be registered.
async fn registered(cluster: &Cluster) -> Running {
    let running = cluster.run();
    bounded("the controller to be ready", running.readiness.wait()).await;
    eventually("the webhook to be registered", || cluster.is_registered()).await;
    running
}

#[tokio::test]
async fn an_annotated_repository_gets_one_hook_and_a_second_reconcile_writes_nothing() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;

    let hooks = cluster.host.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    let hook = &hooks[0];
    assert_eq!(hook.url, hook_url(RECEIVER_TOKEN));
    assert_eq!(hook.events, ["push"]);
    assert_eq!(hook.secret.as_deref(), Some(RECEIVER_TOKEN));
    assert_eq!(hook.content_type, "json");
    assert!(hook.active && hook.tls_verification);

    let (_, reason, message) = cluster.condition().unwrap();
    assert_eq!(reason, "Succeeded");
    assert!(message.contains(&hook_url(RECEIVER_TOKEN)), "{message}");
    assert!(message.contains("octocat/hello-world"), "{message}");
    assert_eq!(cluster.remembered(), [hook_url(RECEIVER_TOKEN)]);
    assert_eq!(
        cluster.finalizers(),
        ["finalizers.fluxcd.io", CLEANUP_FINALIZER]
    );
    assert!(cluster.has_event("WebhookCreated", "octocat/hello-world"));
    let ready = &cluster.receiver().unwrap()["status"]["conditions"];
    assert!(
        ready
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["type"] == "Ready" && c["status"] == "True"),
        "{ready}"
    );

    // Reconciled again: the host is asked, and nothing is written.
    reconciled_again_writes_nothing(&cluster).await;
    assert_eq!(cluster.host.hooks().len(), 1);
}

#[tokio::test]
async fn a_rotated_token_moves_the_hook_and_leaves_no_stale_one() {
    let cluster = Cluster::start().await;
    // A hook to a URL of someone else's stays.
    cluster
        .host
        .seed(FakeHook::new("https://ci.example.com/hook", &["push"]));
    let _running = registered(&cluster).await;
    assert_eq!(cluster.hook_urls().len(), 2);

    cluster.set_secret("webhook-token", "n3w-t0ken").await;
    eventually("the hook to move to the new path", || {
        let mut urls = cluster.hook_urls();
        urls.sort();
        urls == [
            "https://ci.example.com/hook".to_string(),
            hook_url("n3w-t0ken"),
        ]
    })
    .await;
    let new = cluster.host.hooks();
    let moved = new.iter().find(|h| h.url == hook_url("n3w-t0ken")).unwrap();
    assert_eq!(moved.secret.as_deref(), Some("n3w-t0ken"));
    eventually("the record to follow", || {
        cluster.remembered() == [hook_url("n3w-t0ken")]
    })
    .await;
    assert!(cluster.has_event("WebhookDeleted", &hook_url(RECEIVER_TOKEN)));
}

#[tokio::test]
async fn removing_the_annotations_deletes_the_hook() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;

    cluster.remove_registration_annotations().await;
    eventually("the hook to be deleted", || cluster.host.hooks().is_empty()).await;
    eventually("the record, finalizer and condition to go", || {
        cluster.remembered().is_empty()
            && cluster.finalizers() == ["finalizers.fluxcd.io"]
            && cluster.condition().is_none()
    })
    .await;
    assert!(cluster.has_event("WebhookDeleted", "octocat/hello-world"));
}

#[tokio::test]
async fn a_deleted_receiver_deletes_its_hooks_before_it_goes() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;

    cluster.delete_receiver().await;
    assert!(cluster.host.hooks().is_empty());
    assert!(cluster.has_event("WebhookDeleted", "octocat/hello-world"));
}

#[tokio::test]
async fn host_failures_are_reported_without_secrets_then_recovered() {
    let cluster = Cluster::start().await;
    cluster.set_secret("github-token", "not-the-token").await;
    let running = cluster.run();
    bounded("the controller to be ready", running.readiness.wait()).await;

    eventually("the failure to be reported", || {
        cluster
            .condition()
            .is_some_and(|(status, reason, _)| status == "False" && reason == "RegistrationFailed")
    })
    .await;
    let (_, _, message) = cluster.condition().unwrap();
    for part in [
        "GitRepository flux-system/app",
        "GitHub 127.0.0.1",
        "octocat/hello-world",
        "HTTP 401",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    eventually("a Warning Event", || {
        cluster.has_event("WebhookRegistrationFailed", "HTTP 401")
    })
    .await;
    for (_, _, note) in cluster.events() {
        for secret in [RECEIVER_TOKEN, "not-the-token", cluster.host.token()] {
            assert!(!note.contains(secret), "{note}");
        }
    }
    for secret in [RECEIVER_TOKEN, "not-the-token", cluster.host.token()] {
        assert!(!message.contains(secret), "{message}");
    }
    // Nothing was created, so nothing is remembered or blocks deletion.
    assert!(cluster.remembered().is_empty());
    assert_eq!(cluster.finalizers(), ["finalizers.fluxcd.io"]);

    // The access token fixed, the retries register the hook.
    cluster
        .set_secret("github-token", cluster.host.token())
        .await;
    eventually("the hook to be registered", || cluster.is_registered()).await;
    assert_eq!(cluster.hook_urls(), [hook_url(RECEIVER_TOKEN)]);

    // Server errors: reported, and retried until they pass.
    cluster.host.inject(Fault::ServerError { status: 503 }, 3);
    cluster.set_secret("webhook-token", "r0tated").await;
    eventually("the hook to move despite the errors", || {
        cluster.hook_urls() == [hook_url("r0tated")] && cluster.is_registered()
    })
    .await;
    let refused = cluster.host.requests();
    assert_eq!(refused.iter().filter(|r| r.status == 503).count(), 3);
}

#[tokio::test]
async fn a_deleted_receiver_waits_for_its_hooks_and_says_why() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;

    cluster.set_secret("github-token", "revoked").await;
    Api::<DynamicObject>::namespaced_with(
        cluster.client.clone(),
        NS,
        &ApiResource::erase::<Receiver>(&()),
    )
    .delete(RECEIVER, &DeleteParams::default())
    .await
    .unwrap();
    eventually("the cleanup failure to be reported", || {
        cluster
            .condition()
            .is_some_and(|(status, reason, _)| status == "False" && reason == "CleanupFailed")
    })
    .await;
    let (_, _, message) = cluster.condition().unwrap();
    assert!(message.contains("HTTP 401"), "{message}");
    assert!(message.contains(CLEANUP_FINALIZER), "{message}");
    let receiver = cluster.receiver().unwrap();
    assert!(receiver["metadata"]["deletionTimestamp"].is_string());
    assert_eq!(cluster.host.hooks().len(), 1);

    cluster
        .set_secret("github-token", cluster.host.token())
        .await;
    eventually("the Receiver to be gone", || cluster.receiver().is_none()).await;
    assert!(cluster.host.hooks().is_empty());
}

#[tokio::test]
async fn receivers_registering_nothing_are_not_told_of_unreadable_repositories() {
    let cluster = Cluster::start().await;
    cluster.remove_registration_annotations().await;
    cluster.server.faults().fail_next(
        usize::MAX,
        500,
        RequestMatcher::any()
            .verb(Verb::Get)
            .resource("gitrepositories"),
    );
    let running = cluster.run();
    bounded("the controller to be ready", running.readiness.wait()).await;
    eventually("the Receiver to be Ready", || {
        cluster.receiver().unwrap()["status"]["conditions"]
            .as_array()
            .is_some_and(|c| {
                c.iter()
                    .any(|c| c["type"] == "Ready" && c["status"] == "True")
            })
    })
    .await;
    assert!(
        cluster.server.requests().count(
            &RequestMatcher::any()
                .verb(Verb::Get)
                .resource("gitrepositories")
        ) > 0
    );
    assert_eq!(cluster.condition(), None);
    assert!(cluster.host.requests().is_empty());
    assert_eq!(cluster.finalizers(), ["finalizers.fluxcd.io"]);
}

#[tokio::test]
async fn cross_namespace_references_can_be_refused() {
    let cluster = Cluster::start().await;
    cluster.seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team-a"}}));
    let receivers = ApiResource::erase::<Receiver>(&());
    cluster
        .patch(
            &receivers,
            RECEIVER,
            json!({"spec": {"resources": [{"kind": "GitRepository", "name": "app", "namespace": "team-a"}]}}),
        )
        .await;
    let running = cluster.run_with(RegistrationConfig {
        no_cross_namespace_refs: true,
        ..RegistrationConfig::default()
    });
    bounded("the controller to be ready", running.readiness.wait()).await;
    eventually("the refusal to be reported", || {
        cluster.fails_with("--no-cross-namespace-refs")
    })
    .await;
    assert!(cluster.host.requests().is_empty());
}

#[tokio::test]
async fn access_tokens_in_secrets_are_trimmed() {
    let cluster = Cluster::start().await;
    // As `kubectl create secret --from-file` leaves a token that `echo` wrote.
    let token = format!("{}\n", cluster.host.token());
    cluster.set_secret("github-token", &token).await;
    let _running = registered(&cluster).await;
    assert_eq!(cluster.hook_urls(), [hook_url(RECEIVER_TOKEN)]);
}

#[tokio::test]
async fn a_respelled_repository_keeps_its_live_hook() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;
    let id = cluster.host.hooks()[0].id;
    cluster.host.clear_requests();

    // The same repository, spelled as GitHub also accepts it: owner and name in another
    // case, the API URL with a trailing slash.
    let respelled = format!("{}/OctoCat/Hello-World", cluster.host.url());
    cluster
        .patch(
            &git_repositories(),
            "app",
            json!({
                "metadata": {"annotations": {API_URL_ANNOTATION: format!("{}/", cluster.host.api_base())}},
                "spec": {"url": respelled},
            }),
        )
        .await;
    // The pass is over once the record holds the new spelling alone.
    eventually("the record to follow the new spelling", || {
        cluster.receiver().is_some_and(|receiver| {
            let record = receiver["metadata"]["annotations"][REGISTERED_ANNOTATION]
                .as_str()
                .unwrap_or("[]");
            let record: Vec<Value> = serde_json::from_str(record).unwrap();
            let owners: Vec<&str> = record
                .iter()
                .map(|hook| hook["owner"].as_str().unwrap())
                .collect();
            owners == ["OctoCat"]
        })
    })
    .await;
    let hooks = cluster.host.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert_eq!(hooks[0].id, id, "the live hook was replaced");
    assert!(
        cluster.host.writes().is_empty(),
        "{:?}",
        cluster.host.writes()
    );
    assert!(!cluster.has_event("WebhookDeleted", ""));
}

#[tokio::test]
async fn hosts_behind_a_private_ca_are_reached_with_the_ca_secret() {
    let cluster = Cluster::start_with(FakeConfig {
        tls: true,
        ..FakeConfig::new(HostKind::GitHub)
    })
    .await;
    let _running = cluster.run();
    eventually("the host's certificate to be refused", || {
        cluster.fails_with("could not reach the host")
    })
    .await;
    assert!(cluster.host.hooks().is_empty());

    cluster.seed(json!({
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "git-ca", "namespace": NS},
        "data": {"ca.crt": base64(FakeHost::ca_pem())},
    }));
    cluster
        .annotate_repository(json!({CA_SECRET_ANNOTATION: "git-ca"}))
        .await;
    eventually("the hook to be registered", || cluster.is_registered()).await;
    assert_eq!(cluster.hook_urls(), [hook_url(RECEIVER_TOKEN)]);

    // The CA is remembered: the hook is deleted through it when the Receiver goes.
    cluster.delete_receiver().await;
    assert!(cluster.host.hooks().is_empty());
}

#[tokio::test]
async fn hosts_behind_a_private_ca_are_reached_with_a_ca_configmap() {
    let cluster = Cluster::start_with(FakeConfig {
        tls: true,
        ..FakeConfig::new(HostKind::GitHub)
    })
    .await;
    // A ConfigMap without the key: the condition names it and the key.
    cluster.seed(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "git-ca", "namespace": NS},
        "data": {"ca.pem": FakeHost::ca_pem()},
    }));
    cluster
        .annotate_repository(json!({CA_CONFIGMAP_ANNOTATION: "git-ca"}))
        .await;
    let _running = cluster.run();
    eventually("the missing key to be reported", || {
        cluster.condition().is_some_and(|(status, _, message)| {
            status == "False"
                && message.contains(&format!(
                    "CA ConfigMap {NS}/git-ca ({CA_CONFIGMAP_ANNOTATION}) has no \"ca.crt\" key"
                ))
        })
    })
    .await;
    assert!(cluster.host.requests().is_empty());

    // The key as Kubernetes' kube-root-ca.crt ConfigMap holds it: PEM text under data.
    let config_maps = ApiResource::erase::<k8s_openapi::api::core::v1::ConfigMap>(&());
    cluster
        .patch(
            &config_maps,
            "git-ca",
            json!({"data": {"ca.crt": FakeHost::ca_pem()}}),
        )
        .await;
    reconcile_now(&cluster, "ca").await;
    eventually("the hook to be registered", || cluster.is_registered()).await;
    assert_eq!(cluster.hook_urls(), [hook_url(RECEIVER_TOKEN)]);
    let record = cluster.receiver().unwrap()["metadata"]["annotations"][REGISTERED_ANNOTATION]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(record.contains(r#""caConfigMap":"git-ca""#), "{record}");

    // Both forms at once is an error naming both; the hook stays while it is.
    cluster
        .annotate_repository(json!({CA_SECRET_ANNOTATION: "git-ca"}))
        .await;
    eventually("the conflict to be reported", || {
        cluster.condition().is_some_and(|(status, _, message)| {
            status == "False"
                && message.contains(CA_SECRET_ANNOTATION)
                && message.contains("not both")
        })
    })
    .await;
    assert_eq!(cluster.hook_urls(), [hook_url(RECEIVER_TOKEN)]);
    cluster
        .annotate_repository(json!({CA_SECRET_ANNOTATION: null}))
        .await;
    eventually("the hook to be registered again", || {
        cluster.is_registered()
    })
    .await;

    // The ConfigMap is remembered: the hook is deleted through it when the Receiver goes.
    cluster.delete_receiver().await;
    assert!(cluster.host.hooks().is_empty());
}

#[tokio::test]
async fn a_hook_without_certificate_verification_is_kept_so() {
    let cluster = Cluster::start().await;
    cluster
        .annotate_repository(json!({INSECURE_SKIP_TLS_VERIFY_ANNOTATION: "true"}))
        .await;
    let _running = registered(&cluster).await;
    let hooks = cluster.host.hooks();
    assert_eq!(hooks.len(), 1, "{hooks:?}");
    assert!(!hooks[0].tls_verification);

    // Reconciled again: ensure keeps the opt-out and writes nothing.
    reconciled_again_writes_nothing(&cluster).await;
}

/// Reconciles the Receiver again and checks that the host was asked but nothing written.
async fn reconciled_again_writes_nothing(cluster: &Cluster) {
    cluster.host.clear_requests();
    reconcile_now(cluster, "again").await;
    assert!(!cluster.host.requests().is_empty());
    assert!(
        cluster.host.writes().is_empty(),
        "{:?}",
        cluster.host.writes()
    );
}

/// Asks the controller to reconcile the Receiver now, and waits until it has.
async fn reconcile_now(cluster: &Cluster, token: &str) {
    cluster
        .patch(
            &ApiResource::erase::<Receiver>(&()),
            RECEIVER,
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        )
        .await;
    eventually("the request to be handled", || {
        cluster.receiver().unwrap()["status"]["lastHandledReconcileAt"] == token
    })
    .await;
}

#[tokio::test]
async fn github_secondary_limits_hold_the_host_back_for_the_minute_it_asks() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;

    // GitHub's secondary limit without Retry-After: at least a minute, longer than the
    // controller waits within a call (not at all here), so the attempt ends and the host is
    // left alone until the minute is over.
    cluster
        .host
        .inject(Fault::SecondaryRateLimit { retry_after: None }, 1);
    cluster.host.clear_requests();
    reconcile_now(&cluster, "limited").await;
    let (status, reason, message) = cluster.condition().unwrap();
    assert_eq!(
        (status.as_str(), reason.as_str()),
        ("False", "RegistrationFailed")
    );
    for part in [
        "GitRepository flux-system/app",
        "octocat/hello-world",
        "rate limited (HTTP 403)",
        "asks to wait 60s",
        "trying again in 60s, not sooner",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    assert!(cluster.has_event("WebhookRegistrationFailed", "trying again in 60s"));
    assert_eq!(cluster.host.requests().len(), 1);

    // Reconciled again within the minute (an edit, a watch event): no call reaches GitHub,
    // and the condition says why and for how long.
    reconcile_now(&cluster, "again").await;
    let requests = cluster.host.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (status, _, message) = cluster.condition().unwrap();
    assert_eq!(status, "False");
    assert!(
        message.contains("the host asked to be left alone (rate limit): trying again in"),
        "{message}"
    );
    // The hook registered before stays remembered.
    assert_eq!(cluster.remembered(), [hook_url(RECEIVER_TOKEN)]);
    for (_, _, note) in cluster.events() {
        assert!(!note.contains(cluster.host.token()), "{note}");
    }
}

#[tokio::test]
async fn a_rate_limited_registration_is_retried_after_the_wait_not_sooner() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;

    // A rotation must move the hook, but GitHub rate limits the first call for 3 s (an HTTP
    // date, as GitHub may send it), longer than the controller's per-call bound.
    for retry_after in [RetryAfterHeader::DateIn(3), RetryAfterHeader::Seconds(3)] {
        cluster.host.inject(
            Fault::SecondaryRateLimit {
                retry_after: Some(retry_after),
            },
            1,
        );
        cluster.host.clear_requests();
        let token = format!("{retry_after:?}");
        cluster.set_secret("webhook-token", &token).await;
        eventually("the hook to move once the wait is over", || {
            cluster.hook_urls() == [hook_url(&token)] && cluster.is_registered()
        })
        .await;
        let requests = cluster.host.requests();
        assert_eq!(requests[0].status, 403, "{requests:?}");
        // The fake marks a request before the wait it asked for: there is none, though the
        // controller's own backoff (20 ms here) is far shorter.
        let early: Vec<_> = requests.iter().filter(|r| r.early).collect();
        assert!(early.is_empty(), "{retry_after:?}: {early:?}");
        assert!(cluster.has_event("WebhookRegistrationFailed", "rate limited (HTTP 403)"));
    }
}

/// Makes Secret `github-token` a Flux GitHub App Secret with `keys` (and no `token`).
async fn set_app_secret(cluster: &Cluster, keys: &[(&str, &str)]) {
    // A merge patch: every key not given is removed.
    let mut data = serde_json::Map::new();
    for key in [
        "token",
        "githubAppID",
        "githubAppInstallationID",
        "githubAppPrivateKey",
    ] {
        data.insert(key.into(), Value::Null);
    }
    for (key, value) in keys {
        data.insert((*key).into(), json!(base64(value)));
    }
    let secrets = ApiResource::erase::<k8s_openapi::api::core::v1::Secret>(&());
    cluster
        .patch(&secrets, "github-token", json!({ "data": data }))
        .await;
}

fn app_keys(app: &FakeApp) -> Vec<(&'static str, String)> {
    vec![
        ("githubAppID", app.app_id.to_string()),
        ("githubAppInstallationID", app.installation_id.to_string()),
        ("githubAppPrivateKey", FakeApp::private_key_pem().to_owned()),
    ]
}

#[tokio::test]
async fn a_github_app_secret_registers_with_installation_tokens_minted_anew_when_refused() {
    let cluster = Cluster::start().await;
    let app = FakeApp::new();
    cluster.host.install_app(app.clone());
    let keys = app_keys(&app);
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
    set_app_secret(&cluster, &keys).await;

    let _running = registered(&cluster).await;
    assert_eq!(cluster.hook_urls(), [hook_url(RECEIVER_TOKEN)]);
    assert_eq!(cluster.host.installation_tokens_issued(), 1);
    let exchanges = |cluster: &Cluster| {
        cluster
            .host
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/access_tokens"))
            .count()
    };
    assert_eq!(exchanges(&cluster), 1);

    // Another pass uses the cached token: an hour is far from over.
    cluster.host.clear_requests();
    reconcile_now(&cluster, "cached").await;
    assert_eq!(exchanges(&cluster), 0);
    assert!(!cluster.host.requests().is_empty());
    assert_eq!(cluster.host.installation_tokens_issued(), 1);

    // The host refuses the token (revoked, or expired by its clock): the pass fails with
    // 401, the token is forgotten, and the retry mints another and succeeds.
    cluster.host.expire_installation_tokens();
    cluster.host.clear_requests();
    reconcile_now(&cluster, "expired").await;
    eventually("a new installation token to register with", || {
        cluster.host.installation_tokens_issued() == 2
            && cluster
                .host
                .requests()
                .last()
                .is_some_and(|r| r.status == 200)
            && cluster.is_registered()
    })
    .await;
    assert!(
        cluster
            .host
            .requests()
            .iter()
            .any(|r| r.status == 401 && r.path.ends_with("/hooks")),
        "the expired token was refused first"
    );
    let key_line = FakeApp::private_key_pem().lines().nth(1).unwrap();
    for (_, _, note) in cluster.events() {
        assert!(!note.contains("ghs_") && !note.contains(key_line), "{note}");
    }
}

#[tokio::test]
async fn github_app_secrets_in_error_say_what_to_fix() {
    let cluster = Cluster::start().await;
    let app = FakeApp::new();
    cluster.host.install_app(app.clone());
    let app_id = app.app_id.to_string();
    let installation = app.installation_id.to_string();

    // The Secret's keys, and what the condition must say.
    type Case<'a> = (&'a [(&'a str, &'a str)], &'a [&'a str]);
    let cases: [Case<'_>; 4] = [
        (
            &[
                ("githubAppID", &app_id),
                ("githubAppInstallationID", "999"),
                ("githubAppPrivateKey", FakeApp::private_key_pem()),
            ],
            &["HTTP 404", "installation 999", "githubAppInstallationID"],
        ),
        (
            &[
                ("githubAppID", &app_id),
                ("githubAppInstallationID", &installation),
                ("githubAppPrivateKey", FakeApp::other_private_key_pem()),
            ],
            &["HTTP 401", "A JSON web token could not be decoded"],
        ),
        (
            &[
                ("githubAppID", &app_id),
                ("githubAppInstallationID", &installation),
                ("githubAppPrivateKey", "ghp_not_a_key"),
            ],
            &["githubAppPrivateKey is not a PEM private key"],
        ),
        (
            &[
                ("githubAppID", &app_id),
                ("githubAppPrivateKey", FakeApp::private_key_pem()),
            ],
            &["has no githubAppInstallationID key"],
        ),
    ];
    // Never a plain token: nothing is registered at any time.
    set_app_secret(&cluster, cases[0].0).await;
    let running = cluster.run();
    bounded("the controller to be ready", running.readiness.wait()).await;
    for (round, (keys, parts)) in cases.iter().enumerate() {
        set_app_secret(&cluster, keys).await;
        reconcile_now(&cluster, &format!("round-{round}")).await;
        let (status, reason, message) = cluster.condition().unwrap();
        assert_eq!(
            (status.as_str(), reason.as_str()),
            ("False", "RegistrationFailed")
        );
        assert!(
            message.contains("access token Secret flux-system/github-token"),
            "{message}"
        );
        for part in *parts {
            assert!(message.contains(part), "{part:?} in {message}");
        }
        let key_line = FakeApp::private_key_pem().lines().nth(1).unwrap();
        assert!(
            !message.contains(key_line) && !message.contains("eyJ"),
            "{message}"
        );
    }
    assert!(cluster.host.hooks().is_empty());
    assert_eq!(cluster.host.installation_tokens_issued(), 0);
}

/// `(status, reason, message)` of the delivery health condition.
fn delivery_condition(cluster: &Cluster) -> Option<(String, String, String)> {
    cluster.condition_of(DELIVERY_CONDITION_TYPE)
}

/// The message of the delivery health condition, which must have `(status, reason)`.
fn delivery_is(cluster: &Cluster, expected: (&str, &str)) -> String {
    let (status, reason, message) = delivery_condition(cluster).unwrap();
    assert_eq!((status.as_str(), reason.as_str()), expected, "{message}");
    message
}

fn delivery_warnings(cluster: &Cluster) -> Vec<String> {
    cluster
        .events()
        .into_iter()
        .filter(|(type_, reason, _)| type_ == "Warning" && reason == "WebhookDeliveryFailed")
        .map(|(_, _, note)| note)
        .collect()
}

#[tokio::test]
async fn failing_github_deliveries_are_reported_until_they_pass() {
    let cluster = Cluster::start().await;
    let _running = registered(&cluster).await;
    // A new hook has delivered nothing yet: nothing to tell.
    assert_eq!(delivery_condition(&cluster), None);
    let id = cluster.host.hooks()[0].id;

    // The receiver does not answer GitHub in time.
    cluster.host.edit_hook(id, |hook| {
        hook.last_response = Some(LastResponse {
            code: Some(504),
            status: "timeout".into(),
            message: Some(String::new()),
        });
    });
    reconcile_now(&cluster, "failing").await;
    let message = delivery_is(&cluster, ("False", "DeliveryFailed"));
    for part in [
        "GitRepository flux-system/app",
        &format!("hook {id} to {}", hook_url(RECEIVER_TOKEN)),
        "octocat/hello-world",
        "last delivery failed: HTTP 504 (timeout)",
    ] {
        assert!(message.contains(part), "{part:?} in {message}");
    }
    eventually("a Warning Event", || delivery_warnings(&cluster).len() == 1).await;
    assert_eq!(delivery_warnings(&cluster), std::slice::from_ref(&message));
    // Registration itself is fine, and says so.
    assert_eq!(cluster.condition().unwrap().0, "True");

    // Seen again: the same Event, counted in its series rather than recorded anew.
    reconcile_now(&cluster, "still failing").await;
    assert_eq!(delivery_condition(&cluster).unwrap().2, message);
    assert_eq!(delivery_warnings(&cluster).len(), 1);
    eventually("the repeat counted in the Event's series", || {
        cluster
            .server
            .list("events.k8s.io/v1", "Event", Some(NS))
            .unwrap()
            .iter()
            .any(|event| {
                event["reason"] == "WebhookDeliveryFailed"
                    && event["series"]["count"].as_u64() >= Some(2)
            })
    })
    .await;

    // Healthy again.
    cluster.host.edit_hook(id, |hook| {
        hook.last_response = Some(LastResponse {
            code: Some(200),
            status: "active".into(),
            message: Some("OK".into()),
        });
    });
    reconcile_now(&cluster, "fixed").await;
    let message = delivery_is(&cluster, ("True", "Succeeded"));
    assert!(
        message.contains("last delivery answered HTTP 200"),
        "{message}"
    );
    assert_eq!(delivery_warnings(&cluster).len(), 1);
}

/// A cluster whose Receiver and GitRepository are on a fake GitLab.
async fn gitlab_cluster() -> Cluster {
    let cluster = Cluster::start_with(FakeConfig::new(HostKind::GitLab)).await;
    cluster
        .annotate_repository(json!({PROVIDER_ANNOTATION: "gitlab"}))
        .await;
    cluster
        .patch(
            &ApiResource::erase::<Receiver>(&()),
            RECEIVER,
            json!({"spec": {"type": "gitlab", "events": ["Push Hook"]}}),
        )
        .await;
    cluster
}

/// The reads of a GitLab hook's events (its delivery log) so far, and of the hook list (one
/// per pass).
fn event_reads(cluster: &Cluster) -> (usize, usize) {
    let requests = cluster.host.requests();
    let gets = |suffix: &str| {
        requests
            .iter()
            .filter(|r| r.method == "GET" && r.path.ends_with(suffix))
            .count()
    };
    (gets("/events"), gets("/hooks"))
}

#[tokio::test]
async fn gitlab_hook_events_tell_a_failing_newest_delivery_until_one_passes() {
    let cluster = gitlab_cluster().await;
    let _running = registered(&cluster).await;
    let id = cluster.host.hooks()[0].id;

    // GitLab still runs the hook (`alert_status: executable`), but its newest delivery got a
    // 500, an older one a 200.
    cluster.host.edit_hook(id, |hook| {
        hook.delivery_events = vec!["500".into(), "200".into()];
    });
    reconcile_now(&cluster, "failing").await;
    let message = delivery_is(&cluster, ("False", "DeliveryFailed"));
    assert!(
        message.contains(&format!("hook {id} to {}", hook_url(RECEIVER_TOKEN)))
            && message.ends_with("last delivery failed: HTTP 500"),
        "{message}"
    );
    eventually("a Warning Event", || delivery_warnings(&cluster).len() == 1).await;
    assert_eq!(delivery_warnings(&cluster), std::slice::from_ref(&message));
    assert_eq!(cluster.condition().unwrap().0, "True");
    // One read per pass that kept the hook (every pass but the one creating it, which
    // had nothing to read), for its newest event only.
    let (events, lists) = event_reads(&cluster);
    assert_eq!(events, lists - 1);
    let reads: Vec<_> = cluster
        .host
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/events"))
        .collect();
    assert!(
        reads
            .iter()
            .all(|r| r.query.as_deref() == Some("per_page=1")),
        "{reads:?}"
    );

    // A later delivery passes.
    cluster.host.edit_hook(id, |hook| {
        hook.delivery_events.insert(0, "200".into());
    });
    reconcile_now(&cluster, "fixed").await;
    let message = delivery_is(&cluster, ("True", "Succeeded"));
    assert!(
        message.ends_with("last delivery answered HTTP 200"),
        "{message}"
    );
    assert_eq!(delivery_warnings(&cluster).len(), 1);
    let (events, lists) = event_reads(&cluster);
    assert_eq!(events, lists - 1);
}

#[tokio::test]
async fn a_gitlab_without_hook_events_is_not_asked_again() {
    let cluster = gitlab_cluster().await;
    // GitLab before 17.3: the events route is unknown (404).
    cluster.host.without_hook_events();
    let _running = registered(&cluster).await;
    let id = cluster.host.hooks()[0].id;
    cluster.host.edit_hook(id, |hook| {
        hook.delivery_events = vec!["500".into()];
    });
    reconcile_now(&cluster, "listed").await;
    // As before hook events: what `alert_status` says, no error, no warning.
    let message = delivery_is(&cluster, ("True", "Succeeded"));
    assert!(message.contains("alert_status executable"), "{message}");
    let (status, reason, _) = cluster.condition().unwrap();
    assert_eq!((status.as_str(), reason.as_str()), ("True", "Succeeded"));
    assert!(delivery_warnings(&cluster).is_empty());
    let (asked, _) = event_reads(&cluster);
    assert_eq!(asked, 1);

    reconcile_now(&cluster, "again").await;
    assert_eq!(delivery_condition(&cluster).unwrap().0, "True");
    assert_eq!(event_reads(&cluster).0, asked, "the host was asked again");
}

#[tokio::test]
async fn a_hook_gitlab_disabled_is_reported_and_replaced() {
    let cluster = gitlab_cluster().await;
    let _running = registered(&cluster).await;
    // The pass that created it heard nothing of it; the next one lists it.
    reconcile_now(&cluster, "listed").await;
    let message = delivery_is(&cluster, ("True", "Succeeded"));
    assert!(message.contains("alert_status executable"), "{message}");

    // GitLab disables the hook for a while after 5xx answers.
    let id = cluster.host.hooks()[0].id;
    cluster.host.edit_hook(id, |hook| {
        hook.active = false;
        hook.disabled_until = Some("2026-12-02T13:10:00.000Z".into());
    });
    reconcile_now(&cluster, "disabled").await;
    let message = delivery_is(&cluster, ("False", "DeliveryFailed"));
    assert!(
        message.contains("alert_status temporarily_disabled, until 2026-12-02T13:10:00.000Z"),
        "{message}"
    );
    eventually("a Warning Event", || {
        delivery_warnings(&cluster)
            .iter()
            .any(|note| note.contains("temporarily_disabled"))
    })
    .await;
    // The disabled hook was replaced by one GitLab runs: the next pass says so.
    let hooks = cluster.host.hooks();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].active && hooks[0].id != id, "{hooks:?}");
    reconcile_now(&cluster, "replaced").await;
    assert_eq!(delivery_condition(&cluster).unwrap().0, "True");
}
