//! Versions and constraints as Flux reads a GitRepository's `spec.ref.semver`:
//! Masterminds/semver v3 (`NewVersion` for each tag, `NewConstraint` for the
//! range; `version.go` and `constraints.go` of github.com/Masterminds/semver).
//!
//! The `semver` crate is not used: it reads Cargo's syntax, which has none of
//! Masterminds' `v` prefix, partial versions (`1.2`), `||`, hyphen ranges
//! (`1.2 - 1.4`), `x`/`*` wildcards in any position or space-separated ANDs,
//! and its comparators treat partial versions and pre-releases differently.

use std::cmp::Ordering;
use std::fmt;

/// A version as Masterminds' `NewVersion` reads a tag: an optional `v`,
/// one to three numbers (missing ones are 0), an optional pre-release and
/// build metadata (ignored when comparing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Version {
    major: u64,
    minor: u64,
    patch: u64,
    pre: String,
}

impl Version {
    /// Parses a tag name; `None` when Masterminds would not read it as a version.
    pub fn parse(text: &str) -> Option<Version> {
        let text = text.strip_prefix('v').unwrap_or(text);
        let (text, _build) = match text.split_once('+') {
            Some((version, build)) => (version, Some(valid_identifiers(build)?)),
            None => (text, None),
        };
        let (numbers, pre) = match text.split_once('-') {
            Some((numbers, pre)) => (numbers, valid_prerelease(pre)?),
            None => (text, ""),
        };
        let mut parts = numbers.split('.');
        let major = number(parts.next()?)?;
        let minor = parts.next().map_or(Some(0), number)?;
        let patch = parts.next().map_or(Some(0), number)?;
        if parts.next().is_some() {
            return None;
        }
        Some(Version {
            major,
            minor,
            patch,
            pre: pre.to_owned(),
        })
    }

    fn compare(&self, other: &Version) -> Ordering {
        (self.major, self.minor, self.patch)
            .cmp(&(other.major, other.minor, other.patch))
            .then_with(|| compare_prerelease(&self.pre, &other.pre))
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)?;
        if !self.pre.is_empty() {
            write!(f, "-{}", self.pre)?;
        }
        Ok(())
    }
}

fn number(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// Dot-separated identifiers of `[0-9A-Za-z-]`, none empty.
fn valid_identifiers(text: &str) -> Option<&str> {
    let ok = text.split('.').all(|part| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    ok.then_some(text)
}

/// A pre-release: identifiers, numeric ones without leading zeros
/// (Masterminds' `validatePrerelease`).
fn valid_prerelease(text: &str) -> Option<&str> {
    valid_identifiers(text)?;
    let leading_zero = text.split('.').any(|part| {
        part.len() > 1 && part.starts_with('0') && part.bytes().all(|b| b.is_ascii_digit())
    });
    (!leading_zero).then_some(text)
}

/// SemVer 2.0's pre-release order, as Masterminds' `comparePrerelease`: a
/// release comes after its pre-releases; identifiers compare numerically
/// when both are numbers, numbers before text, else as text; a longer list
/// after its prefix.
fn compare_prerelease(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Greater,
        (false, true) => return Ordering::Less,
        (false, false) => {}
    }
    let (mut a, mut b) = (a.split('.'), b.split('.'));
    loop {
        match (a.next(), b.next()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) => {
                let order = match (number(x), number(y)) {
                    (Some(x), Some(y)) => x.cmp(&y),
                    (Some(_), None) => Ordering::Less,
                    (None, Some(_)) => Ordering::Greater,
                    (None, None) => x.cmp(y),
                };
                if order != Ordering::Equal {
                    return order;
                }
            }
        }
    }
}

/// Why a range is not one Masterminds reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConstraintError(String);

impl fmt::Display for ConstraintError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "improper constraint: {}", self.0)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    TildeOrEqual,
    NotEqual,
    Greater,
    Less,
    GreaterEqual,
    LessEqual,
    Tilde,
    Caret,
}

/// One comparison, with Masterminds' "dirty" flags for wildcards and
/// missing parts (`1.x`, `1`, `1.2.*`).
#[derive(Debug, Clone)]
struct Comparison {
    op: Op,
    version: Version,
    dirty: bool,
    minor_dirty: bool,
    patch_dirty: bool,
}

/// A range: `||`-separated groups of comparisons that must all hold.
#[derive(Debug, Clone)]
pub struct Constraints {
    any_of: Vec<Vec<Comparison>>,
}

