//! Verification of one header: a prefixed or bare hex HMAC, or a shared token.

use std::fmt;

use http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::algorithm::{Algorithm, MAX_DIGEST_LEN, hmac_matches};

/// A verification that succeeded: which header was accepted, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The header whose value proved the request genuine.
    pub header: HeaderName,
    /// The HMAC algorithm of the accepted signature; `None` when a shared
    /// token matched.
    pub algorithm: Option<Algorithm>,
}

/// Why a request failed verification.
///
/// No variant holds, and no message shows, the secret or the expected
/// signature: only header names, algorithm names and lengths.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// The secret (HMAC key or token) is empty. Refused rather than checked:
    /// an empty key proves nothing, and an empty token would accept a blank
    /// header.
    #[error("the receiver's secret is empty; refusing to verify against it")]
    EmptySecret,
    /// None of the headers that may carry the signature or token is present
    /// (a header with an empty value counts as absent, as in Flux).
    #[error("missing {} header", OneOf(.headers))]
    MissingHeader {
        /// The headers looked for, preferred first.
        headers: Vec<HeaderName>,
    },
    /// The header is present but its value cannot be a signature.
    #[error("malformed {header} header: {problem}")]
    Malformed {
        /// The header whose value is malformed.
        header: HeaderName,
        /// What is wrong with it.
        problem: Malformation,
    },
    /// The signature's prefix names an algorithm that is not accepted here:
    /// unknown (`md5=`) or weaker than required (`sha1=` for Bitbucket).
    #[error("{header} header is signed with {found:?}, which is not accepted here (accepted: {})", OneOf(.accepted))]
    UnsupportedAlgorithm {
        /// The header carrying the signature.
        header: HeaderName,
        /// The prefix the sender wrote, cut to 16 characters.
        found: String,
        /// The algorithms that would have been accepted.
        accepted: &'static [Algorithm],
    },
    /// The signature or token is well formed but does not match the body and
    /// secret.
    #[error("{header} header does not match the request body and the receiver's secret")]
    Mismatch {
        /// The header whose value did not match.
        header: HeaderName,
    },
}

/// What is wrong with a malformed header value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Malformation {
    /// The header is sent more than once, so which value counts is ambiguous.
    #[error("the header is sent more than once")]
    Repeated,
    /// The value holds bytes other than visible ASCII (e.g. non-UTF-8).
    #[error("the value is not visible ASCII")]
    NotVisibleAscii,
    /// The value lacks the `<algorithm>=` prefix.
    #[error("the value has no `<algorithm>=` prefix")]
    MissingPrefix,
    /// The signature holds characters that are not hex digits.
    #[error("the signature is not hexadecimal")]
    NotHex,
    /// The signature has the wrong number of hex digits for its algorithm.
    #[error("the signature has {found} hex digits, HMAC-{algorithm} has {}", .algorithm.hex_len())]
    WrongLength {
        /// The algorithm the signature claims or the scheme requires.
        algorithm: Algorithm,
        /// How many hex digits the signature has.
        found: usize,
    },
}

/// Verifies `<algorithm>=<hex>` in `header`, the form of `X-Hub-Signature-256`,
/// `X-Hub-Signature` and Flux's `X-Signature`.
///
/// The prefix must name one of `accepted`; the hex digits may be upper or
/// lower case. The comparison is constant-time.
///
/// ```
/// use fluxhook_signature::{header, verify_prefixed_signature, Algorithm, VerifyError};
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     header::X_HUB_SIGNATURE,
///     "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17".parse()?,
/// );
/// let secret = b"It's a Secret to Everybody";
///
/// let verified = verify_prefixed_signature(
///     &headers, &header::X_HUB_SIGNATURE, &[Algorithm::Sha256], b"Hello, World!", secret,
/// )?;
/// assert_eq!(verified.algorithm, Some(Algorithm::Sha256));
///
/// let tampered = verify_prefixed_signature(
///     &headers, &header::X_HUB_SIGNATURE, &[Algorithm::Sha256], b"Hello, World?", secret,
/// );
/// assert!(matches!(tampered, Err(VerifyError::Mismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_prefixed_signature(
    headers: &HeaderMap,
    header: &HeaderName,
    accepted: &'static [Algorithm],
    body: &[u8],
    secret: &[u8],
) -> Result<Verified, VerifyError> {
    require_secret(secret)?;
    let value = required_value(headers, header)?;
    let value = visible_ascii(header, value)?;
    let Some((prefix, hex_digits)) = value.split_once('=').filter(|(p, _)| !p.is_empty()) else {
        return Err(malformed(header, Malformation::MissingPrefix));
    };
    let Some(algorithm) = Algorithm::from_name(prefix).filter(|a| accepted.contains(a)) else {
        return Err(VerifyError::UnsupportedAlgorithm {
            header: header.clone(),
            found: prefix.chars().take(16).collect(),
            accepted,
        });
    };
    check_hex(header, algorithm, hex_digits, body, secret)
}

