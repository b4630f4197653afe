//! `[cutover]` of `bma.toml`: how the cutover reaches the platforms'
//! accounts and the relay's routes (`bma-platform`'s files backend:
//! Dovecot passwd-files, a Postfix transport table), what mail 2 tells the
//! managers, and when cutovers start; its validation and the engine's
//! [`SwitchSettings`] built from it.
//!
//! The cutover is configured when `backend` is set (`files`); empty, the
//! scheduler cuts nothing over and `bma cutover run` says what is missing.

use std::path::PathBuf;
use std::sync::Arc;

use bma_engine::{ClientSettings, PasswordDelivery, SwitchSettings};
use std::path::Path;

use anyhow::Context as _;
use bma_imap::{Secret, Security};
use bma_platform::files::{PasswdFile, TransportMap};
use bma_platform::ldap::{Directory, LdapAccounts, LdapRoutes};
use bma_platform::{Accounts, Routing, Scheme, Transports};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, Origin};

/// `[cutover]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverConfig {
    /// `files` (Dovecot passwd-files, a Postfix transport table) or `ldap`
    /// (a directory read by Dovecot's `ldap` passdb/userdb and a Postfix
    /// `ldap:` table); empty: not configured.
    pub backend: String,
    /// Hour (UTC) at which a mailbox's cutover starts on its day.
    pub hour: u8,
    /// Hour (UTC, 1 to 24) from which no new cutover starts that day (the
    /// rest start on the next day, from `hour`).
    pub end_hour: u8,
    /// Mailboxes in flight at once, at most (queued, running or migrating).
    pub max_parallel: u32,
    /// The new platform's webmail, linked from mail 2 and the refusals.
    pub webmail_url: String,
    /// What the legacy platform answers a login once its mailbox migrated
    /// (French, one line); empty: "Votre boîte a été migrée : connectez-vous
    /// sur la nouvelle messagerie, <webmail_url>".
    pub legacy_refusal: String,
    /// Password schemes the new platform accepts, comma separated.
    pub accepted_schemes: String,
    /// The scheme of a hash written without `{SCHEME}` (the passdb's `scheme=`).
    pub default_scheme: String,
    /// The legacy platform's passwd-file.
    pub legacy_users_file: String,
    /// The legacy platform's refused logins (a passwd-file read with `skip = authenticated`).
    pub legacy_refused_file: String,
    /// The new platform's passwd-file.
    pub new_users_file: String,
    /// The new platform's refused logins.
    pub new_refused_file: String,
    /// `ldap`: the directory (`ldap://host:389`, `ldaps://host:636`).
    pub ldap_url: String,
    /// `ldap`: `starttls`, `implicit` or `none` (loopback only); empty: by the URL.
    pub ldap_tls: String,
    /// `ldap`: the DN bma binds as (it writes accounts and routes).
    pub ldap_bind_dn: String,
    /// `ldap`: a file holding its password.
    pub ldap_password_file: String,
    /// `ldap`: the base of the legacy platform's accounts.
    pub ldap_legacy_base: String,
    /// `ldap`: the base of the new platform's accounts.
    pub ldap_new_base: String,
    /// `ldap`: the base of the routes (Postfix's `ldap:` table reads them).
    pub ldap_routes_base: String,
    /// Postfix's transport table (its text file).
    pub transport_map: String,
    /// Its type (`hash`, `lmdb`).
    pub transport_map_type: String,
    /// Postfix's configuration directory (empty: the default).
    pub postfix_config_dir: String,
    /// The transport to the legacy platform, as the table names it.
    pub legacy_transport: String,
    /// The transport to the new platform.
    pub new_transport: String,
    /// A transport that keeps mail deferred (`retry:held`, …).
    pub held_transport: String,
    /// What mail 2 tells mail clients: IMAP host, port, security.
    pub imap_host: String,
    /// IMAP port.
    pub imap_port: u16,
    /// IMAP security as clients name it.
    pub imap_security: String,
    /// Submission host.
    pub smtp_host: String,
    /// Submission port.
    pub smtp_port: u16,
    /// Submission security.
    pub smtp_security: String,
}

