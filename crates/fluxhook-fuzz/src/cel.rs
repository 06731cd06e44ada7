//! CEL filters and OIDC claim rules over hostile expressions and documents.
//!
//! Input: a selector byte. Bit 1 clear, a filter: `expression NUL req NUL
//! res NUL claims` (JSON documents), compiled with `claims` declared when
//! bit 0 is set. Bit 1 set, claim rules: `variables NUL validations NUL
//! claims`, one `name=expression` variable or one validation expression a line.

use fluxhook_cel::{ClaimRules, Document, Expression, Variables};

use crate::input::{fields, selector, text};

pub(crate) fn run(data: &[u8]) {
    let (select, rest) = selector(data);
    if select & 2 == 0 {
        filter(select & 1 == 1, rest);
    } else {
        claim_rules(rest);
    }
}

fn filter(with_claims: bool, data: &[u8]) {
    let parts = fields(data, 4);
    let source = text(parts[0]);
    let compile = |source: &str| match with_claims {
        true => Expression::compile_with_claims(source),
        false => Expression::compile(source),
    };
    let expression = match compile(&source) {
        Ok(expression) => expression,
        Err(error) => {
            let _ = (error.to_string(), error.position());
            return;
        }
    };
    assert_eq!(expression.source(), source);
    let (req, res, claims) = (document(parts[1]), document(parts[2]), document(parts[3]));
    let variables = Variables {
        req: &req,
        res: &res,
        claims: &claims,
    };
    let result = expression.evaluate_bool(&variables);

    // The negation of a filter that compiles evaluates to the opposite, or
    // fails as it does. Newlines end a trailing `//` comment.
    let Ok(negation) = compile(&format!("!(\n{source}\n)")) else {
        return;
    };
    let negated = negation.evaluate_bool(&variables);
    match (&result, &negated) {
        (Ok(value), Ok(negated)) => assert_eq!(!value, *negated, "!({source}) is not the negation"),
        (Err(_), Err(_)) => {}
        _ => panic!("{source} gives {result:?} but its negation {negated:?}"),
    }
}

fn claim_rules(data: &[u8]) {
    let parts = fields(data, 3);
    let variables = text(parts[0]);
    let validations = text(parts[1]);
    let variables = variables
        .lines()
        .map(|line| line.split_once('=').unwrap_or((line, "")));
    let validations = validations.lines().map(|line| (line, "refused"));
    let rules = match ClaimRules::compile(variables, validations) {
        Ok(rules) => rules,
        Err(error) => {
            let _ = error.to_string();
            return;
        }
    };
    let claims = document(parts[2]);
    if let Err(error) = rules.verify(&claims) {
        let _ = error.to_string();
    }
}

/// A JSON object as a CEL document; anything else is the empty object, as
/// Flux treats a body that is no JSON object.
fn document(json: &[u8]) -> Document {
    match serde_json::from_slice::<serde_json::Value>(json) {
        Ok(serde_json::Value::Object(object)) => {
            Document::from_object(&object).unwrap_or_else(|_| Document::empty())
        }
        _ => Document::empty(),
    }
}
