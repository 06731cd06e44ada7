//! Why a delivery could not be parsed.

/// Why a delivery could not be parsed.
///
/// Every variant names what is wrong: the header, the field (as a dotted
/// path such as `push.changes[0]`), or the line and column serde_json stopped
/// at. Messages never quote header values or body text beyond the short
/// identifiers a field is checked against.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ParseError {
    /// The body is larger than the parser accepts.
    #[error("body is {size} bytes, over the limit of {limit} bytes")]
    BodyTooLarge {
        /// Size of the body in bytes.
        size: usize,
        /// The limit in force.
        limit: usize,
    },
    /// A header the sender always sends is absent or empty.
    #[error("header {name} is missing")]
    MissingHeader {
        /// The header's name.
        name: &'static str,
    },
    /// A header is present but is not visible ASCII text (e.g. not UTF-8).
    #[error("header {name} is not visible ASCII text")]
    InvalidHeader {
        /// The header's name.
        name: &'static str,
    },
    /// The JSON is empty or its top level is not an object.
    #[error("{location} is empty or not a JSON object")]
    NotAnObject {
        /// What was read: `body`, or the part of it that holds a nested document.
        location: &'static str,
    },
    /// The JSON is nested deeper than [`Parser::MAX_DEPTH`](crate::Parser::MAX_DEPTH)
    /// where it is read into a tree ([`Webhook::json`](crate::Webhook::json)).
    #[error(
        "{location} is nested deeper than {} levels (line {line}, column {column})",
        crate::Parser::MAX_DEPTH
    )]
    TooDeep {
        /// What was read.
        location: &'static str,
        /// Line where the limit was reached.
        line: usize,
        /// Column where the limit was reached.
        column: usize,
    },
    /// The JSON is invalid or does not have the shape the sender sends:
    /// a syntax error, a field of the wrong type, a missing field serde
    /// reports. The message carries serde_json's field name and position.
    #[error("{location} is not a valid {sender} payload: {source}")]
    Json {
        /// The sender whose shape was expected.
        sender: crate::Sender,
        /// What was read.
        location: &'static str,
        /// serde_json's error, with line and column.
        source: serde_json::Error,
    },
    /// A field the event needs is absent, null or empty.
    #[error("field {field} is missing")]
    MissingField {
        /// Dotted path of the field, e.g. `push.changes[0]`.
        field: &'static str,
    },
    /// A field is present but its value is not acceptable.
    #[error("field {field} is invalid: {reason}")]
    InvalidField {
        /// Dotted path of the field, e.g. `context.type`.
        field: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A value does not decode into the field the sender's format
    /// declares, as the Go code Flux runs decides it (a number where a
    /// string goes, an object where a list goes...), or breaks a rule of
    /// that format.
    #[error("field {field} is invalid: {reason}")]
    Decode {
        /// Dotted path of the field, e.g. `push_data.tag` or
        /// `subject.content.environment`.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ParseError {
    /// Maps a serde_json error, telling nesting-limit errors apart.
    pub(crate) fn json(
        sender: crate::Sender,
        location: &'static str,
        source: serde_json::Error,
    ) -> Self {
        // serde_json reports its recursion limit only through this message
        // (ErrorCode is private); its wording has been stable since 1.0.
        if source.to_string().starts_with("recursion limit exceeded") {
            Self::TooDeep {
                location,
                line: source.line(),
                column: source.column(),
            }
        } else {
            Self::Json {
                sender,
                location,
                source,
            }
        }
    }
}

/// A sender name that is not one of [`Sender::ALL`](crate::Sender::ALL).
///
/// ```
/// let err = "github.com".parse::<fluxhook_payload::Sender>().unwrap_err();
/// assert!(err.to_string().starts_with(
///     r#"unknown sender "github.com"; expected one of: github, gitea, gogs, gitlab,"#
/// ));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown sender {0:?}; expected one of: {names}", names = SenderNames)]
pub struct UnknownSender(pub String);

/// The names of [`Sender::ALL`](crate::Sender::ALL), comma-separated.
struct SenderNames;

impl std::fmt::Display for SenderNames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, sender) in crate::Sender::ALL.iter().enumerate() {
            if i > 0 {
                f.write_str(", ")?;
            }
            f.write_str(sender.as_str())?;
        }
        Ok(())
    }
}
