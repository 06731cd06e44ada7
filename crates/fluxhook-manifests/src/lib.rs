//! Test support: fluxhook's Kubernetes manifests (`deploy/`), rendered and
//! checked.
//!
//! `deploy/` is a kustomize tree: a base, the overlays [`Overlay::Standalone`]
//! and [`Overlay::BesideNotificationController`], and the optional
//! [`Component::PodMonitor`]. This crate renders them with
//! `kubectl kustomize` (kubectl from `PATH`, or [`KUBECTL_ENV`]) into
//! [`Manifests`], whose documents tests read as JSON or as their Kubernetes
//! types, and [`strict::check`]s each document against the schema of its kind,
//! failing on fields the type does not have.
//!
//! [`base_resources`] reads the base's resource files as written, without
//! kubectl: enough for tests that need the RBAC rules or the Deployment's
//! arguments, and which must run where kubectl is not installed (the render
//! tests prove those files and the rendered objects agree).
//!
//! ```no_run
//! use fluxhook_manifests::{Overlay, render};
//! use k8s_openapi::api::rbac::v1::ClusterRole;
//!
//! let manifests = render(Overlay::Standalone, &[])?;
//! for role in manifests.objects::<ClusterRole>()? {
//!     println!("{:?}: {} rules", role.metadata.name, role.rules.unwrap_or_default().len());
//! }
//! # Ok::<(), fluxhook_manifests::ManifestsError>(())
//! ```

mod podmonitor;
pub mod strict;

use std::io::ErrorKind;
use std::path::{Component as PathComponent, Path, PathBuf};
use std::process::Command;

use k8s_openapi::Resource;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The environment variable naming the kubectl to run (default: `kubectl` on `PATH`).
pub const KUBECTL_ENV: &str = "KUBECTL";

/// Why manifests could not be rendered, read or typed.
#[derive(Debug, thiserror::Error)]
pub enum ManifestsError {
    /// kubectl is not installed (or not where [`KUBECTL_ENV`] says).
    #[error(
        "kubectl not found (tried {program:?}): deploy/ is rendered with `kubectl kustomize`. \
         Install kubectl (https://kubernetes.io/docs/tasks/tools/#kubectl) or set {KUBECTL_ENV} \
         to its path"
    )]
    KubectlMissing {
        /// The program that was run.
        program: String,
    },
    /// `kubectl kustomize` refused the kustomization.
    #[error("`{program} kustomize {}` failed ({status}): {stderr}", dir.display())]
    Kustomize {
        /// The program that was run.
        program: String,
        /// The kustomization rendered.
        dir: PathBuf,
        /// How it exited.
        status: String,
        /// What it said.
        stderr: String,
    },
    /// A local file or folder could not be read or written.
    #[error("cannot {what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A document is not YAML, or not a Kubernetes object.
    #[error("{origin}, document {index}: {message}")]
    Malformed {
        /// Where the documents came from.
        origin: String,
        /// The document's position, from 0.
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A document does not parse into the type asked for.
    #[error("{kind} {name} ({origin}) is not a valid {kind}: {message}")]
    Type {
        /// The document's kind.
        kind: String,
        /// The document's name.
        name: String,
        /// Where it came from.
        origin: String,
        /// The parser's message, with the field's path.
        message: String,
    },
    /// No document of that kind and name.
    #[error("no {kind} named {name:?} in {origin}")]
    NotFound {
        /// The kind looked for.
        kind: String,
        /// The name looked for.
        name: String,
        /// Where it was looked for.
        origin: String,
    },
}

/// The two ways of installing fluxhook, each a folder of `deploy/overlays`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Overlay {
    /// Flux without notification-controller: fluxhook owns the Receivers and
    /// ships Flux's Receiver CRD.
    Standalone,
    /// Beside notification-controller, which keeps the Receiver CRD and its
    /// reconciliation: fluxhook serves the webhooks and writes nothing on
    /// Receivers (`--manage-receivers=false`).
    BesideNotificationController,
}

impl Overlay {
    /// Every overlay.
    pub const ALL: [Overlay; 2] = [Overlay::Standalone, Overlay::BesideNotificationController];

