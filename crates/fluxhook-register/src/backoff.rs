//! How long to wait before asking a Git host again (after its rate limits and failures), and
//! the clock that waits.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::StatusCode;
use reqwest::header::HeaderMap;

/// How the hook client backs off from a Git host that rate-limits or fails a request, and how
/// often it asks again. (Not to be confused with `fluxhook_trigger::BoundedRetry`, which
/// retries the patch of a source object.)
///
/// Rate-limited requests (429, and GitHub's 403 with `Retry-After`,
/// `x-ratelimit-remaining: 0` or its secondary rate limit message) are retried after the
/// wait the host asks for (`Retry-After` in seconds or as an HTTP date, else the reset time
/// of `x-ratelimit-reset` / `ratelimit-reset`; GitHub's secondary limit without either, at
/// least a minute; else a backoff). Server errors (5xx) are retried after a backoff, except for creation, which is
/// not idempotent; refused connections, which sent nothing, always are. A wait longer than
/// `max_wait` is not waited: the request fails at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostBackoff {
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// The longest single wait.
    pub max_wait: Duration,
    /// The first backoff, doubled at each retry, when the host names no wait.
    pub initial_backoff: Duration,
}

impl Default for HostBackoff {
    fn default() -> Self {
        HostBackoff {
            max_retries: 3,
            max_wait: Duration::from_secs(60),
            initial_backoff: Duration::from_millis(500),
        }
    }
}

impl HostBackoff {
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

/// How long GitHub asks to wait after its secondary rate limit when the reply names no wait:
/// "Otherwise, wait for at least one minute before retrying" ("Exceeding the secondary rate
/// limit", <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>).
pub(crate) const SECONDARY_LIMIT_WAIT: Duration = Duration::from_secs(60);

/// Whether a reply body is GitHub's secondary rate limit: a 403 or 429 whose message says
/// "You have exceeded a secondary rate limit..." (older GitHub Enterprise Server versions:
/// "You have triggered an abuse detection mechanism..."), often with no header at all.
pub(crate) fn is_secondary_limit(status: StatusCode, body: &[u8]) -> bool {
    if !matches!(
        status,
        StatusCode::FORBIDDEN | StatusCode::TOO_MANY_REQUESTS
    ) {
        return false;
    }
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.contains("secondary rate limit") || text.contains("abuse detection")
}

/// Whether a refusal is a rate limit rather than a permission problem.
pub(crate) fn is_rate_limited(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> bool {
    status == StatusCode::TOO_MANY_REQUESTS
        || (status == StatusCode::FORBIDDEN
            && (headers.contains_key("retry-after")
                || header_u64(headers, "x-ratelimit-remaining") == Some(0)
                || is_secondary_limit(status, body)))
}

/// The wait a rate-limited reply asks for, if it names one: `Retry-After` in seconds or as an
/// HTTP date (RFC 9110, section 10.2.3), else the reset time of a spent limit.
pub(crate) fn requested_wait(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    if let Some(value) = headers.get("retry-after").and_then(|v| v.to_str().ok()) {
        let value = value.trim();
        if let Ok(seconds) = value.parse::<u64>() {
            return Some(Duration::from_secs(seconds));
        }
        if let Ok(date) = httpdate::parse_http_date(value) {
            // A date already past asks for no wait; one second more as below, for rounding.
            let wait = date.duration_since(now).unwrap_or_default();
            return Some(wait.saturating_add(Duration::from_secs(1)));
        }
    }
    let reset = header_u64(headers, "x-ratelimit-reset")
        .or_else(|| header_u64(headers, "ratelimit-reset"))?;
    let now = now.duration_since(UNIX_EPOCH).ok()?.as_secs();
    // One second more: the reset time is rounded down to the second.
    Some(Duration::from_secs(
        reset.saturating_sub(now).saturating_add(1),
    ))
}

/// The wait before retrying a rate-limited reply: what the host asks for; after GitHub's
/// secondary limit without a named wait, a minute; else `backoff`.
pub(crate) fn rate_limit_wait(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
    backoff: Duration,
) -> Duration {
    requested_wait(headers, now).unwrap_or_else(|| match is_secondary_limit(status, body) {
        true => SECONDARY_LIMIT_WAIT,
        false => backoff,
    })
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
        let none: &[u8] = b"";
        assert!(is_rate_limited(
            StatusCode::TOO_MANY_REQUESTS,
            &HeaderMap::new(),
            none
        ));
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("retry-after", "3")]),
            none
        ));
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "0")]),
            none
        ));
        assert!(!is_rate_limited(
            StatusCode::FORBIDDEN,
            &headers(&[("x-ratelimit-remaining", "12")]),
            none
        ));
        assert!(!is_rate_limited(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            br#"{"message": "Resource not accessible by personal access token"}"#
        ));
        let secondary = br#"{"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."}"#;
        assert!(is_rate_limited(
            StatusCode::FORBIDDEN,
            &HeaderMap::new(),
            secondary
        ));
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
        // 1000 s after the epoch is Thu, 01 Jan 1970 00:16:40 GMT.
        assert_eq!(
            requested_wait(
                &headers(&[("retry-after", "Thu, 01 Jan 1970 00:17:10 GMT")]),
                now
            ),
            Some(Duration::from_secs(31))
        );
        assert_eq!(
            requested_wait(
                &headers(&[("retry-after", "Thu, 01 Jan 1970 00:00:10 GMT")]),
                now
            ),
            Some(Duration::from_secs(1))
        );
    }

    #[test]
    fn github_secondary_limits_without_a_wait_wait_a_minute() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let secondary = br#"{"message": "You have exceeded a secondary rate limit."}"#;
        let backoff = Duration::from_millis(500);
        let wait = |status, headers: &HeaderMap, body: &[u8]| {
            rate_limit_wait(status, headers, body, now, backoff)
        };
        assert_eq!(
            wait(StatusCode::FORBIDDEN, &HeaderMap::new(), secondary),
            SECONDARY_LIMIT_WAIT
        );
        assert_eq!(
            wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), secondary),
            SECONDARY_LIMIT_WAIT
        );
        assert_eq!(
            wait(
                StatusCode::FORBIDDEN,
                &headers(&[("retry-after", "90")]),
                secondary
            ),
            Duration::from_secs(90)
        );
        assert_eq!(
            wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b"{}"),
            backoff
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_max_wait() {
        let policy = HostBackoff {
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
