//! What a Receiver names, read from the Kubernetes API (feature `kube`): the GitRepositories
//! of its `spec.resources`, and the `token` of a Secret.
//!
//! Both the `fluxhook-register` command and the Receiver controller read the cluster this way,
//! so a Receiver's repositories are the same whichever registers them.
//!
//! ```
//! use fluxhook_register::cluster::{git_url, select_git_repositories};
//! use fluxhook_test_apiserver::{ResourceType, TestApiServer};
//! use kube::config::{KubeConfigOptions, Kubeconfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestApiServer::start().await?;
//! for resource in ResourceType::flux() {
//!     server.register(resource);
//! }
//! server.create(serde_json::json!({
//!     "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
//!     "metadata": {"name": "fleet", "namespace": "default"},
//!     "spec": {"url": "https://github.com/acme/fleet"},
//! }))?;
//! let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml())?;
//! let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
//! let client = kube::Client::try_from(config)?;
//!
//! let resource = serde_json::from_value(serde_json::json!({"kind": "GitRepository", "name": "fleet"}))?;
//! let mut selected = select_git_repositories(&client, "default", &resource).await;
//! let fleet = selected.remove(0)?;
//! assert_eq!(git_url(&fleet), Some("https://github.com/acme/fleet"));
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeMap;

use fluxhook_api::{ReceiverResource, resolve};
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use kube::api::{Api, DynamicObject, ListParams};

/// The only kind whose repositories have Git host webhooks.
pub const GIT_REPOSITORY: &str = "GitRepository";

/// The key of a Secret that holds a token: a Receiver's, or a Git host access token.
pub const TOKEN_KEY: &str = "token";

/// A GitRepository a Receiver names that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reference}: {problem}")]
pub struct SelectError {
    reference: String,
    problem: String,
    status: Option<u16>,
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
}

/// Why a Secret's token could not be read. No message holds any of the Secret's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The API server did not give the Secret.
    #[error("cannot be read: {message}")]
    Unreadable {
        /// The API server's answer.
        message: String,
        /// Its HTTP status, when it answered.
        status: Option<u16>,
    },
    /// The Secret has no `token` key.
    #[error("has no {TOKEN_KEY:?} key")]
    MissingKey,
    /// The token is not UTF-8 text.
    #[error("{TOKEN_KEY:?} is not UTF-8")]
    NotText,
    /// The token is empty.
    #[error("{TOKEN_KEY:?} is empty")]
    Empty,
}

/// The message of a Kubernetes API error: the API server's own words when it answered.
pub fn kube_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("HTTP {}: {}", status.code, status.message),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

