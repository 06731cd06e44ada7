//! Git hosts: pushes, repositories, and each host's payloads.

pub(crate) mod azure;
pub(crate) mod bitbucket;
pub(crate) mod github;
pub(crate) mod gitlab;

use std::borrow::Cow;
use std::collections::HashSet;

use serde::Deserialize;

use crate::read::Text;

/// The object id Git uses for "no commit": the old side of a created ref,
/// the new side of a deleted one.
///
/// Hosts that send no object for the missing side (Bitbucket Cloud) get this
/// id, so [`Push::before`] and [`Push::after`] are always set.
pub const ZERO_ID: &str = "0000000000000000000000000000000000000000";

/// Whether `id` is Git's all-zero object id (SHA-1 or SHA-256 length alike).
///
/// ```
/// use fluxhook_payload::is_zero_id;
///
/// assert!(is_zero_id("0000000000000000000000000000000000000000"));
/// assert!(!is_zero_id("199eddf46df50de8d02e99bf1c5fdb4101338224"));
/// assert!(!is_zero_id(""));
/// ```
pub fn is_zero_id(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0')
}

/// A push of one ref, or a tag push.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Push {
    /// The full ref, e.g. `refs/heads/main` or `refs/tags/v1.0.0`.
    pub git_ref: String,
    /// The commit the ref pointed to before ([`ZERO_ID`] when it was created).
    pub before: String,
    /// The commit the ref points to now, the new head ([`ZERO_ID`] when it was deleted).
    pub after: String,
    /// Whether the push created the ref.
    pub created: bool,
    /// Whether the push deleted the ref.
    pub deleted: bool,
    /// The repository pushed to.
    pub repository: EventRepository,
    /// Paths the pushed commits added, modified or removed, each once, in the
    /// order the payload lists them (commit by commit: added, modified,
    /// removed). Empty when the host does not list them (Bitbucket, Azure
    /// DevOps) or when it truncates its commit list, so no path is a
    /// complete account of the change.
    pub changed_paths: Vec<String>,
    /// The full refs of the push's further changes, after [`git_ref`](Self::git_ref):
    /// Bitbucket lists one change per ref a push updated (a `git push --all`
    /// updates several). Empty for hosts that send one delivery per ref.
    pub more_refs: Vec<String>,
}

impl Push {
    /// Whether a branch or a tag was pushed.
    ///
    /// ```
    /// use fluxhook_payload::{Event, Sender, RefKind, parse};
    ///
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("X-Gitlab-Event", "Tag Push Hook".parse()?);
    /// let body = bytes::Bytes::from_static(br#"{
    ///   "object_kind": "tag_push", "ref": "refs/tags/v1.0.0",
    ///   "before": "0000000000000000000000000000000000000000",
    ///   "after": "2adc9465c4edfc33834e173fe89436a7cb899a1d",
    ///   "project": {"path_with_namespace": "gitlab-org/hello-world"}
    /// }"#);
    /// let webhook = parse(Sender::GitLab, &headers, body)?;
    /// let Event::Push(push) = webhook.event() else { panic!("a push") };
    /// assert_eq!(push.ref_kind(), RefKind::Tag);
    /// assert_eq!(push.ref_name(), "v1.0.0");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn ref_kind(&self) -> RefKind {
        RefKind::of(&self.git_ref)
    }

    /// The branch or tag name, without `refs/heads/` or `refs/tags/`; other
    /// refs whole.
    pub fn ref_name(&self) -> &str {
        self.git_ref
            .strip_prefix("refs/heads/")
            .or_else(|| self.git_ref.strip_prefix("refs/tags/"))
            .unwrap_or(&self.git_ref)
    }

    /// Every full ref the push updated: [`git_ref`](Self::git_ref), then
    /// [`more_refs`](Self::more_refs).
    pub fn refs(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.git_ref.as_str()).chain(self.more_refs.iter().map(String::as_str))
    }
}

/// What kind of ref a push updated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefKind {
    /// A branch: `refs/heads/...`.
    Branch,
    /// A tag: `refs/tags/...`.
    Tag,
    /// Any other ref (`refs/notes/...`, `refs/pull/...`, ...).
    Other,
}

