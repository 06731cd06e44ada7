//! What a Receiver serves, read from the cluster: its webhook path, its Secret's token, its
//! events and the URLs of the GitRepositories it names.

use std::path::Path;

use anyhow::{Context, anyhow, bail};
use fluxhook_api::{Receiver, condition};
use fluxhook_register::Secret;
use fluxhook_trigger::git_repository::{SelectError, skips_tls_verification, url as git_url};
use fluxhook_trigger::secret::read_token;
use fluxhook_trigger::{SelectedSpec, Trigger, kube_message};
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

/// What one Receiver serves.
#[derive(Debug)]
pub(crate) struct ServedReceiver {
    /// The path the receiver server answers on, `status.webhookPath`.
    pub(crate) webhook_path: String,
    /// The Secret's token: the hosts sign deliveries with it.
    pub(crate) secret: Secret,
    /// `spec.events`, as written.
    pub(crate) events: Vec<String>,
    /// `spec.type`.
    pub(crate) receiver_type: String,
    /// The GitRepositories named, in the Receiver's order, each once.
    pub(crate) repositories: Vec<NamedRepository>,
}

/// A GitRepository a Receiver names, and its `spec.url` or why it could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct NamedRepository {
    /// `GitRepository namespace/name` (the reference itself when nothing could be listed).
    pub(crate) source: String,
    /// `spec.url`.
    pub(crate) url: Result<String, String>,
    /// Whether it asks for a hook without certificate verification
    /// (`webhooks.fluxhook.io/insecure-skip-tls-verify: "true"`, as the controller reads it).
    pub(crate) skip_tls_verification: bool,
}

/// `NAMESPACE/NAME` or `NAME` with `--namespace`: `(namespace, name)`; no namespace means the
/// kubeconfig context's.
pub(crate) fn receiver_name(
    arg: &str,
    namespace: Option<&str>,
) -> anyhow::Result<(Option<String>, String)> {
    let (from_arg, name) = match arg.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, arg),
    };
    if name.is_empty() || name.contains('/') || from_arg == Some("") {
        bail!("--receiver {arg:?} should be NAMESPACE/NAME or NAME");
    }
    match (from_arg, namespace) {
        (Some(a), Some(b)) if a != b => {
            bail!("--receiver names namespace {a} but --namespace says {b}")
        }
        (ns, flag) => Ok((ns.or(flag).map(str::to_owned), name.to_owned())),
    }
}

/// A client of the cluster of `kubeconfig` (else KUBECONFIG, else `~/.kube/config`) and its
/// `context` (else its current one); with neither given, the in-cluster config is tried too,
/// as `kubectl` does.
pub(crate) async fn client(
    kubeconfig: Option<&Path>,
    context: Option<&str>,
) -> anyhow::Result<kube::Client> {
    let options = KubeConfigOptions {
        context: context.map(str::to_owned),
        ..KubeConfigOptions::default()
    };
    let config = match (kubeconfig, context) {
        (Some(path), _) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read the kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .with_context(|| format!("the kubeconfig {}", path.display()))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .context("the kubeconfig of KUBECONFIG or ~/.kube/config")?,
        (None, None) => kube::Config::infer().await.context(
            "cannot set up a Kubernetes client from KUBECONFIG, ~/.kube/config or the \
             in-cluster config (give --kubeconfig)",
        )?,
    };
    kube::Client::try_from(config).context("cannot set up a Kubernetes client")
}

