//! Payload-aware targeting: whether a delivery can change what a Flux
//! GitRepository fetches, decided from the payload and the GitRepository's
//! `spec.url` and `spec.ref` alone (no I/O).
//!
//! A Receiver that selects many GitRepositories makes Flux fetch each of
//! them on every push. With the facts of the push ([`Push`]: the refs it
//! updated, the repository's URLs and default branch), [`decide`] tells
//! which of them the push can change:
//!
//! - **Repository**: `spec.url` must name the pushed repository: one of the
//!   payload's URLs, or the host of one with the path `owner/name` the host
//!   names. URLs are compared by host (without user or port) and path
//!   (without a leading `/`, a trailing `/` or `.git`), whatever the scheme
//!   (https, http, ssh, scp-like `git@host:owner/repo`), ignoring case:
//!   GitHub, GitLab, Bitbucket and Gitea look paths up without case. A
//!   subdomain names the same host (`ssh.github.com:443`,
//!   `altssh.gitlab.com:443`, `www.`), so SSH over the HTTPS port matches.
//! - **Ref**, in Flux's precedence (commit, name, semver, tag, branch): a
//!   `commit` pin is never changed by a push; `name` is the full ref
//!   pushed; `semver` accepts a pushed tag whose name is a version in the
//!   range (Masterminds' syntax, as Flux reads it); `tag` and `branch` are
//!   that tag or branch. No ref is Flux's default, the `master` branch
//!   (its CRD: "defaults to the 'master' branch"); since a GitRepository
//!   without a ref on a repository whose default branch is another one does
//!   not fetch at all, a push is taken to change it when it updates
//!   `master` or the default branch the payload names (or any branch when
//!   the payload names none).
//! - A deleted ref is a change like any other: Flux's next fetch fails, or
//!   picks another tag of a semver range.
//! - What cannot be decided reconciles: a `spec.url` that is not a URL, a
//!   range Masterminds would refuse, a delivery without a repository,
//!   pings and events other than pushes (only their repository is compared).
//!
//! ```
//! use fluxhook_payload::targeting::{Decision, GitSource, SourceRef, decide};
//! use fluxhook_payload::{Sender, parse};
//!
//! let mut headers = http::HeaderMap::new();
//! headers.insert("X-GitHub-Event", "push".parse()?);
//! let body = bytes::Bytes::from_static(br#"{
//!   "ref": "refs/heads/main", "before": "a10867b14bb761a232cd80139fbd4c0d33264240",
//!   "after": "199eddf46df50de8d02e99bf1c5fdb4101338224",
//!   "repository": {"name": "Hello-World", "full_name": "Codertocat/Hello-World",
//!     "html_url": "https://github.com/Codertocat/Hello-World",
//!     "default_branch": "main"}
//! }"#);
//! let webhook = parse(Sender::GitHub, &headers, body)?;
//!
//! let app = GitSource::new("ssh://git@github.com/codertocat/hello-world.git", SourceRef::Branch("main".into()));
//! assert_eq!(decide(webhook.event(), &app), Decision::Reconcile);
//!
//! let other = GitSource::new("https://github.com/Codertocat/Other", SourceRef::Default);
//! let Decision::Skip(why) = decide(webhook.event(), &other) else { panic!("skipped") };
//! assert_eq!(
//!     why.to_string(),
//!     "spec.url \"https://github.com/Codertocat/Other\" does not name the pushed repository Codertocat/Hello-World"
//! );
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod semver;

use std::fmt;

use crate::{Event, EventRepository, Push, RefKind};

pub use self::semver::{ConstraintError, Constraints, Version};

/// What a GitRepository's `spec.ref` follows, after Flux's precedence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceRef {
    /// No ref: Flux fetches the `master` branch.
    Default,
    /// `spec.ref.branch`.
    Branch(String),
    /// `spec.ref.tag`.
    Tag(String),
    /// `spec.ref.semver`: the newest tag in the range.
    Semver(String),
    /// `spec.ref.name`: a full ref (`refs/heads/main`, `refs/tags/v1`, `refs/pull/1/head`).
    Name(String),
    /// `spec.ref.commit`: a pinned commit.
    Commit(String),
}

