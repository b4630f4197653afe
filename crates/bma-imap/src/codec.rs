//! The wire format: reading responses off a byte stream (literals byte-exact,
//! each read straight into one buffer of its exact size), parsing them into
//! [`Response`]s, and quoting strings for commands.
//!
//! A response is read as one [`RawResponse`]: the text of its lines, with a
//! `\n` marker after each `{n}` literal header, and the literals beside it,
//! in order. Lines cannot contain `\n`, so the marker is unambiguous. The
//! parser then walks the text and takes the literals by moving them, never
//! copying: a 40 MB message body is allocated once, filled once, and handed
//! to the caller as that same `Vec<u8>`.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use crate::error::{Error, Result};
use crate::types::{Capabilities, Flag, ResponseCode, UidSet};

/// Size of the read buffer.
const BUF_SIZE: usize = 64 * 1024;
/// Literal remainders at least this big are read straight into their own buffer.
const DIRECT_READ: usize = 16 * 1024;

/// One response as read off the wire, before parsing.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct RawResponse {
    /// The lines without CRLF; each literal header `{n}` is followed by `\n`.
    pub line: Vec<u8>,
    /// The literals, in order.
    pub literals: Vec<Vec<u8>>,
}

/// Reads responses from a byte stream, with its own buffer.
pub(crate) struct Reader {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Longest line accepted (literals excluded).
    pub max_line: usize,
    /// Biggest literal accepted.
    pub max_literal: u64,
    /// Time allowed for each read.
    pub timeout: Option<Duration>,
}

impl Reader {
    /// A reader with the given limits.
    pub fn new(max_line: usize, max_literal: u64, timeout: Option<Duration>) -> Reader {
        Reader { buf: vec![0; BUF_SIZE].into_boxed_slice(), start: 0, end: 0, max_line, max_literal, timeout }
    }

    /// Bytes read from the stream and not yet consumed.
    pub fn buffered(&self) -> usize {
        self.end - self.start
    }

    async fn timed<F: Future<Output = std::io::Result<usize>>>(&self, fut: F) -> Result<usize> {
        let n = match self.timeout {
            Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| Error::IoTimeout)??,
            None => fut.await?,
        };
        Ok(n)
    }

    /// Reads more into the buffer; `ConnectionClosed` at end of stream.
    async fn fill<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let (end, timeout) = (self.end, self.timeout);
        let fut = r.read(&mut self.buf[end..]);
        let n = match timeout {
            Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| Error::IoTimeout)??,
            None => fut.await?,
        };
        if n == 0 {
            return Err(Error::ConnectionClosed);
        }
        self.end += n;
        Ok(())
    }

    /// Appends one line (without CRLF or LF) to `out`.
    async fn read_line<R: AsyncRead + Unpin>(&mut self, r: &mut R, out: &mut Vec<u8>) -> Result<()> {
        let base = out.len();
        loop {
            let avail = &self.buf[self.start..self.end];
            if let Some(p) = avail.iter().position(|&b| b == b'\n') {
                out.extend_from_slice(&avail[..p]);
                self.start += p + 1;
                if out.len() > base && out.last() == Some(&b'\r') {
                    out.pop();
                }
                return Ok(());
            }
            out.extend_from_slice(avail);
            self.start = self.end;
            if out.len() > self.max_line {
                return Err(Error::Protocol(format!("response line longer than {} bytes", self.max_line)));
            }
            self.fill(r).await?;
        }
    }

    /// Reads exactly `n` bytes into a new buffer of capacity `n`.
    async fn read_literal<R: AsyncRead + Unpin>(&mut self, r: &mut R, n: usize) -> Result<Vec<u8>> {
        let mut v = Vec::with_capacity(n);
        let take = n.min(self.buffered());
        v.extend_from_slice(&self.buf[self.start..self.start + take]);
        self.start += take;
        while v.len() < n {
            let remaining = n - v.len();
            if remaining >= DIRECT_READ {
                let got = self.timed((&mut *r).take(remaining as u64).read_buf(&mut v)).await?;
                if got == 0 {
                    return Err(Error::ConnectionClosed);
                }
            } else {
                self.fill(r).await?;
                let take = remaining.min(self.buffered());
                v.extend_from_slice(&self.buf[self.start..self.start + take]);
                self.start += take;
            }
        }
        Ok(v)
    }

    /// Reads one whole response: its lines and its literals.
    pub async fn read_response<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<RawResponse> {
        let mut raw = RawResponse::default();
        loop {
            self.read_line(r, &mut raw.line).await?;
            let Some(n) = literal_suffix(&raw.line) else { return Ok(raw) };
            if n > self.max_literal {
                return Err(Error::Protocol(format!("literal of {n} bytes exceeds the limit of {}", self.max_literal)));
            }
            let n = usize::try_from(n).map_err(|_| Error::Protocol("literal too big for this machine".into()))?;
            raw.line.push(b'\n');
            let lit = self.read_literal(r, n).await?;
            raw.literals.push(lit);
            if raw.line.len() > self.max_line {
                return Err(Error::Protocol(format!("response longer than {} bytes", self.max_line)));
            }
        }
    }
}

