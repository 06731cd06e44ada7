//! One registration pass for one Receiver, and the cleanup before it goes.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use fluxhook_register::{
    Change, Delivery, DeliveryLog, Ensured, ErrorKind, HookClient, HookId, HostedRepository,
    HttpClient, Operation, ReceiverEvents, RegisterError, Secret,
};
use fluxhook_trigger::{Trigger, kube_message};
use k8s_openapi::api::core::v1::{ConfigMap, ObjectReference, Secret as KubeSecret};
use kube::Resource;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::ApiResource;
use kube::runtime::events::{Event, EventType};
use serde_json::json;

use super::credentials::AccessTokens;
use super::delivery::{self, Observed};
use super::error::{CaError, ClientError, DeleteError, TargetError};
use super::record::{self, CaBundle, RegisteredHook};
use super::target::{self, HookTemplate, Wanted};
use super::wait::{HostWaits, WaitKey, requested_wait, shown};
use super::{
    CA_CONFIGMAP_ANNOTATION, CA_KEY, CA_SECRET_ANNOTATION, CLEANUP_FINALIZER,
    REGISTERED_ANNOTATION, RegistrationConfig, event_reason, reason,
};
use super::{MAX_MESSAGE_CHARS, cut};
use crate::controller::Recorder;
use crate::endpoint::{Endpoint, ReceiverKey};

/// The longest Event note the API accepts is 1 kB.
const MAX_NOTE_CHARS: usize = 1000;

/// What a pass says about the `WebhooksRegistered` condition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Report {
    /// Nothing to say: leave it as it is.
    Keep,
    /// Nothing is registered: the condition goes.
    Remove,
    /// Set it.
    Set {
        /// `True` or `False`.
        registered: bool,
        /// Its reason.
        reason: &'static str,
        /// Its message.
        message: String,
    },
}

impl Report {
    /// The condition after a pass: its failures, else the hooks now remembered (none: the
    /// condition goes).
    fn registered(failures: &[Failure], remembered: &[RegisteredHook]) -> Self {
        if !failures.is_empty() {
            return Self::failed(reason::REGISTRATION_FAILED, failures);
        }
        if remembered.is_empty() {
            return Self::Remove;
        }
        let hooks: Vec<String> = remembered.iter().map(RegisteredHook::describe).collect();
        Self::Set {
            registered: true,
            reason: reason::SUCCEEDED,
            message: cut(
                &format!("Webhooks registered: {}", hooks.join("; ")),
                MAX_MESSAGE_CHARS,
            ),
        }
    }

    fn failed(reason: &'static str, failures: &[Failure]) -> Self {
        let messages: Vec<&str> = failures.iter().map(|f| f.message.as_str()).collect();
        Self::Set {
            registered: false,
            reason,
            message: cut(&messages.join("; "), MAX_MESSAGE_CHARS),
        }
    }
}

/// The outcome of [`Registrar::register`].
#[derive(Debug)]
pub(crate) struct Pass {
    /// The Receiver after the pass's writes.
    pub(crate) object: DynamicObject,
    /// The condition to write.
    pub(crate) report: Report,
    /// The delivery health condition to write.
    pub(crate) delivery: Report,
    /// Why the pass should be retried soon, if it should.
    pub(crate) retry: Option<String>,
    /// When every failure that may pass is a host's rate limit: the wait before the pass may
    /// be retried (calls to those hosts are held back until then anyway).
    pub(crate) retry_after: Option<Duration>,
}

/// The outcome of [`Registrar::clean_up`].
#[derive(Debug)]
pub(crate) struct Cleanup {
    /// The Receiver after the cleanup's writes.
    pub(crate) object: DynamicObject,
    /// Whether every hook is deleted (and the finalizer removed).
    pub(crate) done: bool,
    /// The condition to write.
    pub(crate) report: Report,
    /// As [`Pass::retry_after`].
    pub(crate) retry_after: Option<Duration>,
}

