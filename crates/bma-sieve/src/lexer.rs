//! The lexer: RFC 5228 §8.1's tokens from the script's text.
//!
//! Rules: white space is SP, HTAB, CR and LF (a bare LF ends a line as
//! CRLF does, since scripts written on Unix have them); `#` comments run
//! to the end of the line, `/* … */` comments do not nest; an identifier
//! is `(ALPHA / "_") *(ALPHA / DIGIT / "_")`, a tag is `:` and an
//! identifier; a number is digits and an optional `K`/`M`/`G` (either
//! case), checked for overflow; a quoted string unescapes `\x` to `x` for
//! every `x` (§2.4.2: an undefined escape reads as if the backslash were
//! not there); `text:` (either case) starts a multi-line string: blanks,
//! then a comment or the line end, then lines up to one holding only `.`,
//! a leading `.` of any other line removed (dot-stuffing). Every token
//! keeps the byte range it was read from, so that the parser can report
//! lines and the strip transform can cut the source.

use std::ops::Range;

use crate::error::ErrorKind;

/// One token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A command or test name, as written.
    Identifier(String),
    /// `:name`, without the colon, as written.
    Tag(String),
    /// A number with its quantifier applied.
    Number(u64),
    /// A quoted or multi-line string, unescaped.
    String {
        /// The value.
        value: String,
        /// Whether it was a `text:` string.
        multiline: bool,
    },
    /// `[`
    LeftBracket,
    /// `]`
    RightBracket,
    /// `(`
    LeftParen,
    /// `)`
    RightParen,
    /// `{`
    LeftBrace,
    /// `}`
    RightBrace,
    /// `,`
    Comma,
    /// `;`
    Semicolon,
}

impl Token {
    /// How an error message names this token.
    pub fn describe(&self) -> String {
        match self {
            Token::Identifier(s) => format!("identifier {s:?}"),
            Token::Tag(s) => format!("tag :{s}"),
            Token::Number(n) => format!("number {n}"),
            Token::String { .. } => "a string".to_owned(),
            Token::LeftBracket => "\"[\"".to_owned(),
            Token::RightBracket => "\"]\"".to_owned(),
            Token::LeftParen => "\"(\"".to_owned(),
            Token::RightParen => "\")\"".to_owned(),
            Token::LeftBrace => "\"{\"".to_owned(),
            Token::RightBrace => "\"}\"".to_owned(),
            Token::Comma => "\",\"".to_owned(),
            Token::Semicolon => "\";\"".to_owned(),
        }
    }
}

/// A token and the bytes it was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned {
    /// The token.
    pub token: Token,
    /// Its bytes in the source.
    pub span: Range<usize>,
}

/// The tokens of `source`, or the first lexical error and its byte offset.
pub fn tokenize(source: &str) -> Result<Vec<Spanned>, (ErrorKind, usize)> {
    let bytes = source.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let single = match b {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'#' => {
                i = line_end(bytes, i);
                continue;
            }
            b'/' if bytes.get(i + 1) == Some(&b'*') => {
                match find(bytes, i + 2, b"*/") {
                    Some(end) => i = end + 2,
                    None => return Err((ErrorKind::UnterminatedComment, start)),
                }
                continue;
            }
            b'[' => Some(Token::LeftBracket),
            b']' => Some(Token::RightBracket),
            b'(' => Some(Token::LeftParen),
            b')' => Some(Token::RightParen),
            b'{' => Some(Token::LeftBrace),
            b'}' => Some(Token::RightBrace),
            b',' => Some(Token::Comma),
            b';' => Some(Token::Semicolon),
            _ => None,
        };
        if let Some(token) = single {
            i += 1;
            out.push(Spanned { token, span: start..i });
            continue;
        }
        let token = match b {
            b'"' => {
                let (value, end) = quoted(source, i)?;
                i = end;
                Token::String { value, multiline: false }
            }
            b':' => {
                let end = identifier_end(bytes, i + 1);
                if end == i + 1 {
                    return Err((ErrorKind::UnexpectedCharacter(':'), start));
                }
                i = end;
                Token::Tag(source[start + 1..end].to_owned())
            }
            b'0'..=b'9' => {
                let (n, end) = number(bytes, i)?;
                i = end;
                Token::Number(n)
            }
            b if b.is_ascii_alphabetic() || b == b'_' => {
                let end = identifier_end(bytes, i);
                let word = &source[start..end];
                if word.eq_ignore_ascii_case("text") && bytes.get(end) == Some(&b':') {
                    let (value, after) = multiline(source, end + 1)?;
                    i = after;
                    Token::String { value, multiline: true }
                } else {
                    i = end;
                    Token::Identifier(word.to_owned())
                }
            }
            _ => {
                let c = source[i..].chars().next().unwrap_or('\u{fffd}');
                return Err((ErrorKind::UnexpectedCharacter(c), start));
            }
        };
        out.push(Spanned { token, span: start..i });
    }
    Ok(out)
}

/// The offset of the line end (the LF, or the input's end) from `i`.
fn line_end(bytes: &[u8], i: usize) -> usize {
    bytes[i..].iter().position(|&b| b == b'\n').map_or(bytes.len(), |p| i + p)
}

fn find(bytes: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    bytes.get(from..)?.windows(needle.len()).position(|w| w == needle).map(|p| from + p)
}

fn identifier_end(bytes: &[u8], mut i: usize) -> usize {
    if i < bytes.len() && (bytes[i].is_ascii_alphabetic() || bytes[i] == b'_') {
        while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
            i += 1;
        }
    }
    i
}

