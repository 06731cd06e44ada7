//! Properties: what is signed verifies, any change is rejected, and no input
//! makes verification panic.
#![allow(clippy::unwrap_used)]

use fluxhook_signature::{Algorithm, Policy, Scheme, Verified, VerifyError, header};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};
use proptest::prelude::*;

/// Every scheme a policy accepts, with the algorithm its `Verified` reports.
fn accepted_schemes(policy: Policy) -> Vec<(Scheme, Option<Algorithm>)> {
    let hmac = |scheme, algorithm| (scheme, Some(algorithm));
    match policy {
        Policy::HubSignature => std::iter::once(hmac(Scheme::HubSignature256, Algorithm::Sha256))
            .chain(Algorithm::ALL.map(|a| hmac(Scheme::HubSignature(a), a)))
            .collect(),
        Policy::HubSignatureSha256 => vec![hmac(
            Scheme::HubSignature(Algorithm::Sha256),
            Algorithm::Sha256,
        )],
        Policy::XSignature => Algorithm::ALL
            .map(|a| hmac(Scheme::XSignature(a), a))
            .to_vec(),
        Policy::GitlabToken => vec![(Scheme::GitlabToken, None)],
        Policy::AuthorizationToken => vec![(Scheme::Authorization, None)],
        Policy::NexusSignature => vec![hmac(Scheme::NexusWebhookSignature, Algorithm::Sha1)],
        Policy::GiteaSignature => vec![hmac(Scheme::GiteaSignature, Algorithm::Sha256)],
        Policy::GogsSignature => vec![hmac(Scheme::GogsSignature, Algorithm::Sha256)],
        _ => unreachable!("a new policy needs its schemes listed here"),
    }
}

fn policy_and_scheme() -> impl Strategy<Value = (Policy, Scheme, Option<Algorithm>)> {
    let pairs: Vec<_> = Policy::ALL
        .into_iter()
        .flat_map(|p| accepted_schemes(p).into_iter().map(move |(s, a)| (p, s, a)))
        .collect();
    proptest::sample::select(pairs)
}

fn is_token(scheme: Scheme) -> bool {
    matches!(scheme, Scheme::GitlabToken | Scheme::Authorization)
}

fn signed(scheme: Scheme, body: &[u8], secret: &[u8]) -> Option<HeaderMap> {
    let (name, value) = scheme.sign(body, secret).ok()?;
    let mut headers = HeaderMap::new();
    headers.insert(name, value);
    Some(headers)
}

/// Secrets usable as tokens: visible ASCII without surrounding blanks.
fn token() -> impl Strategy<Value = Vec<u8>> {
    "[!-~]([ -~]{0,40}[!-~])?".prop_map(String::into_bytes)
}

fn secret() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![proptest::collection::vec(any::<u8>(), 1..200), token()]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..512)
}

