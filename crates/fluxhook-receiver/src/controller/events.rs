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
//!   its last write) is created anew.
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
//! recorded nothing for an hour (its Events have then expired), and at most
//! [`MAX_EVENTS_PER_OBJECT`] distinct Events are remembered per object.
//!
//! Every Event the controller writes goes through [`Recorder::publish`], so that whether
//! this replica may write at all is decided in one place.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};
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

/// Writes Events about Receivers, deduplicated and aggregated.
pub(crate) struct Recorder {
    client: kube::Client,
    instance: String,
    correlator: Mutex<Correlator>,
}

impl Recorder {
    /// A recorder writing with `client`; the reporting instance is the pod's name (its
    /// `HOSTNAME`), as client-go's recorders take the host name.
    pub(crate) fn new(client: kube::Client) -> Self {
        let instance = std::env::var("HOSTNAME")
            .ok()
            .filter(|name| !name.is_empty() && name.len() <= 128)
            .unwrap_or_else(|| REPORTING_CONTROLLER.to_string());
        Self {
            client,
            instance,
            correlator: Mutex::default(),
        }
    }

    /// Records `event` about `regarding` (in its namespace). A failure to write is logged,
    /// never returned: Events are informative, and a reconciliation does not fail for one.
    pub(crate) async fn publish(&self, regarding: &ObjectReference, event: &Event) {
        let now = Timestamp::now();
        let write = self
            .correlator()
            .correlate(regarding, event, &self.instance, now);
        let namespace = regarding.namespace.as_deref().unwrap_or("default");
        let events: Api<KubeEvent> = Api::namespaced(self.client.clone(), namespace);
        let outcome = match write {
            Write::Create { key, event } => {
                let created = events.create(&PostParams::default(), &event).await;
                if created.is_err() {
                    // The next occurrence creates it again.
                    self.correlator().forget_event(&key);
                }
                created.map(drop)
            }
            Write::Series {
                key,
                name,
                series,
                fresh,
            } => {
                let patch = json!({ "series": series });
                match events
                    .patch(&name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await
                {
                    Err(kube::Error::Api(status)) if status.code == 404 => {
                        // Expired from the API server: the occurrence starts a new Event.
                        let created = events.create(&PostParams::default(), &fresh).await;
                        match &created {
                            Ok(_) => self.correlator().restarted(&key, &fresh, now),
                            Err(_) => self.correlator().forget_event(&key),
                        }
                        created.map(drop)
                    }
                    other => other.map(drop),
                }
            }
        };
        if let Err(error) = outcome {
            tracing::warn!(
                %error,
                reason = event.reason.as_str(),
                name = regarding.name.as_deref().unwrap_or_default(),
                namespace,
                "cannot record an Event"
            );
        }
    }

    /// Forgets what was recorded about a Receiver that is gone.
    pub(crate) fn forget(&self, namespace: &str, name: &str) {
        self.correlator().forget_object(namespace, name);
    }

    fn correlator(&self) -> std::sync::MutexGuard<'_, Correlator> {
        self.correlator
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
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
    related: Option<ObjectKey>,
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
    count: i32,
    last_observed: Timestamp,
}

/// Distinct notes of similar Events, the last one seen at `last`.
#[derive(Debug, Clone)]
struct Similar {
    notes: HashSet<u64>,
    last: Timestamp,
}

#[derive(Debug, Default)]
struct ObjectEvents {
    logged: HashMap<EventKey, Logged>,
    similar: HashMap<SimilarKey, Similar>,
    last_seen: Option<Timestamp>,
}

/// Which Event an occurrence belongs to, and whether it was remembered with it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Remembered {
    object: ObjectKey,
    event: EventKey,
}

/// What to write for an occurrence.
#[derive(Debug)]
enum Write {
    /// A new Event.
    Create { key: Remembered, event: KubeEvent },
    /// One more occurrence of the Event `name`; `fresh` if it has expired.
    Series {
        key: Remembered,
        name: String,
        series: EventSeries,
        fresh: KubeEvent,
    },
}

/// client-go's correlator, without I/O: decides what each occurrence writes.
#[derive(Debug, Default)]
struct Correlator {
    objects: HashMap<ObjectKey, ObjectEvents>,
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
        let object = ObjectKey::of(regarding);
        let record = self.objects.entry(object.clone()).or_default();
        record.last_seen = Some(now);
        let type_ = match event.type_ {
            EventType::Normal => "Normal",
            EventType::Warning => "Warning",
        };
        let note = event.note.clone().unwrap_or_default();
        let note_hash = hash(&note);

