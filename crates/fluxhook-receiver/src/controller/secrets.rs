//! Revocation: a Receiver is reconciled again as soon as the Secret it serves the token of
//! changes or goes, labelled or not.
//!
//! Flux reads the Secret on every request, so a rotated or deleted token stops
//! authenticating at once. fluxhook serves the token it read at its last reconciliation, so
//! it must learn of every change to a Secret a Receiver references. It runs one
//! metadata-only watch of all Secrets in the watched namespaces — the same watch Flux's
//! notification-controller runs (`WatchesMetadata(&corev1.Secret{})`, filtered by label on
//! the client side), so the API server's cost is what Flux already costs — and compares each
//! Secret's `resourceVersion` with the one each Receiver referencing it last read
//! ([`SecretVersions`]). Only a Secret some Receiver references and that differs from what
//! it read is read again (one GET per referencing Receiver, in its reconciliation); changes
//! to other Secrets cost the watch event alone. A relist after the watch was interrupted
//! compares the same way, and Secrets that vanished meanwhile count as deleted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use futures::{Stream, StreamExt, future, stream};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, PartialObjectMeta};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{WatchStreamExt, watcher};

use super::prefetch::SecretPrefetch;
use super::watched::WatchedReceiver;
use crate::endpoint::ReceiverKey;

/// A Secret: its namespace and name.
type SecretKey = (String, String);

/// What each Receiver read of its Secret: its `resourceVersion`, or `None` when it did not
/// exist. Shared by the reconciliations (which write) and the Secret watch (which compares).
#[derive(Debug, Default)]
pub(crate) struct SecretVersions {
    inner: Mutex<Versions>,
}

#[derive(Debug, Default)]
struct Versions {
    /// Each Receiver's Secret (in its namespace) and the version it read.
    read: HashMap<ReceiverKey, (String, Option<String>)>,
    /// The Receivers referencing each Secret.
    readers: HashMap<SecretKey, Readers>,
}

/// The Receivers referencing one Secret, by name: a Receiver references a Secret of its own
/// namespace. Most Secrets have one, held without a set of its own (with 10,000 Receivers
/// each with its Secret, a set each took about 2 MiB).
#[derive(Debug)]
enum Readers {
    One(String),
    Many(HashSet<String>),
}

impl Readers {
    fn insert(&mut self, name: &str) {
        match self {
            Self::One(one) if one == name => {}
            Self::One(one) => {
                *self = Self::Many(HashSet::from([std::mem::take(one), name.to_string()]));
            }
            Self::Many(many) => {
                many.insert(name.to_string());
            }
        }
    }

    /// Removes `name`; whether any is left.
    fn remove(&mut self, name: &str) -> bool {
        match self {
            Self::One(one) => one != name,
            Self::Many(many) => {
                many.remove(name);
                !many.is_empty()
            }
        }
    }

    fn names(&self) -> impl Iterator<Item = &String> {
        let (one, many) = match self {
            Self::One(one) => (Some(one), None),
            Self::Many(many) => (None, Some(many)),
        };
        one.into_iter().chain(many.into_iter().flatten())
    }
}

impl SecretVersions {
    /// The Receiver `receiver` read its Secret `secret` at `version` (`None`: not found),
    /// or references none (`secret` is `None`).
    pub(crate) fn read(&self, receiver: &ReceiverKey, secret: Option<&str>, version: Option<&str>) {
        let mut inner = self.lock();
        let Versions { read, readers } = &mut *inner;
        // A Receiver references one Secret at a time: forget what it read of another.
        if let Some((old, _)) = read.remove(receiver) {
            let old = (receiver.namespace.clone(), old);
            if let Some(others) = readers.get_mut(&old)
                && !others.remove(&receiver.name)
            {
                readers.remove(&old);
            }
        }
        if let Some(secret) = secret {
            read.insert(
                receiver.clone(),
                (secret.to_string(), version.map(str::to_string)),
            );
            readers
                .entry((receiver.namespace.clone(), secret.to_string()))
                .and_modify(|readers| readers.insert(&receiver.name))
                .or_insert_with(|| Readers::One(receiver.name.clone()));
        }
    }

    /// Forgets a Receiver that is gone.
    pub(crate) fn forget(&self, receiver: &ReceiverKey) {
        self.read(receiver, None, None);
    }

