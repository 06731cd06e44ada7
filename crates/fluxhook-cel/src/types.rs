//! The static types the checker assigns, and the signatures it matches calls
//! against: a small model of cel-go's type checker, enough to reject at
//! compile time what Flux's `cel.NewExpression(..., cel.WithCompile())`
//! rejects.

use std::fmt;

/// The static type of an expression, as cel-go's checker names it.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Type {
    /// Known only at run time: a field of a JSON document, say.
    Dyn,
    /// Not known yet: the element type of an empty list or map literal,
    /// which takes the type of what it is joined with (cel-go gives such a
    /// literal a fresh type parameter).
    Unknown,
    Null,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    /// A type value: `int`, `type(x)`.
    Meta,
    List(Box<Type>),
    Map(Box<Type>, Box<Type>),
    Optional(Box<Type>),
}

impl Type {
    pub(crate) fn list(elem: Type) -> Type {
        Type::List(Box::new(elem))
    }

    pub(crate) fn map(key: Type, value: Type) -> Type {
        Type::Map(Box::new(key), Box::new(value))
    }

    pub(crate) fn optional(value: Type) -> Type {
        Type::Optional(Box::new(value))
    }

    /// A JSON object, as Flux declares `req`, `res`, `claims` and `vars`
    /// (`google.protobuf.Struct`, which cel-go checks as `map(string, dyn)`).
    pub(crate) fn json_object() -> Type {
        Type::map(Type::String, Type::Dyn)
    }

    /// The most specific type both `self` and `other` are: the type of a
    /// value that may be either. `None` when they have nothing in common, as
    /// `int` and `string`; `dyn` absorbs anything.
    pub(crate) fn join(&self, other: &Type) -> Option<Type> {
        match (self, other) {
            (Type::Unknown, other) | (other, Type::Unknown) => Some(other.clone()),
            (Type::Dyn, _) | (_, Type::Dyn) => Some(Type::Dyn),
            (Type::List(a), Type::List(b)) => a.join(b).map(Type::list),
            (Type::Optional(a), Type::Optional(b)) => a.join(b).map(Type::optional),
            (Type::Map(ak, av), Type::Map(bk, bv)) => Some(Type::map(ak.join(bk)?, av.join(bv)?)),
            (a, b) if a == b => Some(a.clone()),
            _ => None,
        }
    }
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Type::Dyn | Type::Unknown => f.write_str("dyn"),
            Type::Null => f.write_str("null_type"),
            Type::Bool => f.write_str("bool"),
            Type::Int => f.write_str("int"),
            Type::Uint => f.write_str("uint"),
            Type::Double => f.write_str("double"),
            Type::String => f.write_str("string"),
            Type::Bytes => f.write_str("bytes"),
            Type::Timestamp => f.write_str("google.protobuf.Timestamp"),
            Type::Duration => f.write_str("google.protobuf.Duration"),
            Type::Meta => f.write_str("type"),
            Type::List(elem) => write!(f, "list({elem})"),
            Type::Map(key, value) => write!(f, "map({key}, {value})"),
            Type::Optional(value) => write!(f, "optional_type({value})"),
        }
    }
}

