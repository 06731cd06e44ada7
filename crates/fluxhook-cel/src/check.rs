//! The type checker: what cel-go's `env.Compile` rejects and the engine,
//! an interpreter without a checker, would only fail on at evaluation.
//!
//! It infers a static type for every node of the parsed (macro-expanded)
//! expression, rejecting undeclared variables and functions, calls no
//! signature of [`crate::decls`] accepts, and list and map literals mixing
//! types (`cel.HomogeneousAggregateLiterals`). Values of the declared JSON
//! variables are `dyn`, so, as in cel-go, most checks on them are left to
//! evaluation.
//!
//! The recursion is bounded: expressions deeper than
//! [`crate::limits::MAX_DEPTH`] are rejected before checking.

use crate::decls::{Environment, NAMESPACES, OVERLOADS, TYPE_NAMES, is_declared};
use crate::types::{Bindings, Type};
use cel::common::ast::{
    CallExpr, ComprehensionExpr, EntryExpr, Expr, IdedExpr, ListExpr, LiteralValue, MapExpr,
    SelectExpr,
};

/// A type error, at the node it is about.
#[derive(Debug, PartialEq)]
pub(crate) struct CheckError {
    pub(crate) id: u64,
    pub(crate) message: String,
}

/// The static type of `expr`, checked in `environment`.
pub(crate) fn check(expr: &IdedExpr, environment: Environment) -> Result<Type, CheckError> {
    Checker {
        environment,
        scopes: Vec::new(),
    }
    .check(expr)
}

struct Checker {
    environment: Environment,
    /// Comprehension variables in scope, innermost last.
    scopes: Vec<(String, Type)>,
}

fn error(id: u64, message: String) -> CheckError {
    CheckError { id, message }
}

fn undeclared(id: u64, name: &str) -> CheckError {
    error(
        id,
        format!("undeclared reference to '{name}' (in container '')"),
    )
}

impl Checker {
    fn check(&mut self, expr: &IdedExpr) -> Result<Type, CheckError> {
        match &expr.expr {
            Expr::Literal(literal) => Ok(literal_type(literal)),
            Expr::Ident(name) => self.ident(expr.id, name),
            Expr::Select(select) => self.select(expr.id, select),
            Expr::Call(call) => self.call(expr.id, call),
            Expr::List(list) => self.list(list),
            Expr::Map(map) => self.map(map),
            Expr::Comprehension(comprehension) => self.comprehension(expr.id, comprehension),
            // cel-go knows no message types in Flux's environment.
            Expr::Struct(construction) => Err(undeclared(expr.id, &construction.type_name)),
            Expr::Unspecified => Err(error(expr.id, "unspecified expression".to_owned())),
        }
    }

    fn lookup(&self, name: &str) -> Option<Type> {
        if let Some((_, ty)) = self.scopes.iter().rev().find(|(var, _)| var == name) {
            return Some(ty.clone());
        }
        if self.environment.variables().contains(&name) {
            return Some(Type::json_object());
        }
        TYPE_NAMES.contains(&name).then_some(Type::Meta)
    }

    fn ident(&self, id: u64, name: &str) -> Result<Type, CheckError> {
        self.lookup(name).ok_or_else(|| undeclared(id, name))
    }

    fn select(&mut self, id: u64, select: &SelectExpr) -> Result<Type, CheckError> {
        let operand = self.check(&select.operand)?;
        let field = field_type(id, &operand)?;
        Ok(if select.test { Type::Bool } else { field })
    }

