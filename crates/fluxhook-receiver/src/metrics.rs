//! Prometheus metrics of the webhook server, in the process's one registry.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use axum::Router;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::endpoint::ReceiverKey;
use crate::server::{CloseReason, ConnectionObserver};

/// The content type of the OpenMetrics text exposition, which Prometheus
/// scrapes.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The `handler` label of every webhook request: notification-controller
/// names its receiver handler by the webhook path prefix (`/hook/`), never
/// the path itself unless `--export-http-path-metrics`, which fluxhook does
/// not offer (the path of a Receiver is its secret).
const HANDLER: &str = "/hook/";

/// Prometheus' default histogram buckets (`prometheus.DefBuckets`, 5 ms to
/// 10 s), which slok/go-http-metrics uses for request durations.
const GO_DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The labels of slok/go-http-metrics' request series (v0.13.0,
/// `metrics/prometheus/prometheus.go`): `service` (empty: Flux sets no
/// service name), `handler`, `method`, `code`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    service: &'static str,
    handler: &'static str,
    method: HttpMethod,
    code: u16,
}

/// The labels of the in-flight gauge: `service` and `handler`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HandlerLabels {
    service: &'static str,
    handler: &'static str,
}

const WEBHOOK_HANDLER: HandlerLabels = HandlerLabels {
    service: "",
    handler: HANDLER,
};

/// A request method as a label value: the methods of RFC 9110 and PATCH as
/// written, anything else `unknown` (as Prometheus' Go instrumentation
/// does), so that a client cannot make series without bound.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub(crate) enum HttpMethod {
    Known(&'static str),
    Unknown,
}

impl HttpMethod {
    pub(crate) fn of(method: &Method) -> Self {
        const KNOWN: [Method; 9] = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::DELETE,
            Method::CONNECT,
            Method::OPTIONS,
            Method::TRACE,
            Method::PATCH,
        ];
        KNOWN
            .iter()
            .find(|known| *known == method)
            .map_or(Self::Unknown, |known| Self::Known(known_str(known)))
    }
}

fn known_str(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::CONNECT => "CONNECT",
        Method::OPTIONS => "OPTIONS",
        Method::TRACE => "TRACE",
        Method::PATCH => "PATCH",
        _ => "unknown",
    }
}

impl EncodeLabelValue for HttpMethod {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), fmt::Error> {
        match self {
            Self::Known(method) => EncodeLabelValue::encode(method, encoder),
            Self::Unknown => EncodeLabelValue::encode(&"unknown", encoder),
        }
    }
}

/// The labels of a request that reached a Receiver: its namespace, name and
/// type, and the status code answered.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    namespace: String,
    name: String,
    r#type: String,
    code: u16,
}

/// The labels of a Receiver: namespace, name and type.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReceiverLabels {
    namespace: String,
    name: String,
    r#type: String,
}

/// The label of a request that reached no Receiver: the status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CodeLabels {
    code: u16,
}

/// The label of a connection the server closed: why.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

/// The process's metrics registry, with the webhook server's series in it.
///
/// As notification-controller exports its receiver server's requests
/// (slok/go-http-metrics v0.13.0 with the prefix `gotk_receiver`), every
/// answer of the webhook server is counted, including those of its limit
/// layers (405, 408, 413, 503) and the heads hyper refuses itself (400,
/// 414, 431):
///
/// - `gotk_receiver_http_request_duration_seconds{service, handler, method,
///   code}`: a histogram with Prometheus' default buckets (5 ms to 10 s);
///   `service` is empty and `handler` is `/hook/`, as in Flux; `method` is
///   `unknown` for a method outside RFC 9110 and PATCH, and for a head
///   hyper refused before its method was known to fluxhook.
/// - `gotk_receiver_http_response_size_bytes{service, handler, method,
///   code}`: the size of the answer's body, a histogram with buckets 100 B
///   to 1 GB (×10).
/// - `gotk_receiver_http_requests_inflight{service, handler}`.
///
/// fluxhook's own series, per Receiver and about connections:
///
/// - `fluxhook_receiver_requests_total{namespace, name, type, code}`: the
///   requests that reached a Receiver, by the status code answered;
/// - `fluxhook_receiver_request_duration_seconds{namespace, name, type}`:
///   how long they took to answer, a histogram;
/// - `fluxhook_receiver_unmatched_requests_total{code}`: requests whose
///   path leads to no Receiver (a 404), which a scan or a stale webhook
///   makes;
/// - `fluxhook_receiver_open_connections`: connections open on the webhook
///   server;
/// - `fluxhook_receiver_connections_closed_total{reason}`: connections the
///   server closed before the client did: `evicted` to make room for
///   another, `head_timeout`, `refused` (no room and none evictable).
///
/// Labels hold only names, types, methods and codes: never a path (the
/// path of a Receiver is its secret) nor anything a sender wrote.
///
/// Other parts of the process register their series in the same registry
/// with [`Metrics::registry_mut`] before the metrics are shared.
///
/// ```
/// use std::time::Duration;
/// use fluxhook_receiver::{Metrics, ReceiverKey};
/// use prometheus_client::metrics::counter::Counter;
///
/// let mut metrics = Metrics::new();
/// // Another part of the process adds its own series.
/// let reconciles = Counter::<u64>::default();
/// metrics.registry_mut().register("example_reconciles", "Reconciles", reconciles.clone());
/// reconciles.inc();
///
/// let key = ReceiverKey { namespace: "flux-system".into(), name: "github".into() };
/// metrics.observe_request(&key, "github", 200, Duration::from_millis(12));
/// let text = metrics.encode();
/// assert!(text.contains(
///     r#"fluxhook_receiver_requests_total{namespace="flux-system",name="github",type="github",code="200"} 1"#
/// ));
/// assert!(text.contains("example_reconciles_total 1"));
/// ```
pub struct Metrics {
    registry: Registry,
    http_durations: Family<HttpLabels, Histogram>,
    http_sizes: Family<HttpLabels, Histogram>,
    /// The webhook handler's series of `gotk_receiver_http_requests_inflight`,
    /// the one series of its family.
    webhook_inflight: Gauge,
    /// The series of `http_durations` and `http_sizes` of each method and
    /// code answered so far, so that an answer finds them without hashing
    /// its labels (two lookups in the families took about 3,000 instructions
    /// an answer; docs/performance.md).
    http_series: RwLock<Vec<HttpSeries>>,
    requests: Family<RequestLabels, Counter>,
    durations: Family<ReceiverLabels, Histogram>,
    unmatched: Family<CodeLabels, Counter>,
    open_connections: Gauge,
    closed_connections: Family<ReasonLabels, Counter>,
    /// The series of each Receiver, so that a request finds them without
    /// building its labels, and [`Metrics::forget_receiver`] can remove
    /// them.
    receivers: Mutex<HashMap<ReceiverKey, ReceiverSeries>>,
}

