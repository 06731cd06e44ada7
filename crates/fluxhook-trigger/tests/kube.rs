//! Trigger against a fake Kubernetes API server on loopback, through a real
//! kube-rs client: what lands on the objects, and which calls were made
//! (read from the server's request log).
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use fluxhook_api::{RECONCILE_REQUEST_ANNOTATION, ReceiverResource};
use fluxhook_test_apiserver::{RequestMatcher, ResourceType, TestApiServer, Verb, fixtures};
use fluxhook_trigger::{Action, ObjectRef, ReferenceError, Trigger, TriggerError};
use futures::future::join_all;
use serde_json::{Value, json};

const GIT: &str = "source.toolkit.fluxcd.io/v1";

/// A server serving Flux's kinds, with namespaces `flux-system` and `apps`,
/// and a Trigger whose client reaches it.
async fn cluster() -> (TestApiServer, Trigger) {
    let server = TestApiServer::start_flux(&["flux-system", "apps"])
        .await
        .unwrap();
    let trigger = Trigger::new(server.kube_client().await.unwrap());
    (server, trigger)
}

fn create_repo(server: &TestApiServer, namespace: &str, name: &str, labels: Value) {
    server
        .create(fixtures::git_repository(namespace, name, labels))
        .unwrap();
}

/// The object's `reconcile.fluxcd.io/requestedAt`, if set.
fn requested_at(server: &TestApiServer, namespace: &str, name: &str) -> Option<String> {
    let object = server.get(GIT, "GitRepository", namespace, name).unwrap();
    object["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION]
        .as_str()
        .map(str::to_owned)
}

fn repo_patches() -> RequestMatcher {
    RequestMatcher::any()
        .verb(Verb::Patch)
        .resource("gitrepositories")
}

/// Waits until the server has received a PATCH of a GitRepository.
async fn first_patch_sent(server: &TestApiServer) {
    // A hang guard, not a speed check.
    tokio::time::timeout(Duration::from_secs(60), async {
        while server.requests().count(&repo_patches()) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await
    .expect("the first request sends a PATCH");
}

fn wildcard(match_labels: Option<&[(&str, &str)]>) -> ReceiverResource {
    ReceiverResource {
        api_version: None,
        kind: "GitRepository".into(),
        name: "*".into(),
        namespace: None,
        match_labels: match_labels.map(|labels| {
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect::<BTreeMap<_, _>>()
        }),
        filter: None,
    }
}

fn by_name(namespace: Option<&str>, name: &str) -> ReceiverResource {
    ReceiverResource {
        name: name.into(),
        namespace: namespace.map(str::to_owned),
        ..wildcard(None)
    }
}

#[tokio::test]
async fn annotates_a_git_repository_by_name() {
    let (server, trigger) = cluster().await;
    server
        .create(json!({
            "apiVersion": GIT,
            "kind": "GitRepository",
            "metadata": {"name": "podinfo", "namespace": "flux-system", "annotations": {"team": "web"}},
            "spec": {"url": "https://example.com/podinfo.git"},
        }))
        .unwrap();

    let repo = ObjectRef::new("GitRepository", "flux-system", "podinfo");
    let outcome = trigger.request_reconcile(&repo).await.unwrap();
    assert_eq!(outcome.object, repo.clone().with_api_version(GIT));

    let stored = server
        .get(GIT, "GitRepository", "flux-system", "podinfo")
        .unwrap();
    let annotations = &stored["metadata"]["annotations"];
    assert_eq!(
        annotations[RECONCILE_REQUEST_ANNOTATION],
        outcome.requested_at.as_str()
    );
    assert_eq!(
        annotations["team"], "web",
        "a merge patch keeps other annotations"
    );
    assert_eq!(stored["spec"]["url"], "https://example.com/podinfo.git");

    let patches = server.requests().matching(&repo_patches());
    assert_eq!(patches.len(), 1);
    assert_eq!(
        patches[0].path,
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/podinfo"
    );
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/merge-patch+json")
    );

    // Asking again writes a new value, or Flux would not look again.
    let again = trigger.request_reconcile(&repo).await.unwrap();
    assert_ne!(again.requested_at, outcome.requested_at);
    assert_eq!(
        requested_at(&server, "flux-system", "podinfo"),
        Some(again.requested_at)
    );
}

#[tokio::test]
async fn wildcard_selects_exactly_the_objects_with_every_label() {
    let (server, trigger) = cluster().await;
    create_repo(
        &server,
        "flux-system",
        "web",
        json!({"app": "podinfo", "tier": "web"}),
    );
    create_repo(&server, "flux-system", "api", json!({"app": "podinfo"}));
    create_repo(&server, "flux-system", "other", json!({"app": "other"}));
    create_repo(&server, "flux-system", "bare", json!({}));
    create_repo(&server, "apps", "elsewhere", json!({"app": "podinfo"}));

    let results = trigger
        .request_reconcile_selected(&wildcard(Some(&[("app", "podinfo")])), "flux-system")
        .await;
    let mut names: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().object.name)
        .collect();
    names.sort();
    assert_eq!(names, ["api", "web"]);
    for (namespace, name, annotated) in [
        ("flux-system", "web", true),
        ("flux-system", "api", true),
        ("flux-system", "other", false),
        ("flux-system", "bare", false),
        ("apps", "elsewhere", false),
    ] {
        assert_eq!(
            requested_at(&server, namespace, name).is_some(),
            annotated,
            "{namespace}/{name}"
        );
    }

    let both = wildcard(Some(&[("app", "podinfo"), ("tier", "web")]));
    let results = trigger
        .request_reconcile_selected(&both, "flux-system")
        .await;
    let names: Vec<String> = results
        .into_iter()
        .map(|r| r.unwrap().object.name)
        .collect();
    assert_eq!(names, ["web"]);

    let none = wildcard(Some(&[("app", "nothing")]));
    assert!(
        trigger
            .request_reconcile_selected(&none, "flux-system")
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn wildcard_without_match_labels_is_refused_before_any_call() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "flux-system", "podinfo", json!({}));
    server.requests().clear();

    let results = trigger
        .request_reconcile_selected(&wildcard(None), "flux-system")
        .await;
    assert_eq!(results.len(), 1);
    let Err(TriggerError::WildcardWithoutMatchLabels { object }) = &results[0] else {
        panic!("{results:?}");
    };
    assert_eq!(
        (object.namespace.as_str(), object.name.as_str()),
        ("flux-system", "*")
    );
    assert!(server.requests().all().is_empty());
    assert_eq!(requested_at(&server, "flux-system", "podinfo"), None);
}

#[tokio::test]
async fn cross_namespace_references_follow_the_policy() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "apps", "podinfo", json!({}));
    create_repo(&server, "flux-system", "podinfo", json!({}));

    // Forbidden: refused without a call, and nothing annotated.
    let strict = trigger.clone().no_cross_namespace_refs(true);
    server.requests().clear();
    let results = strict
        .request_reconcile_selected(&by_name(Some("apps"), "podinfo"), "flux-system")
        .await;
    let [
        Err(TriggerError::CrossNamespaceRef {
            object,
            receiver_namespace,
        }),
    ] = results.as_slice()
    else {
        panic!("{results:?}");
    };
    assert_eq!(
        (object.namespace.as_str(), receiver_namespace.as_str()),
        ("apps", "flux-system")
    );
    assert!(server.requests().all().is_empty());
    assert_eq!(requested_at(&server, "apps", "podinfo"), None);

    // The Receiver's own namespace, named or defaulted, is fine.
    for namespace in [Some("flux-system"), None] {
        let results = strict
            .request_reconcile_selected(&by_name(namespace, "podinfo"), "flux-system")
            .await;
        assert_eq!(results.len(), 1);
        assert_eq!(results[0].as_ref().unwrap().object.namespace, "flux-system");
    }

    // Allowed by default.
    let results = trigger
        .request_reconcile_selected(&by_name(Some("apps"), "podinfo"), "flux-system")
        .await;
    assert_eq!(results.len(), 1);
    assert!(results[0].is_ok());
    assert!(requested_at(&server, "apps", "podinfo").is_some());
}

