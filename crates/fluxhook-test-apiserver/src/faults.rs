//! Faults a test injects at run time, and the log of every request the server received.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::ApiError;
use crate::rbac::{AllowingRule, Decision};

/// A Kubernetes API verb, as the apiserver names the action of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// GET of one object, or of a discovery document.
    Get,
    /// GET of a collection.
    List,
    /// GET of a collection with `watch=true`.
    Watch,
    /// POST.
    Create,
    /// PUT.
    Update,
    /// PATCH.
    Patch,
    /// DELETE of one object.
    Delete,
    /// DELETE of a collection.
    DeleteCollection,
}

impl Verb {
    /// The verb as Kubernetes spells it (`get`, `deletecollection`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Watch => "watch",
            Verb::Create => "create",
            Verb::Update => "update",
            Verb::Patch => "patch",
            Verb::Delete => "delete",
            Verb::DeleteCollection => "deletecollection",
        }
    }
}

/// The resource a request addressed, parsed from its path.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestTarget {
    /// API group; empty for the core group.
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name, such as `gitrepositories`.
    pub resource: String,
    /// Namespace in the path, if any.
    pub namespace: Option<String>,
    /// Object name in the path, if any.
    pub name: Option<String>,
    /// Subresource in the path (`status`), if any.
    pub subresource: Option<String>,
}

/// One request as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRecord {
    /// HTTP method.
    pub method: String,
    /// URL path.
    pub path: String,
    /// Raw query string (empty when there is none).
    pub query: String,
    /// `Content-Type` header, if sent.
    pub content_type: Option<String>,
    /// Body, decoded as UTF-8 (lossily).
    pub body: String,
    /// API verb; `None` for a method the Kubernetes API does not use.
    pub verb: Option<Verb>,
    /// Addressed resource; `None` for discovery and unknown paths.
    pub target: Option<RequestTarget>,
    /// HTTP status answered; `None` while the request is in flight.
    pub status: Option<u16>,
    /// `User-Agent` header, if sent: tells apart the clients of one server (client-go
    /// names the command, `<argv[0]>/<version> (<os>/<arch>) ...`).
    pub user_agent: Option<String>,
    /// The user it was authenticated as (`system:anonymous` without a token); `None` when
    /// its token was refused (401).
    pub user: Option<String>,
    /// How it was authorized; `None` when it was not authenticated.
    pub decision: Option<Decision>,
    id: u64,
}

impl RequestRecord {
    pub(crate) fn new(
        method: String,
        path: String,
        query: String,
        content_type: Option<String>,
        body: String,
        verb: Option<Verb>,
        target: Option<RequestTarget>,
    ) -> Self {
        static NEXT_ID: AtomicU64 = AtomicU64::new(0);
        Self {
            method,
            path,
            query,
            content_type,
            body,
            verb,
            target,
            status: None,
            user_agent: None,
            user: None,
            decision: None,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
        }
    }
}

/// Selects requests by verb and target; unset parts match anything.
///
/// ```
/// use fluxhook_test_apiserver::{RequestMatcher, Verb};
///
/// let repo_patches = RequestMatcher::any()
///     .verb(Verb::Patch)
///     .resource("gitrepositories")
///     .name("flux-repo");
/// # let _ = repo_patches;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestMatcher {
    verb: Option<Verb>,
    resource: Option<String>,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
    user: Option<String>,
    all_namespaces: bool,
}

impl RequestMatcher {
    /// Matches every request.
    pub fn any() -> Self {
        Self::default()
    }

    /// Only requests with this verb.
    #[must_use]
    pub fn verb(mut self, verb: Verb) -> Self {
        self.verb = Some(verb);
        self
    }

    /// Only requests for this plural resource name (`gitrepositories`).
    #[must_use]
    pub fn resource(mut self, resource: &str) -> Self {
        self.resource = Some(resource.to_owned());
        self
    }

    /// Only requests in this namespace.
    #[must_use]
    pub fn namespace(mut self, namespace: &str) -> Self {
        self.namespace = Some(namespace.to_owned());
        self
    }

