//! GitHub: `/repos/{owner}/{repo}/hooks`, `Authorization: Bearer`, `Link` pagination.

use fluxhook_payload::header;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{Auth, HostApi, Subscription, flag, hook_id, link_next, segments, string_set, text};
use crate::delivery::host_words;
use crate::{
    Delivery, DesiredHook, Forge, Hook, HostProfile, HostedRepository, PayloadFormat, SecretState,
};

pub(crate) struct GitHub;

impl Forge {
    /// GitHub.com, GitHub Enterprise Cloud (`*.ghe.com`) and GitHub Enterprise Server.
    pub const GITHUB: Forge = Forge::new(&GitHub);
}

static PROFILE: HostProfile = HostProfile {
    name: "github",
    aliases: &[],
    title: "GitHub",
    products: &["GitHub", "GitHub Enterprise Server"],
    hostnames: &["github.com", "www.github.com", "ssh.github.com"],
    saas: &["github.com", "*.ghe.com"],
    api_suffix: "api/v3",
    token_variables: &["GITHUB_TOKEN"],
    event_header: header::X_GITHUB_EVENT,
    // A tag push is a `push`; <https://docs.github.com/en/webhooks/webhook-events-and-payloads>.
    subscriptions: &[
        Subscription::named("push", &["push"], true),
        Subscription::named("pull_request", &["pull_request"], false),
    ],
    hook_tls_setting: Some("insecure_ssl"),
    receiver_types: &["github"],
};

/// GitHub Enterprise Cloud with data residency lives at `<subdomain>.ghe.com`, its API at
/// `api.<subdomain>.ghe.com`
/// (<https://docs.github.com/en/enterprise-cloud@latest/admin/data-residency/network-details-for-ghecom>).
const GHE_COM: &str = ".ghe.com";

/// The `<subdomain>` of a `<subdomain>.ghe.com` host (one label, not `api.` itself).
fn ghe_com_subdomain(host: &str) -> Option<&str> {
    host.strip_suffix(GHE_COM)
        .filter(|sub| !sub.is_empty() && !sub.contains('.'))
}

/// What `last_response` tells of a hook's last delivery: `{code, status, message}`, where a
/// hook with no delivery (or none in 30 days) has `{"code": null, "status": "unused"}` or a
/// null `last_response` ("List repository webhooks": "last response may return null if there
/// have not been any deliveries within 30 days"). Seen in replies: `{"code": 200, "status":
/// "active", "message": "OK"}`, `{"code": 504, "status": "timeout", "message": ""}`
/// (DamageLabs/clahub#38).
fn last_delivery(item: &Value) -> Option<Delivery> {
    let last = item.get("last_response")?.as_object()?;
    let words = |field: &str| host_words(last.get(field).and_then(Value::as_str).unwrap_or(""));
    let status = words("status");
    let code = last
        .get("code")
        .and_then(Value::as_u64)
        .and_then(|code| u16::try_from(code).ok());
    match code {
        Some(code) if (200..300).contains(&code) => Some(Delivery::Succeeded { code }),
        Some(code) => Some(Delivery::Failed {
            code: Some(code),
            status,
            message: words("message"),
        }),
        // No answer: nothing delivered yet, or a failure that reached no receiver.
        None if matches!(status.as_str(), "" | "unused" | "active" | "ok") => None,
        None => Some(Delivery::Failed {
            code: None,
            status,
            message: words("message"),
        }),
    }
}

fn config(desired: &DesiredHook) -> Value {
    json!({
        "url": desired.url().as_str(),
        "content_type": "json",
        "insecure_ssl": if desired.verifies_tls() { "0" } else { "1" },
        "secret": desired.secret().expose(),
    })
}

