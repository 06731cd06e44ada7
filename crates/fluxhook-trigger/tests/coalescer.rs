//! The coalescer's guarantees, checked with a fake operation that records
//! when each run starts on a logical clock (a shared sequence number), never
//! against the wall clock.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fluxhook_trigger::{Coalescer, RunAbandoned};
use futures::future::join_all;
use proptest::prelude::*;
use tokio::sync::Semaphore;

/// What a fake run answers: the logical time at which it started.
type Start = u64;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Failure {
    /// The run that started at this logical time failed.
    Run(Start),
    Abandoned,
}

impl From<RunAbandoned> for Failure {
    fn from(_: RunAbandoned) -> Self {
        Failure::Abandoned
    }
}

#[derive(Debug, Clone, Copy)]
struct Run {
    key: u8,
    start: Start,
    failed: bool,
}

/// The logical clock and what the fake operation saw.
#[derive(Default)]
struct Log {
    clock: AtomicU64,
    runs: Mutex<Vec<Run>>,
    in_flight: Mutex<HashMap<u8, usize>>,
    most_in_flight: Mutex<usize>,
}

impl Log {
    fn tick(&self) -> u64 {
        self.clock.fetch_add(1, Ordering::SeqCst)
    }

    fn runs(&self) -> Vec<Run> {
        self.runs.lock().unwrap().clone()
    }

    /// Records a run starting for `key`; returns its index and start time.
    fn begin(&self, key: u8, fails: impl Fn(usize) -> bool) -> (usize, Run) {
        let start = self.tick();
        let mut runs = self.runs.lock().unwrap();
        let index = runs.len();
        let run = Run {
            key,
            start,
            failed: fails(index),
        };
        runs.push(run);
        let mut in_flight = self.in_flight.lock().unwrap();
        let n = in_flight.entry(key).or_default();
        *n += 1;
        let mut most = self.most_in_flight.lock().unwrap();
        *most = (*most).max(*n);
        (index, run)
    }

    fn end(&self, run: Run) -> Result<Start, Failure> {
        *self.in_flight.lock().unwrap().get_mut(&run.key).unwrap() -= 1;
        if run.failed {
            Err(Failure::Run(run.start))
        } else {
            Ok(run.start)
        }
    }
}

/// A coalescer whose runs last `duration(run index)` of (paused) tokio time
/// and fail when `fails(run index)`.
fn sleeping_coalescer(
    log: &Arc<Log>,
    duration: impl Fn(usize) -> Duration + Send + Sync + 'static,
    fails: impl Fn(usize) -> bool + Send + Sync + 'static,
) -> Coalescer<u8, Start, Failure> {
    let log = Arc::clone(log);
    Coalescer::new(move |key| {
        let (index, run) = log.begin(key, &fails);
        let sleep = tokio::time::sleep(duration(index));
        let log = Arc::clone(&log);
        async move {
            sleep.await;
            log.end(run)
        }
    })
}

/// A coalescer whose runs each wait for one permit of `gate`.
fn gated_coalescer(
    log: &Arc<Log>,
    gate: &Arc<Semaphore>,
    fails: fn(usize) -> bool,
) -> Coalescer<u8, Start, Failure> {
    let log = Arc::clone(log);
    let gate = Arc::clone(gate);
    Coalescer::new(move |key| {
        let (_, run) = log.begin(key, fails);
        let log = Arc::clone(&log);
        let gate = Arc::clone(&gate);
        async move {
            gate.acquire().await.unwrap().forget();
            log.end(run)
        }
    })
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// Waits for `answers`, failing instead of hanging if they never come: with
/// the clock paused, an idle runtime jumps straight to the deadline.
async fn answered<F: std::future::Future>(answers: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(3600), answers)
        .await
        .expect("every request is answered")
}

