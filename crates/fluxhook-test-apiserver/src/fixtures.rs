//! The objects fluxhook's tests seed most, built once: a Namespace, a Flux GitRepository and
//! a Receiver's token Secret, each with the fields the real API requires (the GitRepository
//! as `source.toolkit.fluxcd.io/v1` of source-controller v1.x requires `spec.url` and
//! `spec.interval`).
//!
//! ```
//! use fluxhook_test_apiserver::{TestApiServer, fixtures};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let server = TestApiServer::start_flux(&["flux-system"]).await?;
//! server.create(fixtures::git_repository("flux-system", "app", json!({"tier": "web"})))?;
//! let stored = server.get(fixtures::GIT_REPOSITORY_API_VERSION, "GitRepository", "flux-system", "app")?;
//! assert_eq!(stored["metadata"]["labels"]["tier"], "web");
//! # Ok(())
//! # }
//! ```

use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::{Value, json};

/// The GitRepository API version Flux serves for storage.
pub const GIT_REPOSITORY_API_VERSION: &str = "source.toolkit.fluxcd.io/v1";

/// The URL [`git_repository`] gives its GitRepositories; nothing clones it.
pub const GIT_REPOSITORY_URL: &str = "https://example.com/repo.git";

/// The Namespace `name`.
pub fn namespace(name: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
}

/// A GitRepository `namespace/name` of [`GIT_REPOSITORY_URL`], reconciled every minute, with
/// `labels` (`{}` for none). Set `spec.url` on the result where a test reads it.
pub fn git_repository(namespace: &str, name: &str, labels: Value) -> Value {
    json!({
        "apiVersion": GIT_REPOSITORY_API_VERSION,
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"url": GIT_REPOSITORY_URL, "interval": "1m"},
    })
}

/// An Opaque Secret `namespace/name` holding a Receiver's `token` (base64, as the API
/// stores `data`).
pub fn token_secret(namespace: &str, name: &str, token: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace},
        "type": "Opaque",
        "data": {"token": base64::engine::general_purpose::STANDARD.encode(token)},
    })
}

/// The Receiver API version Flux serves for storage.
pub const RECEIVER_API_VERSION: &str = "notification.toolkit.fluxcd.io/v1";

/// A `github` Receiver `namespace/name` for `ping` and `push` events, its token in the Secret
/// `webhook-token`, reconciling `resources` (its `spec.resources`).
pub fn github_receiver(namespace: &str, name: &str, resources: Value) -> Value {
    json!({
        "apiVersion": RECEIVER_API_VERSION,
        "kind": "Receiver",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "type": "github",
            "events": ["ping", "push"],
            "secretRef": {"name": "webhook-token"},
            "resources": resources,
        },
    })
}

/// `(verb, group/resource)` for every combination one `rbac.authorization.k8s.io/v1`
/// PolicyRule grants (`""/secrets` for the core group); nothing for a field that is
/// missing or not a list of strings.
///
/// ```
/// use fluxhook_test_apiserver::fixtures::rule_grants;
/// use serde_json::json;
///
/// let rule = json!({"apiGroups": [""], "resources": ["secrets"], "verbs": ["get", "watch"]});
/// let grants: Vec<_> = rule_grants(&rule).into_iter().collect();
/// assert_eq!(grants, [("get".into(), "/secrets".into()), ("watch".into(), "/secrets".into())]);
/// ```
pub fn rule_grants(rule: &Value) -> BTreeSet<(String, String)> {
    let (groups, resources, verbs) = rule_fields(rule);
    let mut grants = BTreeSet::new();
    for verb in &verbs {
        for group in &groups {
            for resource in &resources {
                grants.insert((verb.clone(), format!("{group}/{resource}")));
            }
        }
    }
    grants
}

/// Takes `verb` on `group/resource` away from every Role and ClusterRole among `objects`,
/// and from nothing else: a rule granting it is split into one for its other resources
/// (every verb) and one for this resource (its other verbs). Whether any rule granted it.
pub fn revoke(objects: &mut [Value], verb: &str, group: &str, resource: &str) -> bool {
    let mut revoked = false;
    for role in objects
        .iter_mut()
        .filter(|object| matches!(object["kind"].as_str(), Some("Role" | "ClusterRole")))
    {
        let mut rules = Vec::new();
        for rule in role["rules"].as_array().cloned().unwrap_or_default() {
            let (groups, resources, verbs) = rule_fields(&rule);
            let grants = groups.iter().any(|g| g == group)
                && resources.iter().any(|r| r == resource)
                && verbs.iter().any(|v| v == verb);
            if !grants {
                rules.push(rule);
                continue;
            }
            revoked = true;
            let others: Vec<&String> = resources.iter().filter(|r| *r != resource).collect();
            if !others.is_empty() {
                rules.push(json!({"apiGroups": groups, "resources": others, "verbs": verbs}));
            }
            let rest: Vec<&String> = verbs.iter().filter(|v| *v != verb).collect();
            if !rest.is_empty() {
                rules.push(json!({"apiGroups": groups, "resources": [resource], "verbs": rest}));
            }
        }
        role["rules"] = json!(rules);
    }
    revoked
}

/// A rule's `apiGroups`, `resources` and `verbs`.
fn rule_fields(rule: &Value) -> (Vec<String>, Vec<String>, Vec<String>) {
    let strings = |field: &str| -> Vec<String> {
        rule[field]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    };
    (strings("apiGroups"), strings("resources"), strings("verbs"))
}
