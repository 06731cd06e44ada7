//! Gitea / Forgejo REST API: repository webhooks (`/repos/{owner}/{repo}/hooks`), as
//! go-gitea/gitea serves them (`routers/api/v1/repo/hook.go`, `routers/api/v1/utils/hook.go`,
//! `models/webhook/webhook.go`):
//! - the list is paged by `page` and `limit` (capped by `MAX_RESPONSE_ITEMS`, 50; here by the
//!   fake's page size) and counted in `X-Total-Count`, with no `Link` header;
//! - events are stored as flags and read back expanded: `pull_request` turns on, and reads
//!   back as, the whole pull request family;
//! - an edit rewrites the events and keeps the secret (see `apply_config`).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dialect::Segment::{Lit, Owner, Repo};
use crate::dialect::{
    CREATED_AT, Ctx, Dialect, Reply, Target, Write, is_http_url, page_window, repository_hooks,
    string_array,
};
use crate::{FakeConfig, FakeHook};

pub(crate) struct Gitea;

/// Hook types Gitea and Forgejo know.
const HOOK_TYPES: [&str; 12] = [
    "forgejo",
    "gitea",
    "gogs",
    "slack",
    "discord",
    "dingtalk",
    "telegram",
    "msteams",
    "feishu",
    "matrix",
    "wechatwork",
    "packagist",
];

fn unprocessable(ctx: &Ctx<'_>, message: &str) -> Reply {
    Reply::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({"message": message, "url": format!("{}/api/swagger", ctx.base_url)}),
    )
}

/// Applies a `config` map; on create `url` and `content_type` are required.
fn apply_config(
    ctx: &Ctx<'_>,
    config: &Value,
    hook: &mut FakeHook,
    create: bool,
) -> Result<(), Reply> {
    let Some(config) = config.as_object() else {
        return Err(unprocessable(ctx, "config must be an object"));
    };
    if config.values().any(|v| !v.is_string()) {
        return Err(unprocessable(ctx, "config values must be strings"));
    }
    let text = |key: &str| config.get(key).and_then(Value::as_str);
    match text("url") {
        None if create => return Err(unprocessable(ctx, "Missing config option: url")),
        None => {}
        Some(url) if is_http_url(url) => hook.url = url.to_owned(),
        Some(_) => return Err(unprocessable(ctx, "Invalid url")),
    }
    match text("content_type") {
        None if create => return Err(unprocessable(ctx, "Missing config option: content_type")),
        None => {}
        Some(t @ ("json" | "form")) => hook.content_type = t.to_owned(),
        Some(_) => return Err(unprocessable(ctx, "Invalid content type")),
    }
    // `addHook` takes `config.secret`; `editHook` of older Gitea (go-gitea/gitea 3e4d1edd,
    // `routers/api/v1/utils/hook.go`; go-gitea/gitea#23142) and Forgejo releases has no case
    // for it, so an edit keeps the old secret. The fake does as those versions do: clients
    // must not rely on an edit to change the secret.
    if create {
        hook.secret = text("secret").filter(|s| !s.is_empty()).map(str::to_owned);
    }
    Ok(())
}

/// The hook events a hook reads back with, in `EventCheckers` order
/// (`models/webhook/webhook.go`), each with the names that turn it on when written
/// (`addHook`/`editHook` of `routers/api/v1/utils/hook.go`: `issuesHook` and `pullHook` turn
/// on every event of the family for `issues` and `pull_request`; `issues_only` and
/// `pull_request_only` the family's own; `pull_request_review` the three review events).
const EVENTS: [(&str, &[&str]); 23] = [
    ("create", &["create"]),
    ("delete", &["delete"]),
    ("fork", &["fork"]),
    ("push", &["push"]),
    ("issues", &["issues_only", "issues"]),
    ("issue_assign", &["issue_assign", "issues"]),
    ("issue_label", &["issue_label", "issues"]),
    ("issue_milestone", &["issue_milestone", "issues"]),
    ("issue_comment", &["issue_comment", "issues"]),
    ("pull_request", &["pull_request_only", "pull_request"]),
    (
        "pull_request_assign",
        &["pull_request_assign", "pull_request"],
    ),
    (
        "pull_request_label",
        &["pull_request_label", "pull_request"],
    ),
    (
        "pull_request_milestone",
        &["pull_request_milestone", "pull_request"],
    ),
    (
        "pull_request_comment",
        &["pull_request_comment", "pull_request"],
    ),
    (
        "pull_request_review_approved",
        &["pull_request_review", "pull_request"],
    ),
    (
        "pull_request_review_rejected",
        &["pull_request_review", "pull_request"],
    ),
    (
        "pull_request_review_comment",
        &["pull_request_review", "pull_request"],
    ),
    ("pull_request_sync", &["pull_request_sync", "pull_request"]),
    ("wiki", &["wiki"]),
    ("repository", &["repository"]),
    ("release", &["release"]),
    ("package", &["package"]),
    (
        "pull_request_review_request",
        &["pull_request_review_request", "pull_request"],
    ),
];

