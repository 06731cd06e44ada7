//! No expression and no JSON document makes the crate panic or exhaust the
//! stack: it compiles or reports an error, and evaluates or reports an
//! error.

#![allow(clippy::unwrap_used, clippy::panic)]

use fluxhook_cel::{ClaimRules, CompileError, Document, Expression, MAX_DEPTH, Variables};
use proptest::prelude::*;
use serde_json::{Value, json};

fn document(value: &Value) -> Document {
    Document::from_object(value.as_object().unwrap()).unwrap()
}

fn sample_request() -> Value {
    json!({
        "tag": "v1.2.3", "image": "ghcr.io/org/app:v1", "count": 2, "ok": true, "none": null,
        "list": ["a", "b"], "nums": [1, 2.5], "map": {"a": {"b": "c"}}, "b": {"b": {"b": 1}},
    })
}

fn sample_resource() -> Value {
    json!({"kind": "GitRepository", "metadata": {"name": "app", "labels": {"a": "b"}}})
}

/// Compiles `source` as a filter and as a claim variable, and evaluates
/// what compiles.
fn exercise(source: &str, req: &Document) {
    let res = document(&sample_resource());
    let claims = document(&json!({"sub": "x", "groups": ["a"]}));
    if let Ok(filter) = Expression::compile_with_claims(source) {
        let _ = filter.evaluate_bool(&Variables {
            req,
            res: &res,
            claims: &claims,
        });
    }
    if let Ok(rules) = ClaimRules::compile([("v", source)], [("vars.v == vars.v", "m")]) {
        let _ = rules.verify(&claims);
    }
}

/// Fragments of CEL, recombined into mostly invalid expressions.
const TOKENS: &[&str] = &[
    "req", "res", "claims", "vars", "x", "tag", "metadata", "name", "'a'", "\"b\"", "'''c'''",
    "r'\\d'", "b'\\xff'", "1", "2.5", "3u", "-7", "true", "null", "+", "-", "*", "/", "%", "==",
    "!=", "<", ">=", "&&", "||", "!", "?", ":", ".", ".?", "[", "]", "[?", "(", ")", "{", "}", ",",
    "in", "size", "has", "exists", "all", "map", "filter", "split", "first", "last", "value",
    "orValue", "matches", "int", "string", "optional", "of", "none", "sets", "contains", "dyn",
    "type", "//", "\n",
];

/// A well-formed expression over the sample documents: most of these
/// evaluate, some fail at run time.
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop::sample::select(vec![
        "req.tag",
        "req.count",
        "req.ok",
        "req.none",
        "req.list",
        "req.nums",
        "req.map",
        "req.missing",
        "res.metadata.name",
        "res.metadata.labels",
        "claims.groups",
        "'v1'",
        "1",
        "2.5",
        "0u",
        "true",
        "null",
        "[]",
        "{}",
        "b'x'",
        "req.?tag",
        "[1, 2]",
        "{'k': 'v'}",
    ])
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 32, 3, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "+", "-", "*", "/", "%", "==", "!=", "<", ">", "&&", "||", "in"
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            (
                inner.clone(),
                prop::sample::select(vec![
                    "size()",
                    "split(':')",
                    "first()",
                    "last()",
                    "value()",
                    "orValue('x')",
                    "hasValue()",
                    "startsWith('v')",
                    "lowerAscii()",
                    "contains('a')",
                    "exists(e, e == 'a')",
                    "all(e, e != null)",
                    "map(e, e)",
                    "filter(e, true)",
                    "matches('^v')",
                    "join(',')",
                ])
            )
                .prop_map(|(a, method)| format!("{a}.{method}")),
            (inner.clone(), inner.clone(), inner.clone())
                .prop_map(|(c, a, b)| format!("({c} ? {a} : {b})")),
            inner.clone().prop_map(|a| format!("!{a}")),
            inner.clone().prop_map(|a| format!("has({a}.field)")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("[{a}, {b}]")),
            (inner.clone(), inner).prop_map(|(a, b)| format!("{a}[{b}]")),
        ]
    })
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("JSON has no NaN or infinity", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_text_never_panics(source in ".{0,120}") {
        exercise(&source, &document(&sample_request()));
    }

    #[test]
    fn arbitrary_token_soup_never_panics(tokens in prop::collection::vec(prop::sample::select(TOKENS), 0..40)) {
        exercise(&tokens.join(" "), &document(&sample_request()));
    }

    #[test]
    fn well_formed_expressions_evaluate_or_error(source in expression()) {
        exercise(&source, &document(&sample_request()));
    }

    #[test]
    fn arbitrary_documents_never_panic(body in prop::collection::btree_map("[a-z]{1,4}", json(), 0..6)) {
        let body = Value::Object(body.into_iter().collect());
        let req = document(&body);
        for source in [
            "req.a == 'x'", "has(req.a) && req.a.size() > 0", "req.?a.?b.orValue(1) == 1",
            "req.a.exists(x, x == req.b)", "req.a.map(x, x).size() == 1", "req.a + req.b == req.c",
            "string(req.a) == 'a'", "int(req.a) > 0", "req.a.split(',').first().hasValue()",
            "sets.intersects(req.a, req.b)", "req.a[req.b] == req.c", "req.a in req.b",
        ] {
            exercise(source, &req);
        }
    }
}

