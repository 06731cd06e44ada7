//! CDEvents, read and validated as Flux's `cdevents` receiver does: the
//! body is the CDEvent (CloudEvents binary mode; the CloudEvent type is the
//! `Ce-Type` header, which the receiver matches against `spec.events`, not
//! this parser), and it must pass the CDEvents Go SDK Flux vendors,
//! `github.com/cdevents/sdk-go` v0.5.0, as notification-controller v1.9
//! calls it (`v04.NewFromJsonBytes`, then `cdevents.Validate`):
//!
//! 1. the body decodes as Go decodes it into the SDK's structs
//!    ([`crate::go::json`]): `context.type` must be
//!    `dev.cdevents.<subject>.<predicate>.<version>` (lower-case subject
//!    and predicate) or `dev.cdeventsx.<tool>-<subject>.<predicate>.<version>`,
//!    `context.timestamp` a Go RFC 3339 time or absent, and every field the
//!    SDK declares of its JSON type;
//! 2. the type is one of the 45 of CDEvents 0.4.1 ([`v04`]) at exactly its
//!    version, or a custom type with a one-digit `x.y.z` version;
//! 3. the SDK's `validate` tags hold: every `source` parses as a Go URL,
//!    every `artifactId` tagged `purl` is a package URL, every link's type
//!    is `END`, `PATH` or `RELATION`;
//! 4. the event, as the SDK marshals it back, passes the type's 0.4.1 JSON
//!    schema: `context.version`, `context.id`, `context.source`,
//!    `subject.id` are not empty, `subject.type` is the subject's, the
//!    content's required fields are there, `customData` is an object or a
//!    string, every link has a `from` (or `target` and `linkKind`) context
//!    id and an object of `tags`;
//! 5. `context.schemaUri` is empty: Flux loads no custom schema, so the SDK
//!    fails to find any.
//!
//! The SDK keeps one event value per type and decodes each delivery into
//! it, so in Flux a field left out by one delivery may be filled by an
//! earlier one; fluxhook validates each delivery on its own.

mod purl;
mod v04;

use serde_json::value::RawValue;

use crate::go::json::{self, DecodeError, Kind, Members};
use crate::go::{time, url};
use crate::{Event, ParseError, Parsed};
use v04::{EventType, Field};

/// A CDEvent that passed the CDEvents SDK's validation (the type is also
/// [`Webhook::event_type`](crate::Webhook::event_type)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdEvent {
    /// `context.version`: the CDEvents spec version, e.g. `0.4.1`.
    pub spec_version: String,
    /// `context.id`: unique within `source`.
    pub id: String,
    /// `context.source`: a URI-reference naming the producer.
    pub source: String,
    /// `context.type`: `dev.cdevents.<subject>.<predicate>.<version>`, e.g.
    /// `dev.cdevents.pipelinerun.finished.0.2.0` (custom events:
    /// `dev.cdeventsx.<tool>-<subject>.<predicate>.<version>`).
    pub event_type: String,
    /// `context.timestamp` as sent (RFC 3339), empty when absent.
    pub timestamp: String,
    /// `subject.id`.
    pub subject_id: String,
    /// `subject.source`, when sent.
    pub subject_source: Option<String>,
    /// `subject.type`, e.g. `pipelineRun`.
    pub subject_type: String,
}

/// Parses and validates a CDEvent (the body of a binary-mode delivery).
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let top = json::unmarshal_value(body)
        .map_err(|e| ParseError::json(crate::Sender::CdEvents, "body", e))?;
    let decoded = decode(top).map_err(ParseError::from)?;
    let event = validate(decoded)?;
    Ok(Parsed {
        event_type: Some(event.event_type.clone()),
        delivery_id: Some(event.id.clone()).filter(|id| !id.is_empty()),
        event: Event::CdEvent(event),
    })
}

impl From<DecodeError> for ParseError {
    fn from(error: DecodeError) -> Self {
        ParseError::Decode {
            field: error.field,
            reason: error.reason,
        }
    }
}

/// A type name as the SDK parses it (`CDEventTypeFromString`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct TypeName {
    /// The tool of a custom (`dev.cdeventsx.`) type.
    tool: Option<String>,
    subject: String,
    predicate: String,
    version: String,
}

