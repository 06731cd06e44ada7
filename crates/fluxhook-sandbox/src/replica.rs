//! More `fluxhook-receiver` processes against the same API server: replicas of one
//! Deployment, for leader election tests.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use tempfile::TempDir;
use tokio::process::{Child, Command};

use crate::{DEADLINE, Sandbox, SandboxError, free_port, io};

/// A `fluxhook-receiver` started by [`Sandbox::launch_replica`]: its own ports and log, the
/// sandbox's API server.
pub struct Replica {
    name: String,
    dir: TempDir,
    child: Child,
    receiver_url: String,
    health_url: String,
    metrics_url: String,
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
        let [receiver, health, metrics] = [free_port()?, free_port()?, free_port()?];
        let mut command = Command::new(binary.as_ref());
        #[cfg(unix)]
        command.arg0(name);
        let child = command
            .args([
                format!("--receiverAddr=127.0.0.1:{receiver}"),
                format!("--health-addr=127.0.0.1:{health}"),
                format!("--metrics-addr=127.0.0.1:{metrics}"),
                "--log-encoding=console".to_string(),
                "--log-level=debug".to_string(),
            ])
            .args(args)
            .env("KUBECONFIG", self.kubeconfig_path())
            .env("HOSTNAME", name)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("RUNTIME_NAMESPACE")
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(stderr)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("start {}", binary.as_ref().display())))?;
        Ok(Replica {
            name: name.to_string(),
            dir,
            child,
            receiver_url: format!("http://127.0.0.1:{receiver}"),
            health_url: format!("http://127.0.0.1:{health}"),
            metrics_url: format!("http://127.0.0.1:{metrics}"),
            http: reqwest::Client::new(),
        })
    }
}

impl Replica {
    /// Its name (pod name and argv\[0\]).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `http://127.0.0.1:<port>` of its webhook server.
    pub fn receiver_url(&self) -> &str {
        &self.receiver_url
    }

    /// `http://127.0.0.1:<port>` of its `/healthz` and `/readyz`.
    pub fn health_url(&self) -> &str {
        &self.health_url
    }

    /// `http://127.0.0.1:<port>` of its `/metrics`.
    pub fn metrics_url(&self) -> &str {
        &self.metrics_url
    }

    /// Whether a request's User-Agent is this replica's.
    pub fn sent(&self, user_agent: Option<&str>) -> bool {
        user_agent.is_some_and(|agent| agent.starts_with(&format!("{}/", self.name)))
    }

    /// Waits (bounded) until its `/readyz` answers 200; an error with its log if it exits
    /// first.
    pub async fn wait_until_ready(&mut self) -> Result<(), SandboxError> {
        let readyz = format!("{}/readyz", self.health_url);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(self.error(format!("exited before it was ready ({status})")));
            }
            if let Ok(response) = self.http.get(&readyz).send().await
                && response.status().is_success()
            {
                return Ok(());
            }
            if started.elapsed() > DEADLINE {
                return Err(self.error(format!("was not ready within {DEADLINE:?}")));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs `body` to `path` of its webhook server; the status and body of the answer.
    pub async fn post(
        &self,
        path: &str,
        headers: HeaderMap,
        body: Vec<u8>,
    ) -> Result<(StatusCode, String), SandboxError> {
        let url = format!("{}{path}", self.receiver_url);
        let response = self
            .http
            .post(&url)
            .headers(headers)
            .body(body)
            .send()
            .await
            .map_err(|source| SandboxError::Http {
                url: url.clone(),
                source,
            })?;
        let status = response.status();
        let text = response
            .text()
            .await
            .map_err(|source| SandboxError::Http { url, source })?;
        Ok((status, text))
    }

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
        if let Some(pid) = self.child.id() {
            let sent = std::process::Command::new("kill")
                .args(["-TERM", &pid.to_string()])
                .status()
                .map_err(io("send SIGTERM"))?;
            if !sent.success() {
                return Err(self.error("could not be sent SIGTERM".into()));
            }
        }
        match tokio::time::timeout(DEADLINE, self.child.wait()).await {
            Ok(status) => status.map_err(io("wait for the replica")),
            Err(_) => Err(self.error(format!("did not exit within {DEADLINE:?}"))),
        }
    }

    fn error(&self, problem: String) -> SandboxError {
        let log = self.log();
        let tail: Vec<&str> = log.lines().rev().take(40).collect();
        SandboxError::Receiver {
            problem: format!("replica {}: {problem}", self.name),
            log: tail.into_iter().rev().collect::<Vec<_>>().join("\n"),
        }
    }
}
