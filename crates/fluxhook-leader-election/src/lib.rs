//! Leader election on a `coordination.k8s.io/v1` Lease, as Flux's controllers do it.
//!
//! Flux's controllers elect a leader through controller-runtime, which uses client-go's
//! `LeaderElector` with the flags of fluxcd/pkg `runtime/leaderelection`
//! (`--leader-election-lease-duration` 35 s, `--leader-election-renew-deadline` 30 s,
//! `--leader-election-retry-period` 5 s, `--leader-election-release-on-cancel` true). This
//! crate runs the same election ([`Elector`]) and hands writers a [`Leadership`] that says
//! whether they may write *now*: it is true only until the renew deadline after the last
//! successful renewal, which ends before another candidate may take the lease, and
//! [`Leadership::lead`] cancels a write in flight the moment leading ends.
//!
//! The Lease's fields are client-go's: `holderIdentity` (empty once released),
//! `leaseDurationSeconds`, `acquireTime` and `renewTime` (MicroTime), `leaseTransitions`
//! (incremented on each change of holder). The election needs `get`, `create` and `update`
//! on the Lease, and `create` and `patch` on `events.k8s.io` Events (it records
//! "became leader" and "stopped leading" on the Lease, as client-go does).
//!
//! kube-lease-manager (0.13, on kube 5) was considered and not used: its holder keeps
//! reporting itself leader while renewals fail (there is no renew deadline), and it takes an
//! expired lease over by an unconditional patch followed by a second write, so two candidates
//! can both believe they lead for up to a lease duration; client-go's rules avoid both by
//! updating with the `resourceVersion` read.
//!
//! # Example
//!
//! ```no_run
//! use fluxhook_leader_election::{ElectionConfig, Elector, unique_identity};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = kube::Client::try_default().await?;
//! let config = ElectionConfig::new(
//!     "fluxhook-receiver-leader-election",
//!     "flux-system",
//!     unique_identity("fluxhook-receiver-7d9f-abcde"),
//! );
//! let (elector, leadership) = Elector::new(client, config)?;
//! tokio::spawn(elector.run(async { let _ = tokio::signal::ctrl_c().await; }));
//!
//! // Writers ask before each write; the write is cut short if the term ends meanwhile.
//! let written = leadership.lead(async { /* patch a status */ }).await;
//! # let _ = written;
//! # Ok(())
//! # }
//! ```
//!
//! # Kubernetes version
//!
//! Like every library built on k8s-openapi, this crate does not choose the
//! Kubernetes version: the binary that embeds it does, by enabling one version
//! feature of k8s-openapi (fluxhook's binaries use `v1_33`, the oldest version
//! Flux supports):
//!
//! ```toml
//! k8s-openapi = { version = "0.29", features = ["v1_35"] }
//! ```
//!
//! `examples/embed-controller` in the repository builds on another version than
//! fluxhook's binaries.

mod config;
mod elector;
mod leadership;
mod record;

pub use config::{ConfigError, ElectionConfig, unique_identity};
pub use elector::Elector;
pub use leadership::{Leadership, NotLeader};
