//! The ManageSieve response grammar (RFC 5804 §4), as pure functions over
//! bytes: no I/O, so that every read boundary can be tested.
//!
//! Rules: a response is one line of atoms, quoted strings and literals
//! (`{n}` or `{n+}`, CRLF, then exactly n bytes, which may hold CRLF and
//! anything else), ending with CRLF; [`parse_line`] says `None` while the
//! buffer holds less than a whole line, so the caller reads more and asks
//! again. A line longer than [`Limits::max_line`] (literal bytes not
//! counted) or a literal bigger than [`Limits::max_literal`] is an error
//! before it is read, never a buffer that grows without end. A final
//! response is `OK`, `NO` or `BYE`, an optional response code in
//! parentheses and an optional human text; the codes RFC 5804 names are a
//! closed set, any other is kept by name ([`ResponseCode::Other`]).

use std::fmt;

/// How much a response may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest line, literal bytes not counted.
    pub max_line: usize,
    /// Biggest literal (a script).
    pub max_literal: usize,
}

impl Default for Limits {
    /// 64 KiB lines, 4 MiB literals (Pigeonhole's default `sieve_max_script_size` is 1 MiB).
    fn default() -> Limits {
        Limits { max_line: 64 << 10, max_literal: 4 << 20 }
    }
}

/// One item of a response line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// A bare word (`OK`, `ACTIVE`, `NIL`…), as sent.
    Atom(String),
    /// A quoted string or a literal, unescaped.
    String(Vec<u8>),
    /// `(`.
    Open,
    /// `)`.
    Close,
}

impl Token {
    /// The text of an atom or a string (a string that is not UTF-8 lossily).
    pub fn text(&self) -> Option<String> {
        match self {
            Token::Atom(a) => Some(a.clone()),
            Token::String(s) => Some(String::from_utf8_lossy(s).into_owned()),
            Token::Open | Token::Close => None,
        }
    }
}

/// The response line grammar was broken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A line longer than the limit.
    #[error("response line longer than {0} bytes")]
    LineTooLong(usize),
    /// A literal bigger than the limit.
    #[error("literal of {size} bytes is over the limit of {limit}")]
    LiteralTooBig {
        /// Announced size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Anything else, with where.
    #[error("bad response at byte {at}: {what}")]
    Syntax {
        /// Offset in the line.
        at: usize,
        /// What was wrong.
        what: &'static str,
    },
}

fn syntax(at: usize, what: &'static str) -> ParseError {
    ParseError::Syntax { at, what }
}

