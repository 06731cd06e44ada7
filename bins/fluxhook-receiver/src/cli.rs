//! The command line: every flag of notification-controller v1.9, with its name, value
//! syntax and default, and fluxhook's own.
//!
//! The flags come from notification-controller's main.go and the fluxcd/pkg option structs
//! it binds (runtime/client, runtime/logger, runtime/leaderelection, runtime/acl,
//! runtime/controller, runtime/features, cache, auth). Values are read as Go reads them
//! ([`goflag`]). A served flag is a field of [`Flags`]; a flag of notification-controller's
//! other servers and controllers is a field of [`NotServed`], accepted, and named at start-up.

use std::collections::BTreeMap;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{
    ArgAction, ArgMatches, Args, Command, CommandFactory, FromArgMatches, Parser, ValueEnum,
};
use fluxhook_oidc::GOOGLE_ISSUER;

use crate::goflag;

const ABOUT: &str = "Serves Flux's webhook Receivers";

const LONG_ABOUT: &str = "\
Serves Flux's webhook Receivers (notification.toolkit.fluxcd.io/v1): watches the Receivers \
and their Secrets, writes their status as Flux's notification-controller does, and answers \
POST /hook/<digest> by asking Flux to reconcile the objects each Receiver names.

It accepts every flag of notification-controller v1.9, so that its Deployment's arguments \
work unchanged. The cluster is reached through KUBECONFIG, or the in-cluster configuration. \
With --watch-all-namespaces=false only the Receivers of the namespace named by the \
RUNTIME_NAMESPACE environment variable are served.";

/// How long SIGTERM waits for the requests in flight (see the library's constant: the
/// Deployment's manifests are checked against it).
pub(crate) const DRAIN: Duration = fluxhook_receiver::SIGTERM_DRAIN;

const AFTER_LONG_HELP: &str = "\
Flags take their values as Flux's (Go's) do: booleans as --watch-all-namespaces=false, \
durations as 35s, 1m30s or 750ms.

Replicas: every replica watches the Receivers and serves every webhook. With \
--enable-leader-election only the holder of the Lease fluxhook-receiver-leader-election (in \
the namespace of RUNTIME_NAMESPACE) writes Receiver status, finalizers and Events and registers \
webhooks; a replica stops writing as soon as it cannot renew the lease within \
--leader-election-renew-deadline and keeps serving webhooks.

Beside notification-controller: --manage-receivers=false serves every Receiver at the path \
Flux computes and writes nothing on Receivers (no status, finalizers or Events) and registers \
no webhooks; notification-controller keeps doing those.

SIGTERM or SIGINT stops writing, releases the lease (with \
--leader-election-release-on-cancel), stops accepting connections and lets the requests in \
flight finish for up to 8 seconds, then exits 0: within Flux's terminationGracePeriodSeconds \
of 10 seconds. Add any preStop delay to the grace period.";

/// How log lines are written (`--log-encoding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogEncoding {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Console,
}

/// The least severe log lines written (`--log-level`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogLevel {
    /// Errors only.
    Error,
    /// Errors and what happens.
    Info,
    /// Also the details of each step.
    Debug,
    /// Everything.
    Trace,
}

impl LogLevel {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }
}

/// The flags of `fluxhook-receiver`. A flag whose value is named `BOOL` is one of Go's
/// booleans ([`go_booleans`]); build the command with [`Flags::command`], which applies that.
#[derive(Debug, Parser)]
#[command(
    name = "fluxhook-receiver",
    version,
    about = ABOUT,
    long_about = LONG_ABOUT,
    after_long_help = AFTER_LONG_HELP,
    // A flag given twice takes the last value, as Go's flags do.
    args_override_self = true,
)]
pub(crate) struct Flags {
    /// The address the webhook receiver endpoint binds to
    #[arg(long = "receiverAddr", value_name = "ADDR", default_value = ":9292")]
    pub(crate) receiver_addr: String,

    /// The address the health endpoint binds to (/healthz, /readyz)
    #[arg(long = "health-addr", value_name = "ADDR", default_value = ":9440")]
    pub(crate) health_addr: String,

    /// The address the metric endpoint binds to (/metrics)
    #[arg(long = "metrics-addr", value_name = "ADDR", default_value = ":8080")]
    pub(crate) metrics_addr: String,

