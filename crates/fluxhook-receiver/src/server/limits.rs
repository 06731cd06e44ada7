//! What protects the server from abusive or broken clients: connection
//! settings and request layers, so the handler sees only requests that fit.

use std::error::Error as _;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, HttpBody};
use axum::extract::{ConnectInfo, Request};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http_body_util::LengthLimitError;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::{BoxError, ServiceExt};

/// The limits a server applies. The defaults are Flux's where Flux has one
/// (body, head size, read times).
///
/// ```
/// use std::time::Duration;
/// use fluxhook_receiver::server::Limits;
///
/// let limits = Limits { max_concurrent_requests: 16, ..Limits::default() };
/// assert_eq!(limits.max_body_bytes, 3 * 1024 * 1024);
/// assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// The largest request body, in bytes; a larger one is answered 413
    /// (at once when `Content-Length` says so). Flux: 3 MiB.
    pub max_body_bytes: usize,
    /// The most headers a request may have; past it: 431, and the
    /// connection is closed.
    pub max_headers: usize,
    /// The largest request head (request line and headers), in bytes; past
    /// it: 431, and the connection is closed. Flux: 256 KiB.
    pub max_header_bytes: usize,
    /// Time to receive a request head; past it the connection is closed.
    /// A connection kept alive is closed after as long without a new
    /// request. Flux: 10 s.
    pub header_read_timeout: Duration,
    /// Time to receive a body once the head is in; past it: 408. Flux
    /// allows 30 s for the whole request.
    pub body_read_timeout: Duration,
    /// Requests handled at once (the body read included); more are answered
    /// 503 at once rather than queued.
    pub max_concurrent_requests: usize,
    /// Connections open at once; more wait in the listen backlog.
    pub max_connections: usize,
    /// How long a shutdown waits for the requests in flight before it drops
    /// them.
    pub shutdown_grace: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_body_bytes: 3 * 1024 * 1024,
            max_headers: 100,
            max_header_bytes: 256 * 1024,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            max_concurrent_requests: 128,
            max_connections: 1024,
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` over HTTP/1.1 with the connection limits
/// of `limits` (head size and count, head read time, open connections),
/// until `shutdown` completes. Then it stops accepting, and waits for the
/// requests in flight to be answered, at most `limits.shutdown_grace`;
/// connections idle between requests are closed at once.
///
/// The router's own layers apply as they are: [`ReceiverServer::router`]
/// has the request limits. The handler can read the client's address as
/// [`ConnectInfo<SocketAddr>`].
///
/// [`ReceiverServer::router`]: super::ReceiverServer::router
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes);
    let graceful = GracefulShutdown::new();
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = accept(&listener, &connections) => accepted,
        };
        let (stream, peer, permit) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, or a connection reset before it
                // was accepted: not the listener's end.
                tracing::warn!(%error, "accepting a connection failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let service =
            router
                .clone()
                .map_request(move |mut request: Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    request
                });
        let connection =
            http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(limits.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            grace = ?limits.shutdown_grace,
            "requests still in flight at the end of the shutdown grace period were dropped"
        );
    }
    Ok(())
}

/// The next connection, once there is room for one.
async fn accept(
    listener: &TcpListener,
    connections: &Arc<Semaphore>,
) -> io::Result<(
    tokio::net::TcpStream,
    SocketAddr,
    tokio::sync::OwnedSemaphorePermit,
)> {
    let permit = Arc::clone(connections)
        .acquire_owned()
        .await
        .map_err(io::Error::other)?;
    let (stream, peer) = listener.accept().await?;
    Ok((stream, peer, permit))
}

/// Answers 503 for a request the load shedder refused.
pub(super) async fn overloaded(error: BoxError) -> Response {
    tracing::warn!(%error, "refusing a request: too many requests in flight");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        "too many requests in flight\n",
    )
        .into_response()
}

/// The body limits of [`read_body`].
#[derive(Debug, Clone, Copy)]
pub(super) struct BodyLimits {
    max_bytes: usize,
    read_timeout: Duration,
}

impl From<&Limits> for BodyLimits {
    fn from(limits: &Limits) -> Self {
        Self {
            max_bytes: limits.max_body_bytes,
            read_timeout: limits.body_read_timeout,
        }
    }
}

/// Middleware reading the whole body before the handler runs, within
/// `max_body_bytes` (413) and `body_read_timeout` (408).
pub(super) async fn read_body(
    axum::extract::State(limits): axum::extract::State<BodyLimits>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    // A Content-Length over the limit is refused before anything is read.
    if usize::try_from(body.size_hint().lower()).map_or(true, |length| length > limits.max_bytes) {
        return too_large(limits);
    }
    let read = tokio::time::timeout(
        limits.read_timeout,
        axum::body::to_bytes(body, limits.max_bytes),
    )
    .await;
    match read {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Ok(Err(error)) if is_length_limit(&error) => too_large(limits),
        Ok(Err(error)) => {
            tracing::warn!(%error, "reading the request body failed");
            (StatusCode::BAD_REQUEST, "unable to read the request body\n").into_response()
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?limits.read_timeout,
                "refusing a request: the body was not received in time"
            );
            (
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time\n",
            )
                .into_response()
        }
    }
}

fn too_large(limits: BodyLimits) -> Response {
    tracing::warn!(
        limit = limits.max_bytes,
        "refusing a request: the body exceeds the maximum size"
    );
    (StatusCode::PAYLOAD_TOO_LARGE, "request body too large\n").into_response()
}

fn is_length_limit(error: &axum::Error) -> bool {
    let mut source = error.source();
    while let Some(error) = source {
        if error.is::<LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
}