impl HostApi for GitHub {
    fn profile(&self) -> &'static HostProfile {
        &PROFILE
    }

    fn recognises(&self, host: &str) -> bool {
        PROFILE.hostnames.contains(&host)
            || ghe_com_subdomain(host).is_some()
            || host
                .strip_prefix("ssh.")
                .and_then(ghe_com_subdomain)
                .is_some()
    }

    fn saas_api_base(&self, host: &str) -> Option<String> {
        if PROFILE.hostnames.contains(&host) {
            return Some("https://api.github.com".to_owned());
        }
        let host = host.strip_prefix("ssh.").unwrap_or(host);
        ghe_com_subdomain(host).map(|sub| format!("https://api.{sub}{GHE_COM}"))
    }

    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String> {
        segments(&["repos", repo.owner(), repo.name(), "hooks"])
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        Some(("per_page", "100"))
    }

    fn next_page(&self, _current: &Url, headers: &HeaderMap, _body: &Value) -> Option<String> {
        link_next(headers)
    }

    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        let payload = match item.pointer("/config/content_type").and_then(Value::as_str) {
            Some("json") => PayloadFormat::Json,
            // GitHub's default content type is form.
            Some("form") | None => PayloadFormat::Form,
            Some(other) => PayloadFormat::Other(other.to_owned()),
        };
        let insecure = match item.pointer("/config/insecure_ssl") {
            Some(Value::String(s)) => s != "0",
            Some(Value::Number(n)) => n.as_u64() != Some(0),
            _ => false,
        };
        let secret = match item.pointer("/config/secret").and_then(Value::as_str) {
            Some(s) if !s.is_empty() => SecretState::Hidden,
            _ => SecretState::Missing,
        };
        Ok(Hook {
            id: hook_id(item, "id")?,
            url: text(item, "/config/url"),
            events: string_set(item, "events"),
            active: flag(item, "/active", true),
            payload,
            tls_verification: !insecure,
            secret,
            last_delivery: last_delivery(item),
        })
    }

    fn auth(&self) -> Auth {
        Auth::authorization("Bearer")
    }

    fn accept(&self) -> &'static str {
        "application/vnd.github+json"
    }

    fn extra_headers(&self) -> &'static [(&'static str, &'static str)] {
        &[("x-github-api-version", "2022-11-28")]
    }

    fn create_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        json!({
            "name": "web",
            "active": true,
            "events": events,
            "config": config(desired),
        })
    }

    fn update_method(&self) -> Method {
        Method::PATCH
    }

    fn update_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        json!({
            "active": true,
            "events": events,
            "config": config(desired),
        })
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        let message = body.get("message")?.as_str()?;
        let details: Vec<&str> = body
            .get("errors")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| {
                e.get("message")
                    .and_then(Value::as_str)
                    .or_else(|| e.as_str())
            })
            .collect();
        Some(match details.is_empty() {
            true => message.to_owned(),
            false => format!("{message} ({})", details.join("; ")),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn last_responses_tell_delivery_health() {
        let health = |last: Value| {
            let item = json!({"id": 1, "events": ["push"], "config": {"url": "https://r.example/h"}, "last_response": last});
            GitHub.parse_hook(&item).unwrap().last_delivery
        };
        assert_eq!(health(Value::Null), None);
        assert_eq!(
            health(json!({"code": null, "status": "unused", "message": null})),
            None
        );
        assert_eq!(
            health(json!({"code": 200, "status": "active", "message": "OK"})),
            Some(Delivery::Succeeded { code: 200 })
        );
        let timeout = health(json!({"code": 504, "status": "timeout", "message": ""})).unwrap();
        assert_eq!(
            timeout.to_string(),
            "last delivery failed: HTTP 504 (timeout)"
        );
        let unreached =
            health(json!({"code": null, "status": "failed to connect to host", "message": null}))
                .unwrap();
        assert!(unreached.is_failing(), "{unreached}");
        let item = json!({"id": 1, "events": [], "config": {"url": "https://r.example/h"}});
        assert_eq!(GitHub.parse_hook(&item).unwrap().last_delivery, None);
    }
}