    /// The number of Receivers reconciled at the same time (at least 1)
    #[arg(long = "concurrent", value_name = "INT", default_value = "4", value_parser = goflag::int)]
    pub(crate) concurrent: i64,

    /// Watch for Receivers in all namespaces; if false, only in the namespace of
    /// RUNTIME_NAMESPACE
    #[arg(
        long = "watch-all-namespaces",
        value_name = "BOOL",
        default_value = "true"
    )]
    pub(crate) watch_all_namespaces: bool,

    /// Watch only the Receivers with these labels, e.g. sharding.fluxcd.io/key=shard1
    /// (as Flux's other controllers)
    #[arg(long = "watch-label-selector", value_name = "SELECTOR")]
    pub(crate) watch_label_selector: Option<String>,

    /// Watch for Secrets with matching labels (accepted as Flux's; fluxhook serves tokens
    /// from memory, so a change to any Secret a Receiver references reconciles it at once)
    #[arg(
        long = "watch-configs-label-selector",
        value_name = "SELECTOR",
        default_value = "reconcile.fluxcd.io/watch=Enabled"
    )]
    pub(crate) watch_configs_label_selector: String,

    /// The maximum queries-per-second of requests sent to the Kubernetes API (client-side,
    /// unless the API server runs priority and fairness, as Flux; negative: no limit)
    #[arg(long = "kube-api-qps", value_name = "FLOAT", default_value = "50", value_parser = goflag::float32, allow_negative_numbers = true)]
    pub(crate) kube_api_qps: f32,

    /// The maximum burst queries-per-second of requests sent to the Kubernetes API
    #[arg(long = "kube-api-burst", value_name = "INT", default_value = "300", value_parser = goflag::int, allow_negative_numbers = true)]
    pub(crate) kube_api_burst: i64,

    /// Log encoding format
    #[arg(long = "log-encoding", value_enum, default_value_t = LogEncoding::Json)]
    pub(crate) log_encoding: LogEncoding,

    /// Log verbosity level
    #[arg(long = "log-level", value_enum, default_value_t = LogLevel::Info)]
    pub(crate) log_level: LogLevel,

    /// Enable leader election: only the holder of the Lease writes Receivers and registers
    /// webhooks; every replica serves webhooks
    #[arg(
        long = "enable-leader-election",
        value_name = "BOOL",
        default_value = "false"
    )]
    pub(crate) enable_leader_election: bool,

    /// Whether the leader steps down voluntarily (releases the Lease) on shutdown
    #[arg(
        long = "leader-election-release-on-cancel",
        value_name = "BOOL",
        default_value = "true"
    )]
    pub(crate) leader_election_release_on_cancel: bool,

    /// Interval at which non-leader candidates wait to force acquire leadership
    #[arg(long = "leader-election-lease-duration", value_name = "DURATION", default_value = "35s", value_parser = goflag::duration)]
    pub(crate) leader_election_lease_duration: Duration,

    /// Duration that the leader retries refreshing leadership before giving up (and
    /// stopping its writes)
    #[arg(long = "leader-election-renew-deadline", value_name = "DURATION", default_value = "30s", value_parser = goflag::duration)]
    pub(crate) leader_election_renew_deadline: Duration,

    /// Duration the candidates wait between tries of actions
    #[arg(long = "leader-election-retry-period", value_name = "DURATION", default_value = "5s", value_parser = goflag::duration)]
    pub(crate) leader_election_retry_period: Duration,

    /// When true, references between custom resources are allowed only if the reference
    /// and the referee are in the same namespace
    #[arg(
        long = "no-cross-namespace-refs",
        value_name = "BOOL",
        default_value = "false"
    )]
    pub(crate) no_cross_namespace_refs: bool,

    /// The minimum amount of time for which a Receiver being reconciled waits before a
    /// retry
    #[arg(long = "min-retry-delay", value_name = "DURATION", default_value = "750ms", value_parser = goflag::duration)]
    pub(crate) min_retry_delay: Duration,

    /// The maximum amount of time for which a Receiver being reconciled waits before a
    /// retry
    #[arg(long = "max-retry-delay", value_name = "DURATION", default_value = "15m", value_parser = goflag::duration)]
    pub(crate) max_retry_delay: Duration,

    /// A comma separated list of key=value pairs defining the state of experimental
    /// features: CacheSecretsAndConfigMaps, DisableConfigWatchers,
    /// ObjectLevelWorkloadIdentity
    #[arg(long = "feature-gates", value_name = "GATES", value_parser = known_feature_gates, action = clap::ArgAction::Append)]
    pub(crate) feature_gates: Vec<BTreeMap<String, bool>>,

    /// fluxhook: register Receivers' webhooks with Git hosts for annotated GitRepositories
    /// (hooks already registered are still deleted with their Receiver)
    #[arg(
        long = "enable-webhook-registration",
        value_name = "BOOL",
        default_value = "true"
    )]
    pub(crate) enable_webhook_registration: bool,

    /// fluxhook: write Receivers' status, finalizers and Events and register webhooks;
    /// false serves every Receiver beside notification-controller and writes nothing on
    /// Receivers
    #[arg(long = "manage-receivers", value_name = "BOOL", default_value = "true")]
    pub(crate) manage_receivers: bool,

    /// fluxhook: the issuer of the ID tokens gcr Receivers accept, discovered through its
    /// /.well-known/openid-configuration. Google's in production; set it only to test
    /// against a local issuer
    #[arg(long = "gcr-issuer-url", value_name = "URL", default_value = GOOGLE_ISSUER)]
    pub(crate) gcr_issuer_url: String,

    #[command(flatten)]
    pub(crate) not_served: NotServed,
}

