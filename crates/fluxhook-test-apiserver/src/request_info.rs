//! The attributes authorization sees: a request's verb, API group, resource, subresource,
//! name and namespace, derived from its method, path and query exactly as kube-apiserver's
//! `RequestInfoFactory.NewRequestInfo` derives them
//! (kubernetes/kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/request/requestinfo.go`).
//!
//! This is separate from the routing in `routes.rs` on purpose: the apiserver authorizes a
//! request before it routes it, so a path the server does not serve is still a `get` of some
//! resource and answered 403 to a user who may not get it, 404 only to one who may.

use http::Method;

/// Path prefixes of resource requests; `api` (the core group) has no group segment.
const API_PREFIXES: [&str; 2] = ["api", "apis"];
const GROUPLESS_API_PREFIX: &str = "api";
/// Path segments naming a verb rather than a resource (`/api/v1/watch/pods`).
const SPECIAL_VERBS: [&str; 2] = ["proxy", "watch"];
/// Special verbs after which no subresource is read.
const SPECIAL_VERBS_NO_SUBRESOURCES: [&str; 1] = ["proxy"];
/// Subresources of a namespace, told apart from resources inside it.
const NAMESPACE_SUBRESOURCES: [&str; 2] = ["status", "finalize"];

/// What a request asks to do, as authorizers see it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct RequestInfo {
    /// Whether it addresses an API resource (else a path such as `/version` or `/apis`).
    pub(crate) is_resource_request: bool,
    /// The URL path.
    pub(crate) path: String,
    /// The Kubernetes verb (`get`, `list`, `watch`, `create`, `update`, `patch`, `delete`,
    /// `deletecollection`) of a resource request, the lowercase HTTP method otherwise.
    pub(crate) verb: String,
    pub(crate) api_group: String,
    pub(crate) api_version: String,
    /// Empty for cluster-scoped requests.
    pub(crate) namespace: String,
    pub(crate) resource: String,
    pub(crate) subresource: String,
    /// Empty when the path names no object (lists, creates).
    pub(crate) name: String,
}

/// The request's attributes. `query` is the raw query string (only `watch` is read).
pub(crate) fn request_info(method: &Method, path: &str, query: &str) -> RequestInfo {
    let mut info = RequestInfo {
        is_resource_request: false,
        path: path.to_owned(),
        verb: method.as_str().to_ascii_lowercase(),
        ..RequestInfo::default()
    };
    let mut parts: Vec<&str> = split_path(path);
    if parts.len() < 3 || !API_PREFIXES.contains(&parts[0]) {
        return info;
    }
    let prefix = parts.remove(0);
    if prefix != GROUPLESS_API_PREFIX {
        // The prefix is consumed, so this asks for group, version and at least one more part.
        if parts.len() < 3 {
            return info;
        }
        info.api_group = parts.remove(0).to_owned();
    }
    info.is_resource_request = true;
    info.api_version = parts.remove(0).to_owned();

    if SPECIAL_VERBS.contains(&parts[0]) {
        if parts.len() < 2 {
            // The apiserver fails such a request; what it authorized up to here is all there is.
            return info;
        }
        info.verb = parts.remove(0).to_owned();
    } else {
        info.verb = match *method {
            Method::POST => "create",
            Method::GET | Method::HEAD => "get",
            Method::PUT => "update",
            Method::PATCH => "patch",
            Method::DELETE => "delete",
            _ => "",
        }
        .to_owned();
    }

    if parts[0] == "namespaces"
        && let Some(namespace) = parts.get(1)
    {
        info.namespace = (*namespace).to_owned();
        // `namespaces/<ns>/<resource>...` is a resource in the namespace, unless the step
        // after the name is one of the namespace's own subresources.
        if parts
            .get(2)
            .is_some_and(|next| !NAMESPACE_SUBRESOURCES.contains(next))
        {
            parts.drain(..2);
        }
    }

    // parts: resource/name/subresource/...
    if parts.len() >= 3 && !SPECIAL_VERBS_NO_SUBRESOURCES.contains(&info.verb.as_str()) {
        info.subresource = parts[2].to_owned();
    }
    if parts.len() >= 2 {
        info.name = parts[1].to_owned();
    }
    info.resource = parts[0].to_owned();

    if info.name.is_empty() && info.verb == "get" {
        // Any value of `watch` other than `false` or `0` makes the request a watch.
        info.verb = match first_query_value(query, "watch") {
            Some(value) if matches!(value.to_ascii_lowercase().as_str(), "false" | "0") => "list",
            Some(_) => "watch",
            None => "list",
        }
        .to_owned();
    }
    if info.name.is_empty() && info.verb == "delete" {
        info.verb = "deletecollection".to_owned();
    }
    info
}

