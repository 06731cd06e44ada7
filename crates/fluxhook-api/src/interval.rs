//! `spec.interval`: how often the Receiver is reconciled with its Secret.

use std::time::Duration;

/// The interval Flux uses when `spec.interval` is absent (the CRD default, `10m`).
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(10 * 60);

/// The pattern Flux's CRD puts on `spec.interval`.
pub const INTERVAL_PATTERN: &str = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$";

/// Why a `spec.interval` value cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IntervalError {
    /// The value does not match the CRD's pattern
    /// `^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$` (at byte `position`).
    #[error("interval is not a duration like 10m, 1h30m or 1.5s (at byte {position})")]
    Syntax {
        /// Byte offset where the value stops matching.
        position: usize,
    },
    /// The value is longer than a Go `time.Duration` can hold (about 292 years).
    #[error("interval is too long")]
    Overflow,
}

/// The largest Go `time.Duration`, in nanoseconds.
const MAX_NANOS: u128 = i64::MAX as u128;

/// Reads an interval in the form Flux's CRD admits: one or more
/// `<digits>[.<digits>]<unit>` terms, unit `ms`, `s`, `m` or `h`, summed
/// (`1h30m`, `1.5s`, `500ms`). Fractions below a nanosecond are dropped, as Go
/// does. Other Go duration forms (`0`, `-1s`, `µs`) are refused, as the CRD
/// refuses them.
///
/// ```
/// use std::time::Duration;
/// use fluxhook_api::parse_interval;
///
/// assert_eq!(parse_interval("10m"), Ok(Duration::from_secs(600)));
/// assert_eq!(parse_interval("1h30m"), Ok(Duration::from_secs(5400)));
/// assert_eq!(parse_interval("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(parse_interval("10").is_err());
/// ```
pub fn parse_interval(value: &str) -> Result<Duration, IntervalError> {
    let bytes = value.as_bytes();
    let mut at = 0;
    let mut total: u128 = 0;
    if bytes.is_empty() {
        return Err(IntervalError::Syntax { position: 0 });
    }
    while at < bytes.len() {
        let (whole, after_whole) =
            digits(bytes, at).ok_or(IntervalError::Syntax { position: at })?;
        let (fraction, after_fraction) = match bytes.get(after_whole) {
            Some(b'.') => {
                let start = after_whole + 1;
                let end = digits(bytes, start)
                    .ok_or(IntervalError::Syntax { position: start })?
                    .1;
                (value.get(start..end).unwrap_or_default(), end)
            }
            _ => ("", after_whole),
        };
        let (unit_nanos, after_unit) =
            unit(bytes, after_fraction).ok_or(IntervalError::Syntax {
                position: after_fraction,
            })?;
        total = whole
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(fraction_nanos(fraction, unit_nanos)))
            .and_then(|n| n.checked_add(total))
            .filter(|n| *n <= MAX_NANOS)
            .ok_or(IntervalError::Overflow)?;
        at = after_unit;
    }
    let nanos = u64::try_from(total).map_err(|_| IntervalError::Overflow)?;
    Ok(Duration::from_nanos(nanos))
}

/// Reads one or more ASCII digits at `start`: their value (saturated far above
/// any valid duration) and the offset after them.
fn digits(bytes: &[u8], start: usize) -> Option<(u128, usize)> {
    let len = bytes
        .get(start..)?
        .iter()
        .take_while(|b| b.is_ascii_digit())
        .count();
    if len == 0 {
        return None;
    }
    let value = bytes.get(start..start + len)?.iter().fold(0u128, |acc, b| {
        acc.saturating_mul(10).saturating_add(u128::from(b - b'0'))
    });
    Some((value, start + len))
}

/// Nanoseconds in `0.<fraction>` of a unit, truncated.
fn fraction_nanos(fraction: &str, unit_nanos: u128) -> u128 {
    // A unit is at most an hour (3.6e12 ns), so 13 digits resolve a nanosecond
    // and the numerator stays far from overflow.
    let (numerator, scale) = fraction.bytes().take(13).fold((0u128, 1u128), |(n, s), b| {
        (n * 10 + u128::from(b - b'0'), s * 10)
    });
    numerator * unit_nanos / scale
}

/// Reads a unit at `start`: its length in nanoseconds and the offset after it.
fn unit(bytes: &[u8], start: usize) -> Option<(u128, usize)> {
    const SECOND: u128 = 1_000_000_000;
    match (bytes.get(start), bytes.get(start + 1)) {
        (Some(b'm'), Some(b's')) => Some((1_000_000, start + 2)),
        (Some(b's'), _) => Some((SECOND, start + 1)),
        (Some(b'm'), _) => Some((60 * SECOND, start + 1)),
        (Some(b'h'), _) => Some((3600 * SECOND, start + 1)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn reads_go_durations() {
        let cases = [
            ("10m", Duration::from_secs(600)),
            ("1h", Duration::from_secs(3600)),
            ("1h30m", Duration::from_secs(5400)),
            ("500ms", Duration::from_millis(500)),
            ("1m1ms", Duration::from_millis(60_001)),
            ("0.5h", Duration::from_secs(1800)),
            ("1.000000001s", Duration::from_nanos(1_000_000_001)),
            ("1.0000000019s", Duration::from_nanos(1_000_000_001)),
            ("0s", Duration::ZERO),
            ("2562047h", Duration::from_secs(2_562_047 * 3600)),
        ];
        for (text, expected) in cases {
            assert_eq!(parse_interval(text), Ok(expected), "{text}");
        }
    }

    #[test]
    fn refuses_what_the_crd_refuses() {
        for text in [
            "", "10", "m", "1.m", ".5s", "-1s", "1us", "1µs", "1d", "1 m", "1m ", "1H",
        ] {
            assert!(
                matches!(parse_interval(text), Err(IntervalError::Syntax { .. })),
                "{text}"
            );
        }
        assert_eq!(parse_interval("2562048h"), Err(IntervalError::Overflow));
        assert_eq!(
            parse_interval(&format!("{}h", "9".repeat(60))),
            Err(IntervalError::Overflow)
        );
    }

    proptest! {
        #[test]
        fn sums_terms(terms in prop::collection::vec((0u64..10_000, 0usize..4), 1..5)) {
            let units = [("ms", 1u64), ("s", 1_000), ("m", 60_000), ("h", 3_600_000)];
            let mut text = String::new();
            let mut millis = 0;
            for (n, u) in terms {
                let (suffix, scale) = units[u];
                text.push_str(&format!("{n}{suffix}"));
                millis += n * scale;
            }
            prop_assert_eq!(parse_interval(&text), Ok(Duration::from_millis(millis)));
        }

        #[test]
        fn never_panics(text in ".*|[0-9.mshu]{0,30}") {
            let _ = parse_interval(&text);
        }
    }
}
