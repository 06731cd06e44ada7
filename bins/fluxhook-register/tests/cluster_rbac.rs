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

use common::{BASE_URL, Cluster, NAMESPACE, served_path};
use fluxhook_test_apiserver::{
    AuthorizationMode, RequestMatcher, ServerOptions, TestApiServer, fixtures,
};
use serde_json::Value;

const USER: &str = "system:serviceaccount:flux-system:fluxhook-register";

/// The documented Role, its RoleBinding and ServiceAccount.
fn ci_rbac_file() -> &'static Path {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/register-ci/rbac.yaml"
    ))
}

/// [`Cluster`] authorizing with RBAC, holding the CI Role, the binary running as its
/// ServiceAccount, and the Receiver Ready.
async fn cluster() -> Cluster {
    let options = ServerOptions::default()
        .authorization(AuthorizationMode::Rbac)
        .flux()
        .namespaces(&[NAMESPACE]);
    let server = TestApiServer::start_with(options).await.unwrap();
    let seeded = server.seed_from_path(ci_rbac_file()).unwrap();
    assert_eq!(seeded, 3, "a ServiceAccount, a Role and a RoleBinding");
    let account = server.service_account(NAMESPACE, "fluxhook-register");
    let cluster = Cluster::start(server, &account).await;
    cluster.ready();
    cluster
}

/// The CI Role as stored.
fn ci_role(server: &TestApiServer) -> Value {
    server
        .get(
            "rbac.authorization.k8s.io/v1",
            "Role",
            NAMESPACE,
            "fluxhook-register",
        )
        .unwrap()
}

/// Stores the CI Role as deployed, less `verb` on `group/resource`.
fn restrict_role(server: &TestApiServer, verb: &str, group: &str, resource: &str) {
    let mut role = [ci_role(server)];
    assert!(
        fixtures::revoke(&mut role, verb, group, resource),
        "the CI Role does not grant {verb} on {group}/{resource}"
    );
    let [role] = role;
    server.apply_json(role).unwrap();
}

/// Puts the CI Role back as the file has it.
fn restore_role(server: &TestApiServer) {
    server.seed_from_path(ci_rbac_file()).unwrap();
}

/// What the ServiceAccount's allowed requests used: `(verb, group/resource)`.
fn used(server: &TestApiServer) -> BTreeSet<(String, String)> {
    server
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
fn refused(server: &TestApiServer) -> Vec<String> {
    server
        .requests()
        .matching(&RequestMatcher::any().user(USER))
        .into_iter()
        .filter(|record| record.status == Some(403))
        .map(|record| format!("{} {}?{}", record.method, record.path, record.query))
        .collect()
}

/// `(verb, group/resource)` of every rule of the CI Role, as seeded from the file.
fn granted(server: &TestApiServer) -> BTreeSet<(String, String)> {
    ci_role(server)["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(fixtures::rule_grants)
        .collect()
}

#[tokio::test]
async fn checks_registers_and_deletes_under_the_ci_role_which_it_all_needs() {
    let cluster = cluster().await;
    let hook_url = format!("{BASE_URL}{}", served_path());

    cluster.assert_both_drifted().await;

    let applied = cluster.run_receiver(&[]).await;
    assert_eq!(applied.status, 0, "{applied:?}");
    for host in [&cluster.app, &cluster.infra] {
        let urls: Vec<String> = host.hooks().into_iter().map(|hook| hook.url).collect();
        assert_eq!(urls, std::slice::from_ref(&hook_url), "{}", host.repo());
    }
    let in_sync = cluster.run_receiver(&["--check"]).await;
    assert_eq!(in_sync.status, 0, "{in_sync:?}");

    let deleted = cluster.run_receiver(&["--delete"]).await;
    assert_eq!(deleted.status, 0, "{deleted:?}");
    assert!(cluster.app.hooks().is_empty() && cluster.infra.hooks().is_empty());

    assert_eq!(
        refused(&cluster.server),
        Vec::<String>::new(),
        "nothing is refused"
    );
    let unused: Vec<_> = granted(&cluster.server)
        .difference(&used(&cluster.server))
        .cloned()
        .collect();
    assert!(
        unused.is_empty(),
        "deploy/register-ci/rbac.yaml grants what the binary never needed: {unused:?}"
    );
}

#[tokio::test]
async fn without_any_one_grant_the_run_fails_and_says_what_it_could_not_read() {
    let cluster = cluster().await;
    // (verb, group, resource, what the run says before the apiserver's words)
    let cases = [
        (
            "get",
            "notification.toolkit.fluxcd.io",
            "receivers",
            r#"cannot read Receiver flux-system/github-receiver: HTTP 403: receivers.notification.toolkit.fluxcd.io "github-receiver""#,
        ),
        ("get", "", "secrets", r#"secrets "webhook-token""#),
        (
            "get",
            "source.toolkit.fluxcd.io",
            "gitrepositories",
            r#"GitRepository flux-system/app: cannot be read: HTTP 403: gitrepositories.source.toolkit.fluxcd.io "app""#,
        ),
        (
            "list",
            "source.toolkit.fluxcd.io",
            "gitrepositories",
            "GitRepository flux-system/*: cannot be listed: HTTP 403: gitrepositories.source.toolkit.fluxcd.io",
        ),
    ];
    for (verb, group, resource, context) in cases {
        let said = format!(
            r#"{context} is forbidden: User "{USER}" cannot {verb} resource "{resource}" in API group "{group}" in the namespace "{NAMESPACE}""#
        );
        restrict_role(&cluster.server, verb, group, resource);
        let check = cluster.run_receiver(&["--check"]).await;
        let output = format!("{}{}", check.stdout, check.stderr);
        assert_eq!(check.status, 1, "without {verb} {resource}: {check:?}");
        assert!(
            output.contains(&said),
            "without {verb} {resource}, the run should say {said:?}: {check:?}"
        );
        restore_role(&cluster.server);
    }
    let check = cluster.run_receiver(&["--check"]).await;
    assert_eq!(
        check.status, 2,
        "the Role as documented works again: {check:?}"
    );
}
