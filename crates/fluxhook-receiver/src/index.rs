//! Webhook digests to endpoints, in constant time.
//!
//! A webhook path hashes the token, the name and the namespace one after the other, so two
//! Receivers can share one: `generic-oidc` Receivers (no token) named `ab` in namespace `c`
//! and `a` in namespace `bc` both hash `abc`. Each Receiver *claims* its path; a path serves
//! one claim, chosen the same way whatever the order of events:
//!
//! 1. a Receiver that can serve (ready or suspended) before one that cannot (its Secret is
//!    gone: kept only so that its sender gets 503 rather than 404);
//! 2. then the one created first (`metadata.creationTimestamp`; unknown counts as newest),
//!    so that a Receiver created later can never take over a path already in use;
//! 3. then by namespace and name.
//!
//! The others are remembered, and when the served one goes or moves, the next one is served
//! at once. Every change says which other Receivers' standing it changed, so that their
//! status can be written again.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use fluxhook_api::WebhookPath;
use k8s_openapi::jiff::Timestamp;

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

/// Where a Receiver stands at the path it claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Standing {
    /// The path serves this Receiver; `rivals` claim it too and are not served.
    Served {
        /// The other Receivers claiming the path, in order of precedence.
        rivals: Vec<ReceiverKey>,
    },
    /// The path serves another Receiver, `by`.
    Shadowed {
        /// The Receiver served at the path.
        by: ReceiverKey,
    },
}

/// What a claim found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    /// Where the claiming Receiver stands.
    pub standing: Standing,
    /// Other Receivers whose standing the claim changed: served now, shadowed now, or with
    /// other rivals.
    pub affected: Vec<ReceiverKey>,
}

/// The order in which claims on one path are served: lowest first, then by their
/// Receiver's key (see [`Inner::settle`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Precedence {
    /// Only kept for a 503: after every claim that can serve.
    not_ready: bool,
    /// Unknown creation times count as the newest.
    unknown_creation: bool,
    created: Option<Timestamp>,
}

/// A Receiver's claim, under its key. Its path's digest is its state's: with 10,000
/// Receivers every copy of a key or a digest kept here costs about a megabyte.
struct Claim {
    state: Arc<EndpointState>,
    precedence: Precedence,
}

impl Claim {
    fn digest(&self) -> &str {
        self.state.webhook_path().digest()
    }
}

/// The claims on one path and the one it serves.
struct Path {
    served: Arc<EndpointState>,
    /// Never empty; in order of precedence, the served one first.
    claimants: Vec<ReceiverKey>,
}

#[derive(Default)]
struct Inner {
    by_digest: HashMap<String, Path>,
    claims: HashMap<ReceiverKey, Claim>,
}

impl Inner {
    /// Removes `key`'s claim from its path; the Receivers whose standing that changed.
    fn unclaim(&mut self, key: &ReceiverKey) -> Vec<ReceiverKey> {
        let Some(claim) = self.claims.remove(key) else {
            return Vec::new();
        };
        let Some(path) = self.by_digest.get_mut(claim.digest()) else {
            return Vec::new();
        };
        path.claimants.retain(|claimant| claimant != key);
        if path.claimants.is_empty() {
            self.by_digest.remove(claim.digest());
            return Vec::new();
        }
        // One fewer rival for each of the others, and perhaps another one served.
        let affected = path.claimants.clone();
        self.settle(claim.digest());
        affected
    }

    /// Orders the claimants of `digest` and serves the first.
    fn settle(&mut self, digest: &str) {
        let Some(path) = self.by_digest.get_mut(digest) else {
            return;
        };
        let claims = &self.claims;
        path.claimants
            .sort_by(|a, b| rank(claims, a).cmp(&rank(claims, b)));
        if let Some(first) = path.claimants.first().and_then(|key| claims.get(key)) {
            path.served = Arc::clone(&first.state);
        }
    }

    fn standing(&self, key: &ReceiverKey) -> Option<Standing> {
        let claim = self.claims.get(key)?;
        let path = self.by_digest.get(claim.digest())?;
        let first = path.claimants.first()?;
        Some(if first == key {
            Standing::Served {
                rivals: path.claimants[1..].to_vec(),
            }
        } else {
            Standing::Shadowed { by: first.clone() }
        })
    }
}