/// The series of one method and code in `http_durations` and `http_sizes`.
struct HttpSeries {
    method: HttpMethod,
    code: u16,
    durations: Histogram,
    sizes: Histogram,
}

/// The series a Receiver has, per type (a Receiver whose type changed has
/// series under both) and, for the requests, per code.
#[derive(Default)]
struct ReceiverSeries {
    durations: Vec<(String, Histogram)>,
    requests: Vec<((String, u16), Counter)>,
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

fn go_duration_histogram() -> Histogram {
    Histogram::new(GO_DEFAULT_BUCKETS)
}

fn go_size_histogram() -> Histogram {
    // prometheus.ExponentialBuckets(100, 10, 8): 100 B to 1 GB.
    Histogram::new(exponential_buckets(100.0, 10.0, 8))
}

fn receiver_duration_histogram() -> Histogram {
    // 5 ms to about 41 s: a request is a few API calls, or a wait on one.
    Histogram::new(exponential_buckets(0.005, 2.0, 14))
}

impl Metrics {
    /// A registry with the webhook server's series registered, all at zero.
    pub fn new() -> Self {
        let http_durations = Family::<HttpLabels, Histogram>::new_with_constructor(
            go_duration_histogram as fn() -> Histogram,
        );
        let http_sizes = Family::<HttpLabels, Histogram>::new_with_constructor(
            go_size_histogram as fn() -> Histogram,
        );
        let http_inflight = Family::<HandlerLabels, Gauge>::default();
        let requests = Family::<RequestLabels, Counter>::default();
        let durations = Family::<ReceiverLabels, Histogram>::new_with_constructor(
            receiver_duration_histogram as fn() -> Histogram,
        );
        let unmatched = Family::<CodeLabels, Counter>::default();
        let open_connections = Gauge::default();
        let closed_connections = Family::<ReasonLabels, Counter>::default();

        let mut registry = Registry::default();
        // Help texts as slok/go-http-metrics writes them (the encoder adds
        // the final period).
        registry.register(
            "gotk_receiver_http_request_duration_seconds",
            "The latency of the HTTP requests",
            http_durations.clone(),
        );
        registry.register(
            "gotk_receiver_http_response_size_bytes",
            "The size of the HTTP responses",
            http_sizes.clone(),
        );
        registry.register(
            "gotk_receiver_http_requests_inflight",
            "The number of inflight requests being handled at the same time",
            http_inflight.clone(),
        );
        // Present from the start, as Go's gauge is once the server runs.
        let webhook_inflight = http_inflight.get_or_create_owned(&WEBHOOK_HANDLER);

        let fluxhook = registry.sub_registry_with_prefix("fluxhook_receiver");
        fluxhook.register(
            "requests",
            "Webhook requests that reached a Receiver, by the status code answered",
            requests.clone(),
        );
        fluxhook.register(
            "request_duration_seconds",
            "Time to answer a webhook request that reached a Receiver",
            durations.clone(),
        );
        fluxhook.register(
            "unmatched_requests",
            "Webhook requests whose path leads to no Receiver",
            unmatched.clone(),
        );
        fluxhook.register(
            "open_connections",
            "Connections open on the webhook server",
            open_connections.clone(),
        );
        fluxhook.register(
            "connections_closed",
            "Webhook connections the server closed before the client did, by reason",
            closed_connections.clone(),
        );
        Self {
            registry,
            http_durations,
            http_sizes,
            webhook_inflight,
            http_series: RwLock::default(),
            requests,
            durations,
            unmatched,
            open_connections,
            closed_connections,
            receivers: Mutex::default(),
        }
    }

