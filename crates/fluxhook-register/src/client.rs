//! The client: hook operations over one host's REST API, with pagination and retries.

use std::fmt;
use std::sync::Arc;

use reqwest::header::{ACCEPT, HeaderMap, HeaderName, HeaderValue, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use url::Url;

use crate::backoff::{Clock, TokioClock, is_rate_limited, rate_limit_wait};
use crate::error::{ErrorKind, Operation};
use crate::hosts::HostApi;
use crate::http::error_chain;
use crate::{
    DeliveryLog, DesiredHook, Forge, Hook, HookId, HostBackoff, HostedRepository, HttpClient,
    RegisterError, Secret, Token, read_error_message, read_hook, read_hooks_page,
};

/// Pages of hooks read at most: far more than any repository has, short of a loop.
const MAX_PAGES: usize = 1000;

/// Longest host message kept in an error.
const MAX_MESSAGE_CHARS: usize = 300;

/// What [`HookClient::ensure`] did to the hook it kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// No hook pointed at the URL: one was created.
    Created,
    /// A hook pointed at the URL but differed: it was updated.
    Updated,
    /// A hook pointed at the URL but an edit cannot make it right (another kind of hook, a
    /// secret the host's edit ignores, a hook the host disabled): it was deleted and a new one
    /// created.
    Replaced,
    /// A hook already matched: nothing was written to it.
    Unchanged,
}

/// The outcome of [`HookClient::ensure`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ensured {
    /// What was done to the hook kept.
    pub change: Change,
    /// The id of the one hook now pointing at the URL.
    pub hook_id: HookId,
    /// For [`Change::Replaced`], the hook deleted to make way for `hook_id`.
    pub replaced: Option<HookId>,
    /// Other hooks that pointed at the same URL, now deleted.
    pub removed_duplicates: Vec<HookId>,
    /// What the host told of the last deliveries of the hook kept (for [`Change::Replaced`],
    /// of the hook replaced), as listed before any write: delivery health.
    pub last_delivery: Option<crate::Delivery>,
}

/// What [`HookClient::ensure`] would do, found by listing the hooks and writing nothing
/// ([`HookClient::plan_ensure`]). `ensure` carries out exactly this plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnsurePlan {
    /// What would be done to the hook kept.
    pub change: Change,
    /// The hook that would be kept (updated, for [`Change::Updated`]; deleted and created
    /// anew, for [`Change::Replaced`]); `None` when one would be created.
    pub hook_id: Option<HookId>,
    /// Other hooks to the same URL, which would be deleted.
    pub duplicates: Vec<HookId>,
}

impl EnsurePlan {
    /// The plan for a repository whose hooks are `hooks`: keep the first hook to the URL
    /// that matches (no write), else update the first one to the URL that an edit can make
    /// right, else replace the first one to the URL; delete the other hooks to the URL;
    /// create a hook when there is none. With `rewrite_secret`, no hook counts as matching,
    /// so the secret is written.
    fn new(
        hooks: &[Hook],
        desired: &DesiredHook,
        api: &dyn HostApi,
        provider: Forge,
        rewrite_secret: bool,
    ) -> EnsurePlan {
        let same_url: Vec<&Hook> = hooks
            .iter()
            .filter(|h| h.points_to(desired.url()))
            .collect();
        let matching = same_url
            .iter()
            .find(|h| !rewrite_secret && h.matches(desired, provider));
        let editable = same_url.iter().find(|h| api.edit_can_fix(h));
        let (change, kept) = match (matching, editable, same_url.first()) {
            (Some(hook), _, _) => (Change::Unchanged, Some(hook)),
            (None, Some(hook), _) => (Change::Updated, Some(hook)),
            (None, None, Some(hook)) => (Change::Replaced, Some(hook)),
            (None, None, None) => (Change::Created, None),
        };
        let hook_id = kept.map(|h| h.id.clone());
        let duplicates = same_url
            .iter()
            .filter(|h| Some(&h.id) != hook_id.as_ref())
            .map(|h| h.id.clone())
            .collect();
        EnsurePlan {
            change,
            hook_id,
            duplicates,
        }
    }

    /// Whether carrying out the plan writes nothing: the host already matches.
    pub fn is_unchanged(&self) -> bool {
        self.change == Change::Unchanged && self.duplicates.is_empty()
    }
}

