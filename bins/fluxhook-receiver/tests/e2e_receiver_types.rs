//! Every Receiver type, end to end: the real `fluxhook-receiver` binary
//! against the fake Kubernetes API, with deliveries shaped like each
//! sender's own. A genuine delivery is answered 200 and its GitRepository is
//! patched with `reconcile.fluxcd.io/requestedAt`; a forged one, one for an
//! event the Receiver does not handle, or a payload the type cannot read is
//! answered 400 and patches nothing.
//!
//! One sandbox serves every case, each with its own Receiver and
//! GitRepository. Each refusal differs from the genuine delivery in one
//! respect, and most come before it, so that "no annotation" means never
//! annotated; every one is checked against the API server's request log
//! (no PATCH at all). `generic-oidc` and `gcr` tokens come from local test
//! issuers (the binary's `--gcr-issuer-url` points at one).
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use std::time::{SystemTime, UNIX_EPOCH};

use fluxhook_oidc::testing::TestIssuer;
use fluxhook_sandbox::Sandbox;
use fluxhook_signature::Policy;
use http::StatusCode;
use serde_json::{Value, json};

use e2e_support::{
    Delivery, NS, assert_accepted, assert_refused, base64, git_repository, has_condition, secret,
    serve, start, stop, wait_for_status, webhook_path,
};

const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;

