//! Typed webhook payloads: what a Git host, registry or CDEvents producer
//! says happened, read from a delivery's headers and body, without I/O.
//!
//! A receiver that has checked a delivery is genuine hands its headers and
//! body to [`parse`] (or a [`Parser`] with its own limits) with the
//! [`Sender`] it expects. The result is a [`Webhook`]: the event type and
//! delivery id the sender names, and an [`Event`] with the facts Flux logs
//! or filters on. For pushes and tag pushes of every Git host that is a
//! [`Push`]: full ref, old and new commit, whether the ref was created or
//! deleted, the [`EventRepository`] with its clone and web URLs, and the paths
//! changed. Other events (pull requests, issues, pings...) parse too,
//! naming their repository when they carry one.
//!
//! Bodies are read into small structs holding only the fields needed,
//! borrowing from the body; everything else is skipped. The body stays
//! available as [`Bytes`] and [`Webhook::json`] builds a full JSON tree
//! only when asked (e.g. for CEL filters).
//!
//! Bad input is an error, never a panic: a body over the size limit
//! (3 MiB by default, as Flux's receiver), headers that are missing or not
//! text, JSON that is invalid or not of the shape the sender uses. Nesting
//! cannot exhaust the stack: the few fields read are shallow, the rest is
//! skipped without recursion, and [`Webhook::json`] stops at
//! [`Parser::MAX_DEPTH`] levels.
//!
//! # Example
//!
//! ```
//! use bytes::Bytes;
//! use fluxhook_payload::{Event, Sender, RefKind, parse};
//! use http::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert("X-GitHub-Event", "push".parse()?);
//! headers.insert("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958".parse()?);
//! let body = Bytes::from_static(br#"{
//!   "ref": "refs/heads/main",
//!   "before": "a10867b14bb761a232cd80139fbd4c0d33264240",
//!   "after": "199eddf46df50de8d02e99bf1c5fdb4101338224",
//!   "created": false, "deleted": false,
//!   "commits": [{"added": [], "removed": [], "modified": ["deploy/app.yaml"]}],
//!   "repository": {
//!     "name": "Hello-World", "full_name": "Codertocat/Hello-World",
//!     "html_url": "https://github.com/Codertocat/Hello-World",
//!     "clone_url": "https://github.com/Codertocat/Hello-World.git",
//!     "ssh_url": "git@github.com:Codertocat/Hello-World.git"
//!   }
//! }"#);
//!
//! let webhook = parse(Sender::GitHub, &headers, body)?;
//! assert_eq!(webhook.event_type(), Some("push"));
//! assert_eq!(webhook.delivery_id(), Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"));
//!
//! let Event::Push(push) = webhook.event() else { panic!("a push") };
//! assert_eq!(push.git_ref, "refs/heads/main");
//! assert_eq!(push.ref_kind(), RefKind::Branch);
//! assert_eq!(push.after, "199eddf46df50de8d02e99bf1c5fdb4101338224");
//! assert_eq!(push.repository.full_name(), "Codertocat/Hello-World");
//! assert_eq!(push.repository.host.as_deref(), Some("github.com"));
//! assert_eq!(push.repository.urls(), [
//!     "https://github.com/Codertocat/Hello-World.git",
//!     "git@github.com:Codertocat/Hello-World.git",
//!     "https://github.com/Codertocat/Hello-World",
//! ]);
//! assert_eq!(push.changed_paths, ["deploy/app.yaml"]);
//!
//! // The whole document, built only on request.
//! assert_eq!(webhook.json()?["repository"]["name"], "Hello-World");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Senders
//!
//! | sender | event type | delivery id | event |
//! | --- | --- | --- | --- |
//! | `github` | `X-GitHub-Event` | `X-GitHub-Delivery` | `push`: [`Event::Push`], `ping`: [`Event::Ping`] |
//! | `gitea` (and Forgejo) | `X-Forgejo-Event`, `X-Gitea-Event` | `X-Forgejo-Delivery`, `X-Gitea-Delivery` | `push`: [`Event::Push`] |
//! | `gogs` | `X-Gogs-Event` | `X-Gogs-Delivery` | `push`: [`Event::Push`] |
//! | `gitlab` | `X-Gitlab-Event` | `X-Gitlab-Event-UUID` | `Push Hook`, `Tag Push Hook`: [`Event::Push`] |
//! | `bitbucket-cloud` | `X-Event-Key` | `X-Request-UUID` | `repo:push`: [`Event::Push`] |
//! | `bitbucket-server` | `X-Event-Key` | `X-Request-Id` | `repo:refs_changed`: [`Event::Push`] |
//! | `azure-devops` | body `eventType` | body `id` | `git.push`: [`Event::Push`] |
//! | `harbor` | body `type` | — | [`Event::Harbor`] |
//! | `dockerhub` | — | — | [`Event::DockerHub`] |
//! | `quay` | — | — | [`Event::Quay`] |
//! | `nexus` | `X-Nexus-Webhook-Id` | `X-Nexus-Webhook-Delivery` | [`Event::Nexus`] |
//! | `acr` | body `action` | body `id` | [`Event::Acr`] |
//! | `gcr` | `action` of the unwrapped data | `message.messageId` | [`Event::Gcr`] |
//! | `cdevents` | `context.type` (Flux matches `spec.events` against the `Ce-Type` header) | `context.id` | [`Event::CdEvent`] |
//! | `generic` | — | — | [`Event::Other`]; the body is not read |
//!
//! Git hosts' other events are [`Event::Other`], with the repository when
//! the payload names one. Bitbucket and Azure DevOps pushes can update
//! several refs at once; the [`Push`] is the first one listed.
//!
//! The `generic` sender accepts any body, JSON or not, even empty, as
//! Flux's generic receiver does; [`Webhook::json`] tells whether it is JSON.

