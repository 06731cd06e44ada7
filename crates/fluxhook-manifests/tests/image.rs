//! The Dockerfile, checked where no container engine runs: it builds what CI
//! builds, with the same command, and its final stages hold one binary run
//! by a numeric non-root user.

#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;

fn workspace_file(name: &str) -> String {
    let path: PathBuf = fluxhook_manifests::deploy_dir()
        .parent()
        .unwrap()
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The `cargo build --release` command of a script, without line continuations.
fn release_build_command(script: &str) -> String {
    let joined = script.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|line| line.contains("cargo build --release"))
        .unwrap_or_else(|| panic!("no `cargo build --release` in:\n{script}"));
    let start = line.find("cargo build").unwrap();
    let command = line[start..].split("&&").next().unwrap();
    command.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[test]
fn the_image_builds_with_the_command_ci_runs() {
    let dockerfile = release_build_command(&workspace_file("Dockerfile"));
    let ci = release_build_command(&workspace_file(".ci/run"));
    assert_eq!(dockerfile, ci);
    for needed in [
        "--locked",
        "--bin fluxhook-receiver",
        "--bin fluxhook-register",
    ] {
        assert!(ci.contains(needed), "{ci}");
    }
}

/// The stages of a Dockerfile: (name, lines).
fn stages(dockerfile: &str) -> Vec<(String, Vec<String>)> {
    let mut stages: Vec<(String, Vec<String>)> = Vec::new();
    for line in dockerfile.replace("\\\n", " ").lines() {
        let line = line.trim();
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        if let Some(from) = line.strip_prefix("FROM ") {
            let name = from
                .split_once(" AS ")
                .map_or(String::new(), |(_, name)| name.trim().to_string());
            stages.push((name, vec![line.to_string()]));
        } else if let Some((_, lines)) = stages.last_mut() {
            lines.push(line.to_string());
        }
    }
    stages
}

#[test]
fn each_binary_has_a_target_holding_it_alone_run_as_nobody() {
    let dockerfile = workspace_file("Dockerfile");
    let stages = stages(&dockerfile);
    for binary in ["fluxhook-receiver", "fluxhook-register"] {
        let (_, lines) = stages
            .iter()
            .find(|(name, _)| name == binary)
            .unwrap_or_else(|| panic!("no target {binary}"));
        assert_eq!(lines[0], format!("FROM scratch AS {binary}"));
        let installed = format!("/usr/local/bin/{binary}");
        let expected = [
            format!("COPY --from=build /out/{binary} {installed}"),
            "USER 65534:65534".to_string(),
            format!("ENTRYPOINT [\"{installed}\"]"),
        ];
        assert_eq!(&lines[1..], &expected[..], "target {binary}");
    }
    // A plain `docker build .` builds the receiver.
    assert_eq!(stages.last().unwrap().0, "fluxhook-receiver");
}

#[test]
fn the_build_toolchain_is_at_least_the_workspace_minimum() {
    let version = |text: &str| -> (u32, u32) {
        let mut parts = text
            .trim_matches('"')
            .split('.')
            .map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    let dockerfile = workspace_file("Dockerfile");
    let image = dockerfile
        .lines()
        .find_map(|l| l.strip_prefix("ARG RUST_VERSION="))
        .unwrap();
    let cargo_toml = workspace_file("Cargo.toml");
    let minimum = cargo_toml
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .unwrap();
    assert!(
        version(image) >= version(minimum),
        "the Dockerfile builds with Rust {image}, below rust-version {minimum}"
    );
}

#[test]
fn the_build_context_leaves_out_build_output_and_history() {
    let ignored = workspace_file(".dockerignore");
    for entry in ["target/", ".git/"] {
        assert!(ignored.lines().any(|l| l.trim() == entry), "{entry}");
    }
}
