//! Each target's seeds: the shared corpus where it has inputs, and a few of
//! our own (from Flux's documentation and the crates' examples) where not.

use std::path::Path;

use fluxhook_api::ReceiverType;
use fluxhook_corpus::Corpus;
use fluxhook_payload::Sender;
use fluxhook_register::{Forge, HostedRepository};
use fluxhook_signature::Policy;
use serde_json::json;
use url::Url;

use crate::Target;
use crate::input::{header_lines, join, join_fields};

pub(crate) fn of(target: Target, corpus: Option<&Path>) -> Vec<Vec<u8>> {
    let corpus = corpus.and_then(|root| Corpus::open(root).ok());
    match target {
        Target::Payload => payload(corpus.as_ref()),
        Target::Signature => signature(corpus.as_ref()),
        Target::Cel => cel(),
        Target::Oidc => crate::oidc::seeds(),
        Target::Receiver => receiver(),
        Target::Register => register(corpus.as_ref()),
        Target::Targeting => crate::targeting::seeds(&payload(corpus.as_ref())),
        Target::GitHubApp => crate::github_app::seeds(),
    }
}

fn payload_index(provider: Sender) -> u8 {
    let index = Sender::ALL.iter().position(|p| *p == provider);
    u8::try_from(index.unwrap_or(0)).unwrap_or(0)
}

fn payload(corpus: Option<&Corpus>) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    for entry in corpus.map(Corpus::entries).unwrap_or_default() {
        let (Ok(provider), Ok(body)) = (
            entry.provider.parse::<Sender>(),
            corpus.map_or(Ok(Vec::new()), |c| c.read_body(entry)),
        ) else {
            continue;
        };
        let headers = entry
            .headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_bytes()));
        let mut headers = header_lines(headers);
        headers.extend_from_slice(b"Content-Type: application/json\n");
        seeds.push(join(payload_index(provider), &[&headers, &body]));
    }
    let registries: [(Sender, &str, &str); 8] = [
        (
            Sender::Harbor,
            "",
            r#"{"type": "PUSH_ARTIFACT", "occur_at": 1680502375, "operator": "admin", "event_data": {"resources": [{"digest": "sha256:954b378c", "tag": "latest", "resource_url": "harbor.example/library/alpine:latest"}], "repository": {"name": "alpine", "namespace": "library", "repo_full_name": "library/alpine", "repo_type": "private"}}}"#,
        ),
        (
            Sender::DockerHub,
            "",
            r#"{"callback_url": "https://registry.hub.docker.com/u/svendowideit/testhook/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/", "push_data": {"pushed_at": 1417566161, "pusher": "trustedbuilder", "tag": "latest"}, "repository": {"name": "testhook", "namespace": "svendowideit", "repo_name": "svendowideit/testhook", "repo_url": "https://registry.hub.docker.com/u/svendowideit/testhook/"}}"#,
        ),
        (
            Sender::Quay,
            "",
            r#"{"name": "repository", "repository": "mynamespace/repository", "namespace": "mynamespace", "docker_url": "quay.io/mynamespace/repository", "homepage": "https://quay.io/repository/mynamespace/repository", "updated_tags": ["latest", "v1"]}"#,
        ),
        (
            Sender::Nexus,
            "X-Nexus-Webhook-Id: rm:repository:component\nX-Nexus-Webhook-Delivery: 7f3d7b0e\n",
            r#"{"timestamp": "2016-11-14T19:32:13.515+0000", "nodeId": "7FFA7361", "initiator": "anonymous/127.0.0.1", "repositoryName": "npmproxy", "action": "CREATED", "component": {"id": "08909bf0", "componentId": "08909bf0", "format": "npm", "name": "angular2", "group": "types", "version": "0.0.2"}}"#,
        ),
        (
            Sender::Acr,
            "",
            r#"{"id": "cb8c3971-9adc-488b-bdd8-43cbb4974ff5", "timestamp": "2017-11-17T16:52:01.343145347Z", "action": "push", "target": {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "size": 524, "digest": "sha256:80f0d5c8", "length": 524, "repository": "hello-world", "tag": "v1"}, "request": {"id": "3cbb6949", "host": "myregistry.azurecr.io", "method": "PUT", "useragent": "docker/17.09.0-ce"}}"#,
        ),
        (
            Sender::Gcr,
            "",
            // data: {"action":"INSERT","digest":"gcr.io/my-project/hello@sha256:6ec128e2","tag":"gcr.io/my-project/hello:latest"}
            r#"{"message": {"attributes": {"key": "value"}, "data": "eyJhY3Rpb24iOiJJTlNFUlQiLCJkaWdlc3QiOiJnY3IuaW8vbXktcHJvamVjdC9oZWxsb0BzaGEyNTY6NmVjMTI4ZTIiLCJ0YWciOiJnY3IuaW8vbXktcHJvamVjdC9oZWxsbzpsYXRlc3QifQ==", "messageId": "136969346945", "publishTime": "2014-10-02T15:01:23.045123456Z"}, "subscription": "projects/myproject/subscriptions/mysubscription"}"#,
        ),
        (
            Sender::CdEvents,
            "Ce-Type: dev.cdevents.change.merged.0.2.0\n",
            r#"{"context": {"version": "0.4.1", "id": "271069a8-fc18-44f1-b38f-9d70a1695819", "source": "/event/source/123", "type": "dev.cdevents.change.merged.0.2.0", "timestamp": "2023-03-20T14:27:05.315384Z"}, "subject": {"id": "mySubject123", "source": "/event/source/123", "type": "change", "content": {"repository": {"id": "cdevents/service", "source": "https://github.com"}}}}"#,
        ),
        (
            Sender::Generic,
            "Content-Type: application/x-www-form-urlencoded\n",
            "a=1&b=%20",
        ),
    ];
    for (provider, headers, body) in registries {
        seeds.push(join(
            payload_index(provider),
            &[headers.as_bytes(), body.as_bytes()],
        ));
    }
    seeds
}

