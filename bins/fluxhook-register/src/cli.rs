//! The command line.

use std::path::PathBuf;

use clap::{ArgGroup, Parser, ValueEnum};
use fluxhook_register::Forge;
use url::Url;

const ABOUT: &str = "Registers Flux Receiver webhooks with Git hosts";

/// The description of `--help`, naming each Git host and its token variables.
fn long_about() -> String {
    let products: Vec<&str> = Forge::ALL
        .iter()
        .flat_map(|forge| forge.profile().products.iter().copied())
        .collect();
    format!(
        "\
Registers Flux Receiver webhooks with Git hosts: {products}.

Give one hook (--repo, --webhook-url and the secret), or a Receiver in the cluster \
(--receiver and --base-url): its status.webhookPath, its Secret's token, its events and the \
GitRepositories it lists are read through --kubeconfig and --context (default: KUBECONFIG or \
~/.kube/config and its current context, or the in-cluster config), and exactly what the \
cluster serves is registered in each repository.

Secrets are never taken as flag values, which any user can read in `ps`: the webhook secret \
comes from a file (--secret-file) or an environment variable (--secret-env), the host's access \
token from --token-file or the provider's variable: {variables}.",
        products = listed(&products),
        variables = token_variables(),
    )
}

/// `a`, `a and b`, `a, b and c`.
fn listed(items: &[impl AsRef<str>]) -> String {
    joined(items, "and")
}

/// `a`, `a or b`, `a, b or c` for `word` `or`.
fn joined(items: &[impl AsRef<str>], word: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.as_ref().to_owned(),
        [rest @ .., last] => {
            let rest: Vec<&str> = rest.iter().map(AsRef::as_ref).collect();
            format!("{} {word} {}", rest.join(", "), last.as_ref())
        }
    }
}

/// Each host's token variables, in order of preference, and the hosts that read them:
/// `GITHUB_TOKEN (GitHub), ..., BITBUCKET_TOKEN (Bitbucket Cloud and Bitbucket Server), ...`.
fn token_variables() -> String {
    let mut groups: Vec<(&[&str], Vec<String>)> = Vec::new();
    for forge in Forge::ALL {
        let variables = forge.token_variables();
        match groups.iter_mut().find(|(vars, _)| *vars == variables) {
            Some((_, forges)) => forges.push(forge.to_string()),
            None => groups.push((variables, vec![forge.to_string()])),
        }
    }
    let shown: Vec<String> = groups
        .iter()
        .map(|(variables, forges)| format!("{} ({})", variables.join(" or else "), listed(forges)))
        .collect();
    shown.join(", ")
}

/// The help of `--provider`: each host's names, and the SaaS hosts known without it.
fn provider_help() -> String {
    let names: Vec<String> = Forge::ALL
        .iter()
        .map(|forge| {
            let profile = forge.profile();
            match profile.aliases {
                [] => profile.name.to_owned(),
                aliases => format!("{} (or {})", profile.name, aliases.join(" or ")),
            }
        })
        .collect();
    let saas: Vec<&str> = Forge::ALL
        .iter()
        .flat_map(|forge| forge.profile().saas.iter().copied())
        .collect();
    format!(
        "The API family of a self-hosted instance: {}. Applies to the repositories of the run on \
         other hosts than {}",
        joined(&names, "or"),
        listed(&saas),
    )
}

/// The help of `--insecure-skip-tls-verify`: the hook setting of each host that has one.
fn insecure_skip_tls_verify_help() -> String {
    let settings: Vec<String> = Forge::ALL
        .iter()
        .filter_map(|forge| {
            let setting = forge.profile().hook_tls_setting?;
            Some(format!("{forge} {setting}"))
        })
        .collect();
    let per_instance: Vec<&str> = Forge::ALL
        .iter()
        .filter(|forge| forge.profile().hook_tls_setting.is_none())
        .flat_map(|forge| forge.profile().products.iter().copied())
        .collect();
    let mut help = format!(
        "The host delivers without verifying the receiver's TLS certificate: for a receiver \
         whose certificate a private CA issued, which the host does not trust. The hook is kept \
         so ({}); a run without it turns verification back on.",
        settings.join(", ")
    );
    if !per_instance.is_empty() {
        help.push_str(&format!(
            " {} verify per instance: an error there.",
            listed(&per_instance)
        ));
    }
    help.push_str(" The flag form of the annotation webhooks.fluxhook.io/insecure-skip-tls-verify");
    help
}

/// The help of `--token-file`.
fn token_file_help() -> String {
    format!(
        "File holding the host's access token. Without it the token is read from the \
         repository's provider's variable: {}",
        token_variables()
    )
}

const AFTER_LONG_HELP: &str = "\
Exit status: 0 when the hooks are in sync or were changed as asked, 1 on any error (including \
usage errors), 2 under --check when a repository is not in sync.

