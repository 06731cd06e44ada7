//! The receiver's RBAC (`deploy/base/rbac*.yaml`), proven rather than
//! guessed: the real `fluxhook-receiver` binary runs as ServiceAccount
//! `flux-system/fluxhook-receiver` against an API server that authorizes as
//! kube-apiserver's RBAC does, under exactly the deployed rules.
//!
//! - One scenario uses every capability of the binary: Receivers and Secrets
//!   watched, finalizers and status written, deliveries to objects of every
//!   kind a Receiver may name (by name through a resource filter, by
//!   labels), in-cluster registration with a fake GitHub (GitRepositories
//!   watched and read, the access token read, a host behind a private CA
//!   reached through the CA ConfigMap a GitRepository names, Events
//!   recorded, a repeated Event patched, hooks cleaned up when the Receiver
//!   goes). Every verb on
//!   every resource each deployed rule grants must have been needed by one
//!   of its requests: a grant no behaviour needs fails the test.
//! - Taking one grant away breaks the behaviour that needs it, and the
//!   receiver says why (the API server's Forbidden message) in its log.
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use std::collections::BTreeSet;

use fluxhook_sandbox::{
    Access, SERVICE_ACCOUNT, SERVICE_ACCOUNT_NAMESPACE, Sandbox, deployed_rbac,
};
use fluxhook_test_apiserver::{RequestMatcher, Verb, fixtures};
use fluxhook_test_githost::{FakeConfig, FakeHost, Fault, HostKind};
use http::StatusCode;
use serde_json::{Value, json};

use e2e_support::{
    BINARY, Delivery, NS, delete_receiver, eventually, log_tail, namespace, ok, post, receiver,
    secret, serve, stop, wait_for_status,
};

/// Every kind notification-controller v1.9's Receiver CRD lets a Receiver
/// name, with its API version.
const KINDS: [(&str, &str); 12] = [
    ("Bucket", "source.toolkit.fluxcd.io/v1"),
    ("GitRepository", "source.toolkit.fluxcd.io/v1"),
    ("HelmChart", "source.toolkit.fluxcd.io/v1"),
    ("HelmRepository", "source.toolkit.fluxcd.io/v1"),
    ("OCIRepository", "source.toolkit.fluxcd.io/v1"),
    ("ExternalArtifact", "source.toolkit.fluxcd.io/v1"),
    ("ArtifactGenerator", "source.extensions.fluxcd.io/v1beta1"),
    ("ImageRepository", "image.toolkit.fluxcd.io/v1"),
    ("ImagePolicy", "image.toolkit.fluxcd.io/v1"),
    ("ImageUpdateAutomation", "image.toolkit.fluxcd.io/v1"),
    ("Kustomization", "kustomize.toolkit.fluxcd.io/v1"),
    ("HelmRelease", "helm.toolkit.fluxcd.io/v2"),
];

/// Where the objects every kind is delivered to live: not the Receivers'
/// namespace, so cross-namespace references are exercised too.
const APPS: &str = "apps";

const REQUESTED_AT: &str = "reconcile.fluxcd.io/requestedAt";

/// The user the receiver runs as.
fn receiver_user() -> String {
    format!("system:serviceaccount:{SERVICE_ACCOUNT_NAMESPACE}:{SERVICE_ACCOUNT}")
}

/// One verb on one resource (`group/resource[/subresource]`) a rule grants.
type Grant = (String, String);