/// The events a hook written with `asked` reads back with: none asked means `push`, and
/// `pull_request` expands into its family, as Gitea stores and shows them.
fn stored_events(asked: &[String]) -> Vec<String> {
    let push = ["push".to_owned()];
    let asked = match asked.is_empty() {
        true => &push[..],
        false => asked,
    };
    EVENTS
        .iter()
        .filter(|(_, written_as)| {
            written_as
                .iter()
                .any(|w| asked.iter().any(|a| a.eq_ignore_ascii_case(w)))
        })
        .map(|(read, _)| (*read).to_owned())
        .collect()
}

fn apply_common(ctx: &Ctx<'_>, body: &Value, hook: &mut FakeHook) -> Result<(), Reply> {
    // Create and edit both rewrite every event: none given means `push`.
    let asked = match body.get("events") {
        None | Some(Value::Null) => Vec::new(),
        Some(events) => match string_array(events) {
            Some(events) => events,
            None => return Err(unprocessable(ctx, "events must be a list of strings")),
        },
    };
    hook.events = stored_events(&asked);
    match body.get("active").map(Value::as_bool) {
        None => {}
        Some(Some(active)) => hook.active = active,
        Some(None) => return Err(unprocessable(ctx, "active must be a boolean")),
    }
    Ok(())
}

impl Dialect for Gitea {
    fn default_hook_type(&self) -> &'static str {
        "gitea"
    }

    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target> {
        repository_hooks(config, segments, &[Lit("repos"), Owner, Repo, Lit("hooks")])
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["token", "Bearer"]
    }

    fn error(&self, ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"message": message, "url": format!("{}/api/swagger", ctx.base_url)}),
        )
    }

    fn unauthorized(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::UNAUTHORIZED, "token is required")
    }

    fn not_found(&self, ctx: &Ctx<'_>) -> Reply {
        Reply::json(
            StatusCode::NOT_FOUND,
            json!({"errors": null, "message": "not found", "url": format!("{}/api/swagger", ctx.base_url)}),
        )
    }

    fn update_method(&self) -> Method {
        Method::PATCH
    }

    fn create(&self, ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply> {
        let Some(hook_type) = write.body.get("type").and_then(Value::as_str) else {
            return Err(unprocessable(ctx, "[Type]: Required"));
        };
        if !HOOK_TYPES.contains(&hook_type) {
            return Err(unprocessable(ctx, "Invalid hook type"));
        }
        let Some(config) = write.body.get("config") else {
            return Err(unprocessable(ctx, "[Config]: Required"));
        };
        let mut hook = FakeHook::new("", &["push"]);
        hook.hook_type = hook_type.to_owned();
        // Gitea creates hooks inactive unless asked otherwise.
        hook.active = false;
        apply_config(ctx, config, &mut hook, true)?;
        apply_common(ctx, write.body, &mut hook)?;
        Ok(hook)
    }

    fn update(&self, ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply> {
        if let Some(config) = write.body.get("config") {
            apply_config(ctx, config, hook, false)?;
        }
        apply_common(ctx, write.body, hook)
    }

    fn render(&self, _ctx: &Ctx<'_>, hook: &FakeHook) -> Value {
        json!({
            "id": hook.id,
            "type": hook.hook_type,
            "branch_filter": "*",
            "config": {
                "content_type": hook.content_type,
                "http_method": "post",
                "url": hook.url,
            },
            "events": hook.events,
            "authorization_header": "",
            "active": hook.active,
            "updated_at": CREATED_AT,
            "created_at": CREATED_AT,
        })
    }

    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply {
        let limit = ctx.page_size("limit", 30, 50);
        let page = ctx.query_number("page", 1);
        let (start, end) = page_window(hooks.len(), page, limit);
        let items: Vec<Value> = self.render_page(ctx, hooks.get(start..end).unwrap_or_default());
        // `ListHooks` sets the count and no `Link` header.
        Reply::json(StatusCode::OK, Value::Array(items))
            .with_header("x-total-count", hooks.len().to_string())
    }
}
