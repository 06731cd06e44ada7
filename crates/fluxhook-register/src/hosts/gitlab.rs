//! GitLab: `/projects/{url-encoded path}/hooks`, `PRIVATE-TOKEN`, `Link`/`x-next-page`
//! pagination, the secret in the hook's `token`, events as `*_events` flags.

use fluxhook_payload::header;
use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};
use url::Url;

use super::{
    Auth, HostApi, Query, RepoPath, Subscription, flag, hook_id, kind, link_next, text, with_query,
};
use crate::delivery::host_words;
use crate::hook::{fingerprint_label, secret_state_from_label};
use crate::repository::GitUrl;
use crate::{
    Delivery, DesiredHook, Forge, Hook, HookId, HostProfile, HostedRepository, PayloadFormat,
    SecretState,
};

pub(crate) struct GitLab;

impl Forge {
    /// GitLab.com and self-managed GitLab.
    pub const GITLAB: Forge = Forge::new(&GitLab);
}

static PROFILE: HostProfile = HostProfile {
    name: "gitlab",
    aliases: &[],
    title: "GitLab",
    products: &["GitLab"],
    hostnames: &["gitlab.com", "www.gitlab.com", "altssh.gitlab.com"],
    saas: &["gitlab.com"],
    api_suffix: "api/v4",
    token_variables: &["GITLAB_TOKEN"],
    event_header: header::X_GITLAB_EVENT,
    // <https://docs.gitlab.com/user/project/integrations/webhook_events/>: each flag sends its
    // own event; a tag push is a `Tag Push Hook`, not a `Push Hook`.
    subscriptions: &[
        Subscription::named("push_events", &["Push Hook"], true),
        Subscription::named("tag_push_events", &["Tag Push Hook"], true),
        Subscription::named("merge_requests_events", &["Merge Request Hook"], false),
    ],
    hook_tls_setting: Some("enable_ssl_verification"),
    receiver_types: &["gitlab"],
};

/// The event flags of a project hook this client sets: the wanted ones on, the others off.
/// Every flag GitLab's `API::Entities::ProjectHook` (`lib/api/entities/project_hook.rb`)
/// exposes: one left out would stay on if a user turned it on (`vulnerability_events`, of
/// Ultimate, delivers `Vulnerability Hook`s a push Receiver answers 400). A GitLab older than a
/// flag (`vulnerability_events` arrived in 17.8) drops it as an undeclared parameter
/// (`lib/api/project_hooks.rb`: `declared_params(include_missing: false)`) and does not return
/// it; `parse_hook` reads a missing one as off.
const EVENT_FLAGS: [&str; 17] = [
    "push_events",
    "tag_push_events",
    "merge_requests_events",
    "issues_events",
    "confidential_issues_events",
    "note_events",
    "confidential_note_events",
    "job_events",
    "pipeline_events",
    "wiki_page_events",
    "deployment_events",
    "releases_events",
    "feature_flag_events",
    "emoji_events",
    "milestone_events",
    "resource_access_token_events",
    "vulnerability_events",
];

/// The delivery a hook event tells of. `response_status` is the receiver's HTTP status as a
/// string (`"200"` in the docs' example) or GitLab's words when no status came back
/// (`"internal error"`: the receiver was not reached or did not answer).
fn event_delivery(event: &Value) -> Result<Delivery, String> {
    let status = match event.get("response_status") {
        Some(Value::String(status)) => status.trim().to_owned(),
        Some(Value::Number(code)) => code.to_string(),
        Some(other) => {
            return Err(format!(
                "a hook event's `response_status` is {}, not a string",
                kind(other)
            ));
        }
        None => return Err("a hook event without a `response_status`".to_owned()),
    };
    Ok(match status.parse::<u16>() {
        Ok(code) if (200..300).contains(&code) => Delivery::Succeeded { code },
        Ok(code) => Delivery::Failed {
            code: Some(code),
            status: String::new(),
            message: String::new(),
        },
        Err(_) => Delivery::Failed {
            code: None,
            status: host_words(&status),
            message: String::new(),
        },
    })
}

