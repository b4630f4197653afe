//! The shape of a message's bytes: what targets are known to rewrite on
//! APPEND, counted, so that a message the target stored differently is
//! found and the difference said in words ([`Change`]).
//!
//! Rules (pure, no I/O):
//!
//! - A [`Shape`] is read in one pass over the bytes: the size, the SHA-256
//!   when asked, the 8-bit and NUL bytes of the header section, the line
//!   endings of the whole message (CRLF, bare LF, bare CR), whether a blank
//!   line ends the header section, and whether a header line has no colon.
//! - A message is **risky** ([`Shape::risky`]) when a target is known to
//!   rewrite it: 8-bit header bytes (Cyrus' `munge8bit` turns them into
//!   `X`), a bare CR or LF (Courier drops bare CRs), no blank line after the
//!   headers (Courier adds one), no line ending at the end (Courier adds
//!   one), NUL bytes, a header line with no colon (Cyrus refuses it). With `--verify risky` (the default) those are
//!   compared by content after APPEND; the others by size.
//! - [`changes`] of two shapes is empty exactly when their hashes are equal
//!   (or, without hashes, when nothing counted differs); otherwise each
//!   recognised difference is named, and [`Change::Content`] stands for
//!   what none of them explains.
//! - An [`Alteration`] (the target's size and the changes) is kept in the
//!   sync state as a short text ([`Alteration::encode`], [`Alteration::parse`]),
//!   so that a rerun reports it again without fetching anything.

use std::fmt;

use serde::Serialize;
use sha2::{Digest, Sha256};

/// What was counted in a message's bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Shape {
    /// Bytes.
    pub size: u64,
    /// SHA-256 of the bytes, when asked for.
    pub sha256: Option<[u8; 32]>,
    /// Bytes ≥ 0x80 in the header section.
    pub header_8bit: u32,
    /// NUL bytes anywhere.
    pub nul: u32,
    /// CRLF pairs.
    pub crlf: u32,
    /// LF not preceded by CR.
    pub bare_lf: u32,
    /// CR not followed by LF.
    pub bare_cr: u32,
    /// A blank line ends the header section.
    pub header_end: bool,
    /// A header line has no colon (and is not a continuation).
    pub malformed_header: bool,
    /// The last byte is a line feed (or there are no bytes).
    pub final_eol: bool,
}

impl Shape {
    /// Reads `bytes`; hashes them when `hash`. The header section is read
    /// line by line, the rest only searched for CR, LF and NUL (`memchr`).
    pub fn of(bytes: &[u8], hash: bool) -> Shape {
        let final_eol = bytes.last().is_none_or(|&b| b == b'\n');
        let mut s = Shape { size: bytes.len() as u64, final_eol, ..Shape::default() };
        if hash {
            s.hash(bytes);
        }
        let mut pos = 0;
        while pos < bytes.len() {
            let nl = memchr::memchr(b'\n', &bytes[pos..]).map(|i| pos + i);
            let line = &bytes[pos..nl.unwrap_or(bytes.len())];
            s.header_8bit += line.iter().filter(|&&b| b >= 0x80).count() as u32;
            if !s.header_line(line.strip_suffix(b"\r").unwrap_or(line)) {
                break;
            }
            pos = nl.map_or(bytes.len(), |i| i + 1);
        }
        for i in memchr::memchr2_iter(b'\r', b'\n', bytes) {
            match bytes[i] {
                b'\r' if bytes.get(i + 1) == Some(&b'\n') => s.crlf += 1,
                b'\r' => s.bare_cr += 1,
                _ if i > 0 && bytes[i - 1] == b'\r' => {}
                _ => s.bare_lf += 1,
            }
        }
        s.nul = memchr::memchr_iter(0, bytes).count() as u32;
        s
    }

    /// Adds the SHA-256 of `bytes` (the bytes this shape was read from).
    pub fn hash(&mut self, bytes: &[u8]) {
        self.sha256 = Some(Sha256::digest(bytes).into());
    }

