//! Flux's `Receiver` custom resource, `notification.toolkit.fluxcd.io/v1`.
//!
//! Every optional field is an `Option`, so what was absent stays absent and
//! what was present (even `false` or `[]`) is written back: a Receiver read
//! and written again is the same JSON value.

use std::borrow::Cow;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::CustomResource;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde::{Deserialize, Serialize};

use crate::condition;
use crate::interval::{DEFAULT_INTERVAL, INTERVAL_PATTERN, IntervalError, parse_interval};
use crate::receiver_type::ReceiverType;
use crate::spec::{OidcProvider, ReceiverResource, SecretRef};
use crate::webhook::{WebhookPath, webhook_path};

/// ReceiverSpec defines the desired state of the Receiver.
#[derive(CustomResource, Serialize, Deserialize, Debug, Clone, PartialEq, JsonSchema)]
#[kube(
    group = "notification.toolkit.fluxcd.io",
    version = "v1",
    kind = "Receiver",
    plural = "receivers",
    singular = "receiver",
    namespaced,
    status = "ReceiverStatus",
    derive = "PartialEq",
    schema = "manual",
    doc = "Receiver is the Schema for the receivers API.",
    category = "all",
    category = "fluxcd",
    category = "fluxcd-notifications",
    printcolumn = r#"{"name":"Age","type":"date","jsonPath":".metadata.creationTimestamp"}"#,
    printcolumn = r#"{"name":"Ready","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].status"}"#,
    printcolumn = r#"{"name":"Status","type":"string","jsonPath":".status.conditions[?(@.type==\"Ready\")].message"}"#
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [
    {
        "message": "generic-oidc receivers must define at least one oidcProvider",
        "rule": "self.type != 'generic-oidc' || (has(self.oidcProviders) && size(self.oidcProviders) > 0)"
    },
    {
        "message": "oidcProviders can only be set when type is generic-oidc",
        "rule": "self.type == 'generic-oidc' || !has(self.oidcProviders) || size(self.oidcProviders) == 0"
    },
    {
        "message": "secretRef cannot be set when type is generic-oidc",
        "rule": "self.type != 'generic-oidc' || !has(self.secretRef)"
    },
    {
        "message": "secretRef is required when type is not generic-oidc",
        "rule": "self.type == 'generic-oidc' || has(self.secretRef)"
    }
]))]
pub struct ReceiverSpec {
    /// Type of webhook sender, used to determine
    /// the validation procedure and payload deserialization.
    #[serde(rename = "type")]
    pub type_: ReceiverType,

    /// Interval at which to reconcile the Receiver with its Secret references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(regex(pattern = INTERVAL_PATTERN), extend("default" = "10m"))]
    pub interval: Option<String>,

    /// Events specifies the list of event types to handle,
    /// e.g. 'push' for GitHub or 'Push Hook' for GitLab.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<String>>,

    /// A list of resources to be notified about changes.
    pub resources: Vec<ReceiverResource>,

    /// ResourceFilter is a CEL expression expected to return a boolean that is
    /// evaluated for each resource referenced in the Resources field when a
    /// webhook is received. If the expression returns false then the controller
    /// will not request a reconciliation for the resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource_filter: Option<String>,

    /// SecretRef specifies the Secret containing the token used
    /// to validate the payload authenticity. The Secret must contain a 'token'
    /// key. Required for all receiver types except 'generic-oidc'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_ref: Option<SecretRef>,

    /// OIDCProviders specifies the OIDC providers used to authenticate incoming
    /// requests when Type is 'generic-oidc'.
    #[serde(
        default,
        rename = "oidcProviders",
        skip_serializing_if = "Option::is_none"
    )]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["issuerURL"]))]
    pub oidc_providers: Option<Vec<OidcProvider>>,

    /// Suspend tells the controller to suspend subsequent
    /// events handling for this receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspend: Option<bool>,
}

