//! `generic-oidc` end to end over HTTP against local test issuers.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fluxhook_api::OidcProvider;
use fluxhook_oidc::testing::{TestIssuer, bearer};
use fluxhook_oidc::{
    FetchError, HttpKeySource, MalformedToken, OidcVerifier, VerifierConfig, VerifyError,
};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use serde_json::{Value, json};

const AUDIENCE: &str = "notification-controller";

fn provider(issuer_url: &str, audience: Option<&str>) -> OidcProvider {
    serde_json::from_value(json!({
        "issuerURL": issuer_url,
        "audience": audience,
        "validations": [{"expression": "true", "message": "never"}],
    }))
    .unwrap()
}

fn http_verifier(config: VerifierConfig) -> OidcVerifier {
    OidcVerifier::with_config(Arc::new(HttpKeySource::new().unwrap()), config)
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Verifies `token` against a Receiver with one provider for `issuer`.
async fn verify(issuer: &TestIssuer, token: &str) -> Result<Value, VerifyError> {
    let providers = [provider(issuer.url(), None)];
    http_verifier(VerifierConfig::default())
        .verify_generic_oidc(&bearer(token), &providers)
        .await
        .map(|t| t.claims)
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

#[tokio::test]
async fn accepts_a_valid_token_and_returns_its_claims() {
    let issuer = TestIssuer::start().await.unwrap();
    let claims = with(issuer.claims(AUDIENCE), "repository_owner", json!("fluxcd"));
    let verified = verify(&issuer, &issuer.mint(&claims)).await.unwrap();
    assert_eq!(verified, claims);
}

#[tokio::test]
async fn accepts_rs256_and_audience_arrays_and_tokens_without_kid() {
    let issuer = TestIssuer::start_rs256().await.unwrap();
    let claims = with(issuer.claims(AUDIENCE), "aud", json!(["other", AUDIENCE]));
    assert!(verify(&issuer, &issuer.mint(&claims)).await.is_ok());

    let no_kid = issuer.sign_with_header(&json!({"alg": "RS256"}), &issuer.claims(AUDIENCE));
    assert!(verify(&issuer, &no_kid).await.is_ok());
}

#[tokio::test]
async fn picks_the_provider_by_issuer_and_checks_its_audience() {
    let github = TestIssuer::start().await.unwrap();
    let gitlab = TestIssuer::start().await.unwrap();
    let providers = [
        provider(github.url(), Some("github-aud")),
        provider(gitlab.url(), Some("gitlab-aud")),
    ];
    let verifier = http_verifier(VerifierConfig::default());

    let token = gitlab.mint(&gitlab.claims("gitlab-aud"));
    let verified = verifier
        .verify_generic_oidc(&bearer(&token), &providers)
        .await
        .unwrap();
    assert_eq!(verified.provider, &providers[1]);

    // The audience of the other provider does not do.
    let token = gitlab.mint(&gitlab.claims("github-aud"));
    assert_eq!(
        verifier
            .verify_generic_oidc(&bearer(&token), &providers)
            .await,
        Err(VerifyError::WrongAudience {
            expected: "gitlab-aud".into()
        })
    );
}

#[tokio::test]
async fn refuses_missing_or_malformed_authorization() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = [provider(issuer.url(), None)];
    let verifier = http_verifier(VerifierConfig::default());
    let with_header = |value: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
        headers
    };
    let cases = [
        (HeaderMap::new(), VerifyError::MissingAuthorization),
        (
            with_header("Basic Zm9vOmJhcg=="),
            VerifyError::MissingAuthorization,
        ),
        (
            with_header("bearer x.y.z"),
            VerifyError::MissingAuthorization,
        ),
        (with_header("Bearer    "), VerifyError::EmptyBearer),
        (
            with_header("Bearer not-a-jwt"),
            MalformedToken::NotThreeParts.into(),
        ),
        (
            with_header("Bearer e30.e30.c2ln"),
            MalformedToken::HeaderNotJson.into(),
        ),
    ];
    for (headers, want) in cases {
        assert_eq!(
            verifier.verify_generic_oidc(&headers, &providers).await,
            Err(want)
        );
    }
    assert_eq!(
        verifier
            .verify_generic_oidc(&bearer(&issuer.mint(&issuer.claims(AUDIENCE))), &[])
            .await,
        Err(VerifyError::NoOidcProviders)
    );
    assert_eq!(issuer.discovery_requests(), 0, "nothing worth a fetch");
}

