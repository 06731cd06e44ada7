//! The webhook server over real HTTP on loopback, against the fake
//! Kubernetes API server: what each Receiver type accepts and refuses, what
//! gets annotated (read from the objects and the API server's request log),
//! and the status codes, as Flux's notification-controller answers.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine;
use fluxhook_api::{Authentication, RECONCILE_REQUEST_ANNOTATION, Receiver, ReceiverType};
use fluxhook_oidc::testing::TestIssuer;
use fluxhook_oidc::{HttpKeySource, OidcVerifier, VerifierConfig};
use fluxhook_receiver::server::ReceiverServer;
use fluxhook_receiver::{Endpoint, EndpointIndex, EndpointState, Metrics, ReceiverKey};
use fluxhook_signature::{Algorithm, Policy, Scheme};
use fluxhook_test_apiserver::{RequestMatcher, TestApiServer, Verb, fixtures};
use fluxhook_trigger::Trigger;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const TOKEN: &str = "s3cr3t-t0ken";
const GIT: &str = "source.toolkit.fluxcd.io/v1";
const NAMESPACE: &str = "flux-system";
/// The Secret's `audience` and `email`, for `gcr`.
const AUDIENCE: &str = "https://hooks.example.com/gcr";
const EMAIL: &str = "pusher@project.iam.gserviceaccount.com";

/// A fake API server with Flux's kinds, an ID token issuer standing in for
/// Google and for any OIDC provider, and the webhook server on loopback.
struct Cluster {
    api: TestApiServer,
    issuer: TestIssuer,
    index: Arc<EndpointIndex>,
    metrics: Arc<Metrics>,
    base: String,
    http: reqwest::Client,
    _stop: oneshot::Sender<()>,
}

async fn cluster() -> Cluster {
    cluster_with(|trigger| trigger).await
}

async fn cluster_with(configure: impl FnOnce(Trigger) -> Trigger) -> Cluster {
    // The server's log, shown with a failing test's output.
    let _ = tracing_subscriber::fmt()
        .with_env_filter("fluxhook_receiver=debug")
        .with_test_writer()
        .try_init();
    let api = TestApiServer::start_flux(&[NAMESPACE, "apps"])
        .await
        .unwrap();
    let trigger = configure(Trigger::new(api.kube_client().await.unwrap()));

    let issuer = TestIssuer::start_rs256().await.unwrap();
    let verifier = OidcVerifier::with_config(
        Arc::new(HttpKeySource::new().unwrap()),
        VerifierConfig {
            google_issuer: issuer.url().to_owned(),
            ..VerifierConfig::default()
        },
    );
    let index = Arc::new(EndpointIndex::default());
    let metrics = Arc::new(Metrics::new());
    let server = ReceiverServer::new(Arc::clone(&index), trigger, Arc::new(verifier))
        .with_metrics(Arc::clone(&metrics));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(server.serve(listener, async move {
        let _ = stopped.await;
    }));
    Cluster {
        api,
        issuer,
        index,
        metrics,
        base,
        http: reqwest::Client::new(),
        _stop: stop,
    }
}

fn receiver(name: &str, spec: Value) -> Receiver {
    serde_json::from_value(json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": spec,
    }))
    .unwrap()
}

/// A Receiver of `receiver_type` reconciling GitRepository `repo`, with
/// `extra` merged into its spec.
fn spec(receiver_type: &str, repo: &str, extra: Value) -> Value {
    let mut spec = json!({
        "type": receiver_type,
        "resources": [{"kind": "GitRepository", "name": repo}],
    });
    if receiver_type != "generic-oidc" {
        spec["secretRef"] = json!({"name": "webhook-token"});
    }
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        spec[key] = value;
    }
    spec
}

impl Cluster {
    /// Compiles the Receiver with its Secret and serves it; its path.
    fn publish(&self, name: &str, spec: Value) -> String {
        let secret = BTreeMap::from([
            ("token".to_owned(), TOKEN.as_bytes().to_vec()),
            ("audience".to_owned(), AUDIENCE.as_bytes().to_vec()),
            ("email".to_owned(), EMAIL.as_bytes().to_vec()),
        ]);
        let endpoint = Endpoint::compile(&receiver(name, spec), Some(&secret)).unwrap();
        let path = endpoint.webhook_path().as_str().to_owned();
        self.index.publish(EndpointState::Ready(Arc::new(endpoint)));
        path
    }

    fn create_repo(&self, namespace: &str, name: &str, labels: Value) {
        self.api
            .create(fixtures::git_repository(namespace, name, labels))
            .unwrap();
    }

