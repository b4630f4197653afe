//! The `sieve` step of a cutover: the mailbox's Sieve scripts (filters,
//! vacation, redirects) carried from the legacy platform to the new one,
//! without what the new platform forbids (automatic forwarding outside).
//!
//! Rules:
//! - every legacy script is fetched (the master user acting for the box:
//!   the box's own login is refused since `hold`, so the scripts no longer
//!   change) and written again by [`bma_sieve::strip_external`] against the
//!   campaign's domains: an external `redirect` becomes `keep;` (the
//!   message stays, none is lost), one with `:copy` is removed, an external
//!   `mailto` notification is removed, every other byte is kept (internal
//!   redirects, vacation, filters);
//! - each script the reader could read is checked (`CHECKSCRIPT`) then
//!   stored (`PUTSCRIPT`, which replaces: a resumed run does the whole step
//!   again harmlessly) on the new platform under the same name, and the
//!   legacy active script made active there; with none active on the
//!   legacy side, none is on the new side either (so that a script left by
//!   an earlier, rolled-back attempt does not run). Scripts that include
//!   others are tried again after the others are stored, so that an
//!   included script is there when the one including it is checked; a
//!   box without any script asks the new platform nothing;
//! - a script that cannot be read (syntax the reader refuses, not UTF-8,
//!   a fetch refused) or that the new platform refuses even without its
//!   external forwarding (its reason kept) is not stored, and the mailbox
//!   is flagged `sieve_not_migrated` for a human: **a Sieve script never
//!   fails or stops a cutover**, as mail is held until `route` and
//!   delivering it matters more than a filter. The same holds for a
//!   ManageSieve server that cannot be reached (the legacy scripts stay on
//!   the legacy platform, readable by the master user);
//! - a platform without ManageSieve configured: nothing done, recorded so;
//! - what was done is the step's event details ([`SieveMigration`]): per
//!   script its name, whether it is the active one, stored or why not, and
//!   each change (line, the command as written, what replaced it, its
//!   targets and whether it ran: in the active script or one it includes).
//!   The scripts' text is not kept (only the changed commands).
//!
//! Mail 2 reads those details ([`SieveMigration::forwards_removed`]) to
//! tell the manager what no longer forwards.

use std::collections::BTreeSet;

use bma_platform::managesieve::{Client, Config as SieveConfig, Login, SieveError};
use bma_sieve::{Action, Domains, Target};
use serde::{Deserialize, Serialize};

use crate::PlatformAccess;
use crate::forwarding::{Fetched, fetch_all, read_all};

/// How the step ended, as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The scripts were read and each stored or recorded as not stored.
    Migrated,
    /// A platform has no ManageSieve configured: nothing done.
    NotConfigured,
    /// The legacy scripts could not be listed: nothing stored.
    NotListed,
}

/// Why a script was not stored on the new platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotStored {
    /// The reader could not read it, or the legacy server would not hand it over.
    Unreadable,
    /// The new platform refused it (`CHECKSCRIPT` or `PUTSCRIPT` said `NO`).
    Refused,
    /// The new platform's ManageSieve could not be reached or broke off.
    Unreachable,
}

/// What a change took out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Removed {
    /// A `redirect` without `:copy`, made `keep;`: the messages stay now.
    Redirect,
    /// A `redirect :copy`, removed: a copy no longer leaves.
    RedirectCopy,
    /// A `mailto` notification, removed.
    Notify,
}

/// One command changed in a script.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeRecord {
    /// Its line in the legacy script.
    pub line: u32,
    /// What it took out.
    pub removed: Removed,
    /// The command as written.
    pub before: String,
    /// What replaced it (`keep;`, or empty when removed).
    pub after: String,
    /// Where it sent mail.
    pub targets: Vec<String>,
    /// Whether it ran: in the active script or one the active script includes.
    pub runs: bool,
}

/// One script and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScriptRecord {
    /// Its name (the same on both platforms).
    pub name: String,
    /// Whether it is the active script.
    pub active: bool,
    /// Whether it was stored on the new platform.
    pub stored: bool,
    /// Why not, when not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_stored: Option<NotStored>,
    /// The reader's error or the server's words, when not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
    /// What was changed (also for a script refused after the change).
    #[serde(default)]
    pub changes: Vec<ChangeRecord>,
}

