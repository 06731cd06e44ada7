//! Bitbucket Cloud: `/repositories/{workspace}/{repo_slug}/hooks`, Bearer, `next` links.

use fluxhook_payload::header;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{Auth, HostApi, Subscription, flag, hook_id, segments, string_set, text, values_page};
use crate::hook::{fingerprint_label, secret_state_from_label};
use crate::{DesiredHook, Forge, Hook, HostProfile, HostedRepository, PayloadFormat, SecretState};

pub(crate) struct BitbucketCloud;

impl Forge {
    /// Bitbucket Cloud (bitbucket.org).
    pub const BITBUCKET_CLOUD: Forge = Forge::new(&BitbucketCloud);
}

static PROFILE: HostProfile = HostProfile {
    name: "bitbucket-cloud",
    aliases: &["bitbucket"],
    title: "Bitbucket Cloud",
    products: &["Bitbucket Cloud"],
    hostnames: &["bitbucket.org", "www.bitbucket.org", "altssh.bitbucket.org"],
    saas: &["bitbucket.org"],
    api_suffix: "2.0",
    token_variables: &["BITBUCKET_TOKEN"],
    event_header: header::X_EVENT_KEY,
    // <https://support.atlassian.com/bitbucket-cloud/docs/event-payloads/>: a tag push is a
    // `repo:push`.
    subscriptions: &[
        Subscription::named("repo:push", &["repo:push"], true),
        Subscription::named("pullrequest:created", &["pullrequest:created"], false),
        Subscription::named("pullrequest:updated", &["pullrequest:updated"], false),
    ],
    hook_tls_setting: Some("skip_cert_verification"),
    receiver_types: &["bitbucket"],
};

impl HostApi for BitbucketCloud {
    fn profile(&self) -> &'static HostProfile {
        &PROFILE
    }

    /// Bitbucket Cloud has one API, whatever host name a repository URL shows.
    fn saas_api_base(&self, _host: &str) -> Option<String> {
        Some("https://api.bitbucket.org/2.0".to_owned())
    }

    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String> {
        segments(&["repositories", repo.owner(), repo.name(), "hooks"])
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        Some(("pagelen", "100"))
    }

    fn next_page(&self, _current: &Url, _headers: &HeaderMap, body: &Value) -> Option<String> {
        body.get("next").and_then(Value::as_str).map(str::to_owned)
    }

    fn page_items(&self, body: Value) -> Result<Vec<Value>, String> {
        values_page(body)
    }

    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        let secret = match item.get("secret_set").and_then(Value::as_bool) {
            Some(false) => SecretState::Missing,
            _ => secret_state_from_label(item.get("description").and_then(Value::as_str)),
        };
        Ok(Hook {
            id: hook_id(item, "uuid")?,
            url: text(item, "/url"),
            events: string_set(item, "events"),
            active: flag(item, "/active", true),
            payload: PayloadFormat::Json,
            tls_verification: !flag(item, "/skip_cert_verification", false),
            secret,
            // The host shows no delivery with the hook.
            last_delivery: None,
        })
    }

    fn auth(&self) -> Auth {
        Auth::authorization("Bearer")
    }

    fn create_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        json!({
            "description": fingerprint_label(&desired.fingerprint()),
            "url": desired.url().as_str(),
            "active": true,
            "secret": desired.secret().expose(),
            "skip_cert_verification": !desired.verifies_tls(),
            "events": events,
        })
    }

    fn update_method(&self) -> Method {
        Method::PUT
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        let error = body.get("error")?;
        let message = error.get("message")?.as_str()?;
        let fields: Vec<String> = error
            .get("fields")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(field, problems)| match problems {
                Value::Array(list) => {
                    let texts: Vec<&str> = list.iter().filter_map(Value::as_str).collect();
                    format!("{field}: {}", texts.join(" "))
                }
                other => format!("{field}: {other}"),
            })
            .collect();
        Some(match fields.is_empty() {
            true => message.to_owned(),
            false => format!("{message} ({})", fields.join("; ")),
        })
    }
}