    fn requested_at(&self, namespace: &str, name: &str) -> Option<String> {
        let object = self.api.get(GIT, "GitRepository", namespace, name).unwrap();
        object["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION]
            .as_str()
            .map(str::to_owned)
    }

    fn patches_of(&self, name: &str) -> usize {
        self.api.requests().count(
            &RequestMatcher::any()
                .verb(Verb::Patch)
                .resource("gitrepositories")
                .name(name),
        )
    }

    async fn send(&self, path: &str, delivery: &Delivery) -> u16 {
        self.http
            .post(format!("{}{path}", self.base))
            .headers(delivery.headers.clone())
            .body(delivery.body.clone())
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    }

    /// A token from the test issuer with `claims` merged into a valid set
    /// for `audience`.
    fn token(&self, audience: &str, claims: Value) -> String {
        let mut all = self.issuer.claims(audience);
        for (key, value) in claims.as_object().cloned().unwrap_or_default() {
            all[key] = value;
        }
        self.issuer.mint(&all)
    }
}

/// A request's headers and body.
#[derive(Clone, Debug, Default)]
struct Delivery {
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Delivery {
    fn json(body: Value) -> Self {
        Self::default()
            .body(body.to_string())
            .header("Content-Type", "application/json")
    }

    fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.insert(
            HeaderName::try_from(name).unwrap(),
            HeaderValue::try_from(value).unwrap(),
        );
        self
    }

    /// Signed as the Receiver type's sender signs, with `secret`.
    fn signed(mut self, receiver_type: &str, secret: &str) -> Self {
        let scheme = verifier_of(receiver_type).unwrap().signing_scheme();
        self = self.signed_with(scheme, secret);
        self
    }

    fn signed_with(mut self, scheme: Scheme, secret: &str) -> Self {
        let (name, value) = scheme.sign(&self.body, secret.as_bytes()).unwrap();
        self.headers.insert(name, value);
        self
    }

