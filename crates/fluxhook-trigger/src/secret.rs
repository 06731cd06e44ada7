//! The `token` of a Secret.

use k8s_openapi::api::core::v1::Secret;
use kube::api::Api;

use crate::message::{kube_message, kube_status};

/// The key of a Secret that holds a token: a Receiver's, or a Git host access token.
pub const TOKEN_KEY: &str = "token";

/// Why a Secret's token could not be read. No message holds any of the Secret's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TokenError {
    /// The API server did not give the Secret.
    #[error("cannot be read: {message}")]
    Unreadable {
        /// The API server's answer.
        message: String,
        /// Its HTTP status, when it answered.
        status: Option<u16>,
    },
    /// The Secret has no `token` key.
    #[error("has no {TOKEN_KEY:?} key")]
    MissingKey,
    /// The token is not UTF-8 text.
    #[error("{TOKEN_KEY:?} is not UTF-8")]
    NotText,
    /// The token is empty.
    #[error("{TOKEN_KEY:?} is empty")]
    Empty,
}

/// The `token` of Secret `namespace/name`, as it is: a Receiver's token is not trimmed, since
/// Flux signs and derives the webhook path from it byte for byte.
pub async fn read_token(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<String, TokenError> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get(name)
        .await
        .map_err(|error| TokenError::Unreadable {
            message: kube_message(&error),
            status: kube_status(&error),
        })?;
    let token = secret
        .data
        .and_then(|mut data| data.remove(TOKEN_KEY))
        .ok_or(TokenError::MissingKey)?;
    let token = String::from_utf8(token.0).map_err(|_| TokenError::NotText)?;
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    Ok(token)
}