impl HostApi for GitLab {
    fn profile(&self) -> &'static HostProfile {
        &PROFILE
    }

    fn saas_api_base(&self, host: &str) -> Option<String> {
        PROFILE
            .hostnames
            .contains(&host)
            .then(|| "https://gitlab.com/api/v4".to_owned())
    }

    fn split_path(&self, _url: &GitUrl, segments: &[String]) -> Result<RepoPath, &'static str> {
        match segments {
            [namespace @ .., name] if !namespace.is_empty() => Ok(RepoPath {
                context: String::new(),
                owner: namespace.join("/"),
                name: name.clone(),
            }),
            _ => Err("group[/subgroup...]/project"),
        }
    }

    fn hooks_path(&self, repo: &HostedRepository) -> Vec<String> {
        // One segment: the path's `/` is percent-encoded as the API demands.
        vec!["projects".into(), repo.full_name(), "hooks".into()]
    }

    fn page_size_param(&self) -> Option<(&'static str, &'static str)> {
        Some(("per_page", "100"))
    }

    fn next_page(&self, current: &Url, headers: &HeaderMap, _body: &Value) -> Option<String> {
        link_next(headers).or_else(|| {
            let next = headers.get("x-next-page")?.to_str().ok()?.trim();
            (!next.is_empty()).then(|| with_query(current, "page", next))
        })
    }

    fn parse_hook(&self, item: &Value) -> Result<Hook, String> {
        let events = EVENT_FLAGS
            .iter()
            .filter(|f| flag(item, &format!("/{f}"), false))
            .map(|f| (*f).to_owned())
            .collect();
        // `alert_status` is `executable`, `temporarily_disabled` (5xx answers, retried after
        // `disabled_until`) or `disabled` (4xx answers, for good); GitLab before 15.1 has no
        // such field (gitlab-org/gitlab!89322).
        let active = matches!(
            item.get("alert_status").and_then(Value::as_str),
            None | Some("executable")
        );
        // The description arrived in GitLab 17.1: without the field the secret cannot be
        // told; a null one (a hook made by hand, or before fluxhook) holds no fingerprint.
        let secret = match item.get("description") {
            None => SecretState::Hidden,
            Some(description) => match description.as_str() {
                Some(label) => secret_state_from_label(Some(label)),
                None => SecretState::Unrecorded,
            },
        };
        Ok(Hook {
            id: hook_id(item, "id")?,
            url: text(item, "/url"),
            events,
            active,
            payload: PayloadFormat::Json,
            tls_verification: flag(item, "/enable_ssl_verification", true),
            secret,
            last_delivery: match item.get("alert_status").and_then(Value::as_str) {
                Some("executable") => Some(Delivery::Enabled),
                Some("temporarily_disabled") => Some(Delivery::Disabled {
                    until: item
                        .get("disabled_until")
                        .and_then(Value::as_str)
                        .map(host_words),
                }),
                Some("disabled") => Some(Delivery::Disabled { until: None }),
                _ => None,
            },
        })
    }

    fn auth(&self) -> Auth {
        Auth {
            header: "private-token",
            scheme: None,
        }
    }

    fn create_body(&self, desired: &DesiredHook, wanted: &[&str]) -> Value {
        let mut body = Map::new();
        body.insert("url".into(), json!(desired.url().as_str()));
        body.insert("token".into(), json!(desired.secret().expose()));
        body.insert("name".into(), json!("fluxhook"));
        body.insert(
            "description".into(),
            json!(fingerprint_label(&desired.fingerprint())),
        );
        body.insert(
            "enable_ssl_verification".into(),
            json!(desired.verifies_tls()),
        );
        for flag in EVENT_FLAGS {
            body.insert(flag.into(), json!(wanted.contains(&flag)));
        }
        Value::Object(body)
    }

    /// Project hooks have no switch an edit could turn on: a hook GitLab disabled is enabled
    /// again only by a test delivery that succeeds ("Re-enable disabled webhooks",
    /// <https://docs.gitlab.com/user/project/integrations/webhooks/>). A disabled hook is
    /// replaced instead.
    fn edit_can_fix(&self, hook: &Hook) -> bool {
        hook.active
    }

    fn update_method(&self) -> Method {
        Method::PUT
    }

    /// "Get a list of project webhook events" (GitLab 17.3+, gitlab-org/gitlab!151048): the
    /// deliveries of the past 7 days, newest first, paged by `per_page`; one is enough.
    fn deliveries_path(
        &self,
        repo: &HostedRepository,
        id: &HookId,
    ) -> Option<(Vec<String>, Query)> {
        let mut path = self.hooks_path(repo);
        path.extend([id.as_str().to_owned(), "events".to_owned()]);
        Some((path, &[("per_page", "1")]))
    }

    fn newest_delivery(&self, body: &Value) -> Result<Option<Delivery>, String> {
        match body {
            Value::Array(events) => events.first().map(event_delivery).transpose(),
            other => Err(format!(
                "expected a JSON array of hook events, got {}",
                kind(other)
            )),
        }
    }

    fn error_message(&self, body: &Value) -> Option<String> {
        // `{"message": "404 Not found"}`, `{"message": {"url": ["is blocked"]}}`,
        // `{"error": "url is missing"}`.
        match body.get("message").or_else(|| body.get("error"))? {
            Value::String(message) => Some(message.clone()),
            other => Some(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn x_next_page_is_followed_without_a_link_header() {
        let current =
            Url::parse("https://gitlab.example.com/api/v4/projects/g%2Fr/hooks?per_page=100")
                .unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-next-page", HeaderValue::from_static("2"));
        assert_eq!(
            GitLab
                .next_page(&current, &headers, &Value::Null)
                .as_deref(),
            Some("https://gitlab.example.com/api/v4/projects/g%2Fr/hooks?per_page=100&page=2")
        );
        headers.insert("x-next-page", HeaderValue::from_static(""));
        assert_eq!(GitLab.next_page(&current, &headers, &Value::Null), None);
    }

    #[test]
    fn disabled_hooks_and_null_descriptions_are_told_apart() {
        let hook = |extra: Value| {
            let mut item = json!({"id": 1, "url": "https://r.example/hook", "push_events": true});
            item.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            GitLab.parse_hook(&item).unwrap()
        };
        assert!(hook(json!({})).active);
        assert!(hook(json!({"alert_status": "executable"})).active);
        assert!(!hook(json!({"alert_status": "disabled"})).active);
        assert!(!hook(json!({"alert_status": "temporarily_disabled"})).active);
        // Delivery health, as gitlab-org/gitlab!89322 added it.
        assert_eq!(hook(json!({})).last_delivery, None);
        assert_eq!(
            hook(json!({"alert_status": "executable", "disabled_until": null})).last_delivery,
            Some(Delivery::Enabled)
        );
        assert_eq!(
            hook(json!({"alert_status": "temporarily_disabled", "disabled_until": "2026-12-02T13:10:00.000Z"}))
                .last_delivery,
            Some(Delivery::Disabled {
                until: Some("2026-12-02T13:10:00.000Z".into())
            })
        );
        assert_eq!(
            hook(json!({"alert_status": "disabled", "disabled_until": null})).last_delivery,
            Some(Delivery::Disabled { until: None })
        );
        assert_eq!(hook(json!({})).secret, SecretState::Hidden);
        assert_eq!(
            hook(json!({"description": null})).secret,
            SecretState::Unrecorded
        );
        assert_eq!(
            hook(json!({"description": "CI"})).secret,
            SecretState::Unrecorded
        );
    }

    #[test]
    fn the_newest_hook_event_tells_the_last_delivery() {
        let newest = |status: Value| {
            GitLab.newest_delivery(&json!([
                {"id": 2, "trigger": "push_hooks", "execution_duration": 1.07, "response_status": status},
                {"id": 1, "trigger": "push_hooks", "execution_duration": 1.09, "response_status": "200"}
            ]))
        };
        assert_eq!(
            newest(json!("200")).unwrap(),
            Some(Delivery::Succeeded { code: 200 })
        );
        let failed = newest(json!("500")).unwrap().unwrap();
        assert_eq!(failed.to_string(), "last delivery failed: HTTP 500");
        assert_eq!(
            newest(json!(404)).unwrap(),
            Some(Delivery::Failed {
                code: Some(404),
                status: String::new(),
                message: String::new()
            })
        );
        let unreached = newest(json!("internal error")).unwrap().unwrap();
        assert_eq!(
            unreached.to_string(),
            "last delivery failed: internal error"
        );
        assert!(newest(json!(null)).is_err());
        assert_eq!(GitLab.newest_delivery(&json!([])).unwrap(), None);
        assert!(GitLab.newest_delivery(&json!({"message": "x"})).is_err());
    }

    #[test]
    fn every_flag_is_written_so_others_turn_off() {
        let desired = DesiredHook::new(
            Url::parse("https://r.example/hook").unwrap(),
            crate::Secret::new("s"),
            crate::ReceiverEvents::all(),
        );
        let body = GitLab.create_body(&desired, &["push_events", "tag_push_events"]);
        assert_eq!(body["push_events"], json!(true));
        assert_eq!(body["tag_push_events"], json!(true));
        assert_eq!(body["note_events"], json!(false));
        assert_eq!(body["enable_ssl_verification"], json!(true));
        assert_eq!(body["token"], json!("s"));
    }
}
