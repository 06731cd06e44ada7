//! Resolving references to Flux objects and patching their reconcile
//! annotation through the Kubernetes API.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use fluxhook_api::{
    Names, RECONCILE_REQUEST_ANNOTATION, ReceiverResource, ResolveError, SelectorError,
};
use futures::{StreamExt, stream};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Client;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind, Status};
use kube::discovery::{self, Scope};

use crate::clock::RequestClock;
use crate::coalesce::{Coalescer, RunAbandoned};
use crate::names::{ReferenceError, check_name, check_namespace, label_selector};

/// How many objects of a selection are asked to reconcile at once.
const SELECTED_CONCURRENCY: usize = 16;

/// One object to ask Flux to reconcile.
///
/// ```
/// use fluxhook_trigger::ObjectRef;
///
/// let repo = ObjectRef::new("GitRepository", "flux-system", "podinfo");
/// assert_eq!(repo.to_string(), "GitRepository flux-system/podinfo");
///
/// let app = ObjectRef::new("Kustomization", "apps", "podinfo")
///     .with_api_version("kustomize.toolkit.fluxcd.io/v1");
/// assert_eq!(app.api_version.as_deref(), Some("kustomize.toolkit.fluxcd.io/v1"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ObjectRef {
    /// `group/version`. `None` takes Flux's default for the kind
    /// ([`fluxhook_api::default_api_version`]); kinds without one need it.
    pub api_version: Option<String>,
    /// The kind, e.g. `GitRepository`.
    pub kind: String,
    /// The namespace (ignored for a cluster-scoped kind).
    pub namespace: String,
    /// The object's name.
    pub name: String,
}

impl ObjectRef {
    /// A reference to `kind` `namespace`/`name`, with Flux's default
    /// `apiVersion` for the kind.
    pub fn new(
        kind: impl Into<String>,
        namespace: impl Into<String>,
        name: impl Into<String>,
    ) -> Self {
        Self {
            api_version: None,
            kind: kind.into(),
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The same reference with an explicit `apiVersion` (`group/version`).
    pub fn with_api_version(mut self, api_version: impl Into<String>) -> Self {
        self.api_version = Some(api_version.into());
        self
    }
}

impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind, self.namespace, self.name)
    }
}

/// An object a Receiver's resource reference selected, with its metadata as
/// the API server returned it: what a resource filter reads as `res`.
///
/// ```
/// use fluxhook_trigger::{ObjectRef, SelectedObject};
///
/// let selected = SelectedObject {
///     object: ObjectRef::new("GitRepository", "flux-system", "podinfo")
///         .with_api_version("source.toolkit.fluxcd.io/v1"),
///     metadata: serde_json::from_value(serde_json::json!({
///         "name": "podinfo", "namespace": "flux-system", "labels": {"app": "podinfo"}
///     }))?,
/// };
/// let res = selected.to_json();
/// assert_eq!(res["apiVersion"], "source.toolkit.fluxcd.io/v1");
/// assert_eq!(res["kind"], "GitRepository");
/// assert_eq!(res["metadata"]["labels"]["app"], "podinfo");
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct SelectedObject {
    /// The object, with its `apiVersion` filled in.
    pub object: ObjectRef,
    /// Its metadata: labels, annotations, generation...
    pub metadata: ObjectMeta,
}

impl SelectedObject {
    /// The object as Flux hands it to CEL: a `PartialObjectMetadata` with
    /// `apiVersion`, `kind` and `metadata`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "apiVersion": self.object.api_version.as_deref().unwrap_or_default(),
            "kind": self.object.kind,
            "metadata": self.metadata,
        })
    }
}

/// An object a resource reference selected, with its metadata and its
/// `spec` as the API server returned them, for deciding from the spec
/// whether to ask (e.g. a GitRepository's `spec.url` and `spec.ref`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct SelectedSpec {
    /// The object and its metadata.
    pub selected: SelectedObject,
    /// Its `spec`; `None` when the object has none.
    pub spec: Option<serde_json::Value>,
}

impl SelectedSpec {
    /// An object with its metadata and `spec`, as a selection gives it.
    pub fn new(selected: SelectedObject, spec: Option<serde_json::Value>) -> Self {
        Self { selected, spec }
    }
}

