//! `bma campaign …`: runs the campaign engine on the campaign's clock.
//!
//! - `tick [--at INSTANT]`: invites the mailboxes of every wave that has
//!   started by then and sends what the outbox holds;
//! - `run --from … --until … --step 1d [--pace 0.5s]`: ticks over simulated
//!   time, step by step (a campaign of weeks in seconds, for the demo and
//!   for rehearsals), printing where the campaign stands after each step;
//! - `status`: mailboxes per state and the outbox.

use std::process::ExitCode;
use std::time::Duration as StdDuration;

use anyhow::Context;
use bma_core::{Clock, State, SystemClock};
use bma_engine::{Engine, EngineSettings};
use bma_mail::{SmtpConfig, SmtpSender, Templates};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::open_store;
use crate::config::Config;

/// The campaign commands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// One instant of the campaign: due invitations, then the outbox.
    Tick {
        /// The instant (RFC 3339, e.g. 2024-04-22T08:00:00Z; default: now).
        #[arg(long, value_parser = instant)]
        at: Option<OffsetDateTime>,
    },
    /// Ticks over simulated time, from one instant to another.
    Run {
        /// First instant (RFC 3339).
        #[arg(long, value_parser = instant)]
        from: OffsetDateTime,
        /// Last instant (RFC 3339).
        #[arg(long, value_parser = instant)]
        until: OffsetDateTime,
        /// Simulated time between ticks: 30m, 6h, 1d.
        #[arg(long, default_value = "1d", value_parser = step)]
        step: Duration,
        /// Real time to wait between ticks (0s: as fast as possible).
        #[arg(long, default_value = "0s", value_parser = step)]
        pace: Duration,
    },
    /// Mailboxes per state and the outbox.
    Status,
}

fn instant(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|_| format!("'{s}' is not an RFC 3339 instant (2024-04-22T08:00:00Z)"))
}

fn step(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| format!("'{s}' is not a duration like 30m, 6h or 1d"))?;
    match unit {
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        "w" => Ok(Duration::weeks(n)),
        _ => Err(format!("'{s}' is not a duration like 30m, 6h or 1d")),
    }
}

async fn engine(config: &Config) -> anyhow::Result<Engine> {
    let store = open_store(config).await?;
    let dir = config.mail.templates_dir.trim();
    let templates = Templates::load((!dir.is_empty()).then(|| std::path::Path::new(dir))).context("mail templates")?;
    let sender = SmtpSender::new(&SmtpConfig {
        host: config.mail.smtp_host.clone(),
        port: config.mail.smtp_port,
        tls: config.mail.tls().context("mail.smtp_tls")?,
        timeout: StdDuration::from_secs(30),
    })
    .map_err(|e| anyhow::anyhow!("SMTP: {e}"))?;
    let settings = EngineSettings {
        settings: config.settings(),
        portal_base_url: config.portal.base_url.clone(),
        bounce_address: config.mail.bounce_address.clone(),
        message_id_domain: config.mail.message_id_domain.clone(),
        wave_hour: config.campaign.wave_hour,
        reply_days: i64::from(config.mail.reply_days),
    };
    let worker = format!("bma-{}", std::process::id());
    Ok(Engine::new(store, templates, settings, sender, &worker))
}

async fn status_line(config: &Config) -> anyhow::Result<String> {
    let store = open_store(config).await?;
    let counts = store.counts_by_state().await?;
    let parts: Vec<String> =
        State::ALL.iter().filter_map(|s| counts.get(s).map(|n| format!("{} {n}", s.as_str()))).collect();
    store.close().await;
    Ok(parts.join(", "))
}

/// Runs the action.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Tick { at } => {
            let now = at.unwrap_or_else(|| SystemClock.now());
            let (invited, sent) = engine(config).await?.tick(now).await?;
            println!(
                "{}: {invited} invited, {} emails sent, {} to retry, {} failed for good",
                now.format(&Rfc3339)?,
                sent.sent,
                sent.retried,
                sent.dead
            );
        }
        Action::Run { from, until, step, pace } => {
            anyhow::ensure!(until >= from, "--until is before --from");
            anyhow::ensure!(step > Duration::ZERO, "--step must be positive");
            let engine = engine(config).await?;
            let mut now = from;
            while now <= until {
                let (invited, sent) = engine.tick(now).await?;
                println!(
                    "{}  invited {invited:>4}  sent {:>4}  retry {:>3}  failed {:>3}  | {}",
                    now.format(&Rfc3339)?,
                    sent.sent,
                    sent.retried,
                    sent.dead,
                    status_line(config).await?
                );
                now += step;
                if pace > Duration::ZERO {
                    tokio::time::sleep(StdDuration::try_from(pace).unwrap_or_default()).await;
                }
            }
        }
        Action::Status => {
            println!("{}", status_line(config).await?);
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn steps() {
        for (s, secs) in [("30m", 1800), ("6h", 21600), ("1d", 86400), ("2w", 1_209_600), ("0s", 0)] {
            assert_eq!(super::step(s).unwrap().whole_seconds(), secs);
        }
        assert!(super::step("1y").is_err() && super::step("d").is_err());
    }
}
