//! What to do: the hook wanted and the repositories to manage it in, from the flags or from a
//! Receiver in the cluster.

use anyhow::{Context, anyhow, bail};
use std::time::Duration;

use fluxhook_register::{
    DesiredHook, Forge, GitUrl, HookClient, HostBackoff, HostConfig, HostedRepository, HttpClient,
    ReceiverEvents, Secret, receiver_url,
};
use url::Url;

use crate::cli::Cli;
use crate::cluster;
use crate::credentials::{self, Env, Tokens};

/// Whether hooks are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Make the changes.
    Apply,
    /// Say what would change.
    DryRun,
    /// Say what would change, and fail (exit 2) when anything would.
    Check,
}

/// What is done to each repository's hooks.
#[derive(Debug)]
pub(crate) enum Operation {
    /// Exactly one hook to the URL, matching this one.
    Ensure(DesiredHook),
    /// No hook to the URL.
    Delete,
}

/// One repository to manage the hook in, or why it cannot be.
#[derive(Debug)]
pub(crate) struct Target {
    /// The repository's Git URL, without credentials, when known.
    pub(crate) git_url: Option<String>,
    /// The GitRepositories it comes from (none for a `--repo`).
    pub(crate) sources: Vec<String>,
    /// The repository, once the URL was understood.
    pub(crate) repository: Option<HostedRepository>,
    /// A client for its hooks, or what stands in the way.
    pub(crate) client: Result<HookClient, String>,
    /// Its GitRepository asks for a hook without certificate verification (the annotation
    /// `webhooks.fluxhook.io/insecure-skip-tls-verify`; `--insecure-skip-tls-verify` asks it
    /// of every repository).
    pub(crate) skip_tls_verification: bool,
}

impl Target {
    /// The hook wanted in this repository: `desired`, without certificate verification where
    /// its GitRepository asks for that.
    pub(crate) fn desired(&self, desired: &DesiredHook) -> DesiredHook {
        match self.skip_tls_verification {
            true => desired.clone().skip_tls_verification(),
            false => desired.clone(),
        }
    }
}

/// Everything to do, decided before anything is asked of a Git host.
#[derive(Debug)]
pub(crate) struct Plan {
    /// Whether to write.
    pub(crate) mode: Mode,
    /// What to do in each repository.
    pub(crate) operation: Operation,
    /// The URL the hooks deliver to.
    pub(crate) webhook_url: Url,
    /// The repositories, in order.
    pub(crate) targets: Vec<Target>,
}

/// Builds the plan from the flags: for one hook, or for a Receiver read from the cluster.
pub(crate) async fn build(cli: &Cli, env: Env<'_>) -> anyhow::Result<Plan> {
    let mode = match (cli.check, cli.dry_run) {
        (true, _) => Mode::Check,
        (false, true) => Mode::DryRun,
        (false, false) => Mode::Apply,
    };
    let tokens = Tokens::new(cli.token_file.as_deref())?;
    let http = http_client(cli.ca_file.as_deref())?;
    let Wanted {
        webhook_url,
        secret,
        events,
        receiver_type,
        repositories,
    } = match &cli.receiver {
        Some(receiver) => from_cluster(cli, receiver).await?,
        None => from_flags(cli, env)?,
    };
    let operation = match (cli.delete, secret) {
        (true, _) => Operation::Delete,
        (false, Some(secret)) => {
            let hook = DesiredHook::new(
                webhook_url.clone(),
                secret,
                ReceiverEvents::new(events.iter().map(String::as_str)),
            );
            let hook = match receiver_type {
                Some(receiver_type) => hook.for_receiver_type(receiver_type),
                None => hook,
            };
            Operation::Ensure(match cli.insecure_skip_tls_verify {
                true => hook.skip_tls_verification(),
                false => hook,
            })
        }
        (false, None) => bail!(
            "give the webhook secret with --secret-file or --secret-env \
             (never as a flag value, which `ps` shows)"
        ),
    };
    let host = cli.provider.map(|provider| HostConfig {
        provider,
        api_base: cli.api_url.clone(),
    });
    let builder = TargetBuilder {
        host: host.as_ref(),
        allow_http: cli.allow_http,
        tokens: &tokens,
        env,
        http: &http,
        retry: HostBackoff {
            max_wait: Duration::from_secs(cli.max_wait),
            ..HostBackoff::default()
        },
        desired: match &operation {
            Operation::Ensure(desired) => Some(desired),
            Operation::Delete => None,
        },
    };
    let targets = builder.targets(repositories);
    Ok(Plan {
        mode,
        operation,
        webhook_url,
        targets,
    })
}

