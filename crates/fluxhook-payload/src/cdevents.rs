//! CDEvents 0.4: a context and a subject, sent as a CloudEvent over HTTP.
//!
//! In CloudEvents' binary mode the body is the CDEvent and `ce-type`,
//! `ce-id`... headers carry the CloudEvent attributes; in structured mode
//! (`Content-Type: application/cloudevents+json`) the body is the CloudEvent
//! and the CDEvent is its `data`. Either way the CloudEvent type must equal
//! the CDEvent's `context.type`.

use http::HeaderMap;
use serde::Deserialize;
use serde_json::value::RawValue;

use crate::read::{Text, header, non_empty, object};
use crate::{Event, ParseError, Parsed, Provider};

/// A CDEvent whose required context and subject fields were checked against
/// CDEvents 0.4 (the type is also [`Webhook::event_type`](crate::Webhook::event_type)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CdEvent {
    /// `context.specversion`: the CDEvents version, e.g. `0.4.1`.
    pub spec_version: String,
    /// `context.id`: unique within `source`.
    pub id: String,
    /// `context.source`: a URI-reference naming the producer.
    pub source: String,
    /// `context.type`: `dev.cdevents.<subject>.<predicate>.<version>`, e.g.
    /// `dev.cdevents.pipelinerun.finished.0.2.0` (custom events:
    /// `dev.cdeventsx.<tool>-<subject>.<predicate>.<version>`).
    pub event_type: String,
    /// `context.timestamp`: RFC 3339.
    pub timestamp: String,
    /// `subject.id`.
    pub subject_id: String,
    /// `subject.source`, when it differs from the context's.
    pub subject_source: Option<String>,
}

#[derive(Deserialize)]
struct CloudEventBody<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct CdEventBody<'a> {
    #[serde(borrow)]
    context: Option<ContextBody<'a>>,
    #[serde(borrow)]
    subject: Option<SubjectBody<'a>>,
}

#[derive(Deserialize)]
struct ContextBody<'a> {
    #[serde(borrow)]
    specversion: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    source: Option<Text<'a>>,
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    timestamp: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct SubjectBody<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    source: Option<Text<'a>>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
}

/// Parses a CDEvent delivered in CloudEvents binary or structured mode.
pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ParseError> {
    let structured = header(headers, "Content-Type")?
        .is_some_and(|t| t.trim_start().starts_with("application/cloudevents+json"));
    let (cloud_event_type, cd_event) = if structured {
        let cloud_event: CloudEventBody<'_> = object(Provider::CdEvents, "body", body)?;
        let data = cloud_event
            .data
            .ok_or(ParseError::MissingField { field: "data" })?;
        let cd_event = object(Provider::CdEvents, "data", data.get().as_bytes())?;
        (non_empty(cloud_event.kind), cd_event)
    } else {
        let ce_type = header(headers, "ce-type")?.map(str::to_owned);
        (ce_type, object(Provider::CdEvents, "body", body)?)
    };
    let event = validate(cd_event)?;
    if let Some(cloud_event_type) = cloud_event_type
        && cloud_event_type != event.event_type
    {
        return Err(ParseError::InvalidField {
            field: "context.type",
            reason: format!("differs from the CloudEvent type {cloud_event_type:?}"),
        });
    }
    Ok(Parsed {
        event_type: Some(event.event_type.clone()),
        delivery_id: Some(event.id.clone()),
        event: Event::CdEvent(event),
    })
}

fn validate(body: CdEventBody<'_>) -> Result<CdEvent, ParseError> {
    let context = body
        .context
        .ok_or(ParseError::MissingField { field: "context" })?;
    let subject = body
        .subject
        .ok_or(ParseError::MissingField { field: "subject" })?;
    let field = |text, field| non_empty(text).ok_or(ParseError::MissingField { field });

    let event_type = field(context.kind, "context.type")?;
    check_type(&event_type).map_err(|reason| ParseError::InvalidField {
        field: "context.type",
        reason: reason.to_owned(),
    })?;
    let timestamp = field(context.timestamp, "context.timestamp")?;
    if !is_rfc3339(&timestamp) {
        return Err(ParseError::InvalidField {
            field: "context.timestamp",
            reason: "not an RFC 3339 date-time".to_owned(),
        });
    }
    let source = field(context.source, "context.source")?;
    if !is_uri_reference_text(&source) {
        return Err(ParseError::InvalidField {
            field: "context.source",
            reason: "not a URI-reference (has spaces or control characters)".to_owned(),
        });
    }
    let content = subject.content.ok_or(ParseError::MissingField {
        field: "subject.content",
    })?;
    if !content.get().starts_with('{') {
        return Err(ParseError::InvalidField {
            field: "subject.content",
            reason: "not an object".to_owned(),
        });
    }
    Ok(CdEvent {
        spec_version: field(context.specversion, "context.specversion")?,
        id: field(context.id, "context.id")?,
        source,
        event_type,
        timestamp,
        subject_id: field(subject.id, "subject.id")?,
        subject_source: non_empty(subject.source),
    })
}