#[tokio::test]
async fn select_with_metadata_reads_named_objects_and_lists_wildcards_once() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "flux-system", "podinfo", json!({"app": "podinfo"}));
    create_repo(&server, "flux-system", "other", json!({"app": "other"}));
    server.requests().clear();

    // A named object is read, its metadata only, and nothing is patched.
    let selected = trigger
        .select_with_metadata(&by_name(None, "podinfo"), "flux-system")
        .await
        .unwrap();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].object.api_version.as_deref(), Some(GIT));
    assert_eq!(selected[0].object.name, "podinfo");
    let res = selected[0].to_json();
    assert_eq!(res["kind"], "GitRepository");
    assert_eq!(res["metadata"]["labels"]["app"], "podinfo");
    assert_eq!(res["metadata"]["namespace"], "flux-system");
    let gets = server
        .requests()
        .matching(&RequestMatcher::any().verb(Verb::Get));
    assert_eq!(gets.len(), 1, "{gets:?}");
    assert_eq!(
        gets[0].target.as_ref().unwrap().name.as_deref(),
        Some("podinfo")
    );
    assert_eq!(server.requests().count(&repo_patches()), 0);

    // A wildcard costs one list, which carries the metadata.
    server.requests().clear();
    let selected = trigger
        .select_with_metadata(&wildcard(Some(&[("app", "other")])), "flux-system")
        .await
        .unwrap();
    let names: Vec<_> = selected.iter().map(|s| s.object.name.as_str()).collect();
    assert_eq!(names, ["other"]);
    assert_eq!(
        selected[0].metadata.labels.as_ref().unwrap()["app"],
        "other"
    );
    let requests = server.requests().all();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].verb, Some(Verb::List));
    assert_eq!(requested_at(&server, "flux-system", "other"), None);
}

