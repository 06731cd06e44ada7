//! Kubernetes Events about Receivers, recorded as notification-controller records them and
//! deduplicated as client-go's event correlator deduplicates them, with the
//! `events.k8s.io/v1` API.
//!
//! notification-controller (v1.9, `internal/controller/receiver_controller.go`) records, on
//! each reconciliation of a Receiver:
//!
//! - `Normal`, reason `Succeeded`, "Reconciliation finished, next run in 10m0s" when it ends
//!   without error with `Ready=True` ([`succeeded`]);
//! - `Warning` with the `Ready` reason (`InvalidCELExpression`, `ValidationFailed`) and the
//!   terminal message when the spec cannot be served ([`stalled`]);
//! - `Warning`, reason `Failed`, with the error when the reconciliation fails and is retried
//!   (a missing Secret or token, an unreadable Secret, a refused write) ([`failed`]).
//!
//! Its recorder is client-go's (`k8s.io/client-go/tools/record/events_cache.go`), whose
//! correlator this module follows, so that a Receiver reconciled every 10 minutes keeps one
//! Event with a growing count instead of a stream of identical ones:
//!
//! - **Deduplication**: an Event identical to one recorded before (same object, type,
//!   reason, action, related object and note) is not created again: the first one's
//!   `series` (`count`, `lastObservedTime`) is updated. client-go patches `count` and
//!   `lastTimestamp` on core/v1 Events the same way; events.k8s.io/v1 keeps them in `series`
//!   and makes `note` immutable, which is why only the series is patched. An Event that has
//!   expired from the API server meanwhile (`--event-ttl`, one hour by default, counted from
//!   its last write) is created anew under the same name, with its series.
//!
//! Writes are correct under any interleaving, as client-go's `tools/events` recorder
//! (`event_broadcaster.go`: `recordToSink`, `recordEvent`) makes them:
//!
//! - an occurrence is counted (its Event claimed, its count raised) before anything is
//!   written, and what is remembered is never undone by a failed write: a create whose
//!   answer was lost (a timeout, a write cut short when this replica stops leading) may
//!   have been stored, so the next occurrence patches that name; if the patch finds
//!   nothing (404) it creates the Event under that same name, with its series;
//! - a create of a series answered `AlreadyExists` (409) means the Event now exists (a
//!   late create of the same name landed meanwhile): the series patch is tried again. A
//!   first create answered 409 is this very write, stored by an attempt whose answer was
//!   lost (kube's client retries a POST answered 429, 503 or 504): there is nothing left to
//!   do, as client-go does not retry it;
//! - the writes about one object are made one at a time, in the order their occurrences
//!   were counted (client-go has one worker draining a queue), so a count never goes back.
//! - **Aggregation**: from the tenth distinct note with the same type and reason about one
//!   object within ten minutes of the previous one, the notes are combined into one Event
//!   whose note starts with `(combined from similar events): `, counted as a series.
//!
//! client-go also drops events of an object past a budget (25, then one every five
//! minutes). fluxhook does not: a Receiver's Events are already bounded by its
//! reconciliations, which back off up to `--max-retry-delay`, and a budget spent by a noisy
//! period would drop the first Event of the next, different problem — the one an operator
//! needs.
//!
//! Memory is bounded: what is remembered of an object is dropped when it is deleted or has
//! recorded nothing for an hour (its Events have then expired), at most
//! [`MAX_EVENTS_PER_OBJECT`] distinct Events are remembered per object, and at most
//! [`MAX_OBJECTS`] objects, the least recently recorded about forgotten first, as
//! client-go's correlator keeps its caches in LRUs of 4,096 entries (`maxLruCacheEntries`
//! in `tools/record/events_cache.go`, the default of `CorrelatorOptions.LRUCacheSize`).
//! A forgotten object's next Event is created anew rather than counted: what client-go
//! does once its LRU has dropped an Event's key.
//!
//! Every Event the controller writes goes through [`Recorder::publish`], so that whether
//! this replica may write at all is decided in one place.

use std::collections::hash_map::DefaultHasher;
use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::api::events::v1::{Event as KubeEvent, EventSeries};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, Patch, PatchParams, PostParams};
pub(crate) use kube::runtime::events::{Event, EventType};
use serde_json::json;

/// The reporting controller of every Event (`reportingController`).
pub(crate) const REPORTING_CONTROLLER: &str = "fluxhook-receiver";

/// The action of the Events about a Receiver's reconciliation.
pub(crate) const RECONCILE_ACTION: &str = "Reconcile";

/// Flux's event reasons (`github.com/fluxcd/pkg/apis/meta`).
pub(crate) mod reason {
    /// A reconciliation ended with the Receiver ready (`Normal`).
    pub(crate) const SUCCEEDED: &str = "Succeeded";
    /// A reconciliation failed and is retried (`Warning`).
    pub(crate) const FAILED: &str = "Failed";
}