/// The size of the literal announced at the end of `line` (`{n}`, `{n+}`, `~{n}`).
fn literal_suffix(line: &[u8]) -> Option<u64> {
    let body = line.strip_suffix(b"}")?;
    let open = body.iter().rposition(|&b| b == b'{')?;
    let digits = &body[open + 1..];
    let digits = digits.strip_suffix(b"+").unwrap_or(digits);
    if digits.is_empty() || digits.len() > 19 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A parsed value of a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// An atom (including flags like `\Seen` and `BODY[]`), or a number.
    Atom(String),
    /// A quoted string, unescaped.
    Quoted(Vec<u8>),
    /// A literal.
    Literal(Vec<u8>),
    /// NIL.
    Nil,
    /// A parenthesised list.
    List(Vec<Value>),
}

impl Value {
    /// The text of an atom, quoted string or literal.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Atom(a) => Some(a),
            Value::Quoted(b) | Value::Literal(b) => std::str::from_utf8(b).ok(),
            Value::Nil => Some("NIL"),
            Value::List(_) => None,
        }
    }

    /// The text of a string, or `None` for NIL.
    pub fn as_nstring(&self) -> Option<&str> {
        match self {
            Value::Nil => None,
            v => v.as_str(),
        }
    }

    /// A number.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Atom(a) if a.bytes().all(|b| b.is_ascii_digit()) => a.parse().ok(),
            _ => None,
        }
    }

    /// A 32-bit number.
    pub fn as_u32(&self) -> Option<u32> {
        self.as_u64().and_then(|n| u32::try_from(n).ok())
    }

    /// The items of a list.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The bytes of a string, moved out.
    pub fn into_bytes(self) -> Option<Vec<u8>> {
        match self {
            Value::Quoted(b) | Value::Literal(b) => Some(b),
            Value::Atom(a) => Some(a.into_bytes()),
            _ => None,
        }
    }
}

/// OK, NO, BAD, PREAUTH, BYE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Ok,
    No,
    Bad,
    PreAuth,
    Bye,
}

/// A parsed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Response {
    /// `+ text`
    Continuation(String),
    /// A status response, tagged or not.
    Status { tag: Option<String>, status: Status, code: Option<ResponseCode>, text: String },
    /// `* n FETCH (...)`: the items as (upper-cased name, value).
    Fetch { seq: u32, items: Vec<(String, Value)> },
    /// `* n EXISTS`, `RECENT`, `EXPUNGE`.
    Numbered { seq: u32, name: String },
    /// Any other untagged response: its upper-cased name and values.
    Data { name: String, values: Vec<Value> },
}

struct Cursor<'a> {
    line: &'a [u8],
    pos: usize,
    literals: std::vec::IntoIter<Vec<u8>>,
}

