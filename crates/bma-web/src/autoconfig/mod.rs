//! Mail clients that set themselves up: the three formats the common
//! clients ask for when a person types their address, and the French
//! guides for those who set a client up by hand.
//!
//! - [`thunderbird`]: Mozilla's `config-v1.1.xml` (Thunderbird, K-9 /
//!   Thunderbird for Android) at `/.well-known/autoconfig/mail/config-v1.1.xml`
//!   and `/mail/config-v1.1.xml?emailaddress=…` (the `autoconfig.<domain>` host);
//! - [`autodiscover`]: Outlook's POX Autodiscover, `POST` and `GET`
//!   `/autodiscover/autodiscover.xml` (the path in any case), request
//!   schema 2006, response schema 2006a (IMAP and SMTP);
//! - [`mobileconfig`]: a configuration profile for Apple Mail, iPhone and
//!   iPad (`/autoconfig/apple.mobileconfig?email=…`), signed by [`sign`]
//!   when a certificate is configured;
//! - [`guides`]: `/guides` and one page per client, with the values below.
//!
//! Rules: the values are the settings' ([`AutoconfigSettings`], from
//! `[new]` of `bma.toml`), never the store's: nothing here reads the
//! store, so no answer can tell whether a mailbox exists. An address of a
//! domain not configured gets the site's 404, whatever its local part; so
//! does every address when autoconfiguration is not configured. Every
//! value written into XML is escaped (the address is the client's input);
//! the Autodiscover request is read without a DTD or entities. No session,
//! no CSRF token: these are machine requests (the portal checks CSRF per
//! handler, in its form extractor, not globally).

pub mod autodiscover;
pub mod guides;
pub mod mobileconfig;
pub mod sign;
pub mod thunderbird;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::Portal;
use crate::site;

pub use sign::{SignError, Signer};

/// How a client's connection is protected: the two ways we offer (no
/// plaintext: passwords cross the network).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    /// TLS from the first byte (IMAPS 993, submissions 465).
    Tls,
    /// STARTTLS on the plain port (IMAP 143, submission 587).
    StartTls,
}

impl Security {
    /// Its name in `bma.toml`.
    pub fn name(self) -> &'static str {
        match self {
            Security::Tls => "tls",
            Security::StartTls => "starttls",
        }
    }

    /// From its name in `bma.toml`.
    pub fn from_name(name: &str) -> Option<Security> {
        match name.trim() {
            "tls" => Some(Security::Tls),
            "starttls" => Some(Security::StartTls),
            _ => None,
        }
    }

    /// How the guides call it, as the clients' menus do.
    pub fn label_fr(self) -> &'static str {
        match self {
            Security::Tls => "SSL/TLS",
            Security::StartTls => "STARTTLS",
        }
    }
}

/// A server a client connects to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Its name, as clients reach it.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// TLS or STARTTLS.
    pub security: Security,
}

/// What clients are told: the new platform as a person's client reaches
/// it, and the domains whose addresses are answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoconfigSettings {
    /// The domains answered, lower case (the campaign's BMA domain).
    pub domains: Vec<String>,
    /// The name clients show for the account (`Boîte mail administrative`).
    pub display_name: String,
    /// A short form of it.
    pub short_name: String,
    /// Where mail is read.
    pub imap: Server,
    /// Where mail is sent (submission, authenticated).
    pub submission: Server,
    /// The webmail, if there is one.
    pub webmail_url: Option<String>,
    /// Signs the `.mobileconfig` when set.
    pub signer: Option<Arc<Signer>>,
}

/// An address we answer for: its local part as given, its domain one of
/// ours (lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// `local@domain`.
    pub address: String,
    /// The domain, as configured.
    pub domain: String,
}

impl AutoconfigSettings {
    /// `text` as an address of one of our domains, or `None` (not an
    /// address, or another domain). The local part is only checked for
    /// its syntax (RFC 5322 dot-atom): whether a mailbox exists is never
    /// looked up.
    pub fn mailbox(&self, text: &str) -> Option<Mailbox> {
        let text = text.trim();
        if text.len() > 254 {
            return None;
        }
        let (local, domain) = text.rsplit_once('@')?;
        let domain = domain.to_ascii_lowercase();
        let domain = self.domains.iter().find(|d| **d == domain)?;
        let atext = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c);
        let dot_atom = !local.is_empty()
            && local.len() <= 64
            && local.split('.').all(|atom| !atom.is_empty() && atom.chars().all(atext));
        dot_atom.then(|| Mailbox { address: format!("{local}@{domain}"), domain: domain.clone() })
    }

    /// The domain a request without an address is about, from its `Host`:
    /// `autoconfig.<domain>`, `autodiscover.<domain>` or `<domain>` of ours,
    /// or the portal's own host when one domain is configured.
    pub fn domain_of_host(&self, host: &str, portal_host: Option<&str>) -> Option<&str> {
        let host = host_without_port(host).to_ascii_lowercase();
        let bare =
            host.strip_prefix("autoconfig.").or_else(|| host.strip_prefix("autodiscover.")).unwrap_or(host.as_str());
        if let Some(d) = self.domains.iter().find(|d| **d == bare) {
            return Some(d);
        }
        match (portal_host, self.domains.as_slice()) {
            (Some(p), [only]) if p.eq_ignore_ascii_case(&host) => Some(only),
            _ => None,
        }
    }
}