/// The defaults: not configured; the FAQ's values where there are some.
pub fn defaults() -> CutoverConfig {
    CutoverConfig {
        backend: String::new(),
        hour: 6,
        end_hour: 18,
        max_parallel: 4,
        webmail_url: String::new(),
        legacy_refusal: String::new(),
        accepted_schemes: Scheme::STRONG.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(","),
        default_scheme: "SHA512-CRYPT".to_owned(),
        legacy_users_file: String::new(),
        legacy_refused_file: String::new(),
        new_users_file: String::new(),
        new_refused_file: String::new(),
        ldap_url: String::new(),
        ldap_tls: String::new(),
        ldap_bind_dn: String::new(),
        ldap_password_file: String::new(),
        ldap_legacy_base: String::new(),
        ldap_new_base: String::new(),
        ldap_routes_base: String::new(),
        transport_map: String::new(),
        transport_map_type: "hash".to_owned(),
        postfix_config_dir: String::new(),
        legacy_transport: String::new(),
        new_transport: String::new(),
        held_transport: "retry:held".to_owned(),
        imap_host: String::new(),
        imap_port: 993,
        imap_security: "SSL/TLS".to_owned(),
        smtp_host: String::new(),
        smtp_port: 587,
        smtp_security: "STARTTLS".to_owned(),
    }
}

impl CutoverConfig {
    fn schemes(&self) -> Result<Vec<Scheme>, String> {
        self.accepted_schemes
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| s.parse::<Scheme>().map_err(|e| e.to_string()))
            .collect()
    }

    /// The backend, if one is configured.
    fn backend(&self) -> Result<Option<Backend>, String> {
        match self.backend.trim() {
            "" => Ok(None),
            "files" => Ok(Some(Backend::Files)),
            "ldap" => Ok(Some(Backend::Ldap)),
            other => Err(format!("'{other}' is not files or ldap (or empty: no cutover)")),
        }
    }

    /// `ldap_tls`, or what the URL implies.
    fn ldap_security(&self) -> Result<Security, String> {
        match self.ldap_tls.trim() {
            "" if self.ldap_url.trim().to_ascii_lowercase().starts_with("ldaps://") => Ok(Security::Tls),
            "" | "starttls" => Ok(Security::StartTls),
            "implicit" => Ok(Security::Tls),
            "none" => Ok(Security::None),
            other => Err(format!("'{other}' is not starttls, implicit or none")),
        }
    }

    /// The host of `ldap_url`.
    fn ldap_host(&self) -> &str {
        let url = self.ldap_url.trim();
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        let authority = rest.split('/').next().unwrap_or("");
        match authority.strip_prefix('[') {
            Some(v6) => v6.split(']').next().unwrap_or(""),
            None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
        }
    }

    /// Both platforms' accounts and the relay's routes, on the backend.
    fn platforms(&self) -> anyhow::Result<Platforms> {
        let default_scheme = self.default_scheme.parse::<Scheme>().ok();
        let dir = self.postfix_config_dir.trim();
        let config_dir = (!dir.is_empty()).then(|| PathBuf::from(dir));
        let transports = Transports {
            legacy: self.legacy_transport.trim().to_owned(),
            new: self.new_transport.trim().to_owned(),
            held: self.held_transport.trim().to_owned(),
        };
        match self.backend().map_err(|e| anyhow::anyhow!("cutover.backend: {e}"))? {
            None => anyhow::bail!("cutover.backend is not set"),
            Some(Backend::Files) => Ok(Platforms {
                legacy: Arc::new(PasswdFile::new(
                    self.legacy_users_file.trim(),
                    self.legacy_refused_file.trim(),
                    default_scheme,
                )),
                new: Arc::new(PasswdFile::new(
                    self.new_users_file.trim(),
                    self.new_refused_file.trim(),
                    default_scheme,
                )),
                routing: Arc::new(TransportMap::new(
                    self.transport_map.trim(),
                    self.transport_map_type.trim(),
                    config_dir,
                    transports,
                )),
            }),
            Some(Backend::Ldap) => {
                let security = self.ldap_security().map_err(|e| anyhow::anyhow!("cutover.ldap_tls: {e}"))?;
                let password = Secret::read_file(Path::new(self.ldap_password_file.trim()))
                    .context("cutover.ldap_password_file")?;
                let directory = Directory::new(&self.ldap_url, security, true, &self.ldap_bind_dn, password)
                    .context("cutover.ldap_url")?;
                Ok(Platforms {
                    legacy: Arc::new(LdapAccounts::new(directory.clone(), &self.ldap_legacy_base, default_scheme)),
                    new: Arc::new(LdapAccounts::new(directory.clone(), &self.ldap_new_base, default_scheme)),
                    routing: Arc::new(LdapRoutes::new(directory, &self.ldap_routes_base, config_dir, transports)),
                })
            }
        }
    }

    /// The engine's settings, if the cutover is configured; new passwords
    /// reach the managers by `password_delivery` (`[passwords]`).
    pub fn settings(&self, password_delivery: PasswordDelivery) -> anyhow::Result<Option<SwitchSettings>> {
        if self.backend.trim().is_empty() {
            return Ok(None);
        }
        let Platforms { legacy: legacy_accounts, new: new_accounts, routing } = self.platforms()?;
        let webmail = self.webmail_url.trim().to_owned();
        let (refused_during, mut refused_after, refused_new_after_rollback) = SwitchSettings::default_reasons(&webmail);
        if !self.legacy_refusal.trim().is_empty() {
            refused_after = self.legacy_refusal.trim().to_owned();
        }
        // A test hook: abort at a step, as a killed worker would stop.
        let crash = match std::env::var("BMA_CUTOVER_CRASH_AFTER") {
            Ok(step) => Some(step.parse().map_err(|e| anyhow::anyhow!("BMA_CUTOVER_CRASH_AFTER: {e}"))?),
            Err(_) => None,
        };
        Ok(Some(SwitchSettings {
            legacy_accounts,
            new_accounts,
            routing,
            accepted_schemes: self.schemes().map_err(|e| anyhow::anyhow!("cutover.accepted_schemes: {e}"))?,
            webmail_url: webmail,
            password_delivery,
            clients: ClientSettings {
                imap_host: self.imap_host.trim().to_owned(),
                imap_port: self.imap_port,
                imap_security: self.imap_security.trim().to_owned(),
                smtp_host: self.smtp_host.trim().to_owned(),
                smtp_port: self.smtp_port,
                smtp_security: self.smtp_security.trim().to_owned(),
            },
            limits: bma_core::switch::Limits {
                start_hour: self.hour,
                end_hour: self.end_hour,
                max_parallel: self.max_parallel,
            },
            refused_during,
            refused_after,
            refused_new_after_rollback,
            crash,
        }))
    }
}

