//! What differs between hosts: routes, credentials, error shapes, bodies, replies, pagination.

use axum::http::{HeaderMap, HeaderName, Method, StatusCode};
use serde_json::Value;

use crate::{FakeConfig, FakeHook, HostKind};

/// A reply before it becomes an HTTP response.
#[derive(Debug)]
pub(crate) struct Reply {
    pub(crate) status: StatusCode,
    pub(crate) headers: Vec<(HeaderName, String)>,
    pub(crate) body: Option<Value>,
}

impl Reply {
    pub(crate) fn json(status: StatusCode, body: Value) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: Some(body),
        }
    }

    pub(crate) fn empty(status: StatusCode) -> Reply {
        Reply {
            status,
            headers: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers
            .push((HeaderName::from_static(name), value.into()));
        self
    }
}

/// What a request path names once the API prefix is stripped.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Target {
    /// The repository's hook collection.
    Collection,
    /// One hook, by the reference the host uses in paths (already percent-decoded).
    Item(String),
    /// The log of one hook's deliveries (GitLab's hook events).
    Events(String),
}

/// A create or edit of a hook: the JSON object sent, and the repository's other hooks.
#[derive(Clone, Copy)]
pub(crate) struct Write<'a> {
    pub(crate) body: &'a Value,
    /// Every hook when creating; all but the one edited when editing.
    pub(crate) others: &'a [FakeHook],
}

/// The request being served, for dialects that build URLs or read the query.
pub(crate) struct Ctx<'a> {
    pub(crate) config: &'a FakeConfig,
    pub(crate) base_url: &'a str,
    /// Raw request path, e.g. `/api/v3/repos/o/r/hooks`.
    pub(crate) path: &'a str,
    pub(crate) query: Option<&'a str>,
}

impl Ctx<'_> {
    /// Decoded value of query parameter `name`.
    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        self.query?.split('&').find_map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (key == name).then(|| decode(value))
        })
    }

    /// A positive number from the query, or `default` when absent or not a number.
    pub(crate) fn query_number(&self, name: &str, default: usize) -> usize {
        self.query_param(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    }

    /// Page size: what the client asked for (or the host's default), capped by the host's
    /// maximum and by the fake's configured page size.
    pub(crate) fn page_size(&self, param: &str, default: usize, max: usize) -> usize {
        self.query_number(param, default)
            .min(max)
            .min(self.config.page_size.max(1))
    }

    /// This request's URL with the given query.
    pub(crate) fn url_with_query(&self, query: &str) -> String {
        format!("{}{}?{}", self.base_url, self.path, query)
    }
}

pub(crate) fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// One segment of the path of a repository's hook collection.
pub(crate) enum Segment {
    /// This text.
    Lit(&'static str),
    /// The fake's owner (GitHub's owner, Bitbucket's workspace or project key), matched
    /// without regard to case as the hosts match it.
    Owner,
    /// The fake's repository (name or slug), matched without regard to case.
    Repo,
}

/// What `segments` name for a host whose hook collection is at `collection`: the
/// collection itself, or one hook below it (`<collection>/{id}`).
pub(crate) fn repository_hooks(
    config: &FakeConfig,
    segments: &[String],
    collection: &[Segment],
) -> Option<Target> {
    let prefix = segments.get(..collection.len())?;
    let matches = collection
        .iter()
        .zip(prefix)
        .all(|(segment, given)| match segment {
            Segment::Lit(text) => given == text,
            Segment::Owner => given.eq_ignore_ascii_case(&config.owner),
            Segment::Repo => given.eq_ignore_ascii_case(&config.repo),
        });
    match (matches, &segments[collection.len()..]) {
        (true, []) => Some(Target::Collection),
        (true, [id]) => Some(Target::Item(id.clone())),
        _ => None,
    }
}

/// Whether `header` holds `<scheme> <token>` (scheme compared case-insensitively).
pub(crate) fn has_credentials(
    headers: &HeaderMap,
    header: &str,
    scheme: &str,
    token: &str,
) -> bool {
    headers
        .get(header)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .is_some_and(|(s, t)| s.eq_ignore_ascii_case(scheme) && t == token)
}

/// An absolute `http(s)` URL with a host, as hosts demand of a webhook URL.
pub(crate) fn is_http_url(value: &str) -> bool {
    let rest = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"));
    rest.is_some_and(|r| {
        let host = r.split(['/', '?', '#']).next().unwrap_or_default();
        !host.is_empty() && !value.chars().any(char::is_whitespace)
    })
}

/// The strings of a JSON array, or `None` when it is not an array of strings.
pub(crate) fn string_array(value: &Value) -> Option<Vec<String>> {
    value
        .as_array()?
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

/// The `(start, end)` slice of page `page` (1-based) of `per_page` items out of `total`.
pub(crate) fn page_window(total: usize, page: usize, per_page: usize) -> (usize, usize) {
    let start = page.saturating_sub(1).saturating_mul(per_page).min(total);
    (start, start.saturating_add(per_page).min(total))
}

/// RFC 8288 `Link` header for numbered pages, as GitHub, GitLab and Gitea send.
pub(crate) fn link_header(
    ctx: &Ctx<'_>,
    size_param: &str,
    per_page: usize,
    page: usize,
    last: usize,
) -> String {
    let link = |n: usize, rel: &str| {
        format!(
            "<{}>; rel=\"{rel}\"",
            ctx.url_with_query(&format!("{size_param}={per_page}&page={n}"))
        )
    };
    let mut links = Vec::new();
    if page < last {
        links.push(link(page + 1, "next"));
        links.push(link(last, "last"));
    }
    if page > 1 {
        links.push(link(1, "first"));
        links.push(link(page - 1, "prev"));
    }
    links.join(", ")
}

/// Number of pages for `total` items (at least one, even when empty).
pub(crate) fn page_count(total: usize, per_page: usize) -> usize {
    total.div_ceil(per_page.max(1)).max(1)
}

/// One host's API, as the fake serves it.
pub(crate) trait Dialect: Send + Sync {
    /// Hook `type` a seeded hook gets when the test leaves it empty.
    fn default_hook_type(&self) -> &'static str {
        ""
    }

    /// Matches the path segments after the API prefix against this host's hook routes and
    /// the configured repository.
    fn route(&self, config: &FakeConfig, segments: &[String]) -> Option<Target>;

    /// The schemes the host accepts the token with in `Authorization` (`Bearer`, `token`).
    fn schemes(&self) -> &'static [&'static str] {
        &["Bearer"]
    }

