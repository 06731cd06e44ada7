//! One reconciliation of one Receiver: read its Secret, compile it, publish
//! it into the index and write its status as Flux does.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use fluxhook_api::{
    FINALIZER, RECONCILE_REQUEST_ANNOTATION, Receiver, ReceiverSpec, ReceiverStatus, WebhookPath,
    condition,
};
use fluxhook_leader_election::Leadership;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::controller::Action;
use serde_json::{Value, json};

use super::readiness::InitialSync;
use super::status::{Observed, Outcome, next_status, with_condition};
use super::triggers::key_of;
use crate::endpoint::{Endpoint, InvalidReceiver, ReceiverKey, TOKEN_KEY};
use crate::index::{EndpointIndex, EndpointState};
use crate::registration::{
    CLEANUP_FINALIZER, CONDITION_TYPE, Registrar, RegistrationConfig, Report, Served,
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
    /// Registers the Receivers' webhooks with Git hosts.
    registrar: Registrar,
    /// Consecutive failures per Receiver, for the retry backoff.
    failures: Mutex<HashMap<ReceiverKey, u32>>,
    /// Whether this replica writes: see [`Context::write`].
    leadership: Leadership,
}

impl Context {
    pub(crate) fn new(
        client: kube::Client,
        index: Arc<EndpointIndex>,
        resource: ApiResource,
        retry: RetryDelays,
        initial_sync: Arc<InitialSync>,
        registration: RegistrationConfig,
        leadership: Leadership,
    ) -> Self {
        Self {
            registrar: Registrar::new(
                client.clone(),
                resource.clone(),
                patch_params(),
                registration,
            ),
            client,
            index,
            resource,
            retry,
            initial_sync,
            failures: Mutex::default(),
            leadership,
        }
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
        self.index.withdraw(key);
        self.failures().remove(key);
        self.initial_sync.reconciled(key);
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
    /// The API server did not answer a read of the Secret.
    #[error("cannot read Secret {namespace}/{name}: {source}")]
    ReadSecret {
        namespace: String,
        name: String,
        source: kube::Error,
    },
    /// The API server refused a write to the Receiver.
    #[error("cannot update the Receiver's {part}: {source}")]
    Write {
        part: &'static str,
        source: kube::Error,
    },
    /// A Git host or the API server failed registering or deleting webhooks (reported on
    /// the status).
    #[error("webhook registration: {0}")]
    Registration(String),
}

/// Reconciles one Receiver (the controller's reconciler).
pub(crate) async fn reconcile(
    object: Arc<DynamicObject>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    let key = key_of(&object);
    let result = reconcile_receiver(&object, &key, &ctx).await;
    if result.is_ok() {
        ctx.failures().remove(&key);
    }
    ctx.initial_sync.reconciled(&key);
    result
}

/// Schedules the retry of a failed reconciliation (the controller's error
/// policy).
pub(crate) fn retry_later(
    object: Arc<DynamicObject>,
    _error: &ReconcileError,
    ctx: Arc<Context>,
) -> Action {
    let key = key_of(&object);
    let failures = {
        let mut failures = ctx.failures();
        let count = failures.entry(key.clone()).or_default();
        *count = count.saturating_add(1);
        *count
    };
    let delay = ctx.retry.after(failures);
    // The error itself is logged, with the reconcile's fields, where the
    // reconciliation ends (ControllerMetrics::reconciler).
    tracing::debug!(receiver = %key, retry_in = ?delay, "retrying the Receiver's reconciliation");
    Action::requeue(delay)
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
    Suspend(Result<Endpoint, InvalidReceiver>),
    /// Its Secret does not serve: retried with backoff.
    Retry(InvalidReceiver),
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
        ctx.index.withdraw(key);
        return ctx
            .write(finalize(&api, object.clone(), key, ctx))
            .await
            .unwrap_or(Ok(Action::await_change()));
    }
    // As Flux: the finalizer goes on before anything else, so that a deletion
    // is always seen here.
    let finalizers = object.metadata.finalizers.clone().unwrap_or_default();
    let mut object = object.clone();
    if !finalizers.iter().any(|f| f == FINALIZER) {
        let mut with_ours = finalizers;
        with_ours.push(FINALIZER.to_string());
        if let Some(written) = ctx.write(set_finalizers(&api, &object, with_ours)).await {
            object = written?;
        }
    }

    let current = current_status(&object);
    let (outcome, served, mut result, registering) = match judge(&object, key, ctx).await? {
        Verdict::Serve {
            endpoint,
            interval,
            token,
        } => {
            let path = endpoint.webhook_path().clone();
            if current.webhook_path.as_deref() != Some(path.as_str()) {
                tracing::info!(receiver = %key, "Receiver initialized for a new webhook path");
            }
            let endpoint = Arc::new(endpoint);
            (
                Outcome::Ready(path),
                Ok(EndpointState::Ready(Arc::clone(&endpoint))),
                Ok(Action::requeue(interval)),
                Some((endpoint, token)),
            )
        }
        Verdict::Suspend(compiled) => (
            Outcome::Suspended,
            compiled
                .map(|endpoint| EndpointState::Suspended(Arc::new(endpoint)))
                .map_err(|error| error.to_string()),
            Ok(Action::await_change()),
            None,
        ),
        Verdict::Retry(error) => (
            Outcome::TokenNotFound {
                message: error.to_string(),
            },
            Err(error.to_string()),
            Err(ReconcileError::Token(error)),
            None,
        ),
        Verdict::Stall { reason, detail } => {
            let outcome = Outcome::Stalled {
                reason,
                message: detail,
            };
            let message = outcome.ready_message().unwrap_or_default();
            (outcome, Err(message), Ok(Action::await_change()), None)
        }
    };
    match served {
        Ok(state) => ctx.index.publish(state),
        Err(message) => serve_not_ready(ctx, key, &current, message),
    }

