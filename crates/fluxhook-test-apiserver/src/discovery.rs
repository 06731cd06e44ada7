//! Discovery documents: `/version`, `/api`, `/apis`, the per-group-version resource lists and
//! aggregated discovery (`apidiscovery.k8s.io/v2`).

use std::cmp::Reverse;
use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::resource::ResourceType;

/// The Kubernetes version the server claims to be.
pub(crate) fn version() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "0000000000000000000000000000000000000000",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T00:00:00Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];
const STATUS_VERBS: [&str; 3] = ["get", "patch", "update"];

/// Kubernetes' version priority: GA before beta before alpha, higher numbers first.
fn version_priority(version: &str) -> (u8, Reverse<u64>, Reverse<u64>, String) {
    let parse = || {
        let rest = version.strip_prefix('v')?;
        let digits = rest
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (major, rest) = rest.split_at(digits);
        let major = major.parse::<u64>().ok()?;
        if rest.is_empty() {
            return Some((0, major, 0));
        }
        let (stability, minor) = if let Some(minor) = rest.strip_prefix("beta") {
            (1, minor)
        } else {
            (2, rest.strip_prefix("alpha")?)
        };
        Some((stability, major, minor.parse::<u64>().ok()?))
    };
    match parse() {
        Some((stability, major, minor)) => {
            (stability, Reverse(major), Reverse(minor), String::new())
        }
        None => (3, Reverse(0), Reverse(0), version.to_owned()),
    }
}

/// Registered non-core groups, each with its versions in priority order.
fn groups<'a>(types: impl Iterator<Item = &'a ResourceType>) -> BTreeMap<String, Vec<String>> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for resource in types.filter(|resource| !resource.group.is_empty()) {
        let versions = groups.entry(resource.group.clone()).or_default();
        if !versions.contains(&resource.version) {
            versions.push(resource.version.clone());
        }
    }
    for versions in groups.values_mut() {
        versions.sort_by_key(|version| version_priority(version));
    }
    groups
}

fn group_json(group: &str, versions: &[String]) -> Value {
    let versions: Vec<Value> = versions
        .iter()
        .map(|version| json!({"groupVersion": format!("{group}/{version}"), "version": version}))
        .collect();
    json!({
        "name": group,
        "preferredVersion": versions.first().cloned().unwrap_or(Value::Null),
        "versions": versions,
    })
}

/// `GET /api`: the core group's versions.
pub(crate) fn core_versions(server_address: &str) -> Value {
    json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}],
    })
}

/// `GET /apis`: every non-core group.
pub(crate) fn group_list<'a>(types: impl Iterator<Item = &'a ResourceType>) -> Value {
    let groups: Vec<Value> = groups(types)
        .iter()
        .map(|(group, versions)| group_json(group, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// `GET /apis/<group>`, or `None` for an unknown group.
pub(crate) fn group<'a>(
    types: impl Iterator<Item = &'a ResourceType>,
    group: &str,
) -> Option<Value> {
    let groups = groups(types);
    let versions = groups.get(group)?;
    let mut document = group_json(group, versions);
    document["kind"] = json!("APIGroup");
    document["apiVersion"] = json!("v1");
    Some(document)
}

/// `GET /api/v1` or `/apis/<group>/<version>`, or `None` when nothing is served there.
pub(crate) fn resource_list<'a>(
    types: impl Iterator<Item = &'a ResourceType>,
    group: &str,
    version: &str,
) -> Option<Value> {
    let mut resources = Vec::new();
    for resource in types.filter(|resource| resource.group == group && resource.version == version)
    {
        resources.push(json!({
            "name": resource.plural,
            "singularName": resource.kind.to_lowercase(),
            "namespaced": resource.namespaced,
            "kind": resource.kind,
            "verbs": VERBS,
        }));
        if resource.status_subresource {
            resources.push(json!({
                "name": format!("{}/status", resource.plural),
                "singularName": "",
                "namespaced": resource.namespaced,
                "kind": resource.kind,
                "verbs": STATUS_VERBS,
            }));
        }
    }
    if resources.is_empty() {
        return None;
    }
    let group_version = if group.is_empty() {
        version.to_owned()
    } else {
        format!("{group}/{version}")
    };
    Some(json!({
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": group_version,
        "resources": resources,
    }))
}

/// The media type of aggregated discovery answers.
pub(crate) const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";

/// Whether an `Accept` header asks for aggregated discovery.
pub(crate) fn wants_aggregated(accept: &str) -> bool {
    accept.split(',').next().is_some_and(|first| {
        first.contains("as=APIGroupDiscoveryList") && first.contains("g=apidiscovery.k8s.io")
    })
}

/// Aggregated discovery for the core group (`core` true, answering `/api`) or every other
/// group (answering `/apis`).
pub(crate) fn aggregated<'a>(
    types: impl Iterator<Item = &'a ResourceType> + Clone,
    core: bool,
) -> Value {
    let mut names: Vec<(String, Vec<String>)> = if core {
        vec![(String::new(), vec!["v1".to_owned()])]
    } else {
        groups(types.clone()).into_iter().collect()
    };
    names.retain(|(_, versions)| !versions.is_empty());
    let items: Vec<Value> = names
        .iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|version| {
                    let resources: Vec<Value> = types
                        .clone()
                        .filter(|resource| resource.group == *group && resource.version == *version)
                        .map(|resource| {
                            let response_kind = json!({"group": group, "version": version, "kind": resource.kind});
                            let subresources: Vec<Value> = if resource.status_subresource {
                                vec![json!({"subresource": "status", "responseKind": response_kind, "verbs": STATUS_VERBS})]
                            } else {
                                Vec::new()
                            };
                            json!({
                                "resource": resource.plural,
                                "responseKind": response_kind,
                                "scope": if resource.namespaced { "Namespaced" } else { "Cluster" },
                                "singularResource": resource.kind.to_lowercase(),
                                "verbs": VERBS,
                                "subresources": subresources,
                            })
                        })
                        .collect();
                    json!({"version": version, "freshness": "Current", "resources": resources})
                })
                .collect();
            json!({"metadata": {"name": group}, "versions": versions})
        })
        .collect();
    json!({
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": items,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn versions_sort_as_kubernetes_prefers_them() {
        let mut versions = vec!["v1alpha1", "v1beta2", "v2", "v1", "v1beta1", "custom"];
        versions.sort_by_key(|version| version_priority(version));
        assert_eq!(
            versions,
            ["v2", "v1", "v1beta2", "v1beta1", "v1alpha1", "custom"]
        );
    }

    #[test]
    fn resource_lists_include_status_subresources() {
        let types = ResourceType::flux();
        let list = resource_list(types.iter(), "source.toolkit.fluxcd.io", "v1").unwrap();
        let names: Vec<&str> = list["resources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|resource| resource["name"].as_str().unwrap())
            .collect();
        assert!(names.contains(&"gitrepositories/status"));
        assert!(resource_list(types.iter(), "nope", "v1").is_none());
    }

    #[test]
    fn aggregated_accept_header_is_recognised() {
        assert!(wants_aggregated(
            "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
        ));
        assert!(!wants_aggregated("application/json"));
    }
}
