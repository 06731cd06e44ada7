//! The webhook path Flux derives for a Receiver: `/hook/` followed by the
//! lowercase hex SHA-256 of `token + name + namespace`.

use std::fmt;

use sha2::{Digest as _, Sha256};

/// The prefix of every Receiver webhook path.
pub const WEBHOOK_PATH_PREFIX: &str = "/hook/";

/// Length in characters of the hex digest that follows [`WEBHOOK_PATH_PREFIX`].
pub const WEBHOOK_DIGEST_LEN: usize = 64;

/// A Receiver's webhook path: `/hook/` and 64 lowercase hex characters.
///
/// A value of this type is always well formed: it is either computed by
/// [`webhook_path`] or checked by [`WebhookPath::parse`].
///
/// The path is what a webhook sender must know to reach a Receiver (for a
/// `generic` Receiver it is the only credential), so treat it like a secret:
/// [`WebhookPathError`] never repeats it.
///
/// ```
/// use fluxhook_api::{webhook_path, WebhookPath};
///
/// let path = webhook_path("token", "github-receiver", "flux-system");
/// assert!(path.as_str().starts_with("/hook/"));
/// assert_eq!(WebhookPath::parse(path.as_str()), Ok(path.clone()));
/// assert_eq!(path.digest().len(), 64);
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookPath(String);

/// Why a string is not a webhook path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookPathError {
    /// The path does not start with `/hook/`.
    #[error("webhook path does not start with {WEBHOOK_PATH_PREFIX}")]
    MissingPrefix,
    /// The digest after `/hook/` is not 64 characters long.
    #[error(
        "webhook digest has {len} bytes, expected {WEBHOOK_DIGEST_LEN} lowercase hex characters"
    )]
    DigestLength {
        /// Length in bytes of what followed the prefix.
        len: usize,
    },
    /// The digest holds a character other than `0-9` and `a-f`.
    #[error("webhook digest has a character other than 0-9 and a-f at byte {position}")]
    DigestCharacter {
        /// Byte offset of the first bad character within the digest.
        position: usize,
    },
}

/// Computes the webhook path Flux gives a Receiver: `/hook/` and the lowercase
/// hex SHA-256 of the string concatenation `token + name + namespace`.
///
/// For `generic-oidc` Receivers, which have no Secret, the token is empty.
///
/// ```
/// use fluxhook_api::webhook_path;
///
/// let path = webhook_path("", "oidc-receiver", "flux-system");
/// assert_eq!(path.digest().len(), 64);
/// // The inputs are concatenated, so moving characters between them keeps the path.
/// assert_eq!(webhook_path("ab", "c", "d"), webhook_path("a", "bc", "d"));
/// ```
pub fn webhook_path(token: &str, name: &str, namespace: &str) -> WebhookPath {
    let digest = Sha256::new()
        .chain_update(token.as_bytes())
        .chain_update(name.as_bytes())
        .chain_update(namespace.as_bytes())
        .finalize();
    let mut path = String::with_capacity(WEBHOOK_PATH_PREFIX.len() + WEBHOOK_DIGEST_LEN);
    path.push_str(WEBHOOK_PATH_PREFIX);
    path.push_str(&hex::encode(digest));
    WebhookPath(path)
}

impl WebhookPath {
    /// Checks that `path` is exactly `/hook/` and 64 lowercase hex characters
    /// (no query string, no trailing slash).
    ///
    /// ```
    /// use fluxhook_api::{WebhookPath, WebhookPathError};
    ///
    /// let ok = format!("/hook/{}", "ab".repeat(32));
    /// assert!(WebhookPath::parse(&ok).is_ok());
    /// assert_eq!(WebhookPath::parse("/hooks/x"), Err(WebhookPathError::MissingPrefix));
    /// let upper = format!("/hook/a{}", "B".repeat(63));
    /// assert_eq!(
    ///     WebhookPath::parse(&upper),
    ///     Err(WebhookPathError::DigestCharacter { position: 1 })
    /// );
    /// ```
    pub fn parse(path: &str) -> Result<Self, WebhookPathError> {
        let digest = path
            .strip_prefix(WEBHOOK_PATH_PREFIX)
            .ok_or(WebhookPathError::MissingPrefix)?;
        Self::from_digest(digest)
    }

