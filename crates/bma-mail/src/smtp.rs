//! Sending over SMTP to the configured relay.
//!
//! TLS is verified by default (`StartTls` required, or implicit `Tls`);
//! `None` is for the loopback lab only. Errors say whether retrying can
//! help: a 5xx reply is permanent, everything else is transient.

use std::time::Duration;

use lettre::address::Envelope as LettreEnvelope;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::message::OutgoingEmail;

/// How to talk to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain SMTP (loopback lab only).
    None,
    /// STARTTLS, required.
    StartTls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The relay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpConfig {
    /// Host name (also the name checked in its certificate).
    pub host: String,
    /// Port.
    pub port: u16,
    /// TLS mode.
    pub tls: SmtpTls,
    /// Per-command timeout.
    pub timeout: Duration,
}

/// A send failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether a retry cannot help (5xx).
    pub permanent: bool,
    /// What happened.
    pub message: String,
}

/// A connection pool to the relay.
#[derive(Clone)]
pub struct SmtpSender {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl std::fmt::Debug for SmtpSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SmtpSender")
    }
}

impl SmtpSender {
    /// A sender for `config`.
    pub fn new(config: &SmtpConfig) -> Result<SmtpSender, SendError> {
        let tls = match config.tls {
            SmtpTls::None => Tls::None,
            SmtpTls::StartTls | SmtpTls::Tls => {
                let params = TlsParameters::new(config.host.clone())
                    .map_err(|e| SendError { permanent: true, message: format!("TLS setup: {e}") })?;
                if config.tls == SmtpTls::Tls { Tls::Wrapper(params) } else { Tls::Required(params) }
            }
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(config.host.clone())
            .port(config.port)
            .tls(tls)
            .timeout(Some(config.timeout))
            .build();
        Ok(SmtpSender { transport })
    }

    /// Sends one message; on success the relay has taken responsibility for it.
    pub async fn send(&self, email: &OutgoingEmail) -> Result<(), SendError> {
        let bad = |what: &str| SendError { permanent: true, message: format!("invalid {what}") };
        let from = email.envelope.from.parse().map_err(|_| bad("return path"))?;
        let to =
            email.envelope.to.iter().map(|t| t.parse()).collect::<Result<Vec<_>, _>>().map_err(|_| bad("recipient"))?;
        let envelope = LettreEnvelope::new(Some(from), to).map_err(|e| bad(&e.to_string()))?;
        self.transport
            .send_raw(&envelope, &email.raw)
            .await
            .map(|_| ())
            .map_err(|e| SendError { permanent: e.is_permanent(), message: format!("SMTP: {e}") })
    }
}
