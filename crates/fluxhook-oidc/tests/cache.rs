//! The key cache: TTL, rotation refetch and its rate limit, counted in
//! fetches. Time is Tokio's paused clock and documents come from memory, so
//! nothing here depends on how fast the machine is.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use fluxhook_api::OidcProvider;
use fluxhook_oidc::testing::{TestIssuer, bearer};
use fluxhook_oidc::{FetchError, KeySource, OidcVerifier, VerifierConfig, VerifyError};
use serde_json::json;

const AUDIENCE: &str = "notification-controller";
const TTL: Duration = Duration::from_secs(3600);
const MIN_REFRESH: Duration = Duration::from_secs(30);

fn providers(issuer: &TestIssuer) -> Vec<OidcProvider> {
    serde_json::from_value(json!([{
        "issuerURL": issuer.url(),
        "validations": [{"expression": "true", "message": "never"}],
    }]))
    .unwrap()
}

fn verifier(source: Arc<dyn KeySource>) -> Arc<OidcVerifier> {
    Arc::new(OidcVerifier::with_config(
        source,
        VerifierConfig {
            cache_ttl: TTL,
            min_refresh_interval: MIN_REFRESH,
            ..Default::default()
        },
    ))
}

async fn check(
    verifier: &OidcVerifier,
    providers: &[OidcProvider],
    token: &str,
) -> Result<(), VerifyError> {
    verifier
        .verify_generic_oidc(&bearer(token), providers)
        .await
        .map(|_| ())
}

fn bogus_kid_token(issuer: &TestIssuer, n: usize) -> String {
    issuer.sign_with_header(
        &json!({"alg": "ES256", "kid": format!("made-up-{n}")}),
        &issuer.claims(AUDIENCE),
    )
}

#[tokio::test(start_paused = true)]
async fn keys_are_reused_until_the_ttl_passes() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = providers(&issuer);
    let verifier = verifier(issuer.key_source());
    for _ in 0..10 {
        let token = issuer.mint(&issuer.claims(AUDIENCE));
        check(&verifier, &providers, &token).await.unwrap();
    }
    assert_eq!(
        (issuer.discovery_requests(), issuer.jwks_requests()),
        (1, 1)
    );

    tokio::time::advance(TTL).await;
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    check(&verifier, &providers, &token).await.unwrap();
    assert_eq!(
        (issuer.discovery_requests(), issuer.jwks_requests()),
        (2, 2)
    );
}

#[tokio::test(start_paused = true)]
async fn a_flood_of_unknown_key_ids_refetches_at_most_once_per_interval() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = providers(&issuer);
    let verifier = verifier(issuer.key_source());
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    check(&verifier, &providers, &token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 1);

    // Right after a fetch: no refetch at all.
    for n in 0..50 {
        assert!(matches!(
            check(&verifier, &providers, &bogus_kid_token(&issuer, n)).await,
            Err(VerifyError::UnknownKeyId { .. })
        ));
    }
    assert_eq!(issuer.jwks_requests(), 1);

    // After the interval: one refetch for the whole flood, even concurrent.
    tokio::time::advance(MIN_REFRESH).await;
    let flood: Vec<_> = (0..50)
        .map(|n| {
            let verifier = Arc::clone(&verifier);
            let providers = providers.clone();
            let token = bogus_kid_token(&issuer, n);
            tokio::spawn(async move { check(&verifier, &providers, &token).await })
        })
        .collect();
    for task in flood {
        assert!(matches!(
            task.await.unwrap(),
            Err(VerifyError::UnknownKeyId { .. })
        ));
    }
    assert_eq!(issuer.jwks_requests(), 2);
    assert_eq!(issuer.discovery_requests(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_rotated_key_is_picked_up_once_the_interval_allows() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = providers(&issuer);
    let verifier = verifier(issuer.key_source());
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    check(&verifier, &providers, &token).await.unwrap();

    let kid = issuer.rotate_key().unwrap();
    let rotated = issuer.mint(&issuer.claims(AUDIENCE));
    assert_eq!(
        check(&verifier, &providers, &rotated).await,
        Err(VerifyError::UnknownKeyId { kid })
    );
    assert_eq!(issuer.jwks_requests(), 1, "rate-limited");

    tokio::time::advance(MIN_REFRESH).await;
    check(&verifier, &providers, &rotated).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2);
    // Tokens of the old key still verify: it is still published.
    check(&verifier, &providers, &token).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2);
}

/// Counts fetches and fails them all, like an issuer that is down.
struct Down(AtomicUsize);

#[async_trait]
impl KeySource for Down {
    async fn fetch(&self, _url: &str) -> Result<Vec<u8>, FetchError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(FetchError::Status { status: 503 })
    }
}

#[tokio::test(start_paused = true)]
async fn an_issuer_that_is_down_is_asked_at_most_once_per_interval() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = providers(&issuer);
    let down = Arc::new(Down(AtomicUsize::new(0)));
    let verifier = verifier(Arc::clone(&down) as Arc<dyn KeySource>);
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    let want = Err(VerifyError::Discovery {
        issuer: issuer.url().into(),
        source: FetchError::Status { status: 503 },
    });
    for _ in 0..20 {
        assert_eq!(check(&verifier, &providers, &token).await, want);
    }
    assert_eq!(down.0.load(Ordering::SeqCst), 1);

    tokio::time::advance(MIN_REFRESH).await;
    assert_eq!(check(&verifier, &providers, &token).await, want);
    assert_eq!(down.0.load(Ordering::SeqCst), 2);
}

/// Serves one issuer's documents until switched off.
struct Flaky {
    inner: Arc<dyn KeySource>,
    down: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl KeySource for Flaky {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(FetchError::Transport("connection refused".into()));
        }
        self.inner.fetch(url).await
    }
}

#[tokio::test(start_paused = true)]
async fn known_keys_keep_working_while_the_issuer_is_down() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = providers(&issuer);
    let flaky = Arc::new(Flaky {
        inner: issuer.key_source(),
        down: false.into(),
    });
    let verifier = verifier(Arc::clone(&flaky) as Arc<dyn KeySource>);
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    check(&verifier, &providers, &token).await.unwrap();

    flaky.down.store(true, Ordering::SeqCst);
    tokio::time::advance(TTL).await;
    check(&verifier, &providers, &token).await.unwrap();
}
