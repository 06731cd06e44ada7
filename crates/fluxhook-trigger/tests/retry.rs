//! The bounded retry of the patch client, against a test API server that
//! answers as kube-apiserver does (503, 504, and 429 with `Retry-After`
//! from priority and fairness).

#![allow(clippy::unwrap_used, clippy::panic)]

use std::time::Duration;

use fluxhook_test_apiserver::{RequestMatcher, TestApiServer, Verb, fixtures};
use fluxhook_trigger::{BoundedRetry, ObjectRef, Trigger};
use serde_json::json;

/// A server with GitRepository `flux-system/podinfo`, and a trigger whose
/// client retries as `retry` says.
async fn cluster(retry: BoundedRetry) -> (TestApiServer, Trigger) {
    let server = TestApiServer::start_flux(&["flux-system"]).await.unwrap();
    server
        .create(fixtures::git_repository(
            "flux-system",
            "podinfo",
            json!({}),
        ))
        .unwrap();
    let config = server.kube_config().await.unwrap();
    let client = kube::client::ClientBuilder::try_from(BoundedRetry::client_config(config))
        .unwrap()
        .with_layer(&retry.layer())
        .build();
    (server, Trigger::new(client))
}

fn patches() -> RequestMatcher {
    RequestMatcher::any()
        .verb(Verb::Patch)
        .resource("gitrepositories")
}

fn podinfo() -> ObjectRef {
    ObjectRef::new("GitRepository", "flux-system", "podinfo")
}

/// What the API server answered each patch.
fn answers(server: &TestApiServer) -> Vec<Option<u16>> {
    server
        .requests()
        .matching(&patches())
        .into_iter()
        .map(|record| record.status)
        .collect()
}

/// Short waits, so that the tests do not wait long; the bound on the total
/// wait is what is tested, never the time taken.
fn quick() -> BoundedRetry {
    BoundedRetry::new(3, Duration::from_millis(1), Duration::from_secs(30))
}

#[tokio::test]
async fn answers_asking_again_are_sent_again() {
    for code in [503, 504] {
        let (server, trigger) = cluster(quick()).await;
        server.faults().fail_next(2, code, patches());
        trigger.request_reconcile(&podinfo()).await.unwrap();
        assert_eq!(answers(&server), [Some(code), Some(code), Some(200)]);
    }

    let (server, trigger) = cluster(quick()).await;
    server.faults().throttle_next(1, 0, patches());
    trigger.request_reconcile(&podinfo()).await.unwrap();
    assert_eq!(answers(&server), [Some(429), Some(200)]);
}

#[tokio::test]
async fn the_retries_run_out_and_the_last_answer_stands() {
    let (server, trigger) = cluster(quick()).await;
    server.faults().fail_next(usize::MAX, 503, patches());
    let error = trigger.request_reconcile(&podinfo()).await.unwrap_err();
    assert_eq!(error.status().map(|status| status.code), Some(503));
    assert_eq!(answers(&server), [Some(503); 4], "one patch, three retries");
}

#[tokio::test]
async fn a_retry_after_past_the_bound_is_not_waited() {
    let retry = BoundedRetry::new(3, Duration::from_millis(1), Duration::from_secs(5));
    let (server, trigger) = cluster(retry).await;
    server.faults().throttle_next(1, 3600, patches());
    let error = trigger.request_reconcile(&podinfo()).await.unwrap_err();
    assert_eq!(error.status().map(|status| status.code), Some(429));
    assert_eq!(answers(&server), [Some(429)], "no hour-long wait");
}

#[tokio::test]
async fn other_answers_are_not_sent_again() {
    for code in [400, 403, 404, 409, 422, 500, 502] {
        let (server, trigger) = cluster(quick()).await;
        server.faults().fail_next(1, code, patches());
        let error = trigger.request_reconcile(&podinfo()).await.unwrap_err();
        assert_eq!(error.status().map(|status| status.code), Some(code));
        assert_eq!(answers(&server), [Some(code)], "{code}");
    }
}

#[tokio::test]
async fn never_sends_each_request_once() {
    let (server, trigger) = cluster(BoundedRetry::never()).await;
    server.faults().fail_next(1, 503, patches());
    let error = trigger.request_reconcile(&podinfo()).await.unwrap_err();
    assert_eq!(error.status().map(|status| status.code), Some(503));
    assert_eq!(answers(&server), [Some(503)]);
}

/// How long a test waits for what must end by itself: a hang guard, never a
/// speed check.
const HANG_GUARD: Duration = Duration::from_secs(120);

#[tokio::test]
async fn a_patch_without_an_answer_fails_at_the_deadline_and_frees_the_object() {
    let (server, trigger) = cluster(quick().deadline(Duration::from_millis(200))).await;
    // Not answered until the faults are cleared, which this test never does.
    server.faults().hang_next(1, patches());
    let first = tokio::time::timeout(HANG_GUARD, trigger.request_reconcile(&podinfo()))
        .await
        .expect("the patch without an answer never ended");
    let error = first.unwrap_err();
    assert!(error.status().is_none(), "no API status: {error}");
    assert!(
        error.to_string().contains("did not answer within 200ms"),
        "{error}"
    );
    // The object's next request is not queued behind the hung patch.
    let second = tokio::time::timeout(HANG_GUARD, trigger.request_reconcile(&podinfo()))
        .await
        .expect("the next request waited for the hung patch");
    second.unwrap();
    assert_eq!(answers(&server).last(), Some(&Some(200)));
}

#[tokio::test]
async fn the_deadline_covers_the_retries() {
    let (server, trigger) = cluster(
        BoundedRetry::new(3, Duration::from_millis(1), Duration::from_secs(30))
            .deadline(Duration::from_millis(300)),
    )
    .await;
    // Answered 503 at once, then not at all: the retry waits in vain.
    server.faults().fail_next(1, 503, patches());
    server.faults().hang_next(1, patches());
    let result = tokio::time::timeout(HANG_GUARD, trigger.request_reconcile(&podinfo()))
        .await
        .expect("the retried patch never ended");
    let error = result.unwrap_err();
    assert!(error.status().is_none(), "{error}");
    assert_eq!(
        server.requests().count(&patches()),
        2,
        "one retry, then the deadline"
    );
}
