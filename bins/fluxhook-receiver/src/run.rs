//! From flags to running servers, and down again on a signal.

use std::sync::Arc;

use anyhow::{Context, bail};
use fluxhook_leader_election::{ElectionConfig, Elector, unique_identity};
use fluxhook_oidc::{HttpKeySource, OidcVerifier, VerifierConfig};
use fluxhook_receiver::controller::{self, ControllerConfig, Leadership, Readiness};
use fluxhook_receiver::registration::RegistrationConfig;
use fluxhook_receiver::server::{self, App, Limits, ReceiverServer};
use fluxhook_receiver::{ClientMetrics, ControllerMetrics, EndpointIndex, Metrics, RuntimeMetrics};
use fluxhook_trigger::{BoundedRetry, Trigger};
use futures::StreamExt;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tower::util::option_layer;

use crate::cli::{DRAIN, FEATURE_GATES, Flags};
use crate::ratelimit::{self, Limit, RateLimitLayer};
use crate::{health, listen};

/// The environment variable naming the namespace to watch with
/// `--watch-all-namespaces=false`, and the leader election Lease's, as in Flux.
const RUNTIME_NAMESPACE: &str = "RUNTIME_NAMESPACE";

/// The leader election Lease: fluxhook's own, never notification-controller's
/// (`notification-controller-leader-election`), so that both can run side by side.
pub(crate) const LEASE_NAME: &str = "fluxhook-receiver-leader-election";

/// The name reported on Events and the election's field manager.
const CONTROLLER_NAME: &str = "fluxhook-receiver";

/// Serves until SIGTERM or SIGINT, then drains the servers; an error if
/// something could not start or the controller stopped.
pub(crate) async fn run(flags: Flags, not_served: &[String]) -> anyhow::Result<()> {
    log_compatibility(&flags, not_served);
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
    let mut config = kube::Config::infer()
        .await
        .map_err(|error| cluster_error(&error))?;
    if let Ok(agent) = http::HeaderValue::from_str(&user_agent()) {
        config.headers.push((http::header::USER_AGENT, agent));
    }
    let limit = api_rate_limit(&flags, &config)
        .await
        .map_err(|error| cluster_error(&error))??;
    let client = api_client(config.clone(), limit, &runtime_metrics.client, None)
        .map_err(|error| cluster_error(&error))?;
    // A sender waits about 10 s for its answer (GitHub), while kube's default
    // retries back off for minutes: the webhooks' client retries as the
    // trigger's policy says instead. It has a bucket of its own: a resync of
    // the controller does not delay webhooks.
    let patch_client = api_client(
        BoundedRetry::client_config(config),
        limit,
        &runtime_metrics.client,
        Some(BoundedRetry::default()),
    )
    .map_err(|error| cluster_error(&error))?;

    let (stop, stopping) = watch::channel(false);
    let (leadership, election) = leadership(&flags, &client, stopping.clone())?;
    if election.is_some() {
        tokio::spawn(report_leadership(
            leadership.clone(),
            runtime_metrics.controller.clone(),
        ));
    }
    controller_config.leadership = leadership;

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
    let mut servers = JoinSet::new();
    let limits = Limits {
        shutdown_grace: DRAIN,
        ..receiver.limits().clone()
    };
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
    // The controller, dropped with the select, is no longer watching or writing; the
    // election steps down (and releases the lease) while the servers drain.
    let _ = stop.send(true);
    let drained = async {
        while let Some(server) = servers.join_next().await {
            match server {
                Ok(Ok(name)) => tracing::info!("the {name} server stopped"),
                Ok(Err(error)) => tracing::error!("{error:#}"),
                Err(error) => tracing::error!(%error, "a server task failed"),
            }
        }
    };
    let stepped_down = async {
        if let Some(election) = election
            && tokio::time::timeout(DRAIN, election).await.is_err()
        {
            tracing::warn!("releasing the leader election lease did not finish in time");
        }
    };
    tokio::join!(drained, stepped_down);
    outcome
}

/// The client-side limit of API calls (`--kube-api-qps`, `--kube-api-burst`), none when
/// the API server runs priority and fairness, as Flux decides (see [`ratelimit`]).
async fn api_rate_limit(
    flags: &Flags,
    config: &kube::Config,
) -> Result<anyhow::Result<Option<Limit>>, kube::Error> {
    let limit = match ratelimit::limit(flags.kube_api_qps, flags.kube_api_burst) {
        Ok(limit) => limit,
        Err(message) => return Ok(Err(anyhow::anyhow!(message))),
    };
    if limit.is_none() {
        return Ok(Ok(None));
    }
    let probe = kube::Client::try_from(config.clone())?;
    if ratelimit::priority_and_fairness(&probe).await {
        tracing::info!(
            "the API server runs priority and fairness: no client-side limit of API calls"
        );
        return Ok(Ok(None));
    }
    Ok(Ok(limit))
}

/// A client of `config` whose calls are counted and wait for `limit`'s tokens.
fn api_client(
    config: kube::Config,
    limit: Option<Limit>,
    counted: &ClientMetrics,
    retry: Option<BoundedRetry>,
) -> Result<kube::Client, kube::Error> {
    // Retried inside the count: a request counts once, with its final answer,
    // as client-go's rest_client_requests_total (updateRequestResultMetric in
    // k8s.io/client-go/rest/request.go: "the final reply from the server").
    // Counted inside the limiter: a request waiting for its turn is not sent
    // yet. A retry waits its backoff, not a token (three at most, 2 s in all).
    let builder = kube::client::ClientBuilder::try_from(config.clone())?
        .with_layer(&option_layer(retry.map(BoundedRetry::layer)))
        .with_layer(&counted.layer(&config.cluster_url))
        .with_layer(&option_layer(limit.map(RateLimitLayer::new)));
    Ok(builder.build())
}

