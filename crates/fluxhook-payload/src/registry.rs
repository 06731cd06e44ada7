//! Container and artifact registries: the fields Flux logs or filters on.

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderMap;
use serde::Deserialize;

use crate::read::{Text, first_header, non_empty, object};
use crate::{Event, ParseError, Parsed, Provider};

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

/// A Docker Hub push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DockerHubEvent {
    /// `push_data.tag`: the tag pushed.
    pub tag: String,
    /// `repository.repo_name`, e.g. `svendowideit/testhook`.
    pub repo_name: String,
    /// `repository.repo_url`: the repository's page.
    pub repo_url: Option<String>,
    /// `callback_url`: where Docker Hub expects the validation callback.
    pub callback_url: Option<String>,
}

/// A Quay repository push notification.
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
/// [`Webhook::event_type`](crate::Webhook::event_type), from `X-Nexus-Webhook-Id`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NexusEvent {
    /// `action`: `CREATED`, `UPDATED` or `DELETED` (absent for audit events).
    pub action: Option<String>,
    /// `repositoryName` (absent for repository and audit events).
    pub repository_name: Option<String>,
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcrEvent {
    /// `target.repository`, e.g. `hello-world`.
    pub repository: Option<String>,
    /// `target.tag`.
    pub tag: Option<String>,
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
/// `INSERT` or `DELETE`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GcrEvent {
    /// `digest`: the image by digest, e.g. `gcr.io/project/image@sha256:...`.
    pub digest: Option<String>,
    /// `tag`: the image by tag, e.g. `gcr.io/project/image:latest`.
    pub tag: Option<String>,
    /// `message.publishTime`.
    pub publish_time: Option<String>,
    /// `message.attributes`.
    pub attributes: BTreeMap<String, String>,
    /// `subscription`: the Pub/Sub subscription that pushed it.
    pub subscription: Option<String>,
    /// `message.data`, base64-decoded: the registry's JSON notification.
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
    let body: HarborBody<'_> = object(Provider::Harbor, "body", body)?;
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

// ---- Docker Hub ----

#[derive(Deserialize)]
struct DockerHubBody<'a> {
    #[serde(borrow)]
    push_data: Option<DockerHubPushData<'a>>,
    #[serde(borrow)]
    repository: Option<DockerHubRepository<'a>>,
    #[serde(borrow)]
    callback_url: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct DockerHubPushData<'a> {
    #[serde(borrow)]
    tag: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct DockerHubRepository<'a> {
    #[serde(borrow)]
    repo_name: Option<Text<'a>>,
    #[serde(borrow)]
    repo_url: Option<Text<'a>>,
}

/// Parses a Docker Hub delivery (Docker Hub sends pushes only, with no event name).
pub(crate) fn parse_dockerhub(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: DockerHubBody<'_> = object(Provider::DockerHub, "body", body)?;
    let tag = body.push_data.and_then(|p| non_empty(p.tag));
    let (repo_name, repo_url) = match body.repository {
        Some(r) => (non_empty(r.repo_name), non_empty(r.repo_url)),
        None => (None, None),
    };
    Ok(Parsed {
        event_type: None,
        delivery_id: None,
        event: Event::DockerHub(DockerHubEvent {
            tag: tag.ok_or(ParseError::MissingField {
                field: "push_data.tag",
            })?,
            repo_name: repo_name.ok_or(ParseError::MissingField {
                field: "repository.repo_name",
            })?,
            repo_url,
            callback_url: non_empty(body.callback_url),
        }),
    })
}

// ---- Quay ----

#[derive(Deserialize)]
struct QuayBody<'a> {
    #[serde(borrow)]
    docker_url: Option<Text<'a>>,
    #[serde(borrow)]
    updated_tags: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    repository: Option<Text<'a>>,
    #[serde(borrow)]
    namespace: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

/// Parses a Quay repository push notification (no event name is sent).
pub(crate) fn parse_quay(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: QuayBody<'_> = object(Provider::Quay, "body", body)?;
    Ok(Parsed {
        event_type: None,
        delivery_id: None,
        event: Event::Quay(QuayEvent {
            docker_url: non_empty(body.docker_url).ok_or(ParseError::MissingField {
                field: "docker_url",
            })?,
            updated_tags: body
                .updated_tags
                .into_iter()
                .flatten()
                .map(Text::into_string)
                .collect(),
            repository: non_empty(body.repository),
            namespace: non_empty(body.namespace),
            name: non_empty(body.name),
        }),
    })
}

