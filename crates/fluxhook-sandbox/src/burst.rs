//! A burst of webhook deliveries while the API server fails and the receiver restarts, and
//! the check of what every delivery was answered against the API server's patch log.
//!
//! What a Git host needs from a receiver under faults (issue 12, "Faults under load"):
//!
//! - a delivery answered 200 was acted on: for each object its Receiver selects, a patch
//!   that **began after the delivery was sent** and **succeeded before it was answered**
//!   (a patch already under way when the push happened may have read the old commit's
//!   state, and a 200 answered before the patch succeeded promises what may never
//!   happen);
//! - every other answer is a 5xx, which the host records as a failed delivery to redeliver
//!   (a 4xx says the delivery itself was wrong);
//! - a delivery gets no answer only while the receiver restarts (its connection refused or
//!   closed), which the host also records as failed;
//! - once the faults stop, every Receiver answers 200 again without a restart.
//!
//! [`run`] drives one such burst on a [`Sandbox`] and returns a [`Report`]; `cargo xtask
//! faults` and an end-to-end test of the binary both use it. The API server's side is read
//! from its [`RequestLog`], whose [`RequestLog::mark`] orders the deliveries' sending and
//! answers with the patches' receipt and answer. The delivery's own arrival at the receiver
//! cannot be seen from outside, so "began after the delivery" is checked from when it was
//! sent, a few microseconds earlier on loopback.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use fluxhook_test_apiserver::{RequestLog, RequestMatcher, RequestRecord, Verb};
use http::HeaderMap;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{DEADLINE, Sandbox, SandboxError};

/// An object a delivery must have patched to be answered 200.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Patched {
    /// Plural resource name, such as `gitrepositories`.
    pub resource: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for Patched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}/{}", self.resource, self.namespace, self.name)
    }
}

/// Where deliveries go: a Receiver's webhook path, a delivery it accepts, and every object
/// it selects.
#[derive(Debug, Clone)]
pub struct Target {
    /// `/hook/<digest>`.
    pub path: String,
    /// The delivery's headers (its signature, if the Receiver checks one).
    pub headers: HeaderMap,
    /// The delivery's body.
    pub body: Vec<u8>,
    /// What the Receiver selects: each must be patched for a 200.
    pub objects: Vec<Patched>,
}

/// What a delivery got.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// An HTTP answer.
    Status(u16),
    /// The connection was refused: nothing listened.
    Refused,
    /// The request was sent, or being sent, and the connection closed without an answer.
    Lost,
}

/// One delivery, as its sender saw it.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// Index into the targets.
    pub target: usize,
    /// [`RequestLog::mark`] taken just before it was sent.
    pub sent: u64,
    /// [`RequestLog::mark`] taken just after its answer (or failure) came.
    pub done: u64,
    /// What it got.
    pub answer: Answer,
    /// How long the sender waited.
    pub waited: Duration,
    /// Sent after the faults stopped, to see the receiver recover.
    pub recovery: bool,
}

/// A delivery whose answer breaks the rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Index into [`Report::deliveries`].
    pub delivery: usize,
    /// What is wrong with it.
    pub problem: String,
}

/// The [`RequestLog::mark`]s around a restart: from just before SIGTERM to just after the
/// new process is ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Before SIGTERM.
    pub from: u64,
    /// After `/readyz` answered 200.
    pub to: u64,
}

impl Window {
    fn overlaps(&self, delivery: &Delivery) -> bool {
        delivery.sent < self.to && delivery.done > self.from
    }
}

