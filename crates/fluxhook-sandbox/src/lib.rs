//! A Flux cluster in a box, served by the real `fluxhook-receiver` binary.
//!
//! End-to-end tests and `cargo xtask demo` need the same thing: a Kubernetes
//! API with Flux's kinds (the fake of `fluxhook-test-apiserver`), a kubeconfig
//! pointing at it, and the receiver binary started exactly as it runs in a
//! cluster, on free loopback ports. [`Sandbox`] sets that up, waits until the
//! receiver says it is ready, sends webhooks, reads back what Flux would see,
//! and stops the receiver (SIGTERM) when asked or dropped. [`demo`] holds the
//! seed objects of the README's demo and a signed GitHub push for them.
//!
//! The receiver runs as it is deployed: as ServiceAccount
//! `flux-system/fluxhook-receiver`, against an API server that authorizes
//! with RBAC, under the Roles and bindings of the deploy manifests as
//! kustomize renders them ([`deployed_rbac`]; kubectl must be installed). A
//! call those rules do not allow is answered 403 Forbidden, as in a cluster,
//! and [`Sandbox::refused_requests`] lists it. [`Access`] runs it under
//! other rules (a test that removes one) or unrestricted.
//!
//! ```no_run
//! # async fn run() -> Result<(), fluxhook_sandbox::SandboxError> {
//! use fluxhook_sandbox::{Sandbox, demo};
//!
//! let sandbox = Sandbox::start("target/debug/fluxhook-receiver").await?;
//! for object in demo::objects() {
//!     sandbox.apply(object)?;
//! }
//! let path = sandbox.wait_for_webhook_path(demo::NAMESPACE, demo::RECEIVER).await?;
//! let delivery = demo::github_push();
//! let (status, _) = sandbox.post(&path, delivery.headers, delivery.body).await?;
//! assert_eq!(status, 200);
//! # Ok(())
//! # }
//! ```

pub mod burst;
pub mod demo;
mod process;
mod replica;

pub use process::ReceiverUrls;
pub use replica::Replica;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fluxhook_manifests::Overlay;
use fluxhook_test_apiserver::{
    ApiError, AuthorizationMode, Identity, RequestRecord, ServerOptions, TestApiServer,
};
use http::StatusCode;
use serde_json::Value;
use tempfile::TempDir;
use tokio::process::Child;

/// How long the receiver may take to become ready, or a Receiver to be served.
///
/// A hang guard, not a speed check: every wait ends as soon as its condition
/// holds, so this bound only matters when something is wrong. It is generous
/// because CI runs the suite on a machine that is still building (a 60 s
/// bound was once reached there by a scenario that passed on its own).
pub const DEADLINE: Duration = Duration::from_secs(180);

/// The namespace of the receiver's ServiceAccount, as deployed.
pub const SERVICE_ACCOUNT_NAMESPACE: &str = "flux-system";
/// The receiver's ServiceAccount, as deployed.
pub const SERVICE_ACCOUNT: &str = "fluxhook-receiver";

/// Whose rights the receiver runs with.
#[derive(Debug, Clone, Default)]
pub enum Access {
    /// ServiceAccount `flux-system/fluxhook-receiver` under the RBAC objects of
    /// the rendered deploy manifests ([`deployed_rbac`]); the default.
    #[default]
    Deployed,
    /// That ServiceAccount under these RBAC objects (Roles, ClusterRoles and
    /// their bindings) instead, e.g. the deployed ones less a rule.
    Rbac(Vec<Value>),
    /// The administrator, against an API server that allows every request.
    Unrestricted,
}

/// The kinds of RBAC objects.
const RBAC_KINDS: [&str; 4] = ["ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"];

