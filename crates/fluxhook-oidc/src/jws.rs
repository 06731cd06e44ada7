//! Compact JWS: splitting a token, the algorithms we accept, the keys of a
//! JWK Set and checking a signature. Pure: no I/O, no clock.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{MalformedToken, VerifyError, clip};

/// The longest bearer token we parse. ID tokens are a few KiB at most; the
/// bound keeps a hostile header from costing more than a small decode.
pub(crate) const MAX_TOKEN_BYTES: usize = 16 * 1024;

/// A token split and decoded, its signature not yet checked.
#[derive(Debug)]
pub(crate) struct UnverifiedToken<'t> {
    /// The `alg` header.
    pub(crate) alg: String,
    /// The `kid` header, if any.
    pub(crate) kid: Option<String>,
    /// The decoded payload.
    pub(crate) claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    signing_input: &'t str,
    /// The signature, still base64url (as jsonwebtoken wants it).
    signature: &'t str,
}

#[derive(Deserialize)]
struct Header {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    crit: Option<Value>,
}

impl<'t> UnverifiedToken<'t> {
    /// Splits and decodes `token`; checks shape only.
    pub(crate) fn parse(token: &'t str) -> Result<Self, MalformedToken> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(MalformedToken::TooLong {
                limit: MAX_TOKEN_BYTES,
            });
        }
        let (signing_input, signature) = token
            .rsplit_once('.')
            .ok_or(MalformedToken::NotThreeParts)?;
        let (header, payload) = signing_input
            .split_once('.')
            .ok_or(MalformedToken::NotThreeParts)?;
        if payload.contains('.') {
            return Err(MalformedToken::NotThreeParts);
        }
        let header = URL_SAFE_NO_PAD
            .decode(header)
            .map_err(|_| MalformedToken::HeaderNotBase64)?;
        let header: Header =
            serde_json::from_slice(&header).map_err(|_| MalformedToken::HeaderNotJson)?;
        // RFC 7515 §4.1.11: a recipient must refuse critical extensions it
        // does not implement, and we implement none.
        if header.crit.is_some() {
            return Err(MalformedToken::CriticalHeader);
        }
        let payload = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| MalformedToken::PayloadNotBase64)?;
        let claims = match serde_json::from_slice(&payload) {
            Ok(Value::Object(claims)) => claims,
            _ => return Err(MalformedToken::ClaimsNotJsonObject),
        };
        if URL_SAFE_NO_PAD.decode(signature).is_err() {
            return Err(MalformedToken::SignatureNotBase64);
        }
        Ok(Self {
            alg: header.alg,
            kid: header.kid,
            claims,
            signing_input,
            signature,
        })
    }

    /// The token's algorithm, if it is one we verify at all.
    pub(crate) fn algorithm(&self) -> Result<Algorithm, VerifyError> {
        accepted_algorithm(&self.alg).ok_or_else(|| VerifyError::UnsupportedAlgorithm {
            alg: clip(&self.alg),
        })
    }
}

/// The JWS algorithms we verify, by name: asymmetric ones only. `none` and
/// the HMAC family are absent on purpose: with a public key as the HMAC
/// secret anyone could sign (the classic algorithm-confusion attack).
pub(crate) fn accepted_algorithm(name: &str) -> Option<Algorithm> {
    Some(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        _ => return None,
    })
}

/// The kinds of public key we verify with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl KeyKind {
    /// Whether a signature made with `alg` can come from a key of this kind.
    fn fits(self, alg: Algorithm) -> bool {
        match self {
            KeyKind::Rsa => matches!(
                alg,
                Algorithm::RS256
                    | Algorithm::RS384
                    | Algorithm::RS512
                    | Algorithm::PS256
                    | Algorithm::PS384
                    | Algorithm::PS512
            ),
            KeyKind::EcP256 => alg == Algorithm::ES256,
            KeyKind::EcP384 => alg == Algorithm::ES384,
            KeyKind::Ed25519 => alg == Algorithm::EdDSA,
        }
    }
}

