//! `spec.type` of a Receiver: which sender the webhook comes from.

use std::{borrow::Cow, fmt};

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
    /// `spec.events`.
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
            ReceiverType::GitHub => Some("X-GitHub-Event"),
            ReceiverType::GitLab => Some("X-Gitlab-Event"),
            ReceiverType::Bitbucket => Some("X-Event-Key"),
            ReceiverType::CdEvents => Some("Ce-Type"),
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
    /// (`internal/server/receiver_handlers.go`, v1.9). This is the one place
    /// the decision is made: the match is exhaustive, with no wildcard, so a
    /// new type cannot be added without saying how it authenticates, and a
    /// type Flux does not know is [`Authentication::Refused`], never served.
    ///
    /// ```
    /// use fluxhook_api::{Authentication, ReceiverType, TokenScheme};
    ///
    /// assert_eq!(
    ///     ReceiverType::GitLab.authentication(),
    ///     Authentication::Token(TokenScheme::GitLabToken)
    /// );
    /// assert_eq!(ReceiverType::Quay.authentication(), Authentication::Path);
    /// assert_eq!(ReceiverType::from("gitea").authentication(), Authentication::Refused);
    /// ```
    pub fn authentication(&self) -> Authentication {
        match self {
            ReceiverType::Generic
            | ReceiverType::DockerHub
            | ReceiverType::Quay
            | ReceiverType::Acr
            | ReceiverType::CdEvents => Authentication::Path,
            ReceiverType::GenericHmac => Authentication::Token(TokenScheme::XSignature),
            ReceiverType::GitHub => Authentication::Token(TokenScheme::GitHubSignature),
            ReceiverType::GitLab => Authentication::Token(TokenScheme::GitLabToken),
            ReceiverType::Bitbucket => Authentication::Token(TokenScheme::BitbucketSignature),
            ReceiverType::Harbor => Authentication::Token(TokenScheme::HarborAuthorization),
            ReceiverType::Nexus => Authentication::Token(TokenScheme::NexusSignature),
            ReceiverType::Gcr => Authentication::GoogleIdToken,
            ReceiverType::GenericOidc => Authentication::OidcProviders,
            ReceiverType::Unknown(_) => Authentication::Refused,
        }
    }

    /// What Flux reads of a delivery's body, and how a body it cannot read
    /// is answered. Exhaustive, as [`ReceiverType::authentication`] is.
    ///
    /// ```
    /// use fluxhook_api::{Payload, ReceiverType, Registry};
    ///
    /// assert_eq!(ReceiverType::Acr.payload(), Payload::Registry(Registry::Acr));
    /// assert_eq!(ReceiverType::Harbor.payload(), Payload::Unread);
    /// ```
    pub fn payload(&self) -> Payload {
        match self {
            ReceiverType::Generic
            | ReceiverType::GenericHmac
            | ReceiverType::GenericOidc
            | ReceiverType::Harbor => Payload::Unread,
            ReceiverType::GitHub => Payload::GitHost(GitHost::GitHub),
            ReceiverType::GitLab => Payload::GitHost(GitHost::GitLab),
            ReceiverType::Bitbucket => Payload::GitHost(GitHost::Bitbucket),
            ReceiverType::DockerHub => Payload::Registry(Registry::DockerHub),
            ReceiverType::Quay => Payload::Registry(Registry::Quay),
            ReceiverType::Nexus => Payload::Registry(Registry::Nexus),
            ReceiverType::Acr => Payload::Registry(Registry::Acr),
            ReceiverType::Gcr => Payload::GcrPubSub,
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
/// until it is handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Authentication {
    /// Knowing the webhook path (derived from the Secret's `token`) is the
    /// only proof: `generic`, `dockerhub`, `quay`, `acr`, `cdevents`, as in
    /// Flux.
    Path,
    /// The Secret's `token` checked against the request as the scheme says.
    Token(TokenScheme),
    /// A Google-signed ID token for the Secret's `audience`, from its
    /// service account `email` (`gcr`).
    GoogleIdToken,
    /// An ID token from one of `spec.oidcProviders`, whose claims pass that
    /// provider's rules (`generic-oidc`).
    OidcProviders,
    /// A type Flux does not know: never served.
    Refused,
}

/// How the Secret's `token` proves a request genuine, per type (not
/// `#[non_exhaustive]`, for the reason [`Authentication`] is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenScheme {
    /// `generic-hmac`: an HMAC of the body in `X-Signature`.
    XSignature,
    /// `github`: an HMAC of the body in `X-Hub-Signature-256`, or
    /// `X-Hub-Signature` when that is absent.
    GitHubSignature,
    /// `bitbucket`: an HMAC-SHA256 of the body in `X-Hub-Signature`.
    BitbucketSignature,
    /// `gitlab`: `X-Gitlab-Token` is the token.
    GitLabToken,
    /// `harbor`: `Authorization` is the token.
    HarborAuthorization,
    /// `nexus`: a bare hex HMAC-SHA1 of the body in
    /// `X-Nexus-Webhook-Signature`.
    NexusSignature,
}

