//! Bounds on an expression's size and nesting, so that no input can
//! exhaust the stack.
//!
//! The engine parses and evaluates recursively: nesting depth costs stack in
//! proportion, and an unoptimized build spends tens of kilobytes a level.
//! Two checks keep that bounded. Before parsing, [`check_source`] lexes the
//! expression and bounds from above the depth of the tree the parser will
//! build ([`MAX_LEXICAL_DEPTH`]); the parse itself runs on a thread with a
//! stack sized for that bound ([`PARSER_STACK_SIZE`]). After parsing,
//! [`deepest_beyond`] measures the expanded tree, without recursion, and
//! expressions deeper than [`MAX_DEPTH`] are rejected, so that evaluation,
//! which runs on the caller's thread, fits the default 2 MiB stack of a
//! spawned (or tokio) thread even unoptimized, where it takes up to about
//! 40 KiB a level.

use crate::error::{CompileError, Position};
use cel::common::ast::{EntryExpr, Expr, IdedEntryExpr, IdedExpr};

/// The longest expression accepted, in characters: cel-go's default
/// (`cel.ParserExpressionSizeLimit`, 100,000 code points).
pub const MAX_SOURCE_CHARS: usize = 100_000;

/// The deepest expression tree accepted, after macros are expanded. cel-go
/// accepts a parser recursion depth of 250, but no Flux expression needs
/// more than a handful of levels; this bound keeps evaluation within about
/// 1.3 MiB of stack in an unoptimized build, much less in an optimized one.
pub const MAX_DEPTH: usize = 32;

/// The largest upper bound, computed from the tokens, on the depth of the
/// tree accepted for parsing. Twice [`MAX_DEPTH`], as the bound
/// over-estimates.
const MAX_LEXICAL_DEPTH: usize = 2 * MAX_DEPTH;

/// The stack of the thread that parses and checks: ample for an expression
/// of [`MAX_LEXICAL_DEPTH`] in an unoptimized build, which spends up to
/// about 200 KiB a level in the generated parser. Only what is touched is
/// committed.
pub(crate) const PARSER_STACK_SIZE: usize = 64 << 20;

/// Rejects an expression that is too long, nests too deeply for the parser,
/// or holds a string literal the lexer would not read as one.
///
/// The nesting bound adds up, at each level of brackets, the ternaries, the
/// `&&` and `||` logarithmically (the parser balances them), the most
/// operators in any one of their operands (`+`, `.`, `in`, an index or a
/// call, ...: each nests the tree a level deeper), and the deepest group
/// inside. String literals and
/// comments are skipped, which is only sound if they are read as the lexer
/// reads them: a string literal that is not terminated or has an invalid
/// escape is therefore rejected here, as cel-go rejects it.
pub(crate) fn check_source(source: &str) -> Result<(), CompileError> {
    let chars: Vec<char> = source.chars().collect();
    if chars.len() > MAX_SOURCE_CHARS {
        return Err(CompileError::TooLong {
            length: chars.len(),
            max: MAX_SOURCE_CHARS,
        });
    }
    let mut scanner = Scanner {
        chars: &chars,
        at: 0,
        levels: vec![Level::default()],
    };
    scanner.scan()
}

/// What the scanner knows of one level of brackets.
#[derive(Default, Clone, Copy)]
struct Level {
    /// `?` in the current element (between commas): each ternary nests
    /// the rest of the element.
    ternaries: usize,
    /// `&&` and `||` in the current element: the parser balances their
    /// operands, nesting only logarithmically.
    logical: usize,
    /// Operators in the current operand of `&&`, `||`, `?` or `:`.
    term: usize,
    /// The most operators in a finished operand of the current element.
    max_term: usize,
    /// The deepest group closed inside the current element.
    closed: usize,
    /// The deepest of the previous elements of this level.
    previous: usize,
}

impl Level {
    /// A bound on the depth of the current element, given the bound on a
    /// group still open inside it.
    fn current(&self, open_child: usize) -> usize {
        // `||` over `&&`: two balanced trees at most.
        let logical = 2 * (usize::BITS - self.logical.leading_zeros()) as usize;
        self.ternaries + logical + self.max_term.max(self.term) + 1 + self.closed.max(open_child)
    }

    fn end_term(&mut self) {
        self.max_term = self.max_term.max(self.term);
        self.term = 0;
    }
}

struct Scanner<'a> {
    chars: &'a [char],
    at: usize,
    levels: Vec<Level>,
}

