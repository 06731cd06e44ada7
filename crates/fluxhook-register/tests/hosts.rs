//! Each host's client against its fake: operations, ensure, pagination, retries, errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use common::{
    RECEIVER_URL, RecordingClock, client_for, desired, provider, pull_request_events, push_events,
    start, start_with,
};
use fluxhook_register::HostBackoff;
use fluxhook_register::{
    Change, DesiredHook, ErrorKind, HookClient, HostedRepository, Operation, PayloadFormat,
    ReceiverEvents, Secret, Token,
};
use fluxhook_test_githost::{FakeConfig, FakeHook, Fault, HostKind, RetryAfterHeader};

fn sorted(events: &[String]) -> Vec<String> {
    let set: BTreeSet<&String> = events.iter().collect();
    set.into_iter().cloned().collect()
}

/// A hook to `url` as the host would hold one that fluxhook did not write.
fn foreign_hook(kind: HostKind, url: &str) -> FakeHook {
    let events: &[&str] = match kind {
        HostKind::GitHub | HostKind::Gitea | HostKind::Gogs => &["push", "issues"],
        HostKind::GitLab => &["push_events", "note_events"],
        HostKind::BitbucketCloud => &["repo:push", "issue:created"],
        HostKind::BitbucketServer => &["repo:refs_changed", "pr:merged"],
    };
    let mut hook = FakeHook::new(url, events);
    hook.secret = Some("old-secret".into());
    hook.name = Some("CI".into());
    hook.description = Some("CI".into());
    hook
}

#[tokio::test]
async fn create_list_update_delete_in_each_hosts_shapes() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let hook = desired("receiver-token");

        let created = s.client.create(&hook).await.unwrap();
        let stored = s.host.hooks();
        assert_eq!(stored.len(), 1, "{kind:?}");
        let fake = &stored[0];
        assert_eq!(fake.url, RECEIVER_URL, "{kind:?}");
        assert_eq!(sorted(&fake.events), push_events(kind), "{kind:?}");
        assert_eq!(fake.secret.as_deref(), Some("receiver-token"), "{kind:?}");
        assert!(fake.active && fake.tls_verification, "{kind:?}");
        assert_eq!(fake.content_type, "json", "{kind:?}");
        assert!(
            created.matches(&hook, provider(kind)),
            "{kind:?}: {created:?}"
        );

        let listed = s.client.list().await.unwrap();
        assert_eq!(listed, std::slice::from_ref(&created), "{kind:?}");

        let (receiver_events, hook_events) = pull_request_events(kind);
        let pull_requests = DesiredHook::new(
            RECEIVER_URL.parse().unwrap(),
            Secret::new("receiver-token"),
            receiver_events,
        );
        let updated = s.client.update(&created.id, &pull_requests).await.unwrap();
        assert_eq!(updated.id, created.id, "{kind:?}");
        assert_eq!(sorted(&s.host.hooks()[0].events), hook_events, "{kind:?}");
        assert!(
            updated.matches(&pull_requests, provider(kind)),
            "{kind:?}: {updated:?}"
        );

        s.client.delete(&created.id).await.unwrap();
        assert!(s.host.hooks().is_empty(), "{kind:?}");
        assert!(s.client.list().await.unwrap().is_empty(), "{kind:?}");
    }
}

#[tokio::test]
async fn ensure_creates_once_then_writes_nothing() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let hook = desired("receiver-token");
        let first = s.client.ensure(&hook).await.unwrap();
        assert_eq!(first.change, Change::Created, "{kind:?}");
        assert!(first.removed_duplicates.is_empty());

        s.host.clear_requests();
        let second = s.client.ensure(&hook).await.unwrap();
        assert_eq!(second.change, Change::Unchanged, "{kind:?}");
        assert_eq!(second.hook_id, first.hook_id, "{kind:?}");
        assert_eq!(s.host.writes(), [], "{kind:?}");
        assert_eq!(s.host.hooks().len(), 1, "{kind:?}");
    }
}