/// Something that went wrong, as the condition says it.
#[derive(Debug)]
struct Failure {
    message: String,
    /// Whether it may pass by itself (a host or API error) rather than need an edit.
    transient: bool,
    /// For a host's rate limit: how long the host asked to be left alone.
    wait: Option<Duration>,
}

impl Failure {
    fn transient(message: String) -> Self {
        Self {
            message,
            transient: true,
            wait: None,
        }
    }

    fn configuration(message: String) -> Self {
        Self {
            message,
            transient: false,
            wait: None,
        }
    }

    /// A host that asked to be left alone for `wait` (a rate limit).
    fn waiting(message: String, wait: Duration) -> Self {
        Self {
            message,
            transient: true,
            wait: Some(wait),
        }
    }
}

/// When every failure that may pass is a host's wait: the longest of them.
fn retry_after(failures: &[Failure]) -> Option<Duration> {
    let mut transient = failures
        .iter()
        .filter(|failure| failure.transient)
        .peekable();
    transient.peek()?;
    transient.try_fold(Duration::ZERO, |longest, failure| {
        failure.wait.map(|wait| longest.max(wait))
    })
}

/// The calls a host's wait holds back: the hook's API, with its access token.
fn wait_key(hook: &RegisteredHook) -> WaitKey {
    let api = url::Url::parse(&hook.api_url)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_else(|_| hook.api_url.clone());
    WaitKey {
        api,
        token_secret: format!("{}/{}", hook.namespace(), hook.access_token_secret),
    }
}

/// The failure of a call the host's wait holds back: nothing was sent.
fn held(hook: &RegisteredHook, doing: &str, left: Duration) -> Failure {
    Failure::waiting(
        format!(
            "GitRepository {}: {doing} {}: the host asked to be left alone (rate limit): \
             trying again in {}, not sooner",
            hook.git_repository,
            hook.describe(),
            shown(left)
        ),
        left,
    )
}

/// Holds back the calls of `key` for the wait `error` asks for, if any; the wait.
fn hold_for(waits: &HostWaits, key: &WaitKey, error: &RegisterError) -> Option<Duration> {
    let wait = requested_wait(error)?;
    waits.hold(key.clone(), Instant::now(), wait);
    tracing::info!(
        api = %key.api,
        access_token_secret = %key.token_secret,
        wait = %shown(wait),
        "a Git host rate limits webhook registration: no call to it before its wait is over"
    );
    Some(wait)
}

/// The hooks a Receiver's GitRepositories ask for ([`Registrar::asked`]).
struct Asked {
    /// Each wanted hook once.
    wanted: Vec<Wanted>,
    /// What needs an edit (annotations, cross-namespace references).
    failures: Vec<Failure>,
    /// GitRepositories whose remembered hooks must stay: what they want is not known.
    undecided: HashSet<String>,
    /// Whether every GitRepository named could be read.
    all_read: bool,
    /// Why some could not.
    unread: Vec<Failure>,
}

/// What the Receiver serves, which its hooks deliver to and are signed with.
pub(crate) struct Served<'a> {
    /// The compiled Receiver.
    pub(crate) endpoint: &'a Endpoint,
    /// Its Secret's token; `None` for types that have none (generic-oidc).
    pub(crate) token: Option<&'a str>,
}

/// Registers and deletes the hooks of Receivers.
pub(crate) struct Registrar {
    client: kube::Client,
    /// Reads the GitRepositories a Receiver names, as the webhook server selects them.
    trigger: Trigger,
    /// One HTTP client for every host, so that connections are reused; `None` if it could not
    /// be built, and then each hook client builds its own (and reports why it cannot).
    http: Option<HttpClient>,
    /// The controller's Event recorder, shared so that Events about a Receiver are
    /// deduplicated together.
    recorder: Arc<Recorder>,
    resource: ApiResource,
    patch_params: PatchParams,
    config: RegistrationConfig,
    /// Hosts that asked to be left alone for a while.
    waits: HostWaits,
    /// Access tokens, GitHub App installation tokens cached among them.
    tokens: AccessTokens,
    /// The API URLs of hosts that keep no delivery log this client reads (a GitLab before
    /// 17.3 answers 404): not asked again while the process runs.
    logless_hosts: Mutex<HashSet<String>>,
}

