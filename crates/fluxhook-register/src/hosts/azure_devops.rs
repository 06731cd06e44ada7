//! Azure DevOps: recognised, so that its repositories get an error saying what to do instead
//! of "unknown host". Its webhooks are service hook subscriptions of the project
//! (`/_apis/hooks/subscriptions`), not hooks of a repository, and sign nothing
//! (<https://learn.microsoft.com/azure/devops/service-hooks/services/webhooks>).

/// Whether `host` (lower-cased) serves Azure DevOps repositories: `dev.azure.com` (and
/// `ssh.dev.azure.com`), or the older `<organization>.visualstudio.com` (and
/// `vs-ssh.visualstudio.com`).
pub(crate) fn recognises(host: &str) -> bool {
    host == "dev.azure.com" || host == "ssh.dev.azure.com" || host.ends_with(".visualstudio.com")
}

/// What to do instead, for the error message.
pub(crate) const INSTEAD: &str = "Azure DevOps is not supported yet: create a Web Hooks service \
    hook (Project settings > Service hooks, event \"Code pushed\") that posts to the Receiver's \
    URL, with a Receiver of type generic (Azure DevOps signs no deliveries)";
