//! Watch streams: newline-delimited JSON `{type, object}` events replayed from the store's
//! history, with bookmarks, `timeoutSeconds`, `sendInitialEvents` and 410 Expired.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use serde_json::{Value, json};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior};

use crate::error::ApiError;
use crate::resource::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::{EventType, StoredEvent, TypeKey};

/// The annotation on the bookmark that ends `sendInitialEvents`' initial events.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// Where a watch starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WatchStart {
    /// Synthetic ADDED events for every current object, then changes after them. With
    /// `end_bookmark`, a bookmark annotated `k8s.io/initial-events-end` follows the ADDED events
    /// (`sendInitialEvents=true`).
    Current { end_bookmark: bool },
    /// Changes after this resourceVersion, replayed from the history.
    After(u64),
    /// Changes from now on only (no resourceVersion and `sendInitialEvents=false`).
    Now,
}

/// One watch request, parsed.
#[derive(Debug, Clone)]
pub(crate) struct WatchSpec {
    pub(crate) resource: ResourceType,
    pub(crate) namespace: Option<String>,
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) start: WatchStart,
    pub(crate) bookmarks: bool,
    pub(crate) timeout: Option<Duration>,
    /// Send `PartialObjectMetadata` instead of whole objects.
    pub(crate) metadata_only: bool,
}

impl WatchSpec {
    fn selects(&self, namespace: &str, object: &Value) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|wanted| wanted == namespace)
            && self.labels.matches(object)
            && self.fields.matches(object)
    }

    /// The event this watch sends for a stored change, if any: an object entering the
    /// selection is ADDED and one leaving it DELETED, as the apiserver's watch cache does.
    fn translate(&self, event: &StoredEvent, key: &TypeKey) -> Option<(&'static str, Value)> {
        if event.type_key != *key {
            return None;
        }
        let now = self.selects(&event.namespace, &event.object);
        let before = event
            .previous
            .as_ref()
            .is_some_and(|previous| self.selects(&event.namespace, previous));
        let event_type = match (event.event_type, before, now) {
            (EventType::Added, _, true) | (EventType::Modified, false, true) => "ADDED",
            (EventType::Modified, true, true) => "MODIFIED",
            (EventType::Deleted, _, true) | (EventType::Modified, true, false) => "DELETED",
            _ => return None,
        };
        Some((event_type, self.shape(event.object.clone())))
    }

    fn shape(&self, object: Value) -> Value {
        if self.metadata_only {
            partial_object_metadata(object)
        } else {
            object
        }
    }

    fn bookmark(&self, resource_version: u64, initial_events_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": resource_version.to_string()});
        if initial_events_end {
            metadata["annotations"] = json!({INITIAL_EVENTS_END: "true"});
        }
        json!({
            "type": "BOOKMARK",
            "object": {
                "kind": self.resource.kind,
                "apiVersion": self.resource.api_version(),
                "metadata": metadata,
            }
        })
    }
}

/// An object reduced to `PartialObjectMetadata`, for `Accept: ...;as=PartialObjectMetadata`.
pub(crate) fn partial_object_metadata(object: Value) -> Value {
    json!({
        "apiVersion": "meta.k8s.io/v1",
        "kind": "PartialObjectMetadata",
        "metadata": object.get("metadata").cloned().unwrap_or_else(|| json!({})),
    })
}

fn line(event: &Value) -> Bytes {
    let mut bytes = event.to_string().into_bytes();
    bytes.push(b'\n');
    Bytes::from(bytes)
}

/// Counts a watch as open for as long as it lives.
struct OpenWatch(Arc<Shared>);

impl OpenWatch {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open_watches.fetch_add(1, Ordering::SeqCst);
        Self(shared)
    }
}

