//! One reconciliation of one Receiver: read its Secret, compile it, publish
//! it into the index, write its status and record Events as Flux does.
//!
//! Every write the controller makes on a Receiver goes through [`edit_finalizers`],
//! [`write_status`] and [`Context::record`] (Events), so that whether this replica may write
//! is decided in those few places.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fluxhook_api::{
    DEFAULT_INTERVAL, FINALIZER, RECONCILE_REQUEST_ANNOTATION, Receiver, ReceiverStatus,
    WebhookPath, condition,
};
use fluxhook_leader_election::Leadership;
use futures::channel::mpsc;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use kube::runtime::reflector::ObjectRef;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use super::events::{self, Event, Recorder};
use super::prefetch::SecretPrefetch;
use super::readiness::InitialSync;
use super::secrets::SecretVersions;
use super::status::{Observed, Outcome, next_status, with_condition};
use super::triggers::key_of;
use super::watched::WatchedReceiver;
use crate::endpoint::{Endpoint, InvalidReceiver, ReceiverKey, TOKEN_KEY};
use crate::index::{EndpointIndex, EndpointState, Standing};
use crate::registration::{
    CLEANUP_FINALIZER, CONDITION_TYPE, DELIVERY_CONDITION_TYPE, Registrar, RegistrationConfig,
    Report, Served,
};

/// The field manager of the controller's writes.
const FIELD_MANAGER: &str = "fluxhook-receiver";

/// What every reconciliation shares.
pub(crate) struct Context {
    pub(crate) client: kube::Client,
    pub(crate) index: Arc<EndpointIndex>,
    pub(crate) resource: ApiResource,
    pub(crate) retry: RetryDelays,
    pub(crate) initial_sync: Arc<InitialSync>,
    /// What each Receiver read of its Secret, for the Secret watch to compare.
    pub(crate) secret_versions: Arc<SecretVersions>,
    /// How long a Secret read may take ([`super::ControllerConfig::secret_read_timeout`]).
    pub(crate) secret_read_timeout: Duration,
    /// The Secrets listed at start-up, given in place of GETs until the controller is ready.
    pub(crate) prefetch: Option<Arc<SecretPrefetch>>,
    /// Registers the Receivers' webhooks with Git hosts.
    registrar: Registrar,
    /// Records Events on Receivers.
    recorder: Arc<Recorder>,
    /// Receivers to reconcile again because another one changed their standing at their
    /// webhook path.
    requeue: mpsc::UnboundedSender<ObjectRef<WatchedReceiver>>,
    /// Consecutive failures per Receiver, for the retry backoff.
    failures: Mutex<HashMap<ReceiverKey, u32>>,
    /// Whether this replica writes: see [`Context::write`].
    leadership: Leadership,
}

impl Context {
    /// The context, and the Receivers it asks to reconcile again (for the controller to
    /// reconcile on).
    pub(crate) fn new(
        client: kube::Client,
        index: Arc<EndpointIndex>,
        resource: ApiResource,
        retry: RetryDelays,
        initial_sync: Arc<InitialSync>,
        registration: RegistrationConfig,
        leadership: Leadership,
    ) -> (Self, mpsc::UnboundedReceiver<ObjectRef<WatchedReceiver>>) {
        let recorder = Arc::new(Recorder::new(client.clone()));
        let (requeue, requeued) = mpsc::unbounded();
        let context = Self {
            registrar: Registrar::new(
                client.clone(),
                resource.clone(),
                patch_params(),
                Arc::clone(&recorder),
                registration,
            ),
            recorder,
            prefetch: None,
            client,
            index,
            resource,
            retry,
            initial_sync,
            secret_versions: Arc::default(),
            secret_read_timeout: super::DEFAULT_SECRET_READ_TIMEOUT,
            requeue,
            failures: Mutex::default(),
            leadership,
        };
        (context, requeued)
    }

    /// The write gate: every write on a Receiver (status, finalizers, Events, webhook
    /// registration) runs through here. It runs only while this replica leads and is
    /// dropped where it stands when it stops leading; `None` when it did not run to its
    /// end, which the reconciliation takes as "another replica writes".
    pub(crate) async fn write<F: Future>(&self, write: F) -> Option<F::Output> {
        self.leadership.lead(write).await.ok()
    }

    /// Forgets a Receiver that is gone: withdraws it and counts it as handled.
    pub(crate) fn forget(&self, key: &ReceiverKey) {
        let affected = self.index.withdraw(key);
        self.reconcile_again(affected);
        self.failures().remove(key);
        self.secret_versions.forget(key);
        self.recorder.forget(&key.namespace, &key.name);
        self.reconciled(key);
    }

    /// Counts `key` as reconciled; once every Receiver found at start is, the start-up
    /// Secret lists are dropped.
    fn reconciled(&self, key: &ReceiverKey) {
        if self.initial_sync.reconciled(key)
            && let Some(prefetch) = &self.prefetch
        {
            prefetch.close();
        }
    }

