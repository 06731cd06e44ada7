//! Prometheus metrics of the webhook server.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::endpoint::ReceiverKey;

/// The labels of a request that reached a Receiver: its namespace, name and
/// type, and the status code answered.
type RequestLabels = [(&'static str, String); 4];
/// The labels of a Receiver: namespace, name and type.
type ReceiverLabels = [(&'static str, String); 3];
/// The label of a request that reached no Receiver: the status code.
type CodeLabels = [(&'static str, String); 1];

/// The content type of the OpenMetrics text exposition, which Prometheus
/// scrapes.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The webhook server's metrics, in a Prometheus registry of their own:
///
/// - `fluxhook_receiver_requests_total{namespace, name, type, code}`: the
///   requests that reached a Receiver, by the status code answered;
/// - `fluxhook_receiver_request_duration_seconds{namespace, name, type}`:
///   how long they took to answer, a histogram;
/// - `fluxhook_receiver_unmatched_requests_total{code}`: requests whose path
///   leads to no Receiver (a 404), which a scan or a stale webhook makes.
///
/// Labels hold only names, types and codes: never a path (the path of a
/// Receiver is its secret) nor anything a sender wrote.
///
/// ```
/// use std::time::Duration;
/// use fluxhook_receiver::{Metrics, ReceiverKey};
///
/// let metrics = Metrics::new();
/// let key = ReceiverKey { namespace: "flux-system".into(), name: "github".into() };
/// metrics.observe_request(&key, "github", 200, Duration::from_millis(12));
/// let text = metrics.encode();
/// assert!(text.contains(
///     r#"fluxhook_receiver_requests_total{namespace="flux-system",name="github",type="github",code="200"} 1"#
/// ));
/// ```
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    durations: Family<ReceiverLabels, Histogram>,
    unmatched: Family<CodeLabels, Counter>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

fn duration_histogram() -> Histogram {
    // 5 ms to about 41 s: a request is a few API calls, or a wait on one.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    /// Empty metrics, registered.
    pub fn new() -> Self {
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<ReceiverLabels, Histogram>::new_with_constructor(
            duration_histogram as fn() -> Histogram,
        );
        let unmatched = Family::<CodeLabels, Counter>::default();
        let mut registry = Registry::with_prefix("fluxhook_receiver");
        registry.register(
            "requests",
            "Webhook requests that reached a Receiver, by the status code answered",
            requests.clone(),
        );
        registry.register(
            "request_duration_seconds",
            "Time to answer a webhook request that reached a Receiver",
            durations.clone(),
        );
        registry.register(
            "unmatched_requests",
            "Webhook requests whose path leads to no Receiver",
            unmatched.clone(),
        );
        Self {
            registry,
            requests,
            durations,
            unmatched,
        }
    }

    /// Counts a request to the Receiver `key` of type `receiver_type`
    /// answered with `code` after `elapsed`.
    pub fn observe_request(
        &self,
        key: &ReceiverKey,
        receiver_type: &str,
        code: u16,
        elapsed: Duration,
    ) {
        let receiver = [
            ("namespace", key.namespace.clone()),
            ("name", key.name.clone()),
            ("type", receiver_type.to_owned()),
        ];
        self.durations
            .get_or_create(&receiver)
            .observe(elapsed.as_secs_f64());
        let [namespace, name, kind] = receiver;
        self.requests
            .get_or_create(&[namespace, name, kind, ("code", code.to_string())])
            .inc();
    }

    /// Counts a request whose path leads to no Receiver.
    pub fn observe_unmatched(&self, code: u16) {
        self.unmatched
            .get_or_create(&[("code", code.to_string())])
            .inc();
    }

    /// The metrics in the OpenMetrics text format ([`METRICS_CONTENT_TYPE`]).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        // Writing to a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// A router serving [`encode`](Self::encode) at `GET /metrics`.
    pub fn router(self: Arc<Self>) -> Router {
        Router::new().route(
            "/metrics",
            get(move || {
                let metrics = Arc::clone(&self);
                async move { metrics.exposition() }
            }),
        )
    }

    fn exposition(&self) -> Response {
        (
            StatusCode::OK,
            [(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)],
            self.encode(),
        )
            .into_response()
    }
}