/// One usable signing key of an issuer.
pub(crate) struct PublicKey {
    kid: Option<String>,
    kind: KeyKind,
    /// The JWK's own `alg`, which then is the only algorithm it verifies.
    alg: Option<Algorithm>,
    key: DecodingKey,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("kid", &self.kid)
            .field("kind", &self.kind)
            .field("alg", &self.alg)
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    fn fits(&self, alg: Algorithm) -> bool {
        self.kind.fits(alg) && self.alg.is_none_or(|own| own == alg)
    }

    /// Reads one JWK; `None` for keys we cannot or must not verify with
    /// (symmetric, encryption-only, unknown type or curve, bad encoding).
    fn from_jwk(jwk: &Value) -> Option<Self> {
        let field = |name: &str| jwk.get(name).and_then(Value::as_str);
        if field("use").is_some_and(|usage| usage != "sig") {
            return None;
        }
        let alg = match field("alg") {
            Some(name) => Some(accepted_algorithm(name)?),
            None => None,
        };
        let (kind, key) = match (field("kty")?, field("crv")) {
            ("RSA", _) => (
                KeyKind::Rsa,
                DecodingKey::from_rsa_components(field("n")?, field("e")?).ok()?,
            ),
            ("EC", Some(crv)) => {
                let kind = match crv {
                    "P-256" => KeyKind::EcP256,
                    "P-384" => KeyKind::EcP384,
                    _ => return None,
                };
                let key = DecodingKey::from_ec_components(field("x")?, field("y")?).ok()?;
                (kind, key)
            }
            ("OKP", Some("Ed25519")) => (
                KeyKind::Ed25519,
                DecodingKey::from_ed_components(field("x")?).ok()?,
            ),
            _ => return None,
        };
        Some(Self {
            kid: field("kid").map(str::to_owned),
            kind,
            alg,
            key,
        })
    }
}

/// The usable keys of a JWK Set document; keys we cannot use are skipped so
/// one odd entry does not break the set.
pub(crate) fn parse_jwks(document: &[u8]) -> Result<Vec<PublicKey>, String> {
    #[derive(Deserialize)]
    struct JwkSet {
        keys: Vec<Value>,
    }
    let set: JwkSet = serde_json::from_slice(document).map_err(|e| e.to_string())?;
    Ok(set.keys.iter().filter_map(PublicKey::from_jwk).collect())
}

