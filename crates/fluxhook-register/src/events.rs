//! Flux Receiver events and what each host calls them.

use std::collections::BTreeSet;

use crate::Provider;

/// An event a Flux Receiver can be notified of.
///
/// A Flux Receiver lists the events it accepts in the host's own words (`push`, `Push Hook`,
/// `repo:push`, `repo:refs_changed`...). They are read into [`HookEvent`]s and written back in
/// the words of the host the hook is registered on:
///
/// | event | GitHub | GitLab | Bitbucket Cloud | Bitbucket Server | Gitea / Forgejo |
/// | --- | --- | --- | --- | --- | --- |
/// | [`Push`](HookEvent::Push) | `push` | `push_events`, `tag_push_events` | `repo:push` | `repo:refs_changed` | `push` |
/// | [`TagPush`](HookEvent::TagPush) | `push` | `tag_push_events` | `repo:push` | `repo:refs_changed` | `push` |
/// | [`PullRequest`](HookEvent::PullRequest) | `pull_request` | `merge_requests_events` | `pullrequest:created`, `pullrequest:updated` | `pr:opened`, `pr:from_ref_updated` | `pull_request` |
///
/// GitHub, Bitbucket and Gitea report tag pushes as pushes, so a tag push needs their push
/// event. `ping` (and Bitbucket Server's `diagnostics:ping`) needs no subscription: hosts send
/// it on their own. A Receiver that lists no events accepts all, and gets [`HookEvent::Push`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HookEvent {
    /// Commits pushed to a branch (and, on GitLab, tags pushed too).
    Push,
    /// A tag pushed.
    TagPush,
    /// A pull (merge) request opened or its source branch updated.
    PullRequest,
}

/// An event name a Receiver lists that is not known on any host.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unsupported Receiver event {0:?}: expected push, tag_push, pull_request or ping \
     (or the GitLab/Bitbucket names of these)"
)]
pub struct UnknownEvent(pub String);

impl HookEvent {
    /// Reads one event name of a Flux Receiver (compared case-insensitively); `Ok(None)` for
    /// events that need no subscription (`ping`).
    ///
    /// ```
    /// use fluxhook_register::HookEvent;
    /// assert_eq!(HookEvent::from_receiver_event("Tag Push Hook"), Ok(Some(HookEvent::TagPush)));
    /// assert_eq!(HookEvent::from_receiver_event("ping"), Ok(None));
    /// assert!(HookEvent::from_receiver_event("issues").is_err());
    /// ```
    pub fn from_receiver_event(name: &str) -> Result<Option<HookEvent>, UnknownEvent> {
        match name.trim().to_ascii_lowercase().as_str() {
            "ping" | "diagnostics:ping" => Ok(None),
            "push" | "push hook" | "repo:push" | "repo:refs_changed" => Ok(Some(HookEvent::Push)),
            "tag_push" | "tag push hook" => Ok(Some(HookEvent::TagPush)),
            "pull_request"
            | "merge_request"
            | "merge request hook"
            | "pullrequest:created"
            | "pullrequest:updated"
            | "pr:opened"
            | "pr:from_ref_updated" => Ok(Some(HookEvent::PullRequest)),
            _ => Err(UnknownEvent(name.to_owned())),
        }
    }

    /// This event's names on `provider`.
    fn native(self, provider: Provider) -> &'static [&'static str] {
        match (provider, self) {
            (
                Provider::GitHub | Provider::Gitea | Provider::Gogs,
                HookEvent::Push | HookEvent::TagPush,
            ) => &["push"],
            (Provider::GitHub | Provider::Gitea | Provider::Gogs, HookEvent::PullRequest) => {
                &["pull_request"]
            }
            (Provider::GitLab, HookEvent::Push) => &["push_events", "tag_push_events"],
            (Provider::GitLab, HookEvent::TagPush) => &["tag_push_events"],
            (Provider::GitLab, HookEvent::PullRequest) => &["merge_requests_events"],
            (Provider::BitbucketCloud, HookEvent::Push | HookEvent::TagPush) => &["repo:push"],
            (Provider::BitbucketCloud, HookEvent::PullRequest) => {
                &["pullrequest:created", "pullrequest:updated"]
            }
            (Provider::BitbucketServer, HookEvent::Push | HookEvent::TagPush) => {
                &["repo:refs_changed"]
            }
            (Provider::BitbucketServer, HookEvent::PullRequest) => {
                &["pr:opened", "pr:from_ref_updated"]
            }
        }
    }
}

