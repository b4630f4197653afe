//! Sessions and cookies.
//!
//! A session id is 32 random bytes; the browser holds it in a cookie
//! (`__Host-bma_session`: `Secure`, `HttpOnly`, `SameSite=Lax`, `Path=/`,
//! no domain; on a plain-HTTP loopback portal, `bma_session` without
//! `Secure`, since browsers refuse `__Host-` cookies there), the store
//! only its hash. A session is created when a login starts, and replaced
//! by a new one when it succeeds (no fixation). Each session has a CSRF
//! token that every POST must carry.
//!
//! While the browser is at the identity provider, a second short-lived
//! cookie holds the form link it came from, so the callback can send it
//! back there; the token never reaches the server's storage in clear.

use axum::http::{HeaderMap, HeaderValue, header};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;

/// 32 random bytes, URL-safe base64 (43 characters).
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The cookie names and attributes of a portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cookies {
    /// `Secure` and `__Host-` prefixed.
    pub secure: bool,
}

impl Cookies {
    /// The session cookie's name.
    pub fn session_name(self) -> &'static str {
        if self.secure { "__Host-bma_session" } else { "bma_session" }
    }

    /// The console's session cookie's name (staff sessions are never a manager's).
    pub fn console_name(self) -> &'static str {
        if self.secure { "__Host-bma_console" } else { "bma_console" }
    }

    /// The return-link cookie's name.
    pub fn return_name(self) -> &'static str {
        if self.secure { "__Host-bma_retour" } else { "bma_retour" }
    }

    fn attributes(self) -> &'static str {
        if self.secure { "; Path=/; Secure; HttpOnly; SameSite=Lax" } else { "; Path=/; HttpOnly; SameSite=Lax" }
    }

    /// `Set-Cookie` for a value kept `max_age` seconds.
    pub fn set(self, name: &str, value: &str, max_age: i64) -> HeaderValue {
        HeaderValue::from_str(&format!("{name}={value}; Max-Age={max_age}{}", self.attributes()))
            .unwrap_or_else(|_| HeaderValue::from_static("invalid=; Max-Age=0"))
    }

    /// `Set-Cookie` that deletes a cookie.
    pub fn clear(self, name: &str) -> HeaderValue {
        self.set(name, "", 0)
    }
}

/// The value of cookie `name` in the request.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies() {
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("a=1; __Host-bma_session=xyz; b=2"));
        assert_eq!(cookie(&h, "__Host-bma_session"), Some("xyz"));
        assert_eq!(cookie(&h, "bma_session"), None);
        let c = Cookies { secure: true };
        assert_eq!(
            c.set(c.session_name(), "v", 60).to_str().unwrap(),
            "__Host-bma_session=v; Max-Age=60; Path=/; Secure; HttpOnly; SameSite=Lax"
        );
        assert!(
            constant_time_eq(b"abc", b"abc") && !constant_time_eq(b"abc", b"abd") && !constant_time_eq(b"a", b"ab")
        );
        assert_eq!(random_token().len(), 43);
    }
}
