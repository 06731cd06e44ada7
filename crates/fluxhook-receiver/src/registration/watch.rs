//! Which GitRepository changes call for registering again, and for which Receivers.
//!
//! Flux rewrites a GitRepository's status at every fetch, and each write sends a watch event
//! even for a metadata-only watch; registering on each would call the Git host for nothing.
//! Only what registration reads counts: the annotations of this module's prefix, the labels
//! (`matchLabels` selects by them), the generation (`spec.url`), and deletion.

use std::collections::{BTreeMap, HashMap};

use fluxhook_api::{Candidate, ReceiverResource};
use fluxhook_trigger::git_repository;
use kube::api::{DynamicObject, PartialObjectMeta};
use kube::discovery::ApiResource;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::Event;

use super::ANNOTATION_PREFIX;

/// A GitRepository's metadata, as the watch gives it.
pub(crate) type RepositoryMeta = PartialObjectMeta<DynamicObject>;

/// What of a GitRepository registration depends on.
#[derive(Debug, PartialEq, Eq)]
struct Fingerprint {
    uid: Option<String>,
    generation: Option<i64>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    deleting: bool,
}

impl Fingerprint {
    fn of(meta: &RepositoryMeta) -> Self {
        let metadata = &meta.metadata;
        Self {
            uid: metadata.uid.clone(),
            generation: metadata.generation,
            labels: metadata.labels.clone().unwrap_or_default(),
            annotations: metadata
                .annotations
                .iter()
                .flatten()
                .filter(|(key, _)| key.starts_with(ANNOTATION_PREFIX))
                .map(|(key, value)| (key.clone(), value.clone()))
                .collect(),
            deleting: metadata.deletion_timestamp.is_some(),
        }
    }
}

fn key_of(meta: &RepositoryMeta) -> (String, String) {
    (
        meta.metadata.namespace.clone().unwrap_or_default(),
        meta.metadata.name.clone().unwrap_or_default(),
    )
}

/// Turns the GitRepository watch's events into the GitRepositories whose change matters.
///
/// The first list only learns them: the Receivers are all reconciled at start anyway. A
/// change of labels yields the old metadata too, so that a Receiver whose `matchLabels` no
/// longer select the GitRepository is reconciled as well.
#[derive(Default)]
pub(crate) struct RepositoryChanges {
    known: HashMap<(String, String), RepositoryMeta>,
    /// Whether a first list completed.
    listed: bool,
}

impl RepositoryChanges {
    /// The GitRepositories `event` changed in a way registration sees.
    pub(crate) fn on_event(&mut self, event: Event<RepositoryMeta>) -> Vec<RepositoryMeta> {
        match event {
            Event::Init => Vec::new(),
            Event::InitApply(meta) | Event::Apply(meta) => self.applied(meta),
            Event::Delete(meta) => match self.known.remove(&key_of(&meta)) {
                Some(old) => vec![old],
                None => vec![meta],
            },
            Event::InitDone => {
                self.listed = true;
                Vec::new()
            }
        }
    }

    fn applied(&mut self, meta: RepositoryMeta) -> Vec<RepositoryMeta> {
        let old = self.known.insert(key_of(&meta), meta.clone());
        let fingerprint = Fingerprint::of(&meta);
        match old {
            Some(old) if Fingerprint::of(&old) == fingerprint => Vec::new(),
            Some(old) if old.metadata.labels != meta.metadata.labels => vec![old, meta],
            Some(_) => vec![meta],
            None if self.listed => vec![meta],
            None => Vec::new(),
        }
    }
}

/// The Receivers among `receivers` that name the GitRepository `meta`, by the rules that
/// select it forward ([`ReceiverResource::selects`]): by name, or `*` with `matchLabels` its
/// labels satisfy, in the entry's namespace or else the Receiver's (not another namespace
/// when `no_cross_namespace_refs`).
pub(crate) fn receivers_naming<'a>(
    meta: &RepositoryMeta,
    receivers: impl IntoIterator<Item = &'a DynamicObject>,
    resource: &ApiResource,
    no_cross_namespace_refs: bool,
) -> Vec<ObjectRef<DynamicObject>> {
    let (namespace, name) = key_of(meta);
    let labels = meta.metadata.labels.clone().unwrap_or_default();
    let repository = Candidate {
        group: git_repository::GROUP,
        kind: git_repository::KIND,
        namespace: &namespace,
        name: &name,
        labels: &labels,
    };
    let names_it = |receiver: &DynamicObject, entry: &ReceiverResource| {
        let receiver_namespace = receiver.metadata.namespace.as_deref().unwrap_or_default();
        entry.selects(receiver_namespace, no_cross_namespace_refs, &repository)
    };
    receivers
        .into_iter()
        .filter(|receiver| {
            let entries = crate::controller::read_spec::<ResourcesOnly>(receiver)
                .map(|spec| spec.resources)
                .unwrap_or_default();
            entries.iter().any(|entry| names_it(receiver, entry))
        })
        .map(|receiver| ObjectRef::from_obj_with(receiver, resource.clone()))
        .collect()
}