        // Aggregation, as client-go's `EventAggregate`.
        let similar = record
            .similar
            .entry(SimilarKey {
                type_,
                reason: event.reason.clone(),
            })
            .or_insert_with(|| Similar {
                notes: HashSet::new(),
                last: now,
            });
        if elapsed(similar.last, now) > AGGREGATE_INTERVAL {
            similar.notes.clear();
        }
        similar.notes.insert(note_hash);
        similar.last = now;
        let aggregated = similar.notes.len() >= AGGREGATE_AFTER_NOTES;
        if aggregated {
            // The set never grows past the threshold.
            if let Some(any) = similar.notes.iter().next().copied() {
                similar.notes.remove(&any);
            }
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
            related: event.secondary.as_ref().map(ObjectKey::of),
            note: note_key,
        };
        let fresh = new_event(regarding, event, type_, truncate(&note), instance, now);
        let remembered = Remembered {
            object,
            event: key.clone(),
        };

        // Deduplication, as client-go's `eventObserve`.
        if let Some(logged) = record.logged.get_mut(&key) {
            logged.count = logged.count.saturating_add(1);
            logged.last_observed = now;
            return Write::Series {
                key: remembered,
                name: logged.name.clone(),
                series: EventSeries {
                    count: logged.count,
                    last_observed_time: MicroTime(now),
                },
                fresh,
            };
        }
        if record.logged.len() >= MAX_EVENTS_PER_OBJECT
            && let Some(oldest) = record
                .logged
                .iter()
                .min_by_key(|(_, logged)| logged.last_observed)
                .map(|(key, _)| key.clone())
        {
            record.logged.remove(&oldest);
        }
        record.logged.insert(
            key,
            Logged {
                name: fresh.metadata.name.clone().unwrap_or_default(),
                count: 1,
                last_observed: now,
            },
        );
        Write::Create {
            key: remembered,
            event: fresh,
        }
    }

    /// The Event of `key` was created anew as `event`.
    fn restarted(&mut self, key: &Remembered, event: &KubeEvent, now: Timestamp) {
        if let Some(logged) = self
            .objects
            .get_mut(&key.object)
            .and_then(|record| record.logged.get_mut(&key.event))
        {
            *logged = Logged {
                name: event.metadata.name.clone().unwrap_or_default(),
                count: 1,
                last_observed: now,
            };
        }
    }

    /// The Event of `key` could not be written: the next occurrence creates it.
    fn forget_event(&mut self, key: &Remembered) {
        if let Some(record) = self.objects.get_mut(&key.object) {
            record.logged.remove(&key.event);
        }
    }

    fn forget_object(&mut self, namespace: &str, name: &str) {
        self.objects
            .retain(|object, _| object.namespace != namespace || object.name != name);
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
        self.objects.retain(|_, record| {
            record
                .logged
                .retain(|_, logged| elapsed(logged.last_observed, now) <= FORGET_AFTER);
            record
                .similar
                .retain(|_, similar| elapsed(similar.last, now) <= AGGREGATE_INTERVAL);
            record
                .last_seen
                .is_some_and(|seen| elapsed(seen, now) <= FORGET_AFTER)
        });
    }
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
            Write::Series { name, series, .. } => Err((name.clone(), series.count)),
        }
    }

    fn note(write: &Write) -> String {
        match write {
            Write::Create { event, .. } | Write::Series { fresh: event, .. } => {
                event.note.clone().unwrap()
            }
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
    }

    #[test]
    fn an_expired_event_restarts_its_series() {
        let mut correlator = Correlator::default();
        let regarding = receiver("r", "uid-1");
        let success = succeeded(Duration::from_secs(600));
        correlator.correlate(&regarding, &success, "pod", at(0));
        let Write::Series { key, fresh, .. } =
            correlator.correlate(&regarding, &success, "pod", at(600))
        else {
            panic!("series");
        };
        correlator.restarted(&key, &fresh, at(600));
        let next = correlator.correlate(&regarding, &success, "pod", at(1200));
        assert_eq!(
            outcome(&next),
            Err((fresh.metadata.name.clone().unwrap(), 2))
        );
        correlator.forget_event(&key);
        assert!(outcome(&correlator.correlate(&regarding, &success, "pod", at(1800))).is_ok());
    }
}
