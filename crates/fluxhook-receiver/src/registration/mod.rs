//! Registering Receivers' webhooks with Git hosts, from inside the cluster.
//!
//! Flux's GitRepository CRD prunes unknown spec fields, so a GitRepository asks for a
//! webhook with annotations:
//!
//! | annotation | value |
//! | --- | --- |
//! | [`URL_ANNOTATION`] | the public base URL the receiver server is reached at (a path prefix is kept); the Receiver's `status.webhookPath` is appended |
//! | [`ACCESS_TOKEN_SECRET_ANNOTATION`] | the name of a Secret in the GitRepository's namespace whose `token` key is the Git host's access token, or a Flux GitHub App Secret (`githubAppID`, `githubAppInstallationID`, `githubAppPrivateKey`), whose installation tokens are minted and renewed ([`fluxhook_register::github_app`]) |
//! | [`PROVIDER_ANNOTATION`] | optional: the API family of a self-hosted host (`github`, `gitlab`, `bitbucket-server`, `bitbucket-cloud`, `gitea`, `forgejo`) |
//! | [`API_URL_ANNOTATION`] | optional, with the provider: the host's API URL, when it is not the one derived from `spec.url` |
//! | [`INSECURE_SKIP_TLS_VERIFY_ANNOTATION`] | optional: `"true"` for a hook whose host delivers without verifying the receiver's certificate (a receiver behind a private CA); GitHub, GitLab and Bitbucket only |
//! | [`CA_SECRET_ANNOTATION`] | optional: a Secret in the GitRepository's namespace whose `ca.crt` key is a PEM bundle trusted for the host's API, beside the public roots (a self-managed host behind a private CA) |
//! | [`CA_CONFIGMAP_ANNOTATION`] | optional, instead: a ConfigMap in the GitRepository's namespace whose `ca.crt` key is that bundle |
//!
//! For every GitRepository so annotated that a served Receiver names in `spec.resources`,
//! the controller makes the repository have one hook to that URL, signed with the
//! Receiver's token, for the Receiver's events ([`fluxhook_register::HookClient::ensure`]:
//! nothing is written when the host already matches). The access token is sent to an
//! `http://` API only when [`API_URL_ANNOTATION`] names it.
//!
//! The hooks registered are remembered on the Receiver, in [`REGISTERED_ANNOTATION`] (its
//! status is Flux's schema, which prunes other fields), and the Receiver carries the
//! finalizer [`CLEANUP_FINALIZER`] while any are. A hook no longer wanted (the annotations
//! went, the GitRepository went or is no longer named, a token rotation moved the
//! Receiver's path) is deleted after the wanted ones are registered, and all of them are
//! deleted before a deleted Receiver goes. A hook that cannot be deleted stays remembered and
//! is retried with backoff; removing the finalizer gives up on it.
//!
//! The outcome is the Receiver's [`CONDITION_TYPE`] condition (absent while nothing is
//! registered) and Kubernetes Events ([`event_reason`]). What the hosts tell of the hooks'
//! last deliveries is the [`DELIVERY_CONDITION_TYPE`] condition, with a Warning Event for a
//! hook whose deliveries fail. Messages name the GitRepository,
//! the host, the repository and the host's HTTP status; never a token.

mod credentials;
mod delivery;
mod error;
mod pass;
mod record;
mod target;
mod wait;
mod watch;

use std::time::Duration;

pub use fluxhook_register::HostBackoff;

pub(crate) use self::pass::{Registrar, Report, Served};
pub(crate) use self::watch::{RepositoryChanges, receivers_naming};

/// The prefix of every annotation (and of the finalizer) of webhook registration.
pub const ANNOTATION_PREFIX: &str = "webhooks.fluxhook.io/";

/// On a GitRepository: the public base URL of the receiver server, e.g.
/// `https://flux-webhook.example.com`.
pub const URL_ANNOTATION: &str = "webhooks.fluxhook.io/url";

/// On a GitRepository: the Secret, in its namespace, whose `token` is the Git host's
/// access token, or a Flux GitHub App Secret (GitHub only).
pub const ACCESS_TOKEN_SECRET_ANNOTATION: &str = "webhooks.fluxhook.io/access-token-secret";

/// On a GitRepository, optional: the API family of a self-hosted Git host.
pub const PROVIDER_ANNOTATION: &str = "webhooks.fluxhook.io/provider";

/// On a GitRepository, optional: the Git host's API URL (the only way to allow `http://`).
pub const API_URL_ANNOTATION: &str = "webhooks.fluxhook.io/api-url";

/// On a GitRepository, optional: `"true"` asks for a hook whose host does not verify the
/// receiver's TLS certificate (for a receiver behind a private CA); kept so by every pass.
pub const INSECURE_SKIP_TLS_VERIFY_ANNOTATION: &str =
    fluxhook_trigger::git_repository::INSECURE_SKIP_TLS_VERIFY_ANNOTATION;

/// On a GitRepository, optional: the Secret, in its namespace, whose [`CA_KEY`] is a PEM
/// bundle of CA certificates trusted for the Git host's API, beside the public roots.
pub const CA_SECRET_ANNOTATION: &str = "webhooks.fluxhook.io/ca-secret";

