//! The `bma.toml` configuration: built-in defaults, the file, then the
//! environment, validated as a whole before anything starts.
//!
//! Every leaf key `section.key` can be overridden by the environment
//! variable `BMA_SECTION_KEY` (`database.url` → `BMA_DATABASE_URL`,
//! `contacts.during.phone` → `BMA_CONTACTS_DURING_PHONE`). Loading collects
//! every problem (unknown key, wrong type, bad value, inconsistent dates)
//! with its key and reports them together.

use std::fmt;
use std::path::{Path, PathBuf};

use bma_core::settings::{CampaignSettings, Sender, SettingIssue, Settings};
use bma_core::{AddressRule, contact::Contacts};
use serde::{Deserialize, Serialize};
use toml::{Table, Value};

/// The whole configuration of a `bma` process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Dates and windows.
    pub campaign: CampaignSettings,
    /// The address rule.
    pub addresses: AddressRule,
    /// Sender of the campaign's emails.
    pub sender: Sender,
    /// Contacts by phase.
    pub contacts: Contacts,
    /// Emails.
    pub mail: MailConfig,
    /// The portal.
    pub portal: PortalConfig,
    /// The organisation's part of the portal's privacy page.
    pub privacy: bma_web::settings::PrivacySettings,
    /// The identity provider of the portal (Cerbère EDU, OpenID Connect).
    pub oidc: OidcConfig,
    /// Admin access to the legacy platform (bounces, evidence of delivery, presync source).
    pub legacy: crate::engine_config::PlatformConfig,
    /// Admin access to the new platform (presync target), and the servers people's clients use.
    pub new: crate::autoconfig_config::NewConfig,
    /// What mail clients are told beside `[new]`'s servers (names, the profiles' signature).
    #[serde(default)]
    pub autoconfig: crate::autoconfig_config::AutoconfigConfig,
    /// Background copies.
    pub presync: crate::engine_config::PresyncConfig,
    /// The cutover: accounts, routes, mail 2.
    pub cutover: crate::cutover_config::CutoverConfig,
    /// New passwords.
    pub passwords: PasswordsConfig,
    /// Workers (`bma worker`, `bma serve`).
    pub worker: WorkerConfig,
    /// The store.
    pub database: DatabaseConfig,
    /// The helpdesk console of `bma serve`.
    #[serde(default)]
    pub console: crate::console_config::ConsoleConfig,
    /// Who may read `/metrics` of `bma serve`.
    #[serde(default)]
    pub metrics: crate::metrics_config::MetricsConfig,
    /// Audits the scheduler runs.
    #[serde(default)]
    pub audit: AuditConfig,
}

/// Audits the scheduler runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    /// Before a wave's mail 1, read each box's Sieve scripts on the legacy
    /// platform (`[legacy] managesieve`) and name what it forwards outside
    /// in mail 1, the reminders and the status page.
    pub forwarding_before_mail1: bool,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig { forwarding_before_mail1: true }
    }
}

/// How emails leave.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP relay host.
    pub smtp_host: String,
    /// SMTP relay port.
    pub smtp_port: u16,
    /// `starttls`, `tls` or `none`.
    pub smtp_tls: String,
    /// The bounce mailbox (VERP base).
    pub bounce_address: String,
    /// Domain of our Message-IDs.
    pub message_id_domain: String,
    /// Edited templates, or empty for the built-in ones.
    pub templates_dir: String,
    /// Days managers are asked to answer within.
    pub reply_days: u32,
    /// The migration team: the deadline list and the daily report go there.
    pub team_address: String,
    /// Send the migration team a daily report.
    pub daily_report: bool,
    /// The hour (0-23, campaign clock) from which the daily report is sent.
    pub daily_report_hour: u8,
    /// At most this many emails a minute to the relay (0: no limit).
    pub max_per_minute: u32,
    /// `smtp_tls = "none"` to a host that is not loopback: refused unless true.
    pub allow_plaintext: bool,
    /// A command listing the relay's queue as JSON lines (Postfix:
    /// `postqueue -c /etc/postfix -j`), consulted before an uncertain email
    /// is sent again; empty: not consulted.
    pub relay_queue_command: String,
}

/// New passwords (a manager who said the BMA's password is lost).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PasswordsConfig {
    /// How mail 2 gives it: `link` (a link that shows it once) or
    /// `inline` (written in the email).
    pub delivery: bma_engine::PasswordDelivery,
}

