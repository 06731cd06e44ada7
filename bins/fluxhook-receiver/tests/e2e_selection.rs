//! Which requests reach a Receiver and which objects a delivery asks Flux to
//! reconcile, end to end with the real `fluxhook-receiver` binary against
//! the fake Kubernetes API: unknown paths (404) and oversized bodies (413)
//! reach none; a Receiver selects objects by name and by `*` with
//! `matchLabels` (`{}` selecting every object of the kind), in its
//! namespace or another; `spec.resourceFilter` and
//! `spec.resources[].filter` (CEL over `req` and `res`) leave out the
//! objects they do not hold for; `--no-cross-namespace-refs` refuses
//! references to other namespaces.
//!
//! Each test runs one sandbox for all its cases, each with its own
//! Receiver and GitRepositories.
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use fluxhook_sandbox::Sandbox;
use http::StatusCode;
use serde_json::{Value, json};

use e2e_support::{
    Delivery, NS, RECEIVER_API_VERSION, assert_accepted, assert_refused, eventually,
    git_repository, has_condition, namespace, post, repo_patches, serve, start, stop,
    wait_for_status,
};

/// The body limit, as Flux's.
const MAX_BODY: usize = 3 * 1024 * 1024;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_reach_the_selected_objects_that_pass_the_filters() {
    let sandbox = start(&[]).await;

    unknown_paths_are_not_found(&sandbox).await;
    bodies_over_three_mebibytes_are_too_large(&sandbox).await;
    objects_are_selected_by_name_and_by_labels(&sandbox).await;
    empty_match_labels_select_every_object_of_the_kind(&sandbox).await;
    other_namespaces_are_reachable_by_default(&sandbox).await;
    resource_filter_decides_per_object(&sandbox).await;
    per_resource_filter_decides_for_its_resource(&sandbox).await;
    colliding_paths_serve_one_receiver_and_then_the_other(&sandbox).await;

    stop(sandbox).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cross_namespace_refs_refuses_other_namespaces() {
    let sandbox = start(&["--no-cross-namespace-refs"]).await;
    namespace(&sandbox, "apps");
    git_repository(&sandbox, "apps", "app", json!({}));
    git_repository(&sandbox, NS, "app", json!({}));
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));

    let elsewhere = serve(
        &sandbox,
        "elsewhere",
        "elsewhere-token",
        json!({
            "type": "generic",
            "resources": [{"kind": "GitRepository", "name": "app", "namespace": "apps"}]
        }),
    )
    .await;
    let before = repo_patches(&sandbox).len();
    let status = post(&sandbox, &elsewhere, &push).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(repo_patches(&sandbox).len(), before, "nothing is patched");
    assert_eq!(e2e_support::requested_at(&sandbox, "apps", "app"), None);
    // Log lines are written by a thread of their own, after the answer.
    eventually(
        &sandbox,
        "the log names the cross-namespace reference",
        || {
            sandbox
                .receiver_log()
                .contains("cross-namespace references are not allowed")
        },
    )
    .await;

    // A Receiver naming objects of its own namespace, explicitly or not, is
    // served as ever.
    let here = serve(
        &sandbox,
        "here",
        "here-token",
        json!({
            "type": "generic",
            "resources": [{"kind": "GitRepository", "name": "app", "namespace": NS}]
        }),
    )
    .await;
    assert_accepted(&sandbox, "same namespace", &here, &push, &["app"]).await;

    stop(sandbox).await;
}

async fn unknown_paths_are_not_found(s: &Sandbox) {
    git_repository(s, NS, "app-known", json!({}));
    let known = serve(
        s,
        "known",
        "known-token",
        json!({"type": "generic", "resources": [{"kind": "GitRepository", "name": "app-known"}]}),
    )
    .await;
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));
    let repo = "app-known";

    let digest = known.trim_start_matches("/hook/");
    let mut guessed = digest.to_owned();
    // The same length, one character off.
    let last = if guessed.ends_with('0') { "1" } else { "0" };
    guessed.replace_range(guessed.len() - 1.., last);
    for path in [
        format!("/hook/{guessed}"),
        format!("/hook/{}", "0".repeat(64)),
        format!("/hook/{digest}/extra"),
        "/hook/".to_owned(),
        format!("/{digest}"),
        "/".to_owned(),
    ] {
        assert_refused(
            s,
            &format!("POST {path}"),
            &path,
            &push,
            StatusCode::NOT_FOUND,
            repo,
        )
        .await;
    }
    assert_accepted(s, "the known path", &known, &push, &[repo]).await;
}

async fn bodies_over_three_mebibytes_are_too_large(s: &Sandbox) {
    git_repository(s, NS, "app-big", json!({}));
    let path = serve(
        s,
        "big",
        "big-token",
        json!({"type": "generic", "resources": [{"kind": "GitRepository", "name": "app-big"}]}),
    )
    .await;
    let repo = "app-big";
    let over = Delivery::raw(vec![b' '; MAX_BODY + 1]).header("content-type", "text/plain");
    assert_refused(
        s,
        "3 MiB + 1 byte",
        &path,
        &over,
        StatusCode::PAYLOAD_TOO_LARGE,
        repo,
    )
    .await;
    let at_limit = Delivery::raw(vec![b' '; MAX_BODY]).header("content-type", "text/plain");
    assert_accepted(s, "3 MiB exactly", &path, &at_limit, &[repo]).await;
}