/// Sets up a [`HookClient`].
pub struct HookClientBuilder {
    repository: HostedRepository,
    token: Token,
    retry: HostBackoff,
    clock: Arc<dyn Clock>,
    http: Option<HttpClient>,
}

impl fmt::Debug for HookClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookClientBuilder")
            .field("repository", &self.repository)
            .field("token", &self.token)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

impl HookClientBuilder {
    /// How rate-limited and failed requests are retried.
    pub fn backoff(mut self, retry: HostBackoff) -> Self {
        self.retry = retry;
        self
    }

    /// The clock retries read and sleep on ([`TokioClock`] by default).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The HTTP client to send requests with: one shared between hook clients reuses
    /// connections, and one with a CA bundle reaches hosts behind a private CA. By default
    /// each hook client builds [`HttpClient::new`].
    pub fn http(mut self, http: HttpClient) -> Self {
        self.http = Some(http);
        self
    }

    /// Builds the client; fails when the API URL cannot carry paths, the token cannot go in
    /// a header, or TLS cannot be set up.
    pub fn build(self) -> Result<HookClient, RegisterError> {
        let api = self.repository.forge().api();
        let fail = |kind| {
            RegisterError::new(
                self.repository.forge(),
                host_of(self.repository.api_base()),
                self.repository.full_name(),
                Operation::Connect,
                kind,
            )
        };
        let base = self.repository.api_base();
        if !matches!(base.scheme(), "https" | "http") || base.cannot_be_a_base() {
            return Err(fail(ErrorKind::InvalidApiUrl(base.to_string())));
        }
        let auth = hosts_auth(api, &self.token).ok_or_else(|| fail(ErrorKind::InvalidToken))?;
        let http = match self.http {
            Some(http) => http,
            None => HttpClient::new().map_err(|e| fail(ErrorKind::Transport(e.to_string())))?,
        };
        Ok(HookClient {
            repository: self.repository,
            token: self.token,
            auth,
            http,
            retry: self.retry,
            clock: self.clock,
            api,
        })
    }
}

fn hosts_auth(api: &dyn HostApi, token: &Token) -> Option<(HeaderName, HeaderValue)> {
    let auth = api.auth();
    let value = match auth.scheme {
        Some(scheme) => format!("{scheme} {}", token.expose()),
        None => token.expose().to_owned(),
    };
    let mut value = HeaderValue::from_str(&value).ok()?;
    // Keeps the token out of HTTP/2 header compression tables and debug output.
    value.set_sensitive(true);
    Some((HeaderName::from_static(auth.header), value))
}

pub(crate) fn host_of(url: &Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => url.to_string(),
    }
}

/// Manages the webhooks of one repository through its host's REST API.
///
/// Every operation pages through lists, retries within its [`HostBackoff`], and fails with a
/// [`RegisterError`] naming the host, the repository and the HTTP status, never the token.
pub struct HookClient {
    repository: HostedRepository,
    token: Token,
    auth: (HeaderName, HeaderValue),
    http: HttpClient,
    retry: HostBackoff,
    clock: Arc<dyn Clock>,
    api: &'static dyn HostApi,
}

impl fmt::Debug for HookClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HookClient")
            .field("repository", &self.repository)
            .field("token", &self.token)
            .field("retry", &self.retry)
            .finish_non_exhaustive()
    }
}

/// One request to send.
struct Call<'a> {
    operation: Operation,
    method: Method,
    url: Url,
    body: Option<Value>,
    /// A secret the host might echo in an error, to remove from messages.
    secret: Option<&'a Secret>,
}

