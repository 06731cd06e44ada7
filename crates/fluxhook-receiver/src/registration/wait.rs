//! Git hosts that asked the controller to wait (rate limits): no call reaches them before the
//! wait they asked for is over, whichever Receiver's pass would make it, and the Receiver is
//! reconciled again once it is, rather than retried sooner.
//!
//! GitHub: "If the retry-after response header is present, you should not retry your request
//! until after that many seconds has elapsed. [...] Otherwise, wait for at least one minute
//! before retrying. [...] Continuing to make requests while you are rate limited may result
//! in the banning of your integration" ("Exceeding the secondary rate limit",
//! <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>). The
//! wait comes from [`fluxhook_register`]'s reading of the reply (`Retry-After` in seconds or
//! as an HTTP date, a spent quota's reset time, GitHub's minute).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use fluxhook_register::{ErrorKind, RegisterError};

/// The longest a host's wait holds its calls back and the Receiver's next pass: a host asking
/// for more (a wrong clock, a day-long ban) is asked again after this. GitHub's primary quota
/// resets hourly.
pub(crate) const MAX_HOST_WAIT: Duration = Duration::from_secs(3600);

/// Which calls a host's wait holds back: those to one API with one access token (a rate
/// limit is the token's), the token named by its Secret, never held.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct WaitKey {
    /// The API URL's origin, `scheme://host:port`.
    pub(crate) api: String,
    /// `namespace/name` of the access token Secret.
    pub(crate) token_secret: String,
}

/// The wait a failed call asks for before the host is called again: the host's, for a rate
/// limit (at most [`MAX_HOST_WAIT`]); none for other failures.
pub(crate) fn requested_wait(error: &RegisterError) -> Option<Duration> {
    match error.kind() {
        ErrorKind::RateLimited { wait, .. } => Some((*wait).min(MAX_HOST_WAIT)),
        _ => None,
    }
}

/// Until when each host is left alone.
#[derive(Debug, Default)]
pub(crate) struct HostWaits {
    until: Mutex<HashMap<WaitKey, Instant>>,
}

impl HostWaits {
    /// Leaves `key` alone for `wait` from `now` (a longer wait already set stays).
    pub(crate) fn hold(&self, key: WaitKey, now: Instant, wait: Duration) {
        let until = now + wait.min(MAX_HOST_WAIT);
        let mut waits = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        waits.retain(|_, held| *held > now);
        let held = waits.entry(key).or_insert(until);
        *held = (*held).max(until);
    }

    /// How long `key` is still to be left alone at `now`; `None` when it may be called.
    pub(crate) fn remaining(&self, key: &WaitKey, now: Instant) -> Option<Duration> {
        let waits = self.until.lock().unwrap_or_else(PoisonError::into_inner);
        waits
            .get(key)
            .and_then(|until| until.checked_duration_since(now))
            .filter(|left| !left.is_zero())
    }
}

/// A wait as messages say it: whole seconds, rounded up.
pub(crate) fn shown(wait: Duration) -> String {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(api: &str) -> WaitKey {
        WaitKey {
            api: api.into(),
            token_secret: "flux-system/github-token".into(),
        }
    }

    #[test]
    fn a_host_is_left_alone_until_its_wait_is_over() {
        let waits = HostWaits::default();
        let start = Instant::now();
        let github = key("https://api.github.com");
        assert_eq!(waits.remaining(&github, start), None);
        waits.hold(github.clone(), start, Duration::from_secs(60));
        assert_eq!(
            waits.remaining(&github, start + Duration::from_secs(1)),
            Some(Duration::from_secs(59))
        );
        // Another API, or the same API with another token, is not held.
        assert_eq!(
            waits.remaining(&key("https://ghe.example.com"), start),
            None
        );
        let other_token = WaitKey {
            token_secret: "apps/github-token".into(),
            ..github.clone()
        };
        assert_eq!(waits.remaining(&other_token, start), None);
        // A shorter wait asked later does not shorten it; the wait ends when it says.
        waits.hold(github.clone(), start, Duration::from_secs(5));
        assert!(
            waits
                .remaining(&github, start + Duration::from_secs(30))
                .is_some()
        );
        assert_eq!(
            waits.remaining(&github, start + Duration::from_secs(60)),
            None
        );
        // Never longer than the bound.
        waits.hold(github.clone(), start, Duration::from_secs(86_400));
        assert_eq!(waits.remaining(&github, start), Some(MAX_HOST_WAIT));
    }

    #[test]
    fn waits_are_shown_in_whole_seconds() {
        assert_eq!(shown(Duration::from_secs(60)), "60s");
        assert_eq!(shown(Duration::from_millis(59_001)), "60s");
        assert_eq!(shown(Duration::ZERO), "0s");
    }
}
