//! `fluxhook-receiver`: serves Flux's webhook Receivers with
//! notification-controller's flags. See `--help`.
//!
//! Three servers run side by side: the webhook receiver (`--receiverAddr`,
//! `POST /hook/<digest>`), the health probes (`--health-addr`: `/healthz`
//! always answers 200 while the process runs; `/readyz` answers 200 once the
//! controller has served every Receiver it found at start, 503 before) and
//! the Prometheus metrics (`--metrics-addr`, `/metrics`). The controller
//! keeps the webhook server's endpoints in step with the cluster.
//!
//! `--gcr-issuer-url` replaces Google as the issuer of the ID tokens `gcr`
//! Receivers accept; it exists for tests against a local issuer.

mod cli;
mod goflag;
mod health;
mod listen;
mod logging;
mod ratelimit;
mod run;

use std::process::ExitCode;

use crate::cli::Flags;

#[tokio::main]
async fn main() -> ExitCode {
    let (flags, not_served) = Flags::from_command_line();
    let _flushed = logging::init(flags.log_level, flags.log_encoding);
    match run::run(flags, &not_served).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}
