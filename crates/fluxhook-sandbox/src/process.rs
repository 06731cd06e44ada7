//! What the sandbox's receiver and its replicas share as processes: how they are started,
//! waited for, posted to and stopped. Each wraps what goes wrong in its own error, with its
//! own log.

use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use http::{HeaderMap, StatusCode};
use tokio::process::{Child, Command};

use crate::{DEADLINE, SandboxError, io};

/// What went wrong with a receiver process.
pub(crate) enum Trouble {
    /// The sandbox could not do its part (e.g. send a signal).
    Io(SandboxError),
    /// The process misbehaved: the caller adds its log.
    Receiver(String),
}

impl Trouble {
    /// The error, `receiver_error` making one of a misbehaving process.
    pub(crate) fn into_error(
        self,
        receiver_error: impl FnOnce(String) -> SandboxError,
    ) -> SandboxError {
        match self {
            Trouble::Io(error) => error,
            Trouble::Receiver(problem) => receiver_error(problem),
        }
    }
}

/// `fluxhook-receiver` at `binary` with its webhook, health and metric servers on loopback
/// `ports`, console logs at debug, then `args`; no stdin, killed when dropped, and never
/// mistaken for an in-cluster process.
pub(crate) fn receiver_command(binary: &Path, [receiver, health, metrics]: [u16; 3]) -> Command {
    let mut command = Command::new(binary);
    command
        .args([
            format!("--receiverAddr=127.0.0.1:{receiver}"),
            format!("--health-addr=127.0.0.1:{health}"),
            format!("--metrics-addr=127.0.0.1:{metrics}"),
            "--log-encoding=console".to_string(),
            "--log-level=debug".to_string(),
        ])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("RUNTIME_NAMESPACE")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    command
}

/// Where a receiver process of the sandbox serves: `http://127.0.0.1:<port>` of its
/// webhook, health and metric servers.
#[derive(Debug, Clone)]
pub struct ReceiverUrls {
    receiver: String,
    health: String,
    metrics: String,
}

impl ReceiverUrls {
    /// The URLs of the webhook, health and metric servers on `ports`.
    pub(crate) fn new(ports: [u16; 3]) -> Self {
        let [receiver, health, metrics] = ports.map(|port| format!("http://127.0.0.1:{port}"));
        Self {
            receiver,
            health,
            metrics,
        }
    }

    /// The webhook server.
    pub fn receiver(&self) -> &str {
        &self.receiver
    }

    /// `/healthz` and `/readyz`.
    pub fn health(&self) -> &str {
        &self.health
    }

    /// `/metrics`.
    pub fn metrics(&self) -> &str {
        &self.metrics
    }
}

/// The methods [`Sandbox`](crate::Sandbox) and [`Replica`](crate::Replica) share, written
/// once: each has the fields `child`, `http` and `urls`, and makes its own error (with its
/// log) of a misbehaving process with the method `$error`.
macro_rules! shared_methods {
    ($error:ident) => {
        /// Waits (bounded) until the receiver's `/readyz` answers 200; an error with its log
        /// if it exits first.
        pub async fn wait_until_ready(&mut self) -> Result<(), SandboxError> {
            let ready =
                process::wait_until_ready(&mut self.child, &self.http, self.urls.health()).await;
            ready.map_err(|trouble| trouble.into_error(|problem| self.$error(problem)))
        }

        /// POSTs `body` to `path` of the receiver's webhook server; the status and body of
        /// the answer.
        pub async fn post(
            &self,
            path: &str,
            headers: http::HeaderMap,
            body: Vec<u8>,
        ) -> Result<(http::StatusCode, String), SandboxError> {
            let url = format!("{}{path}", self.urls.receiver());
            process::post(&self.http, url, headers, body).await
        }
    };
}
pub(crate) use shared_methods;

/// Waits (bounded) until `/readyz` below `health_url` answers 200.
pub(crate) async fn wait_until_ready(
    child: &mut Child,
    http: &reqwest::Client,
    health_url: &str,
) -> Result<(), Trouble> {
    let readyz = format!("{health_url}/readyz");
    let started = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(Trouble::Receiver(format!(
                "exited before it was ready ({status})"
            )));
        }
        if let Ok(response) = http.get(&readyz).send().await
            && response.status().is_success()
        {
            return Ok(());
        }
        if started.elapsed() > DEADLINE {
            return Err(Trouble::Receiver(format!(
                "was not ready within {DEADLINE:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// POSTs `body` to `url`; the status and body of the answer.
pub(crate) async fn post(
    http: &reqwest::Client,
    url: String,
    headers: HeaderMap,
    body: Vec<u8>,
) -> Result<(StatusCode, String), SandboxError> {
    let response = http
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

/// Sends SIGTERM to `child`, if it still runs.
pub(crate) fn sigterm(child: &Child) -> Result<(), Trouble> {
    let Some(pid) = child.id() else {
        return Ok(());
    };
    let sent = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .map_err(|e| Trouble::Io(io("send SIGTERM")(e)))?;
    if sent.success() {
        Ok(())
    } else {
        Err(Trouble::Receiver("could not be sent SIGTERM".into()))
    }
}

/// Waits (bounded) for `child`, the `what`, to exit.
pub(crate) async fn wait_for_exit(child: &mut Child, what: &str) -> Result<ExitStatus, Trouble> {
    match tokio::time::timeout(DEADLINE, child.wait()).await {
        Ok(status) => status.map_err(|e| Trouble::Io(io(format!("wait for the {what}"))(e))),
        Err(_) => Err(Trouble::Receiver(format!(
            "did not exit within {DEADLINE:?}"
        ))),
    }
}

/// The last 40 lines of `log`, for an error.
pub(crate) fn tail(log: &str) -> String {
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
}
