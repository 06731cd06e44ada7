//! Who gets a connection when there are too many, and how a connection ends.
//!
//! A Git host opens a connection, sends one request at once and waits for
//! the answer. A slow or hostile client opens many and sends their heads a
//! byte at a time, or sends heads and bodies it never finishes. The server
//! must keep answering the first while the second holds what it can, with
//! memory bounded. So:
//!
//! - No connection waits for room: at [`Limits::max_connections`], a new
//!   connection makes room by evicting one whose request is unfinished (head
//!   or body still arriving), or which is idle between requests, or
//!   lingering after its answer ([`Tracker::admit`]).
//! - The victim is a lingering connection if there is one; otherwise the
//!   connection that has waited longest for its request, among those of the
//!   peer holding the most such connections (of peers holding as many, the
//!   one with the oldest). One address (an IPv6 /64)
//!   flooding the server evicts its own connections first; a Git host that
//!   sends its request at once is never the oldest of the biggest peer.
//! - The bytes of unfinished requests (heads and bodies as they arrive) are
//!   counted; past [`Limits::max_unfinished_bytes`] the same rule evicts
//!   until they fit, so heads up to 256 KiB on every connection cannot
//!   exhaust memory either. Except that the connection whose read went
//!   over goes first when it belongs to that biggest peer and its request
//!   is already over 32 KiB: a flood of big heads then costs the first
//!   reads of each new connection, not its whole head
//!   ([`Tracker::received`]).
//! - A connection whose request is complete and being handled is never
//!   evicted: the handlers in flight are bounded apart (503 past the bound).
//! - Running out of file descriptors is another kind of full: the accept
//!   loop evicts and tries again instead of sleeping.
//!
//! And when a connection ends after an answer, the client may still be
//! sending (a body the server refused with 413, a head it refused with
//! 431): closing a socket with unread data makes the kernel send a reset,
//! and the client may lose the answer. So the end is a lingering close:
//! flush, send FIN, then read and discard what comes, at most
//! [`Limits::max_drain_bytes`] for at most [`Limits::drain_timeout`],
//! before closing ([`TrackedIo`]). A slow or endless sender is still cut
//! off at those bounds.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Sleep;

use super::Limits;

/// The address a peer is counted under: an IPv4 address (also when it
/// reaches an IPv6 socket as `::ffff:a.b.c.d`), or the /64 of an IPv6
/// address, the block a single host or site usually holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) struct PeerKey(u128);

impl PeerKey {
    pub(super) fn of(peer: &SocketAddr) -> Self {
        match peer.ip().to_canonical() {
            IpAddr::V4(v4) => Self(u128::from(u32::from(v4))),
            // The high bit keeps IPv6 blocks apart from IPv4 addresses.
            IpAddr::V6(v6) => Self((u128::from(v6) >> 64) | (1 << 127)),
        }
    }
}

/// Where a connection stands. Changed only under the tracker's lock, then
/// the connection's (always in that order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    /// Waiting for a request, or receiving one, since this sequence number:
    /// evictable.
    Waiting(u64),
    /// Its request is complete and being handled: not evictable.
    Handling,
    /// Answered and closing, reading what the client still sends:
    /// evicted first.
    Lingering(u64),
    /// Evicted or closed: no longer counted.
    Gone,
}

/// One connection, as the tracker and its request see it.
#[derive(Debug)]
pub(super) struct Connection {
    peer: PeerKey,
    state: Mutex<ConnectionState>,
    evicted: Notify,
    /// Signalled when a request head has arrived whole.
    head_arrived: Notify,
}

#[derive(Debug)]
struct ConnectionState {
    slot: Slot,
    /// Bytes received for the request not yet complete; changed with the
    /// tracker's total under this lock, so the total never goes below zero.
    unfinished: usize,
    /// Request heads received whole on this connection.
    heads: u64,
    /// Whether the head of the request not yet answered is in.
    head_in: bool,
}

impl Connection {
    /// Completes when the connection is evicted; then its task drops it.
    pub(super) async fn evicted(&self) {
        self.evicted.notified().await;
    }

