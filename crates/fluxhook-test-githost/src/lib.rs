//! Fake Git host APIs on 127.0.0.1, for testing code that registers webhooks.
//!
//! Each fake speaks one host's documented hooks API: GitHub (`/repos/{owner}/{repo}/hooks`),
//! GitLab (`/projects/{id}/hooks`), Bitbucket Cloud (`/repositories/{workspace}/{slug}/hooks`),
//! Bitbucket Server / Data Center (`/projects/{KEY}/repos/{slug}/webhooks`), Gitea / Forgejo
//! and Gogs (`/repos/{owner}/{repo}/hooks`). It checks the method, the path, the credentials header and
//! the body the way the host does, rejects wrong ones with the host's status and error shape
//! (401, 404, 400/422), stores hooks, replies in the host's JSON shapes, paginates with a small
//! page size so that clients must follow the host's pagination, can inject rate limiting and
//! server errors, and records every request so that tests can assert what was (not) written.
//!
//! The fake GitHub also serves GitHub Apps ([`FakeHost::install_app`]): it checks app JWTs
//! as GitHub does and issues installation tokens that expire on a clock tests can move
//! ([`FakeHost::advance_clock`]). Hooks carry what the hosts tell of their deliveries
//! (GitHub's [`FakeHook::last_response`], GitLab's `alert_status` from
//! [`FakeHook::active`] and [`FakeHook::disabled_until`]); the fake GitLab serves each hook's
//! events, its deliveries newest first ([`FakeHook::delivery_events`]), unless it plays a
//! GitLab before 17.3 ([`FakeHost::without_hook_events`]).
//!
//! ```
//! use fluxhook_test_githost::{FakeHost, FakeHook, HostKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! let host = FakeHost::start(HostKind::GitHub).await?;
//! host.seed(FakeHook::new("https://flux.example.com/hook/1", &["push"]));
//!
//! let reply = reqwest::Client::new()
//!     .get(format!("{}/repos/{}/{}/hooks", host.api_base(), host.owner(), host.repo()))
//!     .bearer_auth(host.token())
//!     .header("user-agent", "doc-test")
//!     .send()
//!     .await
//!     .map_err(std::io::Error::other)?;
//! assert_eq!(reply.status(), 200);
//! assert_eq!(host.hooks().len(), 1);
//! assert_eq!(host.writes().len(), 0);
//! # Ok(())
//! # }
//! ```

mod bitbucket_cloud;
mod bitbucket_server;
mod dialect;
mod gitea;
mod github;
mod github_app;
mod gitlab;
mod gogs;
mod server;
mod tls;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

pub use github_app::FakeApp;

/// Which Git host a [`FakeHost`] imitates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum HostKind {
    /// GitHub.com and GitHub Enterprise Server (REST API under `/api/v3`).
    GitHub,
    /// GitLab.com and self-managed GitLab (REST API under `/api/v4`).
    GitLab,
    /// Bitbucket Cloud (REST API under `/2.0`).
    BitbucketCloud,
    /// Bitbucket Server and Data Center (REST API under `/rest/api/1.0`).
    BitbucketServer,
    /// Gitea and Forgejo (REST API under `/api/v1`).
    Gitea,
    /// Gogs (REST API under `/api/v1`).
    Gogs,
}

impl HostKind {
    /// Every host kind, for tests that cover them all.
    pub const ALL: [HostKind; 6] = [
        HostKind::GitHub,
        HostKind::GitLab,
        HostKind::BitbucketCloud,
        HostKind::BitbucketServer,
        HostKind::Gitea,
        HostKind::Gogs,
    ];

    /// The host's name as fluxhook's `--provider` flag and annotations write it.
    pub fn name(self) -> &'static str {
        match self {
            HostKind::GitHub => "github",
            HostKind::GitLab => "gitlab",
            HostKind::BitbucketCloud => "bitbucket-cloud",
            HostKind::BitbucketServer => "bitbucket-server",
            HostKind::Gitea => "gitea",
            HostKind::Gogs => "gogs",
        }
    }

    /// The path under which this host serves its REST API.
    pub fn api_prefix(self) -> &'static str {
        match self {
            HostKind::GitHub => "/api/v3",
            HostKind::GitLab => "/api/v4",
            HostKind::BitbucketCloud => "/2.0",
            HostKind::BitbucketServer => "/rest/api/1.0",
            HostKind::Gitea | HostKind::Gogs => "/api/v1",
        }
    }
}

