//! Carrying out a plan, repository by repository: one failure does not stop the others.

use fluxhook_register::{Change, HookClient, HookId, RegisterError};
use url::Url;

use crate::plan::{Mode, Operation, Plan, Target};

/// What was (or would be) done to a repository's hooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// A hook created.
    Create,
    /// A hook updated.
    Update,
    /// A hook an edit cannot make right deleted, and a new one created.
    Replace,
    /// Nothing to do to the hook kept (or, when deleting, no hook to delete).
    Unchanged,
    /// Hooks to the URL deleted.
    Delete,
}

/// The result for one repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// What was or would be done.
    pub(crate) action: Action,
    /// Whether anything was written.
    pub(crate) applied: bool,
    /// The hook to the URL kept (none when one would be created, or when deleting).
    pub(crate) hook_id: Option<HookId>,
    /// The hook replaced (deleted to make way for a new one), for [`Action::Replace`].
    pub(crate) replaced: Option<HookId>,
    /// Hooks to the URL deleted, or that would be: duplicates, or all of them when deleting.
    pub(crate) deleted: Vec<HookId>,
}

impl Outcome {
    /// Whether the repository already was as wanted.
    pub(crate) fn in_sync(&self) -> bool {
        self.action == Action::Unchanged && self.deleted.is_empty()
    }
}

/// Runs the plan: one result per target, in order.
pub(crate) async fn execute(plan: &Plan) -> Vec<Result<Outcome, String>> {
    let mut results = Vec::with_capacity(plan.targets.len());
    for target in &plan.targets {
        let result = match &target.client {
            Ok(client) => run(client, target, plan)
                .await
                .map_err(|error| error.to_string()),
            Err(error) => Err(error.clone()),
        };
        results.push(result);
    }
    results
}

async fn run(client: &HookClient, target: &Target, plan: &Plan) -> Result<Outcome, RegisterError> {
    let write = plan.mode == Mode::Apply;
    match &plan.operation {
        Operation::Ensure(desired) if write => {
            let ensured = client.ensure(&target.desired(desired)).await?;
            let action = action_of(ensured.change);
            Ok(Outcome {
                action,
                applied: action != Action::Unchanged || !ensured.removed_duplicates.is_empty(),
                hook_id: Some(ensured.hook_id),
                replaced: ensured.replaced,
                deleted: ensured.removed_duplicates,
            })
        }
        Operation::Ensure(desired) => {
            let planned = client.plan_ensure(&target.desired(desired)).await?;
            let action = action_of(planned.change);
            let (hook_id, replaced) = match action {
                Action::Replace => (None, planned.hook_id),
                _ => (planned.hook_id, None),
            };
            Ok(Outcome {
                action,
                applied: false,
                hook_id,
                replaced,
                deleted: planned.duplicates,
            })
        }
        Operation::Delete => delete(client, &plan.webhook_url, write).await,
    }
}

fn action_of(change: Change) -> Action {
    match change {
        Change::Created => Action::Create,
        Change::Updated => Action::Update,
        Change::Replaced => Action::Replace,
        // Unchanged, and any change a newer library may report: nothing is claimed.
        _ => Action::Unchanged,
    }
}

/// Deletes (when `write`) every hook to `url`.
async fn delete(client: &HookClient, url: &Url, write: bool) -> Result<Outcome, RegisterError> {
    let ids = match write {
        true => client.delete_hooks_to(url).await?,
        false => client.hooks_to(url).await?,
    };
    Ok(Outcome {
        action: match ids.is_empty() {
            true => Action::Unchanged,
            false => Action::Delete,
        },
        applied: write && !ids.is_empty(),
        hook_id: None,
        replaced: None,
        deleted: ids,
    })
}
