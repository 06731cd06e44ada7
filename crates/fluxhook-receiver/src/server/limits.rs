//! What protects the server from abusive or broken clients: connection
//! settings and request layers, so the handler sees only requests that fit.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::HttpBody;
use axum::extract::{ConnectInfo, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::FutureExt as _;
use futures::future::Either;
use http_body_util::BodyExt;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tower::ServiceExt;

use super::connection::{
    CloseReason, Connection, ConnectionHandle, ConnectionObserver, HandlingGuard, Linger,
    TrackedIo, Tracker,
};

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
    /// Requests handled at once, once their bodies are in; more are
    /// answered 503 at once rather than queued.
    pub max_concurrent_requests: usize,
    /// Connections open at once. At the limit a new connection is not kept
    /// waiting: it takes the place of a connection that is lingering after
    /// its answer, or else of the one that has waited longest for its
    /// request (head or body still arriving, or idle between requests)
    /// among those of the address holding the most such connections. A
    /// connection whose request is being handled keeps its place.
    pub max_connections: usize,
    /// Bytes of requests still arriving (heads and bodies), over all
    /// connections; past it, connections are evicted as above until they
    /// fit.
    pub max_unfinished_bytes: usize,
    /// After an answer that closes the connection, at most this many bytes
    /// the client still sends (the rest of a refused body) are read and
    /// discarded, so that closing does not reset the connection before the
    /// client has read the answer.
    pub max_drain_bytes: usize,
    /// ... and for at most this long.
    pub drain_timeout: Duration,
    /// How long a delivery may wait on the Kubernetes API (selecting its
    /// objects and patching them, retries and queues included); past it the
    /// requests still going are dropped and the delivery is answered 500,
    /// so the sender hears of the failure before it stops waiting (GitHub
    /// and GitLab.com: 10 s) and may deliver again. Each API request has
    /// its own shorter deadline too ([`fluxhook_trigger::BoundedRetry`]);
    /// this bounds a delivery that makes several.
    pub reconcile_timeout: Duration,
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
            max_unfinished_bytes: 64 * 1024 * 1024,
            max_drain_bytes: 8 * 1024 * 1024,
            drain_timeout: Duration::from_secs(5),
            reconcile_timeout: Duration::from_secs(9),
            shutdown_grace: Duration::from_secs(30),
        }
    }
}

/// What [`serve`] serves: a router (`App::from(router)`), or the webhook
/// server's routes themselves ([`ReceiverServer::app`]) with the metrics that
/// count its connections and the request heads refused before they reach
/// the routes.
///
/// [`ReceiverServer::app`]: super::ReceiverServer::app
pub struct App {
    pub(super) routes: Routes,
    pub(super) observer: Option<Arc<dyn ConnectionObserver>>,
}

/// What answers the requests of a connection.
#[derive(Clone)]
pub(super) enum Routes {
    /// Any router.
    Router(Router),
    /// The webhook routes, without a router in front of them.
    Hooks(super::Hooks),
}

impl Routes {
    /// The answer to `request`.
    fn answer(
        &self,
        request: Request<hyper::body::Incoming>,
    ) -> impl Future<Output = Result<Response, Infallible>> + Send + use<> {
        match self {
            Self::Router(router) => Either::Left(router.clone().oneshot(request)),
            Self::Hooks(hooks) => Either::Right(hooks.answer(request).map(Ok)),
        }
    }
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App")
            .field("observed", &self.observer.is_some())
            .finish_non_exhaustive()
    }
}

impl From<Router> for App {
    fn from(router: Router) -> Self {
        Self {
            routes: Routes::Router(router),
            observer: None,
        }
    }
}

