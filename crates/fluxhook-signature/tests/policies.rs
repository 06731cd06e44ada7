//! Each policy against known vectors, and the shape of its errors.
//!
//! Vectors other than GitHub's documented example were computed independently
//! with Python's `hmac` module.
#![allow(clippy::unwrap_used)]

use fluxhook_signature::{
    Algorithm, Malformation, Policy, Scheme, SignError, Verified, VerifyError, header,
    verify_prefixed_signature,
};
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderName, HeaderValue};

const GITHUB_SECRET: &[u8] = b"It's a Secret to Everybody";
const GITHUB_BODY: &[u8] = b"Hello, World!";
const GITHUB_SHA1: &str = "01dc10d0c83e72ed246219cdd91669667fe2ca59";
const GITHUB_SHA256: &str = "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
const GITHUB_SHA512: &str = "11ed355a617e98134e842012a7944ccf59c10256cb182357bd7e3a42013ff07c\
                             376f8c14cf5cc1923da20b51d64256b2fb8ebbf100aa67a61326f61fea8111bc";

fn headers(pairs: &[(HeaderName, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(name.clone(), HeaderValue::from_str(value).unwrap());
    }
    map
}

fn verified(header: HeaderName, algorithm: Option<Algorithm>) -> Verified {
    Verified { header, algorithm }
}

#[test]
fn github_documented_example() {
    let map = headers(&[(
        header::X_HUB_SIGNATURE_256,
        &format!("sha256={GITHUB_SHA256}"),
    )]);
    assert_eq!(
        Policy::HubSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Ok(verified(
            header::X_HUB_SIGNATURE_256,
            Some(Algorithm::Sha256)
        ))
    );
}

#[test]
fn github_falls_back_to_the_legacy_header_only_when_the_new_one_is_absent() {
    let legacy = format!("sha1={GITHUB_SHA1}");
    let map = headers(&[(header::X_HUB_SIGNATURE, &legacy)]);
    assert_eq!(
        Policy::HubSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Ok(verified(header::X_HUB_SIGNATURE, Some(Algorithm::Sha1)))
    );

    // An empty X-Hub-Signature-256 counts as absent, as Go's Header.Get makes it.
    let map = headers(&[
        (header::X_HUB_SIGNATURE_256, ""),
        (header::X_HUB_SIGNATURE, &legacy),
    ]);
    assert_eq!(
        Policy::HubSignature
            .verify(&map, GITHUB_BODY, GITHUB_SECRET)
            .unwrap()
            .header,
        header::X_HUB_SIGNATURE
    );
}

#[test]
fn github_prefers_the_sha256_header() {
    let map = headers(&[
        (
            header::X_HUB_SIGNATURE_256,
            &format!("sha256={GITHUB_SHA256}"),
        ),
        (
            header::X_HUB_SIGNATURE,
            "sha1=0000000000000000000000000000000000000000",
        ),
    ]);
    assert_eq!(
        Policy::HubSignature
            .verify(&map, GITHUB_BODY, GITHUB_SECRET)
            .unwrap()
            .header,
        header::X_HUB_SIGNATURE_256
    );
}

#[test]
fn github_does_not_fall_back_when_the_sha256_header_fails() {
    // A forger who spoils X-Hub-Signature-256 must not get a SHA-1 check instead.
    let map = headers(&[
        (
            header::X_HUB_SIGNATURE_256,
            &format!("sha256={}", "0".repeat(64)),
        ),
        (header::X_HUB_SIGNATURE, &format!("sha1={GITHUB_SHA1}")),
    ]);
    assert_eq!(
        Policy::HubSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Err(VerifyError::Mismatch {
            header: header::X_HUB_SIGNATURE_256
        })
    );
}

#[test]
fn github_accepts_every_prefix_go_github_does() {
    for (algorithm, hex) in [
        (Algorithm::Sha1, GITHUB_SHA1),
        (Algorithm::Sha256, GITHUB_SHA256),
        (Algorithm::Sha512, GITHUB_SHA512),
    ] {
        for name in [header::X_HUB_SIGNATURE_256, header::X_HUB_SIGNATURE] {
            let map = headers(&[(name.clone(), &format!("{algorithm}={hex}"))]);
            let v = Policy::HubSignature
                .verify(&map, GITHUB_BODY, GITHUB_SECRET)
                .unwrap();
            assert_eq!((v.header, v.algorithm), (name, Some(algorithm)));
        }
    }
}

#[test]
fn github_reports_both_headers_when_neither_is_sent() {
    let err = Policy::HubSignature
        .verify(&HeaderMap::new(), GITHUB_BODY, GITHUB_SECRET)
        .unwrap_err();
    assert_eq!(
        err,
        VerifyError::MissingHeader {
            headers: vec![header::X_HUB_SIGNATURE_256, header::X_HUB_SIGNATURE]
        }
    );
    assert_eq!(
        err.to_string(),
        "missing x-hub-signature-256 or x-hub-signature header"
    );
}

#[test]
fn a_gitea_delivery_passes_github_and_both_native_policies() {
    // Gitea sends all three headers; the vector is the HMAC-SHA256 of the body.
    let secret = b"It's a Secret to Everybody";
    let map = headers(&[
        (header::X_GITEA_SIGNATURE, GITHUB_SHA256),
        (header::X_GOGS_SIGNATURE, GITHUB_SHA256),
        (
            header::X_HUB_SIGNATURE_256,
            &format!("sha256={GITHUB_SHA256}"),
        ),
    ]);
    for (policy, name) in [
        (Policy::HubSignature, header::X_HUB_SIGNATURE_256),
        (Policy::GiteaSignature, header::X_GITEA_SIGNATURE),
        (Policy::GogsSignature, header::X_GOGS_SIGNATURE),
    ] {
        let v = policy.verify(&map, GITHUB_BODY, secret).unwrap();
        assert_eq!((v.header, v.algorithm), (name, Some(Algorithm::Sha256)));
    }
}

#[test]
fn bitbucket_takes_sha256_in_x_hub_signature() {
    let map = headers(&[(header::X_HUB_SIGNATURE, &format!("sha256={GITHUB_SHA256}"))]);
    assert_eq!(
        Policy::HubSignatureSha256.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Ok(verified(header::X_HUB_SIGNATURE, Some(Algorithm::Sha256)))
    );
}

#[test]
fn bitbucket_rejects_other_algorithms_even_when_correct() {
    for (algorithm, hex) in [
        (Algorithm::Sha1, GITHUB_SHA1),
        (Algorithm::Sha512, GITHUB_SHA512),
    ] {
        let map = headers(&[(header::X_HUB_SIGNATURE, &format!("{algorithm}={hex}"))]);
        let err = Policy::HubSignatureSha256
            .verify(&map, GITHUB_BODY, GITHUB_SECRET)
            .unwrap_err();
        assert_eq!(
            err,
            VerifyError::UnsupportedAlgorithm {
                header: header::X_HUB_SIGNATURE,
                found: algorithm.name().to_owned(),
                accepted: &[Algorithm::Sha256],
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "x-hub-signature header is signed with \"{algorithm}\", which is not accepted \
                 here (accepted: sha256)"
            )
        );
    }
}

#[test]
fn bitbucket_ignores_x_hub_signature_256() {
    let map = headers(&[(
        header::X_HUB_SIGNATURE_256,
        &format!("sha256={GITHUB_SHA256}"),
    )]);
    assert_eq!(
        Policy::HubSignatureSha256.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Err(VerifyError::MissingHeader {
            headers: vec![header::X_HUB_SIGNATURE]
        })
    );
}

#[test]
fn generic_hmac_takes_sha1_sha256_and_sha512() {
    for (algorithm, hex) in [
        (Algorithm::Sha1, GITHUB_SHA1),
        (Algorithm::Sha256, GITHUB_SHA256),
        (Algorithm::Sha512, GITHUB_SHA512),
    ] {
        let map = headers(&[(header::X_SIGNATURE, &format!("{algorithm}={hex}"))]);
        assert_eq!(
            Policy::XSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
            Ok(verified(header::X_SIGNATURE, Some(algorithm)))
        );
    }
}

#[test]
fn unknown_prefixes_are_unsupported_algorithms() {
    let map = headers(&[(header::X_SIGNATURE, "md5=0123456789abcdef0123456789abcdef")]);
    let err = Policy::XSignature
        .verify(&map, GITHUB_BODY, GITHUB_SECRET)
        .unwrap_err();
    assert!(matches!(&err, VerifyError::UnsupportedAlgorithm { found, .. } if found == "md5"));
    assert_eq!(
        err.to_string(),
        "x-signature header is signed with \"md5\", which is not accepted here \
         (accepted: sha1, sha256 or sha512)"
    );

    // Prefixes are case-sensitive, as in go-github; an overlong one is cut.
    let map = headers(&[(header::X_SIGNATURE, &format!("SHA256={GITHUB_SHA256}"))]);
    assert!(matches!(
        Policy::XSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Err(VerifyError::UnsupportedAlgorithm { .. })
    ));
    let map = headers(&[(header::X_SIGNATURE, &format!("{}=00", "x".repeat(100)))]);
    let err = Policy::XSignature
        .verify(&map, GITHUB_BODY, GITHUB_SECRET)
        .unwrap_err();
    assert!(matches!(err, VerifyError::UnsupportedAlgorithm { found, .. } if found.len() == 16));
}

#[test]
fn a_value_without_prefix_is_malformed() {
    for value in [GITHUB_SHA256, &format!("={GITHUB_SHA256}")] {
        let map = headers(&[(header::X_SIGNATURE, value)]);
        let err = Policy::XSignature
            .verify(&map, GITHUB_BODY, GITHUB_SECRET)
            .unwrap_err();
        assert_eq!(
            err,
            VerifyError::Malformed {
                header: header::X_SIGNATURE,
                problem: Malformation::MissingPrefix
            }
        );
        assert_eq!(
            err.to_string(),
            "malformed x-signature header: the value has no `<algorithm>=` prefix"
        );
    }
}

#[test]
fn hex_is_checked_before_comparing() {
    let cases = [
        (
            format!("sha256={}", &GITHUB_SHA256[..40]),
            Malformation::WrongLength {
                algorithm: Algorithm::Sha256,
                found: 40,
            },
        ),
        (
            format!("sha256={GITHUB_SHA256}00"),
            Malformation::WrongLength {
                algorithm: Algorithm::Sha256,
                found: 66,
            },
        ),
        (format!("sha256={}", "zz".repeat(32)), Malformation::NotHex),
        (format!("sha256={GITHUB_SHA256}="), Malformation::NotHex),
        (format!("sha256= {GITHUB_SHA256}"), Malformation::NotHex),
    ];
    for (value, problem) in cases {
        let map = headers(&[(header::X_HUB_SIGNATURE_256, &value)]);
        assert_eq!(
            Policy::HubSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
            Err(VerifyError::Malformed {
                header: header::X_HUB_SIGNATURE_256,
                problem
            }),
            "{value}"
        );
    }
    let map = headers(&[(
        header::X_HUB_SIGNATURE_256,
        &format!("sha256={}", "0".repeat(40)),
    )]);
    assert_eq!(
        Policy::HubSignature
            .verify(&map, GITHUB_BODY, GITHUB_SECRET)
            .unwrap_err()
            .to_string(),
        "malformed x-hub-signature-256 header: the signature has 40 hex digits, HMAC-sha256 has 64"
    );
}

#[test]
fn uppercase_hex_is_accepted() {
    let map = headers(&[(
        header::X_HUB_SIGNATURE_256,
        &format!("sha256={}", GITHUB_SHA256.to_uppercase()),
    )]);
    assert!(
        Policy::HubSignature
            .verify(&map, GITHUB_BODY, GITHUB_SECRET)
            .is_ok()
    );
}

#[test]
fn non_utf8_values_are_malformed_not_panics() {
    let mut map = HeaderMap::new();
    map.insert(
        header::X_HUB_SIGNATURE_256,
        HeaderValue::from_bytes(b"sha256=\xff\xfe\x80").unwrap(),
    );
    assert_eq!(
        Policy::HubSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Err(VerifyError::Malformed {
            header: header::X_HUB_SIGNATURE_256,
            problem: Malformation::NotVisibleAscii
        })
    );
    // A token that is not UTF-8 is compared as bytes: a mismatch.
    map.insert(
        header::X_GITLAB_TOKEN,
        HeaderValue::from_bytes(b"\xff\xfe").unwrap(),
    );
    assert_eq!(
        Policy::GitlabToken.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Err(VerifyError::Mismatch {
            header: header::X_GITLAB_TOKEN
        })
    );
}

#[test]
fn repeated_headers_are_rejected() {
    let value = format!("sha256={GITHUB_SHA256}");
    let map = headers(&[
        (header::X_HUB_SIGNATURE_256, &value),
        (header::X_HUB_SIGNATURE_256, &value),
    ]);
    assert_eq!(
        Policy::HubSignature.verify(&map, GITHUB_BODY, GITHUB_SECRET),
        Err(VerifyError::Malformed {
            header: header::X_HUB_SIGNATURE_256,
            problem: Malformation::Repeated
        })
    );
    let map = headers(&[(header::X_GITLAB_TOKEN, "t"), (header::X_GITLAB_TOKEN, "t")]);
    assert!(matches!(
        Policy::GitlabToken.verify(&map, b"", b"t"),
        Err(VerifyError::Malformed {
            problem: Malformation::Repeated,
            ..
        })
    ));
}

#[test]
fn gitlab_compares_the_token() {
    let map = headers(&[(header::X_GITLAB_TOKEN, "s3cret-token")]);
    assert_eq!(
        Policy::GitlabToken.verify(&map, b"{}", b"s3cret-token"),
        Ok(verified(header::X_GITLAB_TOKEN, None))
    );
    for wrong in [&b"s3cret-tokeN"[..], b"s3cret", b"s3cret-token-and-more"] {
        assert_eq!(
            Policy::GitlabToken.verify(&map, b"{}", wrong),
            Err(VerifyError::Mismatch {
                header: header::X_GITLAB_TOKEN
            })
        );
    }
    assert_eq!(
        Policy::GitlabToken.verify(&HeaderMap::new(), b"{}", b"s3cret-token"),
        Err(VerifyError::MissingHeader {
            headers: vec![header::X_GITLAB_TOKEN]
        })
    );
}

#[test]
fn harbor_compares_the_whole_authorization_header() {
    let map = headers(&[(AUTHORIZATION, "Bearer s3cret")]);
    assert_eq!(
        Policy::AuthorizationToken.verify(&map, b"{}", b"Bearer s3cret"),
        Ok(verified(AUTHORIZATION, None))
    );
    assert_eq!(
        Policy::AuthorizationToken.verify(&map, b"{}", b"s3cret"),
        Err(VerifyError::Mismatch {
            header: AUTHORIZATION
        })
    );
}

#[test]
fn nexus_takes_bare_hex_sha1() {
    let body = br#"{"action":"CREATED","repositoryName":"maven-releases"}"#;
    let hex = "3a8538097430b7a330e89aa8b41a70fb4f6ba7f9";
    let map = headers(&[(header::X_NEXUS_WEBHOOK_SIGNATURE, hex)]);
    assert_eq!(
        Policy::NexusSignature.verify(&map, body, b"nexus-secret"),
        Ok(verified(
            header::X_NEXUS_WEBHOOK_SIGNATURE,
            Some(Algorithm::Sha1)
        ))
    );
    // notification-controller compares the text with the lower-case hex.
    let map = headers(&[(header::X_NEXUS_WEBHOOK_SIGNATURE, &hex.to_uppercase())]);
    assert_eq!(
        Policy::NexusSignature.verify(&map, body, b"nexus-secret"),
        Err(VerifyError::Mismatch {
            header: header::X_NEXUS_WEBHOOK_SIGNATURE
        })
    );
    let map = headers(&[(header::X_NEXUS_WEBHOOK_SIGNATURE, &format!("sha1={hex}"))]);
    assert_eq!(
        Policy::NexusSignature.verify(&map, body, b"nexus-secret"),
        Err(VerifyError::Malformed {
            header: header::X_NEXUS_WEBHOOK_SIGNATURE,
            problem: Malformation::NotHex
        })
    );
}

#[test]
fn empty_secrets_are_refused() {
    for policy in Policy::ALL {
        let (name, value) = policy.signing_scheme().sign(b"{}", b"k").unwrap();
        let mut map = HeaderMap::new();
        map.insert(name, value);
        assert_eq!(
            policy.verify(&map, b"{}", b""),
            Err(VerifyError::EmptySecret),
            "{policy:?}"
        );
        assert_eq!(
            policy.signing_scheme().sign(b"{}", b""),
            Err(SignError::EmptySecret)
        );
    }
    // An empty token header with an empty secret must not pass either.
    let map = headers(&[(header::X_GITLAB_TOKEN, "")]);
    assert_eq!(
        Policy::GitlabToken.verify(&map, b"", b""),
        Err(VerifyError::EmptySecret)
    );
}

#[test]
fn errors_never_show_the_expected_signature_or_the_secret() {
    let secret = b"It's a Secret to Everybody";
    let forbidden = [
        GITHUB_SHA1.to_owned(),
        GITHUB_SHA256.to_owned(),
        GITHUB_SHA512.to_owned(),
        GITHUB_SHA256.to_uppercase(),
        String::from_utf8_lossy(secret).into_owned(),
    ];
    let mut errors = Vec::new();
    for value in [
        format!("sha256={}", "0".repeat(64)),
        format!("sha1={}", "0".repeat(40)),
        format!("sha256={}", "0".repeat(10)),
        "md5=00".to_owned(),
        "nonsense".to_owned(),
    ] {
        for policy in Policy::ALL {
            let map = headers(&[
                (header::X_HUB_SIGNATURE_256, &value),
                (header::X_HUB_SIGNATURE, &value),
                (header::X_SIGNATURE, &value),
                (header::X_GITEA_SIGNATURE, &value),
                (header::X_GOGS_SIGNATURE, &value),
                (header::X_NEXUS_WEBHOOK_SIGNATURE, &value),
                (header::X_GITLAB_TOKEN, &value),
                (AUTHORIZATION, &value),
            ]);
            errors.push(policy.verify(&map, GITHUB_BODY, secret).unwrap_err());
        }
    }
    errors.push(
        Policy::HubSignature
            .verify(&HeaderMap::new(), GITHUB_BODY, secret)
            .unwrap_err(),
    );
    for err in errors {
        for text in [err.to_string(), format!("{err:?}")] {
            for secret_text in &forbidden {
                assert!(
                    !text.contains(secret_text.as_str()),
                    "{text} shows a secret value"
                );
            }
        }
    }
    // A signed token is marked sensitive, so http redacts it in Debug.
    let (_, value) = Scheme::GitlabToken.sign(b"", secret).unwrap();
    assert!(!format!("{value:?}").contains("Secret"));
}

#[test]
fn tokens_that_cannot_be_header_values_are_refused() {
    for token in [&b"line\nbreak"[..], b"nul\0", b" padded", b"padded\t"] {
        assert_eq!(
            Scheme::GitlabToken.sign(b"", token),
            Err(SignError::NotHeaderValue {
                header: header::X_GITLAB_TOKEN
            })
        );
    }
}

#[test]
fn policies_are_found_by_their_names_only() {
    for policy in Policy::ALL {
        assert_eq!(Policy::named(policy.name()), Some(policy));
    }
    // Flux's receiver type names are not policy names: which policy a type
    // uses is fluxhook_api::ReceiverType::authentication's to say.
    for other in [
        "github",
        "gitlab",
        "bitbucket",
        "generic-hmac",
        "harbor",
        "nexus",
        "generic",
        "Hub-Signature",
        "hub-signature ",
        "",
    ] {
        assert_eq!(Policy::named(other), None, "{other}");
    }
}

#[test]
fn every_signing_scheme_passes_its_policy() {
    for policy in Policy::ALL {
        let scheme = policy.signing_scheme();
        let (name, value) = scheme.sign(GITHUB_BODY, GITHUB_SECRET).unwrap();
        assert_eq!(name, scheme.header_name());
        let mut map = HeaderMap::new();
        map.insert(name.clone(), value);
        assert_eq!(
            policy
                .verify(&map, GITHUB_BODY, GITHUB_SECRET)
                .unwrap()
                .header,
            name
        );
    }
}

#[test]
fn the_low_level_verifier_takes_any_header() {
    let name = HeaderName::from_static("x-custom-signature");
    let map = headers(&[(name.clone(), &format!("sha512={GITHUB_SHA512}"))]);
    let v = verify_prefixed_signature(&map, &name, &Algorithm::ALL, GITHUB_BODY, GITHUB_SECRET)
        .unwrap();
    assert_eq!((v.header, v.algorithm), (name, Some(Algorithm::Sha512)));
}
