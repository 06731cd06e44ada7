//! A local OIDC issuer for tests (feature `test-issuer`): it serves a
//! discovery document and a JWK Set on `127.0.0.1` and mints tokens, so the
//! receiver's tests can send real `generic-oidc` and `gcr` requests without
//! any network.
//!
//! Another crate's tests get it with
//! `fluxhook-oidc = { workspace = true, features = ["test-issuer"] }` under
//! `[dev-dependencies]`. Give the issuer's [`TestIssuer::url`] as a
//! provider's `issuerURL` (generic-oidc) or as
//! [`VerifierConfig::google_issuer`](crate::VerifierConfig::google_issuer)
//! (gcr), mint tokens with [`TestIssuer::mint`] over
//! [`TestIssuer::claims`], and send them as `Authorization: Bearer <token>`.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use fluxhook_oidc::testing::{TestIssuer, bearer};
//! use fluxhook_oidc::{GcrRequirements, HttpKeySource, OidcVerifier, VerifierConfig};
//!
//! // Google signs with RS256: this issuer does too, with a test-only key.
//! let google = TestIssuer::start_rs256().await?;
//! let config = VerifierConfig { google_issuer: google.url().to_owned(), ..Default::default() };
//! let verifier = OidcVerifier::with_config(Arc::new(HttpKeySource::new().unwrap()), config);
//!
//! let sa = "push@project.iam.gserviceaccount.com";
//! let mut claims = google.claims("https://hooks.example/hook/abc");
//! claims["email"] = sa.into();
//! claims["email_verified"] = true.into();
//! let headers = bearer(&google.mint(&claims));
//!
//! let requirements = GcrRequirements::new("https://hooks.example/hook/abc", sa);
//! let verified = verifier.verify_gcr(&headers, &requirements).await.unwrap();
//! assert_eq!(verified["email"], sa);
//! # Ok(())
//! # }
//! ```
//!
//! Each issuer counts the discovery and JWKS requests it serves, so tests can
//! check what the verifier's cache fetched; [`TestIssuer::key_source`] serves
//! the same documents from memory, for tests that control time with
//! `tokio::time::pause`.

use std::io;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey};
use p256::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};
use tokio::sync::oneshot;

use crate::cache::discovery_url;
use crate::error::FetchError;
use crate::source::KeySource;

/// TEST-ONLY RSA key (see tests/keys/README.md): generating RSA keys at test
/// time is slow, and Google's tokens are RS256.
const TEST_ONLY_RSA_PEM: &str = include_str!("../tests/keys/test-only-rsa.pem");

/// The path of the issuer's JWK Set.
const JWKS_PATH: &str = "/jwks";

/// `Authorization: Bearer <token>` as a header map, ready for the verifier.
///
/// # Panics
///
/// If `token` has characters a header value cannot hold (tokens this module
/// mints never do).
pub fn bearer(token: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    let value = HeaderValue::try_from(format!("Bearer {token}"))
        .expect("a minted token is a valid header value");
    headers.insert(AUTHORIZATION, value);
    headers
}

/// A signing key of the test issuer.
struct TestKey {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: Value,
}

impl TestKey {
    fn new(kid: String, alg: Algorithm, encoding: EncodingKey) -> io::Result<Self> {
        let jwk = Jwk::from_encoding_key(&encoding, alg).map_err(io::Error::other)?;
        let mut jwk = serde_json::to_value(jwk).map_err(io::Error::other)?;
        jwk["kid"] = json!(kid);
        jwk["use"] = json!("sig");
        Ok(Self {
            kid,
            alg,
            encoding,
            jwk,
        })
    }

    fn es256(kid: String) -> io::Result<Self> {
        let secret = p256::SecretKey::random(&mut rand_core::OsRng);
        let der = secret.to_pkcs8_der().map_err(io::Error::other)?;
        Self::new(
            kid,
            Algorithm::ES256,
            EncodingKey::from_ec_der(der.as_bytes()),
        )
    }

    fn rs256(kid: String) -> io::Result<Self> {
        let encoding =
            EncodingKey::from_rsa_pem(TEST_ONLY_RSA_PEM.as_bytes()).map_err(io::Error::other)?;
        Self::new(kid, Algorithm::RS256, encoding)
    }
}

/// What the issuer serves and counts, shared with its server task.
struct Shared {
    url: String,
    state: Mutex<IssuerState>,
}

struct IssuerState {
    /// Published keys; the last one signs.
    keys: Vec<TestKey>,
    /// The `issuer` the discovery document states.
    discovered_issuer: String,
    discovery_requests: usize,
    jwks_requests: usize,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, IssuerState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn discovery(&self) -> Value {
        let mut state = self.state();
        state.discovery_requests += 1;
        json!({
            "issuer": state.discovered_issuer,
            "jwks_uri": format!("{}{JWKS_PATH}", self.url),
            "authorization_endpoint": format!("{}/auth", self.url),
            "response_types_supported": ["id_token"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        })
    }

    fn jwks(&self) -> Value {
        let mut state = self.state();
        state.jwks_requests += 1;
        let keys: Vec<&Value> = state.keys.iter().map(|k| &k.jwk).collect();
        json!({ "keys": keys })
    }
}

#[async_trait]
impl KeySource for Shared {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let document = if url == discovery_url(&self.url) {
            self.discovery()
        } else if url == format!("{}{JWKS_PATH}", self.url) {
            self.jwks()
        } else {
            return Err(FetchError::Status { status: 404 });
        };
        Ok(document.to_string().into_bytes())
    }
}

