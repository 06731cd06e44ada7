//! The real binary against fake Git hosts on 127.0.0.1: one hook given by flags.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Hosted, SECRET, WEBHOOK_URL, run};
use fluxhook_test_githost::{FakeConfig, FakeHook, FakeHost, Fault, HostKind, RetryAfterHeader};
use serde_json::{Value, json};

#[tokio::test]
async fn creates_a_hook_then_leaves_it_unchanged_on_every_host() {
    for kind in HostKind::ALL {
        let s = Hosted::start(kind).await;
        let first = s.run_with_secret(&[]).await;
        assert_eq!(first.status, 0, "{kind:?}: {first:?}");
        assert!(first.stdout.contains("created hook"), "{kind:?}: {first:?}");
        let hooks = s.host.hooks();
        assert_eq!(hooks.len(), 1, "{kind:?}");
        assert_eq!(hooks[0].url, WEBHOOK_URL, "{kind:?}");
        assert_eq!(hooks[0].secret.as_deref(), Some(SECRET), "{kind:?}");

        s.host.clear_requests();
        let second = s.run_with_secret(&[]).await;
        assert_eq!(second.status, 0, "{kind:?}: {second:?}");
        // Bitbucket Cloud shows ids as `{uuid}`s made from the fake's numbers.
        assert!(
            second.stdout.contains("unchanged (hook "),
            "{kind:?}: {second:?}"
        );
        assert!(!s.host.requests().is_empty(), "{kind:?}");
        assert_eq!(s.host.writes(), vec![], "{kind:?}");
        assert_eq!(s.host.hooks(), hooks, "{kind:?}");
    }
}

#[tokio::test]
async fn dry_run_says_what_would_change_and_writes_nothing() {
    let s = Hosted::start(HostKind::GitLab).await;
    let run = s.run_with_secret(&["--dry-run"]).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(run.stdout.contains("would create a hook"), "{run:?}");
    assert!(
        run.stdout.contains("dry run: nothing was written"),
        "{run:?}"
    );
    assert_eq!(s.host.writes(), vec![]);
    assert!(s.host.hooks().is_empty());

    // A hook to the URL missing tag pushes, and a second one to the same URL.
    let stale = s.host.seed(FakeHook::new(WEBHOOK_URL, &["push_events"]));
    let duplicate = s.host.seed(FakeHook::new(WEBHOOK_URL, &["note_events"]));
    let run = s.run_with_secret(&["--dry-run"]).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert!(
        run.stdout.contains(&format!(
            "would update hook {stale}; would delete duplicate hooks {duplicate}"
        )),
        "{run:?}"
    );
    assert_eq!(s.host.writes(), vec![]);
    assert_eq!(s.host.hooks().len(), 2);
}

#[tokio::test]
async fn check_exits_2_on_drift_and_0_in_sync_without_writing() {
    let s = Hosted::start(HostKind::GitHub).await;
    let drift = s.run_with_secret(&["--check"]).await;
    assert_eq!(drift.status, 2, "{drift:?}");
    assert!(drift.stdout.contains("would create a hook"), "{drift:?}");
    assert!(
        drift
            .stdout
            .contains("drift: 1 of 1 repositories not in sync"),
        "{drift:?}"
    );
    assert_eq!(s.host.writes(), vec![]);

    assert_eq!(s.run_with_secret(&[]).await.status, 0);
    s.host.clear_requests();
    let in_sync = s.run_with_secret(&["--check"]).await;
    assert_eq!(in_sync.status, 0, "{in_sync:?}");
    assert!(in_sync.stdout.ends_with("in sync\n"), "{in_sync:?}");

    // Other events than the hook has are drift too.
    let events = s
        .run_with_secret(&["--check", "--events", "push,pull_request"])
        .await;
    assert_eq!(events.status, 2, "{events:?}");
    assert!(events.stdout.contains("would update hook 1"), "{events:?}");
    assert_eq!(s.host.writes(), vec![]);
}