    fn call(&mut self, id: u64, call: &CallExpr) -> Result<Type, CheckError> {
        match call.func_name.as_str() {
            // `a.?b`: the field name is a string literal, not an argument.
            "_?._" => {
                let operand = call.args.first().ok_or_else(|| malformed(id))?;
                let operand = self.check(operand)?;
                let field = match field_type(id, &operand)? {
                    Type::Optional(value) => *value,
                    value => value,
                };
                return Ok(Type::optional(field));
            }
            // Selecting from or indexing an optional yields an optional.
            "_[_]" | "_[?_]" => {
                if let [target, index] = call.args.as_slice() {
                    let target = self.check(target)?;
                    let index = self.check(index)?;
                    let (target, wrap) = match target {
                        Type::Optional(value) => (*value, true),
                        target => (target, call.func_name == "_[?_]"),
                    };
                    let element = self.resolve(id, "_[_]", false, &[target, index])?;
                    return Ok(if wrap {
                        Type::optional(element)
                    } else {
                        element
                    });
                }
            }
            _ => {}
        }
        let mut args = Vec::with_capacity(call.args.len() + 1);
        let mut name = call.func_name.clone();
        let mut is_member = false;
        if let Some(target) = &call.target {
            match self.namespace(target) {
                Some(namespace) if is_declared(&format!("{namespace}.{name}")) => {
                    name = format!("{namespace}.{name}");
                }
                _ => {
                    is_member = true;
                    args.push(self.check(target)?);
                }
            }
        }
        for arg in &call.args {
            args.push(self.check(arg)?);
        }
        self.resolve(id, &name, is_member, &args)
    }

    /// The namespace `target` names, if it is one of the dotted prefixes of
    /// global functions and not shadowed by a variable.
    fn namespace<'e>(&self, target: &'e IdedExpr) -> Option<&'e str> {
        match &target.expr {
            Expr::Ident(name)
                if NAMESPACES.contains(&name.as_str()) && self.lookup(name).is_none() =>
            {
                Some(name)
            }
            _ => None,
        }
    }

    /// The result type of calling `name` with arguments of types `args`.
    fn resolve(
        &self,
        id: u64,
        name: &str,
        is_member: bool,
        args: &[Type],
    ) -> Result<Type, CheckError> {
        let mut result: Option<Type> = None;
        for overload in OVERLOADS
            .iter()
            .filter(|o| o.name == name && o.member == is_member && o.params.len() == args.len())
        {
            let mut bindings = Bindings::default();
            if overload
                .params
                .iter()
                .zip(args)
                .all(|(param, arg)| param.accepts(arg, &mut bindings))
            {
                let ty = overload.result.substitute(&bindings);
                // Several signatures match when an argument is `dyn`: the
                // result is what they have in common.
                result = Some(match result {
                    None => ty,
                    Some(previous) => previous.join(&ty).unwrap_or(Type::Dyn),
                });
            }
        }
        if let Some(result) = result {
            return Ok(result);
        }
        if !is_declared(name) {
            return Err(undeclared(id, name));
        }
        let applied = match (is_member, args) {
            (true, [target, rest @ ..]) => format!("{target}.({})", join_types(rest)),
            _ => format!("({})", join_types(args)),
        };
        Err(error(
            id,
            format!("found no matching overload for '{name}' applied to '{applied}'"),
        ))
    }

    fn list(&mut self, list: &ListExpr) -> Result<Type, CheckError> {
        let mut element: Option<Type> = None;
        for (index, item) in list.elements.iter().enumerate() {
            let mut ty = self.check(item)?;
            if list.optional_indices.contains(&index) {
                ty = optional_value(item.id, ty)?;
            }
            element = Some(homogeneous(item.id, element, ty)?);
        }
        Ok(Type::list(element.unwrap_or(Type::Unknown)))
    }

    fn map(&mut self, map: &MapExpr) -> Result<Type, CheckError> {
        let mut key: Option<Type> = None;
        let mut value: Option<Type> = None;
        for entry in &map.entries {
            let EntryExpr::MapEntry(entry) = &entry.expr else {
                return Err(malformed(entry.id));
            };
            let key_type = self.check(&entry.key)?;
            key = Some(homogeneous(entry.key.id, key, key_type)?);
            let mut value_type = self.check(&entry.value)?;
            if entry.optional {
                value_type = optional_value(entry.value.id, value_type)?;
            }
            value = Some(homogeneous(entry.value.id, value, value_type)?);
        }
        Ok(Type::map(
            key.unwrap_or(Type::Unknown),
            value.unwrap_or(Type::Unknown),
        ))
    }

    fn comprehension(
        &mut self,
        id: u64,
        comprehension: &ComprehensionExpr,
    ) -> Result<Type, CheckError> {
        if comprehension.iter_var2.is_some() {
            return Err(error(
                id,
                "two-variable comprehensions are not supported".to_owned(),
            ));
        }
        let range = self.check(&comprehension.iter_range)?;
        let element = match range {
            Type::List(element) => *element,
            Type::Map(key, _) => *key,
            ty @ (Type::Dyn | Type::Unknown) => ty,
            other => {
                return Err(error(
                    comprehension.iter_range.id,
                    format!(
                        "expression of type '{other}' cannot be range of a comprehension (must be list, map, or dynamic)"
                    ),
                ));
            }
        };
        let mut accumulator = self.check(&comprehension.accu_init)?;
        self.scopes
            .push((comprehension.accu_var.clone(), accumulator.clone()));
        self.scopes
            .push((comprehension.iter_var.clone(), element.clone()));
        let step = self.check(&comprehension.loop_step);
        // An accumulator that starts as an empty literal, as `map` and
        // `filter` expand to, takes the type of the values it accumulates.
        let refined = match (&accumulator, &step) {
            (Type::List(elem), Ok(step @ Type::List(_))) if **elem == Type::Unknown => {
                Some(step.clone())
            }
            (Type::Map(key, value), Ok(step @ Type::Map(..)))
                if **key == Type::Unknown && **value == Type::Unknown =>
            {
                Some(step.clone())
            }
            _ => None,
        };
        if let Some(refined) = refined {
            accumulator = refined;
            self.scopes.truncate(self.scopes.len() - 2);
            self.scopes
                .push((comprehension.accu_var.clone(), accumulator.clone()));
            self.scopes.push((comprehension.iter_var.clone(), element));
        }
        let inner = step.and_then(|_| self.check(&comprehension.loop_cond));
        // The iteration variable is out of scope in the result.
        self.scopes.pop();
        let result = inner.and_then(|_| self.check(&comprehension.result));
        self.scopes.pop();
        result
    }
}

