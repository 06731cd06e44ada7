//! The resource types the server stores: built-in ones, Flux's kinds, and CRDs.

use serde_json::Value;

/// One kind of object the server serves, as a CustomResourceDefinition would describe it.
///
/// Each registered type has its own storage, keyed by group, version and plural: registering two
/// versions of one kind gives two independent collections (a real apiserver converts between them).
///
/// ```
/// use fluxhook_test_apiserver::ResourceType;
///
/// let repos = ResourceType::new("source.toolkit.fluxcd.io", "v1", "GitRepository", "gitrepositories")
///     .with_status_subresource();
/// assert_eq!(repos.api_version(), "source.toolkit.fluxcd.io/v1");
/// assert!(repos.namespaced);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group; empty for the core group (`/api/v1`).
    pub group: String,
    /// API version within the group, such as `v1`.
    pub version: String,
    /// Kind, such as `GitRepository`.
    pub kind: String,
    /// Plural resource name used in URLs, such as `gitrepositories`.
    pub plural: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Whether `.status` is a subresource: main-resource writes then keep the stored status, and
    /// only `/status` writes change it.
    pub status_subresource: bool,
    /// Whether `metadata.generation` is kept (as for every custom resource); core kinds such as
    /// Secret and ConfigMap have none.
    pub tracks_generation: bool,
}

