//! Which host and which repository a GitRepository URL names. Pure: no I/O.

use url::Url;

use crate::Forge;
use crate::hosts;

/// Why a GitRepository URL does not name a repository on a known host. Messages show the
/// host and path, never user information embedded in the URL.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RepoUrlError {
    /// The URL is empty.
    #[error("the repository URL is empty")]
    Empty,
    /// The scheme is not `https`, `http` or `ssh`.
    #[error(
        "unsupported scheme {0:?} in repository URL: use https://, http://, ssh:// or git@host:path"
    )]
    UnsupportedScheme(String),
    /// The URL does not parse.
    #[error("malformed repository URL: {0}")]
    Malformed(String),
    /// The URL has no host.
    #[error("the repository URL has no host")]
    MissingHost,
    /// The path does not have the shape the provider's repositories have.
    #[error("{provider} repository path {path:?} on {host} should be {expected}")]
    UnexpectedPath {
        /// The provider the path was read for.
        provider: Forge,
        /// The host of the URL.
        host: String,
        /// The path of the URL.
        path: String,
        /// What the path should look like.
        expected: &'static str,
    },
    /// The repository is on Azure DevOps, which is not supported yet.
    #[error("{host}: {instead}", instead = hosts::azure_devops::INSTEAD)]
    AzureDevOps {
        /// The host of the URL.
        host: String,
    },
    /// No provider is known for the host and none was given.
    #[error(
        "no Git provider is known for host {0}: give the provider (and API URL) of this self-hosted instance"
    )]
    UnknownHost(String),
}

/// How a Git URL reaches its host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitScheme {
    /// `https://host/path`.
    Https,
    /// `http://host/path`.
    Http,
    /// `ssh://[user@]host[:port]/path`.
    Ssh,
    /// scp-like `[user@]host:path`.
    Scp,
}

/// A Git URL split into host and path, as Flux accepts them in a GitRepository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitUrl {
    /// How the URL reaches the host.
    pub scheme: GitScheme,
    /// Host name, lower-cased.
    pub host: String,
    /// Explicit port, if any.
    pub port: Option<u16>,
    /// Path segments, percent-decoded, without a trailing `.git` on the last one.
    pub segments: Vec<String>,
}

impl GitUrl {
    /// Splits a GitRepository URL: `https://host/owner/repo(.git)`, `http://...`,
    /// `ssh://git@host(:port)/owner/repo(.git)` or scp-like `git@host:owner/repo(.git)`.
    ///
    /// ```
    /// use fluxhook_register::{GitScheme, GitUrl};
    /// let url = GitUrl::parse("ssh://git@bitbucket.example.com:7999/prj/fleet.git")?;
    /// assert_eq!(url.scheme, GitScheme::Ssh);
    /// assert_eq!(url.host, "bitbucket.example.com");
    /// assert_eq!(url.port, Some(7999));
    /// assert_eq!(url.segments, ["prj", "fleet"]);
    /// # Ok::<(), fluxhook_register::RepoUrlError>(())
    /// ```
    pub fn parse(input: &str) -> Result<GitUrl, RepoUrlError> {
        let input = input.trim();
        if input.is_empty() {
            return Err(RepoUrlError::Empty);
        }
        match input.split_once("://") {
            Some((scheme, _)) => Self::parse_url(input, scheme),
            None => Self::parse_scp(input),
        }
    }

