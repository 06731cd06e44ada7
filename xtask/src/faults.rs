//! `cargo xtask faults`: a burst of deliveries while the API server fails
//! and the receiver restarts.
//!
//! The test Kubernetes API of `fluxhook-sandbox` serves seven Receivers to
//! the `fluxhook-receiver` binary (built for the run, unoptimised, as the
//! tests run it): a `github` one checking HMAC signatures, five `generic`
//! ones each selecting one GitRepository by name, two of them the same one
//! (their deliveries share patches), and one selecting three GitRepositories
//! by label (a list, then a patch each). Several senders deliver to them at
//! once, each delivery on a new connection as GitHub makes them, while the
//! API server, from a seeded random generator, answers the requests for the
//! GitRepositories (patch, list, get) with 500, 502, 503, 504 or 429 with
//! `Retry-After: 1`, leaves some unanswered, adds 5 ms to every request,
//! and drops every watch at a quarter and three quarters of the burst; half
//! way, the receiver is restarted (SIGTERM, then started again on its
//! ports). Then the faults stop, and each Receiver gets a delivery in turn
//! until all answer 200.
//!
//! [`fluxhook_sandbox::burst`] checks every delivery against the API
//! server's request log: a 200 needs, for each selected object, a patch that
//! began after the delivery was sent and succeeded before it was answered;
//! anything else must be a 5xx; no answer at all only during the restart.
//! The same code runs a smaller burst in the test suite (`e2e_faults`).
//! Printed: deliveries, answers, violations (must be 0), how long senders
//! waited, the API requests by answer, and the recovery time after the
//! faults stopped.

use fluxhook_sandbox::burst::{self, Patched, Plan, Target};
use fluxhook_sandbox::{Sandbox, demo};
use hyper::HeaderMap;
use serde_json::{Value, json};

use super::hotpath::own_dir;
use super::measure;

const USAGE: &str = "usage: cargo xtask faults [--clients N] [--deliveries D] [--seed S]

  --clients N     concurrent senders (default 8)
  --deliveries D  deliveries each sender makes, one after the other (default 50)
  --seed S        seeds the choice of the API requests that fail (default 12)";

const NAMESPACE: &str = demo::NAMESPACE;

#[derive(Debug, Clone)]
struct Options {
    clients: usize,
    deliveries: usize,
    seed: u64,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        clients: 8,
        deliveries: 50,
        seed: 12,
    };
    for flag in measure::flags(args, USAGE) {
        match flag.name {
            "--clients" => options.clients = flag.count()?,
            "--deliveries" => options.deliveries = flag.count()?,
            "--seed" => options.seed = flag.value()?.parse().map_err(|_| flag.invalid())?,
            _ => return Err(flag.unknown()),
        }
    }
    Ok(options)
}

/// `cargo xtask faults`: builds the receiver, then runs the burst.
pub(crate) fn run(root: &std::path::Path, args: &[String]) -> Result<(), String> {
    let options = parse(args)?;
    super::cargo(root, &["build", "--quiet", "--bin", "fluxhook-receiver"])?;
    measure::runtime(Some(2))?.block_on(measure(options))
}

fn repo(name: &str) -> Patched {
    Patched {
        resource: "gitrepositories".into(),
        namespace: NAMESPACE.into(),
        name: name.into(),
    }
}

fn git_repository(name: &str, labels: Value) -> Value {
    demo::git_repository(NAMESPACE, name, labels)
}

/// A `generic` Receiver and its Secret.
fn generic_receiver(name: &str, resource: Value) -> [Value; 2] {
    let secret = format!("{name}-token");
    let token = base64_of(&format!("{name}-not-a-secret"));
    [
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": secret, "namespace": NAMESPACE},
            "type": "Opaque",
            "data": {"token": token}
        }),
        json!({
            "apiVersion": demo::RECEIVER_API_VERSION,
            "kind": "Receiver",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"type": "generic", "secretRef": {"name": secret}, "resources": [resource]}
        }),
    ]
}

fn base64_of(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(text)
}

async fn measure(options: Options) -> Result<(), String> {
    let binary = own_dir()?.join("fluxhook-receiver");
    // The same Receivers as the objects they select; generic ones answer
    // any body.
    let named: [(&str, &str); 5] = [
        ("faults-0", "app-0"),
        ("faults-1", "app-1"),
        ("faults-2", "app-2"),
        ("faults-3a", "app-3"),
        ("faults-3b", "app-3"),
    ];
    let mut objects = demo::objects();
    for repo in ["app-0", "app-1", "app-2", "app-3"] {
        objects.push(git_repository(repo, json!({})));
    }
    for repo in ["app-4", "app-5", "app-6"] {
        objects.push(git_repository(repo, json!({"tier": "faults"})));
    }
    for (receiver, repo) in named {
        objects.extend(generic_receiver(
            receiver,
            json!({"kind": "GitRepository", "name": repo}),
        ));
    }
    objects.extend(generic_receiver(
        "faults-labelled",
        json!({"kind": "GitRepository", "name": "*", "matchLabels": {"tier": "faults"}}),
    ));
    let mut sandbox = Sandbox::builder(&binary)
        .args(&["--log-level=info", "--log-encoding=json"])
        .objects(objects)
        .start()
        .await
        .map_err(|e| e.to_string())?;

    let push = demo::github_push();
    let mut json_headers = HeaderMap::new();
    json_headers.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    let generic_body = br#"{"ref":"refs/heads/main"}"#.to_vec();
    let mut targets = vec![Target {
        path: path_of(&sandbox, demo::RECEIVER).await?,
        headers: push.headers,
        body: push.body,
        objects: vec![repo(demo::GIT_REPOSITORY)],
    }];
    for (receiver, object) in named {
        targets.push(Target {
            path: path_of(&sandbox, receiver).await?,
            headers: json_headers.clone(),
            body: generic_body.clone(),
            objects: vec![repo(object)],
        });
    }
    targets.push(Target {
        path: path_of(&sandbox, "faults-labelled").await?,
        headers: json_headers,
        body: generic_body,
        objects: ["app-4", "app-5", "app-6"].map(repo).to_vec(),
    });

    let plan = Plan::every_fault(options.clients, options.deliveries, options.seed);
    println!(
        "faults: {} senders x {} deliveries to {} Receivers, seed {}; the receiver is {}",
        plan.clients,
        plan.per_client,
        targets.len(),
        plan.seed,
        binary.display()
    );
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let report = burst::run(&mut sandbox, targets, &plan)
        .await
        .map_err(|e| e.to_string())?;
    print!("{}", report.summary());
    println!(
        "load average before: {}, after: {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = sandbox.stop().await;
    if report.violations.is_empty() {
        Ok(())
    } else {
        Err(format!("{} violations", report.violations.len()))
    }
}

async fn path_of(sandbox: &Sandbox, receiver: &str) -> Result<String, String> {
    sandbox
        .wait_for_webhook_path(NAMESPACE, receiver)
        .await
        .map_err(|e| e.to_string())
}