/// The RBAC objects (Roles, ClusterRoles and their bindings) of the deploy
/// manifests, as an operator applies them: `deploy/overlays/standalone`
/// rendered with `kubectl kustomize` (through `fluxhook-manifests`), the
/// overlay in which fluxhook manages Receivers. Rendered once per process.
pub fn deployed_rbac() -> Result<Vec<Value>, SandboxError> {
    static RENDERED: OnceLock<Result<Vec<Value>, String>> = OnceLock::new();
    RENDERED
        .get_or_init(|| {
            let manifests = fluxhook_manifests::render(Overlay::Standalone, &[])
                .map_err(|error| error.to_string())?;
            let rbac: Vec<Value> = manifests
                .documents()
                .iter()
                .filter(|document| {
                    document.api_version() == "rbac.authorization.k8s.io/v1"
                        && RBAC_KINDS.contains(&document.kind())
                })
                .map(|document| document.value().clone())
                .collect();
            if rbac.is_empty() {
                return Err(format!("{} holds no RBAC objects", manifests.origin()));
            }
            Ok(rbac)
        })
        .clone()
        .map_err(|message| SandboxError::Manifests { message })
}

/// How to start a [`Sandbox`]: [`Sandbox::builder`].
#[derive(Debug, Clone)]
pub struct SandboxBuilder {
    binary: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    access: Access,
    objects: Vec<Value>,
}

impl SandboxBuilder {
    /// Objects stored in the API server before the receiver starts (as
    /// [`Sandbox::apply`] stores them), e.g. thousands of Receivers and their
    /// Secrets for a measurement of the receiver's start-up.
    #[must_use]
    pub fn objects(mut self, objects: impl IntoIterator<Item = Value>) -> Self {
        self.objects.extend(objects);
        self
    }

    /// More flags for the receiver (e.g. `--no-cross-namespace-refs`).
    #[must_use]
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|arg| (*arg).to_owned()));
        self
    }

    /// An environment variable for the receiver.
    #[must_use]
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.envs.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Whose rights the receiver runs with (default [`Access::Deployed`]).
    #[must_use]
    pub fn access(mut self, access: Access) -> Self {
        self.access = access;
        self
    }

    /// Starts the API server and the receiver without waiting for it to be
    /// ready: for receivers expected to fail, or to wait for in another way.
    pub async fn launch(self) -> Result<Sandbox, SandboxError> {
        Sandbox::launch_with(self).await
    }

    /// Starts them and waits until the receiver is ready.
    pub async fn start(self) -> Result<Sandbox, SandboxError> {
        let mut sandbox = self.launch().await?;
        sandbox.wait_until_ready().await?;
        Ok(sandbox)
    }
}

/// What went wrong setting up or talking to the sandbox.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The deploy manifests could not be rendered.
    #[error("the deploy manifests: {message}")]
    Manifests {
        /// Why.
        message: String,
    },
    /// A local operation failed (ports, files, processes).
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The fake API server refused a request.
    #[error("the API server refused {what}: {source}")]
    Api {
        /// What was asked.
        what: String,
        /// Its answer.
        source: ApiError,
    },
    /// The receiver exited or never became ready.
    #[error("fluxhook-receiver {problem}; its log ends with:\n{log}")]
    Receiver {
        /// What happened.
        problem: String,
        /// The end of its log.
        log: String,
    },
    /// An HTTP request to the receiver failed.
    #[error("request to {url} failed: {source}")]
    Http {
        /// Where it went.
        url: String,
        /// Why it failed.
        source: reqwest::Error,
    },
}

/// The fake API server and a running `fluxhook-receiver` serving it.
pub struct Sandbox {
    api: TestApiServer,
    /// Who the receiver runs as.
    identity: Identity,
    dir: TempDir,
    child: Child,
    /// How the receiver was started, to start it again.
    process: Process,
    urls: ReceiverUrls,
    http: reqwest::Client,
}

/// The receiver's command line and ports, kept to start it again the same way.
#[derive(Debug, Clone)]
struct Process {
    binary: PathBuf,
    args: Vec<String>,
    envs: Vec<(String, String)>,
    /// Webhooks, health, metrics.
    ports: [u16; 3],
}

impl Process {
    /// Starts the receiver with the kubeconfig in `dir`, its output appended to the log
    /// there.
    fn spawn(&self, dir: &Path) -> Result<Child, SandboxError> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("receiver.log"))
            .map_err(io("open the receiver log"))?;
        let stderr = log.try_clone().map_err(io("share the receiver log"))?;
        process::receiver_command(&self.binary, self.ports)
            .args(&self.args)
            .env("KUBECONFIG", dir.join("receiver.kubeconfig"))
            .envs(self.envs.iter().map(|(name, value)| (name, value)))
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(io(format!("start {}", self.binary.display())))
    }
}

