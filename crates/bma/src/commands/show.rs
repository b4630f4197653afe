//! `bma show ADDRESS`: one mailbox, whom to contact, its cutover (each
//! step with its time, the receipt), its forwarding audit (what its Sieve
//! scripts on the legacy platform do, `bma audit forwarding`) and its
//! timeline.

use std::process::ExitCode;

use bma_core::switch::Step;
use time::format_description::well_known::Rfc3339;

use super::open_store;
use crate::config::Config;

/// Arguments of `bma show`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// The BMA address (any case).
    address: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Prints the mailbox and its events.
pub async fn run(config: &Config, args: &Args) -> anyhow::Result<ExitCode> {
    let store = open_store(config).await?;
    let m = store.mailbox(&super::mailbox_address(config, &args.address)?).await?;
    let timeline = store.timeline(m.id).await?;
    let contact = config.contacts.for_state(m.state, m.blocked_from);
    let progress = store.switch_steps(&super::mailbox_address(config, &args.address)?).await?;
    let receipt = progress.details(Step::Verify).and_then(|d| d.get("receipt")).cloned();
    let forwarding = store.forwarding_audit(&super::mailbox_address(config, &args.address)?).await?;
    if args.json {
        let steps: Vec<serde_json::Value> = progress
            .steps
            .iter()
            .map(|s| serde_json::json!({ "step": s.step.as_str(), "at": s.at.format(&Rfc3339).unwrap_or_default() }))
            .collect();
        let cutover = serde_json::json!({ "started_at": progress.started_at.map(|t| t.format(&Rfc3339).unwrap_or_default()), "steps": steps, "receipt": receipt });
        println!(
            "{}",
            serde_json::json!({ "mailbox": m, "contact": contact, "cutover": cutover, "forwarding": forwarding.as_ref().map(super::audit::audit_json), "timeline": timeline })
        );
    } else {
        let opt = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), |n| n.to_string());
        println!("{}  ({}, FASE {})", m.address, m.kind.label_fr(), m.fase);
        println!("  name       {}", m.name);
        match m.blocked_from {
            Some(from) => println!("  state      {} (blocked while {from})", m.state),
            None => println!("  state      {} — {}", m.state, m.state.label_fr()),
        }
        let wave = m.wave.map_or_else(|| "-".to_owned(), |d| d.to_string());
        let pin = m.pinned_wave.map_or_else(String::new, |d| format!(", pinned to {d}"));
        let excluded = if m.excluded { ", excluded from the planning" } else { "" };
        println!("  wave       {wave}{pin}{excluded} (priority {})", m.priority);
        println!(
            "  legacy     quota {} B, usage {} B, {} messages",
            opt(m.quota_bytes),
            opt(m.usage_bytes),
            opt(m.messages)
        );
        let phone = if contact.phone.is_empty() { String::new() } else { format!(", {}", contact.phone) };
        println!("  contact    {} <{}>{phone}", contact.name, contact.email);
        if !progress.steps.is_empty() {
            println!("  cutover");
            for s in &progress.steps {
                println!(
                    "    {}  {:<11} {}",
                    s.at.format(&Rfc3339).unwrap_or_default(),
                    s.step.as_str(),
                    s.step.label_fr()
                );
            }
            if let Some(r) = &receipt {
                println!(
                    "    receipt: {} messages, {} bytes in {} folders, {} missing, digest {}",
                    r["messages"],
                    r["bytes"],
                    r["folders"].as_array().map_or(0, Vec::len),
                    r["missing"],
                    r["digest"].as_str().unwrap_or("")
                );
            }
        }
        match &forwarding {
            None => println!("  forwarding not audited (bma audit forwarding)"),
            Some(a) => {
                let active =
                    a.active_script.as_deref().map_or_else(|| "none active".to_owned(), |s| format!("{s:?} active"));
                let verdict = if a.forwards_outside() { "forwards outside" } else { "no forwarding outside" };
                println!(
                    "  forwarding audited {}: {} scripts, {active}, {verdict}",
                    a.audited_at.format(&Rfc3339).unwrap_or_default(),
                    a.scripts
                );
                for line in super::audit::finding_lines(a) {
                    println!("    {line}");
                }
            }
        }
        println!("  timeline");
        for e in &timeline {
            let at = e.at.format(&Rfc3339).unwrap_or_default();
            let change = match (e.from_state, e.to_state) {
                (Some(f), Some(t)) => format!("{f} → {t}"),
                (None, Some(t)) => format!("→ {t}"),
                _ => e.kind.to_string(),
            };
            println!("    {at}  {change:<28} {:<22} {}", e.actor, e.reason);
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
