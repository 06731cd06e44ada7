//! Whether the controller has served every Receiver it found at start.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::watch;

use crate::endpoint::ReceiverKey;

/// Set once the controller has listed the Receivers and reconciled each of
/// them once, so that every valid webhook is served: what a `/readyz` probe
/// should report. It never goes back to not ready.
///
/// Clones share the same signal.
///
/// ```
/// use fluxhook_receiver::controller::Readiness;
///
/// let readiness = Readiness::default();
/// assert!(!readiness.is_ready());
/// ```
#[derive(Debug, Clone)]
pub struct Readiness(Arc<watch::Sender<bool>>);

impl Default for Readiness {
    fn default() -> Self {
        Self(Arc::new(watch::Sender::new(false)))
    }
}

impl Readiness {
    /// Whether the initial Receivers are all served.
    pub fn is_ready(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until [`is_ready`](Self::is_ready).
    pub async fn wait(&self) {
        let mut ready = self.0.subscribe();
        // The sender lives as long as `self`, so this cannot fail.
        let _ = ready.wait_for(|ready| *ready).await;
    }

    fn set_ready(&self) {
        self.0.send_replace(true);
    }
}

/// Tracks the Receivers of the first list until each has been reconciled.
#[derive(Debug)]
pub(crate) struct InitialSync {
    state: Mutex<SyncState>,
    readiness: Readiness,
}

#[derive(Debug)]
enum SyncState {
    /// The first list is not complete; these were reconciled meanwhile.
    Listing(HashSet<ReceiverKey>),
    /// Listed; these are still to be reconciled.
    Reconciling(HashSet<ReceiverKey>),
    Done,
}

impl InitialSync {
    pub(crate) fn new(readiness: Readiness) -> Self {
        Self {
            state: Mutex::new(SyncState::Listing(HashSet::new())),
            readiness,
        }
    }

    /// The watch has listed these Receivers (every list after the first is
    /// ignored).
    pub(crate) fn listed(&self, keys: &HashSet<ReceiverKey>) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if let SyncState::Listing(reconciled) = &*state {
            let pending = keys.difference(reconciled).cloned().collect();
            *state = SyncState::Reconciling(pending);
            self.settle(&mut state);
        }
    }

    /// The Receiver `key` has been reconciled, or found gone; whether every Receiver of
    /// the first list now has been.
    pub(crate) fn reconciled(&self, key: &ReceiverKey) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match &mut *state {
            SyncState::Listing(reconciled) => {
                reconciled.insert(key.clone());
            }
            SyncState::Reconciling(pending) => {
                pending.remove(key);
                self.settle(&mut state);
            }
            SyncState::Done => {}
        }
        matches!(*state, SyncState::Done)
    }

    fn settle(&self, state: &mut SyncState) {
        if matches!(state, SyncState::Reconciling(pending) if pending.is_empty()) {
            *state = SyncState::Done;
            self.readiness.set_ready();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str) -> ReceiverKey {
        ReceiverKey {
            namespace: "ns".into(),
            name: name.into(),
        }
    }

    #[test]
    fn ready_once_every_listed_receiver_is_reconciled() {
        let readiness = Readiness::default();
        let sync = InitialSync::new(readiness.clone());
        sync.reconciled(&key("early"));
        sync.listed(&HashSet::from([key("early"), key("a"), key("b")]));
        sync.reconciled(&key("a"));
        sync.reconciled(&key("unlisted"));
        assert!(!readiness.is_ready());
        sync.reconciled(&key("b"));
        assert!(readiness.is_ready());
        // Later lists do not take readiness back.
        sync.listed(&HashSet::from([key("c")]));
        assert!(readiness.is_ready());
    }

    #[test]
    fn an_empty_list_is_ready_at_once() {
        let readiness = Readiness::default();
        InitialSync::new(readiness.clone()).listed(&HashSet::new());
        assert!(readiness.is_ready());
    }
}