/// The step's details: what became of the mailbox's scripts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SieveMigration {
    /// How it ended.
    pub outcome: Outcome,
    /// The legacy active script, if any.
    #[serde(default)]
    pub active: Option<String>,
    /// Whether the new platform's active script was set as the legacy one
    /// (none when none, or when the active one was not stored).
    #[serde(default)]
    pub active_set: bool,
    /// Every legacy script.
    #[serde(default)]
    pub scripts: Vec<ScriptRecord>,
    /// Why nothing was done, for [`Outcome::NotConfigured`] and [`Outcome::NotListed`],
    /// or why the active script could not be set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// A forwarding mail 2 says is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ForwardRemoved {
    /// The target, masked as the manager's pages show it (`m***@gmail.com`).
    pub target: String,
    /// What was taken out.
    pub removed: Removed,
}

impl SieveMigration {
    /// Nothing done: `why` (a platform without ManageSieve).
    fn nothing(outcome: Outcome, why: String) -> SieveMigration {
        SieveMigration { outcome, active: None, active_set: false, scripts: Vec::new(), error: Some(why) }
    }

    /// The JSON of the step's event.
    pub fn to_details(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
    }

    /// Read back from the step's event; `None` for details of another shape.
    pub fn from_details(details: &serde_json::Value) -> Option<SieveMigration> {
        serde_json::from_value(details.clone()).ok()
    }

    /// The scripts not stored on the new platform, or why none was read:
    /// what a human must look at (`None`: nothing).
    pub fn left_out(&self) -> Option<String> {
        if self.outcome == Outcome::NotListed {
            return Some(format!(
                "the legacy Sieve scripts could not be listed: {}",
                self.error.as_deref().unwrap_or("?")
            ));
        }
        let out: Vec<String> = self
            .scripts
            .iter()
            .filter(|s| !s.stored)
            .map(|s| format!("{:?} ({}: {})", s.name, not_stored_str(s.not_stored), s.why.as_deref().unwrap_or("?")))
            .collect();
        let mut why = Vec::new();
        if !out.is_empty() {
            why.push(format!("Sieve scripts not written on the new platform: {}", out.join("; ")));
        }
        if let Some(e) = self.error.as_deref().filter(|_| self.outcome == Outcome::Migrated) {
            why.push(format!("the new platform's ManageSieve: {e}"));
        }
        (!why.is_empty()).then(|| why.join("; "))
    }

    /// What mail 2 says no longer forwards: the changes of the scripts
    /// that ran (an inactive script forwarded nothing), one per target and
    /// kind, targets masked, in the order of the scripts.
    pub fn forwards_removed(&self) -> Vec<ForwardRemoved> {
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for change in self.scripts.iter().flat_map(|s| &s.changes).filter(|c| c.runs) {
            for target in &change.targets {
                let masked =
                    bma_core::form::mask_forward_target(target).unwrap_or_else(|| "une adresse extérieure".to_owned());
                if seen.insert((masked.clone(), change.removed)) {
                    out.push(ForwardRemoved { target: masked, removed: change.removed });
                }
            }
        }
        out
    }

    /// Whether a script, or the whole of them, was not carried over (mail
    /// 2 says some rules are to be made again).
    pub fn rules_left_out(&self) -> bool {
        self.outcome == Outcome::NotListed || self.scripts.iter().any(|s| !s.stored)
    }
}

/// Adds to mail 2's `context` what it says of the scripts
/// (`forwards_removed`: each a masked `target` and what was `removed`;
/// `rules_left_out`) from the step's details, if any (none: nothing to
/// say), and the link of the mail clients' guides (`guides_url`, the
/// portal's `/guides`).
pub(crate) fn add_to_mail2(
    context: &mut serde_json::Value,
    details: Option<&serde_json::Value>,
    portal_base_url: &str,
) {
    let migration = details.and_then(SieveMigration::from_details);
    let forwards = migration.as_ref().map(SieveMigration::forwards_removed).unwrap_or_default();
    if let Some(map) = context.as_object_mut() {
        map.insert("forwards_removed".into(), serde_json::to_value(forwards).unwrap_or_default());
        map.insert("rules_left_out".into(), migration.as_ref().is_some_and(SieveMigration::rules_left_out).into());
        map.insert("guides_url".into(), format!("{}/guides", portal_base_url.trim_end_matches('/')).into());
    }
}