/// A local OIDC issuer: discovery at
/// `<url>/.well-known/openid-configuration`, keys at `<url>/jwks`. Stops
/// serving when dropped.
pub struct TestIssuer {
    shared: Arc<Shared>,
    shutdown: Option<oneshot::Sender<()>>,
}

impl std::fmt::Debug for TestIssuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestIssuer")
            .field("url", &self.shared.url)
            .finish_non_exhaustive()
    }
}

impl Drop for TestIssuer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            // The server may already be gone; nothing to stop then.
            let _ = shutdown.send(());
        }
    }
}

impl TestIssuer {
    /// Starts an issuer signing ES256 with a fresh P-256 key, on
    /// `127.0.0.1` and a free port. Needs a Tokio runtime.
    pub async fn start() -> io::Result<Self> {
        Self::serve(TestKey::es256("test-key-1".to_owned())?).await
    }

    /// Starts an issuer signing RS256, as Google does, with the crate's
    /// TEST-ONLY RSA key.
    pub async fn start_rs256() -> io::Result<Self> {
        Self::serve(TestKey::rs256("test-rsa-key-1".to_owned())?).await
    }

    async fn serve(key: TestKey) -> io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let shared = Arc::new(Shared {
            state: Mutex::new(IssuerState {
                keys: vec![key],
                discovered_issuer: url.clone(),
                discovery_requests: 0,
                jwks_requests: 0,
            }),
            url,
        });
        let app = Router::new()
            .route(
                "/.well-known/openid-configuration",
                get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.discovery()) }),
            )
            .route(
                JWKS_PATH,
                get(|State(s): State<Arc<Shared>>| async move { axum::Json(s.jwks()) }),
            )
            .with_state(Arc::clone(&shared));
        let (shutdown, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let stopped = async {
                // Dropped sender or sent signal: either way, stop.
                let _ = stopped.await;
            };
            if let Err(err) = axum::serve(listener, app)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::warn!(error = %err, "test issuer stopped serving");
            }
        });
        Ok(Self {
            shared,
            shutdown: Some(shutdown),
        })
    }

    /// The issuer URL (`http://127.0.0.1:<port>`): a provider's `issuerURL`,
    /// the tokens' `iss`.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// The key id tokens are signed with now.
    pub fn kid(&self) -> String {
        self.shared
            .state()
            .keys
            .last()
            .map(|k| k.kid.clone())
            .unwrap_or_default()
    }

    /// Claims of a token valid for five minutes: `iss` this issuer, `aud`
    /// `audience`, `sub`, `iat` and `exp`. Add or change fields before
    /// minting.
    pub fn claims(&self, audience: &str) -> Value {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        json!({
            "iss": self.url(),
            "aud": audience,
            "sub": "test-subject",
            "iat": now,
            "exp": now + 300,
        })
    }

    /// A token with `claims`, signed with the current key and naming it by
    /// `kid`.
    pub fn mint(&self, claims: &Value) -> String {
        let (alg, kid) = {
            let state = self.shared.state();
            let key = state.keys.last();
            (key.map(|k| k.alg), key.map(|k| k.kid.clone()))
        };
        let header = json!({
            "alg": alg,
            "typ": "JWT",
            "kid": kid,
        });
        self.sign_with_header(&header, claims)
    }

    /// A token with any `header` (say a wrong `kid`, or an `alg` that does
    /// not fit) and `claims`, signed with the current key's own algorithm.
    ///
    /// # Panics
    ///
    /// If the key cannot sign, which would be a bug of this module.
    pub fn sign_with_header(&self, header: &Value, claims: &Value) -> String {
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let state = self.shared.state();
        let key = state.keys.last().expect("a test issuer always has a key");
        let signature =
            jsonwebtoken::crypto::sign(signing_input.as_bytes(), &key.encoding, key.alg)
                .expect("a test key signs with its own algorithm");
        format!("{signing_input}.{signature}")
    }

    /// Rotates keys: a fresh ES256 key is published next to the old ones and
    /// signs from now on. Returns its key id.
    pub fn rotate_key(&self) -> io::Result<String> {
        let mut state = self.shared.state();
        let kid = format!("test-key-{}", state.keys.len() + 1);
        state.keys.push(TestKey::es256(kid.clone())?);
        Ok(kid)
    }

    /// Makes the discovery document state `issuer` instead of this issuer's
    /// URL (a misconfigured or impersonating provider).
    pub fn set_discovered_issuer(&self, issuer: &str) {
        issuer.clone_into(&mut self.shared.state().discovered_issuer);
    }

    /// How many discovery documents this issuer has served.
    pub fn discovery_requests(&self) -> usize {
        self.shared.state().discovery_requests
    }

    /// How many JWK Sets this issuer has served.
    pub fn jwks_requests(&self) -> usize {
        self.shared.state().jwks_requests
    }

    /// A [`KeySource`] serving this issuer's documents from memory (and
    /// counting them), for verifiers under `tokio::time::pause`, where HTTP
    /// timeouts would fire at once.
    pub fn key_source(&self) -> Arc<dyn KeySource> {
        Arc::clone(&self.shared) as Arc<dyn KeySource>
    }
}
