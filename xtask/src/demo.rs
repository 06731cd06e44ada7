//! `cargo xtask demo`: fluxhook's whole flow, without a cluster.
//!
//! A fake Kubernetes API seeded with a GitRepository, a Kustomization and a
//! github Receiver with its Secret; the real `fluxhook-receiver` binary
//! serving it; a signed GitHub push sent to the Receiver's webhook path; and
//! the annotation the GitRepository received, with a curl line to send the
//! push again.

use std::path::Path;

use fluxhook_sandbox::{Sandbox, demo};

pub(crate) fn run(root: &Path, args: &[String]) -> Result<(), String> {
    let once = match args {
        [] => false,
        [flag] if flag == "--once" => true,
        other => return Err(format!("demo takes only --once, not {other:?}")),
    };
    super::cargo(root, &["build", "--quiet", "--bin", "fluxhook-receiver"])?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let binary = target.join("debug").join("fluxhook-receiver");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(show(&binary, once))
}

async fn show(binary: &Path, once: bool) -> Result<(), String> {
    let mut sandbox = Sandbox::start(binary).await.map_err(|e| e.to_string())?;
    println!("fluxhook demo");
    println!(
        "  Kubernetes API (test server)  {}  (KUBECONFIG={})",
        sandbox.api().url(),
        sandbox.kubeconfig_path().display()
    );
    println!(
        "  fluxhook-receiver             {}  (health {}, metrics {}/metrics)",
        sandbox.urls().receiver(),
        sandbox.urls().health(),
        sandbox.urls().metrics()
    );

    for object in demo::objects() {
        sandbox.apply(object).map_err(|e| e.to_string())?;
    }
    println!(
        "\nSeeded {ns}: GitRepository {repo}, Kustomization my-app, Secret webhook-token, \
         Receiver {receiver} (github: ping, push).",
        ns = demo::NAMESPACE,
        repo = demo::GIT_REPOSITORY,
        receiver = demo::RECEIVER
    );
    let path = sandbox
        .wait_for_webhook_path(demo::NAMESPACE, demo::RECEIVER)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "Receiver {}/{} is Ready at\n  {path}",
        demo::NAMESPACE,
        demo::RECEIVER
    );

    let delivery = demo::github_push();
    let payload = sandbox.scratch_dir().join("push.json");
    std::fs::write(&payload, &delivery.body)
        .map_err(|e| format!("cannot write {}: {e}", payload.display()))?;
    let curl = curl_line(&sandbox, &path, &delivery, &payload);
    let (status, answer) = sandbox
        .post(&path, delivery.headers, delivery.body)
        .await
        .map_err(|e| e.to_string())?;
    println!(
        "\nSent a signed GitHub push of refs/heads/main: {status} {}",
        answer.trim()
    );
    if !status.is_success() {
        return Err(format!(
            "the receiver refused the push; its log:\n{}",
            sandbox.receiver_log()
        ));
    }

    let requested_at = sandbox
        .requested_at(
            demo::GIT_REPOSITORY_API_VERSION,
            "GitRepository",
            demo::NAMESPACE,
            demo::GIT_REPOSITORY,
        )
        .ok_or("the GitRepository received no reconcile request")?;
    println!(
        "GitRepository {}/{} was annotated:\n  reconcile.fluxcd.io/requestedAt: \"{requested_at}\"",
        demo::NAMESPACE,
        demo::GIT_REPOSITORY
    );
    println!("\nSend it again:\n  {curl}");

    if !once {
        println!("\nServing until Ctrl-C.");
        tokio::signal::ctrl_c()
            .await
            .map_err(|e| format!("cannot wait for Ctrl-C: {e}"))?;
    }
    let exit = sandbox.stop().await.map_err(|e| e.to_string())?;
    if exit.success() {
        Ok(())
    } else {
        Err(format!(
            "fluxhook-receiver exited with {exit} after SIGTERM"
        ))
    }
}

fn curl_line(sandbox: &Sandbox, path: &str, delivery: &demo::Delivery, payload: &Path) -> String {
    let headers: String = delivery
        .headers
        .iter()
        .filter_map(|(name, value)| Some(format!(" -H '{name}: {}'", value.to_str().ok()?)))
        .collect();
    format!(
        "curl -sS -X POST {}{path}{headers} --data-binary @{}",
        sandbox.urls().receiver(),
        payload.display()
    )
}
