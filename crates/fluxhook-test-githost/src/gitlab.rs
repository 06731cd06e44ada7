//! GitLab REST API: project webhooks (`/projects/{id or url-encoded path}/hooks`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Map, Value, json};

use crate::dialect::{
    CREATED_AT, Ctx, Dialect, Reply, Target, Write, has_credentials, is_http_url, link_header,
    page_count, page_window,
};
use crate::{FakeConfig, FakeHook};

pub(crate) struct GitLab;

/// The numeric id of the fake's project (GitLab accepts it in place of the path).
const PROJECT_ID: u64 = 3;

/// The event flags of a project hook; `push_events` is on unless a request turns it off.
/// They are those GitLab's `API::Entities::ProjectHook` (`lib/api/entities/project_hook.rb`)
/// exposes.
const EVENT_FLAGS: [&str; 17] = [
    "push_events",
    "tag_push_events",
    "merge_requests_events",
    "issues_events",
    "confidential_issues_events",
    "note_events",
    "confidential_note_events",
    "job_events",
    "pipeline_events",
    "wiki_page_events",
    "deployment_events",
    "releases_events",
    "feature_flag_events",
    "emoji_events",
    "milestone_events",
    "resource_access_token_events",
    "vulnerability_events",
];

fn bad_request(error: &str) -> Reply {
    Reply::json(StatusCode::BAD_REQUEST, json!({ "error": error }))
}

/// Applies the attributes of a create or edit body; GitLab demands `url` in both.
fn apply(body: &Value, hook: &mut FakeHook) -> Result<(), Reply> {
    let Some(url) = body.get("url") else {
        return Err(bad_request("url is missing"));
    };
    let Some(url) = url.as_str().filter(|u| is_http_url(u)) else {
        return Err(Reply::json(
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": {"url": ["is blocked: Only allowed schemes are http, https"]}}),
        ));
    };
    hook.url = url.to_owned();
    for flag in EVENT_FLAGS {
        match body.get(flag).map(Value::as_bool) {
            None => {}
            Some(None) => return Err(bad_request(&format!("{flag} is invalid"))),
            Some(Some(on)) => {
                hook.events.retain(|e| e != flag);
                if on {
                    hook.events.push(flag.to_owned());
                }
            }
        }
    }
    match body.get("enable_ssl_verification").map(Value::as_bool) {
        None => {}
        Some(None) => return Err(bad_request("enable_ssl_verification is invalid")),
        Some(Some(on)) => hook.tls_verification = on,
    }
    for (field, slot) in [
        ("token", &mut hook.secret),
        ("name", &mut hook.name),
        ("description", &mut hook.description),
    ] {
        match body.get(field).map(Value::as_str) {
            None => {}
            Some(None) => return Err(bad_request(&format!("{field} is invalid"))),
            Some(Some(text)) => *slot = (!text.is_empty()).then(|| text.to_owned()),
        }
    }
    Ok(())
}

impl Dialect for GitLab {
    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target> {
        let [projects, project, hooks, rest @ ..] = segments else {
            return None;
        };
        let path = format!("{}/{}", config.owner, config.repo);
        let project_matches = projects == "projects"
            && hooks == "hooks"
            && (project.eq_ignore_ascii_case(&path) || *project == PROJECT_ID.to_string());
        match (project_matches, rest) {
            (true, []) => Some(Target::Collection),
            (true, [id]) => Some(Target::Item(id.clone())),
            (true, [id, events]) if events == "events" => Some(Target::Events(id.clone())),
            _ => None,
        }
    }

    fn authorized(&self, config: &FakeConfig, headers: &HeaderMap) -> bool {
        let private_token = headers
            .get("private-token")
            .is_some_and(|v| v.as_bytes() == config.token.as_bytes());
        private_token || has_credentials(headers, "authorization", "Bearer", &config.token)
    }

    fn error(&self, _ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply {
        Reply::json(
            status,
            json!({ "message": format!("{} {message}", status.as_u16()) }),
        )
    }

    fn unauthorized(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::UNAUTHORIZED, "Unauthorized")
    }