fn err(what: &str, line: &[u8], pos: usize) -> Error {
    let shown: String = String::from_utf8_lossy(&line[..line.len().min(200)]).into();
    Error::Protocol(format!("{what} at byte {pos} of `{shown}`"))
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.line.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.line.len()
    }

    fn skip_spaces(&mut self) {
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
    }

    fn error(&self, what: &str) -> Error {
        err(what, self.line, self.pos)
    }

    /// An atom: up to a space, a parenthesis, a quote or the end; `[...]` taken whole.
    fn atom(&mut self) -> Result<String> {
        let start = self.pos;
        let mut depth = 0usize;
        while let Some(b) = self.peek() {
            match b {
                b'[' => depth += 1,
                b']' if depth > 0 => depth -= 1,
                b']' => break,
                b' ' | b'(' | b')' | b'"' | b'\n' if depth == 0 => break,
                b'\n' => break,
                _ => {}
            }
            self.pos += 1;
        }
        if self.pos == start {
            return Err(self.error("expected an atom"));
        }
        Ok(String::from_utf8_lossy(&self.line[start..self.pos]).into_owned())
    }

    fn quoted(&mut self) -> Result<Vec<u8>> {
        self.pos += 1;
        let mut out = Vec::new();
        loop {
            match self.peek() {
                None | Some(b'\n') => return Err(self.error("unterminated quoted string")),
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    let c = self.line.get(self.pos + 1).copied().ok_or_else(|| self.error("bad escape"))?;
                    out.push(c);
                    self.pos += 2;
                }
                Some(c) => {
                    out.push(c);
                    self.pos += 1;
                }
            }
        }
    }

    fn literal(&mut self) -> Result<Vec<u8>> {
        if self.peek() == Some(b'~') {
            self.pos += 1;
        }
        let close = self.line[self.pos..].iter().position(|&b| b == b'}').ok_or_else(|| self.error("bad literal"))?;
        self.pos += close + 1;
        if self.peek() != Some(b'\n') {
            return Err(self.error("literal header not at end of line"));
        }
        self.pos += 1;
        self.literals.next().ok_or_else(|| self.error("missing literal"))
    }

    fn value(&mut self) -> Result<Value> {
        self.skip_spaces();
        match self.peek() {
            None => Err(self.error("expected a value")),
            Some(b'(') => {
                self.pos += 1;
                let mut items = Vec::new();
                loop {
                    self.skip_spaces();
                    match self.peek() {
                        Some(b')') => {
                            self.pos += 1;
                            return Ok(Value::List(items));
                        }
                        None => return Err(self.error("unterminated list")),
                        _ => items.push(self.value()?),
                    }
                }
            }
            Some(b'"') => Ok(Value::Quoted(self.quoted()?)),
            Some(b'{') => Ok(Value::Literal(self.literal()?)),
            Some(b'~') if self.line.get(self.pos + 1) == Some(&b'{') => Ok(Value::Literal(self.literal()?)),
            Some(_) => {
                let a = self.atom()?;
                Ok(if a.eq_ignore_ascii_case("NIL") { Value::Nil } else { Value::Atom(a) })
            }
        }
    }

    fn values(&mut self) -> Result<Vec<Value>> {
        let mut out = Vec::new();
        loop {
            self.skip_spaces();
            if self.at_end() {
                return Ok(out);
            }
            out.push(self.value()?);
        }
    }

    fn word(&mut self) -> String {
        let start = self.pos;
        while let Some(b) = self.peek() {
            if b == b' ' {
                break;
            }
            self.pos += 1;
        }
        String::from_utf8_lossy(&self.line[start..self.pos]).into_owned()
    }

    fn rest_text(&mut self) -> String {
        self.skip_spaces();
        let t = String::from_utf8_lossy(&self.line[self.pos..]).into_owned();
        self.pos = self.line.len();
        t
    }

    /// After OK/NO/BAD/BYE/PREAUTH: an optional `[code]` and the text.
    fn status_rest(&mut self) -> Result<(Option<ResponseCode>, String)> {
        self.skip_spaces();
        let mut code = None;
        if self.peek() == Some(b'[') {
            let start = self.pos + 1;
            let (mut depth, mut quoted, mut i) = (0usize, false, start);
            loop {
                match self.line.get(i) {
                    None => return Err(self.error("unterminated response code")),
                    Some(b'"') => quoted = !quoted,
                    Some(b'\\') if quoted => i += 1,
                    Some(b'[') if !quoted => depth += 1,
                    Some(b']') if !quoted && depth == 0 => break,
                    Some(b']') if !quoted => depth -= 1,
                    _ => {}
                }
                i += 1;
            }
            code = Some(parse_code(&self.line[start..i]));
            self.pos = i + 1;
        }
        Ok((code, self.rest_text()))
    }
}

