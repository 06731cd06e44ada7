//! Bitbucket Server / Data Center: `/projects/{KEY}/repos/{slug}/webhooks`, Bearer,
//! `isLastPage`/`nextPageStart` pagination, the secret in `configuration.secret`.

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};
use url::Url;

use super::{Auth, HostApi, flag, hook_id, kind, string_set, text, with_query};
use crate::hook::{fingerprint_label, secret_state_from_label};
use crate::{DesiredHook, Hook, PayloadFormat, Provider, Repository};

pub(crate) struct BitbucketServer;

impl HostApi for BitbucketServer {
    fn hooks_path(&self, repo: &Repository) -> Vec<String> {
        vec![
            "projects".into(),
            repo.owner().into(),
            "repos".into(),
            repo.name().into(),
            "webhooks".into(),
        ]
    }

    fn page_size_param(&self) -> (&'static str, &'static str) {
        ("limit", "100")
    }

    fn next_page(&self, current: &Url, _headers: &HeaderMap, body: &Value) -> Option<String> {
        if flag(body, "/isLastPage", true) {
            return None;
        }
        let start = body.get("nextPageStart")?.as_u64()?;
        Some(with_query(current, "start", &start.to_string()))
    }

    fn page_items(&self, body: Value) -> Result<Vec<Value>, String> {
        match body {
            Value::Object(mut page) => match page.remove("values") {
                Some(Value::Array(values)) => Ok(values),
                _ => Err("a page without `values`".into()),
            },
            other => Err(format!("expected a page object, got {}", kind(&other))),
        }
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
        })
    }

    fn auth(&self) -> Auth {
        Auth {
            header: "authorization",
            scheme: Some("Bearer"),
        }
    }

    fn create_body(&self, desired: &DesiredHook) -> Value {
        json!({
            "name": fingerprint_label(&desired.fingerprint()),
            "url": desired.url().as_str(),
            "active": true,
            "events": desired.events().native(Provider::BitbucketServer),
            "configuration": {"secret": desired.secret().expose()},
            "sslVerificationRequired": true,
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
