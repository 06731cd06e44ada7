//! GitHub, Gitea/Forgejo and Gogs: Gitea and Gogs send GitHub's payload shapes
//! under their own headers.

use http::HeaderMap;
use serde::Deserialize;

use super::{CommitPaths, EventRepository, Ping, Push, changed_paths, required};
use crate::header::{X_FORGEJO_EVENT, X_GITEA_EVENT, X_GITHUB_EVENT, X_GOGS_EVENT};
use crate::read::{Lenient, Text, first_header, lenient, non_empty, object, required_header};
use crate::{Event, ParseError, Parsed, Sender};

/// The headers one host of the family sends.
struct Headers {
    event: &'static [&'static str],
    delivery: &'static [&'static str],
}

fn headers_of(sender: Sender) -> Headers {
    match sender {
        // Forgejo sends X-Forgejo-* beside Gitea's headers; either names the event.
        Sender::Gitea => Headers {
            event: &[X_FORGEJO_EVENT, X_GITEA_EVENT],
            delivery: &["X-Forgejo-Delivery", "X-Gitea-Delivery"],
        },
        Sender::Gogs => Headers {
            event: &[X_GOGS_EVENT],
            delivery: &["X-Gogs-Delivery"],
        },
        _ => Headers {
            event: &[X_GITHUB_EVENT],
            delivery: &["X-GitHub-Delivery"],
        },
    }
}

#[derive(Deserialize)]
struct PushBody<'a> {
    #[serde(rename = "ref", borrow)]
    git_ref: Option<Text<'a>>,
    #[serde(borrow)]
    before: Option<Text<'a>>,
    #[serde(borrow)]
    after: Option<Text<'a>>,
    // GitHub sends these; Gitea and Gogs do not (the zero ids tell).
    created: Option<bool>,
    deleted: Option<bool>,
    #[serde(borrow)]
    commits: Option<Vec<CommitPaths<'a>>>,
    #[serde(borrow)]
    repository: Option<RepoBody<'a>>,
}

#[derive(Deserialize)]
struct PingBody<'a> {
    #[serde(borrow)]
    zen: Option<Text<'a>>,
    hook_id: Option<u64>,
    #[serde(borrow)]
    repository: Option<Lenient<RepoBody<'a>>>,
}

#[derive(Deserialize)]
struct OtherBody<'a> {
    #[serde(borrow)]
    repository: Option<Lenient<RepoBody<'a>>>,
}

#[derive(Deserialize)]
struct RepoBody<'a> {
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    full_name: Option<Text<'a>>,
    #[serde(borrow)]
    owner: Option<OwnerBody<'a>>,
    #[serde(borrow)]
    html_url: Option<Text<'a>>,
    #[serde(borrow)]
    clone_url: Option<Text<'a>>,
    #[serde(borrow)]
    ssh_url: Option<Text<'a>>,
    // GitHub, Gitea and Gogs send `default_branch`; GitHub's pushes also
    // `master_branch`, the same name. Read leniently: neither is needed.
    #[serde(borrow)]
    default_branch: Option<Lenient<Text<'a>>>,
    #[serde(borrow)]
    master_branch: Option<Lenient<Text<'a>>>,
}

#[derive(Deserialize)]
struct OwnerBody<'a> {
    #[serde(borrow)]
    login: Option<Text<'a>>,
    #[serde(borrow)]
    username: Option<Text<'a>>,
    #[serde(borrow)]
    name: Option<Text<'a>>,
}

impl RepoBody<'_> {
    fn into_repository(self) -> EventRepository {
        // `full_name` is the host's own "owner/name"; a few GitHub events
        // (check_run, status) omit it, so it is rebuilt from the owner then.
        let owner = self
            .owner
            .and_then(|o| non_empty(o.login.or(o.username).or(o.name)));
        let full_name = match (non_empty(self.full_name), owner) {
            (Some(full_name), _) => full_name,
            (None, Some(owner)) => format!("{owner}/{}", self.name.as_str()),
            (None, None) => self.name.into_string(),
        };
        EventRepository::from_path(
            &full_name,
            non_empty(self.clone_url),
            non_empty(self.ssh_url),
            non_empty(self.html_url),
        )
        .with_default_branch(
            non_empty(lenient(self.default_branch)).or(non_empty(lenient(self.master_branch))),
        )
    }
}

