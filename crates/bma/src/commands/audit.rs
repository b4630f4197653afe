//! `bma audit forwarding [--json|--csv] [ADDRESS…]`: what every mailbox's
//! Sieve scripts on the legacy platform do with its mail, before it moves
//! to a platform that forbids automatic forwarding outside.
//!
//! The audit itself is the engine's (`bma_engine::forwarding`: the rules
//! of reading, fetching and recording are there; `[legacy] managesieve`,
//! default the IMAP host on port 4190); this command chooses the boxes,
//! shows progress and prints. The operator sees targets whole; CSV cells
//! are neutralised (`bma_core::csv_cell`). Exit code 1 when a box could
//! not be audited.

use std::collections::{BTreeMap, BTreeSet};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Instant;

use bma_core::csv_cell;
use bma_engine::forwarding::AuditOutcome;
use bma_store::{FindingKind, ForwardingAudit, ForwardingFinding, ForwardingReach};
use time::format_description::well_known::Rfc3339;

use crate::config::Config;

/// `bma audit …`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Read every mailbox's Sieve scripts on the legacy platform: who forwards mail outside.
    Forwarding(ForwardingArgs),
}

/// Arguments of `bma audit forwarding`.
#[derive(Debug, clap::Args)]
pub struct ForwardingArgs {
    /// Only these mailboxes (default: every mailbox of the registry).
    addresses: Vec<String>,
    /// Print JSON (one object: mailboxes and summary).
    #[arg(long, conflicts_with = "csv")]
    json: bool,
    /// Print CSV (one row per finding, a row for a box without any).
    #[arg(long)]
    csv: bool,
}

/// Runs `bma audit`.
pub async fn run(config: &Config, action: Action) -> anyhow::Result<ExitCode> {
    match action {
        Action::Forwarding(args) => forwarding(config, &args).await,
    }
}