#[tokio::test]
async fn refuses_tokens_of_unconfigured_issuers_without_fetching() {
    let configured = TestIssuer::start().await.unwrap();
    let other = TestIssuer::start().await.unwrap();
    let token = other.mint(&other.claims(AUDIENCE));
    assert_eq!(
        verify(&configured, &token).await,
        Err(VerifyError::NoProviderForIssuer {
            issuer: other.url().into()
        })
    );
    let no_iss = configured.mint(&json!({"aud": AUDIENCE, "exp": now() + 60}));
    assert_eq!(
        verify(&configured, &no_iss).await,
        Err(VerifyError::MissingClaim { claim: "iss" })
    );
    assert_eq!(
        configured.discovery_requests() + other.discovery_requests(),
        0
    );
}

#[tokio::test]
async fn refuses_expired_future_and_wrong_audience_tokens() {
    let issuer = TestIssuer::start().await.unwrap();
    let valid = issuer.claims(AUDIENCE);
    let exp = now() - 3600;
    let nbf = now() + 3600;
    let cases = [
        (
            with(valid.clone(), "exp", json!(exp)),
            VerifyError::Expired { exp },
        ),
        (
            with(valid.clone(), "nbf", json!(nbf)),
            VerifyError::NotYetValid { nbf },
        ),
        (
            with(valid.clone(), "iat", json!(nbf)),
            VerifyError::IssuedInFuture { iat: nbf },
        ),
        (
            with(valid.clone(), "aud", json!("someone-else")),
            VerifyError::WrongAudience {
                expected: AUDIENCE.into(),
            },
        ),
    ];
    for (claims, want) in cases {
        assert_eq!(verify(&issuer, &issuer.mint(&claims)).await, Err(want));
    }
}

#[tokio::test]
async fn refuses_a_discovery_document_for_another_issuer() {
    let issuer = TestIssuer::start().await.unwrap();
    issuer.set_discovered_issuer("https://impostor.example");
    assert_eq!(
        verify(&issuer, &issuer.mint(&issuer.claims(AUDIENCE))).await,
        Err(VerifyError::DiscoveredIssuerMismatch {
            configured: issuer.url().into(),
            discovered: "https://impostor.example".into()
        })
    );
    assert_eq!(issuer.jwks_requests(), 0);
}

#[tokio::test]
async fn reports_discovery_failures_with_their_cause() {
    let issuer = TestIssuer::start().await.unwrap();
    // An issuer URL with a path the test issuer does not serve: 404.
    let missing = format!("{}/tenant", issuer.url());
    let mut claims = issuer.claims(AUDIENCE);
    claims["iss"] = json!(missing);
    let providers = [provider(&missing, None)];
    let verifier = http_verifier(VerifierConfig::default());
    assert_eq!(
        verifier
            .verify_generic_oidc(&bearer(&issuer.mint(&claims)), &providers)
            .await,
        Err(VerifyError::Discovery {
            issuer: missing.clone(),
            source: FetchError::Status { status: 404 }
        })
    );

    // An issuer that is gone: the connection is refused.
    let url = issuer.url().to_owned();
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    drop(issuer);
    let providers = [provider(&url, None)];
    let refused = verifier
        .verify_generic_oidc(&bearer(&token), &providers)
        .await;
    assert!(
        matches!(
            &refused,
            Err(VerifyError::Discovery { issuer, source: FetchError::Transport(_) }) if *issuer == url
        ),
        "{refused:?}"
    );
}