    /// Only requests for the object with this name.
    #[must_use]
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_owned());
        self
    }

    /// Only requests across all namespaces (no namespace in the path), such as a
    /// controller's list and watch of a namespaced kind in every namespace.
    #[must_use]
    pub fn all_namespaces(mut self) -> Self {
        self.all_namespaces = true;
        self
    }

    /// Only requests for this subresource (`status`).
    #[must_use]
    pub fn subresource(mut self, subresource: &str) -> Self {
        self.subresource = Some(subresource.to_owned());
        self
    }

    /// Only requests authenticated as this user (`system:serviceaccount:<ns>:<name>`).
    #[must_use]
    pub fn user(mut self, user: &str) -> Self {
        self.user = Some(user.to_owned());
        self
    }

    /// Whether the request is selected.
    pub fn matches(&self, request: &RequestRecord) -> bool {
        let target = request.target.as_ref();
        let field_matches = |wanted: &Option<String>, have: Option<&str>| {
            wanted.as_deref().is_none_or(|wanted| have == Some(wanted))
        };
        self.verb.is_none_or(|verb| request.verb == Some(verb))
            && field_matches(&self.resource, target.map(|t| t.resource.as_str()))
            && field_matches(&self.namespace, target.and_then(|t| t.namespace.as_deref()))
            && field_matches(&self.name, target.and_then(|t| t.name.as_deref()))
            && field_matches(
                &self.subresource,
                target.and_then(|t| t.subresource.as_deref()),
            )
            && field_matches(&self.user, request.user.as_deref())
            && (!self.all_namespaces || target.is_some_and(|t| t.namespace.is_none()))
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Every request the server received, in arrival order.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    /// A copy of every record.
    pub fn all(&self) -> Vec<RequestRecord> {
        lock(&self.records).clone()
    }

    /// A copy of the records the matcher selects.
    pub fn matching(&self, matcher: &RequestMatcher) -> Vec<RequestRecord> {
        lock(&self.records)
            .iter()
            .filter(|record| matcher.matches(record))
            .cloned()
            .collect()
    }

    /// How many records the matcher selects.
    pub fn count(&self, matcher: &RequestMatcher) -> usize {
        lock(&self.records)
            .iter()
            .filter(|record| matcher.matches(record))
            .count()
    }

    /// Every RBAC rule that allowed a request so far (each once): with the rules of a role,
    /// which of them the requests needed.
    pub fn allowing_rules(&self) -> BTreeSet<AllowingRule> {
        lock(&self.records)
            .iter()
            .filter_map(|record| record.decision.as_ref()?.rule().cloned())
            .collect()
    }

    /// Forgets every record so far.
    pub fn clear(&self) {
        lock(&self.records).clear();
    }

    pub(crate) fn push(&self, record: RequestRecord) -> u64 {
        let id = record.id;
        lock(&self.records).push(record);
        id
    }

    pub(crate) fn set_status(&self, id: u64, status: u16) {
        if let Some(record) = lock(&self.records)
            .iter_mut()
            .rev()
            .find(|record| record.id == id)
        {
            record.status = Some(status);
        }
    }
}

/// An answer the server gives instead of serving a request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InjectedAnswer {
    pub(crate) error: ApiError,
    pub(crate) retry_after_seconds: Option<u32>,
    /// Given only once the faults are cleared: until then the request has no answer.
    pub(crate) hang: bool,
}

#[derive(Debug)]
struct FaultRule {
    matcher: RequestMatcher,
    remaining: usize,
    answer: InjectedAnswer,
}

#[derive(Debug, Default)]
struct FaultState {
    latency: Duration,
    rules: Vec<FaultRule>,
    drop_watches_after_events: Option<usize>,
}

/// Faults to inject, changed at run time from the test.
///
/// Rules are tried in the order they were added; the first one with answers left that selects a
/// request answers it.
#[derive(Debug)]
pub struct Faults {
    state: Mutex<FaultState>,
    /// Bumped to close every open watch stream.
    watch_drops: watch::Sender<u64>,
    /// Bumped by [`Faults::clear`] to answer the requests left without one.
    releases: watch::Sender<u64>,
}