#[tokio::test]
async fn select_with_spec_reads_specs_with_the_same_one_call() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "flux-system", "podinfo", json!({"app": "podinfo"}));
    create_repo(&server, "flux-system", "other", json!({"app": "other"}));
    server.requests().clear();

    // A wildcard costs one list, of whole objects: metadata and spec.
    let selected = trigger
        .select_with_spec(&wildcard(Some(&[("app", "other")])), "flux-system")
        .await
        .unwrap();
    assert_eq!(selected.len(), 1);
    assert_eq!(selected[0].selected.object.name, "other");
    assert_eq!(
        selected[0].selected.object.api_version.as_deref(),
        Some(GIT)
    );
    assert_eq!(
        selected[0].selected.metadata.labels.as_ref().unwrap()["app"],
        "other"
    );
    let spec = selected[0].spec.as_ref().unwrap();
    assert_eq!(spec["url"], "https://example.com/repo.git");
    let requests = server.requests().all();
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0].verb, Some(Verb::List));

    // A named object costs one read; a missing one is the read's 404.
    server.requests().clear();
    let selected = trigger
        .select_with_spec(&by_name(None, "podinfo"), "flux-system")
        .await
        .unwrap();
    assert_eq!(selected[0].selected.object.name, "podinfo");
    assert_eq!(
        selected[0].spec.as_ref().unwrap()["url"],
        "https://example.com/repo.git"
    );
    assert_eq!(server.requests().all().len(), 1);
    let error = trigger
        .select_with_spec(&by_name(None, "missing"), "flux-system")
        .await
        .unwrap_err();
    assert_eq!(error.status().map(|s| s.code), Some(404));
    assert_eq!(server.requests().count(&repo_patches()), 0);
}

#[tokio::test]
async fn select_with_metadata_reports_a_missing_object_and_keeps_the_policy() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "apps", "podinfo", json!({}));

    let error = trigger
        .select_with_metadata(&by_name(None, "missing"), "flux-system")
        .await
        .unwrap_err();
    let TriggerError::Api { object, action, .. } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(*action, Action::Get);
    assert_eq!(object.name, "missing");
    assert_eq!(error.status().map(|s| s.code), Some(404));
    assert!(
        error.to_string().contains("answered the get with 404"),
        "{error}"
    );

    server.requests().clear();
    let strict = trigger.no_cross_namespace_refs(true);
    let error = strict
        .select_with_metadata(&by_name(Some("apps"), "podinfo"), "flux-system")
        .await
        .unwrap_err();
    assert!(
        matches!(error, TriggerError::CrossNamespaceRef { .. }),
        "{error:?}"
    );
    assert!(server.requests().all().is_empty());
}

#[tokio::test]
async fn request_reconcile_each_answers_each_object_in_order() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "flux-system", "a", json!({}));
    create_repo(&server, "flux-system", "b", json!({}));
    let objects =
        ["a", "missing", "b"].map(|name| ObjectRef::new("GitRepository", "flux-system", name));

    let results = trigger.request_reconcile_each(objects).await;
    let names: Vec<_> = results
        .iter()
        .map(|r| match r {
            Ok(outcome) => outcome.object.name.clone(),
            Err(error) => format!("error {}", error.object().name),
        })
        .collect();
    assert_eq!(names, ["a", "error missing", "b"]);
    assert!(requested_at(&server, "flux-system", "a").is_some());
    assert!(requested_at(&server, "flux-system", "b").is_some());
    assert!(trigger.request_reconcile_each(Vec::new()).await.is_empty());
}

