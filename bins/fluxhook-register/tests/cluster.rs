//! The real binary reading a Receiver from the fake Kubernetes API server and registering what
//! it serves with fake Git hosts, all on 127.0.0.1.

#![allow(clippy::unwrap_used)]

mod common;

use common::{
    BASE_URL, Cluster, NAMESPACE, RECEIVER, TOKEN, TempDir, git_repository, git_url, ready_status,
    served_path,
};
use fluxhook_api::webhook_path;
use fluxhook_test_apiserver::TestApiServer;
use fluxhook_test_githost::FakeHook;
use serde_json::{Value, json};

/// [`Cluster`] as the administrator, with a third GitRepository, `elsewhere` on gitlab.com,
/// labelled `hooks: gitlab`: the Receiver does not select it.
async fn cluster() -> Cluster {
    let server = TestApiServer::start_flux(&[NAMESPACE]).await.unwrap();
    let admin = server.admin();
    let cluster = Cluster::start(server, &admin).await;
    let elsewhere = git_repository(
        "elsewhere",
        json!({"hooks": "gitlab"}),
        "https://gitlab.com/g/r",
    );
    cluster.server.create(elsewhere).unwrap();
    cluster
}

#[tokio::test]
async fn registers_what_the_receiver_serves_in_each_git_repository() {
    let cluster = cluster().await;
    cluster.ready();
    let hook_url = format!("{BASE_URL}{}", served_path());

    cluster.assert_both_drifted().await;
    assert_eq!(cluster.app.writes(), vec![]);
    assert_eq!(cluster.infra.writes(), vec![]);

    let applied = cluster.run_receiver(&[]).await;
    assert_eq!(applied.status, 0, "{applied:?}");
    assert!(
        applied.stdout.contains("(GitHub at 127.0.0.1:"),
        "{applied:?}"
    );
    for (host, source) in [(&cluster.app, "app"), (&cluster.infra, "infra")] {
        let hooks = host.hooks();
        assert_eq!(hooks.len(), 1, "{source}");
        assert_eq!(hooks[0].url, hook_url, "{source}");
        assert_eq!(hooks[0].events, ["push"], "{source}");
        assert_eq!(hooks[0].secret.as_deref(), Some(TOKEN), "{source}");
        assert!(
            applied.stdout.contains(&format!(
                "octocat/{} (GitHub at 127.0.0.1:{}, GitRepository {NAMESPACE}/{source}): created hook 1",
                host.repo(),
                host.addr().port()
            )),
            "{applied:?}"
        );
        host.clear_requests();
    }
    assert!(!applied.stdout.contains("elsewhere"), "{applied:?}");
    assert!(!applied.stdout.contains(TOKEN) && !applied.stderr.contains(TOKEN));

    let json = cluster
        .run(&[
            "-n",
            NAMESPACE,
            "--receiver",
            RECEIVER,
            "--check",
            "--output",
            "json",
        ])
        .await;
    assert_eq!(json.status, 0, "{json:?}");
    let report: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["webhook_url"], hook_url.as_str());
    assert_eq!(report["in_sync"], true);
    let sources: Vec<&Value> = report["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["sources"])
        .collect();
    assert_eq!(
        sources,
        [
            &json!(["GitRepository flux-system/app"]),
            &json!(["GitRepository flux-system/infra"])
        ]
    );
    assert_eq!(cluster.app.writes(), vec![]);
    assert_eq!(cluster.infra.writes(), vec![]);

    // The served URL's hooks go; a hook to another URL stays.
    cluster
        .app
        .seed(FakeHook::new("https://ci.example.com/hook", &["push"]));
    let deleted = cluster.run_receiver(&["--delete"]).await;
    assert_eq!(deleted.status, 0, "{deleted:?}");
    assert!(cluster.infra.hooks().is_empty());
    let left: Vec<String> = cluster.app.hooks().into_iter().map(|h| h.url).collect();
    assert_eq!(left, ["https://ci.example.com/hook"]);
}

#[tokio::test]
async fn receivers_that_serve_no_path_yet_are_refused() {
    let cluster = cluster().await;

    cluster.receiver(json!({
        "conditions": [{
            "type": "Ready", "status": "False", "reason": "TokenNotFound",
            "message": "unable to read token from secret", "lastTransitionTime": "2025-01-01T00:00:00Z",
        }],
    }));
    let unready = cluster.run_receiver(&[]).await;
    assert_eq!(unready.status, 1, "{unready:?}");
    assert!(
        unready.stderr.contains(
            "Receiver flux-system/github-receiver is not Ready (TokenNotFound: unable to read token from secret)"
        ),
        "{unready:?}"
    );

    // Ready, but for a token the Secret no longer holds.
    cluster.receiver(ready_status(
        webhook_path("old-token", RECEIVER, NAMESPACE).as_str(),
    ));
    let stale = cluster.run_receiver(&[]).await;
    assert_eq!(stale.status, 1, "{stale:?}");
    assert!(
        stale
            .stderr
            .contains("has not reconciled since the token changed"),
        "{stale:?}"
    );
    assert!(!stale.stderr.contains(TOKEN), "{stale:?}");

    let missing = cluster.run(&["--receiver", "flux-system/absent"]).await;
    assert_eq!(missing.status, 1, "{missing:?}");
    assert!(
        missing
            .stderr
            .contains("cannot read Receiver flux-system/absent: HTTP 404"),
        "{missing:?}"
    );
    assert_eq!(cluster.app.requests(), vec![]);
    assert_eq!(cluster.infra.requests(), vec![]);
}

