//! [`ImapUrl`]: a server named as `bma.toml` and the `bma sync` flags name
//! it, `imap://[USER@]HOST[:PORT][/]` (STARTTLS, port 143) or
//! `imaps://[USER@]HOST[:PORT][/]` (TLS from the first byte, port 993),
//! HOST a name, an IPv4 address or `[IPv6]` (RFC 5092's server part; a
//! mailbox path or `;AUTH=` is not accepted).
//!
//! Rules: parsing is the only place a URL is taken apart (no caller splits
//! on `://` or `:` itself); every refusal is a [`UrlError`] that quotes
//! the URL; the user, percent-decoded, is given to the caller, never used
//! here.

use std::fmt;
use std::str::FromStr;

use crate::client::{Config, Security};

/// A parsed IMAP server URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImapUrl {
    /// Host name or IP address (an IPv6 address without its brackets).
    pub host: String,
    /// TCP port (the scheme's when the URL names none).
    pub port: u16,
    /// `imaps://`: TLS from the first byte.
    pub implicit_tls: bool,
    /// The user before `@`, percent-decoded.
    pub user: Option<String>,
}

/// Why a text is not an IMAP server URL (or not with that TLS mode).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// No `scheme://`.
    #[error("'{0}' is not imap://HOST or imaps://HOST")]
    NotAUrl(String),
    /// A scheme other than `imap` or `imaps`.
    #[error("'{url}': the scheme must be imap:// or imaps:// (unknown scheme {scheme}://)")]
    Scheme {
        /// The URL.
        url: String,
        /// Its scheme.
        scheme: String,
    },
    /// Nothing where the host should be.
    #[error("'{0}' has no host")]
    NoHost(String),
    /// A port that is not a number from 0 to 65535.
    #[error("'{url}': bad port {port}")]
    Port {
        /// The URL.
        url: String,
        /// What stood for the port.
        port: String,
    },
    /// `[IPv6]` followed by something else than `:PORT`, or an IPv6
    /// address without brackets.
    #[error("'{0}': an IPv6 address is written [ADDRESS] or [ADDRESS]:PORT")]
    Ipv6(String),
    /// A mailbox path, `;AUTH=` or a bad percent escape: more than a server.
    #[error("'{0}': only imap[s]://[USER@]HOST[:PORT] is accepted (no mailbox, no ;AUTH=)")]
    NotAServer(String),
    /// `imaps://` asked to go without TLS.
    #[error("'{0}': imaps:// is TLS from the first byte; it cannot be used with --tls none or tls = \"none\"")]
    PlaintextImaps(String),
}

impl ImapUrl {
    /// Parses `url` (surrounding whitespace ignored).
    pub fn parse(url: &str) -> Result<ImapUrl, UrlError> {
        let url = url.trim();
        let (scheme, rest) = url.split_once("://").ok_or_else(|| UrlError::NotAUrl(url.to_owned()))?;
        let (implicit_tls, default_port) = match scheme {
            "imap" => (false, 143),
            "imaps" => (true, 993),
            _ => return Err(UrlError::Scheme { url: url.to_owned(), scheme: scheme.to_owned() }),
        };
        let authority = match rest.split_once('/') {
            Some((a, "")) => a,
            Some(_) => return Err(UrlError::NotAServer(url.to_owned())),
            None => rest,
        };
        let (user, server) = match authority.rsplit_once('@') {
            Some((u, s)) => (Some(decode_user(u).ok_or_else(|| UrlError::NotAServer(url.to_owned()))?), s),
            None => (None, authority),
        };
        let port_of =
            |p: &str| p.parse::<u16>().map_err(|_| UrlError::Port { url: url.to_owned(), port: p.to_owned() });
        // HOST, HOST:PORT, [IPV6] or [IPV6]:PORT.
        let (host, port) = match server.strip_prefix('[') {
            Some(r) => {
                let (h, after) = r.split_once(']').ok_or_else(|| UrlError::Ipv6(url.to_owned()))?;
                match after {
                    "" => (h, default_port),
                    _ => (h, port_of(after.strip_prefix(':').ok_or_else(|| UrlError::Ipv6(url.to_owned()))?)?),
                }
            }
            None => match server.split_once(':') {
                Some((_, p)) if p.contains(':') => return Err(UrlError::Ipv6(url.to_owned())),
                Some((h, p)) => (h, port_of(p)?),
                None => (server, default_port),
            },
        };
        if host.is_empty() {
            return Err(UrlError::NoHost(url.to_owned()));
        }
        Ok(ImapUrl { host: host.to_owned(), port, implicit_tls, user })
    }

    /// The TLS mode: `choice` when given, else the scheme's (TLS for
    /// `imaps://`, STARTTLS required for `imap://`). `imaps://` without TLS
    /// is refused.
    pub fn security(&self, choice: Option<Security>) -> Result<Security, UrlError> {
        match choice {
            Some(Security::None) if self.implicit_tls => Err(UrlError::PlaintextImaps(self.to_string())),
            Some(s) => Ok(s),
            None if self.implicit_tls => Ok(Security::Tls),
            None => Ok(Security::StartTls),
        }
    }

    /// A client configuration for this server with the TLS mode
    /// [`ImapUrl::security`] gives for `choice`.
    pub fn config(&self, choice: Option<Security>) -> Result<Config, UrlError> {
        Ok(Config::new(self.host.as_str(), self.port).with_security(self.security(choice)?))
    }
}

