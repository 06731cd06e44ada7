//! Names of the headers that carry signatures and tokens.
//!
//! `Authorization` (Harbor) is [`http::header::AUTHORIZATION`].

use http::HeaderName;

/// GitHub, Gitea and Forgejo: `sha256=<hex HMAC-SHA256>`.
pub const X_HUB_SIGNATURE_256: HeaderName = HeaderName::from_static("x-hub-signature-256");
/// GitHub (legacy, `sha1=<hex>`) and Bitbucket Server and Cloud (`sha256=<hex>`).
pub const X_HUB_SIGNATURE: HeaderName = HeaderName::from_static("x-hub-signature");
/// Flux's generic-hmac receiver: `sha1=`, `sha256=` or `sha512=` then hex.
pub const X_SIGNATURE: HeaderName = HeaderName::from_static("x-signature");
/// Gitea and Forgejo: bare hex HMAC-SHA256.
pub const X_GITEA_SIGNATURE: HeaderName = HeaderName::from_static("x-gitea-signature");
/// Gogs (and Gitea, for compatibility): bare hex HMAC-SHA256.
pub const X_GOGS_SIGNATURE: HeaderName = HeaderName::from_static("x-gogs-signature");
/// Sonatype Nexus Repository: bare hex HMAC-SHA1.
pub const X_NEXUS_WEBHOOK_SIGNATURE: HeaderName =
    HeaderName::from_static("x-nexus-webhook-signature");
/// GitLab: the webhook's secret token, sent as is.
pub const X_GITLAB_TOKEN: HeaderName = HeaderName::from_static("x-gitlab-token");
