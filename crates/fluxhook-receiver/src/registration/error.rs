//! Why a hook cannot be registered or deleted. Conditions and Events show these messages;
//! none holds a token, a key or a secret.

use fluxhook_register::github_app::{self, GitHubAppError};
use fluxhook_register::{
    HttpSetupError, InvalidBaseUrl, RegisterError, RepoUrlError, UnknownForge,
};
use fluxhook_trigger::git_repository::InvalidTlsAnnotation;
use fluxhook_trigger::secret::{TOKEN_KEY, TokenError};
use url::Url;

use super::{
    ACCESS_TOKEN_SECRET_ANNOTATION, API_URL_ANNOTATION, CA_CONFIGMAP_ANNOTATION, CA_KEY,
    CA_SECRET_ANNOTATION, PROVIDER_ANNOTATION, REGISTERED_ANNOTATION, URL_ANNOTATION,
};

/// Why an annotated GitRepository asks for no hook that can be registered: what to fix.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum TargetError {
    /// One of the two annotations that ask for a hook is missing.
    #[error("set both {URL_ANNOTATION} and {ACCESS_TOKEN_SECRET_ANNOTATION}, or neither")]
    HalfAnnotated,
    /// The Receiver's type gives hosts nothing to sign deliveries with.
    #[error("Receiver type {receiver_type} has no token for Git hosts to sign deliveries with")]
    Unsigned {
        /// The Receiver's `spec.type`.
        receiver_type: String,
    },
    /// The receiver's base URL does not parse.
    #[error("{URL_ANNOTATION}: {0}")]
    BaseUrl(url::ParseError),
    /// The receiver's base URL cannot take the webhook path.
    #[error("{URL_ANNOTATION}: {0}")]
    HookUrl(InvalidBaseUrl),
    /// The provider annotation names no known host.
    #[error("{PROVIDER_ANNOTATION}: {0}")]
    Provider(UnknownForge),
    /// The API URL annotation does not parse.
    #[error("{API_URL_ANNOTATION}: {0}")]
    ApiUrl(url::ParseError),
    /// An API URL without the provider it is an API of.
    #[error("{API_URL_ANNOTATION} needs {PROVIDER_ANNOTATION}")]
    ApiUrlAlone,
    /// The GitRepository has no URL.
    #[error("has no spec.url")]
    NoUrl,
    /// The GitRepository's URL names no repository on a known host.
    #[error("{0} (set {PROVIDER_ANNOTATION}, and {API_URL_ANNOTATION} if needed)")]
    HostedRepository(RepoUrlError),
    /// An `http` API URL that no annotation gave.
    #[error(
        "refusing to send the access token in clear text to {0}: set {API_URL_ANNOTATION} \
         to the host's https API URL (an http one is used only when given there)"
    )]
    ClearText(Url),
    /// The TLS annotation is neither true nor false.
    #[error(transparent)]
    Tls(InvalidTlsAnnotation),
    /// Two CA bundles.
    #[error("set {CA_SECRET_ANNOTATION} or {CA_CONFIGMAP_ANNOTATION}, not both")]
    TwoCaBundles,
}

/// Why the record of registered hooks on a Receiver, or one hook in it, cannot be read back.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RecordError {
    /// The annotation is not the JSON list this controller writes.
    #[error("the annotation {REGISTERED_ANNOTATION} is not a list of registered hooks: {0}")]
    NotAList(serde_json::Error),
    /// A hook's provider is not known (any more).
    #[error(transparent)]
    Provider(UnknownForge),
    /// A hook's API URL does not parse.
    #[error("API URL {url:?}: {source}")]
    ApiUrl {
        /// The URL as recorded.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
    /// A hook's URL does not parse.
    #[error("hook URL {url:?}: {source}")]
    HookUrl {
        /// The URL as recorded.
        url: String,
        /// Why it does not parse.
        source: url::ParseError,
    },
}

/// Why the access token of a Secret cannot be had. `secret` is `namespace/name`.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AccessTokenError {
    /// The Secret cannot be read, or its `token` is missing, not text or empty.
    #[error("access token Secret {secret} {source}")]
    Token {
        /// `namespace/name`.
        secret: String,
        /// What is wrong.
        source: TokenError,
    },
    /// Neither a token nor a GitHub App.
    #[error(
        "access token Secret {secret} has no {TOKEN_KEY:?} key (nor a GitHub App's {})",
        github_app::APP_ID_KEY
    )]
    Nothing {
        /// `namespace/name`.
        secret: String,
    },
    /// Both a token and a GitHub App.
    #[error(
        "access token Secret {secret} holds both a {TOKEN_KEY:?} and a GitHub App ({}): keep one",
        github_app::APP_ID_KEY
    )]
    Both {
        /// `namespace/name`.
        secret: String,
    },
    /// The GitHub App's keys are incomplete or wrong.
    #[error("access token Secret {secret} {source}")]
    App {
        /// `namespace/name`.
        secret: String,
        /// What is wrong.
        source: GitHubAppError,
    },
    /// No installation token could be minted.
    #[error("access token Secret {secret} (GitHub App {app}): {source}")]
    Installation {
        /// `namespace/name`.
        secret: String,
        /// The app's ID.
        app: String,
        /// Why.
        source: GitHubAppError,
    },
}

/// Why an HTTP client trusting a CA bundle cannot be had. `what` names the Secret or
/// ConfigMap and its annotation.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CaError {
    /// The object cannot be read.
    #[error("{what} cannot be read: {message}")]
    Unreadable {
        /// The object, as messages name it.
        what: String,
        /// The API server's answer.
        message: String,
    },
    /// The object has no `ca.crt`.
    #[error("{what} has no {CA_KEY:?} key")]
    MissingKey {
        /// The object, as messages name it.
        what: String,
    },
    /// The bundle is not PEM certificates.
    #[error("{what} {CA_KEY:?}: {source}")]
    Invalid {
        /// The object, as messages name it.
        what: String,
        /// Why.
        source: HttpSetupError,
    },
}

/// Why no client of a repository's hooks can be had.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClientError {
    /// The CA bundle.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// The access token.
    #[error(transparent)]
    Token(#[from] AccessTokenError),
    /// The HTTP client.
    #[error(transparent)]
    Http(#[from] HttpSetupError),
    /// The hooks client (an API URL that cannot take paths, a token that cannot go in a
    /// header).
    #[error(transparent)]
    Client(#[from] RegisterError),
}

/// Why remembered hooks could not be deleted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DeleteError {
    /// The record cannot be read back.
    #[error(transparent)]
    Record(#[from] RecordError),
    /// No client.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The host.
    #[error(transparent)]
    Host(#[from] RegisterError),
}