/// Workers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WorkerConfig {
    /// Real seconds a job's or an email's lease lasts unless its worker
    /// extends it (every third of it while it works): how long the work of
    /// a stopped worker waits before another takes it over.
    pub lease_seconds: u32,
}

/// The portal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalConfig {
    /// Public base URL of the portal.
    pub base_url: String,
    /// Requests per minute per client address (0: no limit).
    pub rate_limit_per_ip: u32,
    /// Requests per minute per form link (0: no limit).
    pub rate_limit_per_link: u32,
    /// Client address from the last X-Forwarded-For entry (behind a proxy).
    pub trust_forwarded_for: bool,
    /// Lifetime of a logged-in session, minutes.
    pub session_minutes: u32,
}

/// The portal's OpenID Connect provider; an empty issuer means none.
/// `Debug` masks the client secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// Issuer URL (discovery at `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// Client id.
    pub client_id: String,
    /// Client secret.
    pub client_secret: String,
    /// An `http://` issuer that is not loopback: refused unless true.
    pub allow_plaintext: bool,
}

impl fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &mask(&self.client_secret))
            .field("allow_plaintext", &self.allow_plaintext)
            .finish()
    }
}

/// `***` for a secret that is set, empty for one that is not.
pub fn mask(secret: &str) -> &'static str {
    if secret.is_empty() { "" } else { "***" }
}

impl MailConfig {
    /// The TLS mode, if the name is valid.
    pub fn tls(&self) -> Option<bma_mail::SmtpTls> {
        match self.smtp_tls.trim() {
            "starttls" => Some(bma_mail::SmtpTls::StartTls),
            "tls" => Some(bma_mail::SmtpTls::Tls),
            "none" => Some(bma_mail::SmtpTls::None),
            _ => None,
        }
    }
}

/// Where the store lives. `Debug` masks the URL's password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://FILE` (default `sqlite://bma.db`) or `postgres://…`.
    pub url: String,
}

impl fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseConfig").field("url", &bma_store::redact(&self.url)).finish()
    }
}

impl Default for Config {
    fn default() -> Self {
        let s = Settings::default();
        let (legacy, new, presync) = crate::engine_config::defaults();
        Config {
            campaign: s.campaign,
            addresses: s.addresses,
            sender: s.sender,
            contacts: s.contacts,
            mail: MailConfig {
                smtp_host: "127.0.0.1".to_owned(),
                smtp_port: 25,
                smtp_tls: "starttls".to_owned(),
                bounce_address: "bounces@cfwb.be".to_owned(),
                message_id_domain: "cfwb.be".to_owned(),
                templates_dir: String::new(),
                reply_days: 14,
                team_address: "migrationbma@cfwb.be".to_owned(),
                daily_report: true,
                daily_report_hour: 7,
                max_per_minute: 300,
                relay_queue_command: String::new(),
                allow_plaintext: false,
            },
            portal: PortalConfig {
                base_url: "http://127.0.0.1:8080".to_owned(),
                rate_limit_per_ip: 300,
                rate_limit_per_link: 60,
                trust_forwarded_for: false,
                session_minutes: 60,
            },
            privacy: bma_web::settings::PrivacySettings::default(),
            oidc: OidcConfig {
                issuer: String::new(),
                client_id: String::new(),
                client_secret: String::new(),
                allow_plaintext: false,
            },
            legacy,
            new: new.into(),
            autoconfig: crate::autoconfig_config::AutoconfigConfig::default(),
            presync,
            cutover: crate::cutover_config::defaults(),
            passwords: PasswordsConfig { delivery: bma_engine::PasswordDelivery::Link },
            worker: WorkerConfig { lease_seconds: 30 },
            database: DatabaseConfig { url: "sqlite://bma.db".to_owned() },
            console: crate::console_config::ConsoleConfig::default(),
            metrics: crate::metrics_config::MetricsConfig::default(),
            audit: AuditConfig::default(),
        }
    }
}

impl Config {
    /// The portal's identity provider, if an issuer is configured.
    pub fn oidc_settings(&self) -> Option<bma_web::OidcSettings> {
        let o = &self.oidc;
        (!o.issuer.trim().is_empty()).then(|| bma_web::OidcSettings {
            issuer: o.issuer.trim().to_owned(),
            client_id: o.client_id.trim().to_owned(),
            client_secret: o.client_secret.clone(),
            extra_scopes: Vec::new(),
            roles_claim: None,
        })
    }