/// Both platforms' accounts and the relay's routes, on one backend.
struct Platforms {
    legacy: Arc<dyn Accounts>,
    new: Arc<dyn Accounts>,
    routing: Arc<dyn Routing>,
}

/// Where the cutover finds the platforms' accounts and the relay's routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    /// Dovecot passwd-files and a Postfix transport table.
    Files,
    /// A directory (Dovecot's `ldap` passdb/userdb, Postfix's `ldap:` table).
    Ldap,
}

/// Why a login's refusal cannot be what a platform answers: a line break
/// or control character (it ends the IMAP reply), or a text a mail client
/// would cut (over 200 characters).
fn refusal_problem(text: &str) -> Option<String> {
    if text.chars().any(char::is_control) {
        Some("must be one line, without control characters".to_owned())
    } else if text.trim().chars().count() > 200 {
        Some(format!("is {} characters long: at most 200", text.trim().chars().count()))
    } else {
        None
    }
}

/// Every problem of `[cutover]`, with its key.
pub fn validate(config: &Config) -> Vec<ConfigIssue> {
    let c = &config.cutover;
    let mut issues = Vec::new();
    let mut issue = |key: &str, message: String| {
        issues.push(ConfigIssue { key: format!("cutover.{key}"), origin: Origin::Merged, message });
    };
    if c.hour > 23 {
        issue("hour", format!("{} is not an hour (0 to 23)", c.hour));
    }
    if c.end_hour <= c.hour || c.end_hour > 24 {
        issue("end_hour", format!("{} is not an hour after cutover.hour {} (at most 24)", c.end_hour, c.hour));
    }
    if c.max_parallel == 0 {
        issue("max_parallel", "must be at least 1".to_owned());
    }
    if let Some(problem) = refusal_problem(&c.legacy_refusal) {
        issue("legacy_refusal", problem);
    }
    if let Err(e) = c.schemes() {
        issue("accepted_schemes", e);
    }
    if let Err(e) = c.default_scheme.parse::<Scheme>() {
        issue("default_scheme", e.to_string());
    }
    let backend = match c.backend() {
        Ok(None) => return issues,
        Ok(Some(backend)) => Some(backend),
        Err(e) => {
            issue("backend", e);
            None
        }
    };
    if !c.webmail_url.trim().starts_with("https://") && !c.webmail_url.trim().starts_with("http://") {
        issue("webmail_url", "must be the new webmail's URL (https://…)".to_owned());
    }
    let files = [
        ("legacy_users_file", &c.legacy_users_file),
        ("legacy_refused_file", &c.legacy_refused_file),
        ("new_users_file", &c.new_users_file),
        ("new_refused_file", &c.new_refused_file),
        ("transport_map", &c.transport_map),
    ];
    let ldap = [
        ("ldap_url", &c.ldap_url),
        ("ldap_bind_dn", &c.ldap_bind_dn),
        ("ldap_password_file", &c.ldap_password_file),
        ("ldap_legacy_base", &c.ldap_legacy_base),
        ("ldap_new_base", &c.ldap_new_base),
        ("ldap_routes_base", &c.ldap_routes_base),
    ];
    let of_backend: &[(&str, &String)] = match backend {
        Some(Backend::Files) => &files,
        Some(Backend::Ldap) => {
            match c.ldap_security() {
                Err(e) => issue("ldap_tls", e),
                Ok(Security::None) if !crate::config::is_loopback_host(c.ldap_host()) => issue(
                    "ldap_tls",
                    crate::config::plaintext_message("none", c.ldap_host(), "cutover", "starttls or implicit"),
                ),
                Ok(_) => {}
            }
            &ldap
        }
        None => &[],
    };
    for (key, value) in of_backend.iter().copied().chain([
        ("legacy_transport", &c.legacy_transport),
        ("new_transport", &c.new_transport),
        ("held_transport", &c.held_transport),
        ("imap_host", &c.imap_host),
        ("smtp_host", &c.smtp_host),
    ]) {
        if value.trim().is_empty() {
            issue(key, "must be set when the cutover is configured".to_owned());
        }
    }
    if config.legacy.url.trim().is_empty() || config.new.url.trim().is_empty() {
        issue("backend", "the cutover needs [legacy] and [new] configured".to_owned());
    }
    issues
}