impl RefKind {
    /// The kind of a full ref.
    ///
    /// ```
    /// use fluxhook_payload::RefKind;
    ///
    /// assert_eq!(RefKind::of("refs/heads/main"), RefKind::Branch);
    /// assert_eq!(RefKind::of("refs/tags/v1"), RefKind::Tag);
    /// assert_eq!(RefKind::of("main"), RefKind::Other);
    /// ```
    pub fn of(git_ref: &str) -> RefKind {
        if git_ref.starts_with("refs/heads/") {
            RefKind::Branch
        } else if git_ref.starts_with("refs/tags/") {
            RefKind::Tag
        } else {
            RefKind::Other
        }
    }
}

/// The repository an event names, as the Git host names it, with the URLs its payload
/// carries.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventRepository {
    /// Host (and port, when the URL names one) of the web URL, else of the
    /// clone URLs; `None` when the payload carries no URL.
    pub host: Option<String>,
    /// Owner or namespace path: `owner`, a GitLab group path with subgroups
    /// (`group/sub/subsub`), a Bitbucket Server project key, an Azure DevOps
    /// `organization/project`. Empty when the host names none.
    pub namespace: String,
    /// The repository's name in its URLs (GitLab's path, Bitbucket Server's slug).
    pub name: String,
    /// The http(s) clone URL.
    pub clone_http: Option<String>,
    /// The ssh clone URL.
    pub clone_ssh: Option<String>,
    /// The web page of the repository.
    pub web: Option<String>,
    /// The repository's default branch, when the payload names it (GitHub's,
    /// Gitea's and Gogs' `repository.default_branch`, GitLab's
    /// `project.default_branch`, Bitbucket Cloud's `repository.mainbranch`;
    /// Bitbucket Server's pushes do not name it).
    pub default_branch: Option<String>,
}

impl EventRepository {
    /// Builds a repository from its full path `namespace/name` (split at the
    /// last `/`), taking the host from the URLs.
    ///
    /// ```
    /// use fluxhook_payload::EventRepository;
    ///
    /// let repo = EventRepository::from_path(
    ///     "group1/group2/grp2repo",
    ///     Some("https://gitlab.com/group1/group2/grp2repo.git".into()),
    ///     Some("git@gitlab.com:group1/group2/grp2repo.git".into()),
    ///     None,
    /// );
    /// assert_eq!(repo.namespace, "group1/group2");
    /// assert_eq!(repo.name, "grp2repo");
    /// assert_eq!(repo.host.as_deref(), Some("gitlab.com"));
    /// assert_eq!(repo.full_name(), "group1/group2/grp2repo");
    /// ```
    pub fn from_path(
        full_path: &str,
        clone_http: Option<String>,
        clone_ssh: Option<String>,
        web: Option<String>,
    ) -> EventRepository {
        let (namespace, name) = full_path.rsplit_once('/').unwrap_or(("", full_path));
        let host = web
            .as_deref()
            .and_then(url_host)
            .or_else(|| clone_http.as_deref().and_then(url_host))
            .or_else(|| clone_ssh.as_deref().and_then(ssh_host));
        EventRepository {
            host,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            clone_http,
            clone_ssh,
            web,
            default_branch: None,
        }
    }

    /// The same repository with its default branch (an empty name is none).
    pub fn with_default_branch(mut self, default_branch: Option<String>) -> EventRepository {
        self.default_branch = default_branch.filter(|branch| !branch.is_empty());
        self
    }

    /// `namespace/name` as the host names the repository (GitLab's
    /// `path_with_namespace`, Bitbucket Server's `PROJECTKEY/slug`); the bare
    /// name when there is no namespace.
    pub fn full_name(&self) -> String {
        if self.namespace.is_empty() {
            self.name.clone()
        } else {
            format!("{}/{}", self.namespace, self.name)
        }
    }

    /// The URLs the payload carries, in the order http(s) clone, ssh clone, web.
    ///
    /// ```
    /// use fluxhook_payload::EventRepository;
    ///
    /// let repo = EventRepository::from_path(
    ///     "PRJ/my-repo",
    ///     None,
    ///     Some("ssh://git@example.com:7999/prj/my-repo.git".into()),
    ///     Some("http://example.com:7990/projects/PRJ/repos/my-repo/browse".into()),
    /// );
    /// assert_eq!(repo.urls(), [
    ///     "ssh://git@example.com:7999/prj/my-repo.git",
    ///     "http://example.com:7990/projects/PRJ/repos/my-repo/browse",
    /// ]);
    /// assert_eq!(repo.host.as_deref(), Some("example.com:7990"));
    /// ```
    pub fn urls(&self) -> Vec<&str> {
        [&self.clone_http, &self.clone_ssh, &self.web]
            .into_iter()
            .filter_map(|url| url.as_deref())
            .collect()
    }
}

