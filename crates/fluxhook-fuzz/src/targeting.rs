//! Payload-aware targeting: a delivery against a GitRepository's `spec.url`
//! and `spec.ref` (fluxhook-payload's `targeting`), and the Masterminds
//! versions and ranges `spec.ref.semver` is read with.
//!
//! Input: a sender selector byte (an index into `Sender::ALL`), then
//! `headers NUL body NUL url NUL branch NUL tag NUL semver NUL name NUL
//! commit`; an empty ref field is unset. The `tag` and `semver` fields are
//! also read alone, as a version and a range.

use bytes::Bytes;
use fluxhook_payload::targeting::{
    Constraints, Decision, GitSource, Skip, SourceRef, Version, decide,
};
use fluxhook_payload::{Event, EventRepository, Parser, Sender};
use serde_json::json;

use crate::input::{fields, headers, join, join_fields, selector, text};

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    let sender = Sender::ALL[usize::from(select) % Sender::ALL.len()];
    let parts = fields(rest, 8);
    let headers = headers(parts[0]);
    let body = Bytes::copy_from_slice(parts[1]);
    let url = text(parts[2]);
    let [branch, tag, semver, name, commit] =
        [parts[3], parts[4], parts[5], parts[6], parts[7]].map(text);

    versions(&tag, &semver);

    let field = |f: &str| Some(f.to_owned()).filter(|f| !f.is_empty());
    let reference = SourceRef::from_fields(
        field(&branch).as_deref(),
        field(&tag).as_deref(),
        field(&semver).as_deref(),
        field(&name).as_deref(),
        field(&commit).as_deref(),
    );
    let source = GitSource::new(url.as_ref(), reference);
    // A GitRepository's spec, as the API serves it, reads as the same source.
    let spec = json!({
        "url": url,
        "ref": {"branch": branch, "tag": tag, "semver": semver, "name": name, "commit": commit},
    });
    assert_eq!(GitSource::from_spec(&spec).as_ref(), Some(&source));

    let Ok(webhook) = Parser::new().parse(sender, &headers, body) else {
        return;
    };
    let event = webhook.event();
    let decision = decide(event, &source);
    if let Decision::Skip(skip) = &decision {
        let _ = skip.to_string();
    }

    let repository = match event {
        Event::Push(push) => Some(&push.repository),
        Event::Other { repository } => repository.as_ref(),
        _ => None,
    };
    let Some(repository) = repository else {
        assert_eq!(decision, Decision::Reconcile, "{event:?}");
        return;
    };
    same_repository(event, repository, &source, &decision);

    let Event::Push(push) = event else {
        return;
    };
    if let Decision::Skip(skip) = &decision
        && !matches!(skip, Skip::OtherRepository { .. })
    {
        // Only a pinned commit, or a ref the push did not update, skips.
        match (&source.reference, skip) {
            (SourceRef::Commit(_), Skip::PinnedCommit { .. }) => {}
            (SourceRef::Commit(_), _) => panic!("a pinned commit skips as such: {skip:?}"),
            (_, Skip::RefNotPushed { pushed, .. }) => {
                assert_eq!(pushed, &push.refs().collect::<Vec<_>>());
            }
            (reference, skip) => panic!("{reference:?} skipped for {skip:?}"),
        }
    }
    // A source following a ref the push updated, on the pushed repository's
    // own URL, reconciles.
    for own in repository.urls() {
        for git_ref in push.refs().take(16) {
            let named = GitSource::new(own, SourceRef::Name(git_ref.to_owned()));
            assert_eq!(
                decide(event, &named),
                Decision::Reconcile,
                "{own:?} at {git_ref:?}"
            );
        }
    }
}

/// `spec.url` set to one of the payload's own URLs never names another
/// repository, and the URL's ASCII case does not change whether it does.
fn same_repository(
    event: &Event,
    repository: &EventRepository,
    source: &GitSource,
    decision: &Decision,
) {
    let other = |d: &Decision| matches!(d, Decision::Skip(Skip::OtherRepository { .. }));
    if repository.urls().contains(&source.url.as_str()) {
        assert!(
            !other(decision),
            "{:?} is the payload's own URL",
            source.url
        );
    }
    for changed in [
        source.url.to_ascii_uppercase(),
        source.url.to_ascii_lowercase(),
    ] {
        let changed = GitSource::new(changed, source.reference.clone());
        assert_eq!(
            other(&decide(event, &changed)),
            other(decision),
            "{:?} and {:?}",
            source.url,
            changed.url
        );
    }
}