fn number(bytes: &[u8], start: usize) -> Result<(u64, usize), (ErrorKind, usize)> {
    let mut i = start;
    let mut n: u64 = 0;
    while i < bytes.len() && bytes[i].is_ascii_digit() {
        n = n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(bytes[i] - b'0')))
            .ok_or((ErrorKind::NumberTooLarge, start))?;
        i += 1;
    }
    let shift = match bytes.get(i) {
        Some(b'K' | b'k') => 10,
        Some(b'M' | b'm') => 20,
        Some(b'G' | b'g') => 30,
        _ => 0,
    };
    if shift > 0 {
        i += 1;
        n = n.checked_mul(1 << shift).ok_or((ErrorKind::NumberTooLarge, start))?;
    }
    Ok((n, i))
}

/// A quoted string starting at the `"` at `start`: its value and the
/// offset after the closing quote.
fn quoted(source: &str, start: usize) -> Result<(String, usize), (ErrorKind, usize)> {
    let mut value = String::new();
    let mut chars = source[start + 1..].char_indices();
    while let Some((k, c)) = chars.next() {
        match c {
            '"' => return Ok((value, start + 1 + k + 1)),
            '\\' => match chars.next() {
                Some((_, e)) => value.push(e),
                None => break,
            },
            c => value.push(c),
        }
    }
    Err((ErrorKind::UnterminatedString, start))
}

/// A multi-line string whose `text:` ends just before `from`: its value
/// and the offset after its final `.` line.
fn multiline(source: &str, from: usize) -> Result<(String, usize), (ErrorKind, usize)> {
    let bytes = source.as_bytes();
    let text_start = from.saturating_sub("text:".len());
    let mut i = from;
    while i < bytes.len() && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    match bytes.get(i) {
        Some(b'#') | Some(b'\n') => i = line_end(bytes, i) + 1,
        Some(b'\r') if bytes.get(i + 1) == Some(&b'\n') => i += 2,
        None => return Err((ErrorKind::UnterminatedMultiline, text_start)),
        Some(_) => return Err((ErrorKind::MultilineStart, i)),
    }
    let mut value = String::new();
    while i < bytes.len() {
        let end = line_end(bytes, i);
        let next = (end + 1).min(bytes.len());
        let line = &source[i..end];
        let content = line.strip_suffix('\r').unwrap_or(line);
        if content == "." {
            return Ok((value, next));
        }
        let with_ending = &source[i..next];
        value.push_str(with_ending.strip_prefix('.').unwrap_or(with_ending));
        i = next;
    }
    Err((ErrorKind::UnterminatedMultiline, text_start))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(source: &str) -> Vec<Token> {
        tokenize(source).expect("lexes").into_iter().map(|s| s.token).collect()
    }

    fn s(v: &str) -> Token {
        Token::String { value: v.to_owned(), multiline: false }
    }

    #[test]
    fn tokens_of_the_grammar() {
        let table: &[(&str, Vec<Token>)] = &[
            ("keep;", vec![Token::Identifier("keep".into()), Token::Semicolon]),
            ("# c\r\nstop ; # end", vec![Token::Identifier("stop".into()), Token::Semicolon]),
            ("/* a\n * b */ :Copy", vec![Token::Tag("Copy".into())]),
            (
                "10 1K 2m 3G 0",
                vec![
                    Token::Number(10),
                    Token::Number(1024),
                    Token::Number(2 << 20),
                    Token::Number(3 << 30),
                    Token::Number(0),
                ],
            ),
            (r#""a\"b\\c\d""#, vec![s("a\"b\\cd")]),
            ("\"two\nlines\"", vec![s("two\nlines")]),
            ("[\"a\",\"b\"]", vec![Token::LeftBracket, s("a"), Token::Comma, s("b"), Token::RightBracket]),
            ("(){}", vec![Token::LeftParen, Token::RightParen, Token::LeftBrace, Token::RightBrace]),
            ("_x9", vec![Token::Identifier("_x9".into())]),
            (
                "text:\r\nHello\r\n..dot\r\n.\r\n;",
                vec![Token::String { value: "Hello\r\n.dot\r\n".into(), multiline: true }, Token::Semicolon],
            ),
            ("TEXT: # comment\nline\n.", vec![Token::String { value: "line\n".into(), multiline: true }]),
            ("text:\n.\n", vec![Token::String { value: String::new(), multiline: true }]),
        ];
        for (source, want) in table {
            assert_eq!(&tokens(source), want, "{source:?}");
        }
    }

    #[test]
    fn lexical_errors_and_where() {
        let table: &[(&str, ErrorKind, usize)] = &[
            ("keep; \"open", ErrorKind::UnterminatedString, 6),
            ("/* never", ErrorKind::UnterminatedComment, 0),
            ("x text:\nno end\n", ErrorKind::UnterminatedMultiline, 2),
            ("text: junk\n.\n", ErrorKind::MultilineStart, 6),
            ("99999999999999999999", ErrorKind::NumberTooLarge, 0),
            ("17179869184G", ErrorKind::NumberTooLarge, 0),
            ("keep @", ErrorKind::UnexpectedCharacter('@'), 5),
            ("a : b", ErrorKind::UnexpectedCharacter(':'), 2),
            ("é", ErrorKind::UnexpectedCharacter('é'), 0),
            ("\"end\\", ErrorKind::UnterminatedString, 0),
        ];
        for (source, kind, offset) in table {
            assert_eq!(tokenize(source), Err((kind.clone(), *offset)), "{source:?}");
        }
    }
}
