//! The forwarding audit: what each mailbox's Sieve scripts on the legacy
//! platform do with its mail, before it moves to a platform that forbids
//! automatic forwarding outside. Run by `bma audit forwarding` and by the
//! invitations job before a wave's mail 1 (whose text then names what the
//! box forwards to); the cutover reads the scripts the same way.
//!
//! Rules: every script of a box is fetched over ManageSieve (the
//! platform's master user acting for the box), active or not, and read with
//! `bma-sieve` against the campaign's BMA domain (internal); a script
//! included by the active one (`:personal`, followed through every level)
//! counts as active; a script that cannot be fetched or read, an included
//! script that does not exist, and a box whose scripts cannot be listed are
//! `unreadable` findings with the error, stored like the others, never
//! skipped. At most `presync.max_connections` boxes are audited at once
//! (the same budget of connections to the legacy servers). Each box's
//! findings replace its previous ones in one transaction with an event.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bma_core::{Actor, Address};
use bma_platform::managesieve::{Client, Config as SieveConfig, Login, SieveError};
use bma_sieve::{Action as SieveAction, Domains, IncludeLocation, Target};
use bma_store::{FindingKind, ForwardingAudit, ForwardingFinding, ForwardingReach};
use time::OffsetDateTime;

use crate::{Engine, EngineError, PlatformAccess};

/// A script as fetched: its bytes, or why not.
#[derive(Debug, Clone)]
pub struct Fetched {
    /// Its name on the server.
    pub name: String,
    /// Whether it is the active script.
    pub active: bool,
    /// Its bytes, or why they could not be fetched.
    pub source: Result<Vec<u8>, String>,
}

/// One box's audit, or why it could not be audited at all.
#[derive(Debug, Clone)]
pub struct AuditOutcome {
    /// The mailbox.
    pub address: Address,
    /// What was found (an unreadable finding when its scripts could not be listed).
    pub audit: ForwardingAudit,
    /// Its scripts could not be listed.
    pub failed: bool,
    /// … because the server could not be reached (connection, TLS, timeout):
    /// the next boxes will not fare better.
    pub unreachable: bool,
}

/// Every script of `address` on `platform` (its ManageSieve `config`),
/// fetched with its master user.
pub async fn fetch_all(
    config: &SieveConfig,
    platform: &PlatformAccess,
    address: &str,
) -> Result<Vec<Fetched>, SieveError> {
    let login = Login::master(address, &platform.admin, platform.password.clone());
    let mut client = Client::login(config, &login).await?;
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
async fn audit_one(
    config: &SieveConfig,
    platform: &PlatformAccess,
    domains: &Domains,
    address: Address,
    audited_at: OffsetDateTime,
) -> AuditOutcome {
    match fetch_all(config, platform, address.as_str()).await {
        Ok(scripts) => {
            AuditOutcome { address, audit: read_all(&scripts, domains, audited_at), failed: false, unreachable: false }
        }
        Err(e) => AuditOutcome {
            unreachable: matches!(
                e,
                SieveError::Connect { .. } | SieveError::Timeout(_) | SieveError::Tls(_) | SieveError::Io(_)
            ),
            address,
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
pub fn read_all(scripts: &[Fetched], domains: &Domains, audited_at: OffsetDateTime) -> ForwardingAudit {
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

impl Engine {
    /// The campaign's own domains, against which a target is internal.
    pub fn internal_domains(&self) -> Domains {
        Domains::new([self.settings.settings.addresses.domain.as_str()])
    }

    /// Audits `addresses` on the legacy platform, at most
    /// `presync.max_connections` at once, each box's findings recorded
    /// (with `actor`) as soon as it is read; `done` is called after each
    /// (a progress bar). The outcomes come in the order they finish. `now`
    /// is the campaign clock's (the audit's time and its event's).
    pub async fn audit_forwarding(
        &self,
        addresses: &[Address],
        actor: &Actor,
        now: OffsetDateTime,
        mut done: impl FnMut(&AuditOutcome),
    ) -> Result<Vec<AuditOutcome>, EngineError> {
        let Some(legacy) = self.settings.legacy.clone() else {
            return Err(EngineError::Refused("the legacy platform ([legacy]) is not configured".into()));
        };
        let Some(config) = legacy.sieve.clone() else {
            return Err(EngineError::Refused("the legacy platform has no ManageSieve ([legacy] managesieve)".into()));
        };
        let (legacy, config) = (Arc::new(legacy), Arc::new(config));
        let domains = Arc::new(self.internal_domains());
        let limit = Arc::new(tokio::sync::Semaphore::new(self.settings.presync.max_connections.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        for address in addresses {
            let (legacy, config, domains, limit) = (legacy.clone(), config.clone(), domains.clone(), limit.clone());
            let address = address.clone();
            tasks.spawn(async move {
                let _permit = limit.acquire_owned().await;
                audit_one(&config, &legacy, &domains, address, now).await
            });
        }
        let mut outcomes = Vec::with_capacity(addresses.len());
        while let Some(joined) = tasks.join_next().await {
            let outcome = joined.map_err(|e| EngineError::Refused(format!("an audit task failed: {e}")))?;
            if outcome.failed {
                tracing::warn!(address = %outcome.address, "forwarding audit: cannot list the scripts");
            }
            self.store.record_forwarding_audit(&outcome.address, &outcome.audit, actor).await?;
            done(&outcome);
            outcomes.push(outcome);
        }
        Ok(outcomes)
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
}
