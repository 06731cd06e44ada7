//! Label and field selectors, parsed and matched as Kubernetes' `labels.Parse` and
//! `fields.ParseSelector` do.

use std::fmt;

use serde_json::Value;

/// Why a selector did not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub(crate) struct SelectorError(String);

/// A label selector operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operator {
    Equals,
    DoubleEquals,
    NotEquals,
    In,
    NotIn,
    Exists,
    DoesNotExist,
    GreaterThan,
    LessThan,
}

/// One `key op values` term of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Requirement {
    key: String,
    operator: Operator,
    values: Vec<String>,
}

impl Requirement {
    fn matches(&self, get: &impl Fn(&str) -> Option<String>) -> bool {
        let value = get(&self.key);
        match self.operator {
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                value.is_some_and(|value| self.values.contains(&value))
            }
            Operator::NotEquals | Operator::NotIn => {
                value.is_none_or(|value| !self.values.contains(&value))
            }
            Operator::Exists => value.is_some(),
            Operator::DoesNotExist => value.is_none(),
            Operator::GreaterThan | Operator::LessThan => {
                let (Some(have), Some(bound)) = (
                    value.and_then(|value| value.parse::<i64>().ok()),
                    self.values
                        .first()
                        .and_then(|bound| bound.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.operator == Operator::GreaterThan {
                    have > bound
                } else {
                    have < bound
                }
            }
        }
    }
}

impl Requirement {
    /// Values joined for `in (...)`; a lone empty value prints as `,` since `()` is no value at all.
    fn value_list(&self) -> String {
        let joined = self.values.join(",");
        if joined.is_empty() {
            ",".to_owned()
        } else {
            joined
        }
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = &self.key;
        let first = self.values.first().map_or("", String::as_str);
        match self.operator {
            Operator::Exists => write!(f, "{key}"),
            Operator::DoesNotExist => write!(f, "!{key}"),
            Operator::Equals => write!(f, "{key}={first}"),
            Operator::DoubleEquals => write!(f, "{key}=={first}"),
            Operator::NotEquals => write!(f, "{key}!={first}"),
            Operator::GreaterThan => write!(f, "{key}>{first}"),
            Operator::LessThan => write!(f, "{key}<{first}"),
            Operator::In => write!(f, "{key} in ({})", self.value_list()),
            Operator::NotIn => write!(f, "{key} notin ({})", self.value_list()),
        }
    }
}

/// A parsed label selector; the empty selector matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LabelSelector {
    requirements: Vec<Requirement>,
}

impl fmt::Display for LabelSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, requirement) in self.requirements.iter().enumerate() {
            if index > 0 {
                f.write_str(",")?;
            }
            write!(f, "{requirement}")?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Identifier(String),
    Bang,
    Equals,
    DoubleEquals,
    NotEquals,
    GreaterThan,
    LessThan,
    In,
    NotIn,
    OpenParen,
    CloseParen,
    Comma,
    End,
}

impl fmt::Display for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Token::Identifier(name) => f.write_str(name),
            Token::Bang => f.write_str("!"),
            Token::Equals => f.write_str("="),
            Token::DoubleEquals => f.write_str("=="),
            Token::NotEquals => f.write_str("!="),
            Token::GreaterThan => f.write_str(">"),
            Token::LessThan => f.write_str("<"),
            Token::In => f.write_str("in"),
            Token::NotIn => f.write_str("notin"),
            Token::OpenParen => f.write_str("("),
            Token::CloseParen => f.write_str(")"),
            Token::Comma => f.write_str(","),
            Token::End => f.write_str("end of string"),
        }
    }
}

fn is_special(c: char) -> bool {
    matches!(c, '!' | '=' | '>' | '<' | '(' | ')' | ',')
}

fn tokenize(input: &str) -> Vec<Token> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(c) = chars.next() {
        let token = match c {
            c if c.is_whitespace() => continue,
            '(' => Token::OpenParen,
            ')' => Token::CloseParen,
            ',' => Token::Comma,
            '>' => Token::GreaterThan,
            '<' => Token::LessThan,
            '!' if chars.next_if_eq(&'=').is_some() => Token::NotEquals,
            '!' => Token::Bang,
            '=' if chars.next_if_eq(&'=').is_some() => Token::DoubleEquals,
            '=' => Token::Equals,
            first => {
                let mut word = String::from(first);
                while let Some(next) = chars.next_if(|c| !c.is_whitespace() && !is_special(*c)) {
                    word.push(next);
                }
                match word.as_str() {
                    "in" => Token::In,
                    "notin" => Token::NotIn,
                    _ => Token::Identifier(word),
                }
            }
        };
        tokens.push(token);
    }
    tokens.push(Token::End);
    tokens
}

