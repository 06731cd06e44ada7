//! GitHub App installation tokens against the fake GitHub, which checks app JWTs and expires
//! installation tokens as GitHub does: minted, cached, minted anew before they expire, sent
//! only to the repository's API, and never shown.

#![allow(clippy::unwrap_used, missing_docs)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use fluxhook_register::github_app::{GitHubApp, GitHubAppError, InstallationTokens};
use fluxhook_register::{Clock, Forge, HookClient, HostedRepository, HttpClient, Sleep};
use fluxhook_test_githost::{FakeApp, FakeHost, Fault, HostKind};

/// The system clock moved ahead by hand, as the fake's clock is with `advance_clock`.
#[derive(Debug, Default)]
struct MovedClock {
    ahead: Mutex<Duration>,
}

impl MovedClock {
    fn advance(&self, by: Duration) {
        *self.ahead.lock().unwrap() += by;
    }
}

impl Clock for MovedClock {
    fn now(&self) -> SystemTime {
        SystemTime::now() + *self.ahead.lock().unwrap()
    }

    fn sleep(&self, _duration: Duration) -> Sleep {
        Box::pin(std::future::ready(()))
    }
}

async fn github_with_app() -> (FakeHost, FakeApp, HostedRepository) {
    let github = FakeHost::start(HostKind::GitHub).await.unwrap();
    let app = FakeApp::new();
    github.install_app(app.clone());
    let repository = HostedRepository::new(
        Forge::GITHUB,
        github.api_base().parse().unwrap(),
        github.owner(),
        github.repo(),
    );
    (github, app, repository)
}

fn keys(app: &FakeApp, pem: &str) -> GitHubApp {
    GitHubApp::new(
        &app.app_id.to_string(),
        &app.installation_id.to_string(),
        pem.as_bytes(),
    )
    .unwrap()
}

fn exchanges(github: &FakeHost) -> usize {
    github
        .requests()
        .iter()
        .filter(|r| r.method == "POST" && r.path.ends_with("/access_tokens"))
        .count()
}

#[tokio::test]
async fn tokens_are_cached_and_minted_anew_before_they_expire() {
    let (github, fake, repository) = github_with_app().await;
    let app = keys(&fake, FakeApp::private_key_pem());
    let clock = Arc::new(MovedClock::default());
    let tokens = InstallationTokens::with_clock(clock.clone());
    let http = HttpClient::new().unwrap();
    let list = |token| async {
        HookClient::builder(repository.clone(), token)
            .http(http.clone())
            .build()
            .unwrap()
            .list()
            .await
    };

    let first = tokens.token(&app, &repository, &http).await.unwrap();
    assert!(list(first.clone()).await.is_ok());
    assert_eq!(exchanges(&github), 1);

    // 50 minutes on, both clocks: the token has 10 minutes left, and is still used.
    clock.advance(Duration::from_secs(50 * 60));
    github.advance_clock(Duration::from_secs(50 * 60));
    let cached = tokens.token(&app, &repository, &http).await.unwrap();
    assert_eq!(cached, first);
    assert_eq!(exchanges(&github), 1);

    // 6 minutes more: under 5 minutes left, so a new one is minted before it expires.
    clock.advance(Duration::from_secs(6 * 60));
    github.advance_clock(Duration::from_secs(6 * 60));
    let renewed = tokens.token(&app, &repository, &http).await.unwrap();
    assert_ne!(renewed, first);
    assert_eq!(exchanges(&github), 2);

    // An hour after the first was minted, GitHub refuses it; the renewed one works.
    clock.advance(Duration::from_secs(5 * 60));
    github.advance_clock(Duration::from_secs(5 * 60));
    let refused = list(first).await.unwrap_err();
    assert!(
        refused.to_string().contains("HTTP 401: Bad credentials"),
        "{refused}"
    );
    assert!(list(renewed).await.is_ok());
    // Every JWT GitHub saw was within its limits.
    assert!(
        github
            .requests()
            .iter()
            .all(|r| r.status != 401 || r.path.ends_with("/hooks"))
    );
}

#[tokio::test]
async fn a_forgotten_token_is_minted_again() {
    let (github, fake, repository) = github_with_app().await;
    let app = keys(&fake, FakeApp::private_key_pem());
    let tokens = InstallationTokens::new();
    let http = HttpClient::new().unwrap();
    let first = tokens.token(&app, &repository, &http).await.unwrap();
    tokens.forget(&app, &repository);
    let second = tokens.token(&app, &repository, &http).await.unwrap();
    assert_ne!(first, second);
    assert_eq!(exchanges(&github), 2);
}

