//! The expressions Flux documents and tests, with the results cel-go (Flux's
//! notification-controller) gives for them, and the semantic edge cases a
//! Receiver's author meets: missing fields, `has()`, optionals, `split`,
//! `first`/`last`, numbers from JSON.

#![allow(clippy::unwrap_used, clippy::panic)]

use fluxhook_cel::{
    ClaimRules, ClaimsError, CompileError, Document, EvalError, Expression, Position,
    RuleCompileError, Variables,
};
use serde_json::{Value, json};

fn document(value: Value) -> Document {
    Document::from_object(value.as_object().unwrap()).unwrap()
}

/// A Flux object as the controller reads it for `res`: `PartialObjectMetadata`
/// marshalled to JSON.
fn resource(kind: &str, name: &str, labels: Value, annotations: Value) -> Document {
    document(json!({
        "apiVersion": "source.toolkit.fluxcd.io/v1",
        "kind": kind,
        "metadata": {
            "name": name,
            "namespace": "flux-system",
            "labels": labels,
            "annotations": annotations,
            "generation": 3,
        },
    }))
}

fn evaluate(
    source: &str,
    req: &Document,
    res: &Document,
    claims: &Document,
) -> Result<bool, EvalError> {
    // Only generic-oidc filters declare `claims`.
    let compiled = if source.contains("claims") {
        Expression::compile_with_claims(source)
    } else {
        Expression::compile(source)
    };
    compiled
        .unwrap_or_else(|e| panic!("{source}: {e}"))
        .evaluate_bool(&Variables { req, res, claims })
}

struct Case {
    /// Where the expression comes from.
    source: &'static str,
    expression: &'static str,
    req: Value,
    res: (&'static str, &'static str),
    claims: Value,
    /// cel-go's result: the boolean, or the evaluation error's message.
    expected: Result<bool, &'static str>,
}

#[test]
fn flux_resource_filters_give_cel_go_results() {
    let cases = [
        // fluxcd/notification-controller internal/server/receiver_resource_filter_test.go,
        // TestCELEvaluation.
        Case {
            source: "receiver_resource_filter_test.go: name and request field",
            expression: "res.metadata.name == 'test-resource' && req.target.repository == 'hello-world'",
            req: json!({"target": {"repository": "hello-world"}}),
            res: ("Receiver", "test-resource"),
            claims: json!({}),
            expected: Ok(true),
        },
        Case {
            source: "receiver_resource_filter_test.go: a JSON bool compared to true",
            expression: "req.bool == true",
            req: json!({"bool": true}),
            res: ("Receiver", "test-resource"),
            claims: json!({}),
            expected: Ok(true),
        },
        Case {
            source: "receiver_resource_filter_test.go: split, last() and value()",
            expression: "res.metadata.name == 'test-resource' && req.image.source.split(':').last().value().startsWith('v')",
            req: json!({"image": {"source": "hello-world:v1.0.0"}}),
            res: ("Receiver", "test-resource"),
            claims: json!({}),
            expected: Ok(true),
        },
        Case {
            source: "receiver_resource_filter_test.go: the same for another resource",
            expression: "res.metadata.name == 'test-resource' && req.image.source.split(':').last().value().startsWith('v')",
            req: json!({"image": {"source": "hello-world:v1.0.0"}}),
            res: ("Receiver", "other-resource"),
            claims: json!({}),
            expected: Ok(false),
        },
        // Flux's receiver docs, "CEL resource filtering": an ImageRepository
        // selected by name '*' and filtered on the pushed tag.
        Case {
            source: "receivers docs: tag contains the resource name",
            expression: "req.tag.contains(res.metadata.name)",
            req: json!({"tag": "podinfo-6.5.0"}),
            res: ("ImageRepository", "podinfo"),
            claims: json!({}),
            expected: Ok(true),
        },
        Case {
            source: "receivers docs: tag does not contain the resource name",
            expression: "req.tag.contains(res.metadata.name)",
            req: json!({"tag": "podinfo-6.5.0"}),
            res: ("ImageRepository", "nginx"),
            claims: json!({}),
            expected: Ok(false),
        },
        Case {
            source: "receivers docs: a payload without the field is an error, not false",
            expression: "req.tag.contains(res.metadata.name)",
            req: json!({"image": "podinfo"}),
            res: ("ImageRepository", "podinfo"),
            claims: json!({}),
            expected: Err("no such key: tag"),
        },
        // fluxcd/notification-controller PR #1313 (claims in resourceFilter)
        // and #1314: one generic-oidc Receiver, each repository allowed to
        // trigger only its own resources.
        Case {
            source: "PR #1313: d2-fleet may trigger the OCIRepository",
            expression: "(claims.repository == 'controlplaneio-fluxcd/d2-fleet' && res.kind == 'OCIRepository') || \
                         (claims.repository == 'controlplaneio-fluxcd/flux-appx' && res.kind == 'ResourceSetInputProvider')",
            req: json!({}),
            res: ("OCIRepository", "d2-fleet"),
            claims: json!({"repository": "controlplaneio-fluxcd/d2-fleet"}),
            expected: Ok(true),
        },
        Case {
            source: "PR #1313: flux-appx may not trigger the OCIRepository",
            expression: "(claims.repository == 'controlplaneio-fluxcd/d2-fleet' && res.kind == 'OCIRepository') || \
                         (claims.repository == 'controlplaneio-fluxcd/flux-appx' && res.kind == 'ResourceSetInputProvider')",
            req: json!({}),
            res: ("OCIRepository", "d2-fleet"),
            claims: json!({"repository": "controlplaneio-fluxcd/flux-appx"}),
            expected: Ok(false),
        },
        // gcr: req is the event unwrapped from the Pub/Sub message
        // (receiver_handlers.go decodes message.data).
        Case {
            source: "gcr: unwrapped event",
            expression: "req.action == 'INSERT' && req.tag.endsWith(':' + res.metadata.labels['tag'])",
            req: json!({"action": "INSERT", "digest": "gcr.io/p/app@sha256:0", "tag": "gcr.io/p/app:v2"}),
            res: ("ImageRepository", "app"),
            claims: json!({}),
            expected: Ok(true),
        },
    ];
    for case in cases {
        let req = document(case.req);
        let res = resource(case.res.0, case.res.1, json!({"tag": "v2"}), json!({}));
        let claims = document(case.claims);
        let got = evaluate(case.expression, &req, &res, &claims);
        let expected = case.expected.map_err(|m| EvalError::Runtime(m.to_owned()));
        assert_eq!(got, expected, "{}: {}", case.source, case.expression);
    }
}