    fn bearer(self, token: &str) -> Self {
        self.header("Authorization", &format!("Bearer {token}"))
    }
}

fn push_body() -> Value {
    json!({"ref": "refs/heads/main", "repository": {"full_name": "org/app"}})
}

fn pubsub(data: Value) -> Value {
    json!({
        "message": {
            "data": base64::engine::general_purpose::STANDARD.encode(data.to_string()),
            "messageId": "136969346945",
            "publishTime": "2024-01-01T00:00:00Z",
        },
        "subscription": "projects/p/subscriptions/flux",
    })
}

fn gcr_data() -> Value {
    json!({
        "action": "INSERT",
        "digest": "gcr.io/project/app@sha256:6ec128e26cd5",
        "tag": "gcr.io/project/app:v1.2.3",
    })
}

const CDEVENT_TYPE: &str = "dev.cdevents.pipelinerun.finished.0.2.0";

/// A CDEvent as the CDEvents 0.4 SDK Flux vendors reads it
/// (`context.version`, `subject.type`).
fn cdevent(event_type: &str) -> Value {
    json!({
        "context": {
            "version": "0.4.1",
            "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
            "source": "/event/source/123",
            "type": event_type,
            "timestamp": "2023-03-20T14:27:05.315384Z",
        },
        "subject": {
            "id": "mySubject123",
            "source": "/event/source/123",
            "type": "pipelineRun",
            "content": {"pipelineName": "myPipeline", "outcome": "success"},
        },
    })
}

/// One delivery per case: a Receiver type, what its spec adds, and the
/// request.
struct Case {
    name: &'static str,
    receiver_type: &'static str,
    extra: Value,
    delivery: Delivery,
}

fn case(name: &'static str, receiver_type: &'static str, extra: Value, delivery: Delivery) -> Case {
    Case {
        name,
        receiver_type,
        extra,
        delivery,
    }
}

impl Case {
    /// Publishes the case's Receiver for a GitRepository of its own and sends its request;
    /// the repository's name and the answer's status.
    async fn send(self, cluster: &Cluster) -> (String, u16) {
        let repo = format!("repo-{}", self.name);
        cluster.create_repo(NAMESPACE, &repo, json!({}));
        let path = cluster.publish(self.name, spec(self.receiver_type, &repo, self.extra));
        (repo, cluster.send(&path, &self.delivery).await)
    }
}

/// A generic-oidc spec trusting the test issuer for the subject `test-subject`.
fn oidc_spec(cluster: &Cluster) -> Value {
    json!({"oidcProviders": [{
        "issuerURL": cluster.issuer.url(),
        "validations": [{"expression": "claims.sub == 'test-subject'", "message": "wrong subject"}],
    }]})
}

fn accepted_cases(cluster: &Cluster) -> Vec<Case> {
    let oidc = oidc_spec(cluster);
    let gcr_token = cluster.token(AUDIENCE, json!({"email": EMAIL, "email_verified": true}));
    vec![
        case(
            "generic",
            "generic",
            json!({}),
            Delivery::default().body("anything"),
        ),
        case(
            "generic-hmac",
            "generic-hmac",
            json!({}),
            Delivery::json(json!({"app": "podinfo"})).signed("generic-hmac", TOKEN),
        ),
        case(
            "generic-oidc",
            "generic-oidc",
            oidc,
            Delivery::json(json!({})).bearer(&cluster.token("notification-controller", json!({}))),
        ),
        case(
            "github",
            "github",
            json!({"events": ["ping", "push"]}),
            Delivery::json(push_body())
                .header("X-GitHub-Event", "push")
                .signed("github", TOKEN),
        ),
        case(
            "github-from-gitea",
            "github",
            json!({"events": ["push"]}),
            // Gitea sends GitHub's event header too, which Flux reads.
            Delivery::json(push_body())
                .header("X-Gitea-Event", "push")
                .header("X-GitHub-Event", "push")
                .header("X-Gitea-Delivery", "d2e6b5c3")
                .signed("github", TOKEN),
        ),
        case(
            "gitlab",
            "gitlab",
            json!({"events": ["Push Hook"]}),
            Delivery::json(json!({"object_kind": "push"}))
                .header("X-Gitlab-Event", "push hook")
                .header("X-Gitlab-Token", TOKEN),
        ),
        case(
            "bitbucket",
            "bitbucket",
            json!({"events": ["repo:refs_changed"]}),
            Delivery::json(json!({"eventKey": "repo:refs_changed"}))
                .header("X-Event-Key", "repo:refs_changed")
                .header("X-Request-Id", "a2b3c4")
                .signed("bitbucket", TOKEN),
        ),
        case(
            "harbor",
            "harbor",
            json!({}),
            Delivery::json(json!({"type": "PUSH_ARTIFACT"})).header("Authorization", TOKEN),
        ),
        case(
            "dockerhub",
            "dockerhub",
            json!({}),
            Delivery::json(json!({
                "push_data": {"tag": "v1"},
                "repository": {"repo_name": "org/app", "repo_url": "https://hub.docker.com/r/org/app"},
            })),
        ),
        case(
            "dockerhub-without-tag",
            "dockerhub",
            json!({}),
            Delivery::json(json!({"repository": {}})),
        ),
        case(
            "quay",
            "quay",
            json!({}),
            Delivery::json(json!({"docker_url": "quay.io/org/app", "updated_tags": ["v1"]})),
        ),
        case(
            "nexus",
            "nexus",
            json!({}),
            Delivery::json(json!({"action": "CREATED", "repositoryName": "docker-hosted"}))
                .header("X-Nexus-Webhook-Id", "rm:repository:component")
                .signed("nexus", TOKEN),
        ),
        case(
            "acr",
            "acr",
            json!({}),
            Delivery::json(json!({"action": "push", "target": {"repository": "app", "tag": "v1"}})),
        ),
        case(
            "gcr",
            "gcr",
            json!({}),
            Delivery::json(pubsub(gcr_data())).bearer(&gcr_token),
        ),
        case(
            "cdevents",
            "cdevents",
            json!({"events": [CDEVENT_TYPE]}),
            Delivery::json(cdevent(CDEVENT_TYPE)).header("Ce-Type", CDEVENT_TYPE),
        ),
    ]
}

#[tokio::test]
async fn every_receiver_type_accepts_its_sender_and_annotates_the_object() {
    let cluster = cluster().await;
    for case in accepted_cases(&cluster) {
        let name = case.name;
        let (repo, status) = case.send(&cluster).await;
        assert_eq!(status, 200, "{name}");
        assert!(
            cluster.requested_at(NAMESPACE, &repo).is_some(),
            "{name} annotated"
        );
        assert_eq!(cluster.patches_of(&repo), 1, "{name}");
    }
}

fn rejected_cases(cluster: &Cluster) -> Vec<Case> {
    let oidc = oidc_spec(cluster);
    let gcr = |claims: Value| cluster.token(AUDIENCE, claims);
    let push = || Delivery::json(push_body());
    vec![
        case(
            "generic-hmac-wrong-secret",
            "generic-hmac",
            json!({}),
            push().signed("generic-hmac", "not-the-token"),
        ),
        case("generic-hmac-unsigned", "generic-hmac", json!({}), push()),
        case(
            "generic-oidc-rule-fails",
            "generic-oidc",
            oidc.clone(),
            push().bearer(&cluster.token("notification-controller", json!({"sub": "intruder"}))),
        ),
        case(
            "generic-oidc-wrong-audience",
            "generic-oidc",
            oidc.clone(),
            push().bearer(&cluster.token("someone-else", json!({}))),
        ),
        case("generic-oidc-no-token", "generic-oidc", oidc, push()),
        case(
            "github-wrong-secret",
            "github",
            json!({}),
            push()
                .header("X-GitHub-Event", "push")
                .signed("github", "not-the-token"),
        ),
        case(
            "github-event-not-listed",
            "github",
            json!({"events": ["push"]}),
            push()
                .header("X-GitHub-Event", "issues")
                .signed("github", TOKEN),
        ),
        case(
            "github-no-event-with-events",
            "github",
            json!({"events": ["push"]}),
            push().signed("github", TOKEN),
        ),
        case(
            "gitlab-wrong-token",
            "gitlab",
            json!({}),
            push()
                .header("X-Gitlab-Event", "Push Hook")
                .header("X-Gitlab-Token", "not-the-token"),
        ),
        case(
            "gitlab-event-not-listed",
            "gitlab",
            json!({"events": ["Push Hook"]}),
            push()
                .header("X-Gitlab-Event", "Tag Push Hook")
                .header("X-Gitlab-Token", TOKEN),
        ),
        case(
            "bitbucket-sha1",
            "bitbucket",
            json!({}),
            push()
                .header("X-Event-Key", "repo:push")
                .signed_with(Scheme::HubSignature(Algorithm::Sha1), TOKEN),
        ),
        case(
            "bitbucket-event-not-listed",
            "bitbucket",
            json!({"events": ["repo:refs_changed"]}),
            push()
                .header("X-Event-Key", "pr:opened")
                .signed("bitbucket", TOKEN),
        ),
        case(
            "harbor-wrong-token",
            "harbor",
            json!({}),
            push().header("Authorization", "not-the-token"),
        ),
        case("nexus-unsigned", "nexus", json!({}), push()),
        case(
            "nexus-not-json",
            "nexus",
            json!({}),
            Delivery::default().body("<xml/>").signed("nexus", TOKEN),
        ),
        case(
            "dockerhub-not-json",
            "dockerhub",
            json!({}),
            Delivery::default().body("not json"),
        ),
        case(
            "quay-not-an-object",
            "quay",
            json!({}),
            Delivery::json(json!(["quay.io/org/app"])),
        ),
        case("acr-empty", "acr", json!({}), Delivery::default()),
        case(
            "gcr-wrong-email",
            "gcr",
            json!({}),
            Delivery::json(pubsub(gcr_data())).bearer(&gcr(
                json!({"email": "someone@example.com", "email_verified": true}),
            )),
        ),
        case(
            "gcr-wrong-audience",
            "gcr",
            json!({}),
            Delivery::json(pubsub(gcr_data())).bearer(&cluster.token(
                "https://elsewhere.example.com",
                json!({"email": EMAIL, "email_verified": true}),
            )),
        ),
        case(
            "gcr-no-token",
            "gcr",
            json!({}),
            Delivery::json(pubsub(gcr_data())),
        ),
        case(
            "gcr-not-pubsub",
            "gcr",
            json!({}),
            Delivery::json(json!({"message": {"data": "%%%"}}))
                .bearer(&gcr(json!({"email": EMAIL, "email_verified": true}))),
        ),
        case(
            "cdevents-invalid",
            "cdevents",
            json!({}),
            Delivery::json(json!({"context": {}})).header("Ce-Type", CDEVENT_TYPE),
        ),
        case(
            "cdevents-type-not-listed",
            "cdevents",
            json!({"events": ["dev.cdevents.build.finished.0.2.0"]}),
            Delivery::json(cdevent(CDEVENT_TYPE)).header("Ce-Type", CDEVENT_TYPE),
        ),
    ]
}

#[tokio::test]
async fn requests_that_do_not_verify_are_refused_without_a_patch() {
    let cluster = cluster().await;
    for case in rejected_cases(&cluster) {
        let name = case.name;
        let (repo, status) = case.send(&cluster).await;
        assert_eq!(status, 400, "{name}");
        assert_eq!(cluster.requested_at(NAMESPACE, &repo), None, "{name}");
        assert_eq!(cluster.patches_of(&repo), 0, "{name}");
    }
    let any_patch = RequestMatcher::any().verb(Verb::Patch);
    let gets = RequestMatcher::any().verb(Verb::Get);
    assert_eq!(cluster.api.requests().count(&any_patch), 0);
    assert_eq!(cluster.api.requests().count(&gets), 0);
}

#[tokio::test]
async fn unknown_suspended_and_not_ready_receivers_and_other_methods() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({}));
    let generic = || spec("generic", "podinfo", json!({}));
    let delivery = Delivery::default();

    // Unknown paths.
    let unknown = format!("/hook/{}", "0".repeat(64));
    assert_eq!(cluster.send(&unknown, &delivery).await, 404);
    assert_eq!(cluster.send("/hook/", &delivery).await, 404);
    assert_eq!(cluster.send("/elsewhere", &delivery).await, 404);

    // Suspended.
    let secret = BTreeMap::from([("token".to_owned(), TOKEN.as_bytes().to_vec())]);
    let endpoint = Endpoint::compile(&receiver("suspended", generic()), Some(&secret)).unwrap();
    let suspended = endpoint.webhook_path().as_str().to_owned();
    cluster
        .index
        .publish(EndpointState::Suspended(Arc::new(endpoint)));
    assert_eq!(cluster.send(&suspended, &delivery).await, 503);

    // Not ready: known by its last path.
    let path = cluster.publish("not-ready", generic());
    let served = cluster.send(&path, &delivery).await;
    assert_eq!(served, 200);
    let key = ReceiverKey {
        namespace: NAMESPACE.into(),
        name: "not-ready".into(),
    };
    let webhook_path = cluster.index.webhook_path_of(&key).unwrap();
    cluster.index.publish(EndpointState::NotReady {
        key,
        webhook_path,
        message: "Secret \"webhook-token\" not found".into(),
    });
    assert_eq!(cluster.send(&path, &delivery).await, 503);

    // Other methods.
    let url = format!("{}{path}", cluster.base);
    for method in [
        reqwest::Method::GET,
        reqwest::Method::PUT,
        reqwest::Method::DELETE,
    ] {
        let response = cluster
            .http
            .request(method.clone(), &url)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 405, "{method}");
        assert_eq!(response.headers()["allow"], "POST");
    }
    assert_eq!(
        cluster.patches_of("podinfo"),
        1,
        "only the one served request"
    );
}

