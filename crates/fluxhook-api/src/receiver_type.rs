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
    /// assert_eq!(ReceiverType::Harbor.event_header(), None);
    /// ```
    pub fn event_header(&self) -> Option<&'static str> {
        match self {
            ReceiverType::GitHub => Some("X-GitHub-Event"),
            ReceiverType::GitLab => Some("X-Gitlab-Event"),
            ReceiverType::Bitbucket => Some("X-Event-Key"),
            ReceiverType::CdEvents => Some("Ce-Type"),
            _ => None,
        }
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