    /// Takes one header line (without its line ending); returns whether the
    /// header section goes on.
    fn header_line(&mut self, line: &[u8]) -> bool {
        if line.is_empty() {
            self.header_end = true;
            return false;
        }
        let continuation = matches!(line[0], b' ' | b'\t');
        if !continuation && !line.contains(&b':') {
            self.malformed_header = true;
        }
        true
    }

    /// Whether a target is known to rewrite such a message (see the module doc).
    pub fn risky(&self) -> bool {
        self.header_8bit > 0
            || self.nul > 0
            || self.bare_lf > 0
            || self.bare_cr > 0
            || !self.header_end
            || self.malformed_header
            || !self.final_eol
    }
}

/// The SHA-1 of `bytes`, to compare with a target's `DIGEST.SHA1` (Cyrus):
/// the server's choice of hash, not ours (SHA-256 is ours).
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    <sha1::Sha1 as sha1::Digest>::digest(bytes).into()
}

/// One way a target changed a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Change {
    /// 8-bit header bytes replaced (Cyrus' `munge8bit`): how many are gone.
    HeaderBytes {
        /// 8-bit header bytes before.
        before: u32,
        /// 8-bit header bytes after.
        after: u32,
    },
    /// Line endings rewritten (bare CR dropped, bare LF turned into CRLF…).
    LineEndings,
    /// A blank line added after a message that had headers only.
    HeaderEndAdded,
    /// A line ending added to a message whose last line had none.
    FinalLineEnding,
    /// NUL bytes removed or replaced.
    NulBytes,
    /// Other bytes changed (none of the above explains the difference).
    Content,
}

impl Change {
    /// Its name in the state's text.
    fn code(self) -> String {
        match self {
            Change::HeaderBytes { before, after } => format!("header-bytes:{before}:{after}"),
            Change::LineEndings => "line-endings".into(),
            Change::HeaderEndAdded => "header-end".into(),
            Change::FinalLineEnding => "final-eol".into(),
            Change::NulBytes => "nul".into(),
            Change::Content => "content".into(),
        }
    }

    fn parse(code: &str) -> Option<Change> {
        Some(match code {
            "line-endings" => Change::LineEndings,
            "header-end" => Change::HeaderEndAdded,
            "final-eol" => Change::FinalLineEnding,
            "nul" => Change::NulBytes,
            "content" => Change::Content,
            _ => {
                let mut p = code.strip_prefix("header-bytes:")?.split(':');
                let before = p.next()?.parse().ok()?;
                let after = p.next()?.parse().ok()?;
                Change::HeaderBytes { before, after }
            }
        })
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::HeaderBytes { before, after } => {
                write!(f, "8-bit header bytes replaced ({before} before, {after} after)")
            }
            Change::LineEndings => f.write_str("line endings rewritten"),
            Change::HeaderEndAdded => f.write_str("a blank line added after the headers"),
            Change::FinalLineEnding => f.write_str("a line ending added at the end"),
            Change::NulBytes => f.write_str("NUL bytes changed"),
            Change::Content => f.write_str("other bytes changed"),
        }
    }
}

/// What differs between a source message and the target's copy; empty when
/// they are the same bytes.
pub fn changes(source: &Shape, target: &Shape) -> Vec<Change> {
    let same = match (source.sha256, target.sha256) {
        (Some(a), Some(b)) => a == b,
        _ => source == target,
    };
    if same {
        return Vec::new();
    }
    let mut out = Vec::new();
    if source.header_8bit != target.header_8bit {
        out.push(Change::HeaderBytes { before: source.header_8bit, after: target.header_8bit });
    }
    if !source.header_end && target.header_end {
        out.push(Change::HeaderEndAdded);
    }
    if !source.final_eol && target.final_eol {
        out.push(Change::FinalLineEnding);
    }
    // A blank line or a final line ending added counts a CRLF more: not a
    // line ending rewritten.
    let added = u32::from(!source.header_end && target.header_end) + u32::from(!source.final_eol && target.final_eol);
    let bare_changed = (source.bare_cr, source.bare_lf) != (target.bare_cr, target.bare_lf);
    if bare_changed {
        out.push(Change::LineEndings);
    }
    if source.nul != target.nul {
        out.push(Change::NulBytes);
    }
    // Lines added or removed with no line ending rewritten: other content.
    let lines_changed = !bare_changed && source.crlf + added != target.crlf;
    if lines_changed && !out.contains(&Change::Content) {
        out.push(Change::Content);
    }
    if out.is_empty() {
        out.push(Change::Content);
    }
    out
}