impl Registrar {
    /// A registrar writing Receivers (of `resource`) with `patch_params`.
    pub(crate) fn new(
        client: kube::Client,
        resource: ApiResource,
        patch_params: PatchParams,
        recorder: Arc<Recorder>,
        config: RegistrationConfig,
    ) -> Self {
        let http = HttpClient::builder()
            .user_agent(concat!("fluxhook-receiver/", env!("CARGO_PKG_VERSION")))
            .build()
            .inspect_err(|error| tracing::warn!(%error, "cannot build the Git hosts' HTTP client"))
            .ok();
        Self {
            recorder,
            trigger: Trigger::new(client.clone())
                .no_cross_namespace_refs(config.no_cross_namespace_refs),
            client,
            http,
            resource,
            patch_params,
            config,
            waits: HostWaits::default(),
            tokens: AccessTokens::default(),
            logless_hosts: Mutex::default(),
        }
    }

    /// Whether registration passes run (cleanup always does).
    pub(crate) fn enabled(&self) -> bool {
        self.config.enabled
    }

    /// Makes the hooks of the annotated GitRepositories the served Receiver names match it,
    /// and deletes those remembered that are no longer wanted.
    ///
    /// The hooks about to be registered are remembered (with the finalizer) before any is
    /// created, so that a crash never leaves one unknown; the record is pruned afterwards.
    pub(crate) async fn register(
        &self,
        api: &Api<DynamicObject>,
        object: DynamicObject,
        served: Served<'_>,
    ) -> Result<Pass, kube::Error> {
        let recorded = match record::read(&object) {
            Ok(recorded) => recorded,
            Err(message) => {
                return Ok(Pass {
                    object,
                    report: Report::failed(
                        reason::REGISTRATION_FAILED,
                        &[Failure::configuration(format!(
                            "{message}; fix or remove it"
                        ))],
                    ),
                    delivery: Report::Keep,
                    retry: None,
                    retry_after: None,
                });
            }
        };
        let key = ReceiverKey {
            namespace: object.metadata.namespace.clone().unwrap_or_default(),
            name: object.metadata.name.clone().unwrap_or_default(),
        };
        let regarding = object.object_ref(&self.resource);
        let template = HookTemplate {
            path: served.endpoint.webhook_path(),
            receiver_type: served.endpoint.receiver_type.as_str(),
            signed: signing(&served),
        };
        let Asked {
            wanted,
            mut failures,
            mut undecided,
            all_read,
            mut unread,
        } = self.asked(&served, &key.namespace, &template).await;

        // A Receiver that registers nothing is not told about GitRepositories it could not
        // read: whether they ask for a hook is unknown, and its next interval looks again.
        if recorded.is_empty() && wanted.is_empty() && failures.is_empty() {
            for failure in &unread {
                tracing::debug!(receiver = %key, error = %failure.message, "not registering");
            }
        } else {
            failures.append(&mut unread);
        }

        let ready = self
            .clients_for(wanted, &mut undecided, &mut failures)
            .await;

        let mut intent = recorded.clone();
        intent.extend(ready.iter().map(|(hook, _)| hook.hook.clone()));
        let object = self.remember(api, object, &intent).await?;

        let (mut registered, observed) = self
            .ensure_each(&regarding, &ready, &mut undecided, &mut failures)
            .await;

        // What the hosts tell of the hooks' deliveries; with no word of a hook whose
        // registration failed, the condition stays as it was when nothing was heard.
        let health = delivery::report(&observed, !failures.is_empty());
        for (reason, hook, note) in delivery::warnings(&observed) {
            let related = git_repository_ref(hook);
            self.publish(
                &regarding,
                Some(&related),
                EventType::Warning,
                reason,
                "CheckWebhookDelivery",
                &note,
            )
            .await;
        }

        let mut kept = Vec::new();
        for old in recorded {
            if registered
                .iter()
                .any(|hook| hook.identity() == old.identity())
            {
                continue;
            }
            if !all_read || undecided.contains(&old.git_repository) {
                kept.push(old);
                continue;
            }
            let fresh = ready
                .iter()
                .find(|(hook, _)| hook.hook.same_repository(&old))
                .map(|(_, client)| client);
            if let Err(failure) = self.delete(&regarding, &old, fresh).await {
                failures.push(failure);
                kept.push(old);
            }
        }

        registered.extend(kept);
        let remembered = record::normalized(registered);
        let object = self.remember(api, object, &remembered).await?;
        let retry = failures
            .iter()
            .any(|failure| failure.transient)
            .then(|| format!("{} webhook registration failures", failures.len()));
        let retry_after = retry_after(&failures);
        Ok(Pass {
            object,
            report: Report::registered(&failures, &remembered),
            delivery: health,
            retry,
            retry_after,
        })
    }

