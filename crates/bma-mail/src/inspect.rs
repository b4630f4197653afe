//! A message read back as a mail client shows it: header fields unfolded
//! and decoded (RFC 2047 encoded words), text and HTML parts decoded
//! (quoted-printable, base64). For checks on what a person receives (the
//! tests read our emails from the lab's mailboxes with it); nothing here
//! is needed to send.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::dsn::{header, parse_content_type, split_headers, split_multipart};

/// The decoded value of the first header field `name` (case-insensitive).
pub fn header_value(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let (fields, _) = split_headers(&text);
    header(&fields, &name.to_ascii_lowercase()).map(|v| decode_words(&v))
}

/// The raw (undecoded, unfolded) value of the first header field `name`.
pub fn header_raw(raw: &[u8], name: &str) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    let (fields, _) = split_headers(&text);
    header(&fields, &name.to_ascii_lowercase())
}

/// One decoded leaf part of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    /// Its MIME type, lower-cased (`text/plain`, `text/html`).
    pub mime: String,
    /// Its content, transfer encoding undone (UTF-8, lossy).
    pub body: String,
}

/// Every leaf part of a message, in order (a single-part message is one part).
pub fn parts(raw: &[u8]) -> Vec<Part> {
    let text = String::from_utf8_lossy(raw);
    let mut out = Vec::new();
    collect(&text, &mut out);
    out
}

/// The first part of type `mime` (`text/plain`, `text/html`), decoded.
pub fn part(raw: &[u8], mime: &str) -> Option<String> {
    parts(raw).into_iter().find(|p| p.mime == mime).map(|p| p.body)
}

fn collect(entity: &str, out: &mut Vec<Part>) {
    let (fields, body) = split_headers(entity);
    let content_type = header(&fields, "content-type").unwrap_or_else(|| "text/plain".to_owned());
    let (mime, params) = parse_content_type(&content_type);
    if mime.starts_with("multipart/") {
        if let Some((_, boundary)) = params.iter().find(|(k, _)| k == "boundary") {
            for p in split_multipart(body, boundary) {
                collect(p, out);
            }
        }
        return;
    }
    let encoding = header(&fields, "content-transfer-encoding").unwrap_or_default().to_ascii_lowercase();
    let bytes = match encoding.trim() {
        "quoted-printable" => quoted_printable::decode(body.as_bytes(), quoted_printable::ParseMode::Robust)
            .unwrap_or_else(|_| body.as_bytes().to_vec()),
        "base64" => {
            let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
            STANDARD.decode(compact).unwrap_or_else(|_| body.as_bytes().to_vec())
        }
        _ => body.as_bytes().to_vec(),
    };
    out.push(Part { mime, body: String::from_utf8_lossy(&bytes).into_owned() });
}

/// Decodes the RFC 2047 encoded words of a header value (`=?utf-8?b?…?=`,
/// `=?utf-8?q?…?=`); whitespace between two encoded words is dropped.
pub fn decode_words(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    let mut last_was_word = false;
    while let Some(start) = rest.find("=?") {
        let (before, from) = rest.split_at(start);
        let decoded = word(from);
        let Some((text, len)) = decoded else {
            out.push_str(before);
            out.push_str("=?");
            rest = &from[2..];
            last_was_word = false;
            continue;
        };
        if !(last_was_word && before.trim().is_empty()) {
            out.push_str(before);
        }
        out.push_str(&text);
        rest = &from[len..];
        last_was_word = true;
    }
    out.push_str(rest);
    out
}

/// One encoded word at the start of `s`: its text and its length.
fn word(s: &str) -> Option<(String, usize)> {
    let inner = s.strip_prefix("=?")?;
    let (charset, after) = inner.split_once('?')?;
    let (enc, after) = after.split_once('?')?;
    let end = after.find("?=")?;
    let payload = &after[..end];
    let len = 2 + charset.len() + 1 + enc.len() + 1 + end + 2;
    let bytes = match enc.to_ascii_lowercase().as_str() {
        "b" => STANDARD.decode(payload).ok()?,
        "q" => {
            let underscores = payload.replace('_', " ");
            quoted_printable::decode(underscores.as_bytes(), quoted_printable::ParseMode::Robust).ok()?
        }
        _ => return None,
    };
    let text = if charset.eq_ignore_ascii_case("utf-8") || charset.eq_ignore_ascii_case("us-ascii") {
        String::from_utf8_lossy(&bytes).into_owned()
    } else {
        // Latin-1 and the like: one byte, one code point.
        bytes.iter().map(|b| char::from(*b)).collect()
    };
    Some((text, len))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_words_decode() {
        let cases = [
            ("=?utf-8?b?U0dORSDigJQgTWlncmF0aW9uIEJNQQ==?= <a@b.c>", "SGNE — Migration BMA <a@b.c>"),
            ("=?utf-8?b?w6k=?= =?utf-8?b?w6k=?=", "éé"),
            ("=?UTF-8?Q?=C3=A9cole_du_Parc?=", "école du Parc"),
            ("=?iso-8859-1?q?=E9t=E9?=", "été"),
            ("plain text", "plain text"),
            ("=?broken", "=?broken"),
        ];
        for (raw, decoded) in cases {
            assert_eq!(decode_words(raw), decoded, "{raw}");
        }
    }

    #[test]
    fn parts_are_decoded() {
        let raw = "From: x@y.z\r\nContent-Type: multipart/alternative; boundary=\"B\"\r\n\r\n--B\r\n\
                   Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n\
                   caf=C3=A9 https://a.b/c=\r\nd\r\n--B\r\nContent-Type: text/html; charset=utf-8\r\n\
                   Content-Transfer-Encoding: base64\r\n\r\nPHA+w6k8L3A+\r\n--B--\r\n";
        let p = parts(raw.as_bytes());
        assert_eq!(p.len(), 2);
        assert_eq!((p[0].mime.as_str(), p[0].body.trim_end()), ("text/plain", "café https://a.b/cd"));
        assert_eq!(part(raw.as_bytes(), "text/html").as_deref(), Some("<p>é</p>"));
        assert_eq!(header_value(raw.as_bytes(), "FROM").as_deref(), Some("x@y.z"));
    }
}