/// Lets every ready task run until none can make progress.
async fn settle() {
    for _ in 0..64 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_burst_during_a_run_costs_one_more_run() {
    let log = Arc::new(Log::default());
    let gate = Arc::new(Semaphore::new(0));
    let coalescer = gated_coalescer(&log, &gate, |_| false);

    let first = tokio::spawn({
        let c = coalescer.clone();
        async move { c.request(7).await }
    });
    settle().await;
    assert_eq!(
        log.runs().len(),
        1,
        "the first request starts a run at once"
    );

    let burst: Vec<_> = (0..100)
        .map(|_| {
            let c = coalescer.clone();
            tokio::spawn(async move { c.request(7).await })
        })
        .collect();
    settle().await;
    assert_eq!(
        log.runs().len(),
        1,
        "requests during a run wait for the queued run"
    );

    gate.add_permits(2);
    let first = answered(first).await.unwrap().unwrap();
    let burst: Vec<Start> = answered(join_all(burst))
        .await
        .into_iter()
        .map(|r| r.unwrap().unwrap())
        .collect();

    let runs = log.runs();
    assert_eq!(runs.len(), 2);
    assert_eq!(first, runs[0].start);
    assert!(burst.iter().all(|&start| start == runs[1].start));
    assert_eq!(coalescer.busy_keys(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_error_reaches_exactly_the_waiters_of_its_run() {
    let log = Arc::new(Log::default());
    let gate = Arc::new(Semaphore::new(0));
    let coalescer = gated_coalescer(&log, &gate, |index| index == 0);

    let first = tokio::spawn({
        let c = coalescer.clone();
        async move { c.request(1).await }
    });
    settle().await;
    let queued: Vec<_> = (0..5)
        .map(|_| {
            let c = coalescer.clone();
            tokio::spawn(async move { c.request(1).await })
        })
        .collect();
    settle().await;
    gate.add_permits(2);

    let runs = {
        let first = answered(first).await.unwrap();
        let queued: Vec<_> = answered(join_all(queued))
            .await
            .into_iter()
            .map(Result::unwrap)
            .collect();
        let runs = log.runs();
        assert_eq!(first, Err(Failure::Run(runs[0].start)));
        assert!(queued.iter().all(|r| *r == Ok(runs[1].start)));
        runs
    };
    assert_eq!(runs.len(), 2);
    assert_eq!(coalescer.busy_keys(), 0);
}

#[tokio::test(start_paused = true)]
async fn keys_do_not_wait_for_each_other() {
    let log = Arc::new(Log::default());
    let gate = Arc::new(Semaphore::new(0));
    let coalescer = gated_coalescer(&log, &gate, |_| false);

    let waiting: Vec<_> = (0..4u8)
        .map(|key| {
            let c = coalescer.clone();
            tokio::spawn(async move { c.request(key).await })
        })
        .collect();
    settle().await;
    assert_eq!(log.runs().len(), 4, "each key runs at once");
    assert_eq!(coalescer.busy_keys(), 4);
    gate.add_permits(4);
    for answer in answered(join_all(waiting)).await {
        answer.unwrap().unwrap();
    }
    assert_eq!(coalescer.busy_keys(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_stops_waiting_cancels_nothing_for_the_others() {
    let log = Arc::new(Log::default());
    let gate = Arc::new(Semaphore::new(0));
    let coalescer = gated_coalescer(&log, &gate, |_| false);

    // Two callers share the run in flight; one of them gives up.
    let leaving = tokio::spawn({
        let c = coalescer.clone();
        async move { c.request(3).await }
    });
    let staying = tokio::spawn({
        let c = coalescer.clone();
        async move { c.request(3).await }
    });
    settle().await;
    leaving.abort();
    gate.add_permits(1);
    assert_eq!(answered(staying).await.unwrap(), Ok(log.runs()[0].start));
    assert_eq!(log.runs().len(), 1);
    assert_eq!(coalescer.busy_keys(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_queued_run_nobody_waits_for_is_skipped() {
    let log = Arc::new(Log::default());
    let gate = Arc::new(Semaphore::new(0));
    let coalescer = gated_coalescer(&log, &gate, |_| false);

    let first = tokio::spawn({
        let c = coalescer.clone();
        async move { c.request(3).await }
    });
    settle().await;
    let queued = tokio::spawn({
        let c = coalescer.clone();
        async move { c.request(3).await }
    });
    settle().await;
    queued.abort();
    settle().await;
    gate.add_permits(1);
    answered(first).await.unwrap().unwrap();
    assert_eq!(log.runs().len(), 1);
    assert_eq!(coalescer.busy_keys(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_run_answers_its_waiters_and_releases_the_key() {
    let runs = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&runs);
    let coalescer: Coalescer<u8, u64, Failure> = Coalescer::new(move |_| {
        let run = counter.fetch_add(1, Ordering::SeqCst);
        async move {
            tokio::task::yield_now().await;
            if run == 0 {
                panic!("the first run panics");
            }
            Ok(run)
        }
    });

    let answers = answered(join_all((0..3).map(|_| coalescer.request(9)))).await;
    assert!(answers.iter().all(|a| *a == Err(Failure::Abandoned)));
    assert_eq!(coalescer.busy_keys(), 0);
    assert_eq!(answered(coalescer.request(9)).await, Ok(1));
}

#[test]
fn many_threads_still_get_fresh_answers() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let log = Arc::new(Log::default());
    let coalescer = sleeping_coalescer(&log, |_| Duration::ZERO, |_| false);
    let answers = runtime.block_on(async {
        let tasks: Vec<_> = (0..400u32)
            .map(|i| {
                let c = coalescer.clone();
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let key = u8::try_from(i % 4).unwrap();
                    let arrival = log.tick();
                    (arrival, c.request(key).await)
                })
            })
            .collect();
        // A hang guard, not a speed check: only a lost request reaches it.
        tokio::time::timeout(Duration::from_secs(300), join_all(tasks))
            .await
            .expect("every request is answered")
    });
    for answer in answers {
        let (arrival, start) = answer.unwrap();
        assert!(
            start.unwrap() > arrival,
            "answered by a run that began before the request"
        );
    }
    assert_eq!(*log.most_in_flight.lock().unwrap(), 1);
    assert_eq!(coalescer.busy_keys(), 0);
}

/// One request: its key and when (in paused tokio time) it arrives.
fn requests() -> impl Strategy<Value = Vec<(u8, u64)>> {
    proptest::collection::vec((0u8..3, 0u64..40), 1..40)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Over random arrivals, run lengths and failures: every request is
    /// answered by exactly the first run of its key that began after it
    /// arrived (so at most one run is queued, and nothing is lost), with that
    /// run's own result; no key ever has two runs in flight; no run is
    /// wasted; and no state is left behind.
    #[test]
    fn every_request_gets_the_first_run_that_began_after_it(
        requests in requests(),
        durations in proptest::collection::vec(0u64..10, 1..8),
        failures in proptest::collection::vec(any::<bool>(), 1..8),
    ) {
        let log = Arc::new(Log::default());
        let coalescer = sleeping_coalescer(
            &log,
            move |index| Duration::from_millis(durations[index % durations.len()]),
            move |index| failures[index % failures.len()],
        );
        let answers = paused_runtime().block_on(async {
            let tasks: Vec<_> = requests
                .iter()
                .map(|&(key, arrives_at)| {
                    let c = coalescer.clone();
                    let log = Arc::clone(&log);
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(arrives_at)).await;
                        // Single-threaded: nothing runs between this tick and
                        // the request registering at its first poll.
                        let arrival = log.tick();
                        (key, arrival, c.request(key).await)
                    })
                })
                .collect();
            answered(join_all(tasks)).await
        });

        let runs = log.runs();
        let mut answered = vec![false; runs.len()];
        for answer in answers {
            let (key, arrival, result) = answer.unwrap();
            let (index, expected) = runs
                .iter()
                .enumerate()
                .find(|(_, run)| run.key == key && run.start > arrival)
                .expect("a run began after the request");
            answered[index] = true;
            let wanted = if expected.failed { Err(Failure::Run(expected.start)) } else { Ok(expected.start) };
            prop_assert_eq!(result, wanted);
        }
        prop_assert!(answered.iter().all(|a| *a), "a run answered nobody");
        prop_assert!(*log.most_in_flight.lock().unwrap() <= 1);
        prop_assert_eq!(coalescer.busy_keys(), 0);
    }
}
