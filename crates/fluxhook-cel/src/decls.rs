//! What Flux's CEL environment declares: its variables, and the signatures of
//! the functions and operators of cel-go's standard library and of the
//! extensions Flux enables (`cel.OptionalTypes()`, `ext.Strings()`,
//! `ext.Sets()`, `ext.Encoders()`, in fluxcd/pkg `runtime/cel`).
//!
//! The checker admits a call only if one of these signatures matches it, and
//! [`crate::library`] makes sure the engine implements every one of them.

use crate::types::Pattern::{self, *};
use crate::types::Type;

/// Which Flux field an expression comes from: it decides the variables in
/// scope and the type the expression must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Environment {
    /// `spec.resourceFilter` and `spec.resources[].filter` of every type
    /// but `generic-oidc`: `req` and `res`; must be a `bool`.
    ResourceFilter,
    /// The same for `generic-oidc`, which also declares `claims`
    /// (notification-controller's `server.WithClaims()`).
    ResourceFilterWithClaims,
    /// `spec.oidcProviders[].validations[].expression`: `claims` and
    /// `vars`; must be a `bool`.
    ClaimValidation,
    /// `spec.oidcProviders[].variables[].expression`: `claims` and `vars`;
    /// any type.
    ClaimVariable,
}

impl Environment {
    /// The variables Flux declares, each a JSON object
    /// (`google.protobuf.Struct`).
    pub(crate) fn variables(self) -> &'static [&'static str] {
        match self {
            Environment::ResourceFilter => &["req", "res"],
            Environment::ResourceFilterWithClaims => &["req", "res", "claims"],
            Environment::ClaimValidation | Environment::ClaimVariable => &["claims", "vars"],
        }
    }

    /// The type the expression must have, if any.
    pub(crate) fn output(self) -> Option<Type> {
        match self {
            Environment::ResourceFilter
            | Environment::ResourceFilterWithClaims
            | Environment::ClaimValidation => Some(Type::Bool),
            Environment::ClaimVariable => None,
        }
    }
}

/// Identifiers that name types, usable as values (`type(x) == int`).
pub(crate) const TYPE_NAMES: &[&str] = &[
    "bool",
    "bytes",
    "double",
    "dyn",
    "int",
    "list",
    "map",
    "null_type",
    "string",
    "type",
    "uint",
];

/// Prefixes of the global functions declared with a dotted name: a call
/// `optional.of(x)` parses as the member call `of` on `optional`.
pub(crate) const NAMESPACES: &[&str] = &["base64", "optional", "sets", "strings"];

/// One signature of a function or operator.
#[derive(Debug)]
pub(crate) struct Overload {
    pub(crate) name: &'static str,
    /// Called as `target.name(args)`; the target is the first parameter.
    pub(crate) member: bool,
    pub(crate) params: &'static [Pattern],
    pub(crate) result: Pattern,
}

const fn global(name: &'static str, params: &'static [Pattern], result: Pattern) -> Overload {
    Overload {
        name,
        member: false,
        params,
        result,
    }
}

const fn member(name: &'static str, params: &'static [Pattern], result: Pattern) -> Overload {
    Overload {
        name,
        member: true,
        params,
        result,
    }
}

