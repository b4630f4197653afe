//! The parts of `bma.toml` the campaign engine needs beyond the campaign
//! itself: admin access to both mail platforms (`[legacy]`, `[new]`) and
//! the limits of the background copies (`[presync]`), their validation,
//! and the engine built from the whole configuration.
//!
//! Passwords are read from files named in the configuration, never written
//! in it, and never printed.

use std::path::Path;
use std::time::Duration as StdDuration;

use anyhow::Context;
use bma_engine::{Engine, EngineSettings, PlatformAccess, PresyncSettings};
use bma_imap::{Config as ImapConfig, ImapUrl, Secret, Security};
use bma_mail::{SmtpConfig, SmtpSender, Templates};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ConfigIssue, Origin};

/// Admin access to one platform's IMAP; an empty URL means not configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// `imaps://HOST[:993]` (implicit TLS) or `imap://HOST[:143]` (STARTTLS, required).
    pub url: String,
    /// `none` allows plaintext (a lab on loopback); empty follows the URL.
    pub tls: String,
    /// The admin (master) user, who logs in on behalf of each mailbox.
    pub admin: String,
    /// A file holding the admin's password.
    pub password_file: String,
    /// `tls = "none"` to a host that is not loopback: refused unless true.
    pub allow_plaintext: bool,
    /// ManageSieve (RFC 5804) as `HOST:PORT`, for the forwarding audit;
    /// empty: the URL's host on port 4190; `none`: it has none (nothing
    /// audited, nothing carried at the cutover). Same TLS and admin as IMAP
    /// (STARTTLS unless `tls = "none"`, which ManageSieve allows on
    /// loopback only).
    #[serde(default)]
    pub managesieve: String,
}

impl PlatformConfig {
    fn unset() -> PlatformConfig {
        PlatformConfig {
            url: String::new(),
            tls: String::new(),
            admin: String::new(),
            password_file: String::new(),
            allow_plaintext: false,
            managesieve: String::new(),
        }
    }

    pub(crate) fn is_set(&self) -> bool {
        !self.url.trim().is_empty()
    }

    /// The IMAP configuration, or what is wrong with the URL or TLS mode.
    fn imap(&self) -> Result<ImapConfig, String> {
        let url = ImapUrl::parse(&self.url).map_err(|e| e.to_string())?;
        let choice = match self.tls.trim() {
            "" => None,
            "starttls" => Some(Security::StartTls),
            "implicit" => Some(Security::Tls),
            "none" => Some(Security::None),
            other => return Err(format!("tls '{other}' is not starttls, implicit or none")),
        };
        url.config(choice).map_err(|e| e.to_string())
    }

    pub(crate) fn access(&self) -> anyhow::Result<Option<PlatformAccess>> {
        if !self.is_set() {
            return Ok(None);
        }
        let config = self.imap().map_err(|e| anyhow::anyhow!(e))?;
        let sieve = match self.managesieve.trim() {
            "none" => None,
            _ => Some(self.sieve(&config)?),
        };
        let password = Secret::read_file(Path::new(self.password_file.trim())).context("the password file")?;
        Ok(Some(PlatformAccess { config, admin: self.admin.trim().to_owned(), password, sieve }))
    }
}

impl PlatformConfig {
    /// This platform's ManageSieve (`managesieve = "HOST:PORT"`, default
    /// the IMAP host on port 4190), with the IMAP side's TLS choices.
    fn sieve(&self, imap: &bma_imap::Config) -> anyhow::Result<bma_platform::managesieve::Config> {
        use bma_platform::managesieve::{Config as SieveConfig, DEFAULT_PORT, Security as SieveSecurity};
        let (host, port) = match self.managesieve.trim() {
            "" => (imap.host.clone(), DEFAULT_PORT),
            text => {
                let (host, port) =
                    text.rsplit_once(':').ok_or_else(|| anyhow::anyhow!("managesieve {text:?} is not HOST:PORT"))?;
                let port: u16 = port.parse().map_err(|_| anyhow::anyhow!("managesieve {text:?}: bad port"))?;
                (host.trim_start_matches('[').trim_end_matches(']').to_owned(), port)
            }
        };
        let mut config = SieveConfig::new(host, port);
        if imap.security == Security::None {
            config.security = SieveSecurity::PlainOnLoopback;
        }
        config.insecure = imap.insecure;
        config.roots = imap.roots.clone();
        Ok(config)
    }
}

/// Limits of the background copies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PresyncConfig {
    /// Copies at all (they also need [legacy] and [new]).
    pub enabled: bool,
    /// Mailboxes copied at once.
    pub parallel: u32,
    /// IMAP connections per server, all copies together.
    pub max_connections: u32,
    /// Bytes copied per second, all copies together (0: no limit).
    pub max_bytes_per_second: u64,
    /// Allowed hours (UTC), `20-7` for nights, `0-24` for always.
    pub hours: String,
    /// All day on weekends as well.
    pub weekends: bool,
}

