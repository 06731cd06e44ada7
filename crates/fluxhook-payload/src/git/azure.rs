//! Azure DevOps service hooks: no event header; the body names the event
//! (`eventType`) and the delivery (`id`), and holds the event in `resource`.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{EventRepository, Push, is_zero_id, required};
use crate::read::{Lenient, Text, lenient, non_empty, object};
use crate::{Event, ParseError, Parsed, Sender};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Envelope<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
    #[serde(borrow)]
    event_type: Option<Text<'a>>,
    /// Read once `eventType` is known: fields may come in any order.
    #[serde(borrow)]
    resource: Option<&'a RawValue>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PushResource<'a> {
    #[serde(borrow)]
    ref_updates: Option<Vec<RefUpdate<'a>>>,
    #[serde(borrow)]
    repository: Option<RepoBody<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RefUpdate<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    old_object_id: Option<Text<'a>>,
    #[serde(borrow)]
    new_object_id: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct OtherResource<'a> {
    #[serde(borrow)]
    repository: Option<Lenient<RepoBody<'a>>>,
    #[serde(borrow)]
    pull_request: Option<Lenient<PullRequest<'a>>>,
}

#[derive(Deserialize)]
struct PullRequest<'a> {
    #[serde(borrow)]
    repository: RepoBody<'a>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepoBody<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    remote_url: Option<Text<'a>>,
    #[serde(borrow)]
    ssh_url: Option<Text<'a>>,
    #[serde(borrow)]
    web_url: Option<Text<'a>>,
    #[serde(borrow)]
    project: Option<Project<'a>>,
}

#[derive(Deserialize)]
struct Project<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

impl RepoBody<'_> {
    fn into_repository(self) -> EventRepository {
        let web = non_empty(self.web_url);
        let clone_http = non_empty(self.remote_url);
        // The namespace is the URL path before `/_git/`: `organization/project`
        // on dev.azure.com, `project` on <organization>.visualstudio.com.
        let namespace = [&web, &clone_http]
            .into_iter()
            .flatten()
            .find_map(|url| namespace_of(url))
            .or_else(|| self.project.and_then(|p| non_empty(p.name)))
            .unwrap_or_default();
        let mut repo = EventRepository::from_path(
            self.name.as_str(),
            clone_http,
            non_empty(self.ssh_url),
            web,
        );
        repo.namespace = namespace;
        repo
    }
}

/// `organization/project` of `https://dev.azure.com/organization/project/_git/repo`.
fn namespace_of(url: &str) -> Option<String> {
    let uri: http::Uri = url.parse().ok()?;
    let (namespace, _) = uri.path().split_once("/_git/")?;
    let namespace = namespace.trim_matches('/');
    (!namespace.is_empty()).then(|| namespace.to_owned())
}

/// Parses an Azure DevOps service hook delivery.
pub(crate) fn parse(body: &[u8]) -> Result<Parsed, ParseError> {
    let envelope: Envelope<'_> = object(Sender::AzureDevOps, "body", body)?;
    let event_type = required(envelope.event_type, "eventType")?;
    let resource = envelope.resource.map_or("{}", RawValue::get).as_bytes();
    let event = if event_type == "git.push" {
        Event::Push(parse_push(resource)?)
    } else {
        // `resource` differs per event (builds, work items, releases...):
        // anything is accepted, and a repository named when there is one.
        let other: Option<OtherResource<'_>> = serde_json::from_slice(resource).ok();
        let repo = other.and_then(|r| {
            lenient(r.repository).or_else(|| lenient(r.pull_request).map(|pr| pr.repository))
        });
        Event::Other {
            repository: repo.map(RepoBody::into_repository),
        }
    };
    Ok(Parsed {
        event_type: Some(event_type),
        delivery_id: non_empty(envelope.id),
        event,
    })
}

