//! `bma worker`: runs the campaign's scheduler and jobs until stopped
//! (Ctrl-C or SIGTERM finish the current step, then exit).
//!
//! On the system clock by default. `--clock-start 2024-04-22T07:00:00Z
//! --speed 3600` runs an accelerated campaign clock (one simulated hour per
//! real second), for demonstrations and rehearsals. Several workers may run
//! at once on PostgreSQL; on SQLite a second scheduler on the same store
//! (`bma worker`, or `bma serve` without `--no-scheduler`) is refused, exit 2
//! (see `crate::scheduler_lock`).

use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant};

use bma_core::{Clock, SystemClock};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::campaign::{instant, status_line, step};
use crate::config::Config;

/// `bma worker` options.
#[derive(Debug, clap::Args)]
#[command(after_help = "Several workers: run them on PostgreSQL (database.url = \"postgres://…\"), where they share \
the jobs and the outbox. On SQLite only one scheduler may run on a store: a second `bma worker`, or `bma serve` \
without --no-scheduler, is refused (exit 2).")]
pub struct Args {
    /// Real time between steps (100ms, 30s, 5m).
    #[arg(long, default_value = "30s", value_parser = step)]
    interval: time::Duration,
    /// One step, then exit.
    #[arg(long)]
    once: bool,
    /// Start of an accelerated campaign clock (RFC 3339); default: the system clock.
    #[arg(long, value_parser = instant, requires = "speed")]
    clock_start: Option<OffsetDateTime>,
    /// Simulated seconds per real second, with --clock-start.
    #[arg(long)]
    speed: Option<u32>,
    /// Stop once the campaign clock passes this instant (RFC 3339).
    #[arg(long, value_parser = instant)]
    until: Option<OffsetDateTime>,
}

/// The campaign clock of a worker: the system's, or an accelerated one.
struct CampaignClock {
    start: Option<(OffsetDateTime, Instant, u32)>,
}

impl Clock for CampaignClock {
    fn now(&self) -> OffsetDateTime {
        match self.start {
            None => SystemClock.now(),
            Some((at, real, speed)) => {
                let elapsed = real.elapsed().as_secs_f64() * f64::from(speed);
                at + time::Duration::seconds_f64(elapsed)
            }
        }
    }
}

/// Runs the worker.
pub async fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    let _lock = match crate::scheduler_lock::acquire_for_command(&config.database.url) {
        Ok(lock) => lock,
        Err(code) => return Ok(code),
    };
    let worker = format!("worker-{}-{}", hostname(), std::process::id());
    let engine = crate::engine_config::engine(config, &worker).await?;
    let clock = CampaignClock { start: args.clock_start.map(|s| (s, Instant::now(), args.speed.unwrap_or(1).max(1))) };
    let interval = StdDuration::try_from(args.interval).unwrap_or(StdDuration::from_secs(30));
    eprintln!("worker {worker} started");
    let mut stop = Box::pin(shutdown());
    loop {
        let now = clock.now();
        if args.until.is_some_and(|u| now > u) {
            break;
        }
        // Each claim of the step reads the clock afresh.
        match engine.step_on(&clock).await {
            Ok(r) => println!(
                "{}  invited {} reminded {} sent {} bounced {} presynced {} cutovers {} | {}",
                now.format(&Rfc3339)?,
                r.invited,
                r.reminded,
                r.send.sent,
                r.bounced,
                r.presynced,
                r.cutovers,
                status_line(engine.store()).await?
            ),
            // A failed step (the store or the relay away) is retried at the next one.
            Err(e) => eprintln!("error: step at {}: {e}", now.format(&Rfc3339)?),
        }
        if args.once {
            break;
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = &mut stop => break,
        }
    }
    engine.store().close().await;
    eprintln!("worker {worker} stopped");
    Ok(ExitCode::SUCCESS)
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/etc/hostname").map(|h| h.trim().to_owned()).unwrap_or_else(|_| "host".to_owned())
}
