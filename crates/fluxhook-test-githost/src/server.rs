//! The HTTP side: every request goes through one handler that records it, serves queued
//! faults, checks credentials and route, then lets the host's dialect answer.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::dialect::{self, Ctx, Dialect, Reply, Target, Write};
use crate::{Fault, HostKind, RecordedRequest, RetryAfterHeader, Shared};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let dialect = dialect::for_kind(shared.config.kind);
    let ctx = Ctx {
        config: &shared.config,
        base_url: &shared.base_url,
        path: uri.path(),
        query: uri.query(),
    };
    let json = serde_json::from_slice::<Value>(&body).ok();
    let mut state = shared.state();
    let now = Instant::now();
    let early = state.wait_until.is_some_and(|until| now < until);
    let fault = match state.faults.first() {
        Some(fault) if fault.applies_to(method.as_str()) => Some(state.faults.remove(0)),
        _ => None,
    };
    if fault == Some(Fault::HookDeletedFirst) {
        delete_named_hook(dialect, &ctx, &mut state);
    }
    let reply = match fault {
        Some(Fault::HookDeletedFirst) | None => respond(
            dialect,
            &ctx,
            &method,
            &headers,
            &body,
            json.as_ref(),
            &mut state,
        ),
        Some(fault) => {
            let (reply, wait) = fault_reply(dialect, &ctx, fault);
            if let Some(wait) = wait {
                state.wait_until = Some(now + wait);
            }
            reply
        }
    };
    state.requests.push(RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        body: json,
        status: reply.status.as_u16(),
        early,
    });
    drop(state);
    into_response(reply)
}

/// Deletes the hook a request's path names, if it names one.
fn delete_named_hook(dialect: &dyn Dialect, ctx: &Ctx<'_>, state: &mut crate::State) {
    let target =
        api_segments(ctx.config.kind, ctx.path).and_then(|s| dialect.route(ctx.config, &s));
    if let Some(Target::Item(reference)) = target {
        state
            .hooks
            .retain(|hook| dialect.hook_ref(hook) != reference);
    }
}

fn into_response(reply: Reply) -> Response {
    let mut response = match reply.body {
        Some(body) => (reply.status, axum::Json(body)).into_response(),
        None => reply.status.into_response(),
    };
    for (name, value) in reply.headers {
        if let Ok(value) = HeaderValue::from_str(&value) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The reply a fault is served as, and the wait it asks clients for (rate limits only).
fn fault_reply(dialect: &dyn Dialect, ctx: &Ctx<'_>, fault: Fault) -> (Reply, Option<Duration>) {
    match fault {
        Fault::TooManyRequests { retry_after_secs } => (
            dialect
                .error(
                    ctx,
                    StatusCode::TOO_MANY_REQUESTS,
                    "Rate limit for this resource has been exceeded",
                )
                .with_header("retry-after", retry_after_secs.to_string()),
            Some(Duration::from_secs(retry_after_secs)),
        ),
        Fault::SecondaryRateLimit { retry_after } => {
            let reply = dialect.error(
                ctx,
                StatusCode::FORBIDDEN,
                "You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
            );
            match retry_after.map(RetryAfterHeader::header_value) {
                Some((value, wait)) => (reply.with_header("retry-after", value), Some(wait)),
                // "Otherwise, wait for at least one minute before retrying."
                None => (reply, Some(Duration::from_secs(60))),
            }
        }
        Fault::RateLimitExhausted { reset_after_secs } => {
            let (remaining, reset) = dialect.rate_limit_headers();
            let mut reply = dialect.error(
                ctx,
                dialect.rate_limit_status(),
                "API rate limit exceeded for this token.",
            );
            reply = reply.with_header(remaining, "0");
            let reset_at = unix_now() + reset_after_secs;
            reply.headers.push((
                axum::http::HeaderName::from_static(reset),
                reset_at.to_string(),
            ));
            // The reset time as written, whole seconds.
            let wait = (UNIX_EPOCH + Duration::from_secs(reset_at))
                .duration_since(SystemTime::now())
                .unwrap_or_default();
            (reply, Some(wait))
        }
        Fault::ServerError { status } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            (dialect.error(ctx, status, "Server Error"), None)
        }
        Fault::Redirect {
            status, location, ..
        } => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::MOVED_PERMANENTLY);
            (Reply::empty(status).with_header("location", location), None)
        }
        // Handled before: the request is then served as usual.
        Fault::HookDeletedFirst => (Reply::empty(StatusCode::NO_CONTENT), None),
    }
}

