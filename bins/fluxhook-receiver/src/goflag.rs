//! Flag values read as Go's `flag`/`pflag` read them, so that notification-controller's
//! arguments mean the same here: booleans by `strconv.ParseBool`, durations by
//! `time.ParseDuration`, integers by `strconv.ParseInt(s, 0, 64)`, feature gates by
//! k8s.io/component-base's `MapStringBool`.

use std::collections::BTreeMap;
use std::time::Duration;

/// `strconv.ParseBool`: `1 t T TRUE true True`, `0 f F FALSE false False`.
pub(crate) fn bool(value: &str) -> Result<bool, String> {
    match value {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(format!("invalid boolean {value:?} (use true or false)")),
    }
}

/// `time.ParseDuration` (`35s`, `1m30s`, `1.5h`, `750ms`, `0`), refusing negative
/// durations, which no flag of fluxhook can use.
pub(crate) fn duration(value: &str) -> Result<Duration, String> {
    let invalid = || format!("invalid duration {value:?} (e.g. 35s, 1m30s, 750ms)");
    let (negative, mut rest) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid());
    }
    let mut nanos: u128 = 0;
    while !rest.is_empty() {
        let digits = |s: &str| s.bytes().take_while(u8::is_ascii_digit).count();
        let whole_len = digits(rest);
        let whole = &rest[..whole_len];
        rest = &rest[whole_len..];
        let mut fraction = "";
        if let Some(after_dot) = rest.strip_prefix('.') {
            let fraction_len = digits(after_dot);
            fraction = &after_dot[..fraction_len];
            rest = &after_dot[fraction_len..];
        }
        if whole.is_empty() && fraction.is_empty() {
            return Err(invalid());
        }
        let unit_len = rest
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(rest.len(), |(at, _)| at);
        let unit: u128 = match &rest[..unit_len] {
            "ns" => 1,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60 * 1_000_000_000,
            "h" => 3_600 * 1_000_000_000,
            "" => return Err(format!("missing unit in duration {value:?}")),
            other => return Err(format!("unknown unit {other:?} in duration {value:?}")),
        };
        rest = &rest[unit_len..];
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut part = whole.checked_mul(unit).ok_or_else(invalid)?;
        if !fraction.is_empty() {
            // Go keeps the fraction's first digits that fit; 30 are more than any unit needs.
            let fraction = &fraction[..fraction.len().min(30)];
            let scale = 10u128.pow(u32::try_from(fraction.len()).unwrap_or(30));
            let fraction: u128 = fraction.parse().map_err(|_| invalid())?;
            part += fraction * unit / scale;
        }
        nanos = nanos.checked_add(part).ok_or_else(invalid)?;
    }
    // Go's Duration is an int64 of nanoseconds.
    if nanos > i64::MAX as u128 {
        return Err(invalid());
    }
    if negative && nanos > 0 {
        return Err(format!("invalid duration {value:?}: must not be negative"));
    }
    Ok(Duration::from_nanos(
        u64::try_from(nanos).map_err(|_| invalid())?,
    ))
}