impl SourceRef {
    /// The ref Flux follows among the fields set (empty ones are unset):
    /// commit, then name, semver, tag, branch (source-controller's
    /// GitRepository documentation, "Reference").
    pub fn from_fields(
        branch: Option<&str>,
        tag: Option<&str>,
        semver: Option<&str>,
        name: Option<&str>,
        commit: Option<&str>,
    ) -> SourceRef {
        let set = |field: Option<&str>| field.filter(|f| !f.is_empty()).map(str::to_owned);
        if let Some(commit) = set(commit) {
            SourceRef::Commit(commit)
        } else if let Some(name) = set(name) {
            SourceRef::Name(name)
        } else if let Some(semver) = set(semver) {
            SourceRef::Semver(semver)
        } else if let Some(tag) = set(tag) {
            SourceRef::Tag(tag)
        } else if let Some(branch) = set(branch) {
            SourceRef::Branch(branch)
        } else {
            SourceRef::Default
        }
    }
}

impl fmt::Display for SourceRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceRef::Default => f.write_str("no spec.ref (the default branch)"),
            SourceRef::Branch(b) => write!(f, "spec.ref.branch {b:?}"),
            SourceRef::Tag(t) => write!(f, "spec.ref.tag {t:?}"),
            SourceRef::Semver(s) => write!(f, "spec.ref.semver {s:?}"),
            SourceRef::Name(n) => write!(f, "spec.ref.name {n:?}"),
            SourceRef::Commit(c) => write!(f, "spec.ref.commit {c:?}"),
        }
    }
}

/// What a GitRepository fetches: its `spec.url` and `spec.ref`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// `spec.url`.
    pub url: String,
    /// `spec.ref`.
    pub reference: SourceRef,
}

impl GitSource {
    /// A source fetching `reference` from `url`.
    pub fn new(url: impl Into<String>, reference: SourceRef) -> GitSource {
        GitSource {
            url: url.into(),
            reference,
        }
    }

    /// Reads a GitRepository's `spec` (JSON, as the API server returns it);
    /// `None` when it has no `url` string. A `ref` field of another type than
    /// a string is unset.
    ///
    /// ```
    /// use fluxhook_payload::targeting::{GitSource, SourceRef};
    ///
    /// let spec = serde_json::json!({
    ///     "url": "https://github.com/stefanprodan/podinfo",
    ///     "ref": {"branch": "master", "semver": ">=6.0.0"}
    /// });
    /// let source = GitSource::from_spec(&spec).unwrap();
    /// assert_eq!(source.reference, SourceRef::Semver(">=6.0.0".into()));
    /// ```
    pub fn from_spec(spec: &serde_json::Value) -> Option<GitSource> {
        let url = spec.get("url")?.as_str()?;
        let field = |name: &str| {
            spec.get("ref")
                .and_then(|r| r.get(name))
                .and_then(|v| v.as_str())
        };
        Some(GitSource::new(
            url,
            SourceRef::from_fields(
                field("branch"),
                field("tag"),
                field("semver"),
                field("name"),
                field("commit"),
            ),
        ))
    }
}

/// Whether to ask Flux to reconcile a GitRepository for a delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The delivery can change what it fetches, or that cannot be ruled out.
    Reconcile,
    /// The delivery cannot change what it fetches.
    Skip(Skip),
}

/// Why a delivery cannot change what a GitRepository fetches; its
/// `Display` is the reason a log line gives.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Skip {
    /// `spec.url` names another repository.
    OtherRepository {
        /// `spec.url`.
        url: String,
        /// The pushed repository, as the host names it.
        pushed: String,
    },
    /// `spec.ref.commit` pins a commit.
    PinnedCommit {
        /// The commit.
        commit: String,
    },
    /// The ref the GitRepository follows is not among those pushed.
    RefNotPushed {
        /// The GitRepository's ref.
        reference: SourceRef,
        /// The full refs the push updated.
        pushed: Vec<String>,
    },
}

impl fmt::Display for Skip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skip::OtherRepository { url, pushed } => {
                write!(
                    f,
                    "spec.url {url:?} does not name the pushed repository {pushed}"
                )
            }
            Skip::PinnedCommit { commit } => {
                write!(f, "spec.ref.commit pins {commit:?}, which no push changes")
            }
            Skip::RefNotPushed { reference, pushed } => {
                write!(
                    f,
                    "{reference} is not changed by the push of {}",
                    pushed.join(", ")
                )
            }
        }
    }
}

