//! [`Client`]: one IMAP connection, its commands, and the streaming and
//! pipelined operations of bulk copy ([`MetaStream`], [`BodyStream`],
//! [`AppendPipeline`]).
//!
//! One task drives a connection: every method takes `&mut self`, so nothing
//! interleaves but what the client itself pipelines. A stream or pipeline
//! dropped before its end leaves its tags to the client, which reads their
//! completions away before the next command.

use std::collections::{BTreeSet, VecDeque};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::codec::{self, Reader, Response, Status, Value};
use crate::error::{Error, Result, Step};
use crate::mutf7::MailboxName;
use crate::secret::Secret;
use crate::transport::{self, TlsRoots, Transport};
use crate::types::{
    AppendUid, Capabilities, FetchedMessage, Flag, InternalDate, MailboxInfo, MessageMeta, Namespace, Namespaces,
    ResponseCode, SelectInfo, SpecialUse, StatusInfo, UidSet,
};

// QRESYNC lives in its own file; a child module, so that it uses the
// client's private command machinery.
#[path = "qresync.rs"]
pub(crate) mod qresync;

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
    /// How many APPENDs an [`AppendPipeline`] keeps in flight (with LITERAL+).
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

/// How to log in.
#[derive(Debug, Clone)]
pub enum Auth {
    /// `LOGIN user password`.
    Login {
        /// User name.
        user: String,
        /// Password.
        password: Secret,
    },
    /// `AUTHENTICATE PLAIN`; with `authzid`, `authcid` logs in as `authzid`
    /// (a Dovecot master user acting for a user).
    Plain {
        /// Authorization identity: the user to act as, if not `authcid` itself.
        authzid: Option<String>,
        /// Authentication identity: whose password this is.
        authcid: String,
        /// Password of `authcid`.
        password: Secret,
    },
    /// `AUTHENTICATE XOAUTH2` with a bearer token.
    XOAuth2 {
        /// User name.
        user: String,
        /// OAuth 2 access token.
        token: Secret,
    },
    /// `AUTHENTICATE XOAUTH2` with the bearer token held in a file, read at
    /// each login: a token refreshed there by another program serves the
    /// next connection (tokens often expire within the hour, long copies
    /// reconnect later than that).
    XOAuth2File {
        /// User name.
        user: String,
        /// The file (its content, surrounding white space trimmed).
        path: std::path::PathBuf,
    },
}

impl Auth {
    fn mechanism(&self) -> &'static str {
        match self {
            Auth::Login { .. } => "LOGIN",
            Auth::Plain { .. } => "PLAIN",
            Auth::XOAuth2 { .. } | Auth::XOAuth2File { .. } => "XOAUTH2",
        }
    }
}

/// What to do with flags in [`Client::uid_store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    /// `+FLAGS.SILENT`
    Add,
    /// `-FLAGS.SILENT`
    Remove,
    /// `FLAGS.SILENT`
    Replace,
}

/// One message to APPEND.
#[derive(Debug, Clone, Copy)]
pub struct AppendMessage<'a> {
    /// The message, byte for byte (no NUL).
    pub body: &'a [u8],
    /// Flags; those a client may not set (`\Recent`) are left out.
    pub flags: &'a [Flag],
    /// INTERNALDATE to give it.
    pub internal_date: Option<InternalDate>,
}

/// The completion of a command.
#[derive(Debug)]
struct Completion {
    status: Status,
    code: Option<ResponseCode>,
    text: String,
}

impl Completion {
    fn into_result(self, command: &'static str) -> Result<Completion> {
        match self.status {
            Status::Ok => Ok(self),
            Status::No => Err(Error::from_no(command, self.code, self.text)),
            _ => Err(Error::Bad { command, code: self.code, text: self.text }),
        }
    }
}

/// A piece of a command: text, or a string sent as a literal.
enum Part<'a> {
    Text(Vec<u8>),
    Literal(&'a [u8]),
}

/// A command on a mailbox name, for [`Client::mailbox_commands`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailboxCommand {
    /// CREATE.
    Create,
    /// SUBSCRIBE.
    Subscribe,
    /// UNSUBSCRIBE.
    Unsubscribe,
    /// DELETE.
    Delete,
}

impl MailboxCommand {
    fn name(self) -> &'static str {
        match self {
            MailboxCommand::Create => "CREATE",
            MailboxCommand::Subscribe => "SUBSCRIBE",
            MailboxCommand::Unsubscribe => "UNSUBSCRIBE",
            MailboxCommand::Delete => "DELETE",
        }
    }
}

/// One IMAP connection.
pub struct Client {
    stream: Transport,
    reader: Reader,
    config: Config,
    caps: Capabilities,
    enabled: BTreeSet<String>,
    next_tag: u64,
    /// Tags of commands sent and not completed whose results nobody waits for.
    abandoned: Vec<String>,
    /// A command was left half-written: the connection cannot be used.
    broken: bool,
    /// The text of a BYE, once received.
    bye: Option<String>,
    /// Incremented whenever the server tells its capabilities.
    caps_seen: u64,
    /// Untagged EXISTS seen last.
    exists: Option<u32>,
    wbuf: Vec<u8>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("host", &self.config.host)
            .field("port", &self.config.port)
            .field("tls", &self.stream.is_tls())
            .field("next_tag", &self.next_tag)
            .finish_non_exhaustive()
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

