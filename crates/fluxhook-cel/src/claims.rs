//! The CEL rules of a `generic-oidc` Receiver's OIDC provider:
//! `spec.oidcProviders[].variables` and `.validations`.

use crate::decls::Environment;
use crate::document::Document;
use crate::error::{CompileError, EvalError};
use crate::filter::as_bool;
use crate::program::Program;
use cel::common::types::{CelMap, CelMapKey};
use cel::common::value::Val;
use std::collections::HashMap;

/// The compiled variables and validations of one OIDC provider, applied to
/// the claims of a verified token.
///
/// Variables are evaluated in order; each may read `claims` and the
/// variables before it, as `vars.<name>`, and may be of any type.
/// Validations are `bool` expressions over `claims` and `vars`; the token
/// is accepted only if all of them hold.
///
/// ```
/// use fluxhook_cel::{ClaimRules, ClaimsError, Document};
///
/// let rules = ClaimRules::compile(
///     [("owner", "claims.repository_owner"), ("allowed", "['my-org/app', 'my-org/infra']")],
///     [
///         ("vars.owner == 'my-org'", "wrong org"),
///         ("claims.repository in vars.allowed", "repository not allowed"),
///     ],
/// )?;
///
/// let claims = serde_json::json!({"repository_owner": "my-org", "repository": "my-org/app"});
/// assert_eq!(rules.verify(&Document::from_object(claims.as_object().unwrap())?), Ok(()));
///
/// let claims = serde_json::json!({"repository_owner": "other", "repository": "other/app"});
/// let rejected = rules.verify(&Document::from_object(claims.as_object().unwrap())?);
/// assert_eq!(
///     rejected.unwrap_err().to_string(),
///     "token validation failed: wrong org; repository not allowed"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct ClaimRules {
    variables: Vec<(String, Program)>,
    validations: Vec<(Program, String)>,
}

/// An expression of [`ClaimRules`] that does not compile.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleCompileError {
    /// A variable's expression.
    #[error("invalid expression for variable '{name}': {source}")]
    Variable {
        /// The variable's name.
        name: String,
        /// Why its expression does not compile.
        source: CompileError,
    },
    /// A validation's expression.
    #[error("invalid expression for validation '{message}': {source}")]
    Validation {
        /// The validation's message.
        message: String,
        /// Why its expression does not compile.
        source: CompileError,
    },
}

/// Why a token's claims are not accepted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClaimsError {
    /// A variable could not be evaluated.
    #[error("failed to evaluate variable '{name}': {source}")]
    Variable {
        /// The variable's name.
        name: String,
        /// Why it could not be evaluated.
        source: EvalError,
    },
    /// A validation could not be evaluated.
    #[error("failed to evaluate validation: {source}")]
    Validation {
        /// The validation's message.
        message: String,
        /// Why it could not be evaluated.
        source: EvalError,
    },
    /// Validations evaluated to `false`.
    #[error("token validation failed: {}", .messages.join("; "))]
    Rejected {
        /// The messages of the failing validations, in order.
        messages: Vec<String>,
    },
}

impl ClaimRules {
    /// Compiles a provider's variables, as `(name, expression)`, and
    /// validations, as `(expression, message)`, in the order given.
    pub fn compile<'a>(
        variables: impl IntoIterator<Item = (&'a str, &'a str)>,
        validations: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, RuleCompileError> {
        let variables = variables
            .into_iter()
            .map(|(name, expression)| {
                Program::compile(expression, Environment::ClaimVariable)
                    .map(|program| (name.to_owned(), program))
                    .map_err(|source| RuleCompileError::Variable {
                        name: name.to_owned(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        let validations = validations
            .into_iter()
            .map(|(expression, message)| {
                Program::compile(expression, Environment::ClaimValidation)
                    .map(|program| (program, message.to_owned()))
                    .map_err(|source| RuleCompileError::Validation {
                        message: message.to_owned(),
                        source,
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(ClaimRules {
            variables,
            validations,
        })
    }

    /// Evaluates the variables, then every validation, against `claims`.
    /// The first evaluation error stops it; otherwise every failing
    /// validation's message is reported.
    pub fn verify(&self, claims: &Document) -> Result<(), ClaimsError> {
        let mut values: HashMap<CelMapKey<'static>, Box<dyn Val>> = HashMap::new();
        let mut vars = Document::empty();
        for (name, program) in &self.variables {
            let variable_error = |source| ClaimsError::Variable {
                name: name.clone(),
                source,
            };
            let value = program
                .evaluate(&[("claims", claims), ("vars", &vars)])
                .map_err(variable_error)?;
            let value = Box::<dyn Val>::try_from(value)
                .map_err(|e| variable_error(EvalError::Runtime(e.to_string())))?;
            values.insert(CelMapKey::from(name.clone()), value);
            vars = Document::from_val(Box::new(CelMap::from(values.clone())));
        }
        let mut messages = Vec::new();
        for (program, message) in &self.validations {
            let holds = program
                .evaluate(&[("claims", claims), ("vars", &vars)])
                .and_then(as_bool)
                .map_err(|source| ClaimsError::Validation {
                    message: message.clone(),
                    source,
                })?;
            if !holds {
                messages.push(message.clone());
            }
        }
        if messages.is_empty() {
            Ok(())
        } else {
            Err(ClaimsError::Rejected { messages })
        }
    }
}