/// Whether `event` can change what `source` fetches. Pushes are compared
/// by repository and refs; other events naming a repository by repository
/// alone; pings and events without a repository always reconcile.
pub fn decide(event: &Event, source: &GitSource) -> Decision {
    match event {
        Event::Push(push) => decide_push(push, source),
        Event::Ping(_) => Decision::Reconcile,
        Event::Other {
            repository: Some(repository),
        } => match same_repository(repository, &source.url) {
            Some(false) => Decision::Skip(other_repository(repository, source)),
            Some(true) | None => Decision::Reconcile,
        },
        _ => Decision::Reconcile,
    }
}

/// Whether `push` can change what `source` fetches.
pub fn decide_push(push: &Push, source: &GitSource) -> Decision {
    if same_repository(&push.repository, &source.url) == Some(false) {
        return Decision::Skip(other_repository(&push.repository, source));
    }
    let default_branch = push.repository.default_branch.as_deref();
    let changes = |git_ref: &str| ref_changes(git_ref, &source.reference, default_branch);
    match &source.reference {
        SourceRef::Commit(commit) => Decision::Skip(Skip::PinnedCommit {
            commit: commit.clone(),
        }),
        // A range Flux cannot read: Flux reports it; reconciling shows it.
        SourceRef::Semver(range) if Constraints::parse(range).is_err() => Decision::Reconcile,
        reference => {
            if push.refs().any(changes) {
                Decision::Reconcile
            } else {
                Decision::Skip(Skip::RefNotPushed {
                    reference: reference.clone(),
                    pushed: push.refs().map(str::to_owned).collect(),
                })
            }
        }
    }
}

fn other_repository(repository: &EventRepository, source: &GitSource) -> Skip {
    Skip::OtherRepository {
        url: source.url.clone(),
        pushed: repository.full_name(),
    }
}

/// Whether pushing `git_ref` can change what `reference` resolves to.
fn ref_changes(git_ref: &str, reference: &SourceRef, default_branch: Option<&str>) -> bool {
    let branch = git_ref.strip_prefix("refs/heads/");
    let tag = git_ref.strip_prefix("refs/tags/");
    match reference {
        SourceRef::Commit(_) => false,
        SourceRef::Name(name) => name == git_ref,
        SourceRef::Branch(wanted) => branch == Some(wanted.as_str()),
        SourceRef::Tag(wanted) => tag == Some(wanted.as_str()),
        SourceRef::Semver(range) => match (Constraints::parse(range), tag.and_then(Version::parse))
        {
            (Ok(constraints), Some(version)) => constraints.check(&version),
            (Err(_), _) => true,
            (Ok(_), None) => false,
        },
        SourceRef::Default => match (RefKind::of(git_ref), branch) {
            (RefKind::Branch, Some(branch)) => {
                branch == "master" || default_branch.is_none_or(|default| default == branch)
            }
            _ => false,
        },
    }
}

/// Whether `url` names `repository`: `None` when it cannot be told (the
/// URL is not one, or the payload carries no URL and no name).
fn same_repository(repository: &EventRepository, url: &str) -> Option<bool> {
    let wanted = Location::of(url)?;
    let full_name = repository.full_name().to_lowercase();
    let urls: Vec<Location> = repository
        .urls()
        .into_iter()
        .filter_map(Location::of)
        .collect();
    if urls.is_empty() {
        // No URL: the name alone (Bitbucket Server's http clone path has a
        // `scm/` prefix before it).
        if full_name.is_empty() {
            return None;
        }
        return Some(wanted.path == full_name || wanted.path.ends_with(&format!("/{full_name}")));
    }
    Some(urls.iter().any(|location| {
        same_host(&location.host, &wanted.host)
            && (location.path == wanted.path || wanted.path == full_name)
    }))
}

/// Whether two (lowercase) hosts serve the same repositories: equal, or one
/// a subdomain of the other. The hosts' SSH-over-443 names are subdomains of
/// the name their payloads give (`ssh.github.com`, GitHub's "Using SSH over
/// the HTTPS port"; `altssh.gitlab.com`, GitLab's "GitLab.com now supports an
/// alternate git+ssh port"; `altssh.bitbucket.org`), and so is `www.`. Erring
/// this way only reconciles a source that did not change, as without the
/// annotation; erring the other way would miss a push.
fn same_host(a: &str, b: &str) -> bool {
    // An address has no subdomains (`127.0.0.1` is not one of `0.0.1`), and
    // a top-level domain alone names no host (`com` is not `github.com`).
    let is_name =
        |host: &str| !host.starts_with('[') && host.parse::<std::net::Ipv4Addr>().is_err();
    let subdomain_of = |sub: &str, parent: &str| {
        is_name(sub)
            && is_name(parent)
            && parent.contains('.')
            && sub
                .strip_suffix(parent)
                .is_some_and(|label| label.ends_with('.') && label.len() > 1)
    };
    a == b || subdomain_of(a, b) || subdomain_of(b, a)
}

