//! Hooks as they should be and as hosts report them.

use std::collections::BTreeSet;
use std::fmt;

use hmac::{KeyInit, Mac};
use url::Url;

use crate::client::host_of;
use crate::events::subscriptions;
use crate::{Delivery, Forge, HostedRepository, Operation, ReceiverEvents, RegisterError, Secret};

/// The hook a Receiver needs: deliveries to `url` of the host's events the Receiver accepts,
/// signed with `secret`.
///
/// Payloads are always JSON; the host verifies the receiver's TLS certificate unless
/// [`skip_tls_verification`](DesiredHook::skip_tls_verification) says otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredHook {
    url: Url,
    secret: Secret,
    events: ReceiverEvents,
    receiver_type: Option<String>,
    verify_tls: bool,
}

impl DesiredHook {
    /// A hook to `url`, signed with `secret`, for a Receiver accepting `events`.
    pub fn new(url: Url, secret: Secret, events: ReceiverEvents) -> DesiredHook {
        DesiredHook {
            url,
            secret,
            events,
            receiver_type: None,
            verify_tls: true,
        }
    }

    /// The host delivers without verifying the receiver's TLS certificate: for a receiver
    /// whose certificate a private CA issued, which the host does not trust. GitHub, GitLab
    /// and Bitbucket have a per-hook switch; Gitea, Forgejo and Gogs verify per instance
    /// (`[webhook] SKIP_TLS_VERIFY`), so a hook there asking for it is an error.
    ///
    /// ```
    /// use fluxhook_register::{DesiredHook, ReceiverEvents, Secret};
    /// let hook = DesiredHook::new("https://flux.internal/hook/1".parse()?, Secret::new("t"), ReceiverEvents::all());
    /// assert!(hook.verifies_tls());
    /// assert!(!hook.skip_tls_verification().verifies_tls());
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn skip_tls_verification(mut self) -> DesiredHook {
        self.verify_tls = false;
        self
    }

    /// Whether the host is to verify the receiver's TLS certificate.
    pub fn verifies_tls(&self) -> bool {
        self.verify_tls
    }

    /// The Receiver's `spec.type`: a hook is refused on a host whose deliveries it cannot
    /// verify (a `github` Receiver on GitLab, `generic-hmac` anywhere), and a `generic` one
    /// accepts every event whatever its `spec.events` say.
    pub fn for_receiver_type(mut self, receiver_type: impl Into<String>) -> DesiredHook {
        self.receiver_type = Some(receiver_type.into());
        self
    }

    /// Where deliveries go.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// The events the Receiver accepts.
    pub fn events(&self) -> &ReceiverEvents {
        &self.events
    }

    /// The Receiver's type, when known.
    pub fn receiver_type(&self) -> Option<&str> {
        self.receiver_type.as_deref()
    }

    /// Whether this hook can be registered in `repository` at all: an error (the one
    /// [`HookClient::ensure`](crate::HookClient::ensure) would fail with, before any
    /// request) when the Receiver's type cannot verify the host's deliveries or it accepts
    /// none of the host's events.
    ///
    /// ```
    /// use fluxhook_register::{DesiredHook, ReceiverEvents, HostedRepository, Secret};
    /// let gitlab = HostedRepository::from_git_url("https://gitlab.com/group/fleet", None)?;
    /// let hook = DesiredHook::new(
    ///     "https://flux.example.com/hook/5a1b0c".parse()?,
    ///     Secret::new("token"),
    ///     ReceiverEvents::new(["push"]),
    /// );
    /// assert!(hook.clone().for_receiver_type("gitlab").check(&gitlab).is_err());
    /// let error = hook.for_receiver_type("github").check(&gitlab).unwrap_err();
    /// assert!(error.to_string().contains("a github Receiver cannot verify GitLab's deliveries"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn check(&self, repository: &HostedRepository) -> Result<(), RegisterError> {
        self.subscriptions_in(repository).map(drop)
    }

    /// The names of the host's hook events this hook subscribes to in `repository`.
    pub(crate) fn subscriptions_in(
        &self,
        repository: &HostedRepository,
    ) -> Result<Vec<&'static str>, RegisterError> {
        let per_instance = repository.forge().profile().hook_tls_setting.is_none();
        if !self.verify_tls && per_instance {
            return Err(RegisterError::new(
                repository.forge(),
                host_of(repository.api_base()),
                repository.full_name(),
                Operation::ChooseEvents,
                crate::ErrorKind::TlsVerificationPerInstance {
                    host: repository.forge().to_string(),
                },
            ));
        }
        subscriptions(repository.forge(), self.receiver_type(), self.events())
            .map(|chosen| chosen.iter().map(|s| s.write).collect())
            .map_err(|kind| {
                RegisterError::new(
                    repository.forge(),
                    host_of(repository.api_base()),
                    repository.full_name(),
                    Operation::ChooseEvents,
                    kind,
                )
            })
    }

    pub(crate) fn secret(&self) -> &Secret {
        &self.secret
    }

    /// The fingerprint of the secret recorded in a hook's label, where the host has one.
    pub(crate) fn fingerprint(&self) -> String {
        secret_fingerprint(&self.secret, &self.url)
    }
}