/// Verifies a bare hex HMAC in `header`, the form of `X-Gitea-Signature`,
/// `X-Gogs-Signature` (SHA-256) and `X-Nexus-Webhook-Signature` (SHA-1).
///
/// The hex digits may be upper or lower case. The comparison is constant-time.
///
/// ```
/// use fluxhook_signature::{header, hmac_hex, verify_hex_signature, Algorithm};
/// use http::HeaderMap;
///
/// let (secret, body) = (b"s3cret", br#"{"ref":"refs/heads/main"}"#);
/// let mut headers = HeaderMap::new();
/// headers.insert(
///     header::X_GITEA_SIGNATURE,
///     hmac_hex(Algorithm::Sha256, secret, body).parse()?,
/// );
///
/// let verified =
///     verify_hex_signature(&headers, &header::X_GITEA_SIGNATURE, Algorithm::Sha256, body, secret)?;
/// assert_eq!(verified.header, header::X_GITEA_SIGNATURE);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_hex_signature(
    headers: &HeaderMap,
    header: &HeaderName,
    algorithm: Algorithm,
    body: &[u8],
    secret: &[u8],
) -> Result<Verified, VerifyError> {
    require_secret(secret)?;
    let value = required_value(headers, header)?;
    let hex_digits = visible_ascii(header, value)?;
    check_hex(header, algorithm, hex_digits, body, secret)
}

/// Verifies that `header` carries exactly `token`, as `X-Gitlab-Token` and
/// Harbor's `Authorization` do. The body is not covered by a token.
///
/// The comparison is constant-time in the token's content: both the header
/// value and the token are hashed with SHA-256 and the digests compared with
/// `subtle`. Comparing digests rather than the raw bytes means a length
/// mismatch takes the same path as any other mismatch; the only timing left is
/// hashing, which depends on lengths alone (in 64-byte blocks), never on
/// which bytes differ. Values are compared as raw bytes, so a non-UTF-8 value
/// is simply a mismatch.
///
/// ```
/// use fluxhook_signature::{header, verify_token, VerifyError};
/// use http::HeaderMap;
///
/// let mut headers = HeaderMap::new();
/// headers.insert(header::X_GITLAB_TOKEN, "s3cret".parse()?);
///
/// assert!(verify_token(&headers, &header::X_GITLAB_TOKEN, b"s3cret").is_ok());
/// assert!(matches!(
///     verify_token(&headers, &header::X_GITLAB_TOKEN, b"other"),
///     Err(VerifyError::Mismatch { .. })
/// ));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn verify_token(
    headers: &HeaderMap,
    header: &HeaderName,
    token: &[u8],
) -> Result<Verified, VerifyError> {
    require_secret(token)?;
    let value = required_value(headers, header)?;
    let presented = Sha256::digest(value.as_bytes());
    let expected = Sha256::digest(token);
    if bool::from(presented.as_slice().ct_eq(expected.as_slice())) {
        Ok(Verified {
            header: header.clone(),
            algorithm: None,
        })
    } else {
        Err(VerifyError::Mismatch {
            header: header.clone(),
        })
    }
}

/// The value of `header` if it is sent once with a non-empty value; `None`
/// if it is absent or empty (Go's `Header.Get` makes the two the same in
/// Flux); an error if it is sent more than once.
pub(crate) fn present_value<'h>(
    headers: &'h HeaderMap,
    header: &HeaderName,
) -> Result<Option<&'h HeaderValue>, VerifyError> {
    let mut values = headers.get_all(header).iter();
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(_), Some(_)) => Err(malformed(header, Malformation::Repeated)),
        (Some(value), None) if value.is_empty() => Ok(None),
        (Some(value), None) => Ok(Some(value)),
    }
}

pub(crate) fn require_secret(secret: &[u8]) -> Result<(), VerifyError> {
    if secret.is_empty() {
        Err(VerifyError::EmptySecret)
    } else {
        Ok(())
    }
}

fn required_value<'h>(
    headers: &'h HeaderMap,
    header: &HeaderName,
) -> Result<&'h HeaderValue, VerifyError> {
    present_value(headers, header)?.ok_or_else(|| VerifyError::MissingHeader {
        headers: vec![header.clone()],
    })
}

fn visible_ascii<'v>(header: &HeaderName, value: &'v HeaderValue) -> Result<&'v str, VerifyError> {
    value
        .to_str()
        .map_err(|_| malformed(header, Malformation::NotVisibleAscii))
}

fn check_hex(
    header: &HeaderName,
    algorithm: Algorithm,
    hex_digits: &str,
    body: &[u8],
    secret: &[u8],
) -> Result<Verified, VerifyError> {
    if !hex_digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed(header, Malformation::NotHex));
    }
    if hex_digits.len() != algorithm.hex_len() {
        return Err(malformed(
            header,
            Malformation::WrongLength {
                algorithm,
                found: hex_digits.len(),
            },
        ));
    }
    let mut buffer = [0u8; MAX_DIGEST_LEN];
    // In bounds: no digest is longer than MAX_DIGEST_LEN.
    let tag = &mut buffer[..algorithm.digest_len()];
    hex::decode_to_slice(hex_digits, tag).map_err(|_| malformed(header, Malformation::NotHex))?;
    if hmac_matches(algorithm, secret, body, tag) {
        Ok(Verified {
            header: header.clone(),
            algorithm: Some(algorithm),
        })
    } else {
        Err(VerifyError::Mismatch {
            header: header.clone(),
        })
    }
}

fn malformed(header: &HeaderName, problem: Malformation) -> VerifyError {
    VerifyError::Malformed {
        header: header.clone(),
        problem,
    }
}

/// Lists items as `a`, `a or b`, `a, b or c`.
struct OneOf<'a, T>(&'a [T]);

impl<T: fmt::Display> fmt::Display for OneOf<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let last = self.0.len().saturating_sub(1);
        for (i, item) in self.0.iter().enumerate() {
            match i {
                0 => {}
                _ if i == last => f.write_str(" or ")?,
                _ => f.write_str(", ")?,
            }
            write!(f, "{item}")?;
        }
        Ok(())
    }
}
