//! Test support: the shared corpus of real webhook deliveries and Flux's CRDs.
//!
//! fluxhook is checked against data it must not copy: real payloads published
//! by public projects (`../shared/corpus`) and the CustomResourceDefinitions
//! Flux ships (`../shared/flux-crds`). This crate finds them, loads
//! `index.json` into typed [`Entry`] values with the headers each host sends,
//! and reads bodies and CRDs in place. Its own tests are the conformance
//! suite (`cargo xtask conformance`); benchmarks use it to measure the real
//! payloads.
//!
//! Benchmarks over the corpus name each input by [`Entry::bench_id`] (the
//! criterion function id, e.g. `github/push.json`) and measure plain
//! HMAC-SHA256 over the same bytes in the group [`BASELINE_GROUP`];
//! `cargo xtask bench` reports every median as a ratio to that baseline.
//!
//! Both folders are looked up from the environment first
//! (`FLUXHOOK_CORPUS`, `FLUXHOOK_FLUX_CRDS`), then beside the workspace. A
//! missing folder is an error that says where it looked and how to fix it.
//!
//! ```no_run
//! use fluxhook_corpus::Corpus;
//!
//! let corpus = Corpus::locate()?;
//! for entry in corpus.entries() {
//!     let body = corpus.read_body(entry)?;
//!     println!("{} ({}): {} bytes", entry.file, entry.provider, body.len());
//! }
//! # Ok::<(), fluxhook_corpus::CorpusError>(())
//! ```

use std::path::{Path, PathBuf};

use fluxhook_signature::Policy;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

/// Environment variable naming the corpus folder (the one holding `index.json`).
pub const CORPUS_ENV: &str = "FLUXHOOK_CORPUS";
/// Environment variable naming the folder of Flux CRDs.
pub const FLUX_CRDS_ENV: &str = "FLUXHOOK_FLUX_CRDS";

/// The criterion group of the baseline: plain HMAC-SHA256 over a payload's bytes.
pub const BASELINE_GROUP: &str = "baseline_hmac_sha256";

/// Why the shared data could not be used.
#[derive(Debug, thiserror::Error)]
pub enum CorpusError {
    /// The folder does not exist where it was looked for.
    #[error(
        "{what} not found at {path}: put the project's shared/ folder beside the repository \
         (../shared) or set {env} to its location"
    )]
    Missing {
        /// What was looked for.
        what: &'static str,
        /// Where it was looked for.
        path: PathBuf,
        /// The variable that overrides the location.
        env: &'static str,
    },
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A file is not what the corpus promises.
    #[error("{path} is malformed: {message}")]
    Malformed {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

/// The facts a parser must extract from a push delivery, as `index.json` lists them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expected {
    /// The full ref pushed, e.g. `refs/heads/main`.
    #[serde(rename = "ref")]
    pub git_ref: String,
    /// The new head commit (all zeros when the ref was deleted).
    pub commit: String,
    /// The repository as the host names it: `owner/name`, with subgroups for GitLab.
    pub repository: String,
    /// Clone and web URLs the payload carries: http(s) clone, ssh clone, web.
    #[serde(default)]
    pub repository_urls: Vec<String>,
}

/// One delivery of the corpus.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path of the body relative to the corpus folder.
    pub file: String,
    /// The host that sent it, in fluxhook-payload's naming (`github`, `bitbucket-server`, ...).
    pub provider: String,
    /// Where the payload was published.
    pub source: String,
    /// The request headers the host sends with it (its event header).
    pub headers: HeaderMap,
    /// For pushes, the facts a parser must extract.
    pub expected: Option<Expected>,
    /// For hosts that name the event in the body (Azure DevOps), that name.
    pub body_event_type: Option<String>,
}