/// A GitHub `ping`, sent when a webhook is created.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Ping {
    /// GitHub's random aphorism.
    pub zen: Option<String>,
    /// The id of the webhook that was created.
    pub hook_id: Option<u64>,
    /// The repository, for repository webhooks (organization and app webhooks have none).
    pub repository: Option<EventRepository>,
}

/// `host[:port]` of an absolute URL.
fn url_host(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let authority = uri.authority()?;
    let host = authority.host();
    if host.is_empty() {
        return None;
    }
    Some(match authority.port_u16() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    })
}

/// Host of an ssh URL, `ssh://git@host:port/path` or scp-like `git@host:path`.
fn ssh_host(url: &str) -> Option<String> {
    if url.contains("://") {
        return url_host(url);
    }
    let (user_host, _path) = url.split_once(':')?;
    let host = user_host.rsplit_once('@').map_or(user_host, |(_, h)| h);
    (!host.is_empty()).then(|| host.to_owned())
}

/// One commit's file lists, as GitHub, Gitea, Gogs and GitLab send them.
#[derive(Deserialize)]
pub(crate) struct CommitPaths<'a> {
    #[serde(borrow)]
    added: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    modified: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    removed: Option<Vec<Text<'a>>>,
}

/// Every path of `commits`, each once, in order.
pub(crate) fn changed_paths(commits: Option<Vec<CommitPaths<'_>>>) -> Vec<String> {
    let mut seen: HashSet<Cow<'_, str>> = HashSet::new();
    let mut paths = Vec::new();
    for commit in commits.into_iter().flatten() {
        let lists = [commit.added, commit.modified, commit.removed];
        for Text(path) in lists.into_iter().flatten().flatten() {
            if !seen.contains(&path) {
                paths.push(path.clone().into_owned());
                seen.insert(path);
            }
        }
    }
    paths
}

/// A field a push needs: present and not empty.
pub(crate) fn required(
    text: Option<Text<'_>>,
    field: &'static str,
) -> Result<String, crate::ParseError> {
    crate::read::non_empty(text).ok_or(crate::ParseError::MissingField { field })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn changed_paths_are_deduplicated_in_order() {
        let commits: Vec<CommitPaths<'_>> = serde_json::from_str(
            r#"[
                {"added": ["a", "b"], "modified": ["c"], "removed": []},
                {"added": null, "modified": ["a", "d"], "removed": ["b", "e"]},
                {}
            ]"#,
        )
        .unwrap();
        assert_eq!(changed_paths(Some(commits)), ["a", "b", "c", "d", "e"]);
        assert!(changed_paths(None).is_empty());
    }

    #[test]
    fn hosts_come_from_web_then_clone_urls() {
        let cases = [
            (
                EventRepository::from_path(
                    "o/r",
                    Some("https://h1/o/r.git".into()),
                    None,
                    Some("https://user@web.example:8443/o/r".into()),
                ),
                Some("web.example:8443"),
            ),
            (
                EventRepository::from_path("o/r", Some("http://h1/o/r.git".into()), None, None),
                Some("h1"),
            ),
            (
                EventRepository::from_path(
                    "o/r",
                    None,
                    Some("git@ssh.example:o/r.git".into()),
                    None,
                ),
                Some("ssh.example"),
            ),
            (
                EventRepository::from_path(
                    "o/r",
                    None,
                    Some("ssh://git@ssh.example:7999/o/r.git".into()),
                    None,
                ),
                Some("ssh.example:7999"),
            ),
            (
                EventRepository::from_path("o/r", None, None, Some("not a url".into())),
                None,
            ),
            (EventRepository::from_path("o/r", None, None, None), None),
        ];
        for (repo, host) in cases {
            assert_eq!(repo.host.as_deref(), host, "{repo:?}");
        }
    }

    #[test]
    fn full_name_without_namespace_is_the_name() {
        let repo = EventRepository::from_path("solo", None, None, None);
        assert_eq!(repo.namespace, "");
        assert_eq!(repo.full_name(), "solo");
        assert!(repo.urls().is_empty());
    }
}
