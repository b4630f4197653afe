//! One message through the lab's Postfix over plain SMTP, as an outside
//! sender would send it (no extensions needed), for the tests that follow
//! a message to the mailbox it lands in.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::Duration;

/// One message through SMTP (no extensions needed).
pub fn send(port: u16, from: &str, to: &str, message: &str) {
    let w = TcpStream::connect(("127.0.0.1", port)).expect("SMTP connect");
    w.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    let mut r = BufReader::new(w.try_clone().expect("clone"));
    let mut w = w;
    let expect = |r: &mut BufReader<TcpStream>, code: &str| loop {
        let mut line = String::new();
        r.read_line(&mut line).expect("SMTP reply");
        assert!(line.starts_with(code), "SMTP: expected {code}, got {line}");
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    };
    expect(&mut r, "220");
    for (cmd, code) in [
        ("EHLO tests.lab.bma.test".to_string(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".into(), "354"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes()).expect("SMTP write");
        expect(&mut r, code);
    }
    let body: String =
        message.lines().map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();
    w.write_all(format!("{body}.\r\n").as_bytes()).expect("SMTP data");
    expect(&mut r, "250");
    w.write_all(b"QUIT\r\n").expect("SMTP quit");
}
