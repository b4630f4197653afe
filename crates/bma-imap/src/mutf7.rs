//! Modified UTF-7 (RFC 3501 §5.1.3), the encoding of IMAP4rev1 mailbox names.
//!
//! Printable ASCII except `&` stands for itself, `&` is written `&-`, and every
//! other run of characters is UTF-16BE in base64 with `,` instead of `/`, no
//! padding, between `&` and `-`. [`MailboxName`] keeps the wire form, so a
//! name the server sent is sent back byte for byte even if it is not valid
//! modified UTF-7.

use std::borrow::Cow;
use std::fmt;

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,";

/// Why a wire name is not valid modified UTF-7.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid modified UTF-7 in mailbox name at byte {at}: {why}")]
pub struct Utf7Error {
    /// Byte offset of the problem in the wire name.
    pub at: usize,
    /// What is wrong.
    pub why: &'static str,
}

/// Encodes a Unicode mailbox name to modified UTF-7.
pub fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut pending: Vec<u16> = Vec::new();
    for c in name.chars() {
        if (' '..='~').contains(&c) {
            flush(&mut pending, &mut out);
            if c == '&' {
                out.push_str("&-");
            } else {
                out.push(c);
            }
        } else {
            let mut units = [0u16; 2];
            pending.extend_from_slice(c.encode_utf16(&mut units));
        }
    }
    flush(&mut pending, &mut out);
    out
}

fn flush(units: &mut Vec<u16>, out: &mut String) {
    if units.is_empty() {
        return;
    }
    out.push('&');
    let bytes: Vec<u8> = units.iter().flat_map(|u| u.to_be_bytes()).collect();
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(char::from(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out.push('-');
    units.clear();
}

fn sextet(b: u8) -> Option<u32> {
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u32)
}

/// Decodes a modified UTF-7 wire name to Unicode.
pub fn decode(wire: &str) -> Result<String, Utf7Error> {
    let bytes = wire.as_bytes();
    let mut out = String::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b != b'&' {
            if !(0x20..=0x7e).contains(&b) {
                return Err(Utf7Error { at: i, why: "byte outside printable ASCII" });
            }
            out.push(char::from(b));
            i += 1;
            continue;
        }
        let start = i;
        let end = bytes[i + 1..]
            .iter()
            .position(|&c| c == b'-')
            .map(|p| p + i + 1)
            .ok_or(Utf7Error { at: start, why: "unterminated `&` shift" })?;
        if end == i + 1 {
            out.push('&');
            i = end + 1;
            continue;
        }
        let mut acc: u32 = 0;
        let mut bits = 0u32;
        let mut units: Vec<u16> = Vec::new();
        let mut pair: Vec<u8> = Vec::with_capacity(2);
        for (k, &c) in bytes[i + 1..end].iter().enumerate() {
            let v = sextet(c).ok_or(Utf7Error { at: i + 1 + k, why: "not a modified base64 character" })?;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                pair.push(((acc >> bits) & 0xff) as u8);
                acc &= (1 << bits) - 1;
                if pair.len() == 2 {
                    units.push(u16::from_be_bytes([pair[0], pair[1]]));
                    pair.clear();
                }
            }
        }
        if !pair.is_empty() || acc != 0 || bits >= 6 {
            return Err(Utf7Error { at: start, why: "base64 run does not end on a UTF-16 boundary" });
        }
        let text = String::from_utf16(&units).map_err(|_| Utf7Error { at: start, why: "invalid UTF-16" })?;
        if text.chars().any(|c| (' '..='~').contains(&c)) {
            return Err(Utf7Error { at: start, why: "printable ASCII must not be base64-encoded" });
        }
        out.push_str(&text);
        i = end + 1;
    }
    Ok(out)
}

/// A mailbox name as it travels on the wire (modified UTF-7), with its
/// Unicode form a call away.
///
/// Built from Unicode with [`MailboxName::new`] (or `From<&str>`), or from
/// what the server sent with [`MailboxName::from_wire`].
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MailboxName {
    wire: String,
}

impl MailboxName {
    /// The mailbox called `name` (Unicode), encoded for the wire.
    pub fn new(name: &str) -> MailboxName {
        MailboxName { wire: encode(name) }
    }

    /// A name exactly as the server sent it.
    pub fn from_wire(wire: impl Into<String>) -> MailboxName {
        MailboxName { wire: wire.into() }
    }

    /// The wire form (modified UTF-7).
    pub fn wire(&self) -> &str {
        &self.wire
    }

    /// The Unicode form; the wire form itself when it is not valid modified UTF-7.
    pub fn name(&self) -> Cow<'_, str> {
        match decode(&self.wire) {
            Ok(s) => Cow::Owned(s),
            Err(_) => Cow::Borrowed(&self.wire),
        }
    }

    /// Whether this is the INBOX (case-insensitive, as RFC 3501 says).
    pub fn is_inbox(&self) -> bool {
        self.wire.eq_ignore_ascii_case("INBOX")
    }
}

impl From<&str> for MailboxName {
    fn from(name: &str) -> MailboxName {
        MailboxName::new(name)
    }
}

impl fmt::Debug for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.name())
    }
}

impl fmt::Display for MailboxName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let cases = [
            ("Éléments envoyés", "&AMk-l&AOk-ments envoy&AOk-s"),
            ("&", "&-"),
            ("Réunions & Conseils", "R&AOk-unions &- Conseils"),
            ("Projets ~ Été & Hiver", "Projets ~ &AMk-t&AOk- &- Hiver"),
            ("INBOX", "INBOX"),
            ("", ""),
            ("日本語", "&ZeVnLIqe-"),
            ("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),
            ("😀", "&2D3eAA-"),
            ("a&b&&c", "a&-b&-&-c"),
            ("\u{7f}x", "&AH8-x"),
        ];
        for (name, wire) in cases {
            assert_eq!(encode(name), wire, "encode {name:?}");
            assert_eq!(decode(wire).as_deref(), Ok(name), "decode {wire:?}");
        }
    }

    #[test]
    fn rejects_invalid() {
        for wire in ["&AMk", "&A-", "&AGE-", "é", "&AMk!-", "&2D0-"] {
            assert!(decode(wire).is_err(), "{wire:?} should be rejected");
        }
    }

    #[test]
    fn mailbox_name_keeps_invalid_wire_form() {
        let m = MailboxName::from_wire("bad&name");
        assert_eq!(m.name(), "bad&name");
        assert_eq!(m.wire(), "bad&name");
        assert_eq!(MailboxName::from("Éléments envoyés").wire(), "&AMk-l&AOk-ments envoy&AOk-s");
        assert!(MailboxName::from_wire("inbox").is_inbox());
    }
}
