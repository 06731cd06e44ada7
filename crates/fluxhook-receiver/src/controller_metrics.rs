//! The Receiver controller's metrics and reconcile log context, as a Flux
//! controller built on controller-runtime exports them.
//!
//! Names, labels and buckets are controller-runtime v0.24.1's (the version
//! notification-controller v1.9 builds on) and fluxcd/pkg runtime v0.110's:
//!
//! - `controller_runtime_reconcile_total{controller, result}`,
//!   `controller_runtime_reconcile_errors_total{controller}`,
//!   `controller_runtime_reconcile_time_seconds{controller}`,
//!   `controller_runtime_max_concurrent_reconciles{controller}` and
//!   `controller_runtime_active_workers{controller}`
//!   (controller-runtime `pkg/internal/controller/metrics/metrics.go`, counted
//!   as `pkg/internal/controller/controller.go` `reconcileHandler` does);
//! - `workqueue_depth{name, controller, priority}`, `workqueue_adds_total`,
//!   `workqueue_queue_duration_seconds`, `workqueue_work_duration_seconds`,
//!   `workqueue_unfinished_work_seconds`,
//!   `workqueue_longest_running_processor_seconds` and
//!   `workqueue_retries_total`, each `{name, controller}`
//!   (controller-runtime `pkg/internal/metrics/workqueue.go`);
//! - `gotk_reconcile_duration_seconds{kind, name, namespace}` (fluxcd/pkg
//!   `runtime/metrics/recorder.go`), removed when the Receiver is deleted as
//!   Flux's `RecordDuration` does;
//! - `leader_election_master_status{name}` (controller-runtime
//!   `pkg/metrics/leaderelection.go`), set by leader election.
//!
//! kube-runtime's controller has no work queue of its own to instrument, so
//! the queue is observed at its edges: every trigger that asks for a
//! reconciliation ([`ControllerMetrics::counted_triggers`],
//! [`ControllerMetrics::counted_mapper`]), each reconciliation
//! ([`ControllerMetrics::reconciler`]) and each requeue the reconciler or
//! the error policy asks for. Like kube-runtime's scheduler (and unlike
//! client-go's queue) a Receiver waits in the queue at most once: a trigger
//! for a Receiver already waiting moves its turn earlier, never adds a second.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use futures::{FutureExt, Stream, StreamExt};
use kube::Resource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{Lookup, ObjectRef};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::{ConstGauge, Gauge};
use prometheus_client::metrics::histogram::{
    Histogram, exponential_buckets, exponential_buckets_range,
};
use prometheus_client::registry::Registry;
use tracing::Instrument;

use crate::endpoint::ReceiverKey;

/// The controller's name in metrics and log lines: controller-runtime names a
/// controller after its kind, lowercased (`pkg/builder/controller.go`,
/// `getControllerName`), so notification-controller's is `receiver`.
pub const CONTROLLER_NAME: &str = "receiver";
/// The API group of the reconciled kind, the `controllerGroup` of log lines.
pub const CONTROLLER_GROUP: &str = "notification.toolkit.fluxcd.io";
/// The reconciled kind, the `controllerKind` of log lines and the `kind` of
/// `gotk_reconcile_duration_seconds`.
pub const CONTROLLER_KIND: &str = "Receiver";