/// Checks every delivery against the API server's requests (see the module's rules).
///
/// ```
/// use fluxhook_sandbox::burst::{Answer, Delivery, Patched, Target, check};
///
/// let target = Target {
///     path: "/hook/x".into(),
///     headers: Default::default(),
///     body: Vec::new(),
///     objects: vec![Patched {
///         resource: "gitrepositories".into(),
///         namespace: "flux-system".into(),
///         name: "app".into(),
///     }],
/// };
/// // Answered 200 with no patch at all.
/// let delivery = Delivery {
///     target: 0,
///     sent: 1,
///     done: 2,
///     answer: Answer::Status(200),
///     waited: Default::default(),
///     recovery: false,
/// };
/// let violations = check(&[target], &[delivery], &[], &[]);
/// assert_eq!(violations.len(), 1);
/// assert!(violations[0].problem.contains("gitrepositories flux-system/app"));
/// ```
pub fn check(
    targets: &[Target],
    deliveries: &[Delivery],
    requests: &[RequestRecord],
    restarts: &[Window],
) -> Vec<Violation> {
    let mut violations = Vec::new();
    let patches: Vec<&RequestRecord> = requests
        .iter()
        .filter(|record| record.verb == Some(Verb::Patch))
        .collect();
    for (index, delivery) in deliveries.iter().enumerate() {
        let mut violation = |problem: String| {
            violations.push(Violation {
                delivery: index,
                problem,
            });
        };
        let Some(target) = targets.get(delivery.target) else {
            violation(format!(
                "went to target {}, which is not one",
                delivery.target
            ));
            continue;
        };
        match delivery.answer {
            Answer::Status(200) => {
                for object in &target.objects {
                    if !patches.iter().any(|patch| fits(patch, object, delivery)) {
                        violation(format!(
                            "{} answered 200, but no patch of {object} began after it was \
                             sent and succeeded before it was answered",
                            target.path
                        ));
                    }
                }
            }
            Answer::Status(code) if (500..600).contains(&code) => {}
            Answer::Status(code) => violation(format!(
                "{} answered {code}: a failure must be a 5xx, for the host to deliver again",
                target.path
            )),
            Answer::Refused | Answer::Lost
                if restarts.iter().any(|window| window.overlaps(delivery)) => {}
            answer => violation(format!(
                "{} got no answer ({answer:?}) while the receiver was not restarting",
                target.path
            )),
        }
    }
    violations
}

/// Whether `patch` is one of `object` that began after `delivery` was sent and succeeded
/// before it was answered.
fn fits(patch: &RequestRecord, object: &Patched, delivery: &Delivery) -> bool {
    let Some(target) = &patch.target else {
        return false;
    };
    target.resource == object.resource
        && target.namespace.as_deref() == Some(object.namespace.as_str())
        && target.name.as_deref() == Some(object.name.as_str())
        && target.subresource.is_none()
        && patch
            .status
            .is_some_and(|status| (200..300).contains(&status))
        && patch.received > delivery.sent
        && patch
            .answered
            .is_some_and(|answered| answered < delivery.done)
}

/// The faults of a burst.
#[derive(Debug, Clone)]
pub struct Plan {
    /// Concurrent senders.
    pub clients: usize,
    /// Deliveries each sender makes, one after the other.
    pub per_client: usize,
    /// Seeds the random choice of the requests that fail.
    pub seed: u64,
    /// The chance that a request for the selected objects (their patch, list or read) is
    /// answered with each of these statuses (429 with `Retry-After: 1`, as kube-apiserver
    /// sheds load).
    pub statuses: Vec<(u16, f64)>,
    /// The chance that such a request gets no answer until the faults stop.
    pub hang: f64,
    /// Latency added to every API request during the burst.
    pub latency: Duration,
    /// Every watch stream is closed after each of these fractions of the deliveries have
    /// been answered.
    pub drop_watches_at: Vec<f64>,
    /// The receiver is restarted after this fraction of the deliveries have been answered.
    pub restart_at: Option<f64>,
    /// After the burst, still under the faults: this many pairs of deliveries to one
    /// Receiver, the second sent once the first one's patch has reached the API server, so
    /// that it arrives while that patch is in flight (its answer must wait for a patch that
    /// begins after it).
    pub overlapping: usize,
}

impl Plan {
    /// Every kind of fault: 500, 502, 503, 504 and 429 each on a few percent of the
    /// requests for the selected objects, a hang on one in a hundred, 5 ms of latency on
    /// every request, watches dropped at a quarter and three quarters of the burst, a
    /// restart half way, and 20 overlapping pairs after it.
    pub fn every_fault(clients: usize, per_client: usize, seed: u64) -> Self {
        Self {
            clients,
            per_client,
            seed,
            statuses: vec![
                (500, 0.05),
                (502, 0.03),
                (503, 0.08),
                (504, 0.03),
                (429, 0.08),
            ],
            hang: 0.01,
            latency: Duration::from_millis(5),
            drop_watches_at: vec![0.25, 0.75],
            restart_at: Some(0.5),
            overlapping: 20,
        }
    }

    fn total(&self) -> usize {
        self.clients * self.per_client
    }
}

