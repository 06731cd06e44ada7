//! The server driven by the real kube-rs client, as fluxhook's binaries drive it.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs, unreachable_pub)]

mod crud;
mod faults;
mod rbac;
mod seed;
mod watch;

use std::time::Duration;

use fluxhook_test_apiserver::{ResourceType, ServerOptions, TestApiServer};
use futures::{Stream, StreamExt};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};

/// Flux's GitRepository, reduced to what the tests touch.
#[derive(CustomResource, Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[kube(
    group = "source.toolkit.fluxcd.io",
    version = "v1",
    kind = "GitRepository",
    namespaced,
    status = "GitRepositoryStatus",
    schema = "disabled"
)]
pub struct GitRepositorySpec {
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<String>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct GitRepositoryStatus {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_handled_reconcile_at: Option<String>,
}

/// A server with Flux's kinds registered and bookmarks every 50 ms.
pub async fn flux_server() -> TestApiServer {
    let options = ServerOptions::default().bookmark_interval(Duration::from_millis(50));
    let server = TestApiServer::start_with(options).await.unwrap();
    for resource in ResourceType::flux() {
        server.register(resource);
    }
    server
}

/// A client configured from the server's kubeconfig, as `KUBECONFIG` would configure it.
pub async fn client(server: &TestApiServer) -> Client {
    client_with(server, |_| {}).await
}

pub async fn client_with(server: &TestApiServer, adjust: impl FnOnce(&mut kube::Config)) -> Client {
    let kubeconfig = Kubeconfig::from_yaml(&server.kubeconfig_yaml()).unwrap();
    let mut config =
        kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
            .await
            .unwrap();
    adjust(&mut config);
    Client::try_from(config).unwrap()
}

pub fn repo(name: &str, url: &str) -> GitRepository {
    GitRepository::new(
        name,
        GitRepositorySpec {
            url: url.to_owned(),
            interval: None,
        },
    )
}

/// The next item, with a generous bound so a broken server fails the test instead of hanging it.
pub async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    tokio::time::timeout(Duration::from_secs(30), stream.next())
        .await
        .expect("the stream stalled for 30 s")
        .expect("the stream ended")
}

/// Polls `condition` until it holds, bounded like [`next`].
pub async fn eventually(mut condition: impl FnMut() -> bool) {
    for _ in 0..3000 {
        if condition() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition did not hold within 30 s");
}