#[tokio::test]
async fn ensure_updates_a_drifted_hook_and_removes_duplicates() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let mut drifted = foreign_hook(kind, RECEIVER_URL);
        // Gitea and Gogs have no per-hook TLS setting to drift.
        drifted.tls_verification = matches!(kind, HostKind::Gitea | HostKind::Gogs);
        let kept = s.host.seed(drifted.clone());
        let duplicate_a = s.host.seed(foreign_hook(kind, RECEIVER_URL));
        let other = s
            .host
            .seed(foreign_hook(kind, "https://ci.example.com/hook"));
        let duplicate_b = s.host.seed(drifted);

        let hook = desired("receiver-token");
        let ensured = s.client.ensure(&hook).await.unwrap();
        assert_eq!(ensured.removed_duplicates.len(), 2, "{kind:?}");

        let hooks = s.host.hooks();
        let ids: Vec<u64> = hooks.iter().map(|h| h.id).collect();
        let kept_hook = match kind {
            // Their edits would keep the old secret: the hook is replaced.
            HostKind::Gitea | HostKind::Gogs => {
                assert_eq!(ensured.change, Change::Replaced, "{kind:?}");
                assert_eq!(
                    ensured.replaced.as_ref().map(|id| id.as_str()),
                    Some(kept.to_string().as_str())
                );
                assert_eq!(
                    ids,
                    [other, duplicate_b + 1],
                    "{kind:?}: {duplicate_a} removed"
                );
                &hooks[1]
            }
            _ => {
                assert_eq!(ensured.change, Change::Updated, "{kind:?}");
                assert_eq!(
                    ids,
                    [kept, other],
                    "{kind:?}: {duplicate_a} {duplicate_b} removed"
                );
                &hooks[0]
            }
        };
        assert_eq!(sorted(&kept_hook.events), push_events(kind), "{kind:?}");
        assert_eq!(
            kept_hook.secret.as_deref(),
            Some("receiver-token"),
            "{kind:?}"
        );
        assert!(kept_hook.tls_verification, "{kind:?}");
        let untouched = foreign_hook(kind, "https://ci.example.com/hook");
        let other_hook = hooks.iter().find(|h| h.id == other).unwrap();
        assert_eq!(other_hook.events, untouched.events, "{kind:?}");
        assert_eq!(other_hook.secret, untouched.secret, "{kind:?}");

        s.host.clear_requests();
        assert_eq!(
            s.client.ensure(&hook).await.unwrap().change,
            Change::Unchanged,
            "{kind:?}"
        );
        assert_eq!(s.host.writes(), [], "{kind:?}");
    }
}

#[tokio::test]
async fn gitea_hooks_of_another_type_are_replaced_not_edited() {
    let s = start(HostKind::Gitea).await;
    let mut slack = FakeHook::new(RECEIVER_URL, &["push"]);
    slack.hook_type = "slack".into();
    s.host.seed(slack);
    let listed = s.client.list().await.unwrap();
    assert_eq!(listed[0].payload, PayloadFormat::Other("slack".into()));

    let ensured = s.client.ensure(&desired("receiver-token")).await.unwrap();
    assert_eq!(ensured.change, Change::Replaced);
    assert_eq!(ensured.replaced, Some(listed[0].id.clone()));
    assert!(ensured.removed_duplicates.is_empty());
    let hooks = s.host.hooks();
    assert_eq!(hooks.len(), 1);
    assert_eq!(hooks[0].hook_type, "gitea");
}