fn kube_status(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// The access token for a Git host's API in Secret `namespace/name`: its `token`, without
/// the whitespace around it. A Secret made with `kubectl create secret --from-file` from a
/// file `echo` wrote ends in a newline, which no host's token holds and no HTTP header may
/// carry. (A Receiver's own token is read untrimmed, with [`read_token`]: Flux signs and
/// derives the webhook path from it byte for byte.)
pub async fn read_access_token(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<String, TokenError> {
    let token = read_token(client, namespace, name).await?;
    match token.trim() {
        "" => Err(TokenError::Empty),
        trimmed => Ok(trimmed.to_owned()),
    }
}

/// The `token` of Secret `namespace/name`, as it is.
pub async fn read_token(
    client: &kube::Client,
    namespace: &str,
    name: &str,
) -> Result<String, TokenError> {
    let secrets: Api<KubeSecret> = Api::namespaced(client.clone(), namespace);
    let secret = secrets
        .get(name)
        .await
        .map_err(|error| TokenError::Unreadable {
            message: kube_message(&error),
            status: kube_status(&error),
        })?;
    let token = secret
        .data
        .and_then(|mut data| data.remove(TOKEN_KEY))
        .ok_or(TokenError::MissingKey)?;
    let token = String::from_utf8(token.0).map_err(|_| TokenError::NotText)?;
    if token.is_empty() {
        return Err(TokenError::Empty);
    }
    Ok(token)
}

/// The GitRepositories one `spec.resources` entry of a Receiver names, as Flux selects them:
/// by name, or `*` with `matchLabels` (listed by those labels; `*` without them is an
/// error), in the entry's namespace or else the Receiver's. Other kinds name none.
///
/// Each GitRepository is read whole (its `spec.url` and its annotations); one that cannot
/// be read is a [`SelectError`], so that the others are still used.
pub async fn select_git_repositories(
    client: &kube::Client,
    receiver_namespace: &str,
    resource: &ReceiverResource,
) -> Vec<Result<DynamicObject, SelectError>> {
    if resource.kind != GIT_REPOSITORY {
        return Vec::new();
    }
    let namespace = resource
        .namespace
        .as_deref()
        .filter(|namespace| !namespace.is_empty())
        .unwrap_or(receiver_namespace);
    let failed = |problem: String, status: Option<u16>| {
        vec![Err(SelectError {
            reference: format!("{GIT_REPOSITORY} {namespace}/{}", resource.name),
            problem,
            status,
        })]
    };
    let kind = match resolve(resource.api_version.as_deref(), &resource.kind) {
        Ok(kind) => kind,
        Err(error) => return failed(error.to_string(), None),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(client.clone(), namespace, &kind.to_api_resource());
    if resource.name != "*" {
        return match api.get(&resource.name).await {
            Ok(object) => vec![Ok(object)],
            Err(error) => failed(
                format!("cannot be read: {}", kube_message(&error)),
                kube_status(&error),
            ),
        };
    }
    let Some(labels) = &resource.match_labels else {
        return failed("name \"*\" needs matchLabels".to_owned(), None);
    };
    match api
        .list(&ListParams::default().labels(&label_selector(labels)))
        .await
    {
        Ok(list) => list.items.into_iter().map(Ok).collect(),
        Err(error) => failed(
            format!("cannot be listed: {}", kube_message(&error)),
            kube_status(&error),
        ),
    }
}

/// A GitRepository's `spec.url`, unless it has none.
pub fn git_url(object: &DynamicObject) -> Option<&str> {
    object
        .data
        .pointer("/spec/url")
        .and_then(|url| url.as_str())
        .filter(|url| !url.is_empty())
}

/// On a GitRepository: `"true"` asks for a hook whose host delivers without verifying the
/// receiver's TLS certificate ([`DesiredHook::skip_tls_verification`](crate::DesiredHook::skip_tls_verification)),
/// for a receiver behind a private CA. The Receiver controller and `fluxhook-register
/// --receiver` both honour it, so that neither undoes what the other registered.
pub const INSECURE_SKIP_TLS_VERIFY_ANNOTATION: &str =
    "webhooks.fluxhook.io/insecure-skip-tls-verify";

/// Whether a GitRepository asks for a hook without certificate verification
/// ([`INSECURE_SKIP_TLS_VERIFY_ANNOTATION`]): absent or `"false"` no, `"true"` yes (spaces
/// around ignored); any other value is an error saying so.
pub fn skips_tls_verification(object: &DynamicObject) -> Result<bool, String> {
    let value = object
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(INSECURE_SKIP_TLS_VERIFY_ANNOTATION))
        .map(|value| value.trim());
    match value {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(format!(
            "{INSECURE_SKIP_TLS_VERIFY_ANNOTATION}: {other:?} is neither \"true\" nor \"false\""
        )),
    }
}

/// `k=v,k2=v2`: every label must match.
fn label_selector(labels: &BTreeMap<String, String>) -> String {
    labels
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn label_selectors_require_every_label() {
        let labels = BTreeMap::from([
            ("app".to_owned(), "fleet".to_owned()),
            ("tier".to_owned(), "infra".to_owned()),
        ]);
        assert_eq!(label_selector(&labels), "app=fleet,tier=infra");
    }

    #[test]
    fn select_errors_name_the_reference_and_the_problem() {
        let error = SelectError {
            reference: "GitRepository ns/app".into(),
            problem: "cannot be read: HTTP 404: not found".into(),
            status: Some(404),
        };
        assert!(error.is_not_found());
        assert_eq!(
            error.to_string(),
            "GitRepository ns/app: cannot be read: HTTP 404: not found"
        );
    }
}
