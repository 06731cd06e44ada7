//! The webhook HTTP server: `POST /hook/<digest>` answered as Flux's
//! notification-controller answers it.
//!
//! A request finds its Receiver in the [`EndpointIndex`] by the digest of its
//! path, in constant time. Then, as in Flux:
//!
//! | answer | when |
//! | --- | --- |
//! | 404 | no Receiver is served at the path |
//! | 503 | the Receiver is suspended or not ready (e.g. its Secret is gone), or the server is at its limit of requests in flight |
//! | 400 | the signature, token or ID token does not verify, the OIDC claims fail the provider's rules, the payload cannot be read, or the event is not in `spec.events` |
//! | 413 | the body is over 3 MiB |
//! | 408 | the body did not arrive in time |
//! | 500 | asking Flux to reconcile one of the selected objects failed (or a CEL filter could not be evaluated for it) |
//! | 200 | every selected object that passed the filters was asked to reconcile |
//! | 405 | a method other than `POST` |
//!
//! Each Receiver type authenticates as in Flux: `generic`, `dockerhub`,
//! `quay`, `acr` and `cdevents` by the path alone; `generic-hmac`, `github`
//! (and Gitea, Forgejo, Gogs deliveries), `gitlab`, `bitbucket`, `harbor` and
//! `nexus` by a signature or token made with the Secret's `token`; `gcr` by a
//! Google-signed ID token for the Secret's `audience` and `email`;
//! `generic-oidc` by an ID token from one of `spec.oidcProviders`, whose
//! claims must pass the provider's CEL rules. The event type (`github`,
//! `gitlab`, `bitbucket`, `cdevents`) must be one of `spec.events`,
//! case-insensitively, when those are set. Payloads are read where Flux reads
//! them (registries, `gcr`, `cdevents`), and a body that is not theirs is
//! refused; for Git hosts only the event header counts.
//!
//! The selected objects are asked to reconcile through a
//! [`Trigger`], which coalesces concurrent requests per object. When the
//! Receiver has CEL filters (`spec.resourceFilter`,
//! `spec.resources[].filter`), each selected object is read first and only
//! those for which every filter holds are asked, with `req` the JSON body
//! (for `gcr`, the notification unwrapped from Pub/Sub; `{}` when the body is
//! not `application/json`), `res` the object's `apiVersion`, `kind` and
//! `metadata`, and, for `generic-oidc`, `claims` the verified token's claims.
//!
//! Protection against abusive or broken clients sits in layers and
//! connection settings ([`Limits`]), not in the handler: request head size
//! and header count, a time limit to receive the head and another for the
//! body, a body size limit, a bound on requests handled at once (past it:
//! 503 at once), and a bound on open connections and on the bytes of
//! requests still arriving that evicts slow or idle connections rather than
//! keeping new ones waiting. A connection closed after an answer lingers to
//! read what the client still sends (within bounds), so that the client
//! reads the answer (a 413, say) instead of a reset. Responses are short
//! fixed texts; the reasons go to the log, on lines naming the Receiver,
//! never with a token, a signature or the webhook path. Every answer is
//! counted in [`Metrics`] as notification-controller counts its own.
//!
//! # Example
//!
//! A `generic` Receiver with nothing to reconcile, served in process:
//!
//! ```
//! use std::collections::BTreeMap;
//! use std::sync::Arc;
//! use fluxhook_receiver::server::ReceiverServer;
//! use fluxhook_receiver::{Endpoint, EndpointIndex, EndpointState};
//! use fluxhook_oidc::{HttpKeySource, OidcVerifier};
//! use fluxhook_trigger::Trigger;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let receiver: fluxhook_api::Receiver = serde_json::from_value(serde_json::json!({
//!     "apiVersion": "notification.toolkit.fluxcd.io/v1",
//!     "kind": "Receiver",
//!     "metadata": { "name": "generic", "namespace": "flux-system" },
//!     "spec": { "type": "generic", "secretRef": { "name": "token" }, "resources": [] }
//! }))?;
//! let secret = BTreeMap::from([("token".to_string(), b"s3cr3t".to_vec())]);
//! let endpoint = Endpoint::compile(&receiver, Some(&secret))?;
//! let path = endpoint.webhook_path().as_str().to_owned();
//! let index = Arc::new(EndpointIndex::default());
//! index.publish(EndpointState::Ready(endpoint.into()));
//!
//! // Nothing here reaches the API server: there is nothing to reconcile.
//! let config = kube::Config::new("http://127.0.0.1:9".parse()?);
//! let trigger = Trigger::new(kube::Client::try_from(config)?);
//! let verifier = Arc::new(OidcVerifier::new(Arc::new(HttpKeySource::new()?)));
//! let server = ReceiverServer::new(index, trigger, verifier);
//!
//! let post = |uri: &str| {
//!     http::Request::post(uri).body(axum::body::Body::from("{}")).unwrap()
//! };
//! let ok = server.router().oneshot(post(&path)).await?;
//! assert_eq!(ok.status(), 200);
//! let unknown = server.router().oneshot(post("/hook/0123")).await?;
//! assert_eq!(unknown.status(), 404);
//! # Ok(())
//! # }
//! ```
//!
//! In production, [`ReceiverServer::serve`] accepts connections on a
//! listener with the limits applied, until a shutdown signal, then lets the
//! requests in flight finish.