fn literal_type(literal: &LiteralValue) -> Type {
    match literal {
        LiteralValue::Boolean(_) => Type::Bool,
        LiteralValue::Bytes(_) => Type::Bytes,
        LiteralValue::Double(_) => Type::Double,
        LiteralValue::Int(_) => Type::Int,
        LiteralValue::Null => Type::Null,
        LiteralValue::String(_) => Type::String,
        LiteralValue::UInt(_) => Type::Uint,
    }
}

/// The type of a field selected from a value of type `operand`.
fn field_type(id: u64, operand: &Type) -> Result<Type, CheckError> {
    match operand {
        Type::Dyn | Type::Unknown => Ok(Type::Dyn),
        Type::Map(key, value) if matches!(**key, Type::String | Type::Dyn | Type::Unknown) => {
            Ok((**value).clone())
        }
        Type::Optional(value) => field_type(id, value).map(Type::optional),
        other => Err(error(
            id,
            format!("type '{other}' does not support field selection"),
        )),
    }
}

/// The value type of an optional list element or map entry (`[?x]`).
fn optional_value(id: u64, ty: Type) -> Result<Type, CheckError> {
    match ty {
        Type::Optional(value) => Ok(*value),
        Type::Dyn | Type::Unknown => Ok(Type::Dyn),
        other => Err(error(
            id,
            format!("expected type 'optional_type' but found '{other}'"),
        )),
    }
}

/// The element type of a literal after adding an element of type `ty`:
/// literals may not mix types.
fn homogeneous(id: u64, previous: Option<Type>, ty: Type) -> Result<Type, CheckError> {
    match previous {
        None => Ok(ty),
        Some(previous) => previous
            .join(&ty)
            .ok_or_else(|| error(id, format!("expected type '{previous}' but found '{ty}'"))),
    }
}

