//! Properties of payload-aware targeting: every spelling of the pushed
//! repository's URL names it and no other repository's does; each ref kind
//! is changed exactly by the pushes Flux would see; semver ranges accept the
//! tags Masterminds accepts; no input panics.

#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;
use fluxhook_payload::targeting::{
    Constraints, Decision, GitSource, Skip, SourceRef, Version, decide,
};
use fluxhook_payload::{Event, Sender, parse};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::json;

/// A GitHub push of `git_ref` to `owner/name` on `host`, with the URLs
/// GitHub sends; `default_branch` when given.
fn github_push(
    host: &str,
    owner: &str,
    name: &str,
    git_ref: &str,
    default_branch: Option<&str>,
) -> Event {
    let mut repository = json!({
        "name": name,
        "full_name": format!("{owner}/{name}"),
        "html_url": format!("https://{host}/{owner}/{name}"),
        "clone_url": format!("https://{host}/{owner}/{name}.git"),
        "ssh_url": format!("git@{host}:{owner}/{name}.git"),
    });
    if let Some(branch) = default_branch {
        repository["default_branch"] = json!(branch);
    }
    let body = json!({
        "ref": git_ref,
        "before": "a10867b14bb761a232cd80139fbd4c0d33264240",
        "after": "199eddf46df50de8d02e99bf1c5fdb4101338224",
        "repository": repository,
    });
    let mut headers = HeaderMap::new();
    headers.insert("X-GitHub-Event", HeaderValue::from_static("push"));
    parse(Sender::GitHub, &headers, Bytes::from(body.to_string()))
        .unwrap()
        .event()
        .clone()
}

fn reconciles(event: &Event, url: &str, reference: SourceRef) -> bool {
    match decide(event, &GitSource::new(url, reference)) {
        Decision::Reconcile => true,
        Decision::Skip(_) => false,
    }
}

/// An owner or repository name as GitHub allows them.
fn segment() -> impl Strategy<Value = String> {
    "[A-Za-z0-9][A-Za-z0-9_.-]{0,12}[A-Za-z0-9]"
        .prop_filter("not .git", |s| !s.to_lowercase().ends_with(".git"))
}

fn branch() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9/_-]{0,15}[a-z0-9]".prop_filter("a single slash", |b| !b.contains("//"))
}

/// Flips the case of some letters.
fn recase(text: &str, flips: &[bool]) -> String {
    text.chars()
        .zip(flips.iter().cycle())
        .map(|(c, flip)| {
            if *flip {
                if c.is_ascii_lowercase() {
                    c.to_ascii_uppercase()
                } else {
                    c.to_ascii_lowercase()
                }
            } else {
                c
            }
        })
        .collect()
}

/// Every way a GitRepository's `spec.url` can name `owner/name` on `host`.
fn spellings(host: &str, path: &str) -> Vec<String> {
    vec![
        format!("https://{host}/{path}"),
        format!("https://{host}/{path}.git"),
        format!("https://{host}/{path}/"),
        format!("http://{host}/{path}.git"),
        format!("https://token@{host}/{path}"),
        format!("ssh://git@{host}/{path}.git"),
        format!("ssh://git@{host}:22/{path}"),
        format!("git@{host}:{path}.git"),
        format!("git@{host}:{path}"),
    ]
}

/// The spellings of SSH over the HTTPS port: GitHub's `ssh.github.com:443`
/// ("Using SSH over the HTTPS port"), GitLab's `altssh.gitlab.com:443`.
fn ssh_over_https_spellings(host: &str, path: &str) -> Vec<String> {
    vec![
        format!("ssh://git@ssh.{host}:443/{path}.git"),
        format!("ssh://git@altssh.{host}:443/{path}"),
        format!("git@ssh.{host}:{path}.git"),
    ]
}