/// How a [`FakeHost`] is set up: which host, which repository, which token it accepts.
#[derive(Clone)]
pub struct FakeConfig {
    /// The host imitated.
    pub kind: HostKind,
    /// Repository owner: GitHub/Gitea owner, GitLab namespace (may hold subgroups, `a/b`),
    /// Bitbucket Cloud workspace, Bitbucket Server project key.
    pub owner: String,
    /// Repository name (slug).
    pub repo: String,
    /// The only access token accepted.
    pub token: String,
    /// Largest page the fake returns, whatever the client asks for.
    pub page_size: usize,
    /// Serve HTTPS with a certificate for `127.0.0.1` issued by a test CA that clients do
    /// not trust unless given [`FakeHost::ca_pem`], as a self-managed host behind a private
    /// CA; plain HTTP otherwise.
    pub tls: bool,
}

impl std::fmt::Debug for FakeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeConfig")
            .field("kind", &self.kind)
            .field("owner", &self.owner)
            .field("repo", &self.repo)
            .field("token", &"[redacted]")
            .field("page_size", &self.page_size)
            .field("tls", &self.tls)
            .finish()
    }
}

impl FakeConfig {
    /// Defaults for `kind`: a repository typical of the host, a fixed token, pages of 2 hooks.
    pub fn new(kind: HostKind) -> Self {
        let (owner, repo) = match kind {
            HostKind::GitHub => ("octocat", "hello-world"),
            HostKind::GitLab => ("platform/infra", "fleet"),
            HostKind::BitbucketCloud => ("atlassian", "stash-example-plugin"),
            HostKind::BitbucketServer => ("PRJ", "fleet"),
            HostKind::Gitea => ("gitea", "fleet"),
            HostKind::Gogs => ("gogs", "fleet"),
        };
        FakeConfig {
            kind,
            owner: owner.to_owned(),
            repo: repo.to_owned(),
            token: "fake-host-token-0123456789".to_owned(),
            page_size: 2,
            tls: false,
        }
    }
}

/// A hook as the fake stores it, independent of the host's reply shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeHook {
    /// Numeric id (Bitbucket Cloud shows it as a `{uuid}` built from this number).
    pub id: u64,
    /// Delivery URL.
    pub url: String,
    /// Host-native event names; for GitLab the names of the `*_events` flags that are on.
    pub events: Vec<String>,
    /// The secret (or GitLab `token`); hosts never show it in replies except Bitbucket Server.
    pub secret: Option<String>,
    /// Whether deliveries are enabled.
    pub active: bool,
    /// Payload content type: `json` or `form` (GitHub, Gitea).
    pub content_type: String,
    /// Whether the host verifies the receiver's TLS certificate.
    pub tls_verification: bool,
    /// GitLab/Bitbucket Server hook `name`.
    pub name: Option<String>,
    /// GitLab/Bitbucket Cloud hook `description`.
    pub description: Option<String>,
    /// Gitea hook `type` (`gitea`, `forgejo`, `gogs`, `slack`, ...); GitHub's `name` (`web`).
    pub hook_type: String,
    /// GitHub: the hook's `last_response`, the outcome of its last delivery; `None` shows
    /// GitHub's `{"code": null, "status": "unused", "message": null}` of a hook that has
    /// delivered nothing.
    pub last_response: Option<LastResponse>,
    /// GitLab: for a hook that is not [`active`](Self::active), the time until which GitLab
    /// disabled it after 5xx answers (`alert_status: temporarily_disabled`, `disabled_until`);
    /// `None` shows it disabled for good after 4xx answers (`alert_status: disabled`).
    pub disabled_until: Option<String>,
    /// GitLab: the `response_status` of the hook's logged deliveries (its hook events),
    /// newest first: `"200"`, `"500"`, or GitLab's words such as `"internal error"`.
    pub delivery_events: Vec<String>,
}

