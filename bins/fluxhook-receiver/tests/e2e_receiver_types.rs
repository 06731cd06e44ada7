//! Every Receiver type, end to end: the real `fluxhook-receiver` binary
//! against the fake Kubernetes API, with deliveries shaped like each
//! sender's own. A genuine delivery is answered 200 and its GitRepository is
//! patched with `reconcile.fluxcd.io/requestedAt`; a forged one, one for an
//! event the Receiver does not handle, or a payload the type cannot read is
//! answered 400 and patches nothing.
//!
//! One sandbox serves every case, each type with its own Receiver and
//! GitRepository, and every refusal is checked against the API server's
//! request log (no PATCH at all). The test walks [`ReceiverType::KNOWN`]:
//! what a delivery must prove, which events a type filters on and whether it
//! reads the body all come from the type itself (`authentication`,
//! `event_header`, `payload`), so a new type is checked without a new case.
//! What cannot come from the type is its sender's delivery: a body and headers
//! only the sender defines, in [`sample`], the one place a new type adds data
//! (without it, the test fails naming the type). What one sender does that no
//! property of its type says follows, one function each. `generic-oidc` and
//! `gcr` tokens come from local test issuers (the binary's `--gcr-issuer-url`
//! points at one).
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use fluxhook_api::{Authentication, DEFAULT_OIDC_AUDIENCE, Payload, ReceiverType};
use fluxhook_oidc::testing::TestIssuer;
use fluxhook_sandbox::{Sandbox, demo};
use fluxhook_signature::Policy;
use http::StatusCode;
use serde_json::{Value, json};

use e2e_support::{
    Delivery, NS, assert_accepted, assert_refused, base64, git_repository, has_condition, secret,
    start, stop, wait_for_status, webhook_path,
};

const BAD_REQUEST: StatusCode = StatusCode::BAD_REQUEST;
/// The Google service account a `gcr` Receiver's Secret names, and its audience.
const GCR_EMAIL: &str = "gcr-push@example-project.iam.gserviceaccount.com";
const GCR_AUDIENCE: &str = "https://flux-webhook.example.com/gcr";

/// The issuers of the ID tokens: Google's (for `gcr`), the `generic-oidc`
/// Receiver's provider, and one it does not trust.
struct Issuers {
    google: TestIssuer,
    provider: TestIssuer,
    stranger: TestIssuer,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_receiver_type_accepts_genuine_deliveries_and_refuses_the_rest() {
    let issuers = Issuers {
        google: TestIssuer::start_rs256().await.unwrap(),
        provider: TestIssuer::start().await.unwrap(),
        stranger: TestIssuer::start().await.unwrap(),
    };
    let sandbox = start(&[&format!("--gcr-issuer-url={}", issuers.google.url())]).await;

    let mut served = BTreeMap::new();
    for type_ in ReceiverType::KNOWN {
        let receiver = check_type(&sandbox, &type_, &issuers).await;
        served.insert(type_.as_str().to_owned(), receiver);
    }

    generic_oidc_rules(&sandbox, &served["generic-oidc"], &issuers).await;
    github_content_and_gitea(&sandbox, &served["github"]).await;
    bitbucket_server(&sandbox, &served["bitbucket"]).await;
    dockerhub_fields(&sandbox, &served["dockerhub"]).await;
    quay_fields(&sandbox, &served["quay"]).await;
    nexus_hex_and_fields(&sandbox, &served["nexus"]).await;
    acr_fields(&sandbox, &served["acr"]).await;
    gcr_filter(&sandbox, &served["gcr"]).await;
    cdevents_shapes(&sandbox, &served["cdevents"]).await;
    specs_flux_refuses_stall(&sandbox).await;

    stop(sandbox).await;
}

/// A delivery as the sender of a type makes it, before it proves itself,
/// and what its Receiver's spec says besides `type`, `secretRef` and
/// `resources`.
struct Sample {
    /// Merged into the Receiver's spec (`events`, a filter, an OIDC
    /// provider's rules: `issuerURL` is added).
    spec: Value,
    /// Headers and body as the sender sends them.
    delivery: Delivery,
    /// For a type that filters on events: one of its sender's events that
    /// `spec.events` does not list.
    unlisted_event: Option<&'static str>,
    /// For a type proven by an ID token: the claims its sender's tokens
    /// carry besides `iss`, `aud` and the times.
    claims: Value,
}

impl Sample {
    fn new(delivery: Delivery) -> Self {
        Self {
            spec: json!({}),
            delivery,
            unlisted_event: None,
            claims: json!({}),
        }
    }

    /// Listing `events` in the spec; `unlisted` is another of the sender's.
    fn events(mut self, events: &[&str], unlisted: &'static str) -> Self {
        self.spec["events"] = json!(events);
        self.unlisted_event = Some(unlisted);
        self
    }