    /// Whether the request carries the configured token the way this host accepts it.
    fn authorized(&self, config: &FakeConfig, headers: &HeaderMap) -> bool {
        self.schemes()
            .iter()
            .any(|scheme| has_credentials(headers, "authorization", scheme, &config.token))
    }

    /// A rejection for request headers the host refuses (e.g. an unknown API version).
    fn check_headers(&self, _ctx: &Ctx<'_>, _headers: &HeaderMap) -> Option<Reply> {
        None
    }

    /// An error reply in the host's shape.
    fn error(&self, ctx: &Ctx<'_>, status: StatusCode, message: &str) -> Reply;

    /// The reply to missing or wrong credentials.
    fn unauthorized(&self, ctx: &Ctx<'_>) -> Reply;

    /// The reply to a path naming no repository or route.
    fn not_found(&self, ctx: &Ctx<'_>) -> Reply;

    /// The reply to a hook id that does not exist.
    fn hook_not_found(&self, ctx: &Ctx<'_>) -> Reply {
        self.not_found(ctx)
    }

    /// The methods one hook's path answers; others are unknown routes.
    fn item_methods(&self) -> &'static [Method] {
        &[Method::GET, Method::PATCH, Method::PUT, Method::DELETE]
    }

    /// The reply to `method` on a hook that does not exist.
    fn missing_hook(&self, ctx: &Ctx<'_>, _method: &Method) -> Reply {
        self.hook_not_found(ctx)
    }

    /// Status of a spent primary rate limit.
    fn rate_limit_status(&self) -> StatusCode {
        StatusCode::TOO_MANY_REQUESTS
    }

    /// Names of the "remaining" and "reset" rate-limit headers.
    fn rate_limit_headers(&self) -> (&'static str, &'static str) {
        ("x-ratelimit-remaining", "x-ratelimit-reset")
    }

    /// The method that edits a hook.
    fn update_method(&self) -> Method;

    /// How the host names `hook` in paths.
    fn hook_ref(&self, hook: &FakeHook) -> String {
        hook.id.to_string()
    }

    /// A new hook from a create body (id left 0), or the host's validation error.
    fn create(&self, ctx: &Ctx<'_>, write: Write<'_>) -> Result<FakeHook, Reply>;

    /// Applies an edit body to `hook`, or the host's validation error.
    fn update(&self, ctx: &Ctx<'_>, write: Write<'_>, hook: &mut FakeHook) -> Result<(), Reply>;

    /// The host's JSON for one hook.
    fn render(&self, ctx: &Ctx<'_>, hook: &FakeHook) -> Value;

    /// The host's JSON for each hook of one page.
    fn render_page(&self, ctx: &Ctx<'_>, page: &[FakeHook]) -> Vec<Value> {
        page.iter().map(|hook| self.render(ctx, hook)).collect()
    }

    /// One page of the hook list, with the host's pagination.
    fn list(&self, ctx: &Ctx<'_>, hooks: &[FakeHook]) -> Reply;

    /// One page of the log of `hook`'s deliveries, for hosts that route [`Target::Events`].
    fn events(&self, ctx: &Ctx<'_>, _hook: &FakeHook) -> Reply {
        self.not_found(ctx)
    }
}

pub(crate) fn for_kind(kind: HostKind) -> &'static dyn Dialect {
    match kind {
        HostKind::GitHub => &crate::github::GitHub,
        HostKind::GitLab => &crate::gitlab::GitLab,
        HostKind::BitbucketCloud => &crate::bitbucket_cloud::BitbucketCloud,
        HostKind::BitbucketServer => &crate::bitbucket_server::BitbucketServer,
        HostKind::Gitea => &crate::gitea::Gitea,
        HostKind::Gogs => &crate::gogs::Gogs,
    }
}

/// A fixed timestamp: replies need one, tests never read it.
pub(crate) const CREATED_AT: &str = "2024-05-06T07:08:09Z";
