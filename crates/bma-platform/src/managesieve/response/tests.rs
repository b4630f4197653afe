//! Table tests of the response grammar: every response is also read
//! split at every byte boundary (a prefix is "need more", never an error
//! nor a different answer), with literals holding CRLF, quoted escapes,
//! codes, and the limits.

use super::*;

fn s(text: &str) -> Token {
    Token::String(text.as_bytes().to_vec())
}

fn a(text: &str) -> Token {
    Token::Atom(text.to_owned())
}

fn lim() -> Limits {
    Limits { max_line: 200, max_literal: 100 }
}

/// Parses `input` whole, and checks that every proper prefix needs more.
fn whole(input: &[u8]) -> Result<(Vec<Token>, usize), ParseError> {
    for cut in 0..input.len() {
        match parse_line(&input[..cut], &lim()) {
            Ok(None) => {}
            Ok(Some((tokens, used))) => {
                // A prefix may hold a whole first line only if the input has more lines.
                assert!(used <= cut, "{input:?} cut at {cut}: used {used}");
                let full = parse_line(input, &lim()).expect("whole").expect("complete");
                assert_eq!((tokens, used), full, "{input:?} cut at {cut} read another line");
            }
            Err(e) => return Err(e),
        }
    }
    parse_line(input, &lim()).map(|r| r.expect("the whole input is a complete line"))
}

#[test]
fn lines() {
    let table: Vec<(&[u8], Vec<Token>, usize)> = vec![
        (b"OK\r\n", vec![a("OK")], 0),
        (b"OK \"Logged in.\"\r\n", vec![a("OK"), s("Logged in.")], 0),
        (b"\"SASL\" \"PLAIN LOGIN\"\r\n", vec![s("SASL"), s("PLAIN LOGIN")], 0),
        (b"\"STARTTLS\"\r\n", vec![s("STARTTLS")], 0),
        (b"\"a \\\"b\\\" \\\\c\"\r\n", vec![s("a \"b\" \\c")], 0),
        (b"\"\"\r\n", vec![s("")], 0),
        (b"\"roundcube\" ACTIVE\r\n", vec![s("roundcube"), a("ACTIVE")], 0),
        (b"{4}\r\nab\r\n\r\n", vec![s("ab\r\n")], 0),
        (b"{4+}\r\nab\r\n\r\n", vec![s("ab\r\n")], 0),
        (b"{0}\r\n\r\n", vec![s("")], 0),
        (b"{3}\r\n{3}\r\n", vec![s("{3}")], 0),
        (b"{5}\r\n\"x\")(\r\n", vec![s("\"x\")(")], 0),
        (
            b"NO (NONEXISTENT) \"There is no script\"\r\n",
            vec![a("NO"), Token::Open, a("NONEXISTENT"), Token::Close, s("There is no script")],
            0,
        ),
        (b"BYE (TRYLATER) {5}\r\nbusy.\r\n", vec![a("BYE"), Token::Open, a("TRYLATER"), Token::Close, s("busy.")], 0),
        (b"OK\r\nNO\r\n", vec![a("OK")], 4),
        (b"  OK  \r\n", vec![a("OK")], 0),
    ];
    // 0: the whole input.
    for (input, tokens, used) in table {
        let used = if used == 0 { input.len() } else { used };
        let got = whole(input).unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(input)));
        assert_eq!(got, (tokens, used), "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn errors() {
    let table: Vec<(&[u8], ParseError)> = vec![
        (b"OK\rx", syntax(2, "CR without LF")),
        (b"OK\n", syntax(2, "LF without CR")),
        (b"\"a\rb\"\r\n", syntax(2, "line break in a quoted string")),
        (b"\"a\\nb\"\r\n", syntax(2, "bad escape in a quoted string")),
        (b"{x}\r\n", syntax(0, "bad literal length")),
        (b"{}\r\n", syntax(0, "bad literal length")),
        (b"{-1}\r\n", syntax(0, "bad literal length")),
        (b"{3}x", syntax(3, "literal length not followed by CRLF")),
        (b"{101}\r\n", ParseError::LiteralTooBig { size: 101, limit: 100 }),
        (b"{99999999999999999999}\r\n", syntax(0, "bad literal length")),
        (b"OK \x01\r\n", syntax(3, "unexpected byte")),
    ];
    for (input, want) in table {
        assert_eq!(whole(input).expect_err("an error"), want, "{:?}", String::from_utf8_lossy(input));
    }
}

#[test]
fn line_limit_counts_no_literal() {
    let long = format!("\"{}\"\r\n", "x".repeat(300));
    assert_eq!(parse_line(long.as_bytes(), &lim()), Err(ParseError::LineTooLong(200)));
    // A prefix that is already too long is refused before the rest arrives.
    assert_eq!(parse_line(&long.as_bytes()[..250], &lim()), Err(ParseError::LineTooLong(200)));
    assert_eq!(parse_line("A".repeat(250).as_bytes(), &lim()), Err(ParseError::LineTooLong(200)));
    // A literal near its own limit is fine in a short line.
    let mut lit = b"{100}\r\n".to_vec();
    lit.extend(std::iter::repeat_n(b'y', 100));
    lit.extend_from_slice(b" \"tail\"\r\n");
    let (tokens, used) = parse_line(&lit, &lim()).expect("ok").expect("whole");
    assert_eq!((tokens.len(), used), (2, lit.len()));
}