async fn forwarding(config: &Config, args: &ForwardingArgs) -> anyhow::Result<ExitCode> {
    if !config.legacy.is_set() {
        anyhow::bail!("[legacy] is not configured: the audit reads scripts with its admin (master) user");
    }
    let engine = crate::engine_config::engine(config, "audit").await?;
    let store = engine.store();
    let addresses: Vec<bma_core::Address> = if args.addresses.is_empty() {
        let mut all = Vec::new();
        for m in store.mailboxes().await? {
            all.push(super::mailbox_address(config, &m.address)?);
        }
        all
    } else {
        let mut given = Vec::new();
        for a in &args.addresses {
            let address = super::mailbox_address(config, a)?;
            store.mailbox(&address).await?;
            given.push(address);
        }
        given
    };
    let started = Instant::now();
    let bar = (!args.json && !args.csv && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(addresses.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} audit {pos}/{len} mailboxes  ETA {eta}  [{wide_bar}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let actor = super::operator(None);
    let mut outcomes = engine
        .audit_forwarding(&addresses, &actor, super::campaign_now()?, |_| {
            if let Some(b) = &bar {
                b.inc(1);
            }
        })
        .await?;
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    outcomes.sort_by(|a, b| a.address.as_str().cmp(b.address.as_str()));
    let summary = Summary::of(&outcomes, started.elapsed().as_secs_f64());
    if args.json {
        print_json(&outcomes, &summary)?;
    } else if args.csv {
        print_csv(&outcomes)?;
    } else {
        print_table(&outcomes, &summary);
    }
    Ok(if summary.failed > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The campaign-wide figures.
#[derive(Debug, serde::Serialize)]
struct Summary {
    mailboxes: usize,
    with_scripts: usize,
    forwarding_outside: usize,
    /// Boxes forwarding outside (active scripts) by target domain.
    domains: BTreeMap<String, usize>,
    with_unreadable: usize,
    failed: usize,
    seconds: f64,
}

fn domain_of(target: &str) -> String {
    target.split(", ").filter_map(bma_store::target_domain).next().unwrap_or_else(|| "(unknown)".to_owned())
}

impl Summary {
    fn of(outcomes: &[AuditOutcome], seconds: f64) -> Summary {
        let mut domains = BTreeMap::new();
        for o in outcomes {
            let seen: BTreeSet<String> = o
                .audit
                .external()
                .filter(|f| f.active && matches!(f.kind, FindingKind::Redirect | FindingKind::Notify))
                .map(|f| domain_of(&f.target))
                .collect();
            for d in seen {
                *domains.entry(d).or_insert(0) += 1;
            }
        }
        Summary {
            mailboxes: outcomes.len(),
            with_scripts: outcomes.iter().filter(|o| o.audit.scripts > 0).count(),
            forwarding_outside: outcomes.iter().filter(|o| o.audit.forwards_outside()).count(),
            domains,
            with_unreadable: outcomes.iter().filter(|o| o.audit.unreadable() > 0).count(),
            failed: outcomes.iter().filter(|o| o.failed).count(),
            seconds,
        }
    }
}

fn finding_json(f: &ForwardingFinding) -> serde_json::Value {
    serde_json::json!({
        "script": f.script,
        "active": f.active,
        "kind": f.kind.as_str(),
        "reach": f.reach.map(ForwardingReach::as_str),
        "target": f.target,
        "line": f.line,
        "copy": f.copy,
        "conditional": f.conditional,
        "detail": f.detail,
    })
}

/// The JSON of one box's audit (also `bma show --json`'s `forwarding`).
pub fn audit_json(audit: &ForwardingAudit) -> serde_json::Value {
    serde_json::json!({
        "audited_at": audit.audited_at.format(&Rfc3339).unwrap_or_default(),
        "scripts": audit.scripts,
        "active_script": audit.active_script,
        "forwards_outside": audit.forwards_outside(),
        "findings": audit.findings.iter().map(finding_json).collect::<Vec<_>>(),
    })
}

fn print_json(outcomes: &[AuditOutcome], summary: &Summary) -> anyhow::Result<()> {
    let boxes: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let mut v = audit_json(&o.audit);
            v["address"] = serde_json::Value::String(o.address.to_string());
            v["failed"] = serde_json::Value::Bool(o.failed);
            v
        })
        .collect();
    println!("{}", serde_json::json!({ "mailboxes": boxes, "summary": summary }));
    Ok(())
}

fn print_csv(outcomes: &[AuditOutcome]) -> anyhow::Result<()> {
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record(csv_cell::record([
        "address",
        "scripts",
        "active_script",
        "script",
        "active",
        "kind",
        "reach",
        "target",
        "line",
        "copy",
        "conditional",
        "detail",
    ]))?;
    for o in outcomes {
        let head =
            [o.address.to_string(), o.audit.scripts.to_string(), o.audit.active_script.clone().unwrap_or_default()];
        if o.audit.findings.is_empty() {
            let mut row = head.to_vec();
            row.extend(std::iter::repeat_n(String::new(), 9));
            w.write_record(csv_cell::record(&row))?;
        }
        for f in &o.audit.findings {
            let mut row = head.to_vec();
            row.extend([
                f.script.clone(),
                f.active.to_string(),
                f.kind.to_string(),
                f.reach.map(|r| r.to_string()).unwrap_or_default(),
                f.target.clone(),
                f.line.to_string(),
                f.copy.to_string(),
                f.conditional.to_string(),
                f.detail.clone(),
            ]);
            w.write_record(csv_cell::record(&row))?;
        }
    }
    w.flush()?;
    Ok(())
}

/// One line a finding in the terminal: control characters of scripts escaped.
fn shown(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_control() { c.escape_default().collect::<Vec<_>>() } else { vec![c] }).collect()
}

/// The findings of one box, as `bma show` and the table print them.
pub fn finding_lines(audit: &ForwardingAudit) -> Vec<String> {
    audit
        .findings
        .iter()
        .map(|f| {
            let run = if f.active { "active" } else { "inactive" };
            if f.kind == FindingKind::Unreadable {
                format!("{:?} ({run}) unreadable: {}", shown(&f.script), shown(&f.detail))
            } else {
                let cond = if f.conditional { " (conditional)" } else { "" };
                let reach = f.reach.map(|r| r.to_string()).unwrap_or_default();
                format!(
                    "{:?}:{} ({run}) {} {} {reach}{cond}",
                    shown(&f.script),
                    f.line,
                    shown(&f.detail),
                    shown(&f.target)
                )
            }
        })
        .collect()
}

fn print_table(outcomes: &[AuditOutcome], summary: &Summary) {
    println!("{:<32} {:>7}  outside (active scripts)", "address", "scripts");
    for o in outcomes {
        let outside: Vec<String> = o
            .audit
            .external()
            .filter(|f| f.active && matches!(f.kind, FindingKind::Redirect | FindingKind::Notify))
            .map(|f| shown(&f.target))
            .collect();
        let mut note = outside.join(", ");
        if o.audit.unreadable() > 0 {
            note.push_str(&format!("{}{} unreadable", if note.is_empty() { "" } else { "; " }, o.audit.unreadable()));
        }
        println!("{:<32} {:>7}  {}", o.address.as_str(), o.audit.scripts, if note.is_empty() { "-" } else { &note });
        if !outside.is_empty() || o.audit.unreadable() > 0 {
            for line in finding_lines(&o.audit) {
                println!("{:<32}          {line}", "");
            }
        }
    }
    println!();
    println!(
        "{} mailboxes audited in {:.1} s: {} with scripts, {} forward outside, {} with an unreadable script, {} not audited",
        summary.mailboxes,
        summary.seconds,
        summary.with_scripts,
        summary.forwarding_outside,
        summary.with_unreadable,
        summary.failed
    );
    for (domain, n) in &summary.domains {
        println!("  {n:>5}  {domain}");
    }
}

#[cfg(test)]
mod tests {
    use bma_engine::forwarding::{Fetched, read_all};
    use bma_sieve::Domains;
    use time::OffsetDateTime;

    use super::*;

    #[test]
    fn summary_counts_active_forwarding_by_domain() {
        let domains = Domains::new(["adm.cfwb.be"]);
        let rule = bma_core::AddressRule::default();
        let outcome = |n: u32, src: &str| AuditOutcome {
            address: bma_core::Address::parse(&format!("ec{n:06}@adm.cfwb.be"), &rule).unwrap(),
            audit: read_all(
                &[Fetched { name: "s".into(), active: true, source: Ok(src.as_bytes().to_vec()) }],
                &domains,
                OffsetDateTime::UNIX_EPOCH,
            ),
            failed: false,
            unreachable: false,
        };
        let outcomes = vec![
            outcome(1, "redirect \"X@Gmail.com\"; redirect \"y@gmail.com\";"),
            outcome(2, "require [\"enotify\"]; notify \"mailto:z@skynet.be?subject=x\";"),
            outcome(3, "redirect \"ec000001@adm.cfwb.be\";"),
            outcome(4, "require \"vacation\"; vacation \"absent\";"),
        ];
        let s = Summary::of(&outcomes, 0.0);
        assert_eq!((s.mailboxes, s.forwarding_outside, s.with_scripts), (4, 2, 4));
        assert_eq!(s.domains, BTreeMap::from([("gmail.com".to_owned(), 1), ("skynet.be".to_owned(), 1)]));
    }

    #[test]
    fn control_characters_are_shown_escaped() {
        assert_eq!(shown("a\r\nb\u{1b}[31m"), "a\\r\\nb\\u{1b}[31m");
    }
}