    async fn starttls(&mut self, connector: &tokio_rustls::TlsConnector) -> Result<()> {
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

    fn tag(&mut self) -> String {
        let t = format!("A{}", self.next_tag);
        self.next_tag += 1;
        t
    }

    async fn write(&mut self, bytes: &[u8]) -> Result<()> {
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

    async fn write_wbuf(&mut self) -> Result<()> {
        let buf = std::mem::take(&mut self.wbuf);
        let r = self.write(&buf).await;
        self.wbuf = buf;
        self.wbuf.clear();
        r
    }

    /// Reads and parses one response, keeping track of state announced in it.
    async fn recv(&mut self) -> Result<Response> {
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
            Response::Status { tag: None, code: Some(ResponseCode::Alert), text, .. } => {
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
    async fn drain(&mut self) -> Result<()> {
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
    fn non_sync(&self, len: usize) -> bool {
        (self.caps.literal_plus() && len <= self.config.sync_literal_above)
            || (self.caps.literal_minus() && len <= 4096)
    }

    /// Sends `tag parts...`: literals non-synchronising when allowed, else
    /// waiting for the continuation. Returns the completion if the server
    /// ended the command before taking a literal; untagged responses read on
    /// the way go to `untagged`, completions of other commands in flight to `others`.
    async fn send(
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
    async fn run(&mut self, command: &'static str, parts: Vec<Part<'_>>) -> Result<(Vec<Response>, Completion)> {
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

    async fn simple(&mut self, command: &'static str, parts: Vec<Part<'_>>) -> Result<Completion> {
        Ok(self.run(command, parts).await?.1)
    }

    /// CAPABILITY: asks the server again.
    pub async fn capability(&mut self) -> Result<&Capabilities> {
        self.simple("CAPABILITY", vec![Part::Text(b"CAPABILITY".to_vec())]).await?;
        Ok(&self.caps)
    }

    /// Logs in; the capabilities are refreshed afterwards.
    ///
    /// Errors: [`Error::AuthFailed`] when the server refuses (with the
    /// mechanism, the code and the server text, never the secret),
    /// [`Error::AuthUnsupported`] when the mechanism is not offered.
    pub async fn login(&mut self, auth: &Auth) -> Result<()> {
        let mechanism = auth.mechanism();
        let seen = self.caps_seen;
        let result = match auth {
            Auth::Login { user, password } => {
                if self.caps.login_disabled() {
                    return Err(Error::AuthUnsupported("LOGIN"));
                }
                let mut parts = vec![Part::Text(b"LOGIN ".to_vec())];
                push_astring(&mut parts, user.as_bytes());
                parts.push(Part::Text(b" ".to_vec()));
                push_astring(&mut parts, password.expose().as_bytes());
                self.simple("LOGIN", parts).await.map(|_| ())
            }
            Auth::Plain { authzid, authcid, password } => {
                let mut ir = Vec::new();
                ir.extend_from_slice(authzid.as_deref().unwrap_or("").as_bytes());
                ir.push(0);
                ir.extend_from_slice(authcid.as_bytes());
                ir.push(0);
                ir.extend_from_slice(password.expose().as_bytes());
                self.authenticate("PLAIN", Secret::new(B64.encode(&ir))).await
            }
            Auth::XOAuth2 { user, token } => {
                let ir = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
                self.authenticate("XOAUTH2", Secret::new(B64.encode(ir.as_bytes()))).await
            }
            Auth::XOAuth2File { user, path } => {
                let token = tokio::fs::read_to_string(path)
                    .await
                    .map_err(|e| Error::TokenFile(format!("{}: {e}", path.display())))?;
                let token = Secret::new(token.trim());
                let ir = format!("user={user}\x01auth=Bearer {}\x01\x01", token.expose());
                self.authenticate("XOAUTH2", Secret::new(B64.encode(ir.as_bytes()))).await
            }
        };
        match result {
            Ok(()) => {}
            Err(Error::No { code, text, .. } | Error::Bad { code, text, .. }) => {
                return Err(Error::AuthFailed { mechanism, code, text });
            }
            Err(e) => return Err(e),
        }
        // Servers often send the new capabilities with the tagged OK; ask only if not.
        if self.caps_seen == seen {
            self.capability().await?;
        }
        Ok(())
    }

    async fn authenticate(&mut self, mechanism: &'static str, response: Secret) -> Result<()> {
        if !self.caps.has_auth(mechanism) {
            return Err(Error::AuthUnsupported(mechanism));
        }
        self.drain().await?;
        let tag = self.tag();
        let ir = self.caps.sasl_ir();
        let line = if ir {
            format!("{tag} AUTHENTICATE {mechanism} {}\r\n", response.expose())
        } else {
            format!("{tag} AUTHENTICATE {mechanism}\r\n")
        };
        self.write(line.as_bytes()).await?;
        let mut sent = ir;
        let mut challenge = None;
        loop {
            match self.recv().await? {
                Response::Continuation(text) => {
                    if !sent {
                        let reply = format!("{}\r\n", response.expose());
                        self.write(reply.as_bytes()).await?;
                        sent = true;
                    } else {
                        // A challenge after our response is an error report (XOAUTH2):
                        // answer with an empty response, the server then says NO.
                        challenge = B64.decode(text.trim()).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
                        self.write(b"\r\n").await?;
                    }
                }
                Response::Status { tag: Some(t), status, code, mut text } if t == tag => {
                    if let Some(c) = &challenge {
                        text = format!("{text} ({c})");
                    }
                    return Completion { status, code, text }.into_result("AUTHENTICATE").map(|_| ());
                }
                _ => {}
            }
        }
    }

    /// ENABLE: turns on the given extensions (those advertised); returns those enabled.
    pub async fn enable(&mut self, extensions: &[&str]) -> Result<Vec<String>> {
        if !self.caps.enable() {
            return Err(Error::Unsupported("ENABLE"));
        }
        let wanted: Vec<&str> = extensions.iter().copied().filter(|e| self.caps.has(e)).collect();
        if wanted.is_empty() {
            return Ok(Vec::new());
        }
        let (untagged, _) =
            self.run("ENABLE", vec![Part::Text(format!("ENABLE {}", wanted.join(" ")).into_bytes())]).await?;
        Ok(untagged
            .iter()
            .filter_map(|r| match r {
                Response::Data { name, values } if name == "ENABLED" => Some(values),
                _ => None,
            })
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_ascii_uppercase)
            .collect())
    }

    /// Turns on QRESYNC and CONDSTORE when the server has them (ENABLE);
    /// returns whether mod-sequences are available.
    pub async fn enable_modseq(&mut self) -> Result<bool> {
        if !self.caps.condstore() {
            return Ok(false);
        }
        if self.caps.enable() {
            self.enable(&["CONDSTORE", "QRESYNC"]).await?;
        }
        Ok(true)
    }

    /// NAMESPACE (an empty personal namespace with the LIST delimiter when not supported).
    pub async fn namespace(&mut self) -> Result<Namespaces> {
        if !self.caps.namespace() {
            let (untagged, _) = self.run("LIST", vec![Part::Text(b"LIST \"\" \"\"".to_vec())]).await?;
            let delimiter = untagged.iter().find_map(|r| match r {
                Response::Data { name, values } if name == "LIST" => values.get(1).and_then(delimiter_of),
                _ => None,
            });
            let personal = vec![Namespace { prefix: MailboxName::from_wire(""), delimiter }];
            return Ok(Namespaces { personal, ..Namespaces::default() });
        }
        let (untagged, _) = self.run("NAMESPACE", vec![Part::Text(b"NAMESPACE".to_vec())]).await?;
        let values = untagged
            .into_iter()
            .find_map(|r| match r {
                Response::Data { name, values } if name == "NAMESPACE" => Some(values),
                _ => None,
            })
            .ok_or_else(|| Error::Protocol("no NAMESPACE response".into()))?;
        let group = |v: Option<&Value>| -> Vec<Namespace> {
            v.and_then(Value::as_list)
                .unwrap_or(&[])
                .iter()
                .filter_map(|ns| {
                    let ns = ns.as_list()?;
                    Some(Namespace {
                        prefix: MailboxName::from_wire(ns.first()?.as_str()?),
                        delimiter: ns.get(1).and_then(delimiter_of),
                    })
                })
                .collect()
        };
        Ok(Namespaces { personal: group(values.first()), other: group(values.get(1)), shared: group(values.get(2)) })
    }

    /// Every mailbox, with special use and subscription: `LIST "" "*" RETURN
    /// (SUBSCRIBED SPECIAL-USE)` when LIST-EXTENDED is there, else LIST then LSUB.
    pub async fn list(&mut self) -> Result<Vec<MailboxInfo>> {
        if self.caps.list_extended() {
            let ret = if self.caps.special_use() { "RETURN (SUBSCRIBED SPECIAL-USE)" } else { "RETURN (SUBSCRIBED)" };
            let cmd = format!("LIST \"\" \"*\" {ret}");
            let (untagged, _) = self.run("LIST", vec![Part::Text(cmd.into_bytes())]).await?;
            return Ok(untagged.into_iter().filter_map(|r| parse_list(r, "LIST")).collect());
        }
        let (untagged, _) = self.run("LIST", vec![Part::Text(b"LIST \"\" \"*\"".to_vec())]).await?;
        let mut all: Vec<MailboxInfo> = untagged.into_iter().filter_map(|r| parse_list(r, "LIST")).collect();
        let (untagged, _) = self.run("LSUB", vec![Part::Text(b"LSUB \"\" \"*\"".to_vec())]).await?;
        let subscribed: BTreeSet<MailboxName> =
            untagged.into_iter().filter_map(|r| parse_list(r, "LSUB")).map(|m| m.name).collect();
        for m in &mut all {
            m.subscribed = subscribed.contains(&m.name);
        }
        Ok(all)
    }

    /// SELECT (read-write), with CONDSTORE when the server has it.
    pub async fn select(&mut self, mailbox: &MailboxName) -> Result<SelectInfo> {
        self.open("SELECT", mailbox).await
    }

    /// EXAMINE (read-only), with CONDSTORE when the server has it.
    pub async fn examine(&mut self, mailbox: &MailboxName) -> Result<SelectInfo> {
        self.open("EXAMINE", mailbox).await
    }

    async fn open(&mut self, command: &'static str, mailbox: &MailboxName) -> Result<SelectInfo> {
        let params = if self.caps.condstore() { " (CONDSTORE)" } else { "" };
        Ok(self.open_with(command, mailbox, params).await?.0)
    }

    /// `command mailbox params`: what it tells, and the untagged responses
    /// that are not about the mailbox as a whole (FETCH, VANISHED, ...).
    async fn open_with(
        &mut self,
        command: &'static str,
        mailbox: &MailboxName,
        params: &str,
    ) -> Result<(SelectInfo, Vec<Response>)> {
        let mut cmd = format!("{command} ").into_bytes();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        cmd.extend_from_slice(params.as_bytes());
        self.exists = None;
        let (untagged, done) = self.run(command, vec![Part::Text(cmd)]).await?;
        let mut rest = Vec::new();
        let mut info =
            SelectInfo { read_only: matches!(done.code, Some(ResponseCode::ReadOnly)), ..SelectInfo::default() };
        let mut have_validity = false;
        for r in untagged {
            match r {
                Response::Numbered { seq, name } if name == "EXISTS" => info.exists = seq,
                Response::Numbered { seq, name } if name == "RECENT" => info.recent = seq,
                Response::Data { name, values } if name == "FLAGS" => info.flags = flags_of(values.first()),
                Response::Status { tag: None, code: Some(code), .. } => match code {
                    ResponseCode::UidValidity(v) => {
                        info.uid_validity = v;
                        have_validity = true;
                    }
                    ResponseCode::UidNext(n) => info.uid_next = Some(n),
                    ResponseCode::HighestModSeq(m) => info.highest_modseq = Some(m),
                    ResponseCode::PermanentFlags(f) => info.permanent_flags = f,
                    _ => {}
                },
                r => rest.push(r),
            }
        }
        if !have_validity {
            return Err(Error::Protocol(format!("{command} without UIDVALIDITY")));
        }
        Ok((info, rest))
    }

    /// The STATUS command for `mailbox`: MESSAGES UIDNEXT UIDVALIDITY UNSEEN,
    /// HIGHESTMODSEQ (CONDSTORE) and SIZE (STATUS=SIZE).
    fn status_command(&self, mailbox: &MailboxName) -> Vec<u8> {
        let mut cmd = b"STATUS ".to_vec();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        cmd.extend_from_slice(b" (MESSAGES UIDNEXT UIDVALIDITY UNSEEN");
        if self.caps.condstore() {
            cmd.extend_from_slice(b" HIGHESTMODSEQ");
        }
        if self.caps.has("STATUS=SIZE") {
            cmd.extend_from_slice(b" SIZE");
        }
        cmd.push(b')');
        cmd
    }

    /// STATUS: MESSAGES UIDNEXT UIDVALIDITY UNSEEN, HIGHESTMODSEQ (CONDSTORE) and SIZE (STATUS=SIZE).
    pub async fn status(&mut self, mailbox: &MailboxName) -> Result<StatusInfo> {
        let cmd = self.status_command(mailbox);
        let (untagged, _) = self.run("STATUS", vec![Part::Text(cmd)]).await?;
        Ok(untagged.iter().find_map(|r| status_of(r).map(|(_, info)| info)).unwrap_or_default())
    }

    /// STATUS of several mailboxes, pipelined (one round trip): one result
    /// per mailbox, in order; a mailbox the server refuses is an `Err` in
    /// its place, a lost connection the `Err` of the whole call.
    pub async fn status_many(&mut self, mailboxes: &[&MailboxName]) -> Result<Vec<Result<StatusInfo>>> {
        let commands = mailboxes.iter().map(|m| ("STATUS", self.status_command(m))).collect();
        let (untagged, done) = self.pipeline(commands).await?;
        // Each STATUS response names its mailbox; when a server writes the
        // name differently (INBOX in another case, a literal), the responses
        // are taken in order, as the server answers commands in order.
        let mut by_name: Vec<(String, StatusInfo)> = untagged.iter().filter_map(status_of).collect();
        let mut out = Vec::with_capacity(mailboxes.len());
        for (m, d) in mailboxes.iter().zip(done) {
            out.push(d.map(|_| {
                let wire = m.wire();
                let i = by_name
                    .iter()
                    .position(|(n, _)| n == wire || (m.is_inbox() && n.eq_ignore_ascii_case("INBOX")))
                    .unwrap_or(0);
                if by_name.is_empty() { StatusInfo::default() } else { by_name.remove(i).1 }
            }));
        }
        Ok(out)
    }

    /// Mailbox commands (CREATE, SUBSCRIBE, ...), pipelined (one round
    /// trip), run by the server in the order given: one result per command;
    /// a lost connection is the `Err` of the whole call.
    pub async fn mailbox_commands(&mut self, commands: &[(MailboxCommand, &MailboxName)]) -> Result<Vec<Result<()>>> {
        let commands = commands
            .iter()
            .map(|(c, m)| {
                let name = c.name();
                let mut cmd = format!("{name} ").into_bytes();
                codec::push_quoted(&mut cmd, m.wire().as_bytes());
                (name, cmd)
            })
            .collect();
        let (_, done) = self.pipeline(commands).await?;
        Ok(done.into_iter().map(|d| d.map(|_| ())).collect())
    }

    /// Sends text-only commands back to back, then reads their completions:
    /// the untagged responses, and each command's completion in order.
    async fn pipeline(
        &mut self,
        commands: Vec<(&'static str, Vec<u8>)>,
    ) -> Result<(Vec<Response>, Vec<Result<Completion>>)> {
        self.drain().await?;
        let mut tags = Vec::with_capacity(commands.len());
        let mut buf = Vec::new();
        for (name, text) in &commands {
            let tag = self.tag();
            tracing::trace!(host = %self.config.host, %tag, command = name, "IMAP command (pipelined)");
            buf.extend_from_slice(tag.as_bytes());
            buf.push(b' ');
            buf.extend_from_slice(text);
            buf.extend_from_slice(b"\r\n");
            tags.push(tag);
        }
        if commands.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        self.write(&buf).await?;
        let mut done: Vec<Option<Completion>> = commands.iter().map(|_| None).collect();
        let mut untagged = Vec::new();
        let mut left = commands.len();
        while left > 0 {
            match self.recv().await? {
                Response::Status { tag: Some(t), status, code, text } => {
                    let Some(i) = tags.iter().position(|x| *x == t) else {
                        return Err(Error::Protocol(format!("completion for unknown tag {t}")));
                    };
                    if done[i].replace(Completion { status, code, text }).is_none() {
                        left -= 1;
                    }
                }
                Response::Continuation(_) => {
                    return Err(Error::Protocol("unexpected continuation in a pipeline".into()));
                }
                r => untagged.push(r),
            }
        }
        let results = done
            .into_iter()
            .zip(&commands)
            .map(|(d, (name, _))| d.expect("every tag completed").into_result(name))
            .collect();
        Ok((untagged, results))
    }

    async fn mailbox_command(&mut self, command: &'static str, mailbox: &MailboxName) -> Result<()> {
        let mut cmd = format!("{command} ").into_bytes();
        codec::push_quoted(&mut cmd, mailbox.wire().as_bytes());
        self.simple(command, vec![Part::Text(cmd)]).await.map(|_| ())
    }

    /// CREATE.
    pub async fn create(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("CREATE", mailbox).await
    }

    /// DELETE.
    pub async fn delete(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("DELETE", mailbox).await
    }

    /// SUBSCRIBE.
    pub async fn subscribe(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("SUBSCRIBE", mailbox).await
    }

    /// UNSUBSCRIBE.
    pub async fn unsubscribe(&mut self, mailbox: &MailboxName) -> Result<()> {
        self.mailbox_command("UNSUBSCRIBE", mailbox).await
    }

    /// NOOP (also reads what the server has to say).
    pub async fn noop(&mut self) -> Result<()> {
        self.simple("NOOP", vec![Part::Text(b"NOOP".to_vec())]).await.map(|_| ())
    }

    /// UNSELECT when supported, else CLOSE (which expunges: avoid on a source).
    pub async fn unselect(&mut self) -> Result<()> {
        if !self.caps.has("UNSELECT") {
            return Err(Error::Unsupported("UNSELECT"));
        }
        self.simple("UNSELECT", vec![Part::Text(b"UNSELECT".to_vec())]).await.map(|_| ())
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

    /// UID STORE of flags (silent), in the selected mailbox.
    pub async fn uid_store(&mut self, uids: &UidSet, mode: StoreMode, flags: &[Flag]) -> Result<()> {
        non_empty(uids)?;
        let op = match mode {
            StoreMode::Add => "+FLAGS.SILENT",
            StoreMode::Remove => "-FLAGS.SILENT",
            StoreMode::Replace => "FLAGS.SILENT",
        };
        let cmd = format!("UID STORE {uids} {op} ({})", flag_list(flags));
        self.simple("UID STORE", vec![Part::Text(cmd.into_bytes())]).await.map(|_| ())
    }

    /// UID EXPUNGE (UIDPLUS): expunges only these UIDs, if marked `\Deleted`.
    pub async fn uid_expunge(&mut self, uids: &UidSet) -> Result<()> {
        non_empty(uids)?;
        if !self.caps.uidplus() {
            return Err(Error::Unsupported("UIDPLUS"));
        }
        let cmd = format!("UID EXPUNGE {uids}");
        self.simple("UID EXPUNGE", vec![Part::Text(cmd.into_bytes())]).await.map(|_| ())
    }

    /// EXPUNGE (RFC 3501): removes every `\Deleted` message of the selected
    /// mailbox, whoever marked it; prefer [`Client::uid_expunge`].
    pub async fn expunge(&mut self) -> Result<()> {
        self.simple("EXPUNGE", vec![Part::Text(b"EXPUNGE".to_vec())]).await.map(|_| ())
    }

    /// UID FETCH of metadata (UID FLAGS INTERNALDATE RFC822.SIZE, and MODSEQ
    /// with CONDSTORE) for `uids` in the selected mailbox, streamed; with
    /// `changed_since`, only messages whose MODSEQ is greater (CHANGEDSINCE).
    pub async fn fetch_meta(&mut self, uids: &UidSet, changed_since: Option<u64>) -> Result<MetaStream<'_>> {
        non_empty(uids)?;
        let condstore = self.caps.condstore();
        if changed_since.is_some() && !condstore {
            return Err(Error::Unsupported("CONDSTORE"));
        }
        let mut cmd =
            format!("UID FETCH {uids} (UID FLAGS INTERNALDATE RFC822.SIZE{})", if condstore { " MODSEQ" } else { "" });
        if let Some(m) = changed_since {
            cmd.push_str(&format!(" (CHANGEDSINCE {m})"));
        }
        let tag = self.start(cmd).await?;
        Ok(MetaStream { client: self, tag: Some(tag) })
    }

    /// UID FETCH of whole messages (`BODY.PEEK[]`, with FLAGS and
    /// INTERNALDATE) for `uids` in the selected mailbox, streamed as they
    /// arrive: one command, the server sends them back to back.
    pub async fn fetch_bodies(&mut self, uids: &UidSet) -> Result<BodyStream<'_>> {
        non_empty(uids)?;
        let tag = self.start(format!("UID FETCH {uids} (UID FLAGS INTERNALDATE BODY.PEEK[])")).await?;
        Ok(BodyStream { client: self, tag: Some(tag) })
    }

    /// Sends a command without literals and returns its tag.
    async fn start(&mut self, cmd: String) -> Result<String> {
        self.drain().await?;
        let tag = self.tag();
        tracing::trace!(host = %self.config.host, %tag, "IMAP streamed command");
        let line = format!("{tag} {cmd}\r\n");
        self.write(line.as_bytes()).await?;
        Ok(tag)
    }

    /// APPEND of one message; returns its UID when the server tells it (UIDPLUS).
    pub async fn append(&mut self, mailbox: &MailboxName, message: AppendMessage<'_>) -> Result<Option<AppendUid>> {
        let mut p = self.append_pipeline(mailbox);
        p.push(0, message).await?;
        let done = p.finish().await?;
        done.into_iter().next().map_or_else(|| Err(Error::Protocol("APPEND result missing".into())), |d| d.result)
    }

    /// MULTIAPPEND (RFC 3502) to `mailbox`: messages streamed into commands
    /// of as many messages as the caller wants, up to 2 commands in flight.
    /// Needs the server's MULTIAPPEND; non-synchronising literals with
    /// LITERAL+ (up to [`Config::sync_literal_above`]), synchronising otherwise.
    pub fn multiappend_pipeline(&mut self, mailbox: &MailboxName) -> Result<MultiAppendPipeline<'_>> {
        if !self.caps.multiappend() {
            return Err(Error::Unsupported("MULTIAPPEND"));
        }
        Ok(MultiAppendPipeline {
            client: self,
            mailbox: mailbox.clone(),
            depth: 2,
            open: None,
            in_flight: VecDeque::new(),
            done: VecDeque::new(),
        })
    }

    /// A pipeline of APPENDs to `mailbox`: up to [`Config::append_depth`] in
    /// flight with LITERAL+, one at a time otherwise.
    pub fn append_pipeline(&mut self, mailbox: &MailboxName) -> AppendPipeline<'_> {
        let depth = if self.caps.literal_plus() { self.config.append_depth.max(1) } else { 1 };
        AppendPipeline {
            client: self,
            mailbox: mailbox.clone(),
            depth,
            in_flight: VecDeque::new(),
            done: VecDeque::new(),
        }
    }
}

fn non_empty(uids: &UidSet) -> Result<()> {
    if uids.is_empty() { Err(Error::InvalidArgument("empty UID set".into())) } else { Ok(()) }
}

fn push_astring<'a>(parts: &mut Vec<Part<'a>>, s: &'a [u8]) {
    if codec::quotable(s) {
        let mut q = Vec::with_capacity(s.len() + 2);
        codec::push_quoted(&mut q, s);
        parts.push(Part::Text(q));
    } else {
        parts.push(Part::Literal(s));
    }
}

fn flag_list(flags: &[Flag]) -> String {
    flags.iter().filter(|f| f.settable()).map(Flag::as_str).collect::<Vec<_>>().join(" ")
}

fn flags_of(v: Option<&Value>) -> Vec<Flag> {
    v.and_then(Value::as_list).unwrap_or(&[]).iter().filter_map(Value::as_str).map(Flag::parse).collect()
}

fn delimiter_of(v: &Value) -> Option<char> {
    v.as_nstring().and_then(|s| s.chars().next())
}

fn parse_list(r: Response, which: &str) -> Option<MailboxInfo> {
    let Response::Data { name, values } = r else { return None };
    if name != which {
        return None;
    }
    let attributes: Vec<String> =
        values.first()?.as_list()?.iter().filter_map(Value::as_str).map(str::to_owned).collect();
    let delimiter = values.get(1).and_then(delimiter_of);
    let mailbox = values.get(2)?.as_str()?;
    let special_use = attributes.iter().find_map(|a| SpecialUse::from_attribute(a));
    let subscribed = which == "LSUB" || attributes.iter().any(|a| a.eq_ignore_ascii_case("\\Subscribed"));
    Some(MailboxInfo { name: MailboxName::from_wire(mailbox), delimiter, attributes, special_use, subscribed })
}

/// A STATUS response: the mailbox name as the server wrote it, and what it says.
fn status_of(r: &Response) -> Option<(String, StatusInfo)> {
    let Response::Data { name, values } = r else { return None };
    if name != "STATUS" {
        return None;
    }
    let mut info = StatusInfo::default();
    let items = values.get(1).and_then(Value::as_list).unwrap_or(&[]);
    for pair in items.chunks(2) {
        let (Some(k), Some(v)) = (pair[0].as_str(), pair.get(1).and_then(Value::as_u64)) else { continue };
        let v32 = u32::try_from(v).ok();
        match k.to_ascii_uppercase().as_str() {
            "MESSAGES" => info.messages = v32,
            "UIDNEXT" => info.uid_next = v32,
            "UIDVALIDITY" => info.uid_validity = v32,
            "UNSEEN" => info.unseen = v32,
            "HIGHESTMODSEQ" => info.highest_modseq = Some(v),
            "SIZE" => info.size = Some(v),
            _ => {}
        }
    }
    Some((values.first().and_then(Value::as_str).unwrap_or_default().to_owned(), info))
}

fn item<'a>(items: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    items.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn meta_of(seq: u32, items: &[(String, Value)]) -> Option<MessageMeta> {
    Some(MessageMeta {
        seq,
        uid: item(items, "UID")?.as_u32()?,
        flags: flags_of(item(items, "FLAGS")),
        internal_date: item(items, "INTERNALDATE").and_then(Value::as_str).and_then(InternalDate::parse),
        size: Some(item(items, "RFC822.SIZE")?.as_u64()?),
        modseq: item(items, "MODSEQ").and_then(Value::as_list).and_then(|l| l.first()).and_then(Value::as_u64),
    })
}

/// Reads the next response of a streamed command: `Ok(Some)` for an untagged
/// response, `Ok(None)` once its completion (OK) is read.
async fn stream_next(client: &mut Client, tag: &mut Option<String>, command: &'static str) -> Result<Option<Response>> {
    let Some(t) = tag.as_deref() else { return Ok(None) };
    match client.recv().await {
        Ok(Response::Status { tag: Some(got), status, code, text }) if got == t => {
            *tag = None;
            Completion { status, code, text }.into_result(command)?;
            Ok(None)
        }
        Ok(Response::Status { tag: Some(got), .. }) => {
            Err(Error::Protocol(format!("completion for unknown tag {got}")))
        }
        Ok(r) => Ok(Some(r)),
        Err(e) => {
            // The connection is gone: nothing left to drain.
            *tag = None;
            Err(e)
        }
    }
}

/// Metadata of messages as they arrive; see [`Client::fetch_meta`].
#[derive(Debug)]
pub struct MetaStream<'c> {
    client: &'c mut Client,
    tag: Option<String>,
}

impl MetaStream<'_> {
    /// The next message's metadata, `None` at the end.
    pub async fn next(&mut self) -> Result<Option<MessageMeta>> {
        while let Some(r) = stream_next(self.client, &mut self.tag, "UID FETCH").await? {
            if let Response::Fetch { seq, items } = r
                && let Some(m) = meta_of(seq, &items)
            {
                return Ok(Some(m));
            }
        }
        Ok(None)
    }
}

