//! Authorization as kube-apiserver's RBAC authorizer does it, over the Roles, ClusterRoles,
//! RoleBindings and ClusterRoleBindings stored in the server.
//!
//! Sources (kubernetes/kubernetes, v1.33):
//! - `plugin/pkg/auth/authorizer/rbac/rbac.go`: a request is allowed by the first rule that
//!   allows it (`RuleAllows`), with the reason `RBAC: allowed by <binding>`; otherwise the
//!   errors met resolving roles become the denial's reason.
//! - `pkg/registry/rbac/validation/rule.go`: `VisitRulesFor` visits every ClusterRoleBinding,
//!   then the RoleBindings of the request's namespace; `appliesTo` matches User, Group and
//!   ServiceAccount subjects (a RoleBinding's ServiceAccount without a namespace is in the
//!   binding's); a RoleBinding may grant a Role of its namespace or a ClusterRole, then only
//!   in its namespace; the describers' wording.
//! - `pkg/apis/rbac/v1/evaluation_helpers.go`: `*` for verbs, groups, resources and URLs,
//!   `*/<subresource>`, `resource/subresource` joined, `resourceNames` (which a request
//!   without a name never matches), URLs ending in `*` as prefixes.
//! - `staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go`
//!   (`Forbidden`, `forbiddenMessage`) and `staging/src/k8s.io/apimachinery/pkg/api/errors/
//!   errors.go` (`NewForbidden`): the 403 `Status`.
//! - `plugin/pkg/auth/authorizer/rbac/bootstrappolicy/policy.go` and `cmd/kube-apiserver`'s
//!   privileged-group authorizer: `system:masters` may do anything; authenticated users may
//!   read discovery (`system:discovery`, `system:basic-user`), anyone `/version` and the
//!   health paths (`system:public-info-viewer`).
//! - `pkg/apis/rbac/validation/validation.go` and `pkg/apis/rbac/v1/defaults.go`: what the
//!   server accepts as a role or binding.
//!
//! The visiting order is made deterministic (ClusterRoleBindings by name, then RoleBindings
//! by name; an informer cache gives no order), so which rule is recorded as the one that
//! allowed a request does not change from run to run.
//!
//! Not modelled: aggregated ClusterRoles (`aggregationRule`; its rules are not filled in),
//! and the escalation checks on writing roles and bindings (the `escalate` and `bind`
//! verbs): tests write them as the administrator.

use std::fmt;

use serde_json::{Value, json};

use crate::error::ApiError;
use crate::identity::{AUTHENTICATED, MASTERS, UNAUTHENTICATED, User, service_account_user};
use crate::request_info::RequestInfo;
use crate::resource::ResourceType;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::store::Store;

/// The RBAC API group.
pub(crate) const GROUP: &str = "rbac.authorization.k8s.io";
const API_VERSION: &str = "rbac.authorization.k8s.io/v1";

/// How the server authorizes requests (kube-apiserver's `--authorization-mode`).
///
/// Requests are authenticated in both modes: a bearer token the server does not know is
/// 401 Unauthorized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthorizationMode {
    /// Every authenticated (or anonymous) request is allowed.
    #[default]
    AlwaysAllow,
    /// `system:masters` may do anything; anyone else only what the stored RBAC objects (and
    /// the bootstrap policy the server starts with) allow, else 403 Forbidden.
    Rbac,
}

/// A Role, ClusterRole, RoleBinding or ClusterRoleBinding, by kind, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PolicyObject {
    /// `Role`, `ClusterRole`, `RoleBinding` or `ClusterRoleBinding`.
    pub kind: String,
    /// The namespace of a Role or RoleBinding.
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl PolicyObject {
    fn new(kind: &str, namespace: Option<&str>, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }
}

impl fmt::Display for PolicyObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(namespace) => write!(f, "{} {namespace}/{}", self.kind, self.name),
            None => write!(f, "{} {}", self.kind, self.name),
        }
    }
}

/// The rule that allowed a request: rule number `index` (from 0) of `role`, granted by
/// `binding`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct AllowingRule {
    /// The RoleBinding or ClusterRoleBinding that granted the role.
    pub binding: PolicyObject,
    /// The Role or ClusterRole the rule belongs to.
    pub role: PolicyObject,
    /// The rule's position in the role's `rules`.
    pub index: usize,
}

