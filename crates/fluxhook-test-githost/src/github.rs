//! GitHub REST API: repository webhooks (`/repos/{owner}/{repo}/hooks`).

use axum::http::{HeaderMap, Method, StatusCode};
use serde_json::{Value, json};

use crate::dialect::Segment::{Lit, Owner, Repo};
use crate::dialect::{
    CREATED_AT, Ctx, Dialect, Reply, Target, Write, is_http_url, link_header, page_count,
    page_window, repository_hooks, string_array,
};
use crate::{FakeConfig, FakeHook};

pub(crate) struct GitHub;

/// API versions GitHub accepts in `X-GitHub-Api-Version`.
const API_VERSIONS: [&str; 2] = ["2022-11-28", "2026-03-10"];

fn validation_failed(ctx: &Ctx<'_>, message: &str) -> Reply {
    Reply::json(
        StatusCode::UNPROCESSABLE_ENTITY,
        json!({
            "message": "Validation Failed",
            "errors": [{"resource": "Hook", "code": "custom", "message": message}],
            "documentation_url": format!("{}/rest/repos/webhooks", ctx.base_url),
            "status": "422",
        }),
    )
}

/// Applies a `config` object: GitHub replaces the delivery settings it names.
fn apply_config(ctx: &Ctx<'_>, config: &Value, hook: &mut FakeHook) -> Result<(), Reply> {
    let Some(url) = config
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| is_http_url(u))
    else {
        return Err(validation_failed(
            ctx,
            "Config must contain URL for webhooks",
        ));
    };
    let content_type = match config.get("content_type") {
        None => "form",
        Some(v) => match v.as_str() {
            Some(t @ ("json" | "form")) => t,
            _ => {
                return Err(validation_failed(
                    ctx,
                    "Content type is not included in the list",
                ));
            }
        },
    };
    let insecure = match config.get("insecure_ssl") {
        None => false,
        Some(v) => match (v.as_str(), v.as_u64()) {
            (Some("0"), _) | (_, Some(0)) => false,
            (Some("1"), _) | (_, Some(1)) => true,
            _ => {
                return Err(validation_failed(
                    ctx,
                    "Insecure ssl is not included in the list",
                ));
            }
        },
    };
    if let Some(secret) = config.get("secret") {
        let Some(secret) = secret.as_str() else {
            return Err(validation_failed(ctx, "Secret must be a string"));
        };
        hook.secret = (!secret.is_empty()).then(|| secret.to_owned());
    }
    hook.url = url.to_owned();
    hook.content_type = content_type.to_owned();
    hook.tls_verification = !insecure;
    Ok(())
}

fn apply_common(ctx: &Ctx<'_>, body: &Value, hook: &mut FakeHook) -> Result<(), Reply> {
    if let Some(events) = body.get("events") {
        match string_array(events) {
            Some(events) if !events.iter().any(String::is_empty) => hook.events = events,
            _ => {
                return Err(validation_failed(
                    ctx,
                    "Events must be a list of event names",
                ));
            }
        }
    }
    if let Some(active) = body.get("active") {
        let Some(active) = active.as_bool() else {
            return Err(validation_failed(ctx, "Active must be a boolean"));
        };
        hook.active = active;
    }
    Ok(())
}

fn ensure_unique_url(ctx: &Ctx<'_>, hook: &FakeHook, others: &[FakeHook]) -> Result<(), Reply> {
    // GitHub refuses a second hook with the same delivery URL on one repository.
    match others.iter().any(|o| o.url == hook.url) {
        true => Err(validation_failed(
            ctx,
            "Hook already exists on this repository",
        )),
        false => Ok(()),
    }
}

