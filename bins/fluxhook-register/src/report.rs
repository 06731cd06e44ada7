//! The report: a line per repository for people, or one JSON document for programs; and
//! the exit status.

use std::fmt::Write as _;

use fluxhook_register::HookId;
use serde::Serialize;

use crate::execute::{Action, Outcome};
use crate::plan::{Mode, Operation, Plan, Target};

/// Exit status when every repository is in sync, or was changed as asked.
pub(crate) const EXIT_OK: u8 = 0;
/// Exit status on any error.
pub(crate) const EXIT_ERROR: u8 = 1;
/// Exit status under `--check` when a repository is not in sync.
pub(crate) const EXIT_DRIFT: u8 = 2;

/// The exit status of a run: errors first, then drift under `--check`.
pub(crate) fn exit_status(mode: Mode, results: &[Result<Outcome, String>]) -> u8 {
    if results.iter().any(Result::is_err) {
        EXIT_ERROR
    } else if mode == Mode::Check && !all_in_sync(results) {
        EXIT_DRIFT
    } else {
        EXIT_OK
    }
}

fn all_in_sync(results: &[Result<Outcome, String>]) -> bool {
    results
        .iter()
        .all(|r| r.as_ref().is_ok_and(Outcome::in_sync))
}

fn action_name(action: Action) -> &'static str {
    match action {
        Action::Create => "create",
        Action::Update => "update",
        Action::Replace => "replace",
        Action::Unchanged => "unchanged",
        Action::Delete => "delete",
    }
}

/// The JSON report.
#[derive(Debug, Serialize)]
struct JsonReport<'a> {
    operation: &'static str,
    mode: &'static str,
    webhook_url: &'a str,
    /// Whether every repository was already as wanted (nothing to do, no error).
    in_sync: bool,
    results: Vec<JsonResult<'a>>,
}

/// One repository's result.
#[derive(Debug, Serialize)]
struct JsonResult<'a> {
    repository: Option<String>,
    git_url: Option<&'a str>,
    sources: &'a [String],
    provider: Option<&'static str>,
    api_url: Option<&'a str>,
    action: Option<&'static str>,
    applied: bool,
    hook_id: Option<&'a str>,
    deleted_hooks: Vec<&'a str>,
    error: Option<&'a str>,
}

/// The report as one JSON document.
pub(crate) fn json(plan: &Plan, results: &[Result<Outcome, String>]) -> String {
    let report = JsonReport {
        operation: match plan.operation {
            Operation::Ensure(_) => "ensure",
            Operation::Delete => "delete",
        },
        mode: match plan.mode {
            Mode::Apply => "apply",
            Mode::DryRun => "dry-run",
            Mode::Check => "check",
        },
        webhook_url: plan.webhook_url.as_str(),
        in_sync: all_in_sync(results),
        results: plan
            .targets
            .iter()
            .zip(results)
            .map(|(target, result)| json_result(target, result))
            .collect(),
    };
    // Plain strings, booleans and lists: serialising cannot fail.
    serde_json::to_string_pretty(&report).unwrap_or_default()
}

fn json_result<'a>(target: &'a Target, result: &'a Result<Outcome, String>) -> JsonResult<'a> {
    let repository = target.repository.as_ref();
    let outcome = result.as_ref().ok();
    JsonResult {
        repository: repository.map(|r| r.full_name()),
        git_url: target.git_url.as_deref(),
        sources: &target.sources,
        provider: repository.map(|r| r.forge().name()),
        api_url: repository.map(|r| r.api_base().as_str()),
        action: outcome.map(|o| action_name(o.action)),
        applied: outcome.is_some_and(|o| o.applied),
        hook_id: outcome.and_then(|o| o.hook_id.as_ref()).map(HookId::as_str),
        deleted_hooks: outcome
            .map(|o| {
                o.replaced
                    .iter()
                    .chain(&o.deleted)
                    .map(HookId::as_str)
                    .collect()
            })
            .unwrap_or_default(),
        error: result.as_ref().err().map(String::as_str),
    }
}

/// The report for people: a line per repository in sync or changed, and a summary under
/// `--dry-run` and `--check`. Failed repositories are in [`errors`].
pub(crate) fn text(plan: &Plan, results: &[Result<Outcome, String>]) -> String {
    let mut out = String::new();
    for (target, result) in plan.targets.iter().zip(results) {
        if let Ok(outcome) = result {
            // Writing to a String cannot fail.
            let _ = writeln!(
                out,
                "{}: {}",
                target_name(target),
                describe(plan.mode, outcome)
            );
        }
    }
    let changes = results
        .iter()
        .filter(|r| r.as_ref().is_ok_and(|o| !o.in_sync()))
        .count();
    let _ = match plan.mode {
        Mode::Apply => Ok(()),
        Mode::DryRun => writeln!(out, "dry run: nothing was written"),
        Mode::Check if changes == 0 => writeln!(out, "in sync"),
        Mode::Check => writeln!(
            out,
            "drift: {changes} of {} repositories not in sync",
            results.len()
        ),
    };
    out
}

/// A line per failed repository, for stderr whatever the format. The messages name the
/// host and repository themselves; the GitRepositories they come from are added.
pub(crate) fn errors(plan: &Plan, results: &[Result<Outcome, String>]) -> String {
    let mut err = String::new();
    for (target, result) in plan.targets.iter().zip(results) {
        let _ = match (result, target.sources.is_empty()) {
            (Ok(_), _) => Ok(()),
            (Err(error), true) => writeln!(err, "error: {error}"),
            (Err(error), false) => {
                writeln!(err, "error: {}: {error}", target.sources.join(", "))
            }
        };
    }
    err
}