/// GitHub's `last_response` of a hook: the outcome of its last delivery, as the hooks API
/// shows it (`{"code": 200, "status": "active", "message": "OK"}`; `{"code": 504, "status":
/// "timeout", "message": ""}` for a receiver that did not answer in time, DamageLabs/clahub#38).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastResponse {
    /// The HTTP status the receiver answered, if it did.
    pub code: Option<u16>,
    /// GitHub's status of the delivery.
    pub status: String,
    /// GitHub's message, if any.
    pub message: Option<String>,
}

impl FakeHook {
    /// A hook to `url` for `events`, active, JSON, TLS verified, no secret and no labels.
    pub fn new(url: impl Into<String>, events: &[&str]) -> Self {
        FakeHook {
            id: 0,
            url: url.into(),
            events: events.iter().map(|e| (*e).to_owned()).collect(),
            secret: None,
            active: true,
            content_type: "json".to_owned(),
            tls_verification: true,
            name: None,
            description: None,
            hook_type: String::new(),
            last_response: None,
            disabled_until: None,
            delivery_events: Vec::new(),
        }
    }
}

/// A failure the fake serves instead of handling the next requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// `429 Too Many Requests` with `Retry-After: <secs>`, in the host's error shape.
    TooManyRequests {
        /// Value of `Retry-After`, in seconds.
        retry_after_secs: u64,
    },
    /// GitHub's secondary rate limit: `403 Forbidden` with the documented message ("You have
    /// exceeded a secondary rate limit...") and, when GitHub sends one, a `Retry-After`
    /// ("Exceeding the secondary rate limit",
    /// <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>:
    /// "If the retry-after response header is present, you should not retry your request
    /// until after that many seconds has elapsed. [...] Otherwise, wait for at least one
    /// minute before retrying"). A request before then is marked
    /// [`RecordedRequest::early`].
    SecondaryRateLimit {
        /// The `Retry-After` header, if any.
        retry_after: Option<RetryAfterHeader>,
    },
    /// Primary rate limit spent: `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (Unix
    /// seconds) set `reset_after_secs` from now; 403 on GitHub, 429 elsewhere.
    RateLimitExhausted {
        /// Seconds from now until the reset time the fake announces.
        reset_after_secs: u64,
    },
    /// A server error with this status (500, 502, 503...).
    ServerError {
        /// HTTP status code, 500 to 599.
        status: u16,
    },
    /// The hook the next `DELETE` names is deleted just before that request is handled (by a
    /// user in the web UI, or another run between its list and its delete), so the host
    /// answers as it answers for a hook that is not there: GitHub, GitLab, Gitea, Bitbucket
    /// `404 Not Found`; Gogs `204`, as it answers every delete. Requests with another method
    /// are served as usual and leave it queued.
    HookDeletedFirst,
    /// A redirect with an empty body, as hosts answer a moved resource (GitHub: `301` for a
    /// renamed or transferred repository, `302`/`307` for a temporary move; "Follow
    /// redirects" in <https://docs.github.com/en/rest/using-the-rest-api/best-practices-for-using-the-rest-api>)
    /// and as the proxy in front of a self-managed host answers `http://` (`301`/`308` to
    /// `https://`).
    Redirect {
        /// HTTP status code, 301 to 308.
        status: u16,
        /// The `Location` header.
        location: String,
        /// Only requests with this method (`POST`...) get it; others are served as usual and
        /// leave it queued. `None`: the next request, whatever its method.
        method: Option<String>,
    },
}

/// The `Retry-After` header a [`Fault`] sends, in either of its forms (RFC 9110, section
/// 10.2.3): what the fake injects, not a retry policy (the client's is `HostBackoff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryAfterHeader {
    /// `Retry-After: <seconds>`.
    Seconds(u64),
    /// `Retry-After: <HTTP date>`, this many seconds from when the fault is served.
    DateIn(u64),
}

impl RetryAfterHeader {
    /// The header's value for a reply served now, and how long from now it asks to wait.
    fn header_value(self) -> (String, std::time::Duration) {
        match self {
            RetryAfterHeader::Seconds(seconds) => {
                (seconds.to_string(), std::time::Duration::from_secs(seconds))
            }
            RetryAfterHeader::DateIn(seconds) => {
                let now = std::time::SystemTime::now();
                let value = httpdate::fmt_http_date(now + std::time::Duration::from_secs(seconds));
                // The date as written, whole seconds: what a client can know.
                let wait = httpdate::parse_http_date(&value)
                    .ok()
                    .and_then(|date| date.duration_since(now).ok())
                    .unwrap_or_default();
                (value, wait)
            }
        }
    }
}