fn join_types(types: &[Type]) -> String {
    types
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parser produced a node the checker does not expect; it reports it
/// rather than panicking.
fn malformed(id: u64) -> CheckError {
    error(id, "malformed expression".to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn type_of(source: &str) -> Result<String, String> {
        let program = cel::Env::stdlib()
            .compile(source)
            .map_err(|e| e.to_string())?;
        check(program.expression(), Environment::ResourceFilter)
            .map(|ty| ty.to_string())
            .map_err(|e| e.message)
    }

    #[test]
    fn infers_types_as_cel_go_does() {
        for (source, ty) in [
            ("true", "bool"),
            ("req", "map(string, dyn)"),
            ("req.a", "dyn"),
            ("req.a == 'x'", "bool"),
            ("req.a.split(':')", "list(string)"),
            ("'a:b'.split(':').last()", "optional_type(string)"),
            ("req.a.split(':').first().value()", "string"),
            ("req.?a", "optional_type(dyn)"),
            ("req.?a.?b", "optional_type(dyn)"),
            ("req.?a.orValue('x')", "dyn"),
            ("[1, 2].map(x, x * 2)", "list(int)"),
            ("[1, 2].filter(x, x > 1)", "list(int)"),
            ("['a'].exists(x, x == 'a')", "bool"),
            ("has(req.a)", "bool"),
            ("{'a': 1}", "map(string, int)"),
            ("[]", "list(dyn)"),
            ("optional.of(1)", "optional_type(int)"),
            ("optional.none()", "optional_type(dyn)"),
            ("true ? 1 : req.a", "dyn"),
            ("type(1) == int", "bool"),
            ("base64.encode(b'a')", "string"),
            ("sets.contains([1], [1])", "bool"),
            ("[?req.?a]", "list(dyn)"),
            ("size(req) > 0", "bool"),
            ("req.l.map(x, req.m.map(y, y))", "list(list(dyn))"),
        ] {
            assert_eq!(type_of(source).as_deref(), Ok(ty), "{source}");
        }
    }

    #[test]
    fn rejects_what_cel_go_rejects() {
        for (source, message) in [
            (
                "requrest.body",
                "undeclared reference to 'requrest' (in container '')",
            ),
            ("vars.a", "undeclared reference to 'vars' (in container '')"),
            (
                "req.a.nope()",
                "undeclared reference to 'nope' (in container '')",
            ),
            (
                "[1].slice(0, 1)",
                "undeclared reference to 'slice' (in container '')",
            ),
            (
                "'a' + 1",
                "found no matching overload for '_+_' applied to '(string, int)'",
            ),
            (
                "'a'.startsWith(1)",
                "found no matching overload for 'startsWith' applied to 'string.(int)'",
            ),
            (
                "1 == 1.0",
                "found no matching overload for '_==_' applied to '(int, double)'",
            ),
            ("[1, 'a']", "expected type 'int' but found 'string'"),
            ("'a'.b", "type 'string' does not support field selection"),
            (
                "1.exists(x, x)",
                "expression of type 'int' cannot be range of a comprehension (must be list, map, or dynamic)",
            ),
            (
                "[1].map(x, x)[0] + 'a'",
                "found no matching overload for '_+_' applied to '(int, string)'",
            ),
            (
                "req.l.exists(x, y)",
                "undeclared reference to 'y' (in container '')",
            ),
            (
                "[true].exists(x, x) && x",
                "undeclared reference to 'x' (in container '')",
            ),
        ] {
            assert_eq!(type_of(source), Err(message.to_owned()), "{source}");
        }
    }

    #[test]
    fn comprehension_variables_shadow_declared_ones() {
        assert_eq!(type_of("[1].exists(req, req > 0)").as_deref(), Ok("bool"));
        assert_eq!(
            type_of("[1].map(optional, optional)").as_deref(),
            Ok("list(int)")
        );
    }
}