/// How the server decided on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed: the server runs in [`AuthorizationMode::AlwaysAllow`].
    AlwaysAllow,
    /// Allowed: the user is in `system:masters`.
    PrivilegedGroup,
    /// Allowed by an RBAC rule.
    Allowed {
        /// The rule.
        rule: AllowingRule,
        /// The authorizer's reason, `RBAC: allowed by ClusterRoleBinding "..." of ...`.
        reason: String,
    },
    /// Denied (403 Forbidden).
    Denied {
        /// The authorizer's reason: empty, or the errors met resolving roles
        /// (`RBAC: clusterrole.rbac.authorization.k8s.io "x" not found`).
        reason: String,
    },
}

impl Decision {
    /// Whether the request was allowed.
    pub fn is_allowed(&self) -> bool {
        !matches!(self, Decision::Denied { .. })
    }

    /// The RBAC rule that allowed it, if one did.
    pub fn rule(&self) -> Option<&AllowingRule> {
        match self {
            Decision::Allowed { rule, .. } => Some(rule),
            _ => None,
        }
    }
}

/// The four RBAC kinds, as the server stores them.
pub(crate) fn resource_types() -> Vec<ResourceType> {
    vec![
        ResourceType::new(GROUP, "v1", "ClusterRole", "clusterroles")
            .cluster_scoped()
            .without_generation(),
        ResourceType::new(GROUP, "v1", "ClusterRoleBinding", "clusterrolebindings")
            .cluster_scoped()
            .without_generation(),
        ResourceType::new(GROUP, "v1", "Role", "roles").without_generation(),
        ResourceType::new(GROUP, "v1", "RoleBinding", "rolebindings").without_generation(),
    ]
}

fn strings(object: &Value, field: &str) -> Vec<String> {
    object
        .get(field)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

fn text<'a>(object: &'a Value, field: &str) -> &'a str {
    object
        .get(field)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// One entry of a role's `rules`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct PolicyRule {
    verbs: Vec<String>,
    api_groups: Vec<String>,
    resources: Vec<String>,
    resource_names: Vec<String>,
    non_resource_urls: Vec<String>,
}

impl PolicyRule {
    fn from_json(rule: &Value) -> Self {
        Self {
            verbs: strings(rule, "verbs"),
            api_groups: strings(rule, "apiGroups"),
            resources: strings(rule, "resources"),
            resource_names: strings(rule, "resourceNames"),
            non_resource_urls: strings(rule, "nonResourceURLs"),
        }
    }

    /// `RuleAllows`.
    fn allows(&self, info: &RequestInfo) -> bool {
        let verb = self.verbs.iter().any(|v| v == "*" || *v == info.verb);
        if !info.is_resource_request {
            return verb
                && self.non_resource_urls.iter().any(|url| {
                    url == "*"
                        || *url == info.path
                        || url.strip_suffix('*').is_some_and(|prefix| {
                            info.path.starts_with(prefix.trim_end_matches('*'))
                        })
                });
        }
        let combined = if info.subresource.is_empty() {
            info.resource.clone()
        } else {
            format!("{}/{}", info.resource, info.subresource)
        };
        verb && self
            .api_groups
            .iter()
            .any(|group| group == "*" || *group == info.api_group)
            && self.resources.iter().any(|resource| {
                resource == "*"
                    || *resource == combined
                    || (!info.subresource.is_empty()
                        && resource.strip_prefix("*/") == Some(info.subresource.as_str()))
            })
            && (self.resource_names.is_empty() || self.resource_names.contains(&info.name))
    }
}

fn rbac_type(store: &Store, kind: &str) -> Option<ResourceType> {
    store.type_of_kind(API_VERSION, kind).cloned()
}

/// The rules of the role a binding (in `namespace`, empty for a ClusterRoleBinding) refers
/// to, or the error the apiserver's listers give (`GetRoleReferenceRules`).
fn role_rules(
    store: &Store,
    role_ref: &Value,
    namespace: &str,
) -> Result<(PolicyObject, Vec<PolicyRule>), String> {
    let kind = text(role_ref, "kind");
    let name = text(role_ref, "name");
    let (role, lister_name) = match kind {
        "Role" => (PolicyObject::new("Role", Some(namespace), name), "role"),
        "ClusterRole" => (PolicyObject::new("ClusterRole", None, name), "clusterrole"),
        other => return Err(format!("unsupported role reference kind: {other:?}")),
    };
    let stored = rbac_type(store, kind)
        .and_then(|resource| store.get(&resource, namespace, name).ok())
        .ok_or_else(|| format!("{lister_name}.{GROUP} {name:?} not found"))?;
    let rules = stored
        .get("rules")
        .and_then(Value::as_array)
        .map(|rules| rules.iter().map(PolicyRule::from_json).collect())
        .unwrap_or_default();
    Ok((role, rules))
}

