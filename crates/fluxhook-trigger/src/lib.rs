//! Asks Flux to reconcile objects now, coalescing concurrent requests per
//! object.
//!
//! Flux reconciles an object again as soon as its
//! `reconcile.fluxcd.io/requestedAt` annotation changes. A webhook Receiver,
//! `flux reconcile`, or any controller that wants Flux to look again now
//! merge-patches that annotation with a fresh timestamp. [`Trigger`] does so
//! through the Kubernetes API (kube-rs):
//!
//! - [`Trigger::request_reconcile`] for one [`ObjectRef`] of any kind: Flux's
//!   kinds with their default `apiVersion`, any other kind with an explicit
//!   one (its plural found by discovery, once).
//! - [`Trigger::request_reconcile_selected`] for a Receiver's resource
//!   reference ([`fluxhook_api::ReceiverResource`]): one object by name, or
//!   every object of the kind whose labels match `matchLabels` when the name
//!   is `*`; in the Receiver's namespace unless the reference names another,
//!   which [`Trigger::no_cross_namespace_refs`] can forbid.
//! - [`Trigger::select_with_metadata`] for the objects a reference selects
//!   with their metadata ([`SelectedObject`]), for evaluating a Receiver's
//!   CEL resource filters before asking: one list for `*`, one read of the
//!   metadata for a named object.
//! - [`Trigger::select_with_spec`] for the same objects with their `spec`
//!   ([`SelectedSpec`]), for deciding from it whether to ask (a Receiver's
//!   payload-aware targeting reads GitRepositories' `spec.url` and
//!   `spec.ref`): the same one list or read, of whole objects.
//! - Which objects a reference names is decided by Flux's rules as
//!   [`fluxhook_api::ReceiverResource::selector`] states them; this crate only
//!   reads what they describe.
//! - [`git_repository`]: the GitRepositories a Receiver names, for webhook
//!   registration, and [`secret`]: the token of a Secret. Every Kubernetes read
//!   of a Receiver's references is in this crate.
//! - Every failure is a [`TriggerError`] naming the object and, when the API
//!   server answered, its status.
//! - [`BoundedRetry`] is the retry policy of the client a trigger patches
//!   through: a layer that sends again what the API server asks for again
//!   (429, 503, 504), waiting in all no longer than a webhook sender waits.
//!
//! Concurrent requests for one object share patches through a [`Coalescer`]:
//! at most one patch in flight and one queued per object, and each request is
//! answered only after a patch that began after it arrived has succeeded, or
//! with that patch's error. The coalescer is generic and usable on its own;
//! its documentation has a runnable example.
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
//! # Example
//!
//! ```no_run
//! use fluxhook_trigger::{ObjectRef, Trigger};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let trigger = Trigger::new(kube::Client::try_default().await?).no_cross_namespace_refs(true);
//!
//! // As `flux reconcile source git podinfo -n flux-system` does.
//! let outcome = trigger
//!     .request_reconcile(&ObjectRef::new("GitRepository", "flux-system", "podinfo"))
//!     .await?;
//! println!("{} reconcile requested at {}", outcome.object, outcome.requested_at);
//!
//! // Every Kustomization labelled app=podinfo in the Receiver's namespace.
//! let resource: fluxhook_api::ReceiverResource = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
//!     "kind": "Kustomization",
//!     "name": "*",
//!     "matchLabels": { "app": "podinfo" }
//! }))?;
//! for result in trigger.request_reconcile_selected(&resource, "flux-system").await {
//!     match result {
//!         Ok(outcome) => println!("{} reconcile requested", outcome.object),
//!         Err(error) => eprintln!("{error}"),
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod clock;
mod coalesce;
pub mod git_repository;
mod message;
mod names;
mod retry;
pub mod secret;
mod trigger;

pub use coalesce::{Coalescer, RunAbandoned};
pub use message::kube_message;
pub use names::ReferenceError;
pub use retry::{BoundedRetry, BoundedRetryLayer, BoundedRetryService, DeadlineExceeded};
pub use trigger::{
    Action, ObjectRef, Outcome, SelectedObject, SelectedSpec, Trigger, TriggerError,
};
