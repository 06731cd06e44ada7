//! From flags to running servers, and down again on a signal.

use std::sync::Arc;

use anyhow::{Context, bail};
use fluxhook_oidc::{HttpKeySource, OidcVerifier, VerifierConfig};
use fluxhook_receiver::controller::{self, ControllerConfig, Readiness};
use fluxhook_receiver::registration::RegistrationConfig;
use fluxhook_receiver::server::{self, App, Limits, ReceiverServer};
use fluxhook_receiver::{EndpointIndex, Metrics, RuntimeMetrics};
use fluxhook_trigger::Trigger;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::cli::Flags;
use crate::{health, listen};

/// The environment variable naming the namespace to watch with
/// `--watch-all-namespaces=false`, as in Flux.
const RUNTIME_NAMESPACE: &str = "RUNTIME_NAMESPACE";

/// Serves until SIGTERM or SIGINT, then drains the servers; an error if
/// something could not start or the controller stopped.
pub(crate) async fn run(flags: Flags) -> anyhow::Result<()> {
    // The controller's, the API clients' and the process's series, served
    // with the webhook server's.
    let runtime_metrics = RuntimeMetrics::new();
    let mut metrics = Metrics::new();
    runtime_metrics.register(metrics.registry_mut());
    let metrics = Arc::new(metrics);
    runtime_metrics.controller.on_forget({
        let metrics = Arc::clone(&metrics);
        move |receiver| metrics.forget_receiver(receiver)
    });
    let mut controller_config = controller_config(&flags)?;
    controller_config.metrics = runtime_metrics.controller.clone();
    // kube's message already names every cause.
    let cluster_error = |error: &dyn std::fmt::Display| {
        anyhow::anyhow!("cannot reach the cluster (set KUBECONFIG or run in a pod): {error}")
    };
    let config = kube::Config::infer()
        .await
        .map_err(|error| cluster_error(&error))?;
    let client = runtime_metrics
        .client
        .client(config.clone())
        .map_err(|error| cluster_error(&error))?;
    // A sender waits about 10 s for its answer (GitHub), while kube's default
    // retries of 429/503/504 back off for minutes: the patches of a webhook
    // fail fast instead (500) and the next delivery asks again.
    let mut patch_config = config;
    patch_config.default_retry = false;
    let patch_client = runtime_metrics
        .client
        .client(patch_config)
        .map_err(|error| cluster_error(&error))?;

    let index = Arc::new(EndpointIndex::default());
    let readiness = Readiness::default();
    let trigger = Trigger::new(patch_client).no_cross_namespace_refs(flags.no_cross_namespace_refs);
    let keys = HttpKeySource::new().context("cannot build the OIDC key fetcher")?;
    let verifier = OidcVerifier::with_config(
        Arc::new(keys),
        VerifierConfig {
            google_issuer: flags.gcr_issuer_url.clone(),
            ..VerifierConfig::default()
        },
    );
    let receiver = ReceiverServer::new(Arc::clone(&index), trigger, Arc::new(verifier))
        .with_metrics(Arc::clone(&metrics));

    // Every address is bound before anything runs: one in use fails the start.
    let listeners = [
        // The webhook server's app counts its connections in the metrics.
        ("webhook receiver", &flags.receiver_addr, receiver.app()),
        (
            "health",
            &flags.health_addr,
            health::router(readiness.clone()).into(),
        ),
        (
            "metrics",
            &flags.metrics_addr,
            Arc::clone(&metrics).router().into(),
        ),
    ];
    let (stop, stopping) = watch::channel(false);
    let mut servers = JoinSet::new();
    let limits = receiver.limits().clone();
    for (name, addr, app) in listeners {
        let listener = listen::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr} for the {name} server"))?;
        tracing::info!(addr = %listener.local_addr()?, "starting the {name} server");
        servers.spawn(serve(name, listener, app, limits.clone(), stopping.clone()));
    }

    let outcome = tokio::select! {
        () = shutdown_signal() => {
            tracing::info!("shutting down: no new connections, draining the requests in flight");
            Ok(())
        }
        result = controller::run(client, index, controller_config, readiness) => match result {
            Ok(()) => Err(anyhow::anyhow!("the Receiver controller stopped")),
            Err(error) => Err(anyhow::Error::new(error).context("the Receiver controller stopped")),
        },
        Some(server) = servers.join_next() => Err(anyhow::anyhow!(
            "a server stopped: {}",
            match server {
                Ok(Ok(name)) => format!("{name}, unexpectedly"),
                Ok(Err(error)) => format!("{error:#}"),
                Err(error) => error.to_string(),
            }
        )),
    };
    // The controller, dropped with the select, is no longer watching.
    let _ = stop.send(true);
    while let Some(server) = servers.join_next().await {
        match server {
            Ok(Ok(name)) => tracing::info!("the {name} server stopped"),
            Ok(Err(error)) => tracing::error!("{error:#}"),
            Err(error) => tracing::error!(%error, "a server task failed"),
        }
    }
    outcome
}

/// What the controller watches: Flux's `--watch-all-namespaces` with
/// `RUNTIME_NAMESPACE`, and `--watch-label-selector`; webhook registration
/// follows `--no-cross-namespace-refs` as the receiver server does.
fn controller_config(flags: &Flags) -> anyhow::Result<ControllerConfig> {
    let namespace = if flags.watch_all_namespaces {
        None
    } else {
        match std::env::var(RUNTIME_NAMESPACE) {
            Ok(namespace) if !namespace.is_empty() => Some(namespace),
            _ => bail!(
                "--watch-all-namespaces=false needs the namespace to watch in {RUNTIME_NAMESPACE}"
            ),
        }
    };
    Ok(ControllerConfig {
        namespace,
        label_selector: flags
            .watch_label_selector
            .clone()
            .filter(|selector| !selector.is_empty()),
        registration: RegistrationConfig {
            no_cross_namespace_refs: flags.no_cross_namespace_refs,
            ..RegistrationConfig::default()
        },
        ..ControllerConfig::default()
    })
}

/// Serves `app` until `stopping` turns true; the server's name when it
/// has drained.
async fn serve(
    name: &'static str,
    listener: tokio::net::TcpListener,
    app: App,
    limits: Limits,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<&'static str> {
    let stopped = async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    };
    server::serve(listener, app, &limits, stopped)
        .await
        .with_context(|| format!("the {name} server failed"))?;
    Ok(name)
}

/// SIGTERM (Kubernetes stopping the pod) or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(error) => {
                tracing::warn!(%error, "cannot listen for SIGTERM; only SIGINT stops the server");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
