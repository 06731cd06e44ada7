use std::collections::BTreeMap;

use fluxhook_test_apiserver::{RequestMatcher, Verb};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::core::Status;
use kube::{Discovery, ResourceExt};
use serde_json::json;

use super::{
    GitRepository, GitRepositoryStatus, client, create_repo, default_repos, flux_server, merge,
    repo,
};

fn api_error(error: kube::Error) -> Status {
    match error {
        kube::Error::Api(status) => *status,
        other => panic!("expected an API error, got {other:?}"),
    }
}

fn labelled(name: &str, labels: &[(&str, &str)]) -> ConfigMap {
    let mut map = ConfigMap::default();
    map.metadata.name = Some(name.to_owned());
    map.metadata.labels = Some(
        labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect::<BTreeMap<_, _>>(),
    );
    map
}

fn names(list: &kube::core::ObjectList<ConfigMap>) -> Vec<String> {
    list.items.iter().map(ResourceExt::name_any).collect()
}

#[tokio::test]
async fn discovery_finds_builtin_and_registered_kinds() {
    let server = flux_server().await;
    let client = client(&server).await;
    assert_eq!(client.apiserver_version().await.unwrap().major, "1");
    for discovery in [
        Discovery::new(client.clone()).run().await.unwrap(),
        Discovery::new(client.clone())
            .run_aggregated()
            .await
            .unwrap(),
    ] {
        let groups: Vec<String> = discovery
            .groups()
            .map(|group| group.name().to_owned())
            .collect();
        for wanted in [
            "",
            "source.toolkit.fluxcd.io",
            "notification.toolkit.fluxcd.io",
            "coordination.k8s.io",
        ] {
            assert!(
                groups.iter().any(|group| group == wanted),
                "{wanted:?} missing from {groups:?}"
            );
        }
        let source = discovery.get("source.toolkit.fluxcd.io").unwrap();
        let (resource, capabilities) = source.recommended_kind("GitRepository").unwrap();
        assert_eq!(resource.plural, "gitrepositories");
        assert!(
            capabilities
                .subresources
                .iter()
                .any(|(sub, _)| sub.plural == "gitrepositories/status" || sub.plural == "status")
        );
        let helm = discovery.get("helm.toolkit.fluxcd.io").unwrap();
        assert_eq!(helm.preferred_version_or_latest(), "v2");
    }
}

#[tokio::test]
async fn create_get_and_list_with_selectors_and_pages() {
    let server = flux_server().await;
    let client = client(&server).await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    for map in [
        labelled("a", &[("app", "web"), ("tier", "front")]),
        labelled("b", &[("app", "api")]),
        labelled("c", &[("app", "db"), ("tier", "back")]),
    ] {
        maps.create(&PostParams::default(), &map).await.unwrap();
    }
    let got = maps.get("a").await.unwrap();
    assert!(got.metadata.uid.is_some() && got.metadata.creation_timestamp.is_some());
    assert_eq!(
        got.metadata.generation, None,
        "core kinds keep no generation"
    );

    let list = |selector: &str| {
        let maps = maps.clone();
        let params = ListParams::default().labels(selector);
        async move { names(&maps.list(&params).await.unwrap()) }
    };
    assert_eq!(list("app=web").await, ["a"]);
    assert_eq!(list("app==api").await, ["b"]);
    assert_eq!(list("app!=web").await, ["b", "c"]);
    assert_eq!(list("app in (web, db)").await, ["a", "c"]);
    assert_eq!(list("app notin (web)").await, ["b", "c"]);
    assert_eq!(list("tier").await, ["a", "c"]);
    assert_eq!(list("!tier").await, ["b"]);
    assert_eq!(list("app,tier=back").await, ["c"]);
    let by_name = maps
        .list(&ListParams::default().fields("metadata.name=b"))
        .await
        .unwrap();
    assert_eq!(names(&by_name), ["b"]);

    let bad = maps
        .list(&ListParams::default().labels("app in ("))
        .await
        .unwrap_err();
    assert_eq!(api_error(bad).code, 400);

    let mut paged = Vec::new();
    let mut params = ListParams::default().limit(2);
    loop {
        let page = maps.list(&params).await.unwrap();
        paged.extend(names(&page));
        match page.metadata.continue_.filter(|token| !token.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => break,
        }
    }
    assert_eq!(paged, ["a", "b", "c"]);

    let flux: Api<Namespace> = Api::all(client.clone());
    flux.create(
        &PostParams::default(),
        &serde_json::from_value(json!({"metadata": {"name": "flux-system"}})).unwrap(),
    )
    .await
    .unwrap();
    let elsewhere: Api<ConfigMap> = Api::namespaced(client.clone(), "flux-system");
    elsewhere
        .create(&PostParams::default(), &labelled("d", &[("app", "web")]))
        .await
        .unwrap();
    let everywhere: Api<ConfigMap> = Api::all(client);
    let all_web = everywhere
        .list(&ListParams::default().labels("app=web"))
        .await
        .unwrap();
    assert_eq!(names(&all_web), ["a", "d"]);
    let in_flux = everywhere
        .list(&ListParams::default().fields("metadata.namespace=flux-system"))
        .await
        .unwrap();
    assert_eq!(names(&in_flux), ["d"]);
}

