//! A fake Kubernetes API server for fluxhook's tests and demos.
//!
//! No kube-apiserver can run where fluxhook is tested, so the project runs its real binaries —
//! built on kube-rs's `Client`, `Api` and `kube_runtime::watcher` — against this server
//! instead. It listens on `127.0.0.1` (plain HTTP, an ephemeral port), writes a kubeconfig that
//! points at it, and implements, faithfully, the part of the Kubernetes API fluxhook uses:
//!
//! - **Storage** of any registered type ([`ResourceType`]: the built-in Namespace, Secret,
//!   ConfigMap, ServiceAccount, Event, events.k8s.io Event, Lease and the RBAC kinds, Flux's
//!   kinds from
//!   [`ResourceType::flux`], or any CRD) as JSON, with server-set `uid`, `creationTimestamp`,
//!   `resourceVersion` (one global counter) and `generation` (bumped on changes outside
//!   `metadata` and, for status-subresource types, `status`). Writes that change nothing
//!   keep the resourceVersion and send no watch event, as etcd-backed storage does.
//! - **Verbs**: get; list with label selectors (`=`, `==`, `!=`, `in`, `notin`, exists, `!`,
//!   `>`, `<`), field selectors on `metadata.name`/`metadata.namespace` and `limit`/`continue`
//!   paging; watch (below); create (with `generateName`, 409 AlreadyExists, 404 for a missing
//!   namespace); update (409 Conflict on a stale `resourceVersion`); patch; delete (finalizers
//!   keep the object, with a `deletionTimestamp`, until an update removes the last one) and
//!   deletecollection; the `/status` subresource; `dryRun=All`; metadata-only answers for
//!   `Accept: ...;as=PartialObjectMetadata`; namespaced and all-namespaces paths.
//! - **Watches**: newline-delimited `{type, object}` events replayed after a given
//!   resourceVersion, synthetic ADDED events for `resourceVersion` unset or `0`,
//!   `sendInitialEvents` with its closing bookmark, BOOKMARK events with
//!   `allowWatchBookmarks`, `timeoutSeconds`, objects entering or leaving a selection sent as
//!   ADDED or DELETED, and an `ERROR` event with a 410 Expired `Status` for a resourceVersion
//!   older than the retained history ([`ServerOptions::event_history`],
//!   [`TestApiServer::compact_history`]).
//! - **Discovery**: `/version`, `/api`, `/api/v1`, `/apis`, `/apis/<group>`,
//!   `/apis/<group>/<version>`, and aggregated discovery.
//! - **Authentication and authorization**: bearer tokens name users and ServiceAccounts
//!   ([`Identity`], [`TestApiServer::service_account`]; the default kubeconfig is the
//!   administrator's, in `system:masters`); a request without a token is `system:anonymous`,
//!   an unknown token 401. With [`AuthorizationMode::Rbac`] requests are authorized as
//!   kube-apiserver's RBAC authorizer does, from the `rbac.authorization.k8s.io/v1` Roles,
//!   ClusterRoles and bindings stored in the server (verbs, groups, resources and
//!   subresources, `resourceNames`, `nonResourceURLs`, namespaced and cluster-wide
//!   bindings, the bootstrap discovery roles) and answered 403 Forbidden with the
//!   apiserver's message otherwise; each request's [`Decision`] (the rule that allowed it)
//!   is in the [`RequestLog`].
//! - **Errors** as `kind: Status` objects ([`ApiError`]), so kube-rs returns `kube::Error::Api`.
//! - **Faults** injected at run time ([`Faults`]): latency, the next N matching requests (or a
//!   seeded random fraction of them) answered with a 5xx or 429 with `Retry-After` or not
//!   answered at all, watch streams closed now or after N events; and a log of every request
//!   ([`RequestLog`]), each with when it was received and answered in an order a test can
//!   mark its own steps in ([`RequestLog::mark`]).
//! - **Fixtures** ([`fixtures`]): the objects fluxhook's tests seed most (a Namespace, a Flux
//!   GitRepository, a token Secret, a `github` Receiver) and RBAC rule helpers, built once;
//!   [`TestApiServer::start_flux`] starts a server serving Flux's kinds with given namespaces.
//!
//! # Simplifications
//!
//! - Strategic merge patch: custom resources refuse it with 415, as the apiserver does;
//!   built-in kinds (groups without a dot or ending in `.k8s.io`) apply it as a JSON merge
//!   patch, so lists are replaced rather than merged by key. JSON patch (RFC 6902) is
//!   supported.
//! - Server-side apply is create-or-merge-patch: no `managedFields` are kept, so fields another
//!   manager owns never conflict (`force` changes nothing) and fields a manager stops applying
//!   are not removed. `fieldManager` is still required, as the apiserver requires it.
//! - Each registered group/version has its own storage (no conversion between versions), so
//!   core v1 Events and events.k8s.io/v1 Events are separate collections.
//! - There is no garbage collector and no namespace controller: `propagationPolicy` and
//!   `ownerReferences` are ignored, and deleting a namespace leaves its objects in place.
//! - `continue` pages after the first come from the current state (not a snapshot) but carry
//!   the first page's resourceVersion, so a watch started from it still misses nothing.
//! - A watch from a resourceVersion newer than the server's starts there instead of waiting.
//! - Dropped watches end their stream cleanly, as an apiserver closing a watch does.
//! - Authorization is [`AuthorizationMode::AlwaysAllow`] unless asked for. RBAC does not fill
//!   in aggregated ClusterRoles (`aggregationRule`) and does not check escalation when roles
//!   and bindings are written (the `escalate` and `bind` verbs). There is no impersonation,
//!   no Node authorizer, and a ServiceAccount's token is accepted whether or not the
//!   ServiceAccount object exists.
//!
//! # Example
//!
//! Start a server, register a CRD, create an object with kube-rs and read it back:
//!
//! ```
//! use fluxhook_test_apiserver::{ResourceType, TestApiServer};
//! use kube::api::{Api, DynamicObject, PostParams};
//! use kube::discovery::ApiResource;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestApiServer::start().await?;
//! let repos = ResourceType::new("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories")
//!     .with_status_subresource();
//! server.register(repos);
//!
//! // Configured from the server's kubeconfig, as the real binaries read it from KUBECONFIG.
//! let client = server.kube_client().await?;
//!
//! let resource = ApiResource {
//!     group: "source.toolkit.fluxcd.io".into(),
//!     version: "v1".into(),
//!     api_version: "source.toolkit.fluxcd.io/v1".into(),
//!     kind: "GitRepository".into(),
//!     plural: "gitrepositories".into(),
//! };
//! let api: Api<DynamicObject> = Api::namespaced_with(client, "default", &resource);
//! let mut repo = DynamicObject::new("flux-repo", &resource);
//! repo.data = serde_json::json!({"spec": {"url": "https://example.com/repo.git"}});
//! api.create(&PostParams::default(), &repo).await?;
//!
//! let stored = server.get("source.toolkit.fluxcd.io/v1", "GitRepository", "default", "flux-repo")?;
//! assert_eq!(stored["spec"]["url"], "https://example.com/repo.git");
//! assert_eq!(stored["metadata"]["generation"], 1);
//! # Ok(())
//! # }
//! ```

mod client;
mod discovery;
mod error;
mod faults;
pub mod fixtures;
mod identity;
mod kubeconfig;
mod meta;
mod patch;
mod rbac;
mod request_info;
mod resource;
mod routes;
mod seed;
mod selectors;
mod server;
mod store;
mod watch;

pub use client::{ClientError, WAIT_BOUND, bounded, eventually};
pub use error::ApiError;
pub use faults::{Faults, RequestLog, RequestMatcher, RequestRecord, RequestTarget, Verb};
pub use identity::Identity;
pub use rbac::{AllowingRule, AuthorizationMode, Decision, PolicyObject};
pub use resource::ResourceType;
pub use seed::SeedError;
pub use server::{ServerOptions, TestApiServer};