/// A receiver's public base URL that a webhook path cannot be joined to.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the receiver's base URL {0} should be an http(s) URL without query or fragment")]
pub struct InvalidBaseUrl(pub String);

/// The URL a host delivers a Receiver's events to: the public base URL the receiver server is
/// reached at (a path prefix is kept) with the Receiver's webhook path (`/hook/<digest>`)
/// appended.
///
/// ```
/// use fluxhook_register::receiver_url;
/// let base = "https://example.com/flux/".parse()?;
/// assert_eq!(
///     receiver_url(&base, "/hook/5a1b0c")?.as_str(),
///     "https://example.com/flux/hook/5a1b0c"
/// );
/// assert!(receiver_url(&"https://example.com/?q=1".parse()?, "/hook/5a1b0c").is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn receiver_url(base: &Url, webhook_path: &str) -> Result<Url, InvalidBaseUrl> {
    let plain = matches!(base.scheme(), "https" | "http")
        && !base.cannot_be_a_base()
        && base.query().is_none()
        && base.fragment().is_none();
    if !plain {
        return Err(InvalidBaseUrl(base.to_string()));
    }
    let mut url = base.clone();
    url.set_path(&format!(
        "{}/{}",
        base.path().trim_end_matches('/'),
        webhook_path.trim_start_matches('/')
    ));
    Ok(url)
}

/// The first 64 bits of HMAC-SHA256 keyed by the secret over the hook URL, in hex.
///
/// It tells whether the secret changed without revealing it: only a holder of the secret can
/// compute it, and the URL in the message makes it differ between hooks with one secret.
fn secret_fingerprint(secret: &Secret, url: &Url) -> String {
    // HMAC accepts keys of any length, so building it cannot fail.
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(b"fluxhook-register secret fingerprint v1\n");
    mac.update(url.as_str().as_bytes());
    let digest = mac.finalize().into_bytes();
    hex::encode(digest.get(..8).unwrap_or_default())
}

/// Marks the fingerprint inside a hook's label.
const FINGERPRINT_MARK: &str = "secret-hmac=";

/// The label text carrying `fingerprint`.
pub(crate) fn fingerprint_label(fingerprint: &str) -> String {
    format!("fluxhook ({FINGERPRINT_MARK}{fingerprint})")
}

/// The secret state of a hook whose host keeps a free-text label this crate writes to.
pub(crate) fn secret_state_from_label(label: Option<&str>) -> SecretState {
    let Some(label) = label else {
        return SecretState::Hidden;
    };
    let fingerprint = label
        .split_once(FINGERPRINT_MARK)
        .and_then(|(_, rest)| rest.get(..16))
        .filter(|f| f.bytes().all(|b| b.is_ascii_hexdigit()));
    match fingerprint {
        Some(f) => SecretState::Fingerprint(f.to_ascii_lowercase()),
        None => SecretState::Unrecorded,
    }
}

