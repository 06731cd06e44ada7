//! The Receiver controller: keeps the [`EndpointIndex`] in step with the
//! cluster's Receivers and their Secrets, and writes their status as Flux's
//! notification-controller does.
//!
//! For each Receiver it reads the Secret named by `spec.secretRef`, compiles
//! the Receiver ([`Endpoint::compile`](crate::Endpoint::compile)) and
//! publishes the result:
//!
//! - compiled: [`EndpointState::Ready`] at its webhook path, or
//!   [`EndpointState::Suspended`] when `spec.suspend` is set; a rotated token
//!   moves the path.
//! - not compiled (Secret missing, invalid spec): [`EndpointState::NotReady`]
//!   at the path it was last served at, so senders get 503 rather than 404;
//!   nothing if it never had one.
//! - deleted: withdrawn.
//!
//! The status follows Flux: `webhookPath`, `observedGeneration`,
//! `lastHandledReconcileAt` and the `Ready`, `Reconciling` and `Stalled`
//! conditions, written only when they change. A missing Secret or token, or a
//! Secret the API server refuses (403), fails (5xx) or does not give within
//! [`ControllerConfig::secret_read_timeout`], is
//! `Ready=False` (reason `TokenNotFound`) with `Reconciling=True` (reason
//! `ProgressingWithRetry`) and is retried with exponential backoff; a spec
//! that cannot be served until it is edited (unknown type, invalid CEL, ...)
//! is `Ready=False` and `Stalled=True` with a message that says what to fix.
//! A suspended Receiver keeps its conditions, as in Flux. Like Flux, the
//! controller puts the finalizer `finalizers.fluxcd.io` on each Receiver and
//! removes it on deletion.
//!
//! A Receiver is reconciled when its generation or its
//! `reconcile.fluxcd.io/requestedAt` annotation changes, as soon as the Secret
//! it references changes or goes (labelled or not: a rotated or deleted token
//! stops authenticating within seconds, see `secrets.rs`), when another
//! Receiver claiming the same webhook path changes or goes, and every
//! `spec.interval` (10 minutes by default).
//!
//! Each reconciliation records Kubernetes Events on the Receiver as Flux does,
//! deduplicated as client-go does (see `events.rs`).
//!
//! With [`ControllerConfig::registration`] enabled (the default), the
//! controller also registers each served Receiver's webhook with the Git host
//! of every GitRepository it names that carries the annotations of
//! [`crate::registration`], reports the outcome in the `WebhooksRegistered`
//! condition and in Events, and deletes the hooks again when they are no
//! longer wanted or the Receiver is deleted. GitRepositories are watched
//! (metadata only) so that annotating one registers at once.
//!
//! Every replica reconciles every Receiver it watches and serves it; only the one whose
//! [`ControllerConfig::leadership`] leads writes (status, finalizers, Events, webhook
//! registration), and a write in flight is cut short when it stops leading. A replica that
//! starts leading reconciles every Receiver again, so that status and registration catch
//! up with what it serves. [`Leadership::never`] writes nothing at all: the mode for
//! running beside notification-controller, which keeps writing Receivers.
//!
//! Nothing written in a Receiver stops the controller: Receivers are watched
//! as untyped objects and read one by one, so one that does not deserialize
//! is reported on its own status.
//!
//! # Example
//!
//! ```no_run
//! use std::sync::Arc;
//! use fluxhook_receiver::EndpointIndex;
//! use fluxhook_receiver::controller::{self, ControllerConfig, Readiness};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let index = Arc::new(EndpointIndex::default());
//! let readiness = Readiness::default();
//! let config = ControllerConfig {
//!     namespace: Some("flux-system".to_string()),
//!     ..ControllerConfig::default()
//! };
//! // The webhook server looks endpoints up in `index`; `/readyz` reports
//! // `readiness.is_ready()`.
//! controller::run(client, index, config, readiness).await?;
//! # Ok(())
//! # }
//! ```

mod events;
mod prefetch;
mod readiness;
mod reconcile;
mod secrets;
mod status;
mod triggers;
mod watched;

use std::sync::Arc;
use std::time::Duration;

use fluxhook_api::{Receiver, resolve};
pub use fluxhook_leader_election::Leadership;
use fluxhook_trigger::git_repository::KIND as GIT_REPOSITORY;
use futures::{Stream, StreamExt, stream};
use kube::api::{Api, DynamicObject, PartialObjectMeta};
use kube::discovery::ApiResource;
use kube::runtime::controller::{self as runtime, Controller};
use kube::runtime::reflector::{ObjectRef, store::Writer};
use kube::runtime::{WatchStreamExt, watcher};

pub use readiness::Readiness;

pub(crate) use self::events::Recorder;
pub(crate) use self::reconcile::read_spec;

use self::readiness::InitialSync;
use self::reconcile::{Context, RetryDelays, reconcile, retry_later};
use self::triggers::Triggers;
pub(crate) use self::watched::WatchedReceiver;
#[cfg(doc)]
use crate::EndpointState;
use crate::endpoint::ReceiverKey;
use crate::registration::{RegistrationConfig, RepositoryChanges, receivers_naming};
use crate::{ControllerMetrics, EndpointIndex};