/// The longest note the events.k8s.io/v1 API accepts, in bytes.
const MAX_NOTE_BYTES: usize = 1024;
/// client-go's aggregation: this many distinct notes ...
const AGGREGATE_AFTER_NOTES: usize = 10;
/// ... each within this time of the previous one.
const AGGREGATE_INTERVAL: Duration = Duration::from_secs(600);
/// The prefix of an aggregated note, as client-go words it.
const AGGREGATE_PREFIX: &str = "(combined from similar events): ";
/// What has recorded nothing for this long is forgotten: the API server's default
/// `--event-ttl` has removed its Events.
const FORGET_AFTER: Duration = Duration::from_secs(3600);
/// The distinct Events remembered per object; the least recently seen go first.
pub(crate) const MAX_EVENTS_PER_OBJECT: usize = 32;
/// The objects whose Events are remembered; the least recently recorded about go first.
/// client-go's `maxLruCacheEntries`: with 10,000 Receivers each recording an Event at
/// start-up, remembering them all for an hour held about 19 MiB.
pub(crate) const MAX_OBJECTS: usize = 4096;

/// `Normal`/`Succeeded`: the reconciliation ended with the Receiver ready.
pub(crate) fn succeeded(interval: Duration) -> Event {
    Event {
        type_: EventType::Normal,
        reason: reason::SUCCEEDED.to_string(),
        note: Some(format!(
            "Reconciliation finished, next run in {}",
            go_duration(interval)
        )),
        action: RECONCILE_ACTION.to_string(),
        secondary: None,
    }
}

/// `Warning` with the `Ready` reason: the spec cannot be served until it changes.
pub(crate) fn stalled(reason: &str, message: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason.to_string(),
        note: Some(message.to_string()),
        action: RECONCILE_ACTION.to_string(),
        secondary: None,
    }
}

/// `Warning`/`Failed`: the reconciliation failed and is retried.
pub(crate) fn failed(error: &str) -> Event {
    Event {
        type_: EventType::Warning,
        reason: reason::FAILED.to_string(),
        note: Some(error.to_string()),
        action: RECONCILE_ACTION.to_string(),
        secondary: None,
    }
}

/// A duration as Go's `time.Duration.String` writes it (`10m0s`, `1h0m0s`, `30s`, `1.5s`,
/// `500ms`), which is how Flux's messages show `spec.interval`.
pub(crate) fn go_duration(duration: Duration) -> String {
    let nanos = duration.as_nanos();
    if nanos == 0 {
        return "0s".to_string();
    }
    if nanos < 1_000 {
        return format!("{nanos}ns");
    }
    if nanos < 1_000_000 {
        return format!("{}µs", decimal(nanos, 1_000));
    }
    if nanos < 1_000_000_000 {
        return format!("{}ms", decimal(nanos, 1_000_000));
    }
    let seconds = duration.as_secs();
    let (hours, minutes) = (seconds / 3600, seconds % 3600 / 60);
    let rest = u128::from(seconds % 60) * 1_000_000_000 + u128::from(duration.subsec_nanos());
    let seconds = format!("{}s", decimal(rest, 1_000_000_000));
    match (hours, minutes) {
        (0, 0) => seconds,
        (0, minutes) => format!("{minutes}m{seconds}"),
        (hours, minutes) => format!("{hours}h{minutes}m{seconds}"),
    }
}

/// `value / unit` with its fraction, without trailing zeros.
fn decimal(value: u128, unit: u128) -> String {
    let (whole, fraction) = (value / unit, value % unit);
    if fraction == 0 {
        return whole.to_string();
    }
    let width = unit.ilog10() as usize;
    let fraction = format!("{fraction:0width$}");
    format!("{whole}.{}", fraction.trim_end_matches('0'))
}

/// How many times a series is written when the Event is found missing, then created by
/// another write meanwhile: each round means an Event of that name appeared or vanished
/// in between, which only a late write or the API server's TTL does, so three suffice.
const SERIES_ATTEMPTS: usize = 3;

/// Where Events are written: the events.k8s.io/v1 API ([`ApiSink`]); a fake in tests.
pub(crate) trait EventSink: Send + Sync {
    /// Creates `event` in its namespace.
    fn create(&self, event: &KubeEvent) -> impl Future<Output = Result<(), kube::Error>> + Send;

    /// Sets the `series` of the Event `namespace/name` (a merge patch).
    fn patch_series(
        &self,
        namespace: &str,
        name: &str,
        series: &EventSeries,
    ) -> impl Future<Output = Result<(), kube::Error>> + Send;
}

/// The events.k8s.io/v1 API of a cluster.
pub(crate) struct ApiSink(kube::Client);

impl EventSink for ApiSink {
    async fn create(&self, event: &KubeEvent) -> Result<(), kube::Error> {
        let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
        let events: Api<KubeEvent> = Api::namespaced(self.0.clone(), namespace);
        events.create(&PostParams::default(), event).await.map(drop)
    }

    async fn patch_series(
        &self,
        namespace: &str,
        name: &str,
        series: &EventSeries,
    ) -> Result<(), kube::Error> {
        let events: Api<KubeEvent> = Api::namespaced(self.0.clone(), namespace);
        let patch = json!({ "series": series });
        events
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map(drop)
    }
}

/// Writes Events about Receivers, deduplicated and aggregated.
pub(crate) struct Recorder<S = ApiSink> {
    sink: S,
    instance: String,
    correlator: Mutex<Correlator>,
    /// The write under way about each object: one at a time per object.
    writing: Mutex<HashMap<ObjectKey, Arc<tokio::sync::Mutex<()>>>>,
}