/// Serves `app` on `listener` over HTTP/1.1 with the connection limits
/// of `limits` (head size and count, head read time, open connections and
/// their unfinished bytes, the lingering close), until `shutdown`
/// completes. Then it stops accepting, and waits for the requests in
/// flight to be answered, at most `limits.shutdown_grace`:
///
/// - the connections already made but not yet accepted (the listen
///   backlog) are accepted still, rather than reset when the listener
///   closes;
/// - a connection idle between requests is closed at once;
/// - a connection that has not sent its first request head yet, or is
///   partway through its next one, is given until that head arrives (or its
///   head read time runs out), then answered with `Connection: close`;
/// - a request in flight is answered, with `Connection: close`.
///
/// That is Go's `Server.Shutdown`, which notification-controller's server
/// uses, except that Go gives a new connection 5 s and closes one partway
/// through its next head (net/http `server.go`, `closeIdleConns`: only
/// `StateNew` connections are spared, for 5 s), and resets the backlog.
///
/// The router's own layers apply as they are: [`ReceiverServer::router`]
/// has the request limits. The handler can read the client's address as
/// [`ConnectInfo<SocketAddr>`].
///
/// [`ReceiverServer::router`]: super::ReceiverServer::router
pub async fn serve(
    listener: TcpListener,
    app: impl Into<App>,
    limits: &Limits,
    shutdown: impl Future<Output = ()> + Send,
) -> io::Result<()> {
    let App { routes, observer } = app.into();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_headers(limits.max_headers)
        .max_header_size(limits.max_header_bytes);
    let server = Server {
        routes,
        http,
        linger: Linger {
            max_bytes: limits.max_drain_bytes,
            timeout: limits.drain_timeout,
        },
        tracker: Arc::new(Tracker::new(limits, observer.clone())),
        observer,
        stopping: watch::channel(false).0,
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => server.spawn_connection(stream, peer),
            Err(error) if is_out_of_descriptors(&error) => {
                // Full in another way: make room as for a new connection.
                if !server.tracker.evict_one_and_wait(DESCRIPTOR_WAIT).await {
                    tracing::warn!(%error, "accepting a connection failed; none can be evicted");
                }
            }
            Err(error) => {
                // A connection reset before it was accepted: not the
                // listener's end.
                tracing::debug!(%error, "accepting a connection failed");
            }
        }
    }
    server.accept_backlog(listener);
    server.stopping.send_replace(true);
    if tokio::time::timeout(limits.shutdown_grace, server.stopping.closed())
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

/// What the accept loop of [`serve`] hands each connection.
struct Server {
    routes: Routes,
    http: http1::Builder,
    linger: Linger,
    tracker: Arc<Tracker>,
    observer: Option<Arc<dyn ConnectionObserver>>,
    /// `true` once the server is shutting down; every connection's task
    /// holds a receiver, so all are done when none is left.
    stopping: watch::Sender<bool>,
}

impl Server {
    /// Serves the connection `stream` from `peer` on a task of its own, if
    /// the tracker admits it.
    fn spawn_connection(&self, stream: TcpStream, peer: SocketAddr) {
        let Some(registration) = self.tracker.admit(&peer) else {
            tracing::warn!(
                %peer,
                "refusing a connection: every connection has a request being handled"
            );
            return;
        };
        let connection = Arc::clone(registration.connection());
        let handle = ConnectionHandle::new(&registration).with_peer(&peer);
        let routes = self.routes.clone();
        let service = service_fn(move |mut request: Request<hyper::body::Incoming>| {
            handle.head_received();
            let extensions = request.extensions_mut();
            extensions.insert(ConnectInfo(peer));
            extensions.insert(handle.clone());
            routes.answer(request)
        });
        let io = TokioIo::new(TrackedIo::new(stream, &registration, self.linger));
        let served = self.http.serve_connection(io, service);
        let observer = self.observer.clone();
        let stopping = self.stopping.subscribe();
        tokio::spawn(async move {
            let outcome = tokio::select! {
                outcome = until_served(served, &connection, stopping) => outcome,
                () = connection.evicted() => {
                    tracing::debug!(%peer, "connection evicted");
                    return;
                }
            };
            if let Err(error) = outcome {
                ended_with(&error, &peer, registration.tracker(), observer.as_deref());
            }
            drop(registration);
        });
    }

