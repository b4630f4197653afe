//! One message through the lab's Postfix over plain SMTP, as an outside
//! sender would send it (no extension needed): for the demo and the
//! cutover bench, which follow a message to the mailbox it lands in.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Result, bail};

use super::{HOST, SMTP_PORT};

/// Sends `raw` (a whole message, CRLF or LF lines) from `from` to `to`.
pub fn send_mail(from: &str, to: &str, raw: &str) -> Result<()> {
    let w = TcpStream::connect((HOST, SMTP_PORT))?;
    w.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(w.try_clone()?);
    let mut w = w;
    let mut expect = |code: &str| -> Result<()> {
        loop {
            let mut line = String::new();
            r.read_line(&mut line)?;
            if !line.starts_with(code) {
                bail!("SMTP: expected {code}, got {line}");
            }
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect("220")?;
    for (cmd, code) in [
        ("EHLO xtask.lab.bma.test".to_owned(), "250"),
        (format!("MAIL FROM:<{from}>"), "250"),
        (format!("RCPT TO:<{to}>"), "250"),
        ("DATA".to_owned(), "354"),
    ] {
        w.write_all(format!("{cmd}\r\n").as_bytes())?;
        expect(code)?;
    }
    // Dot-stuffed, CRLF lines.
    let body: String =
        raw.lines().map(|l| if l.starts_with('.') { format!(".{l}\r\n") } else { format!("{l}\r\n") }).collect();
    w.write_all(format!("{body}.\r\n").as_bytes())?;
    expect("250")?;
    w.write_all(b"QUIT\r\n")?;
    Ok(())
}