#[cfg(test)]
mod tests {
    use crate::config::load;

    /// The keys of the problems `[cutover]` has with these variables (on
    /// top of a lab-like `[legacy]` and `[new]`).
    fn issues(cutover: &[(&str, &str)]) -> Vec<String> {
        let dir = tempfile::tempdir().expect("a directory");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").expect("a password file");
        let pw = pw.display().to_string();
        let mut env: Vec<(String, String)> = Vec::new();
        for (up, port) in [("LEGACY", 10143), ("NEW", 20143)] {
            env.push((format!("BMA_{up}_URL"), format!("imap://127.0.0.1:{port}")));
            env.push((format!("BMA_{up}_TLS"), "none".to_owned()));
            env.push((format!("BMA_{up}_ADMIN"), "admin".to_owned()));
            env.push((format!("BMA_{up}_PASSWORD_FILE"), pw.clone()));
        }
        for (k, v) in cutover {
            env.push((format!("BMA_CUTOVER_{k}"), (*v).replace("PW", &pw)));
        }
        match load(None, env) {
            Ok(_) => Vec::new(),
            Err(errors) => errors.0.into_iter().map(|i| i.key).collect(),
        }
    }

    const COMMON: [(&str, &str); 6] = [
        ("WEBMAIL_URL", "https://webmail.example"),
        ("LEGACY_TRANSPORT", "lmtp:inet:old:24"),
        ("NEW_TRANSPORT", "lmtp:inet:new:24"),
        ("IMAP_HOST", "imap.example"),
        ("SMTP_HOST", "smtp.example"),
        ("HELD_TRANSPORT", "retry:held"),
    ];