/// On a GitRepository, optional: the ConfigMap, in its namespace, whose [`CA_KEY`] is a PEM
/// bundle of CA certificates trusted for the Git host's API, beside the public roots (a CA
/// certificate is no secret: Kubernetes publishes its own in the ConfigMap
/// `kube-root-ca.crt`, key `ca.crt`). Not with [`CA_SECRET_ANNOTATION`].
pub const CA_CONFIGMAP_ANNOTATION: &str = "webhooks.fluxhook.io/ca-configmap";

/// The key of the CA bundle in the Secret of [`CA_SECRET_ANNOTATION`] or the ConfigMap of
/// [`CA_CONFIGMAP_ANNOTATION`]: `ca.crt`, as in the Secret of a Flux GitRepository's
/// `spec.secretRef` and in Kubernetes' `kube-root-ca.crt` ConfigMap.
pub const CA_KEY: &str = "ca.crt";

/// On a Receiver, written by the controller: the hooks registered for it, a JSON list of
/// `{provider, apiUrl, owner, repository, hookUrl, gitRepository, accessTokenSecret}` (and
/// `caSecret` or `caConfigMap` when one was named).
pub const REGISTERED_ANNOTATION: &str = "webhooks.fluxhook.io/registered";

/// On a Receiver while hooks are registered for it: they are deleted before it goes.
pub const CLEANUP_FINALIZER: &str = "webhooks.fluxhook.io/cleanup";

/// The Receiver condition reporting registration.
pub const CONDITION_TYPE: &str = "WebhooksRegistered";

/// The Receiver condition reporting delivery health: what the Git hosts tell of the last
/// deliveries of the hooks registered (GitHub's `last_response`, GitLab's `alert_status`),
/// read on each registration pass. Absent while no host has told anything.
pub const DELIVERY_CONDITION_TYPE: &str = "WebhookDelivery";

/// The reasons of the [`DELIVERY_CONDITION_TYPE`] condition.
pub mod delivery_reason {
    /// Every host that tells says the last deliveries went through (`True`).
    pub const SUCCEEDED: &str = "Succeeded";
    /// A host says a hook's deliveries fail: its last one failed, or the host disabled the
    /// hook (`False`).
    pub const FAILED: &str = "DeliveryFailed";
}

/// The reasons of the [`CONDITION_TYPE`] condition.
pub mod reason {
    /// Every hook wanted is registered and no stale one is left (`True`).
    pub const SUCCEEDED: &str = "Succeeded";
    /// A hook could not be registered or a stale one deleted (`False`).
    pub const REGISTRATION_FAILED: &str = "RegistrationFailed";
    /// The Receiver is being deleted and its hooks could not all be deleted (`False`).
    pub const CLEANUP_FAILED: &str = "CleanupFailed";
}

/// The reasons of the Events recorded on a Receiver; the related object is the
/// GitRepository.
pub mod event_reason {
    /// A hook was created (`Normal`).
    pub const WEBHOOK_CREATED: &str = "WebhookCreated";
    /// A hook was updated to what the Receiver needs (`Normal`).
    pub const WEBHOOK_UPDATED: &str = "WebhookUpdated";
    /// Hooks no longer wanted were deleted (`Normal`).
    pub const WEBHOOK_DELETED: &str = "WebhookDeleted";
    /// A hook could not be registered or deleted (`Warning`).
    pub const WEBHOOK_REGISTRATION_FAILED: &str = "WebhookRegistrationFailed";
    /// A host says a hook's deliveries fail (`Warning`): the receiver cannot be reached, or
    /// refuses them.
    pub const WEBHOOK_DELIVERY_FAILED: &str = "WebhookDeliveryFailed";
}

/// Whether and how the controller registers webhooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationConfig {
    /// Register hooks for annotated GitRepositories, and watch GitRepositories for it
    /// (default). When off, hooks already registered are still deleted with their Receiver.
    pub enabled: bool,
    /// How calls to Git hosts are retried within one reconciliation (server errors, and rate
    /// limits asking for no longer than its `max_wait`); a failure after that is retried with
    /// the controller's backoff. A rate limit asking for longer ends the attempt at once: the
    /// host is not called again, by any pass, before the wait it asked for is over (GitHub's
    /// secondary limit: a minute, or its `Retry-After`), and the Receiver is reconciled again
    /// once it is, rather than sooner.
    pub host_backoff: HostBackoff,
    /// Refuse to register for GitRepositories in another namespace than the Receiver's, as
    /// Flux's `--no-cross-namespace-refs` refuses to reconcile them.
    pub no_cross_namespace_refs: bool,
}

impl Default for RegistrationConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            // The backoff of server errors (0.5 s, 1 s) fits; a rate limit asking for longer
            // than 2 s requeues the Receiver instead of holding its reconciliation.
            host_backoff: HostBackoff {
                max_retries: 2,
                max_wait: Duration::from_secs(2),
                initial_backoff: Duration::from_millis(500),
            },
            no_cross_namespace_refs: false,
        }
    }
}

/// The longest condition message written.
pub(crate) const MAX_MESSAGE_CHARS: usize = 4000;

/// `text` cut to `max` characters, with an ellipsis when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_string(),
    }
}
