//! The election against the fake Kubernetes API: one leader at a time, takeover after a
//! release or an expiry, stepping down when renewals fail. Every wait is on a condition,
//! bounded by a generous deadline that only limits a failure.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use fluxhook_leader_election::{ElectionConfig, Elector, Leadership};
use fluxhook_test_apiserver::{RequestMatcher, TestApiServer, Verb};
use futures::StreamExt;
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

const NAMESPACE: &str = "flux-system";
const LEASE: &str = "fluxhook-receiver-leader-election";
const DEADLINE: Duration = Duration::from_secs(60);

async fn server() -> TestApiServer {
    let server = TestApiServer::start().await.unwrap();
    server
        .create(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": NAMESPACE}}))
        .unwrap();
    server
}

async fn client(server: &TestApiServer) -> kube::Client {
    let mut config = server.kube_config().await.unwrap();
    // Failures injected below reach the elector as they are.
    config.default_retry = false;
    kube::Client::try_from(config).unwrap()
}

/// Short durations, so that the tests wait seconds rather than minutes.
fn config(identity: &str) -> ElectionConfig {
    ElectionConfig {
        lease_duration: Duration::from_secs(2),
        renew_deadline: Duration::from_secs(1),
        retry_period: Duration::from_millis(100),
        ..ElectionConfig::new(LEASE, NAMESPACE, identity)
    }
}

/// A running candidate: its handle, and a way to stop it (gracefully or not).
struct Candidate {
    leadership: Leadership,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Candidate {
    async fn start(server: &TestApiServer, config: ElectionConfig) -> Self {
        let (elector, leadership) = Elector::new(client(server).await, config).unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(elector.run(async move {
            let _ = stopped.await;
        }));
        Self {
            leadership,
            stop: Some(stop),
            task,
        }
    }

    /// Shuts down as on SIGTERM (and releases, if configured).
    async fn shut_down(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.task.await.unwrap();
    }

    /// Vanishes without a word, as a process killed with SIGKILL.
    fn kill(self) {
        self.task.abort();
    }
}

async fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let started = tokio::time::Instant::now();
    loop {
        if let Some(found) = check() {
            return found;
        }
        assert!(started.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn within_deadline<F: Future>(what: &str, future: F) -> F::Output {
    tokio::time::timeout(DEADLINE, future)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn lease(server: &TestApiServer) -> Value {
    server
        .get("coordination.k8s.io/v1", "Lease", NAMESPACE, LEASE)
        .unwrap()
}

fn micro_time(value: &Value) -> Timestamp {
    value.as_str().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_candidate_creates_the_lease_and_leads() {
    let server = server().await;
    let candidate = Candidate::start(&server, config("pod-a_1")).await;
    wait_for("leadership", || {
        candidate.leadership.is_leader().then_some(())
    })
    .await;

    let spec = &lease(&server)["spec"];
    assert_eq!(spec["holderIdentity"], "pod-a_1");
    assert_eq!(spec["leaseDurationSeconds"], 2);
    assert_eq!(spec["leaseTransitions"], 0);
    // MicroTime: microseconds, as the Lease API keeps them.
    let renew = spec["renewTime"].as_str().unwrap();
    assert!(renew.ends_with('Z') && renew.contains('.'), "{renew}");
    assert!(micro_time(&spec["acquireTime"]) <= micro_time(&spec["renewTime"]));

    // The holder renews: renewTime moves, acquireTime stays.
    let acquired = spec["acquireTime"].clone();
    let first_renewal = micro_time(&spec["renewTime"]);
    wait_for("a renewal", || {
        (micro_time(&lease(&server)["spec"]["renewTime"]) > first_renewal).then_some(())
    })
    .await;
    assert_eq!(lease(&server)["spec"]["acquireTime"], acquired);
    assert!(candidate.leadership.is_leader());
    candidate.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_leads_and_a_release_hands_over_at_once() {
    let server = server().await;
    let a = Candidate::start(&server, config("pod-a_1")).await;
    wait_for("a to lead", || a.leadership.is_leader().then_some(())).await;
    let b = Candidate::start(&server, config("pod-b_2")).await;
    // b has read the lease and waits for it.
    wait_for("b to read the lease", || {
        let gets = server.requests().count(
            &RequestMatcher::any()
                .verb(Verb::Get)
                .resource("leases")
                .name(LEASE),
        );
        (gets >= 3).then_some(())
    })
    .await;
    assert!(!b.leadership.is_leader());
    assert!(a.leadership.is_leader());

    let mut b_terms = Box::pin(b.leadership.terms());
    let a_handle = a.leadership.clone();
    a.shut_down().await;
    assert!(!a_handle.is_leader(), "a stopped leading before releasing");
    within_deadline("b to lead", b_terms.next()).await.unwrap();
    let spec = &lease(&server)["spec"];
    assert_eq!(spec["holderIdentity"], "pod-b_2");
    assert_eq!(spec["leaseTransitions"], 1);
    assert_eq!(spec["leaseDurationSeconds"], 2);
    b.shut_down().await;

    // Released: no holder, a one-second lease, transitions kept (client-go's tryRelease).
    let spec = &lease(&server)["spec"];
    assert_eq!(spec["holderIdentity"], "");
    assert_eq!(spec["leaseDurationSeconds"], 1);
    assert_eq!(spec["leaseTransitions"], 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_leaders_lease_is_taken_only_once_it_has_expired() {
    let server = server().await;
    let a = Candidate::start(&server, config("pod-a_1")).await;
    wait_for("a to lead", || a.leadership.is_leader().then_some(())).await;
    let b = Candidate::start(&server, config("pod-b_2")).await;
    let mut b_terms = Box::pin(b.leadership.terms());

    a.kill();
    within_deadline("b to lead", b_terms.next()).await.unwrap();

    let spec = &lease(&server)["spec"];
    assert_eq!(spec["holderIdentity"], "pod-b_2");
    assert_eq!(spec["leaseTransitions"], 1);
    // b waited a whole lease duration after the last renewal a wrote (read from the
    // request log, creation included: a request in flight when a was killed may have
    // landed after it).
    let last_renewal = server
        .requests()
        .matching(&RequestMatcher::any().resource("leases"))
        .into_iter()
        .filter(|request| matches!(request.verb, Some(Verb::Create | Verb::Update)))
        .filter(|request| matches!(request.status, Some(200 | 201)))
        .filter_map(|request| serde_json::from_str::<Value>(&request.body).ok())
        .filter(|written| written["spec"]["holderIdentity"] == "pod-a_1")
        .map(|written| micro_time(&written["spec"]["renewTime"]))
        .max()
        .unwrap();
    assert!(
        micro_time(&spec["acquireTime"]) >= last_renewal + Duration::from_secs(2),
        "taken at {} before the lease renewed at {last_renewal} expired",
        spec["acquireTime"],
    );
    b.shut_down().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_cannot_renew_steps_down_then_campaigns_again() {
    let server = server().await;
    let a = Candidate::start(&server, config("pod-a_1")).await;
    let mut terms = Box::pin(a.leadership.terms());
    within_deadline("a to lead", terms.next()).await.unwrap();

    // The API server fails every Lease request: no renewal succeeds.
    let leases = RequestMatcher::any().resource("leases");
    server.faults().fail_next(usize::MAX, 500, leases);
    within_deadline("a to step down", a.leadership.lost()).await;
    assert!(!a.leadership.is_leader());
    assert!(a.leadership.lead(async {}).await.is_err());

    server.faults().clear();
    within_deadline("a to lead again", terms.next())
        .await
        .unwrap();
    assert!(a.leadership.is_leader());
    a.shut_down().await;
}
