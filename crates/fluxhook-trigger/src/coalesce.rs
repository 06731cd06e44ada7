//! Per-key coalescing of concurrent requests for one idempotent operation.
//!
//! See [`Coalescer`] for the guarantees; the crate docs show it in use.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use futures::future::BoxFuture;
use tokio::sync::oneshot;

/// The operation a [`Coalescer`] runs for a key, boxed so the coalescer's
/// type does not name the closure.
type Operation<K, T, E> = dyn Fn(K) -> BoxFuture<'static, Result<T, E>> + Send + Sync;

/// Where one request waits for the answer of the run that serves it.
type Waiter<T, E> = oneshot::Sender<Result<T, E>>;

/// The run that was to answer a request ended without an answer: the
/// operation panicked, or the runtime driving it shut down.
///
/// A [`Coalescer`]'s error type converts from this so that such a request
/// still gets an error instead of waiting forever.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "the operation that was to answer this request ended without an answer (it panicked or its runtime shut down)"
)]
pub struct RunAbandoned;

/// Runs an idempotent async operation per key on behalf of many concurrent
/// requests, so that a burst of requests for one key costs at most two runs.
///
/// For each key, a `Coalescer` guarantees:
///
/// - **At most one run in flight and one queued.** A request for an idle key
///   starts a run; requests arriving while that run is in flight all join a
///   single queued run, which starts when the one in flight ends.
/// - **Fresh answers.** Every request is answered by the first run that
///   *began after the request arrived*: with that run's value, or with that
///   run's error. A request never sees the result of a run that was already
///   under way when it arrived, which for an operation like "ask Flux to look
///   again" is what makes the answer mean something.
/// - **Errors reach exactly their waiters.** A failed run answers its own
///   requests with its error; the queued run still starts afterwards.
/// - **No leak.** A key's state is dropped as soon as nothing is in flight or
///   queued for it ([`Coalescer::busy_keys`] counts what remains).
///
/// Runs execute on spawned tokio tasks, so a caller that stops waiting (drops
/// its request future) cancels nothing for the others. A queued run whose
/// callers have all stopped waiting is skipped. If the operation panics, its
/// waiters get `E::from(`[`RunAbandoned`]`)` and the key is released.
///
/// Requests for different keys never wait for each other.
///
/// ```
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// use fluxhook_trigger::{Coalescer, RunAbandoned};
///
/// #[derive(Debug, Clone, PartialEq)]
/// struct Failed;
/// impl From<RunAbandoned> for Failed {
///     fn from(_: RunAbandoned) -> Self {
///         Failed
///     }
/// }
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let runs = Arc::new(AtomicUsize::new(0));
/// let counter = Arc::clone(&runs);
/// let coalescer = Coalescer::new(move |key: &'static str| {
///     let run = counter.fetch_add(1, Ordering::SeqCst) + 1;
///     async move {
///         tokio::task::yield_now().await;
///         Ok::<_, Failed>(format!("{key}: run {run}"))
///     }
/// });
///
/// // Ten requests at once for one key share runs instead of making ten.
/// let answers =
///     futures::future::join_all((0..10).map(|_| coalescer.request("podinfo"))).await;
/// assert!(answers.iter().all(Result::is_ok));
/// assert!(runs.load(Ordering::SeqCst) <= 2);
/// assert_eq!(coalescer.busy_keys(), 0);
/// # });
/// ```
pub struct Coalescer<K, T, E> {
    shared: Arc<Shared<K, T, E>>,
}

struct Shared<K, T, E> {
    operation: Box<Operation<K, T, E>>,
    /// A key is present exactly while a driver task runs for it; its value
    /// holds the waiters of the queued run (empty when nothing is queued).
    queued: Mutex<HashMap<K, Vec<Waiter<T, E>>>>,
}

impl<K, T, E> Shared<K, T, E> {
    fn lock(&self) -> MutexGuard<'_, HashMap<K, Vec<Waiter<T, E>>>> {
        // Nothing panics while the lock is held except a user's Hash or Eq;
        // the map is still consistent then, so carry on with it.
        self.queued.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl<K, T, E> Clone for Coalescer<K, T, E> {
    fn clone(&self) -> Self {
        Self {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<K, T, E> std::fmt::Debug for Coalescer<K, T, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer")
            .field("busy_keys", &self.shared.lock().len())
            .finish_non_exhaustive()
    }
}

impl<K, T, E> Coalescer<K, T, E>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    T: Clone + Send + 'static,
    E: Clone + Send + From<RunAbandoned> + 'static,
{
    /// A coalescer that runs `operation(key)` on behalf of the requests for
    /// `key`.
    pub fn new<F, Fut>(operation: F) -> Self
    where
        F: Fn(K) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        Self {
            shared: Arc::new(Shared {
                operation: Box::new(move |key| Box::pin(operation(key))),
                queued: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Asks for a run for `key` and waits for the first run that begins after
    /// this call; returns that run's result.
    ///
    /// The request is registered when the returned future is first polled.
    /// Must be called within a tokio runtime (runs are spawned on it).
    pub async fn request(&self, key: K) -> Result<T, E> {
        let (waiter, answer) = oneshot::channel();
        let idle = match self.shared.lock().entry(key.clone()) {
            Entry::Occupied(mut queued) => {
                queued.get_mut().push(waiter);
                false
            }
            Entry::Vacant(slot) => {
                slot.insert(vec![waiter]);
                true
            }
        };
        if idle {
            tokio::spawn(drive(Arc::clone(&self.shared), key));
        }
        answer.await.unwrap_or_else(|_| Err(E::from(RunAbandoned)))
    }

    /// How many keys have a run in flight or queued right now.
    pub fn busy_keys(&self) -> usize {
        self.shared.lock().len()
    }
}

/// Runs the queued run for `key` until none is queued, then releases the key.
async fn drive<K, T, E>(shared: Arc<Shared<K, T, E>>, key: K)
where
    K: Hash + Eq + Clone,
    T: Clone,
    E: Clone,
{
    let mut release = ReleaseOnUnwind {
        shared: &shared,
        key: &key,
        armed: true,
    };
    loop {
        let waiters = {
            let mut queued = shared.lock();
            let mut waiters = queued.get_mut(&key).map(std::mem::take).unwrap_or_default();
            waiters.retain(|waiter| !waiter.is_closed());
            if waiters.is_empty() {
                // Released under the same lock a new request would take, so
                // no request can join a run that will never start.
                queued.remove(&key);
                release.armed = false;
                return;
            }
            waiters
        };
        let result = (shared.operation)(key.clone()).await;
        for waiter in waiters {
            // A waiter whose caller stopped waiting is simply not told.
            let _ = waiter.send(result.clone());
        }
    }
}

/// Releases a key whose driver ended abnormally (the operation panicked, or
/// the task was dropped at runtime shutdown): dropping the queued waiters
/// answers them with [`RunAbandoned`], and the next request starts afresh.
struct ReleaseOnUnwind<'a, K: Hash + Eq, T, E> {
    shared: &'a Shared<K, T, E>,
    key: &'a K,
    armed: bool,
}

impl<K: Hash + Eq, T, E> Drop for ReleaseOnUnwind<'_, K, T, E> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.lock().remove(self.key);
        }
    }
}
