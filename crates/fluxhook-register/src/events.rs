//! What a Receiver accepts, and which hook events of a host deliver nothing else.
//!
//! A Flux Receiver lists in `spec.events` the values of the event header of the deliveries it
//! accepts (each host's [`HostProfile::event_header`](crate::HostProfile::event_header), one of
//! the names in [`fluxhook_payload::header`]), compared case-insensitively, and answers 400 to
//! any other delivery (notification-controller v1.9.3, `internal/server/receiver_handlers.go`,
//! `strings.EqualFold`). A host that keeps getting 4xx answers disables the hook (GitLab does,
//! permanently). So a hook subscribes only to the host's hook events whose every delivery the
//! Receiver accepts; what each host's hook events deliver is in that host's file under
//! `src/hosts/`.

use crate::hosts::Subscription;
use crate::{ErrorKind, Forge};

/// The Receiver type that verifies nothing: Flux accepts any delivery for it, whatever its
/// `spec.events` say (`case apiv1.GenericReceiver: return &validationResult{}, nil`).
const GENERIC: &str = "generic";

/// The events a Flux Receiver accepts: its `spec.events`, as the host names its deliveries
/// (`push`, `Push Hook`, `repo:refs_changed`...). None listed means every event.
///
/// ```
/// use fluxhook_register::ReceiverEvents;
/// let events = ReceiverEvents::new(["ping", "Push Hook"]);
/// assert!(events.accepts("push hook"));
/// assert!(!events.accepts("Tag Push Hook"));
/// assert!(ReceiverEvents::all().accepts("anything"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReceiverEvents(Vec<String>);

impl ReceiverEvents {
    /// The events of a Receiver's `spec.events`, as written (Flux does not trim them either).
    pub fn new<'a>(events: impl IntoIterator<Item = &'a str>) -> ReceiverEvents {
        let mut names: Vec<String> = Vec::new();
        for event in events {
            if !names.iter().any(|n| n.eq_ignore_ascii_case(event)) {
                names.push(event.to_owned());
            }
        }
        ReceiverEvents(names)
    }

    /// A Receiver that lists no events: it accepts every one.
    pub fn all() -> ReceiverEvents {
        ReceiverEvents(Vec::new())
    }

    /// Whether a delivery whose event header is `event` is accepted, as Flux decides it.
    pub fn accepts(&self, event: &str) -> bool {
        self.0.is_empty() || self.0.iter().any(|e| e.eq_ignore_ascii_case(event))
    }

    /// The events listed, as written; empty for [`all`](Self::all).
    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// The hook events of `provider` a hook subscribes to for a Receiver of `receiver_type`