#[tokio::test]
async fn a_body_over_three_mebibytes_is_refused_with_413() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({}));
    let path = cluster.publish("generic", spec("generic", "podinfo", json!({})));

    let limit = 3 * 1024 * 1024;
    let too_large = Delivery::default().body(vec![b' '; limit + 1]);
    assert_eq!(cluster.send(&path, &too_large).await, 413);
    assert_eq!(cluster.patches_of("podinfo"), 0);

    let at_limit = Delivery::default().body(vec![b' '; limit]);
    assert_eq!(cluster.send(&path, &at_limit).await, 200);
    assert_eq!(cluster.patches_of("podinfo"), 1);
}

#[tokio::test]
async fn responses_never_echo_secrets() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({}));
    let path = cluster.publish("github", spec("github", "podinfo", json!({})));
    let forged = Delivery::json(push_body())
        .header("X-GitHub-Event", "push")
        .signed("github", "guess");
    let response = cluster
        .http
        .post(format!("{}{path}", cluster.base))
        .headers(forged.headers.clone())
        .body(forged.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let text = response.text().await.unwrap();
    assert!(text.len() < 64, "{text}");
    for secret in [TOKEN, path.as_str(), &path["/hook/".len()..]] {
        assert!(!text.contains(secret), "{text}");
    }
    let metrics = cluster.metrics.encode();
    assert!(!metrics.contains(&path["/hook/".len()..]));
}

