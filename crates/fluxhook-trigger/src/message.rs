//! Kubernetes API errors as messages.

/// The message of a Kubernetes API error: the API server's own words (`HTTP 404: ...`) when
/// it answered, else kube's error and its causes.
pub fn kube_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => format!("HTTP {}: {}", status.code, status.message),
        other => {
            let mut text = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(cause) = source {
                text.push_str(": ");
                text.push_str(&cause.to_string());
                source = cause.source();
            }
            text
        }
    }
}

/// The HTTP status of a Kubernetes API error, when the API server answered.
pub(crate) fn kube_status(error: &kube::Error) -> Option<u16> {
    match error {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}