    /// Asks the controller to reconcile these Receivers again.
    fn reconcile_again(&self, receivers: Vec<ReceiverKey>) {
        for receiver in receivers {
            let object = ObjectRef::new(&receiver.name).within(&receiver.namespace);
            // Closed only when the controller has stopped.
            let _ = self.requeue.unbounded_send(object);
        }
    }

    /// Records an Event on the Receiver `object` (the only way the controller writes
    /// Events), through the write gate.
    async fn record(&self, object: &DynamicObject, event: &Event) {
        let regarding = object.object_ref(&self.resource);
        self.write(self.recorder.publish(&regarding, event)).await;
    }

    fn failures(&self) -> std::sync::MutexGuard<'_, HashMap<ReceiverKey, u32>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn receivers(&self, namespace: &str) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), namespace, &self.resource)
    }
}

/// The exponential backoff of failed reconciliations, as Flux's
/// `--min-retry-delay` and `--max-retry-delay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetryDelays {
    pub(crate) min: Duration,
    pub(crate) max: Duration,
}

impl RetryDelays {
    /// The delay before the retry after `failures` consecutive failures
    /// (at least one): the minimum, doubled for each failure after the first.
    pub(crate) fn after(self, failures: u32) -> Duration {
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1))
            .unwrap_or(u32::MAX);
        self.min.saturating_mul(factor).min(self.max)
    }
}

/// Why a reconciliation is retried.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReconcileError {
    /// The Secret or a key it needs is missing (reported on the status).
    #[error(transparent)]
    Token(InvalidReceiver),
    /// The API server did not give the Secret for a reason other than "not found": a
    /// refusal (403), an error (5xx), no answer in time (reported on the status, as Flux
    /// words it).
    #[error("unable to read token from secret '{namespace}/{name}': {reason}")]
    ReadSecret {
        namespace: String,
        name: String,
        #[source]
        reason: ReadFailure,
    },
    /// The API server refused a write to the Receiver.
    #[error("cannot update the Receiver's {part}: {source}")]
    Write {
        part: &'static str,
        source: ApiFailure,
    },
    /// A Git host or the API server failed registering or deleting webhooks (reported on
    /// the status).
    #[error("webhook registration: {0}")]
    Registration(String),
    /// Git hosts rate limited registration (reported on the status): retried once the wait
    /// they asked for is over, not sooner.
    #[error("webhook registration: {why}; retrying in {wait:?}")]
    HostWait { why: String, wait: Duration },
}

/// Reconciles one Receiver (the controller's reconciler).
pub(crate) async fn reconcile(
    object: Arc<WatchedReceiver>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let key = key_of(&object);
    let result = reconcile_receiver(&object, &key, &ctx).await;
    match &result {
        Ok(_) => {
            ctx.failures().remove(&key);
        }
        // As Flux: a Warning with the error on each failed reconciliation. Registration
        // failures have recorded their own, naming the GitRepository.
        Err(ReconcileError::Registration(_) | ReconcileError::HostWait { .. }) => {}
        Err(error) if object.metadata.deletion_timestamp.is_none() => {
            ctx.record(&object, &events::failed(&error.to_string()))
                .await;
        }
        Err(_) => {}
    }
    ctx.reconciled(&key);
    result
}

/// Schedules the retry of a failed reconciliation (the controller's error
/// policy).
pub(crate) fn retry_later(
    object: Arc<WatchedReceiver>,
    error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let key = key_of(&object);
    let failures = {
        let mut failures = ctx.failures();
        let count = failures.entry(key.clone()).or_default();
        *count = count.saturating_add(1);
        *count
    };
    let delay = retry_delay(ctx.retry, failures, error);
    // The error itself is logged, with the reconcile's fields, where the
    // reconciliation ends (ControllerMetrics::reconciler).
    tracing::debug!(receiver = %key, retry_in = ?delay, "retrying the Receiver's reconciliation");
    Action::requeue(delay)
}

/// The delay before retrying after `failures` consecutive failures, the last one `error`:
/// the backoff, and never less than a Git host's requested wait.
fn retry_delay(delays: RetryDelays, failures: u32, error: &ReconcileError) -> Duration {
    let backoff = delays.after(failures);
    match error {
        ReconcileError::HostWait { wait, .. } => backoff.max(*wait),
        _ => backoff,
    }
}

/// What to serve for a Receiver, and how its status reads.
enum Verdict {
    /// Serve it, and reconcile it again after its interval.
    Serve {
        endpoint: Endpoint,
        interval: Duration,
        /// Its Secret's token, for registering its webhooks.
        token: Option<String>,
    },
    /// `spec.suspend`: known, refusing requests.
    Suspend {
        /// The Receiver compiled, or why it cannot be.
        compiled: Result<Endpoint, String>,
        /// `spec.interval`, for Flux's success Event.
        interval: Duration,
    },
    /// Its Secret does not serve, or cannot be read: retried with backoff.
    Retry(ReconcileError),
    /// Its spec cannot be served until it changes.
    Stall {
        reason: &'static str,
        detail: String,
    },
}