fn resource(name: &str, extra: Value) -> Value {
    let mut resource = json!({"kind": "GitRepository", "name": name});
    for (key, value) in extra.as_object().cloned().unwrap_or_default() {
        resource[key] = value;
    }
    resource
}

#[tokio::test]
async fn resources_are_selected_by_name_and_by_labels() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "named", json!({}));
    cluster.create_repo(NAMESPACE, "app-a", json!({"app": "web", "tier": "front"}));
    cluster.create_repo(NAMESPACE, "app-b", json!({"app": "web", "tier": "back"}));
    cluster.create_repo(NAMESPACE, "other", json!({"app": "db"}));
    cluster.create_repo("apps", "elsewhere", json!({"app": "web"}));
    let path = cluster.publish(
        "selection",
        json!({
            "type": "generic",
            "secretRef": {"name": "webhook-token"},
            "resources": [
                resource("named", json!({})),
                resource("*", json!({"matchLabels": {"app": "web"}})),
            ],
        }),
    );

    assert_eq!(cluster.send(&path, &Delivery::default()).await, 200);
    for name in ["named", "app-a", "app-b"] {
        assert!(cluster.requested_at(NAMESPACE, name).is_some(), "{name}");
    }
    assert_eq!(cluster.requested_at(NAMESPACE, "other"), None);
    assert_eq!(cluster.requested_at("apps", "elsewhere"), None);

    // A `*` that matches nothing is no failure, as in Flux.
    let path = cluster.publish(
        "matches-nothing",
        spec(
            "generic",
            "*",
            json!({"resources": [resource("*", json!({"matchLabels": {"app": "none"}}))]}),
        ),
    );
    assert_eq!(cluster.send(&path, &Delivery::default()).await, 200);

    // A named object that does not exist is.
    let path = cluster.publish("missing", spec("generic", "missing", json!({})));
    assert_eq!(cluster.send(&path, &Delivery::default()).await, 500);
}

