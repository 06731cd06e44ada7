//! Flux's webhook Receiver API as Rust types, with no I/O.
//!
//! fluxhook serves Flux's own `Receiver` custom resource
//! (`notification.toolkit.fluxcd.io/v1`). This crate holds what every part of
//! it agrees on:
//!
//! - [`Receiver`] and its spec and status, which read and write back every
//!   field of Flux's CRD unchanged. `Receiver::crd()`
//!   ([`kube::CustomResourceExt::crd`]) gives a CRD with the property paths of
//!   Flux's. An unknown `spec.type` is kept as
//!   [`ReceiverType::Unknown`] rather than refused, so the controller can
//!   report it.
//! - The webhook path Flux derives for a Receiver, [`webhook_path`], and
//!   [`WebhookPath::parse`] to read it back from a request.
//! - The table of Flux kinds a Receiver names, [`flux_kind`] and [`resolve`],
//!   to find the group, version and plural of the objects to annotate.
//! - Which objects a `spec.resources` entry names, by Flux's rules
//!   ([`ReceiverResource::selector`]), and the reverse, whether an entry names
//!   an object ([`ReceiverResource::selects`]): the one statement of those
//!   rules, which every reader of the cluster applies.
//! - The names Flux uses: [`RECONCILE_REQUEST_ANNOTATION`], the Secret watch
//!   label, and the [`condition`] types and reasons.
//!
//! # Kubernetes version
//!
//! Like every library built on k8s-openapi, this crate does not choose the
//! Kubernetes version: the binary that embeds it does, by enabling one version
//! feature of k8s-openapi (fluxhook's binaries use `v1_33`, the oldest version
//! Flux supports):
//!
//! ```toml
//! k8s-openapi = { version = "0.29", features = ["v1_35"] }
//! ```
//!
//! `examples/embed-controller` in the repository builds on another version than
//! fluxhook's binaries.
//!
//! # Features
//!
//! `kube` (default): the [`Receiver`] custom resource (kube's derive,
//! k8s-openapi's `Condition` in its status) and kinds as kube `ApiResource`s.
//! Without it the crate has no Kubernetes dependency: the spec's plain types
//! ([`OidcProvider`], [`ReceiverResource`]), [`ReceiverType`], webhook paths
//! and Flux's kinds, for crates that only read those (fluxhook-oidc).
//!
//! # Example
//!
//! ```
//! use fluxhook_api::{resolve, Receiver, ReceiverType};
//!
//! let receiver: Receiver = serde_json::from_str(r#"{
//!     "apiVersion": "notification.toolkit.fluxcd.io/v1",
//!     "kind": "Receiver",
//!     "metadata": { "name": "github-receiver", "namespace": "flux-system" },
//!     "spec": {
//!         "type": "github",
//!         "events": ["ping", "push"],
//!         "secretRef": { "name": "receiver-token" },
//!         "resources": [{ "kind": "GitRepository", "name": "flux-system" }]
//!     }
//! }"#)?;
//!
//! assert_eq!(receiver.spec.type_, ReceiverType::GitHub);
//! assert_eq!(receiver.spec.interval()?, std::time::Duration::from_secs(600));
//!
//! // The path GitHub must POST to, given the `token` of the Secret.
//! let path = receiver.webhook_path("s3cr3t");
//! assert_eq!(
//!     path.as_str(),
//!     "/hook/605dbd4976c3504a20afec155a68122702621389b3b29f71feb118008a1696a1"
//! );
//!
//! // What to patch when a push arrives.
//! let resource = &receiver.spec.resources[0];
//! let target = resolve(resource.api_version.as_deref(), &resource.kind)?;
//! assert_eq!(target.api_version(), "source.toolkit.fluxcd.io/v1");
//! assert_eq!(target.plural(), "gitrepositories");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod condition;
mod interval;
mod kinds;
#[cfg(feature = "kube")]
mod receiver;
mod receiver_type;
mod selection;
mod spec;
mod webhook;

pub use interval::{DEFAULT_INTERVAL, INTERVAL_PATTERN, IntervalError, parse_interval};
pub use kinds::{
    FLUX_KINDS, FluxKind, ResolveError, ResolvedKind, default_api_version, flux_kind, resolve,
};
#[cfg(feature = "kube")]
pub use receiver::{Receiver, ReceiverSpec, ReceiverStatus};
pub use receiver_type::{Authentication, Payload, ReceiverType, UnknownReceiverType};
pub use selection::{Candidate, Names, Selector, SelectorError, WILDCARD_NAME};
pub use spec::{
    DEFAULT_OIDC_AUDIENCE, OidcProvider, OidcValidation, OidcVariable, ReceiverResource, SecretRef,
};
pub use webhook::{
    WEBHOOK_DIGEST_LEN, WEBHOOK_PATH_PREFIX, WebhookPath, WebhookPathError, webhook_path,
};

/// The annotation whose change makes a Flux object reconcile now. A Receiver
/// sets it (merge patch) on each object it names; the value is opaque, only
/// its change matters.
pub const RECONCILE_REQUEST_ANNOTATION: &str = "reconcile.fluxcd.io/requestedAt";

/// The label that makes Flux watch a Secret it references, so a change to the
/// Secret (e.g. a new token) is picked up at once: `reconcile.fluxcd.io/watch`.
pub const WATCH_LABEL: &str = "reconcile.fluxcd.io/watch";

/// The value of [`WATCH_LABEL`] that enables the watch: `Enabled`.
pub const WATCH_LABEL_ENABLED: &str = "Enabled";

/// The finalizer notification-controller puts on Receivers.
pub const FINALIZER: &str = "finalizers.fluxcd.io";
