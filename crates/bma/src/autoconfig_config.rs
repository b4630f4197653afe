//! What a person's mail client is told, from `bma.toml`: the new
//! platform's servers as clients reach them (`[new]`'s client keys, beside
//! the admin access the copies use) and `[autoconfig]` (the names clients
//! show, the certificate that signs Apple profiles). `bma serve` answers
//! Thunderbird's, Outlook's and Apple's autoconfiguration and shows the
//! guides with these values, for the campaign's BMA domain
//! (`addresses.domain`).
//!
//! `[new] imap_host` empty: the values mail 2 gives (`[cutover]`
//! `imap_host`, `imap_port`, `imap_security`, `smtp_…`, `webmail_url`) are
//! used, so that a campaign that configured mail 2 needs nothing more;
//! both set and different is an error (mail 2 and the clients would be
//! told different servers). Neither: autoconfiguration is not served (its
//! URLs answer 404) and the guides say the values are not published.
//! `imap_host` needs `submission_host` too (a half-configured platform is
//! an error at load, not a client that reads but cannot send). A port of
//! 0 is the usual one for the security mode (IMAP 993 with `tls`, 143 with
//! `starttls`; submission 465 with `tls`, 587 with `starttls`). Signing
//! needs both the certificate and its key (PEM files), checked at load.
//!
//! `[new]` is one section read by two modules: the admin access of
//! [`crate::engine_config::PlatformConfig`] and the client keys here;
//! [`NewConfig`] splits it by key, so that each keeps its unknown-key check.

use std::ops::Deref;
use std::sync::Arc;

use bma_web::autoconfig::{AutoconfigSettings, Security, Server, Signer};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use toml::{Table, Value};

use crate::config::{Config, ConfigIssue, Origin};
use crate::engine_config::PlatformConfig;

/// `[new]`'s keys for people's clients.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    /// The IMAP server people's clients read from; empty: autoconfiguration off.
    pub imap_host: String,
    /// Its port; 0: 993 with `tls`, 143 with `starttls`.
    pub imap_port: u16,
    /// `tls` or `starttls`.
    pub imap_tls: String,
    /// The submission server they send through.
    pub submission_host: String,
    /// Its port; 0: 465 with `tls`, 587 with `starttls`.
    pub submission_port: u16,
    /// `tls` or `starttls`.
    pub submission_tls: String,
    /// The webmail's address; empty: the guides point at mail 2's link.
    pub webmail_url: String,
}

impl Default for ClientConfig {
    fn default() -> ClientConfig {
        ClientConfig {
            imap_host: String::new(),
            imap_port: 0,
            imap_tls: "tls".to_owned(),
            submission_host: String::new(),
            submission_port: 0,
            submission_tls: "starttls".to_owned(),
            webmail_url: String::new(),
        }
    }
}

/// The keys of [`ClientConfig`] (they go to it, the rest of `[new]` to the platform).
const CLIENT_KEYS: [&str; 7] =
    ["imap_host", "imap_port", "imap_tls", "submission_host", "submission_port", "submission_tls", "webmail_url"];

/// `[new]`: the admin access (the copies) and the client keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewConfig {
    /// Admin access, as `[legacy]`'s.
    pub platform: PlatformConfig,
    /// What people's clients use.
    pub clients: ClientConfig,
}

impl From<PlatformConfig> for NewConfig {
    fn from(platform: PlatformConfig) -> NewConfig {
        NewConfig { platform, clients: ClientConfig::default() }
    }
}

/// `config.new.url`, `config.new.access()`: the platform's, as before.
impl Deref for NewConfig {
    type Target = PlatformConfig;
    fn deref(&self) -> &PlatformConfig {
        &self.platform
    }
}

impl Serialize for NewConfig {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let mut table = Table::try_from(&self.platform).map_err(S::Error::custom)?;
        table.extend(Table::try_from(&self.clients).map_err(S::Error::custom)?);
        table.serialize(s)
    }
}

