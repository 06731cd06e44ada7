//! Gogs REST API: repository webhooks (`/api/v1/repos/{owner}/{repo}/hooks`), as gogs/gogs
//! serves them (`internal/route/api/v1/repo_hook.go`, `api.go`, `internal/context/api.go`,
//! `internal/database/webhook.go`; commit eb1054e5, 2026):
//! - routes: `GET`/`POST` on the collection, `PATCH`/`DELETE` on one hook (no `GET`);
//! - `Authorization: token <sha>` only; without a valid token the `reqRepoAdmin` check
//!   answers `403` with an empty body, and unknown routes `404` with an empty body;
//! - the list is every hook at once: no paging, no count header;
//! - create requires `type` (`gogs`, `slack`, `discord`, `dingtalk`), `config.url` and
//!   `config.content_type` (`json` or `form`); `active` defaults to false (a Go `bool`);
//! - edit reads `config.url` and `config.content_type` but never `config.secret`, and
//!   rewrites the events (none given means `push`);
//! - deleting a hook that does not exist deletes no row and still answers `204`;
//! - errors are `{"message": ..., "url": <doc URL>}`.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dialect::Segment::{Lit, Owner, Repo};
use crate::dialect::{
    CREATED_AT, Ctx, Dialect, Reply, Target, Write, repository_hooks, string_array,
};
use crate::{FakeConfig, FakeHook};

pub(crate) struct Gogs;

/// `hookTaskTypes` of `internal/database/webhook.go`.
const HOOK_TYPES: [&str; 4] = ["gogs", "slack", "discord", "dingtalk"];

/// The events a hook may choose, in the order `EventsArray` reads them back.
const EVENTS: [&str; 8] = [
    "create",
    "delete",
    "fork",
    "push",
    "issues",
    "pull_request",
    "issue_comment",
    "release",
];

/// `DocURL` of `internal/context/api.go`.
const DOC_URL: &str = "https://github.com/gogs/docs-api";

fn error(status: StatusCode, message: &str) -> Reply {
    Reply::json(status, json!({"message": message, "url": DOC_URL}))
}

/// The events chosen among those Gogs knows, in its order; none given means `push`.
fn chosen_events(body: &Value) -> Result<Vec<String>, Reply> {
    let asked = match body.get("events") {
        None | Some(Value::Null) => Vec::new(),
        Some(events) => string_array(events).ok_or_else(|| {
            error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "events must be a list of strings",
            )
        })?,
    };
    let asked = match asked.is_empty() {
        true => vec!["push".to_owned()],
        false => asked,
    };
    Ok(EVENTS
        .iter()
        .filter(|event| asked.iter().any(|a| a == *event))
        .map(|event| (*event).to_owned())
        .collect())
}

fn config_map(body: &Value) -> Result<Option<&serde_json::Map<String, Value>>, Reply> {
    match body.get("config") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(config)) if config.values().all(Value::is_string) => Ok(Some(config)),
        Some(_) => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "config must be a map of strings",
        )),
    }
}

fn content_type(value: &str) -> Result<String, Reply> {
    match value {
        "json" | "form" => Ok(value.to_owned()),
        _ => Err(error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid content type.",
        )),
    }
}

impl Dialect for Gogs {
    fn default_hook_type(&self) -> &'static str {
        "gogs"
    }

    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target> {
        repository_hooks(config, segments, &[Lit("repos"), Owner, Repo, Lit("hooks")])
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["token"]
    }

    fn error(&self, _ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply {
        error(status, message)
    }

    fn unauthorized(&self, _ctx: &Ctx<'_>) -> Reply {
        // Not signed in: `reqRepoAdmin` refuses with a bare status.
        Reply::empty(StatusCode::FORBIDDEN)
    }

    fn not_found(&self, _ctx: &Ctx<'_>) -> Reply {
        Reply::empty(StatusCode::NOT_FOUND)
    }

    fn item_methods(&self) -> &'static [Method] {
        &[Method::PATCH, Method::DELETE]
    }

    fn missing_hook(&self, ctx: &Ctx<'_>, method: &Method) -> Reply {
        match *method {
            // `deleteWebhook` deletes no row and reports no error.
            Method::DELETE => Reply::empty(StatusCode::NO_CONTENT),
            _ => self.not_found(ctx),
        }
    }

    fn update_method(&self) -> Method {
        Method::PATCH
    }

    fn create(&self, _ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply> {
        let hook_type = write
            .body
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if !HOOK_TYPES.contains(&hook_type) {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid hook type.",
            ));
        }
        let Some(config) = config_map(write.body)? else {
            return Err(error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Missing config option: url",
            ));
        };
        let mut hook = FakeHook::new("", &[]);
        for name in ["url", "content_type"] {
            if !config.contains_key(name) {
                return Err(error(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    &format!("Missing config option: {name}"),
                ));
            }
        }
        let text = |key: &str| config.get(key).and_then(Value::as_str).unwrap_or_default();
        hook.url = text("url").to_owned();
        hook.content_type = content_type(text("content_type"))?;
        hook.secret = Some(text("secret").to_owned()).filter(|s| !s.is_empty());
        hook.hook_type = hook_type.to_owned();
        hook.events = chosen_events(write.body)?;
        hook.active = write
            .body
            .get("active")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(hook)
    }

    fn update(&self, _ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply> {
        if let Some(config) = config_map(write.body)? {
            if let Some(url) = config.get("url").and_then(Value::as_str) {
                hook.url = url.to_owned();
            }
            if let Some(value) = config.get("content_type").and_then(Value::as_str) {
                hook.content_type = content_type(value)?;
            }
            // `editHook` has no case for `secret`: the hook keeps the one it was created with.
        }
        hook.events = chosen_events(write.body)?;
        if let Some(active) = write.body.get("active").and_then(Value::as_bool) {
            hook.active = active;
        }
        Ok(())
    }

    fn render(&self, ctx: &Ctx<'_>, hook: &FakeHook) -> Value {
        json!({
            "id": hook.id,
            "type": hook.hook_type,
            "url": format!(
                "{}/{}/{}/settings/hooks/{}",
                ctx.base_url, ctx.config.owner, ctx.config.repo, hook.id
            ),
            "config": {"url": hook.url, "content_type": hook.content_type},
            "events": hook.events,
            "active": hook.active,
            "updated_at": CREATED_AT,
            "created_at": CREATED_AT,
        })
    }

    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply {
        let items: Vec<Value> = self.render_page(ctx, hooks);
        Reply::json(StatusCode::OK, Value::Array(items))
    }
}
