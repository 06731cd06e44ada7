//! The Receiver's fields on the log lines of a request.
//!
//! Every line logged while a request is handled names its Receiver (`name`, `namespace`,
//! `type`) and the client's address (`peer`) as fields of the line itself, written by
//! [`request_log!`]: any subscriber sees them, and nothing is recorded for a request until a
//! line is written. A tracing span per request did the same at a higher price on every
//! delivery (created, entered on each poll, closed, and its fields copied into every line: a
//! third of the logging's instructions, see `docs/performance.md`). The span remains at debug
//! level, when debug lines are on, so that the lines of the libraries a request calls (the
//! trigger's retries) name the Receiver too.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::ConnectInfo;

use super::connection::ConnectionHandle;
use crate::index::EndpointState;

/// The request being handled: its Receiver and client.
pub(super) struct RequestLog {
    pub(super) state: Arc<EndpointState>,
    /// The client's address, written as text once per connection.
    pub(super) peer: Option<Arc<str>>,
}

tokio::task_local! {
    /// The request the current task handles, for [`request_log!`].
    pub(super) static REQUEST: RequestLog;
}

impl RequestLog {
    pub(super) fn name(&self) -> &str {
        &self.state.key().name
    }

    pub(super) fn namespace(&self) -> &str {
        &self.state.key().namespace
    }

    pub(super) fn receiver_type(&self) -> &str {
        receiver_type(&self.state)
    }
}

/// The client's address of a request with `extensions`: the text its
/// connection keeps ([`ConnectionHandle::peer`]), else (a router served
/// another way) its `ConnectInfo` written out.
pub(super) fn peer_of(extensions: &http::Extensions) -> Option<Arc<str>> {
    if let Some(peer) = extensions
        .get::<ConnectionHandle>()
        .and_then(ConnectionHandle::peer)
    {
        return Some(Arc::clone(peer));
    }
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(peer)| peer.to_string().into())
}

/// The type of the Receiver in `state`; empty when it cannot be served.
pub(super) fn receiver_type(state: &EndpointState) -> &str {
    match state {
        EndpointState::Ready(endpoint) | EndpointState::Suspended(endpoint) => {
            endpoint.receiver_type.as_str()
        }
        EndpointState::NotReady { .. } => "",
    }
}

/// `request_log!(info!(fields..., "message", args...))`: the tracing event, with the fields of
/// the request being handled ([`REQUEST`]) first, when there is one.
macro_rules! request_log {
    ($level:ident!($($event:tt)+)) => {
        if $crate::server::log::REQUEST
            .try_with(|request| {
                tracing::$level!(
                    name = request.name(),
                    namespace = request.namespace(),
                    "type" = request.receiver_type(),
                    peer = request.peer.as_deref(),
                    $($event)+
                )
            })
            .is_err()
        {
            tracing::$level!($($event)+)
        }
    };
}
