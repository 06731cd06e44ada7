//! Why a token was refused or keys could not be had.
//!
//! No message carries the token. Values read from an unverified token (its
//! `iss`, `alg`, `kid`) are clipped and quoted, so a hostile token cannot
//! flood or forge log lines.

/// The longest part of an untrusted value an error message repeats.
const SHOWN_CHARS: usize = 100;

/// `value` cut to [`SHOWN_CHARS`] characters, for error messages.
pub(crate) fn clip(value: &str) -> String {
    match value.char_indices().nth(SHOWN_CHARS) {
        Some((end, _)) => format!("{}…", &value[..end]),
        None => value.to_owned(),
    }
}

/// Why a bearer token was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// No `Authorization` header, or one that is not `Bearer <token>`.
    #[error("the Authorization header is missing or malformed")]
    MissingAuthorization,

    /// `Authorization: Bearer` with nothing after it.
    #[error("the Authorization header is missing a bearer token")]
    EmptyBearer,

    /// The bearer token is not a well-formed signed JWT.
    #[error("malformed bearer token: {0}")]
    MalformedToken(#[from] MalformedToken),

    /// A `generic-oidc` Receiver without `spec.oidcProviders`.
    #[error("generic-oidc receiver has no oidcProviders configured")]
    NoOidcProviders,

    /// The token's `iss` names none of the Receiver's providers.
    #[error("no oidcProvider configured for issuer {issuer:?}")]
    NoProviderForIssuer {
        /// The token's `iss` claim, clipped.
        issuer: String,
    },

    /// The issuer's discovery document could not be fetched.
    #[error("OIDC discovery for issuer {issuer:?} failed: {source}")]
    Discovery {
        /// The configured issuer URL.
        issuer: String,
        /// What went wrong.
        source: FetchError,
    },

    /// The issuer's discovery document is not a usable OpenID provider configuration.
    #[error("the discovery document of issuer {issuer:?} is invalid: {reason}")]
    InvalidDiscovery {
        /// The configured issuer URL.
        issuer: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The discovery document names another issuer than the configured one.
    #[error(
        "issuer did not match the issuer returned by provider, expected {configured:?} got {discovered:?}"
    )]
    DiscoveredIssuerMismatch {
        /// The configured issuer URL.
        configured: String,
        /// The `issuer` of the discovery document, clipped.
        discovered: String,
    },

    /// The issuer's key set could not be fetched.
    #[error("fetching the JWKS at {jwks_uri:?} failed: {source}")]
    Jwks {
        /// The `jwks_uri` of the discovery document.
        jwks_uri: String,
        /// What went wrong.
        source: FetchError,
    },

    /// The issuer's key set is not a JWK Set.
    #[error("the JWKS at {jwks_uri:?} is invalid: {reason}")]
    InvalidJwks {
        /// The `jwks_uri` of the discovery document.
        jwks_uri: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The token's `alg` is not one we verify (`none`, HMAC, unknown), or
    /// the issuer does not advertise it.
    #[error("the token is signed with algorithm {alg:?}, which is not accepted")]
    UnsupportedAlgorithm {
        /// The token's `alg` header, clipped.
        alg: String,
    },

    /// The key named by `kid` is of another type than the token's `alg` needs.
    #[error("the token's algorithm {alg:?} does not fit key {kid:?}")]
    AlgorithmKeyMismatch {
        /// The token's `alg` header.
        alg: String,
        /// The token's `kid` header, clipped.
        kid: String,
    },

    /// No key in the issuer's JWKS has the token's `kid`, even after a refetch.
    #[error("no signing key with id {kid:?} in the issuer's JWKS")]
    UnknownKeyId {
        /// The token's `kid` header, clipped.
        kid: String,
    },

    /// The token has no `kid` and the issuer publishes no key for its `alg`.
    #[error("the issuer publishes no key for algorithm {alg:?}")]
    NoKeyForAlgorithm {
        /// The token's `alg` header.
        alg: String,
    },

    /// The signature does not verify with the issuer's key.
    #[error("the token signature is invalid")]
    BadSignature,

    /// A claim that must be present is absent.
    #[error("the token is missing the {claim:?} claim")]
    MissingClaim {
        /// The claim's name.
        claim: &'static str,
    },

    /// A claim has the wrong JSON type.
    #[error("the token's {claim:?} claim has the wrong type")]
    InvalidClaim {
        /// The claim's name.
        claim: &'static str,
    },

    /// The token's `iss` is not the expected issuer.
    #[error("the token issuer is {found:?}, want {expected}")]
    WrongIssuer {
        /// The accepted issuers, quoted.
        expected: String,
        /// The token's `iss` claim, clipped.
        found: String,
    },

    /// The token's `aud` does not include the expected audience.
    #[error("the token audience does not include {expected:?}")]
    WrongAudience {
        /// The audience the Receiver expects.
        expected: String,
    },

    /// `exp` is past, beyond the leeway.
    #[error("the token expired at {exp} (unix time)")]
    Expired {
        /// The token's `exp` claim.
        exp: i64,
    },

    /// `nbf` is ahead, beyond the leeway.
    #[error("the token is not valid before {nbf} (unix time)")]
    NotYetValid {
        /// The token's `nbf` claim.
        nbf: i64,
    },

    /// `iat` is ahead, beyond the leeway.
    #[error("the token was issued in the future, at {iat} (unix time)")]
    IssuedInFuture {
        /// The token's `iat` claim.
        iat: i64,
    },

    /// A `gcr` token for another service account than the Secret's `email`.
    #[error("token email is {found:?}, want {expected:?}")]
    EmailMismatch {
        /// The Secret's `email`.
        expected: String,
        /// The token's `email` claim, if it has one (clipped).
        found: Option<String>,
    },

    /// A `gcr` token whose `email_verified` is not `true`.
    #[error("token email {email:?} is not verified")]
    EmailNotVerified {
        /// The token's `email` claim, if it has one (clipped).
        email: Option<String>,
    },
}

