//! The Flux kinds a Receiver can name, with the API coordinates needed to
//! patch them.

#[cfg(feature = "kube")]
use kube::core::ApiResource;

/// A Flux custom resource kind: its group, the version Flux serves for
/// storage, its plural resource name and scope.
///
/// ```
/// let git = fluxhook_api::flux_kind("GitRepository").unwrap();
/// assert_eq!(git.api_version(), "source.toolkit.fluxcd.io/v1");
/// assert_eq!(git.plural(), "gitrepositories");
/// assert!(git.namespaced());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FluxKind {
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    api_version: &'static str,
    plural: &'static str,
    receiver_default: bool,
    receiver_target: bool,
}

/// Whether a Receiver may name the kind without `apiVersion`.
#[derive(Clone, Copy)]
enum ApiVersion {
    /// Flux fills in this kind's `apiVersion` when a Receiver leaves it out.
    Defaulted,
    /// A Receiver must give `apiVersion` for this kind.
    Required,
}

/// Whether Flux's Receiver CRD lists the kind in `spec.resources[].kind`.
#[derive(Clone, Copy)]
enum Target {
    Listed,
    NotListed,
}

const fn flux(
    kind: &'static str,
    group: &'static str,
    version: &'static str,
    api_version: &'static str,
    plural: &'static str,
    default: ApiVersion,
    target: Target,
) -> FluxKind {
    FluxKind {
        kind,
        group,
        version,
        api_version,
        plural,
        receiver_default: matches!(default, ApiVersion::Defaulted),
        receiver_target: matches!(target, Target::Listed),
    }
}

const SOURCE: &str = "source.toolkit.fluxcd.io";
const SOURCE_V1: &str = "source.toolkit.fluxcd.io/v1";
const IMAGE: &str = "image.toolkit.fluxcd.io";
const IMAGE_V1: &str = "image.toolkit.fluxcd.io/v1";
const NOTIFICATION: &str = "notification.toolkit.fluxcd.io";

/// Every Flux kind this crate knows. All are namespaced.
///
/// The kinds a Receiver may name are those of its CRD's
/// `spec.resources[].kind` enum; Receiver, Alert and Provider are here for
/// completeness (Flux's CRD does not let a Receiver name them).
pub const FLUX_KINDS: &[FluxKind] = &[
    flux(
        "Bucket",
        SOURCE,
        "v1",
        SOURCE_V1,
        "buckets",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "GitRepository",
        SOURCE,
        "v1",
        SOURCE_V1,
        "gitrepositories",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "HelmChart",
        SOURCE,
        "v1",
        SOURCE_V1,
        "helmcharts",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "HelmRepository",
        SOURCE,
        "v1",
        SOURCE_V1,
        "helmrepositories",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "OCIRepository",
        SOURCE,
        "v1",
        SOURCE_V1,
        "ocirepositories",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "ExternalArtifact",
        SOURCE,
        "v1",
        SOURCE_V1,
        "externalartifacts",
        ApiVersion::Required,
        Target::Listed,
    ),
    flux(
        "ArtifactGenerator",
        "source.extensions.fluxcd.io",
        "v1beta1",
        "source.extensions.fluxcd.io/v1beta1",
        "artifactgenerators",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "ImageRepository",
        IMAGE,
        "v1",
        IMAGE_V1,
        "imagerepositories",
        ApiVersion::Defaulted,
        Target::Listed,
    ),
    flux(
        "ImagePolicy",
        IMAGE,
        "v1",
        IMAGE_V1,
        "imagepolicies",
        ApiVersion::Required,
        Target::Listed,
    ),
    flux(
        "ImageUpdateAutomation",
        IMAGE,
        "v1",
        IMAGE_V1,
        "imageupdateautomations",
        ApiVersion::Required,
        Target::Listed,
    ),
    flux(
        "Kustomization",
        "kustomize.toolkit.fluxcd.io",
        "v1",
        "kustomize.toolkit.fluxcd.io/v1",
        "kustomizations",
        ApiVersion::Required,
        Target::Listed,
    ),
    flux(
        "HelmRelease",
        "helm.toolkit.fluxcd.io",
        "v2",
        "helm.toolkit.fluxcd.io/v2",
        "helmreleases",
        ApiVersion::Required,
        Target::Listed,
    ),
    flux(
        "Receiver",
        NOTIFICATION,
        "v1",
        "notification.toolkit.fluxcd.io/v1",
        "receivers",
        ApiVersion::Required,
        Target::NotListed,
    ),
    flux(
        "Alert",
        NOTIFICATION,
        "v1beta3",
        "notification.toolkit.fluxcd.io/v1beta3",
        "alerts",
        ApiVersion::Required,
        Target::NotListed,
    ),
    flux(
        "Provider",
        NOTIFICATION,
        "v1beta3",
        "notification.toolkit.fluxcd.io/v1beta3",
        "providers",
        ApiVersion::Required,
        Target::NotListed,
    ),
];

