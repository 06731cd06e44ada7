//! The HTTP client of every [`HookClient`](crate::HookClient): rustls with the web PKI roots
//! and, for self-managed hosts behind a private CA, the certificates of a CA bundle; a
//! timeout; and no redirect ever followed.
//!
//! A redirect is answered, not followed: following one would send the access token header
//! (reqwest strips only `Authorization`, and only across hosts: GitLab's `PRIVATE-TOKEN` would
//! go on) and, for 307/308, the hook body with its secret to wherever it points, `http://`
//! included. The client reports it as an error naming where it pointed instead.

use std::fmt;
use std::time::Duration;

/// Why an [`HttpClient`] could not be set up.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HttpSetupError {
    /// The CA bundle is not PEM, or a certificate in it does not parse.
    #[error("the CA bundle is not a PEM bundle of certificates: {0}")]
    InvalidCaBundle(String),
    /// The CA bundle holds no certificate.
    #[error("the CA bundle holds no PEM certificate (-----BEGIN CERTIFICATE-----)")]
    EmptyCaBundle,
    /// The TLS stack could not be set up.
    #[error("cannot set up the HTTP client: {0}")]
    Tls(String),
}

/// An HTTP client for Git host APIs, cheap to clone: clones share connections.
///
/// ```
/// use fluxhook_register::HttpClient;
/// let client = HttpClient::builder().user_agent("my-controller/1.0").build()?;
/// let error = HttpClient::builder().ca_bundle_pem(b"not a certificate").unwrap_err();
/// assert!(error.to_string().contains("no PEM certificate"));
/// # let _ = client;
/// # Ok::<(), fluxhook_register::HttpSetupError>(())
/// ```
#[derive(Clone)]
pub struct HttpClient {
    pub(crate) inner: reqwest::Client,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient").finish_non_exhaustive()
    }
}

impl HttpClient {
    /// A client with the web PKI roots, a 30 s timeout and `fluxhook-register` as user agent.
    pub fn new() -> Result<HttpClient, HttpSetupError> {
        HttpClient::builder().build()
    }

    /// A builder to add a CA bundle or set the user agent.
    pub fn builder() -> HttpClientBuilder {
        HttpClientBuilder {
            user_agent: concat!("fluxhook-register/", env!("CARGO_PKG_VERSION")).to_owned(),
            ca_certificates: Vec::new(),
            timeout: Duration::from_secs(30),
        }
    }
}

/// Sets up an [`HttpClient`].
pub struct HttpClientBuilder {
    user_agent: String,
    ca_certificates: Vec<reqwest::Certificate>,
    timeout: Duration,
}

impl fmt::Debug for HttpClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClientBuilder")
            .field("user_agent", &self.user_agent)
            .field("ca_certificates", &self.ca_certificates.len())
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpClientBuilder {
    /// The `User-Agent` header (GitHub refuses requests without one).
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = user_agent.into();
        self
    }

    /// Trusts the certificates of a PEM bundle too, beside the web PKI roots: for hosts whose
    /// API is served with a certificate of a private CA.
    pub fn ca_bundle_pem(mut self, pem: &[u8]) -> Result<Self, HttpSetupError> {
        let certificates = reqwest::Certificate::from_pem_bundle(pem)
            .map_err(|error| HttpSetupError::InvalidCaBundle(error_chain(&error)))?;
        if certificates.is_empty() {
            return Err(HttpSetupError::EmptyCaBundle);
        }
        self.ca_certificates.extend(certificates);
        Ok(self)
    }

    /// How long one request may take, connection included.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Builds the client.
    pub fn build(self) -> Result<HttpClient, HttpSetupError> {
        let mut builder = reqwest::Client::builder()
            .user_agent(self.user_agent)
            .timeout(self.timeout)
            .redirect(reqwest::redirect::Policy::none());
        for certificate in self.ca_certificates {
            builder = builder.add_root_certificate(certificate);
        }
        let inner = builder
            .build()
            .map_err(|error| HttpSetupError::Tls(error_chain(&error)))?;
        Ok(HttpClient { inner })
    }
}

/// An error and its causes, on one line (reqwest hides the cause of "error sending request").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