#[tokio::test]
async fn a_changed_secret_is_seen_where_the_host_keeps_a_label() {
    for kind in [
        HostKind::GitLab,
        HostKind::BitbucketCloud,
        HostKind::BitbucketServer,
    ] {
        let s = start(kind).await;
        s.client.ensure(&desired("first")).await.unwrap();
        let rotated = s.client.ensure(&desired("second")).await.unwrap();
        assert_eq!(rotated.change, Change::Updated, "{kind:?}");
        assert_eq!(
            s.host.hooks()[0].secret.as_deref(),
            Some("second"),
            "{kind:?}"
        );
        s.host.clear_requests();
        assert_eq!(
            s.client.ensure(&desired("second")).await.unwrap().change,
            Change::Unchanged
        );
        assert_eq!(s.host.writes(), [], "{kind:?}");
    }
}

#[tokio::test]
async fn rotate_secret_writes_where_the_host_hides_it() {
    for kind in [HostKind::GitHub, HostKind::Gitea, HostKind::Gogs] {
        let s = start(kind).await;
        s.client.ensure(&desired("first")).await.unwrap();
        // The host cannot tell the secrets apart...
        assert_eq!(
            s.client.ensure(&desired("second")).await.unwrap().change,
            Change::Unchanged
        );
        // ...so a rotation is asked for explicitly; where an edit keeps the old secret, the
        // hook is replaced.
        let rotated = s.client.rotate_secret(&desired("second")).await.unwrap();
        let expected = match kind {
            HostKind::GitHub => Change::Updated,
            _ => Change::Replaced,
        };
        assert_eq!(rotated.change, expected, "{kind:?}");
        assert_eq!(
            s.host.hooks()[0].secret.as_deref(),
            Some("second"),
            "{kind:?}"
        );
    }
}

#[tokio::test]
async fn github_hooks_without_a_secret_get_one() {
    let s = start(HostKind::GitHub).await;
    s.host.seed(FakeHook::new(RECEIVER_URL, &["push"]));
    assert_eq!(
        s.client
            .ensure(&desired("receiver-token"))
            .await
            .unwrap()
            .change,
        Change::Updated
    );
    assert_eq!(s.host.hooks()[0].secret.as_deref(), Some("receiver-token"));
}

#[tokio::test]
async fn lists_follow_each_hosts_pagination() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        for n in 0..7 {
            s.host.seed(foreign_hook(
                kind,
                &format!("https://ci.example.com/hook/{n}"),
            ));
        }
        let hooks = s.client.list().await.unwrap();
        let urls: Vec<String> = hooks.iter().map(|h| h.url.clone()).collect();
        let expected: Vec<String> = (0..7)
            .map(|n| format!("https://ci.example.com/hook/{n}"))
            .collect();
        assert_eq!(urls, expected, "{kind:?}");
        // Pages of two: four requests; Gogs lists all at once.
        let pages = match kind {
            HostKind::Gogs => 1,
            _ => 4,
        };
        assert_eq!(s.host.requests().len(), pages, "{kind:?}");
    }
}

#[tokio::test]
async fn pagination_with_a_page_size_of_one_still_ensures_one_hook() {
    for kind in HostKind::ALL {
        let mut config = FakeConfig::new(kind);
        config.page_size = 1;
        let s = start_with(config).await;
        for _ in 0..3 {
            s.host.seed(foreign_hook(kind, RECEIVER_URL));
        }
        s.client.ensure(&desired("receiver-token")).await.unwrap();
        assert_eq!(s.host.hooks().len(), 1, "{kind:?}");
    }
}

#[tokio::test]
async fn rate_limits_are_waited_out_as_the_host_asks() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        s.host.inject(
            Fault::TooManyRequests {
                retry_after_secs: 2,
            },
            2,
        );
        s.client.list().await.unwrap();
        assert_eq!(s.clock.sleeps(), [Duration::from_secs(2); 2], "{kind:?}");
        assert_eq!(s.host.requests().len(), 3, "{kind:?}");
    }
}