#[tokio::test]
async fn delete_removes_every_hook_to_the_url_and_only_those() {
    let s = Hosted::start(HostKind::Gitea).await;
    let first = s.host.seed(FakeHook::new(WEBHOOK_URL, &["push"]));
    let second = s.host.seed(FakeHook::new(WEBHOOK_URL, &["pull_request"]));
    let other = s
        .host
        .seed(FakeHook::new("https://ci.example.com/hook", &["push"]));

    // No secret is needed to delete.
    let dry = s.run(&["--delete", "--dry-run"]).await;
    assert_eq!(dry.status, 0, "{dry:?}");
    assert!(
        dry.stdout
            .contains(&format!("would delete hooks {first}, {second}")),
        "{dry:?}"
    );
    assert_eq!(s.run(&["--delete", "--check"]).await.status, 2);
    assert_eq!(s.host.writes(), vec![]);

    let deleted = s.run(&["--delete"]).await;
    assert_eq!(deleted.status, 0, "{deleted:?}");
    assert!(
        deleted
            .stdout
            .contains(&format!("deleted hooks {first}, {second}")),
        "{deleted:?}"
    );
    let left: Vec<u64> = s.host.hooks().iter().map(|h| h.id).collect();
    assert_eq!(left, [other]);

    s.host.clear_requests();
    let again = s.run(&["--delete", "--check"]).await;
    assert_eq!(again.status, 0, "{again:?}");
    assert!(
        again.stdout.contains("unchanged (no hook to the URL)"),
        "{again:?}"
    );
    assert_eq!(s.host.writes(), vec![]);
}

#[tokio::test]
async fn json_output_has_one_result_per_repository() {
    let s = Hosted::start(HostKind::GitHub).await;
    let git_url = common::git_url(&s.host);
    let dry = s.run_with_secret(&["--dry-run", "--output", "json"]).await;
    assert_eq!(dry.status, 0, "{dry:?}");
    let report: Value = serde_json::from_str(&dry.stdout).unwrap();
    assert_eq!(
        report,
        json!({
            "operation": "ensure",
            "mode": "dry-run",
            "webhook_url": WEBHOOK_URL,
            "in_sync": false,
            "results": [{
                "repository": "octocat/hello-world",
                "git_url": git_url,
                "sources": [],
                "provider": "github",
                "api_url": s.host.api_base(),
                "action": "create",
                "applied": false,
                "hook_id": null,
                "deleted_hooks": [],
                "error": null,
            }],
        })
    );

    let applied = s.run_with_secret(&["--output", "json"]).await;
    assert_eq!(applied.status, 0, "{applied:?}");
    let report: Value = serde_json::from_str(&applied.stdout).unwrap();
    assert_eq!(report["mode"], "apply");
    assert_eq!(report["results"][0]["action"], "create");
    assert_eq!(report["results"][0]["applied"], true);
    assert_eq!(report["results"][0]["hook_id"], "1");

    let check = s.run_with_secret(&["--check", "--output", "json"]).await;
    assert_eq!(check.status, 0, "{check:?}");
    let report: Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["in_sync"], true);
    assert_eq!(report["results"][0]["action"], "unchanged");
    assert_eq!(report["results"][0]["applied"], false);
}

