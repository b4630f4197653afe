//! `bma audit forwarding [--json|--csv] [ADDRESS…]`: what every mailbox's
//! Sieve scripts on the legacy platform do with its mail, before it moves
//! to a platform that forbids automatic forwarding outside.
//!
//! Rules: every script of a box is fetched over ManageSieve (`[legacy]`'s
//! master user acting for the box; `[legacy] managesieve`, default the
//! IMAP host on port 4190), active or not, and read with `bma-sieve`
//! against the campaign's BMA domain (internal); a script included by the
//! active one (`:personal`, followed through every level) counts as
//! active; a script that cannot be fetched or read, an included script
//! that does not exist, and a box whose scripts cannot be listed are
//! `unreadable` findings with the error, stored like the others, never
//! skipped. At most `[presync] max_connections` boxes are audited at once
//! (the same budget of connections to the legacy servers). Each box's
//! findings replace its previous ones in one transaction with an event.
//! The operator sees targets whole; CSV cells are neutralised
//! (`bma_core::csv_cell`). Exit code 1 when a box could not be audited.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use bma_core::csv_cell;
use bma_platform::managesieve::{Client, Login, SieveError};
use bma_sieve::{Action as SieveAction, Domains, IncludeLocation, Target};
use bma_store::{FindingKind, ForwardingAudit, ForwardingFinding, ForwardingReach};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::open_store;
use crate::config::Config;
use crate::engine_config::SieveAccess;

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

/// One box's audit, or why it could not be audited at all.
struct Outcome {
    address: String,
    audit: ForwardingAudit,
    failed: bool,
}

async fn forwarding(config: &Config, args: &ForwardingArgs) -> anyhow::Result<ExitCode> {
    let access = config.legacy.sieve_access().context("[legacy]")?.ok_or_else(|| {
        anyhow::anyhow!("[legacy] is not configured: the audit reads scripts with its admin (master) user")
    })?;
    let store = open_store(config).await?;
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
    let domains = Arc::new(Domains::new([config.addresses.domain.as_str()]));
    let access = Arc::new(access);
    let limit = Arc::new(tokio::sync::Semaphore::new(config.presync.max_connections.max(1) as usize));
    let started = Instant::now();
    let bar = (!args.json && !args.csv && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(addresses.len() as u64);
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} audit {pos}/{len} mailboxes  ETA {eta}  [{wide_bar}]")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        b
    });
    let mut tasks = tokio::task::JoinSet::new();
    for address in &addresses {
        let (access, domains, limit) = (access.clone(), domains.clone(), limit.clone());
        let address = address.as_str().to_owned();
        tasks.spawn(async move {
            let _permit = limit.acquire_owned().await;
            audit_one(&access, &domains, &address).await
        });
    }
    let actor = super::operator(None);
    let mut outcomes = Vec::with_capacity(addresses.len());
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.context("an audit task failed")?;
        let address = super::mailbox_address(config, &outcome.address)?;
        store.record_forwarding_audit(&address, &outcome.audit, &actor).await?;
        if let Some(b) = &bar {
            b.inc(1);
        }
        outcomes.push(outcome);
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    outcomes.sort_by(|a, b| a.address.cmp(&b.address));
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

fn unreadable(script: &str, active: bool, detail: String) -> ForwardingFinding {
    ForwardingFinding {
        script: script.to_owned(),
        active,
        kind: FindingKind::Unreadable,
        reach: None,
        target: String::new(),
        line: 0,
        copy: false,
        conditional: false,
        detail,
    }
}

/// Fetches and reads every script of `address`.
async fn audit_one(access: &SieveAccess, domains: &Domains, address: &str) -> Outcome {
    let audited_at = OffsetDateTime::now_utc();
    match fetch_all(access, address).await {
        Ok(scripts) => {
            Outcome { address: address.to_owned(), audit: read_all(&scripts, domains, audited_at), failed: false }
        }
        Err(e) => Outcome {
            address: address.to_owned(),
            audit: ForwardingAudit {
                audited_at,
                scripts: 0,
                active_script: None,
                findings: vec![unreadable("", false, format!("cannot list the scripts: {e}"))],
            },
            failed: true,
        },
    }
}

/// A script as fetched: its bytes, or why not.
struct Fetched {
    name: String,
    active: bool,
    source: Result<Vec<u8>, String>,
}

async fn fetch_all(access: &SieveAccess, address: &str) -> Result<Vec<Fetched>, SieveError> {
    let login = Login::master(address, &access.admin, access.password.clone());
    let mut client = Client::login(&access.config, &login).await?;
    let list = client.list_scripts().await?;
    let mut out = Vec::with_capacity(list.len());
    for entry in list {
        let source = match client.get_script(&entry.name).await {
            Ok(bytes) => Ok(bytes),
            Err(e @ SieveError::Refused { .. }) => Err(e.to_string()),
            Err(e) => return Err(e),
        };
        out.push(Fetched { name: entry.name, active: entry.active, source });
    }
    let _ = client.logout().await;
    Ok(out)
}