/// A Receiver of `type_` (with `extra` merged into its spec) for a
/// GitRepository of its own, `app-<name>`; its webhook path.
async fn receiver_for(
    sandbox: &Sandbox,
    name: &str,
    token: &str,
    type_: &str,
    extra: Value,
) -> String {
    let repo = format!("app-{name}");
    git_repository(sandbox, NS, &repo, json!({}));
    let mut spec = json!({
        "type": type_,
        "resources": [{"kind": "GitRepository", "name": repo}]
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
        spec.extend(extra);
    }
    serve(sandbox, name, token, spec).await
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_type_accepts_genuine_deliveries_and_refuses_the_rest() {
    let google = TestIssuer::start_rs256().await.unwrap();
    let sandbox = start(&[&format!("--gcr-issuer-url={}", google.url())]).await;

    generic(&sandbox).await;
    generic_hmac(&sandbox).await;
    generic_oidc(&sandbox).await;
    github_and_gitea(&sandbox).await;
    gitlab(&sandbox).await;
    bitbucket_cloud_and_server(&sandbox).await;
    harbor(&sandbox).await;
    dockerhub(&sandbox).await;
    quay(&sandbox).await;
    nexus(&sandbox).await;
    acr(&sandbox).await;
    gcr(&sandbox, &google).await;
    cdevents(&sandbox).await;
    specs_flux_refuses_stall(&sandbox).await;

    stop(sandbox).await;
}

/// Specs Flux's reconciler refuses are `Ready=False` and `Stalled` with
/// Flux's reason, and never served, instead of served and failing every
/// delivery: `claims` is declared in the filters of `generic-oidc`
/// Receivers only, and only they may list `oidcProviders`; `*` needs
/// `matchLabels`.
async fn specs_flux_refuses_stall(s: &Sandbox) {
    git_repository(s, NS, "app-stalled", json!({}));
    secret(s, "stalled-token", &[("token", "stalled-token")]);
    let with = |extra: Value| {
        let mut spec = json!({
            "type": "github",
            "secretRef": {"name": "stalled-token"},
            "resources": [{"kind": "GitRepository", "name": "app-stalled"}]
        });
        if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        spec
    };
    let cases = [
        (
            "claims-on-github",
            with(json!({"resourceFilter": "claims.repository == 'example/app'"})),
            "InvalidCELExpression",
            "invalid resourceFilter expression: undeclared reference to 'claims'",
        ),
        (
            "claims-in-a-resource-filter",
            with(
                json!({"resources": [{"kind": "GitRepository", "name": "app-stalled",
                                        "filter": "claims.sub != ''"}]}),
            ),
            "InvalidCELExpression",
            "invalid filter expression for resources[0] (kind=\"GitRepository\", name=\"app-stalled\")",
        ),
        (
            "providers-on-github",
            with(json!({"oidcProviders": [{
                "issuerURL": "https://token.actions.githubusercontent.com",
                "validations": [{"expression": "claims.sub != ''", "message": "no"}]
            }]})),
            "ValidationFailed",
            "oidcProviders can only be set when type is generic-oidc",
        ),
        (
            // Flux refuses only a nil matchLabels, on every delivery (500);
            // `matchLabels: {}` selects all (e2e_selection.rs).
            "wildcard-without-match-labels",
            with(json!({"resources": [{"kind": "GitRepository", "name": "*"}]})),
            "ValidationFailed",
            "name '*' selects every GitRepository; add matchLabels",
        ),
    ];
    for (name, spec, reason, message) in cases {
        e2e_support::receiver(s, name, spec);
        let status = wait_for_status(s, name, |status| {
            has_condition(status, "Stalled", "True", Some(reason))
        })
        .await;
        assert!(
            has_condition(&status, "Ready", "False", Some(reason)),
            "{name}: {status}"
        );
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert!(
            ready["message"].as_str().unwrap().contains(message),
            "{name}: {status}"
        );
        assert!(status.get("webhookPath").is_none(), "{name}: {status}");
    }
}

async fn generic(s: &Sandbox) {
    let path = receiver_for(s, "generic", "generic-token", "generic", json!({})).await;
    // Knowing the path is the only proof: any body will do.
    let delivery = Delivery::json(&json!({"ref": "refs/heads/main", "after": "0d1a26e6"}));
    assert_accepted(s, "generic", &path, &delivery, &["app-generic"]).await;
    let text = Delivery::raw("deploy please").header("content-type", "text/plain");
    assert_accepted(s, "generic, any body", &path, &text, &["app-generic"]).await;
}

async fn generic_hmac(s: &Sandbox) {
    let token = "hmac-token";
    let path = receiver_for(s, "hmac", token, "generic-hmac", json!({})).await;
    let body = json!({"source": "ci", "pipeline": "build-42", "status": "succeeded"});
    let unsigned = Delivery::json(&body);
    let signed = unsigned.clone().signed(Policy::XSignature, token);
    let repo = "app-hmac";

    assert_refused(
        s,
        "generic-hmac unsigned",
        &path,
        &unsigned,
        BAD_REQUEST,
        repo,
    )
    .await;
    let wrong_key = unsigned.clone().signed(Policy::XSignature, "not-the-token");
    assert_refused(
        s,
        "generic-hmac wrong key",
        &path,
        &wrong_key,
        BAD_REQUEST,
        repo,
    )
    .await;
    let tampered = signed
        .clone()
        .with_body(br#"{"source": "attacker"}"#.to_vec());
    assert_refused(
        s,
        "generic-hmac tampered",
        &path,
        &tampered,
        BAD_REQUEST,
        repo,
    )
    .await;
    assert_accepted(s, "generic-hmac", &path, &signed, &[repo]).await;
}

async fn generic_oidc(s: &Sandbox) {
    let issuer = TestIssuer::start().await.unwrap();
    let stranger = TestIssuer::start().await.unwrap();
    let path = receiver_for(
        s,
        "oidc",
        "",
        "generic-oidc",
        json!({
            "oidcProviders": [{
                "issuerURL": issuer.url(),
                "variables": [{"name": "repo", "expression": "claims.repository"}],
                "validations": [{
                    "expression": "vars.repo == 'example/app' && claims.ref == 'refs/heads/main'",
                    "message": "only main of example/app may deploy"
                }]
            }]
        }),
    )
    .await;
    let repo = "app-oidc";
    let claims = |issuer: &TestIssuer, audience: &str, repository: &str| {
        let mut claims = issuer.claims(audience);
        claims["repository"] = json!(repository);
        claims["ref"] = json!("refs/heads/main");
        claims["sub"] = json!(format!("repo:{repository}:ref:refs/heads/main"));
        claims
    };
    let body = Delivery::json(&json!({"workflow": "deploy", "run_id": 9_876_543_210_u64}));
    let good = claims(&issuer, "notification-controller", "example/app");

    assert_refused(s, "generic-oidc no token", &path, &body, BAD_REQUEST, repo).await;
    let other_repo = body.clone().bearer(&issuer.mint(&claims(
        &issuer,
        "notification-controller",
        "example/fork",
    )));
    assert_refused(
        s,
        "generic-oidc rule fails",
        &path,
        &other_repo,
        BAD_REQUEST,
        repo,
    )
    .await;
    let wrong_audience =
        body.clone()
            .bearer(&issuer.mint(&claims(&issuer, "someone-else", "example/app")));
    assert_refused(
        s,
        "generic-oidc audience",
        &path,
        &wrong_audience,
        BAD_REQUEST,
        repo,
    )
    .await;
    let mut expired = good.clone();
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 1800);
    let expired = body.clone().bearer(&issuer.mint(&expired));
    assert_refused(
        s,
        "generic-oidc expired",
        &path,
        &expired,
        BAD_REQUEST,
        repo,
    )
    .await;
    let foreign = body.clone().bearer(&stranger.mint(&claims(
        &stranger,
        "notification-controller",
        "example/app",
    )));
    assert_refused(
        s,
        "generic-oidc other issuer",
        &path,
        &foreign,
        BAD_REQUEST,
        repo,
    )
    .await;
    let mut forged = good.clone();
    forged["iss"] = json!(issuer.url());
    let forged = body.clone().bearer(&stranger.mint(&forged));
    assert_refused(
        s,
        "generic-oidc forged iss",
        &path,
        &forged,
        BAD_REQUEST,
        repo,
    )
    .await;

    let genuine = body.bearer(&issuer.mint(&good));
    assert_accepted(s, "generic-oidc", &path, &genuine, &[repo]).await;
}

/// A GitHub push, as github.com sends it (the parts Flux could read).
fn github_push_body() -> Value {
    json!({
        "ref": "refs/heads/main",
        "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
        "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
        "created": false,
        "deleted": false,
        "forced": false,
        "head_commit": {
            "id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
            "message": "Bump app to v1.2.3",
            "timestamp": "2024-05-01T10:00:00Z"
        },
        "repository": {
            "id": 123_456_789,
            "name": "app",
            "full_name": "example/app",
            "private": false,
            "html_url": "https://github.com/example/app",
            "clone_url": "https://github.com/example/app.git",
            "default_branch": "main"
        },
        "pusher": {"name": "octocat", "email": "octocat@example.com"},
        "sender": {"login": "octocat", "id": 1}
    })
}

async fn github_and_gitea(s: &Sandbox) {
    let token = "github-token";
    let path = receiver_for(
        s,
        "github",
        token,
        "github",
        json!({"events": ["ping", "push"]}),
    )
    .await;
    let repo = "app-github";
    let push = Delivery::json(&github_push_body())
        .header("user-agent", "GitHub-Hookshot/5f9e3c1")
        .header("x-github-event", "push")
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("x-github-hook-id", "292430182");
    let signed = push.clone().signed(Policy::HubSignature, token);

    assert_refused(s, "github unsigned", &path, &push, BAD_REQUEST, repo).await;
    let wrong_key = push.clone().signed(Policy::HubSignature, "not-the-token");
    assert_refused(s, "github wrong key", &path, &wrong_key, BAD_REQUEST, repo).await;
    let tampered = signed
        .clone()
        .with_body(br#"{"ref": "refs/heads/evil"}"#.to_vec());
    assert_refused(s, "github tampered", &path, &tampered, BAD_REQUEST, repo).await;
    let issue_body = json!({"action": "opened", "issue": {"number": 1, "title": "Bug"},
        "repository": {"full_name": "example/app"}});
    let issue = Delivery::json(&issue_body)
        .header("x-github-event", "issues")
        .signed(Policy::HubSignature, token);
    assert_refused(
        s,
        "github event not in spec.events",
        &path,
        &issue,
        BAD_REQUEST,
        repo,
    )
    .await;

    assert_accepted(s, "github push", &path, &signed, &[repo]).await;

    // Gitea (and Forgejo) deliver to `github` Receivers with GitHub's event
    // and signature headers besides their own (go-gitea/gitea
    // services/webhook/deliver.go sets X-GitHub-Event and X-Hub-Signature-256).
    let gitea_body = json!({
        "ref": "refs/heads/main",
        "before": "28e1879d029cb852e4844d9c718537df08844e03",
        "after": "bffeb74224043ba2feb48d137756c8a9331c449a",
        "compare_url": "https://gitea.example.com/example/app/compare/28e1879...bffeb74",
        "commits": [{
            "id": "bffeb74224043ba2feb48d137756c8a9331c449a",
            "message": "Bump app to v1.2.4\n",
            "url": "https://gitea.example.com/example/app/commit/bffeb74",
            "author": {"name": "gitea", "email": "gitea@example.com", "username": "gitea"}
        }],
        "repository": {
            "id": 1,
            "owner": {"id": 1, "login": "example", "username": "example"},
            "name": "app",
            "full_name": "example/app",
            "html_url": "https://gitea.example.com/example/app",
            "clone_url": "https://gitea.example.com/example/app.git",
            "default_branch": "main"
        },
        "pusher": {"id": 1, "login": "gitea", "username": "gitea"},
        "sender": {"id": 1, "login": "gitea", "username": "gitea"}
    });
    let gitea = Delivery::json(&gitea_body)
        .header("user-agent", "Go-http-client/1.1")
        .header("x-gitea-event", "push")
        .header("x-gitea-event-type", "push")
        .header("x-gitea-delivery", "a6c7e1b0-5f0f-4c1e-9d0b-3f7a2f2b9c11")
        .header("x-github-event", "push")
        .header("x-github-event-type", "push")
        .header("x-github-delivery", "a6c7e1b0-5f0f-4c1e-9d0b-3f7a2f2b9c11")
        .signed(Policy::GiteaSignature, token)
        .signed(Policy::HubSignature, token);
    assert_accepted(s, "gitea push to a github receiver", &path, &gitea, &[repo]).await;
    let gitea_release = gitea
        .clone()
        .header("x-gitea-event", "release")
        .header("x-gitea-event-type", "release")
        .header("x-github-event", "release")
        .header("x-github-event-type", "release");
    assert_refused(
        s,
        "gitea event not in spec.events",
        &path,
        &gitea_release,
        BAD_REQUEST,
        repo,
    )
    .await;
    // Flux reads X-GitHub-Event alone (go-github's WebHookType): a delivery
    // naming its event only in Gitea's header has the empty event.
    let mut gitea_only = gitea.clone();
    gitea_only.headers.remove("x-github-event");
    assert_refused(
        s,
        "event only in X-Gitea-Event",
        &path,
        &gitea_only,
        BAD_REQUEST,
        repo,
    )
    .await;

    // go-github's ValidatePayload takes JSON or a form, by Content-Type,
    // before the signature: anything else is refused, signed or not.
    let text = push
        .clone()
        .header("content-type", "text/plain")
        .signed(Policy::HubSignature, token);
    assert_refused(s, "github text/plain", &path, &text, BAD_REQUEST, repo).await;
    let mut untyped = push.clone().signed(Policy::HubSignature, token);
    untyped.headers.remove("content-type");
    assert_refused(
        s,
        "github no Content-Type",
        &path,
        &untyped,
        BAD_REQUEST,
        repo,
    )
    .await;
    let form_body = format!("payload={}", url_escape(&github_push_body().to_string()));
    let form = push
        .clone()
        .with_body(form_body.into_bytes())
        .header("content-type", "application/x-www-form-urlencoded")
        .signed(Policy::HubSignature, token);
    assert_accepted(s, "github form-encoded push", &path, &form, &[repo]).await;
    let bad_form = push
        .with_body(b"payload=%7B;ref=main".to_vec())
        .header("content-type", "application/x-www-form-urlencoded")
        .signed(Policy::HubSignature, token);
    assert_refused(
        s,
        "github unreadable form",
        &path,
        &bad_form,
        BAD_REQUEST,
        repo,
    )
    .await;
}

/// Percent-escapes every byte but unreserved ones, as a form encoder does.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

async fn gitlab(s: &Sandbox) {
    let token = "gitlab-token";
    let path = receiver_for(
        s,
        "gitlab",
        token,
        "gitlab",
        json!({"events": ["Push Hook"]}),
    )
    .await;
    let repo = "app-gitlab";
    let body = json!({
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": "refs/heads/main",
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "user_username": "jsmith",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "app",
            "path_with_namespace": "example/app",
            "web_url": "https://gitlab.example.com/example/app",
            "git_http_url": "https://gitlab.example.com/example/app.git",
            "default_branch": "main"
        },
        "commits": [],
        "total_commits_count": 0
    });
    let push = Delivery::json(&body)
        .header("user-agent", "GitLab/17.0.0")
        .header("x-gitlab-event", "Push Hook")
        .header("x-gitlab-instance", "https://gitlab.example.com")
        .header(
            "x-gitlab-webhook-uuid",
            "5bb3e1d4-09ab-4c7c-8d8c-0b9c1c7b1f3e",
        )
        .header(
            "x-gitlab-event-uuid",
            "13792a34-cac6-4fda-95a8-c58e00a3954e",
        );

    assert_refused(s, "gitlab no token", &path, &push, BAD_REQUEST, repo).await;
    let wrong = push.clone().signed(Policy::GitlabToken, "not-the-token");
    assert_refused(s, "gitlab wrong token", &path, &wrong, BAD_REQUEST, repo).await;
    let tag = push
        .clone()
        .header("x-gitlab-event", "Tag Push Hook")
        .signed(Policy::GitlabToken, token);
    assert_refused(
        s,
        "gitlab event not in spec.events",
        &path,
        &tag,
        BAD_REQUEST,
        repo,
    )
    .await;

    let genuine = push.signed(Policy::GitlabToken, token);
    assert_accepted(s, "gitlab push", &path, &genuine, &[repo]).await;
}

async fn bitbucket_cloud_and_server(s: &Sandbox) {
    let token = "bitbucket-token";
    let path = receiver_for(
        s,
        "bitbucket",
        token,
        "bitbucket",
        json!({"events": ["repo:push", "repo:refs_changed"]}),
    )
    .await;
    let repo = "app-bitbucket";
    let cloud_body = json!({
        "push": {"changes": [{
            "new": {"type": "branch", "name": "main",
                    "target": {"type": "commit", "hash": "709d658dc5b6d6afcd46049c2f332ee3f515a67d"}},
            "old": {"type": "branch", "name": "main",
                    "target": {"type": "commit", "hash": "1e65c05c1d5171631d92438a13901ca7dae9618c"}},
            "created": false, "forced": false, "closed": false
        }]},
        "repository": {
            "type": "repository",
            "name": "app",
            "full_name": "example/app",
            "uuid": "{3f5b2d8e-8d0c-4f55-9a7c-6c2f4a9e0b11}",
            "links": {"html": {"href": "https://bitbucket.org/example/app"}}
        },
        "actor": {"type": "user", "display_name": "Jane Doe", "nickname": "jdoe"}
    });
    let cloud = Delivery::json(&cloud_body)
        .header("user-agent", "Bitbucket-Webhooks/2.0")
        .header("x-event-key", "repo:push")
        .header("x-hook-uuid", "cb6f8b3a-3d7e-4b2c-9e1f-2a8d5c4b7e90")
        .header("x-request-uuid", "0f3d8c2a-7b1e-4f6d-a5c9-8e2b1d4f7a63")
        .header("x-attempt-number", "1");

    assert_refused(
        s,
        "bitbucket cloud unsigned",
        &path,
        &cloud,
        BAD_REQUEST,
        repo,
    )
    .await;
    let wrong_key = cloud
        .clone()
        .signed(Policy::HubSignatureSha256, "not-the-token");
    assert_refused(
        s,
        "bitbucket wrong key",
        &path,
        &wrong_key,
        BAD_REQUEST,
        repo,
    )
    .await;
    let fork = cloud
        .clone()
        .header("x-event-key", "repo:fork")
        .signed(Policy::HubSignatureSha256, token);
    assert_refused(
        s,
        "bitbucket event not in spec.events",
        &path,
        &fork,
        BAD_REQUEST,
        repo,
    )
    .await;
    let cloud = cloud.signed(Policy::HubSignatureSha256, token);
    assert_accepted(s, "bitbucket cloud push", &path, &cloud, &[repo]).await;

    let server_body = json!({
        "eventKey": "repo:refs_changed",
        "date": "2024-05-01T10:00:00+0000",
        "actor": {"name": "admin", "emailAddress": "admin@example.com", "id": 1,
                  "displayName": "Administrator", "slug": "admin", "type": "NORMAL"},
        "repository": {
            "slug": "app", "id": 84, "name": "app", "scmId": "git", "state": "AVAILABLE",
            "project": {"key": "EX", "id": 84, "name": "Example", "type": "NORMAL"}
        },
        "changes": [{
            "ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"},
            "refId": "refs/heads/main",
            "fromHash": "ecddabb624f6f5ba43816f5926e580a5f680a932",
            "toHash": "178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
            "type": "UPDATE"
        }]
    });
    let server = Delivery::json(&server_body)
        .header(
            "user-agent",
            "Atlassian HttpClient 4.2.0 / Bitbucket-9.0.0 (9000000) / Default",
        )
        .header("x-event-key", "repo:refs_changed")
        .header("x-request-id", "a0b2c1d3-4e5f-6789-abcd-ef0123456789")
        .signed(Policy::HubSignatureSha256, token);
    assert_accepted(s, "bitbucket server push", &path, &server, &[repo]).await;
}

async fn harbor(s: &Sandbox) {
    let token = "harbor-token";
    let path = receiver_for(s, "harbor", token, "harbor", json!({})).await;
    let repo = "app-harbor";
    let body = json!({
        "type": "PUSH_ARTIFACT",
        "occur_at": 1_714_557_600,
        "operator": "admin",
        "event_data": {
            "resources": [{
                "digest": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
                "tag": "v1.2.3",
                "resource_url": "harbor.example.com/library/app:v1.2.3"
            }],
            "repository": {"date_created": 1_714_550_000, "name": "app", "namespace": "library",
                           "repo_full_name": "library/app", "repo_type": "private"}
        }
    });
    let push = Delivery::json(&body).header("user-agent", "Go-http-client/1.1");

    assert_refused(s, "harbor no token", &path, &push, BAD_REQUEST, repo).await;
    let wrong = push
        .clone()
        .signed(Policy::AuthorizationToken, "not-the-token");
    assert_refused(s, "harbor wrong token", &path, &wrong, BAD_REQUEST, repo).await;
    let genuine = push.signed(Policy::AuthorizationToken, token);
    assert_accepted(s, "harbor push", &path, &genuine, &[repo]).await;
}

async fn dockerhub(s: &Sandbox) {
    let path = receiver_for(s, "dockerhub", "dockerhub-token", "dockerhub", json!({})).await;
    let repo = "app-dockerhub";
    let body = json!({
        "callback_url": "https://registry.hub.docker.com/u/example/app/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1_714_557_600, "pusher": "example", "tag": "v1.2.3"},
        "repository": {
            "comment_count": 0, "date_created": 1_700_000_000, "is_private": false,
            "name": "app", "namespace": "example", "owner": "example",
            "repo_name": "example/app",
            "repo_url": "https://registry.hub.docker.com/u/example/app/",
            "star_count": 3, "status": "Active"
        }
    });
    let bad =
        Delivery::raw("<html>not a Docker Hub push</html>").header("content-type", "text/html");
    assert_refused(s, "dockerhub bad payload", &path, &bad, BAD_REQUEST, repo).await;
    // A field Flux reads, of another JSON type: Go's decoding fails.
    let mut wrong_type = body.clone();
    wrong_type["push_data"]["tag"] = json!(123);
    assert_refused(
        s,
        "dockerhub tag not a string",
        &path,
        &Delivery::json(&wrong_type),
        BAD_REQUEST,
        repo,
    )
    .await;
    assert_accepted(s, "dockerhub push", &path, &Delivery::json(&body), &[repo]).await;
    // Flux reads push_data.tag and repository.repo_url with Go's
    // json.Decoder: fields it does not declare never refuse a delivery,
    // and what follows the first JSON value is not read.
    let mut other_fields = body.clone();
    other_fields["repository"]["repo_name"] = json!({"not": "a string"});
    other_fields["callback_url"] = json!(42);
    let trailing = format!("{body}\n--trailer--");
    for (case, delivery) in [
        (
            "dockerhub, odd fields Flux skips",
            Delivery::json(&other_fields),
        ),
        (
            "dockerhub, text after the JSON",
            Delivery::raw(trailing).header("content-type", "application/json"),
        ),
    ] {
        assert_accepted(s, case, &path, &delivery, &[repo]).await;
    }
}

async fn quay(s: &Sandbox) {
    let path = receiver_for(s, "quay", "quay-token", "quay", json!({})).await;
    let repo = "app-quay";
    let body = json!({
        "name": "app",
        "repository": "example/app",
        "namespace": "example",
        "docker_url": "quay.io/example/app",
        "homepage": "https://quay.io/repository/example/app",
        "updated_tags": ["v1.2.3", "latest"]
    });
    let bad = Delivery::json(&json!(["quay.io/example/app"]));
    assert_refused(s, "quay bad payload", &path, &bad, BAD_REQUEST, repo).await;
    let tags_not_a_list = Delivery::json(&json!({"docker_url": "quay.io/example/app",
                                                "updated_tags": "v1.2.3"}));
    assert_refused(
        s,
        "quay tags not a list",
        &path,
        &tags_not_a_list,
        BAD_REQUEST,
        repo,
    )
    .await;
    assert_accepted(s, "quay push", &path, &Delivery::json(&body), &[repo]).await;
    // Flux declares docker_url and updated_tags only.
    let mut other_fields = body;
    other_fields["namespace"] = json!(7);
    other_fields["repository"] = json!(null);
    assert_accepted(
        s,
        "quay, odd fields Flux skips",
        &path,
        &Delivery::json(&other_fields),
        &[repo],
    )
    .await;
}

async fn nexus(s: &Sandbox) {
    let token = "nexus-token";
    let path = receiver_for(s, "nexus", token, "nexus", json!({})).await;
    let repo = "app-nexus";
    let body = json!({
        "timestamp": "2024-05-01T10:00:00.000+0000",
        "nodeId": "52905B51-085CCABB-CEBBEAAD-16F1E4D6-C3290A87",
        "initiator": "admin/10.0.0.12",
        "repositoryName": "docker-hosted",
        "action": "CREATED",
        "component": {
            "id": "08909bf0c86cf6c9b1ac1e2a9ad6e39e",
            "componentId": "ZG9ja2VyLWhvc3RlZDowODkwOWJmMGM4NmNmNmM5",
            "format": "docker",
            "name": "example/app",
            "version": "v1.2.3"
        }
    });
    let push = Delivery::json(&body)
        .header("user-agent", "Nexus/3.68.1-02 (OSS)")
        .header("x-nexus-webhook-id", "rm:repository:component")
        .header(
            "x-nexus-webhook-delivery",
            "7f4c8b2e-1a3d-4e5f-9b6c-2d8e0f1a3b5c",
        );

    assert_refused(s, "nexus unsigned", &path, &push, BAD_REQUEST, repo).await;
    let wrong_key = push.clone().signed(Policy::NexusSignature, "not-the-token");
    assert_refused(s, "nexus wrong key", &path, &wrong_key, BAD_REQUEST, repo).await;
    let garbled = push
        .clone()
        .with_body(b"repositoryName=docker-hosted".to_vec())
        .signed(Policy::NexusSignature, token);
    assert_refused(s, "nexus bad payload", &path, &garbled, BAD_REQUEST, repo).await;
    // Flux compares the signature with the lower-case hex of the HMAC, as
    // a string: upper-case hex does not match.
    let genuine = push.clone().signed(Policy::NexusSignature, token);
    let signature = genuine.headers["x-nexus-webhook-signature"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    let upper = genuine
        .clone()
        .header("x-nexus-webhook-signature", &signature);
    assert_refused(s, "nexus upper-case hex", &path, &upper, BAD_REQUEST, repo).await;
    assert_accepted(s, "nexus component created", &path, &genuine, &[repo]).await;
    // json.Unmarshal of {action, repositoryName}: other fields never refuse.
    let mut audit = body;
    audit["component"] = json!("not an object");
    let audit = push
        .with_body(audit.to_string().into_bytes())
        .signed(Policy::NexusSignature, token);
    assert_accepted(s, "nexus, odd fields Flux skips", &path, &audit, &[repo]).await;
}

async fn acr(s: &Sandbox) {
    let path = receiver_for(s, "acr", "acr-token", "acr", json!({})).await;
    let repo = "app-acr";
    let body = json!({
        "id": "cb8c3971-9adc-488b-xxxx-43cbb4974ff5",
        "timestamp": "2024-05-01T10:00:00.000000000Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 524,
            "digest": "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",
            "length": 524,
            "repository": "app",
            "tag": "v1.2.3"
        },
        "request": {
            "id": "3cbb6949-7549-4fa1-xxxx-a6d5451dffc7",
            "host": "example.azurecr.io",
            "method": "PUT",
            "useragent": "docker/24.0.7 go/go1.20.10 os/linux arch/amd64"
        }
    });
    let truncated = body.to_string();
    let truncated = Delivery::raw(&truncated.as_bytes()[..truncated.len() / 2])
        .header("content-type", "application/json");
    assert_refused(s, "acr bad payload", &path, &truncated, BAD_REQUEST, repo).await;
    assert_accepted(s, "acr push", &path, &Delivery::json(&body), &[repo]).await;
    // Flux declares action, target.repository and target.tag only: a
    // delivery without an action is taken.
    let mut other_fields = body;
    other_fields.as_object_mut().unwrap().remove("action");
    other_fields["request"] = json!("not an object");
    assert_accepted(
        s,
        "acr, no action and odd fields",
        &path,
        &Delivery::json(&other_fields),
        &[repo],
    )
    .await;
}

async fn gcr(s: &Sandbox, google: &TestIssuer) {
    let token = "gcr-token";
    let email = "gcr-push@example-project.iam.gserviceaccount.com";
    let audience = "https://flux-webhook.example.com/gcr";
    secret(
        s,
        "gcr-token",
        &[("token", token), ("email", email), ("audience", audience)],
    );
    let repo = "app-gcr";
    git_repository(s, NS, repo, json!({}));
    e2e_support::receiver(
        s,
        "gcr",
        json!({
            "type": "gcr",
            "secretRef": {"name": "gcr-token"},
            "resources": [{"kind": "GitRepository", "name": repo}],
            // Flux's documented filter: reconcile the object the tag names.
            "resourceFilter": "req.tag.contains(res.metadata.name)"
        }),
    );
    let path = webhook_path(s, "gcr").await;

    let digest = "gcr.io/example-project/app-gcr@sha256:6ec128e26cd5e3b5d5d8b1d8a8e0e9d0b4c1f2a3b4c5d6e7f8091a2b3c4d5e6f";
    let notification = json!({
        "action": "INSERT",
        "digest": digest,
        "tag": "gcr.io/example-project/app-gcr:v1.2.3"
    });
    let envelope = |data: &Value| {
        json!({
            "message": {
                "attributes": {},
                "data": base64(&data.to_string()),
                "messageId": "2070443601311540",
                "message_id": "2070443601311540",
                "publishTime": "2024-05-01T10:00:00.000Z",
                "publish_time": "2024-05-01T10:00:00.000Z"
            },
            "subscription": "projects/example-project/subscriptions/flux-gcr"
        })
    };
    let id_token = |email: &str, audience: &str| {
        let mut claims = google.claims(audience);
        claims["email"] = json!(email);
        claims["email_verified"] = json!(true);
        claims["sub"] = json!("113426153258163529111");
        google.mint(&claims)
    };
    let push = Delivery::json(&envelope(&notification)).header(
        "user-agent",
        "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    );

    assert_refused(s, "gcr no token", &path, &push, BAD_REQUEST, repo).await;
    let other_account = push
        .clone()
        .bearer(&id_token("someone@else.iam.gserviceaccount.com", audience));
    assert_refused(
        s,
        "gcr other account",
        &path,
        &other_account,
        BAD_REQUEST,
        repo,
    )
    .await;
    let other_audience = push
        .clone()
        .bearer(&id_token(email, "https://elsewhere.example.com"));
    assert_refused(
        s,
        "gcr other audience",
        &path,
        &other_audience,
        BAD_REQUEST,
        repo,
    )
    .await;
    let no_data = Delivery::json(&json!({"message": {"messageId": "1"}, "subscription": "x"}))
        .bearer(&id_token(email, audience));
    assert_refused(s, "gcr bad payload", &path, &no_data, BAD_REQUEST, repo).await;

    let genuine = push.bearer(&id_token(email, audience));
    assert_accepted(s, "gcr insert", &path, &genuine, &[repo]).await;

    // `req` is what Flux re-encodes of the notification: action, digest and
    // tag, each there, empty when missing. A push by digest has no tag, so
    // the filter is false, not an error; a notification without an action
    // is taken as Flux takes it.
    let signed = |notification: Value| {
        Delivery::json(&envelope(&notification)).bearer(&id_token(email, audience))
    };
    let by_digest = signed(json!({"action": "INSERT", "digest": digest}));
    assert_accepted(s, "gcr push by digest", &path, &by_digest, &[]).await;
    let no_action = signed(json!({"tag": "gcr.io/example-project/app-gcr:v1.2.4"}));
    assert_accepted(
        s,
        "gcr notification without action",
        &path,
        &no_action,
        &[repo],
    )
    .await;
    let other_image = signed(json!({"action": "INSERT", "tag": "gcr.io/example-project/other:v1"}));
    assert_accepted(s, "gcr other image", &path, &other_image, &[]).await;
    let extra = signed(json!({"action": "INSERT", "tag": "gcr.io/p/app-gcr:v2", "extra": 1}));
    assert_accepted(s, "gcr, a field Flux does not read", &path, &extra, &[repo]).await;
}

async fn cdevents(s: &Sandbox) {
    // The event type Flux filters on is the CloudEvent's, from the Ce-Type
    // header; the body is a CDEvent of its own type. A delivery whose
    // header says `cd.change.merged.v1` and whose body is a
    // `dev.cdevents.change.merged.0.2.0` is accepted by Flux.
    let header_type = "cd.change.merged.v1";
    let merged = "dev.cdevents.change.merged.0.2.0";
    let path = receiver_for(
        s,
        "cdevents",
        "cdevents-token",
        "cdevents",
        json!({"events": [header_type]}),
    )
    .await;
    let repo = "app-cdevents";
    // The CDEvents 0.4 shape the SDK Flux vendors reads: `context.version`.
    let cd_event = |event_type: &str, subject_type: &str| {
        json!({
            "context": {
                "version": "0.4.1",
                "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
                "source": "/ci/example/app",
                "type": event_type,
                "timestamp": "2024-05-01T10:00:00.315384Z"
            },
            "subject": {
                "id": "change-1234",
                "source": "/ci/example/app",
                "type": subject_type,
                "content": {"repository": {"id": "example/app", "source": "https://github.com"}}
            }
        })
    };
    // CloudEvents binary mode: the CDEvent is the body, the CloudEvent
    // attributes are headers.
    let binary = |ce_type: &str, body: &Value| {
        Delivery::json(body)
            .header("ce-specversion", "1.0")
            .header("ce-id", "271069a8-fc18-44f1-b38f-9d70a1695819")
            .header("ce-source", "/ci/example/app")
            .header("ce-type", ce_type)
    };

    let queued = "dev.cdevents.pipelinerun.queued.0.2.0";
    let other_event = binary("cd.pipelinerun.queued.v1", &cd_event(queued, "pipelineRun"));
    assert_refused(
        s,
        "cdevents Ce-Type not in spec.events",
        &path,
        &other_event,
        BAD_REQUEST,
        repo,
    )
    .await;
    let body_type_only = binary(merged, &cd_event(merged, "change"));
    assert_refused(
        s,
        "cdevents body type in spec.events, not the Ce-Type",
        &path,
        &body_type_only,
        BAD_REQUEST,
        repo,
    )
    .await;
    let mut no_subject = cd_event(merged, "change");
    no_subject.as_object_mut().unwrap().remove("subject");
    let bad = binary(header_type, &no_subject);
    assert_refused(s, "cdevents bad payload", &path, &bad, BAD_REQUEST, repo).await;
    let wrong_subject = binary(header_type, &cd_event(merged, "pipelineRun"));
    assert_refused(
        s,
        "cdevents subject type of another event",
        &path,
        &wrong_subject,
        BAD_REQUEST,
        repo,
    )
    .await;
    // CDEvents 0.5 names the version `specversion`: the 0.4 SDK misses it.
    let mut v05 = cd_event(merged, "change");
    let context = v05["context"].as_object_mut().unwrap();
    let version = context.remove("version").unwrap();
    context.insert("specversion".to_owned(), version);
    assert_refused(
        s,
        "cdevents context.specversion",
        &path,
        &binary(header_type, &v05),
        BAD_REQUEST,
        repo,
    )
    .await;
    // Structured mode (the CloudEvent is the body): Flux reads the body as
    // the CDEvent itself, and it is not one.
    let structured = Delivery::json(&json!({
        "specversion": "1.0",
        "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/ci/example/app",
        "type": header_type,
        "datacontenttype": "application/json",
        "data": cd_event(merged, "change")
    }))
    .header("content-type", "application/cloudevents+json");
    assert_refused(
        s,
        "cdevents structured mode",
        &path,
        &structured,
        BAD_REQUEST,
        repo,
    )
    .await;

    let genuine = binary(header_type, &cd_event(merged, "change"));
    assert_accepted(s, "cdevents binary mode", &path, &genuine, &[repo]).await;
    // No timestamp: the SDK marshals Go's zero time back, and takes it.
    let mut untimed = cd_event(merged, "change");
    untimed["context"]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    assert_accepted(
        s,
        "cdevents without a timestamp",
        &path,
        &binary(header_type, &untimed),
        &[repo],
    )
    .await;
}