/// A parameter or result of a signature: a concrete type, or a type
/// parameter (`A`, `B`) bound by the first argument that fills it.
#[derive(Debug)]
pub(crate) enum Pattern {
    Dyn,
    Bool,
    Int,
    Uint,
    Double,
    String,
    Bytes,
    Timestamp,
    Duration,
    Meta,
    A,
    B,
    List(&'static Pattern),
    Map(&'static Pattern, &'static Pattern),
    Optional(&'static Pattern),
}

/// What the type parameters of one signature are bound to while it is
/// matched against a call.
#[derive(Default)]
pub(crate) struct Bindings {
    a: Option<Type>,
    b: Option<Type>,
}

impl Pattern {
    /// Whether a value of type `arg` can be passed for this parameter,
    /// binding the type parameters it contains.
    pub(crate) fn accepts(&self, arg: &Type, bindings: &mut Bindings) -> bool {
        match self {
            Pattern::Dyn => true,
            Pattern::A => bind(&mut bindings.a, arg),
            Pattern::B => bind(&mut bindings.b, arg),
            Pattern::List(elem) => match arg {
                Type::List(arg) => elem.accepts(arg, bindings),
                Type::Dyn | Type::Unknown => elem.accepts(arg, bindings),
                _ => false,
            },
            Pattern::Optional(value) => match arg {
                Type::Optional(arg) => value.accepts(arg, bindings),
                Type::Dyn | Type::Unknown => value.accepts(arg, bindings),
                _ => false,
            },
            Pattern::Map(key, value) => match arg {
                Type::Map(arg_key, arg_value) => {
                    key.accepts(arg_key, bindings) && value.accepts(arg_value, bindings)
                }
                Type::Dyn | Type::Unknown => {
                    key.accepts(arg, bindings) && value.accepts(arg, bindings)
                }
                _ => false,
            },
            concrete => {
                matches!(arg, Type::Dyn | Type::Unknown)
                    || concrete.concrete().as_ref() == Some(arg)
            }
        }
    }

    /// The type this pattern stands for once its parameters are bound; an
    /// unbound parameter is `dyn`.
    pub(crate) fn substitute(&self, bindings: &Bindings) -> Type {
        match self {
            Pattern::A => bindings.a.clone().unwrap_or(Type::Dyn),
            Pattern::B => bindings.b.clone().unwrap_or(Type::Dyn),
            Pattern::List(elem) => Type::list(elem.substitute(bindings)),
            Pattern::Optional(value) => Type::optional(value.substitute(bindings)),
            Pattern::Map(key, value) => {
                Type::map(key.substitute(bindings), value.substitute(bindings))
            }
            concrete => concrete.concrete().unwrap_or(Type::Dyn),
        }
    }

    fn concrete(&self) -> Option<Type> {
        Some(match self {
            Pattern::Dyn => Type::Dyn,
            Pattern::Bool => Type::Bool,
            Pattern::Int => Type::Int,
            Pattern::Uint => Type::Uint,
            Pattern::Double => Type::Double,
            Pattern::String => Type::String,
            Pattern::Bytes => Type::Bytes,
            Pattern::Timestamp => Type::Timestamp,
            Pattern::Duration => Type::Duration,
            Pattern::Meta => Type::Meta,
            Pattern::A
            | Pattern::B
            | Pattern::List(_)
            | Pattern::Map(..)
            | Pattern::Optional(_) => {
                return None;
            }
        })
    }
}

/// Binds a type parameter to `arg`, or checks `arg` agrees with what it is
/// bound to; `dyn` on either side widens the binding to `dyn`, as cel-go
/// does.
fn bind(slot: &mut Option<Type>, arg: &Type) -> bool {
    match slot {
        None => {
            *slot = Some(arg.clone());
            true
        }
        Some(bound) => match bound.join(arg) {
            Some(joined) => {
                *slot = Some(joined);
                true
            }
            None => false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_parameters_bind_to_the_first_argument_and_widen_to_dyn() {
        let mut bindings = Bindings::default();
        assert!(Pattern::A.accepts(&Type::Int, &mut bindings));
        assert!(!Pattern::A.accepts(&Type::String, &mut bindings));
        assert!(Pattern::A.accepts(&Type::Dyn, &mut bindings));
        assert_eq!(Pattern::A.substitute(&bindings), Type::Dyn);
    }

    #[test]
    fn containers_match_their_elements() {
        let mut bindings = Bindings::default();
        let list_a = Pattern::List(&Pattern::A);
        assert!(list_a.accepts(&Type::list(Type::String), &mut bindings));
        assert_eq!(
            Pattern::Optional(&Pattern::A).substitute(&bindings),
            Type::optional(Type::String)
        );
        assert!(!Pattern::List(&Pattern::Int).accepts(&Type::String, &mut Bindings::default()));
        assert!(Pattern::List(&Pattern::Int).accepts(&Type::Dyn, &mut Bindings::default()));
    }

    #[test]
    fn unknown_types_take_the_type_they_meet() {
        let empty = Type::list(Type::Unknown);
        assert_eq!(
            empty.join(&Type::list(Type::Int)),
            Some(Type::list(Type::Int))
        );
        assert_eq!(Type::Unknown.join(&Type::Dyn), Some(Type::Dyn));
        let mut bindings = Bindings::default();
        let list_a = Pattern::List(&Pattern::A);
        assert!(list_a.accepts(&empty, &mut bindings));
        assert!(list_a.accepts(&Type::list(Type::String), &mut bindings));
        assert_eq!(list_a.substitute(&bindings), Type::list(Type::String));
    }

    #[test]
    fn names_follow_cel_go() {
        assert_eq!(Type::json_object().to_string(), "map(string, dyn)");
        assert_eq!(
            Type::optional(Type::list(Type::Int)).to_string(),
            "optional_type(list(int))"
        );
        assert_eq!(Type::Null.to_string(), "null_type");
    }
}
