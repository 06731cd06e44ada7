//! `POST /hook/<digest>`: from the path to the Receiver, then to the answer.

use std::sync::Arc;
use std::time::Instant;

use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use fluxhook_api::WEBHOOK_PATH_PREFIX;
use tracing::Instrument;

use super::Shared;
use super::annotate::{self, CelInputs};
use super::auth::{self, Rejection};
use super::log::{REQUEST, RequestLog};
use super::targeting;
use crate::endpoint::Endpoint;
use crate::index::EndpointState;

/// How a request is answered. The bodies are fixed texts: the reasons go to
/// the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reply {
    /// 200: every selected object was asked to reconcile.
    Accepted,
    /// 404: no Receiver at this path.
    NotFound,
    /// 503: the Receiver is suspended.
    Suspended,
    /// 503: the Receiver cannot be served.
    NotReady,
    /// 400: the request is not genuine, or not one the Receiver handles.
    Invalid,
    /// 500: asking Flux to reconcile failed for some object.
    Failed,
}

impl Reply {
    fn status(self) -> StatusCode {
        match self {
            Reply::Accepted => StatusCode::OK,
            Reply::NotFound => StatusCode::NOT_FOUND,
            Reply::Suspended | Reply::NotReady => StatusCode::SERVICE_UNAVAILABLE,
            Reply::Invalid => StatusCode::BAD_REQUEST,
            Reply::Failed => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn text(self) -> &'static str {
        match self {
            Reply::Accepted => "reconciliation requested\n",
            Reply::NotFound => "not found\n",
            Reply::Suspended => "receiver is suspended\n",
            Reply::NotReady => "receiver is not ready\n",
            Reply::Invalid => "unable to validate payload\n",
            Reply::Failed => "unable to request reconciliation\n",
        }
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        (self.status(), self.text()).into_response()
    }
}

/// The webhook handler: the request from `peer` for `uri`, whose body has been read.
pub(super) async fn receive(
    shared: &Shared,
    peer: Option<Arc<str>>,
    uri: &Uri,
    headers: &HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    // The route guarantees the prefix; the digest is compared as sent, as
    // Flux compares the request URI with the Receiver's webhook path.
    let digest = uri
        .path()
        .strip_prefix(WEBHOOK_PATH_PREFIX)
        .unwrap_or_default();
    let Some(state) = shared.index.lookup(digest) else {
        return not_found_for(shared);
    };
    // The fields of the log contract: the Receiver's name, namespace and
    // type, and the answer's code (never the path, a token or a signature).
    let request = RequestLog {
        state: Arc::clone(&state),
        peer,
    };
    let (key, receiver_type) = (state.key(), super::log::receiver_type(&state));
    // For the lines of the libraries called, when debug lines are on (see `log`).
    let span = tracing::debug_span!(
        "webhook",
        name = %key.name,
        namespace = %key.namespace,
        "type" = receiver_type,
        peer = request.peer.as_deref(),
    );
    let peer = request.peer.clone();
    let reply = REQUEST
        .scope(request, answer(shared, &state, headers, &body))
        .instrument(span)
        .await;
    let code = reply.status().as_u16();
    tracing::info!(
        name = key.name.as_str(),
        namespace = key.namespace.as_str(),
        "type" = receiver_type,
        peer = peer.as_deref(),
        code,
        "webhook request answered"
    );
    shared
        .metrics
        .observe_request(key, receiver_type, code, started.elapsed());
    reply.into_response()
}

/// The answer to a request for the Receiver in `state`.
async fn answer(
    shared: &Shared,
    state: &EndpointState,
    headers: &HeaderMap,
    body: &Bytes,
) -> Reply {
    match state {
        EndpointState::Suspended(_) => {
            request_log!(error!("unable to process request: receiver is suspended"));
            Reply::Suspended
        }
        EndpointState::NotReady { message, .. } => {
            request_log!(
                error!(reason = %message, "unable to process request: receiver is not ready")
            );
            Reply::NotReady
        }
        EndpointState::Ready(endpoint) => match handle(shared, endpoint, headers, body).await {
            Ok(reply) => reply,
            Err(rejection) => {
                request_log!(error!(error = %rejection, "unable to validate payload"));
                Reply::Invalid
            }
        },
    }
}

/// Authenticates the request, then asks Flux to reconcile what the Receiver
/// selects.
async fn handle(
    shared: &Shared,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Reply, Rejection> {
    let verified =
        auth::authenticate(&shared.verifier, &shared.parser, endpoint, headers, body).await?;
    // `req` is built only for the filters that read it.
    let cel = if annotate::has_filters(endpoint) {
        Some(CelInputs::new(headers, body, &verified)?)
    } else {
        None
    };
    // The delivery, read only for payload-aware targeting.
    let delivery = targeting::delivery(&shared.parser, endpoint, headers, body);
    let requested = annotate::request_reconciliation(
        &shared.trigger,
        endpoint,
        cel.as_ref(),
        delivery.as_ref(),
    );
    Ok(
        match tokio::time::timeout(shared.reconcile_timeout, requested).await {
            Ok(true) => Reply::Accepted,
            Ok(false) => Reply::Failed,
            Err(_) => {
                request_log!(error!(
                    timeout = ?shared.reconcile_timeout,
                    "unable to request reconciliation: the Kubernetes API did not answer in time"
                ));
                Reply::Failed
            }
        },
    )
}

pub(super) fn not_found_for(shared: &Shared) -> Response {
    shared
        .metrics
        .observe_unmatched(Reply::NotFound.status().as_u16());
    Reply::NotFound.into_response()
}

/// A method other than `POST` on `/hook/<digest>`.
pub(super) fn method_not_allowed() -> Response {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        [(axum::http::header::ALLOW, "POST")],
        "method not allowed\n",
    )
        .into_response()
}