#[tokio::test]
async fn spent_rate_limits_wait_until_the_reset_time() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        s.host.inject(
            Fault::RateLimitExhausted {
                reset_after_secs: 5,
            },
            1,
        );
        s.client.list().await.unwrap();
        let sleeps = s.clock.sleeps();
        assert_eq!(sleeps.len(), 1, "{kind:?}");
        // The reset time is whole seconds from the fake's clock: 5 s, give or take a tick.
        assert!(
            (Duration::from_secs(4)..=Duration::from_secs(7)).contains(&sleeps[0]),
            "{kind:?}: {sleeps:?}"
        );
    }
}

#[tokio::test]
async fn github_secondary_rate_limits_are_retried() {
    let s = start(HostKind::GitHub).await;
    s.host.inject(
        Fault::SecondaryRateLimit {
            retry_after: Some(RetryAfterHeader::Seconds(3)),
        },
        1,
    );
    let ensured = s.client.ensure(&desired("receiver-token")).await.unwrap();
    assert_eq!(ensured.change, Change::Created);
    assert_eq!(s.clock.sleeps(), [Duration::from_secs(3)]);
}

/// A GitHub client whose retry policy allows the minute GitHub's secondary limit asks for.
fn patient_github(s: &common::Setup) -> HookClient {
    HookClient::builder(common::repository(&s.host), Token::new(s.host.token()))
        .backoff(HostBackoff {
            max_retries: 3,
            max_wait: Duration::from_secs(120),
            initial_backoff: Duration::from_millis(1),
        })
        .clock(Arc::clone(&s.clock) as Arc<dyn fluxhook_register::Clock>)
        .build()
        .unwrap()
}

#[tokio::test]
async fn github_secondary_rate_limits_without_a_wait_wait_a_minute() {
    let s = start(HostKind::GitHub).await;
    let client = patient_github(&s);
    s.host
        .inject(Fault::SecondaryRateLimit { retry_after: None }, 1);
    let ensured = client.ensure(&desired("receiver-token")).await.unwrap();
    assert_eq!(ensured.change, Change::Created);
    assert_eq!(s.clock.sleeps(), [Duration::from_secs(60)]);

    // Under a bound shorter than a minute, it fails at once rather than come back early.
    s.host
        .inject(Fault::SecondaryRateLimit { retry_after: None }, 1);
    let error = s.client.list().await.unwrap_err();
    assert!(
        matches!(error.kind(), ErrorKind::RateLimited { status: 403, wait, .. } if *wait == Duration::from_secs(60)),
        "{error}"
    );
    assert_eq!(s.clock.sleeps().len(), 1);
}

#[tokio::test]
async fn retry_after_as_an_http_date_is_waited_out() {
    let s = start(HostKind::GitHub).await;
    let client = patient_github(&s);
    s.host.inject(
        Fault::SecondaryRateLimit {
            retry_after: Some(RetryAfterHeader::DateIn(90)),
        },
        1,
    );
    client.list().await.unwrap();
    let sleeps = s.clock.sleeps();
    // The date is whole seconds from the fake's clock: 90 s, give or take a tick.
    assert_eq!(sleeps.len(), 1, "{sleeps:?}");
    assert!(
        (Duration::from_secs(88)..=Duration::from_secs(92)).contains(&sleeps[0]),
        "{sleeps:?}"
    );
}

#[tokio::test]
async fn deleting_a_hook_already_gone_succeeds() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let kept = s.host.seed(FakeHook::new(RECEIVER_URL, &[]));
        let ids = s
            .client
            .hooks_to(&RECEIVER_URL.parse().unwrap())
            .await
            .unwrap();
        assert_eq!(ids.len(), 1, "{kind:?}");
        // Someone deletes it between the list and the delete.
        assert!(s.host.remove_hook(kept));
        s.client.delete(&ids[0]).await.unwrap();
        let statuses: Vec<u16> = s.host.writes().iter().map(|w| w.status).collect();
        let expected = match kind {
            // Gogs answers 204 whether or not the hook exists.
            HostKind::Gogs => 204,
            _ => 404,
        };
        assert_eq!(statuses, [expected], "{kind:?}");
    }
}

