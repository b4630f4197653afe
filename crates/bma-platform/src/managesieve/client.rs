//! The ManageSieve connection (RFC 5804): connect, STARTTLS, log in with
//! SASL PLAIN (a master user acting for a mailbox), and the script
//! commands.
//!
//! Rules: one connection per mailbox (ManageSieve logs in once, as one
//! user); STARTTLS by default, certificates verified with the same
//! rustls settings as `bma-imap` ([`bma_imap::tls_connector`]); plaintext
//! only when asked and only to a loopback address; every read, write, the
//! connection and the handshake bounded by a timeout; responses read by
//! the pure parser of [`super::response`]; the password is a [`Secret`],
//! written once into the AUTHENTICATE line and never logged.

use std::net::IpAddr;
use std::time::Duration;

use base64::Engine as _;
use bma_imap::{Secret, TlsRoots};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

use super::error::{SieveError, Step};
use super::response::{self, Capabilities, Limits, Line, ResponseCode, ScriptEntry, Status, Token};

/// How the connection is protected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// STARTTLS, required (ManageSieve has no implicit TLS port).
    StartTls,
    /// Plain TCP: refused unless the host is a loopback address.
    PlainOnLoopback,
}

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct Config {
    /// Host name or address (also the TLS server name).
    pub host: String,
    /// Port (4190 by default).
    pub port: u16,
    /// TLS or plaintext.
    pub security: Security,
    /// Turn certificate verification off: only on explicit request.
    pub insecure: bool,
    /// Certificates trusted.
    pub roots: TlsRoots,
    /// TCP connection and TLS handshake, each.
    pub connect_timeout: Duration,
    /// Every read and write.
    pub io_timeout: Duration,
    /// Line and literal limits.
    pub limits: Limits,
}

/// RFC 5804's port.
pub const DEFAULT_PORT: u16 = 4190;

impl Config {
    /// STARTTLS verified, 4190, 15 s connect, 30 s per read or write.
    pub fn new(host: impl Into<String>, port: u16) -> Config {
        Config {
            host: host.into(),
            port,
            security: Security::StartTls,
            insecure: false,
            roots: TlsRoots::default(),
            connect_timeout: Duration::from_secs(15),
            io_timeout: Duration::from_secs(30),
            limits: Limits::default(),
        }
    }
}

/// Who logs in.
#[derive(Debug, Clone)]
pub struct Login {
    /// The mailbox acted for (the SASL authorization identity), or `None`
    /// to log in as `user` itself.
    pub mailbox: Option<String>,
    /// Who authenticates: the mailbox, the master user, or Dovecot's
    /// `mailbox*master` form (with `mailbox: None`).
    pub user: String,
    /// The password of `user`.
    pub password: Secret,
}

impl Login {
    /// The master user `master` acting for `mailbox` (authzid = mailbox, authcid = master).
    pub fn master(mailbox: &str, master: &str, password: Secret) -> Login {
        Login { mailbox: Some(mailbox.to_owned()), user: master.to_owned(), password }
    }

    /// The mailbox's own login.
    pub fn user(user: &str, password: Secret) -> Login {
        Login { mailbox: None, user: user.to_owned(), password }
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
    /// Taken apart during STARTTLS, or after a failed handshake.
    Gone,
}

fn gone() -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::NotConnected, "connection closed")
}

/// A ManageSieve connection.
pub struct Client {
    stream: Stream,
    config: Config,
    buf: Vec<u8>,
    caps: Capabilities,
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost") || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

async fn bounded<T>(d: Duration, s: Step, fut: impl Future<Output = Result<T, SieveError>>) -> Result<T, SieveError> {
    tokio::time::timeout(d, fut).await.map_err(|_| SieveError::Timeout(s))?
}

impl Client {
    /// Connects, reads the greeting's capabilities, and with
    /// [`Security::StartTls`] upgrades the connection and reads them again.
    pub async fn connect(config: &Config) -> Result<Client, SieveError> {
        if config.security == Security::PlainOnLoopback && !is_loopback(&config.host) {
            return Err(SieveError::PlaintextRefused(config.host.clone()));
        }
        let addr = format!("{}:{}", config.host, config.port);
        let tcp = bounded(config.connect_timeout, Step::Connect, async {
            TcpStream::connect((config.host.trim_start_matches('[').trim_end_matches(']'), config.port))
                .await
                .map_err(|source| SieveError::Connect { addr: addr.clone(), source })
        })
        .await?;
        tcp.set_nodelay(true).map_err(|source| SieveError::Connect { addr, source })?;
        let mut client = Client {
            stream: Stream::Plain(tcp),
            config: config.clone(),
            buf: Vec::new(),
            caps: Capabilities::default(),
        };
        client.caps = client.read_capabilities("greeting").await?;
        if config.security == Security::StartTls {
            client.starttls().await?;
        }
        Ok(client)
    }