/// Where `key`'s claim comes on its path: by its precedence, then by namespace and name.
fn rank<'a>(
    claims: &'a HashMap<ReceiverKey, Claim>,
    key: &'a ReceiverKey,
) -> (Option<&'a Precedence>, &'a ReceiverKey) {
    (claims.get(key).map(|claim| &claim.precedence), key)
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
        inner
            .by_digest
            .get(digest)
            .map(|path| Arc::clone(&path.served))
    }

    /// Serves `state` at its path, replacing what its Receiver had before, at this path or
    /// an old one (a rotated token moves the path); as [`claim`](Self::claim) with an
    /// unknown creation time.
    pub fn publish(&self, state: EndpointState) {
        self.claim(state, None);
    }

    /// Claims `state`'s path for its Receiver, created at `created`, replacing what it had
    /// before (at this path or an old one). Whether the path serves it: a Receiver that can
    /// serve before one that cannot, then the one created first, then by namespace and name.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use fluxhook_api::webhook_path;
    /// use fluxhook_receiver::{EndpointIndex, EndpointState, ReceiverKey, Standing};
    /// use k8s_openapi::jiff::Timestamp;
    ///
    /// let key = |namespace: &str, name: &str| ReceiverKey {
    ///     namespace: namespace.into(),
    ///     name: name.into(),
    /// };
    /// // No token: `ab` in `c` and `a` in `bc` hash the same text.
    /// let path = webhook_path("", "ab", "c");
    /// assert_eq!(path, webhook_path("", "a", "bc"));
    /// let not_ready = |key: ReceiverKey| EndpointState::NotReady {
    ///     key,
    ///     webhook_path: path.clone(),
    ///     message: "not ready".into(),
    /// };
    ///
    /// let index = EndpointIndex::default();
    /// let newer = index.claim(not_ready(key("bc", "a")), Some(Timestamp::from_second(200)?));
    /// assert_eq!(newer.standing, Standing::Served { rivals: vec![] });
    ///
    /// let older = index.claim(not_ready(key("c", "ab")), Some(Timestamp::from_second(100)?));
    /// assert_eq!(older.standing, Standing::Served { rivals: vec![key("bc", "a")] });
    /// assert_eq!(older.affected, [key("bc", "a")]);
    ///
    /// // The older one goes: the other is served at once.
    /// assert_eq!(index.withdraw(&key("c", "ab")), [key("bc", "a")]);
    /// assert_eq!(index.lookup(path.digest()).unwrap().key(), &key("bc", "a"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn claim(&self, state: EndpointState, created: Option<Timestamp>) -> Claimed {
        let key = state.key().clone();
        let digest = state.webhook_path().digest().to_string();
        let precedence = Precedence {
            not_ready: matches!(state, EndpointState::NotReady { .. }),
            unknown_creation: created.is_none(),
            created,
        };
        let state = Arc::new(state);
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);

        let mut affected = Vec::new();
        let moved = inner
            .claims
            .get(&key)
            .is_some_and(|claim| claim.digest() != digest);
        if moved {
            affected = inner.unclaim(&key);
        }
        let before = inner
            .by_digest
            .get(&digest)
            .map(|path| path.claimants.clone())
            .unwrap_or_default();
        inner.claims.insert(
            key.clone(),
            Claim {
                state: Arc::clone(&state),
                precedence,
            },
        );
        let path = inner
            .by_digest
            .entry(digest.clone())
            .or_insert_with(|| Path {
                served: Arc::clone(&state),
                claimants: Vec::new(),
            });
        if !path.claimants.contains(&key) {
            // Most paths have one claimant: no room for more until one comes.
            path.claimants.reserve_exact(1);
            path.claimants.push(key.clone());
        }
        inner.settle(&digest);
        let after = inner
            .by_digest
            .get(&digest)
            .map(|path| path.claimants.clone())
            .unwrap_or_default();
        // Joining a path, or changing its order, changes every other claimant's standing.
        if before != after {
            affected.extend(after.into_iter().filter(|claimant| *claimant != key));
        }
        affected.sort();
        affected.dedup();
        let standing = inner
            .standing(&key)
            .unwrap_or(Standing::Served { rivals: Vec::new() });
        Claimed { standing, affected }
    }

    /// Stops serving the Receiver `key` (deleted, or no path known); the other Receivers
    /// whose standing that changed (one of them may be served now).
    pub fn withdraw(&self, key: &ReceiverKey) -> Vec<ReceiverKey> {
        let mut inner = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        inner.unclaim(key)
    }

    /// The path the Receiver `key` claims, if it is indexed (served there or not).
    pub fn webhook_path_of(&self, key: &ReceiverKey) -> Option<WebhookPath> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner
            .claims
            .get(key)
            .map(|claim| claim.state.webhook_path().clone())
    }

    /// Where the Receiver `key` stands at its path, if it is indexed.
    pub fn standing(&self, key: &ReceiverKey) -> Option<Standing> {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.standing(key)
    }

    /// How many Receivers are indexed.
    pub fn len(&self) -> usize {
        let inner = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        inner.claims.len()
    }

    /// Whether no Receiver is indexed.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fluxhook_api::webhook_path;
    use proptest::prelude::*;

    use super::*;

    fn key(namespace: &str, name: &str) -> ReceiverKey {
        ReceiverKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    fn at(second: i64) -> Option<Timestamp> {
        Some(Timestamp::from_second(second).unwrap())
    }

    fn not_ready(key: ReceiverKey, token: &str) -> EndpointState {
        let webhook_path = webhook_path(token, &key.name, &key.namespace);
        EndpointState::NotReady {
            key,
            webhook_path,
            message: String::new(),
        }
    }

    fn served(index: &EndpointIndex, path: &WebhookPath) -> Option<ReceiverKey> {
        index.lookup(path.digest()).map(|state| state.key().clone())
    }

    #[test]
    fn a_rotated_token_moves_the_path_and_frees_the_old_one() {
        let index = EndpointIndex::default();
        let old = webhook_path("1", "r", "ns");
        let new = webhook_path("2", "r", "ns");
        index.claim(not_ready(key("ns", "r"), "1"), at(1));
        let moved = index.claim(not_ready(key("ns", "r"), "2"), at(1));
        assert_eq!(moved.affected, []);
        assert_eq!(served(&index, &old), None);
        assert_eq!(served(&index, &new), Some(key("ns", "r")));
        assert_eq!(index.len(), 1);
        assert_eq!(index.webhook_path_of(&key("ns", "r")), Some(new));
    }

    #[test]
    fn the_older_claim_wins_and_the_other_takes_over_when_it_goes() {
        let index = EndpointIndex::default();
        let path = webhook_path("", "ab", "c");
        // The newer one first: served until the older one claims.
        index.claim(not_ready(key("bc", "a"), ""), at(20));
        let older = index.claim(not_ready(key("c", "ab"), ""), at(10));
        assert_eq!(
            older.standing,
            Standing::Served {
                rivals: vec![key("bc", "a")]
            }
        );
        assert_eq!(older.affected, [key("bc", "a")]);
        assert_eq!(served(&index, &path), Some(key("c", "ab")));
        assert_eq!(
            index.standing(&key("bc", "a")),
            Some(Standing::Shadowed { by: key("c", "ab") })
        );
        // Claiming again the same way changes nobody's standing.
        let again = index.claim(not_ready(key("bc", "a"), ""), at(20));
        assert_eq!(again.affected, []);
        // The older one moves away (a token): the other is served, and told.
        let moved = index.claim(not_ready(key("c", "ab"), "t"), at(10));
        assert_eq!(moved.affected, [key("bc", "a")]);
        assert_eq!(served(&index, &path), Some(key("bc", "a")));
        assert_eq!(
            index.withdraw(&key("c", "ab")),
            Vec::<ReceiverKey>::new(),
            "alone at its new path"
        );
        assert_eq!(index.withdraw(&key("bc", "a")), Vec::<ReceiverKey>::new());
        assert!(index.is_empty());
        assert_eq!(served(&index, &path), None);
    }

    #[test]
    fn equal_creation_times_fall_back_to_namespace_and_name() {
        let index = EndpointIndex::default();
        index.claim(not_ready(key("c", "ab"), ""), at(10));
        index.claim(not_ready(key("bc", "a"), ""), at(10));
        assert_eq!(
            index.standing(&key("bc", "a")),
            Some(Standing::Served {
                rivals: vec![key("c", "ab")]
            })
        );
        // Unknown creation counts as newest.
        let index = EndpointIndex::default();
        index.publish(not_ready(key("bc", "a"), ""));
        index.claim(not_ready(key("c", "ab"), ""), at(10));
        assert_eq!(
            index.standing(&key("bc", "a")),
            Some(Standing::Shadowed { by: key("c", "ab") })
        );
    }

    /// The rank of a claim in namespace `n`, as `rank` orders it.
    fn precedence(not_ready: bool, created: i64, name: &str) -> (Precedence, ReceiverKey) {
        let precedence = Precedence {
            not_ready,
            unknown_creation: false,
            created: at(created),
        };
        (precedence, key("n", name))
    }

    #[test]
    fn claims_that_can_serve_come_before_those_kept_for_a_503() {
        assert!(precedence(false, 50, "b") < precedence(true, 10, "a"));
        assert!(precedence(false, 10, "b") < precedence(false, 50, "a"));
        assert!(precedence(false, 10, "a") < precedence(false, 10, "b"));
    }

    proptest! {
        /// Whatever the order of claims and withdrawals, the path serves the claim of
        /// highest precedence among those left, and affected lists are never the claimant.
        #[test]
        fn the_outcome_does_not_depend_on_the_order(
            ops in proptest::collection::vec((0usize..4, 0u8..3, any::<bool>()), 1..40)
        ) {
            let names = ["ab", "a", "abc", ""];
            let namespaces = ["c", "bc", "", "abc"];
            let path = webhook_path("", "ab", "c");
            let index = EndpointIndex::default();
            let mut live: HashMap<ReceiverKey, i64> = HashMap::new();
            for (who, created, withdraw) in ops {
                let receiver = key(namespaces[who], names[who]);
                if withdraw {
                    let affected = index.withdraw(&receiver);
                    prop_assert!(!affected.contains(&receiver));
                    live.remove(&receiver);
                } else {
                    let created = i64::from(created);
                    let claimed = index.claim(not_ready(receiver.clone(), ""), at(created));
                    prop_assert!(!claimed.affected.contains(&receiver));
                    live.insert(receiver, created);
                }
                let expected = live
                    .iter()
                    .min_by_key(|(key, created)| (**created, (*key).clone()))
                    .map(|(key, _)| key.clone());
                prop_assert_eq!(served(&index, &path), expected);
                prop_assert_eq!(index.len(), live.len());
            }
        }
    }
}
