//! Whether a request is genuine and one its Receiver handles, per Receiver
//! type, as Flux's notification-controller decides it.

use std::fmt;

use bytes::Bytes;
use fluxhook_api::{GitHost, Payload, ReceiverType, Registry, TokenScheme};
use fluxhook_cel::Document;
use fluxhook_oidc::{GcrRequirements, OidcVerifier};
use fluxhook_payload::{Event, Parser, Sender, Webhook, check_hub_delivery};
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
    let parse = |provider| parser.parse(provider, headers, body.clone());
    // What is read of the body, by the type's `payload()` alone: one arm per
    // way, no wildcard.
    let webhook = match kind.payload() {
        Payload::Unread => {
            if *kind == ReceiverType::Harbor {
                request_log!(info!("handling Harbor event"));
            }
            None
        }
        Payload::GitHost(host) => {
            if matches!(host, GitHost::GitHub | GitHost::Bitbucket) {
                // go-github's ValidatePayload reads the Content-Type (and a
                // form body) before the signature, for both types.
                check_hub_delivery(headers, body).map_err(|e| {
                    Rejection::new(format!(
                        "the {} signature header is invalid, err: {e}",
                        host.flux_name()
                    ))
                })?;
            }
            let event = header_event(host, headers);
            check_event(endpoint, &format!("{} event", host.flux_name()), &event)?;
            request_log!(info!(
                "handling {} event: {}",
                host.flux_name(),
                quoted(&event)
            ));
            // Flux reads the event header alone. Parsing the body would only
            // name the repository in a debug line: not worth its cost on
            // every delivery (about an HMAC's, see docs/performance.md).
            if tracing::enabled!(tracing::Level::DEBUG) {
                let provider = git_provider(host, headers);
                match parse(provider) {
                    Ok(webhook) => request_log!(debug!(
                        repository = webhook.repository().map(|r| r.full_name()),
                        %provider,
                        "payload read"
                    )),
                    Err(error) => request_log!(debug!(%provider, %error, "payload not parsed")),
                }
            }
            None
        }
        Payload::CdEvent => {
            // Flux filters on the CloudEvent type the header names, and
            // validates the body as a CDEvent of whatever type it says.
            let event = header_text(headers, "Ce-Type");
            let webhook = parse(Sender::CdEvents)
                .map_err(|e| Rejection::new(format!("unable to validate CDEvent event: {e}")))?;
            check_event(endpoint, "CDEvent", &event)?;
            request_log!(info!("handling CDEvent: {}", quoted(&event)));
            Some(webhook)
        }
        Payload::Registry(registry) => {
            let webhook = parse(registry_provider(registry)).map_err(|error| {
                Rejection::new(format!(
                    "cannot decode {} webhook payload: {error}",
                    registry.flux_name()
                ))
            })?;
            log_registry_event(registry.flux_name(), &webhook);
            Some(webhook)
        }
        Payload::GcrPubSub => {
            let webhook = parse(Sender::Gcr)
                .map_err(|e| Rejection::new(format!("cannot decode GCR webhook payload: {e}")))?;
            log_registry_event("GCR", &webhook);
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
            scheme,
            policy,
            token,
        } => {
            policy
                .verify(headers, body, token)
                .map_err(|e| Rejection::new(signature_error(*scheme, &e)))?;
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

/// Flux's message for a signature or token that does not verify: one arm
/// per scheme, no wildcard.
fn signature_error(scheme: TokenScheme, error: &fluxhook_signature::VerifyError) -> String {
    match scheme {
        TokenScheme::XSignature => format!("unable to validate HMAC signature: {error}"),
        TokenScheme::GitHubSignature => {
            format!("the GitHub signature header is invalid, err: {error}")
        }
        TokenScheme::GitLabToken => {
            format!("the X-Gitlab-Token header value does not match the receiver token: {error}")
        }
        TokenScheme::BitbucketSignature => {
            format!("the Bitbucket server signature header is invalid, err: {error}")
        }
        TokenScheme::HarborAuthorization => format!(
            "the Harbor Authorization header value does not match the receiver token: {error}"
        ),
        TokenScheme::NexusSignature => format!("invalid Nexus signature: {error}"),
    }
}

/// A header's value as Go's `Header.Get` gives it: the first, empty when
/// absent.
fn header_text(headers: &HeaderMap, name: &str) -> String {
    headers
        .get(name)
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .unwrap_or_default()
}

/// The event a Git host names in its header, as Flux reads it:
/// `X-GitHub-Event` (go-github's `WebHookType`; Gitea and Forgejo send it
/// too), `X-Gitlab-Event`, `X-Event-Key`. Absent is the empty event.
fn header_event(host: GitHost, headers: &HeaderMap) -> String {
    let name = match host {
        GitHost::GitHub => "X-GitHub-Event",
        GitHost::GitLab => "X-Gitlab-Event",
        GitHost::Bitbucket => "X-Event-Key",
    };
    header_text(headers, name)
}

/// The payload format of a Git host delivery, told from its headers.
pub(super) fn git_provider(host: GitHost, headers: &HeaderMap) -> Sender {
    let detected = Sender::detect_git_host(headers);
    match host {
        GitHost::GitHub => detected
            .filter(|p| matches!(p, Sender::GitHub | Sender::Gitea | Sender::Gogs))
            .unwrap_or(Sender::GitHub),
        GitHost::GitLab => Sender::GitLab,
        GitHost::Bitbucket => detected
            .filter(|p| matches!(p, Sender::BitbucketCloud | Sender::BitbucketServer))
            .unwrap_or(Sender::BitbucketServer),
    }
}

fn registry_provider(registry: Registry) -> Sender {
    match registry {
        Registry::DockerHub => Sender::DockerHub,
        Registry::Quay => Sender::Quay,
        Registry::Nexus => Sender::Nexus,
        Registry::Acr => Sender::Acr,
    }
}

/// Refuses an event not in `spec.events` (for the types that filter on
/// events), as Flux does: "the GitHub event \"issues\" is not authorised".
fn check_event(endpoint: &Endpoint, what: &str, event: &str) -> Result<(), Rejection> {
    if endpoint.accepts_event(event) {
        Ok(())
    } else {
        Err(Rejection::new(format!(
            "the {what} {} is not authorised",
            quoted(event)
        )))
    }
}

/// Logs a registry's event as Flux does: where from, and the tag.
fn log_registry_event(source: &str, webhook: &Webhook) {
    let (from, tag) = match webhook.event() {
        Event::DockerHub(e) => (e.repo_url.as_str(), Some(e.tag.as_str())),
        Event::Quay(e) => (e.docker_url.as_str(), None),
        Event::Nexus(e) => (e.repository_name.as_str(), None),
        Event::Acr(e) => (e.repository.as_str(), Some(e.tag.as_str())),
        Event::Gcr(e) => (e.digest.as_str(), Some(e.tag.as_str())),
        _ => ("", None),
    };
    let from = quoted(from);
    match tag {
        Some(tag) => request_log!(info!(
            "handling {source} event from {from} for tag {}",
            quoted(tag)
        )),
        None => request_log!(info!("handling {source} event from {from}")),
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
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    /// As go-github's `WebHookType`: `X-GitHub-Event` alone, which Gitea
    /// and Forgejo send too; their own event headers are not read.
    #[test]
    fn events_are_read_from_the_header_flux_reads() {
        assert_eq!(
            header_event(
                GitHost::GitHub,
                &headers(&[("X-GitHub-Event", "push"), ("X-Gitea-Event", "x")])
            ),
            "push"
        );
        assert_eq!(
            header_event(GitHost::GitHub, &headers(&[("X-Gitea-Event", "push")])),
            ""
        );
        assert_eq!(header_event(GitHost::GitHub, &headers(&[])), "");
        assert_eq!(
            header_event(
                GitHost::GitLab,
                &headers(&[("X-Gitlab-Event", "Push Hook")])
            ),
            "Push Hook"
        );
        assert_eq!(
            header_event(
                GitHost::Bitbucket,
                &headers(&[("X-Event-Key", "repo:push")])
            ),
            "repo:push"
        );
    }

    #[test]
    fn git_provider_stays_within_the_receiver_type() {
        let gitlab_headers = headers(&[("X-Gitlab-Event", "Push Hook")]);
        assert_eq!(
            git_provider(GitHost::GitHub, &gitlab_headers),
            Sender::GitHub
        );
        assert_eq!(
            git_provider(GitHost::GitHub, &headers(&[("X-Gitea-Event", "push")])),
            Sender::Gitea
        );
        assert_eq!(
            git_provider(
                GitHost::Bitbucket,
                &headers(&[("X-Event-Key", "repo:push")])
            ),
            Sender::BitbucketCloud
        );
        assert_eq!(
            git_provider(GitHost::Bitbucket, &headers(&[])),
            Sender::BitbucketServer
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
            let quoted = quoted(&text);
            prop_assert!(!quoted.contains('\n'));
            prop_assert!(quoted.chars().count() <= 200 * 10 + 5);
        }
    }
}