impl Entry {
    /// The signature policies of the Flux receiver types that take this
    /// host's deliveries, each to be signed as the host signs: Gitea's under
    /// `github` (Flux takes Gitea as github) and its native header; none for
    /// Azure DevOps, which signs nothing and goes to a `generic` receiver.
    pub fn signature_policies(&self) -> &'static [Policy] {
        match self.provider.as_str() {
            "github" => &[Policy::HubSignature],
            "gitea" => &[Policy::HubSignature, Policy::GiteaSignature],
            "gogs" => &[Policy::GogsSignature],
            "gitlab" => &[Policy::GitlabToken],
            "bitbucket-cloud" | "bitbucket-server" => &[Policy::HubSignatureSha256],
            _ => &[],
        }
    }

    /// The name benchmarks give this input: the file below `payloads/`,
    /// e.g. `github/push.json`.
    pub fn bench_id(&self) -> &str {
        self.file.strip_prefix("payloads/").unwrap_or(&self.file)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIndex {
    #[allow(dead_code)]
    about: String,
    entries: Vec<RawEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    file: String,
    provider: String,
    source: String,
    headers: std::collections::BTreeMap<String, String>,
    expected: Option<Expected>,
    body_event_type: Option<String>,
}

/// The corpus of real deliveries, loaded from its `index.json`.
#[derive(Debug, Clone)]
pub struct Corpus {
    root: PathBuf,
    entries: Vec<Entry>,
}

impl Corpus {
    /// Finds the corpus (`$FLUXHOOK_CORPUS`, else `../shared/corpus` beside the
    /// workspace) and loads its index.
    pub fn locate() -> Result<Self, CorpusError> {
        Self::open(locate_dir(CORPUS_ENV, "corpus")?)
    }

    /// Loads the corpus whose `index.json` is in `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Self, CorpusError> {
        let root = root.into();
        let index_path = root.join("index.json");
        let text = read(&index_path)?;
        let raw: RawIndex = serde_json::from_slice(&text).map_err(|e| CorpusError::Malformed {
            path: index_path.clone(),
            message: e.to_string(),
        })?;
        let entries = raw
            .entries
            .into_iter()
            .map(|e| entry_from_raw(e, &index_path))
            .collect::<Result<_, _>>()?;
        Ok(Self { root, entries })
    }

    /// The folder holding `index.json`.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Every delivery the index lists, in its order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Reads the body of a delivery.
    pub fn read_body(&self, entry: &Entry) -> Result<Vec<u8>, CorpusError> {
        read(&self.root.join(&entry.file))
    }

    /// Reads a reply of a host's hooks API, e.g. `("github", "hooks.json")`.
    pub fn read_host_api(&self, host: &str, file: &str) -> Result<Vec<u8>, CorpusError> {
        read(&self.root.join("host-api").join(host).join(file))
    }
}

fn entry_from_raw(raw: RawEntry, index_path: &Path) -> Result<Entry, CorpusError> {
    let malformed = |message: String| CorpusError::Malformed {
        path: index_path.to_path_buf(),
        message: format!("entry {}: {message}", raw.file),
    };
    let mut headers = HeaderMap::new();
    for (name, value) in &raw.headers {
        let name = HeaderName::try_from(name.as_str())
            .map_err(|e| malformed(format!("header name {name:?}: {e}")))?;
        let value = HeaderValue::try_from(value.as_str())
            .map_err(|e| malformed(format!("header {name}: {e}")))?;
        headers.insert(name, value);
    }
    Ok(Entry {
        file: raw.file,
        provider: raw.provider,
        source: raw.source,
        headers,
        expected: raw.expected,
        body_event_type: raw.body_event_type,
    })
}

/// Flux's CustomResourceDefinitions, as shipped by Flux's controllers.
#[derive(Debug, Clone)]
pub struct FluxCrds {
    root: PathBuf,
}

impl FluxCrds {
    /// Finds the CRDs (`$FLUXHOOK_FLUX_CRDS`, else `../shared/flux-crds` beside the workspace).
    pub fn locate() -> Result<Self, CorpusError> {
        Ok(Self {
            root: locate_dir(FLUX_CRDS_ENV, "flux-crds")?,
        })
    }

    /// Every CRD in the folder, parsed from YAML into JSON values, sorted by file name.
    pub fn all(&self) -> Result<Vec<(String, serde_json::Value)>, CorpusError> {
        let listing = std::fs::read_dir(&self.root).map_err(|source| CorpusError::Read {
            path: self.root.clone(),
            source,
        })?;
        let mut files: Vec<PathBuf> = listing
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|ext| ext == "yaml"))
            .collect();
        files.sort();
        files
            .into_iter()
            .map(|path| {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                Ok((name.clone(), self.read(&name)?))
            })
            .collect()
    }

    /// One CRD by file name, e.g. `receivers.yaml`, as a JSON value.
    pub fn read(&self, file: &str) -> Result<serde_json::Value, CorpusError> {
        let path = self.root.join(file);
        let text = read(&path)?;
        serde_yaml_ng::from_slice(&text).map_err(|e| CorpusError::Malformed {
            path,
            message: e.to_string(),
        })
    }
}

fn locate_dir(env: &'static str, name: &'static str) -> Result<PathBuf, CorpusError> {
    let path = match std::env::var_os(env) {
        Some(dir) => PathBuf::from(dir),
        // <parent>/<workspace>/crates/fluxhook-corpus: shared/ lives in <parent>.
        None => Path::new(env!("CARGO_MANIFEST_DIR"))
            .ancestors()
            .nth(3)
            .unwrap_or(Path::new("/"))
            .join("shared")
            .join(name),
    };
    if path.is_dir() {
        Ok(path)
    } else {
        Err(CorpusError::Missing {
            what: name,
            path,
            env,
        })
    }
}

fn read(path: &Path) -> Result<Vec<u8>, CorpusError> {
    std::fs::read(path).map_err(|source| CorpusError::Read {
        path: path.to_path_buf(),
        source,
    })
}
