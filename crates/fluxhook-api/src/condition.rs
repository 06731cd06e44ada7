//! The condition types, reasons and messages Flux's notification-controller
//! sets on a Receiver's `status.conditions`.
//!
//! Flux's receiver reconciler sets `Reconciling` (reason `Progressing`) while
//! it works; on success `Ready=True` (reason `Succeeded`, message
//! [`ready_message`]) and removes `Reconciling`; when the Secret or its
//! `token` key is missing `Ready=False` (reason `TokenNotFound`) and turns the
//! `Reconciling` reason to `ProgressingWithRetry`; on an invalid
//! `resourceFilter` `Ready=False` and `Stalled=True` (reason
//! `InvalidCELExpression`).
//!
//! ```
//! use fluxhook_api::{condition, webhook_path};
//!
//! let path = webhook_path("token", "receiver", "flux-system");
//! assert_eq!(
//!     condition::ready_message(&path),
//!     format!("Receiver initialized for path: {path}")
//! );
//! assert_eq!(condition::READY, "Ready");
//! assert_eq!(condition::reason::PROGRESSING_WITH_RETRY, "ProgressingWithRetry");
//! ```

use crate::webhook::WebhookPath;

/// Condition type: the Receiver serves its webhook path.
pub const READY: &str = "Ready";
/// Condition type: a reconciliation is under way.
pub const RECONCILING: &str = "Reconciling";
/// Condition type: reconciliation cannot progress until the spec changes.
pub const STALLED: &str = "Stalled";

/// The message of `Reconciling` while a reconciliation is under way.
pub const RECONCILING_MESSAGE: &str = "Reconciliation in progress";

/// Condition reasons.
pub mod reason {
    /// `Ready=True`: the webhook path is computed and served.
    pub const SUCCEEDED: &str = "Succeeded";
    /// Reason of the Warning event Flux emits when a reconciliation fails.
    pub const FAILED: &str = "Failed";
    /// `Reconciling=True` on a first attempt.
    pub const PROGRESSING: &str = "Progressing";
    /// `Reconciling=True` after a failed attempt that will be retried.
    pub const PROGRESSING_WITH_RETRY: &str = "ProgressingWithRetry";
    /// `Ready=False`: the Secret, or its `token` key, cannot be read.
    pub const TOKEN_NOT_FOUND: &str = "TokenNotFound";
    /// `Ready=False` and `Stalled=True`: `resourceFilter` does not compile.
    pub const INVALID_CEL_EXPRESSION: &str = "InvalidCELExpression";
    /// Part of the spec cannot be validated. Flux's CRD refuses unknown
    /// `spec.type` values, so Flux has no reason of its own for them; this is
    /// its general reason for a spec it cannot use.
    pub const VALIDATION_FAILED: &str = "ValidationFailed";
}

/// The message of `Ready=True`: `Receiver initialized for path: <path>`.
pub fn ready_message(path: &WebhookPath) -> String {
    format!("Receiver initialized for path: {path}")
}