/// What Flux reads of a delivery's body ([`ReceiverType::payload`]; not
/// `#[non_exhaustive]`, for the reason [`Authentication`] is not).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Payload {
    /// Not read: `generic`, `generic-hmac`, `generic-oidc`, `harbor`.
    Unread,
    /// A Git host's event, named by a header; Flux reads the body only to
    /// check its signature, so its content never refuses a delivery.
    GitHost(GitHost),
    /// A registry's notification, decoded as Flux decodes it: a body that
    /// does not decode is refused, a field that is missing is not.
    Registry(Registry),
    /// A Pub/Sub push whose `message.data` is a GCR notification.
    GcrPubSub,
    /// A CDEvent, validated as the CDEvents SDK Flux uses validates it.
    CdEvent,
    /// A type Flux does not know: refused.
    Unsupported,
}

/// The Git hosts whose events Flux filters on ([`Payload::GitHost`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GitHost {
    /// `github` (also Gitea, Forgejo and Gogs deliveries).
    GitHub,
    /// `gitlab`.
    GitLab,
    /// `bitbucket` (Bitbucket Server; Cloud deliveries too).
    Bitbucket,
}

/// The registries whose notifications Flux decodes ([`Payload::Registry`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Registry {
    /// `dockerhub`.
    DockerHub,
    /// `quay`.
    Quay,
    /// `nexus`.
    Nexus,
    /// `acr`.
    Acr,
}

impl GitHost {
    /// The sender as Flux's log and error messages name it.
    ///
    /// ```
    /// assert_eq!(fluxhook_api::GitHost::Bitbucket.flux_name(), "Bitbucket server");
    /// ```
    pub fn flux_name(self) -> &'static str {
        match self {
            GitHost::GitHub => "GitHub",
            GitHost::GitLab => "GitLab",
            GitHost::Bitbucket => "Bitbucket server",
        }
    }
}

impl Registry {
    /// The sender as Flux's log and error messages name it.
    ///
    /// ```
    /// assert_eq!(fluxhook_api::Registry::Acr.flux_name(), "ACR");
    /// ```
    pub fn flux_name(self) -> &'static str {
        match self {
            Registry::DockerHub => "DockerHub",
            Registry::Quay => "Quay",
            Registry::Nexus => "Nexus",
            Registry::Acr => "ACR",
        }
    }
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
    #![allow(clippy::unwrap_used)]

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
        let expected = [
            (ReceiverType::Generic, Authentication::Path),
            (
                ReceiverType::GenericHmac,
                Authentication::Token(TokenScheme::XSignature),
            ),
            (ReceiverType::GenericOidc, Authentication::OidcProviders),
            (
                ReceiverType::GitHub,
                Authentication::Token(TokenScheme::GitHubSignature),
            ),
            (
                ReceiverType::GitLab,
                Authentication::Token(TokenScheme::GitLabToken),
            ),
            (
                ReceiverType::Bitbucket,
                Authentication::Token(TokenScheme::BitbucketSignature),
            ),
            (
                ReceiverType::Harbor,
                Authentication::Token(TokenScheme::HarborAuthorization),
            ),
            (ReceiverType::DockerHub, Authentication::Path),
            (ReceiverType::Quay, Authentication::Path),
            (ReceiverType::Gcr, Authentication::GoogleIdToken),
            (
                ReceiverType::Nexus,
                Authentication::Token(TokenScheme::NexusSignature),
            ),
            (ReceiverType::Acr, Authentication::Path),
            (ReceiverType::CdEvents, Authentication::Path),
        ];
        assert_eq!(expected.len(), ReceiverType::KNOWN.len());
        for (known, (type_, authentication)) in ReceiverType::KNOWN.iter().zip(expected) {
            assert_eq!(known, &type_);
            assert_eq!(type_.authentication(), authentication, "{type_}");
            assert_ne!(type_.payload(), Payload::Unsupported, "{type_}");
        }
        let unknown = ReceiverType::from("gitea");
        assert_eq!(unknown.authentication(), Authentication::Refused);
        assert_eq!(unknown.payload(), Payload::Unsupported);
        assert!(!unknown.filters_see_claims());
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