mod cdevents;
mod error;
mod filter;
mod git;
mod go;
pub mod header;
mod hub;
mod read;
mod registry;
mod sender;
pub mod targeting;

use bytes::Bytes;
use http::HeaderMap;

pub use cdevents::CdEvent;
pub use error::{ParseError, UnknownSender};
pub use filter::is_json_content;
pub use git::{EventRepository, Ping, Push, RefKind, ZERO_ID, is_zero_id};
pub use hub::check_hub_delivery;
pub use registry::{
    AcrEvent, DockerHubEvent, GcrEvent, HarborEvent, HarborResource, NexusAsset, NexusComponent,
    NexusEvent, QuayEvent,
};
pub use sender::Sender;

/// What a delivery says happened.
///
/// `#[non_exhaustive]`: a new sender's format brings its event; code outside
/// this crate matches the events it uses with a wildcard, and what Flux logs
/// of each is said here ([`Event::origin`], exhaustive).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A Git host's push or tag push.
    Push(Push),
    /// GitHub's `ping`, sent when a webhook is created.
    Ping(Ping),
    /// Any other event: a Git host's pull request, issue, comment,
    /// pipeline, release, branch creation... with the repository it
    /// concerns when the payload names one; or a `generic` delivery.
    Other {
        /// The repository the event concerns.
        repository: Option<EventRepository>,
    },
    /// A Harbor event.
    Harbor(HarborEvent),
    /// A Docker Hub push.
    DockerHub(DockerHubEvent),
    /// A Quay push.
    Quay(QuayEvent),
    /// A Nexus Repository event.
    Nexus(NexusEvent),
    /// An Azure Container Registry event.
    Acr(AcrEvent),
    /// A Google Container Registry notification.
    Gcr(GcrEvent),
    /// A CDEvent.
    CdEvent(CdEvent),
}

/// Where a registry's notification says the image is, and its tag, as
/// Flux's log names them ([`Event::origin`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Origin<'a> {
    /// The repository (its URL or name, as the registry gives it), or for
    /// GCR the image digest.
    pub from: &'a str,
    /// The tag, for the registries that name one.
    pub tag: Option<&'a str>,
}