    /// Whether a request is still owed on this connection: it is new and
    /// has not sent a whole head yet, or part of its next head is in.
    /// Closing it for a shutdown now would lose that request.
    fn owes_a_head(&self) -> bool {
        let state = self.state();
        matches!(state.slot, Slot::Waiting(_))
            && !state.head_in
            && (state.heads == 0 || state.unfinished > 0)
    }

    /// Completes once the connection owes no request head
    /// ([`Connection::owes_a_head`]): at once for a connection idle between
    /// requests or with a request in flight. A head that never comes is cut
    /// off by the head read timeout, which ends the connection.
    pub(super) async fn owes_no_head(&self) {
        loop {
            let arrived = self.head_arrived.notified();
            let mut arrived = std::pin::pin!(arrived);
            arrived.as_mut().enable();
            if !self.owes_a_head() {
                return;
            }
            arrived.await;
        }
    }

    fn state(&self) -> MutexGuard<'_, ConnectionState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// What a server counts about its connections, for metrics.
pub(crate) trait ConnectionObserver: Send + Sync {
    /// The number of connections open changed by `delta`.
    fn open_changed(&self, delta: i64);
    /// A connection was closed early, for `reason`.
    fn closed(&self, reason: CloseReason);
    /// A request head was refused with `code` before it reached the router
    /// (hyper's own answers: 400, 414, 431).
    fn head_refused(&self, code: u16);
}

/// Why the server closed a connection before its client did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CloseReason {
    /// It was evicted to make room (connections, bytes or descriptors).
    Evicted,
    /// Its request head did not arrive in time.
    HeadTimeout,
    /// There was no room and nothing to evict.
    Refused,
}

impl CloseReason {
    /// The reason as a metric label.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            CloseReason::Evicted => "evicted",
            CloseReason::HeadTimeout => "head_timeout",
            CloseReason::Refused => "refused",
        }
    }
}

/// Bytes of an unfinished request past which, over the unfinished-bytes
/// budget, the connection reading it is evicted first if its peer holds the
/// most connections ([`Tracker::received`]). Above a Git host's usual
/// delivery (a GitHub push is a few KB, a pull request event about 25 KB),
/// so that a delivery through the same proxy as a flood is not the one cut.
const READER_FIRST_BYTES: usize = 32 * 1024;

/// The connections of one server: admission, eviction and byte accounting.
pub(super) struct Tracker {
    max_connections: usize,
    max_unfinished_bytes: usize,
    state: Mutex<State>,
    /// Bytes of unfinished requests over all connections.
    unfinished: AtomicUsize,
    /// Signalled when a connection's task lets it go.
    released: Notify,
    observer: Option<Arc<dyn ConnectionObserver>>,
}

#[derive(Default)]
struct State {
    open: usize,
    next_seq: u64,
    lingering: BTreeMap<u64, Arc<Connection>>,
    /// Evictable connections per peer, oldest first.
    waiting: HashMap<PeerKey, BTreeMap<u64, Arc<Connection>>>,
    /// Peers by rank: the most evictable connections last, and among peers
    /// with as many, the one with the oldest last.
    peers: BTreeSet<(Rank, PeerKey)>,
}

/// How a peer ranks for eviction: its number of evictable connections,
/// then the age of its oldest.
type Rank = (usize, Reverse<u64>);

fn rank(queue: &BTreeMap<u64, Arc<Connection>>) -> Option<Rank> {
    let (&oldest, _) = queue.first_key_value()?;
    Some((queue.len(), Reverse(oldest)))
}