    /// The Receivers that read `secret` at another version than `version` (`None`: it is
    /// gone).
    fn stale(&self, secret: &SecretKey, version: Option<&str>) -> Vec<ReceiverKey> {
        let inner = self.lock();
        let (namespace, _) = secret;
        inner
            .readers
            .get(secret)
            .into_iter()
            .flat_map(Readers::names)
            .map(|name| ReceiverKey {
                namespace: namespace.clone(),
                name: name.clone(),
            })
            .filter(|receiver| {
                inner
                    .read
                    .get(receiver)
                    .is_some_and(|(_, read)| read.as_deref() != version)
            })
            .collect()
    }

    /// The referenced Secrets.
    fn referenced(&self) -> Vec<SecretKey> {
        self.lock().readers.keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Versions> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Turns the Secret watch's events into the Receivers to reconcile.
pub(crate) struct SecretChanges {
    versions: Arc<SecretVersions>,
    /// The referenced Secrets seen by the list under way, if the watch is listing.
    listing: Option<HashSet<SecretKey>>,
}

impl SecretChanges {
    pub(crate) fn new(versions: Arc<SecretVersions>) -> Self {
        Self {
            versions,
            listing: None,
        }
    }

    /// The Receivers whose Secret `event` shows changed since they read it.
    pub(crate) fn on_event(
        &mut self,
        event: watcher::Event<PartialObjectMeta<Secret>>,
    ) -> Vec<ReceiverKey> {
        match event {
            watcher::Event::Init => {
                self.listing = Some(HashSet::new());
                Vec::new()
            }
            watcher::Event::InitApply(secret) => {
                let key = key_of(&secret);
                let stale = self.versions.stale(&key, version_of(&secret));
                if let Some(listing) = &mut self.listing {
                    listing.insert(key);
                }
                stale
            }
            watcher::Event::Apply(secret) => {
                self.versions.stale(&key_of(&secret), version_of(&secret))
            }
            watcher::Event::Delete(secret) => self.versions.stale(&key_of(&secret), None),
            watcher::Event::InitDone => {
                // Gone while the watch was down: the relist no longer has them.
                let Some(listed) = self.listing.take() else {
                    return Vec::new();
                };
                self.versions
                    .referenced()
                    .into_iter()
                    .filter(|secret| !listed.contains(secret))
                    .flat_map(|secret| self.versions.stale(&secret, None))
                    .collect()
            }
        }
    }
}

fn key_of(secret: &PartialObjectMeta<Secret>) -> SecretKey {
    (
        secret.metadata.namespace.clone().unwrap_or_default(),
        secret.metadata.name.clone().unwrap_or_default(),
    )
}

fn version_of(secret: &PartialObjectMeta<Secret>) -> Option<&str> {
    secret.metadata.resource_version.as_deref()
}

/// The Receivers to reconcile because a Secret they read changed or went, from a
/// metadata-only watch of the Secrets of `namespace` (all namespaces: `None`). Watch errors
/// are logged and retried with backoff.
///
/// Every version seen is also reported to `prefetch`, so that a Secret listed at start-up is
/// not given to a reconciliation once it has changed.
pub(crate) fn changes(
    client: kube::Client,
    namespace: Option<&str>,
    versions: Arc<SecretVersions>,
    prefetch: Arc<SecretPrefetch>,
) -> impl Stream<Item = ObjectRef<WatchedReceiver>> + Send + 'static {
    // `PartialObjectMeta`: kube asks for metadata only (`as=PartialObjectMetadata`).
    let secrets: Api<PartialObjectMeta<Secret>> = match namespace {
        Some(namespace) => Api::namespaced(client, namespace),
        None => Api::all(client),
    };
    let mut changes = SecretChanges::new(versions);
    watcher(secrets, watcher::Config::default())
        .default_backoff()
        .filter_map(|event| {
            future::ready(match event {
                Ok(event) => Some(event),
                Err(error) => {
                    tracing::warn!(%error, "watching Secrets failed; retrying");
                    None
                }
            })
        })
        .flat_map(move |event| {
            match &event {
                watcher::Event::InitApply(secret) | watcher::Event::Apply(secret) => {
                    prefetch.seen(&secret.metadata, version_of(secret));
                }
                watcher::Event::Delete(secret) => prefetch.seen(&secret.metadata, None),
                watcher::Event::Init | watcher::Event::InitDone => {}
            }
            let receivers = changes.on_event(event);
            stream::iter(
                receivers
                    .into_iter()
                    .map(|receiver| ObjectRef::new(&receiver.name).within(&receiver.namespace)),
            )
        })
}

#[cfg(test)]
mod tests {
    use kube::api::ObjectMeta;
    use watcher::Event;