    fn not_found(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::NOT_FOUND, "Project Not Found")
    }

    fn hook_not_found(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::NOT_FOUND, "Not found")
    }

    fn rate_limit_headers(&self) -> (&'static str, &'static str) {
        ("ratelimit-remaining", "ratelimit-reset")
    }

    fn update_method(&self) -> Method {
        Method::PUT
    }

    fn create(&self, _ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply> {
        let mut hook = FakeHook::new("", &["push_events"]);
        apply(write.body, &mut hook)?;
        Ok(hook)
    }

    fn update(&self, _ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply> {
        apply(write.body, hook)
    }

    fn render(&self, _ctx: &Ctx<'_>, hook: &FakeHook) -> Value {
        let mut reply = Map::new();
        reply.insert("id".into(), json!(hook.id));
        reply.insert("url".into(), json!(hook.url));
        // Both are nullable columns (GitLab 17.1+): a hook made without them shows nulls.
        reply.insert("name".into(), json!(hook.name));
        reply.insert("description".into(), json!(hook.description));
        reply.insert("project_id".into(), json!(PROJECT_ID));
        for flag in EVENT_FLAGS {
            reply.insert(flag.into(), json!(hook.events.iter().any(|e| e == flag)));
        }
        reply.insert("push_events_branch_filter".into(), json!(""));
        reply.insert("branch_filter_strategy".into(), json!("wildcard"));
        reply.insert(
            "enable_ssl_verification".into(),
            json!(hook.tls_verification),
        );
        // A hook GitLab disabled after 4xx answers, or for a while after 5xx answers
        // (gitlab-org/gitlab!89322: `alert_status` executable, disabled or
        // temporarily_disabled, with `disabled_until`); an edit does not enable it again, only
        // a successful test delivery does.
        let alert_status = match (hook.active, &hook.disabled_until) {
            (true, _) => "executable",
            (false, Some(_)) => "temporarily_disabled",
            (false, None) => "disabled",
        };
        reply.insert("alert_status".into(), json!(alert_status));
        let until = hook.disabled_until.as_ref().filter(|_| !hook.active);
        reply.insert("disabled_until".into(), json!(until));
        reply.insert("url_variables".into(), json!([]));
        reply.insert("custom_headers".into(), json!([]));
        reply.insert("created_at".into(), json!(CREATED_AT));
        Value::Object(reply)
    }

    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply {
        let per_page = ctx.page_size("per_page", 20, 100);
        paged(ctx, per_page, hooks, |hook| self.render(ctx, hook))
    }

    /// "Get a list of project webhook events" (GitLab 17.3+, gitlab-org/gitlab!151048,
    /// doc/api/project_webhooks.md): the hook's deliveries of the past 7 days, newest first,
    /// `per_page` 20 by default, each shaped as the docs' example response (the token in
    /// the request headers shown as `[REDACTED]`, `response_status` a string).
    fn events(&self, ctx: &Ctx<'_>, hook: &FakeHook) -> Reply {
        let per_page = ctx.page_size("per_page", 20, 100);
        let count = hook.delivery_events.len();
        let numbered: Vec<(usize, &String)> = hook.delivery_events.iter().enumerate().collect();
        paged(ctx, per_page, &numbered, |(index, status)| {
            json!({
                "id": count - index,
                "url": hook.url,
                "trigger": "push_hooks",
                "request_headers": {
                    "Content-Type": "application/json",
                    "User-Agent": "GitLab/17.3.0",
                    "X-Gitlab-Event": "Push Hook",
                    "X-Gitlab-Instance": ctx.base_url,
                    "X-Gitlab-Token": "[REDACTED]",
                },
                "request_data": {"object_kind": "push", "event_name": "push", "project_id": PROJECT_ID},
                "response_headers": {},
                "response_body": "",
                "execution_duration": 0.05,
                "response_status": status,
            })
        })
    }
}

/// One page of `items` with GitLab's pagination headers (`x-page`, `x-next-page`, ...,
/// and `Link`).
fn paged<T>(ctx: &Ctx<'_>, per_page: usize, items: &[T], render: impl Fn(&T) -> Value) -> Reply {
    let page = ctx.query_number("page", 1);
    let (start, end) = page_window(items.len(), page, per_page);
    let shown: Vec<Value> = items
        .get(start..end)
        .unwrap_or_default()
        .iter()
        .map(render)
        .collect();
    let last = page_count(items.len(), per_page);
    let next = if page < last {
        (page + 1).to_string()
    } else {
        String::new()
    };
    let prev = if page > 1 {
        (page - 1).to_string()
    } else {
        String::new()
    };
    let mut reply = Reply::json(StatusCode::OK, Value::Array(shown))
        .with_header("x-page", page.to_string())
        .with_header("x-per-page", per_page.to_string())
        .with_header("x-next-page", next)
        .with_header("x-prev-page", prev)
        .with_header("x-total", items.len().to_string())
        .with_header("x-total-pages", last.to_string());
    let link = link_header(ctx, "per_page", per_page, page, last);
    if !link.is_empty() {
        reply = reply.with_header("link", link);
    }
    reply
}
