//! Running the built `fluxhook-register` against fake Git hosts on 127.0.0.1.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fluxhook_api::webhook_path;
use fluxhook_register::Forge;
use fluxhook_test_apiserver::{Identity, TestApiServer, fixtures};
use fluxhook_test_githost::{FakeConfig, FakeHost, HostKind};
use serde_json::{Value, json};

/// The Receiver URL the hooks deliver to (never called: the fakes deliver nothing).
pub const WEBHOOK_URL: &str = "https://flux-webhook.example.com/hook/5a1b0c";

/// The webhook secret the tests register.
pub const SECRET: &str = "receiver-secret-value-4711";

/// What a run of the binary left.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs the real binary with only the environment given (no token leaks in from outside).
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_fluxhook-register"))
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    Run {
        status: output.status.code().unwrap(),
        stdout: String::from_utf8(output.stdout).unwrap(),
        stderr: String::from_utf8(output.stderr).unwrap(),
    }
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "fluxhook-register-cli-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    /// Writes `contents` to `name` in the directory; returns its path.
    pub fn write(&self, name: &str, contents: &str) -> String {
        let path = self.0.join(name);
        std::fs::write(&path, contents).unwrap();
        path.to_str().unwrap().to_owned()
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The provider the binary sees a fake as.
pub fn provider(kind: HostKind) -> Forge {
    kind.name().parse().unwrap()
}

/// The variable the binary reads a fake's token from.
pub fn token_var(kind: HostKind) -> &'static str {
    provider(kind).token_variables()[0]
}

/// The clone URL of a fake's repository, as a GitRepository would name it.
pub fn git_url(host: &FakeHost) -> String {
    match host.kind() {
        HostKind::BitbucketServer => {
            format!("{}/scm/{}/{}.git", host.url(), host.owner(), host.repo())
        }
        _ => format!("{}/{}/{}.git", host.url(), host.owner(), host.repo()),
    }
}

/// A fake host, a secret file, and the arguments that reach them.
pub struct Hosted {
    pub host: FakeHost,
    pub dir: TempDir,
    pub secret_file: String,
}

impl Hosted {
    pub async fn start(kind: HostKind) -> Hosted {
        let host = FakeHost::start(kind).await.unwrap();
        let dir = TempDir::new();
        let secret_file = dir.write("secret", &format!("{SECRET}\n"));
        Hosted {
            host,
            dir,
            secret_file,
        }
    }

    /// `--repo ... --webhook-url ... --provider ... --api-url ... --allow-http`, then `extra`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--repo".into(),
            git_url(&self.host),
            "--webhook-url".into(),
            WEBHOOK_URL.into(),
            "--provider".into(),
            self.host.kind().name().into(),
            "--api-url".into(),
            self.host.api_base(),
            "--allow-http".into(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args
    }

    /// Runs with `args(extra)` and the fake's token in the provider's variable.
    pub async fn run(&self, extra: &[&str]) -> Run {
        let args = self.args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run(&args, &[(token_var(self.host.kind()), self.host.token())]).await
    }

    /// Runs with the webhook secret from `--secret-file`.
    pub async fn run_with_secret(&self, extra: &[&str]) -> Run {
        let mut all = vec!["--secret-file", self.secret_file.as_str()];
        all.extend_from_slice(extra);
        self.run(&all).await
    }
}

/// Where the `--receiver` tests' Receiver and its objects live.
pub const NAMESPACE: &str = "flux-system";
/// The `--receiver` tests' Receiver.
pub const RECEIVER: &str = "github-receiver";
/// The webhook token in its Secret `webhook-token`.
pub const TOKEN: &str = "receiver-token-from-the-secret";
/// The `--base-url` the `--receiver` tests give.
pub const BASE_URL: &str = "https://flux-webhook.example.com";

/// A cluster for `--receiver`: the Secret `webhook-token` holding [`TOKEN`] and two
/// GitRepositories on two fake GitHubs, `app` (no labels) and `infra` (labelled
/// `hooks: github`, repository `fleet-infra`); a Receiver is the test's to store.
pub struct Cluster {
    pub server: TestApiServer,
    /// Holds the kubeconfig; removed on drop.
    _dir: TempDir,
    /// The kubeconfig the binary runs with.
    pub kubeconfig: String,
    pub app: FakeHost,
    pub infra: FakeHost,
}

