//! Whether a request is genuine and one its Receiver handles, per Receiver
//! type, as Flux's notification-controller decides it.

use std::fmt;

use bytes::Bytes;
use fluxhook_api::ReceiverType;
use fluxhook_cel::Document;
use fluxhook_oidc::{GcrRequirements, OidcVerifier};
use fluxhook_payload::{Event, ParseError, Parser, Provider, Webhook};
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::endpoint::{Credentials, Endpoint, OidcTrust};

/// Why a request is refused (400). Never holds a token, a signature or the
/// webhook path; what the sender wrote is quoted and clipped.
#[derive(Debug)]
pub(super) struct Rejection(String);

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Rejection {
    pub(super) fn new(message: impl Into<String>) -> Self {
        Self(message.into())
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
/// where Flux reads it, and checks its event against `spec.events`.
pub(super) async fn authenticate(
    verifier: &OidcVerifier,
    parser: &Parser,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Result<Verified, Rejection> {
    let claims = verify_credentials(verifier, endpoint, headers, body).await?;
    let kind = &endpoint.receiver_type;
    let parse = |provider| parser.parse(provider, headers, body.clone());
    let webhook = match kind {
        ReceiverType::GitHub | ReceiverType::GitLab | ReceiverType::Bitbucket => {
            let event = header_event(kind, headers);
            check_event(endpoint, &event)?;
            // The payload only enriches the log: Flux reads the event header alone.
            let provider = git_provider(kind, headers);
            let webhook = parse(provider)
                .inspect_err(|error| tracing::debug!(%provider, %error, "payload not parsed"))
                .ok();
            let repository = webhook
                .as_ref()
                .and_then(Webhook::repository)
                .map(|r| r.full_name());
            tracing::info!(
                repository,
                "handling {} event: {}",
                event_source(kind),
                quoted(&event)
            );
            webhook
        }
        ReceiverType::CdEvents => {
            let webhook = parse(Provider::CdEvents)
                .map_err(|e| Rejection::new(format!("unable to validate CDEvent event: {e}")))?;
            let event = webhook.event_type().unwrap_or_default().to_owned();
            check_event(endpoint, &event)?;
            tracing::info!("handling CDEvent: {}", quoted(&event));
            Some(webhook)
        }
        ReceiverType::DockerHub
        | ReceiverType::Quay
        | ReceiverType::Nexus
        | ReceiverType::Acr
        | ReceiverType::Gcr => {
            let provider = registry_provider(kind);
            let webhook = match parse(provider) {
                Ok(webhook) => Some(webhook),
                // Flux decodes these payloads into structs whose fields are
                // all optional: a missing field is no reason to refuse. GCR's
                // notification is needed whole, for CEL.
                Err(error) if *kind != ReceiverType::Gcr && is_missing_data(&error) => {
                    tracing::debug!(%error, "payload incomplete");
                    None
                }
                Err(error) => {
                    return Err(Rejection::new(format!(
                        "cannot decode {} webhook payload: {error}",
                        event_source(kind)
                    )));
                }
            };
            log_registry_event(kind, webhook.as_ref());
            webhook
        }
        ReceiverType::Harbor => {
            tracing::info!("handling Harbor event");
            None
        }
        ReceiverType::Generic | ReceiverType::GenericHmac | ReceiverType::GenericOidc => None,
        ReceiverType::Unknown(other) => {
            return Err(Rejection::new(format!(
                "receiver type {} not supported",
                quoted(other.as_str())
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
        Credentials::Signed { policy, token } => {
            policy
                .verify(headers, body, token)
                .map_err(|e| Rejection::new(signature_error(&endpoint.receiver_type, &e)))?;
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

/// Flux's message for a signature or token that does not verify.
fn signature_error(kind: &ReceiverType, error: &fluxhook_signature::VerifyError) -> String {
    match kind {
        ReceiverType::GenericHmac => format!("unable to validate HMAC signature: {error}"),
        ReceiverType::GitHub => format!("the GitHub signature header is invalid: {error}"),
        ReceiverType::GitLab => {
            format!("the X-Gitlab-Token header value does not match the receiver token: {error}")
        }
        ReceiverType::Bitbucket => {
            format!("the Bitbucket server signature header is invalid: {error}")
        }
        ReceiverType::Harbor => format!(
            "the Harbor Authorization header value does not match the receiver token: {error}"
        ),
        ReceiverType::Nexus => format!("invalid Nexus signature: {error}"),
        other => format!("invalid {other} signature: {error}"),
    }
}

/// The sender as Flux's messages name it.
fn event_source(kind: &ReceiverType) -> &'static str {
    match kind {
        ReceiverType::GitHub => "GitHub",
        ReceiverType::GitLab => "GitLab",
        ReceiverType::Bitbucket => "Bitbucket server",
        ReceiverType::DockerHub => "DockerHub",
        ReceiverType::Quay => "Quay",
        ReceiverType::Nexus => "Nexus",
        ReceiverType::Acr => "ACR",
        ReceiverType::Gcr => "GCR",
        ReceiverType::CdEvents => "CDEvent",
        _ => "webhook",
    }
}

/// The event a Git host names in its headers: `X-GitHub-Event` for `github`
/// (or, for Gitea, Forgejo and Gogs deliveries that lack it, their own
/// header), `X-Gitlab-Event`, `X-Event-Key`. Absent is the empty event, as
/// in Flux.
fn header_event(kind: &ReceiverType, headers: &HeaderMap) -> String {
    let names: &[&str] = match kind {
        ReceiverType::GitHub => &[
            "X-GitHub-Event",
            "X-Gitea-Event",
            "X-Forgejo-Event",
            "X-Gogs-Event",
        ],
        other => match other.event_header() {
            Some(name) => &[name][..],
            None => &[],
        },
    };
    names
        .iter()
        .find_map(|name| headers.get(*name))
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// The payload format of a Git host delivery, told from its headers.
fn git_provider(kind: &ReceiverType, headers: &HeaderMap) -> Provider {
    let detected = Provider::detect_git_host(headers);
    match kind {
        ReceiverType::GitHub => detected
            .filter(|p| matches!(p, Provider::GitHub | Provider::Gitea | Provider::Gogs))
            .unwrap_or(Provider::GitHub),
        ReceiverType::GitLab => Provider::GitLab,
        _ => detected
            .filter(|p| matches!(p, Provider::BitbucketCloud | Provider::BitbucketServer))
            .unwrap_or(Provider::BitbucketServer),
    }
}

fn registry_provider(kind: &ReceiverType) -> Provider {
    match kind {
        ReceiverType::DockerHub => Provider::DockerHub,
        ReceiverType::Quay => Provider::Quay,
        ReceiverType::Nexus => Provider::Nexus,
        ReceiverType::Acr => Provider::Acr,
        _ => Provider::Gcr,
    }
}

/// A payload that is well-formed JSON but lacks a field or header the
/// parser wants.
fn is_missing_data(error: &ParseError) -> bool {
    matches!(
        error,
        ParseError::MissingField { .. }
            | ParseError::InvalidField { .. }
            | ParseError::MissingHeader { .. }
            | ParseError::InvalidHeader { .. }
    )
}

/// Refuses an event not in `spec.events` (for the types that filter on
/// events), as Flux does.
fn check_event(endpoint: &Endpoint, event: &str) -> Result<(), Rejection> {
    if endpoint.accepts_event(event) {
        Ok(())
    } else {
        let what = match &endpoint.receiver_type {
            ReceiverType::CdEvents => "CDEvent".to_owned(),
            other => format!("{} event", event_source(other)),
        };
        Err(Rejection::new(format!(
            "the {what} {} is not authorised",
            quoted(event)
        )))
    }
}

fn log_registry_event(kind: &ReceiverType, webhook: Option<&Webhook>) {
    let source = event_source(kind);
    let Some(webhook) = webhook else {
        tracing::info!("handling {source} event");
        return;
    };
    let (from, tag) = match webhook.event() {
        Event::DockerHub(e) => (e.repo_url.as_deref(), Some(e.tag.as_str())),
        Event::Quay(e) => (Some(e.docker_url.as_str()), None),
        Event::Nexus(e) => (e.repository_name.as_deref(), None),
        Event::Acr(e) => (e.repository.as_deref(), e.tag.as_deref()),
        Event::Gcr(e) => (e.digest.as_deref(), e.tag.as_deref()),
        _ => (None, None),
    };
    let from = quoted(from.unwrap_or_default());
    match tag {
        Some(tag) => tracing::info!(
            "handling {source} event from {from} for tag {}",
            quoted(tag)
        ),
        None => tracing::info!("handling {source} event from {from}"),
    }
}

/// What a sender wrote, quoted with escapes and clipped, for a log line.
fn quoted(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{:?}...", text.get(..end).unwrap_or_default()),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn github_event_prefers_github_header_then_gitea_family() {
        let github = ReceiverType::GitHub;
        assert_eq!(
            header_event(
                &github,
                &headers(&[("X-GitHub-Event", "push"), ("X-Gitea-Event", "x")])
            ),
            "push"
        );
        assert_eq!(
            header_event(&github, &headers(&[("X-Forgejo-Event", "push")])),
            "push"
        );
        assert_eq!(header_event(&github, &headers(&[])), "");
        assert_eq!(
            header_event(
                &ReceiverType::GitLab,
                &headers(&[("X-Gitlab-Event", "Push Hook")])
            ),
            "Push Hook"
        );
        assert_eq!(
            header_event(
                &ReceiverType::Bitbucket,
                &headers(&[("X-Event-Key", "repo:push")])
            ),
            "repo:push"
        );
    }

    #[test]
    fn git_provider_stays_within_the_receiver_type() {
        let gitlab_headers = headers(&[("X-Gitlab-Event", "Push Hook")]);
        assert_eq!(
            git_provider(&ReceiverType::GitHub, &gitlab_headers),
            Provider::GitHub
        );
        assert_eq!(
            git_provider(
                &ReceiverType::GitHub,
                &headers(&[("X-Gitea-Event", "push")])
            ),
            Provider::Gitea
        );
        assert_eq!(
            git_provider(
                &ReceiverType::Bitbucket,
                &headers(&[("X-Event-Key", "repo:push")])
            ),
            Provider::BitbucketCloud
        );
        assert_eq!(
            git_provider(&ReceiverType::Bitbucket, &headers(&[])),
            Provider::BitbucketServer
        );
    }

    proptest! {
        #[test]
        fn quoted_is_one_bounded_line(text in any::<String>()) {
            let quoted = quoted(&text);
            prop_assert!(!quoted.contains('\n'));
            prop_assert!(quoted.chars().count() <= 200 * 10 + 5);
        }
    }
}
