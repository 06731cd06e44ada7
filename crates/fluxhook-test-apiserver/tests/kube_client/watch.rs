use fluxhook_test_apiserver::{RequestMatcher, Verb, eventually};
use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::ResourceExt;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, WatchEvent, WatchParams};
use kube::runtime::watcher::{self, Event};
use serde_json::json;

use super::{GitRepository, client, default_repos, flux_server, merge, next, repo};

/// The name in an Apply/Delete event, or the event's shape for anything else.
fn describe(event: &Event<GitRepository>) -> String {
    match event {
        Event::Apply(object) => format!("apply {}", object.name_any()),
        Event::Delete(object) => format!("delete {}", object.name_any()),
        Event::Init => "init".to_owned(),
        Event::InitApply(object) => format!("init-apply {}", object.name_any()),
        Event::InitDone => "init-done".to_owned(),
    }
}

#[tokio::test]
async fn watcher_sees_changes_and_resumes_after_dropped_watches() {
    let (server, _, repos) = default_repos().await;
    repos
        .create(&PostParams::default(), &repo("existing", "u"))
        .await
        .unwrap();
    let mut events = watcher::watcher(repos.clone(), watcher::Config::default()).boxed();
    for wanted in ["init", "init-apply existing", "init-done"] {
        assert_eq!(describe(&next(&mut events).await.unwrap()), wanted);
    }

    repos
        .create(&PostParams::default(), &repo("added", "u"))
        .await
        .unwrap();
    assert_eq!(describe(&next(&mut events).await.unwrap()), "apply added");

    // The stream closes after one more event; the rest must arrive through a resumed watch.
    server.faults().drop_watches_after_events(1);
    let annotate = json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}});
    merge(&repos, "added", &annotate).await;
    repos
        .create(&PostParams::default(), &repo("third", "u"))
        .await
        .unwrap();
    repos
        .delete("existing", &DeleteParams::default())
        .await
        .unwrap();
    let modified = next(&mut events).await.unwrap();
    assert_eq!(describe(&modified), "apply added");
    if let Event::Apply(object) = modified {
        assert_eq!(
            object.annotations()["reconcile.fluxcd.io/requestedAt"],
            "now"
        );
    }
    assert_eq!(describe(&next(&mut events).await.unwrap()), "apply third");
    assert_eq!(
        describe(&next(&mut events).await.unwrap()),
        "delete existing"
    );

    let watches = server.requests().matching(
        &RequestMatcher::any()
            .verb(Verb::Watch)
            .resource("gitrepositories"),
    );
    assert!(watches.len() >= 2, "the watcher resumed: {watches:?}");
    let resumed_from = watches.last().unwrap().query.clone();
    assert!(resumed_from.contains("resourceVersion="), "{resumed_from}");
    assert!(
        resumed_from.contains("allowWatchBookmarks=true"),
        "{resumed_from}"
    );
    let lists = server.requests().count(
        &RequestMatcher::any()
            .verb(Verb::List)
            .resource("gitrepositories"),
    );
    assert_eq!(lists, 1, "resuming needed no relist");

    // Dropped right now, with nothing pending: the watcher still resumes.
    assert_eq!(server.open_watches(), 1);
    server.faults().drop_watches();
    repos
        .create(&PostParams::default(), &repo("after-drop", "u"))
        .await
        .unwrap();
    assert_eq!(
        describe(&next(&mut events).await.unwrap()),
        "apply after-drop"
    );
}

#[tokio::test]
async fn watcher_relists_after_410_gone() {
    let (server, _, repos) = default_repos().await;
    repos
        .create(&PostParams::default(), &repo("first", "u"))
        .await
        .unwrap();
    // The watcher is lazy: after InitDone it watches only when polled again, so the history
    // can be compacted past its resourceVersion first.
    let mut events = watcher::watcher(repos.clone(), watcher::Config::default()).boxed();
    for wanted in ["init", "init-apply first", "init-done"] {
        assert_eq!(describe(&next(&mut events).await.unwrap()), wanted);
    }
    repos
        .create(&PostParams::default(), &repo("second", "u"))
        .await
        .unwrap();
    server.compact_history();

    match next(&mut events).await {
        Err(watcher::Error::WatchError(status)) => assert_eq!(status.code, 410),
        other => panic!("expected a 410 watch error, got {other:?}"),
    }
    for wanted in ["init", "init-apply first", "init-apply second", "init-done"] {
        assert_eq!(describe(&next(&mut events).await.unwrap()), wanted);
    }
    let lists = server.requests().count(
        &RequestMatcher::any()
            .verb(Verb::List)
            .resource("gitrepositories"),
    );
    assert_eq!(lists, 2, "the watcher listed again");
}

