//! The command line: notification-controller's flag names and defaults.

use clap::{Parser, ValueEnum};
use fluxhook_oidc::GOOGLE_ISSUER;

const ABOUT: &str = "Serves Flux's webhook Receivers";

const LONG_ABOUT: &str = "\
Serves Flux's webhook Receivers (notification.toolkit.fluxcd.io/v1): watches the Receivers \
and their Secrets, writes their status as Flux's notification-controller does, and answers \
POST /hook/<digest> by asking Flux to reconcile the objects each Receiver names.

The cluster is reached through KUBECONFIG, or the in-cluster configuration. With \
--watch-all-namespaces=false only the Receivers of the namespace named by the \
RUNTIME_NAMESPACE environment variable are served.";

const AFTER_LONG_HELP: &str = "\
Boolean flags take a value as Flux's do: --watch-all-namespaces=false.

SIGTERM or SIGINT stops accepting connections, lets the requests in flight finish (for up to \
30 seconds) and exits 0.";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogEncoding {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Console,
}

/// The least severe log lines written.
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

/// The flags of `fluxhook-receiver`.
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
    /// The address the webhook receiver server binds to
    #[arg(long = "receiverAddr", value_name = "ADDR", default_value = ":9292")]
    pub(crate) receiver_addr: String,

    /// The address the health endpoints (/healthz, /readyz) bind to
    #[arg(long = "health-addr", value_name = "ADDR", default_value = ":9440")]
    pub(crate) health_addr: String,

    /// The address the metrics endpoint (/metrics) binds to
    #[arg(long = "metrics-addr", value_name = "ADDR", default_value = ":8080")]
    pub(crate) metrics_addr: String,

    /// Watch Receivers in all namespaces; if false, only in the namespace
    /// of RUNTIME_NAMESPACE
    #[arg(
        long = "watch-all-namespaces",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = true,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
    )]
    pub(crate) watch_all_namespaces: bool,

    /// Watch only the Receivers with these labels, e.g.
    /// sharding.fluxcd.io/key=shard1
    #[arg(long = "watch-label-selector", value_name = "SELECTOR")]
    pub(crate) watch_label_selector: Option<String>,

    /// Refuse Receivers' references to objects in other namespaces
    #[arg(
        long = "no-cross-namespace-refs",
        value_name = "BOOL",
        num_args = 0..=1,
        require_equals = true,
        default_value_t = false,
        default_missing_value = "true",
        action = clap::ArgAction::Set,
    )]
    pub(crate) no_cross_namespace_refs: bool,

    /// The least severe log lines written
    #[arg(long = "log-level", value_enum, default_value_t = LogLevel::Info)]
    pub(crate) log_level: LogLevel,

    /// How log lines are written
    #[arg(long = "log-encoding", value_enum, default_value_t = LogEncoding::Json)]
    pub(crate) log_encoding: LogEncoding,

    /// The issuer of the ID tokens gcr Receivers accept, discovered through
    /// its /.well-known/openid-configuration. Google's in production; set it
    /// only to test against a local issuer
    #[arg(long = "gcr-issuer-url", value_name = "URL", default_value = GOOGLE_ISSUER)]
    pub(crate) gcr_issuer_url: String,
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn parse(args: &[&str]) -> Result<Flags, clap::Error> {
        Flags::try_parse_from(std::iter::once("fluxhook-receiver").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_are_notification_controllers() {
        let flags = parse(&[]).unwrap();
        assert_eq!(flags.receiver_addr, ":9292");
        assert_eq!(flags.health_addr, ":9440");
        assert_eq!(flags.metrics_addr, ":8080");
        assert!(flags.watch_all_namespaces);
        assert!(!flags.no_cross_namespace_refs);
        assert_eq!(flags.watch_label_selector, None);
        assert_eq!(flags.log_level, LogLevel::Info);
        assert_eq!(flags.log_encoding, LogEncoding::Json);
        assert_eq!(flags.gcr_issuer_url, "https://accounts.google.com");
    }

    #[test]
    fn flags_are_read_as_flux_writes_them() {
        let flags = parse(&[
            "--receiverAddr=127.0.0.1:9000",
            "--health-addr",
            "127.0.0.1:9001",
            "--metrics-addr=:9002",
            "--watch-all-namespaces=false",
            "--watch-label-selector=sharding.fluxcd.io/key=shard1",
            "--no-cross-namespace-refs",
            "--log-level=debug",
            "--log-encoding=console",
            "--gcr-issuer-url=http://127.0.0.1:5556",
        ])
        .unwrap();
        assert_eq!(flags.receiver_addr, "127.0.0.1:9000");
        assert_eq!(flags.health_addr, "127.0.0.1:9001");
        assert_eq!(flags.metrics_addr, ":9002");
        assert!(!flags.watch_all_namespaces);
        assert_eq!(
            flags.watch_label_selector.as_deref(),
            Some("sharding.fluxcd.io/key=shard1")
        );
        assert!(flags.no_cross_namespace_refs);
        assert_eq!(flags.log_level, LogLevel::Debug);
        assert_eq!(flags.log_encoding, LogEncoding::Console);
        assert_eq!(flags.gcr_issuer_url, "http://127.0.0.1:5556");

        for (args, expected) in [
            (&["--no-cross-namespace-refs=true"][..], true),
            (&["--no-cross-namespace-refs=false"][..], false),
            (&["--watch-all-namespaces"][..], false),
        ] {
            let flags = parse(args).unwrap();
            let value = match args[0].starts_with("--no-cross") {
                true => flags.no_cross_namespace_refs,
                false => !flags.watch_all_namespaces,
            };
            assert_eq!(value, expected, "{args:?}");
        }
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
            &["--no-such-flag"][..],
        ] {
            assert!(parse(args).is_err(), "{args:?}");
        }
    }
}