/// The `controller` label.
type ControllerLabel = [(&'static str, &'static str); 1];
/// The `controller` and `result` labels of `controller_runtime_reconcile_total`.
type ResultLabels = [(&'static str, &'static str); 2];
/// The `kind`, `name` and `namespace` labels of the gotk series: a series per Receiver,
/// so the kind, always [`CONTROLLER_KIND`], is not copied into each.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObjectLabels {
    kind: &'static str,
    name: String,
    namespace: String,
}
/// The `name` label of `leader_election_master_status`: the lease's name.
type LeaseLabel = [(&'static str, String); 1];

/// The results of a reconciliation, as controller-runtime labels them.
const RESULT_ERROR: &str = "error";
const RESULT_REQUEUE_AFTER: &str = "requeue_after";
const RESULT_REQUEUE: &str = "requeue";
const RESULT_SUCCESS: &str = "success";

const CONTROLLER: ControllerLabel = [("controller", CONTROLLER_NAME)];

/// controller-runtime's buckets of `controller_runtime_reconcile_time_seconds`.
const RECONCILE_TIME_BUCKETS: [f64; 40] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8, 0.9,
    1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0,
    25.0, 30.0, 40.0, 50.0, 60.0,
];

/// The number of buckets of `gotk_reconcile_duration_seconds` (without
/// `+Inf`): `prometheus.ExponentialBucketsRange(10e-3, 1800, 10)`.
pub const GOTK_DURATION_BUCKETS: u16 = 10;

fn gotk_duration_histogram() -> Histogram {
    Histogram::new(exponential_buckets_range(
        10e-3,
        1800.0,
        GOTK_DURATION_BUCKETS,
    ))
}

fn queue_histogram() -> Histogram {
    // prometheus.ExponentialBuckets(10e-9, 10, 12): 10ns to 1000s.
    Histogram::new(exponential_buckets(10e-9, 10.0, 12))
}

/// The Receiver controller's metrics, shared by the controller and the
/// process's registry; cheap to clone (every clone records into the same
/// series).
///
/// ```
/// use fluxhook_receiver::ControllerMetrics;
/// use prometheus_client::encoding::text::encode;
/// use prometheus_client::registry::Registry;
///
/// let metrics = ControllerMetrics::new();
/// let mut registry = Registry::default();
/// metrics.register(&mut registry);
/// metrics.set_leader("fluxhook-receiver-leader-election", true);
///
/// let mut text = String::new();
/// encode(&mut text, &registry)?;
/// assert!(text.contains(
///     r#"leader_election_master_status{name="fluxhook-receiver-leader-election"} 1"#
/// ));
/// assert!(text.contains(r#"controller_runtime_reconcile_total{controller="receiver",result="success"} 0"#));
/// # Ok::<(), std::fmt::Error>(())
/// ```
#[derive(Clone)]
pub struct ControllerMetrics {
    inner: Arc<Inner>,
}

struct Inner {
    reconcile_total: Family<ResultLabels, Counter>,
    reconcile_errors: Family<ControllerLabel, Counter>,
    reconcile_time: Family<ControllerLabel, Histogram>,
    max_concurrent: Family<ControllerLabel, Gauge>,
    active_workers: Family<ControllerLabel, Gauge>,
    queue: Arc<QueueMetrics>,
    reconcile_duration: Family<ObjectLabels, Histogram>,
    leader: Family<LeaseLabel, Gauge>,
    /// What else drops a deleted Receiver's series (the webhook server's).
    on_forget: Mutex<Vec<ForgetHook>>,
}

/// Drops the series another part of the process keeps for a Receiver.
type ForgetHook = Box<dyn Fn(&ReceiverKey) + Send + Sync>;

impl fmt::Debug for ControllerMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ControllerMetrics").finish_non_exhaustive()
    }
}

/// Two handles are equal when they record into the same series.
impl PartialEq for ControllerMetrics {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

impl Eq for ControllerMetrics {}

impl Default for ControllerMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl ControllerMetrics {
    /// Metrics at zero, as controller-runtime's `initMetrics` leaves them
    /// before the first reconciliation: every result counted 0, no worker
    /// active.
    pub fn new() -> Self {
        let reconcile_total = Family::<ResultLabels, Counter>::default();
        for result in [
            RESULT_ERROR,
            RESULT_REQUEUE_AFTER,
            RESULT_REQUEUE,
            RESULT_SUCCESS,
        ] {
            let _ = reconcile_total
                .get_or_create(&[("controller", CONTROLLER_NAME), ("result", result)]);
        }
        let reconcile_errors = Family::<ControllerLabel, Counter>::default();
        let _ = reconcile_errors.get_or_create(&CONTROLLER);
        let reconcile_time = Family::<ControllerLabel, Histogram>::new_with_constructor(
            (|| Histogram::new(RECONCILE_TIME_BUCKETS)) as fn() -> Histogram,
        );
        let _ = reconcile_time.get_or_create(&CONTROLLER);
        let max_concurrent = Family::<ControllerLabel, Gauge>::default();
        let _ = max_concurrent.get_or_create(&CONTROLLER);
        let active_workers = Family::<ControllerLabel, Gauge>::default();
        let _ = active_workers.get_or_create(&CONTROLLER);
        Self {
            inner: Arc::new(Inner {
                reconcile_total,
                reconcile_errors,
                reconcile_time,
                max_concurrent,
                active_workers,
                queue: Arc::new(QueueMetrics::default()),
                reconcile_duration: Family::new_with_constructor(
                    gotk_duration_histogram as fn() -> Histogram,
                ),
                leader: Family::default(),
                on_forget: Mutex::default(),
            }),
        }
    }

    /// Registers every series into `registry` (at its root: the names are
    /// controller-runtime's and Flux's, unprefixed).
    pub fn register(&self, registry: &mut Registry) {
        let inner = &self.inner;
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            inner.reconcile_total.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller",
            inner.reconcile_errors.clone(),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            inner.reconcile_time.clone(),
        );
        registry.register(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            inner.max_concurrent.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            inner.active_workers.clone(),
        );
        registry.register(
            "gotk_reconcile_duration_seconds",
            "The duration in seconds of a GitOps Toolkit resource reconciliation.",
            inner.reconcile_duration.clone(),
        );
        registry.register(
            "leader_election_master_status",
            "Gauge of if the reporting system is master of the relevant lease, 0 indicates \
             backup, 1 indicates master. 'name' is the string used to identify the lease. \
             Please make sure to group by name.",
            inner.leader.clone(),
        );
        inner.queue.register(registry);
    }

