//! Reading manifests (YAML, possibly multi-document, or JSON) to seed the server with.

use std::path::{Path, PathBuf};

use serde::Deserialize as _;
use serde_json::Value;

use crate::error::ApiError;

/// Why seeding from manifests failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    /// A file or directory could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The path that failed.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file is neither YAML nor JSON.
    #[error("{path} is not valid YAML or JSON: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        message: String,
    },
    /// The server refused a manifest.
    #[error("{path}: {source}")]
    Refused {
        /// The file holding the manifest.
        path: PathBuf,
        /// The server's answer.
        source: ApiError,
    },
}

/// The objects in a YAML or JSON text: every non-empty document, with `kind: *List` documents
/// expanded to their items.
pub(crate) fn parse_manifests(text: &str) -> Result<Vec<Value>, String> {
    let mut objects = Vec::new();
    for document in serde_yaml_ng::Deserializer::from_str(text) {
        let value = Value::deserialize(document).map_err(|error| error.to_string())?;
        match value {
            Value::Null => {}
            Value::Object(ref map)
                if map
                    .get("kind")
                    .and_then(Value::as_str)
                    .is_some_and(|kind| kind.ends_with("List"))
                    && map.get("items").is_some_and(Value::is_array) =>
            {
                if let Some(Value::Array(items)) = map.get("items") {
                    objects.extend(items.iter().filter(|item| !item.is_null()).cloned());
                }
            }
            Value::Object(_) => objects.push(value),
            other => return Err(format!("a manifest must be an object, found {other}")),
        }
    }
    Ok(objects)
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|extension| extension.to_str())
        .is_some_and(|extension| matches!(extension, "yaml" | "yml" | "json"))
}

/// The manifests in a file, or in every `.yaml`, `.yml` and `.json` file under a directory
/// (recursively, in path order), each with the file it came from.
pub(crate) fn read_manifests(path: &Path) -> Result<Vec<(PathBuf, Value)>, SeedError> {
    let read_error = |source| SeedError::Read {
        path: path.to_owned(),
        source,
    };
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(read_error)?
            .map(|entry| entry.map(|entry| entry.path()))
            .collect::<Result<_, _>>()
            .map_err(read_error)?;
        entries.sort();
        let mut manifests = Vec::new();
        for entry in entries {
            if entry.is_dir() || is_manifest(&entry) {
                manifests.extend(read_manifests(&entry)?);
            }
        }
        return Ok(manifests);
    }
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let objects = parse_manifests(&text).map_err(|message| SeedError::Parse {
        path: path.to_owned(),
        message,
    })?;
    Ok(objects
        .into_iter()
        .map(|object| (path.to_owned(), object))
        .collect())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn multi_document_yaml_and_lists() {
        let text = "
apiVersion: v1
kind: Namespace
metadata: {name: flux-system}
---
---
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Secret, metadata: {name: a}}
- {apiVersion: v1, kind: Secret, metadata: {name: b}}
";
        let objects = parse_manifests(text).unwrap();
        let kinds: Vec<&str> = objects
            .iter()
            .map(|o| o["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Namespace", "Secret", "Secret"]);
    }

    #[test]
    fn json_is_yaml() {
        let objects = parse_manifests(r#"{"apiVersion": "v1", "kind": "Secret"}"#).unwrap();
        assert_eq!(objects.len(), 1);
    }

    #[test]
    fn scalars_and_broken_yaml_are_refused() {
        assert!(parse_manifests("just a string").is_err());
        assert!(parse_manifests("a: [unclosed").is_err());
    }
}