    /// Step three of a pass: makes each hook be as wanted on its host, recording an Event for
    /// each change or failure; the hooks that may now exist, and what the hosts said of them.
    async fn ensure_each(
        &self,
        regarding: &ObjectReference,
        ready: &[(Wanted, HookClient)],
        undecided: &mut HashSet<String>,
        failures: &mut Vec<Failure>,
    ) -> (Vec<RegisteredHook>, Vec<Observed>) {
        let mut registered = Vec::new();
        let mut observed = Vec::new();
        for (hook, client) in ready {
            let key = wait_key(&hook.hook);
            if let Some(left) = self.waits.remaining(&key, Instant::now()) {
                // Nothing is sent, so nothing new can have been written.
                undecided.insert(hook.hook.git_repository.clone());
                failures.push(held(&hook.hook, "registering", left));
                continue;
            }
            let result = client.ensure(&hook.desired).await;
            if let Ok(ensured) = &result {
                observed.push(Observed {
                    hook: hook.hook.clone(),
                    id: ensured.hook_id.clone(),
                    delivery: self.delivery_of(client, ensured).await,
                });
            }
            let (event, note) = match &result {
                Ok(ensured) => {
                    let verb = match (ensured.change, &ensured.replaced) {
                        (Change::Created, _) => {
                            Some((event_reason::WEBHOOK_CREATED, "created".to_string()))
                        }
                        (Change::Updated, _) => {
                            Some((event_reason::WEBHOOK_UPDATED, "updated".to_string()))
                        }
                        (Change::Replaced, Some(old)) => Some((
                            event_reason::WEBHOOK_UPDATED,
                            format!("replaced hook {old} with"),
                        )),
                        _ => None,
                    };
                    match verb {
                        Some((event, verb)) => (
                            Some((EventType::Normal, event)),
                            format!(
                                "{verb} hook {} to {}",
                                ensured.hook_id,
                                hook.hook.describe()
                            ),
                        ),
                        None => (None, String::new()),
                    }
                }
                Err(error) => {
                    self.note_refusal(&hook.hook, &hook.repository, error);
                    let mut message =
                        format!("GitRepository {}: {error}", hook.hook.git_repository);
                    // A Receiver that cannot have a hook there needs an edit, not a retry.
                    failures.push(
                        match (error.operation(), hold_for(&self.waits, &key, error)) {
                            (Operation::ChooseEvents, _) => Failure::configuration(message.clone()),
                            (_, Some(wait)) => {
                                message.push_str(&format!(
                                    "; trying again in {}, not sooner",
                                    shown(wait)
                                ));
                                Failure::waiting(message.clone(), wait)
                            }
                            (_, None) => Failure::transient(message.clone()),
                        },
                    );
                    undecided.insert(hook.hook.git_repository.clone());
                    (
                        Some((
                            EventType::Warning,
                            event_reason::WEBHOOK_REGISTRATION_FAILED,
                        )),
                        message,
                    )
                }
            };
            if let Some((type_, reason)) = event {
                let related = git_repository_ref(&hook.hook);
                self.publish(
                    regarding,
                    Some(&related),
                    type_,
                    reason,
                    "RegisterWebhook",
                    &note,
                )
                .await;
            }
            // Remembered unless nothing can have been written: a failed creation may
            // have happened.
            let wrote = match &result {
                Ok(_) => true,
                Err(error) => !matches!(
                    error.operation(),
                    Operation::ListHooks | Operation::Connect | Operation::ChooseEvents
                ),
            };
            if wrote {
                registered.push(hook.hook.clone());
            }
        }
        (registered, observed)
    }