#[tokio::test]
async fn create_refuses_duplicates_missing_namespaces_and_bad_names() {
    let (_server, client, repos) = default_repos().await;
    create_repo(&repos, "flux", "https://example.com/a.git").await;
    let duplicate = repos
        .create(
            &PostParams::default(),
            &repo("flux", "https://example.com/a.git"),
        )
        .await;
    let duplicate = api_error(duplicate.unwrap_err());
    assert_eq!(
        (duplicate.code, duplicate.reason.as_str()),
        (409, "AlreadyExists")
    );

    let nowhere: Api<GitRepository> = Api::namespaced(client.clone(), "nowhere");
    let missing = api_error(
        nowhere
            .create(&PostParams::default(), &repo("flux", "u"))
            .await
            .unwrap_err(),
    );
    assert_eq!((missing.code, missing.reason.as_str()), (404, "NotFound"));

    let invalid = api_error(
        repos
            .create(&PostParams::default(), &repo("Not_Valid", "u"))
            .await
            .unwrap_err(),
    );
    assert_eq!((invalid.code, invalid.reason.as_str()), (422, "Invalid"));

    let mut generated = repo("", "https://example.com/b.git");
    generated.metadata.name = None;
    generated.metadata.generate_name = Some("flux-".to_owned());
    let created = repos
        .create(&PostParams::default(), &generated)
        .await
        .unwrap();
    assert!(created.name_any().starts_with("flux-") && created.name_any().len() == 10);

    let missing = api_error(repos.get("absent").await.unwrap_err());
    assert_eq!(
        missing.message,
        "gitrepositories.source.toolkit.fluxcd.io \"absent\" not found"
    );
}

#[tokio::test]
async fn merge_patch_bumps_resource_version_but_not_generation() {
    let (_server, _, repos) = default_repos().await;
    let created = create_repo(&repos, "flux-repo", "https://example.com/a.git").await;
    assert_eq!(created.metadata.generation, Some(1));
    let version = |repo: &GitRepository| repo.resource_version().unwrap().parse::<u64>().unwrap();

    let annotate = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "2025-01-01T00:00:00Z"}}});
    let annotated = merge(&repos, "flux-repo", &annotate).await;
    assert!(version(&annotated) > version(&created));
    assert_eq!(annotated.metadata.generation, Some(1));
    assert_eq!(
        annotated.annotations()["reconcile.fluxcd.io/requestedAt"],
        "2025-01-01T00:00:00Z"
    );

    let again = merge(&repos, "flux-repo", &annotate).await;
    assert_eq!(
        version(&again),
        version(&annotated),
        "a no-op patch writes nothing"
    );

    let respec = json!({"spec": {"interval": "5m"}});
    let respecced = merge(&repos, "flux-repo", &respec).await;
    assert_eq!(respecced.metadata.generation, Some(2));
    assert!(version(&respecced) > version(&annotated));

    let stale = json!({"metadata": {"resourceVersion": created.resource_version()}, "spec": {"interval": "1m"}});
    let conflict = api_error(
        repos
            .patch("flux-repo", &PatchParams::default(), &Patch::Merge(&stale))
            .await
            .unwrap_err(),
    );
    assert_eq!(conflict.code, 409);

    // As on a real cluster, custom resources refuse strategic merge patches; built-in kinds
    // take them.
    let strategic = json!({"metadata": {"labels": {"team": "a"}}});
    let refused = repos
        .patch(
            "flux-repo",
            &PatchParams::default(),
            &Patch::Strategic(&strategic),
        )
        .await;
    assert_eq!(api_error(refused.unwrap_err()).code, 415);
    let maps: Api<ConfigMap> = Api::default_namespaced(repos.into_client());
    maps.create(&PostParams::default(), &labelled("settings", &[]))
        .await
        .unwrap();
    let relabelled = maps
        .patch(
            "settings",
            &PatchParams::default(),
            &Patch::Strategic(&strategic),
        )
        .await
        .unwrap();
    assert_eq!(relabelled.labels()["team"], "a");
}

