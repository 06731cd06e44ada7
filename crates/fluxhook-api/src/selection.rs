//! Which objects one `spec.resources` entry of a Receiver names: Flux's rules,
//! in one place.
//!
//! notification-controller selects in `requestReconciliation`
//! (internal/server/receiver_handlers.go): the entry's namespace, else the
//! Receiver's; another namespace than the Receiver's refused under
//! `--no-cross-namespace-refs`; name `*` lists the objects of the kind whose
//! labels carry every pair of `matchLabels` (which must then be set; `{}`
//! selects them all, since Flux tests for nil); any other name is that one
//! object.
//!
//! The rules are pure, so every reader applies the same ones: the webhook
//! server and registration ask the API server for what a [`Selector`]
//! describes (fluxhook-trigger), and the controller asks the reverse, which
//! entries name a changed object, with [`ReceiverResource::selects`].
//!
//! ```
//! use std::collections::BTreeMap;
//! use fluxhook_api::{Candidate, Names, ReceiverResource, SelectorError};
//!
//! let entry: ReceiverResource = serde_json::from_value(serde_json::json!({
//!     "kind": "GitRepository", "name": "*", "matchLabels": {"app": "podinfo"}
//! }))?;
//! let selector = entry.selector("flux-system", false)?;
//! assert_eq!(selector.namespace, "flux-system");
//! assert!(matches!(selector.names, Names::Labels(_)));
//!
//! let labels = BTreeMap::from([("app".to_owned(), "podinfo".to_owned())]);
//! let podinfo = Candidate {
//!     group: "source.toolkit.fluxcd.io",
//!     kind: "GitRepository",
//!     namespace: "flux-system",
//!     name: "podinfo",
//!     labels: &labels,
//! };
//! assert!(entry.selects("flux-system", false, &podinfo));
//! assert!(!entry.selects("apps", false, &podinfo));
//!
//! let elsewhere: ReceiverResource = serde_json::from_value(serde_json::json!({
//!     "kind": "GitRepository", "name": "podinfo", "namespace": "flux-system"
//! }))?;
//! assert!(matches!(
//!     elsewhere.selector("apps", true),
//!     Err(SelectorError::CrossNamespace { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::BTreeMap;

use crate::kinds::resolve;
use crate::spec::ReceiverResource;

/// The name that selects by `matchLabels`.
pub const WILDCARD_NAME: &str = "*";

/// How an entry names objects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Names<'a> {
    /// The one object of this name.
    Name(&'a str),
    /// Every object of the kind whose labels carry all of these (name `*`).
    Labels(&'a BTreeMap<String, String>),
}

/// Where and how an entry names objects: what a reader asks the API server for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Selector<'a> {
    /// The namespace of the objects: the entry's, else the Receiver's.
    pub namespace: &'a str,
    /// By name, or by labels.
    pub names: Names<'a>,
}

impl Selector<'_> {
    /// Whether an object of the entry's kind, `namespace`/`name` with `labels`, is one of
    /// those selected.
    pub fn matches(&self, namespace: &str, name: &str, labels: &BTreeMap<String, String>) -> bool {
        namespace == self.namespace
            && match self.names {
                Names::Name(wanted) => name == wanted,
                Names::Labels(wanted) => wanted.iter().all(|(k, v)| labels.get(k) == Some(v)),
            }
    }
}

/// Why an entry selects nothing, whatever the cluster holds.
///
/// Not `#[non_exhaustive]`, on purpose: a new rule must be handled by every reader that
/// maps these to its own errors, rather than fall into a catch-all arm.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SelectorError {
    /// The entry names another namespace than the Receiver's, and cross-namespace
    /// references are forbidden (Flux's `--no-cross-namespace-refs`).
    #[error(
        "cross-namespace references are not allowed (the Receiver is in namespace {receiver_namespace})"
    )]
    CrossNamespace {
        /// The namespace the entry names.
        namespace: String,
        /// The Receiver's namespace.
        receiver_namespace: String,
    },
    /// Name `*` selects by `matchLabels`, and the entry has none.
    #[error("matchLabels must be set when the name is the wildcard '*'")]
    WildcardWithoutMatchLabels,
}

/// An object, as the reverse question ([`ReceiverResource::selects`]) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate<'a> {
    /// Its API group, e.g. `source.toolkit.fluxcd.io`.
    pub group: &'a str,
    /// Its kind, e.g. `GitRepository`.
    pub kind: &'a str,
    /// Its namespace.
    pub namespace: &'a str,
    /// Its name.
    pub name: &'a str,
    /// Its labels.
    pub labels: &'a BTreeMap<String, String>,
}

