//! The two Receiver flows over one cache of issuer keys.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use fluxhook_api::OidcProvider;
use http::HeaderMap;
use serde_json::{Map, Value};

use crate::cache::KeyCache;
use crate::claims::{ClaimRules, string_claim};
use crate::error::{VerifyError, clip};
use crate::jws::{UnverifiedToken, verify_signature};
use crate::source::KeySource;

/// Google's issuer: the `iss` of the ID tokens Pub/Sub push subscriptions send.
pub const GOOGLE_ISSUER: &str = "https://accounts.google.com";

/// How an [`OidcVerifier`] caches keys and judges time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierConfig {
    /// How long an issuer's discovery document and keys are used before they
    /// are fetched again.
    pub cache_ttl: Duration,
    /// The least time between two fetches for one issuer, including the
    /// refetch a token with an unknown key id (a key rotation) asks for.
    pub min_refresh_interval: Duration,
    /// Clock skew allowed on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// The issuer of `gcr` tokens, discovered like any other: Google's in
    /// production, a local one in tests.
    pub google_issuer: String,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        Self {
            cache_ttl: Duration::from_secs(60 * 60),
            min_refresh_interval: Duration::from_secs(30),
            leeway: Duration::from_secs(60),
            google_issuer: GOOGLE_ISSUER.to_owned(),
        }
    }
}

/// What a `gcr` Receiver's Secret asks of the Pub/Sub push token.
///
/// Flux (2.8) treats both keys as optional for compatibility: without
/// `audience` the `aud` claim is not checked, and without `email` any
/// verified email is accepted. Both are meant to become required.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcrRequirements {
    /// The Secret's `audience`: the push subscription's audience.
    pub audience: Option<String>,
    /// The Secret's `email`: the push subscription's service account.
    pub email: Option<String>,
}

impl GcrRequirements {
    /// The requirements from the Secret's `audience` and `email` values
    /// (missing keys passed as `""`): empty counts as absent, as in Flux.
    ///
    /// ```
    /// use fluxhook_oidc::GcrRequirements;
    ///
    /// let req = GcrRequirements::new("https://hook.example/hook/abc", "");
    /// assert_eq!(req.audience.as_deref(), Some("https://hook.example/hook/abc"));
    /// assert_eq!(req.email, None);
    /// ```
    pub fn new(audience: &str, email: &str) -> Self {
        let given = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        Self {
            audience: given(audience),
            email: given(email),
        }
    }
}

/// A `generic-oidc` token that verified: the provider that accepted it and
/// the claims, for the provider's CEL variables and validations.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericOidcToken<'p> {
    /// The provider whose `issuerURL` is the token's `iss`.
    pub provider: &'p OidcProvider,
    /// The verified claims, a JSON object.
    pub claims: Value,
}

/// Verifies bearer ID tokens, keeping each issuer's discovery document and
/// keys in a cache. Cheap to share: wrap it in an `Arc`.
pub struct OidcVerifier {
    source: Arc<dyn KeySource>,
    cache: KeyCache,
    config: VerifierConfig,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The bearer token of `Authorization: Bearer <token>`, as Flux reads it:
/// the first `Authorization` header, the exact prefix `Bearer `, the rest
/// trimmed.
///
/// ```
/// use fluxhook_oidc::{bearer_token, VerifyError};
/// use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
///
/// let mut headers = HeaderMap::new();
/// assert_eq!(bearer_token(&headers), Err(VerifyError::MissingAuthorization));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer  eyJ.e30.c2ln "));
/// assert_eq!(bearer_token(&headers), Ok("eyJ.e30.c2ln"));
/// headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer "));
/// assert_eq!(bearer_token(&headers), Err(VerifyError::EmptyBearer));
/// ```
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, VerifyError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(VerifyError::MissingAuthorization)?;
    let token = value
        .strip_prefix("Bearer ")
        .ok_or(VerifyError::MissingAuthorization)?
        .trim();
    if token.is_empty() {
        return Err(VerifyError::EmptyBearer);
    }
    Ok(token)
}

impl OidcVerifier {
    /// A verifier fetching from `source`, with the default configuration.
    pub fn new(source: Arc<dyn KeySource>) -> Self {
        Self::with_config(source, VerifierConfig::default())
    }

    /// A verifier fetching from `source`, configured by `config`.
    pub fn with_config(source: Arc<dyn KeySource>, config: VerifierConfig) -> Self {
        Self {
            source,
            cache: KeyCache::new(config.cache_ttl, config.min_refresh_interval),
            config,
        }
    }