async fn reconcile_receiver(
    object: &DynamicObject,
    key: &ReceiverKey,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let api = ctx.receivers(&key.namespace);
    if object.metadata.deletion_timestamp.is_some() {
        let affected = ctx.index.withdraw(key);
        ctx.reconcile_again(affected);
        return ctx
            .write(finalize(&api, object.clone(), key, ctx))
            .await
            .unwrap_or(Ok(Action::await_change()));
    }
    let mut object = with_finalizer(&api, object, ctx).await?;
    let current = current_status(&object);
    let verdict = judge(&object, key, ctx).await?;
    let Applied {
        outcome,
        mut result,
        registering,
        interval,
    } = apply(verdict, &object, key, &current, ctx);
    // Only a served Receiver has hooks to register; otherwise they are left as they are.
    let (report, delivery) = match registering {
        Some((endpoint, token)) if ctx.registrar.enabled() => {
            let served = Served {
                endpoint: &endpoint,
                token: token.as_deref(),
            };
            register_hooks(&api, &mut object, served, &mut result, ctx).await?
        }
        _ => (Report::Keep, Report::Keep),
    };
    let desired = desired_status(&object, &current, &outcome, &report, &delivery);
    if desired != current
        && let Some(written) = ctx.write(write_status(&api, key, &desired)).await
    {
        written?;
    }
    announce(&object, &outcome, &result, &desired, interval, ctx).await;
    result
}

/// The Receiver with fluxhook's finalizer, added first as Flux adds its own,
/// so that a deletion is always seen by [`reconcile_receiver`].
async fn with_finalizer(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    ctx: &Context,
) -> Result<DynamicObject, ReconcileError> {
    let add_ours = |finalizers: &[String]| {
        (!finalizers.iter().any(|f| f == FINALIZER)).then(|| {
            let mut with_ours = finalizers.to_vec();
            with_ours.push(FINALIZER.to_string());
            with_ours
        })
    };
    if add_ours(object.metadata.finalizers.as_deref().unwrap_or_default()).is_some()
        && let Some(written) = ctx.write(edit_finalizers(api, object, add_ours)).await
    {
        return written;
    }
    Ok(object.clone())
}

/// What a [`Verdict`] made of the Receiver: its outcome for the status, the
/// reconciliation's result, what to register, and its interval (the one
/// Flux's success Event names).
struct Applied {
    outcome: Outcome,
    result: Result<Action, ReconcileError>,
    registering: Option<(Arc<Endpoint>, Option<String>)>,
    interval: Duration,
}

/// Serves the Receiver as `verdict` says: its endpoint claimed in the index
/// (ready, or suspended), or its path answered "not ready".
fn apply(
    verdict: Verdict,
    object: &DynamicObject,
    key: &ReceiverKey,
    current: &ReceiverStatus,
    ctx: &Context,
) -> Applied {
    let created = object
        .metadata
        .creation_timestamp
        .as_ref()
        .map(|time| time.0);
    match verdict {
        Verdict::Serve {
            endpoint,
            interval,
            token,
        } => {
            let path = endpoint.webhook_path().clone();
            let endpoint = Arc::new(endpoint);
            let claimed = ctx
                .index
                .claim(EndpointState::Ready(Arc::clone(&endpoint)), created);
            ctx.reconcile_again(claimed.affected);
            match claimed.standing {
                Standing::Served { rivals } => {
                    if current.webhook_path.as_deref() != Some(path.as_str()) {
                        tracing::info!(receiver = %key, "Receiver initialized for a new webhook path");
                    }
                    Applied {
                        outcome: Outcome::Ready { path, rivals },
                        result: Ok(Action::requeue(interval)),
                        registering: Some((endpoint, token)),
                        interval,
                    }
                }
                // Not served: nothing to register. Reconciled again when the other changes.
                Standing::Shadowed { by } => Applied {
                    outcome: Outcome::Conflict { path, served: by },
                    result: Ok(Action::requeue(interval)),
                    registering: None,
                    interval,
                },
            }
        }
        Verdict::Suspend { compiled, interval } => {
            match compiled {
                Ok(endpoint) => {
                    let claimed = ctx
                        .index
                        .claim(EndpointState::Suspended(Arc::new(endpoint)), created);
                    ctx.reconcile_again(claimed.affected);
                }
                Err(why) => serve_not_ready(ctx, key, current, created, why),
            }
            Applied {
                outcome: Outcome::Suspended,
                result: Ok(Action::await_change()),
                registering: None,
                interval,
            }
        }
        Verdict::Retry(error) => {
            let message = error.to_string();
            serve_not_ready(ctx, key, current, created, message.clone());
            Applied {
                outcome: Outcome::TokenNotFound { message },
                result: Err(error),
                registering: None,
                interval: DEFAULT_INTERVAL,
            }
        }
        Verdict::Stall { reason, detail } => {
            let outcome = Outcome::Stalled {
                reason,
                message: detail,
            };
            let message = outcome.ready_message().unwrap_or_default();
            serve_not_ready(ctx, key, current, created, message);
            Applied {
                outcome,
                result: Ok(Action::await_change()),
                registering: None,
                interval: DEFAULT_INTERVAL,
            }
        }
    }
}