/// A successful reply.
struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl HookClient {
    /// A client with the default retry policy, clock and HTTP client.
    pub fn new(repository: HostedRepository, token: Token) -> Result<HookClient, RegisterError> {
        HookClient::builder(repository, token).build()
    }

    /// A builder to set the retry policy, clock or HTTP client.
    pub fn builder(repository: HostedRepository, token: Token) -> HookClientBuilder {
        HookClientBuilder {
            repository,
            token,
            retry: HostBackoff::default(),
            clock: Arc::new(TokioClock),
            http: None,
        }
    }

    /// The repository whose hooks this client manages.
    pub fn repository(&self) -> &HostedRepository {
        &self.repository
    }

    /// All hooks of the repository, following the host's pagination.
    pub async fn list(&self) -> Result<Vec<Hook>, RegisterError> {
        let mut url = self.repository.hooks_list_url().ok_or_else(|| {
            self.error(
                Operation::ListHooks,
                ErrorKind::InvalidApiUrl(self.repository.api_base().to_string()),
            )
        })?;
        let mut hooks = Vec::new();
        for _ in 0..MAX_PAGES {
            let reply = self
                .send(Call {
                    operation: Operation::ListHooks,
                    method: Method::GET,
                    url: url.clone(),
                    body: None,
                    secret: None,
                })
                .await?;
            let page = read_hooks_page(self.repository.forge(), &url, &reply.headers, &reply.body)
                .map_err(|detail| self.unexpected(&Operation::ListHooks, &reply, detail))?;
            hooks.extend(page.hooks);
            match page.next {
                None => return Ok(hooks),
                Some(next) => url = self.checked_next_page(&url, &next)?,
            }
        }
        Err(self.error(Operation::ListHooks, ErrorKind::TooManyPages(MAX_PAGES)))
    }

    /// The names of the host's hook events `desired` subscribes to; an error, before any
    /// request, when the Receiver cannot verify the host's deliveries or accepts none.
    fn subscribed(&self, desired: &DesiredHook) -> Result<Vec<&'static str>, RegisterError> {
        desired.subscriptions_in(&self.repository)
    }

    /// Creates `desired` as a new hook.
    pub async fn create(&self, desired: &DesiredHook) -> Result<Hook, RegisterError> {
        let events = self.subscribed(desired)?;
        let operation = Operation::CreateHook;
        let call = Call {
            url: self.collection_url(&operation)?,
            operation,
            method: Method::POST,
            body: Some(self.api.create_body(desired, &events)),
            secret: Some(desired.secret()),
        };
        self.send_for_hook(call).await
    }

    /// Makes hook `id` into `desired`.
    pub async fn update(&self, id: &HookId, desired: &DesiredHook) -> Result<Hook, RegisterError> {
        let events = self.subscribed(desired)?;
        let operation = Operation::UpdateHook(id.clone());
        let call = Call {
            url: self.hook_url(&operation, id)?,
            operation,
            method: self.api.update_method(),
            body: Some(self.api.update_body(desired, &events)),
            secret: Some(desired.secret()),
        };
        self.send_for_hook(call).await
    }

    /// Deletes hook `id`. A hook already gone (404: deleted by hand, or by another run
    /// between listing and deleting) is deleted as asked: not an error.
    pub async fn delete(&self, id: &HookId) -> Result<(), RegisterError> {
        let operation = Operation::DeleteHook(id.clone());
        let call = Call {
            url: self.hook_url(&operation, id)?,
            operation,
            method: Method::DELETE,
            body: None,
            secret: None,
        };
        match self.send(call).await {
            Ok(_) => Ok(()),
            Err(error) if matches!(error.kind(), ErrorKind::Api { status: 404, .. }) => {
                tracing::debug!(
                    host = %host_of(self.repository.api_base()),
                    repository = %self.repository.full_name(),
                    hook = %id,
                    "the hook was already deleted"
                );
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The ids of the hooks that deliver to `url`, in the host's order.
    pub async fn hooks_to(&self, url: &Url) -> Result<Vec<HookId>, RegisterError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter(|hook| hook.points_to(url))
            .map(|hook| hook.id)
            .collect())
    }

    /// Deletes every hook that delivers to `url` and returns their ids; none is not an
    /// error. Hooks to other URLs are left alone.
    ///
    /// ```
    /// use fluxhook_register::{HookClient, Forge, HostedRepository, Token};
    /// use fluxhook_test_githost::{FakeHook, FakeHost, HostKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let gitlab = FakeHost::start(HostKind::GitLab).await?;
    /// gitlab.seed(FakeHook::new("https://flux.example.com/hook/old", &["push_events"]));
    /// gitlab.seed(FakeHook::new("https://ci.example.com/", &["push_events"]));
    /// let repository = HostedRepository::new(Forge::GITLAB, gitlab.api_base().parse()?, gitlab.owner(), gitlab.repo());
    /// let client = HookClient::new(repository, Token::new(gitlab.token()))?;
    ///
    /// let old = "https://flux.example.com/hook/old".parse()?;
    /// assert_eq!(client.delete_hooks_to(&old).await?.len(), 1);
    /// assert!(client.delete_hooks_to(&old).await?.is_empty());
    /// assert_eq!(gitlab.hooks().len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn delete_hooks_to(&self, url: &Url) -> Result<Vec<HookId>, RegisterError> {
        let ids = self.hooks_to(url).await?;
        for id in &ids {
            self.delete(id).await?;
        }
        Ok(ids)
    }

    /// Makes the repository have exactly one hook to `desired.url()`, matching `desired`.
    ///
    /// Lists the hooks and carries out the [`EnsurePlan`] they call for (see
    /// [`plan_ensure`](Self::plan_ensure)): deletes the other hooks to the URL, then updates
    /// the kept hook, or creates one when none was kept. Hooks to other URLs are left alone.
    /// Calling it again with the same `desired` writes nothing.
    ///
    /// Where the host keeps a label (GitLab, Bitbucket), the hook carries a fingerprint of
    /// the secret, so a changed secret is seen and written. GitHub, Gitea and Gogs do not
    /// show which secret a hook has: after changing the secret there, call
    /// [`rotate_secret`](Self::rotate_secret). (A Flux Receiver's webhook path is derived
    /// from its token, so a new token usually means a new URL anyway.) Gitea and Gogs edits
    /// keep a hook's old secret, so a hook there that differs is replaced rather than edited.
    pub async fn ensure(&self, desired: &DesiredHook) -> Result<Ensured, RegisterError> {
        self.reconcile(desired, false).await
    }

    /// What [`ensure`](Self::ensure) would do now, found by listing the hooks only: for dry
    /// runs and drift checks.
    ///
    /// ```
    /// use fluxhook_register::{Change, DesiredHook, HookClient, Forge, ReceiverEvents, HostedRepository, Secret, Token};
    /// use fluxhook_test_githost::{FakeHost, HostKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let gitea = FakeHost::start(HostKind::Gitea).await?;
    /// let repository = HostedRepository::new(Forge::GITEA, gitea.api_base().parse()?, gitea.owner(), gitea.repo());
    /// let client = HookClient::new(repository, Token::new(gitea.token()))?;
    /// let hook = DesiredHook::new(
    ///     "https://flux.example.com/hook/5a1b0c".parse()?,
    ///     Secret::new("receiver-token"),
    ///     ReceiverEvents::all(),
    /// );
    ///
    /// let plan = client.plan_ensure(&hook).await?;
    /// assert_eq!((plan.change, plan.hook_id), (Change::Created, None));
    /// assert!(gitea.writes().is_empty());
    ///
    /// let ensured = client.ensure(&hook).await?;
    /// let plan = client.plan_ensure(&hook).await?;
    /// assert!(plan.is_unchanged());
    /// assert_eq!(plan.hook_id, Some(ensured.hook_id));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn plan_ensure(&self, desired: &DesiredHook) -> Result<EnsurePlan, RegisterError> {
        self.subscribed(desired)?;
        let hooks = self.list().await?;
        Ok(self.plan(&hooks, desired, false))
    }

    fn plan(&self, hooks: &[Hook], desired: &DesiredHook, rewrite_secret: bool) -> EnsurePlan {
        EnsurePlan::new(
            hooks,
            desired,
            self.api,
            self.repository.forge(),
            rewrite_secret,
        )
    }

    /// Like [`ensure`](Self::ensure), but writes the secret to the kept hook even when the
    /// hook looks current: for hosts that cannot show which secret a hook has.
    pub async fn rotate_secret(&self, desired: &DesiredHook) -> Result<Ensured, RegisterError> {
        self.reconcile(desired, true).await
    }

    async fn reconcile(
        &self,
        desired: &DesiredHook,
        rewrite_secret: bool,
    ) -> Result<Ensured, RegisterError> {
        self.subscribed(desired)?;
        let hooks = self.list().await?;
        let plan = self.plan(&hooks, desired, rewrite_secret);
        let last_delivery = hooks
            .iter()
            .find(|hook| Some(&hook.id) == plan.hook_id.as_ref())
            .and_then(|hook| hook.last_delivery.clone());
        // Duplicates go first: GitHub refuses two hooks to one URL, even during an update.
        for id in &plan.duplicates {
            self.delete(id).await?;
        }
        let mut replaced = None;
        let hook_id = match (plan.hook_id, plan.change) {
            (Some(id), Change::Unchanged) => id,
            (Some(id), Change::Replaced) => {
                self.delete(&id).await?;
                replaced = Some(id);
                self.create(desired).await?.id
            }
            (Some(id), _) => self.update(&id, desired).await?.id,
            (None, _) => self.create(desired).await?.id,
        };
        Ok(Ensured {
            change: plan.change,
            hook_id,
            replaced,
            removed_duplicates: plan.duplicates,
            last_delivery,
        })
    }

    /// What the host's log of hook `id`'s deliveries tells of the newest one: one `GET` on
    /// GitLab 17.3+ (`/projects/:id/hooks/:hook_id/events?per_page=1`), none on hosts that
    /// keep no log this client reads. A GitLab before 17.3 (404) gives
    /// [`DeliveryLog::NotKept`], a token not allowed to read the log (403)
    /// [`DeliveryLog::NotAllowed`]: neither is an error.
    ///
    /// ```
    /// use fluxhook_register::{DeliveryLog, DesiredHook, HookClient, Forge, ReceiverEvents, HostedRepository, Secret, Token};
    /// use fluxhook_test_githost::{FakeHost, HostKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let gitlab = FakeHost::start(HostKind::GitLab).await?;
    /// let repository = HostedRepository::new(Forge::GITLAB, gitlab.api_base().parse()?, gitlab.owner(), gitlab.repo());
    /// let client = HookClient::new(repository, Token::new(gitlab.token()))?;
    /// let hook = DesiredHook::new("https://flux.example.com/hook/5a1b0c".parse()?, Secret::new("t"), ReceiverEvents::all());
    /// let id = client.ensure(&hook).await?.hook_id;
    /// assert_eq!(client.newest_delivery(&id).await?, DeliveryLog::Newest(None));
    ///
    /// gitlab.edit_hook(id.as_str().parse()?, |hook| hook.delivery_events = vec!["502".into()]);
    /// let DeliveryLog::Newest(Some(newest)) = client.newest_delivery(&id).await? else { panic!() };
    /// assert_eq!(newest.to_string(), "last delivery failed: HTTP 502");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn newest_delivery(&self, id: &HookId) -> Result<DeliveryLog, RegisterError> {
        let Some((path, query)) = self.api.deliveries_path(&self.repository, id) else {
            return Ok(DeliveryLog::NotKept);
        };
        let operation = Operation::ReadDeliveries(id.clone());
        let mut url = self.api_url(&operation, path)?;
        url.query_pairs_mut().extend_pairs(query);
        let call = Call {
            operation: operation.clone(),
            method: Method::GET,
            url,
            body: None,
            secret: None,
        };
        let reply = match self.send(call).await {
            Ok(reply) => reply,
            Err(error) => match error.kind() {
                ErrorKind::Api { status: 404, .. } => return Ok(DeliveryLog::NotKept),
                ErrorKind::Api { status: 403, .. } => return Ok(DeliveryLog::NotAllowed),
                _ => return Err(error),
            },
        };
        let body: Value = serde_json::from_slice(&reply.body)
            .map_err(|e| self.unexpected(&operation, &reply, format!("not JSON: {e}")))?;
        self.api
            .newest_delivery(&body)
            .map(DeliveryLog::Newest)
            .map_err(|detail| self.unexpected(&operation, &reply, detail))
    }

    async fn send_for_hook(&self, call: Call<'_>) -> Result<Hook, RegisterError> {
        let operation = call.operation.clone();
        let reply = self.send(call).await?;
        read_hook(self.repository.forge(), &reply.body)
            .map_err(|detail| self.unexpected(&operation, &reply, detail))
    }

    /// Sends `call`, retrying rate limits, server errors and failed connections as the
    /// retry policy allows.
    async fn send(&self, call: Call<'_>) -> Result<Reply, RegisterError> {
        let mut retries = 0u32;
        loop {
            let mut request = self
                .http
                .inner
                .request(call.method.clone(), call.url.clone())
                .header(self.auth.0.clone(), self.auth.1.clone())
                .header(ACCEPT, self.api.accept());
            for (name, value) in self.api.extra_headers() {
                request = request.header(*name, *value);
            }
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let may_retry = retries < self.retry.max_retries;
            let wait = match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.bytes().await.map_err(|e| {
                        self.error(
                            call.operation.clone(),
                            ErrorKind::Transport(error_chain(&e)),
                        )
                    })?;
                    if status.is_success() {
                        return Ok(Reply {
                            status,
                            headers,
                            body: body.to_vec(),
                        });
                    }
                    if status.is_redirection() {
                        return Err(self.error(
                            call.operation,
                            ErrorKind::Redirected {
                                status: status.as_u16(),
                                location: redirect_target(&call.url, &headers),
                            },
                        ));
                    }
                    if is_rate_limited(status, &headers, &body) {
                        let wait = rate_limit_wait(
                            status,
                            &headers,
                            &body,
                            self.clock.now(),
                            self.retry.backoff(retries),
                        );
                        if !may_retry || wait > self.retry.max_wait {
                            return Err(self.error(
                                call.operation,
                                ErrorKind::RateLimited {
                                    status: status.as_u16(),
                                    wait,
                                    retries,
                                    max_wait: self.retry.max_wait,
                                    max_retries: self.retry.max_retries,
                                },
                            ));
                        }
                        wait
                    } else if status.is_server_error() && call.method != Method::POST && may_retry {
                        // A failed creation may still have created the hook: not retried.
                        self.retry.backoff(retries)
                    } else {
                        let message = self.host_message(status, &body, call.secret);
                        return Err(self.error(
                            call.operation,
                            ErrorKind::Api {
                                status: status.as_u16(),
                                message,
                            },
                        ));
                    }
                }
                // A refused connection sent nothing, so even a creation can be retried; a
                // certificate the client does not trust stays untrusted.
                Err(error) if is_refused(&error) && may_retry => self.retry.backoff(retries),
                Err(error) => {
                    return Err(
                        self.error(call.operation, ErrorKind::Transport(error_chain(&error)))
                    );
                }
            };
            tracing::debug!(
                host = %host_of(&call.url),
                repository = %self.repository.full_name(),
                operation = %call.operation,
                ?wait,
                retry = retries + 1,
                "retrying"
            );
            self.clock.sleep(wait).await;
            retries += 1;
        }
    }

    /// The host's error message, without credentials and cut to a readable length.
    fn host_message(&self, status: StatusCode, body: &[u8], secret: Option<&Secret>) -> String {
        let message = read_error_message(self.repository.forge(), body)
            .unwrap_or_else(|| String::from_utf8_lossy(body).trim().to_owned());
        let message = match message.is_empty() {
            true => status.canonical_reason().unwrap_or("no message").to_owned(),
            false => message,
        };
        let mut message = redact(&message, self.token.expose());
        if let Some(secret) = secret {
            message = redact(&message, secret.expose());
        }
        crate::delivery::cut(&message, MAX_MESSAGE_CHARS)
    }

    fn unexpected(&self, operation: &Operation, reply: &Reply, detail: String) -> RegisterError {
        self.error(
            operation.clone(),
            ErrorKind::UnexpectedReply {
                status: reply.status.as_u16(),
                detail,
            },
        )
    }

    fn error(&self, operation: Operation, kind: ErrorKind) -> RegisterError {
        RegisterError::new(
            self.repository.forge(),
            host_of(self.repository.api_base()),
            self.repository.full_name(),
            operation,
            kind,
        )
    }

    fn collection_url(&self, operation: &Operation) -> Result<Url, RegisterError> {
        self.api_url(operation, self.api.hooks_path(&self.repository))
    }

    fn hook_url(&self, operation: &Operation, id: &HookId) -> Result<Url, RegisterError> {
        let mut path = self.api.hooks_path(&self.repository);
        path.push(id.as_str().to_owned());
        self.api_url(operation, path)
    }

    /// The API base with `segments` appended, each percent-encoded as one segment.
    fn api_url(&self, operation: &Operation, segments: Vec<String>) -> Result<Url, RegisterError> {
        let mut url = self.repository.api_base().clone();
        match url.path_segments_mut() {
            Ok(mut path) => {
                path.pop_if_empty().extend(segments);
            }
            Err(()) => {
                return Err(self.error(
                    operation.clone(),
                    ErrorKind::InvalidApiUrl(self.repository.api_base().to_string()),
                ));
            }
        }
        Ok(url)
    }

    /// The next page's URL, refused unless it stays under the API URL: the token goes with it.
    fn checked_next_page(&self, current: &Url, next: &str) -> Result<Url, RegisterError> {
        let base = self.repository.api_base();
        let foreign = || {
            let shown = next.split(['?', '#']).next().unwrap_or_default().to_owned();
            self.error(Operation::ListHooks, ErrorKind::ForeignPageLink(shown))
        };
        let url = current.join(next).map_err(|_| foreign())?;
        let base_path = base.path().trim_end_matches('/');
        let same_api = url.scheme() == base.scheme()
            && url.host_str() == base.host_str()
            && url.port_or_known_default() == base.port_or_known_default()
            && url.path().starts_with(base_path);
        match same_api {
            true => Ok(url),
            false => Err(foreign()),
        }
    }
}

