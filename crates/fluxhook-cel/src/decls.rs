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
    /// `spec.resourceFilter` and `spec.resources[].filter`: `req`, `res` and
    /// `claims`; must be a `bool`.
    ResourceFilter,
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
            Environment::ResourceFilter => &["req", "res", "claims"],
            Environment::ClaimValidation | Environment::ClaimVariable => &["claims", "vars"],
        }
    }

    /// The type the expression must have, if any.
    pub(crate) fn output(self) -> Option<Type> {
        match self {
            Environment::ResourceFilter | Environment::ClaimValidation => Some(Type::Bool),
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