/// A reconcile request Flux will see.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Outcome {
    /// The object, with its `apiVersion` filled in.
    pub object: ObjectRef,
    /// The `reconcile.fluxcd.io/requestedAt` value written by the patch that
    /// answered the request (requests served by one patch share it).
    pub requested_at: String,
}

/// The API request that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Patching the object's annotation.
    Patch,
    /// Reading the metadata of an object named by a reference.
    Get,
    /// Listing the objects `*` and matchLabels select.
    List,
    /// Discovering the plural name and scope of a kind not in Flux's table.
    Discover,
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Action::Patch => "patch",
            Action::Get => "get",
            Action::List => "list",
            Action::Discover => "discovery",
        })
    }
}

/// Why a reconcile request failed. Every variant names the object (for a
/// selection by `*`, with name `*`).
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum TriggerError {
    /// A name, namespace or label in the reference breaks Kubernetes' rules.
    #[error("{object}: {source}")]
    InvalidReference {
        /// The reference.
        object: ObjectRef,
        /// What is wrong with it.
        #[source]
        source: ReferenceError,
    },
    /// The `apiVersion` is missing for a kind Flux has no default for, or is
    /// not `group/version`.
    #[error("{object}: {source}")]
    Resolve {
        /// The reference.
        object: ObjectRef,
        /// What is wrong with its `apiVersion` and kind.
        #[source]
        source: ResolveError,
    },
    /// Name `*` selects objects by `matchLabels`, and the reference has none.
    #[error("{object}: matchLabels must be set when the name is the wildcard '*'")]
    WildcardWithoutMatchLabels {
        /// The reference.
        object: ObjectRef,
    },
    /// The reference names another namespace than the Receiver's, and cross-
    /// namespace references are forbidden ([`Trigger::no_cross_namespace_refs`]).
    #[error(
        "{object}: cross-namespace references are not allowed (the Receiver is in namespace {receiver_namespace})"
    )]
    CrossNamespaceRef {
        /// The reference.
        object: ObjectRef,
        /// The namespace of the Receiver that made it.
        receiver_namespace: String,
    },
    /// The API server answered with an error status (e.g. 404 NotFound, 403
    /// Forbidden).
    #[error("{object}: the API server answered the {action} with {} {}: {}", status.code, status.reason, status.message)]
    Api {
        /// The object.
        object: ObjectRef,
        /// What was asked.
        action: Action,
        /// The API server's answer.
        status: Box<Status>,
    },
    /// The request did not get an answer from the API server (connection,
    /// TLS, or an answer that could not be read).
    #[error("{object}: the {action} failed: {source}")]
    Request {
        /// The object.
        object: ObjectRef,
        /// What was asked.
        action: Action,
        /// kube's error.
        #[source]
        source: Arc<kube::Error>,
    },
    /// The patch that was to answer this request ended without an answer.
    #[error("{object}: {source}")]
    Abandoned {
        /// The object.
        object: ObjectRef,
        /// What happened to the patch.
        #[source]
        source: RunAbandoned,
    },
}

impl TriggerError {
    /// The object the error is about.
    pub fn object(&self) -> &ObjectRef {
        match self {
            TriggerError::InvalidReference { object, .. }
            | TriggerError::Resolve { object, .. }
            | TriggerError::WildcardWithoutMatchLabels { object }
            | TriggerError::CrossNamespaceRef { object, .. }
            | TriggerError::Api { object, .. }
            | TriggerError::Request { object, .. }
            | TriggerError::Abandoned { object, .. } => object,
        }
    }

    /// The API server's error status, if it answered with one.
    pub fn status(&self) -> Option<&Status> {
        match self {
            TriggerError::Api { status, .. } => Some(status),
            _ => None,
        }
    }
}

/// A failed API call shared by every request a coalesced call answers
/// (`kube::Error` is not `Clone`).
#[derive(Debug, Clone)]
enum Failure {
    Kube(Arc<kube::Error>),
    Abandoned(RunAbandoned),
}

impl From<RunAbandoned> for Failure {
    fn from(abandoned: RunAbandoned) -> Self {
        Failure::Abandoned(abandoned)
    }
}

impl From<kube::Error> for Failure {
    fn from(error: kube::Error) -> Self {
        Failure::Kube(Arc::new(error))
    }
}

