//! The parameters of an election, with Flux's defaults and client-go's checks.

use std::time::Duration;

use rand_core::{OsRng, RngCore};

/// How a process takes part in the election; the defaults are Flux's
/// (fluxcd/pkg runtime/leaderelection: 35 s, 30 s, 5 s, release on cancel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// The Lease's name.
    pub lease_name: String,
    /// The Lease's namespace.
    pub namespace: String,
    /// Who this process is; unique among the candidates ([`unique_identity`]).
    pub identity: String,
    /// How long a lease is good for after its holder last renewed it, as the other
    /// candidates observe it (`--leader-election-lease-duration`). Written in whole seconds.
    pub lease_duration: Duration,
    /// How long the holder keeps leading without a successful renewal
    /// (`--leader-election-renew-deadline`); shorter than the lease duration, so the holder
    /// stops before anyone else may take the lease.
    pub renew_deadline: Duration,
    /// The wait between attempts to acquire or renew (`--leader-election-retry-period`).
    pub retry_period: Duration,
    /// Give the lease up when stopped, so another takes over at once
    /// (`--leader-election-release-on-cancel`).
    pub release_on_cancel: bool,
    /// The controller named as reporting the Events of the election ("became leader").
    pub reporting_controller: String,
}

impl ElectionConfig {
    /// An election on `namespace/lease_name` as `identity`, with Flux's durations.
    pub fn new(
        lease_name: impl Into<String>,
        namespace: impl Into<String>,
        identity: impl Into<String>,
    ) -> Self {
        Self {
            lease_name: lease_name.into(),
            namespace: namespace.into(),
            identity: identity.into(),
            lease_duration: Duration::from_secs(35),
            renew_deadline: Duration::from_secs(30),
            retry_period: Duration::from_secs(5),
            release_on_cancel: true,
            reporting_controller: "fluxhook-receiver".to_string(),
        }
    }

    /// Checks the durations as client-go's `NewLeaderElector` does, and that the lease's
    /// whole seconds (what the Lease records) still outlast the renew deadline.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.lease_name.is_empty() || self.namespace.is_empty() {
            return Err(ConfigError::NoLease);
        }
        if self.identity.is_empty() {
            return Err(ConfigError::NoIdentity);
        }
        if self.retry_period.is_zero() {
            return Err(ConfigError::RetryPeriodZero);
        }
        if self.renew_deadline <= self.retry_period.mul_f64(JITTER_FACTOR) {
            return Err(ConfigError::RenewDeadlineTooShort {
                renew_deadline: self.renew_deadline,
                retry_period: self.retry_period,
            });
        }
        if self.lease_duration <= self.renew_deadline {
            return Err(ConfigError::LeaseNotLongerThanRenewDeadline {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if Duration::from_secs(self.lease_duration.as_secs()) <= self.renew_deadline {
            return Err(ConfigError::LeaseSecondsNotLongerThanRenewDeadline {
                lease_duration: self.lease_duration,
                renew_deadline: self.renew_deadline,
            });
        }
        if i32::try_from(self.lease_duration.as_secs()).is_err() {
            return Err(ConfigError::LeaseTooLong(self.lease_duration));
        }
        Ok(())
    }

    pub(crate) fn lease_duration_seconds(&self) -> i32 {
        i32::try_from(self.lease_duration.as_secs()).unwrap_or(i32::MAX)
    }
}

/// client-go's `JitterFactor`: candidates wait between one and 2.2 retry periods.
pub(crate) const JITTER_FACTOR: f64 = 1.2;

/// Why an [`ElectionConfig`] cannot run.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The Lease has no name or no namespace.
    #[error("the leader election Lease needs a name and a namespace")]
    NoLease,
    /// The identity is empty.
    #[error("the leader election identity is empty")]
    NoIdentity,
    /// The retry period is zero.
    #[error("--leader-election-retry-period must be greater than zero")]
    RetryPeriodZero,
    /// The renew deadline leaves no room for a retry.
    #[error(
        "--leader-election-renew-deadline ({renew_deadline:?}) must be greater than 1.2 times \
         --leader-election-retry-period ({retry_period:?})"
    )]
    RenewDeadlineTooShort {
        /// The renew deadline.
        renew_deadline: Duration,
        /// The retry period.
        retry_period: Duration,
    },
    /// Another candidate could take the lease while its holder still leads.
    #[error(
        "--leader-election-lease-duration ({lease_duration:?}) must be greater than \
         --leader-election-renew-deadline ({renew_deadline:?})"
    )]
    LeaseNotLongerThanRenewDeadline {
        /// The lease duration.
        lease_duration: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
    },
    /// The Lease records whole seconds, and those would not outlast the renew deadline.
    #[error(
        "--leader-election-lease-duration ({lease_duration:?}) is recorded in whole seconds \
         on the Lease, and those must be greater than --leader-election-renew-deadline \
         ({renew_deadline:?})"
    )]
    LeaseSecondsNotLongerThanRenewDeadline {
        /// The lease duration.
        lease_duration: Duration,
        /// The renew deadline.
        renew_deadline: Duration,
    },
    /// More seconds than a Lease records.
    #[error("--leader-election-lease-duration ({0:?}) is longer than a Lease can record")]
    LeaseTooLong(Duration),
}

