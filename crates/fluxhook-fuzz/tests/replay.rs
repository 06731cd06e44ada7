//! Every fuzz target, briefly: over its seeds (from ../shared/corpus when it
//! is there), its committed regression inputs (`fuzz/regressions/<target>/`)
//! and a fixed set of deterministic mutations of them. `cargo xtask fuzz`
//! runs the same targets coverage-guided, for as long as asked.

use std::path::{Path, PathBuf};

use fluxhook_corpus::Corpus;
use fluxhook_fuzz::{Target, mutations};

/// Mutated inputs per target: enough to leave the seeds' paths, cheap
/// enough for every `cargo test` (an unoptimised build signs and checks
/// ES256 tokens slowly, so the OIDC target gets fewer, and parses and signs
/// with RSA keys more slowly still, so the GitHub App target fewer again).
fn mutations_of(target: Target) -> usize {
    match target {
        Target::Oidc => 100,
        Target::GitHubApp => 40,
        _ => 1500,
    }
}

fn regressions(target: Target) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/regressions")
        .join(target.name());
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries.filter_map(|e| Some(e.ok()?.path())).collect();
    files.sort();
    files
        .into_iter()
        .filter(|path| path.is_file())
        .map(|path| {
            let data = std::fs::read(&path).expect("a regression input reads");
            (path, data)
        })
        .collect()
}

fn replay(target: Target) {
    let corpus = Corpus::locate().ok();
    let seeds = target.seeds(corpus.as_ref().map(Corpus::root));
    assert!(!seeds.is_empty(), "{} has seeds of its own", target.name());
    for seed in &seeds {
        target.run(seed);
    }
    let regressions = regressions(target);
    for (path, data) in &regressions {
        eprintln!("{}: {}", target.name(), path.display());
        target.run(data);
    }
    let mut inputs = seeds;
    inputs.extend(regressions.into_iter().map(|(_, data)| data));
    let salt = target
        .name()
        .bytes()
        .fold(0u64, |h, b| h.wrapping_mul(31) + u64::from(b));
    for input in mutations(&inputs, mutations_of(target), salt) {
        target.run(&input);
    }
}

#[test]
fn payload() {
    replay(Target::Payload);
}

#[test]
fn signature() {
    replay(Target::Signature);
}

#[test]
fn cel() {
    replay(Target::Cel);
}

#[test]
fn oidc() {
    replay(Target::Oidc);
}

#[test]
fn receiver() {
    replay(Target::Receiver);
}

#[test]
fn register() {
    replay(Target::Register);
}

#[test]
fn targeting() {
    replay(Target::Targeting);
}

#[test]
fn github_app() {
    replay(Target::GitHubApp);
}