    use super::*;

    fn receiver(name: &str) -> ReceiverKey {
        ReceiverKey {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    fn secret(name: &str, version: &str) -> PartialObjectMeta<Secret> {
        PartialObjectMeta {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some("ns".into()),
                resource_version: Some(version.into()),
                ..ObjectMeta::default()
            },
            ..PartialObjectMeta::default()
        }
    }

    fn sorted(mut keys: Vec<ReceiverKey>) -> Vec<String> {
        keys.sort();
        keys.into_iter().map(|key| key.name).collect()
    }

    #[test]
    fn only_referenced_secrets_that_changed_since_read_count() {
        let versions = Arc::new(SecretVersions::default());
        versions.read(&receiver("a"), Some("token"), Some("1"));
        versions.read(&receiver("b"), Some("token"), Some("2"));
        versions.read(&receiver("c"), Some("missing"), None);
        let mut changes = SecretChanges::new(Arc::clone(&versions));

        // What a Receiver already read, or a Secret nobody references: nothing.
        assert!(
            changes
                .on_event(Event::Apply(secret("other", "9")))
                .is_empty()
        );
        assert_eq!(
            sorted(changes.on_event(Event::Apply(secret("token", "2")))),
            ["a"]
        );
        assert_eq!(
            sorted(changes.on_event(Event::Apply(secret("token", "3")))),
            ["a", "b"]
        );
        // Created after a Receiver found it missing.
        assert_eq!(
            sorted(changes.on_event(Event::Apply(secret("missing", "4")))),
            ["c"]
        );
        assert_eq!(
            sorted(changes.on_event(Event::Delete(secret("token", "3")))),
            ["a", "b"]
        );
        assert!(
            changes
                .on_event(Event::Delete(secret("missing", "4")))
                .is_empty()
        );
    }

    #[test]
    fn a_secret_is_referenced_until_its_last_reader_goes() {
        let versions = SecretVersions::default();
        for name in ["a", "b", "c", "b"] {
            versions.read(&receiver(name), Some("token"), Some("1"));
        }
        let token = ("ns".to_string(), "token".to_string());
        assert_eq!(sorted(versions.stale(&token, Some("2"))), ["a", "b", "c"]);
        versions.forget(&receiver("a"));
        versions.forget(&receiver("c"));
        assert_eq!(sorted(versions.stale(&token, Some("2"))), ["b"]);
        assert_eq!(versions.referenced(), [token]);
        versions.forget(&receiver("b"));
        assert!(versions.referenced().is_empty());
    }

    #[test]
    fn a_receiver_that_moves_to_another_secret_forgets_the_first() {
        let versions = Arc::new(SecretVersions::default());
        versions.read(&receiver("a"), Some("old"), Some("1"));
        versions.read(&receiver("a"), Some("new"), Some("2"));
        let mut changes = SecretChanges::new(Arc::clone(&versions));
        assert!(
            changes
                .on_event(Event::Apply(secret("old", "5")))
                .is_empty()
        );
        assert_eq!(
            sorted(changes.on_event(Event::Apply(secret("new", "5")))),
            ["a"]
        );
        versions.forget(&receiver("a"));
        assert!(
            changes
                .on_event(Event::Apply(secret("new", "6")))
                .is_empty()
        );
        assert!(versions.referenced().is_empty());
    }

    #[test]
    fn a_relist_finds_changes_and_deletions_missed_meanwhile() {
        let versions = Arc::new(SecretVersions::default());
        versions.read(&receiver("kept"), Some("kept"), Some("1"));
        versions.read(&receiver("changed"), Some("changed"), Some("1"));
        versions.read(&receiver("deleted"), Some("deleted"), Some("1"));
        let mut changes = SecretChanges::new(Arc::clone(&versions));
        assert!(changes.on_event(Event::Init).is_empty());
        assert!(
            changes
                .on_event(Event::InitApply(secret("kept", "1")))
                .is_empty()
        );
        assert_eq!(
            sorted(changes.on_event(Event::InitApply(secret("changed", "7")))),
            ["changed"]
        );
        assert!(
            changes
                .on_event(Event::InitApply(secret("unreferenced", "7")))
                .is_empty()
        );
        assert_eq!(sorted(changes.on_event(Event::InitDone)), ["deleted"]);
        assert!(changes.on_event(Event::InitDone).is_empty());
    }
}