#[tokio::test]
async fn host_errors_exit_1_naming_host_repository_and_status_but_no_credentials() {
    let s = Hosted::start(HostKind::GitHub).await;
    let wrong_token = "ghp_wrong_token_value_0000000000";
    let args = s.args(&["--secret-file", &s.secret_file]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let failed = run(&args, &[("GITHUB_TOKEN", wrong_token)]).await;
    assert_eq!(failed.status, 1, "{failed:?}");
    let host = format!("127.0.0.1:{}", s.host.addr().port());
    for expected in [
        "error: ",
        "GitHub",
        host.as_str(),
        "octocat/hello-world",
        "401",
    ] {
        assert!(failed.stderr.contains(expected), "{expected}: {failed:?}");
    }

    let mut json_args = args.clone();
    json_args.extend(["--output", "json"]);
    let failed_json = run(&json_args, &[("GITHUB_TOKEN", wrong_token)]).await;
    assert_eq!(failed_json.status, 1, "{failed_json:?}");
    let report: Value = serde_json::from_str(&failed_json.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["action"], Value::Null);
    assert!(
        result["error"].as_str().unwrap().contains("HTTP 401"),
        "{result}"
    );

    for run in [&failed, &failed_json] {
        for credential in [wrong_token, s.host.token(), SECRET] {
            assert!(!run.stdout.contains(credential), "{run:?}");
            assert!(!run.stderr.contains(credential), "{run:?}");
        }
    }
    assert_eq!(s.host.writes(), vec![]);
}

#[tokio::test]
async fn plain_http_is_refused_unless_allowed() {
    let s = Hosted::start(HostKind::GitHub).await;
    let args: Vec<String> = s
        .args(&["--secret-file", &s.secret_file])
        .into_iter()
        .filter(|a| a != "--allow-http")
        .collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let refused = run(&args, &[("GITHUB_TOKEN", s.host.token())]).await;
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(refused.stderr.contains("--allow-http"), "{refused:?}");
    assert!(!refused.stderr.contains(s.host.token()), "{refused:?}");
    assert_eq!(s.host.requests(), vec![]);
}

#[tokio::test]
async fn a_missing_secret_token_or_argument_is_an_error_before_any_request() {
    let s = Hosted::start(HostKind::GitHub).await;
    let no_secret = s.run(&[]).await;
    assert_eq!(no_secret.status, 1, "{no_secret:?}");
    assert!(no_secret.stderr.contains("--secret-file"), "{no_secret:?}");

    let args = s.args(&["--secret-file", &s.secret_file]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let no_token = run(&args, &[("GITLAB_TOKEN", "not-for-github")]).await;
    assert_eq!(no_token.status, 1, "{no_token:?}");
    assert!(no_token.stderr.contains("GITHUB_TOKEN"), "{no_token:?}");
    assert!(no_token.stderr.contains("--token-file"), "{no_token:?}");

    // Usage errors exit 1: 2 means drift.
    let usage = run(&["--check"], &[]).await;
    assert_eq!(usage.status, 1, "{usage:?}");
    let secret_flag = run(
        &["--repo", "r", "--webhook-url", WEBHOOK_URL, "--secret", "x"],
        &[],
    )
    .await;
    assert_eq!(secret_flag.status, 1, "{secret_flag:?}");
    assert_eq!(s.host.requests(), vec![]);
}

#[tokio::test]
async fn secrets_and_tokens_come_from_the_environment_or_files() {
    let s = Hosted::start(HostKind::GitLab).await;
    let token_file = s.dir.write("token", &format!("{}\n", s.host.token()));
    let args = s.args(&["--secret-env", "HOOK_SECRET", "--token-file", &token_file]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let created = run(&args, &[("HOOK_SECRET", SECRET)]).await;
    assert_eq!(created.status, 0, "{created:?}");
    let hooks = s.host.hooks();
    assert_eq!(hooks.len(), 1);
    // GitLab stores the secret as the hook's token, so the fake shows which one was sent.
    assert_eq!(hooks[0].secret.as_deref(), Some(SECRET));
}

#[tokio::test]
async fn gitea_and_gogs_hooks_that_differ_are_replaced_so_the_secret_is_written() {
    // Their edit endpoints keep a hook's old secret (see the fakes), which they never show.
    for kind in [HostKind::Gitea, HostKind::Gogs] {
        let s = Hosted::start(kind).await;
        let mut stale = FakeHook::new(WEBHOOK_URL, &["push", "issues"]);
        stale.secret = Some("old-secret".into());
        let old = s.host.seed(stale);

        let check = s.run_with_secret(&["--check"]).await;
        assert_eq!(check.status, 2, "{kind:?}: {check:?}");
        assert!(
            check.stdout.contains(&format!("would replace hook {old}")),
            "{kind:?}: {check:?}"
        );
        let applied = s.run_with_secret(&[]).await;
        assert_eq!(applied.status, 0, "{kind:?}: {applied:?}");
        let hooks = s.host.hooks();
        assert_eq!(hooks.len(), 1, "{kind:?}");
        assert_eq!(hooks[0].secret.as_deref(), Some(SECRET), "{kind:?}");
        assert!(
            applied
                .stdout
                .contains(&format!("replaced hook {old} with hook {}", hooks[0].id)),
            "{kind:?}: {applied:?}"
        );
        s.host.clear_requests();
        assert_eq!(s.run_with_secret(&["--check"]).await.status, 0, "{kind:?}");
        assert_eq!(s.host.writes(), vec![], "{kind:?}");
    }
}

#[tokio::test]
async fn github_enterprise_cloud_repositories_use_their_own_api_host() {
    // No token: the run stops before any request, and still says where it would have gone.
    let dir = common::TempDir::new();
    let secret = dir.write("secret", SECRET);
    let run = run(
        &[
            "--repo",
            "https://octo-corp.ghe.com/platform/fleet.git",
            "--webhook-url",
            WEBHOOK_URL,
            "--secret-file",
            &secret,
            "--dry-run",
            "--output",
            "json",
        ],
        &[],
    )
    .await;
    assert_eq!(run.status, 1, "{run:?}");
    let report: Value = serde_json::from_str(&run.stdout).unwrap();
    let result = &report["results"][0];
    assert_eq!(result["provider"], "github", "{result}");
    assert_eq!(
        result["api_url"], "https://api.octo-corp.ghe.com/",
        "{result}"
    );
    assert!(run.stderr.contains("GITHUB_TOKEN"), "{run:?}");
}

#[tokio::test]
async fn azure_devops_repositories_are_refused_with_what_to_do_instead() {
    let dir = common::TempDir::new();
    let secret = dir.write("secret", SECRET);
    let run = run(
        &[
            "--repo",
            "https://dev.azure.com/acme/platform/_git/fleet",
            "--webhook-url",
            WEBHOOK_URL,
            "--secret-file",
            &secret,
        ],
        &[("GITHUB_TOKEN", "unused")],
    )
    .await;
    assert_eq!(run.status, 1, "{run:?}");
    for expected in [
        "Azure DevOps is not supported yet",
        "Service hooks",
        "generic",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {run:?}");
    }
    assert!(!run.stderr.contains("no Git provider is known"), "{run:?}");
}

#[tokio::test]
async fn redirects_are_reported_and_never_followed_with_credentials() {
    // A second GitLab that would accept the same token: anything forwarded to it is a leak.
    let elsewhere = FakeHost::start(HostKind::GitLab).await.unwrap();
    let target = format!(
        "{}/projects/{}%2F{}/hooks",
        elsewhere.api_base(),
        elsewhere.owner().replace('/', "%2F"),
        elsewhere.repo()
    );
    let s = Hosted::start(HostKind::GitLab).await;
    s.host.inject(
        Fault::Redirect {
            status: 301,
            location: format!("{target}?private_token=leaked"),
            method: None,
        },
        1,
    );
    let listed = s.run_with_secret(&[]).await;
    assert_eq!(listed.status, 1, "{listed:?}");
    assert!(
        listed
            .stderr
            .contains(&format!("HTTP 301: the host redirects to {target};")),
        "{listed:?}"
    );
    assert!(!listed.stderr.contains("leaked"), "{listed:?}");

    // A creation redirected with 307 or 308 would be sent again, body and secret included.
    for status in [307, 308] {
        s.host.inject(
            Fault::Redirect {
                status,
                location: target.clone(),
                method: Some("POST".into()),
            },
            1,
        );
        let created = s.run_with_secret(&[]).await;
        assert_eq!(created.status, 1, "{created:?}");
        assert!(created.stderr.contains("create hook"), "{created:?}");
        assert!(created.stderr.contains(&target), "{created:?}");
    }
    assert_eq!(elsewhere.requests(), vec![]);
    assert!(s.host.hooks().is_empty());
}

#[tokio::test]
async fn hosts_behind_a_private_ca_are_reached_with_ca_file() {
    let host = FakeHost::start_with(FakeConfig {
        tls: true,
        ..FakeConfig::new(HostKind::GitHub)
    })
    .await
    .unwrap();
    let dir = common::TempDir::new();
    let secret = dir.write("secret", SECRET);
    let ca = dir.write("ca.pem", FakeHost::ca_pem());
    let args = |extra: &[&str]| {
        let mut args = vec![
            "--repo".to_owned(),
            common::git_url(&host),
            "--webhook-url".to_owned(),
            WEBHOOK_URL.to_owned(),
            "--secret-file".to_owned(),
            secret.clone(),
            "--provider".to_owned(),
            "github".to_owned(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    };
    let env = [("GITHUB_TOKEN", host.token())];

    let untrusted = args(&[]);
    let untrusted: Vec<&str> = untrusted.iter().map(String::as_str).collect();
    let refused = run(&untrusted, &env).await;
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(
        refused.stderr.contains("could not reach the host"),
        "{refused:?}"
    );
    assert!(host.hooks().is_empty());

    let trusted = args(&["--ca-file", &ca]);
    let trusted: Vec<&str> = trusted.iter().map(String::as_str).collect();
    let created = run(&trusted, &env).await;
    assert_eq!(created.status, 0, "{created:?}");
    assert_eq!(host.hooks().len(), 1);

    let not_pem = dir.write("not.pem", "hello");
    let bad = args(&["--ca-file", &not_pem]);
    let bad: Vec<&str> = bad.iter().map(String::as_str).collect();
    let refused = run(&bad, &env).await;
    assert_eq!(refused.status, 1, "{refused:?}");
    assert!(refused.stderr.contains("--ca-file"), "{refused:?}");
    assert!(refused.stderr.contains("no PEM certificate"), "{refused:?}");
}

#[tokio::test]
async fn only_the_events_the_receiver_accepts_are_subscribed() {
    // GitLab sends tag pushes as `Tag Push Hook`: a `Push Hook` Receiver would refuse them,
    // and GitLab disables a hook that keeps getting 4xx answers.
    let gitlab = Hosted::start(HostKind::GitLab).await;
    let run = gitlab.run_with_secret(&["--events", "Push Hook"]).await;
    assert_eq!(run.status, 0, "{run:?}");
    assert_eq!(gitlab.host.hooks()[0].events, ["push_events"]);

    // Bitbucket Cloud's pull request events are two; only the one accepted is subscribed.
    let cloud = Hosted::start(HostKind::BitbucketCloud).await;
    let run = cloud
        .run_with_secret(&["--events", "repo:push,pullrequest:created"])
        .await;
    assert_eq!(run.status, 0, "{run:?}");
    let mut events = cloud.host.hooks()[0].events.clone();
    events.sort();
    assert_eq!(events, ["pullrequest:created", "repo:push"]);

    // Bitbucket Server names pushes `repo:refs_changed`: nothing to subscribe, nothing written.
    let server = Hosted::start(HostKind::BitbucketServer).await;
    let run = server.run_with_secret(&["--events", "repo:push"]).await;
    assert_eq!(run.status, 1, "{run:?}");
    for expected in [
        "repo:push",
        "Bitbucket Server",
        "repo:refs_changed",
        "X-Event-Key",
    ] {
        assert!(run.stderr.contains(expected), "{expected}: {run:?}");
    }
    assert_eq!(server.host.requests(), vec![]);
}

#[tokio::test]
async fn a_receiver_type_that_cannot_verify_the_host_gets_no_hook() {
    for (kind, receiver_type) in [
        (HostKind::GitLab, "github"),
        (HostKind::GitHub, "generic-hmac"),
        (HostKind::Gogs, "github"),
    ] {
        let s = Hosted::start(kind).await;
        let run = s
            .run_with_secret(&["--receiver-type", receiver_type, "--check"])
            .await;
        assert_eq!(run.status, 1, "{kind:?}: {run:?}");
        let host = common::provider(kind).to_string();
        assert!(
            run.stderr.contains(&format!(
                "a {receiver_type} Receiver cannot verify {host}'s"
            )),
            "{kind:?}: {run:?}"
        );
        assert_eq!(s.host.requests(), vec![], "{kind:?}");
    }
    // Gogs signs for no Flux type but generic, which verifies nothing.
    let gogs = Hosted::start(HostKind::Gogs).await;
    let run = gogs
        .run_with_secret(&["--receiver-type", "generic", "--events", "push"])
        .await;
    assert_eq!(run.status, 0, "{run:?}");
}

#[tokio::test]
async fn gitea_pull_request_hooks_are_in_sync_on_the_second_run() {
    // Gitea reads a hook's pull request events back expanded into their family.
    let s = Hosted::start(HostKind::Gitea).await;
    let first = s.run_with_secret(&["--events", "push,pull_request"]).await;
    assert_eq!(first.status, 0, "{first:?}");
    let events = s.host.hooks()[0].events.clone();
    assert_eq!(events, ["push", "pull_request", "pull_request_sync"]);

    s.host.clear_requests();
    let second = s.run_with_secret(&["--events", "push,pull_request"]).await;
    assert_eq!(second.status, 0, "{second:?}");
    assert!(second.stdout.contains("unchanged (hook "), "{second:?}");
    let check = s
        .run_with_secret(&["--events", "push,pull_request", "--check"])
        .await;
    assert_eq!(check.status, 0, "{check:?}");
    assert_eq!(s.host.writes(), vec![]);
}

#[tokio::test]
async fn gitlab_hooks_without_a_fingerprint_or_disabled_are_drift() {
    let s = Hosted::start(HostKind::GitLab).await;
    // Made by hand with the right token and events: its description is null.
    let mut by_hand = FakeHook::new(WEBHOOK_URL, &["push_events", "tag_push_events"]);
    by_hand.secret = Some(SECRET.into());
    let id = s.host.seed(by_hand);
    let check = s.run_with_secret(&["--check"]).await;
    assert_eq!(check.status, 2, "{check:?}");
    assert!(
        check.stdout.contains(&format!("would update hook {id}")),
        "{check:?}"
    );
    assert_eq!(s.run_with_secret(&[]).await.status, 0);
    assert!(s.host.hooks()[0].description.is_some());
    assert_eq!(s.run_with_secret(&["--check"]).await.status, 0);

    // GitLab disables a hook after 4xx answers; an edit would not enable it again.
    assert!(s.host.edit_hook(id, |hook| hook.active = false));
    let check = s.run_with_secret(&["--check"]).await;
    assert_eq!(check.status, 2, "{check:?}");
    assert!(
        check.stdout.contains(&format!("would replace hook {id}")),
        "{check:?}"
    );
    let applied = s.run_with_secret(&[]).await;
    assert_eq!(applied.status, 0, "{applied:?}");
    let hooks = s.host.hooks();
    assert_eq!(hooks.len(), 1);
    assert!(hooks[0].active && hooks[0].id != id, "{hooks:?}");
    assert_eq!(s.run_with_secret(&["--check"]).await.status, 0);
}

#[tokio::test]
async fn insecure_skip_tls_verify_is_kept_by_later_runs() {
    // The hosts with a per-hook switch (the fakes show it as `tls_verification`).
    for kind in [
        HostKind::GitHub,
        HostKind::GitLab,
        HostKind::BitbucketCloud,
        HostKind::BitbucketServer,
    ] {
        let s = Hosted::start(kind).await;
        let flag = "--insecure-skip-tls-verify";
        let created = s.run_with_secret(&[flag]).await;
        assert_eq!(created.status, 0, "{kind:?}: {created:?}");
        let hooks = s.host.hooks();
        assert_eq!(hooks.len(), 1, "{kind:?}");
        assert!(!hooks[0].tls_verification, "{kind:?}: {hooks:?}");

        // Kept: a second run writes nothing, and --check says in sync.
        s.host.clear_requests();
        let second = s.run_with_secret(&[flag]).await;
        assert_eq!(second.status, 0, "{kind:?}: {second:?}");
        assert!(
            second.stdout.contains("unchanged (hook "),
            "{kind:?}: {second:?}"
        );
        let check = s.run_with_secret(&[flag, "--check"]).await;
        assert_eq!(check.status, 0, "{kind:?}: {check:?}");
        assert_eq!(s.host.writes(), vec![], "{kind:?}");

        // Without the flag the hook is drift, and a run turns verification back on.
        let drift = s.run_with_secret(&["--check"]).await;
        assert_eq!(drift.status, 2, "{kind:?}: {drift:?}");
        assert_eq!(s.run_with_secret(&[]).await.status, 0, "{kind:?}");
        assert!(s.host.hooks()[0].tls_verification, "{kind:?}");
    }

    // Gitea, Forgejo and Gogs verify per instance: an error naming it, before any request.
    for kind in [HostKind::Gitea, HostKind::Gogs] {
        let s = Hosted::start(kind).await;
        let refused = s.run_with_secret(&["--insecure-skip-tls-verify"]).await;
        assert_eq!(refused.status, 1, "{kind:?}: {refused:?}");
        assert!(
            refused.stderr.contains("SKIP_TLS_VERIFY"),
            "{kind:?}: {refused:?}"
        );
        assert_eq!(s.host.requests(), vec![], "{kind:?}");
    }
}

#[tokio::test]
async fn github_secondary_rate_limits_are_waited_out_as_github_asks() {
    // GitHub's secondary limit is a 403 whose message says so, with or without Retry-After
    // ("Exceeding the secondary rate limit", docs.github.com, rate limits for the REST API).
    // The fake marks a request that comes back before the wait it asked for as `early`.
    for retry_after in [RetryAfterHeader::Seconds(1), RetryAfterHeader::DateIn(2)] {
        let s = Hosted::start(HostKind::GitHub).await;
        s.host.inject(
            Fault::SecondaryRateLimit {
                retry_after: Some(retry_after),
            },
            1,
        );
        // A bound below GitHub's minute: the wait must come from the Retry-After.
        let created = s.run_with_secret(&["--max-wait", "10"]).await;
        assert_eq!(created.status, 0, "{retry_after:?}: {created:?}");
        assert!(created.stdout.contains("created hook"), "{created:?}");
        assert_eq!(s.host.hooks().len(), 1, "{retry_after:?}");
        let requests = s.host.requests();
        let statuses: Vec<u16> = requests.iter().map(|r| r.status).collect();
        assert_eq!(statuses, [403, 200, 201], "{retry_after:?}");
        let early: Vec<_> = requests.iter().filter(|r| r.early).collect();
        assert!(
            early.is_empty(),
            "{retry_after:?}: came back before the wait GitHub asked for: {early:?}"
        );
    }

    // Without Retry-After GitHub asks for at least a minute, longer than --max-wait allows:
    // the run fails at once, saying how long the host asked for, and writes nothing.
    let s = Hosted::start(HostKind::GitHub).await;
    s.host
        .inject(Fault::SecondaryRateLimit { retry_after: None }, 1);
    let refused = s.run_with_secret(&["--max-wait", "5"]).await;
    assert_eq!(refused.status, 1, "{refused:?}");
    for expected in [
        "octocat/hello-world",
        "rate limited (HTTP 403)",
        "asks to wait 60s",
        "at most 5s per wait",
    ] {
        assert!(refused.stderr.contains(expected), "{expected}: {refused:?}");
    }
    assert_eq!(s.host.requests().len(), 1);
    assert_eq!(s.host.writes(), vec![]);
}

#[tokio::test]
async fn a_hook_deleted_meanwhile_counts_as_deleted() {
    // Someone deletes a hook between the run's list and its delete: the host answers the
    // delete as for a hook that is not there (404; Gogs 204), and the run carries on.
    for kind in HostKind::ALL {
        let s = Hosted::start(kind).await;
        s.host.seed(FakeHook::new(WEBHOOK_URL, &[]));
        s.host.seed(FakeHook::new(WEBHOOK_URL, &[]));
        s.host.inject(Fault::HookDeletedFirst, 1);
        let deleted = s.run(&["--delete"]).await;
        assert_eq!(deleted.status, 0, "{kind:?}: {deleted:?}");
        assert!(
            deleted.stdout.contains("deleted hooks "),
            "{kind:?}: {deleted:?}"
        );
        assert!(s.host.hooks().is_empty(), "{kind:?}");
        let statuses: Vec<u16> = s.host.writes().iter().map(|w| w.status).collect();
        let gone = match kind {
            HostKind::Gogs => 204,
            _ => 404,
        };
        assert_eq!(statuses.first(), Some(&gone), "{kind:?}: {statuses:?}");
        assert_eq!(statuses.len(), 2, "{kind:?}: {statuses:?}");
    }
}
