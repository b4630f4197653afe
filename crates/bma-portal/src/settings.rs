//! What the portal needs to know: its public address, the identity
//! provider, the campaign, the limits.

use bma_core::settings::Settings;

/// The OpenID Connect provider (Cerbère EDU). `Debug` masks the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct OidcSettings {
    /// Issuer URL; discovery at `<issuer>/.well-known/openid-configuration`.
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret (never logged).
    pub client_secret: String,
}

impl std::fmt::Debug for OidcSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcSettings")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &if self.client_secret.is_empty() { "" } else { "***" })
            .finish()
    }
}

/// The portal's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortalSettings {
    /// Public base URL (`https://bma.example`); links and the OIDC redirect
    /// URI (`<base>/auth/callback`) are built on it. `http://` only on a
    /// loopback host (development and the lab).
    pub base_url: String,
    /// The identity provider; `None`: pages are served, login is unavailable.
    pub oidc: Option<OidcSettings>,
    /// The campaign (dates, BMA domain, sender, contacts).
    pub campaign: Settings,
    /// Requests per minute per client address (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Requests per minute per form link (0: no limit).
    pub rate_limit_per_link: u32,
    /// Take the client address from the last `X-Forwarded-For` entry (only
    /// behind a reverse proxy that sets it).
    pub trust_forwarded_for: bool,
    /// Lifetime of a logged-in session, minutes.
    pub session_minutes: i64,
    /// The bounce mailbox (VERP base) of the portal's emails.
    pub bounce_address: String,
    /// Domain of the Message-IDs of the portal's emails.
    pub message_id_domain: String,
}

impl PortalSettings {
    /// Defaults for a portal at `base_url` with the FAQ's campaign.
    pub fn new(base_url: &str) -> PortalSettings {
        PortalSettings {
            base_url: base_url.trim_end_matches('/').to_owned(),
            oidc: None,
            campaign: Settings::default(),
            rate_limit_per_ip: 300,
            rate_limit_per_link: 60,
            trust_forwarded_for: false,
            session_minutes: 60,
            bounce_address: "bounces@cfwb.be".to_owned(),
            message_id_domain: "cfwb.be".to_owned(),
        }
    }

    /// Whether cookies are `Secure` with the `__Host-` prefix: always,
    /// unless the base URL is plain HTTP (allowed on loopback only).
    pub fn secure_cookies(&self) -> bool {
        !self.base_url.starts_with("http://")
    }

    /// The problems of these settings, in English for the operator.
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        match url::Url::parse(&self.base_url) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" => {
                if !is_loopback_host(u.host_str().unwrap_or("")) {
                    out.push(format!(
                        "portal.base_url '{}': plain http is only allowed on a loopback host; use https",
                        self.base_url
                    ));
                }
            }
            _ => out.push(format!("portal.base_url '{}' is not an http(s) URL", self.base_url)),
        }
        if let Some(o) = &self.oidc {
            if url::Url::parse(&o.issuer).is_err() {
                out.push(format!("oidc.issuer '{}' is not a URL", o.issuer));
            }
            if o.client_id.trim().is_empty() {
                out.push("oidc.client_id is empty".to_owned());
            }
        }
        out
    }
}

/// `localhost`, `127.0.0.0/8` or `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h == "localhost" || h.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_http_only_on_loopback() {
        for (url, ok, secure) in [
            ("https://bma.example", true, true),
            ("http://127.0.0.1:8080", true, false),
            ("http://localhost:8080", true, false),
            ("http://[::1]:8080", true, false),
            ("http://bma.example", false, false),
            ("ftp://x", false, true),
        ] {
            let s = PortalSettings::new(url);
            assert_eq!(s.problems().is_empty(), ok, "{url}");
            assert_eq!(s.secure_cookies(), secure, "{url}");
        }
    }
}
