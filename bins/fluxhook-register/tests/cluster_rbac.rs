//! `fluxhook-register --receiver` under the Role documented for CI
//! (`deploy/register-ci/rbac.yaml`), against an API server that authorizes
//! as kube-apiserver's RBAC does: the real binary checks, registers and
//! deletes hooks on fake GitHubs as ServiceAccount
//! `flux-system/fluxhook-register`, every rule of the Role is needed by one
//! of its requests, and without any one of them the run fails and says what
//! it could not read.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use base64::Engine as _;
use common::{Run, TempDir, git_url, run};
use fluxhook_api::webhook_path;
use fluxhook_test_apiserver::{
    AuthorizationMode, RequestMatcher, ResourceType, ServerOptions, TestApiServer,
};
use fluxhook_test_githost::{FakeConfig, FakeHost, HostKind};
use serde_json::{Value, json};

const NAMESPACE: &str = "flux-system";
const RECEIVER: &str = "github-receiver";
const TOKEN: &str = "receiver-token-from-the-secret";
const BASE_URL: &str = "https://flux-webhook.example.com";
const USER: &str = "system:serviceaccount:flux-system:fluxhook-register";

/// The documented Role, its RoleBinding and ServiceAccount.
fn ci_rbac_file() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/register-ci/rbac.yaml"
    ))
}

/// A cluster authorizing with RBAC, holding the CI Role and a Ready
/// Receiver that names one GitRepository by name (on one fake GitHub) and
/// others by labels (one on another fake GitHub), and a Kustomization.
struct Cluster {
    server: TestApiServer,
    _dir: TempDir,
    /// The ServiceAccount's kubeconfig.
    kubeconfig: String,
    app: FakeHost,
    infra: FakeHost,
}

impl Cluster {
    async fn start() -> Cluster {
        let server = TestApiServer::start_with(
            ServerOptions::default().authorization(AuthorizationMode::Rbac),
        )
        .await
        .unwrap();
        for resource in ResourceType::flux() {
            server.register(resource);
        }
        server
            .create(
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}),
            )
            .unwrap();
        let seeded = server.seed_from_path(ci_rbac_file()).unwrap();
        assert_eq!(seeded, 3, "a ServiceAccount, a Role and a RoleBinding");
        let dir = TempDir::new();
        let kubeconfig = dir.path().join("kubeconfig");
        server
            .write_kubeconfig_for(
                &server.service_account(NAMESPACE, "fluxhook-register"),
                &kubeconfig,
            )
            .unwrap();
        let app = FakeHost::start(HostKind::GitHub).await.unwrap();
        let infra = FakeHost::start_with(FakeConfig {
            repo: "fleet-infra".into(),
            ..FakeConfig::new(HostKind::GitHub)
        })
        .await
        .unwrap();
        server
            .create(json!({
                "apiVersion": "v1", "kind": "Secret",
                "metadata": {"name": "webhook-token", "namespace": NAMESPACE},
                "data": {"token": base64::engine::general_purpose::STANDARD.encode(TOKEN)},
            }))
            .unwrap();
        for (name, labels, url) in [
            ("app", json!({}), git_url(&app)),
            ("infra", json!({"hooks": "github"}), git_url(&infra)),
        ] {
            server
                .create(json!({
                    "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
                    "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
                    "spec": {"url": url, "interval": "5m"},
                }))
                .unwrap();
        }
        let path = webhook_path(TOKEN, RECEIVER, NAMESPACE).as_str().to_owned();
        server
            .create(json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1", "kind": "Receiver",
                "metadata": {"name": RECEIVER, "namespace": NAMESPACE},
                "spec": {
                    "type": "github",
                    "events": ["ping", "push"],
                    "secretRef": {"name": "webhook-token"},
                    "resources": [
                        {"kind": "GitRepository", "name": "app"},
                        {"kind": "GitRepository", "name": "*", "matchLabels": {"hooks": "github"}},
                        {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "apps"},
                    ],
                },
                "status": {
                    "webhookPath": path,
                    "conditions": [{
                        "type": "Ready", "status": "True", "reason": "Succeeded",
                        "message": format!("Receiver initialized for path: {path}"),
                        "lastTransitionTime": "2025-01-01T00:00:00Z",
                    }],
                },
            }))
            .unwrap();
        Cluster {
            server,
            kubeconfig: kubeconfig.to_str().unwrap().to_owned(),
            _dir: dir,
            app,
            infra,
        }
    }

    /// Runs `fluxhook-register --receiver flux-system/github-receiver` with
    /// `extra` as the ServiceAccount.
    async fn run(&self, extra: &[&str]) -> Run {
        let receiver = format!("{NAMESPACE}/{RECEIVER}");
        let mut args = vec![
            "--receiver",
            receiver.as_str(),
            "--base-url",
            BASE_URL,
            "--provider",
            "github",
            "--allow-http",
        ];
        args.extend_from_slice(extra);
        run(
            &args,
            &[
                ("KUBECONFIG", self.kubeconfig.as_str()),
                ("GITHUB_TOKEN", self.app.token()),
            ],
        )
        .await
    }

    /// The CI Role as deployed, less `verb` on `resource`.
    fn restrict_role(&self, verb: &str, resource: &str) {
        let mut role = self
            .server
            .get(
                "rbac.authorization.k8s.io/v1",
                "Role",
                NAMESPACE,
                "fluxhook-register",
            )
            .unwrap();
        let rules: Vec<Value> = role["rules"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|rule| {
                if !rule["resources"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == resource)
                {
                    return Some(rule.clone());
                }
                let verbs: Vec<&Value> = rule["verbs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|v| *v != verb)
                    .collect();
                let mut rule = rule.clone();
                rule["verbs"] = json!(verbs);
                (!verbs.is_empty()).then_some(rule)
            })
            .collect();
        role["rules"] = json!(rules);
        self.server.apply_json(role).unwrap();
    }

    /// Puts the CI Role back as the file has it.
    fn restore_role(&self) {
        self.server.seed_from_path(ci_rbac_file()).unwrap();
    }

    /// What the ServiceAccount's allowed requests used: `(verb, resource)`.
    fn used(&self) -> BTreeSet<(String, String)> {
        self.server
            .requests()
            .matching(&RequestMatcher::any().user(USER))
            .into_iter()
            .filter(|record| record.decision.as_ref().is_some_and(|d| d.rule().is_some()))
            .map(|record| {
                let target = record.target.unwrap();
                (
                    record.verb.unwrap().as_str().to_owned(),
                    format!("{}/{}", target.group, target.resource),
                )
            })
            .collect()
    }

    /// The ServiceAccount's requests the API server refused.
    fn refused(&self) -> Vec<String> {
        self.server
            .requests()
            .matching(&RequestMatcher::any().user(USER))
            .into_iter()
            .filter(|record| record.status == Some(403))
            .map(|record| format!("{} {}?{}", record.method, record.path, record.query))
            .collect()
    }
}

