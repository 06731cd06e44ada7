//! Properties over arbitrary input: verification never panics, and no change
//! to a valid token survives.
#![allow(clippy::unwrap_used)]

use fluxhook_api::OidcProvider;
use fluxhook_oidc::testing::{TestIssuer, bearer};
use fluxhook_oidc::{GcrRequirements, OidcVerifier, VerifierConfig};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use tokio::runtime::Runtime;

const AUDIENCE: &str = "notification-controller";

struct Setup {
    runtime: Runtime,
    issuer: TestIssuer,
    verifier: OidcVerifier,
    providers: Vec<OidcProvider>,
}

/// An issuer serving from memory, known both as a generic-oidc provider and
/// as the gcr issuer, with its keys already cached.
fn setup() -> Setup {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let issuer = runtime.block_on(TestIssuer::start()).unwrap();
    let verifier = OidcVerifier::with_config(
        issuer.key_source(),
        VerifierConfig {
            google_issuer: issuer.url().to_owned(),
            ..Default::default()
        },
    );
    let providers: Vec<OidcProvider> = serde_json::from_value(json!([{
        "issuerURL": issuer.url(),
        "validations": [{"expression": "true", "message": "never"}],
    }]))
    .unwrap();
    let token = issuer.mint(&issuer.claims(AUDIENCE));
    runtime
        .block_on(verifier.verify_generic_oidc(&bearer(&token), &providers))
        .unwrap();
    Setup {
        runtime,
        issuer,
        verifier,
        providers,
    }
}

#[test]
fn verification_never_panics_on_arbitrary_authorization_values() {
    let s = setup();
    let valid = s.issuer.mint(&s.issuer.claims(AUDIENCE));
    let header = valid.split_once('.').unwrap().0.to_owned();
    // Arbitrary text, arbitrary dotted base64url, and arbitrary tails after
    // a real header (which reach the key lookup and signature check).
    let inputs = prop_oneof![
        ".{0,300}".prop_map(|s| s),
        "Bearer .{0,300}",
        prop::collection::vec("[A-Za-z0-9_-]{0,80}", 0..5)
            .prop_map(|parts| format!("Bearer {}", parts.join("."))),
        "[A-Za-z0-9_.-]{0,200}".prop_map(move |tail| format!("Bearer {header}.{tail}")),
    ];
    let gcr = GcrRequirements::new(AUDIENCE, "");
    let mut runner = TestRunner::new(Config::with_cases(512));
    runner
        .run(&inputs, |value| {
            let Ok(value) = HeaderValue::try_from(value) else {
                return Ok(());
            };
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            let generic = s
                .runtime
                .block_on(s.verifier.verify_generic_oidc(&headers, &s.providers));
            let google = s.runtime.block_on(s.verifier.verify_gcr(&headers, &gcr));
            // Only the one real token could pass; these are not it.
            let is_valid = headers[AUTHORIZATION] == format!("Bearer {valid}").as_str();
            prop_assert!(generic.is_err() || is_valid);
            prop_assert!(google.is_err() || is_valid);
            Ok(())
        })
        .unwrap();
}

#[test]
fn any_changed_character_of_a_valid_token_is_refused() {
    let s = setup();
    let valid = s.issuer.mint(&s.issuer.claims(AUDIENCE));
    let len = valid.len();
    let alphabet: Vec<char> = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_."
        .chars()
        .collect();
    let mut runner = TestRunner::new(Config::with_cases(256));
    runner
        .run(
            &(0..len, prop::sample::select(alphabet)),
            |(at, replacement)| {
                let mut changed: Vec<char> = valid.chars().collect();
                prop_assume!(changed[at] != replacement);
                changed[at] = replacement;
                let changed: String = changed.into_iter().collect();
                let verdict = s.runtime.block_on(
                    s.verifier
                        .verify_generic_oidc(&bearer(&changed), &s.providers),
                );
                prop_assert!(verdict.is_err(), "accepted {changed}");
                Ok(())
            },
        )
        .unwrap();
}