fn not_stored_str(n: Option<NotStored>) -> &'static str {
    match n {
        Some(NotStored::Unreadable) => "unreadable",
        Some(NotStored::Refused) => "refused by the new platform",
        Some(NotStored::Unreachable) => "the new platform's ManageSieve unreachable",
        None => "not stored",
    }
}

/// A script ready to be stored: its record and the text to store.
#[derive(Debug, Clone)]
pub(crate) struct Planned {
    pub record: ScriptRecord,
    /// The stripped text; `None` when the script could not be read.
    pub text: Option<String>,
    /// Whether it includes another script (stored after those it may need).
    pub includes: bool,
}

/// The scripts as fetched, each stripped of its external forwarding
/// against `domains`, with its changes: pure.
pub(crate) fn plan(fetched: &[Fetched], domains: &Domains) -> Vec<Planned> {
    let audit = read_all(fetched, domains, time::OffsetDateTime::UNIX_EPOCH);
    let runs =
        |script: &str, line: u32| audit.findings.iter().any(|f| f.script == script && f.line == line && f.active);
    fetched
        .iter()
        .map(|s| {
            let mut record = ScriptRecord {
                name: s.name.clone(),
                active: s.active,
                stored: false,
                not_stored: None,
                why: None,
                changes: Vec::new(),
            };
            let unreadable = |mut record: ScriptRecord, why: String| {
                record.not_stored = Some(NotStored::Unreadable);
                record.why = Some(why);
                Planned { record, text: None, includes: false }
            };
            let bytes = match &s.source {
                Ok(bytes) => bytes,
                Err(e) => return unreadable(record, format!("cannot fetch: {e}")),
            };
            let source = match std::str::from_utf8(bytes) {
                Ok(text) => text,
                Err(_) => {
                    let why = bma_sieve::parse_bytes(&s.name, bytes)
                        .err()
                        .map_or_else(|| "not UTF-8".into(), |e| e.to_string());
                    return unreadable(record, why);
                }
            };
            let (stripped, report) = match (
                bma_sieve::strip_external(&s.name, source, domains),
                bma_sieve::read(&s.name, source, domains),
            ) {
                (Ok(stripped), Ok(report)) => (stripped, report),
                (Err(e), _) | (_, Err(e)) => return unreadable(record, e.to_string()),
            };
            for change in &stripped.changes {
                let finding = report
                    .findings
                    .iter()
                    .find(|f| f.line == change.line && source.get(f.span.clone()) == Some(change.before.as_str()));
                let removed = match finding.map(|f| &f.action) {
                    Some(Action::Redirect { copy: false }) => Removed::Redirect,
                    Some(Action::Redirect { copy: true }) => Removed::RedirectCopy,
                    _ => Removed::Notify,
                };
                let targets = match finding {
                    Some(f) if !f.recipients.is_empty() => f.recipients.clone(),
                    Some(f) => match &f.target {
                        Target::Known(v) | Target::Dynamic(v) => vec![v.clone()],
                        Target::None => Vec::new(),
                    },
                    None => Vec::new(),
                };
                record.changes.push(ChangeRecord {
                    line: change.line,
                    removed,
                    before: change.before.clone(),
                    after: change.after.clone(),
                    targets,
                    runs: runs(&s.name, change.line),
                });
            }
            let includes = report.findings.iter().any(|f| matches!(f.action, Action::Include { .. }));
            Planned { record, text: Some(stripped.text), includes }
        })
        .collect()
}