    /// Sets `leader_election_master_status{name=lease}`: 1 while this process
    /// holds the lease, 0 while it does not. Leader election calls it on each
    /// change, as client-go's leader elector reports `On` and `Off`.
    pub fn set_leader(&self, lease: &str, leading: bool) {
        self.inner
            .leader
            .get_or_create(&[("name", lease.to_owned())])
            .set(i64::from(leading));
    }

    /// Sets `controller_runtime_max_concurrent_reconciles` (0: no limit, as
    /// kube-runtime reads a concurrency of 0).
    pub(crate) fn set_max_concurrent_reconciles(&self, concurrency: u16) {
        self.inner
            .max_concurrent
            .get_or_create(&CONTROLLER)
            .set(i64::from(concurrency));
    }

    /// Counts each Receiver a trigger stream asks to reconcile as added to
    /// the work queue (the stream is otherwise unchanged).
    pub(crate) fn counted_triggers<K, E, S>(
        &self,
        triggers: S,
    ) -> impl Stream<Item = S::Item> + use<K, E, S>
    where
        K: Resource,
        S: Stream<Item = Result<K, E>>,
    {
        let queue = Arc::clone(&self.inner.queue);
        triggers.inspect(move |trigger| {
            if let Ok(object) = trigger {
                queue.add(key_of_meta(object.meta()), Instant::now());
            }
        })
    }

    /// Counts each Receiver `mapper` asks to reconcile as added to the work
    /// queue.
    pub(crate) fn counted_mapper<T, K, I>(
        &self,
        mapper: impl Fn(T) -> I + Send + Sync + 'static,
    ) -> impl Fn(T) -> Vec<ObjectRef<K>> + Send + Sync + 'static
    where
        K: Lookup,
        I: IntoIterator<Item = ObjectRef<K>>,
    {
        let queue = Arc::clone(&self.inner.queue);
        move |other| {
            let refs: Vec<ObjectRef<K>> = mapper(other).into_iter().collect();
            let now = Instant::now();
            for object in &refs {
                queue.add(
                    ReceiverKey {
                        namespace: object.namespace.clone().unwrap_or_default(),
                        name: object.name.clone(),
                    },
                    now,
                );
            }
            refs
        }
    }

    /// Wraps the controller's reconciler: each reconciliation runs in the
    /// span whose fields are the reconcile log lines' (`controller`,
    /// `controllerGroup`, `controllerKind`, `name`, `namespace`,
    /// `reconcileID`), is timed and counted, and logs its error as
    /// controller-runtime's `Reconciler error` line.
    pub(crate) fn reconciler<K, Ctx, E, Fut>(
        &self,
        mut reconcile: impl FnMut(Arc<K>, Arc<Ctx>) -> Fut,
    ) -> impl FnMut(Arc<K>, Arc<Ctx>) -> BoxFuture<'static, Result<Action, E>>
    where
        K: Resource,
        Fut: Future<Output = Result<Action, E>> + Send + 'static,
        E: std::error::Error + Send + 'static,
    {
        let metrics = self.clone();
        move |object, ctx| {
            let key = key_of_meta(object.meta());
            let reconciliation = reconcile(object, ctx);
            let metrics = metrics.clone();
            let span = reconcile_span(&key);
            async move {
                let started = metrics.started(&key);
                let result = reconciliation.await;
                if let Err(error) = &result {
                    tracing::error!(error = %ErrorChain(error), "Reconciler error");
                }
                metrics.finished(&key, started, result.as_ref().ok());
                result
            }
            .instrument(span)
            .boxed()
        }
    }

    /// Wraps the controller's error policy: the retry it schedules is
    /// counted in `workqueue_retries_total` and the Receiver waits in the
    /// queue until then.
    pub(crate) fn error_policy<K, Ctx, E>(
        &self,
        policy: impl Fn(Arc<K>, &E, Arc<Ctx>) -> Action,
    ) -> impl Fn(Arc<K>, &E, Arc<Ctx>) -> Action
    where
        K: Resource,
    {
        let queue = Arc::clone(&self.inner.queue);
        move |object, error, ctx| {
            let key = key_of_meta(object.meta());
            let action = policy(object, error, ctx);
            queue.requeue(key, &action, Instant::now());
            action
        }
    }

    /// Drops every series and queue entry of a Receiver that is gone, so that
    /// deleted Receivers leave no series behind (Flux deletes
    /// `gotk_reconcile_duration_seconds` of a deleted object the same way).
    pub(crate) fn forget(&self, key: &ReceiverKey) {
        self.inner.reconcile_duration.remove(&object_labels(key));
        self.inner.queue.forget(key);
        for hook in self
            .inner
            .on_forget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
        {
            hook(key);
        }
    }