    /// The overlay's folder name below `deploy/overlays`.
    pub fn name(self) -> &'static str {
        match self {
            Overlay::Standalone => "standalone",
            Overlay::BesideNotificationController => "beside-notification-controller",
        }
    }

    /// The overlay's folder.
    pub fn dir(self) -> PathBuf {
        deploy_dir().join("overlays").join(self.name())
    }
}

/// The optional kustomize components, each a folder of `deploy/components`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Component {
    /// A Prometheus Operator PodMonitor scraping the metrics port.
    PodMonitor,
}

impl Component {
    /// Every component.
    pub const ALL: [Component; 1] = [Component::PodMonitor];

    /// The component's folder name below `deploy/components`.
    pub fn name(self) -> &'static str {
        match self {
            Component::PodMonitor => "podmonitor",
        }
    }

    /// The component's folder.
    pub fn dir(self) -> PathBuf {
        deploy_dir().join("components").join(self.name())
    }
}

/// The repository's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    // <workspace>/crates/fluxhook-manifests
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir
        .ancestors()
        .nth(2)
        .unwrap_or(crate_dir)
        .join("deploy")
}

/// Renders an overlay, with these components added, as
/// `kubectl kustomize` does for a kustomization listing the overlay in
/// `resources` and the components in `components` (the way an operator adds
/// a component).
pub fn render(overlay: Overlay, components: &[Component]) -> Result<Manifests, ManifestsError> {
    if components.is_empty() {
        return render_dir(&overlay.dir());
    }
    // kustomize refuses absolute paths: the scratch kustomization names the
    // overlay and components relative to itself.
    let scratch = tempfile::tempdir().map_err(io("create a scratch kustomization folder"))?;
    let here = canonical(scratch.path())?;
    let relative_to_here = |dir: PathBuf| -> Result<String, ManifestsError> {
        Ok(relative(&here, &canonical(&dir)?).display().to_string())
    };
    let kustomization = serde_json::json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": [relative_to_here(overlay.dir())?],
        "components": components
            .iter()
            .map(|c| relative_to_here(c.dir()))
            .collect::<Result<Vec<_>, _>>()?,
    });
    let file = here.join("kustomization.yaml");
    // JSON is YAML.
    std::fs::write(&file, kustomization.to_string())
        .map_err(io(format!("write {}", file.display())))?;
    let names: Vec<&str> = components.iter().map(|c| c.name()).collect();
    let rendered = kustomize(&here)?;
    Manifests::parse(
        format!(
            "overlays/{} with components/{}",
            overlay.name(),
            names.join(", components/")
        ),
        &rendered,
    )
}

/// Renders the base alone (`deploy/base`).
pub fn render_base() -> Result<Manifests, ManifestsError> {
    render_dir(&deploy_dir().join("base"))
}

/// Renders any kustomization folder.
pub fn render_dir(dir: &Path) -> Result<Manifests, ManifestsError> {
    let rendered = kustomize(dir)?;
    let origin = dir
        .strip_prefix(deploy_dir())
        .unwrap_or(dir)
        .display()
        .to_string();
    Manifests::parse(origin, &rendered)
}

/// The documents of the base's resource files (`resources` of
/// `deploy/base/kustomization.yaml`), as written: before kustomize sets their
/// namespace, labels and image. Needs no kubectl.
///
/// ```
/// use fluxhook_manifests::base_resources;
/// use k8s_openapi::api::apps::v1::Deployment;
///
/// let deployment: Deployment = base_resources()?.object("fluxhook-receiver")?;
/// let pod = deployment.spec.and_then(|s| s.template.spec).expect("a pod template");
/// assert_eq!(pod.containers[0].name, "manager");
/// # Ok::<(), fluxhook_manifests::ManifestsError>(())
/// ```
pub fn base_resources() -> Result<Manifests, ManifestsError> {
    #[derive(Deserialize)]
    struct Kustomization {
        #[serde(default)]
        resources: Vec<String>,
    }
    let base = deploy_dir().join("base");
    let path = base.join("kustomization.yaml");
    let text = read(&path)?;
    let kustomization: Kustomization =
        serde_yaml_ng::from_str(&text).map_err(|e| ManifestsError::Malformed {
            origin: "base/kustomization.yaml".to_string(),
            index: 0,
            message: e.to_string(),
        })?;
    let mut documents = Vec::new();
    for resource in &kustomization.resources {
        let file = base.join(resource);
        let origin = format!("base/{resource}");
        if !file.is_file() {
            return Err(ManifestsError::Malformed {
                origin: "base/kustomization.yaml".to_string(),
                index: 0,
                message: format!("resource {resource:?} is not a file of the base"),
            });
        }
        documents.extend(Manifests::parse(origin, &read(&file)?)?.documents);
    }
    Ok(Manifests {
        origin: "base (resource files as written)".to_string(),
        documents,
    })
}

