//! Splitting a fuzz input into fields.

use std::borrow::Cow;

use http::{HeaderMap, HeaderName, HeaderValue};

/// The first byte (0 when empty) and the rest.
pub(crate) fn selector(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}

/// `data` cut at its first `n - 1` NUL bytes into exactly `n` fields (the
/// missing ones empty).
pub(crate) fn fields(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut fields: Vec<&[u8]> = data.splitn(n, |b| *b == 0).collect();
    fields.resize(n, &[]);
    fields
}

/// Lossy UTF-8 text.
pub(crate) fn text(data: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(data)
}

/// Headers from `Name: value` lines; lines that are no valid header are
/// skipped. Values are raw bytes (obs-text included), as hyper hands them on.
pub(crate) fn headers(data: &[u8]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    headers
}

/// Header lines as [`headers`] reads them.
pub(crate) fn header_lines<'a>(headers: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, value) in headers {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value);
        out.push(b'\n');
    }
    out
}

/// Fields joined by NUL bytes, behind a selector byte.
pub(crate) fn join(selector: u8, fields: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![selector];
    out.extend(join_fields(fields));
    out
}

/// Fields joined by NUL bytes.
pub(crate) fn join_fields(fields: &[&[u8]]) -> Vec<u8> {
    fields.join(&0u8)
}
