//! What a run tells: a [`FolderReport`] per folder (what was planned,
//! copied, reconciled, refused, verified), and the run's [`Summary`] with
//! its [`Outcome`]. Serializable: `bma sync --json` prints them as they are.

use bma_imap::StatusInfo;
use serde::Serialize;

use crate::mapping::FolderPlan;
use crate::shape::Change;

/// A message not copied, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// Source UID.
    pub uid: u32,
    /// Why (the target's refusal).
    pub reason: String,
}

/// A message the target stored differently from the source's bytes: on
/// the target, but not as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Altered {
    /// Source UID.
    pub uid: u32,
    /// Target UID.
    pub target_uid: u32,
    /// Size on the source.
    pub size: u64,
    /// Size on the target (RFC822.SIZE).
    pub target_size: u64,
    /// What changed.
    pub changes: Vec<Change>,
}

impl std::fmt::Display for Altered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let words: Vec<String> = self.changes.iter().map(ToString::to_string).collect();
        write!(
            f,
            "UID {} altered by the target (UID {} there): {} bytes -> {}: {}",
            self.uid,
            self.target_uid,
            self.size,
            self.target_size,
            words.join(", ")
        )
    }
}

/// Something the run found that the user should act on before relying on
/// the copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Warning {
    /// A probe message appended into a scratch folder came back changed:
    /// the target rewrites such messages.
    TargetAlters {
        /// What the target changed in the probe.
        changes: Vec<Change>,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::TargetAlters { changes } => {
                let words: Vec<String> = changes.iter().map(ToString::to_string).collect();
                write!(f, "the target rewrites messages on APPEND ({})", words.join(", "))?;
                if changes.iter().any(|c| matches!(c, Change::HeaderBytes { .. })) {
                    f.write_str(
                        "; on Cyrus IMAP set `munge8bit: no` in imapd.conf (and restart) before copying, \
                         else every message with non-ASCII headers is reported altered",
                    )?;
                }
                if changes
                    .iter()
                    .any(|c| matches!(c, Change::HeaderEndAdded | Change::FinalLineEnding | Change::LineEndings))
                {
                    f.write_str(
                        "; Courier-IMAP ends a message whose last line has no line ending with one and drops \
                         bare CRs, with no setting to turn it off: such messages are reported altered",
                    )?;
                }
                Ok(())
            }
        }
    }
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
    /// Bytes in the source folder (verification): from the sizes the run
    /// read, else STATUS=SIZE; none when neither tells: unverified, never 0.
    pub source_bytes: Option<u64>,
    /// Messages in the target folder (verification).
    pub target_messages: u64,
    /// Bytes in the target folder (verification): from the sizes the run
    /// read, else STATUS=SIZE; none when neither tells: unverified, never 0.
    pub target_bytes: Option<u64>,
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
    /// Other connections of the run that copied batches of this folder's
    /// first copy, while the order of the messages was kept (a large folder
    /// is shared with the connections that have nothing left to copy).
    pub helpers: u64,
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
    /// Appended messages whose size on the target was compared (RFC822.SIZE).
    pub verified_size: u64,
    /// Appended messages compared by content: read back, or by the
    /// target's digest.
    pub verified_content: u64,
    /// Of those, compared by the target's `DIGEST.SHA1` without reading them back.
    pub verified_digest: u64,
    /// Messages refused by the target.
    pub skipped: Vec<Skipped>,
    /// Messages the target stored differently (this run's and those recorded
    /// by earlier runs).
    pub altered: Vec<Altered>,
    /// Errors that stopped this folder.
    pub errors: Vec<String>,
}

impl FolderReport {
    /// Everything is there as it was: nothing refused, nothing altered by
    /// the target, every source message mapped, and the target folder
    /// holding at least as many messages as the source's (the verification).
    pub(crate) fn complete(&self) -> bool {
        self.all_there() && self.altered.is_empty()
    }

    /// Every message is on the target (some perhaps as the target altered
    /// them): nothing refused, no error, every source message mapped, the
    /// counts verified.
    fn all_there(&self) -> bool {
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
    /// Messages the target stored differently.
    pub altered: u64,
    /// What the user should act on (the target rewrites messages…).
    pub warnings: Vec<Warning>,
    /// Folder errors.
    pub errors: u64,
    /// Wall time, milliseconds.
    pub elapsed_ms: u64,
}

impl Summary {
    /// Every message is on the target, but the target altered some: the
    /// only reason the run is not complete (a setting of the target to
    /// change, not a copy to retry).
    pub fn only_altered(&self) -> bool {
        self.outcome == Outcome::Partial && self.altered > 0 && self.folders.iter().all(FolderReport::all_there)
    }
}

/// The report of a folder found unchanged (its STATUS on both sides is the verification).
pub(crate) fn unchanged_report(plan: &FolderPlan, s: &StatusInfo, t: &StatusInfo) -> FolderReport {
    let mut r = report_of(plan, vec![]);
    r.unchanged = true;
    r.source_messages = u64::from(s.messages.unwrap_or(0));
    r.source_bytes = s.size;
    r.target_messages = u64::from(t.messages.unwrap_or(0));
    r.target_bytes = t.size;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn folder(source: u64, mapped: u64, target: u64, altered: usize, skipped: usize, errors: usize) -> FolderReport {
        FolderReport {
            source_messages: source,
            mapped,
            target_messages: target,
            altered: (0..altered)
                .map(|i| Altered {
                    uid: i as u32 + 1,
                    target_uid: i as u32 + 1,
                    size: 10,
                    target_size: 10,
                    changes: vec![],
                })
                .collect(),
            skipped: (0..skipped).map(|i| Skipped { uid: i as u32 + 1, reason: "refused".into() }).collect(),
            errors: (0..errors).map(|_| "lost".to_owned()).collect(),
            ..FolderReport::default()
        }
    }

    fn summary(folders: Vec<FolderReport>) -> Summary {
        let altered = folders.iter().map(|f| f.altered.len() as u64).sum();
        let outcome = if folders.iter().all(FolderReport::complete) { Outcome::Complete } else { Outcome::Partial };
        Summary {
            outcome,
            dry_run: false,
            folders,
            copied: 0,
            copied_bytes: 0,
            skipped: 0,
            altered,
            warnings: vec![],
            errors: 0,
            elapsed_ms: 0,
        }
    }

    #[test]
    fn only_altered_when_every_message_is_there_and_some_were_altered() {
        // (folders, only altered?)
        let cases = [
            (vec![folder(5, 5, 5, 1, 0, 0)], true),
            (vec![folder(5, 5, 5, 1, 0, 0), folder(3, 3, 3, 0, 0, 0)], true),
            (vec![folder(5, 5, 5, 0, 0, 0)], false),
            (vec![folder(5, 5, 5, 1, 1, 0)], false),
            (vec![folder(5, 5, 5, 1, 0, 1)], false),
            (vec![folder(5, 4, 5, 1, 0, 0)], false),
            (vec![folder(5, 5, 4, 1, 0, 0)], false),
            (vec![folder(5, 5, 5, 1, 0, 0), folder(3, 3, 3, 0, 1, 0)], false),
        ];
        for (i, (folders, want)) in cases.into_iter().enumerate() {
            assert_eq!(summary(folders).only_altered(), want, "case {i}");
        }
    }
}