#[macro_use]
mod log;
mod annotate;
mod auth;
mod connection;
mod handler;
mod limits;
mod targeting;

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::Request;
use axum::http::Method;
use axum::response::Response;
use fluxhook_api::WEBHOOK_PATH_PREFIX;
use fluxhook_oidc::OidcVerifier;
use fluxhook_payload::Parser;
use fluxhook_trigger::Trigger;
use futures::future::BoxFuture;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

pub(crate) use connection::{CloseReason, ConnectionObserver};
pub use limits::{App, Limits, serve};

use crate::index::EndpointIndex;
use crate::metrics::{HttpMethod, Metrics};

/// What every request handler shares.
struct Shared {
    index: Arc<EndpointIndex>,
    trigger: Trigger,
    verifier: Arc<OidcVerifier>,
    metrics: Arc<Metrics>,
    parser: Parser,
    /// [`Limits::reconcile_timeout`].
    reconcile_timeout: std::time::Duration,
}

/// The webhook server of fluxhook: Flux's Receivers served at
/// `/hook/<digest>`. See the [module documentation](self).
pub struct ReceiverServer {
    index: Arc<EndpointIndex>,
    trigger: Trigger,
    verifier: Arc<OidcVerifier>,
    metrics: Arc<Metrics>,
    limits: Limits,
    /// The requests being handled, shared by every router of this server.
    handling: Arc<Semaphore>,
}

impl std::fmt::Debug for ReceiverServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReceiverServer")
            .field("endpoints", &self.index.len())
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

impl ReceiverServer {
    /// A server answering from the endpoints in `index`, asking Flux to
    /// reconcile through `trigger`, and verifying `gcr` and `generic-oidc`
    /// ID tokens with `verifier`; with its own [`Metrics`] and the default
    /// [`Limits`].
    pub fn new(index: Arc<EndpointIndex>, trigger: Trigger, verifier: Arc<OidcVerifier>) -> Self {
        Self {
            index,
            trigger,
            verifier,
            metrics: Arc::new(Metrics::new()),
            handling: Arc::new(Semaphore::new(Limits::default().max_concurrent_requests)),
            limits: Limits::default(),
        }
    }