impl Failure {
    fn for_object(self, object: ObjectRef, action: Action) -> TriggerError {
        match self {
            Failure::Kube(error) => match &*error {
                kube::Error::Api(status) => TriggerError::Api {
                    object,
                    action,
                    status: status.clone(),
                },
                _ => TriggerError::Request {
                    object,
                    action,
                    source: error,
                },
            },
            Failure::Abandoned(source) => TriggerError::Abandoned { object, source },
        }
    }
}

/// The API coordinates of a kind: where its objects are and whether they
/// live in namespaces.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ResolvedKind {
    resource: ApiResource,
    namespaced: bool,
}

impl ResolvedKind {
    fn api(&self, client: Client, namespace: &str) -> Api<DynamicObject> {
        if self.namespaced {
            Api::namespaced_with(client, namespace, &self.resource)
        } else {
            Api::all_with(client, &self.resource)
        }
    }
}

/// One object to patch: what coalescing is keyed by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct PatchTarget {
    kind: ResolvedKind,
    namespace: String,
    name: String,
}

/// What a resource reference selects.
enum Selection {
    /// One object by name, not looked up.
    Named(ObjectRef),
    /// The objects a `*` listed, with their metadata (and `spec` when read).
    Listed(Vec<SelectedSpec>),
}

/// What of the listed objects to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// Their metadata only.
    Metadata,
    /// The whole objects (for their `spec`).
    Objects,
}

/// `apiVersion` and kind of a kind not in Flux's table.
type DiscoveryKey = (String, String);

/// Asks Flux to reconcile objects now, by merge-patching their
/// `reconcile.fluxcd.io/requestedAt` annotation with a fresh timestamp, as
/// `flux reconcile` and Flux's own Receiver do.
///
/// Concurrent requests for one object share patches (see [`Coalescer`]): at
/// most one patch is in flight and one queued per object, and every request
/// is answered only after a patch that began after it arrived has succeeded
/// (or with that patch's error). A burst of webhook deliveries thus costs the
/// API server two patches per object, and no delivery is lost.
///
/// The `apiVersion` of a reference defaults to Flux's for the kind
/// ([`fluxhook_api::default_api_version`]). The plural name comes from Flux's
/// table of kinds ([`fluxhook_api::resolve`]) whenever the group and kind are
/// Flux's, at any version. Any other kind is looked up once by API discovery
/// of its `group/version` (one call, shared by concurrent requests, whose
/// answer is kept for the life of the `Trigger`); a failed lookup is not
/// kept, so a CRD installed later is found. Discovery rather than guessing
/// the plural from the kind, because a CRD may name its plural freely.
///
/// Cloning a `Trigger` is cheap and shares its coalescing and discoveries.
///
/// ```
/// use fluxhook_trigger::{ObjectRef, Trigger};
/// # use fluxhook_test_apiserver::{ResourceType, TestApiServer};
/// # use kube::config::{KubeConfigOptions, Kubeconfig};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # // A fake API server on loopback stands in for the cluster.
/// # let server = TestApiServer::start().await?;
/// # ResourceType::flux().into_iter().for_each(|r| server.register(r));
/// # server.create(serde_json::json!({"apiVersion": "source.toolkit.fluxcd.io/v1",
/// #     "kind": "GitRepository", "metadata": {"name": "podinfo", "namespace": "default"}}))?;
/// # let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml())?;
/// # let config = kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?;
/// # let client = kube::Client::try_from(config)?;
/// let trigger = Trigger::new(client);
///
/// let repo = ObjectRef::new("GitRepository", "default", "podinfo");
/// let outcome = trigger.request_reconcile(&repo).await?;
/// assert_eq!(outcome.object.api_version.as_deref(), Some("source.toolkit.fluxcd.io/v1"));
/// assert!(outcome.requested_at.ends_with('Z'));
///
/// let missing = ObjectRef::new("GitRepository", "default", "missing");
/// let error = trigger.request_reconcile(&missing).await.unwrap_err();
/// assert_eq!(error.status().map(|status| status.code), Some(404));
/// assert!(error.to_string().starts_with("GitRepository default/missing: the API server answered the patch with 404"));
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Trigger {
    client: Client,
    patches: Coalescer<PatchTarget, String, Failure>,
    discoveries: Coalescer<DiscoveryKey, ResolvedKind, Failure>,
    discovered: Arc<Mutex<HashMap<DiscoveryKey, ResolvedKind>>>,
    no_cross_namespace_refs: bool,
}