#[test]
fn compiled_rules_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Expression>();
    shareable::<ClaimRules>();
    shareable::<Document>();
}

#[test]
fn flux_rejects_the_expressions_flux_rejects() {
    // receiver_resource_filter_test.go, TestValidateCELExpression*.
    for valid in ["true", "false", "req.value == 'test'"] {
        assert!(Expression::compile(valid).is_ok(), "{valid}");
    }
    assert_eq!(
        Expression::compile("'test'").unwrap_err().to_string(),
        "CEL expression output type mismatch: expected bool, got string"
    );
    let undeclared = Expression::compile("requrest.body.value").unwrap_err();
    assert!(
        undeclared
            .to_string()
            .contains("undeclared reference to 'requrest'"),
        "{undeclared}"
    );
    // A JSON field has no static type: Flux writes `req.bool == true`.
    assert_eq!(
        Expression::compile("req.bool").unwrap_err(),
        CompileError::OutputType {
            expected: "bool".to_owned(),
            found: "dyn".to_owned()
        }
    );
}

#[test]
fn compile_errors_name_the_problem_and_where_it_is() {
    let cases = [
        (
            "req.a == 'x' &&\n  reqq.b == 'y'",
            Position { line: 2, column: 3 },
            "undeclared reference to 'reqq'",
        ),
        (
            "req.a.startsWith(1)",
            Position {
                line: 1,
                column: 17,
            },
            "found no matching overload for 'startsWith'",
        ),
        (
            "req.a == ",
            Position {
                line: 1,
                column: 10,
            },
            "syntax error at line 1, column 10: mismatched input '<EOF>'",
        ),
        (
            "'unterminated",
            Position { line: 1, column: 1 },
            "unterminated string literal",
        ),
    ];
    for (source, position, message) in cases {
        let error = Expression::compile(source).unwrap_err();
        assert_eq!(error.position(), Some(position), "{source}: {error}");
        assert!(error.to_string().contains(message), "{source}: {error}");
    }
}

fn eval_with_req(source: &str, req: Value) -> Result<bool, EvalError> {
    let empty = Document::empty();
    evaluate(source, &document(req), &empty, &empty)
}

#[test]
fn missing_fields_are_errors_that_has_and_optionals_avoid() {
    let req = json!({"tag": "v1", "meta": {"labels": {}}});
    for (source, expected) in [
        ("req.image == 'x'", Err("no such key: image")),
        ("req.meta.labels.app == 'x'", Err("no such key: app")),
        ("has(req.image)", Ok(false)),
        ("has(req.tag)", Ok(true)),
        ("has(req.meta.labels.app)", Ok(false)),
        ("has(req.image) && req.image == 'x'", Ok(false)),
        ("req.?image.orValue('none') == 'none'", Ok(true)),
        ("req.?meta.?labels.?app.orValue('none') == 'none'", Ok(true)),
        ("req.?tag.value() == 'v1'", Ok(true)),
        ("req.?image.hasValue()", Ok(false)),
        (
            "req.?image.value() == 'x'",
            Err("optional.none() dereference"),
        ),
        ("req.meta.labels[?'app'].orValue('') == ''", Ok(true)),
        // Errors are absorbed by a deciding operand of && and ||, on either
        // side, as in cel-go.
        ("req.image == 'x' || true", Ok(true)),
        ("false && req.image == 'x'", Ok(false)),
        ("req.image == 'x' && false", Ok(false)),
        ("req.image == 'x' || false", Err("no such key: image")),
        ("true ? true : req.image == 'x'", Ok(true)),
    ] {
        let expected = expected.map_err(|m| EvalError::Runtime(m.to_owned()));
        assert_eq!(eval_with_req(source, req.clone()), expected, "{source}");
    }
}

