//! Go's `encoding/json` decoding into a struct, for the few fields Flux's
//! handlers declare (Go 1.26, `src/encoding/json/decode.go`):
//!
//! - a member goes to the field whose name matches its key exactly or
//!   case-insensitively (`bytes.EqualFold`, so `K` and `ſ` match `k` and
//!   `s`); members are applied in document order, so the last of two
//!   equal keys wins, and an object sent twice for a struct field is merged;
//! - `null` leaves a string or struct as it was and empties a slice or map;
//! - a value of another JSON type than the field's is an error;
//! - members matching no field are skipped, whatever they hold.
//!
//! `json.Unmarshal` takes exactly one value; a `json.Decoder`, which Flux
//! uses for most payloads, reads the first value and ignores what follows.

use serde::Deserialize;
use serde::de::{Deserializer as _, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::read::Text;

/// The type of a JSON value, read from its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    Bool,
    Number,
    String,
    Array,
    Object,
}

impl Kind {
    pub(crate) fn of(raw: &RawValue) -> Kind {
        match raw.get().as_bytes().first() {
            Some(b'n') => Kind::Null,
            Some(b't' | b'f') => Kind::Bool,
            Some(b'"') => Kind::String,
            Some(b'[') => Kind::Array,
            Some(b'{') => Kind::Object,
            _ => Kind::Number,
        }
    }

    /// The name Go's `UnmarshalTypeError` gives the JSON value.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Kind::Null => "null",
            Kind::Bool => "bool",
            Kind::Number => "number",
            Kind::String => "string",
            Kind::Array => "array",
            Kind::Object => "object",
        }
    }
}

/// Why a value does not decode into a field: Go's `UnmarshalTypeError`, or
/// a custom decoder's error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {reason}")]
pub(crate) struct DecodeError {
    /// The dotted path of the field, e.g. `push_data.tag`.
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) reason: String,
}

impl DecodeError {
    pub(crate) fn new(field: &str, reason: impl Into<String>) -> Self {
        Self {
            field: field.to_owned(),
            reason: reason.into(),
        }
    }

    /// Go's type error: `found` cannot go into a field of `expected` type.
    pub(crate) fn mismatch(field: &str, found: Kind, expected: &str) -> Self {
        Self::new(
            field,
            format!(
                "cannot unmarshal {} into a field of type {expected}",
                found.name()
            ),
        )
    }
}

/// The path of a member of `parent`.
pub(crate) fn path(parent: &str, field: &str) -> String {
    if parent.is_empty() {
        field.to_owned()
    } else {
        format!("{parent}.{field}")
    }
}

/// Whether Go's decoder puts the member `key` into the field `field`
/// (whose name is ASCII): equal under Unicode simple case folding.
pub(crate) fn key_matches(key: &str, field: &str) -> bool {
    let mut field = field.bytes();
    for c in key.chars() {
        let Some(expected) = field.next() else {
            return false;
        };
        let folded = match c {
            // The only non-ASCII letters that fold to ASCII ones.
            '\u{212A}' => 'k',
            '\u{017F}' => 's',
            c if c.is_ascii() => c.to_ascii_lowercase(),
            _ => return false,
        };
        if folded != char::from(expected.to_ascii_lowercase()) {
            return false;
        }
    }
    field.next().is_none()
}

/// An object's members in document order, keys unescaped, values raw.
pub(crate) struct Members<'a>(Vec<(Text<'a>, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The members of `raw`, which must be an object.
    pub(crate) fn of(raw: &'a RawValue) -> Result<Self, serde_json::Error> {
        struct MembersVisitor;
        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Vec<(Text<'de>, &'de RawValue)>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<Text<'de>, &'de RawValue>()? {
                    members.push(member);
                }
                Ok(members)
            }
        }
        let mut deserializer = serde_json::Deserializer::from_str(raw.get());
        deserializer.deserialize_map(MembersVisitor).map(Members)
    }

    /// The values of the members Go decodes into `field`, in order.
    pub(crate) fn all(&self, field: &'static str) -> impl Iterator<Item = &'a RawValue> + '_ {
        self.0
            .iter()
            .filter(move |(key, _)| key.as_str() == field || key_matches(key.as_str(), field))
            .map(|(_, value)| *value)
    }
}

/// The top-level value `json.Unmarshal` decodes: the whole of `body`.
pub(crate) fn unmarshal_value(body: &[u8]) -> Result<&RawValue, serde_json::Error> {
    serde_json::from_slice(body)
}

/// The value a `json.Decoder` decodes: the first one in `body`, whatever
/// follows it.
pub(crate) fn decoder_value(body: &[u8]) -> Result<&RawValue, serde_json::Error> {
    let mut values = serde_json::Deserializer::from_slice(body).into_iter::<&RawValue>();
    match values.next() {
        Some(value) => value,
        // Go: io.EOF, an error for Flux too.
        None => <&RawValue>::deserialize(&mut serde_json::Deserializer::from_slice(body)),
    }
}

/// Decodes `raw` into a struct whose fields `visit` sets: `null` leaves it
/// as it was, an object's members are visited, anything else is an error.
pub(crate) fn decode_struct<'a>(
    raw: &'a RawValue,
    field: &str,
    visit: impl FnOnce(&Members<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    match Kind::of(raw) {
        Kind::Null => Ok(()),
        Kind::Object => {
            let members = Members::of(raw).map_err(|e| DecodeError::new(field, e.to_string()))?;
            visit(&members)
        }
        other => Err(DecodeError::mismatch(field, other, "struct")),
    }
}