impl<'de> Deserialize<'de> for NewConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<NewConfig, D::Error> {
        use serde::de::Error;
        let table = Table::deserialize(d)?;
        let (clients, platform): (Table, Table) =
            table.into_iter().partition(|(k, _)| CLIENT_KEYS.contains(&k.as_str()));
        Ok(NewConfig {
            platform: PlatformConfig::deserialize(Value::Table(platform)).map_err(D::Error::custom)?,
            clients: ClientConfig::deserialize(Value::Table(clients)).map_err(D::Error::custom)?,
        })
    }
}

/// `[autoconfig]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AutoconfigConfig {
    /// The account's name in clients.
    pub display_name: String,
    /// Its short form.
    pub short_name: String,
    /// A PEM file: the certificate that signs Apple profiles, then its chain; empty: unsigned.
    pub signing_certificate: String,
    /// A PEM file: its private key (RSA or P-256, unencrypted).
    pub signing_key: String,
}

impl Default for AutoconfigConfig {
    fn default() -> AutoconfigConfig {
        AutoconfigConfig {
            display_name: "Boîte mail administrative (BMA)".to_owned(),
            short_name: "BMA".to_owned(),
            signing_certificate: String::new(),
            signing_key: String::new(),
        }
    }
}

/// A server from its keys: its port 0 made the mode's usual one.
fn server(host: &str, port: u16, tls: &str, ports: (u16, u16)) -> Option<Server> {
    let security = Security::from_name(tls)?;
    let port = match (port, security) {
        (0, Security::Tls) => ports.0,
        (0, Security::StartTls) => ports.1,
        (p, _) => p,
    };
    Some(Server { host: host.trim().to_owned(), port, security })
}

/// A host name or address as clients type it: letters, digits, dots and
/// hyphens (or an IP address).
fn is_host(host: &str) -> bool {
    let h = host.trim();
    h.parse::<std::net::IpAddr>().is_ok()
        || (!h.is_empty()
            && h.len() <= 253
            && h.split('.').all(|l| {
                !l.is_empty()
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            }))
}

/// The servers clients are told, `[new]`'s or else mail 2's (see the
/// module's doc); `Err` names the key at fault.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Servers {
    imap: Server,
    submission: Server,
    webmail: String,
}

/// Mail 2's name of a security mode (`SSL/TLS`, `STARTTLS`, as clients name them).
fn security_of_label(label: &str) -> Option<Security> {
    match label.trim().to_ascii_uppercase().as_str() {
        "SSL/TLS" | "SSL" | "TLS" => Some(Security::Tls),
        "STARTTLS" => Some(Security::StartTls),
        _ => None,
    }
}

/// `[new]`'s servers if `imap_host` is set, else `[cutover]`'s if its
/// `imap_host` is, else `None`; `Err((key, message))` for a value that
/// does not read.
fn servers(config: &Config) -> Result<Option<Servers>, (String, String)> {
    let c = &config.new.clients;
    let m = &config.cutover;
    let webmail = if c.webmail_url.trim().is_empty() { m.webmail_url.trim() } else { c.webmail_url.trim() };
    if !c.imap_host.trim().is_empty() {
        let tls = |key: &str, v: &str| {
            Security::from_name(v).ok_or((key.to_owned(), format!("'{v}' is not tls or starttls")))
        };
        tls("new.imap_tls", &c.imap_tls)?;
        tls("new.submission_tls", &c.submission_tls)?;
        let imap = server(&c.imap_host, c.imap_port, &c.imap_tls, (993, 143));
        let submission = server(&c.submission_host, c.submission_port, &c.submission_tls, (465, 587));
        return Ok(imap.zip(submission).map(|(imap, submission)| Servers {
            imap,
            submission,
            webmail: webmail.to_owned(),
        }));
    }
    if m.imap_host.trim().is_empty() {
        return Ok(None);
    }
    let security = |key: &str, v: &str| {
        security_of_label(v)
            .ok_or((key.to_owned(), format!("'{v}' is not SSL/TLS or STARTTLS (autoconfiguration reads it)")))
    };
    let imap = Server {
        host: m.imap_host.trim().to_owned(),
        port: m.imap_port,
        security: security("cutover.imap_security", &m.imap_security)?,
    };
    let submission = Server {
        host: m.smtp_host.trim().to_owned(),
        port: m.smtp_port,
        security: security("cutover.smtp_security", &m.smtp_security)?,
    };
    Ok(Some(Servers { imap, submission, webmail: webmail.to_owned() }))
}

