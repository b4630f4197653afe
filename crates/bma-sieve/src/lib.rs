//! `bma-sieve`: a reader of Sieve scripts (RFC 5228), to find every way a
//! mailbox's mail leaves it before the mailbox moves to a platform where
//! automatic forwarding outside the organisation is forbidden.
//!
//! It is a reader, not an interpreter: it parses a script whole (the base
//! grammar, any command or test read generically, encoded characters,
//! variables as far as they can be known without a message), lists its
//! actions with where they send mail ([`find`]: redirect, notify mailto,
//! pipe, execute, include, vacation, reject; fileinto, keep, discard as
//! actions that keep the message), and writes the script again without
//! its external forwarding ([`strip_external`]), every other byte kept.
//!
//! Rules: no I/O (the caller fetches scripts, and the scripts they
//! include, and uploads the result); no dependency on another crate of
//! ours; a script that cannot be read is a [`ReadError`] with its line and
//! column, never a panic and never skipped; only RFC text was read to
//! write it (RFC 5228, 5229, 5230, 5435, 3894, 6609 and the notify draft).
//! One module per subject: `lexer`, `parser` (and `encoded` for §2.4.2.4),
//! `ast`, `variables`, `findings`, `strip`, `error`.

mod ast;
mod encoded;
mod error;
mod findings;
mod lexer;
mod parser;
mod strip;
mod variables;

pub use ast::{Argument, Command, CommandKind, Script, SieveString, Split, StringList, Test, TestKind};
pub use error::{ErrorKind, Position, ReadError};
pub use findings::{Action, Domains, Finding, IncludeLocation, NotifySyntax, Reach, Report, Target, find};
pub use strip::{Change, Stripped, strip_external};
pub use variables::Assignment;

/// How deep blocks and tests may nest. Pigeonhole's default limit is 32
/// levels of blocks; past this depth a script is refused, so that no
/// input can exhaust the reader's stack.
pub const MAX_NESTING: usize = 64;

/// Parses `source`, a script named `script` (its name is in every error).
pub fn parse(script: &str, source: &str) -> Result<Script, ReadError> {
    parser::parse(script, source)
}

/// As [`parse`], for bytes as a server hands them over: bytes that are
/// not UTF-8 are an error at the first bad byte.
pub fn parse_bytes(script: &str, source: &[u8]) -> Result<Script, ReadError> {
    parse(script, utf8(script, source)?)
}

/// Parses `source` and finds its actions, judged against `domains`.
pub fn read(script: &str, source: &str, domains: &Domains) -> Result<Report, ReadError> {
    Ok(find(script, &parse(script, source)?, domains))
}

/// As [`read`], for bytes.
pub fn read_bytes(script: &str, source: &[u8], domains: &Domains) -> Result<Report, ReadError> {
    read(script, utf8(script, source)?, domains)
}

fn utf8<'a>(script: &str, source: &'a [u8]) -> Result<&'a str, ReadError> {
    std::str::from_utf8(source).map_err(|e| {
        let valid = &source[..e.valid_up_to()];
        let text = std::str::from_utf8(valid).unwrap_or_default();
        ReadError { script: script.to_owned(), position: Position::at(text, text.len()), kind: ErrorKind::NotUtf8 }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_utf8_is_placed() {
        let e = parse_bytes("s", b"keep;\n  \"\xff\";").expect_err("not UTF-8");
        assert_eq!(
            (e.kind.clone(), e.position.line, e.position.column, e.position.offset),
            (ErrorKind::NotUtf8, 2, 4, 9)
        );
        assert_eq!(e.to_string(), "s: line 2, column 4: the script is not valid UTF-8");
    }

    #[test]
    fn positions() {
        let table: &[(&str, usize, (u32, u32))] = &[
            ("", 0, (1, 1)),
            ("ab\ncd", 4, (2, 2)),
            ("é\nxé", 6, (2, 3)),
            ("é\nxé", 5, (2, 2)),
            ("é", 1, (1, 1)),
            ("a", 9, (1, 2)),
        ];
        for (text, offset, want) in table {
            let p = Position::at(text, *offset);
            assert_eq!((p.line, p.column), *want, "{text:?} {offset}");
        }
    }
}