impl FromStr for ImapUrl {
    type Err = UrlError;

    fn from_str(s: &str) -> Result<ImapUrl, UrlError> {
        ImapUrl::parse(s)
    }
}

/// The URL again (the user left out: it may be a secret's neighbour in logs).
impl fmt::Display for ImapUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = if self.implicit_tls { "imaps" } else { "imap" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The user part, percent-decoded; `None` when it holds `;` (`;AUTH=`), a
/// bad escape, or is not UTF-8 once decoded.
fn decode_user(s: &str) -> Option<String> {
    if s.is_empty() || s.contains(';') {
        return None;
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(host: &str, port: u16, implicit_tls: bool, user: Option<&str>) -> Result<ImapUrl, UrlError> {
        Ok(ImapUrl { host: host.to_owned(), port, implicit_tls, user: user.map(str::to_owned) })
    }

    #[test]
    fn every_form() {
        let cases: Vec<(&str, Result<ImapUrl, UrlError>)> = vec![
            ("imap://mail.example", ok("mail.example", 143, false, None)),
            ("imaps://mail.example", ok("mail.example", 993, true, None)),
            ("  imaps://mail.example/ ", ok("mail.example", 993, true, None)),
            ("imap://127.0.0.1:10143/", ok("127.0.0.1", 10143, false, None)),
            ("imap://[::1]", ok("::1", 143, false, None)),
            ("imap://[::1]/", ok("::1", 143, false, None)),
            ("imaps://[2001:db8::1]:1993", ok("2001:db8::1", 1993, true, None)),
            ("imap://marie@mail.example", ok("mail.example", 143, false, Some("marie"))),
            ("imaps://ec012345%40adm.cfwb.be@[::1]:993", ok("::1", 993, true, Some("ec012345@adm.cfwb.be"))),
            ("imap://mail.example:x", Err(UrlError::Port { url: "imap://mail.example:x".into(), port: "x".into() })),
            (
                "imap://mail.example:70000",
                Err(UrlError::Port { url: "imap://mail.example:70000".into(), port: "70000".into() }),
            ),
            ("imap://mail.example:", Err(UrlError::Port { url: "imap://mail.example:".into(), port: String::new() })),
            ("imap://[::1]:x", Err(UrlError::Port { url: "imap://[::1]:x".into(), port: "x".into() })),
            ("imap://[::1]143", Err(UrlError::Ipv6("imap://[::1]143".into()))),
            ("imap://[::1", Err(UrlError::Ipv6("imap://[::1".into()))),
            ("imap://::1", Err(UrlError::Ipv6("imap://::1".into()))),
            ("imap://[]", Err(UrlError::NoHost("imap://[]".into()))),
            ("imap://", Err(UrlError::NoHost("imap://".into()))),
            ("imap://:143", Err(UrlError::NoHost("imap://:143".into()))),
            ("imap://u@", Err(UrlError::NoHost("imap://u@".into()))),
            ("mail.example", Err(UrlError::NotAUrl("mail.example".into()))),
            ("ftp://legacy", Err(UrlError::Scheme { url: "ftp://legacy".into(), scheme: "ftp".into() })),
            ("IMAP://mail.example", Err(UrlError::Scheme { url: "IMAP://mail.example".into(), scheme: "IMAP".into() })),
            ("imap://mail.example/INBOX", Err(UrlError::NotAServer("imap://mail.example/INBOX".into()))),
            ("imap://u;AUTH=*@mail.example", Err(UrlError::NotAServer("imap://u;AUTH=*@mail.example".into()))),
            ("imap://u%4@mail.example", Err(UrlError::NotAServer("imap://u%4@mail.example".into()))),
        ];
        for (url, want) in cases {
            assert_eq!(ImapUrl::parse(url), want, "{url}");
        }
    }

    #[test]
    fn tls_modes() {
        let imap = ImapUrl::parse("imap://mail.example").expect("imap");
        let imaps = ImapUrl::parse("imaps://mail.example").expect("imaps");
        for (url, choice, want) in [
            (&imap, None, Ok(Security::StartTls)),
            (&imap, Some(Security::None), Ok(Security::None)),
            (&imap, Some(Security::Tls), Ok(Security::Tls)),
            (&imaps, None, Ok(Security::Tls)),
            (&imaps, Some(Security::StartTls), Ok(Security::StartTls)),
            (&imaps, Some(Security::None), Err(UrlError::PlaintextImaps("imaps://mail.example:993".into()))),
        ] {
            assert_eq!(url.security(choice), want, "{url} {choice:?}");
        }
        let c = ImapUrl::parse("imaps://[::1]:1993").expect("url").config(None).expect("config");
        assert_eq!((c.host.as_str(), c.port, c.security), ("::1", 1993, Security::Tls));
    }

    #[test]
    fn messages_quote_the_url() {
        let e = ImapUrl::parse("ftp://legacy").expect_err("ftp");
        assert!(e.to_string().starts_with("'ftp://legacy': the scheme must be imap:// or imaps://"), "{e}");
        let e = ImapUrl::parse("imaps://h").expect("url").security(Some(Security::None)).expect_err("plaintext");
        assert!(e.to_string().contains("cannot be used with --tls none"), "{e}");
    }
}
