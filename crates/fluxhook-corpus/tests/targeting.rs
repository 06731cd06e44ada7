//! Payload-aware targeting over the real deliveries of `../shared/corpus`,
//! for every Git host: each push reconciles a GitRepository on any URL the
//! payload gives for its repository (and their scp-like, `.git`-less and
//! recased spellings) following the pushed branch or tag, and skips one on
//! another repository, another ref, or a pinned commit; the default branch
//! counts where the payload names it; pings and events without a repository
//! reconcile whatever the URL.

#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;
use fluxhook_corpus::{Corpus, Entry};
use fluxhook_payload::targeting::{Decision, GitSource, Skip, SourceRef, decide};
use fluxhook_payload::{Event, Push, RefKind, Sender, Webhook, parse};

/// The hosts of the Receiver types the annotation applies to (`github`
/// takes Gitea's and Gogs' deliveries).
const GIT_HOSTS: [&str; 6] = [
    "github",
    "gitea",
    "gogs",
    "gitlab",
    "bitbucket-cloud",
    "bitbucket-server",
];

fn corpus() -> Corpus {
    Corpus::locate().unwrap_or_else(|e| panic!("{e}"))
}

fn webhook(corpus: &Corpus, entry: &Entry) -> Webhook {
    let sender: Sender = entry.provider.parse().unwrap();
    let body = Bytes::from(corpus.read_body(entry).unwrap());
    parse(sender, &entry.headers, body).unwrap_or_else(|e| panic!("{}: {e}", entry.file))
}

/// The deliveries of the Git hosts in the corpus, parsed.
fn git_webhooks(corpus: &Corpus) -> Vec<(&Entry, Webhook)> {
    corpus
        .entries()
        .iter()
        .filter(|entry| GIT_HOSTS.contains(&entry.provider.as_str()))
        .map(|entry| (entry, webhook(corpus, entry)))
        .collect()
}

/// The pushes among [`git_webhooks`], with their webhook.
fn git_pushes(corpus: &Corpus) -> Vec<(&Entry, Webhook, Push)> {
    git_webhooks(corpus)
        .into_iter()
        .filter_map(|(entry, webhook)| match webhook.event() {
            Event::Push(push) => {
                let push = push.clone();
                Some((entry, webhook, push))
            }
            _ => None,
        })
        .collect()
}

fn decision(event: &Event, url: &str, reference: SourceRef) -> Decision {
    decide(event, &GitSource::new(url, reference))
}

/// The scp-like form of an `https://host/path` or `ssh://user@host/path` URL.
fn scp_like(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let rest = rest.rsplit_once('@').map_or(rest, |(_, host)| host);
    let (host, path) = rest.split_once('/')?;
    let host = host.split(':').next()?;
    Some(format!("git@{host}:{path}"))
}

/// Spellings of a URL of the pushed repository that name it too.
fn spellings(url: &str) -> Vec<String> {
    let mut all = vec![
        url.to_owned(),
        url.strip_suffix(".git")
            .map_or_else(|| format!("{url}.git"), str::to_owned),
        url.to_uppercase()
            .replacen("HTTPS://", "https://", 1)
            .replacen("SSH://", "ssh://", 1),
    ];
    all.extend(scp_like(url));
    all
}

/// The URLs of the pushed repository: the payload's; for Bitbucket Server,
/// whose `repo:refs_changed` carries none, its http clone URL (with its
/// `scm/` prefix) and ssh clone URL, built from the project key and slug.
fn urls_of(entry: &Entry, repository: &fluxhook_payload::EventRepository) -> Vec<String> {
    let urls: Vec<String> = repository.urls().into_iter().map(str::to_owned).collect();
    if !urls.is_empty() {
        return urls;
    }
    assert_eq!(entry.provider, "bitbucket-server", "{}: no URL", entry.file);
    let path = repository.full_name();
    vec![
        format!(
            "https://bitbucket.example.com/scm/{}.git",
            path.to_lowercase()
        ),
        format!("ssh://git@bitbucket.example.com:7999/{path}.git"),
    ]
}