#[test]
fn split_first_and_last_follow_cel_go() {
    let req = json!({"image": "ghcr.io/org/app:v1.2.3", "empty": "", "list": []});
    for (source, expected) in [
        (
            "req.image.split(':').first().value() == 'ghcr.io/org/app'",
            Ok(true),
        ),
        (
            "req.image.split('/').last().value() == 'app:v1.2.3'",
            Ok(true),
        ),
        (
            "req.image.split(':', 2) == ['ghcr.io/org/app', 'v1.2.3']",
            Ok(true),
        ),
        (
            "req.image.split('/', 2) == ['ghcr.io', 'org/app:v1.2.3']",
            Ok(true),
        ),
        ("req.image.split('/', 0) == []", Ok(true)),
        ("req.image.split('/', -1).size() == 3", Ok(true)),
        ("req.image.split('@') == [req.image]", Ok(true)),
        // Go's strings.Split: an empty string splits into one empty string,
        // an empty separator into characters.
        ("req.empty.split(',') == ['']", Ok(true)),
        ("'abc'.split('') == ['a', 'b', 'c']", Ok(true)),
        // first() and last() of an empty list are optional.none().
        ("req.list.first().hasValue()", Ok(false)),
        ("req.list.last().orValue('none') == 'none'", Ok(true)),
        (
            "req.list.first().value() == 'x'",
            Err("optional.none() dereference"),
        ),
        ("[1, 2, 3].last() == optional.of(3)", Ok(true)),
        (
            "optional.unwrap([optional.of(1), optional.none()]) == [1]",
            Ok(true),
        ),
        (
            "[optional.none(), optional.of('a')].unwrapOpt() == ['a']",
            Ok(true),
        ),
        (
            "req.image.lowerAscii().replace('ghcr.io/', '') == 'org/app:v1.2.3'",
            Ok(true),
        ),
        ("req.image.substring(0, 4) == 'ghcr'", Ok(true)),
        ("req.image.indexOf(':') == 15", Ok(true)),
        ("['a', 'b'].join('/') == 'a/b'", Ok(true)),
        ("req.image.matches('^ghcr\\\\.io/')", Ok(true)),
    ] {
        let expected = expected.map_err(|m| EvalError::Runtime(m.to_owned()));
        assert_eq!(eval_with_req(source, req.clone()), expected, "{source}");
    }
}

#[test]
fn json_numbers_are_doubles_as_in_go() {
    let req = json!({"count": 3, "ratio": 0.5, "big": 10000000000u64, "flag": null});
    for (source, expected) in [
        ("req.count == 3", Ok(true)),
        ("req.count == 3.0", Ok(true)),
        ("req.count > 2", Ok(true)),
        ("req.count < 3u", Ok(false)),
        ("type(req.count) == double", Ok(true)),
        ("int(req.count) + 1 == 4", Ok(true)),
        ("req.count + 1.0 == 4.0", Ok(true)),
        (
            "req.count + 1 == 4",
            Err("no such overload: double add int"),
        ),
        ("req.ratio * 2.0 == 1.0", Ok(true)),
        ("req.big == 10000000000", Ok(true)),
        ("string(req.count) == '3'", Ok(true)),
        ("req.flag == null", Ok(true)),
        // Values of different types are unequal, not an error, at run time.
        ("req.count == '3'", Ok(false)),
    ] {
        let got = eval_with_req(source, req.clone());
        match expected {
            Ok(b) => assert_eq!(got, Ok(b), "{source}"),
            Err(_) => assert!(got.is_err(), "{source}: {got:?}"),
        }
    }
}