/// Who writes: nobody beside notification-controller, the elected replica with
/// `--enable-leader-election`, else this process. The election runs until `stopping`.
fn leadership(
    flags: &Flags,
    client: &kube::Client,
    mut stopping: watch::Receiver<bool>,
) -> anyhow::Result<(Leadership, Option<tokio::task::JoinHandle<()>>)> {
    if !flags.manage_receivers {
        if flags.enable_leader_election {
            tracing::info!("--manage-receivers=false: no replica writes, so no leader is elected");
        }
        return Ok((Leadership::never(), None));
    }
    if !flags.enable_leader_election {
        return Ok((Leadership::always(), None));
    }
    let namespace = match std::env::var(RUNTIME_NAMESPACE) {
        Ok(namespace) if !namespace.is_empty() => namespace,
        _ => bail!(
            "--enable-leader-election needs the namespace of its Lease in {RUNTIME_NAMESPACE}"
        ),
    };
    let config = ElectionConfig {
        lease_duration: flags.leader_election_lease_duration,
        renew_deadline: flags.leader_election_renew_deadline,
        retry_period: flags.leader_election_retry_period,
        release_on_cancel: flags.leader_election_release_on_cancel,
        reporting_controller: CONTROLLER_NAME.to_string(),
        ..ElectionConfig::new(LEASE_NAME, namespace, unique_identity(&pod_name()))
    };
    let (elector, leadership) = Elector::new(client.clone(), config)?;
    let election = tokio::spawn(elector.run(async move {
        let _ = stopping.wait_for(|stop| *stop).await;
    }));
    Ok((leadership, Some(election)))
}

/// Exports this replica's part in the election as `leader_election_master_status`, as
/// controller-runtime's leader elector does: 1 from the start of each term until it ends,
/// 0 otherwise (the dashboard's leader panel and the no-leader alert read it).
async fn report_leadership(leadership: Leadership, metrics: ControllerMetrics) {
    metrics.set_leader(LEASE_NAME, false);
    let mut terms = std::pin::pin!(leadership.terms());
    while terms.next().await.is_some() {
        metrics.set_leader(LEASE_NAME, true);
        // `lost` may wake at the term's old end just as a renewal extends it.
        while leadership.is_leader() {
            leadership.lost().await;
        }
        metrics.set_leader(LEASE_NAME, false);
    }
}

/// client-go's default User-Agent, `<command>/v<version> (<os>/<arch>) ...`, with the
/// command from argv[0] as client-go takes it: API server audit logs name the binary.
fn user_agent() -> String {
    let command = std::env::args_os()
        .next()
        .and_then(|arg0| {
            std::path::Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| CONTROLLER_NAME.to_string());
    // Go's names for the platform, as client-go writes them.
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    };
    format!(
        "{command}/v{} ({}/{arch}) fluxhook",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::OS
    )
}

/// The pod's name, as Kubernetes sets HOSTNAME in a container; the host's name elsewhere.
fn pod_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
        .map(|name| name.trim().to_string())
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| CONTROLLER_NAME.to_string())
}

/// One line for the flags of notification-controller that fluxhook accepts and does not
/// serve, and one per feature gate given, saying what it does here.
fn log_compatibility(flags: &Flags, not_served: &[String]) {
    if !not_served.is_empty() {
        tracing::info!(
            flags = %not_served.join(" "),
            "accepted for notification-controller's Deployment, not served by fluxhook \
             (they belong to notification-controller's event server, Alerts and Providers)"
        );
    }
    for (name, enabled) in flags.feature_gates_given() {
        let meaning = FEATURE_GATES
            .iter()
            .find(|gate| gate.name == name)
            .map_or("", |gate| gate.in_fluxhook);
        tracing::info!(gate = %name, enabled, "loading feature gate: {meaning}");
    }
}

/// What the controller watches and how it retries: Flux's `--watch-all-namespaces` with
/// `RUNTIME_NAMESPACE`, `--watch-label-selector`, `--watch-configs-label-selector`,
/// `--concurrent` and the retry delays; webhook registration follows
/// `--enable-webhook-registration`, `--manage-receivers` and `--no-cross-namespace-refs`.
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
    if flags.min_retry_delay > flags.max_retry_delay {
        bail!(
            "--min-retry-delay ({:?}) must not be longer than --max-retry-delay ({:?})",
            flags.min_retry_delay,
            flags.max_retry_delay
        );
    }
    Ok(ControllerConfig {
        namespace,
        label_selector: flags
            .watch_label_selector
            .clone()
            .filter(|selector| !selector.is_empty()),
        // controller-runtime runs one reconciliation at a time for 0 or less.
        concurrency: u16::try_from(flags.concurrent.max(1)).unwrap_or(u16::MAX),
        min_retry_delay: flags.min_retry_delay,
        max_retry_delay: flags.max_retry_delay,
        registration: RegistrationConfig {
            // Beside notification-controller nothing is registered either.
            enabled: flags.enable_webhook_registration && flags.manage_receivers,
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
