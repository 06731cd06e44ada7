//! The candidate: acquires, renews and releases the Lease, and publishes its term.

use std::future::Future;

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::Resource;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout, timeout_at};

use crate::config::{ConfigError, ElectionConfig, jittered};
use crate::leadership::{Leadership, Term};
use crate::record::{Claim, Record, claim, released};

/// A candidate in the election of one Lease. [`Elector::run`] campaigns until stopped;
/// the [`Leadership`] returned with it tells writers whether they may write.
///
/// As client-go's `LeaderElector` (k8s.io/client-go tools/leaderelection): every write of the
/// Lease is an update carrying the `resourceVersion` last read, so two candidates never both
/// win; candidates retry every retry period (with jitter); a lease is expired once its
/// `leaseDurationSeconds` have passed since the candidate observed its last change. Two
/// differences, both on the side of safety: the holder leads only until the renew deadline
/// after the start of its last *successful* renewal (client-go counts from the start of the
/// renewal attempt, up to a retry period later), and a holder that loses the lease steps down
/// and campaigns again rather than exiting (controller-runtime exits the process).
pub struct Elector {
    api: Api<Lease>,
    config: ElectionConfig,
    term: watch::Sender<Term>,
    terms_begun: u64,
    /// The Lease as last read or written: its `resourceVersion` guards the next update.
    lease: Option<Lease>,
    /// The record last seen, and when this process first saw it (its own clock).
    observed: Option<(Record, Instant)>,
    recorder: Recorder,
}