    /// The registry, for other parts of the process to register their own
    /// series in before the metrics are shared (e.g. put in an [`Arc`] and
    /// served with [`Metrics::router`]). Names registered here are written
    /// as given, with no prefix.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// The registry, with every series registered in it.
    pub fn registry(&self) -> &Registry {
        &self.registry
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
        // The handles are kept per Receiver: after its first request, a
        // request costs a lookup by key, not the six label strings the
        // families are keyed by. The lock is held while counting, so that
        // `forget_receiver` cannot remove the series in between.
        let mut receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let series = match receivers.get_mut(key) {
            Some(series) => series,
            None => receivers.entry(key.clone()).or_default(),
        };
        let receiver_labels = || ReceiverLabels {
            namespace: key.namespace.clone(),
            name: key.name.clone(),
            r#type: receiver_type.to_owned(),
        };
        let durations = match series
            .durations
            .iter()
            .position(|(t, _)| t == receiver_type)
        {
            Some(at) => &series.durations[at].1,
            None => {
                let histogram = self.durations.get_or_create_owned(&receiver_labels());
                series.durations.push((receiver_type.to_owned(), histogram));
                &series.durations[series.durations.len() - 1].1
            }
        };
        durations.observe(elapsed.as_secs_f64());
        let requests = series
            .requests
            .iter()
            .position(|((t, c), _)| *c == code && t == receiver_type);
        match requests {
            Some(at) => {
                series.requests[at].1.inc();
            }
            None => {
                let ReceiverLabels {
                    namespace,
                    name,
                    r#type,
                } = receiver_labels();
                let counter = self.requests.get_or_create_owned(&RequestLabels {
                    namespace,
                    name,
                    r#type,
                    code,
                });
                counter.inc();
                series
                    .requests
                    .push(((receiver_type.to_owned(), code), counter));
            }
        }
    }

    /// Removes the series of the Receiver `key` (deleted, or no longer
    /// watched), so that deleted Receivers leave none behind.
    pub fn forget_receiver(&self, key: &ReceiverKey) {
        let mut receivers = self
            .receivers
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(series) = receivers.remove(key) else {
            return;
        };
        for (r#type, _) in series.durations {
            self.durations.remove(&ReceiverLabels {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                r#type,
            });
        }
        for ((r#type, code), _) in series.requests {
            self.requests.remove(&RequestLabels {
                namespace: key.namespace.clone(),
                name: key.name.clone(),
                r#type,
                code,
            });
        }
    }

    /// Counts a request whose path leads to no Receiver.
    pub fn observe_unmatched(&self, code: u16) {
        self.unmatched.get_or_create(&CodeLabels { code }).inc();
    }

    /// A webhook request is being handled until the guard is dropped.
    pub(crate) fn request_in_flight(&self) -> InFlight {
        self.webhook_inflight.inc();
        InFlight(self.webhook_inflight.clone())
    }

    /// Counts an answer of the webhook server, as notification-controller's
    /// HTTP middleware does.
    pub(crate) fn observe_http(
        &self,
        method: HttpMethod,
        code: u16,
        body_bytes: u64,
        elapsed: Duration,
    ) {
        let observe = |series: &HttpSeries| {
            series.durations.observe(elapsed.as_secs_f64());
            // Bytes to f64: exact below 2^53.
            #[allow(clippy::cast_precision_loss)]
            series.sizes.observe(body_bytes as f64);
        };
        let found = |all: &[HttpSeries]| {
            all.iter()
                .position(|series| series.code == code && series.method == method)
        };
        let known = self
            .http_series
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = found(&known) {
            return observe(&known[at]);
        }
        drop(known);
        let mut known = self
            .http_series
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let at = found(&known).unwrap_or_else(|| {
            let labels = HttpLabels {
                service: "",
                handler: HANDLER,
                method,
                code,
            };
            known.push(HttpSeries {
                method,
                code,
                durations: self.http_durations.get_or_create_owned(&labels),
                sizes: self.http_sizes.get_or_create_owned(&labels),
            });
            known.len() - 1
        });
        observe(&known[at]);
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

/// A request counted in `gotk_receiver_http_requests_inflight` until
/// dropped.
pub(crate) struct InFlight(Gauge);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl ConnectionObserver for Metrics {
    fn open_changed(&self, delta: i64) {
        self.open_connections.inc_by(delta);
    }

    fn closed(&self, reason: CloseReason) {
        self.closed_connections
            .get_or_create(&ReasonLabels {
                reason: reason.as_str(),
            })
            .inc();
    }

    fn head_refused(&self, code: u16) {
        // No handler ran, so no time was spent answering: the head never
        // became a request.
        self.observe_http(HttpMethod::Unknown, code, 0, Duration::ZERO);
    }
}