/// Checks `dev.cdevents.<subject>.<predicate>.<major>.<minor>.<patch>[-pre]`
/// (or `dev.cdeventsx.` for custom events).
fn check_type(event_type: &str) -> Result<(), &'static str> {
    let rest = event_type
        .strip_prefix("dev.cdevents.")
        .or_else(|| event_type.strip_prefix("dev.cdeventsx."))
        .ok_or("does not start with dev.cdevents.")?;
    let mut parts = rest.splitn(3, '.');
    let (subject, predicate, version) = (parts.next(), parts.next(), parts.next());
    let word = |s: &str, extra: u8| {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == extra)
    };
    if !subject.is_some_and(|s| word(s, b'-')) {
        return Err("has no <subject> after dev.cdevents.");
    }
    if !predicate.is_some_and(|p| word(p, b'_')) {
        return Err("has no <predicate> after the subject");
    }
    if !version.is_some_and(is_semver) {
        return Err("does not end with a <major>.<minor>.<patch> version");
    }
    Ok(())
}

fn is_semver(version: &str) -> bool {
    let (core, pre) = match version.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (version, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    numbers.len() == 3
        && numbers
            .iter()
            .all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        && pre.is_none_or(|p| {
            !p.is_empty()
                && p.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        })
}

/// RFC 3339 `date-time`: `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)`.
fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| {
        b.get(range)
            .filter(|d| d.iter().all(u8::is_ascii_digit))
            .map(|d| d.iter().fold(0u32, |n, d| n * 10 + u32::from(d - b'0')))
    };
    let in_range =
        |value: Option<u32>, min: u32, max: u32| value.is_some_and(|v| (min..=max).contains(&v));
    let date_time_ok = digits(0..4).is_some()
        && b.get(4) == Some(&b'-')
        && in_range(digits(5..7), 1, 12)
        && b.get(7) == Some(&b'-')
        && in_range(digits(8..10), 1, 31)
        && matches!(b.get(10), Some(b'T' | b't'))
        && in_range(digits(11..13), 0, 23)
        && b.get(13) == Some(&b':')
        && in_range(digits(14..16), 0, 59)
        && b.get(16) == Some(&b':')
        && in_range(digits(17..19), 0, 60);
    if !date_time_ok {
        return false;
    }
    let Some(mut rest) = s.get(19..) else {
        return false;
    };
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return false;
        }
        rest = &fraction[len..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|d| d.is_ascii_digit())
                && (h1 - b'0') * 10 + (h2 - b'0') <= 23
                && (m1 - b'0') * 10 + (m2 - b'0') <= 59
        }
        _ => false,
    }
}