/// Parses the inside of `[...]`.
pub(crate) fn parse_code(inner: &[u8]) -> ResponseCode {
    let text = String::from_utf8_lossy(inner);
    let (name, args) = match text.split_once(' ') {
        Some((n, a)) => (n.to_ascii_uppercase(), a.trim().to_owned()),
        None => (text.to_ascii_uppercase(), String::new()),
    };
    let num32 = || args.parse::<u32>().ok();
    let other = || ResponseCode::Other(name.clone(), args.clone());
    match name.as_str() {
        "ALERT" => ResponseCode::Alert,
        "CAPABILITY" => ResponseCode::Capability(Capabilities::from_atoms(args.split_ascii_whitespace())),
        "PERMANENTFLAGS" => {
            let mut c = Cursor { line: args.as_bytes(), pos: 0, literals: Vec::new().into_iter() };
            match c.value() {
                Ok(Value::List(items)) => {
                    ResponseCode::PermanentFlags(items.iter().filter_map(Value::as_str).map(Flag::parse).collect())
                }
                _ => other(),
            }
        }
        "READ-ONLY" => ResponseCode::ReadOnly,
        "READ-WRITE" => ResponseCode::ReadWrite,
        "TRYCREATE" => ResponseCode::TryCreate,
        "UIDNEXT" => num32().map_or_else(other, ResponseCode::UidNext),
        "UIDVALIDITY" => num32().map_or_else(other, ResponseCode::UidValidity),
        "UNSEEN" => num32().map_or_else(other, ResponseCode::Unseen),
        "HIGHESTMODSEQ" => args.parse().map_or_else(|_| other(), ResponseCode::HighestModSeq),
        "NOMODSEQ" => ResponseCode::NoModSeq,
        "APPENDUID" => {
            let mut it = args.split_ascii_whitespace().map(str::parse::<u32>);
            match (it.next(), it.next(), it.next()) {
                (Some(Ok(uid_validity)), Some(Ok(uid)), None) => ResponseCode::AppendUid { uid_validity, uid },
                _ => match args.split_once(' ').and_then(|(v, set)| Some((v.parse().ok()?, uid_ranges(set)?))) {
                    Some((uid_validity, uids)) => ResponseCode::AppendUids { uid_validity, uids },
                    None => other(),
                },
            }
        }
        "COPYUID" => ResponseCode::CopyUid(args.clone()),
        "OVERQUOTA" => ResponseCode::OverQuota,
        "TOOBIG" => ResponseCode::TooBig,
        "LIMIT" => ResponseCode::Limit,
        "THROTTLED" => ResponseCode::Throttled,
        "UNAVAILABLE" => ResponseCode::Unavailable,
        "AUTHENTICATIONFAILED" => ResponseCode::AuthenticationFailed,
        "AUTHORIZATIONFAILED" => ResponseCode::AuthorizationFailed,
        "EXPIRED" => ResponseCode::Expired,
        "PRIVACYREQUIRED" => ResponseCode::PrivacyRequired,
        "CONTACTADMIN" => ResponseCode::ContactAdmin,
        "NONEXISTENT" => ResponseCode::NonExistent,
        "ALREADYEXISTS" => ResponseCode::AlreadyExists,
        "INUSE" => ResponseCode::InUse,
        "SERVERBUG" => ResponseCode::ServerBug,
        "CLOSED" => ResponseCode::Closed,
        _ => other(),
    }
}

/// A UID set of numbers and ranges (`4,7:9`), in the order given; a range
/// written backwards (`9:7`) counts up as RFC 4315 allows.
fn uid_ranges(set: &str) -> Option<Vec<(u32, u32)>> {
    set.split(',')
        .map(|part| match part.split_once(':') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                Some((a.min(b), a.max(b)))
            }
            None => part.parse().ok().map(|n| (n, n)),
        })
        .collect()
}

/// The values of an untagged `VANISHED` response (RFC 7162): `(EARLIER)`
/// first when it answers a resynchronisation (SELECT/EXAMINE with QRESYNC,
/// UID FETCH with VANISHED), not when messages are expunged while the
/// mailbox is selected; then a set of UIDs, kept as ranges.
pub(crate) fn vanished(values: &[Value]) -> Result<(bool, UidSet)> {
    let bad = || Error::Protocol(format!("malformed VANISHED response: {values:?}"));
    let (earlier, set) = match values {
        [Value::List(tag), Value::Atom(set)] => match tag.as_slice() {
            [Value::Atom(t)] if t.eq_ignore_ascii_case("EARLIER") => (true, set),
            _ => return Err(bad()),
        },
        [Value::Atom(set)] => (false, set),
        _ => return Err(bad()),
    };
    Ok((earlier, UidSet::parse(set).ok_or_else(bad)?))
}

fn status_of(word: &str) -> Option<Status> {
    Some(match word.to_ascii_uppercase().as_str() {
        "OK" => Status::Ok,
        "NO" => Status::No,
        "BAD" => Status::Bad,
        "PREAUTH" => Status::PreAuth,
        "BYE" => Status::Bye,
        _ => return None,
    })
}

