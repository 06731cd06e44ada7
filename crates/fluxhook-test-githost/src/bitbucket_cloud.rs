//! Bitbucket Cloud REST API: repository webhooks (`/repositories/{workspace}/{slug}/hooks`).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dialect::Segment::{Lit, Owner, Repo};
use crate::dialect::{
    CREATED_AT, Ctx, Dialect, Reply, Target, Write, is_http_url, page_count, page_window,
    repository_hooks, string_array,
};
use crate::{FakeConfig, FakeHook};

pub(crate) struct BitbucketCloud;

/// The event keys a repository webhook may subscribe to.
const EVENTS: [&str; 20] = [
    "repo:push",
    "repo:fork",
    "repo:updated",
    "repo:commit_comment_created",
    "repo:commit_status_created",
    "repo:commit_status_updated",
    "issue:created",
    "issue:updated",
    "issue:comment_created",
    "pullrequest:created",
    "pullrequest:updated",
    "pullrequest:approved",
    "pullrequest:unapproved",
    "pullrequest:fulfilled",
    "pullrequest:rejected",
    "pullrequest:comment_created",
    "pullrequest:comment_updated",
    "pullrequest:comment_deleted",
    "pullrequest:changes_request_created",
    "pullrequest:changes_request_removed",
];

fn field_error(field: &str, message: &str) -> Reply {
    Reply::json(
        StatusCode::BAD_REQUEST,
        json!({
            "type": "error",
            "error": {"message": "Bad request", "fields": {field: [message]}},
        }),
    )
}

/// Applies the attributes present in `body`; `required` lists those that must be present.
fn apply(body: &Value, hook: &mut FakeHook, required: bool) -> Result<(), Reply> {
    match body.get("url") {
        None if required => return Err(field_error("url", "This field is required.")),
        None => {}
        Some(url) => match url.as_str().filter(|u| is_http_url(u)) {
            Some(url) => hook.url = url.to_owned(),
            None => return Err(field_error("url", "Enter a valid URL.")),
        },
    }
    match body.get("description") {
        None if required => return Err(field_error("description", "This field is required.")),
        None => {}
        Some(text) => match text.as_str() {
            Some(text) => hook.description = Some(text.to_owned()),
            None => return Err(field_error("description", "Not a valid string.")),
        },
    }
    match body.get("events") {
        None if required => return Err(field_error("events", "This field is required.")),
        None => {}
        Some(events) => match string_array(events) {
            Some(events) if !events.is_empty() => {
                if let Some(unknown) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
                    return Err(field_error(
                        "events",
                        &format!("\"{unknown}\" is not a valid choice."),
                    ));
                }
                hook.events = events;
            }
            _ => return Err(field_error("events", "This list may not be empty.")),
        },
    }
    match body.get("active").map(Value::as_bool) {
        None => {}
        Some(Some(active)) => hook.active = active,
        Some(None) => return Err(field_error("active", "Must be a valid boolean.")),
    }
    match body.get("skip_cert_verification").map(Value::as_bool) {
        None => {}
        Some(Some(skip)) => hook.tls_verification = !skip,
        Some(None) => {
            return Err(field_error(
                "skip_cert_verification",
                "Must be a valid boolean.",
            ));
        }
    }
    match body.get("secret") {
        None => {}
        Some(Value::Null) => hook.secret = None,
        Some(secret) => match secret.as_str() {
            Some(secret) => hook.secret = (!secret.is_empty()).then(|| secret.to_owned()),
            None => return Err(field_error("secret", "Not a valid string.")),
        },
    }
    Ok(())
}

fn uuid(id: u64) -> String {
    format!("{{{id:08x}-0000-4000-8000-{id:012x}}}")
}

impl Dialect for BitbucketCloud {
    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target> {
        repository_hooks(
            config,
            segments,
            &[Lit("repositories"), Owner, Repo, Lit("hooks")],
        )
    }

    fn error(&self, _ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply {
        Reply::json(
            status,
            json!({"type": "error", "error": {"message": message}}),
        )
    }

    fn unauthorized(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(
            ctx,
            StatusCode::UNAUTHORIZED,
            "Token is invalid, expired, or not supported for this endpoint.",
        )
    }

    fn not_found(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(
            ctx,
            StatusCode::NOT_FOUND,
            "You may not have access to this repository or it no longer exists in this workspace.",
        )
    }

    fn hook_not_found(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::NOT_FOUND, "Webhook subscription not found")
    }

    fn update_method(&self) -> Method {
        Method::PUT
    }

    fn hook_ref(&self, hook: &FakeHook) -> String {
        uuid(hook.id)
    }

    fn create(&self, _ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply> {
        let mut hook = FakeHook::new("", &[]);
        apply(write.body, &mut hook, true)?;
        Ok(hook)
    }

    fn update(&self, _ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply> {
        apply(write.body, hook, false)
    }

    fn render(&self, ctx: &Ctx<'_>, hook: &FakeHook) -> Value {
        let repo_api = format!(
            "{}/2.0/repositories/{}/{}",
            ctx.base_url, ctx.config.owner, ctx.config.repo
        );
        let self_href = format!(
            "{repo_api}/hooks/{}",
            percent_encoding::utf8_percent_encode(
                &uuid(hook.id),
                percent_encoding::NON_ALPHANUMERIC
            )
        );
        json!({
            "type": "webhook_subscription",
            "uuid": uuid(hook.id),
            "url": hook.url,
            "description": hook.description.clone().unwrap_or_default(),
            "subject_type": "repository",
            "subject": {
                "type": "repository",
                "name": ctx.config.repo,
                "full_name": format!("{}/{}", ctx.config.owner, ctx.config.repo),
                "uuid": "{c179f544-ba1f-4ea9-bd8f-2b2c1efa4046}",
                "links": {
                    "self": {"href": repo_api},
                    "html": {"href": format!("{}/{}/{}", ctx.base_url, ctx.config.owner, ctx.config.repo)},
                },
            },
            "active": hook.active,
            "created_at": CREATED_AT,
            "events": hook.events,
            "links": {"self": {"href": self_href}},
            "read_only": false,
            "source": null,
            "skip_cert_verification": !hook.tls_verification,
            "secret_set": hook.secret.is_some(),
        })
    }

    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply {
        let pagelen = ctx.page_size("pagelen", 10, 100);
        let page = ctx.query_number("page", 1);
        let (start, end) = page_window(hooks.len(), page, pagelen);
        let values: Vec<Value> = self.render_page(ctx, hooks.get(start..end).unwrap_or_default());
        let mut reply = json!({
            "pagelen": pagelen,
            "values": values,
            "page": page,
            "size": hooks.len(),
        });
        if page < page_count(hooks.len(), pagelen) {
            reply["next"] =
                json!(ctx.url_with_query(&format!("page={}&pagelen={pagelen}", page + 1)));
        }
        Reply::json(StatusCode::OK, reply)
    }
}