impl State {
    fn next_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq
    }

    /// Changes the evictable connections of `peer` with `change`, keeping
    /// the peers' ranks in step.
    fn with_queue<T>(
        &mut self,
        peer: PeerKey,
        change: impl FnOnce(&mut BTreeMap<u64, Arc<Connection>>) -> T,
    ) -> T {
        let queue = self.waiting.entry(peer).or_default();
        if let Some(rank) = rank(queue) {
            self.peers.remove(&(rank, peer));
        }
        let changed = change(queue);
        match rank(queue) {
            Some(rank) => {
                self.peers.insert((rank, peer));
            }
            None => {
                self.waiting.remove(&peer);
            }
        }
        changed
    }

    fn insert_waiting(&mut self, connection: &Arc<Connection>, seq: u64) {
        self.with_queue(connection.peer, |queue| {
            queue.insert(seq, Arc::clone(connection));
        });
    }

    fn remove_waiting(&mut self, peer: PeerKey, seq: u64) -> Option<Arc<Connection>> {
        if !self.waiting.contains_key(&peer) {
            return None;
        }
        self.with_queue(peer, |queue| queue.remove(&seq))
    }

    /// Takes `connection` out of the evictable sets.
    fn unlist(&mut self, connection: &Connection, slot: Slot) {
        match slot {
            Slot::Waiting(seq) => {
                self.remove_waiting(connection.peer, seq);
            }
            Slot::Lingering(seq) => {
                self.lingering.remove(&seq);
            }
            Slot::Handling | Slot::Gone => {}
        }
    }

    /// The connection to evict: the oldest lingering one, else the oldest
    /// waiting one of the peer with the most waiting.
    fn victim(&mut self) -> Option<Arc<Connection>> {
        if let Some((_, connection)) = self.lingering.pop_first() {
            return Some(connection);
        }
        let &(_, peer) = self.peers.last()?;
        self.with_queue(peer, |queue| {
            queue.pop_first().map(|(_, connection)| connection)
        })
    }
}