    /// Step two of a pass: a client for each wanted hook, with its access token; a hook
    /// whose client cannot be had is left undecided.
    async fn clients_for(
        &self,
        wanted: Vec<Wanted>,
        undecided: &mut HashSet<String>,
        failures: &mut Vec<Failure>,
    ) -> Vec<(Wanted, HookClient)> {
        let mut ready = Vec::new();
        for hook in wanted {
            let namespace = hook.hook.namespace().to_string();
            match self
                .hook_client(&hook.repository, &namespace, &hook.hook)
                .await
            {
                Ok(client) => ready.push((hook, client)),
                Err(message) => {
                    undecided.insert(hook.hook.git_repository.clone());
                    failures.push(Failure::transient(format!(
                        "GitRepository {}: {message}",
                        hook.hook.git_repository
                    )));
                }
            }
        }
        ready
    }

    /// Step one of a pass: the hooks the annotated GitRepositories the Receiver names ask
    /// for, each once, and what could not be read or decided.
    async fn asked(
        &self,
        served: &Served<'_>,
        namespace: &str,
        template: &HookTemplate<'_>,
    ) -> Asked {
        let mut asked = Asked {
            wanted: Vec::new(),
            failures: Vec::new(),
            undecided: HashSet::new(),
            all_read: true,
            unread: Vec::new(),
        };
        for target in &served.endpoint.resources {
            let selected = self
                .trigger
                .select_git_repositories(&target.resource, namespace)
                .await;
            for selected in selected {
                let repository = match selected {
                    Ok(repository) => repository,
                    Err(error) if error.is_not_found() => continue,
                    // Refused by --no-cross-namespace-refs: an edit fixes it, not a retry.
                    Err(error) if error.is_cross_namespace() => {
                        asked
                            .failures
                            .push(Failure::configuration(error.to_string()));
                        continue;
                    }
                    Err(error) => {
                        asked.all_read = false;
                        asked.unread.push(Failure::transient(error.to_string()));
                        continue;
                    }
                };
                let id = target::id_of(&repository);
                match target::wanted(&repository, template) {
                    Ok(Some(hook)) => {
                        let known = asked
                            .wanted
                            .iter()
                            .any(|w| w.hook.identity() == hook.hook.identity());
                        if !known {
                            asked.wanted.push(hook);
                        }
                    }
                    Ok(None) => {}
                    Err(message) => {
                        asked.undecided.insert(id.clone());
                        asked.failures.push(Failure::configuration(format!(
                            "GitRepository {id}: {message}"
                        )));
                    }
                }
            }
        }
        asked
    }

    /// What the host tells of the deliveries of the hook `ensured` kept: what it listed with
    /// the hook, or, unless that already says they fail, the newest delivery in the host's log
    /// (GitLab 17.3+: one GET per hook kept in place, per pass). A host that keeps no log is
    /// not asked again; a refused or failed read tells nothing.
    async fn delivery_of(&self, client: &HookClient, ensured: &Ensured) -> Option<Delivery> {
        let listed = ensured.last_delivery.clone();
        // A new hook has delivered nothing yet.
        let kept = matches!(ensured.change, Change::Unchanged | Change::Updated);
        let host = client.repository().api_base().to_string();
        let logless = || {
            self.logless_hosts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        };
        if !kept || listed.as_ref().is_some_and(Delivery::is_failing) || logless().contains(&host) {
            return listed;
        }
        match client.newest_delivery(&ensured.hook_id).await {
            Ok(DeliveryLog::Newest(Some(newest))) => Some(newest),
            Ok(DeliveryLog::NotKept) => {
                logless().insert(host);
                listed
            }
            Ok(_) => listed,
            Err(error) => {
                tracing::debug!(%error, "cannot read the hook's delivery log");
                listed
            }
        }
    }

