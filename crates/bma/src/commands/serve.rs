//! `bma serve`: the enrolment portal and the helpdesk console over HTTP.
//!
//! Opens the store, builds the portal from the configuration and serves it
//! until SIGINT or SIGTERM. Without an identity provider (`oidc.issuer`
//! empty) the pages are served and say that login is unavailable, and a
//! warning says so at start. The campaign's scheduler runs in the same
//! process (see [`background`]) unless `--no-scheduler`.
//!
//! Time is the campaign clock: the system clock, or with `BMA_NOW` (as
//! for every command) that instant at start, advancing in real time from
//! there. The portal (a link's expiry at the campaign's end, session
//! lifetimes, the status page), the session purge and the scheduler all
//! read it, so a store made on simulated time (the demo, a rehearsal) is
//! served as it stands on that day.

use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use bma_core::{Clock, SystemClock};
use bma_mail::Templates;
use bma_store::{Retention, Store};
use bma_web::{Portal, PortalSettings};

use super::open_store;
use crate::config::Config;

/// Arguments of `bma serve`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Do not run the campaign's scheduler in this process (when `bma worker` processes run it;
    /// required beside a worker on SQLite, where only one scheduler may run on a store).
    #[arg(long)]
    no_scheduler: bool,
    /// Real time between two steps of the scheduler.
    #[arg(long, default_value = "30s", value_parser = super::campaign::step)]
    scheduler_interval: time::Duration,
}

/// The portal's settings from the configuration.
pub fn portal_settings(config: &Config) -> PortalSettings {
    let mut s = PortalSettings::new(config.portal.base_url.trim());
    s.oidc = config.oidc_settings();
    s.campaign = config.settings();
    s.rate_limit_per_ip = config.portal.rate_limit_per_ip;
    s.rate_limit_per_link = config.portal.rate_limit_per_link;
    s.trust_forwarded_for = config.portal.trust_forwarded_for;
    s.session_minutes = i64::from(config.portal.session_minutes.max(1));
    s.bounce_address = config.mail.bounce_address.clone();
    s.message_id_domain = config.mail.message_id_domain.clone();
    s.privacy = config.privacy.trimmed();
    s.console = crate::console_config::settings(config);
    s.metrics = crate::metrics_config::settings(config);
    s.autoconfig = crate::autoconfig_config::settings(config);
    s
}

/// The clock of `bma serve`: the system's, or `BMA_NOW` at start advancing
/// in real time.
#[derive(Debug, Clone, Copy)]
pub struct CampaignClock {
    /// The campaign instant at `real`, when it is not the system clock.
    start: Option<(time::OffsetDateTime, std::time::Instant)>,
}

impl CampaignClock {
    /// The system clock.
    pub fn system() -> CampaignClock {
        CampaignClock { start: None }
    }

    /// A clock standing at `at` now, advancing in real time.
    pub fn starting_at(at: time::OffsetDateTime) -> CampaignClock {
        CampaignClock { start: Some((at, std::time::Instant::now())) }
    }

    /// `BMA_NOW` when set, else the system clock.
    pub fn from_env() -> anyhow::Result<CampaignClock> {
        match std::env::var("BMA_NOW") {
            Ok(v) if !v.trim().is_empty() => Ok(CampaignClock::starting_at(super::campaign_now()?)),
            _ => Ok(CampaignClock::system()),
        }
    }
}

impl Clock for CampaignClock {
    fn now(&self) -> time::OffsetDateTime {
        match self.start {
            None => SystemClock.now(),
            Some((at, real)) => at + real.elapsed(),
        }
    }
}

