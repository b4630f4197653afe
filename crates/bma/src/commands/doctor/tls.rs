//! The TLS side of `bma doctor autoconfig`: a connection to a server as a
//! mail client or a browser makes it (TLS from the first byte, or IMAP's or
//! SMTP's STARTTLS first), its certificate chain and name verified against
//! the system's trust roots or `--ca-file`, and how long the certificate
//! has left.
//!
//! Rules: rustls's own verifier decides (the one every TLS connection of
//! bma uses), its refusal put in plain words; every read, write and the
//! handshake under the doctor's timeout; nothing is sent after the
//! handshake but what the caller sends (an HTTP request).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{CertificateError, ClientConfig, RootCertStore};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

/// How a client reaches TLS on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// TLS from the first byte (IMAPS 993, submissions 465, HTTPS).
    Implicit,
    /// IMAP's `STARTTLS` (143).
    ImapStartTls,
    /// SMTP's `STARTTLS` after `EHLO` (587).
    SmtpStartTls,
}

impl Mode {
    /// How the output names it.
    pub fn label(self) -> &'static str {
        match self {
            Mode::Implicit => "TLS",
            Mode::ImapStartTls | Mode::SmtpStartTls => "STARTTLS",
        }
    }
}

/// Why a TLS check failed, in the words the output uses.
#[derive(Debug, thiserror::Error)]
pub enum TlsProblem {
    /// No TCP connection.
    #[error("cannot connect to {0}: {1}")]
    Connect(SocketAddr, std::io::Error),
    /// A step ran out of time.
    #[error("no answer from {0} within {1} s while {2}")]
    Timeout(SocketAddr, u64, &'static str),
    /// The plain-text part before STARTTLS went wrong.
    #[error("STARTTLS failed: {0}")]
    StartTls(String),
    /// The certificate was refused.
    #[error("{0}")]
    Certificate(String),
    /// The handshake failed otherwise.
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
}

/// What the server's certificate says.
#[derive(Debug, Clone)]
pub struct Certificate {
    /// Whole days until it expires (negative: expired).
    pub days_left: i64,
    /// Its last day, `YYYY-MM-DD`.
    pub not_after: String,
}

/// The trust roots the doctor verifies against.
#[derive(Clone)]
pub struct Trust {
    config: Arc<ClientConfig>,
}

impl Trust {
    /// The certificates of `ca_file` (PEM) alone, or the system's roots.
    pub fn load(ca_file: Option<&Path>) -> anyhow::Result<Trust> {
        let mut roots = RootCertStore::empty();
        match ca_file {
            Some(path) => {
                let pem = std::fs::read(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                let mut added = 0;
                for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(&pem) {
                    let cert: CertificateDer<'static> =
                        cert.map_err(|e| anyhow::anyhow!("{}: not a PEM certificate: {e}", path.display()))?;
                    roots.add(cert).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
                    added += 1;
                }
                if added == 0 {
                    anyhow::bail!("{} holds no PEM certificate", path.display());
                }
            }
            None => {
                let found = rustls_native_certs::load_native_certs();
                let (added, _) = roots.add_parsable_certificates(found.certs);
                if added == 0 {
                    anyhow::bail!("no trust roots found on this system: give --ca-file");
                }
            }
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("TLS settings: {e}"))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(Trust { config: Arc::new(config) })
    }
}

/// Connects to `addr` as `host`, reaches TLS by `mode`, and verifies the
/// certificate; the stream, for what the caller sends next.
pub async fn connect(
    trust: &Trust,
    host: &str,
    addr: SocketAddr,
    mode: Mode,
    timeout: Duration,
) -> Result<(TlsStream<TcpStream>, Certificate), TlsProblem> {
    let secs = timeout.as_secs().max(1);
    let within = |what: &'static str| move |_| TlsProblem::Timeout(addr, secs, what);
    let mut tcp = tokio::time::timeout(timeout, TcpStream::connect(addr))
        .await
        .map_err(within("connecting"))?
        .map_err(|e| TlsProblem::Connect(addr, e))?;
    match mode {
        Mode::Implicit => {}
        Mode::ImapStartTls => {
            tokio::time::timeout(timeout, imap_starttls(&mut tcp)).await.map_err(within("asking for STARTTLS"))??;
        }
        Mode::SmtpStartTls => {
            tokio::time::timeout(timeout, smtp_starttls(&mut tcp)).await.map_err(within("asking for STARTTLS"))??;
        }
    }
    let name = ServerName::try_from(host.to_owned())
        .map_err(|_| TlsProblem::Handshake(format!("{host:?} is not a host name")))?;
    let stream = tokio::time::timeout(timeout, TlsConnector::from(trust.config.clone()).connect(name, tcp))
        .await
        .map_err(within("in the TLS handshake"))?
        .map_err(|e| problem(host, &e))?;
    let leaf = stream.get_ref().1.peer_certificates().and_then(|c| c.first()).cloned();
    let certificate = leaf
        .as_ref()
        .and_then(|der| dates(der))
        .ok_or_else(|| TlsProblem::Certificate("the server sent no certificate the doctor can read".to_owned()))?;
    Ok((stream, certificate))
}

/// The handshake's failure in plain words.
fn problem(host: &str, e: &std::io::Error) -> TlsProblem {
    let Some(rustls::Error::InvalidCertificate(c)) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return TlsProblem::Handshake(e.to_string());
    };
    TlsProblem::Certificate(match c {
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
            "the certificate has expired: renew it".to_owned()
        }
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            "the certificate is not valid yet (or this machine's clock is wrong)".to_owned()
        }
        CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
            format!("the certificate is not valid for {host}: add {host} to its names (subjectAltName)")
        }
        CertificateError::UnknownIssuer => "the certificate is not signed by a trusted authority (self-signed, or \
                                            the server does not send its intermediate certificates)"
            .to_owned(),
        CertificateError::Revoked => "the certificate is revoked".to_owned(),
        other => format!("the certificate is refused: {other:?}"),
    })
}