impl Sandbox {
    /// Starts the API server with Flux's kinds and the `flux-system`
    /// namespace, then the receiver `binary` against it (with the deployed
    /// RBAC), and waits until the receiver is ready.
    pub async fn start(binary: impl AsRef<Path>) -> Result<Self, SandboxError> {
        Self::builder(binary).start().await
    }

    /// As [`Sandbox::start`], with more flags for the receiver (e.g.
    /// `--no-cross-namespace-refs`).
    pub async fn start_with_args(
        binary: impl AsRef<Path>,
        args: &[&str],
    ) -> Result<Self, SandboxError> {
        Self::builder(binary).args(args).start().await
    }

    /// Starts the API server and the receiver with these flags and
    /// environment variables, without waiting for it to be ready: for
    /// receivers expected to fail, or to wait for in another way.
    pub async fn launch(
        binary: impl AsRef<Path>,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Self, SandboxError> {
        let mut builder = Self::builder(binary).args(args);
        for (name, value) in envs {
            builder = builder.env(name, value);
        }
        builder.launch().await
    }

    /// A sandbox for the receiver `binary`, to configure before it starts.
    pub fn builder(binary: impl AsRef<Path>) -> SandboxBuilder {
        SandboxBuilder {
            binary: binary.as_ref().to_owned(),
            args: Vec::new(),
            envs: Vec::new(),
            access: Access::Deployed,
            objects: Vec::new(),
        }
    }

    async fn launch_with(builder: SandboxBuilder) -> Result<Self, SandboxError> {
        let SandboxBuilder {
            binary,
            args,
            envs,
            access,
            objects,
        } = builder;
        let rbac = match access {
            Access::Deployed => Some(deployed_rbac()?),
            Access::Rbac(objects) => Some(objects),
            Access::Unrestricted => None,
        };
        let mode = match rbac {
            Some(_) => AuthorizationMode::Rbac,
            None => AuthorizationMode::AlwaysAllow,
        };
        // Built-in kinds (Namespace, Secret, Event, RBAC, ...) are there from the start.
        let options = ServerOptions::default()
            .authorization(mode)
            .flux()
            .namespaces(&[demo::NAMESPACE]);
        let api = TestApiServer::start_with(options)
            .await
            .map_err(io("start the API server"))?;
        let identity = match &rbac {
            Some(objects) => {
                for object in objects {
                    let what = format!(
                        "{} {}",
                        object["kind"].as_str().unwrap_or("object"),
                        object["metadata"]["name"].as_str().unwrap_or("")
                    );
                    api.apply_json(object.clone())
                        .map_err(|source| SandboxError::Api { what, source })?;
                }
                api.service_account(SERVICE_ACCOUNT_NAMESPACE, SERVICE_ACCOUNT)
            }
            None => api.admin(),
        };
        for object in objects {
            let what = format!(
                "{} {}",
                object["kind"].as_str().unwrap_or("object"),
                object["metadata"]["name"].as_str().unwrap_or("")
            );
            api.apply_json(object)
                .map_err(|source| SandboxError::Api { what, source })?;
        }

        let dir = tempfile::tempdir().map_err(io("create a scratch folder"))?;
        api.write_kubeconfig(dir.path().join("kubeconfig"))
            .map_err(io("write the kubeconfig"))?;
        let receiver_kubeconfig = dir.path().join("receiver.kubeconfig");
        api.write_kubeconfig_for(&identity, &receiver_kubeconfig)
            .map_err(io("write the receiver's kubeconfig"))?;
        let ports = [free_port()?, free_port()?, free_port()?];
        let process = Process {
            binary,
            args,
            envs,
            ports,
        };
        let child = process.spawn(dir.path())?;

        Ok(Self {
            api,
            identity,
            dir,
            child,
            process,
            urls: ReceiverUrls::new(ports),
            http: reqwest::Client::new(),
        })
    }

    process::shared_methods!(receiver_error);

    /// The fake API server.
    pub fn api(&self) -> &TestApiServer {
        &self.api
    }

    /// A kubeconfig reaching the API server as its administrator.
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("kubeconfig")
    }