/// The signer of the configured files, or why not.
fn signer(a: &AutoconfigConfig) -> Result<Option<Signer>, String> {
    let (cert, key) = (a.signing_certificate.trim(), a.signing_key.trim());
    if cert.is_empty() && key.is_empty() {
        return Ok(None);
    }
    let read = |path: &str| std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"));
    Signer::from_pem(&read(cert)?, &read(key)?).map(Some).map_err(|e| e.to_string())
}

/// The problems of the client keys and `[autoconfig]`, each with its key.
pub fn validate(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut issue = |key: &str, message: String| {
        issues.push(ConfigIssue { key: key.to_owned(), origin: Origin::Merged, message });
    };
    let c = &config.new.clients;
    for (key, value) in [("new.imap_tls", &c.imap_tls), ("new.submission_tls", &c.submission_tls)] {
        if Security::from_name(value).is_none() {
            issue(key, format!("'{value}' is not tls or starttls"));
        }
    }
    let (imap, submission) = (c.imap_host.trim(), c.submission_host.trim());
    match (imap.is_empty(), submission.is_empty()) {
        (true, true) => {}
        (false, true) => issue(
            "new.submission_host",
            "is empty while new.imap_host is set: clients would read mail but could not send it".to_owned(),
        ),
        (true, false) => {
            issue("new.imap_host", "is empty while new.submission_host is set: set both, or neither".to_owned());
        }
        (false, false) => {
            for (key, host) in [("new.imap_host", imap), ("new.submission_host", submission)] {
                if !is_host(host) {
                    issue(key, format!("'{host}' is not a host name (no scheme, no port: they are keys of their own)"));
                }
            }
        }
    }
    let w = c.webmail_url.trim();
    if !w.is_empty() {
        match url::Url::parse(w) {
            Ok(u) if u.scheme() == "https" => {}
            Ok(u) if u.scheme() == "http" && crate::config::is_loopback_host(u.host_str().unwrap_or("")) => {}
            _ => issue("new.webmail_url", format!("'{w}' is not an https URL")),
        }
    }
    match servers(config) {
        // [new]'s own keys were checked above.
        Err((key, _)) if key.starts_with("new.") => {}
        Err((key, message)) => issue(&key, message),
        Ok(Some(ours)) if !c.imap_host.trim().is_empty() => {
            // Mail 2's values, when set, must tell the same.
            let m = &config.cutover;
            let mail2 = [
                ("cutover.imap_host", m.imap_host.trim().to_owned(), ours.imap.host.clone()),
                ("cutover.imap_port", m.imap_port.to_string(), ours.imap.port.to_string()),
                ("cutover.smtp_host", m.smtp_host.trim().to_owned(), ours.submission.host.clone()),
                ("cutover.smtp_port", m.smtp_port.to_string(), ours.submission.port.to_string()),
                ("cutover.webmail_url", m.webmail_url.trim().to_owned(), ours.webmail.clone()),
            ];
            if !m.imap_host.trim().is_empty() {
                for (key, theirs, mine) in mail2 {
                    if !theirs.is_empty() && !mine.is_empty() && !theirs.eq_ignore_ascii_case(&mine) {
                        issue(
                            key,
                            format!(
                                "'{theirs}' differs from [new]'s '{mine}': mail 2 and mail clients would be told different servers"
                            ),
                        );
                    }
                }
                for (key, label, security) in [
                    ("cutover.imap_security", &m.imap_security, ours.imap.security),
                    ("cutover.smtp_security", &m.smtp_security, ours.submission.security),
                ] {
                    if security_of_label(label).is_some_and(|s| s != security) {
                        issue(key, format!("'{label}' differs from [new]'s {}", security.name()));
                    }
                }
            }
        }
        Ok(_) => {}
    }
    let a = &config.autoconfig;
    for (key, value) in [("autoconfig.display_name", &a.display_name), ("autoconfig.short_name", &a.short_name)] {
        if value.trim().is_empty() {
            issue(key, "is empty: clients show it as the account's name".to_owned());
        }
    }
    match (a.signing_certificate.trim().is_empty(), a.signing_key.trim().is_empty()) {
        (true, true) => {}
        (false, true) => issue("autoconfig.signing_key", "is empty while signing_certificate is set".to_owned()),
        (true, false) => issue("autoconfig.signing_certificate", "is empty while signing_key is set".to_owned()),
        (false, false) => {
            if let Err(e) = signer(a) {
                issue("autoconfig.signing_certificate", e);
            }
        }
    }
    issues
}

