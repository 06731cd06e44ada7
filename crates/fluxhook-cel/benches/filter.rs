//! What compiling and evaluating a resource filter costs.

#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, criterion_group, criterion_main};
use fluxhook_cel::{Document, Expression, Variables};
use std::hint::black_box;

const FILTER: &str = "has(res.metadata.annotations) && \
    req.image.source.split(':').last().orValue('') == res.metadata.annotations['tag'] && \
    req.commits.exists(c, c.modified.exists(f, f.startsWith(res.metadata.name)))";

fn filter(c: &mut Criterion) {
    c.bench_function("compile", |b| {
        b.iter(|| Expression::compile(black_box(FILTER)).unwrap())
    });

    let body = serde_json::json!({
        "image": {"source": "ghcr.io/org/podinfo:v6.5.0"},
        "commits": (0..20).map(|i| serde_json::json!({"id": i, "modified": [format!("apps/app-{i}.yaml")]}))
            .collect::<Vec<_>>(),
    });
    let object = serde_json::json!({
        "kind": "ImageRepository",
        "metadata": {"name": "podinfo", "annotations": {"tag": "v6.5.0"}},
    });
    c.bench_function("convert request body", |b| {
        b.iter(|| Document::from_object(black_box(body.as_object().unwrap())).unwrap())
    });
    let expression = Expression::compile(FILTER).unwrap();
    let req = Document::from_object(body.as_object().unwrap()).unwrap();
    let res = Document::from_object(object.as_object().unwrap()).unwrap();
    let claims = Document::empty();
    let variables = Variables {
        req: &req,
        res: &res,
        claims: &claims,
    };
    c.bench_function("evaluate", |b| {
        b.iter(|| expression.evaluate_bool(black_box(&variables)).unwrap())
    });
}

criterion_group!(benches, filter);
criterion_main!(benches);
