//! Bitbucket Cloud and Bitbucket Server / Data Center: both name the event in
//! `X-Event-Key`, with different payloads.

use http::HeaderMap;
use serde::Deserialize;

use super::{EventRepository, Push, ZERO_ID, is_zero_id, required};
use crate::header::X_EVENT_KEY;
use crate::read::{Lenient, Text, first_header, lenient, non_empty, object, required_header};
use crate::{Event, ParseError, Parsed, Sender};

/// A link as both Bitbucket flavours write one.
#[derive(Deserialize)]
struct Link<'a> {
    #[serde(borrow)]
    href: Option<Text<'a>>,
    /// `https`/`http` or `ssh`, in clone link lists.
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

/// The first clone link named `http`/`https` and the first named `ssh`.
fn clone_links(links: Option<Vec<Link<'_>>>) -> (Option<String>, Option<String>) {
    let (mut http, mut ssh) = (None, None);
    for link in links.into_iter().flatten() {
        match link.name.as_ref().map(Text::as_str) {
            Some("http" | "https") if http.is_none() => http = non_empty(link.href),
            Some("ssh") if ssh.is_none() => ssh = non_empty(link.href),
            _ => {}
        }
    }
    (http, ssh)
}

// ---- Bitbucket Cloud ----

#[derive(Deserialize)]
struct CloudPushBody<'a> {
    #[serde(borrow)]
    push: Option<CloudPush<'a>>,
    #[serde(borrow)]
    repository: Option<CloudRepo<'a>>,
}

#[derive(Deserialize)]
struct CloudPush<'a> {
    #[serde(borrow)]
    changes: Option<Vec<CloudChange<'a>>>,
}

#[derive(Deserialize)]
struct CloudChange<'a> {
    /// The ref after the push; null when it was deleted.
    #[serde(borrow)]
    new: Option<CloudRef<'a>>,
    /// The ref before the push; null when it was created.
    #[serde(borrow)]
    old: Option<CloudRef<'a>>,
    created: Option<bool>,
    closed: Option<bool>,
}

#[derive(Deserialize)]
struct CloudRef<'a> {
    /// `branch` or `tag` (`annotated_tag` for annotated tags).
    #[serde(rename = "type", borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    target: Option<CloudTarget<'a>>,
}

#[derive(Deserialize)]
struct CloudTarget<'a> {
    #[serde(borrow)]
    hash: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct CloudOtherBody<'a> {
    #[serde(borrow)]
    repository: Option<Lenient<CloudRepo<'a>>>,
}

#[derive(Deserialize)]
struct CloudRepo<'a> {
    #[serde(borrow)]
    full_name: Text<'a>,
    #[serde(borrow)]
    links: Option<CloudLinks<'a>>,
    /// The main branch, `{"type": "branch", "name": "main"}`, when the
    /// repository object is the full one.
    #[serde(borrow)]
    mainbranch: Option<Lenient<CloudBranch<'a>>>,
}

#[derive(Deserialize)]
struct CloudBranch<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct CloudLinks<'a> {
    #[serde(borrow)]
    html: Option<Link<'a>>,
    #[serde(borrow)]
    clone: Option<Vec<Link<'a>>>,
}

impl CloudRepo<'_> {
    fn into_repository(self) -> EventRepository {
        let (web, clone) = match self.links {
            Some(links) => (links.html.and_then(|l| non_empty(l.href)), links.clone),
            None => (None, None),
        };
        let (mut http, mut ssh) = clone_links(clone);
        // Webhook payloads carry only the web link; Bitbucket Cloud's clone
        // URLs follow from it: https://<host>/<full_name>.git and
        // git@<host>:<full_name>.git.
        let full_name = self.full_name.as_str();
        let mut repo = EventRepository::from_path(full_name, None, None, web)
            .with_default_branch(lenient(self.mainbranch).and_then(|b| non_empty(b.name)));
        if let Some(host) = repo.host.as_deref() {
            http.get_or_insert_with(|| format!("https://{host}/{full_name}.git"));
            ssh.get_or_insert_with(|| format!("git@{host}:{full_name}.git"));
        }
        repo.clone_http = http;
        repo.clone_ssh = ssh;
        repo
    }
}