/// With the first patch in flight (or just done), a burst of 100 requests
/// for the same object. On this single-threaded runtime the burst registers
/// in one poll, so it is served by exactly one more patch, whatever the
/// timing: two PATCH calls for 101 requests.
#[tokio::test]
async fn a_burst_of_requests_costs_two_patches_and_every_request_succeeds() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "flux-system", "podinfo", json!({}));
    // Only widens the window in which the burst finds the first patch in
    // flight; nothing below depends on it.
    server.faults().set_latency(Duration::from_millis(20));
    let repo = ObjectRef::new("GitRepository", "flux-system", "podinfo");

    let first = tokio::spawn({
        let (trigger, repo) = (trigger.clone(), repo.clone());
        async move { trigger.request_reconcile(&repo).await }
    });
    first_patch_sent(&server).await;
    let burst = join_all((0..100).map(|_| trigger.request_reconcile(&repo))).await;
    let first = first.await.unwrap().unwrap();

    assert_eq!(server.requests().count(&repo_patches()), 2);
    let burst: Vec<String> = burst.into_iter().map(|r| r.unwrap().requested_at).collect();
    assert!(
        burst.iter().all(|at| *at == burst[0]),
        "the burst shares one patch"
    );
    assert_ne!(
        burst[0], first.requested_at,
        "the burst's patch began after it arrived"
    );
    assert_eq!(
        requested_at(&server, "flux-system", "podinfo"),
        Some(burst[0].clone())
    );
}

#[tokio::test]
async fn a_failed_patch_fails_only_the_requests_it_served() {
    let (server, trigger) = cluster().await;
    create_repo(&server, "flux-system", "podinfo", json!({}));
    server.faults().set_latency(Duration::from_millis(20));
    server.faults().fail_next(1, 500, repo_patches());
    let repo = ObjectRef::new("GitRepository", "flux-system", "podinfo");

    let first = tokio::spawn({
        let (trigger, repo) = (trigger.clone(), repo.clone());
        async move { trigger.request_reconcile(&repo).await }
    });
    first_patch_sent(&server).await;
    let burst = join_all((0..20).map(|_| trigger.request_reconcile(&repo))).await;

    let error = first.await.unwrap().unwrap_err();
    assert_eq!(error.status().map(|s| s.code), Some(500));
    assert!(burst.iter().all(Result::is_ok), "{burst:?}");
    assert_eq!(server.requests().count(&repo_patches()), 2);
}

#[tokio::test]
async fn api_errors_are_typed_and_name_the_object() {
    let (server, trigger) = cluster().await;

    let missing = ObjectRef::new("GitRepository", "flux-system", "missing");
    let error = trigger.request_reconcile(&missing).await.unwrap_err();
    let TriggerError::Api {
        object,
        action,
        status,
    } = &error
    else {
        panic!("{error:?}");
    };
    assert_eq!(
        (object.name.as_str(), *action, status.code),
        ("missing", Action::Patch, 404)
    );
    let message = error.to_string();
    assert!(
        message.contains("GitRepository flux-system/missing"),
        "{message}"
    );
    assert!(message.contains("404"), "{message}");

    create_repo(&server, "flux-system", "podinfo", json!({}));
    server.faults().fail_next(1, 403, repo_patches());
    let error = trigger
        .request_reconcile(&ObjectRef::new("GitRepository", "flux-system", "podinfo"))
        .await
        .unwrap_err();
    assert_eq!(error.status().map(|s| s.code), Some(403));
    assert_eq!(error.object().name, "podinfo");

    server.faults().fail_next(
        1,
        500,
        RequestMatcher::any()
            .verb(Verb::List)
            .resource("gitrepositories"),
    );
    let results = trigger
        .request_reconcile_selected(&wildcard(Some(&[("app", "podinfo")])), "flux-system")
        .await;
    let [
        Err(TriggerError::Api {
            action: Action::List,
            status,
            ..
        }),
    ] = results.as_slice()
    else {
        panic!("{results:?}");
    };
    assert_eq!(status.code, 500);
}

