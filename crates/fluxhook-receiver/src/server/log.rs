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

use crate::index::EndpointState;

/// The request being handled: its Receiver and client.
pub(super) struct RequestLog {
    pub(super) state: Arc<EndpointState>,
    pub(super) peer: Option<SocketAddr>,
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
                    peer = request.peer.map(tracing::field::display),
                    $($event)+
                )
            })
            .is_err()
        {
            tracing::$level!($($event)+)
        }
    };
}
