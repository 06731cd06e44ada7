//! Compiles and evaluates the CEL expressions of Flux's `Receiver` API
//! (notification.toolkit.fluxcd.io/v1), giving the results Flux's
//! notification-controller, which uses cel-go, gives.
//!
//! A Receiver holds CEL in three places:
//!
//! - `spec.resourceFilter` and `spec.resources[].filter`: a `bool`
//!   expression evaluated for each resource a webhook request selects; only
//!   resources for which it is `true` are reconciled. It reads the request
//!   body as `req`, the resource as `res`, and, for `generic-oidc`
//!   receivers only, the token's claims as `claims` (on other types
//!   `claims` is undeclared, so naming it does not compile). See
//!   [`Expression`].
//! - `spec.oidcProviders[].variables` and `.validations`, for
//!   `generic-oidc` receivers: named expressions over `claims` and `vars`,
//!   and the `bool` rules a token must pass. See [`ClaimRules`].
//!
//! The environment is Flux's (fluxcd/pkg `runtime/cel`): cel-go's standard
//! library and macros (`has`, `all`, `exists`, `exists_one`, `map`,
//! `filter`), optional values (`req.?tag.orValue('')`, `list.first()`,
//! `list.last()`), `ext.Strings()` (`split`, `lowerAscii`, `replace`, ...),
//! `ext.Sets()` and `ext.Encoders()`, cross-type numeric comparisons and
//! homogeneous literals. Expressions are type-checked when compiled, as
//! Flux does: an undeclared name, a call no overload accepts, or a filter
//! whose type is not `bool` is a [`CompileError`]. JSON numbers are
//! `double`s, as they are to Go.
//!
//! The crate is pure: it does no I/O. It never panics on any expression or
//! document. Expressions are bounded in length ([`MAX_SOURCE_CHARS`],
//! cel-go's limit) and nesting ([`MAX_DEPTH`]), so neither parsing nor
//! evaluation can exhaust the stack; parsing runs on a thread of its own
//! with a large stack. CEL has no loops or recursion, so evaluation always
//! ends; its cost is linear in the size of the documents for each level of
//! nested macros (`req.a.all(x, req.b.exists(y, x == y))` is quadratic),
//! so callers bound request bodies.
//!
//! # Example
//!
//! ```
//! use fluxhook_cel::{Document, Expression, Variables};
//!
//! // A filter from Flux's own tests: reconcile only the resource whose
//! // name matches, and only for images tagged v-something.
//! let filter = Expression::compile(
//!     "res.metadata.name == 'test-resource' && \
//!      req.image.source.split(':').last().value().startsWith('v')",
//! )?;
//!
//! let body = serde_json::json!({"image": {"source": "hello-world:v1.0.0"}});
//! let req = Document::from_object(body.as_object().unwrap())?;
//! let claims = Document::empty();
//! for (name, expected) in [("test-resource", true), ("other", false)] {
//!     let object = serde_json::json!({
//!         "apiVersion": "source.toolkit.fluxcd.io/v1",
//!         "kind": "GitRepository",
//!         "metadata": {"name": name, "namespace": "flux-system"},
//!     });
//!     let res = Document::from_object(object.as_object().unwrap())?;
//!     let vars = Variables { req: &req, res: &res, claims: &claims };
//!     assert_eq!(filter.evaluate_bool(&vars)?, expected);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod check;
mod claims;
mod decls;
mod document;
mod error;
mod filter;
mod library;
mod limits;
mod program;
mod types;

pub use claims::{ClaimRules, ClaimsError, RuleCompileError};
pub use document::{Document, DocumentTooDeep, MAX_DOCUMENT_DEPTH};
pub use error::{CompileError, EvalError, Position};
pub use filter::{Expression, Variables};
pub use limits::{MAX_DEPTH, MAX_SOURCE_CHARS};