/// One Kubernetes object of a manifest, as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct Document {
    origin: String,
    value: Value,
}

impl Document {
    /// Where the document came from: a kustomization (`overlays/standalone`)
    /// or a file (`base/deployment.yaml`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The whole document.
    pub fn value(&self) -> &Value {
        &self.value
    }

    /// `apiVersion`.
    pub fn api_version(&self) -> &str {
        self.value["apiVersion"].as_str().unwrap_or_default()
    }

    /// `kind`.
    pub fn kind(&self) -> &str {
        self.value["kind"].as_str().unwrap_or_default()
    }

    /// `metadata.name`.
    pub fn name(&self) -> &str {
        self.value["metadata"]["name"].as_str().unwrap_or_default()
    }

    /// `metadata.namespace`, if set.
    pub fn namespace(&self) -> Option<&str> {
        self.value["metadata"]["namespace"].as_str()
    }

    /// Whether this is an object of Kubernetes type `K`.
    pub fn is<K: Resource>(&self) -> bool {
        self.api_version() == K::API_VERSION && self.kind() == K::KIND
    }

    /// The document as its Kubernetes type. Fields the type does not know are
    /// dropped here: [`strict::check`] reports them.
    pub fn typed<K: Resource + DeserializeOwned>(&self) -> Result<K, ManifestsError> {
        serde_path_to_error::deserialize(&self.value).map_err(|e| ManifestsError::Type {
            kind: self.kind().to_string(),
            name: self.name().to_string(),
            origin: self.origin.clone(),
            message: e.to_string(),
        })
    }
}

/// The documents of a rendered kustomization, or of manifest files.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifests {
    origin: String,
    documents: Vec<Document>,
}

impl Manifests {
    /// Parses a stream of YAML documents (`---`-separated); each must be a
    /// Kubernetes object with `apiVersion`, `kind` and `metadata.name`.
    /// Empty documents are skipped.
    ///
    /// ```
    /// use fluxhook_manifests::Manifests;
    ///
    /// let manifests = Manifests::parse(
    ///     "example",
    ///     "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: fluxhook-receiver\n",
    /// )?;
    /// assert_eq!(manifests.documents()[0].kind(), "ServiceAccount");
    /// # Ok::<(), fluxhook_manifests::ManifestsError>(())
    /// ```
    pub fn parse(origin: impl Into<String>, yaml: &str) -> Result<Self, ManifestsError> {
        let origin = origin.into();
        let mut documents = Vec::new();
        for (index, document) in serde_yaml_ng::Deserializer::from_str(yaml).enumerate() {
            let malformed = |message: String| ManifestsError::Malformed {
                origin: origin.clone(),
                index,
                message,
            };
            let value = Value::deserialize(document).map_err(|e| malformed(e.to_string()))?;
            if value.is_null() {
                continue;
            }
            for (field, present) in [
                ("apiVersion", value["apiVersion"].is_string()),
                ("kind", value["kind"].is_string()),
                ("metadata.name", value["metadata"]["name"].is_string()),
            ] {
                if !present {
                    return Err(malformed(format!("no {field}: not a Kubernetes object")));
                }
            }
            documents.push(Document {
                origin: origin.clone(),
                value,
            });
        }
        Ok(Self { origin, documents })
    }

