//! The Receiver as the controller watches, stores and queues it.

use std::borrow::Cow;
use std::ops::{Deref, DerefMut};

use fluxhook_api::Receiver;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Resource;
use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};

/// A Receiver read untyped, so that one whose spec does not deserialize is still seen and
/// reported on its own status, yet of a kind fixed at compile time (`DynamicType = ()`).
///
/// The kind matters for memory: kube-runtime refers to each object by an `ObjectRef<K>`
/// carrying a copy of `K::DynamicType`, in the store's keys and in every queued
/// reconciliation (the scheduler keeps two per Receiver). For a [`DynamicObject`] that is
/// an `ApiResource`, five strings; here it is nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct WatchedReceiver(pub(crate) DynamicObject);

impl Resource for WatchedReceiver {
    type DynamicType = ();
    type Scope = NamespaceResourceScope;

    fn kind(dt: &()) -> Cow<'_, str> {
        Receiver::kind(dt)
    }

    fn group(dt: &()) -> Cow<'_, str> {
        Receiver::group(dt)
    }

    fn version(dt: &()) -> Cow<'_, str> {
        Receiver::version(dt)
    }

    fn api_version(dt: &()) -> Cow<'_, str> {
        Receiver::api_version(dt)
    }

    fn plural(dt: &()) -> Cow<'_, str> {
        Receiver::plural(dt)
    }

    fn meta(&self) -> &ObjectMeta {
        &self.0.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.0.metadata
    }
}

impl Deref for WatchedReceiver {
    type Target = DynamicObject;

    fn deref(&self) -> &DynamicObject {
        &self.0
    }
}

impl DerefMut for WatchedReceiver {
    fn deref_mut(&mut self) -> &mut DynamicObject {
        &mut self.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use kube::discovery::ApiResource;

    use super::*;

    #[test]
    fn the_kind_and_its_path_are_the_receivers() {
        let erased = ApiResource::erase::<Receiver>(&());
        assert_eq!(WatchedReceiver::kind(&()), erased.kind);
        assert_eq!(WatchedReceiver::group(&()), erased.group);
        assert_eq!(WatchedReceiver::version(&()), erased.version);
        assert_eq!(WatchedReceiver::api_version(&()), erased.api_version);
        assert_eq!(WatchedReceiver::plural(&()), erased.plural);
        assert_eq!(
            WatchedReceiver::url_path(&(), Some("ns")),
            Receiver::url_path(&(), Some("ns"))
        );
    }

    #[test]
    fn any_receiver_deserializes_its_spec_left_as_it_is() {
        let object: WatchedReceiver = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"type": 7, "unknown": true},
        }))
        .unwrap();
        assert_eq!(object.metadata.name.as_deref(), Some("r"));
        assert_eq!(object.data["spec"]["unknown"], true);
    }
}
