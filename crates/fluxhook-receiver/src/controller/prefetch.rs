//! Start-up Secret reads in bulk: one paged list of a namespace's Secrets instead of a GET
//! per Receiver.
//!
//! Each reconciliation reads its Receiver's Secret by name (`reconcile.rs`), as Flux does.
//! At start-up every Receiver is reconciled at once, so a namespace with 10,000 Receivers
//! cost 10,000 GETs before all were served. While the first reconciliations run (until the
//! controller is ready), the first reconciliation in a namespace whose Receivers reference
//! at least [`LIST_AT_LEAST`] Secrets lists that namespace's Secrets, with their data, in
//! pages of [`PAGE`] (500), and keeps only those some Receiver references; each is then given to
//! one reconciliation in place of its GET. Everything kept is dropped once the controller is
//! ready; from then on Secrets are read by name again.
//!
//! The list needs no more than the deployed RBAC already grants (`list` on Secrets, for the
//! metadata watch of `secrets.rs`), which is what notification-controller's own role grants
//! (`get`, `list`, `watch` on Secrets, `config/rbac/role.yaml`); with its
//! `CacheSecretsAndConfigMaps` feature it even keeps every Secret's data cached. A list
//! returns every Secret of the namespace, those no Receiver references included (Helm
//! release Secrets are the large ones), hence the threshold: below it, GETs are cheaper.
//!
//! A listed copy is never served stale: the metadata watch of Secrets reports each version it
//! sees here ([`SecretPrefetch::seen`]); a copy that disagrees with the latest version seen
//! is not used (the reconciliation reads the Secret by name), and a change seen after a copy
//! was used reconciles its Receiver again through [`SecretVersions`](super::secrets), as it
//! would after a GET.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ListParams, ObjectMeta};
use kube::runtime::reflector::Store;

use super::reconcile::SecretRead;
use super::watched::WatchedReceiver;

/// The referenced Secrets a namespace needs for its Secrets to be listed rather than read
/// one by one.
pub(crate) const LIST_AT_LEAST: usize = 8;
/// Secrets per page of the list, as client-go's pager (`tools/pager`, `defaultPageSize`) and
/// kube's watcher list: bounds what one answer holds in memory.
const PAGE: u32 = 500;

/// The start-up lists of Secrets, per namespace; see the module documentation.
pub(crate) struct SecretPrefetch {
    client: kube::Client,
    /// The Receivers, to know which Secrets they reference.
    receivers: Store<WatchedReceiver>,
    /// `None` once closed.
    namespaces: Mutex<Option<HashMap<String, Arc<Namespace>>>>,
    /// How long a list may take before its Secrets are read one by one.
    timeout: Duration,
}

/// One namespace's list.
#[derive(Default)]
struct Namespace {
    /// Set once the list has run (or was not worth running).
    listed: tokio::sync::OnceCell<()>,
    /// The referenced Secrets, by name.
    slots: Mutex<HashMap<String, Slot>>,
}

/// What is known of one referenced Secret.
enum Slot {
    /// Not listed yet; the last version the watch reported meanwhile (`Some(None)`:
    /// deleted).
    Pending { seen: Option<Option<String>> },
    /// Listed (`None`: not found), not yet used.
    Listed(Option<SecretRead>),
    /// Used, or not to be used: read by name.
    Spent,
}

impl Slot {
    /// The watch saw the Secret at `version` (`None`: deleted).
    fn seen(&mut self, version: Option<&str>) {
        match self {
            Self::Pending { seen } => *seen = Some(version.map(str::to_string)),
            Self::Listed(read) => {
                let listed = read.as_ref().map(|read| read.version.as_deref());
                // Listed as missing and now seen, or listed and now at another version
                // or deleted: the copy is out of date.
                if listed != version.map(Some) {
                    *self = Self::Spent;
                }
            }
            Self::Spent => {}
        }
    }

    /// The list found the Secret as `read`.
    fn listed(&mut self, read: SecretRead) {
        *self = match self {
            // Unless the watch saw another version (or a deletion) meanwhile.
            Self::Pending { seen: None } => Self::Listed(Some(read)),
            Self::Pending {
                seen: Some(Some(seen)),
            } if read.version.as_deref() == Some(seen.as_str()) => Self::Listed(Some(read)),
            _ => Self::Spent,
        };
    }

    /// The list ended: a Secret it did not find does not exist, unless the watch has seen
    /// it since.
    fn list_ended(&mut self) {
        if let Self::Pending { seen } = self {
            *self = match seen {
                None | Some(None) => Self::Listed(None),
                Some(Some(_)) => Self::Spent,
            };
        }
    }

    /// What the list gave, once.
    fn take(&mut self) -> Option<Option<SecretRead>> {
        match std::mem::replace(self, Self::Spent) {
            Self::Listed(read) => Some(read),
            other => {
                *self = other;
                None
            }
        }
    }
}

impl SecretPrefetch {
    /// Lists with `client` what the Receivers of `receivers` reference, each list bounded
    /// by `timeout` (as a single read is bounded).
    pub(crate) fn new(
        client: kube::Client,
        receivers: Store<WatchedReceiver>,
        timeout: Duration,
    ) -> Self {
        Self {
            client,
            receivers,
            namespaces: Mutex::new(Some(HashMap::new())),
            timeout,
        }
    }

    /// The Secret `namespace/name` as listed (`Some(None)`: it does not exist), taken once;
    /// `None` when it is to be read by name.
    pub(crate) async fn take(&self, namespace: &str, name: &str) -> Option<Option<SecretRead>> {
        let entry = {
            let mut namespaces = self.lock();
            let namespaces = namespaces.as_mut()?;
            Arc::clone(namespaces.entry(namespace.to_string()).or_default())
        };
        entry
            .listed
            .get_or_init(|| self.list(namespace, &entry))
            .await;
        lock(&entry.slots).get_mut(name)?.take()
    }

