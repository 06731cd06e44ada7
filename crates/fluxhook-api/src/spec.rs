//! The plain types of a Receiver's spec: what a Receiver references and its
//! OIDC providers. They need no Kubernetes types, so crates that read them
//! (fluxhook-oidc) build without fluxhook-api's `kube` feature.

use std::collections::BTreeMap;

use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::kinds::FLUX_KINDS;

/// The `aud` claim Flux expects of OIDC tokens when a provider sets no audience.
pub const DEFAULT_OIDC_AUDIENCE: &str = "notification-controller";

/// ReceiverResource references a resource to be notified about changes, with an
/// optional per-resource CEL filter.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ReceiverResource {
    /// API version of the referent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_version: Option<String>,

    /// Kind of the referent
    #[schemars(schema_with = "receiver_target_kinds")]
    pub kind: String,

    /// Name of the referent
    /// If multiple resources are targeted `*` may be set.
    #[schemars(length(min = 1, max = 253))]
    pub name: String,

    /// Namespace of the referent
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub namespace: Option<String>,

    /// MatchLabels is a map of {key,value} pairs. A single {key,value} in the matchLabels
    /// map is equivalent to an element of matchExpressions, whose key field is "key", the
    /// operator is "In", and the values array contains only "value". The requirements are ANDed.
    /// MatchLabels requires the name to be set to `*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub match_labels: Option<BTreeMap<String, String>>,

    /// Filter is a CEL expression expected to return a boolean that is evaluated
    /// for each resource matched by this reference when a webhook is received,
    /// in addition to the top-level resourceFilter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
}

/// The CRD's enum on `spec.resources[].kind`: the kinds a Receiver may name.
fn receiver_target_kinds(_: &mut SchemaGenerator) -> Schema {
    let kinds: Vec<&str> = FLUX_KINDS
        .iter()
        .filter(|k| k.receiver_target())
        .map(|k| k.kind())
        .collect();
    json_schema!({ "type": "string", "enum": kinds })
}

/// A reference to a Secret in the Receiver's namespace.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct SecretRef {
    /// Name of the referent.
    pub name: String,
}

/// OIDCProvider configures an OIDC issuer used to authenticate requests for a
/// 'generic-oidc' Receiver.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct OidcProvider {
    /// IssuerURL is the OIDC issuer URL used for provider discovery. It must
    /// match the 'iss' claim of tokens issued by this provider.
    #[serde(rename = "issuerURL")]
    #[schemars(regex(pattern = r"^https?://"))]
    pub issuer_url: String,

    /// Audience is the expected audience ('aud' claim) for tokens issued by
    /// this provider. Defaults to 'notification-controller'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<String>,

    /// Variables is an optional list of named CEL expressions, evaluated in order
    /// and exposed as `vars.<name>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variables: Option<Vec<OidcVariable>>,

    /// Validations is the list of CEL boolean expressions evaluated against the
    /// token claims and the variables. At least one validation is required.
    #[schemars(length(min = 1))]
    pub validations: Vec<OidcValidation>,
}

impl OidcProvider {
    /// The `aud` claim expected of this provider's tokens: `audience` when set
    /// and non-empty, else [`DEFAULT_OIDC_AUDIENCE`].
    ///
    /// ```
    /// use fluxhook_api::OidcProvider;
    ///
    /// let provider: OidcProvider = serde_json::from_str(
    ///     r#"{"issuerURL":"https://token.actions.githubusercontent.com",
    ///         "validations":[{"expression":"true","message":"no"}]}"#,
    /// ).unwrap();
    /// assert_eq!(provider.audience_or_default(), "notification-controller");
    /// ```
    pub fn audience_or_default(&self) -> &str {
        self.audience
            .as_deref()
            .filter(|a| !a.is_empty())
            .unwrap_or(DEFAULT_OIDC_AUDIENCE)
    }
}

/// OIDCVariable is a named CEL expression evaluated against the OIDC token
/// claims of a 'generic-oidc' Receiver.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct OidcVariable {
    /// Name is the variable name; it must be a valid CEL identifier.
    pub name: String,
    /// Expression is the CEL expression that defines the variable value.
    pub expression: String,
}

/// OIDCValidation is a CEL boolean expression evaluated against the OIDC token
/// claims and variables of a 'generic-oidc' Receiver.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, JsonSchema)]
pub struct OidcValidation {
    /// Expression is the CEL boolean expression to evaluate.
    pub expression: String,
    /// Message is returned to the caller when the expression evaluates to false.
    pub message: String,
}
