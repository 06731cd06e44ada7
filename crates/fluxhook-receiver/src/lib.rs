//! Flux's webhook `Receiver`, served end to end.
//!
//! A Receiver (`notification.toolkit.fluxcd.io/v1`) names a webhook type, the
//! Secret holding its token and the Flux objects to reconcile. This crate
//! turns Receivers into live webhook endpoints:
//!
//! - [`Endpoint::compile`] validates a Receiver with its Secret and compiles
//!   everything a request needs (credentials, events, CEL filters), so that
//!   serving a request does no parsing of the spec. What it refuses is an
//!   [`InvalidReceiver`] whose message says what to fix; the controller
//!   reports it as `Ready=False`.
//! - [`EndpointIndex`] maps webhook digests to endpoints in constant time,
//!   whatever the number of Receivers.
//! - [`server::ReceiverServer`] answers `POST /hook/<digest>` as Flux does:
//!   it authenticates each Receiver type, evaluates the CEL filters and asks
//!   Flux to reconcile the selected objects; [`Metrics`] counts the requests.
//! - [`controller::run`] keeps the index in step with the cluster's Receivers
//!   and their Secrets, and writes their status as Flux does; with
//!   [`registration`] it also registers their webhooks with Git hosts, for the
//!   GitRepositories annotated for it.
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
//! ```
//! use std::collections::BTreeMap;
//! use fluxhook_receiver::{Endpoint, EndpointIndex, EndpointState};
//!
//! let receiver: fluxhook_api::Receiver = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "notification.toolkit.fluxcd.io/v1",
//!     "kind": "Receiver",
//!     "metadata": { "name": "git-webhook", "namespace": "flux-system" },
//!     "spec": {
//!         "type": "github",
//!         "events": ["ping", "push"],
//!         "secretRef": { "name": "webhook-token" },
//!         "resources": [{ "kind": "GitRepository", "name": "flux-repo" }]
//!     }
//! }))?;
//! let secret = BTreeMap::from([("token".to_string(), b"s3cr3t".to_vec())]);
//!
//! let endpoint = Endpoint::compile(&receiver, Some(&secret))?;
//! let path = endpoint.webhook_path().clone();
//!
//! let index = EndpointIndex::default();
//! index.publish(EndpointState::Ready(endpoint.into()));
//! let served = index.lookup(path.digest()).expect("published");
//! assert!(matches!(*served, EndpointState::Ready(_)));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod client_metrics;
pub mod controller;
mod controller_metrics;
mod endpoint;
mod index;
mod metrics;
mod process_metrics;
pub mod registration;
mod runtime_metrics;
pub mod server;

pub use client_metrics::{ClientMetrics, CountRequests, CountRequestsLayer, NO_ANSWER_CODE};
pub use controller_metrics::{
    CONTROLLER_GROUP, CONTROLLER_KIND, CONTROLLER_NAME, ControllerMetrics, GOTK_DURATION_BUCKETS,
    reconcile_span,
};
pub use endpoint::{
    Credentials, Endpoint, GCR_AUDIENCE_KEY, GCR_EMAIL_KEY, InvalidReceiver,
    MATCH_PAYLOAD_ANNOTATION, OidcTrust, ReceiverKey, ResourceTarget, TOKEN_KEY,
};
pub use index::{Claimed, EndpointIndex, EndpointState, Standing};
pub use metrics::{METRICS_CONTENT_TYPE, Metrics};
pub use process_metrics::ProcessCollector;
pub use runtime_metrics::RuntimeMetrics;

/// How long `fluxhook-receiver` lets the requests in flight finish after SIGTERM (and
/// bounds the release of its leader election Lease), then exits. A sender gives up on a
/// delivery after 10 s (GitHub's timeout), so nothing is lost by ending within Flux's
/// `terminationGracePeriodSeconds` of 10 s; the Deployment's grace period adds its preStop
/// sleep to that (crates/fluxhook-manifests checks it).
///
/// ```
/// assert!(fluxhook_receiver::SIGTERM_DRAIN < std::time::Duration::from_secs(10));
/// ```
pub const SIGTERM_DRAIN: std::time::Duration = std::time::Duration::from_secs(8);
