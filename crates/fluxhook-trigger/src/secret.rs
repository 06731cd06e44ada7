//! The `token` of a Secret.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
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

impl TokenError {
    /// The API server's refusal to give a Secret, or the failure to reach it.
    pub fn unreadable(error: &kube::Error) -> TokenError {
        TokenError::Unreadable {
            message: kube_message(error),
            status: kube_status(error),
        }
    }
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
        .map_err(|error| TokenError::unreadable(&error))?;
    let data = secret.data.unwrap_or_default();
    token_in(&data).map(str::to_owned)
}

/// The `token` of a Secret's `data`, as it is: present, UTF-8 and not empty.
///
/// ```
/// use std::collections::BTreeMap;
/// use fluxhook_trigger::secret::{TokenError, token_in};
/// use k8s_openapi::ByteString;
/// let data = BTreeMap::from([("token".to_owned(), ByteString(b" t0ken\n".to_vec()))]);
/// assert_eq!(token_in(&data), Ok(" t0ken\n"));
/// assert_eq!(token_in(&BTreeMap::new()), Err(TokenError::MissingKey));
/// ```
pub fn token_in(data: &BTreeMap<String, ByteString>) -> Result<&str, TokenError> {
    let token = data.get(TOKEN_KEY).ok_or(TokenError::MissingKey)?;
    let token = std::str::from_utf8(&token.0).map_err(|_| TokenError::NotText)?;
    match token.is_empty() {
        true => Err(TokenError::Empty),
        false => Ok(token),
    }
}

/// A Git host access token in a Secret's `data`: its [`token_in`] without the whitespace
/// around it (a file's last line ending), which no host's token has; only whitespace is
/// [`TokenError::Empty`].
///
/// ```
/// use std::collections::BTreeMap;
/// use fluxhook_trigger::secret::{TokenError, access_token_in};
/// use k8s_openapi::ByteString;
/// let token = |text: &str| BTreeMap::from([("token".to_owned(), ByteString(text.into()))]);
/// assert_eq!(access_token_in(&token("ghp_x\n")), Ok("ghp_x"));
/// assert_eq!(access_token_in(&token(" \n")), Err(TokenError::Empty));
/// ```
pub fn access_token_in(data: &BTreeMap<String, ByteString>) -> Result<&str, TokenError> {
    match token_in(data)?.trim() {
        "" => Err(TokenError::Empty),
        token => Ok(token),
    }
}