#[tokio::test]
async fn cross_namespace_references_follow_the_policy() {
    let cross = || {
        spec(
            "generic",
            "podinfo",
            json!({"resources": [resource("podinfo", json!({"namespace": "apps"}))]}),
        )
    };

    let strict = cluster_with(|trigger| trigger.no_cross_namespace_refs(true)).await;
    strict.create_repo("apps", "podinfo", json!({}));
    let path = strict.publish("cross", cross());
    assert_eq!(strict.send(&path, &Delivery::default()).await, 500);
    assert_eq!(strict.requested_at("apps", "podinfo"), None);
    assert_eq!(
        strict
            .api
            .requests()
            .count(&RequestMatcher::any().verb(Verb::Patch)),
        0
    );

    let lenient = cluster().await;
    lenient.create_repo("apps", "podinfo", json!({}));
    let path = lenient.publish("cross", cross());
    assert_eq!(lenient.send(&path, &Delivery::default()).await, 200);
    assert!(lenient.requested_at("apps", "podinfo").is_some());
}

#[tokio::test]
async fn a_failing_api_server_gives_500_then_the_receiver_recovers() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({}));
    let path = cluster.publish("generic", spec("generic", "podinfo", json!({})));
    cluster.api.faults().fail_next(
        1,
        500,
        RequestMatcher::any()
            .verb(Verb::Patch)
            .resource("gitrepositories"),
    );

    assert_eq!(cluster.send(&path, &Delivery::default()).await, 500);
    assert_eq!(cluster.requested_at(NAMESPACE, "podinfo"), None);
    assert_eq!(cluster.send(&path, &Delivery::default()).await, 200);
    assert!(cluster.requested_at(NAMESPACE, "podinfo").is_some());
}