impl Drop for OpenWatch {
    fn drop(&mut self) {
        self.0.open_watches.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Starts streaming a watch; the response body carries its events until the timeout, a
/// dropped-watch fault, server shutdown or the client going away.
pub(crate) fn watch_response(shared: Arc<Shared>, spec: WatchSpec) -> Response {
    let (sender, receiver) = mpsc::channel::<Bytes>(64);
    tokio::spawn(stream_events(shared, spec, sender));
    let body = futures::stream::unfold(receiver, |mut receiver| async move {
        receiver
            .recv()
            .await
            .map(|bytes| (Ok::<_, Infallible>(bytes), receiver))
    });
    let mut response = Response::new(Body::from_stream(body));
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// Where a watch's lines go, and the dropped-watch fault that can cut it short.
struct Outbox {
    sender: mpsc::Sender<Bytes>,
    drops: watch::Receiver<u64>,
    shared: Arc<Shared>,
}

impl Outbox {
    /// Sends a line that is not an object event (a bookmark or an error); false once the
    /// client is gone.
    async fn send(&self, line_value: &Value) -> bool {
        self.sender.send(line(line_value)).await.is_ok()
    }

    /// Sends an object event, counting it toward a pending watch drop; false once the stream
    /// must end (client gone or watches dropped).
    async fn event(&mut self, event: &Value) -> bool {
        if self.drops.has_changed().unwrap_or(true) || !self.send(event).await {
            return false;
        }
        self.shared.faults.watch_event_sent();
        true
    }
}

async fn stream_events(shared: Arc<Shared>, spec: WatchSpec, sender: mpsc::Sender<Bytes>) {
    let _open = OpenWatch::new(Arc::clone(&shared));
    let key = TypeKey::of(&spec.resource);
    let mut changes = shared.changes.clone();
    changes.borrow_and_update();
    let mut drops = shared.faults.subscribe_watch_drops();
    drops.borrow_and_update();
    let mut outbox = Outbox {
        sender,
        drops,
        shared: Arc::clone(&shared),
    };
    let mut shutdown = shared.shutdown.subscribe();
    if *shutdown.borrow_and_update() {
        return;
    }
    let deadline = spec.timeout.map(|timeout| Instant::now() + timeout);
    let mut bookmarks = tokio::time::interval_at(
        Instant::now() + shared.bookmark_interval,
        shared.bookmark_interval,
    );
    bookmarks.set_missed_tick_behavior(MissedTickBehavior::Delay);

    let (mut cursor, initial) = {
        let store = shared.store();
        match spec.start {
            WatchStart::Current { .. } => {
                let objects: Vec<Value> = store
                    .select(&spec.resource, spec.namespace.as_deref(), &spec.labels, &spec.fields)
                    .map(|(_, object)| json!({"type": "ADDED", "object": spec.shape(object.clone())}))
                    .collect();
                (store.resource_version(), objects)
            }
            WatchStart::After(version) => (version, Vec::new()),
            WatchStart::Now => (store.resource_version(), Vec::new()),
        }
    };
    for event in &initial {
        if !outbox.event(event).await {
            return;
        }
    }
    if spec.start == (WatchStart::Current { end_bookmark: true })
        && !outbox.send(&spec.bookmark(cursor, true)).await
    {
        return;
    }

    loop {
        let batch = {
            let store = shared.store();
            store.events_after(cursor).map(|events| {
                let mut batch = Vec::new();
                for event in events {
                    cursor = event.resource_version;
                    if let Some((event_type, object)) = spec.translate(event, &key) {
                        batch.push(json!({"type": event_type, "object": object}));
                    }
                }
                batch
            })
        };
        let batch = match batch {
            Ok(batch) => batch,
            Err(expired) => {
                outbox.send(&error_event(&expired)).await;
                return;
            }
        };
        for event in &batch {
            if !outbox.event(event).await {
                return;
            }
        }
        let timed_out = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = changes.changed() => if changed.is_err() { return },
            _ = bookmarks.tick(), if spec.bookmarks => {
                if !outbox.send(&spec.bookmark(cursor, false)).await {
                    return;
                }
            }
            () = timed_out => return,
            _ = outbox.drops.changed() => return,
            _ = shutdown.changed() => return,
            () = outbox.sender.closed() => return,
        }
    }
}

/// A watch `ERROR` event carrying a `Status`, as the apiserver sends 410 Expired mid-watch.
fn error_event(error: &ApiError) -> Value {
    json!({"type": "ERROR", "object": error.to_status()})
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(labels: &str) -> WatchSpec {
        WatchSpec {
            resource: ResourceType::new("example.com", "v1", "Widget", "widgets"),
            namespace: Some("default".to_owned()),
            labels: LabelSelector::parse(labels).unwrap_or_default(),
            fields: FieldSelector::default(),
            start: WatchStart::Now,
            bookmarks: true,
            timeout: None,
            metadata_only: false,
        }
    }

    fn modified(before: &str, after: &str) -> StoredEvent {
        StoredEvent {
            resource_version: 9,
            type_key: TypeKey::new("example.com", "v1", "widgets"),
            namespace: "default".to_owned(),
            event_type: EventType::Modified,
            object: json!({"metadata": {"name": "w", "labels": {"app": after}}}),
            previous: Some(json!({"metadata": {"name": "w", "labels": {"app": before}}})),
        }
    }

    #[test]
    fn selection_changes_become_added_and_deleted() {
        let watch = spec("app=web");
        let key = TypeKey::of(&watch.resource);
        let kind = |event: StoredEvent| watch.translate(&event, &key).map(|(kind, _)| kind);
        assert_eq!(kind(modified("web", "web")), Some("MODIFIED"));
        assert_eq!(kind(modified("api", "web")), Some("ADDED"));
        assert_eq!(kind(modified("web", "api")), Some("DELETED"));
        assert_eq!(kind(modified("api", "api")), None);
    }

    #[test]
    fn other_namespaces_and_types_are_skipped() {
        let watch = spec("");
        let mut event = modified("a", "a");
        event.namespace = "elsewhere".to_owned();
        assert!(
            watch
                .translate(&event, &TypeKey::of(&watch.resource))
                .is_none()
        );
        assert!(
            watch
                .translate(&modified("a", "a"), &TypeKey::new("", "v1", "secrets"))
                .is_none()
        );
    }

    #[test]
    fn bookmarks_carry_type_and_version() {
        let bookmark = spec("").bookmark(42, true);
        assert_eq!(bookmark["object"]["kind"], "Widget");
        assert_eq!(bookmark["object"]["metadata"]["resourceVersion"], "42");
        assert_eq!(
            bookmark["object"]["metadata"]["annotations"][INITIAL_EVENTS_END],
            "true"
        );
    }
}