/// Whether the host refused or dropped the connection before anything was sent.
fn is_refused(error: &reqwest::Error) -> bool {
    let mut source: Option<&dyn std::error::Error> = Some(error);
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionRefused | std::io::ErrorKind::ConnectionReset
            )
        {
            return true;
        }
        source = cause.source();
    }
    false
}

/// Where a redirect points, as messages show it: resolved against the request URL, without
/// user information, query or fragment (they may carry credentials of their own).
fn redirect_target(request: &Url, headers: &HeaderMap) -> String {
    let Some(location) = headers.get(LOCATION).and_then(|v| v.to_str().ok()) else {
        return "nowhere (no Location header)".to_owned();
    };
    match request.join(location.trim()) {
        Ok(mut url) => {
            // Both succeed on URLs that have a host; others are shown as they are.
            let _ = url.set_username("");
            let _ = url.set_password(None);
            url.set_query(None);
            url.set_fragment(None);
            url.to_string()
        }
        Err(_) => "an unreadable Location".to_owned(),
    }
}

/// `text` with every occurrence of `credential` replaced.
fn redact(text: &str, credential: &str) -> String {
    match credential.is_empty() {
        true => text.to_owned(),
        false => text.replace(credential, "[redacted]"),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::PayloadFormat;

    fn client(api_base: &str) -> HookClient {
        let repository =
            HostedRepository::new(Forge::GITHUB, Url::parse(api_base).unwrap(), "o", "r");
        HookClient::new(repository, Token::new("ghp_secret_token")).unwrap()
    }

    #[test]
    fn plans_keep_the_first_match_and_delete_other_hooks_to_the_url() {
        let desired = DesiredHook::new(
            Url::parse("https://flux.example.com/hook/1").unwrap(),
            Secret::new("s"),
            crate::ReceiverEvents::all(),
        );
        let hook = |id: &str, url: &str, events: &[&str], payload| Hook {
            id: HookId::new(id),
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            active: true,
            payload,
            tls_verification: true,
            secret: crate::SecretState::Hidden,
            last_delivery: None,
        };
        let url = desired.url().as_str();
        let stale = hook("1", url, &["issues"], PayloadFormat::Json);
        let slack = hook("2", url, &["push"], PayloadFormat::Other("slack".into()));
        let current = hook("3", url, &["push"], PayloadFormat::Json);
        let elsewhere = hook(
            "4",
            "https://ci.example.com/",
            &["push"],
            PayloadFormat::Json,
        );
        let ids = |ids: &[&str]| ids.iter().map(|i| HookId::new(*i)).collect::<Vec<_>>();

        let github = Forge::GITHUB.api();
        let plan = |hooks: &[Hook], rewrite| {
            EnsurePlan::new(hooks, &desired, github, Forge::GITHUB, rewrite)
        };
        let all = [stale, slack.clone(), current, elsewhere.clone()];
        let found = plan(&all, false);
        assert_eq!(found.change, Change::Unchanged);
        assert_eq!(found.hook_id, Some(HookId::new("3")));
        assert_eq!(found.duplicates, ids(&["1", "2"]));
        assert!(!found.is_unchanged());

        let rotating = plan(&all, true);
        assert_eq!(rotating.change, Change::Updated);
        assert_eq!(rotating.hook_id, Some(HookId::new("1")));
        assert_eq!(rotating.duplicates, ids(&["2", "3"]));

        let uneditable = plan(&[slack, elsewhere.clone()], false);
        assert_eq!(
            (uneditable.change, uneditable.hook_id),
            (Change::Replaced, Some(HookId::new("2")))
        );
        assert!(uneditable.duplicates.is_empty());

        let nothing = plan(&[elsewhere], false);
        assert_eq!((nothing.change, nothing.hook_id), (Change::Created, None));
        assert!(nothing.duplicates.is_empty());
    }

    #[test]
    fn next_pages_must_stay_under_the_api_url() {
        let client = client("https://ghe.example.com/api/v3");
        let current =
            Url::parse("https://ghe.example.com/api/v3/repos/o/r/hooks?per_page=100").unwrap();
        let same = client
            .checked_next_page(
                &current,
                "https://ghe.example.com/api/v3/repos/o/r/hooks?page=2",
            )
            .unwrap();
        assert_eq!(same.query(), Some("page=2"));
        let relative = client.checked_next_page(&current, "hooks?page=3").unwrap();
        assert_eq!(relative.path(), "/api/v3/repos/o/r/hooks");
        for foreign in [
            "https://attacker.example/api/v3/repos/o/r/hooks?page=2",
            "http://ghe.example.com/api/v3/repos/o/r/hooks?page=2",
            "https://ghe.example.com:8443/api/v3/repos/o/r/hooks?page=2",
            "https://ghe.example.com/login?page=2",
        ] {
            let error = client.checked_next_page(&current, foreign).unwrap_err();
            assert!(
                matches!(error.kind(), ErrorKind::ForeignPageLink(_)),
                "{foreign}: {error}"
            );
            assert!(!error.to_string().contains("page=2"), "{error}");
        }
    }

    #[test]
    fn redirect_targets_are_shown_without_credentials() {
        let request = Url::parse("https://gitlab.example.com/api/v4/projects/g%2Fr/hooks").unwrap();
        let at = |location: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(LOCATION, HeaderValue::from_str(location).unwrap());
            redirect_target(&request, &headers)
        };
        assert_eq!(
            at("http://user:pw@other.example/api/v4/x?private_token=t#f"),
            "http://other.example/api/v4/x"
        );
        assert_eq!(
            at("/gitlab/api/v4/projects/g%2Fr/hooks"),
            "https://gitlab.example.com/gitlab/api/v4/projects/g%2Fr/hooks"
        );
        assert_eq!(
            redirect_target(&request, &HeaderMap::new()),
            "nowhere (no Location header)"
        );
    }

    #[test]
    fn host_messages_lose_credentials_and_length() {
        let client = client("https://api.github.com");
        let secret = Secret::new("hook-secret-value");
        let body = br#"{"message": "token ghp_secret_token and hook-secret-value are wrong"}"#;
        let message = client.host_message(StatusCode::BAD_REQUEST, body, Some(&secret));
        assert_eq!(message, "token [redacted] and [redacted] are wrong");
        let long = "x".repeat(1000);
        let message = client.host_message(StatusCode::BAD_GATEWAY, long.as_bytes(), None);
        assert_eq!(message.chars().count(), MAX_MESSAGE_CHARS + 1);
        let message = client.host_message(StatusCode::BAD_GATEWAY, b"", None);
        assert_eq!(message, "Bad Gateway");
    }

    #[test]
    fn api_urls_must_be_http() {
        let repository =
            HostedRepository::new(Forge::GITEA, Url::parse("mailto:a@b").unwrap(), "o", "r");
        let error = HookClient::new(repository, Token::new("t")).unwrap_err();
        assert!(
            matches!(error.kind(), ErrorKind::InvalidApiUrl(_)),
            "{error}"
        );
    }

    #[test]
    fn paths_encode_each_segment() {
        let repository = HostedRepository::new(
            Forge::GITLAB,
            Url::parse("https://gitlab.com/api/v4").unwrap(),
            "group/sub",
            "repo",
        );
        let client = HookClient::new(repository, Token::new("t")).unwrap();
        let url = client.collection_url(&Operation::ListHooks).unwrap();
        assert_eq!(
            url.as_str(),
            "https://gitlab.com/api/v4/projects/group%2Fsub%2Frepo/hooks"
        );
        let uuid = HookId::new("{d53603cc-3f67-45ea-b310-aaa5ef6ec061}");
        let url = client
            .hook_url(&Operation::DeleteHook(uuid.clone()), &uuid)
            .unwrap();
        assert!(
            url.as_str()
                .ends_with("/hooks/%7Bd53603cc-3f67-45ea-b310-aaa5ef6ec061%7D"),
            "{url}"
        );
    }
}