/// Parses a Bitbucket Cloud delivery.
pub(crate) fn parse_cloud(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ParseError> {
    let event_type = required_header(headers, &[X_EVENT_KEY])?;
    let delivery_id = first_header(headers, &["X-Request-UUID"])?;
    let event = if event_type == "repo:push" {
        Event::Push(parse_cloud_push(body)?)
    } else {
        let other: CloudOtherBody<'_> = object(Sender::BitbucketCloud, "body", body)?;
        Event::Other {
            repository: lenient(other.repository).map(CloudRepo::into_repository),
        }
    };
    Ok(Parsed {
        event_type: Some(event_type),
        delivery_id,
        event,
    })
}

/// The first change of a push: Bitbucket Cloud lists one per ref updated.
fn parse_cloud_push(body: &[u8]) -> Result<Push, ParseError> {
    let body: CloudPushBody<'_> = object(Sender::BitbucketCloud, "body", body)?;
    let mut changes = body
        .push
        .and_then(|p| p.changes)
        .unwrap_or_default()
        .into_iter();
    let change = changes.next().ok_or(ParseError::MissingField {
        field: "push.changes[0]",
    })?;
    // The further changes' refs; one of a kind neither branch nor tag is left out.
    let more_refs = changes
        .filter_map(|c| c.new.or(c.old))
        .filter_map(|named| cloud_ref(&named))
        .collect();
    let hash = |side: &Option<CloudRef<'_>>| {
        side.as_ref()
            .and_then(|r| r.target.as_ref())
            .and_then(|t| t.hash.as_ref())
            .map_or_else(|| ZERO_ID.to_owned(), |h| h.as_str().to_owned())
    };
    let (before, after) = (hash(&change.old), hash(&change.new));
    let created = change.created.unwrap_or(change.old.is_none());
    let deleted = change.closed.unwrap_or(change.new.is_none());
    let named = change.new.or(change.old).ok_or(ParseError::MissingField {
        field: "push.changes[0].new",
    })?;
    let git_ref = cloud_ref(&named).ok_or_else(|| ParseError::InvalidField {
        field: "push.changes[0].new.type",
        reason: format!("{:?} is neither a branch nor a tag", named.kind.as_str()),
    })?;
    Ok(Push {
        git_ref,
        before,
        after,
        created,
        deleted,
        repository: body
            .repository
            .ok_or(ParseError::MissingField {
                field: "repository",
            })?
            .into_repository(),
        changed_paths: Vec::new(),
        more_refs,
    })
}

/// The full ref of a Bitbucket Cloud ref: `refs/heads/` or `refs/tags/` and its name.
fn cloud_ref(named: &CloudRef<'_>) -> Option<String> {
    match named.kind.as_str() {
        "branch" | "named_branch" => Some(format!("refs/heads/{}", named.name.as_str())),
        "tag" | "annotated_tag" => Some(format!("refs/tags/{}", named.name.as_str())),
        _ => None,
    }
}

// ---- Bitbucket Server / Data Center ----

#[derive(Deserialize)]
struct ServerPushBody<'a> {
    #[serde(borrow)]
    changes: Option<Vec<ServerChange<'a>>>,
    #[serde(borrow)]
    repository: Option<ServerRepo<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerChange<'a> {
    #[serde(rename = "ref", borrow)]
    git_ref: Option<ServerRef<'a>>,
    #[serde(borrow)]
    ref_id: Option<Text<'a>>,
    #[serde(borrow)]
    from_hash: Option<Text<'a>>,
    #[serde(borrow)]
    to_hash: Option<Text<'a>>,
    /// `ADD`, `UPDATE` or `DELETE`.
    #[serde(rename = "type", borrow)]
    kind: Option<Text<'a>>,
}

#[derive(Deserialize)]
struct ServerRef<'a> {
    #[serde(borrow)]
    id: Option<Text<'a>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerOtherBody<'a> {
    #[serde(borrow)]
    repository: Option<Lenient<ServerRepo<'a>>>,
    #[serde(borrow)]
    pull_request: Option<Lenient<ServerPullRequest<'a>>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ServerPullRequest<'a> {
    #[serde(borrow)]
    to_ref: ServerPullRequestRef<'a>,
}

#[derive(Deserialize)]
struct ServerPullRequestRef<'a> {
    #[serde(borrow)]
    repository: ServerRepo<'a>,
}

#[derive(Deserialize)]
struct ServerRepo<'a> {
    #[serde(borrow)]
    slug: Text<'a>,
    #[serde(borrow)]
    project: ServerProject<'a>,
    #[serde(borrow)]
    links: Option<ServerLinks<'a>>,
}

#[derive(Deserialize)]
struct ServerProject<'a> {
    #[serde(borrow)]
    key: Text<'a>,
}

#[derive(Deserialize)]
struct ServerLinks<'a> {
    #[serde(borrow)]
    clone: Option<Vec<Link<'a>>>,
    #[serde(rename = "self", borrow)]
    web: Option<Vec<Link<'a>>>,
}

impl ServerRepo<'_> {
    fn into_repository(self) -> EventRepository {
        let (clone, web) = match self.links {
            Some(links) => (links.clone, links.web),
            None => (None, None),
        };
        let (http, ssh) = clone_links(clone);
        let web = web
            .and_then(|links| links.into_iter().next())
            .and_then(|l| non_empty(l.href));
        let full_name = format!("{}/{}", self.project.key.as_str(), self.slug.as_str());
        EventRepository::from_path(&full_name, http, ssh, web)
    }
}