impl FluxKind {
    /// The kind, e.g. `GitRepository`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The API group, e.g. `source.toolkit.fluxcd.io`.
    pub fn group(&self) -> &'static str {
        self.group
    }

    /// The version Flux serves for storage, e.g. `v1`.
    pub fn version(&self) -> &'static str {
        self.version
    }

    /// `group/version`, e.g. `source.toolkit.fluxcd.io/v1`.
    pub fn api_version(&self) -> &'static str {
        self.api_version
    }

    /// The plural resource name, e.g. `gitrepositories`.
    pub fn plural(&self) -> &'static str {
        self.plural
    }

    /// Whether objects of the kind live in a namespace (every Flux kind does).
    pub fn namespaced(&self) -> bool {
        true
    }

    /// The `apiVersion` Flux assumes when a Receiver names this kind without
    /// one, if it assumes one.
    ///
    /// ```
    /// use fluxhook_api::flux_kind;
    ///
    /// assert_eq!(
    ///     flux_kind("OCIRepository").unwrap().receiver_default_api_version(),
    ///     Some("source.toolkit.fluxcd.io/v1")
    /// );
    /// assert_eq!(flux_kind("Kustomization").unwrap().receiver_default_api_version(), None);
    /// ```
    pub fn receiver_default_api_version(&self) -> Option<&'static str> {
        self.receiver_default.then_some(self.api_version)
    }

    /// Whether Flux's Receiver CRD lets `spec.resources[].kind` name this kind.
    pub fn receiver_target(&self) -> bool {
        self.receiver_target
    }
}

/// Looks a kind up by name (case-sensitive, as Kubernetes kinds are).
///
/// ```
/// assert_eq!(fluxhook_api::flux_kind("HelmRelease").unwrap().plural(), "helmreleases");
/// assert!(fluxhook_api::flux_kind("helmrelease").is_none());
/// ```
pub fn flux_kind(kind: &str) -> Option<&'static FluxKind> {
    FLUX_KINDS.iter().find(|k| k.kind == kind)
}

/// The `apiVersion` Flux assumes for a Receiver resource that names `kind`
/// without one: Bucket, HelmChart, HelmRepository, GitRepository,
/// OCIRepository, ImageRepository and ArtifactGenerator.
///
/// ```
/// use fluxhook_api::default_api_version;
///
/// assert_eq!(default_api_version("ImageRepository"), Some("image.toolkit.fluxcd.io/v1"));
/// assert_eq!(default_api_version("HelmRelease"), None);
/// ```
pub fn default_api_version(kind: &str) -> Option<&'static str> {
    flux_kind(kind).and_then(FluxKind::receiver_default_api_version)
}

/// A Receiver resource reference resolved to the API coordinates of the
/// objects it names. Borrows the `apiVersion` it was given; allocates nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResolvedKind<'a> {
    flux_kind: &'static FluxKind,
    api_version: &'a str,
    version: &'a str,
}

