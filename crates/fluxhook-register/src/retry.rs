//! Bounded retries: how long to wait, and the clock that waits.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// How the client retries rate-limited and failed requests.
///
/// Rate-limited requests (429, and GitHub's 403 with `Retry-After` or
/// `x-ratelimit-remaining: 0`) are retried after the wait the host asks for (`Retry-After`
/// in seconds, else the reset time of `x-ratelimit-reset` / `ratelimit-reset`, else a
/// backoff). Server errors (5xx) are retried after a backoff, except for creation, which is
/// not idempotent; refused connections, which sent nothing, always are. A wait longer than
/// `max_wait` is not waited: the request fails at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The longest single wait.
    pub max_wait: Duration,
    /// The first backoff, doubled at each retry, when the host names no wait.
    pub initial_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_retries: 3,
            max_wait: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(500),
        }
    }
}

impl RetryPolicy {
    /// The backoff before retry number `retry` (0-based).
    pub(crate) fn backoff(&self, retry: u32) -> Duration {
        self.initial_backoff
            .saturating_mul(2u32.saturating_pow(retry))
            .min(self.max_wait)
    }
}

/// A sleeping future, boxed so that [`Clock`] stays object-safe.
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The time source of retries, replaceable so that tests neither wait nor depend on time.
pub trait Clock: Send + Sync {
    /// The current time, to read `x-ratelimit-reset` against.
    fn now(&self) -> SystemTime;
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> Sleep;
}

/// The real clock: system time and `tokio::time::sleep`.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// Whether a refusal is a rate limit rather than a permission problem.
pub(crate) fn is_rate_limited(status: StatusCode, headers: &HeaderMap) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (headers.contains_key("retry-after")
                || header_u64(headers, "x-ratelimit-remaining") == Some(0)))
}

/// The wait a rate-limited reply asks for, if it names one.
pub(crate) fn requested_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(seconds) = header_u64(headers, "retry-after") {
        return Some(Duration::from_secs(seconds));
    }
    let reset = header_u64(headers, "x-ratelimit-reset")
        .or_else(|| header_u64(headers, "ratelimit-reset"))?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    // One second more: the reset time is rounded down to the second.
    Some(Duration::from_secs(
        reset.saturating_sub(now).saturating_add(1),
    ))
}

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn rate_limits_are_told_from_permission_errors() {
        assert!(is_rate_limited(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new()
        ));
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "3")])
        ));
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "0")])
        ));
        assert!(!is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "12")])
        ));
        assert!(!is_rate_limited(StatusCode::FORBIDDEN, &HeaderMap::new()));
    }

    #[test]
    fn waits_come_from_retry_after_then_reset_time() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        assert_eq!(
            requested_wait(
                &headers(&[("retry-after", "7"), ("x-ratelimit-reset", "2000")]),
                now
            ),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            requested_wait(&headers(&[("x-ratelimit-reset", "1010")]), now),
            Some(Duration::from_secs(11))
        );
        assert_eq!(
            requested_wait(&headers(&[("ratelimit-reset", "900")]), now),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            requested_wait(&headers(&[("retry-after", "soon")]), now),
            None
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_max_wait() {
        let policy = RetryPolicy {
            max_retries: 10,
            max_wait: Duration::from_secs(3),
            initial_backoff: Duration::from_millis(500),
        };
        assert_eq!(policy.backoff(0), Duration::from_millis(500));
        assert_eq!(policy.backoff(2), Duration::from_secs(2));
        assert_eq!(policy.backoff(9), Duration::from_secs(3));
        assert_eq!(policy.backoff(u32::MAX), Duration::from_secs(3));
    }
}