impl Tracker {
    pub(super) fn new(limits: &Limits, observer: Option<Arc<dyn ConnectionObserver>>) -> Self {
        Self {
            max_connections: limits.max_connections.max(1),
            max_unfinished_bytes: limits.max_unfinished_bytes,
            state: Mutex::new(State::default()),
            unfinished: AtomicUsize::new(0),
            released: Notify::new(),
            observer,
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `peer`, evicting another if the server is
    /// full; `None` if it is full of requests being handled.
    pub(super) fn admit(self: &Arc<Self>, peer: &SocketAddr) -> Option<Registration> {
        let mut state = self.state();
        if state.open >= self.max_connections && !self.evict_locked(&mut state) {
            drop(state);
            self.observe_closed(CloseReason::Refused);
            return None;
        }
        let seq = state.next_seq();
        let connection = Arc::new(Connection {
            peer: PeerKey::of(peer),
            state: Mutex::new(ConnectionState {
                slot: Slot::Waiting(seq),
                unfinished: 0,
                heads: 0,
                head_in: false,
            }),
            evicted: Notify::new(),
            head_arrived: Notify::new(),
        });
        state.insert_waiting(&connection, seq);
        state.open += 1;
        drop(state);
        if let Some(observer) = &self.observer {
            observer.open_changed(1);
        }
        Some(Registration {
            tracker: Arc::clone(self),
            connection,
        })
    }

    /// Evicts one connection to give back a file descriptor, and waits
    /// until a connection has closed (at most `timeout`); `false` if none
    /// could be evicted.
    pub(super) async fn evict_one_and_wait(&self, timeout: Duration) -> bool {
        let released = self.released.notified();
        let mut released = std::pin::pin!(released);
        released.as_mut().enable();
        let evicted = {
            let mut state = self.state();
            self.evict_locked(&mut state)
        };
        let _ = tokio::time::timeout(timeout, released).await;
        evicted
    }

    fn evict_locked(&self, state: &mut State) -> bool {
        let Some(victim) = state.victim() else {
            return false;
        };
        self.evicted_locked(state, &victim);
        true
    }

    /// Closes `victim`, already taken out of the evictable sets.
    fn evicted_locked(&self, state: &mut State, victim: &Connection) {
        {
            let mut victim_state = victim.state();
            victim_state.slot = Slot::Gone;
            self.release_bytes(&mut victim_state);
        }
        state.open -= 1;
        victim.evicted.notify_one();
        if let Some(observer) = &self.observer {
            observer.open_changed(-1);
        }
        self.observe_closed(CloseReason::Evicted);
    }

    pub(super) fn observe_closed(&self, reason: CloseReason) {
        if let Some(observer) = &self.observer {
            observer.closed(reason);
        }
    }

    fn release_bytes(&self, connection: &mut ConnectionState) {
        let bytes = std::mem::take(&mut connection.unfinished);
        self.unfinished.fetch_sub(bytes, Ordering::Relaxed);
    }

    /// Counts `bytes` received on `connection`; past the budget, evicts
    /// until the unfinished requests fit again (or nothing is evictable).
    ///
    /// The first to go is `connection` itself when it is reading a request
    /// already over [`READER_FIRST_BYTES`] for the peer holding the most
    /// connections: a flood of big heads from one address then costs the
    /// server the first few reads of each new connection, not the whole
    /// head of each (the old connections, already paid for, wait for their
    /// head timeout). Otherwise, as for connections, the oldest of that
    /// peer goes.
    fn received(&self, connection: &Connection, bytes: usize) {
        let (total, waiting, unfinished) = {
            let mut connection = connection.state();
            if connection.slot == Slot::Gone {
                return;
            }
            connection.unfinished += bytes;
            let total = self.unfinished.fetch_add(bytes, Ordering::Relaxed) + bytes;
            let waiting = match connection.slot {
                Slot::Waiting(seq) => Some(seq),
                _ => None,
            };
            (total, waiting, connection.unfinished)
        };
        if total > self.max_unfinished_bytes {
            let mut state = self.state();
            if unfinished > READER_FIRST_BYTES
                && let Some(seq) = waiting
                && state
                    .peers
                    .last()
                    .is_some_and(|(_, peer)| *peer == connection.peer)
                && let Some(reader) = state.remove_waiting(connection.peer, seq)
            {
                self.evicted_locked(&mut state, &reader);
            }
            while self.unfinished.load(Ordering::Relaxed) > self.max_unfinished_bytes
                && self.evict_locked(&mut state)
            {}
        }
    }

    /// The request on `connection` is complete: it is no longer evictable
    /// and its bytes no longer count as unfinished.
    pub(super) fn handling(&self, connection: &Connection) {
        let mut state = self.state();
        let mut connection_state = connection.state();
        if connection_state.slot != Slot::Gone {
            state.unlist(connection, connection_state.slot);
            connection_state.slot = Slot::Handling;
            self.release_bytes(&mut connection_state);
        }
    }

    /// The request on `connection` is answered: it waits for the next one.
    pub(super) fn answered(&self, connection: &Arc<Connection>) {
        let mut state = self.state();
        let mut connection_state = connection.state();
        connection_state.head_in = false;
        if connection_state.slot == Slot::Handling {
            let seq = state.next_seq();
            connection_state.slot = Slot::Waiting(seq);
            state.insert_waiting(connection, seq);
        }
    }

    /// `connection` is answered and closing: it is evicted first.
    fn lingering(&self, connection: &Arc<Connection>) {
        let mut state = self.state();
        let mut connection_state = connection.state();
        if connection_state.slot != Slot::Gone {
            state.unlist(connection, connection_state.slot);
            let seq = state.next_seq();
            connection_state.slot = Slot::Lingering(seq);
            state.lingering.insert(seq, Arc::clone(connection));
        }
    }

    fn close(&self, connection: &Connection) {
        let mut state = self.state();
        let mut connection_state = connection.state();
        if connection_state.slot != Slot::Gone {
            state.unlist(connection, connection_state.slot);
            connection_state.slot = Slot::Gone;
            state.open -= 1;
            self.release_bytes(&mut connection_state);
            drop(connection_state);
            drop(state);
            if let Some(observer) = &self.observer {
                observer.open_changed(-1);
            }
        }
        // Evicted or not, its socket is about to be closed.
        self.released.notify_waiters();
    }
}

/// A connection admitted by the tracker; closing it (dropping) frees its
/// place.
pub(super) struct Registration {
    tracker: Arc<Tracker>,
    connection: Arc<Connection>,
}

impl Registration {
    pub(super) fn connection(&self) -> &Arc<Connection> {
        &self.connection
    }

    pub(super) fn tracker(&self) -> &Arc<Tracker> {
        &self.tracker
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.tracker.close(&self.connection);
    }
}

/// The connection a request arrived on, for the request layers: they say
/// when its request is complete and when it is answered.
#[derive(Clone)]
pub(super) struct ConnectionHandle {
    tracker: Arc<Tracker>,
    connection: Arc<Connection>,
    /// The client's address as the log lines write it.
    peer: Option<Arc<str>>,
}

impl ConnectionHandle {
    pub(super) fn new(registration: &Registration) -> Self {
        Self {
            tracker: Arc::clone(registration.tracker()),
            connection: Arc::clone(registration.connection()),
            peer: None,
        }
    }

    /// Names the client at `peer`, formatted once for the connection's
    /// requests: formatting an address for every log line was a tenth of
    /// a request's instructions (docs/performance.md).
    pub(super) fn with_peer(mut self, peer: &SocketAddr) -> Self {
        self.peer = Some(peer.to_string().into());
        self
    }

    /// The client's address, as [`with_peer`](Self::with_peer) wrote it.
    pub(super) fn peer(&self) -> Option<&Arc<str>> {
        self.peer.as_ref()
    }

    /// Marks the head of a request received whole: the connection owes no
    /// head any more (see [`Connection::owes_no_head`]).
    pub(super) fn head_received(&self) {
        {
            let mut state = self.connection.state();
            state.heads += 1;
            state.head_in = true;
        }
        self.connection.head_arrived.notify_waiters();
    }

    /// Marks the request complete until the guard is dropped, when it is
    /// answered.
    pub(super) fn handling(&self) -> HandlingGuard {
        self.tracker.handling(&self.connection);
        HandlingGuard {
            handle: self.clone(),
        }
    }
}

/// See [`ConnectionHandle::handling`].
pub(super) struct HandlingGuard {
    handle: ConnectionHandle,
}

impl Drop for HandlingGuard {
    fn drop(&mut self) {
        self.handle.tracker.answered(&self.handle.connection);
    }
}

/// The bounds of a lingering close.
#[derive(Debug, Clone, Copy)]
pub(super) struct Linger {
    pub(super) max_bytes: usize,
    pub(super) timeout: Duration,
}

/// The socket as the HTTP connection sees it: reads are counted against the
/// unfinished-bytes budget, and shutting down is a lingering close.
pub(super) struct TrackedIo {
    stream: TcpStream,
    tracker: Arc<Tracker>,
    connection: Arc<Connection>,
    linger: Linger,
    closing: Option<Closing>,
}

struct Closing {
    deadline: Pin<Box<Sleep>>,
    drained: usize,
}

impl TrackedIo {
    pub(super) fn new(stream: TcpStream, registration: &Registration, linger: Linger) -> Self {
        Self {
            stream,
            tracker: Arc::clone(registration.tracker()),
            connection: Arc::clone(registration.connection()),
            linger,
            closing: None,
        }
    }
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.stream).poll_read(cx, buf))?;
        let read = buf.filled().len() - before;
        if read > 0 {
            self.tracker.received(&self.connection, read);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    /// Sends FIN once everything is written, then reads and discards what
    /// the client still sends until it closes, within the linger bounds.
    /// What is left unread when the bounds are reached is the client's
    /// problem: the socket is closed (and the kernel resets it).
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.closing.is_none() {
            ready!(Pin::new(&mut this.stream).poll_flush(cx))?;
            if let Err(error) = ready!(Pin::new(&mut this.stream).poll_shutdown(cx)) {
                // The client is gone already: nothing to linger for.
                tracing::debug!(%error, "shutting down the connection failed");
                return Poll::Ready(Ok(()));
            }
            this.tracker.lingering(&this.connection);
            this.closing = Some(Closing {
                deadline: Box::pin(tokio::time::sleep(this.linger.timeout)),
                drained: 0,
            });
        }
        let Some(closing) = this.closing.as_mut() else {
            return Poll::Ready(Ok(()));
        };
        if closing.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Ok(()));
        }
        let mut scratch = [0u8; 4096];
        loop {
            let mut buf = ReadBuf::new(&mut scratch);
            match ready!(Pin::new(&mut this.stream).poll_read(cx, &mut buf)) {
                Ok(()) if buf.filled().is_empty() => return Poll::Ready(Ok(())),
                Ok(()) => {
                    closing.drained += buf.filled().len();
                    if closing.drained >= this.linger.max_bytes {
                        return Poll::Ready(Ok(()));
                    }
                }
                // A reset: the client is gone.
                Err(_) => return Poll::Ready(Ok(())),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicI64, AtomicU64};

    use super::*;

    #[derive(Default)]
    struct Counts {
        open: AtomicI64,
        evicted: AtomicU64,
        refused: AtomicU64,
    }

    impl ConnectionObserver for Counts {
        fn open_changed(&self, delta: i64) {
            self.open.fetch_add(delta, Ordering::Relaxed);
        }
        fn closed(&self, reason: CloseReason) {
            match reason {
                CloseReason::Evicted => self.evicted.fetch_add(1, Ordering::Relaxed),
                CloseReason::Refused => self.refused.fetch_add(1, Ordering::Relaxed),
                CloseReason::HeadTimeout => 0,
            };
        }
        fn head_refused(&self, _code: u16) {}
    }

    fn tracker(max_connections: usize, max_unfinished_bytes: usize) -> (Arc<Tracker>, Arc<Counts>) {
        let counts = Arc::new(Counts::default());
        let limits = Limits {
            max_connections,
            max_unfinished_bytes,
            ..Limits::default()
        };
        let observer: Arc<dyn ConnectionObserver> = counts.clone();
        (Arc::new(Tracker::new(&limits, Some(observer))), counts)
    }

    fn addr(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    fn is_evicted(registration: &Registration) -> bool {
        registration.connection().state().slot == Slot::Gone
    }

    #[test]
    fn peers_are_counted_by_ipv4_address_and_ipv6_block() {
        let key = |text: &str| PeerKey::of(&addr(text));
        assert_eq!(key("10.0.0.1:1"), key("10.0.0.1:2"));
        assert_eq!(key("10.0.0.1:1"), key("[::ffff:10.0.0.1]:3"));
        assert_ne!(key("10.0.0.1:1"), key("10.0.0.2:1"));
        assert_eq!(key("[2001:db8::1]:1"), key("[2001:db8::ffff:1]:1"));
        assert_ne!(key("[2001:db8::1]:1"), key("[2001:db8:0:1::1]:1"));
        assert_ne!(key("0.0.0.1:1"), key("[::1]:1"));
    }

    #[test]
    fn at_capacity_the_biggest_peer_loses_its_oldest_waiting_connection() {
        let (tracker, counts) = tracker(5, usize::MAX);
        let flood: Vec<_> = (0..4)
            .map(|port| tracker.admit(&addr(&format!("10.0.0.9:{port}"))).unwrap())
            .collect();
        let host = tracker.admit(&addr("192.0.2.1:1")).unwrap();
        assert!(!flood.iter().any(is_evicted));

        // The Git host's next connection evicts the flood's oldest.
        let host_again = tracker.admit(&addr("192.0.2.1:2")).unwrap();
        assert!(is_evicted(&flood[0]));
        assert!(!is_evicted(&flood[1]) && !is_evicted(&host) && !is_evicted(&host_again));
        // So does the flood's.
        let _more = tracker.admit(&addr("10.0.0.9:9")).unwrap();
        assert!(is_evicted(&flood[1]));
        assert!(!is_evicted(&host) && !is_evicted(&host_again));
        assert_eq!(counts.evicted.load(Ordering::Relaxed), 2);
        assert_eq!(counts.open.load(Ordering::Relaxed), 5);
    }

    #[test]
    fn requests_being_handled_are_never_evicted_and_lingering_ones_go_first() {
        let (tracker, counts) = tracker(2, usize::MAX);
        let busy = tracker.admit(&addr("10.0.0.1:1")).unwrap();
        let handle = ConnectionHandle::new(&busy);
        let guard = handle.handling();
        let closing = tracker.admit(&addr("10.0.0.1:2")).unwrap();
        tracker.lingering(closing.connection());

        let waiting = tracker.admit(&addr("10.0.0.2:1")).unwrap();
        assert!(is_evicted(&closing));
        assert!(!is_evicted(&busy));
        // Full of a handled request and a waiting connection: the waiting
        // one goes.
        let next = tracker.admit(&addr("10.0.0.3:1")).unwrap();
        assert!(is_evicted(&waiting) && !is_evicted(&busy));

        // Once answered, the busy connection is evictable again; of two
        // peers with one connection each, the one waiting longest goes.
        drop(guard);
        let last = tracker.admit(&addr("10.0.0.4:1")).unwrap();
        assert!(is_evicted(&next) && !is_evicted(&busy));
        drop(last);
        let _again = tracker.admit(&addr("10.0.0.4:2")).unwrap();
        let _more = tracker.admit(&addr("10.0.0.4:3")).unwrap();
        assert!(is_evicted(&busy));
        assert_eq!(counts.refused.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn with_every_request_being_handled_a_new_connection_is_refused() {
        let (tracker, counts) = tracker(1, usize::MAX);
        let busy = tracker.admit(&addr("10.0.0.1:1")).unwrap();
        let _guard = ConnectionHandle::new(&busy).handling();
        assert!(tracker.admit(&addr("10.0.0.2:1")).is_none());
        assert_eq!(counts.refused.load(Ordering::Relaxed), 1);
        drop(_guard);
        drop(busy);
        assert_eq!(counts.open.load(Ordering::Relaxed), 0);
        assert!(tracker.admit(&addr("10.0.0.2:1")).is_some());
    }

    #[test]
    fn unfinished_bytes_over_the_budget_evict_and_finished_requests_release_theirs() {
        let (tracker, _) = tracker(100, 1000);
        let hog = tracker.admit(&addr("10.0.0.9:1")).unwrap();
        let hog2 = tracker.admit(&addr("10.0.0.9:2")).unwrap();
        let host = tracker.admit(&addr("192.0.2.1:1")).unwrap();
        tracker.received(hog.connection(), 600);
        tracker.received(hog2.connection(), 300);
        tracker.received(host.connection(), 50);
        assert!(![&hog, &hog2, &host].iter().any(|r| is_evicted(r)));

        // The host's request completes: its bytes no longer count.
        let guard = ConnectionHandle::new(&host).handling();
        assert_eq!(tracker.unfinished.load(Ordering::Relaxed), 900);
        drop(guard);
        // Going over evicts the biggest peer's oldest.
        tracker.received(hog2.connection(), 200);
        assert!(is_evicted(&hog) && !is_evicted(&hog2) && !is_evicted(&host));
        assert_eq!(tracker.unfinished.load(Ordering::Relaxed), 500);

        drop((hog, hog2, host));
        assert_eq!(tracker.unfinished.load(Ordering::Relaxed), 0);
        assert_eq!(tracker.state().open, 0);
    }

    #[test]
    fn over_the_budget_a_big_request_of_the_biggest_peer_goes_before_older_ones() {
        let budget = 4 * READER_FIRST_BYTES;
        let (tracker, counts) = tracker(100, budget);
        let held: Vec<_> = (0..3)
            .map(|port| tracker.admit(&addr(&format!("10.0.0.9:{port}"))).unwrap())
            .collect();
        for registration in &held {
            tracker.received(registration.connection(), READER_FIRST_BYTES + 1);
        }
        let host = tracker.admit(&addr("192.0.2.1:1")).unwrap();
        // The flood's new connection, reading a big head past the budget,
        // goes itself: the older ones stay.
        let reader = tracker.admit(&addr("10.0.0.9:9")).unwrap();
        tracker.received(reader.connection(), READER_FIRST_BYTES + 1);
        assert!(is_evicted(&reader));
        assert!(!held.iter().any(is_evicted) && !is_evicted(&host));
        assert_eq!(counts.evicted.load(Ordering::Relaxed), 1);
        assert_eq!(
            tracker.unfinished.load(Ordering::Relaxed),
            3 * (READER_FIRST_BYTES + 1)
        );

        // Another peer's request over the budget evicts the biggest peer's
        // oldest; so does a request of the biggest peer that is not big.
        tracker.received(host.connection(), READER_FIRST_BYTES);
        assert!(is_evicted(&held[0]) && !is_evicted(&host));
        let small = tracker.admit(&addr("10.0.0.9:10")).unwrap();
        tracker.received(small.connection(), READER_FIRST_BYTES);
        assert!(is_evicted(&held[1]) && !is_evicted(&small) && !is_evicted(&host));
        assert_eq!(counts.evicted.load(Ordering::Relaxed), 3);
    }
}