    fn parse_url(input: &str, scheme: &str) -> Result<GitUrl, RepoUrlError> {
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "https" => GitScheme::Https,
            "http" => GitScheme::Http,
            "ssh" | "git+ssh" => GitScheme::Ssh,
            _ => return Err(RepoUrlError::UnsupportedScheme(scheme.to_owned())),
        };
        let url = Url::parse(input).map_err(|e| RepoUrlError::Malformed(e.to_string()))?;
        let host = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or(RepoUrlError::MissingHost)?
            .to_ascii_lowercase();
        Ok(GitUrl {
            scheme,
            host,
            port: url.port(),
            segments: split_path(url.path())?,
        })
    }

    fn parse_scp(input: &str) -> Result<GitUrl, RepoUrlError> {
        // `[user@]host:path`; a `/` before the first `:` would make it a local path.
        let (authority, path) = input
            .split_once(':')
            .filter(|(authority, _)| !authority.contains('/'))
            .ok_or_else(|| {
                RepoUrlError::Malformed("expected scheme://host/path or user@host:path".into())
            })?;
        let host = authority
            .rsplit_once('@')
            .map_or(authority, |(_, host)| host);
        if host.is_empty() {
            return Err(RepoUrlError::MissingHost);
        }
        if host.chars().any(|c| c.is_whitespace() || c == '@') {
            return Err(RepoUrlError::Malformed(format!("invalid host {host:?}")));
        }
        Ok(GitUrl {
            scheme: GitScheme::Scp,
            host: host.to_ascii_lowercase(),
            port: None,
            segments: split_path(path)?,
        })
    }

    /// The path as it appears in messages.
    fn display_path(&self) -> String {
        self.segments.join("/")
    }

    /// The web root of the host: `https://host` for SSH URLs, whose port is not the web port.
    fn web_root(&self) -> String {
        match (self.scheme, self.port) {
            (GitScheme::Http, Some(port)) => format!("http://{}:{port}", self.host),
            (GitScheme::Http, None) => format!("http://{}", self.host),
            (GitScheme::Https, Some(port)) => format!("https://{}:{port}", self.host),
            _ => format!("https://{}", self.host),
        }
    }
}

fn split_path(path: &str) -> Result<Vec<String>, RepoUrlError> {
    let path = path.trim_start_matches('/').trim_end_matches('/');
    let mut segments = Vec::new();
    for raw in path.split('/') {
        let segment = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| RepoUrlError::Malformed(format!("path segment {raw:?} is not UTF-8")))?;
        segments.push(segment.into_owned());
    }
    if let Some(last) = segments.last_mut()
        && let Some(stripped) = last.strip_suffix(".git").filter(|s| !s.is_empty())
    {
        *last = stripped.to_owned();
    }
    // Checked after `.git` is cut: `...git` would otherwise become `..`.
    if segments
        .iter()
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(RepoUrlError::Malformed(format!("invalid path {path:?}")));
    }
    Ok(segments)
}

/// How to reach a self-hosted instance whose host name says nothing of its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostConfig {
    /// The instance's API family.
    pub provider: Forge,
    /// The URL the documented API paths hang from: `https://ghe.example.com/api/v3`,
    /// `https://gitlab.example.com/api/v4`, `https://bitbucket.example.com/rest/api/1.0`,
    /// `https://gitea.example.com/api/v1`. `None` derives it from the repository URL.
    pub api_base: Option<Url>,
}

/// One repository on one Git host, and the API URL to manage its hooks through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostedRepository {
    provider: Forge,
    api_base: Url,
    owner: String,
    name: String,
}

impl HostedRepository {
    /// A repository given part by part. `owner` is the GitHub/Gitea owner, the GitLab
    /// namespace (`group/subgroup`), the Bitbucket Cloud workspace or the Bitbucket Server
    /// project key; `api_base` is where the provider's documented API paths hang from.
    pub fn new(
        provider: Forge,
        api_base: Url,
        owner: impl Into<String>,
        name: impl Into<String>,
    ) -> HostedRepository {
        HostedRepository {
            provider,
            api_base,
            owner: owner.into(),
            name: name.into(),
        }
    }

