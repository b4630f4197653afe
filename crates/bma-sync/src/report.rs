//! What a run tells: a [`FolderReport`] per folder (what was planned,
//! copied, reconciled, refused, verified), and the run's [`Summary`] with
//! its [`Outcome`]. Serializable: `bma sync --json` prints them as they are.

use bma_imap::StatusInfo;
use serde::Serialize;

use crate::mapping::FolderPlan;

/// A message not copied, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Source UID.
    pub uid: u32,
    /// Why (the target's refusal).
    pub reason: String,
}

/// What happened to one folder.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FolderReport {
    /// Source folder (UTF-8).
    pub source: String,
    /// Target folder (UTF-8).
    pub target: String,
    /// Naming note (special use, `--folder-map`, characters replaced).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// Messages in the source folder (verification).
    pub source_messages: u64,
    /// Bytes in the source folder (verification).
    pub source_bytes: u64,
    /// Messages in the target folder (verification).
    pub target_messages: u64,
    /// Bytes in the target folder (verification).
    pub target_bytes: u64,
    /// Source messages known to be on the target after the run.
    pub mapped: u64,
    /// New messages found (copied, or to copy with `--dry-run`).
    pub planned: u64,
    /// Messages appended.
    pub copied: u64,
    /// Bytes appended.
    pub copied_bytes: u64,
    /// Messages found already on the target (after a crash or without state) and mapped.
    pub reconciled: u64,
    /// Messages whose flags were carried again.
    pub flags_updated: u64,
    /// Messages expunged from the target (`--delete`).
    pub deleted: u64,
    /// Messages copied by an earlier run and gone from the target since
    /// (removed there by someone): copied again.
    pub lost_on_target: u64,
    /// Surplus copies removed from the target: APPENDs of a killed run
    /// that the server completed after this run had looked for them.
    pub duplicates_removed: u64,
    /// Nothing changed since the last complete run.
    pub unchanged: bool,
    /// MULTIAPPEND commands refused as a whole, whose messages were then
    /// appended one by one (so that only the refused ones are skipped).
    pub batches_retried: u64,
    /// Pauses taken because the target said `[THROTTLED]`, `[UNAVAILABLE]` or `[OVERQUOTA]`.
    pub pauses: u64,
    /// Reconnections after a lost connection.
    pub reconnects: u64,
    /// Whether the source's changes were read with CONDSTORE `CHANGEDSINCE`
    /// (else every message's flags were read).
    pub changedsince: bool,
    /// Whether the source's expunges were read with QRESYNC (`VANISHED`),
    /// on a `--delete` run (else every UID was read to find them).
    pub qresync: bool,
    /// Messages refused by the target.
    pub skipped: Vec<Skipped>,
    /// Errors that stopped this folder.
    pub errors: Vec<String>,
}

impl FolderReport {
    /// Everything is there: nothing refused, every source message mapped,
    /// and the target folder holding at least as many messages as the
    /// source's (the verification).
    pub(crate) fn complete(&self) -> bool {
        self.skipped.is_empty()
            && self.errors.is_empty()
            && self.mapped >= self.source_messages
            && self.target_messages >= self.source_messages
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// The target holds everything.
    Complete,
    /// Some messages or folders were not copied (see the report).
    Partial,
    /// Nothing could be done.
    Failed,
}

/// The summary of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// How it ended.
    pub outcome: Outcome,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Per folder.
    pub folders: Vec<FolderReport>,
    /// Messages appended.
    pub copied: u64,
    /// Bytes appended.
    pub copied_bytes: u64,
    /// Messages refused by the target.
    pub skipped: u64,
    /// Folder errors.
    pub errors: u64,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
}

/// The report of a folder found unchanged (its STATUS on both sides is the verification).
pub(crate) fn unchanged_report(plan: &FolderPlan, s: &StatusInfo, t: &StatusInfo) -> FolderReport {
    let mut r = report_of(plan, vec![]);
    r.unchanged = true;
    r.source_messages = u64::from(s.messages.unwrap_or(0));
    r.source_bytes = s.size.unwrap_or(0);
    r.target_messages = u64::from(t.messages.unwrap_or(0));
    r.target_bytes = t.size.unwrap_or(0);
    r.mapped = r.source_messages;
    r
}

pub(crate) fn report_of(p: &FolderPlan, errors: Vec<String>) -> FolderReport {
    FolderReport {
        source: p.source_name.clone(),
        target: p.target_name.clone(),
        note: p.note.clone(),
        errors,
        ..FolderReport::default()
    }
}
