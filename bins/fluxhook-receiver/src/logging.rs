//! Log lines as `--log-level` and `--log-encoding` ask.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::cli::{LogEncoding, LogLevel};

/// Writes log lines to stderr. The level applies to fluxhook's own lines and
/// kube's; the HTTP and TLS libraries below stay at `info`, as their debug
/// lines describe every read and write.
pub(crate) fn init(level: LogLevel, encoding: LogEncoding) {
    let level = level.as_str();
    let filter = EnvFilter::new(format!(
        "{level},hyper=info,hyper_util=info,h2=info,rustls=info,tower=info"
    ));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only for a person at a terminal, not in a log file.
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match encoding {
        LogEncoding::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .init(),
        LogEncoding::Console => builder.init(),
    }
}
