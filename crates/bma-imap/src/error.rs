//! [`Error`]: everything that can go wrong, typed so that the copy engine can
//! react (retry later, skip a message, create a folder, give up on a side).

use crate::types::ResponseCode;

/// The step of connecting and logging in that failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// TCP connection.
    Connect,
    /// Server greeting.
    Greeting,
    /// STARTTLS command.
    StartTls,
    /// TLS handshake.
    TlsHandshake,
    /// LOGIN, AUTHENTICATE.
    Authenticate,
}

/// An error of the IMAP client.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The TCP connection could not be made.
    #[error("cannot connect to {addr}: {source}")]
    Connect {
        /// `host:port`.
        addr: String,
        /// The cause.
        source: std::io::Error,
    },
    /// No answer within the configured time.
    #[error("timed out during {0:?}")]
    Timeout(Step),
    /// No progress reading from or writing to the server within the I/O timeout.
    #[error("no progress on the connection within the I/O timeout")]
    IoTimeout,
    /// TLS failed (handshake, certificate verification, configuration).
    #[error("TLS: {0}")]
    Tls(String),
    /// STARTTLS was required but the server does not offer it.
    #[error("STARTTLS required but not offered by the server")]
    StartTlsUnavailable,
    /// The server refused the login.
    #[error("authentication with {mechanism} failed: {text}")]
    AuthFailed {
        /// `LOGIN`, `PLAIN`, `XOAUTH2`.
        mechanism: &'static str,
        /// Response code, such as `[AUTHENTICATIONFAILED]`.
        code: Option<ResponseCode>,
        /// The server's text (never contains our secret).
        text: String,
    },
    /// The mechanism is not offered by the server (or LOGIN is disabled):
    /// what it offers instead, and whether more may come after STARTTLS.
    #[error("{}", auth_unsupported(mechanism, offered, *after_starttls))]
    AuthUnsupported {
        /// The mechanism asked for.
        mechanism: &'static str,
        /// What the server offers (`LOGIN` and its `AUTH=` mechanisms).
        offered: Vec<String>,
        /// The session is in clear text and the server offers STARTTLS:
        /// it may offer the mechanism once in TLS.
        after_starttls: bool,
    },
    /// A capability the call needs is missing.
    #[error("server lacks capability {0}")]
    Unsupported(&'static str),
    /// `[OVERQUOTA]`: the target is full.
    #[error("{command} refused, over quota: {text}")]
    OverQuota {
        /// The command refused.
        command: &'static str,
        /// Server text.
        text: String,
    },
    /// `[TOOBIG]` or `[LIMIT]`: the message (or request) exceeds a server limit.
    #[error("{command} refused, too big or over a limit: {text}")]
    TooBig {
        /// The command refused.
        command: &'static str,
        /// The code (`TooBig` or `Limit`).
        code: ResponseCode,
        /// Server text.
        text: String,
    },
    /// `[THROTTLED]`: slow down and retry later.
    #[error("{command} refused, throttled: {text}")]
    Throttled {
        /// The command refused.
        command: &'static str,
        /// Server text.
        text: String,
    },
    /// `[UNAVAILABLE]`: temporary failure, retry later.
    #[error("{command} refused, temporarily unavailable: {text}")]
    Unavailable {
        /// The command refused.
        command: &'static str,
        /// Server text.
        text: String,
    },
    /// `[TRYCREATE]`: the mailbox does not exist; create it and retry.
    #[error("{command} refused, mailbox does not exist: {text}")]
    TryCreate {
        /// The command refused.
        command: &'static str,
        /// Server text.
        text: String,
    },
    /// Any other NO.
    #[error("{command} refused (NO{}): {text}", code_suffix(.code))]
    No {
        /// The command refused.
        command: &'static str,
        /// Response code, if any.
        code: Option<ResponseCode>,
        /// Server text.
        text: String,
    },
    /// BAD: the server did not understand us (a bug on one side).
    #[error("{command} rejected as BAD{}: {text}", code_suffix(.code))]
    Bad {
        /// The command rejected.
        command: &'static str,
        /// Response code, if any.
        code: Option<ResponseCode>,
        /// Server text.
        text: String,
    },
    /// The server said BYE and closed the connection.
    #[error("connection closed by server: {0}")]
    Bye(String),
    /// The connection ended without BYE.
    #[error("connection closed unexpectedly")]
    ConnectionClosed,
    /// The server sent something this client cannot parse, or too big to accept.
    #[error("protocol error: {0}")]
    Protocol(String),
    /// Invalid argument given by the caller (e.g. an empty UID set, a NUL in a message).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// I/O error on an established connection.
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The file holding an OAuth 2.0 token cannot be read.
    #[error("cannot read the OAuth 2.0 token file {0}")]
    TokenFile(String),
}

fn code_suffix(code: &Option<ResponseCode>) -> String {
    code.as_ref().map_or_else(String::new, |c| format!(" {c:?}"))
}

