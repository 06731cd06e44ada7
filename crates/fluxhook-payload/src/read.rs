//! Reading headers and typed JSON: the helpers every sender shares.

use std::borrow::Cow;

use http::HeaderMap;
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use crate::{ParseError, Sender};

/// A JSON string, borrowed from the body unless it has escapes.
///
/// serde borrows a `Cow<str>` only when the field itself is marked
/// `#[serde(borrow)]`; this newtype carries that mark into `Option`s and `Vec`s.
#[derive(Debug, Deserialize, PartialEq, Eq, Hash, Clone)]
#[serde(transparent)]
pub(crate) struct Text<'a>(#[serde(borrow)] pub(crate) Cow<'a, str>);

impl Text<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0.into_owned()
    }
}

/// Owned text of an optional string that is not empty.
pub(crate) fn non_empty(text: Option<Text<'_>>) -> Option<String> {
    text.filter(|t| !t.0.is_empty()).map(Text::into_string)
}

/// A value read only when it has the expected shape, else `None`.
///
/// Events other than pushes are accepted whatever they carry; the repository
/// they name is extracted when its shape is the usual one.
pub(crate) struct Lenient<T>(pub(crate) Option<T>);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Lenient<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = <&'de RawValue>::deserialize(deserializer)?;
        Ok(Lenient(serde_json::from_str(raw.get()).ok()))
    }
}

/// Lenient values flattened: absent, null and unexpected shapes are all `None`.
pub(crate) fn lenient<T>(value: Option<Lenient<T>>) -> Option<T> {
    value.and_then(|v| v.0)
}

/// Parses a JSON object into `T`, naming `location` in errors.
pub(crate) fn object<'a, T: Deserialize<'a>>(
    sender: Sender,
    location: &'static str,
    json: &'a [u8],
) -> Result<T, ParseError> {
    // serde would also read a top-level array into a struct (field by
    // position); webhooks are objects, so anything else is refused up front.
    let first = json.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err(ParseError::NotAnObject { location });
    }
    serde_json::from_slice(json).map_err(|e| ParseError::json(sender, location, e))
}

/// A header's value, if present; an error if it is not visible ASCII.
pub(crate) fn header<'h>(
    headers: &'h HeaderMap,
    name: &'static str,
) -> Result<Option<&'h str>, ParseError> {
    headers
        .get(name)
        .map(|v| v.to_str().map_err(|_| ParseError::InvalidHeader { name }))
        .transpose()
}

/// The first of `names` that is present, owned.
pub(crate) fn first_header(
    headers: &HeaderMap,
    names: &[&'static str],
) -> Result<Option<String>, ParseError> {
    for name in names {
        if let Some(value) = header(headers, name)? {
            return Ok(Some(value.to_owned()));
        }
    }
    Ok(None)
}

/// The first of `names` that is present and not empty; an error naming the
/// last of them if none is.
pub(crate) fn required_header(
    headers: &HeaderMap,
    names: &[&'static str],
) -> Result<String, ParseError> {
    for name in names {
        if let Some(value) = header(headers, name)?.filter(|v| !v.is_empty()) {
            return Ok(value.to_owned());
        }
    }
    Err(ParseError::MissingHeader {
        name: names.last().copied().unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn text_borrows_unless_escaped() {
        let plain: Vec<Text<'_>> = serde_json::from_str(r#"["README.md"]"#).unwrap();
        assert!(matches!(plain[0].0, Cow::Borrowed("README.md")));
        let escaped: Vec<Text<'_>> = serde_json::from_str(r#"["a\"b"]"#).unwrap();
        assert!(matches!(&escaped[0].0, Cow::Owned(s) if s == "a\"b"));
    }

    #[test]
    fn lenient_is_none_for_other_shapes() {
        #[derive(Deserialize)]
        struct Named<'a> {
            #[serde(borrow)]
            name: Text<'a>,
        }
        #[derive(Deserialize)]
        struct Wrapper<'a> {
            #[serde(borrow)]
            repository: Option<Lenient<Named<'a>>>,
        }
        for (json, expected) in [
            (r#"{"repository": {"name": "x"}}"#, Some("x")),
            (r#"{"repository": {"name": 7}}"#, None),
            (r#"{"repository": "x"}"#, None),
            (r#"{"repository": null}"#, None),
            (r#"{}"#, None),
        ] {
            let wrapper: Wrapper<'_> = serde_json::from_str(json).unwrap();
            let name = lenient(wrapper.repository).map(|n| n.name.into_string());
            assert_eq!(name.as_deref(), expected, "{json}");
        }
    }

    #[test]
    fn object_refuses_other_top_levels() {
        for json in ["", "  ", "[]", "null", "\"x\"", "1"] {
            let err = object::<serde::de::IgnoredAny>(Sender::GitHub, "body", json.as_bytes());
            assert!(
                matches!(err, Err(ParseError::NotAnObject { location: "body" })),
                "{json:?}"
            );
        }
    }

    #[test]
    fn headers_must_be_visible_ascii() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-GitHub-Event",
            http::HeaderValue::from_bytes(b"pu\xffsh").unwrap(),
        );
        assert!(matches!(
            required_header(&headers, &["X-GitHub-Event"]),
            Err(ParseError::InvalidHeader {
                name: "X-GitHub-Event"
            })
        ));
        headers.insert("X-GitHub-Event", http::HeaderValue::from_static(""));
        assert!(matches!(
            required_header(&headers, &["X-GitHub-Event"]),
            Err(ParseError::MissingHeader {
                name: "X-GitHub-Event"
            })
        ));
    }
}