/// What each Role or ClusterRole the receiver's ServiceAccount is bound to
/// grants, rule by rule: `(role, rule index)` and its grants.
fn granted(rbac: &[Value]) -> Vec<((String, usize), BTreeSet<Grant>)> {
    let bound: BTreeSet<String> = rbac
        .iter()
        .filter(|object| {
            matches!(
                object["kind"].as_str(),
                Some("RoleBinding" | "ClusterRoleBinding")
            ) && object["subjects"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|subject| {
                    subject["kind"] == "ServiceAccount"
                        && subject["name"] == SERVICE_ACCOUNT
                        && subject["namespace"]
                            .as_str()
                            .or(object["metadata"]["namespace"].as_str())
                            == Some(SERVICE_ACCOUNT_NAMESPACE)
                })
        })
        .map(|binding| {
            role_name(
                &binding["roleRef"]["kind"],
                &binding["metadata"]["namespace"],
                &binding["roleRef"]["name"],
            )
        })
        .collect();
    let mut rules = Vec::new();
    for role in rbac
        .iter()
        .filter(|object| matches!(object["kind"].as_str(), Some("Role" | "ClusterRole")))
    {
        let name = role_name(
            &role["kind"],
            &role["metadata"]["namespace"],
            &role["metadata"]["name"],
        );
        if !bound.contains(&name) {
            continue;
        }
        for (index, rule) in role["rules"].as_array().into_iter().flatten().enumerate() {
            let grants = fixtures::rule_grants(rule);
            rules.push(((name.clone(), index), grants));
        }
    }
    rules
}

/// `ClusterRole name` or `Role namespace/name`, as `PolicyObject` shows
/// them.
fn role_name(kind: &Value, namespace: &Value, name: &Value) -> String {
    let (kind, name) = (
        kind.as_str().unwrap_or_default(),
        name.as_str().unwrap_or_default(),
    );
    match (kind, namespace.as_str()) {
        ("Role", Some(namespace)) => format!("Role {namespace}/{name}"),
        _ => format!("{kind} {name}"),
    }
}

/// What the receiver's allowed requests used, per `(role, rule index)`.
fn used(sandbox: &Sandbox) -> BTreeSet<((String, usize), Grant)> {
    let user = receiver_user();
    sandbox
        .api()
        .requests()
        .matching(&RequestMatcher::any().user(&user))
        .into_iter()
        .filter_map(|record| {
            let rule = record.decision.as_ref()?.rule()?.clone();
            let (verb, target) = (record.verb?, record.target?);
            let resource = match target.subresource {
                Some(sub) => format!("{}/{}/{sub}", target.group, target.resource),
                None => format!("{}/{}", target.group, target.resource),
            };
            Some((
                (rule.role.to_string(), rule.index),
                (verb.as_str().to_owned(), resource),
            ))
        })
        .collect()
}

/// An object of `kind` named `target` in [`APPS`], labelled for the
/// Receiver that selects by labels.
fn flux_object(kind: &str, api_version: &str) -> Value {
    json!({
        "apiVersion": api_version,
        "kind": kind,
        "metadata": {"name": "target", "namespace": APPS, "labels": {"rbac": "every-kind"}},
        "spec": {"interval": "10m"}
    })
}

/// Whether every object of [`KINDS`] has had its `requestedAt` annotation
/// set to something other than `before`'s.
fn every_kind_requested(sandbox: &Sandbox, before: &[Option<String>]) -> bool {
    KINDS
        .iter()
        .zip(before)
        .all(|((kind, api_version), before)| {
            let now = sandbox.requested_at(api_version, kind, APPS, "target");
            now.is_some() && now != *before
        })
}

fn annotations_of_every_kind(sandbox: &Sandbox) -> Vec<Option<String>> {
    KINDS
        .iter()
        .map(|(kind, api_version)| sandbox.requested_at(api_version, kind, APPS, "target"))
        .collect()
}