proptest! {
    #[test]
    fn every_spelling_of_the_pushed_repository_names_it(
        owner in segment(), name in segment(), flips in prop::collection::vec(any::<bool>(), 1..8),
        host_flip in any::<bool>(),
    ) {
        let event = github_push("github.com", &owner, &name, "refs/heads/main", Some("main"));
        let host = if host_flip { "GitHub.com" } else { "github.com" };
        let path = recase(&format!("{owner}/{name}"), &flips);
        for url in spellings(host, &path).into_iter().chain(ssh_over_https_spellings(host, &path)) {
            prop_assert!(reconciles(&event, &url, SourceRef::Branch("main".into())), "{url}");
        }
    }

    #[test]
    fn no_spelling_of_another_repository_names_it(
        owner in segment(), name in segment(), other in segment(),
    ) {
        prop_assume!(other.to_lowercase() != name.to_lowercase());
        let event = github_push("github.com", &owner, &name, "refs/heads/main", Some("main"));
        for url in spellings("github.com", &format!("{owner}/{other}"))
            .into_iter()
            .chain(spellings("gitlab.com", &format!("{owner}/{name}")))
            .chain(ssh_over_https_spellings("gitlab.com", &format!("{owner}/{name}")))
            .chain(spellings("notgithub.com", &format!("{owner}/{name}")))
            .chain(spellings("github.com", &format!("{owner}/{name}/{other}")))
        {
            let decision = decide(&event, &GitSource::new(&url, SourceRef::Branch("main".into())));
            prop_assert!(
                matches!(decision, Decision::Skip(Skip::OtherRepository { .. })),
                "{url}: {decision:?}"
            );
        }
    }

    #[test]
    fn a_branch_push_changes_only_what_follows_that_branch(
        pushed in branch(), other in branch(), commit in "[0-9a-f]{40}",
    ) {
        prop_assume!(pushed != other);
        let url = "https://github.com/o/r";
        let event = github_push("github.com", "o", "r", &format!("refs/heads/{pushed}"), Some(&other));
        prop_assert!(reconciles(&event, url, SourceRef::Branch(pushed.clone())));
        let name = SourceRef::Name(format!("refs/heads/{pushed}"));
        prop_assert!(reconciles(&event, url, name));
        prop_assert!(!reconciles(&event, url, SourceRef::Branch(other.clone())));
        prop_assert!(!reconciles(&event, url, SourceRef::Tag(pushed.clone())));
        let name = SourceRef::Name(format!("refs/tags/{pushed}"));
        prop_assert!(!reconciles(&event, url, name));
        prop_assert!(!reconciles(&event, url, SourceRef::Semver(">=0.0.0".into())));
        let pinned = decide(&event, &GitSource::new(url, SourceRef::Commit(commit)));
        prop_assert!(matches!(pinned, Decision::Skip(Skip::PinnedCommit { .. })), "{pinned:?}");
        // No ref: the default branch the payload names, or master.
        prop_assert_eq!(reconciles(&event, url, SourceRef::Default), pushed == "master");
        let on_default = github_push("github.com", "o", "r", &format!("refs/heads/{pushed}"), Some(&pushed));
        prop_assert!(reconciles(&on_default, url, SourceRef::Default));
        let unnamed = github_push("github.com", "o", "r", &format!("refs/heads/{pushed}"), None);
        prop_assert!(reconciles(&unnamed, url, SourceRef::Default));
    }

    #[test]
    fn a_tag_push_changes_only_what_follows_that_tag(tag in branch(), other in branch()) {
        prop_assume!(tag != other);
        let url = "git@github.com:o/r.git";
        let event = github_push("github.com", "o", "r", &format!("refs/tags/{tag}"), None);
        prop_assert!(reconciles(&event, url, SourceRef::Tag(tag.clone())));
        let name = SourceRef::Name(format!("refs/tags/{tag}"));
        prop_assert!(reconciles(&event, url, name));
        prop_assert!(!reconciles(&event, url, SourceRef::Tag(other)));
        prop_assert!(!reconciles(&event, url, SourceRef::Branch(tag.clone())));
        prop_assert!(!reconciles(&event, url, SourceRef::Default));
    }

    #[test]
    fn semver_ranges_accept_the_tags_in_them(
        (major, minor, patch) in (0u64..4, 0u64..4, 0u64..4),
        (a, b, c) in (0u64..4, 0u64..4, 0u64..4),
        prefix in prop::sample::select(vec!["", "v"]),
    ) {
        let url = "https://github.com/o/r";
        let tag = format!("{prefix}{major}.{minor}.{patch}");
        let event = github_push("github.com", "o", "r", &format!("refs/tags/{tag}"), None);
        let version = (major, minor, patch);
        let bound = (a, b, c);
        let cases = [
            (format!(">= {a}.{b}.{c}"), version >= bound),
            (format!(">{a}.{b}.{c}"), version > bound),
            (format!("<v{a}.{b}.{c}"), version < bound),
            (format!("= {a}.{b}.{c}"), version == bound),
            (format!("{a}.{b}.x"), major == a && minor == b),
            (format!("^{a}.{b}.{c}"), version >= bound && if a > 0 {
                major == a
            } else if b > 0 {
                major == 0 && minor == b
            } else {
                major == 0 && minor == 0 && patch == c
            }),
            // `~0.0.0` is Masterminds' "any".
            (format!("~{a}.{b}.{c}"), bound == (0, 0, 0) || (version >= bound && major == a && minor == b)),
            (format!("{a}.0.0 - {a}.{b}.{c}"), version >= (a, 0, 0) && version <= bound),
            (format!(">={a}.0.0, <{}.0.0 || = {a}.{b}.{c}", a + 1), major == a),
        ];
        for (range, holds) in cases {
            prop_assert_eq!(
                reconciles(&event, url, SourceRef::Semver(range.clone())), holds,
                "{} in {:?}", tag, range
            );
        }
        // A pre-release only for ranges that name one.
        let pre = github_push("github.com", "o", "r", &format!("refs/tags/{tag}-rc.1"), None);
        prop_assert!(!reconciles(&pre, url, SourceRef::Semver(">=0.0.0".into())));
        prop_assert!(reconciles(&pre, url, SourceRef::Semver(">=0.0.0-0".into())));
    }

    #[test]
    fn no_input_panics(url in ".{0,40}", range in ".{0,24}", tag in ".{0,16}") {
        let event = github_push("github.com", "o", "r", &format!("refs/tags/{tag}"), None);
        let _ = decide(&event, &GitSource::new(url, SourceRef::Semver(range.clone())));
        let _ = Constraints::parse(&range);
        let _ = Version::parse(&tag);
    }
}

