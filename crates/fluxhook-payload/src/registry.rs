//! Container and artifact registries: the fields Flux logs or filters on.

use std::collections::BTreeMap;

use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;

use crate::go::json::{self, DecodeError, Kind, Members};
use crate::go::{base64, time};
use crate::read::{Text, first_header, non_empty, object};
use crate::{Event, ParseError, Parsed, Sender};

/// A Harbor event (`PUSH_ARTIFACT`, `DELETE_ARTIFACT`, `SCANNING_COMPLETED`, ...;
/// the type is [`Webhook::event_type`](crate::Webhook::event_type)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborEvent {
    /// `event_data.repository.repo_full_name`, e.g. `library/alpine`.
    pub repository: Option<String>,
    /// `event_data.resources`: the artifacts concerned.
    pub resources: Vec<HarborResource>,
}

/// One artifact of a Harbor event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HarborResource {
    /// Where the artifact can be pulled from, e.g. `harbor.example/library/alpine:3.19`.
    pub resource_url: Option<String>,
    /// The tag, if the artifact was pushed or deleted by tag.
    pub tag: Option<String>,
    /// The manifest digest.
    pub digest: Option<String>,
}

/// A Docker Hub push. Flux reads `push_data.tag` and `repository.repo_url`
/// (empty when missing); the rest is read when it has the usual shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHubEvent {
    /// `push_data.tag`: the tag pushed.
    pub tag: String,
    /// `repository.repo_url`: the repository's page.
    pub repo_url: String,
    /// `repository.repo_name`, e.g. `svendowideit/testhook`.
    pub repo_name: Option<String>,
    /// `callback_url`: where Docker Hub expects the validation callback.
    pub callback_url: Option<String>,
}

/// A Quay repository push notification. Flux reads `docker_url` and
/// `updated_tags` (empty when missing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuayEvent {
    /// `docker_url`: the pull location, e.g. `quay.io/mynamespace/repository`.
    pub docker_url: String,
    /// `updated_tags`: the tags pushed.
    pub updated_tags: Vec<String>,
    /// `repository`: `namespace/name`.
    pub repository: Option<String>,
    /// `namespace`.
    pub namespace: Option<String>,
    /// `name`.
    pub name: Option<String>,
}

/// A Nexus Repository webhook (the kind, e.g. `rm:repository:component`, is
/// [`Webhook::event_type`](crate::Webhook::event_type), from
/// `X-Nexus-Webhook-Id`). Flux reads `action` and `repositoryName`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexusEvent {
    /// `action`: `CREATED`, `UPDATED` or `DELETED` (empty for audit events).
    pub action: String,
    /// `repositoryName` (empty for repository and audit events).
    pub repository_name: String,
    /// `component`, for component events.
    pub component: Option<NexusComponent>,
    /// `asset`, for asset events.
    pub asset: Option<NexusAsset>,
}

/// The component of a Nexus component event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexusComponent {
    /// `format`, e.g. `docker`, `maven2`, `npm`.
    pub format: Option<String>,
    /// `group` (Maven group id, npm scope...).
    pub group: Option<String>,
    /// `name`.
    pub name: Option<String>,
    /// `version`.
    pub version: Option<String>,
}

/// The asset of a Nexus asset event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexusAsset {
    /// `format`.
    pub format: Option<String>,
    /// `name`: the asset's path in the repository.
    pub name: Option<String>,
}

/// An Azure Container Registry event (`push`, `delete`, `chart_push`, ...:
/// [`Webhook::event_type`](crate::Webhook::event_type) is the `action`).
/// Flux reads `action`, `target.repository` and `target.tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcrEvent {
    /// `action` (empty when missing).
    pub action: String,
    /// `target.repository`, e.g. `hello-world`.
    pub repository: String,
    /// `target.tag`.
    pub tag: String,
    /// `target.digest`.
    pub digest: Option<String>,
    /// `target.mediaType`.
    pub media_type: Option<String>,
    /// `request.host`: the registry, e.g. `myregistry.azurecr.io`.
    pub host: Option<String>,
}