#[tokio::test]
async fn references_are_checked_before_any_call() {
    let (server, trigger) = cluster().await;
    server.requests().clear();

    let escape = ObjectRef::new(
        "GitRepository",
        "flux-system",
        "../../../api/v1/namespaces/flux-system/secrets/x",
    );
    let error = trigger.request_reconcile(&escape).await.unwrap_err();
    assert!(matches!(
        error,
        TriggerError::InvalidReference {
            source: ReferenceError::Name { .. },
            ..
        }
    ));

    let bad_namespace = ObjectRef::new("GitRepository", "Flux System", "podinfo");
    let error = trigger.request_reconcile(&bad_namespace).await.unwrap_err();
    assert!(matches!(
        error,
        TriggerError::InvalidReference {
            source: ReferenceError::Namespace { .. },
            ..
        }
    ));

    let injected = wildcard(Some(&[("app", "podinfo,tier!=web")]));
    let results = trigger
        .request_reconcile_selected(&injected, "flux-system")
        .await;
    assert!(matches!(
        results.as_slice(),
        [Err(TriggerError::InvalidReference {
            source: ReferenceError::LabelValue { .. },
            ..
        })]
    ));

    // Kustomization has no default apiVersion in Flux.
    let error = trigger
        .request_reconcile(&ObjectRef::new("Kustomization", "flux-system", "apps"))
        .await
        .unwrap_err();
    assert!(matches!(error, TriggerError::Resolve { .. }), "{error:?}");

    assert!(server.requests().all().is_empty());
}

#[tokio::test]
async fn other_flux_kinds_take_their_plural_from_the_table() {
    let (server, trigger) = cluster().await;
    server
        .create(json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": "ImagePolicy",
            "metadata": {"name": "podinfo", "namespace": "flux-system"},
            "spec": {"imageRepositoryRef": {"name": "podinfo"}},
        }))
        .unwrap();

    let policy = ObjectRef::new("ImagePolicy", "flux-system", "podinfo")
        .with_api_version("image.toolkit.fluxcd.io/v1");
    let outcome = trigger.request_reconcile(&policy).await.unwrap();
    let stored = server
        .get(
            "image.toolkit.fluxcd.io/v1",
            "ImagePolicy",
            "flux-system",
            "podinfo",
        )
        .unwrap();
    assert_eq!(
        stored["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION],
        outcome.requested_at.as_str()
    );
    // No discovery was needed.
    assert!(
        server
            .requests()
            .all()
            .iter()
            .all(|r| r.verb == Some(Verb::Patch))
    );
}

#[tokio::test]
async fn other_kinds_are_discovered_once() {
    let (server, trigger) = cluster().await;
    // A plural no pluralizer would guess.
    server.register(ResourceType::new("example.com", "v1", "Widget", "widgetry"));
    server.register(ResourceType::new("example.com", "v1", "Gadget", "gadgets").cluster_scoped());
    for (kind, namespace) in [("Widget", Some("apps")), ("Gadget", None)] {
        server
            .create(json!({
                "apiVersion": "example.com/v1",
                "kind": kind,
                "metadata": {"name": "one", "namespace": namespace},
            }))
            .unwrap();
    }
    server.requests().clear();

    let widget = ObjectRef::new("Widget", "apps", "one").with_api_version("example.com/v1");
    let answers = join_all((0..3).map(|_| trigger.request_reconcile(&widget))).await;
    assert!(answers.iter().all(Result::is_ok), "{answers:?}");
    trigger.request_reconcile(&widget).await.unwrap();
    let stored = server
        .get("example.com/v1", "Widget", "apps", "one")
        .unwrap();
    assert!(stored["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION].is_string());

    // A cluster-scoped kind: the namespace of the reference does not apply.
    let gadget = ObjectRef::new("Gadget", "", "one").with_api_version("example.com/v1");
    trigger.request_reconcile(&gadget).await.unwrap();
    let stored = server.get("example.com/v1", "Gadget", "", "one").unwrap();
    assert!(stored["metadata"]["annotations"][RECONCILE_REQUEST_ANNOTATION].is_string());

    let discoveries = server
        .requests()
        .all()
        .into_iter()
        .filter(|r| r.path == "/apis/example.com/v1")
        .count();
    assert_eq!(discoveries, 2, "one discovery per kind");

    // An unserved group is a typed discovery error.
    let unknown = ObjectRef::new("Thing", "apps", "one").with_api_version("nowhere.example.com/v1");
    let error = trigger.request_reconcile(&unknown).await.unwrap_err();
    assert!(
        matches!(error, TriggerError::Api { action: Action::Discover, ref status, .. } if status.code == 404),
        "{error:?}"
    );
}