/// Parses a delivery of GitHub, Gitea/Forgejo or Gogs (`sender` says which).
pub(crate) fn parse(
    sender: Sender,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Parsed, ParseError> {
    let names = headers_of(sender);
    let event_type = required_header(headers, names.event)?;
    let delivery_id = first_header(headers, names.delivery)?;
    let event = match event_type.as_str() {
        "push" => Event::Push(parse_push(sender, body)?),
        // Gitea and Gogs send no ping; a "ping" header from them is read like any other event.
        "ping" if sender == Sender::GitHub => {
            let ping: PingBody<'_> = object(sender, "body", body)?;
            Event::Ping(Ping {
                zen: non_empty(ping.zen),
                hook_id: ping.hook_id,
                repository: lenient(ping.repository).map(RepoBody::into_repository),
            })
        }
        _ => {
            let other: OtherBody<'_> = object(sender, "body", body)?;
            Event::Other {
                repository: lenient(other.repository).map(RepoBody::into_repository),
            }
        }
    };
    Ok(Parsed {
        event_type: Some(event_type),
        delivery_id,
        event,
    })
}

fn parse_push(sender: Sender, body: &[u8]) -> Result<Push, ParseError> {
    let push: PushBody<'_> = object(sender, "body", body)?;
    let before = required(push.before, "before")?;
    let after = required(push.after, "after")?;
    Ok(Push {
        git_ref: required(push.git_ref, "ref")?,
        created: push.created.unwrap_or_else(|| super::is_zero_id(&before)),
        deleted: push.deleted.unwrap_or_else(|| super::is_zero_id(&after)),
        before,
        after,
        repository: push
            .repository
            .ok_or(ParseError::MissingField {
                field: "repository",
            })?
            .into_repository(),
        changed_paths: changed_paths(push.commits),
        more_refs: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use crate::header::tests::headers;

    /// Shaped like GitHub's push of a branch (trimmed).
    const GITHUB_PUSH: &str = r#"{
      "ref": "refs/heads/master",
      "before": "a10867b14bb761a232cd80139fbd4c0d33264240",
      "after": "199eddf46df50de8d02e99bf1c5fdb4101338224",
      "created": false, "deleted": false, "forced": false, "base_ref": null,
      "commits": [
        {"id": "199eddf46df50de8d02e99bf1c5fdb4101338224", "distinct": true,
         "added": [], "removed": ["old.txt"], "modified": ["README.md"]},
        {"id": "2", "added": ["docs/a.md"], "removed": [], "modified": ["README.md"]}
      ],
      "head_commit": {"id": "199eddf46df50de8d02e99bf1c5fdb4101338224"},
      "repository": {
        "id": 135493233, "name": "Hello-World", "full_name": "Codertocat/Hello-World",
        "owner": {"name": "Codertocat", "login": "Codertocat", "id": 21031067},
        "private": false, "html_url": "https://github.com/Codertocat/Hello-World",
        "created_at": 1529003481, "pushed_at": 1529003531,
        "git_url": "git://github.com/Codertocat/Hello-World.git",
        "ssh_url": "git@github.com:Codertocat/Hello-World.git",
        "clone_url": "https://github.com/Codertocat/Hello-World.git"
      },
      "pusher": {"name": "Codertocat"}, "sender": {"login": "Codertocat"}
    }"#;

    #[test]
    fn github_push() {
        let parsed = parse(
            Sender::GitHub,
            &headers(&[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            ]),
            GITHUB_PUSH.as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("push"));
        assert_eq!(
            parsed.delivery_id.as_deref(),
            Some("72d3162e-cc78-11e3-81ab-4c9367dc0958")
        );
        let Event::Push(push) = parsed.event else {
            panic!("not a push: {:?}", parsed.event)
        };
        assert_eq!(push.git_ref, "refs/heads/master");
        assert_eq!(push.before, "a10867b14bb761a232cd80139fbd4c0d33264240");
        assert_eq!(push.after, "199eddf46df50de8d02e99bf1c5fdb4101338224");
        assert!(!push.created && !push.deleted);
        assert_eq!(push.changed_paths, ["README.md", "old.txt", "docs/a.md"]);
        let repo = &push.repository;
        assert_eq!(repo.full_name(), "Codertocat/Hello-World");
        assert_eq!(repo.host.as_deref(), Some("github.com"));
        assert_eq!(
            repo.urls(),
            [
                "https://github.com/Codertocat/Hello-World.git",
                "git@github.com:Codertocat/Hello-World.git",
                "https://github.com/Codertocat/Hello-World",
            ]
        );
    }

    #[test]
    fn gitea_push_derives_created_and_deleted_from_zero_ids() {
        let body = r#"{
          "ref": "refs/heads/feature", "before": "0000000000000000000000000000000000000000",
          "after": "4522cbcefc20728a5b72b3a86af35e608622c514", "compare_url": "",
          "commits": [{"id": "4522cb", "added": [], "removed": [], "modified": ["README.md"]}],
          "repository": {"id": 61, "owner": {"id": 25, "login": "gogits", "username": "gogits"},
            "name": "hello-world", "full_name": "gogits/hello-world",
            "html_url": "http://try.gitea.io/gogits/hello-world",
            "ssh_url": "git@localhost:gogits/hello-world.git",
            "clone_url": "http://try.gitea.io/gogits/hello-world.git"}
        }"#;
        for event_header in ["X-Gitea-Event", "X-Forgejo-Event"] {
            let mut map = headers(&[("X-Gitea-Delivery", "d-1")]);
            map.insert(event_header, http::HeaderValue::from_static("push"));
            let parsed = parse(Sender::Gitea, &map, body.as_bytes()).unwrap();
            assert_eq!(parsed.delivery_id.as_deref(), Some("d-1"));
            let Event::Push(push) = parsed.event else {
                panic!("not a push")
            };
            assert!(push.created && !push.deleted);
            assert_eq!(push.repository.full_name(), "gogits/hello-world");
            assert_eq!(push.repository.host.as_deref(), Some("try.gitea.io"));
            assert_eq!(push.changed_paths, ["README.md"]);
        }
    }

    #[test]
    fn gogs_create_is_other_with_repository() {
        let body = r#"{"ref": "v1.0.0", "ref_type": "tag", "sha": "abc",
          "repository": {"id": 61, "owner": {"login": "gogits"}, "name": "hello-world",
            "full_name": "gogits/hello-world", "html_url": "http://try.gogs.io/gogits/hello-world"}}"#;
        let parsed = parse(
            Sender::Gogs,
            &headers(&[("X-Gogs-Event", "create"), ("X-Gogs-Delivery", "g-1")]),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.event_type.as_deref(), Some("create"));
        assert_eq!(parsed.delivery_id.as_deref(), Some("g-1"));
        let Event::Other {
            repository: Some(repo),
        } = parsed.event
        else {
            panic!("no repository: {:?}", parsed.event)
        };
        assert_eq!(repo.full_name(), "gogits/hello-world");
        assert_eq!(repo.urls(), ["http://try.gogs.io/gogits/hello-world"]);
    }

    #[test]
    fn github_ping_with_and_without_repository() {
        let body = r#"{"zen": "Anything added dilutes everything else.", "hook_id": 109948940,
          "hook": {"type": "Repository", "id": 109948940, "events": ["*"]},
          "repository": {"name": "Hello-World", "full_name": "Octocoders/Hello-World",
            "owner": {"login": "Octocoders"}}}"#;
        let parsed = parse(
            Sender::GitHub,
            &headers(&[("X-GitHub-Event", "ping")]),
            body.as_bytes(),
        )
        .unwrap();
        assert_eq!(parsed.delivery_id, None);
        let Event::Ping(ping) = parsed.event else {
            panic!("not a ping")
        };
        assert_eq!(
            ping.zen.as_deref(),
            Some("Anything added dilutes everything else.")
        );
        assert_eq!(ping.hook_id, Some(109948940));
        assert_eq!(
            ping.repository.map(|r| r.full_name()).as_deref(),
            Some("Octocoders/Hello-World")
        );

        let org = r#"{"zen": "z", "hook_id": 1, "organization": {"login": "Octocoders"}}"#;
        let parsed = parse(
            Sender::GitHub,
            &headers(&[("X-GitHub-Event", "ping")]),
            org.as_bytes(),
        )
        .unwrap();
        assert!(matches!(
            parsed.event,
            Event::Ping(Ping {
                repository: None,
                ..
            })
        ));
    }

    #[test]
    fn repository_without_full_name_is_rebuilt_from_owner() {
        let body = r#"{"action": "created", "check_run": {"id": 1},
          "repository": {"id": 1, "name": "Hello-World", "owner": {"login": "octocat"},
            "html_url": "https://github.com/octocat/Hello-World"}}"#;
        let parsed = parse(
            Sender::GitHub,
            &headers(&[("X-GitHub-Event", "check_run")]),
            body.as_bytes(),
        )
        .unwrap();
        let Event::Other {
            repository: Some(repo),
        } = parsed.event
        else {
            panic!("no repository")
        };
        assert_eq!(repo.full_name(), "octocat/Hello-World");
    }

    #[test]
    fn other_events_tolerate_unexpected_repository_shapes() {
        let parsed = parse(
            Sender::GitHub,
            &headers(&[("X-GitHub-Event", "issues")]),
            br#"{"repository": "just a string"}"#,
        )
        .unwrap();
        assert!(matches!(parsed.event, Event::Other { repository: None }));
    }

    #[test]
    fn push_errors_name_the_field() {
        let push_headers = headers(&[("X-GitHub-Event", "push")]);
        let err = parse(
            Sender::GitHub,
            &push_headers,
            br#"{"ref": "refs/heads/x", "before": "a", "repository": {"name": "r"}}"#,
        )
        .unwrap_err();
        assert!(
            matches!(err, ParseError::MissingField { field: "after" }),
            "{err}"
        );

        let err = parse(Sender::GitHub, &push_headers, br#"{"ref": 5}"#).unwrap_err();
        assert!(matches!(err, ParseError::Json { .. }), "{err}");
        assert!(err.to_string().contains("line 1 column 9"), "{err}");

        let err = parse(Sender::GitHub, &HeaderMap::new(), b"{}").unwrap_err();
        assert!(matches!(
            err,
            ParseError::MissingHeader {
                name: "X-GitHub-Event"
            }
        ));
    }
}