    /// The domain settings.
    pub fn settings(&self) -> Settings {
        Settings {
            campaign: self.campaign.clone(),
            addresses: self.addresses.clone(),
            sender: self.sender.clone(),
            contacts: self.contacts.clone(),
        }
    }
}

/// Where a value came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file.
    File(PathBuf),
    /// An environment variable.
    Env(String),
    /// The merged whole.
    Merged,
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Dotted key.
    pub key: String,
    /// Where the offending value came from.
    pub origin: Origin,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File(p) => write!(f, "{}: {} (in {})", self.key, self.message, p.display()),
            Origin::Env(var) => write!(f, "{}: {} (from {var})", self.key, self.message),
            Origin::Merged => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

/// All the problems of a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigErrors(pub Vec<ConfigIssue>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        writeln!(f, "the configuration has {n} error{}:", if n == 1 { "" } else { "s" })?;
        for issue in &self.0 {
            writeln!(f, "  - {issue}")?;
        }
        Ok(())
    }
}

/// Loads the configuration: defaults, then `file` (if any), then the
/// variables of `env` (pairs, so that tests pass their own).
pub fn load<I>(file: Option<&Path>, env: I) -> Result<Config, ConfigErrors>
where
    I: IntoIterator<Item = (String, String)>,
{
    let defaults = Table::try_from(Config::default()).expect("defaults serialise");
    let mut merged = defaults.clone();
    let mut issues = Vec::new();
    if let Some(path) = file {
        let origin = Origin::File(path.to_owned());
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigErrors(vec![ConfigIssue { key: "(file)".into(), origin: origin.clone(), message: e.to_string() }])
        })?;
        let table: Table = text.parse().map_err(|e: toml::de::Error| {
            ConfigErrors(vec![ConfigIssue {
                key: "(syntax)".into(),
                origin: origin.clone(),
                message: e.to_string().trim().replace('\n', " "),
            }])
        })?;
        overlay(&defaults, &table, &mut merged, "", &origin, &mut issues);
    }
    let env: Vec<(String, String)> = env.into_iter().filter(|(k, _)| k.starts_with("BMA_")).collect();
    for (path, default) in leaves(&defaults, "") {
        let var = format!("BMA_{}", path.replace('.', "_").to_uppercase());
        if let Some((_, raw)) = env.iter().find(|(k, _)| *k == var) {
            let origin = Origin::Env(var.clone());
            match value_from_env(raw, &default) {
                Ok(v) => set(&mut merged, &path, v),
                Err(message) => issues.push(ConfigIssue { key: path.clone(), origin, message }),
            }
        }
    }
    closed_set::<bma_engine::PasswordDelivery>(&mut merged, &defaults, "passwords.delivery", &mut issues);
    let config = match Config::deserialize(Value::Table(merged)) {
        Ok(c) => Some(c),
        Err(e) => {
            issues.push(ConfigIssue { key: "(config)".into(), origin: Origin::Merged, message: e.to_string() });
            None
        }
    };
    if let Some(config) = &config {
        for SettingIssue { key, message } in config.settings().validate() {
            issues.push(ConfigIssue { key, origin: Origin::Merged, message });
        }
        let m = &config.mail;
        if m.tls().is_none() {
            issues.push(ConfigIssue {
                key: "mail.smtp_tls".into(),
                origin: Origin::Merged,
                message: format!("'{}' is not starttls, tls or none", m.smtp_tls),
            });
        }
        issues.extend(plaintext_issues(config));
        if !bma_core::settings::looks_like_email(&m.bounce_address) {
            issues.push(ConfigIssue {
                key: "mail.bounce_address".into(),
                origin: Origin::Merged,
                message: format!("'{}' is not an email address", m.bounce_address),
            });
        }
        if !bma_core::settings::looks_like_email(config.privacy.dpo_email.trim()) {
            issues.push(ConfigIssue {
                key: "privacy.dpo_email".into(),
                origin: Origin::Merged,
                message: format!("'{}' is not an email address", config.privacy.dpo_email),
            });
        }
        for (key, value) in [
            ("privacy.controller", &config.privacy.controller),
            ("privacy.legal_basis", &config.privacy.legal_basis),
            ("privacy.recipients", &config.privacy.recipients),
        ] {
            if value.trim().is_empty() {
                issues.push(ConfigIssue {
                    key: key.into(),
                    origin: Origin::Merged,
                    message: "is empty: the privacy page must say it".into(),
                });
            }
        }
        let base = config.portal.base_url.trim();
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            issues.push(ConfigIssue {
                key: "portal.base_url".into(),
                origin: Origin::Merged,
                message: format!("'{base}' is not an http(s) URL"),
            });
        } else {
            let mut portal = bma_web::PortalSettings::new(base);
            portal.oidc = config.oidc_settings();
            portal.console = crate::console_config::settings(config);
            // Each problem starts with its key (`oidc.client_id is empty`).
            for problem in portal.problems() {
                let (key, message) = problem.split_once(' ').unwrap_or(("portal", problem.as_str()));
                issues.push(ConfigIssue { key: key.into(), origin: Origin::Merged, message: message.to_owned() });
            }
        }
        issues.extend(crate::engine_config::validate(config));
        issues.extend(crate::cutover_config::validate(config));
        issues.extend(crate::metrics_config::validate(config));
        issues.extend(crate::autoconfig_config::validate(config));
        let url = config.database.url.trim();
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            issues.push(ConfigIssue {
                key: "database.url".into(),
                origin: Origin::Merged,
                message: format!("'{}' is neither sqlite://FILE nor postgres://…", bma_store::redact(url)),
            });
        }
    }
    match config {
        Some(c) if issues.is_empty() => Ok(c),
        _ => Err(ConfigErrors(issues)),
    }
}