#[tokio::test]
async fn a_creation_refused_by_a_rate_limit_is_retried() {
    let s = start(HostKind::GitLab).await;
    s.host.inject(
        Fault::TooManyRequests {
            retry_after_secs: 1,
        },
        1,
    );
    s.client.create(&desired("receiver-token")).await.unwrap();
    assert_eq!(s.host.hooks().len(), 1);
}

#[tokio::test]
async fn waits_longer_than_allowed_fail_at_once() {
    let s = start(HostKind::GitHub).await;
    s.host.inject(
        Fault::SecondaryRateLimit {
            retry_after: Some(RetryAfterHeader::Seconds(3600)),
        },
        1,
    );
    let error = s.client.list().await.unwrap_err();
    assert!(
        matches!(
            error.kind(),
            ErrorKind::RateLimited {
                status: 403,
                retries: 0,
                ..
            }
        ),
        "{error}"
    );
    assert!(s.clock.sleeps().is_empty());
    assert_eq!(s.host.requests().len(), 1);
    let message = error.to_string();
    assert!(message.contains("3600s"), "{message}");
}

#[tokio::test]
async fn retries_are_bounded() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        s.host.inject(
            Fault::TooManyRequests {
                retry_after_secs: 1,
            },
            10,
        );
        let error = s.client.list().await.unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::RateLimited { retries: 3, .. }),
            "{error}"
        );
        assert_eq!(s.host.requests().len(), 4, "{kind:?}");
    }
}

#[tokio::test]
async fn server_errors_are_retried_except_for_creation() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        s.host.inject(Fault::ServerError { status: 503 }, 2);
        s.client.list().await.unwrap();
        assert_eq!(s.clock.sleeps().len(), 2, "{kind:?}");

        s.host.clear_requests();
        s.host.inject(Fault::ServerError { status: 502 }, 1);
        let error = s
            .client
            .create(&desired("receiver-token"))
            .await
            .unwrap_err();
        assert_eq!(error.status(), Some(502), "{kind:?}");
        assert_eq!(error.operation(), &Operation::CreateHook);
        assert_eq!(
            s.host.requests().len(),
            1,
            "{kind:?}: a creation is not repeated"
        );
    }
}

#[tokio::test]
async fn errors_name_host_repository_and_status_but_no_credentials() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let clock = Arc::new(RecordingClock::default());
        let wrong = client_for(&s.host, "wrong-token-value", clock);
        let error = wrong.list().await.unwrap_err();
        let message = error.to_string();
        // Gogs' admin check answers a caller it could not sign in with 403.
        let status = match kind {
            HostKind::Gogs => 403,
            _ => 401,
        };
        assert_eq!(error.status(), Some(status), "{kind:?}: {message}");
        assert_eq!(error.forge(), provider(kind));
        assert!(message.contains(&s.host.addr().to_string()), "{message}");
        assert!(message.contains(s.host.repo()), "{message}");
        assert!(message.contains(&format!("HTTP {status}")), "{message}");
        assert!(!message.contains("wrong-token-value"), "{message}");
        assert!(!format!("{error:?}").contains("wrong-token-value"));
        assert!(!format!("{wrong:?}").contains("wrong-token-value"));
    }
}

#[tokio::test]
async fn host_messages_are_carried_without_the_secret() {
    let expected = [
        (
            HostKind::GitHub,
            422,
            "Validation Failed (Config must contain URL for webhooks)",
        ),
        (
            HostKind::GitLab,
            422,
            "is blocked: Only allowed schemes are http, https",
        ),
        (
            HostKind::BitbucketCloud,
            400,
            "Bad request (url: Enter a valid URL.)",
        ),
        (
            HostKind::BitbucketServer,
            400,
            "url: The URL must be a valid http or https URL.",
        ),
        (HostKind::Gitea, 422, "Invalid url"),
    ];
    for (kind, status, host_message) in expected {
        let s = start(kind).await;
        let not_http = DesiredHook::new(
            "ftp://flux.example.com/hook".parse().unwrap(),
            Secret::new("very-secret-value"),
            ReceiverEvents::all(),
        );
        let error = s.client.create(&not_http).await.unwrap_err();
        let message = error.to_string();
        assert_eq!(error.status(), Some(status), "{kind:?}: {message}");
        assert!(message.contains(host_message), "{kind:?}: {message}");
        assert!(message.contains("create hook"), "{message}");
        assert!(!message.contains("very-secret-value"), "{message}");
        assert!(!message.contains(s.host.token()), "{message}");
    }
}