#[test]
fn pushes_of_every_git_host_reconcile_only_their_repository_and_ref() {
    let corpus = corpus();
    let mut checked = std::collections::BTreeSet::new();
    let mut pushes = 0;
    for (entry, webhook, push) in git_pushes(&corpus) {
        pushes += 1;
        checked.insert(entry.provider.clone());
        let event = webhook.event();
        let urls = urls_of(entry, &push.repository);
        let name = push.ref_name().to_owned();
        let (follows, other_ref) = match push.ref_kind() {
            RefKind::Branch => (
                SourceRef::Branch(name.clone()),
                SourceRef::Branch(format!("{name}-other")),
            ),
            RefKind::Tag => (
                SourceRef::Tag(name.clone()),
                SourceRef::Tag(format!("{name}-other")),
            ),
            RefKind::Other => panic!("{}: neither a branch nor a tag", entry.file),
        };
        let file = &entry.file;
        for url in &urls {
            // The same host and owner, another repository.
            let other = url.replacen(
                &push.repository.name,
                &format!("{}-fork", push.repository.name),
                1,
            );
            let skipped = decision(event, &other, follows.clone());
            assert!(
                matches!(skipped, Decision::Skip(Skip::OtherRepository { .. })),
                "{file}: {other}: {skipped:?}"
            );
        }
        for url in urls.iter().flat_map(|url| spellings(url)) {
            let url = url.as_str();
            assert_eq!(
                decision(event, url, follows.clone()),
                Decision::Reconcile,
                "{file}: {url}"
            );
            assert_eq!(
                decision(event, url, SourceRef::Name(push.git_ref.clone())),
                Decision::Reconcile,
                "{file}: {url}"
            );
            assert!(
                matches!(
                    decision(event, url, other_ref.clone()),
                    Decision::Skip(Skip::RefNotPushed { .. })
                ),
                "{file}: {url}"
            );
            assert!(
                matches!(
                    decision(event, url, SourceRef::Commit(push.after.clone())),
                    Decision::Skip(Skip::PinnedCommit { .. })
                ),
                "{file}: {url}"
            );
        }
    }
    println!("{pushes} pushes of {checked:?}");
    for host in GIT_HOSTS.iter().filter(|h| **h != "gogs") {
        // The corpus has no Gogs push (Gogs pushes are GitHub-shaped, as Gitea's).
        assert!(checked.contains(*host), "no push of {host} in the corpus");
    }
}

#[test]
fn the_default_branch_counts_where_the_payload_names_it() {
    let corpus = corpus();
    let mut named = 0;
    for (entry, webhook, push) in git_pushes(&corpus) {
        let url = urls_of(entry, &push.repository)[0].clone();
        let reconciled = decision(webhook.event(), &url, SourceRef::Default) == Decision::Reconcile;
        let expected = match (push.ref_kind(), push.repository.default_branch.as_deref()) {
            (RefKind::Branch, Some(default)) => {
                named += 1;
                push.ref_name() == default || push.ref_name() == "master"
            }
            (RefKind::Branch, None) => true,
            _ => false,
        };
        assert_eq!(
            reconciled, expected,
            "{}: {:?}",
            entry.file, push.repository.default_branch
        );
    }
    assert!(named > 0, "no push names its default branch");
}

/// The default branches the payloads name, where the corpus's hosts name one.
#[test]
fn default_branches_are_read_from_every_host_that_sends_one() {
    let corpus = corpus();
    for (file, default) in [
        ("payloads/github/push.json", Some("master")),
        ("payloads/github/push_branch_create.json", Some("master")),
        ("payloads/gitea/push.json", Some("master")),
        ("payloads/gitlab/push.json", Some("master")),
        ("payloads/bitbucket-cloud/push.json", None),
        ("payloads/bitbucket-server/push.json", None),
    ] {
        let entry = corpus.entries().iter().find(|e| e.file == file).unwrap();
        let webhook = webhook(&corpus, entry);
        let push = webhook.push().unwrap();
        assert_eq!(push.repository.default_branch.as_deref(), default, "{file}");
    }
}

#[test]
fn other_events_compare_the_repository_and_pings_reconcile() {
    let corpus = corpus();
    let foreign = "https://example.com/nobody/nothing.git";
    for (entry, webhook) in git_webhooks(&corpus) {
        let event = webhook.event();
        let got = decision(event, foreign, SourceRef::Default);
        match event {
            Event::Ping(_) | Event::Other { repository: None } => {
                assert_eq!(got, Decision::Reconcile, "{}", entry.file);
            }
            _ => {
                assert!(
                    matches!(got, Decision::Skip(Skip::OtherRepository { .. })),
                    "{}: {got:?}",
                    entry.file
                );
                if let Event::Other {
                    repository: Some(repository),
                } = event
                    && let Some(url) = repository.urls().first()
                {
                    assert_eq!(
                        decision(event, url, SourceRef::Default),
                        Decision::Reconcile,
                        "{}",
                        entry.file
                    );
                }
            }
        }
    }
}