    // Only a served Receiver has hooks to register; otherwise they are left as they are.
    let mut report = Report::Keep;
    if let Some((endpoint, token)) = registering
        && ctx.registrar.enabled()
    {
        let served = Served {
            endpoint: &endpoint,
            token: token.as_deref(),
        };
        let registered = ctx
            .write(ctx.registrar.register(&api, object.clone(), served))
            .await;
        if let Some(pass) = registered {
            let pass = pass.map_err(|source| ReconcileError::Write {
                part: "webhook record",
                source,
            })?;
            object = pass.object;
            report = pass.report;
            if let Some(why) = pass.retry {
                result = Err(ReconcileError::Registration(why));
            }
        }
    }

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
    let desired = with_condition(
        next_status(&current, &outcome, observed),
        CONDITION_TYPE,
        &report,
        observed,
    );
    if desired != current
        && let Some(written) = ctx.write(write_status(&api, key, &desired)).await
    {
        written?;
    }
    result
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
                source,
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
            return Err(ReconcileError::Registration(
                "webhooks remain to be deleted".to_string(),
            ));
        }
    }
    if has(&object, FINALIZER) {
        let rest = object
            .metadata
            .finalizers
            .iter()
            .flatten()
            .filter(|f| *f != FINALIZER)
            .cloned()
            .collect();
        set_finalizers(api, &object, rest).await?;
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
    let secret = match &receiver.spec.secret_ref {
        Some(secret_ref) => read_secret(ctx, &key.namespace, &secret_ref.name).await?,
        None => None,
    };
    let token = secret
        .as_ref()
        .and_then(|data| data.get(TOKEN_KEY))
        .and_then(|token| String::from_utf8(token.clone()).ok());
    let compiled = Endpoint::compile(&receiver, secret.as_ref());
    if receiver.spec.is_suspended() {
        return Ok(Verdict::Suspend(compiled));
    }
    let endpoint = match compiled {
        Ok(endpoint) => endpoint,
        Err(error) if error.reason() == condition::reason::TOKEN_NOT_FOUND => {
            return Ok(Verdict::Retry(error));
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
fn serve_not_ready(ctx: &Context, key: &ReceiverKey, current: &ReceiverStatus, message: String) {
    let last_path = ctx.index.webhook_path_of(key).or_else(|| {
        current
            .webhook_path
            .as_deref()
            .and_then(|path| WebhookPath::parse(path).ok())
    });
    match last_path {
        Some(webhook_path) => ctx.index.publish(EndpointState::NotReady {
            key: key.clone(),
            webhook_path,
            message,
        }),
        None => ctx.index.withdraw(key),
    }
}

/// The Receiver's spec, read leniently from the watched object: a spec that
/// does not deserialize is reported on the status, not fatal.
fn receiver_of(object: &DynamicObject) -> Result<Receiver, serde_json::Error> {
    let spec = object.data.get("spec").cloned().unwrap_or(Value::Null);
    let spec: ReceiverSpec = serde_json::from_value(spec)?;
    Ok(Receiver {
        metadata: object.metadata.clone(),
        spec,
        status: None,
    })
}

/// The status as stored; one that does not deserialize counts as empty and
/// is overwritten.
fn current_status(object: &DynamicObject) -> ReceiverStatus {
    object
        .data
        .get("status")
        .and_then(|status| serde_json::from_value(status.clone()).ok())
        .unwrap_or_default()
}

/// The Secret's data; `None` when it does not exist.
async fn read_secret(
    ctx: &Context,
    namespace: &str,
    name: &str,
) -> Result<Option<BTreeMap<String, Vec<u8>>>, ReconcileError> {
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let secret = secrets
        .get_opt(name)
        .await
        .map_err(|source| ReconcileError::ReadSecret {
            namespace: namespace.to_string(),
            name: name.to_string(),
            source,
        })?;
    Ok(secret.map(|secret| {
        secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(key, value)| (key, value.0))
            .collect()
    }))
}

fn patch_params() -> PatchParams {
    PatchParams {
        field_manager: Some(FIELD_MANAGER.to_string()),
        ..PatchParams::default()
    }
}

/// Replaces the finalizers, failing with a conflict if the Receiver changed
/// since it was read (so another writer's finalizer is never lost); the
/// Receiver as written.
async fn set_finalizers(
    api: &Api<DynamicObject>,
    object: &DynamicObject,
    finalizers: Vec<String>,
) -> Result<DynamicObject, ReconcileError> {
    let patch = json!({
        "metadata": {
            "finalizers": finalizers,
            "resourceVersion": object.metadata.resource_version,
        }
    });
    let name = object.metadata.name.as_deref().unwrap_or_default();
    api.patch(name, &patch_params(), &Patch::Merge(&patch))
        .await
        .map_err(|source| ReconcileError::Write {
            part: "finalizers",
            source,
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
        source,
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
    fn a_spec_that_does_not_deserialize_is_an_error_not_a_panic() {
        let resource = ApiResource::erase::<Receiver>(&());
        let mut object = DynamicObject::new("r", &resource).within("ns");
        object.data = json!({"spec": {"type": "github", "suspend": "yes"}});
        assert!(receiver_of(&object).is_err());
        object.data = json!({"status": {"conditions": "none"}});
        assert!(receiver_of(&object).is_err());
        assert_eq!(current_status(&object), ReceiverStatus::default());
    }
}