    /// Also calls `forget` with each Receiver that is deleted (or stops being
    /// watched), so that other series kept per Receiver go with it.
    pub fn on_forget(&self, forget: impl Fn(&ReceiverKey) + Send + Sync + 'static) {
        self.inner
            .on_forget
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Box::new(forget));
    }

    fn started(&self, key: &ReceiverKey) -> Started {
        self.inner.active_workers.get_or_create(&CONTROLLER).inc();
        let at = Instant::now();
        let run = self.inner.queue.start(key, at);
        Started { at, run }
    }

    fn finished(&self, key: &ReceiverKey, started: Started, action: Option<&Action>) {
        let inner = &self.inner;
        let now = Instant::now();
        let elapsed = now.saturating_duration_since(started.at).as_secs_f64();
        inner.queue.done(started.run, elapsed);
        inner.active_workers.get_or_create(&CONTROLLER).dec();
        inner
            .reconcile_time
            .get_or_create(&CONTROLLER)
            .observe(elapsed);
        inner
            .reconcile_duration
            .get_or_create(&object_labels(key))
            .observe(elapsed);
        let result = match action.map(requeue_after) {
            None => {
                inner.reconcile_errors.get_or_create(&CONTROLLER).inc();
                RESULT_ERROR
            }
            Some(Requeue::Never) => RESULT_SUCCESS,
            Some(Requeue::Now) => RESULT_REQUEUE,
            Some(Requeue::After(_)) => RESULT_REQUEUE_AFTER,
        };
        inner
            .reconcile_total
            .get_or_create(&[("controller", CONTROLLER_NAME), ("result", result)])
            .inc();
        if let Some(action) = action {
            inner.queue.requeue(key.clone(), action, now);
        }
    }
}

/// When a reconciliation started, and its place among those running.
struct Started {
    at: Instant,
    run: u64,
}

/// The span each reconciliation of the Receiver `key` runs in, with the
/// fields controller-runtime's builder and reconcile handler add to each
/// reconcile log line (`pkg/builder/controller.go`,
/// `pkg/internal/controller/controller.go`): `controller`,
/// `controllerGroup`, `controllerKind`, `namespace`, `name` and a new
/// `reconcileID`, a random (version 4) UUID as controller-runtime's
/// `uuid.NewUUID()`.
///
/// ```
/// use fluxhook_receiver::{ReceiverKey, reconcile_span};
///
/// let key = ReceiverKey { namespace: "flux-system".into(), name: "github".into() };
/// let _entered = reconcile_span(&key).entered();
/// tracing::info!("Reconciliation finished");
/// ```
pub fn reconcile_span(key: &ReceiverKey) -> tracing::Span {
    tracing::info_span!(
        "reconcile",
        controller = CONTROLLER_NAME,
        controllerGroup = CONTROLLER_GROUP,
        controllerKind = CONTROLLER_KIND,
        namespace = %key.namespace,
        name = %key.name,
        reconcileID = %uuid::Uuid::new_v4(),
    )
}

fn key_of_meta(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> ReceiverKey {
    ReceiverKey {
        namespace: meta.namespace.clone().unwrap_or_default(),
        name: meta.name.clone().unwrap_or_default(),
    }
}

fn object_labels(key: &ReceiverKey) -> ObjectLabels {
    ObjectLabels {
        kind: CONTROLLER_KIND,
        name: key.name.clone(),
        namespace: key.namespace.clone(),
    }
}

/// An error with its causes, `: `-separated, as Go's wrapped errors print.
struct ErrorChain<'a>(&'a dyn std::error::Error);

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            // Errors that print their cause themselves (`{source}` in the
            // message) are not repeated.
            let cause_text = cause.to_string();
            if !self.0.to_string().contains(&cause_text) {
                write!(f, ": {cause_text}")?;
            }
            source = cause.source();
        }
        Ok(())
    }
}

/// When a reconciliation asks to run again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requeue {
    /// Only when something changes.
    Never,
    /// At once.
    Now,
    /// After this long.
    After(Duration),
}

/// The delay an [`Action`] asks for. kube-runtime keeps it private and shows
/// it only in `Debug` (`Action { requeue_after: Some(600s) }`); a test pins
/// that form, and an action read otherwise counts as requeued at once.
fn requeue_after(action: &Action) -> Requeue {
    if *action == Action::await_change() {
        return Requeue::Never;
    }
    let shown = format!("{action:?}");
    let delay = shown
        .split_once("Some(")
        .and_then(|(_, rest)| rest.split_once(')'))
        .and_then(|(duration, _)| parse_debug_duration(duration));
    match delay {
        Some(delay) if !delay.is_zero() => Requeue::After(delay),
        _ => Requeue::Now,
    }
}

/// Reads a [`Duration`] as its `Debug` writes it: `600s`, `1.5s`, `750ms`,
/// `20µs`, `100ns`.
fn parse_debug_duration(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ns") {
        (n, 1e-9)
    } else if let Some(n) = text.strip_suffix("µs") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        return None;
    };
    let value: f64 = number.parse().ok()?;
    Duration::try_from_secs_f64(value * scale).ok()
}

