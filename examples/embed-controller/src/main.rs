//! A kube-rs controller that embeds fluxhook's crates.
//!
//! It does two things a platform team's controller might add to its own:
//!
//! - **reconcile on config change**: it watches ConfigMaps labelled
//!   `example.fluxhook.io/source`, whose value names a GitRepository in the
//!   ConfigMap's namespace, and asks Flux to reconcile that GitRepository
//!   each time the ConfigMap changes ([`fluxhook_trigger::Trigger`]);
//! - **a signed webhook**: it serves `POST /github` on `LISTEN` (default
//!   `127.0.0.1:9000`), verifies GitHub's `X-Hub-Signature-256` against
//!   `WEBHOOK_SECRET` ([`fluxhook_signature::Policy::HubSignature`]) and asks Flux
//!   to reconcile the GitRepository `SOURCE` (`namespace/name`).
//!
//! Run it against a cluster with Flux installed:
//!
//! ```sh
//! WEBHOOK_SECRET=... SOURCE=flux-system/flux-system \
//!   cargo run --manifest-path examples/embed-controller/Cargo.toml
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use fluxhook_signature::Policy;
use fluxhook_trigger::{ObjectRef, Trigger};
use futures::StreamExt;
use http::{HeaderMap, StatusCode};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::runtime::controller::{Action, Controller};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};

/// The label naming the GitRepository a ConfigMap feeds.
const SOURCE_LABEL: &str = "example.fluxhook.io/source";

#[derive(Debug, thiserror::Error)]
enum Error {
    #[error("{0} is not set")]
    Missing(&'static str),
    #[error("SOURCE must be namespace/name, not {0:?}")]
    Source(String),
    #[error(transparent)]
    Kube(#[from] kube::Error),
    #[error(transparent)]
    Trigger(#[from] fluxhook_trigger::TriggerError),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// What the webhook handler needs.
struct Webhook {
    trigger: Trigger,
    secret: Vec<u8>,
    source: ObjectRef,
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let secret = std::env::var("WEBHOOK_SECRET").map_err(|_| Error::Missing("WEBHOOK_SECRET"))?;
    let source = std::env::var("SOURCE").map_err(|_| Error::Missing("SOURCE"))?;
    let (namespace, name) = source
        .split_once('/')
        .ok_or_else(|| Error::Source(source.clone()))?;
    let listen = std::env::var("LISTEN").unwrap_or_else(|_| "127.0.0.1:9000".to_owned());

    let client = Client::try_default().await?;
    let trigger = Trigger::new(client.clone());
    let webhook = Arc::new(Webhook {
        trigger: trigger.clone(),
        secret: secret.into_bytes(),
        source: ObjectRef::new("GitRepository", namespace, name),
    });
    let app = axum::Router::new()
        .route("/github", post(github))
        .with_state(webhook);
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });

    let config_maps = Api::<ConfigMap>::all(client);
    let controller = Controller::new(config_maps, watcher::Config::default().labels(SOURCE_LABEL))
        .shutdown_on_signal()
        .run(reconcile, retry, Arc::new(trigger))
        .for_each(|result| async move {
            if let Err(error) = result {
                eprintln!("reconcile failed: {error}");
            }
        });
    let (served, ()) = tokio::join!(server, controller);
    Ok(served?)
}

/// Asks Flux to reconcile the GitRepository a changed ConfigMap names.
async fn reconcile(config_map: Arc<ConfigMap>, trigger: Arc<Trigger>) -> Result<Action, Error> {
    let namespace = config_map.namespace().unwrap_or_default();
    if let Some(name) = config_map.labels().get(SOURCE_LABEL) {
        let source = ObjectRef::new("GitRepository", &namespace, name);
        let outcome = trigger.request_reconcile(&source).await?;
        println!(
            "{} changed: {} reconcile requested",
            config_map.name_any(),
            outcome.object
        );
    }
    Ok(Action::await_change())
}

fn retry(_: Arc<ConfigMap>, error: &Error, _: Arc<Trigger>) -> Action {
    eprintln!("{error}");
    Action::requeue(Duration::from_secs(30))
}

/// A GitHub delivery: verified, then Flux asked to reconcile the source.
async fn github(
    State(webhook): State<Arc<Webhook>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, String) {
    if let Err(error) = Policy::HubSignature.verify(&headers, &body, &webhook.secret) {
        // The error names the header and the problem, never the secret.
        return (StatusCode::UNAUTHORIZED, error.to_string());
    }
    match webhook.trigger.request_reconcile(&webhook.source).await {
        Ok(outcome) => (
            StatusCode::OK,
            format!("{} reconcile requested", outcome.object),
        ),
        // 500: GitHub shows the failure and the delivery can be redelivered.
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}
