//! Strict checks: every field of a document is one its schema has, with a
//! value of the schema's type.
//!
//! k8s-openapi's types skip the fields they do not know, so parsing alone
//! would let a misspelled `readOnlyRootFilesytem` through, and a cluster would
//! drop it too when a client asks for no strict field validation
//! (<https://kubernetes.io/docs/reference/using-api/api-concepts/#field-validation>).
//! [`check`] therefore parses each document into its type, serializes the
//! typed object again and compares: a field of the input that did not
//! survive, or came back with another value, is reported with its path.
//!
//! Built-in kinds use k8s-openapi's types (Kubernetes 1.33); PodMonitor uses a
//! model of prometheus-operator v0.93.0's schema (see [`TYPED_KINDS`]).

use std::fmt;

use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ConfigMap, Namespace, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::{Ingress, NetworkPolicy};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::{Document, podmonitor};

/// A document that does not fit its schema, with every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct StrictError {
    /// Where the document came from.
    pub origin: String,
    /// Its kind.
    pub kind: String,
    /// Its name.
    pub name: String,
    /// The schema it was checked against, if its kind has one.
    pub schema: Option<&'static str>,
    /// Each problem, starting with the field's path.
    pub problems: Vec<String>,
}

impl fmt::Display for StrictError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} ({})", self.kind, self.name, self.origin)?;
        match self.schema {
            Some(schema) => write!(f, " does not match {schema}:")?,
            None => write!(f, ":")?,
        }
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

/// A kind the check knows, and the schema it checks it against.
#[derive(Debug, Clone, Copy)]
pub struct TypedKind {
    /// `apiVersion`.
    pub api_version: &'static str,
    /// `kind`.
    pub kind: &'static str,
    /// The schema, as cited in errors.
    pub schema: &'static str,
    roundtrip: fn(&Value) -> Result<Checked, String>,
}

/// The typed object serialized again, and what the schema's validation rules
/// (enums, bounds, patterns) refuse.
pub(crate) struct Checked {
    pub(crate) value: Value,
    pub(crate) invalid: Vec<String>,
}

const fn k8s<K: Resource + DeserializeOwned + Serialize>(schema: &'static str) -> TypedKind {
    TypedKind {
        api_version: K::API_VERSION,
        kind: K::KIND,
        schema,
        roundtrip: roundtrip::<K>,
    }
}

/// Every kind [`check`] knows. Another kind is an error: add its type here.
pub const TYPED_KINDS: &[TypedKind] = &[
    k8s::<Namespace>("k8s-openapi's io.k8s.api.core.v1.Namespace (Kubernetes 1.33)"),
    k8s::<ServiceAccount>("k8s-openapi's io.k8s.api.core.v1.ServiceAccount (Kubernetes 1.33)"),
    k8s::<ConfigMap>("k8s-openapi's io.k8s.api.core.v1.ConfigMap (Kubernetes 1.33)"),
    k8s::<Service>("k8s-openapi's io.k8s.api.core.v1.Service (Kubernetes 1.33)"),
    k8s::<Deployment>("k8s-openapi's io.k8s.api.apps.v1.Deployment (Kubernetes 1.33)"),
    k8s::<PodDisruptionBudget>(
        "k8s-openapi's io.k8s.api.policy.v1.PodDisruptionBudget (Kubernetes 1.33)",
    ),
    k8s::<NetworkPolicy>("k8s-openapi's io.k8s.api.networking.v1.NetworkPolicy (Kubernetes 1.33)"),
    k8s::<Ingress>("k8s-openapi's io.k8s.api.networking.v1.Ingress (Kubernetes 1.33)"),
    k8s::<ClusterRole>("k8s-openapi's io.k8s.api.rbac.v1.ClusterRole (Kubernetes 1.33)"),
    k8s::<ClusterRoleBinding>(
        "k8s-openapi's io.k8s.api.rbac.v1.ClusterRoleBinding (Kubernetes 1.33)",
    ),
    k8s::<Role>("k8s-openapi's io.k8s.api.rbac.v1.Role (Kubernetes 1.33)"),
    k8s::<RoleBinding>("k8s-openapi's io.k8s.api.rbac.v1.RoleBinding (Kubernetes 1.33)"),
    k8s::<CustomResourceDefinition>(
        "k8s-openapi's io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.\
         CustomResourceDefinition (Kubernetes 1.33)",
    ),
    TypedKind {
        api_version: podmonitor::API_VERSION,
        kind: podmonitor::KIND,
        schema: podmonitor::SCHEMA,
        roundtrip: podmonitor::roundtrip,
    },
];

