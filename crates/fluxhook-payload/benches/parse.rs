//! Parsing the shared corpus's real deliveries, per payload.
//!
//! Groups, each with one function per corpus file (e.g. `github/push.json`):
//! - `parse_typed`: [`fluxhook_payload::Parser::parse`], what a receiver pays;
//! - `parse_json_value`: a full `serde_json::Value` tree of the same bytes,
//!   what the typed parse avoids;
//! - `baseline_hmac_sha256` ([`fluxhook_corpus::BASELINE_GROUP`]): HMAC-SHA256
//!   over the same bytes, the cost every delivery pays to be verified.
//!
//! Needs the corpus (`../shared/corpus` or `$FLUXHOOK_CORPUS`).

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fluxhook_corpus::{BASELINE_GROUP, Corpus};
use fluxhook_payload::{Parser, Sender};
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderMap;
use sha2::Sha256;

struct Input {
    id: String,
    sender: Sender,
    headers: HeaderMap,
    body: Bytes,
}

/// Every corpus delivery; exits with the reason if the corpus is unusable.
fn inputs() -> Vec<Input> {
    let fail = |message: String| -> ! {
        eprintln!("benches/parse.rs needs the shared webhook corpus: {message}");
        std::process::exit(1)
    };
    let corpus = Corpus::locate().unwrap_or_else(|e| fail(e.to_string()));
    corpus
        .entries()
        .iter()
        .map(|entry| Input {
            id: entry.bench_id().to_owned(),
            sender: entry
                .provider
                .parse()
                .unwrap_or_else(|e| fail(format!("{}: {e}", entry.file))),
            headers: entry.headers.clone(),
            body: Bytes::from(
                corpus
                    .read_body(entry)
                    .unwrap_or_else(|e| fail(e.to_string())),
            ),
        })
        .collect()
}

fn parse(c: &mut Criterion) {
    let inputs = inputs();
    let parser = Parser::new();

    let mut group = c.benchmark_group("parse_typed");
    for input in &inputs {
        if let Err(e) = parser.parse(input.sender, &input.headers, input.body.clone()) {
            eprintln!("{} does not parse: {e}", input.id);
            std::process::exit(1);
        }
        group.throughput(Throughput::Bytes(input.body.len() as u64));
        group.bench_function(input.id.as_str(), |b| {
            b.iter(|| parser.parse(input.sender, &input.headers, black_box(input.body.clone())))
        });
    }
    group.finish();

    let mut group = c.benchmark_group("parse_json_value");
    for input in &inputs {
        group.throughput(Throughput::Bytes(input.body.len() as u64));
        group.bench_function(input.id.as_str(), |b| {
            b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(&input.body)))
        });
    }
    group.finish();

    let mut group = c.benchmark_group(BASELINE_GROUP);
    let key = b"a webhook secret of typical length";
    for input in &inputs {
        group.throughput(Throughput::Bytes(input.body.len() as u64));
        group.bench_function(input.id.as_str(), |b| {
            b.iter(|| {
                let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
                    unreachable!("HMAC takes keys of any length")
                };
                mac.update(black_box(&input.body));
                mac.finalize().into_bytes()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, parse);
criterion_main!(benches);
