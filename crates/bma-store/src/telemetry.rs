//! What `/metrics` reads beside the counts the CLI already has
//! (`counts_by_state`, `job_counts`, `outbox_counts`): how long finished
//! jobs ran, what the copies brought, and how long each cutover held mail.
//!
//! Why from the store: `bma serve` and the workers (`bma worker`, several
//! processes on PostgreSQL) are separate processes, so a figure counted in
//! one process's memory would miss the others' work and restart at zero.
//! Every figure here is read from the records at scrape time and is the
//! same whichever process did the work.
//!
//! Rules:
//! - read only, and aggregated in SQL: a scrape of a campaign of 3,500
//!   mailboxes reads a few dozen rows, not a row per job or event (the one
//!   exception, [`Store::hold_windows`], reads three events per cutover);
//! - nothing personal leaves: no address, name or subject, only closed
//!   sets (job kinds, copy phases) and numbers;
//! - the only dialect difference, a field of an event's JSON `details`, is
//!   [`json_field`].

use std::collections::HashMap;

use bma_core::job::JobKind;
use bma_core::switch::Step;
use sqlx::Row;

use crate::{Backend, Store, StoreError};

/// Finished jobs of one kind whose run time fell in one bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DurationBucket {
    /// The jobs' kind.
    pub kind: JobKind,
    /// Index of the bucket in the bounds asked for: the first bound the
    /// run times are at most; `bounds.len()` for those above the last.
    pub bucket: usize,
    /// How many.
    pub jobs: u64,
    /// Their run times added up, milliseconds.
    pub total_ms: u64,
}

/// A phase of the copy whose figures are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CopyPhase {
    /// The background copies before the cutover (a first full copy, then updates).
    Presync,
    /// The cutover's last copy, while mail is held.
    FinalCopy,
    /// The cutover's copy of what reached the legacy box meanwhile.
    PostCopy,
}

impl CopyPhase {
    /// Every phase.
    pub const ALL: [CopyPhase; 3] = [CopyPhase::Presync, CopyPhase::FinalCopy, CopyPhase::PostCopy];

    /// Its name (a metric's label).
    pub fn as_str(self) -> &'static str {
        match self {
            CopyPhase::Presync => "presync",
            CopyPhase::FinalCopy => "final_copy",
            CopyPhase::PostCopy => "post_copy",
        }
    }
}

/// What the copies of one phase brought, all mailboxes together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Copied {
    /// Messages copied.
    pub messages: u64,
    /// Bytes copied.
    pub bytes: u64,
}

/// The cutovers' hold windows: mail held at the relay and the legacy login
/// refused, from the `hold` step to the `route` step (held mail released).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HoldWindows {
    /// Each attempt that reached `route`: its window, milliseconds.
    pub done_ms: Vec<u64>,
    /// Mailboxes held now: their attempt is past `hold`, not yet at `route`.
    pub holding: u64,
}

/// A cutover attempt being read by [`Store::hold_windows`].
#[derive(Debug, Clone, Copy)]
struct Attempt {
    mailbox: i64,
    /// When its first `hold` step was recorded.
    hold: Option<i64>,
    /// Whether a `route` step followed it.
    routed: bool,
}

impl HoldWindows {
    /// Counts an attempt left open past `hold` and before `route`.
    fn count_if_holding(&mut self, attempt: Option<Attempt>) {
        if attempt.is_some_and(|a| a.hold.is_some() && !a.routed) {
            self.holding += 1;
        }
    }
}

/// A number out of an event's JSON `details` (0 when absent), in the
/// backend's dialect. `key` is one of ours, never input. Shared with
/// `figures`.
pub(crate) fn json_number(backend: Backend, key: &str) -> String {
    format!("COALESCE(CAST({} AS BIGINT), 0)", json_field(backend, key))
}

/// A field of an event's JSON `details`, as text on PostgreSQL, as its
/// JSON type on SQLite.
fn json_field(backend: Backend, key: &str) -> String {
    match backend {
        Backend::Sqlite => format!("json_extract(details, '$.{key}')"),
        Backend::Postgres => format!("(CAST(details AS jsonb) ->> '{key}')"),
    }
}

impl Store {
    /// Jobs done (the last attempt's run: from its claim to its end;
    /// jobs claimed before schema version 20 have no start and are left
    /// out), per kind, counted in the buckets whose upper `bounds_ms` are
    /// given in increasing order.
    pub async fn job_duration_buckets(&self, bounds_ms: &[u64]) -> Result<Vec<DurationBucket>, StoreError> {
        let mut case = String::from("CASE");
        for (i, b) in bounds_ms.iter().enumerate() {
            // Numbers of ours, formatted: no input reaches the statement.
            case.push_str(&format!(" WHEN d <= {b} THEN {i}"));
        }
        case.push_str(&format!(" ELSE {} END", bounds_ms.len()));
        let sql = format!(
            "SELECT kind, {case} AS bucket, COUNT(*) AS n, CAST(SUM(d) AS BIGINT) AS total FROM \
             (SELECT kind, CASE WHEN updated_at > started_at THEN updated_at - started_at ELSE 0 END AS d \
             FROM jobs WHERE state = 'done' AND started_at IS NOT NULL) runs GROUP BY kind, {case}"
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let kind = r.try_get::<String, _>("kind")?;
            let kind = kind.parse::<JobKind>().map_err(|e| StoreError::Corrupt(e.to_string()))?;
            out.push(DurationBucket {
                kind,
                bucket: usize::try_from(r.try_get::<i64, _>("bucket")?).unwrap_or(bounds_ms.len()),
                jobs: u64::try_from(r.try_get::<i64, _>("n")?).unwrap_or(0),
                total_ms: u64::try_from(r.try_get::<i64, _>("total")?).unwrap_or(0),
            });
        }
        out.sort_by_key(|b| (b.kind, b.bucket));
        Ok(out)
    }