/// The first ref update of a `git.push`, which lists one per ref updated.
fn parse_push(resource: &[u8]) -> Result<Push, ParseError> {
    let resource: PushResource<'_> = object(Sender::AzureDevOps, "resource", resource)?;
    let mut updates = resource.ref_updates.unwrap_or_default().into_iter();
    let update = updates.next().ok_or(ParseError::MissingField {
        field: "resource.refUpdates[0]",
    })?;
    let more_refs = updates.filter_map(|u| non_empty(u.name)).collect();
    let before = required(update.old_object_id, "resource.refUpdates[0].oldObjectId")?;
    let after = required(update.new_object_id, "resource.refUpdates[0].newObjectId")?;
    Ok(Push {
        git_ref: required(update.name, "resource.refUpdates[0].name")?,
        created: is_zero_id(&before),
        deleted: is_zero_id(&after),
        before,
        after,
        repository: resource
            .repository
            .ok_or(ParseError::MissingField {
                field: "resource.repository",
            })?
            .into_repository(),
        changed_paths: Vec::new(),
        more_refs,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    /// Shaped like Azure DevOps' `git.push` sample (trimmed), `resource` before `eventType`.
    const PUSH: &str = r#"{
      "subscriptionId": "00000000-0000-0000-0000-000000000000", "notificationId": 1,
      "resource": {
        "commits": [{"commitId": "33b55f7cb7e7e245323987634f960cf4a6e6bc74", "comment": "Fixed bug"}],
        "refUpdates": [{"name": "refs/heads/master",
          "oldObjectId": "aad331d8d3b131fa9ae03cf5e53965b51942618a",
          "newObjectId": "33b55f7cb7e7e245323987634f960cf4a6e6bc74"}],
        "repository": {"id": "278d5cd2", "name": "Fabrikam-Fiber-Git",
          "project": {"id": "6ce954b1", "name": "Fabrikam-Fiber-Git", "state": "wellFormed"},
          "defaultBranch": "refs/heads/master",
          "remoteUrl": "https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git"},
        "pushId": 14
      },
      "id": "03c164c2-8912-4d5e-8009-3707d5f83734",
      "eventType": "git.push", "publisherId": "tfs", "scope": "all"
    }"#;

    #[test]
    fn push() {
        let parsed = parse(PUSH.as_bytes()).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("git.push"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("03c164c2-8912-4d5e-8009-3707d5f83734")
        );
        let Event::Push(push) = parsed.event else {
            panic!("not a push")
        };
        assert_eq!(push.git_ref, "refs/heads/master");
        assert_eq!(push.after, "33b55f7cb7e7e245323987634f960cf4a6e6bc74");
        let repo = push.repository;
        assert_eq!(repo.namespace, "fabrikam-fiber-inc/DefaultCollection");
        assert_eq!(repo.name, "Fabrikam-Fiber-Git");
        assert_eq!(repo.host.as_deref(), Some("dev.azure.com"));
        assert_eq!(
            repo.urls(),
            ["https://dev.azure.com/fabrikam-fiber-inc/DefaultCollection/_git/Fabrikam-Fiber-Git"]
        );
    }

    #[test]
    fn pull_request_comment_names_repository() {
        let body = r#"{"id": "af07be1b", "eventType": "ms.vss-code.git-pullrequest-comment-event",
          "resource": {"comment": {"id": 2}, "pullRequest": {"repository": {"id": "4bc1",
            "name": "Fabrikam", "sshUrl": "git@ssh.dev.azure.com:v3/fabrikam/DefaultCollection/Fabrikam",
            "webUrl": "https://dev.azure.com/fabrikam/DefaultCollection/_git/Fabrikam",
            "remoteUrl": "https://fabrikam.visualstudio.com/DefaultCollection/_git/Fabrikam"}}}}"#;
        let parsed = parse(body.as_bytes()).unwrap();
        assert_eq!(
            parsed.event_type.as_deref(),
            Some("ms.vss-code.git-pullrequest-comment-event")
        );
        let Event::Other {
            repository: Some(repo),
        } = parsed.event
        else {
            panic!("no repository")
        };
        assert_eq!(repo.full_name(), "fabrikam/DefaultCollection/Fabrikam");
        assert_eq!(repo.urls().len(), 3);
    }

    #[test]
    fn other_events_accept_any_resource() {
        for resource in [r#""text""#, "[1, 2]", r#"{"repository": 5}"#, "null"] {
            let body = format!(r#"{{"eventType": "build.complete", "resource": {resource}}}"#);
            let parsed = parse(body.as_bytes()).unwrap();
            assert!(
                matches!(parsed.event, Event::Other { repository: None }),
                "{resource}"
            );
        }
    }

    #[test]
    fn event_type_is_required() {
        let err = parse(br#"{"id": "x", "resource": {}}"#).unwrap_err();
        assert!(
            matches!(err, ParseError::MissingField { field: "eventType" }),
            "{err}"
        );
    }

    #[test]
    fn push_without_ref_updates_is_an_error() {
        let err =
            parse(br#"{"eventType": "git.push", "resource": {"refUpdates": []}}"#).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::MissingField {
                    field: "resource.refUpdates[0]"
                }
            ),
            "{err}"
        );
    }
}
