//! The status Flux's notification-controller writes for each outcome of a
//! reconciliation, computed without I/O.

use fluxhook_api::{ReceiverStatus, WebhookPath, condition};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

use crate::endpoint::ReceiverKey;
use crate::registration::Report;

/// fluxhook's `Ready` (and `Stalled`) reason for a Receiver whose webhook path another
/// Receiver, which takes precedence, is served at. Flux has none: it serves either.
pub(crate) const WEBHOOK_PATH_CONFLICT: &str = "WebhookPathConflict";

/// The prefix Flux gives the message of a failure that retrying cannot fix.
const STALLED_PREFIX: &str = "Reconciliation failed terminally due to configuration error";

/// The message of a failure that retrying cannot fix, as Flux words it.
fn stalled_message(detail: &str) -> String {
    format!("{STALLED_PREFIX}: {detail}")
}

/// What a reconciliation found, as far as the status is concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Served at `path`: `Ready=True`; the `rivals` claim the same path and are not served.
    Ready {
        path: WebhookPath,
        rivals: Vec<ReceiverKey>,
    },
    /// Its path serves another Receiver, `served`: `Ready=False`, `Stalled=True`, until one
    /// of them changes or goes.
    Conflict {
        path: WebhookPath,
        served: ReceiverKey,
    },
    /// The Secret or one of its keys is missing: `Ready=False`, retried.
    TokenNotFound {
        /// What to fix.
        message: String,
    },
    /// The spec cannot be served until it changes: `Ready=False`, `Stalled=True`.
    Stalled {
        /// The `Ready` reason.
        reason: &'static str,
        /// What to fix; the message gets Flux's prefix for terminal failures.
        message: String,
    },
    /// `spec.suspend`: Flux leaves the conditions alone.
    Suspended,
}

impl Outcome {
    /// The message of the `Ready` condition this outcome sets, if it sets one.
    pub(crate) fn ready_message(&self) -> Option<String> {
        match self {
            Self::Ready { path, rivals } => Some(ready_message(path, rivals)),
            Self::Conflict { path, served } => {
                Some(stalled_message(&conflict_message(path, served)))
            }
            Self::TokenNotFound { message } => Some(message.clone()),
            Self::Stalled { message, .. } => Some(stalled_message(message)),
            Self::Suspended => None,
        }
    }
}

/// Flux's `Ready` message, and the Receivers that claim the same path without being served.
fn ready_message(path: &WebhookPath, rivals: &[ReceiverKey]) -> String {
    let message = condition::ready_message(path);
    match rivals {
        [] => message,
        [rival] => format!(
            "{message}; Receiver {rival} has the same path and is not served: give one of them \
             another name or token"
        ),
        rivals => {
            let rivals: Vec<String> = rivals.iter().map(ToString::to_string).collect();
            format!(
                "{message}; Receivers {} have the same path and are not served: give them other \
                 names or tokens",
                rivals.join(", ")
            )
        }
    }
}

/// Why a Receiver whose path serves another one is not served.
fn conflict_message(path: &WebhookPath, served: &ReceiverKey) -> String {
    format!(
        "webhook path {path} is also the path of Receiver {served}, which is served there \
         (the Receiver created first is): give this Receiver another name or token"
    )
}

/// What a Receiver's metadata says about this reconciliation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Observed<'a> {
    /// `metadata.generation`.
    pub(crate) generation: Option<i64>,
    /// The `reconcile.fluxcd.io/requestedAt` annotation.
    pub(crate) requested_at: Option<&'a str>,
    /// The time to record on conditions that change.
    pub(crate) now: &'a Time,
}

