//! Webhook digests to endpoints, in constant time.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use fluxhook_api::WebhookPath;

use crate::endpoint::{Endpoint, ReceiverKey};

/// What a webhook path leads to.
#[derive(Debug)]
pub enum EndpointState {
    /// Serving requests.
    Ready(Arc<Endpoint>),
    /// Known but refusing requests (503): suspended.
    Suspended(Arc<Endpoint>),
    /// Known by its last path but not serviceable (503), e.g. its Secret
    /// went missing.
    NotReady {
        /// The Receiver.
        key: ReceiverKey,
        /// The path it was last served at.
        webhook_path: WebhookPath,
        /// Why, as on its `Ready` condition.
        message: String,
    },
}

impl EndpointState {
    /// The Receiver.
    pub fn key(&self) -> &ReceiverKey {
        match self {
            Self::Ready(endpoint) | Self::Suspended(endpoint) => &endpoint.key,
            Self::NotReady { key, .. } => key,
        }
    }

    /// The path it is reached at.
    pub fn webhook_path(&self) -> &WebhookPath {
        match self {
            Self::Ready(endpoint) | Self::Suspended(endpoint) => &endpoint.webhook_path,
            Self::NotReady { webhook_path, .. } => webhook_path,
        }
    }
}

#[derive(Default)]
struct Inner {
    by_digest: HashMap<String, Arc<EndpointState>>,
    digest_of: HashMap<ReceiverKey, String>,
}

/// The live endpoints, shared by the controller (which publishes) and the
/// webhook server (which looks up). Lookups are a hash-map read under a
/// read lock, whatever the number of Receivers.
#[derive(Default)]
pub struct EndpointIndex {
    inner: RwLock<Inner>,
}

impl EndpointIndex {
    /// The endpoint at `digest` (the hex part of `/hook/<digest>`).
    pub fn lookup(&self, digest: &str) -> Option<Arc<EndpointState>> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.by_digest.get(digest).cloned()
    }

    /// Serves `state` at its path, replacing what its Receiver had before,
    /// at this path or an old one (a rotated token moves the path).
    pub fn publish(&self, state: EndpointState) {
        let key = state.key().clone();
        let digest = state.webhook_path().digest().to_string();
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(old) = inner.digest_of.insert(key, digest.clone()) {
            inner.by_digest.remove(&old);
        }
        inner.by_digest.insert(digest, Arc::new(state));
    }

    /// Stops serving the Receiver `key` (deleted, or no path known).
    pub fn withdraw(&self, key: &ReceiverKey) {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        if let Some(digest) = inner.digest_of.remove(key) {
            inner.by_digest.remove(&digest);
        }
    }

    /// The path the Receiver `key` is served at, if it is indexed.
    pub fn webhook_path_of(&self, key: &ReceiverKey) -> Option<WebhookPath> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let digest = inner.digest_of.get(key)?;
        inner
            .by_digest
            .get(digest)
            .map(|state| state.webhook_path().clone())
    }

    /// How many Receivers are indexed.
    pub fn len(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.digest_of.len()
    }

    /// Whether no Receiver is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
