//! Errors of talking to a Git host. They name the host, the repository, the operation and
//! the HTTP status with the host's message; never the token or the secret.

use std::fmt;
use std::time::Duration;

use crate::{Forge, HookId};

/// What the client was doing when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// Listing the repository's hooks.
    ListHooks,
    /// Creating a hook.
    CreateHook,
    /// Updating a hook.
    UpdateHook(HookId),
    /// Deleting a hook.
    DeleteHook(HookId),
    /// Setting up the HTTP client.
    Connect,
    /// Choosing the host's events the Receiver accepts, before any request.
    ChooseEvents,
    /// Reading the host's log of a hook's deliveries (GitLab's hook events).
    ReadDeliveries(HookId),
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Operation::ListHooks => f.write_str("list hooks"),
            Operation::CreateHook => f.write_str("create hook"),
            Operation::UpdateHook(id) => write!(f, "update hook {id}"),
            Operation::DeleteHook(id) => write!(f, "delete hook {id}"),
            Operation::Connect => f.write_str("set up the HTTP client"),
            Operation::ChooseEvents => f.write_str("choose events"),
            Operation::ReadDeliveries(id) => write!(f, "read the deliveries of hook {id}"),
        }
    }
}

/// Why an operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The host refused the request.
    #[error("HTTP {status}: {message}")]
    Api {
        /// HTTP status code.
        status: u16,
        /// The host's error message (credentials removed).
        message: String,
    },
    /// The host kept rate limiting, or asked to wait longer than allowed.
    #[error(
        "rate limited (HTTP {status}): the host asks to wait {wait:?} after {retries} retries \
         (allowed: at most {max_wait:?} per wait, {max_retries} retries)"
    )]
    RateLimited {
        /// HTTP status code (429, or 403 for GitHub).
        status: u16,
        /// How long the host asked to wait.
        wait: Duration,
        /// Retries made before giving up.
        retries: u32,
        /// The longest wait allowed.
        max_wait: Duration,
        /// The most retries allowed.
        max_retries: u32,
    },
    /// The host could not be reached or the connection failed.
    #[error("could not reach the host: {0}")]
    Transport(String),
    /// The host answered something this client cannot read.
    #[error("unexpected reply (HTTP {status}): {detail}")]
    UnexpectedReply {
        /// HTTP status code.
        status: u16,
        /// What was wrong with it.
        detail: String,
    },
    /// The Receiver's type cannot verify the host's deliveries: it would refuse them all.
    #[error(
        "a {receiver_type} Receiver cannot verify {host}'s deliveries and would refuse every \
         one: its type must be {verifying}"
    )]
    ReceiverTypeMismatch {
        /// The Receiver's `spec.type`.
        receiver_type: String,
        /// The host, as messages name it.
        host: &'static str,
        /// The types that verify the host's deliveries.
        verifying: String,
    },
    /// None of the host's hook events delivers only events the Receiver accepts.
    #[error(
        "{host} delivers none of the events the Receiver accepts ({events}), so there is \
         nothing to subscribe to: {host} names its deliveries in {header}, as {delivered}"
    )]
    NothingToSubscribe {
        /// The Receiver's `spec.events`.
        events: String,
        /// The host, as messages name it.
        host: &'static str,
        /// The header naming a delivery's event.
        header: &'static str,
        /// The events the host's hook events deliver.
        delivered: String,
    },
    /// The host answered with a redirect, which is never followed: the access token and the
    /// hook's secret go to the API URL only.
    #[error(
        "HTTP {status}: the host redirects to {location}; redirects are not followed, so that \
         the access token and the hook's secret go nowhere else (if that is the host's API, \
         give its URL as the API URL)"
    )]
    Redirected {
        /// HTTP status code (301, 302, 303, 307, 308).
        status: u16,
        /// Where it pointed, without user information, query or fragment.
        location: String,
    },
    /// The hook asks to skip the verification of the receiver's certificate on a host that
    /// verifies per instance, not per hook.
    #[error(
        "{host} verifies the receivers' TLS certificates per instance ([webhook] \
         SKIP_TLS_VERIFY in its configuration), not per hook: remove the opt-out, or trust \
         the receiver's CA on the instance"
    )]
    TlsVerificationPerInstance {
        /// The host, as messages name it.
        host: String,
    },
    /// A pagination link points outside the API, where the token must not be sent.
    #[error("the next-page link {0} is not under the API URL; not following it")]
    ForeignPageLink(String),
    /// The listing did not end.
    #[error("the hook list goes on past {0} pages")]
    TooManyPages(usize),
    /// The API URL is not an `http(s)` URL that paths can be added to.
    #[error("the API URL {0} is not an http(s) URL")]
    InvalidApiUrl(String),
    /// The token holds characters that cannot go in an HTTP header.
    #[error("the access token cannot be sent in an HTTP header (control characters or non-ASCII)")]
    InvalidToken,
}

/// A failed operation on a repository's hooks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(transparent)]
pub struct RegisterError(Box<Details>);

/// Boxed so that results stay small.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} {host}, repository {repository}: {operation}: {kind}")]
struct Details {
    provider: Forge,
    host: String,
    repository: String,
    operation: Operation,
    kind: ErrorKind,
}

impl RegisterError {
    pub(crate) fn new(
        provider: Forge,
        host: String,
        repository: String,
        operation: Operation,
        kind: ErrorKind,
    ) -> RegisterError {
        RegisterError(Box::new(Details {
            provider,
            host,
            repository,
            operation,
            kind,
        }))
    }

    /// The host's API family.
    pub fn forge(&self) -> Forge {
        self.0.provider
    }

    /// The API host (and port) that was called.
    pub fn host(&self) -> &str {
        &self.0.host
    }

    /// The repository, `owner/name`.
    pub fn repository(&self) -> &str {
        &self.0.repository
    }

    /// What the client was doing.
    pub fn operation(&self) -> &Operation {
        &self.0.operation
    }

    /// Why it failed.
    pub fn kind(&self) -> &ErrorKind {
        &self.0.kind
    }

    /// The HTTP status the host answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self.0.kind {
            ErrorKind::Api { status, .. }
            | ErrorKind::Redirected { status, .. }
            | ErrorKind::RateLimited { status, .. }
            | ErrorKind::UnexpectedReply { status, .. } => Some(status),
            _ => None,
        }
    }
}