impl Fault {
    /// Whether the fault is served to a request with `method`.
    fn applies_to(&self, method: &str) -> bool {
        match self {
            Fault::Redirect {
                method: Some(only), ..
            } => only.eq_ignore_ascii_case(method),
            Fault::HookDeletedFirst => method.eq_ignore_ascii_case("DELETE"),
            _ => true,
        }
    }
}

/// One request the fake received.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedRequest {
    /// HTTP method (`GET`, `POST`, ...).
    pub method: String,
    /// Path as sent, still percent-encoded.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Body parsed as JSON, if there was a JSON body.
    pub body: Option<serde_json::Value>,
    /// Status the fake answered with.
    pub status: u16,
    /// Whether it came before the wait the fake last asked for had passed: the
    /// `Retry-After` of a rate limit (seconds, or the HTTP date as written), the reset time
    /// of a spent limit, or the minute after GitHub's secondary limit without either.
    /// GitHub answers such a request with the limit again ("Continuing to make requests
    /// while you are rate limited may result in the banning of your integration",
    /// <https://docs.github.com/en/rest/using-the-rest-api/rate-limits-for-the-rest-api>);
    /// the fake serves it, so that clients with a virtual clock can be tested, and marks it
    /// here so that a client that came back early is caught.
    pub early: bool,
}

impl RecordedRequest {
    /// Whether the request asked to change state (anything but GET/HEAD).
    pub fn is_write(&self) -> bool {
        !matches!(self.method.as_str(), "GET" | "HEAD")
    }
}

#[derive(Debug, Default)]
struct State {
    hooks: Vec<FakeHook>,
    next_id: u64,
    requests: Vec<RecordedRequest>,
    faults: Vec<Fault>,
    /// Until when the last rate limit served asked clients to wait.
    wait_until: Option<std::time::Instant>,
    /// GitHub Apps: the one installed, and the installation tokens issued.
    apps: github_app::Apps,
    /// GitLab: serve a GitLab before 17.3, without hook events.
    no_hook_events: bool,
}

#[derive(Debug)]
pub(crate) struct Shared {
    config: FakeConfig,
    base_url: String,
    state: Mutex<State>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock must not hide the original failure.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A running fake Git host; it stops when dropped.
#[derive(Debug)]
pub struct FakeHost {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl FakeHost {
    /// Starts a fake of `kind` with [`FakeConfig::new`] defaults on `127.0.0.1:<free port>`.
    pub async fn start(kind: HostKind) -> std::io::Result<FakeHost> {
        FakeHost::start_with(FakeConfig::new(kind)).await
    }

    /// Starts a fake set up by `config` on `127.0.0.1:<free port>`.
    pub async fn start_with(config: FakeConfig) -> std::io::Result<FakeHost> {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
        let addr = listener.local_addr()?;
        let scheme = match config.tls {
            true => "https",
            false => "http",
        };
        let tls = config.tls;
        let shared = Arc::new(Shared {
            config,
            base_url: format!("{scheme}://{addr}"),
            state: Mutex::new(State {
                next_id: 1,
                ..State::default()
            }),
        });
        let (stop, stopped) = oneshot::channel::<()>();
        let app = server::router(Arc::clone(&shared));
        tokio::spawn(async move {
            let served = match tls {
                true => tls::serve(listener, app, stopped).await,
                false => {
                    axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            // Either a stop signal or the handle being dropped ends the server.
                            let _ = stopped.await;
                        })
                        .await
                }
            };
            if let Err(error) = served {
                eprintln!("fake git host on {addr} stopped: {error}");
            }
        });
        Ok(FakeHost {
            shared,
            addr,
            stop: Some(stop),
        })
    }

    /// The host imitated.
    pub fn kind(&self) -> HostKind {
        self.shared.config.kind
    }

