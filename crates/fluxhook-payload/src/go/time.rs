//! Which JSON values a `time.Time` field takes (Go 1.26,
//! `src/time/time.go` `UnmarshalJSON` and `src/time/format_rfc3339.go`
//! `parseStrictRFC3339`): `null`, or a JSON string whose raw text (escapes
//! are not decoded) is `YYYY-MM-DDTHH:MM:SS[.digits](Z|±HH:MM)` with an
//! upper-case `T` and `Z`, every part in range (the day in its month, no
//! leap second), and a year of four digits.

use serde_json::value::RawValue;

/// Whether a `time.Time` field takes `raw`.
pub(crate) fn takes(raw: &RawValue) -> bool {
    let text = raw.get().as_bytes();
    if text == b"null" {
        return true;
    }
    match text {
        [b'"', inner @ .., b'"'] => is_rfc3339(inner),
        _ => false,
    }
}

/// Go's `parseRFC3339`, the strict form `UnmarshalJSON` accepts.
pub(crate) fn is_rfc3339(text: &[u8]) -> bool {
    let number = |range: std::ops::Range<usize>, min: u32, max: u32| -> Option<u32> {
        let digits = text.get(range)?;
        if !digits.iter().all(u8::is_ascii_digit) {
            return None;
        }
        let value = digits
            .iter()
            .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'));
        (min..=max).contains(&value).then_some(value)
    };
    if text.len() < "2006-01-02T15:04:05".len() {
        return false;
    }
    let (Some(year), Some(month)) = (number(0..4, 0, 9999), number(5..7, 1, 12)) else {
        return false;
    };
    let date_time = number(8..10, 1, days_in(month, year)).is_some()
        && number(11..13, 0, 23).is_some()
        && number(14..16, 0, 59).is_some()
        && number(17..19, 0, 59).is_some()
        && text[4] == b'-'
        && text[7] == b'-'
        && text[10] == b'T'
        && text[13] == b':'
        && text[16] == b':';
    if !date_time {
        return false;
    }
    let mut rest = &text[19..];
    if let [b'.', digit, ..] = rest
        && digit.is_ascii_digit()
    {
        let digits = rest[1..].iter().take_while(|d| d.is_ascii_digit()).count();
        rest = &rest[1 + digits..];
    }
    match rest {
        [b'Z'] => true,
        [b'+' | b'-', _, _, b':', _, _] => {
            let zone = |range: std::ops::Range<usize>, max: u32| {
                rest.get(range).is_some_and(|d| {
                    d.iter().all(u8::is_ascii_digit)
                        && d.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')) <= max
                })
            };
            zone(1..3, 23) && zone(4..6, 59)
        }
        _ => false,
    }
}

fn days_in(month: u32, year: u32) -> u32 {
    match month {
        2 if year.is_multiple_of(4) && (!year.is_multiple_of(100) || year.is_multiple_of(400)) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn takes_what_go_takes() {
        for ok in [
            "2023-03-20T14:27:05Z",
            "2023-03-20T14:27:05.315384Z",
            "2023-03-20T14:27:05.1234567891234Z",
            "2023-03-20T14:27:05+02:00",
            "2023-03-20T14:27:05-23:59",
            "2024-02-29T00:00:00Z",
            "0000-01-01T00:00:00Z",
        ] {
            assert!(is_rfc3339(ok.as_bytes()), "{ok}");
        }
        for bad in [
            "",
            "2023-03-20",
            "2023-03-20T14:27:05",
            "2023-03-20t14:27:05Z",
            "2023-03-20T14:27:05z",
            "2016-12-31T23:59:60Z",
            "2023-02-29T00:00:00Z",
            "2023-04-31T00:00:00Z",
            "2023-13-20T14:27:05Z",
            "2023-03-20T24:00:00Z",
            "2023-03-20 14:27:05Z",
            "2023-03-20T14:27:05.Z",
            "2023-03-20T14:27:05,5Z",
            "2023-03-20T14:27:05+0200",
            "2023-03-20T14:27:05+24:00",
            "2023-03-20T14:27:05ZZ",
            "12023-03-20T14:27:05Z",
            "２０２３-03-20T14:27:05Z",
        ] {
            assert!(!is_rfc3339(bad.as_bytes()), "{bad}");
        }
        fn raw(json: &str) -> &RawValue {
            serde_json::from_str(json).unwrap()
        }
        assert!(takes(raw("null")));
        assert!(takes(raw(r#""2023-03-20T14:27:05Z""#)));
        assert!(!takes(raw(r#""2023-03-20T14:27:05\u005a""#)));
        assert!(!takes(raw("1679322425")));
        assert!(!takes(raw(r#""""#)));
    }
}