    /// Where the documents came from.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every document, in kustomize's output order.
    pub fn documents(&self) -> &[Document] {
        &self.documents
    }

    /// The document of this kind and name, if any.
    pub fn find(&self, kind: &str, name: &str) -> Option<&Document> {
        self.documents
            .iter()
            .find(|d| d.kind() == kind && d.name() == name)
    }

    /// Every object of type `K`.
    pub fn objects<K: Resource + DeserializeOwned>(&self) -> Result<Vec<K>, ManifestsError> {
        self.documents
            .iter()
            .filter(|d| d.is::<K>())
            .map(Document::typed)
            .collect()
    }

    /// The object of type `K` named `name`.
    pub fn object<K: Resource + DeserializeOwned>(&self, name: &str) -> Result<K, ManifestsError> {
        self.documents
            .iter()
            .find(|d| d.is::<K>() && d.name() == name)
            .ok_or_else(|| ManifestsError::NotFound {
                kind: K::KIND.to_string(),
                name: name.to_string(),
                origin: self.origin.clone(),
            })?
            .typed()
    }
}

/// `kubectl kustomize dir`.
fn kustomize(dir: &Path) -> Result<String, ManifestsError> {
    let program = std::env::var(KUBECTL_ENV).unwrap_or_else(|_| "kubectl".to_string());
    let output = match Command::new(&program).arg("kustomize").arg(dir).output() {
        Ok(output) => output,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            return Err(ManifestsError::KubectlMissing { program });
        }
        Err(source) => {
            return Err(ManifestsError::Io {
                what: format!("run {program}"),
                source,
            });
        }
    };
    if !output.status.success() {
        return Err(ManifestsError::Kustomize {
            program,
            dir: dir.to_path_buf(),
            status: output.status.to_string(),
            stderr: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    String::from_utf8(output.stdout).map_err(|e| ManifestsError::Malformed {
        origin: dir.display().to_string(),
        index: 0,
        message: format!("kubectl's output is not UTF-8: {e}"),
    })
}

fn read(path: &Path) -> Result<String, ManifestsError> {
    std::fs::read_to_string(path).map_err(io(format!("read {}", path.display())))
}

fn canonical(path: &Path) -> Result<PathBuf, ManifestsError> {
    path.canonicalize()
        .map_err(io(format!("resolve {}", path.display())))
}

/// The path from folder `from` to `to`, both absolute and canonical.
fn relative(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<PathComponent> = from.components().collect();
    let to: Vec<PathComponent> = to.components().collect();
    let common = from.iter().zip(&to).take_while(|(a, b)| a == b).count();
    let mut path = PathBuf::new();
    for _ in common..from.len() {
        path.push("..");
    }
    for part in &to[common..] {
        path.push(part);
    }
    path
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ManifestsError {
    let what = what.into();
    move |source| ManifestsError::Io { what, source }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn relative_paths_climb_to_the_common_folder() {
        assert_eq!(
            relative(Path::new("/tmp/abc"), Path::new("/work/deploy/base")),
            PathBuf::from("../../work/deploy/base")
        );
        assert_eq!(
            relative(Path::new("/work/x"), Path::new("/work/x/y")),
            PathBuf::from("y")
        );
    }

    #[test]
    fn documents_must_be_kubernetes_objects() {
        let error = Manifests::parse("test", "apiVersion: v1\nkind: Service\n").unwrap_err();
        assert!(error.to_string().contains("no metadata.name"), "{error}");
        let error = Manifests::parse("test", "kind: [").unwrap_err();
        assert!(
            error.to_string().starts_with("test, document 0:"),
            "{error}"
        );
        let empty = Manifests::parse("test", "---\n---\n").unwrap();
        assert!(empty.documents().is_empty());
    }

    #[test]
    fn a_missing_object_is_named() {
        let manifests = Manifests::parse(
            "test",
            "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: a\n",
        )
        .unwrap();
        let error = manifests
            .object::<k8s_openapi::api::core::v1::ServiceAccount>("b")
            .unwrap_err();
        assert_eq!(error.to_string(), "no ServiceAccount named \"b\" in test");
    }
}