    /// The kubeconfig the receiver uses (its ServiceAccount's token).
    pub fn receiver_kubeconfig_path(&self) -> PathBuf {
        self.dir.path().join("receiver.kubeconfig")
    }

    /// Who the receiver runs as: ServiceAccount `flux-system/fluxhook-receiver`,
    /// or the administrator with [`Access::Unrestricted`].
    pub fn receiver_identity(&self) -> &Identity {
        &self.identity
    }

    /// The receiver's requests the API server refused with 401 or 403, in
    /// order: with the deployed RBAC, calls the manifests forgot.
    pub fn refused_requests(&self) -> Vec<RequestRecord> {
        self.api
            .requests()
            .all()
            .into_iter()
            .filter(|record| {
                record.user.as_deref() == Some(self.identity.name())
                    && matches!(record.status, Some(401 | 403))
                    && !is_priority_and_fairness_probe(record)
            })
            .collect()
    }

    /// A scratch folder that lives as long as the sandbox.
    pub fn scratch_dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the receiver's servers listen.
    pub fn urls(&self) -> &ReceiverUrls {
        &self.urls
    }

    /// Creates `object`, or merges it into the one that exists.
    pub fn apply(&self, object: Value) -> Result<Value, SandboxError> {
        let what = format!(
            "{} {}",
            object["kind"].as_str().unwrap_or("object"),
            object["metadata"]["name"].as_str().unwrap_or("")
        );
        self.api
            .apply_json(object)
            .map_err(|source| SandboxError::Api { what, source })
    }

    /// The object, if it exists.
    pub fn get(&self, api_version: &str, kind: &str, namespace: &str, name: &str) -> Option<Value> {
        self.api.get(api_version, kind, namespace, name).ok()
    }

