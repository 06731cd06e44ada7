//! Names of the headers in which senders name their events: defined here
//! once, beside the detection and parsers that read them, and used by
//! `fluxhook_api::ReceiverType::event_header` and the webhook server.
//!
//! They are written as the senders document them; header names compare
//! case-insensitively (`HeaderMap::get` takes them as they are).
//!
//! ```
//! use fluxhook_payload::{Sender, header};
//! use http::HeaderMap;
//!
//! let mut headers = HeaderMap::new();
//! headers.insert(header::X_GITLAB_EVENT, "Push Hook".parse()?);
//! assert_eq!(Sender::detect_git_host(&headers), Some(Sender::GitLab));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

/// GitHub's event name (also sent by Gitea and Forgejo); Flux's `github`
/// receiver filters on it.
pub const X_GITHUB_EVENT: &str = "X-GitHub-Event";
/// Gitea's event name.
pub const X_GITEA_EVENT: &str = "X-Gitea-Event";
/// Forgejo's event name (sent beside Gitea's headers).
pub const X_FORGEJO_EVENT: &str = "X-Forgejo-Event";
/// Gogs' event name.
pub const X_GOGS_EVENT: &str = "X-Gogs-Event";
/// GitLab's event name (`Push Hook`...); Flux's `gitlab` receiver filters
/// on it.
pub const X_GITLAB_EVENT: &str = "X-Gitlab-Event";
/// Bitbucket Cloud's and Server's event key (`repo:push`,
/// `repo:refs_changed`...); Flux's `bitbucket` receiver filters on it.
pub const X_EVENT_KEY: &str = "X-Event-Key";
/// The CloudEvent type of a binary-mode CDEvent; Flux's `cdevents` receiver
/// filters on it.
pub const CE_TYPE: &str = "Ce-Type";

#[cfg(test)]
pub(crate) mod tests {
    use http::{HeaderMap, HeaderValue};

    /// A header map of `(name, value)` pairs, as the parsers' unit tests write deliveries.
    pub(crate) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }
}