    async fn starttls(&mut self) -> Result<(), SieveError> {
        if !self.caps.starttls {
            return Err(SieveError::StartTlsUnavailable);
        }
        self.send(b"STARTTLS\r\n").await?;
        self.expect_ok("STARTTLS").await?;
        if !self.buf.is_empty() {
            return Err(SieveError::Unexpected { command: "STARTTLS", what: "data after the response".into() });
        }
        let connector = bma_imap::tls_connector(&self.config.roots, self.config.insecure)
            .map_err(|e| SieveError::Tls(e.to_string()))?;
        let name = rustls::pki_types::ServerName::try_from(
            self.config.host.trim_start_matches('[').trim_end_matches(']').to_owned(),
        )
        .map_err(|e| SieveError::Tls(format!("invalid server name {}: {e}", self.config.host)))?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Err(SieveError::Tls("STARTTLS twice".into()));
        };
        let tls = bounded(self.config.connect_timeout, Step::TlsHandshake, async {
            connector.connect(name, tcp).await.map_err(|e| SieveError::Tls(e.to_string()))
        })
        .await?;
        self.stream = Stream::Tls(Box::new(tls));
        // RFC 5804 §2.2: the server sends its capabilities again after TLS.
        self.caps = self.read_capabilities("STARTTLS").await?;
        Ok(())
    }

    /// The capabilities known now.
    pub fn capabilities(&self) -> &Capabilities {
        &self.caps
    }

    /// Whether the connection is encrypted.
    pub fn is_tls(&self) -> bool {
        matches!(self.stream, Stream::Tls(_))
    }

    /// `AUTHENTICATE "PLAIN"` with the initial response (authzid, authcid,
    /// password).
    pub async fn authenticate(&mut self, login: &Login) -> Result<(), SieveError> {
        if !self.caps.has_sasl("PLAIN") {
            return Err(SieveError::MechanismUnavailable("PLAIN".into()));
        }
        let mut raw = Vec::new();
        raw.extend_from_slice(login.mailbox.as_deref().unwrap_or("").as_bytes());
        raw.push(0);
        raw.extend_from_slice(login.user.as_bytes());
        raw.push(0);
        raw.extend_from_slice(login.password.expose().as_bytes());
        let mut line = b"AUTHENTICATE \"PLAIN\" ".to_vec();
        line.extend_from_slice(&response::string(base64::engine::general_purpose::STANDARD.encode(&raw).as_bytes()));
        line.extend_from_slice(b"\r\n");
        self.send(&line).await?;
        loop {
            match self.read_line().await? {
                Line::Final { status: Status::Ok, code, .. } => {
                    // A capability response may follow a negotiated security layer; PLAIN has none.
                    let _ = code;
                    return Ok(());
                }
                Line::Final { status: Status::No, code, text } => return Err(SieveError::AuthFailed { code, text }),
                Line::Final { status: Status::Bye, code, text } => return Err(SieveError::Bye { code, text }),
                Line::Data(_) => {
                    // A SASL challenge: PLAIN has none; cancel (RFC 5804 §2.1).
                    self.send(b"\"*\"\r\n").await?;
                }
            }
        }
    }

    /// Connects and logs in, in one call.
    pub async fn login(config: &Config, login: &Login) -> Result<Client, SieveError> {
        let mut client = Client::connect(config).await?;
        client.authenticate(login).await?;
        Ok(client)
    }

    /// `LISTSCRIPTS`: every script, the active one marked.
    pub async fn list_scripts(&mut self) -> Result<Vec<ScriptEntry>, SieveError> {
        self.send(b"LISTSCRIPTS\r\n").await?;
        let mut out = Vec::new();
        loop {
            match self.read_line().await? {
                Line::Data(tokens) => out.push(response::script_entry(&tokens)?),
                done => {
                    self.final_ok("LISTSCRIPTS", done)?;
                    return Ok(out);
                }
            }
        }
    }

    /// `GETSCRIPT`: the script's bytes as stored.
    pub async fn get_script(&mut self, name: &str) -> Result<Vec<u8>, SieveError> {
        self.command(b"GETSCRIPT", &[name.as_bytes()]).await?;
        let mut script = None;
        loop {
            match self.read_line().await? {
                Line::Data(mut tokens) if script.is_none() && tokens.len() == 1 => {
                    if let Some(Token::String(bytes)) = tokens.pop() {
                        script = Some(bytes);
                    } else {
                        return Err(SieveError::Unexpected { command: "GETSCRIPT", what: "not a string".into() });
                    }
                }
                Line::Data(tokens) => {
                    return Err(SieveError::Unexpected { command: "GETSCRIPT", what: format!("{tokens:?}") });
                }
                done => {
                    self.final_ok("GETSCRIPT", done)?;
                    return script
                        .ok_or_else(|| SieveError::Unexpected { command: "GETSCRIPT", what: "no script".into() });
                }
            }
        }
    }

