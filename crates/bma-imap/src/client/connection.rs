//! The connection: [`Config`] and [`Security`], connecting (TCP, TLS or
//! STARTTLS, the greeting), and the command machinery every other part of
//! the client uses: tags, writes, reading responses (and the state they
//! announce: capabilities, ENABLED, EXISTS, BYE, alerts), sending a command
//! with its literals, running it to completion, reading away what abandoned
//! commands left; CAPABILITY, NOOP and LOGOUT.
//!
//! Rules: every wait is bounded ([`Config::connect_timeout`] for each step
//! of the connection, [`Config::io_timeout`] for each read or write); a
//! literal is sent non-synchronising only when the server allows it, and
//! one bigger than 64 KiB is written from the caller's buffer, not copied.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{Client, Completion, Part};
use crate::codec::{self, Reader, Response, Status, Value};
use crate::error::{Error, Result, Step};
use crate::transport::{self, TlsRoots, Transport};
use crate::types::{Capabilities, ResponseCode};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// Plain TCP, no TLS (the lab on loopback).
    None,
    /// Plain TCP then STARTTLS, required: fails if the server does not offer it.
    StartTls,
    /// TLS from the first byte (`imaps`, port 993).
    Tls,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host name or IP address (also the TLS server name).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// TLS mode.
    pub security: Security,
    /// Turn certificate verification off. Only on explicit request.
    pub insecure: bool,
    /// Certificates trusted.
    pub roots: TlsRoots,
    /// Time allowed for TCP connect, TLS handshake and greeting, each.
    pub connect_timeout: Duration,
    /// Time allowed for each read or write to make progress; `None` waits forever.
    pub io_timeout: Option<Duration>,
    /// Biggest literal accepted from the server (a message body), in bytes.
    pub max_literal: u64,
    /// Longest response line accepted (literals excluded), in bytes.
    pub max_line: usize,
    /// How many APPENDs an [`AppendPipeline`](super::AppendPipeline) keeps in flight (with LITERAL+).
    pub append_depth: usize,
    /// Literals bigger than this are sent synchronising even with LITERAL+,
    /// so that the server can refuse a big APPEND (quota, size) before the
    /// bytes are sent; costs one round trip per big message.
    pub sync_literal_above: usize,
}

impl Config {
    /// Defaults: STARTTLS required, verification on, 30 s connect, 120 s I/O,
    /// 1 GiB literals, 1 MiB lines, 16 APPENDs in flight, synchronising
    /// literals above 4 MiB.
    pub fn new(host: impl Into<String>, port: u16) -> Config {
        Config {
            host: host.into(),
            port,
            security: Security::StartTls,
            insecure: false,
            roots: TlsRoots::default(),
            connect_timeout: Duration::from_secs(30),
            io_timeout: Some(Duration::from_secs(120)),
            max_literal: 1 << 30,
            max_line: 1 << 20,
            append_depth: 16,
            sync_literal_above: 4 << 20,
        }
    }

    /// The same with another security mode.
    pub fn with_security(mut self, security: Security) -> Config {
        self.security = security;
        self
    }
}

async fn step<T>(d: Duration, s: Step, fut: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::time::timeout(d, fut).await.map_err(|_| Error::Timeout(s))?
}

impl Client {
    /// Connects, reads the greeting, negotiates TLS as configured, and learns the capabilities.
    pub async fn connect(config: &Config) -> Result<Client> {
        let addr = format!("{}:{}", config.host, config.port);
        let tcp = step(config.connect_timeout, Step::Connect, async {
            TcpStream::connect((config.host.as_str(), config.port))
                .await
                .map_err(|source| Error::Connect { addr: addr.clone(), source })
        })
        .await?;
        tcp.set_nodelay(true).map_err(|source| Error::Connect { addr, source })?;
        let connector = match config.security {
            Security::None => None,
            _ => Some(transport::connector(&config.roots, config.insecure)?),
        };
        let stream = match (&connector, config.security) {
            (Some(c), Security::Tls) => {
                step(config.connect_timeout, Step::TlsHandshake, transport::handshake(c, &config.host, tcp)).await?
            }
            _ => Transport::Plain(tcp),
        };
        let mut client = Client {
            stream,
            reader: Reader::new(config.max_line, config.max_literal, config.io_timeout),
            config: config.clone(),
            caps: Capabilities::default(),
            enabled: BTreeSet::new(),
            next_tag: 1,
            abandoned: Vec::new(),
            broken: false,
            caps_seen: 0,
            bye: None,
            exists: None,
            wbuf: Vec::with_capacity(4096),
        };
        let greeting = step(config.connect_timeout, Step::Greeting, client.recv()).await?;
        match greeting {
            Response::Status { tag: None, status: Status::Ok | Status::PreAuth, code, .. } => {
                if let Some(ResponseCode::Capability(c)) = code {
                    client.caps = c;
                }
            }
            Response::Status { tag: None, status: Status::Bye, text, .. } => return Err(Error::Bye(text)),
            other => return Err(Error::Protocol(format!("unexpected greeting {other:?}"))),
        }
        if client.caps.iter().next().is_none() {
            client.capability().await?;
        }
        if config.security == Security::StartTls {
            client.starttls(connector.as_ref().ok_or_else(|| Error::Tls("no connector".into()))?).await?;
        }
        Ok(client)
    }