/// Untagged responses whose values this client reads: a parse error in them is an error.
const KNOWN: [&str; 9] =
    ["CAPABILITY", "LIST", "LSUB", "STATUS", "NAMESPACE", "FLAGS", "ENABLED", "SEARCH", "VANISHED"];

/// Parses a raw response.
pub(crate) fn parse(raw: RawResponse) -> Result<Response> {
    let RawResponse { line, literals } = raw;
    let mut c = Cursor { line: &line, pos: 0, literals: literals.into_iter() };
    if c.peek() == Some(b'+') {
        c.pos += 1;
        return Ok(Response::Continuation(c.rest_text()));
    }
    let tag = c.word();
    if tag.is_empty() {
        return Err(c.error("empty tag"));
    }
    c.skip_spaces();
    if tag != "*" {
        let word = c.word();
        let status = status_of(&word).ok_or_else(|| c.error("expected OK, NO or BAD after a tag"))?;
        let (code, text) = c.status_rest()?;
        return Ok(Response::Status { tag: Some(tag), status, code, text });
    }
    let word = c.word();
    if let Some(status) = status_of(&word) {
        let (code, text) = c.status_rest()?;
        return Ok(Response::Status { tag: None, status, code, text });
    }
    if let Ok(seq) = word.parse::<u32>() {
        c.skip_spaces();
        let name = c.word().to_ascii_uppercase();
        if name == "FETCH" {
            let Value::List(list) = c.value()? else { return Err(c.error("FETCH without a list")) };
            let mut items = Vec::with_capacity(list.len() / 2);
            let mut it = list.into_iter();
            while let Some(key) = it.next() {
                let Value::Atom(key) = key else { return Err(err("FETCH item name expected", &line, 0)) };
                let value = it.next().ok_or_else(|| err("FETCH item without value", &line, 0))?;
                items.push((key.to_ascii_uppercase(), value));
            }
            return Ok(Response::Fetch { seq, items });
        }
        return Ok(Response::Numbered { seq, name });
    }
    let name = word.to_ascii_uppercase();
    let values = match c.values() {
        Ok(v) => v,
        Err(e) if KNOWN.contains(&name.as_str()) => return Err(e),
        Err(_) => Vec::new(),
    };
    Ok(Response::Data { name, values })
}

/// Appends `s` to a command as a quoted string (`"` and `\` escaped).
/// The caller makes sure `s` has no CR, LF or NUL (use a literal for those).
pub(crate) fn push_quoted(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        if b == b'"' || b == b'\\' {
            out.push(b'\\');
        }
        out.push(b);
    }
    out.push(b'"');
}

