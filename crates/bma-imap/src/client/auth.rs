//! Logging in ([`Auth`]: LOGIN, AUTHENTICATE PLAIN with an authorization
//! identity, XOAUTH2 with a token or a token file read at each login,
//! SASL-IR when offered) and turning extensions on (ENABLE: CONDSTORE,
//! QRESYNC).
//!
//! Rules: a secret is sent only as a [`Secret`] exposed at the one place
//! it is written; a refusal is [`Error::AuthFailed`] with the server's text
//! and code, never the secret; the capabilities are read again after login
//! only when the server did not send them with its OK.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::{Client, Completion, Part};
use crate::codec::{self, Response, Value};
use crate::error::{Error, Result};
use crate::secret::Secret;

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

impl Client {
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
                    return Err(self.auth_unsupported("LOGIN"));
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
                let token = Secret::read_token_file(path)
                    .await
                    .map_err(|e| Error::TokenFile(format!("{}: {}", path.display(), e.source)))?;
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

    /// [`Error::AuthUnsupported`] for `mechanism`, with what the server offers.
    fn auth_unsupported(&self, mechanism: &'static str) -> Error {
        let login = (!self.caps.login_disabled()).then(|| "LOGIN".to_owned());
        let sasl = self.caps.iter().filter_map(|c| c.strip_prefix("AUTH=")).map(|m| format!("AUTHENTICATE {m}"));
        Error::AuthUnsupported {
            mechanism,
            offered: login.into_iter().chain(sasl).collect(),
            after_starttls: !self.is_tls() && self.caps.starttls(),
        }
    }

    pub(super) async fn authenticate(&mut self, mechanism: &'static str, response: Secret) -> Result<()> {
        if !self.caps.has_auth(mechanism) {
            return Err(self.auth_unsupported(mechanism));
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
}

pub(super) fn push_astring<'a>(parts: &mut Vec<Part<'a>>, s: &'a [u8]) {
    if codec::quotable(s) {
        let mut q = Vec::with_capacity(s.len() + 2);
        codec::push_quoted(&mut q, s);
        parts.push(Part::Text(q));
    } else {
        parts.push(Part::Literal(s));
    }
}