impl Drop for MetaStream<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.tag.take() {
            self.client.abandoned.push(t);
        }
    }
}

/// Whole messages as they arrive; see [`Client::fetch_bodies`].
#[derive(Debug)]
pub struct BodyStream<'c> {
    client: &'c mut Client,
    tag: Option<String>,
}

impl BodyStream<'_> {
    /// The next message, `None` at the end. Its body is the buffer the
    /// literal was read into, not a copy.
    pub async fn next(&mut self) -> Result<Option<FetchedMessage>> {
        while let Some(r) = stream_next(self.client, &mut self.tag, "UID FETCH").await? {
            let Response::Fetch { items, .. } = r else { continue };
            let mut uid = None;
            let mut body = None;
            let mut flags = None;
            let mut internal_date = None;
            for (k, v) in items {
                match k.as_str() {
                    "UID" => uid = v.as_u32(),
                    "BODY[]" => body = v.into_bytes(),
                    "FLAGS" => flags = Some(flags_of(Some(&v))),
                    "INTERNALDATE" => internal_date = v.as_str().and_then(InternalDate::parse),
                    _ => {}
                }
            }
            if let (Some(uid), Some(body)) = (uid, body) {
                return Ok(Some(FetchedMessage { uid, flags, internal_date, body }));
            }
        }
        Ok(None)
    }
}