/// Registers the served Receiver's webhooks (when this replica writes):
/// `object` becomes the Receiver as the pass left it, and `result` an error
/// when the pass must be retried. The reports of the registration and of the
/// hooks' deliveries, for their conditions.
async fn register_hooks(
    api: &Api<DynamicObject>,
    object: &mut DynamicObject,
    served: Served<'_>,
    result: &mut Result<Action, ReconcileError>,
    ctx: &Context,
) -> Result<(Report, Report), ReconcileError> {
    let Some(pass) = ctx
        .write(ctx.registrar.register(api, object.clone(), served))
        .await
    else {
        return Ok((Report::Keep, Report::Keep));
    };
    let pass = pass.map_err(|source| ReconcileError::Write {
        part: "webhook record",
        source: ApiFailure(source),
    })?;
    *object = pass.object;
    if let Some(why) = pass.retry {
        *result = Err(match pass.retry_after {
            Some(wait) => ReconcileError::HostWait { why, wait },
            None => ReconcileError::Registration(why),
        });
    }
    Ok((pass.report, pass.delivery))
}

/// The status the Receiver should have: `outcome`'s, with the registration's
/// and the deliveries' conditions.
fn desired_status(
    object: &DynamicObject,
    current: &ReceiverStatus,
    outcome: &Outcome,
    report: &Report,
    delivery: &Report,
) -> ReceiverStatus {
    let now = now();
    let observed = Observed {
        generation: object.metadata.generation,
        requested_at: object
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RECONCILE_REQUEST_ANNOTATION))
            .map(String::as_str),
        now: &now,
    };
    with_condition(
        with_condition(
            next_status(current, outcome, observed),
            CONDITION_TYPE,
            report,
            observed,
        ),
        DELIVERY_CONDITION_TYPE,
        delivery,
        observed,
    )
}

/// Tells how the reconciliation ended, as Flux does: a Warning Event for a
/// spec that cannot be served, a Normal one when it ends without error and
/// ready (suspended included), failures being recorded by `reconcile`; and
/// the log lines of Flux's reconciler.
async fn announce(
    object: &DynamicObject,
    outcome: &Outcome,
    result: &Result<Action, ReconcileError>,
    desired: &ReceiverStatus,
    interval: Duration,
    ctx: &Context,
) {
    let event = match outcome {
        Outcome::Stalled { reason, .. } => outcome
            .ready_message()
            .map(|message| events::stalled(reason, &message)),
        Outcome::Conflict { .. } => outcome
            .ready_message()
            .map(|message| events::stalled(super::status::WEBHOOK_PATH_CONFLICT, &message)),
        _ if result.is_ok() && is_ready(desired) => Some(events::succeeded(interval)),
        _ => None,
    };
    // A terminal configuration error at the error level (`markTerminal`), so
    // that `flux logs --level=error` shows it; the end of a reconciliation
    // that leaves the Receiver ready, and a suspended one, at info. (A path
    // conflict is not logged: its message holds the webhook path, which logs
    // never do; its Warning Event tells it.)
    match outcome {
        Outcome::Stalled { message, .. } => tracing::error!(
            error = %message,
            "Reconciliation failed terminally due to configuration error"
        ),
        Outcome::Suspended => tracing::info!("Reconciliation is suspended for this object"),
        _ => {}
    }
    if let Some(event) = event {
        if event.reason == events::reason::SUCCEEDED
            && let Some(note) = &event.note
        {
            tracing::info!("{note}");
        }
        ctx.record(object, &event).await;
    }
}

fn is_ready(status: &ReceiverStatus) -> bool {
    status
        .condition(condition::READY)
        .is_some_and(|ready| ready.status == "True")
}

