use std::time::Duration;

use fluxhook_test_apiserver::{
    AuthorizationMode, Decision, Identity, PolicyObject, RequestMatcher, ServerOptions,
    TestApiServer, Verb, eventually,
};
use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::api::rbac::v1::{PolicyRule, Role, RoleBinding, RoleRef, Subject};
use kube::api::{Api, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Client, ResourceExt};
use serde_json::json;

use super::{GitRepository, create_repo};

const NS: &str = "flux-system";
const SA_USER: &str = "system:serviceaccount:flux-system:reader";

/// The policy a test creates from YAML: the ServiceAccount `flux-system/reader` may read
/// and watch GitRepositories everywhere and patch (not update) their status, and read the
/// Secret `webhook-token` of `flux-system`.
const POLICY: &str = r#"
apiVersion: v1
kind: Namespace
metadata: {name: flux-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: repo-reader}
rules:
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [gitrepositories]
  verbs: [get, list, watch]
- apiGroups: [source.toolkit.fluxcd.io]
  resources: [gitrepositories/status]
  verbs: [patch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: repo-reader}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: repo-reader}
subjects:
- {kind: ServiceAccount, name: reader, namespace: flux-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: token-reader, namespace: flux-system}
rules:
- apiGroups: [""]
  resources: [secrets]
  resourceNames: [webhook-token]
  verbs: [get]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata: {name: token-reader, namespace: flux-system}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: token-reader}
subjects:
- {kind: ServiceAccount, name: reader}
"#;

async fn rbac_server() -> TestApiServer {
    let options = ServerOptions::default()
        .bookmark_interval(Duration::from_millis(50))
        .authorization(AuthorizationMode::Rbac)
        .flux();
    TestApiServer::start_with(options).await.unwrap()
}

async fn client_as(server: &TestApiServer, identity: &Identity) -> Client {
    server.kube_client_for(identity).await.unwrap()
}