/// `appliesToUser`.
fn subject_applies(user: &User, subject: &Value, binding_namespace: &str) -> bool {
    let name = text(subject, "name");
    match text(subject, "kind") {
        "User" => user.name == name,
        "Group" => user.in_group(name),
        "ServiceAccount" => {
            let namespace = match text(subject, "namespace") {
                "" => binding_namespace,
                namespace => namespace,
            };
            !namespace.is_empty() && user.name == service_account_user(namespace, name)
        }
        _ => false,
    }
}

/// `describeSubject`.
fn describe_subject(subject: &Value, binding_namespace: &str) -> String {
    let name = text(subject, "name");
    match text(subject, "kind") {
        "ServiceAccount" => {
            let namespace = match text(subject, "namespace") {
                "" => binding_namespace,
                namespace => namespace,
            };
            format!("ServiceAccount {:?}", format!("{name}/{namespace}"))
        }
        kind => format!("{kind} {name:?}"),
    }
}

/// Decides on a request of `user` with attributes `info`.
pub(crate) fn authorize(store: &Store, user: &User, info: &RequestInfo) -> Decision {
    if user.in_group(MASTERS) {
        return Decision::PrivilegedGroup;
    }
    let mut errors = Vec::new();
    let mut scopes = vec![("ClusterRoleBinding", None)];
    if !info.namespace.is_empty() {
        scopes.push(("RoleBinding", Some(info.namespace.as_str())));
    }
    let (everything, every_field) = (LabelSelector::default(), FieldSelector::default());
    for (kind, namespace) in scopes {
        let Some(resource) = rbac_type(store, kind) else {
            continue;
        };
        for (_, binding) in store.select(&resource, namespace, &everything, &every_field) {
            let binding_namespace = namespace.unwrap_or_default();
            let subjects = binding
                .get("subjects")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let Some(subject) = subjects
                .iter()
                .find(|subject| subject_applies(user, subject, binding_namespace))
            else {
                continue;
            };
            let role_ref = binding.get("roleRef").unwrap_or(&Value::Null);
            let (role, rules) = match role_rules(store, role_ref, binding_namespace) {
                Ok(found) => found,
                Err(error) => {
                    errors.push(error);
                    continue;
                }
            };
            let Some(index) = rules.iter().position(|rule| rule.allows(info)) else {
                continue;
            };
            let binding_name = text(&binding["metadata"], "name");
            let described = match namespace {
                Some(namespace) => format!("{kind} {:?}", format!("{binding_name}/{namespace}")),
                None => format!("{kind} {binding_name:?}"),
            };
            let reason = format!(
                "RBAC: allowed by {described} of {} {:?} to {}",
                role.kind,
                role.name,
                describe_subject(subject, binding_namespace)
            );
            return Decision::Allowed {
                rule: AllowingRule {
                    binding: PolicyObject::new(kind, namespace, binding_name),
                    role,
                    index,
                },
                reason,
            };
        }
    }
    let reason = match errors.as_slice() {
        [] => String::new(),
        [one] => format!("RBAC: {one}"),
        many => format!("RBAC: [{}]", many.join(", ")),
    };
    Decision::Denied { reason }
}

/// The 403 Forbidden `Status` kube-apiserver answers a denied request with.
pub(crate) fn forbidden(user: &User, info: &RequestInfo, reason: &str) -> ApiError {
    let quoted = |text: &str| format!("{text:?}");
    let mut message = if info.is_resource_request {
        let mut resource = info.resource.clone();
        if !info.subresource.is_empty() {
            resource = format!("{resource}/{}", info.subresource);
        }
        let scope = if info.namespace.is_empty() {
            "at the cluster scope".to_owned()
        } else {
            format!("in the namespace {}", quoted(&info.namespace))
        };
        format!(
            "User {} cannot {} resource {} in API group {} {scope}",
            quoted(&user.name),
            info.verb,
            quoted(&resource),
            quoted(&info.api_group),
        )
    } else {
        format!(
            "User {} cannot {} path {}",
            quoted(&user.name),
            info.verb,
            quoted(&info.path)
        )
    };
    // Avoid emitting errors that look like valid HTML, as the apiserver does.
    message = message
        .replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;");
    if !reason.is_empty() {
        message = format!("{message}: {reason}");
    }
    let group_resource = if info.api_group.is_empty() {
        info.resource.clone()
    } else {
        format!("{}.{}", info.resource, info.api_group)
    };
    let message = match (group_resource.is_empty(), info.name.is_empty()) {
        (true, _) => format!("forbidden: {message}"),
        (false, true) => format!("{group_resource} is forbidden: {message}"),
        (false, false) => format!(
            "{group_resource} {} is forbidden: {message}",
            quoted(&info.name)
        ),
    };
    let mut details = serde_json::Map::new();
    for (field, value) in [
        ("name", &info.name),
        ("group", &info.api_group),
        ("kind", &info.resource),
    ] {
        if !value.is_empty() {
            details.insert(field.to_owned(), Value::String(value.clone()));
        }
    }
    ApiError::forbidden(message, Value::Object(details))
}