fn split_path(path: &str) -> Vec<&str> {
    let trimmed = path.trim_matches('/');
    if trimmed.is_empty() {
        Vec::new()
    } else {
        trimmed.split('/').collect()
    }
}

fn first_query_value(query: &str, key: &str) -> Option<String> {
    url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == key)
        .map(|(_, value)| value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(method: Method, path: &str, query: &str) -> RequestInfo {
        request_info(&method, path, query)
    }

    /// `(verb, group, namespace, resource, subresource, name)`.
    fn summary(info: &RequestInfo) -> (&str, &str, &str, &str, &str, &str) {
        (
            &info.verb,
            &info.api_group,
            &info.namespace,
            &info.resource,
            &info.subresource,
            &info.name,
        )
    }

    #[test]
    fn verbs_follow_method_name_and_watch() {
        let secrets = "/api/v1/namespaces/flux-system/secrets";
        let one = "/api/v1/namespaces/flux-system/secrets/token";
        for (method, path, query, verb) in [
            (Method::GET, secrets, "", "list"),
            (Method::GET, secrets, "watch=true", "watch"),
            (Method::GET, secrets, "watch=1", "watch"),
            (Method::GET, secrets, "watch=", "watch"),
            (Method::GET, secrets, "watch=False", "list"),
            (Method::GET, secrets, "watch=0", "list"),
            (Method::POST, secrets, "", "create"),
            (Method::DELETE, secrets, "", "deletecollection"),
            (Method::GET, one, "watch=true", "get"),
            (Method::HEAD, one, "", "get"),
            (Method::PUT, one, "", "update"),
            (Method::PATCH, one, "", "patch"),
            (Method::DELETE, one, "", "delete"),
            (Method::OPTIONS, one, "", ""),
        ] {
            let request = format!("{method} {path}?{query}");
            assert_eq!(info(method, path, query).verb, verb, "{request}");
        }
    }

    #[test]
    fn status_subresources_and_groups() {
        let status = info(
            Method::PATCH,
            "/apis/notification.toolkit.fluxcd.io/v1/namespaces/flux-system/receivers/r/status",
            "",
        );
        assert!(status.is_resource_request);
        assert_eq!(
            summary(&status),
            (
                "patch",
                "notification.toolkit.fluxcd.io",
                "flux-system",
                "receivers",
                "status",
                "r"
            )
        );
        let all = info(
            Method::GET,
            "/apis/notification.toolkit.fluxcd.io/v1/receivers",
            "watch=true",
        );
        assert_eq!(
            summary(&all),
            (
                "watch",
                "notification.toolkit.fluxcd.io",
                "",
                "receivers",
                "",
                ""
            )
        );
    }

    #[test]
    fn namespaces_are_their_own_namespace() {
        let namespace = info(Method::GET, "/api/v1/namespaces/flux-system", "");
        assert_eq!(
            summary(&namespace),
            ("get", "", "flux-system", "namespaces", "", "flux-system")
        );
        let finalize = info(Method::PUT, "/api/v1/namespaces/flux-system/finalize", "");
        assert_eq!(
            summary(&finalize),
            (
                "update",
                "",
                "flux-system",
                "namespaces",
                "finalize",
                "flux-system"
            )
        );
        let list = info(Method::GET, "/api/v1/namespaces", "");
        assert_eq!(summary(&list), ("list", "", "", "namespaces", "", ""));
    }

    #[test]
    fn special_verbs_in_the_path() {
        let watch = info(Method::GET, "/api/v1/watch/namespaces/ns/secrets", "");
        assert_eq!(summary(&watch), ("watch", "", "ns", "secrets", "", ""));
        let proxy = info(Method::GET, "/api/v1/proxy/namespaces/ns/pods/p/x/y", "");
        assert_eq!(summary(&proxy), ("proxy", "", "ns", "pods", "", "p"));
    }

    #[test]
    fn discovery_and_other_paths_are_not_resource_requests() {
        for path in [
            "/",
            "/version",
            "/api",
            "/api/v1",
            "/apis",
            "/apis/g",
            "/apis/g/v1",
            "/healthz/a/b",
        ] {
            let info = info(Method::GET, path, "");
            assert!(!info.is_resource_request, "{path}");
            assert_eq!(info.verb, "get");
            assert_eq!(info.path, path);
        }
        assert_eq!(info(Method::POST, "/apis", "").verb, "post");
    }
}
