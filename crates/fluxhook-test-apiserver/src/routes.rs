//! The HTTP face: one handler that logs each request, applies injected faults, works out which
//! API request it is from its path (as the apiserver's `RequestInfoFactory` does) and serves it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use http::{HeaderMap, Method, StatusCode, header};
use serde_json::{Value, json};

use crate::discovery;
use crate::error::ApiError;
use crate::faults::{InjectedAnswer, RequestRecord, RequestTarget, Verb};
use crate::rbac::{self, Decision};
use crate::request_info::request_info;
use crate::selectors::{FieldSelector, LabelSelector};
use crate::server::Shared;
use crate::store::{DeleteOptions, ListOptions, PatchKind, Subresource, TypeKey, WriteOptions};
use crate::watch::{WatchSpec, WatchStart, partial_object_metadata, watch_response};

/// Request bodies larger than this are refused (the apiserver's own limit is 3 MiB per object).
const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;

/// The router serving the whole API.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(handle).with_state(shared)
}

/// What a path addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Route {
    Version,
    CoreVersions,
    CoreResources(String),
    Groups,
    Group(String),
    GroupResources(String, String),
    Resource(RequestTarget),
    Unknown,
}

impl Route {
    fn parse(path: &str) -> Self {
        let segments: Vec<&str> = path
            .split('/')
            .filter(|segment| !segment.is_empty())
            .collect();
        match segments.as_slice() {
            ["version"] => Route::Version,
            ["api"] => Route::CoreVersions,
            ["api", version] => Route::CoreResources((*version).to_owned()),
            ["api", version, rest @ ..] => Self::resource("", version, rest),
            ["apis"] => Route::Groups,
            ["apis", group] => Route::Group((*group).to_owned()),
            ["apis", group, version] => {
                Route::GroupResources((*group).to_owned(), (*version).to_owned())
            }
            ["apis", group, version, rest @ ..] => Self::resource(group, version, rest),
            _ => Route::Unknown,
        }
    }

    /// `[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]`; `namespaces/<name>/status` is the
    /// namespace's own status, not a resource called `status`.
    fn resource(group: &str, version: &str, rest: &[&str]) -> Self {
        let (namespace, rest) = match rest {
            ["namespaces", namespace, tail @ ..] if matches!(tail, [first, ..] if !matches!(*first, "status" | "finalize")) => {
                (Some((*namespace).to_owned()), tail)
            }
            _ => (None, rest),
        };
        let (resource, name, subresource) = match rest {
            [resource] => (resource, None, None),
            [resource, name] => (resource, Some(*name), None),
            [resource, name, subresource] => (resource, Some(*name), Some(*subresource)),
            _ => return Route::Unknown,
        };
        Route::Resource(RequestTarget {
            group: group.to_owned(),
            version: version.to_owned(),
            resource: (*resource).to_owned(),
            namespace,
            name: name.map(str::to_owned),
            subresource: subresource.map(str::to_owned),
        })
    }
}

/// Query parameters; the first of repeated ones counts.
struct Query(HashMap<String, String>);

impl Query {
    fn parse(query: &str) -> Self {
        let mut params = HashMap::new();
        for (key, value) in url::form_urlencoded::parse(query.as_bytes()) {
            params
                .entry(key.into_owned())
                .or_insert_with(|| value.into_owned());
        }
        Self(params)
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// A boolean parameter, read as Go's `strconv.ParseBool`.
    fn flag(&self, key: &str) -> Result<Option<bool>, ApiError> {
        match self.get(key) {
            None | Some("") => Ok(None),
            Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Ok(Some(true)),
            Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Ok(Some(false)),
            Some(other) => Err(ApiError::bad_request(format!(
                "invalid boolean for {key}: {other:?}"
            ))),
        }
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>, ApiError> {
        self.get(key)
            .filter(|value| !value.is_empty())
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid value for {key}: {value:?}"))
                })
            })
            .transpose()
    }

    fn selectors(&self) -> Result<(LabelSelector, FieldSelector), ApiError> {
        let labels = LabelSelector::parse(self.get("labelSelector").unwrap_or_default())
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        let fields = FieldSelector::parse(self.get("fieldSelector").unwrap_or_default())
            .map_err(|error| ApiError::bad_request(error.to_string()))?;
        Ok((labels, fields))
    }

    fn dry_run(&self) -> bool {
        self.get("dryRun") == Some("All")
    }
}