async fn objects_are_selected_by_name_and_by_labels(s: &Sandbox) {
    git_repository(s, NS, "named", json!({}));
    git_repository(s, NS, "platform-a", json!({"team": "platform"}));
    git_repository(
        s,
        NS,
        "platform-b",
        json!({"team": "platform", "tier": "edge"}),
    );
    git_repository(s, NS, "apps-c", json!({"team": "apps"}));
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));

    let path = serve(
        s,
        "selector",
        "selector-token",
        json!({
            "type": "generic",
            "resources": [
                {"kind": "GitRepository", "name": "named"},
                {"kind": "GitRepository", "name": "*", "matchLabels": {"team": "platform"}}
            ]
        }),
    )
    .await;
    assert_accepted(
        s,
        "by name and by labels",
        &path,
        &push,
        &["named", "platform-a", "platform-b"],
    )
    .await;

    let narrower = serve(
        s,
        "narrower",
        "narrower-token",
        json!({
            "type": "generic",
            "resources": [{"kind": "GitRepository", "name": "*",
                           "matchLabels": {"team": "platform", "tier": "edge"}}]
        }),
    )
    .await;
    assert_accepted(
        s,
        "every label must match",
        &narrower,
        &push,
        &["platform-b"],
    )
    .await;

    // As in Flux, a `*` matching nothing is no error.
    let nobody = serve(
        s,
        "nobody",
        "nobody-token",
        json!({
            "type": "generic",
            "resources": [{"kind": "GitRepository", "name": "*", "matchLabels": {"team": "nobody"}}]
        }),
    )
    .await;
    assert_accepted(s, "a selection of nothing", &nobody, &push, &[]).await;
}

/// `name: '*'` with `matchLabels: {}` selects every object of the kind in
/// the namespace, as in Flux: its `notifyDynamicResources` refuses only a
/// nil `matchLabels` and lists with the empty selector otherwise.
async fn empty_match_labels_select_every_object_of_the_kind(s: &Sandbox) {
    namespace(s, "everything");
    git_repository(s, "everything", "labelled", json!({"team": "platform"}));
    git_repository(s, "everything", "unlabelled", json!({}));
    let path = serve(
        s,
        "everything",
        "everything-token",
        json!({
            "type": "generic",
            "resources": [{"kind": "GitRepository", "name": "*", "namespace": "everything",
                           "matchLabels": {}}]
        }),
    )
    .await;
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));
    assert_accepted(
        s,
        "matchLabels {}",
        &path,
        &push,
        &["everything/labelled", "everything/unlabelled"],
    )
    .await;
}

async fn other_namespaces_are_reachable_by_default(s: &Sandbox) {
    namespace(s, "apps");
    git_repository(s, "apps", "frontend", json!({}));
    git_repository(s, "apps", "backend", json!({"team": "shop"}));
    let path = serve(
        s,
        "cross",
        "cross-token",
        json!({
            "type": "generic",
            "resources": [
                {"kind": "GitRepository", "name": "frontend", "namespace": "apps"},
                {"kind": "GitRepository", "name": "*", "namespace": "apps",
                 "matchLabels": {"team": "shop"}}
            ]
        }),
    )
    .await;
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));
    assert_accepted(
        s,
        "cross-namespace",
        &path,
        &push,
        &["apps/frontend", "apps/backend"],
    )
    .await;
}

async fn resource_filter_decides_per_object(s: &Sandbox) {
    git_repository(
        s,
        NS,
        "shop-frontend",
        json!({"app": "shop", "tier": "frontend"}),
    );
    git_repository(
        s,
        NS,
        "shop-backend",
        json!({"app": "shop", "tier": "backend"}),
    );
    let path = serve(
        s,
        "filtered",
        "filtered-token",
        json!({
            "type": "generic",
            "resources": [{"kind": "GitRepository", "name": "*", "matchLabels": {"app": "shop"}}],
            "resourceFilter": "res.metadata.labels.tier == req.tier"
        }),
    )
    .await;
    let tier = |tier: &str| Delivery::json(&json!({"tier": tier, "image": "shop:v2"}));

    assert_accepted(
        s,
        "filter true for one",
        &path,
        &tier("frontend"),
        &["shop-frontend"],
    )
    .await;
    assert_accepted(
        s,
        "filter true for the other",
        &path,
        &tier("backend"),
        &["shop-backend"],
    )
    .await;
    assert_accepted(s, "filter false for both", &path, &tier("database"), &[]).await;
    // Not JSON: `req` is empty, and reading a field of it is an error, so
    // reconciling is not requested and the sender is told.
    let form =
        Delivery::raw("tier=frontend").header("content-type", "application/x-www-form-urlencoded");
    // JSON as Flux's isJSONContent tells it: any comma-separated part of
    // the Content-Type is `application/json`, up to the first part Go's
    // mime.ParseMediaType refuses (a parameter without a value).
    let listed = tier("frontend").header("content-type", "nonsense, application/json");
    assert_accepted(
        s,
        "JSON among media types",
        &path,
        &listed,
        &["shop-frontend"],
    )
    .await;
    let refused_first = tier("frontend").header("content-type", "application/json; charset");
    for not_json in [form, refused_first] {
        let before = repo_patches(s).len();
        let status = post(s, &path, &not_json).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(repo_patches(s).len(), before);
    }
}