/// The status Flux would leave after a reconciliation with this `outcome`,
/// starting from `current`. Conditions whose status, reason and message stay
/// the same keep their `lastTransitionTime`, so reconciling twice with the
/// same outcome gives the same status and needs no write.
pub(crate) fn next_status(
    current: &ReceiverStatus,
    outcome: &Outcome,
    observed: Observed<'_>,
) -> ReceiverStatus {
    let mut status = current.clone();
    let mut conditions = Conditions {
        list: current.conditions.clone().unwrap_or_default(),
        observed,
    };
    match outcome {
        Outcome::Ready { path, rivals } => {
            conditions.remove(condition::STALLED);
            conditions.set(
                condition::READY,
                true,
                condition::reason::SUCCEEDED,
                &ready_message(path, rivals),
            );
            status.webhook_path = Some(path.to_string());
        }
        Outcome::Conflict { path, served } => {
            let message = stalled_message(&conflict_message(path, served));
            conditions.set(condition::READY, false, WEBHOOK_PATH_CONFLICT, &message);
            conditions.remove(condition::RECONCILING);
            conditions.set(condition::STALLED, true, WEBHOOK_PATH_CONFLICT, &message);
            // The path leads to the other Receiver.
            status.webhook_path = None;
            status.observed_generation = observed.generation;
        }
        Outcome::TokenNotFound { message } => {
            conditions.remove(condition::STALLED);
            conditions.set(
                condition::RECONCILING,
                true,
                condition::reason::PROGRESSING_WITH_RETRY,
                condition::RECONCILING_MESSAGE,
            );
            conditions.set(
                condition::READY,
                false,
                condition::reason::TOKEN_NOT_FOUND,
                message,
            );
            status.webhook_path = None;
        }
        Outcome::Stalled { reason, message } => {
            let message = stalled_message(message);
            conditions.set(condition::READY, false, reason, &message);
            conditions.remove(condition::RECONCILING);
            conditions.set(condition::STALLED, true, reason, &message);
            status.observed_generation = observed.generation;
        }
        Outcome::Suspended => {}
    }
    if let Some(requested_at) = observed.requested_at {
        status.last_handled_reconcile_at = Some(requested_at.to_string());
    }
    if conditions.is_true(condition::READY) {
        conditions.remove(condition::RECONCILING);
        status.observed_generation = observed.generation;
    }
    status.conditions = conditions.into_sorted();
    status
}

/// `status` with a condition of fluxhook's own, beside Flux's, set or removed as `report`
/// says; its transition time moves as Flux's conditions' do, so the same report twice needs
/// no write.
pub(crate) fn with_condition(
    status: ReceiverStatus,
    type_: &str,
    report: &Report,
    observed: Observed<'_>,
) -> ReceiverStatus {
    let mut conditions = Conditions {
        list: status.conditions.clone().unwrap_or_default(),
        observed,
    };
    match report {
        Report::Keep => return status,
        Report::Remove => conditions.remove(type_),
        Report::Set {
            registered,
            reason,
            message,
        } => conditions.set(type_, *registered, reason, message),
    }
    ReceiverStatus {
        conditions: conditions.into_sorted(),
        ..status
    }
}

struct Conditions<'a> {
    list: Vec<Condition>,
    observed: Observed<'a>,
}