/// A Google Container Registry / Artifact Registry notification, delivered
/// by a Pub/Sub push subscription and unwrapped from its envelope
/// ([`Webhook::event_type`](crate::Webhook::event_type) is the `action`:
/// `INSERT` or `DELETE`). `action`, `digest` and `tag` are what Flux reads
/// of the notification, empty when it lacks them (a push by digest has no
/// tag); [`Webhook::json`](crate::Webhook::json) is the object Flux's CEL
/// filters see as `req`, with all three.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcrEvent {
    /// `action`: `INSERT` or `DELETE`.
    pub action: String,
    /// `digest`: the image by digest, e.g. `gcr.io/project/image@sha256:...`.
    pub digest: String,
    /// `tag`: the image by tag, e.g. `gcr.io/project/image:latest`.
    pub tag: String,
    /// `message.publishTime`.
    pub publish_time: Option<String>,
    /// `message.attributes`.
    pub attributes: BTreeMap<String, String>,
    /// `subscription`: the Pub/Sub subscription that pushed it.
    pub subscription: Option<String>,
    /// `message.data`, base64-decoded as Go decodes it: the registry's
    /// JSON notification.
    pub data: Bytes,
}

// ---- Harbor ----

#[derive(Deserialize)]
struct HarborBody<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
    #[serde(borrow)]
    event_data: Option<HarborData<'a>>,
}

#[derive(Deserialize)]
struct HarborData<'a> {
    #[serde(borrow)]
    resources: Option<Vec<HarborResourceBody<'a>>>,
    #[serde(borrow)]
    repository: Option<HarborRepository<'a>>,
}

#[derive(Deserialize)]
struct HarborResourceBody<'a> {
    #[serde(borrow)]
    resource_url: Option<Text<'a>>,
    #[serde(borrow)]
    tag: Option<Text<'a>>,
    #[serde(borrow)]
    digest: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct HarborRepository<'a> {
    #[serde(borrow)]
    repo_full_name: Option<Text<'a>>,
}

/// Parses a Harbor delivery.
pub(crate) fn parse_harbor(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: HarborBody<'_> = object(Sender::Harbor, "body", body)?;
    let event_type = non_empty(body.kind).ok_or(ParseError::MissingField { field: "type" })?;
    let (resources, repository) = match body.event_data {
        Some(data) => (data.resources, data.repository),
        None => (None, None),
    };
    let resources = resources
        .into_iter()
        .flatten()
        .map(|r| HarborResource {
            resource_url: non_empty(r.resource_url),
            tag: non_empty(r.tag),
            digest: non_empty(r.digest),
        })
        .collect();
    Ok(Parsed {
        event_type: Some(event_type),
        delivery_id: None,
        event: Event::Harbor(HarborEvent {
            repository: repository.and_then(|r| non_empty(r.repo_full_name)),
            resources,
        }),
    })
}

// ---- What Flux decodes (internal/server/receiver_handlers.go, v1.9) ----
//
// Flux decodes these payloads into structs of the few fields it logs, with
// a `json.Decoder` (the first JSON value; what follows is ignored), or
// `json.Unmarshal` for Nexus and the GCR notification. A payload is refused
// exactly when Go's decoding fails: not JSON, or a field Flux declares of
// another JSON type; a missing field is empty. The other fields are read
// for the log when they have the usual shape, never refused.

/// The top-level object Flux decodes; `None` for `null`, which Go decodes
/// into a struct as nothing.
fn flux_object<'a>(
    sender: Sender,
    body: &'a [u8],
    decoder: bool,
) -> Result<Option<Members<'a>>, ParseError> {
    let value = if decoder {
        json::decoder_value(body)
    } else {
        json::unmarshal_value(body)
    }
    .map_err(|e| ParseError::json(sender, "body", e))?;
    match Kind::of(value) {
        Kind::Null => Ok(None),
        Kind::Object => Members::of(value)
            .map(Some)
            .map_err(|e| ParseError::json(sender, "body", e)),
        other => Err(DecodeError::mismatch("body", other, "struct").into()),
    }
}

