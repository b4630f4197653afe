//! Encoded characters (RFC 5228 §2.4.2.4): `${hex:…}` and `${unicode:…}`
//! in every string of a script that requires "encoded-character".
//!
//! Rules: `${hex:` hex-pairs `}` gives octets, `${unicode:` code points
//! `}` gives characters; "hex" and "unicode" in any case; the values are
//! separated by blanks (SP, HTAB, CR, LF), leading and trailing blanks
//! allowed; a hex pair is one or two hex digits, a code point one or more.
//! A sequence that does not match this grammar is left as written (the
//! RFC's rule), so `${hex:zz}` stays `${hex:zz}`. A code point that is a
//! surrogate or above U+10FFFF is an error, and so are octets that do not
//! make UTF-8 once the whole string is decoded; the error is placed at the
//! string's first byte (escapes make the string's bytes and its value
//! differ).

use crate::ast::{Argument, Command, StringList, Test};
use crate::error::ErrorKind;

/// Decodes every string of `commands`, recursively.
pub fn decode_commands(commands: &mut [Command]) -> Result<(), (ErrorKind, usize)> {
    for c in commands {
        decode_arguments(&mut c.arguments)?;
        decode_tests(&mut c.tests)?;
        if let Some(block) = &mut c.block {
            decode_commands(block)?;
        }
    }
    Ok(())
}

fn decode_tests(tests: &mut [Test]) -> Result<(), (ErrorKind, usize)> {
    for t in tests {
        decode_arguments(&mut t.arguments)?;
        decode_tests(&mut t.tests)?;
    }
    Ok(())
}

fn decode_arguments(arguments: &mut [Argument]) -> Result<(), (ErrorKind, usize)> {
    for a in arguments {
        if let Argument::Strings(StringList { items, .. }) = a {
            for s in items {
                s.value = decode(&s.value).map_err(|kind| (kind, s.span.start))?;
            }
        }
    }
    Ok(())
}

/// `value` with its encoded characters decoded.
pub fn decode(value: &str) -> Result<String, ErrorKind> {
    if !value.contains("${") {
        return Ok(value.to_owned());
    }
    let mut out: Vec<u8> = Vec::with_capacity(value.len());
    let mut rest = value;
    while let Some(at) = rest.find("${") {
        out.extend_from_slice(&rest.as_bytes()[..at]);
        let after = &rest[at + 2..];
        match sequence(after)? {
            Some((bytes, used)) => {
                out.extend_from_slice(&bytes);
                rest = &after[used..];
            }
            None => {
                out.extend_from_slice(b"${");
                rest = after;
            }
        }
    }
    out.extend_from_slice(rest.as_bytes());
    String::from_utf8(out).map_err(|_| ErrorKind::BadEncodedCharacter("the hex octets are not UTF-8"))
}

/// One sequence after its `${`: its bytes and how much of `after` it
/// used, or `None` when it is not an encoded character.
fn sequence(after: &str) -> Result<Option<(Vec<u8>, usize)>, ErrorKind> {
    let colon = match after.find(':') {
        Some(c) if c <= "unicode".len() => c,
        _ => return Ok(None),
    };
    let hex = match &after[..colon] {
        n if n.eq_ignore_ascii_case("hex") => true,
        n if n.eq_ignore_ascii_case("unicode") => false,
        _ => return Ok(None),
    };
    let Some(close) = after[colon..].find('}').map(|c| colon + c) else { return Ok(None) };
    let body = &after[colon + 1..close];
    let blank = |c: char| matches!(c, ' ' | '\t' | '\r' | '\n');
    let words: Vec<&str> = body.split(blank).filter(|w| !w.is_empty()).collect();
    let all_hex = words.iter().all(|w| w.chars().all(|c| c.is_ascii_hexdigit()));
    if words.is_empty() || !all_hex || (hex && words.iter().any(|w| w.len() > 2)) {
        return Ok(None);
    }
    let mut bytes = Vec::new();
    for w in words {
        if hex {
            bytes.push(u8::from_str_radix(w, 16).map_err(|_| ErrorKind::BadEncodedCharacter("bad hex pair"))?);
        } else {
            let digits = w.trim_start_matches('0');
            let code = if digits.len() > 6 { None } else { u32::from_str_radix(w, 16).ok().and_then(char::from_u32) };
            let c = code.ok_or(ErrorKind::BadEncodedCharacter("not a Unicode scalar value"))?;
            bytes.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        }
    }
    Ok(Some((bytes, close + 1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_as_the_rfc_says() {
        let table: &[(&str, Result<&str, ErrorKind>)] = &[
            ("plain", Ok("plain")),
            ("${hex:40}", Ok("@")),
            ("a${HEX: 62 63 }d", Ok("abcd")),
            ("${hex:4 41}", Ok("\u{4}A")),
            ("${hex:C3 A9}t${hex:c3}${hex:a9}", Ok("été")),
            ("${unicode:40}${Unicode:1F600}", Ok("@😀")),
            ("${unicode:0000000041}", Ok("A")),
            ("${hex:zz}", Ok("${hex:zz}")),
            ("${hex:}", Ok("${hex:}")),
            ("${hex:414}", Ok("${hex:414}")),
            ("${hex:41", Ok("${hex:41")),
            ("${x}${hex:41}", Ok("${x}A")),
            ("$${hex:24}{y}", Ok("$${y}")),
            ("${unicode:D800}", Err(ErrorKind::BadEncodedCharacter("not a Unicode scalar value"))),
            ("${unicode:110000}", Err(ErrorKind::BadEncodedCharacter("not a Unicode scalar value"))),
            ("${unicode:FFFFFFFFFFFF}", Err(ErrorKind::BadEncodedCharacter("not a Unicode scalar value"))),
            ("${hex:ff}", Err(ErrorKind::BadEncodedCharacter("the hex octets are not UTF-8"))),
        ];
        for (input, want) in table {
            assert_eq!(decode(input), want.clone().map(str::to_owned), "{input:?}");
        }
    }
}
