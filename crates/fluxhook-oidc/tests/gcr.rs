//! `gcr` (Google Pub/Sub push) end to end over HTTP, a local issuer standing
//! in for Google.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use fluxhook_oidc::testing::{TestIssuer, bearer};
use fluxhook_oidc::{GcrRequirements, HttpKeySource, OidcVerifier, VerifierConfig, VerifyError};
use serde_json::{Value, json};

const AUDIENCE: &str = "https://hooks.example/hook/0123abcd";
const EMAIL: &str = "flux-push@my-project.iam.gserviceaccount.com";

fn verifier(google: &TestIssuer) -> OidcVerifier {
    let config = VerifierConfig {
        google_issuer: google.url().to_owned(),
        ..Default::default()
    };
    OidcVerifier::with_config(Arc::new(HttpKeySource::new().unwrap()), config)
}

/// Claims of a push token for `audience` from `email`, verified.
fn push_claims(google: &TestIssuer, audience: &str, email: &str) -> Value {
    let mut claims = google.claims(audience);
    claims["email"] = json!(email);
    claims["email_verified"] = json!(true);
    claims
}

async fn verify(
    google: &TestIssuer,
    token: &str,
    requirements: &GcrRequirements,
) -> Result<Value, VerifyError> {
    verifier(google)
        .verify_gcr(&bearer(token), requirements)
        .await
}

#[tokio::test]
async fn accepts_a_push_token_for_the_secret_audience_and_email() {
    let google = TestIssuer::start_rs256().await.unwrap();
    let claims = push_claims(&google, AUDIENCE, EMAIL);
    let verified = verify(
        &google,
        &google.mint(&claims),
        &GcrRequirements::new(AUDIENCE, EMAIL),
    )
    .await
    .unwrap();
    assert_eq!(verified, claims);
}

#[tokio::test]
async fn refuses_other_audiences_and_service_accounts() {
    let google = TestIssuer::start_rs256().await.unwrap();
    let required = GcrRequirements::new(AUDIENCE, EMAIL);

    let other_aud = google.mint(&push_claims(&google, "https://elsewhere", EMAIL));
    assert_eq!(
        verify(&google, &other_aud, &required).await,
        Err(VerifyError::WrongAudience {
            expected: AUDIENCE.into()
        })
    );

    let other_sa = google.mint(&push_claims(&google, AUDIENCE, "attacker@evil.iam"));
    assert_eq!(
        verify(&google, &other_sa, &required).await,
        Err(VerifyError::EmailMismatch {
            expected: EMAIL.into(),
            found: Some("attacker@evil.iam".into())
        })
    );

    let mut unverified = push_claims(&google, AUDIENCE, EMAIL);
    unverified["email_verified"] = json!(false);
    assert_eq!(
        verify(&google, &google.mint(&unverified), &required).await,
        Err(VerifyError::EmailNotVerified {
            email: Some(EMAIL.into())
        })
    );
}

#[tokio::test]
async fn secret_without_audience_or_email_skips_those_checks_as_flux_does() {
    let google = TestIssuer::start_rs256().await.unwrap();
    let lenient = GcrRequirements::new("", "");
    let any = google.mint(&push_claims(&google, "https://elsewhere", "anyone@x.iam"));
    assert!(verify(&google, &any, &lenient).await.is_ok());

    // A verified email is still required.
    let no_email = google.mint(&google.claims("https://elsewhere"));
    assert_eq!(
        verify(&google, &no_email, &lenient).await,
        Err(VerifyError::EmailNotVerified { email: None })
    );
}

#[tokio::test]
async fn refuses_tokens_of_other_issuers() {
    let google = TestIssuer::start_rs256().await.unwrap();
    // Same test key and key id, another issuer: the signature verifies, the
    // issuer does not.
    let other = TestIssuer::start_rs256().await.unwrap();
    let token = other.mint(&push_claims(&other, AUDIENCE, EMAIL));
    assert_eq!(
        verify(&google, &token, &GcrRequirements::new(AUDIENCE, EMAIL)).await,
        Err(VerifyError::WrongIssuer {
            expected: format!("{:?}", google.url()),
            found: other.url().into()
        })
    );
}

#[tokio::test]
async fn refuses_expired_push_tokens() {
    let google = TestIssuer::start_rs256().await.unwrap();
    let mut claims = push_claims(&google, AUDIENCE, EMAIL);
    claims["exp"] = json!(1_000_000_000);
    assert_eq!(
        verify(
            &google,
            &google.mint(&claims),
            &GcrRequirements::new(AUDIENCE, EMAIL)
        )
        .await,
        Err(VerifyError::Expired { exp: 1_000_000_000 })
    );
}
