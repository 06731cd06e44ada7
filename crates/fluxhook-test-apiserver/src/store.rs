//! The object store: every object as JSON, keyed by resource type, namespace and name, with a
//! global resourceVersion counter and a bounded history of changes for watches.
//!
//! Writes follow the apiserver's generic registry: server-set metadata (uid, creationTimestamp,
//! resourceVersion, generation), optimistic concurrency on resourceVersion, status-subresource
//! isolation, finalizers holding a deleted object until they are removed, and no-op writes that
//! change nothing (no new resourceVersion, no event).

use std::collections::{BTreeMap, HashMap, VecDeque};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use tokio::sync::watch;

use crate::error::ApiError;
use crate::meta::{name_suffix, new_uid, now_rfc3339};
use crate::patch::{json_patch, merge_patch};
use crate::resource::ResourceType;
use crate::selectors::{
    FieldSelector, LabelSelector, is_dns_subdomain, validate_label_value, validate_qualified_name,
};

/// The namespaces a fresh cluster has.
const INITIAL_NAMESPACES: [&str; 4] = ["default", "kube-node-lease", "kube-public", "kube-system"];

/// Identifies a registered resource type's storage.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct TypeKey {
    group: String,
    version: String,
    plural: String,
}

impl TypeKey {
    pub(crate) fn new(group: &str, version: &str, plural: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            plural: plural.to_owned(),
        }
    }

    pub(crate) fn of(resource: &ResourceType) -> Self {
        Self::new(&resource.group, &resource.version, &resource.plural)
    }
}

/// What a change did, as watch events name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventType {
    Added,
    Modified,
    Deleted,
}

/// One change, kept in the history so watches can replay it.
#[derive(Debug, Clone)]
pub(crate) struct StoredEvent {
    pub(crate) resource_version: u64,
    pub(crate) type_key: TypeKey,
    pub(crate) namespace: String,
    pub(crate) event_type: EventType,
    pub(crate) object: Value,
    /// The object before a modification, so watches with selectors can tell an object entering
    /// or leaving their selection.
    pub(crate) previous: Option<Value>,
}

/// Which part of an object a write targets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Subresource {
    Main,
    Status,
}

/// How a PATCH body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatchKind {
    /// `application/merge-patch+json`.
    Merge,
    /// `application/strategic-merge-patch+json`, applied as a merge patch; custom resources
    /// refuse it, as the apiserver does.
    StrategicMerge,
    /// `application/json-patch+json`.
    Json,
    /// `application/apply-patch+yaml`: server-side apply, as create-or-merge.
    Apply,
}

/// Options every write takes.
#[derive(Debug, Clone, Default)]
pub(crate) struct WriteOptions {
    /// `dryRun=All`: validate and answer, but store nothing.
    pub(crate) dry_run: bool,
}

/// `DeleteOptions` the server honours.
#[derive(Debug, Clone, Default)]
pub(crate) struct DeleteOptions {
    pub(crate) dry_run: bool,
    pub(crate) precondition_uid: Option<String>,
    pub(crate) precondition_resource_version: Option<String>,
}

/// List query parameters.
#[derive(Debug, Clone, Default)]
pub(crate) struct ListOptions {
    pub(crate) labels: LabelSelector,
    pub(crate) fields: FieldSelector,
    pub(crate) limit: Option<usize>,
    pub(crate) continue_token: Option<String>,
    pub(crate) resource_version: Option<String>,
    pub(crate) resource_version_match: Option<String>,
}

/// The store. Callers hold it behind a mutex; every committed write publishes the new
/// resourceVersion on `changes` so watches wake up.
#[derive(Debug)]
pub(crate) struct Store {
    types: BTreeMap<TypeKey, ResourceType>,
    objects: HashMap<TypeKey, BTreeMap<(String, String), Value>>,
    resource_version: u64,
    history: VecDeque<StoredEvent>,
    history_limit: usize,
    /// Every event at or below this resourceVersion has left the history.
    compacted_through: u64,
    changes: watch::Sender<u64>,
}

fn metadata(object: &Value) -> Option<&Map<String, Value>> {
    object.get("metadata").and_then(Value::as_object)
}

fn metadata_mut(object: &mut Value) -> Option<&mut Map<String, Value>> {
    let map = object.as_object_mut()?;
    let metadata = map
        .entry("metadata")
        .or_insert_with(|| Value::Object(Map::new()));
    if !metadata.is_object() {
        *metadata = Value::Object(Map::new());
    }
    metadata.as_object_mut()
}

fn metadata_str<'a>(object: &'a Value, field: &str) -> Option<&'a str> {
    metadata(object)?.get(field)?.as_str()
}

fn set_metadata(object: &mut Value, field: &str, value: Value) {
    if let Some(metadata) = metadata_mut(object) {
        metadata.insert(field.to_owned(), value);
    }
}