fn verb_of(method: &Method, route: &Route, query: &Query) -> Option<Verb> {
    let (is_resource, named) = match route {
        Route::Resource(target) => (true, target.name.is_some()),
        _ => (false, true),
    };
    Some(match *method {
        Method::GET if named => Verb::Get,
        Method::GET if is_resource && query.flag("watch").ok().flatten() == Some(true) => {
            Verb::Watch
        }
        Method::GET => Verb::List,
        Method::POST => Verb::Create,
        Method::PUT => Verb::Update,
        Method::PATCH => Verb::Patch,
        Method::DELETE if named => Verb::Delete,
        Method::DELETE => Verb::DeleteCollection,
        _ => return None,
    })
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

/// The media type of a `Content-Type`, without parameters, lowercased.
fn media_type(content_type: Option<&str>) -> String {
    content_type
        .and_then(|value| value.split(';').next())
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut response = Response::new(Body::from(body.to_string()));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

fn error_response(error: &ApiError) -> Response {
    let status = StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, &error.to_status())
}

fn injected_response(answer: &InjectedAnswer) -> Response {
    let mut response = error_response(&answer.error);
    if let Some(seconds) = answer.retry_after_seconds {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, http::HeaderValue::from(seconds));
    }
    response
}

async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = axum::body::to_bytes(body, MAX_BODY_BYTES).await;
    let path = parts.uri.path().to_owned();
    let query_string = parts.uri.query().unwrap_or_default().to_owned();
    let query = Query::parse(&query_string);
    let route = Route::parse(&path);
    let verb = verb_of(&parts.method, &route, &query);
    let target = match &route {
        Route::Resource(target) => Some(target.clone()),
        _ => None,
    };
    let content_type = header_str(&parts.headers, header::CONTENT_TYPE).map(str::to_owned);
    let body_text = body
        .as_ref()
        .map(|bytes| String::from_utf8_lossy(bytes).into_owned())
        .unwrap_or_default();
    let mut record = RequestRecord::new(
        parts.method.to_string(),
        path,
        query_string,
        content_type,
        body_text,
        verb,
        target,
    );
    record.user_agent = header_str(&parts.headers, header::USER_AGENT).map(str::to_owned);
    // As kube-apiserver's filter chain: authentication, then authorization, then the
    // handler (with what an overloaded server does in between, the injected faults).
    let user = shared.identities().authenticate(&parts.headers);
    let info = request_info(&parts.method, &record.path, &record.query);
    let decision = user.as_ref().ok().map(|user| shared.authorize(user, &info));
    record.user = user.as_ref().ok().map(|user| user.name.clone());
    record.decision = decision.clone();
    let refused = match (&user, &decision) {
        (Err(unauthorized), _) => Some(unauthorized.clone()),
        (Ok(user), Some(Decision::Denied { reason })) => Some(rbac::forbidden(user, &info, reason)),
        _ => None,
    };
    // Subscribed before the rule is taken, so that no clear() in between is missed.
    let mut releases = shared.faults.subscribe_releases();
    let injected = match refused {
        None => shared.faults.take(&record),
        Some(_) => None,
    };
    let id = shared.requests.push(record);
    tracing::debug!(method = %parts.method, uri = %parts.uri, "request");
    let latency = shared.faults.latency();
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    if injected.as_ref().is_some_and(|answer| answer.hang) {
        // Answered at the next clear(); the sender lives as long as the server.
        let _ = releases.changed().await;
    }
    let response = match (refused, injected, body) {
        (Some(refused), _, _) => error_response(&refused),
        (None, Some(answer), _) => injected_response(&answer),
        (None, None, Err(_)) => {
            error_response(&ApiError::bad_request("the request body could not be read"))
        }
        (None, None, Ok(body)) => serve(&shared, &parts.headers, route, verb, &query, &body)
            .unwrap_or_else(|error| error_response(&error)),
    };
    shared.requests.set_status(id, response.status().as_u16());
    response
}