/// Checks the signature of `token`, made with `alg`, against `keys`: the key
/// named by `kid`, or, for a token without `kid`, every key that fits `alg`.
pub(crate) fn verify_signature(
    token: &UnverifiedToken<'_>,
    alg: Algorithm,
    keys: &[PublicKey],
) -> Result<(), VerifyError> {
    let candidates: Vec<&PublicKey> = match &token.kid {
        Some(kid) => {
            let named: Vec<&PublicKey> = keys
                .iter()
                .filter(|k| k.kid.as_deref() == Some(kid))
                .collect();
            if named.is_empty() {
                return Err(VerifyError::UnknownKeyId { kid: clip(kid) });
            }
            let fitting: Vec<&PublicKey> = named.into_iter().filter(|k| k.fits(alg)).collect();
            if fitting.is_empty() {
                return Err(VerifyError::AlgorithmKeyMismatch {
                    alg: token.alg.clone(),
                    kid: clip(kid),
                });
            }
            fitting
        }
        None => {
            let fitting: Vec<&PublicKey> = keys.iter().filter(|k| k.fits(alg)).collect();
            if fitting.is_empty() {
                return Err(VerifyError::NoKeyForAlgorithm {
                    alg: token.alg.clone(),
                });
            }
            fitting
        }
    };
    let verified = candidates.iter().any(|k| {
        // An error here means the key material is unusable (say, an RSA
        // modulus out of range): that key cannot have signed the token.
        jsonwebtoken::crypto::verify(token.signature, token.signing_input.as_bytes(), &k.key, alg)
            .unwrap_or(false)
    });
    if verified {
        Ok(())
    } else {
        Err(VerifyError::BadSignature)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    fn token(header: &str, payload: &str, signature: &str) -> String {
        format!("{}.{}.{}", b64(header), b64(payload), b64(signature))
    }

    #[test]
    fn parses_header_and_claims() {
        let raw = token(r#"{"alg":"ES256","kid":"k1"}"#, r#"{"iss":"i"}"#, "sig");
        let parsed = UnverifiedToken::parse(&raw).unwrap();
        assert_eq!(parsed.alg, "ES256");
        assert_eq!(parsed.kid.as_deref(), Some("k1"));
        assert_eq!(parsed.claims["iss"], "i");
        assert_eq!(parsed.algorithm().unwrap(), Algorithm::ES256);
    }

    #[test]
    fn refuses_malformed_shapes() {
        let cases = [
            ("", MalformedToken::NotThreeParts),
            ("a.b", MalformedToken::NotThreeParts),
            ("a.b.c.d", MalformedToken::NotThreeParts),
            ("!!.e30.c2ln", MalformedToken::HeaderNotBase64),
            (
                &format!("{}.e30.c2ln", b64("[1]")),
                MalformedToken::HeaderNotJson,
            ),
            (
                &format!("{}.e30.c2ln", b64(r#"{"alg":"ES256","crit":["b64"]}"#)),
                MalformedToken::CriticalHeader,
            ),
            (
                &format!("{}.!!.c2ln", b64(r#"{"alg":"ES256"}"#)),
                MalformedToken::PayloadNotBase64,
            ),
            (
                &format!("{}.{}.c2ln", b64(r#"{"alg":"ES256"}"#), b64("[]")),
                MalformedToken::ClaimsNotJsonObject,
            ),
            (
                &format!("{}.e30.c2ln=", b64(r#"{"alg":"ES256"}"#)),
                MalformedToken::SignatureNotBase64,
            ),
            (
                &"a".repeat(MAX_TOKEN_BYTES + 1),
                MalformedToken::TooLong {
                    limit: MAX_TOKEN_BYTES,
                },
            ),
        ];
        for (raw, want) in cases {
            assert_eq!(UnverifiedToken::parse(raw).unwrap_err(), want, "{raw}");
        }
    }

    #[test]
    fn refuses_none_and_hmac_algorithms() {
        for alg in ["none", "None", "HS256", "HS384", "HS512", "RS1", ""] {
            let raw = token(&format!(r#"{{"alg":"{alg}"}}"#), "{}", "");
            let parsed = UnverifiedToken::parse(&raw).unwrap();
            assert_eq!(
                parsed.algorithm().unwrap_err(),
                VerifyError::UnsupportedAlgorithm { alg: alg.into() }
            );
        }
    }

    #[test]
    fn keys_fit_only_their_family_and_own_alg() {
        let rsa = KeyKind::Rsa;
        assert!(rsa.fits(Algorithm::RS256) && rsa.fits(Algorithm::PS512));
        assert!(!rsa.fits(Algorithm::ES256) && !rsa.fits(Algorithm::HS256));
        assert!(KeyKind::EcP256.fits(Algorithm::ES256));
        assert!(!KeyKind::EcP256.fits(Algorithm::ES384));
        assert!(!KeyKind::Ed25519.fits(Algorithm::ES256));
    }

    #[test]
    fn jwks_skips_keys_it_cannot_use() {
        let doc = serde_json::json!({"keys": [
            {"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"},
            {"kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB", "kid": "enc"},
            {"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA", "kid": "p521"},
            {"kty": "RSA", "alg": "RSA-OAEP", "n": "AQAB", "e": "AQAB", "kid": "oaep"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "sig", "alg": "RS256"},
            {"kty": "weird"},
            "not an object"
        ]});
        let keys = parse_jwks(doc.to_string().as_bytes()).unwrap();
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("sig"));
        assert!(keys[0].fits(Algorithm::RS256));
        assert!(!keys[0].fits(Algorithm::PS256), "the JWK's alg pins it");
        assert!(parse_jwks(b"{}").is_err());
        assert!(parse_jwks(b"not json").is_err());
    }

    proptest! {
        #[test]
        fn parse_never_panics(raw in ".{0,300}") {
            let _ = UnverifiedToken::parse(&raw);
        }

        #[test]
        fn parse_never_panics_on_dotted_base64(
            parts in prop::collection::vec("[A-Za-z0-9_-]{0,60}", 0..5)
        ) {
            let raw = parts.join(".");
            if let Ok(parsed) = UnverifiedToken::parse(&raw) {
                let _ = parsed.algorithm();
            }
        }

        #[test]
        fn jwks_parsing_never_panics(doc in ".{0,200}") {
            let _ = parse_jwks(doc.as_bytes());
        }
    }
}
