use std::time::Duration;

use fluxhook_test_apiserver::{RequestMatcher, Verb};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;

use super::{client, client_with, default_repos, flux_server, repo};

#[tokio::test]
async fn injected_server_errors_are_answered_then_cleared() {
    let server = flux_server().await;
    let client = client(&server).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    server.faults().fail_next(
        2,
        500,
        RequestMatcher::any()
            .verb(Verb::List)
            .resource("configmaps"),
    );
    for _ in 0..2 {
        match maps.list(&Default::default()).await.unwrap_err() {
            kube::Error::Api(status) => assert_eq!(
                (status.code, status.reason.as_str()),
                (500, "InternalError")
            ),
            other => panic!("expected the injected 500, got {other:?}"),
        }
    }
    maps.list(&Default::default()).await.unwrap();
    // A rule only answers what it selects.
    server
        .faults()
        .fail_next(1, 502, RequestMatcher::any().resource("secrets"));
    maps.list(&Default::default()).await.unwrap();
    server.faults().clear();
    let statuses: Vec<Option<u16>> = server
        .requests()
        .all()
        .iter()
        .map(|request| request.status)
        .collect();
    assert_eq!(statuses, [Some(500), Some(500), Some(200), Some(200)]);
}

#[tokio::test]
async fn throttling_answers_429_with_retry_after() {
    let server = flux_server().await;
    let without_retries = client_with(&server, |config| config.default_retry = false).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(without_retries);
    server
        .faults()
        .throttle_next(1, 7, RequestMatcher::any().verb(Verb::Get));
    match maps.get("anything").await.unwrap_err() {
        kube::Error::Api(status) => {
            assert_eq!(
                (status.code, status.reason.as_str()),
                (429, "TooManyRequests")
            );
        }
        other => panic!("expected the injected 429, got {other:?}"),
    }

    // kube's default client retries 429s by itself.
    let retrying = client(&server).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(retrying);
    server
        .faults()
        .throttle_next(2, 0, RequestMatcher::any().verb(Verb::Create));
    let mut map = ConfigMap::default();
    map.metadata.name = Some("eventually".to_owned());
    maps.create(&PostParams::default(), &map).await.unwrap();
    let creates = server
        .requests()
        .matching(&RequestMatcher::any().verb(Verb::Create));
    let statuses: Vec<Option<u16>> = creates.iter().map(|request| request.status).collect();
    assert_eq!(statuses, [Some(429), Some(429), Some(201)]);
}

#[tokio::test]
async fn latency_delays_but_serves() {
    let server = flux_server().await;
    let client = client(&server).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    server.faults().set_latency(Duration::from_millis(20));
    maps.list(&Default::default()).await.unwrap();
    server.faults().set_latency(Duration::ZERO);
}

#[tokio::test]
async fn request_log_counts_patches_per_object() {
    let (server, _, repos) = default_repos().await;
    for name in ["flux-repo", "other"] {
        repos
            .create(&PostParams::default(), &repo(name, "u"))
            .await
            .unwrap();
    }
    let annotate = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "t"}}});
    for name in ["flux-repo", "flux-repo", "other"] {
        repos
            .patch(name, &PatchParams::default(), &Patch::Merge(&annotate))
            .await
            .unwrap();
    }
    let flux_repo_patches = RequestMatcher::any()
        .verb(Verb::Patch)
        .resource("gitrepositories")
        .namespace("default")
        .name("flux-repo");
    assert_eq!(server.requests().count(&flux_repo_patches), 2);
    let patch = &server.requests().matching(&flux_repo_patches)[0];
    assert_eq!(patch.method, "PATCH");
    assert_eq!(
        patch.path,
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories/flux-repo"
    );
    assert_eq!(
        patch.content_type.as_deref(),
        Some("application/merge-patch+json")
    );
    assert!(patch.body.contains("reconcile.fluxcd.io/requestedAt"));
    server.requests().clear();
    assert_eq!(server.requests().count(&RequestMatcher::any()), 0);
}