    /// Deletes every hook remembered on a Receiver that is being deleted; once none is left,
    /// the record and the finalizer [`CLEANUP_FINALIZER`] go.
    pub(crate) async fn clean_up(
        &self,
        api: &Api<DynamicObject>,
        object: DynamicObject,
    ) -> Result<Cleanup, kube::Error> {
        let regarding = object.object_ref(&self.resource);
        let recorded = match record::read(&object) {
            Ok(recorded) => recorded,
            Err(message) => {
                // What to delete is unknown: waiting would never tell.
                let note = format!("{message}; the hooks it named are left in place");
                self.publish(
                    &regarding,
                    None,
                    EventType::Warning,
                    event_reason::WEBHOOK_REGISTRATION_FAILED,
                    "DeleteWebhook",
                    &note,
                )
                .await;
                Vec::new()
            }
        };
        let mut kept = Vec::new();
        let mut failures = Vec::new();
        for old in recorded {
            if let Err(failure) = self.delete(&regarding, &old, None).await {
                failures.push(failure);
                kept.push(old);
            }
        }
        let object = self.remember(api, object, &kept).await?;
        let retry_after = retry_after(&failures);
        let report = match failures.is_empty() {
            true => Report::Keep,
            false => {
                failures.push(Failure::transient(format!(
                    "the Receiver is deleted once they are (retrying); remove the finalizer \
                     {CLEANUP_FINALIZER} to leave them"
                )));
                Report::failed(reason::CLEANUP_FAILED, &failures)
            }
        };
        Ok(Cleanup {
            object,
            done: kept.is_empty(),
            report,
            retry_after,
        })
    }

    /// A client for `repository` with the access token of the Secret `hook` names in
    /// `namespace`, trusting the CA bundle of the Secret or ConfigMap it names, if any.
    async fn hook_client(
        &self,
        repository: &HostedRepository,
        namespace: &str,
        hook: &RegisteredHook,
    ) -> Result<HookClient, ClientError> {
        let http = match (hook.ca_bundle(), &self.http) {
            (Some(ca), _) => self.http_trusting(namespace, &ca).await?,
            (None, Some(http)) => http.clone(),
            (None, None) => HttpClient::builder()
                .user_agent(concat!("fluxhook-receiver/", env!("CARGO_PKG_VERSION")))
                .build()?,
        };
        // The HTTP client of the hooks' API mints GitHub App tokens too: same CA, no redirect.
        let token = self
            .tokens
            .read(
                &self.client,
                namespace,
                &hook.access_token_secret,
                repository,
                &http,
            )
            .await?;
        HookClient::builder(repository.clone(), token)
            .backoff(self.config.host_backoff)
            .http(http)
            .build()
            .map_err(ClientError::from)
    }

    /// Notes that a host refused the access token `hook` was registered with, if it did.
    fn note_refusal(
        &self,
        hook: &RegisteredHook,
        repository: &HostedRepository,
        error: &RegisterError,
    ) {
        if matches!(error.kind(), ErrorKind::Api { status: 401, .. }) {
            self.tokens
                .refused(hook.namespace(), &hook.access_token_secret, repository);
        }
    }