/// The `name` and `controller` labels of the queue series: both the
/// controller's name, as controller-runtime's workqueue metrics provider sets
/// them.
type QueueLabels = [(&'static str, &'static str); 2];
const QUEUE: QueueLabels = [("name", CONTROLLER_NAME), ("controller", CONTROLLER_NAME)];

/// The work queue's series, observed at its edges.
#[derive(Debug)]
struct QueueMetrics {
    adds: Family<QueueLabels, Counter>,
    retries: Family<QueueLabels, Counter>,
    queue_duration: Family<QueueLabels, Histogram, fn() -> Histogram>,
    work_duration: Family<QueueLabels, Histogram, fn() -> Histogram>,
    state: Mutex<QueueState>,
}

impl Default for QueueMetrics {
    fn default() -> Self {
        let metrics = Self {
            adds: Family::default(),
            retries: Family::default(),
            queue_duration: Family::new_with_constructor(queue_histogram),
            work_duration: Family::new_with_constructor(queue_histogram),
            state: Mutex::default(),
        };
        // Present from the start, as client-go creates them with the queue.
        let _ = metrics.adds.get_or_create(&QUEUE);
        let _ = metrics.retries.get_or_create(&QUEUE);
        let _ = metrics.queue_duration.get_or_create(&QUEUE);
        let _ = metrics.work_duration.get_or_create(&QUEUE);
        metrics
    }
}

/// Who waits in the queue and who is being worked on.
#[derive(Debug, Default)]
struct QueueState {
    /// When each waiting Receiver is (or was) due.
    waiting: HashMap<ReceiverKey, Instant>,
    /// The waiting Receivers not due yet, by due time: they count as added
    /// once due, as client-go's delaying queue adds them then.
    delayed: BTreeSet<(Instant, ReceiverKey)>,
    /// How many waiting Receivers are due: the queue's depth.
    due: usize,
    /// When each running reconciliation started.
    running: HashMap<u64, Instant>,
    next_run: u64,
}

/// What settling the queue at an instant found newly due.
struct Settled {
    newly_due: u64,
}

impl QueueState {
    /// Moves the delayed Receivers due at `now` into the queue.
    fn settle(&mut self, now: Instant) -> Settled {
        let mut newly_due = 0;
        while let Some(first) = self.delayed.first() {
            if first.0 > now {
                break;
            }
            let Some((at, key)) = self.delayed.pop_first() else {
                break;
            };
            // A later trigger may have moved this Receiver's turn earlier
            // (already counted then) or it may have run since.
            if self.waiting.get(&key) == Some(&at) {
                self.due += 1;
                newly_due += 1;
            }
        }
        Settled { newly_due }
    }

    /// `key` asks to be reconciled at `at`; whether it was added to the
    /// queue now (due and not waiting already).
    fn add(&mut self, key: ReceiverKey, at: Instant, now: Instant) -> bool {
        match self.waiting.get(&key).copied() {
            Some(waiting) if waiting <= at => false,
            Some(waiting) => {
                // Its turn moves earlier, as kube-runtime's scheduler keeps
                // the earliest.
                let was_due = waiting <= now;
                self.delayed.remove(&(waiting, key.clone()));
                self.waiting.insert(key.clone(), at);
                if at <= now {
                    if !was_due {
                        self.due += 1;
                        return true;
                    }
                    false
                } else {
                    self.delayed.insert((at, key));
                    false
                }
            }
            None => {
                self.waiting.insert(key.clone(), at);
                if at <= now {
                    self.due += 1;
                    true
                } else {
                    self.delayed.insert((at, key));
                    false
                }
            }
        }
    }

    /// `key` leaves the queue to be reconciled: how long it waited since it
    /// was due, if it was.
    fn take(&mut self, key: &ReceiverKey, now: Instant) -> Option<Duration> {
        let at = self.waiting.remove(key)?;
        if at <= now {
            self.due = self.due.saturating_sub(1);
            Some(now.saturating_duration_since(at))
        } else {
            self.delayed.remove(&(at, key.clone()));
            None
        }
    }
}

impl QueueMetrics {
    fn state(&self) -> MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn register(self: &Arc<Self>, registry: &mut Registry) {
        registry.register(
            "workqueue_adds",
            "Total number of adds handled by workqueue",
            self.adds.clone(),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            self.queue_duration.clone(),
        );
        registry.register(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes.",
            self.work_duration.clone(),
        );
        registry.register(
            "workqueue_retries",
            "Total number of items added to the workqueue with a non-zero delay (rate-limited \
             requeues, explicit RequeueAfter or AddAfter calls)",
            self.retries.clone(),
        );
        registry.register_collector(Box::new(QueueGauges(Arc::clone(self))));
    }

    fn add(&self, key: ReceiverKey, now: Instant) {
        let added = {
            let mut state = self.state();
            let settled = state.settle(now);
            u64::from(state.add(key, now, now)) + settled.newly_due
        };
        self.adds.get_or_create(&QUEUE).inc_by(added);
    }