/// The expiry of a DER certificate.
fn dates(der: &CertificateDer<'_>) -> Option<Certificate> {
    let (_, cert) = x509_parser::parse_x509_certificate(der.as_ref()).ok()?;
    let not_after = cert.validity().not_after.to_datetime();
    let now = time::OffsetDateTime::now_utc();
    let days_left = (not_after - now).whole_days();
    Some(Certificate { days_left, not_after: not_after.date().to_string() })
}

/// Reads one line (up to LF) byte by byte, so that nothing after it is consumed.
async fn line(tcp: &mut TcpStream) -> Result<String, TlsProblem> {
    let mut out = Vec::new();
    loop {
        let b = tcp.read_u8().await.map_err(|e| TlsProblem::StartTls(format!("the server closed: {e}")))?;
        out.push(b);
        if b == b'\n' || out.len() > 4096 {
            return Ok(String::from_utf8_lossy(&out).trim_end().to_owned());
        }
    }
}

async fn send(tcp: &mut TcpStream, text: &str) -> Result<(), TlsProblem> {
    tcp.write_all(text.as_bytes()).await.map_err(|e| TlsProblem::StartTls(e.to_string()))
}

/// IMAP: the greeting, `STARTTLS`, its tagged OK.
async fn imap_starttls(tcp: &mut TcpStream) -> Result<(), TlsProblem> {
    let greeting = line(tcp).await?;
    if !greeting.starts_with("* OK") {
        return Err(TlsProblem::StartTls(format!("not an IMAP greeting: {greeting:?}")));
    }
    send(tcp, "d1 STARTTLS\r\n").await?;
    loop {
        let l = line(tcp).await?;
        if let Some(rest) = l.strip_prefix("d1 ") {
            return if rest.starts_with("OK") {
                Ok(())
            } else {
                Err(TlsProblem::StartTls(format!("the server refused STARTTLS: {l:?}")))
            };
        }
    }
}

/// One SMTP reply (its last line).
async fn smtp_reply(tcp: &mut TcpStream) -> Result<String, TlsProblem> {
    loop {
        let l = line(tcp).await?;
        if l.as_bytes().get(3) != Some(&b'-') {
            return Ok(l);
        }
    }
}

/// SMTP: the greeting, `EHLO`, `STARTTLS`, its 220.
async fn smtp_starttls(tcp: &mut TcpStream) -> Result<(), TlsProblem> {
    let greeting = smtp_reply(tcp).await?;
    if !greeting.starts_with("220") {
        return Err(TlsProblem::StartTls(format!("not an SMTP greeting: {greeting:?}")));
    }
    send(tcp, "EHLO bma-doctor\r\n").await?;
    let ehlo = smtp_reply(tcp).await?;
    if !ehlo.starts_with("250") {
        return Err(TlsProblem::StartTls(format!("EHLO refused: {ehlo:?}")));
    }
    send(tcp, "STARTTLS\r\n").await?;
    let go = smtp_reply(tcp).await?;
    if !go.starts_with("220") {
        return Err(TlsProblem::StartTls(format!("the server refused STARTTLS: {go:?}")));
    }
    Ok(())
}