impl TypeName {
    /// `^dev\.cdevents\.([a-z]+)\.([a-z]+)\.(.*)$`, else
    /// `^dev\.cdeventsx\.([a-z]+)-([a-z]+)\.([a-z]+)\.(.*)$`.
    fn parse(text: &str) -> Option<Self> {
        let word = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase());
        let (tool, rest) = if let Some(rest) = text.strip_prefix("dev.cdevents.") {
            (None, rest)
        } else {
            let rest = text.strip_prefix("dev.cdeventsx.")?;
            let (tool, rest) = rest.split_once('-')?;
            if !word(tool) {
                return None;
            }
            (Some(tool.to_owned()), rest)
        };
        let (subject, rest) = rest.split_once('.')?;
        let (predicate, version) = rest.split_once('.')?;
        (word(subject) && word(predicate) && !version.contains('\n')).then(|| TypeName {
            tool,
            subject: subject.to_owned(),
            predicate: predicate.to_owned(),
            version: version.to_owned(),
        })
    }
}

impl std::fmt::Display for TypeName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.tool {
            Some(tool) => write!(f, "dev.cdeventsx.{tool}-")?,
            None => f.write_str("dev.cdevents.")?,
        }
        write!(f, "{}.{}.{}", self.subject, self.predicate, self.version)
    }
}

/// The event as the SDK's structs hold it after decoding.
#[derive(Default)]
struct Decoded {
    id: String,
    source: String,
    version: String,
    chain_id: String,
    schema_uri: String,
    event_type: Option<TypeName>,
    timestamp: String,
    links: Vec<Link>,
    subject_id: String,
    subject_source: String,
    subject_type: String,
    content: Content,
    /// The JSON type of `customData`, `None` when absent or null.
    custom_data: Option<Kind>,
}

#[derive(Default)]
enum Content {
    /// A known type's content fields, in the order of its table.
    Fields(Vec<Value>),
    /// A custom type's content (an `interface{}`): its JSON type, `None`
    /// for null.
    Any(Option<Kind>),
    #[default]
    Unknown,
}

enum Value {
    Text(String),
    Texts(Vec<String>),
    Reference(Option<Reference>),
    Object(Option<Vec<Value>>),
}