/// Parses a Bitbucket Server / Data Center delivery.
pub(crate) fn parse_server(headers: &HeaderMap, body: &[u8]) -> Result<Parsed, ParseError> {
    let event_type = required_header(headers, &[X_EVENT_KEY])?;
    let delivery_id = first_header(headers, &["X-Request-Id"])?;
    let event = if event_type == "repo:refs_changed" {
        Event::Push(parse_server_push(body)?)
    } else {
        let other: ServerOtherBody<'_> = object(Sender::BitbucketServer, "body", body)?;
        let repo = lenient(other.repository)
            .or_else(|| lenient(other.pull_request).map(|pr| pr.to_ref.repository));
        Event::Other {
            repository: repo.map(ServerRepo::into_repository),
        }
    };
    Ok(Parsed {
        event_type: Some(event_type),
        delivery_id,
        event,
    })
}

/// The first change of `repo:refs_changed`, which lists one per ref updated.
fn parse_server_push(body: &[u8]) -> Result<Push, ParseError> {
    let body: ServerPushBody<'_> = object(Sender::BitbucketServer, "body", body)?;
    let mut changes = body.changes.unwrap_or_default().into_iter();
    let change = changes.next().ok_or(ParseError::MissingField {
        field: "changes[0]",
    })?;
    let more_refs = changes
        .filter_map(|c| non_empty(c.git_ref.and_then(|r| r.id).or(c.ref_id)))
        .collect();
    let git_ref = change.git_ref.and_then(|r| r.id).or(change.ref_id);
    let before = required(change.from_hash, "changes[0].fromHash")?;
    let after = required(change.to_hash, "changes[0].toHash")?;
    let kind = change.kind.as_ref().map(Text::as_str);
    Ok(Push {
        git_ref: required(git_ref, "changes[0].ref.id")?,
        created: kind == Some("ADD") || is_zero_id(&before),
        deleted: kind == Some("DELETE") || is_zero_id(&after),
        before,
        after,
        repository: body
            .repository
            .ok_or(ParseError::MissingField {
                field: "repository",
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
    use crate::header::tests::headers;

    fn cloud_push(change: &str) -> String {
        format!(
            r#"{{"push": {{"changes": [{change}]}},
              "repository": {{"scm": "git", "name": "foo", "full_name": "brydzewski/foo",
                "links": {{"self": {{"href": "https://api.bitbucket.org/2.0/repositories/brydzewski/foo"}},
                          "html": {{"href": "https://bitbucket.org/brydzewski/foo"}}}},
                "type": "repository", "uuid": "{{bc771cbf}}"}},
              "actor": {{"username": "brydzewski"}}}}"#
        )
    }

    fn push_of(parsed: Parsed) -> Push {
        match parsed.event {
            Event::Push(push) => push,
            other => panic!("not a push: {other:?}"),
        }
    }

    #[test]
    fn cloud_push_builds_ref_and_clone_urls() {
        let body = cloud_push(
            r#"{"forced": false, "created": false, "closed": false, "truncated": false,
                "old": {"type": "branch", "name": "master", "target": {"hash": "40e7580cf11311d84a6e5e97e2cbba6df1675750"}},
                "new": {"type": "branch", "name": "master", "target": {"hash": "141977fedf5cf35aa290ac87d4b5177ac4cd9de1"}},
                "commits": [{"hash": "141977fedf5cf35aa290ac87d4b5177ac4cd9de1"}]}"#,
        );
        let parsed = parse_cloud(
            &headers(&[("X-Event-Key", "repo:push"), ("X-Request-UUID", "uuid-1")]),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("uuid-1"));
        let push = push_of(parsed);
        assert_eq!(push.git_ref, "refs/heads/master");
        assert_eq!(push.before, "40e7580cf11311d84a6e5e97e2cbba6df1675750");
        assert_eq!(push.after, "141977fedf5cf35aa290ac87d4b5177ac4cd9de1");
        assert!(!push.created && !push.deleted);
        assert_eq!(push.repository.full_name(), "brydzewski/foo");
        assert_eq!(
            push.repository.urls(),
            [
                "https://bitbucket.org/brydzewski/foo.git",
                "git@bitbucket.org:brydzewski/foo.git",
                "https://bitbucket.org/brydzewski/foo",
            ]
        );
    }

    #[test]
    fn cloud_tag_delete_has_zero_after() {
        let body = cloud_push(
            r#"{"created": false, "closed": true, "new": null,
                "old": {"type": "tag", "name": "feature/x", "target": {"hash": "141977fedf5cf35aa290ac87d4b5177ac4cd9de1"}}}"#,
        );
        let push = push_of(
            parse_cloud(&headers(&[("X-Event-Key", "repo:push")]), body.as_bytes()).unwrap(),
        );
        assert_eq!(push.git_ref, "refs/tags/feature/x");
        assert_eq!(push.after, ZERO_ID);
        assert!(push.deleted && !push.created);
    }

    #[test]
    fn cloud_push_errors() {
        let empty = cloud_push("");
        let err =
            parse_cloud(&headers(&[("X-Event-Key", "repo:push")]), empty.as_bytes()).unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::MissingField {
                    field: "push.changes[0]"
                }
            ),
            "{err}"
        );

        let odd = cloud_push(r#"{"new": {"type": "bookmark", "name": "x"}}"#);
        let err =
            parse_cloud(&headers(&[("X-Event-Key", "repo:push")]), odd.as_bytes()).unwrap_err();
        assert!(matches!(err, ParseError::InvalidField { .. }), "{err}");
    }

    #[test]
    fn cloud_pull_request_is_other_with_repository() {
        let body = r#"{"pullrequest": {"id": 1}, "actor": {},
          "repository": {"full_name": "brydzewski/foo", "links": {"html": {"href": "https://bitbucket.org/brydzewski/foo"}}}}"#;
        let parsed = parse_cloud(
            &headers(&[("X-Event-Key", "pullrequest:created")]),
            body.as_bytes(),
        )
        .unwrap();
        let Event::Other {
            repository: Some(repo),
        } = parsed.event
        else {
            panic!("no repository")
        };
        assert_eq!(repo.full_name(), "brydzewski/foo");
    }

    const SERVER_REPO: &str = r#""repository": {"slug": "my-repo", "id": 1, "name": "My Repo",
        "scmId": "git", "project": {"key": "PRJ", "id": 2, "name": "Project"}, "public": false}"#;

    #[test]
    fn server_refs_changed() {
        let body = format!(
            r#"{{"eventKey": "repo:refs_changed", "date": "2018-07-05T18:22:00+0000", "actor": {{"name": "jcitizen"}},
              {SERVER_REPO},
              "changes": [{{"ref": {{"id": "refs/tags/v1.1.0", "displayId": "v1.1.0", "type": "TAG"}},
                "refId": "refs/tags/v1.1.0", "fromHash": "0000000000000000000000000000000000000000",
                "toHash": "823b2230a56056231c9425d63758fa87078a66b4", "type": "ADD"}}]}}"#
        );
        let parsed = parse_server(
            &headers(&[
                ("X-Event-Key", "repo:refs_changed"),
                ("X-Request-Id", "r-1"),
            ]),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.delivery_id.as_deref(), Some("r-1"));
        let push = push_of(parsed);
        assert_eq!(push.git_ref, "refs/tags/v1.1.0");
        assert_eq!(push.after, "823b2230a56056231c9425d63758fa87078a66b4");
        assert!(push.created && !push.deleted);
        assert_eq!(push.repository.full_name(), "PRJ/my-repo");
        assert!(push.repository.urls().is_empty());
        assert_eq!(push.repository.host, None);
    }

    #[test]
    fn server_pull_request_takes_target_repository_and_links() {
        let body = r#"{"eventKey": "pr:opened", "pullRequest": {"id": 1,
          "fromRef": {"id": "refs/heads/a", "repository": {"slug": "fork", "project": {"key": "~ME"}}},
          "toRef": {"id": "refs/heads/master", "repository": {"slug": "my-repo", "project": {"key": "PRJ"},
            "links": {"clone": [{"href": "ssh://git@example.com:7999/prj/my-repo.git", "name": "ssh"},
                                {"href": "http://example.com:7990/scm/prj/my-repo.git", "name": "http"}],
                      "self": [{"href": "http://example.com:7990/projects/PRJ/repos/my-repo/browse"}]}}}}}"#;
        let parsed =
            parse_server(&headers(&[("X-Event-Key", "pr:opened")]), body.as_bytes()).unwrap();
        let Event::Other {
            repository: Some(repo),
        } = parsed.event
        else {
            panic!("no repository")
        };
        assert_eq!(repo.full_name(), "PRJ/my-repo");
        assert_eq!(
            repo.urls(),
            [
                "http://example.com:7990/scm/prj/my-repo.git",
                "ssh://git@example.com:7999/prj/my-repo.git",
                "http://example.com:7990/projects/PRJ/repos/my-repo/browse",
            ]
        );
        assert_eq!(repo.host.as_deref(), Some("example.com:7990"));
    }

    #[test]
    fn server_push_without_changes_is_an_error() {
        let body = format!(r#"{{{SERVER_REPO}, "changes": []}}"#);
        let err = parse_server(
            &headers(&[("X-Event-Key", "repo:refs_changed")]),
            body.as_bytes(),
        )
        .unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::MissingField {
                    field: "changes[0]"
                }
            ),
            "{err}"
        );
    }
}