impl<'a> ResolvedKind<'a> {
    /// The kind's entry in [`FLUX_KINDS`].
    pub fn flux_kind(&self) -> &'static FluxKind {
        self.flux_kind
    }

    /// The kind, e.g. `GitRepository`.
    pub fn kind(&self) -> &'static str {
        self.flux_kind.kind
    }

    /// The API group.
    pub fn group(&self) -> &'static str {
        self.flux_kind.group
    }

    /// The version: the one given in `apiVersion`, else Flux's default.
    pub fn version(&self) -> &'a str {
        self.version
    }

    /// `group/version` as given, else Flux's default.
    pub fn api_version(&self) -> &'a str {
        self.api_version
    }

    /// The plural resource name.
    pub fn plural(&self) -> &'static str {
        self.flux_kind.plural
    }

    /// Whether objects of the kind live in a namespace.
    pub fn namespaced(&self) -> bool {
        self.flux_kind.namespaced()
    }

    /// The coordinates as kube's dynamic-API type (feature `kube`).
    ///
    /// ```
    /// let ar = fluxhook_api::resolve(None, "Bucket").unwrap().to_api_resource();
    /// assert_eq!(ar.plural, "buckets");
    /// assert_eq!(ar.api_version, "source.toolkit.fluxcd.io/v1");
    /// ```
    #[cfg(feature = "kube")]
    pub fn to_api_resource(&self) -> ApiResource {
        ApiResource {
            group: self.group().to_owned(),
            version: self.version.to_owned(),
            api_version: self.api_version.to_owned(),
            kind: self.kind().to_owned(),
            plural: self.plural().to_owned(),
        }
    }
}

/// Why a Receiver resource reference cannot be resolved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// No `apiVersion` was given and Flux has no default for the kind.
    #[error("apiVersion must be specified for kind {kind:?}")]
    NoDefaultApiVersion {
        /// The kind named.
        kind: String,
    },
    /// The `apiVersion` is not `group/version` with both parts non-empty.
    #[error("apiVersion {api_version:?} is not of the form group/version")]
    InvalidApiVersion {
        /// The `apiVersion` given.
        api_version: String,
    },
    /// The group and kind are not a Flux kind this crate knows.
    #[error("kind {kind:?} of group {group:?} is not a known Flux kind")]
    UnknownKind {
        /// The group given.
        group: String,
        /// The kind named.
        kind: String,
    },
}