/// What clients are told, when `[new]` or mail 2 names the servers (the
/// values were checked at load).
pub fn settings(config: &Config) -> Option<AutoconfigSettings> {
    let servers = servers(config).ok().flatten()?;
    let a = &config.autoconfig;
    let signer = match signer(a) {
        Ok(s) => s.map(Arc::new),
        Err(e) => {
            eprintln!("warning: Apple profiles are served unsigned: {e}");
            None
        }
    };
    Some(AutoconfigSettings {
        domains: vec![config.addresses.domain.trim().to_ascii_lowercase()],
        display_name: a.display_name.trim().to_owned(),
        short_name: a.short_name.trim().to_owned(),
        imap: servers.imap,
        submission: servers.submission,
        webmail_url: (!servers.webmail.is_empty()).then_some(servers.webmail),
        signer,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn off_by_default_and_the_usual_ports_for_port_zero() {
        assert_eq!(settings(&Config::default()), None);
        let c = load(
            None,
            env(&[
                ("BMA_NEW_IMAP_HOST", "imap.bma.example"),
                ("BMA_NEW_SUBMISSION_HOST", "smtp.bma.example"),
                ("BMA_NEW_WEBMAIL_URL", "https://webmail.bma.example/"),
            ]),
        )
        .unwrap();
        let s = settings(&c).unwrap();
        assert_eq!(s.domains, vec!["adm.cfwb.be".to_owned()]);
        assert_eq!(s.imap, Server { host: "imap.bma.example".into(), port: 993, security: Security::Tls });
        assert_eq!(s.submission, Server { host: "smtp.bma.example".into(), port: 587, security: Security::StartTls });
        assert_eq!(s.webmail_url.as_deref(), Some("https://webmail.bma.example/"));
        assert!(s.signer.is_none());
        // The admin keys are still [new]'s, beside the client keys.
        let c = load(
            None,
            env(&[
                ("BMA_NEW_IMAP_HOST", "imap.bma.example"),
                ("BMA_NEW_IMAP_TLS", "starttls"),
                ("BMA_NEW_SUBMISSION_HOST", "smtp.bma.example"),
                ("BMA_NEW_SUBMISSION_TLS", "tls"),
                ("BMA_NEW_ADMIN", "master"),
            ]),
        )
        .unwrap();
        assert_eq!(c.new.admin, "master");
        let s = settings(&c).unwrap();
        assert_eq!((s.imap.port, s.imap.security), (143, Security::StartTls));
        assert_eq!((s.submission.port, s.submission.security), (465, Security::Tls));
        // An unknown key of [new] is still refused, with the known ones listed.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bma.toml");
        std::fs::write(&path, "[new]\nimap_hots = \"x\"\n").unwrap();
        let errors = load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(errors.contains("new.imap_hots: unknown key") && errors.contains("imap_host"), "{errors}");
    }

    #[test]
    fn mail_2s_values_serve_when_new_names_none_and_must_agree_when_it_does() {
        let mail2 = [
            ("BMA_CUTOVER_IMAP_HOST", "imap.bma.example"),
            ("BMA_CUTOVER_SMTP_HOST", "smtp.bma.example"),
            ("BMA_CUTOVER_WEBMAIL_URL", "https://webmail.bma.example/"),
        ];
        // The cutover's other keys are not set: [cutover] is not validated as a whole.
        let c = load(None, env(&mail2)).unwrap();
        let s = settings(&c).unwrap();
        assert_eq!(s.imap, Server { host: "imap.bma.example".into(), port: 993, security: Security::Tls });
        assert_eq!(s.submission, Server { host: "smtp.bma.example".into(), port: 587, security: Security::StartTls });
        assert_eq!(s.webmail_url.as_deref(), Some("https://webmail.bma.example/"));
        let mut both = mail2.to_vec();
        both.extend([("BMA_NEW_IMAP_HOST", "imap.other.example"), ("BMA_NEW_SUBMISSION_HOST", "smtp.bma.example")]);
        let errors = load(None, env(&both)).unwrap_err().to_string();
        assert!(
            errors.contains("cutover.imap_host: 'imap.bma.example' differs from [new]'s 'imap.other.example'"),
            "{errors}"
        );
        assert!(!errors.contains("cutover.smtp_host"), "{errors}");
        let errors =
            load(None, env(&[("BMA_CUTOVER_IMAP_HOST", "imap.bma.example"), ("BMA_CUTOVER_IMAP_SECURITY", "SSL v3")]))
                .unwrap_err()
                .to_string();
        assert!(errors.contains("cutover.imap_security: 'SSL v3' is not SSL/TLS or STARTTLS"), "{errors}");
    }

    #[test]
    fn a_half_configured_platform_or_signer_stops_the_load() {
        let errors = load(
            None,
            env(&[
                ("BMA_NEW_IMAP_HOST", "imaps://imap.bma.example"),
                ("BMA_NEW_IMAP_TLS", "ssl"),
                ("BMA_NEW_WEBMAIL_URL", "webmail.bma.example"),
                ("BMA_AUTOCONFIG_SIGNING_CERTIFICATE", "/nonexistent/cert.pem"),
            ]),
        )
        .unwrap_err()
        .to_string();
        for part in [
            "new.submission_host: is empty while new.imap_host is set",
            "new.imap_tls: 'ssl' is not tls or starttls",
            "new.webmail_url: 'webmail.bma.example' is not an https URL",
            "autoconfig.signing_key: is empty while signing_certificate is set",
        ] {
            assert!(errors.contains(part), "{part} missing from {errors}");
        }
        let errors = load(
            None,
            env(&[
                ("BMA_NEW_IMAP_HOST", "imaps://imap.bma.example"),
                ("BMA_NEW_SUBMISSION_HOST", "smtp.bma.example:587"),
                ("BMA_AUTOCONFIG_SIGNING_CERTIFICATE", "/nonexistent/cert.pem"),
                ("BMA_AUTOCONFIG_SIGNING_KEY", "/nonexistent/key.pem"),
            ]),
        )
        .unwrap_err()
        .to_string();
        for part in [
            "new.imap_host: 'imaps://imap.bma.example' is not a host name",
            "new.submission_host: 'smtp.bma.example:587' is not a host name",
            "autoconfig.signing_certificate: /nonexistent/cert.pem:",
        ] {
            assert!(errors.contains(part), "{part} missing from {errors}");
        }
    }

    #[test]
    fn a_signer_from_its_files() {
        let dir = tempfile::tempdir().unwrap();
        let cert = rcgen::generate_simple_self_signed(vec!["bma.example".to_owned()]).unwrap();
        let (c, k) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
        std::fs::write(&c, cert.cert.pem()).unwrap();
        std::fs::write(&k, cert.signing_key.serialize_pem()).unwrap();
        let config = load(
            None,
            env(&[
                ("BMA_NEW_IMAP_HOST", "imap.bma.example"),
                ("BMA_NEW_SUBMISSION_HOST", "smtp.bma.example"),
                ("BMA_AUTOCONFIG_SIGNING_CERTIFICATE", c.to_str().unwrap()),
                ("BMA_AUTOCONFIG_SIGNING_KEY", k.to_str().unwrap()),
            ]),
        )
        .unwrap();
        assert!(settings(&config).unwrap().signer.is_some());
        let other = rcgen::KeyPair::generate().unwrap();
        std::fs::write(&k, other.serialize_pem()).unwrap();
        let errors = load(
            None,
            env(&[
                ("BMA_AUTOCONFIG_SIGNING_CERTIFICATE", c.to_str().unwrap()),
                ("BMA_AUTOCONFIG_SIGNING_KEY", k.to_str().unwrap()),
            ]),
        )
        .unwrap_err()
        .to_string();
        assert!(errors.contains("not the key of the signing certificate"), "{errors}");
    }
}