fn reach(r: bma_sieve::Reach) -> ForwardingReach {
    match r {
        bma_sieve::Reach::Stays => ForwardingReach::Stays,
        bma_sieve::Reach::Internal => ForwardingReach::Internal,
        bma_sieve::Reach::External => ForwardingReach::External,
        bma_sieve::Reach::Dynamic => ForwardingReach::Dynamic,
        bma_sieve::Reach::Sender => ForwardingReach::Sender,
        bma_sieve::Reach::Opaque => ForwardingReach::Opaque,
    }
}

/// The kind kept for an action and whether a copy stays; `None` for one
/// that keeps the message (fileinto, keep, discard).
fn kind(action: &SieveAction) -> Option<(FindingKind, bool)> {
    Some(match action {
        SieveAction::Redirect { copy } => (FindingKind::Redirect, *copy),
        SieveAction::Notify { .. } => (FindingKind::Notify, true),
        SieveAction::Pipe { copy } => (FindingKind::Pipe, *copy),
        SieveAction::Execute { .. } => (FindingKind::Execute, true),
        SieveAction::Include { .. } => (FindingKind::Include, true),
        SieveAction::Vacation { .. } => (FindingKind::Vacation, true),
        SieveAction::Reject => (FindingKind::Reject, false),
        SieveAction::Report => (FindingKind::Report, true),
        SieveAction::FileInto { .. } | SieveAction::Keep | SieveAction::Discard => return None,
    })
}

/// Reads every fetched script; the active one and what it includes, at
/// any depth, are marked active.
fn read_all(scripts: &[Fetched], domains: &Domains, audited_at: OffsetDateTime) -> ForwardingAudit {
    let mut reports = BTreeMap::new();
    let mut errors = BTreeMap::new();
    for s in scripts {
        match &s.source {
            Ok(bytes) => match bma_sieve::read_bytes(&s.name, bytes, domains) {
                Ok(report) => {
                    reports.insert(s.name.clone(), report);
                }
                Err(e) => {
                    errors.insert(s.name.clone(), e.to_string());
                }
            },
            Err(e) => {
                errors.insert(s.name.clone(), format!("cannot fetch: {e}"));
            }
        }
    }
    let names: BTreeSet<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
    let active_script = scripts.iter().find(|s| s.active).map(|s| s.name.clone());
    let mut running = BTreeSet::new();
    let mut missing = Vec::new();
    let mut queue: VecDeque<String> = active_script.iter().cloned().collect();
    while let Some(name) = queue.pop_front() {
        if !running.insert(name.clone()) {
            continue;
        }
        if let Some(report) = reports.get(&name) {
            for f in &report.findings {
                if let (SieveAction::Include { location: IncludeLocation::Personal, optional }, Target::Known(inc)) =
                    (&f.action, &f.target)
                {
                    if names.contains(inc.as_str()) {
                        queue.push_back(inc.clone());
                    } else if !optional {
                        missing.push((name.clone(), inc.clone()));
                    }
                }
            }
        }
    }
    let mut findings = Vec::new();
    for s in scripts {
        let active = running.contains(&s.name);
        if let Some(e) = errors.get(&s.name) {
            findings.push(unreadable(&s.name, active, e.clone()));
            continue;
        }
        let Some(report) = reports.get(&s.name) else { continue };
        for f in &report.findings {
            let Some((kind, copy)) = kind(&f.action) else { continue };
            if kind != FindingKind::Include && !f.leaves() {
                continue;
            }
            let target = if f.recipients.is_empty() {
                match &f.target {
                    Target::None => String::new(),
                    Target::Known(v) | Target::Dynamic(v) => v.clone(),
                }
            } else {
                f.recipients.join(", ")
            };
            findings.push(ForwardingFinding {
                script: s.name.clone(),
                active,
                kind,
                reach: Some(reach(f.reach)),
                target,
                line: f.line,
                copy,
                conditional: f.conditional,
                detail: f.action.to_string(),
            });
        }
    }
    for (from, inc) in missing {
        findings.push(unreadable(&inc, true, format!("included by {from:?} but not on the server")));
    }
    ForwardingAudit { audited_at, scripts: scripts.len() as u32, active_script, findings }
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
    target.split(", ").filter_map(target_domain).next().unwrap_or_else(|| "(unknown)".to_owned())
}

fn target_domain(address: &str) -> Option<String> {
    let bare = address.trim().trim_start_matches("mailto:");
    let bare = bare.split('?').next().unwrap_or(bare);
    bare.rsplit_once('@').map(|(_, d)| d.trim_end_matches('>').trim_end_matches('.').to_ascii_lowercase())
}