#[tokio::test]
async fn refusals_name_what_to_check_and_no_credential() {
    let (github, fake, repository) = github_with_app().await;
    let tokens = InstallationTokens::new();
    let http = HttpClient::new().unwrap();

    let stranger = keys(&fake, FakeApp::other_private_key_pem());
    let error = tokens
        .token(&stranger, &repository, &http)
        .await
        .unwrap_err();
    let text = error.to_string();
    assert!(
        matches!(error, GitHubAppError::Refused { status: 401, .. }),
        "{error:?}"
    );
    assert!(
        text.contains("A JSON web token could not be decoded"),
        "{text}"
    );
    assert!(text.contains("githubAppPrivateKey"), "{text}");

    let elsewhere = GitHubApp::new(
        &fake.app_id.to_string(),
        "999",
        FakeApp::private_key_pem().as_bytes(),
    )
    .unwrap();
    let error = tokens
        .token(&elsewhere, &repository, &http)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("installation 999"), "{error}");
    assert!(error.contains("HTTP 404: Not Found"), "{error}");
    assert!(error.contains("githubAppInstallationID"), "{error}");

    let other_app = GitHubApp::new(
        "7",
        &fake.installation_id.to_string(),
        FakeApp::private_key_pem().as_bytes(),
    )
    .unwrap();
    let error = tokens
        .token(&other_app, &repository, &http)
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("HTTP 401"), "{error}");

    for request in github.requests() {
        assert_ne!(request.status, 201, "{request:?}");
    }
    assert_eq!(github.installation_tokens_issued(), 0);
    let key_line = FakeApp::private_key_pem().lines().nth(1).unwrap();
    for text in [&error, &text] {
        assert!(!text.contains("eyJ") && !text.contains(key_line), "{text}");
    }
}

#[tokio::test]
async fn the_jwt_goes_to_no_other_host_nor_along_a_redirect() {
    let (github, fake, repository) = github_with_app().await;
    let elsewhere = FakeHost::start(HostKind::GitHub).await.unwrap();
    elsewhere.install_app(fake.clone());
    let tokens = InstallationTokens::new();
    let http = HttpClient::new().unwrap();

    // githubAppBaseURL naming another host than the repository's API: nothing is sent.
    let foreign = keys(&fake, FakeApp::private_key_pem())
        .with_base_url(elsewhere.api_base().parse().unwrap());
    let error = tokens
        .token(&foreign, &repository, &http)
        .await
        .unwrap_err();
    assert!(
        matches!(error, GitHubAppError::ForeignBaseUrl { .. }),
        "{error}"
    );

    // The API redirects the exchange elsewhere: not followed.
    let location = format!(
        "{}/app/installations/{}/access_tokens",
        elsewhere.api_base(),
        fake.installation_id
    );
    github.inject(
        Fault::Redirect {
            status: 307,
            location: location.clone(),
            method: None,
        },
        1,
    );
    let app = keys(&fake, FakeApp::private_key_pem());
    let error = tokens.token(&app, &repository, &http).await.unwrap_err();
    assert!(
        matches!(error, GitHubAppError::Redirected { status: 307, .. }),
        "{error}"
    );
    assert!(error.to_string().contains(&location), "{error}");
    assert!(elsewhere.requests().is_empty());
    assert_eq!(elsewhere.installation_tokens_issued(), 0);

    // Only GitHub repositories.
    let gitlab = HostedRepository::new(
        Forge::GITLAB,
        "https://gitlab.com/api/v4".parse().unwrap(),
        "acme",
        "fleet",
    );
    assert!(matches!(
        tokens.token(&app, &gitlab, &http).await.unwrap_err(),
        GitHubAppError::NotGitHub(_)
    ));
}

