//! The GitRepositories a Receiver names, read for webhook registration: by
//! the same selection as [`Trigger::select_with_spec`] (Flux's rules, stated in
//! [`fluxhook_api::ReceiverResource::selector`]), with one result per
//! GitRepository or per reference that could not be read, and what
//! registration reads of each (its `spec.url` and an annotation).
//!
//! Both the `fluxhook-register` command and the Receiver controller read the
//! cluster this way, so a Receiver's repositories are the same whichever
//! registers them.
//!
//! ```
//! use fluxhook_trigger::Trigger;
//! use fluxhook_trigger::git_repository::url;
//! # use fluxhook_test_apiserver::{ResourceType, TestApiServer};
//! # use kube::config::{KubeConfigOptions, Kubeconfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let server = TestApiServer::start().await?;
//! # ResourceType::flux().into_iter().for_each(|r| server.register(r));
//! # server.create(serde_json::json!({
//! #     "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
//! #     "metadata": {"name": "fleet", "namespace": "default"},
//! #     "spec": {"url": "https://github.com/acme/fleet"},
//! # }))?;
//! # let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml())?;
//! # let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
//! # let client = kube::Client::try_from(config)?;
//! let trigger = Trigger::new(client);
//! let resource = serde_json::from_value(serde_json::json!({"kind": "GitRepository", "name": "fleet"}))?;
//! let mut selected = trigger.select_git_repositories(&resource, "default").await;
//! let fleet = selected.remove(0)?;
//! assert_eq!(url(&fleet), Some("https://github.com/acme/fleet"));
//! # Ok(())
//! # }
//! ```

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use fluxhook_api::ReceiverResource;

use crate::message::kube_message;
use crate::trigger::{Action, SelectedSpec, Trigger, TriggerError};

/// The only kind whose repositories have Git host webhooks.
pub const KIND: &str = "GitRepository";

/// The API group of [`KIND`].
pub const GROUP: &str = "source.toolkit.fluxcd.io";

/// On a GitRepository: `"true"` asks for a hook whose host delivers without verifying the
/// receiver's TLS certificate, for a receiver behind a private CA. The Receiver controller
/// and `fluxhook-register --receiver` both honour it, so that neither undoes what the other
/// registered.
pub const INSECURE_SKIP_TLS_VERIFY_ANNOTATION: &str =
    "webhooks.fluxhook.io/insecure-skip-tls-verify";

/// A GitRepository a Receiver names that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference}: {problem}")]
pub struct SelectError {
    reference: String,
    problem: String,
    status: Option<u16>,
    cross_namespace: bool,
}

impl SelectError {
    /// `GitRepository namespace/name` as the Receiver names it (`name` may be `*`).
    pub fn reference(&self) -> &str {
        &self.reference
    }

    /// What went wrong, without the reference: `cannot be read: HTTP 404: ...`.
    pub fn problem(&self) -> &str {
        &self.problem
    }

    /// Whether the API server answered that the GitRepository (or its kind) does not exist.
    pub fn is_not_found(&self) -> bool {
        self.status == Some(404)
    }

    /// Whether the reference names another namespace and cross-namespace references are
    /// forbidden ([`Trigger::no_cross_namespace_refs`]): an edit, not a retry, fixes it.
    pub fn is_cross_namespace(&self) -> bool {
        self.cross_namespace
    }

    fn from_trigger(error: TriggerError) -> Self {
        let reference = error.object().to_string();
        let (problem, status) = match &error {
            TriggerError::Api { action, status, .. } => (
                format!(
                    "cannot be {}: HTTP {}: {}",
                    verb(*action),
                    status.code,
                    status.message
                ),
                Some(status.code),
            ),
            TriggerError::Request { action, source, .. } => (
                format!("cannot be {}: {}", verb(*action), kube_message(source)),
                None,
            ),
            TriggerError::WildcardWithoutMatchLabels { .. } => {
                ("name \"*\" needs matchLabels".to_owned(), None)
            }
            TriggerError::CrossNamespaceRef { .. } => (
                "references to other namespaces are not allowed (--no-cross-namespace-refs)"
                    .to_owned(),
                None,
            ),
            TriggerError::InvalidReference { source, .. } => (source.to_string(), None),
            TriggerError::Resolve { source, .. } => (source.to_string(), None),
            TriggerError::Abandoned { source, .. } => (source.to_string(), None),
        };
        Self {
            cross_namespace: matches!(error, TriggerError::CrossNamespaceRef { .. }),
            reference,
            problem,
            status,
        }
    }
}