    fn spec(mut self, field: &str, value: Value) -> Self {
        self.spec[field] = value;
        self
    }
}

/// A Receiver of one type, served: what the sender-specific checks need.
struct Served {
    path: String,
    /// Its GitRepository in [`NS`].
    repo: String,
    proof: Proof,
}

/// What makes a delivery genuine for a [`Served`] Receiver.
enum Proof {
    /// Knowing the path.
    Path,
    /// The Secret's token, in the header and form `verifier` checks.
    Token { verifier: Policy, token: String },
    /// `Authorization: Bearer` with an ID token the Receiver trusts.
    IdToken(String),
}

impl Proof {
    fn prove(&self, delivery: Delivery) -> Delivery {
        match self {
            Proof::Path => delivery,
            Proof::Token { verifier, token } => delivery.signed(*verifier, token),
            Proof::IdToken(token) => delivery.bearer(token),
        }
    }
}

/// Serves a Receiver of `type_` for a GitRepository of its own and checks
/// what the type says of it: a genuine delivery is taken; one without its
/// proof, with a wrong one or (for a signature over the body) a tampered
/// body is refused; an event the spec does not list is refused; a body cut
/// in half is refused where the type decodes it and taken where it does not.
async fn check_type(s: &Sandbox, type_: &ReceiverType, issuers: &Issuers) -> Served {
    let Some(sample) = sample(type_) else {
        panic!("{type_}: no sample delivery; add its sender's to `sample`")
    };
    let name = type_.as_str().to_owned();
    let repo = format!("app-{name}");
    let token = format!("{name}-token");
    git_repository(s, NS, &repo, json!({}));
    let mut spec = json!({
        "type": name,
        "resources": [{"kind": "GitRepository", "name": repo}]
    });
    if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), sample.spec.clone()) {
        spec.extend(extra);
    }
    let mut secret_data = vec![("token", token.as_str())];

    // The proof, and deliveries that lack it or forge it.
    let unproven = sample.delivery.clone();
    let (proof, forged) = match type_.authentication() {
        Authentication::Path => (Proof::Path, vec![]),
        Authentication::Token { verifier, .. } => {
            let mut forged = vec![
                ("no proof", unproven.clone()),
                (
                    "wrong key",
                    unproven.clone().signed(verifier, "not-the-token"),
                ),
            ];
            if signs_the_body(verifier) {
                let tampered = unproven
                    .clone()
                    .signed(verifier, &token)
                    .with_body(br#"{"tampered": true}"#.to_vec());
                forged.push(("tampered body", tampered));
            }
            let proof = Proof::Token {
                verifier,
                token: token.clone(),
            };
            (proof, forged)
        }
        Authentication::GoogleIdToken => {
            secret_data.extend([("email", GCR_EMAIL), ("audience", GCR_AUDIENCE)]);
            let google = &issuers.google;
            let id_token = |email: &str, audience: &str| {
                let mut claims = claims(google, audience, &sample.claims);
                claims["email"] = json!(email);
                claims["email_verified"] = json!(true);
                google.mint(&claims)
            };
            let forged = vec![
                ("no token", unproven.clone()),
                (
                    "another account",
                    unproven.clone().bearer(&id_token(
                        "someone@else.iam.gserviceaccount.com",
                        GCR_AUDIENCE,
                    )),
                ),
                (
                    "another audience",
                    unproven
                        .clone()
                        .bearer(&id_token(GCR_EMAIL, "https://elsewhere.example.com")),
                ),
            ];
            (Proof::IdToken(id_token(GCR_EMAIL, GCR_AUDIENCE)), forged)
        }
        Authentication::OidcProviders => {
            for provider in spec["oidcProviders"].as_array_mut().into_iter().flatten() {
                provider["issuerURL"] = json!(issuers.provider.url());
            }
            let mint = |issuer: &TestIssuer, audience: &str| {
                issuer.mint(&claims(issuer, audience, &sample.claims))
            };
            let provider = &issuers.provider;
            let forged = vec![
                ("no token", unproven.clone()),
                (
                    "another audience",
                    unproven.clone().bearer(&mint(provider, "someone-else")),
                ),
                (
                    "another issuer",
                    unproven
                        .clone()
                        .bearer(&mint(&issuers.stranger, DEFAULT_OIDC_AUDIENCE)),
                ),
            ];
            (
                Proof::IdToken(mint(provider, DEFAULT_OIDC_AUDIENCE)),
                forged,
            )
        }
        Authentication::Refused => panic!("{type_}: a known type is served"),
    };
    if type_.requires_secret() {
        let secret_name = format!("{name}-secret");
        secret(s, &secret_name, &secret_data);
        spec["secretRef"] = json!({"name": secret_name});
    }
    e2e_support::receiver(s, &name, spec);
    let path = webhook_path(s, &name).await;

    for (case, delivery) in forged {
        let case = format!("{type_}: {case}");
        assert_refused(s, &case, &path, &delivery, BAD_REQUEST, &repo).await;
    }
    if let Some(header) = type_.event_header() {
        let Some(event) = sample.unlisted_event else {
            panic!("{type_} filters on {header}: its sample needs an unlisted event")
        };
        let unlisted = proof.prove(unproven.clone().header(header, event));
        let case = format!("{type_}: {header}: {event}, not in spec.events");
        assert_refused(s, &case, &path, &unlisted, BAD_REQUEST, &repo).await;
    }
    let genuine = proof.prove(unproven.clone());
    assert_accepted(
        s,
        &format!("{type_}: genuine"),
        &path,
        &genuine,
        &[repo.as_str()],
    )
    .await;

    let half = &unproven.body[..unproven.body.len() / 2];
    let cut = proof.prove(unproven.clone().with_body(half.to_vec()));
    let case = format!("{type_}: the body cut in half");
    match type_.payload() {
        Payload::Unread { .. } | Payload::GitEvent { .. } => {
            assert_accepted(s, &case, &path, &cut, &[repo.as_str()]).await;
        }
        Payload::Notification { .. } | Payload::CdEvent => {
            assert_refused(s, &case, &path, &cut, BAD_REQUEST, &repo).await;
        }
        Payload::Unsupported => panic!("{type_}: a known type is read"),
    }
    // go-github's ValidatePayload takes JSON or a form, by Content-Type,
    // before the signature: anything else is refused, signed or not.
    if let Payload::GitEvent {
        hub_delivery: true, ..
    } = type_.payload()
    {
        let text = proof.prove(unproven.clone().header("content-type", "text/plain"));
        let case = format!("{type_}: text/plain");
        assert_refused(s, &case, &path, &text, BAD_REQUEST, &repo).await;
    }
    Served { path, repo, proof }
}