/// The path segments after the host's API prefix, percent-decoded.
fn api_segments(kind: HostKind, path: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix(kind.api_prefix())?;
    let rest = rest.strip_prefix('/')?;
    Some(
        rest.trim_end_matches('/')
            .split('/')
            .map(dialect::decode)
            .collect(),
    )
}

fn respond(
    dialect: &dyn Dialect,
    ctx: &Ctx<'_>,
    method: &Method,
    headers: &HeaderMap,
    raw_body: &[u8],
    body: Option<&Value>,
    state: &mut crate::State,
) -> Reply {
    let segments = api_segments(ctx.config.kind, ctx.path);
    if ctx.config.kind == HostKind::GitHub
        && let Some(reply) = segments
            .as_deref()
            .and_then(|s| state.apps.respond(dialect, ctx, method, headers, s))
    {
        return reply;
    }
    let installation = ctx.config.kind == HostKind::GitHub && state.apps.accepts(headers);
    if !dialect.authorized(ctx.config, headers) && !installation {
        return dialect.unauthorized(ctx);
    }
    if let Some(rejection) = dialect.check_headers(ctx, headers) {
        return rejection;
    }
    let Some(target) = segments.and_then(|s| dialect.route(ctx.config, &s)) else {
        return dialect.not_found(ctx);
    };
    let writes_body = *method == Method::POST || *method == dialect.update_method();
    let body = match (writes_body, body) {
        (false, _) => &Value::Null,
        (true, Some(body)) if body.is_object() => body,
        (true, _) => {
            let message = if raw_body.is_empty() {
                "Body should be a JSON object"
            } else {
                "Problems parsing JSON"
            };
            return dialect.error(ctx, StatusCode::BAD_REQUEST, message);
        }
    };
    match target {
        Target::Collection => match *method {
            Method::GET => dialect.list(ctx, &state.hooks),
            Method::POST => match dialect.create(
                ctx,
                Write {
                    body,
                    others: &state.hooks,
                },
            ) {
                Ok(mut hook) => {
                    hook.id = state.next_id;
                    state.next_id += 1;
                    let reply = Reply::json(StatusCode::CREATED, dialect.render(ctx, &hook));
                    state.hooks.push(hook);
                    reply
                }
                Err(rejection) => rejection,
            },
            _ => dialect.not_found(ctx),
        },
        Target::Events(reference) => {
            // GitLab before 17.3 has no such route: its catch-all answers 404.
            if *method != Method::GET || state.no_hook_events {
                return dialect.not_found(ctx);
            }
            match state
                .hooks
                .iter()
                .find(|h| dialect.hook_ref(h) == reference)
            {
                Some(hook) => dialect.events(ctx, hook),
                None => dialect.hook_not_found(ctx),
            }
        }
        Target::Item(reference) => {
            if !dialect.item_methods().contains(method) {
                return dialect.not_found(ctx);
            }
            let Some(index) = state
                .hooks
                .iter()
                .position(|h| dialect.hook_ref(h) == reference)
            else {
                return dialect.missing_hook(ctx, method);
            };
            match method {
                &Method::GET => {
                    Reply::json(StatusCode::OK, dialect.render(ctx, &state.hooks[index]))
                }
                &Method::DELETE => {
                    state.hooks.remove(index);
                    Reply::empty(StatusCode::NO_CONTENT)
                }
                m if *m == dialect.update_method() => {
                    let mut hook = state.hooks[index].clone();
                    let others: Vec<_> = state
                        .hooks
                        .iter()
                        .filter(|h| h.id != hook.id)
                        .cloned()
                        .collect();
                    let write = Write {
                        body,
                        others: &others,
                    };
                    match dialect.update(ctx, write, &mut hook) {
                        Ok(()) => {
                            let reply = Reply::json(StatusCode::OK, dialect.render(ctx, &hook));
                            state.hooks[index] = hook;
                            reply
                        }
                        Err(rejection) => rejection,
                    }
                }
                _ => dialect.not_found(ctx),
            }
        }
    }
}
