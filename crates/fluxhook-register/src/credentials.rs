//! Credentials: their `Debug` output is redacted and no error message ever shows them.

use std::fmt;

/// An access token for the Git host's API (a personal, project or app access token).
///
/// ```
/// use fluxhook_register::Token;
/// let token = Token::new("ghp_example");
/// assert_eq!(format!("{token:?}"), "Token([redacted])");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// Wraps the token text.
    pub fn new(token: impl Into<String>) -> Token {
        Token(token.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token([redacted])")
    }
}

/// The webhook secret: the Flux Receiver's token, which the host uses to sign deliveries.
///
/// ```
/// use fluxhook_register::Secret;
/// let secret = Secret::new("receiver-token");
/// assert_eq!(format!("{secret:?}"), "Secret([redacted])");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps the secret text.
    pub fn new(secret: impl Into<String>) -> Secret {
        Secret(secret.into())
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}