fn signature(corpus: Option<&Corpus>) -> Vec<Vec<u8>> {
    let secret: &[u8] = b"It's a Secret to Everybody";
    let mut bodies: Vec<Vec<u8>> = vec![b"Hello, World!".to_vec()];
    if let Some(corpus) = corpus {
        bodies.extend(
            corpus
                .entries()
                .iter()
                .take(3)
                .filter_map(|e| corpus.read_body(e).ok()),
        );
    }
    let mut seeds = Vec::new();
    for (index, policy) in (0u8..).zip(Policy::ALL) {
        for body in &bodies {
            let Ok((name, value)) = policy.signing_scheme().sign(body, secret) else {
                continue;
            };
            let headers = header_lines([(name.as_str(), value.as_bytes())]);
            seeds.push(join(index, &[secret, body, &headers]));
        }
    }
    seeds
}

fn cel() -> Vec<Vec<u8>> {
    let resource = json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "metadata": {"name": "test-resource", "namespace": "flux-system", "labels": {"app": "podinfo"}},
    })
    .to_string();
    let request = json!({
        "image": {"source": "hello-world:v1.0.0", "tags": ["v1", "latest"]},
        "ref": "refs/heads/main",
        "commits": [{"id": "a1", "modified": ["deploy/app.yaml"]}],
        "count": 3.5,
    })
    .to_string();
    let claims = json!({
        "iss": "https://token.actions.githubusercontent.com",
        "sub": "repo:org/app:ref:refs/heads/main",
        "aud": ["notification-controller"],
        "repository": "org/app",
    })
    .to_string();
    // Flux's documentation and tests (notification-controller docs/spec/v1/receivers.md).
    let filters = [
        "res.metadata.name == 'test-resource' && req.image.source.split(':').last().value().startsWith('v')",
        "req.ref == 'refs/heads/main'",
        "has(req.image) && req.image.tags.exists(t, t == 'latest')",
        "req.commits.all(c, c.modified.exists(p, p.startsWith('deploy/')))",
        "req.?missing.orValue('') == '' && req.count > 3",
        "res.metadata.labels.app in ['podinfo', 'other'] && size(req.image.tags) == 2",
        "req.image.source.lowerAscii().replace('v', 'w').contains('w1') || sets.contains([1, 2], [1])",
        "base64.encode(b'x') == 'eA==' && double(req.count) >= 3.0 && int('7') == 7",
        "claims.repository == 'org/app' && claims.sub.matches('^repo:org/.*$')",
        "req.commits.map(c, c.id).filter(i, i != '').size() == 1",
    ];
    let mut seeds: Vec<Vec<u8>> = filters
        .iter()
        .map(|filter| {
            let with_claims = u8::from(filter.contains("claims"));
            join(
                with_claims,
                &[
                    filter.as_bytes(),
                    request.as_bytes(),
                    resource.as_bytes(),
                    claims.as_bytes(),
                ],
            )
        })
        .collect();
    seeds.push(join(
        2,
        &[
            b"repo=claims.repository\nowner=vars.repo.split('/')[0]",
            b"vars.owner == 'org'\nclaims.sub.startsWith('repo:' + vars.repo)\nclaims.aud.exists(a, a == 'notification-controller')",
            claims.as_bytes(),
        ],
    ));
    seeds
}