    /// An HTTP client trusting the CA bundle `ca` names in `namespace` too.
    async fn http_trusting(&self, namespace: &str, ca: &CaBundle) -> Result<HttpClient, CaError> {
        let pem = match ca {
            CaBundle::Secret(name) => {
                let what = format!("CA Secret {namespace}/{name} ({CA_SECRET_ANNOTATION})");
                let secrets: Api<KubeSecret> = Api::namespaced(self.client.clone(), namespace);
                let secret = secrets
                    .get(name)
                    .await
                    .map_err(|error| unreadable(&what, &error))?;
                let pem = secret
                    .data
                    .and_then(|mut data| data.remove(CA_KEY))
                    .ok_or_else(|| CaError::MissingKey { what: what.clone() })?;
                (what, pem.0)
            }
            CaBundle::ConfigMap(name) => {
                let what = format!("CA ConfigMap {namespace}/{name} ({CA_CONFIGMAP_ANNOTATION})");
                let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
                let map = maps
                    .get(name)
                    .await
                    .map_err(|error| unreadable(&what, &error))?;
                // Text under `data`, as kube-root-ca.crt has it; `binaryData` holds bytes.
                let text = map
                    .data
                    .and_then(|mut data| data.remove(CA_KEY))
                    .map(String::into_bytes);
                let bytes = map
                    .binary_data
                    .and_then(|mut data| data.remove(CA_KEY))
                    .map(|bytes| bytes.0);
                let pem = text
                    .or(bytes)
                    .ok_or_else(|| CaError::MissingKey { what: what.clone() })?;
                (what, pem)
            }
        };
        let (what, pem) = pem;
        HttpClient::builder()
            .user_agent(concat!("fluxhook-receiver/", env!("CARGO_PKG_VERSION")))
            .ca_bundle_pem(&pem)
            .and_then(|builder| builder.build())
            .map_err(|source| CaError::Invalid { what, source })
    }

    /// Deletes the hooks to a remembered hook's URL, with `client` when one for its
    /// repository is at hand, else with the access token it was registered with.
    async fn delete(
        &self,
        regarding: &ObjectReference,
        old: &RegisteredHook,
        client: Option<&HookClient>,
    ) -> Result<Vec<HookId>, Failure> {
        let key = wait_key(old);
        if let Some(left) = self.waits.remaining(&key, Instant::now()) {
            return Err(held(old, "deleting", left));
        }
        let mut wait = None;
        let result = async {
            let (repository, url) = old.location()?;
            let own;
            let client = match client {
                Some(client) => client,
                None => {
                    own = self.hook_client(&repository, old.namespace(), old).await?;
                    &own
                }
            };
            client.delete_hooks_to(&url).await.map_err(|error| {
                self.note_refusal(old, &repository, &error);
                wait = hold_for(&self.waits, &key, &error);
                DeleteError::Host(error)
            })
        }
        .await;
        let related = git_repository_ref(old);
        let result = result.map_err(|error| {
            let message = format!(
                "GitRepository {}: cannot delete {}: {error}",
                old.git_repository,
                old.describe()
            );
            match wait {
                Some(wait) => format!("{message}; trying again in {}, not sooner", shown(wait)),
                None => message,
            }
        });
        match &result {
            Ok(ids) if ids.is_empty() => {}
            Ok(ids) => {
                let ids: Vec<&str> = ids.iter().map(HookId::as_str).collect();
                let note = format!("deleted hook {} to {}", ids.join(", "), old.describe());
                self.publish(
                    regarding,
                    Some(&related),
                    EventType::Normal,
                    event_reason::WEBHOOK_DELETED,
                    "DeleteWebhook",
                    &note,
                )
                .await;
            }
            Err(note) => {
                self.publish(
                    regarding,
                    Some(&related),
                    EventType::Warning,
                    event_reason::WEBHOOK_REGISTRATION_FAILED,
                    "DeleteWebhook",
                    note,
                )
                .await;
            }
        }
        result.map_err(|message| match wait {
            Some(wait) => Failure::waiting(message, wait),
            None => Failure::transient(message),
        })
    }

    /// Writes `hooks` as the Receiver's record, with the finalizer while there are any;
    /// nothing when both are already so.
    async fn remember(
        &self,
        api: &Api<DynamicObject>,
        object: DynamicObject,
        hooks: &[RegisteredHook],
    ) -> Result<DynamicObject, kube::Error> {
        let value = record::write(hooks);
        let current = object
            .metadata
            .annotations
            .as_ref()
            .and_then(|annotations| annotations.get(REGISTERED_ANNOTATION));
        let finalizers = object.metadata.finalizers.clone().unwrap_or_default();
        let finalized = finalizers.iter().any(|f| f == CLEANUP_FINALIZER);
        let wanted_finalizer = value.is_some();
        if current == value.as_ref() && finalized == wanted_finalizer {
            return Ok(object);
        }
        let mut metadata = json!({ "annotations": { REGISTERED_ANNOTATION: value } });
        if finalized != wanted_finalizer {
            let mut finalizers: Vec<String> = finalizers
                .into_iter()
                .filter(|f| f != CLEANUP_FINALIZER)
                .collect();
            if wanted_finalizer {
                finalizers.push(CLEANUP_FINALIZER.to_string());
            }
            // The whole list is written: the resourceVersion makes sure no other writer's
            // finalizer is lost.
            metadata["finalizers"] = json!(finalizers);
            metadata["resourceVersion"] = json!(object.metadata.resource_version);
        }
        let name = object.metadata.name.clone().unwrap_or_default();
        api.patch(
            &name,
            &self.patch_params,
            &Patch::Merge(&json!({ "metadata": metadata })),
        )
        .await
    }