impl Default for Faults {
    fn default() -> Self {
        Self {
            state: Mutex::default(),
            watch_drops: watch::channel(0).0,
            releases: watch::channel(0).0,
        }
    }
}

impl Faults {
    /// Delays every request by `latency` before it is served (zero turns it off).
    pub fn set_latency(&self, latency: Duration) {
        lock(&self.state).latency = latency;
    }

    /// Answers the next `count` requests the matcher selects with HTTP `code` (a 5xx, say) and
    /// a `Status` whose reason Kubernetes would give that code.
    pub fn fail_next(&self, count: usize, code: u16, matcher: RequestMatcher) {
        self.add_rule(
            count,
            matcher,
            InjectedAnswer {
                error: ApiError::with_code(code, format!("injected fault: HTTP {code}")),
                retry_after_seconds: None,
                hang: false,
            },
        );
    }

    /// Gives no answer to the next `count` requests the matcher selects, as an apiserver
    /// (or the network to it) that has stopped answering: each stays open until its client
    /// gives up, or until [`Faults::clear`], which answers it 504 Timeout as kube-apiserver's
    /// request timeout filter would have (`k8s.io/apiserver/pkg/server/filters/timeout.go`).
    pub fn hang_next(&self, count: usize, matcher: RequestMatcher) {
        self.add_rule(
            count,
            matcher,
            InjectedAnswer {
                error: ApiError::with_code(
                    504,
                    "request did not complete within the allotted timeout",
                ),
                retry_after_seconds: None,
                hang: true,
            },
        );
    }

    /// Answers the next `count` requests the matcher selects with 429 TooManyRequests and a
    /// `Retry-After: retry_after_seconds` header, as API priority and fairness does.
    pub fn throttle_next(&self, count: usize, retry_after_seconds: u32, matcher: RequestMatcher) {
        self.add_rule(
            count,
            matcher,
            InjectedAnswer {
                error: ApiError::too_many_requests(retry_after_seconds),
                retry_after_seconds: Some(retry_after_seconds),
                hang: false,
            },
        );
    }

    fn add_rule(&self, count: usize, matcher: RequestMatcher, answer: InjectedAnswer) {
        if count > 0 {
            lock(&self.state).rules.push(FaultRule {
                matcher,
                remaining: count,
                answer,
            });
        }
    }

    /// Closes every open watch stream now, as an apiserver does when it restarts or times a
    /// watch out; clients resume from their last resourceVersion.
    pub fn drop_watches(&self) {
        self.watch_drops.send_modify(|drops| *drops += 1);
    }

    /// Closes every open watch stream once `events` more object events (ADDED, MODIFIED,
    /// DELETED; not bookmarks) have been sent, counted over all streams. It fires once; zero
    /// closes them now.
    pub fn drop_watches_after_events(&self, events: usize) {
        if events == 0 {
            lock(&self.state).drop_watches_after_events = None;
            self.drop_watches();
        } else {
            lock(&self.state).drop_watches_after_events = Some(events);
        }
    }

    /// Removes every fault: no latency, no pending answers, no pending watch drop; the
    /// requests left without an answer ([`Faults::hang_next`]) are answered now.
    pub fn clear(&self) {
        *lock(&self.state) = FaultState::default();
        self.releases.send_modify(|releases| *releases += 1);
    }

    /// Changes at each [`Faults::clear`] from now on.
    pub(crate) fn subscribe_releases(&self) -> watch::Receiver<u64> {
        self.releases.subscribe()
    }

    pub(crate) fn latency(&self) -> Duration {
        lock(&self.state).latency
    }

    /// The injected answer for this request, if a rule selects it (using up one answer).
    pub(crate) fn take(&self, request: &RequestRecord) -> Option<InjectedAnswer> {
        let mut state = lock(&self.state);
        let index = state
            .rules
            .iter()
            .position(|rule| rule.matcher.matches(request))?;
        let rule = state.rules.get_mut(index)?;
        rule.remaining -= 1;
        let answer = rule.answer.clone();
        if rule.remaining == 0 {
            state.rules.remove(index);
        }
        Some(answer)
    }