/// A key whose values are a closed set (an enum read from its name): a
/// name that is not one is reported with its key, and the default put in
/// its place so that the rest is still checked (serde's own error would
/// name neither the key nor where it came from).
fn closed_set<T>(merged: &mut Table, defaults: &Table, path: &str, issues: &mut Vec<ConfigIssue>)
where
    T: std::str::FromStr,
    T::Err: fmt::Display,
{
    let (section, key) = path.split_once('.').expect("a dotted key");
    let at = |t: &Table| t.get(section).and_then(|s| s.get(key)).cloned();
    let Some(value) = at(merged) else { return };
    let problem = match value.as_str() {
        Some(name) => name.parse::<T>().err().map(|e| e.to_string()),
        None => Some(format!("{value} is not a name")),
    };
    if let Some(message) = problem {
        issues.push(ConfigIssue { key: path.to_owned(), origin: Origin::Merged, message });
        if let Some(default) = at(defaults) {
            set(merged, path, default);
        }
    }
}

/// Plaintext to a host that is not loopback, refused unless the section
/// allows it explicitly (`allow_plaintext = true`): the SMTP relay with
/// `mail.smtp_tls = "none"` and an `http://` OpenID Connect issuer. The IMAP
/// platforms are checked with their section ([`crate::engine_config::validate`]).
fn plaintext_issues(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let m = &config.mail;
    if m.tls() == Some(bma_mail::SmtpTls::None) && !m.allow_plaintext && !is_loopback_host(&m.smtp_host) {
        issues.push(ConfigIssue {
            key: "mail.smtp_tls".into(),
            origin: Origin::Merged,
            message: plaintext_message("none", m.smtp_host.trim(), "mail", "starttls or tls"),
        });
    }
    let o = &config.oidc;
    if !o.allow_plaintext
        && let Ok(u) = url::Url::parse(o.issuer.trim())
        && u.scheme() == "http"
        && !is_loopback_host(u.host_str().unwrap_or(""))
    {
        issues.push(ConfigIssue {
            key: "oidc.issuer".into(),
            origin: Origin::Merged,
            message: plaintext_message(o.issuer.trim(), u.host_str().unwrap_or(""), "oidc", "https"),
        });
    }
    issues
}

/// The words of a plaintext refusal: what was asked, the host, how to fix it.
pub fn plaintext_message(what: &str, host: &str, section: &str, instead: &str) -> String {
    format!(
        "'{what}' is plaintext to {host}, which is not a loopback host: use {instead}, \
         or set {section}.allow_plaintext = true if the network is trusted"
    )
}

/// `localhost`, `127.0.0.0/8` or `::1` (names are not resolved).
pub fn is_loopback_host(host: &str) -> bool {
    bma_web::settings::is_loopback_host(host.trim())
}