/// (`None`: not known, not checked) accepting `events`: those whose every delivery it accepts
/// (with `events` accepting all, the host's default ones).
///
/// Fails when the Receiver cannot verify the host's deliveries, or accepts none of them: a
/// hook then would only collect refusals.
pub(crate) fn subscriptions(
    provider: Forge,
    receiver_type: Option<&str>,
    events: &ReceiverEvents,
) -> Result<Vec<&'static Subscription>, ErrorKind> {
    let profile = provider.api().profile();
    let generic = receiver_type.is_some_and(|t| t.eq_ignore_ascii_case(GENERIC));
    if let Some(receiver_type) = receiver_type
        && !generic
        && !profile
            .receiver_types
            .iter()
            .any(|t| t.eq_ignore_ascii_case(receiver_type))
    {
        let mut types: Vec<&str> = profile.receiver_types.to_vec();
        types.push(GENERIC);
        return Err(ErrorKind::ReceiverTypeMismatch {
            receiver_type: receiver_type.to_owned(),
            host: profile.title,
            verifying: types.join(" or "),
        });
    }
    let accepts_all = generic || events.names().is_empty();
    let chosen: Vec<&'static Subscription> = profile
        .subscriptions
        .iter()
        .filter(|s| match accepts_all {
            true => s.by_default,
            false => s.delivers.iter().all(|d| events.accepts(d)),
        })
        .collect();
    if chosen.is_empty() {
        let mut delivered: Vec<&str> = profile
            .subscriptions
            .iter()
            .flat_map(|s| s.delivers.iter().copied())
            .collect();
        delivered.dedup();
        return Err(ErrorKind::NothingToSubscribe {
            events: events.names().join(", "),
            host: profile.title,
            header: profile.event_header,
            delivered: delivered.join(", "),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn written(provider: Forge, receiver_type: Option<&str>, events: &[&str]) -> Vec<&'static str> {
        subscriptions(
            provider,
            receiver_type,
            &ReceiverEvents::new(events.iter().copied()),
        )
        .unwrap()
        .iter()
        .map(|s| s.write)
        .collect()
    }

    #[test]
    fn a_receiver_accepting_everything_gets_the_hosts_pushes() {
        assert_eq!(written(Forge::GITHUB, None, &[]), ["push"]);
        assert_eq!(
            written(Forge::GITLAB, None, &[]),
            ["push_events", "tag_push_events"]
        );
        assert_eq!(written(Forge::BITBUCKET_CLOUD, None, &[]), ["repo:push"]);
        assert_eq!(
            written(Forge::BITBUCKET_SERVER, None, &[]),
            ["repo:refs_changed"]
        );
        assert_eq!(written(Forge::GITEA, None, &[]), ["push"]);
        assert_eq!(written(Forge::GOGS, None, &[]), ["push"]);
        // A generic Receiver accepts any delivery, whatever it lists.
        assert_eq!(
            written(Forge::GITLAB, Some("generic"), &["push"]),
            ["push_events", "tag_push_events"]
        );
    }

    #[test]
    fn only_hook_events_whose_every_delivery_is_accepted_are_subscribed() {
        assert_eq!(
            written(Forge::GITLAB, Some("gitlab"), &["Push Hook"]),
            ["push_events"]
        );
        assert_eq!(
            written(
                Forge::GITLAB,
                Some("gitlab"),
                &["push hook", "Merge Request Hook"]
            ),
            ["push_events", "merge_requests_events"]
        );
        assert_eq!(
            written(
                Forge::BITBUCKET_CLOUD,
                Some("bitbucket"),
                &["pullrequest:created"]
            ),
            ["pullrequest:created"]
        );
        assert_eq!(
            written(
                Forge::BITBUCKET_SERVER,
                Some("bitbucket"),
                &["pr:from_ref_updated", "repo:push", "repo:refs_changed"]
            ),
            ["repo:refs_changed", "pr:from_ref_updated"]
        );
        // Gitea's pull request hook events deliver `pull_request`, its comments do not.
        assert_eq!(
            written(Forge::GITEA, Some("github"), &["pull_request"]),
            ["pull_request_only", "pull_request_sync"]
        );
    }

    #[test]
    fn nothing_to_subscribe_names_the_events_and_what_the_host_delivers() {
        let error = subscriptions(
            Forge::BITBUCKET_SERVER,
            Some("bitbucket"),
            &ReceiverEvents::new(["repo:push"]),
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("repo:push"), "{error}");
        assert!(error.contains("Bitbucket Server"), "{error}");
        assert!(error.contains("repo:refs_changed"), "{error}");
        assert!(subscriptions(Forge::GITHUB, None, &ReceiverEvents::new(["ping"])).is_err());
    }

    #[test]
    fn receiver_types_that_cannot_verify_the_host_are_refused() {
        for (provider, receiver_type) in [
            (Forge::GITLAB, "github"),
            (Forge::GITHUB, "gitlab"),
            (Forge::GOGS, "github"),
            (Forge::GITHUB, "generic-hmac"),
            (Forge::BITBUCKET_CLOUD, "harbor"),
        ] {
            let error = subscriptions(provider, Some(receiver_type), &ReceiverEvents::all())
                .unwrap_err()
                .to_string();
            assert!(error.contains(receiver_type), "{error}");
            assert!(error.contains(&provider.to_string()), "{error}");
        }
        for (provider, receiver_type) in [
            (Forge::GITHUB, "github"),
            (Forge::GITEA, "GitHub"),
            (Forge::GITLAB, "gitlab"),
            (Forge::BITBUCKET_SERVER, "bitbucket"),
            (Forge::GOGS, "generic"),
        ] {
            assert!(
                subscriptions(provider, Some(receiver_type), &ReceiverEvents::all()).is_ok(),
                "{provider} {receiver_type}"
            );
        }
    }
}