/// Every signature of the environment.
pub(crate) static OVERLOADS: &[Overload] = &[
    // Logic.
    global("!_", &[Bool], Bool),
    global("_&&_", &[Bool, Bool], Bool),
    global("_||_", &[Bool, Bool], Bool),
    global("_?_:_", &[Bool, A, A], A),
    global("@not_strictly_false", &[Bool], Bool),
    // Equality is defined between values of one type.
    global("_==_", &[A, A], Bool),
    global("_!=_", &[A, A], Bool),
    // Ordering, within a type and, with cel.CrossTypeNumericComparisons,
    // across numeric types.
    global("_<_", &[Bool, Bool], Bool),
    global("_<_", &[Int, Int], Bool),
    global("_<_", &[Uint, Uint], Bool),
    global("_<_", &[Double, Double], Bool),
    global("_<_", &[String, String], Bool),
    global("_<_", &[Bytes, Bytes], Bool),
    global("_<_", &[Timestamp, Timestamp], Bool),
    global("_<_", &[Duration, Duration], Bool),
    global("_<_", &[Int, Uint], Bool),
    global("_<_", &[Int, Double], Bool),
    global("_<_", &[Uint, Int], Bool),
    global("_<_", &[Uint, Double], Bool),
    global("_<_", &[Double, Int], Bool),
    global("_<_", &[Double, Uint], Bool),
    global("_<=_", &[Bool, Bool], Bool),
    global("_<=_", &[Int, Int], Bool),
    global("_<=_", &[Uint, Uint], Bool),
    global("_<=_", &[Double, Double], Bool),
    global("_<=_", &[String, String], Bool),
    global("_<=_", &[Bytes, Bytes], Bool),
    global("_<=_", &[Timestamp, Timestamp], Bool),
    global("_<=_", &[Duration, Duration], Bool),
    global("_<=_", &[Int, Uint], Bool),
    global("_<=_", &[Int, Double], Bool),
    global("_<=_", &[Uint, Int], Bool),
    global("_<=_", &[Uint, Double], Bool),
    global("_<=_", &[Double, Int], Bool),
    global("_<=_", &[Double, Uint], Bool),
    global("_>_", &[Bool, Bool], Bool),
    global("_>_", &[Int, Int], Bool),
    global("_>_", &[Uint, Uint], Bool),
    global("_>_", &[Double, Double], Bool),
    global("_>_", &[String, String], Bool),
    global("_>_", &[Bytes, Bytes], Bool),
    global("_>_", &[Timestamp, Timestamp], Bool),
    global("_>_", &[Duration, Duration], Bool),
    global("_>_", &[Int, Uint], Bool),
    global("_>_", &[Int, Double], Bool),
    global("_>_", &[Uint, Int], Bool),
    global("_>_", &[Uint, Double], Bool),
    global("_>_", &[Double, Int], Bool),
    global("_>_", &[Double, Uint], Bool),
    global("_>=_", &[Bool, Bool], Bool),
    global("_>=_", &[Int, Int], Bool),
    global("_>=_", &[Uint, Uint], Bool),
    global("_>=_", &[Double, Double], Bool),
    global("_>=_", &[String, String], Bool),
    global("_>=_", &[Bytes, Bytes], Bool),
    global("_>=_", &[Timestamp, Timestamp], Bool),
    global("_>=_", &[Duration, Duration], Bool),
    global("_>=_", &[Int, Uint], Bool),
    global("_>=_", &[Int, Double], Bool),
    global("_>=_", &[Uint, Int], Bool),
    global("_>=_", &[Uint, Double], Bool),
    global("_>=_", &[Double, Int], Bool),
    global("_>=_", &[Double, Uint], Bool),
    // Arithmetic.
    global("_+_", &[Int, Int], Int),
    global("_+_", &[Uint, Uint], Uint),
    global("_+_", &[Double, Double], Double),
    global("_+_", &[String, String], String),
    global("_+_", &[Bytes, Bytes], Bytes),
    global("_+_", &[List(&A), List(&A)], List(&A)),
    global("_+_", &[Timestamp, Duration], Timestamp),
    global("_+_", &[Duration, Timestamp], Timestamp),
    global("_+_", &[Duration, Duration], Duration),
    global("_-_", &[Int, Int], Int),
    global("_-_", &[Uint, Uint], Uint),
    global("_-_", &[Double, Double], Double),
    global("_-_", &[Timestamp, Timestamp], Duration),
    global("_-_", &[Timestamp, Duration], Timestamp),
    global("_-_", &[Duration, Duration], Duration),
    global("_*_", &[Int, Int], Int),
    global("_*_", &[Uint, Uint], Uint),
    global("_*_", &[Double, Double], Double),
    global("_/_", &[Int, Int], Int),
    global("_/_", &[Uint, Uint], Uint),
    global("_/_", &[Double, Double], Double),
    global("_%_", &[Int, Int], Int),
    global("_%_", &[Uint, Uint], Uint),
    global("-_", &[Int], Int),
    global("-_", &[Double], Double),
    // Indexing and membership.
    global("_[_]", &[List(&A), Int], A),
    global("_[_]", &[Map(&A, &B), A], B),
    global("@in", &[A, List(&A)], Bool),
    global("@in", &[A, Map(&A, &B)], Bool),
    // Size.
    global("size", &[String], Int),
    global("size", &[Bytes], Int),
    global("size", &[List(&A)], Int),
    global("size", &[Map(&A, &B)], Int),
    member("size", &[String], Int),
    member("size", &[Bytes], Int),
    member("size", &[List(&A)], Int),
    member("size", &[Map(&A, &B)], Int),
    // Types and conversions.
    global("type", &[A], Meta),
    global("dyn", &[A], Dyn),
    global("int", &[Int], Int),
    global("int", &[Uint], Int),
    global("int", &[Double], Int),
    global("int", &[String], Int),
    global("int", &[Timestamp], Int),
    global("uint", &[Int], Uint),
    global("uint", &[Uint], Uint),
    global("uint", &[Double], Uint),
    global("uint", &[String], Uint),
    global("double", &[Int], Double),
    global("double", &[Uint], Double),
    global("double", &[Double], Double),
    global("double", &[String], Double),
    global("string", &[Int], String),
    global("string", &[Uint], String),
    global("string", &[Double], String),
    global("string", &[Bool], String),
    global("string", &[String], String),
    global("string", &[Bytes], String),
    global("string", &[Timestamp], String),
    global("string", &[Duration], String),
    global("bytes", &[String], Bytes),
    global("bytes", &[Bytes], Bytes),
    global("bool", &[Bool], Bool),
    global("bool", &[String], Bool),
    global("timestamp", &[String], Timestamp),
    global("timestamp", &[Int], Timestamp),
    global("timestamp", &[Timestamp], Timestamp),
    global("duration", &[String], Duration),
    global("duration", &[Duration], Duration),
    // Strings.
    global("matches", &[String, String], Bool),
    member("matches", &[String, String], Bool),
    member("contains", &[String, String], Bool),
    member("startsWith", &[String, String], Bool),
    member("endsWith", &[String, String], Bool),
    // Timestamps and durations.
    member("getFullYear", &[Timestamp], Int),
    member("getFullYear", &[Timestamp, String], Int),
    member("getMonth", &[Timestamp], Int),
    member("getMonth", &[Timestamp, String], Int),
    member("getDayOfYear", &[Timestamp], Int),
    member("getDayOfYear", &[Timestamp, String], Int),
    member("getDayOfMonth", &[Timestamp], Int),
    member("getDayOfMonth", &[Timestamp, String], Int),
    member("getDate", &[Timestamp], Int),
    member("getDate", &[Timestamp, String], Int),
    member("getDayOfWeek", &[Timestamp], Int),
    member("getDayOfWeek", &[Timestamp, String], Int),
    member("getHours", &[Timestamp], Int),
    member("getHours", &[Timestamp, String], Int),
    member("getHours", &[Duration], Int),
    member("getMinutes", &[Timestamp], Int),
    member("getMinutes", &[Timestamp, String], Int),
    member("getMinutes", &[Duration], Int),
    member("getSeconds", &[Timestamp], Int),
    member("getSeconds", &[Timestamp, String], Int),
    member("getSeconds", &[Duration], Int),
    member("getMilliseconds", &[Timestamp], Int),
    member("getMilliseconds", &[Timestamp, String], Int),
    member("getMilliseconds", &[Duration], Int),
    // ext.Strings().
    member("charAt", &[String, Int], String),
    member("indexOf", &[String, String], Int),
    member("indexOf", &[String, String, Int], Int),
    member("lastIndexOf", &[String, String], Int),
    member("lastIndexOf", &[String, String, Int], Int),
    member("lowerAscii", &[String], String),
    member("upperAscii", &[String], String),
    member("trim", &[String], String),
    member("reverse", &[String], String),
    member("replace", &[String, String, String], String),
    member("replace", &[String, String, String, Int], String),
    member("split", &[String, String], List(&String)),
    member("split", &[String, String, Int], List(&String)),
    member("substring", &[String, Int], String),
    member("substring", &[String, Int, Int], String),
    member("join", &[List(&String)], String),
    member("join", &[List(&String), String], String),
    member("format", &[String, List(&Dyn)], String),
    global("strings.quote", &[String], String),
    // ext.Encoders().
    global("base64.encode", &[Bytes], String),
    global("base64.decode", &[String], Bytes),
    // ext.Sets().
    global("sets.contains", &[List(&A), List(&A)], Bool),
    global("sets.equivalent", &[List(&A), List(&A)], Bool),
    global("sets.intersects", &[List(&A), List(&A)], Bool),
    // cel.OptionalTypes(), at its latest version, which includes list
    // first() and last().
    global("optional.of", &[A], Optional(&A)),
    global("optional.ofNonZeroValue", &[A], Optional(&A)),
    global("optional.none", &[], Optional(&Dyn)),
    global("optional.unwrap", &[List(&Optional(&A))], List(&A)),
    member("value", &[Optional(&A)], A),
    member("hasValue", &[Optional(&A)], Bool),
    member("or", &[Optional(&A), Optional(&A)], Optional(&A)),
    member("orValue", &[Optional(&A), A], A),
    member("first", &[List(&A)], Optional(&A)),
    member("last", &[List(&A)], Optional(&A)),
    member("unwrapOpt", &[List(&Optional(&A))], List(&A)),
];