/// notification-controller's flags for its event server, Alerts and Providers: accepted
/// with their syntax and defaults so that its Deployment's arguments work, and named at
/// start-up when given. A flag added here needs nothing else.
#[derive(Debug, Args)]
#[command(next_help_heading = "notification-controller flags not served by fluxhook")]
pub(crate) struct NotServed {
    /// The address the event endpoint binds to (Alerts)
    #[arg(long = "events-addr", value_name = "ADDR", default_value = ":9090")]
    pub(crate) events_addr: String,

    /// Interval in which the event rate limit has effect (Alerts)
    #[arg(long = "rate-limit-interval", value_name = "DURATION", default_value = "5m", value_parser = goflag::duration)]
    pub(crate) rate_limit_interval: Duration,

    /// Include the request's full path in the HTTP metrics. fluxhook never does: a webhook
    /// path is a credential
    #[arg(
        long = "export-http-path-metrics",
        value_name = "BOOL",
        default_value = "false"
    )]
    pub(crate) export_http_path_metrics: bool,

    /// The maximum size of the cache in number of tokens (Providers)
    #[arg(long = "token-cache-max-size", value_name = "INT", default_value = "100", value_parser = goflag::int, allow_negative_numbers = true)]
    pub(crate) token_cache_max_size: i64,

    /// The maximum duration a token is cached (Providers)
    #[arg(long = "token-cache-max-duration", value_name = "DURATION", default_value = "1h", value_parser = goflag::duration)]
    pub(crate) token_cache_max_duration: Duration,

    /// Default service account to use for workload identity when not specified in
    /// resources (Providers)
    #[arg(
        long = "default-service-account",
        value_name = "NAME",
        default_value = ""
    )]
    pub(crate) default_service_account: String,
}

/// A feature gate notification-controller v1.9 knows, and what it means for fluxhook.
pub(crate) struct FeatureGate {
    pub(crate) name: &'static str,
    pub(crate) in_fluxhook: &'static str,
}

/// notification-controller v1.9's gates (internal/features/features.go, with
/// fluxcd/pkg auth's `ObjectLevelWorkloadIdentity`), all off by default.
pub(crate) const FEATURE_GATES: [FeatureGate; 3] = [
    FeatureGate {
        name: "CacheSecretsAndConfigMaps",
        in_fluxhook: "no effect: fluxhook reads a Receiver's Secret when it reconciles it and \
                      keeps no Secret data in a cache",
    },
    FeatureGate {
        name: "DisableConfigWatchers",
        in_fluxhook: "no effect: fluxhook serves a token from memory, so it always watches \
                      the metadata of Secrets to stop serving a changed or deleted token at once",
    },
    FeatureGate {
        name: "ObjectLevelWorkloadIdentity",
        in_fluxhook: "no effect: it concerns the cloud credentials of Providers, which \
                      Receivers do not use",
    },
];