    /// The Secret watch saw the Secret of `metadata` at `version` (`None`: deleted).
    pub(crate) fn seen(&self, metadata: &ObjectMeta, version: Option<&str>) {
        let (Some(namespace), Some(name)) = (&metadata.namespace, &metadata.name) else {
            return;
        };
        let entry = {
            let namespaces = self.lock();
            match namespaces.as_ref().and_then(|all| all.get(namespace)) {
                Some(entry) => Arc::clone(entry),
                None => return,
            }
        };
        if let Some(slot) = lock(&entry.slots).get_mut(name.as_str()) {
            slot.seen(version);
        }
    }

    /// Drops everything: the controller is ready, Secrets are read by name from now on.
    pub(crate) fn close(&self) {
        self.lock().take();
    }

    /// Lists `namespace`'s Secrets into `entry` if its Receivers reference enough of them.
    async fn list(&self, namespace: &str, entry: &Namespace) {
        let referenced: HashSet<String> = self
            .receivers
            .state()
            .iter()
            .filter(|receiver| receiver.metadata.namespace.as_deref() == Some(namespace))
            .filter_map(|receiver| {
                super::reconcile::read_spec::<SecretRefOnly>(receiver)
                    .ok()?
                    .secret_ref
                    .map(|secret| secret.name)
            })
            .collect();
        if referenced.len() < LIST_AT_LEAST {
            return;
        }
        lock(&entry.slots).extend(
            referenced
                .into_iter()
                .map(|name| (name, Slot::Pending { seen: None })),
        );
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
        let listed = tokio::time::timeout(self.timeout, async {
            let mut params = ListParams::default().limit(PAGE);
            loop {
                let page = secrets.list(&params).await?;
                let next = page.metadata.continue_.clone().filter(|c| !c.is_empty());
                let mut slots = lock(&entry.slots);
                for secret in page.items {
                    let Some(name) = secret.metadata.name.clone() else {
                        continue;
                    };
                    if let Some(slot) = slots.get_mut(&name) {
                        slot.listed(SecretRead::from(secret));
                    }
                }
                drop(slots);
                match next {
                    Some(token) => params = params.continue_token(&token),
                    None => return Ok::<_, kube::Error>(()),
                }
            }
        })
        .await;
        let mut slots = lock(&entry.slots);
        match listed {
            Ok(Ok(())) => slots.values_mut().for_each(Slot::list_ended),
            failed => {
                let error = match failed {
                    Ok(Err(error)) => error.to_string(),
                    _ => format!("no answer within {:?}", self.timeout),
                };
                tracing::debug!(
                    namespace,
                    %error,
                    "listing Secrets failed; reading each by name"
                );
                slots.clear();
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, Option<HashMap<String, Arc<Namespace>>>> {
        lock(&self.namespaces)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The one field of a Receiver's spec the prefetch reads.
#[derive(serde::Deserialize)]
struct SecretRefOnly {
    #[serde(rename = "secretRef")]
    secret_ref: Option<NameOnly>,
}

#[derive(serde::Deserialize)]
struct NameOnly {
    name: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(version: &str) -> SecretRead {
        SecretRead {
            data: [("token".to_string(), b"t".to_vec())].into(),
            version: Some(version.to_string()),
        }
    }

    fn pending() -> Slot {
        Slot::Pending { seen: None }
    }

    fn taken(mut slot: Slot) -> Option<Option<String>> {
        let first = slot.take().map(|read| read.and_then(|read| read.version));
        // Given once only.
        assert!(slot.take().is_none());
        first
    }

    #[test]
    fn a_listed_secret_is_given_once() {
        let mut slot = pending();
        slot.listed(read("1"));
        // The watch agrees (its own list, or an event that came first).
        slot.seen(Some("1"));
        assert_eq!(taken(slot), Some(Some("1".to_string())));
    }

    #[test]
    fn a_secret_the_list_did_not_find_does_not_exist() {
        let mut slot = pending();
        slot.list_ended();
        assert_eq!(taken(slot), Some(None));
        let mut deleted = pending();
        deleted.seen(None);
        deleted.list_ended();
        assert_eq!(taken(deleted), Some(None));
    }

    #[test]
    fn a_change_the_watch_saw_is_read_by_name_whenever_it_came() {
        // After the list: another version, a deletion, a creation.
        for (listed, seen) in [(Some("1"), Some("2")), (Some("1"), None), (None, Some("2"))] {
            let mut slot = pending();
            match listed {
                Some(version) => slot.listed(read(version)),
                None => slot.list_ended(),
            }
            slot.seen(seen);
            assert_eq!(taken(slot), None, "{listed:?} then {seen:?}");
        }
        // While listing: the list found another version than the watch saw last.
        let mut slot = pending();
        slot.seen(Some("2"));
        slot.listed(read("1"));
        assert_eq!(taken(slot), None);
        let mut slot = pending();
        slot.seen(None);
        slot.listed(read("1"));
        assert_eq!(taken(slot), None);
        // Created while listing, after the list passed its name.
        let mut slot = pending();
        slot.seen(Some("3"));
        slot.list_ended();
        assert_eq!(taken(slot), None);
        // The same version: given.
        let mut slot = pending();
        slot.seen(Some("1"));
        slot.listed(read("1"));
        assert_eq!(taken(slot), Some(Some("1".to_string())));
    }
}