#[tokio::test]
async fn the_fake_refuses_jwts_github_refuses() {
    use jsonwebtoken::{Algorithm, EncodingKey, Header};

    let (github, fake, _) = github_with_app().await;
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let sign = |claims: serde_json::Value, pem: &str| {
        let key = EncodingKey::from_rsa_pem(pem.as_bytes()).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key).unwrap()
    };
    let exchange = |jwt: String| {
        let url = format!(
            "{}/app/installations/{}/access_tokens",
            github.api_base(),
            fake.installation_id
        );
        async move {
            let reply = reqwest::Client::new()
                .post(url)
                .bearer_auth(jwt)
                .header("user-agent", "test")
                .send()
                .await
                .unwrap();
            let status = reply.status().as_u16();
            let body: serde_json::Value = reply.json().await.unwrap();
            (status, body)
        }
    };
    let key = FakeApp::private_key_pem();
    let iss = fake.app_id.to_string();
    let refusals = [
        (
            sign(
                serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": iss}),
                FakeApp::other_private_key_pem(),
            ),
            "A JSON web token could not be decoded",
        ),
        (
            sign(
                serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": "1"}),
                key,
            ),
            "A JSON web token could not be decoded",
        ),
        (
            sign(
                serde_json::json!({"iat": now - 700, "exp": now - 100, "iss": iss}),
                key,
            ),
            "'Expiration time' claim ('exp') must be a numeric value representing the future time at which the assertion expires",
        ),
        (
            sign(
                serde_json::json!({"iat": now - 60, "exp": now + 900, "iss": iss}),
                key,
            ),
            "'Expiration time' claim ('exp') is too far in the future",
        ),
        (
            sign(
                serde_json::json!({"iat": now + 120, "exp": now + 540, "iss": iss}),
                key,
            ),
            "'Issued at' claim ('iat') must be an Integer representing the time that the assertion was issued",
        ),
        (
            "not.a.jwt".to_owned(),
            "A JSON web token could not be decoded",
        ),
    ];
    for (jwt, message) in refusals {
        let (status, body) = exchange(jwt).await;
        assert_eq!(status, 401, "{body}");
        assert_eq!(body["message"], message);
        assert_eq!(body["status"], "401");
    }
    let (status, body) = exchange(sign(
        serde_json::json!({"iat": now - 60, "exp": now + 540, "iss": fake.app_id}),
        key,
    ))
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(body["token"].as_str().unwrap().starts_with("ghs_"));
    // An hour after the token was issued, between the request and now.
    let after = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let expires_at: jiff::Timestamp = body["expires_at"].as_str().unwrap().parse().unwrap();
    let expires_at = u64::try_from(expires_at.as_second()).unwrap();
    assert!(
        (now + 3600..=after + 3600).contains(&expires_at),
        "{expires_at}"
    );
    assert_eq!(github.installation_tokens_issued(), 1);
}

#[tokio::test]
async fn an_installation_named_by_its_owner_is_looked_up_as_flux_does() {
    let http = HttpClient::new().unwrap();
    for organization in [true, false] {
        let github = FakeHost::start(HostKind::GitHub).await.unwrap();
        let fake = FakeApp {
            organization,
            ..FakeApp::new()
        };
        github.install_app(fake.clone());
        let repository = HostedRepository::new(
            Forge::GITHUB,
            github.api_base().parse().unwrap(),
            github.owner(),
            github.repo(),
        );
        let tokens = InstallationTokens::new();
        // Logins are compared ignoring case, as GitHub does.
        let app = GitHubApp::for_owner(
            &fake.app_id.to_string(),
            &github.owner().to_uppercase(),
            FakeApp::private_key_pem().as_bytes(),
        )
        .unwrap();
        let token = tokens.token(&app, &repository, &http).await.unwrap();
        let client = HookClient::builder(repository.clone(), token)
            .http(http.clone())
            .build()
            .unwrap();
        assert!(client.list().await.is_ok());
        let paths: Vec<String> = github
            .requests()
            .iter()
            .map(|r| format!("{} {} {}", r.method, r.path, r.status))
            .collect();
        let org = format!(
            "GET /api/v3/orgs/{}/installation",
            github.owner().to_uppercase()
        );
        let user = org.replace("/orgs/", "/users/");
        let exchange = format!(
            "POST /api/v3/app/installations/{}/access_tokens 201",
            fake.installation_id
        );
        let expected = match organization {
            true => vec![format!("{org} 200"), exchange],
            false => vec![format!("{org} 404"), format!("{user} 200"), exchange],
        };
        assert_eq!(paths[..expected.len()], expected[..], "{paths:?}");

        let stranger = GitHubApp::for_owner(
            &fake.app_id.to_string(),
            "someone-else",
            FakeApp::private_key_pem().as_bytes(),
        )
        .unwrap();
        let error = tokens
            .token(&stranger, &repository, &http)
            .await
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("find the installation for the installation on someone-else"),
            "{error}"
        );
        assert!(error.contains("HTTP 404"), "{error}");
        assert!(error.contains("githubAppInstallationOwner"), "{error}");
        assert_eq!(github.installation_tokens_issued(), 1);
    }
}
