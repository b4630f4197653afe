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
use bma_platform::Scheme;
use bma_platform::files::{PasswdFile, TransportMap, Transports};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, Origin};

/// `[cutover]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CutoverConfig {
    /// `files` (Dovecot passwd-files, a Postfix transport table); empty: not configured.
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

    /// The engine's settings, if the cutover is configured; new passwords
    /// reach the managers by `password_delivery` (`[passwords]`).
    pub fn settings(&self, password_delivery: PasswordDelivery) -> anyhow::Result<Option<SwitchSettings>> {
        if self.backend.trim().is_empty() {
            return Ok(None);
        }
        let default_scheme = self.default_scheme.parse::<Scheme>().ok();
        let dir = self.postfix_config_dir.trim();
        let routing = TransportMap::new(
            PathBuf::from(self.transport_map.trim()),
            self.transport_map_type.trim(),
            (!dir.is_empty()).then(|| PathBuf::from(dir)),
            Transports {
                legacy: self.legacy_transport.trim().to_owned(),
                new: self.new_transport.trim().to_owned(),
                held: self.held_transport.trim().to_owned(),
            },
        );
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
            legacy_accounts: Arc::new(PasswdFile::new(
                self.legacy_users_file.trim(),
                self.legacy_refused_file.trim(),
                default_scheme,
            )),
            new_accounts: Arc::new(PasswdFile::new(
                self.new_users_file.trim(),
                self.new_refused_file.trim(),
                default_scheme,
            )),
            routing: Arc::new(routing),
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
    match c.backend.trim() {
        "" => return issues,
        "files" => {}
        other => issue("backend", format!("'{other}' is not files (or empty: no cutover)")),
    }
    if !c.webmail_url.trim().starts_with("https://") && !c.webmail_url.trim().starts_with("http://") {
        issue("webmail_url", "must be the new webmail's URL (https://…)".to_owned());
    }
    for (key, value) in [
        ("legacy_users_file", &c.legacy_users_file),
        ("legacy_refused_file", &c.legacy_refused_file),
        ("new_users_file", &c.new_users_file),
        ("new_refused_file", &c.new_refused_file),
        ("transport_map", &c.transport_map),
        ("legacy_transport", &c.legacy_transport),
        ("new_transport", &c.new_transport),
        ("held_transport", &c.held_transport),
        ("imap_host", &c.imap_host),
        ("smtp_host", &c.smtp_host),
    ] {
        if value.trim().is_empty() {
            issue(key, "must be set when the cutover is configured".to_owned());
        }
    }
    if config.legacy.url.trim().is_empty() || config.new.url.trim().is_empty() {
        issue("backend", "the cutover needs [legacy] and [new] configured".to_owned());
    }
    issues
}
