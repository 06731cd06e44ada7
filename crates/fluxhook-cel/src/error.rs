//! Errors of compiling and evaluating an expression.

use std::fmt;

/// Where in an expression's source a problem is: 1-based line and column,
/// counted in characters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// The line, from 1.
    pub line: usize,
    /// The column, from 1, in characters.
    pub column: usize,
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why an expression does not compile. Flux reports this on the Receiver as
/// `Ready=False`; the message names the problem and, where there is one,
/// its position.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CompileError {
    /// The expression is longer than cel-go accepts.
    #[error("the CEL expression is {length} characters long, more than the {max} allowed")]
    TooLong {
        /// Its length, in characters.
        length: usize,
        /// The most allowed.
        max: usize,
    },
    /// The expression nests deeper than this crate evaluates safely.
    #[error("the CEL expression nests deeper than {max} levels, at {position}")]
    TooDeep {
        /// Where the nesting goes past the limit.
        position: Position,
        /// The deepest nesting allowed.
        max: usize,
    },
    /// The expression is not valid CEL syntax.
    #[error("syntax error at {position}: {message}")]
    Syntax {
        /// Where the parser stopped.
        position: Position,
        /// What it expected or found.
        message: String,
    },
    /// The expression is valid syntax but does not type-check: an undeclared
    /// variable or function, or a call no overload accepts.
    #[error("{message}, at {position}")]
    Check {
        /// Where the problem is.
        position: Position,
        /// What it is, in cel-go's words, e.g. `undeclared reference to 'x' (in container '')`.
        message: String,
    },
    /// The expression type-checks, but to another type than its field
    /// requires (a filter or a validation must be a `bool`).
    #[error("CEL expression output type mismatch: expected {expected}, got {found}")]
    OutputType {
        /// The type required.
        expected: String,
        /// The expression's type, e.g. `string` or `dyn`.
        found: String,
    },
    /// The parser, which runs on a thread of its own, could not be started or
    /// failed.
    #[error("the CEL parser failed: {0}")]
    Parser(String),
}

impl CompileError {
    /// Where in the source the problem is, if it is at one place.
    pub fn position(&self) -> Option<Position> {
        match self {
            CompileError::TooDeep { position, .. }
            | CompileError::Syntax { position, .. }
            | CompileError::Check { position, .. } => Some(*position),
            _ => None,
        }
    }
}

/// Why an expression could not be evaluated. Flux treats this as a failure
/// of the webhook request, not as `false`.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// Evaluation failed, as it does in cel-go, e.g. `no such key: tag` for a
    /// field the request lacks, or `optional.none() dereference`.
    #[error("failed to evaluate the CEL expression: {0}")]
    Runtime(String),
    /// The expression evaluated to another type than `bool`. The checker
    /// admits only expressions of static type `bool` where one is required,
    /// so this guards against the engine disagreeing with it.
    #[error("the CEL expression evaluated to a {found}, not a bool")]
    NotBool {
        /// The type it evaluated to.
        found: String,
    },
}