impl Recorder {
    /// A recorder writing with `client`; the reporting instance is the pod's name (its
    /// `HOSTNAME`), as client-go's recorders take the host name.
    pub(crate) fn new(client: kube::Client) -> Self {
        let instance = std::env::var("HOSTNAME")
            .ok()
            .filter(|name| !name.is_empty() && name.len() <= 128)
            .unwrap_or_else(|| REPORTING_CONTROLLER.to_string());
        Self::with_sink(ApiSink(client), instance)
    }
}

impl<S: EventSink> Recorder<S> {
    fn with_sink(sink: S, instance: String) -> Self {
        Self {
            sink,
            instance,
            correlator: Mutex::default(),
            writing: Mutex::default(),
        }
    }

    /// Records `event` about `regarding` (in its namespace). A failure to write is logged,
    /// never returned: Events are informative, and a reconciliation does not fail for one.
    ///
    /// It waits for the write under way about the same object, if any. Dropped before it
    /// ends (this replica stopped leading), what it counted stays counted, and the next
    /// occurrence writes it.
    pub(crate) async fn publish(&self, regarding: &ObjectReference, event: &Event) {
        let turn = Turn::take(&self.writing, ObjectKey::of(regarding));
        let _writing = turn.lock().await;
        let write = self
            .correlator()
            .correlate(regarding, event, &self.instance, Timestamp::now());
        if let Err(error) = self.write(write).await {
            tracing::warn!(
                %error,
                reason = event.reason.as_str(),
                name = regarding.name.as_deref().unwrap_or_default(),
                namespace = regarding.namespace.as_deref().unwrap_or_default(),
                "cannot record an Event"
            );
        }
    }

    async fn write(&self, write: Write) -> Result<(), kube::Error> {
        match write {
            Write::Create { event } => match self.sink.create(&event).await {
                Err(kube::Error::Api(status)) if status.is_already_exists() => Ok(()),
                created => created,
            },
            Write::Series { event, series } => {
                let namespace = event.metadata.namespace.as_deref().unwrap_or("default");
                let name = event.metadata.name.as_deref().unwrap_or_default();
                let mut attempt = 1;
                loop {
                    match self.sink.patch_series(namespace, name, &series).await {
                        Err(kube::Error::Api(status)) if status.is_not_found() => {}
                        patched => return patched,
                    }
                    // Expired, or never stored: created under its name, with its series.
                    match self.sink.create(&event).await {
                        Err(kube::Error::Api(status))
                            if status.is_already_exists() && attempt < SERIES_ATTEMPTS =>
                        {
                            attempt += 1;
                        }
                        created => return created,
                    }
                }
            }
        }
    }

    /// Forgets what was recorded about a Receiver that is gone.
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        self.correlator().forget_object(namespace, name);
    }

    fn correlator(&self) -> MutexGuard<'_, Correlator> {
        lock(&self.correlator)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A place in the line of writes about one object. The last one out removes the line, so
/// that only objects with a write under way or waiting are kept.
struct Turn<'a> {
    lines: &'a Mutex<HashMap<ObjectKey, Arc<tokio::sync::Mutex<()>>>>,
    object: ObjectKey,
    line: Option<Arc<tokio::sync::Mutex<()>>>,
}

impl<'a> Turn<'a> {
    fn take(
        lines: &'a Mutex<HashMap<ObjectKey, Arc<tokio::sync::Mutex<()>>>>,
        object: ObjectKey,
    ) -> Self {
        let line = Arc::clone(lock(lines).entry(object.clone()).or_default());
        Self {
            lines,
            object,
            line: Some(line),
        }
    }

    /// Waits until the writes before this one are done.
    async fn lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.line {
            Some(line) => Some(line.lock().await),
            None => None,
        }
    }
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let mut lines = lock(self.lines);
        drop(self.line.take());
        if lines
            .get(&self.object)
            .is_some_and(|line| Arc::strong_count(line) == 1)
        {
            lines.remove(&self.object);
        }
    }
}

/// The object an Event is about; its uid tells a re-created object apart.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ObjectKey {
    namespace: String,
    name: String,
    kind: String,
    api_version: String,
    uid: String,
}

impl ObjectKey {
    fn of(reference: &ObjectReference) -> Self {
        let text = |field: &Option<String>| field.clone().unwrap_or_default();
        Self {
            namespace: text(&reference.namespace),
            name: text(&reference.name),
            kind: text(&reference.kind),
            api_version: text(&reference.api_version),
            uid: text(&reference.uid),
        }
    }
}

/// What makes Events about one object the same, as client-go's `getEventKey`: the note is
/// kept as a hash (`None` for an aggregate Event, which stands for every note).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct EventKey {
    type_: &'static str,
    reason: String,
    action: String,
    /// Boxed: rarely set, and five strings wide.
    related: Option<Box<ObjectKey>>,
    note: Option<u64>,
}

/// What makes Events similar, as client-go's `EventAggregatorByReasonFunc`: all but the note.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SimilarKey {
    type_: &'static str,
    reason: String,
}