/// Carries `address`'s scripts from `legacy` to `new` (see the module
/// doc). Never an error: what could not be done is in the result.
pub(crate) async fn migrate(
    legacy: &PlatformAccess,
    new: &PlatformAccess,
    address: &str,
    domains: &Domains,
) -> SieveMigration {
    let (Some(from), Some(to)) = (&legacy.sieve, &new.sieve) else {
        let which = if legacy.sieve.is_none() { "legacy" } else { "new" };
        return SieveMigration::nothing(Outcome::NotConfigured, format!("the {which} platform has no ManageSieve"));
    };
    let fetched = match fetch_all(from, legacy, address).await {
        Ok(fetched) => fetched,
        Err(e) => return SieveMigration::nothing(Outcome::NotListed, e.to_string()),
    };
    let active = fetched.iter().find(|s| s.active).map(|s| s.name.clone());
    let mut planned = plan(&fetched, domains);
    let mut migration =
        SieveMigration { outcome: Outcome::Migrated, active, active_set: false, scripts: Vec::new(), error: None };
    if planned.is_empty() {
        // No script: the new platform is not asked anything.
        return migration;
    }
    if let Err(e) = store_all(to, new, address, &mut planned, migration.active.as_deref()).await {
        migration.error = Some(e.to_string());
        for p in planned.iter_mut().filter(|p| p.text.is_some() && !p.record.stored && p.record.not_stored.is_none()) {
            p.record.not_stored = Some(NotStored::Unreachable);
            p.record.why = Some(e.to_string());
        }
    } else {
        let active_stored = planned.iter().any(|p| p.record.active && p.record.stored);
        migration.active_set = active_stored;
    }
    migration.scripts = planned.into_iter().map(|p| p.record).collect();
    migration
}

