//! `spec.type` of a Receiver: which sender the webhook comes from.

use std::{borrow::Cow, fmt};

use fluxhook_payload::{Sender, header as event};
use fluxhook_signature::Policy;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The type of webhook sender a Receiver accepts (`spec.type`).
///
/// Deserialization never fails on an unknown value: Flux's CRD only admits the
/// known types, but an object stored under another CRD, or written by a newer
/// Flux, may carry one, and the controller must be able to read it to report
/// it as not Ready. Such a value becomes [`ReceiverType::Unknown`] and
/// serializes back unchanged. Values are case-sensitive, as in Flux
/// (`GitHub` is unknown).
///
/// Everything that differs between types is said here, once per concern, by
/// an exhaustive match without a wildcard: its name ([`as_str`]), the header
/// naming its events ([`event_header`]), how a request proves it genuine
/// ([`authentication`], naming the signature crate's verifier itself) and
/// what is read of the body ([`payload`], naming the payload crate's
/// format). Adding a type is a variant, an entry of [`KNOWN`] and an arm of
/// each of those: the compiler names every one left, and nothing else maps
/// types. Not `#[non_exhaustive]` for that reason; an unknown type is
/// [`Authentication::Refused`], never served.
///
/// [`as_str`]: ReceiverType::as_str
/// [`event_header`]: ReceiverType::event_header
/// [`authentication`]: ReceiverType::authentication
/// [`payload`]: ReceiverType::payload
/// [`KNOWN`]: ReceiverType::KNOWN
///
/// ```
/// use fluxhook_api::ReceiverType;
///
/// let github: ReceiverType = serde_json::from_str(r#""github""#).unwrap();
/// assert_eq!(github, ReceiverType::GitHub);
/// assert!(github.supports_events());
///
/// let other: ReceiverType = serde_json::from_str(r#""gitea""#).unwrap();
/// assert!(!other.is_known());
/// assert_eq!(serde_json::to_string(&other).unwrap(), r#""gitea""#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReceiverType {
    /// `generic`: any request to the path is accepted.
    Generic,
    /// `generic-hmac`: an HMAC of the body in the `X-Signature` header.
    GenericHmac,
    /// `generic-oidc`: an OIDC bearer token checked against `spec.oidcProviders`;
    /// no Secret.
    GenericOidc,
    /// `github` (also Gitea): HMAC in `X-Hub-Signature(-256)`.
    GitHub,
    /// `gitlab`: the token in `X-Gitlab-Token`.
    GitLab,
    /// `bitbucket` (Bitbucket Server): HMAC in `X-Hub-Signature`.
    Bitbucket,
    /// `harbor`: the token in `Authorization`.
    Harbor,
    /// `dockerhub`.
    DockerHub,
    /// `quay`.
    Quay,
    /// `nexus`: HMAC-SHA1 in `X-Nexus-Webhook-Signature`.
    Nexus,
    /// `acr` (Azure Container Registry).
    Acr,
    /// `gcr` (Google Container Registry, through Pub/Sub push).
    Gcr,
    /// `cdevents`: a CDEvent, its type in `Ce-Type`.
    CdEvents,
    /// A value Flux does not know; kept as written.
    Unknown(UnknownReceiverType),
}

/// A `spec.type` value that is not one of Flux's types.
///
/// Only [`ReceiverType::from`] builds one, so it never holds a known value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UnknownReceiverType(String);

impl UnknownReceiverType {
    /// The value as written in the object.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl ReceiverType {
    /// Every type Flux knows, in the order of Flux's CRD enum.
    pub const KNOWN: [ReceiverType; 13] = [
        ReceiverType::Generic,
        ReceiverType::GenericHmac,
        ReceiverType::GenericOidc,
        ReceiverType::GitHub,
        ReceiverType::GitLab,
        ReceiverType::Bitbucket,
        ReceiverType::Harbor,
        ReceiverType::DockerHub,
        ReceiverType::Quay,
        ReceiverType::Gcr,
        ReceiverType::Nexus,
        ReceiverType::Acr,
        ReceiverType::CdEvents,
    ];