/// A version prints as one that reads back the same, and satisfies the
/// exact range it prints as; any range checks any version.
fn versions(tag: &str, range: &str) {
    let version = Version::parse(tag);
    if let Some(version) = &version {
        let printed = version.to_string();
        assert_eq!(Version::parse(&printed).as_ref(), Some(version), "{tag:?}");
        let exact = |op: &str| {
            Constraints::parse(&format!("{op}{printed}"))
                .unwrap_or_else(|e| panic!("{op}{printed:?} is a range: {e}"))
                .check(version)
        };
        assert!(
            exact("") && exact("=") && exact(">=") && exact("<="),
            "{printed}"
        );
        assert!(!exact("!=") && !exact("<") && !exact(">"), "{printed}");
    }
    match Constraints::parse(range) {
        Ok(constraints) => {
            if let Some(version) = &version {
                let _ = constraints.check(version);
            }
        }
        Err(error) => {
            let _ = error.to_string();
        }
    }
}

/// Seeds: each payload seed (`selector headers NUL body`) against sources
/// on the pushed repository's own URLs and refs, on another repository,
/// and with a semver range, a tag and a pinned commit.
pub(crate) fn seeds(payloads: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for payload in payloads {
        let (select, rest) = selector(payload);
        let sender = Sender::ALL[usize::from(select) % Sender::ALL.len()];
        let parts = fields(rest, 2);
        let Ok(webhook) =
            Parser::new().parse(sender, &headers(parts[0]), Bytes::copy_from_slice(parts[1]))
        else {
            continue;
        };
        let (repository, git_ref) = match webhook.event() {
            Event::Push(push) => (&push.repository, push.git_ref.as_str()),
            Event::Other {
                repository: Some(repository),
            } => (repository, ""),
            _ => continue,
        };
        let branch = git_ref.strip_prefix("refs/heads/").unwrap_or_default();
        let tag = git_ref.strip_prefix("refs/tags/").unwrap_or_default();
        let own = repository
            .urls()
            .first()
            .copied()
            .unwrap_or_default()
            .to_owned();
        let mut sources: Vec<[&str; 6]> = vec![
            // url, branch, tag, semver, name, commit
            [&own, branch, "", "", "", ""],
            [&own, "", tag, "", "", ""],
            ["git@github.com:Other/Repo.git", "", "", "", git_ref, ""],
            [&own, "", "v1.2.3", ">= 1.0.0, < 2.0.0-0 || ~3.1.x", "", ""],
            [
                &own,
                "main",
                "",
                "",
                "",
                "2f1e3d9c0a7b6e5f4d3c2b1a0f9e8d7c6b5a4f3e",
            ],
        ];
        for url in repository.urls().into_iter().skip(1) {
            sources.push([url, "", "", "", "", ""]);
        }
        for [url, branch, tag, semver, name, commit] in sources {
            let mut seed = payload.clone();
            seed.push(0);
            seed.extend(join_fields(&[
                url.as_bytes(),
                branch.as_bytes(),
                tag.as_bytes(),
                semver.as_bytes(),
                name.as_bytes(),
                commit.as_bytes(),
            ]));
            seeds.push(seed);
        }
    }
    // Ranges and versions alone, without a delivery: Masterminds' syntax.
    for (tag, semver) in [
        ("v1.2.3-rc.1+build.5", "1.2 - 1.4.x || >=2.0.0-alpha <2.1"),
        ("01.2", "^0.0.3, ~> 1.2, != 1.2.4, =< 3, => 1, *"),
        ("1.0.0-alpha.beta.11", "X.1 || 1.x.X || ~0 || ^0.x"),
    ] {
        seeds.push(join(
            0,
            &[
                b"",
                b"",
                b"https://github.com/o/r",
                b"",
                tag.as_bytes(),
                semver.as_bytes(),
            ],
        ));
    }
    seeds
}