async fn per_resource_filter_decides_for_its_resource(s: &Sandbox) {
    git_repository(s, NS, "released", json!({}));
    git_repository(s, NS, "always", json!({}));
    let path = serve(
        s,
        "per-resource",
        "per-resource-token",
        json!({
            "type": "generic",
            "resources": [
                {"kind": "GitRepository", "name": "released",
                 "filter": "req.action == 'release' && res.metadata.name == 'released'"},
                {"kind": "GitRepository", "name": "always"}
            ]
        }),
    )
    .await;
    let action = |action: &str| Delivery::json(&json!({"action": action, "version": "1.2.3"}));
    assert_accepted(
        s,
        "own filter true",
        &path,
        &action("release"),
        &["released", "always"],
    )
    .await;
    assert_accepted(s, "own filter false", &path, &action("build"), &["always"]).await;
}

/// The webhook path hashes token, name and namespace one after the other,
/// so Receivers `ab` with token `collide-` and `b` with token `collide-a`
/// share one. Flux serves whichever its cache lists first; fluxhook serves
/// the one created first (then by namespace and name), says so in both
/// statuses, and never leaves the path unserved while one of them remains.
async fn colliding_paths_serve_one_receiver_and_then_the_other(s: &Sandbox) {
    git_repository(s, NS, "app-ab", json!({}));
    git_repository(s, NS, "app-b", json!({}));
    let spec = |repo: &str| json!({"type": "generic", "resources": [{"kind": "GitRepository", "name": repo}]});
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));
    let conflict =
        |status: &Value| has_condition(status, "Ready", "False", Some("WebhookPathConflict"));
    let ready_message = |status: &Value| -> String {
        status["conditions"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|c| c["type"] == "Ready")
            .and_then(|c| c["message"].as_str())
            .unwrap_or_default()
            .to_owned()
    };

    // `ab` is created first, and also sorts first: it is served whatever
    // the creation times' resolution.
    let path = serve(s, "ab", "collide-", spec("app-ab")).await;
    e2e_support::secret(s, "b-token", &[("token", "collide-a")]);
    let mut b = spec("app-b");
    b["secretRef"] = json!({"name": "b-token"});
    e2e_support::receiver(s, "b", b.clone());
    let status = wait_for_status(s, "b", conflict).await;
    assert!(
        has_condition(&status, "Stalled", "True", Some("WebhookPathConflict")),
        "{status}"
    );
    assert!(
        ready_message(&status).contains(&format!("is also the path of Receiver {NS}/ab")),
        "{status}"
    );
    assert!(status.get("webhookPath").is_none(), "{status}");
    let served = wait_for_status(s, "ab", |status| {
        ready_message(status).contains(&format!("Receiver {NS}/b has the same path"))
    })
    .await;
    assert_eq!(served["webhookPath"], path.as_str(), "{served}");
    assert_accepted(
        s,
        "collision: the older is served",
        &path,
        &push,
        &["app-ab"],
    )
    .await;

    // The one not served goes: the served one stays, and is told.
    delete_receiver(s, "b").await;
    wait_for_status(s, "ab", |status| {
        ready_message(status) == format!("Receiver initialized for path: {path}")
    })
    .await;
    assert_accepted(s, "collision: rival deleted", &path, &push, &["app-ab"]).await;

    // Back again, it is the newer one and waits; when the served one goes,
    // it is served at once.
    e2e_support::receiver(s, "b", b);
    wait_for_status(s, "b", conflict).await;
    assert_accepted(s, "collision: rival back", &path, &push, &["app-ab"]).await;
    delete_receiver(s, "ab").await;
    let status = wait_for_status(s, "b", |status| {
        has_condition(status, "Ready", "True", Some("Succeeded"))
    })
    .await;
    assert_eq!(status["webhookPath"], path.as_str(), "{status}");
    assert_accepted(
        s,
        "collision: the served one deleted",
        &path,
        &push,
        &["app-b"],
    )
    .await;
}

/// Deletes the Receiver `NS/name` as `kubectl delete` does and waits until
/// it is gone (the binary removes its finalizer).
async fn delete_receiver(s: &Sandbox, name: &str) {
    e2e_support::delete_receiver(s, name).await;
    eventually(s, &format!("Receiver {name} to be gone"), || {
        s.get(RECEIVER_API_VERSION, "Receiver", NS, name).is_none()
    })
    .await;
}