/// Background work that runs beside the portal in the same process: the
/// purge of expired portal sessions and, unless `--no-scheduler`, the
/// campaign's scheduler (one step every `--scheduler-interval` on the
/// campaign clock; a step does nothing while the campaign is not running).
pub async fn background(
    config: &Config,
    store: &Store,
    args: &Args,
    clock: CampaignClock,
) -> Vec<tokio::task::JoinHandle<()>> {
    let purge_store = store.clone();
    let purge = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            every.tick().await;
            match purge_store.purge_sessions(clock.now()).await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "expired portal sessions purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging portal sessions failed"),
            }
            match purge_store.purge_staff_sessions(clock.now()).await {
                Ok(n) if n > 0 => tracing::info!(sessions = n, "expired console sessions purged"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "purging console sessions failed"),
            }
        }
    });
    let mut tasks = vec![purge];
    if args.no_scheduler {
        return tasks;
    }
    if config.privacy.purge_automatically {
        let end = config.campaign.end;
        let retention = Retention { days: config.privacy.retention_days(end), campaign_end: end };
        tasks.push(tokio::spawn(purge_personal_data(store.clone(), retention, clock)));
    }
    let worker = format!("serve-{}", std::process::id());
    match crate::engine_config::engine(config, &worker).await {
        Ok(engine) => {
            let interval = std::time::Duration::try_from(args.scheduler_interval)
                .unwrap_or(std::time::Duration::from_secs(30))
                .max(std::time::Duration::from_secs(1));
            tasks.push(tokio::spawn(async move {
                let mut every = tokio::time::interval(interval);
                loop {
                    every.tick().await;
                    // Each claim at the clock's instant then (a long step never runs on a stale instant).
                    if let Err(e) = engine.step_on(&clock).await {
                        tracing::warn!(error = %e, "scheduler step failed; retried at the next one");
                    }
                }
            }));
        }
        Err(e) => eprintln!("warning: the campaign scheduler cannot start in this process: {e:#}"),
    }
    tasks
}

/// Every hour (the first at start), the personal data whose retention is
/// over at the campaign clock's instant removed, as `bma privacy purge`
/// does (`privacy.purge_automatically`).
async fn purge_personal_data(store: Store, retention: Retention, clock: CampaignClock) {
    let actor = bma_core::Actor::System("purge".into());
    let mut every = tokio::time::interval(std::time::Duration::from_secs(3600));
    loop {
        every.tick().await;
        match store.purge_personal_data(&retention, clock.now(), false, &actor).await {
            Ok(items) if !items.is_empty() => {
                tracing::info!(mailboxes = items.len(), "personal data past its retention removed");
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "the personal data purge failed; tried again in an hour"),
        }
    }
}

/// Serves the portal until a signal asks to stop.
pub async fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    // One scheduler per SQLite store (see `crate::scheduler_lock`), held until the process ends.
    let _lock = match (!args.no_scheduler).then(|| crate::scheduler_lock::acquire_for_command(&config.database.url)) {
        Some(Err(code)) => return Ok(code),
        Some(Ok(lock)) => lock,
        None => None,
    };
    let store = open_store(config).await?;
    let dir = config.mail.templates_dir.trim();
    let templates = Templates::load((!dir.is_empty()).then(|| std::path::Path::new(dir))).context("mail templates")?;
    let settings = portal_settings(config);
    if settings.oidc.is_none() {
        eprintln!("warning: no identity provider configured (oidc.issuer is empty): login is unavailable");
    }
    let clock = CampaignClock::from_env()?;
    if let Some((at, _)) = clock.start {
        eprintln!(
            "campaign clock: {} (BMA_NOW), advancing in real time",
            at.format(&time::format_description::well_known::Rfc3339)?
        );
    }
    // The console's actions go through an engine of their own (the scheduler's runs its steps).
    let engine = if settings.console.is_some() {
        match crate::engine_config::engine(config, &format!("console-{}", std::process::id())).await {
            Ok(e) => Some(Arc::new(e)),
            Err(e) => {
                eprintln!("warning: the console's actions that need the campaign engine are unavailable: {e:#}");
                None
            }
        }
    } else {
        None
    };
    let portal = Portal::with_engine(store.clone(), settings, templates, Arc::new(clock), engine).context("portal")?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let tasks = background(config, &store, args, clock).await;
    eprintln!("bma portal listening on http://{} (public address {})", listener.local_addr()?, config.portal.base_url);
    bma_web::serve(listener, portal, shutdown_signal()).await.context("portal server")?;
    for t in tasks {
        t.abort();
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
