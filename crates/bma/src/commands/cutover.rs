//! `bma cutover …`: cut one mailbox over now, see where cutovers stand,
//! roll one back. Only parses and prints: the cutover is
//! `bma_engine::switch`.

use std::process::ExitCode;

use anyhow::Context as _;
use bma_core::State;
use bma_core::switch::Step;
use bma_engine::SwitchOutcome;
use bma_store::SwitchEnd;

use super::{campaign_now, mailbox_address, open_store, operator};
use crate::config::Config;

/// Cutover actions.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Cut one mailbox over now (or resume its cutover where it stopped): account, hold, final
    /// copy, receipt, mail 2, routing, last copy. Exit 0 migrated, 1 refused or failed.
    Run {
        /// The BMA address.
        address: String,
        /// Print the outcome as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Where cutovers stand: every mailbox scheduled, migrating, migrated or failed, or one
    /// mailbox's steps with their times and its receipt.
    Status {
        /// One BMA address.
        address: Option<String>,
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
    /// Undo a cutover: mail routed to the legacy platform again, what reached the new box copied
    /// back, the legacy login restored; the mailbox can be cut over another day.
    Rollback {
        /// The BMA address.
        address: String,
        /// Why (recorded in the timeline).
        #[arg(long)]
        reason: String,
        /// Who acts (default: $USER).
        #[arg(long = "as", value_name = "NAME")]
        actor: Option<String>,
    },
}

/// Runs a cutover action.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Run { address, json } => {
            let engine = crate::engine_config::engine(config, "cli").await?;
            let address = mailbox_address(config, &address)?;
            let now = campaign_now()?;
            let outcome = engine.cut_over(address.as_str(), now).await.with_context(|| format!("{address}"))?;
            // Mail 2 to the backup address leaves now, not at the next step of a worker.
            engine.send_due(campaign_now()?).await?;
            match &outcome {
                SwitchOutcome::Migrated(receipt) if json => {
                    println!(
                        "{}",
                        serde_json::json!({ "address": address.as_str(), "state": "migrated", "receipt": receipt })
                    );
                }
                SwitchOutcome::Migrated(receipt) => println!(
                    "{address}: migrated; receipt: {} messages, {} bytes in {} folders, none missing (digest {})",
                    receipt.messages,
                    receipt.bytes,
                    receipt.folders.len(),
                    &receipt.digest[..16]
                ),
                SwitchOutcome::AlreadyMigrated => println!("{address}: already migrated"),
                SwitchOutcome::Left(state) => println!("{address}: now {state}, left as it is"),
            }
            Ok(ExitCode::SUCCESS)
        }
        Action::Status { address, json } => status(config, address.as_deref(), json).await,
        Action::Rollback { address, reason, actor } => {
            let engine = crate::engine_config::engine(config, "cli").await?;
            let address = mailbox_address(config, &address)?;
            let actor = operator(actor.as_deref());
            let undone = engine
                .roll_back(address.as_str(), &reason, &actor, SwitchEnd::RolledBack, campaign_now()?)
                .await
                .with_context(|| format!("{address}"))?;
            println!(
                "{address}: rolled back from {} (mail {} the legacy platform, {} messages copied back); cutover_scheduled again",
                undone.from,
                if undone.routed_back { "routed back to" } else { "still routed to" },
                undone.copied_back
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

async fn status(config: &Config, address: Option<&str>, json: bool) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    if let Some(text) = address {
        let address = mailbox_address(config, text)?;
        let progress = store.switch_steps(&address).await?;
        let steps: Vec<serde_json::Value> = Step::ALL
            .iter()
            .map(|s| {
                let done = progress.steps.iter().rev().find(|r| r.step == *s);
                serde_json::json!({
                    "step": s.as_str(), "label": s.label_fr(),
                    "done_at": done.map(|r| r.at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default()),
                })
            })
            .collect();
        let receipt = progress.details(Step::Verify).and_then(|d| d.get("receipt")).cloned();
        // How long the probe took to land once mail was released (part of `route`).
        let probe_ms = progress.details(Step::Route).and_then(|d| d["probe"]["landed_ms"].as_u64());
        if json {
            let out = serde_json::json!({
                "address": address.as_str(), "state": progress.state, "steps": steps, "receipt": receipt,
                "route_probe_ms": probe_ms,
            });
            println!("{out}");
            return Ok(ExitCode::SUCCESS);
        }
        println!("{address}: {}", progress.state);
        for s in &steps {
            let at = s["done_at"].as_str().unwrap_or("—");
            println!("  {:<11} {:<22} {}", s["step"].as_str().unwrap_or(""), at, s["label"].as_str().unwrap_or(""));
        }
        if let Some(r) = receipt {
            println!(
                "  receipt: {} messages, {} bytes, {} missing, digest {}",
                r["messages"],
                r["bytes"],
                r["missing"],
                r["digest"].as_str().unwrap_or("")
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let shown = [State::CutoverScheduled, State::Migrating, State::Migrated, State::Failed];
    let mut rows = Vec::new();
    for m in store.mailboxes().await?.into_iter().filter(|m| shown.contains(&m.state)) {
        let address = mailbox_address(config, &m.address)?;
        let progress = store.switch_steps(&address).await?;
        let last = progress.steps.last().map(|s| s.step.as_str());
        rows.push(serde_json::json!({ "address": m.address, "state": m.state, "last_step": last }));
    }
    if json {
        println!("{}", serde_json::Value::Array(rows));
    } else if rows.is_empty() {
        println!("no mailbox is scheduled for a cutover yet");
    } else {
        for r in rows {
            println!(
                "{:<28} {:<18} {}",
                r["address"].as_str().unwrap_or(""),
                r["state"].as_str().unwrap_or(""),
                r["last_step"].as_str().unwrap_or("")
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