impl Scanner<'_> {
    fn peek(&self, offset: usize) -> Option<char> {
        self.chars.get(self.at + offset).copied()
    }

    fn top(&mut self) -> &mut Level {
        if self.levels.is_empty() {
            self.levels.push(Level::default());
        }
        let last = self.levels.len() - 1;
        &mut self.levels[last]
    }

    /// The bound on the depth of the whole tree seen so far.
    fn bound(&self) -> usize {
        self.levels
            .iter()
            .rev()
            .fold(0, |child, level| level.previous.max(level.current(child)))
    }

    fn check_bound(&self, at: usize) -> Result<(), CompileError> {
        if self.bound() > MAX_LEXICAL_DEPTH {
            return Err(CompileError::TooDeep {
                position: position_at(self.chars, at),
                max: MAX_DEPTH,
            });
        }
        Ok(())
    }

    fn operator(&mut self, at: usize) -> Result<(), CompileError> {
        self.top().term += 1;
        self.check_bound(at)
    }

    fn scan(&mut self) -> Result<(), CompileError> {
        while let Some(c) = self.peek(0) {
            let start = self.at;
            match c {
                '/' if self.peek(1) == Some('/') => {
                    while self.peek(0).is_some_and(|c| c != '\n') {
                        self.at += 1;
                    }
                    continue;
                }
                '\'' | '"' => {
                    self.string(false)?;
                    continue;
                }
                c if c.is_alphanumeric() || c == '_' => {
                    let ident_start = self.at;
                    while self
                        .peek(0)
                        .is_some_and(|c| c.is_alphanumeric() || c == '_')
                    {
                        self.at += 1;
                    }
                    let ident: String = self.chars[ident_start..self.at].iter().collect();
                    if matches!(self.peek(0), Some('\'' | '"')) && is_string_prefix(&ident) {
                        self.string(ident.contains(['r', 'R']))?;
                    } else if ident == "in" {
                        self.operator(start)?;
                    }
                    continue;
                }
                '(' | '[' | '{' => {
                    // The group nests the expression before it (an index, a
                    // call), as well as what it holds.
                    self.operator(start)?;
                    self.levels.push(Level::default());
                    self.check_bound(start)?;
                }
                ')' | ']' | '}' if self.levels.len() > 1 => {
                    let closed = self.levels.pop().unwrap_or_default();
                    let depth = closed.previous.max(closed.current(0));
                    let top = self.top();
                    top.closed = top.closed.max(depth);
                }
                ',' => {
                    let top = self.top();
                    let depth = top.previous.max(top.current(0));
                    *top = Level {
                        previous: depth,
                        ..Level::default()
                    };
                }
                '&' | '|' if self.peek(1) == Some(c) => {
                    self.at += 1;
                    let top = self.top();
                    top.logical += 1;
                    top.end_term();
                    self.check_bound(start)?;
                }
                '?' => {
                    let top = self.top();
                    top.ternaries += 1;
                    top.end_term();
                    self.check_bound(start)?;
                }
                ':' => self.top().end_term(),
                '.' | '!' | '-' | '+' | '*' | '/' | '%' | '<' | '>' | '=' => {
                    self.operator(start)?;
                }
                _ => {}
            }
            self.at += 1;
        }
        Ok(())
    }

    /// Skips a string literal, the scanner at its opening quote.
    fn string(&mut self, raw: bool) -> Result<(), CompileError> {
        let start = self.at;
        let Some(quote) = self.peek(0) else {
            return Ok(());
        };
        let triple = self.peek(1) == Some(quote) && self.peek(2) == Some(quote);
        self.at += if triple { 3 } else { 1 };
        loop {
            let Some(c) = self.peek(0) else {
                return Err(syntax(self.chars, start, "unterminated string literal"));
            };
            if c == quote
                && (!triple || (self.peek(1) == Some(quote) && self.peek(2) == Some(quote)))
            {
                self.at += if triple { 3 } else { 1 };
                return Ok(());
            }
            if !triple && (c == '\n' || c == '\r') {
                return Err(syntax(self.chars, start, "unterminated string literal"));
            }
            if c == '\\' && !raw {
                let length = escape_length(&self.chars[self.at + 1..])
                    .ok_or_else(|| syntax(self.chars, self.at, "invalid escape sequence"))?;
                self.at += 1 + length;
            } else {
                self.at += 1;
            }
        }
    }
}

/// Whether an identifier directly before a quote makes it a raw or bytes
/// literal rather than naming something (`r'..'`, `b'..'`, `br'..'`).
fn is_string_prefix(ident: &str) -> bool {
    matches!(ident, "r" | "R" | "b" | "B" | "br" | "bR" | "Br" | "BR")
}

/// The length of the escape sequence after a backslash, as CEL's lexer
/// accepts it, or `None` if it accepts none.
fn escape_length(rest: &[char]) -> Option<usize> {
    let is_hex = |n: usize| rest.len() > n && rest[1..=n].iter().all(char::is_ascii_hexdigit);
    match rest.first()? {
        'a' | 'b' | 'f' | 'n' | 'r' | 't' | 'v' | '"' | '\'' | '\\' | '?' | '`' => Some(1),
        'x' | 'X' if is_hex(2) => Some(3),
        'u' if is_hex(4) => Some(5),
        'U' if is_hex(8) => Some(9),
        '0'..='3' if rest.len() > 2 && rest[1..=2].iter().all(|c| matches!(c, '0'..='7')) => {
            Some(3)
        }
        _ => None,
    }
}