impl Drop for BodyStream<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.tag.take() {
            self.client.abandoned.push(t);
        }
    }
}

/// The outcome of one APPEND of a pipeline.
#[derive(Debug)]
pub struct AppendDone {
    /// The caller's identifier given to [`AppendPipeline::push`].
    pub id: u64,
    /// The UID given by the server (UIDPLUS), or the refusal (typed: over
    /// quota, too big, throttled, TRYCREATE, ...).
    pub result: Result<Option<AppendUid>>,
}

/// APPENDs in flight to one mailbox; see [`Client::append_pipeline`].
///
/// [`push`](AppendPipeline::push) sends a message (waiting first for the
/// oldest in flight when the pipeline is full); results come back in order
/// from [`next_done`](AppendPipeline::next_done) and
/// [`finish`](AppendPipeline::finish). A refusal of one message is its
/// result; an `Err` from these methods means the connection is lost.
/// Dropping a pipeline with APPENDs in flight loses their results (they may
/// have succeeded): call `finish`.
#[derive(Debug)]
pub struct AppendPipeline<'c> {
    client: &'c mut Client,
    mailbox: MailboxName,
    depth: usize,
    in_flight: VecDeque<(String, u64)>,
    done: VecDeque<AppendDone>,
}

impl AppendPipeline<'_> {
    /// APPENDs in flight.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Sends one message; `id` comes back in its [`AppendDone`].
    pub async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> Result<()> {
        if message.body.contains(&0) {
            return Err(Error::InvalidArgument("message contains a NUL byte".into()));
        }
        while self.in_flight.len() >= self.depth {
            self.complete_one().await?;
        }
        if self.in_flight.is_empty() {
            // Nothing can be abandoned while the pipeline borrows the client,
            // so this only reads away what was abandoned before it.
            self.client.drain().await?;
        }
        let tag = self.client.tag();
        let mut head = b"APPEND ".to_vec();
        codec::push_quoted(&mut head, self.mailbox.wire().as_bytes());
        let flags = flag_list(message.flags);
        if !flags.is_empty() {
            head.extend_from_slice(format!(" ({flags})").as_bytes());
        }
        if let Some(d) = message.internal_date {
            head.extend_from_slice(format!(" \"{}\"", d.to_imap()).as_bytes());
        }
        head.push(b' ');
        let parts = [Part::Text(head), Part::Literal(message.body)];
        let mut untagged = Vec::new();
        let mut others = Vec::new();
        let early = self.client.send(&tag, &parts, &mut untagged, &mut others).await;
        for (t, c) in others {
            self.record(&t, c)?;
        }
        match early? {
            Some(c) => self.done.push_back(AppendDone { id, result: append_result(c) }),
            None => self.in_flight.push_back((tag, id)),
        }
        Ok(())
    }

    /// Records the completion of the APPEND tagged `tag`.
    fn record(&mut self, tag: &str, c: Completion) -> Result<()> {
        let Some(pos) = self.in_flight.iter().position(|(x, _)| x == tag) else {
            return Err(Error::Protocol(format!("completion for unknown tag {tag}")));
        };
        if let Some((_, id)) = self.in_flight.remove(pos) {
            self.done.push_back(AppendDone { id, result: append_result(c) });
        }
        Ok(())
    }

    async fn complete_one(&mut self) -> Result<()> {
        let Some(tag) = self.in_flight.front().map(|(t, _)| t.clone()) else { return Ok(()) };
        loop {
            match self.client.recv().await {
                Ok(Response::Status { tag: Some(t), status, code, text }) => {
                    self.record(&t, Completion { status, code, text })?;
                    if t == tag {
                        return Ok(());
                    }
                }
                Ok(Response::Continuation(_)) => return Err(Error::Protocol("unexpected continuation".into())),
                Ok(_) => {}
                Err(e) => {
                    self.in_flight.clear();
                    return Err(e);
                }
            }
        }
    }

    /// The next result, in order of completion, waiting if none is there yet;
    /// `None` when nothing is in flight.
    pub async fn next_done(&mut self) -> Result<Option<AppendDone>> {
        if self.done.is_empty() && !self.in_flight.is_empty() {
            self.complete_one().await?;
        }
        Ok(self.done.pop_front())
    }

    /// Waits for every APPEND in flight; returns the results not yet taken.
    pub async fn finish(mut self) -> Result<Vec<AppendDone>> {
        while !self.in_flight.is_empty() {
            self.complete_one().await?;
        }
        Ok(self.done.drain(..).collect())
    }
}

