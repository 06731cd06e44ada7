//! Verification of the OIDC bearer ID tokens that two of Flux's `Receiver`
//! types require, for fluxhook's webhook server.
//!
//! - `generic-oidc`: the token's `iss` picks one of the Receiver's
//!   `spec.oidcProviders`; the provider's discovery document names its JWK
//!   Set; the token must be signed by one of those keys and carry the
//!   provider's audience. [`OidcVerifier::verify_generic_oidc`] returns the
//!   provider and the verified claims, over which the caller evaluates the
//!   provider's CEL variables and validations (see `fluxhook-cel`).
//! - `gcr`: Google Pub/Sub pushes with a Google-signed ID token;
//!   [`OidcVerifier::verify_gcr`] checks it against the Receiver Secret's
//!   `audience` and `email`, as Flux does with Google's ID token validator.
//!
//! Both follow Flux's notification-controller (go-oidc and Google's
//! `idtoken`): exact issuer match, also against the discovery document;
//! asymmetric algorithms only, fitting the key's type (never `none`, never
//! HMAC); `exp` required, `nbf` and `iat` honoured, with a small leeway.
//! Unlike Flux, discovery documents and keys are cached per issuer, with a
//! TTL and one refetch on an unknown key id (key rotation) that is
//! rate-limited, so bad tokens cannot make us hammer an issuer.
//!
//! Fetching is behind [`KeySource`]; [`HttpKeySource`] is the real one. With
//! the `test-issuer` feature, `testing::TestIssuer` serves an issuer on
//! `127.0.0.1` and mints tokens for tests:
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! use std::sync::Arc;
//! use fluxhook_api::OidcProvider;
//! use fluxhook_oidc::testing::{TestIssuer, bearer};
//! use fluxhook_oidc::{HttpKeySource, OidcVerifier, VerifyError};
//!
//! let issuer = TestIssuer::start().await?;
//! let providers: Vec<OidcProvider> = serde_json::from_value(serde_json::json!([{
//!     "issuerURL": issuer.url(),
//!     "validations": [{"expression": "claims.sub == 'test-subject'", "message": "wrong caller"}],
//! }]))?;
//! let verifier = OidcVerifier::new(Arc::new(HttpKeySource::new().unwrap()));
//!
//! // A token for Flux's default audience is accepted...
//! let token = issuer.mint(&issuer.claims("notification-controller"));
//! let verified = verifier.verify_generic_oidc(&bearer(&token), &providers).await.unwrap();
//! assert_eq!(verified.claims["sub"], "test-subject");
//! assert_eq!(verified.provider.issuer_url, issuer.url());
//!
//! // ...one for another audience is not.
//! let token = issuer.mint(&issuer.claims("someone-else"));
//! let refused = verifier.verify_generic_oidc(&bearer(&token), &providers).await;
//! assert!(matches!(refused, Err(VerifyError::WrongAudience { .. })));
//! # Ok(())
//! # }
//! ```

mod cache;
mod claims;
mod error;
mod jws;
mod source;
#[cfg(feature = "test-issuer")]
pub mod testing;
mod verifier;

pub use error::{FetchError, MalformedToken, VerifyError};
pub use source::{HttpKeySource, KeySource};
pub use verifier::{
    GOOGLE_ISSUER, GcrRequirements, GenericOidcToken, OidcVerifier, VerifierConfig, bearer_token,
};
