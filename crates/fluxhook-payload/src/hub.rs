//! What go-github's `ValidatePayload` (v64, the version Flux uses) checks
//! of a delivery before its signature, for Flux's `github` and `bitbucket`
//! receivers.

use http::HeaderMap;
use http::header::CONTENT_TYPE;

use crate::ParseError;
use crate::go::{mime, url};

/// Checks a delivery to a `github` or `bitbucket` Receiver as go-github's
/// `ValidatePayload` reads it, which notification-controller calls for both
/// types (`internal/server/receiver_handlers.go`, v1.9): its `Content-Type`,
/// as Go's `mime.ParseMediaType` reads it, is `application/json`, or
/// `application/x-www-form-urlencoded` with a body Go's `url.ParseQuery`
/// reads. The signature, over the body as sent, is checked apart.
///
/// ```
/// use fluxhook_payload::check_hub_delivery;
/// use http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
///
/// let mut headers = HeaderMap::new();
/// assert!(check_hub_delivery(&headers, b"{}").is_err());
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
/// assert!(check_hub_delivery(&headers, b"{}").is_ok());
/// headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
/// assert!(check_hub_delivery(&headers, b"{}").is_err());
/// ```
pub fn check_hub_delivery(headers: &HeaderMap, body: &[u8]) -> Result<(), ParseError> {
    let invalid = |reason: &str| ParseError::Decode {
        field: "Content-Type header".to_owned(),
        reason: reason.to_owned(),
    };
    // Go's `Header.Get`: the first value, missing is empty.
    let value = match headers.get(CONTENT_TYPE) {
        Some(value) => value.to_str().map_err(|_| ParseError::InvalidHeader {
            name: "Content-Type",
        })?,
        None => "",
    };
    match mime::parse_media_type(value).map_err(invalid)?.as_str() {
        "application/json" => Ok(()),
        "application/x-www-form-urlencoded" => {
            // Go reads the bytes as they are; no escape or separator is
            // lost by replacing bytes that are not UTF-8.
            if url::parses_query(&String::from_utf8_lossy(body)) {
                Ok(())
            } else {
                Err(ParseError::Decode {
                    field: "body".to_owned(),
                    reason: "not a form Go's url.ParseQuery reads".to_owned(),
                })
            }
        }
        _ => Err(invalid(
            "is neither application/json nor application/x-www-form-urlencoded",
        )),
    }
}