/// What a burst did.
#[derive(Debug, Clone)]
pub struct Report {
    /// The burst's deliveries, then the recovery's.
    pub deliveries: Vec<Delivery>,
    /// What breaks the rules (empty when all is well).
    pub violations: Vec<Violation>,
    /// The restarts.
    pub restarts: Vec<Window>,
    /// From the moment the faults stopped until every Receiver answered a delivery 200 (a
    /// round of one delivery each, in turn).
    pub recovery: Duration,
    /// The API requests of the burst and the recovery, by verb and answer.
    pub api_requests: BTreeMap<(String, Option<u16>), usize>,
    /// The senders of the burst.
    pub clients: usize,
}

impl Report {
    /// How many deliveries of the burst (not of the recovery) got `answer`.
    pub fn count(&self, answer: impl Fn(Answer) -> bool) -> usize {
        self.deliveries
            .iter()
            .filter(|delivery| !delivery.recovery && answer(delivery.answer))
            .count()
    }
}

/// The `q` quantile of sorted durations (nearest rank); zero for none.
fn percentile(sorted: &[Duration], q: f64) -> Duration {
    let at = ((sorted.len().saturating_sub(1)) as f64 * q).round() as usize;
    sorted.get(at).copied().unwrap_or_default()
}

impl Report {
    /// The figures, one per line: deliveries, answers, violations (each, up to 20), how
    /// long the senders waited, restarts, the recovery time, the API requests.
    pub fn summary(&self) -> String {
        let report = self;
        use std::fmt::Write as _;
        let mut out = String::new();
        let burst: Vec<_> = report.deliveries.iter().filter(|d| !d.recovery).collect();
        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
        for delivery in &burst {
            let key = match delivery.answer {
                Answer::Status(code) => code.to_string(),
                other => format!("{other:?}").to_lowercase(),
            };
            *answers.entry(key).or_default() += 1;
        }
        let ok = report.count(|a| a == Answer::Status(200));
        let failed = report.count(|a| matches!(a, Answer::Status(500..=599)));
        let unanswered = report.count(|a| matches!(a, Answer::Refused | Answer::Lost));
        let mut waited: Vec<Duration> = burst.iter().map(|d| d.waited).collect();
        waited.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let _ = writeln!(
            out,
            "deliveries: {} in the burst ({} senders), {} in the recovery",
            burst.len(),
            self.clients,
            report.deliveries.len() - burst.len()
        );
        let _ = writeln!(
            out,
            "answers: {ok} x 200, {failed} x 5xx, {unanswered} unanswered (during the restart); by answer: {answers:?}"
        );
        let _ = writeln!(out, "violations: {}", report.violations.len());
        for violation in report.violations.iter().take(20) {
            let _ = writeln!(
                out,
                "  delivery {}: {}",
                violation.delivery, violation.problem
            );
        }
        let over_10s = waited
            .iter()
            .filter(|w| **w > Duration::from_secs(10))
            .count();
        let _ = writeln!(
            out,
            "waited: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; over 10 s (GitHub gives up): {over_10s}",
            ms(percentile(&waited, 0.5)),
            ms(percentile(&waited, 0.99)),
            ms(waited.last().copied().unwrap_or_default()),
        );
        let _ = writeln!(out, "restarts: {}", report.restarts.len());
        let _ = writeln!(
            out,
            "recovery after the faults stopped: {:.1} ms (every Receiver answered 200)",
            ms(report.recovery)
        );
        let _ = writeln!(
            out,
            "API requests (verb, answer): {:?}",
            report.api_requests
        );
        out
    }
}