/// The defaults: no platform configured, copies at night and on weekends.
pub fn defaults() -> (PlatformConfig, PlatformConfig, PresyncConfig) {
    (
        PlatformConfig::unset(),
        PlatformConfig::unset(),
        PresyncConfig {
            enabled: true,
            parallel: 2,
            max_connections: 4,
            max_bytes_per_second: 0,
            hours: "20-7".to_owned(),
            weekends: true,
        },
    )
}

/// Every problem of these sections, with its key.
pub fn validate(config: &Config) -> Vec<ConfigIssue> {
    let mut issues = Vec::new();
    let mut issue = |key: &str, message: String| {
        issues.push(ConfigIssue { key: key.to_owned(), origin: Origin::Merged, message });
    };
    for (name, p) in [("legacy", &config.legacy), ("new", &config.new)] {
        if !p.is_set() {
            continue;
        }
        match p.imap() {
            Err(e) => issue(&format!("{name}.url"), e),
            Ok(imap) => {
                if imap.security == Security::None && !p.allow_plaintext && !crate::config::is_loopback_host(&imap.host)
                {
                    issue(
                        &format!("{name}.tls"),
                        crate::config::plaintext_message("none", &imap.host, name, "starttls or implicit"),
                    );
                }
            }
        }
        if p.admin.trim().is_empty() {
            issue(&format!("{name}.admin"), "must name the admin (master) user".to_owned());
        }
        if p.password_file.trim().is_empty() {
            issue(&format!("{name}.password_file"), "must name a file holding the admin's password".to_owned());
        } else if let Err(e) = std::fs::metadata(p.password_file.trim()) {
            issue(&format!("{name}.password_file"), format!("{}: {e}", p.password_file));
        }
    }
    let s = &config.presync;
    if let Err(e) = PresyncSettings::parse_hours(&s.hours) {
        issue("presync.hours", e);
    }
    if s.parallel == 0 {
        issue("presync.parallel", "must be at least 1".to_owned());
    }
    if s.max_connections == 0 {
        issue("presync.max_connections", "must be at least 1".to_owned());
    }
    if config.mail.daily_report_hour > 23 {
        issue("mail.daily_report_hour", format!("{} is not an hour (0-23)", config.mail.daily_report_hour));
    }
    if !bma_core::settings::looks_like_email(&config.mail.team_address) {
        issue("mail.team_address", format!("'{}' is not an email address", config.mail.team_address));
    }
    issues
}

/// The engine of this configuration, on its store, as worker `worker`.
pub async fn engine(config: &Config, worker: &str) -> anyhow::Result<Engine> {
    let store = crate::commands::open_store(config).await?;
    let dir = config.mail.templates_dir.trim();
    let templates = Templates::load((!dir.is_empty()).then(|| std::path::Path::new(dir))).context("mail templates")?;
    let sender = SmtpSender::new(&SmtpConfig {
        host: config.mail.smtp_host.clone(),
        port: config.mail.smtp_port,
        tls: config.mail.tls().context("mail.smtp_tls")?,
        timeout: StdDuration::from_secs(30),
    })
    .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
    let p = &config.presync;
    let settings = EngineSettings {
        settings: config.settings(),
        portal_base_url: config.portal.base_url.clone(),
        login_domain: config.oidc_settings().map(|o| bma_mail::templates::url_host(&o.issuer)),
        bounce_address: config.mail.bounce_address.clone(),
        message_id_domain: config.mail.message_id_domain.clone(),
        reply_days: i64::from(config.mail.reply_days),
        team_address: config.mail.team_address.clone(),
        daily_report_hour: config.mail.daily_report.then_some(config.mail.daily_report_hour),
        max_per_minute: config.mail.max_per_minute,
        legacy: config.legacy.access().context("[legacy]")?,
        new: config.new.access().context("[new]")?,
        presync: PresyncSettings {
            enabled: p.enabled,
            parallel: p.parallel as usize,
            max_connections: p.max_connections as usize,
            max_bytes_per_second: p.max_bytes_per_second,
            hours: PresyncSettings::parse_hours(&p.hours).map_err(|e| anyhow::anyhow!("presync.hours: {e}"))?,
            weekends: p.weekends,
        },
        switch: config.cutover.settings(config.passwords.delivery)?,
        audit_before_mail1: config.audit.forwarding_before_mail1,
    };
    let options = bma_engine::OutboxOptions {
        lease: StdDuration::from_secs(u64::from(config.worker.lease_seconds.max(1))),
        relay_queue_command: config.mail.relay_queue_command.split_whitespace().map(str::to_owned).collect(),
        ..bma_engine::OutboxOptions::default()
    };
    Ok(Engine::new(store, templates, settings, sender, worker).with_outbox_options(options))
}
