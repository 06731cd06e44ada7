//! Bitbucket Server / Data Center: `/projects/{KEY}/repos/{slug}/webhooks`, Bearer,
//! `isLastPage`/`nextPageStart` pagination, the secret in `configuration.secret`.

use fluxhook_payload::header;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{
    Auth, HostApi, RepoPath, Subscription, flag, hook_id, segments, string_set, text, values_page,
    with_query,
};
use crate::hook::{fingerprint_label, secret_state_from_label};
use crate::repository::{GitScheme, GitUrl};
use crate::{DesiredHook, Forge, Hook, HostProfile, HostedRepository, PayloadFormat};

pub(crate) struct BitbucketServer;

impl Forge {
    /// Bitbucket Server and Bitbucket Data Center.
    pub const BITBUCKET_SERVER: Forge = Forge::new(&BitbucketServer);
}

static PROFILE: HostProfile = HostProfile {
    name: "bitbucket-server",
    aliases: &["bitbucket-datacenter", "bitbucket-data-center"],
    title: "Bitbucket Server",
    products: &["Bitbucket Server / Data Center"],
    hostnames: &[],
    saas: &[],
    api_suffix: "rest/api/1.0",
    token_variables: &["BITBUCKET_TOKEN"],
    event_header: header::X_EVENT_KEY,
    // <https://confluence.atlassian.com/bitbucketserver/event-payload-938025882.html>: a push
    // of branches or tags is a `repo:refs_changed`.
    subscriptions: &[
        Subscription::named("repo:refs_changed", &["repo:refs_changed"], true),
        Subscription::named("pr:opened", &["pr:opened"], false),
        Subscription::named("pr:from_ref_updated", &["pr:from_ref_updated"], false),
    ],
    hook_tls_setting: Some("sslVerificationRequired"),
    receiver_types: &["bitbucket"],
};

/// Bitbucket Server project keys are upper case (SSH URLs show them lower-cased); personal
/// projects (`~user`) keep the user's name as is.
fn project_key(key: &str) -> String {
    match key.starts_with('~') {
        true => key.to_owned(),
        false => key.to_ascii_uppercase(),
    }
}

impl HostApi for BitbucketServer {
    fn profile(&self) -> &'static HostProfile {
        &PROFILE
    }

    /// Clone URLs are `https://host[/context]/scm/PROJECT/repo.git` and
    /// `ssh://git@host:7999/project/repo.git`.
    fn split_path(&self, url: &GitUrl, segments: &[String]) -> Result<RepoPath, &'static str> {
        let http = matches!(url.scheme, GitScheme::Https | GitScheme::Http);
        let (context, rest) = match segments.iter().position(|s| s == "scm") {
            Some(scm) if http => (
                segments.get(..scm).unwrap_or_default().join("/"),
                segments.get(scm + 1..).unwrap_or_default(),
            ),
            _ if http => return Err("[context/]scm/PROJECT/repo"),
            _ => (String::new(), segments),
        };
        match rest {
            [key, slug] => Ok(RepoPath {
                context,
                owner: project_key(key),
                name: slug.clone(),
            }),
            _ => Err("scm/PROJECT/repo (https) or PROJECT/repo (ssh)"),
        }
    }

    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String> {
        segments(&["projects", repo.owner(), "repos", repo.name(), "webhooks"])
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        Some(("limit", "100"))
    }

    fn next_page(&self, current: &Url, _headers: &HeaderMap, body: &Value) -> Option<String> {
        if flag(body, "/isLastPage", true) {
            return None;
        }
        let start = body.get("nextPageStart")?.as_u64()?;
        Some(with_query(current, "start", &start.to_string()))
    }

    fn page_items(&self, body: Value) -> Result<Vec<Value>, String> {
        values_page(body)
    }

    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        Ok(Hook {
            id: hook_id(item, "id")?,
            url: text(item, "/url"),
            events: string_set(item, "events"),
            active: flag(item, "/active", true),
            payload: PayloadFormat::Json,
            tls_verification: flag(item, "/sslVerificationRequired", true),
            // Some versions echo `configuration.secret`; the fingerprint in the name is what
            // every version keeps.
            secret: secret_state_from_label(item.get("name").and_then(Value::as_str)),
            // The host shows no delivery with the hook.
            last_delivery: None,
        })
    }

    fn auth(&self) -> Auth {
        Auth::authorization("Bearer")
    }

    fn create_body(&self, desired: &DesiredHook, events: &[&str]) -> Value {
        json!({
            "name": fingerprint_label(&desired.fingerprint()),
            "url": desired.url().as_str(),
            "active": true,
            "events": events,
            "configuration": {"secret": desired.secret().expose()},
            "sslVerificationRequired": desired.verifies_tls(),
        })
    }

    fn update_method(&self) -> Method {
        Method::PUT
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        let messages: Vec<String> = body
            .get("errors")?
            .as_array()?
            .iter()
            .filter_map(|e| {
                let message = e.get("message")?.as_str()?;
                Some(match e.get("context").and_then(Value::as_str) {
                    Some(context) => format!("{context}: {message}"),
                    None => message.to_owned(),
                })
            })
            .collect();
        (!messages.is_empty()).then(|| messages.join("; "))
    }
}