    /// The `reconcile.fluxcd.io/requestedAt` annotation of an object.
    pub fn requested_at(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Option<String> {
        let object = self.get(api_version, kind, namespace, name)?;
        object["metadata"]["annotations"]["reconcile.fluxcd.io/requestedAt"]
            .as_str()
            .map(str::to_owned)
    }

    /// Waits until the Receiver is `Ready=True` and returns its
    /// `status.webhookPath`.
    pub async fn wait_for_webhook_path(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<String, SandboxError> {
        self.wait_for_receiver(namespace, name, |status| {
            let ready = status["conditions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|c| c["type"] == "Ready" && c["status"] == "True");
            ready
                .then(|| status["webhookPath"].as_str().map(str::to_owned))
                .flatten()
        })
        .await
    }

    /// Waits until `accept` finds what it looks for in the Receiver's status.
    pub async fn wait_for_receiver<T>(
        &self,
        namespace: &str,
        name: &str,
        accept: impl Fn(&Value) -> Option<T>,
    ) -> Result<T, SandboxError> {
        let started = Instant::now();
        loop {
            let receiver = self.get(demo::RECEIVER_API_VERSION, "Receiver", namespace, name);
            if let Some(found) = receiver.and_then(|r| accept(&r["status"])) {
                return Ok(found);
            }
            if started.elapsed() > DEADLINE {
                let status = self
                    .get(demo::RECEIVER_API_VERSION, "Receiver", namespace, name)
                    .map(|r| r["status"].to_string())
                    .unwrap_or_else(|| "the Receiver does not exist".into());
                return Err(self.receiver_error(format!(
                    "did not bring Receiver {namespace}/{name} to the awaited status within \
                     {DEADLINE:?}; its status: {status}"
                )));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Deletes the object at the API `path` (e.g.
    /// `/api/v1/namespaces/flux-system/secrets/webhook-token`) as the administrator, as
    /// `kubectl delete` does: through the API, so that finalizers hold it and watches see it
    /// go. The status of the answer.
    pub async fn delete(&self, path: &str) -> Result<StatusCode, SandboxError> {
        let url = format!("{}{path}", self.api.url());
        let response = self
            .http
            .delete(&url)
            .bearer_auth(self.api.admin().token())
            .send()
            .await
            .map_err(|source| SandboxError::Http { url, source })?;
        Ok(response.status())
    }

    /// GETs a URL (e.g. the metrics endpoint); the status and body.
    pub async fn get_url(&self, url: &str) -> Result<(StatusCode, String), SandboxError> {
        let http_error = |source| SandboxError::Http {
            url: url.to_string(),
            source,
        };
        let response = self.http.get(url).send().await.map_err(http_error)?;
        let status = response.status();
        Ok((status, response.text().await.map_err(http_error)?))
    }

    /// The receiver's process id, while it runs (e.g. to read its memory
    /// or CPU time from `/proc`).
    pub fn receiver_pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// What the receiver has logged so far.
    pub fn receiver_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.log")).unwrap_or_default()
    }

    /// Waits (bounded) for the receiver to exit by itself.
    pub async fn wait_for_exit(&mut self) -> Result<ExitStatus, SandboxError> {
        let exit = process::wait_for_exit(&mut self.child, "receiver").await;
        exit.map_err(|trouble| trouble.into_error(|problem| self.receiver_error(problem)))
    }

    /// Kills the receiver with SIGKILL, as a node failing does: no drain, no lease release.
    pub async fn kill(&mut self) -> Result<(), SandboxError> {
        self.child.kill().await.map_err(io("kill the receiver"))
    }

    /// Sends SIGTERM and waits (bounded) for the receiver to exit.
    pub async fn stop(&mut self) -> Result<ExitStatus, SandboxError> {
        process::sigterm(&self.child)
            .map_err(|trouble| trouble.into_error(|problem| self.receiver_error(problem)))?;
        self.wait_for_exit().await
    }

    /// Restarts the receiver as a rolling update does: SIGTERM and a wait (bounded) for it to
    /// drain and exit, then the same binary with the same flags on the same ports, and a wait
    /// until it is ready. Its log goes on in the same file. The exit status of the old
    /// process is returned.
    ///
    /// Between the two, connections to its ports are refused. Another process could take a
    /// port in that moment, as with any port the sandbox picks; the new receiver then fails
    /// to start, loudly.
    pub async fn restart(&mut self) -> Result<ExitStatus, SandboxError> {
        let status = self.stop().await?;
        self.child = self.process.spawn(self.dir.path())?;
        self.wait_until_ready().await?;
        Ok(status)
    }

    fn receiver_error(&self, problem: String) -> SandboxError {
        let mut problem = problem;
        let refused = self.refused_requests();
        if !refused.is_empty() {
            problem.push_str("; the API server refused it:");
            for record in refused {
                problem.push_str(&format!(
                    "\n  {} {}{}{} (HTTP {})",
                    record.method,
                    record.path,
                    if record.query.is_empty() { "" } else { "?" },
                    record.query,
                    record.status.unwrap_or_default()
                ));
            }
        }
        SandboxError::Receiver {
            problem,
            log: process::tail(&self.receiver_log()),
        }
    }
}

/// A port nobody listens on now. Another process could take it before the
/// receiver binds it; on loopback in a test run that does not happen in
/// practice, and the receiver then fails loudly.
fn free_port() -> Result<u16, SandboxError> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(io("find a free port"))?;
    Ok(listener
        .local_addr()
        .map_err(io("find a free port"))?
        .port())
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SandboxError {
    let what = what.into();
    move |source| SandboxError::Io { what, source }
}

/// fluxcd/cli-utils `flowcontrol.IsEnabled`, run by the receiver at start-up: a
/// `HEAD /livez/ping` that reads only the answer's Priority and Fairness headers. A
/// ServiceAccount is refused it in every cluster (the bootstrap policy's
/// `system:public-info-viewer` grants `get` on `/livez`, not `head` on `/livez/ping`), and
/// kube-apiserver's filter chain classifies the request before authorizing it, so the 403
/// still carries the headers. No RBAC rule is missing for it.
fn is_priority_and_fairness_probe(record: &RequestRecord) -> bool {
    record.method == "HEAD" && record.path == "/livez/ping"
}