    /// Records an Event on the Receiver; a failure to is only logged.
    async fn publish(
        &self,
        regarding: &ObjectReference,
        related: Option<&ObjectReference>,
        type_: EventType,
        reason: &str,
        action: &str,
        note: &str,
    ) {
        let event = Event {
            type_,
            reason: reason.to_string(),
            note: Some(cut(note, MAX_NOTE_CHARS)),
            action: action.to_string(),
            secondary: related.cloned(),
        };
        self.recorder.publish(regarding, &event).await;
    }
}

/// The refusal of the API server to give the CA bundle's object `what`.
fn unreadable(what: &str, error: &kube::Error) -> CaError {
    CaError::Unreadable {
        what: what.to_owned(),
        message: kube_message(error),
    }
}

/// The Receiver's token and events as a Git host hook needs them, or why it cannot have one.
fn signing(served: &Served<'_>) -> Result<(Secret, ReceiverEvents), TargetError> {
    let token = served.token.ok_or_else(|| TargetError::Unsigned {
        receiver_type: served.endpoint.receiver_type.as_str().to_owned(),
    })?;
    let events = ReceiverEvents::new(served.endpoint.events.iter().map(String::as_str));
    Ok((Secret::new(token), events))
}

/// A reference to the GitRepository a remembered hook was registered for.
fn git_repository_ref(hook: &RegisteredHook) -> ObjectReference {
    let (namespace, name) = hook
        .git_repository
        .split_once('/')
        .unwrap_or(("", hook.git_repository.as_str()));
    ObjectReference {
        api_version: Some("source.toolkit.fluxcd.io/v1".to_string()),
        kind: Some("GitRepository".to_string()),
        namespace: Some(namespace.to_string()),
        name: Some(name.to_string()),
        ..ObjectReference::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_cut_at_a_character_boundary() {
        assert_eq!(cut("abc", 5), "abc");
        assert_eq!(cut("ééé", 2), "éé…");
    }

    #[test]
    fn a_pass_waits_for_hosts_only_when_every_failure_that_may_pass_is_a_host_wait() {
        let minute = Duration::from_secs(60);
        let limited = || Failure::waiting("a: rate limited".into(), minute);
        assert_eq!(retry_after(&[]), None);
        assert_eq!(
            retry_after(&[Failure::configuration("b: set both".into())]),
            None
        );
        assert_eq!(
            retry_after(&[
                limited(),
                Failure::waiting("c: rate limited".into(), Duration::from_secs(5)),
                Failure::configuration("b: set both".into()),
            ]),
            Some(minute)
        );
        // Another failure that may pass is retried with the backoff (the limited host is
        // still held back until its wait is over).
        assert_eq!(
            retry_after(&[limited(), Failure::transient("d: HTTP 503".into())]),
            None
        );
    }

    #[test]
    fn failure_reports_join_their_messages() {
        let report = Report::failed(
            reason::REGISTRATION_FAILED,
            &[
                Failure::transient("a: HTTP 500".into()),
                Failure::configuration("b: set both".into()),
            ],
        );
        assert_eq!(
            report,
            Report::Set {
                registered: false,
                reason: reason::REGISTRATION_FAILED,
                message: "a: HTTP 500; b: set both".into(),
            }
        );
    }
}