// ---- Nexus ----

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct NexusBody<'a> {
    #[serde(borrow)]
    action: Option<Text<'a>>,
    #[serde(borrow)]
    repository_name: Option<Text<'a>>,
    #[serde(borrow)]
    component: Option<NexusComponentBody<'a>>,
    #[serde(borrow)]
    asset: Option<NexusAssetBody<'a>>,
}

#[derive(Deserialize)]
struct NexusComponentBody<'a> {
    #[serde(borrow)]
    format: Option<Text<'a>>,
    #[serde(borrow)]
    group: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    version: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct NexusAssetBody<'a> {
    #[serde(borrow)]
    format: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

/// Parses a Nexus Repository delivery.
pub(crate) fn parse_nexus(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ParseError> {
    let event_type = first_header(headers, &["X-Nexus-Webhook-Id"])?;
    let delivery_id = first_header(headers, &["X-Nexus-Webhook-Delivery"])?;
    let body: NexusBody<'_> = object(Provider::Nexus, "body", body)?;
    Ok(Parsed {
        event_type,
        delivery_id,
        event: Event::Nexus(NexusEvent {
            action: non_empty(body.action),
            repository_name: non_empty(body.repository_name),
            component: body.component.map(|c| NexusComponent {
                format: non_empty(c.format),
                group: non_empty(c.group),
                name: non_empty(c.name),
                version: non_empty(c.version),
            }),
            asset: body.asset.map(|a| NexusAsset {
                format: non_empty(a.format),
                name: non_empty(a.name),
            }),
        }),
    })
}

// ---- Azure Container Registry ----

#[derive(Deserialize)]
struct AcrBody<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    action: Option<Text<'a>>,
    #[serde(borrow)]
    target: Option<AcrTarget<'a>>,
    #[serde(borrow)]
    request: Option<AcrRequest<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AcrTarget<'a> {
    #[serde(borrow)]
    repository: Option<Text<'a>>,
    #[serde(borrow)]
    tag: Option<Text<'a>>,
    #[serde(borrow)]
    digest: Option<Text<'a>>,
    #[serde(borrow)]
    media_type: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct AcrRequest<'a> {
    #[serde(borrow)]
    host: Option<Text<'a>>,
}

/// Parses an Azure Container Registry delivery.
pub(crate) fn parse_acr(body: &[u8]) -> Result<Parsed, ParseError> {
    let body: AcrBody<'_> = object(Provider::Acr, "body", body)?;
    let action = non_empty(body.action).ok_or(ParseError::MissingField { field: "action" })?;
    let target = body.target;
    let (repository, tag, digest, media_type) = match target {
        Some(t) => (
            non_empty(t.repository),
            non_empty(t.tag),
            non_empty(t.digest),
            non_empty(t.media_type),
        ),
        None => (None, None, None, None),
    };
    Ok(Parsed {
        event_type: Some(action),
        delivery_id: non_empty(body.id),
        event: Event::Acr(AcrEvent {
            repository,
            tag,
            digest,
            media_type,
            host: body.request.and_then(|r| non_empty(r.host)),
        }),
    })
}

// ---- Google Container Registry (Pub/Sub push) ----

#[derive(Deserialize)]
struct PubSubEnvelope<'a> {
    #[serde(borrow)]
    message: Option<PubSubMessage<'a>>,
    #[serde(borrow)]
    subscription: Option<Text<'a>>,
}

/// Pub/Sub writes the id and time twice, in camelCase and snake_case (serde
/// aliases would refuse the second as a duplicate field).
#[derive(Deserialize)]
struct PubSubMessage<'a> {
    #[serde(borrow)]
    data: Option<Text<'a>>,
    #[serde(rename = "messageId", borrow)]
    message_id: Option<Text<'a>>,
    #[serde(rename = "message_id", borrow)]
    message_id_snake: Option<Text<'a>>,
    #[serde(rename = "publishTime", borrow)]
    publish_time: Option<Text<'a>>,
    #[serde(rename = "publish_time", borrow)]
    publish_time_snake: Option<Text<'a>>,
    attributes: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct GcrData<'a> {
    #[serde(borrow)]
    action: Option<Text<'a>>,
    #[serde(borrow)]
    digest: Option<Text<'a>>,
    #[serde(borrow)]
    tag: Option<Text<'a>>,
}