    /// What the copies brought per phase, since the campaign began: the
    /// presync's figures (its `presync` events and a first full copy's
    /// move to `presynced`) and the cutover's copy steps. Every phase is
    /// in the answer, with zeros when nothing was copied.
    pub async fn copied_by_phase(&self) -> Result<Vec<(CopyPhase, Copied)>, StoreError> {
        let backend = self.backend();
        let (messages, bytes, step) =
            (json_number(backend, "copied"), json_number(backend, "copied_bytes"), json_field(backend, "step"));
        let sql = format!(
            "SELECT CASE WHEN kind = 'cutover_step' THEN {step} ELSE 'presync' END AS phase, \
             CAST(SUM({messages}) AS BIGINT) AS messages, CAST(SUM({bytes}) AS BIGINT) AS bytes FROM events \
             WHERE kind = 'presync' OR (kind = 'transition' AND to_state = 'presynced') \
             OR (kind = 'cutover_step' AND {step} IN ('{final_copy}', '{post_copy}')) \
             GROUP BY CASE WHEN kind = 'cutover_step' THEN {step} ELSE 'presync' END",
            final_copy = Step::FinalCopy.as_str(),
            post_copy = Step::PostCopy.as_str(),
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        let mut found: HashMap<String, Copied> = HashMap::new();
        for r in &rows {
            let copied = Copied {
                messages: u64::try_from(r.try_get::<Option<i64>, _>("messages")?.unwrap_or(0)).unwrap_or(0),
                bytes: u64::try_from(r.try_get::<Option<i64>, _>("bytes")?.unwrap_or(0)).unwrap_or(0),
            };
            found.insert(r.try_get::<String, _>("phase")?, copied);
        }
        Ok(CopyPhase::ALL.into_iter().map(|p| (p, found.get(p.as_str()).copied().unwrap_or_default())).collect())
    }

    /// The hold windows of every cutover attempt, and the mailboxes held
    /// now. An attempt starts when its mailbox becomes `migrating` and ends
    /// when it leaves that state (migrated, rolled back, failed); its window
    /// runs from its first `hold` step to its first `route` step after it.
    /// An attempt rolled back before `route` has no window (its mail went
    /// back to the legacy box, not through a switch).
    pub async fn hold_windows(&self) -> Result<HoldWindows, StoreError> {
        let step = json_field(self.backend(), "step");
        let sql = format!(
            "SELECT mailbox_id, kind, from_state, to_state, at, \
             CASE WHEN kind = 'cutover_step' THEN {step} END AS step FROM events \
             WHERE (kind = 'transition' AND (to_state = 'migrating' OR from_state = 'migrating')) \
             OR (kind = 'cutover_step' AND {step} IN ('{hold}', '{route}')) ORDER BY mailbox_id, id",
            hold = Step::Hold.as_str(),
            route = Step::Route.as_str(),
        );
        let rows = sqlx::query(sqlx::AssertSqlSafe(sql)).fetch_all(self.pool()).await?;
        let mut out = HoldWindows::default();
        // The open attempt of the mailbox being read, if any.
        let mut open: Option<Attempt> = None;
        for r in &rows {
            let mailbox: i64 = r.try_get("mailbox_id")?;
            if open.is_some_and(|a| a.mailbox != mailbox) {
                out.count_if_holding(open.take());
            }
            if r.try_get::<String, _>("kind")? == "transition" {
                let to: Option<String> = r.try_get("to_state")?;
                // Becoming `migrating` opens an attempt; leaving it closes one.
                open = (to.as_deref() == Some("migrating")).then_some(Attempt { mailbox, hold: None, routed: false });
                continue;
            }
            let Some(a) = open.as_mut() else { continue };
            let at: i64 = r.try_get("at")?;
            match (r.try_get::<Option<String>, _>("step")?.as_deref(), a.hold) {
                (Some(s), None) if s == Step::Hold.as_str() => a.hold = Some(at),
                (Some(s), Some(start)) if s == Step::Route.as_str() && !a.routed => {
                    out.done_ms.push(u64::try_from(at - start).unwrap_or(0));
                    a.routed = true;
                }
                _ => {}
            }
        }
        out.count_if_holding(open);
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phases_are_named_once() {
        let names: std::collections::BTreeSet<_> = CopyPhase::ALL.iter().map(|p| p.as_str()).collect();
        assert_eq!(names.len(), CopyPhase::ALL.len());
        assert!(names.contains(Step::FinalCopy.as_str()) && names.contains(Step::PostCopy.as_str()));
    }
}