/// Reads Receiver `namespace/name`, its Secret and its GitRepositories.
///
/// Fails when the Receiver cannot be read, is not Ready, has no webhook path yet, has no
/// usable Secret, or serves a path that is not its Secret's current token's (it has not
/// caught up with a changed token). GitRepositories that cannot be read are reported each in
/// its [`NamedRepository`], so the others are still registered.
pub(crate) async fn read_receiver(
    client: kube::Client,
    namespace: &str,
    name: &str,
) -> anyhow::Result<ServedReceiver> {
    let id = format!("Receiver {namespace}/{name}");
    let receivers: Api<Receiver> = Api::namespaced(client.clone(), namespace);
    let receiver = receivers
        .get(name)
        .await
        .map_err(|e| anyhow!("cannot read {id}: {}", kube_message(&e)))?;
    let webhook_path = served_path(&id, &receiver)?;
    let secret_name = receiver
        .spec
        .secret_ref
        .as_ref()
        .map(|s| s.name.clone())
        .ok_or_else(|| {
            anyhow!("{id} has no spec.secretRef: Git hosts sign deliveries with its token")
        })?;
    let token = read_token(&client, namespace, &secret_name)
        .await
        .with_context(|| format!("{id}: its Secret {namespace}/{secret_name}"))?;
    if receiver.webhook_path(&token).as_str() != webhook_path {
        bail!(
            "{id} serves {webhook_path}, which is not the path of its Secret's current token: \
             the Receiver has not reconciled since the token changed; run again once it has"
        );
    }
    let trigger = Trigger::new(client);
    let mut repositories: Vec<NamedRepository> = Vec::new();
    for resource in &receiver.spec.resources {
        for found in trigger
            .select_git_repositories(resource, namespace)
            .await
            .into_iter()
            .map(named)
        {
            if !repositories.iter().any(|r| r.source == found.source) {
                repositories.push(found);
            }
        }
    }
    if repositories.is_empty() {
        bail!("{id} names no GitRepository: only GitRepositories have Git host webhooks");
    }
    Ok(ServedReceiver {
        webhook_path,
        secret: Secret::new(token),
        events: receiver.spec.events.clone().unwrap_or_default(),
        receiver_type: receiver.spec.type_.as_str().to_owned(),
        repositories,
    })
}

/// The Receiver's `status.webhookPath`, provided it is Ready.
fn served_path(id: &str, receiver: &Receiver) -> anyhow::Result<String> {
    if !receiver.is_ready() {
        let why = receiver
            .status
            .as_ref()
            .and_then(|s| s.condition(condition::READY))
            .map(|c| format!(" ({}: {})", c.reason, c.message))
            .unwrap_or_default();
        bail!("{id} is not Ready{why}: its webhook path is not served yet");
    }
    receiver
        .status
        .as_ref()
        .and_then(|s| s.webhook_path.clone())
        .filter(|p| !p.is_empty())
        .ok_or_else(|| anyhow!("{id} is Ready but has no status.webhookPath yet"))
}

/// A GitRepository as a repository to register in, or why it cannot be one.
fn named(selected: Result<SelectedSpec, SelectError>) -> NamedRepository {
    match selected {
        Ok(object) => {
            let skip = skips_tls_verification(&object.selected.metadata);
            NamedRepository {
                source: object.selected.object.to_string(),
                // A value that is neither true nor false: what it asks is unknown.
                url: skip
                    .clone()
                    .map_err(|error| error.to_string())
                    .and_then(|_| {
                        git_url(&object)
                            .map(str::to_owned)
                            .ok_or_else(|| "has no spec.url".to_owned())
                    }),
                skip_tls_verification: skip.unwrap_or(false),
            }
        }
        Err(error) => NamedRepository {
            source: error.reference().to_owned(),
            url: Err(error.problem().to_owned()),
            skip_tls_verification: false,
        },
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn receiver_names_take_a_namespace_from_either_place() {
        let ok = |arg, ns| receiver_name(arg, ns).unwrap();
        assert_eq!(
            ok("flux-system/github", None),
            (Some("flux-system".into()), "github".into())
        );
        assert_eq!(
            ok("github", Some("flux-system")),
            (Some("flux-system".into()), "github".into())
        );
        assert_eq!(
            ok("flux-system/github", Some("flux-system")),
            (Some("flux-system".into()), "github".into())
        );
        assert_eq!(ok("github", None), (None, "github".into()));
        for bad in ["", "/github", "ns/", "a/b/c"] {
            assert!(receiver_name(bad, None).is_err(), "{bad:?}");
        }
        let error = receiver_name("a/github", Some("b"))
            .unwrap_err()
            .to_string();
        assert!(error.contains("--namespace"), "{error}");
    }

    #[test]
    fn unready_receivers_are_refused_with_their_reason() {
        let receiver: Receiver = serde_json::from_value(serde_json::json!({
            "apiVersion": "notification.toolkit.fluxcd.io/v1",
            "kind": "Receiver",
            "metadata": {"name": "r", "namespace": "ns"},
            "spec": {"type": "github", "resources": []},
            "status": {"conditions": [{
                "type": "Ready", "status": "False", "reason": "TokenNotFound",
                "message": "secret not found", "lastTransitionTime": "2024-01-01T00:00:00Z"
            }]}
        }))
        .unwrap();
        let error = served_path("Receiver ns/r", &receiver)
            .unwrap_err()
            .to_string();
        assert_eq!(
            error,
            "Receiver ns/r is not Ready (TokenNotFound: secret not found): its webhook path is not served yet"
        );
    }
}