    fn requeue(&self, key: ReceiverKey, action: &Action, now: Instant) {
        let at = match requeue_after(action) {
            Requeue::Never => return,
            Requeue::Now => now,
            Requeue::After(delay) => now.checked_add(delay).unwrap_or(now),
        };
        // client-go counts every requeue with a delay (AddAfter,
        // AddRateLimited) as a retry.
        self.retries.get_or_create(&QUEUE).inc();
        let added = {
            let mut state = self.state();
            let settled = state.settle(now);
            u64::from(state.add(key, at, now)) + settled.newly_due
        };
        self.adds.get_or_create(&QUEUE).inc_by(added);
    }

    fn start(&self, key: &ReceiverKey, now: Instant) -> u64 {
        let (waited, newly_due, run) = {
            let mut state = self.state();
            let settled = state.settle(now);
            let waited = state.take(key, now);
            let run = state.next_run;
            state.next_run = state.next_run.wrapping_add(1);
            state.running.insert(run, now);
            (waited, settled.newly_due, run)
        };
        self.adds.get_or_create(&QUEUE).inc_by(newly_due);
        if let Some(waited) = waited {
            self.queue_duration
                .get_or_create(&QUEUE)
                .observe(waited.as_secs_f64());
        }
        run
    }

    fn done(&self, run: u64, elapsed: f64) {
        self.state().running.remove(&run);
        self.work_duration.get_or_create(&QUEUE).observe(elapsed);
    }

    fn forget(&self, key: &ReceiverKey) {
        let mut state = self.state();
        let now = Instant::now();
        let settled = state.settle(now);
        state.take(key, now);
        drop(state);
        self.adds.get_or_create(&QUEUE).inc_by(settled.newly_due);
    }

    /// Depth, unfinished work and longest running processor at `now`.
    fn gauges(&self, now: Instant) -> (usize, f64, f64) {
        let (depth, unfinished, longest, newly_due) = {
            let mut state = self.state();
            let settled = state.settle(now);
            let mut unfinished = 0.0;
            let mut longest: f64 = 0.0;
            for started in state.running.values() {
                let seconds = now.saturating_duration_since(*started).as_secs_f64();
                unfinished += seconds;
                longest = longest.max(seconds);
            }
            (state.due, unfinished, longest, settled.newly_due)
        };
        self.adds.get_or_create(&QUEUE).inc_by(newly_due);
        (depth, unfinished, longest)
    }
}

/// The queue's gauges, computed at each scrape.
#[derive(Debug)]
struct QueueGauges(Arc<QueueMetrics>);

impl Collector for QueueGauges {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), fmt::Error> {
        let (depth, unfinished, longest) = self.0.gauges(Instant::now());
        let depth_labels = [
            ("name", CONTROLLER_NAME),
            ("controller", CONTROLLER_NAME),
            // kube-runtime's queue has no priorities: the label is empty, as
            // controller-runtime leaves it for a queue without them.
            ("priority", ""),
        ];
        let depth_gauge = ConstGauge::new(i64::try_from(depth).unwrap_or(i64::MAX));
        let mut family = encoder.encode_descriptor(
            "workqueue_depth",
            "Current depth of workqueue by workqueue and priority",
            None,
            depth_gauge.metric_type(),
        )?;
        depth_gauge.encode(family.encode_family(&depth_labels)?)?;

        for (name, help, value) in [
            (
                "workqueue_unfinished_work_seconds",
                "How many seconds of work has been done that is in progress and hasn't been \
                 observed by work_duration. Large values indicate stuck threads. One can deduce \
                 the number of stuck threads by observing the rate at which this increases.",
                unfinished,
            ),
            (
                "workqueue_longest_running_processor_seconds",
                "How many seconds has the longest running processor for workqueue been running.",
                longest,
            ),
        ] {
            let gauge = ConstGauge::new(value);
            let mut family = encoder.encode_descriptor(name, help, None, gauge.metric_type())?;
            gauge.encode(family.encode_family(&QUEUE)?)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use kube::api::DynamicObject;
    use kube::discovery::ApiResource;
    use prometheus_client::encoding::text::encode;

    use super::*;

    fn key(name: &str) -> ReceiverKey {
        ReceiverKey {
            namespace: "flux-system".into(),
            name: name.into(),
        }
    }

    fn receiver(name: &str) -> Arc<DynamicObject> {
        let resource = ApiResource::erase::<fluxhook_api::Receiver>(&());
        Arc::new(DynamicObject::new(name, &resource).within("flux-system"))
    }

    fn exposition(metrics: &ControllerMetrics) -> String {
        let mut registry = Registry::default();
        metrics.register(&mut registry);
        let mut text = String::new();
        encode(&mut text, &registry).unwrap();
        text
    }

    /// The value of the series `line_start` (name and labels) in `text`.
    fn value(text: &str, series: &str) -> f64 {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("{series} not in\n{text}"))
            .parse()
            .unwrap()
    }

