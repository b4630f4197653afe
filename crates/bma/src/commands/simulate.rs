//! `bma simulate`: the whole campaign on simulated time with modelled
//! behaviour, week by week, to choose capacities before starting. Sends
//! nothing, copies nothing, changes nothing in the store.
//!
//! The registry is the store's (sizes from the import) when it holds
//! mailboxes, else `--mailboxes N` generated ones of `--mailbox-mb` each.

use std::process::ExitCode;

use bma_core::cutover::CutoverRules;
use bma_core::planner::WaveRules;
use bma_core::simulate::{Behaviour, SimMailbox, SimulationInput, simulate};

use super::open_store;
use crate::config::Config;

/// `bma simulate` options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Generated mailboxes, when the store holds none.
    #[arg(long, default_value_t = 3500)]
    mailboxes: usize,
    /// Size of each generated mailbox, MB.
    #[arg(long, default_value_t = 80)]
    mailbox_mb: u64,
    /// Mailboxes per invitation wave (default: the configuration's).
    #[arg(long)]
    wave_capacity: Option<usize>,
    /// Cutovers per week (default: the configuration's).
    #[arg(long)]
    cutover_capacity: Option<usize>,
    /// Share of invitations that bounce.
    #[arg(long, default_value_t = 0.01)]
    bounce_share: f64,
    /// Share of managers who answer the form.
    #[arg(long, default_value_t = 0.9)]
    answer_share: f64,
    /// Mean days to answer.
    #[arg(long, default_value_t = 5.0)]
    answer_days: f64,
    /// Share of those who answer who lost the password.
    #[arg(long, default_value_t = 0.2)]
    lost_password_share: f64,
    /// Share of lost passwords that still call the helpdesk.
    #[arg(long, default_value_t = 0.3)]
    lost_password_call_share: f64,
    /// Helpdesk calls per delivered invitation.
    #[arg(long, default_value_t = 0.05)]
    calls_per_invitation: f64,
    /// Seed of the generator (same seed, same report).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Machine-readable output.
    #[arg(long)]
    json: bool,
}

/// Runs the simulation.
pub async fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    let behaviour = Behaviour {
        bounce_share: args.bounce_share,
        answer_share: args.answer_share,
        answer_mean_days: args.answer_days,
        lost_password_share: args.lost_password_share,
        lost_password_call_share: args.lost_password_call_share,
        calls_per_invitation: args.calls_per_invitation,
    };
    let problems = behaviour.problems();
    if !problems.is_empty() {
        for p in problems {
            eprintln!("error: {p}");
        }
        return Ok(ExitCode::from(super::EXIT_USAGE));
    }
    let store = open_store(config).await?;
    let known = store.mailboxes().await?;
    store.close().await;
    let (mailboxes, source) = if known.is_empty() {
        let bytes = args.mailbox_mb * 1_000_000;
        let generated = (0..args.mailboxes)
            .map(|i| SimMailbox { address: format!("ec{:06}@{}", 100_000 + i, config.addresses.domain), bytes })
            .collect();
        (generated, format!("{} generated mailboxes of {} MB", args.mailboxes, args.mailbox_mb))
    } else {
        let list: Vec<SimMailbox> = known
            .iter()
            .filter(|m| !m.excluded)
            .map(|m| SimMailbox { address: m.address.clone(), bytes: m.usage_bytes.unwrap_or(0) })
            .collect();
        let n = list.len();
        (list, format!("the registry's {n} mailboxes"))
    };
    let c = &config.campaign;
    let waves = c.wave_rules_on(c.weekday().unwrap_or(time::Weekday::Monday));
    let cutovers = c.cutover_rules();
    let input = SimulationInput {
        waves: WaveRules { capacity: args.wave_capacity.or(waves.capacity), ..waves },
        cutovers: CutoverRules { capacity: args.cutover_capacity.or(cutovers.capacity), ..cutovers },
        reminder_days: c.reminder_days.clone(),
        deadline: c.invitation_deadline,
        behaviour,
        seed: args.seed,
    };
    let report = match simulate(&input, &mailboxes) {
        Ok(r) => r,
        Err(refusal) => {
            for p in &refusal.problems {
                eprintln!("refused: {p}");
            }
            return Ok(ExitCode::FAILURE);
        }
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("Simulated campaign: {source}, seed {}; nothing is sent or copied.", args.seed);
    println!(
        "{:<10} {:>11} {:>9} {:>7} {:>6} {:>11} {:>8} {:>11} {:>9}",
        "week of", "invitations", "reminders", "bounces", "forms", "presync GB", "cutovers", "cutover GB", "helpdesk"
    );
    let gb = |b: u64| format!("{:.1}", b as f64 / 1e9);
    for w in &report.weeks {
        println!(
            "{:<10} {:>11} {:>9} {:>7} {:>6} {:>11} {:>8} {:>11} {:>9}",
            w.week.to_string(),
            w.invitations,
            w.reminders,
            w.bounces,
            w.forms,
            gb(w.presync_bytes),
            w.cutovers,
            gb(w.cutover_bytes),
            w.helpdesk_calls
        );
    }
    println!(
        "{} mailboxes: {} forms, {} silent, {} bounced; {} without a cutover slot in their window; \
         busiest helpdesk week: {} calls",
        report.mailboxes,
        report.answered,
        report.silent,
        report.bounced,
        report.unplaced_cutovers,
        report.peak_helpdesk_calls
    );
    Ok(ExitCode::SUCCESS)
}
