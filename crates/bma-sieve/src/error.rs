//! The errors of reading a script: what was wrong and where.
//!
//! Rules: every error carries the byte offset it was found at and the
//! line and column (both from 1, the column counted in characters) of
//! that offset; an offset is never past the end of the input (the end
//! itself is where "the script stops too early" is reported). The kinds
//! are a closed set so that a caller can tell a truncated script from a
//! misspelt one without reading messages.

use std::fmt;

/// Where in the script: a byte offset and its line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Position {
    /// Byte offset from the start of the input.
    pub offset: usize,
    /// Line, from 1.
    pub line: u32,
    /// Column in characters, from 1.
    pub column: u32,
}

impl Position {
    /// The position of byte `offset` of `source` (clamped to its end and
    /// to the start of the character it falls in).
    pub fn at(source: &str, offset: usize) -> Position {
        let mut offset = offset.min(source.len());
        while !source.is_char_boundary(offset) {
            offset -= 1;
        }
        let before = &source[..offset];
        let line = before.bytes().filter(|&b| b == b'\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        Position { offset, line: saturate(line), column: saturate(column) }
    }
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// A script that cannot be read, and where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{script}: {position}: {kind}")]
pub struct ReadError {
    /// The script's name, as the caller gave it.
    pub script: String,
    /// Where the problem was found.
    pub position: Position,
    /// What it is.
    pub kind: ErrorKind,
}

/// What made a script unreadable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    /// The bytes are not UTF-8 (RFC 5228 §2.1 scripts are UTF-8).
    #[error("the script is not valid UTF-8")]
    NotUtf8,
    /// A character no token starts with.
    #[error("unexpected character {0:?}")]
    UnexpectedCharacter(char),
    /// A quoted string with no closing quote.
    #[error("a quoted string is not closed")]
    UnterminatedString,
    /// A `/* … */` comment with no end.
    #[error("a bracket comment is not closed")]
    UnterminatedComment,
    /// A `text:` string with no line holding only `.`.
    #[error("a multi-line string (text:) has no final \".\" line")]
    UnterminatedMultiline,
    /// Something other than a comment or a line end after `text:`.
    #[error("text: must be followed by the end of the line")]
    MultilineStart,
    /// A number that does not fit 64 bits once its K/M/G is applied.
    #[error("number too large")]
    NumberTooLarge,
    /// A token where another was expected.
    #[error("expected {expected}, found {found}")]
    Unexpected {
        /// What the grammar wanted here.
        expected: &'static str,
        /// What was there, described.
        found: String,
    },
    /// The script stops in the middle of a command.
    #[error("the script ends too early: expected {0}")]
    UnexpectedEnd(&'static str),
    /// Blocks or tests nested deeper than [`crate::MAX_NESTING`].
    #[error("nested deeper than {} levels", crate::MAX_NESTING)]
    TooDeep,
    /// `elsif` or `else` not right after an `if` or `elsif`.
    #[error("{0} without an if before it")]
    OrphanElse(&'static str),
    /// `require` after another command (RFC 5228 §3.2).
    #[error("require must come before every other command")]
    LateRequire,
    /// A command or test whose arguments are not the ones it takes.
    #[error("{name}: {problem}")]
    BadArguments {
        /// The command or test.
        name: String,
        /// What is wrong with its arguments.
        problem: &'static str,
    },
    /// An action (which takes no block) with a block, or `if` without one.
    #[error("{name}: {problem}")]
    BadBlock {
        /// The command.
        name: String,
        /// What is wrong.
        problem: &'static str,
    },
    /// An encoded character (RFC 5228 §2.4.2.4) outside Unicode's scalar
    /// values, or hex octets that are not UTF-8.
    #[error("encoded character: {0}")]
    BadEncodedCharacter(&'static str),
}
