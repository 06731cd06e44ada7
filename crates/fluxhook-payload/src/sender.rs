//! Who sent a delivery, and telling Git hosts apart by their headers.

use std::fmt;
use std::str::FromStr;

use http::HeaderMap;

use crate::error::UnknownSender;
use crate::header::{
    X_EVENT_KEY, X_FORGEJO_EVENT, X_GITEA_EVENT, X_GITHUB_EVENT, X_GITLAB_EVENT, X_GOGS_EVENT,
};

/// The sender of a webhook delivery, and so the format it is parsed in: a
/// Git host, a registry, a CDEvents producer, or anything else (`Generic`).
///
/// `#[non_exhaustive]`: new senders come with new formats, and code outside
/// this crate names senders (`fluxhook_api::ReceiverType::payload` names
/// each receiver type's) rather than matching them; [`Parser`](crate::Parser)
/// matches them exhaustively inside.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Sender {
    /// GitHub and GitHub Enterprise Server.
    GitHub,
    /// Gitea and Forgejo.
    Gitea,
    /// Gogs.
    Gogs,
    /// GitLab (SaaS and self-managed).
    GitLab,
    /// Bitbucket Cloud (bitbucket.org).
    BitbucketCloud,
    /// Bitbucket Server and Data Center.
    BitbucketServer,
    /// Azure DevOps Services and Server (service hooks).
    AzureDevOps,
    /// Harbor.
    Harbor,
    /// Docker Hub.
    DockerHub,
    /// Quay.
    Quay,
    /// Sonatype Nexus Repository.
    Nexus,
    /// Azure Container Registry.
    Acr,
    /// Google Container Registry / Artifact Registry, through a Pub/Sub push subscription.
    Gcr,
    /// A CDEvents producer.
    CdEvents,
    /// Any sender; the body is not read.
    Generic,
}

impl Sender {
    /// Every sender, Git hosts first.
    pub const ALL: [Sender; 15] = [
        Sender::GitHub,
        Sender::Gitea,
        Sender::Gogs,
        Sender::GitLab,
        Sender::BitbucketCloud,
        Sender::BitbucketServer,
        Sender::AzureDevOps,
        Sender::Harbor,
        Sender::DockerHub,
        Sender::Quay,
        Sender::Nexus,
        Sender::Acr,
        Sender::Gcr,
        Sender::CdEvents,
        Sender::Generic,
    ];

    /// The sender's name, as [`FromStr`] reads it.
    ///
    /// ```
    /// use fluxhook_payload::Sender;
    ///
    /// assert_eq!(Sender::BitbucketServer.as_str(), "bitbucket-server");
    /// assert_eq!("bitbucket-server".parse(), Ok(Sender::BitbucketServer));
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Sender::GitHub => "github",
            Sender::Gitea => "gitea",
            Sender::Gogs => "gogs",
            Sender::GitLab => "gitlab",
            Sender::BitbucketCloud => "bitbucket-cloud",
            Sender::BitbucketServer => "bitbucket-server",
            Sender::AzureDevOps => "azure-devops",
            Sender::Harbor => "harbor",
            Sender::DockerHub => "dockerhub",
            Sender::Quay => "quay",
            Sender::Nexus => "nexus",
            Sender::Acr => "acr",
            Sender::Gcr => "gcr",
            Sender::CdEvents => "cdevents",
            Sender::Generic => "generic",
        }
    }

    /// Whether the sender is a Git host, whose pushes parse into
    /// [`Event::Push`](crate::Event::Push).
    pub const fn is_git_host(self) -> bool {
        matches!(
            self,
            Sender::GitHub
                | Sender::Gitea
                | Sender::Gogs
                | Sender::GitLab
                | Sender::BitbucketCloud
                | Sender::BitbucketServer
                | Sender::AzureDevOps
        )
    }

    /// Tells which Git host sent a delivery, from its headers.
    ///
    /// A Flux `github` receiver also gets deliveries from Gitea, Forgejo and
    /// Gogs, which send their own event header (Gitea sends GitHub's and
    /// Gogs' too, so its own header is looked at first); a `bitbucket`
    /// receiver gets Cloud or Server deliveries, which share `X-Event-Key`:
    /// Cloud sends `X-Request-UUID`/`X-Hook-UUID`, Server `X-Request-Id`, and
    /// failing those, the event keys differ (`repo:refs_changed`, `pr:*`,
    /// `diagnostics:ping` are Server's; `repo:push`, `pullrequest:*` Cloud's).
    ///
    /// Azure DevOps names its events only in the body, so it is never
    /// detected here; `None` means no Git host's event header is present.
    ///
    /// ```
    /// use fluxhook_payload::Sender;
    /// use http::HeaderMap;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("X-GitHub-Event", "push".parse().unwrap());
    /// headers.insert("X-Gitea-Event", "push".parse().unwrap());
    /// assert_eq!(Sender::detect_git_host(&headers), Some(Sender::Gitea));
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert("X-Event-Key", "repo:refs_changed".parse().unwrap());
    /// assert_eq!(Sender::detect_git_host(&headers), Some(Sender::BitbucketServer));
    /// ```
    pub fn detect_git_host(headers: &HeaderMap) -> Option<Sender> {
        if headers.contains_key(X_FORGEJO_EVENT) || headers.contains_key(X_GITEA_EVENT) {
            Some(Sender::Gitea)
        } else if headers.contains_key(X_GOGS_EVENT) {
            Some(Sender::Gogs)
        } else if headers.contains_key(X_GITHUB_EVENT) {
            Some(Sender::GitHub)
        } else if headers.contains_key(X_GITLAB_EVENT) {
            Some(Sender::GitLab)
        } else {
            let event_key = headers.get(X_EVENT_KEY)?;
            Some(detect_bitbucket(
                headers,
                event_key.to_str().unwrap_or_default(),
            ))
        }
    }
}

