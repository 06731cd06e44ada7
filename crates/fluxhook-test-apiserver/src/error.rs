//! Kubernetes API errors, answered as `Status` objects so clients map them as from a real cluster.

use serde_json::{Value, json};

use crate::resource::ResourceType;

/// An API error: the HTTP code, the `Status` reason and message, and what it is about.
///
/// The server answers it as a `kind: Status` object, so kube-rs returns it as `kube::Error::Api`.
///
/// ```
/// use fluxhook_test_apiserver::TestApiServer;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// let server = TestApiServer::start().await?;
/// let error = server.get("v1", "Secret", "default", "missing").unwrap_err();
/// assert_eq!((error.code, error.reason), (404, "NotFound"));
/// assert_eq!(error.to_status()["message"], "secrets \"missing\" not found");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{reason} ({code}): {message}")]
pub struct ApiError {
    /// HTTP status code, also `Status.code`.
    pub code: u16,
    /// `Status.reason`, such as `NotFound` or `Conflict`.
    pub reason: &'static str,
    /// `Status.message`.
    pub message: String,
    /// `Status.details`, when the error is about one object.
    pub details: Option<Value>,
}

impl ApiError {
    fn new(code: u16, reason: &'static str, message: String) -> Self {
        Self {
            code,
            reason,
            message,
            details: None,
        }
    }

    fn about(mut self, resource: &ResourceType, name: &str) -> Self {
        self.details = Some(json!({
            "name": name,
            "group": resource.group,
            "kind": resource.plural,
        }));
        self
    }

    /// 404 NotFound for one object.
    pub(crate) fn not_found(resource: &ResourceType, name: &str) -> Self {
        Self::new(
            404,
            "NotFound",
            format!("{} \"{name}\" not found", resource.qualified_resource()),
        )
        .about(resource, name)
    }

    /// 404 NotFound for a path the server does not serve.
    pub(crate) fn unknown_path() -> Self {
        Self::new(
            404,
            "NotFound",
            "the server could not find the requested resource".to_owned(),
        )
    }

    /// 409 AlreadyExists.
    pub(crate) fn already_exists(resource: &ResourceType, name: &str) -> Self {
        Self::new(
            409,
            "AlreadyExists",
            format!(
                "{} \"{name}\" already exists",
                resource.qualified_resource()
            ),
        )
        .about(resource, name)
    }

    /// 409 Conflict, such as a stale `resourceVersion`.
    pub(crate) fn conflict(resource: &ResourceType, name: &str, why: &str) -> Self {
        Self::new(
            409,
            "Conflict",
            format!(
                "Operation cannot be fulfilled on {} \"{name}\": {why}",
                resource.qualified_resource()
            ),
        )
        .about(resource, name)
    }

    /// 422 Invalid: `field` of the object fails validation.
    pub(crate) fn invalid(resource: &ResourceType, name: &str, field: &str, why: &str) -> Self {
        let mut error = Self::new(
            422,
            "Invalid",
            format!(
                "{} \"{name}\" is invalid: {field}: {why}",
                resource.qualified_kind()
            ),
        )
        .about(resource, name);
        if let Some(Value::Object(details)) = &mut error.details {
            details.insert("kind".to_owned(), Value::String(resource.kind.clone()));
            details.insert(
                "causes".to_owned(),
                json!([{"reason": "FieldValueInvalid", "message": why, "field": field}]),
            );
        }
        error
    }

    /// 422 Invalid for request options (such as watch parameters).
    pub(crate) fn invalid_options(kind: &str, field: &str, why: &str) -> Self {
        Self::new(
            422,
            "Invalid",
            format!("{kind}.meta.k8s.io \"\" is invalid: {field}: {why}"),
        )
    }

    /// 400 BadRequest.
    pub(crate) fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, "BadRequest", message.into())
    }

    /// 403 Forbidden, with the `details` the authorizer's answer carries.
    pub(crate) fn forbidden(message: String, details: Value) -> Self {
        let mut error = Self::new(403, "Forbidden", message);
        error.details = Some(details);
        error
    }

    /// 405 MethodNotAllowed.
    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource".to_owned(),
        )
    }

    /// 410 Expired: a resourceVersion older than the retained history.
    pub(crate) fn expired(message: impl Into<String>) -> Self {
        Self::new(410, "Expired", message.into())
    }

    /// 415 UnsupportedMediaType for a request body or patch type the server does not take.
    pub(crate) fn unsupported_media_type(content_type: &str, accepted: &[&str]) -> Self {
        Self::new(
            415,
            "UnsupportedMediaType",
            format!(
                "the body of the request was in an unknown format ({content_type}) - accepted media types include: {}",
                accepted.join(", ")
            ),
        )
    }

    /// 429 TooManyRequests, to be retried after `retry_after_seconds`.
    pub(crate) fn too_many_requests(retry_after_seconds: u32) -> Self {
        let mut error = Self::new(
            429,
            "TooManyRequests",
            "Too many requests, please try again later.".to_owned(),
        );
        error.details = Some(json!({"retryAfterSeconds": retry_after_seconds}));
        error
    }

    /// 500 InternalError.
    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "InternalError", message.into())
    }

    /// 504 Timeout.
    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Self::new(504, "Timeout", message.into())
    }

    /// An error with any code, its reason picked as Kubernetes picks it for that code.
    pub(crate) fn with_code(code: u16, message: impl Into<String>) -> Self {
        let reason = match code {
            400 => "BadRequest",
            401 => "Unauthorized",
            403 => "Forbidden",
            404 => "NotFound",
            405 => "MethodNotAllowed",
            409 => "Conflict",
            410 => "Expired",
            422 => "Invalid",
            429 => "TooManyRequests",
            503 => "ServiceUnavailable",
            504 => "Timeout",
            500..=599 => "InternalError",
            _ => "Unknown",
        };
        Self::new(code, reason, message.into())
    }

    /// The error as a Kubernetes `Status` object.
    pub fn to_status(&self) -> Value {
        let mut status = json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        });
        if let (Some(details), Value::Object(map)) = (&self.details, &mut status) {
            map.insert("details".to_owned(), details.clone());
        }
        status
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_names_the_qualified_resource() {
        let repos = ResourceType::new(
            "source.toolkit.fluxcd.io",
            "v1",
            "GitRepository",
            "gitrepositories",
        );
        let status = ApiError::not_found(&repos, "flux").to_status();
        assert_eq!(
            status["message"],
            "gitrepositories.source.toolkit.fluxcd.io \"flux\" not found"
        );
        assert_eq!(status["details"]["kind"], "gitrepositories");
        assert_eq!(status["code"], 404);
    }

    #[test]
    fn with_code_picks_kubernetes_reasons() {
        assert_eq!(
            ApiError::with_code(503, "down").reason,
            "ServiceUnavailable"
        );
        assert_eq!(
            ApiError::with_code(502, "bad gateway").reason,
            "InternalError"
        );
    }
}