/// Resolves a Receiver resource's `apiVersion` (if any) and `kind` to API
/// coordinates, as Flux does: an absent or empty `apiVersion` takes Flux's
/// default for the kind ([`default_api_version`]); a given one must be
/// `group/version` with the group of a known Flux kind, and its version is
/// kept as given.
///
/// ```
/// use fluxhook_api::{resolve, ResolveError};
///
/// let git = resolve(None, "GitRepository").unwrap();
/// assert_eq!((git.group(), git.version(), git.plural()),
///            ("source.toolkit.fluxcd.io", "v1", "gitrepositories"));
///
/// let ks = resolve(Some("kustomize.toolkit.fluxcd.io/v1"), "Kustomization").unwrap();
/// assert_eq!(ks.plural(), "kustomizations");
///
/// assert!(matches!(resolve(None, "Kustomization"),
///                  Err(ResolveError::NoDefaultApiVersion { .. })));
/// assert!(matches!(resolve(Some("v1"), "ConfigMap"),
///                  Err(ResolveError::UnknownKind { .. })));
/// ```
pub fn resolve<'a>(
    api_version: Option<&'a str>,
    kind: &str,
) -> Result<ResolvedKind<'a>, ResolveError> {
    let Some(api_version) = api_version.filter(|v| !v.is_empty()) else {
        let flux_kind = flux_kind(kind)
            .filter(|k| k.receiver_default)
            .ok_or_else(|| ResolveError::NoDefaultApiVersion {
                kind: kind.to_owned(),
            })?;
        return Ok(ResolvedKind {
            flux_kind,
            api_version: flux_kind.api_version,
            version: flux_kind.version,
        });
    };
    let (group, version) = match api_version.split_once('/') {
        // A core-group apiVersion (`v1`) has no slash; no Flux kind is in it.
        None => ("", api_version),
        Some((group, version))
            if !group.is_empty() && !version.is_empty() && !version.contains('/') =>
        {
            (group, version)
        }
        Some(_) => {
            return Err(ResolveError::InvalidApiVersion {
                api_version: api_version.to_owned(),
            });
        }
    };
    let flux_kind = FLUX_KINDS
        .iter()
        .find(|k| k.kind == kind && k.group == group)
        .ok_or_else(|| ResolveError::UnknownKind {
            group: group.to_owned(),
            kind: kind.to_owned(),
        })?;
    Ok(ResolvedKind {
        flux_kind,
        api_version,
        version,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    #[test]
    fn api_version_is_group_slash_version() {
        for k in FLUX_KINDS {
            assert_eq!(
                k.api_version(),
                format!("{}/{}", k.group(), k.version()),
                "{}",
                k.kind()
            );
        }
    }

    #[test]
    fn kinds_are_unique() {
        for (i, k) in FLUX_KINDS.iter().enumerate() {
            assert!(
                FLUX_KINDS[i + 1..].iter().all(|other| other.kind != k.kind),
                "{}",
                k.kind
            );
        }
    }

    #[test]
    fn defaults_are_flux_defaults() {
        let defaults: Vec<(&str, &str)> = FLUX_KINDS
            .iter()
            .filter_map(|k| k.receiver_default_api_version().map(|v| (k.kind(), v)))
            .collect();
        assert_eq!(
            defaults,
            [
                ("Bucket", "source.toolkit.fluxcd.io/v1"),
                ("GitRepository", "source.toolkit.fluxcd.io/v1"),
                ("HelmChart", "source.toolkit.fluxcd.io/v1"),
                ("HelmRepository", "source.toolkit.fluxcd.io/v1"),
                ("OCIRepository", "source.toolkit.fluxcd.io/v1"),
                ("ArtifactGenerator", "source.extensions.fluxcd.io/v1beta1"),
                ("ImageRepository", "image.toolkit.fluxcd.io/v1"),
            ]
        );
    }

    #[test]
    fn receiver_targets_are_the_crd_enum() {
        let mut targets: Vec<&str> = FLUX_KINDS
            .iter()
            .filter(|k| k.receiver_target())
            .map(FluxKind::kind)
            .collect();
        targets.sort_unstable();
        let mut crd_enum = [
            "Bucket",
            "GitRepository",
            "Kustomization",
            "HelmRelease",
            "HelmChart",
            "HelmRepository",
            "ImageRepository",
            "ImagePolicy",
            "ImageUpdateAutomation",
            "OCIRepository",
            "ArtifactGenerator",
            "ExternalArtifact",
        ];
        crd_enum.sort_unstable();
        assert_eq!(targets, crd_enum);
    }

    #[test]
    fn resolves_like_flux() {
        let r = resolve(Some(""), "HelmRepository").unwrap();
        assert_eq!(r.api_version(), "source.toolkit.fluxcd.io/v1");

        let r = resolve(Some("source.toolkit.fluxcd.io/v1beta2"), "OCIRepository").unwrap();
        assert_eq!((r.version(), r.plural()), ("v1beta2", "ocirepositories"));

        let r = resolve(Some("image.toolkit.fluxcd.io/v1"), "ImagePolicy").unwrap();
        assert_eq!(r.plural(), "imagepolicies");

        assert_eq!(
            resolve(Some("source.toolkit.fluxcd.io/v1"), "Kustomization"),
            Err(ResolveError::UnknownKind {
                group: "source.toolkit.fluxcd.io".into(),
                kind: "Kustomization".into()
            })
        );
        for bad in ["/v1", "source.toolkit.fluxcd.io/", "a/b/c", "/"] {
            assert_eq!(
                resolve(Some(bad), "GitRepository"),
                Err(ResolveError::InvalidApiVersion {
                    api_version: bad.into()
                }),
                "{bad}"
            );
        }
    }

    proptest! {
        #[test]
        fn resolve_never_panics_and_keeps_what_it_was_given(
            api_version in proptest::option::of(".*|[a-z.]{0,30}/v[0-9a-z]{0,8}"),
            kind in ".*|GitRepository|Bucket|Kustomization",
        ) {
            if let Ok(r) = resolve(api_version.as_deref(), &kind) {
                prop_assert_eq!(r.kind(), kind.as_str());
                match api_version.as_deref().filter(|v| !v.is_empty()) {
                    Some(given) => {
                        prop_assert_eq!(r.api_version(), given);
                        prop_assert_eq!(format!("{}/{}", r.group(), r.version()), given);
                    }
                    None => prop_assert_eq!(Some(r.api_version()), default_api_version(&kind)),
                }
            }
        }
    }
}