/// Whether `s` can be sent as a quoted string.
pub(crate) fn quotable(s: &[u8]) -> bool {
    s.iter().all(|&b| b != b'\r' && b != b'\n' && b != 0 && b < 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use tokio::io::ReadBuf;

    /// Hands out its data at most `chunk` bytes per read.
    struct Trickle {
        data: Vec<u8>,
        pos: usize,
        chunk: usize,
    }

    impl AsyncRead for Trickle {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
            buf: &mut ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            let n = self.chunk.min(buf.remaining()).min(self.data.len() - self.pos);
            let pos = self.pos;
            buf.put_slice(&self.data[pos..pos + n]);
            self.pos += n;
            Poll::Ready(Ok(()))
        }
    }

    async fn read_all(data: &[u8], chunk: usize) -> Vec<Response> {
        let mut r = Trickle { data: data.to_vec(), pos: 0, chunk };
        let mut reader = Reader::new(1 << 20, 1 << 30, None);
        let mut out = Vec::new();
        loop {
            match reader.read_response(&mut r).await {
                Ok(raw) => out.push(parse(raw).expect("parses")),
                Err(Error::ConnectionClosed) => return out,
                Err(e) => panic!("{e}"),
            }
        }
    }

    fn body_of(r: &Response) -> Vec<u8> {
        let Response::Fetch { items, .. } = r else { panic!("not a fetch: {r:?}") };
        let (_, v) = items.iter().find(|(k, _)| k == "BODY[]").expect("a body");
        v.clone().into_bytes().expect("bytes")
    }

    #[tokio::test]
    async fn literals_split_across_reads_are_byte_exact() {
        let big: Vec<u8> = (0..100_000u32).map(|i| if i % 7 == 0 { b'\n' } else { (i % 255 + 1) as u8 }).collect();
        let bodies: Vec<Vec<u8>> = vec![
            b"".to_vec(),
            b"a\r\nb".to_vec(),
            b"bare\nLF\rCR \xe9\xff 8-bit }{5}\r\n".to_vec(),
            b"ends with {3}".to_vec(),
            big,
        ];
        let mut wire = Vec::new();
        for (i, b) in bodies.iter().enumerate() {
            wire.extend_from_slice(format!("* {} FETCH (UID {} BODY[] {{{}}}\r\n", i + 1, i + 10, b.len()).as_bytes());
            wire.extend_from_slice(b);
            wire.extend_from_slice(b" FLAGS (\\Seen))\r\n");
        }
        wire.extend_from_slice(b"A1 OK done\r\n");
        for chunk in [1, 2, 3, 7, 100, 65_536, 1 << 20] {
            let rs = read_all(&wire, chunk).await;
            assert_eq!(rs.len(), bodies.len() + 1, "chunk {chunk}");
            for (r, b) in rs.iter().zip(&bodies) {
                assert_eq!(&body_of(r), b, "chunk {chunk}");
            }
        }
    }

    fn one(line: &str) -> Response {
        let raw = RawResponse { line: line.as_bytes().to_vec(), literals: Vec::new() };
        parse(raw).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    #[test]
    fn status_responses_and_codes() {
        type Case = (&'static str, Option<&'static str>, Status, Option<ResponseCode>, &'static str);
        let cases: Vec<Case> = vec![
            ("A1 OK done", Some("A1"), Status::Ok, None, "done"),
            (
                "a2 NO [OVERQUOTA] Quota exceeded (mailbox for user is full)",
                Some("a2"),
                Status::No,
                Some(ResponseCode::OverQuota),
                "Quota exceeded (mailbox for user is full)",
            ),
            ("A3 NO [TOOBIG] too big", Some("A3"), Status::No, Some(ResponseCode::TooBig), "too big"),
            ("A3 NO [LIMIT] x", Some("A3"), Status::No, Some(ResponseCode::Limit), "x"),
            ("A4 NO [THROTTLED] slow down", Some("A4"), Status::No, Some(ResponseCode::Throttled), "slow down"),
            ("A5 NO [UNAVAILABLE] later", Some("A5"), Status::No, Some(ResponseCode::Unavailable), "later"),
            (
                "A6 NO [TRYCREATE] Mailbox doesn't exist: X",
                Some("A6"),
                Status::No,
                Some(ResponseCode::TryCreate),
                "Mailbox doesn't exist: X",
            ),
            (
                "A7 OK [APPENDUID 1629535060 19] Append completed.",
                Some("A7"),
                Status::Ok,
                Some(ResponseCode::AppendUid { uid_validity: 1_629_535_060, uid: 19 }),
                "Append completed.",
            ),
            (
                "A8 OK [APPENDUID 38505 3955,3960:3962,9:8] Append completed.",
                Some("A8"),
                Status::Ok,
                Some(ResponseCode::AppendUids { uid_validity: 38505, uids: vec![(3955, 3955), (3960, 3962), (8, 9)] }),
                "Append completed.",
            ),
            (
                "* OK [UIDVALIDITY 1629535060] UIDs valid",
                None,
                Status::Ok,
                Some(ResponseCode::UidValidity(1_629_535_060)),
                "UIDs valid",
            ),
            (
                "* OK [UIDNEXT 19] Predicted next UID",
                None,
                Status::Ok,
                Some(ResponseCode::UidNext(19)),
                "Predicted next UID",
            ),
            ("* OK [HIGHESTMODSEQ 6] Highest", None, Status::Ok, Some(ResponseCode::HighestModSeq(6)), "Highest"),
            (
                "* OK [PERMANENTFLAGS (\\Answered \\Seen $Label1 \\*)] Flags permitted.",
                None,
                Status::Ok,
                Some(ResponseCode::PermanentFlags(vec![
                    Flag::Answered,
                    Flag::Seen,
                    Flag::Keyword("$Label1".into()),
                    Flag::Extension("\\*".into()),
                ])),
                "Flags permitted.",
            ),
            (
                "b NO [AUTHENTICATIONFAILED] Authentication failed.",
                Some("b"),
                Status::No,
                Some(ResponseCode::AuthenticationFailed),
                "Authentication failed.",
            ),
            ("* BYE Logging out", None, Status::Bye, None, "Logging out"),
            (
                "* ok [X-FOO a [b] c] text",
                None,
                Status::Ok,
                Some(ResponseCode::Other("X-FOO".into(), "a [b] c".into())),
                "text",
            ),
            ("* OK [READ-WRITE]", None, Status::Ok, Some(ResponseCode::ReadWrite), ""),
            ("A9 BAD", Some("A9"), Status::Bad, None, ""),
        ];
        for (line, tag, status, code, text) in cases {
            let want = Response::Status { tag: tag.map(str::to_owned), status, code, text: text.to_owned() };
            assert_eq!(one(line), want, "{line}");
        }
        let Response::Status { code: Some(ResponseCode::Capability(c)), .. } =
            one("* OK [CAPABILITY IMAP4rev1 SASL-IR LITERAL+ AUTH=PLAIN] Dovecot ready.")
        else {
            panic!()
        };
        assert!(c.literal_plus() && c.sasl_ir() && c.has_auth("plain") && !c.uidplus());
    }

    #[test]
    fn data_responses() {
        let cases: Vec<(&str, Response)> = vec![
            ("+ ", Response::Continuation(String::new())),
            ("+ dGV4dA==", Response::Continuation("dGV4dA==".into())),
            ("* 18 EXISTS", Response::Numbered { seq: 18, name: "EXISTS".into() }),
            (
                r#"* LIST (\Subscribed \UnMarked) "/" "R&AOk-unions &- Conseils""#,
                Response::Data {
                    name: "LIST".into(),
                    values: vec![
                        Value::List(vec![Value::Atom("\\Subscribed".into()), Value::Atom("\\UnMarked".into())]),
                        Value::Quoted(b"/".to_vec()),
                        Value::Quoted(b"R&AOk-unions &- Conseils".to_vec()),
                    ],
                },
            ),
            (
                r#"* LIST () NIL "a \"b\" \\ c""#,
                Response::Data {
                    name: "LIST".into(),
                    values: vec![Value::List(vec![]), Value::Nil, Value::Quoted(br#"a "b" \ c"#.to_vec())],
                },
            ),
            (
                r#"* NAMESPACE (("" "/")) NIL NIL"#,
                Response::Data {
                    name: "NAMESPACE".into(),
                    values: vec![
                        Value::List(vec![Value::List(vec![Value::Quoted(vec![]), Value::Quoted(b"/".to_vec())])]),
                        Value::Nil,
                        Value::Nil,
                    ],
                },
            ),
            (
                "* 1 FETCH (UID 1 FLAGS (\\Flagged \\Seen) INTERNALDATE \"13-Sep-2020 12:27:17 +0000\" RFC822.SIZE 1890 MODSEQ (6))",
                Response::Fetch {
                    seq: 1,
                    items: vec![
                        ("UID".into(), Value::Atom("1".into())),
                        (
                            "FLAGS".into(),
                            Value::List(vec![Value::Atom("\\Flagged".into()), Value::Atom("\\Seen".into())]),
                        ),
                        ("INTERNALDATE".into(), Value::Quoted(b"13-Sep-2020 12:27:17 +0000".to_vec())),
                        ("RFC822.SIZE".into(), Value::Atom("1890".into())),
                        ("MODSEQ".into(), Value::List(vec![Value::Atom("6".into())])),
                    ],
                },
            ),
            (
                "* 2 FETCH (BODY[HEADER.FIELDS (FROM TO)] NIL)",
                Response::Fetch { seq: 2, items: vec![("BODY[HEADER.FIELDS (FROM TO)]".into(), Value::Nil)] },
            ),
            ("* X-WEIRD ((( unbalanced", Response::Data { name: "X-WEIRD".into(), values: vec![] }),
        ];
        for (line, want) in cases {
            assert_eq!(one(line), want, "{line}");
        }
        let bad = RawResponse { line: b"* LIST ((".to_vec(), literals: vec![] };
        assert!(parse(bad).is_err());
    }

    #[test]
    fn vanished_responses() {
        // Line, then (EARLIER, set) or None for a protocol error.
        let cases: [(&str, Option<(bool, &str)>); 12] = [
            ("* VANISHED (EARLIER) 41,43:116,118,120:211,214:540", Some((true, "41,43:116,118,120:211,214:540"))),
            ("* VANISHED (EARLIER) 1:5000,5002", Some((true, "1:5000,5002"))),
            ("* vanished (earlier) 7", Some((true, "7"))),
            ("* VANISHED 405,407,410,425", Some((false, "405,407,410,425"))),
            ("* VANISHED 9:7,3", Some((false, "3,7:9"))),
            ("* VANISHED   12", Some((false, "12"))),
            ("* VANISHED", None),
            ("* VANISHED (EARLIER)", None),
            ("* VANISHED (LATER) 3", None),
            ("* VANISHED 0:3", None),
            ("* VANISHED 3:*", None),
            ("* VANISHED 1,x", None),
        ];
        for (line, want) in cases {
            let got = match one(line) {
                Response::Data { name, values } if name == "VANISHED" => vanished(&values),
                other => panic!("{line}: {other:?}"),
            };
            match (got, want) {
                (Ok((earlier, set)), Some((e, wire))) => {
                    assert_eq!((earlier, set.to_imap().as_str()), (e, wire), "{line}");
                }
                (Err(Error::Protocol(_)), None) => {}
                (got, want) => panic!("{line}: got {got:?}, want {want:?}"),
            }
        }
        // A syntax error in a VANISHED response is an error, not a response ignored.
        let raw = RawResponse { line: b"* VANISHED (EARLIER 3".to_vec(), literals: vec![] };
        assert!(parse(raw).is_err());
    }

    #[tokio::test]
    async fn expunges_and_vanished_between_fetch_responses() {
        let wire = b"* 1 FETCH (UID 10 FLAGS (\\Seen) RFC822.SIZE 5)\r\n* 2 EXPUNGE\r\n\
* VANISHED 11:13,15\r\n* 2 FETCH (UID 14 FLAGS () MODSEQ (8))\r\n* 2 FETCH (UID 16 BODY[] {3}\r\nabc)\r\nA1 OK done\r\n";
        let rs = read_all(wire, 5).await;
        assert_eq!(rs.len(), 6);
        assert_eq!(rs[1], Response::Numbered { seq: 2, name: "EXPUNGE".into() });
        let Response::Data { name, values } = &rs[2] else { panic!("{:?}", rs[2]) };
        assert_eq!(name, "VANISHED");
        let (earlier, set) = vanished(values).expect("vanished");
        assert!(!earlier);
        assert_eq!(set.to_imap(), "11:13,15");
        assert_eq!(body_of(&rs[4]), b"abc");
    }

    #[test]
    fn literal_in_mailbox_position() {
        let raw = RawResponse { line: b"* LIST () \"/\" {5}\n".to_vec(), literals: vec![b"a\"b c".to_vec()] };
        let Response::Data { values, .. } = parse(raw).expect("parses") else { panic!() };
        assert_eq!(values[2], Value::Literal(b"a\"b c".to_vec()));
    }

    #[test]
    fn literal_suffixes() {
        let cases: [(&[u8], Option<u64>); 7] = [
            (b"* 1 FETCH (BODY[] {12}", Some(12)),
            (b"{0}", Some(0)),
            (b"x {5+}", Some(5)),
            (b"x ~{5}", Some(5)),
            (b"x {}", None),
            (b"x {a}", None),
            (b"x 5}", None),
        ];
        for (line, want) in cases {
            assert_eq!(literal_suffix(line), want, "{}", String::from_utf8_lossy(line));
        }
    }

    #[tokio::test]
    async fn limits_and_eof() {
        let mut r = Trickle { data: b"* 1 FETCH (BODY[] {100}\r\nabc".to_vec(), pos: 0, chunk: 4 };
        let mut reader = Reader::new(1 << 20, 50, None);
        assert!(matches!(reader.read_response(&mut r).await, Err(Error::Protocol(_))));
        let mut r = Trickle { data: b"* 1 FETCH (BODY[] {10}\r\nabc".to_vec(), pos: 0, chunk: 4 };
        let mut reader = Reader::new(1 << 20, 50, None);
        assert!(matches!(reader.read_response(&mut r).await, Err(Error::ConnectionClosed)));
        let mut r = Trickle { data: vec![b'x'; 300], pos: 0, chunk: 100 };
        let mut reader = Reader::new(100, 50, None);
        assert!(matches!(reader.read_response(&mut r).await, Err(Error::Protocol(_))));
    }

    #[test]
    fn quoting() {
        let mut out = Vec::new();
        push_quoted(&mut out, br#"a"b\c"#);
        assert_eq!(out, br#""a\"b\\c""#);
        assert!(quotable(b"plain ascii") && !quotable(b"caf\xc3\xa9") && !quotable(b"a\r\n"));
    }
}
