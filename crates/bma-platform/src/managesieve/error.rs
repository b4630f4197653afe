//! What goes wrong talking to a ManageSieve server, typed: the caller
//! tells a refusal (`NO`, with the server's code and words) from a server
//! that hung up (`BYE`), a failed login, a timeout or a broken protocol.
//!
//! Rules: no variant holds a password; the server's text is kept as sent
//! (the caller escapes it where it prints it).

use std::fmt;

use super::response::{ParseError, ResponseCode};

/// Which wait ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The TCP connection.
    Connect,
    /// The TLS handshake.
    TlsHandshake,
    /// Reading a response.
    Read,
    /// Writing a command.
    Write,
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Step::Connect => "connect",
            Step::TlsHandshake => "TLS handshake",
            Step::Read => "read",
            Step::Write => "write",
        })
    }
}

fn code_text(code: &Option<ResponseCode>) -> String {
    code.as_ref().map(|c| format!(" [{c}]")).unwrap_or_default()
}

/// A ManageSieve failure.
#[derive(Debug, thiserror::Error)]
pub enum SieveError {
    /// The TCP connection failed.
    #[error("cannot connect to ManageSieve at {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A read or write failed.
    #[error("ManageSieve I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A wait ran out.
    #[error("ManageSieve {0} timed out")]
    Timeout(Step),
    /// TLS could not be set up.
    #[error("ManageSieve TLS: {0}")]
    Tls(String),
    /// STARTTLS asked for but not offered.
    #[error("the ManageSieve server does not offer STARTTLS")]
    StartTlsUnavailable,
    /// Plaintext to a host that is not loopback, not allowed.
    #[error("plaintext ManageSieve to {0} refused: only on loopback, when allowed")]
    PlaintextRefused(String),
    /// The server does not offer the SASL mechanism.
    #[error("the ManageSieve server does not offer SASL {0}")]
    MechanismUnavailable(String),
    /// The login was refused.
    #[error("ManageSieve login refused{}: {text}", code_text(.code))]
    AuthFailed {
        /// The response code.
        code: Option<ResponseCode>,
        /// The server's words.
        text: String,
    },
    /// A command was refused (`NO`).
    #[error("ManageSieve {command} refused{}: {text}", code_text(.code))]
    Refused {
        /// The command.
        command: &'static str,
        /// The response code.
        code: Option<ResponseCode>,
        /// The server's words (for CHECKSCRIPT and PUTSCRIPT, the script's errors).
        text: String,
    },
    /// The server closed the connection (`BYE`).
    #[error("ManageSieve server said BYE{}: {text}", code_text(.code))]
    Bye {
        /// The response code.
        code: Option<ResponseCode>,
        /// The server's words.
        text: String,
    },
    /// The connection ended without a word.
    #[error("the ManageSieve server closed the connection")]
    Closed,
    /// The response grammar was broken.
    #[error("ManageSieve response: {0}")]
    Parse(#[from] ParseError),
    /// A response that is well formed but not what the command expects.
    #[error("unexpected ManageSieve response to {command}: {what}")]
    Unexpected {
        /// The command.
        command: &'static str,
        /// What came.
        what: String,
    },
}

impl SieveError {
    /// Whether the error is a refusal saying the script does not exist.
    pub fn is_nonexistent(&self) -> bool {
        matches!(self, SieveError::Refused { code: Some(ResponseCode::Nonexistent), .. })
    }
}