/// One `--feature-gates` value, whose gates must be known, as Flux's
/// `SupportedFeatures` requires.
fn known_feature_gates(value: &str) -> Result<BTreeMap<String, bool>, String> {
    let gates = goflag::feature_gates(value)?;
    for name in gates.keys() {
        if !FEATURE_GATES.iter().any(|gate| gate.name == name) {
            let known: Vec<&str> = FEATURE_GATES.iter().map(|gate| gate.name).collect();
            return Err(format!(
                "feature-gate '{name}' not supported (known: {})",
                known.join(", ")
            ));
        }
    }
    Ok(gates)
}

/// Makes every flag whose value is named `BOOL` read as Go's `flag.Bool` does: the flag
/// alone is true, `--flag=false` is false (any of `strconv.ParseBool`'s spellings), and a
/// separate word is never its value (`--flag false` is a usage error, as in Go).
fn go_booleans(command: Command) -> Command {
    command.mut_args(|arg| {
        if arg.get_value_names() != Some(&["BOOL".into()]) {
            return arg;
        }
        arg.num_args(0..=1)
            .require_equals(true)
            .default_missing_value("true")
            .value_parser(goflag::bool)
            .action(ArgAction::Set)
    })
}

impl Flags {
    /// The command line's definition: the derived one with Go's booleans.
    pub(crate) fn command() -> Command {
        go_booleans(<Self as CommandFactory>::command())
    }

    /// Parses `args` (the first is the program's name).
    pub(crate) fn try_parse_from<I, T>(args: I) -> Result<(Self, Vec<String>), clap::Error>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let matches = Self::command().try_get_matches_from(args)?;
        let flags = Self::from_arg_matches(&matches)?;
        Ok((flags, not_served_given(&matches)))
    }

    /// Parses the process's arguments; exits with a usage error on bad ones.
    pub(crate) fn from_command_line() -> (Self, Vec<String>) {
        Self::try_parse_from(std::env::args_os()).unwrap_or_else(|error| error.exit())
    }

    /// The feature gates given on the command line, with their values.
    pub(crate) fn feature_gates_given(&self) -> BTreeMap<String, bool> {
        self.feature_gates
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }
}