#[tokio::test]
async fn resource_filters_see_the_request_and_each_object() {
    let cluster = cluster().await;
    cluster.create_repo(
        NAMESPACE,
        "podinfo",
        json!({"app": "podinfo", "team": "web"}),
    );
    cluster.create_repo(
        NAMESPACE,
        "website",
        json!({"app": "website", "team": "web"}),
    );
    let wildcard = json!([resource("*", json!({"matchLabels": {"team": "web"}}))]);

    // spec.resourceFilter over req and res: only the object the push names.
    let path = cluster.publish(
        "by-name",
        spec(
            "generic",
            "*",
            json!({
                "resources": wildcard,
                "resourceFilter": "res.metadata.name == req.app && res.kind == 'GitRepository' \
                                   && res.apiVersion == 'source.toolkit.fluxcd.io/v1'",
            }),
        ),
    );
    let status = cluster
        .send(&path, &Delivery::json(json!({"app": "website"})))
        .await;
    assert_eq!(status, 200);
    assert!(cluster.requested_at(NAMESPACE, "website").is_some());
    assert_eq!(cluster.requested_at(NAMESPACE, "podinfo"), None);
    assert_eq!(cluster.patches_of("podinfo"), 0);

    // A filter false for every object: 200 and nothing patched.
    let status = cluster
        .send(&path, &Delivery::json(json!({"app": "none"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(cluster.patches_of("website"), 1);
    assert_eq!(cluster.patches_of("podinfo"), 0);

    // A body that is not `application/json` is `{}` to the filter.
    let status = cluster
        .send(&path, &Delivery::default().body(r#"{"app": "website"}"#))
        .await;
    assert_eq!(status, 500, "req.app is missing: the filter errs");
    assert_eq!(cluster.patches_of("website"), 1);

    // Claimed JSON that is not: refused.
    let not_json = Delivery::default()
        .body("{")
        .header("Content-Type", "application/json");
    assert_eq!(cluster.send(&path, &not_json).await, 400);
}

#[tokio::test]
async fn per_resource_filters_hold_with_the_receiver_filter() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({"app": "podinfo"}));
    cluster.create_repo(NAMESPACE, "website", json!({"app": "website"}));
    let path = cluster.publish(
        "both",
        json!({
            "type": "generic",
            "secretRef": {"name": "webhook-token"},
            "resourceFilter": "req.branch == 'main'",
            "resources": [
                resource("podinfo", json!({"filter": "req.image.startsWith('podinfo')"})),
                resource("website", json!({"filter": "res.metadata.labels.app == 'website'"})),
            ],
        }),
    );

    let push =
        |branch: &str, image: &str| Delivery::json(json!({"branch": branch, "image": image}));
    assert_eq!(cluster.send(&path, &push("dev", "podinfo:v1")).await, 200);
    assert_eq!(
        cluster.patches_of("podinfo") + cluster.patches_of("website"),
        0
    );

    assert_eq!(cluster.send(&path, &push("main", "nginx:v1")).await, 200);
    assert_eq!(cluster.patches_of("podinfo"), 0);
    assert_eq!(cluster.patches_of("website"), 1);

    assert_eq!(cluster.send(&path, &push("main", "podinfo:v2")).await, 200);
    assert_eq!(cluster.patches_of("podinfo"), 1);
    assert_eq!(cluster.patches_of("website"), 2);
}

#[tokio::test]
async fn filters_read_named_objects_only_when_they_exist() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({"app": "podinfo"}));
    let gets = RequestMatcher::any()
        .verb(Verb::Get)
        .resource("gitrepositories");

    // No filter: the named object is patched without being read.
    let path = cluster.publish("plain", spec("generic", "podinfo", json!({})));
    let not_json = Delivery::default()
        .body("{")
        .header("Content-Type", "application/json");
    assert_eq!(
        cluster.send(&path, &not_json).await,
        200,
        "req is never built"
    );
    assert_eq!(cluster.api.requests().count(&gets), 0);

    // A filter: read first, then patched.
    let path = cluster.publish(
        "filtered",
        spec(
            "generic",
            "podinfo",
            json!({"resourceFilter": "res.metadata.labels.app == 'podinfo'"}),
        ),
    );
    assert_eq!(cluster.send(&path, &Delivery::default()).await, 200);
    assert_eq!(cluster.api.requests().count(&gets), 1);
    assert_eq!(cluster.patches_of("podinfo"), 2);
}

#[tokio::test]
async fn claims_and_unwrapped_gcr_events_reach_filters() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({}));
    cluster.create_repo(NAMESPACE, "image", json!({}));

    let oidc = spec(
        "generic-oidc",
        "podinfo",
        json!({
            "oidcProviders": [{"issuerURL": cluster.issuer.url(),
                               "validations": [{"expression": "true", "message": "m"}]}],
            "resourceFilter": "claims.repository == 'org/podinfo'",
        }),
    );
    let path = cluster.publish("oidc", oidc);
    let token =
        |repository| cluster.token("notification-controller", json!({"repository": repository}));
    let other = Delivery::json(json!({})).bearer(&token("org/other"));
    assert_eq!(cluster.send(&path, &other).await, 200);
    assert_eq!(cluster.patches_of("podinfo"), 0);
    let podinfo = Delivery::json(json!({})).bearer(&token("org/podinfo"));
    assert_eq!(cluster.send(&path, &podinfo).await, 200);
    assert_eq!(cluster.patches_of("podinfo"), 1);

    let gcr = spec(
        "gcr",
        "image",
        json!({"resourceFilter": "req.action == 'INSERT' && req.tag.endsWith(':v1.2.3')"}),
    );
    let path = cluster.publish("gcr", gcr);
    let gcr_token = cluster.token(AUDIENCE, json!({"email": EMAIL, "email_verified": true}));
    let delete = Delivery::json(pubsub(
        json!({"action": "DELETE", "tag": "gcr.io/p/app:v1.2.3"}),
    ))
    .bearer(&gcr_token);
    assert_eq!(cluster.send(&path, &delete).await, 200);
    assert_eq!(cluster.patches_of("image"), 0);
    let insert = Delivery::json(pubsub(gcr_data())).bearer(&gcr_token);
    assert_eq!(cluster.send(&path, &insert).await, 200);
    assert_eq!(cluster.patches_of("image"), 1);
}

#[tokio::test]
async fn metrics_count_requests_by_receiver_and_code() {
    let cluster = cluster().await;
    cluster.create_repo(NAMESPACE, "podinfo", json!({}));
    let path = cluster.publish("github", spec("github", "podinfo", json!({})));
    let genuine = Delivery::json(push_body())
        .header("X-GitHub-Event", "push")
        .signed("github", TOKEN);
    let forged = Delivery::json(push_body()).signed("github", "guess");
    assert_eq!(cluster.send(&path, &genuine).await, 200);
    assert_eq!(cluster.send(&path, &genuine).await, 200);
    assert_eq!(cluster.send(&path, &forged).await, 400);
    assert_eq!(cluster.send("/hook/unknown", &genuine).await, 404);

    let text = cluster.metrics.encode();
    let labels = r#"namespace="flux-system",name="github",type="github""#;
    for line in [
        format!("fluxhook_receiver_requests_total{{{labels},code=\"200\"}} 2"),
        format!("fluxhook_receiver_requests_total{{{labels},code=\"400\"}} 1"),
        format!("fluxhook_receiver_request_duration_seconds_count{{{labels}}} 3"),
        r#"fluxhook_receiver_unmatched_requests_total{code="404"} 1"#.to_owned(),
    ] {
        assert!(text.contains(&line), "{line} in\n{text}");
    }
}