impl fmt::Debug for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Trigger")
            .field("patches", &self.patches)
            .field("no_cross_namespace_refs", &self.no_cross_namespace_refs)
            .finish_non_exhaustive()
    }
}

impl Trigger {
    /// A trigger that patches through `client`, allowing cross-namespace
    /// references.
    pub fn new(client: Client) -> Self {
        let clock = Arc::new(RequestClock::default());
        let patch_client = client.clone();
        let patches = Coalescer::new(move |target: PatchTarget| {
            let api = target.kind.api(patch_client.clone(), &target.namespace);
            // Taken as the patch begins, so every patch writes a new value.
            let requested_at = clock.next();
            async move {
                let annotations = serde_json::Map::from_iter([(
                    RECONCILE_REQUEST_ANNOTATION.to_owned(),
                    serde_json::Value::String(requested_at.clone()),
                )]);
                let patch = serde_json::json!({ "metadata": { "annotations": annotations } });
                api.patch(&target.name, &PatchParams::default(), &Patch::Merge(&patch))
                    .await?;
                tracing::debug!(
                    kind = %target.kind.resource.kind,
                    namespace = %target.namespace,
                    name = %target.name,
                    %requested_at,
                    "requested reconciliation"
                );
                Ok(requested_at)
            }
        });

        let discovered: Arc<Mutex<HashMap<DiscoveryKey, ResolvedKind>>> = Arc::default();
        let (discovery_client, cache) = (client.clone(), Arc::clone(&discovered));
        let discoveries = Coalescer::new(move |(api_version, kind): DiscoveryKey| {
            let (client, cache) = (discovery_client.clone(), Arc::clone(&cache));
            async move {
                let (group, version) = api_version.split_once('/').unwrap_or(("", &api_version));
                let gvk = GroupVersionKind::gvk(group, version, &kind);
                let (resource, capabilities) = discovery::pinned_kind(&client, &gvk).await?;
                let resolved = ResolvedKind {
                    resource,
                    namespaced: capabilities.scope == Scope::Namespaced,
                };
                cache
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert((api_version, kind), resolved.clone());
                Ok(resolved)
            }
        });

        Self {
            client,
            patches,
            discoveries,
            discovered,
            no_cross_namespace_refs: false,
        }
    }

    /// Forbids (`true`) or allows (`false`, the default) references from a
    /// Receiver to objects in other namespaces, like notification-controller's
    /// `--no-cross-namespace-refs`. Applies to
    /// [`request_reconcile_selected`](Self::request_reconcile_selected),
    /// [`select`](Self::select) and
    /// [`select_with_metadata`](Self::select_with_metadata).
    pub fn no_cross_namespace_refs(mut self, forbid: bool) -> Self {
        self.no_cross_namespace_refs = forbid;
        self
    }

    /// Asks Flux to reconcile one object now, and waits until a patch of its
    /// annotation that began after this call has succeeded.
    ///
    /// A missing object is [`TriggerError::Api`] with status 404.
    pub async fn request_reconcile(&self, object: &ObjectRef) -> Result<Outcome, TriggerError> {
        let (object, kind) = self.resolve_object(object).await?;
        let target = PatchTarget {
            kind,
            namespace: object.namespace.clone(),
            name: object.name.clone(),
        };
        match self.patches.request(target).await {
            Ok(requested_at) => Ok(Outcome {
                object,
                requested_at,
            }),
            Err(failure) => Err(failure.for_object(object, Action::Patch)),
        }
    }

    /// The objects a Receiver's resource reference names, as Flux selects
    /// them: the namespace defaults to the Receiver's; name `*` lists the
    /// objects of the kind in that namespace carrying every label of
    /// `matchLabels` (which must then be set; an empty map selects them all,
    /// as in Flux); any other name is the one object, not looked up.
    ///
    /// The reference's CEL `filter` is not evaluated here.
    pub async fn select(
        &self,
        resource: &ReceiverResource,
        receiver_namespace: &str,
    ) -> Result<Vec<ObjectRef>, TriggerError> {
        Ok(
            match self
                .selection(resource, receiver_namespace, Read::Metadata)
                .await?
            {
                Selection::Named(object) => vec![object],
                Selection::Listed(listed) => {
                    listed.into_iter().map(|s| s.selected.object).collect()
                }
            },
        )
    }