/// Reads one whole line from the start of `buf`: its tokens and how many
/// bytes it took (CRLF included), or `None` if more bytes are needed.
pub fn parse_line(buf: &[u8], limits: &Limits) -> Result<Option<(Vec<Token>, usize)>, ParseError> {
    let mut tokens = Vec::new();
    let mut i = 0;
    // Bytes of literals read so far: they do not count against the line limit.
    let mut literal_bytes = 0usize;
    loop {
        if i - literal_bytes > limits.max_line {
            return Err(ParseError::LineTooLong(limits.max_line));
        }
        let Some(&b) = buf.get(i) else {
            return Ok(None);
        };
        match b {
            b' ' => i += 1,
            b'\r' => match buf.get(i + 1) {
                None => return Ok(None),
                Some(b'\n') => return Ok(Some((tokens, i + 2))),
                Some(_) => return Err(syntax(i, "CR without LF")),
            },
            b'\n' => return Err(syntax(i, "LF without CR")),
            b'(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            b')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            b'"' => {
                let mut value = Vec::new();
                let mut j = i + 1;
                loop {
                    match buf.get(j) {
                        None => {
                            if j - literal_bytes > limits.max_line {
                                return Err(ParseError::LineTooLong(limits.max_line));
                            }
                            return Ok(None);
                        }
                        Some(b'"') => break,
                        Some(b'\\') => match buf.get(j + 1) {
                            None => return Ok(None),
                            Some(&c @ (b'"' | b'\\')) => {
                                value.push(c);
                                j += 2;
                                continue;
                            }
                            Some(_) => return Err(syntax(j, "bad escape in a quoted string")),
                        },
                        Some(b'\r' | b'\n') => return Err(syntax(j, "line break in a quoted string")),
                        Some(&c) => value.push(c),
                    }
                    j += 1;
                }
                tokens.push(Token::String(value));
                i = j + 1;
            }
            b'{' => {
                let Some(close) = buf[i..].iter().position(|&c| c == b'}') else {
                    if buf.len() - i > 24 {
                        return Err(syntax(i, "unterminated literal length"));
                    }
                    return Ok(None);
                };
                let inner = &buf[i + 1..i + close];
                let digits = inner.strip_suffix(b"+").unwrap_or(inner);
                if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
                    return Err(syntax(i, "bad literal length"));
                }
                let size: usize = std::str::from_utf8(digits)
                    .ok()
                    .and_then(|d| d.parse().ok())
                    .ok_or_else(|| syntax(i, "bad literal length"))?;
                if size > limits.max_literal {
                    return Err(ParseError::LiteralTooBig { size, limit: limits.max_literal });
                }
                let after = i + close + 1;
                match (buf.get(after), buf.get(after + 1)) {
                    (None, _) | (Some(b'\r'), None) => return Ok(None),
                    (Some(b'\r'), Some(b'\n')) => {}
                    _ => return Err(syntax(after, "literal length not followed by CRLF")),
                }
                let start = after + 2;
                if buf.len() < start + size {
                    return Ok(None);
                }
                tokens.push(Token::String(buf[start..start + size].to_vec()));
                literal_bytes += size + 2;
                i = start + size;
            }
            c if is_atom_char(c) => {
                let start = i;
                while buf.get(i).copied().is_some_and(is_atom_char) {
                    i += 1;
                }
                if i == buf.len() {
                    // The atom may go on in the next read.
                    if i - literal_bytes > limits.max_line {
                        return Err(ParseError::LineTooLong(limits.max_line));
                    }
                    return Ok(None);
                }
                tokens.push(Token::Atom(String::from_utf8_lossy(&buf[start..i]).into_owned()));
            }
            _ => return Err(syntax(i, "unexpected byte")),
        }
    }
}

/// Atoms are tolerant: any visible ASCII byte but the ones that start or
/// end another token.
fn is_atom_char(c: u8) -> bool {
    c.is_ascii_graphic() && !matches!(c, b'(' | b')' | b'{' | b'"')
}

/// Final responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The command succeeded.
    Ok,
    /// The command failed; the connection stays.
    No,
    /// The server closes the connection.
    Bye,
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ok => "OK",
            Status::No => "NO",
            Status::Bye => "BYE",
        })
    }
}

/// Response codes (RFC 5804 §1.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseCode {
    /// The mechanism is too weak for this user.
    AuthTooWeak,
    /// The mechanism needs an encrypted connection.
    EncryptNeeded,
    /// Over a quota (`QUOTA`, `QUOTA/MAXSCRIPTS`, `QUOTA/MAXSIZE`).
    Quota(Option<String>),
    /// Go to another server.
    Referral(String),
    /// A SASL server message with the final response.
    Sasl(String),
    /// The password must change first.
    TransitionNeeded,
    /// A temporary failure: try later.
    TryLater,
    /// The script is active (DELETESCRIPT refused).
    Active,
    /// No such script.
    Nonexistent,
    /// The name is taken (RENAMESCRIPT).
    AlreadyExists,
    /// The tag of the command (with `OK`).
    Tag(String),
    /// The script is valid but has warnings.
    Warnings,
    /// Any other code, by name, with its arguments as text.
    Other(String, Vec<String>),
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseCode::AuthTooWeak => f.write_str("AUTH-TOO-WEAK"),
            ResponseCode::EncryptNeeded => f.write_str("ENCRYPT-NEEDED"),
            ResponseCode::Quota(None) => f.write_str("QUOTA"),
            ResponseCode::Quota(Some(s)) => write!(f, "QUOTA/{s}"),
            ResponseCode::Referral(url) => write!(f, "REFERRAL {url}"),
            ResponseCode::Sasl(s) => write!(f, "SASL {s}"),
            ResponseCode::TransitionNeeded => f.write_str("TRANSITION-NEEDED"),
            ResponseCode::TryLater => f.write_str("TRYLATER"),
            ResponseCode::Active => f.write_str("ACTIVE"),
            ResponseCode::Nonexistent => f.write_str("NONEXISTENT"),
            ResponseCode::AlreadyExists => f.write_str("ALREADYEXISTS"),
            ResponseCode::Tag(t) => write!(f, "TAG {t}"),
            ResponseCode::Warnings => f.write_str("WARNINGS"),
            ResponseCode::Other(name, args) if args.is_empty() => f.write_str(name),
            ResponseCode::Other(name, args) => write!(f, "{name} {}", args.join(" ")),
        }
    }
}