/// Checks one document against the schema of its kind: every field known,
/// every value of the field's type (and, where the schema says, one of its
/// values or within its bounds).
///
/// ```
/// use fluxhook_manifests::{Manifests, strict};
///
/// let manifests = Manifests::parse(
///     "example",
///     "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n  lables: {x: y}\n",
/// )?;
/// let error = strict::check(&manifests.documents()[0]).unwrap_err();
/// assert_eq!(error.problems, ["metadata.lables: unknown field"]);
/// # Ok::<(), fluxhook_manifests::ManifestsError>(())
/// ```
pub fn check(document: &Document) -> Result<(), StrictError> {
    let error = |schema, problems| StrictError {
        origin: document.origin().to_string(),
        kind: document.kind().to_string(),
        name: document.name().to_string(),
        schema,
        problems,
    };
    let Some(typed) = TYPED_KINDS
        .iter()
        .find(|t| t.api_version == document.api_version() && t.kind == document.kind())
    else {
        return Err(error(
            None,
            vec![format!(
                "no schema for {} {}: add its type to fluxhook-manifests' TYPED_KINDS",
                document.api_version(),
                document.kind()
            )],
        ));
    };
    let checked =
        (typed.roundtrip)(document.value()).map_err(|e| error(Some(typed.schema), vec![e]))?;
    let mut problems = Vec::new();
    compare(document.value(), &checked.value, "", &mut problems);
    problems.extend(checked.invalid);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(error(Some(typed.schema), problems))
    }
}

fn roundtrip<K: DeserializeOwned + Serialize>(value: &Value) -> Result<Checked, String> {
    let typed: K = serde_path_to_error::deserialize(value).map_err(|e| e.to_string())?;
    let value = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    Ok(Checked {
        value,
        invalid: Vec::new(),
    })
}

/// Reports every field of `input` that `output` lost or changed.
fn compare(input: &Value, output: &Value, path: &str, problems: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(input), Value::Object(output)) => {
            for (key, value) in input {
                let path = field_path(path, key);
                match output.get(key) {
                    Some(kept) => compare(value, kept, &path, problems),
                    None if value.is_null() => {
                        problems.push(format!("{path}: null (leave the field out instead)"));
                    }
                    None => problems.push(format!("{path}: unknown field")),
                }
            }
        }
        (Value::Array(input), Value::Array(output)) if input.len() == output.len() => {
            for (index, (value, kept)) in input.iter().zip(output).enumerate() {
                compare(value, kept, &format!("{path}[{index}]"), problems);
            }
        }
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (input, output) if input == output => {}
        (input, output) => problems.push(format!(
            "{}: {input} is read as {output}",
            if path.is_empty() { "." } else { path }
        )),
    }
}

/// `a.b`, or `a["b.c/d"]` for keys that are not plain names (annotations, labels).
pub(crate) fn field_path(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$');
    match (parent.is_empty(), plain) {
        (true, true) => key.to_string(),
        (false, true) => format!("{parent}.{key}"),
        (_, false) => format!("{parent}[{key:?}]"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::Manifests;

    fn problems(yaml: &str) -> Vec<String> {
        let manifests = Manifests::parse("test", yaml).unwrap();
        match check(&manifests.documents()[0]) {
            Ok(()) => Vec::new(),
            Err(error) => error.problems,
        }
    }

    const DEPLOYMENT: &str = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  annotations:
    example.com/a: b
spec:
  selector:
    matchLabels: {app: d}
  template:
    metadata:
      labels: {app: d}
    spec:
      containers:
        - name: manager
          image: x
          ports:
            - containerPort: 9292
          resources:
            limits: {cpu: 1000m, memory: 1Gi}
          securityContext:
            readOnlyRootFilesystem: true
      volumes:
        - name: temp
          emptyDir: {}
";

    #[test]
    fn a_valid_deployment_passes() {
        assert_eq!(problems(DEPLOYMENT), Vec::<String>::new());
    }

    #[test]
    fn a_misspelled_field_is_reported_with_its_path() {
        let yaml = DEPLOYMENT.replace("readOnlyRootFilesystem", "readOnlyRootFilesytem");
        assert_eq!(
            problems(&yaml),
            [
                "spec.template.spec.containers[0].securityContext.readOnlyRootFilesytem: unknown field"
            ]
        );
        let yaml = DEPLOYMENT.replace("  selector:", "  replicas: 2\n  replica: 2\n  selector:");
        assert_eq!(problems(&yaml), ["spec.replica: unknown field"]);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_reported_with_its_path() {
        let yaml = DEPLOYMENT.replace("containerPort: 9292", "containerPort: http");
        let found = problems(&yaml);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with(
                "spec.template.spec.containers[0].ports[0].containerPort: invalid type"
            ),
            "{found:?}"
        );
    }

    #[test]
    fn null_values_and_unknown_kinds_are_refused() {
        let yaml = DEPLOYMENT.replace("  selector:", "  replicas: null\n  selector:");
        assert_eq!(
            problems(&yaml),
            ["spec.replicas: null (leave the field out instead)"]
        );
        let found = problems("apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w\n");
        assert_eq!(
            found,
            [
                "no schema for example.com/v1 Widget: add its type to fluxhook-manifests' TYPED_KINDS"
            ]
        );
        let found = problems("apiVersion: apps/v2\nkind: Deployment\nmetadata:\n  name: w\n");
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("no schema for apps/v2 Deployment"),
            "{found:?}"
        );
    }

    #[test]
    fn keys_that_are_not_names_are_quoted() {
        assert_eq!(
            field_path("metadata.annotations", "prometheus.io/port"),
            "metadata.annotations[\"prometheus.io/port\"]"
        );
        assert_eq!(field_path("", "spec"), "spec");
    }
}