/// Host and path of a Git URL, for comparison.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Location {
    /// Lowercase, without user or port.
    host: String,
    /// Lowercase, without leading or trailing `/` or `.git`.
    path: String,
}

impl Location {
    /// `scheme://[user@]host[:port]/path` or scp-like `[user@]host:path`;
    /// `None` for anything else (a local path).
    fn of(url: &str) -> Option<Location> {
        let url = url.trim();
        let (host, path) = if let Some((_scheme, rest)) = url.split_once("://") {
            let rest = rest.split(['?', '#']).next().unwrap_or_default();
            let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
            (authority_host(authority), path)
        } else {
            // git's rule: scp-like when a colon comes before any slash.
            let (authority, path) = url.split_once(':')?;
            if authority.contains('/') {
                return None;
            }
            let host = authority
                .rsplit_once('@')
                .map_or(authority, |(_, host)| host);
            (host, path)
        };
        if host.is_empty() {
            return None;
        }
        let path = path.to_lowercase();
        let path = path.trim_matches('/');
        let path = path
            .strip_suffix(".git")
            .unwrap_or(path)
            .trim_end_matches('/');
        Some(Location {
            host: host.to_lowercase(),
            path: path.to_owned(),
        })
    }
}

/// The host of `[user[:password]@]host[:port]`, IPv6 literals kept whole.
fn authority_host(authority: &str) -> &str {
    let host_port = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    if host_port.starts_with('[') {
        return host_port.split_inclusive(']').next().unwrap_or(host_port);
    }
    host_port.split(':').next().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locations_ignore_scheme_user_port_suffix_and_case() {
        let github = Location {
            host: "github.com".into(),
            path: "owner/repo".into(),
        };
        for url in [
            "https://github.com/owner/repo",
            "https://github.com/Owner/Repo.git",
            "http://github.com/owner/repo/",
            "ssh://git@github.com/owner/repo.git",
            "ssh://git@GitHub.com:22/owner/repo",
            "git@github.com:owner/repo.git",
            "github.com:Owner/Repo",
            "https://user:secret@github.com:443/owner/repo.git?x=1#y",
        ] {
            assert_eq!(Location::of(url).as_ref(), Some(&github), "{url}");
        }
        assert_eq!(
            Location::of("ssh://git@[::1]:2222/o/r.git").map(|l| l.host),
            Some("[::1]".to_owned())
        );
        for url in ["", "/srv/git/repo", "./repo:x", "https:///path"] {
            assert_eq!(Location::of(url), None, "{url:?}");
        }
    }

    #[test]
    fn hosts_match_their_subdomains_only() {
        for (a, b) in [
            ("github.com", "github.com"),
            ("ssh.github.com", "github.com"),
            ("github.com", "altssh.github.com"),
            ("altssh.gitlab.com", "gitlab.com"),
            ("www.bitbucket.org", "bitbucket.org"),
        ] {
            assert!(same_host(a, b), "{a} {b}");
        }
        for (a, b) in [
            ("github.com", "gitlab.com"),
            ("evilgithub.com", "github.com"),
            ("github.com", "hub.com"),
            (".github.com", "github.com"),
            ("[::1]", "[::2]"),
            ("127.0.0.1", "0.0.1"),
            ("com", "github.com"),
            ("github.com", "com"),
            ("10.0.0.1", "0.1"),
        ] {
            assert!(!same_host(a, b), "{a} {b}");
        }
    }

    #[test]
    fn precedence_is_flux_s() {
        let all =
            SourceRef::from_fields(Some("b"), Some("t"), Some("1.x"), Some("refs/x"), Some("c"));
        assert_eq!(all, SourceRef::Commit("c".into()));
        assert_eq!(
            SourceRef::from_fields(Some("b"), Some("t"), Some("1.x"), Some(""), None),
            SourceRef::Semver("1.x".into())
        );
        assert_eq!(
            SourceRef::from_fields(Some("b"), Some("t"), None, None, Some("")),
            SourceRef::Tag("t".into())
        );
        assert_eq!(
            SourceRef::from_fields(None, None, None, None, None),
            SourceRef::Default
        );
    }
}
