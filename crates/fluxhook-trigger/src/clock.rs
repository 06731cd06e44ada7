//! Values for the `reconcile.fluxcd.io/requestedAt` annotation.

use std::sync::{Mutex, PoisonError};

use k8s_openapi::jiff::{SignedDuration, Timestamp};

/// Hands out `requestedAt` values: the current time in UTC, in the form of
/// Go's `time.RFC3339Nano` as `flux reconcile` writes it
/// (`2025-05-01T12:00:00.123456789Z`, trailing zeros of the fraction dropped),
/// strictly later than every value it handed out before.
///
/// Flux reconciles again only when the annotation *changes*, so two patches
/// from this process must never write the same value, even when the system
/// clock is coarse or steps back.
#[derive(Debug, Default)]
pub(crate) struct RequestClock {
    last: Mutex<Option<Timestamp>>,
}

impl RequestClock {
    /// The next value to write.
    pub(crate) fn next(&self) -> String {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let at = strictly_after(*last, Timestamp::now());
        *last = Some(at);
        at.to_string()
    }
}

/// `now`, or the instant one nanosecond after `last` if `now` is not later.
fn strictly_after(last: Option<Timestamp>, now: Timestamp) -> Timestamp {
    match last {
        // At Timestamp::MAX (the year 9999) there is nothing later to give.
        Some(last) if now <= last => last
            .checked_add(SignedDuration::from_nanos(1))
            .unwrap_or(last),
        _ => now,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn at(nanos: i128) -> Timestamp {
        Timestamp::from_nanosecond(nanos).unwrap()
    }

    #[test]
    fn formats_like_go_rfc3339nano_in_utc() {
        assert_eq!(at(0).to_string(), "1970-01-01T00:00:00Z");
        assert_eq!(at(1_500_000_000).to_string(), "1970-01-01T00:00:01.5Z");
        assert_eq!(
            at(1_746_100_800_123_456_789).to_string(),
            "2025-05-01T12:00:00.123456789Z"
        );
    }

    #[test]
    fn successive_values_differ_and_parse_back() {
        let clock = RequestClock::default();
        let values: Vec<String> = (0..1000).map(|_| clock.next()).collect();
        let parsed: Vec<Timestamp> = values.iter().map(|v| v.parse().unwrap()).collect();
        assert!(parsed.windows(2).all(|w| w[0] < w[1]));
    }

    proptest! {
        #[test]
        fn every_value_is_strictly_later_than_the_last(
            start in 0i128..4_000_000_000_000_000_000,
            steps in proptest::collection::vec(-2_000_000_000i64..2_000_000_000, 1..50),
        ) {
            // A wall clock that wanders back and forth, as a stepped one can.
            let mut last = None;
            let mut now = start;
            for step in steps {
                now += i128::from(step);
                let next = strictly_after(last, at(now));
                if let Some(last) = last {
                    prop_assert!(next > last);
                }
                prop_assert!(next >= at(now));
                prop_assert_eq!(next.to_string().parse::<Timestamp>().unwrap(), next);
                last = Some(next);
            }
        }
    }
}