/// A URI-reference has no whitespace or control characters; anything finer
/// is left to whoever resolves it.
fn is_uri_reference_text(s: &str) -> bool {
    !s.chars().any(|c| c.is_whitespace() || c.is_control())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    const PIPELINE_RUN_QUEUED: &str = r#"{
      "context": {"specversion": "0.4.1", "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/event/source/123", "type": "dev.cdevents.pipelinerun.queued.0.2.0",
        "timestamp": "2023-03-20T14:27:05.315384Z"},
      "subject": {"id": "mySubject123", "source": "/event/source/123",
        "content": {"pipelineName": "myPipeline", "uri": "https://www.example.com/mySubject123"}}
    }"#;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, http::HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn binary_mode() {
        let parsed = parse(
            &headers(&[
                ("ce-type", "dev.cdevents.pipelinerun.queued.0.2.0"),
                ("ce-specversion", "1.0"),
            ]),
            PIPELINE_RUN_QUEUED.as_bytes(),
        )
        .unwrap();
        assert_eq!(
            parsed.event_type.as_deref(),
            Some("dev.cdevents.pipelinerun.queued.0.2.0")
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
        assert_eq!(event.subject_source.as_deref(), Some("/event/source/123"));
    }

    #[test]
    fn structured_mode() {
        let body = format!(
            r#"{{"specversion": "1.0", "id": "271069a8", "source": "/event/source/123",
               "type": "dev.cdevents.pipelinerun.queued.0.2.0", "data": {PIPELINE_RUN_QUEUED}}}"#
        );
        let parsed = parse(
            &headers(&[(
                "Content-Type",
                "application/cloudevents+json; charset=utf-8",
            )]),
            body.as_bytes(),
        )
        .unwrap();
        assert!(matches!(parsed.event, Event::CdEvent(_)));
    }

    #[test]
    fn cloud_event_type_must_match() {
        let err = parse(
            &headers(&[("ce-type", "dev.cdevents.pipelinerun.started.0.2.0")]),
            PIPELINE_RUN_QUEUED.as_bytes(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::InvalidField {
                    field: "context.type",
                    ..
                }
            ),
            "{err}"
        );
    }

    #[test]
    fn required_fields_are_named() {
        let fixture: serde_json::Value = serde_json::from_str(PIPELINE_RUN_QUEUED).unwrap();
        for (pointer, field) in [
            ("/context", "context"),
            ("/subject", "subject"),
            ("/context/specversion", "context.specversion"),
            ("/context/id", "context.id"),
            ("/context/source", "context.source"),
            ("/context/type", "context.type"),
            ("/context/timestamp", "context.timestamp"),
            ("/subject/id", "subject.id"),
            ("/subject/content", "subject.content"),
        ] {
            let (parent, key) = pointer.rsplit_once('/').unwrap();
            let mut body = fixture.clone();
            let container = if parent.is_empty() {
                &mut body
            } else {
                body.pointer_mut(parent).unwrap()
            };
            container.as_object_mut().unwrap().remove(key);
            let err = parse(&HeaderMap::new(), body.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(err, ParseError::MissingField { field: f } if f == field),
                "{pointer}: {err}"
            );
        }
    }

    #[test]
    fn invalid_fields_are_named() {
        let fixture: serde_json::Value = serde_json::from_str(PIPELINE_RUN_QUEUED).unwrap();
        for (pointer, value, field) in [
            ("/context/type", "pipelinerun.queued", "context.type"),
            ("/context/timestamp", "yesterday", "context.timestamp"),
            ("/context/source", "not a uri", "context.source"),
            ("/subject/content", "text", "subject.content"),
        ] {
            let mut body = fixture.clone();
            *body.pointer_mut(pointer).unwrap() = value.into();
            let err = parse(&HeaderMap::new(), body.to_string().as_bytes()).unwrap_err();
            assert!(
                matches!(err, ParseError::InvalidField { field: f, .. } if f == field),
                "{pointer}: {err}"
            );
        }
    }

    #[test]
    fn types_follow_the_spec() {
        for ok in [
            "dev.cdevents.pipelinerun.queued.0.2.0",
            "dev.cdevents.testcaserun.finished.0.1.0-draft",
            "dev.cdeventsx.mytool-quota.exceeded.0.1.0",
        ] {
            assert_eq!(check_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "com.example.pipelinerun.queued.0.2.0",
            "dev.cdevents.pipelinerun.queued",
            "dev.cdevents.pipelinerun.queued.0.2",
            "dev.cdevents..queued.0.2.0",
            "dev.cdevents.pipelinerun.queued.0.2.x",
            "dev.cdevents.pipelinerun.queued.0.2.0-",
        ] {
            assert!(check_type(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn timestamps_are_rfc3339() {
        for ok in [
            "2023-03-20T14:27:05Z",
            "2023-03-20T14:27:05.315384Z",
            "2023-03-20t14:27:05+02:00",
            "2016-12-31T23:59:60-08:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2023-03-20",
            "2023-03-20T14:27:05",
            "2023-13-20T14:27:05Z",
            "2023-03-20 14:27:05Z",
            "2023-03-20T14:27:05.Z",
            "2023-03-20T14:27:05+0200",
            "2023-03-20T14:27:05ZZ",
            "２０２３-03-20T14:27:05Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }
}