impl Error {
    /// Whether the connection is unusable after this error (reconnect).
    pub fn is_connection_lost(&self) -> bool {
        matches!(self, Error::Bye(_) | Error::ConnectionClosed | Error::Io(_) | Error::IoTimeout | Error::Protocol(_))
    }

    /// Whether retrying later may succeed (throttled, unavailable, lost connection).
    pub fn is_transient(&self) -> bool {
        matches!(self, Error::Throttled { .. } | Error::Unavailable { .. }) || self.is_connection_lost()
    }

    /// The response code that came with a refusal, if any.
    pub fn code(&self) -> Option<ResponseCode> {
        match self {
            Error::OverQuota { .. } => Some(ResponseCode::OverQuota),
            Error::TooBig { code, .. } => Some(code.clone()),
            Error::Throttled { .. } => Some(ResponseCode::Throttled),
            Error::Unavailable { .. } => Some(ResponseCode::Unavailable),
            Error::TryCreate { .. } => Some(ResponseCode::TryCreate),
            Error::No { code, .. } | Error::Bad { code, .. } | Error::AuthFailed { code, .. } => code.clone(),
            _ => None,
        }
    }

    /// The typed error for a NO with this code.
    pub(crate) fn from_no(command: &'static str, code: Option<ResponseCode>, text: String) -> Error {
        match code {
            Some(ResponseCode::OverQuota) => Error::OverQuota { command, text },
            Some(c @ (ResponseCode::TooBig | ResponseCode::Limit)) => Error::TooBig { command, code: c, text },
            Some(ResponseCode::Throttled) => Error::Throttled { command, text },
            Some(ResponseCode::Unavailable) => Error::Unavailable { command, text },
            Some(ResponseCode::TryCreate) => Error::TryCreate { command, text },
            None if says_over_quota(&text) => Error::OverQuota { command, text },
            code => Error::No { command, code, text },
        }
    }
}

/// Whether a NO without a response code says the quota is exceeded
/// (Cyrus and Courier answer a plain `NO Over quota` where RFC 5530 has
/// `[OVERQUOTA]`).
fn says_over_quota(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    ["over quota", "quota exceeded", "exceeded quota", "exceeds quota", "exceed quota"].iter().any(|p| t.contains(p))
}

/// The text of [`Error::AuthUnsupported`].
fn auth_unsupported(mechanism: &str, offered: &[String], after_starttls: bool) -> String {
    let what = if mechanism == "LOGIN" { "LOGIN".to_owned() } else { format!("AUTHENTICATE {mechanism}") };
    let mut text = if offered.is_empty() {
        format!("the server does not offer {what}, nor any other way to log in")
    } else {
        format!("the server does not offer {what}; it offers {}", offered.join(", "))
    };
    if after_starttls {
        text.push_str(
            " in clear text, and STARTTLS: it may offer more in TLS (use imap:// with STARTTLS, not --tls none)",
        );
    }
    text
}

/// Result with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_codes_map_to_variants() {
        type Check = fn(&Error) -> bool;
        let cases: [(Option<ResponseCode>, Check); 7] = [
            (Some(ResponseCode::OverQuota), |e| matches!(e, Error::OverQuota { .. })),
            (Some(ResponseCode::TooBig), |e| matches!(e, Error::TooBig { .. })),
            (Some(ResponseCode::Limit), |e| matches!(e, Error::TooBig { code: ResponseCode::Limit, .. })),
            (Some(ResponseCode::Throttled), |e| matches!(e, Error::Throttled { .. }) && e.is_transient()),
            (Some(ResponseCode::Unavailable), |e| matches!(e, Error::Unavailable { .. }) && e.is_transient()),
            (Some(ResponseCode::TryCreate), |e| matches!(e, Error::TryCreate { .. })),
            (None, |e| matches!(e, Error::No { code: None, .. }) && !e.is_transient()),
        ];
        for (code, check) in cases {
            let e = Error::from_no("APPEND", code.clone(), "x".into());
            assert!(check(&e), "{code:?} gave {e:?}");
            assert_eq!(e.code(), code);
        }
    }

    #[test]
    fn a_plain_no_that_says_over_quota_is_over_quota() {
        let cases = [
            ("Over quota", true),
            ("Mailbox is over quota", true),
            ("Quota exceeded (mailbox for user is full)", true),
            ("Message would exceed quota", true),
            ("Invalid mailbox name", false),
            ("Quota root not found", false),
        ];
        for (text, over) in cases {
            let e = Error::from_no("APPEND", None, text.into());
            assert_eq!(matches!(e, Error::OverQuota { .. }), over, "{text}: {e:?}");
        }
        // A code wins over the words.
        let e = Error::from_no("APPEND", Some(ResponseCode::TooBig), "over quota".into());
        assert!(matches!(e, Error::TooBig { .. }), "{e:?}");
    }
}