struct Parser {
    tokens: Vec<Token>,
    position: usize,
}

impl Parser {
    fn peek(&self) -> &Token {
        self.tokens.get(self.position).unwrap_or(&Token::End)
    }

    fn next(&mut self) -> Token {
        let token = self.peek().clone();
        self.position += 1;
        token
    }

    fn expected(found: &Token, what: &str) -> SelectorError {
        SelectorError(format!(
            "unable to parse requirement: found '{found}', expected: {what}"
        ))
    }

    fn selector(&mut self) -> Result<LabelSelector, SelectorError> {
        let mut requirements = Vec::new();
        if *self.peek() == Token::End {
            return Ok(LabelSelector { requirements });
        }
        loop {
            match self.peek() {
                Token::Identifier(_) | Token::Bang => requirements.push(self.requirement()?),
                other => return Err(Self::expected(other, "!, identifier, or 'end of string'")),
            }
            match self.next() {
                Token::End => return Ok(LabelSelector { requirements }),
                Token::Comma => {}
                other => return Err(Self::expected(&other, "',' or 'end of string'")),
            }
        }
    }

    fn requirement(&mut self) -> Result<Requirement, SelectorError> {
        let negated = *self.peek() == Token::Bang;
        if negated {
            self.position += 1;
        }
        let key = match self.next() {
            Token::Identifier(key) => key,
            other => return Err(Self::expected(&other, "identifier")),
        };
        validate_qualified_name(&key).map_err(|why| {
            SelectorError(format!(
                "unable to parse requirement: invalid label key \"{key}\": {why}"
            ))
        })?;
        if negated {
            return Ok(Requirement {
                key,
                operator: Operator::DoesNotExist,
                values: Vec::new(),
            });
        }
        if matches!(self.peek(), Token::Comma | Token::End) {
            return Ok(Requirement {
                key,
                operator: Operator::Exists,
                values: Vec::new(),
            });
        }
        let operator = match self.next() {
            Token::Equals => Operator::Equals,
            Token::DoubleEquals => Operator::DoubleEquals,
            Token::NotEquals => Operator::NotEquals,
            Token::GreaterThan => Operator::GreaterThan,
            Token::LessThan => Operator::LessThan,
            Token::In => Operator::In,
            Token::NotIn => Operator::NotIn,
            other => return Err(Self::expected(&other, "=, ==, !=, >, <, in, notin")),
        };
        let values = if matches!(operator, Operator::In | Operator::NotIn) {
            self.value_set()?
        } else {
            vec![self.exact_value()?]
        };
        for value in &values {
            validate_label_value(value).map_err(|why| {
                SelectorError(format!(
                    "unable to parse requirement: invalid label value \"{value}\": {why}"
                ))
            })?;
        }
        match operator {
            Operator::In | Operator::NotIn if values.is_empty() => Err(SelectorError(
                "unable to parse requirement: for 'in', 'notin' operators, values set can't be empty"
                    .to_owned(),
            )),
            Operator::GreaterThan | Operator::LessThan
                if values.iter().any(|value| value.parse::<i64>().is_err()) =>
            {
                Err(SelectorError(format!(
                    "unable to parse requirement: for 'gt', 'lt' operators, the value must be an integer: {values:?}"
                )))
            }
            _ => Ok(Requirement { key, operator, values }),
        }
    }

    fn exact_value(&mut self) -> Result<String, SelectorError> {
        match self.peek() {
            Token::Comma | Token::End => Ok(String::new()),
            Token::Identifier(value) => {
                let value = value.clone();
                self.position += 1;
                Ok(value)
            }
            other => Err(Self::expected(other, "identifier")),
        }
    }