/// The schema of the whole object, written out so that, as in Flux's CRD, it
/// lists `apiVersion`, `kind` and `metadata` (kube's derived schema leaves
/// them out) and requires no top-level field.
impl JsonSchema for Receiver {
    fn schema_name() -> Cow<'static, str> {
        "Receiver".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        json_schema!({
            "description": "Receiver is the Schema for the receivers API.",
            "type": "object",
            "properties": {
                "apiVersion": {
                    "description": "APIVersion defines the versioned schema of this representation of an object.",
                    "type": "string"
                },
                "kind": {
                    "description": "Kind is a string value representing the REST resource this object represents.",
                    "type": "string"
                },
                "metadata": { "type": "object" },
                "spec": generator.subschema_for::<ReceiverSpec>(),
                "status": generator.subschema_for::<Option<ReceiverStatus>>()
            }
        })
    }
}

/// ReceiverStatus defines the observed state of the Receiver.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("default" = { "observedGeneration": -1 }))]
pub struct ReceiverStatus {
    /// Conditions holds the conditions for the Receiver.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Vec<Condition>>,

    /// WebhookPath is the generated incoming webhook address in the format
    /// of '/hook/sha256sum(token+name+namespace)'.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_path: Option<String>,

    /// ObservedGeneration is the last observed generation of the Receiver object.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// LastHandledReconcileAt holds the value of the most recent
    /// reconcile request value, so a change of the annotation value
    /// can be detected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

impl ReceiverSpec {
    /// `spec.interval` read as a duration, [`DEFAULT_INTERVAL`] (10m) when absent.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fluxhook_api::{ReceiverSpec, ReceiverType};
    ///
    /// let mut spec = ReceiverSpec {
    ///     type_: ReceiverType::Generic,
    ///     interval: None,
    ///     events: None,
    ///     resources: vec![],
    ///     resource_filter: None,
    ///     secret_ref: None,
    ///     oidc_providers: None,
    ///     suspend: None,
    /// };
    /// assert_eq!(spec.interval(), Ok(Duration::from_secs(600)));
    /// spec.interval = Some("30s".into());
    /// assert_eq!(spec.interval(), Ok(Duration::from_secs(30)));
    /// ```
    pub fn interval(&self) -> Result<Duration, IntervalError> {
        self.interval
            .as_deref()
            .map_or(Ok(DEFAULT_INTERVAL), parse_interval)
    }

    /// Whether `spec.suspend` is set to true.
    pub fn is_suspended(&self) -> bool {
        self.suspend == Some(true)
    }
}

impl ReceiverStatus {
    /// The condition of the given type (e.g. [`condition::READY`]), if any.
    pub fn condition(&self, type_: &str) -> Option<&Condition> {
        self.conditions
            .as_deref()?
            .iter()
            .find(|c| c.type_ == type_)
    }
}

impl Receiver {
    /// The webhook path of this Receiver for `token` (the Secret's `token`,
    /// empty for `generic-oidc`), from its name and namespace as Flux does:
    /// see [`webhook_path`]. A missing name or namespace counts as empty.
    ///
    /// ```
    /// use fluxhook_api::{webhook_path, Receiver};
    ///
    /// let receiver: Receiver = serde_json::from_value(serde_json::json!({
    ///     "apiVersion": "notification.toolkit.fluxcd.io/v1",
    ///     "kind": "Receiver",
    ///     "metadata": { "name": "r", "namespace": "ns" },
    ///     "spec": { "type": "generic", "resources": [] }
    /// })).unwrap();
    /// assert_eq!(receiver.webhook_path("t"), webhook_path("t", "r", "ns"));
    /// ```
    pub fn webhook_path(&self, token: &str) -> WebhookPath {
        webhook_path(
            token,
            self.metadata.name.as_deref().unwrap_or_default(),
            self.metadata.namespace.as_deref().unwrap_or_default(),
        )
    }

    /// Whether the status has a `Ready` condition with status `True`: Flux's
    /// receiver server answers 503 to a Receiver that is not ready.
    pub fn is_ready(&self) -> bool {
        self.status
            .as_ref()
            .and_then(|s| s.condition(condition::READY))
            .is_some_and(|c| c.status == "True")
    }
}