impl Drop for AppendPipeline<'_> {
    fn drop(&mut self) {
        let tags: Vec<String> = self.in_flight.drain(..).map(|(t, _)| t).collect();
        self.client.abandoned.extend(tags);
    }
}

/// The outcome of one MULTIAPPEND command (RFC 3502: all its messages are
/// appended, or none).
#[derive(Debug)]
pub struct BatchDone {
    /// The callers' identifiers, in the order the messages were pushed.
    pub ids: Vec<u64>,
    /// The new UIDs in the same order (empty without UIDPLUS), or the
    /// refusal of the whole batch.
    pub result: Result<Vec<AppendUid>>,
}

/// MULTIAPPEND commands to one mailbox, streamed; see [`Client::multiappend_pipeline`].
///
/// [`push`](MultiAppendPipeline::push) writes one message into the command
/// being sent (opening one when none is), so a batch is never held in
/// memory; [`end_batch`](MultiAppendPipeline::end_batch) ends that
/// command; up to `depth` ended commands wait for their completion while the
/// next one is written. An `Err` from these methods means the connection is
/// lost; a refused batch is its [`BatchDone::result`].
#[derive(Debug)]
pub struct MultiAppendPipeline<'c> {
    client: &'c mut Client,
    mailbox: MailboxName,
    depth: usize,
    /// The command being written: its tag and the ids pushed into it.
    open: Option<(String, Vec<u64>)>,
    in_flight: VecDeque<(String, Vec<u64>)>,
    done: VecDeque<BatchDone>,
}