/// Decodes every member for `name` into a struct field, in order (Go merges
/// an object sent twice).
pub(crate) fn struct_field<'a>(
    members: &Members<'a>,
    parent: &str,
    name: &'static str,
    mut visit: impl FnMut(&Members<'a>, &str) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let field = path(parent, name);
    for raw in members.all(name) {
        decode_struct(raw, &field, |inner| visit(inner, &field))?;
    }
    Ok(())
}

/// Decodes the members for `name` into a `string` field.
pub(crate) fn string_field(
    members: &Members<'_>,
    parent: &str,
    name: &'static str,
    target: &mut String,
) -> Result<(), DecodeError> {
    for raw in members.all(name) {
        decode_string(raw, &path(parent, name), target)?;
    }
    Ok(())
}

/// Go's decoding of `raw` into a `string`.
pub(crate) fn decode_string(
    raw: &RawValue,
    field: &str,
    target: &mut String,
) -> Result<(), DecodeError> {
    match Kind::of(raw) {
        Kind::Null => Ok(()),
        Kind::String => {
            *target = serde_json::from_str(raw.get())
                .map_err(|e| DecodeError::new(field, e.to_string()))?;
            Ok(())
        }
        other => Err(DecodeError::mismatch(field, other, "string")),
    }
}

/// Decodes the members for `name` into a `[]string` field: `null` empties
/// it, an array replaces it (a `null` element is an empty string).
pub(crate) fn strings_field(
    members: &Members<'_>,
    parent: &str,
    name: &'static str,
    target: &mut Vec<String>,
) -> Result<(), DecodeError> {
    let field = path(parent, name);
    for raw in members.all(name) {
        match Kind::of(raw) {
            Kind::Null => target.clear(),
            Kind::Array => {
                let items: Vec<&RawValue> = serde_json::from_str(raw.get())
                    .map_err(|e| DecodeError::new(&field, e.to_string()))?;
                let mut strings = Vec::with_capacity(items.len());
                for item in items {
                    let mut text = String::new();
                    decode_string(item, &field, &mut text)?;
                    strings.push(text);
                }
                *target = strings;
            }
            other => return Err(DecodeError::mismatch(&field, other, "[]string")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn keys_match_fields_as_go_folds_them() {
        for (key, field, matches) in [
            ("tag", "tag", true),
            ("TAG", "tag", true),
            ("Docker_URL", "docker_url", true),
            ("\u{212A}ind", "kind", true),
            ("\u{017F}ource", "source", true),
            ("tags", "tag", false),
            ("ta", "tag", false),
            ("tág", "tag", false),
            ("docker-url", "docker_url", false),
        ] {
            assert_eq!(key_matches(key, field), matches, "{key} {field}");
        }
    }

    #[test]
    fn members_are_applied_in_order_and_the_last_wins() {
        let raw = unmarshal_value(br#"{"tag": "a", "Tag": "b", "other": [1, {"x": 2}]}"#).unwrap();
        let members = Members::of(raw).unwrap();
        let mut tag = String::new();
        string_field(&members, "", "tag", &mut tag).unwrap();
        assert_eq!(tag, "b");
    }

    #[test]
    fn null_and_type_errors_are_gos() {
        let decode = |json: &str| {
            let raw = unmarshal_value(json.as_bytes()).unwrap();
            let mut text = "kept".to_owned();
            decode_string(raw, "f", &mut text).map(|()| text)
        };
        assert_eq!(decode("null").unwrap(), "kept");
        assert_eq!(decode(r#""a\u0062""#).unwrap(), "ab");
        assert_eq!(
            decode("1").unwrap_err().to_string(),
            "f: cannot unmarshal number into a field of type string"
        );
        assert!(decode("{}").is_err());

        let raw = unmarshal_value(br#"{"t": ["a", null], "u": null, "v": "x"}"#).unwrap();
        let members = Members::of(raw).unwrap();
        let mut tags = vec!["old".to_owned()];
        strings_field(&members, "", "t", &mut tags).unwrap();
        assert_eq!(tags, ["a", ""]);
        strings_field(&members, "", "u", &mut tags).unwrap();
        assert!(tags.is_empty());
        assert!(strings_field(&members, "", "v", &mut tags).is_err());
    }

    #[test]
    fn a_decoder_reads_the_first_value_only() {
        assert_eq!(
            decoder_value(br#" {"a": 1} trailing"#).unwrap().get(),
            r#"{"a": 1}"#
        );
        assert_eq!(decoder_value(b"{}}").unwrap().get(), "{}");
        assert!(decoder_value(b"").is_err());
        assert!(decoder_value(b"  ").is_err());
        assert!(decoder_value(b"{").is_err());
        assert!(unmarshal_value(br#"{"a": 1} trailing"#).is_err());
    }

    #[test]
    fn struct_fields_merge_and_refuse_other_types() {
        let raw = unmarshal_value(br#"{"p": {"a": "1"}, "P": {"b": "2"}, "q": 3}"#).unwrap();
        let members = Members::of(raw).unwrap();
        let (mut a, mut b) = (String::new(), String::new());
        struct_field(&members, "", "p", |inner, parent| {
            string_field(inner, parent, "a", &mut a)?;
            string_field(inner, parent, "b", &mut b)
        })
        .unwrap();
        assert_eq!((a.as_str(), b.as_str()), ("1", "2"));
        let error = struct_field(&members, "", "q", |_, _| Ok(())).unwrap_err();
        assert_eq!(error.field, "q");
    }
}