/// A deleted Receiver: its webhooks are deleted from the Git hosts, then the finalizers
/// come off. While hooks remain, the status says why and the deletion is retried.
async fn finalize(
    api: &Api<DynamicObject>,
    object: DynamicObject,
    key: &ReceiverKey,
    ctx: &Context,
) -> Result<Action, ReconcileError> {
    let mut object = object;
    let has = |object: &DynamicObject, finalizer: &str| {
        object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .any(|f| f == finalizer)
    };
    if has(&object, CLEANUP_FINALIZER) {
        let cleanup = ctx
            .registrar
            .clean_up(api, object)
            .await
            .map_err(|source| ReconcileError::Write {
                part: "webhook record",
                source: ApiFailure(source),
            })?;
        object = cleanup.object;
        if !cleanup.done {
            let current = current_status(&object);
            let now = now();
            let observed = Observed {
                generation: object.metadata.generation,
                requested_at: None,
                now: &now,
            };
            let desired =
                with_condition(current.clone(), CONDITION_TYPE, &cleanup.report, observed);
            if desired != current {
                write_status(api, key, &desired).await?;
            }
            let why = "webhooks remain to be deleted".to_string();
            return Err(match cleanup.retry_after {
                Some(wait) => ReconcileError::HostWait { why, wait },
                None => ReconcileError::Registration(why),
            });
        }
    }
    if has(&object, FINALIZER) {
        let without_ours = |finalizers: &[String]| {
            finalizers.iter().any(|f| f == FINALIZER).then(|| {
                finalizers
                    .iter()
                    .filter(|f| *f != FINALIZER)
                    .cloned()
                    .collect()
            })
        };
        edit_finalizers(api, &object, without_ours).await?;
    }
    Ok(Action::await_change())
}

/// The time to record on conditions, to the second as Kubernetes keeps it.
fn now() -> Time {
    Time(Timestamp::from_second(Timestamp::now().as_second()).unwrap_or_default())
}

/// Reads the Receiver and its Secret and decides what to serve.
async fn judge(
    object: &DynamicObject,
    key: &ReceiverKey,
    ctx: &Context,
) -> Result<Verdict, ReconcileError> {
    let receiver = match receiver_of(object) {
        Ok(receiver) => receiver,
        Err(error) => {
            return Ok(Verdict::Stall {
                reason: condition::reason::VALIDATION_FAILED,
                detail: format!("spec does not match the Receiver API: {error}"),
            });
        }
    };
    let secret_name = receiver.spec.secret_ref.as_ref().map(|r| r.name.as_str());
    let secret = match secret_name {
        Some(name) => match read_secret(ctx, &key.namespace, name).await {
            Ok(secret) => {
                let version = secret.as_ref().and_then(|s| s.version.as_deref());
                ctx.secret_versions.read(key, Some(name), version);
                secret.map(|secret| secret.data)
            }
            // Suspended, Flux reads no Secret and leaves the status alone; it refuses
            // requests anyway.
            Err(error) if receiver.spec.is_suspended() => {
                return Ok(Verdict::Suspend {
                    compiled: Err(error.to_string()),
                    interval: receiver.spec.interval().unwrap_or(DEFAULT_INTERVAL),
                });
            }
            // As Flux: `Ready=False`, `TokenNotFound`, with the error, and retried. What was
            // served is not served meanwhile: whether its token is still the Secret's is
            // unknown.
            Err(error) => return Ok(Verdict::Retry(error)),
        },
        None => {
            ctx.secret_versions.forget(key);
            None
        }
    };
    let token = secret
        .as_ref()
        .and_then(|data| data.get(TOKEN_KEY))
        .and_then(|token| String::from_utf8(token.clone()).ok());
    let compiled = Endpoint::compile(&receiver, secret.as_ref());
    if receiver.spec.is_suspended() {
        return Ok(Verdict::Suspend {
            compiled: compiled.map_err(|error| error.to_string()),
            interval: receiver.spec.interval().unwrap_or(DEFAULT_INTERVAL),
        });
    }
    let endpoint = match compiled {
        Ok(endpoint) => endpoint,
        Err(error) if error.reason() == condition::reason::TOKEN_NOT_FOUND => {
            return Ok(Verdict::Retry(ReconcileError::Token(error)));
        }
        Err(error) => {
            return Ok(Verdict::Stall {
                reason: error.reason(),
                detail: error.to_string(),
            });
        }
    };
    Ok(match receiver.spec.interval() {
        Ok(interval) => Verdict::Serve {
            endpoint,
            interval,
            token,
        },
        Err(error) => Verdict::Stall {
            reason: condition::reason::VALIDATION_FAILED,
            detail: format!("spec.interval: {error}"),
        },
    })
}

/// Keeps a Receiver that cannot serve known at its last path, so that its
/// sender gets 503 rather than 404; a Receiver never served is not indexed.
fn serve_not_ready(
    ctx: &Context,
    key: &ReceiverKey,
    current: &ReceiverStatus,
    created: Option<Timestamp>,
    message: String,
) {
    let last_path = ctx.index.webhook_path_of(key).or_else(|| {
        current
            .webhook_path
            .as_deref()
            .and_then(|path| WebhookPath::parse(path).ok())
    });
    let affected = match last_path {
        Some(webhook_path) => {
            let state = EndpointState::NotReady {
                key: key.clone(),
                webhook_path,
                message,
            };
            ctx.index.claim(state, created).affected
        }
        None => ctx.index.withdraw(key),
    };
    ctx.reconcile_again(affected);
}