/// What the controller watches, how it retries and whether it writes; the defaults are
/// Flux's, for a single replica.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// The namespace whose Receivers to serve; `None` for all namespaces
    /// (Flux's `--watch-all-namespaces`, the default).
    pub namespace: Option<String>,
    /// Serve only the Receivers with these labels, e.g.
    /// `sharding.fluxcd.io/key=shard1` (Flux's `--watch-label-selector`).
    ///
    /// There is no selector of Secrets (Flux's `--watch-configs-label-selector`):
    /// every Secret a Receiver references is watched, since the token is
    /// served from memory and must stop authenticating as soon as it changes.
    pub label_selector: Option<String>,
    /// How many Receivers are reconciled at the same time (Flux's
    /// `--concurrent`, default 4); 0 sets no limit.
    pub concurrency: u16,
    /// The delay before the first retry of a failed reconciliation, doubled
    /// on each further failure (Flux's `--min-retry-delay`, default 750ms).
    pub min_retry_delay: Duration,
    /// The longest delay between retries (Flux's `--max-retry-delay`,
    /// default 15 minutes).
    pub max_retry_delay: Duration,
    /// Registering webhooks with Git hosts for annotated GitRepositories.
    pub registration: RegistrationConfig,
    /// Where the controller's metrics and work queue are recorded (register
    /// them with [`ControllerMetrics::register`]); by default series of
    /// their own that nothing exposes.
    pub metrics: ControllerMetrics,
    /// Whether this replica may write Receivers and register webhooks now:
    /// [`Leadership::always`] (the default) for a single replica, an elected one for
    /// several, [`Leadership::never`] beside notification-controller.
    pub leadership: Leadership,
    /// How long a reconciliation waits for the API server to give a Receiver's Secret
    /// before it reports the Receiver `Ready=False`, reason `TokenNotFound`, and stops
    /// serving it (default [`DEFAULT_SECRET_READ_TIMEOUT`]).
    pub secret_read_timeout: Duration,
}

/// The default of [`ControllerConfig::secret_read_timeout`]: 15 seconds.
///
/// Without a bound, a Secret read the API server does not answer would leave a Receiver
/// `Ready=True`, and served with a token that may have changed, for minutes: kube's client
/// has no read timeout and retries 429, 503 and 504 answers up to 15 times with a backoff
/// growing from 5 ms (about two and a half minutes in all), while kube-apiserver itself
/// gives up on a request after its `--request-timeout` (one minute). One Secret is read in
/// milliseconds, and a busy API server (priority and fairness queues) answers within
/// seconds, so 15 seconds tells "not answering" apart without reporting a slow moment as
/// an outage; it also frees the reconcile worker (one of `--concurrent`) the read held.
pub const DEFAULT_SECRET_READ_TIMEOUT: Duration = Duration::from_secs(15);

impl Default for ControllerConfig {
    fn default() -> Self {
        Self {
            namespace: None,
            label_selector: None,
            concurrency: 4,
            min_retry_delay: Duration::from_millis(750),
            max_retry_delay: Duration::from_secs(15 * 60),
            registration: RegistrationConfig::default(),
            metrics: ControllerMetrics::default(),
            leadership: Leadership::always(),
            secret_read_timeout: DEFAULT_SECRET_READ_TIMEOUT,
        }
    }
}

/// Why the controller stopped.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The API server refuses to list or watch Receivers or Secrets as asked
    /// (400 Bad Request), most likely because a label selector is invalid.
    /// Other API errors are retried.
    #[error("the API server refuses to watch Receivers or Secrets; check the label selectors: {0}")]
    WatchRefused(#[source] watcher::Error),
}

