//! kube-rs clients for the server, configured from its kubeconfig as `KUBECONFIG` would
//! configure the real binaries, and the bounded waits of the tests that drive them.

use std::future::Future;
use std::time::Duration;

use kube::config::{KubeConfigOptions, Kubeconfig, KubeconfigError};

use crate::{Identity, TestApiServer};

/// How long [`bounded`] and [`eventually`] wait before failing the test: long enough for a
/// loaded CI machine, short enough that a broken server fails rather than hangs.
pub const WAIT_BOUND: Duration = Duration::from_secs(30);

/// A kube-rs client for the server could not be configured.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server's kubeconfig was refused (never expected: the server writes it).
    #[error("the server's kubeconfig: {0}")]
    Kubeconfig(#[from] KubeconfigError),
    /// kube-rs could not build a client from the configuration.
    #[error("a kube client for the server: {0}")]
    Client(#[from] kube::Error),
}

impl TestApiServer {
    /// The kube-rs configuration of [`kubeconfig_yaml`](Self::kubeconfig_yaml) (the
    /// administrator, namespace `default`), for a test to adjust before building a client.
    pub async fn kube_config(&self) -> Result<kube::Config, ClientError> {
        self.kube_config_for(&self.admin()).await
    }

    /// The kube-rs configuration of [`kubeconfig_yaml_for`](Self::kubeconfig_yaml_for)
    /// `identity`.
    pub async fn kube_config_for(&self, identity: &Identity) -> Result<kube::Config, ClientError> {
        let kubeconfig = Kubeconfig::from_yaml(&self.kubeconfig_yaml_for(identity))?;
        Ok(kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await?)
    }

    /// A kube-rs client of [`kube_config`](Self::kube_config).
    pub async fn kube_client(&self) -> Result<kube::Client, ClientError> {
        Ok(kube::Client::try_from(self.kube_config().await?)?)
    }

    /// A kube-rs client of [`kube_config_for`](Self::kube_config_for) `identity`.
    pub async fn kube_client_for(&self, identity: &Identity) -> Result<kube::Client, ClientError> {
        Ok(kube::Client::try_from(
            self.kube_config_for(identity).await?,
        )?)
    }
}

/// Awaits `future` for at most [`WAIT_BOUND`]; panics naming `what` after that, so that a
/// test waiting on a condition that never comes fails instead of hanging.
///
/// # Panics
///
/// When `future` has not finished within [`WAIT_BOUND`].
#[allow(
    clippy::panic,
    reason = "a test's wait: the panic is the test failing, naming what it waited for"
)]
pub async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT_BOUND, future)
        .await
        .unwrap_or_else(|_| panic!("waited {} s for {what}", WAIT_BOUND.as_secs()))
}

/// Polls `condition` every 10 ms until it holds, [`bounded`].
///
/// # Panics
///
/// When `condition` does not hold within [`WAIT_BOUND`].
pub async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    bounded(what, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
}
