//! Properties of the parser over generated input: it never panics, pushes
//! built from random facts give the same facts back for every Git host, and
//! limits give their typed errors.

#![allow(clippy::unwrap_used, clippy::panic)]

use bytes::Bytes;
use fluxhook_payload::{
    Event, ParseError, Parser, Push, RefKind, Sender, ZERO_ID, is_zero_id, parse,
};
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;
use serde_json::{Value, json};

/// Every header some sender reads, and a few it does not.
const HEADER_NAMES: &[&str] = &[
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "X-Gitea-Event",
    "X-Gitea-Delivery",
    "X-Forgejo-Event",
    "X-Gogs-Event",
    "X-Gitlab-Event",
    "X-Gitlab-Event-UUID",
    "X-Event-Key",
    "X-Request-UUID",
    "X-Request-Id",
    "X-Nexus-Webhook-Id",
    "X-Nexus-Webhook-Delivery",
    "Content-Type",
    "ce-type",
    "User-Agent",
    "X-Hook-UUID",
];

/// Event names that lead each Git host to its push, ping or other parser.
const EVENT_VALUES: &[&str] = &[
    "push",
    "ping",
    "pull_request",
    "Push Hook",
    "Tag Push Hook",
    "Merge Request Hook",
    "repo:push",
    "repo:refs_changed",
    "pr:opened",
    "application/cloudevents+json",
    "dev.cdevents.pipelinerun.queued.0.2.0",
];

/// Header values as a server may receive them: any bytes HTTP allows,
/// including obs-text (0x80-0xFF) that is not visible ASCII.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    prop_oneof![
        proptest::sample::select(EVENT_VALUES).prop_map(HeaderValue::from_static),
        proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..24)
            .prop_filter_map("HTTP header value", |bytes| {
                HeaderValue::from_bytes(&bytes).ok()
            }),
    ]
}

fn headers() -> impl Strategy<Value = HeaderMap> {
    proptest::collection::vec(
        (proptest::sample::select(HEADER_NAMES), header_value()),
        0..6,
    )
    .prop_map(|pairs| {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(name, value);
        }
        map
    })
}

/// Keys the parsers read, so that generated JSON reaches their typed fields.
const KEYS: &[&str] = &[
    "ref",
    "before",
    "after",
    "created",
    "deleted",
    "commits",
    "added",
    "modified",
    "removed",
    "repository",
    "full_name",
    "name",
    "owner",
    "login",
    "html_url",
    "clone_url",
    "ssh_url",
    "project",
    "path_with_namespace",
    "push",
    "changes",
    "new",
    "old",
    "type",
    "target",
    "hash",
    "links",
    "html",
    "href",
    "clone",
    "slug",
    "key",
    "fromHash",
    "toHash",
    "refId",
    "eventType",
    "id",
    "resource",
    "refUpdates",
    "pullRequest",
    "toRef",
    "zen",
    "hook_id",
    "event_data",
    "resources",
    "push_data",
    "tag",
    "docker_url",
    "updated_tags",
    "action",
    "message",
    "data",
    "context",
    "subject",
    "content",
    "specversion",
    "version",
    "links",
    "linkType",
    "tags",
    "customData",
    "source",
    "timestamp",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9/._ -]{0,12}".prop_map(Value::from),
        Just(Value::from(ZERO_ID)),
        Just(Value::from("refs/heads/main")),
    ];
    leaf.prop_recursive(5, 64, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..6).prop_map(
                |pairs| {
                    Value::Object(
                        pairs
                            .into_iter()
                            .map(|(key, value)| (key.to_owned(), value))
                            .collect(),
                    )
                }
            ),
        ]
    })
}

fn sender() -> impl Strategy<Value = Sender> {
    proptest::sample::select(Sender::ALL.to_vec())
}

