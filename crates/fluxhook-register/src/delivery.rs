//! What hosts tell of a hook's deliveries: in the hook itself (GitHub's `last_response`,
//! GitLab's `alert_status`), or in a log of its deliveries (GitLab 17.3+'s hook events).

use std::fmt;

/// What a host tells of the last deliveries of a hook, read with the hook
/// ([`Hook::last_delivery`](crate::Hook::last_delivery)).
///
/// ```
/// use fluxhook_register::Delivery;
///
/// let failed = Delivery::Failed { code: Some(502), status: "timeout".into(), message: String::new() };
/// assert!(failed.is_failing());
/// assert_eq!(failed.to_string(), "last delivery failed: HTTP 502 (timeout)");
/// assert!(!Delivery::Succeeded { code: 200 }.is_failing());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The receiver answered the last delivery with a success status (GitHub's
    /// `last_response.code` 2xx).
    Succeeded {
        /// The HTTP status the receiver answered.
        code: u16,
    },
    /// The last delivery failed: the receiver answered `code`, or was not reached (`None`);
    /// `status` and `message` are the host's words for it (GitHub's `last_response`).
    Failed {
        /// The HTTP status the receiver answered, if it did.
        code: Option<u16>,
        /// The host's status of the delivery (`timeout`, ...).
        status: String,
        /// The host's message, if any.
        message: String,
    },
    /// The host runs the hook: its deliveries have not failed enough for the host to disable
    /// it (GitLab's `alert_status: executable`).
    Enabled,
    /// The host disabled the hook because its deliveries failed (GitLab's `alert_status`):
    /// until the time given (`temporarily_disabled`, after 5xx answers), or until it is
    /// enabled again (`disabled`, after 4xx answers).
    Disabled {
        /// Until when (`disabled_until`), for a temporary disabling.
        until: Option<String>,
    },
}

impl Delivery {
    /// Whether the host says deliveries fail.
    pub fn is_failing(&self) -> bool {
        matches!(self, Delivery::Failed { .. } | Delivery::Disabled { .. })
    }
}

impl fmt::Display for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Delivery::Succeeded { code } => write!(f, "last delivery answered HTTP {code}"),
            Delivery::Failed {
                code,
                status,
                message,
            } => {
                f.write_str("last delivery failed")?;
                let words: Vec<&str> = [status.as_str(), message.as_str()]
                    .into_iter()
                    .filter(|word| !word.is_empty())
                    .collect();
                match (code, words.is_empty()) {
                    (Some(code), true) => write!(f, ": HTTP {code}"),
                    (Some(code), false) => write!(f, ": HTTP {code} ({})", words.join(": ")),
                    (None, true) => Ok(()),
                    (None, false) => write!(f, ": {}", words.join(": ")),
                }
            }
            Delivery::Enabled => f.write_str("enabled (alert_status executable)"),
            Delivery::Disabled { until: Some(until) } => write!(
                f,
                "disabled by the host after failed deliveries (alert_status \
                 temporarily_disabled, until {until})"
            ),
            Delivery::Disabled { until: None } => f.write_str(
                "disabled by the host after failed deliveries (alert_status disabled, until it \
                 is enabled again)",
            ),
        }
    }
}

/// What a host's log of a hook's deliveries tells ([`HookClient::newest_delivery`](crate::HookClient::newest_delivery)).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryLog {
    /// The host keeps no log this client reads: every host but GitLab, and a GitLab before
    /// 17.3 (which answers 404).
    NotKept,
    /// The host refused the token the log (403): it tells nothing to this token.
    NotAllowed,
    /// The newest delivery logged; `None` when the log holds none (GitLab keeps 7 days).
    Newest(Option<Delivery>),
}

/// Cuts a host's words to a readable length.
pub(crate) fn host_words(text: &str) -> String {
    cut(text.trim(), 200)
}

/// `text` cut to `max` characters, with an ellipsis when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => format!("{}…", text.get(..end).unwrap_or_default()),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deliveries_read_as_the_host_tells_them() {
        let failed = |code, status: &str, message: &str| Delivery::Failed {
            code,
            status: status.into(),
            message: message.into(),
        };
        assert_eq!(
            failed(Some(404), "", "").to_string(),
            "last delivery failed: HTTP 404"
        );
        assert_eq!(
            failed(Some(500), "failed", "Internal Server Error").to_string(),
            "last delivery failed: HTTP 500 (failed: Internal Server Error)"
        );
        assert_eq!(
            failed(None, "failed to connect to host", "").to_string(),
            "last delivery failed: failed to connect to host"
        );
        let until = Delivery::Disabled {
            until: Some("2026-12-02T13:00:00Z".into()),
        };
        assert!(until.is_failing() && until.to_string().contains("until 2026-12-02T13:00:00Z"));
        assert!(!Delivery::Enabled.is_failing());
        assert_eq!(host_words(&"x".repeat(300)).chars().count(), 201);
    }
}