/// A response line, read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// `OK`, `NO` or `BYE` with its code and text.
    Final {
        /// Which.
        status: Status,
        /// The response code, if any.
        code: Option<ResponseCode>,
        /// The human text, if any.
        text: String,
    },
    /// Anything else: capabilities, a script list entry, a script.
    Data(Vec<Token>),
}

/// Reads a line's tokens as a final response or data.
pub fn classify(tokens: Vec<Token>) -> Result<Line, ParseError> {
    let status = match tokens.first() {
        Some(Token::Atom(a)) if a.eq_ignore_ascii_case("OK") => Status::Ok,
        Some(Token::Atom(a)) if a.eq_ignore_ascii_case("NO") => Status::No,
        Some(Token::Atom(a)) if a.eq_ignore_ascii_case("BYE") => Status::Bye,
        _ => return Ok(Line::Data(tokens)),
    };
    let mut rest = tokens.into_iter().skip(1).peekable();
    let mut code = None;
    if rest.peek() == Some(&Token::Open) {
        rest.next();
        let mut inner = Vec::new();
        loop {
            match rest.next() {
                Some(Token::Close) => break,
                Some(Token::Open) | None => return Err(syntax(0, "unbalanced response code")),
                Some(t) => inner.push(t),
            }
        }
        code = Some(response_code(inner)?);
    }
    let text = match rest.next() {
        None => String::new(),
        Some(t @ (Token::String(_) | Token::Atom(_))) => t.text().unwrap_or_default(),
        Some(_) => return Err(syntax(0, "unexpected token after the response code")),
    };
    if rest.next().is_some() {
        return Err(syntax(0, "more than one text after the status"));
    }
    Ok(Line::Final { status, code, text })
}

fn response_code(tokens: Vec<Token>) -> Result<ResponseCode, ParseError> {
    let mut it = tokens.into_iter();
    let Some(Token::Atom(name)) = it.next() else {
        return Err(syntax(0, "a response code must start with an atom"));
    };
    let args: Vec<String> = it.filter_map(|t| t.text()).collect();
    let first = || args.first().cloned().unwrap_or_default();
    let upper = name.to_ascii_uppercase();
    Ok(match upper.as_str() {
        "AUTH-TOO-WEAK" => ResponseCode::AuthTooWeak,
        "ENCRYPT-NEEDED" => ResponseCode::EncryptNeeded,
        "QUOTA" => ResponseCode::Quota(None),
        "REFERRAL" => ResponseCode::Referral(first()),
        "SASL" => ResponseCode::Sasl(first()),
        "TRANSITION-NEEDED" => ResponseCode::TransitionNeeded,
        "TRYLATER" => ResponseCode::TryLater,
        "ACTIVE" => ResponseCode::Active,
        "NONEXISTENT" => ResponseCode::Nonexistent,
        "ALREADYEXISTS" => ResponseCode::AlreadyExists,
        "TAG" => ResponseCode::Tag(first()),
        "WARNINGS" => ResponseCode::Warnings,
        q if q.starts_with("QUOTA/") => ResponseCode::Quota(Some(q["QUOTA/".len()..].to_owned())),
        _ => ResponseCode::Other(name, args),
    })
}