/// Parses a GCR notification pushed by Pub/Sub: the envelope, then its
/// base64 `message.data`.
pub(crate) fn parse_gcr(body: &[u8]) -> Result<Parsed, ParseError> {
    let envelope: PubSubEnvelope<'_> = object(Provider::Gcr, "body", body)?;
    let message = envelope
        .message
        .ok_or(ParseError::MissingField { field: "message" })?;
    let encoded = message.data.ok_or(ParseError::MissingField {
        field: "message.data",
    })?;
    let data = base64::engine::general_purpose::STANDARD
        .decode(encoded.as_str())
        .map_err(|e| ParseError::InvalidField {
            field: "message.data",
            reason: format!("not base64: {e}"),
        })?;
    let notification: GcrData<'_> = object(Provider::Gcr, "message.data", &data)?;
    let action = non_empty(notification.action).ok_or(ParseError::MissingField {
        field: "message.data.action",
    })?;
    let (digest, tag) = (non_empty(notification.digest), non_empty(notification.tag));
    Ok(Parsed {
        event_type: Some(action),
        delivery_id: non_empty(message.message_id).or(non_empty(message.message_id_snake)),
        event: Event::Gcr(GcrEvent {
            digest,
            tag,
            publish_time: non_empty(message.publish_time).or(non_empty(message.publish_time_snake)),
            attributes: message.attributes.unwrap_or_default(),
            subscription: non_empty(envelope.subscription),
            data: Bytes::from(data),
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
        assert_eq!(event.repo_name, "svendowideit/testhook");
        assert_eq!(
            event.repo_url.as_deref(),
            Some("https://registry.hub.docker.com/u/svendowideit/testhook/")
        );
        assert!(event.callback_url.is_some());
        assert!(matches!(
            parse_dockerhub(br#"{"repository": {"repo_name": "a/b"}}"#),
            Err(ParseError::MissingField {
                field: "push_data.tag"
            })
        ));
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
        assert!(matches!(
            parse_quay(br#"{"updated_tags": ["x"]}"#),
            Err(ParseError::MissingField {
                field: "docker_url"
            })
        ));
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
        assert_eq!(event.action.as_deref(), Some("CREATED"));
        assert_eq!(event.repository_name.as_deref(), Some("npmproxy"));
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
                repository: Some("hello-world".into()),
                tag: Some("v1".into()),
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

    #[test]
    fn gcr_unwraps_pubsub_data() {
        let data = br#"{"action":"INSERT","digest":"gcr.io/my-project/hello@sha256:6ec128e2","tag":"gcr.io/my-project/hello:latest"}"#;
        let body = pubsub(&base64::engine::general_purpose::STANDARD.encode(data));
        let parsed = parse_gcr(body.as_bytes()).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("INSERT"));
        assert_eq!(parsed.delivery_id.as_deref(), Some("2070443601311540"));
        let Event::Gcr(event) = parsed.event else {
            panic!("not gcr")
        };
        assert_eq!(
            event.digest.as_deref(),
            Some("gcr.io/my-project/hello@sha256:6ec128e2")
        );
        assert_eq!(event.tag.as_deref(), Some("gcr.io/my-project/hello:latest"));
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

    #[test]
    fn gcr_errors_name_the_data() {
        let err = parse_gcr(pubsub("not base64!").as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::InvalidField {
                    field: "message.data",
                    ..
                }
            ),
            "{err}"
        );

        let not_json = base64::engine::general_purpose::STANDARD.encode(b"{nope");
        let err = parse_gcr(pubsub(&not_json).as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::Json {
                    location: "message.data",
                    ..
                }
            ),
            "{err}"
        );

        let no_action = base64::engine::general_purpose::STANDARD.encode(br#"{"tag": "x"}"#);
        let err = parse_gcr(pubsub(&no_action).as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::MissingField {
                    field: "message.data.action"
                }
            ),
            "{err}"
        );
    }
}
