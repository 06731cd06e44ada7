//! Resource filters: `spec.resourceFilter` and `spec.resources[].filter`.

use crate::decls::Environment;
use crate::document::Document;
use crate::error::{CompileError, EvalError};
use crate::program::Program;
use cel::Value;

/// A compiled resource filter: a Receiver's `spec.resourceFilter` or a
/// `spec.resources[].filter`, a CEL expression of type `bool` over `req`
/// and `res`, and, for `generic-oidc` Receivers ([`Expression::compile_with_claims`]),
/// `claims`.
///
/// Compile it when the Receiver is reconciled, reporting a
/// [`CompileError`] as `Ready=False`, and evaluate it for every resource a
/// webhook request selects: the resource is reconciled only if it evaluates
/// to `true`. Both fields, when set, must hold.
///
/// ```
/// use fluxhook_cel::{Document, Expression, Variables};
///
/// let filter = Expression::compile("req.tag.startsWith(res.metadata.name)")?;
/// let req = Document::from_object(serde_json::json!({"tag": "podinfo-v1"}).as_object().unwrap())?;
/// let res = Document::from_object(
///     serde_json::json!({"kind": "ImageRepository", "metadata": {"name": "podinfo"}}).as_object().unwrap(),
/// )?;
/// let claims = Document::empty();
/// assert!(filter.evaluate_bool(&Variables { req: &req, res: &res, claims: &claims })?);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Expression {
    source: String,
    program: Program,
}

/// The values of a resource filter's variables.
#[derive(Clone, Copy, Debug)]
pub struct Variables<'a> {
    /// The request body: the JSON object a webhook sent (for `gcr`, the
    /// event unwrapped from its Pub/Sub message), or [`Document::empty`] if
    /// the request is not `application/json`.
    pub req: &'a Document,
    /// The resource considered, as Flux reads it: the object's
    /// `apiVersion`, `kind` and `metadata` (`name`, `namespace`, `labels`,
    /// `annotations`, ...).
    pub res: &'a Document,
    /// The verified OIDC token claims of a `generic-oidc` receiver, or
    /// [`Document::empty`] for other types (whose filters cannot name
    /// `claims`: it is not declared for them).
    pub claims: &'a Document,
}

impl Expression {
    /// Parses and type-checks `source` with `req` and `res` declared, as
    /// Flux does for every receiver type but `generic-oidc`: an undeclared
    /// variable (`claims` included) or function, a call no overload
    /// accepts, or a type other than `bool` is an error. A field of `req`
    /// or `res` has no static type, so `req.ok` alone does not compile,
    /// while `req.ok == true` does.
    ///
    /// ```
    /// use fluxhook_cel::{CompileError, Expression};
    ///
    /// let error = Expression::compile("request.body.tag == 'v1'").unwrap_err();
    /// assert_eq!(
    ///     error.to_string(),
    ///     "undeclared reference to 'request' (in container ''), at line 1, column 1"
    /// );
    /// assert!(matches!(Expression::compile("req.ok"), Err(CompileError::OutputType { .. })));
    /// assert!(Expression::compile("claims.sub == 'ci'").is_err());
    /// ```
    pub fn compile(source: &str) -> Result<Self, CompileError> {
        Self::compile_in(source, Environment::ResourceFilter)
    }

    /// Compiles `source` as [`Expression::compile`] does, with `claims`
    /// declared too: the filters of a `generic-oidc` Receiver.
    ///
    /// ```
    /// use fluxhook_cel::Expression;
    ///
    /// assert!(Expression::compile_with_claims("claims.sub == 'ci'").is_ok());
    /// ```
    pub fn compile_with_claims(source: &str) -> Result<Self, CompileError> {
        Self::compile_in(source, Environment::ResourceFilterWithClaims)
    }

    fn compile_in(source: &str, environment: Environment) -> Result<Self, CompileError> {
        let program = Program::compile(source, environment)?;
        Ok(Expression {
            source: source.to_owned(),
            program,
        })
    }

    /// The expression's source, as compiled.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Evaluates the filter for one resource. A missing field is an error,
    /// as in cel-go, not `false`: guard with `has(req.field)` or read it as
    /// `req.?field.orValue(default)`.
    ///
    /// ```
    /// use fluxhook_cel::{Document, EvalError, Expression, Variables};
    ///
    /// let empty = Document::empty();
    /// let vars = Variables { req: &empty, res: &empty, claims: &empty };
    /// let strict = Expression::compile("req.tag == 'v1'")?;
    /// assert_eq!(
    ///     strict.evaluate_bool(&vars),
    ///     Err(EvalError::Runtime("no such key: tag".to_owned()))
    /// );
    /// let guarded = Expression::compile("has(req.tag) && req.tag == 'v1'")?;
    /// assert_eq!(guarded.evaluate_bool(&vars), Ok(false));
    /// # Ok::<(), fluxhook_cel::CompileError>(())
    /// ```
    pub fn evaluate_bool(&self, variables: &Variables<'_>) -> Result<bool, EvalError> {
        let value = self.program.evaluate(&[
            ("req", variables.req),
            ("res", variables.res),
            ("claims", variables.claims),
        ])?;
        as_bool(value)
    }
}

/// The boolean an expression of static type `bool` evaluated to.
pub(crate) fn as_bool(value: Value) -> Result<bool, EvalError> {
    match value {
        Value::Bool(b) => Ok(b),
        other => Err(EvalError::NotBool {
            found: other.type_of().to_string(),
        }),
    }
}