impl Dialect for GitHub {
    fn default_hook_type(&self) -> &'static str {
        "web"
    }

    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target> {
        repository_hooks(config, segments, &[Lit("repos"), Owner, Repo, Lit("hooks")])
    }

    fn schemes(&self) -> &'static [&'static str] {
        &["Bearer", "token"]
    }

    fn check_headers(&self, ctx: &Ctx<'_>, headers: &HeaderMap) -> Option<Reply> {
        let version = headers.get("x-github-api-version")?.to_str().unwrap_or("?");
        (!API_VERSIONS.contains(&version)).then(|| {
            self.error(
                ctx,
                StatusCode::BAD_REQUEST,
                &format!("API version '{version}' is not supported."),
            )
        })
    }

    fn error(&self, ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply {
        Reply::json(
            status,
            json!({
                "message": message,
                "documentation_url": format!("{}/rest", ctx.base_url),
                "status": status.as_u16().to_string(),
            }),
        )
    }

    fn unauthorized(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::UNAUTHORIZED, "Bad credentials")
    }

    fn not_found(&self, ctx: &Ctx<'_>) -> Reply {
        self.error(ctx, StatusCode::NOT_FOUND, "Not Found")
    }

    fn rate_limit_status(&self) -> StatusCode {
        StatusCode::FORBIDDEN
    }

    fn update_method(&self) -> Method {
        Method::PATCH
    }

    fn create(&self, ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply> {
        match write.body.get("name") {
            None => {}
            Some(name) if name.as_str() == Some("web") => {}
            Some(_) => return Err(validation_failed(ctx, "Name must be \"web\"")),
        }
        let mut hook = FakeHook::new("", &["push"]);
        hook.hook_type = "web".to_owned();
        let Some(config) = write.body.get("config").filter(|c| c.is_object()) else {
            return Err(validation_failed(
                ctx,
                "Config must contain URL for webhooks",
            ));
        };
        apply_config(ctx, config, &mut hook)?;
        apply_common(ctx, write.body, &mut hook)?;
        ensure_unique_url(ctx, &hook, write.others)?;
        Ok(hook)
    }

    fn update(&self, ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply> {
        if let Some(config) = write.body.get("config") {
            if !config.is_object() {
                return Err(validation_failed(ctx, "Config must be an object"));
            }
            apply_config(ctx, config, hook)?;
        }
        apply_common(ctx, write.body, hook)?;
        ensure_unique_url(ctx, hook, write.others)
    }

    fn render(&self, ctx: &Ctx<'_>, hook: &FakeHook) -> Value {
        let self_url = format!(
            "{}/api/v3/repos/{}/{}/hooks/{}",
            ctx.base_url, ctx.config.owner, ctx.config.repo, hook.id
        );
        let mut config = json!({
            "content_type": hook.content_type,
            "insecure_ssl": if hook.tls_verification { "0" } else { "1" },
            "url": hook.url,
        });
        if hook.secret.is_some() {
            // GitHub shows that a secret is set, never which one.
            config["secret"] = json!("********");
        }
        json!({
            "type": "Repository",
            "id": hook.id,
            "name": hook.hook_type,
            "active": hook.active,
            "events": hook.events,
            "config": config,
            "updated_at": CREATED_AT,
            "created_at": CREATED_AT,
            "url": self_url,
            "test_url": format!("{self_url}/test"),
            "ping_url": format!("{self_url}/pings"),
            "deliveries_url": format!("{self_url}/deliveries"),
            "last_response": match &hook.last_response {
                Some(last) => json!({"code": last.code, "status": last.status, "message": last.message}),
                None => json!({"code": null, "status": "unused", "message": null}),
            },
        })
    }

    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply {
        let per_page = ctx.page_size("per_page", 30, 100);
        let page = ctx.query_number("page", 1);
        let (start, end) = page_window(hooks.len(), page, per_page);
        let items: Vec<Value> = self.render_page(ctx, hooks.get(start..end).unwrap_or_default());
        let last = page_count(hooks.len(), per_page);
        let reply = Reply::json(StatusCode::OK, Value::Array(items));
        match link_header(ctx, "per_page", per_page, page, last) {
            link if link.is_empty() => reply,
            link => reply.with_header("link", link),
        }
    }
}