    /// Asserts the value of each series in `text`.
    fn assert_values(text: &str, expected: &[(&str, f64)]) {
        for (series, value_expected) in expected {
            assert_eq!(value(text, series), *value_expected, "{series}");
        }
    }

    #[test]
    fn the_kind_and_group_are_the_receivers() {
        assert_eq!(
            <fluxhook_api::Receiver as Resource>::kind(&()),
            CONTROLLER_KIND
        );
        assert_eq!(
            <fluxhook_api::Receiver as Resource>::group(&()),
            CONTROLLER_GROUP
        );
        assert_eq!(CONTROLLER_NAME, CONTROLLER_KIND.to_lowercase());
    }

    #[test]
    fn requeue_delays_are_read_from_actions() {
        assert_eq!(requeue_after(&Action::await_change()), Requeue::Never);
        assert_eq!(
            requeue_after(&Action::requeue(Duration::ZERO)),
            Requeue::Now
        );
        for delay in [
            Duration::from_secs(600),
            Duration::from_millis(750),
            Duration::from_millis(1500),
            Duration::from_micros(20),
            Duration::from_nanos(100),
            Duration::from_secs(15 * 60),
        ] {
            match requeue_after(&Action::requeue(delay)) {
                Requeue::After(read) => {
                    let error = read.abs_diff(delay);
                    assert!(
                        error < Duration::from_micros(1),
                        "{delay:?} read as {read:?}"
                    );
                }
                other => panic!("{delay:?} read as {other:?}"),
            }
        }
        assert_eq!(
            parse_debug_duration("1.000000001s"),
            Some(Duration::from_nanos(1_000_000_001))
        );
        assert_eq!(parse_debug_duration("soon"), None);
    }