fn receiver() -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let resource = json!([{
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": "GitRepository",
        "name": "webapp",
        "namespace": "flux-system",
        "filter": "req.ref == 'refs/heads/main'",
    }, {
        "kind": "ImageRepository",
        "name": "*",
        "matchLabels": {"app": "podinfo"},
    }]);
    // `generic-oidc` has no Secret but providers: its own seed follows.
    for receiver_type in ReceiverType::KNOWN
        .iter()
        .filter(|t| **t != ReceiverType::GenericOidc)
    {
        let type_ = receiver_type.as_str();
        let receiver = json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": format!("{type_}-receiver"), "namespace": "flux-system", "generation": 2},
            "spec": {
                "type": type_,
                "interval": "10m",
                "events": ["push", "ping"],
                "secretRef": {"name": "receiver-token"},
                "resources": resource,
                "resourceFilter": "res.metadata.name != 'skip'",
            },
            "status": {"webhookPath": "/hook/0123", "observedGeneration": 1},
        });
        let secret: &[u8] = match receiver_type {
            ReceiverType::Gcr => b"token=abc123\nemail=push@p.iam.gserviceaccount.com\naudience=https://hooks.example/hook",
            _ => b"token=4d7b9c2a5e",
        };
        seeds.push(join_fields(&[
            receiver.to_string().as_bytes(),
            secret,
            b"/hook/0123",
        ]));
    }
    let oidc = json!({
        "apiVersion": "notification.toolkit.fluxcd.io/v1",
        "kind": "Receiver",
        "metadata": {"name": "oidc", "namespace": "apps"},
        "spec": {
            "type": "generic-oidc",
            "resources": [{"kind": "Kustomization", "name": "app"}],
            "oidcProviders": [{
                "issuerURL": "https://token.actions.githubusercontent.com",
                "audience": "fluxhook",
                "variables": [{"name": "repo", "expression": "claims.repository"}],
                "validations": [{"expression": "vars.repo == 'org/app'", "message": "wrong repository"}],
            }],
            "resourceFilter": "claims.sub != ''",
        },
    });
    seeds.push(join_fields(&[
        oidc.to_string().as_bytes(),
        b"",
        b"/hook/5f5b7a0f7c86b06a7c34a8e5d73f4a5a0b6d66b3f2f0a8b7b0ad3e2e3c9c1f0a",
    ]));
    seeds
}

fn register(corpus: Option<&Corpus>) -> Vec<Vec<u8>> {
    let mut seeds = Vec::new();
    let urls: [(Option<Forge>, &str, &str); 10] = [
        (None, "https://github.com/fluxcd/flux2", ""),
        (None, "git@github.com:fluxcd/flux2.git", ""),
        (None, "ssh://git@gitlab.com/group/sub/project.git", ""),
        (None, "https://bitbucket.org/workspace/repo.git", ""),
        (None, "https://octo.ghe.com/org/repo", ""),
        (
            Some(Forge::GITHUB),
            "https://github.example.com/org/repo.git",
            "https://github.example.com/api/v3",
        ),
        (
            Some(Forge::GITLAB),
            "https://gitlab.example.com/instance/group/project",
            "https://gitlab.example.com/instance/api/v4",
        ),
        (
            Some(Forge::BITBUCKET_SERVER),
            "ssh://git@bitbucket.example.com:7999/prj/repo.git",
            "https://bitbucket.example.com/rest/api/1.0",
        ),
        (
            Some(Forge::GITEA),
            "https://gitea.example.com/org/repo.git",
            "https://gitea.example.com/api/v1",
        ),
        (
            Some(Forge::GOGS),
            "http://gogs.example.com:3000/org/repo",
            "",
        ),
    ];
    for (forge, url, base) in urls {
        // 0 for none, else the place in `Forge::ALL` plus one.
        let index = forge.and_then(|forge| Forge::ALL.iter().position(|f| *f == forge));
        let selector = index.map_or(0, |i| u8::try_from(i + 1).unwrap_or(0));
        seeds.push(join(
            selector << 1,
            &[
                url.as_bytes(),
                base.as_bytes(),
                b"/hook/5f5b7a0f7c86b06a7c34a8e5d73f4a5a",
            ],
        ));
    }
    // Each host's replies, from its folder of the corpus (named as the host is).
    for (index, forge) in Forge::ALL.iter().enumerate() {
        let folder = forge.name();
        let api = format!("https://{folder}.example/{}", forge.profile().api_suffix);
        let Some(page_url) = Url::parse(&api)
            .ok()
            .and_then(|api| HostedRepository::new(*forge, api, "o", "r").hooks_list_url())
        else {
            continue;
        };
        let page_url = page_url.as_str();
        let selector = (u8::try_from(index).unwrap_or(0) << 1) | 1;
        let link = format!("Link: <{page_url}&page=2>; rel=\"next\"\nX-Total-Pages: 2\n");
        for file in ["hooks.json", "hook.json"] {
            let Some(body) = corpus.and_then(|c| c.read_host_api(folder, file).ok()) else {
                continue;
            };
            seeds.push(join(
                selector,
                &[page_url.as_bytes(), link.as_bytes(), &body],
            ));
        }
        seeds.push(join(
            selector,
            &[
                page_url.as_bytes(),
                b"",
                br#"{"message": "Bad credentials", "errors": [{"message": "x"}]}"#,
            ],
        ));
    }
    seeds
}
