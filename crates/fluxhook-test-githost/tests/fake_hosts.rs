//! The fakes answer as their hosts document: credentials, routes, bodies, shapes, pages.

#![allow(clippy::unwrap_used)]

use fluxhook_test_githost::{FakeConfig, FakeHook, FakeHost, Fault, HostKind, RetryAfterHeader};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// The path of the hook collection of the fake's repository, under the API base.
fn hooks_path(host: &FakeHost) -> String {
    let (owner, repo) = (host.owner(), host.repo());
    match host.kind() {
        HostKind::GitHub | HostKind::Gitea | HostKind::Gogs => {
            format!("/repos/{owner}/{repo}/hooks")
        }
        HostKind::GitLab => format!("/projects/{}%2F{repo}/hooks", owner.replace('/', "%2F")),
        HostKind::BitbucketCloud => format!("/repositories/{owner}/{repo}/hooks"),
        HostKind::BitbucketServer => format!("/projects/{owner}/repos/{repo}/webhooks"),
    }
}

/// The credentials header each host documents.
fn auth(kind: HostKind, token: &str) -> (&'static str, String) {
    match kind {
        HostKind::GitLab => ("private-token", token.to_owned()),
        HostKind::Gitea | HostKind::Gogs => ("authorization", format!("token {token}")),
        _ => ("authorization", format!("Bearer {token}")),
    }
}

/// The status of a GET of the fake's hook collection by `client`, with the credentials the
/// host documents and `headers`.
async fn list_hooks(
    client: &reqwest::Client,
    host: &FakeHost,
    headers: &[(&str, &str)],
) -> StatusCode {
    let (name, value) = auth(host.kind(), host.token());
    let mut request = client
        .get(format!("{}{}", host.api_base(), hooks_path(host)))
        .header(name, value);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.unwrap().status()
}

async fn call(
    host: &FakeHost,
    method: Method,
    path: &str,
    header: (&str, String),
    body: Option<Value>,
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}{path}", host.api_base()))
        .header(header.0, header.1);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

/// PATCHes the hook the host answered its creation with (`created`, under the collection
/// `path`) with `edit`, with the host's credentials; the status and the reply.
async fn edit_hook(
    host: &FakeHost,
    path: &str,
    created: &Value,
    edit: Value,
) -> (StatusCode, Value) {
    let id = created["id"].as_u64().unwrap();
    let credentials = auth(host.kind(), host.token());
    let (status, _, edited) = call(
        host,
        Method::PATCH,
        &format!("{path}/{id}"),
        credentials,
        Some(edit),
    )
    .await;
    (status, edited)
}

fn valid_create_body(kind: HostKind) -> Value {
    let url = "https://flux.example.com/hook/1";
    match kind {
        HostKind::GitHub => {
            json!({"name": "web", "events": ["push"], "config": {"url": url, "content_type": "json", "secret": "s"}})
        }
        HostKind::GitLab => json!({"url": url, "token": "s", "push_events": true}),
        HostKind::BitbucketCloud => {
            json!({"description": "d", "url": url, "events": ["repo:push"], "secret": "s"})
        }
        HostKind::BitbucketServer => {
            json!({"name": "n", "url": url, "events": ["repo:refs_changed"], "configuration": {"secret": "s"}})
        }
        HostKind::Gitea => {
            json!({"type": "gitea", "config": {"url": url, "content_type": "json", "secret": "s"}, "events": ["push"], "active": true})
        }
        HostKind::Gogs => {
            json!({"type": "gogs", "config": {"url": url, "content_type": "json", "secret": "s"}, "events": ["push"], "active": true})
        }
    }
}

/// The host's error message, wherever its error shape keeps it.
fn message(body: &Value) -> String {
    for pointer in ["/message", "/error/message", "/errors/0/message", "/error"] {
        if let Some(text) = body.pointer(pointer).and_then(Value::as_str) {
            return text.to_owned();
        }
    }
    body.to_string()
}