    /// Serves the connections waiting in the listen backlog, which closing
    /// the listener would reset: their clients have sent, or are sending,
    /// a request. Accepts until the backlog is empty, without waiting.
    fn accept_backlog(&self, listener: TcpListener) {
        // The standard listener accepts with a system call now, whatever
        // the runtime last heard of the socket's readiness.
        let listener = match listener.into_std() {
            Ok(listener) => listener,
            Err(error) => {
                tracing::debug!(%error, "the listen backlog could not be read");
                return;
            }
        };
        loop {
            match listener.accept() {
                Ok((stream, peer)) => {
                    let stream = stream
                        .set_nonblocking(true)
                        .and_then(|()| TcpStream::from_std(stream));
                    match stream {
                        Ok(stream) => self.spawn_connection(stream, peer),
                        Err(error) => tracing::debug!(%error, "accepting a connection failed"),
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if is_out_of_descriptors(&error) => {
                    tracing::warn!(%error, "connections left in the listen backlog at shutdown");
                    return;
                }
                Err(error) => tracing::debug!(%error, "accepting a connection failed"),
            }
        }
    }
}

/// Drives the HTTP connection `served` to its end. Once `stopping` turns
/// `true`, the connection stops keeping alive as soon as it owes no request
/// head ([`Connection::owes_no_head`]): see [`serve`].
async fn until_served<C>(
    served: C,
    connection: &Connection,
    mut stopping: watch::Receiver<bool>,
) -> Result<(), hyper::Error>
where
    C: GracefulConnection<Error = hyper::Error>,
{
    let mut served = std::pin::pin!(served);
    let drain = async {
        // The server gone without saying (its future dropped) stops too.
        let _ = stopping.wait_for(|stopping| *stopping).await;
        connection.owes_no_head().await;
    };
    let mut drain = std::pin::pin!(drain);
    let mut draining = false;
    loop {
        tokio::select! {
            outcome = served.as_mut() => return outcome,
            () = &mut drain, if !draining => {
                draining = true;
                served.as_mut().graceful_shutdown();
            }
        }
    }
}

/// How long the accept loop waits for an evicted connection to give back
/// its file descriptor.
const DESCRIPTOR_WAIT: Duration = Duration::from_millis(100);

/// `EMFILE` or `ENFILE`: the process or the system is out of file
/// descriptors.
fn is_out_of_descriptors(error: &io::Error) -> bool {
    // Linux, the BSDs and macOS agree on both numbers.
    const ENFILE: i32 = 23;
    const EMFILE: i32 = 24;
    matches!(error.raw_os_error(), Some(ENFILE | EMFILE))
}

/// Counts what a connection that ended with `error` was answered, if
/// anything: hyper answers a request head it cannot read itself.
fn ended_with(
    error: &hyper::Error,
    peer: &SocketAddr,
    tracker: &Tracker,
    observer: Option<&dyn ConnectionObserver>,
) {
    if error.is_timeout() {
        tracing::debug!(%peer, "closing a connection: no request head in time");
        tracker.observe_closed(CloseReason::HeadTimeout);
        return;
    }
    match automatic_answer(error) {
        Some(code) => {
            tracing::info!(%peer, code, %error, "refused a request head");
            if let Some(observer) = observer {
                observer.head_refused(code);
            }
        }
        None => tracing::debug!(%peer, %error, "connection ended with an error"),
    }
}

/// The status hyper answered for a head it could not read, as its
/// `Server::on_error` decides (hyper 1.x, `src/proto/h1/role.rs`): 431 for
/// a head over the limits, 414 for a URI over 64 KiB, 400 for a malformed
/// request line or header; nothing for an HTTP/2 preface.
fn automatic_answer(error: &hyper::Error) -> Option<u16> {
    if !error.is_parse() || error.is_parse_version_h2() {
        return None;
    }
    if error.is_parse_too_large() {
        // hyper tells the two apart only in its message.
        return Some(if error.to_string().contains("URI too long") {
            414
        } else {
            431
        });
    }
    Some(400)
}

/// Answers 503 for a request past the bound on requests handled at once.
pub(super) fn overloaded() -> Response {
    // Worded as tower's load shedder worded it (`Overloaded`).
    let error = "service overloaded";
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

/// Reads the whole body of the request of `parts` before the handler runs,
/// within `max_body_bytes` (413) and `body_read_timeout` (408); the answer
/// when it cannot. Once the body is in, the request is complete: its
/// connection is no longer evictable until the guard returned is dropped,
/// when it is answered.
pub(super) async fn read_body<B>(
    limits: BodyLimits,
    parts: &Parts,
    body: B,
) -> Result<(Bytes, Option<HandlingGuard>), Response>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    // A Content-Length over the limit is refused before anything is read
    // (and before hyper answers `Expect: 100-continue`, so the client need
    // not send the body at all).
    let declared = body.size_hint().lower();
    if usize::try_from(declared).map_or(true, |length| length > limits.max_bytes) {
        return Err(too_large(limits));
    }
    let read = tokio::time::timeout(limits.read_timeout, collect(body, limits.max_bytes)).await;
    match read {
        Ok(Ok(bytes)) => {
            let connection = parts.extensions.get::<ConnectionHandle>();
            Ok((bytes, connection.map(ConnectionHandle::handling)))
        }
        Ok(Err(BodyError::TooLarge)) => Err(too_large(limits)),
        Ok(Err(BodyError::Read(error))) => {
            tracing::warn!(%error, "reading the request body failed");
            Err((StatusCode::BAD_REQUEST, "unable to read the request body\n").into_response())
        }
        Err(_) => {
            tracing::warn!(
                timeout = ?limits.read_timeout,
                "refusing a request: the body was not received in time"
            );
            Err((
                StatusCode::REQUEST_TIMEOUT,
                [(header::CONNECTION, "close")],
                "request body not received in time\n",
            )
                .into_response())
        }
    }
}

enum BodyError {
    TooLarge,
    Read(axum::Error),
}

/// The body, at most `max_bytes` of it. A body that comes in one piece
/// (most deliveries) is kept as hyper read it, without a copy.
async fn collect<B>(body: B, max_bytes: usize) -> Result<Bytes, BodyError>
where
    B: HttpBody<Data = Bytes>,
    B::Error: Into<axum::BoxError>,
{
    let mut body = std::pin::pin!(body);
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| BodyError::Read(axum::Error::new(error)))?;
        let Ok(data) = frame.into_data() else {
            // Trailers are not part of the payload.
            continue;
        };
        total = total.saturating_add(data.len());
        if total > max_bytes {
            return Err(BodyError::TooLarge);
        }
        match (&mut joined, first.take()) {
            (Some(joined), _) => joined.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(first)) => {
                let expected = usize::try_from(body.size_hint().lower()).unwrap_or(0);
                let capacity = total.saturating_add(expected).min(max_bytes);
                let mut buffer = BytesMut::with_capacity(capacity);
                buffer.extend_from_slice(&first);
                buffer.extend_from_slice(&data);
                joined = Some(buffer);
            }
        }
    }
    Ok(joined.map_or_else(|| first.unwrap_or_default(), BytesMut::freeze))
}

fn too_large(limits: BodyLimits) -> Response {
    tracing::warn!(
        limit = limits.max_bytes,
        "refusing a request: the body exceeds the maximum size"
    );
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        // The rest of the body is not read: the connection cannot carry
        // another request (see `connection`'s lingering close).
        [(header::CONNECTION, "close")],
        "request body too large\n",
    )
        .into_response()
}
