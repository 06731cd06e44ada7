//! The hook one annotated GitRepository asks for. No I/O.

use fluxhook_api::WebhookPath;
use fluxhook_register::{
    DesiredHook, Forge, HostConfig, HostedRepository, ReceiverEvents, Secret, receiver_url,
};
use fluxhook_trigger::SelectedSpec;
use fluxhook_trigger::git_repository::{skips_tls_verification, url as git_url};
use url::Url;

use super::error::TargetError;
use super::record::{CaBundle, RegisteredHook};
use super::{
    ACCESS_TOKEN_SECRET_ANNOTATION, API_URL_ANNOTATION, CA_CONFIGMAP_ANNOTATION,
    CA_SECRET_ANNOTATION, PROVIDER_ANNOTATION, URL_ANNOTATION,
};

/// What a Receiver's hooks carry, whichever repository they are in.
pub(crate) struct HookTemplate<'a> {
    /// The Receiver's webhook path.
    pub(crate) path: &'a WebhookPath,
    /// The Receiver's `spec.type`, which must verify the host's deliveries.
    pub(crate) receiver_type: &'a str,
    /// The Receiver's token, which hosts sign deliveries with, and its events; or why it has
    /// none that a Git host could use.
    pub(crate) signed: Result<(Secret, ReceiverEvents), TargetError>,
}

/// A hook to register for one GitRepository.
#[derive(Debug)]
pub(crate) struct Wanted {
    /// The hook as recorded on the Receiver.
    pub(crate) hook: RegisteredHook,
    /// The repository it goes in.
    pub(crate) repository: HostedRepository,
    /// The hook itself.
    pub(crate) desired: DesiredHook,
}

/// `namespace/name` of a selected object.
pub(crate) fn id_of(object: &SelectedSpec) -> String {
    let object = &object.selected.object;
    format!("{}/{}", object.namespace, object.name)
}

