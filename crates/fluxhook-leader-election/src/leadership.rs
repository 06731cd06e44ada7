//! The handle writers consult: leading now, and for how long at most.

use std::future::Future;

use futures::Stream;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where a process stands in the election.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Term {
    /// Another process leads, or nobody does yet.
    Following,
    /// This process leads until `until` at the latest: the start of its last successful
    /// renewal plus the renew deadline, which falls before anyone else may take the lease.
    Leading {
        /// When leading ends unless a renewal extends it.
        until: Instant,
        /// Counts the terms, so that a new term is told from an extended one.
        term: u64,
    },
    /// No election: this process always leads.
    Always,
    /// This process never leads (it writes nothing).
    Never,
}

/// Whether this process may write now, as the election decides.
///
/// Cheap to clone; every clone follows the same election. [`Leadership::is_leader`] checks
/// the term's end against the clock on each call, so a process whose election task is
/// stalled still stops writing at the renew deadline.
///
/// ```
/// use fluxhook_leader_election::Leadership;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let single = Leadership::always();
/// assert!(single.is_leader());
/// assert_eq!(single.lead(async { 42 }).await, Ok(42));
///
/// let beside = Leadership::never();
/// assert!(!beside.is_leader());
/// assert!(beside.lead(async { 42 }).await.is_err());
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Leadership {
    term: watch::Receiver<Term>,
}

/// A write was not made (or was cut short) because this process does not lead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not the leader: another replica writes")]
pub struct NotLeader;

impl Leadership {
    /// A process without election, that always leads (one replica).
    pub fn always() -> Self {
        Self::fixed(Term::Always)
    }

    /// A process that never leads: it writes nothing.
    pub fn never() -> Self {
        Self::fixed(Term::Never)
    }

    fn fixed(term: Term) -> Self {
        // The sender goes: the term never changes, and `changed()` then fails at once.
        let (_, term) = watch::channel(term);
        Self { term }
    }

    pub(crate) fn following() -> (watch::Sender<Term>, Self) {
        let (sender, term) = watch::channel(Term::Following);
        (sender, Self { term })
    }

    /// Whether this process leads now.
    pub fn is_leader(&self) -> bool {
        match *self.term.borrow() {
            Term::Always => true,
            // A dropped election leads nobody.
            Term::Leading { until, .. } => {
                Instant::now() < until && self.term.has_changed().is_ok()
            }
            Term::Following | Term::Never => false,
        }
    }

    /// Resolves once this process does not lead (at once if it does not lead now); never for
    /// [`Leadership::always`].
    pub async fn lost(&self) {
        let mut term = self.term.clone();
        loop {
            let current = *term.borrow_and_update();
            match current {
                Term::Following | Term::Never => return,
                Term::Leading { until, .. } => {
                    if Instant::now() >= until {
                        return;
                    }
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => return,
                        changed = term.changed() => if changed.is_err() { return },
                    }
                }
                Term::Always => {
                    if term.changed().await.is_err() {
                        return std::future::pending().await;
                    }
                }
            }
        }
    }

    /// Runs `write` if this process leads, and drops it (cancelling it where it stands) as
    /// soon as it stops leading; [`NotLeader`] if it did not run to its end.
    pub async fn lead<F: Future>(&self, write: F) -> Result<F::Output, NotLeader> {
        if !self.is_leader() {
            return Err(NotLeader);
        }
        tokio::select! {
            biased;
            () = self.lost() => Err(NotLeader),
            output = write => Ok(output),
        }
    }

    /// Yields once each time this process starts leading (a new term, not a renewal),
    /// including a term already begun when called; ends when the election stops, and at
    /// once for [`Leadership::always`] and [`Leadership::never`], which begin no term.
    pub fn terms(&self) -> impl Stream<Item = ()> + Send + 'static {
        let term = self.term.clone();
        futures::stream::unfold((term, None::<u64>), |(mut term, mut seen)| async move {
            loop {
                let started = match *term.borrow_and_update() {
                    Term::Leading { term, .. } => Some(term),
                    // Fixed positions begin no term after the start.
                    Term::Always | Term::Following | Term::Never => None,
                };
                if let Some(started) = started
                    && seen != Some(started)
                {
                    seen = Some(started);
                    return Some(((), (term, seen)));
                }
                term.changed().await.ok()?;
            }
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::time::Duration;

    use futures::StreamExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn leads_until_the_end_of_its_term_and_not_a_moment_later() {
        let (sender, leadership) = Leadership::following();
        assert!(!leadership.is_leader());
        assert_eq!(leadership.lead(async {}).await, Err(NotLeader));

        let until = Instant::now() + Duration::from_secs(30);
        sender.send(Term::Leading { until, term: 1 }).unwrap();
        assert!(leadership.is_leader());

        // Nobody renews: the term ends by the clock alone.
        tokio::time::sleep(Duration::from_secs(30)).await;
        assert!(!leadership.is_leader());
        leadership.lost().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_in_flight_is_cut_short_when_the_term_ends() {
        let (sender, leadership) = Leadership::following();
        let until = Instant::now() + Duration::from_secs(10);
        sender.send(Term::Leading { until, term: 1 }).unwrap();

        let slow = tokio::time::sleep(Duration::from_secs(60));
        assert_eq!(leadership.lead(slow).await, Err(NotLeader));

        sender
            .send(Term::Leading {
                until: Instant::now() + Duration::from_secs(10),
                term: 2,
            })
            .unwrap();
        let stepping_down = {
            let sender = sender.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(1)).await;
                sender.send(Term::Following).unwrap();
            }
        };
        let (written, ()) = tokio::join!(
            leadership.lead(tokio::time::sleep(Duration::from_secs(5))),
            stepping_down
        );
        assert_eq!(written, Err(NotLeader));
    }

    #[tokio::test(start_paused = true)]
    async fn terms_yield_once_per_new_term_not_per_renewal() {
        let (sender, leadership) = Leadership::following();
        let mut terms = Box::pin(leadership.terms());
        let far = Instant::now() + Duration::from_secs(3600);

        sender
            .send(Term::Leading {
                until: far,
                term: 1,
            })
            .unwrap();
        terms.next().await.unwrap();
        // A renewal extends the same term.
        sender
            .send(Term::Leading {
                until: far + Duration::from_secs(1),
                term: 1,
            })
            .unwrap();
        sender.send(Term::Following).unwrap();
        sender
            .send(Term::Leading {
                until: far,
                term: 2,
            })
            .unwrap();
        terms.next().await.unwrap();
        drop(sender);
        assert!(terms.next().await.is_none());
    }

    #[tokio::test]
    async fn fixed_positions_never_change() {
        let always = Leadership::always();
        assert!(Box::pin(always.terms()).next().await.is_none());
        assert_eq!(always.lead(async { 1 }).await, Ok(1));

        let never = Leadership::never();
        never.lost().await;
        assert!(Box::pin(never.terms()).next().await.is_none());
    }
}
