//! More `fluxhook-receiver` processes against the same API server: replicas of one
//! Deployment, for leader election tests.

use std::path::Path;
use std::process::ExitStatus;

use tempfile::TempDir;
use tokio::process::Child;

use crate::process::{self, ReceiverUrls};
use crate::{Sandbox, SandboxError, free_port, io};

/// A `fluxhook-receiver` started by [`Sandbox::launch_replica`]: its own ports and log, the
/// sandbox's API server.
pub struct Replica {
    name: String,
    dir: TempDir,
    child: Child,
    urls: ReceiverUrls,
    http: reqwest::Client,
}

impl Sandbox {
    /// Starts another receiver `binary` against this sandbox's API server, with `args` after
    /// the sandbox's own (loopback ports, console logs at debug) and `envs`, without waiting
    /// for it to be ready.
    ///
    /// `name` is its pod name (`HOSTNAME`, the prefix of its leader election identity) and
    /// its argv\[0\], which its User-Agent names (as client-go's does): requests in
    /// [`fluxhook_test_apiserver::RequestLog`] tell the replicas apart by
    /// [`user_agent`](fluxhook_test_apiserver::RequestRecord::user_agent).
    pub async fn launch_replica(
        &self,
        binary: impl AsRef<Path>,
        name: &str,
        args: &[&str],
        envs: &[(&str, &str)],
    ) -> Result<Replica, SandboxError> {
        let dir = tempfile::tempdir().map_err(io("create a scratch folder"))?;
        let log = std::fs::File::create(dir.path().join("receiver.log"))
            .map_err(io("create the replica's log"))?;
        let stderr = log.try_clone().map_err(io("share the replica's log"))?;
        let ports = [free_port()?, free_port()?, free_port()?];
        let mut command = process::receiver_command(binary.as_ref(), ports);
        #[cfg(unix)]
        command.arg0(name);
        let child = command
            .args(args)
            .env("KUBECONFIG", self.kubeconfig_path())
            .env("HOSTNAME", name)
            .envs(envs.iter().copied())
            .stdout(log)
            .stderr(stderr)
            .spawn()
            .map_err(io(format!("start {}", binary.as_ref().display())))?;
        Ok(Replica {
            name: name.to_string(),
            dir,
            child,
            urls: ReceiverUrls::new(ports),
            http: reqwest::Client::new(),
        })
    }
}

impl Replica {
    /// Its name (pod name and argv\[0\]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Where its servers listen.
    pub fn urls(&self) -> &ReceiverUrls {
        &self.urls
    }

    /// Whether a request's User-Agent is this replica's.
    pub fn sent(&self, user_agent: Option<&str>) -> bool {
        user_agent.is_some_and(|agent| agent.starts_with(&format!("{}/", self.name)))
    }

    process::shared_methods!(error);

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("receiver.log")).unwrap_or_default()
    }

    /// Kills it with SIGKILL, as a node failing does: no drain, no lease release.
    pub async fn kill(&mut self) -> Result<(), SandboxError> {
        self.child.kill().await.map_err(io("kill the replica"))
    }

    /// Sends SIGTERM and waits (bounded) for it to exit.
    pub async fn stop(&mut self) -> Result<ExitStatus, SandboxError> {
        process::sigterm(&self.child)
            .map_err(|trouble| trouble.into_error(|problem| self.error(problem)))?;
        let exit = process::wait_for_exit(&mut self.child, "replica").await;
        exit.map_err(|trouble| trouble.into_error(|problem| self.error(problem)))
    }

    fn error(&self, problem: String) -> SandboxError {
        SandboxError::Receiver {
            problem: format!("replica {}: {problem}", self.name),
            log: process::tail(&self.log()),
        }
    }
}