/// The last member for `name` that is a non-empty string, read leniently.
fn lenient_string(members: &Members<'_>, name: &'static str) -> Option<String> {
    members
        .all(name)
        .filter_map(|raw| serde_json::from_str::<String>(raw.get()).ok())
        .filter(|text| !text.is_empty())
        .last()
}

/// The last member for `name` that is an object, read leniently.
fn lenient_object<'a>(members: &Members<'a>, name: &'static str) -> Option<Members<'a>> {
    members
        .all(name)
        .filter(|raw| Kind::of(raw) == Kind::Object)
        .filter_map(|raw| Members::of(raw).ok())
        .last()
}

/// Parses a Docker Hub delivery (Docker Hub sends pushes only, with no event name).
pub(crate) fn parse_dockerhub(body: &[u8]) -> Result<Parsed, ParseError> {
    let mut event = DockerHubEvent {
        tag: String::new(),
        repo_url: String::new(),
        repo_name: None,
        callback_url: None,
    };
    if let Some(members) = flux_object(Sender::DockerHub, body, true)? {
        json::struct_field(&members, "", "push_data", |push, at| {
            json::string_field(push, at, "tag", &mut event.tag)
        })?;
        json::struct_field(&members, "", "repository", |repository, at| {
            json::string_field(repository, at, "repo_url", &mut event.repo_url)
        })?;
        event.repo_name =
            lenient_object(&members, "repository").and_then(|r| lenient_string(&r, "repo_name"));
        event.callback_url = lenient_string(&members, "callback_url");
    }
    Ok(Parsed {
        event_type: None,
        delivery_id: None,
        event: Event::DockerHub(event),
    })
}

/// Parses a Quay repository push notification (no event name is sent).
pub(crate) fn parse_quay(body: &[u8]) -> Result<Parsed, ParseError> {
    let mut event = QuayEvent {
        docker_url: String::new(),
        updated_tags: Vec::new(),
        repository: None,
        namespace: None,
        name: None,
    };
    if let Some(members) = flux_object(Sender::Quay, body, true)? {
        json::string_field(&members, "", "docker_url", &mut event.docker_url)?;
        json::strings_field(&members, "", "updated_tags", &mut event.updated_tags)?;
        event.repository = lenient_string(&members, "repository");
        event.namespace = lenient_string(&members, "namespace");
        event.name = lenient_string(&members, "name");
    }
    Ok(Parsed {
        event_type: None,
        delivery_id: None,
        event: Event::Quay(event),
    })
}