    /// Verifies the bearer token of a `generic-oidc` request against the
    /// Receiver's `spec.oidcProviders`, as Flux does: the provider whose
    /// `issuerURL` equals the token's `iss` is chosen (issuer URLs are unique
    /// in a Receiver, so this is the one provider that could accept it), its
    /// keys are discovered, and the token must be signed by one of them and
    /// name the provider's audience (`notification-controller` by default).
    ///
    /// The CEL variables and validations of the provider are the caller's
    /// to evaluate over the returned claims.
    pub async fn verify_generic_oidc<'p>(
        &self,
        headers: &HeaderMap,
        providers: &'p [OidcProvider],
    ) -> Result<GenericOidcToken<'p>, VerifyError> {
        if providers.is_empty() {
            return Err(VerifyError::NoOidcProviders);
        }
        let token = UnverifiedToken::parse(bearer_token(headers)?)?;
        let iss = string_claim(&token.claims, "iss")?
            .ok_or(VerifyError::MissingClaim { claim: "iss" })?;
        let provider = providers
            .iter()
            .find(|p| p.issuer_url == iss)
            .ok_or_else(|| VerifyError::NoProviderForIssuer { issuer: clip(iss) })?;
        let issuers = [provider.issuer_url.clone()];
        let rules = ClaimRules {
            issuers: &issuers,
            audience: Some(provider.audience_or_default()),
            leeway: self.leeway_seconds(),
        };
        let claims = self.verify(token, &provider.issuer_url, &rules).await?;
        Ok(GenericOidcToken {
            provider,
            claims: Value::Object(claims),
        })
    }

    /// Verifies the bearer token of a `gcr` request (a Google Pub/Sub push),
    /// as Flux does with Google's ID token validator: signed by the Google
    /// issuer's keys, `iss` that issuer (Google also writes it without
    /// `https://`), `aud` the Secret's `audience`, `email` the Secret's
    /// `email` and `email_verified` true. Returns the verified claims.
    pub async fn verify_gcr(
        &self,
        headers: &HeaderMap,
        requirements: &GcrRequirements,
    ) -> Result<Value, VerifyError> {
        let token = UnverifiedToken::parse(bearer_token(headers)?)?;
        let issuer = &self.config.google_issuer;
        let issuers = google_issuer_spellings(issuer);
        let rules = ClaimRules {
            issuers: &issuers,
            audience: requirements.audience.as_deref(),
            leeway: self.leeway_seconds(),
        };
        let claims = self.verify(token, issuer, &rules).await?;
        check_email(&claims, requirements.email.as_deref())?;
        Ok(Value::Object(claims))
    }

    /// Checks algorithm, signature and claims of `token` from `issuer`.
    async fn verify(
        &self,
        token: UnverifiedToken<'_>,
        issuer: &str,
        rules: &ClaimRules<'_>,
    ) -> Result<Map<String, Value>, VerifyError> {
        let alg = token.algorithm()?;
        let source = &*self.source;
        let keys = self.cache.keys(source, issuer, None).await?;
        if !keys.advertises(&token.alg) {
            return Err(VerifyError::UnsupportedAlgorithm {
                alg: token.alg.clone(),
            });
        }
        match verify_signature(&token, alg, &keys.keys) {
            // The issuer may have rotated its keys since we fetched them.
            Err(VerifyError::UnknownKeyId { .. }) => {
                let keys = self.cache.keys(source, issuer, Some(&keys)).await?;
                verify_signature(&token, alg, &keys.keys)?;
            }
            other => other?,
        }
        rules.check(&token.claims, unix_now())?;
        Ok(token.claims)
    }

    fn leeway_seconds(&self) -> i64 {
        i64::try_from(self.config.leeway.as_secs()).unwrap_or(i64::MAX)
    }
}

/// The `iss` values of tokens from `issuer`: itself, and for an `https`
/// issuer also its bare host form, which Google uses too
/// (`accounts.google.com`).
fn google_issuer_spellings(issuer: &str) -> Vec<String> {
    let mut spellings = vec![issuer.to_owned()];
    spellings.extend(issuer.strip_prefix("https://").map(str::to_owned));
    spellings
}

/// Flux's checks of a `gcr` token's service account.
fn check_email(claims: &Map<String, Value>, expected: Option<&str>) -> Result<(), VerifyError> {
    let email = claims.get("email").and_then(Value::as_str);
    if let Some(expected) = expected
        && email != Some(expected)
    {
        return Err(VerifyError::EmailMismatch {
            expected: expected.to_owned(),
            found: email.map(clip),
        });
    }
    if claims.get("email_verified") != Some(&Value::Bool(true)) {
        return Err(VerifyError::EmailNotVerified {
            email: email.map(clip),
        });
    }
    Ok(())
}

/// Seconds since the Unix epoch; a clock before 1970 counts as 1970.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn google_issuer_has_two_spellings() {
        assert_eq!(
            google_issuer_spellings(GOOGLE_ISSUER),
            ["https://accounts.google.com", "accounts.google.com"]
        );
        assert_eq!(
            google_issuer_spellings("http://127.0.0.1:8080"),
            ["http://127.0.0.1:8080"]
        );
    }

    #[test]
    fn email_rules_follow_flux() {
        let sa = "push@project.iam.gserviceaccount.com";
        let verified = object(json!({"email": sa, "email_verified": true}));
        assert_eq!(check_email(&verified, Some(sa)), Ok(()));
        assert_eq!(check_email(&verified, None), Ok(()));
        assert_eq!(
            check_email(&verified, Some("other@x")),
            Err(VerifyError::EmailMismatch {
                expected: "other@x".into(),
                found: Some(sa.into())
            })
        );
        let unverified = object(json!({"email": sa, "email_verified": "true"}));
        assert_eq!(
            check_email(&unverified, None),
            Err(VerifyError::EmailNotVerified {
                email: Some(sa.into())
            })
        );
        assert_eq!(
            check_email(&Map::new(), Some(sa)),
            Err(VerifyError::EmailMismatch {
                expected: sa.into(),
                found: None
            })
        );
    }
}
