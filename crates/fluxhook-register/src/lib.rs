//! Registers Flux Receiver webhooks with Git hosts.
//!
//! Flux leaves creating the webhook on the Git host to the user; fluxhook does it. This crate
//! is the reusable core: it recognises the host and repository of a GitRepository URL
//! ([`HostedRepository::from_git_url`]), subscribes only to the host's events the Receiver accepts
//! ([`ReceiverEvents`]) and only where its type verifies the host's deliveries, and manages
//! the repository's hooks through the host's documented REST API ([`HookClient`]): GitHub
//! (github.com, `*.ghe.com` and Enterprise Server), GitLab (SaaS and self-managed), Bitbucket
//! Cloud, Bitbucket Server / Data Center, Gitea, Forgejo and Gogs. What differs between
//! hosts is in one file per host.
//!
//! [`HookClient::ensure`] converges: it creates or updates one hook to the Receiver's URL,
//! deletes duplicates to that URL, and writes nothing when the host already matches. Lists
//! follow the host's pagination; rate limits and server errors are retried within a bounded
//! [`HostBackoff`]; errors name the host, repository and HTTP status, never a credential. A
//! redirect is never followed (it would carry the token and the secret elsewhere): it is an
//! error naming where it pointed. Hosts behind a private CA are reached with an
//! [`HttpClient`] trusting its bundle.
//!
//! Where a GitHub App authenticates (a Flux GitHub App Secret), [`github_app`] mints and
//! caches its installation tokens.
//!
//! The crate is a Git host client only: what a Receiver names is read from the Kubernetes API
//! by `fluxhook-trigger` (`Trigger::select_git_repositories`, `secret::read_token`).
//!
//! Hosts never show a hook's secret. Where a hook has a free-text label (GitLab and
//! Bitbucket), the client records an HMAC fingerprint of the secret in it, so `ensure` sees a
//! changed secret; GitHub, Gitea and Gogs offer no such place, so a rotation there is written with
//! [`HookClient::rotate_secret`] (see [`SecretState`]).
//!
//! ```
//! use fluxhook_register::{Change, DesiredHook, HookClient, Forge, ReceiverEvents, HostedRepository, Secret, Token};
//! use fluxhook_test_githost::{FakeHost, HostKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A fake GitHub on 127.0.0.1; for the real one: HostedRepository::from_git_url(url, None).
//! let github = FakeHost::start(HostKind::GitHub).await?;
//! let repository = HostedRepository::new(Forge::GITHUB, github.api_base().parse()?, github.owner(), github.repo());
//! let client = HookClient::new(repository, Token::new(github.token()))?;
//!
//! let hook = DesiredHook::new(
//!     "https://flux.example.com/hook/5a1b0c".parse()?,
//!     Secret::new("receiver-token"),
//!     ReceiverEvents::new(["ping", "push"]),
//! )
//! .for_receiver_type("github");
//! assert_eq!(client.ensure(&hook).await?.change, Change::Created);
//! assert_eq!(client.ensure(&hook).await?.change, Change::Unchanged);
//! assert_eq!(client.list().await?.len(), 1);
//! # Ok(())
//! # }
//! ```

mod backoff;
mod client;
mod credentials;
mod delivery;
mod error;
mod events;
mod forge;
pub mod github_app;
mod hook;
mod hosts;
mod http;
mod replies;
mod repository;

pub use backoff::{Clock, HostBackoff, Sleep, TokioClock};
pub use client::{Change, EnsurePlan, Ensured, HookClient, HookClientBuilder};
pub use credentials::{Secret, Token};
pub use delivery::{Delivery, DeliveryLog};
pub use error::{ErrorKind, Operation, RegisterError};
pub use events::ReceiverEvents;
pub use forge::{Forge, HostProfile, UnknownForge};
pub use hook::{
    DesiredHook, Hook, HookId, InvalidBaseUrl, PayloadFormat, SecretState, receiver_url,
};
pub use http::{HttpClient, HttpClientBuilder, HttpSetupError};
pub use replies::{HooksPage, read_error_message, read_hook, read_hooks_page};
pub use repository::{
    GitScheme, GitUrl, HostConfig, HostedRepository, HostedRepositoryKey, RepoUrlError,
};