fn remove_metadata(object: &mut Value, field: &str) {
    if let Some(metadata) = metadata_mut(object) {
        metadata.remove(field);
    }
}

/// Sets `.status` to a copy of `status`, or removes it for `None`.
fn set_status(object: &mut Value, status: Option<&Value>) {
    if let Some(map) = object.as_object_mut() {
        match status {
            Some(status) => map.insert("status".to_owned(), status.clone()),
            None => map.remove("status"),
        };
    }
}

fn finalizers(object: &Value) -> Vec<&str> {
    metadata(object)
        .and_then(|metadata| metadata.get("finalizers"))
        .and_then(Value::as_array)
        .map(|list| list.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn generation(object: &Value) -> u64 {
    metadata(object)
        .and_then(|metadata| metadata.get("generation"))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// Whether two objects differ outside `metadata` and the `skip`ped top-level fields.
fn content_differs(a: &Value, b: &Value, skip: &[&str]) -> bool {
    let empty = Map::new();
    let (a, b) = (
        a.as_object().unwrap_or(&empty),
        b.as_object().unwrap_or(&empty),
    );
    let counts = |map: &Map<String, Value>| {
        map.keys()
            .filter(|key| key.as_str() != "metadata" && !skip.contains(&key.as_str()))
            .count()
    };
    counts(a) != counts(b)
        || a.iter().any(|(key, value)| {
            key != "metadata" && !skip.contains(&key.as_str()) && b.get(key) != Some(value)
        })
}

/// Checks `metadata.labels`, `annotations` and `finalizers` are what Kubernetes accepts.
fn validate_metadata(resource: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let name = metadata_str(object, "name").unwrap_or_default();
    if resource.group == crate::rbac::GROUP {
        // RBAC names need only be path segments, so `system:discovery` is one
        // (`pkg/apis/rbac/validation/validation.go`, `minimalNameRequirements`).
        if let Some(why) = crate::rbac::invalid_name(name) {
            return Err(ApiError::invalid(
                resource,
                name,
                "metadata.name",
                &format!("Invalid value: \"{name}\": {why}"),
            ));
        }
    } else if !is_dns_subdomain(name) {
        return Err(ApiError::invalid(
            resource,
            name,
            "metadata.name",
            &format!(
                "Invalid value: \"{name}\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
            ),
        ));
    }
    let Some(metadata) = metadata(object) else {
        return Ok(());
    };
    for field in ["labels", "annotations"] {
        let Some(entries) = metadata.get(field) else {
            continue;
        };
        let Some(entries) = entries.as_object() else {
            return Err(ApiError::bad_request(format!(
                "metadata.{field} must be a map of strings"
            )));
        };
        for (key, value) in entries {
            let Some(value) = value.as_str() else {
                return Err(ApiError::bad_request(format!(
                    "metadata.{field}[{key}] must be a string"
                )));
            };
            validate_qualified_name(key).map_err(|why| {
                ApiError::invalid(
                    resource,
                    name,
                    &format!("metadata.{field}"),
                    &format!("Invalid value: \"{key}\": {why}"),
                )
            })?;
            if field == "labels" {
                validate_label_value(value).map_err(|why| {
                    ApiError::invalid(
                        resource,
                        name,
                        "metadata.labels",
                        &format!("Invalid value: \"{value}\": {why}"),
                    )
                })?;
            }
        }
    }
    if let Some(list) = metadata.get("finalizers") {
        let names = list
            .as_array()
            .map(|list| list.iter().map(Value::as_str).collect::<Option<Vec<_>>>());
        let Some(Some(names)) = names else {
            return Err(ApiError::bad_request(
                "metadata.finalizers must be a list of strings",
            ));
        };
        for finalizer in names {
            validate_qualified_name(finalizer).map_err(|why| {
                ApiError::invalid(
                    resource,
                    name,
                    "metadata.finalizers",
                    &format!("Invalid value: \"{finalizer}\": {why}"),
                )
            })?;
        }
    }
    Ok(())
}

/// Checks `apiVersion` and `kind` in a request body, filling them in when absent.
fn check_type(resource: &ResourceType, object: &mut Value) -> Result<(), ApiError> {
    let Some(map) = object.as_object_mut() else {
        return Err(ApiError::bad_request(
            "the request body must be a JSON object",
        ));
    };
    let api_version = resource.api_version();
    for (field, expected) in [
        ("apiVersion", api_version.as_str()),
        ("kind", resource.kind.as_str()),
    ] {
        match map.get(field).and_then(Value::as_str) {
            Some(given) if given != expected => {
                let what = if field == "kind" {
                    "kind"
                } else {
                    "API version"
                };
                return Err(ApiError::bad_request(format!(
                    "the {what} in the data ({given}) does not match the expected {what} ({expected})"
                )));
            }
            Some(_) => {}
            None => {
                map.insert(field.to_owned(), Value::String(expected.to_owned()));
            }
        }
    }
    Ok(())
}

/// Sets `metadata.namespace` from the URL, refusing a body that names another namespace.
fn check_namespace(
    resource: &ResourceType,
    namespace: &str,
    object: &mut Value,
) -> Result<(), ApiError> {
    if !resource.namespaced {
        remove_metadata(object, "namespace");
        return Ok(());
    }
    match metadata_str(object, "namespace") {
        Some(given) if !given.is_empty() && given != namespace => Err(ApiError::bad_request(
            "the namespace of the provided object does not match the namespace sent on the request",
        )),
        _ => {
            set_metadata(object, "namespace", Value::String(namespace.to_owned()));
            Ok(())
        }
    }
}

/// An opaque `continue` token: the list's resourceVersion and the last key served.
fn encode_continue(resource_version: u64, last: &(String, String)) -> String {
    URL_SAFE_NO_PAD.encode(json!([resource_version, last.0, last.1]).to_string())
}

fn decode_continue(token: &str) -> Option<(u64, (String, String))> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let value: Value = serde_json::from_slice(&bytes).ok()?;
    let resource_version = value.get(0)?.as_u64()?;
    let namespace = value.get(1)?.as_str()?.to_owned();
    let name = value.get(2)?.as_str()?.to_owned();
    Some((resource_version, (namespace, name)))
}

impl Store {
    /// A store holding the built-in types and a fresh cluster's namespaces, keeping at most
    /// `history_limit` changes for watches.
    pub(crate) fn new(history_limit: usize, changes: watch::Sender<u64>) -> Self {
        let mut store = Self {
            types: BTreeMap::new(),
            objects: HashMap::new(),
            resource_version: 0,
            history: VecDeque::new(),
            history_limit: history_limit.max(1),
            compacted_through: 0,
            changes,
        };
        for resource in ResourceType::builtin() {
            store.register(resource);
        }
        for name in INITIAL_NAMESPACES {
            let namespace = json!({
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": name},
                "status": {"phase": "Active"},
            });
            // The initial namespaces are valid and new, so creating them cannot fail.
            let _ = store.seed(namespace, false);
        }
        store
    }

    /// Registers (or re-registers) a resource type; its objects, if any, stay.
    pub(crate) fn register(&mut self, resource: ResourceType) {
        let key = TypeKey::of(&resource);
        self.objects.entry(key.clone()).or_default();
        self.types.insert(key, resource);
    }

    /// Every registered type.
    pub(crate) fn types(&self) -> impl Iterator<Item = &ResourceType> + Clone {
        self.types.values()
    }

    /// The type served at `group/version/plural`.
    pub(crate) fn resource_type(&self, key: &TypeKey) -> Option<&ResourceType> {
        self.types.get(key)
    }

    /// The type with this `apiVersion` and `kind`.
    pub(crate) fn type_of_kind(&self, api_version: &str, kind: &str) -> Option<&ResourceType> {
        self.types
            .values()
            .find(|resource| resource.kind == kind && resource.api_version() == api_version)
    }

    /// The latest resourceVersion.
    pub(crate) fn resource_version(&self) -> u64 {
        self.resource_version
    }

    /// Drops the whole watch history, so any watch from an earlier resourceVersion gets 410.
    pub(crate) fn compact(&mut self) {
        self.history.clear();
        self.compacted_through = self.resource_version;
    }

    fn key(resource: &ResourceType, namespace: &str, name: &str) -> (String, String) {
        let namespace = if resource.namespaced { namespace } else { "" };
        (namespace.to_owned(), name.to_owned())
    }

    fn find(&self, resource: &ResourceType, namespace: &str, name: &str) -> Option<&Value> {
        self.objects
            .get(&TypeKey::of(resource))?
            .get(&Self::key(resource, namespace, name))
    }

    fn commit(
        &mut self,
        resource: &ResourceType,
        event_type: EventType,
        object: &mut Value,
        previous: Option<Value>,
    ) {
        self.resource_version += 1;
        let resource_version = self.resource_version;
        set_metadata(
            object,
            "resourceVersion",
            Value::String(resource_version.to_string()),
        );
        let namespace = metadata_str(object, "namespace")
            .unwrap_or_default()
            .to_owned();
        let name = metadata_str(object, "name").unwrap_or_default().to_owned();
        let type_key = TypeKey::of(resource);
        let objects = self.objects.entry(type_key.clone()).or_default();
        if event_type == EventType::Deleted {
            objects.remove(&(namespace.clone(), name));
        } else {
            objects.insert((namespace.clone(), name), object.clone());
        }
        self.history.push_back(StoredEvent {
            resource_version,
            type_key,
            namespace,
            event_type,
            object: object.clone(),
            previous,
        });
        while self.history.len() > self.history_limit {
            if let Some(dropped) = self.history.pop_front() {
                self.compacted_through = dropped.resource_version;
            }
        }
        self.changes.send_replace(resource_version);
    }

    /// GET one object.
    pub(crate) fn get(
        &self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
    ) -> Result<Value, ApiError> {
        self.find(resource, namespace, name)
            .cloned()
            .ok_or_else(|| ApiError::not_found(resource, name))
    }

    /// Objects of a type in one namespace (or all, for `None`) that match the selectors, in
    /// namespace/name order.
    pub(crate) fn select<'a>(
        &'a self,
        resource: &ResourceType,
        namespace: Option<&'a str>,
        labels: &'a LabelSelector,
        fields: &'a FieldSelector,
    ) -> impl Iterator<Item = (&'a (String, String), &'a Value)> + 'a {
        self.objects
            .get(&TypeKey::of(resource))
            .into_iter()
            .flat_map(|objects| objects.iter())
            .filter(move |((object_namespace, _), object)| {
                namespace.is_none_or(|namespace| namespace == object_namespace)
                    && labels.matches(object)
                    && fields.matches(object)
            })
    }

    /// LIST, with selectors and `limit`/`continue` paging.
    ///
    /// Pages after the first are served from the current state (not a snapshot at the first
    /// page's resourceVersion, as etcd would), but carry the first page's resourceVersion, so a
    /// watch started from it replays whatever changed meanwhile.
    pub(crate) fn list(
        &self,
        resource: &ResourceType,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<Value, ApiError> {
        if options.resource_version_match.as_deref() == Some("Exact") {
            let wanted = options.resource_version.as_deref().unwrap_or_default();
            let wanted: u64 = wanted.parse().map_err(|_| {
                ApiError::invalid_options(
                    "ListOptions",
                    "resourceVersion",
                    "Invalid value: an Exact match needs a resourceVersion",
                )
            })?;
            if wanted < self.resource_version {
                return Err(ApiError::expired(format!(
                    "too old resource version: {wanted} ({})",
                    self.resource_version
                )));
            }
            if wanted > self.resource_version {
                return Err(ApiError::timeout(format!(
                    "Too large resource version: {wanted}, current: {}",
                    self.resource_version
                )));
            }
        }
        let (list_version, after) = match options
            .continue_token
            .as_deref()
            .filter(|token| !token.is_empty())
        {
            Some(token) => {
                let (version, after) = decode_continue(token)
                    .ok_or_else(|| ApiError::bad_request("continue key is not valid"))?;
                (version, Some(after))
            }
            None => (self.resource_version, None),
        };
        let mut matching = self
            .select(resource, namespace, &options.labels, &options.fields)
            .filter(|(key, _)| after.as_ref().is_none_or(|after| *key > after));
        let limit = options
            .limit
            .filter(|limit| *limit > 0)
            .unwrap_or(usize::MAX);
        let mut items = Vec::new();
        let mut last_key = None;
        for (key, object) in matching.by_ref().take(limit) {
            items.push(object.clone());
            last_key = Some(key);
        }
        let remaining = matching.count();
        let mut list_metadata = json!({"resourceVersion": list_version.to_string()});
        if let (true, Some(last)) = (remaining > 0, last_key) {
            list_metadata["continue"] = Value::String(encode_continue(list_version, last));
            list_metadata["remainingItemCount"] = json!(remaining);
        }
        Ok(json!({
            "apiVersion": resource.api_version(),
            "kind": format!("{}List", resource.kind),
            "metadata": list_metadata,
            "items": items,
        }))
    }

    /// Events after `resource_version`, oldest first, or 410 Expired when some have been
    /// dropped from the history.
    pub(crate) fn events_after(
        &self,
        resource_version: u64,
    ) -> Result<impl Iterator<Item = &StoredEvent>, ApiError> {
        if resource_version < self.compacted_through {
            return Err(ApiError::expired(format!(
                "too old resource version: {resource_version} ({})",
                self.compacted_through + 1
            )));
        }
        let start = self
            .history
            .partition_point(|event| event.resource_version <= resource_version);
        Ok(self.history.range(start..))
    }

    /// POST: creates an object. `keep_status` keeps a status-subresource type's `.status`,
    /// which an API create drops; seeding uses it.
    pub(crate) fn create(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        mut object: Value,
        options: &WriteOptions,
        keep_status: bool,
    ) -> Result<Value, ApiError> {
        check_type(resource, &mut object)?;
        check_namespace(resource, namespace, &mut object)?;
        if metadata_str(&object, "resourceVersion").is_some_and(|version| !version.is_empty()) {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        let name = match metadata_str(&object, "name").filter(|name| !name.is_empty()) {
            Some(name) => name.to_owned(),
            None => {
                let Some(prefix) =
                    metadata_str(&object, "generateName").filter(|prefix| !prefix.is_empty())
                else {
                    return Err(ApiError::invalid(
                        resource,
                        "",
                        "metadata.name",
                        "Required value: name or generateName is required",
                    ));
                };
                let prefix = prefix.to_owned();
                let name = std::iter::repeat_with(|| format!("{prefix}{}", name_suffix()))
                    .find(|candidate| self.find(resource, namespace, candidate).is_none())
                    .unwrap_or_default();
                set_metadata(&mut object, "name", Value::String(name.clone()));
                name
            }
        };
        validate_metadata(resource, &object)?;
        crate::rbac::admit(resource, &mut object, None)?;
        if resource.namespaced {
            let namespaces = TypeKey::new("", "v1", "namespaces");
            let exists = self
                .objects
                .get(&namespaces)
                .is_some_and(|all| all.contains_key(&(String::new(), namespace.to_owned())));
            if !exists {
                let namespace_type = self.types.get(&namespaces).cloned().unwrap_or_else(|| {
                    ResourceType::new("", "v1", "Namespace", "namespaces").cluster_scoped()
                });
                return Err(ApiError::not_found(&namespace_type, namespace));
            }
        }
        if self.find(resource, namespace, &name).is_some() {
            return Err(ApiError::already_exists(resource, &name));
        }
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "managedFields",
            "generation",
        ] {
            remove_metadata(&mut object, field);
        }
        set_metadata(&mut object, "uid", Value::String(new_uid()));
        set_metadata(
            &mut object,
            "creationTimestamp",
            Value::String(now_rfc3339()),
        );
        if resource.tracks_generation {
            set_metadata(&mut object, "generation", json!(1));
        }
        if resource.status_subresource && !keep_status {
            set_status(&mut object, None);
        }
        if !options.dry_run {
            self.commit(resource, EventType::Added, &mut object, None);
        }
        Ok(object)
    }

    /// PUT: replaces an object (or, for `Subresource::Status`, only its status).
    pub(crate) fn update(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        object: Value,
        subresource: Subresource,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(resource, namespace, name)?;
        self.write_update(resource, namespace, name, old, object, subresource, options)
    }

    /// PATCH: applies a patch to an object and stores the result as an update would. A
    /// server-side apply to a missing object creates it; the returned flag says so.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn patch(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        kind: PatchKind,
        patch: &Value,
        subresource: Subresource,
        options: &WriteOptions,
    ) -> Result<(Value, bool), ApiError> {
        let apply_body = || {
            let mut body = patch.clone();
            if !body.is_object() {
                return Err(ApiError::bad_request("an apply patch must be an object"));
            }
            for field in ["apiVersion", "kind"] {
                if body
                    .get(field)
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    return Err(ApiError::invalid(
                        resource,
                        name,
                        field,
                        "Required value: must be set for an apply patch",
                    ));
                }
            }
            remove_metadata(&mut body, "managedFields");
            Ok(body)
        };
        if kind == PatchKind::StrategicMerge && !resource.is_builtin() {
            return Err(ApiError::unsupported_media_type(
                "application/strategic-merge-patch+json",
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/apply-patch+yaml",
                ],
            ));
        }
        let Some(old) = self.find(resource, namespace, name).cloned() else {
            if kind == PatchKind::Apply && subresource == Subresource::Main {
                let mut object = apply_body()?;
                match metadata_str(&object, "name") {
                    Some(given) if given != name => {
                        return Err(ApiError::bad_request(format!(
                            "the name of the object ({given}) does not match the name on the URL ({name})"
                        )));
                    }
                    _ => set_metadata(&mut object, "name", Value::String(name.to_owned())),
                }
                return self
                    .create(resource, namespace, object, options, false)
                    .map(|created| (created, true));
            }
            return Err(ApiError::not_found(resource, name));
        };
        let candidate = match kind {
            PatchKind::Merge | PatchKind::StrategicMerge => {
                if !patch.is_object() {
                    return Err(ApiError::bad_request("a merge patch must be a JSON object"));
                }
                let mut candidate = old.clone();
                merge_patch(&mut candidate, patch);
                candidate
            }
            PatchKind::Json => json_patch(&old, patch).map_err(|why| {
                ApiError::with_code(422, format!("the JSON patch does not apply: {why}"))
            })?,
            PatchKind::Apply => {
                let mut candidate = old.clone();
                merge_patch(&mut candidate, &apply_body()?);
                candidate
            }
        };
        self.write_update(
            resource,
            namespace,
            name,
            old,
            candidate,
            subresource,
            options,
        )
        .map(|updated| (updated, false))
    }

    /// The one path every update and patch takes to storage.
    #[allow(clippy::too_many_arguments)]
    fn write_update(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        old: Value,
        mut candidate: Value,
        subresource: Subresource,
        options: &WriteOptions,
    ) -> Result<Value, ApiError> {
        check_type(resource, &mut candidate)?;
        check_namespace(resource, namespace, &mut candidate)?;
        match metadata_str(&candidate, "name") {
            Some(given) if given != name => {
                return Err(ApiError::bad_request(format!(
                    "the name of the object ({given}) does not match the name on the URL ({name})"
                )));
            }
            _ => set_metadata(&mut candidate, "name", Value::String(name.to_owned())),
        }
        let old_version = metadata_str(&old, "resourceVersion").unwrap_or_default();
        if let Some(given) = metadata_str(&candidate, "resourceVersion")
            && !given.is_empty()
            && given != old_version
        {
            return Err(ApiError::conflict(
                resource,
                name,
                "the object has been modified; please apply your changes to the latest version and try again",
            ));
        }
        let old_uid = metadata_str(&old, "uid").unwrap_or_default();
        if let Some(given) = metadata_str(&candidate, "uid")
            && !given.is_empty()
            && given != old_uid
        {
            return Err(ApiError::conflict(
                resource,
                name,
                &format!(
                    "Precondition failed: UID in precondition: {given}, UID in object meta: {old_uid}"
                ),
            ));
        }
        let mut new = match subresource {
            Subresource::Main => {
                for field in [
                    "uid",
                    "creationTimestamp",
                    "deletionTimestamp",
                    "deletionGracePeriodSeconds",
                    "generation",
                    "resourceVersion",
                ] {
                    match metadata(&old).and_then(|metadata| metadata.get(field)) {
                        Some(value) => set_metadata(&mut candidate, field, value.clone()),
                        None => remove_metadata(&mut candidate, field),
                    }
                }
                remove_metadata(&mut candidate, "managedFields");
                if resource.status_subresource {
                    set_status(&mut candidate, old.get("status"));
                }
                candidate
            }
            Subresource::Status => {
                let mut new = old.clone();
                set_status(&mut new, candidate.get("status"));
                new
            }
        };
        validate_metadata(resource, &new)?;
        crate::rbac::admit(resource, &mut new, Some(&old))?;
        let deleting =
            metadata(&old).is_some_and(|metadata| metadata.contains_key("deletionTimestamp"));
        if deleting {
            let before = finalizers(&old);
            if finalizers(&new)
                .iter()
                .any(|finalizer| !before.contains(finalizer))
            {
                return Err(ApiError::invalid(
                    resource,
                    name,
                    "metadata.finalizers",
                    "Forbidden: no new finalizers can be added if the object is being deleted",
                ));
            }
        }
        if new == old {
            return Ok(old);
        }
        let skip: &[&str] = if resource.status_subresource {
            &["status"]
        } else {
            &[]
        };
        if resource.tracks_generation && content_differs(&old, &new, skip) {
            set_metadata(&mut new, "generation", json!(generation(&old) + 1));
        }
        if options.dry_run {
            return Ok(new);
        }
        if deleting && finalizers(&new).is_empty() {
            self.commit(resource, EventType::Deleted, &mut new, None);
        } else {
            self.commit(resource, EventType::Modified, &mut new, Some(old));
        }
        Ok(new)
    }

    /// DELETE: removes an object, or, while it has finalizers, marks it with a
    /// deletionTimestamp and keeps it until an update removes the last one.
    pub(crate) fn delete(
        &mut self,
        resource: &ResourceType,
        namespace: &str,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let old = self.get(resource, namespace, name)?;
        let precondition = |field: &str, wanted: Option<&str>, key: &str| {
            let have = metadata_str(&old, key).unwrap_or_default();
            match wanted {
                Some(wanted) if wanted != have => Err(ApiError::conflict(
                    resource,
                    name,
                    &format!(
                        "Precondition failed: {field} in precondition: {wanted}, {field} in object meta: {have}"
                    ),
                )),
                _ => Ok(()),
            }
        };
        precondition("UID", options.precondition_uid.as_deref(), "uid")?;
        precondition(
            "ResourceVersion",
            options.precondition_resource_version.as_deref(),
            "resourceVersion",
        )?;
        if !finalizers(&old).is_empty() {
            if metadata(&old).is_some_and(|metadata| metadata.contains_key("deletionTimestamp")) {
                return Ok(old);
            }
            let mut new = old.clone();
            set_metadata(&mut new, "deletionTimestamp", Value::String(now_rfc3339()));
            set_metadata(&mut new, "deletionGracePeriodSeconds", json!(0));
            if resource.tracks_generation && generation(&old) > 0 {
                set_metadata(&mut new, "generation", json!(generation(&old) + 1));
            }
            if !options.dry_run {
                self.commit(resource, EventType::Modified, &mut new, Some(old));
            }
            return Ok(new);
        }
        let mut gone = old;
        if !options.dry_run {
            self.commit(resource, EventType::Deleted, &mut gone, None);
        }
        Ok(gone)
    }

    /// DELETE on a collection: deletes every matching object, answering the list of them.
    pub(crate) fn delete_collection(
        &mut self,
        resource: &ResourceType,
        namespace: Option<&str>,
        labels: &LabelSelector,
        fields: &FieldSelector,
        options: &DeleteOptions,
    ) -> Result<Value, ApiError> {
        let keys: Vec<(String, String)> = self
            .select(resource, namespace, labels, fields)
            .map(|(key, _)| key.clone())
            .collect();
        let mut items = Vec::new();
        for (object_namespace, name) in keys {
            items.push(self.delete(resource, &object_namespace, &name, options)?);
        }
        Ok(json!({
            "apiVersion": resource.api_version(),
            "kind": format!("{}List", resource.kind),
            "metadata": {"resourceVersion": self.resource_version.to_string()},
            "items": items,
        }))
    }

    /// Stores a manifest as a test fixture, status included: creates it, or with `apply`,
    /// server-side applies it over an existing object (status too).
    pub(crate) fn seed(&mut self, object: Value, apply: bool) -> Result<Value, ApiError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let Some(resource) = self.type_of_kind(api_version, kind).cloned() else {
            return Err(ApiError::bad_request(format!(
                "no resource type is registered for apiVersion {api_version:?} kind {kind:?}"
            )));
        };
        let namespace = metadata_str(&object, "namespace")
            .filter(|namespace| !namespace.is_empty())
            .unwrap_or(if resource.namespaced { "default" } else { "" })
            .to_owned();
        let name = metadata_str(&object, "name").unwrap_or_default().to_owned();
        let options = WriteOptions::default();
        if !apply || self.find(&resource, &namespace, &name).is_none() {
            return self.create(&resource, &namespace, object, &options, true);
        }
        let (stored, _) = self.patch(
            &resource,
            &namespace,
            &name,
            PatchKind::Apply,
            &object,
            Subresource::Main,
            &options,
        )?;
        if !resource.status_subresource || object.get("status").is_none() {
            return Ok(stored);
        }
        self.patch(
            &resource,
            &namespace,
            &name,
            PatchKind::Apply,
            &object,
            Subresource::Status,
            &options,
        )
        .map(|(stored, _)| stored)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn store() -> Store {
        let (changes, _) = watch::channel(0);
        let mut store = Store::new(100, changes);
        store.register(
            ResourceType::new("example.com", "v1", "Widget", "widgets").with_status_subresource(),
        );
        store
    }

    fn widgets() -> ResourceType {
        ResourceType::new("example.com", "v1", "Widget", "widgets").with_status_subresource()
    }

    fn widget(name: &str) -> Value {
        json!({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name}, "spec": {"size": 1}, "status": {"ready": true}})
    }

    /// Creates `object` as a Widget in `namespace`, as a plain POST does.
    fn create_widget(store: &mut Store, namespace: &str, object: Value) -> Result<Value, ApiError> {
        store.create(
            &widgets(),
            namespace,
            object,
            &WriteOptions::default(),
            false,
        )
    }

    /// Merge-patches the Widget `default/a` (or its `subresource`).
    fn merge_widget(
        store: &mut Store,
        patch: &Value,
        subresource: Subresource,
    ) -> Result<(Value, bool), ApiError> {
        store.patch(
            &widgets(),
            "default",
            "a",
            PatchKind::Merge,
            patch,
            subresource,
            &WriteOptions::default(),
        )
    }

    fn version(object: &Value) -> u64 {
        metadata_str(object, "resourceVersion")
            .unwrap()
            .parse()
            .unwrap()
    }

    #[test]
    fn create_sets_server_metadata_and_drops_status() {
        let mut store = store();
        let created = create_widget(&mut store, "default", widget("a")).unwrap();
        assert_eq!(created["metadata"]["generation"], 1);
        assert_eq!(created["metadata"]["namespace"], "default");
        assert!(created["metadata"]["uid"].is_string());
        assert!(created.get("status").is_none());
        let again = create_widget(&mut store, "default", widget("a"));
        assert_eq!(again.unwrap_err().reason, "AlreadyExists");
    }

    #[test]
    fn create_needs_an_existing_namespace() {
        let mut store = store();
        let error = create_widget(&mut store, "nowhere", widget("a")).unwrap_err();
        assert_eq!(
            (error.code, error.message.as_str()),
            (404, "namespaces \"nowhere\" not found")
        );
    }

    #[test]
    fn generate_name_appends_a_suffix() {
        let mut store = store();
        let object = json!({"metadata": {"generateName": "w-"}});
        let created = create_widget(&mut store, "default", object).unwrap();
        let name = created["metadata"]["name"].as_str().unwrap();
        assert!(name.starts_with("w-") && name.len() == 7, "{name}");
    }

    #[test]
    fn no_op_patch_keeps_resource_version() {
        let mut store = store();
        let created = create_widget(&mut store, "default", widget("a")).unwrap();
        let patch = json!({"spec": {"size": 1}});
        let (same, _) = merge_widget(&mut store, &patch, Subresource::Main).unwrap();
        assert_eq!(version(&same), version(&created));
    }

    #[test]
    fn status_writes_leave_spec_and_generation_alone() {
        let mut store = store();
        create_widget(&mut store, "default", widget("a")).unwrap();
        let patch = json!({"spec": {"size": 9}, "status": {"ready": false}});
        let (patched, _) = merge_widget(&mut store, &patch, Subresource::Status).unwrap();
        assert_eq!(patched["spec"]["size"], 1);
        assert_eq!(patched["status"]["ready"], false);
        assert_eq!(patched["metadata"]["generation"], 1);
    }

    #[test]
    fn history_compaction_expires_old_versions() {
        let (changes, _) = watch::channel(0);
        let mut store = Store::new(2, changes);
        let start = store.resource_version();
        for name in ["a", "b", "c"] {
            let secret = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}});
            store.seed(secret, false).unwrap();
        }
        assert_eq!(store.events_after(start).err().unwrap().code, 410);
        assert_eq!(store.events_after(start + 1).unwrap().count(), 2);
    }

    #[test]
    fn continue_tokens_round_trip_and_reject_garbage() {
        let key = ("ns".to_owned(), "name".to_owned());
        assert_eq!(decode_continue(&encode_continue(7, &key)), Some((7, key)));
        assert_eq!(decode_continue("not a token"), None);
    }

    #[derive(Debug, Clone)]
    enum Op {
        Create(u8),
        Patch(u8, u8),
        Status(u8, u8),
        Delete(u8),
        Finalize(u8),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (0u8..4).prop_map(Op::Create),
            (0u8..4, 0u8..3).prop_map(|(n, v)| Op::Patch(n, v)),
            (0u8..4, 0u8..3).prop_map(|(n, v)| Op::Status(n, v)),
            (0u8..4).prop_map(Op::Delete),
            (0u8..4).prop_map(Op::Finalize),
        ]
    }

    proptest! {
        /// Whatever sequence of writes runs, every successful write that changed something
        /// carries a resourceVersion above every earlier one, events are in increasing order,
        /// and generation only moves on spec changes.
        #[test]
        fn resource_versions_only_grow(ops in prop::collection::vec(op(), 1..40)) {
            let mut store = store();
            let resource = widgets();
            let options = WriteOptions::default();
            let mut highest = store.resource_version();
            for op in ops {
                let before = store.resource_version();
                let result = match op {
                    Op::Create(n) => {
                        let mut object = widget(&format!("w{n}"));
                        object["metadata"]["finalizers"] = json!(["example.com/keep"]);
                        store.create(&resource, "default", object, &options, false)
                    }
                    Op::Patch(n, v) => store
                        .patch(&resource, "default", &format!("w{n}"), PatchKind::Merge, &json!({"spec": {"size": v}}), Subresource::Main, &options)
                        .map(|(object, _)| object),
                    Op::Status(n, v) => {
                        let name = format!("w{n}");
                        let old_generation = store.get(&resource, "default", &name).ok().map(|object| generation(&object));
                        let result = store
                            .patch(&resource, "default", &name, PatchKind::Merge, &json!({"status": {"v": v}}), Subresource::Status, &options)
                            .map(|(object, _)| object);
                        if let Ok(object) = &result {
                            prop_assert_eq!(Some(generation(object)), old_generation);
                        }
                        result
                    }
                    Op::Delete(n) => store.delete(&resource, "default", &format!("w{n}"), &DeleteOptions::default()),
                    Op::Finalize(n) => store
                        .patch(&resource, "default", &format!("w{n}"), PatchKind::Merge, &json!({"metadata": {"finalizers": null}}), Subresource::Main, &options)
                        .map(|(object, _)| object),
                };
                let after = store.resource_version();
                prop_assert!(after >= before);
                if let Ok(object) = result {
                    if after > before {
                        prop_assert_eq!(version(&object), after);
                        prop_assert!(after > highest);
                    } else {
                        prop_assert!(version(&object) <= after);
                    }
                }
                highest = highest.max(after);
            }
            let versions: Vec<u64> = store.events_after(0).unwrap().map(|event| event.resource_version).collect();
            prop_assert!(versions.windows(2).all(|pair| pair[0] < pair[1]));
        }
    }
}