#[tokio::test]
async fn github_refuses_a_second_hook_to_one_url() {
    let s = start(HostKind::GitHub).await;
    s.host.seed(FakeHook::new(RECEIVER_URL, &["push"]));
    let error = s
        .client
        .create(&desired("receiver-token"))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("Hook already exists on this repository"),
        "{error}"
    );
}

#[tokio::test]
async fn unknown_repositories_are_404s() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let repository = HostedRepository::new(
            provider(kind),
            s.host.api_base().parse().unwrap(),
            s.host.owner(),
            "no-such-repo",
        );
        let client = HookClient::new(repository, Token::new(s.host.token())).unwrap();
        let error = client.ensure(&desired("receiver-token")).await.unwrap_err();
        assert_eq!(error.status(), Some(404), "{kind:?}: {error}");
        assert!(error.to_string().contains("no-such-repo"), "{error}");
        assert_eq!(
            error.repository(),
            format!("{}/no-such-repo", s.host.owner())
        );
    }
}

#[tokio::test]
async fn unreachable_hosts_are_transport_errors() {
    let s = start(HostKind::Gitea).await;
    let repository = common::repository(&s.host);
    drop(s);
    let client = HookClient::builder(repository, Token::new("t"))
        .backoff(common::fast_retries())
        .clock(Arc::new(RecordingClock::default()))
        .build()
        .unwrap();
    let error = client.list().await.unwrap_err();
    assert!(matches!(error.kind(), ErrorKind::Transport(_)), "{error}");
}

#[test]
fn tokens_that_cannot_be_headers_are_refused() {
    let repository = HostedRepository::new(
        fluxhook_register::Forge::GITHUB,
        "https://api.github.com".parse().unwrap(),
        "o",
        "r",
    );
    let error = HookClient::new(repository, Token::new("line\nbreak")).unwrap_err();
    assert_eq!(error.kind(), &ErrorKind::InvalidToken);
    assert!(!error.to_string().contains("line"));
}

#[tokio::test]
async fn hooks_may_skip_certificate_verification_where_the_host_has_the_switch() {
    for kind in HostKind::ALL {
        let s = start(kind).await;
        let hook = desired("receiver-token").skip_tls_verification();
        match kind {
            HostKind::Gitea | HostKind::Gogs => {
                let error = s.client.ensure(&hook).await.unwrap_err();
                assert!(
                    matches!(error.kind(), ErrorKind::TlsVerificationPerInstance { .. }),
                    "{kind:?}: {error}"
                );
                assert!(s.host.requests().is_empty(), "{kind:?}");
            }
            _ => {
                assert_eq!(
                    s.client.ensure(&hook).await.unwrap().change,
                    Change::Created
                );
                assert!(!s.host.hooks()[0].tls_verification, "{kind:?}");
                s.host.clear_requests();
                let again = s.client.ensure(&hook).await.unwrap();
                assert_eq!(again.change, Change::Unchanged, "{kind:?}");
                assert!(s.host.writes().is_empty(), "{kind:?}");
                // Verification asked for again: the hook is updated back.
                let verified = s.client.ensure(&desired("receiver-token")).await.unwrap();
                assert_eq!(verified.change, Change::Updated, "{kind:?}");
                assert!(s.host.hooks()[0].tls_verification, "{kind:?}");
            }
        }
    }
}