/// An Event recorded about an object.
#[derive(Debug, Clone)]
struct Logged {
    name: String,
    /// Its `eventTime`: when it first occurred.
    first_observed: Timestamp,
    count: i32,
    last_observed: Timestamp,
}

/// Distinct notes of similar Events (fewer than [`AGGREGATE_AFTER_NOTES`]), the last one
/// seen at `last`.
#[derive(Debug, Clone)]
struct Similar {
    notes: Vec<u64>,
    last: Timestamp,
}

/// What is remembered of one object. An object has a few distinct Events (at most
/// [`MAX_EVENTS_PER_OBJECT`]), so they are kept in lists searched in order, each allocated
/// to its length: a hash map per object cost more than the rest of the entry (a Receiver's
/// entry went from about 2.3 KB to under 1 KB, 4,096 of them being remembered).
#[derive(Debug, Default)]
struct ObjectEvents {
    logged: Vec<(EventKey, Logged)>,
    similar: Vec<(SimilarKey, Similar)>,
    last_seen: Option<Timestamp>,
    /// Its place in [`Correlator::recency`].
    touched: u64,
}

/// What to write for an occurrence.
#[derive(Debug)]
enum Write {
    /// A new Event.
    Create { event: KubeEvent },
    /// One more occurrence of an Event: its `series`, and the whole Event (named as it
    /// was, with that series) to create again if it is missing.
    Series {
        series: EventSeries,
        event: KubeEvent,
    },
}

/// client-go's correlator, without I/O: decides what each occurrence writes.
#[derive(Debug, Default)]
struct Correlator {
    objects: HashMap<Arc<ObjectKey>, ObjectEvents>,
    /// The objects by when an Event was last recorded about them (a counter, oldest
    /// first): the LRU order of [`MAX_OBJECTS`].
    recency: BTreeMap<u64, Arc<ObjectKey>>,
    clock: u64,
    last_sweep: Option<Timestamp>,
}

impl Correlator {
    fn correlate(
        &mut self,
        regarding: &ObjectReference,
        event: &Event,
        instance: &str,
        now: Timestamp,
    ) -> Write {
        self.sweep(now);
        let object = Arc::new(ObjectKey::of(regarding));
        self.clock += 1;
        let touched = self.clock;
        match self.objects.get(&object) {
            Some(known) => {
                self.recency.remove(&known.touched);
            }
            None if self.objects.len() >= MAX_OBJECTS => {
                if let Some((_, oldest)) = self.recency.pop_first() {
                    self.objects.remove(&oldest);
                }
            }
            None => {}
        }
        let record = self.objects.entry(object.clone()).or_default();
        record.touched = touched;
        self.recency.insert(touched, object);
        record.last_seen = Some(now);
        let type_ = match event.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let note = event.note.clone().unwrap_or_default();
        let note_hash = hash(&note);

        // Aggregation, as client-go's `EventAggregate`.
        let similar_key = SimilarKey {
            type_,
            reason: event.reason.clone(),
        };
        let at = match record
            .similar
            .iter()
            .position(|(key, _)| *key == similar_key)
        {
            Some(at) => at,
            None => {
                let similar = Similar {
                    notes: Vec::new(),
                    last: now,
                };
                push_exact(&mut record.similar, (similar_key, similar));
                record.similar.len() - 1
            }
        };
        let similar = &mut record.similar[at].1;
        if elapsed(similar.last, now) > AGGREGATE_INTERVAL {
            similar.notes.clear();
        }
        if !similar.notes.contains(&note_hash) {
            push_exact(&mut similar.notes, note_hash);
        }
        similar.last = now;
        let aggregated = similar.notes.len() >= AGGREGATE_AFTER_NOTES;
        if aggregated {
            // The list never grows past the threshold: the oldest note goes.
            similar.notes.remove(0);
        }
        let (note, note_key) = if aggregated {
            (format!("{AGGREGATE_PREFIX}{note}"), None)
        } else {
            (note, Some(note_hash))
        };
        let key = EventKey {
            type_,
            reason: event.reason.clone(),
            action: event.action.clone(),
            related: event
                .secondary
                .as_ref()
                .map(|related| Box::new(ObjectKey::of(related))),
            note: note_key,
        };
        let note = truncate(&note);

        // Deduplication, as client-go's `eventObserve`.
        if let Some((_, logged)) = record.logged.iter_mut().find(|(known, _)| *known == key) {
            logged.count = logged.count.saturating_add(1);
            logged.last_observed = now;
            let series = EventSeries {
                count: logged.count,
                last_observed_time: MicroTime(now),
            };
            let mut again = new_event(
                regarding,
                event,
                type_,
                note,
                instance,
                logged.first_observed,
            );
            again.metadata.name = Some(logged.name.clone());
            again.series = Some(series.clone());
            return Write::Series {
                series,
                event: again,
            };
        }
        let fresh = new_event(regarding, event, type_, note, instance, now);
        if record.logged.len() >= MAX_EVENTS_PER_OBJECT
            && let Some(oldest) = record
                .logged
                .iter()
                .enumerate()
                .min_by_key(|(_, (_, logged))| logged.last_observed)
                .map(|(at, _)| at)
        {
            record.logged.swap_remove(oldest);
        }
        let logged = Logged {
            name: fresh.metadata.name.clone().unwrap_or_default(),
            first_observed: now,
            count: 1,
            last_observed: now,
        };
        push_exact(&mut record.logged, (key, logged));
        Write::Create { event: fresh }
    }