/// `host` without its `:port` (an IPv6 literal keeps its brackets).
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(h, _)| h)
}

/// The routes (the Autodiscover path in other cases is handled by [`fallback`]).
pub(crate) fn routes() -> Router<Portal> {
    Router::new()
        .route("/.well-known/autoconfig/mail/config-v1.1.xml", get(thunderbird::answer))
        .route("/mail/config-v1.1.xml", get(thunderbird::answer))
        .route(autodiscover::PATH, get(autodiscover::get).post(autodiscover::post))
        .route("/Autodiscover/Autodiscover.xml", get(autodiscover::get).post(autodiscover::post))
        .route("/autoconfig/apple.mobileconfig", get(mobileconfig::answer))
        .merge(guides::routes())
}

/// Any path no route knows: the Autodiscover path in another case
/// (`/AUTODISCOVER/AUTODISCOVER.XML`; Outlook's casing varies), else the
/// site's 404.
pub(crate) async fn fallback(
    State(p): State<Portal>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if uri.path().eq_ignore_ascii_case(autodiscover::PATH) {
        if method == Method::POST {
            return autodiscover::post(State(p), headers, body).await;
        }
        if method == Method::GET {
            return autodiscover::get(State(p), RawQuery(uri.query().map(str::to_owned))).await;
        }
    }
    site::not_found(State(p)).await.into_response()
}

/// The settings, when autoconfiguration is configured.
pub(crate) fn settings(p: &Portal) -> Option<&AutoconfigSettings> {
    p.settings().autoconfig.as_ref()
}

/// The site's 404: the same for every address not answered.
pub(crate) fn not_found(p: &Portal) -> Response {
    site::not_found_page(p)
}

/// The first value of one of `names` in a query string (`emailaddress=`,
/// `email=`), decoded; names in any case.
pub(crate) fn query_value(query: Option<&str>, names: &[&str]) -> Option<String> {
    let pairs: Vec<(String, String)> = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    names.iter().find_map(|n| pairs.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.clone()))
}

/// An XML answer.
pub(crate) fn xml(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "text/xml; charset=utf-8")], body).into_response()
}

/// `text` escaped for XML text and attribute values.
pub(crate) fn esc(text: &str) -> std::borrow::Cow<'_, str> {
    quick_xml::escape::escape(text)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The settings of the unit tests: implicit TLS to read, STARTTLS to send.
    pub(crate) fn settings() -> AutoconfigSettings {
        AutoconfigSettings {
            domains: vec!["adm.cfwb.be".to_owned()],
            display_name: "Boîte mail administrative (BMA)".to_owned(),
            short_name: "BMA".to_owned(),
            imap: Server { host: "imap.bma.example".to_owned(), port: 993, security: Security::Tls },
            submission: Server { host: "smtp.bma.example".to_owned(), port: 587, security: Security::StartTls },
            webmail_url: Some("https://webmail.bma.example/".to_owned()),
            signer: None,
        }
    }

    #[test]
    fn only_our_domain_and_a_well_formed_local_part_are_answered() {
        let s = settings();
        for (text, answered) in [
            ("ec000001@adm.cfwb.be", Some("ec000001@adm.cfwb.be")),
            ("EC000001@ADM.cfwb.BE", Some("EC000001@adm.cfwb.be")),
            (" o'brien&co@adm.cfwb.be ", Some("o'brien&co@adm.cfwb.be")),
            ("a.b@adm.cfwb.be", Some("a.b@adm.cfwb.be")),
            ("ec000001@other.be", None),
            ("ec000001@sub.adm.cfwb.be", None),
            ("ec000001@adm.cfwb.be.evil", None),
            ("@adm.cfwb.be", None),
            ("a..b@adm.cfwb.be", None),
            (".a@adm.cfwb.be", None),
            ("a<b>@adm.cfwb.be", None),
            ("\"a b\"@adm.cfwb.be", None),
            ("a@b@adm.cfwb.be", None),
            ("adm.cfwb.be", None),
            ("", None),
        ] {
            assert_eq!(s.mailbox(text).map(|m| m.address), answered.map(str::to_owned), "{text:?}");
        }
        let long = format!("{}@adm.cfwb.be", "a".repeat(65));
        assert_eq!(s.mailbox(&long), None);
    }

    #[test]
    fn a_host_names_its_domain() {
        let s = settings();
        for (host, portal, domain) in [
            ("autoconfig.adm.cfwb.be", None, Some("adm.cfwb.be")),
            ("AutoDiscover.adm.cfwb.be:443", None, Some("adm.cfwb.be")),
            ("adm.cfwb.be", None, Some("adm.cfwb.be")),
            ("127.0.0.1:8080", Some("127.0.0.1"), Some("adm.cfwb.be")),
            ("bma.example", Some("portal.example"), None),
            ("autoconfig.other.be", Some("portal.example"), None),
            ("[::1]:8080", Some("[::1]"), Some("adm.cfwb.be")),
        ] {
            assert_eq!(s.domain_of_host(host, portal), domain, "{host}");
        }
    }
}