fn syntax(chars: &[char], at: usize, message: &str) -> CompileError {
    CompileError::Syntax {
        position: position_at(chars, at),
        message: message.to_owned(),
    }
}

/// The line and column of the character at index `at`.
pub(crate) fn position_at(chars: &[char], at: usize) -> Position {
    let before = &chars[..at.min(chars.len())];
    let line = 1 + before.iter().filter(|&&c| c == '\n').count();
    let column = 1 + before.iter().rev().take_while(|&&c| c != '\n').count();
    Position { line, column }
}

/// A node deeper than `max` in an expression tree, if there is one, found
/// without recursion.
pub(crate) fn deepest_beyond(expr: &IdedExpr, max: usize) -> Option<u64> {
    let mut pending = vec![(expr, 1)];
    while let Some((expr, depth)) = pending.pop() {
        if depth > max {
            return Some(expr.id);
        }
        pending.extend(children(expr).into_iter().map(|child| (child, depth + 1)));
    }
    None
}

/// The direct subexpressions of `expr`.
fn children(expr: &IdedExpr) -> Vec<&IdedExpr> {
    match &expr.expr {
        Expr::Call(call) => call
            .target
            .as_deref()
            .into_iter()
            .chain(&call.args)
            .collect(),
        Expr::Comprehension(c) => {
            vec![
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ]
        }
        Expr::List(list) => list.elements.iter().collect(),
        Expr::Map(map) => entry_children(&map.entries),
        Expr::Struct(construction) => entry_children(&construction.entries),
        Expr::Select(select) => vec![&select.operand],
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => Vec::new(),
    }
}

fn entry_children(entries: &[IdedEntryExpr]) -> Vec<&IdedExpr> {
    entries
        .iter()
        .flat_map(|entry| match &entry.expr {
            EntryExpr::MapEntry(entry) => vec![&entry.key, &entry.value],
            EntryExpr::StructField(field) => vec![&field.value],
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn too_deep(source: &str) -> bool {
        matches!(check_source(source), Err(CompileError::TooDeep { .. }))
    }

    #[test]
    fn accepts_ordinary_expressions() {
        for source in [
            "res.metadata.name == 'x' && req.image.source.split(':').last().value().startsWith('v')",
            "has(res.metadata.annotations) && res.metadata.annotations['a/b'] in ['x', 'y', 'z']",
            // Long flat lists and long && chains stay shallow.
            &format!("[{}]", vec!["1 + 1"; 500].join(", ")),
            &vec!["req.a == 'b'"; 500].join(" && "),
            // Brackets in strings and comments don't count.
            &format!("'{}' == req.a // {}", "(".repeat(1000), "[".repeat(1000)),
            &format!("r'{}' == req.a", "\\(".repeat(1000)),
            &format!("'''{}\n''' == req.a", ".".repeat(1000)),
        ] {
            assert_eq!(check_source(source), Ok(()), "{source}");
        }
    }

    #[test]
    fn rejects_deep_nesting_of_every_kind() {
        for source in [
            format!("{}1{}", "(".repeat(100), ")".repeat(100)),
            format!("{}1", "[".repeat(100)),
            vec!["1"; 100].join(" + "),
            format!("a{}", ".b".repeat(100)),
            format!("a{}", "[0]".repeat(100)),
            format!("a{}", ".f()".repeat(100)),
            format!("{}1", "true ? 1 : ".repeat(100)),
            format!("{}[1]", "1 in ".repeat(100)),
        ] {
            assert!(too_deep(&source), "{source}");
        }
    }

    #[test]
    fn rejects_strings_the_lexer_would_not_read_whole() {
        for (source, message) in [
            ("'abc", "unterminated string literal"),
            ("'a\nb'", "unterminated string literal"),
            ("'''abc''", "unterminated string literal"),
            ("'\\q((('", "invalid escape sequence"),
            ("'\\x1'", "invalid escape sequence"),
        ] {
            assert!(
                matches!(check_source(source), Err(CompileError::Syntax { message: ref m, .. }) if m == message),
                "{source}"
            );
        }
        assert_eq!(check_source("'\\x41\\u00e9\\101\\n' + b'\\xff'"), Ok(()));
    }

    #[test]
    fn rejects_overlong_expressions() {
        let source = "1".repeat(MAX_SOURCE_CHARS + 1);
        assert_eq!(
            check_source(&source),
            Err(CompileError::TooLong {
                length: MAX_SOURCE_CHARS + 1,
                max: MAX_SOURCE_CHARS
            })
        );
    }

    #[test]
    fn positions_count_lines_and_characters() {
        let chars: Vec<char> = "é\nab".chars().collect();
        assert_eq!(position_at(&chars, 0), Position { line: 1, column: 1 });
        assert_eq!(position_at(&chars, 3), Position { line: 2, column: 2 });
    }
}