#[tokio::test]
async fn wrong_credentials_are_401s_in_each_hosts_shape() {
    let expected = [
        (HostKind::GitHub, "Bad credentials"),
        (HostKind::GitLab, "401 Unauthorized"),
        (
            HostKind::BitbucketCloud,
            "Token is invalid, expired, or not supported for this endpoint.",
        ),
        (
            HostKind::BitbucketServer,
            "Authentication failed. Please check your credentials and try again.",
        ),
        (HostKind::Gitea, "token is required"),
    ];
    for (kind, text) in expected {
        let host = FakeHost::start(kind).await.unwrap();
        let path = hooks_path(&host);
        let (status, _, body) = call(&host, Method::GET, &path, auth(kind, "wrong"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{kind:?}");
        assert_eq!(message(&body), text, "{kind:?}");
        let (status, _, _) = call(&host, Method::GET, &path, ("x-other", "x".into()), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{kind:?}");
        let (status, _, _) = call(&host, Method::GET, &path, auth(kind, host.token()), None).await;
        assert_eq!(status, StatusCode::OK, "{kind:?}");
    }
}

#[tokio::test]
async fn gogs_refuses_a_wrong_token_as_its_admin_check_does() {
    // Gogs' `reqRepoAdmin` answers a caller it could not sign in with a bare 403.
    let host = FakeHost::start(HostKind::Gogs).await.unwrap();
    let path = hooks_path(&host);
    let (status, _, body) = call(
        &host,
        Method::GET,
        &path,
        auth(HostKind::Gogs, "wrong"),
        None,
    )
    .await;
    assert_eq!((status, body), (StatusCode::FORBIDDEN, Value::Null));
    let bearer = ("authorization", format!("Bearer {}", host.token()));
    let (status, _, _) = call(&host, Method::GET, &path, bearer, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "Gogs reads only `token`");
}

#[tokio::test]
async fn gogs_edits_keep_the_secret_and_deletes_of_missing_hooks_succeed() {
    let host = FakeHost::start(HostKind::Gogs).await.unwrap();
    let path = hooks_path(&host);
    let token = || auth(HostKind::Gogs, host.token());
    let (_, _, created) = call(
        &host,
        Method::POST,
        &path,
        token(),
        Some(valid_create_body(HostKind::Gogs)),
    )
    .await;
    let edit = json!({"config": {"url": "https://flux.example.com/hook/2", "secret": "new"}, "events": ["push", "pull_request"]});
    let (status, edited) = edit_hook(&host, &path, &created, edit).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(edited["events"], json!(["push", "pull_request"]));
    assert_eq!(host.hooks()[0].secret.as_deref(), Some("s"));
    assert_eq!(host.hooks()[0].url, "https://flux.example.com/hook/2");
    let (status, _, _) = call(&host, Method::DELETE, &format!("{path}/999"), token(), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let id = &created["id"];
    let (status, _, _) = call(&host, Method::GET, &format!("{path}/{id}"), token(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "Gogs has no GET of one hook");
}

#[tokio::test]
async fn each_host_accepts_its_documented_credential_forms_only() {
    let cases = [
        (HostKind::GitHub, "authorization", "token", true),
        (HostKind::GitLab, "authorization", "Bearer", true),
        (HostKind::Gitea, "authorization", "Bearer", true),
        (HostKind::BitbucketCloud, "authorization", "token", false),
        (HostKind::GitLab, "authorization", "token", false),
    ];
    for (kind, header, scheme, accepted) in cases {
        let host = FakeHost::start(kind).await.unwrap();
        let value = format!("{scheme} {}", host.token());
        let (status, _, _) = call(
            &host,
            Method::GET,
            &hooks_path(&host),
            (header, value),
            None,
        )
        .await;
        assert_eq!(status == StatusCode::OK, accepted, "{kind:?} {scheme}");
    }
}

#[tokio::test]
async fn unknown_repositories_routes_and_hooks_are_404s() {
    for kind in HostKind::ALL {
        let host = FakeHost::start(kind).await.unwrap();
        let good = hooks_path(&host);
        let token = || auth(kind, host.token());
        let wrong_repo = good.replace(host.repo(), "other-repo");
        let (status, _, body) = call(&host, Method::GET, &wrong_repo, token(), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{kind:?}");
        assert!(!message(&body).is_empty(), "{kind:?}");
        let (status, _, _) = call(&host, Method::GET, &format!("{good}/999"), token(), None).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{kind:?}");
        let (status, _, _) = call(&host, Method::PUT, &good, token(), Some(json!({}))).await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "{kind:?}: no PUT on the collection"
        );
    }
}

#[tokio::test]
async fn invalid_bodies_are_refused_as_the_host_does() {
    let expected = [
        (HostKind::GitHub, 422, "Validation Failed"),
        (HostKind::GitLab, 400, "url is missing"),
        (HostKind::BitbucketCloud, 400, "Bad request"),
        (HostKind::BitbucketServer, 400, "A name is required."),
        (HostKind::Gitea, 422, "[Type]: Required"),
        (HostKind::Gogs, 422, "Invalid hook type."),
    ];
    for (kind, code, text) in expected {
        let host = FakeHost::start(kind).await.unwrap();
        let path = hooks_path(&host);
        let (status, _, body) = call(
            &host,
            Method::POST,
            &path,
            auth(kind, host.token()),
            Some(json!({})),
        )
        .await;
        assert_eq!(status.as_u16(), code, "{kind:?}: {body}");
        assert_eq!(message(&body), text, "{kind:?}");
        assert!(host.hooks().is_empty());
        let (status, _, body) = call(
            &host,
            Method::POST,
            &path,
            auth(kind, host.token()),
            Some(valid_create_body(kind)),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{kind:?}: {body}");
        assert_eq!(host.hooks().len(), 1);
    }
}

#[tokio::test]
async fn replies_show_whether_a_secret_is_set_as_each_host_does() {
    for kind in HostKind::ALL {
        let host = FakeHost::start(kind).await.unwrap();
        let (_, _, hook) = call(
            &host,
            Method::POST,
            &hooks_path(&host),
            auth(kind, host.token()),
            Some(valid_create_body(kind)),
        )
        .await;
        let shown = match kind {
            HostKind::GitHub => hook.pointer("/config/secret").cloned(),
            HostKind::BitbucketCloud => hook.get("secret_set").cloned(),
            HostKind::BitbucketServer => hook.pointer("/configuration/secret").cloned(),
            HostKind::GitLab | HostKind::Gitea | HostKind::Gogs => None,
        };
        let expected = match kind {
            HostKind::GitHub => Some(json!("********")),
            HostKind::BitbucketCloud => Some(json!(true)),
            HostKind::BitbucketServer => Some(json!("s")),
            HostKind::GitLab | HostKind::Gitea | HostKind::Gogs => None,
        };
        assert_eq!(shown, expected, "{kind:?}: {hook}");
        assert!(!hook.to_string().contains("\"token\":\"s\""), "{kind:?}");
    }
}

#[tokio::test]
async fn gitea_creates_hooks_inactive_unless_asked() {
    let host = FakeHost::start(HostKind::Gitea).await.unwrap();
    let mut body = valid_create_body(HostKind::Gitea);
    body.as_object_mut().unwrap().remove("active");
    let (_, _, hook) = call(
        &host,
        Method::POST,
        &hooks_path(&host),
        auth(HostKind::Gitea, host.token()),
        Some(body),
    )
    .await;
    assert_eq!(hook["active"], json!(false));
}

#[tokio::test]
async fn github_refuses_unknown_api_versions() {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    let version = [("x-github-api-version", "1999-01-01")];
    let status = list_hooks(&reqwest::Client::new(), &host, &version).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn gitlab_accepts_the_numeric_project_id() {
    let host = FakeHost::start(HostKind::GitLab).await.unwrap();
    let (status, _, _) = call(
        &host,
        Method::GET,
        "/projects/3/hooks",
        auth(HostKind::GitLab, host.token()),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn pages_are_small_and_linked_in_each_hosts_style() {
    for kind in HostKind::ALL {
        let host = FakeHost::start_with(FakeConfig {
            page_size: 2,
            ..FakeConfig::new(kind)
        })
        .await
        .unwrap();
        for n in 0..3 {
            host.seed(FakeHook::new(format!("https://ci.example.com/{n}"), &[]));
        }
        let (_, headers, body) = call(
            &host,
            Method::GET,
            &hooks_path(&host),
            auth(kind, host.token()),
            None,
        )
        .await;
        let link = headers
            .get("link")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        match kind {
            HostKind::Gogs => {
                // Gogs lists every hook at once.
                assert_eq!(body.as_array().unwrap().len(), 3, "{kind:?}");
                assert!(link.is_empty() && !headers.contains_key("x-total-count"));
            }
            HostKind::Gitea => {
                // Counted, not linked.
                assert_eq!(body.as_array().unwrap().len(), 2, "{kind:?}");
                assert!(link.is_empty(), "{kind:?}: {link}");
                assert_eq!(headers["x-total-count"], "3");
            }
            HostKind::GitHub => {
                assert_eq!(body.as_array().unwrap().len(), 2, "{kind:?}");
                assert!(link.contains("page=2>; rel=\"next\""), "{kind:?}: {link}");
            }
            HostKind::GitLab => {
                assert_eq!(body.as_array().unwrap().len(), 2);
                assert_eq!(headers["x-next-page"], "2");
                assert_eq!(headers["x-total"], "3");
            }
            HostKind::BitbucketCloud => {
                assert_eq!(body["values"].as_array().unwrap().len(), 2);
                assert!(body["next"].as_str().unwrap().contains("page=2"), "{body}");
            }
            HostKind::BitbucketServer => {
                assert_eq!(body["values"].as_array().unwrap().len(), 2);
                assert_eq!(body["isLastPage"], json!(false));
                assert_eq!(body["nextPageStart"], json!(2));
            }
        }
    }
}

#[tokio::test]
async fn faults_are_served_in_order_then_normal_service_resumes() {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    host.inject(
        Fault::SecondaryRateLimit {
            retry_after: Some(RetryAfterHeader::Seconds(7)),
        },
        1,
    );
    host.inject(
        Fault::RateLimitExhausted {
            reset_after_secs: 30,
        },
        1,
    );
    host.inject(Fault::ServerError { status: 503 }, 1);
    let path = hooks_path(&host);
    let token = || auth(HostKind::GitHub, host.token());
    let (status, headers, body) = call(&host, Method::GET, &path, token(), None).await;
    assert_eq!(
        (status, &headers["retry-after"]),
        (StatusCode::FORBIDDEN, &"7".parse().unwrap())
    );
    assert!(message(&body).contains("secondary rate limit"));
    let (status, headers, _) = call(&host, Method::GET, &path, token(), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(headers["x-ratelimit-remaining"], "0");
    assert!(headers.contains_key("x-ratelimit-reset"));
    let (status, _, _) = call(&host, Method::GET, &path, token(), None).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    let (status, _, _) = call(&host, Method::GET, &path, token(), None).await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<u16> = host.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [403, 403, 503, 200]);
    // Each came before the 7 s the first asked for (then the quota's reset time).
    let early: Vec<bool> = host.requests().iter().map(|r| r.early).collect();
    assert_eq!(early, [false, true, true, true]);
}

#[tokio::test]
async fn a_hook_deleted_first_is_answered_as_missing() {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    let id = host.seed(FakeHook::new("https://flux.example.com/hook/1", &["push"]));
    host.inject(Fault::HookDeletedFirst, 1);
    let path = hooks_path(&host);
    let token = || auth(HostKind::GitHub, host.token());
    // Not a DELETE: served as usual, the fault stays queued.
    let (status, _, _) = call(&host, Method::GET, &path, token(), None).await;
    assert_eq!(status, StatusCode::OK);
    let item = format!("{path}/{id}");
    let (status, _, body) = call(&host, Method::DELETE, &item, token(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(message(&body), "Not Found");
    assert!(host.hooks().is_empty());
}

#[tokio::test]
async fn requests_are_recorded_with_their_bodies() {
    let host = FakeHost::start(HostKind::BitbucketServer).await.unwrap();
    let body = valid_create_body(HostKind::BitbucketServer);
    call(
        &host,
        Method::POST,
        &hooks_path(&host),
        auth(HostKind::BitbucketServer, host.token()),
        Some(body.clone()),
    )
    .await;
    let writes = host.writes();
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].method, "POST");
    assert_eq!(writes[0].body, Some(body));
    assert_eq!(writes[0].status, 201);
    host.clear_requests();
    assert!(host.requests().is_empty());
}

#[tokio::test]
async fn tls_fakes_are_trusted_only_with_their_ca() {
    let host = FakeHost::start_with(FakeConfig {
        tls: true,
        ..FakeConfig::new(HostKind::Gitea)
    })
    .await
    .unwrap();
    assert!(host.url().starts_with("https://127.0.0.1:"));
    let url = format!("{}{}", host.api_base(), hooks_path(&host));
    let untrusting = reqwest::Client::new();
    assert!(untrusting.get(&url).send().await.is_err());
    let ca = reqwest::Certificate::from_pem(FakeHost::ca_pem().as_bytes()).unwrap();
    let trusting = reqwest::Client::builder()
        .add_root_certificate(ca)
        .build()
        .unwrap();
    assert_eq!(list_hooks(&trusting, &host, &[]).await, StatusCode::OK);
}

#[tokio::test]
async fn redirects_wait_for_the_method_they_are_for() {
    let host = FakeHost::start(HostKind::GitHub).await.unwrap();
    host.inject(
        Fault::Redirect {
            status: 308,
            location: "https://elsewhere.example/hooks".into(),
            method: Some("POST".into()),
        },
        1,
    );
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let url = format!("{}{}", host.api_base(), hooks_path(&host));
    let (name, value) = auth(HostKind::GitHub, host.token());
    let listed = no_redirects
        .get(&url)
        .header(name, &value)
        .header("user-agent", "t")
        .send()
        .await
        .unwrap();
    assert_eq!(listed.status(), StatusCode::OK);
    let created = no_redirects
        .post(&url)
        .header(name, &value)
        .header("user-agent", "t")
        .json(&valid_create_body(HostKind::GitHub))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::PERMANENT_REDIRECT);
    assert_eq!(
        created.headers()["location"],
        "https://elsewhere.example/hooks"
    );
    assert!(host.hooks().is_empty());
}

#[tokio::test]
async fn gitea_reads_events_back_expanded() {
    let host = FakeHost::start(HostKind::Gitea).await.unwrap();
    let path = hooks_path(&host);
    let token = || auth(HostKind::Gitea, host.token());
    let mut body = valid_create_body(HostKind::Gitea);
    body["events"] = json!(["pull_request"]);
    let (_, _, created) = call(&host, Method::POST, &path, token(), Some(body)).await;
    let events: Vec<&str> = created["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert!(events.contains(&"pull_request_sync"), "{events:?}");
    assert!(events.contains(&"pull_request_comment"), "{events:?}");
    assert!(!events.contains(&"push"), "{events:?}");
    let edit = json!({"events": ["push", "pull_request_only", "pull_request_sync"]});
    let (_, edited) = edit_hook(&host, &path, &created, edit).await;
    assert_eq!(
        edited["events"],
        json!(["push", "pull_request", "pull_request_sync"])
    );
    let (_, reset) = edit_hook(&host, &path, &created, json!({})).await;
    assert_eq!(
        reset["events"],
        json!(["push"]),
        "no events given means push"
    );
}

#[tokio::test]
async fn gitlab_hook_events_are_paged_newest_first_and_missing_before_17_3() {
    let host = FakeHost::start(HostKind::GitLab).await.unwrap();
    let mut hook = FakeHook::new("https://r.example/hook", &["push_events"]);
    hook.delivery_events = vec!["500".into(), "internal error".into(), "200".into()];
    let id = host.seed(hook);
    let events = format!("{}/{id}/events", hooks_path(&host));
    let token = || auth(HostKind::GitLab, host.token());

    let (status, headers, body) = call(&host, Method::GET, &events, token(), None).await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response_status"].as_str().unwrap())
        .collect();
    // The fake's page size (2) caps GitLab's default of 20.
    assert_eq!(statuses, ["500", "internal error"]);
    assert_eq!(headers["x-next-page"], "2");
    assert_eq!(body[0]["request_headers"]["X-Gitlab-Token"], "[REDACTED]");
    assert!(body[0]["execution_duration"].is_f64());

    let newest = format!("{events}?per_page=1");
    let (_, headers, body) = call(&host, Method::GET, &newest, token(), None).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["response_status"], "500");
    assert_eq!(headers["x-total"], "3");

    let missing = format!("{}/999/events", hooks_path(&host));
    let (status, _, _) = call(&host, Method::GET, &missing, token(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    host.without_hook_events();
    let (status, _, body) = call(&host, Method::GET, &events, token(), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    let (status, _, _) = call(&host, Method::GET, &hooks_path(&host), token(), None).await;
    assert_eq!(status, StatusCode::OK);
}