impl Sender {
    /// Which of `candidates` sent a delivery, told from its headers as
    /// [`Sender::detect_git_host`] tells it; the first candidate when the
    /// headers name none of them (a Flux `github` receiver reads a delivery
    /// without Gitea's or Gogs' headers as GitHub's). `None` only when
    /// `candidates` is empty.
    ///
    /// ```
    /// use fluxhook_payload::{Sender, header};
    /// use http::HeaderMap;
    ///
    /// let github_family = [Sender::GitHub, Sender::Gitea, Sender::Gogs];
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::X_GOGS_EVENT, "push".parse()?);
    /// assert_eq!(Sender::detect_among(&github_family, &headers), Some(Sender::Gogs));
    ///
    /// // A GitLab delivery to a `github` receiver is still read as GitHub's.
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::X_GITLAB_EVENT, "Push Hook".parse()?);
    /// assert_eq!(Sender::detect_among(&github_family, &headers), Some(Sender::GitHub));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn detect_among(candidates: &[Sender], headers: &HeaderMap) -> Option<Sender> {
        Sender::detect_git_host(headers)
            .filter(|detected| candidates.contains(detected))
            .or_else(|| candidates.first().copied())
    }
}

fn detect_bitbucket(headers: &HeaderMap, event_key: &str) -> Sender {
    let user_agent = headers
        .get(http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if headers.contains_key("X-Request-UUID")
        || headers.contains_key("X-Hook-UUID")
        || user_agent.starts_with("Bitbucket-Webhooks/")
    {
        Sender::BitbucketCloud
    } else if headers.contains_key("X-Request-Id") || is_bitbucket_server_event_key(event_key) {
        Sender::BitbucketServer
    } else {
        Sender::BitbucketCloud
    }
}

/// Event keys only Bitbucket Server / Data Center sends.
fn is_bitbucket_server_event_key(key: &str) -> bool {
    key.starts_with("pr:")
        || key.starts_with("diagnostics:")
        || key.starts_with("mirror:")
        || key.starts_with("repo:comment:")
        || matches!(
            key,
            "repo:refs_changed" | "repo:modified" | "repo:forked" | "repo:secret_detected"
        )
}

impl fmt::Display for Sender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Sender {
    type Err = UnknownSender;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Sender::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownSender(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::tests::headers;

    #[test]
    fn names_round_trip() {
        for sender in Sender::ALL {
            assert_eq!(sender.as_str().parse(), Ok(sender));
            assert_eq!(sender.to_string(), sender.as_str());
        }
        assert_eq!(
            "GitHub".parse::<Sender>(),
            Err(UnknownSender("GitHub".into()))
        );
    }

    #[test]
    fn detects_each_git_host() {
        let cases = [
            (headers(&[("X-GitHub-Event", "push")]), Some(Sender::GitHub)),
            (
                headers(&[("X-GitHub-Event", "push"), ("X-Gogs-Event", "push")]),
                Some(Sender::Gogs),
            ),
            (
                headers(&[("X-GitHub-Event", "push"), ("X-Forgejo-Event", "push")]),
                Some(Sender::Gitea),
            ),
            (
                headers(&[("X-Gitlab-Event", "Push Hook")]),
                Some(Sender::GitLab),
            ),
            (
                headers(&[("X-Event-Key", "repo:push")]),
                Some(Sender::BitbucketCloud),
            ),
            (
                headers(&[("X-Event-Key", "pr:opened")]),
                Some(Sender::BitbucketServer),
            ),
            (
                headers(&[
                    ("X-Event-Key", "repo:refs_changed"),
                    ("X-Request-UUID", "u"),
                ]),
                Some(Sender::BitbucketCloud),
            ),
            (
                headers(&[("X-Event-Key", "repo:push"), ("X-Request-Id", "r")]),
                Some(Sender::BitbucketServer),
            ),
            (
                headers(&[
                    ("X-Event-Key", "pr:opened"),
                    ("User-Agent", "Bitbucket-Webhooks/2.0"),
                ]),
                Some(Sender::BitbucketCloud),
            ),
            (headers(&[("Content-Type", "application/json")]), None),
        ];
        for (headers, expected) in cases {
            assert_eq!(Sender::detect_git_host(&headers), expected, "{headers:?}");
        }
    }

    #[test]
    fn git_hosts_are_the_first_seven() {
        let hosts: Vec<_> = Sender::ALL
            .into_iter()
            .filter(|p| p.is_git_host())
            .collect();
        assert_eq!(hosts, Sender::ALL[..7]);
    }
}