proptest! {
    #[test]
    fn what_is_signed_verifies(
        (policy, scheme, algorithm) in policy_and_scheme(),
        body in body(),
        secret in secret(),
    ) {
        let signed = signed(scheme, &body, &secret);
        // Only tokens can fail to sign, and only when they are not header-safe.
        prop_assert!(signed.is_some() || is_token(scheme));
        if let Some(headers) = signed {
            prop_assert_eq!(
                policy.verify(&headers, &body, &secret),
                Ok(Verified { header: scheme.header_name(), algorithm })
            );
        }
    }

    #[test]
    fn every_header_safe_token_signs_and_verifies(
        (policy, scheme, _) in policy_and_scheme().prop_filter("tokens", |(_, s, _)| is_token(*s)),
        token in token(),
    ) {
        let headers = signed(scheme, b"", &token).unwrap();
        let verified = policy.verify(&headers, b"{}", &token);
        prop_assert!(verified.is_ok(), "{:?}", verified);
    }

    #[test]
    fn a_changed_body_is_rejected(
        (policy, scheme, _) in policy_and_scheme().prop_filter("HMACs cover the body", |(_, s, _)| !is_token(*s)),
        body in body(),
        other in body(),
        secret in secret(),
    ) {
        prop_assume!(body != other);
        let headers = signed(scheme, &body, &secret).unwrap();
        prop_assert_eq!(
            policy.verify(&headers, &other, &secret),
            Err(VerifyError::Mismatch { header: scheme.header_name() })
        );
    }

    #[test]
    fn a_changed_secret_is_rejected(
        (policy, scheme, _) in policy_and_scheme(),
        body in body(),
        secret in secret(),
        other in secret(),
    ) {
        prop_assume!(secret != other);
        if let Some(headers) = signed(scheme, &body, &secret) {
            prop_assert_eq!(
                policy.verify(&headers, &body, &other),
                Err(VerifyError::Mismatch { header: scheme.header_name() })
            );
        }
    }

    #[test]
    fn a_changed_signature_is_rejected(
        (policy, scheme, _) in policy_and_scheme().prop_filter("HMACs", |(_, s, _)| !is_token(*s)),
        body in body(),
        secret in secret(),
        position in any::<proptest::sample::Index>(),
        shift in 1u8..16,
    ) {
        let (name, value) = scheme.sign(&body, &secret).unwrap();
        let mut value = value.as_bytes().to_vec();
        // Change one hex digit (never the prefix) to a different hex digit.
        let start = value.iter().position(|b| *b == b'=').map_or(0, |i| i + 1);
        let i = start + position.index(value.len() - start);
        let digit = char::from(value[i]).to_digit(16).unwrap();
        value[i] = char::from_digit((digit + u32::from(shift)) % 16, 16).unwrap() as u8;

        let mut headers = HeaderMap::new();
        headers.insert(name.clone(), HeaderValue::from_bytes(&value).unwrap());
        prop_assert_eq!(
            policy.verify(&headers, &body, &secret),
            Err(VerifyError::Mismatch { header: name })
        );
    }

    #[test]
    fn arbitrary_headers_never_panic(
        fields in proptest::collection::vec((header_name(), header_value()), 0..6),
        body in body(),
        secret in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            headers.append(name, value);
        }
        for policy in Policy::ALL {
            // Errors must also render without panicking.
            if let Err(err) = policy.verify(&headers, &body, &secret) {
                let (display, debug) = (err.to_string(), format!("{err:?}"));
                prop_assert!(!display.is_empty() && !debug.is_empty());
            }
        }
    }
}

fn header_name() -> impl Strategy<Value = HeaderName> {
    prop_oneof![
        Just(header::X_HUB_SIGNATURE_256),
        Just(header::X_HUB_SIGNATURE),
        Just(header::X_SIGNATURE),
        Just(header::X_GITEA_SIGNATURE),
        Just(header::X_GOGS_SIGNATURE),
        Just(header::X_NEXUS_WEBHOOK_SIGNATURE),
        Just(header::X_GITLAB_TOKEN),
        Just(AUTHORIZATION),
        "x-[a-z]{1,12}".prop_map(|n| HeaderName::try_from(n).unwrap()),
    ]
}

/// Any bytes a header value may hold (including non-UTF-8), and near-misses
/// of real signatures.
fn header_value() -> impl Strategy<Value = HeaderValue> {
    let raw = proptest::collection::vec(any::<u8>(), 0..160)
        .prop_filter_map("not a header value", |b| HeaderValue::from_bytes(&b).ok());
    let near = (
        "(sha1|sha256|sha512|md5|SHA256|)",
        "=?",
        "[0-9a-fA-F=\\x80-\\xff ]{0,140}",
    )
        .prop_filter_map("not a header value", |(p, eq, hex)| {
            HeaderValue::from_str(&format!("{p}{eq}{hex}")).ok()
        });
    prop_oneof![raw, near]
}