/// The client every repository's requests go through, trusting `--ca-file` too.
fn http_client(ca_file: Option<&std::path::Path>) -> anyhow::Result<HttpClient> {
    let builder = HttpClient::builder();
    let builder = match ca_file {
        None => builder,
        Some(path) => {
            let pem = std::fs::read(path)
                .with_context(|| format!("cannot read the CA file {}", path.display()))?;
            builder
                .ca_bundle_pem(&pem)
                .with_context(|| format!("--ca-file {}", path.display()))?
        }
    };
    Ok(builder.build()?)
}

/// The hook wanted and where, before it is checked and turned into a plan.
struct Wanted {
    webhook_url: Url,
    /// None only for `--delete` of one hook, which needs no secret.
    secret: Option<Secret>,
    /// The Receiver's `spec.events`.
    events: Vec<String>,
    /// The Receiver's `spec.type`, when known.
    receiver_type: Option<String>,
    repositories: Vec<cluster::NamedRepository>,
}

fn from_flags(cli: &Cli, env: Env<'_>) -> anyhow::Result<Wanted> {
    let (Some(repo), Some(webhook_url)) = (&cli.repo, &cli.webhook_url) else {
        bail!("give --repo and --webhook-url, or --receiver and --base-url");
    };
    let secret = match (&cli.secret_file, &cli.secret_env) {
        (Some(path), _) => Some(credentials::secret_from_file(path)?),
        (None, Some(name)) => Some(credentials::secret_from_env(name, env)?),
        (None, None) => None,
    };
    let repository = cluster::NamedRepository {
        source: String::new(),
        url: Ok(repo.clone()),
        // --insecure-skip-tls-verify is on the hook itself.
        skip_tls_verification: false,
    };
    Ok(Wanted {
        webhook_url: webhook_url.clone(),
        secret,
        // Flag values are trimmed (`--events "push, pull_request"`); spec.events are not.
        events: cli
            .events
            .iter()
            .map(|e| e.trim().to_owned())
            .filter(|e| !e.is_empty())
            .collect(),
        receiver_type: cli.receiver_type.clone(),
        repositories: vec![repository],
    })
}

async fn from_cluster(cli: &Cli, receiver: &str) -> anyhow::Result<Wanted> {
    let base_url = cli
        .base_url
        .as_ref()
        .ok_or_else(|| anyhow!("--receiver needs --base-url (or FLUXHOOK_BASE_URL)"))?;
    let (namespace, name) = cluster::receiver_name(receiver, cli.namespace.as_deref())?;
    let client = cluster::client(cli.kubeconfig.as_deref(), cli.context.as_deref()).await?;
    let namespace = namespace.unwrap_or_else(|| client.default_namespace().to_owned());
    let served = cluster::read_receiver(client, &namespace, &name).await?;
    let webhook_url = receiver_url(base_url, &served.webhook_path).context("--base-url")?;
    Ok(Wanted {
        webhook_url,
        secret: Some(served.secret),
        events: served.events,
        receiver_type: Some(served.receiver_type),
        repositories: served.repositories,
    })
}

/// A Git URL as shown: without the user name and password a URL may carry.
pub(crate) fn shown_git_url(git_url: &str) -> String {
    match Url::parse(git_url) {
        Ok(mut url) if url.has_host() => {
            // Both calls succeed on URLs with a host.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.to_string()
        }
        // scp-like `user@host:path`: the user goes.
        _ => match git_url.rsplit_once('@') {
            Some((_, rest)) => rest.to_owned(),
            None => git_url.to_owned(),
        },
    }
}

