//! Which headers and forms a receiver accepts, one policy per wire form.

use http::HeaderMap;
use http::header::AUTHORIZATION;

use crate::algorithm::Algorithm;
use crate::header::{
    X_GITEA_SIGNATURE, X_GITLAB_TOKEN, X_GOGS_SIGNATURE, X_HUB_SIGNATURE, X_HUB_SIGNATURE_256,
    X_NEXUS_WEBHOOK_SIGNATURE, X_SIGNATURE,
};
use crate::sign::Scheme;
use crate::verify::{
    Verified, VerifyError, present_value, require_secret, verify_hex_signature,
    verify_prefixed_signature, verify_token,
};

/// How a receiver decides that a delivery is genuine: the header or headers
/// it reads, and the forms it accepts there.
///
/// Each policy names a wire form, not a sender: which one a Flux `Receiver`
/// type uses (`github` takes [`Policy::HubSignature`], `bitbucket` the
/// stricter [`Policy::HubSignatureSha256`]...) is decided once, by
/// `fluxhook_api::ReceiverType::authentication`, which names the policy
/// itself. Each matches what notification-controller accepts for the types
/// that use it, except where a variant says it is stricter.
///
/// Every policy refuses an empty secret ([`VerifyError::EmptySecret`]), treats
/// a header sent with an empty value as absent, and rejects a header sent more
/// than once.
///
/// `#[non_exhaustive]`: new wire forms may come, and code outside this crate
/// only names policies and calls [`Policy::verify`], never matches them.
///
/// ```
/// use fluxhook_signature::{header, Policy, Scheme};
/// use http::HeaderMap;
///
/// let policy = Policy::HubSignatureSha256;
/// let (name, value) = Scheme::HubSignature(fluxhook_signature::Algorithm::Sha256)
///     .sign(b"{}", b"s3cret")?;
/// let mut headers = HeaderMap::new();
/// headers.insert(name, value);
///
/// let verified = policy.verify(&headers, b"{}", b"s3cret")?;
/// assert_eq!(verified.header, header::X_HUB_SIGNATURE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Policy {
    /// go-github's `ValidatePayload` (Flux `github`): `X-Hub-Signature-256`,
    /// or `X-Hub-Signature` when that is absent, each `sha1=`, `sha256=` or
    /// `sha512=` then hex. Gitea and Forgejo also send
    /// `X-Hub-Signature-256`, so their deliveries pass too.
    ///
    /// The fallback happens only when `X-Hub-Signature-256` is absent: a
    /// present but failing one is final, so a forger cannot downgrade to SHA-1
    /// by spoiling it.
    HubSignature,
    /// `X-Hub-Signature` with `sha256=` only, the one form Bitbucket Server
    /// and Cloud send (Flux `bitbucket`).
    ///
    /// Stricter than Flux, which runs go-github's `ValidatePayload` for
    /// Bitbucket and so also takes `X-Hub-Signature-256` and `sha1=`/`sha512=`;
    /// Bitbucket never sends those, and accepting SHA-1 only weakens the check.
    HubSignatureSha256,
    /// `X-Signature` with `sha1=`, `sha256=` or `sha512=` then hex (Flux
    /// `generic-hmac`).
    XSignature,
    /// `X-Gitlab-Token` equals the secret (Flux `gitlab`).
    GitlabToken,
    /// The `Authorization` header equals the secret (Flux `harbor`).
    AuthorizationToken,
    /// `X-Nexus-Webhook-Signature` is the bare lower-case hex HMAC-SHA1
    /// (Flux `nexus`, which compares it as text; Nexus writes lower case).
    NexusSignature,
    /// Gitea's and Forgejo's native `X-Gitea-Signature`: bare hex
    /// HMAC-SHA256. No Flux type uses it (Flux takes Gitea as `github`).
    GiteaSignature,
    /// Gogs' native `X-Gogs-Signature`: bare hex HMAC-SHA256. No Flux type
    /// uses it.
    GogsSignature,
}

impl Policy {
    /// Every policy.
    pub const ALL: [Policy; 8] = [
        Policy::HubSignature,
        Policy::HubSignatureSha256,
        Policy::XSignature,
        Policy::GitlabToken,
        Policy::AuthorizationToken,
        Policy::NexusSignature,
        Policy::GiteaSignature,
        Policy::GogsSignature,
    ];

    /// The policy whose [`Policy::name`] is `name` (case-sensitive), for
    /// tools and tests that name a policy; `None` for any other name.
    ///
    /// ```
    /// use fluxhook_signature::Policy;
    ///
    /// assert_eq!(Policy::named("hub-signature"), Some(Policy::HubSignature));
    /// assert_eq!(Policy::named("gitea-signature"), Some(Policy::GiteaSignature));
    /// assert_eq!(Policy::named("github"), None);
    /// ```
    pub fn named(name: &str) -> Option<Policy> {
        Policy::ALL.into_iter().find(|policy| policy.name() == name)
    }