impl Constraints {
    /// Parses a range as Masterminds' `NewConstraint` does: hyphen ranges
    /// `A - B` become `>= A, <= B`; `||` separates alternatives; within
    /// one, comparisons are separated by commas or spaces; operators `=`,
    /// `!=`, `>`, `<`, `>=`, `=>`, `<=`, `=<`, `~`, `~>`, `^` or none;
    /// versions with an optional `v`, parts `x`, `X` or `*`.
    pub fn parse(range: &str) -> Result<Constraints, ConstraintError> {
        let rewritten = rewrite_hyphen_ranges(range);
        let any_of = rewritten
            .split("||")
            .map(parse_group)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Constraints { any_of })
    }

    /// Whether `version` satisfies one of the alternatives.
    pub fn check(&self, version: &Version) -> bool {
        self.any_of
            .iter()
            .any(|group| group.iter().all(|comparison| comparison.check(version)))
    }
}

/// `A - B` (spaces around the dash) to `>= A, <= B`.
fn rewrite_hyphen_ranges(range: &str) -> String {
    let tokens: Vec<&str> = range.split_whitespace().collect();
    if !tokens.contains(&"-") {
        return range.to_owned();
    }
    let mut out: Vec<String> = Vec::with_capacity(tokens.len());
    let mut i = 0;
    while i < tokens.len() {
        let is_range = i + 2 < tokens.len()
            && tokens[i + 1] == "-"
            && is_plain_version(tokens[i])
            && is_plain_version(tokens[i + 2]);
        if is_range {
            out.push(format!(">= {}, <= {}", tokens[i], tokens[i + 2]));
            i += 3;
        } else {
            out.push(tokens[i].to_owned());
            i += 1;
        }
    }
    out.join(" ")
}

/// A version token without an operator (wildcards allowed).
fn is_plain_version(token: &str) -> bool {
    split_version(token).is_some_and(|rest| rest.is_empty())
}

fn parse_group(group: &str) -> Result<Vec<Comparison>, ConstraintError> {
    let improper = || ConstraintError(group.to_owned());
    let mut comparisons = Vec::new();
    let mut rest = group.trim_start();
    loop {
        let (op, after_op) = operator(rest);
        let after_op = after_op.trim_start();
        let (version, after) = match split_version(after_op) {
            Some(remaining) => (&after_op[..after_op.len() - remaining.len()], remaining),
            None => return Err(improper()),
        };
        comparisons.push(comparison(op, version).ok_or_else(improper)?);
        // Then the end, or a separator (spaces, or a comma and spaces) and
        // another comparison.
        let trimmed = after.trim_start();
        let separated = trimmed.len() < after.len();
        let (trimmed, comma) = match trimmed.strip_prefix(',') {
            Some(after_comma) => (after_comma.trim_start(), true),
            None => (trimmed, false),
        };
        if trimmed.is_empty() && !comma {
            return Ok(comparisons);
        }
        if trimmed.is_empty() || !(separated || comma) {
            return Err(improper());
        }
        rest = trimmed;
    }
}

fn operator(text: &str) -> (Op, &str) {
    const OPS: [(&str, Op); 11] = [
        ("!=", Op::NotEqual),
        (">=", Op::GreaterEqual),
        ("=>", Op::GreaterEqual),
        ("<=", Op::LessEqual),
        ("=<", Op::LessEqual),
        ("~>", Op::Tilde),
        ("=", Op::TildeOrEqual),
        (">", Op::Greater),
        ("<", Op::Less),
        ("~", Op::Tilde),
        ("^", Op::Caret),
    ];
    for (token, op) in OPS {
        if let Some(rest) = text.strip_prefix(token) {
            return (op, rest);
        }
    }
    (Op::TildeOrEqual, text)
}

/// The text after a constraint version at the start of `text`
/// (`v?` parts of digits or one `x`/`X`/`*`, `-pre`, `+build`), or `None`
/// when none starts there.
fn split_version(text: &str) -> Option<&str> {
    let mut rest = text.strip_prefix('v').unwrap_or(text);
    for index in 0..3 {
        if index > 0 {
            match rest.strip_prefix('.') {
                Some(after) if starts_part(after) => rest = after,
                _ => break,
            }
        }
        rest = part(rest)?;
    }
    for marker in ['-', '+'] {
        if let Some(after) = rest.strip_prefix(marker) {
            let end = after
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '.'))
                .unwrap_or(after.len());
            if end == 0 {
                return None;
            }
            rest = &after[end..];
        }
    }
    Some(rest)
}

