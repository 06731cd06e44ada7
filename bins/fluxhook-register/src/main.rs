//! `fluxhook-register`: registers Flux Receiver webhooks with Git hosts, for one repository
//! given by flags or for every GitRepository a Receiver in the cluster names; with
//! `--dry-run`, `--check` (exit 2 on drift) and `--delete`. See `--help` and
//! docs/registration.md.

mod cli;
mod cluster;
mod credentials;
mod execute;
mod plan;
mod report;

use std::io::Write;
use std::process::ExitCode;

use clap::Parser;

use crate::cli::{Cli, OutputFormat};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Usage errors exit 1, not clap's 2: under --check, 2 means drift.
            let _ = error.print();
            return match error.use_stderr() {
                true => ExitCode::from(report::EXIT_ERROR),
                false => ExitCode::SUCCESS,
            };
        }
    };
    let env = |name: &str| std::env::var(name).ok();
    let plan = match plan::build(&cli, &env).await {
        Ok(plan) => plan,
        Err(error) => {
            eprintln!("error: {error:#}");
            return ExitCode::from(report::EXIT_ERROR);
        }
    };
    let results = execute::execute(&plan).await;
    let out = match cli.output {
        OutputFormat::Text => report::text(&plan, &results),
        OutputFormat::Json => report::json(&plan, &results) + "\n",
    };
    // A closed stdout (`| head`) must not turn a result into a panic.
    let _ = std::io::stdout().write_all(out.as_bytes());
    let _ = std::io::stderr().write_all(report::errors(&plan, &results).as_bytes());
    ExitCode::from(report::exit_status(plan.mode, &results))
}