    pub(crate) fn subscribe_watch_drops(&self) -> watch::Receiver<u64> {
        self.watch_drops.subscribe()
    }

    /// Counts one sent watch event toward a pending `drop_watches_after_events`.
    pub(crate) fn watch_event_sent(&self) {
        let mut state = lock(&self.state);
        if let Some(remaining) = state.drop_watches_after_events.as_mut() {
            *remaining = remaining.saturating_sub(1);
            if *remaining == 0 {
                state.drop_watches_after_events = None;
                drop(state);
                self.drop_watches();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patch_of(name: &str) -> RequestRecord {
        RequestRecord::new(
            "PATCH".to_owned(),
            format!(
                "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/{name}"
            ),
            String::new(),
            Some("application/merge-patch+json".to_owned()),
            "{}".to_owned(),
            Some(Verb::Patch),
            Some(RequestTarget {
                group: "source.toolkit.fluxcd.io".to_owned(),
                version: "v1".to_owned(),
                resource: "gitrepositories".to_owned(),
                namespace: Some("flux-system".to_owned()),
                name: Some(name.to_owned()),
                subresource: None,
            }),
        )
    }

    #[test]
    fn matcher_selects_by_verb_and_target() {
        let matcher = RequestMatcher::any()
            .verb(Verb::Patch)
            .resource("gitrepositories")
            .name("a");
        assert!(matcher.matches(&patch_of("a")));
        assert!(!matcher.matches(&patch_of("b")));
        assert!(
            !RequestMatcher::any()
                .verb(Verb::Get)
                .matches(&patch_of("a"))
        );
        assert!(
            !RequestMatcher::any()
                .subresource("status")
                .matches(&patch_of("a"))
        );
        assert!(
            !RequestMatcher::any()
                .all_namespaces()
                .matches(&patch_of("a"))
        );
        let mut list = patch_of("a");
        list.target = list.target.map(|target| RequestTarget {
            namespace: None,
            name: None,
            ..target
        });
        assert!(RequestMatcher::any().all_namespaces().matches(&list));
    }

    #[test]
    fn rules_answer_the_given_number_of_requests() {
        let faults = Faults::default();
        faults.fail_next(2, 503, RequestMatcher::any().name("a"));
        assert_eq!(faults.take(&patch_of("b")), None);
        let answer = faults.take(&patch_of("a"));
        assert_eq!(answer.map(|a| a.error.reason), Some("ServiceUnavailable"));
        assert!(faults.take(&patch_of("a")).is_some());
        assert_eq!(faults.take(&patch_of("a")), None);
    }

    #[test]
    fn unanswered_requests_are_answered_504_when_cleared() {
        let faults = Faults::default();
        let releases = faults.subscribe_releases();
        faults.hang_next(1, RequestMatcher::any().name("a"));
        let answer = faults.take(&patch_of("a"));
        assert_eq!(
            answer.map(|a| (a.hang, a.error.code, a.error.reason)),
            Some((true, 504, "Timeout"))
        );
        assert_eq!(faults.take(&patch_of("a")), None);
        assert!(!releases.has_changed().unwrap_or(true));
        faults.clear();
        assert!(releases.has_changed().unwrap_or(false));
    }

    #[test]
    fn watch_drop_fires_after_the_counted_events() {
        let faults = Faults::default();
        let drops = faults.subscribe_watch_drops();
        faults.drop_watches_after_events(2);
        faults.watch_event_sent();
        assert!(!drops.has_changed().unwrap_or(true));
        faults.watch_event_sent();
        assert!(drops.has_changed().unwrap_or(false));
    }

    #[test]
    fn log_counts_and_records_status() {
        let log = RequestLog::default();
        let id = log.push(patch_of("a"));
        log.push(patch_of("b"));
        log.set_status(id, 200);
        let matcher = RequestMatcher::any().name("a");
        assert_eq!(log.count(&matcher), 1);
        assert_eq!(log.matching(&matcher)[0].status, Some(200));
        log.clear();
        assert!(log.all().is_empty());
    }
}