/// A message the target stored differently: its size there and what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Alteration {
    /// RFC822.SIZE on the target.
    pub target_size: u64,
    /// What changed.
    pub changes: Vec<Change>,
}

/// An alteration's text in the state could not be read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable alteration in the sync state: {0:?}")]
pub struct BadAlteration(pub String);

impl Alteration {
    /// The text kept in the state: `SIZE CHANGE,CHANGE…`.
    pub fn encode(&self) -> String {
        let codes: Vec<String> = self.changes.iter().map(|c| c.code()).collect();
        format!("{} {}", self.target_size, codes.join(","))
    }

    /// Reads what [`Alteration::encode`] wrote.
    pub fn parse(text: &str) -> Result<Alteration, BadAlteration> {
        let bad = || BadAlteration(text.to_owned());
        let (size, codes) = text.split_once(' ').ok_or_else(bad)?;
        let target_size = size.parse().map_err(|_| bad())?;
        let changes = codes.split(',').map(|c| Change::parse(c).ok_or_else(bad)).collect::<Result<_, _>>()?;
        Ok(Alteration { target_size, changes })
    }
}

impl fmt::Display for Alteration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let words: Vec<String> = self.changes.iter().map(ToString::to_string).collect();
        write!(f, "{} bytes on the target: {}", self.target_size, words.join(", "))
    }
}