impl Elector {
    /// A candidate for `config`'s Lease, and the handle that follows its term.
    pub fn new(
        client: kube::Client,
        config: ElectionConfig,
    ) -> Result<(Self, Leadership), ConfigError> {
        config.validate()?;
        let (term, leadership) = Leadership::following();
        let recorder = Recorder::new(
            client.clone(),
            Reporter {
                controller: config.reporting_controller.clone(),
                instance: Some(config.identity.clone()),
            },
        );
        let elector = Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            term,
            terms_begun: 0,
            lease: None,
            observed: None,
            recorder,
        };
        Ok((elector, leadership))
    }

    /// Campaigns until `shutdown` resolves: acquires the lease when it is free or expired,
    /// renews it while holding it, steps down when a renewal does not succeed within the
    /// renew deadline, and campaigns again. On shutdown it stops leading first, then gives the
    /// lease up if [`ElectionConfig::release_on_cancel`] is set.
    pub async fn run(mut self, shutdown: impl Future<Output = ()>) {
        let mut shutdown = std::pin::pin!(shutdown);
        tracing::info!(
            lease = %self.describe(),
            identity = %self.config.identity,
            "attempting to acquire leader lease"
        );
        loop {
            let Some(until) = self.acquire(shutdown.as_mut()).await else {
                return;
            };
            self.terms_begun += 1;
            self.publish(Term::Leading {
                until,
                term: self.terms_begun,
            });
            tracing::info!(lease = %self.describe(), "successfully acquired lease");
            self.record_event("became leader");

            let stopped = self.renew(until, shutdown.as_mut()).await;
            self.publish(Term::Following);
            self.record_event("stopped leading");
            if stopped {
                if self.config.release_on_cancel {
                    self.release().await;
                }
                return;
            }
        }
    }

    /// Tries now, then every retry period with jitter, until the lease is ours; the end of
    /// the first term, or `None` on shutdown.
    async fn acquire(
        &mut self,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> Option<Instant> {
        loop {
            let started = Instant::now();
            let attempt = timeout(self.config.renew_deadline, self.try_acquire_or_renew());
            let acquired = tokio::select! {
                () = shutdown.as_mut() => return None,
                attempt = attempt => attempt,
            };
            match acquired {
                Ok(Ok(true)) => return Some(started + self.config.renew_deadline),
                Ok(Ok(false)) => {}
                Ok(Err(error)) => self.log_error("acquire", &error),
                Err(_) => tracing::info!(lease = %self.describe(), "acquiring the lease timed out"),
            }
            tokio::select! {
                () = shutdown.as_mut() => return None,
                () = sleep(jittered(self.config.retry_period)) => {}
            }
        }
    }

    /// Renews every retry period until shutdown (`true`) or until the lease is lost
    /// (`false`): another holds it, or no renewal succeeded before `until`.
    async fn renew(
        &mut self,
        mut until: Instant,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        loop {
            tokio::select! {
                () = shutdown.as_mut() => return true,
                () = sleep(self.config.retry_period) => {}
            }
            let started = Instant::now();
            if started >= until {
                self.log_lost("no renewal succeeded within the renew deadline");
                return false;
            }
            let attempt = timeout_at(until, self.try_acquire_or_renew());
            let renewed = tokio::select! {
                () = shutdown.as_mut() => return true,
                attempt = attempt => attempt,
            };
            match renewed {
                Ok(Ok(true)) => {
                    until = started + self.config.renew_deadline;
                    self.publish(Term::Leading {
                        until,
                        term: self.terms_begun,
                    });
                    tracing::trace!(lease = %self.describe(), "successfully renewed lease");
                }
                Ok(Ok(false)) => {
                    self.log_lost("another candidate holds it");
                    return false;
                }
                Ok(Err(error)) => {
                    self.log_error("renew", &error);
                    if Instant::now() >= until {
                        self.log_lost("no renewal succeeded within the renew deadline");
                        return false;
                    }
                }
                Err(_) => {
                    self.log_lost("no renewal succeeded within the renew deadline");
                    return false;
                }
            }
        }
    }

    /// One attempt, as client-go's `tryAcquireOrRenew`: `true` if this process holds the
    /// lease afterwards.
    async fn try_acquire_or_renew(&mut self) -> Result<bool, kube::Error> {
        let lease_seconds = self.config.lease_duration_seconds();
        // 1. The holder renews optimistically, from the Lease it last wrote.
        if let (Some((record, _)), Some(lease)) = (&self.observed, &self.lease)
            && record.is_held_by(&self.config.identity)
            && self.observed_valid()
        {
            let Claim::Write(renewal) = claim(
                record,
                true,
                &self.config.identity,
                lease_seconds,
                Timestamp::now(),
            ) else {
                return Ok(false);
            };
            let lease = lease.clone();
            match self.update(lease, renewal).await {
                Ok(()) => return Ok(true),
                Err(error) => tracing::debug!(
                    lease = %self.describe(),
                    %error,
                    "failed to update lease optimistically, falling back to slow path"
                ),
            }
        }

        // 2. Read the Lease, or create it holding it.
        let Some(lease) = self.api.get_opt(&self.config.lease_name).await? else {
            let Claim::Write(mut record) = claim(
                &Record::default(),
                false,
                &self.config.identity,
                lease_seconds,
                Timestamp::now(),
            ) else {
                return Ok(false);
            };
            // A new Lease starts with no transitions, as client-go creates it.
            record.transitions = 0;
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.lease_name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(record.to_spec(None)),
            };
            let created = self.api.create(&PostParams::default(), &lease).await?;
            self.lease = Some(created);
            self.observe(record);
            return Ok(true);
        };

        // 3. A changed record restarts its clock.
        let current = Record::from_spec(lease.spec.as_ref());
        self.observe(current.clone());
        self.lease = Some(lease.clone());

        // 4. Take it if it is ours, free or expired.
        match claim(
            &current,
            self.observed_valid(),
            &self.config.identity,
            lease_seconds,
            Timestamp::now(),
        ) {
            Claim::Held => {
                tracing::debug!(lease = %self.describe(), holder = %current.holder, "lease is held and has not yet expired");
                Ok(false)
            }
            Claim::Write(record) => {
                self.update(lease, record).await?;
                Ok(true)
            }
        }
    }

    /// Gives the lease up if this process holds it (client-go's `tryRelease`), so that
    /// another takes over without waiting for it to expire. Bounded by the renew deadline.
    async fn release(&mut self) {
        let deadline = self.config.renew_deadline;
        let attempt = async {
            for _ in 0..3 {
                let Some(lease) = self.api.get_opt(&self.config.lease_name).await? else {
                    return Ok(());
                };
                let current = Record::from_spec(lease.spec.as_ref());
                // Only our own lease: one taken over since is not ours to release.
                if !current.is_held_by(&self.config.identity) {
                    return Ok(());
                }
                match self
                    .update(lease, released(&current, Timestamp::now()))
                    .await
                {
                    Err(kube::Error::Api(status)) if status.code == 409 => continue,
                    other => return other,
                }
            }
            Ok(())
        };
        match timeout(deadline, attempt).await {
            Ok(Ok(())) => tracing::info!(lease = %self.describe(), "released the lease"),
            Ok(Err(error)) => self.log_error("release", &error),
            Err(_) => tracing::info!(lease = %self.describe(), "releasing the lease timed out"),
        }
    }

    /// Writes `record` into `lease`, guarded by its resourceVersion.
    async fn update(&mut self, mut lease: Lease, record: Record) -> Result<(), kube::Error> {
        lease.spec = Some(record.to_spec(lease.spec.as_ref()));
        let written = self
            .api
            .replace(&self.config.lease_name, &PostParams::default(), &lease)
            .await?;
        self.lease = Some(written);
        self.observe(record);
        Ok(())
    }

    fn observe(&mut self, record: Record) {
        let changed = self
            .observed
            .as_ref()
            .is_none_or(|(seen, _)| *seen != record);
        if changed {
            self.observed = Some((record, Instant::now()));
        }
    }

    /// Whether the record observed is still within its lease duration, by our clock.
    fn observed_valid(&self) -> bool {
        self.observed.as_ref().is_some_and(|(record, since)| {
            let seconds = u64::try_from(record.lease_duration_seconds).unwrap_or(0);
            Instant::now() < *since + std::time::Duration::from_secs(seconds)
        })
    }

    fn publish(&self, term: Term) {
        self.term.send_replace(term);
    }

    /// An Event on the Lease, as client-go's `LeaseLock.RecordEvent`: `<identity> <what>`,
    /// reason `LeaderElection`. Sent in the background: the election never waits for it.
    fn record_event(&self, what: &str) {
        let Some(lease) = &self.lease else { return };
        let reference = lease.object_ref(&());
        let recorder = self.recorder.clone();
        let event = Event {
            type_: EventType::Normal,
            reason: "LeaderElection".to_string(),
            note: Some(format!("{} {what}", self.config.identity)),
            action: "LeaderElection".to_string(),
            secondary: None,
        };
        tokio::spawn(async move {
            if let Err(error) = recorder.publish(&event, &reference).await {
                tracing::debug!(%error, "cannot record the leader election Event");
            }
        });
    }

    fn log_error(&self, doing: &str, error: &kube::Error) {
        match error {
            kube::Error::Api(status) if status.code == 409 => {
                tracing::debug!(lease = %self.describe(), %error, "lost a race to {doing} the lease");
            }
            _ => tracing::warn!(lease = %self.describe(), %error, "failed to {doing} the lease"),
        }
    }

    fn log_lost(&self, why: &str) {
        tracing::warn!(lease = %self.describe(), "leader election lost: {why}; stopped writing");
    }

    fn describe(&self) -> String {
        format!("{}/{}", self.config.namespace, self.config.lease_name)
    }
}