/// The events a hook subscribes to; never empty (an empty set means [`HookEvent::Push`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventSet(BTreeSet<HookEvent>);

impl Default for EventSet {
    fn default() -> Self {
        EventSet::new([HookEvent::Push])
    }
}

impl EventSet {
    /// The given events; [`HookEvent::Push`] when there are none.
    pub fn new(events: impl IntoIterator<Item = HookEvent>) -> EventSet {
        let mut set: BTreeSet<HookEvent> = events.into_iter().collect();
        if set.is_empty() {
            set.insert(HookEvent::Push);
        }
        EventSet(set)
    }

    /// The events of a Flux Receiver's `spec.events`.
    ///
    /// ```
    /// use fluxhook_register::{EventSet, HookEvent, Provider};
    /// let events = EventSet::from_receiver_events(["ping", "push"])?;
    /// assert_eq!(events.iter().collect::<Vec<_>>(), [HookEvent::Push]);
    /// assert_eq!(events.native(Provider::GitLab), ["push_events", "tag_push_events"]);
    /// assert_eq!(events.native(Provider::BitbucketServer), ["repo:refs_changed"]);
    /// # Ok::<(), fluxhook_register::UnknownEvent>(())
    /// ```
    pub fn from_receiver_events<'a>(
        events: impl IntoIterator<Item = &'a str>,
    ) -> Result<EventSet, UnknownEvent> {
        let mut set = BTreeSet::new();
        for name in events {
            set.extend(HookEvent::from_receiver_event(name)?);
        }
        Ok(EventSet::new(set))
    }

    /// The events, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = HookEvent> + '_ {
        self.0.iter().copied()
    }

    /// The names `provider` gives these events, sorted and without duplicates; for GitLab,
    /// the `*_events` flags to turn on.
    pub fn native(&self, provider: Provider) -> Vec<&'static str> {
        let names: BTreeSet<&'static str> = self
            .iter()
            .flat_map(|e| e.native(provider).iter().copied())
            .collect();
        names.into_iter().collect()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn push_maps_to_each_hosts_push_events() {
        let push = EventSet::from_receiver_events(["push"]).unwrap();
        assert_eq!(push.native(Provider::GitHub), ["push"]);
        assert_eq!(
            push.native(Provider::GitLab),
            ["push_events", "tag_push_events"]
        );
        assert_eq!(push.native(Provider::BitbucketCloud), ["repo:push"]);
        assert_eq!(
            push.native(Provider::BitbucketServer),
            ["repo:refs_changed"]
        );
        assert_eq!(push.native(Provider::Gitea), ["push"]);
    }

    #[test]
    fn receiver_names_of_every_host_are_read() {
        let events = EventSet::from_receiver_events([
            "Push Hook",
            "Tag Push Hook",
            "Merge Request Hook",
            "ping",
            "repo:refs_changed",
        ])
        .unwrap();
        assert_eq!(
            events.iter().collect::<Vec<_>>(),
            [HookEvent::Push, HookEvent::TagPush, HookEvent::PullRequest]
        );
        assert_eq!(
            events.native(Provider::BitbucketCloud),
            ["pullrequest:created", "pullrequest:updated", "repo:push"]
        );
    }

    #[test]
    fn no_events_or_only_ping_means_push() {
        assert_eq!(
            EventSet::from_receiver_events([]).unwrap(),
            EventSet::default()
        );
        assert_eq!(
            EventSet::from_receiver_events(["ping"]).unwrap(),
            EventSet::default()
        );
    }

    #[test]
    fn unknown_events_are_refused() {
        assert_eq!(
            EventSet::from_receiver_events(["push", "release"]),
            Err(UnknownEvent("release".into()))
        );
    }
}