#[tokio::test]
async fn a_git_repository_that_cannot_be_read_fails_alone() {
    let cluster = cluster().await;
    cluster.receiver_of(
        json!([
            {"kind": "GitRepository", "name": "missing"},
            {"kind": "GitRepository", "name": "app"},
        ]),
        ready_status(&served_path()),
    );
    let run = cluster.run_receiver(&[]).await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr
            .starts_with("error: GitRepository flux-system/missing: cannot be read: HTTP 404"),
        "{run:?}"
    );
    assert!(run.stdout.contains("created hook 1"), "{run:?}");
    assert_eq!(cluster.app.hooks().len(), 1);
}

#[tokio::test]
async fn a_receiver_type_that_cannot_verify_a_repositorys_host_fails_for_that_repository() {
    let cluster = cluster().await;
    // `elsewhere` is on gitlab.com: a github Receiver would refuse every GitLab delivery.
    cluster.receiver_of(
        json!([
            {"kind": "GitRepository", "name": "elsewhere"},
            {"kind": "GitRepository", "name": "app"},
        ]),
        ready_status(&served_path()),
    );
    let run = cluster.run_receiver(&[]).await;
    assert_eq!(run.status, 1, "{run:?}");
    assert!(
        run.stderr.contains(
            "GitRepository flux-system/elsewhere: GitLab gitlab.com, repository g/r: choose \
             events: a github Receiver cannot verify GitLab's deliveries"
        ),
        "{run:?}"
    );
    assert!(run.stdout.contains("created hook 1"), "{run:?}");
}

#[tokio::test]
async fn kubeconfig_and_context_choose_the_cluster_and_the_namespace() {
    let cluster = cluster().await;
    cluster.ready();
    // The test server's kubeconfig, with its bearer token, rewritten with a second context:
    // the current one points at a port nothing listens on, in namespace default; the one
    // asked for reaches the server, in the Receiver's namespace.
    let token = cluster
        .server
        .kubeconfig_yaml()
        .lines()
        .find_map(|line| line.trim().strip_prefix("token: ").map(str::to_owned))
        .unwrap();
    let kubeconfig = format!(
        "apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {{server: '{server}'}}
- name: gone
  cluster: {{server: 'http://127.0.0.1:9'}}
users:
- name: test
  user: {{token: '{token}'}}
contexts:
- name: gone
  context: {{cluster: gone, user: test, namespace: default}}
- name: flux
  context: {{cluster: test, user: test, namespace: {NAMESPACE}}}
current-context: gone
",
        server = cluster.server.url(),
    );
    let dir = TempDir::new();
    let path = dir.write("ci-kubeconfig", &kubeconfig);
    let path = path.as_str();
    let check = |extra: &[&str], kubeconfig_env: &str| {
        let args: Vec<String> = ["--receiver", RECEIVER, "--check"]
            .iter()
            .chain(extra)
            .map(|arg| (*arg).to_owned())
            .collect();
        let kubeconfig_env = kubeconfig_env.to_owned();
        let cluster = &cluster;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            cluster.run_with(&kubeconfig_env, &args).await
        }
    };

    // KUBECONFIG names a file that does not exist: --kubeconfig wins, --context picks the
    // context, and its namespace is the Receiver's.
    let chosen = check(
        &["--kubeconfig", path, "--context", "flux"],
        "/nonexistent/kubeconfig",
    )
    .await;
    assert_eq!(chosen.status, 2, "{chosen:?}");
    assert!(
        chosen.stdout.contains("drift: 2 of 2 repositories"),
        "{chosen:?}"
    );

    // --context alone reads KUBECONFIG.
    let from_env = check(&["--context", "flux"], path).await;
    assert_eq!(from_env.status, 2, "{from_env:?}");

    // The current context is the unreachable cluster.
    let current = check(&["--kubeconfig", path], "/nonexistent/kubeconfig").await;
    assert_eq!(current.status, 1, "{current:?}");
    assert!(
        current.stderr.contains("cannot read Receiver default/"),
        "{current:?}"
    );

    let unknown = check(&["--kubeconfig", path, "--context", "nope"], path).await;
    assert_eq!(unknown.status, 1, "{unknown:?}");
    assert!(unknown.stderr.contains("nope"), "{unknown:?}");
    assert_eq!(cluster.app.writes(), vec![]);
}

#[tokio::test]
async fn a_git_repository_may_ask_for_a_hook_without_certificate_verification() {
    // As the controller reads it: webhooks.fluxhook.io/insecure-skip-tls-verify on the
    // GitRepository, so that the command and the controller keep the same hook.
    let cluster = cluster().await;
    cluster.ready();
    let annotate = |value: &str| {
        let mut app = git_repository("app", json!({}), &git_url(&cluster.app));
        app["metadata"]["annotations"] =
            json!({"webhooks.fluxhook.io/insecure-skip-tls-verify": value});
        cluster.server.apply_json(app).unwrap();
    };
    annotate("true");
    let applied = cluster.run_receiver(&[]).await;
    assert_eq!(applied.status, 0, "{applied:?}");
    assert!(!cluster.app.hooks()[0].tls_verification);
    assert!(cluster.infra.hooks()[0].tls_verification);

    // Kept: a check says in sync, a second run writes nothing.
    let check = cluster.run_receiver(&["--check"]).await;
    assert_eq!(check.status, 0, "{check:?}");
    assert_eq!(cluster.run_receiver(&[]).await.status, 0);
    assert_eq!(cluster.app.writes().len(), 1, "{:?}", cluster.app.writes());

    // A value that is neither: that repository is an error naming it, the other is served.
    annotate("yes");
    let refused = cluster.run_receiver(&["--check"]).await;
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(
        refused
            .stderr
            .contains(r#"webhooks.fluxhook.io/insecure-skip-tls-verify: "yes" is neither"#),
        "{refused:?}"
    );
    assert!(refused.stdout.contains("fleet-infra"), "{refused:?}");
}