/// The Receiver's spec, read leniently from the watched object: a spec that
/// does not deserialize is reported on the status, not fatal.
fn receiver_of(object: &DynamicObject) -> Result<Receiver, serde_json::Error> {
    Ok(Receiver {
        metadata: object.metadata.clone(),
        spec: read_spec(object)?,
        status: None,
    })
}

/// Reads the Receiver's spec, or the part of it `T` declares, from an object of the
/// store, where [`slim`] keeps it as JSON text, or from one as the API server sent it.
/// An object without a spec reads as `null`.
pub(crate) fn read_spec<T: DeserializeOwned>(object: &DynamicObject) -> serde_json::Result<T> {
    match field(object, "spec", SPEC_AT) {
        Field::Tree(spec) => T::deserialize(spec),
        Field::Text(text) => serde_json::from_str(text),
        Field::Absent => T::deserialize(&Value::Null),
    }
}

/// The status as stored; one that does not deserialize counts as empty and
/// is overwritten.
fn current_status(object: &DynamicObject) -> ReceiverStatus {
    let read = match field(object, "status", STATUS_AT) {
        Field::Tree(status) => ReceiverStatus::deserialize(status),
        Field::Text(text) => serde_json::from_str(text),
        Field::Absent => return ReceiverStatus::default(),
    };
    read.unwrap_or_default()
}

/// A top-level field of a Receiver, as the API server sent it or as [`slim`] keeps it.
enum Field<'a> {
    Tree(&'a Value),
    Text(&'a str),
    Absent,
}

/// The field `name` of `object`, which [`slim`] keeps at `slimmed_at`.
fn field<'a>(object: &'a DynamicObject, name: &str, slimmed_at: usize) -> Field<'a> {
    let found = match &object.data {
        Value::Array(slimmed) => slimmed
            .get(slimmed_at)
            .and_then(Value::as_str)
            .map(Field::Text),
        fields => fields.get(name).map(Field::Tree),
    };
    found.unwrap_or(Field::Absent)
}

/// Where [`slim`] keeps the spec and the status as JSON text: the object's fields become
/// the array `[spec, status]`, each a string, or `null` when absent. The API server never
/// sends an object as an array, so the two forms cannot be mistaken for each other; and an
/// array of two costs 64 bytes where a `serde_json` map costs about 0.6 KB however few
/// entries it holds (a B-tree node with room for 11).
const SPEC_AT: usize = 0;
const STATUS_AT: usize = 1;

/// Slims a Receiver for the watch's store, which holds every Receiver for as long as the
/// controller runs, as controller-runtime's cache transforms and kube's
/// `WatchStreamExt::modify` are meant for: drops what the controller never reads
/// (`metadata.managedFields`, kubectl's last-applied annotation, each a copy of the spec
/// or more) and keeps the spec and the status, read only by [`read_spec`] and
/// [`current_status`], as their JSON text: a tree of `serde_json` maps costs several times
/// its text (each map is a B-tree node of room for 11 entries, about 0.6 KB however few it
/// holds; three conditions take about 3 KB against 0.6 KB of text).
pub(crate) fn slim(object: &mut DynamicObject) {
    object.metadata.managed_fields = None;
    if let Some(annotations) = &mut object.metadata.annotations {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
    // The kind is known (every object of the store is a Receiver); nothing reads it.
    object.types = None;
    if let Value::Object(fields) = &object.data {
        let text = |name: &str| {
            fields
                .get(name)
                .map_or(Value::Null, |value| Value::String(value.to_string()))
        };
        let mut slimmed = vec![Value::Null; 2];
        slimmed[SPEC_AT] = text("spec");
        slimmed[STATUS_AT] = text("status");
        object.data = Value::Array(slimmed);
    }
}

/// kubectl's copy of what `kubectl apply` last applied.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// A Secret's data, and the `resourceVersion` it was read at.
pub(crate) struct SecretRead {
    pub(crate) data: BTreeMap<String, Vec<u8>>,
    pub(crate) version: Option<String>,
}

impl From<Secret> for SecretRead {
    fn from(secret: Secret) -> Self {
        Self {
            version: secret.metadata.resource_version,
            data: secret
                .data
                .unwrap_or_default()
                .into_iter()
                .map(|(key, value)| (key, value.0))
                .collect(),
        }
    }
}

/// The Secret; `None` when it does not exist. Listed at start-up, or read by name.
async fn read_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<SecretRead>, ReconcileError> {
    if let Some(prefetch) = &ctx.prefetch
        && let Some(listed) = prefetch.take(namespace, name).await
    {
        return Ok(listed);
    }
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let failed = |reason| ReconcileError::ReadSecret {
        namespace: namespace.to_string(),
        name: name.to_string(),
        reason,
    };
    // Bounded, kube's retries included: see `DEFAULT_SECRET_READ_TIMEOUT`.
    let secret = tokio::time::timeout(ctx.secret_read_timeout, secrets.get_opt(name))
        .await
        .map_err(|_| failed(ReadFailure::TimedOut(ctx.secret_read_timeout)))?
        .map_err(|source| failed(ReadFailure::Api(ApiFailure(source))))?;
    Ok(secret.map(SecretRead::from))
}

/// Why a Secret could not be read.
#[derive(Debug)]
pub(crate) enum ReadFailure {
    /// The API server refused or failed (403, 5xx), or could not be reached.
    Api(ApiFailure),
    /// No answer within the bound (kube's client retrying 429, 503 and 504 meanwhile).
    TimedOut(Duration),
}

impl std::fmt::Display for ReadFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Api(failure) => failure.fmt(f),
            Self::TimedOut(bound) => write!(
                f,
                "timed out after {} waiting for the API server",
                events::go_duration(*bound)
            ),
        }
    }
}

