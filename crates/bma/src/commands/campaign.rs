//! `bma campaign …`: the campaign as a whole.
//!
//! - `start`, `pause`, `resume`: the campaign's state (nothing is invited,
//!   sent or copied unless it is running), each an event with its operator;
//! - `status [--json]`: where it stands: mailboxes per state, the outbox
//!   (its age: the oldest due email and how late it is; what is stuck),
//!   the job queue (jobs whose worker stopped answering), the mailboxes
//!   that need a human;
//! - `tick [--at INSTANT]`: one step of the scheduler at an instant;
//! - `run --from … --until … --step 1d [--pace 0.5s]`: steps over simulated
//!   time (weeks in seconds, for the demo and rehearsals), printing where
//!   the campaign stands after each step;
//! - `cutovers [--apply] [--json]`: the cutover slots of enrolled mailboxes;
//! - `deadline [--json]`: the mailboxes without a delivered mail 1, now.

use std::process::ExitCode;
use std::time::Duration as StdDuration;

use anyhow::Context;
use bma_core::State;
use bma_store::{CampaignAction, JobState, Store};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

use super::{open_store, operator};
use crate::config::Config;

/// The campaign commands.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Start the campaign: from now on the scheduler invites, sends and copies.
    Start(Change),
    /// Pause it: nothing new is invited, sent or copied until `resume`.
    Pause(Change),
    /// Resume a paused campaign.
    Resume(Change),
    /// Where the campaign stands.
    Status {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// One step of the scheduler: what is due, the jobs, the outbox.
    Tick {
        /// The instant (RFC 3339, e.g. 2024-04-22T08:00:00Z; default: now).
        #[arg(long, value_parser = instant)]
        at: Option<OffsetDateTime>,
    },
    /// Steps over simulated time, from one instant to another.
    Run {
        /// First instant (RFC 3339).
        #[arg(long, value_parser = instant)]
        from: OffsetDateTime,
        /// Last instant (RFC 3339).
        #[arg(long, value_parser = instant)]
        until: OffsetDateTime,
        /// Simulated time between steps: 30m, 6h, 1d.
        #[arg(long, default_value = "1d", value_parser = step)]
        step: Duration,
        /// Real time to wait between steps (0s: as fast as possible).
        #[arg(long, default_value = "0s", value_parser = step)]
        pace: Duration,
    },
    /// Cutover slots of the enrolled mailboxes (a preview unless --apply).
    Cutovers {
        /// Give the slots (mailboxes become cutover_scheduled).
        #[arg(long)]
        apply: bool,
        /// The day to plan from (default: today).
        #[arg(long, value_parser = instant)]
        at: Option<OffsetDateTime>,
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
    /// The mailboxes without a delivered mail 1, now.
    Deadline {
        /// Machine-readable output.
        #[arg(long)]
        json: bool,
    },
}

/// Who changes the campaign's state, and why.
#[derive(Debug, clap::Args)]
pub struct Change {
    /// The operator (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    as_: Option<String>,
    /// Why, for the campaign's log.
    #[arg(long, default_value = "")]
    reason: String,
    /// The instant to record (RFC 3339; default: now).
    #[arg(long, value_parser = instant)]
    at: Option<OffsetDateTime>,
}

pub(crate) fn instant(s: &str) -> Result<OffsetDateTime, String> {
    OffsetDateTime::parse(s.trim(), &Rfc3339)
        .map_err(|_| format!("'{s}' is not an RFC 3339 instant (2024-04-22T08:00:00Z)"))
}

pub(crate) fn step(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (n, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let n: i64 = n.parse().map_err(|_| format!("'{s}' is not a duration like 30m, 6h or 1d"))?;
    match unit {
        "ms" => Ok(Duration::milliseconds(n)),
        "s" => Ok(Duration::seconds(n)),
        "m" => Ok(Duration::minutes(n)),
        "h" => Ok(Duration::hours(n)),
        "d" => Ok(Duration::days(n)),
        "w" => Ok(Duration::weeks(n)),
        _ => Err(format!("'{s}' is not a duration like 30m, 6h or 1d")),
    }
}

/// The campaign's state in one line: state, mailboxes per state, what needs a human.
pub(crate) async fn status_line(store: &Store) -> anyhow::Result<String> {
    let state = store.campaign_state().await?;
    let counts = store.counts_by_state().await?;
    let parts: Vec<String> =
        State::ALL.iter().filter_map(|s| counts.get(s).map(|n| format!("{} {n}", s.as_str()))).collect();
    let attention = store.attention_list().await?.len();
    Ok(format!("[{}] {} | attention {attention}", state.as_str(), parts.join(", ")))
}

#[derive(Serialize)]
struct Status {
    state: bma_store::CampaignState,
    mailboxes: std::collections::BTreeMap<String, u64>,
    outbox: std::collections::BTreeMap<String, u64>,
    outbox_health: bma_store::OutboxHealth,
    /// How late the oldest due email is, in seconds of the campaign clock.
    outbox_late_seconds: Option<i64>,
    jobs: Vec<JobCount>,
    stale_jobs: Vec<bma_store::Job>,
    attention: Vec<bma_store::Attention>,
    /// Delivery reports that proved nothing: kept for a human, no mailbox changed.
    unverified_bounces: Vec<bma_store::EventRecord>,
    /// What the forwarding audits found.
    forwarding: bma_store::ForwardingSummary,
}

#[derive(Serialize)]
struct JobCount {
    kind: bma_core::job::JobKind,
    state: String,
    count: u64,
}

/// Runs the action.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Start(c) => change(config, CampaignAction::Start, &c).await,
        Action::Pause(c) => change(config, CampaignAction::Pause, &c).await,
        Action::Resume(c) => change(config, CampaignAction::Resume, &c).await,
        Action::Status { json } => status(config, json).await,
        Action::Tick { at } => {
            let _lock = match crate::scheduler_lock::acquire_for_command(&config.database.url) {
                Ok(lock) => lock,
                Err(code) => return Ok(code),
            };
            let now = match at {
                Some(a) => a,
                None => super::campaign_now()?,
            };
            let engine = crate::engine_config::engine(config, &worker_name()).await?;
            let r = engine.step(now).await?;
            println!("{}  {}", now.format(&Rfc3339)?, describe(&r));
            engine.store().close().await;
            Ok(ExitCode::SUCCESS)
        }
        Action::Run { from, until, step, pace } => {
            anyhow::ensure!(until >= from, "--until is before --from");
            anyhow::ensure!(step > Duration::ZERO, "--step must be positive");
            let _lock = match crate::scheduler_lock::acquire_for_command(&config.database.url) {
                Ok(lock) => lock,
                Err(code) => return Ok(code),
            };
            let engine = crate::engine_config::engine(config, &worker_name()).await?;
            let mut now = from;
            while now <= until {
                let r = engine.step(now).await?;
                println!("{}  {}  | {}", now.format(&Rfc3339)?, describe(&r), status_line(engine.store()).await?);
                now += step;
                if pace > Duration::ZERO {
                    tokio::time::sleep(StdDuration::try_from(pace).unwrap_or_default()).await;
                }
            }
            engine.store().close().await;
            Ok(ExitCode::SUCCESS)
        }
        Action::Cutovers { apply, at, json } => {
            let now = match at {
                Some(a) => a,
                None => super::campaign_now()?,
            };
            let engine = crate::engine_config::engine(config, &worker_name()).await?;
            let plan = engine.plan_cutovers(now, apply).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&plan)?);
            } else {
                println!("{:<12} {:>9} {:>14}", "cutover day", "mailboxes", "bytes");
                for w in &plan.weeks {
                    println!("{:<12} {:>9} {:>14}", w.day.to_string(), w.mailboxes, w.bytes);
                }
                println!(
                    "{} new slots{}",
                    plan.slots.len(),
                    if apply { " given" } else { " (preview: --apply gives them)" }
                );
                for u in &plan.unplaced {
                    println!("not placed: {} (window closes {}): {}", u.address, u.window_closes, u.reason);
                }
            }
            engine.store().close().await;
            Ok(if plan.unplaced.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Action::Deadline { json } => {
            let store = open_store(config).await?;
            let list = store.undelivered_invitations().await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                for u in &list {
                    println!("{:<28} {:<20} {}  ({})", u.address, u.state.as_str(), u.name, u.why);
                }
                println!("{} mailboxes without a delivered mail 1", list.len());
            }
            store.close().await;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `3d 4h`, `2h 5m`, `40s`: a duration in seconds, for people.
fn human_duration(seconds: i64) -> String {
    let s = seconds.max(0);
    let (d, h, m) = (s / 86_400, s % 86_400 / 3600, s % 3600 / 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {}s", s % 60)
    } else {
        format!("{s}s")
    }
}

fn worker_name() -> String {
    format!("bma-{}", std::process::id())
}

fn describe(r: &bma_engine::StepReport) -> String {
    if r.state != bma_store::CampaignState::Running {
        return format!("campaign {}: nothing done", r.state.as_str().replace('_', " "));
    }
    let mut s = format!(
        "invited {:>4}  reminded {:>4}  sent {:>4}  bounced {:>3}  presynced {:>3}  cutovers {:>3}  migrated {:>3}",
        r.invited, r.reminded, r.send.sent, r.bounced, r.presynced, r.cutovers, r.migrated
    );
    if r.send.retried + r.send.dead + r.failed_jobs > 0 {
        s.push_str(&format!(
            "  (emails to retry {}, failed {}; jobs failed {})",
            r.send.retried, r.send.dead, r.failed_jobs
        ));
    }
    if r.send.checking + r.send.unconfirmed > 0 {
        s.push_str(&format!(
            "  ({} uncertain emails to look for again, {} left to a human)",
            r.send.checking, r.send.unconfirmed
        ));
    }
    if r.send.found_delivered > 0 {
        s.push_str(&format!("  ({} uncertain emails found delivered, not sent again)", r.send.found_delivered));
    }
    if let Some(n) = r.deadline_listed {
        s.push_str(&format!("  deadline list: {n} mailboxes sent to the team"));
    }
    s
}

async fn change(config: &Config, action: CampaignAction, c: &Change) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let now = match c.at {
        Some(a) => a,
        None => super::campaign_now()?,
    };
    let result = store.change_campaign(action, &operator(c.as_.as_deref()), &c.reason, now).await;
    store.close().await;
    match result {
        Ok(state) => {
            println!("campaign {}", state.as_str().replace('_', " "));
            Ok(ExitCode::SUCCESS)
        }
        Err(bma_store::StoreError::CampaignState(why)) => {
            eprintln!("error: {why}");
            Ok(ExitCode::FAILURE)
        }
        Err(e) => Err(e).context("cannot change the campaign"),
    }
}