    /// The value as written in `spec.type`.
    ///
    /// ```
    /// assert_eq!(fluxhook_api::ReceiverType::GenericOidc.as_str(), "generic-oidc");
    /// ```
    pub fn as_str(&self) -> &str {
        match self {
            ReceiverType::Generic => "generic",
            ReceiverType::GenericHmac => "generic-hmac",
            ReceiverType::GenericOidc => "generic-oidc",
            ReceiverType::GitHub => "github",
            ReceiverType::GitLab => "gitlab",
            ReceiverType::Bitbucket => "bitbucket",
            ReceiverType::Harbor => "harbor",
            ReceiverType::DockerHub => "dockerhub",
            ReceiverType::Quay => "quay",
            ReceiverType::Nexus => "nexus",
            ReceiverType::Acr => "acr",
            ReceiverType::Gcr => "gcr",
            ReceiverType::CdEvents => "cdevents",
            ReceiverType::Unknown(other) => other.as_str(),
        }
    }

    /// Whether Flux knows this type (false only for [`ReceiverType::Unknown`]).
    pub fn is_known(&self) -> bool {
        !matches!(self, ReceiverType::Unknown(_))
    }

    /// The request header whose value Flux matches (case-insensitively)
    /// against `spec.events`, for the types that filter on events: `github`
    /// (`X-GitHub-Event`), `gitlab` (`X-Gitlab-Event`), `bitbucket`
    /// (`X-Event-Key`) and `cdevents` (`Ce-Type`). Every other type ignores
    /// `spec.events`. The names are [`fluxhook_payload::header`]'s.
    ///
    /// ```
    /// use fluxhook_api::ReceiverType;
    ///
    /// assert_eq!(ReceiverType::GitLab.event_header(), Some("X-Gitlab-Event"));
    /// assert_eq!(ReceiverType::CdEvents.event_header(), Some("Ce-Type"));
    /// assert_eq!(ReceiverType::Harbor.event_header(), None);
    /// ```
    pub fn event_header(&self) -> Option<&'static str> {
        // Exhaustive, so that a new type must say whether it filters.
        match self {
            ReceiverType::GitHub => Some(event::X_GITHUB_EVENT),
            ReceiverType::GitLab => Some(event::X_GITLAB_EVENT),
            ReceiverType::Bitbucket => Some(event::X_EVENT_KEY),
            ReceiverType::CdEvents => Some(event::CE_TYPE),
            ReceiverType::Generic
            | ReceiverType::GenericHmac
            | ReceiverType::GenericOidc
            | ReceiverType::Harbor
            | ReceiverType::DockerHub
            | ReceiverType::Quay
            | ReceiverType::Nexus
            | ReceiverType::Acr
            | ReceiverType::Gcr
            | ReceiverType::Unknown(_) => None,
        }
    }

    /// How a request to a Receiver of this type proves it comes from the
    /// sender, as notification-controller's `validate` decides it
    /// (`internal/server/receiver_handlers.go`, v1.9), and Flux's words when
    /// it does not. This is the one place the decision is made: the match is
    /// exhaustive, with no wildcard, so a new type cannot be added without
    /// saying how it authenticates; a token type names its verifier
    /// ([`Policy`]) here, and a type Flux does not know is
    /// [`Authentication::Refused`], never served.
    ///
    /// ```
    /// use fluxhook_api::{Authentication, ReceiverType};
    /// use fluxhook_signature::Policy;
    ///
    /// let Authentication::Token { verifier, .. } = ReceiverType::GitLab.authentication() else {
    ///     panic!("gitlab checks a token");
    /// };
    /// assert_eq!(verifier, Policy::GitlabToken);
    /// assert_eq!(ReceiverType::Quay.authentication(), Authentication::Path);
    /// assert_eq!(ReceiverType::from("gitea").authentication(), Authentication::Refused);
    /// ```
    pub fn authentication(&self) -> Authentication {
        let token = |verifier, refusal| Authentication::Token { verifier, refusal };
        match self {
            ReceiverType::Generic
            | ReceiverType::DockerHub
            | ReceiverType::Quay
            | ReceiverType::Acr
            | ReceiverType::CdEvents => Authentication::Path,
            ReceiverType::GenericHmac => {
                token(Policy::XSignature, "unable to validate HMAC signature")
            }
            ReceiverType::GitHub => token(
                Policy::HubSignature,
                "the GitHub signature header is invalid, err",
            ),
            ReceiverType::GitLab => token(
                Policy::GitlabToken,
                "the X-Gitlab-Token header value does not match the receiver token",
            ),
            ReceiverType::Bitbucket => token(
                Policy::HubSignatureSha256,
                "the Bitbucket server signature header is invalid, err",
            ),
            ReceiverType::Harbor => token(
                Policy::AuthorizationToken,
                "the Harbor Authorization header value does not match the receiver token",
            ),
            ReceiverType::Nexus => token(Policy::NexusSignature, "invalid Nexus signature"),
            ReceiverType::Gcr => Authentication::GoogleIdToken,
            ReceiverType::GenericOidc => Authentication::OidcProviders,
            ReceiverType::Unknown(_) => Authentication::Refused,
        }
    }

    /// What Flux reads of a delivery's body, in which format of the payload
    /// crate ([`Sender`]), and how Flux names the sender in its messages.
    /// Exhaustive, as [`ReceiverType::authentication`] is.
    ///
    /// ```
    /// use fluxhook_api::{Payload, ReceiverType};
    /// use fluxhook_payload::Sender;
    ///
    /// assert_eq!(
    ///     ReceiverType::Acr.payload(),
    ///     Payload::Notification { sender: Sender::Acr, flux_name: "ACR" }
    /// );
    /// assert_eq!(ReceiverType::Generic.payload(), Payload::Unread { flux_name: None });
    /// ```
    pub fn payload(&self) -> Payload {
        let notification = |sender, flux_name| Payload::Notification { sender, flux_name };
        match self {
            ReceiverType::Generic | ReceiverType::GenericHmac | ReceiverType::GenericOidc => {
                Payload::Unread { flux_name: None }
            }
            ReceiverType::Harbor => Payload::Unread {
                flux_name: Some("Harbor"),
            },
            // go-github's ValidatePayload, which Flux runs for both, reads
            // the Content-Type (and a form body) before the signature.
            ReceiverType::GitHub => Payload::GitEvent {
                senders: &[Sender::GitHub, Sender::Gitea, Sender::Gogs],
                flux_name: "GitHub",
                hub_delivery: true,
            },
            ReceiverType::GitLab => Payload::GitEvent {
                senders: &[Sender::GitLab],
                flux_name: "GitLab",
                hub_delivery: false,
            },
            ReceiverType::Bitbucket => Payload::GitEvent {
                senders: &[Sender::BitbucketServer, Sender::BitbucketCloud],
                flux_name: "Bitbucket server",
                hub_delivery: true,
            },
            ReceiverType::DockerHub => notification(Sender::DockerHub, "DockerHub"),
            ReceiverType::Quay => notification(Sender::Quay, "Quay"),
            ReceiverType::Nexus => notification(Sender::Nexus, "Nexus"),
            ReceiverType::Acr => notification(Sender::Acr, "ACR"),
            ReceiverType::Gcr => notification(Sender::Gcr, "GCR"),
            ReceiverType::CdEvents => Payload::CdEvent,
            ReceiverType::Unknown(_) => Payload::Unsupported,
        }
    }

    /// Whether `claims` (a verified OIDC token's claims) is declared in the
    /// Receiver's CEL filters: only for `generic-oidc`, as Flux's
    /// controller compiles them (`internal/controller/receiver_controller.go`,
    /// `server.WithClaims()`), so a filter naming `claims` on another type
    /// does not compile.
    ///
    /// ```
    /// use fluxhook_api::ReceiverType;
    ///
    /// assert!(ReceiverType::GenericOidc.filters_see_claims());
    /// assert!(!ReceiverType::GitHub.filters_see_claims());
    /// ```
    pub fn filters_see_claims(&self) -> bool {
        self.authentication() == Authentication::OidcProviders
    }

    /// Whether Flux filters requests of this type on `spec.events`.
    ///
    /// ```
    /// use fluxhook_api::ReceiverType;
    ///
    /// assert!(ReceiverType::Bitbucket.supports_events());
    /// assert!(!ReceiverType::GenericOidc.supports_events());
    /// ```
    pub fn supports_events(&self) -> bool {
        self.event_header().is_some()
    }

    /// Whether the Receiver needs `spec.secretRef` (a Secret with a `token`
    /// key): every type but `generic-oidc`, as in the CRD's validation rules.
    /// Without a Secret the webhook path is computed with an empty token.
    ///
    /// ```
    /// use fluxhook_api::ReceiverType;
    ///
    /// assert!(ReceiverType::Generic.requires_secret());
    /// assert!(!ReceiverType::GenericOidc.requires_secret());
    /// ```
    pub fn requires_secret(&self) -> bool {
        *self != ReceiverType::GenericOidc
    }
}