    /// The objects [`select`](Self::select) names, with their metadata, for
    /// evaluating resource filters: a `*` costs the same one list, while a
    /// named object is read (its metadata only), so a missing one is
    /// [`TriggerError::Api`] with status 404 and [`Action::Get`].
    pub async fn select_with_metadata(
        &self,
        resource: &ReceiverResource,
        receiver_namespace: &str,
    ) -> Result<Vec<SelectedObject>, TriggerError> {
        match self
            .selection(resource, receiver_namespace, Read::Metadata)
            .await?
        {
            Selection::Named(object) => Ok(vec![
                self.read_named(&object, Read::Metadata).await?.selected,
            ]),
            Selection::Listed(listed) => Ok(listed.into_iter().map(|s| s.selected).collect()),
        }
    }

    /// The objects [`select`](Self::select) names, with their metadata and
    /// `spec`, for deciding from the spec whether to ask: a `*` costs one
    /// list (of whole objects), a named object one read, as
    /// [`select_with_metadata`](Self::select_with_metadata); a missing named
    /// object is [`TriggerError::Api`] with status 404 and [`Action::Get`].
    pub async fn select_with_spec(
        &self,
        resource: &ReceiverResource,
        receiver_namespace: &str,
    ) -> Result<Vec<SelectedSpec>, TriggerError> {
        match self
            .selection(resource, receiver_namespace, Read::Objects)
            .await?
        {
            Selection::Named(object) => Ok(vec![self.read_named(&object, Read::Objects).await?]),
            Selection::Listed(listed) => Ok(listed),
        }
    }

    /// Reads one named object: its metadata only, or the whole object for
    /// its `spec`. A missing one is [`TriggerError::Api`] with status 404.
    async fn read_named(
        &self,
        object: &ObjectRef,
        read: Read,
    ) -> Result<SelectedSpec, TriggerError> {
        let (object, kind) = self.resolve_object(object).await?;
        let api = kind.api(self.client.clone(), &object.namespace);
        let failed = |error| Failure::from(error).for_object(object.clone(), Action::Get);
        let (metadata, spec) = match read {
            Read::Metadata => (
                api.get_metadata(&object.name)
                    .await
                    .map_err(failed)?
                    .metadata,
                None,
            ),
            Read::Objects => {
                let item = api.get(&object.name).await.map_err(failed)?;
                (item.metadata, item.data.get("spec").cloned())
            }
        };
        Ok(SelectedSpec {
            spec,
            selected: SelectedObject { object, metadata },
        })
    }

    /// What a reference selects: the named object, or the listed ones.
    async fn selection(
        &self,
        resource: &ReceiverResource,
        receiver_namespace: &str,
        read: Read,
    ) -> Result<Selection, TriggerError> {
        let namespace = resource.namespace_or(receiver_namespace);
        let object = ObjectRef {
            api_version: resource.api_version.clone(),
            kind: resource.kind.clone(),
            namespace: namespace.to_owned(),
            name: resource.name.clone(),
        };
        // Flux's rules, stated once in fluxhook-api; this reads what they describe.
        let selector = match resource.selector(receiver_namespace, self.no_cross_namespace_refs) {
            Ok(selector) => selector,
            Err(SelectorError::CrossNamespace { .. }) => {
                return Err(TriggerError::CrossNamespaceRef {
                    object,
                    receiver_namespace: receiver_namespace.to_owned(),
                });
            }
            Err(SelectorError::WildcardWithoutMatchLabels) => {
                return Err(TriggerError::WildcardWithoutMatchLabels { object });
            }
        };
        let labels = match selector.names {
            Names::Name(_) => return Ok(Selection::Named(object)),
            Names::Labels(labels) => labels,
        };
        let invalid = |object: &ObjectRef| {
            let object = object.clone();
            move |source| TriggerError::InvalidReference { object, source }
        };
        let selector = label_selector(labels).map_err(invalid(&object))?;
        let kind = self.resolve_kind(&object).await?;
        if kind.namespaced {
            check_namespace(namespace).map_err(invalid(&object))?;
        }
        let api_version = kind.resource.api_version.clone();
        let api = kind.api(self.client.clone(), namespace);
        let params = ListParams::default().labels(&selector);
        let listed = match read {
            Read::Metadata => api.list_metadata(&params).await.map(|list| {
                list.items
                    .into_iter()
                    .map(|item| (item.metadata, None))
                    .collect()
            }),
            Read::Objects => api.list(&params).await.map(|list| {
                list.items
                    .into_iter()
                    .map(|item| (item.metadata, item.data.get("spec").cloned()))
                    .collect::<Vec<_>>()
            }),
        }
        .map_err(|error| Failure::from(error).for_object(object.clone(), Action::List))?;
        Ok(Selection::Listed(
            listed
                .into_iter()
                .filter_map(|(metadata, spec)| {
                    let name = metadata.name.clone()?;
                    Some(SelectedSpec {
                        selected: SelectedObject {
                            object: ObjectRef {
                                api_version: Some(api_version.clone()),
                                name,
                                ..object.clone()
                            },
                            metadata,
                        },
                        spec,
                    })
                })
                .collect(),
        ))
    }