/// Whatever the input, parsing returns; and so does building the JSON tree.
fn parse_returns(sender: Sender, headers: &HeaderMap, body: Vec<u8>) {
    if let Ok(webhook) = parse(sender, headers, Bytes::from(body)) {
        assert_eq!(webhook.sender(), sender);
        let _ = webhook.json();
    }
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_bytes(
        sender in sender(),
        headers in headers(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        parse_returns(sender, &headers, body);
    }

    #[test]
    fn never_panics_on_arbitrary_json(
        sender in sender(),
        headers in headers(),
        body in json_value(),
    ) {
        parse_returns(sender, &headers, body.to_string().into_bytes());
    }

    #[test]
    fn invalid_header_values_are_named(
        value in proptest::collection::vec(0x80u8..=0xff, 1..8),
    ) {
        let mut headers = HeaderMap::new();
        headers.insert("X-GitHub-Event", HeaderValue::from_bytes(&value).unwrap());
        let err = parse(Sender::GitHub, &headers, Bytes::from_static(b"{}")).unwrap_err();
        prop_assert!(
            matches!(err, ParseError::InvalidHeader { name: "X-GitHub-Event" }),
            "{err}"
        );
    }
}

// ---- Round trips: random facts in each host's push payload ----

/// The facts a push carries, generated.
#[derive(Debug, Clone)]
struct Facts {
    tag: bool,
    ref_name: String,
    before: String,
    after: String,
    namespace: String,
    name: String,
    commits: Vec<Vec<String>>,
}

impl Facts {
    fn git_ref(&self) -> String {
        let prefix = if self.tag {
            "refs/tags/"
        } else {
            "refs/heads/"
        };
        format!("{prefix}{}", self.ref_name)
    }

    fn full_name(&self) -> String {
        format!("{}/{}", self.namespace, self.name)
    }

    fn commits_json(&self) -> Value {
        self.commits
            .iter()
            .map(|paths| {
                let (added, rest) = paths.split_at(paths.len() / 2);
                json!({"id": "c", "added": added, "modified": rest, "removed": []})
            })
            .collect()
    }

    /// Paths in payload order, each once.
    fn changed_paths(&self) -> Vec<String> {
        let mut paths: Vec<String> = Vec::new();
        for path in self.commits.iter().flatten() {
            if !paths.contains(path) {
                paths.push(path.clone());
            }
        }
        paths
    }
}

fn object_id() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[0-9a-f]{40}",
        1 => Just(ZERO_ID.to_owned()),
    ]
}

fn facts(max_namespace_segments: usize) -> impl Strategy<Value = Facts> {
    let segment = "[A-Za-z0-9][A-Za-z0-9_.-]{0,12}";
    (
        any::<bool>(),
        // Escapes and non-ASCII too: JSON strings that cannot be borrowed.
        "[A-Za-z0-9][A-Za-z0-9._/\"\\\\é-]{0,20}",
        (object_id(), object_id()).prop_filter("one side exists", |(b, a)| {
            !(is_zero_id(b) && is_zero_id(a))
        }),
        proptest::collection::vec(segment, 1..=max_namespace_segments),
        segment,
        proptest::collection::vec(
            proptest::collection::vec("(docs|deploy|src)/[a-c]\\.yaml", 0..4),
            0..4,
        ),
    )
        .prop_map(
            |(tag, ref_name, (before, after), namespace, name, commits)| Facts {
                tag,
                ref_name,
                before,
                after,
                namespace: namespace.join("/"),
                name,
                commits,
            },
        )
}

fn github_family_body(facts: &Facts, with_flags: bool) -> Value {
    let full_name = facts.full_name();
    let mut body = json!({
        "ref": facts.git_ref(),
        "before": facts.before,
        "after": facts.after,
        "commits": facts.commits_json(),
        "repository": {
            "name": facts.name,
            "full_name": full_name,
            "owner": {"login": facts.namespace},
            "html_url": format!("https://git.example/{full_name}"),
            "clone_url": format!("https://git.example/{full_name}.git"),
            "ssh_url": format!("git@git.example:{full_name}.git"),
        },
    });
    if with_flags {
        body["created"] = is_zero_id(&facts.before).into();
        body["deleted"] = is_zero_id(&facts.after).into();
    }
    body
}

fn gitlab_body(facts: &Facts) -> Value {
    let full_name = facts.full_name();
    json!({
        "object_kind": if facts.tag { "tag_push" } else { "push" },
        "ref": facts.git_ref(),
        "before": facts.before,
        "after": facts.after,
        "commits": facts.commits_json(),
        "project": {
            "name": "Display Name",
            "path_with_namespace": full_name,
            "web_url": format!("https://git.example/{full_name}"),
            "git_http_url": format!("https://git.example/{full_name}.git"),
            "git_ssh_url": format!("git@git.example:{full_name}.git"),
        },
    })
}

fn bitbucket_cloud_body(facts: &Facts) -> Value {
    let side = |hash: &str| {
        (!is_zero_id(hash)).then(|| {
            json!({
                "type": if facts.tag { "tag" } else { "branch" },
                "name": facts.ref_name,
                "target": {"hash": hash},
            })
        })
    };
    json!({
        "push": {"changes": [{
            "old": side(&facts.before),
            "new": side(&facts.after),
            "created": is_zero_id(&facts.before),
            "closed": is_zero_id(&facts.after),
        }]},
        "repository": {
            "full_name": facts.full_name(),
            "links": {"html": {"href": format!("https://git.example/{}", facts.full_name())}},
        },
    })
}