/// Sends the burst `plan` describes to `targets` on the sandbox's receiver, with the faults
/// it describes, then stops the faults and sends a round to each target until all answer
/// 200, and checks every delivery ([`check`]).
///
/// Each wait is for a condition (deliveries answered, the receiver ready), bounded by
/// [`DEADLINE`]; nothing waits on a timer. The faults are cleared at the end, as they were
/// found: none.
pub async fn run(
    sandbox: &mut Sandbox,
    targets: Vec<Target>,
    plan: &Plan,
) -> Result<Report, SandboxError> {
    if targets.is_empty() {
        return Err(SandboxError::Receiver {
            problem: "was given a burst without a target".into(),
            log: String::new(),
        });
    }
    let first = RequestLog::mark();
    inject(sandbox, &targets, plan);
    let targets = Arc::new(targets);
    let answered = Arc::new(AtomicUsize::new(0));
    let (progress, mut progressed) = watch::channel(0usize);
    let (up, up_watch) = watch::channel(true);
    let mut senders = JoinSet::new();
    for client in 0..plan.clients {
        let sender = Sender {
            http: http_client(),
            url: sandbox.urls().receiver().to_owned(),
            targets: Arc::clone(&targets),
            answered: Arc::clone(&answered),
            progress: progress.clone(),
            up: up_watch.clone(),
        };
        let per_client = plan.per_client;
        senders.spawn(async move {
            let mut deliveries = Vec::with_capacity(per_client);
            for round in 0..per_client {
                // Senders go in pairs, so that deliveries for one Receiver
                // often arrive while a patch for it is in flight.
                let target = client / 2 + round;
                deliveries.push(sender.deliver(target, false).await);
            }
            deliveries
        });
    }
    drop(progress);

    // The steps of the plan, each once its share of the deliveries is answered.
    let total = plan.total();
    let mut steps: Vec<(usize, bool)> = plan
        .drop_watches_at
        .iter()
        .map(|at| (share(*at, total), false))
        .chain(plan.restart_at.map(|at| (share(at, total), true)))
        .collect();
    steps.sort_by_key(|(at, _)| *at);
    let mut restarts = Vec::new();
    let started = Instant::now();
    for (at, restart) in steps {
        // The borrow `wait_for` returns would hold the channel's lock: dropped at once.
        let reached = tokio::time::timeout(DEADLINE.saturating_sub(started.elapsed()), async {
            progressed
                .wait_for(|answered| *answered >= at)
                .await
                .is_ok()
        })
        .await;
        if reached.is_err() {
            return Err(stalled(sandbox, &answered, total));
        }
        if restart {
            up.send_replace(false);
            let from = RequestLog::mark();
            let exit = sandbox.restart().await?;
            if !exit.success() {
                return Err(sandbox.receiver_error(format!("exited with {exit} on SIGTERM")));
            }
            restarts.push(Window {
                from,
                to: RequestLog::mark(),
            });
            up.send_replace(true);
        } else {
            sandbox.api().faults().drop_watches();
        }
    }
    let mut deliveries = Vec::with_capacity(total);
    let all = tokio::time::timeout(DEADLINE, async {
        while let Some(sent) = senders.join_next().await {
            deliveries.extend(sent.unwrap_or_default());
        }
    })
    .await;
    if all.is_err() {
        return Err(stalled(sandbox, &answered, total));
    }

    let sender = Arc::new(Sender {
        http: http_client(),
        url: sandbox.urls().receiver().to_owned(),
        targets: Arc::clone(&targets),
        answered: Arc::new(AtomicUsize::new(0)),
        progress: watch::channel(0).0,
        up: up_watch,
    });
    for pair in 0..plan.overlapping {
        let target = pair % targets.len();
        let overlapping = overlap(sandbox, &sender, target).await;
        match overlapping {
            Some(pair) => deliveries.extend(pair),
            None => return Err(stalled(sandbox, &answered, total)),
        }
    }

    // The faults stop: every Receiver answers 200 again, without a restart.
    sandbox.api().faults().clear();
    let cleared = Instant::now();
    let recovery = loop {
        let mut all_accepted = true;
        for target in 0..targets.len() {
            let delivery = sender.deliver(target, true).await;
            all_accepted &= delivery.answer == Answer::Status(200);
            deliveries.push(delivery);
        }
        if all_accepted {
            break cleared.elapsed();
        }
        if cleared.elapsed() > DEADLINE {
            return Err(sandbox.receiver_error(format!(
                "did not answer every Receiver 200 within {DEADLINE:?} of the faults stopping"
            )));
        }
        // The receiver must come back by itself; a round every 50 ms is a poll.
        tokio::time::sleep(Duration::from_millis(50)).await;
    };

    let requests: Vec<RequestRecord> = sandbox
        .api()
        .requests()
        .all()
        .into_iter()
        .filter(|record| record.received > first)
        .collect();
    let violations = check(&targets, &deliveries, &requests, &restarts);
    let mut api_requests = BTreeMap::new();
    for record in &requests {
        let verb = record.verb.map_or("other", Verb::as_str).to_owned();
        *api_requests.entry((verb, record.status)).or_default() += 1;
    }
    Ok(Report {
        deliveries,
        violations,
        restarts,
        recovery,
        api_requests,
        clients: plan.clients,
    })
}

