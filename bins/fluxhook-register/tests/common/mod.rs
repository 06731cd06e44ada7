//! Running the built `fluxhook-register` against fake Git hosts on 127.0.0.1.

#![allow(clippy::unwrap_used, dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use fluxhook_register::Forge;
use fluxhook_test_githost::{FakeHost, HostKind};

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