Examples:
  GITHUB_TOKEN=... fluxhook-register --repo https://github.com/org/fleet \\
      --webhook-url https://flux-webhook.example.com/hook/0a1b... --secret-file token.txt
  fluxhook-register --receiver flux-system/github-receiver \\
      --base-url https://flux-webhook.example.com --check";

/// How the report is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    /// One line per repository, for people.
    Text,
    /// One JSON document with a result per repository, for programs.
    Json,
}

/// The arguments of `fluxhook-register`.
#[derive(Debug, Parser)]
#[command(
    name = "fluxhook-register",
    version,
    about = ABOUT,
    long_about = long_about(),
    after_long_help = AFTER_LONG_HELP,
)]
#[command(group(ArgGroup::new("target").required(true).args(["repo", "receiver"])))]
#[command(group(ArgGroup::new("secret").args(["secret_file", "secret_env"])))]
pub(crate) struct Cli {
    /// The Git repository whose hooks to manage, as a GitRepository's spec.url
    /// (https://host/owner/repo, ssh://git@host/owner/repo or git@host:owner/repo)
    #[arg(
        long,
        value_name = "URL",
        requires = "webhook_url",
        help_heading = "One hook"
    )]
    pub(crate) repo: Option<String>,

    /// Where the host delivers events: the receiver's public URL ending in the Receiver's
    /// status.webhookPath
    #[arg(
        long,
        value_name = "URL",
        conflicts_with = "receiver",
        help_heading = "One hook"
    )]
    pub(crate) webhook_url: Option<Url>,

    /// File holding the webhook secret (the Receiver Secret's `token`); line endings at its
    /// end are ignored. Never give the secret itself as a flag: `ps` shows flags
    #[arg(
        long,
        value_name = "PATH",
        conflicts_with = "receiver",
        help_heading = "One hook"
    )]
    pub(crate) secret_file: Option<PathBuf>,

    /// Name of the environment variable holding the webhook secret
    #[arg(
        long,
        value_name = "VAR",
        conflicts_with = "receiver",
        help_heading = "One hook"
    )]
    pub(crate) secret_env: Option<String>,

    /// The events the Receiver accepts, comma-separated, as its spec.events lists them: the
    /// host's names of its deliveries (push, Push Hook, repo:refs_changed...). Only the host's
    /// hook events that deliver nothing else are subscribed. None: the Receiver accepts every
    /// event, and pushes are subscribed
    #[arg(
        long,
        value_name = "EVENTS",
        value_delimiter = ',',
        conflicts_with = "receiver",
        help_heading = "One hook"
    )]
    pub(crate) events: Vec<String>,

    /// The Receiver's spec.type (github, gitlab, bitbucket, generic...): refuses a hook on a
    /// host whose deliveries that type cannot verify, and subscribes every event the host
    /// sends for generic, which accepts them all
    #[arg(
        long,
        value_name = "TYPE",
        conflicts_with = "receiver",
        help_heading = "One hook"
    )]
    pub(crate) receiver_type: Option<String>,

    // Generated from the hosts' profiles.
    #[arg(long, help = insecure_skip_tls_verify_help(), help_heading = "Hook")]
    pub(crate) insecure_skip_tls_verify: bool,

    /// The Receiver whose hooks to manage, NAMESPACE/NAME or NAME (with --namespace, else the
    /// kubeconfig context's namespace)
    #[arg(
        long,
        value_name = "[NAMESPACE/]NAME",
        requires = "base_url",
        help_heading = "From the cluster"
    )]
    pub(crate) receiver: Option<String>,

    /// Namespace of the Receiver
    #[arg(
        short = 'n',
        long,
        value_name = "NAMESPACE",
        requires = "receiver",
        help_heading = "From the cluster"
    )]
    pub(crate) namespace: Option<String>,

    /// The kubeconfig file to read the cluster from. Default: KUBECONFIG, else ~/.kube/config,
    /// else the in-cluster config of a pod
    #[arg(
        long,
        value_name = "PATH",
        requires = "receiver",
        help_heading = "From the cluster"
    )]
    pub(crate) kubeconfig: Option<PathBuf>,

    /// The kubeconfig context to use, instead of its current-context; its namespace is the
    /// Receiver's unless one is given
    #[arg(
        long,
        value_name = "NAME",
        requires = "receiver",
        help_heading = "From the cluster"
    )]
    pub(crate) context: Option<String>,

    /// The public URL the receiver server is reached at
    /// (https://flux-webhook.example.com); the Receiver's status.webhookPath is appended
    #[arg(
        long,
        value_name = "URL",
        env = "FLUXHOOK_BASE_URL",
        help_heading = "From the cluster"
    )]
    pub(crate) base_url: Option<Url>,

    // Generated from the hosts' profiles.
    #[arg(
        long,
        value_name = "PROVIDER",
        help = provider_help(),
        help_heading = "Git host"
    )]
    pub(crate) provider: Option<Forge>,

    /// The API URL of the self-hosted instance when it is not the usual one
    /// (https://ghe.example.com/api/v3, https://git.example.com/gitlab/api/v4...)
    #[arg(
        long,
        value_name = "URL",
        requires = "provider",
        help_heading = "Git host"
    )]
    pub(crate) api_url: Option<Url>,

    /// Send the access token to http:// API URLs too, in clear text: for test and lab hosts
    /// only. Without it, only https:// API URLs are called
    #[arg(long, help_heading = "Git host")]
    pub(crate) allow_http: bool,

    /// PEM bundle of CA certificates to trust for the hosts' APIs, beside the public roots:
    /// for self-managed hosts whose certificate a private CA issued
    #[arg(long, value_name = "PATH", help_heading = "Git host")]
    pub(crate) ca_file: Option<PathBuf>,

    /// The longest wait, in seconds, before retrying a host that rate limits the run: the
    /// wait it asks for (Retry-After, a spent quota's reset time, the minute GitHub asks for
    /// after its secondary rate limit). A host asking for longer fails its repository at once,
    /// saying how long it asked for
    #[arg(
        long,
        value_name = "SECONDS",
        default_value_t = 60,
        help_heading = "Git host"
    )]
    pub(crate) max_wait: u64,

    // Generated from the hosts' profiles.
    #[arg(
        long,
        value_name = "PATH",
        help = token_file_help(),
        help_heading = "Git host"
    )]
    pub(crate) token_file: Option<PathBuf>,

    /// Say what would change in each repository (create, update, unchanged, delete), writing
    /// nothing
    #[arg(long, help_heading = "What to do")]
    pub(crate) dry_run: bool,

    /// Like --dry-run, and exit with status 2 when a repository is not in sync: for CI gates
    #[arg(long, conflicts_with = "dry_run", help_heading = "What to do")]
    pub(crate) check: bool,

    /// Delete the hooks to the webhook URL instead of creating or updating one (no secret is
    /// needed for one hook)
    #[arg(long, help_heading = "What to do")]
    pub(crate) delete: bool,

    /// Report format
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = OutputFormat::Text,
        help_heading = "What to do"
    )]
    pub(crate) output: OutputFormat,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use clap::CommandFactory;
    use clap::error::ErrorKind;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("fluxhook-register").chain(args.iter().copied()))
    }

    #[test]
    fn the_command_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn one_hook_or_a_receiver_is_required() {
        assert_eq!(
            parse(&["--check"]).unwrap_err().kind(),
            ErrorKind::MissingRequiredArgument
        );
        let both = [
            "--repo",
            "r",
            "--webhook-url",
            "https://a/",
            "--receiver",
            "x",
        ];
        assert!(parse(&both).is_err());
        assert!(
            parse(&["--receiver", "ns/x"]).is_err(),
            "--base-url is needed"
        );
        assert!(parse(&["--repo", "r"]).is_err(), "--webhook-url is needed");
    }

    #[test]
    fn events_are_comma_separated_and_default_to_none() {
        let cli = parse(&["--repo", "r", "--webhook-url", "https://a/"]).unwrap();
        assert!(cli.events.is_empty());
        let cli = parse(&[
            "--repo",
            "r",
            "--webhook-url",
            "https://a/",
            "--events",
            "push,pull_request",
        ])
        .unwrap();
        assert_eq!(cli.events, ["push", "pull_request"]);
    }

    #[test]
    fn providers_parse_by_name() {
        let cli = parse(&[
            "--repo",
            "r",
            "--webhook-url",
            "https://a/",
            "--provider",
            "forgejo",
        ])
        .unwrap();
        assert_eq!(cli.provider, Some(Forge::GITEA));
        let error = parse(&[
            "--repo",
            "r",
            "--webhook-url",
            "https://a/",
            "--provider",
            "svn",
        ])
        .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ValueValidation);
    }

    #[test]
    fn the_help_names_every_host_and_its_token_variables() {
        let help = Cli::command().render_long_help().to_string();
        for forge in Forge::ALL {
            let profile = forge.profile();
            for word in [profile.name]
                .iter()
                .chain(profile.aliases)
                .chain(profile.products)
                .chain(profile.token_variables)
                .chain(profile.saas)
                .chain(&profile.hook_tls_setting)
            {
                assert!(help.contains(word), "{word} is missing from:\n{help}");
            }
        }
        assert!(
            help.contains("Gitea, Forgejo and Gogs verify per instance"),
            "{help}"
        );
        assert!(
            help.contains("GITEA_TOKEN or else FORGEJO_TOKEN (Gitea)"),
            "{help}"
        );
    }

    #[test]
    fn there_is_no_flag_for_secret_values() {
        let command = Cli::command();
        let names: Vec<&str> = command
            .get_arguments()
            .filter_map(|a| a.get_long())
            .collect();
        assert!(!names.contains(&"secret"), "{names:?}");
        assert!(!names.contains(&"token"), "{names:?}");
        let help = command.clone().render_long_help().to_string();
        assert!(help.contains("read in `ps`"), "{help}");
    }
}
