//! The engine's environment: cel-rust's standard library and the extensions
//! Flux enables, plus what cel-rust lacks of them, implemented here with
//! cel-go's semantics: list `first()` and `last()`, `optional.unwrap()` and
//! `unwrapOpt()` (`cel.OptionalTypes()`), and `sets.contains()`,
//! `sets.equivalent()` and `sets.intersects()` (`ext.Sets()`).
//!
//! Only what [`crate::decls`] declares can reach the engine, since the
//! checker rejects anything else: cel-rust functions cel-go lacks (its lists
//! and math extensions) are never called.

use cel::common::types::{CelBool, CelList, CelOptional, LIST_TYPE};
use cel::common::value::{CowVal, Val};
use cel::{DeclarationError, Env, ExecutionError};
use std::sync::{Arc, LazyLock};

/// The environment every expression is compiled and evaluated in, or why it
/// could not be built (which the tests rule out).
pub(crate) static ENVIRONMENT: LazyLock<Result<Arc<Env>, DeclarationError>> =
    LazyLock::new(|| build().map(Arc::new));

fn build() -> Result<Env, DeclarationError> {
    let mut env = Env::stdlib();
    env.add_extension(cel::extensions::strings)?;
    env.add_extension(cel::extensions::encoders)?;
    env.add_member_overload("first", "list_first", LIST_TYPE, vec![], list_first)?;
    env.add_member_overload("last", "list_last", LIST_TYPE, vec![], list_last)?;
    env.add_overload(
        "optional.unwrap",
        "optional_unwrap",
        vec![LIST_TYPE],
        unwrap,
    )?;
    env.add_member_overload("unwrapOpt", "list_unwrapOpt", LIST_TYPE, vec![], unwrap)?;
    env.add_overload(
        "sets.contains",
        "sets_contains",
        vec![LIST_TYPE, LIST_TYPE],
        sets_contains,
    )?;
    env.add_overload(
        "sets.equivalent",
        "sets_equivalent",
        vec![LIST_TYPE, LIST_TYPE],
        sets_equivalent,
    )?;
    env.add_overload(
        "sets.intersects",
        "sets_intersects",
        vec![LIST_TYPE, LIST_TYPE],
        sets_intersects,
    )?;
    Ok(env)
}

/// The elements of the list argument `index`.
fn elements<'a, 'b, 'v>(
    args: &'a [CowVal<'b, 'v>],
    index: usize,
) -> Result<Vec<&'a (dyn Val + 'v)>, ExecutionError> {
    let arg = args
        .get(index)
        .ok_or_else(|| ExecutionError::invalid_argument_count(index + 1, args.len()))?;
    let list = arg
        .as_iterable()
        .ok_or_else(|| ExecutionError::UnexpectedType {
            got: arg.get_type().name().to_owned(),
            want: "list".to_owned(),
        })?;
    let mut items = list.iter();
    let mut elements = Vec::new();
    while let Some(item) = items.next() {
        elements.push(item);
    }
    Ok(elements)
}

fn optional_of<'v>(value: Option<&(dyn Val + 'v)>) -> CelOptional<'v> {
    match value {
        Some(value) => CelOptional::of(value.clone_as_boxed()),
        None => CelOptional::none(),
    }
}

/// `list.first()`: the first element, or `optional.none()` for an empty list.
fn list_first<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let items = elements(&args, 0)?;
    Ok(CowVal::owned(optional_of(items.first().copied())))
}

/// `list.last()`: the last element, or `optional.none()` for an empty list.
fn list_last<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let items = elements(&args, 0)?;
    Ok(CowVal::owned(optional_of(items.last().copied())))
}

/// `optional.unwrap(list)` and `list.unwrapOpt()`: the values of the
/// optionals that have one, in order.
fn unwrap<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let mut values: Vec<Box<dyn Val>> = Vec::new();
    for item in elements(&args, 0)? {
        let optional = item.downcast_ref::<CelOptional>().ok_or_else(|| {
            ExecutionError::function_error(
                "optional.unwrap",
                format!("value {} is not optional", item.get_type().name()),
            )
        })?;
        if let Some(value) = optional.inner() {
            values.push(value.clone_as_boxed());
        }
    }
    Ok(CowVal::owned(CelList::from(values)))
}

/// Whether every element of `subset` equals one of `set`, by CEL's
/// equality, under which `1`, `1u` and `1.0` are equal.
fn contains_all(set: &[&dyn Val], subset: &[&dyn Val]) -> bool {
    subset
        .iter()
        .all(|item| set.iter().any(|member| member.equals(*item)))
}

fn sets_contains<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (set, subset) = (elements(&args, 0)?, elements(&args, 1)?);
    Ok(CowVal::owned(CelBool::from(contains_all(&set, &subset))))
}

fn sets_equivalent<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (elements(&args, 0)?, elements(&args, 1)?);
    Ok(CowVal::owned(CelBool::from(
        contains_all(&a, &b) && contains_all(&b, &a),
    )))
}

fn sets_intersects<'b, 'v>(args: Vec<CowVal<'b, 'v>>) -> Result<CowVal<'b, 'v>, ExecutionError> {
    let (a, b) = (elements(&args, 0)?, elements(&args, 1)?);
    let intersects = a
        .iter()
        .any(|item| b.iter().any(|other| item.equals(*other)));
    Ok(CowVal::owned(CelBool::from(intersects)))
}