/// The bootstrap policy kube-apiserver creates, as far as fluxhook's tests meet it.
pub(crate) fn bootstrap_policy() -> Vec<Value> {
    let metadata = |name: &str| {
        json!({
            "name": name,
            "labels": {"kubernetes.io/bootstrapping": "rbac-defaults"},
            "annotations": {"rbac.authorization.kubernetes.io/autoupdate": "true"},
        })
    };
    let role = |name: &str, rules: Value| json!({"apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": metadata(name), "rules": rules});
    let binding = |name: &str, groups: &[&str]| {
        let subjects: Vec<Value> = groups
            .iter()
            .map(|group| json!({"apiGroup": GROUP, "kind": "Group", "name": group}))
            .collect();
        json!({
            "apiVersion": API_VERSION,
            "kind": "ClusterRoleBinding",
            "metadata": metadata(name),
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": name},
            "subjects": subjects,
        })
    };
    vec![
        role(
            "cluster-admin",
            json!([
                {"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]},
                {"nonResourceURLs": ["*"], "verbs": ["*"]},
            ]),
        ),
        role(
            "system:discovery",
            json!([{"nonResourceURLs": [
                "/api", "/api/*", "/apis", "/apis/*", "/healthz", "/livez", "/openapi",
                "/openapi/*", "/readyz", "/version", "/version/"
            ], "verbs": ["get"]}]),
        ),
        role(
            "system:basic-user",
            json!([
                {"apiGroups": ["authorization.k8s.io"], "resources": ["selfsubjectaccessreviews", "selfsubjectrulesreviews"], "verbs": ["create"]},
                {"apiGroups": ["authentication.k8s.io"], "resources": ["selfsubjectreviews"], "verbs": ["create"]},
            ]),
        ),
        role(
            "system:public-info-viewer",
            json!([{"nonResourceURLs": ["/healthz", "/livez", "/readyz", "/version", "/version/"], "verbs": ["get"]}]),
        ),
        binding("cluster-admin", &[MASTERS]),
        binding("system:discovery", &[AUTHENTICATED]),
        binding("system:basic-user", &[AUTHENTICATED]),
        binding(
            "system:public-info-viewer",
            &[AUTHENTICATED, UNAUTHENTICATED],
        ),
    ]
}

/// Defaults and validates a role or binding about to be stored (`old` on updates), as the
/// RBAC registry does; other kinds pass untouched.
pub(crate) fn admit(
    resource: &ResourceType,
    object: &mut Value,
    old: Option<&Value>,
) -> Result<(), ApiError> {
    if resource.group != GROUP {
        return Ok(());
    }
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let invalid = |(field, why): (String, String)| ApiError::invalid(resource, &name, &field, &why);
    match resource.kind.as_str() {
        "Role" | "ClusterRole" => {
            let namespaced = resource.kind == "Role";
            let rules = object
                .get("rules")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default();
            for (index, rule) in rules.iter().enumerate() {
                validate_rule(rule, namespaced, &format!("rules[{index}]")).map_err(invalid)?;
            }
        }
        "RoleBinding" | "ClusterRoleBinding" => {
            let namespaced = resource.kind == "RoleBinding";
            if let Some(Value::Array(subjects)) = object.get_mut("subjects") {
                for subject in subjects.iter_mut() {
                    default_subject(subject);
                }
            }
            validate_binding(object, namespaced).map_err(invalid)?;
            if let Some(old) = old
                && old.get("roleRef") != object.get("roleRef")
            {
                let role_ref = object.get("roleRef").cloned().unwrap_or(Value::Null);
                return Err(invalid((
                    "roleRef".to_owned(),
                    format!("Invalid value: {role_ref}: cannot change roleRef"),
                )));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Why `name` is no valid path segment (`IsValidPathSegmentName` of
/// `k8s.io/apimachinery/pkg/api/validation/path/name.go`), if it is not.
pub(crate) fn invalid_name(name: &str) -> Option<String> {
    if name == "." || name == ".." {
        return Some(format!("may not be '{name}'"));
    }
    ["/", "%"]
        .into_iter()
        .find(|illegal| name.contains(illegal))
        .map(|illegal| format!("may not contain '{illegal}'"))
}

type FieldError = (String, String);

fn required(field: String, detail: &str) -> FieldError {
    let why = if detail.is_empty() {
        "Required value".to_owned()
    } else {
        format!("Required value: {detail}")
    };
    (field, why)
}

fn not_supported(field: String, value: &str, supported: &[&str]) -> FieldError {
    let supported: Vec<String> = supported.iter().map(|s| format!("{s:?}")).collect();
    (
        field,
        format!(
            "Unsupported value: {value:?}: supported values: {}",
            supported.join(", ")
        ),
    )
}

/// `validatePolicyRule`.
fn validate_rule(rule: &Value, namespaced: bool, path: &str) -> Result<(), FieldError> {
    let rule = PolicyRule::from_json(rule);
    if rule.verbs.is_empty() {
        return Err(required(
            format!("{path}.verbs"),
            "verbs must contain at least one value",
        ));
    }
    if !rule.non_resource_urls.is_empty() {
        let urls = format!("{:?}", rule.non_resource_urls);
        if namespaced {
            return Err((
                format!("{path}.nonResourceURLs"),
                format!(
                    "Invalid value: {urls}: namespaced rules cannot apply to non-resource URLs"
                ),
            ));
        }
        if !rule.api_groups.is_empty()
            || !rule.resources.is_empty()
            || !rule.resource_names.is_empty()
        {
            return Err((
                format!("{path}.nonResourceURLs"),
                format!(
                    "Invalid value: {urls}: rules cannot apply to both regular resources and non-resource URLs"
                ),
            ));
        }
        return Ok(());
    }
    if rule.api_groups.is_empty() {
        return Err(required(
            format!("{path}.apiGroups"),
            "resource rules must supply at least one api group",
        ));
    }
    if rule.resources.is_empty() {
        return Err(required(
            format!("{path}.resources"),
            "resource rules must supply at least one resource",
        ));
    }
    if !rule.resource_names.is_empty() && rule.resources.len() > 1 {
        return Err(required(
            format!("{path}.resourceNames"),
            "resource names cannot apply to multiple resources",
        ));
    }
    Ok(())
}

/// `SetDefaults_Subject`: Users and Groups are in the RBAC group unless said otherwise.
fn default_subject(subject: &mut Value) {
    let Some(map) = subject.as_object_mut() else {
        return;
    };
    let kind = map.get("kind").and_then(Value::as_str).unwrap_or_default();
    let group_unset = map
        .get("apiGroup")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty);
    if group_unset && matches!(kind, "User" | "Group") {
        map.insert("apiGroup".to_owned(), Value::String(GROUP.to_owned()));
    }
}

/// `ValidateRoleBinding` / `ValidateClusterRoleBinding`.
fn validate_binding(binding: &Value, namespaced: bool) -> Result<(), FieldError> {
    let role_ref = binding.get("roleRef").unwrap_or(&Value::Null);
    let api_group = text(role_ref, "apiGroup");
    if api_group != GROUP {
        return Err(not_supported(
            "roleRef.apiGroup".to_owned(),
            api_group,
            &[GROUP],
        ));
    }
    let kind = text(role_ref, "kind");
    let kinds: &[&str] = if namespaced {
        &["Role", "ClusterRole"]
    } else {
        &["ClusterRole"]
    };
    if !kinds.contains(&kind) {
        return Err(not_supported("roleRef.kind".to_owned(), kind, kinds));
    }
    if text(role_ref, "name").is_empty() {
        return Err(required("roleRef.name".to_owned(), ""));
    }
    let subjects = binding
        .get("subjects")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    for (index, subject) in subjects.iter().enumerate() {
        let path = format!("subjects[{index}]");
        let name = text(subject, "name");
        if name.is_empty() {
            return Err(required(format!("{path}.name"), ""));
        }
        let api_group = text(subject, "apiGroup");
        match text(subject, "kind") {
            "ServiceAccount" => {
                if !api_group.is_empty() {
                    return Err(not_supported(format!("{path}.apiGroup"), api_group, &[""]));
                }
                if !namespaced && text(subject, "namespace").is_empty() {
                    return Err(required(format!("{path}.namespace"), ""));
                }
            }
            "User" | "Group" => {
                if api_group != GROUP {
                    return Err(not_supported(
                        format!("{path}.apiGroup"),
                        api_group,
                        &[GROUP],
                    ));
                }
            }
            other => {
                return Err(not_supported(
                    format!("{path}.kind"),
                    other,
                    &["ServiceAccount", "User", "Group"],
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use http::Method;
    use tokio::sync::watch;

    use super::*;
    use crate::request_info::request_info;

    fn store_with(objects: Value) -> Store {
        let mut store = Store::new(100, watch::channel(0).0);
        for resource in resource_types() {
            store.register(resource);
        }
        store
            .seed(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}}), false)
            .unwrap();
        for object in bootstrap_policy()
            .into_iter()
            .chain(objects.as_array().cloned().unwrap_or_default())
        {
            store.seed(object, false).unwrap();
        }
        store
    }

    fn service_account(namespace: &str, name: &str) -> User {
        User {
            name: service_account_user(namespace, name),
            groups: vec![
                "system:serviceaccounts".to_owned(),
                format!("system:serviceaccounts:{namespace}"),
                AUTHENTICATED.to_owned(),
            ],
        }
    }

    fn decide(store: &Store, user: &User, method: Method, path: &str) -> Decision {
        let (path, query) = path.split_once('?').unwrap_or((path, ""));
        authorize(store, user, &request_info(&method, path, query))
    }

    fn rule_of(decision: &Decision) -> Option<(String, usize)> {
        decision
            .rule()
            .map(|rule| (rule.role.to_string(), rule.index))
    }

    fn receiver_policy() -> Value {
        json!([
            {
                "apiVersion": API_VERSION, "kind": "ClusterRole",
                "metadata": {"name": "receiver"},
                "rules": [
                    {"apiGroups": ["notification.toolkit.fluxcd.io"], "resources": ["receivers"], "verbs": ["get", "list", "watch", "patch"]},
                    {"apiGroups": ["notification.toolkit.fluxcd.io"], "resources": ["receivers/status"], "verbs": ["patch"]},
                    {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["webhook-token"]},
                    {"apiGroups": ["source.toolkit.fluxcd.io"], "resources": ["*"], "verbs": ["patch"]},
                ]
            },
            {
                "apiVersion": API_VERSION, "kind": "ClusterRoleBinding",
                "metadata": {"name": "receiver"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "receiver"},
                "subjects": [{"kind": "ServiceAccount", "name": "receiver", "namespace": "flux-system"}]
            },
            {
                "apiVersion": API_VERSION, "kind": "Role",
                "metadata": {"name": "leases", "namespace": "flux-system"},
                "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "update"]}]
            },
            {
                "apiVersion": API_VERSION, "kind": "RoleBinding",
                "metadata": {"name": "leases", "namespace": "flux-system"},
                "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "leases"},
                "subjects": [{"kind": "ServiceAccount", "name": "receiver"}]
            },
        ])
    }

    #[test]
    fn rules_match_verbs_groups_resources_subresources_and_names() {
        let store = store_with(receiver_policy());
        let sa = service_account("flux-system", "receiver");
        let ns = "/apis/notification.toolkit.fluxcd.io/v1/namespaces/flux-system/receivers";
        let cases = [
            (
                Method::GET,
                "/apis/notification.toolkit.fluxcd.io/v1/receivers?watch=true",
                Some(0),
            ),
            (
                Method::GET,
                "/apis/notification.toolkit.fluxcd.io/v1/receivers",
                Some(0),
            ),
            (Method::PATCH, &format!("{ns}/r") as &str, Some(0)),
            (Method::PATCH, &format!("{ns}/r/status"), Some(1)),
            (Method::PUT, &format!("{ns}/r/status"), None),
            (Method::DELETE, &format!("{ns}/r"), None),
            (Method::DELETE, ns, None),
            (
                Method::GET,
                "/api/v1/namespaces/flux-system/secrets/webhook-token",
                Some(2),
            ),
            (
                Method::GET,
                "/api/v1/namespaces/flux-system/secrets/other",
                None,
            ),
            (Method::GET, "/api/v1/namespaces/flux-system/secrets", None),
            (
                Method::PATCH,
                "/apis/source.toolkit.fluxcd.io/v1/namespaces/a/gitrepositories/x",
                Some(3),
            ),
            // `*` is every resource, subresources included.
            (
                Method::PATCH,
                "/apis/source.toolkit.fluxcd.io/v1/namespaces/a/gitrepositories/x/status",
                Some(3),
            ),
            (
                Method::PATCH,
                "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/a/kustomizations/x",
                None,
            ),
        ];
        for (method, path, rule) in cases {
            let decision = decide(&store, &sa, method.clone(), path);
            assert_eq!(
                rule_of(&decision),
                rule.map(|index| ("ClusterRole receiver".to_owned(), index)),
                "{method} {path}: {decision:?}"
            );
        }
    }

    #[test]
    fn role_bindings_grant_only_in_their_namespace() {
        let store = store_with(receiver_policy());
        let sa = service_account("flux-system", "receiver");
        let lease = "/apis/coordination.k8s.io/v1/namespaces/flux-system/leases/leader";
        let decision = decide(&store, &sa, Method::PUT, lease);
        assert_eq!(
            rule_of(&decision),
            Some(("Role flux-system/leases".to_owned(), 0))
        );
        assert_eq!(
            decision,
            Decision::Allowed {
                rule: AllowingRule {
                    binding: PolicyObject::new("RoleBinding", Some("flux-system"), "leases"),
                    role: PolicyObject::new("Role", Some("flux-system"), "leases"),
                    index: 0,
                },
                reason: r#"RBAC: allowed by RoleBinding "leases/flux-system" of Role "leases" to ServiceAccount "receiver/flux-system""#.to_owned(),
            }
        );
        let elsewhere = "/apis/coordination.k8s.io/v1/namespaces/default/leases/leader";
        assert!(!decide(&store, &sa, Method::PUT, elsewhere).is_allowed());
        // The same ServiceAccount name in another namespace is another user.
        let other = service_account("default", "receiver");
        assert!(!decide(&store, &other, Method::PUT, lease).is_allowed());
        assert!(
            !decide(
                &store,
                &other,
                Method::PATCH,
                "/apis/source.toolkit.fluxcd.io/v1/namespaces/a/gitrepositories/x"
            )
            .is_allowed()
        );
    }

    #[test]
    fn cluster_roles_bound_in_a_namespace_apply_there_only() {
        let store = store_with(json!([
            {
                "apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": {"name": "reader"},
                "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
            },
            {
                "apiVersion": API_VERSION, "kind": "RoleBinding",
                "metadata": {"name": "reader", "namespace": "flux-system"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "reader"},
                "subjects": [{"kind": "Group", "name": "system:serviceaccounts:flux-system"}]
            },
        ]));
        let sa = service_account("flux-system", "anyone");
        let rule = decide(
            &store,
            &sa,
            Method::GET,
            "/api/v1/namespaces/flux-system/secrets/s",
        );
        assert_eq!(rule_of(&rule), Some(("ClusterRole reader".to_owned(), 0)));
        assert!(
            !decide(
                &store,
                &sa,
                Method::GET,
                "/api/v1/namespaces/default/secrets/s"
            )
            .is_allowed()
        );
    }

    #[test]
    fn discovery_is_everyone_authenticated_s_and_masters_may_do_anything() {
        let store = store_with(json!([]));
        let sa = service_account("flux-system", "nobody");
        for path in [
            "/api",
            "/apis",
            "/api/v1",
            "/apis/source.toolkit.fluxcd.io/v1",
            "/version",
        ] {
            let decision = decide(&store, &sa, Method::GET, path);
            assert_eq!(
                decision.rule().map(|rule| rule.binding.name.as_str()),
                Some("system:discovery"),
                "{path}"
            );
        }
        let anonymous = User {
            name: "system:anonymous".to_owned(),
            groups: vec![UNAUTHENTICATED.to_owned()],
        };
        assert!(decide(&store, &anonymous, Method::GET, "/version").is_allowed());
        assert!(!decide(&store, &anonymous, Method::GET, "/apis").is_allowed());
        let admin = User {
            name: "kubernetes-admin".to_owned(),
            groups: vec![MASTERS.to_owned(), AUTHENTICATED.to_owned()],
        };
        assert_eq!(
            decide(
                &store,
                &admin,
                Method::DELETE,
                "/api/v1/namespaces/x/secrets"
            ),
            Decision::PrivilegedGroup
        );
    }

    #[test]
    fn missing_roles_are_the_denial_s_reason() {
        let store = store_with(json!([{
            "apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": "dangling"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "gone"},
            "subjects": [{"kind": "ServiceAccount", "name": "receiver", "namespace": "flux-system"}]
        }]));
        let sa = service_account("flux-system", "receiver");
        assert_eq!(
            decide(
                &store,
                &sa,
                Method::GET,
                "/api/v1/namespaces/flux-system/secrets/s"
            ),
            Decision::Denied {
                reason: r#"RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found"#
                    .to_owned()
            }
        );
    }

    #[test]
    fn forbidden_status_reads_as_the_apiserver_s() {
        let sa = service_account("flux-system", "receiver");
        let status = |method: Method, path: &str| {
            let (path, query) = path.split_once('?').unwrap_or((path, ""));
            forbidden(&sa, &request_info(&method, path, query), "").to_status()
        };
        let patch = status(
            Method::PATCH,
            "/apis/notification.toolkit.fluxcd.io/v1/namespaces/flux-system/receivers/r/status",
        );
        assert_eq!(
            patch["message"],
            r#"receivers.notification.toolkit.fluxcd.io "r" is forbidden: User "system:serviceaccount:flux-system:receiver" cannot patch resource "receivers/status" in API group "notification.toolkit.fluxcd.io" in the namespace "flux-system""#
        );
        assert_eq!(
            patch["details"],
            json!({"name": "r", "group": "notification.toolkit.fluxcd.io", "kind": "receivers"})
        );
        assert_eq!(
            (patch["code"].clone(), patch["reason"].clone()),
            (json!(403), json!("Forbidden"))
        );
        let list = status(Method::GET, "/api/v1/secrets?watch=1");
        assert_eq!(
            list["message"],
            r#"secrets is forbidden: User "system:serviceaccount:flux-system:receiver" cannot watch resource "secrets" in API group "" at the cluster scope"#
        );
        assert_eq!(list["details"], json!({"kind": "secrets"}));
        let path = status(Method::GET, "/metrics");
        assert_eq!(
            path["message"],
            r#"forbidden: User "system:serviceaccount:flux-system:receiver" cannot get path "/metrics""#
        );
        assert_eq!(path["details"], json!({}));
    }

    #[test]
    fn url_rules_match_exactly_or_by_prefix() {
        let rule = PolicyRule {
            verbs: vec!["get".to_owned()],
            non_resource_urls: vec!["/version".to_owned(), "/apis/*".to_owned()],
            ..PolicyRule::default()
        };
        let allows = |path: &str| rule.allows(&request_info(&Method::GET, path, ""));
        assert!(allows("/version"));
        assert!(!allows("/version/x"));
        assert!(allows("/apis/g"));
        assert!(allows("/apis/"));
        assert!(!allows("/apis"));
        let star_subresource = PolicyRule {
            verbs: vec!["*".to_owned()],
            api_groups: vec!["*".to_owned()],
            resources: vec!["*/status".to_owned()],
            ..PolicyRule::default()
        };
        let info = request_info(&Method::PUT, "/apis/g/v1/namespaces/n/things/t/status", "");
        assert!(star_subresource.allows(&info));
        let info = request_info(&Method::PUT, "/apis/g/v1/namespaces/n/things/t", "");
        assert!(!star_subresource.allows(&info));
    }

    #[test]
    fn invalid_roles_and_bindings_are_refused() {
        let mut store = store_with(json!([]));
        let refused =
            |store: &mut Store, object: Value| store.seed(object, false).unwrap_err().message;
        assert_eq!(
            refused(
                &mut store,
                json!({
                    "apiVersion": API_VERSION, "kind": "ClusterRole", "metadata": {"name": "r"},
                    "rules": [{"apiGroups": [""], "resource": ["secrets"], "verbs": ["get"]}]
                })
            ),
            r#"ClusterRole.rbac.authorization.k8s.io "r" is invalid: rules[0].resources: Required value: resource rules must supply at least one resource"#
        );
        assert!(refused(&mut store, json!({
            "apiVersion": API_VERSION, "kind": "Role", "metadata": {"name": "r", "namespace": "flux-system"},
            "rules": [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
        })).contains("namespaced rules cannot apply to non-resource URLs"));
        assert!(refused(&mut store, json!({
            "apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
            "roleRef": {"apiGroup": GROUP, "kind": "Role", "name": "r"},
            "subjects": []
        })).contains(r#"roleRef.kind: Unsupported value: "Role": supported values: "ClusterRole""#));
        assert!(refused(&mut store, json!({
            "apiVersion": API_VERSION, "kind": "ClusterRoleBinding", "metadata": {"name": "b"},
            "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "r"},
            "subjects": [{"kind": "ServiceAccount", "name": "sa"}]
        })).contains("subjects[0].namespace: Required value"));
        let stored = store
            .seed(json!({
                "apiVersion": API_VERSION, "kind": "RoleBinding", "metadata": {"name": "b", "namespace": "flux-system"},
                "roleRef": {"apiGroup": GROUP, "kind": "ClusterRole", "name": "r"},
                "subjects": [{"kind": "Group", "name": "g"}]
            }), false)
            .unwrap();
        assert_eq!(stored["subjects"][0]["apiGroup"], GROUP);
        let mut changed = stored.clone();
        changed["roleRef"]["name"] = json!("other");
        assert!(
            store
                .seed(changed, true)
                .unwrap_err()
                .message
                .contains("cannot change roleRef")
        );
    }
}
