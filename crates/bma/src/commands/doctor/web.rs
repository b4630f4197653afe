//! One HTTP/1.1 exchange over a verified TLS stream, for `bma doctor
//! autoconfig`'s URLs, and what their answers must name.
//!
//! Rules: `Connection: close`, the whole answer read under the doctor's
//! timeout (at most 1 MiB), a chunked body decoded; redirects are not
//! followed (a client that is redirected for its configuration warns the
//! person, so a redirect is reported as it is). A server that closes
//! without TLS's close_notify after a complete answer is not an error
//! (many do).

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

/// The largest answer read.
const MAX: usize = 1 << 20;

/// An HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Its status code.
    pub status: u16,
    /// Its `Content-Type`, if any.
    pub content_type: Option<String>,
    /// Its body, decoded from chunks.
    pub body: Vec<u8>,
}

/// A request: method, `Host` (with its port when not 443), path and query, body.
pub struct Request<'a> {
    /// `GET` or `POST`.
    pub method: &'a str,
    /// The `Host` header.
    pub host: &'a str,
    /// Path and query.
    pub target: &'a str,
    /// Content type and bytes of a POST.
    pub body: Option<(&'a str, &'a [u8])>,
}

/// Sends `request` on `stream` and reads the whole answer.
pub async fn exchange(
    mut stream: TlsStream<TcpStream>,
    request: &Request<'_>,
    timeout: Duration,
) -> Result<Answer, String> {
    let mut head = format!(
        "{} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bma-doctor\r\nAccept: */*\r\nConnection: close\r\n",
        request.method, request.target, request.host
    );
    if let Some((kind, body)) = request.body {
        head.push_str(&format!("Content-Type: {kind}\r\nContent-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let work = async {
        stream.write_all(head.as_bytes()).await.map_err(|e| e.to_string())?;
        if let Some((_, body)) = request.body {
            stream.write_all(body).await.map_err(|e| e.to_string())?;
        }
        stream.flush().await.map_err(|e| e.to_string())?;
        let mut raw = Vec::new();
        let mut buf = [0u8; 16384];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) => break,
                Ok(n) => {
                    raw.extend_from_slice(&buf[..n]);
                    if raw.len() > MAX {
                        return Err(format!("the answer is larger than {MAX} bytes"));
                    }
                }
                // no close_notify: the answer read so far is judged whole or not below
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && !raw.is_empty() => break,
                Err(e) => return Err(e.to_string()),
            }
        }
        Ok(raw)
    };
    let raw = tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| format!("no complete answer within {} s", timeout.as_secs().max(1)))??;
    parse(&raw)
}

/// An answer's status, type and body.
fn parse(raw: &[u8]) -> Result<Answer, String> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").ok_or("the answer has no complete header")?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .filter(|_| status_line.starts_with("HTTP/1."))
        .ok_or_else(|| format!("not an HTTP answer: {status_line:?}"))?;
    let mut content_type = None;
    let mut chunked = false;
    let mut length = None;
    for l in lines {
        let Some((name, value)) = l.split_once(':') else { continue };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-type" => content_type = Some(value.to_owned()),
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-length" => length = value.parse::<usize>().ok(),
            _ => {}
        }
    }
    let rest = &raw[end + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(n) = length {
        rest.get(..n).ok_or("the answer is shorter than its Content-Length")?.to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, content_type, body })
}

/// A chunked body (RFC 9112, 7.1), trailers ignored.
fn dechunk(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let eol = rest.windows(2).position(|w| w == b"\r\n").ok_or("a chunk size line is cut")?;
        let size_text = String::from_utf8_lossy(&rest[..eol]);
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| format!("a bad chunk size {size_text:?}"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok(body);
        }
        body.extend_from_slice(rest.get(..size).ok_or("a chunk is cut")?);
        rest = rest.get(size + 2..).ok_or("a chunk is cut")?;
    }
}

/// The text of the first `<tag>…</tag>` after `after` (an element's
/// opening, e.g. `<incomingServer type="imap"`), any case, trimmed.
pub fn text_after(body: &str, after: &str, tag: &str) -> Option<String> {
    let lower = body.to_ascii_lowercase();
    let from = lower.find(&after.to_ascii_lowercase())?;
    let open = format!("<{}>", tag.to_ascii_lowercase());
    let start = from + lower[from..].find(&open)? + open.len();
    let end = start + lower[start..].find('<')?;
    Some(body[start..end].trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_with_and_without_chunks() {
        let plain = parse(b"HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: 5\r\n\r\nhello").unwrap();
        assert_eq!(
            (plain.status, plain.content_type.as_deref(), plain.body.as_slice()),
            (200, Some("text/xml"), &b"hello"[..])
        );
        let chunked =
            parse(b"HTTP/1.1 404 Not Found\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n")
                .unwrap();
        assert_eq!((chunked.status, chunked.body.as_slice()), (404, &b"abcde"[..]));
        let closed = parse(b"HTTP/1.0 200 OK\r\n\r\nall of it").unwrap();
        assert_eq!(closed.body, b"all of it");
        for bad in [
            &b"SMTP 220 hello\r\n\r\n"[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
        ] {
            assert!(parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn a_tag_is_read_after_its_element() {
        let xml = "<clientConfig><incomingServer type=\"imap\"><hostname> IMAP.example.be </hostname><port>993</port>\
                   </incomingServer><outgoingServer type=\"smtp\"><hostname>smtp.example.be</hostname></outgoingServer>";
        assert_eq!(text_after(xml, "<incomingServer type=\"imap\"", "hostname").as_deref(), Some("IMAP.example.be"));
        assert_eq!(text_after(xml, "<outgoingServer", "hostname").as_deref(), Some("smtp.example.be"));
        assert_eq!(text_after(xml, "<incomingServer type=\"pop3\"", "hostname"), None);
    }
}