impl std::error::Error for ReadFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Api(failure) => Some(failure),
            Self::TimedOut(_) => None,
        }
    }
}

/// Why the API server did not do as asked, worded for a status message or an Event: its own
/// message and HTTP status for a refusal (403, 409, 5xx), else the client's error (a
/// connection refused). Never a request body, so never a token.
#[derive(Debug)]
pub(crate) struct ApiFailure(kube::Error);

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            kube::Error::Api(status) => {
                let reason = http::StatusCode::from_u16(status.code)
                    .ok()
                    .and_then(|code| code.canonical_reason());
                match reason {
                    Some(reason) => {
                        write!(f, "{} (HTTP {} {reason})", status.message, status.code)
                    }
                    None => write!(f, "{} (HTTP {})", status.message, status.code),
                }
            }
            other => other.fmt(f),
        }
    }
}

impl std::error::Error for ApiFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// How many times a finalizer write is tried when the Receiver changed since it was read:
/// client-go's `retry.DefaultRetry` (5 steps) for `retry.RetryOnConflict`.
const FINALIZER_ATTEMPTS: usize = 5;

/// Replaces the finalizers with what `edit` makes of them (`None`: nothing to change); the
/// Receiver as written.
///
/// Each write names the `resourceVersion` it was computed from, so that another writer's
/// finalizer is never lost. A conflict (409) means the copy was older than the stored
/// Receiver: most often the watched copy, which the watch has not yet brought up to the
/// controller's own last write (a retry soon after a first reconciliation finds the
/// Receiver without the finalizer it just added). Then the Receiver is read again and the
/// edit made anew, as client-go's `retry.RetryOnConflict` does, rather than failing the
/// reconciliation (and recording a Warning) for a copy that was merely late.
async fn edit_finalizers(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    edit: impl Fn(&[String]) -> Option<Vec<String>>,
) -> Result<DynamicObject, ReconcileError> {
    let write_error = |source| ReconcileError::Write {
        part: "finalizers",
        source: ApiFailure(source),
    };
    let name = object.metadata.name.as_deref().unwrap_or_default();
    let mut object = object.clone();
    for attempt in 1..=FINALIZER_ATTEMPTS {
        let Some(finalizers) = edit(object.metadata.finalizers.as_deref().unwrap_or_default())
        else {
            return Ok(object);
        };
        let patch = json!({
            "metadata": {
                "finalizers": finalizers,
                "resourceVersion": object.metadata.resource_version,
            }
        });
        match api
            .patch(name, &patch_params(), &Patch::Merge(&patch))
            .await
        {
            Err(kube::Error::Api(status)) if status.code == 409 && attempt < FINALIZER_ATTEMPTS => {
                object = read_again(api, name).await.map_err(write_error)?;
            }
            written => return written.map_err(write_error),
        }
    }
    // The last attempt returned above.
    Ok(object)
}

/// The Receiver as stored now: a list of the one name (a consistent read), which needs
/// only the `list` the watch has (deploy/base/rbac.yaml grants no `get` on Receivers), as
/// client-go reads one object with `fields.OneTermEqualSelector("metadata.name", name)`.
async fn read_again(api: &Api<DynamicObject>, name: &str) -> Result<DynamicObject, kube::Error> {
    let one = ListParams::default().fields(&format!("metadata.name={name}"));
    api.list(&one)
        .await?
        .items
        .into_iter()
        .next()
        .ok_or_else(|| {
            let message = format!("the Receiver \"{name}\" is gone");
            kube::Error::Api(
                kube::core::Status::failure(&message, "NotFound")
                    .with_code(404)
                    .boxed(),
            )
        })
}