    fn forget_object(&mut self, namespace: &str, name: &str) {
        let recency = &mut self.recency;
        self.objects.retain(|object, record| {
            let keep = object.namespace != namespace || object.name != name;
            if !keep {
                recency.remove(&record.touched);
            }
            keep
        });
    }

    /// Drops what has recorded nothing for [`FORGET_AFTER`], at most once a minute.
    fn sweep(&mut self, now: Timestamp) {
        if self
            .last_sweep
            .is_some_and(|last| elapsed(last, now) < Duration::from_secs(60))
        {
            return;
        }
        self.last_sweep = Some(now);
        let recency = &mut self.recency;
        self.objects.retain(|_, record| {
            record
                .logged
                .retain(|(_, logged)| elapsed(logged.last_observed, now) <= FORGET_AFTER);
            record
                .similar
                .retain(|(_, similar)| elapsed(similar.last, now) <= AGGREGATE_INTERVAL);
            let keep = record
                .last_seen
                .is_some_and(|seen| elapsed(seen, now) <= FORGET_AFTER);
            if !keep {
                recency.remove(&record.touched);
            }
            keep
        });
    }
}

/// Appends `item`, growing `list` by one place only: the lists of a correlator entry hold a
/// few items each, and the usual doubling (from four places) would mostly stay empty.
fn push_exact<T>(list: &mut Vec<T>, item: T) {
    list.reserve_exact(1);
    list.push(item);
}

/// The time from `earlier` to `later`; zero if the clock went back.
fn elapsed(earlier: Timestamp, later: Timestamp) -> Duration {
    Duration::try_from(later.duration_since(earlier)).unwrap_or_default()
}

fn hash(note: &str) -> u64 {
    let mut hasher = DefaultHasher::new();
    note.hash(&mut hasher);
    hasher.finish()
}

/// `note` cut to what the API accepts, at a character boundary.
fn truncate(note: &str) -> String {
    if note.len() <= MAX_NOTE_BYTES {
        return note.to_string();
    }
    let ellipsis = "…";
    let mut end = MAX_NOTE_BYTES - ellipsis.len();
    while !note.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{ellipsis}", &note[..end])
}