fn starts_part(text: &str) -> bool {
    text.starts_with(|c: char| c.is_ascii_digit() || matches!(c, 'x' | 'X' | '*'))
}

/// Digits, or one wildcard character, at the start of `text`.
fn part(text: &str) -> Option<&str> {
    if let Some(rest) = text.strip_prefix(['x', 'X', '*']) {
        return Some(rest);
    }
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    (end > 0).then(|| &text[end..])
}

fn is_wildcard(part: &str) -> bool {
    matches!(part, "x" | "X" | "*")
}

/// Masterminds' `parseConstraint`: a wildcard or missing part makes the
/// comparison "dirty" at that level, and the version is completed with zeros.
fn comparison(op: Op, text: &str) -> Option<Comparison> {
    let bare = text.strip_prefix('v').unwrap_or(text);
    let core_end = bare.find(['-', '+']).unwrap_or(bare.len());
    let (core, suffix) = bare.split_at(core_end);
    let pre = suffix
        .strip_prefix('-')
        .map(|p| p.split('+').next().unwrap_or_default())
        .unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let major = parts.first().copied().unwrap_or_default();
    let minor = parts.get(1).copied();
    let patch = parts.get(2).copied();
    let with_pre = |numbers: String| {
        if pre.is_empty() {
            numbers
        } else {
            format!("{numbers}-{pre}")
        }
    };
    let (version, dirty, minor_dirty, patch_dirty) = if is_wildcard(major) {
        (with_pre("0.0.0".to_owned()), true, false, false)
    } else if minor.is_none_or(is_wildcard) {
        (with_pre(format!("{major}.0.0")), true, true, false)
    } else if patch.is_none_or(is_wildcard) {
        (
            with_pre(format!("{major}.{}.0", minor.unwrap_or("0"))),
            true,
            false,
            true,
        )
    } else {
        (bare.to_owned(), false, false, false)
    };
    Some(Comparison {
        op,
        version: Version::parse(&version)?,
        dirty,
        minor_dirty,
        patch_dirty,
    })
}

impl Comparison {
    /// Masterminds' constraint functions; a pre-release satisfies only a
    /// comparison whose version has a pre-release (its "issue 21").
    fn check(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.op != Op::NotEqual && !v.pre.is_empty() && c.pre.is_empty() {
            return false;
        }
        match self.op {
            Op::NotEqual => self.not_equal(v),
            Op::Greater => self.greater(v),
            Op::Less => v.compare(c) == Ordering::Less,
            Op::GreaterEqual => v.compare(c) != Ordering::Less,
            Op::LessEqual => self.less_equal(v),
            Op::Tilde => self.tilde(v),
            Op::TildeOrEqual if self.dirty => self.tilde(v),
            Op::TildeOrEqual => v.compare(c) == Ordering::Equal,
            Op::Caret => self.caret(v),
        }
    }