#[tokio::test]
async fn update_with_a_stale_resource_version_conflicts() {
    let (_server, _, repos) = default_repos().await;
    let created = create_repo(&repos, "flux-repo", "https://example.com/a.git").await;
    let mut first = created.clone();
    first.spec.url = "https://example.com/b.git".to_owned();
    let updated = repos
        .replace("flux-repo", &PostParams::default(), &first)
        .await
        .unwrap();
    assert_eq!(updated.metadata.generation, Some(2));

    let mut stale = created;
    stale.spec.url = "https://example.com/c.git".to_owned();
    let conflict = api_error(
        repos
            .replace("flux-repo", &PostParams::default(), &stale)
            .await
            .unwrap_err(),
    );
    assert_eq!((conflict.code, conflict.reason.as_str()), (409, "Conflict"));
    assert!(
        conflict.message.contains("the object has been modified"),
        "{}",
        conflict.message
    );

    let mut unconditional = updated.clone();
    unconditional.metadata.resource_version = None;
    unconditional.spec.url = "https://example.com/d.git".to_owned();
    repos
        .replace("flux-repo", &PostParams::default(), &unconditional)
        .await
        .unwrap();
    let missing = api_error(
        repos
            .replace("absent", &PostParams::default(), &repo("absent", "u"))
            .await
            .unwrap_err(),
    );
    assert_eq!(missing.code, 404);
}

#[tokio::test]
async fn status_subresource_is_isolated_from_the_main_resource() {
    let (_server, _, repos) = default_repos().await;
    let mut with_status = repo("flux-repo", "https://example.com/a.git");
    with_status.status = Some(GitRepositoryStatus {
        last_handled_reconcile_at: Some("create".to_owned()),
    });
    let created = repos
        .create(&PostParams::default(), &with_status)
        .await
        .unwrap();
    assert_eq!(created.status, None, "create drops status");

    let status_patch =
        json!({"status": {"lastHandledReconcileAt": "t1"}, "spec": {"url": "ignored"}});
    let patched = repos
        .patch_status(
            "flux-repo",
            &PatchParams::default(),
            &Patch::Merge(&status_patch),
        )
        .await
        .unwrap();
    assert_eq!(
        patched.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some("t1")
    );
    assert_eq!(
        patched.spec.url, "https://example.com/a.git",
        "status writes ignore spec"
    );
    assert_eq!(patched.metadata.generation, Some(1));

    let main_patch = json!({"status": {"lastHandledReconcileAt": "ignored"}, "metadata": {"labels": {"a": "b"}}});
    let relabelled = merge(&repos, "flux-repo", &main_patch).await;
    assert_eq!(
        relabelled
            .status
            .unwrap()
            .last_handled_reconcile_at
            .as_deref(),
        Some("t1")
    );

    let mut replaced = repos.get_status("flux-repo").await.unwrap();
    replaced.status = Some(GitRepositoryStatus {
        last_handled_reconcile_at: Some("t2".to_owned()),
    });
    let stored = repos
        .replace_status("flux-repo", &PostParams::default(), &replaced)
        .await
        .unwrap();
    assert_eq!(
        stored.status.unwrap().last_handled_reconcile_at.as_deref(),
        Some("t2")
    );

    let maps: Api<ConfigMap> = Api::default_namespaced(repos.into_client());
    maps.create(&PostParams::default(), &labelled("plain", &[]))
        .await
        .unwrap();
    let no_status = api_error(maps.get_status("plain").await.unwrap_err());
    assert_eq!(no_status.code, 404);
}

