//! The running server and the handle tests hold.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::ApiError;
use crate::faults::{Faults, RequestLog};
use crate::fixtures;
use crate::identity::{Identities, Identity, User};
use crate::kubeconfig::kubeconfig_yaml;
use crate::rbac::{self, AuthorizationMode, Decision};
use crate::request_info::RequestInfo;
use crate::resource::ResourceType;
use crate::routes::router;
use crate::seed::{SeedError, read_manifests};
use crate::store::{Store, TypeKey};

/// State shared by the request handlers, the watch streams and the handle.
#[derive(Debug)]
pub(crate) struct Shared {
    store: Mutex<Store>,
    /// The latest resourceVersion, published on every write.
    pub(crate) changes: watch::Receiver<u64>,
    pub(crate) faults: Faults,
    pub(crate) requests: RequestLog,
    pub(crate) bookmark_interval: Duration,
    /// Set to true to end every watch and stop serving.
    pub(crate) shutdown: watch::Sender<bool>,
    pub(crate) open_watches: AtomicUsize,
    identities: Mutex<Identities>,
    authorization: AuthorizationMode,
}

impl Shared {
    pub(crate) fn store(&self) -> MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(crate) fn identities(&self) -> MutexGuard<'_, Identities> {
        self.identities
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Decides on a request of `user`, as the configured authorizer does.
    pub(crate) fn authorize(&self, user: &User, info: &RequestInfo) -> Decision {
        match self.authorization {
            AuthorizationMode::AlwaysAllow => Decision::AlwaysAllow,
            AuthorizationMode::Rbac => rbac::authorize(&self.store(), user, info),
        }
    }
}

/// Settings for [`TestApiServer::start_with`].
///
/// ```
/// use std::time::Duration;
///
/// use fluxhook_test_apiserver::{AuthorizationMode, ServerOptions};
///
/// let options = ServerOptions::default()
///     .bookmark_interval(Duration::from_millis(100))
///     .event_history(50)
///     .authorization(AuthorizationMode::Rbac);
/// # let _ = options;
/// ```
#[derive(Debug, Clone)]
pub struct ServerOptions {
    bookmark_interval: Duration,
    event_history: usize,
    authorization: AuthorizationMode,
    flux: bool,
    namespaces: Vec<String>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            bookmark_interval: Duration::from_secs(1),
            event_history: 10_000,
            authorization: AuthorizationMode::AlwaysAllow,
            flux: false,
            namespaces: Vec::new(),
        }
    }
}

