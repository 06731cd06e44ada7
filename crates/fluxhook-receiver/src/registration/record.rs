//! The hooks registered for a Receiver, remembered in an annotation on it so that they can
//! be deleted after the GitRepository's annotations go, after a token rotation moved the
//! Receiver's path, and when the Receiver is deleted. No I/O.

use fluxhook_register::{Forge, HostedRepository, HostedRepositoryKey};
use kube::api::DynamicObject;
use serde::{Deserialize, Serialize};
use url::Url;

use super::REGISTERED_ANNOTATION;
use super::error::RecordError;

/// One hook registered for a Receiver: where it is and how to reach it again.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RegisteredHook {
    /// The host's API family, as [`Forge::name`] writes it.
    pub(crate) provider: String,
    /// The API URL the hooks are managed through.
    pub(crate) api_url: String,
    /// The repository's owner (namespace, workspace or project key).
    pub(crate) owner: String,
    /// The repository's name.
    pub(crate) repository: String,
    /// Where the hook delivers.
    pub(crate) hook_url: String,
    /// `namespace/name` of the GitRepository the hook was registered for.
    pub(crate) git_repository: String,
    /// The Secret, in the GitRepository's namespace, holding the access token.
    pub(crate) access_token_secret: String,
    /// The Secret, in the GitRepository's namespace, holding the CA bundle of the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_secret: Option<String>,
    /// The ConfigMap, in the GitRepository's namespace, holding the CA bundle of the API.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) ca_config_map: Option<String>,
}

/// Where the CA bundle trusted for a host's API is: an object in the GitRepository's
/// namespace whose `ca.crt` key holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum CaBundle {
    /// A Secret (annotation `webhooks.fluxhook.io/ca-secret`).
    Secret(String),
    /// A ConfigMap (annotation `webhooks.fluxhook.io/ca-configmap`), as Kubernetes publishes
    /// its own CA in `kube-root-ca.crt`.
    ConfigMap(String),
}

/// Which hook a recorded hook is, whichever GitRepository and Secret it came through: its
/// repository as compared ([`HostedRepository::key`]: owner case and an API URL's trailing slash
/// do not count, so that a GitRepository respelled never has its live hook deleted as a
/// stale one) and its URL as parsed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum HookIdentity {
    /// A record that reads back.
    Known(HostedRepositoryKey, String),
    /// A record that does not (an edited annotation): compared as written.
    Unreadable([String; 5]),
}

impl RegisteredHook {
    /// A hook to `hook_url` in `repository`, for GitRepository `git_repository`.
    pub(crate) fn new(
        repository: &HostedRepository,
        hook_url: &Url,
        git_repository: String,
        access_token_secret: String,
        ca: Option<CaBundle>,
    ) -> Self {
        let (ca_secret, ca_config_map) = match ca {
            None => (None, None),
            Some(CaBundle::Secret(name)) => (Some(name), None),
            Some(CaBundle::ConfigMap(name)) => (None, Some(name)),
        };
        Self {
            provider: repository.forge().name().to_string(),
            api_url: repository.api_base().to_string(),
            owner: repository.owner().to_string(),
            repository: repository.name().to_string(),
            hook_url: hook_url.to_string(),
            git_repository,
            access_token_secret,
            ca_secret,
            ca_config_map,
        }
    }

    /// Where the CA bundle for the host's API is, if one was named.
    pub(crate) fn ca_bundle(&self) -> Option<CaBundle> {
        match (&self.ca_secret, &self.ca_config_map) {
            (Some(secret), _) => Some(CaBundle::Secret(secret.clone())),
            (None, Some(config_map)) => Some(CaBundle::ConfigMap(config_map.clone())),
            (None, None) => None,
        }
    }

    /// The hook, whichever GitRepository and Secret it came through.
    pub(crate) fn identity(&self) -> HookIdentity {
        match self.location() {
            Ok((repository, url)) => HookIdentity::Known(repository.key(), url.to_string()),
            Err(_) => HookIdentity::Unreadable([
                self.provider.clone(),
                self.api_url.clone(),
                self.owner.clone(),
                self.repository.clone(),
                self.hook_url.clone(),
            ]),
        }
    }

    /// Whether both are hooks of the same repository.
    pub(crate) fn same_repository(&self, other: &RegisteredHook) -> bool {
        match (self.identity(), other.identity()) {
            (HookIdentity::Known(mine, _), HookIdentity::Known(theirs, _)) => mine == theirs,
            (HookIdentity::Unreadable(mine), HookIdentity::Unreadable(theirs)) => {
                mine[..4] == theirs[..4]
            }
            _ => false,
        }
    }

    /// The repository and the URL, read back.
    pub(crate) fn location(&self) -> Result<(HostedRepository, Url), RecordError> {
        let provider: Forge = self.provider.parse().map_err(RecordError::Provider)?;
        let api = Url::parse(&self.api_url).map_err(|source| RecordError::ApiUrl {
            url: self.api_url.clone(),
            source,
        })?;
        let hook = Url::parse(&self.hook_url).map_err(|source| RecordError::HookUrl {
            url: self.hook_url.clone(),
            source,
        })?;
        Ok((
            HostedRepository::new(provider, api, &self.owner, &self.repository),
            hook,
        ))
    }

    /// The GitRepository's namespace (where the access token Secret is).
    pub(crate) fn namespace(&self) -> &str {
        self.git_repository
            .split_once('/')
            .map_or("", |(namespace, _)| namespace)
    }