impl MultiAppendPipeline<'_> {
    /// Messages in the command being written.
    pub fn open_len(&self) -> usize {
        self.open.as_ref().map_or(0, |(_, ids)| ids.len())
    }

    /// Commands ended and not completed.
    pub fn in_flight(&self) -> usize {
        self.in_flight.len()
    }

    /// Writes one message into the current command (opening one if needed).
    pub async fn push(&mut self, id: u64, message: AppendMessage<'_>) -> Result<()> {
        if message.body.contains(&0) {
            return Err(Error::InvalidArgument("message contains a NUL byte".into()));
        }
        let mut head = Vec::with_capacity(128);
        if self.open.is_none() {
            while self.in_flight.len() >= self.depth {
                self.complete_one().await?;
            }
            if self.in_flight.is_empty() {
                self.client.drain().await?;
            }
            let tag = self.client.tag();
            head.extend_from_slice(tag.as_bytes());
            head.extend_from_slice(b" APPEND ");
            codec::push_quoted(&mut head, self.mailbox.wire().as_bytes());
            self.open = Some((tag, Vec::new()));
        }
        let flags = flag_list(message.flags);
        if !flags.is_empty() {
            head.extend_from_slice(format!(" ({flags})").as_bytes());
        }
        if let Some(d) = message.internal_date {
            head.extend_from_slice(format!(" \"{}\"", d.to_imap()).as_bytes());
        }
        let len = message.body.len();
        let plus = self.client.non_sync(len);
        head.extend_from_slice(format!(" {{{len}{}}}\r\n", if plus { "+" } else { "" }).as_bytes());
        if let Some((_, ids)) = self.open.as_mut() {
            ids.push(id);
        }
        if plus && len <= 64 * 1024 {
            head.extend_from_slice(message.body);
            return self.client.write(&head).await;
        }
        self.client.write(&head).await?;
        if !plus && !self.wait_continuation().await? {
            return Ok(());
        }
        self.client.write(message.body).await
    }

    /// Waits for the `+` of a synchronising literal; `false` when the server
    /// ended the command instead (the batch is then done, refused).
    async fn wait_continuation(&mut self) -> Result<bool> {
        let open_tag = self.open.as_ref().map(|(t, _)| t.clone()).unwrap_or_default();
        loop {
            match self.client.recv().await {
                Ok(Response::Continuation(_)) => return Ok(true),
                Ok(Response::Status { tag: Some(t), status, code, text }) if t == open_tag => {
                    let ids = self.open.take().map(|(_, ids)| ids).unwrap_or_default();
                    self.done.push_back(BatchDone { ids, result: batch_result(Completion { status, code, text }) });
                    return Ok(false);
                }
                Ok(Response::Status { tag: Some(t), status, code, text }) => {
                    self.record(&t, Completion { status, code, text })?;
                }
                Ok(_) => {}
                Err(e) => {
                    self.open = None;
                    self.in_flight.clear();
                    return Err(e);
                }
            }
        }
    }

    /// Ends the command being written; its result comes from
    /// [`next_done`](MultiAppendPipeline::next_done) or [`finish`](MultiAppendPipeline::finish).
    pub async fn end_batch(&mut self) -> Result<()> {
        if let Some(open) = self.open.take() {
            self.client.write(b"\r\n").await?;
            self.in_flight.push_back(open);
        }
        Ok(())
    }

    fn record(&mut self, tag: &str, c: Completion) -> Result<()> {
        let Some(pos) = self.in_flight.iter().position(|(x, _)| x == tag) else {
            return Err(Error::Protocol(format!("completion for unknown tag {tag}")));
        };
        if let Some((_, ids)) = self.in_flight.remove(pos) {
            self.done.push_back(BatchDone { ids, result: batch_result(c) });
        }
        Ok(())
    }

    async fn complete_one(&mut self) -> Result<()> {
        let Some(tag) = self.in_flight.front().map(|(t, _)| t.clone()) else { return Ok(()) };
        loop {
            match self.client.recv().await {
                Ok(Response::Status { tag: Some(t), status, code, text }) => {
                    self.record(&t, Completion { status, code, text })?;
                    if t == tag {
                        return Ok(());
                    }
                }
                Ok(Response::Continuation(_)) => return Err(Error::Protocol("unexpected continuation".into())),
                Ok(_) => {}
                Err(e) => {
                    self.in_flight.clear();
                    return Err(e);
                }
            }
        }
    }

    /// A completed batch, waiting for the oldest when none is there yet;
    /// `None` when nothing is in flight.
    pub async fn next_done(&mut self) -> Result<Option<BatchDone>> {
        if self.done.is_empty() && !self.in_flight.is_empty() {
            self.complete_one().await?;
        }
        Ok(self.done.pop_front())
    }

    /// A completed batch if one is ready without waiting.
    pub fn try_done(&mut self) -> Option<BatchDone> {
        self.done.pop_front()
    }

    /// Ends the open command and waits for every command in flight; returns
    /// the results not yet taken.
    pub async fn finish(mut self) -> Result<Vec<BatchDone>> {
        self.end_batch().await?;
        while !self.in_flight.is_empty() {
            self.complete_one().await?;
        }
        Ok(self.done.drain(..).collect())
    }
}