#[tokio::test]
async fn raw_watch_from_an_expired_version_gets_an_error_event() {
    let server = flux_server().await;
    let client = client(&server).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let start = server.resource_version();
    let mut map = ConfigMap::default();
    map.metadata.name = Some("a".to_owned());
    maps.create(&PostParams::default(), &map).await.unwrap();
    server.compact_history();
    let mut stream = maps
        .watch(&WatchParams::default(), &start.to_string())
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Error(status) => {
            assert_eq!((status.code, status.reason.as_str()), (410, "Expired"));
            assert!(
                status.message.starts_with("too old resource version"),
                "{}",
                status.message
            );
        }
        other => panic!("expected a 410 error event, got {other:?}"),
    }
}

#[tokio::test]
async fn bookmarks_and_streaming_lists() {
    let (server, _, repos) = default_repos().await;
    repos
        .create(&PostParams::default(), &repo("one", "u"))
        .await
        .unwrap();
    let current = server.resource_version();

    let mut stream = repos
        .watch(&WatchParams::default(), &current.to_string())
        .await
        .unwrap()
        .boxed();
    match next(&mut stream).await.unwrap() {
        WatchEvent::Bookmark(bookmark) => {
            assert_eq!(bookmark.metadata.resource_version, current.to_string());
            assert_eq!(bookmark.types.kind, "GitRepository");
        }
        other => panic!("expected a bookmark, got {other:?}"),
    }

    let config = watcher::Config::default().streaming_lists();
    let events: Vec<String> = watcher::watcher(repos.clone(), config)
        .take(3)
        .map_ok(|event| describe(&event))
        .try_collect()
        .await
        .unwrap();
    assert_eq!(events, ["init", "init-apply one", "init-done"]);
    let initial = server
        .requests()
        .matching(&RequestMatcher::any().verb(Verb::Watch));
    assert!(
        initial
            .last()
            .unwrap()
            .query
            .contains("sendInitialEvents=true")
    );
}

#[tokio::test]
async fn watches_honour_selectors_and_timeouts() {
    let server = flux_server().await;
    let client = client(&server).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let start = server.resource_version().to_string();
    let params = WatchParams::default()
        .labels("app=web")
        .disable_bookmarks()
        .timeout(1);
    let mut stream = maps.watch(&params, &start).await.unwrap().boxed();

    let mut map: ConfigMap =
        serde_json::from_value(json!({"metadata": {"name": "m", "labels": {"app": "api"}}}))
            .unwrap();
    maps.create(&PostParams::default(), &map).await.unwrap();
    let relabel = |app: &str| json!({"metadata": {"labels": {"app": app}}});
    maps.patch("m", &PatchParams::default(), &Patch::Merge(&relabel("web")))
        .await
        .unwrap();
    maps.patch("m", &PatchParams::default(), &Patch::Merge(&relabel("api")))
        .await
        .unwrap();
    map.metadata.name = Some("n".to_owned());
    map.metadata.labels = Some([("app".to_owned(), "web".to_owned())].into());
    maps.create(&PostParams::default(), &map).await.unwrap();

    let mut kinds = Vec::new();
    while let Some(event) = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
        .await
        .unwrap()
    {
        kinds.push(match event.unwrap() {
            WatchEvent::Added(object) => format!("added {}", object.name_any()),
            WatchEvent::Modified(object) => format!("modified {}", object.name_any()),
            WatchEvent::Deleted(object) => format!("deleted {}", object.name_any()),
            other => format!("{other:?}"),
        });
    }
    // Entering the selection is an ADDED event, leaving it a DELETED one; the stream then ends
    // at its one-second timeout.
    assert_eq!(kinds, ["added m", "deleted m", "added n"]);
}