    /// Asks Flux to reconcile every object a Receiver's resource reference
    /// selects ([`select`](Self::select)), and answers each: one result per
    /// selected object, in the order listed, or a single error if the
    /// selection itself failed. A `*` that matches nothing gives no results.
    pub async fn request_reconcile_selected(
        &self,
        resource: &ReceiverResource,
        receiver_namespace: &str,
    ) -> Vec<Result<Outcome, TriggerError>> {
        match self.select(resource, receiver_namespace).await {
            Ok(objects) => self.request_reconcile_each(objects).await,
            Err(error) => vec![Err(error)],
        }
    }

    /// Asks Flux to reconcile each of `objects`, a few at a time, and
    /// answers each, in order: [`request_reconcile`](Self::request_reconcile)
    /// for a selection, e.g. the objects a resource filter accepted.
    pub async fn request_reconcile_each(
        &self,
        objects: impl IntoIterator<Item = ObjectRef>,
    ) -> Vec<Result<Outcome, TriggerError>> {
        stream::iter(objects)
            .map(|object| async move { self.request_reconcile(&object).await })
            .buffered(SELECTED_CONCURRENCY)
            .collect()
            .await
    }

    /// Checks a reference to one object and resolves its kind; the
    /// reference comes back with its `apiVersion` filled in.
    async fn resolve_object(
        &self,
        object: &ObjectRef,
    ) -> Result<(ObjectRef, ResolvedKind), TriggerError> {
        check_name(&object.name).map_err(|source| TriggerError::InvalidReference {
            object: object.clone(),
            source,
        })?;
        let kind = self.resolve_kind(object).await?;
        if kind.namespaced {
            check_namespace(&object.namespace).map_err(|source| {
                TriggerError::InvalidReference {
                    object: object.clone(),
                    source,
                }
            })?;
        }
        let object = ObjectRef {
            api_version: Some(kind.resource.api_version.clone()),
            ..object.clone()
        };
        Ok((object, kind))
    }

    /// The API coordinates of the reference's kind: from Flux's table, else
    /// from (cached) discovery.
    async fn resolve_kind(&self, object: &ObjectRef) -> Result<ResolvedKind, TriggerError> {
        let api_version = match fluxhook_api::resolve(object.api_version.as_deref(), &object.kind) {
            Ok(known) => {
                return Ok(ResolvedKind {
                    resource: known.to_api_resource(),
                    namespaced: known.namespaced(),
                });
            }
            // Not a Flux kind, and the apiVersion given is well formed.
            Err(ResolveError::UnknownKind { .. }) => object.api_version.clone().unwrap_or_default(),
            Err(source) => {
                return Err(TriggerError::Resolve {
                    object: object.clone(),
                    source,
                });
            }
        };
        let key = (api_version, object.kind.clone());
        let cached = self
            .discovered
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
            .cloned();
        match cached {
            Some(kind) => Ok(kind),
            None => self
                .discoveries
                .request(key)
                .await
                .map_err(|failure| failure.for_object(object.clone(), Action::Discover)),
        }
    }
}