#[test]
fn a_range_masterminds_refuses_reconciles() {
    let event = github_push("github.com", "o", "r", "refs/heads/main", None);
    assert!(reconciles(
        &event,
        "https://github.com/o/r",
        SourceRef::Semver("latest".into())
    ));
}

#[test]
fn a_url_that_is_no_url_reconciles() {
    let event = github_push("github.com", "o", "r", "refs/heads/main", None);
    assert!(reconciles(
        &event,
        "/srv/git/r",
        SourceRef::Branch("main".into())
    ));
}

#[test]
fn skip_reasons_name_the_ref_and_the_push() {
    let event = github_push("github.com", "o", "r", "refs/heads/dev", Some("main"));
    let Decision::Skip(why) = decide(
        &event,
        &GitSource::new("https://github.com/o/r", SourceRef::Default),
    ) else {
        panic!("skipped");
    };
    assert_eq!(
        why.to_string(),
        "no spec.ref (the default branch) is not changed by the push of refs/heads/dev"
    );
    let Decision::Skip(why) = decide(
        &event,
        &GitSource::new("https://github.com/o/r", SourceRef::Commit("abc".into())),
    ) else {
        panic!("skipped");
    };
    assert_eq!(
        why.to_string(),
        "spec.ref.commit pins \"abc\", which no push changes"
    );
}
