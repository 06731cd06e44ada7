//! `fluxhook-test-apiserver`: runs the fake Kubernetes API server with Flux's kinds registered,
//! optionally seeded from manifests, and writes a kubeconfig pointing at it.

use std::path::PathBuf;
use std::process::ExitCode;

use fluxhook_test_apiserver::TestApiServer;

const USAGE: &str = "usage: fluxhook-test-apiserver --kubeconfig PATH [--seed FILE_OR_DIR]...

Serves a fake Kubernetes API on 127.0.0.1 with Flux's kinds registered, seeded from the given
YAML/JSON manifests (CustomResourceDefinitions among them register more kinds), writes a
kubeconfig for it to PATH, prints its URL and runs until interrupted.";

struct Args {
    kubeconfig: PathBuf,
    seeds: Vec<PathBuf>,
}

/// The arguments, or `None` when help was asked for.
fn parse_args() -> Result<Option<Args>, String> {
    let mut kubeconfig = None;
    let mut seeds = Vec::new();
    let mut args = std::env::args_os().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || {
            args.next()
                .map(PathBuf::from)
                .ok_or(format!("{} needs a value", arg.to_string_lossy()))
        };
        match arg.to_str() {
            Some("--kubeconfig") => kubeconfig = Some(value()?),
            Some("--seed") => seeds.push(value()?),
            Some("-h" | "--help") => return Ok(None),
            _ => return Err(format!("unexpected argument {}", arg.to_string_lossy())),
        }
    }
    let kubeconfig = kubeconfig.ok_or("--kubeconfig is required")?;
    Ok(Some(Args { kubeconfig, seeds }))
}

async fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let server = TestApiServer::start_flux(&[]).await?;
    for seed in &args.seeds {
        server.seed_from_path(seed)?;
    }
    server.write_kubeconfig(&args.kubeconfig)?;
    println!("{}", server.url());
    tokio::signal::ctrl_c().await?;
    server.shutdown().await?;
    Ok(())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("fluxhook-test-apiserver: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("fluxhook-test-apiserver: {error}");
            ExitCode::FAILURE
        }
    }
}
