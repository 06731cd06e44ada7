//! The YAML examples of docs/deploy.md hold: each Kubernetes object of a kind
//! the strict check knows passes it, and the kinds it does not know are the
//! ones listed here.

#![allow(clippy::unwrap_used, clippy::panic)]

use fluxhook_manifests::{Manifests, deploy_dir, strict};
use serde::Deserialize;
use serde_json::Value;

/// Examples of kinds without a schema in fluxhook-manifests.
const NOT_CHECKED: &[(&str, &str)] = &[
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
    ("kustomize.config.k8s.io/v1beta1", "Kustomization"),
];

/// The ```yaml blocks of a Markdown text.
fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

#[test]
fn the_yaml_examples_of_the_deploy_guide_are_valid_objects() {
    let path = deploy_dir().parent().unwrap().join("docs/deploy.md");
    let markdown = std::fs::read_to_string(&path).unwrap();
    let mut checked = 0;
    let mut failures = Vec::new();
    for block in yaml_blocks(&markdown) {
        for document in serde_yaml_ng::Deserializer::from_str(&block) {
            let value = Value::deserialize(document).unwrap();
            let key = (
                value["apiVersion"].as_str().unwrap_or_default(),
                value["kind"].as_str().unwrap_or_default(),
            );
            if NOT_CHECKED.contains(&key) {
                continue;
            }
            let manifests =
                Manifests::parse("docs/deploy.md", &serde_yaml_ng::to_string(&value).unwrap())
                    .unwrap_or_else(|e| panic!("{e}"));
            for document in manifests.documents() {
                checked += 1;
                if let Err(error) = strict::check(document) {
                    failures.push(error.to_string());
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked >= 1, "no example checked");
}