    /// `( v1, v2, ... )`; a value may be empty, as in `(a,,b)` or `(,)`.
    fn value_set(&mut self) -> Result<Vec<String>, SelectorError> {
        match self.next() {
            Token::OpenParen => {}
            other => return Err(Self::expected(&other, "'('")),
        }
        if *self.peek() == Token::CloseParen {
            self.position += 1;
            return Ok(Vec::new());
        }
        let mut values = Vec::new();
        loop {
            let value = match self.peek() {
                Token::Identifier(value) => {
                    let value = value.clone();
                    self.position += 1;
                    value
                }
                Token::Comma | Token::CloseParen => String::new(),
                other => return Err(Self::expected(other, "identifier, ',' or ')'")),
            };
            if !values.contains(&value) {
                values.push(value);
            }
            match self.next() {
                Token::Comma => {}
                Token::CloseParen => return Ok(values),
                other => return Err(Self::expected(&other, "',' or ')'")),
            }
        }
    }
}

impl LabelSelector {
    /// Parses a `labelSelector` query value.
    pub(crate) fn parse(input: &str) -> Result<Self, SelectorError> {
        Parser {
            tokens: tokenize(input),
            position: 0,
        }
        .selector()
    }

    /// Whether labels, read through `get`, satisfy every requirement.
    pub(crate) fn matches_with(&self, get: impl Fn(&str) -> Option<String>) -> bool {
        self.requirements
            .iter()
            .all(|requirement| requirement.matches(&get))
    }

    /// Whether an object's `metadata.labels` satisfy every requirement.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        let labels = object.pointer("/metadata/labels");
        self.matches_with(|key| {
            labels
                .and_then(|labels| labels.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    }
}

/// The fields a field selector can name.
const SELECTABLE_FIELDS: [&str; 2] = ["metadata.name", "metadata.namespace"];

/// A parsed field selector over `metadata.name` and `metadata.namespace`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FieldSelector {
    /// (field, wanted value, whether the value must equal it).
    terms: Vec<(String, String, bool)>,
}

/// Splits on commas not escaped with a backslash, and unescapes `\,`, `\=` and `\\`.
fn split_unescaped(input: &str, separator: char) -> Vec<String> {
    let mut parts = vec![String::new()];
    let mut chars = input.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let (Some(next), Some(last)) = (chars.next(), parts.last_mut()) {
                    last.push(next);
                }
            }
            c if c == separator => parts.push(String::new()),
            c => {
                if let Some(last) = parts.last_mut() {
                    last.push(c);
                }
            }
        }
    }
    parts
}

impl FieldSelector {
    /// Parses a `fieldSelector` query value.
    pub(crate) fn parse(input: &str) -> Result<Self, SelectorError> {
        let mut terms = Vec::new();
        if input.trim().is_empty() {
            return Ok(Self { terms });
        }
        for term in split_unescaped(input, ',') {
            let (field, value, equal) = if let Some((field, value)) = term.split_once("!=") {
                (field, value, false)
            } else if let Some((field, value)) = term.split_once("==") {
                (field, value, true)
            } else if let Some((field, value)) = term.split_once('=') {
                (field, value, true)
            } else {
                return Err(SelectorError(format!(
                    "invalid selector: '{input}'; can't understand '{term}'"
                )));
            };
            let field = field.trim();
            if !SELECTABLE_FIELDS.contains(&field) {
                return Err(SelectorError(format!("field label not supported: {field}")));
            }
            terms.push((field.to_owned(), value.trim().to_owned(), equal));
        }
        Ok(Self { terms })
    }

    /// Whether the object's fields satisfy every term.
    pub(crate) fn matches(&self, object: &Value) -> bool {
        self.terms.iter().all(|(field, wanted, equal)| {
            let pointer = if field == "metadata.name" {
                "/metadata/name"
            } else {
                "/metadata/namespace"
            };
            let have = object
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or("");
            (have == wanted) == *equal
        })
    }
}

/// A label name or the name part of a qualified name: `[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?`.
fn is_label_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    match (bytes.first(), bytes.last()) {
        (Some(first), Some(last)) => {
            first.is_ascii_alphanumeric()
                && last.is_ascii_alphanumeric()
                && bytes
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        }
        _ => false,
    }
}