impl ReceiverResource {
    /// The namespace of the objects the entry names: its own when set and not empty, else
    /// the Receiver's.
    pub fn namespace_or<'a>(&'a self, receiver_namespace: &'a str) -> &'a str {
        self.namespace
            .as_deref()
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or(receiver_namespace)
    }

    /// How the entry names objects: by name, or by `matchLabels` for `*` (an error without
    /// them).
    pub fn names(&self) -> Result<Names<'_>, SelectorError> {
        if self.name != WILDCARD_NAME {
            return Ok(Names::Name(&self.name));
        }
        self.match_labels
            .as_ref()
            .map(Names::Labels)
            .ok_or(SelectorError::WildcardWithoutMatchLabels)
    }

    /// Where and how the entry of a Receiver in `receiver_namespace` names objects, in
    /// Flux's order: the namespace rule first, then the wildcard's.
    pub fn selector<'a>(
        &'a self,
        receiver_namespace: &'a str,
        no_cross_namespace_refs: bool,
    ) -> Result<Selector<'a>, SelectorError> {
        let namespace = self.namespace_or(receiver_namespace);
        if no_cross_namespace_refs && namespace != receiver_namespace {
            return Err(SelectorError::CrossNamespace {
                namespace: namespace.to_owned(),
                receiver_namespace: receiver_namespace.to_owned(),
            });
        }
        Ok(Selector {
            namespace,
            names: self.names()?,
        })
    }

    /// Whether the entry names objects of `group` and `kind` (its `apiVersion` resolved as
    /// Flux resolves it: absent takes Flux's default for the kind).
    pub fn is_of_kind(&self, group: &str, kind: &str) -> bool {
        self.kind == kind
            && resolve(self.api_version.as_deref(), &self.kind)
                .is_ok_and(|resolved| resolved.group() == group)
    }

    /// The reverse of [`selector`](Self::selector): whether this entry of a Receiver in
    /// `receiver_namespace` names `object`.
    pub fn selects(
        &self,
        receiver_namespace: &str,
        no_cross_namespace_refs: bool,
        object: &Candidate<'_>,
    ) -> bool {
        self.is_of_kind(object.group, object.kind)
            && self
                .selector(receiver_namespace, no_cross_namespace_refs)
                .is_ok_and(|selector| {
                    selector.matches(object.namespace, object.name, object.labels)
                })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn entry(value: serde_json::Value) -> ReceiverResource {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn the_namespace_is_the_entrys_unless_empty() {
        let named = entry(serde_json::json!({"kind": "Bucket", "name": "a", "namespace": "x"}));
        assert_eq!(named.namespace_or("r"), "x");
        let empty = entry(serde_json::json!({"kind": "Bucket", "name": "a", "namespace": ""}));
        assert_eq!(empty.namespace_or("r"), "r");
        assert_eq!(empty.selector("r", true).unwrap().namespace, "r");
        assert_eq!(
            named.selector("r", true).unwrap_err(),
            SelectorError::CrossNamespace {
                namespace: "x".into(),
                receiver_namespace: "r".into()
            }
        );
        // The entry naming the Receiver's own namespace is no cross-namespace reference.
        assert!(named.selector("x", true).is_ok());
    }

    #[test]
    fn a_wildcard_needs_match_labels_and_empty_ones_select_all() {
        let bare = entry(serde_json::json!({"kind": "Bucket", "name": "*"}));
        assert_eq!(
            bare.selector("r", false).unwrap_err(),
            SelectorError::WildcardWithoutMatchLabels
        );
        let all = entry(serde_json::json!({"kind": "Bucket", "name": "*", "matchLabels": {}}));
        let selector = all.selector("r", false).unwrap();
        assert!(selector.matches("r", "anything", &BTreeMap::new()));
        assert!(!selector.matches("other", "anything", &BTreeMap::new()));
    }

    #[test]
    fn kinds_are_resolved_as_flux_resolves_them() {
        let git = entry(serde_json::json!({"kind": "GitRepository", "name": "a"}));
        assert!(git.is_of_kind("source.toolkit.fluxcd.io", "GitRepository"));
        let beta = entry(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1beta2", "kind": "GitRepository", "name": "a"
        }));
        assert!(beta.is_of_kind("source.toolkit.fluxcd.io", "GitRepository"));
        let foreign = entry(serde_json::json!({
            "apiVersion": "example.com/v1", "kind": "GitRepository", "name": "a"
        }));
        assert!(!foreign.is_of_kind("source.toolkit.fluxcd.io", "GitRepository"));
        assert!(!git.is_of_kind("source.toolkit.fluxcd.io", "Bucket"));
    }
}