/// Expressions nested to any depth, in every way the grammar nests, are
/// rejected before they can exhaust the stack; those accepted evaluate on a
/// thread with the default 2 MiB stack, even in an unoptimized build.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    type Shape = (&'static str, fn(usize) -> String);
    let shapes: [Shape; 10] = [
        ("parentheses", |n| {
            format!("{}true{}", "(".repeat(n), ")".repeat(n))
        }),
        ("lists", |n| {
            format!("{}1{} == []", "[".repeat(n), "]".repeat(n))
        }),
        ("additions", |n| {
            format!("{} == 1", vec!["1"; n].join(" + "))
        }),
        ("selections", |n| format!("req{} == 1", ".b".repeat(n))),
        ("indexes", |n| format!("req{} == 1", "['b']".repeat(n))),
        ("calls", |n| {
            format!("req.tag{}.size() > 0", ".lowerAscii()".repeat(n))
        }),
        ("ternaries", |n| {
            format!("{}true", "req.ok ? true : ".repeat(n))
        }),
        ("negations", |n| {
            format!("{}(req.ok == true)", "!".repeat(n))
        }),
        ("comprehensions", |n| {
            format!("{}true{}", "req.list.exists(x, ".repeat(n), ")".repeat(n))
        }),
        ("optionals", |n| {
            format!("req{}.hasValue()", ".?b".repeat(n))
        }),
    ];
    for (shape, build) in shapes {
        let mut deepest_accepted = 0;
        for n in [
            1, 2, 4, 8, 12, 16, 20, 24, 28, 30, 31, 32, 33, 40, 48, 63, 64, 65, 100, 1_000, 20_000,
        ] {
            let source = build(n);
            match Expression::compile(&source) {
                Ok(filter) => {
                    deepest_accepted = n;
                    std::thread::Builder::new()
                        .stack_size(2 << 20)
                        .spawn(move || {
                            let req = document(&sample_request());
                            let res = document(&sample_resource());
                            let claims = Document::empty();
                            let _ = filter.evaluate_bool(&Variables {
                                req: &req,
                                res: &res,
                                claims: &claims,
                            });
                        })
                        .unwrap()
                        .join()
                        .unwrap();
                }
                Err(CompileError::TooDeep { max, .. }) => assert_eq!(max, MAX_DEPTH),
                Err(CompileError::TooLong { .. }) => assert!(n >= 20_000, "{shape} {n}"),
                Err(other) => panic!("{shape} {n}: {other}"),
            }
        }
        assert!(
            deepest_accepted >= 8,
            "{shape}: only {deepest_accepted} levels accepted"
        );
    }
}