    const LDAP: [(&str, &str); 7] = [
        ("BACKEND", "ldap"),
        ("LDAP_URL", "ldap://127.0.0.1:10389"),
        ("LDAP_BIND_DN", "cn=bma,dc=x"),
        ("LDAP_PASSWORD_FILE", "PW"),
        ("LDAP_LEGACY_BASE", "ou=legacy,dc=x"),
        ("LDAP_NEW_BASE", "ou=new,dc=x"),
        ("LDAP_ROUTES_BASE", "ou=routes,dc=x"),
    ];

    fn with(
        base: &[(&'static str, &'static str)],
        more: &[(&'static str, &'static str)],
    ) -> Vec<(&'static str, &'static str)> {
        let mut all: Vec<_> =
            COMMON.iter().chain(base).copied().filter(|(k, _)| !more.iter().any(|(m, _)| m == k)).collect();
        all.extend(more.iter().filter(|(_, v)| !v.is_empty()).copied());
        all
    }

    #[test]
    fn each_backend_asks_for_its_own_keys() {
        type Case = (&'static str, Vec<(&'static str, &'static str)>, &'static [&'static str]);
        let cases: Vec<Case> = vec![
            ("not configured", vec![], &[]),
            ("an unknown backend", with(&[("BACKEND", "sql")], &[]), &["cutover.backend"]),
            ("ldap, all set, plain on loopback", with(&LDAP, &[("LDAP_TLS", "none")]), &[]),
            ("ldap, TLS by the URL", with(&LDAP, &[("LDAP_URL", "ldaps://ldap.example")]), &[]),
            (
                "ldap, plain to a remote host",
                with(&LDAP, &[("LDAP_URL", "ldap://ldap.example"), ("LDAP_TLS", "none")]),
                &["cutover.ldap_tls"],
            ),
            ("ldap, an unknown TLS mode", with(&LDAP, &[("LDAP_TLS", "ssl")]), &["cutover.ldap_tls"]),
            (
                "ldap, no bases",
                with(&LDAP, &[("LDAP_NEW_BASE", ""), ("LDAP_ROUTES_BASE", "")]),
                &["cutover.ldap_new_base", "cutover.ldap_routes_base"],
            ),
            (
                "files keys do not stand for ldap ones",
                with(&[("BACKEND", "ldap"), ("LEGACY_USERS_FILE", "/x"), ("NEW_USERS_FILE", "/y")], &[]),
                &[
                    "cutover.ldap_url",
                    "cutover.ldap_bind_dn",
                    "cutover.ldap_password_file",
                    "cutover.ldap_legacy_base",
                    "cutover.ldap_new_base",
                    "cutover.ldap_routes_base",
                ],
            ),
            (
                "files, no files",
                with(&[("BACKEND", "files"), ("TRANSPORT_MAP", "/t")], &[]),
                &[
                    "cutover.legacy_users_file",
                    "cutover.legacy_refused_file",
                    "cutover.new_users_file",
                    "cutover.new_refused_file",
                ],
            ),
        ];
        for (name, vars, expected) in cases {
            let mut got = issues(&vars);
            got.sort();
            let mut expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            expected.sort();
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn an_ldap_configuration_builds_the_directory_backend() {
        let dir = tempfile::tempdir().expect("a directory");
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "secret\n").expect("a password file");
        let mut c = super::defaults();
        c.backend = "ldap".into();
        c.ldap_url = "ldaps://ldap.example:636".into();
        c.ldap_bind_dn = "cn=bma,dc=x".into();
        c.ldap_password_file = pw.display().to_string();
        let super::Platforms { legacy, new, routing: routes } = c.platforms().expect("the directory backend");
        for shown in [format!("{legacy:?}"), format!("{new:?}"), format!("{routes:?}")] {
            assert!(shown.starts_with("Ldap"), "{shown}");
            assert!(!shown.contains("secret"), "the password is never shown: {shown}");
        }
        c.ldap_tls = "none".into();
        assert!(c.platforms().is_err(), "ldaps:// with tls none");
    }
}
