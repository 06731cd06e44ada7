//! The registered claims of an ID token: issuer, audience and the times.
//! Pure: the caller passes the clock.

use serde_json::{Map, Value};

use crate::error::{VerifyError, clip};

/// What the claims of a token with a good signature must say.
#[derive(Debug)]
pub(crate) struct ClaimRules<'a> {
    /// The accepted values of `iss` (Google has two spellings).
    pub(crate) issuers: &'a [String],
    /// The audience `aud` must include; `None` skips the check (Flux's `gcr`
    /// receiver without an `audience` in its Secret).
    pub(crate) audience: Option<&'a str>,
    /// Clock skew allowed on `exp`, `nbf` and `iat`, in seconds.
    pub(crate) leeway: i64,
}

impl ClaimRules<'_> {
    /// Checks `claims` at `now` (unix seconds).
    pub(crate) fn check(&self, claims: &Map<String, Value>, now: i64) -> Result<(), VerifyError> {
        let iss = string_claim(claims, "iss")?.ok_or(VerifyError::MissingClaim { claim: "iss" })?;
        if !self.issuers.iter().any(|accepted| accepted == iss) {
            return Err(VerifyError::WrongIssuer {
                expected: self
                    .issuers
                    .iter()
                    .map(|i| format!("{i:?}"))
                    .collect::<Vec<_>>()
                    .join(" or "),
                found: clip(iss),
            });
        }
        if let Some(expected) = self.audience
            && !audience_includes(claims, expected)?
        {
            return Err(VerifyError::WrongAudience {
                expected: expected.to_owned(),
            });
        }
        // Like go-oidc (Flux's verifier), a token without `exp` never expires
        // acceptably: it is refused.
        let exp = time_claim(claims, "exp")?.ok_or(VerifyError::MissingClaim { claim: "exp" })?;
        if now > exp.saturating_add(self.leeway) {
            return Err(VerifyError::Expired { exp });
        }
        if let Some(nbf) = time_claim(claims, "nbf")?
            && now.saturating_add(self.leeway) < nbf
        {
            return Err(VerifyError::NotYetValid { nbf });
        }
        if let Some(iat) = time_claim(claims, "iat")?
            && now.saturating_add(self.leeway) < iat
        {
            return Err(VerifyError::IssuedInFuture { iat });
        }
        Ok(())
    }
}

/// A claim that must be a string when present.
pub(crate) fn string_claim<'c>(
    claims: &'c Map<String, Value>,
    claim: &'static str,
) -> Result<Option<&'c str>, VerifyError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(VerifyError::InvalidClaim { claim }),
    }
}

/// Whether `aud`, a string or an array of strings, includes `expected`.
fn audience_includes(claims: &Map<String, Value>, expected: &str) -> Result<bool, VerifyError> {
    const CLAIM: &str = "aud";
    match claims.get(CLAIM) {
        None => Err(VerifyError::MissingClaim { claim: CLAIM }),
        Some(Value::String(aud)) => Ok(aud == expected),
        Some(Value::Array(auds)) => {
            let mut found = false;
            for aud in auds {
                match aud {
                    Value::String(aud) => found |= aud == expected,
                    _ => return Err(VerifyError::InvalidClaim { claim: CLAIM }),
                }
            }
            Ok(found)
        }
        Some(_) => Err(VerifyError::InvalidClaim { claim: CLAIM }),
    }
}