    /// `PUTSCRIPT`: stores `script` as `name`; the server's warnings, if any.
    pub async fn put_script(&mut self, name: &str, script: &[u8]) -> Result<Option<String>, SieveError> {
        self.command(b"PUTSCRIPT", &[name.as_bytes(), script]).await?;
        self.warnings("PUTSCRIPT").await
    }

    /// `CHECKSCRIPT`: whether the server would accept `script`; its warnings, if any.
    pub async fn check_script(&mut self, script: &[u8]) -> Result<Option<String>, SieveError> {
        self.command(b"CHECKSCRIPT", &[script]).await?;
        self.warnings("CHECKSCRIPT").await
    }

    /// `SETACTIVE`: makes `name` the active script; `""` deactivates all.
    pub async fn set_active(&mut self, name: &str) -> Result<(), SieveError> {
        self.command(b"SETACTIVE", &[name.as_bytes()]).await?;
        self.expect_ok("SETACTIVE").await
    }

    /// `DELETESCRIPT`.
    pub async fn delete_script(&mut self, name: &str) -> Result<(), SieveError> {
        self.command(b"DELETESCRIPT", &[name.as_bytes()]).await?;
        self.expect_ok("DELETESCRIPT").await
    }

    /// `LOGOUT`, then the connection is closed.
    pub async fn logout(mut self) -> Result<(), SieveError> {
        self.send(b"LOGOUT\r\n").await?;
        match self.read_line().await {
            Ok(Line::Final { status: Status::Ok | Status::Bye, .. }) | Err(SieveError::Closed) => Ok(()),
            Ok(other) => Err(SieveError::Unexpected { command: "LOGOUT", what: format!("{other:?}") }),
            Err(e) => Err(e),
        }
    }

    async fn command(&mut self, name: &[u8], args: &[&[u8]]) -> Result<(), SieveError> {
        let mut line = name.to_vec();
        for arg in args {
            line.push(b' ');
            line.extend_from_slice(&response::string(arg));
        }
        line.extend_from_slice(b"\r\n");
        self.send(&line).await
    }

    async fn warnings(&mut self, command: &'static str) -> Result<Option<String>, SieveError> {
        match self.read_line().await? {
            Line::Final { status: Status::Ok, code: Some(ResponseCode::Warnings), text } => Ok(Some(text)),
            done => self.final_ok(command, done).map(|()| None),
        }
    }

    async fn expect_ok(&mut self, command: &'static str) -> Result<(), SieveError> {
        let line = self.read_line().await?;
        self.final_ok(command, line)
    }

    fn final_ok(&self, command: &'static str, line: Line) -> Result<(), SieveError> {
        match line {
            Line::Final { status: Status::Ok, .. } => Ok(()),
            Line::Final { status: Status::No, code, text } => Err(SieveError::Refused { command, code, text }),
            Line::Final { status: Status::Bye, code, text } => Err(SieveError::Bye { code, text }),
            Line::Data(tokens) => Err(SieveError::Unexpected { command, what: format!("{tokens:?}") }),
        }
    }

    async fn read_capabilities(&mut self, after: &'static str) -> Result<Capabilities, SieveError> {
        let mut caps = Capabilities::default();
        loop {
            match self.read_line().await? {
                Line::Data(tokens) => caps.add(&tokens)?,
                done => {
                    self.final_ok(after, done)?;
                    return Ok(caps);
                }
            }
        }
    }

    async fn send(&mut self, bytes: &[u8]) -> Result<(), SieveError> {
        let d = self.config.io_timeout;
        let fut = async {
            match &mut self.stream {
                Stream::Plain(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Stream::Tls(s) => {
                    s.write_all(bytes).await?;
                    s.flush().await
                }
                Stream::Gone => Err(gone()),
            }
            .map_err(SieveError::Io)
        };
        bounded(d, Step::Write, fut).await
    }

    async fn read_line(&mut self) -> Result<Line, SieveError> {
        loop {
            if let Some((tokens, used)) = response::parse_line(&self.buf, &self.config.limits)? {
                self.buf.drain(..used);
                return Ok(response::classify(tokens)?);
            }
            let mut chunk = [0u8; 16 << 10];
            let d = self.config.io_timeout;
            let n = bounded(d, Step::Read, async {
                match &mut self.stream {
                    Stream::Plain(s) => s.read(&mut chunk).await,
                    Stream::Tls(s) => s.read(&mut chunk).await,
                    Stream::Gone => Err(gone()),
                }
                .map_err(SieveError::Io)
            })
            .await?;
            if n == 0 {
                return Err(SieveError::Closed);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}