/// How requests to a Receiver prove they come from its sender
/// ([`ReceiverType::authentication`]).
///
/// Deliberately not `#[non_exhaustive]`: code that serves Receivers matches
/// it without a wildcard, so a new way to authenticate does not compile
/// until it is handled. A new type that checks a token in a new wire form
/// adds a [`Policy`] in fluxhook-signature, not a variant here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// Knowing the webhook path (derived from the Secret's `token`) is the
    /// only proof: `generic`, `dockerhub`, `quay`, `acr`, `cdevents`, as in
    /// Flux.
    Path,
    /// The Secret's `token` checked against the request by `verifier`.
    Token {
        /// The header and form the type's sender proves itself with.
        verifier: Policy,
        /// Flux's message when the check fails, before `: <why>`.
        refusal: &'static str,
    },
    /// A Google-signed ID token for the Secret's `audience`, from its
    /// service account `email` (`gcr`).
    GoogleIdToken,
    /// An ID token from one of `spec.oidcProviders`, whose claims pass that
    /// provider's rules (`generic-oidc`).
    OidcProviders,
    /// A type Flux does not know: never served.
    Refused,
}

/// What Flux reads of a delivery's body ([`ReceiverType::payload`]; not
/// `#[non_exhaustive]`, for the reason [`Authentication`] is not). A new type
/// of an existing way names its [`Sender`] here; only a new way adds a
/// variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payload {
    /// Not read: `generic`, `generic-hmac`, `generic-oidc`, `harbor`.
    Unread {
        /// The sender as Flux's log names it (`handling Harbor event`),
        /// for the types Flux logs.
        flux_name: Option<&'static str>,
    },
    /// A Git host's event, named by the type's
    /// [`event_header`](ReceiverType::event_header); Flux reads the body
    /// only to check its signature, so its content never refuses a delivery.
    GitEvent {
        /// The formats a delivery may come in, told apart by their headers
        /// ([`Sender::detect_among`]); the first when none is named.
        senders: &'static [Sender],
        /// The sender as Flux's log and error messages name it.
        flux_name: &'static str,
        /// Whether the delivery is first checked as go-github's
        /// `ValidatePayload` checks it (its Content-Type, a form body).
        hub_delivery: bool,
    },
    /// A registry's notification, decoded as Flux decodes it: a body that
    /// does not decode is refused, a field that is missing is not.
    Notification {
        /// Its format.
        sender: Sender,
        /// The sender as Flux's log and error messages name it.
        flux_name: &'static str,
    },
    /// A CDEvent, validated as the CDEvents SDK Flux uses validates it.
    CdEvent,
    /// A type Flux does not know: refused.
    Unsupported,
}