/// Writes the fields of the status Flux owns (others are left alone).
async fn write_status(
    api: &Api<DynamicObject>,
    key: &ReceiverKey,
    status: &ReceiverStatus,
) -> Result<(), ReconcileError> {
    let write_error = |source| ReconcileError::Write {
        part: "status",
        source: ApiFailure(source),
    };
    let mut fields = match serde_json::to_value(status) {
        Ok(Value::Object(fields)) => fields,
        _ => serde_json::Map::new(),
    };
    // A merge patch removes what it sets to null.
    for field in [
        "conditions",
        "webhookPath",
        "observedGeneration",
        "lastHandledReconcileAt",
    ] {
        fields.entry(field).or_insert(Value::Null);
    }
    let patch = json!({ "status": fields });
    api.patch_status(&key.name, &patch_params(), &Patch::Merge(&patch))
        .await
        .map_err(write_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off_exponentially_up_to_the_maximum() {
        let delays = RetryDelays {
            min: Duration::from_millis(750),
            max: Duration::from_secs(900),
        };
        assert_eq!(delays.after(1), Duration::from_millis(750));
        assert_eq!(delays.after(2), Duration::from_millis(1500));
        assert_eq!(delays.after(4), Duration::from_secs(6));
        assert_eq!(delays.after(12), Duration::from_secs(900));
        assert_eq!(delays.after(u32::MAX), Duration::from_secs(900));
    }

    #[test]
    fn a_git_host_wait_is_retried_after_that_wait_not_sooner() {
        let delays = RetryDelays {
            min: Duration::from_millis(750),
            max: Duration::from_secs(900),
        };
        let failed = ReconcileError::Registration("HTTP 503".into());
        assert_eq!(retry_delay(delays, 1, &failed), Duration::from_millis(750));
        let limited = |wait| ReconcileError::HostWait {
            why: "rate limited".into(),
            wait,
        };
        // GitHub's secondary limit: at least a minute, whatever the backoff.
        let minute = Duration::from_secs(60);
        assert_eq!(retry_delay(delays, 1, &limited(minute)), minute);
        // A backoff grown longer than the wait stays.
        assert_eq!(
            retry_delay(delays, 12, &limited(minute)),
            Duration::from_secs(900)
        );
    }

    #[test]
    fn a_spec_that_does_not_deserialize_is_an_error_not_a_panic() {
        let resource = ApiResource::erase::<Receiver>(&());
        let mut object = DynamicObject::new("r", &resource).within("ns");
        object.data = json!({"spec": {"type": "github", "suspend": "yes"}});
        assert!(receiver_of(&object).is_err());
        object.data = json!({"status": {"conditions": "none"}});
        assert!(receiver_of(&object).is_err());
        assert_eq!(current_status(&object), ReceiverStatus::default());
        slim(&mut object);
        assert_eq!(current_status(&object), ReceiverStatus::default());
    }

    #[test]
    fn a_slimmed_receiver_reads_as_it_was() {
        let resource = ApiResource::erase::<Receiver>(&());
        let mut object = DynamicObject::new("r", &resource).within("ns");
        object.metadata.annotations = Some(BTreeMap::from([
            (LAST_APPLIED_ANNOTATION.to_string(), "{...}".to_string()),
            (RECONCILE_REQUEST_ANNOTATION.to_string(), "now".to_string()),
        ]));
        object.metadata.managed_fields = Some(vec![Default::default()]);
        object.data = json!({
            "spec": {"type": "github", "secretRef": {"name": "token"}, "resources": []},
            "status": {
                "webhookPath": "/hook/abc",
                "observedGeneration": 2,
                "conditions": [{
                    "type": "Ready", "status": "True", "reason": "Succeeded",
                    "message": "Receiver initialized for path: /hook/abc",
                    "lastTransitionTime": "2026-12-02T12:00:00Z", "observedGeneration": 2,
                }],
            },
        });
        let (status, spec) = (
            current_status(&object),
            receiver_of(&object).expect("the spec reads").spec,
        );
        assert_eq!(status.webhook_path.as_deref(), Some("/hook/abc"));
        let spec_tree = object.data["spec"].clone();
        slim(&mut object);
        // Kept as text, read back whole or in part.
        assert_eq!(object.data.get("spec"), None);
        assert_eq!(object.data.get("status"), None);
        assert_eq!(object.types, None);
        assert_eq!(
            read_spec::<Value>(&object).expect("the spec reads"),
            spec_tree
        );
        assert_eq!(
            read_spec::<Value>(&object).expect("the spec reads")["secretRef"]["name"],
            "token"
        );
        assert_eq!(current_status(&object), status);
        assert_eq!(receiver_of(&object).expect("the spec reads").spec, spec);
        assert_eq!(object.metadata.managed_fields, None);
        assert_eq!(
            object.metadata.annotations,
            Some(BTreeMap::from([(
                RECONCILE_REQUEST_ANNOTATION.to_string(),
                "now".to_string()
            )]))
        );
    }
}