/// The request that failed, as the problem says it.
fn verb(action: Action) -> &'static str {
    match action {
        Action::List => "listed",
        Action::Discover => "discovered",
        Action::Get | Action::Patch => "read",
    }
}

impl Trigger {
    /// The GitRepositories one `spec.resources` entry of a Receiver in
    /// `receiver_namespace` names, as [`select_with_spec`](Self::select_with_spec) selects
    /// them; other kinds name none.
    ///
    /// A reference that cannot be read is a [`SelectError`] among the results, so that the
    /// others are still used.
    pub async fn select_git_repositories(
        &self,
        resource: &ReceiverResource,
        receiver_namespace: &str,
    ) -> Vec<Result<SelectedSpec, SelectError>> {
        if resource.kind != KIND {
            return Vec::new();
        }
        match self.select_with_spec(resource, receiver_namespace).await {
            Ok(selected) => selected.into_iter().map(Ok).collect(),
            Err(error) => vec![Err(SelectError::from_trigger(error))],
        }
    }
}

/// A GitRepository's `spec.url`, unless it has none.
pub fn url(repository: &SelectedSpec) -> Option<&str> {
    repository
        .spec
        .as_ref()
        .and_then(|spec| spec.get("url"))
        .and_then(|url| url.as_str())
        .filter(|url| !url.is_empty())
}

/// A value of [`INSECURE_SKIP_TLS_VERIFY_ANNOTATION`] that is neither `"true"` nor `"false"`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{INSECURE_SKIP_TLS_VERIFY_ANNOTATION}: {0:?} is neither \"true\" nor \"false\"")]
pub struct InvalidTlsAnnotation(pub String);

/// Whether a GitRepository asks for a hook without certificate verification
/// ([`INSECURE_SKIP_TLS_VERIFY_ANNOTATION`]): absent or `"false"` no, `"true"` yes (spaces
/// around ignored); any other value is an error saying so.
pub fn skips_tls_verification(metadata: &ObjectMeta) -> Result<bool, InvalidTlsAnnotation> {
    let value = metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(INSECURE_SKIP_TLS_VERIFY_ANNOTATION))
        .map(|value| value.trim());
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(InvalidTlsAnnotation(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use kube::core::Status;

    use super::*;
    use crate::ObjectRef;

    #[test]
    fn select_errors_name_the_reference_and_the_problem() {
        let error = SelectError::from_trigger(TriggerError::Api {
            object: ObjectRef::new(KIND, "ns", "app"),
            action: Action::Get,
            status: Box::new(Status::failure("not found", "NotFound").with_code(404)),
        });
        assert!(error.is_not_found());
        assert!(!error.is_cross_namespace());
        assert_eq!(
            error.to_string(),
            "GitRepository ns/app: cannot be read: HTTP 404: not found"
        );
        let refused = SelectError::from_trigger(TriggerError::CrossNamespaceRef {
            object: ObjectRef::new(KIND, "other", "app"),
            receiver_namespace: "ns".into(),
        });
        assert!(refused.is_cross_namespace());
        assert_eq!(
            refused.to_string(),
            "GitRepository other/app: references to other namespaces are not allowed \
             (--no-cross-namespace-refs)"
        );
    }

    #[test]
    fn the_annotation_is_true_false_or_an_error() {
        let with = |value: Option<&str>| ObjectMeta {
            annotations: value.map(|value| {
                BTreeMap::from([(INSECURE_SKIP_TLS_VERIFY_ANNOTATION.to_owned(), value.into())])
            }),
            ..ObjectMeta::default()
        };
        assert_eq!(skips_tls_verification(&with(None)), Ok(false));
        assert_eq!(skips_tls_verification(&with(Some(" true "))), Ok(true));
        assert_eq!(skips_tls_verification(&with(Some("false"))), Ok(false));
        assert!(skips_tls_verification(&with(Some("yes"))).is_err());
    }
}