/// The `--flags` of [`NotServed`] that the command line sets.
fn not_served_given(matches: &ArgMatches) -> Vec<String> {
    let command = Flags::command();
    let Some(group) = command
        .get_groups()
        .find(|group| Some(group.get_id()) == NotServed::group_id().as_ref())
    else {
        return Vec::new();
    };
    group
        .get_args()
        .filter(|id| matches.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .filter_map(|id| command.get_arguments().find(|arg| arg.get_id() == id))
        .filter_map(|arg| arg.get_long().map(|long| format!("--{long}")))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("fluxhook-receiver").chain(args.iter().copied()))
            .map(|(flags, _)| flags)
    }

    /// Every flag notification-controller v1.9.3 accepts, with its default as its
    /// `--help` prints it (main.go and the fluxcd/pkg option structs it binds:
    /// runtime v0.110.0, cache v0.14.0, auth v0.54.0).
    const NOTIFICATION_CONTROLLER_FLAGS: [(&str, Option<&str>); 25] = [
        ("metrics-addr", Some(":8080")),
        ("events-addr", Some(":9090")),
        ("health-addr", Some(":9440")),
        ("receiverAddr", Some(":9292")),
        ("concurrent", Some("4")),
        ("rate-limit-interval", Some("5m")),
        ("export-http-path-metrics", Some("false")),
        ("watch-all-namespaces", Some("true")),
        (
            "watch-configs-label-selector",
            Some("reconcile.fluxcd.io/watch=Enabled"),
        ),
        ("kube-api-qps", Some("50")),
        ("kube-api-burst", Some("300")),
        ("log-encoding", Some("json")),
        ("log-level", Some("info")),
        ("enable-leader-election", Some("false")),
        ("leader-election-release-on-cancel", Some("true")),
        ("leader-election-lease-duration", Some("35s")),
        ("leader-election-renew-deadline", Some("30s")),
        ("leader-election-retry-period", Some("5s")),
        ("no-cross-namespace-refs", Some("false")),
        ("min-retry-delay", Some("750ms")),
        ("max-retry-delay", Some("15m")),
        ("feature-gates", None),
        ("token-cache-max-size", Some("100")),
        ("token-cache-max-duration", Some("1h")),
        ("default-service-account", Some("")),
    ];

    #[test]
    fn every_notification_controller_flag_is_accepted_with_its_default() {
        let command = Flags::command();
        for (name, default) in NOTIFICATION_CONTROLLER_FLAGS {
            let arg = command
                .get_arguments()
                .find(|arg| arg.get_long() == Some(name))
                .unwrap_or_else(|| unreachable!("--{name} is not accepted"));
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            let expected: Vec<String> = default.into_iter().map(str::to_string).collect();
            assert_eq!(defaults, expected, "--{name}");
        }
    }

    #[test]
    fn defaults_are_notification_controllers() {
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.receiver_addr, ":9292");
        assert_eq!(flags.health_addr, ":9440");
        assert_eq!(flags.metrics_addr, ":8080");
        assert_eq!(flags.concurrent, 4);
        assert!(flags.watch_all_namespaces);
        assert_eq!(flags.watch_label_selector, None);
        assert_eq!(
            flags.watch_configs_label_selector,
            "reconcile.fluxcd.io/watch=Enabled"
        );
        assert!((flags.kube_api_qps - 50.0).abs() < f32::EPSILON);
        assert_eq!(flags.kube_api_burst, 300);
        assert_eq!(flags.log_level, LogLevel::Info);
        assert_eq!(flags.log_encoding, LogEncoding::Json);
        assert!(!flags.enable_leader_election);
        assert!(flags.leader_election_release_on_cancel);
        assert_eq!(
            flags.leader_election_lease_duration,
            Duration::from_secs(35)
        );
        assert_eq!(
            flags.leader_election_renew_deadline,
            Duration::from_secs(30)
        );
        assert_eq!(flags.leader_election_retry_period, Duration::from_secs(5));
        assert!(!flags.no_cross_namespace_refs);
        assert_eq!(flags.min_retry_delay, Duration::from_millis(750));
        assert_eq!(flags.max_retry_delay, Duration::from_secs(900));
        assert!(flags.feature_gates.is_empty());
        assert!(flags.enable_webhook_registration);
        assert!(flags.manage_receivers);
        assert_eq!(flags.gcr_issuer_url, "https://accounts.google.com");
        assert_eq!(flags.not_served.events_addr, ":9090");
        assert_eq!(
            flags.not_served.rate_limit_interval,
            Duration::from_secs(300)
        );
        assert_eq!(
            flags.not_served.token_cache_max_duration,
            Duration::from_secs(3600)
        );
    }

    #[test]
    fn notification_controllers_deployment_args_parse() {
        // fluxcd/notification-controller v1.9.3, config/manager/deployment.yaml.
        let flags = parse(&[
            "--watch-all-namespaces",
            "--log-level=info",
            "--log-encoding=json",
            "--enable-leader-election",
        ])
        .unwrap();
        assert!(flags.watch_all_namespaces);
        assert!(flags.enable_leader_election);
    }

    #[test]
    fn flags_are_read_as_flux_writes_them() {
        let flags = parse(&[
            "--receiverAddr=127.0.0.1:9000",
            "--health-addr",
            "127.0.0.1:9001",
            "--metrics-addr=:9002",
            "--concurrent=0x10",
            "--watch-all-namespaces=false",
            "--watch-label-selector=sharding.fluxcd.io/key=shard1",
            "--watch-configs-label-selector=",
            "--kube-api-qps=-1",
            "--kube-api-burst",
            "20",
            "--no-cross-namespace-refs",
            "--log-level=debug",
            "--log-encoding=console",
            "--enable-leader-election=T",
            "--leader-election-release-on-cancel=0",
            "--leader-election-lease-duration=1m30s",
            "--leader-election-renew-deadline",
            "1m",
            "--leader-election-retry-period=2.5s",
            "--min-retry-delay=1s",
            "--max-retry-delay=1h",
            "--feature-gates=DisableConfigWatchers=true",
            "--feature-gates=CacheSecretsAndConfigMaps=true,DisableConfigWatchers=false",
            "--enable-webhook-registration=false",
            "--manage-receivers=false",
            "--gcr-issuer-url=http://127.0.0.1:5556",
            "--events-addr=:1",
            "--rate-limit-interval=1m",
            "--export-http-path-metrics",
            "--token-cache-max-size=0",
            "--token-cache-max-duration=30m",
            "--default-service-account=flux",
        ])
        .unwrap();
        assert_eq!(flags.receiver_addr, "127.0.0.1:9000");
        assert_eq!(flags.health_addr, "127.0.0.1:9001");
        assert_eq!(flags.metrics_addr, ":9002");
        assert_eq!(flags.concurrent, 16);
        assert!(!flags.watch_all_namespaces);
        assert_eq!(
            flags.watch_label_selector.as_deref(),
            Some("sharding.fluxcd.io/key=shard1")
        );
        assert_eq!(flags.watch_configs_label_selector, "");
        assert!((flags.kube_api_qps + 1.0).abs() < f32::EPSILON);
        assert_eq!(flags.kube_api_burst, 20);
        assert!(flags.no_cross_namespace_refs);
        assert_eq!(flags.log_level, LogLevel::Debug);
        assert_eq!(flags.log_encoding, LogEncoding::Console);
        assert!(flags.enable_leader_election);
        assert!(!flags.leader_election_release_on_cancel);
        assert_eq!(
            flags.leader_election_lease_duration,
            Duration::from_secs(90)
        );
        assert_eq!(
            flags.leader_election_renew_deadline,
            Duration::from_secs(60)
        );
        assert_eq!(
            flags.leader_election_retry_period,
            Duration::from_millis(2500)
        );
        assert_eq!(flags.min_retry_delay, Duration::from_secs(1));
        assert_eq!(flags.max_retry_delay, Duration::from_secs(3600));
        // Later values of --feature-gates win, as MapStringBool merges them.
        let gates = flags.feature_gates_given();
        assert_eq!(gates.get("DisableConfigWatchers"), Some(&false));
        assert_eq!(gates.get("CacheSecretsAndConfigMaps"), Some(&true));
        assert_eq!(gates.get("ObjectLevelWorkloadIdentity"), None);
        assert!(!flags.enable_webhook_registration);
        assert!(!flags.manage_receivers);
        assert_eq!(flags.gcr_issuer_url, "http://127.0.0.1:5556");
        assert!(flags.not_served.export_http_path_metrics);
        assert_eq!(flags.not_served.default_service_account, "flux");
    }

    #[test]
    fn the_flags_given_that_fluxhook_does_not_serve_are_named() {
        let matches = Flags::command()
            .try_get_matches_from([
                "fluxhook-receiver",
                "--events-addr=:9090",
                "--rate-limit-interval=1m",
                "--log-level=info",
            ])
            .unwrap();
        assert_eq!(
            not_served_given(&matches),
            ["--events-addr", "--rate-limit-interval"]
        );
        let matches = Flags::command()
            .try_get_matches_from(["fluxhook-receiver"])
            .unwrap();
        assert!(not_served_given(&matches).is_empty());
    }

    #[test]
    fn the_last_of_a_repeated_flag_wins() {
        let flags = parse(&["--metrics-addr=:1", "--metrics-addr=:2"]).unwrap();
        assert_eq!(flags.metrics_addr, ":2");
    }

    #[test]
    fn bad_values_are_usage_errors() {
        for args in [
            &["--log-level=verbose"][..],
            &["--log-encoding=text"][..],
            &["--watch-all-namespaces=maybe"][..],
            &["--enable-leader-election", "false"][..],
            &["--leader-election-lease-duration=35"][..],
            &["--min-retry-delay=-1s"][..],
            &["--concurrent=four"][..],
            &["--kube-api-qps=fast"][..],
            &["--feature-gates=NoSuchGate=true"][..],
            &["--feature-gates=DisableConfigWatchers"][..],
            &["--kubeconfig=/tmp/config"][..],
            &["--no-such-flag"][..],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
        let unknown_gate = parse(&["--feature-gates=NoSuchGate=true"]).unwrap_err();
        assert!(
            unknown_gate
                .to_string()
                .contains("feature-gate 'NoSuchGate' not supported"),
            "{unknown_gate}"
        );
    }

    #[test]
    fn the_drain_ends_within_the_grace_period() {
        // Flux's terminationGracePeriodSeconds (notification-controller's
        // config/manager/deployment.yaml), which deploy keeps.
        let grace = Duration::from_secs(10);
        assert!(DRAIN < grace);
        assert!(AFTER_LONG_HELP.contains("8 seconds"));
        assert!(AFTER_LONG_HELP.contains("terminationGracePeriodSeconds of 10 seconds"));
    }
}
