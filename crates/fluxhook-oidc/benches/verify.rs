//! Cost of verifying one bearer token once the issuer's keys are cached:
//! what every `generic-oidc` (ES256 here) and `gcr` (RS256, as Google signs)
//! request pays. Keys come from memory; the cache is warmed before measuring.
#![allow(clippy::unwrap_used)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fluxhook_api::OidcProvider;
use fluxhook_oidc::testing::{TestIssuer, bearer};
use fluxhook_oidc::{GcrRequirements, OidcVerifier, VerifierConfig};
use serde_json::json;

fn verify(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("verify");

    let issuer = runtime.block_on(TestIssuer::start()).unwrap();
    let providers: Vec<OidcProvider> = serde_json::from_value(json!([{
        "issuerURL": issuer.url(),
        "validations": [{"expression": "true", "message": "never"}],
    }]))
    .unwrap();
    let verifier = OidcVerifier::new(issuer.key_source());
    let headers = bearer(&issuer.mint(&issuer.claims("notification-controller")));
    runtime
        .block_on(verifier.verify_generic_oidc(&headers, &providers))
        .unwrap();
    group.bench_function("generic_oidc_es256", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify_generic_oidc(black_box(&headers), &providers))
                .unwrap()
        })
    });

    let google = runtime.block_on(TestIssuer::start_rs256()).unwrap();
    let verifier = OidcVerifier::with_config(
        google.key_source(),
        VerifierConfig {
            google_issuer: google.url().to_owned(),
            ..Default::default()
        },
    );
    let email = "push@project.iam.gserviceaccount.com";
    let mut claims = google.claims("https://hooks.example/hook/abc");
    claims["email"] = json!(email);
    claims["email_verified"] = json!(true);
    let headers = bearer(&google.mint(&claims));
    let requirements = GcrRequirements::new("https://hooks.example/hook/abc", email);
    runtime
        .block_on(verifier.verify_gcr(&headers, &requirements))
        .unwrap();
    group.bench_function("gcr_rs256", |b| {
        b.iter(|| {
            runtime
                .block_on(verifier.verify_gcr(black_box(&headers), &requirements))
                .unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, verify);
criterion_main!(benches);
