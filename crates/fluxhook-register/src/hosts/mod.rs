//! Everything that differs between Git hosts, one file per host: names, host names, API
//! paths, credentials, token variables, bodies, replies, pagination and errors. Adding a host
//! is a new file here (its [`HostProfile`], its [`HostApi`] and its [`Forge`] constant), its
//! `mod` line and its entry in [`Forge::ALL`]; help texts, fuzz seeds and names follow.

pub(crate) mod azure_devops;
mod bitbucket_cloud;
mod bitbucket_server;
mod gitea;
mod github;
mod gitlab;
mod gogs;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use crate::repository::GitUrl;
use crate::{DesiredHook, Forge, Hook, HookId, HostProfile, HostedRepository, PayloadFormat};

/// One of a host's hook events (GitLab: one of its `*_events` flags).
#[derive(Debug)]
pub(crate) struct Subscription {
    /// The name a hook is created with.
    pub(crate) write: &'static str,
    /// The name the host reports when the hook is read back.
    pub(crate) read: &'static str,
    /// The event header of the deliveries it causes.
    pub(crate) delivers: &'static [&'static str],
    /// Subscribed for a Receiver that accepts every event.
    pub(crate) by_default: bool,
}

impl Subscription {
    /// A hook event written and read back under one name.
    pub(crate) const fn named(
        name: &'static str,
        delivers: &'static [&'static str],
        by_default: bool,
    ) -> Subscription {
        Subscription {
            write: name,
            read: name,
            delivers,
            by_default,
        }
    }
}

/// A repository path split as the host names repositories.
pub(crate) struct RepoPath {
    /// The web path prefix of an instance served under a sub-path (Bitbucket Server's
    /// `/bitbucket/scm/...`); empty elsewhere.
    pub(crate) context: String,
    /// Owner, namespace, workspace or project key.
    pub(crate) owner: String,
    /// Repository name.
    pub(crate) name: String,
}

/// Fixed query parameters of a request, `(name, value)`.
pub(crate) type Query = &'static [(&'static str, &'static str)];

/// How the token goes into a request.
pub(crate) struct Auth {
    pub(crate) header: &'static str,
    pub(crate) scheme: Option<&'static str>,
}

impl Auth {
    /// `Authorization: <scheme> <token>`.
    pub(crate) const fn authorization(scheme: &'static str) -> Auth {
        Auth {
            header: "authorization",
            scheme: Some(scheme),
        }
    }
}

/// One host: what names it, and its hooks API.
pub(crate) trait HostApi: Send + Sync {
    /// The host's names and addresses.
    fn profile(&self) -> &'static HostProfile;

    /// Whether `host` (lower-cased) is one of this host's SaaS names.
    fn recognises(&self, host: &str) -> bool {
        self.profile().hostnames.contains(&host)
    }

    /// The API URL of the SaaS instance at `host`, for hosts that have one at a fixed address.
    fn saas_api_base(&self, _host: &str) -> Option<String> {
        None
    }

    /// `owner/name` of a repository path (without `.git`), or what the path should look like.
    fn split_path(&self, _url: &GitUrl, segments: &[String]) -> Result<RepoPath, &'static str> {
        match segments {
            [owner, name] => Ok(RepoPath {
                context: String::new(),
                owner: owner.clone(),
                name: name.clone(),
            }),
            _ => Err("owner/repo"),
        }
    }

    /// Path segments of the repository's hook collection under the API base.
    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String>;

    /// Query parameter asking for the largest page; `None` when the host does not page.
    fn page_size_param(&self) -> Option<(&'static str, &'static str)>;

    /// The URL of the next page, if the reply says there is one.
    fn next_page(&self, current: &Url, headers: &HeaderMap, body: &Value) -> Option<String>;

    /// The hooks of one page of the list reply.
    fn page_items(&self, body: Value) -> Result<Vec<Value>, String> {
        match body {
            Value::Array(items) => Ok(items),
            other => Err(format!(
                "expected a JSON array of hooks, got {}",
                kind(&other)
            )),
        }
    }

    /// A hook from the host's JSON.
    fn parse_hook(&self, item: &Value) -> Result<Hook, String>;

    /// Where the token goes.
    fn auth(&self) -> Auth;

    /// Value of the `Accept` header.
    fn accept(&self) -> &'static str {
        "application/json"
    }

    /// Other headers every request carries.
    fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// The body creating `desired`, subscribed to `events` (the names hooks are written with).
    fn create_body(&self, desired: &DesiredHook, events: &[&str]) -> Value;

    /// Whether an edit can make `hook` (to the right URL) into any wanted hook; if not, it is
    /// replaced: deleted and created anew.
    fn edit_can_fix(&self, hook: &Hook) -> bool {
        !matches!(hook.payload, PayloadFormat::Other(_))
    }

    /// The method editing a hook.
    fn update_method(&self) -> Method;

    /// The body turning a hook into `desired`, subscribed to `events`.
    fn update_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        self.create_body(desired, events)
    }

    /// The host's message in an error reply.
    fn error_message(&self, body: &Value) -> Option<String>;

    /// Path segments and query of the log of hook `id`'s deliveries, asking for the newest
    /// one only; `None` for hosts that keep no log this client reads.
    fn deliveries_path(
        &self,
        _repo: &HostedRepository,
        _id: &HookId,
    ) -> Option<(Vec<String>, Query)> {
        None
    }

    /// The newest delivery in a reply to [`deliveries_path`](Self::deliveries_path).
    fn newest_delivery(&self, _body: &Value) -> Result<Option<crate::Delivery>, String> {
        Ok(None)
    }
}

