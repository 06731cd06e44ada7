//! Where discovery documents and key sets come from: the one piece of I/O.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::FetchError;

/// Fetches the documents an issuer publishes: its discovery document
/// (`<issuer>/.well-known/openid-configuration`) and its JWK Set (the
/// discovery document's `jwks_uri`).
///
/// [`HttpKeySource`] fetches them over HTTP(S). Tests may serve them from
/// memory instead; `fluxhook_oidc::testing::TestIssuer` (feature
/// `test-issuer`) does both.
#[async_trait]
pub trait KeySource: Send + Sync {
    /// The body of a successful `GET url`.
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError>;
}

/// A [`KeySource`] over HTTP(S), with rustls, a timeout and a body limit.
#[derive(Debug, Clone)]
pub struct HttpKeySource {
    client: reqwest::Client,
}

impl HttpKeySource {
    /// Gives up on an issuer that does not answer within this time: the
    /// cache holds a per-issuer lock while it fetches.
    pub const TIMEOUT: Duration = Duration::from_secs(10);

    /// The largest document read. Discovery documents and key sets are a
    /// few KiB.
    pub const MAX_BODY_BYTES: usize = 1024 * 1024;

    /// A source with its own HTTP client, which honours the usual proxy
    /// variables.
    pub fn new() -> Result<Self, FetchError> {
        let client = reqwest::Client::builder()
            .timeout(Self::TIMEOUT)
            .build()
            .map_err(|e| FetchError::Client(e.to_string()))?;
        Ok(Self { client })
    }

    /// A source that uses `client` (set its timeout: see [`Self::TIMEOUT`]).
    pub fn with_client(client: reqwest::Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl KeySource for HttpKeySource {
    async fn fetch(&self, url: &str) -> Result<Vec<u8>, FetchError> {
        let transport = |e: reqwest::Error| FetchError::Transport(e.without_url().to_string());
        let mut response = self
            .client
            .get(url)
            .header(http::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(FetchError::Status {
                status: status.as_u16(),
            });
        }
        let too_large = FetchError::TooLarge {
            limit: Self::MAX_BODY_BYTES,
        };
        if response
            .content_length()
            .is_some_and(|len| len > Self::MAX_BODY_BYTES as u64)
        {
            return Err(too_large);
        }
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > Self::MAX_BODY_BYTES {
                return Err(too_large);
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}