/// The dates of the schema are strings in the defaults; a TOML date in the
/// file is accepted for them.
fn normalise(v: &Value) -> Value {
    match v {
        Value::Datetime(d) if d.date.is_some() && d.time.is_none() => Value::String(d.to_string()),
        other => other.clone(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a number",
        Value::Boolean(_) => "true or false",
        Value::Datetime(_) => "a date",
        Value::Array(_) => "a list",
        Value::Table(_) => "a section",
    }
}

fn overlay(
    schema: &Table,
    given: &Table,
    merged: &mut Table,
    prefix: &str,
    origin: &Origin,
    issues: &mut Vec<ConfigIssue>,
) {
    for (key, value) in given {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        let Some(expected) = schema.get(key) else {
            let known: Vec<&str> = schema.keys().map(String::as_str).collect();
            issues.push(ConfigIssue {
                key: path,
                origin: origin.clone(),
                message: format!("unknown key (known here: {})", known.join(", ")),
            });
            continue;
        };
        let value = normalise(value);
        match (expected, &value) {
            (Value::Table(sub_schema), Value::Table(sub_given)) => {
                if let Some(Value::Table(sub_merged)) = merged.get_mut(key) {
                    overlay(sub_schema, sub_given, sub_merged, &path, origin, issues);
                }
            }
            (e, v) if std::mem::discriminant(e) == std::mem::discriminant(v) => {
                merged.insert(key.clone(), value.clone());
            }
            (e, v) => issues.push(ConfigIssue {
                key: path,
                origin: origin.clone(),
                message: format!("expected {}, found {}", type_name(e), type_name(v)),
            }),
        }
    }
}

fn leaves(t: &Table, prefix: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (k, v) in t {
        let path = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
        match v {
            Value::Table(sub) => out.extend(leaves(sub, &path)),
            other => out.push((path, other.clone())),
        }
    }
    out
}

fn value_from_env(raw: &str, default: &Value) -> Result<Value, String> {
    match default {
        Value::Integer(_) => {
            raw.trim().parse::<i64>().map(Value::Integer).map_err(|_| format!("'{raw}' is not an integer"))
        }
        Value::Boolean(_) => match raw.trim() {
            "true" | "1" | "yes" => Ok(Value::Boolean(true)),
            "false" | "0" | "no" => Ok(Value::Boolean(false)),
            _ => Err(format!("'{raw}' is not true or false")),
        },
        // A list of texts (`metrics.allow`): comma-separated.
        Value::Array(items) if items.first().is_some_and(Value::is_str) => Ok(Value::Array(
            raw.split(',').map(str::trim).filter(|s| !s.is_empty()).map(|s| Value::String(s.to_owned())).collect(),
        )),
        Value::Array(_) => raw
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| {
                s.parse::<i64>().map(Value::Integer).map_err(|_| format!("'{raw}' is not a list of integers (7,14)"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Value::Array),
        _ => Ok(Value::String(raw.to_owned())),
    }
}

fn set(t: &mut Table, path: &str, v: Value) {
    match path.split_once('.') {
        Some((head, rest)) => {
            if let Some(Value::Table(sub)) = t.get_mut(head) {
                set(sub, rest, v);
            }
        }
        None => {
            t.insert(path.to_owned(), v);
        }
    }
}

/// The commented `bma.toml` that `bma init` writes: the FAQ's campaign.
pub const TEMPLATE: &str = include_str!("bma.toml");

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    fn write(text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bma.toml");
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn the_template_is_the_defaults() {
        let (_dir, path) = write(TEMPLATE);
        assert_eq!(load(Some(&path), env(&[])).unwrap(), Config::default());
    }

    #[test]
    fn environment_overrides_file() {
        let (_dir, path) = write("[database]\nurl = \"sqlite://a.db\"\n[campaign]\ncutover_min_weeks = 4\n");
        let c = load(
            Some(&path),
            env(&[("BMA_DATABASE_URL", "postgres://bma@localhost/bma"), ("BMA_CAMPAIGN_CUTOVER_MAX_WEEKS", "10")]),
        )
        .unwrap();
        assert_eq!(c.database.url, "postgres://bma@localhost/bma");
        assert_eq!((c.campaign.cutover_min_weeks, c.campaign.cutover_max_weeks), (4, 10));
    }

    #[test]
    fn every_error_is_reported_with_its_key() {
        let (_dir, path) = write(
            "[campaign]\nstart = 2024-06-01\nquota_multiplier = \"lots\"\ncolour = \"blue\"\n\
             [contacts.during]\nemail = \"nobody\"\n[database]\nurl = \"mysql://x\"\n",
        );
        let errors = load(Some(&path), env(&[("BMA_CAMPAIGN_CUTOVER_MIN_WEEKS", "three")])).unwrap_err();
        let shown = errors.to_string().replace(&path.display().to_string(), "FILE");
        expect_test::expect![[r#"
            the configuration has 7 errors:
              - campaign.colour: unknown key (known here: cutover_capacity, cutover_capacity_gb, cutover_max_weeks, cutover_min_weeks, cutover_weekday, end, faq_url, invitation_deadline, name, quota_multiplier, reminder_days, start, wave_capacity, wave_hour, wave_weekday) (in FILE)
              - campaign.quota_multiplier: expected an integer, found a string (in FILE)
              - campaign.cutover_min_weeks: 'three' is not an integer (from BMA_CAMPAIGN_CUTOVER_MIN_WEEKS)
              - campaign.end: 2024-05-31 is before campaign.start 2024-06-01
              - campaign.invitation_deadline: 2024-05-24 is outside the campaign (2024-06-01 to 2024-05-31)
              - contacts.during.email: 'nobody' is not an email address
              - database.url: 'mysql://x' is neither sqlite://FILE nor postgres://…
        "#]]
        .assert_eq(&shown);
    }

    #[test]
    fn semantic_errors_all_at_once() {
        let (_dir, path) = write("[contacts.during]\nemail = \"nobody\"\n[database]\nurl = \"mysql://x\"\n");
        let errors = load(Some(&path), env(&[])).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["contacts.during.email", "database.url"]);
    }

    #[test]
    fn password_delivery_is_a_closed_set() {
        let c = load(None, env(&[("BMA_PASSWORDS_DELIVERY", "inline")])).unwrap();
        assert_eq!(c.passwords.delivery, bma_engine::PasswordDelivery::Inline);
        assert_eq!(Config::default().passwords.delivery, bma_engine::PasswordDelivery::Link);
        let (_dir, path) = write("[passwords]\ndelivery = \"sms\"\n[database]\nurl = \"mysql://x\"\n");
        let errors = load(Some(&path), env(&[])).unwrap_err().to_string();
        expect_test::expect![[r#"
            the configuration has 2 errors:
              - passwords.delivery: 'sms' is not link or inline
              - database.url: 'mysql://x' is neither sqlite://FILE nor postgres://…
        "#]]
        .assert_eq(&errors);
        let (_dir, path) = write("[passwords]\ndelivery = 2\n");
        let errors = load(Some(&path), env(&[])).unwrap_err().to_string();
        assert!(errors.contains("passwords.delivery"), "{errors}");
    }

    #[test]
    fn cutover_limits_are_checked() {
        let c = load(None, env(&[])).unwrap();
        assert_eq!((c.cutover.hour, c.cutover.end_hour, c.cutover.max_parallel), (6, 18, 4));
        let vars = [("BMA_CUTOVER_HOUR", "9"), ("BMA_CUTOVER_END_HOUR", "9"), ("BMA_CUTOVER_MAX_PARALLEL", "0")];
        let errors = load(None, env(&vars)).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["cutover.end_hour", "cutover.max_parallel"], "{errors}");
        let refusal = load(None, env(&[("BMA_CUTOVER_LEGACY_REFUSAL", "Migrée\u{7}")])).unwrap_err();
        assert_eq!(refusal.0[0].key, "cutover.legacy_refusal", "{refusal}");
        let long = "é".repeat(201);
        let refusal = load(None, env(&[("BMA_CUTOVER_LEGACY_REFUSAL", long.as_str())])).unwrap_err();
        assert!(refusal.to_string().contains("201 characters long"), "{refusal}");
        let late = load(None, env(&[("BMA_CUTOVER_END_HOUR", "25")])).unwrap_err();
        assert!(late.to_string().contains("cutover.end_hour: 25 is not an hour after cutover.hour 6"), "{late}");
    }

    #[test]
    fn syntax_errors_name_the_file() {
        let (_dir, path) = write("[campaign\n");
        let errors = load(Some(&path), env(&[])).unwrap_err();
        assert_eq!(errors.0[0].key, "(syntax)");
    }

    #[test]
    fn the_privacy_page_is_configured_in_its_section() {
        let (_dir, path) = write("[privacy]\nretention_months = 18\ndpo_email = \"dpo@exemple.be\"\n");
        let c = load(Some(&path), env(&[("BMA_PRIVACY_CONTROLLER", "Ville de Namur")])).unwrap();
        let p = c.privacy.trimmed();
        assert_eq!(
            (p.retention_months, p.dpo_email.as_str(), p.controller.as_str()),
            (18, "dpo@exemple.be", "Ville de Namur")
        );
        assert_eq!(p.legal_basis, bma_web::settings::PrivacySettings::default().legal_basis, "the rest: the defaults");
        let errors =
            load(None, env(&[("BMA_PRIVACY_DPO_EMAIL", "personne"), ("BMA_PRIVACY_RECIPIENTS", " ")])).unwrap_err();
        let keys: Vec<&str> = errors.0.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, vec!["privacy.dpo_email", "privacy.recipients"]);
    }

    #[test]
    fn plaintext_only_to_loopback_unless_allowed() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("admin.pw");
        std::fs::write(&pw, "s3cr3t-imap\n").unwrap();
        let pw = pw.display().to_string();
        let imap = |section: &str, url: &str, tls: &str, allow: &str| {
            let up = section.to_uppercase();
            vec![
                (format!("BMA_{up}_URL"), url.to_owned()),
                (format!("BMA_{up}_TLS"), tls.to_owned()),
                (format!("BMA_{up}_ADMIN"), "admin".to_owned()),
                (format!("BMA_{up}_PASSWORD_FILE"), pw.clone()),
                (format!("BMA_{up}_ALLOW_PLAINTEXT"), allow.to_owned()),
            ]
        };
        let smtp = |host: &str, tls: &str, allow: &str| {
            vec![
                ("BMA_MAIL_SMTP_HOST".to_owned(), host.to_owned()),
                ("BMA_MAIL_SMTP_TLS".to_owned(), tls.to_owned()),
                ("BMA_MAIL_ALLOW_PLAINTEXT".to_owned(), allow.to_owned()),
            ]
        };
        let oidc = |issuer: &str, allow: &str| {
            vec![
                ("BMA_OIDC_ISSUER".to_owned(), issuer.to_owned()),
                ("BMA_OIDC_CLIENT_ID".to_owned(), "bma-portal".to_owned()),
                ("BMA_OIDC_ALLOW_PLAINTEXT".to_owned(), allow.to_owned()),
            ]
        };
        type Vars = Vec<(String, String)>;
        let cases: Vec<(&str, Vars, &[&str])> = vec![
            ("smtp none on loopback", smtp("127.0.0.1", "none", "false"), &[]),
            ("smtp none on localhost", smtp("localhost", "none", "false"), &[]),
            ("smtp none on ::1", smtp("::1", "none", "false"), &[]),
            ("smtp none to a relay", smtp("relay.example", "none", "false"), &["mail.smtp_tls"]),
            ("smtp none to 10.0.0.1", smtp("10.0.0.1", "none", "false"), &["mail.smtp_tls"]),
            ("smtp none to a relay, allowed", smtp("relay.example", "none", "true"), &[]),
            ("smtp starttls to a relay", smtp("relay.example", "starttls", "false"), &[]),
            ("smtp tls to a relay", smtp("relay.example", "tls", "false"), &[]),
            ("oidc http on loopback", oidc("http://127.0.0.1:9090", "false"), &[]),
            ("oidc http on localhost", oidc("http://localhost:9090/", "false"), &[]),
            ("oidc https", oidc("https://cerbere.example", "false"), &[]),
            ("oidc http elsewhere", oidc("http://cerbere.example", "false"), &["oidc.issuer"]),
            ("oidc http elsewhere, allowed", oidc("http://cerbere.example", "true"), &[]),
            ("legacy none on loopback", imap("legacy", "imap://127.0.0.1:10143", "none", "false"), &[]),
            ("legacy none elsewhere", imap("legacy", "imap://imap.example:143", "none", "false"), &["legacy.tls"]),
            ("legacy none elsewhere, allowed", imap("legacy", "imap://imap.example", "none", "true"), &[]),
            ("legacy starttls elsewhere", imap("legacy", "imap://imap.example", "", "false"), &[]),
            ("legacy imaps elsewhere", imap("legacy", "imaps://imap.example", "", "false"), &[]),
            ("new none on loopback", imap("new", "imap://[::1]:20143", "none", "false"), &[]),
            ("new none elsewhere", imap("new", "imap://192.0.2.7:143", "none", "false"), &["new.tls"]),
            ("new none elsewhere, allowed", imap("new", "imap://192.0.2.7:143", "none", "true"), &[]),
        ];
        for (what, vars, expected) in cases {
            let got = match load(None, vars) {
                Ok(_) => vec![],
                Err(errors) => errors.0.iter().map(|i| i.key.clone()).collect::<Vec<_>>(),
            };
            assert_eq!(got, *expected, "{what}");
        }
        // The message says what to do.
        let errors = load(None, smtp("relay.example", "none", "false")).unwrap_err().to_string();
        assert!(errors.contains("mail.smtp_tls: 'none' is plaintext to relay.example, which is not a loopback host: use starttls or tls, or set mail.allow_plaintext = true"), "{errors}");
    }

    #[test]
    fn debug_of_settings_prints_no_secret() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("admin.pw");
        std::fs::write(&pw, "s3cr3t-imap\n").unwrap();
        let pw = pw.display().to_string();
        let vars = env(&[
            ("BMA_OIDC_ISSUER", "http://127.0.0.1:9090"),
            ("BMA_OIDC_CLIENT_ID", "bma-portal"),
            ("BMA_OIDC_CLIENT_SECRET", "s3cr3t-oidc"),
            ("BMA_DATABASE_URL", "postgres://bma:s3cr3t-db@db.example:5432/bma"),
            ("BMA_LEGACY_URL", "imap://127.0.0.1:10143"),
            ("BMA_LEGACY_TLS", "none"),
            ("BMA_LEGACY_ADMIN", "admin"),
            ("BMA_LEGACY_PASSWORD_FILE", &pw),
            ("BMA_NEW_URL", "imap://127.0.0.1:20143"),
            ("BMA_NEW_TLS", "none"),
            ("BMA_NEW_ADMIN", "admin"),
            ("BMA_NEW_PASSWORD_FILE", &pw),
        ]);
        let config = load(None, vars).unwrap();
        let portal = crate::commands::serve::portal_settings(&config);
        let shown = [
            format!("{config:?}"),
            format!("{config:#?}"),
            format!("{:?}", config.oidc),
            format!("{:?}", config.database),
            format!("{:?}", config.oidc_settings()),
            format!("{portal:?}"),
            format!("{:?}", config.legacy.access().unwrap()),
            format!("{:?}", config.new.access().unwrap()),
        ];
        for text in &shown {
            for secret in ["s3cr3t-oidc", "s3cr3t-db", "s3cr3t-imap"] {
                assert!(!text.contains(secret), "{secret} in {text}");
            }
        }
        // What is not secret is still there to debug with.
        assert!(shown[0].contains("postgres://bma:***@db.example:5432/bma"), "{}", shown[0]);
        assert!(shown[0].contains("client_secret: \"***\""), "{}", shown[0]);
        assert!(shown[5].contains("bma-portal"), "{}", shown[5]);
    }

    #[test]
    fn database_urls_are_redacted() {
        for (url, shown) in [
            ("sqlite://bma.db", "sqlite://bma.db"),
            ("postgres://bma@db/bma", "postgres://bma@db/bma"),
            ("postgres://bma:pw@db/bma", "postgres://bma:***@db/bma"),
            ("postgres://bma:p@ss@db/bma", "postgres://bma:***@db/bma"),
            ("postgres://db/bma?user=bma&password=pw", "postgres://db/bma?user=bma&password=***"),
            ("postgres://db/bma?password=pw&sslmode=require", "postgres://db/bma?password=***&sslmode=require"),
        ] {
            let d = DatabaseConfig { url: url.to_owned() };
            assert_eq!(format!("{d:?}"), format!("DatabaseConfig {{ url: {shown:?} }}"), "{url}");
        }
    }

    #[test]
    fn no_file_means_defaults() {
        assert_eq!(load(None, env(&[])).unwrap(), Config::default());
    }
}