impl Event {
    /// Where a registry's notification comes from, as Flux logs it
    /// (`handling DockerHub event from <from> for tag <tag>`); `None` for
    /// events that are no registry notification Flux reads. Exhaustive, so a
    /// new event says what Flux logs of it.
    ///
    /// ```
    /// use bytes::Bytes;
    /// use fluxhook_payload::{Sender, parse};
    ///
    /// let body = Bytes::from_static(br#"{"push_data": {"tag": "v1"},
    ///     "repository": {"repo_url": "https://hub.docker.com/r/org/app"}}"#);
    /// let webhook = parse(Sender::DockerHub, &http::HeaderMap::new(), body)?;
    /// let origin = webhook.event().origin().unwrap();
    /// assert_eq!((origin.from, origin.tag), ("https://hub.docker.com/r/org/app", Some("v1")));
    /// # Ok::<(), fluxhook_payload::ParseError>(())
    /// ```
    pub fn origin(&self) -> Option<Origin<'_>> {
        let origin = |from, tag| Some(Origin { from, tag });
        match self {
            Event::DockerHub(e) => origin(&e.repo_url, Some(&e.tag)),
            Event::Quay(e) => origin(&e.docker_url, None),
            Event::Nexus(e) => origin(&e.repository_name, None),
            Event::Acr(e) => origin(&e.repository, Some(&e.tag)),
            Event::Gcr(e) => origin(&e.digest, Some(&e.tag)),
            // Flux does not read Harbor's body.
            Event::Harbor(_)
            | Event::Push(_)
            | Event::Ping(_)
            | Event::Other { .. }
            | Event::CdEvent(_) => None,
        }
    }
}

/// A parsed delivery: who sent it, what it says, and its body.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Webhook {
    sender: Sender,
    event_type: Option<String>,
    delivery_id: Option<String>,
    event: Event,
    body: Bytes,
}

impl Webhook {
    /// The sender it was parsed as.
    pub fn sender(&self) -> Sender {
        self.sender
    }

    /// The event type as the sender names it (`push`, `Tag Push Hook`,
    /// `repo:refs_changed`, `git.push`, `PUSH_ARTIFACT`, a CDEvents type...);
    /// `None` for senders that name none (Docker Hub, Quay, generic).
    pub fn event_type(&self) -> Option<&str> {
        self.event_type.as_deref()
    }

    /// The delivery's id, when the sender gives one.
    pub fn delivery_id(&self) -> Option<&str> {
        self.delivery_id.as_deref()
    }

    /// What the delivery says happened.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// The push, if the delivery is one.
    pub fn push(&self) -> Option<&Push> {
        match &self.event {
            Event::Push(push) => Some(push),
            _ => None,
        }
    }

    /// The Git repository the event concerns, for Git hosts' events that name one.
    pub fn repository(&self) -> Option<&EventRepository> {
        match &self.event {
            Event::Push(push) => Some(&push.repository),
            Event::Ping(ping) => ping.repository.as_ref(),
            Event::Other { repository } => repository.as_ref(),
            _ => None,
        }
    }

    /// The body, exactly as received.
    pub fn body(&self) -> &Bytes {
        &self.body
    }

    /// The whole JSON document, built on request: the body, or for GCR what
    /// Flux makes of the notification unwrapped from the Pub/Sub envelope,
    /// `{"action", "digest", "tag"}`, each key there (empty when the
    /// notification lacks it) and nothing else.
    ///
    /// Nesting deeper than [`Parser::MAX_DEPTH`] is [`ParseError::TooDeep`].
    ///
    /// ```
    /// use bytes::Bytes;
    /// use fluxhook_payload::{Sender, parse};
    /// use http::HeaderMap;
    ///
    /// let webhook = parse(Sender::Generic, &HeaderMap::new(), Bytes::from_static(br#"{"app": "podinfo"}"#))?;
    /// assert_eq!(webhook.json()?["app"], "podinfo");
    ///
    /// let deep = "[".repeat(10_000);
    /// let webhook = parse(Sender::Generic, &HeaderMap::new(), Bytes::from(deep))?;
    /// assert!(webhook.json().is_err());
    /// # Ok::<(), fluxhook_payload::ParseError>(())
    /// ```
    pub fn json(&self) -> Result<serde_json::Value, ParseError> {
        if let Event::Gcr(gcr) = &self.event {
            return Ok(serde_json::json!({
                "action": gcr.action,
                "digest": gcr.digest,
                "tag": gcr.tag,
            }));
        }
        serde_json::from_slice(&self.body).map_err(|e| ParseError::json(self.sender, "body", e))
    }
}

