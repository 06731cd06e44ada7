//! Gitea and Forgejo: `/repos/{owner}/{repo}/hooks`, `Authorization: token`, pages counted by
//! `X-Total-Count`, hooks of type `gitea` with a `config` map.

use fluxhook_payload::header;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::Value;
use url::Url;

use super::{Auth, HostApi, Subscription, gogs, header_number, link_next, segments, with_query};
use crate::{DesiredHook, Forge, Hook, HostProfile, HostedRepository};

pub(crate) struct Gitea;

impl Forge {
    /// Gitea and Forgejo (Codeberg runs Forgejo); both speak the same hooks API.
    pub const GITEA: Forge = Forge::new(&Gitea);
}

static PROFILE: HostProfile = HostProfile {
    name: "gitea",
    aliases: &["forgejo"],
    title: "Gitea",
    products: &["Gitea", "Forgejo"],
    hostnames: &["gitea.com", "codeberg.org"],
    saas: &["gitea.com", "codeberg.org"],
    api_suffix: "api/v1",
    token_variables: &["GITEA_TOKEN", "FORGEJO_TOKEN"],
    // Deliveries carry `X-GitHub-Event` (and `X-Gitea-Event`): `HookEventType.Event()` of
    // `modules/webhook/type.go`, the hook event itself or, for the pull request family, its
    // group: `pull_request_sync` delivers `pull_request`, `pull_request_comment` an
    // `issue_comment`, reviews `pull_request_approved`... The hook event `pull_request`
    // subscribes to the whole family (`pullHook` of `routers/api/v1/utils/hook.go`), and the
    // family is read back expanded (`EventsArray`); `pull_request_only` subscribes to the
    // pull requests themselves and reads back as `pull_request`.
    event_header: header::X_GITHUB_EVENT,
    subscriptions: &[
        Subscription::named("push", &["push"], true),
        Subscription {
            write: "pull_request_only",
            read: "pull_request",
            delivers: &["pull_request"],
            by_default: false,
        },
        Subscription::named("pull_request_sync", &["pull_request"], false),
    ],
    // The instance verifies TLS (`SKIP_TLS_VERIFY`), not the hook.
    hook_tls_setting: None,
    // `X-Hub-Signature-256` is sent since Gitea 1.12 (`services/webhook/deliver.go`).
    receiver_types: &["github"],
};

impl HostApi for Gitea {
    fn profile(&self) -> &'static HostProfile {
        &PROFILE
    }

    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String> {
        segments(&["repos", repo.owner(), repo.name(), "hooks"])
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        Some(("limit", "50"))
    }

    /// `ListHooks` (`routers/api/v1/repo/hook.go`) sends `X-Total-Count` and no `Link`
    /// header; the page size it uses is the `limit` asked for, capped by the instance's
    /// `MAX_RESPONSE_ITEMS`, so the first page's length is the page size. Versions before the
    /// count paged nothing (or linked the next page, as Forgejo may).
    fn next_page(&self, current: &Url, headers: &HeaderMap, body: &Value) -> Option<String> {
        let Some(total) = header_number(headers, "x-total-count") else {
            return link_next(headers);
        };
        let shown = body.as_array().map_or(0, Vec::len);
        let query = |name: &str| {
            current
                .query_pairs()
                .find(|(key, _)| key == name)
                .and_then(|(_, value)| value.parse::<usize>().ok())
        };
        let page = query("page").unwrap_or(1);
        let size = match page {
            1 => shown,
            _ => query("limit").unwrap_or(shown),
        };
        let seen = page
            .saturating_sub(1)
            .saturating_mul(size)
            .saturating_add(shown);
        if shown == 0 || seen >= total {
            return None;
        }
        let next = Url::parse(&with_query(current, "page", &(page + 1).to_string())).ok()?;
        Some(with_query(&next, "limit", &size.to_string()))
    }

    /// Only Gitea-type hooks (Forgejo's own name for them too) send Gitea's JSON payload and
    /// signature.
    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        gogs::parse_hook(item, &["gitea", "forgejo"])
    }

    fn auth(&self) -> Auth {
        Auth::authorization("token")
    }

    fn create_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        gogs::create_body("gitea", desired, events)
    }

    /// Gitea's `editHook` (`routers/api/v1/utils/hook.go`) long ignored `config.secret`
    /// (go-gitea/gitea 3e4d1edd; compare 040cb8b6, which reads it; go-gitea/gitea#23142 asked
    /// for it), and Forgejo forked from those versions. The host never shows the secret, so an edited hook may keep an old
    /// one: a hook that differs is replaced instead.
    fn edit_can_fix(&self, _hook: &Hook) -> bool {
        false
    }

    fn update_method(&self) -> Method {
        Method::PATCH
    }

    fn update_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        gogs::update_body(desired, events)
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        gogs::error_message(body)
    }
}