/// Runs the Receiver controller until the future is dropped: watches the
/// Receivers (and their Secrets) that `config` selects, publishes them into
/// `index` and writes their status. `readiness` is set once the Receivers
/// found at start have each been reconciled.
///
/// API errors are logged and retried with backoff; the only error returned
/// is a watch the API server refuses outright.
pub async fn run(
    client: kube::Client,
    index: Arc<EndpointIndex>,
    config: ControllerConfig,
    readiness: Readiness,
) -> Result<(), ControllerError> {
    let resource = ApiResource::erase::<Receiver>(&());
    let receivers: Api<WatchedReceiver> = match &config.namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let initial_sync = Arc::new(InitialSync::new(readiness));
    let metrics = config.metrics.clone();
    metrics.set_max_concurrent_reconciles(config.concurrency);

    let mut receiver_watch = watcher::Config::default();
    if let Some(selector) = &config.label_selector {
        receiver_watch = receiver_watch.labels(selector);
    }
    let writer = Writer::default();
    let store = writer.as_reader();
    let mut triggers = Triggers::new(Arc::clone(&initial_sync));
    let receiver_triggers = watcher(receivers, receiver_watch)
        .modify(|receiver| reconcile::slim(receiver))
        .reflect(writer)
        .flat_map(move |event| {
            let triggered = match event {
                Ok(event) => triggers.on_event(event).into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            };
            stream::iter(triggered)
        });
    let receiver_triggers = metrics.counted_triggers(receiver_triggers);

    let prefetch = Arc::new(prefetch::SecretPrefetch::new(
        client.clone(),
        store.clone(),
        config.secret_read_timeout,
    ));
    let (mut context, requeued) = Context::new(
        client.clone(),
        index,
        resource.clone(),
        RetryDelays {
            min: config.min_retry_delay,
            max: config.max_retry_delay,
        },
        initial_sync,
        config.registration.clone(),
        config.leadership.clone(),
    );
    context.secret_read_timeout = config.secret_read_timeout;
    context.prefetch = Some(Arc::clone(&prefetch));
    let secret_changes = secrets::changes(
        client.clone(),
        config.namespace.as_deref(),
        Arc::clone(&context.secret_versions),
        prefetch,
    );
    let context = Arc::new(context);
    let mut controller = Controller::for_stream(receiver_triggers, store.clone())
        .reconcile_on(counted(&metrics, secret_changes))
        .reconcile_on(counted(&metrics, requeued))
        // A new leader writes what the previous one may not have.
        .reconcile_all_on(config.leadership.terms());
    if config.registration.enabled {
        controller = watch_git_repositories(controller, &client, &config, store, resource);
    }
    let mut results = controller
        .with_config(runtime::Config::default().concurrency(config.concurrency))
        .run(
            metrics.reconciler(reconcile),
            metrics.error_policy(retry_later),
            Arc::clone(&context),
        )
        .boxed();

    while let Some(result) = results.next().await {
        match result {
            Ok(_) => {}
            Err(runtime::Error::ObjectNotFound(gone)) => {
                let key = ReceiverKey {
                    namespace: gone.namespace.unwrap_or_default(),
                    name: gone.name,
                };
                context.forget(&key);
                metrics.forget(&key);
            }
            // Logged, and retried, by the error policy.
            Err(runtime::Error::ReconcilerFailed(..)) => {}
            Err(runtime::Error::QueueError(error)) if is_refused(&error) => {
                return Err(ControllerError::WatchRefused(error));
            }
            Err(error) => tracing::warn!(%error, "watching Receivers or Secrets failed; retrying"),
        }
    }
    Ok(())
}

/// `receivers`, counted as added to the work queue.
fn counted(
    metrics: &ControllerMetrics,
    receivers: impl Stream<Item = ObjectRef<WatchedReceiver>> + Send + 'static,
) -> impl Stream<Item = ObjectRef<WatchedReceiver>> + Send + 'static {
    let count = metrics.counted_mapper(|receiver: ObjectRef<WatchedReceiver>| [receiver]);
    receivers.flat_map(move |receiver| stream::iter(count(receiver)))
}

/// Reconciles the Receivers naming a GitRepository when what registration
/// reads of it changes (its metadata is watched, in the Receivers' namespace
/// or all). The watch backs off on errors, so a cluster without Flux's
/// GitRepository kind costs little.
fn watch_git_repositories(
    controller: Controller<WatchedReceiver>,
    client: &kube::Client,
    config: &ControllerConfig,
    receivers: kube::runtime::reflector::Store<WatchedReceiver>,
    resource: ApiResource,
) -> Controller<WatchedReceiver> {
    // Flux's own kind: it always resolves.
    let git_repository = match resolve(None, GIT_REPOSITORY) {
        Ok(kind) => kind.to_api_resource(),
        Err(error) => {
            tracing::warn!(%error, "not watching GitRepositories");
            return controller;
        }
    };
    let repositories: Api<PartialObjectMeta<DynamicObject>> = match &config.namespace {
        Some(namespace) => Api::namespaced_with(client.clone(), namespace, &git_repository),
        None => Api::all_with(client.clone(), &git_repository),
    };
    let no_cross_namespace_refs = config.registration.no_cross_namespace_refs;
    let mut changes = RepositoryChanges::default();
    let changed = watcher(repositories, watcher::Config::default())
        .default_backoff()
        .flat_map(move |event| {
            let changed = match event {
                Ok(event) => changes.on_event(event).into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            };
            stream::iter(changed)
        });
    controller.watches_stream_with(
        changed,
        config.metrics.counted_mapper(move |repository| {
            let receivers = receivers.state();
            receivers_naming(
                &repository,
                receivers.iter().map(|receiver| &receiver.0),
                &resource,
                no_cross_namespace_refs,
            )
            .into_iter()
            .map(|named| {
                ObjectRef::new(&named.name).within(named.namespace.as_deref().unwrap_or_default())
            })
            .collect::<Vec<_>>()
        }),
        git_repository,
    )
}

/// Whether the API server refused a list or watch as malformed, which no
/// retry can fix.
fn is_refused(error: &watcher::Error) -> bool {
    match error {
        watcher::Error::InitialListFailed(kube::Error::Api(status))
        | watcher::Error::WatchStartFailed(kube::Error::Api(status))
        | watcher::Error::WatchFailed(kube::Error::Api(status)) => status.code == 400,
        watcher::Error::WatchError(status) => status.code == 400,
        _ => false,
    }
}