/// The one field of a Receiver's spec [`receivers_naming`] reads.
#[derive(serde::Deserialize)]
struct ResourcesOnly {
    #[serde(default)]
    resources: Vec<ReceiverResource>,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fluxhook_api::Receiver;
    use kube::api::ObjectMeta;
    use serde_json::json;

    use super::*;
    use crate::registration::URL_ANNOTATION;

    fn repository(
        name: &str,
        labels: &[(&str, &str)],
        annotations: &[(&str, &str)],
    ) -> RepositoryMeta {
        let pairs = |pairs: &[(&str, &str)]| {
            Some(
                pairs
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            )
        };
        PartialObjectMeta {
            types: None,
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                uid: Some(format!("uid-{name}")),
                generation: Some(1),
                labels: pairs(labels),
                annotations: pairs(annotations),
                ..ObjectMeta::default()
            },
            _phantom: std::marker::PhantomData,
        }
    }

    fn names(changed: &[RepositoryMeta]) -> Vec<(&str, usize)> {
        changed
            .iter()
            .map(|m| {
                (
                    m.metadata.name.as_deref().unwrap(),
                    m.metadata.labels.as_ref().map_or(0, BTreeMap::len),
                )
            })
            .collect()
    }

    #[test]
    fn only_what_registration_reads_counts() {
        let mut changes = RepositoryChanges::default();
        assert!(changes.on_event(Event::Init).is_empty());
        assert!(
            changes
                .on_event(Event::InitApply(repository("a", &[], &[])))
                .is_empty()
        );
        assert!(changes.on_event(Event::InitDone).is_empty());

        // Flux's own annotations and status writes (same metadata) do not count.
        let mut fluxed = repository("a", &[], &[("reconcile.fluxcd.io/requestedAt", "1")]);
        fluxed.metadata.resource_version = Some("9".into());
        assert!(changes.on_event(Event::Apply(fluxed)).is_empty());

        let annotated = repository("a", &[], &[(URL_ANNOTATION, "https://r.example")]);
        assert_eq!(
            names(&changes.on_event(Event::Apply(annotated))),
            [("a", 0)]
        );
        let labelled = repository(
            "a",
            &[("app", "x")],
            &[(URL_ANNOTATION, "https://r.example")],
        );
        assert_eq!(
            names(&changes.on_event(Event::Apply(labelled.clone()))),
            [("a", 0), ("a", 1)]
        );
        assert_eq!(
            names(&changes.on_event(Event::Apply(repository("b", &[], &[])))),
            [("b", 0)]
        );
        assert_eq!(
            names(&changes.on_event(Event::Delete(labelled))),
            [("a", 1)]
        );
    }

    #[test]
    fn receivers_are_found_by_name_or_labels() {
        let resource = ApiResource::erase::<Receiver>(&());
        let receiver = |name: &str, namespace: &str, resources: serde_json::Value| {
            let mut object = DynamicObject::new(name, &resource).within(namespace);
            object.data = json!({"spec": {"type": "github", "resources": resources}});
            object
        };
        let receivers = [
            receiver(
                "by-name",
                "ns",
                json!([{"kind": "GitRepository", "name": "a"}]),
            ),
            receiver(
                "by-labels",
                "ns",
                json!([{"kind": "GitRepository", "name": "*", "matchLabels": {"app": "x"}}]),
            ),
            receiver(
                "elsewhere",
                "other",
                json!([{"kind": "GitRepository", "name": "a", "namespace": "ns"}]),
            ),
            receiver("other-kind", "ns", json!([{"kind": "Bucket", "name": "a"}])),
            receiver(
                "other-namespace",
                "other",
                json!([{"kind": "GitRepository", "name": "a"}]),
            ),
            receiver("not-a-receiver", "ns", json!("resources")),
        ];
        let found = |meta: &RepositoryMeta| {
            receivers_naming(meta, &receivers, &resource, false)
                .into_iter()
                .map(|r| r.name)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            found(&repository("a", &[("app", "x")], &[])),
            ["by-name", "by-labels", "elsewhere"]
        );
        assert_eq!(
            found(&repository("a", &[("app", "y")], &[])),
            ["by-name", "elsewhere"]
        );
        assert_eq!(found(&repository("b", &[("app", "x")], &[])), ["by-labels"]);
        // Under --no-cross-namespace-refs, the forward selection refuses the entry of a
        // Receiver in another namespace, so a change does not call for it either.
        let same_namespace: Vec<_> =
            receivers_naming(&repository("a", &[], &[]), &receivers, &resource, true)
                .into_iter()
                .map(|r| r.name)
                .collect();
        assert_eq!(same_namespace, ["by-name"]);
    }
}