/// The server's capabilities (RFC 5804 §1.7), from the greeting or after STARTTLS.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// `IMPLEMENTATION`.
    pub implementation: String,
    /// `SASL` mechanisms (upper case).
    pub sasl: Vec<String>,
    /// `SIEVE` extensions.
    pub sieve: Vec<String>,
    /// `STARTTLS` offered.
    pub starttls: bool,
    /// `MAXREDIRECTS`, if said.
    pub max_redirects: Option<u32>,
    /// `NOTIFY` methods.
    pub notify: Vec<String>,
    /// `VERSION`.
    pub version: String,
    /// Any other capability, with its value.
    pub other: Vec<(String, String)>,
}

impl Capabilities {
    /// Adds one capability line (`"NAME" ["value"]`).
    pub fn add(&mut self, tokens: &[Token]) -> Result<(), ParseError> {
        let name = match tokens.first() {
            Some(t @ (Token::String(_) | Token::Atom(_))) => t.text().unwrap_or_default(),
            _ => return Err(syntax(0, "a capability must be a string")),
        };
        let value = tokens.get(1).and_then(Token::text).unwrap_or_default();
        let words = || value.split_ascii_whitespace().map(str::to_owned).collect::<Vec<_>>();
        match name.to_ascii_uppercase().as_str() {
            "IMPLEMENTATION" => self.implementation = value,
            "SASL" => self.sasl = words().into_iter().map(|w| w.to_ascii_uppercase()).collect(),
            "SIEVE" => self.sieve = words(),
            "STARTTLS" => self.starttls = true,
            "MAXREDIRECTS" => self.max_redirects = value.trim().parse().ok(),
            "NOTIFY" => self.notify = words(),
            "VERSION" => self.version = value,
            _ => self.other.push((name, value)),
        }
        Ok(())
    }

    /// Whether `mechanism` is offered (any case).
    pub fn has_sasl(&self, mechanism: &str) -> bool {
        self.sasl.iter().any(|m| m.eq_ignore_ascii_case(mechanism))
    }
}

/// One entry of LISTSCRIPTS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptEntry {
    /// The script's name.
    pub name: String,
    /// Whether it is the active one.
    pub active: bool,
}

/// Reads a LISTSCRIPTS line: `"name" [ACTIVE]`.
pub fn script_entry(tokens: &[Token]) -> Result<ScriptEntry, ParseError> {
    match tokens {
        [Token::String(name)] => Ok(ScriptEntry { name: String::from_utf8_lossy(name).into_owned(), active: false }),
        [Token::String(name), Token::Atom(a)] if a.eq_ignore_ascii_case("ACTIVE") => {
            Ok(ScriptEntry { name: String::from_utf8_lossy(name).into_owned(), active: true })
        }
        _ => Err(syntax(0, "a script list entry is a name and maybe ACTIVE")),
    }
}

/// Writes `value` as a ManageSieve string: quoted when it is short and
/// safe, else a non-synchronising literal (`{n+}`, the only kind a client
/// sends, RFC 5804 §4).
pub fn string(value: &[u8]) -> Vec<u8> {
    let quotable = value.len() <= 1024 && !value.iter().any(|&c| matches!(c, b'\r' | b'\n' | 0));
    if quotable {
        let mut out = Vec::with_capacity(value.len() + 2);
        out.push(b'"');
        for &c in value {
            if c == b'"' || c == b'\\' {
                out.push(b'\\');
            }
            out.push(c);
        }
        out.push(b'"');
        out
    } else {
        let mut out = format!("{{{}+}}\r\n", value.len()).into_bytes();
        out.extend_from_slice(value);
        out
    }
}

#[cfg(test)]
mod tests;