/// The Message-ID header's value (trimmed), if the header section has one.
pub fn message_id(bytes: &[u8]) -> Option<&[u8]> {
    let mut rest = bytes;
    loop {
        let end = rest.iter().position(|&b| b == b'\n');
        let line = &rest[..end.unwrap_or(rest.len())];
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return None;
        }
        if line.len() > 11 && line[..11].eq_ignore_ascii_case(b"message-id:") {
            let v = line[11..].trim_ascii();
            return (!v.is_empty()).then_some(v);
        }
        rest = &rest[end? + 1..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(b: &[u8]) -> Shape {
        Shape::of(b, true)
    }

    #[test]
    fn shapes_count_what_targets_rewrite() {
        // (bytes, header_8bit, nul, crlf, bare_lf, bare_cr, header_end, malformed, final_eol, risky)
        type Row = (&'static [u8], u32, u32, u32, u32, u32, bool, bool, bool, bool);
        let table: &[Row] = &[
            (b"Subject: a\r\n\r\nbody\r\n", 0, 0, 3, 0, 0, true, false, true, false),
            (b"Subject: Secr\xc3\xa9tariat\r\n\r\nbody\r\n", 2, 0, 3, 0, 0, true, false, true, true),
            // 8-bit bytes in the body are not header bytes.
            (b"Subject: a\r\n\r\nd\xc3\xa9j\xc3\xa0\r\n", 0, 0, 3, 0, 0, true, false, true, false),
            (b"Subject: a\r\nTo: b\r\n", 0, 0, 2, 0, 0, false, false, true, true),
            (b"Subject: a\r\n", 0, 0, 1, 0, 0, false, false, true, true),
            (b"Subject: a", 0, 0, 0, 0, 0, false, false, false, true),
            (b"Subject: a\n\nbody\n", 0, 0, 0, 3, 0, true, false, true, true),
            (b"Subject: a\r\n\r\nbo\rdy\r\n", 0, 0, 3, 0, 1, true, false, true, true),
            (b"Subject: a\r\n\r\nbo\x00dy\r\n", 0, 1, 3, 0, 0, true, false, true, true),
            (b"Subject: a\r\nno colon here\r\n\r\nb\r\n", 0, 0, 4, 0, 0, true, true, true, true),
            (b"Subject: a\r\n folded: yes\r\n\r\nb\r\n", 0, 0, 4, 0, 0, true, false, true, false),
            (b"\r\nbody only\r\n", 0, 0, 2, 0, 0, true, false, true, false),
            (b"", 0, 0, 0, 0, 0, false, false, true, true),
            (b"Subject: a\r\n\r\n", 0, 0, 2, 0, 0, true, false, true, false),
            // No line ending at the end: Courier adds one.
            (b"Subject: a\r\n\r\nbody", 0, 0, 2, 0, 0, true, false, false, true),
            // A CR at the very end is bare.
            (b"Subject: a\r\n\r\nb\r", 0, 0, 2, 0, 1, true, false, false, true),
        ];
        for &(bytes, h8, nul, crlf, lf, cr, end, malformed, final_eol, risky) in table {
            let s = shape(bytes);
            let got =
                (s.header_8bit, s.nul, s.crlf, s.bare_lf, s.bare_cr, s.header_end, s.malformed_header, s.final_eol);
            assert_eq!(got, (h8, nul, crlf, lf, cr, end, malformed, final_eol), "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(s.risky(), risky, "{:?}", String::from_utf8_lossy(bytes));
            assert_eq!(s.size, bytes.len() as u64);
        }
    }

    #[test]
    fn changes_name_what_the_target_did() {
        let cases: &[(&[u8], &[u8], &[Change])] = &[
            (b"Subject: a\r\n\r\nb\r\n", b"Subject: a\r\n\r\nb\r\n", &[]),
            // Cyrus munge8bit: same size, 8-bit header bytes become X.
            (
                b"Subject: Secr\xc3\xa9tariat\r\n\r\nb\r\n",
                b"Subject: SecrXXtariat\r\n\r\nb\r\n",
                &[Change::HeaderBytes { before: 2, after: 0 }],
            ),
            // Courier: a headers-only message gets its blank line.
            (b"Subject: a\r\nTo: b\r\n", b"Subject: a\r\nTo: b\r\n\r\n", &[Change::HeaderEndAdded]),
            // Courier: a headers-only message without a final line ending gets one.
            (b"Subject: a\r\nTo: b", b"Subject: a\r\nTo: b\r\n", &[Change::FinalLineEnding]),
            // Courier: a bare CR dropped.
            (b"Subject: a\r\n\r\nbo\rdy\r\n", b"Subject: a\r\n\r\nbody\r\n", &[Change::LineEndings]),
            // Bare LFs turned into CRLF.
            (b"Subject: a\n\nbody\n", b"Subject: a\r\n\r\nbody\r\n", &[Change::LineEndings]),
            (b"Subject: a\r\n\r\nb\x00c\r\n", b"Subject: a\r\n\r\nbc\r\n", &[Change::NulBytes]),
            (b"Subject: a\r\n\r\nbody\r\n", b"Subject: b\r\n\r\nbody\r\n", &[Change::Content]),
        ];
        for (src, tgt, want) in cases {
            assert_eq!(changes(&shape(src), &shape(tgt)), *want, "{:?}", String::from_utf8_lossy(src));
        }
    }

    #[test]
    fn alterations_survive_the_state() {
        let cases = [
            Alteration { target_size: 136, changes: vec![Change::HeaderEndAdded] },
            Alteration {
                target_size: 9000,
                changes: vec![Change::HeaderBytes { before: 13, after: 0 }, Change::LineEndings, Change::Content],
            },
            Alteration { target_size: 0, changes: vec![Change::NulBytes] },
        ];
        for a in cases {
            assert_eq!(Alteration::parse(&a.encode()).expect("parse"), a);
        }
        for bad in ["", "12", "x content", "12 what", "12 header-bytes:1", "12 content,"] {
            assert!(Alteration::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn message_ids_are_found_in_the_headers_only() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"Subject: a\r\nMessage-ID: <a@b>\r\n\r\n", Some(b"<a@b>")),
            (b"message-id:   <x@y>  \r\n\r\n", Some(b"<x@y>")),
            (b"Subject: a\r\n\r\nMessage-ID: <body@b>\r\n", None),
            (b"Subject: a\nMessage-Id: <lf@b>\n\n", Some(b"<lf@b>")),
            (b"Message-ID:\r\n\r\n", None),
            (b"Subject: a", None),
        ];
        for (bytes, want) in cases {
            assert_eq!(message_id(bytes), *want, "{:?}", String::from_utf8_lossy(bytes));
        }
    }
}