async fn status(config: &Config, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let state = store.campaign_state().await?;
    let mailboxes = store.counts_by_state().await?.into_iter().map(|(s, n)| (s.as_str().to_owned(), n)).collect();
    let outbox = store.outbox_counts().await?;
    let now = super::campaign_now()?;
    let real_now = OffsetDateTime::now_utc();
    let outbox_health = store.outbox_health(now, real_now).await?;
    let outbox_late_seconds = outbox_health.oldest_due.map(|d| (now - d).whole_seconds());
    let stale_jobs = store.stale_jobs(real_now).await?;
    let jobs = store
        .job_counts()
        .await?
        .into_iter()
        .map(|(kind, state, count)| JobCount { kind, state: state.as_str().to_owned(), count })
        .collect();
    let attention = store.attention_list().await?;
    let unverified_bounces = store.unverified_bounces(100).await?;
    let forwarding = store.forwarding_summary().await?;
    let status = Status {
        forwarding,
        state,
        mailboxes,
        outbox,
        outbox_health,
        outbox_late_seconds,
        jobs,
        stale_jobs,
        attention,
        unverified_bounces,
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        println!("campaign: {}", status.state.as_str().replace('_', " "));
        let m: Vec<String> = status.mailboxes.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!("mailboxes: {}", if m.is_empty() { "none".to_owned() } else { m.join(", ") });
        let o: Vec<String> = status.outbox.iter().map(|(s, n)| format!("{s} {n}")).collect();
        println!("outbox: {}", if o.is_empty() { "empty".to_owned() } else { o.join(", ") });
        let h = &status.outbox_health;
        match (h.oldest_due, status.outbox_late_seconds) {
            (Some(due), Some(late)) => println!(
                "outbox age: {} due, the oldest due {} ({} late)",
                h.due,
                due.format(&Rfc3339)?,
                human_duration(late)
            ),
            _ => println!("outbox age: nothing due"),
        }
        if h.past_lease + h.being_checked + h.unconfirmed + h.dead > 0 {
            println!(
                "outbox stuck: {} past their sender's lease, {} being looked for (uncertain), {} unconfirmed (a human), {} dead",
                h.past_lease, h.being_checked, h.unconfirmed, h.dead
            );
        }
        let dead: u64 = status.jobs.iter().filter(|j| j.state == JobState::Dead.as_str()).map(|j| j.count).sum();
        let waiting: u64 = status.jobs.iter().filter(|j| j.state == JobState::Queued.as_str()).map(|j| j.count).sum();
        println!("jobs: {waiting} waiting, {dead} dead, {} past their worker's lease", status.stale_jobs.len());
        for j in &status.stale_jobs {
            println!(
                "  job {} {} {} attempt {}/{}, held by {}",
                j.id,
                j.kind,
                j.key,
                j.attempts,
                j.max_attempts,
                j.lease_owner.as_deref().unwrap_or("?")
            );
        }
        let f = &status.forwarding;
        let domains: Vec<String> = f.domains.iter().map(|(d, n)| format!("{d} {n}")).collect();
        println!(
            "forwarding: {} audited, {} forward outside{}, {} with an unreadable script",
            f.audited,
            f.forwarding_outside,
            if domains.is_empty() { String::new() } else { format!(" ({})", domains.join(", ")) },
            f.with_unreadable
        );
        println!("needing a human: {}", status.attention.len());
        for a in &status.attention {
            println!("  {:<28} {:<20} {} since {}", a.address, a.state.as_str(), a.reason, a.since.format(&Rfc3339)?);
        }
        // What a report claims is anyone's text: printed escaped ({:?}).
        println!(
            "unverified delivery reports (nothing changed, to check by hand): {}",
            status.unverified_bounces.len()
        );
        for e in &status.unverified_bounces {
            let text = |k: &str| e.details[k].as_str().unwrap_or("-").to_owned();
            println!(
                "  {}  for {:?}  status {:?}  from {:?}  subject {:?}  quoted Message-ID {:?}",
                e.at.format(&Rfc3339)?,
                text("claimed_recipient"),
                text("status"),
                text("from"),
                text("subject"),
                text("message_id"),
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    #[test]
    fn steps() {
        for (s, secs) in [("30m", 1800), ("6h", 21600), ("1d", 86400), ("2w", 1_209_600), ("0s", 0)] {
            assert_eq!(super::step(s).unwrap().whole_seconds(), secs);
        }
        assert_eq!(super::step("100ms").unwrap().whole_milliseconds(), 100);
        for (secs, text) in [(0, "0s"), (59, "59s"), (61, "1m 1s"), (3_720, "1h 2m"), (97_200, "1d 3h"), (-5, "0s")] {
            assert_eq!(super::human_duration(secs), text);
        }
        assert!(super::step("1y").is_err() && super::step("d").is_err());
    }
}
