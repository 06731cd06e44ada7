//! Whether `packageurl.FromString` (github.com/package-url/packageurl-go
//! v0.1.1, the version Flux's build resolves) accepts a string: the
//! `validate:"purl"` check of the CDEvents SDK on `artifactId` fields.
//!
//! Only acceptance is reproduced. Where that library would panic (a
//! qualifier without `=`), the string is refused.

/// Whether `FromString(purl)` returns no error.
pub(super) fn is_valid(purl: &str) -> bool {
    let remainder = match purl.split_once('#') {
        Some((remainder, subpath)) => {
            let subpath = subpath.trim_matches('/');
            let segments_ok = subpath
                .split('/')
                .map(|segment| segment.replace('.', ""))
                .filter(|segment| !segment.is_empty())
                .all(|segment| path_unescapes(&segment));
            if !segments_ok {
                return false;
            }
            remainder
        }
        None => purl,
    };
    let (remainder, qualifiers) = match remainder.rfind('?') {
        Some(i) => match qualifiers(&remainder[i + 1..]) {
            Some(qualifiers) => (&remainder[..i], qualifiers),
            None => return false,
        },
        None => (remainder, Vec::new()),
    };
    let Some(("pkg", rest)) = remainder.split_once(':') else {
        return false;
    };
    let Some((purl_type, rest)) = rest.trim_start_matches('/').split_once('/') else {
        return false;
    };
    let purl_type = purl_type.to_lowercase();
    let (namespace, name) = match rest.rfind('/') {
        Some(i) => (Some(&rest[..i]), &rest[i + 1..]),
        None => (None, rest),
    };
    // The name is unescaped only when a version follows it.
    let (name_empty, version) = match name.split_once('@') {
        Some((name, version)) => {
            if !path_unescapes(version) || !path_unescapes(name) {
                return false;
            }
            (unescaped_is_empty(name), Some(version))
        }
        None => (name.is_empty(), None),
    };
    let namespaces_ok = namespace.is_none_or(|namespace| {
        namespace
            .split('/')
            .filter(|s| !s.is_empty())
            .all(path_unescapes)
    });
    if !namespaces_ok || name_empty {
        return false;
    }
    let has_namespace = namespace.is_some_and(|n| n.split('/').any(|s| !s.is_empty()));
    let version_empty = version.is_none_or(unescaped_is_empty);
    // The last value of a qualifier counts, as `Qualifiers.Map` builds it.
    let channel = qualifiers
        .iter()
        .rev()
        .find(|(key, _)| key == "channel")
        .map(|(_, value)| value.as_str());
    match purl_type.as_str() {
        "conan" if has_namespace => channel.is_some_and(|c| !c.is_empty()),
        "conan" => channel.is_none_or(str::is_empty),
        "swift" => has_namespace && !version_empty,
        "cran" => !version_empty,
        _ => true,
    }
}

/// The qualifiers of `text` (after the last `?`) with a value, or `None`
/// if one is invalid.
fn qualifiers(text: &str) -> Option<Vec<(String, String)>> {
    let mut qualifiers = Vec::new();
    for item in text.split('&') {
        let mut parts = item.split('=');
        let key = parts.next().unwrap_or_default().to_lowercase();
        let key = path_unescape(&key)?;
        let key_ok = key.chars().enumerate().all(|(i, c)| {
            c.is_ascii_alphabetic() || matches!(c, '.' | '-' | '_') || (i > 0 && c.is_ascii_digit())
        });
        if key.is_empty() || !key_ok {
            return None;
        }
        let value = parts.next()?;
        if value.is_empty() {
            continue;
        }
        qualifiers.push((key, path_unescape(value)?));
    }
    Some(qualifiers)
}

/// Go's `url.PathUnescape`: every `%` followed by two hex digits.
fn path_unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = |at: usize| {
                bytes
                    .get(at)
                    .and_then(|b| char::from(*b).to_digit(16))
                    .and_then(|d| u8::try_from(d).ok())
            };
            out.push((hex(i + 1)? << 4) | hex(i + 2)?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

fn path_unescapes(text: &str) -> bool {
    path_unescape(text).is_some()
}

fn unescaped_is_empty(text: &str) -> bool {
    path_unescape(text).is_none_or(|t| t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_what_packageurl_go_accepts() {
        for ok in [
            "pkg:oci/myapp@sha256%3A0b4c5d6e?repository_url=ghcr.io/example/myapp",
            "pkg:golang/github.com/example/app@v1.2.3",
            "pkg:npm/%40angular/animation@12.3.1",
            "pkg:maven/org.apache.commons/io",
            "pkg://docker/library/alpine",
            "pkg:generic/app@1.0#sub/path",
            "pkg:generic/app?empty=",
            "pkg:swift/github.com/Alamofire/Alamofire@5.4.3",
            "pkg:cran/A3@1.0.0",
            "pkg:conan/openssl@3.0.3",
            "pkg:conan/openssl.org/openssl@3.0.3?user=bincrafters&channel=stable",
        ] {
            assert!(is_valid(ok), "{ok}");
        }
        for bad in [
            "",
            "myapp:1.0",
            "oci/myapp",
            "pkg:oci",
            "pkg:oci/",
            "pkg:oci/ns/",
            "pkg:npm/@1.0",
            "pkg:oci/myapp?repository_url",
            "pkg:oci/myapp?=x",
            "pkg:oci/myapp?1key=x",
            "pkg:oci/myapp?",
            "pkg:oci/myapp@1%2",
            "pkg:generic/app#%zz",
            "pkg:swift/Alamofire@5.4.3",
            "pkg:swift/github.com/Alamofire/Alamofire",
            "pkg:cran/A3",
            "pkg:conan/openssl.org/openssl@3.0.3",
            "pkg:conan/openssl@3.0.3?channel=stable",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
    }
}
