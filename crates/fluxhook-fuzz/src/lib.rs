#![allow(clippy::panic)] // A broken invariant panics: that is how libFuzzer keeps the input.

//! The bodies of fluxhook's fuzz targets, as plain functions.
//!
//! Each [`Target`] feeds one family of outside input to the parsers and
//! verifiers that read it, and checks a cheap invariant beyond "no panic"
//! (a signature made by `sign` verifies, a parsed object prints back to
//! itself, a path parses back to itself...). A broken invariant panics, as a
//! crash does, so that libFuzzer keeps the input.
//!
//! The same functions run in two places:
//!
//! - the cargo-fuzz package in `fuzz/` (outside the workspace), one
//!   `fuzz_target!` per [`Target`], run with `cargo xtask fuzz`;
//! - this crate's `tests/replay.rs`, in the plain `cargo test`, over each
//!   target's seeds ([`Target::seeds`]), its committed regression inputs
//!   (`fuzz/regressions/<target>/`) and a bounded number of deterministic
//!   mutations of them ([`mutations`]): every target runs briefly in CI,
//!   without an instrumented build.
//!
//! Inputs are split into fields at NUL bytes (see each target), so that
//! seeds stay readable and libFuzzer's mutations reach every field.
//!
//! ```
//! use fluxhook_fuzz::Target;
//!
//! // A GitHub push, provider 0, with its event header and a body.
//! Target::Payload.run(b"\x00X-GitHub-Event: push\n\x00{\"ref\": \"refs/heads/main\"}");
//! assert_eq!(Target::from_name("payload"), Some(Target::Payload));
//! ```

mod cel;
mod github_app;
mod input;
mod mutate;
mod oidc;
mod payload;
mod receiver;
mod register;
mod seeds;
mod signature;
mod targeting;

use std::path::Path;

pub use mutate::mutations;

/// A fuzz target: one family of outside input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    /// Webhook deliveries of every provider (fluxhook-payload), and the
    /// Content-Type check of `github`/`bitbucket` deliveries.
    Payload,
    /// Signature and token headers of every signing policy (fluxhook-signature).
    Signature,
    /// CEL filters and OIDC claim rules, compiled and evaluated over hostile
    /// documents (fluxhook-cel).
    Cel,
    /// OIDC bearer tokens, discovery documents and JWK Sets (fluxhook-oidc).
    Oidc,
    /// Receiver objects as the API serves them, deserialized and compiled
    /// into an endpoint with a Secret (fluxhook-api, fluxhook-receiver).
    Receiver,
    /// Git repository URLs and Git host API replies (fluxhook-register).
    Register,
    /// Deliveries against GitRepositories' `spec.url` and `spec.ref`, and
    /// semver ranges and versions (fluxhook-payload's `targeting`).
    Targeting,
    /// GitHub App Secrets (app and installation IDs, PEM private key, API
    /// URL) and installation-token replies (fluxhook-register's `github_app`).
    GitHubApp,
}

impl Target {
    /// Every target, in the order `cargo xtask fuzz` runs them.
    pub const ALL: [Target; 8] = [
        Target::Payload,
        Target::Signature,
        Target::Cel,
        Target::Oidc,
        Target::Receiver,
        Target::Register,
        Target::Targeting,
        Target::GitHubApp,
    ];

    /// The target's name: its `fuzz_target` binary and its folders.
    pub const fn name(self) -> &'static str {
        match self {
            Target::Payload => "payload",
            Target::Signature => "signature",
            Target::Cel => "cel",
            Target::Oidc => "oidc",
            Target::Receiver => "receiver",
            Target::Register => "register",
            Target::Targeting => "targeting",
            Target::GitHubApp => "github_app",
        }
    }

    /// The target named `name`.
    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Runs the target on one input. Returns normally unless a parser
    /// panicked or an invariant broke.
    pub fn run(self, data: &[u8]) {
        match self {
            Target::Payload => payload::run(data),
            Target::Signature => signature::run(data),
            Target::Cel => cel::run(data),
            Target::Oidc => oidc::run(data),
            Target::Receiver => receiver::run(data),
            Target::Register => register::run(data),
            Target::Targeting => targeting::run(data),
            Target::GitHubApp => github_app::run(data),
        }
    }

    /// The target's seeds: built from the shared corpus (`corpus`, the
    /// folder of `index.json`) when given, plus a few inputs of its own for
    /// what the corpus lacks (registries, Receivers, tokens, CEL).
    pub fn seeds(self, corpus: Option<&Path>) -> Vec<Vec<u8>> {
        seeds::of(self, corpus)
    }
}