impl Conditions<'_> {
    /// Sets a condition as Flux's `conditions.Set` does: the transition time
    /// moves only when status, reason or message change; the observed
    /// generation always follows the object's.
    fn set(&mut self, type_: &str, status: bool, reason: &str, message: &str) {
        let status = if status { "True" } else { "False" };
        let unchanged =
            |c: &Condition| c.status == status && c.reason == reason && c.message == message;
        let last_transition_time = match self.list.iter().find(|c| c.type_ == type_) {
            Some(existing) if unchanged(existing) => existing.last_transition_time.clone(),
            _ => self.observed.now.clone(),
        };
        let condition = Condition {
            type_: type_.to_string(),
            status: status.to_string(),
            reason: reason.to_string(),
            message: message.to_string(),
            observed_generation: self.observed.generation,
            last_transition_time,
        };
        match self.list.iter_mut().find(|c| c.type_ == type_) {
            Some(existing) => *existing = condition,
            None => self.list.push(condition),
        }
    }

    fn remove(&mut self, type_: &str) {
        self.list.retain(|c| c.type_ != type_);
    }

    fn is_true(&self, type_: &str) -> bool {
        self.list
            .iter()
            .any(|c| c.type_ == type_ && c.status == "True")
    }

    /// The conditions in Flux's order: `Stalled`, `Reconciling`, `Ready`,
    /// then the others by type; `None` when there are none.
    fn into_sorted(mut self) -> Option<Vec<Condition>> {
        let rank = |c: &Condition| match c.type_.as_str() {
            condition::STALLED => 0,
            condition::RECONCILING => 1,
            condition::READY => 2,
            _ => 3,
        };
        self.list
            .sort_by(|a, b| rank(a).cmp(&rank(b)).then_with(|| a.type_.cmp(&b.type_)));
        (!self.list.is_empty()).then_some(self.list)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use fluxhook_api::webhook_path;
    use k8s_openapi::jiff::Timestamp;
    use proptest::prelude::*;

    use super::*;

    fn at(second: i64) -> Time {
        Time(Timestamp::from_second(second).unwrap())
    }

    /// The status of a Receiver served after its first reconciliation (generation 1, at
    /// second 100).
    fn first_ready() -> ReceiverStatus {
        next_status(
            &ReceiverStatus::default(),
            &Outcome::Ready {
                path: webhook_path("token", "receiver", "flux-system"),
                rivals: vec![],
            },
            observe(1, &at(100)),
        )
    }

    fn observe(generation: i64, now: &Time) -> Observed<'_> {
        Observed {
            generation: Some(generation),
            requested_at: None,
            now,
        }
    }

    fn types(status: &ReceiverStatus) -> Vec<(&str, &str, &str)> {
        status
            .conditions
            .iter()
            .flatten()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str()))
            .collect()
    }

    #[test]
    fn ready_sets_path_condition_and_generation() {
        let path = webhook_path("token", "receiver", "flux-system");
        let now = at(100);
        let status = next_status(
            &ReceiverStatus::default(),
            &Outcome::Ready {
                path: path.clone(),
                rivals: vec![],
            },
            observe(3, &now),
        );
        assert_eq!(status.webhook_path.as_deref(), Some(path.as_str()));
        assert_eq!(status.observed_generation, Some(3));
        assert_eq!(types(&status), [("Ready", "True", "Succeeded")]);
        let ready = status.condition("Ready").unwrap();
        assert_eq!(ready.message, condition::ready_message(&path));
        assert_eq!(ready.observed_generation, Some(3));
        assert_eq!(ready.last_transition_time, now);
    }

    #[test]
    fn token_not_found_retries_and_clears_the_path() {
        let ready = first_ready();
        let failed = next_status(
            &ready,
            &Outcome::TokenNotFound {
                message: "no Secret".into(),
            },
            observe(2, &at(200)),
        );
        assert_eq!(failed.webhook_path, None);
        // As in Flux, a failure that will be retried does not observe the generation.
        assert_eq!(failed.observed_generation, Some(1));
        assert_eq!(
            types(&failed),
            [
                ("Reconciling", "True", "ProgressingWithRetry"),
                ("Ready", "False", "TokenNotFound")
            ]
        );
        assert_eq!(failed.condition("Ready").unwrap().message, "no Secret");
    }

    #[test]
    fn stalled_observes_the_generation_and_keeps_the_path() {
        let path = webhook_path("token", "receiver", "flux-system");
        let ready = first_ready();
        let stalled = next_status(
            &ready,
            &Outcome::Stalled {
                reason: condition::reason::INVALID_CEL_EXPRESSION,
                message: "spec.resourceFilter: bad".into(),
            },
            observe(2, &at(200)),
        );
        assert_eq!(stalled.webhook_path.as_deref(), Some(path.as_str()));
        assert_eq!(stalled.observed_generation, Some(2));
        assert_eq!(
            types(&stalled),
            [
                ("Stalled", "True", "InvalidCELExpression"),
                ("Ready", "False", "InvalidCELExpression")
            ]
        );
        assert_eq!(
            stalled.condition("Stalled").unwrap().message,
            "Reconciliation failed terminally due to configuration error: spec.resourceFilter: bad"
        );
        let recovered = next_status(
            &stalled,
            &Outcome::Ready {
                path,
                rivals: vec![],
            },
            observe(3, &at(300)),
        );
        assert_eq!(types(&recovered), [("Ready", "True", "Succeeded")]);
    }

    #[test]
    fn colliding_paths_are_reported_on_both_receivers() {
        let path = webhook_path("", "ab", "c");
        let key = |namespace: &str, name: &str| ReceiverKey {
            namespace: namespace.into(),
            name: name.into(),
        };
        let served = next_status(
            &ReceiverStatus::default(),
            &Outcome::Ready {
                path: path.clone(),
                rivals: vec![key("bc", "a")],
            },
            observe(1, &at(100)),
        );
        assert_eq!(types(&served), [("Ready", "True", "Succeeded")]);
        assert_eq!(
            served.condition("Ready").unwrap().message,
            format!(
                "Receiver initialized for path: {path}; Receiver bc/a has the same path and is \
                 not served: give one of them another name or token"
            )
        );
        let refused = next_status(
            &served,
            &Outcome::Conflict {
                path: path.clone(),
                served: key("c", "ab"),
            },
            observe(2, &at(200)),
        );
        assert_eq!(
            types(&refused),
            [
                ("Stalled", "True", "WebhookPathConflict"),
                ("Ready", "False", "WebhookPathConflict")
            ]
        );
        assert_eq!(refused.webhook_path, None);
        assert_eq!(refused.observed_generation, Some(2));
        assert!(
            refused
                .condition("Ready")
                .unwrap()
                .message
                .contains("is also the path of Receiver c/ab")
        );
    }

    #[test]
    fn suspended_keeps_conditions_and_records_the_request() {
        let ready = first_ready();
        let now = at(200);
        let suspended = next_status(
            &ready,
            &Outcome::Suspended,
            Observed {
                generation: Some(2),
                requested_at: Some("2024-01-01T00:00:00Z"),
                now: &now,
            },
        );
        assert_eq!(suspended.conditions, ready.conditions);
        assert_eq!(suspended.observed_generation, Some(2));
        assert_eq!(
            suspended.last_handled_reconcile_at.as_deref(),
            Some("2024-01-01T00:00:00Z")
        );
        let fresh = next_status(
            &ReceiverStatus::default(),
            &Outcome::Suspended,
            observe(1, &now),
        );
        assert_eq!(fresh, ReceiverStatus::default());
    }

    #[test]
    fn foreign_conditions_are_kept_after_flux_ones() {
        let foreign = Condition {
            type_: "Audited".into(),
            status: "True".into(),
            reason: "Checked".into(),
            message: String::new(),
            observed_generation: None,
            last_transition_time: at(5),
        };
        let current = ReceiverStatus {
            conditions: Some(vec![foreign.clone()]),
            ..ReceiverStatus::default()
        };
        let status = next_status(
            &current,
            &Outcome::TokenNotFound {
                message: "m".into(),
            },
            observe(1, &at(100)),
        );
        let conditions = status.conditions.unwrap();
        assert_eq!(conditions.last(), Some(&foreign));
        assert_eq!(conditions.len(), 3);
    }

    #[test]
    fn own_conditions_are_set_and_removed_beside_flux_ones() {
        let ready = first_ready();
        let report = Report::Set {
            registered: false,
            reason: "RegistrationFailed",
            message: "m".into(),
        };
        let failed = with_condition(
            ready.clone(),
            "WebhooksRegistered",
            &report,
            observe(1, &at(200)),
        );
        assert_eq!(
            types(&failed),
            [
                ("Ready", "True", "Succeeded"),
                ("WebhooksRegistered", "False", "RegistrationFailed")
            ]
        );
        let again = with_condition(
            failed.clone(),
            "WebhooksRegistered",
            &report,
            observe(1, &at(300)),
        );
        assert_eq!(again, failed);
        let kept = with_condition(
            failed.clone(),
            "WebhooksRegistered",
            &Report::Keep,
            observe(1, &at(300)),
        );
        assert_eq!(kept, failed);
        let removed = with_condition(
            failed,
            "WebhooksRegistered",
            &Report::Remove,
            observe(1, &at(300)),
        );
        assert_eq!(removed, ready);
    }

    fn outcome() -> impl Strategy<Value = Outcome> {
        let path = (0u8..3).prop_map(|n| webhook_path(&n.to_string(), "r", "ns"));
        prop_oneof![
            path.clone().prop_map(|path| Outcome::Ready {
                path,
                rivals: vec![]
            }),
            path.clone().prop_map(|path| Outcome::Ready {
                path,
                rivals: vec![ReceiverKey {
                    namespace: "bc".into(),
                    name: "a".into()
                }]
            }),
            path.prop_map(|path| Outcome::Conflict {
                path,
                served: ReceiverKey {
                    namespace: "c".into(),
                    name: "ab".into()
                }
            }),
            "[ab]".prop_map(|message| Outcome::TokenNotFound { message }),
            (
                prop_oneof![
                    Just(condition::reason::INVALID_CEL_EXPRESSION),
                    Just(condition::reason::VALIDATION_FAILED)
                ],
                "[ab]"
            )
                .prop_map(|(reason, message)| Outcome::Stalled { reason, message }),
            Just(Outcome::Suspended),
        ]
    }

    proptest! {
        /// Whatever happened before, reconciling again with the same outcome
        /// changes nothing, so the controller writes no status and is not
        /// woken by its own write.
        #[test]
        fn the_same_outcome_twice_changes_nothing(
            history in prop::collection::vec((outcome(), 1i64..4), 0..6),
            last in outcome(),
            generation in 1i64..4,
        ) {
            let mut status = ReceiverStatus::default();
            for (second, (outcome, generation)) in (0i64..).zip(&history) {
                status = next_status(&status, outcome, observe(*generation, &at(second)));
            }
            let once = next_status(&status, &last, observe(generation, &at(1000)));
            let twice = next_status(&once, &last, observe(generation, &at(2000)));
            prop_assert_eq!(&once, &twice);
        }

        /// A condition's transition time moves exactly when its status,
        /// reason or message does.
        #[test]
        fn transition_times_move_only_with_the_state(
            first in outcome(),
            second in outcome(),
        ) {
            let before = next_status(&ReceiverStatus::default(), &first, observe(1, &at(10)));
            let after = next_status(&before, &second, observe(2, &at(20)));
            for condition in after.conditions.iter().flatten() {
                let earlier = before.condition(&condition.type_);
                let same_state = earlier.is_some_and(|e| {
                    e.status == condition.status && e.reason == condition.reason && e.message == condition.message
                });
                let expected = if same_state { at(10) } else { at(20) };
                prop_assert_eq!(&condition.last_transition_time, &expected);
            }
        }
    }
}
