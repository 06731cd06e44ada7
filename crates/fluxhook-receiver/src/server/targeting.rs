//! Payload-aware targeting ([`MATCH_PAYLOAD_ANNOTATION`]): the delivery a
//! Receiver of a Git host type reads, and the GitRepositories it can change.
//!
//! [`MATCH_PAYLOAD_ANNOTATION`]: crate::MATCH_PAYLOAD_ANNOTATION

use bytes::Bytes;
use fluxhook_api::{Payload, ReceiverResource};
use fluxhook_payload::targeting::{Decision, GitSource, decide};
use fluxhook_payload::{Event, Parser, Sender, Webhook};
use fluxhook_trigger::{SelectedObject, SelectedSpec};
use http::HeaderMap;

use crate::endpoint::Endpoint;

/// The delivery, parsed, when the Receiver targets by payload; `None` (every
/// object reconciles, as without the annotation) when it does not, for a
/// ping or an event naming no repository, or when the body is not a payload
/// of the host: authentication accepted it, and Flux reads only the event
/// header.
pub(super) fn delivery(
    parser: &Parser,
    endpoint: &Endpoint,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Webhook> {
    if !endpoint.match_payload {
        return None;
    }
    let Payload::GitEvent { senders, .. } = endpoint.receiver_type.payload() else {
        return None;
    };
    let sender = Sender::detect_among(senders, headers)?;
    match parser.parse(sender, headers, body.clone()) {
        // Pings and events without a repository change nothing to narrow.
        Ok(webhook) if matches!(webhook.event(), Event::Ping(_)) => None,
        Ok(webhook) if webhook.repository().is_none() => None,
        Ok(webhook) => Some(webhook),
        Err(error) => {
            request_log!(info!(
                %sender, %error,
                "payload not read: every selected object is asked to reconcile"
            ));
            None
        }
    }
}

/// Whether a resource reference selects GitRepositories (of Flux's source API).
pub(super) fn selects_git_repositories(resource: &ReceiverResource) -> bool {
    resource.kind == "GitRepository"
        && resource
            .api_version
            .as_deref()
            .is_none_or(|api_version| api_version.starts_with("source.toolkit.fluxcd.io/"))
}

/// The selected GitRepositories the delivery can change; each other one is
/// logged with the reason, naming the Receiver and the object.
pub(super) fn changed(
    endpoint: &Endpoint,
    webhook: &Webhook,
    selected: Vec<SelectedSpec>,
) -> Vec<SelectedObject> {
    selected
        .into_iter()
        .filter_map(|SelectedSpec { selected, spec, .. }| {
            let Some(source) = spec.as_ref().and_then(GitSource::from_spec) else {
                return Some(selected);
            };
            match decide(webhook.event(), &source) {
                Decision::Reconcile => Some(selected),
                Decision::Skip(reason) => {
                    let object = &selected.object;
                    request_log!(info!(
                        receiver = %endpoint.key,
                        object = %object,
                        %reason,
                        "resource '{}/{}.{}' NOT annotated because the delivery cannot change it",
                        object.kind,
                        object.name,
                        object.namespace
                    ));
                    None
                }
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn only_flux_git_repositories_are_narrowed() {
        let resource = |api_version: Option<&str>, kind: &str| -> ReceiverResource {
            serde_json::from_value(serde_json::json!({
                "apiVersion": api_version, "kind": kind, "name": "*", "matchLabels": {}
            }))
            .unwrap()
        };
        assert!(selects_git_repositories(&resource(None, "GitRepository")));
        for api_version in [
            "source.toolkit.fluxcd.io/v1",
            "source.toolkit.fluxcd.io/v1beta2",
        ] {
            assert!(selects_git_repositories(&resource(
                Some(api_version),
                "GitRepository"
            )));
        }
        assert!(!selects_git_repositories(&resource(
            Some("example.com/v1"),
            "GitRepository"
        )));
        assert!(!selects_git_repositories(&resource(
            Some("kustomize.toolkit.fluxcd.io/v1"),
            "Kustomization"
        )));
        assert!(!selects_git_repositories(&resource(None, "OCIRepository")));
    }
}