/// The hook the GitRepository `object` asks for: none when it carries neither the URL nor
/// the access token annotation, or is being deleted; an error, saying what to fix, when its
/// annotations cannot be registered.
pub(crate) fn wanted(
    object: &SelectedSpec,
    template: &HookTemplate<'_>,
) -> Result<Option<Wanted>, TargetError> {
    let metadata = &object.selected.metadata;
    if metadata.deletion_timestamp.is_some() {
        return Ok(None);
    }
    let annotation = |name: &str| {
        metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(name))
            .map(|value| value.trim())
    };
    let (base, token_secret) = match (
        annotation(URL_ANNOTATION),
        annotation(ACCESS_TOKEN_SECRET_ANNOTATION),
    ) {
        (None, None) => return Ok(None),
        (Some(base), Some(secret)) if !base.is_empty() && !secret.is_empty() => (base, secret),
        _ => return Err(TargetError::HalfAnnotated),
    };
    let (secret, events) = template.signed.clone()?;
    let base = Url::parse(base).map_err(TargetError::BaseUrl)?;
    let hook_url = receiver_url(&base, template.path.as_str()).map_err(TargetError::HookUrl)?;
    let provider = annotation(PROVIDER_ANNOTATION)
        .map(|name| name.parse::<Forge>())
        .transpose()
        .map_err(TargetError::Provider)?;
    let api_url = annotation(API_URL_ANNOTATION)
        .map(Url::parse)
        .transpose()
        .map_err(TargetError::ApiUrl)?;
    let host = match (provider, &api_url) {
        (Some(provider), api_base) => Some(HostConfig {
            provider,
            api_base: api_base.clone(),
        }),
        (None, Some(_)) => return Err(TargetError::ApiUrlAlone),
        (None, None) => None,
    };
    let git_url = git_url(object).ok_or(TargetError::NoUrl)?;
    let repository = HostedRepository::from_git_url(git_url, host.as_ref())
        .map_err(TargetError::HostedRepository)?;
    // The access token only goes in clear text where an annotation asked for it by name.
    if repository.api_base().scheme() == "http" && api_url.is_none() {
        return Err(TargetError::ClearText(repository.api_base().clone()));
    }
    let verify_tls = !skips_tls_verification(metadata).map_err(TargetError::Tls)?;
    let named = |name: &str| annotation(name).filter(|value| !value.is_empty());
    let ca = match (named(CA_SECRET_ANNOTATION), named(CA_CONFIGMAP_ANNOTATION)) {
        (Some(_), Some(_)) => return Err(TargetError::TwoCaBundles),
        (Some(secret), None) => Some(CaBundle::Secret(secret.to_owned())),
        (None, Some(config_map)) => Some(CaBundle::ConfigMap(config_map.to_owned())),
        (None, None) => None,
    };
    Ok(Some(Wanted {
        hook: RegisteredHook::new(
            &repository,
            &hook_url,
            id_of(object),
            token_secret.to_string(),
            ca,
        ),
        desired: {
            let desired = DesiredHook::new(hook_url, secret, events)
                .for_receiver_type(template.receiver_type);
            match verify_tls {
                true => desired,
                false => desired.skip_tls_verification(),
            }
        },
        repository,
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fluxhook_api::webhook_path;
    use fluxhook_trigger::{ObjectRef, SelectedObject};
    use serde_json::json;

    use super::*;

    fn git_repository(url: &str, annotations: serde_json::Value) -> SelectedSpec {
        let object = ObjectRef::new("GitRepository", "flux-system", "fleet")
            .with_api_version("source.toolkit.fluxcd.io/v1");
        let metadata = serde_json::from_value(json!({
            "name": "fleet", "namespace": "flux-system", "annotations": annotations
        }))
        .unwrap();
        SelectedSpec::new(
            SelectedObject { object, metadata },
            Some(json!({"url": url})),
        )
    }

    /// The annotations asking for a hook (the Receiver's URL and the token's Secret), and
    /// `extra` (an object).
    fn registered(extra: serde_json::Value) -> serde_json::Value {
        let mut annotations = json!({
            URL_ANNOTATION: "https://flux.example.com",
            ACCESS_TOKEN_SECRET_ANNOTATION: "token",
        });
        annotations
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        annotations
    }

    fn template(path: &WebhookPath) -> HookTemplate<'_> {
        HookTemplate {
            path,
            receiver_type: "github",
            signed: Ok((Secret::new("t"), ReceiverEvents::all())),
        }
    }

    #[test]
    fn annotations_name_the_hook_and_the_token() {
        let path = webhook_path("t", "receiver", "flux-system");
        let object = git_repository(
            "https://github.com/acme/fleet",
            json!({
                URL_ANNOTATION: "https://flux.example.com/prefix/",
                ACCESS_TOKEN_SECRET_ANNOTATION: "github-token",
            }),
        );
        let wanted = wanted(&object, &template(&path)).unwrap().unwrap();
        assert_eq!(
            wanted.desired.url().as_str(),
            format!("https://flux.example.com/prefix{path}")
        );
        assert_eq!(
            wanted.repository.api_base().as_str(),
            "https://api.github.com/"
        );
        assert_eq!(wanted.hook.git_repository, "flux-system/fleet");
        assert_eq!(wanted.hook.access_token_secret, "github-token");
        assert_eq!(wanted.hook.provider, "github");
    }

    #[test]
    fn self_hosted_and_http_hosts_need_annotations() {
        let path = webhook_path("t", "receiver", "flux-system");
        let check = |url: &str, extra: serde_json::Value| {
            wanted(&git_repository(url, registered(extra)), &template(&path))
        };
        let unknown = check("https://git.example.com/acme/fleet", json!({})).unwrap_err();
        let unknown = unknown.to_string();
        assert!(unknown.contains(PROVIDER_ANNOTATION), "{unknown}");
        let gitea = check(
            "https://git.example.com/acme/fleet",
            json!({PROVIDER_ANNOTATION: "forgejo"}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            gitea.repository.api_base().as_str(),
            "https://git.example.com/api/v1"
        );
        let clear = check(
            "http://127.0.0.1:3000/acme/fleet",
            json!({PROVIDER_ANNOTATION: "gitea"}),
        )
        .unwrap_err();
        let clear = clear.to_string();
        assert!(clear.contains("clear text"), "{clear}");
        let explicit = check(
            "http://127.0.0.1:3000/acme/fleet",
            json!({PROVIDER_ANNOTATION: "gitea", API_URL_ANNOTATION: "http://127.0.0.1:3000/api/v1"}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(explicit.repository.full_name(), "acme/fleet");
        let lone_api = check(
            "https://github.com/acme/fleet",
            json!({API_URL_ANNOTATION: "https://ghe.example.com/api/v3"}),
        )
        .unwrap_err();
        let lone_api = lone_api.to_string();
        assert!(lone_api.contains(PROVIDER_ANNOTATION), "{lone_api}");
    }

    #[test]
    fn a_ca_bundle_comes_from_a_secret_or_a_config_map_not_both() {
        let path = webhook_path("t", "receiver", "flux-system");
        let with = |extra: serde_json::Value| {
            wanted(
                &git_repository("https://github.com/acme/fleet", registered(extra)),
                &template(&path),
            )
        };
        let secret = with(json!({CA_SECRET_ANNOTATION: "git-ca"}))
            .unwrap()
            .unwrap();
        assert_eq!(
            secret.hook.ca_bundle(),
            Some(CaBundle::Secret("git-ca".into()))
        );
        let map = with(json!({CA_CONFIGMAP_ANNOTATION: " kube-root-ca.crt "}))
            .unwrap()
            .unwrap();
        assert_eq!(
            map.hook.ca_bundle(),
            Some(CaBundle::ConfigMap("kube-root-ca.crt".into()))
        );
        let both =
            with(json!({CA_SECRET_ANNOTATION: "a", CA_CONFIGMAP_ANNOTATION: "b"})).unwrap_err();
        let both = both.to_string();
        assert!(both.contains("not both"), "{both}");
        let none = with(json!({})).unwrap().unwrap();
        assert_eq!(none.hook.ca_bundle(), None);
    }

    #[test]
    fn half_annotated_or_unsigned_repositories_are_refused() {
        let path = webhook_path("t", "receiver", "flux-system");
        let half = git_repository(
            "https://github.com/acme/fleet",
            json!({URL_ANNOTATION: "https://flux.example.com"}),
        );
        assert!(
            wanted(&half, &template(&path))
                .unwrap_err()
                .to_string()
                .contains("or neither")
        );
        let plain = git_repository("https://github.com/acme/fleet", json!({}));
        assert!(wanted(&plain, &template(&path)).unwrap().is_none());
        let both = git_repository(
            "https://github.com/acme/fleet",
            json!({URL_ANNOTATION: "https://flux.example.com", ACCESS_TOKEN_SECRET_ANNOTATION: "t"}),
        );
        let unsigned = HookTemplate {
            path: &path,
            receiver_type: "generic-oidc",
            signed: Err(TargetError::Unsigned {
                receiver_type: "generic-oidc".into(),
            }),
        };
        assert_eq!(
            wanted(&both, &unsigned).unwrap_err().to_string(),
            "Receiver type generic-oidc has no token for Git hosts to sign deliveries with"
        );
        let bad_base = git_repository(
            "https://github.com/acme/fleet",
            json!({URL_ANNOTATION: "https://flux.example.com/?q", ACCESS_TOKEN_SECRET_ANNOTATION: "t"}),
        );
        assert!(
            wanted(&bad_base, &template(&path))
                .unwrap_err()
                .to_string()
                .contains(URL_ANNOTATION)
        );
    }
}