/// Parses a Nexus Repository delivery (`json.Unmarshal`: one JSON value).
pub(crate) fn parse_nexus(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ParseError> {
    let event_type = first_header(headers, &["X-Nexus-Webhook-Id"])?;
    let delivery_id = first_header(headers, &["X-Nexus-Webhook-Delivery"])?;
    let mut event = NexusEvent {
        action: String::new(),
        repository_name: String::new(),
        component: None,
        asset: None,
    };
    if let Some(members) = flux_object(Sender::Nexus, body, false)? {
        json::string_field(&members, "", "action", &mut event.action)?;
        json::string_field(&members, "", "repositoryName", &mut event.repository_name)?;
        event.component = lenient_object(&members, "component").map(|c| NexusComponent {
            format: lenient_string(&c, "format"),
            group: lenient_string(&c, "group"),
            name: lenient_string(&c, "name"),
            version: lenient_string(&c, "version"),
        });
        event.asset = lenient_object(&members, "asset").map(|a| NexusAsset {
            format: lenient_string(&a, "format"),
            name: lenient_string(&a, "name"),
        });
    }
    Ok(Parsed {
        event_type,
        delivery_id,
        event: Event::Nexus(event),
    })
}

/// Parses an Azure Container Registry delivery.
pub(crate) fn parse_acr(body: &[u8]) -> Result<Parsed, ParseError> {
    let mut event = AcrEvent {
        action: String::new(),
        repository: String::new(),
        tag: String::new(),
        digest: None,
        media_type: None,
        host: None,
    };
    let mut delivery_id = None;
    if let Some(members) = flux_object(Sender::Acr, body, true)? {
        json::string_field(&members, "", "action", &mut event.action)?;
        json::struct_field(&members, "", "target", |target, at| {
            json::string_field(target, at, "repository", &mut event.repository)?;
            json::string_field(target, at, "tag", &mut event.tag)
        })?;
        if let Some(target) = lenient_object(&members, "target") {
            event.digest = lenient_string(&target, "digest");
            event.media_type = lenient_string(&target, "mediaType");
        }
        event.host = lenient_object(&members, "request").and_then(|r| lenient_string(&r, "host"));
        delivery_id = lenient_string(&members, "id");
    }
    Ok(Parsed {
        event_type: Some(event.action.clone()).filter(|a| !a.is_empty()),
        delivery_id,
        event: Event::Acr(event),
    })
}

// ---- Google Container Registry (Pub/Sub push) ----

/// Parses a GCR notification pushed by Pub/Sub as Flux does: the envelope
/// (`message.data`, `messageId`, `publishTime` a Go RFC 3339 time,
/// `subscription`), then `message.data` decoded from base64 as Go decodes
/// it, then that as `{action, digest, tag}` (`json.Unmarshal`).
pub(crate) fn parse_gcr(body: &[u8]) -> Result<Parsed, ParseError> {
    let mut data = String::new();
    let mut message_id = String::new();
    let mut publish_time = None;
    let mut attributes = BTreeMap::new();
    let mut subscription = None;
    if let Some(envelope) = flux_object(Sender::Gcr, body, true)? {
        json::struct_field(&envelope, "", "message", |message, at| {
            json::string_field(message, at, "data", &mut data)?;
            json::string_field(message, at, "messageId", &mut message_id)?;
            json::string_field(message, at, "subscription", &mut String::new())?;
            for raw in message.all("publishTime") {
                if !time::takes(raw) {
                    return Err(DecodeError::new(
                        "message.publishTime",
                        "not an RFC 3339 time as Go reads it",
                    ));
                }
            }
            Ok(())
        })?;
        if let Some(message) = lenient_object(&envelope, "message") {
            publish_time = lenient_string(&message, "publishTime")
                .or_else(|| lenient_string(&message, "publish_time"));
            if message_id.is_empty() {
                message_id = lenient_string(&message, "message_id").unwrap_or_default();
            }
            attributes = message
                .all("attributes")
                .filter_map(|raw| serde_json::from_str(raw.get()).ok())
                .last()
                .unwrap_or_default();
        }
        subscription = lenient_string(&envelope, "subscription");
    }
    // Flux ignores the decoding error and goes on with what decoded.
    let decoded = base64::decode_std_lenient(data.as_bytes());
    let notification = json::unmarshal_value(&decoded)
        .map_err(|e| ParseError::json(Sender::Gcr, "message.data", e))?;
    let (mut action, mut digest, mut tag) = (String::new(), String::new(), String::new());
    json::decode_struct(notification, "message.data", |members| {
        json::string_field(members, "message.data", "action", &mut action)?;
        json::string_field(members, "message.data", "digest", &mut digest)?;
        json::string_field(members, "message.data", "tag", &mut tag)
    })?;
    Ok(Parsed {
        event_type: Some(action.clone()).filter(|a| !a.is_empty()),
        delivery_id: Some(message_id).filter(|id| !id.is_empty()),
        event: Event::Gcr(GcrEvent {
            action,
            digest,
            tag,
            publish_time,
            attributes,
            subscription,
            data: Bytes::from(decoded),
        }),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    #[test]
    fn harbor_push_artifact() {
        let body = br#"{"type": "PUSH_ARTIFACT", "occur_at": 1680502375, "operator": "admin",
          "event_data": {"resources": [{"digest": "sha256:954b378c", "tag": "latest",
              "resource_url": "harbor.example/library/alpine:latest"}],
            "repository": {"date_created": 1680501893, "name": "alpine", "namespace": "library",
              "repo_full_name": "library/alpine", "repo_type": "private"}}}"#;
        let parsed = parse_harbor(body).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("PUSH_ARTIFACT"));
        let Event::Harbor(event) = parsed.event else {
            panic!("not harbor")
        };
        assert_eq!(event.repository.as_deref(), Some("library/alpine"));
        assert_eq!(
            event.resources,
            [HarborResource {
                resource_url: Some("harbor.example/library/alpine:latest".into()),
                tag: Some("latest".into()),
                digest: Some("sha256:954b378c".into()),
            }]
        );
        assert!(matches!(
            parse_harbor(br#"{"event_data": {}}"#),
            Err(ParseError::MissingField { field: "type" })
        ));
    }

    #[test]
    fn dockerhub_push() {
        let body = br#"{"callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
          "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "latest"},
          "repository": {"comment_count": 0, "is_private": true, "name": "testhook",
            "namespace": "svendowideit", "owner": "svendowideit", "repo_name": "svendowideit/testhook",
            "repo_url": "https://registry.hub.docker.com/u/svendowideit/testhook/", "star_count": 0}}"#;
        let parsed = parse_dockerhub(body).unwrap();
        assert_eq!(parsed.event_type, None);
        let Event::DockerHub(event) = parsed.event else {
            panic!("not dockerhub")
        };
        assert_eq!(event.tag, "latest");
        assert_eq!(event.repo_name.as_deref(), Some("svendowideit/testhook"));
        assert_eq!(
            event.repo_url,
            "https://registry.hub.docker.com/u/svendowideit/testhook/"
        );
        assert!(event.callback_url.is_some());
    }

    /// Flux decodes with `json.Decoder` into `{push_data: {tag}, repository:
    /// {repo_url}}`: a missing field is empty, a field of another JSON type
    /// refuses the payload, other fields are never looked at.
    #[test]
    fn registries_decode_as_flux_decodes() {
        let dockerhub = |body: &str| parse_dockerhub(body.as_bytes());
        for ok in [
            "{}",
            "null",
            r#"{"repository": {"repo_name": 7}, "callback_url": []}"#,
            r#"{"push_data": null, "Push_Data": {"TAG": "v1"}} trailing text"#,
        ] {
            assert!(dockerhub(ok).is_ok(), "{ok}");
        }
        let Event::DockerHub(event) = dockerhub(r#"{"PUSH_DATA": {"Tag": "v1"}}"#).unwrap().event
        else {
            panic!("not dockerhub")
        };
        assert_eq!(event.tag, "v1");
        for bad in [
            "",
            "[]",
            "\"push\"",
            r#"{"push_data": "v1"}"#,
            r#"{"push_data": {"tag": 1}}"#,
            r#"{"repository": {"repo_url": false}}"#,
            r#"{"push_data": {"tag": "v1""#,
        ] {
            assert!(dockerhub(bad).is_err(), "{bad}");
        }

        assert!(parse_quay(br#"{"updated_tags": null, "namespace": 3}"#).is_ok());
        assert!(parse_quay(br#"{"updated_tags": "v1"}"#).is_err());
        assert!(parse_quay(br#"{"updated_tags": [1]}"#).is_err());
        assert!(parse_quay(br#"{"docker_url": {}}"#).is_err());

        assert!(parse_acr(br#"{"target": {"repository": "app"}, "request": 5}"#).is_ok());
        assert!(parse_acr(br#"{"target": {"tag": ["v1"]}}"#).is_err());
        assert!(parse_acr(br#"{"action": 1}"#).is_err());

        // Nexus: json.Unmarshal, so one value and nothing after it.
        let nexus = |body: &str| parse_nexus(&HeaderMap::new(), body.as_bytes());
        assert!(nexus(r#"{"component": "x", "asset": 1}"#).is_ok());
        assert!(nexus("null").is_ok());
        assert!(nexus("{} {}").is_err());
        assert!(nexus(r#"{"repositoryName": 1}"#).is_err());
    }

    #[test]
    fn quay_push() {
        let body = br#"{"name": "repository", "repository": "mynamespace/repository",
          "namespace": "mynamespace", "docker_url": "quay.io/mynamespace/repository",
          "homepage": "https://quay.io/repository/mynamespace/repository",
          "updated_tags": ["latest", "v1"]}"#;
        let Event::Quay(event) = parse_quay(body).unwrap().event else {
            panic!("not quay")
        };
        assert_eq!(event.docker_url, "quay.io/mynamespace/repository");
        assert_eq!(event.updated_tags, ["latest", "v1"]);
        assert_eq!(event.repository.as_deref(), Some("mynamespace/repository"));
        assert_eq!(event.name.as_deref(), Some("repository"));
    }

    #[test]
    fn nexus_component() {
        let mut headers = HeaderMap::new();
        headers.insert(
            "X-Nexus-Webhook-Id",
            http::HeaderValue::from_static("rm:repository:component"),
        );
        headers.insert(
            "X-Nexus-Webhook-Delivery",
            http::HeaderValue::from_static("7f3d7b0e"),
        );
        let body = br#"{"timestamp": "2016-11-14T19:32:13.515+0000", "nodeId": "7FFA7361",
          "initiator": "anonymous/127.0.0.1", "repositoryName": "npmproxy", "action": "CREATED",
          "component": {"id": "08909bf0", "componentId": "08909bf0", "format": "npm",
            "name": "angular2", "group": "types", "version": "0.0.2"}}"#;
        let parsed = parse_nexus(&headers, body).unwrap();
        assert_eq!(
            parsed.event_type.as_deref(),
            Some("rm:repository:component")
        );
        assert_eq!(parsed.delivery_id.as_deref(), Some("7f3d7b0e"));
        let Event::Nexus(event) = parsed.event else {
            panic!("not nexus")
        };
        assert_eq!(event.action, "CREATED");
        assert_eq!(event.repository_name, "npmproxy");
        let component = event.component.unwrap();
        assert_eq!(component.name.as_deref(), Some("angular2"));
        assert_eq!(component.version.as_deref(), Some("0.0.2"));
        assert_eq!(event.asset, None);
    }

    #[test]
    fn acr_push() {
        let body = br#"{"id": "cb8c3971-9adc-488b-bdd8-43cbb4974ff5", "timestamp": "2017-11-17T16:52:01.343145347Z",
          "action": "push",
          "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 524,
            "digest": "sha256:80f0d5c8", "length": 524, "repository": "hello-world", "tag": "v1"},
          "request": {"id": "3cbb6949", "host": "myregistry.azurecr.io", "method": "PUT",
            "useragent": "docker/17.09.0-ce"}}"#;
        let parsed = parse_acr(body).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("push"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("cb8c3971-9adc-488b-bdd8-43cbb4974ff5")
        );
        assert_eq!(
            parsed.event,
            Event::Acr(AcrEvent {
                action: "push".into(),
                repository: "hello-world".into(),
                tag: "v1".into(),
                digest: Some("sha256:80f0d5c8".into()),
                media_type: Some("application/vnd.docker.distribution.manifest.v2+json".into()),
                host: Some("myregistry.azurecr.io".into()),
            })
        );
    }

    fn pubsub(data: &str) -> String {
        format!(
            r#"{{"message": {{"attributes": {{"key": "value"}}, "data": "{data}",
                "messageId": "2070443601311540", "message_id": "2070443601311540",
                "publishTime": "2021-02-26T19:13:55.749Z", "publish_time": "2021-02-26T19:13:55.749Z"}},
              "subscription": "projects/myproject/subscriptions/mysubscription"}}"#
        )
    }

    fn encode(data: &[u8]) -> String {
        use ::base64::Engine as _;
        ::base64::engine::general_purpose::STANDARD.encode(data)
    }

    #[test]
    fn gcr_unwraps_pubsub_data() {
        let data = br#"{"action":"INSERT","digest":"gcr.io/my-project/hello@sha256:6ec128e2","tag":"gcr.io/my-project/hello:latest"}"#;
        let body = pubsub(&encode(data));
        let parsed = parse_gcr(body.as_bytes()).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("INSERT"));
        assert_eq!(parsed.delivery_id.as_deref(), Some("2070443601311540"));
        let Event::Gcr(event) = parsed.event else {
            panic!("not gcr")
        };
        assert_eq!(event.digest, "gcr.io/my-project/hello@sha256:6ec128e2");
        assert_eq!(event.tag, "gcr.io/my-project/hello:latest");
        assert_eq!(
            event.attributes.get("key").map(String::as_str),
            Some("value")
        );
        assert_eq!(
            event.subscription.as_deref(),
            Some("projects/myproject/subscriptions/mysubscription")
        );
        assert_eq!(event.data, &data[..]);
    }

    /// A push by digest has no tag, a deletion may have no action: Flux
    /// takes them, with those fields empty.
    #[test]
    fn gcr_fields_flux_does_not_get_are_empty() {
        for (data, (action, digest, tag)) in [
            (
                &br#"{"digest": "gcr.io/p/app@sha256:0"}"#[..],
                ("", "gcr.io/p/app@sha256:0", ""),
            ),
            (br#"{"action": "DELETE", "tag": null}"#, ("DELETE", "", "")),
            (
                br#"{"Action": "INSERT", "TAG": "gcr.io/p/app:v1"}"#,
                ("INSERT", "", "gcr.io/p/app:v1"),
            ),
            (b"null", ("", "", "")),
        ] {
            let parsed = parse_gcr(pubsub(&encode(data)).as_bytes()).unwrap();
            let Event::Gcr(event) = parsed.event else {
                panic!("not gcr")
            };
            assert_eq!(
                (
                    event.action.as_str(),
                    event.digest.as_str(),
                    event.tag.as_str()
                ),
                (action, digest, tag)
            );
            assert_eq!(
                parsed.event_type.as_deref(),
                Some(action).filter(|a| !a.is_empty())
            );
        }
    }

    #[test]
    fn gcr_refuses_what_flux_refuses() {
        for (body, location) in [
            // No data: nothing to decode.
            (
                r#"{"message": {"messageId": "1"}}"#.to_owned(),
                "message.data",
            ),
            (pubsub("not base64!"), "message.data"),
            (pubsub(&encode(b"{nope")), "message.data"),
            (pubsub(&encode(br#"{"tag": 1}"#)), "message.data.tag"),
            (pubsub(&encode(br#"{} {}"#)), "message.data"),
            (r#"{"message": "x"}"#.to_owned(), "message"),
            (
                r#"{"message": {"data": "e30=", "publishTime": "yesterday"}}"#.to_owned(),
                "message.publishTime",
            ),
        ] {
            let error = parse_gcr(body.as_bytes()).unwrap_err();
            assert!(error.to_string().contains(location), "{body}: {error}");
        }
        // What decodes of damaged base64 is used, as Go returns it.
        let damaged = format!("{}!!!!", encode(br#"{"tag":"gcr.io/p/app:v1"}"#));
        let Event::Gcr(event) = parse_gcr(pubsub(&damaged).as_bytes()).unwrap().event else {
            panic!("not gcr")
        };
        assert_eq!(event.tag, "gcr.io/p/app:v1");
    }
}
