//! Whether Go's `url.Parse` accepts a string: the check behind the
//! `uri-reference` validation the CDEvents SDK applies to every `source`
//! (Go 1.26, `src/net/url/url.go`: `Parse`, `parse`, `getScheme`,
//! `parseAuthority`, `parseHost`, `unescape`, with Go 1.26's strict colons
//! in hosts and the IPv6 check of bracketed hosts).

use std::net::Ipv6Addr;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Path,
    Host,
    Zone,
    UserPassword,
    Fragment,
    Query,
}

/// Whether `url.ParseQuery(query)` returns no error: no `;` in a
/// parameter, and every `%` in keys and values followed by two hex digits.
pub(crate) fn parses_query(query: &str) -> bool {
    query
        .split('&')
        .filter(|parameter| !parameter.is_empty())
        .all(|parameter| {
            let (key, value) = parameter.split_once('=').unwrap_or((parameter, ""));
            !parameter.contains(';') && unescapes(key, Mode::Query) && unescapes(value, Mode::Query)
        })
}

/// Whether `url.Parse(text)` succeeds.
pub(crate) fn parses(text: &str) -> bool {
    let (url, fragment) = match text.split_once('#') {
        Some((url, fragment)) => (url, Some(fragment)),
        None => (text, None),
    };
    parse(url) && fragment.is_none_or(|f| f.is_empty() || unescapes(f, Mode::Fragment))
}

fn parse(text: &str) -> bool {
    if text.bytes().any(|b| b < b' ' || b == 0x7f) {
        return false;
    }
    if text == "*" {
        return true;
    }
    let Some((scheme, rest)) = scheme(text) else {
        return false;
    };
    let rest = if rest.ends_with('?') && rest.matches('?').count() == 1 {
        &rest[..rest.len() - 1]
    } else {
        rest.split_once('?').map_or(rest, |(path, _)| path)
    };
    if !rest.starts_with('/') {
        if !scheme.is_empty() {
            // An opaque URL: nothing more is checked.
            return true;
        }
        let segment = rest.split_once('/').map_or(rest, |(segment, _)| segment);
        if segment.contains(':') {
            return false;
        }
    }
    let mut path = rest;
    if (!scheme.is_empty() || !rest.starts_with("///")) && rest.starts_with("//") {
        let authority_and_path = &rest[2..];
        let (authority, after) = match authority_and_path.find('/') {
            Some(i) => authority_and_path.split_at(i),
            None => (authority_and_path, ""),
        };
        if !authority_ok(authority) {
            return false;
        }
        path = after;
    }
    unescapes(path, Mode::Path)
}

/// `getScheme`: `Some((scheme, rest))`, the scheme empty when there is
/// none; `None` for a leading colon ("missing protocol scheme").
fn scheme(text: &str) -> Option<(&str, &str)> {
    for (i, byte) in text.bytes().enumerate() {
        match byte {
            b'a'..=b'z' | b'A'..=b'Z' => {}
            b'0'..=b'9' | b'+' | b'-' | b'.' if i > 0 => {}
            b':' if i == 0 => return None,
            b':' => return Some((&text[..i], &text[i + 1..])),
            _ => return Some(("", text)),
        }
    }
    Some(("", text))
}

fn authority_ok(authority: &str) -> bool {
    let (userinfo, host) = match authority.rfind('@') {
        Some(i) => (Some(&authority[..i]), &authority[i + 1..]),
        None => (None, authority),
    };
    if !host_ok(host) {
        return false;
    }
    let Some(userinfo) = userinfo else {
        return true;
    };
    let valid = userinfo.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '-' | '.'
                    | '_'
                    | ':'
                    | '~'
                    | '!'
                    | '$'
                    | '&'
                    | '\''
                    | '('
                    | ')'
                    | '*'
                    | '+'
                    | ','
                    | ';'
                    | '='
                    | '%'
                    | '@'
            )
    });
    valid
        && match userinfo.split_once(':') {
            Some((user, password)) => {
                unescapes(user, Mode::UserPassword) && unescapes(password, Mode::UserPassword)
            }
            None => unescapes(userinfo, Mode::UserPassword),
        }
}