impl ServerOptions {
    /// How often watches that allow bookmarks get one (default one second; a real apiserver
    /// sends them about once a minute).
    #[must_use]
    pub fn bookmark_interval(mut self, interval: Duration) -> Self {
        self.bookmark_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How many changes are kept for watches to replay (default 10 000); a watch from a
    /// resourceVersion older than that gets 410 Expired, as after etcd compaction.
    #[must_use]
    pub fn event_history(mut self, changes: usize) -> Self {
        self.event_history = changes;
        self
    }

    /// How requests are authorized (default [`AuthorizationMode::AlwaysAllow`]). With
    /// [`AuthorizationMode::Rbac`] the server starts with kube-apiserver's bootstrap policy
    /// for discovery and answers 403 to whatever the stored RBAC objects do not allow;
    /// the administrator ([`TestApiServer::admin`]) may still do anything.
    #[must_use]
    pub fn authorization(mut self, mode: AuthorizationMode) -> Self {
        self.authorization = mode;
        self
    }

    /// Serves Flux's kinds ([`ResourceType::flux`]) from the start.
    #[must_use]
    pub fn flux(mut self) -> Self {
        self.flux = true;
        self
    }

    /// Starts with these namespaces besides the ones every cluster has.
    #[must_use]
    pub fn namespaces(mut self, names: &[&str]) -> Self {
        self.namespaces = names.iter().map(|name| (*name).to_owned()).collect();
        self
    }
}

/// A fake Kubernetes API server on `127.0.0.1`, serving until shut down or dropped.
///
/// It starts with the built-in types ([`ResourceType::builtin`]) and the namespaces `default`,
/// `kube-system`, `kube-public` and `kube-node-lease`.
#[derive(Debug)]
pub struct TestApiServer {
    shared: Arc<Shared>,
    address: SocketAddr,
    url: String,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

fn lookup_error(api_version: &str, kind: &str) -> ApiError {
    ApiError::bad_request(format!(
        "no resource type is registered for apiVersion {api_version:?} kind {kind:?}"
    ))
}

impl TestApiServer {
    /// Starts a server with default options on an ephemeral port.
    pub async fn start() -> std::io::Result<Self> {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server with default options serving Flux's kinds, with `namespaces`: where
    /// most of fluxhook's tests begin.
    pub async fn start_flux(namespaces: &[&str]) -> std::io::Result<Self> {
        Self::start_with(ServerOptions::default().flux().namespaces(namespaces)).await
    }

    /// Starts a server with the given options on an ephemeral port.
    pub async fn start_with(options: ServerOptions) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let (publish, changes) = watch::channel(0);
        let shared = Arc::new(Shared {
            store: Mutex::new(Store::new(options.event_history, publish)),
            changes,
            faults: Faults::default(),
            requests: RequestLog::default(),
            bookmark_interval: options.bookmark_interval,
            shutdown: watch::channel(false).0,
            open_watches: AtomicUsize::new(0),
            identities: Mutex::new(Identities::default()),
            authorization: options.authorization,
        });
        {
            let mut store = shared.store();
            if options.flux {
                for resource in ResourceType::flux() {
                    store.register(resource);
                }
            }
            let rbac_policy = match options.authorization {
                AuthorizationMode::Rbac => rbac::bootstrap_policy(),
                AuthorizationMode::AlwaysAllow => Vec::new(),
            };
            let namespaces = options
                .namespaces
                .iter()
                .map(|name| fixtures::namespace(name));
            for object in rbac_policy.into_iter().chain(namespaces) {
                store.seed(object, false).map_err(std::io::Error::other)?;
            }
        }
        let mut stopping = shared.shutdown.subscribe();
        let app = router(Arc::clone(&shared));
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    // An error means the sender is gone, which is a shutdown too.
                    let _ = stopping.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(Self {
            shared,
            address,
            url: format!("http://{address}"),
            task: Some(task),
        })
    }

    /// The base URL, `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The address the server listens on.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// A kubeconfig whose current context reaches this server as the administrator, with
    /// namespace `default`.
    pub fn kubeconfig_yaml(&self) -> String {
        self.kubeconfig_yaml_for(&self.admin())
    }

    /// A kubeconfig whose current context reaches this server as `identity` (its bearer
    /// token), with namespace `default`.
    pub fn kubeconfig_yaml_for(&self, identity: &Identity) -> String {
        kubeconfig_yaml(&self.url, identity.token())
    }

    /// Writes [`kubeconfig_yaml`](Self::kubeconfig_yaml) to `path`, for `KUBECONFIG=path`.
    pub fn write_kubeconfig(&self, path: impl AsRef<Path>) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml())
    }

    /// Writes [`kubeconfig_yaml_for`](Self::kubeconfig_yaml_for) `identity` to `path`.
    pub fn write_kubeconfig_for(
        &self,
        identity: &Identity,
        path: impl AsRef<Path>,
    ) -> std::io::Result<()> {
        std::fs::write(path, self.kubeconfig_yaml_for(identity))
    }

    /// The administrator, `kubernetes-admin` in `system:masters`: allowed everything in
    /// either [`AuthorizationMode`], as kubeadm's `admin.conf` is.
    pub fn admin(&self) -> Identity {
        self.shared.identities().admin()
    }

    /// The ServiceAccount `namespace/name` (the same token each time), as its projected
    /// token authenticates in a cluster. The server keeps no ServiceAccount object for it.
    pub fn service_account(&self, namespace: &str, name: &str) -> Identity {
        self.shared.identities().service_account(namespace, name)
    }

    /// A user `name` in `groups` (plus `system:authenticated`), as an OIDC or client
    /// certificate authenticator would give.
    pub fn user(&self, name: &str, groups: &[&str]) -> Identity {
        self.shared.identities().user(name, groups)
    }

