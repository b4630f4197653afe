//! `bma plan`: previews, or with `--apply` commits, the invitation waves.
//!
//! The preview is a table (or `--json`: `{"waves": [{"starts", "mailboxes",
//! …}], "unplanned": N, "problems": […]}`). What cannot fit is refused with
//! the reason and exit code 1; nothing is applied.

use std::process::ExitCode;

use anyhow::Context;
use bma_core::planner::{WavePlan, WaveRules, plan_waves};
use bma_core::settings::iso_date;
use time::{Date, Duration};

use super::{open_store, operator};
use crate::config::Config;

/// Arguments of `bma plan`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Commit the plan (default: preview only).
    #[arg(long)]
    apply: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
    /// At most N mailboxes per wave (overrides campaign.wave_capacity; 0 = balanced).
    #[arg(long, value_name = "N")]
    wave_capacity: Option<u32>,
    /// Plan as of this day: earlier waves are closed (default: the day after
    /// the last wave already invited, or the campaign's start).
    #[arg(long, value_name = "YYYY-MM-DD", value_parser = iso_date::parse)]
    today: Option<Date>,
    /// Who applies it (default: $USER).
    #[arg(long = "as", value_name = "NAME")]
    actor: Option<String>,
}

/// Runs the planner.
pub async fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    let c = &config.campaign;
    let capacity = match args.wave_capacity {
        Some(0) => None,
        Some(n) => Some(n as usize),
        None => c.capacity(),
    };
    let rules = WaveRules { capacity, ..c.wave_rules().context("campaign.wave_weekday is not a day")? };
    let store = open_store(config).await?;
    let candidates = store.planning_candidates().await?;
    let last_invited = candidates.iter().filter_map(|c| c.invited_in).max();
    let today = args.today.unwrap_or_else(|| last_invited.map_or(c.start, |d| d + Duration::days(1)));
    let result = plan_waves(&rules, today, &candidates);
    let code = match result {
        Err(refusal) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({ "waves": [], "unplanned": refusal.unplanned, "problems": refusal.problems })
                );
            } else {
                eprintln!("the plan cannot be made; nothing applied:");
                for p in &refusal.problems {
                    eprintln!("  - {p}");
                }
            }
            ExitCode::FAILURE
        }
        Ok(plan) => {
            let outcome = if args.apply {
                Some(store.apply_wave_plan(&plan, &operator(args.actor.as_deref()), super::campaign_now()?).await?)
            } else {
                None
            };
            if args.json {
                let waves: Vec<serde_json::Value> = plan
                    .waves
                    .iter()
                    .map(|w| {
                        serde_json::json!({
                            "starts": w.starts.to_string(), "mailboxes": w.size(),
                            "invited": w.invited, "planned": w.planned.len(),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::json!({
                        "waves": waves, "unplanned": plan.excluded + plan.invited_elsewhere, "problems": [],
                        "capacity": capacity, "applied": outcome,
                    })
                );
            } else {
                print_table(&plan, &rules, today);
                match outcome {
                    Some(o) => {
                        println!("applied: {} scheduled, {} moved, {} unchanged", o.scheduled, o.moved, o.unchanged);
                    }
                    None => println!("preview only: run `bma plan --apply` to commit it"),
                }
            }
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

fn print_table(plan: &WavePlan, rules: &WaveRules, today: Date) {
    let cap = rules.capacity.map_or_else(|| "balanced".to_owned(), |c| format!("at most {c} per wave"));
    println!(
        "Invitation waves: every {:?}, {} to {}, {cap}; planning from {today}",
        rules.weekday, rules.start, rules.deadline
    );
    println!("  {:<12} {:>8} {:>8} {:>8}", "wave", "invited", "planned", "total");
    for w in &plan.waves {
        let closed = if w.starts < today { "  (closed)" } else { "" };
        println!("  {:<12} {:>8} {:>8} {:>8}{closed}", w.starts.to_string(), w.invited, w.planned.len(), w.size());
    }
    let total: usize = plan.waves.iter().map(|w| w.size()).sum();
    println!("  {:<12} {:>8} {:>8} {:>8}", "all", "", "", total);
    if plan.excluded > 0 || plan.invited_elsewhere > 0 {
        println!(
            "  left out: {} excluded or blocked, {} invited outside the waves",
            plan.excluded, plan.invited_elsewhere
        );
    }
}