fn host_ok(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(close) = inner.rfind(']') else {
            return false;
        };
        let (literal, port) = (&inner[..close], &inner[close + 1..]);
        if !port_ok(port) {
            return false;
        }
        let (address, zone) = match literal.find("%25") {
            Some(i) => (&literal[..i], Some(&literal[i..])),
            None => (literal, None),
        };
        if !unescapes(address, Mode::Host) || !zone.is_none_or(|z| unescapes(z, Mode::Zone)) {
            return false;
        }
        // Only an IPv6 address may be in brackets (IPv4-mapped ones too).
        return address.parse::<Ipv6Addr>().is_ok();
    }
    // Strict colons: the first colon starts the port.
    if let Some(i) = host.find(':')
        && !port_ok(&host[i..])
    {
        return false;
    }
    unescapes(host, Mode::Host)
}

/// `validOptionalPort`: empty, or a colon and digits.
fn port_ok(port: &str) -> bool {
    port.is_empty()
        || port
            .strip_prefix(':')
            .is_some_and(|digits| digits.bytes().all(|b| b.is_ascii_digit()))
}

/// Whether Go's `unescape(text, mode)` succeeds.
fn unescapes(text: &str, mode: Mode) -> bool {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte == b'%' {
            let (Some(&high), Some(&low)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return false;
            };
            let (Some(high), Some(low)) = (hex(high), hex(low)) else {
                return false;
            };
            let escaped = &text[i..i + 3];
            if mode == Mode::Host && high < 8 && escaped != "%25" {
                return false;
            }
            if mode == Mode::Zone {
                let value = (high << 4) | low;
                if escaped != "%25" && value != b' ' && should_escape_in_host(value) {
                    return false;
                }
            }
            i += 3;
            continue;
        }
        if matches!(mode, Mode::Host | Mode::Zone) && byte < 0x80 && should_escape_in_host(byte) {
            return false;
        }
        i += 1;
    }
    true
}

fn hex(byte: u8) -> Option<u8> {
    char::from(byte)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// `shouldEscape(c, encodeHost)`.
fn should_escape_in_host(byte: u8) -> bool {
    !(byte.is_ascii_alphanumeric()
        || matches!(
            byte,
            b'-' | b'_'
                | b'.'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'['
                | b']'
                | b'<'
                | b'>'
                | b'"'
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_queries_as_go_does() {
        for ok in [
            "",
            "payload=%7B%7D",
            "a=1&&b",
            "payload={\"ref\":\"x\"}+y",
            "k=%41%62",
        ] {
            assert!(parses_query(ok), "{ok}");
        }
        for bad in ["a=1;b=2", "payload=%7", "%zz=1", "a=%G0"] {
            assert!(!parses_query(bad), "{bad}");
        }
    }

    #[test]
    fn parses_what_go_parses() {
        for ok in [
            "",
            "*",
            "/event/source/123",
            "event/source",
            "https://ci.example.com/pipelines/42?x=1#frag",
            "https://user:p%40ss@ci.example.com:8443/",
            "http://[::1]:80/x",
            "http://[fe80::1%25en0]/",
            "mailto:someone@example.com",
            "urn:uuid:6e8bc430",
            // Opaque: the rest after a scheme is not looked at.
            "a:b/c d",
            "//ci.example.com/x",
            "https://exa%C3%A9mple.com/",
            "a?b:c",
            "https://ci.example.com/a%20b",
            "x#%41",
        ] {
            assert!(parses(ok), "{ok}");
        }
        for bad in [
            ":foo",
            "cache_object:foo/bar",
            "https://ci.example.com/a%zz",
            "https://ci.example.com/a%2",
            "https://exa%41mple.com/",
            "https://example.com:80:80/",
            "http://::1/",
            "http://host:port/",
            "http://[::1/",
            "http://[1.2.3.4]/",
            "http://[::1]x/",
            "https://us er@example.com/",
            "https://ex ample.com/",
            "/a\nb",
            "/a\u{7f}",
            "x#%zz",
        ] {
            assert!(!parses(bad), "{bad}");
        }
    }
}