/// What every target is built with.
struct TargetBuilder<'a> {
    /// `--provider` and `--api-url`, for repositories on hosts not known by name.
    host: Option<&'a HostConfig>,
    /// `--allow-http`.
    allow_http: bool,
    tokens: &'a Tokens,
    env: Env<'a>,
    /// The HTTP client, shared so that connections are reused.
    http: &'a HttpClient,
    /// How rate limits and server errors are retried (`--max-wait`).
    retry: HostBackoff,
    /// The hook wanted, when ensuring one: checked against each repository's host first.
    desired: Option<&'a DesiredHook>,
}

impl TargetBuilder<'_> {
    /// One target per repository; GitRepositories of one repository share it.
    fn targets(&self, repositories: Vec<cluster::NamedRepository>) -> Vec<Target> {
        let mut targets: Vec<Target> = Vec::new();
        for named in repositories {
            let sources: Vec<String> = Some(named.source)
                .filter(|s| !s.is_empty())
                .into_iter()
                .collect();
            let git_url = match named.url {
                Ok(url) => url,
                Err(error) => {
                    targets.push(Target {
                        git_url: None,
                        sources,
                        repository: None,
                        client: Err(error),
                        skip_tls_verification: false,
                    });
                    continue;
                }
            };
            let shown = shown_git_url(&git_url);
            let repository = match HostedRepository::from_git_url(&git_url, self.host_for(&git_url))
            {
                Ok(repository) => repository,
                Err(error) => {
                    targets.push(Target {
                        git_url: Some(shown.clone()),
                        sources,
                        repository: None,
                        client: Err(format!("{shown}: {error}")),
                        skip_tls_verification: false,
                    });
                    continue;
                }
            };
            let same = targets.iter_mut().find(|t| {
                t.repository.as_ref().map(HostedRepository::key) == Some(repository.key())
            });
            if let Some(same) = same {
                same.sources.extend(sources);
                continue;
            }
            // GitRepositories of one repository share its hook: the first one's says how.
            let skip = named.skip_tls_verification;
            targets.push(Target {
                git_url: Some(shown),
                sources,
                client: self.client(&repository, skip),
                repository: Some(repository),
                skip_tls_verification: skip,
            });
        }
        targets
    }

    /// The self-hosted instance's settings, unless the URL is on a host known by name
    /// (github.com...), whose provider and API URL are fixed.
    fn host_for(&self, git_url: &str) -> Option<&HostConfig> {
        let known = GitUrl::parse(git_url).is_ok_and(|u| Forge::from_hostname(&u.host).is_some());
        self.host.filter(|_| !known)
    }

    fn client(&self, repository: &HostedRepository, skip_tls: bool) -> Result<HookClient, String> {
        // A Receiver that cannot have a hook there needs an edit before any token does.
        if let Some(desired) = self.desired {
            let desired = match skip_tls {
                true => desired.clone().skip_tls_verification(),
                false => desired.clone(),
            };
            desired.check(repository).map_err(|e| e.to_string())?;
        }
        let api = repository.api_base();
        if api.scheme() == "http" && !self.allow_http {
            return Err(format!(
                "{} {}: refusing to send the access token in clear text to {api}; \
                 pass --allow-http for a test or lab host",
                repository.forge(),
                repository.full_name(),
            ));
        }
        let token = self
            .tokens
            .for_provider(repository.forge(), self.env)
            .map_err(|e| format!("{} {}: {e}", repository.forge(), repository.full_name()))?;
        HookClient::builder(repository.clone(), token)
            .http(self.http.clone())
            .backoff(self.retry)
            .build()
            .map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use fluxhook_register::Forge;

    #[test]
    fn shown_urls_lose_credentials() {
        assert_eq!(
            shown_git_url("https://user:pa55@github.com/o/r.git"),
            "https://github.com/o/r.git"
        );
        assert_eq!(
            shown_git_url("ssh://git@github.com/o/r.git"),
            "ssh://github.com/o/r.git"
        );
        assert_eq!(
            shown_git_url("git@github.com:o/r.git"),
            "github.com:o/r.git"
        );
        assert_eq!(
            shown_git_url("https://gitlab.com/g/r"),
            "https://gitlab.com/g/r"
        );
    }

    fn named(source: &str, url: &str) -> cluster::NamedRepository {
        cluster::NamedRepository {
            source: source.into(),
            url: Ok(url.into()),
            skip_tls_verification: false,
        }
    }

    /// Targets on `host` (or hosts known by name), plain HTTP refused, no hook checked.
    fn builder<'a>(
        host: Option<&'a HostConfig>,
        tokens: &'a Tokens,
        env: Env<'a>,
        http: &'a HttpClient,
    ) -> TargetBuilder<'a> {
        TargetBuilder {
            host,
            allow_http: false,
            tokens,
            env,
            http,
            retry: HostBackoff::default(),
            desired: None,
        }
    }

    #[test]
    fn targets_share_a_repository_and_refuse_plain_http_unless_allowed() {
        let tokens = Tokens::new(None).unwrap();
        let env = |name: &str| (name == "GITHUB_TOKEN").then(|| "t".to_owned());
        let http = HttpClient::new().unwrap();
        let builder = builder(None, &tokens, &env, &http);
        let targets = builder.targets(vec![
            named("GitRepository ns/a", "https://github.com/o/r"),
            named("GitRepository ns/b", "git@github.com:o/r.git"),
            named("GitRepository ns/c", "https://git.example.com/o/r"),
            cluster::NamedRepository {
                source: "GitRepository ns/d".into(),
                url: Err("has no spec.url".into()),
                skip_tls_verification: false,
            },
        ]);
        assert_eq!(targets.len(), 3);
        assert_eq!(
            targets[0].sources,
            ["GitRepository ns/a", "GitRepository ns/b"]
        );
        assert!(targets[0].client.is_ok());
        let unknown = targets[1].client.as_ref().unwrap_err();
        assert!(unknown.contains("git.example.com"), "{unknown}");
        assert_eq!(targets[2].client.as_ref().unwrap_err(), "has no spec.url");

        let lab = HostConfig {
            provider: Forge::GITHUB,
            api_base: Some(Url::parse("http://127.0.0.1:3000/api/v3").unwrap()),
        };
        let builder = TargetBuilder {
            host: Some(&lab),
            ..builder
        };
        let targets = builder.targets(vec![named("", "http://127.0.0.1:3000/o/r")]);
        let refused = targets[0].client.as_ref().unwrap_err();
        assert!(refused.contains("--allow-http"), "{refused}");
        assert!(targets[0].sources.is_empty());

        let builder = TargetBuilder {
            allow_http: true,
            ..builder
        };
        let targets = builder.targets(vec![named("", "http://127.0.0.1:3000/o/r")]);
        assert!(targets[0].client.is_ok());
    }

    #[test]
    fn self_hosted_settings_leave_known_hosts_alone() {
        let tokens = Tokens::new(None).unwrap();
        let env = |_: &str| Some("t".to_owned());
        let gitlab = HostConfig {
            provider: Forge::GITLAB,
            api_base: Some(Url::parse("https://git.example.com/api/v4").unwrap()),
        };
        let http = HttpClient::new().unwrap();
        let builder = builder(Some(&gitlab), &tokens, &env, &http);
        let targets = builder.targets(vec![
            named("GitRepository ns/a", "https://github.com/o/r"),
            named(
                "GitRepository ns/b",
                "ssh://git@git.example.com:2222/g/r.git",
            ),
        ]);
        let located: Vec<(Forge, &str)> = targets
            .iter()
            .map(|t| {
                let r = t.repository.as_ref().unwrap();
                (r.forge(), r.api_base().as_str())
            })
            .collect();
        assert_eq!(
            located,
            [
                (Forge::GITHUB, "https://api.github.com/"),
                (Forge::GITLAB, "https://git.example.com/api/v4"),
            ]
        );
    }
}
