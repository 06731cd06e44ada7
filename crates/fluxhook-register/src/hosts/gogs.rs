//! Gogs: the API family Gitea forked from, `/repos/{owner}/{repo}/hooks` under `/api/v1`,
//! `Authorization: token`, hooks of type `gogs` with a `config` map.
//!
//! What differs from Gitea, from gogs/gogs (`internal/route/api/v1/repo_hook.go`,
//! `internal/database/webhook.go`, commit eb1054e5, 2026):
//! - the hook list is one unpaged array (`listHooks` has no `page`/`limit`);
//! - hooks have type `gogs` (`IsValidHookTaskType`: `gogs`, `slack`, `discord`, `dingtalk`);
//! - events are `create`, `delete`, `fork`, `push`, `issues`, `issue_comment`,
//!   `pull_request`, `release`, read back as written;
//! - deliveries carry `X-Gogs-Signature`, a bare hex HMAC-SHA256, and no `X-Hub-Signature`.

use fluxhook_payload::header;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{Auth, HostApi, Subscription, flag, hook_id, segments, string_set, text};
use crate::{DesiredHook, Forge, Hook, HostProfile, HostedRepository, PayloadFormat, SecretState};

pub(crate) struct Gogs;

impl Forge {
    /// Gogs, the API family Gitea forked from.
    pub const GOGS: Forge = Forge::new(&Gogs);
}

static PROFILE: HostProfile = HostProfile {
    name: "gogs",
    aliases: &[],
    title: "Gogs",
    products: &["Gogs"],
    hostnames: &[],
    saas: &[],
    api_suffix: "api/v1",
    token_variables: &["GOGS_TOKEN"],
    // `X-Gogs-Event` (and `X-Github-Event`) is the hook event itself.
    event_header: header::X_GOGS_EVENT,
    subscriptions: &[
        Subscription::named("push", &["push"], true),
        Subscription::named("pull_request", &["pull_request"], false),
    ],
    // The instance verifies TLS (`SKIP_TLS_VERIFY`), not the hook.
    hook_tls_setting: None,
    // Deliveries are signed in `X-Gogs-Signature` only, which no Flux Receiver type reads
    // (`github` and `bitbucket` need `X-Hub-Signature`): only `generic` accepts them.
    receiver_types: &[],
};

/// The hook type that sends Gogs' own JSON payload.
const HOOK_TYPE: &str = "gogs";

// What Gitea kept of Gogs' hooks API, which its file uses too.

/// A hook's `config` map.
fn config(desired: &DesiredHook) -> Value {
    json!({
        "url": desired.url().as_str(),
        "content_type": "json",
        "secret": desired.secret().expose(),
    })
}

/// A hook as the list shows it, where hooks of `own_types` send the host's own JSON payload
/// and signature (editing cannot change a hook's type).
pub(super) fn parse_hook(item: &Value, own_types: &[&str]) -> Result<Hook, String> {
    let hook_type = text(item, "/type");
    let own = own_types.contains(&hook_type.as_str());
    let payload = match (own, text(item, "/config/content_type").as_str()) {
        (true, "json") => PayloadFormat::Json,
        (true, _) => PayloadFormat::Form,
        (false, _) => PayloadFormat::Other(hook_type),
    };
    Ok(Hook {
        id: hook_id(item, "id")?,
        url: text(item, "/config/url"),
        events: string_set(item, "events"),
        active: flag(item, "/active", true),
        payload,
        // The instance verifies TLS (`[webhook] SKIP_TLS_VERIFY`), not the hook.
        tls_verification: true,
        // `toRepositoryHook` (Gitea's `ToHook`) never shows the secret, nor whether one is set.
        secret: SecretState::Hidden,
        // The host shows no delivery with the hook.
        last_delivery: None,
    })
}

/// The body creating a hook of type `hook_type`.
pub(super) fn create_body(hook_type: &str, desired: &DesiredHook, events: &[&str]) -> Value {
    json!({
        "type": hook_type,
        "config": config(desired),
        "events": events,
        "active": true,
    })
}

/// The body of an edit (`PATCH`), which cannot change the type.
pub(super) fn update_body(desired: &DesiredHook, events: &[&str]) -> Value {
    json!({
        "config": config(desired),
        "events": events,
        "active": true,
    })
}

/// `APIContext.ErrorStatus`: `{"message": ..., "url": <doc URL>}`.
pub(super) fn error_message(body: &Value) -> Option<String> {
    body.get("message")?.as_str().map(str::to_owned)
}

impl HostApi for Gogs {
    fn profile(&self) -> &'static HostProfile {
        &PROFILE
    }

    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String> {
        segments(&["repos", repo.owner(), repo.name(), "hooks"])
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        None
    }

    fn next_page(&self, _current: &Url, _headers: &HeaderMap, _body: &Value) -> Option<String> {
        None
    }

    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        parse_hook(item, &[HOOK_TYPE])
    }

    fn auth(&self) -> Auth {
        Auth::authorization("token")
    }

    fn create_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        create_body(HOOK_TYPE, desired, events)
    }

    /// `editHook` never reads `config.secret`: an edited hook keeps the secret it was created
    /// with, which the host does not show. A hook that differs is replaced instead.
    fn edit_can_fix(&self, _hook: &Hook) -> bool {
        false
    }

    fn update_method(&self) -> Method {
        Method::PATCH
    }

    fn update_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        update_body(desired, events)
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        error_message(body)
    }
}
