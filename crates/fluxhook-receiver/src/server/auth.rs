//! Whether a request is genuine and one its Receiver handles, per Receiver
//! type, as Flux's notification-controller decides it.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use fluxhook_api::{Payload, ReceiverType};
use fluxhook_cel::Document;
use fluxhook_oidc::{GcrRequirements, OidcVerifier};
use fluxhook_payload::{Origin, Parser, Sender, Webhook, check_hub_delivery};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::endpoint::{Credentials, Endpoint, OidcTrust};

/// Why a request is refused (400). Never holds a token, a signature or the
/// webhook path; what the sender wrote is quoted and clipped.
#[derive(Debug)]
pub(super) struct Rejection(Reason);

/// A refusal's text, or its parts for the commonest refusal (a signature or
/// token that does not verify), written only when the line is: a request
/// with a wrong signature made and freed a string for it otherwise.
#[derive(Debug)]
enum Reason {
    Text(String),
    Credentials {
        refusal: &'static str,
        error: fluxhook_signature::VerifyError,
    },
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Reason::Text(text) => f.write_str(text),
            Reason::Credentials { refusal, error } => write!(f, "{refusal}: {error}"),
        }
    }
}

impl Rejection {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self(Reason::Text(message.into()))
    }
}

/// What authentication established about a request.
#[derive(Debug, Default)]
pub(super) struct Verified {
    /// The verified claims of a `generic-oidc` token.
    pub(super) claims: Option<Map<String, Value>>,
    /// The payload, for the types whose payload is read.
    pub(super) webhook: Option<Webhook>,
}