/// A hook's id on its host (a number, or a `{uuid}` on Bitbucket Cloud).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HookId(String);

impl HookId {
    /// Wraps the host's id.
    pub fn new(id: impl Into<String>) -> HookId {
        HookId(id.into())
    }

    /// The id as the host writes it.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for HookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a hook serialises its deliveries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayloadFormat {
    /// JSON body (`application/json`): what Flux receivers read.
    Json,
    /// Form-encoded body (GitHub's and Gitea's `form` content type).
    Form,
    /// Another kind of hook the host cannot turn into a JSON one by editing it (a Gitea
    /// `slack` or `gogs` hook, say).
    Other(String),
}

/// What a host tells of a hook's secret. Hosts never return the secret itself (Bitbucket
/// Server's may, and is not relied on), so this crate records a fingerprint of it in the
/// hook's label where the host keeps one: GitLab's `description`, Bitbucket Cloud's
/// `description`, Bitbucket Server's `name`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretState {
    /// The host reports that the hook has no secret.
    Missing,
    /// The label carries this fingerprint of the secret.
    Fingerprint(String),
    /// The host keeps a label, but it holds no fingerprint (not written by this crate).
    Unrecorded,
    /// The host does not show which secret is set (GitHub shows `********`, Gitea nothing,
    /// GitLab before 17.1 has no label).
    Hidden,
}

/// A hook as its host reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// The host's id of the hook.
    pub id: HookId,
    /// Where deliveries go.
    pub url: String,
    /// The host's names of the events subscribed to; for GitLab, the `*_events` flags on.
    pub events: BTreeSet<String>,
    /// Whether the hook is switched on (GitLab project hooks have no switch: always true).
    pub active: bool,
    /// How deliveries are serialised.
    pub payload: PayloadFormat,
    /// Whether the host verifies the receiver's TLS certificate.
    pub tls_verification: bool,
    /// What the host tells of the secret.
    pub secret: SecretState,
    /// What the host tells of its last deliveries, where it tells it with the hook (GitHub's
    /// `last_response`, GitLab's `alert_status`); `None` when it tells nothing (no delivery
    /// yet, or a host that does not say).
    pub last_delivery: Option<Delivery>,
}

impl Hook {
    /// Whether the hook delivers to `url`.
    pub fn points_to(&self, url: &Url) -> bool {
        Url::parse(&self.url).is_ok_and(|own| own == *url)
    }