/// Whether `verifier` checks a signature over the body (an HMAC), rather
/// than a token that any body may carry.
fn signs_the_body(verifier: Policy) -> bool {
    let signed = Delivery::raw("one body").signed(verifier, "key");
    verifier
        .verify(&signed.headers, b"another body", b"key")
        .is_err()
}

/// `issuer`'s claims for `audience`, with `extra`.
fn claims(issuer: &TestIssuer, audience: &str, extra: &Value) -> Value {
    let mut claims = issuer.claims(audience);
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra.clone()) {
        claims.extend(extra);
    }
    claims
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The sample of `type_`'s sender (see [`Sample`]), `None` for a type
/// without one yet. Keyed by the type's name: data, one entry a type.
fn sample(type_: &ReceiverType) -> Option<Sample> {
    let sample = match type_.as_str() {
        // Knowing the path is the only proof: any body will do.
        "generic" => Sample::new(Delivery::json(
            &json!({"ref": "refs/heads/main", "after": "0d1a26e6"}),
        )),
        "generic-hmac" => Sample::new(Delivery::json(
            &json!({"source": "ci", "pipeline": "build-42", "status": "succeeded"}),
        )),
        "generic-oidc" => Sample {
            claims: json!({
                "repository": "example/app",
                "ref": "refs/heads/main",
                "sub": "repo:example/app:ref:refs/heads/main",
            }),
            ..Sample::new(Delivery::json(
                &json!({"workflow": "deploy", "run_id": 9_876_543_210_u64}),
            ))
        }
        .spec(
            "oidcProviders",
            json!([{
                "variables": [{"name": "repo", "expression": "claims.repository"}],
                "validations": [{
                    "expression": "vars.repo == 'example/app' && claims.ref == 'refs/heads/main'",
                    "message": "only main of example/app may deploy"
                }]
            }]),
        ),
        "github" => Sample::new(github_push()).events(&["ping", "push"], "issues"),
        "gitlab" => Sample::new(gitlab_push()).events(&["Push Hook"], "Tag Push Hook"),
        "bitbucket" => Sample::new(bitbucket_cloud_push())
            .events(&["repo:push", "repo:refs_changed"], "repo:fork"),
        "harbor" => Sample::new(harbor_push()),
        "dockerhub" => Sample::new(Delivery::json(&dockerhub_body())),
        "quay" => Sample::new(Delivery::json(&quay_body())),
        "nexus" => Sample::new(nexus_created(&nexus_body())),
        "acr" => Sample::new(Delivery::json(&acr_body())),
        "gcr" => Sample {
            claims: json!({"sub": "113426153258163529111"}),
            ..Sample::new(gcr_push(&json!({
                "action": "INSERT",
                "digest": GCR_DIGEST,
                "tag": "gcr.io/example-project/app-gcr:v1.2.3"
            })))
        }
        // Flux's documented filter: reconcile the object the tag names.
        .spec(
            "resourceFilter",
            json!("req.tag.contains(res.metadata.name)"),
        ),
        "cdevents" => Sample::new(cdevent(CDEVENT_TYPE, &cd_event(CD_CHANGE_MERGED, "change")))
            .events(&[CDEVENT_TYPE], "cd.pipelinerun.queued.v1"),
        _ => return None,
    };
    Some(sample)
}

