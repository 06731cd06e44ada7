//! Cost of verifying real deliveries, against plain HMAC-SHA256 of the same bytes.
//!
//! Every delivery of the shared corpus is signed the way its host signs and
//! verified under each policy a Flux receiver would apply to it (group
//! `verify/<policy>`, input `<provider>/<file>`). The group
//! `baseline_hmac_sha256` measures hmac + sha2 directly over the same bodies
//! in the same run, so `cargo xtask bench` can report each verification as a
//! ratio to the bare HMAC.
//!
//! Needs the corpus (`$FLUXHOOK_CORPUS` or `../shared/corpus`); without it the
//! benchmark stops with a message saying where it looked.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Duration;

use criterion::{Criterion, Throughput};
use fluxhook_corpus::{BASELINE_GROUP, Corpus, Entry};
use fluxhook_signature::Policy;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

const SECRET: &[u8] = b"fluxhook-bench-secret";

/// A corpus delivery with its body and headers signed for its policies.
struct Delivery<'c> {
    entry: &'c Entry,
    body: Vec<u8>,
    headers: HeaderMap,
    policies: &'static [Policy],
}

fn signed_deliveries(corpus: &Corpus) -> Result<Vec<Delivery<'_>>, String> {
    let mut deliveries = Vec::new();
    for entry in corpus.entries() {
        let policies = entry.signature_policies();
        if policies.is_empty() {
            continue;
        }
        let body = corpus.read_body(entry).map_err(|e| e.to_string())?;
        let mut headers = entry.headers.clone();
        for policy in policies {
            let (name, value) = policy
                .signing_scheme()
                .sign(&body, SECRET)
                .map_err(|e| format!("signing {}: {e}", entry.file))?;
            headers.insert(name, value);
        }
        for policy in policies {
            policy
                .verify(&headers, &body, SECRET)
                .map_err(|e| format!("{} rejects {}: {e}", policy.name(), entry.file))?;
        }
        deliveries.push(Delivery {
            entry,
            body,
            headers,
            policies,
        });
    }
    Ok(deliveries)
}

fn bench(c: &mut Criterion, deliveries: &[Delivery<'_>]) {
    let mut baseline = c.benchmark_group(BASELINE_GROUP);
    for d in deliveries {
        baseline.throughput(Throughput::Bytes(d.body.len() as u64));
        baseline.bench_function(d.entry.bench_id(), |b| {
            b.iter(|| {
                let mut mac = Hmac::<Sha256>::new_from_slice(black_box(SECRET))
                    .expect("HMAC takes keys of any length");
                mac.update(black_box(&d.body));
                mac.finalize().into_bytes()
            });
        });
    }
    baseline.finish();

    for policy in Policy::ALL {
        let measured: Vec<_> = deliveries
            .iter()
            .filter(|d| d.policies.contains(&policy))
            .collect();
        if measured.is_empty() {
            continue;
        }
        let mut group = c.benchmark_group(format!("verify/{}", policy.name()));
        for d in measured {
            group.throughput(Throughput::Bytes(d.body.len() as u64));
            group.bench_function(d.entry.bench_id(), |b| {
                b.iter(|| {
                    policy
                        .verify(black_box(&d.headers), black_box(&d.body), SECRET)
                        .is_ok()
                });
            });
        }
        group.finish();
    }
}

fn main() -> ExitCode {
    let corpus = match Corpus::locate() {
        Ok(corpus) => corpus,
        Err(err) => {
            eprintln!("fluxhook-signature's verify benchmark needs the shared corpus: {err}");
            return ExitCode::FAILURE;
        }
    };
    let deliveries = match signed_deliveries(&corpus) {
        Ok(deliveries) => deliveries,
        Err(err) => {
            eprintln!("fluxhook-signature's verify benchmark cannot prepare the corpus: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Payloads are a few KiB: short runs give stable medians, and the whole
    // corpus (about 270 benchmarks) then takes minutes, not an hour.
    let mut criterion = Criterion::default()
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1))
        .configure_from_args();
    bench(&mut criterion, &deliveries);
    criterion.final_summary();
    ExitCode::SUCCESS
}