/// `base` (the pod's name) with a random suffix, as controller-runtime makes its identities
/// (`<hostname>_<uuid>`): a restarted pod is a new candidate, never mistaken for the old one.
///
/// ```
/// let identity = fluxhook_leader_election::unique_identity("fluxhook-receiver-7d9f-abcde");
/// assert!(identity.starts_with("fluxhook-receiver-7d9f-abcde_"));
/// assert_eq!(identity.len(), "fluxhook-receiver-7d9f-abcde_".len() + 36);
/// ```
pub fn unique_identity(base: &str) -> String {
    let mut bytes = [0u8; 16];
    OsRng.fill_bytes(&mut bytes);
    // A version 4 (random) UUID, as controller-runtime's uuid.NewUUID.
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{base}_{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

/// A wait of one to 2.2 times `period`, as client-go's `wait.Jitter(period, 1.2)`: candidates
/// that started together do not keep colliding.
pub(crate) fn jittered(period: Duration) -> Duration {
    let fraction = f64::from(OsRng.next_u32()) / f64::from(u32::MAX);
    period + period.mul_f64(fraction * JITTER_FACTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(lease: u64, renew: u64, retry: u64) -> ElectionConfig {
        ElectionConfig {
            lease_duration: Duration::from_millis(lease),
            renew_deadline: Duration::from_millis(renew),
            retry_period: Duration::from_millis(retry),
            ..ElectionConfig::new("lease", "flux-system", "me")
        }
    }

    #[test]
    fn fluxs_defaults_are_valid() {
        let flux = ElectionConfig::new("lease", "flux-system", "me");
        assert_eq!(flux.validate(), Ok(()));
        assert_eq!(flux.lease_duration_seconds(), 35);
        assert!(flux.release_on_cancel);
    }

    #[test]
    fn durations_are_checked_as_client_go_does() {
        assert!(matches!(
            config(30_000, 30_000, 5_000).validate(),
            Err(ConfigError::LeaseNotLongerThanRenewDeadline { .. })
        ));
        assert!(matches!(
            config(35_000, 6_000, 5_000).validate(),
            Err(ConfigError::RenewDeadlineTooShort { .. })
        ));
        assert_eq!(
            config(35_000, 30_000, 0).validate(),
            Err(ConfigError::RetryPeriodZero)
        );
        // 2.5 s is recorded as 2 s, which a 2 s renew deadline does not undercut.
        assert!(matches!(
            config(2_500, 2_000, 200).validate(),
            Err(ConfigError::LeaseSecondsNotLongerThanRenewDeadline { .. })
        ));
        assert_eq!(config(2_000, 1_000, 200).validate(), Ok(()));
        let message = config(30_000, 30_000, 5_000)
            .validate()
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            message.as_deref(),
            Some(
                "--leader-election-lease-duration (30s) must be greater than \
                 --leader-election-renew-deadline (30s)"
            )
        );
    }

    #[test]
    fn identities_are_unique_uuids_after_the_pod_name() {
        let a = unique_identity("pod");
        let b = unique_identity("pod");
        assert_ne!(a, b);
        let uuid = a.strip_prefix("pod_").unwrap_or_default();
        let groups: Vec<usize> = uuid.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12]);
        assert_eq!(&uuid[14..15], "4");
    }

    #[test]
    fn jitter_stays_within_one_and_two_point_two_periods() {
        let period = Duration::from_secs(5);
        for _ in 0..100 {
            let wait = jittered(period);
            assert!(wait >= period && wait <= period.mul_f64(2.2), "{wait:?}");
        }
    }
}