impl Forge {
    /// Every Git host, in the order help texts list them.
    pub const ALL: &'static [Forge] = &[
        Forge::GITHUB,
        Forge::GITLAB,
        Forge::BITBUCKET_CLOUD,
        Forge::BITBUCKET_SERVER,
        Forge::GITEA,
        Forge::GOGS,
    ];
}

/// The URL of the `rel="next"` link of an RFC 8288 `Link` header.
pub(crate) fn link_next(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .find_map(|link| {
            let (target, params) = link.split_once(';')?;
            let is_next = params.split(';').any(|p| {
                let p = p.trim().replace(' ', "");
                p.eq_ignore_ascii_case("rel=\"next\"") || p.eq_ignore_ascii_case("rel=next")
            });
            let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
            is_next.then(|| target.to_owned())
        })
}

/// `current` with query parameter `name` set to `value`.
pub(crate) fn with_query(current: &Url, name: &str, value: &str) -> String {
    let mut next = current.clone();
    let kept: Vec<(String, String)> = current
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    next.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair(name, value);
    next.into()
}

/// Path segments from their parts, each one segment (a `/` in one is percent-encoded).
pub(crate) fn segments(parts: &[&str]) -> Vec<String> {
    parts.iter().map(|part| (*part).to_owned()).collect()
}

/// The items of a `{"values": [...]}` page, as Bitbucket Cloud and Server page their lists.
pub(crate) fn values_page(body: Value) -> Result<Vec<Value>, String> {
    match body {
        Value::Object(mut page) => match page.remove("values") {
            Some(Value::Array(values)) => Ok(values),
            _ => Err("a page without `values`".into()),
        },
        other => Err(format!("expected a page object, got {}", kind(&other))),
    }
}

pub(crate) fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A header holding a whole number.
pub(crate) fn header_number(headers: &HeaderMap, name: &str) -> Option<usize> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// A hook id, whether the host writes it as a number or a string.
pub(crate) fn hook_id(item: &Value, field: &str) -> Result<HookId, String> {
    match item.get(field) {
        Some(Value::Number(n)) => Ok(HookId::new(n.to_string())),
        Some(Value::String(s)) if !s.is_empty() => Ok(HookId::new(s.clone())),
        _ => Err(format!("hook without an `{field}`")),
    }
}

/// A string field, empty when absent.
pub(crate) fn text(item: &Value, pointer: &str) -> String {
    item.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// A boolean field, `default` when absent.
pub(crate) fn flag(item: &Value, pointer: &str, default: bool) -> bool {
    item.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or(default)
}

/// The strings of an array field.
pub(crate) fn string_set(item: &Value, field: &str) -> std::collections::BTreeSet<String> {
    item.get(field)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn next_links_are_found_among_others() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "link",
            HeaderValue::from_static(
                "<https://api.example/x?page=1>; rel=\"prev\", <https://api.example/x?page=3>; rel=\"next\", <https://api.example/x?page=9>; rel=\"last\"",
            ),
        );
        assert_eq!(
            link_next(&headers).as_deref(),
            Some("https://api.example/x?page=3")
        );
        headers.insert(
            "link",
            HeaderValue::from_static("<https://api.example/x?page=1>; rel=\"first\""),
        );
        assert_eq!(link_next(&headers), None);
    }

    #[test]
    fn query_values_are_replaced() {
        let url = Url::parse("https://api.example/x?limit=50&start=0").unwrap();
        assert_eq!(
            with_query(&url, "start", "50"),
            "https://api.example/x?limit=50&start=50"
        );
    }
}
