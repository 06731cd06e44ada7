//! Bitbucket Server / Data Center REST API: repository webhooks
//! (`/projects/{KEY}/repos/{slug}/webhooks`).

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};

use crate::dialect::Segment::{Lit, Owner, Repo};
use crate::dialect::{
    Ctx, Dialect, Reply, Target, Write, is_http_url, repository_hooks, string_array,
};
use crate::{FakeConfig, FakeHook};

pub(crate) struct BitbucketServer;

/// The event keys a repository webhook may subscribe to.
const EVENTS: [&str; 21] = [
    "repo:refs_changed",
    "repo:modified",
    "repo:forked",
    "repo:comment:added",
    "repo:comment:edited",
    "repo:comment:deleted",
    "repo:secret_detected",
    "mirror:repo_synchronized",
    "pr:opened",
    "pr:from_ref_updated",
    "pr:to_ref_updated",
    "pr:modified",
    "pr:reviewer:updated",
    "pr:reviewer:approved",
    "pr:reviewer:unapproved",
    "pr:reviewer:needs_work",
    "pr:merged",
    "pr:declined",
    "pr:deleted",
    "pr:comment:added",
    "pr:comment:edited",
];

/// Milliseconds since the epoch, fixed: replies need one, tests never read it.
const CREATED_DATE: u64 = 1_530_808_431_270;

fn errors(
    status: StatusCode,
    context: Option<&str>,
    message: &str,
    exception: Option<&str>,
) -> Reply {
    Reply::json(
        status,
        json!({"errors": [{"context": context, "message": message, "exceptionName": exception}]}),
    )
}

fn invalid(field: &str, message: &str) -> Reply {
    errors(StatusCode::BAD_REQUEST, Some(field), message, None)
}

/// Bitbucket Server replaces the whole webhook on create and update alike.
fn apply(body: &Value, hook: &mut FakeHook) -> Result<(), Reply> {
    let Some(name) = body
        .get("name")
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty())
    else {
        return Err(invalid("name", "A name is required."));
    };
    let Some(url) = body
        .get("url")
        .and_then(Value::as_str)
        .filter(|u| is_http_url(u))
    else {
        return Err(invalid("url", "The URL must be a valid http or https URL."));
    };
    let Some(events) = body
        .get("events")
        .and_then(string_array)
        .filter(|e| !e.is_empty())
    else {
        return Err(invalid("events", "At least one event is required."));
    };
    if let Some(unknown) = events.iter().find(|e| !EVENTS.contains(&e.as_str())) {
        return Err(invalid(
            "events",
            &format!("{unknown} is not a valid event."),
        ));
    }
    let active = match body.get("active").map(Value::as_bool) {
        None => true,
        Some(Some(active)) => active,
        Some(None) => return Err(invalid("active", "active must be a boolean.")),
    };
    let tls = match body.get("sslVerificationRequired").map(Value::as_bool) {
        None => true,
        Some(Some(tls)) => tls,
        Some(None) => {
            return Err(invalid(
                "sslVerificationRequired",
                "sslVerificationRequired must be a boolean.",
            ));
        }
    };
    if let Some(configuration) = body.get("configuration") {
        if !configuration.is_object() {
            return Err(invalid("configuration", "configuration must be an object."));
        }
        if let Some(secret) = configuration.get("secret") {
            let Some(secret) = secret.as_str() else {
                return Err(invalid("configuration", "secret must be a string."));
            };
            hook.secret = (!secret.is_empty()).then(|| secret.to_owned());
        }
    }
    hook.name = Some(name.to_owned());
    hook.url = url.to_owned();
    hook.events = events;
    hook.active = active;
    hook.tls_verification = tls;
    Ok(())
}

impl Dialect for BitbucketServer {
    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target> {
        repository_hooks(
            config,
            segments,
            &[Lit("projects"), Owner, Lit("repos"), Repo, Lit("webhooks")],
        )
    }

    fn error(&self, _ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply {
        errors(status, None, message, None)
    }

    fn unauthorized(&self, _ctx: &Ctx<'_>) -> Reply {
        errors(
            StatusCode::UNAUTHORIZED,
            None,
            "Authentication failed. Please check your credentials and try again.",
            Some("com.atlassian.bitbucket.auth.IncorrectPasswordAuthenticationException"),
        )
    }

    fn not_found(&self, ctx: &Ctx<'_>) -> Reply {
        errors(
            StatusCode::NOT_FOUND,
            None,
            &format!(
                "Repository {} of project {} does not exist.",
                ctx.config.repo, ctx.config.owner
            ),
            Some("com.atlassian.bitbucket.repository.NoSuchRepositoryException"),
        )
    }

    fn hook_not_found(&self, _ctx: &Ctx<'_>) -> Reply {
        errors(
            StatusCode::NOT_FOUND,
            None,
            "No webhook exists with the given ID.",
            Some("com.atlassian.bitbucket.webhook.NoSuchWebhookException"),
        )
    }

    fn update_method(&self) -> Method {
        Method::PUT
    }

    fn create(&self, _ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply> {
        let mut hook = FakeHook::new("", &[]);
        apply(write.body, &mut hook)?;
        Ok(hook)
    }

    fn update(&self, _ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply> {
        apply(write.body, hook)
    }

    fn render(&self, _ctx: &Ctx<'_>, hook: &FakeHook) -> Value {
        let configuration = match &hook.secret {
            Some(secret) => json!({ "secret": secret }),
            None => json!({}),
        };
        json!({
            "id": hook.id,
            "name": hook.name.clone().unwrap_or_default(),
            "createdDate": CREATED_DATE,
            "updatedDate": CREATED_DATE,
            "events": hook.events,
            "configuration": configuration,
            "url": hook.url,
            "active": hook.active,
            "scopeType": "repository",
            "sslVerificationRequired": hook.tls_verification,
        })
    }

    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply {
        let limit = ctx.page_size("limit", 25, 1000);
        let start = ctx
            .query_param("start")
            .and_then(|s| s.parse::<usize>().ok())
            .unwrap_or(0)
            .min(hooks.len());
        let end = start.saturating_add(limit).min(hooks.len());
        let values: Vec<Value> = self.render_page(ctx, hooks.get(start..end).unwrap_or_default());
        let is_last = end >= hooks.len();
        let mut reply = json!({
            "size": values.len(),
            "limit": limit,
            "isLastPage": is_last,
            "values": values,
            "start": start,
        });
        if !is_last {
            reply["nextPageStart"] = json!(end);
        }
        Reply::json(StatusCode::OK, reply)
    }
}
