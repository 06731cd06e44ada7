//! For any hooks a repository starts with, `ensure` twice leaves exactly one matching hook
//! to the Receiver's URL, leaves other URLs alone, and writes nothing the second time; and
//! `plan_ensure` predicts what `ensure` does without writing.

#![allow(clippy::unwrap_used)]

mod common;

use common::{RECEIVER_URL, desired, push_events, start};
use fluxhook_register::Change;
use fluxhook_test_githost::{FakeHook, HostKind};
use proptest::prelude::*;

const OTHER_URLS: [&str; 2] = [
    "https://ci.example.com/hook",
    "https://flux.example.com/hook/other",
];

/// Events a hook may hold on each host, a mix of what fluxhook writes and what it does not.
fn host_events(kind: HostKind) -> &'static [&'static str] {
    match kind {
        HostKind::GitHub | HostKind::Gitea | HostKind::Gogs => {
            &["push", "pull_request", "issues", "create"]
        }
        HostKind::GitLab => &[
            "push_events",
            "tag_push_events",
            "merge_requests_events",
            "note_events",
        ],
        HostKind::BitbucketCloud => &["repo:push", "pullrequest:created", "issue:created"],
        HostKind::BitbucketServer => &["repo:refs_changed", "pr:opened", "pr:merged"],
    }
}

#[derive(Debug, Clone)]
struct Seed {
    target: bool,
    other_url: usize,
    events: Vec<bool>,
    secret: Option<&'static str>,
    active: bool,
    json: bool,
    tls: bool,
    label: Option<&'static str>,
    gitea_type: &'static str,
}

fn seed_strategy() -> impl Strategy<Value = Seed> {
    (
        any::<bool>(),
        0..OTHER_URLS.len(),
        prop::collection::vec(any::<bool>(), 4),
        prop::option::of(prop::sample::select(vec!["receiver-token", "old-token"])),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        prop::option::of(prop::sample::select(vec![
            "CI",
            "fluxhook (secret-hmac=0123456789abcdef)",
        ])),
        prop::sample::select(vec!["gitea", "gitea", "forgejo", "gogs", "slack"]),
    )
        .prop_map(
            |(target, other_url, events, secret, active, json, tls, label, gitea_type)| Seed {
                target,
                other_url,
                events,
                secret,
                active,
                json,
                tls,
                label,
                gitea_type,
            },
        )
}

fn fake_hook(kind: HostKind, seed: &Seed) -> FakeHook {
    let url = match seed.target {
        true => RECEIVER_URL,
        false => OTHER_URLS[seed.other_url],
    };
    let events: Vec<&str> = host_events(kind)
        .iter()
        .zip(&seed.events)
        .filter(|(_, on)| **on)
        .map(|(e, _)| *e)
        .collect();
    let mut hook = FakeHook::new(url, &events);
    hook.secret = seed.secret.map(str::to_owned);
    // On GitLab an inactive hook is one GitLab disabled: it is replaced, not edited.
    hook.active = seed.active;
    // Only GitHub, Gitea and Gogs hooks have a content type to get wrong.
    hook.content_type = match seed.json
        || matches!(
            kind,
            HostKind::GitLab | HostKind::BitbucketCloud | HostKind::BitbucketServer
        ) {
        true => "json".into(),
        false => "form".into(),
    };
    // Gitea and Gogs have no per-hook TLS setting.
    hook.tls_verification = seed.tls || matches!(kind, HostKind::Gitea | HostKind::Gogs);
    hook.name = seed.label.map(str::to_owned);
    hook.description = seed.label.map(str::to_owned);
    match kind {
        HostKind::Gitea => hook.hook_type = seed.gitea_type.into(),
        // Gogs knows no `gitea` or `forgejo` type.
        HostKind::Gogs if seed.gitea_type == "slack" => hook.hook_type = "slack".into(),
        _ => {}
    }
    hook
}

fn run_case(kind: HostKind, seeds: &[Seed], secret: &str) -> Result<(), TestCaseError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let s = start(kind).await;
        for seed in seeds {
            s.host.seed(fake_hook(kind, seed));
        }
        let others_before: Vec<FakeHook> = s
            .host
            .hooks()
            .into_iter()
            .filter(|h| h.url != RECEIVER_URL)
            .collect();
        let hook = desired(secret);

        let plan = s.client.plan_ensure(&hook).await.unwrap();
        prop_assert_eq!(s.host.writes(), vec![]);
        let first = s.client.ensure(&hook).await.unwrap();
        prop_assert_eq!(first.change, plan.change);
        prop_assert_eq!(&first.removed_duplicates, &plan.duplicates);
        match plan.change {
            Change::Created => prop_assert_eq!(&plan.hook_id, &None),
            Change::Replaced => prop_assert_eq!(&first.replaced, &plan.hook_id),
            _ => prop_assert_eq!(Some(&first.hook_id), plan.hook_id.as_ref()),
        }
        prop_assert!(s.client.plan_ensure(&hook).await.unwrap().is_unchanged());
        s.host.clear_requests();
        let second = s.client.ensure(&hook).await.unwrap();

        prop_assert_eq!(second.change, Change::Unchanged);
        prop_assert_eq!(&second.hook_id, &first.hook_id);
        prop_assert!(second.removed_duplicates.is_empty());
        prop_assert_eq!(s.host.writes(), vec![]);

        let hooks = s.host.hooks();
        let targets: Vec<&FakeHook> = hooks.iter().filter(|h| h.url == RECEIVER_URL).collect();
        prop_assert_eq!(targets.len(), 1);
        let kept = targets[0];
        let mut events = kept.events.clone();
        events.sort();
        prop_assert_eq!(events, push_events(kind));
        prop_assert!(kept.active && kept.tls_verification);
        prop_assert_eq!(&kept.content_type, "json");
        match kind {
            // The hook's label records the secret: the host holds the desired one.
            HostKind::GitLab | HostKind::BitbucketCloud | HostKind::BitbucketServer => {
                prop_assert_eq!(kept.secret.as_deref(), Some(secret));
            }
            // GitHub tells whether a secret is set, not which (see `rotate_secret`).
            HostKind::GitHub => prop_assert!(kept.secret.is_some()),
            HostKind::Gitea => prop_assert!(matches!(kept.hook_type.as_str(), "gitea" | "forgejo")),
            HostKind::Gogs => prop_assert_eq!(kept.hook_type.as_str(), "gogs"),
        }
        // Gitea and Gogs show no secret, and their edits keep the old one: a hook written by
        // this run was created with the desired secret.
        if matches!(kind, HostKind::Gitea | HostKind::Gogs) && first.change != Change::Unchanged {
            prop_assert_eq!(kept.secret.as_deref(), Some(secret));
        }

        let others_after: Vec<FakeHook> = hooks
            .into_iter()
            .filter(|h| h.url != RECEIVER_URL)
            .collect();
        prop_assert_eq!(others_after, others_before);
        Ok(())
    })
}

proptest! {
    // Each case runs a fake host and a dozen HTTP requests on loopback.
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn ensure_twice_leaves_one_matching_hook_and_writes_nothing_the_second_time(
        kind in prop::sample::select(HostKind::ALL.to_vec()),
        seeds in prop::collection::vec(seed_strategy(), 0..6),
        secret in prop::sample::select(vec!["receiver-token", "new-token"]),
    ) {
        run_case(kind, &seeds, secret)?;
    }
}