/// Checks the request against the Receiver's credentials, reads its payload
/// where Flux reads it, and checks its event against `spec.events`, as
/// notification-controller's `validate` does
/// (`internal/server/receiver_handlers.go`, v1.9).
pub(super) async fn authenticate(
    verifier: &OidcVerifier,
    parser: &Parser,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Verified, Rejection> {
    let claims = verify_credentials(verifier, endpoint, headers, body).await?;
    let kind = &endpoint.receiver_type;
    let parse = |sender| parser.parse(sender, headers, body.clone());
    // What is read of the body, by the type's `payload()` alone: one arm per
    // way, no wildcard; what differs between types is in the value.
    let webhook = match kind.payload() {
        Payload::Unread { flux_name } => {
            if let Some(name) = flux_name {
                request_log!(info!("handling {name} event"));
            }
            None
        }
        Payload::GitEvent {
            senders,
            flux_name,
            hub_delivery,
        } => {
            if hub_delivery {
                check_hub_delivery(headers, body).map_err(|e| {
                    Rejection::new(format!(
                        "the {flux_name} signature header is invalid, err: {e}"
                    ))
                })?;
            }
            let event = event_of(kind, headers);
            check_event(endpoint, format_args!("{flux_name} event"), &event)?;
            request_log!(info!("handling {flux_name} event: {}", quoted(&event)));
            // Flux reads the event header alone. Parsing the body would only
            // name the repository in a debug line: not worth its cost on
            // every delivery (about an HMAC's, see docs/performance.md).
            if tracing::enabled!(tracing::Level::DEBUG)
                && let Some(sender) = Sender::detect_among(senders, headers)
            {
                match parse(sender) {
                    Ok(webhook) => request_log!(debug!(
                        repository = webhook.repository().map(|r| r.full_name()),
                        %sender,
                        "payload read"
                    )),
                    Err(error) => request_log!(debug!(%sender, %error, "payload not parsed")),
                }
            }
            None
        }
        Payload::CdEvent => {
            // Flux filters on the CloudEvent type the header names, and
            // validates the body as a CDEvent of whatever type it says.
            let event = event_of(kind, headers);
            let webhook = parse(Sender::CdEvents)
                .map_err(|e| Rejection::new(format!("unable to validate CDEvent event: {e}")))?;
            check_event(endpoint, format_args!("CDEvent"), &event)?;
            request_log!(info!("handling CDEvent: {}", quoted(&event)));
            Some(webhook)
        }
        Payload::Notification { sender, flux_name } => {
            let webhook = parse(sender).map_err(|error| {
                Rejection::new(format!(
                    "cannot decode {flux_name} webhook payload: {error}"
                ))
            })?;
            log_notification(flux_name, &webhook);
            Some(webhook)
        }
        Payload::Unsupported => {
            return Err(Rejection::new(format!(
                "receiver type {} not supported",
                quoted(kind.as_str())
            )));
        }
    };
    Ok(Verified { claims, webhook })
}

/// Checks the signature, token or ID token; returns a `generic-oidc`
/// token's verified claims.
async fn verify_credentials(
    verifier: &OidcVerifier,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Option<Map<String, Value>>, Rejection> {
    match &endpoint.credentials {
        Credentials::PathOnly => Ok(None),
        Credentials::Signed {
            verifier,
            refusal,
            token,
        } => {
            verifier
                .verify(headers, body, token)
                .map_err(|error| Rejection(Reason::Credentials { refusal, error }))?;
            Ok(None)
        }
        Credentials::GoogleIdToken { audience, email } => {
            verifier
                .verify_gcr(headers, &GcrRequirements::new(audience, email))
                .await
                .map_err(|e| Rejection::new(format!("cannot authenticate GCR request: {e}")))?;
            Ok(None)
        }
        Credentials::Oidc(trust) => verify_oidc(verifier, trust, headers).await.map(Some),
    }
}

/// Verifies a `generic-oidc` token, then the accepting provider's claim
/// rules.
async fn verify_oidc(
    verifier: &OidcVerifier,
    trust: &OidcTrust,
    headers: &HeaderMap,
) -> Result<Map<String, Value>, Rejection> {
    let token = verifier
        .verify_generic_oidc(headers, trust.providers())
        .await
        .map_err(|e| Rejection::new(format!("failed to verify OIDC token: {e}")))?;
    let Value::Object(claims) = token.claims else {
        return Err(Rejection::new("the OIDC token's claims are not an object"));
    };
    let rules = trust
        .rules_of(&token.provider.issuer_url)
        .ok_or_else(|| Rejection::new("no oidcProvider accepted the token"))?;
    let document = Document::from_object(&claims)
        .map_err(|e| Rejection::new(format!("the OIDC token's claims are unusable: {e}")))?;
    rules
        .verify(&document)
        .map_err(|e| Rejection::new(e.to_string()))?;
    Ok(claims)
}

/// A header's value as Go's `Header.Get` gives it: the first, empty when
/// absent. Borrowed unless it is not UTF-8 (then with replacement
/// characters): it is read on every delivery.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Cow<'a, str> {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .unwrap_or_default()
}

/// The event a delivery names in its type's
/// [`event_header`](ReceiverType::event_header), as Flux reads it: for
/// `github`, `X-GitHub-Event` alone (go-github's `WebHookType`; Gitea and
/// Forgejo send it too). Absent is the empty event.
fn event_of<'a>(kind: &ReceiverType, headers: &'a HeaderMap) -> Cow<'a, str> {
    kind.event_header()
        .map(|name| header_text(headers, name))
        .unwrap_or_default()
}

/// Refuses an event not in `spec.events` (for the types that filter on
/// events), as Flux does: "the GitHub event \"issues\" is not authorised".
fn check_event(
    endpoint: &Endpoint,
    what: fmt::Arguments<'_>,
    event: &str,
) -> Result<(), Rejection> {
    if endpoint.accepts_event(event) {
        Ok(())
    } else {
        Err(Rejection::new(format!(
            "the {what} {} is not authorised",
            quoted(event)
        )))
    }
}

/// Logs a registry's notification as Flux does: where from, and the tag.
fn log_notification(source: &str, webhook: &Webhook) {
    match webhook.event().origin() {
        Some(Origin {
            from,
            tag: Some(tag),
            ..
        }) => request_log!(info!(
            "handling {source} event from {} for tag {}",
            quoted(from),
            quoted(tag)
        )),
        Some(Origin { from, .. }) => {
            request_log!(info!("handling {source} event from {}", quoted(from)))
        }
        None => request_log!(info!("handling {source} event")),
    }
}

/// What a sender wrote, quoted with escapes and clipped, for a log line;
/// written into the line as it is formatted (no string of its own: an
/// accepted delivery's line is written on every request).
fn quoted(text: &str) -> Quoted<'_> {
    Quoted(text)
}