impl ResourceType {
    /// A namespaced custom resource without a status subresource.
    pub fn new(group: &str, version: &str, kind: &str, plural: &str) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            namespaced: true,
            status_subresource: false,
            tracks_generation: true,
        }
    }

    /// The same type, cluster-scoped.
    #[must_use]
    pub fn cluster_scoped(mut self) -> Self {
        self.namespaced = false;
        self
    }

    /// The same type, with a `/status` subresource.
    #[must_use]
    pub fn with_status_subresource(mut self) -> Self {
        self.status_subresource = true;
        self
    }

    /// The same type, without `metadata.generation` (as core kinds).
    #[must_use]
    pub fn without_generation(mut self) -> Self {
        self.tracks_generation = false;
        self
    }

    /// `group/version`, or just `version` for the core group.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `plural.group` as Kubernetes names a resource in messages (`secrets` for the core group).
    pub fn qualified_resource(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// Whether the type is one of Kubernetes' own rather than a custom resource: CRD groups
    /// must contain a dot and may not end in `.k8s.io` (without an approval this server does
    /// not model), while built-in groups are dotless (`""`, `apps`) or end in `.k8s.io`.
    pub(crate) fn is_builtin(&self) -> bool {
        !self.group.contains('.') || self.group.ends_with(".k8s.io")
    }

    /// `kind.group` as Kubernetes names a kind in validation messages.
    pub(crate) fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// The kinds every cluster has that fluxhook uses: core v1 Namespace, Secret, ConfigMap,
    /// ServiceAccount and Event, events.k8s.io/v1 Event, coordination.k8s.io/v1 Lease, and the
    /// rbac.authorization.k8s.io/v1 Role, ClusterRole, RoleBinding and ClusterRoleBinding.
    pub fn builtin() -> Vec<Self> {
        let mut builtin = vec![
            Self::new("", "v1", "Namespace", "namespaces")
                .cluster_scoped()
                .with_status_subresource()
                .without_generation(),
            Self::new("", "v1", "Secret", "secrets").without_generation(),
            Self::new("", "v1", "ConfigMap", "configmaps").without_generation(),
            Self::new("", "v1", "ServiceAccount", "serviceaccounts").without_generation(),
            Self::new("", "v1", "Event", "events").without_generation(),
            Self::new("events.k8s.io", "v1", "Event", "events").without_generation(),
            Self::new("coordination.k8s.io", "v1", "Lease", "leases").without_generation(),
        ];
        builtin.extend(crate::rbac::resource_types());
        builtin
    }

    /// Flux's kinds a Receiver can target (those of the `spec.resources[].kind` enum of
    /// notification-controller v1.9's Receiver CRD), plus the Receiver itself, at the
    /// versions Flux serves for storage; all have a status subresource.
    pub fn flux() -> Vec<Self> {
        [
            (
                "notification.toolkit.fluxcd.io",
                "v1",
                "Receiver",
                "receivers",
            ),
            (
                "source.toolkit.fluxcd.io",
                "v1",
                "GitRepository",
                "gitrepositories",
            ),
            (
                "source.toolkit.fluxcd.io",
                "v1",
                "HelmRepository",
                "helmrepositories",
            ),
            (
                "source.toolkit.fluxcd.io",
                "v1",
                "OCIRepository",
                "ocirepositories",
            ),
            ("source.toolkit.fluxcd.io", "v1", "Bucket", "buckets"),
            ("source.toolkit.fluxcd.io", "v1", "HelmChart", "helmcharts"),
            (
                "source.toolkit.fluxcd.io",
                "v1",
                "ExternalArtifact",
                "externalartifacts",
            ),
            (
                "source.extensions.fluxcd.io",
                "v1beta1",
                "ArtifactGenerator",
                "artifactgenerators",
            ),
            (
                "image.toolkit.fluxcd.io",
                "v1",
                "ImageRepository",
                "imagerepositories",
            ),
            (
                "image.toolkit.fluxcd.io",
                "v1",
                "ImagePolicy",
                "imagepolicies",
            ),
            (
                "image.toolkit.fluxcd.io",
                "v1",
                "ImageUpdateAutomation",
                "imageupdateautomations",
            ),
            (
                "kustomize.toolkit.fluxcd.io",
                "v1",
                "Kustomization",
                "kustomizations",
            ),
            (
                "helm.toolkit.fluxcd.io",
                "v2",
                "HelmRelease",
                "helmreleases",
            ),
        ]
        .into_iter()
        .map(|(group, version, kind, plural)| {
            Self::new(group, version, kind, plural).with_status_subresource()
        })
        .collect()
    }

    /// The type a CustomResourceDefinition (`apiextensions.k8s.io/v1`, as JSON) declares, at its
    /// storage version. Returns `None` when the object is not a usable CRD.
    ///
    /// ```
    /// use fluxhook_test_apiserver::ResourceType;
    ///
    /// let crd = serde_json::json!({
    ///     "apiVersion": "apiextensions.k8s.io/v1",
    ///     "kind": "CustomResourceDefinition",
    ///     "spec": {
    ///         "group": "example.com",
    ///         "names": {"kind": "Widget", "plural": "widgets"},
    ///         "scope": "Namespaced",
    ///         "versions": [{"name": "v1", "served": true, "storage": true,
    ///                       "subresources": {"status": {}}}]
    ///     }
    /// });
    /// let widgets = ResourceType::from_crd(&crd).unwrap();
    /// assert_eq!(widgets.api_version(), "example.com/v1");
    /// assert!(widgets.status_subresource);
    /// ```
    pub fn from_crd(crd: &Value) -> Option<Self> {
        if crd.get("kind")?.as_str()? != "CustomResourceDefinition" {
            return None;
        }
        let spec = crd.get("spec")?;
        let group = spec.get("group")?.as_str()?;
        let names = spec.get("names")?;
        let kind = names.get("kind")?.as_str()?;
        let plural = names.get("plural")?.as_str()?;
        let version = spec
            .get("versions")?
            .as_array()?
            .iter()
            .find(|version| version.get("storage").and_then(Value::as_bool) == Some(true))?;
        let mut resource = Self::new(group, version.get("name")?.as_str()?, kind, plural);
        if spec.get("scope").and_then(Value::as_str) == Some("Cluster") {
            resource = resource.cluster_scoped();
        }
        if version.pointer("/subresources/status").is_some() {
            resource = resource.with_status_subresource();
        }
        Some(resource)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn core_types_have_bare_api_version() {
        let secrets = &ResourceType::builtin()[1];
        assert_eq!(secrets.api_version(), "v1");
        assert_eq!(secrets.qualified_resource(), "secrets");
    }

    #[test]
    fn builtin_groups_are_told_from_custom_ones() {
        assert!(ResourceType::builtin().iter().all(ResourceType::is_builtin));
        assert!(!ResourceType::flux().iter().any(ResourceType::is_builtin));
    }

    #[test]
    fn from_crd_rejects_other_kinds() {
        assert_eq!(
            ResourceType::from_crd(&serde_json::json!({"kind": "Secret"})),
            None
        );
    }

    #[test]
    fn from_crd_picks_storage_version_and_scope() {
        let crd = serde_json::json!({
            "kind": "CustomResourceDefinition",
            "spec": {
                "group": "example.com",
                "names": {"kind": "Thing", "plural": "things"},
                "scope": "Cluster",
                "versions": [
                    {"name": "v1beta1", "served": true, "storage": false},
                    {"name": "v1", "served": true, "storage": true}
                ]
            }
        });
        let things = ResourceType::from_crd(&crd);
        assert_eq!(
            things,
            Some(ResourceType::new("example.com", "v1", "Thing", "things").cluster_scoped())
        );
    }
}