impl Summary {
    fn of(outcomes: &[Outcome], seconds: f64) -> Summary {
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

fn print_json(outcomes: &[Outcome], summary: &Summary) -> anyhow::Result<()> {
    let boxes: Vec<serde_json::Value> = outcomes
        .iter()
        .map(|o| {
            let mut v = audit_json(&o.audit);
            v["address"] = serde_json::Value::String(o.address.clone());
            v["failed"] = serde_json::Value::Bool(o.failed);
            v
        })
        .collect();
    println!("{}", serde_json::json!({ "mailboxes": boxes, "summary": summary }));
    Ok(())
}

fn print_csv(outcomes: &[Outcome]) -> anyhow::Result<()> {
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
        let head = [o.address.clone(), o.audit.scripts.to_string(), o.audit.active_script.clone().unwrap_or_default()];
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

fn print_table(outcomes: &[Outcome], summary: &Summary) {
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
        println!("{:<32} {:>7}  {}", o.address, o.audit.scripts, if note.is_empty() { "-" } else { &note });
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
    use super::*;

    fn fetched(name: &str, active: bool, source: &str) -> Fetched {
        Fetched { name: name.to_owned(), active, source: Ok(source.as_bytes().to_vec()) }
    }

    /// A finding as compared: script, active, kind, target.
    type Row = (String, bool, FindingKind, String);

    fn read(scripts: &[Fetched]) -> Vec<Row> {
        let domains = Domains::new(["adm.cfwb.be"]);
        read_all(scripts, &domains, OffsetDateTime::UNIX_EPOCH)
            .findings
            .into_iter()
            .map(|f| (f.script, f.active, f.kind, f.target))
            .collect()
    }

    fn row(script: &str, active: bool, kind: FindingKind, target: &str) -> Row {
        (script.to_owned(), active, kind, target.to_owned())
    }

    #[test]
    fn includes_are_followed_from_the_active_script_only() {
        use FindingKind::{Include, Redirect, Unreadable};
        let table: Vec<(Vec<Fetched>, Vec<Row>)> = vec![
            // a -> b -> c, each level active; d is not reached.
            (
                vec![
                    fetched("a", true, "require \"include\"; include \"b\";"),
                    fetched("b", false, "require \"include\"; include :personal \"c\";"),
                    fetched("c", false, "redirect \"x@gmail.com\";"),
                    fetched("d", false, "redirect \"y@gmail.com\";"),
                ],
                vec![
                    row("a", true, Include, "b"),
                    row("b", true, Include, "c"),
                    row("c", true, Redirect, "x@gmail.com"),
                    row("d", false, Redirect, "y@gmail.com"),
                ],
            ),
            // A cycle ends.
            (
                vec![
                    fetched("a", true, "require \"include\"; include \"b\";"),
                    fetched("b", false, "require \"include\"; include \"a\";"),
                ],
                vec![row("a", true, Include, "b"), row("b", true, Include, "a")],
            ),
            // A missing include is unreadable; an optional one is not; a global one is kept as it is.
            (
                vec![fetched(
                    "a",
                    true,
                    "require \"include\"; include \"gone\"; include :optional \"maybe\"; include :global \"site\";",
                )],
                vec![
                    row("a", true, Include, "gone"),
                    row("a", true, Include, "maybe"),
                    row("a", true, Include, "site"),
                    row("gone", true, Unreadable, ""),
                ],
            ),
            // Nothing active: nothing runs.
            (vec![fetched("a", false, "redirect \"x@gmail.com\";")], vec![row("a", false, Redirect, "x@gmail.com")]),
            // Unreadable: a syntax error and a fetch error, both kept.
            (
                vec![
                    fetched("a", true, "redirect \"x@gmail.com\""),
                    Fetched { name: "b".into(), active: false, source: Err("NO".into()) },
                    fetched("c", false, "keep; fileinto \"x\"; discard;"),
                ],
                vec![row("a", true, Unreadable, ""), row("b", false, Unreadable, "")],
            ),
        ];
        for (scripts, want) in table {
            let names: Vec<&str> = scripts.iter().map(|s| s.name.as_str()).collect();
            assert_eq!(read(&scripts), want, "{names:?}");
        }
    }

    #[test]
    fn summary_counts_active_forwarding_by_domain() {
        let domains = Domains::new(["adm.cfwb.be"]);
        let audit = |src: &str| read_all(&[fetched("s", true, src)], &domains, OffsetDateTime::UNIX_EPOCH);
        let outcomes = vec![
            Outcome {
                address: "a".into(),
                audit: audit("redirect \"X@Gmail.com\"; redirect \"y@gmail.com\";"),
                failed: false,
            },
            Outcome {
                address: "b".into(),
                audit: audit("require [\"enotify\"]; notify \"mailto:z@skynet.be?subject=x\";"),
                failed: false,
            },
            Outcome { address: "c".into(), audit: audit("redirect \"ec000001@adm.cfwb.be\";"), failed: false },
            Outcome { address: "d".into(), audit: audit("require \"vacation\"; vacation \"absent\";"), failed: false },
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