fn bitbucket_server_body(facts: &Facts) -> Value {
    let kind = match (is_zero_id(&facts.before), is_zero_id(&facts.after)) {
        (true, _) => "ADD",
        (_, true) => "DELETE",
        _ => "UPDATE",
    };
    json!({
        "eventKey": "repo:refs_changed",
        "changes": [{
            "ref": {"id": facts.git_ref(), "displayId": facts.ref_name},
            "refId": facts.git_ref(),
            "fromHash": facts.before,
            "toHash": facts.after,
            "type": kind,
        }],
        "repository": {"slug": facts.name, "project": {"key": facts.namespace}},
    })
}

fn azure_body(facts: &Facts) -> Value {
    json!({
        "id": "delivery-1",
        "eventType": "git.push",
        "resource": {
            "refUpdates": [{
                "name": facts.git_ref(),
                "oldObjectId": facts.before,
                "newObjectId": facts.after,
            }],
            "repository": {
                "name": facts.name,
                "remoteUrl": format!(
                    "https://dev.azure.com/{}/_git/{}", facts.namespace, facts.name
                ),
            },
        },
    })
}

fn headers_for(sender: Sender) -> HeaderMap {
    let (name, value) = match sender {
        Sender::GitHub => ("x-github-event", "push"),
        Sender::Gitea => ("x-gitea-event", "push"),
        Sender::Gogs => ("x-gogs-event", "push"),
        Sender::GitLab => ("x-gitlab-event", "Push Hook"),
        Sender::BitbucketCloud => ("x-event-key", "repo:push"),
        Sender::BitbucketServer => ("x-event-key", "repo:refs_changed"),
        _ => ("content-type", "application/json"),
    };
    let mut headers = HeaderMap::new();
    headers.insert(name, HeaderValue::from_static(value));
    headers
}

fn parse_push(sender: Sender, body: &Value) -> Push {
    let webhook = parse(sender, &headers_for(sender), Bytes::from(body.to_string())).unwrap();
    match webhook.event() {
        Event::Push(push) => push.clone(),
        other => panic!("{sender}: not a push: {other:?}"),
    }
}

fn assert_same_facts(push: &Push, facts: &Facts) {
    assert_eq!(push.git_ref, facts.git_ref());
    assert_eq!(
        push.ref_kind(),
        if facts.tag {
            RefKind::Tag
        } else {
            RefKind::Branch
        }
    );
    assert_eq!(push.ref_name(), facts.ref_name);
    assert_eq!(push.before, facts.before);
    assert_eq!(push.after, facts.after);
    assert_eq!(push.created, is_zero_id(&facts.before));
    assert_eq!(push.deleted, is_zero_id(&facts.after));
    assert_eq!(push.repository.namespace, facts.namespace);
    assert_eq!(push.repository.name, facts.name);
}

proptest! {
    #[test]
    fn github_family_round_trips(facts in facts(1)) {
        for (sender, with_flags) in [
            (Sender::GitHub, true),
            (Sender::Gitea, false),
            (Sender::Gogs, false),
        ] {
            let push = parse_push(sender, &github_family_body(&facts, with_flags));
            assert_same_facts(&push, &facts);
            let full_name = facts.full_name();
            prop_assert_eq!(push.repository.host.as_deref(), Some("git.example"));
            prop_assert_eq!(push.repository.urls(), [
                format!("https://git.example/{full_name}.git"),
                format!("git@git.example:{full_name}.git"),
                format!("https://git.example/{full_name}"),
            ]);
            prop_assert_eq!(&push.changed_paths, &facts.changed_paths());
        }
    }

    #[test]
    fn gitlab_round_trips_with_subgroups(facts in facts(4)) {
        let push = parse_push(Sender::GitLab, &gitlab_body(&facts));
        assert_same_facts(&push, &facts);
        prop_assert_eq!(push.repository.full_name(), facts.full_name());
        prop_assert_eq!(push.repository.urls().len(), 3);
        prop_assert_eq!(&push.changed_paths, &facts.changed_paths());
    }

    #[test]
    fn bitbucket_cloud_round_trips(facts in facts(1)) {
        let push = parse_push(Sender::BitbucketCloud, &bitbucket_cloud_body(&facts));
        assert_same_facts(&push, &facts);
        let full_name = facts.full_name();
        prop_assert_eq!(push.repository.urls(), [
            format!("https://git.example/{full_name}.git"),
            format!("git@git.example:{full_name}.git"),
            format!("https://git.example/{full_name}"),
        ]);
    }

    #[test]
    fn bitbucket_server_round_trips(facts in facts(1)) {
        let push = parse_push(Sender::BitbucketServer, &bitbucket_server_body(&facts));
        assert_same_facts(&push, &facts);
        prop_assert!(push.repository.urls().is_empty());
    }

    #[test]
    fn azure_devops_round_trips(facts in facts(2)) {
        let push = parse_push(Sender::AzureDevOps, &azure_body(&facts));
        assert_same_facts(&push, &facts);
        prop_assert_eq!(push.repository.host.as_deref(), Some("dev.azure.com"));
    }
}