    fn not_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if self.dirty {
            if !v.pre.is_empty() && c.pre.is_empty() {
                return false;
            }
            if c.major != v.major {
                return true;
            }
            if c.minor != v.minor && !self.minor_dirty {
                return true;
            } else if self.minor_dirty {
                return false;
            } else if c.patch != v.patch && !self.patch_dirty {
                return true;
            } else if self.patch_dirty {
                if !v.pre.is_empty() || !c.pre.is_empty() {
                    return compare_prerelease(&v.pre, &c.pre) != Ordering::Equal;
                }
                return false;
            }
        }
        v.compare(c) != Ordering::Equal
    }

    fn greater(&self, v: &Version) -> bool {
        let c = &self.version;
        if !self.dirty {
            return v.compare(c) == Ordering::Greater;
        }
        if v.major != c.major {
            return v.major > c.major;
        }
        if self.minor_dirty {
            return false;
        }
        if self.patch_dirty {
            return v.minor > c.minor;
        }
        v.compare(c) == Ordering::Greater
    }

    fn less_equal(&self, v: &Version) -> bool {
        let c = &self.version;
        if !self.dirty {
            return v.compare(c) != Ordering::Greater;
        }
        if v.major > c.major {
            return false;
        }
        !(v.major == c.major && v.minor > c.minor && !self.minor_dirty)
    }

    fn tilde(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major == 0 && c.minor == 0 && c.patch == 0 && !self.minor_dirty && !self.patch_dirty {
            return true;
        }
        if v.major != c.major {
            return false;
        }
        v.minor == c.minor || self.minor_dirty
    }

    fn caret(&self, v: &Version) -> bool {
        let c = &self.version;
        if v.compare(c) == Ordering::Less {
            return false;
        }
        if c.major > 0 || self.minor_dirty {
            return v.major == c.major;
        }
        if v.major > 0 {
            return false;
        }
        if c.minor > 0 || self.patch_dirty {
            return v.minor == c.minor;
        }
        if v.minor > 0 {
            return false;
        }
        v.patch == c.patch
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn satisfies(range: &str, version: &str) -> bool {
        Constraints::parse(range)
            .unwrap()
            .check(&Version::parse(version).unwrap())
    }

    #[test]
    fn versions_read_as_masterminds_reads_tags() {
        for (tag, read) in [
            ("v1.2.3", "1.2.3"),
            ("1.2", "1.2.0"),
            ("v2", "2.0.0"),
            ("1.2.3-rc.1+build.5", "1.2.3-rc.1"),
            ("01.2.3", "1.2.3"),
        ] {
            assert_eq!(Version::parse(tag).unwrap().to_string(), read, "{tag}");
        }
        for tag in [
            "", "v", "1.2.3.4", "latest", "1.2.3-", "1.2.3-01", "1..2", "1.2.3+", "V1.2.3",
        ] {
            assert_eq!(Version::parse(tag), None, "{tag:?}");
        }
    }

    #[test]
    fn pre_releases_order_as_semver_says() {
        let order = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        for pair in order.windows(2) {
            let (a, b) = (
                Version::parse(pair[0]).unwrap(),
                Version::parse(pair[1]).unwrap(),
            );
            assert_eq!(a.compare(&b), Ordering::Less, "{} < {}", pair[0], pair[1]);
        }
    }

    /// Cases from Masterminds' documentation (README: "Checking Version
    /// Constraints", hyphen ranges, wildcards, tilde and caret).
    #[test]
    fn ranges_hold_as_masterminds_documents() {
        let cases = [
            (">= 1.2, < 3.0.0 || >= 4.2.3", "1.2.0", true),
            (">= 1.2, < 3.0.0 || >= 4.2.3", "3.1.0", false),
            (">= 1.2, < 3.0.0 || >= 4.2.3", "4.2.3", true),
            (">= 1.2 < 3.0.0", "2.9.9", true),
            ("1.2 - 1.4.5", "1.4.5", true),
            ("1.2 - 1.4.5", "1.4.6", false),
            ("1.2 - 1.4.5", "1.1.9", false),
            ("1.2.x", "1.2.9", true),
            ("1.2.x", "1.3.0", false),
            (">= 1.2.x", "1.2.0", true),
            ("*", "9.9.9", true),
            ("*", "1.0.0-rc.1", false),
            ("~1.2.3", "1.2.9", true),
            ("~1.2.3", "1.3.0", false),
            ("~1", "1.9.0", true),
            ("~1", "2.0.0", false),
            ("~>2.0", "2.0.5", true),
            ("^1.2.3", "1.9.9", true),
            ("^1.2.3", "2.0.0", false),
            ("^0.2.3", "0.2.9", true),
            ("^0.2.3", "0.3.0", false),
            ("^0.0.3", "0.0.4", false),
            ("^0", "0.9.0", true),
            ("^0", "1.0.0", false),
            ("1.2.3", "1.2.3", true),
            ("=v1.2.3", "1.2.3", true),
            ("!= 1.2.3", "1.2.4", true),
            ("!= 1.2.3", "1.2.3", false),
            ("!= 4.x", "4.1.0", false),
            ("> 11", "11.1.0", false),
            ("> 11", "12.0.0", true),
            ("> 11.1", "11.1.5", false),
            ("> 11.1", "11.2.0", true),
            ("<= 1.2.x", "1.2.9", true),
            ("<= 1.2.x", "1.3.0", false),
            ("< 2", "1.9.9", true),
            (">= 1.0.0-0", "1.0.0-rc.1", true),
            (">= 1.0.0", "1.0.1-rc.1", false),
            (">=1.0.0,<2.0.0", "1.5.0", true),
        ];
        for (range, version, holds) in cases {
            assert_eq!(satisfies(range, version), holds, "{version} in {range:?}");
        }
    }

    #[test]
    fn improper_ranges_are_errors() {
        for range in [
            "",
            "  ",
            ">=",
            "latest",
            ">= 1.0 <",
            "1.2.3,",
            ">=1.0<2.0",
            "1.x2",
            "||",
        ] {
            assert!(Constraints::parse(range).is_err(), "{range:?}");
        }
    }
}