    /// Recognises the host and repository of a GitRepository URL.
    ///
    /// `host` names the provider (and optionally the API URL) of a self-hosted instance;
    /// without it only the known SaaS hosts are recognised. When `host` gives an API URL with
    /// a path prefix (an instance under `/gitlab`, say), that prefix is removed from the
    /// repository path of `http(s)` URLs.
    ///
    /// ```
    /// use fluxhook_register::{HostConfig, Forge, HostedRepository};
    ///
    /// let repo = HostedRepository::from_git_url("git@gitlab.com:platform/infra/fleet.git", None)?;
    /// assert_eq!(repo.forge(), Forge::GITLAB);
    /// assert_eq!(repo.owner(), "platform/infra");
    /// assert_eq!(repo.name(), "fleet");
    /// assert_eq!(repo.api_base().as_str(), "https://gitlab.com/api/v4");
    ///
    /// let server = HostConfig { provider: Forge::BITBUCKET_SERVER, api_base: None };
    /// let repo = HostedRepository::from_git_url("https://git.example.com/scm/prj/fleet.git", Some(&server))?;
    /// assert_eq!((repo.owner(), repo.name()), ("PRJ", "fleet"));
    /// assert_eq!(repo.api_base().as_str(), "https://git.example.com/rest/api/1.0");
    /// # Ok::<(), fluxhook_register::RepoUrlError>(())
    /// ```
    pub fn from_git_url(
        git_url: &str,
        host: Option<&HostConfig>,
    ) -> Result<HostedRepository, RepoUrlError> {
        let url = GitUrl::parse(git_url)?;
        let provider = match host.map(|h| h.provider) {
            Some(provider) => provider,
            None if hosts::azure_devops::recognises(&url.host) => {
                return Err(RepoUrlError::AzureDevOps { host: url.host });
            }
            None => Forge::from_hostname(&url.host)
                .ok_or_else(|| RepoUrlError::UnknownHost(url.host.clone()))?,
        };
        let explicit_base = host.and_then(|h| h.api_base.clone());
        let mut segments = url.segments.as_slice();
        if let Some(base) = &explicit_base {
            segments = strip_instance_prefix(&url, base, provider, segments);
        }
        let path = provider
            .api()
            .split_path(&url, segments)
            .map_err(|expected| RepoUrlError::UnexpectedPath {
                provider,
                host: url.host.clone(),
                path: url.display_path(),
                expected,
            })?;
        let api_base = match explicit_base {
            Some(base) => base,
            None => default_api_base(&url, provider, &path.context)?,
        };
        Ok(HostedRepository::new(
            provider, api_base, path.owner, path.name,
        ))
    }

    /// The host's API family.
    pub fn forge(&self) -> Forge {
        self.provider
    }

    /// The URL the provider's documented API paths hang from.
    pub fn api_base(&self) -> &Url {
        &self.api_base
    }

    /// Owner, namespace, workspace or project key.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Repository name (slug).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The first URL [`HookClient::list`](crate::HookClient::list) asks: the repository's
    /// hook collection, with the host's largest page size; `None` when the API URL cannot
    /// take a path (`mailto:`...).
    ///
    /// ```
    /// use fluxhook_register::{Forge, HostedRepository};
    /// let repo = HostedRepository::new(Forge::GITLAB, "https://gitlab.com/api/v4".parse()?, "group/sub", "fleet");
    /// assert_eq!(
    ///     repo.hooks_list_url().unwrap().as_str(),
    ///     "https://gitlab.com/api/v4/projects/group%2Fsub%2Ffleet/hooks?per_page=100"
    /// );
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn hooks_list_url(&self) -> Option<Url> {
        let api = self.provider.api();
        let mut url = self.api_base.clone();
        url.path_segments_mut()
            .ok()?
            .pop_if_empty()
            .extend(api.hooks_path(self));
        if let Some((name, value)) = api.page_size_param() {
            url.query_pairs_mut().append_pair(name, value);
        }
        Some(url)
    }

