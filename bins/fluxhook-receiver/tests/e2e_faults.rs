//! Faults under load, end to end: a burst of deliveries from several senders
//! at once while the fake API server answers a seeded random share of the
//! requests for the selected objects with 500, 502, 503, 504 or 429 (with
//! `Retry-After`), leaves some unanswered, adds latency to every request and
//! drops every watch twice, and while the receiver is restarted (SIGTERM,
//! then started again on the same ports); then pairs of deliveries to one
//! Receiver, the second sent while the first one's patch is in flight.
//!
//! Checked from the API server's request log ([`fluxhook_sandbox::burst`]):
//! no delivery is answered 200 unless, for every object its Receiver selects,
//! a patch that began after it was sent succeeded before it was answered;
//! every other answer is a 5xx; none goes unanswered but during the restart;
//! and once the faults stop every Receiver answers 200 again, with no restart.
//! `cargo xtask faults` runs a larger burst with the same code.
#![allow(clippy::unwrap_used, clippy::panic)]

mod e2e_support;

use fluxhook_sandbox::burst::{self, Answer, Patched, Plan, Target};
use serde_json::json;

use e2e_support::{Delivery, NS, git_repository, log_tail, serve, start, stop};

fn repo(name: &str) -> Patched {
    Patched {
        resource: "gitrepositories".into(),
        namespace: NS.into(),
        name: name.into(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_under_api_faults_and_a_restart_is_never_answered_200_unpatched() {
    let mut sandbox = start(&[]).await;
    let s = &sandbox;
    for name in ["app-0", "app-1"] {
        git_repository(s, NS, name, json!({}));
    }
    for name in ["app-2", "app-3"] {
        git_repository(s, NS, name, json!({"tier": "burst"}));
    }
    let push = Delivery::json(&json!({"ref": "refs/heads/main"}));
    let mut targets = Vec::new();
    // One Receiver per object; two Receivers for one object (their
    // deliveries share patches); one selecting two objects by label (a list,
    // then a patch each).
    for (receiver, resource, objects) in [
        (
            "burst-0",
            json!({"kind": "GitRepository", "name": "app-0"}),
            vec![repo("app-0")],
        ),
        (
            "burst-1a",
            json!({"kind": "GitRepository", "name": "app-1"}),
            vec![repo("app-1")],
        ),
        (
            "burst-1b",
            json!({"kind": "GitRepository", "name": "app-1"}),
            vec![repo("app-1")],
        ),
        (
            "burst-labelled",
            json!({"kind": "GitRepository", "name": "*", "matchLabels": {"tier": "burst"}}),
            vec![repo("app-2"), repo("app-3")],
        ),
    ] {
        let path = serve(
            s,
            receiver,
            &format!("{receiver}-token"),
            json!({"type": "generic", "resources": [resource]}),
        )
        .await;
        targets.push(Target {
            path,
            headers: push.headers.clone(),
            body: push.body.clone(),
            objects,
        });
    }

    let plan = Plan {
        // More faults than the xtask's, so that a small burst meets each kind.
        statuses: vec![
            (500, 0.08),
            (502, 0.05),
            (503, 0.12),
            (504, 0.05),
            (429, 0.1),
        ],
        hang: 0.03,
        // Long enough for a second delivery to arrive while a patch is in
        // flight (which only makes a correct build wait longer).
        latency: std::time::Duration::from_millis(20),
        overlapping: 8,
        ..Plan::every_fault(4, 8, 0x5eed)
    };
    let report = match burst::run(&mut sandbox, targets, &plan).await {
        Ok(report) => report,
        Err(error) => panic!("{error}"),
    };
    // The figures, for `--nocapture`.
    eprint!("{}", report.summary());
    let s = &sandbox;
    let violations: Vec<String> = report
        .violations
        .iter()
        .map(|violation| {
            let delivery = &report.deliveries[violation.delivery];
            format!(
                "delivery {} (sent at {}, answered at {}, {:?}): {}",
                violation.delivery,
                delivery.sent,
                delivery.done,
                delivery.answer,
                violation.problem
            )
        })
        .collect();
    assert!(
        violations.is_empty(),
        "{} of {} deliveries broke the rules:\n{}\nAPI requests: {:?}\nreceiver log:\n{}",
        violations.len(),
        report.deliveries.len(),
        violations.join("\n"),
        report.api_requests,
        log_tail(s)
    );
    // The burst met the faults it was meant to: refused and throttled API
    // requests, and a restart.
    let faulted: usize = report
        .api_requests
        .iter()
        .filter(|((verb, status), _)| {
            verb == "patch" && status.is_some_and(|code| code == 429 || code >= 500)
        })
        .map(|(_, count)| count)
        .sum();
    assert!(
        faulted > 0,
        "no patch met a fault: {:?}",
        report.api_requests
    );
    assert_eq!(report.restarts.len(), 1);
    assert!(
        report.count(|answer| answer == Answer::Status(200)) > 0,
        "no delivery of the burst was accepted"
    );
    stop(sandbox).await;
}
