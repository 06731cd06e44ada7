//! Signing: the header a sender attaches so that a receiver accepts it.

use http::header::AUTHORIZATION;
use http::{HeaderName, HeaderValue};

use crate::algorithm::{Algorithm, hmac_hex};
use crate::header::{
    X_GITEA_SIGNATURE, X_GITLAB_TOKEN, X_GOGS_SIGNATURE, X_HUB_SIGNATURE, X_HUB_SIGNATURE_256,
    X_NEXUS_WEBHOOK_SIGNATURE, X_SIGNATURE,
};

/// One way a host proves a delivery genuine: a header and what goes in it.
///
/// Used to sign (for tests, and for clients that send webhooks); receivers
/// verify with a [`Policy`](crate::Policy), which may accept several schemes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scheme {
    /// `X-Hub-Signature-256: sha256=<hex>` (GitHub, Gitea, Forgejo).
    HubSignature256,
    /// `X-Hub-Signature: <algorithm>=<hex>` (GitHub with SHA-1, Bitbucket
    /// with SHA-256).
    HubSignature(Algorithm),
    /// `X-Signature: <algorithm>=<hex>` (Flux's generic-hmac receiver).
    XSignature(Algorithm),
    /// `X-Gitea-Signature: <hex HMAC-SHA256>`.
    GiteaSignature,
    /// `X-Gogs-Signature: <hex HMAC-SHA256>`.
    GogsSignature,
    /// `X-Nexus-Webhook-Signature: <hex HMAC-SHA1>`.
    NexusWebhookSignature,
    /// `X-Gitlab-Token: <token>`.
    GitlabToken,
    /// `Authorization: <token>` (Harbor).
    Authorization,
}

/// Why a header could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignError {
    /// The secret is empty; no receiver would accept it (see
    /// [`VerifyError::EmptySecret`](crate::VerifyError::EmptySecret)).
    #[error("the secret is empty")]
    EmptySecret,
    /// The token cannot travel as a header value: it holds control
    /// characters, or leading or trailing whitespace that HTTP would strip.
    #[error("the token is not a valid {header} header value")]
    NotHeaderValue {
        /// The header the token was meant for.
        header: HeaderName,
    },
}

impl Scheme {
    /// The header this scheme uses.
    ///
    /// ```
    /// use fluxhook_signature::Scheme;
    ///
    /// assert_eq!(Scheme::HubSignature256.header_name(), "x-hub-signature-256");
    /// ```
    pub fn header_name(self) -> HeaderName {
        match self {
            Scheme::HubSignature256 => X_HUB_SIGNATURE_256,
            Scheme::HubSignature(_) => X_HUB_SIGNATURE,
            Scheme::XSignature(_) => X_SIGNATURE,
            Scheme::GiteaSignature => X_GITEA_SIGNATURE,
            Scheme::GogsSignature => X_GOGS_SIGNATURE,
            Scheme::NexusWebhookSignature => X_NEXUS_WEBHOOK_SIGNATURE,
            Scheme::GitlabToken => X_GITLAB_TOKEN,
            Scheme::Authorization => AUTHORIZATION,
        }
    }

    /// The header name and value to attach to a delivery of `body`.
    ///
    /// For the token schemes the value is the secret itself (marked
    /// sensitive, so `http` redacts it in `Debug` and HTTP/2 never indexes
    /// it) and `body` is not used.
    ///
    /// ```
    /// use fluxhook_signature::Scheme;
    ///
    /// let (name, value) =
    ///     Scheme::HubSignature256.sign(b"Hello, World!", b"It's a Secret to Everybody")?;
    /// assert_eq!(name, "x-hub-signature-256");
    /// assert_eq!(
    ///     value,
    ///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    /// );
    /// # Ok::<(), fluxhook_signature::SignError>(())
    /// ```
    pub fn sign(self, body: &[u8], secret: &[u8]) -> Result<(HeaderName, HeaderValue), SignError> {
        if secret.is_empty() {
            return Err(SignError::EmptySecret);
        }
        let header = self.header_name();
        let value = match self {
            Scheme::HubSignature256 => prefixed(Algorithm::Sha256, secret, body),
            Scheme::HubSignature(algorithm) | Scheme::XSignature(algorithm) => {
                prefixed(algorithm, secret, body)
            }
            Scheme::GiteaSignature | Scheme::GogsSignature => {
                hmac_hex(Algorithm::Sha256, secret, body).into_bytes()
            }
            Scheme::NexusWebhookSignature => hmac_hex(Algorithm::Sha1, secret, body).into_bytes(),
            Scheme::GitlabToken | Scheme::Authorization => secret.to_vec(),
        };
        let is_whitespace = |b: &u8| *b == b' ' || *b == b'\t';
        if value.first().is_some_and(is_whitespace) || value.last().is_some_and(is_whitespace) {
            return Err(SignError::NotHeaderValue { header });
        }
        let mut value = HeaderValue::from_bytes(&value).map_err(|_| SignError::NotHeaderValue {
            header: header.clone(),
        })?;
        value.set_sensitive(matches!(self, Scheme::GitlabToken | Scheme::Authorization));
        Ok((header, value))
    }
}

fn prefixed(algorithm: Algorithm, secret: &[u8], body: &[u8]) -> Vec<u8> {
    format!("{algorithm}={}", hmac_hex(algorithm, secret, body)).into_bytes()
}