/// What is wrong with the shape of a bearer token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MalformedToken {
    /// Longer than any ID token we expect.
    #[error("longer than {limit} bytes")]
    TooLong {
        /// The most bytes accepted.
        limit: usize,
    },
    /// Not `header.payload.signature`.
    #[error("not a JWT (expected three dot-separated parts)")]
    NotThreeParts,
    /// The header is not unpadded base64url.
    #[error("the header is not base64url")]
    HeaderNotBase64,
    /// The header is not a JSON object with a string `alg`.
    #[error("the header is not a JSON object with an \"alg\"")]
    HeaderNotJson,
    /// The header lists critical extensions, none of which we implement.
    #[error("the header has critical extensions (\"crit\")")]
    CriticalHeader,
    /// The payload is not unpadded base64url.
    #[error("the payload is not base64url")]
    PayloadNotBase64,
    /// The payload is not a JSON object.
    #[error("the payload is not a JSON object")]
    ClaimsNotJsonObject,
    /// The signature is not unpadded base64url.
    #[error("the signature is not base64url")]
    SignatureNotBase64,
}

/// Why a document could not be fetched from an issuer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    /// The server answered with a status other than 2xx.
    #[error("the server answered {status}")]
    Status {
        /// The HTTP status code.
        status: u16,
    },
    /// The body was larger than we read.
    #[error("the response is larger than {limit} bytes")]
    TooLarge {
        /// The most bytes read.
        limit: usize,
    },
    /// Connecting, sending or reading failed.
    #[error("{0}")]
    Transport(String),
    /// Configuring the HTTP client failed.
    #[error("cannot build the HTTP client: {0}")]
    Client(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_keeps_short_values_and_cuts_long_ones_on_char_boundaries() {
        assert_eq!(clip("https://issuer"), "https://issuer");
        let long = "é".repeat(SHOWN_CHARS + 5);
        let clipped = clip(&long);
        assert_eq!(clipped.chars().count(), SHOWN_CHARS + 1);
        assert!(clipped.ends_with('…'));
    }

    #[test]
    fn messages_quote_untrusted_values() {
        let err = VerifyError::NoProviderForIssuer {
            issuer: "evil\n2026 INFO accepted".into(),
        };
        assert_eq!(
            err.to_string(),
            r#"no oidcProvider configured for issuer "evil\n2026 INFO accepted""#
        );
    }
}