    /// How messages name the hook: `<hook URL> in <provider> <host>, repository <owner/name>`.
    pub(crate) fn describe(&self) -> String {
        let host = Url::parse(&self.api_url)
            .ok()
            .and_then(|url| {
                url.host_str().map(|host| match url.port() {
                    Some(port) => format!("{host}:{port}"),
                    None => host.to_string(),
                })
            })
            .unwrap_or_else(|| self.api_url.clone());
        let provider = self
            .provider
            .parse::<Forge>()
            .map_or_else(|_| self.provider.clone(), |p| p.to_string());
        format!(
            "{} in {provider} {host}, repository {}/{}",
            self.hook_url, self.owner, self.repository
        )
    }
}

/// The hooks recorded on a Receiver; none when it has no record.
pub(crate) fn read(object: &DynamicObject) -> Result<Vec<RegisteredHook>, RecordError> {
    match object
        .metadata
        .annotations
        .as_ref()
        .and_then(|annotations| annotations.get(REGISTERED_ANNOTATION))
    {
        None => Ok(Vec::new()),
        Some(text) => parse(text),
    }
}

fn parse(text: &str) -> Result<Vec<RegisteredHook>, RecordError> {
    serde_json::from_str(text).map_err(RecordError::NotAList)
}

/// The annotation's value for `hooks`: a JSON list of [`normalized`] hooks; `None` when
/// there are none (the annotation is removed).
pub(crate) fn write(hooks: &[RegisteredHook]) -> Option<String> {
    let hooks = normalized(hooks.to_vec());
    if hooks.is_empty() {
        return None;
    }
    serde_json::to_string(&hooks).ok()
}

/// `hooks` in a fixed order (the fields that say which hook it is come first), each hook
/// once (the first of those with one [`HookIdentity`]).
pub(crate) fn normalized(mut hooks: Vec<RegisteredHook>) -> Vec<RegisteredHook> {
    hooks.sort();
    let mut seen = std::collections::HashSet::new();
    hooks.retain(|hook| seen.insert(hook.identity()));
    hooks
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn hook(provider: &str, owner: &str, hook_url: &str) -> RegisteredHook {
        RegisteredHook {
            provider: provider.into(),
            api_url: "https://api.github.com/".into(),
            owner: owner.into(),
            repository: "fleet".into(),
            hook_url: hook_url.into(),
            git_repository: "flux-system/fleet".into(),
            access_token_secret: "github-token".into(),
            ca_secret: None,
            ca_config_map: None,
        }
    }

    #[test]
    fn the_record_reads_back_what_was_written() {
        let hooks = vec![
            hook("github", "acme", "https://flux.example.com/hook/2"),
            hook("github", "acme", "https://flux.example.com/hook/1"),
        ];
        let text = write(&hooks).unwrap();
        assert!(text.contains(r#""hookUrl":"https://flux.example.com/hook/1""#));
        assert!(text.contains(r#""accessTokenSecret":"github-token""#));
        assert_eq!(parse(&text).unwrap(), normalized(hooks));
        assert_eq!(write(&[]), None);
        assert!(
            parse("{")
                .unwrap_err()
                .to_string()
                .contains(REGISTERED_ANNOTATION)
        );
    }

    #[test]
    fn locations_and_descriptions() {
        let recorded = hook("github", "acme", "https://flux.example.com/hook/1");
        let (repository, url) = recorded.location().unwrap();
        assert_eq!(repository.full_name(), "acme/fleet");
        assert_eq!(url.as_str(), "https://flux.example.com/hook/1");
        assert_eq!(recorded.namespace(), "flux-system");
        assert_eq!(
            recorded.describe(),
            "https://flux.example.com/hook/1 in GitHub api.github.com, repository acme/fleet"
        );
        assert!(
            hook("svn", "acme", "https://x/")
                .location()
                .unwrap_err()
                .to_string()
                .contains("svn")
        );
        assert!(recorded.same_repository(&hook("github", "acme", "https://other/")));
        assert!(!recorded.same_repository(&hook("github", "other", "https://other/")));
    }

    #[test]
    fn respelled_repositories_are_the_same_hook() {
        let recorded = hook("github", "acme", "https://flux.example.com/hook/1");
        let respelled = RegisteredHook {
            api_url: "https://API.github.com:443/".into(),
            owner: "Acme".into(),
            repository: "Fleet".into(),
            git_repository: "apps/fleet".into(),
            ..recorded.clone()
        };
        assert_eq!(recorded.identity(), respelled.identity());
        assert!(recorded.same_repository(&respelled));
        assert_eq!(normalized(vec![respelled, recorded.clone()]).len(), 1);
        let enterprise = |api: &str| RegisteredHook {
            api_url: api.into(),
            ..recorded.clone()
        };
        assert_eq!(
            enterprise("https://ghe.example.com/api/v3").identity(),
            enterprise("https://ghe.example.com/api/v3/").identity()
        );
        let elsewhere = RegisteredHook {
            hook_url: "https://flux.example.com/hook/2".into(),
            ..recorded.clone()
        };
        assert_ne!(recorded.identity(), elsewhere.identity());
    }

    proptest! {
        /// Whatever hooks are recorded, in whatever order and however often, the annotation
        /// reads back as each hook once, and writing it again gives the same text.
        #[test]
        fn records_round_trip(
            hooks in prop::collection::vec(
                ("(github|gitlab)", "[a-z]{1,3}", "https://h/[0-9]{1,2}"),
                0..8,
            ),
        ) {
            let hooks: Vec<RegisteredHook> =
                hooks.iter().map(|(p, o, u)| hook(p, o, u)).collect();
            match write(&hooks) {
                None => prop_assert!(hooks.is_empty()),
                Some(text) => {
                    let read = parse(&text).unwrap();
                    prop_assert_eq!(&read, &normalized(hooks.clone()));
                    prop_assert_eq!(write(&read), Some(text));
                }
            }
        }
    }
}