/// `strconv.ParseInt(s, 0, 64)`: decimal, `0x`/`0o`/`0b` prefixes, a leading `0` for octal,
/// `_` between digits.
pub(crate) fn int(value: &str) -> Result<i64, String> {
    let invalid = || format!("invalid integer {value:?}");
    let (negative, unsigned) = match value.as_bytes().first() {
        Some(b'-') => (true, &value[1..]),
        Some(b'+') => (false, &value[1..]),
        _ => (false, value),
    };
    let lower = unsigned.to_ascii_lowercase();
    let (radix, digits) = if let Some(hex) = lower.strip_prefix("0x") {
        (16, hex)
    } else if let Some(octal) = lower.strip_prefix("0o") {
        (8, octal)
    } else if let Some(binary) = lower.strip_prefix("0b") {
        (2, binary)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    // Underscores only separate digits: not first, not last, never two in a row.
    let underscores_ok =
        !digits.starts_with('_') && !digits.ends_with('_') && !digits.contains("__");
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !underscores_ok || digits.starts_with(['+', '-']) {
        return Err(invalid());
    }
    let magnitude = i128::from_str_radix(&digits, radix).map_err(|_| invalid())?;
    let signed = if negative { -magnitude } else { magnitude };
    i64::try_from(signed).map_err(|_| format!("integer {value:?} out of range"))
}

/// `strconv.ParseFloat(s, 32)` for the values a flag takes (`50`, `2.5`, `1e2`).
pub(crate) fn float32(value: &str) -> Result<f32, String> {
    let parsed: f64 = value
        .parse()
        .map_err(|_| format!("invalid number {value:?}"))?;
    if parsed.is_finite() && parsed.abs() > f64::from(f32::MAX) {
        return Err(format!("number {value:?} out of range"));
    }
    #[allow(clippy::cast_possible_truncation)]
    Ok(parsed as f32)
}

/// One `--feature-gates` value: `Gate=true,Other=false` (k8s.io/component-base
/// `MapStringBool.Set`: blank items skipped, keys and values trimmed).
pub(crate) fn feature_gates(value: &str) -> Result<BTreeMap<String, bool>, String> {
    let mut gates = BTreeMap::new();
    for item in value.split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let Some((name, enabled)) = item.split_once('=') else {
            return Err(format!("malformed pair {item:?}, expect string=bool"));
        };
        let (name, enabled) = (name.trim(), enabled.trim());
        let enabled = bool(enabled).map_err(|_| format!("invalid value of {name}: {enabled:?}"))?;
        gates.insert(name.to_string(), enabled);
    }
    Ok(gates)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn booleans_as_strconv_parse_bool() {
        for yes in ["1", "t", "T", "TRUE", "true", "True"] {
            assert_eq!(bool(yes), Ok(true), "{yes}");
        }
        for no in ["0", "f", "F", "FALSE", "false", "False"] {
            assert_eq!(bool(no), Ok(false), "{no}");
        }
        for bad in ["", "yes", "tRuE", "2", " true"] {
            assert!(bool(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn durations_as_time_parse_duration() {
        let ms = Duration::from_millis;
        for (text, expected) in [
            ("35s", ms(35_000)),
            ("1m30s", ms(90_000)),
            ("1.5h", ms(5_400_000)),
            ("750ms", ms(750)),
            ("15m", ms(900_000)),
            (".5s", ms(500)),
            ("5.s", ms(5_000)),
            ("+2s", ms(2_000)),
            ("0", Duration::ZERO),
            ("-0s", Duration::ZERO),
            ("1h2m3s4ms5us6ns", Duration::new(3_723, 4_005_006)),
            ("3\u{b5}s", Duration::from_micros(3)),
            ("3\u{3bc}s", Duration::from_micros(3)),
            ("1.000000001s", Duration::new(1, 1)),
        ] {
            assert_eq!(duration(text), Ok(expected), "{text}");
        }
        for bad in [
            "", "s", "35", "1x", "1.5", ".s", "-1s", "1m30", "3000000h", "1 s",
        ] {
            assert!(duration(bad).is_err(), "{bad}");
        }
        assert_eq!(
            duration("35").unwrap_err(),
            "missing unit in duration \"35\""
        );
    }

    #[test]
    fn integers_as_strconv_parse_int_base_0() {
        for (text, expected) in [
            ("300", 300),
            ("-4", -4),
            ("+4", 4),
            ("0x1f", 31),
            ("0X1F", 31),
            ("017", 15),
            ("0o17", 15),
            ("0b101", 5),
            ("1_000", 1_000),
            ("0", 0),
        ] {
            assert_eq!(int(text), Ok(expected), "{text}");
        }
        for bad in [
            "",
            "-",
            "0x",
            "08",
            "1__0",
            "_1",
            "1_",
            "1.5",
            "--1",
            "+-1",
            "99999999999999999999",
        ] {
            assert!(int(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn floats_as_parse_float_32() {
        assert_eq!(float32("50"), Ok(50.0));
        assert_eq!(float32("2.5"), Ok(2.5));
        assert_eq!(float32("1e2"), Ok(100.0));
        assert_eq!(float32("-1"), Ok(-1.0));
        assert!(float32("fifty").is_err());
        assert!(float32("1e300").is_err());
    }

    #[test]
    fn feature_gates_as_map_string_bool() {
        let gates =
            feature_gates(" DisableConfigWatchers = true ,, CacheSecretsAndConfigMaps=F").unwrap();
        assert_eq!(
            gates,
            BTreeMap::from([
                ("CacheSecretsAndConfigMaps".to_string(), false),
                ("DisableConfigWatchers".to_string(), true),
            ])
        );
        assert_eq!(feature_gates(""), Ok(BTreeMap::new()));
        assert!(
            feature_gates("DisableConfigWatchers")
                .unwrap_err()
                .contains("expect string=bool")
        );
        assert!(feature_gates("DisableConfigWatchers=yes").is_err());
    }
}