    /// Whether the hook is exactly `desired` on `provider`: same URL, subscribed to the
    /// host's events the Receiver accepts (and no other), active, JSON, TLS verified, and a
    /// secret that is, as far as the host tells, the desired one. Never, when the Receiver
    /// could not have a hook on `provider`.
    pub fn matches(&self, desired: &DesiredHook, provider: Forge) -> bool {
        let Ok(subscribed) = subscriptions(provider, desired.receiver_type(), desired.events())
        else {
            return false;
        };
        let events: BTreeSet<String> = subscribed.iter().map(|s| s.read.to_owned()).collect();
        let secret = match &self.secret {
            SecretState::Fingerprint(f) => *f == desired.fingerprint(),
            SecretState::Hidden => true,
            SecretState::Missing | SecretState::Unrecorded => false,
        };
        self.points_to(desired.url())
            && self.events == events
            && self.active
            && self.payload == PayloadFormat::Json
            && self.tls_verification == desired.verify_tls
            && secret
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn url(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn receiver_urls_keep_the_base_path() {
        let path = "/hook/5a1b0c";
        for (base, joined) in [
            (
                "https://flux.example.com",
                "https://flux.example.com/hook/5a1b0c",
            ),
            (
                "https://flux.example.com/",
                "https://flux.example.com/hook/5a1b0c",
            ),
            (
                "https://example.com/flux/",
                "https://example.com/flux/hook/5a1b0c",
            ),
            (
                "http://127.0.0.1:9292/flux",
                "http://127.0.0.1:9292/flux/hook/5a1b0c",
            ),
        ] {
            assert_eq!(receiver_url(&url(base), path).unwrap().as_str(), joined);
        }
        for bad in [
            "https://a.example/?x=1",
            "https://a.example/#f",
            "mailto:a@b",
        ] {
            assert!(receiver_url(&url(bad), path).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #[test]
        fn receiver_urls_are_the_base_then_the_path(
            prefix in proptest::collection::vec("[a-z0-9-]{1,8}", 0..3),
            slash in proptest::bool::ANY,
            digest in "[0-9a-f]{64}",
        ) {
            let mut base = format!("https://flux.example.com/{}", prefix.join("/"));
            if slash && !base.ends_with('/') {
                base.push('/');
            }
            let path = format!("/hook/{digest}");
            let joined = receiver_url(&url(&base), &path).unwrap();
            let expected_path = match prefix.is_empty() {
                true => path.clone(),
                false => format!("/{}{path}", prefix.join("/")),
            };
            proptest::prop_assert_eq!(joined.path(), expected_path);
            proptest::prop_assert_eq!(joined.host_str(), Some("flux.example.com"));
        }
    }

    #[test]
    fn fingerprints_depend_on_secret_and_url() {
        let a = secret_fingerprint(&Secret::new("one"), &url("https://r.example/hook/1"));
        assert_eq!(a.len(), 16);
        assert_eq!(
            a,
            secret_fingerprint(&Secret::new("one"), &url("https://r.example/hook/1"))
        );
        assert_ne!(
            a,
            secret_fingerprint(&Secret::new("two"), &url("https://r.example/hook/1"))
        );
        assert_ne!(
            a,
            secret_fingerprint(&Secret::new("one"), &url("https://r.example/hook/2"))
        );
        assert!(!a.contains("one"));
    }

    #[test]
    fn labels_round_trip_fingerprints() {
        let label = fingerprint_label("0123456789abcdef");
        assert_eq!(
            secret_state_from_label(Some(&label)),
            SecretState::Fingerprint("0123456789abcdef".into())
        );
        assert_eq!(
            secret_state_from_label(Some("CI hook")),
            SecretState::Unrecorded
        );
        assert_eq!(
            secret_state_from_label(Some("secret-hmac=nothex")),
            SecretState::Unrecorded
        );
        assert_eq!(secret_state_from_label(None), SecretState::Hidden);
    }

    #[test]
    fn matching_needs_every_property() {
        let desired = DesiredHook::new(
            url("https://r.example/hook/1"),
            Secret::new("s"),
            ReceiverEvents::all(),
        );
        let good = Hook {
            id: HookId::new("1"),
            url: "https://r.example/hook/1".into(),
            events: ["push".to_owned()].into(),
            active: true,
            payload: PayloadFormat::Json,
            tls_verification: true,
            secret: SecretState::Hidden,
            last_delivery: None,
        };
        assert!(good.matches(&desired, Forge::GITHUB));
        assert!(!good.matches(&desired, Forge::GITLAB));
        let variants = [
            Hook {
                url: "https://r.example/hook/2".into(),
                ..good.clone()
            },
            Hook {
                events: ["push".to_owned(), "issues".to_owned()].into(),
                ..good.clone()
            },
            Hook {
                active: false,
                ..good.clone()
            },
            Hook {
                payload: PayloadFormat::Form,
                ..good.clone()
            },
            Hook {
                tls_verification: false,
                ..good.clone()
            },
            Hook {
                secret: SecretState::Missing,
                ..good.clone()
            },
            Hook {
                secret: SecretState::Unrecorded,
                ..good.clone()
            },
            Hook {
                secret: SecretState::Fingerprint("0000000000000000".into()),
                ..good.clone()
            },
        ];
        for hook in variants {
            assert!(!hook.matches(&desired, Forge::GITHUB), "{hook:?}");
        }
        let recorded = Hook {
            secret: SecretState::Fingerprint(desired.fingerprint()),
            ..good
        };
        assert!(recorded.matches(&desired, Forge::GITHUB));
    }
}