    #[test]
    fn the_queue_counts_adds_once_per_wait_and_its_depth() {
        let t0 = Instant::now();
        let at = |seconds: u64| t0 + Duration::from_secs(seconds);
        let mut queue = QueueState::default();
        assert!(queue.add(key("a"), at(0), at(0)));
        // Already waiting: not added again.
        assert!(!queue.add(key("a"), at(0), at(1)));
        assert!(queue.add(key("b"), at(1), at(1)));
        assert_eq!(queue.due, 2);
        assert_eq!(queue.take(&key("a"), at(3)), Some(Duration::from_secs(3)));
        assert_eq!(queue.due, 1);
        // A requeue in 600 s is not in the queue until then.
        assert!(!queue.add(key("a"), at(603), at(3)));
        assert_eq!(queue.due, 1);
        assert_eq!(queue.settle(at(602)).newly_due, 0);
        assert_eq!(queue.settle(at(603)).newly_due, 1);
        assert_eq!(queue.due, 2);
        assert_eq!(queue.take(&key("a"), at(605)), Some(Duration::from_secs(2)));
        // A trigger moves a delayed turn earlier, counted as added then, and
        // the delayed turn is not counted again.
        assert!(!queue.add(key("a"), at(1200), at(605)));
        assert!(queue.add(key("a"), at(700), at(700)));
        assert_eq!(queue.settle(at(1300)).newly_due, 0);
        assert_eq!(queue.take(&key("a"), at(701)), Some(Duration::from_secs(1)));
        // Taken before its time (a trigger the queue did not see): no wait.
        assert!(!queue.add(key("c"), at(2000), at(701)));
        assert_eq!(queue.take(&key("c"), at(702)), None);
        assert_eq!(queue.settle(at(3000)).newly_due, 0);
        assert_eq!(queue.due, 1);
        assert_eq!(
            queue.take(&key("b"), at(3000)),
            Some(Duration::from_secs(2999))
        );
        assert_eq!(queue.due, 0);
        assert!(queue.waiting.is_empty() && queue.delayed.is_empty());
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read Secret flux-system/token")]
    struct Failed;

    #[tokio::test]
    async fn reconciliations_are_counted_as_controller_runtime_counts_them() {
        let metrics = ControllerMetrics::new();
        metrics.set_max_concurrent_reconciles(4);
        let mut reconcile =
            metrics.reconciler(|object: Arc<DynamicObject>, _ctx: Arc<()>| async move {
                match object.metadata.name.as_deref() {
                    Some("ok") => Ok(Action::requeue(Duration::from_secs(600))),
                    Some("suspended") => Ok(Action::await_change()),
                    _ => Err(Failed),
                }
            });
        let policy = metrics.error_policy(|_: Arc<DynamicObject>, _: &Failed, _: Arc<()>| {
            Action::requeue(Duration::from_millis(750))
        });
        let trigger = metrics.counted_triggers(futures::stream::iter([
            Ok::<_, ()>((*receiver("ok")).clone()),
            Ok((*receiver("failing")).clone()),
        ]));
        assert_eq!(trigger.count().await, 2);
        let mapped = metrics.counted_mapper(|_: ()| {
            vec![
                ObjectRef::<DynamicObject>::new_with(
                    "suspended",
                    ApiResource::erase::<fluxhook_api::Receiver>(&()),
                )
                .within("flux-system"),
            ]
        });
        assert_eq!(mapped(()).len(), 1);
        assert_eq!(
            value(
                &exposition(&metrics),
                r#"workqueue_depth{name="receiver",controller="receiver",priority=""}"#
            ),
            3.0
        );

        reconcile(receiver("ok"), Arc::new(())).await.unwrap();
        reconcile(receiver("suspended"), Arc::new(()))
            .await
            .unwrap();
        let failing = receiver("failing");
        let error = reconcile(Arc::clone(&failing), Arc::new(()))
            .await
            .unwrap_err();
        policy(failing, &error, Arc::new(()));

        let text = exposition(&metrics);
        let total = |result: &str| {
            value(
                &text,
                &format!(
                    r#"controller_runtime_reconcile_total{{controller="receiver",result="{result}"}}"#
                ),
            )
        };
        assert_eq!(total("requeue_after"), 1.0);
        assert_eq!(total("success"), 1.0);
        assert_eq!(total("error"), 1.0);
        assert_eq!(total("requeue"), 0.0);
        assert_values(
            &text,
            &[
                (
                    r#"controller_runtime_reconcile_errors_total{controller="receiver"}"#,
                    1.0,
                ),
                (
                    r#"controller_runtime_reconcile_time_seconds_count{controller="receiver"}"#,
                    3.0,
                ),
                (
                    r#"controller_runtime_active_workers{controller="receiver"}"#,
                    0.0,
                ),
                (
                    r#"controller_runtime_max_concurrent_reconciles{controller="receiver"}"#,
                    4.0,
                ),
            ],
        );
        let queue = |series: &str| {
            value(
                &text,
                &format!(r#"{series}{{name="receiver",controller="receiver"}}"#),
            )
        };
        assert_eq!(queue("workqueue_adds_total"), 3.0);
        assert_eq!(queue("workqueue_retries_total"), 2.0);
        assert_eq!(queue("workqueue_queue_duration_seconds_count"), 3.0);
        assert_eq!(queue("workqueue_work_duration_seconds_count"), 3.0);
        assert_eq!(queue("workqueue_unfinished_work_seconds"), 0.0);
        assert_eq!(queue("workqueue_longest_running_processor_seconds"), 0.0);
        // The requeues are not due yet.
        assert_eq!(
            value(
                &text,
                r#"workqueue_depth{name="receiver",controller="receiver",priority=""}"#
            ),
            0.0
        );
        for name in ["ok", "suspended", "failing"] {
            assert_eq!(
                value(
                    &text,
                    &format!(
                        r#"gotk_reconcile_duration_seconds_count{{kind="Receiver",name="{name}",namespace="flux-system"}}"#
                    )
                ),
                1.0
            );
        }
        let buckets = text
            .lines()
            .filter(|l| {
                l.starts_with("gotk_reconcile_duration_seconds_bucket{")
                    && l.contains(r#"name="ok""#)
            })
            .count();
        assert_eq!(buckets, usize::from(GOTK_DURATION_BUCKETS) + 1);
        assert!(
            text.contains(r#"le="1800.0""#) || text.contains(r#"le="1799.99"#),
            "{text}"
        );

        metrics.forget(&key("ok"));
        let text = exposition(&metrics);
        assert!(!text.contains(r#"name="ok""#), "{text}");
        assert!(text.contains(r#"name="suspended""#), "{text}");
    }

    #[tokio::test]
    async fn a_running_reconciliation_is_unfinished_work() {
        let metrics = ControllerMetrics::new();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Arc::new(Mutex::new(Some(released)));
        let mut reconcile = metrics.reconciler(move |_: Arc<DynamicObject>, _: Arc<()>| {
            let released = released.lock().unwrap().take();
            async move {
                if let Some(released) = released {
                    let _ = released.await;
                }
                Ok::<_, Failed>(Action::await_change())
            }
        });
        let running = tokio::spawn(reconcile(receiver("slow"), Arc::new(())));
        // Wait, without a deadline on success, for the worker to start.
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let text = exposition(&metrics);
            if value(
                &text,
                r#"controller_runtime_active_workers{controller="receiver"}"#,
            ) == 1.0
            {
                assert!(
                    value(
                        &text,
                        r#"workqueue_unfinished_work_seconds{name="receiver",controller="receiver"}"#
                    ) >= 0.0
                );
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the reconciliation never started"
            );
            tokio::task::yield_now().await;
        }
        release.send(()).unwrap();
        running.await.unwrap().unwrap();
        assert_values(
            &exposition(&metrics),
            &[
                (
                    r#"controller_runtime_active_workers{controller="receiver"}"#,
                    0.0,
                ),
                (
                    r#"workqueue_longest_running_processor_seconds{name="receiver",controller="receiver"}"#,
                    0.0,
                ),
            ],
        );
    }
}