#[test]
fn finals() {
    let table: Vec<(&[u8], Line)> = vec![
        (b"OK\r\n", Line::Final { status: Status::Ok, code: None, text: String::new() }),
        (b"ok \"Done\"\r\n", Line::Final { status: Status::Ok, code: None, text: "Done".into() }),
        (
            b"NO (NONEXISTENT) \"no such script\"\r\n",
            Line::Final { status: Status::No, code: Some(ResponseCode::Nonexistent), text: "no such script".into() },
        ),
        (
            b"NO (QUOTA/MAXSIZE) \"too big\"\r\n",
            Line::Final {
                status: Status::No,
                code: Some(ResponseCode::Quota(Some("MAXSIZE".into()))),
                text: "too big".into(),
            },
        ),
        (
            b"OK (SASL \"c2VydmVy\")\r\n",
            Line::Final { status: Status::Ok, code: Some(ResponseCode::Sasl("c2VydmVy".into())), text: String::new() },
        ),
        (
            b"OK (WARNINGS) \"line 2: warning\"\r\n",
            Line::Final { status: Status::Ok, code: Some(ResponseCode::Warnings), text: "line 2: warning".into() },
        ),
        (
            b"BYE (REFERRAL \"sieve://other\") \"go\"\r\n",
            Line::Final {
                status: Status::Bye,
                code: Some(ResponseCode::Referral("sieve://other".into())),
                text: "go".into(),
            },
        ),
        (
            b"NO (X-ODD \"a\" b) {7}\r\nline\r\n2\r\n",
            Line::Final {
                status: Status::No,
                code: Some(ResponseCode::Other("X-ODD".into(), vec!["a".into(), "b".into()])),
                text: "line\r\n2".into(),
            },
        ),
        (b"\"roundcube\" ACTIVE\r\n", Line::Data(vec![s("roundcube"), a("ACTIVE")])),
        (b"{2}\r\nab\r\n", Line::Data(vec![s("ab")])),
    ];
    for (input, want) in table {
        let (tokens, _) = whole(input).expect("parses");
        assert_eq!(classify(tokens).expect("classifies"), want, "{:?}", String::from_utf8_lossy(input));
    }
    for bad in [&b"NO (TRYLATER \"x\"\r\n"[..], b"OK \"a\" \"b\"\r\n", b"NO () \"x\"\r\n"] {
        let (tokens, _) = whole(bad).expect("parses");
        assert!(classify(tokens).is_err(), "{:?}", String::from_utf8_lossy(bad));
    }
}

#[test]
fn dovecot_greeting() {
    let greeting = b"\"IMPLEMENTATION\" \"Dovecot Pigeonhole\"\r\n\"SIEVE\" \"fileinto reject envelope encoded-character vacation subaddress comparator-i;ascii-numeric relational regex imap4flags copy include variables body enotify environment mailbox date index ihave duplicate mime foreverypart extracttext\"\r\n\"NOTIFY\" \"mailto\"\r\n\"SASL\" \"PLAIN LOGIN\"\r\n\"STARTTLS\"\r\n\"VERSION\" \"1.0\"\r\nOK \"Dovecot ready.\"\r\n";
    let mut caps = Capabilities::default();
    let mut at = 0;
    let last = loop {
        let (tokens, used) = parse_line(&greeting[at..], &Limits::default()).expect("ok").expect("whole");
        at += used;
        match classify(tokens).expect("line") {
            Line::Data(t) => caps.add(&t).expect("a capability"),
            f @ Line::Final { .. } => break f,
        }
    };
    assert_eq!(last, Line::Final { status: Status::Ok, code: None, text: "Dovecot ready.".into() });
    assert_eq!(at, greeting.len());
    assert_eq!(caps.implementation, "Dovecot Pigeonhole");
    assert!(caps.starttls && caps.has_sasl("plain") && !caps.has_sasl("XOAUTH2"));
    assert!(caps.sieve.iter().any(|e| e == "include") && caps.sieve.len() == 24);
    assert_eq!((caps.notify, caps.version, caps.max_redirects), (vec!["mailto".to_owned()], "1.0".to_owned(), None));
}

#[test]
fn entries() {
    assert_eq!(script_entry(&[s("a b")]), Ok(ScriptEntry { name: "a b".into(), active: false }));
    assert_eq!(script_entry(&[s("r"), a("active")]), Ok(ScriptEntry { name: "r".into(), active: true }));
    assert!(script_entry(&[a("r")]).is_err());
    assert!(script_entry(&[s("r"), a("PASSIVE")]).is_err());
    assert!(script_entry(&[]).is_err());
}

#[test]
fn strings_written() {
    let table: Vec<(&[u8], &[u8])> = vec![
        (b"roundcube", b"\"roundcube\""),
        (b"a \"b\" \\c", b"\"a \\\"b\\\" \\\\c\""),
        (b"", b"\"\""),
        (b"keep;\r\n", b"{7+}\r\nkeep;\r\n"),
        (b"\xc3\xa9t\xc3\xa9", b"\"\xc3\xa9t\xc3\xa9\""),
    ];
    for (value, want) in table {
        assert_eq!(string(value), want, "{:?}", String::from_utf8_lossy(value));
        // What we write, a server writing it back reads as the same value.
        let mut line = string(value);
        line.extend_from_slice(b"\r\n");
        let (tokens, _) = parse_line(&line, &lim()).expect("ok").expect("whole");
        assert_eq!(tokens, vec![Token::String(value.to_vec())]);
    }
    assert!(string(&[b'x'; 1025]).starts_with(b"{1025+}\r\n"));
}
