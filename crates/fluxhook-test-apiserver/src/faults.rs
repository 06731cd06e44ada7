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
    /// When it was received, as a point of [`RequestLog::mark`]'s order: taken as it is
    /// logged, before any injected latency or fault and before it is served.
    pub received: u64,
    /// When it was answered, in the same order: taken once its answer is ready, before
    /// the answer is sent; `None` while the request is in flight, or when its client gave
    /// up first.
    pub answered: Option<u64>,
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
            received: 0,
            answered: None,
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

/// [`RequestMatcher`]'s builder methods that keep only the requests whose `field` is the
/// string given: one each, written once.
macro_rules! string_filters {
    ($($(#[$doc:meta])* $field:ident;)*) => {$(
        $(#[$doc])*
        #[must_use]
        pub fn $field(mut self, $field: &str) -> Self {
            self.$field = Some($field.to_owned());
            self
        }
    )*};
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

    string_filters! {
        /// Only requests for this plural resource name (`gitrepositories`).
        resource;
        /// Only requests in this namespace.
        namespace;
        /// Only requests for the object with this name.
        name;
        /// Only requests for this subresource (`status`).
        subresource;
        /// Only requests authenticated as this user (`system:serviceaccount:<ns>:<name>`).
        user;
    }

    /// Only requests across all namespaces (no namespace in the path), such as a
    /// controller's list and watch of a namespaced kind in every namespace.
    #[must_use]
    pub fn all_namespaces(mut self) -> Self {
        self.all_namespaces = true;
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

/// The order of [`RequestLog::mark`], shared by every server of the process so that a
/// test's marks and any server's records compare.
static ORDER: AtomicU64 = AtomicU64::new(1);

/// Every request the server received, in arrival order.
#[derive(Debug, Default)]
pub struct RequestLog {
    records: Mutex<Vec<RequestRecord>>,
}

impl RequestLog {
    /// A point in the order of events of every test API server of this process: each
    /// [`RequestRecord::received`] and [`RequestRecord::answered`] taken after this call is
    /// larger, each taken before it smaller.
    ///
    /// A test marks what it does around the requests it causes, e.g. a webhook delivery:
    /// marked before it is sent and after its answer came, every API request it caused
    /// lies between the two marks.
    ///
    /// ```
    /// use fluxhook_test_apiserver::RequestLog;
    ///
    /// let before = RequestLog::mark();
    /// assert!(RequestLog::mark() > before);
    /// ```
    pub fn mark() -> u64 {
        ORDER.fetch_add(1, Ordering::SeqCst)
    }

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

    pub(crate) fn push(&self, mut record: RequestRecord) -> u64 {
        let id = record.id;
        let mut records = lock(&self.records);
        // Taken under the lock, so that the log is in the order of `received`.
        record.received = Self::mark();
        records.push(record);
        id
    }

    pub(crate) fn set_status(&self, id: u64, status: u16) {
        let answered = Self::mark();
        if let Some(record) = lock(&self.records)
            .iter_mut()
            .rev()
            .find(|record| record.id == id)
        {
            record.status = Some(status);
            record.answered = Some(answered);
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

impl InjectedAnswer {
    /// HTTP `code` with the `Status` Kubernetes gives it.
    fn failure(code: u16) -> Self {
        Self {
            error: ApiError::with_code(code, format!("injected fault: HTTP {code}")),
            retry_after_seconds: None,
            hang: false,
        }
    }

    /// No answer until the faults are cleared, then 504 Timeout as kube-apiserver's request
    /// timeout filter gives it.
    fn hang() -> Self {
        Self {
            error: ApiError::with_code(504, "request did not complete within the allotted timeout"),
            retry_after_seconds: None,
            hang: true,
        }
    }

    /// 429 TooManyRequests with `Retry-After: retry_after_seconds`.
    fn throttle(retry_after_seconds: u32) -> Self {
        Self {
            error: ApiError::too_many_requests(retry_after_seconds),
            retry_after_seconds: Some(retry_after_seconds),
            hang: false,
        }
    }
}

#[derive(Debug)]
struct FaultRule {
    matcher: RequestMatcher,
    remaining: usize,
    /// The chance that the rule answers a request it selects; `None`: always.
    chance: Option<f64>,
    answer: InjectedAnswer,
}

#[derive(Debug, Default)]
struct FaultState {
    latency: Duration,
    rules: Vec<FaultRule>,
    drop_watches_after_events: Option<usize>,
    /// The state of the generator the `*_fraction` rules draw from ([`Faults::seed`]).
    random: u64,
}

/// The next number of SplitMix64 (Steele, Lea and Flood, 2014), in `[0, 1)`: small, seedable
/// and the same on every platform, which is all a fault schedule needs.
fn next_unit(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    // The top 53 bits, exactly representable.
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Faults to inject, changed at run time from the test.
///
/// Rules are tried in the order they were added; the first one with answers left that selects a
/// request answers it. A rule of a fraction of the requests ([`Faults::fail_fraction`],
/// [`Faults::throttle_fraction`], [`Faults::hang_fraction`]) answers one it selects only when
/// a draw from a generator seeded by [`Faults::seed`] says so, else the next rule is tried:
/// with one seed, the same requests in the same order meet the same faults.
///
/// ```
/// use fluxhook_test_apiserver::{Faults, RequestMatcher, Verb};
///
/// let faults = Faults::default();
/// faults.seed(7);
/// // About one patch in five is refused 500, one in ten throttled as priority and
/// // fairness does, one in twenty not answered until `clear`.
/// let patches = RequestMatcher::any().verb(Verb::Patch);
/// faults.fail_fraction(0.2, 500, patches.clone());
/// faults.throttle_fraction(0.1, 1, patches.clone());
/// faults.hang_fraction(0.05, patches);
/// faults.clear();
/// ```
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
        self.add_rule(count, matcher, InjectedAnswer::failure(code));
    }

    /// Gives no answer to the next `count` requests the matcher selects, as an apiserver
    /// (or the network to it) that has stopped answering: each stays open until its client
    /// gives up, or until [`Faults::clear`], which answers it 504 Timeout as kube-apiserver's
    /// request timeout filter would have (`k8s.io/apiserver/pkg/server/filters/timeout.go`).
    pub fn hang_next(&self, count: usize, matcher: RequestMatcher) {
        self.add_rule(count, matcher, InjectedAnswer::hang());
    }

    /// Answers the next `count` requests the matcher selects with 429 TooManyRequests and a
    /// `Retry-After: retry_after_seconds` header, as API priority and fairness does.
    pub fn throttle_next(&self, count: usize, retry_after_seconds: u32, matcher: RequestMatcher) {
        self.add_rule(
            count,
            matcher,
            InjectedAnswer::throttle(retry_after_seconds),
        );
    }

    fn add_rule(&self, count: usize, matcher: RequestMatcher, answer: InjectedAnswer) {
        if count > 0 {
            lock(&self.state).rules.push(FaultRule {
                matcher,
                remaining: count,
                chance: None,
                answer,
            });
        }
    }

    /// Seeds the generator the `*_fraction` rules draw from (0 until seeded, and again after
    /// [`Faults::clear`]).
    pub fn seed(&self, seed: u64) {
        lock(&self.state).random = seed;
    }

    /// Answers each request the matcher selects with HTTP `code` and the `Status` Kubernetes
    /// gives it, with probability `fraction` (0 to 1), until [`Faults::clear`]: a flaky
    /// apiserver, or the load balancer in front of it.
    pub fn fail_fraction(&self, fraction: f64, code: u16, matcher: RequestMatcher) {
        self.add_fraction_rule(fraction, matcher, InjectedAnswer::failure(code));
    }

    /// Answers each request the matcher selects with probability `fraction` as
    /// [`Faults::throttle_next`] does (429 with `Retry-After`), until [`Faults::clear`]: an
    /// apiserver shedding load. kube-apiserver's max-in-flight and priority and fairness
    /// filters answer 429 with `Retry-After: 1` (`tooManyRequests`,
    /// `k8s.io/apiserver/pkg/server/filters/maxinflight.go`).
    pub fn throttle_fraction(
        &self,
        fraction: f64,
        retry_after_seconds: u32,
        matcher: RequestMatcher,
    ) {
        self.add_fraction_rule(
            fraction,
            matcher,
            InjectedAnswer::throttle(retry_after_seconds),
        );
    }

    /// Gives no answer, with probability `fraction`, to each request the matcher selects, as
    /// [`Faults::hang_next`] does, until [`Faults::clear`] (which answers them 504).
    pub fn hang_fraction(&self, fraction: f64, matcher: RequestMatcher) {
        self.add_fraction_rule(fraction, matcher, InjectedAnswer::hang());
    }

    fn add_fraction_rule(&self, fraction: f64, matcher: RequestMatcher, answer: InjectedAnswer) {
        if fraction > 0.0 {
            lock(&self.state).rules.push(FaultRule {
                matcher,
                remaining: usize::MAX,
                chance: Some(fraction.min(1.0)),
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
        let FaultState { rules, random, .. } = &mut *state;
        let index = rules.iter().position(|rule| {
            rule.matcher.matches(request)
                && rule.chance.is_none_or(|chance| next_unit(random) < chance)
        })?;
        let rule = rules.get_mut(index)?;
        rule.remaining -= 1;
        let answer = rule.answer.clone();
        if rule.remaining == 0 {
            rules.remove(index);
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
    fn fraction_rules_fire_on_about_their_fraction_and_repeat_with_the_seed() {
        let schedule = |seed| {
            let faults = Faults::default();
            faults.seed(seed);
            faults.fail_fraction(0.25, 500, RequestMatcher::any().name("a"));
            faults.throttle_fraction(0.5, 1, RequestMatcher::any().name("a"));
            (0..2000)
                .map(|_| faults.take(&patch_of("a")).map(|answer| answer.error.code))
                .collect::<Vec<_>>()
        };
        let first = schedule(42);
        assert_eq!(first, schedule(42), "one seed, one schedule");
        assert_ne!(first, schedule(43));
        let count = |code| first.iter().filter(|answer| **answer == Some(code)).count();
        // 500 on a quarter; 429 on half of the other three quarters.
        assert!((400..600).contains(&count(500)), "{}", count(500));
        assert!((650..850).contains(&count(429)), "{}", count(429));
        let faults = Faults::default();
        faults.fail_fraction(1.0, 503, RequestMatcher::any().name("a"));
        assert_eq!(faults.take(&patch_of("b")), None, "not selected");
        faults.clear();
        assert_eq!(faults.take(&patch_of("a")), None, "cleared");
    }

    #[test]
    fn log_orders_receipts_and_answers_with_marks() {
        let log = RequestLog::default();
        let before = RequestLog::mark();
        let id = log.push(patch_of("a"));
        let between = RequestLog::mark();
        log.set_status(id, 200);
        let after = RequestLog::mark();
        let record = &log.all()[0];
        assert!(before < record.received && record.received < between);
        let answered = record.answered.unwrap_or_default();
        assert!(between < answered && answered < after);
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
