//! What Flux's CEL resource filters read of a request.

use http::HeaderMap;
use http::header::CONTENT_TYPE;

use crate::go::mime;

/// Whether Flux reads the body as JSON for the `req` of a Receiver's CEL
/// filters, as notification-controller's `isJSONContent` decides it
/// (`internal/server/receiver_resource_filter.go`, v1.9): the first
/// `Content-Type` value is split at commas and each part parsed with Go's
/// `mime.ParseMediaType`; the first part Go refuses ends the search, and the
/// first `application/json` says yes. Otherwise `req` is `{}`.
///
/// ```
/// use fluxhook_payload::is_json_content;
/// use http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
///
/// let mut headers = HeaderMap::new();
/// assert!(!is_json_content(&headers));
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain, application/json"));
/// assert!(is_json_content(&headers));
/// // Go refuses a parameter without a value, and stops there.
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset"));
/// assert!(!is_json_content(&headers));
/// ```
pub fn is_json_content(headers: &HeaderMap) -> bool {
    // Go's `Header.Get`: the first value, its bytes as they are. A byte that
    // is not UTF-8 becomes U+FFFD, which, like the byte, is no token
    // character for Go, so the part holding it is refused all the same.
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return false;
    };
    let value = String::from_utf8_lossy(value.as_bytes());
    for part in value.split(',') {
        match mime::parse_media_type(part) {
            Ok(media_type) if media_type == "application/json" => return true,
            Ok(_) => {}
            Err(_) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use http::HeaderValue;

    fn content_type(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_bytes(value).unwrap());
        headers
    }

    #[test]
    fn json_content_is_read_as_flux_reads_it() {
        for (value, json) in [
            (&b"application/json"[..], true),
            (b"application/json; charset=utf-8", true),
            (b"Application/JSON", true),
            (b" application/json ", true),
            (b"application/json;", true),
            (b"text/plain, application/json", true),
            (b"text/plain; charset=\"a,b\", application/json", false),
            (b"application/x-www-form-urlencoded", false),
            (b"application/cloudevents+json", false),
            (b"nonsense, application/json", true),
            (b"application/json; charset", false),
            (b"application/json; a=1; a=2", false),
            (b"application/json extra, application/json", false),
            (b"text/pl\xffin, application/json", false),
            (b"application/json, text/pl\xffin", true),
            (b", application/json", false),
            (b"", false),
        ] {
            assert_eq!(
                is_json_content(&content_type(value)),
                json,
                "{}",
                String::from_utf8_lossy(value)
            );
        }
        assert!(!is_json_content(&HeaderMap::new()));
    }
}
