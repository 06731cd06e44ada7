//! OIDC bearer tokens, discovery documents and JWK Sets.
//!
//! Input: a selector byte. Bit 0 clear, everything from the input:
//! `authorization NUL providers NUL discovery NUL jwks` (the Authorization
//! header value, the Receiver's `oidcProviders` as JSON, and what the
//! issuer serves). Bit 0 set, a token signed with a fixed ES256 key over the
//! claims given as JSON, made valid (issuer, audience, times): it must verify
//! to exactly those claims, and fail once its claims are changed.

use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use fluxhook_api::OidcProvider;
use fluxhook_oidc::{FetchError, GcrRequirements, KeySource, OidcVerifier, VerifierConfig};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use jsonwebtoken::{Algorithm, EncodingKey, jwk::Jwk};
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{Map, Value, json};

use crate::input::{fields, join, selector};

const ISSUER: &str = "https://issuer.fuzz.example";
const KID: &str = "fuzz-key";

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    let runtime = runtime();
    if select & 1 == 0 {
        runtime.block_on(untrusted(rest));
    } else {
        runtime.block_on(signed(rest));
    }
}

async fn untrusted(data: &[u8]) {
    let parts = fields(data, 4);
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(parts[0]) {
        headers.insert(AUTHORIZATION, value);
    }
    let providers = serde_json::from_slice::<Vec<OidcProvider>>(parts[1])
        .unwrap_or_else(|_| default_providers());
    let source = Arc::new(Served {
        discovery: parts[2].to_vec(),
        jwks: parts[3].to_vec(),
    });
    let config = VerifierConfig {
        google_issuer: ISSUER.to_owned(),
        ..VerifierConfig::default()
    };
    let verifier = OidcVerifier::with_config(source, config);
    match verifier.verify_generic_oidc(&headers, &providers).await {
        Ok(verified) => assert_eq!(
            verified.claims["iss"].as_str(),
            Some(verified.provider.issuer_url.as_str()),
            "a token is accepted for a provider that is not its issuer"
        ),
        Err(error) => {
            let _ = error.to_string();
        }
    }
    let requirements = GcrRequirements::new("notification-controller", "push@fuzz.example");
    if let Err(error) = verifier.verify_gcr(&headers, &requirements).await {
        let _ = error.to_string();
    }
}

async fn signed(data: &[u8]) {
    let key = key();
    let mut claims = match serde_json::from_slice::<Value>(data) {
        Ok(Value::Object(claims)) => claims,
        Ok(other) => Map::from_iter([("fuzz".to_owned(), other)]),
        Err(_) => Map::new(),
    };
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    claims.insert("iss".into(), ISSUER.into());
    claims.insert("aud".into(), "notification-controller".into());
    claims.insert("iat".into(), now.into());
    claims.insert("exp".into(), (now + 3600).into());
    claims.remove("nbf");
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID});
    // Compared as the verifier reads them: JSON floats need not print and
    // read back to the same bits.
    let claims_text = Value::Object(claims.clone()).to_string();
    let expected: Value = serde_json::from_str(&claims_text).expect("printed JSON reads back");
    let token = sign(key, &header.to_string(), &claims_text);
    let verifier = OidcVerifier::new(Arc::new(Served {
        discovery: discovery(),
        jwks: json!({"keys": [key.jwk]}).to_string().into_bytes(),
    }));
    let providers = default_providers();

    let verified = verifier
        .verify_generic_oidc(&bearer(&token), &providers)
        .await;
    assert_eq!(
        verified.map(|v| v.claims),
        Ok(expected),
        "a token signed by the issuer's key is refused or changed"
    );

    // The same signature over other claims.
    claims.insert("fuzz-tampered".into(), true.into());
    let tampered_payload = URL_SAFE_NO_PAD.encode(Value::Object(claims).to_string());
    let mut pieces = token.split('.');
    let (Some(head), Some(_), Some(signature)) = (pieces.next(), pieces.next(), pieces.next())
    else {
        panic!("a signed token has three parts");
    };
    let tampered = format!("{head}.{tampered_payload}.{signature}");
    let refused = verifier
        .verify_generic_oidc(&bearer(&tampered), &providers)
        .await;
    assert!(refused.is_err(), "a tampered token is accepted");
}

/// Valid tokens to start from, in both modes.
pub(crate) fn seeds() -> Vec<Vec<u8>> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let claims = [
        json!({"sub": "repo:org/app:ref:refs/heads/main", "repository": "org/app"}),
        json!({"email": "push@fuzz.example", "email_verified": true, "aud": ["a", "b"], "azp": "x"}),
    ];
    let header = json!({"alg": "ES256", "typ": "JWT", "kid": KID}).to_string();
    let jwks = json!({"keys": [key().jwk]}).to_string();
    let providers = json!([{
        "issuerURL": ISSUER,
        "validations": [{"expression": "claims.sub != ''", "message": "no subject"}],
    }])
    .to_string();
    let mut seeds = Vec::new();
    for claims in claims {
        seeds.push(join(1, &[claims.to_string().as_bytes()]));
        let mut full = claims;
        full["iss"] = ISSUER.into();
        full["aud"] = "notification-controller".into();
        full["iat"] = now.into();
        full["exp"] = (now + 3600).into();
        let token = sign(key(), &header, &full.to_string());
        seeds.push(join(
            0,
            &[
                format!("Bearer {token}").as_bytes(),
                providers.as_bytes(),
                &discovery(),
                jwks.as_bytes(),
            ],
        ));
    }
    seeds
}

fn default_providers() -> Vec<OidcProvider> {
    vec![OidcProvider {
        issuer_url: ISSUER.to_owned(),
        audience: None,
        variables: None,
        validations: Vec::new(),
    }]
}

fn discovery() -> Vec<u8> {
    json!({
        "issuer": ISSUER,
        "jwks_uri": format!("{ISSUER}/jwks"),
        "id_token_signing_alg_values_supported": ["ES256", "RS256"],
    })
    .to_string()
    .into_bytes()
}

fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
        headers.insert(AUTHORIZATION, value);
    }
    headers
}

/// An issuer that serves the input's documents: the discovery document at
/// its well-known URL, the JWK Set at any other.
struct Served {
    discovery: Vec<u8>,
    jwks: Vec<u8>,
}

#[async_trait]
impl KeySource for Served {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        match url.ends_with("/.well-known/openid-configuration") {
            true => Ok(self.discovery.clone()),
            false => Ok(self.jwks.clone()),
        }
    }
}

struct Key {
    encoding: EncodingKey,
    jwk: Value,
}

/// A fixed P-256 key, for fuzzing only.
fn key() -> &'static Key {
    static KEY: OnceLock<Key> = OnceLock::new();
    KEY.get_or_init(|| {
        let secret = p256::SecretKey::from_slice(&[7; 32]).expect("7…7 is a P-256 scalar");
        let der = secret.to_pkcs8_der().expect("a P-256 key encodes");
        let encoding = EncodingKey::from_ec_der(der.as_bytes());
        let jwk = Jwk::from_encoding_key(&encoding, Algorithm::ES256).expect("an ES256 JWK");
        let mut jwk = serde_json::to_value(jwk).expect("a JWK is JSON");
        jwk["kid"] = KID.into();
        jwk["use"] = "sig".into();
        Key { encoding, jwk }
    })
}

fn sign(key: &Key, header: &str, claims: &str) -> String {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = jsonwebtoken::crypto::sign(input.as_bytes(), &key.encoding, Algorithm::ES256)
        .expect("the fixed key signs ES256");
    format!("{input}.{signature}")
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime starts")
    })
}