/// Checks and stores every readable script of `planned` on the new
/// platform, those including others last and tried again while one more
/// is stored at each pass, then sets the active one (or none). A refusal
/// is recorded in the script's record; a broken connection is the error.
async fn store_all(
    config: &SieveConfig,
    new: &PlatformAccess,
    address: &str,
    planned: &mut [Planned],
    active: Option<&str>,
) -> Result<(), SieveError> {
    let login = Login::master(address, &new.admin, new.password.clone());
    let mut client = Client::login(config, &login).await?;
    let mut order: Vec<usize> = (0..planned.len()).filter(|i| planned[*i].text.is_some()).collect();
    order.sort_by_key(|i| planned[*i].includes);
    loop {
        let mut progress = false;
        for &i in &order {
            let p = &mut planned[i];
            let Some(text) = p.text.as_deref().filter(|_| !p.record.stored) else { continue };
            let stored = match client.check_script(text.as_bytes()).await {
                Ok(_) => client.put_script(&p.record.name, text.as_bytes()).await.map(|_| ()),
                Err(e) => Err(e),
            };
            match stored {
                Ok(()) => {
                    p.record.stored = true;
                    p.record.not_stored = None;
                    p.record.why = None;
                    progress = true;
                }
                Err(SieveError::Refused { text, .. }) => {
                    p.record.not_stored = Some(NotStored::Refused);
                    p.record.why = Some(text);
                }
                Err(e) => return Err(e),
            }
        }
        if !progress || order.iter().all(|i| planned[*i].record.stored) {
            break;
        }
    }
    let active_stored = active.filter(|a| planned.iter().any(|p| p.record.name == *a && p.record.stored));
    client.set_active(active_stored.unwrap_or("")).await?;
    let _ = client.logout().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fetched(name: &str, active: bool, source: &str) -> Fetched {
        Fetched { name: name.to_owned(), active, source: Ok(source.as_bytes().to_vec()) }
    }

    const ROUNDCUBE: &str = "require [\"copy\", \"vacation\"];\r\n# rule:[renvoi]\r\nif true\r\n{\r\n\tredirect \"x@gmail.com\";\r\n\tredirect :copy \"y@hotmail.com\";\r\n\tredirect \"ec000001@adm.cfwb.be\";\r\n}\r\nvacation :days 3 \"Absent\";\r\n";

    #[test]
    fn the_plan_records_each_change_with_its_target_and_whether_it_ran() {
        let domains = Domains::new(["adm.cfwb.be"]);
        let scripts = [
            fetched("roundcube", true, ROUNDCUBE),
            fetched("ancien", false, "redirect \"old@skynet.be\";\n"),
            fetched("casse", false, "redirect \"a@b.be\""),
            Fetched { name: "refuse".into(), active: false, source: Err("NO".into()) },
        ];
        let planned = plan(&scripts, &domains);
        let records: Vec<serde_json::Value> =
            planned.iter().map(|p| serde_json::to_value(&p.record).expect("json")).collect();
        expect_test::expect![[r#"
            [
              {
                "active": true,
                "changes": [
                  {
                    "after": "keep;",
                    "before": "redirect \"x@gmail.com\";",
                    "line": 5,
                    "removed": "redirect",
                    "runs": true,
                    "targets": [
                      "x@gmail.com"
                    ]
                  },
                  {
                    "after": "",
                    "before": "redirect :copy \"y@hotmail.com\";",
                    "line": 6,
                    "removed": "redirect_copy",
                    "runs": true,
                    "targets": [
                      "y@hotmail.com"
                    ]
                  }
                ],
                "name": "roundcube",
                "stored": false
              },
              {
                "active": false,
                "changes": [
                  {
                    "after": "keep;",
                    "before": "redirect \"old@skynet.be\";",
                    "line": 1,
                    "removed": "redirect",
                    "runs": false,
                    "targets": [
                      "old@skynet.be"
                    ]
                  }
                ],
                "name": "ancien",
                "stored": false
              },
              {
                "active": false,
                "changes": [],
                "name": "casse",
                "not_stored": "unreadable",
                "stored": false,
                "why": "casse: line 1, column 18: the script ends too early: expected \";\" or a block"
              },
              {
                "active": false,
                "changes": [],
                "name": "refuse",
                "not_stored": "unreadable",
                "stored": false,
                "why": "cannot fetch: NO"
              }
            ]"#]]
        .assert_eq(&serde_json::to_string_pretty(&records).expect("text"));
        let text = planned[0].text.as_deref().expect("stripped");
        assert_eq!(
            text,
            "require [\"copy\", \"vacation\"];\r\n# rule:[renvoi]\r\nif true\r\n{\r\n\tkeep;\r\n\tredirect \"ec000001@adm.cfwb.be\";\r\n}\r\nvacation :days 3 \"Absent\";\r\n"
        );
        assert!(planned[2].text.is_none() && planned[3].text.is_none());
    }

    #[test]
    fn mail_2_is_told_what_ran_and_no_longer_forwards_masked() {
        let domains = Domains::new(["adm.cfwb.be"]);
        let include = "require \"include\";\ninclude :personal \"renvoi\";\n";
        let scripts = [
            fetched("main", true, include),
            fetched("renvoi", false, "redirect \"marie@gmail.com\";\nredirect \"marie@gmail.com\";\n"),
            fetched("notes", false, "require \"enotify\";\nnotify \"mailto:a@b.be\";\n"),
        ];
        let mut migration = SieveMigration {
            outcome: Outcome::Migrated,
            active: Some("main".into()),
            active_set: true,
            scripts: plan(&scripts, &domains).into_iter().map(|p| p.record).collect(),
            error: None,
        };
        for s in &mut migration.scripts {
            s.stored = true;
        }
        // The included script ran; the notification's script did not; one line per target.
        assert_eq!(
            migration.forwards_removed(),
            [ForwardRemoved { target: "m***@gmail.com".into(), removed: Removed::Redirect }]
        );
        assert!(!migration.rules_left_out() && migration.left_out().is_none());
        // Read back from the event's JSON, the same.
        let back = SieveMigration::from_details(&migration.to_details()).expect("read back");
        assert_eq!(back, migration);
        // A script refused: left out, and said why.
        migration.scripts[2].stored = false;
        migration.scripts[2].not_stored = Some(NotStored::Refused);
        migration.scripts[2].why = Some("redirection refusée".into());
        assert!(migration.rules_left_out());
        let why = migration.left_out().expect("flagged");
        assert!(why.contains("\"notes\" (refused by the new platform: redirection refusée)"), "{why}");
        // Nothing configured, nothing said, nothing flagged; nothing listed, flagged.
        let none = SieveMigration::nothing(Outcome::NotConfigured, "no ManageSieve".into());
        assert!(none.forwards_removed().is_empty() && !none.rules_left_out() && none.left_out().is_none());
        let unlisted = SieveMigration::nothing(Outcome::NotListed, "refused".into());
        assert!(unlisted.rules_left_out() && unlisted.left_out().is_some_and(|w| w.contains("could not be listed")));
    }
}