/// The server with [`POLICY`] seeded from a YAML file, a GitRepository and two Secrets.
async fn seeded() -> TestApiServer {
    let server = rbac_server().await;
    let dir = std::env::temp_dir().join(format!("fluxhook-rbac-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("policy-{:?}.yaml", std::thread::current().id()));
    std::fs::write(&file, POLICY).unwrap();
    server.seed_from_path(&file).unwrap();
    let _ = std::fs::remove_file(&file);
    let admin = client_as(&server, &server.admin()).await;
    let repos: Api<GitRepository> = Api::namespaced(admin.clone(), NS);
    create_repo(&repos, "flux", "https://example.com/flux.git").await;
    let secrets: Api<Secret> = Api::namespaced(admin, NS);
    for name in ["webhook-token", "other"] {
        let secret: Secret = serde_json::from_value(json!({
            "metadata": {"name": name},
            "stringData": {"token": "t"}
        }))
        .unwrap();
        secrets
            .create(&PostParams::default(), &secret)
            .await
            .unwrap();
    }
    server
}

fn forbidden(error: kube::Error) -> String {
    match error {
        kube::Error::Api(status) => {
            assert_eq!((status.code, status.reason.as_str()), (403, "Forbidden"));
            status.message
        }
        other => panic!("expected 403 Forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn a_service_account_may_do_what_its_bindings_allow_and_nothing_else() {
    let server = seeded().await;
    let reader = client_as(&server, &server.service_account(NS, "reader")).await;
    let repos: Api<GitRepository> = Api::namespaced(reader.clone(), NS);

    assert_eq!(repos.get("flux").await.unwrap().name_any(), "flux");
    let all: Api<GitRepository> = Api::all(reader.clone());
    assert_eq!(
        all.list(&ListParams::default()).await.unwrap().items.len(),
        1
    );
    let status = json!({"status": {"lastHandledReconcileAt": "now"}});
    repos
        .patch_status("flux", &PatchParams::default(), &Patch::Merge(&status))
        .await
        .unwrap();

    let mut replaced = repos.get("flux").await.unwrap();
    replaced.spec.url = "https://example.com/other.git".into();
    assert_eq!(
        forbidden(
            repos
                .replace("flux", &PostParams::default(), &replaced)
                .await
                .unwrap_err()
        ),
        r#"gitrepositories.source.toolkit.fluxcd.io "flux" is forbidden: User "system:serviceaccount:flux-system:reader" cannot update resource "gitrepositories" in API group "source.toolkit.fluxcd.io" in the namespace "flux-system""#
    );
    assert_eq!(
        forbidden(
            repos
                .replace_status("flux", &PostParams::default(), &replaced)
                .await
                .unwrap_err()
        ),
        r#"gitrepositories.source.toolkit.fluxcd.io "flux" is forbidden: User "system:serviceaccount:flux-system:reader" cannot update resource "gitrepositories/status" in API group "source.toolkit.fluxcd.io" in the namespace "flux-system""#
    );
    assert!(
        forbidden(repos.delete("flux", &Default::default()).await.unwrap_err())
            .contains("cannot delete resource \"gitrepositories\"")
    );

    let secrets: Api<Secret> = Api::namespaced(reader.clone(), NS);
    secrets.get("webhook-token").await.unwrap();
    assert!(forbidden(secrets.get("other").await.unwrap_err())
        .starts_with(r#"secrets "other" is forbidden: User "system:serviceaccount:flux-system:reader" cannot get resource "secrets" in API group """#));
    assert_eq!(
        forbidden(secrets.list(&ListParams::default()).await.unwrap_err()),
        r#"secrets is forbidden: User "system:serviceaccount:flux-system:reader" cannot list resource "secrets" in API group "" in the namespace "flux-system""#
    );
    let everywhere: Api<Secret> = Api::all(reader);
    assert!(
        forbidden(everywhere.list(&ListParams::default()).await.unwrap_err())
            .ends_with(r#"cannot list resource "secrets" in API group "" at the cluster scope"#)
    );

    // Who did what, and which rule let them, is in the log.
    let patches = server.requests().matching(
        &RequestMatcher::any()
            .user(SA_USER)
            .verb(Verb::Patch)
            .subresource("status"),
    );
    assert_eq!(patches.len(), 1);
    let rule = patches[0]
        .decision
        .as_ref()
        .and_then(Decision::rule)
        .unwrap();
    assert_eq!(
        (rule.role.to_string(), rule.index, rule.binding.to_string()),
        (
            "ClusterRole repo-reader".to_owned(),
            1,
            "ClusterRoleBinding repo-reader".to_owned()
        )
    );
    let used: Vec<(String, usize)> = server
        .requests()
        .allowing_rules()
        .into_iter()
        .filter(|rule| rule.role.name != "system:discovery")
        .map(|rule| (rule.role.to_string(), rule.index))
        .collect();
    assert_eq!(
        used,
        [
            ("ClusterRole repo-reader".to_owned(), 0),
            ("ClusterRole repo-reader".to_owned(), 1),
            ("Role flux-system/token-reader".to_owned(), 0),
        ]
    );
    let denied = server
        .requests()
        .all()
        .into_iter()
        .filter(|record| record.status == Some(403))
        .count();
    assert_eq!(denied, 6);
}

#[tokio::test]
async fn watches_are_authorized_as_watch_and_discovery_as_paths() {
    let server = seeded().await;
    let reader = client_as(&server, &server.service_account(NS, "reader")).await;
    // Discovery, as kube-rs does it, through the bootstrap policy.
    let discovery = kube::Discovery::new(reader.clone()).run().await.unwrap();
    assert!(discovery.has_group("source.toolkit.fluxcd.io"));

    let repos: Api<GitRepository> = Api::all(reader.clone());
    let mut events = watcher(repos, watcher::Config::default()).boxed();
    let first = super::next(&mut events).await.unwrap();
    assert!(matches!(first, watcher::Event::Init), "{first:?}");
    // The watch starts once the initial list is consumed.
    let driver = tokio::spawn(async move {
        while let Some(event) = events.next().await {
            event.unwrap();
        }
    });
    eventually("the ServiceAccount's watch", || {
        server.requests().count(
            &RequestMatcher::any()
                .user(SA_USER)
                .verb(Verb::Watch)
                .resource("gitrepositories"),
        ) > 0
    })
    .await;
    driver.abort();

    // A watcher without the right is refused at its first list.
    let secrets: Api<Secret> = Api::all(reader);
    let mut refused = watcher(secrets, watcher::Config::default()).boxed();
    assert!(matches!(
        super::next(&mut refused).await,
        Ok(watcher::Event::Init)
    ));
    match super::next(&mut refused).await {
        Err(watcher::Error::InitialListFailed(error)) => {
            assert!(forbidden(error).contains("cannot list resource \"secrets\""));
        }
        other => panic!("expected the list to be forbidden, got {other:?}"),
    }
}

#[tokio::test]
async fn bindings_written_through_the_api_take_effect_at_once() {
    let server = rbac_server().await;
    server
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NS}}))
        .unwrap();
    let admin = client_as(&server, &server.admin()).await;
    let user = server.user("jane", &["ci"]);
    let jane = client_as(&server, &user).await;
    let secrets: Api<Secret> = Api::namespaced(jane, NS);
    assert!(
        forbidden(secrets.list(&ListParams::default()).await.unwrap_err())
            .contains(r#"User "jane" cannot list"#)
    );

    let roles: Api<Role> = Api::namespaced(admin.clone(), NS);
    roles
        .create(
            &PostParams::default(),
            &Role {
                metadata: kube::api::ObjectMeta {
                    name: Some("secret-lister".into()),
                    ..Default::default()
                },
                rules: Some(vec![PolicyRule {
                    api_groups: Some(vec![String::new()]),
                    resources: Some(vec!["secrets".into()]),
                    verbs: vec!["list".into()],
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(admin, NS);
    let binding = bindings
        .create(
            &PostParams::default(),
            &RoleBinding {
                metadata: kube::api::ObjectMeta {
                    name: Some("ci-lists-secrets".into()),
                    ..Default::default()
                },
                role_ref: RoleRef {
                    api_group: "rbac.authorization.k8s.io".into(),
                    kind: "Role".into(),
                    name: "secret-lister".into(),
                },
                // A Group subject without apiGroup is defaulted to RBAC's.
                subjects: Some(vec![Subject {
                    kind: "Group".into(),
                    name: "ci".into(),
                    ..Default::default()
                }]),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        binding.subjects.unwrap()[0].api_group.as_deref(),
        Some("rbac.authorization.k8s.io")
    );
    secrets.list(&ListParams::default()).await.unwrap();
    let listed = server
        .requests()
        .matching(&RequestMatcher::any().user("jane").verb(Verb::List));
    let last = listed.last().unwrap();
    assert_eq!(
        last.decision,
        Some(Decision::Allowed {
            rule: fluxhook_test_apiserver::AllowingRule {
                binding: PolicyObject {
                    kind: "RoleBinding".into(),
                    namespace: Some(NS.into()),
                    name: "ci-lists-secrets".into()
                },
                role: PolicyObject {
                    kind: "Role".into(),
                    namespace: Some(NS.into()),
                    name: "secret-lister".into()
                },
                index: 0,
            },
            reason: r#"RBAC: allowed by RoleBinding "ci-lists-secrets/flux-system" of Role "secret-lister" to Group "ci""#.into(),
        })
    );
}

#[tokio::test]
async fn unknown_tokens_are_unauthorized_and_no_token_is_anonymous() {
    let server = rbac_server().await;
    let http = reqwest_like(
        &server,
        Some("not-a-token"),
        "/api/v1/namespaces/default/secrets",
    )
    .await;
    assert_eq!(http.0, 401);
    assert_eq!(http.1["reason"], "Unauthorized");
    let anonymous = reqwest_like(&server, None, "/api/v1/namespaces/default/secrets").await;
    assert_eq!(anonymous.0, 403);
    assert_eq!(
        anonymous.1["message"],
        r#"secrets is forbidden: User "system:anonymous" cannot list resource "secrets" in API group "" in the namespace "default""#
    );
    assert_eq!(reqwest_like(&server, None, "/version").await.0, 200);
    let path = reqwest_like(&server, None, "/apis").await;
    assert_eq!(
        (path.0, path.1["message"].as_str()),
        (
            403,
            Some(r#"forbidden: User "system:anonymous" cannot get path "/apis""#)
        )
    );
}

#[tokio::test]
async fn always_allow_still_authenticates() {
    let server = super::flux_server().await;
    assert_eq!(
        reqwest_like(&server, Some("not-a-token"), "/api/v1/secrets")
            .await
            .0,
        401
    );
    assert_eq!(reqwest_like(&server, None, "/api/v1/secrets").await.0, 200);
    let admin = server.admin();
    let record = server.requests().all().pop().unwrap();
    assert_eq!(record.user.as_deref(), Some("system:anonymous"));
    assert_eq!(record.decision, Some(Decision::AlwaysAllow));
    assert_eq!(
        reqwest_like(&server, Some(admin.token()), "/api/v1/secrets")
            .await
            .0,
        200
    );
    let record = server.requests().all().pop().unwrap();
    assert_eq!(record.user.as_deref(), Some("kubernetes-admin"));
}

/// GETs `path` with an optional bearer token through kube's client: the HTTP status, and
/// the `Status` (its reason and message) or the document answered.
async fn reqwest_like(
    server: &TestApiServer,
    token: Option<&str>,
    path: &str,
) -> (u16, serde_json::Value) {
    let config = kube::Config::new(server.url().parse().unwrap());
    let client = Client::try_from(config).unwrap();
    let mut request = http::Request::get(path);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    match client.request_text(request.body(Vec::new()).unwrap()).await {
        Ok(text) => (200, serde_json::from_str(&text).unwrap()),
        Err(kube::Error::Api(status)) => (
            status.code,
            json!({"reason": status.reason, "message": status.message}),
        ),
        Err(other) => panic!("GET {path}: {other:?}"),
    }
}