/// Deliveries reach objects of every kind a Receiver may name: by name
/// with a resource filter (each object's metadata read, then patched) and
/// by labels (each kind listed, then patched).
async fn deliveries_to_every_kind(sandbox: &Sandbox) {
    namespace(sandbox, APPS);
    for (kind, api_version) in KINDS {
        ok(sandbox, sandbox.apply(flux_object(kind, api_version)));
    }
    let by_name: Vec<Value> = KINDS
        .iter()
        .map(|(kind, api_version)| {
            json!({"apiVersion": api_version, "kind": kind, "name": "target", "namespace": APPS})
        })
        .collect();
    let by_labels: Vec<Value> = KINDS
        .iter()
        .map(|(kind, api_version)| {
            json!({
                "apiVersion": api_version, "kind": kind, "name": "*", "namespace": APPS,
                "matchLabels": {"rbac": "every-kind"}
            })
        })
        .collect();
    for (name, resources, filter) in [
        (
            "every-kind-by-name",
            by_name,
            Some("res.metadata.name == 'target'"),
        ),
        ("every-kind-by-labels", by_labels, None),
    ] {
        let mut spec = json!({"type": "generic", "resources": resources});
        if let Some(filter) = filter {
            spec["resourceFilter"] = json!(filter);
        }
        let path = serve(sandbox, name, &format!("{name}-token"), spec).await;
        let before = annotations_of_every_kind(sandbox);
        let status = post(sandbox, &path, &Delivery::json(&json!({"ref": "main"}))).await;
        assert_eq!(status, StatusCode::OK, "{name}\n{}", log_tail(sandbox));
        assert!(
            every_kind_requested(sandbox, &before),
            "{name}: not every kind got {REQUESTED_AT}"
        );
    }
}

/// In-cluster registration: a GitRepository annotated for a fake GitHub
/// gets the hook of the Receiver naming it (an Event says so), and so does
/// one on a fake GitHub behind a private CA, whose bundle a ConfigMap holds
/// (`webhooks.fluxhook.io/ca-configmap`); a host that
/// refuses is retried and reported in Events, the same Warning on an
/// unchanged Receiver patching its Event's series, and not called again
/// before the wait it asked for; deleting the Receiver
/// deletes the hook.
/// A GitRepository `NS/name` of `host`'s repository, annotated to have a hook registered
/// there with the token in the Secret `github-token`, and with `annotations` besides.
fn hooked_repository(name: &str, host: &FakeHost, annotations: Value) -> Value {
    let mut repository = fixtures::git_repository(NS, name, json!({}));
    repository["spec"]["url"] = json!(format!("{}/{}/{}", host.url(), host.owner(), host.repo()));
    let mut all = json!({
        "webhooks.fluxhook.io/url": "https://flux-webhook.example.com",
        "webhooks.fluxhook.io/access-token-secret": "github-token",
        "webhooks.fluxhook.io/provider": "github",
        "webhooks.fluxhook.io/api-url": host.api_base(),
    });
    if let (Some(all), Value::Object(annotations)) = (all.as_object_mut(), annotations) {
        all.extend(annotations);
    }
    repository["metadata"]["annotations"] = all;
    repository
}

