//! Which Receiver watch events call for a reconciliation.
//!
//! As in Flux, a Receiver is reconciled when its generation or its
//! `reconcile.fluxcd.io/requestedAt` annotation changes, not when only its
//! status does (the controller's own status writes would wake it again). Its
//! deletion is a trigger too, so that it is withdrawn: the controller finds
//! it gone from the store. A Receiver that vanished while the watch was down
//! (the watch listed again without it) is turned into the same trigger.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use fluxhook_api::RECONCILE_REQUEST_ANNOTATION;
use kube::api::DynamicObject;
use kube::discovery::ApiResource;
use kube::runtime::watcher::Event;

use super::readiness::InitialSync;
use super::watched::WatchedReceiver;
use crate::endpoint::ReceiverKey;

/// What of a Receiver makes it worth reconciling when it changes.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    uid: Option<String>,
    generation: Option<i64>,
    requested_at: Option<String>,
    deleting: bool,
}

impl Fingerprint {
    fn of(object: &DynamicObject) -> Self {
        let metadata = &object.metadata;
        Self {
            uid: metadata.uid.clone(),
            generation: metadata.generation,
            requested_at: metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION))
                .cloned(),
            deleting: metadata.deletion_timestamp.is_some(),
        }
    }
}

/// The key of a Receiver held as a [`DynamicObject`].
pub(crate) fn key_of(object: &DynamicObject) -> ReceiverKey {
    ReceiverKey {
        namespace: object.metadata.namespace.clone().unwrap_or_default(),
        name: object.metadata.name.clone().unwrap_or_default(),
    }
}

/// Turns the Receiver watch's events into the objects to reconcile.
pub(crate) struct Triggers {
    known: HashMap<ReceiverKey, Fingerprint>,
    /// The Receivers of the list under way, if the watch is listing.
    listing: Option<HashSet<ReceiverKey>>,
    initial_sync: Arc<InitialSync>,
}

impl Triggers {
    pub(crate) fn new(initial_sync: Arc<InitialSync>) -> Self {
        Self {
            known: HashMap::new(),
            listing: None,
            initial_sync,
        }
    }

    /// The objects `event` calls to reconcile.
    pub(crate) fn on_event(&mut self, event: Event<WatchedReceiver>) -> Vec<WatchedReceiver> {
        match event {
            Event::Init => {
                self.listing = Some(HashSet::new());
                Vec::new()
            }
            Event::InitApply(object) => {
                if let Some(listing) = &mut self.listing {
                    listing.insert(key_of(&object));
                }
                self.applied(object)
            }
            Event::Apply(object) => self.applied(object),
            Event::Delete(object) => {
                self.known.remove(&key_of(&object));
                vec![object]
            }
            Event::InitDone => {
                // The watcher always starts a list with `Init`; without one
                // there is nothing to compare with.
                let Some(listed) = self.listing.take() else {
                    return Vec::new();
                };
                self.initial_sync.listed(&listed);
                let vanished: Vec<ReceiverKey> = self
                    .known
                    .keys()
                    .filter(|key| !listed.contains(key))
                    .cloned()
                    .collect();
                let resource = ApiResource::erase::<WatchedReceiver>(&());
                vanished
                    .into_iter()
                    .map(|key| {
                        self.known.remove(&key);
                        WatchedReceiver(
                            DynamicObject::new(&key.name, &resource).within(&key.namespace),
                        )
                    })
                    .collect()
            }
        }
    }

    fn applied(&mut self, object: WatchedReceiver) -> Vec<WatchedReceiver> {
        let fingerprint = Fingerprint::of(&object);
        let key = key_of(&object);
        if self.known.get(&key) == Some(&fingerprint) {
            return Vec::new();
        }
        self.known.insert(key, fingerprint);
        vec![object]
    }
}

#[cfg(test)]
mod tests {
    use fluxhook_api::Receiver;
    use kube::Resource;

    use super::super::readiness::Readiness;
    use super::*;

    fn triggers() -> (Triggers, Readiness) {
        let readiness = Readiness::default();
        let sync = Arc::new(InitialSync::new(readiness.clone()));
        (Triggers::new(sync), readiness)
    }

    fn receiver(name: &str, generation: i64) -> WatchedReceiver {
        let mut object = WatchedReceiver(
            DynamicObject::new(name, &ApiResource::erase::<Receiver>(&())).within("ns"),
        );
        object.meta_mut().generation = Some(generation);
        object.meta_mut().uid = Some(format!("uid-{name}"));
        object
    }

    fn names(objects: &[WatchedReceiver]) -> Vec<&str> {
        objects
            .iter()
            .filter_map(|o| o.metadata.name.as_deref())
            .collect()
    }

    #[test]
    fn status_only_changes_are_ignored() {
        let (mut triggers, _) = triggers();
        assert_eq!(
            names(&triggers.on_event(Event::Apply(receiver("a", 1)))),
            ["a"]
        );
        let mut status_written = receiver("a", 1);
        status_written.data = serde_json::json!({"status": {"webhookPath": "/hook/x"}});
        assert!(triggers.on_event(Event::Apply(status_written)).is_empty());
        assert_eq!(
            names(&triggers.on_event(Event::Apply(receiver("a", 2)))),
            ["a"]
        );
    }

    #[test]
    fn requests_deletions_and_recreations_trigger() {
        let (mut triggers, _) = triggers();
        triggers.on_event(Event::Apply(receiver("a", 1)));
        let mut requested = receiver("a", 1);
        requested.meta_mut().annotations =
            Some([(RECONCILE_REQUEST_ANNOTATION.to_string(), "now".to_string())].into());
        assert_eq!(names(&triggers.on_event(Event::Apply(requested))), ["a"]);
        let mut deleting = receiver("a", 1);
        deleting.meta_mut().deletion_timestamp =
            Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                k8s_openapi::jiff::Timestamp::UNIX_EPOCH,
            ));
        assert_eq!(names(&triggers.on_event(Event::Apply(deleting))), ["a"]);
        assert_eq!(
            names(&triggers.on_event(Event::Delete(receiver("a", 1)))),
            ["a"]
        );
        let mut recreated = receiver("a", 1);
        recreated.meta_mut().uid = Some("other".into());
        assert_eq!(names(&triggers.on_event(Event::Apply(recreated))), ["a"]);
    }

    #[test]
    fn a_relist_triggers_changes_and_vanished_receivers_only() {
        let (mut triggers, readiness) = triggers();
        assert!(triggers.on_event(Event::Init).is_empty());
        for name in ["kept", "changed", "gone"] {
            assert_eq!(
                names(&triggers.on_event(Event::InitApply(receiver(name, 1)))),
                [name]
            );
        }
        assert!(triggers.on_event(Event::InitDone).is_empty());
        assert!(!readiness.is_ready());

        triggers.on_event(Event::Init);
        assert!(
            triggers
                .on_event(Event::InitApply(receiver("kept", 1)))
                .is_empty()
        );
        assert_eq!(
            names(&triggers.on_event(Event::InitApply(receiver("changed", 2)))),
            ["changed"]
        );
        let vanished = triggers.on_event(Event::InitDone);
        assert_eq!(names(&vanished), ["gone"]);
        assert_eq!(vanished[0].metadata.namespace.as_deref(), Some("ns"));
        assert!(triggers.on_event(Event::InitDone).is_empty());
    }
}