fn github_push() -> Delivery {
    Delivery::json(&demo::github_push_body())
        .header("user-agent", "GitHub-Hookshot/5f9e3c1")
        .header("x-github-event", "push")
        .header("x-github-delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("x-github-hook-id", "292430182")
}

/// What a `github` Receiver takes besides GitHub's JSON: Gitea's
/// deliveries, form-encoded pushes; and what it refuses of them.
async fn github_content_and_gitea(s: &Sandbox, github: &Served) {
    let (path, repo) = (&github.path, github.repo.as_str());
    let push = github_push();

    // Gitea (and Forgejo) deliver to `github` Receivers with GitHub's event
    // and signature headers besides their own (go-gitea/gitea
    // services/webhook/deliver.go sets X-GitHub-Event and X-Hub-Signature-256).
    let gitea_body = json!({
        "ref": "refs/heads/main",
        "before": "28e1879d029cb852e4844d9c718537df08844e03",
        "after": "bffeb74224043ba2feb48d137756c8a9331c449a",
        "compare_url": "https://gitea.example.com/example/app/compare/28e1879...bffeb74",
        "commits": [{
            "id": "bffeb74224043ba2feb48d137756c8a9331c449a",
            "message": "Bump app to v1.2.4\n",
            "url": "https://gitea.example.com/example/app/commit/bffeb74",
            "author": {"name": "gitea", "email": "gitea@example.com", "username": "gitea"}
        }],
        "repository": {
            "id": 1,
            "owner": {"id": 1, "login": "example", "username": "example"},
            "name": "app",
            "full_name": "example/app",
            "html_url": "https://gitea.example.com/example/app",
            "clone_url": "https://gitea.example.com/example/app.git",
            "default_branch": "main"
        },
        "pusher": {"id": 1, "login": "gitea", "username": "gitea"},
        "sender": {"id": 1, "login": "gitea", "username": "gitea"}
    });
    let Proof::Token { token, .. } = &github.proof else {
        panic!("github: a token type")
    };
    let gitea = Delivery::json(&gitea_body)
        .header("user-agent", "Go-http-client/1.1")
        .header("x-gitea-event", "push")
        .header("x-gitea-event-type", "push")
        .header("x-gitea-delivery", "a6c7e1b0-5f0f-4c1e-9d0b-3f7a2f2b9c11")
        .header("x-github-event", "push")
        .header("x-github-event-type", "push")
        .header("x-github-delivery", "a6c7e1b0-5f0f-4c1e-9d0b-3f7a2f2b9c11")
        .signed(Policy::GiteaSignature, token)
        .signed(Policy::HubSignature, token);
    assert_accepted(s, "gitea push to a github receiver", path, &gitea, &[repo]).await;
    let gitea_release = gitea
        .clone()
        .header("x-gitea-event", "release")
        .header("x-gitea-event-type", "release")
        .header("x-github-event", "release")
        .header("x-github-event-type", "release");
    let case = "gitea event not in spec.events";
    assert_refused(s, case, path, &gitea_release, BAD_REQUEST, repo).await;
    // Flux reads X-GitHub-Event alone (go-github's WebHookType): a delivery
    // naming its event only in Gitea's header has the empty event.
    let mut gitea_only = gitea.clone();
    gitea_only.headers.remove("x-github-event");
    let case = "event only in X-Gitea-Event";
    assert_refused(s, case, path, &gitea_only, BAD_REQUEST, repo).await;

    let mut untyped = github.proof.prove(push.clone());
    untyped.headers.remove("content-type");
    let case = "github no Content-Type";
    assert_refused(s, case, path, &untyped, BAD_REQUEST, repo).await;
    let form_body = format!(
        "payload={}",
        url_escape(&demo::github_push_body().to_string())
    );
    let form = github.proof.prove(
        push.clone()
            .with_body(form_body.into_bytes())
            .header("content-type", "application/x-www-form-urlencoded"),
    );
    assert_accepted(s, "github form-encoded push", path, &form, &[repo]).await;
    let bad_form = github.proof.prove(
        push.with_body(b"payload=%7B;ref=main".to_vec())
            .header("content-type", "application/x-www-form-urlencoded"),
    );
    let case = "github unreadable form";
    assert_refused(s, case, path, &bad_form, BAD_REQUEST, repo).await;
}

/// Percent-escapes every byte but unreserved ones, as a form encoder does.
fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn gitlab_push() -> Delivery {
    let body = json!({
        "object_kind": "push",
        "event_name": "push",
        "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
        "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "ref": "refs/heads/main",
        "checkout_sha": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        "user_username": "jsmith",
        "project_id": 15,
        "project": {
            "id": 15,
            "name": "app",
            "path_with_namespace": "example/app",
            "web_url": "https://gitlab.example.com/example/app",
            "git_http_url": "https://gitlab.example.com/example/app.git",
            "default_branch": "main"
        },
        "commits": [],
        "total_commits_count": 0
    });
    Delivery::json(&body)
        .header("user-agent", "GitLab/17.0.0")
        .header("x-gitlab-event", "Push Hook")
        .header("x-gitlab-instance", "https://gitlab.example.com")
        .header(
            "x-gitlab-webhook-uuid",
            "5bb3e1d4-09ab-4c7c-8d8c-0b9c1c7b1f3e",
        )
        .header(
            "x-gitlab-event-uuid",
            "13792a34-cac6-4fda-95a8-c58e00a3954e",
        )
}

fn bitbucket_cloud_push() -> Delivery {
    let body = json!({
        "push": {"changes": [{
            "new": {"type": "branch", "name": "main",
                    "target": {"type": "commit", "hash": "709d658dc5b6d6afcd46049c2f332ee3f515a67d"}},
            "old": {"type": "branch", "name": "main",
                    "target": {"type": "commit", "hash": "1e65c05c1d5171631d92438a13901ca7dae9618c"}},
            "created": false, "forced": false, "closed": false
        }]},
        "repository": {
            "type": "repository",
            "name": "app",
            "full_name": "example/app",
            "uuid": "{3f5b2d8e-8d0c-4f55-9a7c-6c2f4a9e0b11}",
            "links": {"html": {"href": "https://bitbucket.org/example/app"}}
        },
        "actor": {"type": "user", "display_name": "Jane Doe", "nickname": "jdoe"}
    });
    Delivery::json(&body)
        .header("user-agent", "Bitbucket-Webhooks/2.0")
        .header("x-event-key", "repo:push")
        .header("x-hook-uuid", "cb6f8b3a-3d7e-4b2c-9e1f-2a8d5c4b7e90")
        .header("x-request-uuid", "0f3d8c2a-7b1e-4f6d-a5c9-8e2b1d4f7a63")
        .header("x-attempt-number", "1")
}

/// A `bitbucket` Receiver takes Bitbucket Server's pushes too.
async fn bitbucket_server(s: &Sandbox, bitbucket: &Served) {
    let server_body = json!({
        "eventKey": "repo:refs_changed",
        "date": "2024-05-01T10:00:00+0000",
        "actor": {"name": "admin", "emailAddress": "admin@example.com", "id": 1,
                  "displayName": "Administrator", "slug": "admin", "type": "NORMAL"},
        "repository": {
            "slug": "app", "id": 84, "name": "app", "scmId": "git", "state": "AVAILABLE",
            "project": {"key": "EX", "id": 84, "name": "Example", "type": "NORMAL"}
        },
        "changes": [{
            "ref": {"id": "refs/heads/main", "displayId": "main", "type": "BRANCH"},
            "refId": "refs/heads/main",
            "fromHash": "ecddabb624f6f5ba43816f5926e580a5f680a932",
            "toHash": "178864a7d521b6f5e720b386b2c2b0ef8563e0dc",
            "type": "UPDATE"
        }]
    });
    let server = bitbucket.proof.prove(
        Delivery::json(&server_body)
            .header(
                "user-agent",
                "Atlassian HttpClient 4.2.0 / Bitbucket-9.0.0 (9000000) / Default",
            )
            .header("x-event-key", "repo:refs_changed")
            .header("x-request-id", "a0b2c1d3-4e5f-6789-abcd-ef0123456789"),
    );
    let case = "bitbucket server push";
    assert_accepted(
        s,
        case,
        &bitbucket.path,
        &server,
        &[bitbucket.repo.as_str()],
    )
    .await;
}

fn harbor_push() -> Delivery {
    let body = json!({
        "type": "PUSH_ARTIFACT",
        "occur_at": 1_714_557_600,
        "operator": "admin",
        "event_data": {
            "resources": [{
                "digest": "sha256:954b378c375d852eb3c63ab88978f640b4348b01c1b3456a024a81536dafbbf4",
                "tag": "v1.2.3",
                "resource_url": "harbor.example.com/library/app:v1.2.3"
            }],
            "repository": {"date_created": 1_714_550_000, "name": "app", "namespace": "library",
                           "repo_full_name": "library/app", "repo_type": "private"}
        }
    });
    Delivery::json(&body).header("user-agent", "Go-http-client/1.1")
}

fn dockerhub_body() -> Value {
    json!({
        "callback_url": "https://registry.hub.docker.com/u/example/app/hook/2141b5bi5i5b02bec211i4eeih0242eg11000a/",
        "push_data": {"pushed_at": 1_714_557_600, "pusher": "example", "tag": "v1.2.3"},
        "repository": {
            "comment_count": 0, "date_created": 1_700_000_000, "is_private": false,
            "name": "app", "namespace": "example", "owner": "example",
            "repo_name": "example/app",
            "repo_url": "https://registry.hub.docker.com/u/example/app/",
            "star_count": 3, "status": "Active"
        }
    })
}

/// Flux reads push_data.tag and repository.repo_url with Go's json.Decoder:
/// a field it reads, of another JSON type, refuses; fields it does not
/// declare never refuse a delivery, and what follows the first JSON value
/// is not read.
async fn dockerhub_fields(s: &Sandbox, dockerhub: &Served) {
    let (path, repo) = (&dockerhub.path, dockerhub.repo.as_str());
    let body = dockerhub_body();
    let bad =
        Delivery::raw("<html>not a Docker Hub push</html>").header("content-type", "text/html");
    assert_refused(s, "dockerhub HTML", path, &bad, BAD_REQUEST, repo).await;
    let mut wrong_type = body.clone();
    wrong_type["push_data"]["tag"] = json!(123);
    let wrong_type = Delivery::json(&wrong_type);
    let case = "dockerhub tag not a string";
    assert_refused(s, case, path, &wrong_type, BAD_REQUEST, repo).await;
    let mut other_fields = body.clone();
    other_fields["repository"]["repo_name"] = json!({"not": "a string"});
    other_fields["callback_url"] = json!(42);
    let trailing = format!("{body}\n--trailer--");
    for (case, delivery) in [
        (
            "dockerhub, odd fields Flux skips",
            Delivery::json(&other_fields),
        ),
        (
            "dockerhub, text after the JSON",
            Delivery::raw(trailing).header("content-type", "application/json"),
        ),
    ] {
        assert_accepted(s, case, path, &delivery, &[repo]).await;
    }
}

fn quay_body() -> Value {
    json!({
        "name": "app",
        "repository": "example/app",
        "namespace": "example",
        "docker_url": "quay.io/example/app",
        "homepage": "https://quay.io/repository/example/app",
        "updated_tags": ["v1.2.3", "latest"]
    })
}

/// Flux declares docker_url and updated_tags only, and decodes them.
async fn quay_fields(s: &Sandbox, quay: &Served) {
    let (path, repo) = (&quay.path, quay.repo.as_str());
    let list = Delivery::json(&json!(["quay.io/example/app"]));
    assert_refused(s, "quay, a list", path, &list, BAD_REQUEST, repo).await;
    let tags_not_a_list = Delivery::json(&json!({"docker_url": "quay.io/example/app",
                                                "updated_tags": "v1.2.3"}));
    let case = "quay tags not a list";
    assert_refused(s, case, path, &tags_not_a_list, BAD_REQUEST, repo).await;
    let mut other_fields = quay_body();
    other_fields["namespace"] = json!(7);
    other_fields["repository"] = json!(null);
    let other_fields = Delivery::json(&other_fields);
    let case = "quay, odd fields Flux skips";
    assert_accepted(s, case, path, &other_fields, &[repo]).await;
}

fn nexus_body() -> Value {
    json!({
        "timestamp": "2024-05-01T10:00:00.000+0000",
        "nodeId": "52905B51-085CCABB-CEBBEAAD-16F1E4D6-C3290A87",
        "initiator": "admin/10.0.0.12",
        "repositoryName": "docker-hosted",
        "action": "CREATED",
        "component": {
            "id": "08909bf0c86cf6c9b1ac1e2a9ad6e39e",
            "componentId": "ZG9ja2VyLWhvc3RlZDowODkwOWJmMGM4NmNmNmM5",
            "format": "docker",
            "name": "example/app",
            "version": "v1.2.3"
        }
    })
}

fn nexus_created(body: &Value) -> Delivery {
    Delivery::json(body)
        .header("user-agent", "Nexus/3.68.1-02 (OSS)")
        .header("x-nexus-webhook-id", "rm:repository:component")
        .header(
            "x-nexus-webhook-delivery",
            "7f4c8b2e-1a3d-4e5f-9b6c-2d8e0f1a3b5c",
        )
}

/// Flux compares the signature with the lower-case hex of the HMAC, as a
/// string, and decodes `{action, repositoryName}` only.
async fn nexus_hex_and_fields(s: &Sandbox, nexus: &Served) {
    let (path, repo) = (&nexus.path, nexus.repo.as_str());
    let genuine = nexus.proof.prove(nexus_created(&nexus_body()));
    let signature = genuine.headers["x-nexus-webhook-signature"]
        .to_str()
        .unwrap()
        .to_ascii_uppercase();
    let upper = genuine.header("x-nexus-webhook-signature", &signature);
    assert_refused(s, "nexus upper-case hex", path, &upper, BAD_REQUEST, repo).await;
    let mut audit = nexus_body();
    audit["component"] = json!("not an object");
    let audit = nexus.proof.prove(nexus_created(&audit));
    let case = "nexus, odd fields Flux skips";
    assert_accepted(s, case, path, &audit, &[repo]).await;
}

fn acr_body() -> Value {
    json!({
        "id": "cb8c3971-9adc-488b-xxxx-43cbb4974ff5",
        "timestamp": "2024-05-01T10:00:00.000000000Z",
        "action": "push",
        "target": {
            "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "size": 524,
            "digest": "sha256:80f0d5c8786bb9e621a45ece0db56d11cdc624ad20da9fe62e9d25490f331d7d",
            "length": 524,
            "repository": "app",
            "tag": "v1.2.3"
        },
        "request": {
            "id": "3cbb6949-7549-4fa1-xxxx-a6d5451dffc7",
            "host": "example.azurecr.io",
            "method": "PUT",
            "useragent": "docker/24.0.7 go/go1.20.10 os/linux arch/amd64"
        }
    })
}

/// Flux declares action, target.repository and target.tag only: a
/// delivery without an action is taken.
async fn acr_fields(s: &Sandbox, acr: &Served) {
    let mut other_fields = acr_body();
    other_fields.as_object_mut().unwrap().remove("action");
    other_fields["request"] = json!("not an object");
    let other_fields = Delivery::json(&other_fields);
    let case = "acr, no action and odd fields";
    assert_accepted(s, case, &acr.path, &other_fields, &[acr.repo.as_str()]).await;
}

const GCR_DIGEST: &str = "gcr.io/example-project/app-gcr@sha256:6ec128e26cd5e3b5d5d8b1d8a8e0e9d0b4c1f2a3b4c5d6e7f8091a2b3c4d5e6f";

/// A Pub/Sub push of `notification`, as Google sends it.
fn gcr_push(notification: &Value) -> Delivery {
    let envelope = json!({
        "message": {
            "attributes": {},
            "data": base64(&notification.to_string()),
            "messageId": "2070443601311540",
            "message_id": "2070443601311540",
            "publishTime": "2024-05-01T10:00:00.000Z",
            "publish_time": "2024-05-01T10:00:00.000Z"
        },
        "subscription": "projects/example-project/subscriptions/flux-gcr"
    });
    Delivery::json(&envelope).header(
        "user-agent",
        "APIs-Google; (+https://developers.google.com/webmasters/APIs-Google.html)",
    )
}

/// `req` is what Flux re-encodes of the notification: action, digest and
/// tag, each there, empty when missing. A push by digest has no tag, so the
/// filter is false, not an error; a notification without an action is
/// taken as Flux takes it.
async fn gcr_filter(s: &Sandbox, gcr: &Served) {
    let (path, repo) = (&gcr.path, gcr.repo.as_str());
    let no_data = gcr.proof.prove(Delivery::json(
        &json!({"message": {"messageId": "1"}, "subscription": "x"}),
    ));
    assert_refused(s, "gcr no data", path, &no_data, BAD_REQUEST, repo).await;
    let push = |notification: Value| gcr.proof.prove(gcr_push(&notification));
    for (case, notification, reconciled) in [
        (
            "gcr push by digest",
            json!({"action": "INSERT", "digest": GCR_DIGEST}),
            false,
        ),
        (
            "gcr notification without action",
            json!({"tag": "gcr.io/example-project/app-gcr:v1.2.4"}),
            true,
        ),
        (
            "gcr other image",
            json!({"action": "INSERT", "tag": "gcr.io/example-project/other:v1"}),
            false,
        ),
        (
            "gcr, a field Flux does not read",
            json!({"action": "INSERT", "tag": "gcr.io/p/app-gcr:v2", "extra": 1}),
            true,
        ),
    ] {
        let repos: &[&str] = if reconciled { &[repo] } else { &[] };
        assert_accepted(s, case, path, &push(notification), repos).await;
    }
}

/// The event type Flux filters on is the CloudEvent's, from the Ce-Type
/// header; the body is a CDEvent of its own type. A delivery whose header
/// says `cd.change.merged.v1` and whose body is a
/// `dev.cdevents.change.merged.0.2.0` is accepted by Flux.
const CDEVENT_TYPE: &str = "cd.change.merged.v1";
const CD_CHANGE_MERGED: &str = "dev.cdevents.change.merged.0.2.0";

/// The CDEvents 0.4 shape the SDK Flux vendors reads: `context.version`.
fn cd_event(event_type: &str, subject_type: &str) -> Value {
    json!({
        "context": {
            "version": "0.4.1",
            "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
            "source": "/ci/example/app",
            "type": event_type,
            "timestamp": "2024-05-01T10:00:00.315384Z"
        },
        "subject": {
            "id": "change-1234",
            "source": "/ci/example/app",
            "type": subject_type,
            "content": {"repository": {"id": "example/app", "source": "https://github.com"}}
        }
    })
}

/// CloudEvents binary mode: the CDEvent is the body, the CloudEvent
/// attributes are headers.
fn cdevent(ce_type: &str, body: &Value) -> Delivery {
    Delivery::json(body)
        .header("ce-specversion", "1.0")
        .header("ce-id", "271069a8-fc18-44f1-b38f-9d70a1695819")
        .header("ce-source", "/ci/example/app")
        .header("ce-type", ce_type)
}

/// What the CDEvents SDK Flux uses refuses and takes of a CDEvent.
async fn cdevents_shapes(s: &Sandbox, cdevents: &Served) {
    let (path, repo) = (&cdevents.path, cdevents.repo.as_str());
    let merged = CD_CHANGE_MERGED;
    let body_type_only = cdevent(merged, &cd_event(merged, "change"));
    let case = "cdevents body type in spec.events, not the Ce-Type";
    assert_refused(s, case, path, &body_type_only, BAD_REQUEST, repo).await;
    let mut no_subject = cd_event(merged, "change");
    no_subject.as_object_mut().unwrap().remove("subject");
    let no_subject = cdevent(CDEVENT_TYPE, &no_subject);
    let case = "cdevents without a subject";
    assert_refused(s, case, path, &no_subject, BAD_REQUEST, repo).await;
    let wrong_subject = cdevent(CDEVENT_TYPE, &cd_event(merged, "pipelineRun"));
    let case = "cdevents subject type of another event";
    assert_refused(s, case, path, &wrong_subject, BAD_REQUEST, repo).await;
    // CDEvents 0.5 names the version `specversion`: the 0.4 SDK misses it.
    let mut v05 = cd_event(merged, "change");
    let context = v05["context"].as_object_mut().unwrap();
    let version = context.remove("version").unwrap();
    context.insert("specversion".to_owned(), version);
    let v05 = cdevent(CDEVENT_TYPE, &v05);
    let case = "cdevents context.specversion";
    assert_refused(s, case, path, &v05, BAD_REQUEST, repo).await;
    // Structured mode (the CloudEvent is the body): Flux reads the body as
    // the CDEvent itself, and it is not one.
    let structured = Delivery::json(&json!({
        "specversion": "1.0",
        "id": "271069a8-fc18-44f1-b38f-9d70a1695819",
        "source": "/ci/example/app",
        "type": CDEVENT_TYPE,
        "datacontenttype": "application/json",
        "data": cd_event(merged, "change")
    }))
    .header("content-type", "application/cloudevents+json");
    let case = "cdevents structured mode";
    assert_refused(s, case, path, &structured, BAD_REQUEST, repo).await;
    // No timestamp: the SDK marshals Go's zero time back, and takes it.
    let mut untimed = cd_event(merged, "change");
    untimed["context"]
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    let untimed = cdevent(CDEVENT_TYPE, &untimed);
    let case = "cdevents without a timestamp";
    assert_accepted(s, case, path, &untimed, &[repo]).await;
}

/// A `generic-oidc` provider's rules and the token's times and issuer, past
/// what every ID token type checks.
async fn generic_oidc_rules(s: &Sandbox, oidc: &Served, issuers: &Issuers) {
    let (path, repo) = (&oidc.path, oidc.repo.as_str());
    let provider = &issuers.provider;
    let Some(sample) = sample(&ReceiverType::GenericOidc) else {
        panic!("generic-oidc: no sample")
    };
    let good = claims(provider, DEFAULT_OIDC_AUDIENCE, &sample.claims);
    let body = sample.delivery;
    let mut other_repo = good.clone();
    other_repo["repository"] = json!("example/fork");
    let mut expired = good.clone();
    expired["iat"] = json!(now() - 3600);
    expired["exp"] = json!(now() - 1800);
    let mut forged = good;
    forged["iss"] = json!(provider.url());
    for (case, token) in [
        ("generic-oidc rule fails", provider.mint(&other_repo)),
        ("generic-oidc expired", provider.mint(&expired)),
        ("generic-oidc forged iss", issuers.stranger.mint(&forged)),
    ] {
        let delivery = body.clone().bearer(&token);
        assert_refused(s, case, path, &delivery, BAD_REQUEST, repo).await;
    }
}

/// Specs Flux's reconciler refuses are `Ready=False` and `Stalled` with
/// Flux's reason, and never served, instead of served and failing every
/// delivery: `claims` is declared in the filters of `generic-oidc`
/// Receivers only, and only they may list `oidcProviders`; `*` needs
/// `matchLabels`.
async fn specs_flux_refuses_stall(s: &Sandbox) {
    git_repository(s, NS, "app-stalled", json!({}));
    secret(s, "stalled-token", &[("token", "stalled-token")]);
    let with = |extra: Value| {
        let mut spec = json!({
            "type": "github",
            "secretRef": {"name": "stalled-token"},
            "resources": [{"kind": "GitRepository", "name": "app-stalled"}]
        });
        if let (Some(spec), Value::Object(extra)) = (spec.as_object_mut(), extra) {
            spec.extend(extra);
        }
        spec
    };
    let cases = [
        (
            "claims-on-github",
            with(json!({"resourceFilter": "claims.repository == 'example/app'"})),
            "InvalidCELExpression",
            "invalid resourceFilter expression: undeclared reference to 'claims'",
        ),
        (
            "claims-in-a-resource-filter",
            with(
                json!({"resources": [{"kind": "GitRepository", "name": "app-stalled",
                                        "filter": "claims.sub != ''"}]}),
            ),
            "InvalidCELExpression",
            "invalid filter expression for resources[0] (kind=\"GitRepository\", name=\"app-stalled\")",
        ),
        (
            "providers-on-github",
            with(json!({"oidcProviders": [{
                "issuerURL": "https://token.actions.githubusercontent.com",
                "validations": [{"expression": "claims.sub != ''", "message": "no"}]
            }]})),
            "ValidationFailed",
            "oidcProviders can only be set when type is generic-oidc",
        ),
        (
            // Flux refuses only a nil matchLabels, on every delivery (500);
            // `matchLabels: {}` selects all (e2e_selection.rs).
            "wildcard-without-match-labels",
            with(json!({"resources": [{"kind": "GitRepository", "name": "*"}]})),
            "ValidationFailed",
            "name '*' selects every GitRepository; add matchLabels",
        ),
    ];
    for (name, spec, reason, message) in cases {
        e2e_support::receiver(s, name, spec);
        let status = wait_for_status(s, name, |status| {
            has_condition(status, "Stalled", "True", Some(reason))
        })
        .await;
        assert!(
            has_condition(&status, "Ready", "False", Some(reason)),
            "{name}: {status}"
        );
        let ready = status["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["type"] == "Ready")
            .unwrap();
        assert!(
            ready["message"].as_str().unwrap().contains(message),
            "{name}: {status}"
        );
        assert!(status.get("webhookPath").is_none(), "{name}: {status}");
    }
}
