//! The server driven by the real kube-rs client, as fluxhook's binaries drive it.

#![allow(clippy::unwrap_used, clippy::panic, missing_docs, unreachable_pub)]

mod crud;
mod faults;
mod rbac;
mod seed;
mod watch;

use std::time::Duration;

use fluxhook_test_apiserver::{ServerOptions, TestApiServer, bounded};
use futures::{Stream, StreamExt};
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, CustomResource};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
    let options = ServerOptions::default()
        .bookmark_interval(Duration::from_millis(50))
        .flux();
    TestApiServer::start_with(options).await.unwrap()
}

/// A client configured from the server's kubeconfig, as `KUBECONFIG` would configure it.
pub async fn client(server: &TestApiServer) -> Client {
    client_with(server, |_| {}).await
}

pub async fn client_with(server: &TestApiServer, adjust: impl FnOnce(&mut kube::Config)) -> Client {
    let mut config = server.kube_config().await.unwrap();
    adjust(&mut config);
    Client::try_from(config).unwrap()
}

/// A [`flux_server`], a [`client`] for it, and its GitRepositories in `default`.
pub async fn default_repos() -> (TestApiServer, Client, Api<GitRepository>) {
    let server = flux_server().await;
    let client = client(&server).await;
    let repos = Api::namespaced(client.clone(), "default");
    (server, client, repos)
}

/// Creates the GitRepository `name` of `url` through `repos`.
pub async fn create_repo(repos: &Api<GitRepository>, name: &str, url: &str) -> GitRepository {
    repos
        .create(&PostParams::default(), &repo(name, url))
        .await
        .unwrap()
}

/// Merge-patches the GitRepository `name` through `repos`; the stored object.
pub async fn merge(repos: &Api<GitRepository>, name: &str, patch: &Value) -> GitRepository {
    repos
        .patch(name, &PatchParams::default(), &Patch::Merge(patch))
        .await
        .unwrap()
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

/// The next item, [`bounded`] so a broken server fails the test instead of hanging it.
pub async fn next<S: Stream + Unpin>(stream: &mut S) -> S::Item {
    bounded("the stream's next item", stream.next())
        .await
        .expect("the stream ended")
}