impl Cluster {
    /// Seeds `server` (serving Flux's kinds, with namespace [`NAMESPACE`]); the binary runs
    /// as `identity`.
    pub async fn start(server: TestApiServer, identity: &Identity) -> Cluster {
        let dir = TempDir::new();
        let kubeconfig = dir.path().join("kubeconfig");
        server.write_kubeconfig_for(identity, &kubeconfig).unwrap();
        let app = FakeHost::start(HostKind::GitHub).await.unwrap();
        let infra = FakeHost::start_with(FakeConfig {
            repo: "fleet-infra".into(),
            ..FakeConfig::new(HostKind::GitHub)
        })
        .await
        .unwrap();
        server
            .create(fixtures::token_secret(NAMESPACE, "webhook-token", TOKEN))
            .unwrap();
        for (name, labels, host) in [
            ("app", json!({}), &app),
            ("infra", json!({"hooks": "github"}), &infra),
        ] {
            server
                .create(git_repository(name, labels, &git_url(host)))
                .unwrap();
        }
        Cluster {
            server,
            kubeconfig: kubeconfig.to_str().unwrap().to_owned(),
            _dir: dir,
            app,
            infra,
        }
    }

    /// Stores the Receiver with these `spec.resources` and `status`.
    pub fn receiver_of(&self, resources: Value, status: Value) {
        let mut receiver = fixtures::github_receiver(NAMESPACE, RECEIVER, resources);
        receiver["status"] = status;
        self.server.apply_json(receiver).unwrap();
    }

    /// Stores the Receiver Ready for [`served_path`], naming the GitRepository `app`, the
    /// ones labelled `hooks: github`, and a Kustomization.
    pub fn ready(&self) {
        self.receiver(ready_status(&served_path()));
    }

    /// Stores the Receiver with `status`, naming what [`Cluster::ready`] names.
    pub fn receiver(&self, status: Value) {
        self.receiver_of(
            json!([
                {"kind": "GitRepository", "name": "app"},
                {"kind": "GitRepository", "name": "*", "matchLabels": {"hooks": "github"}},
                {"apiVersion": "kustomize.toolkit.fluxcd.io/v1", "kind": "Kustomization", "name": "apps"},
            ]),
            status,
        );
    }

    /// Runs the binary with `--base-url`, `--provider github` and `--allow-http`, then
    /// `extra`, with the kubeconfig and `app`'s token.
    pub async fn run(&self, extra: &[&str]) -> Run {
        self.run_with(&self.kubeconfig, extra).await
    }

    /// As [`Cluster::run`], with `KUBECONFIG=kubeconfig`.
    pub async fn run_with(&self, kubeconfig: &str, extra: &[&str]) -> Run {
        let mut args = vec![
            "--base-url",
            BASE_URL,
            "--provider",
            "github",
            "--allow-http",
        ];
        args.extend_from_slice(extra);
        run(
            &args,
            &[
                ("KUBECONFIG", kubeconfig),
                ("GITHUB_TOKEN", self.app.token()),
            ],
        )
        .await
    }

    /// Runs `--receiver flux-system/github-receiver --check` and checks that it finds both
    /// repositories drifted (exit 2).
    pub async fn assert_both_drifted(&self) {
        let check = self.run_receiver(&["--check"]).await;
        assert_eq!(check.status, 2, "{check:?}");
        assert!(
            check.stdout.contains("drift: 2 of 2 repositories"),
            "{check:?}"
        );
    }

    /// As [`Cluster::run`], for `--receiver flux-system/github-receiver`.
    pub async fn run_receiver(&self, extra: &[&str]) -> Run {
        let receiver = format!("{NAMESPACE}/{RECEIVER}");
        let mut args = vec!["--receiver", receiver.as_str()];
        args.extend_from_slice(extra);
        self.run(&args).await
    }
}

/// A GitRepository `NAMESPACE/name` of `url` with `labels`.
pub fn git_repository(name: &str, labels: Value, url: &str) -> Value {
    let mut repository = fixtures::git_repository(NAMESPACE, name, labels);
    repository["spec"]["url"] = json!(url);
    repository
}

/// A Ready Receiver's status, serving `path`.
pub fn ready_status(path: &str) -> Value {
    json!({
        "webhookPath": path,
        "conditions": [{
            "type": "Ready", "status": "True", "reason": "Succeeded",
            "message": format!("Receiver initialized for path: {path}"),
            "lastTransitionTime": "2025-01-01T00:00:00Z",
        }],
    })
}

/// The path the Receiver serves for [`TOKEN`].
pub fn served_path() -> String {
    webhook_path(TOKEN, RECEIVER, NAMESPACE).as_str().to_owned()
}