    /// `owner/name`, as messages show the repository.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.name)
    }

    /// What tells this repository from others, so that two spellings of one repository are
    /// one: the provider, the API URL without a trailing slash (parsing already lower-cases
    /// the host and drops a default port), and the owner and name in lower case, as every
    /// supported host looks them up case-insensitively (GitHub: "The name is not case
    /// sensitive", <https://docs.github.com/en/rest/repos/webhooks>; GitLab:
    /// `Routable.find_by_full_path` compares `LOWER(routes.path)`; Gitea, Forgejo and Gogs:
    /// `lower_name`; Bitbucket slugs are lower case and project keys are matched ignoring
    /// case).
    ///
    /// ```
    /// use fluxhook_register::{Forge, HostedRepository};
    /// let a = HostedRepository::new(Forge::GITHUB, "https://ghe.example.com/api/v3".parse()?, "Acme", "Fleet");
    /// let b = HostedRepository::new(Forge::GITHUB, "https://GHE.example.com:443/api/v3/".parse()?, "acme", "fleet");
    /// assert_eq!(a.key(), b.key());
    /// let c = HostedRepository::new(Forge::GITHUB, "https://ghe.example.com/api/v3".parse()?, "acme", "other");
    /// assert_ne!(a.key(), c.key());
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn key(&self) -> HostedRepositoryKey {
        HostedRepositoryKey {
            provider: self.provider,
            api: api_url_key(&self.api_base),
            owner: self.owner.to_lowercase(),
            name: self.name.to_lowercase(),
        }
    }
}

/// A repository as compared, from [`HostedRepository::key`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostedRepositoryKey {
    provider: Forge,
    api: String,
    owner: String,
    name: String,
}

/// An API URL as compared: without the trailing slash of its path.
fn api_url_key(url: &Url) -> String {
    let mut url = url.clone();
    let path = url.path().trim_end_matches('/').to_owned();
    url.set_path(&path);
    url.as_str().trim_end_matches('/').to_owned()
}

/// Removes the web path prefix of an instance served under a sub-path, known from the path
/// of its explicit API URL (`https://host/gitlab/api/v4` → `gitlab`).
fn strip_instance_prefix<'a>(
    url: &GitUrl,
    api_base: &Url,
    provider: Forge,
    segments: &'a [String],
) -> &'a [String] {
    if !matches!(url.scheme, GitScheme::Https | GitScheme::Http) {
        return segments;
    }
    let base_path = api_base.path().trim_matches('/');
    let Some(prefix) = base_path
        .strip_suffix(provider.profile().api_suffix)
        .map(|p| p.trim_end_matches('/'))
        .filter(|p| !p.is_empty())
    else {
        return segments;
    };
    let prefix: Vec<&str> = prefix.split('/').collect();
    let starts_with_prefix =
        segments.len() > prefix.len() && segments.iter().zip(&prefix).all(|(s, p)| s == p);
    match starts_with_prefix {
        true => segments.get(prefix.len()..).unwrap_or(segments),
        false => segments,
    }
}