/// `(verb, group/resource)` of every rule of the CI Role, as seeded from the
/// file.
fn granted(server: &TestApiServer) -> BTreeSet<(String, String)> {
    let role = server
        .get(
            "rbac.authorization.k8s.io/v1",
            "Role",
            NAMESPACE,
            "fluxhook-register",
        )
        .unwrap();
    let strings = |rule: &Value, field: &str| -> Vec<String> {
        rule[field]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect()
    };
    let mut grants = BTreeSet::new();
    for rule in role["rules"].as_array().unwrap() {
        for verb in strings(rule, "verbs") {
            for group in strings(rule, "apiGroups") {
                for resource in strings(rule, "resources") {
                    grants.insert((verb.clone(), format!("{group}/{resource}")));
                }
            }
        }
    }
    grants
}

#[tokio::test]
async fn checks_registers_and_deletes_under_the_ci_role_which_it_all_needs() {
    let cluster = Cluster::start().await;
    let hook_url = format!(
        "{BASE_URL}{}",
        webhook_path(TOKEN, RECEIVER, NAMESPACE).as_str()
    );

    let check = cluster.run(&["--check"]).await;
    assert_eq!(check.status, 2, "{check:?}");
    assert!(
        check.stdout.contains("drift: 2 of 2 repositories"),
        "{check:?}"
    );

    let applied = cluster.run(&[]).await;
    assert_eq!(applied.status, 0, "{applied:?}");
    for host in [&cluster.app, &cluster.infra] {
        let urls: Vec<String> = host.hooks().into_iter().map(|hook| hook.url).collect();
        assert_eq!(urls, std::slice::from_ref(&hook_url), "{}", host.repo());
    }
    let in_sync = cluster.run(&["--check"]).await;
    assert_eq!(in_sync.status, 0, "{in_sync:?}");

    let deleted = cluster.run(&["--delete"]).await;
    assert_eq!(deleted.status, 0, "{deleted:?}");
    assert!(cluster.app.hooks().is_empty() && cluster.infra.hooks().is_empty());

    assert_eq!(
        cluster.refused(),
        Vec::<String>::new(),
        "nothing is refused"
    );
    let unused: Vec<_> = granted(&cluster.server)
        .difference(&cluster.used())
        .cloned()
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/register-ci/rbac.yaml grants what the binary never needed: {unused:?}"
    );
}

#[tokio::test]
async fn without_any_one_grant_the_run_fails_and_says_what_it_could_not_read() {
    let cluster = Cluster::start().await;
    let forbidden = |verb: &str, resource: &str, group: &str| {
        format!(
            r#"is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group "{group}" in the namespace "{NAMESPACE}""#
        )
    };
    let cases = [
        (
            "get",
            "receivers",
            format!(
                r#"cannot read Receiver flux-system/github-receiver: HTTP 403: receivers.notification.toolkit.fluxcd.io "github-receiver" {}"#,
                forbidden("get", "receivers", "notification.toolkit.fluxcd.io")
            ),
        ),
        (
            "get",
            "secrets",
            format!(
                r#"secrets "webhook-token" {}"#,
                forbidden("get", "secrets", "")
            ),
        ),
        (
            "get",
            "gitrepositories",
            format!(
                r#"GitRepository flux-system/app: cannot be read: HTTP 403: gitrepositories.source.toolkit.fluxcd.io "app" {}"#,
                forbidden("get", "gitrepositories", "source.toolkit.fluxcd.io")
            ),
        ),
        (
            "list",
            "gitrepositories",
            format!(
                r#"GitRepository flux-system/*: cannot be listed: HTTP 403: gitrepositories.source.toolkit.fluxcd.io {}"#,
                forbidden("list", "gitrepositories", "source.toolkit.fluxcd.io")
            ),
        ),
    ];
    for (verb, resource, said) in cases {
        cluster.restrict_role(verb, resource);
        let check = cluster.run(&["--check"]).await;
        let output = format!("{}{}", check.stdout, check.stderr);
        assert_eq!(check.status, 1, "without {verb} {resource}: {check:?}");
        assert!(
            output.contains(&said),
            "without {verb} {resource}, the run should say {said:?}: {check:?}"
        );
        cluster.restore_role();
    }
    let check = cluster.run(&["--check"]).await;
    assert_eq!(
        check.status, 2,
        "the Role as documented works again: {check:?}"
    );
}