/// Whether a function or operator of this name is declared at all, in
/// either calling style.
pub(crate) fn is_declared(name: &str) -> bool {
    OVERLOADS.iter().any(|overload| overload.name == name)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;
    use crate::document::Document;
    use crate::program::Program;

    /// A call of every signature, evaluated by the engine: whatever the
    /// checker admits, the engine implements.
    const SAMPLES: &[&str] = &[
        "!false",
        "true && true",
        "false || true",
        "true ? 1 : 2",
        "1 == 1",
        "1 != 2",
        "false < true",
        "1 < 2",
        "1u < 2u",
        "1.0 < 2.0",
        "'a' < 'b'",
        "b'a' < b'b'",
        "timestamp(1) < timestamp(2)",
        "duration('1s') < duration('2s')",
        "1 < 2u",
        "1 < 2.0",
        "1u < 2",
        "1u < 2.0",
        "1.0 < 2",
        "1.0 < 2u",
        "1 <= 2",
        "1 <= 2u",
        "1.0 <= 2",
        "'a' <= 'b'",
        "1 > 0",
        "1u > 0",
        "1.0 > 0u",
        "true >= false",
        "1 >= 1",
        "1u >= 1.0",
        "b'b' >= b'a'",
        "duration('1s') >= duration('1s')",
        "1 + 1",
        "1u + 1u",
        "1.0 + 1.0",
        "'a' + 'b'",
        "b'a' + b'b'",
        "[1] + [2]",
        "timestamp(0) + duration('1s')",
        "duration('1s') + timestamp(0)",
        "duration('1s') + duration('1s')",
        "1 - 1",
        "1u - 1u",
        "1.0 - 1.0",
        "timestamp(1) - timestamp(0)",
        "timestamp(1) - duration('1s')",
        "duration('2s') - duration('1s')",
        "2 * 2",
        "2u * 2u",
        "2.0 * 2.0",
        "4 / 2",
        "4u / 2u",
        "4.0 / 2.0",
        "5 % 2",
        "5u % 2u",
        "-1",
        "-(1.5)",
        "[1][0]",
        "{'a': 1}['a']",
        "[1][?0]",
        "{'a': 1}[?'b']",
        "1 in [1]",
        "'a' in {'a': 1}",
        "size('a')",
        "size(b'a')",
        "size([1])",
        "size({1: 2})",
        "'a'.size()",
        "b'a'.size()",
        "[1].size()",
        "{1: 2}.size()",
        "type(1)",
        "dyn(1)",
        "int(1)",
        "int(1u)",
        "int(1.5)",
        "int('1')",
        "int(timestamp(1))",
        "uint(1)",
        "uint(1u)",
        "uint(1.5)",
        "uint('1')",
        "double(1)",
        "double(1u)",
        "double(1.5)",
        "double('1.5')",
        "string(1)",
        "string(1u)",
        "string(1.5)",
        "string(true)",
        "string('a')",
        "string(b'a')",
        "string(timestamp(0))",
        "string(duration('1s'))",
        "bytes('a')",
        "bytes(b'a')",
        "bool(true)",
        "bool('true')",
        "timestamp('2024-01-01T00:00:00Z')",
        "timestamp(0)",
        "timestamp(timestamp(0))",
        "duration('1h')",
        "duration(duration('1h'))",
        "matches('abc', 'b')",
        "'abc'.matches('b')",
        "'abc'.contains('b')",
        "'abc'.startsWith('a')",
        "'abc'.endsWith('c')",
        "timestamp(0).getFullYear()",
        "timestamp(0).getFullYear('UTC')",
        "timestamp(0).getMonth()",
        "timestamp(0).getMonth('UTC')",
        "timestamp(0).getDayOfYear()",
        "timestamp(0).getDayOfYear('UTC')",
        "timestamp(0).getDayOfMonth()",
        "timestamp(0).getDayOfMonth('UTC')",
        "timestamp(0).getDate()",
        "timestamp(0).getDate('UTC')",
        "timestamp(0).getDayOfWeek()",
        "timestamp(0).getDayOfWeek('UTC')",
        "timestamp(0).getHours()",
        "timestamp(0).getHours('UTC')",
        "duration('1h').getHours()",
        "timestamp(0).getMinutes()",
        "timestamp(0).getMinutes('UTC')",
        "duration('1h').getMinutes()",
        "timestamp(0).getSeconds()",
        "timestamp(0).getSeconds('UTC')",
        "duration('1h').getSeconds()",
        "timestamp(0).getMilliseconds()",
        "timestamp(0).getMilliseconds('UTC')",
        "duration('1h').getMilliseconds()",
        "'abc'.charAt(1)",
        "'abc'.indexOf('b')",
        "'abc'.indexOf('b', 1)",
        "'abcb'.lastIndexOf('b')",
        "'abcb'.lastIndexOf('b', 2)",
        "'A'.lowerAscii()",
        "'a'.upperAscii()",
        "' a '.trim()",
        "'ab'.reverse()",
        "'aa'.replace('a', 'b')",
        "'aa'.replace('a', 'b', 1)",
        "'a,b'.split(',')",
        "'a,b'.split(',', 1)",
        "'abc'.substring(1)",
        "'abc'.substring(1, 2)",
        "['a'].join()",
        "['a', 'b'].join(',')",
        "'%s-%d'.format(['a', dyn(1)])",
        "strings.quote('a')",
        "base64.encode(b'a')",
        "base64.decode('YQ==')",
        "sets.contains([1], [1])",
        "sets.equivalent([1], [1])",
        "sets.intersects([1], [1])",
        "optional.of(1)",
        "optional.ofNonZeroValue(0)",
        "optional.none()",
        "optional.unwrap([optional.of(1)])",
        "optional.of(1).value()",
        "optional.of(1).hasValue()",
        "optional.none().or(optional.of(1))",
        "optional.none().orValue(1)",
        "[1].first()",
        "[1].last()",
        "[optional.of(1)].unwrapOpt()",
        "[1].all(x, x > 0)",
        "[1].exists(x, x > 0)",
        "[1].exists_one(x, x > 0)",
        "[1].map(x, x)",
        "[1].map(x, x > 0, x)",
        "[1].filter(x, x > 0)",
        "optional.of(1).optMap(x, x + 1)",
        "optional.of(1).optFlatMap(x, optional.of(x))",
        "[?optional.of(1)]",
        "{?'a': optional.none()}",
    ];

    #[test]
    fn every_declared_function_is_implemented() {
        let empty = Document::empty();
        for sample in SAMPLES {
            let program = Program::compile(sample, Environment::ClaimVariable)
                .unwrap_or_else(|e| panic!("{sample}: {e}"));
            let value = program.evaluate(&[("claims", &empty), ("vars", &empty)]);
            assert!(value.is_ok(), "{sample}: {value:?}");
        }
        for overload in OVERLOADS {
            let name = overload.name.rsplit('.').next().unwrap_or(overload.name);
            let spelled = name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                && !name.starts_with('_');
            if spelled {
                assert!(
                    SAMPLES.iter().any(|s| s.contains(name)),
                    "no sample calls {}",
                    overload.name
                );
            }
        }
    }
}