/// Two deliveries to `target`, the second sent once a patch of its first object has reached
/// the API server after the first was sent (or once the first is answered, if none does);
/// `None` if the first never ends.
async fn overlap(sandbox: &Sandbox, sender: &Arc<Sender>, target: usize) -> Option<[Delivery; 2]> {
    let object = sender.targets.get(target)?.objects.first()?.clone();
    let patches = RequestMatcher::any()
        .verb(Verb::Patch)
        .resource(&object.resource)
        .namespace(&object.namespace)
        .name(&object.name);
    let before = RequestLog::mark();
    let first = tokio::spawn({
        let sender = Arc::clone(sender);
        async move { sender.deliver(target, false).await }
    });
    let started = Instant::now();
    // A poll of the log: the patch is in flight from when it is logged.
    while !first.is_finished()
        && !sandbox
            .api()
            .requests()
            .matching(&patches)
            .iter()
            .any(|patch| patch.received > before)
    {
        if started.elapsed() > DEADLINE {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let second = sender.deliver(target, false).await;
    let first = tokio::time::timeout(DEADLINE, first).await.ok()?.ok()?;
    Some([first, second])
}

/// The faults of `plan` on the requests for the targets' objects; latency on every request.
fn inject(sandbox: &Sandbox, targets: &[Target], plan: &Plan) {
    let faults = sandbox.api().faults();
    faults.seed(plan.seed);
    let mut resources: Vec<&str> = targets
        .iter()
        .flat_map(|target| target.objects.iter().map(|object| object.resource.as_str()))
        .collect();
    resources.sort_unstable();
    resources.dedup();
    for resource in resources {
        for verb in [Verb::Patch, Verb::List, Verb::Get] {
            let matcher = RequestMatcher::any().verb(verb).resource(resource);
            for (code, fraction) in &plan.statuses {
                match code {
                    429 => faults.throttle_fraction(*fraction, 1, matcher.clone()),
                    code => faults.fail_fraction(*fraction, *code, matcher.clone()),
                }
            }
            faults.hang_fraction(plan.hang, matcher);
        }
    }
    faults.set_latency(plan.latency);
}

/// How many of `total` deliveries `fraction` of them is, at least one.
fn share(fraction: f64, total: usize) -> usize {
    // Small counts: the product is exact enough, and clamped.
    ((fraction.clamp(0.0, 1.0) * total as f64).round() as usize).clamp(1, total.max(1))
}

fn stalled(sandbox: &Sandbox, answered: &AtomicUsize, total: usize) -> SandboxError {
    sandbox.receiver_error(format!(
        "left deliveries unanswered: {} of {total} answered within {DEADLINE:?}",
        answered.load(Ordering::SeqCst)
    ))
}

/// A new connection for each delivery, as GitHub makes them; no timeout of its own (the
/// report says how long each waited).
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_default()
}

/// One sender of deliveries.
struct Sender {
    http: reqwest::Client,
    url: String,
    targets: Arc<Vec<Target>>,
    answered: Arc<AtomicUsize>,
    progress: watch::Sender<usize>,
    /// False while the receiver restarts: a sender refused then waits for it, as a host
    /// delivers again later.
    up: watch::Receiver<bool>,
}

impl Sender {
    /// Sends a delivery to target `target` (modulo their number).
    async fn deliver(&self, target: usize, recovery: bool) -> Delivery {
        // Refused while the receiver restarts, the sender waits for it here. A closed
        // channel: the burst is over, nothing restarts any more.
        let _ = self.up.clone().wait_for(|up| *up).await.is_ok();
        let target = target % self.targets.len().max(1);
        let Some(to) = self.targets.get(target) else {
            return Delivery {
                target,
                sent: 0,
                done: 0,
                answer: Answer::Lost,
                waited: Duration::ZERO,
                recovery,
            };
        };
        let started = Instant::now();
        let sent = RequestLog::mark();
        let result = self
            .http
            .post(format!("{}{}", self.url, to.path))
            .headers(to.headers.clone())
            .body(to.body.clone())
            .send()
            .await;
        let answer = match result {
            Ok(response) => {
                let status = response.status().as_u16();
                // The body is read so that the answer is whole.
                match response.bytes().await {
                    Ok(_) => Answer::Status(status),
                    Err(_) => Answer::Lost,
                }
            }
            Err(error) if error.is_connect() => Answer::Refused,
            Err(_) => Answer::Lost,
        };
        let done = RequestLog::mark();
        let count = self.answered.fetch_add(1, Ordering::SeqCst) + 1;
        self.progress.send_replace(count);
        Delivery {
            target,
            sent,
            done,
            answer,
            waited: started.elapsed(),
            recovery,
        }
    }
}
