//! Compiling (bounding, parsing, checking) and evaluating one expression.

use crate::check::check;
use crate::decls::Environment;
use crate::document::Document;
use crate::error::{CompileError, EvalError, Position};
use crate::library::ENVIRONMENT;
use crate::limits::{MAX_DEPTH, PARSER_STACK_SIZE, check_source, deepest_beyond, position_at};
use cel::common::value::{CowVal, Val};
use cel::context::VariableResolver;
use cel::{Context, ExecutionError, Value};

/// A compiled expression.
#[derive(Debug)]
pub(crate) struct Program(cel::Program);

impl Program {
    /// Compiles `source` for `environment`, as Flux's `cel.NewExpression`
    /// with `cel.WithCompile()` does.
    pub(crate) fn compile(source: &str, environment: Environment) -> Result<Self, CompileError> {
        check_source(source)?;
        // The generated parser recurses deeply even on the bounded input:
        // it runs on a thread whose stack is sized for it, whatever the
        // caller's stack.
        std::thread::scope(|scope| {
            let parser = std::thread::Builder::new()
                .name("fluxhook-cel-parser".to_owned())
                .stack_size(PARSER_STACK_SIZE)
                .spawn_scoped(scope, || parse_and_check(source, environment))
                .map_err(|e| CompileError::Parser(e.to_string()))?;
            parser
                .join()
                .map_err(|_| CompileError::Parser("the parser panicked".to_owned()))?
        })
    }

    /// Evaluates the expression with `variables` bound.
    pub(crate) fn evaluate(&self, variables: &[(&str, &Document)]) -> Result<Value, EvalError> {
        let env = environment().map_err(|e| EvalError::Runtime(e.to_string()))?;
        let bindings = Bindings(variables);
        let mut context = Context::with_env(env);
        context.set_variable_resolver(&bindings);
        self.0
            .execute(&context)
            .map_err(|e| EvalError::Runtime(runtime_message(&e)))
    }
}

fn environment() -> Result<std::sync::Arc<cel::Env>, CompileError> {
    ENVIRONMENT
        .as_ref()
        .map(std::sync::Arc::clone)
        .map_err(|e| CompileError::Parser(format!("the CEL environment is invalid: {e}")))
}

fn parse_and_check(source: &str, environment: Environment) -> Result<Program, CompileError> {
    let chars: Vec<char> = source.chars().collect();
    let program = self::environment()?.compile(source).map_err(|errors| {
        let first = errors.errors.first();
        CompileError::Syntax {
            // cel-rust reports 1-based lines and columns.
            position: first.map_or(Position { line: 1, column: 1 }, |e| Position {
                line: usize::try_from(e.pos.0).unwrap_or(1).max(1),
                column: usize::try_from(e.pos.1).unwrap_or(1).max(1),
            }),
            message: first.map_or_else(
                || "invalid expression".to_owned(),
                |e| e.msg.trim_start_matches("Syntax error: ").to_owned(),
            ),
        }
    })?;
    let node_position = |id: u64| {
        let offset = program
            .source_info()
            .offset_for(id)
            .map_or(0, |(start, _)| start);
        position_at(&chars, usize::try_from(offset).unwrap_or(0))
    };
    if let Some(id) = deepest_beyond(program.expression(), MAX_DEPTH) {
        return Err(CompileError::TooDeep {
            position: node_position(id),
            max: MAX_DEPTH,
        });
    }
    let ty = check(program.expression(), environment).map_err(|e| CompileError::Check {
        position: node_position(e.id),
        message: e.message,
    })?;
    if let Some(expected) = environment.output()
        && ty != expected
    {
        return Err(CompileError::OutputType {
            expected: expected.to_string(),
            found: ty.to_string(),
        });
    }
    Ok(Program(program))
}

/// Lends the documents bound to variables to the engine, without copying.
struct Bindings<'a>(&'a [(&'a str, &'a Document)]);

impl VariableResolver for Bindings<'_> {
    fn resolve<'b>(&'b self, variable: &str) -> Option<CowVal<'b, 'b>> {
        self.0
            .iter()
            .find(|(name, _)| *name == variable)
            .map(|(_, document)| CowVal::Borrowed(document.as_val() as &dyn Val))
    }
}

/// cel-go's wording for an evaluation error, where it differs from
/// cel-rust's. Messages name types, never values, which may come from a
/// token's claims.
fn runtime_message(error: &ExecutionError) -> String {
    match error {
        ExecutionError::NoSuchKey(key) => format!("no such key: {key}"),
        ExecutionError::NoSuchOverload(overload) => overload.to_string(),
        ExecutionError::UndeclaredReference(name) => format!("no such attribute: {name}"),
        ExecutionError::DivisionByZero(_) => "division by zero".to_owned(),
        ExecutionError::RemainderByZero(_) => "modulus by zero".to_owned(),
        ExecutionError::Overflow(..) => "integer overflow".to_owned(),
        ExecutionError::IndexOutOfBounds(_) => "index out of bounds".to_owned(),
        ExecutionError::FunctionError { message, .. } => message.clone(),
        ExecutionError::ValuesNotComparable(a, b) => {
            format!(
                "no such overload: {} and {} are not comparable",
                a.type_of(),
                b.type_of()
            )
        }
        ExecutionError::UnsupportedBinaryOperator(operator, a, b) => {
            format!(
                "no such overload: {} {operator} {}",
                a.type_of(),
                b.type_of()
            )
        }
        ExecutionError::UnsupportedIndex(index, target) => {
            format!(
                "no such overload: {}[{}]",
                target.type_of(),
                index.type_of()
            )
        }
        ExecutionError::UnsupportedKeyType(key) => {
            format!("unsupported key type: {}", key.type_of())
        }
        ExecutionError::DuplicateKey(_) => "repeated key in map literal".to_owned(),
        ExecutionError::UnexpectedType { got, want } => {
            format!("no such overload: got {got}, want {want}")
        }
        ExecutionError::InvalidArgumentCount { expected, actual } => {
            format!("expected {expected} arguments, got {actual}")
        }
        ExecutionError::NotSupportedAsMethod { method, target } => {
            format!("no such overload: {}.{method}()", target.type_of())
        }
        ExecutionError::UnsupportedTargetType { target } => {
            format!("no such overload: {}", target.type_of())
        }
        ExecutionError::InternalError(message) => format!("internal error: {message}"),
        _ => "evaluation failed".to_owned(),
    }
}
