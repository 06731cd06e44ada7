//! Shared set-up: a client of each provider against the matching fake host.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fluxhook_register::{
    Clock, DesiredHook, Forge, HookClient, HostBackoff, HostedRepository, ReceiverEvents, Secret,
    Sleep, Token,
};
use fluxhook_test_githost::{FakeConfig, FakeHost, HostKind};

pub const RECEIVER_URL: &str = "https://flux.example.com/hook/5a1b0c";

pub fn provider(kind: HostKind) -> Forge {
    kind.name().parse().unwrap()
}

/// Records the waits it is asked for and returns at once.
#[derive(Debug, Default)]
pub struct RecordingClock {
    sleeps: Mutex<Vec<Duration>>,
}

impl RecordingClock {
    pub fn sleeps(&self) -> Vec<Duration> {
        self.sleeps.lock().unwrap().clone()
    }
}

impl Clock for RecordingClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        self.sleeps.lock().unwrap().push(duration);
        Box::pin(std::future::ready(()))
    }
}

pub fn fast_retries() -> HostBackoff {
    HostBackoff {
        max_retries: 3,
        max_wait: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(1),
    }
}

pub fn repository(host: &FakeHost) -> HostedRepository {
    HostedRepository::new(
        provider(host.kind()),
        host.api_base().parse().unwrap(),
        host.owner(),
        host.repo(),
    )
}

pub fn client_for(host: &FakeHost, token: &str, clock: Arc<RecordingClock>) -> HookClient {
    HookClient::builder(repository(host), Token::new(token))
        .backoff(fast_retries())
        .clock(clock)
        .build()
        .unwrap()
}

pub struct Setup {
    pub host: FakeHost,
    pub client: HookClient,
    pub clock: Arc<RecordingClock>,
}

pub async fn start(kind: HostKind) -> Setup {
    start_with(FakeConfig::new(kind)).await
}

pub async fn start_with(config: FakeConfig) -> Setup {
    let host = FakeHost::start_with(config).await.unwrap();
    let clock = Arc::new(RecordingClock::default());
    let client = client_for(&host, host.token(), Arc::clone(&clock));
    Setup {
        host,
        client,
        clock,
    }
}

/// The hook of a Receiver that accepts every event.
pub fn desired(secret: &str) -> DesiredHook {
    DesiredHook::new(
        RECEIVER_URL.parse().unwrap(),
        Secret::new(secret),
        ReceiverEvents::all(),
    )
}

/// The events a hook for a Receiver accepting every event holds on `kind`, sorted: the
/// host's pushes (GitLab's tag pushes are an event of their own).
pub fn push_events(kind: HostKind) -> Vec<String> {
    let events: &[&str] = match kind {
        HostKind::GitHub | HostKind::Gitea | HostKind::Gogs => &["push"],
        HostKind::GitLab => &["push_events", "tag_push_events"],
        HostKind::BitbucketCloud => &["repo:push"],
        HostKind::BitbucketServer => &["repo:refs_changed"],
    };
    events.iter().map(|e| (*e).to_owned()).collect()
}

/// A Receiver's events for pull requests on `kind`, and what the hook then holds, sorted.
pub fn pull_request_events(kind: HostKind) -> (ReceiverEvents, Vec<String>) {
    let (receiver, hook): (&[&str], &[&str]) = match kind {
        HostKind::GitHub | HostKind::Gogs => (&["pull_request"], &["pull_request"]),
        // Only the pull request events of Gitea's family deliver `pull_request`.
        HostKind::Gitea => (&["pull_request"], &["pull_request", "pull_request_sync"]),
        HostKind::GitLab => (&["Merge Request Hook"], &["merge_requests_events"]),
        HostKind::BitbucketCloud => (
            &["pullrequest:created", "pullrequest:updated"],
            &["pullrequest:created", "pullrequest:updated"],
        ),
        HostKind::BitbucketServer => (
            &["pr:opened", "pr:from_ref_updated"],
            &["pr:from_ref_updated", "pr:opened"],
        ),
    };
    (
        ReceiverEvents::new(receiver.iter().copied()),
        hook.iter().map(|e| (*e).to_owned()).collect(),
    )
}