async fn registration_with_a_git_host(sandbox: &Sandbox) {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    secret(sandbox, "github-token", &[("token", host.token())]);
    ok(
        sandbox,
        sandbox.apply(hooked_repository("registered", &host, json!({}))),
    );
    // The same repository on a GitHub Enterprise behind a private CA (the fakes
    // share their token).
    let private = FakeHost::start_with(FakeConfig {
        tls: true,
        ..FakeConfig::new(HostKind::GitHub)
    })
    .await
    .unwrap();
    ok(
        sandbox,
        sandbox.apply(json!({
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "git-ca", "namespace": NS},
            "data": {"ca.crt": FakeHost::ca_pem()},
        })),
    );
    ok(
        sandbox,
        sandbox.apply(hooked_repository(
            "behind-private-ca",
            &private,
            json!({"webhooks.fluxhook.io/ca-configmap": "git-ca"}),
        )),
    );
    let path = serve(
        sandbox,
        "hooked",
        "hooked-secret",
        json!({
            "type": "github",
            "events": ["push"],
            "resources": [
                {"kind": "GitRepository", "name": "registered"},
                {"kind": "GitRepository", "name": "behind-private-ca"},
            ]
        }),
    )
    .await;
    let registered =
        |status: &Value| e2e_support::has_condition(status, "WebhooksRegistered", "True", None);
    wait_for_status(sandbox, "hooked", registered).await;
    let hook_url = format!("https://flux-webhook.example.com{path}");
    for host in [&host, &private] {
        assert!(
            host.hooks().iter().any(|hook| hook.url == hook_url),
            "{:?}",
            host.hooks()
        );
    }

    // Two refusals, each failing its attempt at once (the host asks for a
    // wait longer than the receiver waits within a call): the Warning of
    // the second attempt is about the same, unchanged Receiver, and each
    // attempt comes after the wait the host asked for, never sooner.
    let event_patches = RequestMatcher::any()
        .user(&receiver_user())
        .verb(Verb::Patch)
        .resource("events");
    let patched_before = sandbox.api().requests().count(&event_patches);
    host.clear_requests();
    host.inject(
        Fault::TooManyRequests {
            retry_after_secs: 3,
        },
        2,
    );
    ok(
        sandbox,
        sandbox.apply(json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "hooked", "namespace": NS,
                         "annotations": {"reconcile.fluxcd.io/requestedAt": "retry-the-host"}},
        })),
    );
    eventually(sandbox, "a repeated Event is patched", || {
        sandbox.api().requests().count(&event_patches) > patched_before
    })
    .await;
    eventually(sandbox, "the host called again after its refusals", || {
        let statuses: Vec<u16> = host.requests().iter().map(|r| r.status).collect();
        statuses.len() > 2 && statuses[..2] == [429, 429]
    })
    .await;
    wait_for_status(sandbox, "hooked", registered).await;
    let early: Vec<_> = host.requests().into_iter().filter(|r| r.early).collect();
    assert!(early.is_empty(), "called before its Retry-After: {early:?}");

    delete_receiver(sandbox, "hooked").await;
    eventually(sandbox, "the Receiver and its hooks are gone", || {
        host.hooks().is_empty()
            && private.hooks().is_empty()
            && sandbox
                .get(
                    "notification.toolkit.fluxcd.io/v1",
                    "Receiver",
                    NS,
                    "hooked",
                )
                .is_none()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_deployed_grant_is_needed_by_the_binary() {
    let rbac = deployed_rbac().unwrap();
    // As deployed: leader election on, its Lease in the pod's namespace.
    let sandbox = Sandbox::builder(BINARY)
        .args(&["--enable-leader-election"])
        .env("RUNTIME_NAMESPACE", NS)
        .start()
        .await
        .unwrap();

    deliveries_to_every_kind(&sandbox).await;
    registration_with_a_git_host(&sandbox).await;
    // The leader renews its Lease every retry period (5 s by default).
    let renewals = RequestMatcher::any()
        .user(&receiver_user())
        .verb(Verb::Update)
        .resource("leases");
    eventually(&sandbox, "the leader renews its Lease", || {
        sandbox.api().requests().count(&renewals) > 0
    })
    .await;

    let used = used(&sandbox);
    let mut unused = Vec::new();
    for (rule, grants) in granted(&rbac) {
        for grant in grants {
            if !used.contains(&(rule.clone(), grant.clone())) {
                unused.push(format!(
                    "{} rule {}: {} {}",
                    rule.0, rule.1, grant.0, grant.1
                ));
            }
        }
    }
    let used_rules: BTreeSet<&(String, usize)> = used.iter().map(|(rule, _)| rule).collect();
    assert!(
        unused.is_empty(),
        "deploy/base/rbac*.yaml grants what no request of the scenario needed (remove it, or \
         cover the behaviour that needs it):\n{}\nrules used: {used_rules:?}",
        unused.join("\n")
    );
    stop(sandbox).await;
}

/// The deployed RBAC with `verb` taken away on `group/resource`: the rule
/// granting it is split into one for the rule's other resources (every
/// verb) and one for this resource (the other verbs).
fn without(verb: &str, group: &str, resource: &str) -> Vec<Value> {
    let mut rbac = deployed_rbac().unwrap();
    assert!(
        fixtures::revoke(&mut rbac, verb, group, resource),
        "no deployed rule grants {verb} on {group}/{resource}"
    );
    rbac
}

/// The receiver under the deployed RBAC less `verb` on `group/resource`.
async fn start_without(verb: &str, group: &str, resource: &str) -> Sandbox {
    Sandbox::builder(BINARY)
        .access(Access::Rbac(without(verb, group, resource)))
        .start()
        .await
        .unwrap()
}

/// Waits until the receiver's log says `what`, as it is or quoted in a
/// field (Flux's log lines hold errors as JSON strings).
async fn logged(sandbox: &Sandbox, what: &str) {
    let quoted = serde_json::to_string(what).unwrap();
    let quoted = quoted.trim_matches('"');
    eventually(sandbox, &format!("the receiver logs {what:?}"), || {
        let log = sandbox.receiver_log();
        log.contains(what) || log.contains(quoted)
    })
    .await;
}

/// A generic Receiver `name` for the GitRepository `app`, its token (`name` too) in the
/// Secret `<name>-token`.
fn generic_receiver(sandbox: &Sandbox, name: &str) {
    let secret_name = format!("{name}-token");
    secret(sandbox, &secret_name, &[("token", name)]);
    receiver(
        sandbox,
        name,
        json!({"type": "generic", "secretRef": {"name": secret_name},
               "resources": [{"kind": "GitRepository", "name": "app"}]}),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_status_patches_receivers_report_nothing_and_the_log_says_why() {
    let sandbox = start_without(
        "patch",
        "notification.toolkit.fluxcd.io",
        "receivers/status",
    )
    .await;
    generic_receiver(&sandbox, "quiet");
    logged(
        &sandbox,
        &format!(
            r#"User "{}" cannot patch resource "receivers/status" in API group "notification.toolkit.fluxcd.io" in the namespace "flux-system""#,
            receiver_user()
        ),
    )
    .await;
    let status = sandbox
        .get("notification.toolkit.fluxcd.io/v1", "Receiver", NS, "quiet")
        .map(|receiver| receiver["status"].clone());
    assert_eq!(status, Some(Value::Null), "no status can be written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_source_patches_deliveries_fail_and_the_log_says_why() {
    let sandbox = start_without("patch", "source.toolkit.fluxcd.io", "gitrepositories").await;
    e2e_support::git_repository(&sandbox, NS, "app", json!({}));
    let path = serve(
        &sandbox,
        "generic",
        "generic-token",
        json!({"type": "generic", "resources": [{"kind": "GitRepository", "name": "app"}]}),
    )
    .await;
    let status = post(&sandbox, &path, &Delivery::json(&json!({"ref": "main"}))).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    logged(
        &sandbox,
        &format!(
            r#"User "{}" cannot patch resource "gitrepositories" in API group "source.toolkit.fluxcd.io""#,
            receiver_user()
        ),
    )
    .await;
    assert_eq!(e2e_support::requested_at(&sandbox, NS, "app"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_secret_reads_receivers_are_not_served_and_the_log_says_why() {
    let sandbox = start_without("get", "", "secrets").await;
    generic_receiver(&sandbox, "unread");
    logged(
        &sandbox,
        &format!(
            r#"secrets "unread-token" is forbidden: User "{}" cannot get resource "secrets""#,
            receiver_user()
        ),
    )
    .await;
    let served = sandbox
        .get(
            "notification.toolkit.fluxcd.io/v1",
            "Receiver",
            NS,
            "unread",
        )
        .and_then(|receiver| {
            receiver["status"]["webhookPath"]
                .as_str()
                .map(str::to_owned)
        });
    assert_eq!(
        served, None,
        "a Receiver whose token cannot be read is not served"
    );
}