/// A new events.k8s.io/v1 Event, named as client-go names them: the object's name and the
/// time in hexadecimal nanoseconds.
fn new_event(
    regarding: &ObjectReference,
    event: &Event,
    type_: &str,
    note: String,
    instance: &str,
    now: Timestamp,
) -> KubeEvent {
    let object = regarding.name.as_deref().unwrap_or(REPORTING_CONTROLLER);
    KubeEvent {
        metadata: ObjectMeta {
            name: Some(format!("{object}.{:x}", now.as_nanosecond())),
            namespace: regarding.namespace.clone(),
            ..ObjectMeta::default()
        },
        event_time: Some(MicroTime(now)),
        type_: Some(type_.to_string()),
        reason: Some(event.reason.clone()),
        action: Some(event.action.clone()),
        note: Some(note),
        regarding: Some(regarding.clone()),
        related: event.secondary.clone(),
        reporting_controller: Some(REPORTING_CONTROLLER.to_string()),
        reporting_instance: Some(instance.to_string()),
        ..KubeEvent::default()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use std::collections::HashSet;

    use kube::core::Status;

    use super::*;

    fn receiver(name: &str, uid: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some("notification.toolkit.fluxcd.io/v1".into()),
            kind: Some("Receiver".into()),
            name: Some(name.into()),
            namespace: Some("flux-system".into()),
            uid: Some(uid.into()),
            resource_version: Some("7".into()),
            field_path: None,
        }
    }

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap()
    }

    /// `Ok(name)` for a creation, `Err((name, count))` for a series update.
    fn outcome(write: &Write) -> Result<String, (String, i32)> {
        match write {
            Write::Create { event, .. } => Ok(event.metadata.name.clone().unwrap()),
            Write::Series { event, series } => {
                Err((event.metadata.name.clone().unwrap(), series.count))
            }
        }
    }

    fn note(write: &Write) -> String {
        match write {
            Write::Create { event } | Write::Series { event, .. } => event.note.clone().unwrap(),
        }
    }

    #[test]
    fn go_durations_read_as_flux_writes_them() {
        for (duration, text) in [
            (Duration::from_secs(600), "10m0s"),
            (Duration::from_secs(3600), "1h0m0s"),
            (Duration::from_secs(3661), "1h1m1s"),
            (Duration::from_secs(30), "30s"),
            (Duration::from_secs(90), "1m30s"),
            (Duration::from_millis(1500), "1.5s"),
            (Duration::from_millis(500), "500ms"),
            (Duration::from_micros(1500), "1.5ms"),
            (Duration::from_nanos(1500), "1.5µs"),
            (Duration::from_nanos(15), "15ns"),
            (Duration::ZERO, "0s"),
        ] {
            assert_eq!(go_duration(duration), text);
        }
        assert_eq!(
            succeeded(Duration::from_secs(600)).note.unwrap(),
            "Reconciliation finished, next run in 10m0s"
        );
    }

    #[test]
    fn a_repeated_event_is_one_event_with_a_growing_count() {
        let mut correlator = Correlator::default();
        let regarding = receiver("r", "uid-1");
        let success = succeeded(Duration::from_secs(600));
        let first = correlator.correlate(&regarding, &success, "pod", at(0));
        let name = outcome(&first).unwrap();
        assert!(name.starts_with("r."), "{name}");
        // A 10-minute interval for an hour: the same Event, counted.
        for (n, minutes) in (10..=60).step_by(10).enumerate() {
            let again = correlator.correlate(&regarding, &success, "pod", at(minutes * 60));
            let count = i32::try_from(n).unwrap() + 2;
            assert_eq!(outcome(&again), Err((name.clone(), count)));
        }
        // A different note, type or object is another Event.
        let failure = failed("Secret \"s\" not found");
        assert!(outcome(&correlator.correlate(&regarding, &failure, "pod", at(3601))).is_ok());
        assert!(outcome(&correlator.correlate(&regarding, &failure, "pod", at(3602))).is_err());
        let recreated = receiver("r", "uid-2");
        assert!(outcome(&correlator.correlate(&recreated, &success, "pod", at(3603))).is_ok());
    }

    #[test]
    fn the_created_event_is_valid_for_events_k8s_io_v1() {
        let mut correlator = Correlator::default();
        let regarding = receiver("r", "uid-1");
        let long = "x".repeat(2000) + "é";
        let Write::Create { event, .. } =
            correlator.correlate(&regarding, &failed(&long), "pod", at(0))
        else {
            panic!("created");
        };
        assert_eq!(event.metadata.namespace.as_deref(), Some("flux-system"));
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(event.reason.as_deref(), Some("Failed"));
        assert_eq!(event.action.as_deref(), Some("Reconcile"));
        assert_eq!(
            event.reporting_controller.as_deref(),
            Some("fluxhook-receiver")
        );
        assert_eq!(event.reporting_instance.as_deref(), Some("pod"));
        assert!(event.event_time.is_some());
        assert!(event.series.is_none());
        let note = event.note.unwrap();
        assert!(note.len() <= MAX_NOTE_BYTES, "{}", note.len());
        assert!(note.ends_with('…'));
        assert_eq!(event.regarding, Some(regarding));
    }

    #[test]
    fn many_distinct_notes_are_combined_into_one_event() {
        let mut correlator = Correlator::default();
        let regarding = receiver("r", "uid-1");
        let mut created = 0;
        for n in 0..30 {
            let write =
                correlator.correlate(&regarding, &failed(&format!("error {n}")), "pod", at(n));
            if n < 9 {
                assert!(outcome(&write).is_ok(), "{n}");
                assert_eq!(note(&write), format!("error {n}"));
            } else {
                assert!(note(&write).starts_with(AGGREGATE_PREFIX), "{n}");
            }
            created += usize::from(outcome(&write).is_ok());
        }
        // Nine Events, then one aggregate Event counting the rest.
        assert_eq!(created, 10);
        // Ten quiet minutes later, notes stand alone again.
        let later = correlator.correlate(&regarding, &failed("error 99"), "pod", at(29 + 601));
        assert_eq!(note(&later), "error 99");
    }

    #[test]
    fn memory_is_bounded_and_expires() {
        let mut correlator = Correlator::default();
        let regarding = receiver("r", "uid-1");
        for n in 0..100 {
            correlator.correlate(
                &regarding,
                &stalled("ValidationFailed", &format!("{n}")),
                "pod",
                at(n * 700),
            );
        }
        let record = correlator.objects.values().next().unwrap();
        assert!(record.logged.len() <= MAX_EVENTS_PER_OBJECT);
        // An hour and more without an Event: forgotten, so the next one is created.
        correlator.correlate(
            &receiver("other", "uid-9"),
            &failed("x"),
            "pod",
            at(200_000),
        );
        assert_eq!(correlator.objects.len(), 1);
        correlator.forget_object("flux-system", "other");
        assert!(correlator.objects.is_empty());
        assert!(correlator.recency.is_empty());
    }

    #[test]
    fn at_most_max_objects_are_remembered_the_least_recent_forgotten_first() {
        let mut correlator = Correlator::default();
        let success = succeeded(Duration::from_secs(600));
        let first = receiver("first", "uid-first");
        correlator.correlate(&first, &success, "pod", at(0));
        for n in 1..MAX_OBJECTS {
            correlator.correlate(&receiver(&format!("r{n}"), "uid"), &success, "pod", at(1));
        }
        // Full: recording about `first` again keeps it the most recent.
        assert!(outcome(&correlator.correlate(&first, &success, "pod", at(2))).is_err());
        // One more object: the least recently recorded about (`r1`) goes.
        correlator.correlate(&receiver("new", "uid-new"), &success, "pod", at(3));
        assert_eq!(correlator.objects.len(), MAX_OBJECTS);
        assert_eq!(correlator.recency.len(), MAX_OBJECTS);
        assert!(outcome(&correlator.correlate(&first, &success, "pod", at(4))).is_err());
        // Forgotten, its next Event is created anew, as client-go's after its LRU drops it.
        let r1 = correlator.correlate(&receiver("r1", "uid"), &success, "pod", at(5));
        assert!(outcome(&r1).is_ok());
        assert_eq!(correlator.objects.len(), MAX_OBJECTS);
        assert_eq!(correlator.recency.len(), MAX_OBJECTS);
    }

    #[test]
    fn a_repeated_event_carries_its_name_first_time_and_series() {
        let mut correlator = Correlator::default();
        let regarding = receiver("r", "uid-1");
        let success = succeeded(Duration::from_secs(600));
        let Write::Create { event: first } =
            correlator.correlate(&regarding, &success, "pod", at(0))
        else {
            panic!("created");
        };
        let Write::Series { event, series } =
            correlator.correlate(&regarding, &success, "pod", at(600))
        else {
            panic!("series");
        };
        // Created again if it has expired: the same Event, with its series.
        assert_eq!(event.metadata.name, first.metadata.name);
        assert_eq!(event.event_time, first.event_time);
        assert_eq!(event.note, first.note);
        assert_eq!(series.count, 2);
        assert_eq!(series.last_observed_time, MicroTime(at(600)));
        assert_eq!(event.series, Some(series));
    }

    /// What the fake API does with the next write.
    enum Step {
        /// Serves it.
        Serve,
        /// Holds it in flight until `release` (or its sender goes), then serves it.
        Hold {
            release: tokio::sync::oneshot::Receiver<()>,
        },
        /// Serves it, then loses the answer (a timeout).
        LoseAnswer,
        /// Stores nothing and gives no answer (a timeout).
        Unanswered,
        /// The create held last lands now, then this write is served.
        LandHeld,
    }

    /// The API server's events.k8s.io Events in memory, serving writes as it does (409
    /// AlreadyExists on a create of a name it holds, 404 NotFound on a patch of one it
    /// does not), or as the next [`Step`] says.
    #[derive(Default)]
    struct FakeApi {
        stored: Mutex<HashMap<String, KubeEvent>>,
        /// `(write, name, answer)`, in the order the writes arrived.
        writes: Mutex<Vec<(&'static str, String, &'static str)>>,
        steps: Mutex<Vec<Step>>,
        held: Mutex<Option<KubeEvent>>,
    }

    fn api_error(code: u16, reason: &str) -> kube::Error {
        kube::Error::Api(Status::failure(reason, reason).with_code(code).boxed())
    }

    fn timed_out() -> kube::Error {
        kube::Error::Service(Box::new(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "timed out",
        )))
    }

    impl FakeApi {
        fn script(&self, steps: Vec<Step>) {
            *lock(&self.steps) = steps.into_iter().rev().collect();
        }

        fn next_step(&self) -> Option<Step> {
            lock(&self.steps).pop()
        }

        fn log(&self, write: &'static str, name: &str, answer: &'static str) {
            lock(&self.writes).push((write, name.to_string(), answer));
        }

        fn writes(&self) -> Vec<(&'static str, &'static str)> {
            lock(&self.writes)
                .iter()
                .map(|(w, _, a)| (*w, *a))
                .collect()
        }

        fn names_written(&self) -> HashSet<String> {
            lock(&self.writes)
                .iter()
                .map(|(_, n, _)| n.clone())
                .collect()
        }

        fn stored(&self) -> Vec<KubeEvent> {
            lock(&self.stored).values().cloned().collect()
        }

        fn land_held(&self) {
            if let Some(event) = lock(&self.held).take() {
                let name = event.metadata.name.clone().unwrap();
                lock(&self.stored).entry(name).or_insert(event);
            }
        }

        fn serve_create(&self, event: &KubeEvent) -> Result<(), kube::Error> {
            let name = event.metadata.name.clone().unwrap();
            let mut stored = lock(&self.stored);
            if stored.contains_key(&name) {
                return Err(api_error(409, "AlreadyExists"));
            }
            stored.insert(name, event.clone());
            Ok(())
        }
    }

    impl EventSink for FakeApi {
        async fn create(&self, event: &KubeEvent) -> Result<(), kube::Error> {
            let name = event.metadata.name.clone().unwrap();
            let step = self.next_step();
            match step {
                Some(Step::Hold { release }) => {
                    *lock(&self.held) = Some(event.clone());
                    self.log("create", &name, "held");
                    let _ = release.await;
                    *lock(&self.held) = None;
                }
                Some(Step::LoseAnswer) => {
                    let _ = self.serve_create(event);
                    self.log("create", &name, "lost");
                    return Err(timed_out());
                }
                Some(Step::Unanswered) => {
                    self.log("create", &name, "lost");
                    return Err(timed_out());
                }
                Some(Step::LandHeld) => self.land_held(),
                Some(Step::Serve) | None => {}
            }
            let served = self.serve_create(event);
            self.log("create", &name, if served.is_ok() { "201" } else { "409" });
            served
        }

        async fn patch_series(
            &self,
            _namespace: &str,
            name: &str,
            series: &EventSeries,
        ) -> Result<(), kube::Error> {
            if let Some(Step::LandHeld) = self.next_step() {
                self.land_held();
            }
            let patched = match lock(&self.stored).get_mut(name) {
                Some(event) => {
                    event.series = Some(series.clone());
                    Ok(())
                }
                None => Err(api_error(404, "NotFound")),
            };
            self.log("patch", name, if patched.is_ok() { "200" } else { "404" });
            patched
        }
    }

    fn recorder() -> Recorder<FakeApi> {
        Recorder::with_sink(FakeApi::default(), "pod".to_string())
    }

    /// The one Event stored, and how many times it occurred.
    fn one_event(api: &FakeApi) -> (KubeEvent, i32) {
        let stored = api.stored();
        assert_eq!(stored.len(), 1, "{stored:?}");
        let count = stored[0].series.as_ref().map_or(1, |series| series.count);
        (stored[0].clone(), count)
    }

    /// One Event stored, occurred `count` times, and only its name ever written.
    fn assert_one_event_under_one_name(api: &FakeApi, count: i32) {
        let (event, occurred) = one_event(api);
        assert_eq!(occurred, count);
        assert_eq!(
            api.names_written(),
            HashSet::from([event.metadata.name.unwrap()])
        );
    }

    /// A recorder that published one failure twice, the first write going as `first`.
    async fn failure_published_twice(first: Step) -> Recorder<FakeApi> {
        let recorder = recorder();
        let regarding = receiver("r", "uid-1");
        let failure = failed("Secret \"s\" not found");
        recorder.sink.script(vec![first]);
        recorder.publish(&regarding, &failure).await;
        recorder.publish(&regarding, &failure).await;
        recorder
    }

    #[tokio::test]
    async fn a_create_whose_answer_was_lost_is_counted_not_created_again() {
        let recorder = failure_published_twice(Step::LoseAnswer).await;
        assert_eq!(
            recorder.sink.writes(),
            [("create", "lost"), ("patch", "200")]
        );
        assert_eq!(one_event(&recorder.sink).1, 2);
    }

    #[tokio::test]
    async fn an_event_never_stored_is_created_under_its_name_with_its_series() {
        let recorder = failure_published_twice(Step::Unanswered).await;
        assert_eq!(
            recorder.sink.writes(),
            [("create", "lost"), ("patch", "404"), ("create", "201")]
        );
        assert_one_event_under_one_name(&recorder.sink, 2);
    }

    /// The write of the first occurrence is cut short in flight (this replica stopped
    /// leading); the second finds no Event, and the first one's create lands just before
    /// the second creates it: one Event, counted twice.
    #[tokio::test]
    async fn a_create_cut_short_then_landing_late_is_counted_not_duplicated() {
        let recorder = recorder();
        let regarding = receiver("r", "uid-1");
        let success = succeeded(Duration::from_secs(600));
        let (_release, held) = tokio::sync::oneshot::channel();
        recorder.sink.script(vec![Step::Hold { release: held }]);
        {
            let mut first = std::pin::pin!(recorder.publish(&regarding, &success));
            assert!(futures::poll!(first.as_mut()).is_pending());
        }
        assert_eq!(recorder.sink.writes(), [("create", "held")]);
        assert!(lock(&recorder.writing).is_empty(), "the line is left");

        // The patch finds nothing; the late create lands before the second create.
        recorder.sink.script(vec![Step::Serve, Step::LandHeld]);
        recorder.publish(&regarding, &success).await;
        assert_eq!(
            recorder.sink.writes(),
            [
                ("create", "held"),
                ("patch", "404"),
                ("create", "409"),
                ("patch", "200")
            ]
        );
        assert_one_event_under_one_name(&recorder.sink, 2);
    }

    /// Two occurrences about one object: the second is written when the first's write has
    /// been answered, not before; another object's Event does not wait.
    #[tokio::test]
    async fn writes_about_one_object_are_made_one_at_a_time() {
        let recorder = recorder();
        let regarding = receiver("r", "uid-1");
        let success = succeeded(Duration::from_secs(600));
        let (release, held) = tokio::sync::oneshot::channel();
        recorder.sink.script(vec![Step::Hold { release: held }]);
        let mut first = std::pin::pin!(recorder.publish(&regarding, &success));
        assert!(futures::poll!(first.as_mut()).is_pending());
        let mut second = std::pin::pin!(recorder.publish(&regarding, &success));
        assert!(futures::poll!(second.as_mut()).is_pending());
        assert_eq!(recorder.sink.writes(), [("create", "held")]);

        let other = receiver("other", "uid-2");
        let mut third = std::pin::pin!(recorder.publish(&other, &success));
        assert!(futures::poll!(third.as_mut()).is_ready());

        release.send(()).unwrap();
        first.await;
        second.await;
        assert_eq!(
            recorder.sink.writes(),
            [
                ("create", "held"),
                ("create", "201"),
                ("create", "201"),
                ("patch", "200")
            ]
        );
        assert_eq!(recorder.sink.stored().len(), 2);
        assert!(lock(&recorder.writing).is_empty(), "the lines are left");
    }
}