fn default_api_base(url: &GitUrl, provider: Forge, context: &str) -> Result<Url, RepoUrlError> {
    let base = match provider.api().saas_api_base(&url.host) {
        Some(saas) => saas,
        None => {
            let mut base = url.web_root();
            for part in [context, provider.profile().api_suffix] {
                if !part.is_empty() {
                    base.push('/');
                    base.push_str(part);
                }
            }
            base
        }
    };
    Url::parse(&base).map_err(|e| RepoUrlError::Malformed(e.to_string()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn locate(url: &str, host: Option<&HostConfig>) -> (Forge, String, String, String) {
        let repo = HostedRepository::from_git_url(url, host).unwrap();
        (
            repo.forge(),
            repo.api_base().to_string(),
            repo.owner().to_owned(),
            repo.name().to_owned(),
        )
    }

    fn self_hosted(provider: Forge, api_base: Option<&str>) -> HostConfig {
        HostConfig {
            provider,
            api_base: api_base.map(|b| Url::parse(b).unwrap()),
        }
    }

    #[test]
    fn saas_hosts_in_every_form() {
        for url in [
            "https://github.com/fluxcd/flux2",
            "https://github.com/fluxcd/flux2.git",
            "https://github.com/fluxcd/flux2/",
            "http://github.com/fluxcd/flux2",
            "ssh://git@github.com/fluxcd/flux2.git",
            "ssh://git@ssh.github.com:443/fluxcd/flux2.git",
            "git@github.com:fluxcd/flux2.git",
            "git@github.com:fluxcd/flux2",
            "https://user@GitHub.com/fluxcd/flux2",
        ] {
            assert_eq!(
                locate(url, None),
                (
                    Forge::GITHUB,
                    "https://api.github.com/".into(),
                    "fluxcd".into(),
                    "flux2".into()
                ),
                "{url}"
            );
        }
        assert_eq!(
            locate(
                "https://bitbucket.org/atlassian/stash-example-plugin.git",
                None
            ),
            (
                Forge::BITBUCKET_CLOUD,
                "https://api.bitbucket.org/2.0".into(),
                "atlassian".into(),
                "stash-example-plugin".into()
            )
        );
        assert_eq!(
            locate("git@codeberg.org:forgejo/forgejo.git", None),
            (
                Forge::GITEA,
                "https://codeberg.org/api/v1".into(),
                "forgejo".into(),
                "forgejo".into()
            )
        );
    }

    #[test]
    fn gitlab_subgroups() {
        for url in [
            "https://gitlab.com/group/sub/deeper/repo.git",
            "ssh://git@gitlab.com/group/sub/deeper/repo.git",
            "git@gitlab.com:group/sub/deeper/repo",
        ] {
            assert_eq!(
                locate(url, None),
                (
                    Forge::GITLAB,
                    "https://gitlab.com/api/v4".into(),
                    "group/sub/deeper".into(),
                    "repo".into()
                ),
                "{url}"
            );
        }
    }

    #[test]
    fn self_hosted_instances_derive_their_api_url() {
        let cases = [
            (
                Forge::GITHUB,
                "https://ghe.example.com/org/repo.git",
                "https://ghe.example.com/api/v3",
                "org",
            ),
            (
                Forge::GITLAB,
                "https://git.example.com:8443/g/s/repo",
                "https://git.example.com:8443/api/v4",
                "g/s",
            ),
            (
                Forge::GITLAB,
                "ssh://git@git.example.com:2222/g/repo.git",
                "https://git.example.com/api/v4",
                "g",
            ),
            (
                Forge::GITEA,
                "http://gitea.local:3000/org/repo.git",
                "http://gitea.local:3000/api/v1",
                "org",
            ),
            (
                Forge::BITBUCKET_SERVER,
                "https://bb.example.com/scm/prj/repo.git",
                "https://bb.example.com/rest/api/1.0",
                "PRJ",
            ),
            (
                Forge::BITBUCKET_SERVER,
                "https://bb.example.com/bitbucket/scm/PRJ/repo.git",
                "https://bb.example.com/bitbucket/rest/api/1.0",
                "PRJ",
            ),
            (
                Forge::BITBUCKET_SERVER,
                "ssh://git@bb.example.com:7999/prj/repo.git",
                "https://bb.example.com/rest/api/1.0",
                "PRJ",
            ),
            (
                Forge::BITBUCKET_SERVER,
                "ssh://git@bb.example.com:7999/~jdoe/repo.git",
                "https://bb.example.com/rest/api/1.0",
                "~jdoe",
            ),
        ];
        for (provider, url, api, owner) in cases {
            let host = self_hosted(provider, None);
            assert_eq!(
                locate(url, Some(&host)),
                (provider, api.into(), owner.into(), "repo".into()),
                "{url}"
            );
        }
    }

    #[test]
    fn explicit_api_url_wins_and_strips_the_instance_prefix() {
        let host = self_hosted(Forge::GITLAB, Some("https://example.com/gitlab/api/v4"));
        assert_eq!(
            locate("https://example.com/gitlab/group/repo.git", Some(&host)),
            (
                Forge::GITLAB,
                "https://example.com/gitlab/api/v4".into(),
                "group".into(),
                "repo".into()
            )
        );
        // An SSH URL has no web prefix to strip.
        assert_eq!(
            locate("git@example.com:gitlab/repo.git", Some(&host)).2,
            "gitlab"
        );
        // The explicit provider also overrides a SaaS host name (a proxy, say).
        let gitea = self_hosted(Forge::GITEA, Some("https://proxy.example.com/api/v1"));
        assert_eq!(
            locate("https://github.com/o/r", Some(&gitea)).0,
            Forge::GITEA
        );
    }

    #[test]
    fn typed_errors() {
        let err = |url: &str, host: Option<&HostConfig>| {
            HostedRepository::from_git_url(url, host).unwrap_err()
        };
        assert_eq!(err("", None), RepoUrlError::Empty);
        assert!(matches!(
            err("ftp://github.com/o/r", None),
            RepoUrlError::UnsupportedScheme(_)
        ));
        assert!(
            matches!(err("https://git.example.com/o/r", None), RepoUrlError::UnknownHost(h) if h == "git.example.com")
        );
        assert!(matches!(
            err("https://github.com/o", None),
            RepoUrlError::UnexpectedPath { .. }
        ));
        assert!(matches!(
            err("https://github.com/o/r/tree/main", None),
            RepoUrlError::UnexpectedPath { .. }
        ));
        assert!(matches!(
            err("https://gitlab.com/repo", None),
            RepoUrlError::UnexpectedPath { .. }
        ));
        assert!(matches!(
            err("https://github.com/o//r", None),
            RepoUrlError::Malformed(_)
        ));
        assert!(matches!(
            err("/srv/git/repo", None),
            RepoUrlError::Malformed(_)
        ));
        assert!(matches!(err("git@:o/r", None), RepoUrlError::MissingHost));
        // Found by the `register` fuzz target: a name that is `.` or `..` once
        // `.git` is cut would put `..` in the host's API path.
        for url in [
            "git@github.com:owner/...git",
            "https://github.com/owner/..git",
            "https://github.com/owner/%2e%2e.git",
            "ssh:/..git",
        ] {
            assert!(
                matches!(GitUrl::parse(url), Err(RepoUrlError::Malformed(_))),
                "{url}"
            );
            assert!(
                matches!(err(url, None), RepoUrlError::Malformed(_)),
                "{url}"
            );
        }
        let bbs = self_hosted(Forge::BITBUCKET_SERVER, None);
        assert!(matches!(
            err("https://bb.example.com/prj/repo", Some(&bbs)),
            RepoUrlError::UnexpectedPath { .. }
        ));
    }

    #[test]
    fn errors_never_show_user_information() {
        let message =
            HostedRepository::from_git_url("https://user:hunter2@git.example.com/o/r", None)
                .unwrap_err()
                .to_string();
        assert!(!message.contains("hunter2"), "{message}");
        let message = HostedRepository::from_git_url("https://user:hunter2@github.com/o", None)
            .unwrap_err()
            .to_string();
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn github_enterprise_cloud_has_its_own_api_host() {
        for url in [
            "https://octo-corp.ghe.com/platform/fleet.git",
            "git@octo-corp.ghe.com:platform/fleet.git",
            "ssh://git@ssh.octo-corp.ghe.com/platform/fleet.git",
        ] {
            assert_eq!(
                locate(url, None),
                (
                    Forge::GITHUB,
                    "https://api.octo-corp.ghe.com/".into(),
                    "platform".into(),
                    "fleet".into()
                ),
                "{url}"
            );
        }
        // `api.<name>.ghe.com` is the API, not another enterprise.
        assert_eq!(Forge::from_hostname("a.b.ghe.com"), None);
        assert_eq!(Forge::from_hostname("ghe.com"), None);
    }

    #[test]
    fn azure_devops_is_refused_with_what_to_do_instead() {
        for url in [
            "https://dev.azure.com/acme/platform/_git/fleet",
            "git@ssh.dev.azure.com:v3/acme/platform/fleet",
            "https://acme.visualstudio.com/platform/_git/fleet",
        ] {
            let error = HostedRepository::from_git_url(url, None).unwrap_err();
            assert!(matches!(error, RepoUrlError::AzureDevOps { .. }), "{url}");
            let message = error.to_string();
            assert!(message.contains("not supported yet"), "{message}");
            assert!(message.contains("Service hooks"), "{message}");
        }
    }

    fn name_strategy() -> impl Strategy<Value = String> {
        "[A-Za-z0-9][A-Za-z0-9_.-]{0,15}"
            .prop_filter("a trailing .git is the suffix", |n| !n.ends_with(".git"))
    }

    fn render(form: u8, host: &str, path: &str, dot_git: bool) -> String {
        let suffix = if dot_git { ".git" } else { "" };
        match form % 5 {
            0 => format!("https://{host}/{path}{suffix}"),
            1 => format!("http://{host}/{path}{suffix}"),
            2 => format!("ssh://git@{host}/{path}{suffix}"),
            3 => format!("ssh://git@{host}:2222/{path}{suffix}"),
            _ => format!("git@{host}:{path}{suffix}"),
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_any_input(input in "\\PC{0,80}") {
            let _ = HostedRepository::from_git_url(&input, None);
            let host = HostConfig { provider: Forge::BITBUCKET_SERVER, api_base: None };
            let _ = HostedRepository::from_git_url(&input, Some(&host));
        }

        #[test]
        fn never_panics_on_url_like_input(
            scheme in prop::sample::select(vec!["https://", "ssh://", "git@", "http://", ""]),
            rest in "[a-z0-9@:/._~%-]{0,40}",
        ) {
            let _ = HostedRepository::from_git_url(&format!("{scheme}{rest}"), None);
        }

        #[test]
        fn saas_urls_round_trip(
            host in prop::sample::select(vec!["github.com", "bitbucket.org", "codeberg.org"]),
            owner in name_strategy(),
            name in name_strategy(),
            form in 0u8..5,
            dot_git: bool,
        ) {
            let url = render(form, host, &format!("{owner}/{name}"), dot_git);
            let repo = HostedRepository::from_git_url(&url, None).unwrap();
            prop_assert_eq!(repo.owner(), owner.as_str());
            prop_assert_eq!(repo.name(), name.as_str());
        }

        #[test]
        fn gitlab_namespaces_round_trip(
            namespace in prop::collection::vec(name_strategy(), 1..4),
            name in name_strategy(),
            form in 0u8..5,
            dot_git: bool,
        ) {
            let url = render(form, "gitlab.com", &format!("{}/{name}", namespace.join("/")), dot_git);
            let repo = HostedRepository::from_git_url(&url, None).unwrap();
            prop_assert_eq!(repo.owner(), namespace.join("/"));
            prop_assert_eq!(repo.name(), name.as_str());
        }

        #[test]
        fn bitbucket_server_round_trips(
            key in "[A-Z][A-Z0-9_]{0,8}",
            slug in name_strategy(),
            form in 0u8..5,
            dot_git: bool,
        ) {
            let path = match form % 5 {
                0 | 1 => format!("scm/{}/{slug}", key.to_ascii_lowercase()),
                _ => format!("{}/{slug}", key.to_ascii_lowercase()),
            };
            let url = render(form, "bitbucket.example.com", &path, dot_git);
            let host = HostConfig { provider: Forge::BITBUCKET_SERVER, api_base: None };
            let repo = HostedRepository::from_git_url(&url, Some(&host)).unwrap();
            prop_assert_eq!(repo.owner(), key.as_str());
            prop_assert_eq!(repo.name(), slug.as_str());
        }
    }
}