#[tokio::test]
async fn refuses_tampered_and_forged_tokens() {
    let issuer = TestIssuer::start().await.unwrap();
    let token = issuer.mint(&issuer.claims(AUDIENCE));

    // Swap the payload for one with more claims; keep header and signature.
    let parts: Vec<&str> = token.split('.').collect();
    let forged_claims = with(issuer.claims(AUDIENCE), "repository_owner", json!("evil"));
    let payload = URL_SAFE_NO_PAD.encode(forged_claims.to_string());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        verify(&issuer, &tampered).await,
        Err(VerifyError::BadSignature)
    );

    // Signed by another key under this issuer's key id and name.
    let impostor = TestIssuer::start().await.unwrap();
    assert_eq!(impostor.kid(), issuer.kid());
    let forged = impostor.mint(&issuer.claims(AUDIENCE));
    assert_eq!(
        verify(&issuer, &forged).await,
        Err(VerifyError::BadSignature)
    );
}

#[tokio::test]
async fn refuses_algorithm_confusion() {
    let issuer = TestIssuer::start_rs256().await.unwrap();
    let claims = issuer.claims(AUDIENCE);
    let kid = issuer.kid();

    // HS256 with the issuer's public key as the HMAC secret.
    let public_jwks = reqwest::get(format!("{}/jwks", issuer.url()))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(kid.clone());
    let hmac = jsonwebtoken::encode(
        &header,
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(&public_jwks),
    )
    .unwrap();
    assert_eq!(
        verify(&issuer, &hmac).await,
        Err(VerifyError::UnsupportedAlgorithm {
            alg: "HS256".into()
        })
    );

    // alg none, no signature.
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "kid": kid}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    assert_eq!(
        verify(&issuer, &format!("{header}.{payload}.")).await,
        Err(VerifyError::UnsupportedAlgorithm { alg: "none".into() })
    );

    // An EC algorithm naming the RSA key.
    let ec = TestIssuer::start().await.unwrap();
    let mut ec_claims = ec.claims(AUDIENCE);
    ec_claims["iss"] = json!(issuer.url());
    let es256 = ec.sign_with_header(&json!({"alg": "ES256", "kid": kid}), &ec_claims);
    assert_eq!(
        verify(&issuer, &es256).await,
        Err(VerifyError::AlgorithmKeyMismatch {
            alg: "ES256".into(),
            kid
        })
    );

    // An algorithm the issuer does not advertise.
    let es384 = issuer.sign_with_header(&json!({"alg": "ES384"}), &claims);
    assert_eq!(
        verify(&issuer, &es384).await,
        Err(VerifyError::UnsupportedAlgorithm {
            alg: "ES384".into()
        })
    );
}

#[tokio::test]
async fn refetches_keys_once_on_rotation_then_reports_unknown_key_ids() {
    let issuer = TestIssuer::start().await.unwrap();
    let providers = [provider(issuer.url(), None)];
    let verifier = http_verifier(VerifierConfig {
        min_refresh_interval: Duration::ZERO,
        ..Default::default()
    });
    let check = |token: String| {
        let headers = bearer(&token);
        let verifier = &verifier;
        let providers = &providers;
        async move {
            verifier
                .verify_generic_oidc(&headers, providers)
                .await
                .map(|_| ())
        }
    };

    check(issuer.mint(&issuer.claims(AUDIENCE))).await.unwrap();
    check(issuer.mint(&issuer.claims(AUDIENCE))).await.unwrap();
    assert_eq!(
        (issuer.discovery_requests(), issuer.jwks_requests()),
        (1, 1)
    );

    let new_kid = issuer.rotate_key().unwrap();
    assert_eq!(issuer.kid(), new_kid);
    check(issuer.mint(&issuer.claims(AUDIENCE))).await.unwrap();
    assert_eq!(issuer.jwks_requests(), 2, "one refetch for the new key");

    let bogus = issuer.sign_with_header(
        &json!({"alg": "ES256", "kid": "no-such-key"}),
        &issuer.claims(AUDIENCE),
    );
    assert_eq!(
        check(bogus).await,
        Err(VerifyError::UnknownKeyId {
            kid: "no-such-key".into()
        })
    );
    assert_eq!(issuer.jwks_requests(), 3, "one refetch, then the verdict");
}