// ---- Limits ----

/// A GitHub push with `junk` in a field no parser reads.
fn push_with(junk: &str) -> Bytes {
    let facts = Facts {
        tag: false,
        ref_name: "main".into(),
        before: ZERO_ID.into(),
        after: "199eddf46df50de8d02e99bf1c5fdb4101338224".into(),
        namespace: "o".into(),
        name: "r".into(),
        commits: vec![],
    };
    let body = github_family_body(&facts, true).to_string();
    let body = body.replacen('{', &format!("{{\"junk\": {junk}, "), 1);
    Bytes::from(body)
}

#[test]
fn deep_nesting_never_overflows_the_stack() {
    // 300,000 levels: deep enough for any stack, small enough for the 3 MiB limit.
    let depth = 300_000;
    let deep_array = format!("{}{}", "[".repeat(depth), "]".repeat(depth));

    // Skipped without recursion: the push is read, the tree is refused.
    let webhook = parse(
        Sender::GitHub,
        &headers_for(Sender::GitHub),
        push_with(&deep_array),
    )
    .unwrap();
    assert!(webhook.push().is_some());
    let err = webhook.json().unwrap_err();
    assert!(
        matches!(
            err,
            ParseError::TooDeep {
                location: "body",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("127"), "{err}");

    // Where a parser reads, deep input is a typed error.
    let deep_object = format!("{}{}", "{\"ref\":".repeat(depth), "}".repeat(depth));
    for sender in Sender::ALL {
        let result = parse(
            sender,
            &headers_for(sender),
            Bytes::from(deep_object.clone()),
        );
        match result {
            Ok(webhook) => {
                assert_eq!(sender, Sender::Generic);
                assert!(matches!(webhook.json(), Err(ParseError::TooDeep { .. })));
            }
            Err(ParseError::Json { .. } | ParseError::MissingField { .. }) => {}
            Err(other) => panic!("{sender}: {other}"),
        }
    }
}

#[test]
fn json_tree_nests_up_to_the_limit() {
    let nested = |depth: usize| {
        let body = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        parse(Sender::Generic, &HeaderMap::new(), Bytes::from(body))
            .unwrap()
            .json()
    };
    assert!(nested(Parser::MAX_DEPTH).is_ok());
    assert!(matches!(
        nested(Parser::MAX_DEPTH + 1),
        Err(ParseError::TooDeep {
            location: "body",
            line: 1,
            ..
        })
    ));
}

#[test]
fn bodies_over_the_limit_are_refused_for_every_provider() {
    let parser = Parser::new().with_max_body_bytes(64);
    for sender in Sender::ALL {
        let err = parser
            .parse(sender, &headers_for(sender), Bytes::from(vec![b' '; 65]))
            .unwrap_err();
        assert!(
            matches!(
                err,
                ParseError::BodyTooLarge {
                    size: 65,
                    limit: 64
                }
            ),
            "{sender}: {err}"
        );
        // At the limit, the size is accepted and the body judged on its content.
        let at_limit = parser.parse(sender, &headers_for(sender), Bytes::from(vec![b' '; 64]));
        assert!(!matches!(at_limit, Err(ParseError::BodyTooLarge { .. })));
    }
}

#[test]
fn default_limit_is_flux_3_mib() {
    assert_eq!(Parser::default().max_body_bytes(), 3 * 1024 * 1024);
    let body = push_with(&format!("\"{}\"", "x".repeat(3 * 1024 * 1024)));
    let err = parse(Sender::GitHub, &headers_for(Sender::GitHub), body).unwrap_err();
    assert!(matches!(err, ParseError::BodyTooLarge { .. }), "{err}");
}

#[test]
fn generic_accepts_any_body() {
    for body in [&b""[..], b"not json", b"\xff\xfe", br#"{"a": 1}"#] {
        let webhook = parse(
            Sender::Generic,
            &HeaderMap::new(),
            Bytes::copy_from_slice(body),
        )
        .unwrap();
        assert_eq!(webhook.event(), &Event::Other { repository: None });
        assert_eq!(webhook.body(), body);
        assert_eq!(webhook.json().is_ok(), body.starts_with(b"{"));
    }
}
