//! The hash functions behind the HMAC signatures, and the HMAC itself.

use std::fmt;

use hmac::digest::block_api::EagerHash;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};

/// A hash function that a host uses in its HMAC signatures.
///
/// Its [`Display`](fmt::Display) form is the prefix hosts write before the
/// hex digest, as in `sha256=<hex>`.
///
/// ```
/// use fluxhook_signature::Algorithm;
///
/// assert_eq!(Algorithm::Sha256.to_string(), "sha256");
/// assert_eq!(Algorithm::Sha1.hex_len(), 40);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// HMAC-SHA1: GitHub's legacy `X-Hub-Signature`, Nexus.
    Sha1,
    /// HMAC-SHA256: GitHub's `X-Hub-Signature-256`, Bitbucket, Gitea, Gogs.
    Sha256,
    /// HMAC-SHA512: accepted by GitHub's and Flux's generic-hmac verifiers.
    Sha512,
}

impl Algorithm {
    /// Every algorithm, in increasing digest size.
    pub const ALL: [Algorithm; 3] = [Algorithm::Sha1, Algorithm::Sha256, Algorithm::Sha512];

    /// The name hosts write in a signature prefix (`sha1`, `sha256`, `sha512`).
    pub const fn name(self) -> &'static str {
        match self {
            Algorithm::Sha1 => "sha1",
            Algorithm::Sha256 => "sha256",
            Algorithm::Sha512 => "sha512",
        }
    }

    /// How many hex digits a signature made with this algorithm has.
    pub const fn hex_len(self) -> usize {
        2 * self.digest_len()
    }

    /// Parses a signature prefix. Case-sensitive, as go-github and Flux are.
    pub(crate) fn from_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    pub(crate) const fn digest_len(self) -> usize {
        match self {
            Algorithm::Sha1 => 20,
            Algorithm::Sha256 => 32,
            Algorithm::Sha512 => 64,
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The largest digest any [`Algorithm`] produces, for stack buffers.
pub(crate) const MAX_DIGEST_LEN: usize = Algorithm::Sha512.digest_len();

/// The HMAC of `body` keyed with `secret`, as lowercase hex.
///
/// This is the bare form `X-Gitea-Signature` and `X-Nexus-Webhook-Signature`
/// carry, and what follows `sha256=` in `X-Hub-Signature-256`.
///
/// ```
/// use fluxhook_signature::{hmac_hex, Algorithm};
///
/// // GitHub's documented example.
/// assert_eq!(
///     hmac_hex(Algorithm::Sha256, b"It's a Secret to Everybody", b"Hello, World!"),
///     "757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
/// );
/// ```
pub fn hmac_hex(algorithm: Algorithm, secret: &[u8], body: &[u8]) -> String {
    match algorithm {
        Algorithm::Sha1 => hex::encode(keyed::<Sha1>(secret, body).finalize().into_bytes()),
        Algorithm::Sha256 => hex::encode(keyed::<Sha256>(secret, body).finalize().into_bytes()),
        Algorithm::Sha512 => hex::encode(keyed::<Sha512>(secret, body).finalize().into_bytes()),
    }
}

/// Whether `tag` is the HMAC of `body` keyed with `secret`, compared in
/// constant time (hmac's `verify_slice`, which uses `subtle`).
pub(crate) fn hmac_matches(algorithm: Algorithm, secret: &[u8], body: &[u8], tag: &[u8]) -> bool {
    match algorithm {
        Algorithm::Sha1 => keyed::<Sha1>(secret, body).verify_slice(tag).is_ok(),
        Algorithm::Sha256 => keyed::<Sha256>(secret, body).verify_slice(tag).is_ok(),
        Algorithm::Sha512 => keyed::<Sha512>(secret, body).verify_slice(tag).is_ok(),
    }
}

fn keyed<D: EagerHash>(secret: &[u8], body: &[u8]) -> Hmac<D> {
    // HMAC takes keys of any length (RFC 2104 hashes long keys and pads short
    // ones), so hmac's `new_from_slice` never fails; hmac's own `new` relies
    // on the same fact.
    let mut mac = Hmac::<D>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_case_sensitive() {
        for algorithm in Algorithm::ALL {
            assert_eq!(Algorithm::from_name(algorithm.name()), Some(algorithm));
        }
        assert_eq!(Algorithm::from_name("SHA256"), None);
        assert_eq!(Algorithm::from_name("md5"), None);
    }

    #[test]
    fn hex_lengths_match_the_digests() {
        for algorithm in Algorithm::ALL {
            assert_eq!(hmac_hex(algorithm, b"k", b"m").len(), algorithm.hex_len());
        }
    }

    // Vectors computed independently with Python's hmac module.
    #[test]
    fn known_vectors() {
        let secret = b"It's a Secret to Everybody";
        let body = b"Hello, World!";
        assert_eq!(
            hmac_hex(Algorithm::Sha1, secret, body),
            "01dc10d0c83e72ed246219cdd91669667fe2ca59"
        );
        assert_eq!(
            hmac_hex(Algorithm::Sha512, secret, body),
            "11ed355a617e98134e842012a7944ccf59c10256cb182357bd7e3a42013ff07c\
             376f8c14cf5cc1923da20b51d64256b2fb8ebbf100aa67a61326f61fea8111bc"
        );
    }
}