fn serve(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    route: Route,
    verb: Option<Verb>,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let verb = verb.ok_or_else(ApiError::method_not_allowed)?;
    if let Route::Resource(target) = route {
        return serve_resource(shared, headers, &target, verb, query, body);
    }
    if verb != Verb::Get && verb != Verb::List {
        return Err(ApiError::method_not_allowed());
    }
    let accept = header_str(headers, header::ACCEPT).unwrap_or_default();
    let store = shared.store();
    let aggregated = |core: bool| {
        let mut response =
            json_response(StatusCode::OK, &discovery::aggregated(store.types(), core));
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            http::HeaderValue::from_static(discovery::AGGREGATED_CONTENT_TYPE),
        );
        response
    };
    let document = match route {
        Route::Version => discovery::version(),
        Route::CoreVersions if discovery::wants_aggregated(accept) => return Ok(aggregated(true)),
        Route::CoreVersions => {
            discovery::core_versions(header_str(headers, header::HOST).unwrap_or("127.0.0.1"))
        }
        Route::Groups if discovery::wants_aggregated(accept) => return Ok(aggregated(false)),
        Route::Groups => discovery::group_list(store.types()),
        Route::Group(group) => {
            discovery::group(store.types(), &group).ok_or_else(ApiError::unknown_path)?
        }
        Route::CoreResources(version) => discovery::resource_list(store.types(), "", &version)
            .ok_or_else(ApiError::unknown_path)?,
        Route::GroupResources(group, version) => {
            discovery::resource_list(store.types(), &group, &version)
                .ok_or_else(ApiError::unknown_path)?
        }
        Route::Resource(_) | Route::Unknown => return Err(ApiError::unknown_path()),
    };
    Ok(json_response(StatusCode::OK, &document))
}

/// A create or update body: JSON, or YAML when sent as such.
fn parse_object(content_type: Option<&str>, body: &[u8]) -> Result<Value, ApiError> {
    let media = media_type(content_type);
    let value = match media.as_str() {
        "" | "application/json" => serde_json::from_slice(body).map_err(|error| error.to_string()),
        "application/yaml" => serde_yaml_ng::from_slice(body).map_err(|error| error.to_string()),
        _ => {
            return Err(ApiError::unsupported_media_type(
                &media,
                &["application/json", "application/yaml"],
            ));
        }
    };
    value.map_err(|error| {
        ApiError::bad_request(format!("unable to decode the request body: {error}"))
    })
}

fn parse_patch(content_type: Option<&str>, body: &[u8]) -> Result<(PatchKind, Value), ApiError> {
    let media = media_type(content_type);
    let kind = match media.as_str() {
        "application/merge-patch+json" => PatchKind::Merge,
        "application/strategic-merge-patch+json" => PatchKind::StrategicMerge,
        "application/json-patch+json" => PatchKind::Json,
        "application/apply-patch+yaml" => PatchKind::Apply,
        _ => {
            return Err(ApiError::unsupported_media_type(
                &media,
                &[
                    "application/json-patch+json",
                    "application/merge-patch+json",
                    "application/strategic-merge-patch+json",
                    "application/apply-patch+yaml",
                ],
            ));
        }
    };
    let value = if kind == PatchKind::Apply {
        serde_yaml_ng::from_slice(body).map_err(|error| error.to_string())
    } else {
        serde_json::from_slice(body).map_err(|error| error.to_string())
    };
    let value = value
        .map_err(|error| ApiError::bad_request(format!("unable to decode the patch: {error}")))?;
    Ok((kind, value))
}