#[derive(Default)]
struct Reference {
    id: String,
    source: String,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum LinkType {
    End,
    Path,
    Relation,
}

struct Link {
    link_type: LinkType,
    /// `from.contextId` (`END`, `PATH`) or `target.contextId` (`RELATION`).
    context_id: String,
    link_kind: String,
    /// Whether `tags` decoded to a map (not absent, not null).
    tags: bool,
}

fn decode(top: &RawValue) -> Result<Decoded, DecodeError> {
    let mut event = Decoded::default();
    json::decode_struct(top, "body", |members| {
        for raw in members.all("context") {
            json::decode_struct(raw, "context", |context| {
                decode_context(context, &mut event)
            })?;
        }
        // The content's struct depends on the type, read first as the SDK
        // reads it (`NewFromJsonBytesContext`).
        event.content = match &event.event_type {
            Some(TypeName { tool: Some(_), .. }) => Content::Any(None),
            Some(TypeName {
                tool: None,
                subject,
                predicate,
                ..
            }) => match v04::lookup(subject, predicate) {
                Some(known) => Content::Fields(known.content.iter().map(empty_value).collect()),
                None => Content::Unknown,
            },
            None => Content::Unknown,
        };
        if matches!(event.content, Content::Unknown) {
            // The SDK stops at the type: nothing more is decoded.
            return Ok(());
        }
        for raw in members.all("subject") {
            json::decode_struct(raw, "subject", |subject| {
                decode_subject(subject, &mut event)
            })?;
        }
        for raw in members.all("customData") {
            event.custom_data = Some(Kind::of(raw)).filter(|k| *k != Kind::Null);
        }
        let mut content_type = String::new();
        json::string_field(members, "", "customDataContentType", &mut content_type)
    })?;
    Ok(event)
}

fn decode_context(members: &Members<'_>, event: &mut Decoded) -> Result<(), DecodeError> {
    json::string_field(members, "context", "id", &mut event.id)?;
    json::string_field(members, "context", "source", &mut event.source)?;
    json::string_field(members, "context", "version", &mut event.version)?;
    // Read (as a string) by the SDK's first pass, which takes v0.5's name too.
    json::string_field(members, "context", "specversion", &mut String::new())?;
    json::string_field(members, "context", "chainId", &mut event.chain_id)?;
    json::string_field(members, "context", "schemaUri", &mut event.schema_uri)?;
    for raw in members.all("type") {
        // `CDEventType.UnmarshalJSON` works on the raw text.
        let text = raw.get();
        if text == "null" || text == "\"\"" {
            continue;
        }
        let name = text.trim_matches('"');
        let parsed = TypeName::parse(name).ok_or_else(|| {
            DecodeError::new(
                "context.type",
                format!("cannot parse event type {}", clip(name)),
            )
        })?;
        event.event_type = Some(parsed);
    }
    for raw in members.all("timestamp") {
        if !time::takes(raw) {
            return Err(DecodeError::new(
                "context.timestamp",
                "not an RFC 3339 time as Go reads it (YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM))",
            ));
        }
        if let Some(inner) = raw
            .get()
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
        {
            event.timestamp = inner.to_owned();
        }
    }
    for raw in members.all("links") {
        event.links = decode_links(raw)?;
    }
    Ok(())
}

/// `EmbeddedLinksArray.UnmarshalJSON`.
fn decode_links(raw: &RawValue) -> Result<Vec<Link>, DecodeError> {
    const FIELD: &str = "context.links";
    let elements: Vec<&RawValue> = match Kind::of(raw) {
        Kind::Null => return Ok(Vec::new()),
        Kind::Array => {
            serde_json::from_str(raw.get()).map_err(|e| DecodeError::new(FIELD, e.to_string()))?
        }
        other => return Err(DecodeError::mismatch(FIELD, other, "[]*json.RawMessage")),
    };
    // The SDK reads each element's linkType into one value, kept from one
    // element to the next.
    let mut carried = String::new();
    let mut links = Vec::with_capacity(elements.len());
    for (index, element) in elements.into_iter().enumerate() {
        let at = |reason: String| DecodeError::new(FIELD, format!("element {index}: {reason}"));
        let members = match Kind::of(element) {
            Kind::Object => Members::of(element).map_err(|e| at(e.to_string()))?,
            // A null element makes the SDK dereference a nil pointer.
            other => return Err(at(format!("cannot unmarshal {} into a link", other.name()))),
        };
        json::string_field(&members, FIELD, "linkType", &mut carried)?;
        let link_type = match carried.as_str() {
            "END" => LinkType::End,
            "PATH" => LinkType::Path,
            "RELATION" => LinkType::Relation,
            other => return Err(at(format!("unsupported link type {}", clip(other)))),
        };
        let reference = if link_type == LinkType::Relation {
            "target"
        } else {
            "from"
        };
        let mut link = Link {
            link_type,
            context_id: String::new(),
            link_kind: String::new(),
            tags: false,
        };
        json::struct_field(&members, FIELD, reference, |inner, parent| {
            json::string_field(inner, parent, "contextId", &mut link.context_id)
        })?;
        if link_type == LinkType::Relation {
            json::string_field(&members, FIELD, "linkKind", &mut link.link_kind)?;
        }
        for tags in members.all("tags") {
            link.tags = match Kind::of(tags) {
                Kind::Null => false,
                Kind::Object => true,
                other => return Err(at(format!("cannot unmarshal {} into tags", other.name()))),
            };
        }
        links.push(link);
    }
    Ok(links)
}

fn decode_subject(members: &Members<'_>, event: &mut Decoded) -> Result<(), DecodeError> {
    json::string_field(members, "subject", "id", &mut event.subject_id)?;
    json::string_field(members, "subject", "source", &mut event.subject_source)?;
    json::string_field(members, "subject", "type", &mut event.subject_type)?;
    let fields = match (&event.event_type, &mut event.content) {
        (
            Some(TypeName {
                tool: None,
                subject,
                predicate,
                ..
            }),
            Content::Fields(values),
        ) => {
            let Some(known) = v04::lookup(subject, predicate) else {
                return Ok(());
            };
            Some((known.content, values))
        }
        _ => None,
    };
    match fields {
        Some((fields, values)) => {
            for raw in members.all("content") {
                json::decode_struct(raw, "subject.content", |content| {
                    decode_fields(content, "subject.content", fields, values)
                })?;
            }
        }
        None => {
            for raw in members.all("content") {
                event.content = Content::Any(Some(Kind::of(raw)).filter(|k| *k != Kind::Null));
            }
        }
    }
    Ok(())
}

fn empty_value(field: &Field) -> Value {
    match field {
        Field::Text { .. } => Value::Text(String::new()),
        Field::Texts(_) => Value::Texts(Vec::new()),
        Field::Reference { .. } => Value::Reference(None),
        Field::Object { .. } => Value::Object(None),
    }
}

fn decode_fields(
    members: &Members<'_>,
    parent: &str,
    fields: &[Field],
    values: &mut [Value],
) -> Result<(), DecodeError> {
    for (field, value) in fields.iter().zip(values.iter_mut()) {
        let name = field.name();
        let at = json::path(parent, name);
        match (field, value) {
            (Field::Text { .. }, Value::Text(text)) => {
                json::string_field(members, parent, name, text)?;
            }
            (Field::Texts(_), Value::Texts(texts)) => {
                json::strings_field(members, parent, name, texts)?;
            }
            (Field::Reference { .. }, Value::Reference(reference)) => {
                for raw in members.all(name) {
                    pointer(raw, &at, reference, |inner, target| {
                        json::string_field(inner, &at, "id", &mut target.id)?;
                        json::string_field(inner, &at, "source", &mut target.source)
                    })?;
                }
            }
            (Field::Object { fields, .. }, Value::Object(object)) => {
                for raw in members.all(name) {
                    let mut decoded = object.take();
                    let result = pointer_with(
                        raw,
                        &at,
                        &mut decoded,
                        || fields.iter().map(empty_value).collect(),
                        |inner, target| decode_fields(inner, &at, fields, target),
                    );
                    *object = decoded;
                    result?;
                }
            }
            _ => {
                return Err(DecodeError::new(
                    &at,
                    "internal: value does not fit its field",
                ));
            }
        }
    }
    Ok(())
}

/// Go's decoding into a pointer to a struct: `null` sets it to nil, an
/// object is decoded into it (allocated if nil).
fn pointer<T: Default>(
    raw: &RawValue,
    field: &str,
    target: &mut Option<T>,
    visit: impl FnOnce(&Members<'_>, &mut T) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    pointer_with(raw, field, target, T::default, visit)
}

fn pointer_with<T>(
    raw: &RawValue,
    field: &str,
    target: &mut Option<T>,
    new: impl FnOnce() -> T,
    visit: impl FnOnce(&Members<'_>, &mut T) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    match Kind::of(raw) {
        Kind::Null => {
            *target = None;
            Ok(())
        }
        Kind::Object => {
            let members = Members::of(raw).map_err(|e| DecodeError::new(field, e.to_string()))?;
            visit(&members, target.get_or_insert_with(new))
        }
        other => Err(DecodeError::mismatch(field, other, "struct")),
    }
}

/// What the SDK's `validate` tags and the type's JSON schema require.
fn validate(event: Decoded) -> Result<CdEvent, ParseError> {
    let invalid = |field: &'static str, reason: String| ParseError::InvalidField { field, reason };
    let Some(event_type) = &event.event_type else {
        return Err(ParseError::MissingField {
            field: "context.type",
        });
    };
    let known = match &event_type.tool {
        Some(_) => None,
        None => Some(
            v04::lookup(&event_type.subject, &event_type.predicate).ok_or_else(|| {
                invalid(
                    "context.type",
                    format!("unknown event type {}", clip(&event_type.to_string())),
                )
            })?,
        ),
    };
    // `validate` tags.
    if !url::parses(&event.source) {
        return Err(invalid("context.source", "not a URI reference".to_owned()));
    }
    if !url::parses(&event.subject_source) {
        return Err(invalid("subject.source", "not a URI reference".to_owned()));
    }
    if let (Some(known), Content::Fields(values)) = (known, &event.content) {
        check_tags(known.content, values)?;
    }
    // The schema, on the event as the SDK marshals it.
    match known {
        Some(known) => check_known_type(known, event_type, &event)?,
        None => check_custom_type(event_type, &event)?,
    }
    for (field, value) in [
        ("context.version", &event.version),
        ("context.id", &event.id),
        ("context.source", &event.source),
        ("subject.id", &event.subject_id),
    ] {
        if value.is_empty() {
            return Err(ParseError::MissingField { field });
        }
    }
    for (index, link) in event.links.iter().enumerate() {
        let problem = if link.context_id.is_empty() {
            Some(if link.link_type == LinkType::Relation {
                "has no target.contextId"
            } else {
                "has no from.contextId"
            })
        } else if link.link_type == LinkType::Relation && link.link_kind.is_empty() {
            Some("has no linkKind")
        } else if !link.tags {
            Some("has no tags object")
        } else {
            None
        };
        if let Some(problem) = problem {
            return Err(invalid(
                "context.links",
                format!("element {index} ({:?}) {problem}", link.link_type),
            ));
        }
    }
    if event
        .custom_data
        .is_some_and(|kind| !matches!(kind, Kind::Object | Kind::String))
    {
        return Err(invalid(
            "customData",
            "neither an object nor a string".to_owned(),
        ));
    }
    if !event.schema_uri.is_empty() {
        return Err(invalid(
            "context.schemaUri",
            "no custom schema is loaded, so the SDK cannot find one".to_owned(),
        ));
    }
    Ok(CdEvent {
        event_type: event_type.to_string(),
        spec_version: event.version,
        id: event.id,
        source: event.source,
        timestamp: event.timestamp,
        subject_id: event.subject_id,
        subject_source: Some(event.subject_source).filter(|s| !s.is_empty()),
        subject_type: event.subject_type,
    })
}

fn check_known_type(
    known: &EventType,
    event_type: &TypeName,
    event: &Decoded,
) -> Result<(), ParseError> {
    if event_type.version != known.version {
        return Err(ParseError::InvalidField {
            field: "context.type",
            reason: format!(
                "is version {} of {}.{}; the CDEvents 0.4 SDK takes {}",
                clip(&event_type.version),
                known.subject,
                known.predicate,
                known.version
            ),
        });
    }
    if event.subject_type != known.subject_type {
        return Err(ParseError::InvalidField {
            field: "subject.type",
            reason: format!("must be {:?} for {event_type}", known.subject_type),
        });
    }
    match &event.content {
        Content::Fields(values) => check_content("subject.content", known.content, values),
        Content::Any(_) | Content::Unknown => Ok(()),
    }
}

fn check_custom_type(event_type: &TypeName, event: &Decoded) -> Result<(), ParseError> {
    let version = event_type.version.as_bytes();
    let one_digit_semver = matches!(
        version,
        [a, b'.', b, b'.', c] if a.is_ascii_digit() && b.is_ascii_digit() && c.is_ascii_digit()
    );
    if !one_digit_semver {
        return Err(ParseError::InvalidField {
            field: "context.type",
            reason: "a custom type's version must be <digit>.<digit>.<digit>".to_owned(),
        });
    }
    let subject_type_ok = event.subject_type.split_once('-').is_some_and(|(a, b)| {
        !a.is_empty()
            && a.bytes().all(|c| c.is_ascii_alphanumeric())
            && !b.is_empty()
            && b.bytes().all(|c| c.is_ascii_alphabetic())
    });
    if !subject_type_ok {
        return Err(ParseError::InvalidField {
            field: "subject.type",
            reason: "a custom type's subject type must be <tool>-<subject>".to_owned(),
        });
    }
    match event.content {
        Content::Any(Some(Kind::Object)) => Ok(()),
        _ => Err(ParseError::InvalidField {
            field: "subject.content",
            reason: "must be an object".to_owned(),
        }),
    }
}

/// The `validate:"purl"` and `uri-reference` tags inside the content.
fn check_tags(fields: &[Field], values: &[Value]) -> Result<(), ParseError> {
    for (field, value) in fields.iter().zip(values) {
        match (field, value) {
            (Field::Text { purl: true, .. }, Value::Text(text)) if !purl::is_valid(text) => {
                return Err(ParseError::Decode {
                    field: format!("subject.content.{}", field.name()),
                    reason: "not a package URL (pkg:<type>/<name>...)".to_owned(),
                });
            }
            (Field::Reference { .. }, Value::Reference(Some(reference)))
                if !url::parses(&reference.source) =>
            {
                return Err(ParseError::Decode {
                    field: format!("subject.content.{}.source", field.name()),
                    reason: "not a URI reference".to_owned(),
                });
            }
            (Field::Object { fields, .. }, Value::Object(Some(values))) => {
                check_tags(fields, values)?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// The content's part of the JSON schema.
fn check_content(parent: &str, fields: &[Field], values: &[Value]) -> Result<(), ParseError> {
    let problem = |field: &Field, reason: String| ParseError::Decode {
        field: format!("{parent}.{}", field.name()),
        reason,
    };
    for (field, value) in fields.iter().zip(values) {
        match (field, value) {
            (
                Field::Text {
                    required,
                    non_empty,
                    one_of,
                    ..
                },
                Value::Text(text),
            ) => {
                // An optional empty string is left out when marshalled.
                if !required && text.is_empty() {
                    continue;
                }
                if *non_empty && text.is_empty() {
                    return Err(problem(field, "is missing".to_owned()));
                }
                if !one_of.is_empty() && !one_of.contains(&text.as_str()) {
                    return Err(problem(field, format!("must be one of {one_of:?}")));
                }
            }
            (Field::Reference { required, .. }, Value::Reference(reference)) => match reference {
                None if *required => return Err(problem(field, "is missing".to_owned())),
                Some(reference) if reference.id.is_empty() => {
                    return Err(problem(field, "has no id".to_owned()));
                }
                _ => {}
            },
            (
                Field::Object {
                    required, fields, ..
                },
                Value::Object(object),
            ) => match object {
                None if *required => return Err(problem(field, "is missing".to_owned())),
                Some(values) => {
                    check_content(&format!("{parent}.{}", field.name()), fields, values)?;
                }
                None => {}
            },
            _ => {}
        }
    }
    Ok(())
}

/// At most 100 characters of what the sender wrote, for a message.
fn clip(text: &str) -> String {
    const MAX_CHARS: usize = 100;
    match text.char_indices().nth(MAX_CHARS) {
        Some((end, _)) => format!("{:?}...", &text[..end]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use serde_json::{Value, json};

    /// The CDEvents 0.4.1 spec's example of `change.merged`, as the SDK's
    /// 0.4 types read it (`context.version`).
    fn merged() -> Value {
        json!({
            "context": {
                "version": "0.4.1",
                "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
                "source": "/event/source/123",
                "type": "dev.cdevents.change.merged.0.2.0",
                "timestamp": "2023-03-20T14:27:05.315384Z"
            },
            "subject": {
                "id": "mySubject123",
                "source": "/event/source/123",
                "type": "change",
                "content": {"repository": {"id": "cdevents/service", "source": "https://github.com"}}
            }
        })
    }

    fn check(event: &Value) -> Result<Parsed, ParseError> {
        parse(event.to_string().as_bytes())
    }

    fn with(mut event: Value, pointer: &str, value: Value) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        let container = if parent.is_empty() {
            &mut event
        } else {
            event.pointer_mut(parent).unwrap()
        };
        match value {
            Value::Null if key.starts_with('-') => {
                container.as_object_mut().unwrap().remove(&key[1..]);
            }
            value => {
                container[key] = value;
            }
        }
        event
    }

    fn without(event: Value, pointer: &str) -> Value {
        let (parent, key) = pointer.rsplit_once('/').unwrap();
        with(event, &format!("{parent}/-{key}"), Value::Null)
    }

    #[test]
    fn a_valid_event_gives_its_facts() {
        let parsed = check(&merged()).unwrap();
        assert_eq!(
            parsed.event_type.as_deref(),
            Some("dev.cdevents.change.merged.0.2.0")
        );
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("271069a8-fc18-44f1-b38f-9d70a1695819")
        );
        let Event::CdEvent(event) = parsed.event else {
            panic!("not a CDEvent")
        };
        assert_eq!(event.spec_version, "0.4.1");
        assert_eq!(event.subject_id, "mySubject123");
        assert_eq!(event.subject_type, "change");
        assert_eq!(event.subject_source.as_deref(), Some("/event/source/123"));
    }

    /// What the SDK's decoding, `validate` tags and 0.4.1 schema take that
    /// a reading of the spec alone would not, and the reverse.
    #[test]
    fn the_sdk_decides() {
        let accepted = [
            // No timestamp: Go's zero time is marshalled back, and formats are
            // not asserted.
            without(merged(), "/context/timestamp"),
            with(merged(), "/context/timestamp", Value::Null),
            // The content is no required object: Go marshals an empty struct.
            without(merged(), "/subject/content"),
            without(merged(), "/subject/source"),
            // Keys match the SDK's fields case-insensitively, as Go's do.
            json!({"Context": merged()["context"], "SUBJECT": merged()["subject"]}),
            // Fields the SDK does not declare are dropped.
            with(merged(), "/context/extra", json!([1, {"x": 2}])),
            with(merged(), "/customData", json!({"any": "thing"})),
            with(merged(), "/customData", json!("YmFzZTY0")),
            with(merged(), "/customData", Value::Null),
            with(
                merged(),
                "/context/links",
                json!([{"linkType": "PATH", "from": {"contextId": "a"}, "tags": {}}]),
            ),
            // The SDK carries one element's linkType to the next.
            with(
                merged(),
                "/context/links",
                json!([{"linkType": "END", "from": {"contextId": "a"}, "tags": {}},
                       {"from": {"contextId": "b"}, "tags": {"k": "v"}}]),
            ),
            with(
                merged(),
                "/context/links",
                json!([{"linkType": "RELATION", "linkKind": "TRIGGER",
                        "target": {"contextId": "a"}, "tags": {}}]),
            ),
            with(merged(), "/context/links", Value::Null),
        ];
        for event in accepted {
            assert!(check(&event).is_ok(), "{event}: {:?}", check(&event));
        }
        let refused = [
            // CDEvents 0.5's name for the version: the 0.4 SDK does not read it.
            json!({
                "context": {
                    "specversion": "0.4.1",
                    "id": "1", "source": "/s", "type": "dev.cdevents.change.merged.0.2.0"
                },
                "subject": merged()["subject"]
            }),
            without(merged(), "/context/version"),
            with(merged(), "/context/id", json!("")),
            without(merged(), "/context/source"),
            without(merged(), "/subject/id"),
            without(merged(), "/subject/type"),
            with(merged(), "/subject/type", json!("Change")),
            without(merged(), "/context/type"),
            without(merged(), "/context"),
            with(
                merged(),
                "/context/type",
                json!("dev.cdevents.change.merged.0.1.2"),
            ),
            with(
                merged(),
                "/context/type",
                json!("dev.cdevents.change.merged.0.2"),
            ),
            with(
                merged(),
                "/context/type",
                json!("dev.cdevents.change.closed.0.2.0"),
            ),
            with(
                merged(),
                "/context/type",
                json!("dev.cdevents.Change.merged.0.2.0"),
            ),
            with(merged(), "/context/type", json!("change.merged")),
            with(merged(), "/context/type", json!(7)),
            with(
                merged(),
                "/context/timestamp",
                json!("2023-03-20t14:27:05Z"),
            ),
            with(
                merged(),
                "/context/timestamp",
                json!("2016-12-31T23:59:60Z"),
            ),
            with(merged(), "/context/timestamp", json!(1_679_322_425)),
            with(merged(), "/context/id", json!(1)),
            with(merged(), "/context/source", json!("cache_object:foo/bar")),
            with(merged(), "/subject/source", json!("/a\u{1}b")),
            with(merged(), "/subject", json!("change")),
            with(merged(), "/subject/content", json!([])),
            with(
                merged(),
                "/subject/content/repository",
                json!({"source": "x"}),
            ),
            with(
                merged(),
                "/subject/content/repository",
                json!("cdevents/service"),
            ),
            with(merged(), "/subject/content/repository/id", json!(5)),
            with(merged(), "/customData", json!(5)),
            with(merged(), "/customData", json!([])),
            with(merged(), "/customDataContentType", json!(1)),
            with(
                merged(),
                "/context/schemaUri",
                json!("https://example.com/schema"),
            ),
            with(merged(), "/context/links", json!({})),
            with(merged(), "/context/links", json!([null])),
            with(merged(), "/context/links", json!([{"linkType": "START"}])),
            with(
                merged(),
                "/context/links",
                json!([{"linkType": "PATH", "from": {"contextId": "a"}}]),
            ),
            with(
                merged(),
                "/context/links",
                json!([{"linkType": "PATH", "from": {"contextId": ""}, "tags": {}}]),
            ),
            with(
                merged(),
                "/context/links",
                json!([{"linkType": "RELATION", "target": {"contextId": "a"}, "tags": {}}]),
            ),
            json!(null),
            json!([merged()]),
        ];
        for event in refused {
            assert!(check(&event).is_err(), "{event}");
        }
        assert!(parse(b"").is_err());
        assert!(parse(format!("{} {{}}", merged()).as_bytes()).is_err());
    }

    /// A type's required content, and the `purl` tag that the SDK checks
    /// even on an empty `artifactId`.
    #[test]
    fn content_follows_each_types_schema() {
        let event = |type_: &str, subject_type: &str, content: Value| {
            let mut event = merged();
            event["context"]["type"] = json!(type_);
            event["subject"]["type"] = json!(subject_type);
            event["subject"]["content"] = content;
            event
        };
        let deployed = "dev.cdevents.service.deployed.0.2.0";
        let environment = json!({"id": "production", "source": "/environments"});
        assert!(
            check(&event(
                deployed,
                "service",
                json!({"environment": environment, "artifactId": "pkg:oci/myapp@sha256%3A0b4c5d6e"})
            ))
            .is_ok()
        );
        for content in [
            json!({"artifactId": "pkg:oci/myapp@sha256%3A0b4c5d6e"}),
            json!({"environment": null, "artifactId": "pkg:oci/myapp@v1"}),
            json!({"environment": environment}),
            json!({"environment": environment, "artifactId": "myapp:v1"}),
        ] {
            assert!(
                check(&event(deployed, "service", content.clone())).is_err(),
                "{content}"
            );
        }
        let build = "dev.cdevents.build.finished.0.2.0";
        assert!(
            check(&event(
                build,
                "build",
                json!({"artifactId": "pkg:oci/app@v1"})
            ))
            .is_ok()
        );
        assert!(check(&event(build, "build", json!({}))).is_err());

        let run = "dev.cdevents.testcaserun.finished.0.2.0";
        let outcome = |outcome: &str| {
            json!({"outcome": outcome, "environment": environment, "severity": "",
                   "testCase": {"id": "t1", "type": "unit"}})
        };
        assert!(check(&event(run, "testCaseRun", outcome("pass"))).is_ok());
        assert!(check(&event(run, "testCaseRun", outcome("passed"))).is_err());
        let mut bad_case = outcome("fail");
        bad_case["testCase"] = json!({"type": "unit"});
        assert!(check(&event(run, "testCaseRun", bad_case)).is_err());

        let queued = "dev.cdevents.pipelinerun.queued.0.2.0";
        assert!(
            check(&event(
                queued,
                "pipelineRun",
                json!({"pipelineName": "p", "url": 1})
            ))
            .is_err()
        );
        assert!(check(&event(queued, "pipelineRun", json!({"pipelineName": "p"}))).is_ok());

        let ticket = "dev.cdevents.ticket.closed.0.1.0";
        let closed = json!({"uri": "https://tickets/1", "resolution": "duplicate",
                            "assignees": ["a", null], "priority": "whatever"});
        assert!(check(&event(ticket, "ticket", closed.clone())).is_ok());
        let mut unresolved = closed;
        unresolved["resolution"] = json!("");
        assert!(check(&event(ticket, "ticket", unresolved)).is_err());
    }

    #[test]
    fn custom_types_follow_the_custom_schema() {
        let custom = |type_: &str, subject_type: &str, content: Value| {
            let mut event = merged();
            event["context"]["type"] = json!(type_);
            event["subject"]["type"] = json!(subject_type);
            event["subject"]["content"] = content;
            event
        };
        let quota = "dev.cdeventsx.mytool-quota.exceeded.0.1.0";
        let parsed = check(&custom(quota, "mytool-quota", json!({"user": "x"}))).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some(quota));
        for (type_, subject_type, content) in [
            (quota, "mytool-quota", json!(null)),
            (quota, "mytool-quota", json!("x")),
            (quota, "quota", json!({})),
            (
                "dev.cdeventsx.mytool-quota.exceeded.0.10.0",
                "mytool-quota",
                json!({}),
            ),
            (
                "dev.cdeventsx.my-tool-quota.exceeded.0.1.0",
                "my-tool-quota",
                json!({}),
            ),
            (
                "dev.cdeventsx.MyTool-quota.exceeded.0.1.0",
                "MyTool-quota",
                json!({}),
            ),
        ] {
            assert!(
                check(&custom(type_, subject_type, content.clone())).is_err(),
                "{type_} {subject_type} {content}"
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let error = check(&without(merged(), "/subject/id")).unwrap_err();
        assert_eq!(error.to_string(), "field subject.id is missing");
        let error = check(&with(
            merged(),
            "/context/type",
            json!("dev.cdevents.change.merged.9.9.9"),
        ))
        .unwrap_err();
        assert!(
            error
                .to_string()
                .starts_with("field context.type is invalid"),
            "{error}"
        );
    }
}