    /// Serves a resource type from now on (registering it again replaces its description and
    /// keeps its objects).
    pub fn register(&self, resource: ResourceType) {
        self.shared.store().register(resource);
    }

    /// Stores an object as a test fixture, `.status` included, as a create followed by a
    /// status update would. The type comes from `apiVersion` and `kind`; a namespaced object
    /// without `metadata.namespace` goes to `default`.
    pub fn create(&self, object: Value) -> Result<Value, ApiError> {
        self.shared.store().seed(object, false)
    }

    /// Creates an object as [`create`](Self::create) does, or server-side applies it over the
    /// existing one (status included).
    pub fn apply_json(&self, object: Value) -> Result<Value, ApiError> {
        self.shared.store().seed(object, true)
    }

    /// The stored object, if any; `namespace` is ignored for cluster-scoped types.
    pub fn get(
        &self,
        api_version: &str,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        let store = self.shared.store();
        let resource = store
            .type_of_kind(api_version, kind)
            .ok_or_else(|| lookup_error(api_version, kind))?;
        store.get(resource, namespace, name)
    }

    /// Every stored object of a type, in one namespace or (with `None`) all.
    pub fn list(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
    ) -> Result<Vec<Value>, ApiError> {
        let store = self.shared.store();
        let resource = store
            .type_of_kind(api_version, kind)
            .ok_or_else(|| lookup_error(api_version, kind))?;
        Ok(store
            .select(
                resource,
                namespace,
                &Default::default(),
                &Default::default(),
            )
            .map(|(_, object)| object.clone())
            .collect())
    }

    /// Registers the types CustomResourceDefinitions declare and stores every other manifest
    /// (CRDs first, then namespaces, then the rest, each as [`apply_json`](Self::apply_json))
    /// from a YAML or JSON file, or from every such file under a directory. Returns how many
    /// manifests it took.
    pub fn seed_from_path(&self, path: impl AsRef<Path>) -> Result<usize, SeedError> {
        let mut manifests = read_manifests(path.as_ref())?;
        let rank = |object: &Value| match object.get("kind").and_then(Value::as_str) {
            Some("CustomResourceDefinition") => 0,
            Some("Namespace") => 1,
            _ => 2,
        };
        manifests.sort_by_key(|(_, object)| rank(object));
        let count = manifests.len();
        for (path, object) in manifests {
            if rank(&object) == 0 {
                let resource =
                    ResourceType::from_crd(&object).ok_or_else(|| SeedError::Refused {
                        path: path.clone(),
                        source: ApiError::bad_request(
                            "the CustomResourceDefinition has no storage version",
                        ),
                    })?;
                self.register(resource);
            } else {
                self.apply_json(object)
                    .map_err(|source| SeedError::Refused { path, source })?;
            }
        }
        Ok(count)
    }

    /// The faults to inject.
    pub fn faults(&self) -> &Faults {
        &self.shared.faults
    }

    /// Every request received.
    pub fn requests(&self) -> &RequestLog {
        &self.shared.requests
    }

    /// How many watch streams are open now.
    pub fn open_watches(&self) -> usize {
        self.shared.open_watches.load(Ordering::SeqCst)
    }

    /// The latest resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.shared.store().resource_version()
    }

    /// Forgets the watch history, as etcd compaction does: a watch from any resourceVersion
    /// before now gets 410 Expired and its client must list again.
    pub fn compact_history(&self) {
        self.shared.store().compact();
    }

    /// Whether a type is registered at `group`/`version`/`plural`.
    pub fn is_registered(&self, group: &str, version: &str, plural: &str) -> bool {
        self.shared
            .store()
            .resource_type(&TypeKey::new(group, version, plural))
            .is_some()
    }

    /// Ends every watch, stops accepting requests and waits for the server to finish.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        self.shared.shutdown.send_replace(true);
        match self.task.take() {
            Some(task) => task.await.map_err(std::io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for TestApiServer {
    /// Ends every watch and lets the server stop in the background.
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}