/// Receivers with nothing to reconcile, so no API call is ever made, and
/// their webhook paths, by type.
fn offline_server() -> (ReceiverServer, Vec<(&'static str, String)>) {
    let index = Arc::new(EndpointIndex::default());
    let secret = BTreeMap::from([("token".to_owned(), TOKEN.as_bytes().to_vec())]);
    let paths = [
        "generic-hmac",
        "github",
        "gitlab",
        "bitbucket",
        "harbor",
        "nexus",
        "dockerhub",
        "quay",
        "acr",
        "cdevents",
    ]
    .map(|receiver_type| {
        let spec = json!({
            "type": receiver_type,
            "events": [],
            "secretRef": {"name": "webhook-token"},
            "resources": [],
            "resourceFilter": "req.ok == true",
        });
        let endpoint = Endpoint::compile(&receiver(receiver_type, spec), Some(&secret)).unwrap();
        let path = endpoint.webhook_path().as_str().to_owned();
        index.publish(EndpointState::Ready(Arc::new(endpoint)));
        (receiver_type, path)
    });
    // Never reached: there is nothing to reconcile.
    let config = kube::Config::new("http://127.0.0.1:9".parse().unwrap());
    let trigger = Trigger::new(kube::Client::try_from(config).unwrap());
    let verifier = OidcVerifier::new(Arc::new(HttpKeySource::new().unwrap()));
    (
        ReceiverServer::new(index, trigger, Arc::new(verifier)),
        paths.to_vec(),
    )
}

mod arbitrary_requests {
    use std::sync::LazyLock;

    use proptest::prelude::*;
    use tower::ServiceExt;

    use super::*;

    /// Header names the receivers read, and others.
    const HEADERS: [&str; 10] = [
        "X-Signature",
        "X-Hub-Signature-256",
        "X-Hub-Signature",
        "X-Gitlab-Token",
        "Authorization",
        "X-Nexus-Webhook-Signature",
        "X-GitHub-Event",
        "Ce-Type",
        "Content-Type",
        "X-Other",
    ];

    fn header_value() -> impl Strategy<Value = HeaderValue> {
        prop_oneof![
            Just(HeaderValue::from_static("application/json")),
            Just(HeaderValue::from_static(TOKEN)),
            "sha(1|256|512)=[0-9a-f]{0,130}".prop_map(|v| HeaderValue::try_from(v).unwrap()),
            proptest::collection::vec(any::<u8>(), 0..64).prop_filter_map(
                "not a header value",
                |bytes| HeaderValue::from_bytes(&bytes).ok()
            ),
        ]
    }

    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            Just(b"{}".to_vec()),
            Just(br#"{"ok": true, "push_data": {"tag": 1}}"#.to_vec()),
            "\\{\"[a-z]{1,5}\": (null|true|1|\"x\"|\\[\\]|\\{\\})\\}".prop_map(String::into_bytes),
        ]
    }

    /// One runtime and one server for every case: the kube client needs a
    /// runtime to be built.
    struct Offline {
        runtime: tokio::runtime::Runtime,
        router: axum::Router,
        paths: Vec<(&'static str, String)>,
    }

    static OFFLINE: LazyLock<Offline> = LazyLock::new(|| {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let (server, paths) = {
            let _entered = runtime.enter();
            offline_server()
        };
        let router = server.router();
        Offline {
            runtime,
            router,
            paths,
        }
    });

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 128,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// Whatever the headers and body, a request is answered 200 or 400
        /// (nothing to reconcile, so nothing can fail), never panics, and a
        /// signed type answers 200 only to the right signature or token.
        #[test]
        fn any_request_is_answered_200_or_400_and_forgeries_400(
            receiver in 0usize..10,
            headers in proptest::collection::vec((0usize..HEADERS.len(), header_value()), 0..6),
            body in body(),
        ) {
            let Offline { runtime, router, paths } = &*OFFLINE;
            let (receiver_type, path) = &paths[receiver];
            let mut request = http::Request::post(path.as_str())
                .body(axum::body::Body::from(body.clone()))
                .unwrap();
            for (name, value) in &headers {
                request.headers_mut().append(HEADERS[*name], value.clone());
            }
            let request_headers = request.headers().clone();
            let status = runtime
                .block_on(router.clone().oneshot(request))
                .unwrap()
                .status()
                .as_u16();
            prop_assert!(status == 200 || status == 400, "{receiver_type}: {status}");
            if status == 200
                && let Some(policy) = verifier_of(receiver_type)
            {
                prop_assert!(
                    policy.verify(&request_headers, &body, TOKEN.as_bytes()).is_ok(),
                    "{receiver_type} accepted a forgery"
                );
            }
        }
    }
}

/// The verifier a Receiver type checks its token with, as the server takes
/// it: the type's `authentication()`.
fn verifier_of(receiver_type: &str) -> Option<Policy> {
    match ReceiverType::from(receiver_type).authentication() {
        Authentication::Token { verifier, .. } => Some(verifier),
        _ => None,
    }
}