    /// The PEM certificate of the CA that issued the certificate of fakes started with
    /// [`FakeConfig::tls`].
    pub fn ca_pem() -> &'static str {
        tls::CA_PEM
    }

    /// `http://127.0.0.1:<port>` (`https://` with [`FakeConfig::tls`]), the web root.
    pub fn url(&self) -> &str {
        &self.shared.base_url
    }

    /// The URL the host's documented API paths hang from, e.g. `http://127.0.0.1:<port>/api/v3`.
    pub fn api_base(&self) -> String {
        format!("{}{}", self.shared.base_url, self.kind().api_prefix())
    }

    /// The socket address the fake listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The only access token the fake accepts.
    pub fn token(&self) -> &str {
        &self.shared.config.token
    }

    /// Repository owner (namespace, workspace or project key).
    pub fn owner(&self) -> &str {
        &self.shared.config.owner
    }

    /// Repository name.
    pub fn repo(&self) -> &str {
        &self.shared.config.repo
    }

    /// The hooks stored now, in creation order.
    pub fn hooks(&self) -> Vec<FakeHook> {
        self.shared.state().hooks.clone()
    }

    /// Stores `hook` as if created earlier (its `id` is replaced); returns the new id.
    pub fn seed(&self, mut hook: FakeHook) -> u64 {
        let mut state = self.shared.state();
        hook.id = state.next_id;
        state.next_id += 1;
        if hook.hook_type.is_empty() {
            hook.hook_type = dialect::for_kind(self.kind())
                .default_hook_type()
                .to_owned();
        }
        let id = hook.id;
        state.hooks.push(hook);
        id
    }

    /// Changes the stored hook `id` as the host would on its own (GitLab disabling a hook
    /// after failed deliveries, a user editing it in the web UI); false if there is none.
    pub fn edit_hook(&self, id: u64, edit: impl FnOnce(&mut FakeHook)) -> bool {
        let mut state = self.shared.state();
        match state.hooks.iter_mut().find(|hook| hook.id == id) {
            Some(hook) => {
                edit(hook);
                true
            }
            None => false,
        }
    }

    /// Deletes the stored hook `id` as a user would in the web UI; false if there is none.
    pub fn remove_hook(&self, id: u64) -> bool {
        let mut state = self.shared.state();
        let before = state.hooks.len();
        state.hooks.retain(|hook| hook.id != id);
        state.hooks.len() != before
    }

    /// Installs `app` on the repository's owner (GitHub only): its JWTs are exchanged at
    /// `POST /app/installations/{id}/access_tokens` for installation tokens, which the hooks
    /// API accepts beside [`token`](Self::token) until they expire.
    pub fn install_app(&self, app: FakeApp) {
        self.shared.state().apps.install(app);
    }

    /// How many installation tokens the fake issued.
    pub fn installation_tokens_issued(&self) -> usize {
        self.shared.state().apps.issued()
    }

    /// Makes every installation token issued so far expired, as an hour passing would.
    pub fn expire_installation_tokens(&self) {
        self.shared.state().apps.expire_all();
    }

    /// Moves the fake's clock `by` ahead of the system's, for app JWT checks and installation
    /// token expiry: with a client on a clock moved alike, time passes without waiting.
    pub fn advance_clock(&self, by: std::time::Duration) {
        self.shared.state().apps.clock_offset += by;
    }

    /// Serves a GitLab before 17.3, where `GET /projects/:id/hooks/:hook_id/events` is an
    /// unknown route (404) and hooks' [`delivery_events`](FakeHook::delivery_events) are not
    /// shown.
    pub fn without_hook_events(&self) {
        self.shared.state().no_hook_events = true;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.state().requests.clone()
    }

    /// The requests that asked to change state.
    pub fn writes(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_write)
            .collect()
    }

    /// Forgets the requests recorded so far.
    pub fn clear_requests(&self) {
        self.shared.state().requests.clear();
    }

    /// Serves `fault` to the next `times` requests, after any faults already queued.
    pub fn inject(&self, fault: Fault, times: usize) {
        let mut state = self.shared.state();
        state.faults.extend(std::iter::repeat_n(fault, times));
    }
}

impl Drop for FakeHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The server may already be gone; nothing to do then.
            let _ = stop.send(());
        }
    }
}