/// `DeleteOptions` from the body (when sent) and the query.
fn delete_options(query: &Query, body: &[u8]) -> Result<DeleteOptions, ApiError> {
    let options: Value = if body.iter().all(u8::is_ascii_whitespace) {
        json!({})
    } else {
        serde_json::from_slice(body).map_err(|error| {
            ApiError::bad_request(format!("unable to decode DeleteOptions: {error}"))
        })?
    };
    let dry_run_in_body = options
        .get("dryRun")
        .and_then(Value::as_array)
        .is_some_and(|modes| modes.iter().any(|mode| mode == "All"));
    let precondition = |field: &str| {
        options
            .pointer(&format!("/preconditions/{field}"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    Ok(DeleteOptions {
        dry_run: query.dry_run() || dry_run_in_body,
        precondition_uid: precondition("uid"),
        precondition_resource_version: precondition("resourceVersion"),
    })
}

fn watch_start(query: &Query) -> Result<WatchStart, ApiError> {
    let send_initial_events = query.flag("sendInitialEvents")?;
    let bookmarks = query.flag("allowWatchBookmarks")?.unwrap_or(false);
    let version_match = query.get("resourceVersionMatch").unwrap_or_default();
    let invalid =
        |field: &str, why: &str| Err(ApiError::invalid_options("ListOptions", field, why));
    match send_initial_events {
        Some(_) if version_match != "NotOlderThan" => {
            return invalid(
                "resourceVersionMatch",
                "Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            );
        }
        Some(true) if !bookmarks => {
            return invalid(
                "allowWatchBookmarks",
                "Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true",
            );
        }
        None if !version_match.is_empty() => {
            return invalid(
                "resourceVersionMatch",
                "Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
            );
        }
        _ => {}
    }
    let version = query.get("resourceVersion").unwrap_or_default();
    let after = || {
        version
            .parse()
            .map(WatchStart::After)
            .map_err(|_| ApiError::bad_request(format!("invalid resource version: {version:?}")))
    };
    match (send_initial_events, version) {
        (Some(true), _) => Ok(WatchStart::Current { end_bookmark: true }),
        (Some(false), "" | "0") => Ok(WatchStart::Now),
        (None, "" | "0") => Ok(WatchStart::Current {
            end_bookmark: false,
        }),
        _ => after(),
    }
}

fn serve_resource(
    shared: &Arc<Shared>,
    headers: &HeaderMap,
    target: &RequestTarget,
    verb: Verb,
    query: &Query,
    body: &[u8],
) -> Result<Response, ApiError> {
    let resource = shared
        .store()
        .resource_type(&TypeKey::new(
            &target.group,
            &target.version,
            &target.resource,
        ))
        .cloned()
        .ok_or_else(ApiError::unknown_path)?;
    match (
        resource.namespaced,
        target.namespace.is_some(),
        target.name.is_some(),
    ) {
        (false, true, _) | (true, false, true) => return Err(ApiError::unknown_path()),
        (true, false, false) if !matches!(verb, Verb::List | Verb::Watch) => {
            return Err(ApiError::method_not_allowed());
        }
        _ => {}
    }
    let subresource = match target.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if resource.status_subresource => Subresource::Status,
        Some(_) => return Err(ApiError::unknown_path()),
    };
    if subresource == Subresource::Status && !matches!(verb, Verb::Get | Verb::Update | Verb::Patch)
    {
        return Err(ApiError::method_not_allowed());
    }
    // Get and Delete are named and List, Watch and DeleteCollection unnamed by definition.
    let named = target.name.is_some();
    if matches!(verb, Verb::Update | Verb::Patch) && !named || verb == Verb::Create && named {
        return Err(ApiError::method_not_allowed());
    }
    let namespace = target.namespace.as_deref().unwrap_or_default();
    let name = target.name.as_deref().unwrap_or_default();
    let content_type = header_str(headers, header::CONTENT_TYPE);
    let metadata_only = header_str(headers, header::ACCEPT)
        .is_some_and(|accept| accept.contains("as=PartialObjectMetadata"));
    let write = WriteOptions {
        dry_run: query.dry_run(),
    };
    let ok = |object: Value| {
        let object = if metadata_only {
            partial_object_metadata(object)
        } else {
            object
        };
        Ok(json_response(StatusCode::OK, &object))
    };
    match verb {
        Verb::Get => ok(shared.store().get(&resource, namespace, name)?),
        Verb::List => {
            let (labels, fields) = query.selectors()?;
            let options = ListOptions {
                labels,
                fields,
                limit: query.number("limit")?,
                continue_token: query.get("continue").map(str::to_owned),
                resource_version: query.get("resourceVersion").map(str::to_owned),
                resource_version_match: query.get("resourceVersionMatch").map(str::to_owned),
            };
            let mut list = shared
                .store()
                .list(&resource, target.namespace.as_deref(), &options)?;
            if metadata_only {
                list["apiVersion"] = json!("meta.k8s.io/v1");
                list["kind"] = json!("PartialObjectMetadataList");
                if let Some(Value::Array(items)) = list.get_mut("items") {
                    for item in items.iter_mut() {
                        *item = partial_object_metadata(item.take());
                    }
                }
            }
            Ok(json_response(StatusCode::OK, &list))
        }
        Verb::Watch => {
            let (labels, fields) = query.selectors()?;
            let spec = WatchSpec {
                resource,
                namespace: target.namespace.clone(),
                labels,
                fields,
                start: watch_start(query)?,
                bookmarks: query.flag("allowWatchBookmarks")?.unwrap_or(false),
                timeout: query.number("timeoutSeconds")?.map(Duration::from_secs),
                metadata_only,
            };
            Ok(watch_response(Arc::clone(shared), spec))
        }
        Verb::Create => {
            let object = parse_object(content_type, body)?;
            let created = shared
                .store()
                .create(&resource, namespace, object, &write, false)?;
            Ok(json_response(StatusCode::CREATED, &created))
        }
        Verb::Update => {
            let object = parse_object(content_type, body)?;
            ok(shared
                .store()
                .update(&resource, namespace, name, object, subresource, &write)?)
        }
        Verb::Patch => {
            let (kind, patch) = parse_patch(content_type, body)?;
            let field_manager = query.get("fieldManager").unwrap_or_default();
            if kind == PatchKind::Apply && field_manager.is_empty() {
                return Err(ApiError::invalid_options(
                    "PatchOptions",
                    "fieldManager",
                    "Required value: is required for apply patch",
                ));
            }
            if kind != PatchKind::Apply && query.get("force").is_some() {
                return Err(ApiError::invalid_options(
                    "PatchOptions",
                    "force",
                    "Forbidden: may not be specified for non-apply patch",
                ));
            }
            let (patched, created) = shared.store().patch(
                &resource,
                namespace,
                name,
                kind,
                &patch,
                subresource,
                &write,
            )?;
            if created {
                Ok(json_response(StatusCode::CREATED, &patched))
            } else {
                ok(patched)
            }
        }
        Verb::Delete => {
            let options = delete_options(query, body)?;
            ok(shared
                .store()
                .delete(&resource, namespace, name, &options)?)
        }
        Verb::DeleteCollection => {
            let (labels, fields) = query.selectors()?;
            let options = delete_options(query, body)?;
            let deleted = shared.store().delete_collection(
                &resource,
                target.namespace.as_deref(),
                &labels,
                &fields,
                &options,
            )?;
            Ok(json_response(StatusCode::OK, &deleted))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(route: Route) -> RequestTarget {
        match route {
            Route::Resource(target) => target,
            other => RequestTarget {
                resource: format!("{other:?}"),
                ..RequestTarget::default()
            },
        }
    }

    #[test]
    fn parses_namespaced_paths() {
        let t = target(Route::parse(
            "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/gitrepositories/repo/status",
        ));
        assert_eq!(t.group, "source.toolkit.fluxcd.io");
        assert_eq!(t.namespace.as_deref(), Some("flux-system"));
        assert_eq!(t.resource, "gitrepositories");
        assert_eq!(t.name.as_deref(), Some("repo"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
    }

    #[test]
    fn namespace_objects_are_not_namespaced_paths() {
        let t = target(Route::parse("/api/v1/namespaces/flux-system"));
        assert_eq!(
            (t.resource.as_str(), t.name.as_deref(), t.namespace),
            ("namespaces", Some("flux-system"), None)
        );
        let t = target(Route::parse("/api/v1/namespaces/flux-system/status"));
        assert_eq!(t.subresource.as_deref(), Some("status"));
        let t = target(Route::parse("/api/v1/namespaces/flux-system/secrets"));
        assert_eq!(
            (t.resource.as_str(), t.namespace.as_deref()),
            ("secrets", Some("flux-system"))
        );
    }

    #[test]
    fn parses_discovery_paths() {
        assert_eq!(Route::parse("/version"), Route::Version);
        assert_eq!(
            Route::parse("/api/v1"),
            Route::CoreResources("v1".to_owned())
        );
        assert_eq!(
            Route::parse("/apis/g/v"),
            Route::GroupResources("g".to_owned(), "v".to_owned())
        );
        assert_eq!(Route::parse("/healthz/x/y/z"), Route::Unknown);
        assert_eq!(Route::parse("/api/v1/a/b/c/d"), Route::Unknown);
    }

    #[test]
    fn verbs_follow_method_and_shape() {
        let list = Route::parse("/api/v1/secrets");
        let watch = Query::parse("watch=1");
        let plain = Query::parse("");
        assert_eq!(verb_of(&Method::GET, &list, &watch), Some(Verb::Watch));
        assert_eq!(verb_of(&Method::GET, &list, &plain), Some(Verb::List));
        assert_eq!(
            verb_of(&Method::DELETE, &list, &plain),
            Some(Verb::DeleteCollection)
        );
        assert_eq!(verb_of(&Method::OPTIONS, &list, &plain), None);
    }

    #[test]
    fn watch_start_follows_resource_version_semantics() {
        let start = |query: &str| watch_start(&Query::parse(query));
        assert_eq!(
            start(""),
            Ok(WatchStart::Current {
                end_bookmark: false
            })
        );
        assert_eq!(start("resourceVersion=12"), Ok(WatchStart::After(12)));
        assert_eq!(
            start(
                "resourceVersion=0&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true"
            ),
            Ok(WatchStart::Current { end_bookmark: true })
        );
        assert_eq!(
            start("sendInitialEvents=true&resourceVersionMatch=NotOlderThan").map_err(|e| e.code),
            Err(422)
        );
        assert_eq!(
            start("resourceVersionMatch=NotOlderThan").map_err(|e| e.code),
            Err(422)
        );
        assert_eq!(start("resourceVersion=abc").map_err(|e| e.code), Err(400));
    }
}
