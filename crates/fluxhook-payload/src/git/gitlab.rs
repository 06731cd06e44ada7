//! GitLab: `X-Gitlab-Event` names the event; every event carries `project`.

use http::HeaderMap;
use serde::Deserialize;

use super::{CommitPaths, EventRepository, Push, changed_paths, required};
use crate::header::X_GITLAB_EVENT;
use crate::read::{Lenient, Text, first_header, lenient, non_empty, object, required_header};
use crate::{Event, ParseError, Parsed, Sender};

#[derive(Deserialize)]
struct PushBody<'a> {
    #[serde(rename = "ref", borrow)]
    git_ref: Option<Text<'a>>,
    #[serde(borrow)]
    before: Option<Text<'a>>,
    #[serde(borrow)]
    after: Option<Text<'a>>,
    #[serde(borrow)]
    commits: Option<Vec<CommitPaths<'a>>>,
    #[serde(borrow)]
    project: Option<ProjectBody<'a>>,
}

#[derive(Deserialize)]
struct OtherBody<'a> {
    #[serde(borrow)]
    project: Option<Lenient<ProjectBody<'a>>>,
}

#[derive(Deserialize)]
struct ProjectBody<'a> {
    /// The full path, with every subgroup: `group/subgroup/project`.
    #[serde(borrow)]
    path_with_namespace: Text<'a>,
    #[serde(borrow)]
    git_http_url: Option<Text<'a>>,
    #[serde(borrow)]
    git_ssh_url: Option<Text<'a>>,
    #[serde(borrow)]
    web_url: Option<Text<'a>>,
    /// Read leniently: it is not needed.
    #[serde(borrow)]
    default_branch: Option<Lenient<Text<'a>>>,
}

impl ProjectBody<'_> {
    fn into_repository(self) -> EventRepository {
        EventRepository::from_path(
            self.path_with_namespace.as_str(),
            non_empty(self.git_http_url),
            non_empty(self.git_ssh_url),
            non_empty(self.web_url),
        )
        .with_default_branch(non_empty(lenient(self.default_branch)))
    }
}

/// Parses a GitLab delivery.
pub(crate) fn parse(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ParseError> {
    let event_type = required_header(headers, &[X_GITLAB_EVENT])?;
    let delivery_id = first_header(headers, &["X-Gitlab-Event-UUID"])?;
    let event = match event_type.as_str() {
        "Push Hook" | "Tag Push Hook" => {
            let push: PushBody<'_> = object(Sender::GitLab, "body", body)?;
            let before = required(push.before, "before")?;
            let after = required(push.after, "after")?;
            Event::Push(Push {
                git_ref: required(push.git_ref, "ref")?,
                created: super::is_zero_id(&before),
                deleted: super::is_zero_id(&after),
                before,
                after,
                repository: push
                    .project
                    .ok_or(ParseError::MissingField { field: "project" })?
                    .into_repository(),
                changed_paths: changed_paths(push.commits),
                more_refs: Vec::new(),
            })
        }
        _ => {
            let other: OtherBody<'_> = object(Sender::GitLab, "body", body)?;
            Event::Other {
                repository: lenient(other.project).map(ProjectBody::into_repository),
            }
        }
    };
    Ok(Parsed {
        event_type: Some(event_type),
        delivery_id,
        event,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;

    fn headers(event: &'static str) -> HeaderMap {
        let mut map = HeaderMap::new();
        map.insert("X-Gitlab-Event", http::HeaderValue::from_static(event));
        map.insert(
            "X-Gitlab-Event-UUID",
            http::HeaderValue::from_static("13792a34-cac6-4fda-95a8-c58e00a3954e"),
        );
        map
    }

    /// Shaped like GitLab's tag deletion in a subgroup (trimmed).
    const TAG_DELETE_SUBGROUP: &str = r#"{
      "object_kind": "tag_push", "event_name": "tag_push",
      "before": "2adc9465c4edfc33834e173fe89436a7cb899a1d",
      "after": "0000000000000000000000000000000000000000",
      "ref": "refs/tags/v1.0.0", "checkout_sha": null, "user_id": 51764,
      "project": {"id": 4861503, "name": "Grp2 Repo", "namespace": "group3",
        "web_url": "https://gitlab.com/group1/group2/group3/grp2repo",
        "git_ssh_url": "git@gitlab.com:group1/group2/group3/grp2repo.git",
        "git_http_url": "https://gitlab.com/group1/group2/group3/grp2repo.git",
        "path_with_namespace": "group1/group2/group3/grp2repo"},
      "commits": [], "total_commits_count": 0,
      "repository": {"name": "grp2repo", "url": "git@gitlab.com:group1/group2/group3/grp2repo.git"}
    }"#;

    #[test]
    fn tag_push_in_subgroup() {
        let parsed = parse(&headers("Tag Push Hook"), TAG_DELETE_SUBGROUP.as_bytes()).unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("Tag Push Hook"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("13792a34-cac6-4fda-95a8-c58e00a3954e")
        );
        let Event::Push(push) = parsed.event else {
            panic!("not a push")
        };
        assert_eq!(push.ref_kind(), super::super::RefKind::Tag);
        assert!(push.deleted && !push.created);
        assert_eq!(push.after, super::super::ZERO_ID);
        let repo = push.repository;
        assert_eq!(repo.namespace, "group1/group2/group3");
        assert_eq!(repo.name, "grp2repo");
        assert_eq!(repo.full_name(), "group1/group2/group3/grp2repo");
        assert_eq!(
            repo.urls(),
            [
                "https://gitlab.com/group1/group2/group3/grp2repo.git",
                "git@gitlab.com:group1/group2/group3/grp2repo.git",
                "https://gitlab.com/group1/group2/group3/grp2repo",
            ]
        );
    }

    #[test]
    fn push_lists_changed_paths() {
        let body = r#"{"object_kind": "push", "ref": "refs/heads/master",
          "before": "9217710ce8c7e1eae7a5d1c45f6e43e1c769f866",
          "after": "2adc9465c4edfc33834e173fe89436a7cb899a1d",
          "project": {"path_with_namespace": "gitlab-org/hello-world",
            "web_url": "https://gitlab.com/gitlab-org/hello-world"},
          "commits": [{"id": "2adc94", "added": ["README.md"], "modified": [], "removed": []}]}"#;
        let parsed = parse(&headers("Push Hook"), body.as_bytes()).unwrap();
        let Event::Push(push) = parsed.event else {
            panic!("not a push")
        };
        assert_eq!(push.changed_paths, ["README.md"]);
        assert_eq!(push.repository.host.as_deref(), Some("gitlab.com"));
    }

    #[test]
    fn merge_request_is_other_with_repository() {
        let body = r#"{"object_kind": "merge_request", "user": {"name": "x"},
          "project": {"id": 1, "path_with_namespace": "gitlab-org/hello-world",
            "git_http_url": "https://gitlab.com/gitlab-org/hello-world.git"},
          "object_attributes": {"iid": 1}}"#;
        let parsed = parse(&headers("Merge Request Hook"), body.as_bytes()).unwrap();
        let Event::Other {
            repository: Some(repo),
        } = parsed.event
        else {
            panic!("no repository")
        };
        assert_eq!(repo.full_name(), "gitlab-org/hello-world");
    }

    #[test]
    fn push_without_project_is_an_error() {
        let body = br#"{"ref": "refs/heads/x", "before": "a", "after": "b"}"#;
        let err = parse(&headers("Push Hook"), body).unwrap_err();
        assert!(
            matches!(err, ParseError::MissingField { field: "project" }),
            "{err}"
        );
    }
}
