//! Shared set-up: a client of each provider against the matching fake host.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fluxhook_register::{
    Clock, DesiredHook, EventSet, HookClient, Provider, Repository, RetryPolicy, Secret, Sleep,
    Token,
};
use fluxhook_test_githost::{FakeConfig, FakeHost, HostKind};

pub const RECEIVER_URL: &str = "https://flux.example.com/hook/5a1b0c";

pub fn provider(kind: HostKind) -> Provider {
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

pub fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        max_retries: 3,
        max_wait: Duration::from_secs(10),
        initial_backoff: Duration::from_millis(1),
    }
}

pub fn repository(host: &FakeHost) -> Repository {
    Repository::new(
        provider(host.kind()),
        host.api_base().parse().unwrap(),
        host.owner(),
        host.repo(),
    )
}

pub fn client_for(host: &FakeHost, token: &str, clock: Arc<RecordingClock>) -> HookClient {
    HookClient::builder(repository(host), Token::new(token))
        .retry_policy(fast_retries())
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

pub fn desired(secret: &str) -> DesiredHook {
    DesiredHook::new(
        RECEIVER_URL.parse().unwrap(),
        Secret::new(secret),
        EventSet::from_receiver_events(["ping", "push"]).unwrap(),
    )
}

/// The host-native event names `desired` should get on `kind`.
pub fn native_events(kind: HostKind, desired: &DesiredHook) -> Vec<String> {
    desired
        .events()
        .native(provider(kind))
        .into_iter()
        .map(str::to_owned)
        .collect()
}
