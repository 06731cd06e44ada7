//! Gitea and Forgejo: `/repos/{owner}/{repo}/hooks`, `Authorization: token`, `Link`
//! pagination, hooks of type `gitea` with a `config` map.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{Auth, HostApi, Profile, flag, hook_id, link_next, string_set, text};
use crate::{DesiredHook, Hook, PayloadFormat, Provider, Repository, SecretState};

pub(crate) struct Gitea;

static PROFILE: Profile = Profile {
    name: "gitea",
    aliases: &["forgejo"],
    title: "Gitea",
    hostnames: &["gitea.com", "codeberg.org"],
    api_suffix: "api/v1",
    token_variables: &["GITEA_TOKEN", "FORGEJO_TOKEN"],
};

fn config(desired: &DesiredHook) -> Value {
    json!({
        "url": desired.url().as_str(),
        "content_type": "json",
        "secret": desired.secret().expose(),
    })
}

impl HostApi for Gitea {
    fn profile(&self) -> &'static Profile {
        &PROFILE
    }

    fn hooks_path(&self, repo: &Repository) -> Vec<String> {
        vec![
            "repos".into(),
            repo.owner().into(),
            repo.name().into(),
            "hooks".into(),
        ]
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        Some(("limit", "50"))
    }

    fn next_page(&self, _current: &Url, headers: &HeaderMap, _body: &Value) -> Option<String> {
        link_next(headers)
    }

    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        let hook_type = text(item, "/type");
        // Only Gitea-type hooks (Forgejo's own name for them too) send Gitea's JSON payload
        // and signature; editing cannot change a hook's type.
        let payload = match (
            hook_type.as_str(),
            text(item, "/config/content_type").as_str(),
        ) {
            ("gitea" | "forgejo", "json") => PayloadFormat::Json,
            ("gitea" | "forgejo", _) => PayloadFormat::Form,
            _ => PayloadFormat::Other(hook_type),
        };
        Ok(Hook {
            id: hook_id(item, "id")?,
            url: text(item, "/config/url"),
            events: string_set(item, "events"),
            active: flag(item, "/active", true),
            payload,
            // Gitea verifies TLS per instance (`SKIP_TLS_VERIFY`), not per hook.
            tls_verification: true,
            // Gitea never shows the secret or whether one is set.
            secret: SecretState::Hidden,
        })
    }

    fn auth(&self) -> Auth {
        Auth {
            header: "authorization",
            scheme: Some("token"),
        }
    }

    fn create_body(&self, desired: &DesiredHook) -> Value {
        json!({
            "type": "gitea",
            "config": config(desired),
            "events": desired.events().native(Provider::Gitea),
            "active": true,
        })
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

    fn update_body(&self, desired: &DesiredHook) -> Value {
        json!({
            "config": config(desired),
            "events": desired.events().native(Provider::Gitea),
            "active": true,
        })
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        body.get("message")?.as_str().map(str::to_owned)
    }
}