impl From<&str> for ReceiverType {
    fn from(value: &str) -> Self {
        ReceiverType::KNOWN
            .into_iter()
            .find(|known| known.as_str() == value)
            .unwrap_or_else(|| ReceiverType::Unknown(UnknownReceiverType(value.to_owned())))
    }
}

impl From<String> for ReceiverType {
    fn from(value: String) -> Self {
        match ReceiverType::from(value.as_str()) {
            ReceiverType::Unknown(_) => ReceiverType::Unknown(UnknownReceiverType(value)),
            known => known,
        }
    }
}

impl fmt::Display for ReceiverType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReceiverType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReceiverType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(ReceiverType::from)
    }
}

/// A string limited to the known types, as in Flux's CRD.
impl JsonSchema for ReceiverType {
    fn schema_name() -> Cow<'static, str> {
        "ReceiverType".into()
    }

    fn inline_schema() -> bool {
        true
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let known: Vec<&str> = ReceiverType::KNOWN
            .iter()
            .map(ReceiverType::as_str)
            .collect();
        json_schema!({ "type": "string", "enum": known })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn known_values_are_flux_spelling() {
        let spelled: Vec<&str> = ReceiverType::KNOWN
            .iter()
            .map(ReceiverType::as_str)
            .collect();
        assert_eq!(
            spelled,
            [
                "generic",
                "generic-hmac",
                "generic-oidc",
                "github",
                "gitlab",
                "bitbucket",
                "harbor",
                "dockerhub",
                "quay",
                "gcr",
                "nexus",
                "acr",
                "cdevents"
            ]
        );
        for known in ReceiverType::KNOWN {
            assert_eq!(ReceiverType::from(known.as_str()), known);
        }
    }

    #[test]
    fn events_are_filtered_by_four_types() {
        let filtering: Vec<&str> = ReceiverType::KNOWN
            .iter()
            .filter(|t| t.supports_events())
            .map(ReceiverType::as_str)
            .collect();
        assert_eq!(filtering, ["github", "gitlab", "bitbucket", "cdevents"]);
    }

    /// Flux's `validate` switch, type by type: which proof each type needs.
    #[test]
    fn every_type_authenticates_as_flux_does() {
        let proof = |type_: &ReceiverType| match type_.authentication() {
            Authentication::Path => "path".to_owned(),
            Authentication::Token { verifier, .. } => verifier.name().to_owned(),
            Authentication::GoogleIdToken => "google-id-token".to_owned(),
            Authentication::OidcProviders => "oidc".to_owned(),
            Authentication::Refused => "refused".to_owned(),
        };
        let proofs: Vec<(&str, String)> = ReceiverType::KNOWN
            .iter()
            .map(|type_| (type_.as_str(), proof(type_)))
            .collect();
        let expected = [
            ("generic", "path"),
            ("generic-hmac", "x-signature"),
            ("generic-oidc", "oidc"),
            ("github", "hub-signature"),
            ("gitlab", "gitlab-token"),
            ("bitbucket", "hub-signature-sha256"),
            ("harbor", "authorization-token"),
            ("dockerhub", "path"),
            ("quay", "path"),
            ("gcr", "google-id-token"),
            ("nexus", "nexus-signature"),
            ("acr", "path"),
            ("cdevents", "path"),
        ]
        .map(|(type_, proof)| (type_, proof.to_owned()));
        assert_eq!(proofs, expected);
        let unknown = ReceiverType::from("gitea");
        assert_eq!(unknown.authentication(), Authentication::Refused);
        assert!(!unknown.filters_see_claims());
    }

    /// Every type that checks a token names a verifier that accepts what its
    /// own sender signs, and refuses another key, with Flux's words.
    #[test]
    fn every_token_type_verifies_its_senders_signature() {
        let body = br#"{"ref":"refs/heads/main"}"#;
        let mut token_types = 0;
        for type_ in ReceiverType::KNOWN {
            let Authentication::Token { verifier, refusal } = type_.authentication() else {
                continue;
            };
            token_types += 1;
            let sign = |secret: &[u8]| {
                let (name, value) = verifier.signing_scheme().sign(body, secret).unwrap();
                let mut headers = http::HeaderMap::new();
                headers.insert(name, value);
                headers
            };
            assert!(
                verifier.verify(&sign(b"t0ken"), body, b"t0ken").is_ok(),
                "{type_}"
            );
            assert!(
                verifier.verify(&sign(b"other"), body, b"t0ken").is_err(),
                "{type_}"
            );
            assert!(
                verifier
                    .verify(&http::HeaderMap::new(), body, b"t0ken")
                    .is_err(),
                "{type_}"
            );
            assert!(
                !refusal.is_empty() && !refusal.ends_with(':'),
                "{type_}: {refusal:?}"
            );
        }
        assert_eq!(token_types, 6);
    }

    /// The types that filter on events are the Git hosts' and CDEvents', and
    /// each names a header the payload crate reads for that type's senders.
    #[test]
    fn every_event_filtering_type_names_a_header_of_its_senders() {
        for type_ in ReceiverType::KNOWN {
            match (type_.payload(), type_.event_header()) {
                (Payload::GitEvent { senders, .. }, Some(name)) => {
                    let mut headers = http::HeaderMap::new();
                    headers.insert(
                        http::HeaderName::try_from(name).unwrap(),
                        http::HeaderValue::from_static("push"),
                    );
                    let detected = fluxhook_payload::Sender::detect_git_host(&headers);
                    assert!(
                        detected.is_some_and(|sender| senders.contains(&sender)),
                        "{type_}: {name} read as {detected:?}"
                    );
                }
                (Payload::CdEvent, Some(name)) => assert_eq!(name, event::CE_TYPE),
                (payload, None) => assert!(
                    !matches!(payload, Payload::GitEvent { .. } | Payload::CdEvent),
                    "{type_} filters on no header"
                ),
                (payload, Some(name)) => panic!("{type_}: {payload:?} filters on {name}"),
            }
        }
    }

    /// Every known type reads its body in a format of the payload crate: Git
    /// events in Git hosts' formats, notifications in others'.
    #[test]
    fn every_type_reads_its_payload_in_a_known_format() {
        for type_ in ReceiverType::KNOWN {
            match type_.payload() {
                Payload::GitEvent {
                    senders, flux_name, ..
                } => {
                    assert!(!senders.is_empty(), "{type_}");
                    assert!(senders.iter().all(|s| s.is_git_host()), "{type_}");
                    assert!(!flux_name.is_empty(), "{type_}");
                }
                Payload::Notification { sender, flux_name } => {
                    assert!(!sender.is_git_host(), "{type_}");
                    assert!(!flux_name.is_empty(), "{type_}");
                }
                Payload::Unread { .. } | Payload::CdEvent => {}
                Payload::Unsupported => panic!("{type_} is known"),
            }
        }
        assert_eq!(ReceiverType::from("gitea").payload(), Payload::Unsupported);
    }

    #[test]
    fn unknown_types_are_case_sensitive_and_need_a_secret() {
        let t = ReceiverType::from("GitHub");
        assert!(!t.is_known());
        assert!(t.requires_secret());
        assert!(!t.supports_events());
    }

    #[test]
    fn non_string_is_an_error_not_a_panic() {
        assert!(serde_json::from_str::<ReceiverType>("42").is_err());
        assert!(serde_json::from_str::<ReceiverType>("null").is_err());
    }

    proptest! {
        #[test]
        fn any_string_round_trips(value in ".*") {
            let parsed = ReceiverType::from(value.as_str());
            prop_assert_eq!(parsed.as_str(), value.as_str());
            prop_assert_eq!(ReceiverType::from(value.clone()), parsed.clone());
            let json = serde_json::to_string(&parsed).unwrap();
            prop_assert_eq!(&json, &serde_json::to_string(&value).unwrap());
            prop_assert_eq!(serde_json::from_str::<ReceiverType>(&json).unwrap(), parsed);
        }
    }
}