/// `owner/repo (GitHub at host, GitRepository ns/name)`, or what is known of it.
fn target_name(target: &Target) -> String {
    let mut context: Vec<String> = Vec::new();
    let name = match &target.repository {
        Some(repository) => {
            let api = repository.api_base();
            let host = match (api.host_str(), api.port()) {
                (Some(host), Some(port)) => format!("{host}:{port}"),
                (Some(host), None) => host.to_owned(),
                (None, _) => api.to_string(),
            };
            context.push(format!("{} at {host}", repository.forge()));
            repository.full_name()
        }
        None => target.git_url.clone().unwrap_or_default(),
    };
    context.extend(target.sources.iter().cloned());
    match (name.is_empty(), context.is_empty()) {
        (_, true) => name,
        (true, false) => context.join(", "),
        (false, false) => format!("{name} ({})", context.join(", ")),
    }
}

fn replaced(outcome: &Outcome) -> &str {
    outcome.replaced.as_ref().map_or("?", HookId::as_str)
}

fn ids(ids: &[HookId]) -> String {
    ids.iter()
        .map(HookId::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// What was done, or would be, in words.
fn describe(mode: Mode, outcome: &Outcome) -> String {
    let done = mode == Mode::Apply;
    let hook = outcome
        .hook_id
        .as_ref()
        .map(|id| format!("hook {id}"))
        .unwrap_or_else(|| "a hook".to_owned());
    let mut text = match (outcome.action, done) {
        (Action::Create, true) => format!("created {hook}"),
        (Action::Create, false) => "would create a hook".to_owned(),
        (Action::Update, true) => format!("updated {hook}"),
        (Action::Update, false) => format!("would update {hook}"),
        (Action::Replace, true) => format!("replaced hook {} with {hook}", replaced(outcome)),
        (Action::Replace, false) => format!("would replace hook {}", replaced(outcome)),
        (Action::Unchanged, _) if outcome.hook_id.is_some() => format!("unchanged ({hook})"),
        (Action::Unchanged, _) => "unchanged (no hook to the URL)".to_owned(),
        (Action::Delete, true) => format!("deleted hooks {}", ids(&outcome.deleted)),
        (Action::Delete, false) => format!("would delete hooks {}", ids(&outcome.deleted)),
    };
    if outcome.action != Action::Delete && !outcome.deleted.is_empty() {
        let verb = match done {
            true => "deleted",
            false => "would delete",
        };
        let _ = write!(text, "; {verb} duplicate hooks {}", ids(&outcome.deleted));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use proptest::prelude::*;

    fn outcome(action: Action, deleted: &[&str]) -> Outcome {
        Outcome {
            action,
            applied: false,
            hook_id: Some(HookId::new("7")),
            replaced: None,
            deleted: deleted.iter().map(|i| HookId::new(*i)).collect(),
        }
    }

    #[test]
    fn descriptions_say_what_was_or_would_be_done() {
        let created = outcome(Action::Create, &[]);
        assert_eq!(describe(Mode::Apply, &created), "created hook 7");
        let planned = Outcome {
            hook_id: None,
            ..created
        };
        assert_eq!(describe(Mode::DryRun, &planned), "would create a hook");
        assert_eq!(
            describe(Mode::Check, &outcome(Action::Unchanged, &["8", "9"])),
            "unchanged (hook 7); would delete duplicate hooks 8, 9"
        );
        let deleting = Outcome {
            hook_id: None,
            ..outcome(Action::Delete, &["3", "4"])
        };
        assert_eq!(describe(Mode::Apply, &deleting), "deleted hooks 3, 4");
        assert_eq!(describe(Mode::DryRun, &deleting), "would delete hooks 3, 4");
        let replacing = Outcome {
            replaced: Some(HookId::new("2")),
            ..outcome(Action::Replace, &[])
        };
        assert_eq!(
            describe(Mode::Apply, &replacing),
            "replaced hook 2 with hook 7"
        );
        let planned = Outcome {
            hook_id: None,
            ..replacing
        };
        assert_eq!(describe(Mode::Check, &planned), "would replace hook 2");
    }

    fn any_result() -> impl Strategy<Value = Result<Outcome, String>> {
        let action = prop::sample::select(vec![
            Action::Create,
            Action::Update,
            Action::Replace,
            Action::Unchanged,
            Action::Delete,
        ]);
        let ok = (action, any::<bool>()).prop_map(|(action, duplicate)| {
            Ok(outcome(action, if duplicate { &["9"] } else { &[] }))
        });
        prop_oneof![
            ok,
            Just(Err("GitHub 127.0.0.1, repository o/r: HTTP 401".to_owned()))
        ]
    }

    proptest! {
        #[test]
        fn errors_exit_1_then_drift_exits_2_under_check_only(
            results in prop::collection::vec(any_result(), 0..6),
            mode in prop::sample::select(vec![Mode::Apply, Mode::DryRun, Mode::Check]),
        ) {
            let status = exit_status(mode, &results);
            let failed = results.iter().any(Result::is_err);
            let drift = results.iter().any(|r| r.as_ref().is_ok_and(|o| !o.in_sync()));
            let expected = match (failed, drift, mode) {
                (true, _, _) => EXIT_ERROR,
                (false, true, Mode::Check) => EXIT_DRIFT,
                _ => EXIT_OK,
            };
            prop_assert_eq!(status, expected);
        }
    }
}