#[test]
fn macros_and_sets_over_json_lists() {
    let req = json!({
        "commits": [
            {"id": "a", "modified": ["apps/podinfo/release.yaml"]},
            {"id": "b", "modified": ["infra/redis.yaml", "README.md"]},
        ],
        "labels": ["team-a", "prod"],
        "counts": [1, 2, 3],
    });
    let res = resource(
        "Kustomization",
        "podinfo",
        json!({"team": "team-a"}),
        json!({"path": "apps/podinfo"}),
    );
    for (source, expected) in [
        (
            "req.commits.exists(c, c.modified.exists(f, f.startsWith(res.metadata.annotations.path)))",
            true,
        ),
        ("req.commits.all(c, c.modified.size() > 0)", true),
        ("req.commits.exists_one(c, c.id == 'b')", true),
        ("req.commits.map(c, c.id) == ['a', 'b']", true),
        (
            "req.commits.filter(c, 'README.md' in c.modified).size() == 1",
            true,
        ),
        ("res.metadata.labels.team in req.labels", true),
        ("sets.contains(req.labels, ['prod'])", true),
        ("sets.intersects(req.labels, ['dev', 'staging'])", false),
        ("sets.equivalent(req.labels, ['prod', 'team-a'])", true),
        // CEL equality across numeric types: JSON numbers are doubles.
        ("sets.contains(req.counts, [1, 2])", true),
        ("res.metadata.generation >= 3", true),
        ("'path' in res.metadata.annotations", true),
    ] {
        let empty = Document::empty();
        assert_eq!(
            evaluate(source, &document(req.clone()), &res, &empty),
            Ok(expected),
            "{source}"
        );
    }
}

#[test]
fn oidc_claim_rules_follow_flux() {
    // fluxcd/notification-controller issue #1305, the generic-oidc proposal:
    // variables shared by the validations.
    let rules = ClaimRules::compile(
        [
            ("owner", "claims.repository_owner"),
            ("repo", "claims.repository"),
            ("allowedRepos", "['my-org/repo-a', 'my-org/repo-b']"),
        ],
        [
            ("vars.owner == 'my-org'", "wrong org"),
            ("vars.repo in vars.allowedRepos", "repo not allowed"),
        ],
    )
    .unwrap();
    let accepted = document(json!({"repository_owner": "my-org", "repository": "my-org/repo-a"}));
    assert_eq!(rules.verify(&accepted), Ok(()));
    let rejected = document(json!({"repository_owner": "my-org", "repository": "my-org/repo-c"}));
    assert_eq!(
        rules.verify(&rejected),
        Err(ClaimsError::Rejected {
            messages: vec!["repo not allowed".to_owned()]
        })
    );
    // A claim the token lacks fails the variable, which stops evaluation.
    let missing = document(json!({"repository": "my-org/repo-a"}));
    assert_eq!(
        rules.verify(&missing),
        Err(ClaimsError::Variable {
            name: "owner".to_owned(),
            source: EvalError::Runtime("no such key: repository_owner".to_owned()),
        })
    );

    // PR #1314's validation: a workflow reference matched by regular
    // expressions.
    let rules = ClaimRules::compile(
        [],
        [(
            r#"claims.job_workflow_ref.matches(r"^controlplaneio-fluxcd/d2-fleet/\.github/workflows/push-artifact\.yaml@refs/heads/main$")
               || claims.job_workflow_ref.matches(r"^controlplaneio-fluxcd/flux-appx/\.github/workflows/push-image\.yml@refs/(heads/main|pull/[0-9]+/merge)$")"#,
            "token job_workflow_ref is not an allowed d2-fleet/flux-appx workflow",
        )],
    )
    .unwrap();
    let pull = document(json!({
        "job_workflow_ref": "controlplaneio-fluxcd/flux-appx/.github/workflows/push-image.yml@refs/pull/42/merge"
    }));
    assert_eq!(rules.verify(&pull), Ok(()));
    let fork = document(json!({
        "job_workflow_ref": "someone/flux-appx/.github/workflows/push-image.yml@refs/heads/main"
    }));
    assert!(matches!(
        rules.verify(&fork),
        Err(ClaimsError::Rejected { .. })
    ));

    // Variables see the variables before them, and keep their CEL types.
    let rules = ClaimRules::compile(
        [("n", "1"), ("next", "vars.n + 1")],
        [("vars.next == 2", "arithmetic")],
    )
    .unwrap();
    assert_eq!(rules.verify(&Document::empty()), Ok(()));
}

#[test]
fn oidc_rules_that_do_not_compile_name_the_rule() {
    let error = ClaimRules::compile([("org", "claims.owner ==")], []).unwrap_err();
    assert!(
        matches!(&error, RuleCompileError::Variable { name, .. } if name == "org"),
        "{error}"
    );
    let error = ClaimRules::compile([], [("claims.owner", "owner must be set")]).unwrap_err();
    assert_eq!(
        error.to_string(),
        "invalid expression for validation 'owner must be set': \
         CEL expression output type mismatch: expected bool, got dyn"
    );
    // `req` and `res` are not in scope for claim rules, nor `vars` for filters.
    assert!(ClaimRules::compile([], [("req.a == 'b'", "m")]).is_err());
    assert!(Expression::compile("vars.a == 'b'").is_err());
}