    /// A short name, after the header and form it accepts.
    ///
    /// ```
    /// use fluxhook_signature::Policy;
    ///
    /// assert_eq!(Policy::XSignature.name(), "x-signature");
    /// ```
    pub const fn name(self) -> &'static str {
        match self {
            Policy::HubSignature => "hub-signature",
            Policy::HubSignatureSha256 => "hub-signature-sha256",
            Policy::XSignature => "x-signature",
            Policy::GitlabToken => "gitlab-token",
            Policy::AuthorizationToken => "authorization-token",
            Policy::NexusSignature => "nexus-signature",
            Policy::GiteaSignature => "gitea-signature",
            Policy::GogsSignature => "gogs-signature",
        }
    }

    /// The scheme a sender should sign with to pass this policy: the one the
    /// host itself uses (SHA-256 where the host lets the sender choose).
    ///
    /// ```
    /// use fluxhook_signature::{Policy, Scheme};
    ///
    /// assert_eq!(Policy::HubSignature.signing_scheme(), Scheme::HubSignature256);
    /// ```
    pub const fn signing_scheme(self) -> Scheme {
        match self {
            Policy::HubSignature => Scheme::HubSignature256,
            Policy::HubSignatureSha256 => Scheme::HubSignature(Algorithm::Sha256),
            Policy::XSignature => Scheme::XSignature(Algorithm::Sha256),
            Policy::GitlabToken => Scheme::GitlabToken,
            Policy::AuthorizationToken => Scheme::Authorization,
            Policy::NexusSignature => Scheme::NexusWebhookSignature,
            Policy::GiteaSignature => Scheme::GiteaSignature,
            Policy::GogsSignature => Scheme::GogsSignature,
        }
    }

    /// Verifies a delivery: its headers, its exact body bytes, and the
    /// receiver's secret (HMAC key or token). Comparisons are constant-time.
    ///
    /// ```
    /// use fluxhook_signature::{header, Policy, VerifyError};
    /// use http::HeaderMap;
    ///
    /// let mut headers = HeaderMap::new();
    /// headers.insert(header::X_GITLAB_TOKEN, "s3cret".parse()?);
    /// assert!(Policy::GitlabToken.verify(&headers, b"{}", b"s3cret").is_ok());
    ///
    /// let err = Policy::HubSignature.verify(&headers, b"{}", b"s3cret").unwrap_err();
    /// assert_eq!(err.to_string(), "missing x-hub-signature-256 or x-hub-signature header");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn verify(
        self,
        headers: &HeaderMap,
        body: &[u8],
        secret: &[u8],
    ) -> Result<Verified, VerifyError> {
        require_secret(secret)?;
        match self {
            Policy::HubSignature => {
                let header = if present_value(headers, &X_HUB_SIGNATURE_256)?.is_some() {
                    X_HUB_SIGNATURE_256
                } else if present_value(headers, &X_HUB_SIGNATURE)?.is_some() {
                    X_HUB_SIGNATURE
                } else {
                    return Err(VerifyError::MissingHeader {
                        headers: vec![X_HUB_SIGNATURE_256, X_HUB_SIGNATURE],
                    });
                };
                verify_prefixed_signature(headers, &header, &Algorithm::ALL, body, secret)
            }
            Policy::HubSignatureSha256 => verify_prefixed_signature(
                headers,
                &X_HUB_SIGNATURE,
                &[Algorithm::Sha256],
                body,
                secret,
            ),
            Policy::XSignature => {
                verify_prefixed_signature(headers, &X_SIGNATURE, &Algorithm::ALL, body, secret)
            }
            Policy::GitlabToken => verify_token(headers, &X_GITLAB_TOKEN, secret),
            Policy::AuthorizationToken => verify_token(headers, &AUTHORIZATION, secret),
            Policy::NexusSignature => {
                let verified = verify_hex_signature(
                    headers,
                    &X_NEXUS_WEBHOOK_SIGNATURE,
                    Algorithm::Sha1,
                    body,
                    secret,
                )?;
                // Flux compares the header with the lower-case hex of the
                // HMAC as text (`verifyHmacSignature`), so upper case does
                // not match there.
                let upper_case = headers
                    .get(&X_NEXUS_WEBHOOK_SIGNATURE)
                    .is_some_and(|v| v.as_bytes().iter().any(u8::is_ascii_uppercase));
                if upper_case {
                    return Err(VerifyError::Mismatch {
                        header: X_NEXUS_WEBHOOK_SIGNATURE,
                    });
                }
                Ok(verified)
            }
            Policy::GiteaSignature => {
                verify_hex_signature(headers, &X_GITEA_SIGNATURE, Algorithm::Sha256, body, secret)
            }
            Policy::GogsSignature => {
                verify_hex_signature(headers, &X_GOGS_SIGNATURE, Algorithm::Sha256, body, secret)
            }
        }
    }
}