#[tokio::test]
async fn delete_waits_for_finalizers() {
    let (_server, _, repos) = default_repos().await;
    let mut finalized = repo("flux-repo", "https://example.com/a.git");
    finalized.metadata.finalizers = Some(vec!["finalizers.fluxcd.io".to_owned()]);
    repos
        .create(&PostParams::default(), &finalized)
        .await
        .unwrap();

    let pending = repos
        .delete("flux-repo", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert!(pending.metadata.deletion_timestamp.is_some());
    assert_eq!(pending.metadata.generation, Some(2));
    let still_there = repos.get("flux-repo").await.unwrap();
    assert!(still_there.metadata.deletion_timestamp.is_some());

    let add = json!({"metadata": {"finalizers": ["finalizers.fluxcd.io", "another.example.com"]}});
    let refused = api_error(
        repos
            .patch("flux-repo", &PatchParams::default(), &Patch::Merge(&add))
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.code, 422);

    let release = json!({"metadata": {"finalizers": null}});
    merge(&repos, "flux-repo", &release).await;
    assert_eq!(
        api_error(repos.get("flux-repo").await.unwrap_err()).code,
        404
    );

    repos
        .create(&PostParams::default(), &repo("plain", "u"))
        .await
        .unwrap();
    let precondition = DeleteParams {
        preconditions: Some(kube::api::Preconditions {
            uid: Some("wrong".to_owned()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    assert_eq!(
        api_error(repos.delete("plain", &precondition).await.unwrap_err()).code,
        409
    );
    let gone = repos
        .delete("plain", &DeleteParams::default())
        .await
        .unwrap()
        .left()
        .unwrap();
    assert_eq!(gone.name_any(), "plain");
    assert_eq!(api_error(repos.get("plain").await.unwrap_err()).code, 404);

    for name in ["x", "y"] {
        repos
            .create(&PostParams::default(), &repo(name, "u"))
            .await
            .unwrap();
    }
    let deleted = repos
        .delete_collection(&DeleteParams::default(), &ListParams::default())
        .await
        .unwrap();
    assert_eq!(deleted.left().unwrap().items.len(), 2);
    assert!(
        repos
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn server_side_apply_creates_then_merges() {
    let (server, _, repos) = default_repos().await;
    let params = PatchParams::apply("fluxhook-test").force();
    let first = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "applied"},
        "spec": {"url": "https://example.com/a.git"}
    });
    let created = repos
        .patch("applied", &params, &Patch::Apply(&first))
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let second = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "applied", "annotations": {"a": "b"}},
        "spec": {"interval": "1m"}
    });
    let merged = repos
        .patch("applied", &params, &Patch::Apply(&second))
        .await
        .unwrap();
    assert_eq!(merged.spec.url, "https://example.com/a.git");
    assert_eq!(merged.spec.interval.as_deref(), Some("1m"));
    assert_eq!(merged.annotations()["a"], "b");
    assert_eq!(merged.metadata.generation, Some(2));
    let patches = server
        .requests()
        .matching(&RequestMatcher::any().verb(Verb::Patch).name("applied"));
    assert_eq!(patches.len(), 2);
    assert_eq!(
        patches[0].content_type.as_deref(),
        Some("application/apply-patch+yaml")
    );
    assert!(patches[0].query.contains("fieldManager=fluxhook-test"));
    assert_eq!(patches[0].status, Some(201));
}

#[tokio::test]
async fn json_patch_and_missing_field_manager_over_raw_http() {
    let (_server, client, repos) = default_repos().await;
    create_repo(&repos, "flux-repo", "https://example.com/a.git").await;
    let path = "/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories/flux-repo";
    let request = http::Request::patch(path)
        .header("content-type", "application/json-patch+json")
        .body(serde_json::to_vec(&json!([{"op": "replace", "path": "/spec/url", "value": "https://example.com/b.git"}])).unwrap())
        .unwrap();
    let patched: GitRepository = client.request(request).await.unwrap();
    assert_eq!(patched.spec.url, "https://example.com/b.git");

    let request = http::Request::patch(path)
        .header("content-type", "application/apply-patch+yaml")
        .body(b"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\n".to_vec())
        .unwrap();
    let refused = api_error(client.request::<GitRepository>(request).await.unwrap_err());
    assert_eq!(refused.code, 422);

    let request = http::Request::patch(path)
        .header("content-type", "text/plain")
        .body(b"{}".to_vec())
        .unwrap();
    assert_eq!(
        api_error(client.request::<GitRepository>(request).await.unwrap_err()).code,
        415
    );
}

#[tokio::test]
async fn metadata_only_requests_and_leases() {
    let (_server, client, repos) = default_repos().await;
    create_repo(&repos, "flux-repo", "https://example.com/a.git").await;
    let metadata = repos.get_metadata("flux-repo").await.unwrap();
    assert_eq!(metadata.metadata.name.as_deref(), Some("flux-repo"));
    let listed = repos.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    let request =
        http::Request::get("/apis/source.toolkit.fluxcd.io/v1/namespaces/default/gitrepositories")
            .header(
                "accept",
                "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1",
            )
            .body(Vec::new())
            .unwrap();
    let raw: serde_json::Value = client.request(request).await.unwrap();
    assert_eq!(raw["kind"], "PartialObjectMetadataList");
    assert_eq!(raw["items"][0]["kind"], "PartialObjectMetadata");
    assert!(raw["items"][0].get("spec").is_none());

    let leases: Api<Lease> = Api::namespaced(client, "kube-system");
    let lease: Lease = serde_json::from_value(json!({
        "metadata": {"name": "fluxhook-leader"},
        "spec": {"holderIdentity": "pod-a", "leaseDurationSeconds": 15}
    }))
    .unwrap();
    let created = leases.create(&PostParams::default(), &lease).await.unwrap();
    let mut renewed = created.clone();
    renewed.spec.as_mut().unwrap().holder_identity = Some("pod-b".to_owned());
    leases
        .replace("fluxhook-leader", &PostParams::default(), &renewed)
        .await
        .unwrap();
    let conflict = leases
        .replace("fluxhook-leader", &PostParams::default(), &renewed)
        .await;
    assert_eq!(
        api_error(conflict.unwrap_err()).code,
        409,
        "a second writer with the old version loses"
    );
}

#[tokio::test]
async fn event_recorder_publishes_events() {
    use kube::runtime::events::{Event, EventType, Recorder, Reporter};

    let (server, client, repos) = default_repos().await;
    let created = create_repo(&repos, "flux-repo", "https://example.com/a.git").await;
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: "fluxhook".into(),
            instance: None,
        },
    );
    let event = Event {
        type_: EventType::Normal,
        reason: "ReconcileRequested".into(),
        note: Some("annotated".into()),
        action: "Patch".into(),
        secondary: None,
    };
    let reference = kube::Resource::object_ref(&created, &());
    recorder.publish(&event, &reference).await.unwrap();
    recorder.publish(&event, &reference).await.unwrap();
    let events = server
        .list("events.k8s.io/v1", "Event", Some("default"))
        .unwrap();
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["series"]["count"], 2);
}

#[tokio::test]
async fn dry_runs_change_nothing() {
    let (server, _, repos) = default_repos().await;
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let answered = repos.create(&dry, &repo("dry", "u")).await.unwrap();
    assert_eq!(answered.metadata.generation, Some(1));
    assert_eq!(api_error(repos.get("dry").await.unwrap_err()).code, 404);

    let created = create_repo(&repos, "real", "u").await;
    let before = server.resource_version();
    let respec = json!({"spec": {"url": "changed"}});
    let params = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    let would_be = repos
        .patch("real", &params, &Patch::Merge(&respec))
        .await
        .unwrap();
    assert_eq!(
        (would_be.spec.url.as_str(), would_be.metadata.generation),
        ("changed", Some(2))
    );
    repos
        .delete(
            "real",
            &DeleteParams {
                dry_run: true,
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
    let stored = repos.get("real").await.unwrap();
    assert_eq!(
        (stored.spec, stored.metadata),
        (created.spec, created.metadata)
    );
    assert_eq!(server.resource_version(), before);
}
