//! Verification and signing of webhook signatures and shared tokens, in the
//! forms Git hosts and registries send them.
//!
//! A webhook receiver must tell genuine deliveries from forged ones before it
//! acts on them. Hosts prove a delivery genuine in one of three ways, all
//! covered here:
//!
//! - an HMAC of the body with a prefix naming the hash:
//!   `X-Hub-Signature-256: sha256=<hex>` (GitHub, Gitea, Forgejo),
//!   `X-Hub-Signature` (GitHub's legacy SHA-1, Bitbucket's SHA-256),
//!   `X-Signature` (Flux's generic-hmac receiver);
//! - a bare hex HMAC: `X-Gitea-Signature`, `X-Gogs-Signature` (SHA-256),
//!   `X-Nexus-Webhook-Signature` (SHA-1);
//! - the shared secret itself: `X-Gitlab-Token`, Harbor's `Authorization`.
//!
//! A [`Policy`] names one such wire form (or GitHub's pair of headers) and
//! verifies a delivery against it, as Flux's notification-controller does;
//! which policy each Flux receiver type uses is said once, by
//! `fluxhook_api::ReceiverType::authentication`. [`Scheme::sign`] produces the header a sender attaches. The lower-level
//! [`verify_prefixed_signature`], [`verify_hex_signature`] and
//! [`verify_token`] check one header of the caller's choosing.
//!
//! Every comparison is constant-time. Errors ([`VerifyError`]) say which
//! header is missing or malformed, or that it does not match, but never show
//! the secret or the expected signature; the crate keeps neither. Header
//! values that are not UTF-8 or not well formed give an error, never a panic.
//! The crate is pure: it does no I/O.
//!
//! # Example
//!
//! Verifying a GitHub delivery (GitHub's documented example):
//!
//! ```
//! use fluxhook_signature::{Algorithm, Policy, VerifyError, header};
//! use http::HeaderMap;
//!
//! let secret = b"It's a Secret to Everybody";
//! let body = b"Hello, World!";
//! let mut headers = HeaderMap::new();
//! headers.insert(
//!     header::X_HUB_SIGNATURE_256,
//!     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".parse()?,
//! );
//!
//! let policy = Policy::HubSignature;
//! let verified = policy.verify(&headers, body, secret)?;
//! assert_eq!(verified.header, header::X_HUB_SIGNATURE_256);
//! assert_eq!(verified.algorithm, Some(Algorithm::Sha256));
//!
//! // Any change to the body is caught.
//! let forged = policy.verify(&headers, b"Hello, World?", secret);
//! assert!(matches!(forged, Err(VerifyError::Mismatch { .. })));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod algorithm;
pub mod header;
mod policy;
mod sign;
mod verify;

pub use algorithm::{Algorithm, hmac_hex};
pub use policy::Policy;
pub use sign::{Scheme, SignError};
pub use verify::{
    Malformation, Verified, VerifyError, verify_hex_signature, verify_prefixed_signature,
    verify_token,
};
