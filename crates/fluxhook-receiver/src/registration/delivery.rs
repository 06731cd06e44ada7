//! Delivery health: what the hosts tell of the last deliveries of the hooks a pass kept,
//! as the [`DELIVERY_CONDITION_TYPE`](super::DELIVERY_CONDITION_TYPE) condition and Warning
//! Events. No I/O.

use fluxhook_register::{Delivery, HookId};

use super::pass::Report;
use super::record::RegisteredHook;
use super::{MAX_MESSAGE_CHARS, cut, delivery_reason, event_reason};

/// A hook a pass registered (or found in place), and what its host told of its deliveries
/// when the pass listed it.
#[derive(Debug, Clone)]
pub(crate) struct Observed {
    /// The hook as remembered on the Receiver.
    pub(crate) hook: RegisteredHook,
    /// Its id on the host.
    pub(crate) id: HookId,
    /// What the host told, if anything.
    pub(crate) delivery: Option<Delivery>,
}

impl Observed {
    /// The hook and what its host tells, for messages.
    fn describe(&self) -> String {
        let delivery = self
            .delivery
            .as_ref()
            .map_or_else(|| "no delivery yet".to_owned(), ToString::to_string);
        format!(
            "GitRepository {}: hook {} to {}: {delivery}",
            self.hook.git_repository,
            self.id,
            self.hook.describe()
        )
    }
}

/// The Warning Events of a pass: `(reason, hook, note)` for each hook whose host says its
/// deliveries fail.
pub(crate) fn warnings(observed: &[Observed]) -> Vec<(&'static str, &RegisteredHook, String)> {
    observed
        .iter()
        .filter(|o| o.delivery.as_ref().is_some_and(Delivery::is_failing))
        .map(|o| (event_reason::WEBHOOK_DELIVERY_FAILED, &o.hook, o.describe()))
        .collect()
}

/// The delivery condition after a pass that observed `observed`; `undecided` when some wanted
/// hook could not be read this pass (then, with nothing observed, the condition stays).
pub(crate) fn report(observed: &[Observed], undecided: bool) -> Report {
    let failing: Vec<String> = observed
        .iter()
        .filter(|o| o.delivery.as_ref().is_some_and(Delivery::is_failing))
        .map(Observed::describe)
        .collect();
    let known = observed.iter().any(|o| o.delivery.is_some());
    if !failing.is_empty() {
        return Report::Set {
            registered: false,
            reason: delivery_reason::FAILED,
            message: cut(&failing.join("; "), MAX_MESSAGE_CHARS),
        };
    }
    match (known, observed.is_empty() && undecided) {
        (_, true) => Report::Keep,
        (false, false) => Report::Remove,
        (true, false) => {
            let all: Vec<String> = observed.iter().map(Observed::describe).collect();
            Report::Set {
                registered: true,
                reason: delivery_reason::SUCCEEDED,
                message: cut(&all.join("; "), MAX_MESSAGE_CHARS),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]

    use fluxhook_register::{Forge, HostedRepository};
    use url::Url;

    use super::*;

    fn observed(id: &str, delivery: Option<Delivery>) -> Observed {
        let repository = HostedRepository::new(
            Forge::GITHUB,
            Url::parse("https://api.github.com").unwrap(),
            "acme",
            id,
        );
        let url = Url::parse(&format!("https://flux.example.com/hook/{id}")).unwrap();
        Observed {
            hook: RegisteredHook::new(
                &repository,
                &url,
                format!("flux-system/{id}"),
                "token".into(),
                None,
            ),
            id: HookId::new(id),
            delivery,
        }
    }

    #[test]
    fn a_failing_hook_makes_the_condition_false_and_a_warning() {
        let failing = observed(
            "a",
            Some(Delivery::Failed {
                code: Some(502),
                status: "timeout".into(),
                message: String::new(),
            }),
        );
        let fine = observed("b", Some(Delivery::Succeeded { code: 200 }));
        let unknown = observed("c", None);
        let all = [failing, fine.clone(), unknown.clone()];
        let Report::Set {
            registered,
            reason,
            message,
        } = report(&all, false)
        else {
            panic!("no condition");
        };
        assert!(!registered);
        assert_eq!(reason, delivery_reason::FAILED);
        assert!(
            message.starts_with("GitRepository flux-system/a: hook a to ")
                && message.ends_with("last delivery failed: HTTP 502 (timeout)"),
            "{message}"
        );
        let warnings = warnings(&all);
        assert_eq!(warnings.len(), 1);
        assert_eq!(warnings[0].0, event_reason::WEBHOOK_DELIVERY_FAILED);
        assert_eq!(warnings[0].2, message);

        let healthy = report(&[fine, unknown.clone()], false);
        assert!(
            matches!(&healthy, Report::Set { registered: true, reason, message }
                if *reason == delivery_reason::SUCCEEDED && message.contains("HTTP 200") && message.contains("no delivery yet")),
            "{healthy:?}"
        );
    }

    #[test]
    fn without_word_from_any_host_the_condition_goes_or_stays() {
        assert_eq!(report(&[observed("c", None)], false), Report::Remove);
        assert_eq!(report(&[], false), Report::Remove);
        // Registration failed for every hook: nothing new is known.
        assert_eq!(report(&[], true), Report::Keep);
    }
}