/// Whether `name` is a DNS-1123 subdomain, as object names and label key prefixes must be.
pub(crate) fn is_dns_subdomain(name: &str) -> bool {
    name.len() <= 253
        && !name.is_empty()
        && name.split('.').all(|part| {
            let bytes = part.as_bytes();
            match (bytes.first(), bytes.last()) {
                (Some(first), Some(last)) => {
                    (first.is_ascii_lowercase() || first.is_ascii_digit())
                        && (last.is_ascii_lowercase() || last.is_ascii_digit())
                        && bytes
                            .iter()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-')
                }
                _ => false,
            }
        })
}

/// Validates a label or annotation key: `[prefix/]name`.
pub(crate) fn validate_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix
        && !is_dns_subdomain(prefix)
    {
        return Err("prefix part must be a lowercase RFC 1123 subdomain".to_owned());
    }
    if name.len() > 63 {
        return Err("name part must be no more than 63 characters".to_owned());
    }
    if !is_label_name(name) {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".to_owned());
    }
    Ok(())
}

/// Validates a label value: empty, or at most 63 characters of the label name alphabet.
pub(crate) fn validate_label_value(value: &str) -> Result<(), String> {
    if value.len() > 63 {
        return Err("must be no more than 63 characters".to_owned());
    }
    if !value.is_empty() && !is_label_name(value) {
        return Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn matches(selector: &str, labels: &BTreeMap<String, String>) -> bool {
        LabelSelector::parse(selector)
            .unwrap()
            .matches_with(|key| labels.get(key).cloned())
    }

    #[test]
    fn equality_and_set_operators() {
        let app = labels(&[("app", "web"), ("tier", "front")]);
        assert!(matches("", &app));
        assert!(matches("app=web", &app));
        assert!(matches("app == web", &app));
        assert!(!matches("app!=web", &app));
        assert!(matches("missing!=web", &app));
        assert!(matches("app in (api, web)", &app));
        assert!(!matches("app notin (api,web)", &app));
        assert!(matches("missing notin (api)", &app));
        assert!(!matches("missing in (api)", &app));
        assert!(matches("app,!missing", &app));
        assert!(!matches("!app", &app));
        assert!(matches("app=web,tier=front", &app));
        assert!(!matches("app=web,tier=back", &app));
    }

    #[test]
    fn empty_values_and_numbers() {
        let empty = labels(&[("flag", ""), ("replicas", "3")]);
        assert!(matches("flag=", &empty));
        assert!(matches("flag in (,on)", &empty));
        assert!(matches("replicas>2", &empty));
        assert!(!matches("replicas<3", &empty));
        assert!(!matches("flag>1", &empty));
    }

    #[test]
    fn rejects_malformed_selectors() {
        for bad in [
            "a,", ",a", "a=b=c", "a in ()", "a in (b", "in", "a b", "!a=b", "a>b", "-a=b", "a=-b",
            "a in b", "p/a/b=c", "a<>1",
        ] {
            assert!(LabelSelector::parse(bad).is_err(), "{bad:?} parsed");
        }
    }

    #[test]
    fn accepts_prefixed_keys() {
        let flux = labels(&[("kustomize.toolkit.fluxcd.io/name", "apps")]);
        assert!(matches("kustomize.toolkit.fluxcd.io/name=apps", &flux));
    }

    #[test]
    fn field_selectors_on_name_and_namespace() {
        let object = serde_json::json!({"metadata": {"name": "a,b", "namespace": "flux-system"}});
        assert!(
            FieldSelector::parse(r"metadata.name=a\,b")
                .unwrap()
                .matches(&object)
        );
        assert!(
            FieldSelector::parse("metadata.namespace!=default")
                .unwrap()
                .matches(&object)
        );
        assert!(
            !FieldSelector::parse("metadata.namespace==default")
                .unwrap()
                .matches(&object)
        );
        assert!(FieldSelector::parse("spec.url=x").is_err());
        assert!(FieldSelector::parse("metadata.name").is_err());
    }

    #[test]
    fn subdomains() {
        assert!(is_dns_subdomain("flux-system.example"));
        assert!(!is_dns_subdomain("Flux"));
        assert!(!is_dns_subdomain("a..b"));
        assert!(!is_dns_subdomain("-a"));
    }

    /// Requirements drawn from a small alphabet so that generated labels often collide.
    fn requirement() -> impl Strategy<Value = Requirement> {
        let key = prop_oneof![
            Just("app".to_owned()),
            Just("tier".to_owned()),
            Just("example.com/team".to_owned()),
        ];
        let value = prop_oneof![
            Just(String::new()),
            Just("a".to_owned()),
            Just("b".to_owned())
        ];
        let number = (0i64..5).prop_map(|n| n.to_string());
        prop_oneof![
            (key.clone(), value.clone()).prop_map(|(key, v)| (key, Operator::Equals, vec![v])),
            (key.clone(), value.clone()).prop_map(|(key, v)| (
                key,
                Operator::DoubleEquals,
                vec![v]
            )),
            (key.clone(), value.clone()).prop_map(|(key, v)| (key, Operator::NotEquals, vec![v])),
            (
                key.clone(),
                prop::collection::btree_set(value.clone(), 1..3)
            )
                .prop_map(|(key, v)| (key, Operator::In, v.into_iter().collect())),
            (key.clone(), prop::collection::btree_set(value, 1..3)).prop_map(|(key, v)| (
                key,
                Operator::NotIn,
                v.into_iter().collect()
            )),
            key.clone().prop_map(|key| (key, Operator::Exists, vec![])),
            key.clone()
                .prop_map(|key| (key, Operator::DoesNotExist, vec![])),
            (key.clone(), number.clone()).prop_map(|(key, n)| (
                key,
                Operator::GreaterThan,
                vec![n]
            )),
            (key, number).prop_map(|(key, n)| (key, Operator::LessThan, vec![n])),
        ]
        .prop_map(|(key, operator, values)| Requirement {
            key,
            operator,
            values,
        })
    }

    fn label_set() -> impl Strategy<Value = BTreeMap<String, String>> {
        prop::collection::btree_map(
            prop_oneof![
                Just("app".to_owned()),
                Just("tier".to_owned()),
                Just("example.com/team".to_owned())
            ],
            prop_oneof![
                Just(String::new()),
                Just("a".to_owned()),
                Just("b".to_owned()),
                (0i64..5).prop_map(|n| n.to_string())
            ],
            0..3,
        )
    }

    /// The meaning of a requirement, written independently of `Requirement::matches`.
    fn expected(requirement: &Requirement, labels: &BTreeMap<String, String>) -> bool {
        let have = labels.get(&requirement.key);
        let values = &requirement.values;
        let number = |s: &String| s.parse::<i64>().ok();
        match requirement.operator {
            Operator::Exists => have.is_some(),
            Operator::DoesNotExist => have.is_none(),
            Operator::Equals | Operator::DoubleEquals | Operator::In => {
                have.is_some_and(|v| values.iter().any(|w| w == v))
            }
            Operator::NotEquals | Operator::NotIn => {
                !have.is_some_and(|v| values.iter().any(|w| w == v))
            }
            Operator::GreaterThan => {
                matches!((have.and_then(number), values.first().and_then(number)), (Some(h), Some(b)) if h > b)
            }
            Operator::LessThan => {
                matches!((have.and_then(number), values.first().and_then(number)), (Some(h), Some(b)) if h < b)
            }
        }
    }

    proptest! {
        #[test]
        fn parse_never_panics(input in "\\PC{0,40}") {
            let _ = LabelSelector::parse(&input);
            let _ = FieldSelector::parse(&input);
        }

        #[test]
        fn parse_never_panics_on_selector_alphabet(input in "[a-z!=(),<> /.0-9-]{0,30}") {
            if let Ok(selector) = LabelSelector::parse(&input) {
                // Whatever parses prints back to a selector with the same meaning.
                prop_assert_eq!(LabelSelector::parse(&selector.to_string()).unwrap(), selector);
            }
        }

        #[test]
        fn rendered_selectors_match_as_their_requirements_say(
            requirements in prop::collection::vec(requirement(), 0..4),
            spaced in any::<bool>(),
            labels in label_set(),
        ) {
            let separator = if spaced { " , " } else { "," };
            let text = requirements.iter().map(ToString::to_string).collect::<Vec<_>>().join(separator);
            let selector = LabelSelector::parse(&text).unwrap();
            let want = requirements.iter().all(|r| expected(r, &labels));
            prop_assert_eq!(selector.matches_with(|key| labels.get(key).cloned()), want);
        }
    }
}