#[tokio::test]
async fn shutdown_ends_open_watches() {
    let server = flux_server().await;
    let client = client(&server).await;
    let maps: Api<ConfigMap> = Api::default_namespaced(client);
    let mut stream = maps
        .watch(&WatchParams::default(), "0")
        .await
        .unwrap()
        .boxed();
    eventually("one open watch", || server.open_watches() == 1).await;
    server.shutdown().await.unwrap();
    while let Some(event) = tokio::time::timeout(std::time::Duration::from_secs(30), stream.next())
        .await
        .unwrap()
    {
        assert!(matches!(event, Ok(WatchEvent::Bookmark(_))), "{event:?}");
    }
}

/// A Flux-like controller: when `reconcile.fluxcd.io/requestedAt` changes, it records the value
/// in `status.lastHandledReconcileAt`, as source-controller does for fluxhook's patches.
#[tokio::test]
async fn controller_reconciles_requested_annotations() {
    use std::sync::Arc;

    use kube::runtime::controller::{Action, Controller};

    #[derive(Debug, thiserror::Error)]
    #[error(transparent)]
    struct ReconcileError(#[from] kube::Error);

    async fn reconcile(
        repo: Arc<GitRepository>,
        repos: Arc<Api<GitRepository>>,
    ) -> Result<Action, ReconcileError> {
        let requested = repo
            .annotations()
            .get("reconcile.fluxcd.io/requestedAt")
            .cloned();
        let handled = repo
            .status
            .as_ref()
            .and_then(|status| status.last_handled_reconcile_at.clone());
        if requested.is_some() && requested != handled {
            let status = json!({"status": {"lastHandledReconcileAt": requested}});
            repos
                .patch_status(
                    &repo.name_any(),
                    &PatchParams::default(),
                    &Patch::Merge(&status),
                )
                .await?;
        }
        Ok(Action::await_change())
    }

    let (server, _, repos) = default_repos().await;
    repos
        .create(&PostParams::default(), &repo("flux-repo", "u"))
        .await
        .unwrap();
    let controller = Controller::new(repos.clone(), watcher::Config::default())
        .run(
            reconcile,
            |_, _, _| Action::await_change(),
            Arc::new(repos.clone()),
        )
        .for_each(|_| async {});
    let controller = tokio::spawn(controller);

    for requested in ["first", "second"] {
        let annotate =
            json!({"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": requested}}});
        merge(&repos, "flux-repo", &annotate).await;
        eventually("the request to be handled", || {
            let stored = server
                .get(
                    "source.toolkit.fluxcd.io/v1",
                    "GitRepository",
                    "default",
                    "flux-repo",
                )
                .unwrap();
            stored["status"]["lastHandledReconcileAt"] == requested
        })
        .await;
    }
    let status_patches = server.requests().count(
        &RequestMatcher::any()
            .verb(Verb::Patch)
            .subresource("status"),
    );
    assert_eq!(status_patches, 2);
    controller.abort();
}

#[tokio::test]
async fn metadata_watcher_across_namespaces() {
    use k8s_openapi::api::core::v1::Namespace;

    let server = flux_server().await;
    let client = client(&server).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let flux_system: Namespace =
        serde_json::from_value(json!({"metadata": {"name": "flux-system"}})).unwrap();
    namespaces
        .create(&PostParams::default(), &flux_system)
        .await
        .unwrap();
    let all: Api<kube::core::PartialObjectMeta<GitRepository>> = Api::all(client.clone());
    let mut events = watcher::watcher(all, watcher::Config::default()).boxed();
    for _ in 0..2 {
        next(&mut events).await.unwrap(); // Init, InitDone: nothing exists yet.
    }
    for namespace in ["default", "flux-system"] {
        let repos: Api<GitRepository> = Api::namespaced(client.clone(), namespace);
        repos
            .create(&PostParams::default(), &repo("r", "u"))
            .await
            .unwrap();
    }
    let mut seen = Vec::new();
    for _ in 0..2 {
        match next(&mut events).await.unwrap() {
            Event::Apply(metadata) => seen.push(metadata.metadata.namespace.unwrap()),
            other => panic!("expected an apply, got {other:?}"),
        }
    }
    assert_eq!(seen, ["default", "flux-system"]);
    let watch = server
        .requests()
        .matching(&RequestMatcher::any().verb(Verb::Watch));
    assert_eq!(
        watch.last().unwrap().path,
        "/apis/source.toolkit.fluxcd.io/v1/gitrepositories"
    );
}