/// What a sender's parser found; [`Parser::parse`] adds the sender and body.
#[derive(Debug)]
struct Parsed {
    event_type: Option<String>,
    delivery_id: Option<String>,
    event: Event,
}

/// Parses deliveries with a body size limit.
///
/// ```
/// use bytes::Bytes;
/// use fluxhook_payload::{ParseError, Parser, Sender};
/// use http::HeaderMap;
///
/// let parser = Parser::new().with_max_body_bytes(16);
/// let err = parser
///     .parse(Sender::Generic, &HeaderMap::new(), Bytes::from(vec![b' '; 17]))
///     .unwrap_err();
/// assert!(matches!(err, ParseError::BodyTooLarge { size: 17, limit: 16 }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parser {
    max_body_bytes: usize,
}

impl Default for Parser {
    fn default() -> Self {
        Self::new()
    }
}

impl Parser {
    /// The default body size limit: 3 MiB, the limit of Flux's receiver.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 3 * 1024 * 1024;

    /// The deepest nesting [`Webhook::json`] accepts: serde_json's recursion
    /// limit (it refuses the 128th level). [`Parser::parse`] needs none: it reads a few shallow fields and
    /// skips the rest without recursion (serde_json walks skipped values
    /// with a heap stack), so deep nesting in a part it skips is no error
    /// there, and cannot exhaust the stack.
    pub const MAX_DEPTH: usize = 127;

    /// A parser with the default limits.
    pub const fn new() -> Self {
        Self {
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
        }
    }

    /// Sets the largest body accepted, in bytes.
    pub const fn with_max_body_bytes(self, max_body_bytes: usize) -> Self {
        Self { max_body_bytes }
    }

    /// The largest body accepted, in bytes.
    pub const fn max_body_bytes(&self) -> usize {
        self.max_body_bytes
    }

    /// Parses a delivery from `sender`.
    ///
    /// See the [crate documentation](crate) for what each sender yields.
    pub fn parse(
        &self,
        sender: Sender,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<Webhook, ParseError> {
        if body.len() > self.max_body_bytes {
            return Err(ParseError::BodyTooLarge {
                size: body.len(),
                limit: self.max_body_bytes,
            });
        }
        let parsed = match sender {
            Sender::GitHub | Sender::Gitea | Sender::Gogs => {
                git::github::parse(sender, headers, &body)?
            }
            Sender::GitLab => git::gitlab::parse(headers, &body)?,
            Sender::BitbucketCloud => git::bitbucket::parse_cloud(headers, &body)?,
            Sender::BitbucketServer => git::bitbucket::parse_server(headers, &body)?,
            Sender::AzureDevOps => git::azure::parse(&body)?,
            Sender::Harbor => registry::parse_harbor(&body)?,
            Sender::DockerHub => registry::parse_dockerhub(&body)?,
            Sender::Quay => registry::parse_quay(&body)?,
            Sender::Nexus => registry::parse_nexus(headers, &body)?,
            Sender::Acr => registry::parse_acr(&body)?,
            Sender::Gcr => registry::parse_gcr(&body)?,
            Sender::CdEvents => cdevents::parse(&body)?,
            Sender::Generic => Parsed {
                event_type: None,
                delivery_id: None,
                event: Event::Other { repository: None },
            },
        };
        Ok(Webhook {
            sender,
            event_type: parsed.event_type,
            delivery_id: parsed.delivery_id,
            event: parsed.event,
            body,
        })
    }
}

/// Parses a delivery from `sender` with the default limits:
/// `Parser::new().parse(sender, headers, body)`.
pub fn parse(sender: Sender, headers: &HeaderMap, body: Bytes) -> Result<Webhook, ParseError> {
    Parser::new().parse(sender, headers, body)
}