impl Drop for MultiAppendPipeline<'_> {
    fn drop(&mut self) {
        // A command left open cannot be completed any more: the connection
        // must not be used again (its next command would be taken for a
        // literal). Ended ones are read away later.
        if self.open.take().is_some() {
            self.client.broken = true;
        }
        let tags: Vec<String> = self.in_flight.drain(..).map(|(t, _)| t).collect();
        self.client.abandoned.extend(tags);
    }
}

fn batch_result(c: Completion) -> Result<Vec<AppendUid>> {
    let c = c.into_result("APPEND")?;
    Ok(match c.code {
        Some(ResponseCode::AppendUid { uid_validity, uid }) => vec![AppendUid { uid_validity, uid }],
        Some(ResponseCode::AppendUids { uid_validity, uids }) => {
            uids.into_iter().flat_map(|(a, b)| a..=b).map(|uid| AppendUid { uid_validity, uid }).collect()
        }
        _ => Vec::new(),
    })
}

fn append_result(c: Completion) -> Result<Option<AppendUid>> {
    let c = c.into_result("APPEND")?;
    Ok(match c.code {
        Some(ResponseCode::AppendUid { uid_validity, uid }) => Some(AppendUid { uid_validity, uid }),
        _ => None,
    })
}

/// Protocol paths the lab's Dovecot cannot exercise (TLS, XOAUTH2, no SASL-IR,
/// no LITERAL+), against a scripted peer on loopback: each step is what the
/// client must send, byte for byte, and what the peer answers.
#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, BufReader};
    use tokio::net::TcpListener;

    trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
    impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

    pub(super) enum Step {
        /// Expect this line from the client (CRLF added), then send the reply.
        Line(&'static str, &'static str),
        /// Expect these raw bytes, then send the reply.
        Bytes(Vec<u8>, &'static str),
        /// Run the TLS handshake as server.
        Tls,
    }

    struct Peer {
        cert_der: Vec<u8>,
        acceptor: tokio_rustls::TlsAcceptor,
    }

    fn peer() -> Peer {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("cert");
        let cert_der = ck.cert.der().to_vec();
        let key = rustls::pki_types::PrivateKeyDer::Pkcs8(ck.signing_key.serialize_der().into());
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert_der.clone().into()], key)
            .expect("server config");
        Peer { cert_der, acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)) }
    }

    /// Serves one connection: optional implicit TLS, greeting, then the script.
    pub(super) async fn serve(implicit_tls: bool, greeting: &'static str, script: Vec<Step>) -> (Config, Vec<u8>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let p = peer();
        let cert = p.cert_der.clone();
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else { return };
                let mut io: Box<dyn Io> = Box::new(tcp);
                if implicit_tls {
                    match p.acceptor.accept(io).await {
                        Ok(tls) => io = Box::new(tls),
                        Err(_) => continue, // the client refused our certificate
                    }
                }
                let mut r = BufReader::new(io);
                r.get_mut().write_all(greeting.as_bytes()).await.expect("greeting");
                for step in &script {
                    match step {
                        Step::Line(want, reply) => {
                            let mut line = String::new();
                            r.read_line(&mut line).await.expect("read");
                            assert_eq!(line, format!("{want}\r\n"));
                            r.get_mut().write_all(reply.as_bytes()).await.expect("write");
                        }
                        Step::Bytes(want, reply) => {
                            let mut got = vec![0; want.len()];
                            r.read_exact(&mut got).await.expect("read");
                            assert_eq!(&got, want);
                            r.get_mut().write_all(reply.as_bytes()).await.expect("write");
                        }
                        Step::Tls => {
                            assert!(r.buffer().is_empty());
                            let tls = p.acceptor.accept(r.into_inner()).await.expect("handshake");
                            r = BufReader::new(Box::new(tls));
                        }
                    }
                }
                return;
            }
        });
        let mut cfg = Config::new("localhost", port);
        cfg.connect_timeout = Duration::from_secs(5);
        cfg.io_timeout = Some(Duration::from_secs(5));
        (cfg, cert)
    }

    #[tokio::test]
    async fn pipelined_status_and_mailbox_commands_are_attributed_to_their_mailboxes() {
        const Q: &str = " (MESSAGES UIDNEXT UIDVALIDITY UNSEEN HIGHESTMODSEQ SIZE)";
        let line = |tag: &str, cmd: &str| -> &'static str { Box::leak(format!("{tag} {cmd}").into_boxed_str()) };
        let script = vec![
            // The three STATUS commands arrive together; the server answers
            // after the last, the untagged responses out of order and with
            // INBOX in another case.
            Step::Line(line("A1", &format!("STATUS \"INBOX\"{Q}")), ""),
            Step::Line(line("A2", &format!("STATUS \"Sent\"{Q}")), ""),
            Step::Line(
                line("A3", &format!("STATUS \"Nope\"{Q}")),
                "* STATUS \"Sent\" (MESSAGES 5 SIZE 900 UIDVALIDITY 7)\r\n\
                 * STATUS inbox (MESSAGES 3 UIDNEXT 4 HIGHESTMODSEQ 12)\r\n\
                 A1 OK done\r\nA3 NO [NONEXISTENT] no such mailbox\r\nA2 OK done\r\n",
            ),
            Step::Line("A4 CREATE \"A\"", ""),
            Step::Line("A5 SUBSCRIBE \"A\"", ""),
            Step::Line("A6 CREATE \"B\"", "A4 OK\r\nA5 OK\r\nA6 NO [ALREADYEXISTS] exists\r\n"),
            Step::Line("A7 NOOP", "A7 OK\r\n"),
        ];
        let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 CONDSTORE STATUS=SIZE] hi\r\n", script).await;
        let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
        let (inbox, sent, nope) = (MailboxName::new("INBOX"), MailboxName::new("Sent"), MailboxName::new("Nope"));
        let got = c.status_many(&[&inbox, &sent, &nope]).await.expect("pipeline");
        let inbox_status = got[0].as_ref().expect("INBOX");
        assert_eq!(
            (inbox_status.messages, inbox_status.uid_next, inbox_status.highest_modseq),
            (Some(3), Some(4), Some(12))
        );
        let sent_status = got[1].as_ref().expect("Sent");
        assert_eq!((sent_status.messages, sent_status.size, sent_status.uid_validity), (Some(5), Some(900), Some(7)));
        assert_eq!(got[2].as_ref().expect_err("Nope").code(), Some(ResponseCode::NonExistent));
        let (a, b) = (MailboxName::new("A"), MailboxName::new("B"));
        let done = c
            .mailbox_commands(&[
                (MailboxCommand::Create, &a),
                (MailboxCommand::Subscribe, &a),
                (MailboxCommand::Create, &b),
            ])
            .await
            .expect("pipeline");
        assert!(done[0].is_ok() && done[1].is_ok());
        assert_eq!(done[2].as_ref().expect_err("B").code(), Some(ResponseCode::AlreadyExists));
        c.noop().await.expect("the connection is in step after the pipelines");
    }

    const TLS_CAPS: &str = "* OK [CAPABILITY IMAP4rev1 AUTH=XOAUTH2 AUTH=PLAIN SASL-IR] hi\r\n";

    #[tokio::test]
    async fn implicit_tls_verifies_certificates_unless_insecure() {
        let (cfg, cert) = serve(true, TLS_CAPS, vec![Step::Line("A1 LOGOUT", "* BYE bye\r\nA1 OK done\r\n")]).await;
        let cfg = cfg.with_security(Security::Tls);
        let err = Client::connect(&cfg).await.expect_err("self-signed certificate must be refused");
        assert!(matches!(&err, Error::Tls(m) if m.contains("UnknownIssuer")), "{err:?}");

        let mut trusted = cfg.clone();
        trusted.roots = TlsRoots::WithExtra(vec![cert]);
        let c = Client::connect(&trusted).await.expect("trusted");
        assert!(c.is_tls() && c.capabilities().has_auth("XOAUTH2"));
        c.logout().await.expect("LOGOUT");

        let (cfg, _) = serve(true, TLS_CAPS, vec![]).await;
        let mut insecure = cfg.with_security(Security::Tls);
        insecure.insecure = true;
        assert!(Client::connect(&insecure).await.expect("insecure").is_tls());
    }

    #[tokio::test]
    async fn starttls_then_xoauth2_with_error_challenge() {
        let token_ir = B64.encode("user=u@x\x01auth=Bearer tok\x01\x01");
        let line: &'static str = Box::leak(format!("A3 AUTHENTICATE XOAUTH2 {token_ir}").into_boxed_str());
        let line2: &'static str = Box::leak(format!("A4 AUTHENTICATE XOAUTH2 {token_ir}").into_boxed_str());
        let challenge: &'static str =
            Box::leak(format!("+ {}\r\n", B64.encode(r#"{"status":"401"}"#)).into_boxed_str());
        let script = vec![
            Step::Line("A1 STARTTLS", "A1 OK Begin TLS\r\n"),
            Step::Tls,
            Step::Line("A2 CAPABILITY", "* CAPABILITY IMAP4rev1 AUTH=XOAUTH2 SASL-IR\r\nA2 OK\r\n"),
            Step::Line(line, challenge),
            Step::Line("", "A3 NO [AUTHENTICATIONFAILED] denied\r\n"),
            Step::Line(line2, "A4 OK [CAPABILITY IMAP4rev1 UIDPLUS] in\r\n"),
        ];
        let (cfg, cert) = serve(false, "* OK [CAPABILITY IMAP4rev1 STARTTLS LOGINDISABLED] hi\r\n", script).await;
        let mut cfg = cfg.with_security(Security::StartTls);
        cfg.roots = TlsRoots::WithExtra(vec![cert]);
        let mut c = Client::connect(&cfg).await.expect("STARTTLS");
        assert!(c.is_tls() && !c.capabilities().starttls());
        let auth = Auth::XOAuth2 { user: "u@x".into(), token: Secret::new("tok") };
        let err = c.login(&auth).await.expect_err("refused");
        assert!(
            matches!(&err, Error::AuthFailed { mechanism: "XOAUTH2", code: Some(ResponseCode::AuthenticationFailed), text } if text.contains("401")),
            "{err:?}"
        );
        assert!(!format!("{auth:?} {err:?}").contains("tok\""));
        c.login(&auth).await.expect("accepted");
        assert!(c.capabilities().uidplus());
    }

    #[tokio::test]
    async fn plain_without_sasl_ir_and_append_with_synchronising_literal() {
        let plain = B64.encode("\0u\0p w");
        let plain_line: &'static str = Box::leak(plain.into_boxed_str());
        let script = vec![
            Step::Line("A1 AUTHENTICATE PLAIN", "+ \r\n"),
            Step::Line(plain_line, "A1 OK [CAPABILITY IMAP4rev1] in\r\n"),
            Step::Line("A2 LOGIN \"u\" {3}", "+ go\r\n"),
            Step::Bytes(b"\xc3\xa9x\r\n".to_vec(), "A2 OK done\r\n"),
            Step::Line("A3 CAPABILITY", "* CAPABILITY IMAP4rev1\r\nA3 OK\r\n"),
            Step::Line(r#"A4 APPEND "&AMk-t&AOk-" (\Seen $K) "02-Mar-2020 08:00:00 +0100" {6}"#, "+ go\r\n"),
            Step::Bytes(b"a\nb\r\nc\r\n".to_vec(), "* 1 EXISTS\r\nA4 OK [APPENDUID 7 9] ok\r\n"),
            Step::Line(r#"A5 APPEND "x" {1}"#, "A5 NO [OVERQUOTA] full\r\n"),
        ];
        let (cfg, _) = serve(false, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] hi\r\n", script).await;
        let mut c = Client::connect(&cfg.with_security(Security::None)).await.expect("connect");
        let auth = Auth::Plain { authzid: None, authcid: "u".into(), password: Secret::new("p w") };
        c.login(&auth).await.expect("PLAIN");
        c.login(&Auth::Login { user: "u".into(), password: Secret::new("éx") }).await.expect("LOGIN with a literal");
        let date = InternalDate::parse("02-Mar-2020 08:00:00 +0100");
        let flags = [Flag::Seen, Flag::Recent, Flag::Keyword("$K".into())];
        let msg = AppendMessage { body: b"a\nb\r\nc", flags: &flags, internal_date: date };
        let uid = c.append(&"Été".into(), msg).await.expect("APPEND");
        assert_eq!(uid, Some(AppendUid { uid_validity: 7, uid: 9 }));
        assert_eq!(c.exists(), Some(1));
        let msg = AppendMessage { body: b"z", flags: &[], internal_date: None };
        let err = c.append(&"x".into(), msg).await.expect_err("refused before the literal");
        assert!(matches!(err, Error::OverQuota { command: "APPEND", .. }), "{err:?}");
        let nul = AppendMessage { body: b"a\0b", flags: &[], internal_date: None };
        assert!(matches!(c.append(&"x".into(), nul).await, Err(Error::InvalidArgument(_))));
    }
}