/// See [`quoted`].
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const MAX_CHARS: usize = 200;
        let text = self.0;
        match text.char_indices().nth(MAX_CHARS) {
            Some((end, _)) => write!(f, "{:?}...", text.get(..end).unwrap_or_default()),
            None => write!(f, "{text:?}"),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|&(name, value)| (name.parse().unwrap(), http::HeaderValue::from_static(value)))
            .collect()
    }

    /// As go-github's `WebHookType`: `X-GitHub-Event` alone, which Gitea
    /// and Forgejo send too; their own event headers are not read.
    #[test]
    fn events_are_read_from_the_header_flux_reads() {
        let github = ReceiverType::GitHub;
        assert_eq!(
            event_of(
                &github,
                &headers(&[("X-GitHub-Event", "push"), ("X-Gitea-Event", "x")])
            ),
            "push"
        );
        assert_eq!(
            event_of(&github, &headers(&[("X-Gitea-Event", "push")])),
            ""
        );
        assert_eq!(event_of(&github, &headers(&[])), "");
        assert_eq!(
            event_of(
                &ReceiverType::GitLab,
                &headers(&[("X-Gitlab-Event", "Push Hook")])
            ),
            "Push Hook"
        );
        assert_eq!(
            event_of(
                &ReceiverType::Bitbucket,
                &headers(&[("X-Event-Key", "repo:push")])
            ),
            "repo:push"
        );
        assert_eq!(
            event_of(
                &ReceiverType::Harbor,
                &headers(&[("X-GitHub-Event", "push")])
            ),
            ""
        );
    }

    /// Fail closed, type by type: a request that carries no credentials
    /// gets past authentication only for the five types Flux serves on the
    /// path alone, and a body those types read is still read.
    #[tokio::test]
    async fn only_path_types_take_a_request_without_credentials() {
        use fluxhook_api::{Authentication, Receiver};
        use serde_json::json;

        let verifier = OidcVerifier::new(std::sync::Arc::new(
            fluxhook_oidc::HttpKeySource::new().unwrap(),
        ));
        let parser = Parser::new();
        let secret: std::collections::BTreeMap<String, Vec<u8>> = [
            ("token", "t0ken"),
            ("email", "push@p.iam.gserviceaccount.com"),
            ("audience", "https://hooks.example.com"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec()))
        .collect();
        // A body every path-only type reads as a valid delivery of its own.
        let body = Bytes::from(
            json!({
                "context": {"version": "0.4.1", "id": "1", "source": "/ci",
                            "type": "dev.cdevents.change.merged.0.2.0"},
                "subject": {"id": "c1", "type": "change", "content": {}}
            })
            .to_string(),
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            "content-type",
            http::HeaderValue::from_static("application/json"),
        );
        for type_ in ReceiverType::KNOWN {
            let mut spec = json!({
                "type": type_.as_str(),
                "resources": [{"kind": "GitRepository", "name": "app"}]
            });
            if type_ == ReceiverType::GenericOidc {
                spec["oidcProviders"] = json!([{
                    "issuerURL": "https://token.actions.githubusercontent.com",
                    "validations": [{"expression": "true", "message": "no"}]
                }]);
            } else {
                spec["secretRef"] = json!({"name": "token"});
            }
            let receiver: Receiver = serde_json::from_value(json!({
                "apiVersion": "notification.toolkit.fluxcd.io/v1",
                "kind": "Receiver",
                "metadata": {"name": "r", "namespace": "ns"},
                "spec": spec
            }))
            .unwrap();
            let endpoint = Endpoint::compile(&receiver, Some(&secret)).unwrap();
            let outcome = authenticate(&verifier, &parser, &endpoint, &headers, &body).await;
            let path_only = type_.authentication() == Authentication::Path;
            assert_eq!(outcome.is_ok(), path_only, "{type_}: {outcome:?}");
        }
    }

    proptest! {
        #[test]
        fn quoted_is_one_bounded_line(text in any::<String>()) {
            let quoted = quoted(&text).to_string();
            prop_assert!(!quoted.contains('\n'));
            prop_assert!(quoted.chars().count() <= 200 * 10 + 5);
        }
    }
}