    /// Builds the path from its digest alone, checking it is 64 lowercase hex
    /// characters.
    ///
    /// ```
    /// use fluxhook_api::{WebhookPath, WebhookPathError};
    ///
    /// let path = WebhookPath::from_digest(&"0".repeat(64)).unwrap();
    /// assert_eq!(path.as_str(), format!("/hook/{}", "0".repeat(64)));
    /// assert_eq!(
    ///     WebhookPath::from_digest("abc"),
    ///     Err(WebhookPathError::DigestLength { len: 3 })
    /// );
    /// ```
    pub fn from_digest(digest: &str) -> Result<Self, WebhookPathError> {
        if digest.len() != WEBHOOK_DIGEST_LEN {
            return Err(WebhookPathError::DigestLength { len: digest.len() });
        }
        if let Some(position) = digest
            .bytes()
            .position(|b| !matches!(b, b'0'..=b'9' | b'a'..=b'f'))
        {
            return Err(WebhookPathError::DigestCharacter { position });
        }
        Ok(WebhookPath(format!("{WEBHOOK_PATH_PREFIX}{digest}")))
    }

    /// The whole path, `/hook/<digest>`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 lowercase hex characters after `/hook/`.
    ///
    /// ```
    /// let path = fluxhook_api::webhook_path("t", "n", "ns");
    /// assert_eq!(format!("/hook/{}", path.digest()), path.as_str());
    /// ```
    pub fn digest(&self) -> &str {
        // The prefix is ASCII, so this offset is a char boundary.
        self.0.get(WEBHOOK_PATH_PREFIX.len()..).unwrap_or_default()
    }

    /// The path as an owned string, e.g. for `status.webhookPath`.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl AsRef<str> for WebhookPath {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WebhookPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Shows only that a path is there: the path itself is a credential.
impl fmt::Debug for WebhookPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WebhookPath(/hook/<redacted>)")
    }
}

impl std::str::FromStr for WebhookPath {
    type Err = WebhookPathError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl From<WebhookPath> for String {
    fn from(path: WebhookPath) -> Self {
        path.0
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    /// Hex by hand, independent of the `hex` crate the code uses.
    fn hand_hex(bytes: &[u8]) -> String {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = String::new();
        for b in bytes {
            out.push(char::from(DIGITS[usize::from(b >> 4)]));
            out.push(char::from(DIGITS[usize::from(b & 0xf)]));
        }
        out
    }

    #[test]
    fn matches_sha256sum_of_the_concatenation() {
        // printf %s 's3cr3tgithub-receiverflux-system' | sha256sum
        assert_eq!(
            webhook_path("s3cr3t", "github-receiver", "flux-system").as_str(),
            "/hook/605dbd4976c3504a20afec155a68122702621389b3b29f71feb118008a1696a1"
        );
        // printf %s '' | sha256sum
        assert_eq!(
            webhook_path("", "", "").digest(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn debug_hides_the_path() {
        let path = webhook_path("t", "n", "ns");
        assert!(!format!("{path:?}").contains(path.digest()));
    }

    #[test]
    fn errors_do_not_repeat_the_input() {
        let bad = format!("/hook/{}G", "a".repeat(63));
        let err = WebhookPath::parse(&bad).unwrap_err();
        assert_eq!(err, WebhookPathError::DigestCharacter { position: 63 });
        assert!(!err.to_string().contains("aaaa"));
    }

    #[test]
    fn rejects_what_flux_would_not_have_written() {
        let digest = "a".repeat(64);
        for bad in [
            format!("/hook/{digest}/"),
            format!("/hook/{digest}?x=1"),
            format!("hook/{digest}"),
            format!("//hook/{digest}"),
            format!("/HOOK/{digest}"),
            "/hook/".to_owned(),
            String::new(),
        ] {
            assert!(WebhookPath::parse(&bad).is_err(), "{bad}");
        }
    }

    proptest! {
        #[test]
        fn equals_an_independent_computation(token in ".*", name in ".*", namespace in ".*") {
            let concatenated = format!("{token}{name}{namespace}");
            let expected = format!("/hook/{}", hand_hex(&Sha256::digest(concatenated.as_bytes())));
            let path = webhook_path(&token, &name, &namespace);
            prop_assert_eq!(path.as_str(), expected.as_str());
            prop_assert_eq!(WebhookPath::parse(path.as_str()), Ok(path.clone()));
            prop_assert_eq!(WebhookPath::from_digest(path.digest()), Ok(path));
        }

        #[test]
        fn parse_accepts_exactly_prefix_and_64_lowercase_hex(input in "(/hook/)?[0-9a-fA-Z/?]{0,70}|.*") {
            let expected = input
                .strip_prefix("/hook/")
                .is_some_and(|d| d.len() == 64 && d.chars().all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
            let parsed = WebhookPath::parse(&input);
            prop_assert_eq!(parsed.is_ok(), expected);
            if let Ok(path) = parsed {
                prop_assert_eq!(path.as_str(), input.as_str());
            }
        }
    }
}