    /// Records requests in `metrics` (e.g. those a metrics endpoint serves).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    /// Applies `limits` instead of the defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.handling = Arc::new(Semaphore::new(limits.max_concurrent_requests));
        self.limits = limits;
        self
    }

    /// The metrics requests are recorded in.
    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// The limits applied.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The routes with their request limits, in this order: every answer
    /// counted in the metrics; the body read within its limit and time; then
    /// `POST /hook/<digest>` (any other path: 404; another method: 405) and,
    /// once the request is complete, the bound on requests handled at once
    /// (shared by every router of this server; past it: 503 at once). The
    /// connection limits (head size, head read time, connections) are
    /// [`serve`]'s.
    pub fn router(&self) -> Router {
        // One service rather than a stack of layers and a route: each layer
        // boxed the request and its future again, on every delivery (see
        // docs/performance.md).
        Router::new().fallback_service(self.hooks())
    }

    /// The service of [`router`](Self::router), without the router.
    fn hooks(&self) -> Hooks {
        let shared = Arc::new(Shared {
            index: Arc::clone(&self.index),
            trigger: self.trigger.clone(),
            verifier: Arc::clone(&self.verifier),
            metrics: Arc::clone(&self.metrics),
            parser: Parser::new().with_max_body_bytes(self.limits.max_body_bytes),
            reconcile_timeout: self.limits.reconcile_timeout,
        });
        Hooks {
            shared,
            body_limits: limits::BodyLimits::from(&self.limits),
            handling: Arc::clone(&self.handling),
        }
    }

    /// Serves the webhook routes ([`app`](Self::app)) on `listener` with the limits applied,
    /// until `shutdown` completes; then stops accepting connections and
    /// waits for the requests in flight, at most
    /// [`Limits::shutdown_grace`].
    pub async fn serve(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        serve(listener, self.app(), &self.limits, shutdown).await
    }

    /// The routes of [`router`](Self::router), with this server's metrics
    /// counting its connections and the request heads refused before they
    /// reach the routes, for [`serve`]. The routes are served without the
    /// router in front of them: it cost each delivery its path lookup, a
    /// boxed body and a boxed service call (docs/performance.md).
    pub fn app(&self) -> App {
        let observer: Arc<dyn ConnectionObserver> = self.metrics.clone();
        App {
            routes: limits::Routes::Hooks(self.hooks()),
            observer: Some(observer),
        }
    }
}

/// The webhook routes: see [`ReceiverServer::router`].
#[derive(Clone)]
pub(super) struct Hooks {
    shared: Arc<Shared>,
    body_limits: limits::BodyLimits,
    /// The requests being handled.
    handling: Arc<Semaphore>,
}

impl tower::Service<Request> for Hooks {
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let answer = self.answer(request);
        Box::pin(async move { Ok(answer.await) })
    }
}

impl Hooks {
    /// The answer to `request`, whatever its body's type.
    pub(super) fn answer<B>(
        &self,
        request: http::Request<B>,
    ) -> impl Future<Output = Response> + use<B>
    where
        B: HttpBody<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<axum::BoxError>,
    {
        let hooks = self.clone();
        async move { hooks.count_answer(request).await }
    }

    /// Counts every answer, as notification-controller's HTTP middleware
    /// counts its receiver server's.
    async fn count_answer<B>(&self, request: http::Request<B>) -> Response
    where
        B: HttpBody<Data = bytes::Bytes>,
        B::Error: Into<axum::BoxError>,
    {
        let metrics = &self.shared.metrics;
        let method = HttpMethod::of(request.method());
        let started = Instant::now();
        let in_flight = metrics.request_in_flight();
        let response = self.read_body(request).await;
        drop(in_flight);
        // The answers are whole bodies of known length.
        let body_bytes = response.body().size_hint().exact().unwrap_or(0);
        metrics.observe_http(
            method,
            response.status().as_u16(),
            body_bytes,
            started.elapsed(),
        );
        response
    }

    /// Reads the whole body within its limits ([`limits::read_body`]), then
    /// routes the request.
    async fn read_body<B>(&self, request: http::Request<B>) -> Response
    where
        B: HttpBody<Data = bytes::Bytes>,
        B::Error: Into<axum::BoxError>,
    {
        let (parts, body) = request.into_parts();
        match limits::read_body(self.body_limits, &parts, body).await {
            Ok((body, _handling)) => self.route(&parts, body).await,
            Err(refused) => refused,
        }
    }

    /// `POST /hook/<digest>`, within the bound on requests handled at once.
    async fn route(&self, parts: &http::request::Parts, body: bytes::Bytes) -> Response {
        // As the route `/hook/{digest}` matched: one segment, not empty.
        let digest = parts.uri.path().strip_prefix(WEBHOOK_PATH_PREFIX);
        if digest.is_none_or(|digest| digest.is_empty() || digest.contains('/')) {
            return handler::not_found_for(&self.shared);
        }
        if parts.method != Method::POST {
            return handler::method_not_allowed();
        }
        let Ok(_permit) = Arc::clone(&self.handling).try_acquire_owned() else {
            return limits::overloaded();
        };
        handler::receive(
            &self.shared,
            log::peer_of(&parts.extensions),
            &parts.uri,
            &parts.headers,
            body,
        )
        .await
    }
}