    pub(super) async fn starttls(&mut self, connector: &tokio_rustls::TlsConnector) -> Result<()> {
        if !self.caps.starttls() {
            return Err(Error::StartTlsUnavailable);
        }
        let d = self.config.connect_timeout;
        step(d, Step::StartTls, async { self.simple("STARTTLS", vec![Part::Text(b"STARTTLS".to_vec())]).await })
            .await?;
        if self.reader.buffered() > 0 {
            return Err(Error::Protocol("data after STARTTLS response (possible injection)".into()));
        }
        let Transport::Plain(tcp) = std::mem::replace(&mut self.stream, Transport::Gone) else {
            return Err(Error::Tls("STARTTLS on a connection that is not plain TCP".into()));
        };
        self.stream = step(d, Step::TlsHandshake, transport::handshake(connector, &self.config.host, tcp)).await?;
        self.caps = Capabilities::default();
        self.capability().await?;
        Ok(())
    }

    /// The capabilities known now (refreshed after TLS and login).
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Extensions turned on with ENABLE (upper-cased).
    pub fn enabled(&self) -> &BTreeSet<String> {
        &self.enabled
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// EXISTS as last announced by the server in the selected mailbox.
    pub fn exists(&self) -> Option<u32> {
        self.exists
    }

    pub(super) fn tag(&mut self) -> String {
        let t = format!("A{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    pub(super) async fn write(&mut self, bytes: &[u8]) -> Result<()> {
        let fut = async {
            self.stream.write_all(bytes).await?;
            self.stream.flush().await
        };
        match self.config.io_timeout {
            Some(d) => tokio::time::timeout(d, fut).await.map_err(|_| Error::IoTimeout)??,
            None => fut.await?,
        }
        Ok(())
    }

    pub(super) async fn write_wbuf(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.wbuf);
        let r = self.write(&buf).await;
        self.wbuf = buf;
        self.wbuf.clear();
        r
    }

    /// Reads and parses one response, keeping track of state announced in it.
    pub(super) async fn recv(&mut self) -> Result<Response> {
        let raw = match self.reader.read_response(&mut self.stream).await {
            Ok(raw) => raw,
            Err(Error::ConnectionClosed) => {
                return Err(self.bye.clone().map_or(Error::ConnectionClosed, Error::Bye));
            }
            Err(e) => return Err(e),
        };
        let r = codec::parse(raw)?;
        match &r {
            Response::Status { status: Status::Bye, text, .. } => self.bye = Some(text.clone()),
            Response::Status { code: Some(ResponseCode::Capability(c)), .. } => {
                self.caps = c.clone();
                self.caps_seen += 1;
            }
            Response::Status { tag: None, code: Some(ResponseCode::Alert), text, .. }
                if first_alert(&self.config.host, text) =>
            {
                tracing::warn!(host = %self.config.host, "IMAP server alert: {text}");
            }
            Response::Data { name, values } if name == "CAPABILITY" => {
                self.caps = Capabilities::from_atoms(values.iter().filter_map(Value::as_str));
                self.caps_seen += 1;
            }
            Response::Data { name, values } if name == "ENABLED" => {
                self.enabled.extend(values.iter().filter_map(Value::as_str).map(str::to_ascii_uppercase));
            }
            Response::Numbered { seq, name } if name == "EXISTS" => self.exists = Some(*seq),
            _ => {}
        }
        Ok(r)
    }

    /// Reads away the completions of abandoned commands.
    pub(super) async fn drain(&mut self) -> Result<()> {
        if self.broken {
            return Err(Error::Protocol("a command was left half-written on this connection".into()));
        }
        while !self.abandoned.is_empty() {
            if let Response::Status { tag: Some(t), .. } = self.recv().await? {
                self.abandoned.retain(|a| *a != t);
            }
        }
        Ok(())
    }

    /// Whether a literal of `len` bytes may be sent without waiting for `+`.
    pub(super) fn non_sync(&self, len: usize) -> bool {
        (self.caps.literal_plus() && len <= self.config.sync_literal_above)
            || (self.caps.literal_minus() && len <= 4096)
    }

    /// Sends `tag parts...`: literals non-synchronising when allowed, else
    /// waiting for the continuation. Returns the completion if the server
    /// ended the command before taking a literal; untagged responses read on
    /// the way go to `untagged`, completions of other commands in flight to `others`.
    pub(super) async fn send(
        &mut self,
        tag: &str,
        parts: &[Part<'_>],
        untagged: &mut Vec<Response>,
        others: &mut Vec<(String, Completion)>,
    ) -> Result<Option<Completion>> {
        self.wbuf.clear();
        self.wbuf.extend_from_slice(tag.as_bytes());
        self.wbuf.push(b' ');
        for part in parts {
            match part {
                Part::Text(t) => self.wbuf.extend_from_slice(t),
                Part::Literal(data) => {
                    let plus = self.non_sync(data.len());
                    self.wbuf
                        .extend_from_slice(format!("{{{}{}}}\r\n", data.len(), if plus { "+" } else { "" }).as_bytes());
                    if !plus {
                        self.write_wbuf().await?;
                        loop {
                            match self.recv().await? {
                                Response::Continuation(_) => break,
                                Response::Status { tag: Some(t), status, code, text } if t == tag => {
                                    return Ok(Some(Completion { status, code, text }));
                                }
                                Response::Status { tag: Some(t), .. } if self.abandoned.contains(&t) => {
                                    self.abandoned.retain(|a| *a != t);
                                }
                                Response::Status { tag: Some(t), status, code, text } => {
                                    others.push((t, Completion { status, code, text }));
                                }
                                r => untagged.push(r),
                            }
                        }
                    }
                    if data.len() > 64 * 1024 {
                        self.write_wbuf().await?;
                        self.write(data).await?;
                    } else {
                        self.wbuf.extend_from_slice(data);
                    }
                }
            }
        }
        self.wbuf.extend_from_slice(b"\r\n");
        self.write_wbuf().await?;
        Ok(None)
    }

    /// Runs one command to completion; returns the untagged responses.
    pub(super) async fn run(
        &mut self,
        command: &'static str,
        parts: Vec<Part<'_>>,
    ) -> Result<(Vec<Response>, Completion)> {
        self.drain().await?;
        let tag = self.tag();
        tracing::trace!(host = %self.config.host, %tag, command, "IMAP command");
        let mut untagged = Vec::new();
        let mut others = Vec::new();
        let early = self.send(&tag, &parts, &mut untagged, &mut others).await?;
        if let Some((t, _)) = others.first() {
            return Err(Error::Protocol(format!("completion for unknown tag {t}")));
        }
        if let Some(c) = early {
            return Ok((untagged, c.into_result(command)?));
        }
        loop {
            match self.recv().await? {
                Response::Status { tag: Some(t), status, code, text } if t == tag => {
                    let c = Completion { status, code, text }.into_result(command)?;
                    return Ok((untagged, c));
                }
                Response::Status { tag: Some(t), .. } => {
                    return Err(Error::Protocol(format!("completion for unknown tag {t}")));
                }
                Response::Continuation(_) => {
                    return Err(Error::Protocol(format!("unexpected continuation during {command}")));
                }
                r => untagged.push(r),
            }
        }
    }

    pub(super) async fn simple(&mut self, command: &'static str, parts: Vec<Part<'_>>) -> Result<Completion> {
        Ok(self.run(command, parts).await?.1)
    }

    /// CAPABILITY: asks the server again.
    pub async fn capability(&mut self) -> Result<&Capabilities> {
        self.simple("CAPABILITY", vec![Part::Text(b"CAPABILITY".to_vec())]).await?;
        Ok(&self.caps)
    }

    /// NOOP (also reads what the server has to say).
    pub async fn noop(&mut self) -> Result<()> {
        self.simple("NOOP", vec![Part::Text(b"NOOP".to_vec())]).await.map(|_| ())
    }

    /// LOGOUT, then closes the connection.
    pub async fn logout(mut self) -> Result<()> {
        let r = match self.simple("LOGOUT", vec![Part::Text(b"LOGOUT".to_vec())]).await {
            Ok(_) | Err(Error::Bye(_)) | Err(Error::ConnectionClosed) => Ok(()),
            Err(e) => Err(e),
        };
        let _ = self.stream.shutdown().await;
        r
    }
}

/// Whether this server's ALERT text is new to the process: a server that
/// says the same thing on every login or command (Courier's RFC 6855
/// notice) is shown once, not once per connection. Remembers at most 64.
fn first_alert(host: &str, text: &str) -> bool {
    static SEEN: std::sync::Mutex<Vec<(String, String)>> = std::sync::Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if seen.iter().any(|(h, t)| h == host && t == text) {
        return false;
    }
    if seen.len() < 64 {
        seen.push((host.to_owned(), text.to_owned()));
    }
    true
}

#[cfg(test)]
mod tests {
    use super::first_alert;

    #[test]
    fn an_alert_is_shown_once_per_server_and_text() {
        let host = "alert-test.invalid";
        assert!(first_alert(host, "Maintenance at 22:00"));
        assert!(!first_alert(host, "Maintenance at 22:00"));
        assert!(first_alert(host, "Maintenance at 23:00"));
        assert!(first_alert("other.invalid", "Maintenance at 22:00"));
    }
}
