//! What a Lease says about its holder, and what a candidate writes into it (no I/O).
//!
//! The rules are client-go's `tryAcquireOrRenew` and `tryRelease`
//! (k8s.io/client-go tools/leaderelection/leaderelection.go, and
//! resourcelock/leaselock.go for the fields): a lease is valid for `leaseDurationSeconds`
//! after the candidate *observed* its last change (its own clock, never the holder's
//! `renewTime`); taking it over increments `leaseTransitions` and sets `acquireTime`;
//! renewing keeps both; releasing empties `holderIdentity` and sets `leaseDurationSeconds`
//! to 1.

use k8s_openapi::api::coordination::v1::LeaseSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use k8s_openapi::jiff::Timestamp;

/// The election fields of a Lease's spec.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Record {
    /// Who holds it; empty when nobody does (released).
    pub(crate) holder: String,
    /// How long the holder's last renewal is good for, in whole seconds.
    pub(crate) lease_duration_seconds: i32,
    pub(crate) acquire_time: Option<MicroTime>,
    pub(crate) renew_time: Option<MicroTime>,
    pub(crate) transitions: i32,
}

impl Record {
    pub(crate) fn from_spec(spec: Option<&LeaseSpec>) -> Self {
        let Some(spec) = spec else {
            return Self::default();
        };
        Self {
            holder: spec.holder_identity.clone().unwrap_or_default(),
            lease_duration_seconds: spec.lease_duration_seconds.unwrap_or_default(),
            acquire_time: spec.acquire_time.clone(),
            renew_time: spec.renew_time.clone(),
            transitions: spec.lease_transitions.unwrap_or_default(),
        }
    }

    /// The spec to write: the election fields, and whatever else `base` holds (fields of
    /// newer Kubernetes versions such as `strategy` are kept as read).
    pub(crate) fn to_spec(&self, base: Option<&LeaseSpec>) -> LeaseSpec {
        LeaseSpec {
            holder_identity: Some(self.holder.clone()),
            lease_duration_seconds: Some(self.lease_duration_seconds),
            acquire_time: self.acquire_time.clone(),
            renew_time: self.renew_time.clone(),
            lease_transitions: Some(self.transitions),
            ..base.cloned().unwrap_or_default()
        }
    }

    pub(crate) fn is_held_by(&self, identity: &str) -> bool {
        !self.holder.is_empty() && self.holder == identity
    }
}

/// What a candidate does with the Lease it read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Claim {
    /// Another candidate holds a lease still valid: wait.
    Held,
    /// Write this record: a renewal of our own lease, or a takeover of a free or expired
    /// one.
    Write(Record),
}

/// The claim of `identity` on a lease whose current record is `current`, of which
/// `still_valid` says whether its holder's term is still running by our observation.
pub(crate) fn claim(
    current: &Record,
    still_valid: bool,
    identity: &str,
    lease_duration_seconds: i32,
    now: Timestamp,
) -> Claim {
    let ours = current.is_held_by(identity);
    if !current.holder.is_empty() && still_valid && !ours {
        return Claim::Held;
    }
    let now = Some(MicroTime(now));
    let (acquire_time, transitions) = if ours {
        (current.acquire_time.clone(), current.transitions)
    } else {
        (now.clone(), current.transitions.saturating_add(1))
    };
    Claim::Write(Record {
        holder: identity.to_string(),
        lease_duration_seconds,
        acquire_time,
        renew_time: now,
        transitions,
    })
}

/// The record that gives the lease up, as client-go's `tryRelease` writes it: no holder, a
/// one-second duration, the transitions kept.
pub(crate) fn released(current: &Record, now: Timestamp) -> Record {
    let now = Some(MicroTime(now));
    Record {
        holder: String::new(),
        lease_duration_seconds: 1,
        acquire_time: now.clone(),
        renew_time: now,
        transitions: current.transitions,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + second).unwrap_or_default()
    }

    fn held_by(holder: &str, transitions: i32) -> Record {
        Record {
            holder: holder.to_string(),
            lease_duration_seconds: 35,
            acquire_time: Some(MicroTime(at(0))),
            renew_time: Some(MicroTime(at(10))),
            transitions,
        }
    }

    #[test]
    fn a_valid_lease_of_another_is_left_alone() {
        assert_eq!(claim(&held_by("a", 3), true, "b", 35, at(20)), Claim::Held);
    }

    #[test]
    fn an_expired_lease_of_another_is_taken_over_with_one_more_transition() {
        let Claim::Write(record) = claim(&held_by("a", 3), false, "b", 35, at(50)) else {
            unreachable!("an expired lease is claimed");
        };
        assert_eq!(record.holder, "b");
        assert_eq!(record.transitions, 4);
        assert_eq!(record.acquire_time, Some(MicroTime(at(50))));
        assert_eq!(record.renew_time, Some(MicroTime(at(50))));
        assert_eq!(record.lease_duration_seconds, 35);
    }

    #[test]
    fn a_free_lease_is_taken_even_while_its_release_is_fresh() {
        let free = released(&held_by("a", 3), at(20));
        assert_eq!(free.holder, "");
        assert_eq!(free.lease_duration_seconds, 1);
        assert_eq!(free.transitions, 3);
        let Claim::Write(record) = claim(&free, true, "b", 35, at(21)) else {
            unreachable!("a released lease is claimed");
        };
        assert_eq!((record.holder.as_str(), record.transitions), ("b", 4));
    }

    #[test]
    fn renewing_our_own_lease_keeps_acquire_time_and_transitions() {
        let Claim::Write(record) = claim(&held_by("a", 3), true, "a", 35, at(15)) else {
            unreachable!("our lease is renewed");
        };
        assert_eq!(record.acquire_time, Some(MicroTime(at(0))));
        assert_eq!(record.renew_time, Some(MicroTime(at(15))));
        assert_eq!(record.transitions, 3);
    }

    #[test]
    fn an_empty_identity_never_counts_as_holding() {
        let free = Record::default();
        assert!(!free.is_held_by(""));
        assert!(matches!(
            claim(&free, true, "a", 35, at(0)),
            Claim::Write(_)
        ));
    }

    #[test]
    fn the_spec_round_trips_and_keeps_fields_it_does_not_own() {
        let base = LeaseSpec {
            strategy: Some("OldestEmulationVersion".to_string()),
            ..LeaseSpec::default()
        };
        let record = held_by("a", 2);
        let spec = record.to_spec(Some(&base));
        assert_eq!(spec.strategy.as_deref(), Some("OldestEmulationVersion"));
        assert_eq!(Record::from_spec(Some(&spec)), record);
        assert_eq!(Record::from_spec(None), Record::default());
    }
}