/// A NumericDate claim (RFC 7519 §2): seconds, possibly fractional, which
/// are cut to whole seconds.
fn time_claim(
    claims: &Map<String, Value>,
    claim: &'static str,
) -> Result<Option<i64>, VerifyError> {
    match claims.get(claim) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let seconds = n
                .as_i64()
                // Saturating float-to-int conversion: huge values stay huge.
                .or_else(|| n.as_f64().map(|f| f.floor() as i64))
                .ok_or(VerifyError::InvalidClaim { claim })?;
            Ok(Some(seconds))
        }
        Some(_) => Err(VerifyError::InvalidClaim { claim }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    const NOW: i64 = 1_700_000_000;

    fn check(claims: Value, audience: Option<&str>) -> Result<(), VerifyError> {
        let issuers = ["https://issuer".to_owned()];
        let rules = ClaimRules {
            issuers: &issuers,
            audience,
            leeway: 60,
        };
        let Value::Object(claims) = claims else {
            unreachable!("tests pass objects")
        };
        rules.check(&claims, NOW)
    }

    fn valid() -> Value {
        json!({"iss": "https://issuer", "aud": "flux", "exp": NOW + 300, "iat": NOW, "nbf": NOW})
    }

    fn with(key: &str, value: Value) -> Value {
        let mut claims = valid();
        claims[key] = value;
        claims
    }

    fn without(key: &str) -> Value {
        let mut claims = valid();
        claims.as_object_mut().unwrap().remove(key);
        claims
    }

    #[test]
    fn accepts_valid_claims() {
        assert_eq!(check(valid(), Some("flux")), Ok(()));
        assert_eq!(
            check(with("aud", json!(["x", "flux"])), Some("flux")),
            Ok(())
        );
        assert_eq!(check(with("exp", json!(1.9e9)), Some("flux")), Ok(()));
        assert_eq!(check(without("nbf"), Some("flux")), Ok(()));
        assert_eq!(check(without("iat"), Some("flux")), Ok(()));
    }

    #[test]
    fn issuer_must_match_exactly() {
        assert_eq!(
            check(with("iss", json!("https://issuer/")), None),
            Err(VerifyError::WrongIssuer {
                expected: r#""https://issuer""#.into(),
                found: "https://issuer/".into()
            })
        );
        assert_eq!(
            check(without("iss"), None),
            Err(VerifyError::MissingClaim { claim: "iss" })
        );
        assert_eq!(
            check(with("iss", json!(1)), None),
            Err(VerifyError::InvalidClaim { claim: "iss" })
        );
    }

    #[test]
    fn audience_string_or_array() {
        let wrong = Err(VerifyError::WrongAudience {
            expected: "flux".into(),
        });
        assert_eq!(check(with("aud", json!("other")), Some("flux")), wrong);
        assert_eq!(check(with("aud", json!([])), Some("flux")), wrong);
        assert_eq!(
            check(with("aud", json!(["flux", 1])), Some("flux")),
            Err(VerifyError::InvalidClaim { claim: "aud" })
        );
        assert_eq!(
            check(without("aud"), Some("flux")),
            Err(VerifyError::MissingClaim { claim: "aud" })
        );
        assert_eq!(check(with("aud", json!("other")), None), Ok(()));
    }

    #[test]
    fn times_with_leeway() {
        assert_eq!(check(with("exp", json!(NOW - 60)), None), Ok(()));
        assert_eq!(
            check(with("exp", json!(NOW - 61)), None),
            Err(VerifyError::Expired { exp: NOW - 61 })
        );
        assert_eq!(
            check(without("exp"), None),
            Err(VerifyError::MissingClaim { claim: "exp" })
        );
        assert_eq!(
            check(with("exp", json!("tomorrow")), None),
            Err(VerifyError::InvalidClaim { claim: "exp" })
        );
        assert_eq!(check(with("nbf", json!(NOW + 60)), None), Ok(()));
        assert_eq!(
            check(with("nbf", json!(NOW + 61)), None),
            Err(VerifyError::NotYetValid { nbf: NOW + 61 })
        );
        assert_eq!(
            check(with("iat", json!(NOW + 61)), None),
            Err(VerifyError::IssuedInFuture { iat: NOW + 61 })
        );
        assert_eq!(
            check(with("exp", json!(-1e300)), None),
            Err(VerifyError::Expired { exp: i64::MIN })
        );
        assert_eq!(check(with("exp", json!(u64::MAX)), None), Ok(()));
    }

    proptest! {
        #[test]
        fn never_panics_on_any_claim_values(
            exp in any::<f64>(), nbf in any::<i64>(), iat in any::<u64>(), now in any::<i64>()
        ) {
            let issuers = ["i".to_owned()];
            let rules = ClaimRules { issuers: &issuers, audience: Some("a"), leeway: i64::MAX };
            let claims = json!({"iss": "i", "aud": "a", "exp": exp, "nbf": nbf, "iat": iat});
            let Value::Object(claims) = claims else { unreachable!() };
            let _ = rules.check(&claims, now);
        }
    }
}
